/*
 * webhookhttp: POST /_pier/webhooks/<pipeline> (see webhookhttp.h).
 *
 * Per request: the pipeline's secret and branch are looked up once the
 * headers are in (so an unknown pipeline costs nothing); the body is
 * collected into a capped buffer; on_end authenticates it raw, then parses
 * and decides. The secret copy is wiped and freed when the request ends,
 * however it ends. Cost: one HMAC and one JSON parse per delivery.
 */
#include "stack/webhookhttp.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "source/webhook.h"

typedef struct {
    pier_handler base;             /* must be first */
    pier_webhookhttp_options opts; /* copied */
} webhook_handler;

typedef struct {
    webhook_handler *h; /* the handler */
    char *pipeline;     /* decoded name (request memory) */
    char *secret;       /* from lookup (owned; wiped) */
    char *branch;       /* from lookup (owned) */
    pier_buf body;      /* the raw body, capped */
    bool too_big;       /* the cap was hit */
} webhook_req;

static int respond_error(pier_server_req *r, unsigned status, const char *message)
{
    return pier_server_respond_json(r, status,
                                    json_pack("{s:s, s:s}", "status", "error", "message", message));
}

static void req_done(pier_server_req *r, void *ctx)
{
    (void)r;
    webhook_req *w = ctx;
    if (w->secret) {
        memset(w->secret, 0, strlen(w->secret));
        free(w->secret);
    }
    free(w->branch);
    pier_buf_free(&w->body);
}

static int on_body(pier_server_req *r, void *ctx, const char *data, size_t n)
{
    (void)r;
    webhook_req *w = ctx;
    if (w->too_big)
        return 1;
    if (pier_buf_put(&w->body, data, n) < 0) {
        w->too_big = true;
        return 1;
    }
    return 0;
}

static const char *header_of(void *ctx, const char *name)
{
    return pier_server_req_header(ctx, name);
}

/* The event header's value for provider (what pier_webhook_parse wants). */
static const char *event_header(pier_server_req *r, pier_webhook_provider p)
{
    static const char *const gitea[] = {"X-Gitea-Event", "X-Forgejo-Event", "X-Gogs-Event",
                                        "X-GitHub-Event"};
    switch (p) {
    case PIER_WEBHOOK_GITLAB:
        return pier_server_req_header(r, "X-Gitlab-Event");
    case PIER_WEBHOOK_GITEA:
        for (size_t i = 0; i < sizeof gitea / sizeof *gitea; i++) {
            const char *v = pier_server_req_header(r, gitea[i]);
            if (v)
                return v;
        }
        return NULL;
    default:
        return pier_server_req_header(r, "X-GitHub-Event");
    }
}

static void on_end(pier_server_req *r, void *ctx)
{
    webhook_req *w = ctx;
    webhook_handler *h = w->h;
    pier_webhook_event *ev = NULL;
    pier_webhook_provider provider;
    char msg[512];

    if (w->too_big) {
        snprintf(msg, sizeof msg, "webhook payload for pipeline %s is over %zu bytes", w->pipeline,
                 w->body.max);
        respond_error(r, 413, msg);
        goto done;
    }
    /* Authenticity first, over the raw bytes. */
    if (pier_webhook_detect(&provider, header_of, r) < 0 ||
        pier_webhook_verify(provider, w->secret, header_of, r, w->body.ptr, w->body.len) < 0) {
        PIER_WARN("webhook for pipeline %s from %s refused: %s", w->pipeline,
                  pier_server_req_client(r), pier_error_last());
        snprintf(msg, sizeof msg, "webhook for pipeline %s: %s", w->pipeline, pier_error_last());
        respond_error(r, 401, msg);
        goto done;
    }
    if (pier_webhook_parse(&ev, provider, event_header(r, provider), w->body.ptr, w->body.len) <
        0) {
        snprintf(msg, sizeof msg, "webhook for pipeline %s: %s", w->pipeline, pier_error_last());
        respond_error(r, 400, msg);
        goto done;
    }
    if (ev->kind == PIER_WEBHOOK_PING) {
        pier_server_respond_json(
            r, 200, json_pack("{s:s, s:s}", "status", "pong", "pipeline", w->pipeline));
        goto done;
    }
    if (ev->kind != PIER_WEBHOOK_PUSH) {
        snprintf(msg, sizeof msg, "event '%s' is not a push", ev->event ? ev->event : "?");
        pier_server_respond_json(r, 200,
                                 json_pack("{s:s, s:s}", "status", "ignored", "reason", msg));
        goto done;
    }
    if (ev->ref_kind != PIER_REF_BRANCH || !w->branch || strcmp(ev->name, w->branch) != 0) {
        snprintf(msg, sizeof msg, "push to %s; pipeline %s watches refs/heads/%s", ev->ref,
                 w->pipeline, w->branch ? w->branch : "?");
        pier_server_respond_json(r, 200,
                                 json_pack("{s:s, s:s}", "status", "ignored", "reason", msg));
        goto done;
    }
    if (ev->deleted) {
        snprintf(msg, sizeof msg, "branch %s was deleted; nothing to build", ev->name);
        pier_server_respond_json(r, 200,
                                 json_pack("{s:s, s:s}", "status", "ignored", "reason", msg));
        goto done;
    }
    int64_t run_id = 0;
    if (h->opts.trigger(h->opts.trigger_ctx, w->pipeline, "webhook", ev->after, &run_id) < 0) {
        snprintf(msg, sizeof msg, "pipeline %s: could not start a run: %s", w->pipeline,
                 pier_error_last());
        respond_error(r, 503, msg);
        goto done;
    }
    PIER_INFO("webhook: pipeline %s triggered for %s (run %lld)", w->pipeline, ev->after,
              (long long)run_id);
    pier_server_respond_json(r, 202,
                             json_pack("{s:s, s:s, s:s, s:I}", "status", "accepted", "pipeline",
                                       w->pipeline, "commit", ev->after, "run",
                                       (json_int_t)run_id));
done:
    pier_webhook_event_free(ev);
}

static int on_req(pier_handler *self, pier_server_req *r)
{
    webhook_handler *h = (webhook_handler *)self;
    pier_slice path = pier_server_req_raw_path(r);
    size_t plen = strlen(PIER_WEBHOOKHTTP_PREFIX);
    pier_buf name = PIER_BUF_INIT;
    char msg[512];
    int rc = 0;

    pier_buf_init(&name, 256);
    if (path.len <= plen || memchr(path.ptr + plen, '/', path.len - plen) ||
        pier_uri_decode(&name, path.ptr + plen, path.len - plen, false) < 0 || name.len == 0 ||
        strchr(name.ptr, '/')) {
        rc = respond_error(r, 404, "no such webhook: use POST /_pier/webhooks/<pipeline>");
        goto done;
    }
    webhook_req *w = pier_server_req_alloc(r, sizeof *w);
    memset(w, 0, sizeof *w);
    w->h = h;
    w->pipeline = pier_server_req_strndup(r, name.ptr, name.len);
    pier_buf_init(&w->body, h->opts.max_body);
    pier_server_req_on_done(r, req_done, w);

    int lrc = h->opts.lookup(h->opts.lookup_ctx, w->pipeline, &w->secret, &w->branch);
    if (lrc == PIER_ENOTFOUND) {
        snprintf(msg, sizeof msg, "no pipeline named %s", w->pipeline);
        rc = respond_error(r, 404, msg);
        goto done;
    }
    if (lrc < 0) {
        rc = respond_error(r, 500, pier_error_last());
        goto done;
    }
    if (strcmp(pier_server_req_method(r), "POST") != 0) {
        pier_server_resp_header(r, "Allow", "POST");
        rc = respond_error(r, 405, "webhooks take POST");
        goto done;
    }
    int64_t declared = pier_server_req_content_length(r);
    if (declared > 0 && (uint64_t)declared > h->opts.max_body) {
        snprintf(msg, sizeof msg, "webhook payload for pipeline %s is over %zu bytes", w->pipeline,
                 h->opts.max_body);
        rc = respond_error(r, 413, msg);
        goto done;
    }
    pier_server_req_read_body(r, on_body, on_end, w);
done:
    pier_buf_free(&name);
    return rc;
}

static void dispose(pier_handler *self)
{
    free(self);
}

pier_handler *pier_webhookhttp_new(const pier_webhookhttp_options *opts)
{
    webhook_handler *h = pier_calloc(1, sizeof *h);
    h->base.on_req = on_req;
    h->base.dispose = dispose;
    h->opts = *opts;
    if (h->opts.max_body == 0)
        h->opts.max_body = PIER_WEBHOOKHTTP_MAX_BODY;
    return &h->base;
}

void pier_webhookhttp_register(pier_server *srv, const pier_webhookhttp_options *opts)
{
    pier_server_match m = {.host = NULL, .path_prefix = PIER_WEBHOOKHTTP_PREFIX};
    pier_server_add(srv, &m, pier_webhookhttp_new(opts));
}
