/*
 * test_rules: deploy rules from data files under tests/data/deploy/:
 * the hashed-name heuristic (hashed-names.txt), metadata resolution
 * (rules/resolve.json over rules/site.yml), positioned errors (every
 * rules/bad-*.yml names its expected "line:column: message" on its first
 * line), flags before files, rewrites.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/mime.h"
#include "deploy/rules.h"

static char *data_path(const char *rel)
{
    const char *root = getenv("PIER_TESTDATA");
    assert_non_null(root);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "%s/deploy/%s", root, rel);
    return pier_buf_detach(&b);
}

static int setup(void **state)
{
    (void)state;
    char *mt = data_path("mime.types");
    int rc = pier_mime_load(mt);
    free(mt);
    return rc;
}

static void test_hashed_names(void **state)
{
    (void)state;
    char *path = data_path("hashed-names.txt");
    pier_buf text = PIER_BUF_INIT;
    assert_int_equal(pier_file_read(path, &text), 0);
    free(path);
    char *save = NULL;
    int checked = 0, failures = 0;
    for (char *line = strtok_r(text.ptr, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || !line[0])
            continue;
        bool want = strncmp(line, "yes ", 4) == 0;
        assert_true(want || strncmp(line, "no ", 3) == 0);
        const char *name = line + (want ? 4 : 3);
        bool got = pier_deploy_is_hashed_name(name);
        if (got != want) {
            print_error("hashed name %s: expected %s\n", name, want ? "yes" : "no");
            failures++;
        }
        checked++;
    }
    pier_buf_free(&text);
    assert_int_equal(failures, 0);
    assert_true(checked >= 30);
}

static void check_meta(const json_t *c, const pier_deploy_meta *m)
{
    const char *path = pier_json_str(c, "path", "");
    const char *ct = pier_json_str(c, "content_type", NULL);
    const char *cc = pier_json_str(c, "cache_control", NULL);
    const char *ce = pier_json_str(c, "content_encoding", NULL);
    if (strcmp(m->content_type, ct) != 0 || strcmp(m->cache_control, cc) != 0)
        print_error("%s: got %s | %s\n", path, m->content_type, m->cache_control);
    assert_string_equal(m->content_type, ct);
    assert_string_equal(m->cache_control, cc);
    if (ce)
        assert_string_equal(m->content_encoding, ce);
    else
        assert_null(m->content_encoding);
    const json_t *headers = json_object_get(c, "headers");
    assert_int_equal(m->header_count, headers ? json_object_size(headers) : 0);
    for (size_t i = 0; i < m->header_count; i++) {
        const char *want = pier_json_str(headers, m->headers[i].name, NULL);
        assert_non_null(want);
        assert_string_equal(m->headers[i].value, want);
    }
}

static void test_resolve(void **state)
{
    (void)state;
    char *path = data_path("rules/resolve.json");
    json_t *doc = NULL;
    assert_int_equal(pier_json_load_file(&doc, path), 0);
    free(path);
    char *rules_path = data_path("rules/site.yml");
    pier_deploy_rules *r = pier_deploy_rules_new();
    int rc = pier_deploy_rules_load_file(r, rules_path);
    if (rc)
        print_error("%s\n", pier_error_last());
    assert_int_equal(rc, 0);
    free(rules_path);
    assert_int_equal(r->rewrite_count, 2);
    const json_t *cases = json_object_get(doc, "cases");
    size_t i;
    const json_t *c;
    json_array_foreach(cases, i, c)
    {
        pier_deploy_meta m;
        pier_deploy_rules_resolve(r, pier_json_str(c, "path", ""), &m);
        check_meta(c, &m);
        pier_deploy_meta_clear(&m);
    }
    assert_true(json_array_size(cases) >= 10);
    pier_deploy_rules_free(r);
    json_decref(doc);
}

static void test_defaults(void **state)
{
    (void)state;
    static const struct {
        const char *path, *ct, *cc;
    } cases[] = {
        {"index.html", "text/html; charset=utf-8", PIER_DEPLOY_CACHE_HTML},
        {"a/b/page.HTM", "text/html; charset=utf-8", PIER_DEPLOY_CACHE_HTML},
        {"assets/app.3f2a9c1b.js", "text/javascript; charset=utf-8", PIER_DEPLOY_CACHE_HASHED},
        {"assets/main-BjX9k2Lq.css", "text/css; charset=utf-8", PIER_DEPLOY_CACHE_HASHED},
        {"js/jquery-3.6.0.min.js", "text/javascript; charset=utf-8", PIER_DEPLOY_CACHE_OTHER},
        {"logo.png", "image/png", PIER_DEPLOY_CACHE_OTHER},
        {"logo.a1b2c3d4.png", "image/png", PIER_DEPLOY_CACHE_HASHED},
        {"data.json", "application/json; charset=utf-8", PIER_DEPLOY_CACHE_OTHER},
        {"noext", "application/octet-stream", PIER_DEPLOY_CACHE_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pier_deploy_meta m;
        pier_deploy_rules_resolve(NULL, cases[i].path, &m); /* NULL: built-in defaults */
        assert_string_equal(m.content_type, cases[i].ct);
        assert_string_equal(m.cache_control, cases[i].cc);
        assert_null(m.content_encoding);
        assert_int_equal(m.header_count, 0);
        pier_deploy_meta_clear(&m);
    }
    assert_true(pier_deploy_is_html_type("text/html; charset=utf-8"));
    assert_true(pier_deploy_is_html_type("TEXT/HTML"));
    assert_true(pier_deploy_is_html_type("application/xhtml+xml"));
    assert_false(pier_deploy_is_html_type("text/htmlx"));
    assert_false(pier_deploy_is_html_type("text/plain"));
    assert_false(pier_deploy_is_html_type(NULL));
}

/* Every rules/bad-*.yml starts with "# error: LINE:COL: text": loading it
 * must fail with "PATH:LINE:COL: ..." containing text. */
static void test_errors(void **state)
{
    (void)state;
    char *dir = data_path("rules");
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int files = 0;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "bad-", 4) != 0)
            continue;
        char *path = pier_path_join(dir, de->d_name);
        pier_buf text = PIER_BUF_INIT;
        assert_int_equal(pier_file_read(path, &text), 0);
        const char *line = pier_buf_cstr(&text);
        assert_true(strncmp(line, "# error: ", 9) == 0);
        const char *pos = line + 9;
        const char *colon2 = strchr(strchr(pos, ':') + 1, ':');
        char *where = pier_strndup(pos, (size_t)(colon2 - pos)); /* "L:C" */
        char *want = pier_strndup(colon2 + 2, strcspn(colon2 + 2, "\n"));
        pier_deploy_rules *r = pier_deploy_rules_new();
        int rc = pier_deploy_rules_load_file(r, path);
        const char *msg = pier_error_last();
        pier_buf prefix = PIER_BUF_INIT;
        pier_buf_printf(&prefix, "%s:%s: ", path, where);
        if (rc != PIER_EINVALID || strncmp(msg, prefix.ptr, prefix.len) != 0 || !strstr(msg, want))
            print_error("%s: expected \"%s%s\", got rc %d \"%s\"\n", de->d_name, prefix.ptr, want,
                        rc, msg);
        assert_int_equal(rc, PIER_EINVALID);
        assert_true(strncmp(msg, prefix.ptr, prefix.len) == 0);
        assert_non_null(strstr(msg, want));
        /* A failed load leaves the rules as they were. */
        assert_int_equal(r->cache_count + r->header_count + r->rewrite_count, 0);
        assert_string_equal(r->default_other, PIER_DEPLOY_CACHE_OTHER);
        pier_deploy_rules_free(r);
        pier_buf_free(&prefix);
        pier_buf_free(&text);
        free(where);
        free(want);
        free(path);
        files++;
    }
    closedir(d);
    free(dir);
    assert_true(files >= 12);
}

static void test_flags_then_file(void **state)
{
    (void)state;
    pier_deploy_rules *r = pier_deploy_rules_new();
    /* A flag added first wins over the file's rules (first match wins). */
    assert_int_equal(pier_deploy_rules_add_cache(r, "**/*.html", "max-age=60"), 0);
    assert_int_equal(pier_deploy_rules_add_header(r, "**/*.wasm", "content-type", "x/flag"), 0);
    char *path = data_path("rules/site.yml");
    assert_int_equal(pier_deploy_rules_load_file(r, path), 0);
    free(path);
    pier_deploy_meta m;
    pier_deploy_rules_resolve(r, "docs/index.html", &m);
    assert_string_equal(m.cache_control, "max-age=60");
    pier_deploy_meta_clear(&m);
    pier_deploy_rules_resolve(r, "engine.wasm", &m);
    assert_string_equal(m.content_type, "x/flag");
    pier_deploy_meta_clear(&m);
    /* The file's defaults replaced the built-in "other". */
    pier_deploy_rules_resolve(r, "robots.txt", &m);
    assert_string_equal(m.cache_control, "public, max-age=600");
    pier_deploy_meta_clear(&m);

    /* Bad flags. */
    assert_int_equal(pier_deploy_rules_add_cache(r, "a/[b", "x"), PIER_EINVALID);
    assert_int_equal(pier_deploy_rules_add_cache(r, "*.js", ""), PIER_EINVALID);
    assert_int_equal(pier_deploy_rules_add_cache(r, "*.js", "a\r\nSet-Cookie: x"), PIER_EINVALID);
    assert_int_equal(pier_deploy_rules_add_header(r, "*", "Cache-Control", "x"), PIER_EINVALID);
    assert_int_equal(pier_deploy_rules_add_header(r, "*", "Set-Cookie", "x"), PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "Set-Cookie"));
    assert_int_equal(pier_deploy_rules_add_header(r, "*", "Content-Language", "de\n"),
                     PIER_EINVALID);
    assert_int_equal(pier_deploy_rules_add_header(r, "*", "Content-Language", "\xff"),
                     PIER_EINVALID);
    assert_int_equal(pier_deploy_rules_add_rewrite(r, "x", "/x.html", false), PIER_EINVALID);
    assert_int_equal(pier_deploy_rules_add_rewrite(r, "/x", "/x/", false), PIER_EINVALID);
    assert_int_equal(pier_deploy_rules_add_rewrite(r, "/a b", "/x.html", false), PIER_EINVALID);
    assert_int_equal(pier_deploy_rules_add_rewrite(r, "/x?y", "/x.html", false), PIER_EINVALID);
    assert_int_equal(pier_deploy_rules_add_rewrite(r, "/café", "/café/index.html", false), 0);
    pier_deploy_rules_free(r);
}

static void test_rewrite_lookup(void **state)
{
    (void)state;
    pier_deploy_rules *r = pier_deploy_rules_new();
    const char *yml = "rewrites:\n"
                      "  - {from: /storybook, to: /storybook/index.html}\n"
                      "  - {from: /docs/, to: /docs/index.html, prefix: true}\n"
                      "  - {from: /, to: /index.html, prefix: yes}\n";
    assert_int_equal(pier_deploy_rules_load_string(r, "inline.yml", yml, strlen(yml)), 0);
    assert_string_equal(pier_deploy_rules_rewrite(r, "/storybook", false), "/storybook/index.html");
    assert_string_equal(pier_deploy_rules_rewrite(r, "/storybook", true), "/storybook/index.html");
    assert_null(pier_deploy_rules_rewrite(r, "/storybook/x.js", true));
    assert_string_equal(pier_deploy_rules_rewrite(r, "/docs/guide/intro", false),
                        "/docs/index.html");
    assert_null(pier_deploy_rules_rewrite(r, "/docs/app.js", true)); /* a file wins */
    assert_string_equal(pier_deploy_rules_rewrite(r, "/pricing", false), "/index.html");
    pier_deploy_rules_free(r);
    assert_null(pier_deploy_rules_rewrite(NULL, "/x", false));
}

static void test_embedded_section(void **state)
{
    (void)state;
    /* A `rules:` mapping inside another document (pier.yml). */
    const char *yml = "site: demo\n"
                      "rules:\n"
                      "  cache:\n"
                      "    - match: \"*.txt\"\n"
                      "      cache-control: no-store\n"
                      "other: ~\n";
    pier_yaml_doc *doc = NULL;
    assert_int_equal(pier_yaml_load_string(&doc, "pier.yml", yml, strlen(yml)), 0);
    pier_deploy_rules *r = pier_deploy_rules_new();
    assert_int_equal(
        pier_deploy_rules_load_yaml(r, doc, pier_yaml_get(pier_yaml_root(doc), "rules")), 0);
    assert_int_equal(r->cache_count, 1);
    assert_int_equal(
        pier_deploy_rules_load_yaml(r, doc, pier_yaml_get(pier_yaml_root(doc), "other")),
        0); /* null: nothing */
    assert_int_equal(
        pier_deploy_rules_load_yaml(r, doc, pier_yaml_get(pier_yaml_root(doc), "site")),
        PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "pier.yml:1:7:"));
    pier_yaml_free(doc);
    /* An empty file is no rules. */
    assert_int_equal(pier_deploy_rules_load_string(r, "empty.yml", "", 0), 0);
    assert_int_equal(r->cache_count, 1);
    pier_deploy_rules_free(r);
}

static void test_meta(void **state)
{
    (void)state;
    pier_deploy_meta a = {0}, b = {0};
    assert_int_equal(pier_deploy_meta_set(&a, "content-type", "text/plain"), 0);
    assert_int_equal(pier_deploy_meta_set(&a, "X-AMZ-META-B", "2"), 0);
    assert_int_equal(pier_deploy_meta_set(&a, "Content-Disposition", "inline"), 0);
    assert_int_equal(pier_deploy_meta_set(&a, "x-amz-meta-a", "1"), 0);
    assert_int_equal(pier_deploy_meta_set(&a, "x-amz-meta-a", "one"), 0); /* replaces */
    assert_string_equal(a.content_type, "text/plain");
    assert_int_equal(a.header_count, 3);
    assert_string_equal(a.headers[0].name, "Content-Disposition"); /* sorted by name */
    assert_string_equal(a.headers[1].name, "x-amz-meta-a");
    assert_string_equal(a.headers[1].value, "one");
    assert_string_equal(a.headers[2].name, "x-amz-meta-b");
    assert_int_equal(pier_deploy_meta_set(&a, "Cache-Control", "x"), PIER_EINVALID);
    pier_deploy_meta_copy(&b, &a);
    assert_true(pier_deploy_meta_equal(&a, &b));
    pier_deploy_meta_set(&b, "Content-Encoding", "br");
    assert_false(pier_deploy_meta_equal(&a, &b));
    pier_deploy_meta_clear(&a);
    pier_deploy_meta_clear(&b);
    pier_deploy_meta_clear(NULL);
    assert_true(pier_deploy_meta_equal(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hashed_names),     cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_flags_then_file),  cmocka_unit_test(test_rewrite_lookup),
        cmocka_unit_test(test_embedded_section), cmocka_unit_test(test_meta),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
