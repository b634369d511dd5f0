/*
 * digest: hashes, HMAC, base64, random bytes and constant-time comparison,
 * over OpenSSL's EVP interfaces. The only place in pier that includes
 * OpenSSL's headers.
 *
 * Streaming contexts (pier_hash) let a caller hash a file or a network body
 * piece by piece, so no payload ever has to sit whole in memory.
 */
#ifndef PIER_DIGEST_H
#define PIER_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define PIER_SHA256_LEN 32
#define PIER_SHA1_LEN   20
#define PIER_MD5_LEN    16

typedef enum { PIER_HASH_MD5, PIER_HASH_SHA1, PIER_HASH_SHA256 } pier_hash_alg;

typedef struct pier_hash pier_hash; /* an incremental hash */

pier_hash *pier_hash_new(pier_hash_alg alg);
void pier_hash_update(pier_hash *h, const void *data, size_t n);
/* Writes the digest (16, 20 or 32 bytes) into out and returns its length;
 * the context can then be reused for a new message. */
size_t pier_hash_final(pier_hash *h, unsigned char *out);
void pier_hash_free(pier_hash *h);

void pier_sha256(unsigned char out[PIER_SHA256_LEN], const void *data, size_t n);
void pier_md5(unsigned char out[PIER_MD5_LEN], const void *data, size_t n);
/* SHA-256 of data as 64 lowercase hex characters + NUL. */
void pier_sha256_hex(char out[65], const void *data, size_t n);
void pier_hmac_sha256(unsigned char out[PIER_SHA256_LEN], const void *key, size_t key_len,
                      const void *data, size_t n);
void pier_hmac_sha1(unsigned char out[PIER_SHA1_LEN], const void *key, size_t key_len,
                    const void *data, size_t n);

/* Hashes a whole file with the given algorithms in one read pass. Either
 * out pointer may be NULL. Errors name the path. */
int pier_digest_file(const char *path, unsigned char md5[PIER_MD5_LEN],
                     unsigned char sha256[PIER_SHA256_LEN]);

/* Standard base64 with padding, appended to out. */
int pier_base64_encode(pier_buf *out, const void *data, size_t n);
/* Decodes standard base64 (padding required, whitespace refused) into out. */
int pier_base64_decode(pier_buf *out, const char *s, size_t n);

/* Equality in time that depends only on the length, for secrets and
 * signatures. */
bool pier_ct_equal(const void *a, const void *b, size_t n);
bool pier_ct_streq(const char *a, const char *b);

/* Fills out with n cryptographically random bytes (aborts if the system
 * random source fails: nothing safe can follow). */
void pier_random_bytes(void *out, size_t n);
/* n random characters from [A-Za-z0-9] (or upper-case only) + NUL. */
void pier_random_token(char *out, size_t n, bool upper_only);

/* CRC-32 (IEEE) and CRC-32C (Castagnoli), incremental: start from 0. */
uint32_t pier_crc32(uint32_t crc, const void *data, size_t n);
uint32_t pier_crc32c(uint32_t crc, const void *data, size_t n);

#endif
