/*
 * dashboard: the handler behind dashboard.h. One handler on its own
 * server: a request goes through the security gate (headers, Host, token,
 * same-origin for POST), then to the API router or the assets. The JSON
 * documents come from pipeline/report.c; this file adds only the HTTP.
 */
#include "stack/dashboard.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/server.h"
#include "pipeline/report.h"
#include "stack/webassets.h"

#define LOG_CHUNK        (256 * 1024) /* most log bytes one answer carries */
#define STREAM_WINDOW_MS 2000         /* a log stream's wait for new lines, per response */
#define STREAM_STEP_NS   100000000L

typedef struct {
    pier_handler base;                 /* first: the server's view */
    pier_state *state;                 /* the store (borrowed) */
    const pier_pipeconf *conf;         /* the pipelines (borrowed) */
    char *data_dir;                    /* DIR/.pier */
    char *edge_url;                    /* or NULL */
    char *token;                       /* required token, or NULL */
    bool loopback;                     /* the bind is loopback */
    pier_dashboard_trigger_fn trigger; /* run now, retry, redeploy */
    void *trigger_ctx;                 /* its context */
} dash_handler;

struct pier_dashboard {
    pier_server *server; /* the listener */
    dash_handler *h;     /* its handler (owned by the server) */
    char *url;           /* "http://HOST:PORT/" */
};

/* ---- helpers ---- */

static void security_headers(pier_server_req *r)
{
    pier_server_resp_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                            "base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
    pier_server_resp_header(r, "X-Content-Type-Options", "nosniff");
    pier_server_resp_header(r, "X-Frame-Options", "DENY");
    pier_server_resp_header(r, "Referrer-Policy", "same-origin");
}

static int send_error(pier_server_req *r, unsigned status, const char *msg)
{
    return pier_server_respond_json(r, status, json_pack("{s:s}", "error", msg ? msg : "error"));
}

/* The status for a failed report or trigger. */
static unsigned http_status(int rc)
{
    switch (rc) {
    case PIER_ENOTFOUND:
        return 404;
    case PIER_EINVALID:
        return 400;
    case PIER_ECONFLICT:
        return 409;
    default:
        return 500;
    }
}

/* The value of key in a raw query ("a=1&b=2") into out (NUL-terminated,
 * percent-decoding not needed for the keys served: numbers and names);
 * false when absent. */
static bool query_get(pier_slice q, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    const char *p = q.ptr, *end = q.ptr + q.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            size_t n = (size_t)(e - p) - klen - 1;
            if (n >= size)
                return false;
            memcpy(out, p + klen + 1, n);
            out[n] = 0;
            return true;
        }
        p = e + 1;
    }
    return false;
}

static bool query_u64(pier_slice q, const char *key, uint64_t *out)
{
    char v[32];
    return query_get(q, key, v, sizeof v) && pier_parse_u64(v, out) == 0;
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return true;
}

static bool token_eq(const dash_handler *h, const char *v, size_t n)
{
    size_t tl = strlen(h->token);
    return n == tl && pier_ct_equal(v, h->token, tl);
}

/* The request carries the token (Authorization: Bearer, or the cookie). */
static bool has_token(const dash_handler *h, pier_server_req *r)
{
    const char *auth = pier_server_req_header(r, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0 && token_eq(h, auth + 7, strlen(auth + 7)))
        return true;
    const char *cookie = pier_server_req_header(r, "Cookie");
    for (const char *p = cookie; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        if (n > 11 && memcmp(p, "pier_token=", 11) == 0 && token_eq(h, p + 11, n - 11))
            return true;
        p += n;
    }
    return false;
}

/* Host's name part (without the port) is a loopback name. */
static bool host_is_loopback(const char *host)
{
    if (!host)
        return false;
    char name[256];
    snprintf(name, sizeof name, "%s", host);
    char *colon = name[0] == '[' ? strstr(name, "]:") : strrchr(name, ':');
    if (colon)
        colon[name[0] == '[' ? 1 : 0] = 0;
    size_t n = strlen(name);
    return strcmp(name, "localhost") == 0 || strncmp(name, "127.", 4) == 0 ||
           strcmp(name, "[::1]") == 0 || (n > 10 && strcmp(name + n - 10, ".localhost") == 0);
}

/* A POST proves it comes from a page of this origin. */
static bool same_origin(pier_server_req *r)
{
    const char *host = pier_server_req_header(r, "Host");
    if (!host || !*host)
        return false;
    char origin[300];
    snprintf(origin, sizeof origin, "http://%s", host);
    const char *o = pier_server_req_header(r, "Origin");
    if (o)
        return strcmp(o, origin) == 0;
    const char *site = pier_server_req_header(r, "Sec-Fetch-Site");
    if (site)
        return strcmp(site, "same-origin") == 0;
    const char *ref = pier_server_req_header(r, "Referer");
    size_t n = strlen(origin);
    return ref && strncmp(ref, origin, n) == 0 && ref[n] == '/';
}

/* ---- assets ---- */

static int serve_asset(pier_server_req *r, pier_slice path, bool head)
{
    const pier_webasset *a = pier_webassets_find(path.ptr, path.len);
    if (!a) {
        /* The app's own routes all load the one page. */
        static const char *const routes[] = {"/pipelines/", "/runs/"};
        for (size_t i = 0; i < 2 && !a; i++)
            if (path.len > strlen(routes[i]) && memcmp(path.ptr, routes[i], strlen(routes[i])) == 0)
                a = pier_webassets_find("/", 1);
    }
    if (!a) {
        pier_server_resp_header(r, "Content-Type", "text/plain; charset=utf-8");
        return pier_server_respond_mem(r, 404, "not found\n", 10);
    }
    pier_server_resp_header(r, "ETag", a->etag);
    pier_server_resp_header(r, "Cache-Control", "no-cache");
    const char *inm = pier_server_req_header(r, "If-None-Match");
    if (inm && strstr(inm, a->etag))
        return pier_server_respond_mem(r, 304, "", 0);
    pier_server_resp_header(r, "Content-Type", a->content_type);
    if (head)
        return pier_server_respond_empty(r, 200, a->size);
    return pier_server_respond_static(r, 200, a->data, a->size);
}

/* ---- logs ---- */

/* The run's log path and whether it is still running; 404 answered when
 * the run is unknown (returns 1 then). */
static int run_log(dash_handler *h, pier_server_req *r, int64_t id, char **path, bool *running,
                   char *status, size_t ssize)
{
    json_t *row = NULL;
    int rc = pier_state_run_json(h->state, id, &row);
    if (rc != 0) {
        send_error(r, http_status(rc), pier_error_last());
        return 1;
    }
    const char *p = pier_json_str(row, "log_path", NULL);
    *path = p ? pier_strdup(p) : NULL;
    const char *st = pier_json_str(row, "status", "");
    *running = strcmp(st, "InProgress") == 0 || strcmp(st, "Queued") == 0;
    snprintf(status, ssize, "%s", st);
    json_decref(row);
    return 0;
}

/* Reads up to LOG_CHUNK bytes of path from offset into out; when partial
 * lines are not wanted (the run is still writing), stops after the last
 * newline. Returns the bytes taken. */
static size_t read_log(const char *path, uint64_t offset, bool whole_lines, pier_buf *out)
{
    pier_buf_reset(out);
    if (!path)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char *tmp = pier_malloc(LOG_CHUNK);
    size_t n = 0;
    if (fseeko(f, (off_t)offset, SEEK_SET) == 0)
        n = fread(tmp, 1, LOG_CHUNK, f);
    fclose(f);
    if (whole_lines && n > 0) {
        size_t k = n;
        while (k > 0 && tmp[k - 1] != '\n')
            k--;
        if (k > 0 || n < LOG_CHUNK)
            n = k;
    }
    pier_buf_put(out, tmp, n);
    free(tmp);
    return n;
}

/* Valid UTF-8 copy of text (bad bytes become U+FFFD) as a JSON string. */
static json_t *text_json(const char *s, size_t n)
{
    pier_buf b = PIER_BUF_INIT;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (ok && c == 0)
            ok = false;
        if (ok) {
            pier_buf_put(&b, s + i, len);
            i += len;
        } else {
            pier_buf_put(&b, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    json_t *j = json_stringn(b.ptr ? b.ptr : "", b.len);
    pier_buf_free(&b);
    return j ? j : json_string("");
}

static int api_log(dash_handler *h, pier_server_req *r, int64_t id)
{
    uint64_t offset = 0;
    query_u64(pier_server_req_raw_query(r), "offset", &offset);
    char *path = NULL;
    bool running = false;
    char status[32];
    if (run_log(h, r, id, &path, &running, status, sizeof status) != 0)
        return 0;
    pier_buf text = PIER_BUF_INIT;
    size_t n = read_log(path, offset, running, &text);
    json_t *doc = json_pack("{s:I, s:o, s:I, s:b, s:s}", "offset", (json_int_t)offset, "text",
                            text_json(text.ptr ? text.ptr : "", n), "next_offset",
                            (json_int_t)(offset + n), "done", !running, "status", status);
    pier_buf_free(&text);
    free(path);
    return pier_server_respond_json(r, 200, doc);
}

typedef struct {
    dash_handler *h;     /* the dashboard */
    int64_t id;          /* the run */
    uint64_t offset;     /* next log byte to send */
    pier_buf out;        /* formatted events not yet sent */
    size_t sent;         /* bytes of out already sent */
    bool done;           /* the end event is queued */
    int64_t deadline_ms; /* stop waiting after this */
} log_stream;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends one SSE event: the lines of text, id = the next offset. */
static void sse_lines(pier_buf *out, const char *text, size_t n, uint64_t next)
{
    pier_buf_printf(out, "id: %llu\n", (unsigned long long)next);
    const char *p = text, *end = text + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        pier_buf_put(out, "data: ", 6);
        for (const char *c = p; c < e; c++)
            if (*c != '\r')
                pier_buf_put(out, c, 1);
        pier_buf_put(out, "\n", 1);
        p = e + 1;
    }
    pier_buf_put(out, "\n", 1);
}

/* Fills s->out with the next events; false when the response should end. */
static bool stream_fill(log_stream *s)
{
    pier_buf_reset(&s->out);
    s->sent = 0;
    pier_buf text = PIER_BUF_INIT;
    bool more = true;
    for (;;) {
        json_t *row = NULL;
        if (pier_state_run_json(s->h->state, s->id, &row) != 0) {
            more = false;
            break;
        }
        const char *st = pier_json_str(row, "status", "");
        bool running = strcmp(st, "InProgress") == 0 || strcmp(st, "Queued") == 0;
        size_t n = read_log(pier_json_str(row, "log_path", NULL), s->offset, running, &text);
        if (n > 0) {
            s->offset += n;
            sse_lines(&s->out, text.ptr, n, s->offset);
        } else if (!running) {
            pier_buf_printf(&s->out, "id: %llu\nevent: end\ndata: %s\n\n",
                            (unsigned long long)s->offset, st);
            s->done = true;
        }
        json_decref(row);
        if (s->out.len > 0)
            break;
        if (mono_ms() >= s->deadline_ms) {
            more = false;
            break;
        }
        struct timespec ts = {0, STREAM_STEP_NS};
        nanosleep(&ts, NULL);
    }
    pier_buf_free(&text);
    return more;
}

static ssize_t stream_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
    log_stream *s = ctx;
    if (s->sent == s->out.len) {
        if (s->done || !stream_fill(s))
            return 0;
    }
    size_t n = s->out.len - s->sent;
    if (n > max)
        n = max;
    memcpy(buf, s->out.ptr + s->sent, n);
    s->sent += n;
    return (ssize_t)n;
}

static void stream_free(void *ctx)
{
    log_stream *s = ctx;
    pier_buf_free(&s->out);
    free(s);
}

static int api_log_stream(dash_handler *h, pier_server_req *r, int64_t id)
{
    uint64_t offset = 0;
    const char *last = pier_server_req_header(r, "Last-Event-ID");
    if (!(last && pier_parse_u64(last, &offset) == 0))
        query_u64(pier_server_req_raw_query(r), "offset", &offset);
    json_t *row = NULL;
    int rc = pier_state_run_json(h->state, id, &row);
    if (rc != 0)
        return send_error(r, http_status(rc), pier_error_last());
    json_decref(row);
    log_stream *s = pier_calloc(1, sizeof *s);
    s->h = h;
    s->id = id;
    s->offset = offset;
    pier_buf_init(&s->out, (size_t)LOG_CHUNK * 8);
    pier_buf_printf(&s->out, "retry: 300\n\n"); /* reconnect soon after a window ends */
    s->deadline_ms = mono_ms() + STREAM_WINDOW_MS;
    pier_server_resp_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    pier_server_resp_header(r, "Cache-Control", "no-store");
    return pier_server_respond_stream(r, 200, -1, stream_read, s, stream_free);
}

/* ---- actions ---- */

typedef struct {
    dash_handler *h;   /* the dashboard */
    char pipeline[72]; /* run now: the pipeline */
    int64_t run;       /* retry, redeploy: the run */
    const char *kind;  /* "manual", "retry" or "redeploy" */
} action_req;

static void action_end(pier_server_req *r, void *ctx)
{
    action_req *a = ctx;
    dash_handler *h = a->h;
    char pipeline[72], sha[48] = "";
    snprintf(pipeline, sizeof pipeline, "%s", a->pipeline);
    if (a->run > 0) {
        json_t *row = NULL;
        int rc = pier_state_run_json(h->state, a->run, &row);
        if (rc != 0) {
            send_error(r, http_status(rc), pier_error_last());
            return;
        }
        snprintf(pipeline, sizeof pipeline, "%s", pier_json_str(row, "pipeline", ""));
        snprintf(sha, sizeof sha, "%s", pier_json_str(row, "to_commit", ""));
        const char *st = pier_json_str(row, "status", "");
        bool ok = true;
        char msg[200] = "";
        if (strcmp(a->kind, "redeploy") == 0 &&
            (!sha[0] || (strcmp(st, "Succeeded") != 0 && strcmp(st, "Skipped") != 0))) {
            ok = false;
            snprintf(msg, sizeof msg,
                     "run %lld is %s: only a Succeeded or Skipped run's commit can be redeployed",
                     (long long)a->run, st);
        } else if (strcmp(st, "InProgress") == 0 || strcmp(st, "Queued") == 0) {
            ok = false;
            snprintf(msg, sizeof msg, "run %lld is still %s", (long long)a->run, st);
        }
        json_decref(row);
        if (!ok) {
            send_error(r, 409, msg);
            return;
        }
    }
    int64_t id = 0;
    int rc = h->trigger(h->trigger_ctx, pipeline, a->kind, sha[0] ? sha : NULL, &id);
    if (rc != 0) {
        send_error(r, rc == PIER_ENOTFOUND ? 404 : 503, pier_error_last());
        return;
    }
    json_t *doc = json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)id, "pipeline", pipeline,
                            "trigger", a->kind, "commit", sha[0] ? json_string(sha) : json_null());
    pier_server_respond_json(r, 202, doc);
}

/* ---- routing ---- */

/* Splits "/api/a/b/c" after "/api/" into up to 4 segments. */
static size_t segments(pier_slice path, pier_slice seg[4])
{
    const char *p = path.ptr + 5, *end = path.ptr + path.len;
    size_t n = 0;
    while (p < end && n < 4) {
        const char *sl = memchr(p, '/', (size_t)(end - p));
        const char *e = sl ? sl : end;
        seg[n++] = (pier_slice){p, (size_t)(e - p)};
        p = e + 1;
        if (!sl)
            break;
    }
    if (p < end)
        return 5; /* too many */
    return n;
}

static int parse_id(pier_slice s, int64_t *id)
{
    char v[24];
    uint64_t u = 0;
    if (s.len == 0 || s.len >= sizeof v)
        return -1;
    memcpy(v, s.ptr, s.len);
    v[s.len] = 0;
    if (pier_parse_u64(v, &u) != 0 || u == 0 || u > INT64_MAX)
        return -1;
    *id = (int64_t)u;
    return 0;
}

static int api_get(dash_handler *h, pier_server_req *r, pier_slice *seg, size_t n)
{
    pier_report_ctx c = {h->state, h->conf, h->data_dir, h->edge_url};
    pier_slice q = pier_server_req_raw_query(r);
    uint64_t limit = 20, before = 0;
    query_u64(q, "limit", &limit);
    query_u64(q, "before", &before);
    if (limit > PIER_REPORT_MAX_LIMIT)
        limit = PIER_REPORT_MAX_LIMIT;
    if (before > INT64_MAX)
        before = 0;
    json_t *doc = NULL;
    int rc = PIER_ENOTFOUND;
    char name[72];
    pier_error_set(PIER_ENOTFOUND, "no such API path (see docs/api.md)");
    if (n == 1 && pier_slice_eq_cstr(seg[0], "status")) {
        char pipe[72];
        bool has = query_get(q, "pipeline", pipe, sizeof pipe);
        rc = pier_report_status(&doc, &c, has ? pipe : NULL, (int)limit);
    } else if (pier_slice_eq_cstr(seg[0], "pipelines")) {
        if (n == 1) {
            json_t *a = NULL;
            if ((rc = pier_report_pipelines(&a, &c)) == 0)
                doc = json_pack("{s:o}", "pipelines", a);
        } else if (n >= 2 && n <= 3 && valid_name(seg[1].ptr, seg[1].len)) {
            snprintf(name, sizeof name, "%.*s", (int)seg[1].len, seg[1].ptr);
            if (n == 2)
                rc = pier_report_pipeline(&doc, &c, name);
            else if (pier_slice_eq_cstr(seg[2], "runs") &&
                     (rc = pier_report_pipeline(&doc, &c, name)) == 0) {
                json_decref(doc);
                doc = NULL;
                rc = pier_report_runs(&doc, &c, name, (int)limit, (int64_t)before);
            }
        }
    } else if (pier_slice_eq_cstr(seg[0], "runs")) {
        int64_t id = 0;
        if (n == 1) {
            char pipe[72];
            bool has = query_get(q, "pipeline", pipe, sizeof pipe);
            rc = pier_report_runs(&doc, &c, has ? pipe : NULL, (int)limit, (int64_t)before);
        } else if (parse_id(seg[1], &id) != 0) {
            pier_error_set(PIER_ENOTFOUND, "'%.*s' is not a run id", (int)seg[1].len, seg[1].ptr);
        } else if (n == 2) {
            rc = pier_report_run(&doc, &c, id);
        } else if (n == 3 && pier_slice_eq_cstr(seg[2], "log")) {
            return api_log(h, r, id);
        } else if (n == 4 && pier_slice_eq_cstr(seg[2], "log") &&
                   pier_slice_eq_cstr(seg[3], "stream")) {
            return api_log_stream(h, r, id);
        }
    }
    if (rc != 0)
        return send_error(r, http_status(rc), pier_error_last());
    return pier_server_respond_json(r, 200, doc);
}

static int api_post(dash_handler *h, pier_server_req *r, pier_slice *seg, size_t n)
{
    action_req *a = pier_server_req_alloc(r, sizeof *a);
    memset(a, 0, sizeof *a);
    a->h = h;
    if (n == 3 && pier_slice_eq_cstr(seg[0], "pipelines") && pier_slice_eq_cstr(seg[2], "runs") &&
        valid_name(seg[1].ptr, seg[1].len)) {
        snprintf(a->pipeline, sizeof a->pipeline, "%.*s", (int)seg[1].len, seg[1].ptr);
        if (h->conf && !pier_pipeconf_find(h->conf, a->pipeline))
            return send_error(r, 404, "no such pipeline");
        a->kind = "manual";
    } else if (n == 3 && pier_slice_eq_cstr(seg[0], "runs") && parse_id(seg[1], &a->run) == 0 &&
               (pier_slice_eq_cstr(seg[2], "retry") || pier_slice_eq_cstr(seg[2], "redeploy"))) {
        a->kind = pier_slice_eq_cstr(seg[2], "retry") ? "retry" : "redeploy";
    } else {
        return send_error(r, 404, "no such action (see docs/api.md)");
    }
    if (!h->trigger)
        return send_error(r, 503, "this dashboard cannot start runs");
    int64_t len = pier_server_req_content_length(r);
    if (len > 4096)
        return send_error(r, 413, "actions take no body");
    pier_server_req_read_body(r, NULL, action_end, a);
    return 0;
}

static int on_req(pier_handler *self, pier_server_req *r)
{
    dash_handler *h = (dash_handler *)self;
    security_headers(r);
    const char *method = pier_server_req_method(r);
    pier_slice path = pier_server_req_raw_path(r);
    bool get = strcmp(method, "GET") == 0, head = strcmp(method, "HEAD") == 0,
         post = strcmp(method, "POST") == 0;
    if (!get && !head && !post) {
        pier_server_resp_header(r, "Allow", "GET, HEAD, POST");
        return send_error(r, 405, "method not allowed");
    }
    if (h->loopback && !host_is_loopback(pier_server_req_header(r, "Host")))
        return send_error(r, 403, "the dashboard is bound to loopback: use 127.0.0.1 or localhost");
    if (h->token && !has_token(h, r)) {
        char tok[160];
        if (get && query_get(pier_server_req_raw_query(r), "token", tok, sizeof tok) &&
            token_eq(h, tok, strlen(tok))) {
            /* Visiting a page with ?token= swaps it for a cookie. */
            pier_buf c = PIER_BUF_INIT;
            pier_buf_printf(&c, "pier_token=%s; Path=/; HttpOnly; SameSite=Strict", h->token);
            pier_server_resp_header(r, "Set-Cookie", pier_buf_cstr(&c));
            pier_buf_free(&c);
            char *loc = pier_server_req_strndup(r, path.ptr, path.len);
            pier_server_resp_header(r, "Location", loc);
            return pier_server_respond_mem(r, 303, "", 0);
        }
        pier_server_resp_header(r, "WWW-Authenticate", "Bearer realm=\"pier\"");
        return send_error(r, 401,
                          "this dashboard needs its token: open /?token=TOKEN once, or send "
                          "Authorization: Bearer TOKEN (the token is in the data dir's "
                          "dashboard.token)");
    }
    if (post && !same_origin(r))
        return send_error(r, 403,
                          "cross-origin request refused (Origin, Sec-Fetch-Site or "
                          "Referer must name this dashboard)");
    bool api = path.len >= 5 && memcmp(path.ptr, "/api/", 5) == 0;
    if (!api) {
        if (post)
            return send_error(r, 405, "method not allowed");
        return serve_asset(r, path, head);
    }
    pier_slice seg[4] = {{0}};
    size_t n = segments(path, seg);
    if (n == 0 || n > 4)
        return send_error(r, 404, "no such API path (see docs/api.md)");
    if (post)
        return api_post(h, r, seg, n);
    return api_get(h, r, seg, n);
}

static void dispose(pier_handler *self)
{
    dash_handler *h = (dash_handler *)self;
    free(h->data_dir);
    free(h->edge_url);
    free(h->token);
    free(h);
}

/* ---- public ---- */

bool pier_dashboard_listen_is_loopback(const char *listen)
{
    if (!listen)
        return false;
    char host[256];
    snprintf(host, sizeof host, "%s", listen);
    char *colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
    if (colon)
        colon[host[0] == '[' ? 1 : 0] = 0;
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

int pier_dashboard_token(const char *path, char **token, bool *created)
{
    pier_buf b = PIER_BUF_INIT;
    *created = false;
    int rc = pier_file_read(path, &b);
    if (rc == 0) {
        size_t n = b.len;
        while (n > 0 && (b.ptr[n - 1] == '\n' || b.ptr[n - 1] == '\r' || b.ptr[n - 1] == ' '))
            n--;
        pier_buf_truncate(&b, n);
        if (n >= 16) {
            *token = pier_buf_detach(&b);
            return 0;
        }
        pier_buf_free(&b);
        return pier_error_set(PIER_EINVALID, "%s: the dashboard token is too short (16+ chars)",
                              path);
    }
    pier_buf_free(&b);
    if (rc != PIER_ENOTFOUND)
        return rc;
    pier_error_clear();
    unsigned char raw[32];
    char hex[65];
    pier_random_bytes(raw, sizeof raw);
    pier_hex_encode(hex, raw, sizeof raw);
    if ((rc = pier_file_write_atomic(path, hex, 64, 0600)) != 0)
        return rc;
    *token = pier_strdup(hex);
    *created = true;
    return 0;
}

int pier_dashboard_start(pier_dashboard **out, const pier_dashboard_options *o)
{
    bool loopback = pier_dashboard_listen_is_loopback(o->listen);
    if (!loopback && !(o->token && *o->token))
        return pier_error_set(PIER_EINVALID, "dashboard on %s (not loopback) needs a token",
                              o->listen);
    dash_handler *h = pier_calloc(1, sizeof *h);
    h->base.on_req = on_req;
    h->base.dispose = dispose;
    h->state = o->state;
    h->conf = o->conf;
    h->data_dir = o->data_dir ? pier_strdup(o->data_dir) : NULL;
    h->edge_url = o->edge_url ? pier_strdup(o->edge_url) : NULL;
    h->token = !loopback ? pier_strdup(o->token) : NULL;
    h->loopback = loopback;
    h->trigger = o->trigger;
    h->trigger_ctx = o->trigger_ctx;
    pier_dashboard *d = pier_calloc(1, sizeof *d);
    d->h = h;
    pier_server_options so = {0};
    so.listen = o->listen;
    so.threads = 8;
    so.memory_limit = 64 * 1024;
    int rc = pier_server_new(&d->server, &so);
    if (rc != 0) {
        dispose(&h->base);
        free(d);
        return rc;
    }
    pier_server_add(d->server, NULL, &h->base);
    if ((rc = pier_server_start(d->server)) != 0) {
        pier_dashboard_free(d);
        return pier_error_wrap(rc, "dashboard");
    }
    pier_buf u = PIER_BUF_INIT;
    pier_buf_printf(&u, "%s/", pier_server_url(d->server));
    d->url = pier_buf_detach(&u);
    *out = d;
    return 0;
}

void pier_dashboard_free(pier_dashboard *d)
{
    if (!d)
        return;
    pier_server_free(d->server);
    free(d->url);
    free(d);
}

const char *pier_dashboard_url(const pier_dashboard *d)
{
    return d->url;
}

bool pier_dashboard_needs_token(const pier_dashboard *d)
{
    return d->h->token != NULL;
}
