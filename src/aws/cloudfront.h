/*
 * cloudfront: the CloudFront invalidation API (REST-XML, version
 * 2020-05-31), on awsreq.
 *
 * Endpoint: https://cloudfront.amazonaws.com (global), or the one given
 * (options.shared.endpoint_url) or configured (AWS_ENDPOINT_URL_CLOUDFRONT,
 * AWS_ENDPOINT_URL, the profile's cloudfront endpoint_url). Requests are
 * always signed for region us-east-1, service "cloudfront", whatever the
 * configured region.
 *
 * Operations
 *   CreateInvalidation  POST /2020-05-31/distribution/{Id}/invalidation with
 *                       <InvalidationBatch xmlns="http://cloudfront.amazonaws.
 *                       com/doc/2020-05-31/"><Paths><Quantity>N</Quantity>
 *                       <Items><Path>/a</Path>...</Items></Paths>
 *                       <CallerReference>REF</CallerReference>
 *                       </InvalidationBatch>; answers 201 Created, Location
 *                       and <Invalidation> (Id, Status, CreateTime,
 *                       InvalidationBatch).
 *   GetInvalidation     GET /2020-05-31/distribution/{Id}/invalidation/{InvId}
 *   ListInvalidations   GET /2020-05-31/distribution/{Id}/invalidation
 *                       (Marker / MaxItems pages of InvalidationSummary)
 *
 * Idempotency: the CallerReference is the idempotency token. A request
 * retried with the same reference and the same paths (after a 500 or a
 * lost response) gets the invalidation already created back (CloudFront
 * answers it as a success), so retries never create a second one. The same
 * reference with different paths is InvalidationBatchAlreadyExists: an
 * error (PIER_ECONFLICT) naming the reference. pier uses the run id.
 *
 * Paths are sent as given, XML-escaped (so '&', '<' and spaces are safe in
 * the body); each must start with '/' and may end with '*'. Encoding
 * characters CloudFront wants URL-encoded (non-ASCII, RFC 1738 unsafe ones)
 * is the caller's choice, as in the AWS CLI.
 *
 * Waiting: TooManyInvalidationsInProgress and throttling are waited out with
 * backoff (first 1 s, doubling to 20 s) up to busy_timeout_ms, not failed.
 * pier_cloudfront_wait polls GetInvalidation (first after 1 s, growing by
 * half each time to 15 s) until Completed or timeout_ms (PIER_ETIMEOUT,
 * naming the invalidation and its last status).
 *
 * Messages: NoSuchDistribution names the id ("no such CloudFront
 * distribution: E2QWRUHAPOMQZL"), AccessDenied names the action and the
 * permission ("access denied: CreateInvalidation on distribution E2Q...
 * (check the role's cloudfront:CreateInvalidation permission)"),
 * NoSuchInvalidation names both ids.
 *
 * Ownership: pier_cloudfront_new gives the caller the client
 * (pier_cloudfront_free); a pier_cloudfront_invalidation filled by the
 * client belongs to the caller (pier_cloudfront_invalidation_free); list
 * callbacks borrow what they are handed.
 */
#ifndef PIER_CLOUDFRONT_H
#define PIER_CLOUDFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/awsreq.h"

#define PIER_CLOUDFRONT_API_VERSION "2020-05-31"
#define PIER_CLOUDFRONT_XMLNS       "http://cloudfront.amazonaws.com/doc/2020-05-31/"
#define PIER_CLOUDFRONT_ENDPOINT    "https://cloudfront.amazonaws.com"
#define PIER_CLOUDFRONT_REGION      "us-east-1"
#define PIER_CLOUDFRONT_MAX_PATHS   3000 /* paths in one batch (CloudFront's limit) */

typedef struct {
    pier_awsreq_shared shared; /* config, credentials, HTTP, retry, endpoint */
} pier_cloudfront_options;

/* clang-format off */
#define PIER_CLOUDFRONT_OPTIONS_INIT {PIER_AWSREQ_SHARED_INIT}
/* clang-format on */

typedef struct pier_cloudfront pier_cloudfront;

int pier_cloudfront_new(pier_cloudfront **out, const pier_cloudfront_options *opts);
void pier_cloudfront_free(pier_cloudfront *cf);
/* The endpoint in use. Borrowed. */
const char *pier_cloudfront_endpoint(const pier_cloudfront *cf);

/* An invalidation as CloudFront reports it. Owned strings. */
typedef struct {
    char *id;               /* "I2J0I21PCUYOIK" */
    char *status;           /* "InProgress" or "Completed" */
    int64_t create_time;    /* seconds since the epoch (0 when unparsable) */
    char *caller_reference; /* or NULL (ListInvalidations gives none) */
    char **paths;           /* the batch's paths (NULL when not reported) */
    size_t path_count;      /* their number */
    char *location;         /* Create: the Location header, or NULL */
} pier_cloudfront_invalidation;

void pier_cloudfront_invalidation_init(pier_cloudfront_invalidation *inv);
void pier_cloudfront_invalidation_free(pier_cloudfront_invalidation *inv);

/* Timing of the waits; 0 fields take the defaults. */
typedef struct {
    long poll_first_ms;   /* first GetInvalidation poll after this; 0: 1000 */
    long poll_max_ms;     /* polls grow by half up to this; 0: 15000 */
    long timeout_ms;      /* wait for Completed at most this; 0: 20 minutes */
    long busy_first_ms;   /* TooManyInvalidationsInProgress / throttling: first
                             wait; 0: 1000 (doubling) */
    long busy_max_ms;     /* longest single busy wait; 0: 20000 */
    long busy_timeout_ms; /* give up on a busy CloudFront after; 0: 10 minutes */
} pier_cloudfront_wait_options;

/* clang-format off */
#define PIER_CLOUDFRONT_WAIT_OPTIONS_INIT {0, 0, 0, 0, 0, 0}
/* clang-format on */

/* CreateInvalidation of n paths (1..3000, each starting with '/') with
 * caller_reference (non-empty; the idempotency token). Waits out
 * TooManyInvalidationsInProgress and throttling per opts (NULL: defaults).
 * out (initialized; may be NULL) receives the invalidation. Errors:
 * PIER_EINVALID (bad paths, a reference reused with other paths is
 * PIER_ECONFLICT), PIER_ENOTFOUND (no such distribution), PIER_EAUTH,
 * PIER_ETIMEOUT (still busy after busy_timeout_ms), PIER_EIO. */
int pier_cloudfront_create_invalidation(pier_cloudfront *cf, const char *distribution_id,
                                        const char *const *paths, size_t n,
                                        const char *caller_reference,
                                        const pier_cloudfront_wait_options *opts,
                                        pier_cloudfront_invalidation *out);

/* GetInvalidation into out (initialized). PIER_ENOTFOUND for an unknown
 * distribution or invalidation. */
int pier_cloudfront_get_invalidation(pier_cloudfront *cf, const char *distribution_id,
                                     const char *invalidation_id,
                                     pier_cloudfront_invalidation *out);

/* Polls GetInvalidation until its status is Completed; out (may be NULL)
 * gets the last answer. PIER_ETIMEOUT after opts->timeout_ms. */
int pier_cloudfront_wait(pier_cloudfront *cf, const char *distribution_id,
                         const char *invalidation_id, const pier_cloudfront_wait_options *opts,
                         pier_cloudfront_invalidation *out);

/* Create, then wait for Completed: stage 4 of a pipeline in one call. */
int pier_cloudfront_invalidate(pier_cloudfront *cf, const char *distribution_id,
                               const char *const *paths, size_t n, const char *caller_reference,
                               const pier_cloudfront_wait_options *opts,
                               pier_cloudfront_invalidation *out);

/* One invalidation of a listing (id, status, create_time set; the rest
 * NULL), borrowed for the call. Non-zero stops the listing and is
 * returned. */
typedef int (*pier_cloudfront_list_fn)(void *ctx, const pier_cloudfront_invalidation *inv);

/* ListInvalidations over every page (newest first, as CloudFront lists). */
int pier_cloudfront_list_invalidations(pier_cloudfront *cf, const char *distribution_id,
                                       pier_cloudfront_list_fn fn, void *ctx);

/* "cloudfront://E2QWRUHAPOMQZL" -> malloc'ed "E2QWRUHAPOMQZL"; a bare id is
 * accepted too. PIER_EINVALID (naming the text) otherwise. */
int pier_cloudfront_parse_uri(const char *uri, char **distribution_id);

/* Sleeps: the wait functions call this (tests replace it to run fast). */
typedef void (*pier_cloudfront_sleep_fn)(void *ctx, long ms);
void pier_cloudfront_set_sleep(pier_cloudfront *cf, pier_cloudfront_sleep_fn fn, void *ctx);

#endif
