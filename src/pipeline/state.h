/*
 * state: the pipelines' SQLite store (the only file that includes sqlite3.h).
 *
 * Tables
 *   pipelines(name, last_deployed, last_deployed_run, updated_ms)
 *   runs(id, pipeline, trigger, from_commit, to_commit, status, reason,
 *        created_ms, started_ms, ended_ms, log_path, uploaded, skipped,
 *        deleted, bytes, invalidation_id, invalidation_paths (JSON),
 *        changed_files (JSON))
 *   stages(run_id, name, status, started_ms, ended_ms, message)
 *
 * Invariants: the last deployed commit of a pipeline moves only through
 * pier_state_mark_deployed (the engine calls it after the invalidation
 * succeeded); after pier_state_recover no run is InProgress or Queued
 * (they become Failed, reason "interrupted"). Secrets are never handed to
 * this module (the engine masks messages before they get here).
 *
 * WAL mode, a 5 s busy timeout, every change in one transaction. One
 * connection per pier_state, serialized by SQLite's own mutex (FULLMUTEX),
 * so the engine's threads share it.
 */
#ifndef PIER_STATE_H
#define PIER_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/json.h"

typedef struct pier_state pier_state;

typedef enum {
    PIER_RUN_QUEUED,
    PIER_RUN_IN_PROGRESS,
    PIER_RUN_SUCCEEDED,
    PIER_RUN_FAILED,
    PIER_RUN_SKIPPED,
    PIER_RUN_SUPERSEDED,
} pier_run_status;

/* Stage names, in order: "source", "build", "deploy", "invalidate",
 * "actions". Stage statuses use the run's names plus "NotRun". */

/* Opens (creating it and its tables unless readonly) the database. */
int pier_state_open(pier_state **out, const char *path, bool readonly);
void pier_state_close(pier_state *s);
/* Marks every Queued or InProgress run (and its running stages) Failed with
 * reason "interrupted"; *count (may be NULL) gets how many. */
int pier_state_recover(pier_state *s, int *count);

int pier_state_pipeline_ensure(pier_state *s, const char *pipeline);
/* The last deployed commit into out ("" when none). */
int pier_state_last_deployed(pier_state *s, const char *pipeline, char out[41]);
/* Advances the last deployed commit (after a successful invalidation). */
int pier_state_mark_deployed(pier_state *s, const char *pipeline, const char *commit,
                             int64_t run_id);

/* A new Queued run; *id gets its id. to_commit may be NULL (resolved at the
 * source stage). */
int pier_state_run_create(pier_state *s, const char *pipeline, const char *trigger,
                          const char *to_commit, int64_t *id);
/* Marks older Queued runs of pipeline than keep_id Superseded; *count gets
 * how many (may be NULL). */
int pier_state_supersede(pier_state *s, const char *pipeline, int64_t keep_id, int *count);
/* Queued -> InProgress, with the log file. */
int pier_state_run_start(pier_state *s, int64_t id, const char *log_path);
int pier_state_run_commits(pier_state *s, int64_t id, const char *from, const char *to);
/* Sets a stage's status; the start time is set when it first becomes
 * InProgress, the end time when it leaves it. message may be NULL. */
int pier_state_stage(pier_state *s, int64_t id, const char *stage, pier_run_status status,
                     const char *message);
int pier_state_run_changes(pier_state *s, int64_t id, const char *files_json);
int pier_state_run_deploy(pier_state *s, int64_t id, int64_t uploaded, int64_t skipped,
                          int64_t deleted, int64_t bytes);
int pier_state_run_invalidation(pier_state *s, int64_t id, const char *invalidation_id,
                                const char *paths_json);
/* Ends a run with its status and reason (may be NULL). */
int pier_state_run_finish(pier_state *s, int64_t id, pier_run_status status, const char *reason);
/* The status of run id. */
int pier_state_run_status(pier_state *s, int64_t id, pier_run_status *out);

/* The newest runs (of pipeline, or all when NULL), newest first, at most
 * limit, each with its stages: a JSON array (owned). */
int pier_state_runs_json(pier_state *s, const char *pipeline, int limit, json_t **out);
/* The same, one page: runs with id < before (0: from the newest). */
int pier_state_runs_page_json(pier_state *s, const char *pipeline, int limit, int64_t before,
                              json_t **out);
/* One run as JSON (owned); PIER_ENOTFOUND. */
int pier_state_run_json(pier_state *s, int64_t id, json_t **out);
/* Every pipeline with its last deployed commit: a JSON array (owned). */
int pier_state_pipelines_json(pier_state *s, json_t **out);

const char *pier_run_status_name(pier_run_status st);
int pier_run_status_parse(const char *name, pier_run_status *out);

#endif
