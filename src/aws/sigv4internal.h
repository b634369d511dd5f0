/*
 * sigv4internal: the pieces of the signer that sigv4.c and sigv4chunk.c
 * share, and nothing else includes: input checks, the credential scope, the
 * signing key, the signature of a string, and seeding a chunk chain. All are
 * defined in sigv4.c; pure functions, no I/O.
 */
#ifndef PIER_AWS_SIGV4INTERNAL_H
#define PIER_AWS_SIGV4INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/sigv4.h"
#include "base/digest.h"

/* s[0..n) is lowercase hex only. */
bool pier_sigv4_is_hex_lower(const char *s, size_t n);
/* s is a signature: 64 lowercase hex characters. */
bool pier_sigv4_is_signature(const char *s);
/* The value of a hex digit (either case), or -1. */
int pier_sigv4_hexval(char c);
/* s is a region or service name: 1..PIER_SIGV4_NAME_MAX letters, digits,
 * '-', '_' or '.'. */
bool pier_sigv4_valid_name(const char *s);
/* The credential scope "YYYYMMDD/region/service/aws4_request". */
int pier_sigv4_make_scope(char *out, size_t size, const char *date8, const char *region,
                          const char *service);
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
