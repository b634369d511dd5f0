/*
 * publish: deploy + invalidate for the engine (see publish.h). A straight
 * chain of the deploy part's pure plan and its executor, as `pier deploy`
 * does it, with the output going to the run's log instead of a terminal.
 */
#include "pipeline/publish.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/cloudfront.h"
#include "aws/s3.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/mem.h"
#include "deploy/execute.h"
#include "deploy/invalidate.h"
#include "deploy/manifest.h"
#include "deploy/plan.h"
#include "deploy/remote.h"
#include "deploy/rules.h"

static int on_object(void *ctx, const pier_s3_object *o)
{
    pier_deploy_listing_add(ctx, o->key, o->size, o->etag, o->last_modified);
    return 0;
}

static void read_state(pier_s3 *s3, const char *bucket, const char *key, pier_deploy_state **out)
{
    pier_buf body;
    pier_buf_init(&body, 64 << 20);
    *out = NULL;
    if (pier_s3_get_object(s3, bucket, key, &body, NULL) == 0)
        pier_deploy_state_parse(out, body.ptr ? body.ptr : "", body.len, key);
    pier_buf_free(&body);
}

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
    pier_deploy_manifest *m = NULL;
    pier_deploy_listing *listing = NULL;
    pier_deploy_state *state = NULL;
    pier_deploy_plan *plan = NULL;
    pier_s3 *s3 = NULL;
    char *norm = NULL;
    pier_deploy_result res;
    pier_deploy_result_init(&res);
    int rc = make_rules(o, &rules);
    if (rc != 0)
        goto done;
    norm = pier_deploy_prefix_normalize(o->prefix ? o->prefix : "");
    pier_deploy_manifest_options mo = PIER_DEPLOY_MANIFEST_OPTIONS_INIT;
    mo.prefix = norm;
    if ((rc = pier_deploy_manifest_build(&m, dir, &mo)) != 0)
        goto done;
    pier_s3_options so = PIER_S3_OPTIONS_INIT;
    so.shared.endpoint_url = o->endpoint;
    so.shared.credentials = o->credentials;
    so.shared.region = "us-east-1";
    so.addressing = PIER_S3_ADDRESSING_PATH;
    if ((rc = pier_s3_new(&s3, &so)) != 0)
        goto done;
    listing = pier_deploy_listing_new();
    pier_s3_list_options lo = PIER_S3_LIST_OPTIONS_INIT;
    lo.prefix = m->prefix;
    if ((rc = pier_s3_list_objects(s3, o->bucket, &lo, on_object, listing)) != 0)
        goto done;
    char *state_key = pier_deploy_state_key(m->prefix);
    read_state(s3, o->bucket, state_key, &state);
    free(state_key);
    char deploy_id[PIER_DEPLOY_ID_LEN];
    int64_t now = (int64_t)time(NULL);
    pier_deploy_id_new(deploy_id, now);
    pier_deploy_plan_options po = PIER_DEPLOY_PLAN_OPTIONS_INIT;
    po.deploy_id = deploy_id;
    po.time = now;
    po.max_deletes = 100000;
    po.origin_prefix = "";
    if ((rc = pier_deploy_plan_make(&plan, m, listing, state, rules, &po)) != 0)
        goto done;
    pier_deploy_exec_options eo = PIER_DEPLOY_EXEC_OPTIONS_INIT;
    eo.progress = o->log;
    eo.progress_mode = o->log ? PIER_DEPLOY_PROGRESS_PLAIN : PIER_DEPLOY_PROGRESS_NONE;
    rc = pier_deploy_execute(&res, s3, o->bucket, plan, &eo);
    out->uploaded = (int64_t)res.uploaded;
    out->skipped = (int64_t)res.skipped;
    out->deleted = (int64_t)res.deleted;
    out->bytes = (int64_t)res.uploaded_bytes;
    pier_buf line;
    pier_buf_init(&line, 4096);
    pier_deploy_result_summary(&line, &res);
    out->summary = pier_buf_detach(&line);
    if (rc != 0)
        goto done;
    if (plan->path_count) {
        out->paths = pier_calloc(plan->path_count, sizeof *out->paths);
        for (size_t i = 0; i < plan->path_count; i++)
            out->paths[i] = pier_strdup(plan->paths[i]);
        out->path_count = plan->path_count;
    }
done:
    pier_deploy_result_free(&res);
    pier_deploy_plan_free(plan);
    pier_deploy_state_free(state);
    pier_deploy_listing_free(listing);
    pier_s3_free(s3);
    pier_deploy_manifest_free(m);
    pier_deploy_rules_free(rules);
    free(norm);
    return rc;
}

int pier_publish_invalidate(const pier_publish_options *o, const char *distribution,
                            char *const *paths, size_t n, const char *caller_reference,
                            char **invalidation_id)
{
    *invalidation_id = NULL;
    pier_cloudfront *cf = NULL;
    pier_deploy_invalidation inv;
    pier_deploy_invalidation_init(&inv);
    pier_cloudfront_options co = PIER_CLOUDFRONT_OPTIONS_INIT;
    co.shared.endpoint_url = o->cdn_endpoint;
    co.shared.credentials = o->credentials;
    int rc = pier_cloudfront_new(&cf, &co);
    if (rc != 0)
        goto done;
    pier_deploy_invalidate_options io = PIER_DEPLOY_INVALIDATE_OPTIONS_INIT;
    io.wait.poll_first_ms = 100;
    io.wait.poll_max_ms = 500;
    io.wait.timeout_ms = 120000;
    io.progress = o->log;
    rc = pier_deploy_invalidate(&inv, cf, distribution, paths, n, caller_reference, &io);
    if (rc == 0 && inv.id)
        *invalidation_id = pier_strdup(inv.id);
done:
    pier_deploy_invalidation_free(&inv);
    pier_cloudfront_free(cf);
    return rc;
}
