/*
 * test_buf: the capped buffer and slices.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"

static void test_append_and_cap(void **state)
{
    (void)state;
    pier_buf b;
    pier_buf_init(&b, 10);
    assert_string_equal(pier_buf_cstr(&b), "");
    assert_int_equal(pier_buf_puts(&b, "hello"), 0);
    assert_int_equal(pier_buf_printf(&b, "%d", 1234), 0);
    assert_string_equal(b.ptr, "hello1234");
    assert_int_equal(b.len, 9);
    /* Past the cap: refused and the buffer is unchanged. */
    assert_int_equal(pier_buf_puts(&b, "xy"), PIER_ETOOBIG);
    assert_string_equal(b.ptr, "hello1234");
    assert_int_equal(pier_buf_printf(&b, "%s", "long"), PIER_ETOOBIG);
    assert_int_equal(pier_buf_putc(&b, '!'), 0);
    assert_int_equal(b.len, 10);
    assert_int_equal(pier_buf_putc(&b, '!'), PIER_ETOOBIG);
    pier_buf_truncate(&b, 5);
    assert_string_equal(b.ptr, "hello");
    char *s = pier_buf_detach(&b);
    assert_string_equal(s, "hello");
    assert_null(b.ptr);
    free(s);
    pier_buf_free(&b);
}

static void test_binary_and_growth(void **state)
{
    (void)state;
    pier_buf b;
    pier_buf_init(&b, 0); /* default cap */
    for (int i = 0; i < 100000; i++)
        assert_int_equal(pier_buf_put(&b, "\0ab", 3), 0);
    assert_int_equal(b.len, 300000);
    assert_int_equal(b.ptr[3], '\0');
    assert_int_equal(b.ptr[b.len], '\0');
    pier_buf_reset(&b);
    assert_int_equal(b.len, 0);
    pier_buf_free(&b);
    pier_buf_free(NULL);
}

static void test_slices(void **state)
{
    (void)state;
    pier_slice s = pier_slice_trim(pier_slice_from("  \tvalue \n"));
    assert_true(pier_slice_eq_cstr(s, "value"));
    assert_true(pier_slice_ieq_cstr(s, "VALUE"));
    assert_true(pier_slice_starts_with(s, "val"));
    assert_false(pier_slice_starts_with(s, "values"));
    char *d = pier_slice_dup(s);
    assert_string_equal(d, "value");
    free(d);
    assert_true(pier_slice_eq(PIER_SLICE_LIT(""), pier_slice_from("")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_cap),
        cmocka_unit_test(test_binary_and_growth),
        cmocka_unit_test(test_slices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
