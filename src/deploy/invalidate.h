/*
 * invalidate: stage 4 of a deploy: tell the CDN which paths changed.
 *
 * pier_deploy_invalidate sends one CreateInvalidation with the paths and
 * the CallerReference the plan computed (pier_deploy_caller_reference: a
 * function of the deploy id and the paths, so a retried request or a
 * re-run of the same deploy gets the invalidation already created back,
 * never a second one), then, unless told not to, polls GetInvalidation
 * with backoff until CloudFront reports it Completed. No paths: nothing is
 * sent. Paths past CloudFront's 3,000 per batch are refused here (the plan
 * collapses them long before: --max-paths).
 *
 * Ownership: the outcome owns its strings (pier_deploy_invalidation_free).
 */
#ifndef PIER_DEPLOY_INVALIDATE_H
#define PIER_DEPLOY_INVALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "aws/cloudfront.h"

typedef struct {
    bool no_wait;                      /* return once created */
    pier_cloudfront_wait_options wait; /* timing of polls and busy waits */
    FILE *progress;                    /* a line when created and when completed; NULL: none */
} pier_deploy_invalidate_options;

/* clang-format off */
#define PIER_DEPLOY_INVALIDATE_OPTIONS_INIT {false, PIER_CLOUDFRONT_WAIT_OPTIONS_INIT, NULL}
/* clang-format on */

typedef struct {
    char *id;       /* the invalidation's id, NULL when none was sent */
    char *status;   /* its last known status ("InProgress", "Completed") */
    size_t paths;   /* paths sent */
    bool completed; /* status is Completed */
    double seconds; /* time spent (create + wait) */
} pier_deploy_invalidation;

void pier_deploy_invalidation_init(pier_deploy_invalidation *inv);
void pier_deploy_invalidation_free(pier_deploy_invalidation *inv);

/* Invalidates paths on distribution_id (see above). 0, or the CloudFront
 * client's error (message names the distribution); PIER_ETIMEOUT when the
 * wait ran out (the invalidation goes on: its id is in out). */
int pier_deploy_invalidate(pier_deploy_invalidation *out, pier_cloudfront *cf,
                           const char *distribution_id, char *const *paths, size_t n,
                           const char *caller_reference,
                           const pier_deploy_invalidate_options *opts);

#endif
