/*
 * s3: see s3.h. Every operation is an op (pier_s3_op, s3internal.h): an
 * awsreq call (first member, so the explain hook can get back to the op)
 * plus the bucket, the key and what the operation needs to read its answer.
 * An op is built (URL, headers, body), submitted, and its internal
 * completion parses the answer and calls the user's callback, then frees
 * the op. The synchronous forms submit the same ops and drive the client
 * until their flag is set.
 *
 * This file holds the client, the ops, errors explained, and the single
 * requests: head, get, put, delete (one or a batch), buckets, and listing.
 * Listing is synchronous: each page streams through an XML reader.
 * Multipart uploads are in s3multipart.c, built from the same ops.
 *
 * Costs: one op allocation per request.
 */
#include "aws/s3.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aws/s3internal.h"
#include "aws/sigv4.h"
#include "aws/xml.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/url.h"

/* ---- small helpers ------------------------------------------------------ */

char *pier_s3_dup_or_null(const char *s)
{
    return s ? pier_strdup(s) : NULL;
}

/* Copies the ETag without its quotes. */
char *pier_s3_etag_dup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
        return pier_strndup(s + 1, n - 2);
    return pier_strdup(s);
}

void pier_s3_headers_copy(pier_http_headers *dst, const pier_http_headers *src)
{
    for (size_t i = 0; src && i < src->count; i++)
        pier_http_headers_add(dst, src->items[i].name, src->items[i].value);
}

bool pier_s3_bucket_name_valid(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = b[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-';
        if (!ok)
            return false;
    }
    if (b[0] == '.' || b[0] == '-' || b[n - 1] == '.' || b[n - 1] == '-')
        return false;
    if (strstr(b, "..") || strstr(b, ".-") || strstr(b, "-."))
        return false;
    int dots = 0, digits_only = 1;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '.')
            dots++;
        else if (b[i] < '0' || b[i] > '9')
            digits_only = 0;
    }
    return !(dots == 3 && digits_only);
}

/* Virtual-hosted needs a DNS label-safe name; dots break https wildcards. */
static bool virtual_ok(const char *bucket)
{
    return pier_s3_bucket_name_valid(bucket) && !strchr(bucket, '.');
}

static bool use_virtual(const pier_s3 *s3, const char *bucket)
{
    switch (s3->addressing) {
    case PIER_S3_ADDRESSING_PATH:
        return false;
    case PIER_S3_ADDRESSING_VIRTUAL:
        return pier_s3_bucket_name_valid(bucket);
    default:
        return (!s3->custom || s3->aws_host) && virtual_ok(bucket);
    }
}

/* Appends bucket/key to out as a URL; key NULL: the bucket. */
static int build_url(const pier_s3 *s3, pier_buf *out, const char *bucket, const char *key)
{
    if (!bucket || !bucket[0])
        return pier_error_set(PIER_EINVALID, "S3: empty bucket name");
    if (key && (!key[0] || strlen(key) > PIER_S3_KEY_MAX))
        return pier_error_set(PIER_EINVALID, "S3: key must be 1..%d bytes (s3://%s/%.64s...)",
                              PIER_S3_KEY_MAX, bucket, key);
    int rc;
    if (use_virtual(s3, bucket)) {
        rc = pier_buf_printf(out, "%s://%s.%s%s/", s3->scheme, bucket, s3->hostport, s3->base_path);
    } else {
        rc = pier_buf_printf(out, "%s/", s3->endpoint);
        if (rc == 0)
            rc = pier_uri_encode(out, bucket, strlen(bucket), false);
        if (rc == 0 && key)
            rc = pier_buf_putc(out, '/');
    }
    if (rc == 0 && key)
        rc = pier_uri_encode(out, key, strlen(key), true);
    return rc;
}

int pier_s3_url(const pier_s3 *s3, pier_buf *out, const char *bucket, const char *key)
{
    return build_url(s3, out, bucket, key);
}

int pier_s3_parse_uri(const char *uri, char **bucket, char **prefix)
{
    *bucket = *prefix = NULL;
    if (!pier_str_starts_with(uri, "s3://"))
        return pier_error_set(PIER_EINVALID, "not an S3 URI (s3://BUCKET/PREFIX): %s", uri);
    const char *b = uri + 5;
    size_t n = strcspn(b, "/");
    if (n == 0)
        return pier_error_set(PIER_EINVALID, "S3 URI without a bucket: %s", uri);
    *bucket = pier_strndup(b, n);
    *prefix = pier_strdup(b[n] == '/' ? b + n + 1 : "");
    return 0;
}

/* ---- client ------------------------------------------------------------- */

static int explain(void *ctx, const pier_awsreq_call *call);

static bool env_true(const char *v)
{
    return v && (pier_str_ieq(v, "true") || strcmp(v, "1") == 0);
}

int pier_s3_new(pier_s3 **out, const pier_s3_options *opts)
{
    pier_s3_options none = PIER_S3_OPTIONS_INIT;
    pier_url u = {0};
    int rc;
    *out = NULL;
    if (!opts)
        opts = &none;
    pier_s3 *s3 = pier_calloc(1, sizeof *s3);
    pier_awsreq_service svc = {"S3", "s3", NULL, true, explain, s3};
    if ((rc = pier_awsreq_client_new(&s3->aws, &svc, &opts->shared)) < 0)
        goto done;

    const char *ep = pier_awsreq_client_endpoint(s3->aws);
    const char *region = pier_awsreq_client_region(s3->aws);
    if (ep) {
        s3->endpoint = pier_strdup(ep);
        s3->custom = true;
    } else {
        pier_buf b = PIER_BUF_INIT;
        pier_buf_printf(&b, "https://s3.%s.amazonaws.com%s", region,
                        pier_str_starts_with(region, "cn-") ? ".cn" : "");
        s3->endpoint = pier_buf_detach(&b);
    }
    if ((rc = pier_url_parse(&u, s3->endpoint)) < 0) {
        rc = pier_error_wrap(PIER_EINVALID, "S3 endpoint %s", s3->endpoint);
        goto done;
    }
    s3->scheme = pier_strdup(u.scheme);
    pier_buf hp = PIER_BUF_INIT;
    pier_buf_printf(&hp, strchr(u.host, ':') ? "[%s]" : "%s", u.host);
    if (u.port > 0)
        pier_buf_printf(&hp, ":%d", u.port);
    s3->hostport = pier_buf_detach(&hp);
    size_t pl = strlen(u.path);
    while (pl > 0 && u.path[pl - 1] == '/')
        pl--;
    s3->base_path = pier_strndup(u.path, pl);
    s3->aws_host = pier_str_ends_with(u.host, ".amazonaws.com") ||
                   pier_str_ends_with(u.host, ".amazonaws.com.cn");

    s3->addressing = opts->addressing;
    if (s3->addressing == PIER_S3_ADDRESSING_AUTO) {
        pier_aws_config *cfg = pier_awsreq_client_config(s3->aws);
        const char *style = pier_aws_config_get(cfg, "s3.addressing_style", NULL);
        const char *force = pier_aws_config_env(cfg, "AWS_S3_FORCE_PATH_STYLE");
        if (force)
            s3->addressing = env_true(force) ? PIER_S3_ADDRESSING_PATH : PIER_S3_ADDRESSING_AUTO;
        else if (style && pier_str_ieq(style, "path"))
            s3->addressing = PIER_S3_ADDRESSING_PATH;
        else if (style && pier_str_ieq(style, "virtual"))
            s3->addressing = PIER_S3_ADDRESSING_VIRTUAL;
    }

done:
    pier_url_free(&u);
    if (rc < 0) {
        pier_s3_free(s3);
        return rc;
    }
    *out = s3;
    return 0;
}

void pier_s3_free(pier_s3 *s3)
{
    if (!s3)
        return;
    pier_awsreq_client_free(s3->aws);
    free(s3->endpoint);
    free(s3->scheme);
    free(s3->hostport);
    free(s3->base_path);
    free(s3);
}

const char *pier_s3_region(const pier_s3 *s3)
{
    return pier_awsreq_client_region(s3->aws);
}

const char *pier_s3_endpoint(const pier_s3 *s3)
{
    return s3->endpoint;
}

pier_awsreq_client *pier_s3_awsreq(const pier_s3 *s3)
{
    return s3->aws;
}

int pier_s3_run(pier_s3 *s3)
{
    return pier_awsreq_run(s3->aws);
}

size_t pier_s3_pending(const pier_s3 *s3)
{
    return s3->pending;
}

/* ---- ops ---------------------------------------------------------------- */

void pier_s3_op_free(pier_s3_op *op)
{
    if (!op)
        return;
    pier_awsreq_call_free(&op->call);
    free(op->bucket);
    free(op->key);
    pier_s3_head_free(&op->own_head);
    pier_s3_delete_result_free(&op->own_del);
    free(op->etag);
    free(op->version_id);
    free(op->upload_id);
    free(op);
}

/* A new op for operation on bucket[/key] with an encoded query (or NULL). */
int pier_s3_op_new(pier_s3_op **out, pier_s3 *s3, const char *operation, const char *method,
                   const char *bucket, const char *key, const char *query)
{
    *out = NULL;
    pier_buf url = PIER_BUF_INIT;
    int rc = build_url(s3, &url, bucket, key);
    if (rc == 0 && query && query[0])
        rc = pier_buf_printf(&url, "?%s", query);
    if (rc < 0) {
        pier_buf_free(&url);
        return rc;
    }
    pier_s3_op *op = pier_calloc(1, sizeof *op);
    pier_awsreq_call_init(&op->call);
    op->s3 = s3;
    op->bucket = pier_strdup(bucket);
    op->key = pier_s3_dup_or_null(key);
    op->call.operation = operation;
    op->call.method = method;
    op->call.url = pier_buf_detach(&url);
    pier_buf what = PIER_BUF_INIT;
    if (key)
        pier_buf_printf(&what, "s3://%s/%s", bucket, key);
    else
        pier_buf_printf(&what, "bucket %s", bucket);
    op->call.what = pier_buf_detach(&what);
    pier_s3_head_init(&op->own_head);
    pier_s3_delete_result_init(&op->own_del);
    *out = op;
    return 0;
}

static void op_done(void *ctx, int rc, pier_awsreq_call *call)
{
    (void)call;
    pier_s3_op *op = ctx;
    op->complete(op, rc);
}

/* Submits op; on failure the op is freed and nothing will be called. A
 * counted op is a user operation of its own (pier_s3_pending). */
int pier_s3_op_submit(pier_s3_op *op, pier_s3_op_fn complete, bool counted)
{
    op->complete = complete;
    int rc = pier_awsreq_submit(op->s3->aws, &op->call, op_done, op);
    if (rc < 0) {
        pier_s3_op_free(op);
        return rc;
    }
    if (counted) {
        op->counted = true;
        op->s3->pending++;
    }
    return 0;
}

/* Reports op's outcome to its user callback, then frees it. The message of
 * a failure is kept across the callback's own work only as far as the
 * callback leaves it. */
void pier_s3_op_report(pier_s3_op *op, int rc)
{
    pier_s3 *s3 = op->s3;
    if (op->counted)
        s3->pending--;
    pier_s3_result res = {0};
    res.status = op->call.status;
    res.attempts = op->call.attempts;
    res.etag = op->etag;
    res.version_id = op->version_id;
    res.head = op->head_out;
    res.deleted = op->del_out;
    res.upload_id = op->upload_id;
    res.part = op->part;
    if (op->done)
        op->done(op->ctx, rc, &res);
    pier_s3_op_free(op);
}

/* ---- answers ------------------------------------------------------------ */

void pier_s3_head_init(pier_s3_head *h)
{
    memset(h, 0, sizeof *h);
}

void pier_s3_head_free(pier_s3_head *h)
{
    if (!h)
        return;
    free(h->etag);
    free(h->content_type);
    free(h->cache_control);
    free(h->content_encoding);
    free(h->content_disposition);
    free(h->version_id);
    pier_http_headers_free(&h->metadata);
    pier_http_headers_free(&h->headers);
    pier_s3_head_init(h);
}

static void fill_head(pier_s3_head *h, const pier_http_response *resp)
{
    pier_s3_head_free(h);
    const pier_http_headers *rh = &resp->headers;
    const char *len = pier_http_headers_get(rh, "Content-Length");
    if (len)
        pier_parse_u64(len, &h->size);
    h->etag = pier_s3_etag_dup(pier_http_headers_get(rh, "ETag"));
    h->content_type = pier_s3_dup_or_null(pier_http_headers_get(rh, "Content-Type"));
    h->cache_control = pier_s3_dup_or_null(pier_http_headers_get(rh, "Cache-Control"));
    h->content_encoding = pier_s3_dup_or_null(pier_http_headers_get(rh, "Content-Encoding"));
    h->content_disposition = pier_s3_dup_or_null(pier_http_headers_get(rh, "Content-Disposition"));
    h->version_id = pier_s3_dup_or_null(pier_http_headers_get(rh, "x-amz-version-id"));
    const char *lm = pier_http_headers_get(rh, "Last-Modified");
    time_t t;
    if (lm && pier_time_parse(lm, &t) == 0)
        h->last_modified = (int64_t)t;
    for (size_t i = 0; i < rh->count; i++) {
        const char *name = rh->items[i].name;
        pier_http_headers_add(&h->headers, name, rh->items[i].value);
        if (strncasecmp(name, "x-amz-meta-", 11) == 0 && name[11]) {
            char *lower = pier_strdup(name + 11);
            for (char *p = lower; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            pier_http_headers_add(&h->metadata, lower, rh->items[i].value);
            free(lower);
        }
    }
    pier_error_clear();
}

void pier_s3_delete_result_init(pier_s3_delete_result *r)
{
    memset(r, 0, sizeof *r);
}

void pier_s3_delete_result_free(pier_s3_delete_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->error_count; i++) {
        free(r->errors[i].key);
        free(r->errors[i].code);
        free(r->errors[i].message);
    }
    free(r->errors);
    pier_s3_delete_result_init(r);
}

/* ---- messages ----------------------------------------------------------- */

/* The IAM permission an operation needs. */
static const char *permission(const char *op)
{
    static const char *const map[][2] = {
        {"ListObjectsV2", "s3:ListBucket"},
        {"HeadBucket", "s3:ListBucket"},
        {"HeadObject", "s3:GetObject"},
        {"GetObject", "s3:GetObject"},
        {"PutObject", "s3:PutObject"},
        {"CreateMultipartUpload", "s3:PutObject"},
        {"UploadPart", "s3:PutObject"},
        {"CompleteMultipartUpload", "s3:PutObject"},
        {"AbortMultipartUpload", "s3:AbortMultipartUpload"},
        {"DeleteObject", "s3:DeleteObject"},
        {"DeleteObjects", "s3:DeleteObject"},
        {"CreateBucket", "s3:CreateBucket"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], op) == 0)
            return map[i][1];
    return NULL;
}

/* The bucket's region from a redirect or a malformed-authorization answer:
 * the x-amz-bucket-region header, else <Region> in the body, else the
 * region in an <Endpoint> like bucket.s3.eu-west-1.amazonaws.com. */
static char *redirect_region(const pier_http_response *resp)
{
    const char *h = pier_http_headers_get(&resp->headers, "x-amz-bucket-region");
    if (h && *h)
        return pier_strdup(h);
    char *region = NULL;
    pier_xml_doc *d = NULL;
    if (resp->body.len > 0 &&
        pier_xml_doc_parse(&d, resp->body.ptr, resp->body.len, "S3 error") == 0) {
        const char *r = pier_xml_doc_get(d, "Error/Region");
        const char *ep = pier_xml_doc_get(d, "Error/Endpoint");
        if (r && *r) {
            region = pier_strdup(r);
        } else if (ep) {
            const char *s = strstr(ep, ".s3.");
            if (!s)
                s = strstr(ep, ".s3-");
            if (s) {
                s += 4;
                size_t n = strcspn(s, ".");
                if (n > 0 && strncmp(s, "amazonaws", 9) != 0)
                    region = pier_strndup(s, n);
            }
        }
    }
    pier_xml_doc_free(d);
    pier_error_clear();
    return region;
}

static bool is(const char *code, const char *want)
{
    return code && strcmp(code, want) == 0;
}

/* S3's messages for a failed call (awsreq's explain hook). */
static int explain(void *ctx, const pier_awsreq_call *call)
{
    pier_s3 *s3 = ctx;
    const pier_s3_op *op = (const pier_s3_op *)call; /* the call is an op's first member */
    const char *code = call->error_code;
    const char *action = call->operation;
    const char *bucket = op->bucket;
    const char *region = pier_awsreq_client_region(s3->aws);
    long st = call->status;

    if (is(code, "PermanentRedirect") || is(code, "AuthorizationHeaderMalformed") ||
        is(code, "IllegalLocationConstraintException") ||
        (st == 301 && (!code || is(code, "PermanentRedirect"))) ||
        (is(code, "BadRequest") &&
         pier_http_headers_get(&call->resp.headers, "x-amz-bucket-region"))) {
        char *right = redirect_region(&call->resp);
        int rc;
        if (right && strcmp(right, region) != 0)
            rc = pier_error_set(PIER_EINVALID, "bucket %s is in %s, not %s: set AWS_REGION=%s",
                                bucket, right, region, right);
        else
            rc = pier_error_set(PIER_EINVALID,
                                "bucket %s is not in region %s (S3 answered %s for %s): set "
                                "AWS_REGION to the bucket's region",
                                bucket, region, code ? code : "a redirect", action);
        free(right);
        return rc;
    }
    if (is(code, "AccessDenied") || is(code, "AllAccessDisabled") ||
        (st == 403 && (!code || is(code, "Forbidden")))) {
        const char *perm = permission(action);
        if (perm)
            return pier_error_set(PIER_EAUTH,
                                  "access denied: %s on bucket %s (check the role's %s "
                                  "permission)",
                                  action, bucket, perm);
        return pier_error_set(PIER_EAUTH, "access denied: %s on bucket %s", action, bucket);
    }
    if (is(code, "SignatureDoesNotMatch"))
        return pier_error_set(PIER_EAUTH,
                              "signature rejected by S3 for %s on bucket %s: check the secret "
                              "access key and the system clock",
                              action, bucket);
    if (is(code, "InvalidAccessKeyId"))
        return pier_error_set(PIER_EAUTH,
                              "S3 does not know the access key id used for %s on bucket %s: "
                              "check the credentials (AWS_ACCESS_KEY_ID, the profile)",
                              action, bucket);
    if (is(code, "ExpiredToken") || is(code, "InvalidToken"))
        return pier_error_set(PIER_EAUTH,
                              "the session token was refused for %s on bucket %s (%s): "
                              "credentials expired or invalid",
                              action, bucket, code);
    if (is(code, "RequestTimeTooSkewed"))
        return pier_error_set(PIER_EAUTH,
                              "the system clock is too far from S3's for %s on bucket %s: "
                              "fix the clock (NTP)",
                              action, bucket);
    if (is(code, "NoSuchBucket") || (st == 404 && !op->key && (!code || is(code, "NotFound"))))
        return pier_error_set(PIER_ENOTFOUND, "no such bucket: %s (at %s)", bucket, s3->endpoint);
    if (is(code, "NoSuchKey") || (st == 404 && op->key && (!code || is(code, "NotFound"))))
        return pier_error_set(PIER_ENOTFOUND, "no such key: s3://%s/%s", bucket,
                              op->key ? op->key : "");
    if (is(code, "NoSuchUpload"))
        return pier_error_set(PIER_ENOTFOUND,
                              "no such multipart upload for s3://%s/%s (aborted or completed "
                              "already)",
                              bucket, op->key ? op->key : "");
    if (is(code, "BadDigest") || is(code, "InvalidDigest"))
        return pier_error_set(PIER_ECONFLICT,
                              "%s of s3://%s/%s: the content does not match its Content-MD5 "
                              "(%s): did the file change during the upload?",
                              action, bucket, op->key ? op->key : "", code);
    if (is(code, "BucketAlreadyOwnedByYou"))
        return pier_error_set(PIER_EEXISTS, "bucket %s already exists (and is yours)", bucket);
    if (is(code, "BucketAlreadyExists"))
        return pier_error_set(PIER_ECONFLICT,
                              "bucket name %s is taken by another account: choose another", bucket);
    return 0;
}

/* ---- head, get, put, delete ---------------------------------------------- */

static void head_complete(pier_s3_op *op, int rc)
{
    if (rc == 0 && op->head_out)
        fill_head(op->head_out, &op->call.resp);
    if (rc == 0) {
        op->etag = op->head_out
                       ? pier_s3_dup_or_null(op->head_out->etag)
                       : pier_s3_etag_dup(pier_http_headers_get(&op->call.resp.headers, "ETag"));
    }
    pier_s3_op_report(op, rc);
}

void pier_s3_sync_done(void *ctx, int rc, const pier_s3_result *res)
{
    pier_s3_sync *s = ctx;
    s->finished = true;
    s->rc = rc;
    if (rc < 0)
        snprintf(s->msg, sizeof s->msg, "%s", pier_error_last());
    if (rc == 0 && (res->etag || res->upload_id))
        s->etag = pier_strdup(res->etag ? res->etag : res->upload_id);
}

int pier_s3_sync_wait(pier_s3 *s3, pier_s3_sync *s, char **etag)
{
    int rc = pier_awsreq_run_until(s3->aws, &s->finished);
    if (rc < 0 && !s->finished)
        return rc;
    if (s->rc < 0) {
        free(s->etag);
        return pier_error_set(s->rc, "%s", s->msg);
    }
    if (etag)
        *etag = s->etag;
    else
        free(s->etag);
    pier_error_clear();
    return 0;
}

static int head_submit(pier_s3 *s3, const char *bucket, const char *key, pier_s3_head *out,
                       pier_s3_done_fn done, void *ctx)
{
    pier_s3_op *op;
    int rc = pier_s3_op_new(&op, s3, "HeadObject", "HEAD", bucket, key, NULL);
    if (rc < 0)
        return rc;
    op->call.no_body = true;
    op->head_out = out ? out : &op->own_head;
    op->done = done;
    op->ctx = ctx;
    return pier_s3_op_submit(op, head_complete, true);
}

int pier_s3_head_object(pier_s3 *s3, const char *bucket, const char *key, pier_s3_head *out)
{
    pier_s3_sync s = {0};
    int rc = head_submit(s3, bucket, key, out, pier_s3_sync_done, &s);
    return rc < 0 ? rc : pier_s3_sync_wait(s3, &s, NULL);
}

int pier_s3_head_object_async(pier_s3 *s3, const char *bucket, const char *key,
                              pier_s3_done_fn done, void *ctx)
{
    return head_submit(s3, bucket, key, NULL, done, ctx);
}

static void get_complete(pier_s3_op *op, int rc)
{
    if (rc == 0 && op->head_out)
        fill_head(op->head_out, &op->call.resp);
    if (rc == 0 && op->get_out) {
        pier_buf *b = &op->call.resp.body;
        if (b->len > 0 && (rc = pier_buf_put(op->get_out, b->ptr, b->len)) < 0)
            rc = pier_error_wrap(rc, "GetObject s3://%s/%s", op->bucket, op->key);
    }
    pier_s3_op_report(op, rc);
}

static int get_common(pier_s3 *s3, const char *bucket, const char *key, pier_buf *out,
                      const char *path, pier_s3_head *head)
{
    pier_s3_op *op;
    pier_s3_sync s = {0};
    int rc = pier_s3_op_new(&op, s3, "GetObject", "GET", bucket, key, NULL);
    if (rc < 0)
        return rc;
    if (out) {
        size_t room = out->max > out->len ? out->max - out->len : 0;
        if (room == 0) {
            pier_s3_op_free(op);
            return pier_error_set(PIER_ETOOBIG, "GetObject s3://%s/%s: buffer full", bucket, key);
        }
        /* Room for an error document even when out is nearly full; a
         * body past out's cap still fails when appended. */
        op->call.response_max = room < 65536 ? 65536 : room;
        op->get_out = out;
    } else {
        op->call.response_file = pier_strdup(path);
    }
    op->head_out = head;
    op->done = pier_s3_sync_done;
    op->ctx = &s;
    if ((rc = pier_s3_op_submit(op, get_complete, false)) < 0)
        return rc;
    return pier_s3_sync_wait(s3, &s, NULL);
}

int pier_s3_get_object(pier_s3 *s3, const char *bucket, const char *key, pier_buf *out,
                       pier_s3_head *head)
{
    return get_common(s3, bucket, key, out, NULL, head);
}

int pier_s3_get_object_file(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                            pier_s3_head *head)
{
    return get_common(s3, bucket, key, NULL, path, head);
}

/* Adds the object headers of opts to a call; md5 only when with_md5. */
int pier_s3_put_headers(pier_awsreq_call *call, const pier_s3_put_options *o, bool with_md5)
{
    if (!o)
        return 0;
    if (o->content_type)
        pier_http_headers_set(&call->headers, "Content-Type", o->content_type);
    if (o->cache_control)
        pier_http_headers_set(&call->headers, "Cache-Control", o->cache_control);
    if (o->content_encoding)
        pier_http_headers_set(&call->headers, "Content-Encoding", o->content_encoding);
    if (o->content_disposition)
        pier_http_headers_set(&call->headers, "Content-Disposition", o->content_disposition);
    pier_s3_headers_copy(&call->headers, o->headers);
    if (with_md5 && o->md5) {
        pier_buf b = PIER_BUF_INIT;
        int rc = pier_base64_encode(&b, o->md5, PIER_MD5_LEN);
        if (rc == 0)
            pier_http_headers_set(&call->headers, "Content-MD5", pier_buf_cstr(&b));
        pier_buf_free(&b);
        return rc;
    }
    return 0;
}

static void put_complete(pier_s3_op *op, int rc)
{
    if (rc == 0) {
        op->etag = pier_s3_etag_dup(pier_http_headers_get(&op->call.resp.headers, "ETag"));
        op->version_id =
            pier_s3_dup_or_null(pier_http_headers_get(&op->call.resp.headers, "x-amz-version-id"));
    }
    pier_s3_op_report(op, rc);
}

/* Size of a regular file, naming it on failure. */
int pier_s3_file_size(const char *path, uint64_t *size)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO, "%s", path);
    if (!S_ISREG(st.st_mode))
        return pier_error_set(PIER_EINVALID, "%s: not a regular file", path);
    *size = (uint64_t)st.st_size;
    return 0;
}

static int put_submit(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                      const void *data, size_t n, const pier_s3_put_options *opts,
                      pier_s3_done_fn done, void *ctx)
{
    pier_s3_op *op;
    uint64_t size = 0;
    int rc;
    if (path && (rc = pier_s3_file_size(path, &size)) < 0)
        return rc;
    if ((rc = pier_s3_op_new(&op, s3, "PutObject", "PUT", bucket, key, NULL)) < 0)
        return rc;
    if (path) {
        op->call.body_file = pier_strdup(path);
        op->call.body_file_len = size;
    } else if (n > 0 && (rc = pier_buf_put(&op->call.body, data, n)) < 0) {
        pier_s3_op_free(op);
        return rc;
    }
    /* S3 accepts an unsigned payload over http too; Content-MD5 guards it. */
    op->call.payload_hash = PIER_SIGV4_UNSIGNED_PAYLOAD;
    if ((rc = pier_s3_put_headers(&op->call, opts, true)) < 0) {
        pier_s3_op_free(op);
        return rc;
    }
    op->done = done;
    op->ctx = ctx;
    return pier_s3_op_submit(op, put_complete, true);
}

int pier_s3_put_file(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                     const pier_s3_put_options *opts, char **etag)
{
    pier_s3_sync s = {0};
    int rc = put_submit(s3, bucket, key, path, NULL, 0, opts, pier_s3_sync_done, &s);
    return rc < 0 ? rc : pier_s3_sync_wait(s3, &s, etag);
}

int pier_s3_put_memory(pier_s3 *s3, const char *bucket, const char *key, const void *data, size_t n,
                       const pier_s3_put_options *opts, char **etag)
{
    pier_s3_sync s = {0};
    int rc = put_submit(s3, bucket, key, NULL, data, n, opts, pier_s3_sync_done, &s);
    return rc < 0 ? rc : pier_s3_sync_wait(s3, &s, etag);
}

int pier_s3_put_file_async(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                           const pier_s3_put_options *opts, pier_s3_done_fn done, void *ctx)
{
    return put_submit(s3, bucket, key, path, NULL, 0, opts, done, ctx);
}

int pier_s3_put_memory_async(pier_s3 *s3, const char *bucket, const char *key, const void *data,
                             size_t n, const pier_s3_put_options *opts, pier_s3_done_fn done,
                             void *ctx)
{
    return put_submit(s3, bucket, key, NULL, data, n, opts, done, ctx);
}

static void plain_complete(pier_s3_op *op, int rc)
{
    pier_s3_op_report(op, rc);
}

/* A bodiless request, synchronously. */
int pier_s3_simple_do(pier_s3 *s3, const char *operation, const char *method, const char *bucket,
                      const char *key, const char *query)
{
    pier_s3_op *op;
    pier_s3_sync s = {0};
    int rc = pier_s3_op_new(&op, s3, operation, method, bucket, key, query);
    if (rc < 0)
        return rc;
    if (strcmp(method, "HEAD") == 0)
        op->call.no_body = true;
    op->done = pier_s3_sync_done;
    op->ctx = &s;
    if ((rc = pier_s3_op_submit(op, plain_complete, false)) < 0)
        return rc;
    return pier_s3_sync_wait(s3, &s, NULL);
}

int pier_s3_delete_object(pier_s3 *s3, const char *bucket, const char *key)
{
    return pier_s3_simple_do(s3, "DeleteObject", "DELETE", bucket, key, NULL);
}

int pier_s3_head_bucket(pier_s3 *s3, const char *bucket)
{
    return pier_s3_simple_do(s3, "HeadBucket", "HEAD", bucket, NULL, NULL);
}

int pier_s3_create_bucket(pier_s3 *s3, const char *bucket)
{
    pier_s3_op *op;
    pier_s3_sync s = {0};
    int rc = pier_s3_op_new(&op, s3, "CreateBucket", "PUT", bucket, NULL, NULL);
    if (rc < 0)
        return rc;
    const char *region = pier_awsreq_client_region(s3->aws);
    if (strcmp(region, "us-east-1") != 0 && !s3->custom) {
        pier_buf_printf(&op->call.body,
                        "<CreateBucketConfiguration xmlns=\"" PIER_S3_XMLNS "\">"
                        "<LocationConstraint>%s</LocationConstraint>"
                        "</CreateBucketConfiguration>",
                        region);
    }
    op->done = pier_s3_sync_done;
    op->ctx = &s;
    if ((rc = pier_s3_op_submit(op, plain_complete, false)) < 0)
        return rc;
    return pier_s3_sync_wait(s3, &s, NULL);
}

/* ---- listing ------------------------------------------------------------ */

typedef struct {
    pier_xml_reader *reader; /* this attempt's parser */
    char *what;              /* the listing, for parse errors */
    pier_s3_list_fn fn;      /* user callback */
    void *ctx;               /* its context */
    pier_buf key;            /* current <Contents> fields ... */
    pier_buf etag;           /* ... */
    pier_buf storage_class;  /* ... */
    uint64_t size;           /* ... */
    int64_t last_modified;   /* ... */
    char *last;              /* last key delivered (never deliver twice) */
    char *next_token;        /* NextContinuationToken of this page */
    bool truncated;          /* IsTruncated of this page */
    int user_rc;             /* the callback stopped the listing */
    char user_msg[1100];     /* with this message */
} list_state;

static int list_element(void *ctx, const char *path, int depth, const char *text, size_t len)
{
    (void)depth;
    list_state *ls = ctx;
    if (!pier_str_starts_with(path, "ListBucketResult/"))
        return 0;
    const char *p = path + 17;
    if (strcmp(p, "Contents/Key") == 0) {
        pier_buf_reset(&ls->key);
        return pier_buf_put(&ls->key, text, len);
    }
    if (strcmp(p, "Contents/ETag") == 0) {
        pier_buf_reset(&ls->etag);
        if (len >= 2 && text[0] == '"' && text[len - 1] == '"')
            return pier_buf_put(&ls->etag, text + 1, len - 2);
        return pier_buf_put(&ls->etag, text, len);
    }
    if (strcmp(p, "Contents/Size") == 0) {
        if (pier_parse_u64(text, &ls->size) < 0)
            return pier_error_set(PIER_EINVALID, "%s: bad <Size> %s", ls->what, text);
        return 0;
    }
    if (strcmp(p, "Contents/LastModified") == 0) {
        time_t t;
        ls->last_modified = pier_time_parse(text, &t) == 0 ? (int64_t)t : 0;
        pier_error_clear();
        return 0;
    }
    if (strcmp(p, "Contents/StorageClass") == 0) {
        pier_buf_reset(&ls->storage_class);
        return pier_buf_put(&ls->storage_class, text, len);
    }
    if (strcmp(p, "Contents") == 0) {
        const char *key = pier_buf_cstr(&ls->key);
        int rc = 0;
        if (!ls->last || strcmp(key, ls->last) > 0) {
            pier_s3_object o = {key, ls->size, pier_buf_cstr(&ls->etag), ls->last_modified,
                                pier_buf_cstr(&ls->storage_class)};
            rc = ls->fn(ls->ctx, &o);
            if (rc != 0) {
                ls->user_rc = rc < 0 ? rc : PIER_ERR;
                snprintf(ls->user_msg, sizeof ls->user_msg, "%s", pier_error_last());
                return ls->user_rc;
            }
            free(ls->last);
            ls->last = pier_strdup(key);
        }
        pier_buf_reset(&ls->key);
        pier_buf_reset(&ls->etag);
        pier_buf_reset(&ls->storage_class);
        ls->size = 0;
        ls->last_modified = 0;
        return 0;
    }
    if (strcmp(p, "NextContinuationToken") == 0) {
        free(ls->next_token);
        ls->next_token = pier_strndup(text, len);
        return 0;
    }
    if (strcmp(p, "IsTruncated") == 0) {
        ls->truncated = strcmp(text, "true") == 0;
        return 0;
    }
    return 0;
}

static int list_attempt(void *ctx, int attempt)
{
    (void)attempt;
    list_state *ls = ctx;
    pier_xml_reader_free(ls->reader);
    ls->reader = NULL;
    PIER_FREE(ls->next_token);
    ls->truncated = false;
    pier_buf_reset(&ls->key);
    pier_buf_reset(&ls->etag);
    pier_buf_reset(&ls->storage_class);
    ls->size = 0;
    ls->last_modified = 0;
    return pier_xml_reader_new(&ls->reader, ls->what, list_element, ls);
}

static int list_body(void *ctx, const char *data, size_t n)
{
    list_state *ls = ctx;
    return pier_xml_reader_body(ls->reader, data, n);
}

/* Appends "&name=value" (value encoded). */
static int query_add(pier_buf *q, const char *name, const char *value)
{
    int rc = pier_buf_printf(q, "%s%s=", q->len ? "&" : "", name);
    if (rc == 0)
        rc = pier_uri_encode(q, value, strlen(value), false);
    return rc;
}

int pier_s3_list_objects(pier_s3 *s3, const char *bucket, const pier_s3_list_options *opts,
                         pier_s3_list_fn fn, void *ctx)
{
    pier_s3_list_options none = PIER_S3_LIST_OPTIONS_INIT;
    list_state ls;
    char *token = NULL;
    int rc = 0;
    if (!opts)
        opts = &none;
    memset(&ls, 0, sizeof ls);
    ls.fn = fn;
    ls.ctx = ctx;
    pier_buf_init(&ls.key, 4096);
    pier_buf_init(&ls.etag, 256);
    pier_buf_init(&ls.storage_class, 256);
    pier_buf w = PIER_BUF_INIT;
    pier_buf_printf(&w, "ListObjectsV2 of s3://%s/%s", bucket, opts->prefix ? opts->prefix : "");
    ls.what = pier_buf_detach(&w);

    for (int page = 0;; page++) {
        pier_buf q = PIER_BUF_INIT;
        /* Parameters in the canonical (sorted) order. */
        if (token)
            query_add(&q, "continuation-token", token);
        query_add(&q, "list-type", "2");
        if (opts->max_keys > 0) {
            char mk[16];
            snprintf(mk, sizeof mk, "%d", opts->max_keys > 1000 ? 1000 : opts->max_keys);
            query_add(&q, "max-keys", mk);
        }
        if (opts->prefix && opts->prefix[0])
            query_add(&q, "prefix", opts->prefix);
        if (!token && opts->start_after && opts->start_after[0])
            query_add(&q, "start-after", opts->start_after);

        pier_s3_op *op;
        rc = pier_s3_op_new(&op, s3, "ListObjectsV2", "GET", bucket, NULL, pier_buf_cstr(&q));
        pier_buf_free(&q);
        if (rc < 0)
            break;
        op->call.on_body = list_body;
        op->call.on_body_ctx = &ls;
        op->call.on_attempt = list_attempt;
        op->call.on_attempt_ctx = &ls;
        rc = pier_awsreq_do(s3->aws, &op->call);
        if (rc == 0 && (rc = pier_xml_reader_finish(ls.reader)) == 0 &&
            strcmp(pier_xml_reader_root(ls.reader), "ListBucketResult") != 0)
            rc = pier_error_set(PIER_EINVALID, "%s: unexpected answer <%s>", ls.what,
                                pier_xml_reader_root(ls.reader));
        pier_s3_op_free(op);
        if (ls.user_rc) {
            rc = pier_error_set(ls.user_rc, "%s", ls.user_msg);
            break;
        }
        if (rc < 0)
            break;
        if (!ls.truncated)
            break;
        if (!ls.next_token || !ls.next_token[0]) {
            rc = pier_error_set(PIER_EINVALID, "%s: truncated page without a continuation token",
                                ls.what);
            break;
        }
        free(token);
        token = ls.next_token;
        ls.next_token = NULL;
    }

    free(token);
    pier_xml_reader_free(ls.reader);
    free(ls.what);
    free(ls.last);
    free(ls.next_token);
    pier_buf_free(&ls.key);
    pier_buf_free(&ls.etag);
    pier_buf_free(&ls.storage_class);
    if (rc == 0)
        pier_error_clear();
    return rc;
}

/* ---- DeleteObjects ------------------------------------------------------ */

typedef struct {
    pier_s3_delete_result *out;  /* where errors go */
    size_t errors;               /* errors of this batch */
    size_t deleted_seen;         /* <Deleted> elements (non-quiet stores) */
    pier_buf key, code, message; /* the current <Error>'s fields */
} delete_parse;

static int delete_element(void *ctx, const char *path, int depth, const char *text, size_t len)
{
    (void)depth;
    delete_parse *dp = ctx;
    if (strcmp(path, "DeleteResult/Error/Key") == 0) {
        pier_buf_reset(&dp->key);
        return pier_buf_put(&dp->key, text, len);
    }
    if (strcmp(path, "DeleteResult/Error/Code") == 0) {
        pier_buf_reset(&dp->code);
        return pier_buf_put(&dp->code, text, len);
    }
    if (strcmp(path, "DeleteResult/Error/Message") == 0) {
        pier_buf_reset(&dp->message);
        return pier_buf_put(&dp->message, text, len);
    }
    if (strcmp(path, "DeleteResult/Deleted") == 0) {
        dp->deleted_seen++;
        return 0;
    }
    if (strcmp(path, "DeleteResult/Error") == 0) {
        pier_s3_delete_result *r = dp->out;
        if (r->error_count == r->error_cap) {
            r->error_cap = r->error_cap ? r->error_cap * 2 : 8;
            r->errors = pier_realloc(r->errors, r->error_cap * sizeof *r->errors);
        }
        pier_s3_delete_error *e = &r->errors[r->error_count++];
        e->key = pier_strdup(pier_buf_cstr(&dp->key));
        e->code = pier_strdup(dp->code.len ? pier_buf_cstr(&dp->code) : "InternalError");
        e->message = dp->message.len ? pier_strdup(pier_buf_cstr(&dp->message)) : NULL;
        dp->errors++;
        pier_buf_reset(&dp->key);
        pier_buf_reset(&dp->code);
        pier_buf_reset(&dp->message);
    }
    return 0;
}

/* The message for per-key failures; PIER_ERR. */
static int delete_failed(const char *bucket, const pier_s3_delete_result *r, size_t first)
{
    const pier_s3_delete_error *e = &r->errors[first];
    size_t n = r->error_count - first;
    return pier_error_set(PIER_ERR,
                          "DeleteObjects on bucket %s: %zu key%s not deleted, first "
                          "s3://%s/%s: %s%s%s",
                          bucket, n, n == 1 ? "" : "s", bucket, e->key, e->code,
                          e->message ? ": " : "", e->message ? e->message : "");
}

static void delete_complete(pier_s3_op *op, int rc)
{
    if (rc == 0) {
        pier_s3_delete_result *r = op->del_out;
        size_t first = r->error_count;
        delete_parse dp = {r, 0, 0, PIER_BUF_INIT, PIER_BUF_INIT, PIER_BUF_INIT};
        pier_xml_reader *xr = NULL;
        const pier_buf *b = &op->call.resp.body;
        rc = pier_xml_reader_new(&xr, "DeleteObjects answer", delete_element, &dp);
        if (rc == 0)
            rc = pier_xml_reader_feed(xr, b->ptr ? b->ptr : "", b->len);
        if (rc == 0)
            rc = pier_xml_reader_finish(xr);
        if (rc == 0 && strcmp(pier_xml_reader_root(xr), "DeleteResult") != 0)
            rc = pier_error_set(PIER_EINVALID, "DeleteObjects on bucket %s: unexpected answer <%s>",
                                op->bucket, pier_xml_reader_root(xr));
        if (rc == 0) {
            r->deleted += op->del_n > dp.errors ? op->del_n - dp.errors : 0;
            if (dp.errors > 0)
                rc = delete_failed(op->bucket, r, first);
        }
        pier_xml_reader_free(xr);
        pier_buf_free(&dp.key);
        pier_buf_free(&dp.code);
        pier_buf_free(&dp.message);
    }
    pier_s3_op_report(op, rc);
}

static int delete_submit(pier_s3 *s3, const char *bucket, const char *const *keys, size_t n,
                         pier_s3_delete_result *out, pier_s3_done_fn done, void *ctx)
{
    if (n == 0 || n > PIER_S3_DELETE_BATCH)
        return pier_error_set(PIER_EINVALID, "DeleteObjects: 1..%d keys per batch, not %zu",
                              PIER_S3_DELETE_BATCH, n);
    pier_s3_op *op;
    int rc = pier_s3_op_new(&op, s3, "DeleteObjects", "POST", bucket, NULL, "delete=");
    if (rc < 0)
        return rc;
    pier_buf *body = &op->call.body;
    pier_buf_puts(body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                        "<Delete xmlns=\"" PIER_S3_XMLNS "\"><Quiet>true</Quiet>");
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!keys[i][0] || strlen(keys[i]) > PIER_S3_KEY_MAX) {
            rc = pier_error_set(PIER_EINVALID, "DeleteObjects: key must be 1..%d bytes",
                                PIER_S3_KEY_MAX);
            break;
        }
        pier_buf_puts(body, "<Object><Key>");
        if ((rc = pier_xml_escape(body, keys[i], strlen(keys[i]))) < 0) {
            rc = pier_error_wrap(rc, "DeleteObjects: key s3://%s/%s", bucket, keys[i]);
            break;
        }
        rc = pier_buf_puts(body, "</Key></Object>");
    }
    if (rc == 0)
        rc = pier_buf_puts(body, "</Delete>");
    if (rc < 0) {
        pier_s3_op_free(op);
        return rc;
    }
    unsigned char md5[PIER_MD5_LEN];
    pier_md5(md5, body->ptr, body->len);
    pier_buf b64 = PIER_BUF_INIT;
    pier_base64_encode(&b64, md5, sizeof md5);
    pier_http_headers_set(&op->call.headers, "Content-MD5", pier_buf_cstr(&b64));
    pier_http_headers_set(&op->call.headers, "Content-Type", "application/xml");
    pier_buf_free(&b64);
    op->del_n = n;
    op->del_out = out ? out : &op->own_del;
    op->done = done;
    op->ctx = ctx;
    return pier_s3_op_submit(op, delete_complete, true);
}

int pier_s3_delete_objects_async(pier_s3 *s3, const char *bucket, const char *const *keys, size_t n,
                                 pier_s3_done_fn done, void *ctx)
{
    return delete_submit(s3, bucket, keys, n, NULL, done, ctx);
}

int pier_s3_delete_objects(pier_s3 *s3, const char *bucket, const char *const *keys, size_t n,
                           pier_s3_delete_result *out)
{
    pier_s3_delete_result own;
    pier_s3_delete_result *r = out ? out : &own;
    pier_s3_delete_result_init(&own);
    size_t first_error = r->error_count;
    int rc = 0;
    for (size_t at = 0; at < n; at += PIER_S3_DELETE_BATCH) {
        size_t m = n - at < PIER_S3_DELETE_BATCH ? n - at : PIER_S3_DELETE_BATCH;
        pier_s3_sync s = {0};
        rc = delete_submit(s3, bucket, keys + at, m, r, pier_s3_sync_done, &s);
        if (rc == 0)
            rc = pier_s3_sync_wait(s3, &s, NULL);
        if (rc < 0 && rc != PIER_ERR)
            break; /* the request failed: the next batches would too */
        rc = 0;
    }
    if (rc == 0 && r->error_count > first_error)
        rc = delete_failed(bucket, r, first_error);
    pier_s3_delete_result_free(&own);
    if (rc == 0)
        pier_error_clear();
    return rc;
}
