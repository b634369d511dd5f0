/*
 * awsreq: the one request path of pier's AWS clients (S3, CloudFront, and
 * later CodePipeline).
 *
 * A call (pier_awsreq_call) describes one API request: method, URL,
 * headers, body (memory or a file range), where the response goes. The
 * client signs it with SigV4 (credentials from the provider chain, the
 * service's region and signing name, the time corrected by the retry
 * policy's clock offset), sends it through pier_http, and after each
 * attempt asks the retry policy (standard mode) whether to go again. Each
 * attempt is signed afresh (X-Amz-Date changes) and re-sends the body from
 * its start (file bodies are re-read from their offset). When the call
 * ends, its done callback fires once: on success (a 2xx) or after the
 * retries are spent, with one clear message set (pier_error_last()).
 *
 * Errors. A non-2xx response's body is read as an AWS error in any of its
 * shapes: S3's <Error>, CloudFront's and the query APIs'
 * <ErrorResponse><Error>, JSON's {"__type": ...} (and x-amzn-ErrorType).
 * The generic message is
 *   "<Operation> on <what> failed: <Code>: <Message> (HTTP 403, request id
 *    ..., after 3 attempts)"
 * and a service may replace it with a better one through its explain hook
 * (S3 names the permission to grant, the right region ...). The pier code
 * follows the HTTP status and error code: 404 / NoSuch* -> PIER_ENOTFOUND,
 * 401, 403 and the credential errors -> PIER_EAUTH, 409 and 412 ->
 * PIER_ECONFLICT, other 4xx -> PIER_EINVALID, 5xx and transport failures
 * -> PIER_EIO (PIER_ETIMEOUT for a timeout). ExpiredToken /
 * InvalidClientTokenId make the client forget its cached credentials and
 * retry once with fresh ones.
 *
 * Concurrency. Many calls can be in flight on one thread: submit them, then
 * pier_awsreq_run drives them all. A retry that must wait (backoff) sits on
 * the client's timer list and is resubmitted when due, while other transfers
 * keep moving (the run loop drives the HTTP client with a deadline: the
 * next due timer). pier_awsreq_do is the synchronous form (it also drives
 * whatever else is in flight on the client). A client is used by one thread
 * at a time, like the pier_http_client under it.
 *
 * Shared pieces. A service client needs a config, a credential chain, an
 * HTTP client and a retry policy; pier_awsreq_shared passes the ones the
 * caller already has (borrowed, so S3 and CloudFront clients can share one
 * HTTP client and one retry quota) and the client makes the rest itself.
 *
 * Ownership: a client owns what it made and borrows what it was given (the
 * borrowed pieces must outlive it). A call belongs to the caller (init /
 * free); the client borrows it from submit until its done callback, which
 * may free it. Strings in options structs are copied.
 */
#ifndef PIER_AWSREQ_H
#define PIER_AWSREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/config.h"
#include "aws/credentials.h"
#include "aws/retry.h"
#include "base/buf.h"
#include "net/http.h"

/* What a service client borrows from its caller; any NULL piece is made by
 * the client itself (and freed with it). */
typedef struct {
    pier_aws_config *config;             /* NULL: loaded from the environment and files */
    pier_credentials_chain *credentials; /* NULL: the SDKs' default chain (config's profile) */
    pier_http_client *http;              /* NULL: a client of its own */
    pier_retry *retry;                   /* NULL: its own, with the config's max_attempts */
    const char *endpoint_url;            /* overrides the configured endpoint (--endpoint-url) */
    const char *region;                  /* overrides the configured region (--region) */
    const char *profile;                 /* for a config / chain made here (--profile) */
    bool allow_insecure_http;            /* own HTTP client only: http:// to non-loopback hosts */
} pier_awsreq_shared;

/* clang-format off */
#define PIER_AWSREQ_SHARED_INIT {NULL, NULL, NULL, NULL, NULL, NULL, NULL, false}
/* clang-format on */

typedef struct pier_awsreq_client pier_awsreq_client;
typedef struct pier_awsreq_call pier_awsreq_call;

/* A service's hook for its own final messages: called once when a call has
 * failed with an HTTP error (call->status and call->error_* filled). It may
 * set the message (pier_error_set) and return the pier code to use, or
 * return 0 to keep the generic message and code. */
typedef int (*pier_awsreq_explain_fn)(void *ctx, const pier_awsreq_call *call);

/* A call's completion: rc 0 (a 2xx arrived) or negative (message set). The
 * callback may free the call and submit more calls. */
typedef void (*pier_awsreq_done_fn)(void *ctx, int rc, pier_awsreq_call *call);

/* Called before every attempt (1, 2, ...) so a streamed consumer (an XML
 * reader on on_body, a partial file) can start over. Non-zero fails the
 * call with that code (message set). */
typedef int (*pier_awsreq_attempt_fn)(void *ctx, int attempt);

typedef struct {
    const char *service_id;         /* config's id, for the endpoint: "S3", "CloudFront" */
    const char *signing_name;       /* SigV4 service: "s3", "cloudfront" */
    const char *region;             /* fixed signing region (CloudFront: "us-east-1");
                                       NULL: shared->region, config, "us-east-1" */
    bool s3_rules;                  /* S3 signing: no path normalisation, single
                                       encoding, x-amz-content-sha256 */
    pier_awsreq_explain_fn explain; /* NULL: generic messages only */
    void *explain_ctx;              /* its context */
} pier_awsreq_service;

/* Makes a client for one service. Fails when the config cannot be loaded
 * or an HTTP client or retry policy cannot be made (message set).
 * Credentials are not resolved until the first call. */
int pier_awsreq_client_new(pier_awsreq_client **out, const pier_awsreq_service *svc,
                           const pier_awsreq_shared *shared);
/* Frees the client and what it made. No call may be in flight. */
void pier_awsreq_client_free(pier_awsreq_client *c);

/* The signing region in use. Borrowed. */
const char *pier_awsreq_client_region(const pier_awsreq_client *c);
/* The endpoint given or configured ("http://127.0.0.1:9000"), or NULL when
 * the AWS default applies. Borrowed. */
const char *pier_awsreq_client_endpoint(const pier_awsreq_client *c);
/* The config, HTTP client and retry policy in use (borrowed). */
pier_aws_config *pier_awsreq_client_config(const pier_awsreq_client *c);
pier_http_client *pier_awsreq_client_http(const pier_awsreq_client *c);
pier_retry *pier_awsreq_client_retry(const pier_awsreq_client *c);

/* One API request and, after it, its outcome. Init, fill the "request"
 * fields, submit; read the "outcome" fields in the done callback (or after
 * pier_awsreq_do); free. */
struct pier_awsreq_call {
    /* request */
    const char *operation;             /* API action for messages: "PutObject" (static) */
    char *what;                        /* what it acts on, for messages: "bucket my-site",
                                          "s3://my-site/a.html" (owned) */
    const char *method;                /* "GET", "PUT", ... (static) */
    char *url;                         /* absolute, percent-encoded (owned) */
    pier_http_headers headers;         /* extra headers, all signed (owned); the auth
                                          headers and Host are added per attempt */
    pier_buf body;                     /* memory body (owned; empty: none) */
    char *body_file;                   /* or: a file body (owned) ... */
    uint64_t body_file_offset;         /* ... from this offset ... */
    uint64_t body_file_len;            /* ... this many bytes */
    const char *payload_hash;          /* signed payload hash (static or owned by the caller);
                                          NULL: SHA-256 of the memory body, or
                                          UNSIGNED-PAYLOAD for a file body */
    char *response_file;               /* a 2xx body goes to this file (owned) */
    pier_http_body_fn on_body;         /* or: to this callback */
    void *on_body_ctx;                 /* its context */
    pier_awsreq_attempt_fn on_attempt; /* before each attempt (may be NULL) */
    void *on_attempt_ctx;              /* its context */
    size_t response_max;               /* cap of an in-memory body (0: 16 MiB) */
    long timeout_ms;                   /* per attempt; 0: none (low-speed limit only) */
    bool no_body;                      /* HEAD-like: no response body */
    bool error_in_2xx;                 /* a 2xx body may be an <Error> document
                                          (S3 CompleteMultipartUpload): check it */

    /* outcome (valid in the done callback and after pier_awsreq_do) */
    pier_http_response resp; /* the last attempt's response (status, headers,
                                in-memory body) */
    long status;             /* its HTTP status (0: no response at all) */
    int attempts;            /* attempts made */
    char *error_code;        /* AWS error code of a failed call, or NULL */
    char *error_message;     /* its message, or NULL */
    char *request_id;        /* its request id, or NULL */

    /* private to awsreq */
    pier_http_request req;      /* the request as sent */
    pier_retry_state retry;     /* attempts and held tokens */
    pier_awsreq_client *client; /* while in flight */
    pier_awsreq_done_fn done;   /* completion */
    void *done_ctx;             /* its context */
    int64_t due_ms;             /* monotonic time of a scheduled retry */
    pier_awsreq_call *next;     /* in the client's timer list */
    bool refreshed;             /* credentials were refreshed once already */
};

void pier_awsreq_call_init(pier_awsreq_call *call);
/* Frees what the call owns; the struct can be initialized again. */
void pier_awsreq_call_free(pier_awsreq_call *call);

/* Starts a call. 0: done will be called exactly once. Negative (nothing
 * sent, done not called, message set): no credentials, a malformed URL, an
 * unreadable body file. */
int pier_awsreq_submit(pier_awsreq_client *c, pier_awsreq_call *call, pier_awsreq_done_fn done,
                       void *ctx);
/* Drives every call (and every other transfer on the HTTP client) until
 * none is in flight or waiting to retry. 0, or negative when the HTTP
 * client itself failed. Not from a done callback. */
int pier_awsreq_run(pier_awsreq_client *c);
/* Drives like pier_awsreq_run but returns as soon as *stop turns true (a
 * flag a done callback sets): the synchronous forms of composite
 * operations use it. */
int pier_awsreq_run_until(pier_awsreq_client *c, const bool *stop);
/* Calls in flight or waiting for a retry. */
size_t pier_awsreq_pending(const pier_awsreq_client *c);

/* Synchronous: submit, then drive until this call ends. Returns the call's
 * result (as its done callback would get). Not from a done callback. */
int pier_awsreq_do(pier_awsreq_client *c, pier_awsreq_call *call);

/* Appends "<endpoint><path>[?query]" with endpoint's trailing '/' dropped
 * (path and query already encoded). */
int pier_awsreq_url(pier_buf *out, const char *endpoint, const char *path, const char *query);

/* Reads an AWS error from a response: XML (any shape) or JSON (__type,
 * message), else the x-amzn-ErrorType / x-amz-error-code headers. Sets
 * *code (prefix "namespace#" and suffix ":..." dropped), *message and
 * *request_id (malloc'ed, NULL when absent). 0 when a code was found. */
int pier_awsreq_parse_error(const pier_http_response *resp, char **code, char **message,
                            char **request_id);

#endif
