/*
 * s3req: see s3req.h. The error table maps every S3 error code pier
 * answers to its HTTP status; store and sigv4 messages that start with a
 * known code ("NoSuchKey: ...") keep it.
 *
 * Body pipeline: network piece -> [aws-chunked decoder] -> sink: SHA-256
 * (when x-amz-content-sha256 is a hex digest), the declared x-amz-checksum-*
 * (CRC32, CRC32C, SHA-1, SHA-256) -> store temp file or XML buffer. Every
 * digest is checked after the last byte and before the operation commits.
 * Cost: one pass over the body, O(1) memory per request besides XML bodies.
 */
#include "stack/s3req.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/xml.h"
#include "base/error.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"

#define XML_BODY_MAX ((size_t)4 << 20)

static const char *const ck_names[] = {"", "crc32", "crc32c", "sha1", "sha256"};

static void on_done(pier_server_req *req, void *ctx);

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

void pier_s3req_xml_text(pier_buf *b, const char *s, size_t n)
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

void pier_s3req_xml_el(pier_buf *b, const char *name, const char *s)
{
    pier_buf_printf(b, "<%s>", name);
    pier_s3req_xml_text(b, s, strlen(s));
    pier_buf_printf(b, "</%s>", name);
}

void pier_s3req_common_headers(pier_s3req *r)
{
    pier_server_resp_header(r->req, "x-amz-request-id", r->request_id);
    pier_server_resp_header(r->req, "x-amz-id-2", r->request_id);
    pier_server_resp_header(r->req, "Server", "pier");
}

int pier_s3req_error_status(pier_s3req *r, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, PIER_S3_XML_DECL "<Error>");
    pier_s3req_xml_el(&b, "Code", code);
    pier_s3req_xml_el(&b, "Message", msg);
    if (r->bucket && r->bucket[0])
        pier_s3req_xml_el(&b, "BucketName", r->bucket);
    if (r->key && r->key_len) {
        pier_buf_puts(&b, "<Key>");
        pier_s3req_xml_text(&b, r->key, r->key_len);
        pier_buf_puts(&b, "</Key>");
    }
    pier_slice path = pier_server_req_raw_path(r->req);
    pier_buf_puts(&b, "<Resource>");
    pier_s3req_xml_text(&b, path.ptr, path.len);
    pier_buf_puts(&b, "</Resource>");
    pier_s3req_xml_el(&b, "RequestId", r->request_id);
    pier_s3req_xml_el(&b, "HostId", r->request_id);
    pier_buf_puts(&b, "</Error>\n");
    PIER_DEBUG("s3: %s %s -> %u %s: %s", r->method, pier_server_req_raw_uri(r->req), status, code,
               msg);
    pier_s3req_common_headers(r);
    pier_server_resp_header(r->req, "Content-Type", "application/xml");
    int rc = pier_server_respond_mem(r->req, status, b.ptr, b.len);
    pier_buf_free(&b);
    return rc;
}

/* Answers for a failed store call (or any call that set "Code: message"). */
int pier_s3req_store_error(pier_s3req *r, int rc)
{
    const char *rest = NULL;
    const char *msg = pier_error_last();
    const char *code = message_code(msg, &rest);
    if (code)
        return pier_s3req_error(r, code, "%s", rest);
    switch (rc) {
    case PIER_ENOTFOUND:
        return pier_s3req_error(r, "NoSuchKey", "%s", msg);
    case PIER_EEXISTS:
        return pier_s3req_error(r, "BucketAlreadyOwnedByYou", "%s", msg);
    case PIER_ECONFLICT:
        return pier_s3req_error(r, "BucketNotEmpty", "%s", msg);
    case PIER_EINVALID:
        return pier_s3req_error(r, "InvalidArgument", "%s", msg);
    case PIER_ETOOBIG:
        return pier_s3req_error(r, "EntityTooLarge", "%s", msg);
    default:
        PIER_WARN("s3: %s %s: %s", r->method, pier_server_req_raw_uri(r->req), msg);
        return pier_s3req_error(r, "InternalError", "%s", msg);
    }
}

int pier_s3req_xml(pier_s3req *r, unsigned status, pier_buf *b)
{
    pier_s3req_common_headers(r);
    pier_server_resp_header(r->req, "Content-Type", "application/xml");
    return pier_server_respond_mem(r->req, status, b->ptr, b->len);
}

int pier_s3req_empty(pier_s3req *r, unsigned status)
{
    pier_s3req_common_headers(r);
    return pier_server_respond_mem(r->req, status, "", 0);
}

const char *pier_s3req_query(const pier_s3req *r, const char *name)
{
    for (size_t i = 0; i < r->qn; i++)
        if (strcmp(r->q[i].name, name) == 0)
            return r->q[i].value;
    return NULL;
}

/* Asks whether the request may do action on bucket/key; answers
 * AccessDenied and returns -1 when not. */
int pier_s3req_allow(pier_s3req *r, const char *action, const char *bucket, const char *key)
{
    if (r->anonymous) {
        pier_store_bucket info;
        if (strcmp(action, "s3:GetObject") == 0 && bucket[0] &&
            pier_store_bucket_head(r->api->store, bucket, &info) == 0 && info.public_read)
            return 0;
        pier_s3req_error(r, "AccessDenied", "Access Denied (the request is not signed)");
        return -1;
    }
    if (r->authorize && r->authorize(r->authorize_ctx, action, bucket, key) != 0) {
        pier_s3req_error(r, "AccessDenied",
                         "Access Denied: %s on %s%s%s is not allowed for this key", action, bucket,
                         key[0] ? "/" : "", key);
        return -1;
    }
    return 0;
}

void pier_s3req_time(char *out, size_t size, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03dZ", base, (int)(ms % 1000));
}

void pier_s3req_xml_key(pier_buf *b, const char *name, const char *s, size_t n, bool url)
{
    pier_buf_printf(b, "<%s>", name);
    if (url) {
        pier_buf enc = PIER_BUF_INIT;
        pier_uri_encode(&enc, s, n, true);
        pier_buf_put_slice(b, pier_buf_slice(&enc));
        pier_buf_free(&enc);
    } else {
        pier_s3req_xml_text(b, s, n);
    }
    pier_buf_printf(b, "</%s>", name);
}

int pier_s3req_parse_max(pier_s3req *r, const char *name, size_t def, size_t *out)
{
    const char *v = pier_s3req_query(r, name);
    uint64_t n = def;
    if (v && (pier_parse_u64(v, &n) != 0)) {
        pier_s3req_error(r, "InvalidArgument", "%s must be a non-negative integer", name);
        return -1;
    }
    *out = n > def ? def : (size_t)n;
    return 0;
}

static void body_fail(pier_s3req *r, const char *code, const char *msg)
{
    if (r->err_code)
        return;
    r->err_code = code;
    r->err_msg = pier_server_req_strndup(r->req, msg, strlen(msg));
}

/* Records the last error as the body's failure, with its code when the
 * message carries one. */
static void body_fail_last(pier_s3req *r, const char *def_code)
{
    const char *rest = NULL;
    const char *msg = pier_error_last();
    const char *code = message_code(msg, &rest);
    body_fail(r, code ? code : def_code, code ? rest : msg);
}

static int sink(void *ctx, const char *data, size_t n)
{
    pier_s3req *r = ctx;
    r->received += n;
    if (r->kind != PIER_S3_BODY_XML && r->received > r->api->max_object_size) {
        body_fail(r, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
        return PIER_ETOOBIG;
    }
    if (r->payload_sha)
        pier_hash_update(r->payload_sha, data, n);
    if (r->ck == PIER_S3_CK_CRC32)
        r->crc = pier_crc32(r->crc, data, n);
    else if (r->ck == PIER_S3_CK_CRC32C)
        r->crc = pier_crc32c(r->crc, data, n);
    else if (r->ck_hash)
        pier_hash_update(r->ck_hash, data, n);
    if (r->kind == PIER_S3_BODY_XML) {
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
    pier_s3req *r = ctx;
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
static int check_digests(pier_s3req *r)
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
    if (r->ck != PIER_S3_CK_NONE) {
        unsigned char d[PIER_SHA256_LEN];
        size_t dn = 4;
        if (r->ck == PIER_S3_CK_CRC32 || r->ck == PIER_S3_CK_CRC32C) {
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
    pier_s3req *r = ctx;
    if (!r->err_code)
        check_digests(r);
    if (r->err_code) {
        pier_store_put_abort(r->put);
        r->put = NULL;
        pier_s3req_error(r, r->err_code, "%s", r->err_msg);
        return;
    }
    r->finish(r);
}

static void on_done(pier_server_req *req, void *ctx)
{
    pier_s3req *r = ctx;
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
int pier_s3req_body_begin(pier_s3req *r, pier_s3_body kind, pier_s3_finish_fn finish)
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
                return pier_s3req_error(r, "InvalidArgument",
                                        "x-amz-decoded-content-length is not a number"),
                       -1;
            r->have_decoded_len = true;
            declared = r->decoded_len;
        }
        bool is_signed = strcmp(sha, PIER_SIGV4_STREAMING_PAYLOAD) == 0 ||
                         strcmp(sha, PIER_SIGV4_STREAMING_PAYLOAD_TRAILER) == 0;
        bool unsigned_trailer = strcmp(sha, PIER_SIGV4_STREAMING_UNSIGNED_TRAILER) == 0;
        if (!is_signed && !unsigned_trailer)
            return pier_s3req_error(r, "NotImplemented", "x-amz-content-sha256 %s is not supported",
                                    sha),
                   -1;
        if (is_signed && (r->anonymous || !r->auth_ready || r->auth.presigned))
            return pier_s3req_error(r, "AccessDenied",
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
    if (kind != PIER_S3_BODY_XML && declared > r->api->max_object_size)
        return pier_s3req_error(r, "EntityTooLarge",
                                "Your proposed upload exceeds the maximum allowed size"),
               -1;
    if (kind == PIER_S3_BODY_XML && declared > XML_BODY_MAX)
        return pier_s3req_error(r, "MalformedXML", "The XML request body is too large"), -1;

    /* a declared checksum: in a header, or named by x-amz-trailer */
    const char *trailer = pier_server_req_header(r->req, "x-amz-trailer");
    for (int a = PIER_S3_CK_CRC32; a <= PIER_S3_CK_SHA256; a++) {
        char name[32];
        snprintf(name, sizeof name, "x-amz-checksum-%s", ck_names[a]);
        const char *v = pier_server_req_header(r->req, name);
        bool in_trailer = trailer && pier_str_ieq(trailer, name) && r->chunked;
        if (!v && !in_trailer)
            continue;
        r->ck = (pier_s3_ck)a;
        r->ck_want = v;
        if (a == PIER_S3_CK_SHA1)
            r->ck_hash = pier_hash_new(PIER_HASH_SHA1);
        else if (a == PIER_S3_CK_SHA256)
            r->ck_hash = pier_hash_new(PIER_HASH_SHA256);
        break;
    }
    const char *md5 = pier_server_req_header(r->req, "Content-MD5");
    if (md5) {
        pier_buf d = PIER_BUF_INIT;
        if (pier_base64_decode(&d, md5, strlen(md5)) != 0 || d.len != PIER_MD5_LEN) {
            pier_buf_free(&d);
            return pier_s3req_error(r, "InvalidDigest",
                                    "The Content-MD5 you specified was invalid."),
                   -1;
        }
        memcpy(r->md5_want, d.ptr, PIER_MD5_LEN);
        r->have_md5 = true;
        pier_buf_free(&d);
    }
    pier_server_req_read_body(r->req, on_body, on_end, r);
    return 0;
}

int pier_s3req_error(pier_s3req *r, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pier_s3req_error_status(r, code_status(code), code, "%s", msg);
}

const char *pier_s3req_ck_name(pier_s3_ck ck)
{
    static const char *const names[] = {"", "x-amz-checksum-crc32", "x-amz-checksum-crc32c",
                                        "x-amz-checksum-sha1", "x-amz-checksum-sha256"};
    return names[ck];
}

pier_s3req *pier_s3req_new(pier_s3api *api, pier_server_req *req)
{
    pier_s3req *r = pier_server_req_alloc(req, sizeof *r);
    memset(r, 0, sizeof *r);
    r->api = api;
    r->req = req;
    r->method = pier_server_req_method(req);
    pier_buf_init(&r->xml, XML_BODY_MAX);
    pier_random_token(r->request_id, 16, true);
    pier_server_req_on_done(req, on_done, r);
    return r;
}
