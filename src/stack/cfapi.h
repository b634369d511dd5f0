/*
 * cfapi: the CloudFront API (REST-XML, version 2020-05-31) over the edge,
 * as a server handler on the API listener (path prefix /2020-05-31/). The
 * AWS CLI, boto3 and pier's own client (aws/cloudfront.h) work against it
 * with only the endpoint changed.
 *
 * Operations (the shapes and status codes are CloudFront's):
 *   CreateInvalidation  POST /2020-05-31/distribution/{Id}/invalidation
 *                       <InvalidationBatch> -> 201, Location, <Invalidation>
 *   GetInvalidation     GET  .../distribution/{Id}/invalidation/{InvId}
 *   ListInvalidations   GET  .../distribution/{Id}/invalidation[?Marker&MaxItems]
 *                       newest first; NextMarker is the last Id of a page
 *   GetDistribution     GET  .../distribution/{Id} (a minimal Distribution)
 *   ListDistributions   GET  .../distribution (one page)
 * Errors: <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>
 * with NoSuchDistribution 404, NoSuchInvalidation 404, AccessDenied 403,
 * InvalidArgument 400, MalformedInput 400, MissingBody 400,
 * InconsistentQuantities 400, BatchTooLarge 413 (over 3000 paths),
 * InvalidationBatchAlreadyExists 409.
 *
 * Invalidations: the CallerReference is the idempotency token: the same
 * reference with the same paths gives back the invalidation made the first
 * time (201); with other paths it is InvalidationBatchAlreadyExists. Paths
 * start with '/'; a '*' may only end one (a prefix). The edge's matching
 * entries are purged before the create answers, which reports InProgress
 * (as CloudFront does); the stored status is then Completed, so the next
 * GetInvalidation (what `aws cloudfront wait invalidation-completed`
 * polls) says Completed. TooManyInvalidationsInProgress never happens.
 *
 * Authentication: SigV4, service "cloudfront" (any region: SDKs sign with
 * their configured region once an endpoint URL is set), through the
 * stack's lookup; the authorization callback is asked
 * ("cloudfront:CreateInvalidation", distribution id, "").
 *
 * Persistence: each distribution's invalidations are kept in
 * DIR/cloudfront/<Id>.json (written atomically on every create; the newest
 * 10000 are kept), so ListInvalidations survives a restart.
 *
 * Ownership: the edge and the lookup's context are borrowed and must
 * outlive the handler's server.
 */
#ifndef PIER_CFAPI_H
#define PIER_CFAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "net/server.h"
#include "stack/edge.h"
#include "stack/s3api.h"

#define PIER_CFAPI_PREFIX "/2020-05-31/"

typedef struct pier_cfapi pier_cfapi;

typedef struct {
    pier_edge *edge;             /* distributions and the cache to purge (borrowed) */
    const char *data_dir;        /* where cloudfront/<Id>.json live; NULL: nothing persisted */
    pier_s3api_lookup_fn lookup; /* credentials (required) */
    void *lookup_ctx;            /* its context */
} pier_cfapi_options;

/* Loads the saved invalidations of every distribution the edge serves.
 * Errors name the file at fault. */
int pier_cfapi_new(pier_cfapi **out, const pier_cfapi_options *opts);
void pier_cfapi_free(pier_cfapi *a);

/* CreateInvalidation in process (the HTTP operation minus auth): purges
 * and records. inv_id receives the id ("I" + 13 characters). *existing is
 * set when the reference had been used with the same paths. PIER_ENOTFOUND
 * (no such distribution), PIER_ECONFLICT (reference used with other
 * paths), PIER_EINVALID (bad paths or reference), PIER_EIO (saving). */
int pier_cfapi_invalidate(pier_cfapi *a, const char *distribution_id, const char *const *paths,
                          size_t n, const char *caller_reference, char inv_id[16], bool *existing);

/* The handler (the server owns it; it borrows a, which must outlive the
 * server). */
pier_handler *pier_cfapi_handler(pier_cfapi *a);

#endif
