/*
 * http: the HTTP client on libcurl's multi interface. See http.h (URL
 * parsing and the loopback test are in url.c).
 *
 * Layout
 *   - Process-wide state, set up once (pthread_once): curl_global_init,
 *     SIGPIPE ignored, and one share handle for the DNS and TLS session
 *     caches, with one mutex per kind of shared data.
 *   - A client: a multi handle (which owns the keep-alive connection cache),
 *     its options, and the list of transfers in flight.
 *   - A transfer: one easy handle made per request, its header list, the
 *     body source (memory or an fd read with pread) and the body sink
 *     (memory, an fd opened on the first byte, or the caller's callback).
 *
 * Invariants
 *   - Each transfer is on its client's list exactly while it is in the multi
 *     handle; in_flight counts them.
 *   - A transfer is freed before its done callback runs, so done may free
 *     or reuse req and resp and may submit more.
 *   - Failures found inside curl's callbacks (a sink over its cap, a short
 *     read) are kept in the transfer (local_code, local_msg) because the
 *     thread's last error may be overwritten by other transfers before this
 *     one completes; they win over curl's generic "write error".
 *
 * Costs
 *   One easy handle per request (a few KiB); request bodies are never held
 *   in memory beyond curl's upload buffer; an in-memory response grows a
 *   pier_buf up to its cap.
 */
#include "net/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"

#define RESPONSE_MAX_DEFAULT ((size_t)16 << 20)  /* in-memory body cap */
#define HEADER_BYTES_MAX     ((size_t)256 << 10) /* response header cap */

/* ---- headers ---------------------------------------------------------- */

void pier_http_headers_add(pier_http_headers *h, const char *name, const char *value)
{
    if (h->count == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 8;
        h->items = pier_realloc(h->items, h->cap * sizeof *h->items);
    }
    h->items[h->count].name = pier_strdup(name);
    h->items[h->count].value = pier_strdup(value ? value : "");
    h->count++;
}

void pier_http_headers_set(pier_http_headers *h, const char *name, const char *value)
{
    pier_http_headers_remove(h, name);
    pier_http_headers_add(h, name, value);
}

const char *pier_http_headers_get(const pier_http_headers *h, const char *name)
{
    for (size_t i = 0; i < h->count; i++)
        if (strcasecmp(h->items[i].name, name) == 0)
            return h->items[i].value;
    return NULL;
}

void pier_http_headers_remove(pier_http_headers *h, const char *name)
{
    size_t kept = 0;
    for (size_t i = 0; i < h->count; i++) {
        if (strcasecmp(h->items[i].name, name) == 0) {
            free(h->items[i].name);
            free(h->items[i].value);
        } else {
            h->items[kept++] = h->items[i];
        }
    }
    h->count = kept;
}

void pier_http_headers_free(pier_http_headers *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->count; i++) {
        free(h->items[i].name);
        free(h->items[i].value);
    }
    free(h->items);
    h->items = NULL;
    h->count = h->cap = 0;
}

void pier_http_response_init(pier_http_response *r)
{
    memset(r, 0, sizeof *r);
    pier_buf_init(&r->body, RESPONSE_MAX_DEFAULT);
}

void pier_http_response_free(pier_http_response *r)
{
    if (!r)
        return;
    pier_http_headers_free(&r->headers);
    pier_buf_free(&r->body);
}

const char *pier_http_transport_name(pier_http_transport t)
{
    switch (t) {
    case PIER_HTTP_OK:
        return "ok";
    case PIER_HTTP_CONNECT:
        return "connect";
    case PIER_HTTP_RESET:
        return "reset";
    case PIER_HTTP_TIMEOUT:
        return "timeout";
    case PIER_HTTP_TLS:
        return "tls";
    case PIER_HTTP_LOCAL:
        return "local";
    }
    return "unknown";
}

/* ---- process-wide state ----------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;           /* curl_global_init's result */
static CURLSH *global_share;                             /* DNS + TLS sessions */
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST]; /* one per data kind */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
    pthread_mutex_lock(&share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
    pthread_mutex_unlock(&share_locks[data]);
}

/* Lives until exit: easy handles of any client may point at the share.
 *
 * SIGPIPE is ignored process-wide (when nobody set a handler): with
 * CURLOPT_NOSIGNAL, which threads require, libcurl does not shield OpenSSL's
 * writes to a closed peer, and a per-call sigaction dance would race
 * between threads. A broken pipe then surfaces as EPIPE, a RESET. */
static void global_init(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (global_rc != CURLE_OK)
        return;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_locks[i], NULL);
    global_share = curl_share_init();
    if (!global_share) {
        global_rc = CURLE_OUT_OF_MEMORY;
        return;
    }
    curl_share_setopt(global_share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(global_share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(global_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(global_share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

/* ---- client and transfer ---------------------------------------------- */

typedef struct transfer transfer;

struct pier_http_client {
    CURLM *multi;             /* drives every transfer; owns the connection cache */
    long connect_timeout_ms;  /* default for requests */
    long low_speed_time_s;    /* default for requests */
    bool allow_insecure_http; /* http:// to any host */
    char *ca_file;            /* CA bundle path, or NULL for the system's */
    char *user_agent;         /* User-Agent unless the request sets one */
    transfer *first;          /* transfers in flight, a doubly linked list */
    size_t in_flight;         /* their count */
    bool running;             /* inside pier_http_run / pier_http_do */
};

struct transfer {
    pier_http_client *client;     /* owner */
    transfer *prev, *next;        /* in client->first */
    CURL *easy;                   /* this transfer's handle */
    struct curl_slist *hdrs;      /* request header lines */
    pier_http_request *req;       /* borrowed until done */
    pier_http_response *resp;     /* borrowed until done */
    pier_http_done_fn done;       /* completion callback */
    void *done_ctx;               /* its context */
    char *shown_url;              /* the URL for messages, query elided */
    char errbuf[CURL_ERROR_SIZE]; /* curl's own error text */

    const char *src_mem; /* request body in memory, or NULL */
    int src_fd;          /* request body file, or -1 */
    uint64_t src_off;    /* file offset of the body's first byte */
    uint64_t src_len;    /* body length */
    uint64_t src_pos;    /* bytes handed to curl so far */

    int dst_fd;          /* response file once opened, or -1 */
    bool dst_created;    /* the file was created by this transfer */
    long status;         /* status line of the current response */
    size_t header_bytes; /* header bytes of the current response */
    uint64_t received;   /* response body bytes received */

    int local_code;       /* a failure found in a callback, or 0 */
    char local_msg[1024]; /* its message */
};

/* Records a failure found in a curl callback (the first one wins). */
static void local_fail(transfer *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void local_fail(transfer *t, int code, const char *fmt, ...)
{
    if (t->local_code)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->local_msg, sizeof t->local_msg, fmt, ap);
    va_end(ap);
    t->local_code = code;
}

int pier_http_client_new(pier_http_client **out, const pier_http_client_options *opts)
{
    pier_http_client_options defaults = PIER_HTTP_CLIENT_OPTIONS_INIT;
    *out = NULL;
    if (!opts)
        opts = &defaults;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return pier_error_set(PIER_ERR, "libcurl failed to initialise: %s",
                              curl_easy_strerror(global_rc));

    pier_http_client *c = pier_calloc(1, sizeof *c);
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return pier_error_set(PIER_ERR, "libcurl could not create a multi handle");
    }
    c->connect_timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 5000;
    c->low_speed_time_s = opts->low_speed_time_s > 0 ? opts->low_speed_time_s : 30;
    c->allow_insecure_http = opts->allow_insecure_http;
    const char *ca = opts->ca_file;
    if (!ca || !ca[0])
        ca = getenv("AWS_CA_BUNDLE");
    c->ca_file = ca && ca[0] ? pier_strdup(ca) : NULL;
    c->user_agent = pier_strdup(opts->user_agent ? opts->user_agent : "pier/" PIER_VERSION);

    long per_host = opts->max_host_connections > 0 ? opts->max_host_connections : 64;
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
    /* Keep as many idle connections as may be busy at once, for reuse. */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, per_host < 16 ? 16L : per_host);
    *out = c;
    return 0;
}

static void transfer_free(transfer *t)
{
    if (!t)
        return;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->hdrs);
    if (t->src_fd >= 0)
        close(t->src_fd);
    if (t->dst_fd >= 0)
        close(t->dst_fd);
    free(t->shown_url);
    free(t);
}

/* Takes t out of the client (list, multi handle, count). */
static void transfer_detach(transfer *t)
{
    pier_http_client *c = t->client;
    curl_multi_remove_handle(c->multi, t->easy);
    if (t->prev)
        t->prev->next = t->next;
    else
        c->first = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
    c->in_flight--;
}

void pier_http_client_free(pier_http_client *c)
{
    if (!c)
        return;
    /* Transfers still in flight are dropped without calling done. */
    while (c->first) {
        transfer *t = c->first;
        transfer_detach(t);
        transfer_free(t);
    }
    curl_multi_cleanup(c->multi);
    free(c->ca_file);
    free(c->user_agent);
    free(c);
}

size_t pier_http_in_flight(const pier_http_client *c)
{
    return c ? c->in_flight : 0;
}

/* ---- curl callbacks: request body ------------------------------------- */

static size_t read_body(char *buf, size_t size, size_t nitems, void *ctx)
{
    transfer *t = ctx;
    uint64_t left = t->src_len - t->src_pos;
    size_t want = size * nitems;
    if (want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (t->src_mem) {
        memcpy(buf, t->src_mem + t->src_pos, want);
        t->src_pos += want;
        return want;
    }
    ssize_t n;
    do
        n = pread(t->src_fd, buf, want, (off_t)(t->src_off + t->src_pos));
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        local_fail(t, PIER_EIO, "reading %s at byte %llu: %s", t->req->body_file,
                   (unsigned long long)(t->src_off + t->src_pos), strerror(errno));
        return CURL_READFUNC_ABORT;
    }
    if (n == 0) {
        local_fail(t, PIER_EIO, "%s ended at byte %llu, before the %llu bytes to send",
                   t->req->body_file, (unsigned long long)(t->src_off + t->src_pos),
                   (unsigned long long)t->src_len);
        return CURL_READFUNC_ABORT;
    }
    t->src_pos += (uint64_t)n;
    return (size_t)n;
}

/* curl rewinds the body to resend it (a reused connection that died, an
 * auth round trip); offsets are relative to the body's first byte. */
static int seek_body(void *ctx, curl_off_t offset, int origin)
{
    transfer *t = ctx;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->src_len)
        return CURL_SEEKFUNC_FAIL;
    t->src_pos = (uint64_t)offset;
    return CURL_SEEKFUNC_OK;
}

/* ---- curl callbacks: response ----------------------------------------- */

/* Each header line of each response (1xx and final alike). A status line
 * starts a new response: the headers collected so far are dropped, so only
 * the final response's remain. */
static size_t on_header(char *data, size_t size, size_t nitems, void *ctx)
{
    transfer *t = ctx;
    size_t n = size * nitems;
    pier_http_headers *h = &t->resp->headers;
    pier_slice line = pier_slice_trim((pier_slice){data, n});

    if (pier_slice_starts_with(line, "HTTP/")) {
        pier_http_headers_free(h);
        t->header_bytes = 0;
        t->status = 0;
        const char *sp = memchr(line.ptr, ' ', line.len);
        if (sp && (size_t)(line.ptr + line.len - sp) >= 4 && isdigit((unsigned char)sp[1]) &&
            isdigit((unsigned char)sp[2]) && isdigit((unsigned char)sp[3]))
            t->status = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
        return n;
    }
    if (line.len == 0)
        return n;
    t->header_bytes += n;
    if (t->header_bytes > HEADER_BYTES_MAX) {
        local_fail(t, PIER_ETOOBIG, "response headers exceed %zu bytes", HEADER_BYTES_MAX);
        return 0;
    }
    if ((data[0] == ' ' || data[0] == '\t') && h->count > 0) {
        /* An obsolete folded line continues the previous value. */
        pier_http_header *last = &h->items[h->count - 1];
        pier_buf v = PIER_BUF_INIT;
        pier_buf_printf(&v, "%s %.*s", last->value, (int)line.len, line.ptr);
        free(last->value);
        last->value = pier_buf_detach(&v);
        return n;
    }
    const char *colon = memchr(line.ptr, ':', line.len);
    if (!colon)
        return n; /* not a header; ignore as browsers do */
    char *name =
        pier_slice_dup(pier_slice_trim((pier_slice){line.ptr, (size_t)(colon - line.ptr)}));
    char *value = pier_slice_dup(
        pier_slice_trim((pier_slice){colon + 1, (size_t)(line.ptr + line.len - colon - 1)}));
    pier_http_headers_add(h, name, value);
    free(name);
    free(value);
    return n;
}

/* Writes all of data to fd; 0 or -1 with errno set. */
static int write_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Opens the response file on the first 2xx body byte (or at the end for an
 * empty 2xx body), so an error response never truncates it. */
static int open_response_file(transfer *t)
{
    t->dst_fd = open(t->req->response_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (t->dst_fd < 0) {
        local_fail(t, PIER_EIO, "cannot create %s: %s", t->req->response_file, strerror(errno));
        return -1;
    }
    t->dst_created = true;
    return 0;
}

/* Returning anything but n makes curl fail the transfer (CURLE_WRITE_ERROR);
 * the reason is recorded with local_fail first. */
static size_t on_body(char *data, size_t size, size_t nitems, void *ctx)
{
    transfer *t = ctx;
    size_t n = size * nitems;
    const pier_http_request *req = t->req;
    bool streamed = t->status >= 200 && t->status < 300;

    t->received += n;
    if (streamed && req->on_body) {
        pier_error_clear();
        int rc = req->on_body(req->on_body_ctx, data, n);
        if (rc != 0) {
            const char *msg = pier_error_last();
            local_fail(t, rc < 0 ? rc : PIER_ERR, "%s",
                       msg[0] ? msg : "the response body callback stopped the transfer");
            return 0;
        }
        return n;
    }
    if (streamed && req->response_file) {
        if (t->dst_fd < 0 && open_response_file(t) < 0)
            return 0;
        if (write_all(t->dst_fd, data, n) < 0) {
            local_fail(t, PIER_EIO, "writing %s: %s", req->response_file, strerror(errno));
            return 0;
        }
        return n;
    }
    pier_buf *b = &t->resp->body;
    if (n > b->max - b->len) {
        local_fail(t, PIER_ETOOBIG,
                   "response body is larger than the %zu bytes allowed in memory "
                   "(response_max; stream it to a file or callback instead)",
                   b->max);
        return 0;
    }
    pier_buf_put(b, data, n);
    return n;
}

/* ---- submit ----------------------------------------------------------- */

/* The URL without its query (presigned URLs carry signatures there). */
static char *shown_url(const char *url)
{
    const char *q = strchr(url, '?');
    if (!q)
        return pier_strdup(url);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "%.*s?...", (int)(q - url), url);
    return pier_buf_detach(&b);
}

static bool has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

/* The request header list: the caller's headers verbatim, then blanks that
 * stop curl adding its own Expect, Accept and Content-Type. */
static int build_headers(transfer *t)
{
    const pier_http_headers *h = &t->req->headers;
    pier_buf line = PIER_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < h->count && rc == 0; i++) {
        const char *name = h->items[i].name, *value = h->items[i].value;
        if (!name[0] || strpbrk(name, ":; \t") || has_crlf(name) || has_crlf(value)) {
            rc = pier_error_set(PIER_EINVALID, "request header '%s' for %s %s is malformed", name,
                                t->req->method, t->shown_url);
            break;
        }
        pier_buf_reset(&line);
        /* "Name;" is curl's way to send a header with an empty value. */
        if (value[0])
            pier_buf_printf(&line, "%s: %s", name, value);
        else
            pier_buf_printf(&line, "%s;", name);
        struct curl_slist *l = curl_slist_append(t->hdrs, pier_buf_cstr(&line));
        if (!l)
            rc = pier_error_set(PIER_ERR, "out of memory building request headers");
        else
            t->hdrs = l;
    }
    static const char *const blanks[] = {"Expect", "Accept", "Content-Type"};
    for (size_t i = 0; i < sizeof blanks / sizeof *blanks && rc == 0; i++) {
        if (pier_http_headers_get(h, blanks[i]))
            continue;
        pier_buf_reset(&line);
        pier_buf_printf(&line, "%s:", blanks[i]);
        struct curl_slist *l = curl_slist_append(t->hdrs, pier_buf_cstr(&line));
        if (!l)
            rc = pier_error_set(PIER_ERR, "out of memory building request headers");
        else
            t->hdrs = l;
    }
    pier_buf_free(&line);
    return rc;
}

/* Checks the request and the URL policy, and opens the body file. */
static int prepare(transfer *t, pier_url *u)
{
    pier_http_request *req = t->req;
    if (!req->method || !req->method[0] || strpbrk(req->method, " \t\r\n"))
        return pier_error_set(PIER_EINVALID, "HTTP request to %s has a bad method", t->shown_url);
    if ((req->body && req->body_file) || (req->on_body && req->response_file))
        return pier_error_set(PIER_EINVALID,
                              "%s %s: give at most one request body and one response sink",
                              req->method, t->shown_url);
    if (pier_url_parse(u, req->url) < 0)
        return PIER_EINVALID;
    if (strcmp(u->scheme, "http") == 0 && !pier_host_is_loopback(u->host) &&
        !t->client->allow_insecure_http)
        return pier_error_set(PIER_EINVALID,
                              "refusing plain http:// to %s (%s): only loopback hosts may "
                              "skip TLS; use https:// or allow insecure http for this endpoint",
                              u->host, t->shown_url);
    if (req->body) {
        t->src_mem = req->body;
        t->src_len = req->body_len;
    } else if (req->body_file) {
        t->src_fd = open(req->body_file, O_RDONLY | O_CLOEXEC);
        if (t->src_fd < 0)
            return pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO,
                                        "cannot open %s to send", req->body_file);
        struct stat st;
        if (fstat(t->src_fd, &st) < 0)
            return pier_error_set_errno(PIER_EIO, "cannot stat %s", req->body_file);
        uint64_t size = (uint64_t)st.st_size;
        if (req->body_file_offset > size || req->body_file_len > size - req->body_file_offset)
            return pier_error_set(
                PIER_EINVALID, "%s has %llu bytes; cannot send %llu bytes from offset %llu",
                req->body_file, (unsigned long long)size, (unsigned long long)req->body_file_len,
                (unsigned long long)req->body_file_offset);
        t->src_off = req->body_file_offset;
        t->src_len = req->body_file_len;
    }
    return 0;
}

/* Sets every option of the easy handle for t. */
static int configure(transfer *t, const pier_url *u)
{
    pier_http_client *c = t->client;
    pier_http_request *req = t->req;
    CURL *e = t->easy;
    bool has_body = req->body || req->body_file;
    bool head = strcmp(req->method, "HEAD") == 0 || req->no_body;
    CURLcode cc = CURLE_OK;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PATH_AS_IS, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_SHARE, global_share);
    SET(CURLOPT_PRIVATE, t);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, t->errbuf);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_USERAGENT, c->user_agent);
    SET(CURLOPT_HTTPHEADER, t->hdrs);

    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (c->ca_file)
        SET(CURLOPT_CAINFO, c->ca_file);
    if (pier_host_is_loopback(u->host))
        SET(CURLOPT_PROXY, ""); /* never send loopback traffic via a proxy */

    SET(CURLOPT_CONNECTTIMEOUT_MS,
        req->connect_timeout_ms > 0 ? req->connect_timeout_ms : c->connect_timeout_ms);
    SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
    SET(CURLOPT_LOW_SPEED_TIME,
        req->low_speed_time_s > 0 ? req->low_speed_time_s : c->low_speed_time_s);
    if (req->timeout_ms > 0)
        SET(CURLOPT_TIMEOUT_MS, req->timeout_ms);

    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, t);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, t);

    /* Any body goes up the upload path (PUT semantics under the caller's
     * method): curl then adds no Content-Type, takes Content-Length from
     * INFILESIZE and streams through read_body. */
    if (has_body || strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0) {
        SET(CURLOPT_UPLOAD, 1L);
        SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)t->src_len);
        SET(CURLOPT_READFUNCTION, read_body);
        SET(CURLOPT_READDATA, t);
        SET(CURLOPT_SEEKFUNCTION, seek_body);
        SET(CURLOPT_SEEKDATA, t);
        if (strcmp(req->method, "PUT") != 0)
            SET(CURLOPT_CUSTOMREQUEST, req->method);
    } else if (head) {
        SET(CURLOPT_NOBODY, 1L);
        if (strcmp(req->method, "HEAD") != 0) {
            /* A body may follow that curl will not read: never reuse. */
            SET(CURLOPT_CUSTOMREQUEST, req->method);
            SET(CURLOPT_FORBID_REUSE, 1L);
        }
    } else if (strcmp(req->method, "GET") != 0) {
        SET(CURLOPT_CUSTOMREQUEST, req->method);
    }
#undef SET
    if (cc != CURLE_OK)
        return pier_error_set(PIER_ERR, "%s %s: libcurl rejected an option: %s", req->method,
                              t->shown_url, curl_easy_strerror(cc));
    return 0;
}

int pier_http_submit(pier_http_client *c, pier_http_request *req, pier_http_response *resp,
                     pier_http_done_fn done, void *ctx)
{
    int rc = 0;
    pier_url u = {0};
    pier_http_response_free(resp);
    pier_http_response_init(resp);
    resp->transport = PIER_HTTP_LOCAL; /* until it completes */
    if (!req->url)
        return pier_error_set(PIER_EINVALID, "HTTP request without a URL");
    pier_buf_init(&resp->body, req->response_max ? req->response_max : RESPONSE_MAX_DEFAULT);

    transfer *t = pier_calloc(1, sizeof *t);
    t->client = c;
    t->req = req;
    t->resp = resp;
    t->done = done;
    t->done_ctx = ctx;
    t->src_fd = -1;
    t->dst_fd = -1;
    t->shown_url = shown_url(req->url);

    rc = prepare(t, &u);
    if (rc < 0)
        goto done;
    rc = build_headers(t);
    if (rc < 0)
        goto done;
    t->easy = curl_easy_init();
    if (!t->easy) {
        rc = pier_error_set(PIER_ERR, "libcurl could not create a handle for %s", t->shown_url);
        goto done;
    }
    rc = configure(t, &u);
    if (rc < 0)
        goto done;
    CURLMcode mc = curl_multi_add_handle(c->multi, t->easy);
    if (mc != CURLM_OK) {
        rc = pier_error_set(PIER_ERR, "%s %s: libcurl: %s", req->method, t->shown_url,
                            curl_multi_strerror(mc));
        goto done;
    }
    t->next = c->first;
    if (c->first)
        c->first->prev = t;
    c->first = t;
    c->in_flight++;
done:
    pier_url_free(&u);
    if (rc < 0)
        transfer_free(t);
    return rc;
}

/* ---- completion ------------------------------------------------------- */

static pier_http_transport classify(CURLcode cc)
{
    switch (cc) {
    case CURLE_OK:
        return PIER_HTTP_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return PIER_HTTP_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return PIER_HTTP_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
        return PIER_HTTP_TLS;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return PIER_HTTP_RESET;
    default:
        return PIER_HTTP_LOCAL;
    }
}

/* Fills resp from the finished handle and works out the transfer's result:
 * 0, or a negative code with t->local_msg holding the message. */
static int conclude(transfer *t, CURLcode cc)
{
    pier_http_response *resp = t->resp;
    long status = 0;
    curl_off_t usecs = 0, sent = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &usecs);
    curl_easy_getinfo(t->easy, CURLINFO_SIZE_UPLOAD_T, &sent);
    resp->status = status;
    resp->seconds = (double)usecs / 1e6;
    resp->bytes_sent = (uint64_t)sent;
    resp->bytes_received = t->received;

    /* An empty 2xx body still produces the (empty) file. */
    if (cc == CURLE_OK && t->req->response_file && !t->req->no_body && t->dst_fd < 0 &&
        status >= 200 && status < 300 && strcmp(t->req->method, "HEAD") != 0)
        open_response_file(t);
    if (t->dst_fd >= 0) {
        if (close(t->dst_fd) < 0)
            local_fail(t, PIER_EIO, "writing %s: %s", t->req->response_file, strerror(errno));
        t->dst_fd = -1;
    }

    int rc = 0;
    if (t->local_code) {
        resp->transport = PIER_HTTP_LOCAL;
        rc = t->local_code;
    } else if (cc != CURLE_OK) {
        resp->transport = classify(cc);
        rc = resp->transport == PIER_HTTP_TIMEOUT ? PIER_ETIMEOUT
             : resp->transport == PIER_HTTP_LOCAL ? PIER_ERR
                                                  : PIER_EIO;
        snprintf(t->local_msg, sizeof t->local_msg, "%s %s failed (%s): %s", t->req->method,
                 t->shown_url, pier_http_transport_name(resp->transport),
                 t->errbuf[0] ? t->errbuf : curl_easy_strerror(cc));
    } else {
        resp->transport = PIER_HTTP_OK;
    }
    if (t->local_code && !pier_str_starts_with(t->local_msg, t->req->method)) {
        /* Name the request in callback failures too. */
        pier_buf m = PIER_BUF_INIT;
        pier_buf_printf(&m, "%s %s: %s", t->req->method, t->shown_url, t->local_msg);
        snprintf(t->local_msg, sizeof t->local_msg, "%s", pier_buf_cstr(&m));
        pier_buf_free(&m);
    }
    if (rc < 0 && t->dst_created)
        unlink(t->req->response_file); /* never leave a partial download behind */
    return rc;
}

/* Completes every finished transfer: detach, free, then call done. */
static void reap(pier_http_client *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        transfer *t = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode cc = m->data.result; /* m is invalid after remove_handle */
        int rc = conclude(t, cc);
        char msg[sizeof t->local_msg];
        memcpy(msg, t->local_msg, sizeof msg);
        pier_http_done_fn done = t->done;
        void *ctx = t->done_ctx;
        pier_http_request *req = t->req;
        pier_http_response *resp = t->resp;
        transfer_detach(t);
        transfer_free(t);
        if (rc < 0)
            pier_error_set(rc, "%s", msg);
        if (done)
            done(ctx, rc, req, resp);
    }
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drives transfers until none is in flight, *stop turns true or the
 * monotonic deadline (ms; negative: none) passes. */
static int drive(pier_http_client *c, const bool *stop, int64_t deadline)
{
    int rc = 0;
    if (c->running)
        return pier_error_set(PIER_EINVALID,
                              "pier_http_run/pier_http_do called from a completion callback");
    c->running = true;
    while (c->in_flight > 0 && !(stop && *stop)) {
        int still = 0;
        CURLMcode mc = curl_multi_perform(c->multi, &still);
        if (mc == CURLM_OK) {
            reap(c);
            if (c->in_flight == 0 || (stop && *stop))
                break;
            int wait_ms = 1000;
            if (deadline >= 0) {
                int64_t left = deadline - monotonic_ms();
                if (left <= 0)
                    break;
                if (left < wait_ms)
                    wait_ms = (int)left;
            }
            mc = curl_multi_poll(c->multi, NULL, 0, wait_ms, NULL);
        }
        if (mc != CURLM_OK) {
            rc = pier_error_set(PIER_ERR, "libcurl multi handle failed: %s",
                                curl_multi_strerror(mc));
            break;
        }
    }
    c->running = false;
    return rc;
}

int pier_http_run(pier_http_client *c)
{
    return drive(c, NULL, -1);
}

int pier_http_run_for(pier_http_client *c, long max_ms)
{
    return drive(c, NULL, monotonic_ms() + (max_ms > 0 ? max_ms : 0));
}

typedef struct {
    bool finished; /* done was called */
    int rc;        /* with this result */
} do_state;

static void do_done(void *ctx, int rc, pier_http_request *req, pier_http_response *resp)
{
    do_state *s = ctx;
    s->finished = true;
    s->rc = rc;
}

int pier_http_do(pier_http_client *c, pier_http_request *req, pier_http_response *resp)
{
    do_state s = {false, 0};
    if (c->running)
        return pier_error_set(PIER_EINVALID, "pier_http_do called from a completion callback");
    int rc = pier_http_submit(c, req, resp, do_done, &s);
    if (rc < 0)
        return rc;
    rc = drive(c, &s.finished, -1);
    if (rc < 0 && !s.finished) {
        /* req and resp live on the caller's stack: drop our transfer. */
        for (transfer *t = c->first; t; t = t->next) {
            if (t->req == req && t->resp == resp) {
                transfer_detach(t);
                transfer_free(t);
                break;
            }
        }
        resp->transport = PIER_HTTP_LOCAL;
        return rc;
    }
    return s.rc;
}
