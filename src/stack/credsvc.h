/*
 * credsvc: short-lived, scoped credentials, handed out over the container
 * credentials protocol (what CodeBuild and ECS give a job): a process gets
 * AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN,
 * and every AWS SDK's default chain fetches
 *   GET <uri>   Authorization: <token>
 *   -> 200 {"AccessKeyId": "ASIA...", "SecretAccessKey": "...",
 *           "Token": "...", "Expiration": "2025-01-01T12:00:00Z",
 *           "RoleArn": "arn:aws:iam::000000000000:role/pier/<name>"}
 * and signs its requests with it.
 *
 * A grant (pier_credsvc_grant_new) is a scope (buckets, optionally with a
 * key prefix; distributions; actions) and a lifetime; it gives the URI and
 * the token. Each fetch returns the grant's current session credential
 * (access key "ASIA" + 16 upper-case letters and digits, 40-character
 * secret, session token), minting a new one when less than a fifth of its
 * life is left; a session lasts session_ttl (1 h) at most and never past
 * the grant. Secrets live in memory only: a restart revokes everything.
 *
 * The S3 API and the CloudFront API find session keys through
 * pier_credsvc_lookup (a pier_s3api_lookup_fn): an expired session is
 * reported as such (the APIs answer ExpiredToken, 400) and a request outside
 * the scope is refused by the authorization callback (AccessDenied, 403)
 * before anything is written. For cloudfront:* actions the callback's
 * "bucket" argument is the distribution id.
 *
 * Scope rules: an action is allowed when it equals one of the grant's
 * actions, or one ending in '*' is a prefix of it ("s3:*", "s3:Get*", "*");
 * pier:* actions (the grants API) are never granted. s3 actions on a bucket
 * need the bucket in the list; "bucket/prefix" limits object actions to keys
 * under prefix (bucket-level actions such as ListBucket stay allowed on the
 * bucket). cloudfront actions on a distribution need it in the list. Other
 * services (codepipeline:...) are checked on the action alone.
 *
 * HTTP (pier_credsvc_handler, on the API listener):
 *   GET  /_pier/credentials/<grant-id>  the container endpoint (token in
 *        Authorization; missing: 401, wrong or expired grant: 403)
 *   POST /_pier/grants       SigV4-signed by an administrator key (any
 *        service name, e.g. "pier"); JSON {"name", "buckets",
 *        "distributions", "actions", "ttl_seconds"} -> 201 {"id", "uri",
 *        "token", "expires", "env": {...}}
 *   DELETE /_pier/grants/<grant-id>  revoke (administrator), 204
 *
 * Ownership: strings in a scope are copied; a pier_credsvc_grant is filled
 * in place. Thread-safe.
 */
#ifndef PIER_CREDSVC_H
#define PIER_CREDSVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/sigv4.h"
#include "net/server.h"
#include "stack/s3api.h"

#define PIER_CREDSVC_PATH        "/_pier/credentials/"
#define PIER_CREDSVC_GRANTS_PATH "/_pier/grants"
#define PIER_CREDSVC_MAX_TTL     43200 /* 12 h, as a role session */

typedef struct {
    const char *name;                 /* label (the RoleArn's role name); NULL: "grant" */
    const char *const *buckets;       /* "bucket" or "bucket/prefix" */
    size_t bucket_count;              /* their number */
    const char *const *distributions; /* distribution ids */
    size_t distribution_count;        /* their number */
    const char *const *actions;       /* "s3:PutObject", "s3:*", "cloudfront:CreateInvalidation" */
    size_t action_count;              /* 0: "s3:*" and "cloudfront:*" */
    int64_t ttl_s;                    /* lifetime; 0: 3600; at most PIER_CREDSVC_MAX_TTL */
} pier_credsvc_scope;

typedef struct {
    char id[33];     /* the grant's id (in the URI) */
    char uri[320];   /* AWS_CONTAINER_CREDENTIALS_FULL_URI */
    char token[65];  /* AWS_CONTAINER_AUTHORIZATION_TOKEN */
    int64_t expires; /* seconds since the epoch */
} pier_credsvc_grant;

typedef struct {
    char access_key_id[21];     /* ASIA... */
    char secret_access_key[41]; /* the secret */
    char session_token[97];     /* the token */
    int64_t expires;            /* seconds since the epoch */
} pier_credsvc_session;

typedef struct pier_credsvc pier_credsvc;

typedef struct {
    const char *base_url;        /* "http://127.0.0.1:9000" (may be set later) */
    int64_t session_ttl_s;       /* 0: 3600 */
    pier_s3api_lookup_fn lookup; /* who may use the grants API: keys it finds with no
                                    authorization callback (administrators) */
    void *lookup_ctx;            /* its context */
    int64_t (*clock)(void *ctx); /* seconds; NULL: time() */
    void *clock_ctx;             /* its context */
} pier_credsvc_options;

int pier_credsvc_new(pier_credsvc **out, const pier_credsvc_options *opts);
void pier_credsvc_free(pier_credsvc *s);
/* The URL the grants' URIs start with (copied). */
void pier_credsvc_set_base_url(pier_credsvc *s, const char *url);

/* Registers a grant. PIER_EINVALID for a bad bucket, distribution id,
 * action, name or ttl (the message names it). */
int pier_credsvc_grant_new(pier_credsvc *s, const pier_credsvc_scope *scope,
                           pier_credsvc_grant *out);
/* Ends a grant and its sessions now. PIER_ENOTFOUND when unknown. */
int pier_credsvc_revoke(pier_credsvc *s, const char *grant_id);
/* What the endpoint does: the session for grant_id when token is right.
 * PIER_EAUTH for a wrong token or an unknown, revoked or expired grant. */
int pier_credsvc_fetch(pier_credsvc *s, const char *grant_id, const char *token,
                       pier_credsvc_session *out);

/* A pier_s3api_lookup_fn over the sessions (ctx is the pier_credsvc). */
int pier_credsvc_lookup(void *ctx, const char *access_key_id, pier_sigv4_secret *secret,
                        pier_s3api_authorize_fn *authorize, void **authorize_ctx);

/* ---- SigV4 for the stack's non-S3 APIs ---- */

typedef struct {
    pier_sigv4_status status; /* the verifier's verdict (PIER_SIGV4_OK when authentic) */
    char access_key_id[PIER_SIGV4_KEY_ID_MAX + 1]; /* the key that signed, when it could be read */
    const char *code;                  /* AWS error code when refused, NULL when authentic */
    unsigned http;                     /* its HTTP status */
    char message[256];                 /* why */
    pier_s3api_authorize_fn authorize; /* the key's scope check; NULL: may do everything */
    void *authorize_ctx;               /* its context */
} pier_credsvc_auth;

/* Verifies r's SigV4 (Authorization header or presigned query) for service
 * (NULL: any; the region is not checked) over the body whose hex SHA-256 is
 * payload_sha256, with lookup. 0 when authentic (out->authorize set), else
 * PIER_EAUTH with out->code/http/message ready for an error document (an
 * unsigned request is AccessDenied, an expired session ExpiredToken). */
int pier_credsvc_authenticate(pier_server_req *r, const char *service, const char *payload_sha256,
                              pier_s3api_lookup_fn lookup, void *lookup_ctx,
                              pier_credsvc_auth *out);

/* The handler for /_pier/credentials/ and /_pier/grants (the server owns the
 * handler; it borrows s). */
pier_handler *pier_credsvc_handler(pier_credsvc *s);

#endif
