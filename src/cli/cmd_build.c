/*
 * cmd_build: `pier build [BUILDSPEC]`, a CodeBuild buildspec run here.
 *
 * Parses the options, loads the buildspec (default <src>/buildspec.yml),
 * runs it with src/build/runner in the source directory itself, prints each
 * log line (timestamped, secrets masked) on stdout and collects the
 * artifact into --out. Ctrl-C cancels the build (its processes get SIGTERM,
 * then SIGKILL).
 *
 * --out is emptied before the build only when it lies inside the current
 * directory (and is neither the current directory nor the source nor one of
 * its parents); anywhere else it must be empty or absent, so a typo cannot
 * delete a tree pier did not make.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/str.h"
#include "build/buildspec.h"
#include "build/runner.h"
#include "cli/commands.h"

static pier_runner *volatile running; /* for the signal handler */

static void on_signal(int sig)
{
    (void)sig;
    pier_runner *r = running;
    if (r)
        pier_runner_cancel(r);
}

static void print_line(void *ctx, const pier_runner_log_line *line)
{
    (void)ctx;
    fputs(line->line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

typedef struct {
    pier_runner_var *items; /* parsed NAME=VALUE pairs */
    size_t count;           /* their number */
} var_list;

static void vars_add(var_list *l, const char *name, size_t n, const char *value)
{
    l->items = pier_realloc(l->items, (l->count + 1) * sizeof *l->items);
    l->items[l->count].name = pier_strndup(name, n);
    l->items[l->count].value = value;
    l->count++;
}

static void vars_free(var_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free((char *)l->items[i].name);
    free(l->items);
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* True when a is b or lies under it (both real paths). */
static bool under(const char *a, const char *b)
{
    size_t n = strlen(b);
    if (n == 1)
        return true;
    return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

static bool dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool empty = true;
    struct dirent *de;
    while (empty && (de = readdir(d)))
        empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* Makes --out ready: absent, or emptied when that is safe (see the top). */
static int prepare_out(const char *out, const char *src)
{
    if (!pier_file_exists(out))
        return 0;
    if (!pier_file_is_dir(out))
        return pier_error_set(PIER_EEXISTS, "--out %s exists and is not a directory", out);
    if (dir_empty(out))
        return 0;
    char out_real[PATH_MAX], cwd_real[PATH_MAX], src_real[PATH_MAX];
    if (!realpath(out, out_real) || !realpath(".", cwd_real) || !realpath(src, src_real))
        return pier_error_set_errno(PIER_EIO, "resolving %s", out);
    if (!under(out_real, cwd_real) || strcmp(out_real, cwd_real) == 0 || under(src_real, out_real))
        return pier_error_set(PIER_EEXISTS,
                              "--out %s is not empty and not inside the current directory; "
                              "pier only empties an output directory below where it runs",
                              out);
    int rc = pier_file_remove_tree(out);
    return rc;
}

int pier_cmd_build(int argc, char **argv)
{
    const char *spec_path = NULL, *src = ".", *out = "pier-artifacts", *cache = NULL;
    uint64_t timeout = 3600;
    var_list env = {0}, secrets = {0};
    pier_buildspec *spec = NULL;
    pier_runner *runner = NULL;
    pier_runner_result *res = NULL;
    char *default_spec = NULL;
    int status = PIER_EXIT_ERROR;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        const char *opts[] = {"--src", "--out", "--env", "--secret", "--timeout", "--cache", NULL};
        const char *opt = NULL;
        for (const char **o = opts; *o; o++) {
            size_t n = strlen(*o);
            if (strncmp(a, *o, n) == 0 && (a[n] == '\0' || a[n] == '=')) {
                opt = *o;
                if (a[n] == '=') {
                    val = a + n + 1;
                } else if (i + 1 < argc) {
                    val = argv[++i];
                } else {
                    status = pier_cli_usage_error("build", "%s needs a value", opt);
                    goto done;
                }
            }
        }
        if (!opt) {
            if (a[0] == '-' && strcmp(a, "-") != 0) {
                status = pier_cli_usage_error("build", "unknown option '%s'", a);
                goto done;
            }
            if (spec_path) {
                status = pier_cli_usage_error("build", "one buildspec at a time ('%s' and '%s')",
                                              spec_path, a);
                goto done;
            }
            spec_path = a;
        } else if (strcmp(opt, "--src") == 0) {
            src = val;
        } else if (strcmp(opt, "--out") == 0) {
            out = val;
        } else if (strcmp(opt, "--cache") == 0) {
            cache = val;
        } else if (strcmp(opt, "--timeout") == 0) {
            if (pier_parse_u64(val, &timeout) != 0 || timeout > 7 * 24 * 3600) {
                status = pier_cli_usage_error("build", "--timeout wants seconds, found '%s'", val);
                goto done;
            }
        } else {
            const char *eq = strchr(val, '=');
            if (!eq || !valid_name(val, (size_t)(eq - val))) {
                status = pier_cli_usage_error("build", "%s wants NAME=%s, found '%s'", opt,
                                              strcmp(opt, "--env") == 0 ? "VALUE" : "ENVVAR", val);
                goto done;
            }
            if (strcmp(opt, "--env") == 0) {
                vars_add(&env, val, (size_t)(eq - val), eq + 1);
            } else {
                const char *value = getenv(eq + 1);
                if (!value) {
                    status = pier_cli_usage_error("build",
                                                  "--secret %.*s: the environment variable %s "
                                                  "is not set",
                                                  (int)(eq - val), val, eq + 1);
                    goto done;
                }
                vars_add(&secrets, val, (size_t)(eq - val), value);
            }
        }
    }
    if (!pier_file_is_dir(src)) {
        status = pier_cli_usage_error("build", "--src %s is not a directory", src);
        goto done;
    }
    if (!spec_path) {
        default_spec = pier_path_join(src, "buildspec.yml");
        spec_path = default_spec;
    }
    if (pier_buildspec_load_file(&spec, spec_path) != 0) {
        status = pier_cli_fail(NULL);
        goto done;
    }
    if (spec->has_artifacts && prepare_out(out, src) != 0) {
        status = pier_cli_fail(NULL);
        goto done;
    }
    pier_runner_options o = PIER_RUNNER_OPTIONS_INIT;
    o.src_dir = src;
    o.project = "local";
    o.initiator = "pier-cli";
    o.env = env.items;
    o.env_count = env.count;
    o.secrets = secrets.items;
    o.secret_count = secrets.count;
    o.cache_dir = cache;
    o.artifact_dir = spec->has_artifacts ? out : NULL;
    o.timeout_sec = (unsigned)timeout;
    o.log = print_line;
    if (pier_runner_new(&runner, spec, &o) != 0) {
        status = pier_cli_fail(NULL);
        goto done;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    running = runner;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    pier_runner_run(runner, &res);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    running = NULL;
    if (!res) {
        status = pier_cli_fail(NULL);
        goto done;
    }
    for (size_t i = 0; i < res->exported_count; i++)
        printf("exported %s=%s\n", res->exported[i].name, res->exported[i].value);
    fflush(stdout);
    if (res->status != PIER_BUILD_SUCCEEDED) {
        fprintf(stderr, "pier: build %s: %s\n", pier_build_status_name(res->status),
                res->message ? res->message : "");
        status = PIER_EXIT_ERROR;
        goto done;
    }
    if (!spec->has_artifacts)
        fputs("pier: build succeeded (the buildspec has no artifacts)\n", stderr);
    else if (res->artifact_name)
        fprintf(stderr, "pier: build succeeded; %zu artifact files in %s (name: %s)\n",
                res->artifact_files, out, res->artifact_name);
    else
        fprintf(stderr, "pier: build succeeded; %zu artifact files in %s\n", res->artifact_files,
                out);
    status = PIER_EXIT_OK;
done:
    pier_runner_result_free(res);
    pier_runner_free(runner);
    pier_buildspec_free(spec);
    free(default_spec);
    vars_free(&env);
    vars_free(&secrets);
    return status;
}
