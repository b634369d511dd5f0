/*
 * s3multipart: the multipart half of the S3 client (API in s3.h): create,
 * upload part, complete and abort as single requests, and whole-file
 * uploads. Each request is an op of s3.c (s3internal.h) with its own
 * completion that reads the answer.
 *
 * A multipart upload is one "upload" object: create, then parts kept
 * `parallel` in flight (each part an op reading its own file range), then
 * complete, or abort after the first failure once the parts in flight have
 * landed. The upload counts as one operation in pier_s3_pending; its parts
 * do not count on their own.
 *
 * Costs: one op allocation per request; a part's Content-MD5, when not
 * given, costs one read of the part before it is sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/s3.h"
#include "aws/s3internal.h"
#include "aws/sigv4.h"
#include "aws/xml.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"

/* ---- multipart: single requests -------------------------------------------- */

static void create_complete(pier_s3_op *op, int rc)
{
    if (rc == 0) {
        pier_xml_doc *d = NULL;
        const pier_buf *b = &op->call.resp.body;
        rc = pier_xml_doc_parse(&d, b->ptr ? b->ptr : "", b->len, "CreateMultipartUpload answer");
        const char *id =
            rc == 0 ? pier_xml_doc_get(d, "InitiateMultipartUploadResult/UploadId") : NULL;
        if (rc == 0 && (!id || !id[0]))
            rc = pier_error_set(PIER_EINVALID,
                                "CreateMultipartUpload of s3://%s/%s: no UploadId in the answer",
                                op->bucket, op->key);
        if (rc == 0)
            op->upload_id = pier_strdup(id);
        pier_xml_doc_free(d);
    }
    pier_s3_op_report(op, rc);
}

static int create_submit(pier_s3 *s3, const char *bucket, const char *key,
                         const pier_s3_put_options *opts, pier_s3_op_fn complete,
                         pier_s3_upload *up, pier_s3_done_fn done, void *ctx)
{
    pier_s3_op *op;
    int rc = pier_s3_op_new(&op, s3, "CreateMultipartUpload", "POST", bucket, key, "uploads=");
    if (rc < 0)
        return rc;
    if ((rc = pier_s3_put_headers(&op->call, opts, false)) < 0) {
        pier_s3_op_free(op);
        return rc;
    }
    op->up = up;
    op->done = done;
    op->ctx = ctx;
    return pier_s3_op_submit(op, complete, false);
}

static int part_submit(pier_s3 *s3, const char *bucket, const char *key, const char *upload_id,
                       uint32_t number, const char *path, uint64_t offset, uint64_t len,
                       const unsigned char *md5, pier_s3_op_fn complete, pier_s3_upload *up,
                       pier_s3_done_fn done, void *ctx)
{
    if (number < 1 || number > PIER_S3_MAX_PARTS)
        return pier_error_set(PIER_EINVALID, "UploadPart: part number %u out of 1..%d", number,
                              PIER_S3_MAX_PARTS);
    pier_buf q = PIER_BUF_INIT;
    pier_buf_printf(&q, "partNumber=%u&uploadId=", number);
    pier_uri_encode(&q, upload_id, strlen(upload_id), false);
    pier_s3_op *op;
    int rc = pier_s3_op_new(&op, s3, "UploadPart", "PUT", bucket, key, pier_buf_cstr(&q));
    pier_buf_free(&q);
    if (rc < 0)
        return rc;
    op->call.body_file = pier_strdup(path);
    op->call.body_file_offset = offset;
    op->call.body_file_len = len;
    op->call.payload_hash = PIER_SIGV4_UNSIGNED_PAYLOAD;
    if (md5) {
        pier_buf b = PIER_BUF_INIT;
        pier_base64_encode(&b, md5, PIER_MD5_LEN);
        pier_http_headers_set(&op->call.headers, "Content-MD5", pier_buf_cstr(&b));
        pier_buf_free(&b);
    }
    op->part = number;
    op->up = up;
    op->done = done;
    op->ctx = ctx;
    /* A part of pier's own upload counts with the upload. */
    return pier_s3_op_submit(op, complete, !up);
}

static int complete_submit(pier_s3 *s3, const char *bucket, const char *key, const char *upload_id,
                           const pier_s3_part *parts, size_t n, char *const *etags,
                           pier_s3_op_fn complete, pier_s3_upload *up, pier_s3_done_fn done,
                           void *ctx)
{
    pier_buf q = PIER_BUF_INIT;
    pier_buf_puts(&q, "uploadId=");
    pier_uri_encode(&q, upload_id, strlen(upload_id), false);
    pier_s3_op *op;
    int rc =
        pier_s3_op_new(&op, s3, "CompleteMultipartUpload", "POST", bucket, key, pier_buf_cstr(&q));
    pier_buf_free(&q);
    if (rc < 0)
        return rc;
    pier_buf *body = &op->call.body;
    pier_buf_puts(body, "<CompleteMultipartUpload xmlns=\"" PIER_S3_XMLNS "\">");
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint32_t number = parts ? parts[i].number : (uint32_t)(i + 1);
        const char *etag = parts ? parts[i].etag : etags[i];
        char *bare = pier_s3_etag_dup(etag ? etag : "");
        pier_buf_printf(body, "<Part><PartNumber>%u</PartNumber><ETag>\"", number);
        rc = pier_xml_escape(body, bare, strlen(bare));
        pier_buf_puts(body, "\"</ETag></Part>");
        free(bare);
    }
    if (rc == 0)
        rc = pier_buf_puts(body, "</CompleteMultipartUpload>");
    if (rc < 0) {
        pier_s3_op_free(op);
        return rc;
    }
    pier_http_headers_set(&op->call.headers, "Content-Type", "application/xml");
    op->call.error_in_2xx = true;
    op->up = up;
    op->done = done;
    op->ctx = ctx;
    return pier_s3_op_submit(op, complete, false);
}

static void complete_parse(pier_s3_op *op, int *rc)
{
    if (*rc < 0)
        return;
    pier_xml_doc *d = NULL;
    const pier_buf *b = &op->call.resp.body;
    *rc = pier_xml_doc_parse(&d, b->ptr ? b->ptr : "", b->len, "CompleteMultipartUpload answer");
    if (*rc == 0) {
        const char *etag = pier_xml_doc_get(d, "CompleteMultipartUploadResult/ETag");
        if (!etag)
            *rc = pier_error_set(PIER_EINVALID,
                                 "CompleteMultipartUpload of s3://%s/%s: no ETag in the answer",
                                 op->bucket, op->key);
        else
            op->etag = pier_s3_etag_dup(etag);
        op->version_id =
            pier_s3_dup_or_null(pier_http_headers_get(&op->call.resp.headers, "x-amz-version-id"));
    }
    pier_xml_doc_free(d);
}

static void complete_complete(pier_s3_op *op, int rc)
{
    complete_parse(op, &rc);
    pier_s3_op_report(op, rc);
}

static void part_complete(pier_s3_op *op, int rc)
{
    if (rc == 0)
        op->etag = pier_s3_etag_dup(pier_http_headers_get(&op->call.resp.headers, "ETag"));
    if (rc == 0 && (!op->etag || !op->etag[0]))
        rc = pier_error_set(PIER_EINVALID, "UploadPart %u of s3://%s/%s: no ETag in the answer",
                            op->part, op->bucket, op->key);
    pier_s3_op_report(op, rc);
}

int pier_s3_multipart_create(pier_s3 *s3, const char *bucket, const char *key,
                             const pier_s3_put_options *opts, char **upload_id)
{
    pier_s3_sync s = {0};
    *upload_id = NULL;
    int rc = create_submit(s3, bucket, key, opts, create_complete, NULL, pier_s3_sync_done, &s);
    return rc < 0 ? rc : pier_s3_sync_wait(s3, &s, upload_id);
}

int pier_s3_multipart_upload_part(pier_s3 *s3, const char *bucket, const char *key,
                                  const char *upload_id, uint32_t number, const char *path,
                                  uint64_t offset, uint64_t len, const unsigned char *md5,
                                  char **etag)
{
    pier_s3_sync s = {0};
    int rc = part_submit(s3, bucket, key, upload_id, number, path, offset, len, md5, part_complete,
                         NULL, pier_s3_sync_done, &s);
    return rc < 0 ? rc : pier_s3_sync_wait(s3, &s, etag);
}

int pier_s3_multipart_upload_part_async(pier_s3 *s3, const char *bucket, const char *key,
                                        const char *upload_id, uint32_t number, const char *path,
                                        uint64_t offset, uint64_t len, const unsigned char *md5,
                                        pier_s3_done_fn done, void *ctx)
{
    s3->pending++;
    int rc = part_submit(s3, bucket, key, upload_id, number, path, offset, len, md5, part_complete,
                         NULL, done, ctx);
    if (rc < 0)
        s3->pending--;
    return rc;
}

int pier_s3_multipart_complete(pier_s3 *s3, const char *bucket, const char *key,
                               const char *upload_id, const pier_s3_part *parts, size_t n,
                               char **etag)
{
    if (n == 0 || n > PIER_S3_MAX_PARTS)
        return pier_error_set(PIER_EINVALID, "CompleteMultipartUpload: 1..%d parts, not %zu",
                              PIER_S3_MAX_PARTS, n);
    pier_s3_sync s = {0};
    int rc = complete_submit(s3, bucket, key, upload_id, parts, n, NULL, complete_complete, NULL,
                             pier_s3_sync_done, &s);
    return rc < 0 ? rc : pier_s3_sync_wait(s3, &s, etag);
}

int pier_s3_multipart_abort(pier_s3 *s3, const char *bucket, const char *key, const char *upload_id)
{
    pier_buf q = PIER_BUF_INIT;
    pier_buf_puts(&q, "uploadId=");
    pier_uri_encode(&q, upload_id, strlen(upload_id), false);
    int rc =
        pier_s3_simple_do(s3, "AbortMultipartUpload", "DELETE", bucket, key, pier_buf_cstr(&q));
    pier_buf_free(&q);
    return rc;
}

/* ---- multipart: whole files ---------------------------------------------- */

struct pier_s3_upload {
    pier_s3 *s3;                        /* owner */
    char *bucket, *key, *path;          /* the object and its file */
    uint64_t size;                      /* file size */
    uint64_t part_size;                 /* bytes per part (the last may be short) */
    uint32_t parts;                     /* part count */
    unsigned char (*md5)[PIER_MD5_LEN]; /* given Content-MD5s (copied), or NULL */
    pier_s3_put_options put;            /* points into the copies below */
    char *content_type, *cache_control, *content_encoding, *content_disposition; /* copies */
    pier_http_headers headers; /* copy of put->headers */
    char *upload_id;           /* once created */
    char **etags;              /* per part, once uploaded */
    uint32_t next;             /* next part number to send */
    uint32_t landed;           /* parts uploaded */
    int in_flight;             /* parts on the wire */
    int parallel;              /* at most this many */
    int rc;                    /* first failure (0: none yet) */
    char msg[1100];            /* its message */
    char *etag;                /* the object's ETag when completed */
    char *version_id;          /* and its version */
    pier_s3_done_fn done;      /* user callback */
    void *ctx;                 /* its context */
};

static void upload_free(pier_s3_upload *up)
{
    if (!up)
        return;
    free(up->bucket);
    free(up->key);
    free(up->path);
    free(up->md5);
    free(up->content_type);
    free(up->cache_control);
    free(up->content_encoding);
    free(up->content_disposition);
    pier_http_headers_free(&up->headers);
    free(up->upload_id);
    for (uint32_t i = 0; up->etags && i < up->parts; i++)
        free(up->etags[i]);
    free(up->etags);
    free(up->etag);
    free(up->version_id);
    free(up);
}

/* Keeps the first failure. */
static void upload_fail(pier_s3_upload *up, int rc)
{
    if (up->rc == 0) {
        up->rc = rc;
        snprintf(up->msg, sizeof up->msg, "%s", pier_error_last());
    }
}

static void upload_finish(pier_s3_upload *up)
{
    pier_s3 *s3 = up->s3;
    s3->pending--;
    pier_s3_result res = {0};
    res.etag = up->etag;
    res.version_id = up->version_id;
    res.upload_id = up->upload_id;
    if (up->rc < 0)
        pier_error_set(up->rc, "%s", up->msg);
    else
        pier_error_clear();
    up->done(up->ctx, up->rc, &res);
    upload_free(up);
}

static void upload_aborted(void *ctx, int rc, const pier_s3_result *res)
{
    (void)res;
    pier_s3_upload *up = ctx;
    if (rc < 0)
        PIER_WARN("could not abort the multipart upload of s3://%s/%s (it may linger until a "
                  "lifecycle rule removes it): %s",
                  up->bucket, up->key, pier_error_last());
    upload_finish(up);
}

static void upload_abort(pier_s3_upload *up)
{
    pier_buf q = PIER_BUF_INIT;
    pier_buf_puts(&q, "uploadId=");
    pier_uri_encode(&q, up->upload_id, strlen(up->upload_id), false);
    pier_s3_op *op;
    int rc = pier_s3_op_new(&op, up->s3, "AbortMultipartUpload", "DELETE", up->bucket, up->key,
                            pier_buf_cstr(&q));
    pier_buf_free(&q);
    if (rc == 0) {
        op->done = upload_aborted;
        op->ctx = up;
        rc = pier_s3_op_submit(op, pier_s3_op_report, false);
    }
    if (rc < 0)
        upload_aborted(up, rc, NULL);
}

static void upload_completed(void *ctx, int rc, const pier_s3_result *res)
{
    pier_s3_upload *up = ctx;
    if (rc < 0) {
        upload_fail(up, rc);
        upload_abort(up);
        return;
    }
    up->etag = pier_s3_dup_or_null(res->etag);
    up->version_id = pier_s3_dup_or_null(res->version_id);
    upload_finish(up);
}

/* MD5 of a file range, for a part's Content-MD5. */
static int range_md5(const char *path, uint64_t off, uint64_t len, unsigned char md5[PIER_MD5_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pier_error_set_errno(PIER_EIO, "%s", path);
    pier_hash *h = pier_hash_new(PIER_HASH_MD5);
    char *buf = pier_malloc(1 << 16);
    int rc = 0;
    while (len > 0) {
        size_t want = len < (1 << 16) ? (size_t)len : (1 << 16);
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            rc = got < 0
                     ? pier_error_set_errno(PIER_EIO, "%s", path)
                     : pier_error_set(PIER_ECONFLICT, "%s: file shrank during the upload", path);
            break;
        }
        pier_hash_update(h, buf, (size_t)got);
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    if (rc == 0)
        pier_hash_final(h, md5);
    pier_hash_free(h);
    free(buf);
    close(fd);
    return rc;
}

static void upload_part_done(void *ctx, int rc, const pier_s3_result *res);

/* Sends parts until `parallel` are in flight; completes or aborts when the
 * last lands. */
static void upload_pump(pier_s3_upload *up)
{
    while (up->rc == 0 && up->in_flight < up->parallel && up->next <= up->parts) {
        uint32_t n = up->next++;
        uint64_t off = (uint64_t)(n - 1) * up->part_size;
        uint64_t len = up->size - off < up->part_size ? up->size - off : up->part_size;
        unsigned char md5[PIER_MD5_LEN];
        int rc = 0;
        if (up->md5)
            memcpy(md5, up->md5[n - 1], PIER_MD5_LEN);
        else
            rc = range_md5(up->path, off, len, md5);
        if (rc == 0)
            rc = part_submit(up->s3, up->bucket, up->key, up->upload_id, n, up->path, off, len, md5,
                             part_complete, up, upload_part_done, up);
        if (rc < 0) {
            upload_fail(up, rc);
            break;
        }
        up->in_flight++;
    }
    if (up->in_flight > 0)
        return;
    if (up->rc < 0) {
        upload_abort(up);
        return;
    }
    if (up->landed == up->parts) {
        int rc = complete_submit(up->s3, up->bucket, up->key, up->upload_id, NULL, up->parts,
                                 up->etags, complete_complete, up, upload_completed, up);
        if (rc < 0) {
            upload_fail(up, rc);
            upload_abort(up);
        }
    }
}

static void upload_part_done(void *ctx, int rc, const pier_s3_result *res)
{
    pier_s3_upload *up = ctx;
    up->in_flight--;
    if (rc < 0) {
        upload_fail(up, rc);
    } else {
        free(up->etags[res->part - 1]);
        up->etags[res->part - 1] = pier_strdup(res->etag);
        up->landed++;
    }
    upload_pump(up);
}

static void upload_created(void *ctx, int rc, const pier_s3_result *res)
{
    pier_s3_upload *up = ctx;
    if (rc < 0) {
        upload_fail(up, rc);
        upload_finish(up);
        return;
    }
    up->upload_id = pier_strdup(res->upload_id);
    upload_pump(up);
}

/* The part size for size bytes: the asked one (5 MiB at least), grown to
 * whole MiB so that no more than 10,000 parts are needed. */
static uint64_t choose_part_size(uint64_t size, uint64_t asked)
{
    uint64_t ps = asked ? asked : PIER_S3_PART_DEFAULT;
    if (ps < PIER_S3_PART_MIN)
        ps = PIER_S3_PART_MIN;
    if ((size + ps - 1) / ps > PIER_S3_MAX_PARTS) {
        uint64_t mib = (uint64_t)1 << 20;
        ps = (size + PIER_S3_MAX_PARTS - 1) / PIER_S3_MAX_PARTS;
        ps = (ps + mib - 1) / mib * mib;
    }
    return ps;
}

static int upload_start(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                        uint64_t size, const pier_s3_put_options *put,
                        const pier_s3_multipart_options *mp, pier_s3_done_fn done, void *ctx)
{
    if (mp->part_size && mp->part_size < PIER_S3_PART_MIN)
        return pier_error_set(PIER_EINVALID,
                              "multipart upload of %s: part size %llu below "
                              "S3's 5 MiB minimum",
                              path, (unsigned long long)mp->part_size);
    pier_s3_upload *up = pier_calloc(1, sizeof *up);
    up->s3 = s3;
    up->bucket = pier_strdup(bucket);
    up->key = pier_strdup(key);
    up->path = pier_strdup(path);
    up->size = size;
    up->part_size = choose_part_size(size, mp->part_size);
    up->parts = (uint32_t)((size + up->part_size - 1) / up->part_size);
    if (up->parts == 0)
        up->parts = 1;
    if (mp->part_md5) {
        if (mp->part_count != up->parts) {
            int rc =
                pier_error_set(PIER_EINVALID,
                               "multipart upload of %s: %u part digests given for %u parts "
                               "of %llu bytes",
                               path, mp->part_count, up->parts, (unsigned long long)up->part_size);
            upload_free(up);
            return rc;
        }
        up->md5 = pier_malloc(up->parts * sizeof *up->md5);
        memcpy(up->md5, mp->part_md5, up->parts * sizeof *up->md5);
    }
    up->parallel = mp->parallel > 0 ? mp->parallel : PIER_S3_PARALLEL_PARTS;
    up->etags = pier_calloc(up->parts, sizeof *up->etags);
    up->next = 1;
    up->done = done;
    up->ctx = ctx;
    if (put) {
        up->content_type = pier_s3_dup_or_null(put->content_type);
        up->cache_control = pier_s3_dup_or_null(put->cache_control);
        up->content_encoding = pier_s3_dup_or_null(put->content_encoding);
        up->content_disposition = pier_s3_dup_or_null(put->content_disposition);
        pier_s3_headers_copy(&up->headers, put->headers);
    }
    up->put.content_type = up->content_type;
    up->put.cache_control = up->cache_control;
    up->put.content_encoding = up->content_encoding;
    up->put.content_disposition = up->content_disposition;
    up->put.headers = &up->headers;

    int rc = create_submit(s3, bucket, key, &up->put, create_complete, up, upload_created, up);
    if (rc < 0) {
        upload_free(up);
        return rc;
    }
    s3->pending++;
    return 0;
}

int pier_s3_upload_file_async(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                              const pier_s3_put_options *put, const pier_s3_multipart_options *mp,
                              pier_s3_done_fn done, void *ctx)
{
    pier_s3_multipart_options none = PIER_S3_MULTIPART_OPTIONS_INIT;
    uint64_t size;
    int rc = pier_s3_file_size(path, &size);
    if (rc < 0)
        return rc;
    if (!mp)
        mp = &none;
    uint64_t threshold = mp->threshold ? mp->threshold : PIER_S3_THRESHOLD;
    if (size <= threshold)
        return pier_s3_put_file_async(s3, bucket, key, path, put, done, ctx);
    return upload_start(s3, bucket, key, path, size, put, mp, done, ctx);
}

int pier_s3_upload_file(pier_s3 *s3, const char *bucket, const char *key, const char *path,
                        const pier_s3_put_options *put, const pier_s3_multipart_options *mp,
                        char **etag)
{
    pier_s3_sync s = {0};
    int rc = pier_s3_upload_file_async(s3, bucket, key, path, put, mp, pier_s3_sync_done, &s);
    return rc < 0 ? rc : pier_s3_sync_wait(s3, &s, etag);
}
