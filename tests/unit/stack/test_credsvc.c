/*
 * test_credsvc: grants and session credentials with a fake clock (scope
 * validation, the session handed out and renewed, expiry and revocation
 * seen by the lookup, the authorization table), and the HTTP side on
 * 127.0.0.1: the container endpoint (401/403/200 JSON) and the grants API
 * signed with SigV4 (administrator yes, session key no, unsigned no, bad
 * JSON).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "aws/sigv4.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/server.h"
#include "stack/credsvc.h"

static int64_t fake_now = 1700000000;

static int64_t fake_clock(void *ctx)
{
    return fake_now;
}

#define ADMIN_KEY    "PIERADMINKEY0001"
#define ADMIN_SECRET "adminsecretadminsecretadminsecret0000000"

typedef struct {
    pier_credsvc *svc; /* under test */
} ctx_t;

/* The stack's lookup in small: the administrator, then the sessions. */
static int lookup(void *ctx, const char *akid, pier_sigv4_secret *secret,
                  pier_s3api_authorize_fn *authorize, void **authorize_ctx)
{
    ctx_t *c = ctx;
    if (strcmp(akid, ADMIN_KEY) == 0) {
        pier_buf_puts(&secret->secret, ADMIN_SECRET);
        *authorize = NULL;
        *authorize_ctx = NULL;
        return 0;
    }
    return pier_credsvc_lookup(c->svc, akid, secret, authorize, authorize_ctx);
}

static void bad_scopes(void **state)
{
    pier_credsvc *s = NULL;
    pier_credsvc_options o = {.clock = fake_clock};
    assert_int_equal(pier_credsvc_new(&s, &o), 0);
    pier_credsvc_grant g;
    const char *bad_bucket[] = {"Bad_Bucket"};
    const char *bad_dist[] = {"not-an-id"};
    const char *bad_action[] = {"PutObject"};
    const char *ok[] = {"site"};
    pier_credsvc_scope sc = {.buckets = bad_bucket, .bucket_count = 1};
    assert_int_equal(pier_credsvc_grant_new(s, &sc, &g), PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "Bad_Bucket"));
    sc = (pier_credsvc_scope){.distributions = bad_dist, .distribution_count = 1};
    assert_int_equal(pier_credsvc_grant_new(s, &sc, &g), PIER_EINVALID);
    sc = (pier_credsvc_scope){.actions = bad_action, .action_count = 1};
    assert_int_equal(pier_credsvc_grant_new(s, &sc, &g), PIER_EINVALID);
    sc = (pier_credsvc_scope){.buckets = ok, .bucket_count = 1, .ttl_s = 100000};
    assert_int_equal(pier_credsvc_grant_new(s, &sc, &g), PIER_EINVALID);
    sc = (pier_credsvc_scope){.name = "has space"};
    assert_int_equal(pier_credsvc_grant_new(s, &sc, &g), PIER_EINVALID);
    pier_credsvc_free(s);
}

static void sessions_and_scope(void **state)
{
    pier_credsvc *s = NULL;
    pier_credsvc_options o = {.base_url = "http://127.0.0.1:9", .clock = fake_clock};
    assert_int_equal(pier_credsvc_new(&s, &o), 0);
    const char *buckets[] = {"web-dev", "shared/builds/42/"};
    const char *dists[] = {"EDEV0000000001"};
    const char *actions[] = {"s3:GetObject", "s3:PutObject", "s3:ListBucket",
                             "cloudfront:CreateInvalidation", "codepipeline:*"};
    pier_credsvc_scope sc = {"build-42", buckets, 2, dists, 1, actions, 5, 7200};
    pier_credsvc_grant g;
    assert_int_equal(pier_credsvc_grant_new(s, &sc, &g), 0);
    assert_int_equal(strlen(g.token), 64);
    assert_true(strncmp(g.uri, "http://127.0.0.1:9/_pier/credentials/", 37) == 0);
    assert_string_equal(g.uri + 37, g.id);
    assert_int_equal(g.expires, fake_now + 7200);

    pier_credsvc_session a, b;
    assert_int_equal(pier_credsvc_fetch(s, g.id, "wrong", &a), PIER_EAUTH);
    assert_int_equal(pier_credsvc_fetch(s, "nosuchgrant", g.token, &a), PIER_EAUTH);
    assert_int_equal(pier_credsvc_fetch(s, g.id, NULL, &a), PIER_EAUTH);
    assert_int_equal(pier_credsvc_fetch(s, g.id, g.token, &a), 0);
    assert_int_equal(strlen(a.access_key_id), 20);
    assert_true(strncmp(a.access_key_id, "ASIA", 4) == 0);
    for (size_t i = 4; i < 20; i++)
        assert_true(isupper((unsigned char)a.access_key_id[i]) ||
                    isdigit((unsigned char)a.access_key_id[i]));
    assert_int_equal(strlen(a.secret_access_key), 40);
    assert_int_equal(a.expires, fake_now + 3600); /* one session hour */
    /* the same session while it has most of its life */
    fake_now += 600;
    assert_int_equal(pier_credsvc_fetch(s, g.id, g.token, &b), 0);
    assert_string_equal(a.access_key_id, b.access_key_id);
    /* a new one near its end, capped by the grant */
    fake_now += 3100;
    assert_int_equal(pier_credsvc_fetch(s, g.id, g.token, &b), 0);
    assert_string_not_equal(a.access_key_id, b.access_key_id);
    assert_int_equal(b.expires, 1700000000 + 7200);

    /* the lookup */
    pier_sigv4_secret sec = {PIER_BUF_INIT, PIER_BUF_INIT, false};
    pier_s3api_authorize_fn auth = NULL;
    void *actx = NULL;
    assert_int_equal(pier_credsvc_lookup(s, "ASIANOSUCHKEY0000000", &sec, &auth, &actx),
                     PIER_ENOTFOUND);
    assert_int_equal(pier_credsvc_lookup(s, "AKIAIOSFODNN7EXAMPLE", &sec, &auth, &actx),
                     PIER_ENOTFOUND);
    assert_int_equal(pier_credsvc_lookup(s, a.access_key_id, &sec, &auth, &actx), 0);
    assert_true(sec.expired); /* the first session's hour is over */
    pier_buf_free(&sec.secret);
    pier_buf_free(&sec.session_token);
    sec = (pier_sigv4_secret){PIER_BUF_INIT, PIER_BUF_INIT, false};
    assert_int_equal(pier_credsvc_lookup(s, b.access_key_id, &sec, &auth, &actx), 0);
    assert_string_equal(pier_buf_cstr(&sec.secret), b.secret_access_key);
    assert_string_equal(pier_buf_cstr(&sec.session_token), b.session_token);
    assert_false(sec.expired);
    assert_non_null(auth);

    static const struct {
        const char *action, *bucket, *key;
        int want;
    } table[] = {
        {"s3:GetObject", "web-dev", "index.html", 0},
        {"s3:PutObject", "web-dev", "a/b/c", 0},
        {"s3:DeleteObject", "web-dev", "index.html", PIER_EAUTH}, /* action not granted */
        {"s3:PutObject", "prod", "index.html", PIER_EAUTH},       /* bucket not granted */
        {"s3:PutObject", "web-de", "x", PIER_EAUTH},              /* no prefix match of names */
        {"s3:PutObject", "shared", "builds/42/app.js", 0},        /* under the prefix */
        {"s3:PutObject", "shared", "builds/43/app.js", PIER_EAUTH},
        {"s3:ListBucket", "shared", "", 0}, /* bucket-level on a prefixed bucket */
        {"cloudfront:CreateInvalidation", "EDEV0000000001", "", 0},
        {"cloudfront:CreateInvalidation", "EPROD000000001", "", PIER_EAUTH},
        {"cloudfront:GetInvalidation", "EDEV0000000001", "", PIER_EAUTH},
        {"codepipeline:PutJobSuccessResult", "", "", 0},
        {"pier:CreateGrant", "", "", PIER_EAUTH},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        int got = auth(actx, table[i].action, table[i].bucket, table[i].key);
        if (got != table[i].want)
            fail_msg("case %zu %s %s/%s: got %d want %d", i, table[i].action, table[i].bucket,
                     table[i].key, got, table[i].want);
    }
    pier_buf_free(&sec.secret);
    pier_buf_free(&sec.session_token);

    /* expiry: the key is still known, and reported expired */
    fake_now = 1700000000 + 7200;
    sec = (pier_sigv4_secret){PIER_BUF_INIT, PIER_BUF_INIT, false};
    assert_int_equal(pier_credsvc_lookup(s, b.access_key_id, &sec, &auth, &actx), 0);
    assert_true(sec.expired);
    pier_buf_free(&sec.secret);
    pier_buf_free(&sec.session_token);
    assert_int_equal(pier_credsvc_fetch(s, g.id, g.token, &b), PIER_EAUTH);
    assert_non_null(strstr(pier_error_last(), "expired"));

    /* default actions are s3:* and cloudfront:*; revocation ends sessions */
    fake_now = 1700000000;
    pier_credsvc_scope sc2 = {.buckets = buckets, .bucket_count = 1, .ttl_s = 60};
    assert_int_equal(pier_credsvc_grant_new(s, &sc2, &g), 0);
    assert_int_equal(pier_credsvc_fetch(s, g.id, g.token, &a), 0);
    assert_int_equal(a.expires, fake_now + 60);
    sec = (pier_sigv4_secret){PIER_BUF_INIT, PIER_BUF_INIT, false};
    assert_int_equal(pier_credsvc_lookup(s, a.access_key_id, &sec, &auth, &actx), 0);
    assert_int_equal(auth(actx, "s3:DeleteObject", "web-dev", "x"), 0);
    assert_int_equal(auth(actx, "cloudfront:CreateInvalidation", "EDEV0000000001", ""),
                     PIER_EAUTH); /* no distribution granted */
    assert_int_equal(auth(actx, "sts:AssumeRole", "", ""), PIER_EAUTH);
    pier_buf_free(&sec.secret);
    pier_buf_free(&sec.session_token);
    assert_int_equal(pier_credsvc_revoke(s, g.id), 0);
    assert_int_equal(pier_credsvc_revoke(s, "nope"), PIER_ENOTFOUND);
    sec = (pier_sigv4_secret){PIER_BUF_INIT, PIER_BUF_INIT, false};
    assert_int_equal(pier_credsvc_lookup(s, a.access_key_id, &sec, &auth, &actx), 0);
    assert_true(sec.expired);
    pier_buf_free(&sec.secret);
    pier_buf_free(&sec.session_token);
    assert_int_equal(pier_credsvc_fetch(s, g.id, g.token, &a), PIER_EAUTH);
    /* a day after expiry the grants are forgotten */
    fake_now += 3 * 86400;
    pier_credsvc_scope sc3 = {0};
    assert_int_equal(pier_credsvc_grant_new(s, &sc3, &g), 0);
    sec = (pier_sigv4_secret){PIER_BUF_INIT, PIER_BUF_INIT, false};
    assert_int_equal(pier_credsvc_lookup(s, b.access_key_id, &sec, &auth, &actx), PIER_ENOTFOUND);
    pier_buf_free(&sec.secret);
    pier_buf_free(&sec.session_token);
    fake_now = 1700000000;
    pier_credsvc_free(s);
}

/* ---- HTTP ---- */

typedef struct {
    ctx_t c;          /* the lookup's context */
    pier_server *srv; /* on 127.0.0.1:0 */
} http_fixture;

static int http_setup(void **state)
{
    http_fixture *f = pier_calloc(1, sizeof *f);
    pier_credsvc_options o = {.lookup = lookup, .lookup_ctx = &f->c};
    assert_int_equal(pier_credsvc_new(&f->c.svc, &o), 0);
    pier_server_options so = {.listen = "127.0.0.1:0", .threads = 2};
    assert_int_equal(pier_server_new(&f->srv, &so), 0);
    pier_server_add(f->srv, NULL, pier_credsvc_handler(f->c.svc));
    assert_int_equal(pier_server_start(f->srv), 0);
    pier_credsvc_set_base_url(f->c.svc, pier_server_url(f->srv));
    *state = f;
    return 0;
}

static int http_teardown(void **state)
{
    http_fixture *f = *state;
    pier_server_free(f->srv);
    pier_credsvc_free(f->c.svc);
    free(f);
    return 0;
}

/* Sends one request and returns the status; the body goes to out. */
static unsigned http(http_fixture *f, const char *method, const char *path,
                     const pier_http_headers *h, const char *body, pier_buf *out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(pier_server_port(f->srv));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    pier_buf req = PIER_BUF_INIT;
    pier_buf_printf(&req, "%s %s HTTP/1.1\r\n", method, path);
    bool host = false;
    for (size_t i = 0; h && i < h->count; i++) {
        pier_buf_printf(&req, "%s: %s\r\n", h->items[i].name, h->items[i].value);
        host = host || strcasecmp(h->items[i].name, "Host") == 0;
    }
    if (!host)
        pier_buf_puts(&req, "Host: 127.0.0.1\r\n");
    pier_buf_printf(&req, "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                    body ? strlen(body) : 0, body ? body : "");
    assert_int_equal(write(fd, req.ptr, req.len), (ssize_t)req.len);
    pier_buf_free(&req);
    pier_buf all = PIER_BUF_INIT;
    char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        pier_buf_put(&all, buf, (size_t)n);
    close(fd);
    const char *sep = strstr(pier_buf_cstr(&all), "\r\n\r\n");
    assert_non_null(sep);
    pier_buf_reset(out);
    pier_buf_puts(out, sep + 4);
    unsigned status = (unsigned)strtoul(all.ptr + 9, NULL, 10);
    pier_buf_free(&all);
    return status;
}

/* A grants request signed with akid/secret (and token) for service "pier". */
static unsigned signed_post(http_fixture *f, const char *akid, const char *secret,
                            const char *token, const char *body, pier_buf *out)
{
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%u", (unsigned)pier_server_port(f->srv));
    pier_http_headers h = {0};
    pier_http_headers_add(&h, "Host", host);
    pier_http_headers_add(&h, "Content-Type", "application/json");
    char sha[65];
    pier_sha256_hex(sha, body, strlen(body));
    pier_sigv4_request req = {"POST", host, PIER_CREDSVC_GRANTS_PATH, "", &h, sha};
    pier_sigv4_credentials cred = {akid, secret, token};
    pier_sigv4_options so = PIER_SIGV4_OPTIONS_INIT;
    so.region = "us-east-1";
    so.service = "pier";
    assert_int_equal(pier_sigv4_sign(NULL, &req, &cred, time(NULL), &so), 0);
    unsigned st = http(f, "POST", PIER_CREDSVC_GRANTS_PATH, &h, body, out);
    pier_http_headers_free(&h);
    return st;
}

static void http_endpoints(void **state)
{
    http_fixture *f = *state;
    pier_buf out = PIER_BUF_INIT;
    const char *body = "{\"name\": \"ci\", \"buckets\": [\"web-dev\"], \"distributions\": "
                       "[\"EDEV0000000001\"], \"actions\": [\"s3:PutObject\"], \"ttl_seconds\": "
                       "120}";
    /* unsigned, wrong secret, then the administrator */
    assert_int_equal(http(f, "POST", PIER_CREDSVC_GRANTS_PATH, NULL, body, &out), 403);
    assert_non_null(strstr(pier_buf_cstr(&out), "AccessDenied"));
    assert_int_equal(signed_post(f, ADMIN_KEY, "wrongsecret", NULL, body, &out), 403);
    assert_non_null(strstr(pier_buf_cstr(&out), "SignatureDoesNotMatch"));
    assert_int_equal(signed_post(f, ADMIN_KEY, ADMIN_SECRET, NULL, body, &out), 201);
    json_t *g = NULL;
    assert_int_equal(pier_json_parse(&g, out.ptr, out.len, "grant"), 0);
    const char *uri = pier_json_str(g, "uri", "");
    const char *token = pier_json_str(g, "token", "");
    assert_non_null(strstr(uri, "/_pier/credentials/"));
    assert_string_equal(
        pier_json_str(json_object_get(g, "env"), "AWS_CONTAINER_AUTHORIZATION_TOKEN", ""), token);
    const char *path = strstr(uri, "/_pier/credentials/");

    /* the container endpoint */
    assert_int_equal(http(f, "GET", path, NULL, NULL, &out), 401);
    pier_http_headers h = {0};
    pier_http_headers_add(&h, "Authorization", "not-the-token");
    assert_int_equal(http(f, "GET", path, &h, NULL, &out), 403);
    pier_http_headers_set(&h, "Authorization", token);
    assert_int_equal(http(f, "GET", path, &h, NULL, &out), 200);
    json_t *c = NULL;
    assert_int_equal(pier_json_parse(&c, out.ptr, out.len, "credentials"), 0);
    const char *akid = pier_json_str(c, "AccessKeyId", "");
    assert_true(strncmp(akid, "ASIA", 4) == 0);
    assert_non_null(pier_json_str(c, "SecretAccessKey", NULL));
    assert_non_null(pier_json_str(c, "Token", NULL));
    assert_non_null(strstr(pier_json_str(c, "RoleArn", ""), ":role/pier/ci"));
    time_t exp;
    assert_int_equal(pier_time_parse(pier_json_str(c, "Expiration", ""), &exp), 0);
    assert_true(exp > time(NULL) && exp <= time(NULL) + 121);
    assert_int_equal(http(f, "POST", path, &h, NULL, &out), 405);

    /* a session key may not make grants */
    assert_int_equal(signed_post(f, akid, pier_json_str(c, "SecretAccessKey", ""),
                                 pier_json_str(c, "Token", ""), body, &out),
                     403);
    assert_non_null(strstr(pier_buf_cstr(&out), "administrator"));
    /* bad requests */
    assert_int_equal(signed_post(f, ADMIN_KEY, ADMIN_SECRET, NULL, "{nope", &out), 400);
    assert_int_equal(signed_post(f, ADMIN_KEY, ADMIN_SECRET, NULL, "{\"bucket\": [\"a\"]}", &out),
                     400);
    assert_non_null(strstr(pier_buf_cstr(&out), "unknown member 'bucket'"));
    assert_int_equal(signed_post(f, ADMIN_KEY, ADMIN_SECRET, NULL, "{\"buckets\": [\"B!\"]}", &out),
                     400);
    assert_int_equal(
        signed_post(f, ADMIN_KEY, ADMIN_SECRET, NULL, "{\"ttl_seconds\": \"60\"}", &out), 400);
    assert_int_equal(http(f, "GET", "/_pier/other", NULL, NULL, &out), 404);
    json_decref(c);
    json_decref(g);
    pier_http_headers_free(&h);
    pier_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_scopes),
        cmocka_unit_test(sessions_and_scope),
        cmocka_unit_test_setup_teardown(http_endpoints, http_setup, http_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
