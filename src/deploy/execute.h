/*
 * execute: carrying a deploy plan out against S3.
 *
 * pier_deploy_execute runs the plan's actions on the S3 client's one HTTP
 * client (one thread driving curl multi), keeping `jobs` operations in
 * flight, phase by phase with a barrier between phases:
 *
 *   1. uploads of everything that is not HTML;
 *   2. HTML uploads (only when every upload of phase 1 succeeded);
 *   3. deletions, DeleteObjects batches of at most 1,000 keys (only when
 *      every upload succeeded);
 *   4. pier's manifest (plan->next_state, with the ETags S3 returned) to
 *      plan->state_key (only when everything above succeeded; skipped
 *      when the plan is empty and the manifest read before says the same).
 *
 * So an interrupted deploy (a failure, Ctrl-C, kill -9) leaves the old site
 * whole: new assets may be there already, but no page refers to them yet,
 * and nothing the old pages refer to is gone. The next deploy compares the
 * bucket with the folder again and converges.
 *
 * Uploads stream from the files (memory stays flat whatever their sizes);
 * a file the manifest marks multipart is uploaded with exactly its part
 * size and part count, each part with its Content-MD5 (parts in parallel,
 * the upload aborted on failure); every PUT carries the file's Content-MD5,
 * so a file whose content changed since it was hashed is refused by S3.
 * Before an upload starts the file is checked again (it exists, same
 * size): a file that vanished or changed fails that upload with a message
 * naming it, and the run stops before the HTML phase.
 *
 * After a failure no new transfer starts (so a denied key or a full disk
 * does not fail a thousand times over) and no new phase; the transfers
 * already in flight finish. An interrupt (the flag in the options, set by
 * a signal handler) does the same.
 *
 * Progress: on a terminal, one line redrawn (files done/total, bytes, rate,
 * ETA); elsewhere plain lines, one every 100 files or 5 s, and one per
 * failure.
 *
 * Ownership: the result owns its strings (pier_deploy_result_free). The plan
 * is modified only through plan->next_state (ETags recorded).
 */
#ifndef PIER_DEPLOY_EXECUTE_H
#define PIER_DEPLOY_EXECUTE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "aws/s3.h"
#include "base/buf.h"
#include "deploy/plan.h"

#define PIER_DEPLOY_JOBS_DEFAULT 16 /* operations in flight */
#define PIER_DEPLOY_JOBS_MAX     256

typedef enum {
    PIER_DEPLOY_PROGRESS_AUTO = 0, /* bar on a terminal, plain lines elsewhere */
    PIER_DEPLOY_PROGRESS_BAR,      /* the one-line bar */
    PIER_DEPLOY_PROGRESS_PLAIN,    /* plain lines */
    PIER_DEPLOY_PROGRESS_NONE,     /* nothing */
} pier_deploy_progress_mode;

typedef struct {
    unsigned jobs;                            /* operations in flight; 0 = default */
    FILE *progress;                           /* where progress goes; NULL = stderr */
    pier_deploy_progress_mode progress_mode;  /* see above */
    const volatile sig_atomic_t *interrupted; /* non-zero: stop starting work; may be NULL */
    bool no_state;                            /* do not write pier's manifest */
    const pier_deploy_state *previous;        /* pier's manifest as read before planning (or
                                                 NULL): not rewritten when the plan is empty
                                                 and it already says the same */
} pier_deploy_exec_options;

/* clang-format off */
#define PIER_DEPLOY_EXEC_OPTIONS_INIT {0, NULL, PIER_DEPLOY_PROGRESS_AUTO, NULL, false, NULL}
/* clang-format on */

typedef struct {
    char *key;     /* the S3 key */
    char *path;    /* the local file (uploads), or NULL */
    int code;      /* pier error code */
    char *message; /* one line */
} pier_deploy_key_error;

/* What became of one action of the plan. */
typedef enum {
    PIER_DEPLOY_NOT_STARTED = 0, /* never started (a failure elsewhere, an interrupt) */
    PIER_DEPLOY_DONE,            /* uploaded / deleted */
    PIER_DEPLOY_FAILED,          /* failed: see errors */
} pier_deploy_outcome;

typedef struct {
    size_t uploaded;               /* objects uploaded */
    uint64_t uploaded_bytes;       /* their bytes */
    size_t multipart;              /* of which multipart uploads */
    size_t skipped;                /* local files equal to their object */
    uint64_t skipped_bytes;        /* their bytes */
    size_t deleted;                /* objects deleted */
    size_t failed;                 /* actions that failed */
    size_t not_started;            /* actions never started (a failure or an interrupt) */
    size_t requests;               /* S3 requests sent (attempts included) */
    double seconds;                /* wall time of the execution */
    bool state_written;            /* pier's manifest was written */
    bool interrupted;              /* stopped by the interrupt flag */
    const char *stopped_in;        /* phase name where the run stopped, or NULL */
    pier_deploy_key_error *errors; /* per-key failures, in completion order */
    size_t error_count;            /* their number */
    size_t error_cap;              /* allocated */
    unsigned char *outcome;        /* per plan action (pier_deploy_outcome), plan order */
    size_t outcome_count;          /* the plan's action count */
} pier_deploy_result;

void pier_deploy_result_init(pier_deploy_result *r);
void pier_deploy_result_free(pier_deploy_result *r);

/* Executes p into bucket. out (initialized) gets the counts and errors
 * whatever happens. 0 when every action succeeded and the manifest was
 * written; PIER_ERR (message: how many failed and the first failure) when
 * some action failed; PIER_ERR with "interrupted ..." after an interrupt;
 * another negative code when the HTTP client itself failed. */
int pier_deploy_execute(pier_deploy_result *out, pier_s3 *s3, const char *bucket,
                        pier_deploy_plan *p, const pier_deploy_exec_options *opts);

/* "uploaded N (X MiB), skipped N, deleted N, N requests, T s" appended to out. */
int pier_deploy_result_summary(pier_buf *out, const pier_deploy_result *r);

#endif
