/*
 * test_xml: the streaming reader (every split of a document gives the same
 * elements), the whole-document lookups, escaping round trips, the three
 * AWS error shapes, and bad input: malformed XML, DOCTYPE / entity bombs,
 * depth and text caps, a callback that stops the parse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aws/xml.h"
#include "base/buf.h"
#include "base/error.h"

static const char list_xml[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
    "  <Name>bucket</Name>\n"
    "  <Prefix/>\n"
    "  <KeyCount>2</KeyCount>\n"
    "  <IsTruncated>false</IsTruncated>\n"
    "  <Contents>\n"
    "    <Key> lead &amp; trail </Key>\n"
    "    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>\n"
    "    <Size>434234</Size>\n"
    "  </Contents>\n"
    "  <Contents>\n"
    "    <Key>caf\xc3\xa9/&lt;index&gt;.html</Key>\n"
    "    <Size>0</Size>\n"
    "  </Contents>\n"
    "</ListBucketResult>\n";

typedef struct {
    pier_buf log; /* "depth path=text\n" per element */
    int stop_at;  /* element count at which to stop (0: never) */
    int seen;     /* elements seen */
} collector;

static int collect(void *ctx, const char *path, int depth, const char *text, size_t len)
{
    collector *c = ctx;
    c->seen++;
    if (c->stop_at && c->seen == c->stop_at)
        return pier_error_set(PIER_ECONFLICT, "stopped at %s", path);
    assert_int_equal(strlen(text), len);
    pier_buf_printf(&c->log, "%d %s=", depth, path);
    /* leaves only: containers carry indentation */
    if (strchr(text, '\n') == NULL)
        pier_buf_put(&c->log, text, len);
    pier_buf_putc(&c->log, '\n');
    return 0;
}

static const char expected_log[] =
    "2 ListBucketResult/Name=bucket\n"
    "2 ListBucketResult/Prefix=\n"
    "2 ListBucketResult/KeyCount=2\n"
    "2 ListBucketResult/IsTruncated=false\n"
    "3 ListBucketResult/Contents/Key= lead & trail \n"
    "3 ListBucketResult/Contents/ETag=\"9b2cf535f27731c974343645a3985328\"\n"
    "3 ListBucketResult/Contents/Size=434234\n"
    "2 ListBucketResult/Contents=\n"
    "3 ListBucketResult/Contents/Key=caf\xc3\xa9/<index>.html\n"
    "3 ListBucketResult/Contents/Size=0\n"
    "2 ListBucketResult/Contents=\n"
    "1 ListBucketResult=\n";

static void run_split(size_t piece)
{
    collector c = {PIER_BUF_INIT, 0, 0};
    pier_xml_reader *r = NULL;
    assert_int_equal(pier_xml_reader_new(&r, "list", collect, &c), 0);
    size_t n = sizeof list_xml - 1;
    for (size_t off = 0; off < n; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        assert_int_equal(pier_xml_reader_feed(r, list_xml + off, k), 0);
    }
    assert_int_equal(pier_xml_reader_finish(r), 0);
    assert_string_equal(pier_xml_reader_root(r), "ListBucketResult");
    assert_string_equal(pier_buf_cstr(&c.log), expected_log);
    pier_xml_reader_free(r);
    pier_buf_free(&c.log);
}

static void test_stream_any_split(void **state)
{
    (void)state;
    /* one byte at a time (splits inside names, entities and UTF-8), a few
     * odd sizes, and all at once */
    static const size_t pieces[] = {1, 2, 3, 7, 64, 4096};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
        run_split(pieces[i]);
}

static void test_body_adapter(void **state)
{
    (void)state;
    collector c = {PIER_BUF_INIT, 0, 0};
    pier_xml_reader *r = NULL;
    assert_int_equal(pier_xml_reader_new(&r, "list", collect, &c), 0);
    assert_int_equal(pier_xml_reader_body(r, list_xml, 10), 0);
    assert_int_equal(pier_xml_reader_body(r, list_xml + 10, sizeof list_xml - 11), 0);
    assert_int_equal(pier_xml_reader_finish(r), 0);
    assert_string_equal(pier_buf_cstr(&c.log), expected_log);
    pier_xml_reader_free(r);
    pier_buf_free(&c.log);

    /* a failure makes the adapter return non-zero (which aborts curl) */
    assert_int_equal(pier_xml_reader_new(&r, "bad", NULL, NULL), 0);
    assert_int_not_equal(pier_xml_reader_body(r, "<a></b>", 7), 0);
    assert_non_null(strstr(pier_error_last(), "bad: invalid XML"));
    pier_xml_reader_free(r);
}

static void test_callback_stops(void **state)
{
    (void)state;
    collector c = {PIER_BUF_INIT, 3, 0};
    pier_xml_reader *r = NULL;
    assert_int_equal(pier_xml_reader_new(&r, "list", collect, &c), 0);
    assert_int_equal(pier_xml_reader_feed(r, list_xml, sizeof list_xml - 1), PIER_ECONFLICT);
    assert_string_equal(pier_error_last(), "stopped at ListBucketResult/KeyCount");
    assert_int_equal(c.seen, 3);
    /* later calls keep failing the same way, without calling back */
    assert_int_equal(pier_xml_reader_feed(r, "<x/>", 4), PIER_ECONFLICT);
    assert_int_equal(pier_xml_reader_finish(r), PIER_ECONFLICT);
    assert_int_equal(c.seen, 3);
    pier_xml_reader_free(r);
    pier_buf_free(&c.log);
}

static int expect_fail(const char *xml, const char *needle)
{
    pier_xml_doc *d = NULL;
    int rc = pier_xml_doc_parse(&d, xml, strlen(xml), "doc.xml");
    assert_int_not_equal(rc, 0);
    assert_null(d);
    if (!strstr(pier_error_last(), needle))
        fail_msg("error '%s' lacks '%s'", pier_error_last(), needle);
    return rc;
}

static void test_bad_input(void **state)
{
    (void)state;
    assert_int_equal(expect_fail("<a><b></a>", "doc.xml: invalid XML at line 1"), PIER_EINVALID);
    expect_fail("<a>", "invalid XML");          /* truncated */
    expect_fail("", "empty XML document");      /* nothing */
    expect_fail("   \n", "empty XML document"); /* only space */
    expect_fail("not xml", "invalid XML");
    expect_fail("<a>&bogus;</a>", "invalid XML");  /* undefined entity */
    expect_fail("<a/><b/>", "invalid XML");        /* two roots */
    expect_fail("<a>\xff\xfe</a>", "invalid XML"); /* not UTF-8 */
    /* the billion laughs and external entities never get a chance */
    expect_fail("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">"
                "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]><lolz>&lol2;</lolz>",
                "DOCTYPE is refused");
    expect_fail("<!DOCTYPE x SYSTEM \"file:///etc/passwd\"><x/>", "DOCTYPE is refused");

    /* depth cap */
    pier_buf deep = PIER_BUF_INIT;
    for (int i = 0; i < 70; i++)
        pier_buf_puts(&deep, "<d>");
    for (int i = 0; i < 70; i++)
        pier_buf_puts(&deep, "</d>");
    assert_int_equal(expect_fail(pier_buf_cstr(&deep), "deeper than 64"), PIER_ETOOBIG);
    pier_buf_free(&deep);

    /* text cap */
    pier_xml_reader *r = NULL;
    assert_int_equal(pier_xml_reader_new(&r, "big", NULL, NULL), 0);
    pier_xml_reader_limits(r, 4, 8);
    assert_int_equal(pier_xml_reader_feed(r, "<a><b>12345678</b><c>", 21), 0);
    assert_int_equal(pier_xml_reader_feed(r, "123456789</c></a>", 17), PIER_ETOOBIG);
    assert_non_null(strstr(pier_error_last(), "a/c has more than 8 bytes"));
    pier_xml_reader_free(r);
    assert_int_equal(pier_xml_reader_new(&r, "deep", NULL, NULL), 0);
    pier_xml_reader_limits(r, 2, 0);
    assert_int_equal(pier_xml_reader_feed(r, "<a><b><c/></b></a>", 18), PIER_ETOOBIG);
    pier_xml_reader_free(r);

    /* feeding after the end */
    assert_int_equal(pier_xml_reader_new(&r, "late", NULL, NULL), 0);
    assert_int_equal(pier_xml_reader_feed(r, "<a/>", 4), 0);
    assert_int_equal(pier_xml_reader_finish(r), 0);
    assert_int_equal(pier_xml_reader_feed(r, "<a/>", 4), PIER_EINVALID);
    pier_xml_reader_free(r);
}

static const char sts_xml[] =
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
    "  <AssumeRoleWithWebIdentityResult>\n"
    "    <SubjectFromWebIdentityToken>repo:o/r:ref:refs/heads/main</SubjectFromWebIdentityToken>\n"
    "    <Audience>sts.amazonaws.com</Audience>\n"
    "    <AssumedRoleUser>\n"
    "      <Arn>arn:aws:sts::123456789012:assumed-role/deploy/pier</Arn>\n"
    "      <AssumedRoleId>AROAEXAMPLE:pier</AssumedRoleId>\n"
    "    </AssumedRoleUser>\n"
    "    <Credentials>\n"
    "      <SessionToken>FQoGZXIvYXdzEXAMPLE</SessionToken>\n"
    "      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>\n"
    "      <Expiration>2014-10-24T23:00:23Z</Expiration>\n"
    "      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>\n"
    "    </Credentials>\n"
    "    <Provider>www.amazon.com</Provider>\n"
    "  </AssumeRoleWithWebIdentityResult>\n"
    "  <ResponseMetadata>\n"
    "    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\n"
    "  </ResponseMetadata>\n"
    "</AssumeRoleWithWebIdentityResponse>\n";

static void test_doc(void **state)
{
    (void)state;
    pier_xml_doc *d = NULL;
    assert_int_equal(pier_xml_doc_parse(&d, sts_xml, sizeof sts_xml - 1, "sts"), 0);
    assert_string_equal(pier_xml_doc_root(d), "AssumeRoleWithWebIdentityResponse");
    const char *base = "AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/"
                       "Credentials/";
    char path[256];
    snprintf(path, sizeof path, "%sAccessKeyId", base);
    assert_string_equal(pier_xml_doc_get(d, path), "ASgeIAIOSFODNN7EXAMPLE");
    snprintf(path, sizeof path, "%sExpiration", base);
    assert_string_equal(pier_xml_doc_get(d, path), "2014-10-24T23:00:23Z");
    assert_string_equal(pier_xml_doc_get(d, "AssumeRoleWithWebIdentityResponse/ResponseMetadata/"
                                            "RequestId"),
                        "ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE");
    assert_null(pier_xml_doc_get(d, "Credentials/AccessKeyId")); /* paths are from the root */
    assert_null(pier_xml_doc_get(d, "nope"));
    assert_true(pier_xml_doc_count(d) > 10);
    const char *p, *t;
    pier_xml_doc_at(d, 0, &p, &t);
    assert_string_equal(p, "AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/"
                           "SubjectFromWebIdentityToken");
    pier_xml_doc_at(d, 9999, &p, &t);
    assert_null(p);
    pier_xml_doc_free(d);

    /* first match wins, prefixes are dropped */
    static const char dup[] = "<r xmlns:s3=\"urn:x\"><s3:k>one</s3:k><k>two</k></r>";
    assert_int_equal(pier_xml_doc_parse(&d, dup, sizeof dup - 1, "dup"), 0);
    assert_string_equal(pier_xml_doc_get(d, "r/k"), "one");
    pier_xml_doc_free(d);
    pier_xml_doc_free(NULL);

    /* CDATA and character references decode into text */
    static const char cdata[] = "<r><a><![CDATA[<b>&amp;</b>]]></a><c>&#65;&#x42;</c></r>";
    assert_int_equal(pier_xml_doc_parse(&d, cdata, sizeof cdata - 1, "cdata"), 0);
    assert_string_equal(pier_xml_doc_get(d, "r/a"), "<b>&amp;</b>");
    assert_string_equal(pier_xml_doc_get(d, "r/c"), "AB");
    pier_xml_doc_free(d);
}

static void test_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"plain/key.html", "plain/key.html"},
        {"a&b<c>d\"e'f", "a&amp;b&lt;c&gt;d&quot;e&apos;f"},
        {"tab\there\nnl\rcr", "tab&#9;here&#10;nl&#13;cr"},
        {"caf\xc3\xa9 \xe2\x9c\x93", "caf\xc3\xa9 \xe2\x9c\x93"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pier_buf b = PIER_BUF_INIT;
        assert_int_equal(pier_xml_escape(&b, cases[i].in, strlen(cases[i].in)), 0);
        assert_string_equal(pier_buf_cstr(&b), cases[i].out);

        /* round trip through the parser */
        pier_buf doc = PIER_BUF_INIT;
        pier_buf_printf(&doc, "<Key a=\"%s\">%s</Key>", pier_buf_cstr(&b), pier_buf_cstr(&b));
        pier_xml_doc *d = NULL;
        assert_int_equal(pier_xml_doc_parse(&d, doc.ptr, doc.len, "rt"), 0);
        assert_string_equal(pier_xml_doc_get(d, "Key"), cases[i].in);
        pier_xml_doc_free(d);
        pier_buf_free(&doc);
        pier_buf_free(&b);
    }
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, "kept");
    assert_int_equal(pier_xml_escape(&b, "bad\x01", 4), PIER_EINVALID);
    assert_string_equal(pier_buf_cstr(&b), "kept"); /* nothing half-written */
    assert_non_null(strstr(pier_error_last(), "0x01"));
    pier_buf_free(&b);

    pier_buf small;
    pier_buf_init(&small, 6);
    assert_int_equal(pier_xml_escape(&small, "a<b>", 4), PIER_ETOOBIG);
    assert_int_equal(small.len, 0);
    pier_buf_free(&small);
}

static void test_aws_errors(void **state)
{
    (void)state;
    pier_xml_aws_error e;
    static const char s3[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                             "<Error><Code>NoSuchKey</Code><Message>The resource you requested "
                             "does not exist</Message><Resource>/mybucket/myfoto.jpg</Resource>"
                             "<RequestId>4442587FB7D0A2F9</RequestId></Error>";
    assert_int_equal(pier_xml_parse_aws_error(&e, s3, sizeof s3 - 1), 0);
    assert_string_equal(e.code, "NoSuchKey");
    assert_string_equal(e.message, "The resource you requested does not exist");
    assert_string_equal(e.request_id, "4442587FB7D0A2F9");
    assert_null(e.type);
    assert_null(e.server_time);
    pier_xml_aws_error_free(&e);

    static const char skew[] = "<Error><Code>RequestTimeTooSkewed</Code><Message>The difference "
                               "between the request time and the current time is too large."
                               "</Message><RequestTime>20230101T000000Z</RequestTime>"
                               "<ServerTime>2023-01-01T01:00:00Z</ServerTime>"
                               "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>"
                               "</Error>";
    assert_int_equal(pier_xml_parse_aws_error(&e, skew, sizeof skew - 1), 0);
    assert_string_equal(e.code, "RequestTimeTooSkewed");
    assert_string_equal(e.server_time, "2023-01-01T01:00:00Z");
    pier_xml_aws_error_free(&e);

    static const char query[] =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
        "  <Error>\n    <Type>Sender</Type>\n    <Code>InvalidIdentityToken</Code>\n"
        "    <Message>No OpenIDConnect provider found in your account for "
        "https://token.actions.githubusercontent.com</Message>\n  </Error>\n"
        "  <RequestId>8d3e3c56-7a54-4ef0-9f2b-EXAMPLE</RequestId>\n</ErrorResponse>\n";
    assert_int_equal(pier_xml_parse_aws_error(&e, query, sizeof query - 1), 0);
    assert_string_equal(e.code, "InvalidIdentityToken");
    assert_string_equal(e.type, "Sender");
    assert_string_equal(e.request_id, "8d3e3c56-7a54-4ef0-9f2b-EXAMPLE");
    assert_true(strncmp(e.message, "No OpenIDConnect", 16) == 0);
    pier_xml_aws_error_free(&e);

    static const char ec2[] = "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                              "<Message>Request limit exceeded.</Message></Error></Errors>"
                              "<RequestID>abc-123</RequestID></Response>";
    assert_int_equal(pier_xml_parse_aws_error(&e, ec2, sizeof ec2 - 1), 0);
    assert_string_equal(e.code, "RequestLimitExceeded");
    assert_string_equal(e.message, "Request limit exceeded.");
    assert_string_equal(e.request_id, "abc-123");
    pier_xml_aws_error_free(&e);

    /* not errors */
    assert_int_equal(pier_xml_parse_aws_error(&e, sts_xml, sizeof sts_xml - 1), PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "not an AWS error document"));
    assert_null(e.code);
    assert_int_equal(pier_xml_parse_aws_error(&e, "<Error><Code></Code></Error>", 28),
                     PIER_EINVALID);
    assert_int_equal(pier_xml_parse_aws_error(&e, "<html>502 Bad Gateway", 21), PIER_EINVALID);
    assert_int_equal(pier_xml_parse_aws_error(&e, "", 0), PIER_EINVALID);
    pier_xml_aws_error_free(&e);
    pier_xml_aws_error_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_any_split),
        cmocka_unit_test(test_body_adapter),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_doc),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_aws_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
