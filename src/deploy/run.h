/*
 * run: one deploy, start to finish, for every caller (`pier deploy` and the
 * pipeline's publish stage): the local manifest (SHA-256 first, MD5s later
 * only for what may be uploaded) hashed while another thread reads pier's
 * manifest object and the listing under the prefix, the plan, the MD5 pass
 * and re-plan, then (unless dry_run) the execution with progress. The CDN
 * step is pier_deploy_run_invalidate: a CloudFront client on the given AWS
 * settings, then pier_deploy_invalidate.
 *
 * The caller owns the S3 client, the rules and the output: run prints no
 * result, only warnings (PIER_WARN) and the executor's progress.
 *
 * Costs: one GET (pier's manifest), one LIST per 1,000 objects, one
 * GetDistributionConfig when the origin path is to be looked up, then the
 * plan's operations; CPU: SHA-256 of every file, MD5 of the uploads.
 *
 * Ownership: options are borrowed for the call; the result owns its plan
 * and execution record (pier_deploy_run_result_free).
 */
#ifndef PIER_DEPLOY_RUN_H
#define PIER_DEPLOY_RUN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "aws/awsreq.h"
#include "aws/s3.h"
#include "deploy/execute.h"
#include "deploy/invalidate.h"
#include "deploy/plan.h"
#include "deploy/rules.h"

typedef struct {
    const char *dir;                         /* the local folder */
    const char *bucket;                      /* target bucket */
    const char *prefix;                      /* key prefix, not yet normalized ("" or NULL: root) */
    pier_s3 *s3;                             /* S3 client (borrowed) */
    const pier_deploy_rules *rules;          /* headers and rewrites (borrowed) */
    bool no_delete;                          /* plan: keep objects without a local file */
    bool allow_empty;                        /* plan: an empty folder may empty the prefix */
    int64_t max_deletes;                     /* plan: -1 = the plan's default */
    size_t max_paths;                        /* plan: invalidation paths; 0 = default */
    const char *origin_prefix;               /* CloudFront origin path, or NULL: see cdn_id */
    const char *cdn_id;                      /* origin_prefix NULL: ask this distribution, or NULL:
                                                the bucket root */
    const pier_awsreq_shared *cdn_aws;       /* settings for that CloudFront request (http and
                                                config are taken from s3), or NULL: defaults */
    const char *deploy_id;                   /* or NULL: a new one */
    unsigned jobs;                           /* operations in flight; 0 = default */
    bool dry_run;                            /* plan only */
    FILE *progress;                          /* executor progress; NULL = stderr */
    pier_deploy_progress_mode progress_mode; /* see execute.h */
    const volatile sig_atomic_t *interrupted; /* stop starting work; may be NULL */
    const struct timespec *start;   /* CLOCK_MONOTONIC origin of seconds; NULL = the call */
    void (*before_execute)(void *); /* called once the plan is final, before executing; or
                                       NULL (e.g. to install signal handlers) */
    void *ctx;                      /* before_execute's argument */
} pier_deploy_run_options;

/* clang-format off */
#define PIER_DEPLOY_RUN_OPTIONS_INIT                                                               \
    {NULL, NULL, NULL, NULL, NULL, false, false, -1, 0, NULL, NULL, NULL, NULL, 0, false, NULL,   \
     PIER_DEPLOY_PROGRESS_AUTO, NULL, NULL, NULL, NULL}
/* clang-format on */

typedef struct {
    pier_deploy_plan *plan;  /* the final plan, or NULL when planning failed */
    pier_deploy_result exec; /* the execution (requests include the reads before it);
                                seconds: since options.start */
    bool executed;           /* execution was attempted (not dry_run, planning worked) */
} pier_deploy_run_result;

void pier_deploy_run_result_init(pier_deploy_run_result *r);
void pier_deploy_run_result_free(pier_deploy_run_result *r);

/* Deploys o->dir (see above). 0 when done (or planned, with dry_run); a
 * negative code with the message set otherwise: out->executed says whether
 * the failure was in the execution (out->exec has its record) or before. */
int pier_deploy_run(const pier_deploy_run_options *o, pier_deploy_run_result *out);

/* A CloudFront client on aws (NULL: defaults), then pier_deploy_invalidate
 * of paths on distribution_id with io. */
int pier_deploy_run_invalidate(pier_deploy_invalidation *out, const pier_awsreq_shared *aws,
                               const char *distribution_id, char *const *paths, size_t n,
                               const char *caller_reference,
                               const pier_deploy_invalidate_options *io);

#endif
