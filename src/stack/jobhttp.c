/*
 * jobhttp: CodePipeline JSON 1.1 operations over the job registry (see
 * jobhttp.h). Per request: collect the body (capped), check the target,
 * verify SigV4 over the body's hash, authorize the operation on the job,
 * parse the JSON, call the registry, answer JSON. Cost: one SHA-256 of the
 * body, one HMAC chain, one JSON parse.
 */
#include "stack/jobhttp.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sigv4.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "stack/credsvc.h"

#define TARGET_PREFIX "CodePipeline_20150709."
#define MAX_BODY      ((size_t)1 << 20)

typedef struct {
    pier_handler base;         /* must be first */
    pier_jobhttp_options opts; /* copied */
} job_handler;

typedef struct {
    job_handler *h;                    /* the handler */
    pier_buf body;                     /* the request body, capped */
    bool too_big;                      /* the cap was hit */
    pier_s3api_authorize_fn authorize; /* from the lookup */
    void *authorize_ctx;               /* its context */
} job_req;

static int respond(pier_server_req *r, unsigned status, json_t *obj)
{
    pier_buf out = PIER_BUF_INIT;
    pier_json_write(&out, obj, false);
    json_decref(obj);
    char rid[37];
    pier_random_token(rid, 32, false);
    pier_server_resp_header(r, "Content-Type", "application/x-amz-json-1.1");
    pier_server_resp_header(r, "x-amzn-RequestId", rid);
    int rc = pier_server_respond_mem(r, status, out.ptr, out.len);
    pier_buf_free(&out);
    return rc;
}

static int respond_error(pier_server_req *r, unsigned status, const char *type, const char *message)
{
    pier_server_resp_header(r, "x-amzn-ErrorType", type);
    return respond(r, status, json_pack("{s:s, s:s}", "__type", type, "message", message));
}

/* The registry's code as a CodePipeline error. */
static int respond_code(pier_server_req *r, int code)
{
    const char *type = code == PIER_ENOTFOUND   ? "JobNotFoundException"
                       : code == PIER_ECONFLICT ? "InvalidJobStateException"
                       : code == PIER_EINVALID  ? "ValidationException"
                                                : "InvalidJobException";
    return respond_error(r, 400, type, pier_error_last());
}

static int on_body(pier_server_req *r, void *ctx, const char *data, size_t n)
{
    (void)r;
    job_req *q = ctx;
    if (q->too_big || pier_buf_put(&q->body, data, n) < 0) {
        q->too_big = true;
        return 1;
    }
    return 0;
}

static void req_done(pier_server_req *r, void *ctx)
{
    (void)r;
    job_req *q = ctx;
    pier_buf_free(&q->body);
}

/* SigV4 over the request as received; answers and returns -1 when it is
 * not authentic; *key_id gets the access key id. */
static int authenticate(pier_server_req *r, job_req *q, char *key_id, size_t key_size)
{
    char hash[65];
    pier_sha256_hex(hash, q->body.ptr ? q->body.ptr : "", q->body.len);
    pier_credsvc_auth auth;
    if (pier_credsvc_authenticate(r, "codepipeline", hash, q->h->opts.lookup, q->h->opts.lookup_ctx,
                                  &auth) == 0) {
        q->authorize = auth.authorize;
        q->authorize_ctx = auth.authorize_ctx;
        snprintf(key_id, key_size, "%s", auth.access_key_id);
        return 0;
    }
    const char *type;
    unsigned status = 400;
    switch (auth.status) {
    case PIER_SIGV4_MISSING:
        type = "MissingAuthenticationTokenException";
        break;
    case PIER_SIGV4_UNKNOWN_KEY:
        type = "UnrecognizedClientException";
        break;
    case PIER_SIGV4_TOKEN_EXPIRED:
        type = "ExpiredTokenException";
        break;
    case PIER_SIGV4_TOKEN_MISSING:
    case PIER_SIGV4_TOKEN_INVALID:
        type = "UnrecognizedClientException";
        break;
    case PIER_SIGV4_MALFORMED:
        type = "IncompleteSignatureException";
        break;
    case PIER_SIGV4_SKEWED:
        type = "InvalidSignatureException";
        status = 403;
        break;
    default:
        type = "InvalidSignatureException";
        status = 403;
        break;
    }
    respond_error(r, status, type, auth.message);
    return -1;
}

static const char *str_at(const json_t *obj, const char *key)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int put_success(pier_server_req *r, job_handler *h, const char *key_id, const char *id,
                       json_t *body)
{
    const json_t *rev = json_object_get(body, "currentRevision");
    const json_t *det = json_object_get(body, "executionDetails");
    const json_t *vars = json_object_get(body, "outputVariables");
    pier_jobapi_success s = {
        .current_revision = str_at(rev, "revision"),
        .continuation_token = str_at(body, "continuationToken"),
        .summary = str_at(det, "summary"),
        .external_execution_id = str_at(det, "externalExecutionId"),
        .percent_complete = -1,
    };
    const json_t *pc = det ? json_object_get(det, "percentComplete") : NULL;
    if (pc) {
        if (!json_is_integer(pc) || json_integer_value(pc) < 0 || json_integer_value(pc) > 100)
            return respond_error(r, 400, "ValidationException",
                                 "executionDetails.percentComplete must be an integer 0..100");
        s.percent_complete = (int)json_integer_value(pc);
    }
    if (vars && !json_is_object(vars))
        return respond_error(r, 400, "ValidationException",
                             "outputVariables must be a map of strings");
    size_t n = vars ? json_object_size(vars) : 0;
    pier_jobapi_var *v = n ? pier_calloc(n, sizeof *v) : NULL;
    size_t i = 0;
    const char *k;
    json_t *val;
    if (vars)
        json_object_foreach((json_t *)vars, k, val)
        {
            if (!json_is_string(val)) {
                free(v);
                return respond_error(r, 400, "ValidationException",
                                     "outputVariables values must be strings");
            }
            v[i].name = (char *)k;
            v[i].value = (char *)json_string_value(val);
            i++;
        }
    s.vars = v;
    s.var_count = i;
    int rc = pier_jobapi_put_success(h->opts.jobs, key_id, id, &s);
    free(v);
    if (rc < 0)
        return respond_code(r, rc);
    return respond(r, 200, json_object());
}

static int put_failure(pier_server_req *r, job_handler *h, const char *key_id, const char *id,
                       json_t *body)
{
    const json_t *fd = json_object_get(body, "failureDetails");
    if (!json_is_object(fd))
        return respond_error(r, 400, "ValidationException", "failureDetails is required");
    int rc = pier_jobapi_put_failure(h->opts.jobs, key_id, id, str_at(fd, "type"),
                                     str_at(fd, "message"), str_at(fd, "externalExecutionId"));
    if (rc < 0)
        return respond_code(r, rc);
    return respond(r, 200, json_object());
}

static void on_end(pier_server_req *r, void *ctx)
{
    job_req *q = ctx;
    job_handler *h = q->h;
    json_t *body = NULL;
    char key_id[PIER_SIGV4_KEY_ID_MAX + 1] = "";
    char action[128];
    const char *target = pier_server_req_header(r, "X-Amz-Target");

    if (q->too_big) {
        respond_error(r, 400, "ValidationException", "request body over 1 MiB");
        goto done;
    }
    if (!target || strncmp(target, TARGET_PREFIX, strlen(TARGET_PREFIX)) != 0) {
        respond_error(r, 400, "UnknownOperationException",
                      "X-Amz-Target must be CodePipeline_20150709.<Operation>");
        goto done;
    }
    const char *op = target + strlen(TARGET_PREFIX);
    if (strcmp(op, "PutJobSuccessResult") && strcmp(op, "PutJobFailureResult") &&
        strcmp(op, "AcknowledgeJob") && strcmp(op, "GetJobDetails")) {
        char msg[256];
        snprintf(msg, sizeof msg, "operation %.100s is not served by pier's job API", op);
        respond_error(r, 400, "UnknownOperationException", msg);
        goto done;
    }
    if (authenticate(r, q, key_id, sizeof key_id) < 0)
        goto done;
    if (pier_json_parse(&body, q->body.ptr ? q->body.ptr : "", q->body.len, "request body") < 0 ||
        !json_is_object(body)) {
        respond_error(r, 400, "SerializationException",
                      body ? "request body must be a JSON object" : pier_error_last());
        goto done;
    }
    const char *id = str_at(body, "jobId");
    if (!id || !id[0]) {
        respond_error(r, 400, "ValidationException", "jobId is required");
        goto done;
    }
    snprintf(action, sizeof action, "codepipeline:%s", op);
    if (q->authorize && q->authorize(q->authorize_ctx, action, "", id) < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "access key %s may not call %s", key_id, op);
        respond_error(r, 400, "AccessDeniedException", msg);
        goto done;
    }
    PIER_DEBUG("job API: %s %s by %s", op, id, key_id);
    if (strcmp(op, "PutJobSuccessResult") == 0) {
        put_success(r, h, key_id, id, body);
    } else if (strcmp(op, "PutJobFailureResult") == 0) {
        put_failure(r, h, key_id, id, body);
    } else if (strcmp(op, "AcknowledgeJob") == 0) {
        pier_job_state st;
        int rc = pier_jobapi_acknowledge(h->opts.jobs, key_id, id, &st);
        if (rc < 0)
            respond_code(r, rc);
        else
            respond(r, 200, json_pack("{s:s}", "status", pier_jobapi_state_name(st)));
    } else {
        pier_buf out = PIER_BUF_INIT;
        int rc = pier_jobapi_details_json(h->opts.jobs, key_id, id, &out);
        if (rc < 0) {
            respond_code(r, rc);
        } else {
            pier_server_resp_header(r, "Content-Type", "application/x-amz-json-1.1");
            pier_server_respond_mem(r, 200, out.ptr, out.len);
        }
        pier_buf_free(&out);
    }
done:
    json_decref(body);
}

static int on_req(pier_handler *self, pier_server_req *r)
{
    job_handler *h = (job_handler *)self;
    if (strcmp(pier_server_req_method(r), "POST") != 0) {
        pier_server_resp_header(r, "Allow", "POST");
        return respond_error(r, 405, "UnknownOperationException", "the job API takes POST");
    }
    int64_t declared = pier_server_req_content_length(r);
    if (declared > (int64_t)MAX_BODY)
        return respond_error(r, 400, "ValidationException", "request body over 1 MiB");
    job_req *q = pier_server_req_alloc(r, sizeof *q);
    memset(q, 0, sizeof *q);
    q->h = h;
    pier_buf_init(&q->body, MAX_BODY);
    pier_server_req_on_done(r, req_done, q);
    pier_server_req_read_body(r, on_body, on_end, q);
    return 0;
}

static void dispose(pier_handler *self)
{
    free(self);
}

pier_handler *pier_jobhttp_new(const pier_jobhttp_options *opts)
{
    job_handler *h = pier_calloc(1, sizeof *h);
    h->base.on_req = on_req;
    h->base.dispose = dispose;
    h->opts = *opts;
    return &h->base;
}

void pier_jobhttp_register(pier_server *srv, const pier_jobhttp_options *opts)
{
    pier_server_match m = {.host = NULL, .path_prefix = PIER_JOBHTTP_PATH};
    pier_server_add(srv, &m, pier_jobhttp_new(opts));
}

int pier_jobhttp_endpoint(pier_buf *out, const char *api_url)
{
    size_t n = strlen(api_url);
    while (n && api_url[n - 1] == '/')
        n--;
    return pier_buf_printf(out, "%.*s" PIER_JOBHTTP_PATH, (int)n, api_url);
}
