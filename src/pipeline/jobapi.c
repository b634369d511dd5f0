/*
 * jobapi: the job registry (see jobapi.h). A linked list of jobs under one
 * mutex and one condition variable (broadcast on every report: waiters
 * re-check their own job). Each job keeps its event "data" object as JSON,
 * built once at creation, and its result fields.
 */
#include "pipeline/jobapi.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/json.h"
#include "base/mem.h"

typedef struct job {
    struct job *next;                /* list link */
    char id[PIER_JOBAPI_ID_LEN + 1]; /* UUID */
    char *account_id;                /* accountId */
    char *owner;                     /* access key allowed to report, or NULL */
    json_t *data;                    /* the event's data object (owned) */
    json_t *context;                 /* pipelineContext for GetJobDetails (owned) */
    pier_jobapi_result res;          /* state and results */
} job;

struct pier_jobapi {
    pthread_mutex_t mu; /* guards jobs and every job's res */
    pthread_cond_t cv;  /* broadcast when a job is reported */
    job *jobs;          /* newest first */
};

void pier_jobapi_new(pier_jobapi **out)
{
    pier_jobapi *r = pier_calloc(1, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = r;
}

static char *dup_or_null(const char *s)
{
    return s ? pier_strdup(s) : NULL;
}

void pier_jobapi_result_clear(pier_jobapi_result *res)
{
    if (!res)
        return;
    free(res->current_revision);
    free(res->continuation_token);
    free(res->summary);
    free(res->external_execution_id);
    for (size_t i = 0; i < res->var_count; i++) {
        free(res->vars[i].name);
        free(res->vars[i].value);
    }
    free(res->vars);
    free(res->failure_type);
    free(res->failure_message);
    memset(res, 0, sizeof *res);
    res->percent_complete = -1;
}

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->account_id);
    free(j->owner);
    json_decref(j->data);
    json_decref(j->context);
    pier_jobapi_result_clear(&j->res);
    free(j);
}

void pier_jobapi_free(pier_jobapi *r)
{
    if (!r)
        return;
    for (job *j = r->jobs, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

const char *pier_jobapi_state_name(pier_job_state s)
{
    switch (s) {
    case PIER_JOB_CREATED:
        return "Created";
    case PIER_JOB_IN_PROGRESS:
        return "InProgress";
    case PIER_JOB_SUCCEEDED:
        return "Succeeded";
    case PIER_JOB_FAILED:
        return "Failed";
    }
    return "?";
}

static void uuid4(char out[PIER_JOBAPI_ID_LEN + 1])
{
    unsigned char b[16];
    pier_random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, PIER_JOBAPI_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

int pier_jobapi_create(pier_jobapi *r, const pier_jobapi_spec *spec,
                       char id[PIER_JOBAPI_ID_LEN + 1])
{
    job *j = pier_calloc(1, sizeof *j);
    uuid4(j->id);
    j->account_id = pier_strdup(spec->account_id ? spec->account_id : "000000000000");
    j->owner = dup_or_null(spec->owner_key_id);
    j->res.percent_complete = -1;

    json_t *config = json_object();
    if (spec->function_name)
        json_object_set_new(config, "FunctionName", json_string(spec->function_name));
    if (spec->user_parameters)
        json_object_set_new(config, "UserParameters", json_string(spec->user_parameters));
    json_t *inputs = json_array();
    for (size_t i = 0; i < spec->input_count; i++) {
        const pier_jobapi_artifact *a = &spec->inputs[i];
        json_t *loc = json_pack("{s:s, s:{s:s, s:s}}", "type", "S3", "s3Location", "bucketName",
                                a->bucket ? a->bucket : "", "objectKey", a->key ? a->key : "");
        json_t *art = json_pack("{s:s, s:o}", "name", a->name ? a->name : "", "location", loc);
        if (a->revision)
            json_object_set_new(art, "revision", json_string(a->revision));
        json_array_append_new(inputs, art);
    }
    j->data = json_pack("{s:{s:o}, s:o, s:[]}", "actionConfiguration", "configuration", config,
                        "inputArtifacts", inputs, "outputArtifacts");
    if (spec->access_key_id) {
        json_t *cred =
            json_pack("{s:s, s:s}", "accessKeyId", spec->access_key_id, "secretAccessKey",
                      spec->secret_access_key ? spec->secret_access_key : "");
        if (spec->session_token)
            json_object_set_new(cred, "sessionToken", json_string(spec->session_token));
        if (spec->expiration)
            json_object_set_new(cred, "expirationTime", json_string(spec->expiration));
        json_object_set_new(j->data, "artifactCredentials", cred);
    }
    if (spec->continuation_token)
        json_object_set_new(j->data, "continuationToken", json_string(spec->continuation_token));
    j->context =
        json_pack("{s:s, s:{s:s}, s:{s:s}}", "pipelineName", spec->pipeline ? spec->pipeline : "",
                  "stage", "name", "Invoke", "action", "name", spec->action ? spec->action : "");

    pthread_mutex_lock(&r->mu);
    j->next = r->jobs;
    r->jobs = j;
    pthread_mutex_unlock(&r->mu);
    memcpy(id, j->id, sizeof j->id);
    return 0;
}

/* The job named id that key_id may see, or NULL with the error set.
 * Called with the mutex held. */
static job *find(pier_jobapi *r, const char *key_id, const char *id)
{
    for (job *j = r->jobs; j; j = j->next)
        if (id && strcmp(j->id, id) == 0) {
            if (j->owner && key_id && strcmp(j->owner, key_id) != 0)
                break;
            return j;
        }
    pier_error_set(PIER_ENOTFOUND, "job %s does not exist", id ? id : "(none)");
    return NULL;
}

int pier_jobapi_event_json(pier_jobapi *r, const char *id, pier_buf *out)
{
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    job *j = find(r, NULL, id);
    if (!j) {
        rc = PIER_ENOTFOUND;
        goto done;
    }
    json_t *ev = json_pack("{s:{s:s, s:s, s:O}}", "CodePipeline.job", "id", j->id, "accountId",
                           j->account_id, "data", j->data);
    rc = pier_json_write(out, ev, false);
    json_decref(ev);
done:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int pier_jobapi_details_json(pier_jobapi *r, const char *key_id, const char *id, pier_buf *out)
{
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    job *j = find(r, key_id, id);
    if (!j) {
        rc = PIER_ENOTFOUND;
        goto done;
    }
    json_t *data = json_deep_copy(j->data);
    json_object_set(data, "pipelineContext", j->context);
    json_t *ev = json_pack("{s:{s:s, s:s, s:o}}", "jobDetails", "id", j->id, "accountId",
                           j->account_id, "data", data);
    rc = pier_json_write(out, ev, false);
    json_decref(ev);
done:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static bool open_state(const job *j)
{
    return j->res.state == PIER_JOB_CREATED || j->res.state == PIER_JOB_IN_PROGRESS;
}

int pier_jobapi_acknowledge(pier_jobapi *r, const char *key_id, const char *id,
                            pier_job_state *state)
{
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    job *j = find(r, key_id, id);
    if (!j) {
        rc = PIER_ENOTFOUND;
        goto done;
    }
    if (j->res.state == PIER_JOB_CREATED)
        j->res.state = PIER_JOB_IN_PROGRESS;
    *state = j->res.state;
done:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int pier_jobapi_put_success(pier_jobapi *r, const char *key_id, const char *id,
                            const pier_jobapi_success *s)
{
    int rc = 0;
    if (s->percent_complete > 100)
        return pier_error_set(PIER_EINVALID, "executionDetails.percentComplete must be 0..100");
    for (size_t i = 0; i < s->var_count; i++)
        if (!s->vars[i].name || !s->vars[i].name[0] || !s->vars[i].value)
            return pier_error_set(PIER_EINVALID, "outputVariables: an entry has no name or value");
    pthread_mutex_lock(&r->mu);
    job *j = find(r, key_id, id);
    if (!j) {
        rc = PIER_ENOTFOUND;
        goto done;
    }
    if (!open_state(j)) {
        rc = pier_error_set(PIER_ECONFLICT, "job %s is already %s", id,
                            pier_jobapi_state_name(j->res.state));
        goto done;
    }
    pier_jobapi_result *res = &j->res;
    res->state = PIER_JOB_SUCCEEDED;
    res->current_revision = dup_or_null(s->current_revision);
    res->continuation_token = dup_or_null(s->continuation_token);
    res->summary = dup_or_null(s->summary);
    res->external_execution_id = dup_or_null(s->external_execution_id);
    res->percent_complete = s->percent_complete;
    if (s->var_count) {
        res->vars = pier_calloc(s->var_count, sizeof *res->vars);
        for (size_t i = 0; i < s->var_count; i++) {
            res->vars[i].name = pier_strdup(s->vars[i].name);
            res->vars[i].value = pier_strdup(s->vars[i].value);
        }
        res->var_count = s->var_count;
    }
    pthread_cond_broadcast(&r->cv);
done:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static const char *const FAILURE_TYPES[] = {"JobFailed",           "ConfigurationError",
                                            "PermissionError",     "RevisionOutOfSync",
                                            "RevisionUnavailable", "SystemUnavailable"};

int pier_jobapi_put_failure(pier_jobapi *r, const char *key_id, const char *id, const char *type,
                            const char *message, const char *external_execution_id)
{
    int rc = 0;
    bool known = false;
    for (size_t i = 0; type && i < sizeof FAILURE_TYPES / sizeof *FAILURE_TYPES; i++)
        known |= strcmp(type, FAILURE_TYPES[i]) == 0;
    if (!known)
        return pier_error_set(PIER_EINVALID,
                              "failureDetails.type '%s' is not one of JobFailed, "
                              "ConfigurationError, PermissionError, RevisionOutOfSync, "
                              "RevisionUnavailable, SystemUnavailable",
                              type ? type : "");
    if (!message)
        return pier_error_set(PIER_EINVALID, "failureDetails.message is required");
    pthread_mutex_lock(&r->mu);
    job *j = find(r, key_id, id);
    if (!j) {
        rc = PIER_ENOTFOUND;
        goto done;
    }
    if (!open_state(j)) {
        rc = pier_error_set(PIER_ECONFLICT, "job %s is already %s", id,
                            pier_jobapi_state_name(j->res.state));
        goto done;
    }
    j->res.state = PIER_JOB_FAILED;
    j->res.failure_type = pier_strdup(type);
    j->res.failure_message = pier_strdup(message);
    j->res.external_execution_id = dup_or_null(external_execution_id);
    pthread_cond_broadcast(&r->cv);
done:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int pier_jobapi_get(pier_jobapi *r, const char *id, pier_jobapi_result *out)
{
    int rc = 0;
    pier_jobapi_result_clear(out);
    pthread_mutex_lock(&r->mu);
    job *j = find(r, NULL, id);
    if (!j) {
        rc = PIER_ENOTFOUND;
        goto done;
    }
    const pier_jobapi_result *s = &j->res;
    out->state = s->state;
    out->current_revision = dup_or_null(s->current_revision);
    out->continuation_token = dup_or_null(s->continuation_token);
    out->summary = dup_or_null(s->summary);
    out->external_execution_id = dup_or_null(s->external_execution_id);
    out->percent_complete = s->percent_complete;
    out->failure_type = dup_or_null(s->failure_type);
    out->failure_message = dup_or_null(s->failure_message);
    if (s->var_count) {
        out->vars = pier_calloc(s->var_count, sizeof *out->vars);
        for (size_t i = 0; i < s->var_count; i++) {
            out->vars[i].name = pier_strdup(s->vars[i].name);
            out->vars[i].value = pier_strdup(s->vars[i].value);
        }
        out->var_count = s->var_count;
    }
done:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int pier_jobapi_wait(pier_jobapi *r, const char *id, long timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    int rc;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        job *j = find(r, NULL, id);
        if (!j) {
            rc = PIER_ENOTFOUND;
            break;
        }
        if (!open_state(j)) {
            rc = 0;
            break;
        }
        if (timeout_ms <= 0 || pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT) {
            j = find(r, NULL, id);
            rc = !j ? PIER_ENOTFOUND : open_state(j) ? PIER_ETIMEOUT : 0;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (rc == PIER_ETIMEOUT)
        pier_error_set(PIER_ETIMEOUT, "job %s has not reported yet", id);
    return rc;
}

void pier_jobapi_remove(pier_jobapi *r, const char *id)
{
    pthread_mutex_lock(&r->mu);
    for (job **p = &r->jobs; *p; p = &(*p)->next)
        if (strcmp((*p)->id, id) == 0) {
            job *j = *p;
            *p = j->next;
            job_free(j);
            break;
        }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}
