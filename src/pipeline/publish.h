/*
 * publish: the deploy and invalidate stages of a pipeline over the real
 * wire protocols: local manifest, S3 listing and pier's remote manifest,
 * plan (deploy/plan.h), execution (deploy/execute.h), then CloudFront's
 * CreateInvalidation + wait (deploy/invalidate.h). The same code publishes
 * to AWS or to the embedded stack; only the endpoints and the credentials
 * chain differ.
 *
 * Ownership: every option is borrowed for the call; the result belongs to
 * the caller (pier_engine_deploy_result_clear).
 */
#ifndef PIER_PUBLISH_H
#define PIER_PUBLISH_H

#include <stdio.h>

#include "aws/credentials.h"
#include "base/yaml.h"
#include "pipeline/engine.h"

typedef struct {
    const char *endpoint;                /* S3 endpoint, or NULL for AWS */
    const char *cdn_endpoint;            /* CloudFront endpoint, or NULL for AWS */
    pier_credentials_chain *credentials; /* who signs (borrowed) */
    const char *bucket;                  /* target bucket */
    const char *prefix;                  /* key prefix ("" root) */
    const char *rules_file;              /* deploy rules, or NULL */
    const pier_yaml_doc *site_doc;       /* document of site_rules, or NULL */
    const pier_yaml_node *site_rules;    /* pier.yml `site:` rules (rewrites), or NULL */
    FILE *log;                           /* progress lines, or NULL */
} pier_publish_options;

/* Publishes dir; out gets the counts, the summary and the invalidation
 * paths. */
int pier_publish_deploy(const pier_publish_options *o, const char *dir,
                        pier_engine_deploy_result *out);
/* CreateInvalidation of paths on distribution + wait for Completed;
 * *invalidation_id gets the id (owned). */
int pier_publish_invalidate(const pier_publish_options *o, const char *distribution,
                            char *const *paths, size_t n, const char *caller_reference,
                            char **invalidation_id);

#endif
