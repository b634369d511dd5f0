/*
 * dashboard: the pages and JSON API of `pier up`, on their own listener
 * (default 127.0.0.1:9090). docs/api.md is the reference.
 *
 *   GET  /, /pipelines/<name>, /runs/<id>   the page (web/index.html; the
 *                                           app routes on the client)
 *   GET  /<asset>                           web/ files (ETag, 304)
 *   GET  /api/status                        = `pier status --json`
 *   GET  /api/pipelines[/<name>[/runs]]     summaries, a pipeline's runs
 *   GET  /api/runs[?pipeline=]              runs pages (?limit=&before=)
 *   GET  /api/runs/<id>                     a run with stages
 *   GET  /api/runs/<id>/log?offset=N        log text from N (JSON)
 *   GET  /api/runs/<id>/log/stream          the same as server-sent events
 *   POST /api/pipelines/<name>/runs         run now
 *   POST /api/runs/<id>/retry               the run's commit again
 *   POST /api/runs/<id>/redeploy            build and deploy that commit
 *
 * Security: every response has a Content-Security-Policy (default-src
 * 'self'), nosniff and X-Frame-Options DENY. Bound to loopback, requests
 * need no token but their Host must be a loopback name (no DNS rebinding);
 * bound elsewhere, every request needs `Authorization: Bearer TOKEN` or
 * the cookie that visiting /?token=TOKEN sets. Every POST also needs a
 * same-origin proof (Origin, else Sec-Fetch-Site, else Referer matching
 * Host). No secret is served: the reports never carry one and logs are
 * masked when written; log text goes out as JSON strings or SSE data.
 *
 * Costs: a log stream holds a server worker while it waits for new lines,
 * at most ~2 s per response (the browser reconnects with Last-Event-ID),
 * so the listener runs several workers.
 *
 * Ownership: the dashboard borrows the store and config (they must outlive
 * it) and copies the strings of its options.
 */
#ifndef PIER_DASHBOARD_H
#define PIER_DASHBOARD_H

#include <stdbool.h>
#include <stdint.h>

#include "pipeline/pipeconf.h"
#include "pipeline/state.h"

/* Queues a run (pier_engine_trigger's shape with a context). */
typedef int (*pier_dashboard_trigger_fn)(void *ctx, const char *pipeline, const char *trigger,
                                         const char *sha, int64_t *run_id);

typedef struct {
    const char *listen;                /* HOST:PORT (port 0 = any) */
    pier_state *state;                 /* the store (borrowed) */
    const pier_pipeconf *conf;         /* the pipelines (borrowed) */
    const char *data_dir;              /* DIR/.pier (git mirrors) */
    const char *edge_url;              /* the edge listener's URL, or NULL */
    const char *token;                 /* required when the bind is not loopback */
    pier_dashboard_trigger_fn trigger; /* run now, retry, redeploy */
    void *trigger_ctx;                 /* its context */
} pier_dashboard_options;

typedef struct pier_dashboard pier_dashboard;

/* Starts the listener. A non-loopback listen without a token is
 * PIER_EINVALID. Errors name the address. */
int pier_dashboard_start(pier_dashboard **out, const pier_dashboard_options *opts);
/* Stops the listener and frees. Accepts NULL. */
void pier_dashboard_free(pier_dashboard *d);
/* "http://HOST:PORT/" (borrowed). */
const char *pier_dashboard_url(const pier_dashboard *d);
/* True when the token is required (the bind is not loopback). */
bool pier_dashboard_needs_token(const pier_dashboard *d);

/* True when HOST of HOST:PORT is a loopback address or name. */
bool pier_dashboard_listen_is_loopback(const char *listen);
/* Reads the token at path, or makes one (32 random bytes, hex) and writes
 * it 0600; *created says which. *token is owned. */
int pier_dashboard_token(const char *path, char **token, bool *created);

#endif
