/*
 * test_manifest: the local manifest on temporary folders: odd names,
 * byte order, a symlink out of the folder (skipped) and one inside
 * (followed), digests against known vectors, multipart ETags against
 * values computed with Python's hashlib (tests/data/deploy/manifest/
 * large.json) and recomputed here part by part, the part-size rule, the
 * thread count not changing results, and errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "deploy/manifest.h"

static char *make_tmp(void)
{
    const char *t = getenv("TMPDIR");
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "%s/pier-manifest-XXXXXX", t && t[0] ? t : "/tmp");
    char *dir = pier_buf_detach(&b);
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void write_file(const char *dir, const char *rel, const void *data, size_t n)
{
    char *path = pier_path_join(dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    assert_int_equal(pier_file_mkdirs(path, 0755), 0);
    *slash = '/';
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
    free(path);
}

static void fill_pattern(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 7 + (i >> 10)) % 251);
}

static void test_odd_names_and_links(void **state)
{
    (void)state;
    char *dir = make_tmp();
    char *outside = make_tmp();
    static const char *names[] = {
        "index.html",       "a b.txt",        "plus+sign.txt",
        "100%.txt",         "hash#tag.txt",   "what?.txt",
        "café/ümlaut.html", "dir/index.html", "dir.txt",
        "dir/sub/deep.css", "empty",          "Z.txt",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        write_file(dir, names[i], "hello\n", strcmp(names[i], "empty") == 0 ? 0 : 6);
    write_file(outside, "secret.txt", "secret\n", 7);
    char *secret = pier_path_join(outside, "secret.txt");
    char *link_out = pier_path_join(dir, "leak.txt");
    assert_int_equal(symlink(secret, link_out), 0);
    char *link_in = pier_path_join(dir, "alias.txt");
    assert_int_equal(symlink("a b.txt", link_in), 0);

    pier_deploy_manifest_options o = PIER_DEPLOY_MANIFEST_OPTIONS_INIT;
    o.prefix = "/site"; /* normalized to "site/" */
    pier_deploy_manifest *m = NULL;
    int rc = pier_deploy_manifest_build(&m, dir, &o);
    if (rc)
        print_error("%s\n", pier_error_last());
    assert_int_equal(rc, 0);
    assert_string_equal(m->prefix, "site/");
    assert_int_equal(m->count, sizeof names / sizeof *names + 1); /* + alias, - leak */
    /* Byte order of keys, as S3 lists them: "dir.txt" < "dir/..." ('.' < '/'),
     * upper case before lower, UTF-8 after ASCII. */
    static const char *order[] = {
        "site/100%.txt",
        "site/Z.txt",
        "site/a b.txt",
        "site/alias.txt",
        "site/café/ümlaut.html",
        "site/dir.txt",
        "site/dir/index.html",
        "site/dir/sub/deep.css",
        "site/empty",
        "site/hash#tag.txt",
        "site/index.html",
        "site/plus+sign.txt",
        "site/what?.txt",
    };
    for (size_t i = 0; i < m->count; i++) {
        assert_string_equal(m->files[i].key, order[i]);
        assert_string_equal(m->files[i].key + 5, m->files[i].rel);
        if (i)
            assert_true(strcmp(m->files[i - 1].key, m->files[i].key) < 0);
    }
    assert_null(pier_deploy_manifest_find(m, "site/leak.txt"));
    const pier_deploy_file *f = pier_deploy_manifest_find(m, "site/a b.txt");
    assert_non_null(f);
    assert_int_equal(f->size, 6);
    assert_string_equal(f->md5_hex, "b1946ac92492d2347c6235b4d2611184"); /* md5("hello\n") */
    assert_string_equal(f->sha256_hex,
                        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    assert_string_equal(f->etag, f->md5_hex);
    assert_int_equal(f->part_count, 0);
    assert_null(f->part_md5);
    char *want_path = pier_path_join(dir, "a b.txt");
    assert_string_equal(f->path, want_path);
    free(want_path);
    f = pier_deploy_manifest_find(m, "site/empty");
    assert_non_null(f);
    assert_int_equal(f->size, 0);
    assert_string_equal(f->md5_hex, "d41d8cd98f00b204e9800998ecf8427e");
    assert_string_equal(f->sha256_hex,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    f = pier_deploy_manifest_find(m, "site/alias.txt"); /* a link inside is followed */
    assert_non_null(f);
    assert_string_equal(f->md5_hex, "b1946ac92492d2347c6235b4d2611184");
    assert_int_equal(m->total_bytes, 6 * (m->count - 1));
    pier_deploy_manifest_free(m);

    /* No prefix: keys are the relative paths. */
    assert_int_equal(pier_deploy_manifest_build(&m, dir, NULL), 0);
    assert_string_equal(m->prefix, "");
    assert_string_equal(m->files[0].key, "100%.txt");
    pier_deploy_manifest_free(m);

    free(secret);
    free(link_out);
    free(link_in);
    pier_file_remove_tree(dir);
    pier_file_remove_tree(outside);
    free(dir);
    free(outside);
}

static void test_large_files(void **state)
{
    (void)state;
    const char *root = getenv("PIER_TESTDATA");
    char *jpath = pier_path_join(root, "deploy/manifest/large.json");
    json_t *doc = NULL;
    assert_int_equal(pier_json_load_file(&doc, jpath), 0);
    free(jpath);
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(doc, "files"), i, e)
    {
        const char *name = pier_json_str(e, "name", "");
        size_t size = (size_t)pier_json_int(e, "size", 0);
        char *dir = make_tmp();
        unsigned char *data = pier_malloc(size);
        fill_pattern(data, size);
        write_file(dir, name, data, size);
        for (unsigned threads = 1; threads <= 3; threads += 2) {
            pier_deploy_manifest_options o = PIER_DEPLOY_MANIFEST_OPTIONS_INIT;
            o.multipart_threshold = (uint64_t)pier_json_int(e, "threshold", 0);
            o.threads = threads;
            pier_deploy_manifest *m = NULL;
            assert_int_equal(pier_deploy_manifest_build(&m, dir, &o), 0);
            assert_int_equal(m->count, 1);
            const pier_deploy_file *f = &m->files[0];
            assert_int_equal(f->size, size);
            assert_string_equal(f->md5_hex, pier_json_str(e, "md5", ""));
            assert_string_equal(f->sha256_hex, pier_json_str(e, "sha256", ""));
            assert_string_equal(f->etag, pier_json_str(e, "etag", ""));
            assert_int_equal(f->part_count, pier_json_int(e, "part_count", -1));
            if (f->part_count) {
                /* Recompute independently: md5 of each 8 MiB slice. */
                assert_int_equal(f->part_size, 8 << 20);
                unsigned char(*parts)[PIER_MD5_LEN] = pier_calloc(f->part_count, PIER_MD5_LEN);
                for (uint32_t k = 0; k < f->part_count; k++) {
                    size_t off = (size_t)k * f->part_size;
                    size_t n = size - off < f->part_size ? size - off : f->part_size;
                    pier_md5(parts[k], data + off, n);
                    assert_memory_equal(parts[k], f->part_md5[k], PIER_MD5_LEN);
                }
                unsigned char whole[PIER_MD5_LEN];
                char hex[33], etag[64];
                pier_md5(whole, parts, (size_t)f->part_count * PIER_MD5_LEN);
                pier_hex_encode(hex, whole, PIER_MD5_LEN);
                snprintf(etag, sizeof etag, "%s-%u", hex, f->part_count);
                assert_string_equal(f->etag, etag);
                free(parts);
            } else {
                assert_int_equal(f->part_size, 0);
                assert_string_equal(f->etag, f->md5_hex);
            }
            pier_deploy_manifest_free(m);
        }
        free(data);
        pier_file_remove_tree(dir);
        free(dir);
    }
    assert_int_equal(json_array_size(json_object_get(doc, "files")), 4);
    json_decref(doc);
}

static void test_many_files_threads(void **state)
{
    (void)state;
    /* 200 files of various sizes: 1 thread and 4 threads agree. */
    char *dir = make_tmp();
    unsigned char *buf = pier_malloc(301000);
    fill_pattern(buf, 301000);
    for (int i = 0; i < 200; i++) {
        char name[64];
        snprintf(name, sizeof name, "d%02d/f%03d.bin", i % 7, i);
        write_file(dir, name, buf + i, (size_t)(i * 1499) % 300000);
    }
    pier_deploy_manifest_options o1 = PIER_DEPLOY_MANIFEST_OPTIONS_INIT, o4 = o1;
    o1.threads = 1;
    o4.threads = 4;
    o1.multipart_threshold = o4.multipart_threshold = 100000; /* some are "multipart" */
    pier_deploy_manifest *a = NULL, *b = NULL;
    assert_int_equal(pier_deploy_manifest_build(&a, dir, &o1), 0);
    assert_int_equal(pier_deploy_manifest_build(&b, dir, &o4), 0);
    assert_int_equal(a->count, 200);
    assert_int_equal(b->count, 200);
    size_t multipart = 0;
    for (size_t i = 0; i < a->count; i++) {
        assert_string_equal(a->files[i].key, b->files[i].key);
        assert_string_equal(a->files[i].sha256_hex, b->files[i].sha256_hex);
        assert_string_equal(a->files[i].etag, b->files[i].etag);
        /* Each file's MD5, recomputed from the bytes written. */
        const char *f = strrchr(a->files[i].key, 'f');
        size_t k = (size_t)((f[1] - '0') * 100 + (f[2] - '0') * 10 + (f[3] - '0'));
        unsigned char md5[PIER_MD5_LEN];
        pier_md5(md5, buf + k, (size_t)(k * 1499) % 300000);
        assert_memory_equal(md5, a->files[i].md5, PIER_MD5_LEN);
        multipart += a->files[i].part_count > 0;
    }
    assert_true(multipart > 50);
    assert_int_equal(a->total_bytes, b->total_bytes);
    pier_deploy_manifest_free(a);
    pier_deploy_manifest_free(b);
    free(buf);
    pier_file_remove_tree(dir);
    free(dir);
}

static void test_part_size(void **state)
{
    (void)state;
    const uint64_t MiB = 1 << 20;
    assert_int_equal(pier_deploy_part_size(0), 8 * MiB);
    assert_int_equal(pier_deploy_part_count(0), 1);
    assert_int_equal(pier_deploy_part_size(20 * MiB), 8 * MiB);
    assert_int_equal(pier_deploy_part_count(20 * MiB), 3);
    assert_int_equal(pier_deploy_part_count(16 * MiB), 2);
    assert_int_equal(pier_deploy_part_size(80000 * MiB), 8 * MiB); /* exactly 10,000 parts */
    assert_int_equal(pier_deploy_part_count(80000 * MiB), 10000);
    assert_int_equal(pier_deploy_part_size(80000 * MiB + 1), 9 * MiB);
    uint64_t five_tib = (uint64_t)5 << 40;
    assert_int_equal(pier_deploy_part_size(five_tib), 525 * MiB); /* ceil(5 TiB / 10,000) */
    assert_true(pier_deploy_part_count(five_tib) <= 10000);
    for (uint64_t s = 1; s < five_tib; s = s * 3 + 12345) {
        uint64_t p = pier_deploy_part_size(s);
        assert_true(p >= 8 * MiB);
        assert_int_equal(p % MiB, 0);
        assert_true(pier_deploy_part_count(s) <= 10000);
        assert_true((uint64_t)pier_deploy_part_count(s) * p >= s);
    }
    /* The multipart form for known part digests: md5 of the concatenation. */
    unsigned char parts[2][PIER_MD5_LEN];
    pier_md5(parts[0], "a", 1);
    pier_md5(parts[1], "b", 1);
    char etag[PIER_DEPLOY_ETAG_LEN], hex[33];
    pier_deploy_multipart_etag(etag, (const unsigned char(*)[PIER_MD5_LEN])parts, 2);
    unsigned char whole[PIER_MD5_LEN];
    pier_md5(whole, parts, sizeof parts);
    pier_hex_encode(hex, whole, PIER_MD5_LEN);
    assert_memory_equal(etag, hex, 32);
    assert_string_equal(etag + 32, "-2");
}

static void test_prefix_and_errors(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"", ""},         {"/", ""},          {"site", "site/"}, {"site/", "site/"},
        {"/a/b", "a/b/"}, {"//a/b/", "a/b/"}, {"a b/", "a b/"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *p = pier_deploy_prefix_normalize(cases[i][0]);
        assert_string_equal(p, cases[i][1]);
        free(p);
    }
    char *p = pier_deploy_prefix_normalize(NULL);
    assert_string_equal(p, "");
    free(p);

    pier_deploy_manifest *m = (pier_deploy_manifest *)1;
    assert_int_equal(pier_deploy_manifest_build(&m, "/nonexistent/pier-test-dir", NULL),
                     PIER_ENOTFOUND);
    assert_null(m);
    assert_non_null(strstr(pier_error_last(), "/nonexistent/pier-test-dir"));
    char *dir = make_tmp();
    write_file(dir, "file.txt", "x", 1);
    char *file = pier_path_join(dir, "file.txt");
    assert_int_equal(pier_deploy_manifest_build(&m, file, NULL), PIER_EINVALID);
    free(file);
    /* An unreadable file fails naming it (unless we are root). */
    if (geteuid() != 0) {
        char *locked = pier_path_join(dir, "locked.txt");
        write_file(dir, "locked.txt", "y", 1);
        assert_int_equal(chmod(locked, 0), 0);
        int rc = pier_deploy_manifest_build(&m, dir, NULL);
        assert_int_not_equal(rc, 0);
        assert_non_null(strstr(pier_error_last(), "locked.txt"));
        assert_null(m);
        free(locked);
    }
    /* An empty folder is a valid, empty manifest (the plan decides). */
    char *empty = make_tmp();
    assert_int_equal(pier_deploy_manifest_build(&m, empty, NULL), 0);
    assert_int_equal(m->count, 0);
    pier_deploy_manifest_free(m);
    pier_deploy_manifest_free(NULL);
    pier_file_remove_tree(empty);
    free(empty);
    pier_file_remove_tree(dir);
    free(dir);
}

/* lazy_md5: SHA-256 first, the MD5s of a subset later (the same digests
 * as a full build), and a file whose content moved in between refused. */
static void test_lazy_md5(void **state)
{
    (void)state;
    char *dir = make_tmp();
    size_t big = (size_t)(9 << 20) + 5;
    unsigned char *data = pier_malloc(big);
    fill_pattern(data, big);
    write_file(dir, "a.bin", data, 100);
    write_file(dir, "b.bin", data, big);
    write_file(dir, "c.txt", "hello", 5);
    pier_deploy_manifest *full = NULL, *lazy = NULL;
    assert_int_equal(pier_deploy_manifest_build(&full, dir, NULL), 0);
    pier_deploy_manifest_options o = PIER_DEPLOY_MANIFEST_OPTIONS_INIT;
    o.lazy_md5 = true;
    o.threads = 2;
    assert_int_equal(pier_deploy_manifest_build(&lazy, dir, &o), 0);
    assert_int_equal(lazy->count, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_true(full->files[i].has_md5);
        assert_true(full->files[i].whole_md5);
        assert_false(lazy->files[i].has_md5);
        assert_string_equal(lazy->files[i].sha256_hex, full->files[i].sha256_hex);
        assert_int_equal(lazy->files[i].part_count, 0);
    }
    size_t idx[2] = {1, 2};
    assert_int_equal(pier_deploy_manifest_add_md5(lazy, idx, 2, 2), 0);
    assert_false(lazy->files[0].has_md5);
    for (size_t i = 1; i < 3; i++) {
        const pier_deploy_file *a = &lazy->files[i], *b = &full->files[i];
        assert_true(a->has_md5);
        assert_string_equal(a->md5_hex, b->md5_hex);
        assert_string_equal(a->etag, b->etag);
        assert_string_equal(a->sha256_hex, b->sha256_hex);
        assert_int_equal(a->part_count, b->part_count);
        assert_int_equal(a->part_size, b->part_size);
        if (b->part_count)
            assert_memory_equal(a->part_md5, b->part_md5, (size_t)b->part_count * PIER_MD5_LEN);
    }
    assert_int_equal(lazy->files[1].part_count, 2);
    /* already hashed: left alone; a bad index refused */
    assert_int_equal(pier_deploy_manifest_add_md5(lazy, idx, 1, 1), 0);
    size_t bad = 3;
    assert_int_equal(pier_deploy_manifest_add_md5(lazy, &bad, 1, 1), PIER_EINVALID);
    /* same size, other bytes since the first pass: refused by name */
    data[7] ^= 1;
    write_file(dir, "a.bin", data, 100);
    size_t first = 0;
    assert_int_equal(pier_deploy_manifest_add_md5(lazy, &first, 1, 1), PIER_ECONFLICT);
    assert_non_null(strstr(pier_error_last(), "a.bin"));
    assert_false(lazy->files[0].has_md5);
    /* want_md5 already set: both digests in the first pass */
    atomic_int want;
    atomic_init(&want, 1);
    o.want_md5 = &want;
    pier_deploy_manifest *eager = NULL;
    assert_int_equal(pier_deploy_manifest_build(&eager, dir, &o), 0);
    assert_true(eager->files[1].has_md5);
    assert_string_equal(eager->files[1].etag, full->files[1].etag);
    assert_memory_equal(eager->files[1].part_md5, full->files[1].part_md5, 2 * PIER_MD5_LEN);
    /* a multipart file: no whole-file MD5 (only a plain ETag needs it) */
    assert_false(eager->files[1].whole_md5);
    assert_true(eager->files[2].whole_md5);
    assert_string_equal(eager->files[2].md5_hex, full->files[2].md5_hex);
    size_t mp = 1;
    assert_int_equal(pier_deploy_manifest_add_md5(eager, &mp, 1, 1), 0);
    assert_true(eager->files[1].whole_md5);
    assert_string_equal(eager->files[1].md5_hex, full->files[1].md5_hex);
    pier_deploy_manifest_free(eager);
    pier_deploy_manifest_free(lazy);
    pier_deploy_manifest_free(full);
    free(data);
    pier_file_remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_odd_names_and_links), cmocka_unit_test(test_large_files),
        cmocka_unit_test(test_many_files_threads),  cmocka_unit_test(test_part_size),
        cmocka_unit_test(test_prefix_and_errors),   cmocka_unit_test(test_lazy_md5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
