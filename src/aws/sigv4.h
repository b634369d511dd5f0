/*
 * sigv4: AWS Signature Version 4, both directions, as pure functions: a
 * request, a credential and a time go in, a signature comes out. No I/O, no
 * clock: the caller passes "now".
 *
 * Three users:
 *   - pier's AWS clients sign outgoing requests (pier_sigv4_sign adds
 *     X-Amz-Date, X-Amz-Security-Token, x-amz-content-sha256 and
 *     Authorization to the header list) or presign a URL (pier_sigv4_presign
 *     gives the query string to send).
 *   - pier's servers verify incoming requests (pier_sigv4_verify), with the
 *     secret looked up through a callback, and learn why a request failed in
 *     a form they can turn into the AWS error (pier_sigv4_status_code).
 *   - aws-chunked uploads: after the seed signature, each chunk is signed
 *     ("AWS4-HMAC-SHA256-PAYLOAD") and chained to the previous signature;
 *     pier_sigv4_chunk does it for the sender and for the receiver.
 *
 * Every step is inspectable: a pier_sigv4_result holds the canonical request,
 * the string to sign and the signature, which the tests compare against the
 * AWS test suite.
 *
 * Paths. The path a caller gives is the encoded path of the URL, as sent or as
 * received. With double_encode (every service but S3) it is URI-encoded once
 * more for the canonical request, after removing dot segments and empty
 * segments when normalize_path is on. Without it (S3) it is re-encoded: each
 * %XX is decoded and every byte encoded by the SigV4 rules (so a properly
 * encoded path is kept as is, and an encoded '/' stays "%2F").
 *
 * Ownership: every string in a request, credential or options struct is
 * borrowed for the duration of the call. A pier_sigv4_result or
 * pier_sigv4_auth owns its buffers; free them with the matching _free.
 */
#ifndef PIER_SIGV4_H
#define PIER_SIGV4_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "base/digest.h"
#include "net/http.h"

#define PIER_SIGV4_ALGORITHM                  "AWS4-HMAC-SHA256"
#define PIER_SIGV4_EMPTY_SHA256               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define PIER_SIGV4_UNSIGNED_PAYLOAD           "UNSIGNED-PAYLOAD"
#define PIER_SIGV4_STREAMING_PAYLOAD          "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
#define PIER_SIGV4_STREAMING_PAYLOAD_TRAILER  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
#define PIER_SIGV4_STREAMING_UNSIGNED_TRAILER "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

#define PIER_SIGV4_MAX_EXPIRES 604800 /* 7 days, the presigned URL limit */
#define PIER_SIGV4_MAX_SKEW    900    /* 15 minutes */
#define PIER_SIGV4_KEY_ID_MAX  128    /* longest access key id accepted */
#define PIER_SIGV4_NAME_MAX    63     /* longest region or service name */
#define PIER_SIGV4_SCOPE_MAX   160    /* date/region/service/aws4_request + NUL */

/* A credential, borrowed. session_token NULL or "" when there is none. */
typedef struct {
    const char *access_key_id;     /* AKID... */
    const char *secret_access_key; /* the secret */
    const char *session_token;     /* temporary credentials only */
} pier_sigv4_credentials;

typedef struct {
    const char *region;       /* scope region, e.g. "us-east-1" (verify: expected, NULL any) */
    const char *service;      /* scope service, e.g. "s3" (verify: expected, NULL any) */
    bool normalize_path;      /* remove "." and ".." segments and collapse "//" (not S3) */
    bool double_encode;       /* encode the already encoded path again (not S3) */
    bool sign_content_sha256; /* sign: add and sign x-amz-content-sha256 (S3) */
    bool omit_session_token;  /* sign/presign: add the token but leave it unsigned */
    uint32_t expires;         /* presign: X-Amz-Expires in seconds, 1..604800 */
} pier_sigv4_options;

/* Every service but S3. */
#define PIER_SIGV4_OPTIONS_INIT                                                                    \
    {                                                                                              \
        NULL, NULL, true, true, false, false, 3600                                                 \
    }
/* S3: no normalization, single encoding, x-amz-content-sha256 signed. */
#define PIER_SIGV4_OPTIONS_S3_INIT                                                                 \
    {                                                                                              \
        NULL, "s3", false, false, true, false, 3600                                                \
    }

/* A request to sign or to verify. */
typedef struct {
    const char *method;         /* "GET", "PUT" ... */
    const char *host;           /* signed as "host" when headers have no Host */
    const char *path;           /* encoded path ("" means "/") */
    const char *query;          /* encoded query without '?', NULL or "" for none */
    pier_http_headers *headers; /* sign: gains the auth headers; verify: read only */
    const char *payload_hash;   /* hex SHA-256 of the body or one of the
                                   PIER_SIGV4_*_PAYLOAD* words; NULL: sign uses the
                                   empty-body hash, verify reads x-amz-content-sha256
                                   (or UNSIGNED-PAYLOAD for a presigned URL) */
} pier_sigv4_request;

/* The chain of chunk signatures of one aws-chunked body. */
typedef struct {
    unsigned char key[PIER_SHA256_LEN]; /* the derived signing key */
    char amz_date[17];                  /* X-Amz-Date of the seed request */
    char scope[PIER_SIGV4_SCOPE_MAX];   /* date/region/service/aws4_request */
    char prev[65];                      /* previous signature (the seed at first) */
} pier_sigv4_chunk;

/* What signing produced, step by step. */
typedef struct {
    pier_buf canonical_request; /* step 1 */
    pier_buf string_to_sign;    /* step 2 */
    char signature[65];         /* step 3, lowercase hex */
    pier_buf signed_headers;    /* "host;x-amz-date" */
    pier_buf authorization;     /* sign: the Authorization header value */
    pier_buf query;             /* presign: the whole query string to send */
    char amz_date[17];          /* 20150830T123600Z */
    pier_sigv4_chunk chunk;     /* seeded with the signature, for aws-chunked bodies */
} pier_sigv4_result;

void pier_sigv4_result_init(pier_sigv4_result *r);
void pier_sigv4_result_free(pier_sigv4_result *r);

/* Signs req in place: sets X-Amz-Date, X-Amz-Security-Token (with a session
 * token), x-amz-content-sha256 (when opts->sign_content_sha256) and
 * Authorization in req->headers, replacing any earlier ones (a retry re-signs
 * the same list). Headers that proxies or curl rewrite (User-Agent, Expect,
 * Connection, Transfer-Encoding, X-Amzn-Trace-Id) are not signed. out may be
 * NULL; when given (initialized) it receives every step. */
int pier_sigv4_sign(pier_sigv4_result *out, const pier_sigv4_request *req,
                    const pier_sigv4_credentials *cred, time_t now, const pier_sigv4_options *opts);

/* Presigns req: out->query receives req->query followed by X-Amz-Algorithm,
 * -Credential, -Date, -SignedHeaders, -Expires, [-Security-Token,] -Signature.
 * req->headers are signed but not changed. For S3 pass payload_hash
 * UNSIGNED-PAYLOAD. */
int pier_sigv4_presign(pier_sigv4_result *out, const pier_sigv4_request *req,
                       const pier_sigv4_credentials *cred, time_t now,
                       const pier_sigv4_options *opts);

/* ---- verification --------------------------------------------------- */

/* Why a request was not authenticated. */
typedef enum {
    PIER_SIGV4_OK = 0,        /* authentic */
    PIER_SIGV4_MISSING,       /* no SigV4 auth at all (an anonymous request) */
    PIER_SIGV4_MALFORMED,     /* Authorization or X-Amz-* parameters unreadable or wrong scope */
    PIER_SIGV4_UNKNOWN_KEY,   /* the lookup does not know the access key id */
    PIER_SIGV4_MISMATCH,      /* the signature differs */
    PIER_SIGV4_SKEWED,        /* X-Amz-Date more than 15 minutes from now */
    PIER_SIGV4_EXPIRED,       /* presigned URL past X-Amz-Date + X-Amz-Expires */
    PIER_SIGV4_TOKEN_MISSING, /* the key needs a session token the request lacks */
    PIER_SIGV4_TOKEN_INVALID, /* a session token that does not belong to the key */
    PIER_SIGV4_TOKEN_EXPIRED, /* the lookup says the temporary credential expired */
    PIER_SIGV4_ERROR,         /* the lookup failed (message set by it) */
} pier_sigv4_status;

/* What a lookup fills in; both buffers come initialized and empty. */
typedef struct {
    pier_buf secret;        /* the secret access key */
    pier_buf session_token; /* left empty unless the key is temporary */
    bool expired;           /* the key exists but its credential has expired */
} pier_sigv4_secret;

/* Finds the secret of access_key_id. Returns 0 when found, PIER_ENOTFOUND
 * when the key is unknown, another negative code on failure. */
typedef int (*pier_sigv4_lookup_fn)(void *ctx, const char *access_key_id, pier_sigv4_secret *out);

typedef struct {
    pier_sigv4_options sig;      /* region/service expected (NULL: any), path rules */
    pier_sigv4_lookup_fn lookup; /* required */
    void *lookup_ctx;            /* its context */
    int max_skew;                /* seconds; 0 means PIER_SIGV4_MAX_SKEW */
} pier_sigv4_verify_options;

/* What a request claimed, and how verification went. */
typedef struct {
    pier_sigv4_status status;                      /* the outcome */
    bool presigned;                                /* query auth rather than a header */
    char access_key_id[PIER_SIGV4_KEY_ID_MAX + 1]; /* from the credential */
    char date[9];                                  /* scope date, YYYYMMDD */
    char region[PIER_SIGV4_NAME_MAX + 1];          /* scope region */
    char service[PIER_SIGV4_NAME_MAX + 1];         /* scope service */
    char amz_date[17];                             /* X-Amz-Date */
    time_t time;                                   /* X-Amz-Date as a time */
    uint32_t expires;                              /* presigned: X-Amz-Expires */
    char signature[65];                            /* the signature the request carried */
    pier_buf signed_headers;                       /* "host;x-amz-date", as sent */
    pier_buf payload_hash;                         /* the hash or word that was signed */
    pier_sigv4_result computed;                    /* the steps recomputed here */
    pier_sigv4_chunk chunk;                        /* after OK: ready to verify chunks */
} pier_sigv4_auth;

void pier_sigv4_auth_init(pier_sigv4_auth *a);
void pier_sigv4_auth_free(pier_sigv4_auth *a);

/* Reads the SigV4 parts of req (Authorization header or X-Amz-* query
 * parameters) into out without checking the signature. 0 when they are well
 * formed; PIER_EAUTH with status MISSING when there is no SigV4 auth;
 * PIER_EINVALID with status MALFORMED otherwise (message set). */
int pier_sigv4_parse(pier_sigv4_auth *out, const pier_sigv4_request *req);

/* Verifies req at time now. 0 when authentic (status OK). Otherwise status
 * says why and the return is PIER_EINVALID (MALFORMED), PIER_EAUTH (all other
 * refusals) or the lookup's own code (ERROR); the message is set. The
 * signature is compared in constant time.
 *
 * req->path and req->query are the raw ones as received; req->host is only
 * used when the headers have no Host. The payload hash signed is
 * req->payload_hash when given (a non-S3 server hashes the body itself);
 * else, for a presigned URL, its X-Amz-Content-Sha256 parameter or
 * UNSIGNED-PAYLOAD; else the x-amz-content-sha256 header, which the caller
 * must then check against the body (or verify each chunk with out->chunk).
 * The time is X-Amz-Date (header or parameter); a Date header alone is not
 * accepted. Checks, in order: well formed (payload hash included), scope
 * region/service, time, lookup, session token, signature. */
int pier_sigv4_verify(pier_sigv4_auth *out, const pier_sigv4_request *req, time_t now,
                      const pier_sigv4_verify_options *opts);

/* True when name (any case) is among the request's signed headers. */
bool pier_sigv4_auth_signed(const pier_sigv4_auth *a, const char *name);

/* The AWS error code a server answers for status ("SignatureDoesNotMatch",
 * "AuthorizationHeaderMalformed" or "AuthorizationQueryParametersError" ...)
 * and its HTTP status in *http (may be NULL); NULL for PIER_SIGV4_OK. */
const char *pier_sigv4_status_code(pier_sigv4_status s, bool presigned, int *http);

/* ---- aws-chunked ------------------------------------------------------ */

/* Seeds a chain from a credential: for a receiver that holds the secret, or
 * a sender that did not keep its pier_sigv4_result. */
int pier_sigv4_chunk_init(pier_sigv4_chunk *c, const pier_sigv4_credentials *cred,
                          const char *amz_date, const char *region, const char *service,
                          const char *seed_signature);

/* Signs the next chunk, given the hex SHA-256 of its data (64 chars; the
 * final, empty chunk hashes to PIER_SIGV4_EMPTY_SHA256), into sig and
 * advances the chain. sts, when not NULL, receives the string to sign. */
int pier_sigv4_chunk_sign(pier_sigv4_chunk *c, char sig[65], const char *data_sha256_hex,
                          pier_buf *sts);
/* Checks a received chunk signature (constant time); advances the chain only
 * when it matches. 0 or PIER_EAUTH (message set). */
int pier_sigv4_chunk_verify(pier_sigv4_chunk *c, const char *sig, const char *data_sha256_hex);
/* Sender: appends one framed chunk "<hex size>;chunk-signature=<sig>\r\n
 * <data>\r\n" to out. n == 0 writes the final chunk. */
int pier_sigv4_chunk_write(pier_sigv4_chunk *c, pier_buf *out, const void *data, size_t n);
/* Receiver: parses a chunk header line (without its CRLF) into the data size
 * and the signature (64 hex + NUL). PIER_EINVALID when malformed. */
int pier_sigv4_chunk_parse_header(pier_slice line, uint64_t *size, char sig[65]);
/* The Content-Length of an aws-chunked body of payload_len bytes cut into
 * chunks of chunk_size, final empty chunk included (no trailer). */
uint64_t pier_sigv4_chunked_length(uint64_t payload_len, uint64_t chunk_size);

/* The trailer signature ("AWS4-HMAC-SHA256-TRAILER") over the trailing
 * headers, given as their canonical text "name:value\n" per header (e.g.
 * "x-amz-checksum-crc32c:sOO8/Q==\n"). Chains like a chunk. */
int pier_sigv4_trailer_sign(pier_sigv4_chunk *c, char sig[65], const char *trailer, size_t n,
                            pier_buf *sts);
int pier_sigv4_trailer_verify(pier_sigv4_chunk *c, const char *sig, const char *trailer, size_t n);

#endif
