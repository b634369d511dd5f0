/*
 * fakeaws: a scriptable AWS endpoint for the client tests, on pier's own
 * HTTP server (libmicrohttpd) on 127.0.0.1, a free port.
 *
 * Each request's body is read whole, its SigV4 signature verified against
 * the fake's secret (region and service as the test expects), and the
 * test's function answers it with the whole request in hand. Header-only:
 * test_s3_errors.c and test_cloudfront.c include it.
 */
#ifndef PIER_TEST_FAKEAWS_H
#define PIER_TEST_FAKEAWS_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/config.h"
#include "aws/credentials.h"
#include "aws/retry.h"
#include "aws/sigv4.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/mem.h"
#include "net/http.h"
#include "net/server.h"

#define FAKE_FN static __attribute__((unused))

typedef struct {
    const char *method;        /* "POST" ... */
    char *path;                /* raw path */
    char *query;               /* raw query ("" when none) */
    pier_http_headers headers; /* as received */
    pier_buf body;             /* whole body */
    pier_sigv4_status sig;     /* verification result */
    char region[64];           /* scope region claimed */
    char service[64];          /* scope service claimed */
} fake_req;

/* Answers the request with pier_server_respond_* (must respond). */
typedef void (*fake_fn)(void *ctx, const fake_req *fr, pier_server_req *r);

typedef struct {
    pier_handler h;      /* first: the server's handler */
    fake_fn fn;          /* the test's answer */
    void *ctx;           /* its context */
    const char *secret;  /* the secret of every key */
    bool s3;             /* S3 signing rules */
    pier_server *server; /* the server */
    char url[64];        /* http://127.0.0.1:PORT */
    pthread_mutex_t mu;  /* serializes the test's function */
} fake_server;

typedef struct {
    fake_server *fs; /* owner */
    pier_buf body;   /* the body so far */
} fake_body;

FAKE_FN int fake_lookup(void *ctx, const char *akid, pier_sigv4_secret *out)
{
    (void)akid;
    fake_server *fs = ctx;
    return pier_buf_puts(&out->secret, fs->secret);
}

FAKE_FN int fake_on_body(pier_server_req *r, void *ctx, const char *data, size_t n)
{
    (void)r;
    fake_body *b = ctx;
    return pier_buf_put(&b->body, data, n) == 0 ? 0 : 1;
}

FAKE_FN void fake_on_end(pier_server_req *r, void *ctx)
{
    fake_body *b = ctx;
    fake_server *fs = b->fs;
    fake_req fr;
    memset(&fr, 0, sizeof fr);
    fr.method = pier_server_req_method(r);
    fr.path = pier_slice_dup(pier_server_req_raw_path(r));
    fr.query = pier_slice_dup(pier_server_req_raw_query(r));
    fr.body = b->body;
    for (size_t i = 0; i < pier_server_req_header_count(r); i++) {
        const char *name, *value;
        pier_server_req_header_at(r, i, &name, &value);
        pier_http_headers_add(&fr.headers, name, value);
    }

    pier_sigv4_verify_options vo;
    memset(&vo, 0, sizeof vo);
    pier_sigv4_options so = PIER_SIGV4_OPTIONS_INIT;
    pier_sigv4_options s3o = PIER_SIGV4_OPTIONS_S3_INIT;
    vo.sig = fs->s3 ? s3o : so;
    vo.sig.region = NULL;
    vo.sig.service = NULL;
    vo.lookup = fake_lookup;
    vo.lookup_ctx = fs;
    char hash[65];
    pier_sha256_hex(hash, b->body.ptr ? b->body.ptr : "", b->body.len);
    pier_sigv4_request sr = {fr.method, NULL, fr.path, fr.query, &fr.headers, fs->s3 ? NULL : hash};
    pier_sigv4_auth a;
    pier_sigv4_auth_init(&a);
    pier_sigv4_verify(&a, &sr, time(NULL), &vo);
    fr.sig = a.status;
    snprintf(fr.region, sizeof fr.region, "%s", a.region);
    snprintf(fr.service, sizeof fr.service, "%s", a.service);
    pier_sigv4_auth_free(&a);
    pier_error_clear();

    pthread_mutex_lock(&fs->mu);
    fs->fn(fs->ctx, &fr, r);
    pthread_mutex_unlock(&fs->mu);
    if (!pier_server_req_responded(r))
        pier_server_respond_mem(r, 500, "no answer", 9);
    free(fr.path);
    free(fr.query);
    pier_http_headers_free(&fr.headers);
}

FAKE_FN void fake_done(pier_server_req *r, void *ctx)
{
    (void)r;
    fake_body *b = ctx;
    pier_buf_free(&b->body);
}

FAKE_FN int fake_on_req(pier_handler *self, pier_server_req *r)
{
    fake_server *fs = (fake_server *)self;
    fake_body *b = pier_server_req_alloc(r, sizeof *b);
    b->fs = fs;
    pier_buf_init(&b->body, (size_t)64 << 20);
    pier_server_req_on_done(r, fake_done, b);
    pier_server_req_read_body(r, fake_on_body, fake_on_end, b);
    return 0;
}

/* Starts a fake; the server owns nothing of the test's. */
FAKE_FN int fake_start(fake_server *fs, fake_fn fn, void *ctx, const char *secret, bool s3)
{
    memset(fs, 0, sizeof *fs);
    fs->fn = fn;
    fs->ctx = ctx;
    fs->secret = secret;
    fs->s3 = s3;
    fs->h.on_req = fake_on_req;
    pthread_mutex_init(&fs->mu, NULL);
    pier_server_options o = {.listen = "127.0.0.1:0", .threads = 4};
    if (pier_server_new(&fs->server, &o) < 0)
        return -1;
    pier_server_add(fs->server, NULL, &fs->h);
    if (pier_server_start(fs->server) < 0)
        return -1;
    snprintf(fs->url, sizeof fs->url, "http://127.0.0.1:%u",
             (unsigned)pier_server_port(fs->server));
    return 0;
}

FAKE_FN void fake_stop(fake_server *fs)
{
    pier_server_free(fs->server); /* the handler is embedded: no dispose */
    fs->server = NULL;
    pthread_mutex_destroy(&fs->mu);
}

/* Answers with an XML body and optional extra header. */
FAKE_FN void fake_xml(pier_server_req *r, unsigned status, const char *xml, const char *hname,
                      const char *hvalue)
{
    pier_server_resp_header(r, "Content-Type", "text/xml");
    pier_server_resp_header(r, "x-amz-request-id", "REQ123");
    if (hname)
        pier_server_resp_header(r, hname, hvalue);
    pier_server_respond_mem(r, status, xml, strlen(xml));
}

/* ---- the client side: an isolated config, a static key, fast retries ---- */

/* An environment with no home, no shared files and AWS_REGION = ctx (a
 * string), so the machine's own AWS settings never leak into a test. */
FAKE_FN const char *fake_env(void *ctx, const char *name)
{
    if (strcmp(name, "HOME") == 0)
        return "/nonexistent";
    if (strcmp(name, "AWS_CONFIG_FILE") == 0 || strcmp(name, "AWS_SHARED_CREDENTIALS_FILE") == 0)
        return "/nonexistent/none";
    if (strcmp(name, "AWS_REGION") == 0)
        return ctx;
    return NULL;
}

/* Retry delays of 1 % of the full backoff: 10 ms, 20 ms ... */
FAKE_FN double fake_tiny_random(void *ctx)
{
    (void)ctx;
    return 0.01;
}

/* What a client test needs besides the server: config in region, the
 * static credential akid/secret, a retry policy with tiny delays. Each out
 * pointer is freed with its own _free. Returns -1 on failure. */
FAKE_FN int fake_client_setup(pier_aws_config **config, pier_credentials_chain **creds,
                              pier_retry **retry, const char *region, const char *akid,
                              const char *secret)
{
    pier_aws_config_options co = PIER_AWS_CONFIG_OPTIONS_INIT;
    co.getenv = fake_env;
    co.getenv_ctx = (void *)region;
    if (pier_aws_config_load(config, &co) < 0)
        return -1;
    if (pier_credentials_chain_new_static(creds, akid, secret, NULL) < 0)
        return -1;
    pier_retry_options ro = PIER_RETRY_OPTIONS_INIT;
    ro.random = fake_tiny_random;
    return pier_retry_new(retry, &ro) < 0 ? -1 : 0;
}

#endif
