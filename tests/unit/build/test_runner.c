/*
 * test_runner: buildspecs run for real in a temporary source directory:
 * shell state across phases, the phase transitions CodeBuild documents
 * (first failure ends commands, finally, on-failure, install/pre_build
 * failure, post_build after a failed build), exported variables, the shell
 * choice, secret masking (callback and log file, split writes, long lines),
 * timeout and cancel (background processes included), secrets that cannot
 * be resolved, built-in variables and the artifact step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/str.h"
#include "build/buildspec.h"
#include "build/runner.h"

typedef struct {
    char src[64];          /* the build's source directory */
    pier_buf log;          /* every log line's text, one per line */
    size_t lines;          /* number of lines */
    bool bad_line;         /* a line had a newline or no timestamp */
    int last_code;         /* pier_error_last_code() right after the run */
    char last_error[2048]; /* pier_error_last() right after the run */
} fixture;

static int setup(void **state)
{
    fixture *f = pier_calloc(1, sizeof *f);
    snprintf(f->src, sizeof f->src, "/tmp/pier-test-runner-XXXXXX");
    assert_non_null(mkdtemp(f->src));
    pier_buf_init(&f->log, 16 << 20);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pier_file_remove_tree(f->src);
    pier_buf_free(&f->log);
    free(f);
    return 0;
}

static void on_line(void *ctx, const pier_runner_log_line *l)
{
    fixture *f = ctx;
    if (strchr(l->text, '\n') || strlen(l->line) < 25 || l->line[4] != '-' || l->line[23] != 'Z' ||
        strcmp(l->line + 25, l->text) != 0)
        f->bad_line = true;
    pier_buf_printf(&f->log, "%s\n", l->text);
    f->lines++;
}

static bool logged(fixture *f, const char *needle)
{
    return strstr(pier_buf_cstr(&f->log), needle) != NULL;
}

/* Runs yaml in f->src with o (defaults when NULL) and returns the result. */
static pier_runner_result *run_with(fixture *f, const char *yaml, pier_runner_options *o)
{
    pier_buildspec *spec = NULL;
    if (pier_buildspec_load_string(&spec, "buildspec.yml", yaml, strlen(yaml)) != 0)
        fail_msg("buildspec: %s", pier_error_last());
    pier_runner_options local = PIER_RUNNER_OPTIONS_INIT;
    if (!o)
        o = &local;
    o->src_dir = f->src;
    o->log = on_line;
    o->log_ctx = f;
    if (!o->kill_grace_ms)
        o->kill_grace_ms = 300;
    pier_runner *r = NULL;
    assert_int_equal(pier_runner_new(&r, spec, o), 0);
    pier_runner_result *res = NULL;
    assert_int_equal(pier_runner_run(r, &res), 0);
    assert_non_null(res);
    f->last_code = pier_error_last_code();
    snprintf(f->last_error, sizeof f->last_error, "%s", pier_error_last());
    /* A runner runs once. */
    pier_runner_result *again = NULL;
    assert_int_equal(pier_runner_run(r, &again), PIER_EINVALID);
    assert_null(again);
    pier_runner_free(r);
    pier_buildspec_free(spec);
    assert_false(f->bad_line);
    return res;
}

static pier_runner_result *run(fixture *f, const char *yaml)
{
    return run_with(f, yaml, NULL);
}

static void dump_on_failure(fixture *f, pier_runner_result *res, pier_build_status want)
{
    if (res->status != want)
        fail_msg("status %s (%s), want %s; log:\n%s", pier_build_status_name(res->status),
                 res->message ? res->message : "", pier_build_status_name(want),
                 pier_buf_cstr(&f->log));
}

static void test_state_across_phases(void **state)
{
    fixture *f = *state;
    char *sub = pier_path_join(f->src, "sub dir");
    assert_int_equal(pier_file_mkdirs(sub, 0755), 0);
    free(sub);
    pier_runner_result *res = run(f, "version: 0.2\n"
                                     "env:\n"
                                     "  variables:\n"
                                     "    FROM_SPEC: spec-value\n"
                                     "phases:\n"
                                     "  install:\n"
                                     "    commands:\n"
                                     "      - cd 'sub dir'\n"
                                     "      - export EXPORTED=one\n"
                                     "      - PLAIN=two\n"
                                     "      - unset FROM_SPEC\n"
                                     "  build:\n"
                                     "    commands:\n"
                                     "      - echo \"dir=$(basename \"$PWD\") e=$EXPORTED p=$PLAIN "
                                     "s=${FROM_SPEC-unset}\"\n"
                                     "      - |\n"
                                     "        for i in 1 2; do\n"
                                     "          echo \"loop $i\"\n"
                                     "        done\n");
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    assert_true(logged(f, "dir=sub dir e=one p=two s=unset\n"));
    assert_true(logged(f, "loop 2\n"));
    assert_true(logged(f, "[pier] Entering phase INSTALL\n"));
    assert_true(logged(f, "[pier] Running command cd 'sub dir'\n"));
    assert_true(logged(f, "[pier] Phase complete: BUILD State: SUCCEEDED\n"));
    assert_false(logged(f, "Entering phase PRE_BUILD")); /* absent phases stay quiet */
    assert_int_equal(res->phases[PIER_PHASE_PRE_BUILD].status, PIER_PHASE_SUCCEEDED);
    assert_int_equal(res->failed_phase, -1);
    assert_null(res->message);
    pier_runner_result_free(res);
}

static void test_first_failure_and_finally(void **state)
{
    fixture *f = *state;
    pier_runner_result *res = run(f, "version: 0.2\n"
                                     "phases:\n"
                                     "  build:\n"
                                     "    commands:\n"
                                     "      - echo first\n"
                                     "      - echo second; exit 3\n"
                                     "      - echo never\n"
                                     "    finally:\n"
                                     "      - echo \"finally sees $CODEBUILD_BUILD_SUCCEEDING\"\n"
                                     "      - echo finally two\n");
    dump_on_failure(f, res, PIER_BUILD_FAILED);
    assert_true(logged(f, "first\n"));
    assert_true(logged(f, "second\n"));
    assert_false(logged(f, "\nnever\n"));
    assert_true(logged(f, "finally sees 0\n"));
    assert_true(logged(f, "finally two\n"));
    assert_true(logged(f, "[pier] Command did not exit successfully echo second; exit 3 exit "
                          "status 3\n"));
    assert_true(logged(f, "[pier] Phase complete: BUILD State: FAILED\n"));
    assert_int_equal(res->failed_phase, PIER_PHASE_BUILD);
    assert_string_equal(res->failed_command, "echo second; exit 3");
    assert_int_equal(res->failed_command_line, 6);
    assert_int_equal(res->exit_status, 3);
    assert_int_equal(res->phases[PIER_PHASE_BUILD].status, PIER_PHASE_FAILED);
    assert_non_null(strstr(res->message, "phase BUILD failed: command 'echo second; exit 3' "
                                         "(buildspec.yml:6) exited with status 3"));
    assert_non_null(strstr(f->last_error, "phase BUILD failed"));
    pier_runner_result_free(res);
}

static void test_failing_finally_fails_phase(void **state)
{
    fixture *f = *state;
    pier_runner_result *res = run(f, "version: 0.2\n"
                                     "phases:\n"
                                     "  pre_build:\n"
                                     "    commands: [echo ok]\n"
                                     "    finally: [false, echo not-after-false]\n"
                                     "  build:\n"
                                     "    commands: [echo build-ran]\n");
    dump_on_failure(f, res, PIER_BUILD_FAILED);
    assert_false(logged(f, "not-after-false"));
    assert_false(logged(f, "build-ran")); /* pre_build failed: build is skipped */
    assert_int_equal(res->failed_phase, PIER_PHASE_PRE_BUILD);
    assert_string_equal(res->failed_command, "false");
    assert_int_equal(res->phases[PIER_PHASE_BUILD].status, PIER_PHASE_PENDING);
    assert_false(res->artifacts_attempted);
    pier_runner_result_free(res);
}

static void test_install_failure_skips_the_rest(void **state)
{
    fixture *f = *state;
    pier_runner_result *res = run(f, "version: 0.2\n"
                                     "phases:\n"
                                     "  install:\n"
                                     "    commands: [\"false\"]\n"
                                     "    finally: [echo install-finally]\n"
                                     "  pre_build:\n"
                                     "    commands: [echo pre-ran]\n"
                                     "  build:\n"
                                     "    commands: [echo build-ran]\n"
                                     "  post_build:\n"
                                     "    commands: [echo post-ran]\n");
    dump_on_failure(f, res, PIER_BUILD_FAILED);
    assert_true(logged(f, "install-finally\n"));
    assert_false(logged(f, "pre-ran"));
    assert_false(logged(f, "build-ran"));
    assert_false(logged(f, "post-ran"));
    assert_int_equal(res->phases[PIER_PHASE_INSTALL].status, PIER_PHASE_FAILED);
    assert_int_equal(res->phases[PIER_PHASE_PRE_BUILD].status, PIER_PHASE_PENDING);
    assert_int_equal(res->phases[PIER_PHASE_POST_BUILD].status, PIER_PHASE_PENDING);
    assert_false(res->artifacts_attempted);
    pier_runner_result_free(res);
}

static void test_post_build_after_failed_build(void **state)
{
    fixture *f = *state;
    pier_runner_result *res =
        run(f, "version: 0.2\n"
               "phases:\n"
               "  install:\n"
               "    commands: [echo \"install sees $CODEBUILD_BUILD_SUCCEEDING\"]\n"
               "  build:\n"
               "    commands: [\"false\"]\n"
               "  post_build:\n"
               "    commands:\n"
               "      - echo \"post sees $CODEBUILD_BUILD_SUCCEEDING\"\n"
               "      - '[ \"$CODEBUILD_BUILD_SUCCEEDING\" -eq 1 ] || exit 1'\n"
               "      - echo not-reached\n");
    dump_on_failure(f, res, PIER_BUILD_FAILED);
    assert_true(logged(f, "install sees 1\n"));
    assert_true(logged(f, "post sees 0\n"));
    assert_false(logged(f, "not-reached"));
    assert_int_equal(res->failed_phase, PIER_PHASE_BUILD); /* the first failure is the cause */
    assert_string_equal(res->failed_command, "false");
    assert_int_equal(res->phases[PIER_PHASE_POST_BUILD].status, PIER_PHASE_FAILED);
    assert_true(res->artifacts_attempted); /* UPLOAD_ARTIFACTS is always attempted after BUILD */
    pier_runner_result_free(res);
}

static void test_on_failure_abort_and_continue(void **state)
{
    fixture *f = *state;
    /* ABORT in build: post_build does not run. */
    pier_runner_result *res = run(f, "version: 0.2\n"
                                     "phases:\n"
                                     "  build:\n"
                                     "    on-failure: ABORT\n"
                                     "    commands: [\"false\"]\n"
                                     "    finally: [echo build-finally]\n"
                                     "  post_build:\n"
                                     "    commands: [echo post-ran]\n");
    dump_on_failure(f, res, PIER_BUILD_FAILED);
    assert_true(logged(f, "build-finally\n")); /* finally runs before the abort */
    assert_false(logged(f, "post-ran"));
    assert_false(res->artifacts_attempted);
    pier_runner_result_free(res);

    /* CONTINUE in install: the next phases run, the build still fails. */
    pier_buf_reset(&f->log);
    res = run(f, "version: 0.2\n"
                 "phases:\n"
                 "  install:\n"
                 "    on-failure: CONTINUE\n"
                 "    commands: [\"exit 7\"]\n"
                 "  pre_build:\n"
                 "    commands: [echo \"pre sees $CODEBUILD_BUILD_SUCCEEDING\"]\n"
                 "  build:\n"
                 "    commands: [echo build-ran]\n");
    dump_on_failure(f, res, PIER_BUILD_FAILED);
    assert_true(logged(f, "pre sees 0\n"));
    assert_true(logged(f, "build-ran\n"));
    assert_int_equal(res->failed_phase, PIER_PHASE_INSTALL);
    assert_int_equal(res->exit_status, 7);
    assert_int_equal(res->phases[PIER_PHASE_BUILD].status, PIER_PHASE_SUCCEEDED);
    assert_true(res->artifacts_attempted);
    pier_runner_result_free(res);
}

static void test_exported_variables(void **state)
{
    fixture *f = *state;
    pier_runner_var secret = {"TOKEN", "tok-123456"};
    pier_runner_options o = PIER_RUNNER_OPTIONS_INIT;
    o.secrets = &secret;
    o.secret_count = 1;
    pier_runner_result *res = run_with(f,
                                       "version: 0.2\n"
                                       "env:\n"
                                       "  exported-variables: [V1, V2, MISSING, AWS_REGION, TOKEN, "
                                       "HAS_SECRET]\n"
                                       "phases:\n"
                                       "  install:\n"
                                       "    commands: [export V1=hello]\n"
                                       "  build:\n"
                                       "    commands: ['V2=$((1+2))', 'V1=\"$V1 world\"', "
                                       "'HAS_SECRET=\"x-$TOKEN\"']\n",
                                       &o);
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    assert_int_equal(res->exported_count, 3);
    assert_string_equal(res->exported[0].name, "V1");
    assert_string_equal(res->exported[0].value, "hello world");
    assert_string_equal(res->exported[1].name, "V2");
    assert_string_equal(res->exported[1].value, "3");
    assert_string_equal(res->exported[2].name, "HAS_SECRET");
    assert_string_equal(res->exported[2].value, "x-***"); /* never a secret in the clear */
    assert_true(logged(f, "MISSING has no value"));
    assert_true(logged(f, "AWS_REGION is not exported"));
    assert_true(logged(f, "TOKEN is not exported (it holds a secret)"));
    pier_runner_result_free(res);
}

static void test_shell_choice(void **state)
{
    fixture *f = *state;
    pier_runner_result *res = run(f, "version: 0.2\n"
                                     "env:\n"
                                     "  shell: /bin/sh\n"
                                     "phases:\n"
                                     "  build:\n"
                                     "    commands: ['echo \"bash=[${BASH_VERSION:-}]\"']\n");
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    assert_true(logged(f, "bash=[]\n"));
    assert_true(logged(f, "[pier] Shell: /bin/sh\n"));
    pier_runner_result_free(res);

    pier_buf_reset(&f->log);
    res = run(f, "version: 0.2\n"
                 "env:\n"
                 "  shell: bash\n"
                 "phases:\n"
                 "  build:\n"
                 "    commands: ['[[ -n \"$BASH_VERSION\" ]] && echo is-bash']\n");
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    assert_true(logged(f, "is-bash\n"));
    pier_runner_result_free(res);

    /* The default is bash when it is installed. */
    pier_buf_reset(&f->log);
    res = run(
        f, "version: 0.2\nphases:\n  build:\n    commands: ['echo \"[${BASH_VERSION:+bash}]\"']\n");
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    assert_true(logged(f, "[bash]\n"));
    pier_runner_result_free(res);
}

static bool file_contains(const char *path, const char *needle)
{
    pier_buf b;
    pier_buf_init(&b, 16 << 20);
    bool found = pier_file_read(path, &b) == 0 && strstr(pier_buf_cstr(&b), needle);
    pier_buf_free(&b);
    return found;
}

static void test_secrets_masked(void **state)
{
    fixture *f = *state;
    char *logfile = pier_path_join(f->src, "build.log");
    pier_runner_var secret = {"TOKEN", "s3cr3t-value"};
    pier_runner_var env = {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "auth-token-xyz"};
    pier_runner_options o = PIER_RUNNER_OPTIONS_INIT;
    o.secrets = &secret;
    o.secret_count = 1;
    o.env = &env;
    o.env_count = 1;
    o.log_file = logfile;
    pier_runner_result *res = run_with(
        f,
        "version: 0.2\n"
        "phases:\n"
        "  build:\n"
        "    commands:\n"
        "      - echo \"token=$TOKEN\"\n"
        "      - echo \"to stderr $TOKEN\" >&2\n"
        "      - printf 's3cr'; sleep 0.3; printf '3t-value split\\n'\n"
        "      - head -c 70000 /dev/zero | tr '\\0' x; printf 's3cr3'; sleep 0.3; printf "
        "'t-value long\\n'\n"
        "      - echo \"auth=$AWS_CONTAINER_AUTHORIZATION_TOKEN key=AKIAIOSFODNN7EXAMPLE\"\n"
        "      - printf 'no newline at the end %s' \"$TOKEN\"\n"
        "      - 'echo \"$TOKEN\" | grep -q nomatch'\n",
        &o);
    dump_on_failure(f, res, PIER_BUILD_FAILED);
    assert_true(logged(f, "token=***\n"));
    assert_true(logged(f, "to stderr ***\n"));
    assert_true(logged(f, "*** split\n"));
    assert_true(logged(f, "x*** long\n"));
    assert_true(logged(f, "auth=*** key=***\n"));
    assert_true(logged(f, "no newline at the end ***\n"));
    assert_false(logged(f, "s3cr3t"));
    assert_false(logged(f, "auth-token-xyz"));
    assert_false(logged(f, "AKIAIOSFODNN7EXAMPLE"));
    /* The log file holds the same masked lines, timestamped. */
    assert_true(file_contains(logfile, "Z token=***\n"));
    assert_false(file_contains(logfile, "s3cr3t"));
    struct stat st;
    assert_int_equal(stat(logfile, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_null(strstr(res->message, "s3cr3t"));
    pier_runner_result_free(res);
    free(logfile);
}

static int resolve_ok(void *ctx, pier_secret_source source, const char *name, const char *reference,
                      char **value)
{
    (void)ctx;
    if (source == PIER_SECRET_PARAMETER_STORE && strcmp(name, "LOGIN_PASSWORD") == 0 &&
        strcmp(reference, "/CodeBuild/dockerLoginPassword") == 0) {
        *value = pier_strdup("pa55-from-ssm");
        return 0;
    }
    return PIER_ENOTFOUND;
}

static void test_secret_sources(void **state)
{
    fixture *f = *state;
    /* parameter-store through the resolver: in the environment, masked. */
    pier_runner_options o = PIER_RUNNER_OPTIONS_INIT;
    o.resolve = resolve_ok;
    pier_runner_result *res =
        run_with(f,
                 "version: 0.2\n"
                 "env:\n"
                 "  parameter-store:\n"
                 "    LOGIN_PASSWORD: /CodeBuild/dockerLoginPassword\n"
                 "phases:\n"
                 "  build:\n"
                 "    commands: ['echo \"pw=$LOGIN_PASSWORD len=${#LOGIN_PASSWORD}\"']\n",
                 &o);
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    assert_true(logged(f, "pw=*** len=13\n"));
    pier_runner_result_free(res);

    /* secrets-manager with nothing to resolve it: a clear failure naming it. */
    pier_buf_reset(&f->log);
    o = (pier_runner_options)PIER_RUNNER_OPTIONS_INIT;
    o.resolve = resolve_ok;
    res = run_with(f,
                   "version: 0.2\n"
                   "env:\n"
                   "  secrets-manager:\n"
                   "    DB_PASS: prod/db:password\n"
                   "phases:\n"
                   "  build:\n"
                   "    commands: [echo never-runs]\n",
                   &o);
    dump_on_failure(f, res, PIER_BUILD_FAILED);
    assert_non_null(strstr(res->message, "buildspec.yml:4: env/secrets-manager DB_PASS "
                                         "('prod/db:password') is not available on the embedded "
                                         "stack"));
    assert_true(logged(f, "is not available on the embedded stack"));
    assert_false(logged(f, "never-runs"));
    assert_int_equal(res->phases[PIER_PHASE_BUILD].status, PIER_PHASE_PENDING);
    pier_runner_result_free(res);

    /* A caller secret with the same name answers the key. */
    pier_buf_reset(&f->log);
    pier_runner_var given = {"DB_PASS", "db-pa55word"};
    o = (pier_runner_options)PIER_RUNNER_OPTIONS_INIT;
    o.secrets = &given;
    o.secret_count = 1;
    res = run_with(f,
                   "version: 0.2\n"
                   "env:\n"
                   "  secrets-manager:\n"
                   "    DB_PASS: prod/db:password\n"
                   "phases:\n"
                   "  build:\n"
                   "    commands: ['echo \"db=$DB_PASS\"']\n",
                   &o);
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    assert_true(logged(f, "db=***\n"));
    pier_runner_result_free(res);
}

/* True while some process of group g is alive (zombies do not count). */
static bool pgid_alive(long g)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    bool alive = false;
    struct dirent *de;
    while (!alive && (de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
        FILE *fp = fopen(path, "r");
        if (!fp)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        char st;
        long ppid, pgrp;
        if (p && sscanf(p + 1, " %c %ld %ld", &st, &ppid, &pgrp) == 3 && pgrp == g && st != 'Z')
            alive = true;
    }
    closedir(d);
    return alive;
}

static long read_number(fixture *f, const char *name)
{
    char *path = pier_path_join(f->src, name);
    pier_buf b;
    pier_buf_init(&b, 1024);
    assert_int_equal(pier_file_read(path, &b), 0);
    int64_t v = 0;
    char *nl = strchr(b.ptr, '\n');
    if (nl)
        *nl = '\0';
    assert_int_equal(pier_parse_i64(b.ptr, &v), 0);
    pier_buf_free(&b);
    free(path);
    return (long)v;
}

/* Waits (up to 10 s, no timing assertion) for group g to die. */
static bool group_gone(long g)
{
    for (int i = 0; i < 200; i++) {
        if (!pgid_alive(g))
            return true;
        usleep(50000);
    }
    return false;
}

static void test_timeout_kills_background(void **state)
{
    fixture *f = *state;
    pier_runner_options o = PIER_RUNNER_OPTIONS_INIT;
    o.timeout_sec = 1;
    o.kill_grace_ms = 200;
    pier_runner_result *res = run_with(f,
                                       "version: 0.2\n"
                                       "phases:\n"
                                       "  build:\n"
                                       "    commands:\n"
                                       "      - sleep 1000 & echo $! > bg.pid; echo $$ > sh.pid; "
                                       "trap '' TERM; sleep 1000\n"
                                       "      - echo never\n"
                                       "  post_build:\n"
                                       "    commands: [echo post-never]\n",
                                       &o);
    dump_on_failure(f, res, PIER_BUILD_TIMED_OUT);
    long bg = read_number(f, "bg.pid"), sh = read_number(f, "sh.pid");
    assert_true(bg > 0 && sh > 0);
    /* The command's shell led its own group; nothing of it survives. */
    assert_true(group_gone(sh));
    assert_false(logged(f, "\nnever\n"));
    assert_false(logged(f, "post-never"));
    assert_int_equal(res->phases[PIER_PHASE_BUILD].status, PIER_PHASE_TIMED_OUT);
    assert_non_null(strstr(res->message, "build timed out after 1 seconds in phase BUILD"));
    assert_int_equal(f->last_code, PIER_ETIMEOUT);
    pier_runner_result_free(res);
}

static void test_leftover_background_stopped(void **state)
{
    fixture *f = *state;
    pier_runner_options o = PIER_RUNNER_OPTIONS_INIT;
    o.kill_grace_ms = 200;
    pier_runner_result *res = run_with(f,
                                       "version: 0.2\n"
                                       "phases:\n"
                                       "  build:\n"
                                       "    commands:\n"
                                       "      - (sleep 0.2; echo from-background) &\n"
                                       "      - sleep 1000 >/dev/null 2>&1 & echo $$ > sh.pid\n"
                                       "      - sleep 0.5\n",
                                       &o);
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    assert_true(logged(f, "from-background\n")); /* output after its command ended */
    assert_true(logged(f, "Stopping processes the build left running"));
    assert_true(group_gone(read_number(f, "sh.pid")));
    pier_runner_result_free(res);
}

typedef struct {
    pier_runner *r; /* to cancel */
} cancel_arg;

static void *cancel_later(void *p)
{
    cancel_arg *a = p;
    usleep(300000);
    pier_runner_cancel(a->r);
    return NULL;
}

static void test_cancel(void **state)
{
    fixture *f = *state;
    const char *yaml = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo $$ > sh.pid; "
                       "sleep 1000\n    finally: [echo finally-never]\n";
    pier_buildspec *spec = NULL;
    assert_int_equal(pier_buildspec_load_string(&spec, "buildspec.yml", yaml, strlen(yaml)), 0);
    pier_runner_options o = PIER_RUNNER_OPTIONS_INIT;
    o.src_dir = f->src;
    o.log = on_line;
    o.log_ctx = f;
    o.kill_grace_ms = 200;
    pier_runner *r = NULL;
    assert_int_equal(pier_runner_new(&r, spec, &o), 0);
    cancel_arg a = {r};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &a), 0);
    pier_runner_result *res = NULL;
    assert_int_equal(pier_runner_run(r, &res), 0);
    pthread_join(t, NULL);
    dump_on_failure(f, res, PIER_BUILD_STOPPED);
    assert_int_equal(res->phases[PIER_PHASE_BUILD].status, PIER_PHASE_STOPPED);
    assert_false(logged(f, "finally-never"));
    assert_true(group_gone(read_number(f, "sh.pid")));
    pier_runner_result_free(res);
    pier_runner_free(r);
    pier_buildspec_free(spec);
}

static void test_builtin_variables(void **state)
{
    fixture *f = *state;
    pier_runner_var env = {"EXTRA", "from-caller"};
    char *base[] = {"PATH=/usr/bin:/bin", "FROM_IMAGE=image", "EXTRA=image", NULL};
    pier_runner_options o = PIER_RUNNER_OPTIONS_INIT;
    o.project = "site";
    o.build_number = 42;
    o.region = "eu-west-3";
    o.resolved_source_version = "0123456789abcdef0123456789abcdef01234567";
    o.source_version = "refs/heads/main";
    o.webhook_prev_commit = "fedcba";
    o.webhook_head_ref = "refs/heads/main";
    o.initiator = "pier/site";
    o.base_env = base;
    o.env = &env;
    o.env_count = 1;
    pier_runner_result *res = run_with(
        f,
        "version: 0.2\n"
        "env:\n"
        "  variables:\n"
        "    EXTRA: spec\n"
        "    CODEBUILD_BUILD_NUMBER: 7\n"
        "phases:\n"
        "  build:\n"
        "    commands:\n"
        "      - echo \"n=$CODEBUILD_BUILD_NUMBER id=$CODEBUILD_BUILD_ID\"\n"
        "      - echo \"src=$CODEBUILD_SRC_DIR\"\n"
        "      - echo \"rev=$CODEBUILD_RESOLVED_SOURCE_VERSION v=$CODEBUILD_SOURCE_VERSION\"\n"
        "      - echo \"prev=$CODEBUILD_WEBHOOK_PREV_COMMIT head=$CODEBUILD_WEBHOOK_HEAD_REF\"\n"
        "      - echo \"r=$AWS_REGION/$AWS_DEFAULT_REGION init=$CODEBUILD_INITIATOR\"\n"
        "      - echo \"arn=$CODEBUILD_BUILD_ARN start=${#CODEBUILD_START_TIME}\"\n"
        "      - echo \"extra=$EXTRA image=$FROM_IMAGE home=${HOME-none}\"\n",
        &o);
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    char want[PATH_MAX + 64], real[PATH_MAX];
    assert_non_null(realpath(f->src, real));
    snprintf(want, sizeof want, "src=%s\n", real);
    assert_true(logged(f, want));
    snprintf(want, sizeof want, "n=42 id=%s\n", res->build_id);
    assert_true(logged(f, want));
    assert_true(strncmp(res->build_id, "site:", 5) == 0 && strlen(res->build_id) == 5 + 36);
    assert_true(logged(f, "rev=0123456789abcdef0123456789abcdef01234567 v=refs/heads/main\n"));
    assert_true(logged(f, "prev=fedcba head=refs/heads/main\n"));
    assert_true(logged(f, "r=eu-west-3/eu-west-3 init=pier/site\n"));
    snprintf(want, sizeof want, "arn=arn:aws:codebuild:eu-west-3:000000000000:build/%s start=13\n",
             res->build_id);
    assert_true(logged(f, want));
    assert_true(logged(f, "extra=from-caller image=image home=none\n"));
    assert_true(logged(f, "CODEBUILD_BUILD_NUMBER' uses the reserved prefix"));
    pier_runner_result_free(res);
}

static void test_artifacts_and_name(void **state)
{
    fixture *f = *state;
    char out[] = "/tmp/pier-test-runner-out-XXXXXX";
    assert_non_null(mkdtemp(out));
    char *art = pier_path_join(out, "artifact");
    pier_runner_options o = PIER_RUNNER_OPTIONS_INIT;
    o.artifact_dir = art;
    o.build_number = 5;
    pier_runner_result *res = run_with(f,
                                       "version: 0.2\n"
                                       "phases:\n"
                                       "  build:\n"
                                       "    commands:\n"
                                       "      - mkdir -p dist/css && echo '<h1>hi</h1>' > "
                                       "dist/index.html && echo 'a{}' > dist/css/a.css\n"
                                       "      - echo map > dist/app.js.map\n"
                                       "artifacts:\n"
                                       "  base-directory: dist\n"
                                       "  files: ['**/*']\n"
                                       "  exclude-paths: ['*.map']\n"
                                       "  name: site-$CODEBUILD_BUILD_NUMBER-$(echo ok)\n",
                                       &o);
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    assert_int_equal(res->artifact_files, 2);
    assert_string_equal(res->artifact_name, "site-5-ok");
    char *index = pier_path_join(art, "index.html"), *css = pier_path_join(art, "css/a.css");
    char *map = pier_path_join(art, "app.js.map");
    assert_true(file_contains(index, "<h1>hi</h1>"));
    assert_true(pier_file_exists(css));
    assert_false(pier_file_exists(map));
    assert_true(logged(f, "[pier] Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED\n"));
    free(index);
    free(css);
    free(map);
    pier_runner_result_free(res);

    /* Nothing matches: the build fails in UPLOAD_ARTIFACTS, as CodeBuild's does. */
    pier_buf_reset(&f->log);
    char *art2 = pier_path_join(out, "artifact2");
    o = (pier_runner_options)PIER_RUNNER_OPTIONS_INIT;
    o.artifact_dir = art2;
    res = run_with(f,
                   "version: 0.2\nphases:\n  build:\n    commands: [echo]\nartifacts:\n  files: "
                   "['nothing/**/*']\n",
                   &o);
    dump_on_failure(f, res, PIER_BUILD_FAILED);
    assert_non_null(strstr(res->message, "UPLOAD_ARTIFACTS failed: no matching artifact paths"));
    pier_runner_result_free(res);
    free(art2);
    free(art);
    pier_file_remove_tree(out);
}

static void test_cache_through_runner(void **state)
{
    fixture *f = *state;
    char cache[] = "/tmp/pier-test-runner-cache-XXXXXX";
    assert_non_null(mkdtemp(cache));
    const char *yaml = "version: 0.2\n"
                       "phases:\n"
                       "  install:\n"
                       "    commands:\n"
                       "      - 'if [ -f deps/lib.txt ]; then echo cache-hit; else mkdir -p deps "
                       "&& echo lib > deps/lib.txt; fi'\n"
                       "cache:\n"
                       "  paths: ['deps/**/*']\n";
    pier_runner_options o = PIER_RUNNER_OPTIONS_INIT;
    o.cache_dir = cache;
    pier_runner_result *res = run_with(f, yaml, &o);
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    assert_false(logged(f, "\ncache-hit\n"));
    assert_true(logged(f, "cache: saved 1 files"));
    pier_runner_result_free(res);
    /* A fresh checkout: the cache is restored before install. */
    char *deps = pier_path_join(f->src, "deps");
    assert_int_equal(pier_file_remove_tree(deps), 0);
    free(deps);
    pier_buf_reset(&f->log);
    o = (pier_runner_options)PIER_RUNNER_OPTIONS_INIT;
    o.cache_dir = cache;
    res = run_with(f, yaml, &o);
    dump_on_failure(f, res, PIER_BUILD_SUCCEEDED);
    assert_true(logged(f, "cache: restored 1 files"));
    assert_true(logged(f, "cache-hit\n"));
    pier_runner_result_free(res);
    pier_file_remove_tree(cache);
}

static void test_bad_options(void **state)
{
    (void)state;
    const char *yaml = "version: 0.2\nphases:\n  build:\n    commands: [echo]\n";
    pier_buildspec *spec = NULL;
    assert_int_equal(pier_buildspec_load_string(&spec, "b.yml", yaml, strlen(yaml)), 0);
    pier_runner_options o = PIER_RUNNER_OPTIONS_INIT;
    pier_runner *r = NULL;
    assert_int_equal(pier_runner_new(&r, spec, &o), PIER_EINVALID);
    o.src_dir = "/nonexistent/src";
    assert_int_equal(pier_runner_new(&r, spec, &o), PIER_EINVALID);
    assert_null(r);
    pier_runner_cancel(NULL);
    pier_runner_free(NULL);
    pier_runner_result_free(NULL);
    pier_buildspec_free(spec);
    assert_string_equal(pier_build_status_name(PIER_BUILD_TIMED_OUT), "TIMED_OUT");
    assert_string_equal(pier_phase_status_name(PIER_PHASE_PENDING), "PENDING");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the runner must restore it for the commands */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_across_phases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_failure_and_finally, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_finally_fails_phase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_failure_skips_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_build_after_failed_build, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_failure_abort_and_continue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exported_variables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shell_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_masked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kills_background, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftover_background_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_builtin_variables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_artifacts_and_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_through_runner, setup, teardown),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
