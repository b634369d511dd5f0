/*
 * test_cfapi: CreateInvalidation in process (the part under the HTTP
 * layer): CallerReference idempotency and conflicts, path validation,
 * unknown distributions, and the per-distribution JSON file (reloaded by a new instance; a damaged
 * one is an error naming the file). The XML shapes and the purge are checked with the AWS CLI and
 * botocore in tests/integration/test_serve_edge.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "stack/cfapi.h"

typedef struct {
    char dir[64];    /* temp data directory */
    pier_edge *edge; /* one site */
    pier_cfapi *api; /* under test */
} fixture;

static int dummy_lookup(void *ctx, const char *akid, pier_sigv4_secret *secret,
                        pier_s3api_authorize_fn *authorize, void **authorize_ctx)
{
    return PIER_ENOTFOUND;
}

static pier_cfapi *open_api(fixture *f)
{
    pier_cfapi *a = NULL;
    pier_cfapi_options o = {f->edge, f->dir, dummy_lookup, NULL};
    assert_int_equal(pier_cfapi_new(&a, &o), 0);
    return a;
}

static int setup(void **state)
{
    fixture *f = pier_calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/pier-test-cfapi-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    pier_edge_options eo = {0};
    assert_int_equal(pier_edge_new(&f->edge, &eo), 0);
    pier_edge_site *s = NULL;
    assert_int_equal(pier_edge_site_new(&s, "EDEV0000000001", "web-dev"), 0);
    assert_int_equal(pier_edge_site_add_host(s, "*"), 0);
    assert_int_equal(pier_edge_add_site(f->edge, s), 0);
    f->api = open_api(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pier_cfapi_free(f->api);
    pier_edge_free(f->edge);
    pier_file_remove_tree(f->dir);
    free(f);
    return 0;
}

static void idempotency(void **state)
{
    fixture *f = *state;
    const char *paths[] = {"/index.html", "/assets/*"};
    char a[16], b[16];
    bool existing = true;
    assert_int_equal(
        pier_cfapi_invalidate(f->api, "EDEV0000000001", paths, 2, "run-1", a, &existing), 0);
    assert_false(existing);
    assert_int_equal(strlen(a), 14);
    assert_int_equal(a[0], 'I');
    assert_int_equal(
        pier_cfapi_invalidate(f->api, "EDEV0000000001", paths, 2, "run-1", b, &existing), 0);
    assert_true(existing);
    assert_string_equal(a, b);
    /* same reference, other paths (or another order) */
    const char *other[] = {"/assets/*", "/index.html"};
    assert_int_equal(
        pier_cfapi_invalidate(f->api, "EDEV0000000001", other, 2, "run-1", b, &existing),
        PIER_ECONFLICT);
    assert_non_null(strstr(pier_error_last(), "InvalidationBatchAlreadyExists"));
    assert_int_equal(
        pier_cfapi_invalidate(f->api, "EDEV0000000001", other, 2, "run-2", b, &existing), 0);
    assert_string_not_equal(a, b);
    /* unknown distribution */
    assert_int_equal(pier_cfapi_invalidate(f->api, "ENOSUCH0000001", paths, 2, "x", b, &existing),
                     PIER_ENOTFOUND);
    assert_non_null(strstr(pier_error_last(), "NoSuchDistribution"));
}

static void bad_batches(void **state)
{
    fixture *f = *state;
    char id[16];
    bool existing;
    static const struct {
        const char *path;
        const char *ref;
    } cases[] = {
        {"index.html", "r"}, /* no leading slash */
        {"/a*b", "r"},       /* '*' not last */
        {"/a\nb", "r"},      /* control character */
        {"/ok", ""},         /* empty reference */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *p[] = {cases[i].path};
        int rc = pier_cfapi_invalidate(f->api, "EDEV0000000001", p, 1, cases[i].ref, id, &existing);
        if (rc != PIER_EINVALID || !strstr(pier_error_last(), "InvalidArgument"))
            fail_msg("case %zu: rc %d, %s", i, rc, pier_error_last());
    }
    assert_int_equal(pier_cfapi_invalidate(f->api, "EDEV0000000001", NULL, 0, "r", id, &existing),
                     PIER_EINVALID);
    const char **many = pier_calloc(3001, sizeof *many);
    for (size_t i = 0; i < 3001; i++)
        many[i] = "/x";
    assert_int_equal(
        pier_cfapi_invalidate(f->api, "EDEV0000000001", many, 3001, "r", id, &existing),
        PIER_ETOOBIG);
    assert_non_null(strstr(pier_error_last(), "BatchTooLarge"));
    free(many);
}

static void persistence(void **state)
{
    fixture *f = *state;
    const char *paths[] = {"/a b.html", "/\xc3\xa9t\xc3\xa9/*"};
    char a[16], b[16];
    bool existing;
    assert_int_equal(
        pier_cfapi_invalidate(f->api, "EDEV0000000001", paths, 2, "keep", a, &existing), 0);
    char *file = pier_path_join(f->dir, "cloudfront/EDEV0000000001.json");
    assert_true(pier_file_exists(file));
    /* a new instance (a restart) knows the reference */
    pier_cfapi_free(f->api);
    f->api = open_api(f);
    assert_int_equal(
        pier_cfapi_invalidate(f->api, "EDEV0000000001", paths, 2, "keep", b, &existing), 0);
    assert_true(existing);
    assert_string_equal(a, b);
    /* a damaged file stops the start, naming it */
    assert_int_equal(pier_file_write_atomic(file, "{\"invalidations\": 3}", 20, 0600), 0);
    pier_cfapi *broken = NULL;
    pier_cfapi_options o = {f->edge, f->dir, dummy_lookup, NULL};
    assert_int_equal(pier_cfapi_new(&broken, &o), PIER_EINVALID);
    assert_null(broken);
    assert_non_null(strstr(pier_error_last(), "EDEV0000000001.json"));
    assert_int_equal(pier_file_write_atomic(file, "not json", 8, 0600), 0);
    assert_int_not_equal(pier_cfapi_new(&broken, &o), 0);
    assert_non_null(strstr(pier_error_last(), "EDEV0000000001.json"));
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(persistence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
