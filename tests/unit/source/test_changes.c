/*
 * test_changes: the build-or-skip decision on real repositories built with
 * /usr/bin/git: skips, the HEAD~1 trap, renames both ways, excludes, the
 * never-wrongly-skip rules (first run, unknown base, zero SHA, git errors),
 * force pushes, deletions, binary files, odd path names; the filter alone
 * table-driven; and a printed (not asserted) timing on 5,000 commits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "source/changes.h"
#include "source/git.h"
#include "source/repo_fixture.h"

typedef struct {
    char *root;         /* temp dir */
    char *repo;         /* the work tree */
    pier_git_repo *git; /* opened on repo, after commits are made */
} state;

static int setup(void **st)
{
    state *s = calloc(1, sizeof *s);
    s->root = fx_setup();
    s->repo = fx_init(s->root, "site");
    fx_write(s->repo, "frontend/index.html", "<h1>hi</h1>\n");
    fx_write(s->repo, "frontend/app.js", "console.log(1)\n");
    fx_write(s->repo, "frontend/docs/guide.md", "# guide\n");
    fx_write(s->repo, "backend/server.c", "int main(void) { return 0; }\n");
    fx_write(s->repo, "backend/util.c",
             "int util(void) { return 42; }\n"
             "/* some text so that renames are similar */\n");
    fx_write(s->repo, "README.md", "site\n");
    assert_int_equal(fx_commit(s->repo, "initial", NULL), 0);
    *st = s;
    return 0;
}

static int teardown(void **st)
{
    state *s = *st;
    pier_git_close(s->git);
    free(s->repo);
    fx_teardown(s->root);
    free(s);
    return 0;
}

static pier_git_repo *open_repo(state *s)
{
    pier_git_close(s->git);
    s->git = NULL;
    if (pier_git_open(&s->git, s->repo, false) < 0)
        fail_msg("open: %s", pier_error_last());
    return s->git;
}

static pier_changes *detect(state *s, const char *since, const char *to, const char **inc,
                            size_t ninc, const char **exc, size_t nexc)
{
    pier_changes_opts o = PIER_CHANGES_OPTS_INIT;
    o.include = inc;
    o.include_count = ninc;
    o.exclude = exc;
    o.exclude_count = nexc;
    pier_changes *c = NULL;
    if (pier_changes_detect(&c, open_repo(s), since, to, &o) < 0)
        fail_msg("detect: %s", pier_error_last());
    assert_non_null(c);
    assert_non_null(c->reason);
    return c;
}

static const char *FRONT[] = {"frontend/**"};

static void test_backend_only_push_skips(void **st)
{
    state *s = *st;
    char base[42], tip[42];
    fx_rev(s->repo, "HEAD", base);
    fx_write(s->repo, "backend/server.c", "int main(void) { return 1; }\n");
    fx_commit(s->repo, "backend 1", NULL);
    fx_write(s->repo, "backend/new.c", "void n(void) {}\n");
    fx_commit(s->repo, "backend 2", tip);

    pier_changes *c = detect(s, base, tip, FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_SKIP);
    assert_int_equal(c->why, PIER_CHANGES_NONE_MATCHED);
    assert_int_equal(c->count, 0);
    assert_int_equal(c->files_changed, 2);
    assert_int_equal(c->commits, 2);
    assert_string_equal(c->since, base);
    assert_string_equal(c->to, tip);
    char want[200];
    snprintf(want, sizeof want,
             "no changes under frontend/** since %.7s (2 commits, 2 files changed, none matched)",
             base);
    assert_string_equal(c->reason, want);
    pier_changes_free(c);
}

/* Three commits, only the middle one touches frontend/: HEAD~1..HEAD would
 * skip; deployed..HEAD must build. */
static void test_middle_commit_builds(void **st)
{
    state *s = *st;
    char base[42], tip[42];
    fx_rev(s->repo, "HEAD", base);
    fx_write(s->repo, "backend/a.c", "a\n");
    fx_commit(s->repo, "backend a", NULL);
    fx_write(s->repo, "frontend/app.js", "console.log(2)\n");
    fx_commit(s->repo, "frontend", NULL);
    fx_write(s->repo, "backend/b.c", "b\n");
    fx_commit(s->repo, "backend b", tip);

    pier_changes *c = detect(s, "HEAD~1", "HEAD", FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_SKIP);
    pier_changes_free(c);

    c = detect(s, base, tip, FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->why, PIER_CHANGES_MATCHED);
    assert_int_equal(c->count, 1);
    assert_string_equal(c->files[0].path, "frontend/app.js");
    assert_int_equal(c->files[0].status, PIER_CHANGE_MODIFIED);
    assert_null(c->files[0].old_path);
    assert_int_equal(c->files_changed, 3);
    assert_int_equal(c->commits, 3);
    char want[200];
    snprintf(want, sizeof want, "1 file under frontend/** changed since %.7s", base);
    assert_string_equal(c->reason, want);
    pier_changes_free(c);
}

static void test_rename_counts_both_ways(void **st)
{
    state *s = *st;
    char base[42], mid[42], tip[42];
    fx_rev(s->repo, "HEAD", base);
    assert_int_equal(fx_sh(s->repo, FX_GIT " mv backend/util.c frontend/util.c"), 0);
    fx_commit(s->repo, "into frontend", mid);
    pier_changes *c = detect(s, base, mid, FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->count, 1);
    assert_int_equal(c->files[0].status, PIER_CHANGE_RENAMED);
    assert_string_equal(c->files[0].path, "frontend/util.c");
    assert_string_equal(c->files[0].old_path, "backend/util.c");
    assert_int_equal(c->files_changed, 1); /* one rename, not a delete and an add */
    pier_changes_free(c);

    /* Out of frontend/: only the old path is under the filter. */
    assert_int_equal(fx_sh(s->repo, FX_GIT " mv frontend/app.js backend/app.js"), 0);
    fx_commit(s->repo, "out of frontend", tip);
    c = detect(s, mid, tip, FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->count, 1);
    assert_int_equal(c->files[0].status, PIER_CHANGE_RENAMED);
    assert_string_equal(c->files[0].path, "backend/app.js");
    assert_string_equal(c->files[0].old_path, "frontend/app.js");
    pier_changes_free(c);

    /* A rename inside backend/ stays a skip for frontend. */
    assert_int_equal(fx_sh(s->repo, FX_GIT " mv backend/server.c backend/main.c"), 0);
    fx_commit(s->repo, "inside backend", NULL);
    c = detect(s, tip, "HEAD", FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_SKIP);
    pier_changes_free(c);
}

static void test_exclude_globs(void **st)
{
    state *s = *st;
    char base[42], mid[42], tip[42];
    static const char *EXC[] = {"frontend/**/*.md"};
    fx_rev(s->repo, "HEAD", base);
    fx_write(s->repo, "frontend/docs/guide.md", "# guide v2\n");
    fx_write(s->repo, "frontend/CHANGES.md", "news\n");
    fx_commit(s->repo, "docs only", mid);
    pier_changes *c = detect(s, base, mid, FRONT, 1, EXC, 1);
    assert_int_equal(c->decision, PIER_CHANGES_SKIP);
    assert_non_null(strstr(c->reason, "(excluding frontend/**/*.md)"));
    assert_non_null(strstr(c->reason, "2 files changed, none matched"));
    pier_changes_free(c);

    fx_write(s->repo, "frontend/docs/guide.md", "# guide v3\n");
    fx_write(s->repo, "frontend/index.html", "<h1>v3</h1>\n");
    fx_commit(s->repo, "docs and page", tip);
    c = detect(s, mid, tip, FRONT, 1, EXC, 1);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->count, 1);
    assert_string_equal(c->files[0].path, "frontend/index.html");
    pier_changes_free(c);
}

static void test_no_includes_means_everything(void **st)
{
    state *s = *st;
    char base[42], tip[42];
    fx_rev(s->repo, "HEAD", base);
    fx_write(s->repo, "backend/server.c", "changed\n");
    fx_write(s->repo, "README.md", "changed\n");
    fx_commit(s->repo, "anything", tip);
    pier_changes *c = detect(s, base, tip, NULL, 0, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->count, 2);
    /* sorted by path */
    assert_string_equal(c->files[0].path, "README.md");
    assert_string_equal(c->files[1].path, "backend/server.c");
    char want[120];
    snprintf(want, sizeof want, "2 files changed since %.7s", base);
    assert_string_equal(c->reason, want);
    pier_changes_free(c);

    /* Only excludes: everything but them. */
    static const char *EXC[] = {"*.md"};
    c = detect(s, base, tip, NULL, 0, EXC, 1);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->count, 1);
    assert_string_equal(c->files[0].path, "backend/server.c");
    pier_changes_free(c);

    /* Same commit both sides: nothing changed at all. */
    c = detect(s, tip, tip, NULL, 0, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_SKIP);
    assert_int_equal(c->files_changed, 0);
    assert_int_equal(c->commits, 0);
    assert_non_null(strstr(c->reason, "(0 commits, no files changed)"));
    pier_changes_free(c);
}

static void test_first_run_builds(void **st)
{
    state *s = *st;
    pier_changes *c = detect(s, NULL, "HEAD", FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->why, PIER_CHANGES_FIRST_RUN);
    assert_string_equal(c->reason, "first run: no deployed commit");
    assert_string_equal(c->since, "");
    assert_int_equal(strlen(c->to), 40);
    pier_changes_free(c);
    c = detect(s, "", "HEAD", FRONT, 1, NULL, 0);
    assert_int_equal(c->why, PIER_CHANGES_FIRST_RUN);
    pier_changes_free(c);
}

static void test_unknown_base_builds(void **st)
{
    state *s = *st;
    pier_changes *c =
        detect(s, "1a2b3c4d5e6f1a2b3c4d5e6f1a2b3c4d5e6f1a2b", "HEAD", FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->why, PIER_CHANGES_BASE_MISSING);
    assert_int_equal(c->error, 0);
    assert_string_equal(c->reason,
                        "deployed commit 1a2b3c4 not found (history rewritten?): building");
    pier_changes_free(c);

    /* An abbreviated id that matches nothing is a missing base too. */
    c = detect(s, "fedcba98", "HEAD", FRONT, 1, NULL, 0);
    assert_int_equal(c->why, PIER_CHANGES_BASE_MISSING);
    pier_changes_free(c);

    /* A name that resolves to nothing is an error, still a build. */
    c = detect(s, "no-such-branch", "HEAD", FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->why, PIER_CHANGES_ERROR);
    assert_int_equal(c->error, PIER_ENOTFOUND);
    assert_non_null(strstr(c->reason, "no-such-branch"));
    pier_changes_free(c);

    /* A bad tip: error, build. */
    c = detect(s, "HEAD", "0123abcd0123abcd0123abcd0123abcd0123abcd", FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->why, PIER_CHANGES_ERROR);
    assert_true(c->error < 0);
    assert_non_null(strstr(c->reason, "git error: "));
    pier_changes_free(c);

    /* A blob id as the base: not a commit, build. */
    char blob[42] = "";
    char cmd[600];
    snprintf(cmd, sizeof cmd, "cd '%s' && " FX_GIT " rev-parse HEAD:README.md", s->repo);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(blob, sizeof blob, p));
    pclose(p);
    blob[strcspn(blob, "\n")] = '\0';
    c = detect(s, blob, "HEAD", FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->why, PIER_CHANGES_ERROR);
    pier_changes_free(c);
}

static void test_zero_sha_builds(void **st)
{
    state *s = *st;
    pier_changes *c =
        detect(s, "0000000000000000000000000000000000000000", "HEAD", FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->why, PIER_CHANGES_ZERO_SHA);
    assert_non_null(strstr(c->reason, "zero SHA"));
    pier_changes_free(c);
}

/* The deployed commit is no ancestor of the new tip (force push): the two
 * trees are still compared. */
static void test_force_push_diffs_trees(void **st)
{
    state *s = *st;
    char base[42], deployed[42], tip[42];
    fx_rev(s->repo, "HEAD", base);
    fx_write(s->repo, "backend/x.c", "x\n");
    fx_write(s->repo, "frontend/old.js", "old\n");
    fx_commit(s->repo, "deployed", deployed);
    /* rewrite history: back to base, a different commit on top */
    assert_int_equal(fx_sh(s->repo, FX_GIT " reset -q --hard '%s'", base), 0);
    fx_write(s->repo, "backend/x.c", "x\n");
    fx_write(s->repo, "backend/y.c", "y\n");
    fx_write(s->repo, "frontend/old.js", "old\n");
    fx_commit(s->repo, "rewritten", tip);
    assert_string_not_equal(deployed, tip);

    pier_changes *c = detect(s, deployed, tip, FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_SKIP); /* only backend/y.c differs */
    assert_int_equal(c->files_changed, 1);
    assert_int_equal(c->commits, 1); /* tip is the one commit not in deployed */
    pier_changes_free(c);

    fx_write(s->repo, "frontend/old.js", "new\n");
    fx_commit(s->repo, "frontend on top", tip);
    c = detect(s, deployed, tip, FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->count, 1);
    assert_string_equal(c->files[0].path, "frontend/old.js");
    pier_changes_free(c);
}

static void test_deleted_file_builds(void **st)
{
    state *s = *st;
    char base[42], tip[42];
    fx_rev(s->repo, "HEAD", base);
    assert_int_equal(fx_sh(s->repo, FX_GIT " rm -q frontend/index.html"), 0);
    fx_commit(s->repo, "delete page", tip);
    pier_changes *c = detect(s, base, tip, FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->count, 1);
    assert_int_equal(c->files[0].status, PIER_CHANGE_DELETED);
    assert_string_equal(c->files[0].path, "frontend/index.html");
    pier_changes_free(c);
}

static void test_binary_files(void **st)
{
    state *s = *st;
    char base[42], mid[42], tip[42];
    unsigned char png[600];
    for (size_t i = 0; i < sizeof png; i++)
        png[i] = (unsigned char)(i * 7 + (i >> 3));
    png[0] = 0x89;
    png[10] = 0;
    fx_rev(s->repo, "HEAD", base);
    fx_write_n(s->repo, "frontend/img/logo.png", png, sizeof png);
    fx_write_n(s->repo, "backend/blob.bin", png, sizeof png);
    fx_commit(s->repo, "binaries", mid);
    pier_changes *c = detect(s, base, mid, FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->count, 1);
    assert_int_equal(c->files[0].status, PIER_CHANGE_ADDED);
    assert_string_equal(c->files[0].path, "frontend/img/logo.png");
    pier_changes_free(c);

    png[300] ^= 0xff;
    fx_write_n(s->repo, "backend/blob.bin", png, sizeof png);
    fx_commit(s->repo, "binary in backend", tip);
    c = detect(s, mid, tip, FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_SKIP);
    pier_changes_free(c);

    fx_write_n(s->repo, "frontend/img/logo.png", png, sizeof png);
    fx_commit(s->repo, "binary in frontend", tip);
    c = detect(s, mid, tip, FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->files[0].status, PIER_CHANGE_MODIFIED);
    pier_changes_free(c);
}

static void test_spaces_and_unicode(void **st)
{
    state *s = *st;
    char base[42], tip[42];
    fx_rev(s->repo, "HEAD", base);
    fx_write(s->repo, "frontend/my pages/caf\xc3\xa9 menu.html", "menu\n");
    fx_write(s->repo, "docs dir/\xe6\x97\xa5\xe6\x9c\xac.md", "nihon\n");
    fx_commit(s->repo, "odd names", tip);

    pier_changes *c = detect(s, base, tip, FRONT, 1, NULL, 0);
    assert_int_equal(c->decision, PIER_CHANGES_BUILD);
    assert_int_equal(c->count, 1);
    assert_string_equal(c->files[0].path, "frontend/my pages/caf\xc3\xa9 menu.html");
    pier_changes_free(c);

    static const char *DOCS[] = {"docs dir/*.md"};
    c = detect(s, base, tip, DOCS, 1, NULL, 0);
    assert_int_equal(c->count, 1);
    assert_string_equal(c->files[0].path, "docs dir/\xe6\x97\xa5\xe6\x9c\xac.md");
    pier_changes_free(c);

    static const char *CAFE[] = {"**/caf\xc3\xa9*"};
    c = detect(s, base, tip, CAFE, 1, NULL, 0);
    assert_int_equal(c->count, 1);
    pier_changes_free(c);
}

static void test_commit_count_is_bounded(void **st)
{
    state *s = *st;
    char base[42];
    fx_rev(s->repo, "HEAD", base);
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "backend/f%d.c", i);
        fx_write(s->repo, name, "f\n");
        fx_commit(s->repo, "more", NULL);
    }
    pier_changes_opts o = PIER_CHANGES_OPTS_INIT;
    o.include = FRONT;
    o.include_count = 1;
    o.max_commits = 3;
    pier_changes *c = NULL;
    assert_int_equal(pier_changes_detect(&c, open_repo(s), base, "HEAD", &o), 0);
    assert_int_equal(c->decision, PIER_CHANGES_SKIP);
    assert_true(c->commits_capped);
    assert_int_equal(c->commits, 3);
    assert_non_null(strstr(c->reason, "(more than 3 commits, 5 files changed, none matched)"));
    pier_changes_free(c);

    o.max_commits = 0; /* not counted */
    assert_int_equal(pier_changes_detect(&c, open_repo(s), base, "HEAD", &o), 0);
    assert_int_equal(c->commits, -1);
    assert_non_null(strstr(c->reason, "(5 files changed, none matched)"));
    pier_changes_free(c);
}

static void test_bad_glob_is_invalid(void **st)
{
    state *s = *st;
    static const char *BAD[] = {"frontend/[abc"};
    pier_changes_opts o = PIER_CHANGES_OPTS_INIT;
    o.include = BAD;
    o.include_count = 1;
    pier_changes *c = (pier_changes *)1;
    assert_int_equal(pier_changes_detect(&c, open_repo(s), "HEAD", "HEAD", &o), PIER_EINVALID);
    assert_null(c);
    assert_non_null(strstr(pier_error_last(), "frontend/[abc"));
    o.include = NULL;
    o.include_count = 0;
    o.exclude = BAD;
    o.exclude_count = 1;
    assert_int_equal(pier_changes_validate(&o), PIER_EINVALID);
}

typedef struct {
    const char *inc; /* one include or NULL */
    const char *exc; /* one exclude or NULL */
    const char *path;
    bool selected;
} filter_case;

static const filter_case filter_cases[] = {
    {NULL, NULL, "anything/at/all", true},
    {"frontend/**", NULL, "frontend/a.js", true},
    {"frontend/**", NULL, "frontend/a/b/c.js", true},
    {"frontend/**", NULL, "frontendx/a.js", false},
    {"frontend/**", NULL, "backend/frontend/a.js", false},
    {"frontend", NULL, "frontend/a/b.js", true},  /* a directory name covers its tree */
    {"frontend", NULL, "frontend", true},         /* or a file of that name */
    {"frontend/", NULL, "frontend/a/b.js", true}, /* as Netlify's "frontend/" */
    {"frontend/", NULL, "frontend", false},       /* a trailing / wants a directory */
    {"./frontend/", NULL, "frontend/x", true},
    {"/frontend", NULL, "frontend/x", true},
    {"packages/*", NULL, "packages/ui/src/button.tsx", true},
    {"*.md", NULL, "README.md", true},
    {"*.md", NULL, "docs/a.md", false},
    {"**/*.md", NULL, "docs/a.md", true},
    {"{frontend,shared}/**", NULL, "shared/css/a.css", true},
    {"frontend/**", "frontend/**/*.md", "frontend/docs/a.md", false},
    {"frontend/**", "frontend/**/*.md", "frontend/a.md", false},
    {"frontend/**", "frontend/**/*.md", "frontend/a.js", true},
    {"frontend/**", "frontend/vendor", "frontend/vendor/lib/x.js", false},
    {NULL, "docs/", "docs/a/b", false},
    {NULL, "docs/", "src/docs", true},
    {".", NULL, "x/y", true},
};

static void test_filter_table(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof filter_cases / sizeof *filter_cases; i++) {
        const filter_case *t = &filter_cases[i];
        pier_changes_opts o = PIER_CHANGES_OPTS_INIT;
        o.include = t->inc ? &t->inc : NULL;
        o.include_count = t->inc ? 1 : 0;
        o.exclude = t->exc ? &t->exc : NULL;
        o.exclude_count = t->exc ? 1 : 0;
        bool got = pier_changes_path_selected(&o, t->path);
        if (got != t->selected)
            fail_msg("case %zu: include %s exclude %s path %s: got %d", i, t->inc ? t->inc : "-",
                     t->exc ? t->exc : "-", t->path, got);
    }
}

static double ms_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

/* Not an assertion on time: builds 5,000 commits with git fast-import and
 * prints how long the decisions take. */
static void test_timing_5000_commits(void **st)
{
    state *s = *st;
    char *big = fx_init(s->root, "big");
    char *stream = pier_path_join(s->root, "stream.fi");
    FILE *f = fopen(stream, "w");
    assert_non_null(f);
    enum { COMMITS = 5000, FRONT_FILES = 300, BACK_FILES = 1000 };
    for (int i = 1; i <= COMMITS; i++) {
        fprintf(f, "commit refs/heads/main\nmark :%d\n", i);
        fprintf(f, "committer T <t@example.com> %d +0000\n", 1700000000 + i);
        char msg[64];
        int n = snprintf(msg, sizeof msg, "commit %d\n", i);
        fprintf(f, "data %d\n%s", n, msg);
        if (i > 1)
            fprintf(f, "from :%d\n", i - 1);
        if (i == 1) {
            for (int k = 0; k < FRONT_FILES; k++) {
                n = snprintf(msg, sizeof msg, "front %d\n", k);
                fprintf(f, "M 100644 inline frontend/d%d/f%d.js\ndata %d\n%s\n", k % 20, k, n, msg);
            }
            for (int k = 0; k < BACK_FILES; k++) {
                n = snprintf(msg, sizeof msg, "back %d\n", k);
                fprintf(f, "M 100644 inline backend/d%d/f%d.c\ndata %d\n%s\n", k % 50, k, n, msg);
            }
        } else {
            n = snprintf(msg, sizeof msg, "back %d v%d\n", i % BACK_FILES, i);
            fprintf(f, "M 100644 inline backend/d%d/f%d.c\ndata %d\n%s\n", (i % BACK_FILES) % 50,
                    i % BACK_FILES, n, msg);
        }
        fputc('\n', f);
    }
    fclose(f);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(fx_sh(big, FX_GIT " fast-import --quiet < '%s'", stream), 0);
    double gen = ms_since(&t0);

    pier_git_repo *g = NULL;
    assert_int_equal(pier_git_open(&g, big, false), 0);
    pier_changes_opts o = PIER_CHANGES_OPTS_INIT;
    o.include = FRONT;
    o.include_count = 1;
    pier_changes *c = NULL;

    /* A push of 12 backend-only commits. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(pier_changes_detect(&c, g, "main~12", "main", &o), 0);
    double push = ms_since(&t0);
    assert_int_equal(c->decision, PIER_CHANGES_SKIP);
    assert_int_equal(c->commits, 12);
    printf("timing: 5000-commit repo generated in %.0f ms; backend-only push of 12 commits: "
           "%.2f ms (%s)\n",
           gen, push, c->reason);
    pier_changes_free(c);

    /* The whole history since the first commit: the diff alone, then with
     * the commit count (capped at 1000). */
    o.max_commits = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(pier_changes_detect(&c, g, "main~4999", "main", &o), 0);
    double nocount = ms_since(&t0);
    assert_int_equal(c->decision, PIER_CHANGES_SKIP);
    assert_int_equal(c->files_changed, 1000);
    printf("timing: since the first of 5000 commits, 1000 files changed, no commit count: "
           "%.2f ms\n",
           nocount);
    pier_changes_free(c);

    o.max_commits = 1000;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(pier_changes_detect(&c, g, "main~4999", "main", &o), 0);
    double whole = ms_since(&t0);
    assert_true(c->commits_capped);
    printf("timing: same, counting commits (capped at 1000): %.2f ms (%s)\n", whole, c->reason);
    pier_changes_free(c);

    pier_git_close(g);
    free(stream);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backend_only_push_skips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_middle_commit_builds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_counts_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exclude_globs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_includes_means_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_run_builds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_base_builds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_sha_builds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_force_push_diffs_trees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_file_builds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spaces_and_unicode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_count_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_glob_is_invalid, setup, teardown),
        cmocka_unit_test(test_filter_table),
        cmocka_unit_test_setup_teardown(test_timing_5000_commits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
