/*
 * test_file: the tree walk (order, symlinks), atomic write, mkdirs, read.
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

static char tmpdir[] = "/tmp/pier-test-file-XXXXXX";

static void put(const char *rel, const char *content)
{
    char *path = pier_path_join(tmpdir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    assert_int_equal(pier_file_mkdirs(path, 0755), 0);
    *slash = '/';
    assert_int_equal(pier_file_write_atomic(path, content, strlen(content), 0644), 0);
    free(path);
}

static int collect(const pier_file_entry *e, void *ctx)
{
    pier_buf *b = ctx;
    pier_buf_printf(b, "%s:%llu\n", e->rel, (unsigned long long)e->size);
    return 0;
}

static void test_walk_order_and_symlinks(void **state)
{
    (void)state;
    char outside[] = "/tmp/pier-test-outside-XXXXXX";
    assert_non_null(mkdtemp(outside));
    char *secret = pier_path_join(outside, "secret.txt");
    assert_int_equal(pier_file_write_atomic(secret, "s", 1, 0600), 0);

    put("site/a.txt", "1");
    put("site/a/b.txt", "22");
    put("site/a b/c+d%.txt", "333");
    put("site/Z.txt", "");
    put("site/é.txt", "4444");
    char *site = pier_path_join(tmpdir, "site");
    char *link_out = pier_path_join(site, "leak.txt");
    char *link_in = pier_path_join(site, "alias.txt");
    char *link_dir = pier_path_join(site, "loop");
    assert_int_equal(symlink(secret, link_out), 0);
    assert_int_equal(symlink("a.txt", link_in), 0);
    assert_int_equal(symlink(".", link_dir), 0);

    pier_buf b;
    pier_buf_init(&b, 0);
    assert_int_equal(pier_file_walk(site, collect, &b), 0);
    /* Byte order of the relative paths; the outside link and the directory
     * link are skipped, the inside link is followed. */
    assert_string_equal(b.ptr, "Z.txt:0\n"
                               "a b/c+d%.txt:3\n"
                               "a.txt:1\n"
                               "a/b.txt:2\n"
                               "alias.txt:1\n"
                               "\xc3\xa9.txt:4\n");
    pier_buf_free(&b);

    assert_int_equal(pier_file_walk("/nonexistent/pier", collect, NULL), PIER_ENOTFOUND);
    assert_non_null(strstr(pier_error_last(), "/nonexistent/pier"));

    free(link_out);
    free(link_in);
    free(link_dir);
    free(site);
    free(secret);
    pier_file_remove_tree(outside);
}

static void test_atomic_write_and_read(void **state)
{
    (void)state;
    char *path = pier_path_join(tmpdir, "cred");
    assert_int_equal(pier_file_write_atomic(path, "first", 5, 0600), 0);
    assert_int_equal(pier_file_write_atomic(path, "second", 6, 0600), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    pier_buf b;
    pier_buf_init(&b, 0);
    assert_int_equal(pier_file_read(path, &b), 0);
    assert_string_equal(b.ptr, "second");
    pier_buf_free(&b);
    /* Cap smaller than the file: refused. */
    pier_buf_init(&b, 3);
    assert_int_equal(pier_file_read(path, &b), PIER_ETOOBIG);
    pier_buf_free(&b);
    /* Exactly at the cap: fine. */
    pier_buf_init(&b, 6);
    assert_int_equal(pier_file_read(path, &b), 0);
    assert_int_equal(b.len, 6);
    pier_buf_free(&b);
    pier_buf_init(&b, 0);
    assert_int_equal(pier_file_read("/nonexistent/x", &b), PIER_ENOTFOUND);
    pier_buf_free(&b);
    /* No temp files left beside it. */
    int count = 0;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls -a %s | grep -c tmp-", tmpdir);
    FILE *p = popen(cmd, "r");
    assert_int_equal(fscanf(p, "%d", &count), 1);
    pclose(p);
    assert_int_equal(count, 0);
    /* A directory that does not exist: clear error naming it. */
    assert_int_equal(pier_file_write_atomic("/nonexistent/dir/f", "x", 1, 0600), PIER_EIO);
    assert_non_null(strstr(pier_error_last(), "/nonexistent/dir/f"));
    free(path);
}

static void test_path_join(void **state)
{
    (void)state;
    char *p = pier_path_join("a/", "/b");
    assert_string_equal(p, "a/b");
    free(p);
    p = pier_path_join("/", "x");
    assert_string_equal(p, "/x");
    free(p);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return pier_file_remove_tree(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_order_and_symlinks),
        cmocka_unit_test(test_atomic_write_and_read),
        cmocka_unit_test(test_path_join),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
