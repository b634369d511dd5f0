/*
 * server: see server.h. How the pieces sit on libmicrohttpd (MHD 0.9.75):
 *
 * - One daemon, MHD_USE_EPOLL_INTERNAL_THREAD with a thread pool of one
 *   worker per core; 1 MiB of memory per connection, which bounds the
 *   request head and gives ~512 KiB upload pieces.
 * - MHD decodes the URL before the access handler sees it; SigV4 needs the
 *   path exactly as sent, so the URI log callback (called with the raw
 *   request target before any parsing) creates the request object and keeps
 *   the raw target. Its return value becomes the connection's per-request
 *   pointer, and the completion callback frees it.
 * - MHD calls the access handler first with the headers only, then once
 *   per body piece, then once with no data. A response queued on the first
 *   call makes MHD 0.9.75 close the connection after it (5x slower for
 *   keep-alive GETs), so a handler's answer given in on_req is held and
 *   queued on the next call; only when a body is pending and the handler
 *   refused it is the answer queued at once (the connection must close
 *   then anyway, and no "100 Continue" goes out).
 * - MHD only lets a response be queued with the headers or after the whole
 *   body, so a handler that stops mid-body gets the rest dropped and its
 *   answer is sent at the end.
 *
 * - A prebuilt response (pier_server_response) is one MHD response shared
 *   by many requests: MHD counts the connections sending it, and our own
 *   atomic count covers the holders (the creator, and requests that were
 *   answered with it but have not queued it yet). The last of our
 *   references destroys MHD's creator reference; MHD frees the response
 *   (and runs the body's done callback) once its last send is over. MHD
 *   responses must not change once queued, so a request answered with one
 *   never has a header added: one refused before its body is not queued at
 *   once (no "Connection: close" on it), its body is read and dropped.
 *
 * Costs: one malloc per request for the arena's first 4 KiB block; headers
 * are copied into it once.
 */
#include "net/server.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"

#define ARENA_BLOCK 4096

typedef struct route {
    char *host;         /* exact host, "*.suffix", or NULL */
    char *path_prefix;  /* raw path prefix or NULL */
    pier_handler *h;    /* owned */
    struct route *next; /* next in order */
} route;

struct pier_server_response {
    struct MHD_Response *resp; /* MHD's; its own count covers queued uses */
    unsigned status;           /* the status */
    atomic_uint refs;          /* the creator's and pending requests' */
};

struct pier_server {
    char *listen;              /* as given */
    unsigned threads;          /* worker threads */
    unsigned timeout_s;        /* idle timeout */
    uint64_t memory_limit;     /* per connection */
    struct MHD_Daemon *daemon; /* running daemon or NULL */
    uint16_t port;             /* bound port */
    char url[300];             /* http://host:port */
    route *routes;             /* in order */
    route **routes_tail;       /* where the next goes */
};

typedef struct arena_block {
    struct arena_block *next; /* older block */
    size_t used;              /* bytes used in data */
    size_t cap;               /* bytes in data */
    max_align_t data[];       /* the memory */
} arena_block;

typedef struct done_hook {
    pier_server_end_fn fn;  /* to call */
    void *ctx;              /* its context */
    struct done_hook *next; /* next to call */
} done_hook;

typedef struct {
    const char *name;  /* as sent */
    const char *value; /* its value */
} req_header;

struct pier_server_req {
    pier_server *srv;              /* owning server */
    struct MHD_Connection *conn;   /* MHD's connection */
    arena_block *arena;            /* request memory */
    char *raw_uri;                 /* target as sent */
    size_t path_len;               /* bytes of raw_uri before '?' */
    const char *method;            /* GET, PUT ... */
    req_header *headers;           /* request headers, in order */
    size_t header_count;           /* their count */
    char client[64];               /* client IP */
    int64_t content_length;        /* -1 unknown */
    bool has_body;                 /* a body follows the headers */
    bool started;                  /* on_req has run */
    bool ended;                    /* on_end has run */
    bool discard;                  /* drop remaining body pieces */
    pier_server_body_fn on_body;   /* body consumer */
    pier_server_end_fn on_end;     /* end of body */
    void *ctx;                     /* their context */
    done_hook *done;               /* cleanup hooks, newest first */
    struct MHD_Response *response; /* the answer, not yet queued */
    unsigned status;               /* its status */
    pier_server_response *shared;  /* or a prebuilt answer (a reference), not yet queued */
    struct {
        const char *name, *value;
    } * resp_headers;         /* headers for the answer */
    size_t resp_header_count; /* used */
    size_t resp_header_cap;   /* allocated */
};

/* ---- arena ---- */

void *pier_server_req_alloc(pier_server_req *r, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0)
        n = sizeof(max_align_t);
    arena_block *b = r->arena;
    if (n > ARENA_BLOCK / 2) {
        /* a big one-off gets its own block behind the current one, which
         * keeps filling */
        arena_block *big = pier_malloc(sizeof *big + n);
        big->cap = big->used = n;
        big->next = b ? b->next : NULL;
        if (b)
            b->next = big;
        else
            r->arena = big;
        return big->data;
    }
    if (!b || b->cap - b->used < n) {
        arena_block *nb = pier_malloc(sizeof *nb + ARENA_BLOCK);
        nb->cap = ARENA_BLOCK;
        nb->used = 0;
        nb->next = b;
        r->arena = b = nb;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

char *pier_server_req_strndup(pier_server_req *r, const char *s, size_t n)
{
    char *p = pier_server_req_alloc(r, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *req_strdup(pier_server_req *r, const char *s)
{
    return pier_server_req_strndup(r, s ? s : "", s ? strlen(s) : 0);
}

static void req_free(pier_server_req *r)
{
    if (!r)
        return;
    if (r->response)
        MHD_destroy_response(r->response);
    pier_server_response_release(r->shared);
    arena_block *b = r->arena;
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(r);
}

/* ---- accessors ---- */

const char *pier_server_req_method(const pier_server_req *r)
{
    return r->method;
}

const char *pier_server_req_raw_uri(const pier_server_req *r)
{
    return r->raw_uri;
}

pier_slice pier_server_req_raw_path(const pier_server_req *r)
{
    return (pier_slice){r->raw_uri, r->path_len};
}

pier_slice pier_server_req_raw_query(const pier_server_req *r)
{
    const char *q = r->raw_uri + r->path_len;
    if (*q == '?')
        q++;
    return (pier_slice){q, strlen(q)};
}

size_t pier_server_req_header_count(const pier_server_req *r)
{
    return r->header_count;
}

void pier_server_req_header_at(const pier_server_req *r, size_t i, const char **name,
                               const char **value)
{
    *name = r->headers[i].name;
    *value = r->headers[i].value;
}

const char *pier_server_req_header(const pier_server_req *r, const char *name)
{
    for (size_t i = 0; i < r->header_count; i++)
        if (pier_str_ieq(r->headers[i].name, name))
            return r->headers[i].value;
    return NULL;
}

const char *pier_server_req_client(const pier_server_req *r)
{
    return r->client;
}

int64_t pier_server_req_content_length(const pier_server_req *r)
{
    return r->content_length;
}

void pier_server_req_read_body(pier_server_req *r, pier_server_body_fn on_body,
                               pier_server_end_fn on_end, void *ctx)
{
    r->on_body = on_body;
    r->on_end = on_end;
    r->ctx = ctx;
}

void pier_server_req_on_done(pier_server_req *r, pier_server_end_fn fn, void *ctx)
{
    done_hook *h = pier_server_req_alloc(r, sizeof *h);
    h->fn = fn;
    h->ctx = ctx;
    h->next = r->done;
    r->done = h;
}

bool pier_server_req_responded(const pier_server_req *r)
{
    return r->response != NULL || r->shared != NULL;
}

/* ---- responses ---- */

void pier_server_resp_header(pier_server_req *r, const char *name, const char *value)
{
    if (r->resp_header_count == r->resp_header_cap) {
        size_t cap = r->resp_header_cap ? r->resp_header_cap * 2 : 16;
        void *n = pier_server_req_alloc(r, cap * sizeof *r->resp_headers);
        if (r->resp_header_count)
            memcpy(n, r->resp_headers, r->resp_header_count * sizeof *r->resp_headers);
        r->resp_headers = n;
        r->resp_header_cap = cap;
    }
    r->resp_headers[r->resp_header_count].name = req_strdup(r, name);
    r->resp_headers[r->resp_header_count].value = req_strdup(r, value);
    r->resp_header_count++;
}

static int set_response(pier_server_req *r, unsigned status, struct MHD_Response *resp)
{
    if (!resp)
        return pier_error_set(PIER_ERR, "cannot create the HTTP response");
    if (pier_server_req_responded(r)) {
        MHD_destroy_response(resp);
        return pier_error_set(PIER_ERR, "the request was already answered");
    }
    for (size_t i = 0; i < r->resp_header_count; i++)
        MHD_add_response_header(resp, r->resp_headers[i].name, r->resp_headers[i].value);
    r->response = resp;
    r->status = status;
    return 0;
}

int pier_server_respond_mem(pier_server_req *r, unsigned status, const void *body, size_t n)
{
    return set_response(
        r, status,
        MHD_create_response_from_buffer(n, (void *)(n ? body : ""), MHD_RESPMEM_MUST_COPY));
}

int pier_server_respond_json(pier_server_req *r, unsigned status, json_t *doc)
{
    pier_buf b;
    pier_buf_init(&b, PIER_BUF_MAX_DEFAULT);
    pier_json_write(&b, doc, false);
    pier_buf_putc(&b, '\n');
    json_decref(doc);
    pier_server_resp_header(r, "Content-Type", "application/json");
    pier_server_resp_header(r, "Cache-Control", "no-store");
    int rc = pier_server_respond_mem(r, status, pier_buf_cstr(&b), b.len);
    pier_buf_free(&b);
    return rc;
}

int pier_server_respond_static(pier_server_req *r, unsigned status, const void *body, size_t n)
{
    return set_response(
        r, status,
        MHD_create_response_from_buffer(n, (void *)(n ? body : ""), MHD_RESPMEM_PERSISTENT));
}

int pier_server_respond_fd(pier_server_req *r, unsigned status, int fd, uint64_t offset,
                           uint64_t len)
{
    if (len == 0) {
        close(fd);
        return pier_server_respond_mem(r, status, "", 0);
    }
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, offset);
    if (!resp)
        close(fd);
    return set_response(r, status, resp);
}

static ssize_t empty_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

int pier_server_respond_empty(pier_server_req *r, unsigned status, uint64_t len)
{
    if (len == 0)
        return pier_server_respond_mem(r, status, "", 0);
    return set_response(r, status,
                        MHD_create_response_from_callback(len, 4096, empty_reader, NULL, NULL));
}

typedef struct {
    pier_server_read_fn read; /* the producer */
    void *ctx;                /* its context */
    void (*free_ctx)(void *); /* frees ctx */
} stream_ctx;

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_ctx *s = cls;
    ssize_t n = s->read(s->ctx, pos, buf, max);
    if (n > 0)
        return n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    stream_ctx *s = cls;
    if (s->free_ctx)
        s->free_ctx(s->ctx);
    free(s);
}

int pier_server_respond_stream(pier_server_req *r, unsigned status, int64_t size,
                               pier_server_read_fn read, void *ctx, void (*free_ctx)(void *))
{
    stream_ctx *s = pier_malloc(sizeof *s);
    s->read = read;
    s->ctx = ctx;
    s->free_ctx = free_ctx;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        size < 0 ? MHD_SIZE_UNKNOWN : (uint64_t)size, 64 * 1024, stream_reader, s, stream_free);
    if (!resp) {
        stream_free(s);
        return pier_error_set(PIER_ERR, "cannot create the HTTP response");
    }
    return set_response(r, status, resp);
}

/* ---- prebuilt responses ---- */

static pier_server_response *response_wrap(struct MHD_Response *resp, unsigned status)
{
    pier_server_response *p = pier_malloc(sizeof *p);
    p->resp = resp;
    p->status = status;
    atomic_init(&p->refs, 1);
    return p;
}

pier_server_response *pier_server_response_new_static(unsigned status, const void *body, size_t n,
                                                      void (*done)(void *), void *done_ctx)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
        n, (void *)(n ? body : ""), done, done_ctx);
    if (!resp) {
        if (done)
            done(done_ctx);
        pier_error_set(PIER_ERR, "cannot create the HTTP response");
        return NULL;
    }
    return response_wrap(resp, status);
}

pier_server_response *pier_server_response_new_fd(unsigned status, int fd, uint64_t offset,
                                                  uint64_t len)
{
    if (len == 0) {
        close(fd);
        return pier_server_response_new_static(status, "", 0, NULL, NULL);
    }
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, offset);
    if (!resp) {
        close(fd);
        pier_error_set(PIER_ERR, "cannot create the HTTP response");
        return NULL;
    }
    return response_wrap(resp, status);
}

void pier_server_response_header(pier_server_response *p, const char *name, const char *value)
{
    MHD_add_response_header(p->resp, name, value);
}

int pier_server_respond_prebuilt(pier_server_req *r, pier_server_response *p)
{
    if (pier_server_req_responded(r))
        return pier_error_set(PIER_ERR, "the request was already answered");
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    r->shared = p;
    return 0;
}

void pier_server_response_release(pier_server_response *p)
{
    if (p && atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
        MHD_destroy_response(p->resp);
        free(p);
    }
}

/* ---- MHD callbacks ---- */

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    pier_server_req *r = pier_calloc(1, sizeof *r);
    r->srv = cls;
    r->conn = conn;
    r->raw_uri = req_strdup(r, uri);
    const char *q = strchr(r->raw_uri, '?');
    r->path_len = q ? (size_t)(q - r->raw_uri) : strlen(r->raw_uri);
    r->content_length = 0;
    return r;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    pier_server_req *r = *con_cls;
    if (!r)
        return;
    for (done_hook *h = r->done; h; h = h->next)
        h->fn(r, h->ctx);
    req_free(r);
    *con_cls = NULL;
}

typedef struct {
    pier_server_req *r; /* request being filled */
    size_t cap;         /* headers allocated */
} header_collect;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    header_collect *c = cls;
    pier_server_req *r = c->r;
    if (r->header_count == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        req_header *n = pier_server_req_alloc(r, cap * sizeof *n);
        if (r->header_count)
            memcpy(n, r->headers, r->header_count * sizeof *n);
        r->headers = n;
        c->cap = cap;
    }
    r->headers[r->header_count].name = req_strdup(r, key);
    r->headers[r->header_count].value = req_strdup(r, value);
    r->header_count++;
    return MHD_YES;
}

static bool host_matches(const char *pattern, const char *host_header)
{
    if (!pattern)
        return true;
    if (!host_header)
        return false;
    size_t n = strlen(host_header);
    if (host_header[0] == '[') {
        const char *close = strchr(host_header, ']');
        n = close ? (size_t)(close - host_header) + 1 : n;
    } else {
        const char *colon = strrchr(host_header, ':');
        if (colon)
            n = (size_t)(colon - host_header);
    }
    if (pattern[0] == '*' && pattern[1] == '.') {
        size_t sl = strlen(pattern + 1); /* ".suffix" */
        return n > sl && strncasecmp(host_header + n - sl, pattern + 1, sl) == 0;
    }
    return strlen(pattern) == n && strncasecmp(pattern, host_header, n) == 0;
}

static route *find_route(pier_server *s, pier_server_req *r)
{
    const char *host = pier_server_req_header(r, "Host");
    for (route *rt = s->routes; rt; rt = rt->next) {
        if (!host_matches(rt->host, host))
            continue;
        if (rt->path_prefix && (r->path_len < strlen(rt->path_prefix) ||
                                strncmp(r->raw_uri, rt->path_prefix, strlen(rt->path_prefix))))
            continue;
        return rt;
    }
    return NULL;
}

static void start_request(pier_server *s, pier_server_req *r, const char *method)
{
    r->method = req_strdup(r, method);
    header_collect c = {r, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_header, &c);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                               : sizeof(struct sockaddr_in);
        if (getnameinfo(ci->client_addr, len, r->client, sizeof r->client, NULL, 0,
                        NI_NUMERICHOST) != 0)
            r->client[0] = '\0';
    }
    const char *cl = pier_server_req_header(r, "Content-Length");
    const char *te = pier_server_req_header(r, "Transfer-Encoding");
    uint64_t n = 0;
    if (te && !pier_str_ieq(te, "identity")) {
        r->content_length = -1;
        r->has_body = true;
    } else if (cl && pier_parse_u64(cl, &n) == 0) {
        r->content_length = (int64_t)n;
        r->has_body = n > 0;
    }
    route *rt = find_route(s, r);
    if (!rt) {
        pier_server_respond_mem(r, 404, "no handler for this host and path\n", 34);
        return;
    }
    pier_error_clear();
    int rc = rt->h->on_req(rt->h, r);
    if (rc && !pier_server_req_responded(r)) {
        PIER_WARN("server: %s %s: %s", r->method, r->raw_uri, pier_error_last());
        pier_server_respond_mem(r, 500, "internal error\n", 15);
    }
}

static enum MHD_Result queue(pier_server_req *r)
{
    if (r->shared) {
        enum MHD_Result ret = MHD_queue_response(r->conn, r->shared->status, r->shared->resp);
        pier_server_response_release(r->shared);
        r->shared = NULL;
        return ret;
    }
    if (!r->response) {
        r->status = 500;
        r->response = MHD_create_response_from_buffer(23, (void *)"handler gave no answer\n",
                                                      MHD_RESPMEM_PERSISTENT);
    }
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->response);
    MHD_destroy_response(r->response);
    r->response = NULL;
    return ret;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
    pier_server *s = cls;
    pier_server_req *r = *con_cls;
    if (!r) /* no URI log call (should not happen): make the request here */
        *con_cls = r = uri_log(s, url, conn);
    if (!r->started) {
        r->started = true;
        start_request(s, r, method);
        if (r->response && r->has_body) {
            /* refused before the body: answer now, no 100 Continue, and the
             * connection closes (its unread body cannot be skipped) */
            MHD_add_response_header(r->response, MHD_HTTP_HEADER_CONNECTION, "close");
            return queue(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!r->discard && r->on_body && !pier_server_req_responded(r)) {
            if (r->on_body(r, r->ctx, upload_data, *upload_data_size) != 0)
                r->discard = true;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!r->ended) {
        r->ended = true;
        if (r->on_end && !pier_server_req_responded(r))
            r->on_end(r, r->ctx);
    }
    return queue(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    if (pier_log_get_level() < PIER_LOG_DEBUG)
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    PIER_DEBUG("http server: %s", line);
}

/* ---- lifecycle ---- */

int pier_server_new(pier_server **out, const pier_server_options *opts)
{
    pier_server *s = pier_calloc(1, sizeof *s);
    s->listen = pier_strdup(opts && opts->listen ? opts->listen : "127.0.0.1:0");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s->threads = opts && opts->threads ? opts->threads : (cores > 0 ? (unsigned)cores : 1);
    s->timeout_s = opts && opts->timeout_s ? opts->timeout_s : 120;
    s->memory_limit = opts && opts->memory_limit ? opts->memory_limit : (uint64_t)1 << 20;
    s->routes_tail = &s->routes;
    *out = s;
    return 0;
}

void pier_server_add(pier_server *s, const pier_server_match *match, pier_handler *h)
{
    route *rt = pier_calloc(1, sizeof *rt);
    rt->host = match && match->host ? pier_strdup(match->host) : NULL;
    rt->path_prefix = match && match->path_prefix ? pier_strdup(match->path_prefix) : NULL;
    rt->h = h;
    *s->routes_tail = rt;
    s->routes_tail = &rt->next;
}

/* Splits "host:port" / "[v6]:port" and resolves it (numeric or a name). */
static int resolve_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len,
                          char *host_out, size_t host_size)
{
    char host[256];
    const char *port;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return pier_error_set(PIER_EINVALID, "listen address '%s': expected [IPv6]:PORT",
                                  listen);
        snprintf(host, sizeof host, "%.*s", (int)(close - listen - 1), listen + 1);
        port = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (!colon)
            return pier_error_set(PIER_EINVALID, "listen address '%s': expected HOST:PORT", listen);
        snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
        port = colon + 1;
    }
    uint64_t p;
    if (pier_parse_u64(port, &p) != 0 || p > 65535)
        return pier_error_set(PIER_EINVALID, "listen address '%s': bad port", listen);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0 || !res)
        return pier_error_set(PIER_EINVALID, "listen address '%s': %s", listen, gai_strerror(gai));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(host_out, host_size, "%s", host[0] ? host : "0.0.0.0");
    return 0;
}

int pier_server_start(pier_server *s)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    char host[256];
    int rc = resolve_listen(s->listen, &ss, &sslen, host, sizeof host);
    if (rc)
        return rc;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, access_handler, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)s->memory_limit, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->timeout_s,
        MHD_OPTION_URI_LOG_CALLBACK, uri_log, s, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)511,
        MHD_OPTION_END);
    if (!s->daemon)
        return pier_error_set(PIER_EIO,
                              "cannot listen on %s (address in use, or not an address of this "
                              "machine?)",
                              s->listen);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (di && getsockname(di->listen_fd, (struct sockaddr *)&bound, &blen) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(s->url, sizeof s->url, "http://%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
             (unsigned)s->port);
    return 0;
}

uint16_t pier_server_port(const pier_server *s)
{
    return s->port;
}

const char *pier_server_url(const pier_server *s)
{
    return s->url;
}

void pier_server_stop(pier_server *s)
{
    if (s && s->daemon) {
        MHD_stop_daemon(s->daemon);
        s->daemon = NULL;
    }
}

void pier_server_free(pier_server *s)
{
    if (!s)
        return;
    pier_server_stop(s);
    route *rt = s->routes;
    while (rt) {
        route *next = rt->next;
        if (rt->h->dispose)
            rt->h->dispose(rt->h);
        free(rt->host);
        free(rt->path_prefix);
        free(rt);
        rt = next;
    }
    free(s->listen);
    free(s);
}
