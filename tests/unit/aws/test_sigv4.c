/*
 * test_sigv4: data-driven SigV4 tests over tests/data/sigv4/ (see its
 * README): the 38 cases of the AWS signing test suite (v4/, header and query
 * signing: 76 vectors) and the 6 worked examples of the S3 docs (s3-docs/,
 * the chunked upload included). For every vector the canonical request, the
 * string to sign, the signature and the signed request are compared; then
 * every signed vector goes back through the verifier, unchanged (accepted)
 * and tampered with (refused with the right status). Malformed
 * Authorization headers, presigned parameters, session tokens, chunk and
 * trailer signatures are checked on their own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"
#include "aws/sigv4internal.h"
#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "sigv4_testutil.h"

/* ---- loading a case ------------------------------------------------------ */

typedef struct {
    char *dir;                 /* the case directory */
    const char *name;          /* its last component */
    bool s3;                   /* an s3-docs case */
    char *method;              /* from the request line */
    char *target;              /* path[?query] as in the request line */
    char *path;                /* target before '?' */
    char *query;               /* after '?', or NULL */
    pier_http_headers headers; /* as in request.txt, folded lines joined by '\n' */
    pier_buf body;             /* after the blank line */
    json_t *ctx;               /* context.json */
    pier_sigv4_credentials cred;
    pier_sigv4_options opts;
    time_t now;          /* the context's timestamp */
    char body_hash[65];  /* SHA-256 of the body */
    const char *payload; /* the payload hash to sign */
} vcase;

static char *read_text(const char *dir, const char *file)
{
    char *path = pier_path_join(dir, file);
    pier_buf b = PIER_BUF_INIT;
    int rc = pier_file_read(path, &b);
    if (rc)
        fail_msg("%s: %s", path, pier_error_last());
    free(path);
    return pier_buf_detach(&b);
}

static bool has_file(const char *dir, const char *file)
{
    char *path = pier_path_join(dir, file);
    bool ok = pier_file_exists(path);
    free(path);
    return ok;
}

/* An expected step file: the text without a final newline. */
static char *read_expected(const char *dir, const char *file)
{
    char *s = read_text(dir, file);
    size_t n = strlen(s);
    if (n && s[n - 1] == '\n')
        s[n - 1] = '\0';
    return s;
}

static void parse_request(vcase *c, const char *text)
{
    const char *nl = strchr(text, '\n');
    assert_non_null(nl);
    const char *sp = memchr(text, ' ', (size_t)(nl - text));
    assert_non_null(sp);
    const char *ver = NULL;
    for (const char *p = sp; p < nl; p++)
        if (strncmp(p, " HTTP/", 6) == 0)
            ver = p;
    assert_non_null(ver);
    c->method = pier_strndup(text, (size_t)(sp - text));
    c->target = pier_strndup(sp + 1, (size_t)(ver - sp - 1));
    char *q = strchr(c->target, '?');
    c->path = q ? pier_strndup(c->target, (size_t)(q - c->target)) : pier_strdup(c->target);
    c->query = q ? pier_strdup(q + 1) : NULL;

    /* Header lines; a line starting with blanks continues the previous one. */
    char *names[32], *values[32];
    size_t n = 0;
    const char *p = nl + 1;
    pier_buf_init(&c->body, 0);
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) {
            pier_buf_puts(&c->body, p + 1);
            break;
        }
        if (p[0] == ' ' || p[0] == '\t') {
            assert_true(n > 0);
            pier_buf v = PIER_BUF_INIT;
            pier_buf_puts(&v, values[n - 1]);
            pier_buf_putc(&v, '\n');
            pier_buf_put(&v, p, len);
            free(values[n - 1]);
            values[n - 1] = pier_buf_detach(&v);
        } else {
            const char *colon = memchr(p, ':', len);
            assert_non_null(colon);
            assert_true(n < 32);
            names[n] = pier_strndup(p, (size_t)(colon - p));
            values[n] = pier_strndup(colon + 1, len - (size_t)(colon - p) - 1);
            n++;
        }
        p += len + (e ? 1 : 0);
    }
    memset(&c->headers, 0, sizeof c->headers);
    for (size_t i = 0; i < n; i++) {
        pier_http_headers_add(&c->headers, names[i], values[i]);
        free(names[i]);
        free(values[i]);
    }
}

static void load_case(vcase *c, const char *dir, bool s3)
{
    memset(c, 0, sizeof *c);
    c->dir = pier_strdup(dir);
    c->name = strrchr(c->dir, '/') + 1;
    c->s3 = s3;
    char *req = read_text(dir, "request.txt");
    parse_request(c, req);
    free(req);
    char *ctx_path = pier_path_join(dir, "context.json");
    if (pier_json_load_file(&c->ctx, ctx_path))
        fail_msg("%s", pier_error_last());
    free(ctx_path);
    json_t *cr = json_object_get(c->ctx, "credentials");
    c->cred.access_key_id = pier_json_str(cr, "access_key_id", NULL);
    c->cred.secret_access_key = pier_json_str(cr, "secret_access_key", NULL);
    c->cred.session_token = pier_json_str(cr, "token", NULL);
    c->opts.region = pier_json_str(c->ctx, "region", NULL);
    c->opts.service = pier_json_str(c->ctx, "service", NULL);
    c->opts.normalize_path = pier_json_bool(c->ctx, "normalize", true);
    /* aws-c-auth runs the suite with double encoding; S3 never double-encodes. */
    c->opts.double_encode = pier_json_bool(c->ctx, "double_uri_encode", true);
    c->opts.sign_content_sha256 = pier_json_bool(c->ctx, "sign_body", false);
    c->opts.omit_session_token = pier_json_bool(c->ctx, "omit_session_token", false);
    c->opts.expires = (uint32_t)pier_json_int(c->ctx, "expiration_in_seconds", 3600);
    assert_int_equal(pier_time_parse(pier_json_str(c->ctx, "timestamp", ""), &c->now), 0);
    pier_sha256_hex(c->body_hash, c->body.ptr ? c->body.ptr : "", c->body.len);
    c->payload = pier_json_str(c->ctx, "payload_hash", c->body_hash);
}

static void free_case(vcase *c)
{
    free(c->dir);
    free(c->method);
    free(c->target);
    free(c->path);
    free(c->query);
    pier_http_headers_free(&c->headers);
    pier_buf_free(&c->body);
    json_decref(c->ctx);
}

static void copy_headers(pier_http_headers *dst, const pier_http_headers *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->count; i++)
        pier_http_headers_add(dst, src->items[i].name, src->items[i].value);
}

static char *serialize(const char *method, const char *target, const pier_http_headers *h,
                       const pier_buf *body)
{
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "%s %s HTTP/1.1\n", method, target);
    for (size_t i = 0; i < h->count; i++)
        pier_buf_printf(&b, "%s:%s\n", h->items[i].name, h->items[i].value);
    pier_buf_putc(&b, '\n');
    pier_buf_put(&b, body->ptr ? body->ptr : "", body->len);
    return pier_buf_detach(&b);
}

static void expect_file(const vcase *c, const char *file, const char *got)
{
    char *want = read_expected(c->dir, file);
    if (strcmp(want, got) != 0)
        fail_msg("%s/%s differs:\n--- expected\n%s\n--- got\n%s", c->name, file, want, got);
    free(want);
}

/* ---- the lookup the verifier calls --------------------------------------- */

typedef struct {
    const char *key_id; /* the only key known */
    const char *secret; /* its secret */
    const char *token;  /* its session token, or NULL */
    bool expired;       /* report the credential as expired */
    int fail;           /* a code to fail with instead */
    int calls;          /* how many lookups */
} keyring;

static int lookup(void *ctx, const char *key_id, pier_sigv4_secret *out)
{
    keyring *k = ctx;
    k->calls++;
    if (k->fail)
        return pier_error_set(k->fail, "lookup failed on purpose");
    if (strcmp(key_id, k->key_id) != 0)
        return PIER_ENOTFOUND;
    pier_buf_puts(&out->secret, k->secret);
    if (k->token)
        pier_buf_puts(&out->session_token, k->token);
    out->expired = k->expired;
    return 0;
}

static keyring ring_for(const vcase *c)
{
    keyring k = {
        c->cred.access_key_id, c->cred.secret_access_key, c->cred.session_token, false, 0, 0};
    return k;
}

static pier_sigv4_verify_options vopts_for(const vcase *c, keyring *k)
{
    pier_sigv4_verify_options o = {c->opts, lookup, k, 0};
    return o;
}

/* Verifies and checks the status; returns nothing, fails the test on a
 * surprise. */
static void expect_verify(const vcase *c, const char *what, const pier_sigv4_request *req,
                          time_t now, const pier_sigv4_verify_options *o, pier_sigv4_status want)
{
    pier_sigv4_auth a;
    pier_sigv4_auth_init(&a);
    int rc = pier_sigv4_verify(&a, req, now, o);
    if (a.status != want)
        fail_msg("%s (%s): status %d, expected %d: %s", c->name, what, a.status, want,
                 pier_error_last());
    if (want == PIER_SIGV4_OK)
        assert_int_equal(rc, 0);
    else if (want == PIER_SIGV4_MALFORMED)
        assert_int_equal(rc, PIER_EINVALID);
    else
        assert_int_equal(rc, PIER_EAUTH);
    if (want != PIER_SIGV4_OK)
        assert_true(pier_error_last()[0] != '\0');
    pier_sigv4_auth_free(&a);
}

/* ---- header signing ------------------------------------------------------ */

/* Round trip of a header-signed request: accepted as is, refused when any
 * part changes. */
static void verify_header_signed(const vcase *c, pier_http_headers *signed_h)
{
    keyring k = ring_for(c);
    pier_sigv4_verify_options o = vopts_for(c, &k);
    /* A non-S3 server hashes the body itself; S3 reads x-amz-content-sha256. */
    pier_sigv4_request req = {c->method, NULL,     c->path,
                              c->query,  signed_h, c->s3 ? NULL : c->body_hash};

    pier_sigv4_auth a;
    pier_sigv4_auth_init(&a);
    if (pier_sigv4_verify(&a, &req, c->now, &o) != 0)
        fail_msg("%s: verify: %s\n%s", c->name, pier_error_last(),
                 pier_buf_cstr(&a.computed.canonical_request));
    assert_int_equal(a.status, PIER_SIGV4_OK);
    assert_false(a.presigned);
    assert_string_equal(a.access_key_id, c->cred.access_key_id);
    assert_string_equal(a.region, c->opts.region);
    assert_string_equal(a.service, c->opts.service);
    assert_memory_equal(a.date, pier_json_str(c->ctx, "timestamp", ""), 4);
    assert_true(pier_sigv4_auth_signed(&a, "host"));
    assert_true(pier_sigv4_auth_signed(&a, "HOST"));
    assert_false(pier_sigv4_auth_signed(&a, "authorization"));
    expect_file(c, "header-canonical-request.txt", pier_buf_cstr(&a.computed.canonical_request));
    pier_sigv4_auth_free(&a);

    /* The scope region must be the server's when it names one. */
    pier_sigv4_verify_options o2 = o;
    o2.sig.region = "eu-west-1";
    expect_verify(c, "wrong region", &req, c->now, &o2, PIER_SIGV4_MALFORMED);
    o2 = o;
    o2.sig.service = "other";
    expect_verify(c, "wrong service", &req, c->now, &o2, PIER_SIGV4_MALFORMED);

    /* Time: 16 minutes either way is too skewed; 14 is fine. */
    expect_verify(c, "now +16 min", &req, c->now + 16 * 60, &o, PIER_SIGV4_SKEWED);
    expect_verify(c, "now -16 min", &req, c->now - 16 * 60, &o, PIER_SIGV4_SKEWED);
    expect_verify(c, "now +14 min", &req, c->now + 14 * 60, &o, PIER_SIGV4_OK);

    /* A changed path or query. */
    pier_buf s = PIER_BUF_INIT;
    pier_buf_printf(&s, "%sx", c->path);
    pier_sigv4_request r2 = req;
    r2.path = pier_buf_cstr(&s);
    expect_verify(c, "path", &r2, c->now, &o, PIER_SIGV4_MISMATCH);
    pier_buf_reset(&s);
    pier_buf_printf(&s, "%s%sextra=1", c->query ? c->query : "", c->query ? "&" : "");
    r2 = req;
    r2.query = pier_buf_cstr(&s);
    expect_verify(c, "query", &r2, c->now, &o, PIER_SIGV4_MISMATCH);
    r2 = req;
    r2.method = strcmp(c->method, "GET") == 0 ? "HEAD" : "GET";
    expect_verify(c, "method", &r2, c->now, &o, PIER_SIGV4_MISMATCH);

    /* A changed body hash. */
    pier_http_headers h2;
    copy_headers(&h2, signed_h);
    r2 = req;
    r2.headers = &h2;
    if (c->s3) {
        pier_http_headers_set(&h2, "x-amz-content-sha256",
                              "0000000000000000000000000000000000000000000000000000000000000000");
    } else {
        r2.payload_hash = PIER_SIGV4_EMPTY_SHA256;
        if (strcmp(c->body_hash, PIER_SIGV4_EMPTY_SHA256) == 0)
            r2.payload_hash = PIER_SIGV4_UNSIGNED_PAYLOAD;
    }
    expect_verify(c, "body hash", &r2, c->now, &o, PIER_SIGV4_MISMATCH);
    pier_http_headers_free(&h2);

    /* A changed signed header: Host. */
    copy_headers(&h2, signed_h);
    pier_buf_reset(&s);
    pier_buf_printf(&s, "x%s", pier_http_headers_get(signed_h, "Host"));
    pier_http_headers_set(&h2, "Host", pier_buf_cstr(&s));
    r2 = req;
    r2.headers = &h2;
    expect_verify(c, "host header", &r2, c->now, &o, PIER_SIGV4_MISMATCH);
    /* A signed header removed. */
    pier_http_headers_remove(&h2, "Host");
    expect_verify(c, "no host header", &r2, c->now, &o, PIER_SIGV4_MISMATCH);
    pier_http_headers_free(&h2);

    /* An unsigned header added or changed does not matter. */
    copy_headers(&h2, signed_h);
    pier_http_headers_add(&h2, "User-Agent", "test/1.0");
    pier_http_headers_add(&h2, "X-Not-Signed", "anything");
    r2 = req;
    r2.headers = &h2;
    expect_verify(c, "unsigned header added", &r2, c->now, &o, PIER_SIGV4_OK);
    pier_http_headers_free(&h2);

    /* The wrong secret, an unknown key, an expired credential, a failing
     * lookup. */
    keyring k2 = k;
    k2.secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEz";
    pier_sigv4_verify_options o3 = vopts_for(c, &k2);
    expect_verify(c, "secret", &req, c->now, &o3, PIER_SIGV4_MISMATCH);
    k2 = k;
    k2.key_id = "AKIDOTHER";
    expect_verify(c, "unknown key", &req, c->now, &o3, PIER_SIGV4_UNKNOWN_KEY);
    k2 = k;
    k2.expired = true;
    expect_verify(c, "expired credential", &req, c->now, &o3, PIER_SIGV4_TOKEN_EXPIRED);
    k2 = k;
    k2.fail = PIER_EIO;
    pier_sigv4_auth a2;
    pier_sigv4_auth_init(&a2);
    assert_int_equal(pier_sigv4_verify(&a2, &req, c->now, &o3), PIER_EIO);
    assert_int_equal(a2.status, PIER_SIGV4_ERROR);
    pier_sigv4_auth_free(&a2);

    /* Session tokens: required when the key has one, and must match. */
    k2 = k;
    k2.token = c->cred.session_token ? "another-token" : "a-token-the-request-lacks";
    expect_verify(c, "token", &req, c->now, &o3,
                  c->cred.session_token ? PIER_SIGV4_TOKEN_INVALID : PIER_SIGV4_TOKEN_MISSING);
    if (c->cred.session_token) {
        k2 = k;
        k2.token = NULL;
        expect_verify(c, "token on a key without one", &req, c->now, &o3, PIER_SIGV4_TOKEN_INVALID);
    }
    pier_buf_free(&s);
}

static void run_header_vector(const vcase *c)
{
    pier_http_headers h;
    copy_headers(&h, &c->headers);
    pier_sigv4_request req = {c->method, NULL, c->path, c->query, &h, c->payload};
    pier_sigv4_result r;
    pier_sigv4_result_init(&r);
    if (pier_sigv4_sign(&r, &req, &c->cred, c->now, &c->opts) != 0)
        fail_msg("%s: sign: %s", c->name, pier_error_last());
    expect_file(c, "header-canonical-request.txt", pier_buf_cstr(&r.canonical_request));
    expect_file(c, "header-string-to-sign.txt", pier_buf_cstr(&r.string_to_sign));
    expect_file(c, "header-signature.txt", r.signature);

    /* The Authorization header, and (suite cases) the whole signed request. */
    char *want = read_text(c->dir, "header-signed-request.txt");
    const char *line = strstr(want, "\nAuthorization:");
    assert_non_null(line);
    line += strlen("\nAuthorization:");
    size_t len = strcspn(line, "\n");
    const char *got = pier_http_headers_get(&h, "Authorization");
    assert_non_null(got);
    if (strlen(got) != len || memcmp(got, line, len) != 0)
        fail_msg("%s: Authorization\n%.*s\n%s", c->name, (int)len, line, got);
    assert_string_equal(got, pier_buf_cstr(&r.authorization));
    if (!c->s3) {
        char *text = serialize(c->method, c->target, &h, &c->body);
        if (strcmp(text, want) != 0)
            fail_msg("%s: signed request\n--- expected\n%s\n--- got\n%s", c->name, want, text);
        free(text);
    }
    free(want);

    /* Signing again (a retry) replaces the headers instead of adding more. */
    size_t count = h.count;
    assert_int_equal(pier_sigv4_sign(NULL, &req, &c->cred, c->now, &c->opts), 0);
    assert_int_equal(h.count, count);
    assert_string_equal(pier_http_headers_get(&h, "Authorization"),
                        pier_buf_cstr(&r.authorization));

    verify_header_signed(c, &h);
    pier_sigv4_result_free(&r);
    pier_http_headers_free(&h);
}

/* ---- query signing (presigned URLs) -------------------------------------- */

static void verify_presigned(const vcase *c, const char *query)
{
    keyring k = ring_for(c);
    pier_sigv4_verify_options o = vopts_for(c, &k);
    pier_sigv4_request req = {c->method,
                              NULL,
                              c->path,
                              query,
                              (pier_http_headers *)&c->headers,
                              c->s3 ? NULL : c->body_hash};
    pier_sigv4_auth a;
    pier_sigv4_auth_init(&a);
    if (pier_sigv4_verify(&a, &req, c->now, &o) != 0)
        fail_msg("%s: verify presigned: %s\n%s", c->name, pier_error_last(),
                 pier_buf_cstr(&a.computed.canonical_request));
    assert_true(a.presigned);
    assert_int_equal(a.expires, c->opts.expires);
    assert_string_equal(a.access_key_id, c->cred.access_key_id);
    expect_file(c, "query-canonical-request.txt", pier_buf_cstr(&a.computed.canonical_request));
    pier_sigv4_auth_free(&a);

    /* Valid until X-Amz-Date + X-Amz-Expires, then expired. */
    expect_verify(c, "at expiry", &req, c->now + c->opts.expires, &o, PIER_SIGV4_OK);
    expect_verify(c, "expired", &req, c->now + c->opts.expires + 1, &o, PIER_SIGV4_EXPIRED);
    expect_verify(c, "not yet valid", &req, c->now - 16 * 60, &o, PIER_SIGV4_SKEWED);

    /* Any change to the URL's parameters breaks it. */
    pier_buf s = PIER_BUF_INIT;
    pier_buf_printf(&s, "extra=1&%s", query);
    pier_sigv4_request r2 = req;
    r2.query = pier_buf_cstr(&s);
    expect_verify(c, "query", &r2, c->now, &o, PIER_SIGV4_MISMATCH);
    pier_buf_reset(&s);
    pier_buf_puts(&s, query);
    char *e = strstr(s.ptr, "X-Amz-Expires=");
    assert_non_null(e);
    e[strlen("X-Amz-Expires=")] = '9';
    r2.query = pier_buf_cstr(&s);
    expect_verify(c, "expires", &r2, c->now, &o, PIER_SIGV4_MISMATCH);
    pier_buf_reset(&s);
    pier_buf_printf(&s, "%sx", c->path);
    r2 = req;
    r2.path = pier_buf_cstr(&s);
    expect_verify(c, "path", &r2, c->now, &o, PIER_SIGV4_MISMATCH);
    keyring k2 = k;
    k2.secret = "not-the-secret";
    pier_sigv4_verify_options o2 = vopts_for(c, &k2);
    expect_verify(c, "secret", &req, c->now, &o2, PIER_SIGV4_MISMATCH);
    pier_buf_free(&s);
}

static void run_query_vector(const vcase *c)
{
    pier_sigv4_request req = {c->method, NULL, c->path, c->query, (pier_http_headers *)&c->headers,
                              c->payload};
    pier_sigv4_result r;
    pier_sigv4_result_init(&r);
    size_t count = c->headers.count;
    if (pier_sigv4_presign(&r, &req, &c->cred, c->now, &c->opts) != 0)
        fail_msg("%s: presign: %s", c->name, pier_error_last());
    assert_int_equal(c->headers.count, count);
    expect_file(c, "query-canonical-request.txt", pier_buf_cstr(&r.canonical_request));
    expect_file(c, "query-string-to-sign.txt", pier_buf_cstr(&r.string_to_sign));
    expect_file(c, "query-signature.txt", r.signature);

    char *want = read_text(c->dir, "query-signed-request.txt");
    pier_buf target = PIER_BUF_INIT;
    pier_buf_printf(&target, "%s?%s", c->path, pier_buf_cstr(&r.query));
    char *text = serialize(c->method, pier_buf_cstr(&target), &c->headers, &c->body);
    if (!c->s3) {
        if (strcmp(text, want) != 0)
            fail_msg("%s: presigned request\n--- expected\n%s\n--- got\n%s", c->name, want, text);
    } else {
        /* The S3 docs list the parameters in another order: compare as sets. */
        const char *q = strchr(want, '?');
        assert_non_null(q);
        char *wq = pier_strndup(q + 1, strcspn(q + 1, " "));
        char *a = sorted_params(wq), *b = sorted_params(pier_buf_cstr(&r.query));
        assert_string_equal(a, b);
        free(a);
        free(b);
        free(wq);
    }
    free(text);
    free(want);

    /* post-sts-header-after leaves the token out of the signature: a URL the
     * verifier (which signs every parameter but the signature) cannot accept. */
    if (c->opts.omit_session_token && c->cred.session_token) {
        keyring k = ring_for(c);
        pier_sigv4_verify_options o = vopts_for(c, &k);
        pier_sigv4_request vr = {
            c->method,   NULL, c->path, pier_buf_cstr(&r.query), (pier_http_headers *)&c->headers,
            c->body_hash};
        expect_verify(c, "unsigned token in a URL", &vr, c->now, &o, PIER_SIGV4_MISMATCH);
    } else {
        verify_presigned(c, pier_buf_cstr(&r.query));
    }
    pier_buf_free(&target);
    pier_sigv4_result_free(&r);
}

/* ---- the suites ---------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The case directories under tests/data/sigv4/<sub>, sorted. */
static size_t list_cases(const char *sub, char ***out)
{
    const char *data = getenv("PIER_TESTDATA");
    assert_non_null(data);
    char *root = pier_path_join(data, "sigv4");
    char *dir = pier_path_join(root, sub);
    DIR *d = opendir(dir);
    assert_non_null(d);
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        names = pier_realloc(names, (n + 1) * sizeof *names);
        names[n++] = pier_path_join(dir, de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, name_cmp);
    free(dir);
    free(root);
    *out = names;
    return n;
}

static void test_aws_suite(void **state)
{
    (void)state;
    char **dirs;
    size_t n = list_cases("v4", &dirs), vectors = 0;
    assert_int_equal(n, 38);
    for (size_t i = 0; i < n; i++) {
        vcase c;
        load_case(&c, dirs[i], false);
        run_header_vector(&c);
        vectors++;
        run_query_vector(&c);
        vectors++;
        free_case(&c);
        free(dirs[i]);
    }
    free(dirs);
    assert_int_equal(vectors, 76);
}

static void run_chunked(const vcase *c, pier_sigv4_chunk *seeded)
{
    /* The chain from the seed, chunk by chunk, against the docs. */
    char *sigs = read_text(c->dir, "chunk-signatures.txt");
    json_t *sizes = json_object_get(c->ctx, "chunk_sizes");
    assert_int_equal(json_array_size(sizes), 3);
    pier_sigv4_chunk chain = *seeded;
    pier_buf body = PIER_BUF_INIT, sts = PIER_BUF_INIT;
    const char *want = sigs;
    for (size_t i = 0; i < 3; i++) {
        size_t n = (size_t)json_integer_value(json_array_get(sizes, i));
        char *data = pier_malloc(n + 1);
        memset(data, 'a', n);
        char hash[65], sig[65];
        pier_sha256_hex(hash, data, n);
        pier_sigv4_chunk before = chain;
        assert_int_equal(pier_sigv4_chunk_sign(&chain, sig, hash, &sts), 0);
        char file[64];
        snprintf(file, sizeof file, "chunk-%zu-string-to-sign.txt", i + 1);
        expect_file(c, file, pier_buf_cstr(&sts));
        assert_memory_equal(sig, want, 64);
        assert_string_equal(chain.prev, sig);
        want += 65;
        /* The framed form, from the state before this chunk. */
        assert_int_equal(pier_sigv4_chunk_write(&before, &body, data, n), 0);
        assert_string_equal(before.prev, sig);
        free(data);
    }
    char *signed_body = read_text(c->dir, "signed-body.txt");
    assert_int_equal(body.len, strlen(signed_body));
    assert_memory_equal(body.ptr, signed_body, body.len);
    assert_int_equal(pier_sigv4_chunked_length(66560, 65536), 66824);
    assert_int_equal(pier_sigv4_chunked_length(0, 65536), 86);
    assert_int_equal(pier_sigv4_chunked_length(65536, 65536), 65626 + 86);
    free(sigs);
    pier_buf_free(&sts);
    pier_buf_free(&body);
    free(signed_body);
}

/* The receiver's side: reads the framed body and verifies every chunk;
 * returns 0 or the first failure. */
static int receive_chunked(pier_sigv4_chunk *chain, const char *body, size_t len, uint64_t *decoded)
{
    size_t pos = 0;
    *decoded = 0;
    for (;;) {
        const char *crlf = strstr(body + pos, "\r\n");
        if (!crlf)
            return PIER_EINVALID;
        pier_slice line = {body + pos, (size_t)(crlf - body - pos)};
        uint64_t size;
        char sig[65];
        int rc = pier_sigv4_chunk_parse_header(line, &size, sig);
        if (rc)
            return rc;
        pos += line.len + 2;
        if (pos + size + 2 > len)
            return PIER_EINVALID;
        char hash[65];
        pier_sha256_hex(hash, body + pos, size);
        rc = pier_sigv4_chunk_verify(chain, sig, hash);
        if (rc)
            return rc;
        pos += size + 2;
        *decoded += size;
        if (size == 0)
            return pos == len ? 0 : PIER_EINVALID;
    }
}

static void verify_chunked(const vcase *c, const pier_http_headers *signed_h)
{
    keyring k = ring_for(c);
    pier_sigv4_verify_options o = vopts_for(c, &k);
    pier_sigv4_request req = {c->method, NULL, c->path, c->query, (pier_http_headers *)signed_h,
                              NULL};
    pier_sigv4_auth a;
    pier_sigv4_auth_init(&a);
    assert_int_equal(pier_sigv4_verify(&a, &req, c->now, &o), 0);
    assert_string_equal(pier_buf_cstr(&a.payload_hash), PIER_SIGV4_STREAMING_PAYLOAD);
    char *body = read_text(c->dir, "signed-body.txt");
    size_t len = strlen(body);
    uint64_t decoded = 0;
    pier_sigv4_chunk chain = a.chunk;
    assert_int_equal(receive_chunked(&chain, body, len, &decoded), 0);
    assert_int_equal(decoded, 66560);

    /* One byte of data changed (in the second chunk, then the first): the
     * chunk that holds it fails. */
    body[66000] = 'b';
    chain = a.chunk;
    assert_int_equal(receive_chunked(&chain, body, len, &decoded), PIER_EAUTH);
    body[66000] = 'a';
    body[100] = 'b';
    chain = a.chunk;
    assert_int_equal(receive_chunked(&chain, body, len, &decoded), PIER_EAUTH);
    body[100] = 'a';
    /* A chunk signature changed. */
    body[30] = body[30] == '0' ? '1' : '0';
    chain = a.chunk;
    assert_int_equal(receive_chunked(&chain, body, len, &decoded), PIER_EAUTH);
    free(body);

    /* Chunks out of order or replayed: the chain does not match. */
    chain = a.chunk;
    char hash[65];
    pier_sha256_hex(hash, "", 0);
    assert_int_equal(pier_sigv4_chunk_verify(&chain,
                                             "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb"
                                             "9323e279d449df9",
                                             hash),
                     PIER_EAUTH);
    /* A failed check leaves the chain where it was. */
    assert_string_equal(chain.prev, a.signature);

    /* A chain seeded from the credential equals the one verify gives. */
    pier_sigv4_chunk c2;
    assert_int_equal(
        pier_sigv4_chunk_init(&c2, &c->cred, a.amz_date, "us-east-1", "s3", a.signature), 0);
    assert_memory_equal(c2.key, a.chunk.key, sizeof c2.key);
    assert_string_equal(c2.scope, a.chunk.scope);
    pier_sigv4_auth_free(&a);
}

static void test_s3_docs(void **state)
{
    (void)state;
    char **dirs;
    size_t n = list_cases("s3-docs", &dirs), header = 0, query = 0, chunked = 0;
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++) {
        vcase c;
        load_case(&c, dirs[i], true);
        if (has_file(c.dir, "header-signature.txt")) {
            run_header_vector(&c);
            header++;
        }
        if (has_file(c.dir, "query-signature.txt")) {
            run_query_vector(&c);
            query++;
        }
        if (has_file(c.dir, "chunk-signatures.txt")) {
            pier_http_headers h;
            copy_headers(&h, &c.headers);
            pier_sigv4_request req = {c.method, NULL, c.path, c.query, &h, c.payload};
            pier_sigv4_result r;
            pier_sigv4_result_init(&r);
            assert_int_equal(pier_sigv4_sign(&r, &req, &c.cred, c.now, &c.opts), 0);
            assert_string_equal(r.chunk.prev, r.signature);
            run_chunked(&c, &r.chunk);
            verify_chunked(&c, &h);
            pier_sigv4_result_free(&r);
            pier_http_headers_free(&h);
            chunked++;
        }
        free_case(&c);
        free(dirs[i]);
    }
    free(dirs);
    assert_int_equal(header, 5);
    assert_int_equal(query, 1);
    assert_int_equal(chunked, 1);
}

/* ---- malformed input ----------------------------------------------------- */

#define SUITE_DATE 1440938160 /* 2015-08-30T12:36:00Z */
#define GOOD_SCOPE "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
#define GOOD_SIG   "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

static void test_malformed_header(void **state)
{
    (void)state;
    static const char *const bad[] = {
        /* missing parts */
        "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE ", SignedHeaders=host;x-amz-date",
        "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE ", Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 ",
        "",
        /* bad scope */
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service, "
        "SignedHeaders=host;x-amz-date, Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/x, "
        "SignedHeaders=host;x-amz-date, Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws5_request, "
        "SignedHeaders=host;x-amz-date, Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830//service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us east/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" GOOD_SIG,
        /* wrong algorithm */
        "AWS4-HMAC-SHA512 Credential=" GOOD_SCOPE ", SignedHeaders=host;x-amz-date, "
        "Signature=" GOOD_SIG,
        "AWS4-ECDSA-P256-SHA256 Credential=" GOOD_SCOPE ", SignedHeaders=host;x-amz-date, "
        "Signature=" GOOD_SIG,
        "AWS AKIDEXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
        "Bearer abc",
        /* bad signature */
        "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE ", SignedHeaders=host;x-amz-date, "
        "Signature=abc",
        "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE ", SignedHeaders=host;x-amz-date, "
        "Signature=5FA00FA31553B73EBF1942676E86291E8372FF2A2260956D9B8AAE1D763FBF31",
        /* bad signed headers */
        "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE ", SignedHeaders=x-amz-date, "
        "Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE ", SignedHeaders=Host;x-amz-date, "
        "Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE ", SignedHeaders=host;;x-amz-date, "
        "Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE ", SignedHeaders=, Signature=" GOOD_SIG,
        /* unknown or repeated parts */
        "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE ", SignedHeaders=host, Signature=" GOOD_SIG
        ", Foo=bar",
        "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE ", Credential=" GOOD_SCOPE
        ", SignedHeaders=host, Signature=" GOOD_SIG,
        "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE " SignedHeaders=host Signature=" GOOD_SIG,
    };
    keyring k = {"AKIDEXAMPLE", "secret", NULL, false, 0, 0};
    pier_sigv4_verify_options o = {PIER_SIGV4_OPTIONS_INIT, lookup, &k, 0};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pier_http_headers h = {0};
        pier_http_headers_add(&h, "Host", "example.amazonaws.com");
        pier_http_headers_add(&h, "X-Amz-Date", "20150830T123600Z");
        pier_http_headers_add(&h, "Authorization", bad[i]);
        pier_sigv4_request req = {"GET", NULL, "/", NULL, &h, PIER_SIGV4_EMPTY_SHA256};
        pier_sigv4_auth a;
        pier_sigv4_auth_init(&a);
        int rc = pier_sigv4_verify(&a, &req, SUITE_DATE, &o);
        if (rc != PIER_EINVALID || a.status != PIER_SIGV4_MALFORMED)
            fail_msg("accepted as well formed (%d, status %d): %s", rc, a.status, bad[i]);
        pier_sigv4_auth_free(&a);
        pier_http_headers_free(&h);
    }
    assert_int_equal(k.calls, 0); /* malformed requests never reach the lookup */

    /* Well formed, with no spaces after the commas (the S3 docs' form): it
     * parses and fails on the signature only. */
    pier_http_headers h = {0};
    pier_http_headers_add(&h, "Host", "example.amazonaws.com");
    pier_http_headers_add(&h, "X-Amz-Date", "20150830T123600Z");
    pier_http_headers_add(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE
                          ",SignedHeaders=host;x-amz-date,Signature=" GOOD_SIG);
    pier_sigv4_request req = {"GET", NULL, "/", NULL, &h, PIER_SIGV4_EMPTY_SHA256};
    pier_sigv4_auth a;
    pier_sigv4_auth_init(&a);
    assert_int_equal(pier_sigv4_parse(&a, &req), 0);
    assert_string_equal(a.access_key_id, "AKIDEXAMPLE");
    assert_string_equal(a.date, "20150830");
    assert_string_equal(a.region, "us-east-1");
    assert_string_equal(a.service, "service");
    assert_string_equal(pier_buf_cstr(&a.signed_headers), "host;x-amz-date");
    assert_string_equal(a.signature, GOOD_SIG);
    assert_int_equal(a.time, SUITE_DATE);
    assert_int_equal(pier_sigv4_verify(&a, &req, SUITE_DATE, &o), PIER_EAUTH);
    assert_int_equal(a.status, PIER_SIGV4_MISMATCH);

    /* No X-Amz-Date, or a bad one. */
    pier_http_headers_remove(&h, "X-Amz-Date");
    assert_int_equal(pier_sigv4_verify(&a, &req, SUITE_DATE, &o), PIER_EINVALID);
    assert_int_equal(a.status, PIER_SIGV4_MALFORMED);
    pier_http_headers_add(&h, "X-Amz-Date", "2015-08-30T12:36:00Z");
    assert_int_equal(pier_sigv4_verify(&a, &req, SUITE_DATE, &o), PIER_EINVALID);
    pier_http_headers_set(&h, "X-Amz-Date", "20150830T993600Z");
    assert_int_equal(pier_sigv4_verify(&a, &req, SUITE_DATE, &o), PIER_EINVALID);

    /* Header and query auth at once. */
    pier_http_headers_set(&h, "X-Amz-Date", "20150830T123600Z");
    req.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256";
    assert_int_equal(pier_sigv4_verify(&a, &req, SUITE_DATE, &o), PIER_EINVALID);
    assert_int_equal(a.status, PIER_SIGV4_MALFORMED);

    /* No auth at all: an anonymous request. */
    pier_http_headers_remove(&h, "Authorization");
    req.query = "prefix=a";
    assert_int_equal(pier_sigv4_verify(&a, &req, SUITE_DATE, &o), PIER_EAUTH);
    assert_int_equal(a.status, PIER_SIGV4_MISSING);
    assert_int_equal(pier_sigv4_parse(&a, &req), PIER_EAUTH);
    assert_int_equal(a.status, PIER_SIGV4_MISSING);

    /* A header-signed request without x-amz-content-sha256, when the caller
     * gives no payload hash. */
    pier_http_headers_add(&h, "Authorization",
                          "AWS4-HMAC-SHA256 Credential=" GOOD_SCOPE
                          ", SignedHeaders=host;x-amz-date, Signature=" GOOD_SIG);
    req.query = NULL;
    req.payload_hash = NULL;
    assert_int_equal(pier_sigv4_verify(&a, &req, SUITE_DATE, &o), PIER_EINVALID);
    pier_http_headers_add(&h, "x-amz-content-sha256", "not-a-hash");
    assert_int_equal(pier_sigv4_verify(&a, &req, SUITE_DATE, &o), PIER_EINVALID);
    assert_int_equal(a.status, PIER_SIGV4_MALFORMED);
    pier_sigv4_auth_free(&a);
    pier_http_headers_free(&h);
}

static void test_malformed_query(void **state)
{
    (void)state;
#define Q_ALG  "X-Amz-Algorithm=AWS4-HMAC-SHA256"
#define Q_CRED "X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request"
#define Q_DATE "X-Amz-Date=20150830T123600Z"
#define Q_SH   "X-Amz-SignedHeaders=host"
#define Q_EXP  "X-Amz-Expires=3600"
#define Q_SIG  "X-Amz-Signature=" GOOD_SIG
    static const char *const bad[] = {
        Q_CRED "&" Q_DATE "&" Q_EXP "&" Q_SH "&" Q_SIG,
        Q_ALG "&" Q_DATE "&" Q_EXP "&" Q_SH "&" Q_SIG,
        Q_ALG "&" Q_CRED "&" Q_EXP "&" Q_SH "&" Q_SIG,
        Q_ALG "&" Q_CRED "&" Q_DATE "&" Q_SH "&" Q_SIG,
        Q_ALG "&" Q_CRED "&" Q_DATE "&" Q_EXP "&" Q_SIG,
        Q_ALG "&" Q_CRED "&" Q_DATE "&" Q_EXP "&" Q_SH,
        "X-Amz-Algorithm=AWS4-HMAC-SHA1&" Q_CRED "&" Q_DATE "&" Q_EXP "&" Q_SH "&" Q_SIG,
        Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=604801&" Q_SH "&" Q_SIG,
        Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=0&" Q_SH "&" Q_SIG,
        Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=-5&" Q_SH "&" Q_SIG,
        Q_ALG "&" Q_CRED "&" Q_DATE "&X-Amz-Expires=1h&" Q_SH "&" Q_SIG,
        Q_ALG "&" Q_CRED "&" Q_DATE "&" Q_EXP "&" Q_SH "&" Q_SIG "&" Q_SIG,
        Q_ALG "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice&" Q_DATE "&" Q_EXP
              "&" Q_SH "&" Q_SIG,
        Q_ALG "&X-Amz-Credential=AKIDEXAMPLE%2G20150830&" Q_DATE "&" Q_EXP "&" Q_SH "&" Q_SIG,
        Q_ALG "&" Q_CRED "&X-Amz-Date=20150831T123600Z&" Q_EXP "&" Q_SH "&" Q_SIG,
        Q_ALG "&" Q_CRED "&" Q_DATE "&" Q_EXP "&X-Amz-SignedHeaders=x-amz-date&" Q_SIG,
        Q_ALG "&" Q_CRED "&" Q_DATE "&" Q_EXP "&" Q_SH "&X-Amz-Signature=xyz",
        /* a signature with no algorithm at all */
        Q_SIG,
    };
    keyring k = {"AKIDEXAMPLE", "secret", NULL, false, 0, 0};
    pier_sigv4_verify_options o = {PIER_SIGV4_OPTIONS_INIT, lookup, &k, 0};
    pier_http_headers h = {0};
    pier_http_headers_add(&h, "Host", "example.amazonaws.com");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pier_sigv4_request req = {"GET", NULL, "/", bad[i], &h, NULL};
        pier_sigv4_auth a;
        pier_sigv4_auth_init(&a);
        int rc = pier_sigv4_verify(&a, &req, SUITE_DATE, &o);
        if (rc != PIER_EINVALID || a.status != PIER_SIGV4_MALFORMED)
            fail_msg("accepted as well formed (%d, status %d): %s", rc, a.status, bad[i]);
        assert_true(a.presigned);
        int http = 0;
        assert_string_equal(pier_sigv4_status_code(a.status, a.presigned, &http),
                            "AuthorizationQueryParametersError");
        assert_int_equal(http, 400);
        pier_sigv4_auth_free(&a);
    }
    assert_int_equal(k.calls, 0);
    pier_http_headers_free(&h);
}

/* Session tokens for presigned URLs, from the suite's token case. */
static void test_session_token(void **state)
{
    (void)state;
    pier_sigv4_credentials cred = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                   "tok/en+with=chars"};
    pier_sigv4_options opts = PIER_SIGV4_OPTIONS_S3_INIT;
    opts.region = "us-east-1";
    pier_http_headers h = {0};
    pier_http_headers_add(&h, "Host", "bucket.s3.amazonaws.com");
    pier_sigv4_request req = {"GET",         NULL, "/key%20with%20space",
                              "versionId=3", &h,   PIER_SIGV4_UNSIGNED_PAYLOAD};
    pier_sigv4_result r;
    pier_sigv4_result_init(&r);
    assert_int_equal(pier_sigv4_presign(&r, &req, &cred, SUITE_DATE, &opts), 0);
    assert_non_null(strstr(pier_buf_cstr(&r.query),
                           "&X-Amz-Security-Token=tok%2Fen%2Bwith%3Dchars&X-Amz-Signature="));
    assert_true(pier_str_starts_with(pier_buf_cstr(&r.query), "versionId=3&X-Amz-Algorithm="));

    keyring k = {"AKIDEXAMPLE", cred.secret_access_key, cred.session_token, false, 0, 0};
    pier_sigv4_verify_options o = {opts, lookup, &k, 0};
    pier_sigv4_request v = {"GET", NULL, "/key%20with%20space", pier_buf_cstr(&r.query), &h, NULL};
    pier_sigv4_auth a;
    pier_sigv4_auth_init(&a);
    assert_int_equal(pier_sigv4_verify(&a, &v, SUITE_DATE + 60, &o), 0);
    k.token = "other";
    assert_int_equal(pier_sigv4_verify(&a, &v, SUITE_DATE + 60, &o), PIER_EAUTH);
    assert_int_equal(a.status, PIER_SIGV4_TOKEN_INVALID);
    k.token = NULL;
    assert_int_equal(pier_sigv4_verify(&a, &v, SUITE_DATE + 60, &o), PIER_EAUTH);
    assert_int_equal(a.status, PIER_SIGV4_TOKEN_INVALID);

    /* Header signing with a token: the header is added and signed. */
    k.token = cred.session_token;
    pier_sigv4_request s = {"PUT", NULL, "/key", NULL, &h, PIER_SIGV4_EMPTY_SHA256};
    assert_int_equal(pier_sigv4_sign(&r, &s, &cred, SUITE_DATE, &opts), 0);
    assert_string_equal(pier_http_headers_get(&h, "X-Amz-Security-Token"), cred.session_token);
    assert_string_equal(pier_buf_cstr(&r.signed_headers),
                        "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
    s.payload_hash = NULL;
    assert_int_equal(pier_sigv4_verify(&a, &s, SUITE_DATE, &o), 0);
    /* Without the token header: refused as missing. */
    pier_http_headers_remove(&h, "X-Amz-Security-Token");
    assert_int_equal(pier_sigv4_verify(&a, &s, SUITE_DATE, &o), PIER_EAUTH);
    assert_int_equal(a.status, PIER_SIGV4_TOKEN_MISSING);
    pier_sigv4_auth_free(&a);
    pier_sigv4_result_free(&r);
    pier_http_headers_free(&h);
}

/* What a presigned URL signs as the payload: UNSIGNED-PAYLOAD, or its own
 * X-Amz-Content-Sha256 parameter; never a header added on the way. */
static void test_presigned_payload(void **state)
{
    (void)state;
    pier_sigv4_credentials cred = {"AKIDEXAMPLE", "secret", NULL};
    pier_sigv4_options opts = PIER_SIGV4_OPTIONS_S3_INIT;
    opts.region = "us-east-1";
    const char *hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    pier_http_headers h = {0};
    pier_http_headers_add(&h, "Host", "bucket.s3.amazonaws.com");
    keyring k = {"AKIDEXAMPLE", "secret", NULL, false, 0, 0};
    pier_sigv4_verify_options o = {opts, lookup, &k, 0};
    pier_sigv4_auth a;
    pier_sigv4_auth_init(&a);
    pier_sigv4_result r;
    pier_sigv4_result_init(&r);

    pier_sigv4_request req = {"PUT", NULL, "/k", NULL, &h, PIER_SIGV4_UNSIGNED_PAYLOAD};
    assert_int_equal(pier_sigv4_presign(&r, &req, &cred, SUITE_DATE, &opts), 0);
    pier_http_headers_add(&h, "x-amz-content-sha256", hash);
    pier_sigv4_request v = {"PUT", NULL, "/k", pier_buf_cstr(&r.query), &h, NULL};
    assert_int_equal(pier_sigv4_verify(&a, &v, SUITE_DATE, &o), 0);
    assert_string_equal(pier_buf_cstr(&a.payload_hash), PIER_SIGV4_UNSIGNED_PAYLOAD);

    pier_buf q = PIER_BUF_INIT;
    pier_buf_printf(&q, "X-Amz-Content-Sha256=%s", hash);
    req.query = pier_buf_cstr(&q);
    req.payload_hash = hash;
    assert_int_equal(pier_sigv4_presign(&r, &req, &cred, SUITE_DATE, &opts), 0);
    v.query = pier_buf_cstr(&r.query);
    assert_int_equal(pier_sigv4_verify(&a, &v, SUITE_DATE, &o), 0);
    assert_string_equal(pier_buf_cstr(&a.payload_hash), hash);
    /* The struct is reused: nothing of the earlier request stays. */
    pier_http_headers h2 = {0};
    v.headers = &h2;
    v.query = "x=1";
    assert_int_equal(pier_sigv4_verify(&a, &v, SUITE_DATE, &o), PIER_EAUTH);
    assert_int_equal(a.status, PIER_SIGV4_MISSING);
    assert_false(a.presigned);
    assert_int_equal(a.expires, 0);
    assert_string_equal(a.access_key_id, "");
    pier_buf_free(&q);
    pier_sigv4_result_free(&r);
    pier_sigv4_auth_free(&a);
    pier_http_headers_free(&h);
}

/* Path and query canonicalization beyond the suite. */
static void test_canonical_forms(void **state)
{
    (void)state;
    pier_sigv4_credentials cred = {"AKIDEXAMPLE", "secret", NULL};
    struct {
        const char *path, *query;
        bool s3;
        const char *want_path, *want_query;
    } cases[] = {
        /* S3: encoded input kept; raw bytes encoded; %2F kept; no normalizing */
        {"/b/a%20b%2Bc", NULL, true, "/b/a%20b%2Bc", ""},
        {"/b/a b+c", NULL, true, "/b/a%20b%2Bc", ""},
        {"/b/dir%2Fkey", NULL, true, "/b/dir%2Fkey", ""},
        {"/b/%7euser/./x//y", NULL, true, "/b/~user/./x//y", ""},
        {"", NULL, true, "/", ""},
        /* others: normalized, then encoded again */
        {"/a%20b/../c", NULL, false, "/c", ""},
        {"/a%20b", NULL, false, "/a%2520b", ""},
        {"", NULL, false, "/", ""},
        {"/..", NULL, false, "/", ""},
        /* queries: decoded then encoded, sorted by name then value */
        {"/", "b=2&a=1&a=0&c", true, "/", "a=0&a=1&b=2&c="},
        {"/", "k=a+b&k2=a%2Bb&k3=%7e&k4=a%2fb", true, "/", "k=a%20b&k2=a%2Bb&k3=~&k4=a%2Fb"},
        {"/", "&&x=1&", true, "/", "x=1"},
        {"/", "list-type=2&prefix=site%2F&delimiter=%2F", true, "/",
         "delimiter=%2F&list-type=2&prefix=site%2F"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pier_sigv4_options opts = PIER_SIGV4_OPTIONS_INIT;
        if (cases[i].s3) {
            pier_sigv4_options s3 = PIER_SIGV4_OPTIONS_S3_INIT;
            opts = s3;
        }
        opts.region = "us-east-1";
        opts.service = cases[i].s3 ? "s3" : "service";
        pier_http_headers h = {0};
        pier_sigv4_request req = {"GET", "h", cases[i].path, cases[i].query, &h, NULL};
        pier_sigv4_result r;
        pier_sigv4_result_init(&r);
        assert_int_equal(pier_sigv4_sign(&r, &req, &cred, SUITE_DATE, &opts), 0);
        pier_buf want = PIER_BUF_INIT;
        pier_buf_printf(&want, "GET\n%s\n%s\nhost:h\n", cases[i].want_path, cases[i].want_query);
        if (!pier_str_starts_with(pier_buf_cstr(&r.canonical_request), pier_buf_cstr(&want)))
            fail_msg("case %zu:\n%s\n--- want prefix\n%s", i, pier_buf_cstr(&r.canonical_request),
                     pier_buf_cstr(&want));
        pier_buf_free(&want);
        pier_sigv4_result_free(&r);
        pier_http_headers_free(&h);
    }

    /* Unsigned headers are left out; duplicates and blanks fold. */
    pier_sigv4_options opts = PIER_SIGV4_OPTIONS_INIT;
    opts.region = "us-east-1";
    opts.service = "service";
    pier_http_headers h = {0};
    pier_http_headers_add(&h, "Host", "h");
    pier_http_headers_add(&h, "User-Agent", "x");
    pier_http_headers_add(&h, "Expect", "100-continue");
    pier_http_headers_add(&h, "X-Amzn-Trace-Id", "t");
    pier_http_headers_add(&h, "Authorization", "old");
    pier_http_headers_add(&h, "X-B", " \t two  \r\n words ");
    pier_http_headers_add(&h, "x-b", "");
    pier_http_headers_add(&h, "X-A", "1");
    pier_sigv4_request req = {"POST", NULL, "/", NULL, &h, NULL};
    pier_sigv4_result r;
    pier_sigv4_result_init(&r);
    assert_int_equal(pier_sigv4_sign(&r, &req, &cred, SUITE_DATE, &opts), 0);
    assert_string_equal(pier_buf_cstr(&r.canonical_request),
                        "POST\n/\n\nhost:h\nx-a:1\nx-amz-date:20150830T123600Z\nx-b:two words,\n\n"
                        "host;x-a;x-amz-date;x-b\n" PIER_SIGV4_EMPTY_SHA256);
    pier_sigv4_result_free(&r);
    pier_http_headers_free(&h);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    pier_sigv4_credentials cred = {"AKIDEXAMPLE", "secret", NULL};
    pier_sigv4_options opts = PIER_SIGV4_OPTIONS_INIT;
    pier_http_headers h = {0};
    pier_sigv4_request req = {"GET", "h", "/", NULL, &h, NULL};
    /* no region, no service */
    assert_int_equal(pier_sigv4_sign(NULL, &req, &cred, SUITE_DATE, &opts), PIER_EINVALID);
    opts.region = "us-east-1";
    assert_int_equal(pier_sigv4_sign(NULL, &req, &cred, SUITE_DATE, &opts), PIER_EINVALID);
    opts.service = "s3/x";
    assert_int_equal(pier_sigv4_sign(NULL, &req, &cred, SUITE_DATE, &opts), PIER_EINVALID);
    opts.service = "s3";
    /* bad payload hash, missing credential parts, no host */
    req.payload_hash = "abc";
    assert_int_equal(pier_sigv4_sign(NULL, &req, &cred, SUITE_DATE, &opts), PIER_EINVALID);
    req.payload_hash = NULL;
    pier_sigv4_credentials nokey = {"", "secret", NULL};
    assert_int_equal(pier_sigv4_sign(NULL, &req, &nokey, SUITE_DATE, &opts), PIER_EINVALID);
    pier_sigv4_credentials nosecret = {"AKID", NULL, NULL};
    assert_int_equal(pier_sigv4_sign(NULL, &req, &nosecret, SUITE_DATE, &opts), PIER_EINVALID);
    req.host = NULL;
    assert_int_equal(pier_sigv4_sign(NULL, &req, &cred, SUITE_DATE, &opts), PIER_EINVALID);
    req.host = "h";
    /* presign: expiry bounds */
    pier_sigv4_result r;
    pier_sigv4_result_init(&r);
    opts.expires = 0;
    assert_int_equal(pier_sigv4_presign(&r, &req, &cred, SUITE_DATE, &opts), PIER_EINVALID);
    opts.expires = PIER_SIGV4_MAX_EXPIRES + 1;
    assert_int_equal(pier_sigv4_presign(&r, &req, &cred, SUITE_DATE, &opts), PIER_EINVALID);
    opts.expires = PIER_SIGV4_MAX_EXPIRES;
    assert_int_equal(pier_sigv4_presign(&r, &req, &cred, SUITE_DATE, &opts), 0);
    assert_non_null(strstr(pier_buf_cstr(&r.query), "X-Amz-Expires=604800"));
    pier_sigv4_result_free(&r);
    /* verify without a lookup */
    pier_sigv4_auth a;
    pier_sigv4_auth_init(&a);
    pier_sigv4_verify_options vo = {PIER_SIGV4_OPTIONS_INIT, NULL, NULL, 0};
    assert_int_equal(pier_sigv4_verify(&a, &req, SUITE_DATE, &vo), PIER_EINVALID);
    pier_sigv4_auth_free(&a);
    pier_http_headers_free(&h);
}

static void test_status_codes(void **state)
{
    (void)state;
    int http = 0;
    assert_null(pier_sigv4_status_code(PIER_SIGV4_OK, false, &http));
    assert_int_equal(http, 200);
    assert_string_equal(pier_sigv4_status_code(PIER_SIGV4_MISMATCH, false, &http),
                        "SignatureDoesNotMatch");
    assert_int_equal(http, 403);
    assert_string_equal(pier_sigv4_status_code(PIER_SIGV4_UNKNOWN_KEY, false, &http),
                        "InvalidAccessKeyId");
    assert_string_equal(pier_sigv4_status_code(PIER_SIGV4_SKEWED, false, &http),
                        "RequestTimeTooSkewed");
    assert_int_equal(http, 403);
    assert_string_equal(pier_sigv4_status_code(PIER_SIGV4_EXPIRED, true, &http), "AccessDenied");
    assert_string_equal(pier_sigv4_status_code(PIER_SIGV4_TOKEN_EXPIRED, false, &http),
                        "ExpiredToken");
    assert_int_equal(http, 400);
    assert_string_equal(pier_sigv4_status_code(PIER_SIGV4_MALFORMED, false, NULL),
                        "AuthorizationHeaderMalformed");
    assert_string_equal(pier_sigv4_status_code(PIER_SIGV4_MISSING, false, NULL), "AccessDenied");
    assert_string_equal(pier_sigv4_status_code(PIER_SIGV4_TOKEN_INVALID, false, NULL),
                        "InvalidToken");
}

static void test_chunk_frames(void **state)
{
    (void)state;
    uint64_t size = 0;
    char sig[65];
    const char *ok = "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a"
                     "503ef5497";
    assert_int_equal(pier_sigv4_chunk_parse_header(pier_slice_from(ok), &size, sig), 0);
    assert_int_equal(size, 1024);
    assert_string_equal(sig, ok + 20);
    static const char *const bad[] = {
        "",
        "400",
        ";chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef549",
        "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef54977",
        "400;chunk-signaturX=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "4g0;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "400;chunk-signature=0055627C9E194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "11111111111111111;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b8"
        "6a503ef5497",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (pier_sigv4_chunk_parse_header(pier_slice_from(bad[i]), &size, sig) != PIER_EINVALID)
            fail_msg("accepted chunk header: %s", bad[i]);

    /* An unseeded chain refuses to sign; bad hashes are refused. */
    pier_sigv4_chunk c;
    memset(&c, 0, sizeof c);
    assert_int_equal(pier_sigv4_chunk_sign(&c, sig, PIER_SIGV4_EMPTY_SHA256, NULL), PIER_EINVALID);
    pier_sigv4_credentials cred = {"AKIAIOSFODNN7EXAMPLE",
                                   "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};
    assert_int_equal(pier_sigv4_chunk_init(&c, &cred, "20130524T000000Z", "us-east-1", "s3", "bad"),
                     PIER_EINVALID);
    assert_int_equal(
        pier_sigv4_chunk_init(&c, &cred, "20130524T000000Z", "us-east-1", "s3",
                              "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"),
        0);
    assert_int_equal(pier_sigv4_chunk_sign(&c, sig, "xyz", NULL), PIER_EINVALID);
    /* The docs' first chunk: 64 KiB of 'a'. */
    char *data = pier_malloc(65536);
    memset(data, 'a', 65536);
    char hash[65];
    pier_sha256_hex(hash, data, 65536);
    free(data);
    assert_int_equal(pier_sigv4_chunk_sign(&c, sig, hash, NULL), 0);
    assert_string_equal(sig, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
}

/* The trailer form: "AWS4-HMAC-SHA256-TRAILER" chained after the last
 * chunk, over the SHA-256 of the trailing header lines. */
static void test_trailer(void **state)
{
    (void)state;
    pier_sigv4_credentials cred = {"AKIAIOSFODNN7EXAMPLE",
                                   "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};
    const char *seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
    pier_sigv4_chunk sender, receiver;
    assert_int_equal(
        pier_sigv4_chunk_init(&sender, &cred, "20130524T000000Z", "us-east-1", "s3", seed), 0);
    receiver = sender;
    char sig[65], hash[65];
    pier_sha256_hex(hash, "", 0);
    assert_int_equal(pier_sigv4_chunk_sign(&sender, sig, hash, NULL), 0);
    assert_int_equal(pier_sigv4_chunk_verify(&receiver, sig, hash), 0);
    const char *trailer = "x-amz-checksum-crc32c:sOO8/Q==\n";
    pier_buf sts = PIER_BUF_INIT;
    char last[65];
    memcpy(last, sender.prev, 65);
    assert_int_equal(pier_sigv4_trailer_sign(&sender, sig, trailer, strlen(trailer), &sts), 0);
    char th[65];
    pier_sha256_hex(th, trailer, strlen(trailer));
    pier_buf want = PIER_BUF_INIT;
    pier_buf_printf(&want,
                    "AWS4-HMAC-SHA256-TRAILER\n20130524T000000Z\n"
                    "20130524/us-east-1/s3/aws4_request\n%s\n%s",
                    last, th);
    assert_string_equal(pier_buf_cstr(&sts), pier_buf_cstr(&want));
    pier_sigv4_chunk copy = receiver;
    assert_int_equal(pier_sigv4_trailer_verify(&copy, sig, "x-amz-checksum-crc32c:AAAAAA==\n", 31),
                     PIER_EAUTH);
    assert_int_equal(pier_sigv4_trailer_verify(&receiver, sig, trailer, strlen(trailer)), 0);
    pier_buf_free(&sts);
    pier_buf_free(&want);
}

/* The signing key, derived by hand, for a sequence of inputs that hits and
 * misses the per-thread cache (same scope, another secret, another day). */
static void manual_key(unsigned char out[PIER_SHA256_LEN], const char *secret, const char *date,
                       const char *region, const char *service)
{
    char k[128];
    snprintf(k, sizeof k, "AWS4%s", secret);
    unsigned char a[PIER_SHA256_LEN], b[PIER_SHA256_LEN];
    pier_hmac_sha256(a, k, strlen(k), date, 8);
    pier_hmac_sha256(b, a, sizeof a, region, strlen(region));
    pier_hmac_sha256(a, b, sizeof b, service, strlen(service));
    pier_hmac_sha256(out, a, sizeof a, "aws4_request", 12);
}

static void test_signing_key_cache(void **state)
{
    (void)state;
    static const char *const in[][4] = {
        {"secret-one", "20240101", "us-east-1", "s3"},
        {"secret-one", "20240101", "us-east-1", "s3"},
        {"secret-two", "20240101", "us-east-1", "s3"},
        {"secret-one", "20240101", "us-east-1", "s3"},
        {"secret-one", "20240102", "us-east-1", "s3"},
        {"secret-one", "20240102", "eu-west-1", "s3"},
        {"secret-one", "20240102", "eu-west-1", "cloudfront"},
        {"secret-one", "20240102", "eu-west-1", "cloudfront"},
    };
    for (size_t i = 0; i < sizeof in / sizeof *in; i++) {
        unsigned char got[PIER_SHA256_LEN], want[PIER_SHA256_LEN];
        pier_sigv4_signing_key(got, in[i][0], in[i][1], in[i][2], in[i][3]);
        manual_key(want, in[i][0], in[i][1], in[i][2], in[i][3]);
        assert_memory_equal(got, want, sizeof want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aws_suite),        cmocka_unit_test(test_s3_docs),
        cmocka_unit_test(test_malformed_header), cmocka_unit_test(test_malformed_query),
        cmocka_unit_test(test_session_token),    cmocka_unit_test(test_presigned_payload),
        cmocka_unit_test(test_canonical_forms),  cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_status_codes),     cmocka_unit_test(test_chunk_frames),
        cmocka_unit_test(test_trailer),          cmocka_unit_test(test_signing_key_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
