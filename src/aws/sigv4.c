/*
 * sigv4: AWS Signature Version 4 signing, presigning and verification. See
 * sigv4.h for the API. The aws-chunked chain of chunk signatures is in
 * sigv4chunk.c; it shares the key and signature steps below
 * (sigv4internal.h), and signing and verifying seed its chain.
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
#include <stdarg.h>
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

static bool is_ws(char c)
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

static int canon_path(pier_buf *out, const char *path, bool normalize, bool double_encode)
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
static int canon_query(pier_buf *out, const char *query, const char *skip)
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

/* Finds parameter name (as sent) in query and decodes its value into out.
 * Returns 1 when found once, 0 when absent, PIER_EINVALID when repeated or
 * badly escaped. */
static int query_get(const char *query, const char *name, pier_buf *out)
{
    int found = 0;
    size_t want = strlen(name);
    const char *p = query ? query : "";
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        if (nlen == want && memcmp(p, name, want) == 0) {
            if (found)
                return pier_error_set(PIER_EINVALID, "query parameter %s is repeated", name);
            found = 1;
            pier_buf_reset(out);
            if (eq) {
                int rc = pier_uri_decode(out, eq + 1, len - nlen - 1, true);
                if (rc)
                    return pier_error_set(PIER_EINVALID, "query parameter %s is badly escaped",
                                          name);
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return found;
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
        if (is_ws(*v)) {
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
static int canon_headers_listed(pier_buf *out, const char *signed_list, const pier_http_headers *h,
                                const char *host, char **missing)
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

static int canon_request(pier_buf *out, const char *method, const pier_buf *path,
                         const pier_buf *query, const pier_buf *headers,
                         const pier_buf *signed_list, const char *payload_hash)
{
    pier_buf_reset(out);
    return pier_buf_printf(out, "%s\n%s\n%s\n%s\n%s\n%s", method, pier_buf_cstr(path),
                           pier_buf_cstr(query), pier_buf_cstr(headers), pier_buf_cstr(signed_list),
                           payload_hash);
}

static int string_to_sign(pier_buf *out, const char *amz_date, const char *scope,
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

static bool valid_key_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > PIER_SIGV4_KEY_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || s[i] == ',' || s[i] == '=' || (unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
    return true;
}

static bool valid_payload_hash(const char *s)
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
    if (!cred || !valid_key_id(cred->access_key_id) || !cred->secret_access_key ||
        !cred->secret_access_key[0])
        return pier_error_set(PIER_EINVALID, "sigv4: incomplete credentials (access key id "
                                             "and secret access key are required)");
    if (!opts || !pier_sigv4_valid_name(opts->region) || !pier_sigv4_valid_name(opts->service))
        return pier_error_set(PIER_EINVALID, "sigv4: region '%s' or service '%s' is not valid",
                              opts && opts->region ? opts->region : "",
                              opts && opts->service ? opts->service : "");
    if (req->payload_hash && !valid_payload_hash(req->payload_hash))
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

    TRY(canon_path(&path, req->path, opts->normalize_path, opts->double_encode));
    TRY(canon_query(&query, req->query, NULL));
    pier_buf_reset(&r->signed_headers);
    TRY(canon_headers_all(&headers, &r->signed_headers, req->headers, req->host,
                          token && opts->omit_session_token ? "x-amz-security-token" : NULL));
    TRY(canon_request(&r->canonical_request, req->method, &path, &query, &headers,
                      &r->signed_headers, payload));
    TRY(string_to_sign(&r->string_to_sign, r->amz_date, scope, &r->canonical_request));
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

    TRY(canon_path(&path, req->path, opts->normalize_path, opts->double_encode));
    TRY(canon_query(&query, pier_buf_cstr(q), NULL));
    TRY(canon_request(&out->canonical_request, req->method, &path, &query, &headers,
                      &out->signed_headers, payload));
    TRY(string_to_sign(&out->string_to_sign, out->amz_date, scope, &out->canonical_request));
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

/* ---- verification: parsing ---------------------------------------------- */

void pier_sigv4_auth_init(pier_sigv4_auth *a)
{
    memset(a, 0, sizeof *a);
    pier_buf_init(&a->signed_headers, 0);
    pier_buf_init(&a->payload_hash, 0);
    pier_sigv4_result_init(&a->computed);
}

void pier_sigv4_auth_free(pier_sigv4_auth *a)
{
    if (!a)
        return;
    pier_buf_free(&a->signed_headers);
    pier_buf_free(&a->payload_hash);
    pier_sigv4_result_free(&a->computed);
    memset(&a->chunk, 0, sizeof a->chunk);
}

/* Sets status and the message; returns the matching code. */
static int refuse(pier_sigv4_auth *a, pier_sigv4_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(pier_sigv4_auth *a, pier_sigv4_status s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    a->status = s;
    return pier_error_set(s == PIER_SIGV4_MALFORMED ? PIER_EINVALID : PIER_EAUTH, "%s", msg);
}

/* "AKID/YYYYMMDD/region/service/aws4_request" into the auth fields. */
static int parse_credential(pier_sigv4_auth *a, pier_slice cred)
{
    pier_slice part[5];
    size_t n = 0;
    const char *p = cred.ptr, *end = cred.ptr + cred.len;
    while (n < 5) {
        const char *q = memchr(p, '/', (size_t)(end - p));
        if (!q)
            q = end;
        part[n++] = (pier_slice){p, (size_t)(q - p)};
        if (q == end)
            break;
        p = q + 1;
    }
    if (n != 5 || part[4].ptr + part[4].len != end)
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: Credential '%.*s' is not AKID/date/region/service/aws4_request",
                      (int)cred.len, cred.ptr);
    if (part[0].len == 0 || part[0].len > PIER_SIGV4_KEY_ID_MAX)
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: the access key id in the Credential is "
                      "empty or too long");
    snprintf(a->access_key_id, sizeof a->access_key_id, "%.*s", (int)part[0].len, part[0].ptr);
    if (!valid_key_id(a->access_key_id))
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: the access key id in the Credential "
                      "has invalid characters");
    bool date_ok = part[1].len == 8;
    for (size_t i = 0; date_ok && i < 8; i++)
        date_ok = isdigit((unsigned char)part[1].ptr[i]);
    if (!date_ok)
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: the date '%.*s' in the Credential is not YYYYMMDD", (int)part[1].len,
                      part[1].ptr);
    memcpy(a->date, part[1].ptr, 8);
    a->date[8] = '\0';
    if (part[2].len == 0 || part[2].len > PIER_SIGV4_NAME_MAX || part[3].len == 0 ||
        part[3].len > PIER_SIGV4_NAME_MAX)
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: the region or service in the Credential is empty or too long");
    snprintf(a->region, sizeof a->region, "%.*s", (int)part[2].len, part[2].ptr);
    snprintf(a->service, sizeof a->service, "%.*s", (int)part[3].len, part[3].ptr);
    if (!pier_sigv4_valid_name(a->region) || !pier_sigv4_valid_name(a->service))
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: the region or service in the Credential has invalid characters");
    if (!pier_slice_eq_cstr(part[4], "aws4_request"))
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: the Credential ends in '%.*s', not aws4_request", (int)part[4].len,
                      part[4].ptr);
    return 0;
}

/* "host;x-amz-date": lowercase names, no empty one, host among them. */
static int parse_signed_headers(pier_sigv4_auth *a, pier_slice list)
{
    bool host = false;
    size_t i = 0;
    if (list.len == 0)
        return refuse(a, PIER_SIGV4_MALFORMED, "sigv4: SignedHeaders is empty");
    while (i <= list.len) {
        size_t start = i;
        while (i < list.len && list.ptr[i] != ';') {
            unsigned char c = (unsigned char)list.ptr[i];
            if (c <= ' ' || c >= 0x7f || isupper(c) || c == ':' || c == ',')
                return refuse(a, PIER_SIGV4_MALFORMED,
                              "sigv4: SignedHeaders '%.*s' is not a list of lowercase names",
                              (int)list.len, list.ptr);
            i++;
        }
        if (i == start)
            return refuse(a, PIER_SIGV4_MALFORMED, "sigv4: SignedHeaders '%.*s' has an empty name",
                          (int)list.len, list.ptr);
        host |= i - start == 4 && memcmp(list.ptr + start, "host", 4) == 0;
        i++;
    }
    if (!host)
        return refuse(a, PIER_SIGV4_MALFORMED, "sigv4: SignedHeaders must include host");
    pier_buf_reset(&a->signed_headers);
    int rc = pier_buf_put_slice(&a->signed_headers, list);
    if (rc)
        a->status = PIER_SIGV4_MALFORMED;
    return rc;
}

static int parse_signature(pier_sigv4_auth *a, pier_slice sig)
{
    if (sig.len != 64 || !pier_sigv4_is_hex_lower(sig.ptr, 64))
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: Signature is not 64 lowercase hex characters");
    memcpy(a->signature, sig.ptr, 64);
    a->signature[64] = '\0';
    return 0;
}

/* X-Amz-Date "YYYYMMDDTHHMMSSZ", agreeing with the scope date. */
static int parse_amz_date(pier_sigv4_auth *a, const char *v)
{
    if (!v)
        return refuse(a, PIER_SIGV4_MALFORMED, "sigv4: the request has no X-Amz-Date");
    bool ok = strlen(v) == 16 && v[8] == 'T' && v[15] == 'Z';
    for (size_t i = 0; ok && i < 15; i++)
        ok = i == 8 || isdigit((unsigned char)v[i]);
    if (!ok || pier_time_parse(v, &a->time) != 0)
        return refuse(a, PIER_SIGV4_MALFORMED, "sigv4: X-Amz-Date '%.40s' is not YYYYMMDDTHHMMSSZ",
                      v);
    memcpy(a->amz_date, v, 17);
    if (memcmp(a->date, v, 8) != 0)
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: the Credential date %s differs from X-Amz-Date %s", a->date, v);
    return 0;
}

/* Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
 * Signature=... (parts in any order, spaces after the commas optional). */
static int parse_header_auth(pier_sigv4_auth *a, const pier_sigv4_request *req, const char *v)
{
    size_t alen = strlen(PIER_SIGV4_ALGORITHM);
    if (strncmp(v, PIER_SIGV4_ALGORITHM, alen) != 0 || !is_ws(v[alen]))
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: the Authorization algorithm is not " PIER_SIGV4_ALGORITHM);
    bool have[3] = {false, false, false};
    static const char *const keys[3] = {"Credential", "SignedHeaders", "Signature"};
    int rc = 0;
    const char *p = v + alen;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        pier_slice part = pier_slice_trim((pier_slice){p, len});
        const char *eq = memchr(part.ptr, '=', part.len);
        if (!eq)
            return refuse(a, PIER_SIGV4_MALFORMED,
                          "sigv4: Authorization part '%.*s' is not key=value", (int)part.len,
                          part.ptr);
        pier_slice key = {part.ptr, (size_t)(eq - part.ptr)};
        pier_slice val = {eq + 1, part.len - key.len - 1};
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (pier_slice_eq_cstr(key, keys[i]))
                k = i;
        if (k < 0 || have[k])
            return refuse(a, PIER_SIGV4_MALFORMED,
                          "sigv4: Authorization has an unknown or repeated part '%.*s'",
                          (int)key.len, key.ptr);
        have[k] = true;
        if (k == 0)
            rc = parse_credential(a, val);
        else if (k == 1)
            rc = parse_signed_headers(a, val);
        else
            rc = parse_signature(a, val);
        if (rc)
            return rc;
        p += len;
        if (*p == ',')
            p++;
    }
    for (int i = 0; i < 3; i++)
        if (!have[i])
            return refuse(a, PIER_SIGV4_MALFORMED, "sigv4: Authorization has no %s", keys[i]);
    return parse_amz_date(a, pier_http_headers_get(req->headers, "X-Amz-Date"));
}

/* Reads one X-Amz-* query parameter that must be there exactly once. */
static int query_need(pier_sigv4_auth *a, const char *query, const char *name, pier_buf *out)
{
    int found = query_get(query, name, out);
    if (found == 1)
        return 0;
    if (found == 0)
        return refuse(a, PIER_SIGV4_MALFORMED, "sigv4: the presigned URL has no %s", name);
    return refuse(a, PIER_SIGV4_MALFORMED,
                  "sigv4: the presigned URL's %s is repeated or badly "
                  "escaped",
                  name);
}

static int parse_query_auth(pier_sigv4_auth *a, const pier_sigv4_request *req)
{
    pier_buf v = PIER_BUF_INIT;
    uint64_t expires = 0;
    int rc = 0;
    a->presigned = true;
    TRY(query_need(a, req->query, "X-Amz-Algorithm", &v));
    if (strcmp(pier_buf_cstr(&v), PIER_SIGV4_ALGORITHM) != 0) {
        rc = refuse(a, PIER_SIGV4_MALFORMED,
                    "sigv4: X-Amz-Algorithm '%.40s' is not " PIER_SIGV4_ALGORITHM,
                    pier_buf_cstr(&v));
        goto done;
    }
    TRY(query_need(a, req->query, "X-Amz-Credential", &v));
    TRY(parse_credential(a, pier_buf_slice(&v)));
    TRY(query_need(a, req->query, "X-Amz-SignedHeaders", &v));
    TRY(parse_signed_headers(a, pier_buf_slice(&v)));
    TRY(query_need(a, req->query, "X-Amz-Signature", &v));
    TRY(parse_signature(a, pier_buf_slice(&v)));
    TRY(query_need(a, req->query, "X-Amz-Expires", &v));
    if (pier_parse_u64(pier_buf_cstr(&v), &expires) != 0 || expires < 1 ||
        expires > PIER_SIGV4_MAX_EXPIRES) {
        rc = refuse(a, PIER_SIGV4_MALFORMED,
                    "sigv4: X-Amz-Expires '%.20s' is not between 1 and %d seconds",
                    pier_buf_cstr(&v), PIER_SIGV4_MAX_EXPIRES);
        goto done;
    }
    a->expires = (uint32_t)expires;
    TRY(query_need(a, req->query, "X-Amz-Date", &v));
    TRY(parse_amz_date(a, pier_buf_cstr(&v)));
done:
    pier_buf_free(&v);
    return rc;
}

int pier_sigv4_parse(pier_sigv4_auth *out, const pier_sigv4_request *req)
{
    pier_buf tmp = PIER_BUF_INIT;
    /* Forget an earlier request parsed into the same struct. */
    out->status = PIER_SIGV4_MALFORMED;
    out->presigned = false;
    out->access_key_id[0] = out->date[0] = out->region[0] = out->service[0] = '\0';
    out->amz_date[0] = out->signature[0] = '\0';
    out->time = 0;
    out->expires = 0;
    pier_buf_reset(&out->signed_headers);
    pier_buf_reset(&out->payload_hash);
    memset(&out->chunk, 0, sizeof out->chunk);
    const char *authz = req->headers ? pier_http_headers_get(req->headers, "Authorization") : NULL;
    int in_query = query_get(req->query, "X-Amz-Algorithm", &tmp);
    int rc = 0;
    if (in_query < 0) {
        rc = refuse(out, PIER_SIGV4_MALFORMED,
                    "sigv4: X-Amz-Algorithm is repeated or badly "
                    "escaped");
    } else if (authz && in_query) {
        rc = refuse(out, PIER_SIGV4_MALFORMED,
                    "sigv4: a request carries both an Authorization header and X-Amz-Algorithm; "
                    "only one authentication method is allowed");
    } else if (authz) {
        rc = parse_header_auth(out, req, authz);
    } else if (in_query) {
        rc = parse_query_auth(out, req);
    } else if (query_get(req->query, "X-Amz-Signature", &tmp) ||
               query_get(req->query, "X-Amz-Credential", &tmp)) {
        out->presigned = true;
        rc = refuse(out, PIER_SIGV4_MALFORMED, "sigv4: the presigned URL has no X-Amz-Algorithm");
    } else {
        rc = refuse(out, PIER_SIGV4_MISSING, "sigv4: the request is not signed");
    }
    if (!rc)
        out->status = PIER_SIGV4_OK;
    pier_buf_free(&tmp);
    return rc;
}

/* ---- verification: checking --------------------------------------------- */

static int check_scope(pier_sigv4_auth *a, const pier_sigv4_verify_options *o)
{
    if (o->sig.region && o->sig.region[0] && strcmp(o->sig.region, a->region) != 0)
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: the region '%s' in the Credential is wrong; expecting '%s'",
                      a->region, o->sig.region);
    if (o->sig.service && o->sig.service[0] && strcmp(o->sig.service, a->service) != 0)
        return refuse(a, PIER_SIGV4_MALFORMED,
                      "sigv4: the service '%s' in the Credential is wrong; expecting '%s'",
                      a->service, o->sig.service);
    return 0;
}

static int check_time(pier_sigv4_auth *a, time_t now, const pier_sigv4_verify_options *o)
{
    long long skew = o->max_skew > 0 ? o->max_skew : PIER_SIGV4_MAX_SKEW;
    long long diff = (long long)a->time - (long long)now;
    if (a->presigned) {
        if (diff > skew)
            return refuse(a, PIER_SIGV4_SKEWED,
                          "sigv4: the presigned URL is not valid yet (X-Amz-Date %s is %lld s "
                          "ahead of the server's time)",
                          a->amz_date, diff);
        if (-diff > (long long)a->expires)
            return refuse(a, PIER_SIGV4_EXPIRED,
                          "sigv4: the presigned URL expired (X-Amz-Date %s + %u s is before "
                          "the server's time)",
                          a->amz_date, a->expires);
        return 0;
    }
    if (diff > skew || -diff > skew)
        return refuse(a, PIER_SIGV4_SKEWED,
                      "sigv4: the request time %s is %lld s away from the server's time "
                      "(limit %lld s)",
                      a->amz_date, diff < 0 ? -diff : diff, skew);
    return 0;
}

/* The session token the request carries must be the one the key needs. */
static int check_token(pier_sigv4_auth *a, const pier_sigv4_request *req,
                       const pier_sigv4_secret *s)
{
    pier_buf qtok = PIER_BUF_INIT;
    const char *sent = NULL;
    int rc = 0;
    if (a->presigned) {
        int found = query_get(req->query, "X-Amz-Security-Token", &qtok);
        if (found < 0) {
            rc = refuse(a, PIER_SIGV4_MALFORMED,
                        "sigv4: X-Amz-Security-Token is repeated or badly escaped");
            goto done;
        }
        sent = found ? pier_buf_cstr(&qtok) : NULL;
    } else {
        sent = pier_http_headers_get(req->headers, "X-Amz-Security-Token");
    }
    if (s->session_token.len) {
        if (!sent || !sent[0])
            rc = refuse(a, PIER_SIGV4_TOKEN_MISSING,
                        "sigv4: access key %s is temporary and the request carries no "
                        "X-Amz-Security-Token",
                        a->access_key_id);
        else if (!pier_ct_streq(pier_buf_cstr(&s->session_token), sent))
            rc = refuse(a, PIER_SIGV4_TOKEN_INVALID,
                        "sigv4: the security token does not belong to access key %s",
                        a->access_key_id);
    } else if (sent && sent[0]) {
        rc = refuse(a, PIER_SIGV4_TOKEN_INVALID,
                    "sigv4: the request carries a security token but access key %s has none",
                    a->access_key_id);
    }
done:
    pier_buf_free(&qtok);
    return rc;
}

/* The payload hash to sign: the caller's; else, for a presigned URL, its
 * X-Amz-Content-Sha256 parameter or UNSIGNED-PAYLOAD (a header cannot change
 * what a URL signed); else the x-amz-content-sha256 header. */
static int pick_payload_hash(pier_sigv4_auth *a, const pier_sigv4_request *req)
{
    pier_buf q = PIER_BUF_INIT;
    const char *h = req->payload_hash;
    int rc = 0;
    if (!h && a->presigned) {
        int found = query_get(req->query, "X-Amz-Content-Sha256", &q);
        if (found < 0) {
            rc = refuse(a, PIER_SIGV4_MALFORMED,
                        "sigv4: X-Amz-Content-Sha256 is repeated or badly escaped");
            goto done;
        }
        h = found ? pier_buf_cstr(&q) : PIER_SIGV4_UNSIGNED_PAYLOAD;
    }
    if (!h && req->headers)
        h = pier_http_headers_get(req->headers, "x-amz-content-sha256");
    if (!h) {
        rc = refuse(a, PIER_SIGV4_MALFORMED,
                    "sigv4: the request has no x-amz-content-sha256 header");
        goto done;
    }
    if (!valid_payload_hash(h)) {
        rc = refuse(a, PIER_SIGV4_MALFORMED,
                    "sigv4: x-amz-content-sha256 '%.80s' is neither a hex SHA-256 nor a "
                    "known payload word",
                    h);
        goto done;
    }
    pier_buf_reset(&a->payload_hash);
    rc = pier_buf_puts(&a->payload_hash, h);
done:
    pier_buf_free(&q);
    return rc;
}

/* Recomputes the canonical request, string to sign and signature from the
 * request as received. *missing gets a signed header that is absent. */
static int recompute(pier_sigv4_auth *a, const pier_sigv4_request *req,
                     const pier_sigv4_verify_options *o, const char *secret, char **missing)
{
    pier_buf path = PIER_BUF_INIT, query = PIER_BUF_INIT, headers = PIER_BUF_INIT;
    pier_sigv4_result *r = &a->computed;
    char scope[PIER_SIGV4_SCOPE_MAX];
    unsigned char key[PIER_SHA256_LEN];
    int rc = 0;
    TRY(pier_sigv4_make_scope(scope, sizeof scope, a->date, a->region, a->service));
    memcpy(r->amz_date, a->amz_date, sizeof r->amz_date);
    TRY(canon_path(&path, req->path, o->sig.normalize_path, o->sig.double_encode));
    TRY(canon_query(&query, req->query, a->presigned ? "X-Amz-Signature" : NULL));
    TRY(canon_headers_listed(&headers, pier_buf_cstr(&a->signed_headers), req->headers, req->host,
                             missing));
    pier_buf_reset(&r->signed_headers);
    TRY(pier_buf_put_slice(&r->signed_headers, pier_buf_slice(&a->signed_headers)));
    TRY(canon_request(&r->canonical_request, req->method ? req->method : "", &path, &query,
                      &headers, &r->signed_headers, pier_buf_cstr(&a->payload_hash)));
    TRY(string_to_sign(&r->string_to_sign, a->amz_date, scope, &r->canonical_request));
    pier_sigv4_signing_key(key, secret, a->date, a->region, a->service);
    pier_sigv4_signature_hex(r->signature, key, pier_buf_cstr(&r->string_to_sign),
                             r->string_to_sign.len);
    pier_sigv4_chunk_seed(&a->chunk, key, a->amz_date, scope, a->signature);
    memset(key, 0, sizeof key);
done:
    pier_buf_free(&path);
    pier_buf_free(&query);
    pier_buf_free(&headers);
    return rc;
}

int pier_sigv4_verify(pier_sigv4_auth *out, const pier_sigv4_request *req, time_t now,
                      const pier_sigv4_verify_options *opts)
{
    pier_sigv4_secret secret;
    char *missing = NULL;
    pier_buf_init(&secret.secret, 4096);
    pier_buf_init(&secret.session_token, 0);
    secret.expired = false;
    int rc = 0;
    if (!opts || !opts->lookup) {
        out->status = PIER_SIGV4_ERROR;
        rc = pier_error_set(PIER_EINVALID, "sigv4: verify needs a secret lookup");
        goto done;
    }
    TRY(pier_sigv4_parse(out, req));
    out->status = PIER_SIGV4_MALFORMED;
    TRY(check_scope(out, opts));
    TRY(check_time(out, now, opts));
    TRY(pick_payload_hash(out, req));

    rc = opts->lookup(opts->lookup_ctx, out->access_key_id, &secret);
    if (rc == PIER_ENOTFOUND) {
        rc =
            refuse(out, PIER_SIGV4_UNKNOWN_KEY,
                   "sigv4: the access key id %s does not exist in our records", out->access_key_id);
        goto done;
    }
    if (rc) {
        out->status = PIER_SIGV4_ERROR;
        goto done;
    }
    if (secret.expired) {
        rc = refuse(out, PIER_SIGV4_TOKEN_EXPIRED,
                    "sigv4: the credentials of access key %s have expired", out->access_key_id);
        goto done;
    }
    if (!secret.secret.len) {
        out->status = PIER_SIGV4_ERROR;
        rc =
            pier_error_set(PIER_ERR, "sigv4: the lookup gave no secret for %s", out->access_key_id);
        goto done;
    }
    TRY(check_token(out, req, &secret));

    rc = recompute(out, req, opts, pier_buf_cstr(&secret.secret), &missing);
    if (rc) {
        out->status = PIER_SIGV4_ERROR;
        goto done;
    }
    if (!pier_ct_equal(out->computed.signature, out->signature, 64)) {
        memset(&out->chunk, 0, sizeof out->chunk);
        if (missing)
            rc = refuse(out, PIER_SIGV4_MISMATCH,
                        "sigv4: the signature does not match (signed header '%s' is missing "
                        "from the request)",
                        missing);
        else
            rc = refuse(out, PIER_SIGV4_MISMATCH,
                        "sigv4: the request signature we calculated does not match the "
                        "signature you provided; check your key and signing method");
        goto done;
    }
    out->status = PIER_SIGV4_OK;
done:
    if (secret.secret.ptr)
        memset(secret.secret.ptr, 0, secret.secret.len);
    pier_buf_free(&secret.secret);
    pier_buf_free(&secret.session_token);
    free(missing);
    return rc;
}

bool pier_sigv4_auth_signed(const pier_sigv4_auth *a, const char *name)
{
    size_t n = strlen(name);
    const char *p = pier_buf_cstr(&a->signed_headers);
    while (*p) {
        const char *semi = strchr(p, ';');
        size_t len = semi ? (size_t)(semi - p) : strlen(p);
        if (len == n && strncasecmp(p, name, n) == 0)
            return true;
        p += len;
        if (*p == ';')
            p++;
    }
    return false;
}

const char *pier_sigv4_status_code(pier_sigv4_status s, bool presigned, int *http)
{
    int status = 403;
    const char *code = NULL;
    switch (s) {
    case PIER_SIGV4_OK:
        status = 200;
        break;
    case PIER_SIGV4_MISSING:
        code = "AccessDenied";
        break;
    case PIER_SIGV4_MALFORMED:
        status = 400;
        code = presigned ? "AuthorizationQueryParametersError" : "AuthorizationHeaderMalformed";
        break;
    case PIER_SIGV4_UNKNOWN_KEY:
        code = "InvalidAccessKeyId";
        break;
    case PIER_SIGV4_MISMATCH:
        code = "SignatureDoesNotMatch";
        break;
    case PIER_SIGV4_SKEWED:
        code = "RequestTimeTooSkewed";
        break;
    case PIER_SIGV4_EXPIRED:
        code = "AccessDenied";
        break;
    case PIER_SIGV4_TOKEN_MISSING:
        code = "AccessDenied";
        break;
    case PIER_SIGV4_TOKEN_INVALID:
        status = 400;
        code = "InvalidToken";
        break;
    case PIER_SIGV4_TOKEN_EXPIRED:
        status = 400;
        code = "ExpiredToken";
        break;
    case PIER_SIGV4_ERROR:
        status = 500;
        code = "InternalError";
        break;
    }
    if (http)
        *http = status;
    return code;
}
