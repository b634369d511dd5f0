/*
 * test_buildspec: valid buildspecs parse into the expected model; every file
 * under tests/data/build/errors/ fails with the position and message its
 * first line names ("# error: LINE:COLUMN: message").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "build/buildspec.h"

static char *data_path(const char *rel)
{
    const char *base = getenv("PIER_TESTDATA");
    assert_non_null(base);
    return pier_path_join(base, rel);
}

static bool has_warning(const pier_buildspec *s, const char *needle)
{
    for (size_t i = 0; i < s->warning_count; i++)
        if (strstr(s->warnings[i], needle))
            return true;
    return false;
}

static void test_full(void **state)
{
    (void)state;
    char *path = data_path("build/valid/full.yml");
    pier_buildspec *s = NULL;
    int rc = pier_buildspec_load_file(&s, path);
    if (rc)
        fail_msg("%s", pier_error_last());
    assert_string_equal(s->path, path);
    assert_string_equal(s->shell, "bash");
    assert_int_equal(s->variable_count, 4);
    assert_string_equal(s->variables[0].name, "NODE_ENV");
    assert_string_equal(s->variables[0].value, "production");
    assert_string_equal(s->variables[1].value, "3");    /* a number is a string */
    assert_string_equal(s->variables[2].value, "1.10"); /* as written */
    assert_string_equal(s->variables[3].value, "");
    assert_int_equal(s->parameter_count, 1);
    assert_string_equal(s->parameter_store[0].value, "/CodeBuild/dockerLoginPassword");
    assert_int_equal(s->secret_count, 1);
    assert_string_equal(s->secrets_manager[0].name, "DB_PASS");
    assert_int_equal(s->exported_count, 2);
    assert_string_equal(s->exported_variables[1], "BUILD_URL");
    assert_true(s->git_credential_helper);

    const pier_buildspec_phase *in = &s->phases[PIER_PHASE_INSTALL];
    assert_true(in->present);
    assert_int_equal(in->on_failure, PIER_ON_FAILURE_ABORT);
    assert_int_equal(in->runtime_count, 2);
    assert_string_equal(in->runtimes[0].name, "nodejs");
    assert_string_equal(in->runtimes[0].value, "20");
    assert_int_equal(in->command_count, 1);
    assert_string_equal(in->commands[0].text, "npm ci");
    assert_int_equal(in->finally_count, 1);
    assert_int_equal(s->phases[PIER_PHASE_PRE_BUILD].on_failure, PIER_ON_FAILURE_CONTINUE);
    const pier_buildspec_phase *b = &s->phases[PIER_PHASE_BUILD];
    assert_int_equal(b->on_failure, PIER_ON_FAILURE_DEFAULT);
    assert_int_equal(b->command_count, 3);
    assert_string_equal(b->commands[1].text, "if [ -f dist/index.html ]; then\n  echo built\nfi\n");
    assert_int_equal(b->commands[0].line, 40);
    assert_non_null(strstr(b->commands[2].text, "awk -F: '{ print $2 }'"));
    assert_int_equal(s->phases[PIER_PHASE_POST_BUILD].finally_count, 1);

    assert_true(s->has_artifacts);
    const pier_buildspec_artifact *a = &s->artifacts;
    assert_int_equal(a->file_count, 1);
    assert_string_equal(a->files[0], "**/*");
    assert_string_equal(a->name, "site-$(date +%Y-%m-%d)");
    assert_string_equal(a->base_directory, "dist");
    assert_false(a->discard_paths);
    assert_int_equal(a->exclude_count, 2);
    assert_string_equal(a->exclude_paths[1], ".cache");
    assert_true(a->enable_symlinks);
    assert_string_equal(a->s3_prefix, "builds");
    assert_int_equal(s->secondary_count, 1);
    assert_string_equal(s->secondary[0].identifier, "docs");
    assert_string_equal(s->secondary[0].files[0], "docs/**/*");

    assert_true(s->cache.present);
    assert_int_equal(s->cache.path_count, 2);
    assert_string_equal(s->cache.paths[1], "/root/.npm/**/*");
    assert_string_equal(s->cache.key, "npm-v1");
    assert_int_equal(s->cache.fallback_count, 1);
    assert_int_equal(s->cache.action, PIER_CACHE_RESTORE_AND_SAVE);

    /* Accepted-but-ignored keys are reported, with their position. */
    assert_true(has_warning(s, "reports are ignored"));
    assert_true(has_warning(s, "proxy is ignored"));
    assert_true(has_warning(s, "git-credential-helper is ignored"));
    assert_true(has_warning(s, "s3-prefix is ignored"));
    assert_true(has_warning(s, "secondary-artifacts are parsed but not collected"));
    char want[4096];
    snprintf(want, sizeof want, "%s:52:1: reports are ignored", path);
    assert_true(has_warning(s, want));
    pier_buildspec_free(s);
    free(path);
}

static void test_minimal_and_strings(void **state)
{
    (void)state;
    char *path = data_path("build/valid/minimal.yml");
    pier_buildspec *s = NULL;
    assert_int_equal(pier_buildspec_load_file(&s, path), 0);
    assert_false(s->phases[PIER_PHASE_INSTALL].present);
    assert_true(s->phases[PIER_PHASE_BUILD].present);
    assert_int_equal(s->phases[PIER_PHASE_BUILD].command_count, 1); /* a single string */
    assert_string_equal(s->phases[PIER_PHASE_BUILD].commands[0].text, "echo hello");
    assert_null(s->shell);
    assert_false(s->has_artifacts);
    assert_false(s->cache.present);
    assert_int_equal(s->warning_count, 0);
    pier_buildspec_free(s);
    free(path);

    /* From text; a missing file is "not found". */
    const char *text = "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      java: 17\n";
    assert_int_equal(pier_buildspec_load_string(&s, "inline.yml", text, strlen(text)), 0);
    assert_int_equal(s->phases[PIER_PHASE_INSTALL].command_count, 0);
    pier_buildspec_free(s);
    assert_int_equal(pier_buildspec_load_file(&s, "/nonexistent/buildspec.yml"), PIER_ENOTFOUND);
    assert_null(s);
    assert_string_equal(pier_buildspec_phase_name(PIER_PHASE_PRE_BUILD), "pre_build");
    assert_string_equal(pier_buildspec_phase_type(PIER_PHASE_POST_BUILD), "POST_BUILD");
}

/* Reads "# error: L:C: message" from the first line. */
static char *expected_error(const char *path)
{
    pier_buf b;
    pier_buf_init(&b, 1 << 20);
    assert_int_equal(pier_file_read(path, &b), 0);
    const char *t = pier_buf_cstr(&b);
    assert_true(strncmp(t, "# error: ", 9) == 0);
    const char *nl = strchr(t, '\n');
    char *e = pier_strndup(t + 9, (size_t)((nl ? nl : t + strlen(t)) - (t + 9)));
    pier_buf_free(&b);
    return e;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_errors(void **state)
{
    (void)state;
    char *dir = data_path("build/errors");
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 256)
        if (strstr(de->d_name, ".yml"))
            names[n++] = pier_strdup(de->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    assert_true(n >= 25);
    for (size_t i = 0; i < n; i++) {
        char *path = pier_path_join(dir, names[i]);
        char *want = expected_error(path);
        pier_buildspec *s = NULL;
        int rc = pier_buildspec_load_file(&s, path);
        if (rc != PIER_EINVALID)
            fail_msg("%s: expected an error, got %d (%s)", names[i], rc, pier_error_last());
        assert_null(s);
        /* "path:L:C: message": the position exactly, the message as a prefix. */
        const char *got = pier_error_last();
        size_t plen = strlen(path);
        if (strncmp(got, path, plen) != 0 || got[plen] != ':' ||
            strncmp(got + plen + 1, want, strlen(want)) != 0)
            fail_msg("%s:\n  want %s:%s\n  got  %s", names[i], path, want, got);
        free(want);
        free(path);
        free(names[i]);
    }
    free(dir);
}

static void test_run_as_current_user(void **state)
{
    (void)state;
    /* run-as naming the user pier runs as is accepted (in a phase too). */
    struct passwd *pw = getpwuid(geteuid());
    const char *user = pw ? pw->pw_name : NULL;
    char text[512];
    pier_buildspec *s = NULL;
    snprintf(text, sizeof text,
             "version: 0.2\nphases:\n  build:\n    run-as: %s\n    commands: [id]\n",
             "nobody-pier-test");
    assert_int_equal(pier_buildspec_load_string(&s, "b.yml", text, strlen(text)), PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "b.yml:4:13: run-as 'nobody-pier-test'"));
    if (!user || !user[0])
        return;
    snprintf(text, sizeof text, "version: 0.2\nrun-as: %s\nphases:\n  build:\n    commands: [id]\n",
             user);
    int rc = pier_buildspec_load_string(&s, "b.yml", text, strlen(text));
    if (rc)
        fail_msg("%s", pier_error_last());
    pier_buildspec_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_minimal_and_strings),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_run_as_current_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
