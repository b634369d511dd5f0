/*
 * cmd_changed: `pier changed --since REV [--to REV] [PATHS...]`, the source
 * stage's decision on its own: would this push build?
 *
 * It opens the repository (discovered upward from --repo or the current
 * directory), runs pier_changes_detect and prints the decision, the reason
 * and the matching files, as text or JSON. The exit status follows
 * `git diff --quiet` and what Netlify's `ignore` command and Vercel's
 * Ignored Build Step expect: 0 nothing under the paths changed (skip),
 * 1 changed (build), 2 error or usage error (callers build). So unlike the
 * other commands, 1 is not an error here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"
#include "base/mem.h"
#include "cli/commands.h"
#include "source/changes.h"
#include "source/git.h"

enum { EXIT_SKIP = 0, EXIT_BUILD = 1, EXIT_FAIL = 2 };

typedef struct {
    const char *since;    /* --since; "" means no deployed commit */
    bool have_since;      /* --since was given */
    const char *to;       /* --to, default HEAD */
    const char *repo;     /* --repo, default "." */
    const char **include; /* --paths and positional globs */
    size_t ninclude;      /* their count */
    const char **exclude; /* --exclude globs */
    size_t nexclude;      /* their count */
    bool json;            /* --json */
    bool quiet;           /* -q: no output, exit status only */
} changed_args;

static bool is_option(const char *a)
{
    return a[0] == '-' && a[1] != '\0';
}

/* The options that take a value or values, for telling an empty
 * --since "$VAR" (dropped by the shell) from a missing one. */
static bool is_known_option(const char *a)
{
    static const char *const known[] = {"--since", "--to", "--repo",  "--paths", "--exclude",
                                        "--json",  "-q",   "--quiet", "--",      NULL};
    for (size_t i = 0; known[i]; i++)
        if (strcmp(a, known[i]) == 0 ||
            (strncmp(a, known[i], strlen(known[i])) == 0 && a[strlen(known[i])] == '='))
            return true;
    return false;
}

/* Value of "--name=VALUE" or of the next argument; NULL when missing. */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static int parse_args(changed_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->to = "HEAD";
    a->repo = ".";
    a->include = pier_calloc((size_t)argc + 1, sizeof *a->include);
    a->exclude = pier_calloc((size_t)argc + 1, sizeof *a->exclude);
    bool rest = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (rest || !is_option(arg)) {
            a->include[a->ninclude++] = arg;
        } else if (strcmp(arg, "--") == 0) {
            rest = true;
        } else if (strcmp(arg, "--since") == 0 || strncmp(arg, "--since=", 8) == 0) {
            /* `--since $CACHED_COMMIT_REF` with an empty variable loses its
             * word: the next option is not a revision but a first run. */
            if (arg[7] != '=' && (i + 1 >= argc || is_known_option(argv[i + 1]))) {
                a->since = "";
            } else {
                a->since = option_value(argc, argv, &i, "--since");
            }
            a->have_since = true;
        } else if (strcmp(arg, "--to") == 0 || strncmp(arg, "--to=", 5) == 0) {
            if (!(a->to = option_value(argc, argv, &i, "--to")))
                return pier_cli_usage_error("changed", "--to needs a revision");
        } else if (strcmp(arg, "--repo") == 0 || strncmp(arg, "--repo=", 7) == 0) {
            if (!(a->repo = option_value(argc, argv, &i, "--repo")))
                return pier_cli_usage_error("changed", "--repo needs a directory");
        } else if (strcmp(arg, "--paths") == 0 || strcmp(arg, "--exclude") == 0) {
            bool inc = arg[2] == 'p';
            int first = i + 1;
            while (i + 1 < argc && !is_option(argv[i + 1])) {
                if (inc)
                    a->include[a->ninclude++] = argv[++i];
                else
                    a->exclude[a->nexclude++] = argv[++i];
            }
            if (i < first)
                return pier_cli_usage_error("changed", "%s needs at least one glob", arg);
        } else if (strncmp(arg, "--paths=", 8) == 0) {
            a->include[a->ninclude++] = arg + 8;
        } else if (strncmp(arg, "--exclude=", 10) == 0) {
            a->exclude[a->nexclude++] = arg + 10;
        } else if (strcmp(arg, "--json") == 0) {
            a->json = true;
        } else if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
            a->quiet = true;
        } else {
            return pier_cli_usage_error("changed", "unknown option '%s'", arg);
        }
    }
    if (!a->have_since)
        return pier_cli_usage_error("changed",
                                    "--since REV is required (the last deployed commit; pass "
                                    "--since '' for a first run)");
    return 0;
}

static void print_text(const pier_changes *c)
{
    printf("%s: %s\n", pier_changes_decision_name(c->decision), c->reason);
    for (size_t i = 0; i < c->count; i++) {
        const pier_change *f = &c->files[i];
        if (f->old_path)
            printf("  %-10s %s -> %s\n", pier_change_status_name(f->status), f->old_path, f->path);
        else
            printf("  %-10s %s\n", pier_change_status_name(f->status), f->path);
    }
}

static int print_json(const pier_changes *c)
{
    json_t *files = json_array();
    for (size_t i = 0; i < c->count; i++) {
        const pier_change *f = &c->files[i];
        json_t *o =
            json_pack("{s:s, s:s}", "status", pier_change_status_name(f->status), "path", f->path);
        if (f->old_path)
            json_object_set_new(o, "old_path", json_string(f->old_path));
        json_array_append_new(files, o);
    }
    json_t *root =
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:b, s:I, s:o, s:o}", "decision",
                  pier_changes_decision_name(c->decision), "why", pier_changes_why_name(c->why),
                  "reason", c->reason, "since", c->since[0] ? json_string(c->since) : json_null(),
                  "to", c->to[0] ? json_string(c->to) : json_null(), "commits",
                  c->commits >= 0 ? json_integer(c->commits) : json_null(), "commits_capped",
                  c->commits_capped, "files_changed", (json_int_t)c->files_changed, "files", files,
                  "error", c->error ? json_string(pier_error_name(c->error)) : json_null());
    pier_buf out = PIER_BUF_INIT;
    int rc = root ? pier_json_write(&out, root, true) : PIER_ERR;
    if (rc == 0)
        printf("%s\n", pier_buf_cstr(&out));
    pier_buf_free(&out);
    json_decref(root);
    return rc;
}

int pier_cmd_changed(int argc, char **argv)
{
    changed_args a;
    pier_git_repo *repo = NULL;
    pier_changes *c = NULL;
    int status = EXIT_FAIL;
    int rc = parse_args(&a, argc, argv);
    if (rc != 0) {
        status = EXIT_FAIL; /* usage: 2, which callers also read as "build" */
        goto done;
    }
    pier_changes_opts opts = PIER_CHANGES_OPTS_INIT;
    opts.include = a.include;
    opts.include_count = a.ninclude;
    opts.exclude = a.exclude;
    opts.exclude_count = a.nexclude;
    if (pier_changes_validate(&opts) < 0) {
        pier_cli_usage_error("changed", "%s", pier_error_last());
        goto done;
    }
    if (pier_git_open(&repo, a.repo, true) < 0) {
        fprintf(stderr, "pier changed: %s\n", pier_error_last());
        goto done;
    }
    if (pier_changes_detect(&c, repo, a.since, a.to, &opts) < 0) {
        fprintf(stderr, "pier changed: %s\n", pier_error_last());
        goto done;
    }
    if (c->error)
        fprintf(stderr, "pier changed: %s\n", c->reason);
    if (!a.quiet) {
        if (a.json)
            print_json(c);
        else
            print_text(c);
    }
    if (c->error)
        status = EXIT_FAIL;
    else
        status = c->decision == PIER_CHANGES_SKIP ? EXIT_SKIP : EXIT_BUILD;
done:
    fflush(stdout);
    pier_changes_free(c);
    pier_git_close(repo);
    free(a.include);
    free(a.exclude);
    return status;
}
