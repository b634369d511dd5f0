/*
 * sigv4internal: the pieces of the signer that sigv4.c, sigv4chunk.c and
 * sigv4verify.c share, and nothing else includes: input checks, the
 * canonical steps, the credential scope, the signing key, the signature of
 * a string, and seeding a chunk chain. All are defined in sigv4.c; pure
 * functions, no I/O.
 */
#ifndef PIER_AWS_SIGV4INTERNAL_H
#define PIER_AWS_SIGV4INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/sigv4.h"
#include "base/buf.h"
#include "base/digest.h"

/* s[0..n) is lowercase hex only. */
bool pier_sigv4_is_hex_lower(const char *s, size_t n);
/* s is a signature: 64 lowercase hex characters. */
bool pier_sigv4_is_signature(const char *s);
/* c is whitespace (space, tab, CR, LF, VT, FF). */
bool pier_sigv4_is_ws(char c);
/* s is an access key id pier accepts (length and characters). */
bool pier_sigv4_valid_key_id(const char *s);
/* s is a payload hash: 64 lowercase hex characters or one of the
 * UNSIGNED-PAYLOAD / STREAMING-* markers. */
bool pier_sigv4_valid_payload_hash(const char *s);
/* The value of a hex digit (either case), or -1. */
int pier_sigv4_hexval(char c);
/* s is a region or service name: 1..PIER_SIGV4_NAME_MAX letters, digits,
 * '-', '_' or '.'. */
bool pier_sigv4_valid_name(const char *s);
/* The credential scope "YYYYMMDD/region/service/aws4_request". */
int pier_sigv4_make_scope(char *out, size_t size, const char *date8, const char *region,
                          const char *service);
/* Appends the canonical URI of path: normalized first when asked, then
 * encoded once more (double_encode) or re-encoded. */
int pier_sigv4_canon_path(pier_buf *out, const char *path, bool normalize, bool double_encode);
/* Appends the canonical form of query: every "name[=value]" re-encoded,
 * sorted by name then value, joined by '&'; a parameter named skip (as
 * sent) is left out. */
int pier_sigv4_canon_query(pier_buf *out, const char *query, const char *skip);
/* Verifier's side: the canonical lines of the headers named by signed_list
 * (';'-separated, in its order); *missing gets the first name absent from
 * the request (owned). */
int pier_sigv4_canon_headers_listed(pier_buf *out, const char *signed_list,
                                    const pier_http_headers *h, const char *host, char **missing);
/* The canonical request: method, path, query, headers, signed list and
 * payload hash, joined by newlines. */
int pier_sigv4_canon_request(pier_buf *out, const char *method, const pier_buf *path,
                             const pier_buf *query, const pier_buf *headers,
                             const pier_buf *signed_list, const char *payload_hash);
/* The string to sign: algorithm, date, scope and hex(SHA-256(creq)). */
int pier_sigv4_string_to_sign(pier_buf *out, const char *amz_date, const char *scope,
                              const pier_buf *creq);
/* The signing key: the HMAC chain "AWS4"+secret -> date -> region ->
 * service -> "aws4_request". */
void pier_sigv4_signing_key(unsigned char key[PIER_SHA256_LEN], const char *secret,
                            const char *date8, const char *region, const char *service);
/* hex(HMAC-SHA256(key, msg[0..n))) into out. */
void pier_sigv4_signature_hex(char out[65], const unsigned char key[PIER_SHA256_LEN],
                              const char *msg, size_t n);
/* Starts a chunk chain: its key, date, scope and seed signature. */
void pier_sigv4_chunk_seed(pier_sigv4_chunk *c, const unsigned char key[PIER_SHA256_LEN],
                           const char *amz_date, const char *scope, const char *seed);

#endif
