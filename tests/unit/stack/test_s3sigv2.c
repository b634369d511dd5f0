/*
 * test_s3sigv2: the legacy S3 signature against the examples of S3's REST
 * authentication documentation (key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY),
 * table-driven: request in, string to sign and signature out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/buf.h"
#include "net/http.h"
#include "stack/s3sigv2.h"

static const char secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

typedef struct {
    const char *method, *resource, *query, *date;
    const char *headers[12]; /* name, value, ... NULL */
    const char *sts;         /* expected string to sign */
    const char *sig;         /* expected signature, or NULL */
} vector;

static const vector vectors[] = {
    {"GET",
     "/johnsmith/photos/puppy.jpg",
     "",
     "Tue, 27 Mar 2007 19:36:42 +0000",
     {"Host", "johnsmith.s3.amazonaws.com", NULL},
     "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg",
     "bWq2s1WEIj+Ydj0vQ697zp+IXMU="},
    {"PUT",
     "/johnsmith/photos/puppy.jpg",
     "",
     "Tue, 27 Mar 2007 21:15:45 +0000",
     {"Content-Type", "image/jpeg", "Content-Length", "94328", NULL},
     "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/johnsmith/photos/puppy.jpg",
     "MyyxeRY7whkBe+bq8fHCL/2kKUg="},
    {"GET",
     "/johnsmith/",
     "prefix=photos&max-keys=50&marker=puppy",
     "Tue, 27 Mar 2007 19:42:41 +0000",
     {"User-Agent", "Mozilla/5.0", NULL},
     "GET\n\n\nTue, 27 Mar 2007 19:42:41 +0000\n/johnsmith/",
     "htDYFYduRNen8P9ZfE/s9SuKy0U="},
    {"GET",
     "/johnsmith/",
     "acl",
     "Tue, 27 Mar 2007 19:44:46 +0000",
     {NULL},
     "GET\n\n\nTue, 27 Mar 2007 19:44:46 +0000\n/johnsmith/?acl",
     "c2WLPFtWHVgbEmeEG93a4cG37dM="},
    {"PUT",
     "/static.johnsmith.net/db-backup.dat.gz",
     "",
     "Tue, 27 Mar 2007 21:06:08 +0000",
     {"x-amz-acl", "public-read", "content-type", "application/x-download", "Content-MD5",
      "4gJE4saaMU4BqNR0kLY+lw==", "X-Amz-Meta-ReviewedBy", "joe@johnsmith.net",
      "X-Amz-Meta-ReviewedBy", "jane@johnsmith.net", NULL},
     NULL,
     NULL},
    /* x-amz-date signed: empty date line; sub-resources sorted, decoded */
    {"DELETE",
     "/b/k",
     "uploadId=a%2Bb&partNumber=2&x=1",
     "",
     {"x-amz-date", "Tue,   27 Mar 2007 21:20:26 +0000", NULL},
     "DELETE\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n/b/k?partNumber=2&uploadId=a+b",
     NULL},
};

static void test_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof *vectors; i++) {
        const vector *v = &vectors[i];
        pier_http_headers h = {0};
        for (size_t j = 0; v->headers[j]; j += 2)
            pier_http_headers_add(&h, v->headers[j], v->headers[j + 1]);
        pier_buf sts = PIER_BUF_INIT;
        assert_int_equal(
            pier_s3sigv2_string_to_sign(&sts, v->method, v->resource, v->query, &h, v->date), 0);
        if (v->sts && strcmp(v->sts, pier_buf_cstr(&sts)) != 0)
            fail_msg("vector %zu:\n got: %s\nwant: %s", i, pier_buf_cstr(&sts), v->sts);
        char sig[32];
        pier_s3sigv2_sign(sig, secret, sts.ptr, sts.len);
        if (v->sig)
            assert_string_equal(sig, v->sig);
        if (i == 4) { /* repeated x-amz headers are joined; the doc's full example */
            assert_non_null(strstr(pier_buf_cstr(&sts),
                                   "x-amz-acl:public-read\n"
                                   "x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n"
                                   "/static.johnsmith.net/db-backup.dat.gz"));
        }
        pier_buf_free(&sts);
        pier_http_headers_free(&h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
