/*
 * s3: pier's S3 client (REST-XML), on awsreq: signed, retried like the AWS
 * SDKs, streamed.
 *
 * Addressing
 *   - The endpoint is --endpoint-url (options.shared.endpoint_url), else the
 *     configured one (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the profile's
 *     s3 endpoint_url), else AWS: https://s3.<region>.amazonaws.com.
 *   - PIER_S3_ADDRESSING_AUTO: virtual-hosted
 *     (https://<bucket>.s3.<region>.amazonaws.com/<key>) on AWS (the default
 *     endpoint or an explicit *.amazonaws.com one) when the bucket is
 *     DNS-compatible without dots; path-style
 *     (<endpoint>/<bucket>/<key>) for a custom endpoint (S3-compatible
 *     stores, pier's own) and for other bucket names. The profile's
 *     `s3 = / addressing_style = path|virtual` and AWS_S3_FORCE_PATH_STYLE=
 *     true|false change the default; the option wins over both.
 *     Virtual-hosted on a custom endpoint puts the bucket before its host.
 *   - Keys: each '/'-separated segment is URI-encoded (RFC 3986 unreserved
 *     kept), '/' kept, so keys with spaces, '+', '%', '#', '?', non-ASCII
 *     bytes, "." and ".." segments and "//" reach S3 byte for byte (the HTTP
 *     client never normalizes paths). Keys are 1..1024 bytes.
 *
 * Integrity: PutObject and UploadPart send Content-MD5 when the caller gives
 * the MD5 (pier's manifest has it), which S3 checks; the payload is signed
 * UNSIGNED-PAYLOAD (accepted by S3 and S3-compatible stores over http and
 * https). DeleteObjects always sends Content-MD5 of its XML body (S3
 * requires it) and no x-amz-checksum-* header (some stores refuse them).
 *
 * Messages: failures are one line naming the action, bucket and key, with
 * the fix when S3 says what it is:
 *   "access denied: PutObject on bucket my-site (check the role's
 *    s3:PutObject permission)"
 *   "no such bucket: my-site (at https://s3.us-east-1.amazonaws.com)"
 *   "bucket my-site is in eu-west-1, not us-east-1: set AWS_REGION=eu-west-1"
 *   "signature rejected by S3 for PutObject on bucket my-site: check the
 *    secret access key and the system clock"
 * Codes: PIER_ENOTFOUND (no bucket, no key, no upload), PIER_EAUTH (denied,
 * bad signature or key), PIER_EINVALID (wrong region, bad request),
 * PIER_ECONFLICT (precondition), PIER_EIO (5xx or network after retries),
 * PIER_ETIMEOUT.
 *
 * Sync and async: every operation has a synchronous form. Puts, uploads
 * (single or multipart), part uploads, heads and delete batches also have an
 * _async form that returns at once; pier_s3_run then drives everything in
 * flight on the client's one HTTP client, so a caller keeps N transfers
 * going on one thread. Each async operation's done callback is called once,
 * after success or after its retries are spent (message set for rc < 0);
 * it may submit more operations. Async arguments are copied at submit: only
 * the files named must stay unchanged until done.
 *
 * Ownership: pier_s3_new gives the caller the client (pier_s3_free);
 * char ** outputs and structs filled by the client belong to the caller
 * (free() / the matching _free); everything handed to a callback is
 * borrowed for the call.
 */
#ifndef PIER_S3_H
#define PIER_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/awsreq.h"
#include "base/buf.h"
#include "base/digest.h"
#include "net/http.h"

#define PIER_S3_DELETE_BATCH   1000                /* keys per DeleteObjects request */
#define PIER_S3_PART_MIN       ((uint64_t)5 << 20) /* smallest part but the last */
#define PIER_S3_PART_DEFAULT   ((uint64_t)8 << 20) /* default part size */
#define PIER_S3_MAX_PARTS      10000
#define PIER_S3_THRESHOLD      ((uint64_t)8 << 20) /* upload_file: multipart above this */
#define PIER_S3_PARALLEL_PARTS 4                   /* parts in flight per multipart upload */
#define PIER_S3_KEY_MAX        1024

typedef enum {
    PIER_S3_ADDRESSING_AUTO = 0, /* the rules above */
    PIER_S3_ADDRESSING_PATH,     /* always <endpoint>/<bucket>/<key> */
    PIER_S3_ADDRESSING_VIRTUAL,  /* always <bucket>.<endpoint host>/<key> */
} pier_s3_addressing;

typedef struct {
    pier_awsreq_shared shared;     /* config, credentials, HTTP, retry, endpoint, region */
    pier_s3_addressing addressing; /* AUTO unless forced */
} pier_s3_options;

/* clang-format off */
#define PIER_S3_OPTIONS_INIT {PIER_AWSREQ_SHARED_INIT, PIER_S3_ADDRESSING_AUTO}
/* clang-format on */

typedef struct pier_s3 pier_s3;

int pier_s3_new(pier_s3 **out, const pier_s3_options *opts);
/* No operation may be in flight (run first). */
void pier_s3_free(pier_s3 *s3);

/* The region and endpoint in use ("https://s3.us-east-1.amazonaws.com" when
 * none is configured). Borrowed. */
const char *pier_s3_region(const pier_s3 *s3);
const char *pier_s3_endpoint(const pier_s3 *s3);
/* The shared pieces in use: the awsreq client (its HTTP client, retry
 * policy, config). Borrowed. */
pier_awsreq_client *pier_s3_awsreq(const pier_s3 *s3);

/* Appends the URL of bucket/key (key NULL: the bucket itself) as the client
 * addresses it, key encoded. PIER_EINVALID for an empty bucket or a key
 * over 1024 bytes. */
int pier_s3_url(const pier_s3 *s3, pier_buf *out, const char *bucket, const char *key);
/* Splits "s3://bucket[/prefix]" into malloc'ed bucket and prefix ("" when
 * none; kept as written). PIER_EINVALID, naming the URL, otherwise. */
int pier_s3_parse_uri(const char *uri, char **bucket, char **prefix);
/* S3's bucket naming rules (3..63 chars, lower-case letters, digits, '.'
 * and '-', starting and ending with a letter or digit, no "..", not an IP
 * address). */
bool pier_s3_bucket_name_valid(const char *bucket);

/* ---- async driving ------------------------------------------------------ */

/* Drives every async operation of the client until none is left. 0, or
 * negative when the HTTP client itself failed. Not from a callback. */
int pier_s3_run(pier_s3 *s3);
/* Operations submitted and not yet completed (multipart: one). */
size_t pier_s3_pending(const pier_s3 *s3);

/* ---- objects ------------------------------------------------------------ */

/* HeadObject's answer. Owned strings; pier_s3_head_free. */
typedef struct {
    uint64_t size;              /* Content-Length */
    char *etag;                 /* ETag without quotes (multipart: "<hex>-N") */
    char *content_type;         /* or NULL */
    char *cache_control;        /* or NULL */
    char *content_encoding;     /* or NULL */
    char *content_disposition;  /* or NULL */
    char *version_id;           /* x-amz-version-id, or NULL */
    int64_t last_modified;      /* seconds since the epoch; 0 when absent */
    pier_http_headers metadata; /* x-amz-meta-* with the prefix removed (names
                                   lower-cased, values as sent) */
    pier_http_headers headers;  /* every response header, as received */
} pier_s3_head;

void pier_s3_head_init(pier_s3_head *h);
void pier_s3_head_free(pier_s3_head *h);

/* What an async operation gives its done callback; borrowed for the call. */
typedef struct {
    long status;                                 /* HTTP status of the final response (0: none) */
    int attempts;                                /* attempts of the final request */
    const char *etag;                            /* put, upload, part: ETag without quotes */
    const char *version_id;                      /* put, upload: x-amz-version-id, or NULL */
    const pier_s3_head *head;                    /* head: the object's metadata */
    const struct pier_s3_delete_result *deleted; /* delete batch: per-key outcome */
    const char *upload_id;                       /* multipart create: the UploadId */
    uint32_t part;                               /* upload part: its number */
} pier_s3_result;

/* rc 0 or negative (message set: pier_error_last()). */
typedef void (*pier_s3_done_fn)(void *ctx, int rc, const pier_s3_result *res);

/* HeadObject. PIER_ENOTFOUND when the key (or bucket) does not exist. */
int pier_s3_head_object(pier_s3 *s3, const char *bucket, const char *key, pier_s3_head *out);
int pier_s3_head_object_async(pier_s3 *s3, const char *bucket, const char *key,
                              pier_s3_done_fn done, void *ctx);

/* GetObject into memory: the body is appended to out, whose max caps it
 * (PIER_ETOOBIG past it). head (may be NULL) gets the response's metadata.
 * PIER_ENOTFOUND when there is no such key. */
int pier_s3_get_object(pier_s3 *s3, const char *bucket, const char *key, pier_buf *out,
                       pier_s3_head *head);
/* GetObject into a file (created or truncated; removed again on failure). */
int pier_s3_get_object_file(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                            pier_s3_head *head);

/* How an object is written (PutObject and CreateMultipartUpload). */
typedef struct {
    const char *content_type;         /* NULL: none sent (S3 stores binary/octet-stream) */
    const char *cache_control;        /* NULL: none */
    const char *content_encoding;     /* NULL: none */
    const char *content_disposition;  /* NULL: none */
    const unsigned char *md5;         /* PIER_MD5_LEN bytes of the whole content: sent as
                                         Content-MD5 (PutObject only); NULL: none */
    const pier_http_headers *headers; /* more headers (x-amz-meta-*, x-amz-acl,
                                         x-amz-storage-class ...); NULL: none */
} pier_s3_put_options;

/* clang-format off */
#define PIER_S3_PUT_OPTIONS_INIT {NULL, NULL, NULL, NULL, NULL, NULL}
/* clang-format on */

/* PutObject from a whole file (streamed, at most 5 GiB) or from memory.
 * opts may be NULL. *etag (may be NULL) gets the ETag without quotes. */
int pier_s3_put_file(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                     const pier_s3_put_options *opts, char **etag);
int pier_s3_put_memory(pier_s3 *s3, const char *bucket, const char *key, const void *data, size_t n,
                       const pier_s3_put_options *opts, char **etag);
/* Async PutObject from a file; data of put_memory_async is copied. */
int pier_s3_put_file_async(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                           const pier_s3_put_options *opts, pier_s3_done_fn done, void *ctx);
int pier_s3_put_memory_async(pier_s3 *s3, const char *bucket, const char *key, const void *data,
                             size_t n, const pier_s3_put_options *opts, pier_s3_done_fn done,
                             void *ctx);

/* DeleteObject (no error when the key does not exist, as S3 answers). */
int pier_s3_delete_object(pier_s3 *s3, const char *bucket, const char *key);

/* ---- listing ------------------------------------------------------------ */

/* One object of a listing; borrowed for the callback. */
typedef struct {
    const char *key;           /* full key, bytes as stored */
    uint64_t size;             /* bytes */
    const char *etag;          /* without quotes ("" when the listing had none) */
    int64_t last_modified;     /* seconds since the epoch (0 when unparsable) */
    const char *storage_class; /* "STANDARD" ... or "" */
} pier_s3_object;

/* Called once per object in key order; a non-zero return stops the listing
 * and is returned by pier_s3_list_objects (set the message first). */
typedef int (*pier_s3_list_fn)(void *ctx, const pier_s3_object *obj);

typedef struct {
    const char *prefix;      /* only keys starting with this; NULL: all */
    const char *start_after; /* only keys after this; NULL: from the start */
    int max_keys;            /* keys per page (1..1000); 0: 1000 */
} pier_s3_list_options;

/* clang-format off */
#define PIER_S3_LIST_OPTIONS_INIT {NULL, NULL, 0}
/* clang-format on */

/* ListObjectsV2 over every page (continuation tokens), each page parsed as
 * it streams in: memory stays constant whatever the number of keys. A page
 * that fails mid-stream is retried from its start (objects already
 * delivered from that page are not delivered twice). opts may be NULL. */
int pier_s3_list_objects(pier_s3 *s3, const char *bucket, const pier_s3_list_options *opts,
                         pier_s3_list_fn fn, void *ctx);

/* ---- deleting many ------------------------------------------------------ */

typedef struct {
    char *key;     /* the key S3 could not delete */
    char *code;    /* its error code ("AccessDenied") */
    char *message; /* its message, or NULL */
} pier_s3_delete_error;

typedef struct pier_s3_delete_result {
    size_t deleted;               /* keys deleted (or already absent) */
    pier_s3_delete_error *errors; /* per-key failures, in the order reported */
    size_t error_count;           /* their number */
    size_t error_cap;             /* allocated */
} pier_s3_delete_result;

void pier_s3_delete_result_init(pier_s3_delete_result *r);
void pier_s3_delete_result_free(pier_s3_delete_result *r);

/* DeleteObjects over n keys, in batches of 1,000 (quiet mode, Content-MD5).
 * out (may be NULL) accumulates the outcome. 0 when every key was deleted;
 * PIER_ERR when some keys failed (message: how many, the first key and its
 * code; out lists all); another negative code when a batch request itself
 * failed (keys of the batches not yet sent are left alone). */
int pier_s3_delete_objects(pier_s3 *s3, const char *bucket, const char *const *keys, size_t n,
                           pier_s3_delete_result *out);
/* One batch (n <= 1000) asynchronously; res->deleted has the outcome. rc as
 * for pier_s3_delete_objects. */
int pier_s3_delete_objects_async(pier_s3 *s3, const char *bucket, const char *const *keys, size_t n,
                                 pier_s3_done_fn done, void *ctx);

/* ---- multipart ---------------------------------------------------------- */

typedef struct {
    uint64_t threshold;  /* upload_file: multipart when size > this; 0: 8 MiB */
    uint64_t part_size;  /* 0: 8 MiB, grown so no upload has more than 10,000 parts;
                            at least 5 MiB */
    uint32_t part_count; /* with part_md5: parts expected (must match) */
    const unsigned char (*part_md5)[PIER_MD5_LEN]; /* Content-MD5 of each part (the manifest's;
                                                 copied at submit); NULL: computed, one
                                                 read of each part before it is sent */
    int parallel;                                  /* parts in flight at once; 0: 4 */
} pier_s3_multipart_options;

/* clang-format off */
#define PIER_S3_MULTIPART_OPTIONS_INIT {0, 0, 0, NULL, 0}
/* clang-format on */

/* A part of a multipart upload, for Complete. */
typedef struct {
    uint32_t number;  /* 1..10000 */
    const char *etag; /* as UploadPart returned it (quotes optional) */
} pier_s3_part;

/* CreateMultipartUpload with the object's headers (opts->md5 is ignored).
 * *upload_id belongs to the caller. */
int pier_s3_multipart_create(pier_s3 *s3, const char *bucket, const char *key,
                             const pier_s3_put_options *opts, char **upload_id);
/* UploadPart from a file range; md5 (may be NULL) is sent as Content-MD5. */
int pier_s3_multipart_upload_part(pier_s3 *s3, const char *bucket, const char *key,
                                  const char *upload_id, uint32_t number, const char *path,
                                  uint64_t offset, uint64_t len, const unsigned char *md5,
                                  char **etag);
int pier_s3_multipart_upload_part_async(pier_s3 *s3, const char *bucket, const char *key,
                                        const char *upload_id, uint32_t number, const char *path,
                                        uint64_t offset, uint64_t len, const unsigned char *md5,
                                        pier_s3_done_fn done, void *ctx);
/* CompleteMultipartUpload (parts in ascending number). A 200 whose body is
 * an <Error> is a failure, as S3 documents. */
int pier_s3_multipart_complete(pier_s3 *s3, const char *bucket, const char *key,
                               const char *upload_id, const pier_s3_part *parts, size_t n,
                               char **etag);
int pier_s3_multipart_abort(pier_s3 *s3, const char *bucket, const char *key,
                            const char *upload_id);

/* Uploads a file: one PutObject up to mp->threshold, else multipart (create,
 * parts in parallel with Content-MD5 each, complete; on any failure the
 * upload is aborted and the first error reported). put->md5 is sent for a
 * single PutObject. put and mp may be NULL. */
int pier_s3_upload_file(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                        const pier_s3_put_options *put, const pier_s3_multipart_options *mp,
                        char **etag);
/* The same, asynchronously: done is called once when the object is in
 * place (res->etag) or the upload failed (and was aborted). */
int pier_s3_upload_file_async(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                              const pier_s3_put_options *put, const pier_s3_multipart_options *mp,
                              pier_s3_done_fn done, void *ctx);

/* ---- buckets ------------------------------------------------------------ */

/* CreateBucket (LocationConstraint when the region is not us-east-1).
 * PIER_EEXISTS when the bucket already exists and is yours; PIER_ECONFLICT
 * when someone else owns the name. */
int pier_s3_create_bucket(pier_s3 *s3, const char *bucket);
/* HeadBucket: 0 when it exists and is reachable with these credentials;
 * PIER_ENOTFOUND, PIER_EAUTH, or PIER_EINVALID naming the right region. */
int pier_s3_head_bucket(pier_s3 *s3, const char *bucket);

#endif
