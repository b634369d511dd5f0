/*
 * s3req: one request to the S3 API, shared by the parts of the API
 * (s3api.c: routing, authentication, buckets, listings; s3object.c: objects
 * and multipart uploads). Internal to the stack: nothing outside
 * src/stack/s3*.c includes it.
 *
 * It holds what every operation needs: the parsed target and query, the
 * S3 error document, XML writing, the authorization check, and the body
 * pipeline that streams a request body through the aws-chunked decoder and
 * the declared digests into the store (or an XML buffer), answering only
 * once every digest has been checked.
 *
 * Ownership: a pier_s3req lives in its HTTP request's arena and is cleaned
 * up when the request ends; strings in it are arena memory.
 */
#ifndef PIER_S3REQ_H
#define PIER_S3REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/sigv4.h"
#include "base/buf.h"
#include "base/digest.h"
#include "net/server.h"
#include "stack/s3api.h"
#include "stack/s3chunked.h"
#include "stack/store.h"

#define PIER_S3_NS          "http://s3.amazonaws.com/doc/2006-03-01/"
#define PIER_S3_XML_DECL    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define PIER_S3_MAX_DOMAINS 8

/* The S3 API handler (see s3api.h). */
typedef struct {
    pier_handler base;                  /* must be first */
    pier_store *store;                  /* borrowed */
    char *region;                       /* reported region */
    char *domains[PIER_S3_MAX_DOMAINS]; /* virtual-host base domains */
    size_t domain_count;                /* used */
    pier_s3api_lookup_fn lookup;        /* credentials */
    void *lookup_ctx;                   /* its context */
    uint64_t max_object_size;           /* single PUT / part cap */
} pier_s3api;

typedef struct {
    char *name;  /* decoded */
    char *value; /* decoded, "" when absent */
} pier_s3req_qparam;

/* A checksum a request declared. */
typedef enum {
    PIER_S3_CK_NONE,
    PIER_S3_CK_CRC32,
    PIER_S3_CK_CRC32C,
    PIER_S3_CK_SHA1,
    PIER_S3_CK_SHA256
} pier_s3_ck;

/* Where a request body goes. */
typedef enum {
    PIER_S3_BODY_NONE,
    PIER_S3_BODY_OBJECT, /* r->put, an object */
    PIER_S3_BODY_PART,   /* r->put, a part */
    PIER_S3_BODY_XML     /* r->xml, capped at 4 MiB */
} pier_s3_body;

typedef struct pier_s3req pier_s3req;
/* The operation that runs once the body is in and checked. */
typedef int (*pier_s3_finish_fn)(pier_s3req *r);

struct pier_s3req {
    pier_s3api *api;                      /* the handler */
    pier_server_req *req;                 /* the HTTP request */
    char request_id[17];                  /* x-amz-request-id */
    const char *method;                   /* GET, PUT ... */
    char *bucket;                         /* decoded bucket, "" for the service */
    char *key;                            /* decoded key, "" for none */
    size_t key_len;                       /* its length */
    pier_s3req_qparam *q;                 /* query parameters */
    size_t qn;                            /* their count */
    bool anonymous;                       /* no SigV4 at all */
    bool vhost;                           /* bucket from the Host header */
    bool auth_ready;                      /* auth holds a verified request */
    pier_sigv4_auth auth;                 /* the verification */
    pier_s3api_authorize_fn authorize;    /* the credential's scope check */
    void *authorize_ctx;                  /* its context */
    pier_s3_body kind;                    /* what the body feeds */
    pier_s3_finish_fn finish;             /* the operation, once the body is in */
    pier_store_put *put;                  /* object or part being written */
    pier_s3chunked *chunked;              /* aws-chunked decoder, or NULL */
    bool have_decoded_len;                /* x-amz-decoded-content-length given */
    uint64_t decoded_len;                 /* its value */
    uint64_t received;                    /* decoded body bytes */
    pier_hash *payload_sha;               /* when x-amz-content-sha256 is a hash */
    char payload_sha_want[65];            /* that hash */
    pier_s3_ck ck;                        /* declared checksum */
    const char *ck_want;                  /* its value (header), NULL: from the trailer */
    uint32_t crc;                         /* running CRC */
    pier_hash *ck_hash;                   /* running SHA-1 / SHA-256 */
    char ck_got[64];                      /* computed checksum, base64 */
    bool have_md5;                        /* Content-MD5 given */
    unsigned char md5_want[PIER_MD5_LEN]; /* its value */
    pier_buf xml;                         /* XML request body */
    const char *err_code;                 /* first body error: S3 code */
    char *err_msg;                        /* and message */
    unsigned part_number;                 /* UploadPart */
    const char *upload_id;                /* UploadPart, Complete */
};

/* A request object for req, in its arena, with cleanup registered. */
pier_s3req *pier_s3req_new(pier_s3api *api, pier_server_req *req);

/* ---- answers ---- */

/* Answers with S3's XML error document; the status comes from the code's
 * entry in the table (400 for an unknown code). Returns the respond result. */
int pier_s3req_error(pier_s3req *r, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int pier_s3req_error_status(pier_s3req *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Answers for a failed store call: the code from a "Code: message" error,
 * else one chosen from rc. */
int pier_s3req_store_error(pier_s3req *r, int rc);
/* Answers status with the XML in b (application/xml). */
int pier_s3req_xml(pier_s3req *r, unsigned status, pier_buf *b);
/* Answers status with no body. */
int pier_s3req_empty(pier_s3req *r, unsigned status);
/* Adds x-amz-request-id, x-amz-id-2, Server. */
void pier_s3req_common_headers(pier_s3req *r);

/* ---- the request ---- */

/* A decoded query parameter ("" for a name without value), or NULL. */
const char *pier_s3req_query(const pier_s3req *r, const char *name);
/* Parses the integer parameter name (default and cap def); answers
 * InvalidArgument and returns -1 when it is not a number. */
int pier_s3req_parse_max(pier_s3req *r, const char *name, size_t def, size_t *out);
/* Whether the request may do action on bucket/key: the credential's
 * authorize callback, or for an anonymous request a GET of an object in a
 * public-read bucket. Answers AccessDenied and returns -1 when not. */
int pier_s3req_allow(pier_s3req *r, const char *action, const char *bucket, const char *key);
/* "x-amz-checksum-crc32" ... for a checksum kind ("" for none). */
const char *pier_s3req_ck_name(pier_s3_ck ck);

/* ---- XML ---- */

/* Escaped text; control characters XML 1.0 cannot carry are %-encoded. */
void pier_s3req_xml_text(pier_buf *b, const char *s, size_t n);
void pier_s3req_xml_el(pier_buf *b, const char *name, const char *s);
/* <name>key</name>, URL-encoded when url (encoding-type=url). */
void pier_s3req_xml_key(pier_buf *b, const char *name, const char *s, size_t n, bool url);
/* 2009-10-12T17:50:30.000Z */
void pier_s3req_time(char *out, size_t size, int64_t ms);

/* ---- the body ---- */

/* Reads what the headers say about the body (aws-chunked framing, declared
 * size, x-amz-content-sha256, x-amz-checksum-*, Content-MD5) and streams
 * it into kind's target; finish runs once it is complete and every digest
 * matched (otherwise the error is answered and nothing is committed).
 * Answers and returns -1 when the headers already refuse the body. */
int pier_s3req_body_begin(pier_s3req *r, pier_s3_body kind, pier_s3_finish_fn finish);

#endif
