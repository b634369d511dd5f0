/*
 * test_awsreq: the pure parts of the shared request path, table-driven:
 * reading an AWS error from a response in each shape (S3 XML, CloudFront
 * and query XML, JSON __type with its namespace, the x-amzn-ErrorType
 * header, a bodiless HEAD answer) and joining URLs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "aws/awsreq.h"
#include "base/buf.h"
#include "base/error.h"

typedef struct {
    const char *what;       /* case name */
    long status;            /* HTTP status */
    const char *body;       /* response body */
    const char *hname;      /* a header, or NULL */
    const char *hvalue;     /* its value */
    int rc;                 /* expected return */
    const char *code;       /* expected code (NULL: none) */
    const char *message;    /* expected message (NULL: none) */
    const char *request_id; /* expected request id (NULL: none) */
} error_case;

static const error_case error_cases[] = {
    {"s3 xml", 403,
     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
     "<Message>Access Denied</Message><RequestId>R1</RequestId><HostId>h</HostId></Error>",
     NULL, NULL, 0, "AccessDenied", "Access Denied", "R1"},
    {"cloudfront xml", 404,
     "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://cloudfront.amazonaws.com/doc/"
     "2020-05-31/\"><Error><Type>Sender</Type><Code>NoSuchDistribution</Code><Message>The "
     "specified distribution does not exist.</Message></Error><RequestId>R2</RequestId>"
     "</ErrorResponse>",
     NULL, NULL, 0, "NoSuchDistribution", "The specified distribution does not exist.", "R2"},
    {"json __type with namespace", 400,
     "{\"__type\":\"com.amazonaws.codepipeline#JobNotFoundException\",\"message\":\"no job\"}",
     "x-amzn-RequestId", "R3", 0, "JobNotFoundException", "no job", "R3"},
    {"json Message", 400, "{\"__type\":\"ValidationException\",\"Message\":\"bad\"}", NULL, NULL, 0,
     "ValidationException", "bad", NULL},
    {"header only", 400, "", "x-amzn-ErrorType",
     "ThrottlingException:http://internal.amazon.com/coral/", 0, "ThrottlingException", NULL, NULL},
    {"HEAD 404", 404, "", "x-amz-request-id", "R4", 0, "NotFound", NULL, "R4"},
    {"HEAD 301", 301, "", NULL, NULL, 0, "PermanentRedirect", NULL, NULL},
    {"not xml, odd status", 418, "teapot", NULL, NULL, PIER_EINVALID, NULL, NULL, NULL},
    {"html 502", 502, "<html><body>Bad Gateway</body></html>", NULL, NULL, 0, "BadGateway", NULL,
     NULL},
};

static void check_str(const char *what, const char *field, const char *got, const char *want)
{
    if (!want && !got)
        return;
    if (!want || !got || strcmp(want, got) != 0)
        fail_msg("%s: %s is \"%s\", want \"%s\"", what, field, got ? got : "(null)",
                 want ? want : "(null)");
}

static void test_parse_error(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        const error_case *c = &error_cases[i];
        pier_http_response resp;
        pier_http_response_init(&resp);
        resp.status = c->status;
        pier_buf_puts(&resp.body, c->body);
        if (c->hname)
            pier_http_headers_add(&resp.headers, c->hname, c->hvalue);
        char *code = NULL, *message = NULL, *rid = NULL;
        int rc = pier_awsreq_parse_error(&resp, &code, &message, &rid);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d", c->what, rc, c->rc);
        check_str(c->what, "code", code, c->code);
        check_str(c->what, "message", message, c->message);
        check_str(c->what, "request id", rid, c->request_id);
        free(code);
        free(message);
        free(rid);
        pier_http_response_free(&resp);
    }
}

static void test_url(void **state)
{
    (void)state;
    static const char *const cases[][4] = {
        {"http://127.0.0.1:9000", "/b/k", NULL, "http://127.0.0.1:9000/b/k"},
        {"http://127.0.0.1:9000/", "/b/k", "", "http://127.0.0.1:9000/b/k"},
        {"https://h//", "b", "x=1&y=2", "https://h/b?x=1&y=2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pier_buf b = PIER_BUF_INIT;
        assert_int_equal(pier_awsreq_url(&b, cases[i][0], cases[i][1], cases[i][2]), 0);
        assert_string_equal(pier_buf_cstr(&b), cases[i][3]);
        pier_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_error),
        cmocka_unit_test(test_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
