/*
 * test_jobhttp: invoke actions against a real job API server. A server on
 * 127.0.0.1:0 carries the job API handler with a static credential lookup
 * (the credentials endpoint of the full stack is not wired here); actions
 * run Python handlers written like CodePipeline Lambdas with Debian's
 * boto3 (/usr/bin/python3): success with output variables (plus the error
 * answers for an unknown job and a second report), reported failure, exit
 * without reporting (stderr tail, masked), timeout (process group killed),
 * continuation-token re-invocation, and an unsigned request refused.
 *
 * Debian's boto3 1.26 / botocore 1.29 predate AWS_ENDPOINT_URL_<SERVICE>
 * (botocore 1.31), so the handlers pass
 * endpoint_url=os.environ["AWS_ENDPOINT_URL_CODEPIPELINE"] themselves.
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
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "net/http.h"
#include "net/server.h"
#include "pipeline/action.h"
#include "pipeline/jobapi.h"
#include "stack/jobhttp.h"

#define KEY_ID "AKIAPIERTESTKEY00001"
#define SECRET "pier-test-secret-key-0123456789abcdefghij"

static int lookup(void *ctx, const char *key_id, pier_sigv4_secret *secret,
                  pier_s3api_authorize_fn *authorize, void **authorize_ctx)
{
    (void)ctx;
    if (strcmp(key_id, KEY_ID) != 0)
        return PIER_ENOTFOUND;
    pier_buf_puts(&secret->secret, SECRET);
    *authorize = NULL;
    *authorize_ctx = NULL;
    return 0;
}

typedef struct {
    pier_server *srv;
    pier_jobapi *jobs;
    char *dir;
    pier_buf endpoint;
    pthread_mutex_t mu;
    pier_buf log; /* every line, "O: " or "E: " prefixed */
} fixture;

static int setup(void **st)
{
    fixture *f = pier_calloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pier_buf_init(&f->endpoint, 1024);
    pier_buf_init(&f->log, 1 << 20);
    pier_jobapi_new(&f->jobs);
    pier_server_options so = {.listen = "127.0.0.1:0", .threads = 2};
    assert_int_equal(pier_server_new(&f->srv, &so), 0);
    pier_jobhttp_options jo = {.jobs = f->jobs, .lookup = lookup};
    pier_jobhttp_register(f->srv, &jo);
    if (pier_server_start(f->srv) != 0)
        fail_msg("start: %s", pier_error_last());
    pier_jobhttp_endpoint(&f->endpoint, pier_server_url(f->srv));
    char tmpl[] = "/tmp/pier-jobhttp-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = pier_strdup(tmpl);
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    fixture *f = *st;
    pier_server_free(f->srv);
    pier_jobapi_free(f->jobs);
    pier_file_remove_tree(f->dir);
    free(f->dir);
    pier_buf_free(&f->endpoint);
    pier_buf_free(&f->log);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return 0;
}

static void on_log(void *ctx, bool is_stderr, const char *line)
{
    fixture *f = ctx;
    pthread_mutex_lock(&f->mu);
    pier_buf_printf(&f->log, "%s: %s\n", is_stderr ? "E" : "O", line);
    pthread_mutex_unlock(&f->mu);
}

/* Replaces "SECRETVALUE" with "***". */
static void mask(void *ctx, pier_buf *text)
{
    (void)ctx;
    char *p;
    while ((p = strstr(text->ptr ? text->ptr : "", "SECRETVALUE"))) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + 11, strlen(p + 11) + 1);
        text->len -= 8;
    }
}

static const char *PRELUDE =
    "import json, os, sys, time\n"
    "import boto3\n"
    "event = json.load(sys.stdin)\n"
    "with open(os.environ['PIER_JOB_EVENT_FILE']) as fh:\n"
    "    assert json.load(fh) == event\n"
    "job = event['CodePipeline.job']\n"
    "data = job['data']\n"
    "params = data['actionConfiguration']['configuration'].get('UserParameters', '')\n"
    "cp = boto3.client('codepipeline', region_name=os.environ['AWS_REGION'],\n"
    "                  endpoint_url=os.environ['AWS_ENDPOINT_URL_CODEPIPELINE'])\n";

/* Writes PRELUDE + body to <dir>/<name>.py and returns the command. */
static char *handler(fixture *f, const char *name, const char *body)
{
    pier_buf path = PIER_BUF_INIT, text = PIER_BUF_INIT, cmd = PIER_BUF_INIT;
    pier_buf_printf(&path, "%s/%s.py", f->dir, name);
    pier_buf_printf(&text, "%s%s", PRELUDE, body);
    assert_int_equal(pier_file_write_atomic(path.ptr, text.ptr, text.len, 0644), 0);
    pier_buf_printf(&cmd, "exec /usr/bin/python3 %s", path.ptr);
    pier_buf_free(&path);
    pier_buf_free(&text);
    return pier_buf_detach(&cmd);
}

static void run(fixture *f, const char *command, unsigned timeout, pier_action_result *res)
{
    static const char *const env[] = {"AWS_ACCESS_KEY_ID=" KEY_ID, "AWS_SECRET_ACCESS_KEY=" SECRET,
                                      "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1"};
    pier_action_options o = {
        .name = "notify",
        .command = command,
        .cwd = f->dir,
        .jobs = f->jobs,
        .job = {.user_parameters = "{\"message\":\"hi\"}",
                .function_name = "notify",
                .owner_key_id = KEY_ID,
                .pipeline = "web",
                .action = "notify"},
        .env = env,
        .env_count = 4,
        .codepipeline_endpoint = f->endpoint.ptr,
        .region = "eu-west-1",
        .timeout_sec = timeout,
        .max_invocations = 3,
        .kill_grace_ms = 200,
        .log = on_log,
        .log_ctx = f,
        .mask = mask,
    };
    pier_buf_reset(&f->log);
    assert_int_equal(pier_action_run(&o, res), 0);
}

static void test_success_with_variables(void **st)
{
    fixture *f = *st;
    char *cmd = handler(
        f, "ok",
        "assert json.loads(params) == {'message': 'hi'}\n"
        "assert 'continuationToken' not in data\n"
        "try:\n"
        "    cp.put_job_success_result(jobId='00000000-0000-4000-8000-000000000000')\n"
        "except cp.exceptions.JobNotFoundException as e:\n"
        "    print('unknown job:', e.response['Error']['Code'])\n"
        "cp.put_job_success_result(jobId=job['id'],\n"
        "    executionDetails={'summary': 'invalidated', 'externalExecutionId': 'I123',\n"
        "                      'percentComplete': 100},\n"
        "    outputVariables={'INVALIDATION_ID': 'I123', 'REGION': os.environ['AWS_REGION']})\n"
        "try:\n"
        "    cp.put_job_failure_result(jobId=job['id'],\n"
        "        failureDetails={'type': 'JobFailed', 'message': 'late'})\n"
        "except cp.exceptions.InvalidJobStateException as e:\n"
        "    print('second report:', e.response['Error']['Code'])\n"
        "print('done')\n");
    pier_action_result res;
    run(f, cmd, 60, &res);
    if (res.status != PIER_ACTION_SUCCEEDED)
        fail_msg("%s\nlog:\n%s", res.message, pier_buf_cstr(&f->log));
    assert_int_equal(res.invocations, 1);
    assert_string_equal(res.summary, "invalidated");
    assert_string_equal(res.external_execution_id, "I123");
    assert_int_equal(res.var_count, 2);
    bool region = false;
    for (size_t i = 0; i < res.var_count; i++)
        region |=
            strcmp(res.vars[i].name, "REGION") == 0 && strcmp(res.vars[i].value, "eu-west-1") == 0;
    assert_true(region);
    assert_non_null(strstr(f->log.ptr, "O: unknown job: JobNotFoundException"));
    assert_non_null(strstr(f->log.ptr, "O: second report: InvalidJobStateException"));
    assert_non_null(strstr(f->log.ptr, "O: done"));
    pier_action_result_clear(&res);
    free(cmd);
}

static void test_reported_failure(void **st)
{
    fixture *f = *st;
    char *cmd = handler(f, "fail",
                        "cp.put_job_failure_result(jobId=job['id'],\n"
                        "    failureDetails={'type': 'JobFailed', 'message': 'smoke test failed',\n"
                        "                    'externalExecutionId': 'run-9'})\n");
    pier_action_result res;
    run(f, cmd, 60, &res);
    assert_int_equal(res.status, PIER_ACTION_FAILED);
    assert_string_equal(res.failure_type, "JobFailed");
    assert_non_null(strstr(res.message, "smoke test failed"));
    assert_string_equal(res.external_execution_id, "run-9");
    assert_string_equal(pier_error_last(), res.message);
    pier_action_result_clear(&res);
    free(cmd);
}

static void test_exit_without_report(void **st)
{
    fixture *f = *st;
    char *cmd = handler(f, "silent",
                        "for i in range(30):\n"
                        "    print('line', i, file=sys.stderr)\n"
                        "print('token SECRETVALUE leaked', file=sys.stderr)\n"
                        "sys.exit(3)\n");
    pier_action_result res;
    run(f, cmd, 60, &res);
    assert_int_equal(res.status, PIER_ACTION_FAILED);
    assert_int_equal(res.exit_status, 3);
    assert_non_null(strstr(res.message, "without reporting"));
    assert_non_null(strstr(res.message, "token *** leaked"));
    assert_null(strstr(res.message, "SECRETVALUE"));
    assert_null(strstr(res.message, "\n"));
    /* The tail keeps the last 20 lines only. */
    assert_non_null(strstr(res.stderr_tail, "line 29"));
    assert_null(strstr(res.stderr_tail, "line 10\n"));
    assert_null(strstr(f->log.ptr, "SECRETVALUE"));
    pier_action_result_clear(&res);
    free(cmd);
}

static void test_timeout_kills_group(void **st)
{
    fixture *f = *st;
    /* A shell with a background child: both must die. */
    char pidfile[512];
    snprintf(pidfile, sizeof pidfile, "%s/bg.pid", f->dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sleep 30 & echo $! > %s; echo started; sleep 30", pidfile);
    pier_action_result res;
    run(f, cmd, 1, &res);
    assert_int_equal(res.status, PIER_ACTION_TIMED_OUT);
    assert_non_null(strstr(res.message, "timed out"));
    assert_non_null(strstr(f->log.ptr, "O: started"));
    pier_buf pid = PIER_BUF_INIT;
    assert_int_equal(pier_file_read(pidfile, &pid), 0);
    char *end;
    long bg = strtol(pid.ptr, &end, 10);
    assert_true(bg > 0);
    /* Gone (or a zombie reaped by init soon): kill(0) fails or it is not
     * sleeping any more. */
    char stat[64];
    snprintf(stat, sizeof stat, "/proc/%ld/stat", bg);
    pier_buf s = PIER_BUF_INIT;
    for (int i = 0; i < 50 && pier_file_read(stat, &s) == 0 && !strstr(s.ptr, ") Z"); i++) {
        pier_buf_reset(&s);
        usleep(20000);
    }
    assert_true(s.len == 0 || strstr(s.ptr, ") Z") != NULL);
    pier_buf_free(&s);
    pier_buf_free(&pid);
    pier_action_result_clear(&res);
}

static void test_continuation(void **st)
{
    fixture *f = *st;
    char *cmd =
        handler(f, "cont",
                "tok = data.get('continuationToken')\n"
                "print('token', tok)\n"
                "if tok is None:\n"
                "    cp.put_job_success_result(jobId=job['id'], continuationToken='step2')\n"
                "else:\n"
                "    cp.put_job_success_result(jobId=job['id'],\n"
                "        outputVariables={'STEP': tok})\n");
    pier_action_result res;
    run(f, cmd, 60, &res);
    if (res.status != PIER_ACTION_SUCCEEDED)
        fail_msg("%s\nlog:\n%s", res.message, pier_buf_cstr(&f->log));
    assert_int_equal(res.invocations, 2);
    assert_non_null(strstr(f->log.ptr, "O: token None\nO: token step2"));
    assert_int_equal(res.var_count, 1);
    assert_string_equal(res.vars[0].value, "step2");
    pier_action_result_clear(&res);

    /* A handler that always continues hits the limit (3). */
    free(cmd);
    cmd = handler(f, "forever",
                  "cp.put_job_success_result(jobId=job['id'], "
                  "continuationToken='again')\n");
    run(f, cmd, 60, &res);
    assert_int_equal(res.status, PIER_ACTION_FAILED);
    assert_int_equal(res.invocations, 3);
    assert_non_null(strstr(res.message, "limit"));
    pier_action_result_clear(&res);
    free(cmd);
}

static void test_unsigned_and_bad_target(void **st)
{
    fixture *f = *st;
    pier_http_client *c;
    pier_http_client_options co = {0};
    assert_int_equal(pier_http_client_new(&c, &co), 0);
    const char *body = "{\"jobId\":\"x\"}";
    static const char *const targets[] = {"CodePipeline_20150709.PutJobSuccessResult",
                                          "CodePipeline_20150709.DeletePipeline"};
    static const char *const want[] = {"MissingAuthenticationTokenException",
                                       "UnknownOperationException"};
    for (int i = 0; i < 2; i++) {
        pier_http_request req = PIER_HTTP_REQUEST_INIT;
        req.method = "POST";
        req.url = f->endpoint.ptr;
        req.body = body;
        req.body_len = strlen(body);
        pier_http_headers_add(&req.headers, "Content-Type", "application/x-amz-json-1.1");
        pier_http_headers_add(&req.headers, "X-Amz-Target", targets[i]);
        pier_http_response resp;
        pier_http_response_init(&resp);
        assert_int_equal(pier_http_do(c, &req, &resp), 0);
        assert_int_equal(resp.status, 400);
        assert_non_null(strstr(pier_buf_cstr(&resp.body), want[i]));
        pier_http_response_free(&resp);
        pier_http_headers_free(&req.headers);
    }
    pier_http_client_free(c);
}

int main(void)
{
    unsetenv("AWS_CA_BUNDLE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success_with_variables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reported_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_without_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kills_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_continuation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsigned_and_bad_target, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
