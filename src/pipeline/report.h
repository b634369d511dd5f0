/*
 * report: the JSON shapes of pipelines and runs, in one place, for the
 * dashboard's API (stack/dashboard.c) and `pier status --json`, so both
 * return the same documents. docs/api.md describes every field.
 *
 *   pipeline  {name, branch, paths, exclude, poll_ms, webhook, host,
 *              site_url, bucket, prefix, distribution, last_deployed,
 *              latest_run}
 *   run       {id, pipeline, trigger, status, reason, from_commit,
 *              to_commit, created_ms, started_ms, ended_ms, duration_ms,
 *              stages[{name, status, started_ms, ended_ms, duration_ms,
 *              message}], changed_files[{path, status, old_path?}],
 *              deploy{uploaded, skipped, deleted, bytes} | null,
 *              invalidation{id, paths} | null, has_log}
 *   runs page {runs: [run...], next_before: id | null}
 *
 * Nothing here reads a secret: the state store never holds one, log file
 * paths stay out of the shapes, and commit details come from the
 * pipeline's git mirror (<data>/git/<name>.git), read-only.
 *
 * Costs: a pipeline summary opens its mirror once (for the last deployed
 * commit's message and author) and reads its newest run; a page of runs
 * is one query per run for its stages.
 *
 * Ownership: every json_t ** out belongs to the caller (json_decref).
 */
#ifndef PIER_REPORT_H
#define PIER_REPORT_H

#include <stdint.h>

#include "base/json.h"
#include "pipeline/pipeconf.h"
#include "pipeline/state.h"

/* Where the reports look things up. conf may be NULL (pipelines then come
 * from the store alone); edge_url ("http://HOST:PORT", NULL when unknown)
 * makes the site URLs. */
typedef struct {
    pier_state *state;         /* the store (borrowed) */
    const pier_pipeconf *conf; /* pier.yml, or NULL */
    const char *data_dir;      /* DIR/.pier (git mirrors), or NULL */
    const char *edge_url;      /* the edge listener's URL, or NULL */
} pier_report_ctx;

#define PIER_REPORT_MAX_LIMIT 200

/* Every pipeline's summary: an array. */
int pier_report_pipelines(json_t **out, const pier_report_ctx *c);
/* One pipeline's summary; PIER_ENOTFOUND for an unknown name. */
int pier_report_pipeline(json_t **out, const pier_report_ctx *c, const char *name);
/* A runs page, newest first: runs of pipeline (NULL: all) with id < before
 * (0: from the newest), at most limit (clamped to 1..PIER_REPORT_MAX_LIMIT). */
int pier_report_runs(json_t **out, const pier_report_ctx *c, const char *pipeline, int limit,
                     int64_t before);
/* One run, with "commit": the to_commit's {sha, short_sha, message,
 * author, time_ms} (null when unknown). PIER_ENOTFOUND. */
int pier_report_run(json_t **out, const pier_report_ctx *c, int64_t id);
/* `pier status --json` and GET /api/status: {pipelines, runs, next_before},
 * the runs of pipeline (NULL: all), at most limit. */
int pier_report_status(json_t **out, const pier_report_ctx *c, const char *pipeline, int limit);

/* The run shape of one row of the store (pier_state_run_json); owned. */
json_t *pier_report_run_shape(const json_t *row);

#endif
