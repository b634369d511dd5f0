/*
 * test_report: the report shapes over a real store: a run row becomes the
 * documented run shape (deploy and invalidation objects or null, durations,
 * has_log instead of the log path); runs pages with limit/before and
 * next_before; pipeline summaries without a config (store only) and with
 * one (branch, paths, site URL from the edge URL); unknown names and ids;
 * and the engine's forcing triggers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "pipeline/engine.h"
#include "pipeline/report.h"
#include "pipeline/state.h"

static char dir[64];

static pier_state *open_store(void)
{
    snprintf(dir, sizeof dir, "/tmp/pier-report-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char db[128];
    snprintf(db, sizeof db, "%s/state.db", dir);
    pier_state *s = NULL;
    assert_int_equal(pier_state_open(&s, db, false), 0);
    return s;
}

static void close_store(pier_state *s)
{
    pier_state_close(s);
    pier_file_remove_tree(dir);
}

static int64_t deployed_run(pier_state *s, const char *pipeline)
{
    int64_t id = 0;
    assert_int_equal(pier_state_pipeline_ensure(s, pipeline), 0);
    assert_int_equal(pier_state_run_create(s, pipeline, "poll", NULL, &id), 0);
    assert_int_equal(pier_state_run_start(s, id, "/data/logs/1.log"), 0);
    assert_int_equal(
        pier_state_run_commits(s, id, NULL, "0123456789abcdef0123456789abcdef01234567"), 0);
    assert_int_equal(pier_state_stage(s, id, "source", PIER_RUN_SUCCEEDED, "1 file changed"), 0);
    assert_int_equal(
        pier_state_run_changes(s, id, "[{\"path\":\"a.html\",\"status\":\"modified\"}]"), 0);
    assert_int_equal(pier_state_run_deploy(s, id, 3, 4, 1, 1234), 0);
    assert_int_equal(pier_state_run_invalidation(s, id, "IABC", "[\"/a.html\"]"), 0);
    assert_int_equal(pier_state_run_finish(s, id, PIER_RUN_SUCCEEDED, NULL), 0);
    return id;
}

static void test_run_shape(void **st)
{
    (void)st;
    pier_state *s = open_store();
    int64_t id = deployed_run(s, "dev");
    pier_report_ctx c = {s, NULL, NULL, NULL};
    json_t *r = NULL;
    assert_int_equal(pier_report_run(&r, &c, id), 0);
    assert_string_equal(pier_json_str(r, "status", ""), "Succeeded");
    assert_null(json_object_get(r, "log_path"));
    assert_true(json_is_true(json_object_get(r, "has_log")));
    assert_true(json_is_integer(json_object_get(r, "duration_ms")));
    json_t *d = json_object_get(r, "deploy");
    assert_int_equal(pier_json_int(d, "uploaded", -1), 3);
    assert_int_equal(pier_json_int(d, "skipped", -1), 4);
    assert_int_equal(pier_json_int(d, "deleted", -1), 1);
    assert_int_equal(pier_json_int(d, "bytes", -1), 1234);
    json_t *inv = json_object_get(r, "invalidation");
    assert_string_equal(pier_json_str(inv, "id", ""), "IABC");
    assert_string_equal(json_string_value(json_array_get(json_object_get(inv, "paths"), 0)),
                        "/a.html");
    assert_string_equal(
        pier_json_str(json_array_get(json_object_get(r, "changed_files"), 0), "path", ""),
        "a.html");
    json_t *src = json_array_get(json_object_get(r, "stages"), 0);
    assert_string_equal(pier_json_str(src, "name", ""), "source");
    assert_string_equal(pier_json_str(src, "message", ""), "1 file changed");
    assert_true(json_is_null(json_object_get(r, "commit"))); /* no mirror */
    json_decref(r);

    /* A queued run: no deploy, no invalidation, no log, no duration. */
    int64_t q = 0;
    assert_int_equal(pier_state_run_create(s, "dev", "manual", NULL, &q), 0);
    assert_int_equal(pier_report_run(&r, &c, q), 0);
    assert_true(json_is_null(json_object_get(r, "deploy")));
    assert_true(json_is_null(json_object_get(r, "invalidation")));
    assert_true(json_is_null(json_object_get(r, "duration_ms")));
    assert_true(json_is_false(json_object_get(r, "has_log")));
    assert_int_equal(json_array_size(json_object_get(r, "changed_files")), 0);
    json_decref(r);
    assert_int_equal(pier_report_run(&r, &c, 9999), PIER_ENOTFOUND);
    close_store(s);
}

static void test_pages(void **st)
{
    (void)st;
    pier_state *s = open_store();
    int64_t ids[7];
    for (int i = 0; i < 7; i++)
        ids[i] = deployed_run(s, i % 2 ? "prod" : "dev"); /* dev: 0 2 4 6 */
    pier_report_ctx c = {s, NULL, NULL, NULL};
    json_t *p = NULL;
    assert_int_equal(pier_report_runs(&p, &c, "dev", 3, 0), 0);
    json_t *runs = json_object_get(p, "runs");
    assert_int_equal(json_array_size(runs), 3);
    assert_int_equal(pier_json_int(json_array_get(runs, 0), "id", 0), ids[6]);
    assert_int_equal(pier_json_int(json_array_get(runs, 2), "id", 0), ids[2]);
    assert_int_equal(pier_json_int(p, "next_before", 0), ids[2]);
    json_decref(p);
    assert_int_equal(pier_report_runs(&p, &c, "dev", 3, ids[2]), 0);
    runs = json_object_get(p, "runs");
    assert_int_equal(json_array_size(runs), 1);
    assert_int_equal(pier_json_int(json_array_get(runs, 0), "id", 0), ids[0]);
    assert_true(json_is_null(json_object_get(p, "next_before")));
    json_decref(p);
    /* every pipeline; a limit past the maximum is clamped, 0 means 20 */
    assert_int_equal(pier_report_runs(&p, &c, NULL, 100000, 0), 0);
    assert_int_equal(json_array_size(json_object_get(p, "runs")), 7);
    json_decref(p);
    assert_int_equal(pier_report_runs(&p, &c, NULL, 0, ids[1]), 0);
    assert_int_equal(json_array_size(json_object_get(p, "runs")), 1);
    json_decref(p);
    close_store(s);
}

static void test_pipelines(void **st)
{
    (void)st;
    pier_state *s = open_store();
    int64_t id = deployed_run(s, "dev");
    assert_int_equal(
        pier_state_mark_deployed(s, "dev", "0123456789abcdef0123456789abcdef01234567", id), 0);
    pier_report_ctx c = {s, NULL, NULL, "http://127.0.0.1:8080"};
    json_t *a = NULL;
    assert_int_equal(pier_report_pipelines(&a, &c), 0);
    assert_int_equal(json_array_size(a), 1);
    json_t *p = json_array_get(a, 0);
    assert_string_equal(pier_json_str(p, "name", ""), "dev");
    assert_true(json_is_null(json_object_get(p, "site_url"))); /* no config: no host */
    json_t *ld = json_object_get(p, "last_deployed");
    assert_string_equal(pier_json_str(ld, "short_sha", ""), "0123456");
    assert_int_equal(pier_json_int(ld, "run_id", 0), id);
    assert_int_equal(pier_json_int(json_object_get(p, "latest_run"), "id", 0), id);
    json_decref(a);

    static const char yml[] = "pipelines:\n"
                              "  - name: dev\n"
                              "    source: {repo: ., branch: develop, paths: [\"web/**\"]}\n"
                              "  - name: other\n"
                              "    source: {repo: .}\n";
    pier_pipeconf *conf = NULL;
    assert_int_equal(pier_pipeconf_load_string(&conf, "pier.yml", "/tmp", yml, sizeof yml - 1), 0);
    c.conf = conf;
    assert_int_equal(pier_report_pipelines(&a, &c), 0);
    assert_int_equal(json_array_size(a), 2);
    p = json_array_get(a, 0);
    assert_string_equal(pier_json_str(p, "branch", ""), "develop");
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "paths"), 0)),
                        "web/**");
    assert_string_equal(pier_json_str(p, "site_url", ""), "http://dev.localhost:8080/");
    p = json_array_get(a, 1);
    assert_true(json_is_null(json_object_get(p, "last_deployed")));
    assert_true(json_is_null(json_object_get(p, "latest_run")));
    json_decref(a);
    assert_int_equal(pier_report_pipeline(&p, &c, "other"), 0);
    json_decref(p);
    assert_int_equal(pier_report_pipeline(&p, &c, "nope"), PIER_ENOTFOUND);
    assert_int_equal(pier_report_status(&p, &c, "dev", 5), 0);
    assert_int_equal(json_array_size(json_object_get(p, "pipelines")), 2);
    assert_int_equal(json_array_size(json_object_get(p, "runs")), 1);
    json_decref(p);
    pier_pipeconf_free(conf);
    close_store(s);
}

static void test_forcing_triggers(void **st)
{
    (void)st;
    static const struct {
        const char *trigger;
        bool forces;
    } cases[] = {{"redeploy", true}, {"retry", false}, {"manual", false}, {"poll", false},
                 {"webhook", false}, {"", false},      {NULL, false},     {"Redeploy", false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(pier_engine_trigger_forces_build(cases[i].trigger), cases[i].forces);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_shape),
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_pipelines),
        cmocka_unit_test(test_forcing_triggers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
