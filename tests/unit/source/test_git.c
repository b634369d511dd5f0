/*
 * test_git: the mirror and the checkout against local repositories made
 * with /usr/bin/git: first fetch into a bare mirror, a second fetch after
 * new commits (only new objects), a force-pushed branch, a missing or
 * deleted branch (clear error, stale ref gone), file:// URLs, bad inputs;
 * checkout of a commit gives exactly its files (modes, symlinks, no .git);
 * resolve and describe.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "source/git.h"
#include "source/repo_fixture.h"

typedef struct {
    char *root;   /* temp dir */
    char *up;     /* the "remote": a work tree */
    char *mirror; /* <root>/cache/site.git */
} state;

static int setup(void **st)
{
    state *s = calloc(1, sizeof *s);
    s->root = fx_setup();
    s->up = fx_init(s->root, "upstream");
    s->mirror = pier_path_join(s->root, "cache/site.git");
    fx_write(s->up, "index.html", "<h1>v1</h1>\n");
    fx_write(s->up, "src/app.js", "console.log(1)\n");
    assert_int_equal(fx_commit(s->up, "first", NULL), 0);
    assert_int_equal(fx_sh(s->up, FX_GIT " branch dev && " FX_GIT " tag v1"), 0);
    *st = s;
    return 0;
}

static int teardown(void **st)
{
    state *s = *st;
    free(s->up);
    free(s->mirror);
    fx_teardown(s->root);
    free(s);
    return 0;
}

static pier_git_fetch_result fetch_ok(state *s, const char *url, const char *branch)
{
    pier_git_fetch_opts o = {0};
    o.url = url;
    o.branch = branch;
    o.mirror = s->mirror;
    pier_git_fetch_result r;
    if (pier_git_fetch(&r, &o) < 0)
        fail_msg("fetch %s %s: %s", url, branch, pier_error_last());
    return r;
}

static bool is_bare_mirror(const char *dir)
{
    char *head = pier_path_join(dir, "HEAD");
    char *objects = pier_path_join(dir, "objects");
    char *dotgit = pier_path_join(dir, ".git");
    bool ok = pier_file_exists(head) && pier_file_is_dir(objects) && !pier_file_exists(dotgit);
    free(head);
    free(objects);
    free(dotgit);
    return ok;
}

static void test_fetch_into_new_mirror(void **st)
{
    state *s = *st;
    char want[42];
    fx_rev(s->up, "main", want);
    pier_git_fetch_result r = fetch_ok(s, s->up, "main");
    assert_string_equal(r.tip, want);
    assert_string_equal(r.previous, "");
    assert_true(r.updated);
    assert_true(r.objects > 0);
    assert_true(is_bare_mirror(s->mirror));

    pier_git_repo *g = NULL;
    assert_int_equal(pier_git_open(&g, s->mirror, false), 0);
    char tip[42];
    assert_int_equal(pier_git_branch_tip(g, "main", tip), 0);
    assert_string_equal(tip, want);
    /* Only the watched branch, no tags. */
    assert_int_equal(pier_git_branch_tip(g, "dev", tip), PIER_ENOTFOUND);
    assert_non_null(strstr(pier_error_last(), "dev"));
    assert_int_equal(pier_git_resolve(g, "v1", tip), PIER_ENOTFOUND);
    /* HEAD names the branch, so revisions like HEAD work in the mirror. */
    assert_int_equal(pier_git_resolve(g, "HEAD", tip), 0);
    assert_string_equal(tip, want);
    pier_git_close(g);
}

static void test_fetch_again_is_incremental(void **st)
{
    state *s = *st;
    pier_git_fetch_result first = fetch_ok(s, s->up, "main");

    pier_git_fetch_result same = fetch_ok(s, s->up, "main");
    assert_false(same.updated);
    assert_string_equal(same.tip, first.tip);
    assert_string_equal(same.previous, first.tip);
    assert_int_equal(same.objects, 0);

    char want[42];
    fx_write(s->up, "src/app.js", "console.log(2)\n");
    fx_commit(s->up, "second", NULL);
    fx_write(s->up, "about.html", "about\n");
    fx_commit(s->up, "third", want);
    pier_git_fetch_result next = fetch_ok(s, s->up, "main");
    assert_true(next.updated);
    assert_string_equal(next.previous, first.tip);
    assert_string_equal(next.tip, want);
    /* 2 commits, 2 root trees, 1 src tree, 2 blobs: the new objects only */
    assert_true(next.objects > 0);
    assert_true(next.objects <= 7);
}

static void test_force_pushed_branch_updates(void **st)
{
    state *s = *st;
    char old[42], rewritten[42];
    fx_write(s->up, "a.txt", "a\n");
    fx_commit(s->up, "to be rewritten", old);
    pier_git_fetch_result r = fetch_ok(s, s->up, "main");
    assert_string_equal(r.tip, old);

    assert_int_equal(fx_sh(s->up, FX_GIT " reset -q --hard HEAD~1"), 0);
    fx_write(s->up, "b.txt", "b\n");
    fx_commit(s->up, "rewritten", rewritten);
    r = fetch_ok(s, s->up, "main");
    assert_true(r.updated);
    assert_string_equal(r.previous, old);
    assert_string_equal(r.tip, rewritten);
}

static void test_missing_branch_is_clear_error(void **st)
{
    state *s = *st;
    pier_git_fetch_opts o = {0};
    o.url = s->up;
    o.branch = "release";
    o.mirror = s->mirror;
    pier_git_fetch_result r;
    assert_int_equal(pier_git_fetch(&r, &o), PIER_ENOTFOUND);
    assert_non_null(strstr(pier_error_last(), "branch 'release' not found"));
    assert_non_null(strstr(pier_error_last(), s->up));
    assert_string_equal(r.tip, "");

    /* A branch fetched once, then deleted upstream: error, stale ref gone. */
    pier_git_fetch_result dev = fetch_ok(s, s->up, "dev");
    assert_true(dev.updated);
    assert_int_equal(fx_sh(s->up, FX_GIT " branch -q -D dev"), 0);
    o.branch = "dev";
    assert_int_equal(pier_git_fetch(&r, &o), PIER_ENOTFOUND);
    assert_non_null(strstr(pier_error_last(), "'dev'"));
    pier_git_repo *g = NULL;
    assert_int_equal(pier_git_open(&g, s->mirror, false), 0);
    char tip[42];
    assert_int_equal(pier_git_branch_tip(g, "dev", tip), PIER_ENOTFOUND);
    pier_git_close(g);
}

static void test_file_url_and_bad_inputs(void **st)
{
    state *s = *st;
    char url[600], want[42];
    snprintf(url, sizeof url, "file://%s", s->up);
    fx_rev(s->up, "main", want);
    pier_git_fetch_result r = fetch_ok(s, url, "main");
    assert_string_equal(r.tip, want);

    /* A relative local path, from the current directory. */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(s->root), 0);
    free(s->mirror);
    s->mirror = pier_path_join(s->root, "cache/relative.git");
    r = fetch_ok(s, "upstream", "main");
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(r.tip, want);

    pier_git_fetch_opts o = {0};
    o.mirror = s->mirror;
    o.url = s->up;
    o.branch = "bad..name";
    assert_int_equal(pier_git_fetch(NULL, &o), PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "bad..name"));
    o.branch = "";
    assert_int_equal(pier_git_fetch(NULL, &o), PIER_EINVALID);

    o.branch = "main";
    char *nowhere = pier_path_join(s->root, "no-such-repo");
    o.url = nowhere;
    assert_int_equal(pier_git_fetch(NULL, &o), PIER_ENOTFOUND);
    assert_non_null(strstr(pier_error_last(), nowhere));
    assert_non_null(strstr(pier_error_last(), "'main'"));
    free(nowhere);

    /* A mirror path that holds something else is refused, not clobbered. */
    char *junk = pier_path_join(s->root, "junk");
    fx_write(junk, "keep.txt", "mine\n");
    o.url = s->up;
    o.mirror = junk;
    assert_int_equal(pier_git_fetch(NULL, &o), PIER_EEXISTS);
    assert_non_null(strstr(pier_error_last(), junk));
    char *kept = pier_path_join(junk, "keep.txt");
    assert_true(pier_file_exists(kept));
    free(kept);
    free(junk);

    o.mirror = NULL;
    assert_int_equal(pier_git_fetch(NULL, &o), PIER_EINVALID);
}

static char *read_text(const char *dir, const char *rel)
{
    char *path = pier_path_join(dir, rel);
    pier_buf b = PIER_BUF_INIT;
    int rc = pier_file_read(path, &b);
    free(path);
    if (rc < 0) {
        pier_buf_free(&b);
        return NULL;
    }
    return pier_buf_detach(&b);
}

static void test_checkout_commit(void **st)
{
    state *s = *st;
    char old[42];
    fx_write(s->up, "run.sh", "#!/bin/sh\necho hi\n");
    assert_int_equal(fx_sh(s->up, "chmod +x run.sh && ln -s index.html link.html"), 0);
    fx_write(s->up, "deep/er/file.txt", "deep\n");
    fx_write(s->up, ".gitattributes", "*.bat text eol=crlf\n");
    fx_write(s->up, "build.bat", "echo one\necho two\n");
    fx_commit(s->up, "old", old);
    /* The tip differs: a file removed, one changed, one added. */
    assert_int_equal(fx_sh(s->up, FX_GIT " rm -q deep/er/file.txt"), 0);
    fx_write(s->up, "index.html", "<h1>v2</h1>\n");
    fx_write(s->up, "new.txt", "new\n");
    fx_commit(s->up, "tip", NULL);
    fetch_ok(s, s->up, "main");

    pier_git_repo *g = NULL;
    assert_int_equal(pier_git_open(&g, s->mirror, false), 0);
    char *dir = pier_path_join(s->root, "work/run-1/src");
    if (pier_git_checkout(g, old, dir) < 0)
        fail_msg("checkout: %s", pier_error_last());
    char *t = read_text(dir, "index.html");
    assert_string_equal(t, "<h1>v1</h1>\n");
    free(t);
    t = read_text(dir, "deep/er/file.txt");
    assert_string_equal(t, "deep\n");
    free(t);
    t = read_text(dir, "new.txt");
    assert_null(t);
    /* .gitattributes applies as in a clone: the blob has LF, the file CRLF */
    t = read_text(dir, "build.bat");
    assert_string_equal(t, "echo one\r\necho two\r\n");
    free(t);
    char *p = pier_path_join(dir, "run.sh");
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_true(sb.st_mode & S_IXUSR);
    free(p);
    p = pier_path_join(dir, "link.html");
    assert_int_equal(lstat(p, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    char target[64] = "";
    assert_int_equal(readlink(p, target, sizeof target - 1), (ssize_t)strlen("index.html"));
    assert_string_equal(target, "index.html");
    free(p);
    p = pier_path_join(dir, ".git");
    assert_false(pier_file_exists(p));
    free(p);

    /* A non-empty directory is refused. */
    assert_int_equal(pier_git_checkout(g, "main", dir), PIER_EEXISTS);
    assert_non_null(strstr(pier_error_last(), dir));

    /* The tip (the mirror's HEAD) into an existing empty dir: every file. */
    char *dir2 = pier_path_join(s->root, "work/run-2");
    pier_file_mkdirs(dir2, 0755);
    if (pier_git_checkout(g, "main", dir2) < 0)
        fail_msg("checkout: %s", pier_error_last());
    t = read_text(dir2, "index.html");
    assert_string_equal(t, "<h1>v2</h1>\n");
    free(t);
    t = read_text(dir2, "src/app.js");
    assert_string_equal(t, "console.log(1)\n");
    free(t);
    t = read_text(dir2, "new.txt");
    assert_string_equal(t, "new\n");
    free(t);
    t = read_text(dir2, "deep/er/file.txt");
    assert_null(t);

    /* The mirror has no index and no work tree afterwards. */
    p = pier_path_join(s->mirror, "index");
    assert_false(pier_file_exists(p));
    free(p);

    char *dir3 = pier_path_join(s->root, "work/run-3");
    assert_int_equal(pier_git_checkout(g, "no-such-rev", dir3), PIER_ENOTFOUND);
    assert_non_null(strstr(pier_error_last(), "no-such-rev"));
    assert_false(pier_file_exists(dir3));
    free(dir3);
    free(dir2);
    free(dir);
    pier_git_close(g);
}

static void test_open_resolve_describe(void **st)
{
    state *s = *st;
    fx_write(s->up, "x.txt", "x\n");
    assert_int_equal(
        fx_sh(s->up, FX_GIT " add -A && " FX_GIT " commit -q -m 'Fix the header\n\nlong body'"), 0);
    char head[42], parent[42];
    fx_rev(s->up, "HEAD", head);
    fx_rev(s->up, "HEAD~1", parent);

    pier_git_repo *g = NULL;
    assert_int_equal(pier_git_open(&g, s->root, false), PIER_ENOTFOUND);
    assert_null(g);
    char *sub = pier_path_join(s->up, "src");
    assert_int_equal(pier_git_open(&g, sub, false), PIER_ENOTFOUND);
    assert_int_equal(pier_git_open(&g, sub, true), 0); /* discovered upward */
    free(sub);
    assert_non_null(strstr(pier_git_path(g), "upstream/.git"));

    char out[42];
    assert_int_equal(pier_git_resolve(g, "HEAD~1", out), 0);
    assert_string_equal(out, parent);
    char abbrev[12];
    snprintf(abbrev, sizeof abbrev, "%.8s", head);
    assert_int_equal(pier_git_resolve(g, abbrev, out), 0);
    assert_string_equal(out, head);
    assert_int_equal(pier_git_resolve(g, "v1", out), 0); /* a tag peels to its commit */
    assert_string_equal(out, parent);
    assert_int_equal(pier_git_resolve(g, "nope", out), PIER_ENOTFOUND);
    assert_string_equal(out, "");
    assert_int_equal(pier_git_resolve(g, "", out), PIER_EINVALID);

    pier_git_commit_info ci;
    assert_int_equal(pier_git_describe(&ci, g, "main"), 0);
    assert_string_equal(ci.sha, head);
    assert_true(strlen(ci.short_sha) >= 7);
    assert_int_equal(strncmp(ci.short_sha, head, strlen(ci.short_sha)), 0);
    assert_string_equal(ci.summary, "Fix the header");
    assert_string_equal(ci.author_name, "Ada Lovelace");
    assert_string_equal(ci.author_email, "ada@example.com");
    assert_int_equal(ci.time, 1700000000);
    assert_int_equal(ci.tz_offset, 60);
    pier_git_commit_info_clear(&ci);
    pier_git_commit_info_clear(NULL);
    assert_int_equal(pier_git_describe(&ci, g, "nope"), PIER_ENOTFOUND);
    pier_git_close(g);
    pier_git_close(NULL);

    assert_true(pier_git_is_zero_sha("0000000000000000000000000000000000000000"));
    assert_false(pier_git_is_zero_sha("000000000000000000000000000000000000000"));
    assert_false(pier_git_is_zero_sha(head));
    assert_false(pier_git_is_zero_sha(NULL));
    assert_true(pier_git_looks_like_sha("1a2b"));
    assert_true(pier_git_looks_like_sha(head));
    assert_false(pier_git_looks_like_sha("1a2"));
    assert_false(pier_git_looks_like_sha("main"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fetch_into_new_mirror, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_again_is_incremental, setup, teardown),
        cmocka_unit_test_setup_teardown(test_force_pushed_branch_updates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_branch_is_clear_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_url_and_bad_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkout_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_resolve_describe, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
