/*
 * test_sigv4_oracle: botocore as the oracle. botocore_oracle.py (run with
 * Debian's /usr/bin/python3) builds real requests with botocore's clients:
 * S3 PutObject and ListObjectsV2, CloudFront CreateInvalidation, STS
 * AssumeRoleWithWebIdentity and CodePipeline PutJobSuccessResult (plus a
 * CloudFront path with an escaped byte and an S3 presigned GET), signed at a
 * fixed time with fixed credentials, a session token on some. For each one
 * pier signs the same method, URL, headers (as they were before botocore
 * signed) and body, and must produce the same Authorization, X-Amz-Date,
 * X-Amz-Security-Token and x-amz-content-sha256; pier's verifier must then
 * accept botocore's signed request. Both botocore signers are run: its own
 * Python code and, when awscrt is installed, the CRT (aws-c-auth) one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "aws/sigv4.h"
#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/url.h"
#include "sigv4_testutil.h"

/* Runs the oracle with the given signer; returns its parsed output. */
static json_t *run_oracle(const char *signer)
{
    const char *src = getenv("PIER_SRC");
    assert_non_null(src);
    char cmd[4096];
    assert_int_equal(pier_str_fmt(cmd, sizeof cmd,
                                  "/usr/bin/python3 '%s/tests/unit/aws/botocore_oracle.py' %s", src,
                                  signer),
                     0);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    pier_buf out = PIER_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        assert_int_equal(pier_buf_put(&out, chunk, n), 0);
    int status = pclose(p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s failed (status %d): %s", cmd, status, pier_buf_cstr(&out));
    json_t *root = NULL;
    if (pier_json_parse(&root, out.ptr, out.len, "botocore_oracle.py"))
        fail_msg("%s", pier_error_last());
    pier_buf_free(&out);
    return root;
}

/* The Host value botocore signs: the URL's host, with the port unless it is
 * the scheme's default. */
static void host_of(char *out, size_t size, const pier_url *u)
{
    bool def = u->port == 0 || (strcmp(u->scheme, "https") == 0 && u->port == 443) ||
               (strcmp(u->scheme, "http") == 0 && u->port == 80);
    if (def)
        snprintf(out, size, "%s", u->host);
    else
        snprintf(out, size, "%s:%d", u->host, u->port);
}

typedef struct {
    const char *key_id; /* the one known key */
    const char *secret; /* its secret */
    const char *token;  /* its session token or NULL */
} keyring;

static int lookup(void *ctx, const char *key_id, pier_sigv4_secret *out)
{
    const keyring *k = ctx;
    if (strcmp(key_id, k->key_id) != 0)
        return PIER_ENOTFOUND;
    pier_buf_puts(&out->secret, k->secret);
    if (k->token)
        pier_buf_puts(&out->session_token, k->token);
    return 0;
}

static const char *jstr_or_null(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void expect_header(const char *what, const pier_http_headers *h, const char *name,
                          const char *want)
{
    const char *got = pier_http_headers_get(h, name);
    if (!want) {
        if (got)
            fail_msg("%s: pier set %s: %s, botocore did not", what, name, got);
        return;
    }
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s: %s\n  botocore: %s\n  pier:     %s", what, name, want, got ? got : "(none)");
}

/* One header-signed request: sign it as pier's client would, compare, then
 * verify botocore's version as pier's server would. */
static void compare_signed(const json_t *r)
{
    const char *name = jstr_or_null(r, "name");
    const char *service = jstr_or_null(r, "service");
    bool s3 = json_is_true(json_object_get(r, "s3"));
    const json_t *expect = json_object_get(r, "expect");
    pier_url u;
    assert_int_equal(pier_url_parse(&u, jstr_or_null(r, "url")), 0);
    char host[300];
    host_of(host, sizeof host, &u);

    /* The body: pier hashes it itself, and it must be what botocore sent. */
    pier_buf body = PIER_BUF_INIT;
    const char *b64 = jstr_or_null(r, "body_b64");
    assert_int_equal(pier_base64_decode(&body, b64, strlen(b64)), 0);
    char body_hash[65];
    pier_sha256_hex(body_hash, body.ptr ? body.ptr : "", body.len);
    assert_string_equal(body_hash, jstr_or_null(r, "body_sha256"));
    if (s3) /* both S3 cases sign the body */
        assert_string_equal(jstr_or_null(expect, "x-amz-content-sha256"), body_hash);

    pier_http_headers h = {0};
    const json_t *hs = json_object_get(r, "headers");
    for (size_t i = 0; i < json_array_size(hs); i++) {
        const json_t *pair = json_array_get(hs, i);
        pier_http_headers_add(&h, json_string_value(json_array_get(pair, 0)),
                              json_string_value(json_array_get(pair, 1)));
    }
    pier_sigv4_credentials cred = {jstr_or_null(r, "access_key"), jstr_or_null(r, "secret"),
                                   jstr_or_null(r, "token")};
    pier_sigv4_options opts = PIER_SIGV4_OPTIONS_INIT;
    if (s3) {
        pier_sigv4_options o3 = PIER_SIGV4_OPTIONS_S3_INIT;
        opts = o3;
    }
    opts.region = jstr_or_null(r, "region");
    opts.service = service;
    time_t now = (time_t)json_integer_value(json_object_get(r, "timestamp"));

    pier_sigv4_request req = {jstr_or_null(r, "method"), host, u.path, u.query, &h, body_hash};
    pier_sigv4_result res;
    pier_sigv4_result_init(&res);
    if (pier_sigv4_sign(&res, &req, &cred, now, &opts) != 0)
        fail_msg("%s: sign: %s", name, pier_error_last());
    const char *want = jstr_or_null(expect, "authorization");
    if (strcmp(pier_buf_cstr(&res.authorization), want) != 0)
        fail_msg("%s: Authorization\n  botocore: %s\n  pier:     %s\ncanonical request:\n%s", name,
                 want, pier_buf_cstr(&res.authorization), pier_buf_cstr(&res.canonical_request));
    expect_header(name, &h, "Authorization", want);
    expect_header(name, &h, "X-Amz-Date", jstr_or_null(expect, "x-amz-date"));
    expect_header(name, &h, "X-Amz-Security-Token", jstr_or_null(expect, "x-amz-security-token"));
    expect_header(name, &h, "x-amz-content-sha256", jstr_or_null(expect, "x-amz-content-sha256"));
    pier_http_headers_free(&h);

    /* pier's server side accepts botocore's request as received: its headers
     * plus those botocore added, and the Host the client sends. */
    for (size_t i = 0; i < json_array_size(hs); i++) {
        const json_t *pair = json_array_get(hs, i);
        pier_http_headers_add(&h, json_string_value(json_array_get(pair, 0)),
                              json_string_value(json_array_get(pair, 1)));
    }
    pier_http_headers_add(&h, "Host", host);
    pier_http_headers_add(&h, "X-Amz-Date", jstr_or_null(expect, "x-amz-date"));
    if (jstr_or_null(expect, "x-amz-security-token"))
        pier_http_headers_add(&h, "X-Amz-Security-Token",
                              jstr_or_null(expect, "x-amz-security-token"));
    if (jstr_or_null(expect, "x-amz-content-sha256"))
        pier_http_headers_add(&h, "X-Amz-Content-SHA256",
                              jstr_or_null(expect, "x-amz-content-sha256"));
    pier_http_headers_add(&h, "Authorization", want);
    keyring k = {cred.access_key_id, cred.secret_access_key, cred.session_token};
    pier_sigv4_verify_options vo = {opts, lookup, &k, 0};
    pier_sigv4_request vreq = {req.method, NULL, u.path, u.query, &h, s3 ? NULL : body_hash};
    pier_sigv4_auth a;
    pier_sigv4_auth_init(&a);
    if (pier_sigv4_verify(&a, &vreq, now + 60, &vo) != 0)
        fail_msg("%s: verify: %s\n%s", name, pier_error_last(),
                 pier_buf_cstr(&a.computed.canonical_request));
    assert_string_equal(a.service, service);
    /* ... and not once the body differs. */
    vreq.payload_hash = s3 ? NULL : PIER_SIGV4_UNSIGNED_PAYLOAD;
    if (s3)
        pier_http_headers_set(&h, "X-Amz-Content-SHA256", PIER_SIGV4_UNSIGNED_PAYLOAD);
    assert_int_equal(pier_sigv4_verify(&a, &vreq, now + 60, &vo), PIER_EAUTH);
    assert_int_equal(a.status, PIER_SIGV4_MISMATCH);

    pier_sigv4_auth_free(&a);
    pier_sigv4_result_free(&res);
    pier_http_headers_free(&h);
    pier_buf_free(&body);
    pier_url_free(&u);
}

/* The presigned GET: pier presigns the same object and must produce the
 * same parameters; pier's verifier accepts botocore's URL until it expires. */
static void compare_presigned(const json_t *r)
{
    const char *name = jstr_or_null(r, "name");
    pier_url u;
    assert_int_equal(pier_url_parse(&u, jstr_or_null(r, "url")), 0);
    char host[300];
    host_of(host, sizeof host, &u);
    pier_sigv4_credentials cred = {jstr_or_null(r, "access_key"), jstr_or_null(r, "secret"),
                                   jstr_or_null(r, "token")};
    pier_sigv4_options opts = PIER_SIGV4_OPTIONS_S3_INIT;
    opts.region = jstr_or_null(r, "region");
    opts.expires = (uint32_t)json_integer_value(json_object_get(r, "expires"));
    time_t now = (time_t)json_integer_value(json_object_get(r, "timestamp"));
    pier_http_headers h = {0};
    pier_sigv4_request req = {"GET", host, u.path, NULL, &h, PIER_SIGV4_UNSIGNED_PAYLOAD};
    pier_sigv4_result res;
    pier_sigv4_result_init(&res);
    assert_int_equal(pier_sigv4_presign(&res, &req, &cred, now, &opts), 0);
    char *want = sorted_params(u.query), *got = sorted_params(pier_buf_cstr(&res.query));
    if (strcmp(want, got) != 0)
        fail_msg("%s: query\n  botocore: %s\n  pier:     %s", name, want, got);
    free(want);
    free(got);

    pier_http_headers_add(&h, "Host", host);
    keyring k = {cred.access_key_id, cred.secret_access_key, cred.session_token};
    pier_sigv4_verify_options vo = {opts, lookup, &k, 0};
    pier_sigv4_request vreq = {"GET", NULL, u.path, u.query, &h, NULL};
    pier_sigv4_auth a;
    pier_sigv4_auth_init(&a);
    if (pier_sigv4_verify(&a, &vreq, now + 60, &vo) != 0)
        fail_msg("%s: verify: %s\n%s", name, pier_error_last(),
                 pier_buf_cstr(&a.computed.canonical_request));
    assert_true(a.presigned);
    assert_int_equal(pier_sigv4_verify(&a, &vreq, now + opts.expires + 1, &vo), PIER_EAUTH);
    assert_int_equal(a.status, PIER_SIGV4_EXPIRED);
    pier_sigv4_auth_free(&a);
    pier_sigv4_result_free(&res);
    pier_http_headers_free(&h);
    pier_url_free(&u);
}

static const char *const required[] = {
    "S3 PutObject",
    "S3 ListObjectsV2",
    "CloudFront CreateInvalidation",
    "STS AssumeRoleWithWebIdentity",
    "CodePipeline PutJobSuccessResult",
};

static void run_signer(const char *signer, bool optional)
{
    json_t *root = run_oracle(signer);
    if (json_object_get(root, "skipped")) {
        if (!optional)
            fail_msg("oracle %s skipped: %s", signer,
                     json_string_value(json_object_get(root, "skipped")));
        print_message("botocore %s signer not available (%s): not compared\n", signer,
                      json_string_value(json_object_get(root, "skipped")));
        json_decref(root);
        return;
    }
    assert_string_equal(jstr_or_null(root, "signer"), signer);
    const json_t *reqs = json_object_get(root, "requests");
    size_t signed_count = 0, presigned_count = 0, found = 0;
    bool token_seen = false;
    for (size_t i = 0; i < json_array_size(reqs); i++) {
        const json_t *r = json_array_get(reqs, i);
        if (json_is_true(json_object_get(r, "presigned"))) {
            compare_presigned(r);
            presigned_count++;
            continue;
        }
        compare_signed(r);
        signed_count++;
        token_seen |= jstr_or_null(r, "token") != NULL;
        for (size_t j = 0; j < sizeof required / sizeof *required; j++)
            found += strcmp(jstr_or_null(r, "name"), required[j]) == 0;
    }
    assert_int_equal(found, 5);
    assert_int_equal(signed_count, 6);
    assert_int_equal(presigned_count, 1);
    assert_true(token_seen);
    print_message("botocore %s signer: %zu header-signed and %zu presigned requests equal\n",
                  signer, signed_count, presigned_count);
    json_decref(root);
}

static void test_botocore_python(void **state)
{
    (void)state;
    run_signer("python", false);
}

static void test_botocore_crt(void **state)
{
    (void)state;
    run_signer("crt", true);
}

int main(void)
{
    /* The oracle runs offline; keep the machine's AWS settings out of it. */
    unsetenv("AWS_CA_BUNDLE");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_botocore_python),
        cmocka_unit_test(test_botocore_crt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
