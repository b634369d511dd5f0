/*
 * publish: deploy + invalidate for the engine (see publish.h). The rules
 * (rules file, then pier.yml `site:`) and the S3 client (path-style, the
 * given endpoint and credentials) are made here; the deploy itself is
 * deploy/run.h's, the one `pier deploy` uses, with progress going to the
 * run's log instead of a terminal.
 */
#include "pipeline/publish.h"

#include <stdlib.h>
#include <string.h>

#include "aws/s3.h"
#include "base/buf.h"
#include "base/mem.h"
#include "deploy/rules.h"
#include "deploy/run.h"

static int make_rules(const pier_publish_options *o, pier_deploy_rules **out)
{
    pier_deploy_rules *r = pier_deploy_rules_new();
    int rc = 0;
    if (o->rules_file)
        rc = pier_deploy_rules_load_file(r, o->rules_file);
    if (rc == 0 && o->site_rules)
        rc = pier_deploy_rules_load_yaml(r, o->site_doc, o->site_rules);
    if (rc != 0) {
        pier_deploy_rules_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

int pier_publish_deploy(const pier_publish_options *o, const char *dir,
                        pier_engine_deploy_result *out)
{
    memset(out, 0, sizeof *out);
    pier_deploy_rules *rules = NULL;
    pier_s3 *s3 = NULL;
    pier_deploy_run_result run;
    pier_deploy_run_result_init(&run);
    int rc = make_rules(o, &rules);
    if (rc != 0)
        goto done;
    pier_s3_options so = PIER_S3_OPTIONS_INIT;
    so.shared.endpoint_url = o->endpoint;
    so.shared.credentials = o->credentials;
    so.shared.region = "us-east-1";
    so.addressing = PIER_S3_ADDRESSING_PATH;
    if ((rc = pier_s3_new(&s3, &so)) != 0)
        goto done;
    pier_deploy_run_options ro = PIER_DEPLOY_RUN_OPTIONS_INIT;
    ro.dir = dir;
    ro.bucket = o->bucket;
    ro.prefix = o->prefix;
    ro.s3 = s3;
    ro.rules = rules;
    ro.max_deletes = 100000;
    ro.origin_prefix = "";
    ro.progress = o->log;
    ro.progress_mode = o->log ? PIER_DEPLOY_PROGRESS_PLAIN : PIER_DEPLOY_PROGRESS_NONE;
    rc = pier_deploy_run(&ro, &run);
    if (!run.executed)
        goto done;
    out->uploaded = (int64_t)run.exec.uploaded;
    out->skipped = (int64_t)run.exec.skipped;
    out->deleted = (int64_t)run.exec.deleted;
    out->bytes = (int64_t)run.exec.uploaded_bytes;
    pier_buf line;
    pier_buf_init(&line, 4096);
    pier_deploy_result_summary(&line, &run.exec);
    out->summary = pier_buf_detach(&line);
    if (rc != 0)
        goto done;
    const pier_deploy_plan *plan = run.plan;
    if (plan->path_count) {
        out->paths = pier_calloc(plan->path_count, sizeof *out->paths);
        for (size_t i = 0; i < plan->path_count; i++)
            out->paths[i] = pier_strdup(plan->paths[i]);
        out->path_count = plan->path_count;
    }
done:
    pier_deploy_run_result_free(&run);
    pier_s3_free(s3);
    pier_deploy_rules_free(rules);
    return rc;
}

int pier_publish_invalidate(const pier_publish_options *o, const char *distribution,
                            char *const *paths, size_t n, const char *caller_reference,
                            char **invalidation_id)
{
    *invalidation_id = NULL;
    pier_deploy_invalidation inv;
    pier_deploy_invalidation_init(&inv);
    pier_awsreq_shared aws = PIER_AWSREQ_SHARED_INIT;
    aws.endpoint_url = o->cdn_endpoint;
    aws.credentials = o->credentials;
    pier_deploy_invalidate_options io = PIER_DEPLOY_INVALIDATE_OPTIONS_INIT;
    io.wait.poll_first_ms = 100;
    io.wait.poll_max_ms = 500;
    io.wait.timeout_ms = 120000;
    io.progress = o->log;
    int rc = pier_deploy_run_invalidate(&inv, &aws, distribution, paths, n, caller_reference, &io);
    if (rc == 0 && inv.id)
        *invalidation_id = pier_strdup(inv.id);
    pier_deploy_invalidation_free(&inv);
    return rc;
}
