/*
 * sigv4chunk: aws-chunked bodies (API in sigv4.h): the chain of chunk
 * signatures after the seed signature, for the sender (sign, write a framed
 * chunk, the body's length) and for the receiver (parse a chunk header,
 * verify), and the trailer signature that ends a chain.
 *
 * Each link signs "AWS4-HMAC-SHA256-PAYLOAD" (or "-TRAILER"), the date, the
 * scope, the previous signature and the hash of the data; verifying
 * advances the chain only on a good link. The key, scope and signature
 * steps are sigv4.c's (sigv4internal.h). No I/O.
 *
 * Costs: one HMAC per link, plus a SHA-256 of the data where this file
 * hashes it (chunk_write, the trailer).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aws/sigv4.h"
#include "aws/sigv4internal.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/str.h"

/* ---- aws-chunked ---------------------------------------------------------- */

int pier_sigv4_chunk_init(pier_sigv4_chunk *c, const pier_sigv4_credentials *cred,
                          const char *amz_date, const char *region, const char *service,
                          const char *seed_signature)
{
    char scope[PIER_SIGV4_SCOPE_MAX];
    unsigned char key[PIER_SHA256_LEN];
    memset(c, 0, sizeof *c);
    if (!cred || !cred->secret_access_key || !amz_date || strlen(amz_date) != 16 ||
        !pier_sigv4_valid_name(region) || !pier_sigv4_valid_name(service) ||
        !pier_sigv4_is_signature(seed_signature))
        return pier_error_set(PIER_EINVALID, "sigv4: chunk signing needs a secret, an "
                                             "X-Amz-Date, a region, a service and a seed "
                                             "signature");
    int rc = pier_sigv4_make_scope(scope, sizeof scope, amz_date, region, service);
    if (rc)
        return rc;
    pier_sigv4_signing_key(key, cred->secret_access_key, amz_date, region, service);
    pier_sigv4_chunk_seed(c, key, amz_date, scope, seed_signature);
    memset(key, 0, sizeof key);
    return 0;
}

/* The string to sign of the next link: a chunk (data hash) or the trailer. */
static int chunk_sts(pier_buf *out, const pier_sigv4_chunk *c, bool trailer, const char *hash)
{
    if (trailer)
        return pier_buf_printf(out, PIER_SIGV4_ALGORITHM "-TRAILER\n%s\n%s\n%s\n%s", c->amz_date,
                               c->scope, c->prev, hash);
    return pier_buf_printf(out, PIER_SIGV4_ALGORITHM "-PAYLOAD\n%s\n%s\n%s\n%s\n%s", c->amz_date,
                           c->scope, c->prev, PIER_SIGV4_EMPTY_SHA256, hash);
}

/* Computes the next signature of the chain into sig, without advancing it. */
static int chunk_next(const pier_sigv4_chunk *c, char sig[65], bool trailer, const char *hash,
                      pier_buf *sts_out)
{
    pier_buf sts = PIER_BUF_INIT;
    if (!pier_sigv4_is_signature(c->prev))
        return pier_error_set(PIER_EINVALID, "sigv4: the chunk chain has no seed signature");
    if (!hash || strlen(hash) != 64 || !pier_sigv4_is_hex_lower(hash, 64))
        return pier_error_set(PIER_EINVALID, "sigv4: a chunk hash must be 64 lowercase hex");
    int rc = chunk_sts(&sts, c, trailer, hash);
    if (!rc) {
        pier_sigv4_signature_hex(sig, c->key, pier_buf_cstr(&sts), sts.len);
        if (sts_out) {
            pier_buf_reset(sts_out);
            rc = pier_buf_put_slice(sts_out, pier_buf_slice(&sts));
        }
    }
    pier_buf_free(&sts);
    return rc;
}

int pier_sigv4_chunk_sign(pier_sigv4_chunk *c, char sig[65], const char *data_sha256_hex,
                          pier_buf *sts)
{
    int rc = chunk_next(c, sig, false, data_sha256_hex, sts);
    if (!rc)
        memcpy(c->prev, sig, 65);
    return rc;
}

/* Compares a received link signature with the expected one in constant time. */
static int chain_verify(pier_sigv4_chunk *c, const char *sig, bool trailer, const char *hash)
{
    char expect[65];
    int rc = chunk_next(c, expect, trailer, hash, NULL);
    if (rc)
        return rc;
    if (!pier_sigv4_is_signature(sig) || !pier_ct_equal(expect, sig, 64))
        return pier_error_set(PIER_EAUTH, "sigv4: the %s signature does not match",
                              trailer ? "trailer" : "chunk");
    memcpy(c->prev, expect, 65);
    return 0;
}

int pier_sigv4_chunk_verify(pier_sigv4_chunk *c, const char *sig, const char *data_sha256_hex)
{
    return chain_verify(c, sig, false, data_sha256_hex);
}

int pier_sigv4_chunk_write(pier_sigv4_chunk *c, pier_buf *out, const void *data, size_t n)
{
    char hash[65], sig[65];
    pier_sha256_hex(hash, n ? data : "", n);
    int rc = pier_sigv4_chunk_sign(c, sig, hash, NULL);
    if (!rc)
        rc = pier_buf_printf(out, "%zx;chunk-signature=%s\r\n", n, sig);
    if (!rc && n)
        rc = pier_buf_put(out, data, n);
    if (!rc)
        rc = pier_buf_puts(out, "\r\n");
    return rc;
}

int pier_sigv4_chunk_parse_header(pier_slice line, uint64_t *size, char sig[65])
{
    static const char tag[] = ";chunk-signature=";
    size_t i = 0;
    uint64_t v = 0;
    while (i < line.len && pier_sigv4_hexval(line.ptr[i]) >= 0) {
        if (i >= 16)
            return pier_error_set(PIER_EINVALID, "aws-chunked: chunk size is too large");
        v = v * 16 + (uint64_t)pier_sigv4_hexval(line.ptr[i]);
        i++;
    }
    if (i == 0 || line.len - i != sizeof tag - 1 + 64 ||
        memcmp(line.ptr + i, tag, sizeof tag - 1) != 0 ||
        !pier_sigv4_is_hex_lower(line.ptr + i + sizeof tag - 1, 64))
        return pier_error_set(PIER_EINVALID,
                              "aws-chunked: chunk header '%.*s' is not "
                              "<hex size>;chunk-signature=<signature>",
                              (int)(line.len > 120 ? 120 : line.len), line.ptr);
    *size = v;
    memcpy(sig, line.ptr + i + sizeof tag - 1, 64);
    sig[64] = '\0';
    return 0;
}

uint64_t pier_sigv4_chunked_length(uint64_t payload_len, uint64_t chunk_size)
{
    /* Per chunk: hex size, ";chunk-signature=" (17), 64, CRLF, data, CRLF. */
    const uint64_t fixed = 17 + 64 + 2 + 2;
    uint64_t total = 1 + fixed; /* the final "0" chunk */
    if (chunk_size == 0)
        return total;
    uint64_t full = payload_len / chunk_size, rest = payload_len % chunk_size;
    char hex[24];
    int hex_full = snprintf(hex, sizeof hex, "%llx", (unsigned long long)chunk_size);
    total += full * ((uint64_t)hex_full + fixed + chunk_size);
    if (rest) {
        int hex_rest = snprintf(hex, sizeof hex, "%llx", (unsigned long long)rest);
        total += (uint64_t)hex_rest + fixed + rest;
    }
    return total;
}

int pier_sigv4_trailer_sign(pier_sigv4_chunk *c, char sig[65], const char *trailer, size_t n,
                            pier_buf *sts)
{
    char hash[65];
    pier_sha256_hex(hash, n ? trailer : "", n);
    int rc = chunk_next(c, sig, true, hash, sts);
    if (!rc)
        memcpy(c->prev, sig, 65);
    return rc;
}

int pier_sigv4_trailer_verify(pier_sigv4_chunk *c, const char *sig, const char *trailer, size_t n)
{
    char hash[65];
    pier_sha256_hex(hash, n ? trailer : "", n);
    return chain_verify(c, sig, true, hash);
}
