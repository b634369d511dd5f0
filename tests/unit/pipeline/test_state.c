/*
 * test_state: the run store. Transitions (create, supersede, start, stages,
 * finish), the last deployed commit advancing only when told, JSON views,
 * crash recovery (a reopened store has no run left InProgress or Queued),
 * a read-only open of a missing file, and run creation from several threads
 * on one store (every run created, ids distinct: transactions do not mix).
 */
#include <pthread.h>
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
#include "pipeline/state.h"

static char dir[64];
static char db[128];

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/pier-state-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(db, sizeof db, "%s/state.db", dir);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    pier_file_remove_tree(dir);
    return 0;
}

static void test_transitions(void **st)
{
    (void)st;
    pier_state *s = NULL;
    assert_int_equal(pier_state_open(&s, db, false), 0);
    assert_int_equal(pier_state_pipeline_ensure(s, "dev"), 0);
    char last[41];
    assert_int_equal(pier_state_last_deployed(s, "dev", last), 0);
    assert_string_equal(last, "");

    int64_t a = 0, b = 0;
    assert_int_equal(pier_state_run_create(s, "dev", "poll", NULL, &a), 0);
    assert_int_equal(pier_state_run_create(s, "dev", "webhook", "abc", &b), 0);
    assert_true(b > a);
    int n = 0;
    assert_int_equal(pier_state_supersede(s, "dev", b, &n), 0);
    assert_int_equal(n, 1);
    pier_run_status rs;
    assert_int_equal(pier_state_run_status(s, a, &rs), 0);
    assert_int_equal(rs, PIER_RUN_SUPERSEDED);

    assert_int_equal(pier_state_run_start(s, b, "/logs/b.log"), 0);
    assert_int_equal(pier_state_run_commits(s, b, "", "1111111111111111111111111111111111111111"),
                     0);
    assert_int_equal(pier_state_stage(s, b, "source", PIER_RUN_IN_PROGRESS, NULL), 0);
    assert_int_equal(pier_state_stage(s, b, "source", PIER_RUN_SUCCEEDED, "first run"), 0);
    assert_int_equal(pier_state_run_changes(s, b, "[{\"path\":\"frontend/a\"}]"), 0);
    assert_int_equal(pier_state_run_deploy(s, b, 3, 1, 0, 1234), 0);
    assert_int_equal(pier_state_run_invalidation(s, b, "I1", "[\"/a\"]"), 0);
    /* not deployed until told */
    assert_int_equal(pier_state_last_deployed(s, "dev", last), 0);
    assert_string_equal(last, "");
    assert_int_equal(
        pier_state_mark_deployed(s, "dev", "1111111111111111111111111111111111111111", b), 0);
    assert_int_equal(pier_state_run_finish(s, b, PIER_RUN_SUCCEEDED, NULL), 0);
    assert_int_equal(pier_state_last_deployed(s, "dev", last), 0);
    assert_string_equal(last, "1111111111111111111111111111111111111111");

    json_t *r = NULL;
    assert_int_equal(pier_state_run_json(s, b, &r), 0);
    assert_string_equal(pier_json_str(r, "status", ""), "Succeeded");
    assert_string_equal(pier_json_str(r, "trigger", ""), "webhook");
    assert_int_equal(pier_json_int(r, "uploaded", -1), 3);
    assert_true(json_is_array(json_object_get(r, "changed_files")));
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(r, "invalidation_paths"), 0)), "/a");
    assert_string_equal(pier_json_str(json_array_get(json_object_get(r, "stages"), 0), "name", ""),
                        "source");
    json_decref(r);
    assert_int_equal(pier_state_run_json(s, 999, &r), PIER_ENOTFOUND);

    json_t *runs = NULL;
    assert_int_equal(pier_state_runs_json(s, "dev", 10, &runs), 0);
    assert_int_equal(json_array_size(runs), 2);
    assert_int_equal(pier_json_int(json_array_get(runs, 0), "id", 0), b);
    json_decref(runs);
    assert_int_equal(pier_state_runs_json(s, "prod", 10, &runs), 0);
    assert_int_equal(json_array_size(runs), 0);
    json_decref(runs);
    pier_state_close(s);
}

static void test_recovery(void **st)
{
    (void)st;
    pier_state *s = NULL;
    assert_int_equal(pier_state_open(&s, db, false), 0);
    int64_t a = 0, b = 0;
    assert_int_equal(pier_state_run_create(s, "dev", "poll", NULL, &a), 0);
    assert_int_equal(pier_state_run_start(s, a, NULL), 0);
    assert_int_equal(pier_state_stage(s, a, "build", PIER_RUN_IN_PROGRESS, NULL), 0);
    assert_int_equal(pier_state_run_create(s, "dev", "poll", NULL, &b), 0);
    pier_state_close(s); /* as if the process died here */

    assert_int_equal(pier_state_open(&s, db, false), 0);
    int n = 0;
    assert_int_equal(pier_state_recover(s, &n), 0);
    assert_int_equal(n, 2);
    json_t *r = NULL;
    assert_int_equal(pier_state_run_json(s, a, &r), 0);
    assert_string_equal(pier_json_str(r, "status", ""), "Failed");
    assert_string_equal(pier_json_str(r, "reason", ""), "interrupted");
    json_t *build = json_array_get(json_object_get(r, "stages"), 1);
    assert_string_equal(pier_json_str(build, "name", ""), "build");
    assert_string_equal(pier_json_str(build, "status", ""), "Failed");
    json_decref(r);
    pier_run_status rs;
    assert_int_equal(pier_state_run_status(s, b, &rs), 0);
    assert_int_equal(rs, PIER_RUN_FAILED);
    assert_int_equal(pier_state_recover(s, &n), 0);
    assert_int_equal(n, 0);
    pier_state_close(s);

    /* read-only opens see the same; a missing file is ENOTFOUND */
    assert_int_equal(pier_state_open(&s, db, true), 0);
    assert_int_equal(pier_state_run_status(s, a, &rs), 0);
    assert_int_equal(rs, PIER_RUN_FAILED);
    pier_state_close(s);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/none/x.db", dir);
    assert_int_equal(pier_state_open(&s, missing, true), PIER_ENOTFOUND);
    assert_null(s);
    assert_int_equal(pier_run_status_parse("Skipped", &rs), 0);
    assert_int_equal(rs, PIER_RUN_SKIPPED);
    assert_int_equal(pier_run_status_parse("Done", &rs), PIER_EINVALID);
}

/* `pier up` creates runs from pollers, webhooks and workers at once. */
#define RACE_THREADS 4
#define RACE_RUNS    150

typedef struct {
    pier_state *s;          /* shared store */
    const char *pipeline;   /* this thread's pipeline */
    int failures;           /* run_create errors */
    int64_t ids[RACE_RUNS]; /* the ids it got */
} race_arg;

static void *race_main(void *p)
{
    race_arg *a = p;
    for (int i = 0; i < RACE_RUNS; i++) {
        a->ids[i] = 0;
        if (pier_state_run_create(a->s, a->pipeline, "poll", NULL, &a->ids[i]) != 0)
            a->failures++;
        pier_state_stage(a->s, a->ids[i], "source", PIER_RUN_IN_PROGRESS, NULL);
    }
    return NULL;
}

static void test_concurrent_create(void **st)
{
    (void)st;
    pier_state *s = NULL;
    assert_int_equal(pier_state_open(&s, db, false), 0);
    static race_arg args[RACE_THREADS];
    static const char *const names[RACE_THREADS] = {"dev", "prod", "a", "b"};
    pthread_t t[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        args[i] = (race_arg){.s = s, .pipeline = names[i]};
        assert_int_equal(pthread_create(&t[i], NULL, race_main, &args[i]), 0);
    }
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(t[i], NULL);
    static int64_t all[RACE_THREADS * RACE_RUNS];
    size_t n = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        assert_int_equal(args[i].failures, 0);
        for (int j = 0; j < RACE_RUNS; j++) {
            assert_true(args[i].ids[j] > 0);
            for (size_t k = 0; k < n; k++)
                assert_true(all[k] != args[i].ids[j]);
            all[n++] = args[i].ids[j];
            /* each id is a run of the thread's own pipeline */
            json_t *row = NULL;
            assert_int_equal(pier_state_run_json(s, args[i].ids[j], &row), 0);
            assert_string_equal(pier_json_str(row, "pipeline", ""), names[i]);
            json_decref(row);
        }
    }
    pier_state_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transitions),
        cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_concurrent_create),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
