/*
 * test_http: the HTTP client against an in-process libmicrohttpd server on
 * 127.0.0.1 (a free port), started once for the group.
 *
 * The server runs a thread per connection so a handler may block (the
 * stalling route waits on a condition variable until the test releases it).
 * A second daemon serves the same routes over TLS with the self-signed
 * certificate in tests/data/net.
 *
 * Routes:
 *   /hello          "hello world" with a few response headers
 *   /echo           records method, request headers and body; answers with
 *                   the body's length; with drop_next set, the next
 *                   /echo is dropped (connection closed, no response)
 *   /big?n=N        N bytes of a known pattern
 *   /id/N           "N"
 *   /missing        404 with an S3-style XML error
 *   /redirect       307 to /hello
 *   /stall          headers, then nothing until released
 *   /cut            100 of 1000 announced bytes, then the connection closes
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/http.h"

/* ---- the test server -------------------------------------------------- */

typedef struct {
    struct MHD_Daemon *daemon; /* the server */
    int port;                  /* its port on 127.0.0.1 */
    struct MHD_Daemon *tls;    /* the same over TLS */
    int tls_port;              /* its port */
    char *cert_file;           /* the TLS server's certificate (PEM) */
    char *cert_pem;            /* its content */
    char *key_pem;             /* its private key */
    pthread_mutex_t mu;        /* guards everything below */
    pthread_cond_t cv;         /* signals release */
    int connections;           /* connections accepted so far */
    bool release;              /* the stall route may finish */
    char method[32];           /* last /echo request: method */
    pier_buf body;             /* its body */
    bool had_content_type;     /* it had a Content-Type header */
    bool had_expect;           /* an Expect header */
    bool had_accept;           /* an Accept header */
    char content_length[32];   /* its Content-Length, or "" */
    char meta[64];             /* its X-Amz-Meta-Test, or "" */
    bool drop_next;            /* drop the next /echo request */
    int drops;                 /* requests dropped so far */
} test_server;

static test_server srv;

typedef struct {
    pier_buf body; /* the request body so far */
} req_ctx;

static unsigned char pattern(uint64_t i)
{
    return (unsigned char)((i * 31 + 7) % 251);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        pthread_mutex_lock(&srv.mu);
        srv.connections++;
        pthread_mutex_unlock(&srv.mu);
    }
}

static int server_connections(void)
{
    pthread_mutex_lock(&srv.mu);
    int n = srv.connections;
    pthread_mutex_unlock(&srv.mu);
    return n;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    req_ctx *rc = *con_cls;
    if (rc) {
        pier_buf_free(&rc->body);
        free(rc);
        *con_cls = NULL;
    }
}

/* Sends the headers, then no body byte until released. (curl averages
 * speed over 5 s, so a stall after some bytes would make the test slow.) */
static ssize_t stall_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&srv.mu);
    while (!srv.release)
        if (pthread_cond_timedwait(&srv.cv, &srv.mu, &until) != 0)
            break;
    pthread_mutex_unlock(&srv.mu);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static ssize_t cut_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    if (pos == 0) {
        memset(buf, 'c', 100);
        return 100;
    }
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void copy_header(struct MHD_Connection *c, const char *name, char *out, size_t size)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(out, size, "%s", v ? v : "");
}

static enum MHD_Result handle_echo(struct MHD_Connection *c, const char *method, req_ctx *rc)
{
    pthread_mutex_lock(&srv.mu);
    snprintf(srv.method, sizeof srv.method, "%s", method);
    pier_buf_reset(&srv.body);
    pier_buf_put(&srv.body, pier_buf_cstr(&rc->body), rc->body.len);
    srv.had_content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    srv.had_expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
    srv.had_accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
    copy_header(c, "Content-Length", srv.content_length, sizeof srv.content_length);
    copy_header(c, "X-Amz-Meta-Test", srv.meta, sizeof srv.meta);
    pthread_mutex_unlock(&srv.mu);
    char len[32];
    snprintf(len, sizeof len, "%zu", rc->body.len);
    return reply(c, 200, len);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    req_ctx *rc = *con_cls;
    if (!rc) {
        bool drop = false;
        pthread_mutex_lock(&srv.mu);
        if (srv.drop_next && strcmp(url, "/echo") == 0) {
            srv.drop_next = false;
            srv.drops++;
            drop = true;
        }
        pthread_mutex_unlock(&srv.mu);
        if (drop)
            return MHD_NO; /* MHD closes the connection */
        rc = pier_calloc(1, sizeof *rc);
        pier_buf_init(&rc->body, (size_t)64 << 20);
        *con_cls = rc;
        return MHD_YES;
    }
    if (*upload_size) {
        pier_buf_put(&rc->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }

    struct MHD_Response *r = NULL;
    unsigned status = 200;
    if (strcmp(url, "/hello") == 0) {
        r = MHD_create_response_from_buffer(11, (void *)"hello world", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "X-Mixed-Case", "Some Value");
        MHD_add_response_header(r, "X-Pad", "  padded  ");
    } else if (strcmp(url, "/echo") == 0) {
        return handle_echo(c, method, rc);
    } else if (strcmp(url, "/big") == 0) {
        const char *ns = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
        uint64_t n = 0;
        if (!ns || pier_parse_u64(ns, &n) < 0)
            return reply(c, 400, "bad n");
        char *data = pier_malloc(n ? n : 1);
        for (uint64_t i = 0; i < n; i++)
            data[i] = (char)pattern(i);
        r = MHD_create_response_from_buffer(n, data, MHD_RESPMEM_MUST_FREE);
    } else if (strncmp(url, "/id/", 4) == 0) {
        return reply(c, 200, url + 4);
    } else if (strcmp(url, "/missing") == 0) {
        return reply(c, 404, "<Error><Code>NoSuchKey</Code></Error>");
    } else if (strcmp(url, "/redirect") == 0) {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Location", "/hello");
        status = 307;
    } else if (strcmp(url, "/stall") == 0) {
        r = MHD_create_response_from_callback(1000, 1024, stall_reader, NULL, NULL);
    } else if (strcmp(url, "/cut") == 0) {
        r = MHD_create_response_from_callback(1000, 1024, cut_reader, NULL, NULL);
    } else {
        return reply(c, 404, "no such route");
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Reads dir/rel into *out (NUL-terminated, NULL on failure); returns the
 * path. Both are the caller's. */
static char *read_text(const char *dir, const char *rel, char **out)
{
    pier_buf path = PIER_BUF_INIT, text = PIER_BUF_INIT;
    pier_buf_printf(&path, "%s/%s", dir, rel);
    *out = NULL;
    FILE *f = fopen(pier_buf_cstr(&path), "rb");
    if (f) {
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            pier_buf_put(&text, chunk, n);
        fclose(f);
        *out = pier_buf_detach(&text);
    }
    return pier_buf_detach(&path);
}

static int server_start(void **state)
{
    /* The machine's CA variables and proxies must not matter here. */
    unsetenv("AWS_CA_BUNDLE");
    unsetenv("http_proxy");
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    unsetenv("all_proxy");
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.cv, NULL);
    pier_buf_init(&srv.body, (size_t)64 << 20);

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    srv.daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler,
        NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_CONNECTION,
        on_connection, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!srv.daemon)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv.daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv.port = info->port;

    const char *data = getenv("PIER_TESTDATA");
    if (!data)
        return -1;
    srv.cert_file = read_text(data, "net/localhost-cert.pem", &srv.cert_pem);
    char *key_file = read_text(data, "net/localhost-key.pem", &srv.key_pem);
    free(key_file);
    if (!srv.cert_pem || !srv.key_pem)
        return -1;
    srv.tls = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL,
        NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_HTTPS_MEM_CERT, srv.cert_pem, MHD_OPTION_HTTPS_MEM_KEY, srv.key_pem,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!srv.tls)
        return -1;
    info = MHD_get_daemon_info(srv.tls, MHD_DAEMON_INFO_BIND_PORT);
    srv.tls_port = info->port;
    return srv.port > 0 && srv.tls_port > 0 ? 0 : -1;
}

static int server_stop(void **state)
{
    pthread_mutex_lock(&srv.mu);
    srv.release = true;
    pthread_cond_broadcast(&srv.cv);
    pthread_mutex_unlock(&srv.mu);
    MHD_stop_daemon(srv.daemon);
    if (srv.tls)
        MHD_stop_daemon(srv.tls);
    free(srv.cert_file);
    free(srv.cert_pem);
    free(srv.key_pem);
    pier_buf_free(&srv.body);
    pthread_cond_destroy(&srv.cv);
    pthread_mutex_destroy(&srv.mu);
    return 0;
}

/* ---- helpers ---------------------------------------------------------- */

static char *url_for(const char *path)
{
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "http://127.0.0.1:%d%s", srv.port, path);
    return pier_buf_detach(&b);
}

static pier_http_client *client_new(void)
{
    pier_http_client *c = NULL;
    int rc = pier_http_client_new(&c, NULL);
    if (rc < 0)
        fail_msg("client: %s", pier_error_last());
    return c;
}

/* A temp file holding n pattern bytes; the caller unlinks and frees it. */
static char *pattern_file(uint64_t n)
{
    char *path = pier_strdup("/tmp/pier-test-http-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char chunk[65536];
    for (uint64_t off = 0; off < n;) {
        size_t k = n - off < sizeof chunk ? (size_t)(n - off) : sizeof chunk;
        for (size_t i = 0; i < k; i++)
            chunk[i] = (char)pattern(off + i);
        assert_int_equal(write(fd, chunk, k), (ssize_t)k);
        off += k;
    }
    close(fd);
    return path;
}

static bool is_pattern(const char *data, size_t n, uint64_t from)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)data[i] != pattern(from + i))
            return false;
    return true;
}

static void test_headers_api(void **state)
{
    pier_http_headers h = {0};
    pier_http_headers_add(&h, "X-A", "1");
    pier_http_headers_add(&h, "x-a", "2");
    pier_http_headers_add(&h, "X-B", "3");
    assert_string_equal(pier_http_headers_get(&h, "X-A"), "1");
    pier_http_headers_set(&h, "X-a", "9");
    assert_int_equal(h.count, 2);
    assert_string_equal(pier_http_headers_get(&h, "x-A"), "9");
    assert_string_equal(h.items[1].name, "X-a");
    pier_http_headers_remove(&h, "x-b");
    assert_null(pier_http_headers_get(&h, "X-B"));
    assert_int_equal(h.count, 1);
    pier_http_headers_free(&h);
    pier_http_headers_free(&h);
    assert_string_equal(pier_http_transport_name(PIER_HTTP_TIMEOUT), "timeout");
}

/* ---- requests --------------------------------------------------------- */

static void test_get_memory(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/hello");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = url;
    pier_http_response resp;
    pier_http_response_init(&resp);

    int rc = pier_http_do(c, &req, &resp);
    if (rc < 0)
        fail_msg("GET: %s", pier_error_last());
    assert_int_equal(resp.transport, PIER_HTTP_OK);
    assert_int_equal(resp.status, 200);
    assert_string_equal(pier_buf_cstr(&resp.body), "hello world");
    assert_int_equal(resp.bytes_received, 11);
    assert_int_equal(resp.bytes_sent, 0);
    assert_true(resp.seconds >= 0.0);
    assert_string_equal(pier_http_headers_get(&resp.headers, "x-mixed-case"), "Some Value");
    assert_string_equal(pier_http_headers_get(&resp.headers, "X-Pad"), "padded");
    assert_string_equal(pier_http_headers_get(&resp.headers, "Content-Length"), "11");
    bool found = false;
    for (size_t i = 0; i < resp.headers.count; i++)
        found |= strcmp(resp.headers.items[i].name, "X-Mixed-Case") == 0;
    assert_true(found); /* case preserved */
    assert_int_equal(pier_http_in_flight(c), 0);

    /* The same response struct, reused: reset by the next request. */
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_string_equal(pier_buf_cstr(&resp.body), "hello world");

    pier_http_response_free(&resp);
    free(url);
    pier_http_client_free(c);
}

static void test_head(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/hello");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "HEAD";
    req.url = url;
    pier_http_response resp;
    pier_http_response_init(&resp);
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body.len, 0);
    assert_string_equal(pier_http_headers_get(&resp.headers, "Content-Length"), "11");
    assert_string_equal(pier_http_headers_get(&resp.headers, "X-Mixed-Case"), "Some Value");
    /* The connection is still good for the next request. */
    req.method = "GET";
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_string_equal(pier_buf_cstr(&resp.body), "hello world");
    pier_http_response_free(&resp);
    free(url);
    pier_http_client_free(c);
}

static void test_put_memory(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/echo");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "PUT";
    req.url = url;
    req.body = "hello put";
    req.body_len = 9;
    pier_http_headers_add(&req.headers, "X-Amz-Meta-Test", "meta value");
    pier_http_response resp;
    pier_http_response_init(&resp);

    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_string_equal(pier_buf_cstr(&resp.body), "9");
    assert_int_equal(resp.bytes_sent, 9);
    assert_string_equal(srv.method, "PUT");
    assert_string_equal(pier_buf_cstr(&srv.body), "hello put");
    assert_string_equal(srv.content_length, "9");
    assert_string_equal(srv.meta, "meta value");
    assert_false(srv.had_content_type);
    assert_false(srv.had_expect);
    assert_false(srv.had_accept);

    /* An empty PUT still says Content-Length: 0. */
    req.body = NULL;
    req.body_len = 0;
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_string_equal(srv.method, "PUT");
    assert_string_equal(srv.content_length, "0");
    assert_int_equal(srv.body.len, 0);

    pier_http_headers_free(&req.headers);
    pier_http_response_free(&resp);
    free(url);
    pier_http_client_free(c);
}

static void test_put_file_range(void **state)
{
    const uint64_t size = 3u << 20, off = 12345, len = (2u << 20) + 7;
    char *path = pattern_file(size);
    pier_http_client *c = client_new();
    char *url = url_for("/echo");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "PUT";
    req.url = url;
    req.body_file = path;
    req.body_file_offset = off;
    req.body_file_len = len;
    pier_http_response resp;
    pier_http_response_init(&resp);

    int rc = pier_http_do(c, &req, &resp);
    if (rc < 0)
        fail_msg("PUT file: %s", pier_error_last());
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.bytes_sent, len);
    assert_int_equal(srv.body.len, len);
    assert_true(is_pattern(srv.body.ptr, srv.body.len, off));
    assert_false(srv.had_expect); /* over 1 MiB curl would add it */
    assert_false(srv.had_content_type);

    /* The last byte of the file exactly. */
    req.body_file_offset = size - 1;
    req.body_file_len = 1;
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(srv.body.len, 1);
    assert_true(is_pattern(srv.body.ptr, 1, size - 1));

    pier_http_response_free(&resp);
    unlink(path);
    free(path);
    free(url);
    pier_http_client_free(c);
}

static void test_methods(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/echo");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.url = url;
    pier_http_response resp;
    pier_http_response_init(&resp);

    req.method = "POST";
    req.body = "<Delete/>";
    req.body_len = 9;
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_string_equal(srv.method, "POST");
    assert_string_equal(pier_buf_cstr(&srv.body), "<Delete/>");
    assert_false(srv.had_content_type);

    pier_http_headers_add(&req.headers, "Content-Type", "application/xml");
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_true(srv.had_content_type);
    pier_http_headers_free(&req.headers);

    /* The caller may ask for 100-continue; only the final response's
     * headers remain. */
    req.method = "PUT";
    pier_http_headers_add(&req.headers, "Expect", "100-continue");
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_true(srv.had_expect);
    assert_string_equal(pier_buf_cstr(&resp.body), "9");
    assert_non_null(pier_http_headers_get(&resp.headers, "Content-Length"));
    pier_http_headers_free(&req.headers);

    req.method = "DELETE";
    req.body = NULL;
    req.body_len = 0;
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_string_equal(srv.method, "DELETE");
    assert_int_equal(srv.body.len, 0);

    req.method = "PATCH";
    req.body = "xyz";
    req.body_len = 3;
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_string_equal(srv.method, "PATCH");
    assert_string_equal(pier_buf_cstr(&srv.body), "xyz");

    pier_http_response_free(&resp);
    free(url);
    pier_http_client_free(c);
}

static void test_redirect_not_followed(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/redirect");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = url;
    pier_http_response resp;
    pier_http_response_init(&resp);
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(resp.status, 307);
    assert_string_equal(pier_http_headers_get(&resp.headers, "Location"), "/hello");
    assert_int_equal(resp.body.len, 0);
    pier_http_response_free(&resp);
    free(url);
    pier_http_client_free(c);
}

static void test_response_file(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/big?n=300001");
    char *path = pattern_file(5); /* existing content is replaced */
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = url;
    req.response_file = path;
    pier_http_response resp;
    pier_http_response_init(&resp);

    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.body.len, 0);
    assert_int_equal(resp.bytes_received, 300001);
    pier_buf got = PIER_BUF_INIT;
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        pier_buf_put(&got, chunk, n);
    fclose(f);
    assert_int_equal(got.len, 300001);
    assert_true(is_pattern(got.ptr, got.len, 0));
    pier_buf_free(&got);

    /* An error response keeps its body in memory and leaves no file. */
    unlink(path);
    char *missing = url_for("/missing");
    req.url = missing;
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(resp.status, 404);
    assert_non_null(strstr(pier_buf_cstr(&resp.body), "NoSuchKey"));
    struct stat st;
    assert_int_equal(stat(path, &st), -1);

    /* An empty 2xx body gives an empty file. */
    char *empty = url_for("/big?n=0");
    req.url = empty;
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    unlink(path);

    /* A file that cannot be created fails the transfer. */
    req.url = url;
    req.response_file = "/nonexistent-dir/pier/out";
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_EIO);
    assert_int_equal(resp.transport, PIER_HTTP_LOCAL);
    assert_non_null(strstr(pier_error_last(), "/nonexistent-dir/pier/out"));

    pier_http_response_free(&resp);
    free(empty);
    free(missing);
    free(path);
    free(url);
    pier_http_client_free(c);
}

typedef struct {
    uint64_t total; /* bytes seen */
    bool ok;        /* all matched the pattern */
    int calls;      /* callback invocations */
    bool abort;     /* stop at the first piece */
} body_sink;

static int collect_body(void *ctx, const char *data, size_t n)
{
    body_sink *s = ctx;
    s->calls++;
    if (s->abort)
        return pier_error_set(PIER_ECONFLICT, "sink says stop here");
    if (!is_pattern(data, n, s->total))
        s->ok = false;
    s->total += n;
    return 0;
}

static void test_on_body(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/big?n=200000");
    body_sink sink = {0, true, 0, false};
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = url;
    req.on_body = collect_body;
    req.on_body_ctx = &sink;
    pier_http_response resp;
    pier_http_response_init(&resp);

    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(sink.total, 200000);
    assert_true(sink.ok);
    assert_int_equal(resp.body.len, 0);

    body_sink stop = {0, true, 0, true};
    req.on_body_ctx = &stop;
    int rc = pier_http_do(c, &req, &resp);
    assert_int_equal(rc, PIER_ECONFLICT);
    assert_int_equal(resp.transport, PIER_HTTP_LOCAL);
    assert_int_equal(stop.calls, 1);
    assert_non_null(strstr(pier_error_last(), "sink says stop here"));
    assert_non_null(strstr(pier_error_last(), "/big"));

    /* The client is still usable afterwards. */
    req.on_body_ctx = &sink;
    sink.total = 0;
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(sink.total, 200000);

    pier_http_response_free(&resp);
    free(url);
    pier_http_client_free(c);
}

static void test_response_cap(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/big?n=100000");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = url;
    req.response_max = 1000;
    pier_http_response resp;
    pier_http_response_init(&resp);

    assert_int_equal(pier_http_do(c, &req, &resp), PIER_ETOOBIG);
    assert_int_equal(resp.transport, PIER_HTTP_LOCAL);
    assert_true(resp.body.len <= 1000);
    assert_non_null(strstr(pier_error_last(), "1000 bytes"));
    assert_non_null(strstr(pier_error_last(), "/big"));

    /* Exactly at the cap is fine. */
    char *exact = url_for("/big?n=1000");
    req.url = exact;
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(resp.body.len, 1000);

    /* The default cap is 16 MiB. */
    char *huge = url_for("/big?n=16777217");
    req.url = huge;
    req.response_max = 0;
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_ETOOBIG);
    assert_non_null(strstr(pier_error_last(), "16777216"));

    pier_http_response_free(&resp);
    free(huge);
    free(exact);
    free(url);
    pier_http_client_free(c);
}

/* ---- many at once ----------------------------------------------------- */

#define PARALLEL       50
#define PARALLEL_TOTAL 150

typedef struct par_state par_state;

typedef struct {
    par_state *st;           /* shared state */
    int id;                  /* the request's number */
    char *url;               /* its URL */
    pier_http_request req;   /* the request */
    pier_http_response resp; /* its response */
} par_slot;

struct par_state {
    pier_http_client *client; /* shared */
    int submitted;            /* so far */
    int completed;            /* so far */
    int failures;             /* wrong or failed responses */
    size_t max_in_flight;     /* the most seen at once */
    par_slot slots[PARALLEL]; /* one per concurrent transfer */
};

static void par_done(void *ctx, int rc, pier_http_request *req, pier_http_response *resp);

static int par_submit(par_slot *s)
{
    par_state *st = s->st;
    free(s->url);
    s->id = st->submitted++;
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "http://127.0.0.1:%d/id/%d", srv.port, s->id);
    s->url = pier_buf_detach(&b);
    s->req = (pier_http_request)PIER_HTTP_REQUEST_INIT;
    s->req.method = "GET";
    s->req.url = s->url;
    int rc = pier_http_submit(st->client, &s->req, &s->resp, par_done, s);
    size_t now = pier_http_in_flight(st->client);
    if (now > st->max_in_flight)
        st->max_in_flight = now;
    return rc;
}

static void par_done(void *ctx, int rc, pier_http_request *req, pier_http_response *resp)
{
    par_slot *s = ctx;
    par_state *st = s->st;
    char want[16];
    snprintf(want, sizeof want, "%d", s->id);
    if (rc < 0 || resp->status != 200 || strcmp(pier_buf_cstr(&resp->body), want) != 0)
        st->failures++;
    st->completed++;
    /* Nested runs are refused from a completion callback. */
    if (pier_http_run(st->client) != PIER_EINVALID)
        st->failures++;
    if (st->submitted < PARALLEL_TOTAL && par_submit(s) < 0)
        st->failures++;
}

static void test_parallel(void **state)
{
    par_state *st = pier_calloc(1, sizeof *st);
    st->client = client_new();
    int before = server_connections();
    for (int i = 0; i < PARALLEL; i++) {
        st->slots[i].st = st;
        pier_http_response_init(&st->slots[i].resp);
        assert_int_equal(par_submit(&st->slots[i]), 0);
    }
    assert_int_equal(pier_http_in_flight(st->client), PARALLEL);
    int rc = pier_http_run(st->client);
    if (rc < 0)
        fail_msg("run: %s", pier_error_last());
    assert_int_equal(st->completed, PARALLEL_TOTAL);
    assert_int_equal(st->failures, 0);
    assert_int_equal(st->max_in_flight, PARALLEL);
    assert_int_equal(pier_http_in_flight(st->client), 0);
    /* Each concurrent transfer needed its own connection, but the later
     * ones reused them. */
    int used = server_connections() - before;
    assert_true(used >= 2 && used <= PARALLEL);
    for (int i = 0; i < PARALLEL; i++) {
        pier_http_response_free(&st->slots[i].resp);
        free(st->slots[i].url);
    }
    pier_http_client_free(st->client);
    free(st);
}

static void test_keepalive(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/hello");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = url;
    pier_http_response resp;
    pier_http_response_init(&resp);
    int before = server_connections();
    for (int i = 0; i < 25; i++) {
        assert_int_equal(pier_http_do(c, &req, &resp), 0);
        assert_int_equal(resp.status, 200);
    }
    assert_int_equal(server_connections() - before, 1);
    pier_http_response_free(&resp);
    free(url);
    pier_http_client_free(c);
}

/* Clients on other threads at once: the shared DNS/TLS caches are locked. */
static void *thread_main(void *arg)
{
    intptr_t failures = 0;
    pier_http_client *c = NULL;
    if (pier_http_client_new(&c, NULL) < 0)
        return (void *)(intptr_t)1000;
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "http://localhost:%d/hello", srv.port);
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = pier_buf_cstr(&b);
    pier_http_response resp;
    pier_http_response_init(&resp);
    for (int i = 0; i < 20; i++)
        if (pier_http_do(c, &req, &resp) < 0 || resp.status != 200 ||
            strcmp(pier_buf_cstr(&resp.body), "hello world") != 0)
            failures++;
    pier_http_response_free(&resp);
    pier_buf_free(&b);
    pier_http_client_free(c);
    return (void *)failures;
}

static void test_threads(void **state)
{
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        assert_int_equal((intptr_t)ret, 0);
    }
}

/* A reused connection that the server closes without answering: curl
 * retries on a fresh connection and rewinds the file body to resend it. */
static void test_retry_rewinds_file_body(void **state)
{
    char *path = pattern_file(5000);
    pier_http_client *c = client_new();
    char *hello = url_for("/hello");
    char *echo = url_for("/echo");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = hello;
    pier_http_response resp;
    pier_http_response_init(&resp);
    assert_int_equal(pier_http_do(c, &req, &resp), 0);

    int before = server_connections();
    pthread_mutex_lock(&srv.mu);
    srv.drop_next = true;
    int drops = srv.drops;
    pthread_mutex_unlock(&srv.mu);
    req.method = "PUT";
    req.url = echo;
    req.body_file = path;
    req.body_file_offset = 10;
    req.body_file_len = 3000;
    int rc = pier_http_do(c, &req, &resp);
    if (rc < 0)
        fail_msg("PUT after a dropped connection: %s", pier_error_last());
    assert_int_equal(resp.status, 200);
    assert_int_equal(srv.drops, drops + 1);
    assert_int_equal(server_connections() - before, 1);
    assert_int_equal(srv.body.len, 3000);
    assert_true(is_pattern(srv.body.ptr, srv.body.len, 10));

    pier_http_response_free(&resp);
    unlink(path);
    free(path);
    free(hello);
    free(echo);
    pier_http_client_free(c);
}

/* TLS: verification on; the CA comes from ca_file or AWS_CA_BUNDLE. */
static void test_tls(void **state)
{
    pier_buf url = PIER_BUF_INIT, url_name = PIER_BUF_INIT;
    pier_buf_printf(&url, "https://127.0.0.1:%d/hello", srv.tls_port);
    pier_buf_printf(&url_name, "https://localhost:%d/hello", srv.tls_port);
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = pier_buf_cstr(&url);
    pier_http_response resp;
    pier_http_response_init(&resp);
    pier_http_client *c = NULL;

    /* The system's CAs do not know the test certificate. */
    unsetenv("AWS_CA_BUNDLE");
    assert_int_equal(pier_http_client_new(&c, NULL), 0);
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_EIO);
    assert_int_equal(resp.transport, PIER_HTTP_TLS);
    assert_non_null(strstr(pier_error_last(), "https://127.0.0.1:"));
    pier_http_client_free(c);

    /* ca_file trusts it. */
    pier_http_client_options opts = PIER_HTTP_CLIENT_OPTIONS_INIT;
    opts.ca_file = srv.cert_file;
    assert_int_equal(pier_http_client_new(&c, &opts), 0);
    int rc = pier_http_do(c, &req, &resp);
    if (rc < 0)
        fail_msg("https with ca_file: %s", pier_error_last());
    assert_int_equal(resp.status, 200);
    assert_string_equal(pier_buf_cstr(&resp.body), "hello world");
    pier_http_client_free(c);

    /* So does AWS_CA_BUNDLE, by name as well as by address. */
    setenv("AWS_CA_BUNDLE", srv.cert_file, 1);
    assert_int_equal(pier_http_client_new(&c, NULL), 0);
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    req.url = pier_buf_cstr(&url_name);
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    pier_http_client_free(c);

    /* ca_file overrides AWS_CA_BUNDLE. */
    opts.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(pier_http_client_new(&c, &opts), 0);
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_EIO);
    assert_int_equal(resp.transport, PIER_HTTP_TLS);
    pier_http_client_free(c);
    unsetenv("AWS_CA_BUNDLE");

    pier_http_response_free(&resp);
    pier_buf_free(&url);
    pier_buf_free(&url_name);
}

/* ---- failures --------------------------------------------------------- */

static void test_connect_refused(void **state)
{
    /* A bound socket that never listens: connecting is refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);

    pier_buf url = PIER_BUF_INIT;
    pier_buf_printf(&url, "http://127.0.0.1:%d/key?X-Amz-Signature=topsecret",
                    ntohs(addr.sin_port));
    pier_http_client *c = client_new();
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = pier_buf_cstr(&url);
    pier_http_response resp;
    pier_http_response_init(&resp);

    int rc = pier_http_do(c, &req, &resp);
    assert_int_equal(rc, PIER_EIO);
    assert_int_equal(resp.transport, PIER_HTTP_CONNECT);
    assert_int_equal(resp.status, 0);
    const char *msg = pier_error_last();
    assert_non_null(strstr(msg, "GET http://127.0.0.1:"));
    assert_non_null(strstr(msg, "/key"));
    assert_non_null(strstr(msg, "connect"));
    assert_null(strstr(msg, "topsecret")); /* the query is not shown */
    assert_null(strchr(msg, '\n'));

    pier_http_response_free(&resp);
    pier_buf_free(&url);
    pier_http_client_free(c);
    close(fd);
}

static void test_stall_times_out(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/stall");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = url;
    req.low_speed_time_s = 1;
    pier_http_response resp;
    pier_http_response_init(&resp);

    int rc = pier_http_do(c, &req, &resp);
    assert_int_equal(rc, PIER_ETIMEOUT);
    assert_int_equal(resp.transport, PIER_HTTP_TIMEOUT);
    assert_non_null(strstr(pier_error_last(), "/stall"));
    assert_non_null(strstr(pier_error_last(), "timeout"));

    /* A total timeout too. */
    req.low_speed_time_s = 0;
    req.timeout_ms = 300;
    rc = pier_http_do(c, &req, &resp);
    assert_int_equal(rc, PIER_ETIMEOUT);
    assert_int_equal(resp.transport, PIER_HTTP_TIMEOUT);

    pier_http_response_free(&resp);
    free(url);
    pier_http_client_free(c);
}

static void test_cut_mid_body(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/cut");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = url;
    pier_http_response resp;
    pier_http_response_init(&resp);

    int rc = pier_http_do(c, &req, &resp);
    assert_int_equal(rc, PIER_EIO);
    assert_int_equal(resp.transport, PIER_HTTP_RESET);
    assert_int_equal(resp.status, 200);
    assert_non_null(strstr(pier_error_last(), "/cut"));

    pier_http_response_free(&resp);
    free(url);
    pier_http_client_free(c);
}

static void test_insecure_http_refused(void **state)
{
    static const char *const urls[] = {
        "http://example.com/bucket/key",
        "http://10.1.2.3:9000/x",
        "http://[2001:db8::1]/",
        "http://localhost.example/",
    };
    pier_http_client *c = client_new();
    pier_http_response resp;
    pier_http_response_init(&resp);
    for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
        pier_http_request req = PIER_HTTP_REQUEST_INIT;
        req.method = "GET";
        req.url = urls[i];
        int rc = pier_http_submit(c, &req, &resp, NULL, NULL);
        assert_int_equal(rc, PIER_EINVALID);
        assert_int_equal(resp.transport, PIER_HTTP_LOCAL);
        assert_int_equal(pier_http_in_flight(c), 0); /* nothing was sent */
        assert_non_null(strstr(pier_error_last(), "http://"));
        assert_int_equal(pier_http_do(c, &req, &resp), PIER_EINVALID);
    }
    pier_http_response_free(&resp);
    pier_http_client_free(c);
}

static void test_bad_requests(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/echo");
    char *path = pattern_file(100);
    pier_http_response resp;
    pier_http_response_init(&resp);
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "PUT";
    req.url = url;

    req.body_file = "/nonexistent/pier-file";
    req.body_file_len = 1;
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_ENOTFOUND);
    assert_non_null(strstr(pier_error_last(), "/nonexistent/pier-file"));

    req.body_file = path;
    req.body_file_offset = 50;
    req.body_file_len = 51;
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), path));

    req.body = "x";
    req.body_len = 1;
    req.body_file_len = 10;
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_EINVALID);
    req.body_file = NULL;

    pier_http_headers_add(&req.headers, "X-Evil", "a\r\nInjected: yes");
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_EINVALID);
    pier_http_headers_free(&req.headers);
    pier_http_headers_add(&req.headers, "Bad Name", "v");
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_EINVALID);
    pier_http_headers_free(&req.headers);

    req.method = "GET\r\n";
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_EINVALID);
    req.method = NULL;
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_EINVALID);
    req.method = "GET";
    req.url = NULL;
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_EINVALID);
    req.url = "https://";
    assert_int_equal(pier_http_do(c, &req, &resp), PIER_EINVALID);
    assert_int_equal(pier_http_in_flight(c), 0);

    /* An empty header value is sent as such. */
    req.url = url;
    req.body = NULL;
    req.body_len = 0;
    pier_http_headers_add(&req.headers, "X-Amz-Meta-Test", "");
    assert_int_equal(pier_http_do(c, &req, &resp), 0);
    assert_string_equal(srv.meta, "");
    pier_http_headers_free(&req.headers);

    pier_http_response_free(&resp);
    unlink(path);
    free(path);
    free(url);
    pier_http_client_free(c);
    pier_http_client_free(NULL);
}

/* Transfers still in flight when the client is freed are dropped. */
static void test_free_with_transfers_in_flight(void **state)
{
    pier_http_client *c = client_new();
    char *url = url_for("/hello");
    pier_http_request req = PIER_HTTP_REQUEST_INIT;
    req.method = "GET";
    req.url = url;
    pier_http_response resp[3];
    for (int i = 0; i < 3; i++) {
        pier_http_response_init(&resp[i]);
        assert_int_equal(pier_http_submit(c, &req, &resp[i], NULL, NULL), 0);
    }
    assert_int_equal(pier_http_in_flight(c), 3);
    pier_http_client_free(c);
    for (int i = 0; i < 3; i++)
        pier_http_response_free(&resp[i]);
    free(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_api),
        cmocka_unit_test(test_get_memory),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_put_memory),
        cmocka_unit_test(test_put_file_range),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_redirect_not_followed),
        cmocka_unit_test(test_response_file),
        cmocka_unit_test(test_on_body),
        cmocka_unit_test(test_response_cap),
        cmocka_unit_test(test_parallel),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_retry_rewinds_file_body),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_stall_times_out),
        cmocka_unit_test(test_cut_mid_body),
        cmocka_unit_test(test_insecure_http_refused),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_free_with_transfers_in_flight),
    };
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
