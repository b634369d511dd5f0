/*
 * invalidate: CreateInvalidation with the plan's paths and CallerReference,
 * then GetInvalidation polls until Completed (see invalidate.h). A thin
 * stage over aws/cloudfront.h: the retries, the busy waits and the poll
 * backoff are the CloudFront client's.
 */
#include "deploy/invalidate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/mem.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pier_deploy_invalidation_init(pier_deploy_invalidation *inv)
{
    memset(inv, 0, sizeof *inv);
}

void pier_deploy_invalidation_free(pier_deploy_invalidation *inv)
{
    if (!inv)
        return;
    free(inv->id);
    free(inv->status);
    memset(inv, 0, sizeof *inv);
}

static void take(pier_deploy_invalidation *out, const pier_cloudfront_invalidation *inv)
{
    if (inv->id && (!out->id || strcmp(out->id, inv->id) != 0)) {
        free(out->id);
        out->id = pier_strdup(inv->id);
    }
    if (inv->status) {
        free(out->status);
        out->status = pier_strdup(inv->status);
        out->completed = strcmp(inv->status, "Completed") == 0;
    }
}

int pier_deploy_invalidate(pier_deploy_invalidation *out, pier_cloudfront *cf,
                           const char *distribution_id, char *const *paths, size_t n,
                           const char *caller_reference, const pier_deploy_invalidate_options *opts)
{
    pier_deploy_invalidate_options defaults = PIER_DEPLOY_INVALIDATE_OPTIONS_INIT;
    if (!opts)
        opts = &defaults;
    if (n == 0)
        return 0;
    if (n > PIER_CLOUDFRONT_MAX_PATHS)
        return pier_error_set(PIER_EINVALID,
                              "%zu invalidation paths for distribution %s: CloudFront takes at "
                              "most %d in one invalidation (lower --max-paths)",
                              n, distribution_id, PIER_CLOUDFRONT_MAX_PATHS);
    if (!caller_reference || !*caller_reference)
        return pier_error_set(PIER_EINVALID, "an invalidation needs a CallerReference");
    double t0 = now_s();
    pier_cloudfront_invalidation inv;
    pier_cloudfront_invalidation_init(&inv);
    out->paths = n;
    int rc = pier_cloudfront_create_invalidation(cf, distribution_id, (const char *const *)paths, n,
                                                 caller_reference, &opts->wait, &inv);
    if (rc < 0)
        goto done;
    take(out, &inv);
    if (opts->progress) {
        fprintf(opts->progress, "pier: invalidation %s of %zu path%s on %s: %s\n",
                out->id ? out->id : "?", n, n == 1 ? "" : "s", distribution_id,
                out->status ? out->status : "created");
        fflush(opts->progress);
    }
    if (opts->no_wait || out->completed || !out->id)
        goto done;
    pier_cloudfront_invalidation_free(&inv);
    pier_cloudfront_invalidation_init(&inv);
    rc = pier_cloudfront_wait(cf, distribution_id, out->id, &opts->wait, &inv);
    take(out, &inv);
    if (rc == 0 && opts->progress) {
        fprintf(opts->progress, "pier: invalidation %s completed\n", out->id);
        fflush(opts->progress);
    }
done:
    pier_cloudfront_invalidation_free(&inv);
    out->seconds = now_s() - t0;
    return rc;
}
