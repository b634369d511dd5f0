/*
 * test_secretscan: artifacts holding a secret's value, plain, JSON-escaped
 * (a value with " and /), base64 at the three alignments (standard and
 * URL-safe), URL-encoded, hex; a match split across read chunks; opt-out
 * and short secrets warned; no false positive on unrelated files; the
 * message names the file and the secret, never the value.
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

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "pipeline/secretscan.h"

#define TOKEN "tok_9fK2\"quote/slash x&y=z"

static const pier_secretscan_secret SECRETS[] = {
    {"API_TOKEN", TOKEN, false},
    {"DB_PASSWORD", "hunter2-correct-horse", false},
};

typedef struct {
    int count;
    char last[512];
} warns;

static void on_warn(void *ctx, const char *msg)
{
    warns *w = ctx;
    w->count++;
    snprintf(w->last, sizeof w->last, "%s", msg);
}

static pier_secretscan *scanner(void)
{
    pier_secretscan *s;
    warns w = {0};
    pier_secretscan_new(&s, SECRETS, 2, on_warn, &w);
    assert_int_equal(w.count, 0);
    assert_int_equal(pier_secretscan_secret_count(s), 2);
    return s;
}

/* Scans text; returns the encoding found or NULL. */
static const char *find(pier_secretscan *s, const char *text, size_t n, const char **secret)
{
    pier_secretscan_hit hit = {0};
    if (pier_secretscan_buffer(s, text, n, &hit) != 1)
        return NULL;
    if (secret)
        *secret = hit.secret;
    return hit.encoding;
}

static void test_plain(void **st)
{
    (void)st;
    pier_secretscan *s = scanner();
    const char *text = "var x = {a:1};var t='" TOKEN "';";
    const char *name = NULL;
    assert_string_equal(find(s, text, strlen(text), &name), "plain");
    assert_string_equal(name, "API_TOKEN");
    const char *other = "let p = \"hunter2-correct-horse\"";
    assert_string_equal(find(s, other, strlen(other), &name), "plain");
    assert_string_equal(name, "DB_PASSWORD");
    pier_secretscan_free(s);
}

static void test_json_escaped(void **st)
{
    (void)st;
    pier_secretscan *s = scanner();
    /* JSON.stringify: " and \ escaped, / kept. */
    const char *a = "{\"env\":{\"API_TOKEN\":\"tok_9fK2\\\"quote/slash x&y=z\"}}";
    assert_string_equal(find(s, a, strlen(a), NULL), "JSON-escaped");
    /* PHP-style \/ */
    const char *b = "{\"t\":\"tok_9fK2\\\"quote\\/slash x&y=z\"}";
    assert_string_equal(find(s, b, strlen(b), NULL), "JSON-escaped");
    /* Go / serialize-javascript: & and = as \u00XX */
    const char *c = "{\"t\":\"tok_9fK2\\\"quote/slash x\\u0026y\\u003dz\"}";
    assert_string_equal(find(s, c, strlen(c), NULL), "JSON-escaped");
    /* Not a match: the value cut short. */
    const char *d = "{\"t\":\"tok_9fK2\\\"quote/slash x&y\"}";
    assert_null(find(s, d, strlen(d), NULL));
    pier_secretscan_free(s);
}

static void test_base64_alignments(void **st)
{
    (void)st;
    pier_secretscan *s = scanner();
    /* The secret inside a larger encoded blob at offsets 0..5 (all three
     * alignments twice), standard and URL-safe. */
    for (size_t pad = 0; pad < 6; pad++) {
        for (int url = 0; url < 2; url++) {
            pier_buf raw = PIER_BUF_INIT, enc = PIER_BUF_INIT;
            pier_buf_put(&raw, "\xfb\xff\xfe\x01\x02\x03", pad);
            pier_buf_puts(&raw, "{\"k\":\"" TOKEN "\"}\xff\xfe");
            pier_base64_encode(&enc, raw.ptr, raw.len);
            if (url)
                for (size_t i = 0; i < enc.len; i++)
                    enc.ptr[i] = enc.ptr[i] == '+' ? '-' : enc.ptr[i] == '/' ? '_' : enc.ptr[i];
            const char *name = NULL;
            const char *e = find(s, enc.ptr, enc.len, &name);
            assert_non_null(e);
            assert_string_equal(name, "API_TOKEN");
            assert_true(strncmp(e, "base64", 6) == 0);
            pier_buf_free(&raw);
            pier_buf_free(&enc);
        }
    }
    pier_secretscan_free(s);
}

static void test_url_and_hex(void **st)
{
    (void)st;
    pier_secretscan *s = scanner();
    const char *q1 = "https://x/?t=tok_9fK2%22quote%2Fslash%20x%26y%3Dz&b=1";
    assert_string_equal(find(s, q1, strlen(q1), NULL), "URL-encoded");
    const char *q2 = "t=tok_9fK2%22quote%2fslash+x%26y%3dz";
    assert_string_equal(find(s, q2, strlen(q2), NULL), "URL-encoded");
    /* hex of "hunter2-correct-horse" */
    char hex[64];
    const char *pw = "hunter2-correct-horse";
    for (size_t i = 0; i < strlen(pw); i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)pw[i]);
    const char *name = NULL;
    assert_string_equal(find(s, hex, strlen(hex), &name), "hex");
    assert_string_equal(name, "DB_PASSWORD");
    pier_secretscan_free(s);
}

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/pier-secretscan-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return pier_strdup(tmpl);
}

static void write_file(const char *dir, const char *rel, const void *data, size_t n)
{
    char *p = pier_path_join(dir, rel);
    char *slash = strrchr(p, '/');
    *slash = 0;
    assert_int_equal(pier_file_mkdirs(p, 0755), 0);
    *slash = '/';
    assert_int_equal(pier_file_write_atomic(p, data, n, 0644), 0);
    free(p);
}

static void test_file_across_chunks_and_message(void **st)
{
    (void)st;
    pier_secretscan *s = scanner();
    char *dir = tmpdir();
    /* 64 KiB chunks: put the JSON-escaped value across the boundary at
     * 65536, in a 200 KiB file. */
    size_t n = 200 << 10;
    char *big = pier_malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    const char *esc = "tok_9fK2\\\"quote/slash x&y=z";
    memcpy(big + 65536 - 10, esc, strlen(esc));
    write_file(dir, "index.html", "<html>hello</html>", 18);
    write_file(dir, "assets/app.3f2a.js", big, n);
    pier_secretscan_hit hit = {0};
    int rc = pier_secretscan_dir(s, dir, &hit);
    assert_int_equal(rc, PIER_EINVALID);
    assert_string_equal(hit.file, "assets/app.3f2a.js");
    assert_string_equal(hit.secret, "API_TOKEN");
    assert_string_equal(hit.encoding, "JSON-escaped");
    assert_int_equal(hit.offset, 65536 - 10 + strlen(esc));
    const char *msg = pier_error_last();
    assert_non_null(strstr(msg, "artifact assets/app.3f2a.js contains the value of secret "
                                "API_TOKEN (JSON-escaped)"));
    assert_non_null(strstr(msg, "build.secrets-allowed-in-artifacts"));
    assert_null(strstr(msg, "tok_9fK2"));
    assert_null(strstr(msg, "quote"));
    pier_secretscan_hit_clear(&hit);
    assert_null(hit.file);
    free(big);
    pier_file_remove_tree(dir);
    free(dir);
    pier_secretscan_free(s);
}

static void test_clean_tree_no_false_positive(void **st)
{
    (void)st;
    pier_secretscan *s = scanner();
    char *dir = tmpdir();
    /* Pieces of the secrets and unrelated base64 / hex / JSON: no match. */
    const char *js = "const a = \"tok_9fK2\"; const b = 'quote/slash'; const h = 'hunter2';";
    write_file(dir, "a.js", js, strlen(js));
    unsigned char rnd[4096];
    for (size_t i = 0; i < sizeof rnd; i++)
        rnd[i] = (unsigned char)(i * 131 + 7);
    write_file(dir, "bin/blob.bin", rnd, sizeof rnd);
    pier_buf enc = PIER_BUF_INIT;
    pier_base64_encode(&enc, rnd, sizeof rnd);
    write_file(dir, "bin/blob.b64", enc.ptr, enc.len);
    write_file(dir, "empty.txt", "", 0);
    assert_int_equal(pier_secretscan_dir(s, dir, NULL), 0);
    pier_buf_free(&enc);
    pier_file_remove_tree(dir);
    free(dir);
    pier_secretscan_free(s);
}

static void test_opt_out_and_short(void **st)
{
    (void)st;
    pier_secretscan_secret secrets[] = {
        {"ALLOWED_KEY", "pk_live_public_value", true},
        {"PIN", "123", false},
        {"REAL", "s3cr3t-value", false},
    };
    warns w = {0};
    pier_secretscan *s;
    pier_secretscan_new(&s, secrets, 3, on_warn, &w);
    assert_int_equal(w.count, 2);
    assert_int_equal(pier_secretscan_secret_count(s), 1);
    assert_non_null(strstr(w.last, "PIN"));
    assert_null(strstr(w.last, "123"));
    const char *t1 = "key=pk_live_public_value pin=123";
    assert_null(find(s, t1, strlen(t1), NULL));
    const char *t2 = "x s3cr3t-value";
    assert_string_equal(find(s, t2, strlen(t2), NULL), "plain");
    pier_secretscan_free(s);

    /* No secrets at all: nothing matches, nothing fails. */
    pier_secretscan_new(&s, NULL, 0, on_warn, &w);
    assert_int_equal(pier_secretscan_needle_count(s), 0);
    assert_null(find(s, t2, strlen(t2), NULL));
    assert_int_equal(pier_secretscan_dir(s, "/nonexistent-dir", NULL), 0);
    pier_secretscan_free(s);
}

static void test_missing_file(void **st)
{
    (void)st;
    pier_secretscan *s = scanner();
    assert_int_equal(pier_secretscan_file(s, "/nonexistent/x.js", "x.js", NULL), PIER_ENOTFOUND);
    assert_non_null(strstr(pier_error_last(), "x.js"));
    pier_secretscan_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_json_escaped),
        cmocka_unit_test(test_base64_alignments),
        cmocka_unit_test(test_url_and_hex),
        cmocka_unit_test(test_file_across_chunks_and_message),
        cmocka_unit_test(test_clean_tree_no_false_positive),
        cmocka_unit_test(test_opt_out_and_short),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
