/*
 * runner: runs a parsed buildspec the way CodeBuild runs version 0.2.
 *
 * One call runs one build in a given source directory: restore the cache,
 * run install, pre_build, build and post_build (commands, then finally),
 * evaluate artifacts/name, collect the artifact, save the cache, and hand
 * back the status, the failing phase and command, and the exported
 * variables. The build's output (stdout and stderr merged) is streamed line
 * by line, each line timestamped and with every secret value replaced by
 * `***`, to a callback and/or a log file.
 *
 * Shell state: as in CodeBuild, a `cd`, an `export` or a plain assignment in
 * one command holds in every later command and phase; shell functions,
 * arrays and options do not carry over (CodeBuild's documented limits). An
 * `exit 1` in a command fails that command only.
 *
 * Processes: each command runs in its own process group; a timeout or a
 * cancel sends SIGTERM to every group of the build, then SIGKILL after a
 * grace period. Processes a command leaves in the background are stopped the
 * same way when the build ends.
 *
 * Thread safety: a runner is used by one thread, except pier_runner_cancel,
 * which any thread (or a signal handler) may call at any time.
 *
 * Ownership: the options' strings are borrowed and must outlive
 * pier_runner_run; the result belongs to the caller (pier_runner_result_free).
 */
#ifndef PIER_RUNNER_H
#define PIER_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "build/buildspec.h"

typedef enum {
    PIER_SECRET_PARAMETER_STORE, /* env/parameter-store */
    PIER_SECRET_SECRETS_MANAGER, /* env/secrets-manager */
} pier_secret_source;

/* Resolves one env/parameter-store or env/secrets-manager entry: name is the
 * variable, reference the parameter name or "secret-id:json-key:stage:id".
 * On success sets *value (malloc'ed; the runner frees it) and returns 0; any
 * negative return means "not available". */
typedef int (*pier_runner_resolve_fn)(void *ctx, pier_secret_source source, const char *name,
                                      const char *reference, char **value);

typedef struct {
    int64_t time_ms;  /* wall clock, milliseconds since the epoch */
    const char *text; /* the line, secrets masked, no newline */
    const char *line; /* "2024-05-01T12:00:00.123Z " + text */
    bool from_runner; /* written by pier ("[pier] ..."), not by a command */
} pier_runner_log_line;

/* Receives each log line, in order, on the thread that runs the build. */
typedef void (*pier_runner_log_fn)(void *ctx, const pier_runner_log_line *line);

typedef struct {
    const char *name;  /* environment variable name */
    const char *value; /* its value */
} pier_runner_var;

typedef struct {
    const char *src_dir;                 /* required: the checked-out source; CODEBUILD_SRC_DIR */
    const char *project;                 /* "pier" when NULL; CODEBUILD_BUILD_ID = project:uuid */
    const char *build_id;                /* the whole CODEBUILD_BUILD_ID, or NULL to make one */
    uint64_t build_number;               /* CODEBUILD_BUILD_NUMBER (1 when 0) */
    const char *initiator;               /* CODEBUILD_INITIATOR ("pier" when NULL) */
    const char *region;                  /* AWS_REGION and AWS_DEFAULT_REGION, or NULL */
    const char *account_id;              /* for CODEBUILD_BUILD_ARN ("000000000000" when NULL) */
    const char *source_version;          /* CODEBUILD_SOURCE_VERSION, or NULL */
    const char *resolved_source_version; /* CODEBUILD_RESOLVED_SOURCE_VERSION (commit), or NULL */
    const char *source_repo_url;         /* CODEBUILD_SOURCE_REPO_URL, or NULL */
    const char *webhook_prev_commit;     /* CODEBUILD_WEBHOOK_PREV_COMMIT, or NULL */
    const char *webhook_head_ref;        /* CODEBUILD_WEBHOOK_HEAD_REF, or NULL */
    const char *webhook_trigger;         /* CODEBUILD_WEBHOOK_TRIGGER, or NULL */
    const char *webhook_event;           /* CODEBUILD_WEBHOOK_EVENT, or NULL */
    char *const *base_env;               /* the image's environment; NULL = this process's */
    const pier_runner_var *env;          /* caller's variables: override the buildspec's */
    size_t env_count;                    /* their number */
    const pier_runner_var *secrets;      /* set in the environment and masked everywhere; an
                                            entry named like a parameter-store or
                                            secrets-manager key also resolves that key */
    size_t secret_count;                 /* their number */
    pier_runner_resolve_fn resolve;      /* for parameter-store / secrets-manager, or NULL */
    void *resolve_ctx;                   /* its context */
    const char *cache_dir;               /* cache.paths live here between builds, or NULL */
    const char *artifact_dir;            /* the artifact is collected here (must be absent or
                                            empty), or NULL to skip collection */
    unsigned timeout_sec;                /* 0 = no timeout */
    unsigned kill_grace_ms;              /* SIGTERM -> SIGKILL delay; 0 = 5000 */
    pier_runner_log_fn log;              /* log lines, or NULL */
    void *log_ctx;                       /* its context */
    const char *log_file;                /* log lines are appended here too (0600), or NULL */
    const char *tmp_dir;                 /* private scratch goes under here; NULL = $TMPDIR or
                                            /tmp */
} pier_runner_options;

#define PIER_RUNNER_OPTIONS_INIT                                                                   \
    {                                                                                              \
        0                                                                                          \
    }

typedef enum {
    PIER_BUILD_SUCCEEDED = 0, /* every phase succeeded, the artifact was collected */
    PIER_BUILD_FAILED,        /* a command failed, a secret was missing, the artifact failed */
    PIER_BUILD_FAULT,         /* pier could not run the build (shell, scratch dir, fork) */
    PIER_BUILD_TIMED_OUT,     /* options.timeout_sec passed */
    PIER_BUILD_STOPPED,       /* pier_runner_cancel was called */
} pier_build_status;

typedef enum {
    PIER_PHASE_PENDING = 0, /* not reached (an earlier phase ended the build) */
    PIER_PHASE_SUCCEEDED,   /* ran (or had nothing to run) and every command succeeded */
    PIER_PHASE_FAILED,      /* a command or a finally command failed */
    PIER_PHASE_TIMED_OUT,   /* the build timed out in this phase */
    PIER_PHASE_STOPPED,     /* the build was cancelled in this phase */
} pier_phase_status;

typedef struct {
    pier_phase_status status; /* what happened */
    int64_t start_ms;         /* wall clock at start, 0 when not reached */
    int64_t end_ms;           /* wall clock at end */
} pier_runner_phase;

typedef struct {
    char *name;  /* exported variable */
    char *value; /* its value at the end of post_build (masked) */
} pier_runner_export;

typedef struct {
    pier_build_status status;                   /* overall result */
    char *build_id;                             /* CODEBUILD_BUILD_ID used */
    char *message;                              /* one line, masked: what failed and why */
    int failed_phase;                           /* pier_phase_id of the first failure, or -1 */
    char *failed_command;                       /* its command (masked), or NULL */
    size_t failed_command_line;                 /* its line in the buildspec, or 0 */
    int exit_status;                            /* its exit status (128+N for signal N) */
    pier_runner_phase phases[PIER_PHASE_COUNT]; /* per phase */
    bool artifacts_attempted;                   /* CodeBuild's UPLOAD_ARTIFACTS would run */
    size_t artifact_files;                      /* files collected into artifact_dir */
    char *artifact_name;                        /* artifacts/name evaluated by the shell, or NULL */
    pier_runner_export *exported;               /* env/exported-variables that had a value */
    size_t exported_count;                      /* their number */
    int64_t start_ms;                           /* CODEBUILD_START_TIME */
    int64_t end_ms;                             /* wall clock at the end */
} pier_runner_result;

typedef struct pier_runner pier_runner;

/* Prepares a build of spec (borrowed; must outlive the runner) with opts
 * (copied; the strings are borrowed). PIER_EINVALID when src_dir is missing
 * or not a directory. */
int pier_runner_new(pier_runner **out, const pier_buildspec *spec, const pier_runner_options *opts);
/* Runs the build to the end, once. Returns 0 with *out set whatever the
 * build's status (read (*out)->status); when the status is not SUCCEEDED the
 * thread's last error is also set to the masked message. A negative return
 * (no result) means the runner was misused (run twice). */
int pier_runner_run(pier_runner *r, pier_runner_result **out);
/* Asks a running build to stop: SIGTERM to its processes, SIGKILL after the
 * grace period; pier_runner_run then returns with PIER_BUILD_STOPPED.
 * Async-signal-safe and callable from any thread; a no-op after the end. */
void pier_runner_cancel(pier_runner *r);
void pier_runner_free(pier_runner *r);
void pier_runner_result_free(pier_runner_result *res);

/* "SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED". */
const char *pier_build_status_name(pier_build_status status);
/* "PENDING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED". */
const char *pier_phase_status_name(pier_phase_status status);

#endif
