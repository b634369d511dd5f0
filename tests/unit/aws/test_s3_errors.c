/*
 * test_s3_errors: the S3 client's failure paths against a scripted fake S3
 * (pier's libmicrohttpd server on 127.0.0.1) that verifies every request's
 * SigV4 signature with S3's rules and answers by bucket and key:
 *
 *   bucket nobucket         NoSuchBucket
 *   bucket elsewhere        301 PermanentRedirect (x-amz-bucket-region, Endpoint)
 *   bucket malformed        400 AuthorizationHeaderMalformed with <Region>
 *   key denied.txt          403 AccessDenied
 *   key slow.txt            503 SlowDown once, then 200
 *   key boom.txt            500 InternalError always
 *   key reset.txt           the connection dropped mid-answer once, then 200
 *   key big.bin (multipart) create, parts; part 2 answers 400 BadDigest;
 *                           abort is recorded
 *   key ok.bin (multipart)  complete answers 200 with an <Error> once
 *   POST ?delete            DeleteResult with two per-key <Error>s
 *   GET ?list-type=2        two pages; the first is cut mid-stream once
 *
 * Retries use a 10 ms backoff so the test stays fast.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/config.h"
#include "aws/credentials.h"
#include "aws/retry.h"
#include "aws/s3.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"
#include "fakeaws.h"

#define SECRET "s3-secret"

typedef struct {
    char name[64]; /* key or route */
    int count;     /* requests seen */
} counter;

typedef struct {
    fake_server fs;                /* the server */
    counter counters[64];          /* per route */
    int ncounters;                 /* used */
    int bad_sig;                   /* requests with a bad signature */
    int aborts;                    /* AbortMultipartUpload seen */
    int completes;                 /* CompleteMultipartUpload seen */
    int checksum_headers;          /* x-amz-checksum-* seen on DeleteObjects */
    int bad_md5;                   /* DeleteObjects bodies whose Content-MD5 was wrong */
    int skewed;                    /* requests refused as RequestTimeTooSkewed */
    pier_aws_config *config;       /* empty environment */
    pier_credentials_chain *creds; /* static keys */
    pier_retry *retry;             /* tiny backoff */
    pier_s3 *s3;                   /* the client */
    char tmp[64];                  /* scratch directory */
} world;

static int bump(world *w, const char *name)
{
    for (int i = 0; i < w->ncounters; i++)
        if (strcmp(w->counters[i].name, name) == 0)
            return ++w->counters[i].count;
    counter *c = &w->counters[w->ncounters++];
    snprintf(c->name, sizeof c->name, "%s", name);
    return c->count = 1;
}

static int seen(world *w, const char *name)
{
    for (int i = 0; i < w->ncounters; i++)
        if (strcmp(w->counters[i].name, name) == 0)
            return w->counters[i].count;
    return 0;
}

static void s3_error(pier_server_req *r, unsigned status, const char *code, const char *extra)
{
    char xml[1024];
    snprintf(xml, sizeof xml,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
             "<Message>scripted %s</Message>%s<RequestId>RID42</RequestId></Error>",
             code, code, extra ? extra : "");
    fake_xml(r, status, xml, NULL, NULL);
}

/* A body cut short: the headers promise len bytes, the connection drops
 * after cut. */
typedef struct {
    char *data; /* the whole body */
    size_t cut; /* bytes sent before the drop */
} cut_body;

static ssize_t cut_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
    cut_body *c = ctx;
    if (pos >= c->cut)
        return -1;
    size_t n = c->cut - (size_t)pos < max ? c->cut - (size_t)pos : max;
    memcpy(buf, c->data + pos, n);
    return (ssize_t)n;
}

static void cut_free(void *ctx)
{
    cut_body *c = ctx;
    free(c->data);
    free(c);
}

static void respond_cut(pier_server_req *r, const char *body, size_t cut)
{
    cut_body *c = pier_calloc(1, sizeof *c);
    c->data = pier_strdup(body);
    c->cut = cut;
    pier_server_respond_stream(r, 200, (int64_t)strlen(body), cut_read, c, cut_free);
}

static void ok_put(pier_server_req *r)
{
    pier_server_resp_header(r, "ETag", "\"0123456789abcdef0123456789abcdef\"");
    pier_server_respond_mem(r, 200, "", 0);
}

/* The listing: 5 keys on page 1, 3 on page 2. */
static void listing_page(world *w, const fake_req *fr, pier_server_req *r)
{
    bool second = strstr(fr->query, "continuation-token=") != NULL;
    pier_buf x = PIER_BUF_INIT;
    pier_buf_puts(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                      "<Name>pages</Name>");
    pier_buf_printf(&x, "<IsTruncated>%s</IsTruncated>", second ? "false" : "true");
    int from = second ? 5 : 0, to = second ? 8 : 5;
    for (int i = from; i < to; i++)
        pier_buf_printf(&x,
                        "<Contents><Key>k%d &amp; &lt;x&gt;</Key>"
                        "<LastModified>2024-08-30T12:36:00.000Z</LastModified>"
                        "<ETag>&quot;etag%d&quot;</ETag><Size>%d</Size>"
                        "<StorageClass>STANDARD</StorageClass></Contents>",
                        i, i, 100 + i);
    if (!second)
        pier_buf_puts(&x, "<NextContinuationToken>tok/1+=</NextContinuationToken>");
    pier_buf_puts(&x, "</ListBucketResult>");
    if (!second && bump(w, "list-page-1") == 1)
        respond_cut(r, pier_buf_cstr(&x), x.len / 2); /* mid third object */
    else
        fake_xml(r, 200, pier_buf_cstr(&x), NULL, NULL);
    pier_buf_free(&x);
}

static void delete_answer(world *w, const fake_req *fr, pier_server_req *r)
{
    for (size_t i = 0; i < fr->headers.count; i++)
        if (strncasecmp(fr->headers.items[i].name, "x-amz-checksum", 14) == 0 ||
            strcasecmp(fr->headers.items[i].name, "x-amz-sdk-checksum-algorithm") == 0)
            w->checksum_headers++;
    const char *md5 = pier_http_headers_get(&fr->headers, "Content-MD5");
    unsigned char d[PIER_MD5_LEN];
    pier_md5(d, fr->body.ptr ? fr->body.ptr : "", fr->body.len);
    pier_buf b64 = PIER_BUF_INIT;
    pier_base64_encode(&b64, d, sizeof d);
    if (!md5 || strcmp(md5, pier_buf_cstr(&b64)) != 0)
        w->bad_md5++;
    pier_buf_free(&b64);
    fake_xml(r, 200,
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DeleteResult>"
             "<Error><Key>locked &amp; key</Key><Code>AccessDenied</Code>"
             "<Message>Access Denied</Message></Error>"
             "<Error><Key>other</Key><Code>InternalError</Code>"
             "<Message>We encountered an internal error</Message></Error>"
             "</DeleteResult>",
             NULL, NULL);
}

static void s3_answer(void *ctx, const fake_req *fr, pier_server_req *r)
{
    world *w = ctx;
    const char *token = pier_http_headers_get(&fr->headers, "X-Amz-Security-Token");
    if (token) {
        /* The refresh test: OLD has expired, NEW is good. */
        bump(w, token);
        if (strcmp(token, "OLD") == 0)
            s3_error(r, 400, "ExpiredToken", NULL);
        else
            ok_put(r);
        return;
    }
    if (fr->sig == PIER_SIGV4_SKEWED) {
        char date[64];
        pier_time_http(date, sizeof date, time(NULL));
        w->skewed++;
        fake_xml(r, 403,
                 "<?xml version=\"1.0\"?><Error><Code>RequestTimeTooSkewed</Code><Message>The "
                 "difference between the request time and the current time is too large."
                 "</Message></Error>",
                 "Date", date);
        return;
    }
    if (fr->sig != PIER_SIGV4_OK || strcmp(fr->service, "s3") != 0) {
        w->bad_sig++;
        s3_error(r, 403, "SignatureDoesNotMatch", NULL);
        return;
    }
    const char *p = fr->path + 1;
    size_t bl = strcspn(p, "/");
    char bucket[64];
    snprintf(bucket, sizeof bucket, "%.*s", (int)bl, p);
    const char *key = p[bl] == '/' ? p + bl + 1 : NULL;
    bool head = strcmp(fr->method, "HEAD") == 0;

    if (strcmp(bucket, "nobucket") == 0) {
        if (head)
            pier_server_respond_empty(r, 404, 0);
        else
            s3_error(r, 404, "NoSuchBucket", "<BucketName>nobucket</BucketName>");
        return;
    }
    if (strcmp(bucket, "elsewhere") == 0) {
        if (head) {
            pier_server_resp_header(r, "x-amz-bucket-region", "eu-west-1");
            pier_server_respond_empty(r, 301, 0);
            return;
        }
        char xml[512];
        snprintf(xml, sizeof xml,
                 "<?xml version=\"1.0\"?><Error><Code>PermanentRedirect</Code><Message>The "
                 "bucket you are attempting to access must be addressed using the specified "
                 "endpoint.</Message><Endpoint>elsewhere.s3.eu-west-1.amazonaws.com</Endpoint>"
                 "<Bucket>elsewhere</Bucket><RequestId>R</RequestId></Error>");
        fake_xml(r, 301, xml, "x-amz-bucket-region", "eu-west-1");
        return;
    }
    if (strcmp(bucket, "malformed") == 0) {
        s3_error(r, 400, "AuthorizationHeaderMalformed", "<Region>ap-southeast-2</Region>");
        return;
    }
    if (strcmp(fr->method, "GET") == 0 && !key && strstr(fr->query, "list-type=2")) {
        listing_page(w, fr, r);
        return;
    }
    if (strcmp(fr->method, "POST") == 0 && !key && strcmp(fr->query, "delete=") == 0) {
        delete_answer(w, fr, r);
        return;
    }
    if (!key) {
        s3_error(r, 400, "InvalidRequest", NULL);
        return;
    }
    /* Multipart. */
    if (strcmp(fr->method, "POST") == 0 && strcmp(fr->query, "uploads=") == 0) {
        char xml[512];
        snprintf(xml, sizeof xml,
                 "<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>%s</Bucket>"
                 "<Key>%s</Key><UploadId>UP/%s+1</UploadId></InitiateMultipartUploadResult>",
                 bucket, key, key);
        fake_xml(r, 200, xml, NULL, NULL);
        return;
    }
    if (strcmp(fr->method, "PUT") == 0 && strstr(fr->query, "partNumber=")) {
        int part = (int)strtol(strstr(fr->query, "partNumber=") + 11, NULL, 10);
        if (!strstr(fr->query, "uploadId=UP%2F") ||
            !pier_http_headers_get(&fr->headers, "Content-MD5")) {
            s3_error(r, 400, "InvalidRequest", NULL);
            return;
        }
        if (strcmp(key, "big.bin") == 0 && part == 2) {
            s3_error(r, 400, "BadDigest", NULL);
            return;
        }
        char etag[64];
        snprintf(etag, sizeof etag, "\"part%d\"", part);
        pier_server_resp_header(r, "ETag", etag);
        pier_server_respond_mem(r, 200, "", 0);
        return;
    }
    if (strcmp(fr->method, "DELETE") == 0 && strstr(fr->query, "uploadId=")) {
        w->aborts++;
        pier_server_respond_empty(r, 204, 0);
        return;
    }
    if (strcmp(fr->method, "POST") == 0 && strstr(fr->query, "uploadId=")) {
        w->completes++;
        const char *b = pier_buf_cstr(&fr->body);
        if (!strstr(b, "<Part><PartNumber>1</PartNumber><ETag>\"part1\"</ETag></Part>")) {
            s3_error(r, 400, "InvalidPart", NULL);
            return;
        }
        if (bump(w, "complete") == 1) {
            /* S3 may fail a completion inside a 200. */
            fake_xml(r, 200,
                     "<?xml version=\"1.0\"?>\n\n<Error><Code>InternalError</Code>"
                     "<Message>We encountered an internal error.</Message></Error>",
                     NULL, NULL);
            return;
        }
        fake_xml(r, 200,
                 "<?xml version=\"1.0\"?><CompleteMultipartUploadResult><ETag>"
                 "&quot;3858f62230ac3c915f300c664312c11f-3&quot;</ETag>"
                 "</CompleteMultipartUploadResult>",
                 NULL, NULL);
        return;
    }
    /* Plain objects. */
    int n = bump(w, key);
    if (strcmp(key, "denied.txt") == 0) {
        if (head)
            pier_server_respond_empty(r, 403, 0);
        else
            s3_error(r, 403, "AccessDenied", NULL);
        return;
    }
    if (strcmp(key, "slow.txt") == 0 && n == 1) {
        s3_error(r, 503, "SlowDown", NULL);
        return;
    }
    if (strncmp(key, "slow-", 5) == 0 && n == 1) {
        s3_error(r, 503, "SlowDown", NULL);
        return;
    }
    if (strcmp(key, "boom.txt") == 0) {
        s3_error(r, 500, "InternalError", NULL);
        return;
    }
    if (strcmp(key, "reset.txt") == 0 && n == 1) {
        respond_cut(r, "0123456789012345678901234567890123456789", 5);
        return;
    }
    if (strcmp(fr->method, "PUT") == 0) {
        ok_put(r);
        return;
    }
    if (strcmp(fr->method, "GET") == 0) {
        pier_server_resp_header(r, "ETag", "\"abc\"");
        pier_server_respond_mem(r, 200, "0123456789012345678901234567890123456789", 40);
        return;
    }
    s3_error(r, 405, "MethodNotAllowed", NULL);
}

static int setup(void **state)
{
    unsetenv("AWS_CA_BUNDLE");
    world *w = pier_calloc(1, sizeof *w);
    if (fake_start(&w->fs, s3_answer, w, SECRET, true) < 0)
        return -1;
    /* the region S3 answers for */
    if (fake_client_setup(&w->config, &w->creds, &w->retry, "us-east-1", "AKIDS3", SECRET) < 0)
        return -1;
    pier_s3_options o = PIER_S3_OPTIONS_INIT;
    o.shared.config = w->config;
    o.shared.credentials = w->creds;
    o.shared.retry = w->retry;
    o.shared.endpoint_url = w->fs.url;
    if (pier_s3_new(&w->s3, &o) < 0)
        return -1;
    snprintf(w->tmp, sizeof w->tmp, "/tmp/pier-s3err-XXXXXX");
    if (!mkdtemp(w->tmp))
        return -1;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    pier_s3_free(w->s3);
    fake_stop(&w->fs);
    pier_retry_free(w->retry);
    pier_credentials_chain_free(w->creds);
    pier_aws_config_free(w->config);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", w->tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", w->tmp);
    free(w);
    return 0;
}

static void expect_msg(const char *want)
{
    if (!strstr(pier_error_last(), want))
        fail_msg("message \"%s\" lacks \"%s\"", pier_error_last(), want);
}

static void test_access_denied(void **state)
{
    world *w = *state;
    int rc = pier_s3_put_memory(w->s3, "my-site", "denied.txt", "x", 1, NULL, NULL);
    assert_int_equal(rc, PIER_EAUTH);
    assert_string_equal(pier_error_last(), "access denied: PutObject on bucket my-site (check "
                                           "the role's s3:PutObject permission)");
    assert_int_equal(seen(w, "denied.txt"), 1); /* not retried */
    /* HEAD has no body: the status alone says it. */
    rc = pier_s3_head_object(w->s3, "my-site", "denied.txt", NULL);
    assert_int_equal(rc, PIER_EAUTH);
    assert_string_equal(pier_error_last(), "access denied: HeadObject on bucket my-site (check "
                                           "the role's s3:GetObject permission)");
}

static int list_nothing(void *ctx, const pier_s3_object *o)
{
    (void)ctx;
    (void)o;
    return 0;
}

static void test_no_such_bucket(void **state)
{
    world *w = *state;
    int rc = pier_s3_list_objects(w->s3, "nobucket", NULL, list_nothing, NULL);
    assert_int_equal(rc, PIER_ENOTFOUND);
    char want[128];
    snprintf(want, sizeof want, "no such bucket: nobucket (at %s)", w->fs.url);
    assert_string_equal(pier_error_last(), want);
    assert_int_equal(pier_s3_head_bucket(w->s3, "nobucket"), PIER_ENOTFOUND);
    assert_string_equal(pier_error_last(), want);
}

static void test_region_redirect(void **state)
{
    world *w = *state;
    int rc = pier_s3_put_memory(w->s3, "elsewhere", "a.txt", "x", 1, NULL, NULL);
    assert_int_equal(rc, PIER_EINVALID);
    assert_string_equal(
        pier_error_last(),
        "bucket elsewhere is in eu-west-1, not us-east-1: set AWS_REGION=eu-west-1");
    rc = pier_s3_head_bucket(w->s3, "elsewhere");
    assert_int_equal(rc, PIER_EINVALID);
    assert_string_equal(
        pier_error_last(),
        "bucket elsewhere is in eu-west-1, not us-east-1: set AWS_REGION=eu-west-1");
    rc = pier_s3_list_objects(w->s3, "malformed", NULL, list_nothing, NULL);
    assert_int_equal(rc, PIER_EINVALID);
    assert_string_equal(pier_error_last(), "bucket malformed is in ap-southeast-2, not us-east-1: "
                                           "set AWS_REGION=ap-southeast-2");
}

static void test_slowdown_retried(void **state)
{
    world *w = *state;
    char *etag = NULL;
    int rc = pier_s3_put_memory(w->s3, "my-site", "slow.txt", "hello", 5, NULL, &etag);
    if (rc < 0)
        fail_msg("put: %s", pier_error_last());
    assert_string_equal(etag, "0123456789abcdef0123456789abcdef");
    assert_int_equal(seen(w, "slow.txt"), 2);
    free(etag);
}

static void test_500_exhausted(void **state)
{
    world *w = *state;
    int rc = pier_s3_put_memory(w->s3, "my-site", "boom.txt", "x", 1, NULL, NULL);
    assert_int_equal(rc, PIER_EIO);
    expect_msg("PutObject on s3://my-site/boom.txt failed: InternalError: scripted InternalError");
    expect_msg("HTTP 500");
    expect_msg("request id RID42");
    expect_msg("after 3 attempts");
    assert_int_equal(seen(w, "boom.txt"), 3);
}

static void test_reset_retried(void **state)
{
    world *w = *state;
    pier_buf got = PIER_BUF_INIT;
    int rc = pier_s3_get_object(w->s3, "my-site", "reset.txt", &got, NULL);
    if (rc < 0)
        fail_msg("get: %s", pier_error_last());
    assert_int_equal(got.len, 40);
    assert_int_equal(seen(w, "reset.txt"), 2);
    pier_buf_free(&got);

    /* A body past the buffer's cap: PIER_ETOOBIG, the buffer unchanged. */
    pier_buf small;
    pier_buf_init(&small, 10);
    assert_int_equal(pier_s3_get_object(w->s3, "my-site", "plain.txt", &small, NULL), PIER_ETOOBIG);
    assert_int_equal(small.len, 0);
    pier_buf_free(&small);
}

typedef struct {
    int ok, failed; /* completions */
    int attempts;   /* total attempts reported */
} tally;

static void tally_done(void *ctx, int rc, const pier_s3_result *res)
{
    tally *t = ctx;
    if (rc < 0)
        t->failed++;
    else
        t->ok++;
    t->attempts += res->attempts;
}

static void test_async_retries_interleave(void **state)
{
    world *w = *state;
    /* Eight puts in flight, each answered SlowDown first: every one is
     * retried after its delay while the others go on. */
    tally t = {0, 0, 0};
    for (int i = 0; i < 8; i++) {
        char key[32];
        snprintf(key, sizeof key, "slow-%d", i);
        assert_int_equal(
            pier_s3_put_memory_async(w->s3, "my-site", key, "data", 4, NULL, tally_done, &t), 0);
    }
    assert_int_equal(pier_s3_pending(w->s3), 8);
    assert_int_equal(pier_s3_run(w->s3), 0);
    assert_int_equal(t.ok, 8);
    assert_int_equal(t.failed, 0);
    assert_int_equal(t.attempts, 16);
    assert_int_equal(pier_s3_pending(w->s3), 0);
}

static void test_delete_partial(void **state)
{
    world *w = *state;
    const char *keys[] = {"a", "locked & key", "other", "b"};
    pier_s3_delete_result dr;
    pier_s3_delete_result_init(&dr);
    int rc = pier_s3_delete_objects(w->s3, "my-site", keys, 4, &dr);
    assert_int_equal(rc, PIER_ERR);
    expect_msg("DeleteObjects on bucket my-site: 2 keys not deleted, first s3://my-site/locked & "
               "key: AccessDenied: Access Denied");
    assert_int_equal(dr.deleted, 2);
    assert_int_equal(dr.error_count, 2);
    assert_string_equal(dr.errors[0].key, "locked & key");
    assert_string_equal(dr.errors[0].code, "AccessDenied");
    assert_string_equal(dr.errors[1].key, "other");
    assert_string_equal(dr.errors[1].code, "InternalError");
    assert_int_equal(w->bad_md5, 0);
    assert_int_equal(w->checksum_headers, 0);
    pier_s3_delete_result_free(&dr);

    /* Bad keys are refused before sending. */
    const char *ctl[] = {"bad\x01key"};
    assert_int_equal(pier_s3_delete_objects(w->s3, "my-site", ctl, 1, NULL), PIER_EINVALID);
}

static void write_file(const char *path, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < size; i++)
        fputc((int)(i * 7 % 251), f);
    fclose(f);
}

static void test_part_failure_aborts(void **state)
{
    world *w = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/big.bin", w->tmp);
    write_file(path, 11 * 1024 * 1024); /* 3 parts of 5 MiB */
    pier_s3_multipart_options mp = PIER_S3_MULTIPART_OPTIONS_INIT;
    mp.threshold = 1024;
    mp.part_size = 5 * 1024 * 1024;
    w->aborts = w->completes = 0;
    int rc = pier_s3_upload_file(w->s3, "my-site", "big.bin", path, NULL, &mp, NULL);
    assert_int_equal(rc, PIER_ECONFLICT);
    expect_msg("UploadPart of s3://my-site/big.bin: the content does not match its Content-MD5");
    assert_int_equal(w->aborts, 1);
    assert_int_equal(w->completes, 0);
    assert_int_equal(pier_s3_pending(w->s3), 0);

    /* ok.bin: the completion's 200-with-<Error> is retried, then succeeds. */
    snprintf(path, sizeof path, "%s/ok.bin", w->tmp);
    write_file(path, 11 * 1024 * 1024);
    char *etag = NULL;
    rc = pier_s3_upload_file(w->s3, "my-site", "ok.bin", path, NULL, &mp, &etag);
    if (rc < 0)
        fail_msg("upload: %s", pier_error_last());
    assert_string_equal(etag, "3858f62230ac3c915f300c664312c11f-3");
    assert_int_equal(w->completes, 2);
    assert_int_equal(w->aborts, 1);
    free(etag);
}

typedef struct {
    int n;            /* objects seen */
    char keys[8][32]; /* their keys */
    uint64_t size[8]; /* sizes */
    char etag[8][16]; /* etags */
} pages;

static int page_fn(void *ctx, const pier_s3_object *o)
{
    pages *p = ctx;
    if (p->n >= 8)
        return pier_error_set(PIER_ETOOBIG, "too many objects");
    snprintf(p->keys[p->n], sizeof p->keys[0], "%s", o->key);
    snprintf(p->etag[p->n], sizeof p->etag[0], "%s", o->etag);
    p->size[p->n] = o->size;
    p->n++;
    return 0;
}

static void test_listing_cut_midstream(void **state)
{
    world *w = *state;
    pages p;
    memset(&p, 0, sizeof p);
    int rc = pier_s3_list_objects(w->s3, "pages", NULL, page_fn, &p);
    if (rc < 0)
        fail_msg("list: %s", pier_error_last());
    assert_int_equal(seen(w, "list-page-1"), 2); /* cut, then whole */
    assert_int_equal(p.n, 8);                    /* none twice */
    for (int i = 0; i < 8; i++) {
        char want[32];
        snprintf(want, sizeof want, "k%d & <x>", i);
        assert_string_equal(p.keys[i], want);
        snprintf(want, sizeof want, "etag%d", i);
        assert_string_equal(p.etag[i], want);
        assert_int_equal(p.size[i], 100 + i);
    }
}

static int64_t slow_clock(void *ctx)
{
    (void)ctx;
    return (int64_t)time(NULL) - 3600; /* an hour behind */
}

static void test_clock_skew_corrected(void **state)
{
    world *w = *state;
    pier_retry *r = NULL;
    pier_retry_options ro = PIER_RETRY_OPTIONS_INIT;
    ro.random = fake_tiny_random;
    ro.clock = slow_clock;
    assert_int_equal(pier_retry_new(&r, &ro), 0);
    pier_s3_options o = PIER_S3_OPTIONS_INIT;
    o.shared.config = w->config;
    o.shared.credentials = w->creds;
    o.shared.retry = r;
    o.shared.endpoint_url = w->fs.url;
    pier_s3 *s3 = NULL;
    assert_int_equal(pier_s3_new(&s3, &o), 0);
    w->skewed = 0;
    /* Refused once for the skew, then signed with the corrected time. */
    int rc = pier_s3_put_memory(s3, "my-site", "skew.txt", "x", 1, NULL, NULL);
    if (rc < 0)
        fail_msg("put: %s", pier_error_last());
    assert_int_equal(w->skewed, 1);
    int64_t off = pier_retry_clock_offset(r);
    assert_true(off > 3500 && off < 3700);
    /* Later requests use the offset from the start. */
    assert_int_equal(pier_s3_put_memory(s3, "my-site", "skew2.txt", "x", 1, NULL, NULL), 0);
    assert_int_equal(w->skewed, 1);
    pier_s3_free(s3);
    pier_retry_free(r);
}

static int token_reads;

static const char *token_env(void *ctx, const char *name)
{
    (void)ctx;
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
        return "ASIATEMP";
    if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
        return SECRET;
    if (strcmp(name, "AWS_SESSION_TOKEN") == 0)
        return token_reads++ == 0 ? "OLD" : "NEW";
    return fake_env((void *)"us-east-1", name);
}

static void test_expired_token_refreshed(void **state)
{
    world *w = *state;
    pier_credentials_options co = PIER_CREDENTIALS_OPTIONS_INIT;
    co.getenv = token_env;
    pier_credentials_chain *chain = NULL;
    assert_int_equal(pier_credentials_chain_new(&chain, &co), 0);
    pier_s3_options o = PIER_S3_OPTIONS_INIT;
    o.shared.config = w->config;
    o.shared.credentials = chain;
    o.shared.retry = w->retry;
    o.shared.endpoint_url = w->fs.url;
    pier_s3 *s3 = NULL;
    assert_int_equal(pier_s3_new(&s3, &o), 0);
    int rc = pier_s3_put_memory(s3, "my-site", "token.txt", "x", 1, NULL, NULL);
    if (rc < 0)
        fail_msg("put: %s", pier_error_last());
    assert_int_equal(seen(w, "OLD"), 1); /* refused once ... */
    assert_int_equal(seen(w, "NEW"), 1); /* ... then fresh credentials */
    pier_s3_free(s3);
    pier_credentials_chain_free(chain);
}

static void test_connection_refused(void **state)
{
    world *w = *state;
    /* A port nobody listens on: bind one, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    pier_s3_options o = PIER_S3_OPTIONS_INIT;
    o.shared.config = w->config;
    o.shared.credentials = w->creds;
    o.shared.retry = w->retry;
    o.shared.endpoint_url = url;
    pier_s3 *s3 = NULL;
    assert_int_equal(pier_s3_new(&s3, &o), 0);
    int rc = pier_s3_put_memory(s3, "my-site", "a.txt", "x", 1, NULL, NULL);
    assert_int_equal(rc, PIER_EIO);
    expect_msg("PutObject on s3://my-site/a.txt failed: ");
    expect_msg(url);
    expect_msg("after 3 attempts");
    pier_s3_free(s3);

    /* A malformed endpoint is refused when the client is made. */
    o.shared.endpoint_url = "ftp://example.com";
    assert_int_equal(pier_s3_new(&s3, &o), PIER_EINVALID);
    expect_msg("ftp://example.com");
}

static void test_signatures_all_valid(void **state)
{
    world *w = *state;
    assert_int_equal(w->bad_sig, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access_denied),
        cmocka_unit_test(test_no_such_bucket),
        cmocka_unit_test(test_region_redirect),
        cmocka_unit_test(test_slowdown_retried),
        cmocka_unit_test(test_500_exhausted),
        cmocka_unit_test(test_reset_retried),
        cmocka_unit_test(test_async_retries_interleave),
        cmocka_unit_test(test_delete_partial),
        cmocka_unit_test(test_part_failure_aborts),
        cmocka_unit_test(test_listing_cut_midstream),
        cmocka_unit_test(test_clock_skew_corrected),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_expired_token_refreshed),
        cmocka_unit_test(test_signatures_all_valid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
