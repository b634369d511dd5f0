/*
 * test_webhookhttp: the webhook endpoint on a real server (127.0.0.1:0),
 * driven with pier's HTTP client. GitHub's documented signature example is
 * accepted as a signature (then 400: "Hello, World!" is no push); signed
 * GitHub, GitLab and Gitea pushes trigger exactly once; wrong, missing and
 * altered-body signatures are 401 with no trigger; branch deletion, other
 * branches, tags, pings and other events trigger nothing; unknown pipeline
 * 404, GET 405, oversized 413.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/http.h"
#include "net/server.h"
#include "stack/webhookhttp.h"

static const char *GH_SECRET = "It's a Secret to Everybody";

typedef struct {
    pthread_mutex_t mu;
    int calls;
    char pipeline[64];
    char trigger[32];
    char sha[64];
} triggers;

static int lookup(void *ctx, const char *pipeline, char **secret, char **branch)
{
    (void)ctx;
    static const char *const table[][3] = {{"site", "It's a Secret to Everybody", "main"},
                                           {"gl", "gl-token", "master"},
                                           {"gt", "gt-secret", "develop"},
                                           {"nosecret", NULL, "main"}};
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strcmp(table[i][0], pipeline) == 0) {
            *secret = table[i][1] ? pier_strdup(table[i][1]) : NULL;
            *branch = pier_strdup(table[i][2]);
            return 0;
        }
    return pier_error_set(PIER_ENOTFOUND, "no pipeline %s", pipeline);
}

static int trigger(void *ctx, const char *pipeline, const char *why, const char *sha,
                   int64_t *run_id)
{
    triggers *t = ctx;
    pthread_mutex_lock(&t->mu);
    t->calls++;
    snprintf(t->pipeline, sizeof t->pipeline, "%s", pipeline);
    snprintf(t->trigger, sizeof t->trigger, "%s", why);
    snprintf(t->sha, sizeof t->sha, "%s", sha);
    *run_id = 41 + t->calls;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

typedef struct {
    pier_server *srv;
    pier_http_client *http;
    triggers t;
} fixture;

static int setup(void **st)
{
    fixture *f = pier_calloc(1, sizeof *f);
    pthread_mutex_init(&f->t.mu, NULL);
    unsetenv("AWS_CA_BUNDLE");
    pier_server_options so = {.listen = "127.0.0.1:0", .threads = 2};
    assert_int_equal(pier_server_new(&f->srv, &so), 0);
    pier_webhookhttp_options wo = {
        .lookup = lookup, .trigger = trigger, .trigger_ctx = &f->t, .max_body = 64 << 10};
    pier_webhookhttp_register(f->srv, &wo);
    if (pier_server_start(f->srv) != 0)
        fail_msg("start: %s", pier_error_last());
    pier_http_client_options co = {0};
    assert_int_equal(pier_http_client_new(&f->http, &co), 0);
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    fixture *f = *st;
    pier_http_client_free(f->http);
    pier_server_free(f->srv);
    pthread_mutex_destroy(&f->t.mu);
    free(f);
    return 0;
}

/* POSTs body to /_pier/webhooks/<pipeline> with the header pairs (NULL
 * terminated); returns the status, body into out. */
static long post(fixture *f, const char *method, const char *pipeline, const char *body,
                 pier_buf *out, ...)
{
    char url[256];
    snprintf(url, sizeof url, "%s/_pier/webhooks/%s", pier_server_url(f->srv), pipeline);
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = method;
    req.url = url;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    pier_http_headers_add(&req.headers, "Content-Type", "application/json");
    va_list ap;
    va_start(ap, out);
    for (;;) {
        const char *n = va_arg(ap, const char *);
        if (!n)
            break;
        pier_http_headers_add(&req.headers, n, va_arg(ap, const char *));
    }
    va_end(ap);
    pier_http_response resp;
    pier_http_response_init(&resp);
    if (pier_http_do(f->http, &req, &resp) != 0)
        fail_msg("request: %s", pier_error_last());
    long status = resp.status;
    pier_buf_reset(out);
    pier_buf_put(out, resp.body.ptr ? resp.body.ptr : "", resp.body.len);
    pier_http_response_free(&resp);
    pier_http_headers_free(&req.headers);
    return status;
}

static void sign(char *out, const char *secret, const char *body, bool prefix)
{
    unsigned char mac[PIER_SHA256_LEN];
    pier_hmac_sha256(mac, secret, strlen(secret), body, strlen(body));
    char hex[65];
    pier_hex_encode(hex, mac, sizeof mac);
    snprintf(out, 80, "%s%s", prefix ? "sha256=" : "", hex);
}

#define AFTER "0123456789abcdef0123456789abcdef01234567"
#define ZEROS "0000000000000000000000000000000000000000"

static const char *push(const char *ref, const char *after)
{
    static char body[1024];
    snprintf(body, sizeof body,
             "{\"ref\":\"%s\",\"before\":\"6113728f27ae82c7b1a177c8d03f9e96e0adf246\","
             "\"after\":\"%s\",\"created\":false,\"deleted\":%s,"
             "\"repository\":{\"full_name\":\"o/r\",\"clone_url\":\"https://x/o/r.git\"},"
             "\"commits\":[]}",
             ref, after, strcmp(after, ZEROS) == 0 ? "true" : "false");
    return body;
}

static void test_github_documented_example(void **st)
{
    fixture *f = *st;
    pier_buf out = PIER_BUF_INIT;
    /* The documented signature is accepted; the payload is then no push. */
    long s = post(f, "POST", "site", "Hello, World!", &out, "X-GitHub-Event", "push",
                  "X-Hub-Signature-256",
                  "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", NULL);
    assert_int_equal(s, 400);
    assert_null(strstr(out.ptr, "signature"));
    /* One byte changed in the body: 401. */
    s = post(f, "POST", "site", "Hello, World?", &out, "X-GitHub-Event", "push",
             "X-Hub-Signature-256",
             "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", NULL);
    assert_int_equal(s, 401);
    assert_int_equal(f->t.calls, 0);
    pier_buf_free(&out);
}

static void test_github_push_triggers_once(void **st)
{
    fixture *f = *st;
    pier_buf out = PIER_BUF_INIT;
    char sig[80];
    const char *body = push("refs/heads/main", AFTER);
    sign(sig, GH_SECRET, body, true);
    long s = post(f, "POST", "site", body, &out, "X-GitHub-Event", "push", "X-GitHub-Delivery",
                  "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-Hub-Signature-256", sig, NULL);
    assert_int_equal(s, 202);
    assert_int_equal(f->t.calls, 1);
    assert_string_equal(f->t.pipeline, "site");
    assert_string_equal(f->t.trigger, "webhook");
    assert_string_equal(f->t.sha, AFTER);
    assert_non_null(strstr(out.ptr, "\"accepted\""));
    assert_non_null(strstr(out.ptr, "\"run\":42"));
    /* The secret never shows in an answer. */
    assert_null(strstr(out.ptr, "Secret"));
    pier_buf_free(&out);
}

static void test_bad_signatures_401(void **st)
{
    fixture *f = *st;
    pier_buf out = PIER_BUF_INIT;
    char sig[80];
    const char *body = push("refs/heads/main", AFTER);
    char *copy = pier_strdup(body);
    sign(sig, "wrong secret", copy, true);
    assert_int_equal(post(f, "POST", "site", copy, &out, "X-GitHub-Event", "push",
                          "X-Hub-Signature-256", sig, NULL),
                     401);
    assert_null(strstr(out.ptr, GH_SECRET));
    /* missing */
    assert_int_equal(post(f, "POST", "site", copy, &out, "X-GitHub-Event", "push", NULL), 401);
    /* altered body: signed, then one character changed */
    sign(sig, GH_SECRET, copy, true);
    copy[strlen(copy) - 3] = 'X';
    assert_int_equal(post(f, "POST", "site", copy, &out, "X-GitHub-Event", "push",
                          "X-Hub-Signature-256", sig, NULL),
                     401);
    /* no event header at all */
    assert_int_equal(post(f, "POST", "site", body, &out, "X-Hub-Signature-256", sig, NULL), 401);
    /* GitLab with a wrong token; a pipeline with no secret */
    assert_int_equal(post(f, "POST", "gl", body, &out, "X-Gitlab-Event", "Push Hook",
                          "X-Gitlab-Token", "nope", NULL),
                     401);
    sign(sig, GH_SECRET, body, true);
    assert_int_equal(post(f, "POST", "nosecret", body, &out, "X-GitHub-Event", "push",
                          "X-Hub-Signature-256", sig, NULL),
                     401);
    assert_int_equal(f->t.calls, 0);
    free(copy);
    pier_buf_free(&out);
}

static void test_gitlab_and_gitea(void **st)
{
    fixture *f = *st;
    pier_buf out = PIER_BUF_INIT;
    const char *body = push("refs/heads/master", AFTER);
    assert_int_equal(post(f, "POST", "gl", body, &out, "X-Gitlab-Event", "Push Hook",
                          "X-Gitlab-Token", "gl-token", NULL),
                     202);
    assert_int_equal(f->t.calls, 1);
    assert_string_equal(f->t.pipeline, "gl");
    char hex[80], hub[80];
    body = push("refs/heads/develop", AFTER);
    sign(hex, "gt-secret", body, false);
    sign(hub, "gt-secret", body, true);
    assert_int_equal(post(f, "POST", "gt", body, &out, "X-Gitea-Event", "push", "X-GitHub-Event",
                          "push", "X-Gitea-Signature", hex, "X-Hub-Signature-256", hub, NULL),
                     202);
    assert_int_equal(f->t.calls, 2);
    assert_string_equal(f->t.pipeline, "gt");
    /* Gitea with a wrong signature */
    sign(hex, "other", body, false);
    assert_int_equal(
        post(f, "POST", "gt", body, &out, "X-Gitea-Event", "push", "X-Gitea-Signature", hex, NULL),
        401);
    assert_int_equal(f->t.calls, 2);
    pier_buf_free(&out);
}

static void test_ignored_pushes(void **st)
{
    fixture *f = *st;
    pier_buf out = PIER_BUF_INIT;
    char sig[80];
    static const char *const refs[][2] = {
        {"refs/heads/main", ZEROS}, {"refs/heads/feature", AFTER}, {"refs/tags/v1.0.0", AFTER}};
    for (size_t i = 0; i < 3; i++) {
        const char *body = push(refs[i][0], refs[i][1]);
        sign(sig, GH_SECRET, body, true);
        assert_int_equal(post(f, "POST", "site", body, &out, "X-GitHub-Event", "push",
                              "X-Hub-Signature-256", sig, NULL),
                         200);
        assert_non_null(strstr(out.ptr, "\"ignored\""));
    }
    const char *ping = "{\"zen\":\"Keep it logically awesome.\",\"hook_id\":1}";
    sign(sig, GH_SECRET, ping, true);
    assert_int_equal(post(f, "POST", "site", ping, &out, "X-GitHub-Event", "ping",
                          "X-Hub-Signature-256", sig, NULL),
                     200);
    assert_non_null(strstr(out.ptr, "pong"));
    const char *issue = "{\"action\":\"opened\"}";
    sign(sig, GH_SECRET, issue, true);
    assert_int_equal(post(f, "POST", "site", issue, &out, "X-GitHub-Event", "issues",
                          "X-Hub-Signature-256", sig, NULL),
                     200);
    assert_int_equal(f->t.calls, 0);
    pier_buf_free(&out);
}

static void test_routing_and_limits(void **st)
{
    fixture *f = *st;
    pier_buf out = PIER_BUF_INIT;
    assert_int_equal(post(f, "POST", "nope", "{}", &out, "X-GitHub-Event", "push", NULL), 404);
    assert_int_equal(post(f, "POST", "a/b", "{}", &out, NULL), 404);
    assert_int_equal(post(f, "GET", "site", NULL, &out, NULL), 405);
    /* Over the test's 64 KiB cap. */
    size_t n = 100 << 10;
    char *big = pier_malloc(n + 1);
    memset(big, 'x', n);
    big[n] = 0;
    assert_int_equal(post(f, "POST", "site", big, &out, "X-GitHub-Event", "push", NULL), 413);
    free(big);
    assert_int_equal(f->t.calls, 0);
    pier_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_github_documented_example, setup, teardown),
        cmocka_unit_test_setup_teardown(test_github_push_triggers_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_signatures_401, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gitlab_and_gitea, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignored_pushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routing_and_limits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
