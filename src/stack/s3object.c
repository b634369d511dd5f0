/*
 * s3object: see s3object.h. GET and HEAD open the object once and answer
 * from that file descriptor (sendfile for GET), so a concurrent replace never
 * mixes versions; preconditions (If-Match, If-None-Match, If-Modified-Since,
 * If-Unmodified-Since) and a single Range are evaluated on that version.
 * PUT and UploadPart stream through s3req's body pipeline into a store
 * write that commits only after every digest matched. Full-object checksums
 * are returned on GET/HEAD of the whole object only (never for a range).
 */
#include "stack/s3object.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/xml.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"

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
static void request_metadata(pier_s3req *r, pier_store_header **out, size_t *count)
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
static const char *header_case(pier_s3req *r, const char *name)
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
static void object_headers(pier_s3req *r, const pier_store_meta *m, bool full)
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
            if (pier_str_ieq(name, overrides[j].header) && pier_s3req_query(r, overrides[j].param))
                overridden = true;
        if (overridden || (is_checksum_header(name) && !full))
            continue;
        if (pier_str_ieq(name, "content-type"))
            have_type = true;
        pier_server_resp_header(r->req, header_case(r, name), m->headers[i].value);
    }
    for (size_t j = 0; j < sizeof overrides / sizeof *overrides; j++) {
        const char *v = pier_s3req_query(r, overrides[j].param);
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
static unsigned preconditions(pier_s3req *r, const pier_store_meta *m)
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

int pier_s3object_get(pier_s3req *r, bool head)
{
    if (pier_s3req_allow(r, "s3:GetObject", r->bucket, r->key))
        return 0;
    int fd = -1;
    pier_store_meta m;
    int rc = pier_store_get(r->api->store, r->bucket, r->key, r->key_len, &fd, &m);
    if (rc)
        return pier_s3req_store_error(r, rc);
    unsigned pre = preconditions(r, &m);
    if (pre == 304) {
        char etag[PIER_STORE_ETAG_MAX + 2], date[64];
        snprintf(etag, sizeof etag, "\"%s\"", m.etag);
        pier_time_http(date, sizeof date, (time_t)(m.mtime_ms / 1000));
        pier_server_resp_header(r->req, "ETag", etag);
        pier_server_resp_header(r->req, "Last-Modified", date);
        close(fd);
        pier_store_meta_clear(&m);
        return pier_s3req_empty(r, 304);
    }
    if (pre == 412) {
        close(fd);
        pier_store_meta_clear(&m);
        return pier_s3req_error(r, "PreconditionFailed",
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
        return pier_s3req_error(r, "InvalidRange", "The requested range is not satisfiable");
    }
    object_headers(r, &m, range == 0);
    pier_s3req_common_headers(r);
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

int pier_s3object_delete(pier_s3req *r)
{
    if (pier_s3req_allow(r, "s3:DeleteObject", r->bucket, r->key))
        return 0;
    int rc = pier_store_delete(r->api->store, r->bucket, r->key, r->key_len);
    if (rc == PIER_ENOTFOUND && pier_store_bucket_head(r->api->store, r->bucket, NULL) == 0)
        rc = 0; /* S3 answers 204 for a key that is not there */
    if (rc)
        return pier_s3req_store_error(r, rc);
    return pier_s3req_empty(r, 204);
}

/* Parses x-amz-copy-source ("/bucket/key" or "bucket/key", URL-encoded,
 * optional "?versionId=") into *bucket / *key (arena). */
static int copy_source(pier_s3req *r, const char *src, char **bucket, char **key, size_t *key_len)
{
    const char *p = src[0] == '/' ? src + 1 : src;
    const char *q = strstr(p, "?versionId=");
    size_t n = q ? (size_t)(q - p) : strlen(p);
    pier_buf d = PIER_BUF_INIT;
    if (pier_uri_decode(&d, p, n, false) != 0 || !d.ptr) {
        pier_buf_free(&d);
        return pier_s3req_error(r, "InvalidArgument",
                                "x-amz-copy-source is not a valid bucket/key");
    }
    char *slash = strchr(d.ptr, '/');
    if (!slash || slash == d.ptr || !slash[1]) {
        pier_buf_free(&d);
        return pier_s3req_error(r, "InvalidArgument", "x-amz-copy-source must be bucket/key");
    }
    *bucket = pier_server_req_strndup(r->req, d.ptr, (size_t)(slash - d.ptr));
    *key_len = d.len - (size_t)(slash + 1 - d.ptr);
    *key = pier_server_req_strndup(r->req, slash + 1, *key_len);
    pier_buf_free(&d);
    return 0;
}

/* Answers a copy (CopyObject or UploadPartCopy) with its result element. */
static int copy_result(pier_s3req *r, const char *element, pier_store_meta *m)
{
    char t[40];
    pier_s3req_time(t, sizeof t, m->mtime_ms);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b,
                    PIER_S3_XML_DECL "<%s><LastModified>%s</LastModified>"
                                     "<ETag>&quot;%s&quot;</ETag></%s>\n",
                    element, t, m->etag, element);
    pier_store_meta_clear(m);
    int rc = pier_s3req_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

int pier_s3object_copy(pier_s3req *r, const char *src)
{
    char *sb = NULL, *sk = NULL;
    size_t skl = 0;
    if (copy_source(r, src, &sb, &sk, &skl))
        return 0;
    if (pier_s3req_allow(r, "s3:GetObject", sb, sk) ||
        pier_s3req_allow(r, "s3:PutObject", r->bucket, r->key))
        return 0;
    const char *directive = pier_server_req_header(r->req, "x-amz-metadata-directive");
    bool replace = directive && pier_str_ieq(directive, "REPLACE");
    if (directive && !replace && !pier_str_ieq(directive, "COPY"))
        return pier_s3req_error(r, "InvalidArgument", "Unknown metadata directive.");
    if (!replace && strcmp(sb, r->bucket) == 0 && skl == r->key_len && memcmp(sk, r->key, skl) == 0)
        return pier_s3req_error(
            r, "InvalidRequest",
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
        return pier_s3req_store_error(r, rc);
    return copy_result(r, "CopyObjectResult", &m);
}

/* The stored metadata of a new object: request headers + checksum. */
static void object_metadata(pier_s3req *r, pier_store_header **h, size_t *n)
{
    request_metadata(r, h, n);
    if (r->ck != PIER_S3_CK_NONE && r->kind == PIER_S3_BODY_OBJECT) {
        char name[32];
        snprintf(name, sizeof name, "%s", pier_s3req_ck_name(r->ck));
        (*h)[*n].name = pier_server_req_strndup(r->req, name, strlen(name));
        (*h)[*n].value = r->ck_got;
        (*n)++;
    }
}

static void checksum_response_header(pier_s3req *r)
{
    if (r->ck == PIER_S3_CK_NONE)
        return;
    char name[32];
    snprintf(name, sizeof name, "%s", pier_s3req_ck_name(r->ck));
    pier_server_resp_header(r->req, name, r->ck_got);
}

/* Makes the streamed body visible (object or part) with headers h and
 * answers 200 with its ETag and checksum. */
static int commit_put(pier_s3req *r, const pier_store_header *h, size_t n)
{
    pier_store_meta m;
    pier_store_put *p = r->put;
    r->put = NULL;
    int rc = pier_store_put_commit(p, h, n, &m);
    if (rc)
        return pier_s3req_store_error(r, rc);
    char etag[PIER_STORE_ETAG_MAX + 2];
    snprintf(etag, sizeof etag, "\"%s\"", m.etag);
    pier_store_meta_clear(&m);
    pier_server_resp_header(r->req, "ETag", etag);
    checksum_response_header(r);
    return pier_s3req_empty(r, 200);
}

static int put_object_finish(pier_s3req *r)
{
    pier_store_header *h = NULL;
    size_t n = 0;
    object_metadata(r, &h, &n);
    return commit_put(r, h, n);
}

int pier_s3object_put(pier_s3req *r)
{
    if (pier_s3req_allow(r, "s3:PutObject", r->bucket, r->key))
        return 0;
    int rc = pier_store_put_begin(&r->put, r->api->store, r->bucket, r->key, r->key_len);
    if (rc)
        return pier_s3req_store_error(r, rc);
    pier_s3req_body_begin(r, PIER_S3_BODY_OBJECT, put_object_finish);
    return 0;
}

int pier_s3object_create_upload(pier_s3req *r)
{
    if (pier_s3req_allow(r, "s3:PutObject", r->bucket, r->key))
        return 0;
    pier_store_header *h = NULL;
    size_t n = 0;
    request_metadata(r, &h, &n);
    char id[PIER_STORE_UPLOAD_ID_LEN + 1];
    int rc = pier_store_upload_create(r->api->store, r->bucket, r->key, r->key_len, h, n, id);
    if (rc)
        return pier_s3req_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, PIER_S3_XML_DECL "<InitiateMultipartUploadResult xmlns=\"" PIER_S3_NS "\">");
    pier_s3req_xml_el(&b, "Bucket", r->bucket);
    pier_s3req_xml_key(&b, "Key", r->key, r->key_len, false);
    pier_s3req_xml_el(&b, "UploadId", id);
    pier_buf_puts(&b, "</InitiateMultipartUploadResult>\n");
    rc = pier_s3req_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

static int part_number(pier_s3req *r, unsigned *out)
{
    uint64_t n = 0;
    const char *v = pier_s3req_query(r, "partNumber");
    if (!v || pier_parse_u64(v, &n) != 0 || n < 1 || n > PIER_STORE_MAX_PARTS) {
        pier_s3req_error(r, "InvalidArgument",
                         "Part number must be an integer between 1 and 10000, "
                         "inclusive");
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

static int upload_part_finish(pier_s3req *r)
{
    pier_store_header h[1];
    size_t n = 0;
    char name[32];
    if (r->ck != PIER_S3_CK_NONE) {
        snprintf(name, sizeof name, "%s", pier_s3req_ck_name(r->ck));
        h[0].name = name;
        h[0].value = r->ck_got;
        n = 1;
    }
    return commit_put(r, h, n);
}

static int upload_part_copy(pier_s3req *r, const char *src)
{
    char *sb = NULL, *sk = NULL;
    size_t skl = 0;
    if (copy_source(r, src, &sb, &sk, &skl))
        return 0;
    if (pier_s3req_allow(r, "s3:GetObject", sb, sk))
        return 0;
    int fd = -1;
    pier_store_meta m;
    int rc = pier_store_get(r->api->store, sb, sk, skl, &fd, &m);
    if (rc)
        return pier_s3req_store_error(r, rc);
    uint64_t start = 0, end = m.size ? m.size - 1 : 0;
    const char *range = pier_server_req_header(r->req, "x-amz-copy-source-range");
    if (range && parse_range(range, m.size, &start, &end) != 1) {
        close(fd);
        pier_store_meta_clear(&m);
        return pier_s3req_error(r, "InvalidRange",
                                "The x-amz-copy-source-range is not satisfiable");
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
        return pier_s3req_store_error(r, rc);
    pier_store_put *p = r->put;
    r->put = NULL;
    rc = pier_store_put_commit(p, NULL, 0, &m);
    if (rc)
        return pier_s3req_store_error(r, rc);
    return copy_result(r, "CopyPartResult", &m);
}

int pier_s3object_upload_part(pier_s3req *r, const char *upload_id)
{
    unsigned n;
    if (pier_s3req_allow(r, "s3:PutObject", r->bucket, r->key) || part_number(r, &n))
        return 0;
    pier_store_meta um;
    int rc = pier_store_upload_head(r->api->store, r->bucket, upload_id, &um);
    if (rc == 0 && (um.key_len != r->key_len || memcmp(um.key, r->key, r->key_len) != 0))
        rc =
            pier_error_set(PIER_ENOTFOUND, "NoSuchUpload: upload %s is for another key", upload_id);
    pier_store_meta_clear(&um);
    if (rc)
        return pier_s3req_store_error(r, rc);
    rc = pier_store_part_begin(&r->put, r->api->store, r->bucket, upload_id, n);
    if (rc)
        return pier_s3req_store_error(r, rc);
    const char *src = pier_server_req_header(r->req, "x-amz-copy-source");
    if (src)
        return upload_part_copy(r, src);
    pier_s3req_body_begin(r, PIER_S3_BODY_PART, upload_part_finish);
    return 0;
}

int pier_s3object_list_parts(pier_s3req *r, const char *upload_id)
{
    if (pier_s3req_allow(r, "s3:ListMultipartUploadParts", r->bucket, r->key))
        return 0;
    size_t max;
    uint64_t marker = 0;
    const char *pm = pier_s3req_query(r, "part-number-marker");
    if (pier_s3req_parse_max(r, "max-parts", 1000, &max))
        return 0;
    if (pm && pier_parse_u64(pm, &marker) != 0)
        return pier_s3req_error(r, "InvalidArgument", "part-number-marker must be an integer");
    pier_store_part *parts = NULL;
    size_t n = 0;
    int rc = pier_store_part_list(r->api->store, r->bucket, upload_id, &parts, &n);
    if (rc)
        return pier_s3req_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, PIER_S3_XML_DECL "<ListPartsResult xmlns=\"" PIER_S3_NS "\">");
    pier_s3req_xml_el(&b, "Bucket", r->bucket);
    pier_s3req_xml_key(&b, "Key", r->key, r->key_len, false);
    pier_s3req_xml_el(&b, "UploadId", upload_id);
    pier_buf_printf(&b, "<PartNumberMarker>%llu</PartNumberMarker>", (unsigned long long)marker);
    size_t shown = 0, i = 0;
    unsigned last = 0;
    pier_buf items = PIER_BUF_INIT;
    for (; i < n && shown < max; i++) {
        if (parts[i].number <= marker)
            continue;
        char t[40];
        pier_s3req_time(t, sizeof t, parts[i].mtime_ms);
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
    rc = pier_s3req_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

int pier_s3object_complete_finish(pier_s3req *r)
{
    pier_xml_doc *doc = NULL;
    pier_store_complete_part *parts = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (!r->xml.len || pier_xml_doc_parse(&doc, r->xml.ptr, r->xml.len, "request body") != 0 ||
        strcmp(pier_xml_doc_root(doc), "CompleteMultipartUpload") != 0) {
        pier_xml_doc_free(doc);
        return pier_s3req_error(r, "MalformedXML",
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
        return pier_s3req_error(r, "MalformedXML",
                                "The XML you provided was not well-formed or did "
                                "not validate against our published schema.");
    }
    pier_store_meta m;
    rc = pier_store_upload_complete(r->api->store, r->bucket, r->upload_id, parts, n, &m);
    free(parts);
    pier_xml_doc_free(doc);
    if (rc)
        return pier_s3req_store_error(r, rc);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, PIER_S3_XML_DECL "<CompleteMultipartUploadResult xmlns=\"" PIER_S3_NS "\">");
    pier_buf_puts(&b, "<Location>");
    pier_slice path = pier_server_req_raw_path(r->req);
    pier_s3req_xml_text(&b, path.ptr, path.len);
    pier_buf_puts(&b, "</Location>");
    pier_s3req_xml_el(&b, "Bucket", r->bucket);
    pier_s3req_xml_key(&b, "Key", r->key, r->key_len, false);
    pier_buf_printf(&b, "<ETag>&quot;%s&quot;</ETag></CompleteMultipartUploadResult>\n", m.etag);
    pier_store_meta_clear(&m);
    rc = pier_s3req_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}

int pier_s3object_abort_upload(pier_s3req *r, const char *upload_id)
{
    if (pier_s3req_allow(r, "s3:AbortMultipartUpload", r->bucket, r->key))
        return 0;
    int rc = pier_store_upload_abort(r->api->store, r->bucket, upload_id);
    if (rc)
        return pier_s3req_store_error(r, rc);
    return pier_s3req_empty(r, 204);
}

int pier_s3object_delete_many_finish(pier_s3req *r)
{
    pier_xml_doc *doc = NULL;
    if (!r->xml.len || pier_xml_doc_parse(&doc, r->xml.ptr, r->xml.len, "request body") != 0 ||
        strcmp(pier_xml_doc_root(doc), "Delete") != 0) {
        pier_xml_doc_free(doc);
        return pier_s3req_error(r, "MalformedXML",
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
        return pier_s3req_error(r, "MalformedXML",
                                "A DeleteObjects request may name 1000 keys at most");
    }
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, PIER_S3_XML_DECL "<DeleteResult xmlns=\"" PIER_S3_NS "\">");
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
            pier_s3req_xml_key(&b, "Key", text, kl, false);
            pier_s3req_xml_el(&b, "Code", code);
            pier_s3req_xml_el(&b, "Message", msg);
            pier_buf_puts(&b, "</Error>");
        } else if (!is_quiet) {
            pier_buf_puts(&b, "<Deleted>");
            pier_s3req_xml_key(&b, "Key", text, kl, false);
            pier_buf_puts(&b, "</Deleted>");
        }
    }
    pier_buf_puts(&b, "</DeleteResult>\n");
    pier_xml_doc_free(doc);
    int rc = pier_s3req_xml(r, 200, &b);
    pier_buf_free(&b);
    return rc;
}
