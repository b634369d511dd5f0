/*
 * s3api: the S3 REST API (path-style and virtual-hosted) over a
 * pier_store, as a server handler. Real clients (AWS CLI, boto3, s3cmd,
 * rclone, the JavaScript SDK) work against it with only the endpoint URL
 * changed.
 *
 * Authentication: every request is verified with SigV4 (Authorization
 * header or presigned query, aws-chunked chunk signatures included) against
 * the credential lookup the stack provides. The lookup also returns an
 * authorization callback, asked once per request with the IAM action
 * ("s3:GetObject", "s3:PutObject", "s3:ListBucket", ...), the bucket and the
 * key, so scoped (session) credentials can be limited to their buckets.
 * Unsigned requests are refused (AccessDenied) except GET/HEAD of objects
 * in buckets marked public_read.
 *
 * Ownership: the options' strings are copied; the store and the lookup's
 * context are borrowed and must outlive the server.
 */
#ifndef PIER_S3API_H
#define PIER_S3API_H

#include <stdint.h>

#include "aws/sigv4.h"
#include "net/server.h"
#include "stack/store.h"

/* Returns 0 when the request's credential may do action on bucket/key
 * (bucket "" for ListBuckets, key "" for bucket-level actions), PIER_EAUTH
 * otherwise. */
typedef int (*pier_s3api_authorize_fn)(void *ctx, const char *action, const char *bucket,
                                       const char *key);

/* Finds access_key_id: fills secret->secret (and secret->session_token for
 * temporary credentials, secret->expired when past their expiry), and sets
 * *authorize / *authorize_ctx (NULL: the key may do everything).
 * Returns 0, PIER_ENOTFOUND for an unknown key, or another negative code. */
typedef int (*pier_s3api_lookup_fn)(void *ctx, const char *access_key_id, pier_sigv4_secret *secret,
                                    pier_s3api_authorize_fn *authorize, void **authorize_ctx);

typedef struct {
    pier_store *store;           /* the objects (borrowed) */
    const char *region;          /* reported region; NULL = "us-east-1" (any is accepted) */
    const char *domains;         /* comma-separated virtual-host base domains; NULL =
                                    "s3.localhost,localhost" (bucket.localhost:9000) */
    pier_s3api_lookup_fn lookup; /* required */
    void *lookup_ctx;            /* its context (borrowed) */
    uint64_t max_object_size;    /* single PUT / part cap; 0 = 5 GiB */
} pier_s3api_options;

/* A handler to add to a server with pier_server_add (the server owns it). */
pier_handler *pier_s3api_new(const pier_s3api_options *opts);
/* pier_s3api_new + pier_server_add. */
void pier_s3api_register(pier_server *srv, const pier_server_match *match,
                         const pier_s3api_options *opts);

#endif
