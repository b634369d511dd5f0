/*
 * sigv4verify: the verifying side of SigV4 (see sigv4.h for the API):
 * parsing an Authorization header or a presigned URL's query into a
 * pier_sigv4_auth, checking scope, clock skew, expiry and the session token,
 * choosing the payload hash, recomputing the signature with the canonical
 * steps of sigv4.c (sigv4internal.h) from the signed headers the request
 * names, and comparing in constant time; then the S3 error code and HTTP
 * status for each refusal.
 *
 * Invariants: a refusal sets a->status and the one-line message together
 * (refuse); nothing is trusted before it is parsed and range-checked; the
 * computed signature is compared with pier_ct_equal only. The caller
 * supplies the time: nothing here reads a clock or the network.
 *
 * Costs: one canonical request and one signature (cheaper when the signing
 * key is cached, sigv4.c), plus a linear scan of the query per presigned
 * parameter. Buffers are capped pier_bufs.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/sigv4.h"
#include "aws/sigv4internal.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((rc = (expr)) != 0)                                                                    \
            goto done;                                                                             \
    } while (0)

/* ---- verification: parsing ---------------------------------------------- */

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
    if (!pier_sigv4_valid_key_id(a->access_key_id))
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
    if (strncmp(v, PIER_SIGV4_ALGORITHM, alen) != 0 || !pier_sigv4_is_ws(v[alen]))
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
    if (!pier_sigv4_valid_payload_hash(h)) {
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
    TRY(pier_sigv4_canon_path(&path, req->path, o->sig.normalize_path, o->sig.double_encode));
    TRY(pier_sigv4_canon_query(&query, req->query, a->presigned ? "X-Amz-Signature" : NULL));
    TRY(pier_sigv4_canon_headers_listed(&headers, pier_buf_cstr(&a->signed_headers), req->headers,
                                        req->host, missing));
    pier_buf_reset(&r->signed_headers);
    TRY(pier_buf_put_slice(&r->signed_headers, pier_buf_slice(&a->signed_headers)));
    TRY(pier_sigv4_canon_request(&r->canonical_request, req->method ? req->method : "", &path,
                                 &query, &headers, &r->signed_headers,
                                 pier_buf_cstr(&a->payload_hash)));
    TRY(pier_sigv4_string_to_sign(&r->string_to_sign, a->amz_date, scope, &r->canonical_request));
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
