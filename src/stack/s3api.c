/*
 * s3api: see s3api.h. One request goes through a chain of small steps:
 *
 *   target()       bucket and key from the Host (virtual-hosted) or the path
 *   authenticate() SigV4 over the raw path and query (the one auth step)
 *   allow()        the credential's authorization callback, per action
 *   dispatch()     method + sub-resource -> one operation
 *
 * Operations without a body answer in on_req. Those with one (PutObject,
 * UploadPart, CreateBucket, DeleteObjects, CompleteMultipartUpload) set up
 * a body pipeline and answer in on_end:
 *
 *   network piece -> [aws-chunked decoder] -> sink: SHA-256 (signed hex
 *   payload), x-amz-checksum-* (CRC32/CRC32C/SHA1/SHA256) -> store temp file
 *   or XML buffer
 *
 * Every digest the client declared (Content-MD5, x-amz-content-sha256,
 * x-amz-checksum-* in a header or in the aws-chunked trailer) is checked
 * after the last byte and before the object is committed: a mismatch leaves
 * nothing stored. Objects are never held in memory; XML bodies are capped
 * at 4 MiB.
 *
 * Errors are S3's XML documents; codes come from the store's messages
 * ("NoSuchKey: ...") or are chosen here, and the table below gives each
 * code its HTTP status.
 */
#include "stack/s3api.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/xml.h"
#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/http.h"
#include "stack/s3chunked.h"
#include "stack/s3sigv2.h"

#define XML_BODY_MAX ((size_t)4 << 20)
#define S3_NS        "http://s3.amazonaws.com/doc/2006-03-01/"
#define XML_DECL     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define MAX_DOMAINS  8

typedef struct {
    pier_handler base;           /* must be first */
    pier_store *store;           /* borrowed */
    char *region;                /* reported region */
    char *domains[MAX_DOMAINS];  /* virtual-host base domains */
    size_t domain_count;         /* used */
    pier_s3api_lookup_fn lookup; /* credentials */
    void *lookup_ctx;            /* its context */
    uint64_t max_object_size;    /* single PUT / part cap */
} s3api;

typedef struct {
    char *name;  /* decoded */
    char *value; /* decoded, "" when absent */
} qparam;

typedef enum { CK_NONE, CK_CRC32, CK_CRC32C, CK_SHA1, CK_SHA256 } ck_alg;
static const char *const ck_names[] = {"", "crc32", "crc32c", "sha1", "sha256"};

typedef enum { B_NONE, B_OBJECT, B_PART, B_XML } body_kind;

typedef struct s3req s3req;
typedef int (*finish_fn)(s3req *r);

struct s3req {
    s3api *api;                           /* the handler */
    pier_server_req *req;                 /* the HTTP request */
    char request_id[17];                  /* x-amz-request-id */
    const char *method;                   /* GET, PUT ... */
    char *bucket;                         /* decoded bucket, "" for the service */
    char *key;                            /* decoded key, "" for none */
    size_t key_len;                       /* its length */
    qparam *q;                            /* query parameters */
    size_t qn;                            /* their count */
    bool anonymous;                       /* no SigV4 at all */
    bool vhost;                           /* bucket from the Host header */
    bool auth_ready;                      /* auth holds a verified request */
    pier_sigv4_auth auth;                 /* the verification */
    pier_s3api_authorize_fn authorize;    /* the credential's scope check */
    void *authorize_ctx;                  /* its context */
    body_kind kind;                       /* what the body feeds */
    finish_fn finish;                     /* the operation, once the body is in */
    pier_store_put *put;                  /* object or part being written */
    pier_s3chunked *chunked;              /* aws-chunked decoder, or NULL */
    bool have_decoded_len;                /* x-amz-decoded-content-length given */
    uint64_t decoded_len;                 /* its value */
    uint64_t received;                    /* decoded body bytes */
    pier_hash *payload_sha;               /* when x-amz-content-sha256 is a hash */
    char payload_sha_want[65];            /* that hash */
    ck_alg ck;                            /* declared checksum */
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

/* ---- errors ---- */

static const struct {
    const char *code;
    unsigned status;
} error_table[] = {
    {"AccessDenied", 403},
    {"AuthorizationHeaderMalformed", 400},
    {"AuthorizationQueryParametersError", 400},
    {"BadDigest", 400},
    {"BucketAlreadyExists", 409},
    {"BucketAlreadyOwnedByYou", 409},
    {"BucketNotEmpty", 409},
    {"EntityTooLarge", 400},
    {"EntityTooSmall", 400},
    {"ExpiredToken", 400},
    {"IncompleteBody", 400},
    {"InternalError", 500},
    {"InvalidAccessKeyId", 403},
    {"InvalidArgument", 400},
    {"InvalidBucketName", 400},
    {"InvalidDigest", 400},
    {"InvalidPart", 400},
    {"InvalidPartOrder", 400},
    {"InvalidRange", 416},
    {"InvalidRequest", 400},
    {"InvalidToken", 400},
    {"KeyTooLongError", 400},
    {"MalformedXML", 400},
    {"MethodNotAllowed", 405},
    {"MissingContentLength", 411},
    {"NoSuchBucket", 404},
    {"NoSuchKey", 404},
    {"NoSuchUpload", 404},
    {"NotImplemented", 501},
    {"PreconditionFailed", 412},
    {"RequestTimeTooSkewed", 403},
    {"SignatureDoesNotMatch", 403},
    {"XAmzContentSHA256Mismatch", 400},
};

static unsigned code_status(const char *code)
{
    for (size_t i = 0; i < sizeof error_table / sizeof *error_table; i++)
        if (strcmp(error_table[i].code, code) == 0)
            return error_table[i].status;
    return 400;
}

/* Splits "Code: message" when Code is a known S3 code; else NULL. */
static const char *message_code(const char *msg, const char **rest)
{
    const char *colon = strstr(msg, ": ");
    if (!colon)
        return NULL;
    for (size_t i = 0; i < sizeof error_table / sizeof *error_table; i++) {
        size_t n = strlen(error_table[i].code);
        if ((size_t)(colon - msg) == n && strncmp(msg, error_table[i].code, n) == 0) {
            *rest = colon + 2;
            return error_table[i].code;
        }
    }
    return NULL;
}

static void xml_text(pier_buf *b, const char *s, size_t n)
{
    if (pier_xml_escape(b, s, n) != 0) {
        /* XML 1.0 cannot carry control characters: percent-encode those */
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                pier_buf_printf(b, "%%%02X", c);
            else
                pier_xml_escape(b, s + i, 1);
        }
    }
}

static void xml_el(pier_buf *b, const char *name, const char *s)
{
    pier_buf_printf(b, "<%s>", name);
    xml_text(b, s, strlen(s));
    pier_buf_printf(b, "</%s>", name);
}

static void common_headers(s3req *r)
{
    pier_server_resp_header(r->req, "x-amz-request-id", r->request_id);
    pier_server_resp_header(r->req, "x-amz-id-2", r->request_id);
    pier_server_resp_header(r->req, "Server", "pier");
}

static int send_error_status(s3req *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int send_error_status(s3req *r, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<Error>");
    xml_el(&b, "Code", code);
    xml_el(&b, "Message", msg);
    if (r->bucket && r->bucket[0])
        xml_el(&b, "BucketName", r->bucket);
    if (r->key && r->key_len) {
        pier_buf_puts(&b, "<Key>");
        xml_text(&b, r->key, r->key_len);
        pier_buf_puts(&b, "</Key>");
    }
    pier_slice path = pier_server_req_raw_path(r->req);
    pier_buf_puts(&b, "<Resource>");
    xml_text(&b, path.ptr, path.len);
    pier_buf_puts(&b, "</Resource>");
    xml_el(&b, "RequestId", r->request_id);
    xml_el(&b, "HostId", r->request_id);
    pier_buf_puts(&b, "</Error>\n");
    PIER_DEBUG("s3: %s %s -> %u %s: %s", r->method, pier_server_req_raw_uri(r->req), status, code,
               msg);
    common_headers(r);
    pier_server_resp_header(r->req, "Content-Type", "application/xml");
    int rc = pier_server_respond_mem(r->req, status, b.ptr, b.len);
    pier_buf_free(&b);
    return rc;
}

#define send_error(r, code, ...) send_error_status((r), code_status(code), (code), __VA_ARGS__)

/* Answers for a failed store call (or any call that set "Code: message"). */
static int send_store_error(s3req *r, int rc)
{
    const char *rest = NULL;
    const char *msg = pier_error_last();
    const char *code = message_code(msg, &rest);
    if (code)
        return send_error(r, code, "%s", rest);
    switch (rc) {
    case PIER_ENOTFOUND:
        return send_error(r, "NoSuchKey", "%s", msg);
    case PIER_EEXISTS:
        return send_error(r, "BucketAlreadyOwnedByYou", "%s", msg);
    case PIER_ECONFLICT:
        return send_error(r, "BucketNotEmpty", "%s", msg);
    case PIER_EINVALID:
        return send_error(r, "InvalidArgument", "%s", msg);
    case PIER_ETOOBIG:
        return send_error(r, "EntityTooLarge", "%s", msg);
    default:
        PIER_WARN("s3: %s %s: %s", r->method, pier_server_req_raw_uri(r->req), msg);
        return send_error(r, "InternalError", "%s", msg);
    }
}

static int send_xml(s3req *r, unsigned status, pier_buf *b)
{
    common_headers(r);
    pier_server_resp_header(r->req, "Content-Type", "application/xml");
    return pier_server_respond_mem(r->req, status, b->ptr, b->len);
}

static int send_empty(s3req *r, unsigned status)
{
    common_headers(r);
    return pier_server_respond_mem(r->req, status, "", 0);
}

/* ---- request parsing ---- */

static const char *qget(const s3req *r, const char *name)
{
    for (size_t i = 0; i < r->qn; i++)
        if (strcmp(r->q[i].name, name) == 0)
            return r->q[i].value;
    return NULL;
}

static char *decode(s3req *r, const char *s, size_t n, bool plus_space)
{
    pier_buf b = PIER_BUF_INIT;
    char *out;
    if (pier_uri_decode(&b, s, n, plus_space) != 0)
        out = NULL;
    else
        out = pier_server_req_strndup(r->req, b.ptr ? b.ptr : "", b.len);
    pier_buf_free(&b);
    return out;
}

static int parse_query(s3req *r)
{
    pier_slice q = pier_server_req_raw_query(r->req);
    size_t cap = 0;
    const char *p = q.ptr, *end = q.ptr + q.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop > p) {
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            const char *name_end = eq ? eq : stop;
            if (r->qn == cap) {
                cap = cap ? cap * 2 : 16;
                qparam *n = pier_server_req_alloc(r->req, cap * sizeof *n);
                if (r->qn)
                    memcpy(n, r->q, r->qn * sizeof *n);
                r->q = n;
            }
            r->q[r->qn].name = decode(r, p, (size_t)(name_end - p), true);
            r->q[r->qn].value = eq ? decode(r, eq + 1, (size_t)(stop - eq - 1), true) : "";
            if (!r->q[r->qn].name || !r->q[r->qn].value)
                return send_error(r, "InvalidArgument", "bad percent-encoding in the query");
            r->qn++;
        }
        p = stop + 1;
    }
    return 0;
}

/* The bucket from a virtual-hosted Host header, or NULL for path style. */
static char *host_bucket(s3req *r)
{
    const char *host = pier_server_req_header(r->req, "Host");
    if (!host || host[0] == '[')
        return NULL;
    size_t n = strlen(host);
    const char *colon = strrchr(host, ':');
    if (colon)
        n = (size_t)(colon - host);
    for (size_t i = 0; i < r->api->domain_count; i++) /* the service host itself */
        if (strlen(r->api->domains[i]) == n && strncasecmp(host, r->api->domains[i], n) == 0)
            return NULL;
    for (size_t i = 0; i < r->api->domain_count; i++) {
        const char *d = r->api->domains[i];
        size_t dl = strlen(d);
        if (n > dl + 1 && host[n - dl - 1] == '.' && strncasecmp(host + n - dl, d, dl) == 0) {
            char *b = pier_server_req_strndup(r->req, host, n - dl - 1);
            for (char *p = b; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            return b;
        }
    }
    return NULL;
}

/* Sets r->bucket and r->key. */
static int target(s3req *r)
{
    pier_slice path = pier_server_req_raw_path(r->req);
    const char *p = path.ptr, *end = path.ptr + path.len;
    if (p < end && *p == '/')
        p++;
    char *vb = host_bucket(r);
    if (vb) {
        r->bucket = vb;
        r->vhost = true;
    } else {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *bend = slash ? slash : end;
        r->bucket = decode(r, p, (size_t)(bend - p), false);
        if (!r->bucket)
            return send_error(r, "InvalidBucketName", "bad percent-encoding in the bucket name");
        p = slash ? slash + 1 : end;
    }
    pier_buf k = PIER_BUF_INIT;
    pier_buf_init(&k, 4 * PIER_STORE_KEY_MAX);
    if (pier_uri_decode(&k, p, (size_t)(end - p), false) != 0) {
        pier_buf_free(&k);
        return send_error(r, "InvalidArgument", "bad percent-encoding in the key");
    }
    r->key = pier_server_req_strndup(r->req, k.ptr ? k.ptr : "", k.len);
    r->key_len = k.len;
    pier_buf_free(&k);
    return 0;
}

/* ---- authentication and authorization ---- */

static int lookup_wrap(void *ctx, const char *access_key_id, pier_sigv4_secret *out)
{
    s3req *r = ctx;
    return r->api->lookup(r->api->lookup_ctx, access_key_id, out, &r->authorize, &r->authorize_ctx);
}

/* Signature Version 2 (Authorization "AWS id:sig", or a presigned URL with
 * AWSAccessKeyId, Signature and Expires): legacy clients. Same contract as
 * authenticate(). */
static int authenticate_v2(s3req *r, const pier_http_headers *headers)
{
    const char *auth = pier_server_req_header(r->req, "Authorization");
    bool presigned = !auth || strncmp(auth, "AWS ", 4) != 0;
    char akid[PIER_SIGV4_KEY_ID_MAX + 1] = "";
    const char *sig = NULL, *expires = NULL;
    if (presigned) {
        snprintf(akid, sizeof akid, "%s", qget(r, "AWSAccessKeyId"));
        sig = qget(r, "Signature");
        expires = qget(r, "Expires");
    } else {
        const char *colon = strrchr(auth + 4, ':');
        if (colon && (size_t)(colon - auth - 4) < sizeof akid) {
            snprintf(akid, sizeof akid, "%.*s", (int)(colon - auth - 4), auth + 4);
            sig = colon + 1;
        }
    }
    if (!akid[0] || !sig || (presigned && !expires)) {
        send_error(r, presigned ? "AuthorizationQueryParametersError" : "InvalidArgument",
                   "Signature Version 2 authorization is incomplete");
        return -1;
    }
    time_t now = time(NULL), t = 0;
    const char *date_line = "";
    if (presigned) {
        uint64_t e = 0;
        if (pier_parse_u64(expires, &e) != 0 || (time_t)e < now) {
            send_error(r, "AccessDenied", "Request has expired");
            return -1;
        }
        date_line = expires;
    } else {
        const char *amz_date = pier_server_req_header(r->req, "x-amz-date");
        const char *date = pier_server_req_header(r->req, "Date");
        if (!amz_date)
            date_line = date ? date : "";
        const char *when = amz_date ? amz_date : date;
        if (!when || pier_time_parse(when, &t) != 0) {
            send_error(r, "AccessDenied",
                       "AWS authentication requires a valid Date or "
                       "x-amz-date header");
            return -1;
        }
        if (t < now - PIER_SIGV4_MAX_SKEW || t > now + PIER_SIGV4_MAX_SKEW) {
            char nowbuf[32];
            pier_time_iso8601(nowbuf, sizeof nowbuf, now);
            send_error(r, "RequestTimeTooSkewed",
                       "The difference between the request time and the server's time (%s) "
                       "is too large.",
                       nowbuf);
            return -1;
        }
    }
    pier_sigv4_secret sec;
    pier_buf_init(&sec.secret, 4096);
    pier_buf_init(&sec.session_token, 16384);
    sec.expired = false;
    int rc = r->api->lookup(r->api->lookup_ctx, akid, &sec, &r->authorize, &r->authorize_ctx);
    int out = -1;
    pier_buf sts = PIER_BUF_INIT, resource = PIER_BUF_INIT;
    if (rc == PIER_ENOTFOUND) {
        send_error(r, "InvalidAccessKeyId",
                   "The AWS Access Key Id you provided does not exist in our records.");
        goto done;
    }
    if (rc) {
        send_error(r, "InternalError", "%s", pier_error_last());
        goto done;
    }
    if (sec.expired) {
        send_error(r, "ExpiredToken", "The provided token has expired.");
        goto done;
    }
    if (sec.session_token.len) {
        const char *tok = pier_server_req_header(r->req, "x-amz-security-token");
        if (!tok)
            tok = qget(r, "x-amz-security-token");
        if (!tok || !pier_ct_streq(tok, pier_buf_cstr(&sec.session_token))) {
            send_error(r, "InvalidToken", "The provided token is malformed or otherwise invalid.");
            goto done;
        }
    }
    if (r->vhost)
        pier_buf_printf(&resource, "/%s", r->bucket);
    pier_slice path = pier_server_req_raw_path(r->req);
    pier_slice query = pier_server_req_raw_query(r->req);
    pier_buf_put_slice(&resource, path);
    char *q = pier_server_req_strndup(r->req, query.ptr, query.len);
    pier_s3sigv2_string_to_sign(&sts, r->method, pier_buf_cstr(&resource), q, headers, date_line);
    char want[32];
    pier_s3sigv2_sign(want, pier_buf_cstr(&sec.secret), pier_buf_cstr(&sts), sts.len);
    if (!pier_ct_streq(want, sig) && r->key_len == 0 && resource.len &&
        resource.ptr[resource.len - 1] != '/') {
        /* a bucket-level resource is signed as "/bucket" or "/bucket/"
         * depending on the client */
        pier_buf_putc(&resource, '/');
        pier_buf_reset(&sts);
        pier_s3sigv2_string_to_sign(&sts, r->method, pier_buf_cstr(&resource), q, headers,
                                    date_line);
        pier_s3sigv2_sign(want, pier_buf_cstr(&sec.secret), pier_buf_cstr(&sts), sts.len);
    }
    if (!pier_ct_streq(want, sig)) {
        send_error(r, "SignatureDoesNotMatch",
                   "The request signature we calculated does not match the signature you "
                   "provided. Check your key and signing method.");
        goto done;
    }
    out = 0;
done:
    pier_buf_free(&sec.secret);
    pier_buf_free(&sec.session_token);
    pier_buf_free(&sts);
    pier_buf_free(&resource);
    return out;
}

/* The one authentication step: SigV4 over the request as received. 0 when
 * the request may go on (signed and valid, or anonymous: r->anonymous);
 * otherwise the error is answered and -1 returned. */
static int authenticate(s3req *r)
{
    pier_http_headers headers = {0};
    for (size_t i = 0; i < pier_server_req_header_count(r->req); i++) {
        const char *n, *v;
        pier_server_req_header_at(r->req, i, &n, &v);
        pier_http_headers_add(&headers, n, v);
    }
    pier_slice path = pier_server_req_raw_path(r->req);
    pier_slice query = pier_server_req_raw_query(r->req);
    char *path_s = pier_server_req_strndup(r->req, path.ptr, path.len);
    char *query_s = pier_server_req_strndup(r->req, query.ptr, query.len);
    const char *authz = pier_server_req_header(r->req, "Authorization");
    if ((authz && strncmp(authz, "AWS ", 4) == 0) ||
        (!authz && qget(r, "AWSAccessKeyId") && qget(r, "Signature"))) {
        int rc = authenticate_v2(r, &headers);
        pier_http_headers_free(&headers);
        return rc;
    }
    pier_sigv4_request sreq = {
        .method = r->method,
        .host = pier_server_req_header(r->req, "Host"),
        .path = path_s[0] ? path_s : "/",
        .query = query_s,
        .headers = &headers,
        .payload_hash = NULL,
    };
    pier_sigv4_verify_options vo = {
        .sig = PIER_SIGV4_OPTIONS_S3_INIT,
        .lookup = lookup_wrap,
        .lookup_ctx = r,
        .max_skew = 0,
    };
    vo.sig.region = NULL; /* a local store answers to any region */
    pier_sigv4_auth_init(&r->auth);
    r->auth_ready = true;
    int rc = pier_sigv4_verify(&r->auth, &sreq, time(NULL), &vo);
    pier_http_headers_free(&headers);
    if (rc == 0)
        return 0;
    if (r->auth.status == PIER_SIGV4_MISSING) {
        r->anonymous = true;
        r->authorize = NULL;
        return 0;
    }
    int http = 403;
    const char *code = pier_sigv4_status_code(r->auth.status, r->auth.presigned, &http);
    if (!code)
        code = "AccessDenied";
    if (r->auth.status == PIER_SIGV4_SKEWED) {
        char now[32];
        pier_time_iso8601(now, sizeof now, time(NULL));
        send_error_status(r, (unsigned)http, code,
                          "The difference between the request time and the server's time "
                          "(%s) is too large.",
                          now);
        return -1;
    }
    send_error_status(r, (unsigned)http, code, "%s", pier_error_last());
    return -1;
}

/* Asks whether the request may do action on bucket/key; answers
 * AccessDenied and returns -1 when not. */
static int allow(s3req *r, const char *action, const char *bucket, const char *key)
{
    if (r->anonymous) {
        pier_store_bucket info;
        if (strcmp(action, "s3:GetObject") == 0 && bucket[0] &&
            pier_store_bucket_head(r->api->store, bucket, &info) == 0 && info.public_read)
            return 0;
        send_error(r, "AccessDenied", "Access Denied (the request is not signed)");
        return -1;
    }
    if (r->authorize && r->authorize(r->authorize_ctx, action, bucket, key) != 0) {
        send_error(r, "AccessDenied", "Access Denied: %s on %s%s%s is not allowed for this key",
                   action, bucket, key[0] ? "/" : "", key);
        return -1;
    }
    return 0;
}

/* ---- formatting ---- */

static void time_ms_iso(char *out, size_t size, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03dZ", base, (int)(ms % 1000));
}

static void key_el(pier_buf *b, const char *name, const char *s, size_t n, bool url)
{
    pier_buf_printf(b, "<%s>", name);
    if (url) {
        pier_buf enc = PIER_BUF_INIT;
        pier_uri_encode(&enc, s, n, true);
        pier_buf_put_slice(b, pier_buf_slice(&enc));
        pier_buf_free(&enc);
    } else {
        xml_text(b, s, n);
    }
    pier_buf_printf(b, "</%s>", name);
}

/* ---- service and bucket operations ---- */

static int list_buckets(s3req *r)
{
    if (allow(r, "s3:ListAllMyBuckets", "", ""))
        return 0;
    pier_store_bucket *list = NULL;
    size_t n = 0;
    pier_store_bucket_list(r->api->store, &list, &n);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<ListAllMyBucketsResult xmlns=\"" S3_NS "\">"
                               "<Owner><ID>pier</ID><DisplayName>pier</DisplayName></Owner>"
                               "<Buckets>");
    for (size_t i = 0; i < n; i++) {
        char t[40];
        time_ms_iso(t, sizeof t, list[i].created_ms);
        pier_buf_puts(&b, "<Bucket>");
        xml_el(&b, "Name", list[i].name);
        xml_el(&b, "CreationDate", t);
        pier_buf_puts(&b, "</Bucket>");
    }
    pier_buf_puts(&b, "</Buckets></ListAllMyBucketsResult>\n");
    free(list);
    int rc = send_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

static int create_bucket_finish(s3req *r)
{
    int rc = pier_store_bucket_create(r->api->store, r->bucket);
    if (rc == PIER_EEXISTS)
        return send_error(r, "BucketAlreadyOwnedByYou",
                          "Your previous request to create the named bucket succeeded and you "
                          "already own it.");
    if (rc)
        return send_store_error(r, rc);
    if (pier_str_ieq(pier_server_req_header(r->req, "x-amz-acl")
                         ? pier_server_req_header(r->req, "x-amz-acl")
                         : "",
                     "public-read") &&
        (rc = pier_store_bucket_set_public(r->api->store, r->bucket, true)) != 0)
        return send_store_error(r, rc);
    char loc[80];
    snprintf(loc, sizeof loc, "/%s", r->bucket);
    pier_server_resp_header(r->req, "Location", loc);
    return send_empty(r, 200);
}

static int delete_bucket(s3req *r)
{
    if (allow(r, "s3:DeleteBucket", r->bucket, ""))
        return 0;
    int rc = pier_store_bucket_delete(r->api->store, r->bucket);
    if (rc == PIER_ECONFLICT)
        return send_error(r, "BucketNotEmpty", "The bucket you tried to delete is not empty");
    if (rc)
        return send_store_error(r, rc);
    return send_empty(r, 204);
}

static int head_bucket(s3req *r)
{
    if (allow(r, "s3:ListBucket", r->bucket, ""))
        return 0;
    int rc = pier_store_bucket_head(r->api->store, r->bucket, NULL);
    if (rc)
        return send_store_error(r, rc);
    pier_server_resp_header(r->req, "x-amz-bucket-region", r->api->region);
    return send_empty(r, 200);
}

static int bucket_location(s3req *r)
{
    if (allow(r, "s3:GetBucketLocation", r->bucket, ""))
        return 0;
    int rc = pier_store_bucket_head(r->api->store, r->bucket, NULL);
    if (rc)
        return send_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<LocationConstraint xmlns=\"" S3_NS "\">");
    if (strcmp(r->api->region, "us-east-1") != 0)
        xml_text(&b, r->api->region, strlen(r->api->region));
    pier_buf_puts(&b, "</LocationConstraint>\n");
    rc = send_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

/* The canned ACL named by x-amz-acl: 1 public-read, 0 private (or none),
 * -1 another (answered NotImplemented). */
static int canned_acl(s3req *r)
{
    const char *acl = pier_server_req_header(r->req, "x-amz-acl");
    if (!acl || strcmp(acl, "private") == 0)
        return 0;
    if (strcmp(acl, "public-read") == 0)
        return 1;
    send_error(r, "NotImplemented", "x-amz-acl %s is not supported (private or public-read)", acl);
    return -1;
}

static int bucket_acl(s3req *r)
{
    if (allow(r, "s3:GetBucketAcl", r->bucket, ""))
        return 0;
    pier_store_bucket info;
    int rc = pier_store_bucket_head(r->api->store, r->bucket, &info);
    if (rc)
        return send_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<AccessControlPolicy xmlns=\"" S3_NS "\">"
                               "<Owner><ID>pier</ID><DisplayName>pier</DisplayName></Owner>"
                               "<AccessControlList><Grant><Grantee "
                               "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                               "xsi:type=\"CanonicalUser\"><ID>pier</ID><DisplayName>pier"
                               "</DisplayName></Grantee><Permission>FULL_CONTROL</Permission>"
                               "</Grant>");
    if (info.public_read)
        pier_buf_puts(&b, "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                          "xsi:type=\"Group\"><URI>http://acs.amazonaws.com/groups/global/AllUsers"
                          "</URI></Grantee><Permission>READ</Permission></Grant>");
    pier_buf_puts(&b, "</AccessControlList></AccessControlPolicy>\n");
    rc = send_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

/* PutBucketAcl with a canned ACL header: public-read lets anyone GET and
 * HEAD the bucket's objects; private takes that back. */
static int put_bucket_acl(s3req *r)
{
    if (allow(r, "s3:PutBucketAcl", r->bucket, ""))
        return 0;
    if (!pier_server_req_header(r->req, "x-amz-acl"))
        return send_error(r, "NotImplemented",
                          "only canned ACLs in x-amz-acl (private, public-read) are supported");
    int pub = canned_acl(r);
    if (pub < 0)
        return 0;
    int rc = pier_store_bucket_set_public(r->api->store, r->bucket, pub == 1);
    if (rc)
        return send_store_error(r, rc);
    return send_empty(r, 200);
}

static int parse_max(s3req *r, const char *name, size_t def, size_t *out)
{
    const char *v = qget(r, name);
    uint64_t n = def;
    if (v && (pier_parse_u64(v, &n) != 0)) {
        send_error(r, "InvalidArgument", "%s must be a non-negative integer", name);
        return -1;
    }
    *out = n > def ? def : (size_t)n;
    return 0;
}

static int list_objects(s3req *r, bool v2)
{
    if (allow(r, "s3:ListBucket", r->bucket, ""))
        return 0;
    const char *prefix = qget(r, "prefix");
    const char *delim = qget(r, "delimiter");
    const char *enc = qget(r, "encoding-type");
    const char *token = v2 ? qget(r, "continuation-token") : NULL;
    const char *start_after = v2 ? qget(r, "start-after") : qget(r, "marker");
    bool url = false;
    size_t max;
    if (parse_max(r, "max-keys", 1000, &max))
        return 0;
    if (enc) {
        if (strcmp(enc, "url") != 0)
            return send_error(r, "InvalidArgument", "Invalid Encoding Method specified in Request");
        url = true;
    }
    pier_buf tok = PIER_BUF_INIT;
    pier_store_list_options o = {
        .prefix = prefix,
        .prefix_len = prefix ? strlen(prefix) : 0,
        .delimiter = delim && delim[0] ? delim : NULL,
        .delimiter_len = delim ? strlen(delim) : 0,
        .start_after = start_after,
        .start_after_len = start_after ? strlen(start_after) : 0,
        .max_keys = max,
    };
    if (token) {
        if (pier_base64_decode(&tok, token, strlen(token)) != 0 || tok.len == 0) {
            pier_buf_free(&tok);
            return send_error(r, "InvalidArgument", "The continuation token provided is incorrect");
        }
        o.start_after = tok.ptr;
        o.start_after_len = tok.len;
    }
    pier_store_list_result res;
    int rc = pier_store_list(r->api->store, r->bucket, &o, &res);
    pier_buf_free(&tok);
    if (rc)
        return send_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_init(&b, (size_t)256 << 20);
    pier_buf_puts(&b, XML_DECL "<ListBucketResult xmlns=\"" S3_NS "\">");
    xml_el(&b, "Name", r->bucket);
    key_el(&b, "Prefix", prefix ? prefix : "", o.prefix_len, url);
    if (v2) {
        pier_buf_printf(&b, "<KeyCount>%zu</KeyCount>", res.object_count + res.prefix_count);
        if (token)
            xml_el(&b, "ContinuationToken", token);
        if (start_after)
            key_el(&b, "StartAfter", start_after, strlen(start_after), url);
    } else {
        key_el(&b, "Marker", start_after ? start_after : "", o.start_after_len, url);
    }
    pier_buf_printf(&b, "<MaxKeys>%zu</MaxKeys>", max);
    if (o.delimiter)
        key_el(&b, "Delimiter", delim, o.delimiter_len, url);
    if (url)
        pier_buf_puts(&b, "<EncodingType>url</EncodingType>");
    pier_buf_printf(&b, "<IsTruncated>%s</IsTruncated>", res.truncated ? "true" : "false");
    if (res.truncated && res.last) {
        if (v2) {
            pier_buf t = PIER_BUF_INIT;
            pier_base64_encode(&t, res.last, res.last_len);
            xml_el(&b, "NextContinuationToken", t.ptr);
            pier_buf_free(&t);
        } else {
            key_el(&b, "NextMarker", res.last, res.last_len, url);
        }
    }
    for (size_t i = 0; i < res.object_count; i++) {
        pier_store_entry *e = &res.objects[i];
        char t[40];
        time_ms_iso(t, sizeof t, e->mtime_ms);
        pier_buf_puts(&b, "<Contents>");
        key_el(&b, "Key", e->key, e->key_len, url);
        pier_buf_printf(&b,
                        "<LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag>"
                        "<Size>%llu</Size><StorageClass>STANDARD</StorageClass>",
                        t, e->etag, (unsigned long long)e->size);
        if (!v2 || qget(r, "fetch-owner"))
            pier_buf_puts(&b, "<Owner><ID>pier</ID><DisplayName>pier</DisplayName></Owner>");
        pier_buf_puts(&b, "</Contents>");
    }
    for (size_t i = 0; i < res.prefix_count; i++) {
        pier_buf_puts(&b, "<CommonPrefixes>");
        key_el(&b, "Prefix", res.prefixes[i], res.prefix_lens[i], url);
        pier_buf_puts(&b, "</CommonPrefixes>");
    }
    pier_buf_puts(&b, "</ListBucketResult>\n");
    pier_store_list_result_clear(&res);
    rc = send_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

static int list_uploads(s3req *r)
{
    if (allow(r, "s3:ListBucketMultipartUploads", r->bucket, ""))
        return 0;
    const char *prefix = qget(r, "prefix");
    size_t plen = prefix ? strlen(prefix) : 0;
    pier_store_upload *u = NULL;
    size_t n = 0;
    int rc = pier_store_upload_list(r->api->store, r->bucket, &u, &n);
    if (rc)
        return send_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<ListMultipartUploadsResult xmlns=\"" S3_NS "\">");
    xml_el(&b, "Bucket", r->bucket);
    pier_buf_puts(&b, "<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
                      "<NextKeyMarker></NextKeyMarker><NextUploadIdMarker></NextUploadIdMarker>");
    if (prefix)
        xml_el(&b, "Prefix", prefix);
    pier_buf_puts(&b, "<MaxUploads>10000</MaxUploads><IsTruncated>false</IsTruncated>");
    for (size_t i = 0; i < n; i++) {
        if (plen && (u[i].key_len < plen || memcmp(u[i].key, prefix, plen) != 0))
            continue;
        char t[40];
        time_ms_iso(t, sizeof t, u[i].initiated_ms);
        pier_buf_puts(&b, "<Upload>");
        key_el(&b, "Key", u[i].key, u[i].key_len, false);
        xml_el(&b, "UploadId", u[i].upload_id);
        pier_buf_puts(&b, "<Initiator><ID>pier</ID><DisplayName>pier</DisplayName></Initiator>"
                          "<Owner><ID>pier</ID><DisplayName>pier</DisplayName></Owner>"
                          "<StorageClass>STANDARD</StorageClass>");
        xml_el(&b, "Initiated", t);
        pier_buf_puts(&b, "</Upload>");
    }
    pier_buf_puts(&b, "</ListMultipartUploadsResult>\n");
    pier_store_upload_list_free(u, n);
    rc = send_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

/* ---- object metadata ---- */

static const char *const stored_headers[] = {
    "Content-Type",
    "Cache-Control",
    "Content-Disposition",
    "Content-Language",
    "Expires",
    "Content-Encoding",
    "x-amz-website-redirect-location",
};

/* Metadata to keep from the request's headers into *out (arena). */
static void request_metadata(s3req *r, pier_store_header **out, size_t *count)
{
    size_t n = pier_server_req_header_count(r->req);
    pier_store_header *h = pier_server_req_alloc(r->req, (n + 8) * sizeof *h);
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        pier_server_req_header_at(r->req, i, &name, &value);
        bool keep = strncasecmp(name, "x-amz-meta-", 11) == 0;
        for (size_t j = 0; !keep && j < sizeof stored_headers / sizeof *stored_headers; j++)
            keep = pier_str_ieq(name, stored_headers[j]);
        if (!keep)
            continue;
        if (pier_str_ieq(name, "Content-Encoding")) {
            /* aws-chunked is the transfer framing, not the object's encoding */
            pier_buf e = PIER_BUF_INIT;
            char *copy = pier_strdup(value), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                pier_slice s = pier_slice_trim(pier_slice_from(t));
                if (s.len == 0 || pier_slice_ieq_cstr(s, "aws-chunked"))
                    continue;
                if (e.len)
                    pier_buf_putc(&e, ',');
                pier_buf_put_slice(&e, s);
            }
            free(copy);
            bool empty = e.len == 0;
            if (!empty)
                value = pier_server_req_strndup(r->req, e.ptr, e.len);
            pier_buf_free(&e);
            if (empty)
                continue;
        }
        char *lname = pier_server_req_strndup(r->req, name, strlen(name));
        for (char *p = lname; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        h[c].name = lname;
        h[c].value = (char *)value;
        c++;
    }
    *out = h;
    *count = c;
}

static bool is_checksum_header(const char *name)
{
    return strncasecmp(name, "x-amz-checksum-", 15) == 0;
}

/* A stored (lower-case) header name as HTTP writes it: "Content-Type";
 * x-amz-* names stay lower-case, as S3 sends them. Arena memory. */
static const char *header_case(s3req *r, const char *name)
{
    if (strncmp(name, "x-amz-", 6) == 0)
        return name;
    char *out = pier_server_req_strndup(r->req, name, strlen(name));
    bool up = true;
    for (char *p = out; *p; p++) {
        if (up)
            *p = (char)toupper((unsigned char)*p);
        up = *p == '-';
    }
    return out;
}

/* Object headers for GET/HEAD: stored metadata, ETag, dates, overrides. */
static void object_headers(s3req *r, const pier_store_meta *m, bool full)
{
    char etag[PIER_STORE_ETAG_MAX + 2], date[64];
    snprintf(etag, sizeof etag, "\"%s\"", m->etag);
    pier_time_http(date, sizeof date, (time_t)(m->mtime_ms / 1000));
    static const struct {
        const char *param, *header;
    } overrides[] = {
        {"response-content-type", "Content-Type"},
        {"response-content-language", "Content-Language"},
        {"response-expires", "Expires"},
        {"response-cache-control", "Cache-Control"},
        {"response-content-disposition", "Content-Disposition"},
        {"response-content-encoding", "Content-Encoding"},
    };
    bool have_type = false;
    for (size_t i = 0; i < m->header_count; i++) {
        const char *name = m->headers[i].name;
        bool overridden = false;
        for (size_t j = 0; j < sizeof overrides / sizeof *overrides; j++)
            if (pier_str_ieq(name, overrides[j].header) && qget(r, overrides[j].param))
                overridden = true;
        if (overridden || (is_checksum_header(name) && !full))
            continue;
        if (pier_str_ieq(name, "content-type"))
            have_type = true;
        pier_server_resp_header(r->req, header_case(r, name), m->headers[i].value);
    }
    for (size_t j = 0; j < sizeof overrides / sizeof *overrides; j++) {
        const char *v = qget(r, overrides[j].param);
        if (v) {
            pier_server_resp_header(r->req, overrides[j].header, v);
            if (j == 0)
                have_type = true;
        }
    }
    if (!have_type)
        pier_server_resp_header(r->req, "Content-Type", "binary/octet-stream");
    pier_server_resp_header(r->req, "ETag", etag);
    pier_server_resp_header(r->req, "Last-Modified", date);
    pier_server_resp_header(r->req, "Accept-Ranges", "bytes");
    const char *dash = strchr(m->etag, '-');
    if (dash)
        pier_server_resp_header(r->req, "x-amz-mp-parts-count", dash + 1);
}

/* True when etag matches one entry of an If-Match / If-None-Match list. */
static bool etag_in_list(const char *list, const char *etag)
{
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        pier_slice t = pier_slice_trim((pier_slice){start, (size_t)(p - start)});
        if (pier_slice_starts_with(t, "W/")) {
            t.ptr += 2;
            t.len -= 2;
        }
        if (t.len >= 2 && t.ptr[0] == '"' && t.ptr[t.len - 1] == '"') {
            t.ptr++;
            t.len -= 2;
        }
        if (pier_slice_eq_cstr(t, "*") || pier_slice_eq_cstr(t, etag))
            return true;
    }
    return false;
}

/* 0 to go on; 304 or 412 when a precondition decides. */
static unsigned preconditions(s3req *r, const pier_store_meta *m)
{
    const char *im = pier_server_req_header(r->req, "If-Match");
    const char *inm = pier_server_req_header(r->req, "If-None-Match");
    const char *ims = pier_server_req_header(r->req, "If-Modified-Since");
    const char *ius = pier_server_req_header(r->req, "If-Unmodified-Since");
    time_t mtime = (time_t)(m->mtime_ms / 1000), t;
    if (im) {
        if (!etag_in_list(im, m->etag))
            return 412;
    } else if (ius && pier_time_parse(ius, &t) == 0 && mtime > t) {
        return 412;
    }
    if (inm) {
        if (etag_in_list(inm, m->etag))
            return 304;
    } else if (ims && pier_time_parse(ims, &t) == 0 && mtime <= t) {
        return 304;
    }
    return 0;
}

/* Parses a single "bytes=" range against size. 0: no usable range (serve
 * all); 1: *start..*end inclusive; -1: unsatisfiable. */
static int parse_range(const char *h, uint64_t size, uint64_t *start, uint64_t *end)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0;
    const char *spec = h + 6;
    const char *dash = strchr(spec, '-');
    if (!dash)
        return 0;
    char a[32], b[32];
    if ((size_t)(dash - spec) >= sizeof a || strlen(dash + 1) >= sizeof b)
        return 0;
    snprintf(a, sizeof a, "%.*s", (int)(dash - spec), spec);
    snprintf(b, sizeof b, "%s", dash + 1);
    uint64_t x = 0, y = 0;
    if (a[0] == '\0') {
        if (pier_parse_u64(b, &y) != 0)
            return 0;
        if (y == 0 || size == 0)
            return -1;
        *start = y >= size ? 0 : size - y;
        *end = size - 1;
        return 1;
    }
    if (pier_parse_u64(a, &x) != 0)
        return 0;
    if (b[0] == '\0')
        y = UINT64_MAX;
    else if (pier_parse_u64(b, &y) != 0 || y < x)
        return 0;
    if (x >= size)
        return -1;
    *start = x;
    *end = y >= size ? size - 1 : y;
    return 1;
}

static int get_object(s3req *r, bool head)
{
    if (allow(r, "s3:GetObject", r->bucket, r->key))
        return 0;
    int fd = -1;
    pier_store_meta m;
    int rc = pier_store_get(r->api->store, r->bucket, r->key, r->key_len, &fd, &m);
    if (rc)
        return send_store_error(r, rc);
    unsigned pre = preconditions(r, &m);
    if (pre == 304) {
        char etag[PIER_STORE_ETAG_MAX + 2], date[64];
        snprintf(etag, sizeof etag, "\"%s\"", m.etag);
        pier_time_http(date, sizeof date, (time_t)(m.mtime_ms / 1000));
        pier_server_resp_header(r->req, "ETag", etag);
        pier_server_resp_header(r->req, "Last-Modified", date);
        close(fd);
        pier_store_meta_clear(&m);
        return send_empty(r, 304);
    }
    if (pre == 412) {
        close(fd);
        pier_store_meta_clear(&m);
        return send_error(r, "PreconditionFailed",
                          "At least one of the pre-conditions you specified did not hold");
    }
    uint64_t start = 0, end = 0;
    int range = parse_range(pier_server_req_header(r->req, "Range"), m.size, &start, &end);
    if (range < 0) {
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)m.size);
        pier_server_resp_header(r->req, "Content-Range", cr);
        close(fd);
        pier_store_meta_clear(&m);
        return send_error(r, "InvalidRange", "The requested range is not satisfiable");
    }
    object_headers(r, &m, range == 0);
    common_headers(r);
    unsigned status = 200;
    uint64_t off = 0, len = m.size;
    if (range > 0) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)start,
                 (unsigned long long)end, (unsigned long long)m.size);
        pier_server_resp_header(r->req, "Content-Range", cr);
        status = 206;
        off = start;
        len = end - start + 1;
    }
    pier_store_meta_clear(&m);
    if (head) {
        close(fd);
        return pier_server_respond_empty(r->req, status, len);
    }
    return pier_server_respond_fd(r->req, status, fd, off, len);
}

static int delete_object(s3req *r)
{
    if (allow(r, "s3:DeleteObject", r->bucket, r->key))
        return 0;
    int rc = pier_store_delete(r->api->store, r->bucket, r->key, r->key_len);
    if (rc == PIER_ENOTFOUND && pier_store_bucket_head(r->api->store, r->bucket, NULL) == 0)
        rc = 0; /* S3 answers 204 for a key that is not there */
    if (rc)
        return send_store_error(r, rc);
    return send_empty(r, 204);
}

/* Parses x-amz-copy-source ("/bucket/key" or "bucket/key", URL-encoded,
 * optional "?versionId=") into *bucket / *key (arena). */
static int copy_source(s3req *r, const char *src, char **bucket, char **key, size_t *key_len)
{
    const char *p = src[0] == '/' ? src + 1 : src;
    const char *q = strstr(p, "?versionId=");
    size_t n = q ? (size_t)(q - p) : strlen(p);
    pier_buf d = PIER_BUF_INIT;
    if (pier_uri_decode(&d, p, n, false) != 0 || !d.ptr) {
        pier_buf_free(&d);
        return send_error(r, "InvalidArgument", "x-amz-copy-source is not a valid bucket/key");
    }
    char *slash = strchr(d.ptr, '/');
    if (!slash || slash == d.ptr || !slash[1]) {
        pier_buf_free(&d);
        return send_error(r, "InvalidArgument", "x-amz-copy-source must be bucket/key");
    }
    *bucket = pier_server_req_strndup(r->req, d.ptr, (size_t)(slash - d.ptr));
    *key_len = d.len - (size_t)(slash + 1 - d.ptr);
    *key = pier_server_req_strndup(r->req, slash + 1, *key_len);
    pier_buf_free(&d);
    return 0;
}

static int copy_object(s3req *r, const char *src)
{
    char *sb = NULL, *sk = NULL;
    size_t skl = 0;
    if (copy_source(r, src, &sb, &sk, &skl))
        return 0;
    if (allow(r, "s3:GetObject", sb, sk) || allow(r, "s3:PutObject", r->bucket, r->key))
        return 0;
    const char *directive = pier_server_req_header(r->req, "x-amz-metadata-directive");
    bool replace = directive && pier_str_ieq(directive, "REPLACE");
    if (directive && !replace && !pier_str_ieq(directive, "COPY"))
        return send_error(r, "InvalidArgument", "Unknown metadata directive.");
    if (!replace && strcmp(sb, r->bucket) == 0 && skl == r->key_len && memcmp(sk, r->key, skl) == 0)
        return send_error(r, "InvalidRequest",
                          "This copy request is illegal because it is trying to copy an object "
                          "to itself without changing the object's metadata.");
    pier_store_header *h = NULL;
    size_t hn = 0;
    if (replace)
        request_metadata(r, &h, &hn);
    pier_store_meta m;
    int rc = pier_store_copy(r->api->store, sb, sk, skl, r->bucket, r->key, r->key_len,
                             replace ? h : NULL, hn, &m);
    if (rc)
        return send_store_error(r, rc);
    char t[40];
    time_ms_iso(t, sizeof t, m.mtime_ms);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b,
                    XML_DECL "<CopyObjectResult><LastModified>%s</LastModified>"
                             "<ETag>&quot;%s&quot;</ETag></CopyObjectResult>\n",
                    t, m.etag);
    pier_store_meta_clear(&m);
    rc = send_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

/* ---- the body pipeline ---- */

static void body_fail(s3req *r, const char *code, const char *msg)
{
    if (r->err_code)
        return;
    r->err_code = code;
    r->err_msg = pier_server_req_strndup(r->req, msg, strlen(msg));
}

/* Records the last error as the body's failure, with its code when the
 * message carries one. */
static void body_fail_last(s3req *r, const char *def_code)
{
    const char *rest = NULL;
    const char *msg = pier_error_last();
    const char *code = message_code(msg, &rest);
    body_fail(r, code ? code : def_code, code ? rest : msg);
}

static int sink(void *ctx, const char *data, size_t n)
{
    s3req *r = ctx;
    r->received += n;
    if (r->kind != B_XML && r->received > r->api->max_object_size) {
        body_fail(r, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
        return PIER_ETOOBIG;
    }
    if (r->payload_sha)
        pier_hash_update(r->payload_sha, data, n);
    if (r->ck == CK_CRC32)
        r->crc = pier_crc32(r->crc, data, n);
    else if (r->ck == CK_CRC32C)
        r->crc = pier_crc32c(r->crc, data, n);
    else if (r->ck_hash)
        pier_hash_update(r->ck_hash, data, n);
    if (r->kind == B_XML) {
        if (pier_buf_put(&r->xml, data, n) != 0) {
            body_fail(r, "MalformedXML", "The XML request body is too large");
            return PIER_ETOOBIG;
        }
        return 0;
    }
    if (pier_store_put_write(r->put, data, n) != 0) {
        body_fail_last(r, "InternalError");
        return PIER_EIO;
    }
    return 0;
}

static int on_body(pier_server_req *req, void *ctx, const char *data, size_t n)
{
    s3req *r = ctx;
    if (r->err_code)
        return -1;
    int rc = r->chunked ? pier_s3chunked_feed(r->chunked, data, n) : sink(r, data, n);
    if (rc) {
        body_fail_last(r, rc == PIER_EAUTH ? "SignatureDoesNotMatch" : "IncompleteBody");
        return -1;
    }
    return 0;
}

/* Checks every declared digest; answers and returns -1 on a mismatch. */
static int check_digests(s3req *r)
{
    if (r->chunked) {
        if (pier_s3chunked_finish(r->chunked) != 0) {
            body_fail_last(r, "IncompleteBody");
            return -1;
        }
        if (r->have_decoded_len && r->received != r->decoded_len) {
            body_fail(r, "IncompleteBody",
                      "The decoded body length does not match x-amz-decoded-content-length");
            return -1;
        }
    }
    if (r->payload_sha) {
        unsigned char d[PIER_SHA256_LEN];
        char hex[65];
        pier_hash_final(r->payload_sha, d);
        pier_hex_encode(hex, d, PIER_SHA256_LEN);
        if (strcmp(hex, r->payload_sha_want) != 0) {
            body_fail(r, "XAmzContentSHA256Mismatch",
                      "The provided 'x-amz-content-sha256' header does not match what was "
                      "computed.");
            return -1;
        }
    }
    if (r->ck != CK_NONE) {
        unsigned char d[PIER_SHA256_LEN];
        size_t dn = 4;
        if (r->ck == CK_CRC32 || r->ck == CK_CRC32C) {
            d[0] = (unsigned char)(r->crc >> 24);
            d[1] = (unsigned char)(r->crc >> 16);
            d[2] = (unsigned char)(r->crc >> 8);
            d[3] = (unsigned char)r->crc;
        } else {
            dn = pier_hash_final(r->ck_hash, d);
        }
        pier_buf b = PIER_BUF_INIT;
        pier_base64_encode(&b, d, dn);
        snprintf(r->ck_got, sizeof r->ck_got, "%s", b.ptr);
        pier_buf_free(&b);
        const char *want = r->ck_want;
        char tname[32];
        snprintf(tname, sizeof tname, "x-amz-checksum-%s", ck_names[r->ck]);
        if (!want && r->chunked)
            want = pier_s3chunked_trailer(r->chunked, tname);
        if (!want) {
            body_fail(r, "InvalidRequest",
                      "The trailing checksum named in x-amz-trailer is missing");
            return -1;
        }
        if (strcmp(want, r->ck_got) != 0) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "XAmzContentChecksumMismatch: the %s you specified did not match the "
                     "calculated checksum.",
                     tname);
            body_fail(r, "BadDigest", msg);
            return -1;
        }
    }
    if (r->have_md5) {
        unsigned char got[PIER_MD5_LEN];
        if (r->put)
            pier_store_put_md5(r->put, got);
        else
            pier_md5(got, r->xml.ptr ? r->xml.ptr : "", r->xml.len);
        if (memcmp(got, r->md5_want, PIER_MD5_LEN) != 0) {
            body_fail(r, "BadDigest",
                      "The Content-MD5 you specified did not match what we received.");
            return -1;
        }
    }
    return 0;
}

static void on_end(pier_server_req *req, void *ctx)
{
    s3req *r = ctx;
    if (!r->err_code)
        check_digests(r);
    if (r->err_code) {
        pier_store_put_abort(r->put);
        r->put = NULL;
        send_error(r, r->err_code, "%s", r->err_msg);
        return;
    }
    r->finish(r);
}

static void on_done(pier_server_req *req, void *ctx)
{
    s3req *r = ctx;
    pier_store_put_abort(r->put);
    r->put = NULL;
    pier_s3chunked_free(r->chunked);
    pier_hash_free(r->payload_sha);
    pier_hash_free(r->ck_hash);
    pier_buf_free(&r->xml);
    if (r->auth_ready)
        pier_sigv4_auth_free(&r->auth);
}

static int chunk_sink(void *ctx, const char *data, size_t n)
{
    return sink(ctx, data, n);
}

/* Reads what the headers say about the body (framing, size, digests) and
 * starts streaming it. Answers and returns -1 when the headers refuse it. */
static int body_begin(s3req *r, body_kind kind, finish_fn finish)
{
    r->kind = kind;
    r->finish = finish;
    const char *sha = pier_server_req_header(r->req, "x-amz-content-sha256");
    int64_t clen = pier_server_req_content_length(r->req);
    uint64_t declared = clen > 0 ? (uint64_t)clen : 0;
    bool streaming = sha && pier_str_starts_with(sha, "STREAMING-");
    if (streaming) {
        const char *dl = pier_server_req_header(r->req, "x-amz-decoded-content-length");
        if (dl) {
            if (pier_parse_u64(dl, &r->decoded_len) != 0)
                return send_error(r, "InvalidArgument",
                                  "x-amz-decoded-content-length is not a number"),
                       -1;
            r->have_decoded_len = true;
            declared = r->decoded_len;
        }
        bool is_signed = strcmp(sha, PIER_SIGV4_STREAMING_PAYLOAD) == 0 ||
                         strcmp(sha, PIER_SIGV4_STREAMING_PAYLOAD_TRAILER) == 0;
        bool unsigned_trailer = strcmp(sha, PIER_SIGV4_STREAMING_UNSIGNED_TRAILER) == 0;
        if (!is_signed && !unsigned_trailer)
            return send_error(r, "NotImplemented", "x-amz-content-sha256 %s is not supported", sha),
                   -1;
        if (is_signed && (r->anonymous || !r->auth_ready || r->auth.presigned))
            return send_error(r, "AccessDenied",
                              "a signed aws-chunked body needs a signed "
                              "Authorization header"),
                   -1;
        r->chunked = pier_s3chunked_new(is_signed ? &r->auth.chunk : NULL,
                                        strcmp(sha, PIER_SIGV4_STREAMING_PAYLOAD_TRAILER) == 0,
                                        chunk_sink, r);
    } else if (sha && strlen(sha) == 64 && !r->anonymous) {
        r->payload_sha = pier_hash_new(PIER_HASH_SHA256);
        snprintf(r->payload_sha_want, sizeof r->payload_sha_want, "%s", sha);
    }
    if (kind != B_XML && declared > r->api->max_object_size)
        return send_error(r, "EntityTooLarge",
                          "Your proposed upload exceeds the maximum allowed size"),
               -1;
    if (kind == B_XML && declared > XML_BODY_MAX)
        return send_error(r, "MalformedXML", "The XML request body is too large"), -1;

    /* a declared checksum: in a header, or named by x-amz-trailer */
    const char *trailer = pier_server_req_header(r->req, "x-amz-trailer");
    for (int a = CK_CRC32; a <= CK_SHA256; a++) {
        char name[32];
        snprintf(name, sizeof name, "x-amz-checksum-%s", ck_names[a]);
        const char *v = pier_server_req_header(r->req, name);
        bool in_trailer = trailer && pier_str_ieq(trailer, name) && r->chunked;
        if (!v && !in_trailer)
            continue;
        r->ck = (ck_alg)a;
        r->ck_want = v;
        if (a == CK_SHA1)
            r->ck_hash = pier_hash_new(PIER_HASH_SHA1);
        else if (a == CK_SHA256)
            r->ck_hash = pier_hash_new(PIER_HASH_SHA256);
        break;
    }
    const char *md5 = pier_server_req_header(r->req, "Content-MD5");
    if (md5) {
        pier_buf d = PIER_BUF_INIT;
        if (pier_base64_decode(&d, md5, strlen(md5)) != 0 || d.len != PIER_MD5_LEN) {
            pier_buf_free(&d);
            return send_error(r, "InvalidDigest", "The Content-MD5 you specified was invalid."), -1;
        }
        memcpy(r->md5_want, d.ptr, PIER_MD5_LEN);
        r->have_md5 = true;
        pier_buf_free(&d);
    }
    pier_server_req_read_body(r->req, on_body, on_end, r);
    return 0;
}

/* The stored metadata of a new object: request headers + checksum. */
static void object_metadata(s3req *r, pier_store_header **h, size_t *n)
{
    request_metadata(r, h, n);
    if (r->ck != CK_NONE && r->kind == B_OBJECT) {
        char name[32];
        snprintf(name, sizeof name, "x-amz-checksum-%s", ck_names[r->ck]);
        (*h)[*n].name = pier_server_req_strndup(r->req, name, strlen(name));
        (*h)[*n].value = r->ck_got;
        (*n)++;
    }
}

static void checksum_response_header(s3req *r)
{
    if (r->ck == CK_NONE)
        return;
    char name[32];
    snprintf(name, sizeof name, "x-amz-checksum-%s", ck_names[r->ck]);
    pier_server_resp_header(r->req, name, r->ck_got);
}

static int put_object_finish(s3req *r)
{
    pier_store_header *h = NULL;
    size_t n = 0;
    object_metadata(r, &h, &n);
    pier_store_meta m;
    pier_store_put *p = r->put;
    r->put = NULL;
    int rc = pier_store_put_commit(p, h, n, &m);
    if (rc)
        return send_store_error(r, rc);
    char etag[PIER_STORE_ETAG_MAX + 2];
    snprintf(etag, sizeof etag, "\"%s\"", m.etag);
    pier_store_meta_clear(&m);
    pier_server_resp_header(r->req, "ETag", etag);
    checksum_response_header(r);
    return send_empty(r, 200);
}

static int put_object(s3req *r)
{
    if (allow(r, "s3:PutObject", r->bucket, r->key))
        return 0;
    int rc = pier_store_put_begin(&r->put, r->api->store, r->bucket, r->key, r->key_len);
    if (rc)
        return send_store_error(r, rc);
    body_begin(r, B_OBJECT, put_object_finish);
    return 0;
}

/* ---- multipart ---- */

static int create_upload(s3req *r)
{
    if (allow(r, "s3:PutObject", r->bucket, r->key))
        return 0;
    pier_store_header *h = NULL;
    size_t n = 0;
    request_metadata(r, &h, &n);
    char id[PIER_STORE_UPLOAD_ID_LEN + 1];
    int rc = pier_store_upload_create(r->api->store, r->bucket, r->key, r->key_len, h, n, id);
    if (rc)
        return send_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<InitiateMultipartUploadResult xmlns=\"" S3_NS "\">");
    xml_el(&b, "Bucket", r->bucket);
    key_el(&b, "Key", r->key, r->key_len, false);
    xml_el(&b, "UploadId", id);
    pier_buf_puts(&b, "</InitiateMultipartUploadResult>\n");
    rc = send_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

static int part_number(s3req *r, unsigned *out)
{
    uint64_t n = 0;
    const char *v = qget(r, "partNumber");
    if (!v || pier_parse_u64(v, &n) != 0 || n < 1 || n > PIER_STORE_MAX_PARTS) {
        send_error(r, "InvalidArgument",
                   "Part number must be an integer between 1 and 10000, "
                   "inclusive");
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

static int upload_part_finish(s3req *r)
{
    pier_store_header h[1];
    size_t n = 0;
    char name[32];
    if (r->ck != CK_NONE) {
        snprintf(name, sizeof name, "x-amz-checksum-%s", ck_names[r->ck]);
        h[0].name = name;
        h[0].value = r->ck_got;
        n = 1;
    }
    pier_store_meta m;
    pier_store_put *p = r->put;
    r->put = NULL;
    int rc = pier_store_put_commit(p, h, n, &m);
    if (rc)
        return send_store_error(r, rc);
    char etag[PIER_STORE_ETAG_MAX + 2];
    snprintf(etag, sizeof etag, "\"%s\"", m.etag);
    pier_store_meta_clear(&m);
    pier_server_resp_header(r->req, "ETag", etag);
    checksum_response_header(r);
    return send_empty(r, 200);
}

static int upload_part_copy(s3req *r, const char *src)
{
    char *sb = NULL, *sk = NULL;
    size_t skl = 0;
    if (copy_source(r, src, &sb, &sk, &skl))
        return 0;
    if (allow(r, "s3:GetObject", sb, sk))
        return 0;
    int fd = -1;
    pier_store_meta m;
    int rc = pier_store_get(r->api->store, sb, sk, skl, &fd, &m);
    if (rc)
        return send_store_error(r, rc);
    uint64_t start = 0, end = m.size ? m.size - 1 : 0;
    const char *range = pier_server_req_header(r->req, "x-amz-copy-source-range");
    if (range && parse_range(range, m.size, &start, &end) != 1) {
        close(fd);
        pier_store_meta_clear(&m);
        return send_error(r, "InvalidRange", "The x-amz-copy-source-range is not satisfiable");
    }
    uint64_t len = m.size ? end - start + 1 : 0;
    pier_store_meta_clear(&m);
    char *buf = pier_malloc(1 << 20);
    uint64_t off = start, left = len;
    while (rc == 0 && left > 0) {
        size_t n = left < (1 << 20) ? (size_t)left : (1 << 20);
        ssize_t got = pread(fd, buf, n, (off_t)off);
        if (got <= 0) {
            rc = pier_error_set(PIER_EIO, "read of the copy source failed");
            break;
        }
        rc = pier_store_put_write(r->put, buf, (size_t)got);
        off += (uint64_t)got;
        left -= (uint64_t)got;
    }
    free(buf);
    close(fd);
    if (rc)
        return send_store_error(r, rc);
    pier_store_put *p = r->put;
    r->put = NULL;
    rc = pier_store_put_commit(p, NULL, 0, &m);
    if (rc)
        return send_store_error(r, rc);
    char t[40];
    time_ms_iso(t, sizeof t, m.mtime_ms);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b,
                    XML_DECL "<CopyPartResult><LastModified>%s</LastModified>"
                             "<ETag>&quot;%s&quot;</ETag></CopyPartResult>\n",
                    t, m.etag);
    pier_store_meta_clear(&m);
    rc = send_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

static int upload_part(s3req *r, const char *upload_id)
{
    unsigned n;
    if (allow(r, "s3:PutObject", r->bucket, r->key) || part_number(r, &n))
        return 0;
    pier_store_meta um;
    int rc = pier_store_upload_head(r->api->store, r->bucket, upload_id, &um);
    if (rc == 0 && (um.key_len != r->key_len || memcmp(um.key, r->key, r->key_len) != 0))
        rc =
            pier_error_set(PIER_ENOTFOUND, "NoSuchUpload: upload %s is for another key", upload_id);
    pier_store_meta_clear(&um);
    if (rc)
        return send_store_error(r, rc);
    rc = pier_store_part_begin(&r->put, r->api->store, r->bucket, upload_id, n);
    if (rc)
        return send_store_error(r, rc);
    const char *src = pier_server_req_header(r->req, "x-amz-copy-source");
    if (src)
        return upload_part_copy(r, src);
    body_begin(r, B_PART, upload_part_finish);
    return 0;
}

static int list_parts(s3req *r, const char *upload_id)
{
    if (allow(r, "s3:ListMultipartUploadParts", r->bucket, r->key))
        return 0;
    size_t max;
    uint64_t marker = 0;
    const char *pm = qget(r, "part-number-marker");
    if (parse_max(r, "max-parts", 1000, &max))
        return 0;
    if (pm && pier_parse_u64(pm, &marker) != 0)
        return send_error(r, "InvalidArgument", "part-number-marker must be an integer");
    pier_store_part *parts = NULL;
    size_t n = 0;
    int rc = pier_store_part_list(r->api->store, r->bucket, upload_id, &parts, &n);
    if (rc)
        return send_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<ListPartsResult xmlns=\"" S3_NS "\">");
    xml_el(&b, "Bucket", r->bucket);
    key_el(&b, "Key", r->key, r->key_len, false);
    xml_el(&b, "UploadId", upload_id);
    pier_buf_printf(&b, "<PartNumberMarker>%llu</PartNumberMarker>", (unsigned long long)marker);
    size_t shown = 0, i = 0;
    unsigned last = 0;
    pier_buf items = PIER_BUF_INIT;
    for (; i < n && shown < max; i++) {
        if (parts[i].number <= marker)
            continue;
        char t[40];
        time_ms_iso(t, sizeof t, parts[i].mtime_ms);
        pier_buf_printf(&items,
                        "<Part><PartNumber>%u</PartNumber><LastModified>%s</LastModified>"
                        "<ETag>&quot;%s&quot;</ETag><Size>%llu</Size></Part>",
                        parts[i].number, t, parts[i].etag, (unsigned long long)parts[i].size);
        last = parts[i].number;
        shown++;
    }
    bool truncated = i < n;
    pier_buf_printf(&b,
                    "<NextPartNumberMarker>%u</NextPartNumberMarker><MaxParts>%zu</MaxParts>"
                    "<IsTruncated>%s</IsTruncated>"
                    "<Initiator><ID>pier</ID><DisplayName>pier</DisplayName></Initiator>"
                    "<Owner><ID>pier</ID><DisplayName>pier</DisplayName></Owner>"
                    "<StorageClass>STANDARD</StorageClass>",
                    last, max, truncated ? "true" : "false");
    pier_buf_put_slice(&b, pier_buf_slice(&items));
    pier_buf_puts(&b, "</ListPartsResult>\n");
    pier_buf_free(&items);
    free(parts);
    rc = send_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

static int complete_finish(s3req *r)
{
    pier_xml_doc *doc = NULL;
    pier_store_complete_part *parts = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (!r->xml.len || pier_xml_doc_parse(&doc, r->xml.ptr, r->xml.len, "request body") != 0 ||
        strcmp(pier_xml_doc_root(doc), "CompleteMultipartUpload") != 0) {
        pier_xml_doc_free(doc);
        return send_error(r, "MalformedXML",
                          "The XML you provided was not well-formed or did "
                          "not validate against our published schema.");
    }
    /* parts in document order: a PartNumber and an ETag per Part */
    unsigned cur_num = 0;
    const char *cur_etag = NULL;
    bool have_num = false;
    for (size_t i = 0; i < pier_xml_doc_count(doc); i++) {
        const char *path, *text;
        pier_xml_doc_at(doc, i, &path, &text);
        if (strcmp(path, "CompleteMultipartUpload/Part/PartNumber") == 0) {
            uint64_t v = 0;
            if (pier_parse_u64(text, &v) != 0 || v < 1 || v > PIER_STORE_MAX_PARTS) {
                rc = -1;
                break;
            }
            cur_num = (unsigned)v;
            have_num = true;
        } else if (strcmp(path, "CompleteMultipartUpload/Part/ETag") == 0) {
            cur_etag = text;
        } else if (strcmp(path, "CompleteMultipartUpload/Part") == 0) {
            if (!have_num || !cur_etag) {
                rc = -1;
                break;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                parts = pier_realloc(parts, cap * sizeof *parts);
            }
            parts[n].number = cur_num;
            parts[n].etag = cur_etag;
            n++;
            have_num = false;
            cur_etag = NULL;
        }
    }
    if (rc || n == 0) {
        free(parts);
        pier_xml_doc_free(doc);
        return send_error(r, "MalformedXML",
                          "The XML you provided was not well-formed or did "
                          "not validate against our published schema.");
    }
    pier_store_meta m;
    rc = pier_store_upload_complete(r->api->store, r->bucket, r->upload_id, parts, n, &m);
    free(parts);
    pier_xml_doc_free(doc);
    if (rc)
        return send_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<CompleteMultipartUploadResult xmlns=\"" S3_NS "\">");
    pier_buf_puts(&b, "<Location>");
    pier_slice path = pier_server_req_raw_path(r->req);
    xml_text(&b, path.ptr, path.len);
    pier_buf_puts(&b, "</Location>");
    xml_el(&b, "Bucket", r->bucket);
    key_el(&b, "Key", r->key, r->key_len, false);
    pier_buf_printf(&b, "<ETag>&quot;%s&quot;</ETag></CompleteMultipartUploadResult>\n", m.etag);
    pier_store_meta_clear(&m);
    rc = send_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

static int abort_upload(s3req *r, const char *upload_id)
{
    if (allow(r, "s3:AbortMultipartUpload", r->bucket, r->key))
        return 0;
    int rc = pier_store_upload_abort(r->api->store, r->bucket, upload_id);
    if (rc)
        return send_store_error(r, rc);
    return send_empty(r, 204);
}

/* ---- DeleteObjects ---- */

static int delete_objects_finish(s3req *r)
{
    pier_xml_doc *doc = NULL;
    if (!r->xml.len || pier_xml_doc_parse(&doc, r->xml.ptr, r->xml.len, "request body") != 0 ||
        strcmp(pier_xml_doc_root(doc), "Delete") != 0) {
        pier_xml_doc_free(doc);
        return send_error(r, "MalformedXML",
                          "The XML you provided was not well-formed or did "
                          "not validate against our published schema.");
    }
    const char *quiet = pier_xml_doc_get(doc, "Delete/Quiet");
    bool is_quiet = quiet && pier_str_ieq(quiet, "true");
    size_t count = 0;
    for (size_t i = 0; i < pier_xml_doc_count(doc); i++) {
        const char *path, *text;
        pier_xml_doc_at(doc, i, &path, &text);
        count += strcmp(path, "Delete/Object/Key") == 0;
    }
    if (count > 1000) {
        pier_xml_doc_free(doc);
        return send_error(r, "MalformedXML", "A DeleteObjects request may name 1000 keys at most");
    }
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<DeleteResult xmlns=\"" S3_NS "\">");
    for (size_t i = 0; i < pier_xml_doc_count(doc); i++) {
        const char *path, *text;
        pier_xml_doc_at(doc, i, &path, &text);
        if (strcmp(path, "Delete/Object/Key") != 0)
            continue;
        size_t kl = strlen(text);
        const char *code = NULL, *msg = NULL;
        if (r->authorize && r->authorize(r->authorize_ctx, "s3:DeleteObject", r->bucket, text)) {
            code = "AccessDenied";
            msg = "Access Denied";
        } else {
            int rc = pier_store_delete(r->api->store, r->bucket, text, kl);
            if (rc && rc != PIER_ENOTFOUND) {
                code = "InternalError";
                msg = pier_error_last();
            } else if (rc == PIER_ENOTFOUND &&
                       pier_store_bucket_head(r->api->store, r->bucket, NULL) != 0) {
                code = "NoSuchBucket";
                msg = "The specified bucket does not exist";
            }
        }
        if (code) {
            pier_buf_puts(&b, "<Error>");
            key_el(&b, "Key", text, kl, false);
            xml_el(&b, "Code", code);
            xml_el(&b, "Message", msg);
            pier_buf_puts(&b, "</Error>");
        } else if (!is_quiet) {
            pier_buf_puts(&b, "<Deleted>");
            key_el(&b, "Key", text, kl, false);
            pier_buf_puts(&b, "</Deleted>");
        }
    }
    pier_buf_puts(&b, "</DeleteResult>\n");
    pier_xml_doc_free(doc);
    int rc = send_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

/* ---- dispatch ---- */

static int not_implemented(s3req *r)
{
    return send_error(r, "NotImplemented",
                      "A header or query you provided implies functionality that is not "
                      "implemented");
}

static int dispatch_bucket(s3req *r)
{
    const char *m = r->method;
    if (strcmp(m, "GET") == 0) {
        if (qget(r, "location"))
            return bucket_location(r);
        if (qget(r, "uploads"))
            return list_uploads(r);
        if (qget(r, "acl"))
            return bucket_acl(r);
        if (qget(r, "versioning")) {
            if (allow(r, "s3:GetBucketVersioning", r->bucket, ""))
                return 0;
            int rc = pier_store_bucket_head(r->api->store, r->bucket, NULL);
            if (rc)
                return send_store_error(r, rc);
            pier_buf b = PIER_BUF_INIT;
            pier_buf_puts(&b, XML_DECL "<VersioningConfiguration xmlns=\"" S3_NS "\"/>\n");
            rc = send_xml(r, 200, &b);
            pier_buf_free(&b);
            return rc;
        }
        static const char *const unsupported[] = {
            "policy",  "cors",       "lifecycle",   "website",      "tagging",
            "logging", "encryption", "replication", "notification", "object-lock"};
        for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
            if (qget(r, unsupported[i]))
                return not_implemented(r);
        const char *lt = qget(r, "list-type");
        return list_objects(r, lt && strcmp(lt, "2") == 0);
    }
    if (strcmp(m, "HEAD") == 0)
        return head_bucket(r);
    if (strcmp(m, "PUT") == 0) {
        if (qget(r, "acl"))
            return put_bucket_acl(r);
        if (r->qn > 0)
            return not_implemented(r);
        if (allow(r, "s3:CreateBucket", r->bucket, "") || canned_acl(r) < 0)
            return 0;
        if (!pier_store_bucket_name_ok(r->bucket))
            return send_error(r, "InvalidBucketName", "The specified bucket is not valid.");
        body_begin(r, B_XML, create_bucket_finish);
        return 0;
    }
    if (strcmp(m, "DELETE") == 0) {
        if (r->qn > 0)
            return not_implemented(r);
        return delete_bucket(r);
    }
    if (strcmp(m, "POST") == 0 && qget(r, "delete")) {
        if (allow(r, "s3:DeleteObject", r->bucket, ""))
            return 0;
        int rc = pier_store_bucket_head(r->api->store, r->bucket, NULL);
        if (rc)
            return send_store_error(r, rc);
        body_begin(r, B_XML, delete_objects_finish);
        return 0;
    }
    return send_error(r, "MethodNotAllowed",
                      "The specified method is not allowed against this resource.");
}

static int dispatch_object(s3req *r)
{
    const char *m = r->method;
    const char *upload_id = qget(r, "uploadId");
    if (strcmp(m, "GET") == 0) {
        if (upload_id)
            return list_parts(r, upload_id);
        if (qget(r, "acl")) {
            if (allow(r, "s3:GetObjectAcl", r->bucket, r->key))
                return 0;
            return bucket_acl(r);
        }
        if (qget(r, "tagging")) {
            pier_buf b = PIER_BUF_INIT;
            pier_buf_puts(&b, XML_DECL "<Tagging xmlns=\"" S3_NS "\"><TagSet/></Tagging>\n");
            int rc = send_xml(r, 200, &b);
            pier_buf_free(&b);
            return rc;
        }
        return get_object(r, false);
    }
    if (strcmp(m, "HEAD") == 0)
        return get_object(r, true);
    if (strcmp(m, "PUT") == 0) {
        if (upload_id)
            return upload_part(r, upload_id);
        if (qget(r, "acl") || qget(r, "tagging"))
            return not_implemented(r);
        const char *src = pier_server_req_header(r->req, "x-amz-copy-source");
        if (src)
            return copy_object(r, src);
        return put_object(r);
    }
    if (strcmp(m, "DELETE") == 0)
        return upload_id ? abort_upload(r, upload_id) : delete_object(r);
    if (strcmp(m, "POST") == 0) {
        if (qget(r, "uploads"))
            return create_upload(r);
        if (upload_id) {
            if (allow(r, "s3:PutObject", r->bucket, r->key))
                return 0;
            r->upload_id = upload_id;
            body_begin(r, B_XML, complete_finish);
            return 0;
        }
    }
    return send_error(r, "MethodNotAllowed",
                      "The specified method is not allowed against this resource.");
}

static int on_req(pier_handler *self, pier_server_req *req)
{
    s3api *api = (s3api *)self;
    s3req *r = pier_server_req_alloc(req, sizeof *r);
    memset(r, 0, sizeof *r);
    r->api = api;
    r->req = req;
    r->method = pier_server_req_method(req);
    pier_buf_init(&r->xml, XML_BODY_MAX);
    pier_random_token(r->request_id, 16, true);
    pier_server_req_on_done(req, on_done, r);
    if (parse_query(r) || target(r))
        return 0;
    if (authenticate(r))
        return 0;
    if (!r->bucket[0]) {
        if (strcmp(r->method, "GET") == 0)
            return list_buckets(r);
        return send_error(r, "MethodNotAllowed",
                          "The specified method is not allowed against this resource.");
    }
    if (r->key_len > PIER_STORE_KEY_MAX)
        return send_error(r, "KeyTooLongError", "Your key is too long");
    if (!r->key_len)
        return dispatch_bucket(r);
    return dispatch_object(r);
}

static void dispose(pier_handler *self)
{
    s3api *api = (s3api *)self;
    free(api->region);
    for (size_t i = 0; i < api->domain_count; i++)
        free(api->domains[i]);
    free(api);
}

pier_handler *pier_s3api_new(const pier_s3api_options *o)
{
    s3api *api = pier_calloc(1, sizeof *api);
    api->base.on_req = on_req;
    api->base.dispose = dispose;
    api->store = o->store;
    api->region = pier_strdup(o->region ? o->region : "us-east-1");
    api->lookup = o->lookup;
    api->lookup_ctx = o->lookup_ctx;
    api->max_object_size = o->max_object_size ? o->max_object_size : (uint64_t)5 << 30;
    char *domains = pier_strdup(o->domains ? o->domains : "s3.localhost,localhost"), *save = NULL;
    for (char *t = strtok_r(domains, ",", &save); t && api->domain_count < MAX_DOMAINS;
         t = strtok_r(NULL, ",", &save)) {
        pier_slice s = pier_slice_trim(pier_slice_from(t));
        if (s.len)
            api->domains[api->domain_count++] = pier_slice_dup(s);
    }
    free(domains);
    return &api->base;
}

void pier_s3api_register(pier_server *srv, const pier_server_match *match,
                         const pier_s3api_options *opts)
{
    pier_server_add(srv, match, pier_s3api_new(opts));
}
