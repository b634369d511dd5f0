/*
 * test_digest: known-answer tests for the hashes, HMAC (RFC 4231), base64,
 * CRCs, and the constant-time comparisons.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/str.h"

static void test_hashes(void **state)
{
    (void)state;
    char hex[65];
    pier_sha256_hex(hex, "", 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    unsigned char md5[16];
    pier_md5(md5, "abc", 3);
    pier_hex_encode(hex, md5, 16);
    assert_string_equal(hex, "900150983cd24fb0d6963f7d28e17f72");
    /* Streaming equals one-shot, and the context restarts after final. */
    pier_hash *h = pier_hash_new(PIER_HASH_SHA256);
    unsigned char a[32], b[32];
    for (int round = 0; round < 2; round++) {
        pier_hash_update(h, "ab", 2);
        pier_hash_update(h, "c", 1);
        assert_int_equal(pier_hash_final(h, a), 32);
        pier_sha256(b, "abc", 3);
        assert_memory_equal(a, b, 32);
    }
    pier_hash_free(h);
}

static void test_hmac(void **state)
{
    (void)state;
    /* RFC 4231 test case 2. */
    unsigned char mac[32];
    char hex[65];
    const char *data = "what do ya want for nothing?";
    pier_hmac_sha256(mac, "Jefe", 4, data, strlen(data));
    pier_hex_encode(hex, mac, 32);
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_base64(void **state)
{
    (void)state;
    pier_buf b;
    pier_buf_init(&b, 0);
    assert_int_equal(pier_base64_encode(&b, "foobar", 6), 0);
    assert_string_equal(b.ptr, "Zm9vYmFy");
    pier_buf_reset(&b);
    assert_int_equal(pier_base64_encode(&b, "fo", 2), 0);
    assert_string_equal(b.ptr, "Zm8=");
    pier_buf_reset(&b);
    assert_int_equal(pier_base64_decode(&b, "Zm8=", 4), 0);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.ptr, "fo", 2);
    pier_buf_reset(&b);
    assert_int_equal(pier_base64_decode(&b, "Zm8", 3), PIER_EINVALID);
    assert_int_equal(pier_base64_decode(&b, "Z!8=", 4), PIER_EINVALID);
    pier_buf_free(&b);
}

static void test_crc(void **state)
{
    (void)state;
    /* The standard check values over "123456789". */
    assert_true(pier_crc32(0, "123456789", 9) == 0xCBF43926u);
    assert_true(pier_crc32c(0, "123456789", 9) == 0xE3069283u);
    /* Incremental equals one-shot. */
    uint32_t c = pier_crc32c(0, "1234", 4);
    assert_true(pier_crc32c(c, "56789", 5) == 0xE3069283u);
}

static void test_ct_and_random(void **state)
{
    (void)state;
    assert_true(pier_ct_streq("secret", "secret"));
    assert_false(pier_ct_streq("secret", "secreT"));
    assert_false(pier_ct_streq("secret", "secret2"));
    assert_false(pier_ct_streq("secret2", "secret"));
    char t1[33], t2[33];
    pier_random_token(t1, 32, true);
    pier_random_token(t2, 32, true);
    assert_int_equal(strlen(t1), 32);
    assert_string_not_equal(t1, t2);
    for (int i = 0; i < 32; i++)
        assert_true((t1[i] >= 'A' && t1[i] <= 'Z') || (t1[i] >= '0' && t1[i] <= '9'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hashes),        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_base64),        cmocka_unit_test(test_crc),
        cmocka_unit_test(test_ct_and_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
