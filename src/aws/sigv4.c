/*
 * sigv4: AWS Signature Version 4 signing and presigning, and the canonical
 * steps every side shares. See sigv4.h for the API. Verification (parse,
 * check, recompute, compare) is in sigv4verify.c and the aws-chunked chain
 * of chunk signatures in sigv4chunk.c; both use the steps below through
 * sigv4internal.h, and signing and verifying seed the chunk chain.
 *
 * The procedure is linear and written as a chain of small static steps (the
 * habit of curl's lib/http_aws_sigv4.c):
 *
 *   canon_path     normalize (optional), then encode once more or re-encode
 *   canon_query    split on '&', re-encode names and values, sort, join
 *   canon_headers  lowercase names, trim and collapse values, join
 *                  duplicates with ',', sort; or follow a SignedHeaders list
 *   canon_request  method \n path \n query \n headers \n signed \n payload
 *   string_to_sign algorithm \n date \n scope \n hex(sha256(creq))
 *   pier_sigv4_signing_key    HMAC chain "AWS4"+secret -> date -> region -> service
 *                  -> "aws4_request"
 *   signature      hex(HMAC(key, string_to_sign))
 *
 * Signing, presigning and verification differ only in where the inputs come
 * from and what is done with the result. Nothing here reads a clock or the
 * network.
 *
 * Costs: one pass over each input plus a sort of the query parameters and
 * the headers (n log n); five HMACs and one SHA-256 of the canonical request
 * per signature. Every buffer is a capped pier_buf, so a hostile request
 * cannot grow memory past the buffer cap.
 */
#include "aws/sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/sigv4internal.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((rc = (expr)) != 0)                                                                    \
            goto done;                                                                             \
    } while (0)

/* Headers never signed by pier: hop-by-hop or rewritten on the way (botocore
 * skips the same user-agent, expect and x-amzn-trace-id). */
static const char *const unsigned_headers[] = {
    "authorization", "connection", "expect", "transfer-encoding", "user-agent", "x-amzn-trace-id",
};

/* ---- small helpers ------------------------------------------------------ */

bool pier_sigv4_is_hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool pier_sigv4_is_signature(const char *s)
{
    return s && strlen(s) == 64 && pier_sigv4_is_hex_lower(s, 64);
}

bool pier_sigv4_is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

int pier_sigv4_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Appends s[0..n) with each %XX decoded and every byte then encoded by the
 * SigV4 rules; '/' is kept only where it was literal and keep_slash is set,
 * so an encoded "%2F" stays encoded. '+' means a space when plus_space. */
static int reencode(pier_buf *out, const char *s, size_t n, bool keep_slash, bool plus_space)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && pier_sigv4_hexval(s[i + 1]) >= 0 &&
            pier_sigv4_hexval(s[i + 2]) >= 0) {
            char d = (char)(pier_sigv4_hexval(s[i + 1]) * 16 + pier_sigv4_hexval(s[i + 2]));
            rc = pier_uri_encode(out, &d, 1, false);
            i += 2;
        } else if (c == '+' && plus_space) {
            rc = pier_buf_puts(out, "%20");
        } else {
            rc = pier_uri_encode(out, &c, 1, keep_slash);
        }
    }
    return rc;
}

/* The credential scope "YYYYMMDD/region/service/aws4_request". */
int pier_sigv4_make_scope(char *out, size_t size, const char *date8, const char *region,
                          const char *service)
{
    return pier_str_fmt(out, size, "%.8s/%s/%s/aws4_request", date8, region, service);
}

/* ---- step: canonical URI ------------------------------------------------ */

/* Removes "." and ".." segments and empty segments ("//"), as botocore's
 * remove_dot_segments: a leading '/' is kept, a trailing '/' kept when
 * something remains. */
static int remove_dot_segments(pier_buf *out, const char *path)
{
    size_t n = strlen(path), nseg = 0, count = 1;
    for (size_t i = 0; i < n; i++)
        count += path[i] == '/';
    pier_slice *seg = pier_calloc(count, sizeof *seg);
    const char *p = path, *end = path + n;
    while (p <= end) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        if (!q)
            q = end;
        size_t len = (size_t)(q - p);
        if (len == 0 || (len == 1 && p[0] == '.')) {
            /* empty or "." */
        } else if (len == 2 && p[0] == '.' && p[1] == '.') {
            if (nseg)
                nseg--;
        } else {
            seg[nseg++] = (pier_slice){p, len};
        }
        p = q + 1;
    }
    int rc = 0;
    if (n && path[0] == '/')
        rc = pier_buf_putc(out, '/');
    for (size_t i = 0; i < nseg && !rc; i++) {
        if (i)
            rc = pier_buf_putc(out, '/');
        if (!rc)
            rc = pier_buf_put_slice(out, seg[i]);
    }
    if (!rc && nseg && n && path[n - 1] == '/')
        rc = pier_buf_putc(out, '/');
    free(seg);
    return rc;
}

int pier_sigv4_canon_path(pier_buf *out, const char *path, bool normalize, bool double_encode)
{
    pier_buf norm = PIER_BUF_INIT;
    int rc = 0;
    if (!path || !path[0])
        path = "/";
    if (normalize) {
        TRY(remove_dot_segments(&norm, path));
        path = norm.len ? pier_buf_cstr(&norm) : "/";
    }
    if (double_encode)
        TRY(pier_uri_encode(out, path, strlen(path), true));
    else
        TRY(reencode(out, path, strlen(path), true, false));
done:
    pier_buf_free(&norm);
    return rc;
}

/* ---- step: canonical query ---------------------------------------------- */

typedef struct {
    char *name;  /* encoded by the SigV4 rules, owned */
    char *value; /* same */
} query_param;

static int param_cmp(const void *a, const void *b)
{
    const query_param *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Appends the canonical form of query: every "name[=value]" re-encoded,
 * sorted by name then value, joined by '&'. A parameter named skip (as sent)
 * is left out: the signature of a presigned URL. */
int pier_sigv4_canon_query(pier_buf *out, const char *query, const char *skip)
{
    query_param *params = NULL;
    size_t count = 0, cap = 0;
    pier_buf tmp = PIER_BUF_INIT;
    int rc = 0;
    const char *p = query ? query : "";
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        bool skipped = skip && strlen(skip) == nlen && memcmp(p, skip, nlen) == 0;
        if (len && !skipped) {
            if (count == cap) {
                cap = cap ? 2 * cap : 16;
                params = pier_realloc(params, cap * sizeof *params);
            }
            query_param *qp = &params[count];
            qp->name = qp->value = NULL;
            count++;
            pier_buf_reset(&tmp);
            TRY(reencode(&tmp, p, nlen, false, true));
            qp->name = pier_strdup(pier_buf_cstr(&tmp));
            pier_buf_reset(&tmp);
            if (eq)
                TRY(reencode(&tmp, eq + 1, len - nlen - 1, false, true));
            qp->value = pier_strdup(pier_buf_cstr(&tmp));
        }
        p += len;
        if (*p == '&')
            p++;
    }
    if (count)
        qsort(params, count, sizeof *params, param_cmp);
    for (size_t i = 0; i < count; i++)
        TRY(pier_buf_printf(out, "%s%s=%s", i ? "&" : "", params[i].name, params[i].value));
done:
    for (size_t i = 0; i < count; i++) {
        free(params[i].name);
        free(params[i].value);
    }
    free(params);
    pier_buf_free(&tmp);
    return rc;
}

/* ---- step: canonical headers -------------------------------------------- */

typedef struct {
    char *name;        /* lowercased, owned */
    const char *value; /* borrowed from the request */
    size_t order;      /* position in the request, keeps duplicates in order */
} header_entry;

static int header_cmp(const void *a, const void *b)
{
    const header_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Appends value trimmed, with every run of whitespace (line breaks of a
 * folded header included) collapsed to one space. */
static int canon_value(pier_buf *out, const char *v)
{
    int rc = 0;
    bool pending = false, started = false;
    for (; *v && !rc; v++) {
        if (pier_sigv4_is_ws(*v)) {
            pending = started;
            continue;
        }
        if (pending)
            rc = pier_buf_putc(out, ' ');
        if (!rc)
            rc = pier_buf_putc(out, *v);
        pending = false;
        started = true;
    }
    return rc;
}

static char *lower_dup(const char *s, size_t n)
{
    char *d = pier_strndup(s, n);
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

static bool is_unsigned_header(const char *lname)
{
    for (size_t i = 0; i < sizeof unsigned_headers / sizeof *unsigned_headers; i++)
        if (strcmp(lname, unsigned_headers[i]) == 0)
            return true;
    return false;
}

/* Signer's choice: every header but the unsigned ones and skip, plus host
 * when the list has none. Appends "name:value\n" lines to out and the names
 * joined by ';' to signed_list. */
static int canon_headers_all(pier_buf *out, pier_buf *signed_list, const pier_http_headers *h,
                             const char *host, const char *skip)
{
    size_t n = h ? h->count : 0, count = 0;
    header_entry *e = pier_calloc(n + 1, sizeof *e);
    bool have_host = false;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *lname = lower_dup(h->items[i].name, strlen(h->items[i].name));
        if (is_unsigned_header(lname) || (skip && strcmp(lname, skip) == 0)) {
            free(lname);
            continue;
        }
        have_host |= strcmp(lname, "host") == 0;
        e[count++] = (header_entry){lname, h->items[i].value ? h->items[i].value : "", i};
    }
    if (!have_host) {
        if (!host || !host[0]) {
            rc = pier_error_set(PIER_EINVALID, "sigv4: the request has no Host header and no host");
            goto done;
        }
        e[count++] = (header_entry){pier_strdup("host"), host, n};
    }
    qsort(e, count, sizeof *e, header_cmp);
    for (size_t i = 0; i < count; i++) {
        bool first = i == 0 || strcmp(e[i].name, e[i - 1].name) != 0;
        if (first) {
            if (i)
                TRY(pier_buf_putc(out, '\n'));
            TRY(pier_buf_printf(out, "%s:", e[i].name));
            TRY(pier_buf_printf(signed_list, "%s%s", i ? ";" : "", e[i].name));
        } else {
            TRY(pier_buf_putc(out, ','));
        }
        TRY(canon_value(out, e[i].value));
    }
    if (count)
        TRY(pier_buf_putc(out, '\n'));
done:
    for (size_t i = 0; i < count; i++)
        free(e[i].name);
    free(e);
    return rc;
}

/* Verifier's side: the headers named by signed_list (';'-separated, in its
 * order). A signed header absent from the request gives an empty value (and
 * so, surely, a mismatch); *missing gets the first such name (owned). */
int pier_sigv4_canon_headers_listed(pier_buf *out, const char *signed_list,
                                    const pier_http_headers *h, const char *host, char **missing)
{
    int rc = 0;
    const char *p = signed_list;
    while (*p) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        TRY(pier_buf_put(out, p, len));
        TRY(pier_buf_putc(out, ':'));
        bool found = false;
        for (size_t i = 0; h && i < h->count; i++) {
            const char *name = h->items[i].name;
            if (strlen(name) != len || strncasecmp(name, p, len) != 0)
                continue;
            if (found)
                TRY(pier_buf_putc(out, ','));
            TRY(canon_value(out, h->items[i].value ? h->items[i].value : ""));
            found = true;
        }
        if (!found && len == 4 && memcmp(p, "host", 4) == 0 && host && host[0]) {
            TRY(canon_value(out, host));
            found = true;
        }
        if (!found && !*missing)
            *missing = pier_strndup(p, len);
        TRY(pier_buf_putc(out, '\n'));
        p += len;
        if (*p == ';')
            p++;
    }
done:
    return rc;
}

/* ---- steps: canonical request, string to sign, key, signature ----------- */

int pier_sigv4_canon_request(pier_buf *out, const char *method, const pier_buf *path,
                             const pier_buf *query, const pier_buf *headers,
                             const pier_buf *signed_list, const char *payload_hash)
{
    pier_buf_reset(out);
    return pier_buf_printf(out, "%s\n%s\n%s\n%s\n%s\n%s", method, pier_buf_cstr(path),
                           pier_buf_cstr(query), pier_buf_cstr(headers), pier_buf_cstr(signed_list),
                           payload_hash);
}

int pier_sigv4_string_to_sign(pier_buf *out, const char *amz_date, const char *scope,
                              const pier_buf *creq)
{
    char hash[65];
    pier_sha256_hex(hash, creq->ptr ? creq->ptr : "", creq->len);
    pier_buf_reset(out);
    return pier_buf_printf(out, PIER_SIGV4_ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hash);
}

static void hmac_str(unsigned char out[PIER_SHA256_LEN], const unsigned char *key, size_t klen,
                     const char *msg)
{
    pier_hmac_sha256(out, key, klen, msg, strlen(msg));
}

/* The last signing key derived on this thread, by SHA-256 of the secret
 * (no copy of the secret is kept), date, region and service: a client signs
 * thousands of requests a day with one key, and the four HMACs of the
 * derivation cost more than the signature itself. */
typedef struct {
    bool valid;                                /* an entry is held */
    unsigned char secret_sha[PIER_SHA256_LEN]; /* SHA-256 of the secret */
    char scope[160];                           /* date8 NUL region NUL service */
    size_t scope_len;                          /* bytes of scope in use */
    unsigned char key[PIER_SHA256_LEN];        /* the derived key */
} key_cache;

static _Thread_local key_cache cached_key;

static void derive_key(unsigned char key[PIER_SHA256_LEN], const char *secret, const char *date8,
                       const char *region, const char *service);

void pier_sigv4_signing_key(unsigned char key[PIER_SHA256_LEN], const char *secret,
                            const char *date8, const char *region, const char *service)
{
    char scope[sizeof cached_key.scope];
    size_t rl = strlen(region), sl = strlen(service);
    if (8 + 1 + rl + 1 + sl + 1 > sizeof scope) {
        derive_key(key, secret, date8, region, service);
        return;
    }
    memcpy(scope, date8, 8);
    scope[8] = '\0';
    memcpy(scope + 9, region, rl + 1);
    memcpy(scope + 10 + rl, service, sl + 1);
    size_t n = 11 + rl + sl;
    unsigned char sha[PIER_SHA256_LEN];
    pier_sha256(sha, secret, strlen(secret));
    key_cache *c = &cached_key;
    if (c->valid && c->scope_len == n && memcmp(c->scope, scope, n) == 0 &&
        pier_ct_equal(c->secret_sha, sha, sizeof sha)) {
        memcpy(key, c->key, PIER_SHA256_LEN);
        return;
    }
    derive_key(key, secret, date8, region, service);
    memcpy(c->secret_sha, sha, sizeof sha);
    memcpy(c->scope, scope, n);
    c->scope_len = n;
    memcpy(c->key, key, PIER_SHA256_LEN);
    c->valid = true;
}

static void derive_key(unsigned char key[PIER_SHA256_LEN], const char *secret, const char *date8,
                       const char *region, const char *service)
{
    size_t slen = strlen(secret);
    unsigned char *k = pier_malloc(slen + 4);
    memcpy(k, "AWS4", 4);
    memcpy(k + 4, secret, slen);
    char date[9];
    memcpy(date, date8, 8);
    date[8] = '\0';
    unsigned char t[PIER_SHA256_LEN];
    hmac_str(t, k, slen + 4, date);
    hmac_str(key, t, sizeof t, region);
    hmac_str(t, key, PIER_SHA256_LEN, service);
    hmac_str(key, t, sizeof t, "aws4_request");
    memset(k, 0, slen + 4);
    memset(t, 0, sizeof t);
    free(k);
}

void pier_sigv4_signature_hex(char out[65], const unsigned char key[PIER_SHA256_LEN],
                              const char *msg, size_t n)
{
    unsigned char mac[PIER_SHA256_LEN];
    pier_hmac_sha256(mac, key, PIER_SHA256_LEN, msg, n);
    pier_hex_encode(out, mac, sizeof mac);
}

void pier_sigv4_chunk_seed(pier_sigv4_chunk *c, const unsigned char key[PIER_SHA256_LEN],
                           const char *amz_date, const char *scope, const char *seed)
{
    memcpy(c->key, key, PIER_SHA256_LEN);
    snprintf(c->amz_date, sizeof c->amz_date, "%s", amz_date);
    snprintf(c->scope, sizeof c->scope, "%s", scope);
    snprintf(c->prev, sizeof c->prev, "%s", seed);
}

/* ---- signing ------------------------------------------------------------- */

void pier_sigv4_result_init(pier_sigv4_result *r)
{
    memset(r, 0, sizeof *r);
    pier_buf_init(&r->canonical_request, 0);
    pier_buf_init(&r->string_to_sign, 0);
    pier_buf_init(&r->signed_headers, 0);
    pier_buf_init(&r->authorization, 0);
    pier_buf_init(&r->query, 0);
}

void pier_sigv4_result_free(pier_sigv4_result *r)
{
    if (!r)
        return;
    pier_buf_free(&r->canonical_request);
    pier_buf_free(&r->string_to_sign);
    pier_buf_free(&r->signed_headers);
    pier_buf_free(&r->authorization);
    pier_buf_free(&r->query);
    memset(&r->chunk, 0, sizeof r->chunk);
}

bool pier_sigv4_valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > PIER_SIGV4_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return false;
    return true;
}

bool pier_sigv4_valid_key_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > PIER_SIGV4_KEY_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == ',' || s[i] == '=' || (unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
    return true;
}

bool pier_sigv4_valid_payload_hash(const char *s)
{
    if (!s)
        return false;
    if (strlen(s) == 64 && pier_sigv4_is_hex_lower(s, 64))
        return true;
    return strcmp(s, PIER_SIGV4_UNSIGNED_PAYLOAD) == 0 ||
           strcmp(s, PIER_SIGV4_STREAMING_PAYLOAD) == 0 ||
           strcmp(s, PIER_SIGV4_STREAMING_PAYLOAD_TRAILER) == 0 ||
           strcmp(s, PIER_SIGV4_STREAMING_UNSIGNED_TRAILER) == 0;
}

static int check_sign_args(const pier_sigv4_request *req, const pier_sigv4_credentials *cred,
                           const pier_sigv4_options *opts)
{
    if (!req || !req->method || !req->method[0])
        return pier_error_set(PIER_EINVALID, "sigv4: the request has no method");
    if (!cred || !pier_sigv4_valid_key_id(cred->access_key_id) || !cred->secret_access_key ||
        !cred->secret_access_key[0])
        return pier_error_set(PIER_EINVALID, "sigv4: incomplete credentials (access key id "
                                             "and secret access key are required)");
    if (!opts || !pier_sigv4_valid_name(opts->region) || !pier_sigv4_valid_name(opts->service))
        return pier_error_set(PIER_EINVALID, "sigv4: region '%s' or service '%s' is not valid",
                              opts && opts->region ? opts->region : "",
                              opts && opts->service ? opts->service : "");
    if (req->payload_hash && !pier_sigv4_valid_payload_hash(req->payload_hash))
        return pier_error_set(PIER_EINVALID,
                              "sigv4: payload hash '%s' is neither a hex SHA-256 nor a "
                              "known payload word",
                              req->payload_hash);
    return 0;
}

/* The steps after the canonical request, shared by sign and presign. */
static void finish_signature(pier_sigv4_result *r, const pier_sigv4_credentials *cred,
                             const pier_sigv4_options *opts, const char *scope)
{
    unsigned char key[PIER_SHA256_LEN];
    pier_sigv4_signing_key(key, cred->secret_access_key, r->amz_date, opts->region, opts->service);
    pier_sigv4_signature_hex(r->signature, key, pier_buf_cstr(&r->string_to_sign),
                             r->string_to_sign.len);
    pier_sigv4_chunk_seed(&r->chunk, key, r->amz_date, scope, r->signature);
    memset(key, 0, sizeof key);
}

static int sign_into(pier_sigv4_result *r, const pier_sigv4_request *req,
                     const pier_sigv4_credentials *cred, time_t now, const pier_sigv4_options *opts)
{
    pier_buf path = PIER_BUF_INIT, query = PIER_BUF_INIT, headers = PIER_BUF_INIT;
    char scope[PIER_SIGV4_SCOPE_MAX];
    int rc = 0;
    bool token = cred->session_token && cred->session_token[0];
    const char *payload = req->payload_hash ? req->payload_hash : PIER_SIGV4_EMPTY_SHA256;
    if (!req->headers) {
        rc = pier_error_set(PIER_EINVALID, "sigv4: the request has no header list to sign");
        goto done;
    }
    pier_time_iso8601_basic(r->amz_date, sizeof r->amz_date, now);
    TRY(pier_sigv4_make_scope(scope, sizeof scope, r->amz_date, opts->region, opts->service));

    /* The headers signing adds; the order matches the AWS test suite. */
    pier_http_headers_remove(req->headers, "Authorization");
    if (token)
        pier_http_headers_set(req->headers, "X-Amz-Security-Token", cred->session_token);
    pier_http_headers_set(req->headers, "X-Amz-Date", r->amz_date);
    if (opts->sign_content_sha256)
        pier_http_headers_set(req->headers, "x-amz-content-sha256", payload);

    TRY(pier_sigv4_canon_path(&path, req->path, opts->normalize_path, opts->double_encode));
    TRY(pier_sigv4_canon_query(&query, req->query, NULL));
    pier_buf_reset(&r->signed_headers);
    TRY(canon_headers_all(&headers, &r->signed_headers, req->headers, req->host,
                          token && opts->omit_session_token ? "x-amz-security-token" : NULL));
    TRY(pier_sigv4_canon_request(&r->canonical_request, req->method, &path, &query, &headers,
                                 &r->signed_headers, payload));
    TRY(pier_sigv4_string_to_sign(&r->string_to_sign, r->amz_date, scope, &r->canonical_request));
    finish_signature(r, cred, opts, scope);

    pier_buf_reset(&r->authorization);
    TRY(pier_buf_printf(
        &r->authorization, PIER_SIGV4_ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
        cred->access_key_id, scope, pier_buf_cstr(&r->signed_headers), r->signature));
    pier_http_headers_set(req->headers, "Authorization", pier_buf_cstr(&r->authorization));
done:
    pier_buf_free(&path);
    pier_buf_free(&query);
    pier_buf_free(&headers);
    return rc;
}

int pier_sigv4_sign(pier_sigv4_result *out, const pier_sigv4_request *req,
                    const pier_sigv4_credentials *cred, time_t now, const pier_sigv4_options *opts)
{
    int rc = check_sign_args(req, cred, opts);
    if (rc)
        return rc;
    if (out)
        return sign_into(out, req, cred, now, opts);
    pier_sigv4_result tmp;
    pier_sigv4_result_init(&tmp);
    rc = sign_into(&tmp, req, cred, now, opts);
    pier_sigv4_result_free(&tmp);
    return rc;
}

/* Appends "&name=<value encoded>" (no '&' at the start of an empty query). */
static int add_param(pier_buf *q, const char *name, const char *value)
{
    int rc = pier_buf_printf(q, "%s%s=", q->len ? "&" : "", name);
    if (!rc)
        rc = pier_uri_encode(q, value, strlen(value), false);
    return rc;
}

int pier_sigv4_presign(pier_sigv4_result *out, const pier_sigv4_request *req,
                       const pier_sigv4_credentials *cred, time_t now,
                       const pier_sigv4_options *opts)
{
    pier_buf path = PIER_BUF_INIT, query = PIER_BUF_INIT, headers = PIER_BUF_INIT;
    pier_buf cred_text = PIER_BUF_INIT;
    char scope[PIER_SIGV4_SCOPE_MAX], expires[16];
    int rc = check_sign_args(req, cred, opts);
    bool token = cred && cred->session_token && cred->session_token[0];
    if (rc)
        return rc;
    if (!out)
        return pier_error_set(PIER_EINVALID, "sigv4: presign needs a result");
    if (opts->expires < 1 || opts->expires > PIER_SIGV4_MAX_EXPIRES)
        return pier_error_set(PIER_EINVALID,
                              "sigv4: presigned URL expiry %u s is outside 1..%d seconds",
                              opts->expires, PIER_SIGV4_MAX_EXPIRES);
    const char *payload = req->payload_hash ? req->payload_hash : PIER_SIGV4_EMPTY_SHA256;
    pier_time_iso8601_basic(out->amz_date, sizeof out->amz_date, now);
    TRY(pier_sigv4_make_scope(scope, sizeof scope, out->amz_date, opts->region, opts->service));
    snprintf(expires, sizeof expires, "%u", opts->expires);

    /* The headers first: X-Amz-SignedHeaders goes into the query. */
    pier_buf_reset(&out->signed_headers);
    TRY(canon_headers_all(&headers, &out->signed_headers, req->headers, req->host, NULL));

    pier_buf *q = &out->query;
    pier_buf_reset(q);
    if (req->query && req->query[0])
        TRY(pier_buf_puts(q, req->query));
    TRY(pier_buf_printf(&cred_text, "%s/%s", cred->access_key_id, scope));
    TRY(add_param(q, "X-Amz-Algorithm", PIER_SIGV4_ALGORITHM));
    TRY(add_param(q, "X-Amz-Credential", pier_buf_cstr(&cred_text)));
    TRY(add_param(q, "X-Amz-Date", out->amz_date));
    TRY(add_param(q, "X-Amz-SignedHeaders", pier_buf_cstr(&out->signed_headers)));
    TRY(add_param(q, "X-Amz-Expires", expires));
    if (token && !opts->omit_session_token)
        TRY(add_param(q, "X-Amz-Security-Token", cred->session_token));

    TRY(pier_sigv4_canon_path(&path, req->path, opts->normalize_path, opts->double_encode));
    TRY(pier_sigv4_canon_query(&query, pier_buf_cstr(q), NULL));
    TRY(pier_sigv4_canon_request(&out->canonical_request, req->method, &path, &query, &headers,
                                 &out->signed_headers, payload));
    TRY(pier_sigv4_string_to_sign(&out->string_to_sign, out->amz_date, scope,
                                  &out->canonical_request));
    finish_signature(out, cred, opts, scope);

    if (token && opts->omit_session_token)
        TRY(add_param(q, "X-Amz-Security-Token", cred->session_token));
    TRY(add_param(q, "X-Amz-Signature", out->signature));
    pier_buf_reset(&out->authorization);
done:
    pier_buf_free(&path);
    pier_buf_free(&query);
    pier_buf_free(&headers);
    pier_buf_free(&cred_text);
    return rc;
}
