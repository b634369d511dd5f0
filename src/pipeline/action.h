/*
 * action: runs an invoke action the way CodePipeline runs a Lambda: a
 * command (/bin/sh -c) gets the CodePipeline job event and ends the action
 * by calling the job API (PutJobSuccessResult / PutJobFailureResult).
 *
 * One invocation:
 *   1. a job is created in the registry (pier_jobapi) from options.job;
 *   2. its event {"CodePipeline.job": {...}} is written to a private file
 *      (0600, in a fresh 0700 directory; removed after) that is both the
 *      command's stdin and $PIER_JOB_EVENT_FILE;
 *   3. the command runs in its own process group with the parent's
 *      environment minus every AWS credential/profile/endpoint variable,
 *      plus AWS_ENDPOINT_URL_CODEPIPELINE / _CLOUDFRONT / _S3, AWS_REGION,
 *      AWS_DEFAULT_REGION, PIER_JOB_ID, PIER_JOB_EVENT_FILE and the
 *      caller's extra variables (the engine passes the container credentials
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN
 *      there);
 *   4. its stdout and stderr lines go, masked, to the log callback;
 *   5. it ends when: the job is reported (the process then gets a grace
 *      period to exit before its group is killed); the process exits
 *      without reporting (failure, with the last 20 stderr lines, masked);
 *      or the action's timeout passes (SIGTERM, then SIGKILL, to the group;
 *      status TIMED_OUT).
 * A success with a continuationToken runs the command again with a new job
 * whose event carries the token, up to max_invocations in all.
 *
 * Threads: pier_action_run blocks the calling thread; the registry is
 * reported to from the HTTP server's threads.
 *
 * Ownership: a result is the caller's (pier_action_result_clear); options
 * are borrowed for the call.
 */
#ifndef PIER_ACTION_H
#define PIER_ACTION_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "pipeline/jobapi.h"

/* One output line of the command, already masked; is_stderr tells which
 * stream. */
typedef void (*pier_action_log_fn)(void *ctx, bool is_stderr, const char *line);
/* Replaces every secret value in text with *** (in place). */
typedef void (*pier_action_mask_fn)(void *ctx, pier_buf *text);

typedef struct {
    const char *name;                  /* action name (messages) */
    const char *command;               /* run with /bin/sh -c */
    const char *cwd;                   /* working directory, or NULL (inherit) */
    pier_jobapi *jobs;                 /* the registry the job API reports into */
    pier_jobapi_spec job;              /* each invocation's job (continuation_token is set
                                          by the runner) */
    const char *const *env;            /* extra "NAME=value" entries, or NULL */
    size_t env_count;                  /* their number */
    const char *codepipeline_endpoint; /* AWS_ENDPOINT_URL_CODEPIPELINE, or NULL */
    const char *cloudfront_endpoint;   /* AWS_ENDPOINT_URL_CLOUDFRONT, or NULL */
    const char *s3_endpoint;           /* AWS_ENDPOINT_URL_S3, or NULL */
    const char *region;                /* AWS_REGION; NULL = "us-east-1" */
    unsigned timeout_sec;              /* the whole action; 0 = 600 */
    unsigned max_invocations;          /* with continuation tokens; 0 = 10 */
    unsigned exit_grace_ms;            /* after a report, wait this long for exit; 0 = 5000 */
    unsigned kill_grace_ms;            /* SIGTERM -> SIGKILL; 0 = 2000 */
    const char *tmp_dir;               /* the event file goes under here; NULL = $TMPDIR or /tmp */
    pier_action_log_fn log;            /* output lines, or NULL */
    void *log_ctx;                     /* its context */
    pier_action_mask_fn mask;          /* secret masking, or NULL */
    void *mask_ctx;                    /* its context */
} pier_action_options;

typedef enum {
    PIER_ACTION_SUCCEEDED = 0, /* PutJobSuccessResult (without a pending continuation) */
    PIER_ACTION_FAILED,        /* PutJobFailureResult, exit without a report, too many
                                  continuations, or pier could not run it */
    PIER_ACTION_TIMED_OUT,     /* timeout_sec passed */
} pier_action_status;

typedef struct {
    pier_action_status status;   /* the outcome */
    char *message;               /* one line, masked: why it failed, or the summary */
    char *summary;               /* success: executionDetails.summary, or NULL */
    char *external_execution_id; /* as reported, or NULL */
    char *failure_type;          /* PutJobFailureResult's type, or NULL */
    pier_jobapi_var *vars;       /* success: outputVariables */
    size_t var_count;            /* their number */
    unsigned invocations;        /* how many times the command ran */
    int exit_status;             /* last process: exit code, 128+N for signal N, -1 unknown */
    char *stderr_tail;           /* last ~20 stderr lines (masked), or NULL */
} pier_action_result;

/* Runs the action to its end. Returns 0 with out filled whatever the
 * outcome (read out->status; on failure the thread's last error is also the
 * message); negative only when options are unusable (no command/registry). */
int pier_action_run(const pier_action_options *opts, pier_action_result *out);
void pier_action_result_clear(pier_action_result *r);
const char *pier_action_status_name(pier_action_status s);

#endif
