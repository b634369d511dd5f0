/*
 * test_artifacts: artifact collection (files globs, base-directory literal
 * and glob, exclude-paths, discard-paths and its conflicts, symlinks, an
 * output that is not empty, nothing matched) and the cache round trip
 * (relative and absolute paths, modes, links, keys and fallback keys,
 * read-only directories).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "build/artifacts.h"
#include "build/buildspec.h"

typedef struct {
    char root[64];  /* holds src/, out*, cache/, home/ */
    char *src;      /* root/src */
    pier_buf notes; /* notes from the module */
} fixture;

static void put(const char *dir, const char *rel, const char *content, mode_t mode)
{
    char *path = pier_path_join(dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    assert_int_equal(pier_file_mkdirs(path, 0755), 0);
    *slash = '/';
    assert_int_equal(pier_file_write_atomic(path, content, strlen(content), mode), 0);
    free(path);
}

static int setup(void **state)
{
    fixture *f = pier_calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/pier-test-artifacts-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    f->src = pier_path_join(f->root, "src");
    pier_buf_init(&f->notes, 1 << 20);
    put(f->src, "README.md", "readme", 0644);
    put(f->src, "dist/index.html", "<h1>home</h1>", 0644);
    put(f->src, "dist/css/site.css", "body{}", 0644);
    put(f->src, "dist/js/app.js", "app()", 0644);
    put(f->src, "dist/js/app.js.map", "{}", 0644);
    put(f->src, "dist/bin/run.sh", "#!/bin/sh\n", 0755);
    put(f->src, "dist/.cache/x", "cache", 0644);
    put(f->src, "my-build1/my-file1.txt", "1", 0644);
    put(f->src, "my-build2/my-file2.txt", "2", 0644);
    put(f->src, "my-build2/my-subdirectory/my-file3.txt", "3", 0644);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    /* Cached read-only directories need write permission back to be removed. */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", f->root, f->root);
    assert_int_equal(system(cmd), 0);
    free(f->src);
    pier_buf_free(&f->notes);
    free(f);
    return 0;
}

static void on_note(void *ctx, const char *msg)
{
    fixture *f = ctx;
    pier_buf_printf(&f->notes, "%s\n", msg);
}

/* Every file under dir, as "rel" lines in byte order. */
static int list_cb(const pier_file_entry *e, void *ctx)
{
    pier_buf_printf(ctx, "%s\n", e->rel);
    return 0;
}

static char *listing(const char *dir)
{
    pier_buf b;
    pier_buf_init(&b, 1 << 20);
    assert_int_equal(pier_file_walk(dir, list_cb, &b), 0);
    return pier_buf_detach(&b);
}

typedef struct {
    const char *files[4];   /* NULL-terminated */
    const char *base;       /* base-directory or NULL */
    const char *exclude[4]; /* NULL-terminated */
    bool discard;           /* discard-paths */
    const char *want;       /* expected listing, or NULL when an error is expected */
    const char *error;      /* expected error substring */
} art_case;

static void run_case(fixture *f, const art_case *c, int n)
{
    pier_buildspec_artifact a = {0};
    size_t nf = 0, ne = 0;
    while (c->files[nf])
        nf++;
    while (c->exclude[ne])
        ne++;
    a.files = (const char **)c->files;
    a.file_count = nf;
    a.exclude_paths = (const char **)c->exclude;
    a.exclude_count = ne;
    a.base_directory = c->base;
    a.discard_paths = c->discard;
    char name[32];
    snprintf(name, sizeof name, "out%d", n);
    char *out = pier_path_join(f->root, name);
    size_t count = 0;
    int rc = pier_artifacts_collect(&a, f->src, out, on_note, f, &count);
    if (c->want) {
        if (rc)
            fail_msg("case %d: %s", n, pier_error_last());
        char *got = listing(out);
        if (strcmp(got, c->want) != 0)
            fail_msg("case %d:\n want:\n%s got:\n%s", n, c->want, got);
        size_t lines = 0;
        for (const char *p = got; *p; p++)
            lines += *p == '\n';
        assert_int_equal(count, lines);
        free(got);
    } else {
        if (rc == 0 || !strstr(pier_error_last(), c->error))
            fail_msg("case %d: want error '%s', got %d '%s'", n, c->error, rc, pier_error_last());
    }
    free(out);
}

static void test_collect_cases(void **state)
{
    fixture *f = *state;
    const art_case cases[] = {
        /* '**' + '/' + '*' with a base directory: everything under it. */
        {{"**/*", NULL},
         "dist",
         {NULL},
         false,
         ".cache/x\nbin/run.sh\ncss/site.css\nindex.html\njs/app.js\njs/app.js.map\n",
         NULL},
        /* exclude-paths: a glob, and a plain directory name. */
        {{"**/*", NULL},
         "dist",
         {"**/*.map", ".cache", NULL},
         false,
         "bin/run.sh\ncss/site.css\nindex.html\njs/app.js\n",
         NULL},
        /* 'dir/' + '*' is the files directly in dir; paths keep their prefix. */
        {{"dist/*", "README.md", NULL}, NULL, {NULL}, false, "README.md\ndist/index.html\n", NULL},
        /* discard-paths flattens. */
        {{"dist/js/*", "dist/css/*", NULL},
         NULL,
         {NULL},
         true,
         "app.js\napp.js.map\nsite.css\n",
         NULL},
        /* The reference's own examples for base-directory. */
        {{"*/my-file3.txt", NULL},
         "my-build2",
         {NULL},
         false,
         "my-subdirectory/my-file3.txt\n",
         NULL},
        {{"**/*", NULL},
         "my-build*",
         {NULL},
         true,
         "my-file1.txt\nmy-file2.txt\nmy-file3.txt\n",
         NULL},
        /* A plain directory name stands for everything under it; ./ is ignored. */
        {{"./dist/js", NULL}, NULL, {NULL}, false, "dist/js/app.js\ndist/js/app.js.map\n", NULL},
        /* Errors. */
        {{"**/*.txt", NULL}, "my-build*", {NULL}, false, NULL, NULL},
        {{"nothing/**/*", NULL}, NULL, {NULL}, false, NULL, "no matching artifact paths found"},
        {{"**/*", NULL}, "missing", {NULL}, false, NULL, "matches no directory"},
        {{"**/*", NULL}, "dist", {"**/*", NULL}, false, NULL, "no matching artifact paths found"},
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof *cases); i++)
        if (i != 7)
            run_case(f, &cases[i], i);
    /* Case 7: two base directories holding the same relative path conflict
     * even without discard-paths. */
    put(f->src, "my-build1/same.txt", "a", 0644);
    put(f->src, "my-build2/same.txt", "b", 0644);
    art_case conflict = cases[7];
    conflict.error = "'my-build1/same.txt' and 'my-build2/same.txt' would both be written to "
                     "'same.txt'";
    run_case(f, &conflict, 7);
    /* discard-paths conflict across directories names both sources. */
    put(f->src, "dist/other/app.js", "other", 0644);
    art_case flat = {{"dist/**/*.js", NULL}, NULL, {NULL}, true, NULL, NULL};
    flat.error = "'dist/js/app.js' and 'dist/other/app.js' would both be written to 'app.js' "
                 "(discard-paths: yes)";
    run_case(f, &flat, 20);
}

static void test_collect_modes_links_and_out(void **state)
{
    fixture *f = *state;
    char outside[96];
    snprintf(outside, sizeof outside, "%s/outside.txt", f->root);
    put(f->root, "outside.txt", "secret", 0600);
    char *link_out = pier_path_join(f->src, "dist/leak.txt");
    char *link_in = pier_path_join(f->src, "dist/alias.html");
    assert_int_equal(symlink(outside, link_out), 0);
    assert_int_equal(symlink("index.html", link_in), 0);
    pier_buildspec_artifact a = {0};
    const char *files[] = {"**/*"};
    a.files = files;
    a.file_count = 1;
    a.base_directory = "dist";
    char *out = pier_path_join(f->root, "out-links");
    size_t count = 0;
    assert_int_equal(pier_artifacts_collect(&a, f->src, out, on_note, f, &count), 0);
    char *alias = pier_path_join(out, "alias.html"), *leak = pier_path_join(out, "leak.txt");
    char *run = pier_path_join(out, "bin/run.sh");
    struct stat st;
    assert_int_equal(lstat(alias, &st), 0);
    assert_true(S_ISREG(st.st_mode)); /* a link inside the source is copied as a file */
    assert_false(pier_file_exists(leak));
    assert_non_null(strstr(pier_buf_cstr(&f->notes), "leak.txt: the link points outside"));
    assert_int_equal(stat(run, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755); /* modes are kept */
    /* A second collection into the same, now non-empty, directory is refused. */
    assert_int_equal(pier_artifacts_collect(&a, f->src, out, on_note, f, &count), PIER_EEXISTS);
    assert_non_null(strstr(pier_error_last(), "is not empty"));
    /* An output inside the source is not collected into itself. */
    const char *all[] = {"**/*"};
    pier_buildspec_artifact b = {0};
    b.files = all;
    b.file_count = 1;
    char *inner = pier_path_join(f->src, "dist/pier-out");
    assert_int_equal(pier_artifacts_collect(&b, f->src, inner, on_note, f, &count), 0);
    char *nested = pier_path_join(inner, "dist/pier-out");
    assert_false(pier_file_exists(nested));
    free(nested);
    free(inner);
    free(alias);
    free(leak);
    free(run);
    free(out);
    free(link_out);
    free(link_in);
}

static bool same_file(const char *path, const char *content)
{
    pier_buf b;
    pier_buf_init(&b, 1 << 20);
    bool ok = pier_file_read(path, &b) == 0 && strcmp(pier_buf_cstr(&b), content) == 0;
    pier_buf_free(&b);
    return ok;
}

static void test_cache_round_trip(void **state)
{
    fixture *f = *state;
    char *cache = pier_path_join(f->root, "cache");
    char *home = pier_path_join(f->root, "home");
    put(f->src, "node_modules/a/index.js", "module.exports=1", 0644);
    put(f->src, "node_modules/a/cli.js", "#!/usr/bin/env node", 0755);
    put(f->src, "node_modules/ro/file.txt", "read-only dir", 0644);
    char *bin = pier_path_join(f->src, "node_modules/.bin");
    assert_int_equal(pier_file_mkdirs(bin, 0755), 0);
    char *link = pier_path_join(bin, "a");
    assert_int_equal(symlink("../a/cli.js", link), 0);
    char *ro = pier_path_join(f->src, "node_modules/ro");
    assert_int_equal(chmod(ro, 0555), 0);
    put(home, ".npm/_cacache/index", "npm-index", 0600);

    char abs_pattern[256];
    snprintf(abs_pattern, sizeof abs_pattern, "%s/.npm/**/*", home);
    const char *paths[] = {"node_modules/**/*", abs_pattern};
    pier_buildspec_cache c = {0};
    c.present = true;
    c.paths = paths;
    c.path_count = 2;
    c.key = "npm-v1";
    size_t n = 0;
    if (pier_artifacts_cache_save(&c, f->src, cache, on_note, f, &n) != 0)
        fail_msg("%s", pier_error_last());
    assert_int_equal(n, 5); /* 3 files + 1 link + 1 absolute */

    /* A fresh checkout and a fresh home. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s/node_modules' && rm -rf '%s/node_modules' '%s'",
             f->src, f->src, home);
    assert_int_equal(system(cmd), 0);
    put(f->src, "node_modules/a/index.js", "checked-out wins", 0644);

    /* Another key finds nothing; its fallback finds npm-v1. */
    const char *fallbacks[] = {"npm-v0", "npm-v1"};
    c.key = "npm-v2";
    c.fallback_keys = fallbacks;
    c.fallback_count = 2;
    n = 0;
    if (pier_artifacts_cache_restore(&c, f->src, cache, on_note, f, &n) != 0)
        fail_msg("%s", pier_error_last());
    assert_int_equal(n, 4); /* index.js was present and is kept */
    assert_non_null(strstr(pier_buf_cstr(&f->notes), "using fallback key 'npm-v1'"));
    char *index = pier_path_join(f->src, "node_modules/a/index.js");
    char *cli = pier_path_join(f->src, "node_modules/a/cli.js");
    char *npm = pier_path_join(home, ".npm/_cacache/index");
    char *rofile = pier_path_join(f->src, "node_modules/ro/file.txt");
    assert_true(same_file(index, "checked-out wins"));
    assert_true(same_file(cli, "#!/usr/bin/env node"));
    assert_true(same_file(npm, "npm-index"));
    assert_true(same_file(rofile, "read-only dir"));
    struct stat st;
    assert_int_equal(stat(cli, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0755);
    assert_int_equal(stat(npm, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(ro, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0555);
    char target[256];
    ssize_t tl = readlink(link, target, sizeof target - 1);
    assert_true(tl > 0);
    target[tl] = '\0';
    assert_string_equal(target, "../a/cli.js"); /* links stay links */

    /* Saving again replaces the slot (the read-only directory included). */
    c.key = "npm-v1";
    put(f->src, "node_modules/b/new.js", "new", 0644);
    assert_int_equal(pier_artifacts_cache_save(&c, f->src, cache, on_note, f, &n), 0);
    assert_int_equal(n, 6);
    char *saved = pier_path_join(cache, "key-npm-v1/src/node_modules/b/new.js");
    assert_true(pier_file_exists(saved));

    /* A restore-only miss is quiet and not an error. */
    pier_buildspec_cache none = c;
    none.key = "other";
    none.fallback_count = 0;
    assert_int_equal(pier_artifacts_cache_restore(&none, f->src, cache, on_note, f, &n), 0);
    assert_int_equal(n, 0);
    free(saved);
    free(index);
    free(cli);
    free(npm);
    free(rofile);
    free(bin);
    free(link);
    free(ro);
    free(home);
    free(cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_collect_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collect_modes_links_and_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
