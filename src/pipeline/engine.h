/*
 * engine: the pipelines' execution state machine.
 *
 * A run goes SOURCE -> BUILD -> SECRET SCAN -> DEPLOY -> INVALIDATE ->
 * ACTIONS, recorded step by step in the state store:
 *   SOURCE      fetch the branch into <data>/git/<pipeline>.git, resolve the
 *               tip, compare it with the last DEPLOYED commit through the
 *               pipeline's globs; nothing matched -> the run is Skipped with
 *               the reason (no build);
 *   BUILD       check the commit out into <data>/work/<run-id>, run the
 *               buildspec with the CODEBUILD_* variables, the secrets and the
 *               stack's container credentials; log in <data>/logs/<run-id>.log;
 *   SCAN        the artifact is scanned for the secrets' values;
 *   DEPLOY      the artifact goes to the pipeline's bucket/prefix (hook);
 *   INVALIDATE  the changed paths are invalidated and waited for (hook); only
 *               then does the last deployed commit advance;
 *   ACTIONS     invoke actions (hook), when the pipeline has any.
 *
 * Threads: one worker per pipeline runs its runs one at a time; a trigger
 * that arrives while a run is waiting replaces it (the waiting run becomes
 * Superseded, as CodePipeline's SUPERSEDED mode); a poller per pipeline with
 * polling fetches every interval and triggers when the tip moved. Stop
 * cancels a running build and joins every thread.
 *
 * The engine sits below the stack: what touches the stack (credentials,
 * deploy, invalidation, actions) comes in through pier_engine_hooks, which
 * the CLI wires to the embedded stack (or to AWS).
 *
 * Ownership: the engine borrows the config and the state store, which must
 * outlive it.
 */
#ifndef PIER_ENGINE_H
#define PIER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "pipeline/pipeconf.h"
#include "pipeline/state.h"

/* What the stack hands a build: container credentials and endpoints. */
typedef struct {
    char *credentials_uri;       /* AWS_CONTAINER_CREDENTIALS_FULL_URI, or NULL */
    char *credentials_token;     /* AWS_CONTAINER_AUTHORIZATION_TOKEN, or NULL (masked in logs) */
    char *s3_endpoint;           /* AWS_ENDPOINT_URL_S3, or NULL */
    char *cloudfront_endpoint;   /* AWS_ENDPOINT_URL_CLOUDFRONT, or NULL */
    char *codepipeline_endpoint; /* AWS_ENDPOINT_URL_CODEPIPELINE, or NULL */
} pier_engine_grant;

void pier_engine_grant_clear(pier_engine_grant *g);

/* What a deploy did. paths are the invalidation paths (owned). */
typedef struct {
    int64_t uploaded;  /* objects uploaded */
    int64_t skipped;   /* unchanged */
    int64_t deleted;   /* removed */
    int64_t bytes;     /* uploaded bytes */
    char **paths;      /* invalidation paths */
    size_t path_count; /* their number */
    char *summary;     /* one line for the log, or NULL */
} pier_engine_deploy_result;

void pier_engine_deploy_result_clear(pier_engine_deploy_result *r);

/* One run, as the hooks see it. */
typedef struct {
    const pier_pipeconf_pipeline *pipeline;       /* its pipeline */
    int64_t id;                                   /* run id */
    const char *build_id;                         /* "<pipeline>:<id>" */
    const char *commit;                           /* the commit being deployed */
    FILE *log;                                    /* the run's log (lines are timestamped by
                                                     pier_engine_log) */
    void (*mask)(void *mask_ctx, pier_buf *text); /* replaces the run's secret values (and
                                                     the build's credentials token) with *** */
    void *mask_ctx;                               /* its context */
} pier_engine_run;

typedef struct {
    void *ctx; /* handed to every hook */
    /* Short-lived credentials and endpoints for a build (or NULL: none). */
    int (*grant)(void *ctx, const pier_engine_run *run, pier_engine_grant *out);
    /* Publishes dir to the pipeline's bucket/prefix; fills out. */
    int (*deploy)(void *ctx, const pier_engine_run *run, const char *dir,
                  pier_engine_deploy_result *out);
    /* Invalidates paths (caller_reference is the idempotency token) and waits;
     * *invalidation_id gets the id (owned). */
    int (*invalidate)(void *ctx, const pier_engine_run *run, char *const *paths, size_t n,
                      const char *caller_reference, char **invalidation_id);
    /* Runs one invoke action; 0 when it reported success. */
    int (*action)(void *ctx, const pier_engine_run *run, const pier_pipeconf_action *action,
                  const char *artifact_dir);
} pier_engine_hooks;

typedef struct {
    const char *data_dir;      /* git/, work/, logs/, cache/ go here */
    const pier_pipeconf *conf; /* the pipelines (borrowed) */
    pier_state *state;         /* the store (borrowed) */
    pier_engine_hooks hooks;   /* the stack side */
    bool no_poll;              /* do not start pollers */
    bool keep_work;            /* keep <data>/work/<id> after a run */
} pier_engine_options;

typedef struct pier_engine pier_engine;

int pier_engine_start(pier_engine **out, const pier_engine_options *opts);
/* Cancels a running build, stops the threads and frees. Accepts NULL. */
void pier_engine_stop(pier_engine *e);

/* Queues a run of pipeline (trigger: webhook|poll|manual|retry|redeploy;
 * sha: the commit to build, or NULL for the branch tip). *run_id (may be
 * NULL) gets its id. A run still waiting for this pipeline is superseded.
 * PIER_ENOTFOUND for an unknown pipeline. */
int pier_engine_trigger(pier_engine *e, const char *pipeline, const char *trigger, const char *sha,
                        int64_t *run_id);
/* True for the triggers whose run builds and deploys its commit even when
 * no watched path changed since the last deployed commit ("redeploy": a
 * rollback to, or a re-publication of, a given commit). */
bool pier_engine_trigger_forces_build(const char *trigger);
/* Waits until run_id has ended (or timeout_ms, 0 = forever: PIER_ETIMEOUT);
 * *status (may be NULL) gets its status. */
int pier_engine_wait(pier_engine *e, int64_t run_id, long timeout_ms, pier_run_status *status);

/* Writes "<ISO time> [pier] <message>" to log and flushes. */
void pier_engine_log(FILE *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
