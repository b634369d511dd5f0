/*
 * test_url: pier_url_parse and pier_host_is_loopback, table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <string.h>

#include "base/error.h"
#include "net/url.h"

typedef struct {
    const char *url;    /* input */
    int rc;             /* expected result */
    const char *scheme; /* expected parts when rc == 0 */
    const char *host;
    int port;
    const char *path;
    const char *query; /* NULL: none */
} url_case;

static void test_url_parse(void **state)
{
    static const url_case cases[] = {
        {"https://s3.amazonaws.com", 0, "https", "s3.amazonaws.com", 0, "/", NULL},
        {"https://bucket.s3.eu-west-1.amazonaws.com/a/b.txt", 0, "https",
         "bucket.s3.eu-west-1.amazonaws.com", 0, "/a/b.txt", NULL},
        {"http://127.0.0.1:9000/bkt/key?uploads", 0, "http", "127.0.0.1", 9000, "/bkt/key",
         "uploads"},
        {"http://[::1]:8080/x?a=1&b=%2F", 0, "http", "::1", 8080, "/x", "a=1&b=%2F"},
        {"https://[2001:db8::7]/", 0, "https", "2001:db8::7", 0, "/", NULL},
        {"HTTPS://Example.COM:443/Key%20With%20Space", 0, "https", "Example.COM", 443,
         "/Key%20With%20Space", NULL},
        {"http://localhost:1/a/../b/./c", 0, "http", "localhost", 1, "/a/../b/./c", NULL},
        {"https://h/p?q#frag", 0, "https", "h", 0, "/p", "q"},
        {"https://h?x=y", 0, "https", "h", 0, "/", "x=y"},
        {"https://h/p?", 0, "https", "h", 0, "/p", ""},
        {"http://h:/p", 0, "http", "h", 0, "/p", NULL},
        {"https://[fe80::1%25eth0]:8/", 0, "https", "fe80::1", 8, "/", NULL},
        {"http://127.1/", 0, "http", "127.0.0.1", 0, "/", NULL},
        {"ftp://host/file", PIER_EINVALID, NULL, NULL, 0, NULL, NULL},
        {"https://user:secret@host/", PIER_EINVALID, NULL, NULL, 0, NULL, NULL},
        {"https://host:99999/", PIER_EINVALID, NULL, NULL, 0, NULL, NULL},
        {"https://host:12ab/", PIER_EINVALID, NULL, NULL, 0, NULL, NULL},
        {"host/path", PIER_EINVALID, NULL, NULL, 0, NULL, NULL},
        {"https://", PIER_EINVALID, NULL, NULL, 0, NULL, NULL},
        {"", PIER_EINVALID, NULL, NULL, 0, NULL, NULL},
        {"https://[::1/", PIER_EINVALID, NULL, NULL, 0, NULL, NULL},
        {"https://h:0/", PIER_EINVALID, NULL, NULL, 0, NULL, NULL},
        {"https://h/a b", PIER_EINVALID, NULL, NULL, 0, NULL, NULL},
        {"https://h\\x/", PIER_EINVALID, NULL, NULL, 0, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const url_case *k = &cases[i];
        pier_url u;
        int rc = pier_url_parse(&u, k->url);
        if (rc != k->rc)
            fail_msg("%s: rc %d, want %d (%s)", k->url, rc, k->rc, pier_error_last());
        if (rc < 0) {
            assert_null(u.scheme);
            assert_null(u.host);
            assert_true(strlen(pier_error_last()) > 0);
            continue;
        }
        assert_string_equal(u.scheme, k->scheme);
        assert_string_equal(u.host, k->host);
        assert_int_equal(u.port, k->port);
        assert_string_equal(u.path, k->path);
        if (k->query)
            assert_string_equal(u.query, k->query);
        else
            assert_null(u.query);
        pier_url_free(&u);
    }
    /* The credential in a rejected URL is not echoed. */
    pier_url u;
    assert_int_equal(pier_url_parse(&u, "https://user:hunter2@host/"), PIER_EINVALID);
    assert_null(strstr(pier_error_last(), "hunter2"));
    pier_url_free(NULL);
}

static void test_loopback(void **state)
{
    static const struct {
        const char *host;
        bool loopback;
    } cases[] = {
        {"localhost", true},
        {"LocalHost", true},
        {"bucket.localhost", true},
        {"127.0.0.1", true},
        {"127.255.3.4", true},
        {"::1", true},
        {"[::1]", true},
        {"::ffff:127.0.0.1", true},
        {"0:0:0:0:0:0:0:1", true},
        {"128.0.0.1", false},
        {"10.0.0.1", false},
        {"::2", false},
        {"localhost.example", false},
        {"notlocalhost", false},
        {"example.com", false},
        {"", false},
        {"[]", false},
        {"localhost.", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (pier_host_is_loopback(cases[i].host) != cases[i].loopback)
            fail_msg("%s: want %d", cases[i].host, cases[i].loopback);
    assert_false(pier_host_is_loopback(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
