/*
 * test_edge: the edge's rules as a pure function (table-driven: redirects,
 * exact and prefix rewrites, directory index, SPA fallback, the 404 page,
 * in that order), the site setters' validation, and the handler end to end
 * on 127.0.0.1 (raw sockets) over a real store with a fake clock: miss then
 * hit with Age, stale until the TTL ends or an invalidation, CloudFront's
 * TTL sources (max-age, default 24 h, no-cache), prefix invalidation, 304,
 * Range, HEAD, the 404 page's status, redirects, header rules, Host
 * routing, large objects streamed and never cached; the shared response of
 * plain hits (Age moving on across seconds, conditional and range requests
 * still answered per request, entries invalidated while a hit is being
 * sent, in memory and file-backed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "net/server.h"
#include "stack/edge.h"
#include "stack/store.h"

/* ---- rules ---- */

static const char *const objects[] = {
    "/index.html",
    "/about/index.html",
    "/storybook/index.html",
    "/docs/index.html",
    "/docs/intro.html",
    "/404.html",
    "/app.js",
    NULL,
};

static bool fake_exists(void *ctx, const char *path)
{
    const char *const *set = ctx;
    for (size_t i = 0; set[i]; i++)
        if (strcmp(set[i], path) == 0)
            return true;
    return false;
}

static pier_edge_site *rules_site(void)
{
    pier_edge_site *s = NULL;
    assert_int_equal(pier_edge_site_new(&s, "EDEV0000000001", "web-dev"), 0);
    assert_int_equal(pier_edge_site_add_host(s, "web-dev.localhost"), 0);
    assert_int_equal(pier_edge_site_add_rewrite(s, "/storybook", "/storybook/index.html", false),
                     0);
    assert_int_equal(pier_edge_site_add_rewrite(s, "/docs/", "/docs/index.html", true), 0);
    assert_int_equal(pier_edge_site_add_redirect(s, "/old", "/about/", 301, false), 0);
    assert_int_equal(
        pier_edge_site_add_redirect(s, "/blog/", "https://blog.example.com/", 308, true), 0);
    assert_int_equal(pier_edge_site_add_redirect(s, "/index.html", "/", 302, false), 0);
    assert_int_equal(pier_edge_site_set_spa_fallback(s, "/index.html"), 0);
    assert_int_equal(pier_edge_site_set_not_found(s, "/404.html"), 0);
    return s;
}

static void rules_table(void **state)
{
    pier_edge_site *s = rules_site();
    static const struct {
        const char *path, *query;
        pier_edge_kind kind;
        unsigned status;
        const char *target;
        bool fallback;
    } cases[] = {
        {"/", "", PIER_EDGE_SERVE, 200, "/index.html", false}, /* index */
        {"/about/", "", PIER_EDGE_SERVE, 200, "/about/index.html", false},
        {"/storybook", "", PIER_EDGE_SERVE, 200, "/storybook/index.html", false},  /* rewrite */
        {"/storybook/", "", PIER_EDGE_SERVE, 200, "/storybook/index.html", false}, /* index */
        {"/app.js", "", PIER_EDGE_SERVE, 200, "/app.js", false}, /* plain object */
        {"/docs/intro.html", "", PIER_EDGE_SERVE, 200, "/docs/intro.html", false}, /* exists */
        {"/docs/guide/x", "", PIER_EDGE_SERVE, 200, "/docs/index.html", true},     /* prefix rw */
        {"/docs/missing.png", "", PIER_EDGE_SERVE, 200, "/docs/index.html", true},
        {"/dashboard/settings", "", PIER_EDGE_SERVE, 200, "/index.html", true}, /* SPA */
        {"/missing.png", "", PIER_EDGE_SERVE, 404, "/404.html", true},          /* 404 page */
        {"/a.b/c", "", PIER_EDGE_SERVE, 200, "/index.html", true},      /* dot in a dir only */
        {"/old", "x=1", PIER_EDGE_REDIRECT, 301, "/about/?x=1", false}, /* redirect */
        {"/old/", "", PIER_EDGE_SERVE, 200, "/index.html", true},       /* exact only */
        {"/blog/2024/a b", "", PIER_EDGE_REDIRECT, 308, "https://blog.example.com/2024/a%20b",
         false},
        {"/index.html", "", PIER_EDGE_REDIRECT, 302, "/", false}, /* redirects first */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pier_edge_route r;
        pier_edge_resolve(s, cases[i].path, cases[i].query, fake_exists, (void *)objects, &r);
        if (r.kind != cases[i].kind || r.status != cases[i].status ||
            strcmp(r.path ? r.path : "", cases[i].target) != 0 || r.fallback != cases[i].fallback)
            fail_msg("case %zu %s: got kind %d status %u path %s fallback %d", i, cases[i].path,
                     r.kind, r.status, r.path ? r.path : "-", r.fallback);
        pier_edge_route_clear(&r);
    }
    /* without fallback and 404 page: plain not found */
    assert_int_equal(pier_edge_site_set_spa_fallback(s, NULL), 0);
    assert_int_equal(pier_edge_site_set_not_found(s, NULL), 0);
    pier_edge_route r;
    pier_edge_resolve(s, "/dashboard", "", fake_exists, (void *)objects, &r);
    assert_int_equal(r.kind, PIER_EDGE_NOT_FOUND);
    assert_int_equal(r.status, 404);
    assert_null(r.path);
    pier_edge_route_clear(&r);
    /* index disabled: "/" names no object */
    assert_int_equal(pier_edge_site_set_index(s, NULL), 0);
    pier_edge_resolve(s, "/", "", fake_exists, (void *)objects, &r);
    assert_int_equal(r.kind, PIER_EDGE_NOT_FOUND);
    pier_edge_route_clear(&r);
    /* a clone behaves the same */
    pier_edge_site *c = pier_edge_site_clone(s);
    pier_edge_resolve(c, "/storybook", "", fake_exists, (void *)objects, &r);
    assert_string_equal(r.path, "/storybook/index.html");
    pier_edge_route_clear(&r);
    assert_int_equal(c->redirect_count, 3);
    pier_edge_site_free(c);
    pier_edge_site_free(s);
}

static void site_validation(void **state)
{
    pier_edge_site *s = NULL;
    assert_true(pier_edge_id_ok("EDEV0000000001"));
    assert_true(pier_edge_id_ok("E2QWRUHAPOMQZL"));
    assert_false(pier_edge_id_ok("edev0000000001"));
    assert_false(pier_edge_id_ok("XDEV0000000001"));
    assert_false(pier_edge_id_ok("E123"));
    assert_false(pier_edge_id_ok("EDEV-000000001"));
    assert_int_equal(pier_edge_site_new(&s, "bad", "site"), PIER_EINVALID);
    assert_null(s);
    assert_int_equal(pier_edge_site_new(&s, "EDEV0000000001", "Bad_Bucket"), PIER_EINVALID);
    assert_int_equal(pier_edge_site_new(&s, "EDEV0000000001", "site"), 0);
    assert_int_equal(pier_edge_site_add_host(s, "Web.Localhost"), 0);
    assert_string_equal(s->hosts[0], "web.localhost");
    assert_int_equal(pier_edge_site_add_host(s, "*.example.test"), 0);
    assert_int_equal(pier_edge_site_add_host(s, "*"), 0);
    assert_int_equal(pier_edge_site_add_host(s, "host:8080"), PIER_EINVALID);
    assert_int_equal(pier_edge_site_add_host(s, "*x.test"), PIER_EINVALID);
    assert_int_equal(pier_edge_site_add_host(s, ""), PIER_EINVALID);
    assert_int_equal(pier_edge_site_set_prefix(s, "/builds/main"), 0);
    assert_string_equal(s->prefix, "builds/main/");
    assert_int_equal(pier_edge_site_set_prefix(s, ""), 0);
    assert_string_equal(s->prefix, "");
    assert_int_equal(pier_edge_site_set_prefix(s, "a//b"), PIER_EINVALID);
    assert_int_equal(pier_edge_site_set_index(s, "sub/index.html"), PIER_EINVALID);
    assert_int_equal(pier_edge_site_set_spa_fallback(s, "index.html"), PIER_EINVALID);
    assert_int_equal(pier_edge_site_set_not_found(s, "/dir/"), PIER_EINVALID);
    assert_int_equal(pier_edge_site_add_redirect(s, "/a", "/b", 200, false), PIER_EINVALID);
    assert_int_equal(pier_edge_site_add_redirect(s, "/a", "//evil.test/", 301, false),
                     PIER_EINVALID);
    assert_int_equal(pier_edge_site_add_redirect(s, "/a", "ftp://x/", 301, false), PIER_EINVALID);
    assert_int_equal(pier_edge_site_add_redirect(s, "a", "/b", 301, false), PIER_EINVALID);
    assert_int_equal(pier_edge_site_add_redirect(s, "/a", "/b\r\nX: y", 301, false), PIER_EINVALID);
    assert_int_equal(pier_edge_site_add_rewrite(s, "/a", "/b/", false), PIER_EINVALID);
    const char *globs[] = {"**"};
    pier_edge_header ok = {"X-Frame-Options", "DENY"};
    pier_edge_header bad_name = {"X Frame", "DENY"};
    pier_edge_header owned = {"Content-Length", "1"};
    pier_edge_header bad_value = {"X-A", "a\nb"};
    assert_int_equal(pier_edge_site_add_headers(s, globs, 1, &ok, 1), 0);
    assert_int_equal(pier_edge_site_add_headers(s, globs, 1, &bad_name, 1), PIER_EINVALID);
    assert_int_equal(pier_edge_site_add_headers(s, globs, 1, &owned, 1), PIER_EINVALID);
    assert_int_equal(pier_edge_site_add_headers(s, globs, 1, &bad_value, 1), PIER_EINVALID);
    const char *bad_glob[] = {"[abc"};
    assert_int_equal(pier_edge_site_add_headers(s, bad_glob, 1, &ok, 1), PIER_EINVALID);
    assert_int_equal(pier_edge_site_add_headers(s, globs, 0, &ok, 1), PIER_EINVALID);
    pier_edge_site_free(s);

    /* the edge refuses a duplicate id or host, and a site without host */
    pier_edge *e = NULL;
    pier_edge_options eo = {0};
    assert_int_equal(pier_edge_new(&e, &eo), 0);
    pier_edge_site *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    pier_edge_site_new(&a, "EAAAAAAAAAAAA1", "site");
    pier_edge_site_add_host(a, "a.test");
    assert_int_equal(pier_edge_add_site(e, a), 0);
    pier_edge_site_new(&b, "EAAAAAAAAAAAA1", "site");
    pier_edge_site_add_host(b, "b.test");
    assert_int_equal(pier_edge_add_site(e, b), PIER_EEXISTS);
    pier_edge_site_new(&c, "EAAAAAAAAAAAA2", "site");
    pier_edge_site_add_host(c, "a.test");
    assert_int_equal(pier_edge_add_site(e, c), PIER_EEXISTS);
    pier_edge_site_new(&d, "EAAAAAAAAAAAA3", "site");
    assert_int_equal(pier_edge_add_site(e, d), PIER_EINVALID);
    assert_int_equal(pier_edge_site_count(e), 1);
    assert_non_null(pier_edge_find_site(e, "EAAAAAAAAAAAA1"));
    assert_null(pier_edge_find_site(e, "EAAAAAAAAAAAA2"));
    pier_edge_free(e);
}

/* ---- the handler ---- */

typedef struct {
    char dir[64];      /* temp data directory */
    pier_store *store; /* the origin */
    pier_edge *edge;   /* under test */
    pier_server *srv;  /* on 127.0.0.1:0 */
    int64_t now_ms;    /* the fake clock */
} fixture;

static int64_t fake_clock(void *ctx)
{
    return ((fixture *)ctx)->now_ms;
}

static void put_object(fixture *f, const char *bucket, const char *key, const char *body, size_t n,
                       const char *cache_control, const char *type)
{
    pier_store_put *p = NULL;
    assert_int_equal(pier_store_put_begin(&p, f->store, bucket, key, strlen(key)), 0);
    assert_int_equal(pier_store_put_write(p, body, n), 0);
    pier_store_header h[2];
    size_t hn = 0;
    if (type)
        h[hn++] = (pier_store_header){"content-type", (char *)type};
    if (cache_control)
        h[hn++] = (pier_store_header){"cache-control", (char *)cache_control};
    assert_int_equal(pier_store_put_commit(p, h, hn, NULL), 0);
}

static void put_text(fixture *f, const char *key, const char *body, const char *cc)
{
    put_object(f, "web-dev", key, body, strlen(body), cc, "text/html");
}

static int setup_with(void **state, uint64_t object_max)
{
    fixture *f = pier_calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pier-test-edge-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(pier_store_open(&f->store, f->dir, NULL), 0);
    assert_int_equal(pier_store_bucket_create(f->store, "web-dev"), 0);
    assert_int_equal(pier_store_bucket_create(f->store, "other"), 0);
    f->now_ms = 1700000000000LL;
    pier_edge_options eo = {
        .store = f->store,
        .cache_bytes = object_max * 2 > (4 << 20) ? object_max * 2 : 4 << 20,
        .cache_object_max = object_max,
        .clock_ms = fake_clock,
        .clock_ctx = f,
    };
    assert_int_equal(pier_edge_new(&f->edge, &eo), 0);
    pier_edge_site *s = rules_site();
    const char *all[] = {"**"}, *css[] = {"*.css", "**/*.css"};
    pier_edge_header frame = {"X-Frame-Options", "DENY"};
    pier_edge_header cors = {"Access-Control-Allow-Origin", "*"};
    pier_edge_header ctype = {"Content-Type", "text/css; charset=utf-8"};
    assert_int_equal(pier_edge_site_add_headers(s, css, 2, &ctype, 1), 0);
    assert_int_equal(pier_edge_site_add_headers(s, all, 1, &frame, 1), 0);
    assert_int_equal(pier_edge_site_add_headers(s, css, 2, &cors, 1), 0);
    assert_int_equal(pier_edge_add_site(f->edge, s), 0);
    pier_edge_site *o = NULL;
    assert_int_equal(pier_edge_site_new(&o, "EOTHER00000001", "other"), 0);
    assert_int_equal(pier_edge_site_add_host(o, "*.other.test"), 0);
    assert_int_equal(pier_edge_site_set_prefix(o, "v2"), 0);
    assert_int_equal(pier_edge_add_site(f->edge, o), 0);
    pier_server_options so = {.listen = "127.0.0.1:0", .threads = 2, .memory_limit = 32 << 10};
    assert_int_equal(pier_server_new(&f->srv, &so), 0);
    pier_server_add(f->srv, NULL, pier_edge_handler(f->edge));
    assert_int_equal(pier_server_start(f->srv), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 64 << 10);
}

static int setup_big(void **state)
{
    return setup_with(state, 64 << 20);
}

static int teardown(void **state)
{
    fixture *f = *state;
    pier_server_free(f->srv);
    pier_edge_free(f->edge);
    pier_store_free(f->store);
    pier_file_remove_tree(f->dir);
    free(f);
    return 0;
}

typedef struct {
    unsigned status; /* from the status line */
    pier_buf head;   /* the header block */
    pier_buf body;   /* what followed */
} resp;

static void resp_free(resp *r)
{
    pier_buf_free(&r->head);
    pier_buf_free(&r->body);
}

/* The value of header name (case-insensitive) in r's head, into out. */
static bool header(const resp *r, const char *name, char *out, size_t size)
{
    const char *p = pier_buf_cstr(&r->head);
    size_t n = strlen(name);
    while ((p = strchr(p, '\n'))) {
        p++;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            const char *end = strpbrk(v, "\r\n");
            snprintf(out, size, "%.*s", (int)(end ? end - v : (long)strlen(v)), v);
            return true;
        }
    }
    return false;
}

/* One request on a fresh connection ("Connection: close"). */
static resp request(fixture *f, const char *method, const char *host, const char *path,
                    const char *extra)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(pier_server_port(f->srv));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[2048];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n",
                     method, path, host, extra ? extra : "");
    assert_int_equal(write(fd, req, (size_t)n), n);
    pier_buf all = PIER_BUF_INIT;
    char buf[65536];
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0)
        pier_buf_put(&all, buf, (size_t)got);
    close(fd);
    resp r = {0, PIER_BUF_INIT, PIER_BUF_INIT};
    const char *sep = strstr(pier_buf_cstr(&all), "\r\n\r\n");
    assert_non_null(sep);
    pier_buf_put(&r.head, all.ptr, (size_t)(sep - all.ptr) + 2);
    pier_buf_put(&r.body, sep + 4, all.len - (size_t)(sep + 4 - all.ptr));
    r.status = (unsigned)strtoul(all.ptr + 9, NULL, 10);
    pier_buf_free(&all);
    return r;
}

static void expect(fixture *f, const char *path, unsigned status, const char *body,
                   const char *xcache)
{
    resp r = request(f, "GET", "web-dev.localhost", path, NULL);
    char xc[64] = "";
    header(&r, "X-Cache", xc, sizeof xc);
    if (r.status != status || strcmp(pier_buf_cstr(&r.body), body) != 0 ||
        (xcache && strcmp(xc, xcache) != 0))
        fail_msg("GET %s: %u '%s' (%s), want %u '%s' (%s)", path, r.status, pier_buf_cstr(&r.body),
                 xc, status, body, xcache ? xcache : "any");
    resp_free(&r);
}

#define HIT  "Hit from pier"
#define MISS "Miss from pier"

static void miss_hit_age_stale(void **state)
{
    fixture *f = *state;
    put_text(f, "index.html", "v1", NULL); /* no Cache-Control: 24 h */
    expect(f, "/", 200, "v1", MISS);
    f->now_ms += 5000;
    resp r = request(f, "GET", "web-dev.localhost", "/", NULL);
    char v[128];
    assert_int_equal(r.status, 200);
    assert_true(header(&r, "X-Cache", v, sizeof v));
    assert_string_equal(v, HIT);
    assert_true(header(&r, "Age", v, sizeof v));
    assert_string_equal(v, "5");
    assert_true(header(&r, "ETag", v, sizeof v));
    assert_int_equal(v[0], '"');
    assert_true(header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/html");
    assert_true(header(&r, "X-Frame-Options", v, sizeof v));
    assert_true(header(&r, "Last-Modified", v, sizeof v));
    resp_free(&r);

    /* the origin changes: the edge keeps serving what it holds */
    put_text(f, "index.html", "v2", NULL);
    expect(f, "/", 200, "v1", HIT);
    f->now_ms += 23 * 3600 * 1000LL;
    expect(f, "/", 200, "v1", HIT);
    /* 24 h after it was stored, it is fetched again */
    f->now_ms += 3600 * 1000LL;
    expect(f, "/", 200, "v2", MISS);
    expect(f, "/", 200, "v2", HIT);
    /* /index.html is another cache key with the same source */
    expect(f, "/index.html", 302, "", NULL); /* the redirect rule of rules_site */
    put_text(f, "index.html", "v3", NULL);
    assert_int_equal(pier_edge_invalidate(f->edge, "EDEV0000000001", "/index.html"), 1);
    expect(f, "/", 200, "v3", MISS);
}

static void ttl_sources(void **state)
{
    fixture *f = *state;
    put_text(f, "short.html", "s1", "max-age=60");
    put_text(f, "nocache.html", "n1", "no-cache");
    put_text(f, "edge.html", "e1", "max-age=0, s-maxage=120");
    expect(f, "/short.html", 200, "s1", MISS);
    expect(f, "/nocache.html", 200, "n1", MISS);
    expect(f, "/edge.html", 200, "e1", MISS);
    put_text(f, "short.html", "s2", "max-age=60");
    put_text(f, "nocache.html", "n2", "no-cache");
    put_text(f, "edge.html", "e2", "max-age=0, s-maxage=120");
    f->now_ms += 59 * 1000;
    expect(f, "/short.html", 200, "s1", HIT);
    expect(f, "/nocache.html", 200, "n2", MISS); /* never cached */
    expect(f, "/edge.html", 200, "e1", HIT);
    f->now_ms += 1000;
    expect(f, "/short.html", 200, "s2", MISS);
    expect(f, "/edge.html", 200, "e1", HIT);
    f->now_ms += 60 * 1000;
    expect(f, "/edge.html", 200, "e2", MISS);
    /* the Cache-Control header is passed on as stored */
    resp r = request(f, "GET", "web-dev.localhost", "/edge.html", NULL);
    char v[128];
    assert_true(header(&r, "Cache-Control", v, sizeof v));
    assert_string_equal(v, "max-age=0, s-maxage=120");
    resp_free(&r);
}

static void invalidation_prefix(void **state)
{
    fixture *f = *state;
    put_object(f, "web-dev", "assets/app.css", "a{}", 3, "max-age=3600", "text/css");
    put_object(f, "web-dev", "assets/img/logo.svg", "<svg/>", 6, NULL, "image/svg+xml");
    put_object(f, "web-dev", "assetsx.txt", "x1", 2, NULL, "text/plain");
    expect(f, "/assets/app.css", 200, "a{}", MISS);
    expect(f, "/assets/img/logo.svg", 200, "<svg/>", MISS);
    expect(f, "/assetsx.txt", 200, "x1", MISS);
    put_object(f, "web-dev", "assets/app.css", "b{}", 3, "max-age=3600", "text/css");
    put_object(f, "web-dev", "assets/img/logo.svg", "<svg></svg>", 11, NULL, "image/svg+xml");
    put_object(f, "web-dev", "assetsx.txt", "x2", 2, NULL, "text/plain");
    expect(f, "/assets/app.css", 200, "a{}", HIT);
    assert_int_equal(pier_edge_invalidate(f->edge, "EDEV0000000001", "/assets/*"), 2);
    expect(f, "/assets/app.css", 200, "b{}", MISS);
    expect(f, "/assets/img/logo.svg", 200, "<svg></svg>", MISS);
    expect(f, "/assetsx.txt", 200, "x1", HIT);
    /* other distributions are untouched; an unknown one purges nothing */
    assert_int_equal(pier_edge_invalidate(f->edge, "EOTHER00000001", "/*"), 0);
    assert_int_equal(pier_edge_invalidate(f->edge, "ENOSUCH0000001", "/*"), 0);
    /* encoded paths are decoded */
    put_object(f, "web-dev", "a b.txt", "sp1", 3, NULL, "text/plain");
    expect(f, "/a%20b.txt", 200, "sp1", MISS);
    put_object(f, "web-dev", "a b.txt", "sp2", 3, NULL, "text/plain");
    assert_int_equal(pier_edge_invalidate(f->edge, "EDEV0000000001", "/a%20b.txt"), 1);
    expect(f, "/a%20b.txt", 200, "sp2", MISS);
    /* a rule header overrides the object's own, rules apply in order */
    resp r = request(f, "GET", "web-dev.localhost", "/assets/app.css", NULL);
    char v[128];
    assert_true(header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/css; charset=utf-8");
    assert_true(header(&r, "Access-Control-Allow-Origin", v, sizeof v));
    assert_true(header(&r, "X-Frame-Options", v, sizeof v));
    resp_free(&r);
}

static void conditional_range_head(void **state)
{
    fixture *f = *state;
    put_object(f, "web-dev", "data.bin", "0123456789", 10, NULL, "application/octet-stream");
    resp r = request(f, "GET", "web-dev.localhost", "/data.bin", NULL);
    char etag[64], v[128], cond[128];
    assert_true(header(&r, "ETag", etag, sizeof etag));
    resp_free(&r);
    for (int round = 0; round < 2; round++) { /* from the cache (round 0: hit) */
        snprintf(cond, sizeof cond, "If-None-Match: W/\"zz\", %s\r\n", etag);
        r = request(f, "GET", "web-dev.localhost", "/data.bin", cond);
        assert_int_equal(r.status, 304);
        assert_int_equal(r.body.len, 0);
        assert_true(header(&r, "ETag", v, sizeof v));
        resp_free(&r);
        r = request(f, "GET", "web-dev.localhost", "/data.bin", "If-None-Match: \"other\"\r\n");
        assert_int_equal(r.status, 200);
        resp_free(&r);
        r = request(f, "GET", "web-dev.localhost", "/data.bin", "Range: bytes=2-4\r\n");
        assert_int_equal(r.status, 206);
        assert_string_equal(pier_buf_cstr(&r.body), "234");
        assert_true(header(&r, "Content-Range", v, sizeof v));
        assert_string_equal(v, "bytes 2-4/10");
        resp_free(&r);
        r = request(f, "GET", "web-dev.localhost", "/data.bin", "Range: bytes=-3\r\n");
        assert_int_equal(r.status, 206);
        assert_string_equal(pier_buf_cstr(&r.body), "789");
        resp_free(&r);
        r = request(f, "GET", "web-dev.localhost", "/data.bin", "Range: bytes=7-\r\n");
        assert_string_equal(pier_buf_cstr(&r.body), "789");
        resp_free(&r);
        r = request(f, "GET", "web-dev.localhost", "/data.bin", "Range: bytes=10-20\r\n");
        assert_int_equal(r.status, 416);
        assert_true(header(&r, "Content-Range", v, sizeof v));
        assert_string_equal(v, "bytes */10");
        resp_free(&r);
        r = request(f, "GET", "web-dev.localhost", "/data.bin", "Range: bytes=0-1,4-5\r\n");
        assert_int_equal(r.status, 200); /* several ranges: the whole object */
        assert_int_equal(r.body.len, 10);
        resp_free(&r);
        snprintf(cond, sizeof cond, "Range: bytes=0-0\r\nIf-Range: \"stale\"\r\n");
        r = request(f, "GET", "web-dev.localhost", "/data.bin", cond);
        assert_int_equal(r.status, 200); /* If-Range does not match */
        resp_free(&r);
        r = request(f, "HEAD", "web-dev.localhost", "/data.bin", NULL);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body.len, 0);
        assert_true(header(&r, "Content-Length", v, sizeof v));
        assert_string_equal(v, "10");
        resp_free(&r);
        r = request(f, "GET", "web-dev.localhost", "/data.bin",
                    "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n");
        assert_int_equal(r.status, 304);
        resp_free(&r);
        /* round 1: not cacheable (no-store), streamed from the store */
        if (round == 0) {
            put_object(f, "web-dev", "data.bin", "0123456789", 10, "no-store",
                       "application/octet-stream");
            assert_int_equal(pier_edge_invalidate(f->edge, "EDEV0000000001", "/data.bin"), 1);
        }
    }
}

static void pages_redirects_hosts(void **state)
{
    fixture *f = *state;
    put_text(f, "index.html", "home", NULL);
    put_text(f, "404.html", "not here", NULL);
    put_text(f, "storybook/index.html", "stories", NULL);
    expect(f, "/storybook", 200, "stories", MISS);
    expect(f, "/storybook/", 200, "stories", MISS);
    expect(f, "/storybook", 200, "stories", HIT);
    expect(f, "/settings/profile", 200, "home", MISS); /* SPA fallback */
    expect(f, "/missing.png", 404, "not here", MISS);
    expect(f, "/missing.png", 404, "not here", HIT);
    /* fallback answers are kept 10 s at most */
    put_text(f, "settings/profile", "real page", NULL);
    f->now_ms += 10 * 1000;
    expect(f, "/settings/profile", 200, "real page", MISS);
    resp r = request(f, "GET", "web-dev.localhost", "/blog/x?y=1", NULL);
    char v[256];
    assert_int_equal(r.status, 308);
    assert_true(header(&r, "Location", v, sizeof v));
    assert_string_equal(v, "https://blog.example.com/x?y=1");
    resp_free(&r);
    /* Host routing: a port and case do not matter; unknown hosts get 404 */
    r = request(f, "GET", "WEB-DEV.localhost:8080", "/storybook", NULL);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    r = request(f, "GET", "nobody.test", "/", NULL);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    /* a wildcard host with a key prefix */
    put_object(f, "other", "v2/index.html", "other site", 10, NULL, "text/html");
    r = request(f, "GET", "www.other.test", "/", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(pier_buf_cstr(&r.body), "other site");
    resp_free(&r);
    r = request(f, "GET", "other.test", "/", NULL); /* the suffix alone is not a subdomain */
    assert_int_equal(r.status, 404);
    resp_free(&r);
    /* methods and bad paths */
    r = request(f, "POST", "web-dev.localhost", "/", NULL);
    assert_int_equal(r.status, 405);
    assert_true(header(&r, "Allow", v, sizeof v));
    resp_free(&r);
    r = request(f, "GET", "web-dev.localhost", "/bad%zzescape", NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    r = request(f, "GET", "web-dev.localhost", "/nul%00byte", NULL);
    assert_int_equal(r.status, 400);
    resp_free(&r);
}

static void large_objects_stream(void **state)
{
    fixture *f = *state;
    size_t n = 200 << 10; /* over cache_object_max (64 KiB) */
    char *big = pier_malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    put_object(f, "web-dev", "big.bin", big, n, NULL, "application/octet-stream");
    for (int i = 0; i < 2; i++) {
        resp r = request(f, "GET", "web-dev.localhost", "/big.bin", NULL);
        char v[64];
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body.len, n);
        assert_memory_equal(r.body.ptr, big, n);
        assert_true(header(&r, "X-Cache", v, sizeof v));
        assert_string_equal(v, MISS); /* never cached */
        resp_free(&r);
    }
    resp r = request(f, "GET", "web-dev.localhost", "/big.bin", "Range: bytes=100000-100009\r\n");
    assert_int_equal(r.status, 206);
    assert_int_equal(r.body.len, 10);
    assert_memory_equal(r.body.ptr, big + 100000, 10);
    resp_free(&r);
    free(big);
    pier_edgecache_stats st;
    pier_edge_cache_stats(f->edge, &st);
    assert_int_equal(st.entries, 0);
}

static void file_backed_entries(void **state)
{
    fixture *f = *state;
    size_t n = 1 << 20; /* FILE_MIN: kept as the open store file */
    char *v1 = pier_malloc(n), *v2 = pier_malloc(n);
    memset(v1, '1', n);
    memset(v2, '2', n);
    v1[100] = 'x';
    put_object(f, "web-dev", "mid.bin", v1, n, NULL, "application/octet-stream");
    for (int i = 0; i < 2; i++) {
        resp r = request(f, "GET", "web-dev.localhost", "/mid.bin", NULL);
        char v[64];
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body.len, n);
        assert_memory_equal(r.body.ptr, v1, n);
        assert_true(header(&r, "X-Cache", v, sizeof v));
        assert_string_equal(v, i ? HIT : MISS);
        resp_free(&r);
    }
    pier_edgecache_stats st;
    pier_edge_cache_stats(f->edge, &st);
    assert_int_equal(st.files, 1);
    /* the store replaces the file: the cached one keeps the old bytes */
    put_object(f, "web-dev", "mid.bin", v2, n, NULL, "application/octet-stream");
    resp r = request(f, "GET", "web-dev.localhost", "/mid.bin", "Range: bytes=98-101\r\n");
    assert_int_equal(r.status, 206);
    assert_memory_equal(r.body.ptr, "11x1", 4);
    resp_free(&r);
    r = request(f, "HEAD", "web-dev.localhost", "/mid.bin", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    resp_free(&r);
    /* even deleted at the origin */
    assert_int_equal(pier_store_delete(f->store, "web-dev", "mid.bin", 7), 0);
    r = request(f, "GET", "web-dev.localhost", "/mid.bin", NULL);
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body.ptr, v1, n);
    resp_free(&r);
    assert_int_equal(pier_edge_invalidate(f->edge, "EDEV0000000001", "/mid.bin"), 1);
    pier_edge_cache_stats(f->edge, &st);
    assert_int_equal(st.files, 0); /* closed with the entry */
    put_object(f, "web-dev", "mid.bin", v2, n, NULL, "application/octet-stream");
    r = request(f, "GET", "web-dev.localhost", "/mid.bin", NULL);
    assert_memory_equal(r.body.ptr, v2, n);
    resp_free(&r);
    free(v1);
    free(v2);
}

/* Age and the other headers of hits answered with the entry's shared
 * response; requests it cannot answer still get theirs. */
static void shared_hits(void **state)
{
    fixture *f = *state;
    put_text(f, "index.html", "v1", NULL);
    expect(f, "/", 200, "v1", MISS);
    static const struct {
        int64_t step_ms; /* clock moves before the request */
        const char *age; /* Age sent */
    } steps[] = {{0, "0"}, {400, "0"}, {700, "1"}, {0, "1"}, {1000, "2"}, {59000, "61"}};
    char first_etag[128] = "";
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        f->now_ms += steps[i].step_ms;
        resp r = request(f, "GET", "web-dev.localhost", "/", NULL);
        char v[128];
        assert_int_equal(r.status, 200);
        assert_string_equal(pier_buf_cstr(&r.body), "v1");
        assert_true(header(&r, "Age", v, sizeof v));
        if (strcmp(v, steps[i].age) != 0)
            fail_msg("step %zu: Age %s, want %s", i, v, steps[i].age);
        assert_true(header(&r, "X-Cache", v, sizeof v));
        assert_string_equal(v, HIT);
        assert_true(header(&r, "Content-Type", v, sizeof v));
        assert_string_equal(v, "text/html");
        assert_true(header(&r, "X-Frame-Options", v, sizeof v));
        assert_true(header(&r, "Content-Length", v, sizeof v));
        assert_string_equal(v, "2");
        assert_true(header(&r, "ETag", v, sizeof v));
        if (!first_etag[0])
            snprintf(first_etag, sizeof first_etag, "%s", v);
        assert_string_equal(v, first_etag);
        /* one Age header only */
        const char *a = strstr(pier_buf_cstr(&r.head), "\nAge:");
        assert_non_null(a);
        assert_null(strstr(a + 1, "\nAge:"));
        resp_free(&r);
    }
    /* between shared hits: a conditional request, a range and HEAD */
    char inm[200];
    snprintf(inm, sizeof inm, "If-None-Match: %s\r\n", first_etag);
    resp r = request(f, "GET", "web-dev.localhost", "/", inm);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.body.len, 0);
    resp_free(&r);
    r = request(f, "GET", "web-dev.localhost", "/", "If-None-Match: \"other\"\r\n");
    assert_int_equal(r.status, 200);
    assert_string_equal(pier_buf_cstr(&r.body), "v1");
    resp_free(&r);
    r = request(f, "GET", "web-dev.localhost", "/", "Range: bytes=1-\r\n");
    assert_int_equal(r.status, 206);
    assert_string_equal(pier_buf_cstr(&r.body), "1");
    resp_free(&r);
    r = request(f, "HEAD", "web-dev.localhost", "/", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    char v[64];
    assert_true(header(&r, "Age", v, sizeof v));
    assert_string_equal(v, "61");
    resp_free(&r);
    /* the not-found page, cached with its 404, shared too */
    put_text(f, "404.html", "gone", NULL);
    expect(f, "/nothing.png", 404, "gone", MISS);
    expect(f, "/nothing.png", 404, "gone", HIT);
    expect(f, "/nothing.png", 404, "gone", HIT);
    /* invalidated: the next request is a miss with the new bytes */
    put_text(f, "index.html", "v2", NULL);
    assert_int_equal(pier_edge_invalidate(f->edge, "EDEV0000000001", "/*"), 2);
    expect(f, "/", 200, "v2", MISS);
    expect(f, "/", 200, "v2", HIT);
}

/* Sends a GET on a new connection and reads the response head; returns
 * the socket (the body is still to read) with what came after the head in
 * *rest. */
static int start_get(fixture *f, const char *path, pier_buf *head, pier_buf *rest)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(pier_server_port(f->srv));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[512];
    int n =
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: web-dev.localhost\r\nConnection: close\r\n\r\n", path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    pier_buf all = PIER_BUF_INIT;
    char buf[256];
    const char *sep;
    while (!(sep = all.len ? strstr(pier_buf_cstr(&all), "\r\n\r\n") : NULL)) {
        ssize_t got = read(fd, buf, sizeof buf);
        assert_true(got > 0);
        pier_buf_put(&all, buf, (size_t)got);
    }
    pier_buf_reset(head);
    pier_buf_reset(rest);
    pier_buf_put(head, all.ptr, (size_t)(sep + 4 - all.ptr));
    pier_buf_put(rest, sep + 4, all.len - (size_t)(sep + 4 - all.ptr));
    pier_buf_free(&all);
    return fd;
}

static void read_rest(int fd, pier_buf *body)
{
    char buf[65536];
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0)
        pier_buf_put(body, buf, (size_t)got);
    close(fd);
}

/* An entry invalidated (and its object replaced) while a hit is being
 * sent: the response in flight keeps the bytes it started with. */
static void invalidated_in_flight(void **state)
{
    fixture *f = *state;
    static const size_t sizes[] = {60 << 10, 32 << 20}; /* in memory; an open file */
    for (size_t k = 0; k < 2; k++) {
        size_t n = sizes[k];
        char *v1 = pier_malloc(n), *v2 = pier_malloc(n);
        for (size_t i = 0; i < n; i++) {
            v1[i] = (char)('a' + i % 23);
            v2[i] = (char)('A' + i % 19);
        }
        put_object(f, "web-dev", "big.bin", v1, n, NULL, "application/octet-stream");
        pier_edge_invalidate(f->edge, "EDEV0000000001", "/big.bin"); /* the last size's */
        pier_buf head = PIER_BUF_INIT, body = PIER_BUF_INIT;
        read_rest(start_get(f, "/big.bin", &head, &body), &body); /* the miss */
        assert_int_equal(body.len, n);
        for (int round = 0; round < 2; round++) {
            int fd = start_get(f, "/big.bin", &head, &body);
            assert_non_null(strstr(pier_buf_cstr(&head), "X-Cache: " HIT));
            /* 32 MiB is more than the sockets hold: the server is still
             * sending when the entry goes */
            put_object(f, "web-dev", "big.bin", round ? v1 : v2, n, NULL,
                       "application/octet-stream");
            assert_int_equal(pier_edge_invalidate(f->edge, "EDEV0000000001", "/big.bin"), 1);
            pier_edgecache_stats st;
            pier_edge_cache_stats(f->edge, &st);
            assert_int_equal(st.entries, 0);
            read_rest(fd, &body);
            assert_int_equal(body.len, n);
            assert_memory_equal(body.ptr, round ? v2 : v1, n);
            /* the new version, cached again for the next round */
            pier_buf_reset(&body);
            read_rest(start_get(f, "/big.bin", &head, &body), &body);
            assert_non_null(strstr(pier_buf_cstr(&head), "X-Cache: " MISS));
            assert_memory_equal(body.ptr, round ? v1 : v2, n);
        }
        pier_buf_free(&head);
        pier_buf_free(&body);
        free(v1);
        free(v2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rules_table),
        cmocka_unit_test(site_validation),
        cmocka_unit_test_setup_teardown(miss_hit_age_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(ttl_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(invalidation_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(conditional_range_head, setup, teardown),
        cmocka_unit_test_setup_teardown(pages_redirects_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(large_objects_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(file_backed_entries, setup_big, teardown),
        cmocka_unit_test_setup_teardown(shared_hits, setup, teardown),
        cmocka_unit_test_setup_teardown(invalidated_in_flight, setup_big, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
