/*
 * jobapi: the job registry behind pier's CodePipeline-compatible job API.
 *
 * An invoke action is one job per invocation, as in CodePipeline: the
 * action runner creates a job (id = random UUID) holding what the handler
 * gets in its event (accountId, actionConfiguration.configuration
 * {FunctionName, UserParameters}, inputArtifacts, artifactCredentials,
 * continuationToken), starts the handler, and waits for the handler to
 * report through the HTTP job API (src/stack/jobhttp.h), which calls
 * pier_jobapi_put_success / pier_jobapi_put_failure here.
 *
 * States: Created -> InProgress (AcknowledgeJob; optional) -> Succeeded |
 * Failed. Reporting twice, or on a job that is not open, is
 * PIER_ECONFLICT (InvalidJobStateException); an unknown id PIER_ENOTFOUND
 * (JobNotFoundException); bad fields PIER_EINVALID (ValidationException).
 * A job may be bound to the access key that may report on it (the key of
 * the credentials handed to the handler); another key gets PIER_ENOTFOUND.
 *
 * Threads: every call is thread-safe (one mutex); pier_jobapi_wait blocks on
 * a condition variable until the job is reported or the timeout passes.
 * Cost: jobs are kept in a small list (actions are few); remove a job with
 * pier_jobapi_remove when the action is done with it.
 *
 * Ownership: a pier_jobapi_result filled by pier_jobapi_get is the caller's
 * (pier_jobapi_result_clear); spec strings are copied.
 */
#ifndef PIER_JOBAPI_H
#define PIER_JOBAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define PIER_JOBAPI_ID_LEN 36 /* a UUID */

typedef struct pier_jobapi pier_jobapi;

typedef struct {
    const char *name;     /* artifact name */
    const char *revision; /* the commit, or NULL */
    const char *bucket;   /* location.s3Location.bucketName */
    const char *key;      /* location.s3Location.objectKey */
} pier_jobapi_artifact;

typedef struct {
    const char *account_id;             /* NULL = "000000000000" */
    const char *function_name;          /* configuration.FunctionName, or NULL */
    const char *user_parameters;        /* configuration.UserParameters, or NULL */
    const pier_jobapi_artifact *inputs; /* inputArtifacts */
    size_t input_count;                 /* their number */
    const char *access_key_id;          /* artifactCredentials, or NULL for none */
    const char *secret_access_key;      /* ... */
    const char *session_token;          /* ... */
    const char *expiration;             /* ... ISO 8601, or NULL */
    const char *continuation_token;     /* from the previous invocation's success, or NULL */
    const char *owner_key_id;           /* only this access key may act on the job, or NULL */
    const char *pipeline;               /* pipelineContext.pipelineName (GetJobDetails) */
    const char *action;                 /* pipelineContext.action.name */
} pier_jobapi_spec;

typedef enum {
    PIER_JOB_CREATED = 0, /* waiting for the handler */
    PIER_JOB_IN_PROGRESS, /* acknowledged */
    PIER_JOB_SUCCEEDED,   /* PutJobSuccessResult */
    PIER_JOB_FAILED,      /* PutJobFailureResult */
} pier_job_state;

typedef struct {
    char *name;  /* output variable */
    char *value; /* its value */
} pier_jobapi_var;

typedef struct {
    pier_job_state state;        /* where the job is */
    char *current_revision;      /* success: currentRevision.revision, or NULL */
    char *continuation_token;    /* success: re-invoke with this, or NULL */
    char *summary;               /* executionDetails.summary, or NULL */
    char *external_execution_id; /* executionDetails / failureDetails externalExecutionId */
    int percent_complete;        /* executionDetails.percentComplete, -1 when absent */
    pier_jobapi_var *vars;       /* success: outputVariables */
    size_t var_count;            /* their number */
    char *failure_type;          /* failure: failureDetails.type (JobFailed ...), or NULL */
    char *failure_message;       /* failure: failureDetails.message, or NULL */
} pier_jobapi_result;

/* What a handler reports on success (borrowed strings; NULL = absent). */
typedef struct {
    const char *current_revision;      /* currentRevision.revision */
    const char *continuation_token;    /* continuationToken */
    const char *summary;               /* executionDetails.summary */
    const char *external_execution_id; /* executionDetails.externalExecutionId */
    int percent_complete;              /* -1 when absent */
    const pier_jobapi_var *vars;       /* outputVariables */
    size_t var_count;                  /* their number */
} pier_jobapi_success;

void pier_jobapi_new(pier_jobapi **out);
void pier_jobapi_free(pier_jobapi *r);

/* Creates a job; id gets its UUID (37 bytes with the NUL). */
int pier_jobapi_create(pier_jobapi *r, const pier_jobapi_spec *spec,
                       char id[PIER_JOBAPI_ID_LEN + 1]);

/* The Lambda event for the job, as CodePipeline sends it:
 * {"CodePipeline.job": {"id", "accountId", "data": {...}}}. */
int pier_jobapi_event_json(pier_jobapi *r, const char *id, pier_buf *out);
/* GetJobDetails' answer: {"jobDetails": {"id", "accountId", "data"}}. */
int pier_jobapi_details_json(pier_jobapi *r, const char *key_id, const char *id, pier_buf *out);

/* The handler's calls. key_id is the access key that signed the request
 * (checked against the job's owner). */
int pier_jobapi_acknowledge(pier_jobapi *r, const char *key_id, const char *id,
                            pier_job_state *state);
int pier_jobapi_put_success(pier_jobapi *r, const char *key_id, const char *id,
                            const pier_jobapi_success *s);
int pier_jobapi_put_failure(pier_jobapi *r, const char *key_id, const char *id, const char *type,
                            const char *message, const char *external_execution_id);

/* A copy of the job's state and results (out is cleared first). */
int pier_jobapi_get(pier_jobapi *r, const char *id, pier_jobapi_result *out);
/* Waits until the job is Succeeded or Failed, at most timeout_ms (0 = do not
 * wait); 0 when it is, PIER_ETIMEOUT when not yet, PIER_ENOTFOUND. */
int pier_jobapi_wait(pier_jobapi *r, const char *id, long timeout_ms);
/* Forgets a job (a late report then gets JobNotFoundException). */
void pier_jobapi_remove(pier_jobapi *r, const char *id);

void pier_jobapi_result_clear(pier_jobapi_result *res);
/* "Created", "InProgress", "Succeeded", "Failed". */
const char *pier_jobapi_state_name(pier_job_state s);

#endif
