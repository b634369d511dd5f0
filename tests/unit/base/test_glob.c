/*
 * test_glob: the glob matcher, table-driven: pattern, path, expected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "base/glob.h"

typedef struct {
    const char *pattern;
    const char *path;
    bool match;
} glob_case;

static const glob_case cases[] = {
    {"*.js", "app.js", true},
    {"*.js", "dir/app.js", false},
    {"*.js", ".js", true},
    {"**/*.js", "app.js", true},
    {"**/*.js", "a/b/c/app.js", true},
    {"**/*.js", "a/b/c/app.css", false},
    {"src/**", "src/a", true},
    {"src/**", "src/a/b/c", true},
    {"src/**", "srcx/a", false},
    {"src/**/test", "src/test", true},
    {"src/**/test", "src/a/b/test", true},
    {"src/**/test", "src/a/btest", false},
    {"frontend/**", "backend/app.c", false},
    {"frontend/**", "frontend/src/index.html", true},
    {"a?c", "abc", true},
    {"a?c", "a/c", false},
    {"[abc].txt", "b.txt", true},
    {"[abc].txt", "d.txt", false},
    {"[!abc].txt", "d.txt", true},
    {"[^abc].txt", "a.txt", false},
    {"[a-z]*.md", "readme.md", true},
    {"[a-z]*.md", "Readme.md", false},
    {"*.{js,css}", "main.css", true},
    {"*.{js,css}", "main.js", true},
    {"*.{js,css}", "main.html", false},
    {"{frontend,shared}/**", "shared/x/y", true},
    {"{frontend,shared}/**", "backend/x", false},
    {"**/*.{png,jp{e,}g}", "img/a/b.jpeg", true},
    {"**/*.{png,jp{e,}g}", "img/a/b.jpg", true},
    {"**/*.{png,jp{e,}g}", "img/a/b.gif", false},
    {"\\*.txt", "*.txt", true},
    {"\\*.txt", "a.txt", false},
    {"**", "anything/at/all", true},
    {"a/*/b", "a/x/b", true},
    {"a/*/b", "a/x/y/b", false},
    {"*", "", true},
    {"", "", true},
    {"", "a", false},
    {"*a*b*", "xxaxxbxx", true},
    {"*a*b*", "xxbxxaxx", false},
    {"docs/*.md", "docs/a.md", true},
    {"**/index.html", "index.html", true},
    {"**/index.html", "storybook/index.html", true},
    {"**/node_modules/**", "a/node_modules/b/c.js", true},
    {"**/node_modules/**", "a/node_modulesx/b", false},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bool got = pier_glob_match(cases[i].pattern, cases[i].path);
        if (got != cases[i].match)
            fail_msg("pattern '%s' path '%s': expected %s", cases[i].pattern, cases[i].path,
                     cases[i].match ? "match" : "no match");
    }
}

static void test_validate(void **state)
{
    (void)state;
    assert_int_equal(pier_glob_validate("src/**/*.{js,ts}"), 0);
    assert_int_equal(pier_glob_validate("[abc"), PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "[abc"));
    assert_int_equal(pier_glob_validate("{a,b"), PIER_EINVALID);
    assert_int_equal(pier_glob_validate("a}"), PIER_EINVALID);
    assert_int_equal(pier_glob_validate("a\\"), PIER_EINVALID);
    assert_true(pier_glob_is_literal("src/index.html"));
    assert_false(pier_glob_is_literal("src/*.html"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
