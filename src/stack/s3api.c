/*
 * s3api: see s3api.h. One request goes through a chain of small steps:
 *
 *   parse_query(), target()  bucket and key from the Host (virtual-hosted)
 *                            or the path; the query, decoded
 *   authenticate()           the one auth step: SigV4 over the raw path and
 *                            query (or legacy SigV2), secret from the lookup
 *   pier_s3req_allow()       the credential's authorization callback, per action
 *   dispatch_*()             method + sub-resource -> one operation
 *
 * This file holds the service and bucket operations and the listings;
 * object and multipart operations are in s3object.c, the shared request
 * state, errors and body pipeline in s3req.c. Operations without a body
 * answer in on_req; those with one answer when the body is in and checked.
 */
#include "stack/s3api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/http.h"
#include "stack/s3object.h"
#include "stack/s3req.h"
#include "stack/s3sigv2.h"

static char *decode(pier_s3req *r, const char *s, size_t n, bool plus_space)
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

static int parse_query(pier_s3req *r)
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
                pier_s3req_qparam *n = pier_server_req_alloc(r->req, cap * sizeof *n);
                if (r->qn)
                    memcpy(n, r->q, r->qn * sizeof *n);
                r->q = n;
            }
            r->q[r->qn].name = decode(r, p, (size_t)(name_end - p), true);
            r->q[r->qn].value = eq ? decode(r, eq + 1, (size_t)(stop - eq - 1), true) : "";
            if (!r->q[r->qn].name || !r->q[r->qn].value)
                return pier_s3req_error(r, "InvalidArgument", "bad percent-encoding in the query");
            r->qn++;
        }
        p = stop + 1;
    }
    return 0;
}

/* The bucket from a virtual-hosted Host header, or NULL for path style. */
static char *host_bucket(pier_s3req *r)
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
static int target(pier_s3req *r)
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
            return pier_s3req_error(r, "InvalidBucketName",
                                    "bad percent-encoding in the bucket name");
        p = slash ? slash + 1 : end;
    }
    pier_buf k = PIER_BUF_INIT;
    pier_buf_init(&k, 4 * PIER_STORE_KEY_MAX);
    int rc = pier_uri_decode(&k, p, (size_t)(end - p), false);
    if (rc != 0) {
        pier_buf_free(&k);
        if (rc == PIER_ETOOBIG)
            return pier_s3req_error(r, "KeyTooLongError", "Your key is too long");
        return pier_s3req_error(r, "InvalidArgument", "bad percent-encoding in the key");
    }
    r->key = pier_server_req_strndup(r->req, k.ptr ? k.ptr : "", k.len);
    r->key_len = k.len;
    pier_buf_free(&k);
    return 0;
}

static int lookup_wrap(void *ctx, const char *access_key_id, pier_sigv4_secret *out)
{
    pier_s3req *r = ctx;
    return r->api->lookup(r->api->lookup_ctx, access_key_id, out, &r->authorize, &r->authorize_ctx);
}

/* Signature Version 2 (Authorization "AWS id:sig", or a presigned URL with
 * AWSAccessKeyId, Signature and Expires): legacy clients. Same contract as
 * authenticate(). */
static int authenticate_v2(pier_s3req *r, const pier_http_headers *headers)
{
    const char *auth = pier_server_req_header(r->req, "Authorization");
    bool presigned = !auth || strncmp(auth, "AWS ", 4) != 0;
    char akid[PIER_SIGV4_KEY_ID_MAX + 1] = "";
    const char *sig = NULL, *expires = NULL;
    if (presigned) {
        snprintf(akid, sizeof akid, "%s", pier_s3req_query(r, "AWSAccessKeyId"));
        sig = pier_s3req_query(r, "Signature");
        expires = pier_s3req_query(r, "Expires");
    } else {
        const char *colon = strrchr(auth + 4, ':');
        if (colon && (size_t)(colon - auth - 4) < sizeof akid) {
            snprintf(akid, sizeof akid, "%.*s", (int)(colon - auth - 4), auth + 4);
            sig = colon + 1;
        }
    }
    if (!akid[0] || !sig || (presigned && !expires)) {
        pier_s3req_error(r, presigned ? "AuthorizationQueryParametersError" : "InvalidArgument",
                         "Signature Version 2 authorization is incomplete");
        return -1;
    }
    time_t now = time(NULL), t = 0;
    const char *date_line = "";
    if (presigned) {
        uint64_t e = 0;
        if (pier_parse_u64(expires, &e) != 0 || (time_t)e < now) {
            pier_s3req_error(r, "AccessDenied", "Request has expired");
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
            pier_s3req_error(r, "AccessDenied",
                             "AWS authentication requires a valid Date or "
                             "x-amz-date header");
            return -1;
        }
        if (t < now - PIER_SIGV4_MAX_SKEW || t > now + PIER_SIGV4_MAX_SKEW) {
            char nowbuf[32];
            pier_time_iso8601(nowbuf, sizeof nowbuf, now);
            pier_s3req_error(r, "RequestTimeTooSkewed",
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
        pier_s3req_error(r, "InvalidAccessKeyId",
                         "The AWS Access Key Id you provided does not exist in our records.");
        goto done;
    }
    if (rc) {
        pier_s3req_error(r, "InternalError", "%s", pier_error_last());
        goto done;
    }
    if (sec.expired) {
        pier_s3req_error(r, "ExpiredToken", "The provided token has expired.");
        goto done;
    }
    if (sec.session_token.len) {
        const char *tok = pier_server_req_header(r->req, "x-amz-security-token");
        if (!tok)
            tok = pier_s3req_query(r, "x-amz-security-token");
        if (!tok || !pier_ct_streq(tok, pier_buf_cstr(&sec.session_token))) {
            pier_s3req_error(r, "InvalidToken",
                             "The provided token is malformed or otherwise invalid.");
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
        pier_s3req_error(r, "SignatureDoesNotMatch",
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
static int authenticate(pier_s3req *r)
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
        (!authz && pier_s3req_query(r, "AWSAccessKeyId") && pier_s3req_query(r, "Signature"))) {
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
        pier_s3req_error_status(r, (unsigned)http, code,
                                "The difference between the request time and the server's time "
                                "(%s) is too large.",
                                now);
        return -1;
    }
    pier_s3req_error_status(r, (unsigned)http, code, "%s", pier_error_last());
    return -1;
}

static int list_buckets(pier_s3req *r)
{
    if (pier_s3req_allow(r, "s3:ListAllMyBuckets", "", ""))
        return 0;
    pier_store_bucket *list = NULL;
    size_t n = 0;
    pier_store_bucket_list(r->api->store, &list, &n);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, PIER_S3_XML_DECL "<ListAllMyBucketsResult xmlns=\"" PIER_S3_NS "\">"
                                       "<Owner><ID>pier</ID><DisplayName>pier</DisplayName></Owner>"
                                       "<Buckets>");
    for (size_t i = 0; i < n; i++) {
        char t[40];
        pier_s3req_time(t, sizeof t, list[i].created_ms);
        pier_buf_puts(&b, "<Bucket>");
        pier_s3req_xml_el(&b, "Name", list[i].name);
        pier_s3req_xml_el(&b, "CreationDate", t);
        pier_buf_puts(&b, "</Bucket>");
    }
    pier_buf_puts(&b, "</Buckets></ListAllMyBucketsResult>\n");
    free(list);
    int rc = pier_s3req_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

static int create_bucket_finish(pier_s3req *r)
{
    int rc = pier_store_bucket_create(r->api->store, r->bucket);
    if (rc == PIER_EEXISTS)
        return pier_s3req_error(
            r, "BucketAlreadyOwnedByYou",
            "Your previous request to create the named bucket succeeded and you "
            "already own it.");
    if (rc)
        return pier_s3req_store_error(r, rc);
    if (pier_str_ieq(pier_server_req_header(r->req, "x-amz-acl")
                         ? pier_server_req_header(r->req, "x-amz-acl")
                         : "",
                     "public-read") &&
        (rc = pier_store_bucket_set_public(r->api->store, r->bucket, true)) != 0)
        return pier_s3req_store_error(r, rc);
    char loc[80];
    snprintf(loc, sizeof loc, "/%s", r->bucket);
    pier_server_resp_header(r->req, "Location", loc);
    return pier_s3req_empty(r, 200);
}

static int delete_bucket(pier_s3req *r)
{
    if (pier_s3req_allow(r, "s3:DeleteBucket", r->bucket, ""))
        return 0;
    int rc = pier_store_bucket_delete(r->api->store, r->bucket);
    if (rc == PIER_ECONFLICT)
        return pier_s3req_error(r, "BucketNotEmpty", "The bucket you tried to delete is not empty");
    if (rc)
        return pier_s3req_store_error(r, rc);
    return pier_s3req_empty(r, 204);
}

static int head_bucket(pier_s3req *r)
{
    if (pier_s3req_allow(r, "s3:ListBucket", r->bucket, ""))
        return 0;
    int rc = pier_store_bucket_head(r->api->store, r->bucket, NULL);
    if (rc)
        return pier_s3req_store_error(r, rc);
    pier_server_resp_header(r->req, "x-amz-bucket-region", r->api->region);
    return pier_s3req_empty(r, 200);
}

static int bucket_location(pier_s3req *r)
{
    if (pier_s3req_allow(r, "s3:GetBucketLocation", r->bucket, ""))
        return 0;
    int rc = pier_store_bucket_head(r->api->store, r->bucket, NULL);
    if (rc)
        return pier_s3req_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, PIER_S3_XML_DECL "<LocationConstraint xmlns=\"" PIER_S3_NS "\">");
    if (strcmp(r->api->region, "us-east-1") != 0)
        pier_s3req_xml_text(&b, r->api->region, strlen(r->api->region));
    pier_buf_puts(&b, "</LocationConstraint>\n");
    rc = pier_s3req_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

/* The canned ACL named by x-amz-acl: 1 public-read, 0 private (or none),
 * -1 another (answered NotImplemented). */
static int canned_acl(pier_s3req *r)
{
    const char *acl = pier_server_req_header(r->req, "x-amz-acl");
    if (!acl || strcmp(acl, "private") == 0)
        return 0;
    if (strcmp(acl, "public-read") == 0)
        return 1;
    pier_s3req_error(r, "NotImplemented", "x-amz-acl %s is not supported (private or public-read)",
                     acl);
    return -1;
}

static int bucket_acl(pier_s3req *r)
{
    if (pier_s3req_allow(r, "s3:GetBucketAcl", r->bucket, ""))
        return 0;
    pier_store_bucket info;
    int rc = pier_store_bucket_head(r->api->store, r->bucket, &info);
    if (rc)
        return pier_s3req_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b,
                  PIER_S3_XML_DECL "<AccessControlPolicy xmlns=\"" PIER_S3_NS "\">"
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
    rc = pier_s3req_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

/* PutBucketAcl with a canned ACL header: public-read lets anyone GET and
 * HEAD the bucket's objects; private takes that back. */
static int put_bucket_acl(pier_s3req *r)
{
    if (pier_s3req_allow(r, "s3:PutBucketAcl", r->bucket, ""))
        return 0;
    if (!pier_server_req_header(r->req, "x-amz-acl"))
        return pier_s3req_error(
            r, "NotImplemented",
            "only canned ACLs in x-amz-acl (private, public-read) are supported");
    int pub = canned_acl(r);
    if (pub < 0)
        return 0;
    int rc = pier_store_bucket_set_public(r->api->store, r->bucket, pub == 1);
    if (rc)
        return pier_s3req_store_error(r, rc);
    return pier_s3req_empty(r, 200);
}

static int list_objects(pier_s3req *r, bool v2)
{
    if (pier_s3req_allow(r, "s3:ListBucket", r->bucket, ""))
        return 0;
    const char *prefix = pier_s3req_query(r, "prefix");
    const char *delim = pier_s3req_query(r, "delimiter");
    const char *enc = pier_s3req_query(r, "encoding-type");
    const char *token = v2 ? pier_s3req_query(r, "continuation-token") : NULL;
    const char *start_after =
        v2 ? pier_s3req_query(r, "start-after") : pier_s3req_query(r, "marker");
    bool url = false;
    size_t max;
    if (pier_s3req_parse_max(r, "max-keys", 1000, &max))
        return 0;
    if (enc) {
        if (strcmp(enc, "url") != 0)
            return pier_s3req_error(r, "InvalidArgument",
                                    "Invalid Encoding Method specified in Request");
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
            return pier_s3req_error(r, "InvalidArgument",
                                    "The continuation token provided is incorrect");
        }
        o.start_after = tok.ptr;
        o.start_after_len = tok.len;
    }
    pier_store_list_result res;
    int rc = pier_store_list(r->api->store, r->bucket, &o, &res);
    pier_buf_free(&tok);
    if (rc)
        return pier_s3req_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_init(&b, (size_t)256 << 20);
    pier_buf_puts(&b, PIER_S3_XML_DECL "<ListBucketResult xmlns=\"" PIER_S3_NS "\">");
    pier_s3req_xml_el(&b, "Name", r->bucket);
    pier_s3req_xml_key(&b, "Prefix", prefix ? prefix : "", o.prefix_len, url);
    if (v2) {
        pier_buf_printf(&b, "<KeyCount>%zu</KeyCount>", res.object_count + res.prefix_count);
        if (token)
            pier_s3req_xml_el(&b, "ContinuationToken", token);
        if (start_after)
            pier_s3req_xml_key(&b, "StartAfter", start_after, strlen(start_after), url);
    } else {
        pier_s3req_xml_key(&b, "Marker", start_after ? start_after : "", o.start_after_len, url);
    }
    pier_buf_printf(&b, "<MaxKeys>%zu</MaxKeys>", max);
    if (o.delimiter)
        pier_s3req_xml_key(&b, "Delimiter", delim, o.delimiter_len, url);
    if (url)
        pier_buf_puts(&b, "<EncodingType>url</EncodingType>");
    pier_buf_printf(&b, "<IsTruncated>%s</IsTruncated>", res.truncated ? "true" : "false");
    if (res.truncated && res.last) {
        if (v2) {
            pier_buf t = PIER_BUF_INIT;
            pier_base64_encode(&t, res.last, res.last_len);
            pier_s3req_xml_el(&b, "NextContinuationToken", t.ptr);
            pier_buf_free(&t);
        } else {
            pier_s3req_xml_key(&b, "NextMarker", res.last, res.last_len, url);
        }
    }
    for (size_t i = 0; i < res.object_count; i++) {
        pier_store_entry *e = &res.objects[i];
        char t[40];
        pier_s3req_time(t, sizeof t, e->mtime_ms);
        pier_buf_puts(&b, "<Contents>");
        pier_s3req_xml_key(&b, "Key", e->key, e->key_len, url);
        pier_buf_printf(&b,
                        "<LastModified>%s</LastModified><ETag>&quot;%s&quot;</ETag>"
                        "<Size>%llu</Size><StorageClass>STANDARD</StorageClass>",
                        t, e->etag, (unsigned long long)e->size);
        if (!v2 || pier_s3req_query(r, "fetch-owner"))
            pier_buf_puts(&b, "<Owner><ID>pier</ID><DisplayName>pier</DisplayName></Owner>");
        pier_buf_puts(&b, "</Contents>");
    }
    for (size_t i = 0; i < res.prefix_count; i++) {
        pier_buf_puts(&b, "<CommonPrefixes>");
        pier_s3req_xml_key(&b, "Prefix", res.prefixes[i], res.prefix_lens[i], url);
        pier_buf_puts(&b, "</CommonPrefixes>");
    }
    pier_buf_puts(&b, "</ListBucketResult>\n");
    pier_store_list_result_clear(&res);
    rc = pier_s3req_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

static int list_uploads(pier_s3req *r)
{
    if (pier_s3req_allow(r, "s3:ListBucketMultipartUploads", r->bucket, ""))
        return 0;
    const char *prefix = pier_s3req_query(r, "prefix");
    size_t plen = prefix ? strlen(prefix) : 0;
    pier_store_upload *u = NULL;
    size_t n = 0;
    int rc = pier_store_upload_list(r->api->store, r->bucket, &u, &n);
    if (rc)
        return pier_s3req_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, PIER_S3_XML_DECL "<ListMultipartUploadsResult xmlns=\"" PIER_S3_NS "\">");
    pier_s3req_xml_el(&b, "Bucket", r->bucket);
    pier_buf_puts(&b, "<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
                      "<NextKeyMarker></NextKeyMarker><NextUploadIdMarker></NextUploadIdMarker>");
    if (prefix)
        pier_s3req_xml_el(&b, "Prefix", prefix);
    pier_buf_puts(&b, "<MaxUploads>10000</MaxUploads><IsTruncated>false</IsTruncated>");
    for (size_t i = 0; i < n; i++) {
        if (plen && (u[i].key_len < plen || memcmp(u[i].key, prefix, plen) != 0))
            continue;
        char t[40];
        pier_s3req_time(t, sizeof t, u[i].initiated_ms);
        pier_buf_puts(&b, "<Upload>");
        pier_s3req_xml_key(&b, "Key", u[i].key, u[i].key_len, false);
        pier_s3req_xml_el(&b, "UploadId", u[i].upload_id);
        pier_buf_puts(&b, "<Initiator><ID>pier</ID><DisplayName>pier</DisplayName></Initiator>"
                          "<Owner><ID>pier</ID><DisplayName>pier</DisplayName></Owner>"
                          "<StorageClass>STANDARD</StorageClass>");
        pier_s3req_xml_el(&b, "Initiated", t);
        pier_buf_puts(&b, "</Upload>");
    }
    pier_buf_puts(&b, "</ListMultipartUploadsResult>\n");
    pier_store_upload_list_free(u, n);
    rc = pier_s3req_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

static int not_implemented(pier_s3req *r)
{
    return pier_s3req_error(r, "NotImplemented",
                            "A header or query you provided implies functionality that is not "
                            "implemented");
}

static int dispatch_bucket(pier_s3req *r)
{
    const char *m = r->method;
    if (strcmp(m, "GET") == 0) {
        if (pier_s3req_query(r, "location"))
            return bucket_location(r);
        if (pier_s3req_query(r, "uploads"))
            return list_uploads(r);
        if (pier_s3req_query(r, "acl"))
            return bucket_acl(r);
        if (pier_s3req_query(r, "versioning")) {
            if (pier_s3req_allow(r, "s3:GetBucketVersioning", r->bucket, ""))
                return 0;
            int rc = pier_store_bucket_head(r->api->store, r->bucket, NULL);
            if (rc)
                return pier_s3req_store_error(r, rc);
            pier_buf b = PIER_BUF_INIT;
            pier_buf_puts(&b,
                          PIER_S3_XML_DECL "<VersioningConfiguration xmlns=\"" PIER_S3_NS "\"/>\n");
            rc = pier_s3req_xml(r, 200, &b);
            pier_buf_free(&b);
            return rc;
        }
        static const char *const unsupported[] = {
            "policy",  "cors",       "lifecycle",   "website",      "tagging",
            "logging", "encryption", "replication", "notification", "object-lock"};
        for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
            if (pier_s3req_query(r, unsupported[i]))
                return not_implemented(r);
        const char *lt = pier_s3req_query(r, "list-type");
        return list_objects(r, lt && strcmp(lt, "2") == 0);
    }
    if (strcmp(m, "HEAD") == 0)
        return head_bucket(r);
    if (strcmp(m, "PUT") == 0) {
        if (pier_s3req_query(r, "acl"))
            return put_bucket_acl(r);
        if (r->qn > 0)
            return not_implemented(r);
        if (pier_s3req_allow(r, "s3:CreateBucket", r->bucket, "") || canned_acl(r) < 0)
            return 0;
        if (!pier_store_bucket_name_ok(r->bucket))
            return pier_s3req_error(r, "InvalidBucketName", "The specified bucket is not valid.");
        pier_s3req_body_begin(r, PIER_S3_BODY_XML, create_bucket_finish);
        return 0;
    }
    if (strcmp(m, "DELETE") == 0) {
        if (r->qn > 0)
            return not_implemented(r);
        return delete_bucket(r);
    }
    if (strcmp(m, "POST") == 0 && pier_s3req_query(r, "delete")) {
        if (pier_s3req_allow(r, "s3:DeleteObject", r->bucket, ""))
            return 0;
        int rc = pier_store_bucket_head(r->api->store, r->bucket, NULL);
        if (rc)
            return pier_s3req_store_error(r, rc);
        pier_s3req_body_begin(r, PIER_S3_BODY_XML, pier_s3object_delete_many_finish);
        return 0;
    }
    return pier_s3req_error(r, "MethodNotAllowed",
                            "The specified method is not allowed against this resource.");
}

static int dispatch_object(pier_s3req *r)
{
    const char *m = r->method;
    const char *upload_id = pier_s3req_query(r, "uploadId");
    if (strcmp(m, "GET") == 0) {
        if (upload_id)
            return pier_s3object_list_parts(r, upload_id);
        if (pier_s3req_query(r, "acl")) {
            if (pier_s3req_allow(r, "s3:GetObjectAcl", r->bucket, r->key))
                return 0;
            return bucket_acl(r);
        }
        if (pier_s3req_query(r, "tagging")) {
            pier_buf b = PIER_BUF_INIT;
            pier_buf_puts(&b, PIER_S3_XML_DECL "<Tagging xmlns=\"" PIER_S3_NS
                                               "\"><TagSet/></Tagging>\n");
            int rc = pier_s3req_xml(r, 200, &b);
            pier_buf_free(&b);
            return rc;
        }
        return pier_s3object_get(r, false);
    }
    if (strcmp(m, "HEAD") == 0)
        return pier_s3object_get(r, true);
    if (strcmp(m, "PUT") == 0) {
        if (upload_id)
            return pier_s3object_upload_part(r, upload_id);
        if (pier_s3req_query(r, "acl") || pier_s3req_query(r, "tagging"))
            return not_implemented(r);
        const char *src = pier_server_req_header(r->req, "x-amz-copy-source");
        if (src)
            return pier_s3object_copy(r, src);
        return pier_s3object_put(r);
    }
    if (strcmp(m, "DELETE") == 0)
        return upload_id ? pier_s3object_abort_upload(r, upload_id) : pier_s3object_delete(r);
    if (strcmp(m, "POST") == 0) {
        if (pier_s3req_query(r, "uploads"))
            return pier_s3object_create_upload(r);
        if (upload_id) {
            if (pier_s3req_allow(r, "s3:PutObject", r->bucket, r->key))
                return 0;
            r->upload_id = upload_id;
            pier_s3req_body_begin(r, PIER_S3_BODY_XML, pier_s3object_complete_finish);
            return 0;
        }
    }
    return pier_s3req_error(r, "MethodNotAllowed",
                            "The specified method is not allowed against this resource.");
}

static int on_req(pier_handler *self, pier_server_req *req)
{
    pier_s3api *api = (pier_s3api *)self;
    pier_s3req *r = pier_s3req_new(api, req);
    if (parse_query(r) || target(r))
        return 0;
    if (authenticate(r))
        return 0;
    if (!r->bucket[0]) {
        if (strcmp(r->method, "GET") == 0)
            return list_buckets(r);
        return pier_s3req_error(r, "MethodNotAllowed",
                                "The specified method is not allowed against this resource.");
    }
    if (r->key_len > PIER_STORE_KEY_MAX)
        return pier_s3req_error(r, "KeyTooLongError", "Your key is too long");
    if (!r->key_len)
        return dispatch_bucket(r);
    return dispatch_object(r);
}

static void dispose(pier_handler *self)
{
    pier_s3api *api = (pier_s3api *)self;
    free(api->region);
    for (size_t i = 0; i < api->domain_count; i++)
        free(api->domains[i]);
    free(api);
}

pier_handler *pier_s3api_new(const pier_s3api_options *o)
{
    pier_s3api *api = pier_calloc(1, sizeof *api);
    api->base.on_req = on_req;
    api->base.dispose = dispose;
    api->store = o->store;
    api->region = pier_strdup(o->region ? o->region : "us-east-1");
    api->lookup = o->lookup;
    api->lookup_ctx = o->lookup_ctx;
    api->max_object_size = o->max_object_size ? o->max_object_size : (uint64_t)5 << 30;
    char *domains = pier_strdup(o->domains ? o->domains : "s3.localhost,localhost"), *save = NULL;
    for (char *t = strtok_r(domains, ",", &save); t && api->domain_count < PIER_S3_MAX_DOMAINS;
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
