/*
 * test_yaml: the YAML tree, positions in errors, typed reads, unknown keys;
 * and the JSON helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"
#include "base/yaml.h"

static const char *doc_text = "version: 0.2\n"
                              "env:\n"
                              "  variables:\n"
                              "    NODE_ENV: production\n"
                              "phases:\n"
                              "  build:\n"
                              "    commands:\n"
                              "      - npm ci\n"
                              "      - &b npm run build\n"
                              "      - *b\n"
                              "flag: yes\n"
                              "count: 42\n"
                              "nothing: ~\n"
                              "quoted: \"null\"\n";

static void test_tree(void **state)
{
    (void)state;
    pier_yaml_doc *doc = NULL;
    assert_int_equal(pier_yaml_load_string(&doc, "buildspec.yml", doc_text, strlen(doc_text)), 0);
    const pier_yaml_node *root = pier_yaml_root(doc);
    assert_int_equal(root->kind, PIER_YAML_MAP);
    const char *s;
    assert_int_equal(pier_yaml_string(doc, pier_yaml_get(root, "version"), &s), 0);
    assert_string_equal(s, "0.2");
    const pier_yaml_node *vars = pier_yaml_get(pier_yaml_get(root, "env"), "variables");
    assert_string_equal(pier_yaml_get(vars, "NODE_ENV")->value, "production");
    const pier_yaml_node *cmds =
        pier_yaml_get(pier_yaml_get(pier_yaml_get(root, "phases"), "build"), "commands");
    const char **list;
    size_t n;
    assert_int_equal(pier_yaml_strings(doc, cmds, &list, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(list[2], "npm run build"); /* alias resolved */
    assert_null(list[3]);
    free(list);
    assert_int_equal(cmds->line, 8);
    assert_int_equal(cmds->column, 7);
    bool flag;
    assert_int_equal(pier_yaml_bool(doc, pier_yaml_get(root, "flag"), &flag), 0);
    assert_true(flag);
    int64_t count;
    assert_int_equal(pier_yaml_int(doc, pier_yaml_get(root, "count"), &count), 0);
    assert_int_equal(count, 42);
    assert_true(pier_yaml_is_null(pier_yaml_get(root, "nothing")));
    assert_false(pier_yaml_is_null(pier_yaml_get(root, "quoted")));
    /* Type errors carry the position. */
    assert_int_equal(pier_yaml_int(doc, pier_yaml_get(root, "env"), &count), PIER_EINVALID);
    assert_string_equal(pier_error_last(),
                        "buildspec.yml:3:3: expected an integer, found a mapping");
    static const char *const allowed[] = {"version", "env", "phases", "flag", "count", NULL};
    assert_int_equal(pier_yaml_check_keys(doc, root, allowed), PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "buildspec.yml:13:1: unknown key 'nothing'"));
    pier_yaml_free(doc);
}

static void test_syntax_error(void **state)
{
    (void)state;
    pier_yaml_doc *doc = NULL;
    const char *bad = "a: 1\nb: [1, 2\n";
    assert_int_equal(pier_yaml_load_string(&doc, "pier.yml", bad, strlen(bad)), PIER_EINVALID);
    assert_null(doc);
    assert_true(strncmp(pier_error_last(), "pier.yml:", 9) == 0);
    const char *dup = "a: 1\na: 2\n";
    assert_int_equal(pier_yaml_load_string(&doc, "d.yml", dup, strlen(dup)), 0);
    static const char *const allowed[] = {"a", NULL};
    assert_int_equal(pier_yaml_check_keys(doc, pier_yaml_root(doc), allowed), PIER_EINVALID);
    assert_string_equal(pier_error_last(), "d.yml:2:1: duplicate key 'a'");
    pier_yaml_free(doc);
    assert_int_equal(pier_yaml_load_string(&doc, "e.yml", "", 0), 0);
    assert_null(pier_yaml_root(doc));
    pier_yaml_free(doc);
}

static void test_json(void **state)
{
    (void)state;
    json_t *v = NULL;
    const char *text = "{\"a\": \"x\", \"n\": 7, \"b\": true}";
    assert_int_equal(pier_json_parse(&v, text, strlen(text), "t.json"), 0);
    assert_string_equal(pier_json_str(v, "a", "?"), "x");
    assert_string_equal(pier_json_str(v, "missing", "?"), "?");
    assert_int_equal(pier_json_int(v, "n", 0), 7);
    assert_true(pier_json_bool(v, "b", false));
    pier_buf out;
    pier_buf_init(&out, 0);
    assert_int_equal(pier_json_write(&out, v, false), 0);
    assert_string_equal(out.ptr, "{\"a\":\"x\",\"n\":7,\"b\":true}");
    pier_buf_free(&out);
    json_decref(v);
    assert_int_equal(pier_json_parse(&v, "{\"a\":", 5, "bad.json"), PIER_EINVALID);
    assert_true(strncmp(pier_error_last(), "bad.json:1:", 11) == 0);
    assert_int_equal(pier_json_parse(&v, "{\"a\":1,\"a\":2}", 13, "dup.json"), PIER_EINVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
