/*
 * test_jobapi: the job registry: the event JSON handed to a handler (with and
 * without a continuation token), success with output variables, failure
 * types, double reports (InvalidJobState), unknown ids, owner keys, wait
 * with a timeout and a report from another thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"
#include "pipeline/jobapi.h"

static pier_jobapi_spec spec(const char *token)
{
    static const pier_jobapi_artifact in[] = {{"SourceArtifact", "abc123", "site", "runs/7.zip"}};
    pier_jobapi_spec s = {
        .account_id = "123456789012",
        .function_name = "notify",
        .user_parameters = "{\"paths\":[\"/*\"]}",
        .inputs = in,
        .input_count = 1,
        .access_key_id = "ASIAPIER",
        .secret_access_key = "sek",
        .session_token = "tok",
        .expiration = "2030-01-01T00:00:00Z",
        .continuation_token = token,
        .owner_key_id = "ASIAPIER",
        .pipeline = "web",
        .action = "notify",
    };
    return s;
}

static void test_event_json(void **st)
{
    (void)st;
    pier_jobapi *r;
    pier_jobapi_new(&r);
    char id[PIER_JOBAPI_ID_LEN + 1];
    pier_jobapi_spec s = spec(NULL);
    assert_int_equal(pier_jobapi_create(r, &s, id), 0);
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '4');
    pier_buf b = PIER_BUF_INIT;
    assert_int_equal(pier_jobapi_event_json(r, id, &b), 0);
    json_t *ev;
    assert_int_equal(pier_json_parse(&ev, b.ptr, b.len, "event"), 0);
    json_t *job = json_object_get(ev, "CodePipeline.job");
    assert_string_equal(pier_json_str(job, "id", ""), id);
    assert_string_equal(pier_json_str(job, "accountId", ""), "123456789012");
    json_t *data = json_object_get(job, "data");
    json_t *conf = json_object_get(json_object_get(data, "actionConfiguration"), "configuration");
    assert_string_equal(pier_json_str(conf, "UserParameters", ""), "{\"paths\":[\"/*\"]}");
    assert_string_equal(pier_json_str(conf, "FunctionName", ""), "notify");
    json_t *in0 = json_array_get(json_object_get(data, "inputArtifacts"), 0);
    assert_string_equal(pier_json_str(in0, "name", ""), "SourceArtifact");
    assert_string_equal(
        pier_json_str(json_object_get(json_object_get(in0, "location"), "s3Location"), "bucketName",
                      ""),
        "site");
    assert_int_equal(json_array_size(json_object_get(data, "outputArtifacts")), 0);
    json_t *cred = json_object_get(data, "artifactCredentials");
    assert_string_equal(pier_json_str(cred, "accessKeyId", ""), "ASIAPIER");
    assert_string_equal(pier_json_str(cred, "sessionToken", ""), "tok");
    assert_null(json_object_get(data, "continuationToken"));
    json_decref(ev);

    /* A re-invocation carries the token. */
    s = spec("step-2");
    char id2[PIER_JOBAPI_ID_LEN + 1];
    pier_jobapi_create(r, &s, id2);
    assert_string_not_equal(id, id2);
    pier_buf_reset(&b);
    pier_jobapi_event_json(r, id2, &b);
    assert_non_null(strstr(b.ptr, "\"continuationToken\":\"step-2\""));
    /* GetJobDetails adds the pipeline context; other keys do not see it. */
    pier_buf_reset(&b);
    assert_int_equal(pier_jobapi_details_json(r, "ASIAPIER", id2, &b), 0);
    assert_non_null(strstr(b.ptr, "\"jobDetails\""));
    assert_non_null(strstr(b.ptr, "\"pipelineName\":\"web\""));
    assert_int_equal(pier_jobapi_details_json(r, "AKIAOTHER", id2, &b), PIER_ENOTFOUND);
    pier_buf_free(&b);
    pier_jobapi_free(r);
}

static void test_success_and_continuation(void **st)
{
    (void)st;
    pier_jobapi *r;
    pier_jobapi_new(&r);
    char id[PIER_JOBAPI_ID_LEN + 1];
    pier_jobapi_spec s = spec(NULL);
    pier_jobapi_create(r, &s, id);
    assert_int_equal(pier_jobapi_wait(r, id, 0), PIER_ETIMEOUT);
    pier_job_state state;
    assert_int_equal(pier_jobapi_acknowledge(r, "ASIAPIER", id, &state), 0);
    assert_int_equal(state, PIER_JOB_IN_PROGRESS);
    pier_jobapi_var vars[] = {{"URL", "https://x"}, {"COUNT", "3"}};
    pier_jobapi_success ok = {.continuation_token = "next",
                              .summary = "half done",
                              .external_execution_id = "ext-1",
                              .percent_complete = 50,
                              .vars = vars,
                              .var_count = 2};
    /* Another key cannot report. */
    assert_int_equal(pier_jobapi_put_success(r, "AKIAOTHER", id, &ok), PIER_ENOTFOUND);
    assert_int_equal(pier_jobapi_put_success(r, "ASIAPIER", id, &ok), 0);
    assert_int_equal(pier_jobapi_wait(r, id, 0), 0);
    /* Twice: invalid state. */
    assert_int_equal(pier_jobapi_put_success(r, "ASIAPIER", id, &ok), PIER_ECONFLICT);
    assert_int_equal(pier_jobapi_put_failure(r, "ASIAPIER", id, "JobFailed", "x", NULL),
                     PIER_ECONFLICT);
    pier_jobapi_result res = {0};
    assert_int_equal(pier_jobapi_get(r, id, &res), 0);
    assert_int_equal(res.state, PIER_JOB_SUCCEEDED);
    assert_string_equal(res.continuation_token, "next");
    assert_string_equal(res.summary, "half done");
    assert_int_equal(res.percent_complete, 50);
    assert_int_equal(res.var_count, 2);
    assert_string_equal(res.vars[1].name, "COUNT");
    assert_string_equal(res.vars[1].value, "3");
    pier_jobapi_result_clear(&res);
    pier_jobapi_remove(r, id);
    assert_int_equal(pier_jobapi_get(r, id, &res), PIER_ENOTFOUND);
    assert_int_equal(pier_jobapi_put_success(r, NULL, id, &ok), PIER_ENOTFOUND);
    pier_jobapi_free(r);
}

static void test_failure_validation(void **st)
{
    (void)st;
    pier_jobapi *r;
    pier_jobapi_new(&r);
    char id[PIER_JOBAPI_ID_LEN + 1];
    pier_jobapi_spec s = spec(NULL);
    s.owner_key_id = NULL;
    pier_jobapi_create(r, &s, id);
    assert_int_equal(pier_jobapi_put_failure(r, NULL, id, "Oops", "m", NULL), PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "failureDetails.type"));
    assert_int_equal(pier_jobapi_put_failure(r, NULL, id, "JobFailed", NULL, NULL), PIER_EINVALID);
    pier_jobapi_success bad = {.percent_complete = 101};
    assert_int_equal(pier_jobapi_put_success(r, NULL, id, &bad), PIER_EINVALID);
    assert_int_equal(
        pier_jobapi_put_failure(r, "ANYKEY", id, "ConfigurationError", "no bucket", "ext-9"), 0);
    pier_jobapi_result res = {0};
    pier_jobapi_get(r, id, &res);
    assert_int_equal(res.state, PIER_JOB_FAILED);
    assert_string_equal(res.failure_type, "ConfigurationError");
    assert_string_equal(res.failure_message, "no bucket");
    assert_string_equal(res.external_execution_id, "ext-9");
    pier_jobapi_result_clear(&res);
    assert_int_equal(pier_jobapi_put_failure(r, NULL, "nope", "JobFailed", "m", NULL),
                     PIER_ENOTFOUND);
    pier_jobapi_free(r);
}

typedef struct {
    pier_jobapi *r;
    char id[PIER_JOBAPI_ID_LEN + 1];
} reporter;

static void *report_later(void *arg)
{
    reporter *p = arg;
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    pier_jobapi_success ok = {.percent_complete = -1};
    pier_jobapi_put_success(p->r, NULL, p->id, &ok);
    return NULL;
}

static void test_wait_across_threads(void **st)
{
    (void)st;
    reporter p;
    pier_jobapi_new(&p.r);
    pier_jobapi_spec s = spec(NULL);
    s.owner_key_id = NULL;
    pier_jobapi_create(p.r, &s, p.id);
    assert_int_equal(pier_jobapi_wait(p.r, p.id, 10), PIER_ETIMEOUT);
    pthread_t t;
    pthread_create(&t, NULL, report_later, &p);
    assert_int_equal(pier_jobapi_wait(p.r, p.id, 10000), 0);
    pthread_join(t, NULL);
    assert_int_equal(pier_jobapi_wait(p.r, "unknown", 10), PIER_ENOTFOUND);
    pier_jobapi_free(p.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_json),
        cmocka_unit_test(test_success_and_continuation),
        cmocka_unit_test(test_failure_validation),
        cmocka_unit_test(test_wait_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
