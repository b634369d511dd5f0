/*
 * test_s3chunked: the aws-chunked decoder: unsigned bodies with trailers,
 * fed whole and byte by byte; signed chunks made with sigv4's sender side;
 * tampered data and signatures; malformed framing (table-driven).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "base/buf.h"
#include "base/error.h"
#include "stack/s3chunked.h"

static int collect(void *ctx, const char *data, size_t n)
{
    return pier_buf_put(ctx, data, n);
}

/* Decodes body in pieces of `step` bytes (0: whole). Returns the first
 * error of feed/finish, the output in out. */
static int decode(const pier_sigv4_chunk *chain, bool signed_trailer, const char *body, size_t n,
                  size_t step, pier_buf *out, pier_s3chunked **keep)
{
    pier_s3chunked *d = pier_s3chunked_new(chain, signed_trailer, collect, out);
    int rc = 0;
    if (step == 0)
        step = n ? n : 1;
    for (size_t i = 0; i < n && rc == 0; i += step)
        rc = pier_s3chunked_feed(d, body + i, n - i < step ? n - i : step);
    if (rc == 0)
        rc = pier_s3chunked_finish(d);
    if (keep)
        *keep = d;
    else
        pier_s3chunked_free(d);
    return rc;
}

static void test_unsigned_with_trailer(void **state)
{
    (void)state;
    static const char body[] = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n"
                               "x-amz-checksum-crc32: AAAAAA==\r\nX-Other:v\r\n\r\n";
    size_t steps[] = {0, 1, 2, 7};
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
        pier_buf out = PIER_BUF_INIT;
        pier_s3chunked *d = NULL;
        assert_int_equal(decode(NULL, false, body, sizeof body - 1, steps[s], &out, &d), 0);
        assert_string_equal(pier_buf_cstr(&out), "hello world");
        assert_int_equal(pier_s3chunked_decoded(d), 11);
        assert_string_equal(pier_s3chunked_trailer(d, "X-Amz-Checksum-CRC32"), "AAAAAA==");
        assert_string_equal(pier_s3chunked_trailer(d, "x-other"), "v");
        assert_null(pier_s3chunked_trailer(d, "missing"));
        pier_s3chunked_free(d);
        pier_buf_free(&out);
    }
}

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int rc;
    } cases[] = {
        {"", PIER_EINVALID},                           /* nothing */
        {"5\r\nhello\r\n", PIER_EINVALID},             /* no final chunk */
        {"5\r\nhelloXX0\r\n\r\n", PIER_EINVALID},      /* no CRLF after data */
        {"zz\r\nhello\r\n0\r\n\r\n", PIER_EINVALID},   /* bad size */
        {"5\nhello\r\n0\r\n\r\n", PIER_EINVALID},      /* LF only */
        {"3\r\nabc\r\n0\r\n\r\nextra", PIER_EINVALID}, /* bytes after the end */
        {"3\r\nabc\r\n0\r\nbad trailer\r\n\r\n", PIER_EINVALID},
        {"fffffffffffffffff\r\n", PIER_EINVALID}, /* size overflow */
        {"3\r\nabc\r\n0\r\n\r\n", 0},             /* fine */
        {"3\r\nabc\r\n0\r\n", 0},                 /* fine: no trailer section */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pier_buf out = PIER_BUF_INIT;
        int rc = decode(NULL, false, cases[i].body, strlen(cases[i].body), 0, &out, NULL);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, want %d (%s)", i, rc, cases[i].rc, pier_error_last());
        pier_buf_free(&out);
    }
}

static const pier_sigv4_credentials cred = {"AKIDEXAMPLE",
                                            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};
static const char seed[] = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

static void make_chain(pier_sigv4_chunk *c)
{
    assert_int_equal(pier_sigv4_chunk_init(c, &cred, "20130524T000000Z", "us-east-1", "s3", seed),
                     0);
}

static void test_signed_chunks(void **state)
{
    (void)state;
    pier_sigv4_chunk sender, receiver;
    make_chain(&sender);
    make_chain(&receiver);
    char data[150000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 7);
    pier_buf body = PIER_BUF_INIT;
    for (size_t off = 0; off < sizeof data; off += 65536) {
        size_t n = sizeof data - off < 65536 ? sizeof data - off : 65536;
        assert_int_equal(pier_sigv4_chunk_write(&sender, &body, data + off, n), 0);
    }
    assert_int_equal(pier_sigv4_chunk_write(&sender, &body, NULL, 0), 0);

    size_t steps[] = {0, 1000, 3};
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
        pier_buf out = PIER_BUF_INIT;
        if (decode(&receiver, false, body.ptr, body.len, steps[s], &out, NULL) != 0)
            fail_msg("step %zu: %s", steps[s], pier_error_last());
        assert_int_equal(out.len, sizeof data);
        assert_memory_equal(out.ptr, data, sizeof data);
        pier_buf_free(&out);
    }

    /* one flipped data byte: the chunk's signature no longer matches */
    char *bad = malloc(body.len);
    memcpy(bad, body.ptr, body.len);
    char *first_data = strstr(bad, "\r\n") + 2;
    first_data[100] ^= 1;
    pier_buf out = PIER_BUF_INIT;
    assert_int_equal(decode(&receiver, false, bad, body.len, 0, &out, NULL), PIER_EAUTH);
    assert_non_null(strstr(pier_error_last(), "SignatureDoesNotMatch"));
    pier_buf_free(&out);

    /* a chain seeded with another signature refuses the first chunk */
    pier_sigv4_chunk other;
    assert_int_equal(pier_sigv4_chunk_init(&other, &cred, "20130524T000000Z", "us-east-1", "s3",
                                           "0000000000000000000000000000000000000000000000000000"
                                           "000000000000"),
                     0);
    assert_int_equal(decode(&other, false, body.ptr, body.len, 0, &out, NULL), PIER_EAUTH);
    pier_buf_free(&out);

    /* an unsigned chunk header where signatures are required */
    static const char plain[] = "3\r\nabc\r\n0\r\n\r\n";
    assert_int_equal(decode(&receiver, false, plain, sizeof plain - 1, 0, &out, NULL),
                     PIER_EINVALID);
    pier_buf_free(&out);
    free(bad);
    pier_buf_free(&body);
}

static void test_signed_trailer(void **state)
{
    (void)state;
    pier_sigv4_chunk sender, receiver;
    make_chain(&sender);
    make_chain(&receiver);
    pier_buf body = PIER_BUF_INIT;
    assert_int_equal(pier_sigv4_chunk_write(&sender, &body, "abc", 3), 0);
    /* the final chunk without its closing CRLF, then the signed trailer */
    assert_int_equal(pier_sigv4_chunk_write(&sender, &body, NULL, 0), 0);
    pier_buf_truncate(&body, body.len - 2);
    static const char trailer[] = "x-amz-checksum-crc32:NSRBwg==\n";
    char sig[65];
    assert_int_equal(pier_sigv4_trailer_sign(&sender, sig, trailer, sizeof trailer - 1, NULL), 0);
    pier_buf_printf(&body, "x-amz-checksum-crc32:NSRBwg==\r\nx-amz-trailer-signature:%s\r\n\r\n",
                    sig);
    pier_buf out = PIER_BUF_INIT;
    pier_s3chunked *d = NULL;
    if (decode(&receiver, true, body.ptr, body.len, 5, &out, &d) != 0)
        fail_msg("%s", pier_error_last());
    assert_string_equal(pier_s3chunked_trailer(d, "x-amz-checksum-crc32"), "NSRBwg==");
    pier_s3chunked_free(d);
    pier_buf_free(&out);

    /* a changed trailer value breaks the trailer signature */
    char *p = strstr(body.ptr, "NSRBwg==");
    p[0] = 'M';
    assert_int_equal(decode(&receiver, true, body.ptr, body.len, 0, &out, NULL), PIER_EAUTH);
    pier_buf_free(&out);
    pier_buf_free(&body);
}

static int failing_sink(void *ctx, const char *data, size_t n)
{
    return pier_error_set(PIER_ETOOBIG, "sink full");
}

static void test_sink_error_stops(void **state)
{
    (void)state;
    pier_s3chunked *d = pier_s3chunked_new(NULL, false, failing_sink, NULL);
    assert_int_equal(pier_s3chunked_feed(d, "3\r\nabc\r\n", 8), PIER_ETOOBIG);
    assert_int_not_equal(pier_s3chunked_feed(d, "0\r\n\r\n", 5), 0);
    assert_int_not_equal(pier_s3chunked_finish(d), 0);
    pier_s3chunked_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsigned_with_trailer), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_signed_chunks),         cmocka_unit_test(test_signed_trailer),
        cmocka_unit_test(test_sink_error_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
