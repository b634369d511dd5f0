/*
 * test_str: number parsing, URI encoding, hex, time formats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/error.h"
#include "base/str.h"

static void test_parse(void **state)
{
    (void)state;
    uint64_t u;
    int64_t i;
    assert_int_equal(pier_parse_u64("18446744073709551615", &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(pier_parse_u64("18446744073709551616", &u), PIER_EINVALID);
    assert_int_equal(pier_parse_u64("-1", &u), PIER_EINVALID);
    assert_int_equal(pier_parse_u64("12x", &u), PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "12x"));
    assert_int_equal(pier_parse_u64("", &u), PIER_EINVALID);
    assert_int_equal(pier_parse_i64("-42", &i), 0);
    assert_int_equal(i, -42);
    assert_int_equal(pier_parse_size("8M", &u), 0);
    assert_true(u == 8u << 20);
    assert_int_equal(pier_parse_size("5GiB", &u), 0);
    assert_true(u == 5ull << 30);
    assert_int_equal(pier_parse_size("64kb", &u), 0);
    assert_true(u == 65536);
    assert_int_equal(pier_parse_size("1X", &u), PIER_EINVALID);
}

static void test_uri(void **state)
{
    (void)state;
    pier_buf b;
    pier_buf_init(&b, 0);
    const char *raw = "a b+c%/d~e_f.g-h#?é";
    assert_int_equal(pier_uri_encode(&b, raw, strlen(raw), true), 0);
    assert_string_equal(b.ptr, "a%20b%2Bc%25/d~e_f.g-h%23%3F%C3%A9");
    pier_buf_reset(&b);
    assert_int_equal(pier_uri_encode(&b, "a/b", 3, false), 0);
    assert_string_equal(b.ptr, "a%2Fb");
    pier_buf_reset(&b);
    assert_int_equal(pier_uri_decode(&b, "a%20b+c%2f", 10, true), 0);
    assert_string_equal(b.ptr, "a b c/");
    pier_buf_reset(&b);
    assert_int_equal(pier_uri_decode(&b, "bad%2", 5, false), PIER_EINVALID);
    assert_int_equal(pier_uri_decode(&b, "bad%zz", 6, false), PIER_EINVALID);
    pier_buf_free(&b);
}

static void test_hex(void **state)
{
    (void)state;
    unsigned char in[] = {0x00, 0xab, 0xff, 0x10};
    char out[9];
    pier_hex_encode(out, in, 4);
    assert_string_equal(out, "00abff10");
    unsigned char back[4];
    assert_int_equal(pier_hex_decode(back, "00ABff10", 4), 0);
    assert_memory_equal(back, in, 4);
    assert_int_equal(pier_hex_decode(back, "0g", 1), PIER_EINVALID);
}

static void test_time(void **state)
{
    (void)state;
    char out[64];
    time_t t = 1440938160; /* 2015-08-30T12:36:00Z */
    pier_time_iso8601_basic(out, sizeof out, t);
    assert_string_equal(out, "20150830T123600Z");
    pier_time_iso8601(out, sizeof out, t);
    assert_string_equal(out, "2015-08-30T12:36:00Z");
    pier_time_http(out, sizeof out, t);
    assert_string_equal(out, "Sun, 30 Aug 2015 12:36:00 GMT");
    time_t p;
    assert_int_equal(pier_time_parse("20150830T123600Z", &p), 0);
    assert_true(p == t);
    assert_int_equal(pier_time_parse("2015-08-30T12:36:00.123Z", &p), 0);
    assert_true(p == t);
    assert_int_equal(pier_time_parse("2015-08-30T12:36:00+00:00", &p), 0);
    assert_true(p == t);
    assert_int_equal(pier_time_parse("Sun, 30 Aug 2015 12:36:00 GMT", &p), 0);
    assert_true(p == t);
    assert_int_equal(pier_time_parse("yesterday", &p), PIER_EINVALID);
    assert_int_equal(pier_time_parse("2015-13-30T12:36:00Z", &p), PIER_EINVALID);
}

static void test_misc(void **state)
{
    (void)state;
    assert_true(pier_str_starts_with("s3://b", "s3://"));
    assert_true(pier_str_ends_with("index.html", ".html"));
    assert_false(pier_str_ends_with("a", ".html"));
    assert_true(pier_str_ieq("Content-Type", "content-type"));
    assert_true(pier_utf8_valid("plain ascii"));
    assert_true(pier_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
    assert_false(pier_utf8_valid("\xc0\xaf"));         /* overlong '/' */
    assert_false(pier_utf8_valid("\xed\xa0\x80"));     /* surrogate */
    assert_false(pier_utf8_valid("\xf4\x90\x80\x80")); /* past U+10FFFF */
    assert_false(pier_utf8_valid("\xe2\x82"));         /* cut short */
    assert_false(pier_utf8_valid("\xff"));
    char snip[32];
    const char *body = "  <Error>\n\t<Code>x</Code>\x01";
    pier_str_snippet(snip, sizeof snip, body, strlen(body), 100);
    assert_string_equal(snip, "<Error> <Code>x</Code>?");
    pier_str_snippet(snip, sizeof snip, "abcdefghij", 10, 4);
    assert_string_equal(snip, "abcd...");
    char small[4];
    assert_int_equal(pier_str_fmt(small, sizeof small, "%s", "abc"), 0);
    assert_int_equal(pier_str_fmt(small, sizeof small, "%s", "abcd"), PIER_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse), cmocka_unit_test(test_uri),  cmocka_unit_test(test_hex),
        cmocka_unit_test(test_time),  cmocka_unit_test(test_misc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
