/*
 * webhookhttp: the webhook endpoint of the API listener,
 *   POST /_pier/webhooks/<pipeline>
 * taking GitHub, GitLab and Gitea/Forgejo push events (src/source/webhook.h).
 *
 * One request:
 *   1. unknown pipeline -> 404; not POST -> 405; a declared body over the
 *      cap -> 413 before any byte is read;
 *   2. the raw body is collected (cap: 25 MiB, GitHub's maximum payload);
 *   3. the sender is detected from its event header and the signature or
 *      token checked over the RAW bytes, before any parsing; no event
 *      header, or a missing, malformed or wrong signature -> 401 and nothing
 *      runs (the body is never parsed);
 *   4. then parsed: bad JSON or a push without ref/after -> 400;
 *      ping -> 200 {"status":"pong"}; any other event -> 200 "ignored";
 *      a push that deletes the branch (after = 40 zeros), or to another
 *      branch or a tag -> 200 {"status":"ignored","reason":...};
 *      a push to the watched branch -> trigger(pipeline, "webhook", after)
 *      once, then 202 {"status":"accepted","pipeline","commit","run"}.
 *   A trigger failure -> 503 with its message. Every answer is JSON.
 *
 * Seams (the engine provides both; they run on server worker threads,
 * concurrently, so they must be thread-safe):
 *   lookup  finds the pipeline's webhook secret and watched branch;
 *   trigger starts a run; its shape is pier_engine_trigger's with a void *
 *           context, so the wiring is a one-line wrapper.
 *
 * Routing: register with pier_webhookhttp_register (path prefix
 * PIER_WEBHOOKHTTP_PREFIX); it must be added to the API server BEFORE the
 * S3 API, which takes every request (first match wins).
 *
 * Ownership: the options are copied; the callbacks' contexts are borrowed
 * and must outlive the server.
 */
#ifndef PIER_WEBHOOKHTTP_H
#define PIER_WEBHOOKHTTP_H

#include <stddef.h>
#include <stdint.h>

#include "net/server.h"

#define PIER_WEBHOOKHTTP_PREFIX   "/_pier/webhooks/"
#define PIER_WEBHOOKHTTP_MAX_BODY ((size_t)25 << 20) /* GitHub caps payloads at 25 MB */

/* Fills *secret and *branch (malloc'ed; the handler frees them, wiping the
 * secret) for pipeline. Returns 0, PIER_ENOTFOUND for an unknown pipeline,
 * or another negative code (answered 500). A NULL *secret (no secret
 * configured) makes every request 401. */
typedef int (*pier_webhookhttp_lookup_fn)(void *ctx, const char *pipeline, char **secret,
                                          char **branch);

/* Starts a run of pipeline for commit sha with trigger "webhook"; *run_id
 * gets its id (may stay 0). Returns 0 or a negative code. */
typedef int (*pier_webhookhttp_trigger_fn)(void *ctx, const char *pipeline, const char *trigger,
                                           const char *sha, int64_t *run_id);

typedef struct {
    pier_webhookhttp_lookup_fn lookup;   /* required */
    void *lookup_ctx;                    /* its context */
    pier_webhookhttp_trigger_fn trigger; /* required */
    void *trigger_ctx;                   /* its context */
    size_t max_body;                     /* 0 = PIER_WEBHOOKHTTP_MAX_BODY */
} pier_webhookhttp_options;

/* A handler (the server takes ownership when added). */
pier_handler *pier_webhookhttp_new(const pier_webhookhttp_options *opts);
/* pier_webhookhttp_new + pier_server_add with path_prefix
 * PIER_WEBHOOKHTTP_PREFIX. Call before adding the S3 API. */
void pier_webhookhttp_register(pier_server *srv, const pier_webhookhttp_options *opts);

#endif
