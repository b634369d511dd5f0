/*
 * test_mime: types come from the system's mime.types, and from a given
 * file when loaded explicitly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mime.h"

static void test_system_types(void **state)
{
    (void)state;
    assert_string_equal(pier_mime_type("index.html"), "text/html");
    assert_string_equal(pier_mime_type("a/b/app.JS"), "text/javascript");
    assert_string_equal(pier_mime_type("style.css"), "text/css");
    assert_string_equal(pier_mime_type("x.wasm"), "application/wasm");
    assert_string_equal(pier_mime_type("font.woff2"), "font/woff2");
    assert_string_equal(pier_mime_type("Makefile"), "application/octet-stream");
    assert_string_equal(pier_mime_type("dir.d/noext"), "application/octet-stream");
    assert_string_equal(pier_mime_type("trailingdot."), "application/octet-stream");
    char ct[128];
    pier_mime_content_type(ct, sizeof ct, "data.json");
    assert_string_equal(ct, "application/json; charset=utf-8");
    pier_mime_content_type(ct, sizeof ct, "logo.png");
    assert_string_equal(ct, "image/png");
    pier_mime_content_type(ct, sizeof ct, "icon.svg");
    assert_string_equal(ct, "image/svg+xml; charset=utf-8");
}

static void test_custom_file(void **state)
{
    (void)state;
    char path[] = "/tmp/pier-mime-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# comment\ntext/x-first  foo\ntext/x-second foo bar # trailing\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(pier_mime_load(path), 0);
    assert_string_equal(pier_mime_type("a.FOO"), "text/x-first"); /* first line wins */
    assert_string_equal(pier_mime_type("a.bar"), "text/x-second");
    assert_string_equal(pier_mime_type("a.html"), "application/octet-stream");
    unlink(path);
    assert_int_equal(pier_mime_load("/nonexistent/mime.types"), PIER_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_system_types),
        cmocka_unit_test(test_custom_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
