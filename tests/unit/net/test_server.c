/*
 * test_server: the HTTP server over raw sockets, so the bytes on the wire
 * are what is checked: raw URI, header order, streamed bodies, refusing a
 * body before it is sent (Expect: 100-continue), keep-alive, file ranges,
 * HEAD, routing by host and path, prebuilt responses shared by requests
 * (kept alive while sent after their creator lets go).
 */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/server.h"

typedef struct {
    pier_handler base; /* must be first */
    const char *name;  /* echoed in replies */
    int *disposed;     /* set at dispose */
} echo_handler;

typedef struct {
    uint64_t bytes;  /* body bytes seen */
    unsigned pieces; /* on_body calls */
    int limit;       /* stop after this many bytes (0 = never) */
} body_state;

static int on_body(pier_server_req *r, void *ctx, const char *data, size_t n)
{
    body_state *b = ctx;
    b->bytes += n;
    b->pieces++;
    if (b->limit && b->bytes > (uint64_t)b->limit) {
        pier_server_respond_mem(r, 400, "stopped\n", 8);
        return -1;
    }
    return 0;
}

static void on_end(pier_server_req *r, void *ctx)
{
    body_state *b = ctx;
    char msg[64];
    int n = snprintf(msg, sizeof msg, "got %llu bytes in %s pieces\n", (unsigned long long)b->bytes,
                     b->pieces > 1 ? "many" : "one");
    pier_server_respond_mem(r, 200, msg, (size_t)n);
}

typedef struct {
    int *freed; /* set when the stream is done */
} stream_state;

/* 3 x "abcdefghij" then the end. */
static ssize_t stream_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
    if (pos >= 30)
        return 0;
    size_t n = max < 10 ? max : 10;
    memcpy(buf, "abcdefghij", n);
    return (ssize_t)n;
}

static int stream_freed;

static void stream_free(void *ctx)
{
    stream_freed++;
}

/* Prebuilt responses the handler answers /prebuilt and /prebuilt-fd with. */
static pier_server_response *prebuilt_mem;
static pier_server_response *prebuilt_fd;
static atomic_int prebuilt_done; /* done callbacks run */

static void prebuilt_body_done(void *ctx)
{
    free(ctx);
    atomic_fetch_add(&prebuilt_done, 1);
}

static int echo_on_req(pier_handler *self, pier_server_req *r)
{
    echo_handler *h = (echo_handler *)self;
    pier_slice path = pier_server_req_raw_path(r);
    pier_slice query = pier_server_req_raw_query(r);
    const char *method = pier_server_req_method(r);
    if (strcmp(method, "PUT") == 0) {
        if (pier_server_req_content_length(r) > 100 * 1024 * 1024)
            return pier_server_respond_mem(r, 413, "too big\n", 8);
        body_state *b = pier_server_req_alloc(r, sizeof *b);
        memset(b, 0, sizeof *b);
        if (pier_slice_eq_cstr(path, "/limit"))
            b->limit = 10;
        pier_server_req_read_body(r, on_body, on_end, b);
        return 0;
    }
    if (pier_slice_eq_cstr(path, "/prebuilt")) {
        pier_server_resp_header(r, "X-Ignored", "1"); /* the prebuilt's headers are sent */
        return pier_server_respond_prebuilt(r, prebuilt_mem);
    }
    if (pier_slice_eq_cstr(path, "/prebuilt-fd"))
        return pier_server_respond_prebuilt(r, prebuilt_fd);
    if (pier_slice_eq_cstr(path, "/file")) {
        char tmpl[] = "/tmp/pier-test-server-XXXXXX";
        int fd = mkstemp(tmpl);
        unlink(tmpl);
        assert_int_equal(write(fd, "0123456789", 10), 10);
        return pier_server_respond_fd(r, 206, fd, 3, 4);
    }
    if (strcmp(method, "HEAD") == 0)
        return pier_server_respond_empty(r, 200, 12345);
    if (pier_slice_eq_cstr(path, "/stream"))
        return pier_server_respond_stream(r, 200, -1, stream_read, NULL, stream_free);
    if (pier_slice_eq_cstr(path, "/stream-sized"))
        return pier_server_respond_stream(r, 200, 30, stream_read, NULL, stream_free);
    if (pier_slice_eq_cstr(path, "/static"))
        return pier_server_respond_static(r, 200, "static body", 11);
    if (pier_slice_eq_cstr(path, "/fail"))
        return pier_error_set(PIER_ERR, "handler failed on purpose");
    pier_buf out = PIER_BUF_INIT;
    pier_buf_printf(&out, "%s %s path=%.*s query=%.*s\n", h->name, method, (int)path.len, path.ptr,
                    (int)query.len, query.ptr);
    for (size_t i = 0; i < pier_server_req_header_count(r); i++) {
        const char *n, *v;
        pier_server_req_header_at(r, i, &n, &v);
        if (strncmp(n, "X-", 2) == 0 || strncmp(n, "x-", 2) == 0)
            pier_buf_printf(&out, "%s: %s\n", n, v);
    }
    pier_server_resp_header(r, "X-Handler", h->name);
    int rc = pier_server_respond_mem(r, 200, out.ptr, out.len);
    pier_buf_free(&out);
    return rc;
}

static void echo_dispose(pier_handler *self)
{
    echo_handler *h = (echo_handler *)self;
    (*h->disposed)++;
    free(h);
}

static pier_handler *echo_new(const char *name, int *disposed)
{
    echo_handler *h = pier_calloc(1, sizeof *h);
    h->base.on_req = echo_on_req;
    h->base.dispose = echo_dispose;
    h->name = name;
    h->disposed = disposed;
    return &h->base;
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Reads one response (headers + Content-Length body) into out. */
static void read_response(int fd, pier_buf *out, bool head)
{
    pier_buf_reset(out);
    char buf[4096];
    size_t want = SIZE_MAX;
    for (;;) {
        const char *end = out->ptr ? strstr(out->ptr, "\r\n\r\n") : NULL;
        if (end && want == SIZE_MAX) {
            const char *cl = strcasestr(out->ptr, "\r\nContent-Length: ");
            size_t body = cl && cl < end ? strtoul(cl + 18, NULL, 10) : 0;
            if (strncmp(out->ptr, "HTTP/1.1 100", 12) == 0)
                body = 0;
            want = (size_t)(end + 4 - out->ptr) + (head ? 0 : body);
        }
        if (want != SIZE_MAX && out->len >= want)
            return;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return;
        pier_buf_put(out, buf, (size_t)n);
    }
}

static pier_server *start(int *disposed)
{
    pier_server *s = NULL;
    pier_server_options o = {.listen = "127.0.0.1:0", .threads = 2};
    assert_int_equal(pier_server_new(&s, &o), 0);
    pier_server_match web = {.host = "*.example.test"};
    pier_server_add(s, &web, echo_new("web", disposed));
    pier_server_match api = {.path_prefix = "/_api/"};
    pier_server_add(s, &api, echo_new("api", disposed));
    pier_server_add(s, NULL, echo_new("any", disposed));
    if (pier_server_start(s) != 0)
        fail_msg("start: %s", pier_error_last());
    assert_true(pier_server_port(s) > 0);
    return s;
}

static void test_requests(void **state)
{
    (void)state;
    int disposed = 0;
    pier_server *s = start(&disposed);
    pier_buf r = PIER_BUF_INIT;
    int fd = connect_to(pier_server_port(s));

    /* raw path and query exactly as sent; header order and case kept */
    const char *req = "GET /bkt/a%2Fb//c%20d?list-type=2&prefix=a%2F HTTP/1.1\r\n"
                      "Host: 127.0.0.1\r\nX-Zed: 1\r\nx-amz-date: 2\r\nX-Alpha: 3\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "HTTP/1.1 200"));
    assert_non_null(
        strstr(r.ptr, "any GET path=/bkt/a%2Fb//c%20d query=list-type=2&prefix=a%2F\n"));
    assert_non_null(strstr(r.ptr, "X-Zed: 1\nx-amz-date: 2\nX-Alpha: 3\n"));
    assert_non_null(strstr(r.ptr, "X-Handler: any"));
    assert_null(strcasestr(r.ptr, "Connection: close"));

    /* same connection (keep-alive): routing by host, then by path */
    req = "GET /x HTTP/1.1\r\nHost: site.example.test:8080\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "web GET path=/x"));
    req = "GET /_api/health HTTP/1.1\r\nHost: localhost\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "api GET path=/_api/health"));
    req = "GET /x HTTP/1.1\r\nHost: example.test\r\n\r\n"; /* not a subdomain */
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "any GET"));

    /* file range */
    req = "GET /file HTTP/1.1\r\nHost: h\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "HTTP/1.1 206"));
    assert_non_null(strstr(r.ptr, "\r\n\r\n3456"));

    /* streamed bodies: sized, and chunked */
    req = "GET /stream-sized HTTP/1.1\r\nHost: h\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "Content-Length: 30"));
    assert_non_null(strstr(r.ptr, "\r\n\r\nabcdefghijabcdefghijabcdefghij"));
    req = "GET /static HTTP/1.1\r\nHost: h\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "\r\n\r\nstatic body"));
    int chunked_fd = connect_to(pier_server_port(s));
    req = "GET /stream HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    send_all(chunked_fd, req, strlen(req));
    pier_buf all = PIER_BUF_INIT;
    char tmp[4096];
    ssize_t got;
    while ((got = recv(chunked_fd, tmp, sizeof tmp, 0)) > 0)
        pier_buf_put(&all, tmp, (size_t)got);
    close(chunked_fd);
    assert_non_null(strcasestr(all.ptr, "Transfer-Encoding: chunked"));
    assert_non_null(strstr(all.ptr, "abcdefghij"));
    assert_non_null(strstr(all.ptr, "\r\n0\r\n"));
    pier_buf_free(&all);

    /* HEAD: the length, no body */
    req = "HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, true);
    assert_non_null(strstr(r.ptr, "Content-Length: 12345"));

    /* a failing handler gives 500 */
    req = "GET /fail HTTP/1.1\r\nHost: h\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "HTTP/1.1 500"));

    /* a 3 MiB body, streamed in pieces */
    size_t big = 3 << 20;
    char *body = pier_malloc(big);
    memset(body, 'x', big);
    char head[256];
    snprintf(head, sizeof head, "PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n", big);
    send_all(fd, head, strlen(head));
    send_all(fd, body, big);
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "got 3145728 bytes in many pieces"));
    close(fd);

    /* a request head larger than the connection's memory: refused, nothing
     * leaks (the arena made at the URI is freed by the completion hook) */
    fd = connect_to(pier_server_port(s));
    size_t huge = 2 << 20;
    char *hdr = pier_malloc(huge + 64);
    memcpy(hdr, "GET /x HTTP/1.1\r\nX-Big: ", 25);
    memset(hdr + 25, 'a', huge);
    memcpy(hdr + 25 + huge, "\r\n\r\n", 5);
    send_all(fd, hdr, 25 + huge + 4);
    read_response(fd, &r, false);
    assert_true(r.len == 0 || strstr(r.ptr, "HTTP/1.1 431") || strstr(r.ptr, "HTTP/1.1 413"));
    close(fd);
    free(hdr);
    /* a connection that sends half a request and goes away */
    fd = connect_to(pier_server_port(s));
    req = "PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nonly part";
    send_all(fd, req, strlen(req));
    close(fd);

    /* Expect: 100-continue refused from the headers: 413, no 100 */
    fd = connect_to(pier_server_port(s));
    req = "PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999\r\n"
          "Expect: 100-continue\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "HTTP/1.1 413"));
    assert_null(strstr(r.ptr, "100 Continue"));
    close(fd);

    /* Expect: 100-continue accepted */
    fd = connect_to(pier_server_port(s));
    req = "PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "HTTP/1.1 100"));
    send_all(fd, "hello", 5);
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "got 5 bytes in one pieces"));

    /* a handler that stops mid-body answers after the body is drained */
    snprintf(head, sizeof head, "PUT /limit HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n",
             big);
    send_all(fd, head, strlen(head));
    send_all(fd, body, big);
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "HTTP/1.1 400"));
    assert_non_null(strstr(r.ptr, "stopped"));

    /* chunked upload */
    req = "PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
          "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "got 7 bytes"));
    close(fd);
    free(body);

    pier_buf_free(&r);
    pier_server_free(s);
    assert_int_equal(disposed, 3);
    assert_int_equal(stream_freed, 2);
}

static void test_prebuilt(void **state)
{
    (void)state;
    int disposed = 0;
    pier_server *s = start(&disposed);
    pier_buf r = PIER_BUF_INIT;

    char *body = pier_strdup("shared body");
    atomic_store(&prebuilt_done, 0);
    prebuilt_mem = pier_server_response_new_static(200, body, 11, prebuilt_body_done, body);
    assert_non_null(prebuilt_mem);
    pier_server_response_header(prebuilt_mem, "X-Shared", "yes");
    char tmpl[] = "/tmp/pier-test-server-XXXXXX";
    int tfd = mkstemp(tmpl);
    unlink(tmpl);
    assert_int_equal(write(tfd, "0123456789", 10), 10);
    prebuilt_fd = pier_server_response_new_fd(206, tfd, 3, 4);
    assert_non_null(prebuilt_fd);

    /* the same response to several requests on one connection, kept alive */
    int fd = connect_to(pier_server_port(s));
    for (int i = 0; i < 3; i++) {
        const char *req = "GET /prebuilt HTTP/1.1\r\nHost: h\r\n\r\n";
        send_all(fd, req, strlen(req));
        read_response(fd, &r, false);
        assert_non_null(strstr(r.ptr, "HTTP/1.1 200"));
        assert_non_null(strstr(r.ptr, "X-Shared: yes\r\n"));
        assert_non_null(strstr(r.ptr, "Content-Length: 11\r\n"));
        assert_null(strstr(r.ptr, "X-Ignored"));
        assert_null(strcasestr(r.ptr, "Connection: close"));
        assert_true(pier_str_ends_with(r.ptr, "\r\n\r\nshared body"));
        req = "GET /prebuilt-fd HTTP/1.1\r\nHost: h\r\n\r\n";
        send_all(fd, req, strlen(req));
        read_response(fd, &r, false);
        assert_non_null(strstr(r.ptr, "HTTP/1.1 206"));
        assert_true(pier_str_ends_with(r.ptr, "\r\n\r\n3456"));
    }
    /* a GET with a body: answered after the body is read and dropped (the
     * shared response is never changed), then the next request works */
    const char *req = "GET /prebuilt HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_true(pier_str_ends_with(r.ptr, "\r\n\r\nshared body"));
    req = "GET /prebuilt HTTP/1.1\r\nHost: h\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_true(pier_str_ends_with(r.ptr, "\r\n\r\nshared body"));
    assert_null(strcasestr(r.ptr, "Connection: close"));
    /* the next request on the connection: MHD is done with the last one */
    req = "GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
    send_all(fd, req, strlen(req));
    read_response(fd, &r, false);
    assert_non_null(strstr(r.ptr, "any GET path=/x"));
    assert_int_equal(atomic_load(&prebuilt_done), 0);
    pier_server_response_release(prebuilt_mem);
    pier_server_response_release(prebuilt_fd);
    /* nothing in flight: the body is given back at the creator's release */
    assert_int_equal(atomic_load(&prebuilt_done), 1);

    /* released by its creator while a request is still sending it: the
     * body lives until the last byte is out */
    size_t big = 32 << 20;
    char *bigbody = pier_malloc(big);
    for (size_t i = 0; i < big; i++)
        bigbody[i] = (char)('a' + i % 26);
    prebuilt_mem = pier_server_response_new_static(200, bigbody, big, prebuilt_body_done, bigbody);
    req = "GET /prebuilt HTTP/1.1\r\nHost: h\r\n\r\n";
    send_all(fd, req, strlen(req));
    char head[64];
    assert_true(recv(fd, head, sizeof head, MSG_WAITALL) == (ssize_t)sizeof head);
    assert_int_equal(memcmp(head, "HTTP/1.1 200", 12), 0);
    pier_server_response_release(prebuilt_mem);
    prebuilt_mem = NULL;
    assert_int_equal(atomic_load(&prebuilt_done), 1); /* more than sockets buffer is unsent */
    pier_buf_reset(&r);
    pier_buf_put(&r, head, sizeof head);
    char buf[65536];
    for (;;) {
        const char *end = strstr(r.ptr, "\r\n\r\n");
        if (end && r.len - (size_t)(end + 4 - r.ptr) >= big)
            break;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        assert_true(n > 0);
        pier_buf_put(&r, buf, (size_t)n);
    }
    const char *end = strstr(r.ptr, "\r\n\r\n") + 4;
    assert_int_equal((size_t)(r.ptr + r.len - end), big);
    for (size_t i = 0; i < big; i += 4099)
        assert_int_equal(end[i], (char)('a' + i % 26));
    close(fd);
    pier_server_free(s); /* waits for the connection to be over */
    assert_int_equal(atomic_load(&prebuilt_done), 2);

    /* an empty body; releasing NULL */
    pier_server_response *z = pier_server_response_new_fd(200, open("/dev/null", O_RDONLY), 0, 0);
    assert_non_null(z); /* an empty body */
    pier_server_response_release(z);
    pier_server_response_release(NULL);
    pier_buf_free(&r);
}

static void test_bad_listen(void **state)
{
    (void)state;
    pier_server *s = NULL;
    const char *bad[] = {"nocolon", "127.0.0.1:99999", "127.0.0.1:x", "[::1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pier_server_options o = {.listen = bad[i]};
        assert_int_equal(pier_server_new(&s, &o), 0);
        assert_int_not_equal(pier_server_start(s), 0);
        assert_non_null(strstr(pier_error_last(), bad[i]));
        pier_server_free(s);
    }
    /* a port in use */
    int disposed = 0;
    pier_server *a = start(&disposed);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", pier_server_port(a));
    pier_server_options o = {.listen = addr};
    assert_int_equal(pier_server_new(&s, &o), 0);
    assert_int_not_equal(pier_server_start(s), 0);
    pier_server_free(s);
    pier_server_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_prebuilt),
        cmocka_unit_test(test_bad_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
