/*
 * digest: OpenSSL wrappers. See digest.h.
 *
 * CRCs are table-driven (one 256-entry table each, built on first use);
 * they are used for the x-amz-checksum-crc32/crc32c headers only.
 */
#include "base/digest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/error.h"
#include "base/mem.h"

struct pier_hash {
    EVP_MD_CTX *ctx;  /* the running digest */
    const EVP_MD *md; /* its algorithm, to restart after final */
};

static const EVP_MD *alg_md(pier_hash_alg alg)
{
    switch (alg) {
    case PIER_HASH_MD5:
        return EVP_md5();
    case PIER_HASH_SHA1:
        return EVP_sha1();
    default:
        return EVP_sha256();
    }
}

pier_hash *pier_hash_new(pier_hash_alg alg)
{
    pier_hash *h = pier_calloc(1, sizeof *h);
    h->ctx = EVP_MD_CTX_new();
    h->md = alg_md(alg);
    if (!h->ctx || !EVP_DigestInit_ex(h->ctx, h->md, NULL))
        abort();
    return h;
}

void pier_hash_update(pier_hash *h, const void *data, size_t n)
{
    if (n)
        EVP_DigestUpdate(h->ctx, data, n);
}

size_t pier_hash_final(pier_hash *h, unsigned char *out)
{
    unsigned int len = 0;
    EVP_DigestFinal_ex(h->ctx, out, &len);
    EVP_DigestInit_ex(h->ctx, h->md, NULL);
    return len;
}

void pier_hash_free(pier_hash *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

static void one_shot(const EVP_MD *md, unsigned char *out, const void *data, size_t n)
{
    unsigned int len = 0;
    if (!EVP_Digest(data, n, out, &len, md, NULL))
        abort();
}

void pier_sha256(unsigned char out[PIER_SHA256_LEN], const void *data, size_t n)
{
    one_shot(EVP_sha256(), out, data, n);
}

void pier_md5(unsigned char out[PIER_MD5_LEN], const void *data, size_t n)
{
    one_shot(EVP_md5(), out, data, n);
}

void pier_sha256_hex(char out[65], const void *data, size_t n)
{
    unsigned char d[PIER_SHA256_LEN];
    pier_sha256(d, data, n);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < PIER_SHA256_LEN; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[64] = '\0';
}

void pier_hmac_sha256(unsigned char out[PIER_SHA256_LEN], const void *key, size_t key_len,
                      const void *data, size_t n)
{
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, data, n, out, &len))
        abort();
}

void pier_hmac_sha1(unsigned char out[PIER_SHA1_LEN], const void *key, size_t key_len,
                    const void *data, size_t n)
{
    unsigned int len = 0;
    if (!HMAC(EVP_sha1(), key, (int)key_len, data, n, out, &len))
        abort();
}

int pier_digest_file(const char *path, unsigned char md5[PIER_MD5_LEN],
                     unsigned char sha256[PIER_SHA256_LEN])
{
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO, "%s", path);
    pier_hash *hm = md5 ? pier_hash_new(PIER_HASH_MD5) : NULL;
    pier_hash *hs = sha256 ? pier_hash_new(PIER_HASH_SHA256) : NULL;
    enum { CHUNK = 256 * 1024 };
    unsigned char *chunk = pier_malloc(CHUNK);
    for (;;) {
        ssize_t r = read(fd, chunk, CHUNK);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = pier_error_set_errno(PIER_EIO, "reading %s", path);
            goto done;
        }
        if (r == 0)
            break;
        if (hm)
            pier_hash_update(hm, chunk, (size_t)r);
        if (hs)
            pier_hash_update(hs, chunk, (size_t)r);
    }
    if (hm)
        pier_hash_final(hm, md5);
    if (hs)
        pier_hash_final(hs, sha256);
done:
    free(chunk);
    pier_hash_free(hm);
    pier_hash_free(hs);
    close(fd);
    return rc;
}

int pier_base64_encode(pier_buf *out, const void *data, size_t n)
{
    size_t need = 4 * ((n + 2) / 3);
    char *at = pier_buf_reserve(out, need);
    if (!at)
        return PIER_ETOOBIG;
    /* EVP_EncodeBlock writes a NUL after the output; reserve leaves room. */
    int w = EVP_EncodeBlock((unsigned char *)at, data, (int)n);
    pier_buf_commit(out, (size_t)w);
    return 0;
}

int pier_base64_decode(pier_buf *out, const char *s, size_t n)
{
    if (n % 4)
        return pier_error_set(PIER_EINVALID, "invalid base64 (length %zu)", n);
    size_t pad = 0;
    if (n && s[n - 1] == '=')
        pad++;
    if (n > 1 && s[n - 2] == '=')
        pad++;
    char *at = pier_buf_reserve(out, 3 * (n / 4) + 1);
    if (!at)
        return PIER_ETOOBIG;
    int w = EVP_DecodeBlock((unsigned char *)at, (const unsigned char *)s, (int)n);
    if (w < 0)
        return pier_error_set(PIER_EINVALID, "invalid base64");
    pier_buf_commit(out, (size_t)w - pad);
    return 0;
}

bool pier_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

bool pier_ct_streq(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    /* Compare over a's length either way so timing depends only on it. */
    bool same = CRYPTO_memcmp(a, m >= n ? b : a, n) == 0;
    return same && n == m;
}

void pier_random_bytes(void *out, size_t n)
{
    if (RAND_bytes(out, (int)n) != 1) {
        fprintf(stderr, "pier: the system random source failed\n");
        abort();
    }
}

void pier_random_token(char *out, size_t n, bool upper_only)
{
    static const char all[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const char *set = upper_only ? upper : all;
    size_t m = upper_only ? sizeof upper - 1 : sizeof all - 1;
    for (size_t i = 0; i < n;) {
        unsigned char r[64];
        pier_random_bytes(r, sizeof r);
        for (size_t j = 0; j < sizeof r && i < n; j++) {
            /* Rejection sampling keeps the distribution uniform. */
            if (r[j] >= 256 - (256 % m))
                continue;
            out[i++] = set[r[j] % m];
        }
    }
    out[n] = '\0';
}

static uint32_t crc_table[2][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    const uint32_t poly[2] = {0xEDB88320u, 0x82F63B78u};
    for (int t = 0; t < 2; t++) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? poly[t] ^ (c >> 1) : c >> 1;
            crc_table[t][i] = c;
        }
    }
}

static uint32_t crc_run(int t, uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[t][(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t pier_crc32(uint32_t crc, const void *data, size_t n)
{
    return crc_run(0, crc, data, n);
}

uint32_t pier_crc32c(uint32_t crc, const void *data, size_t n)
{
    return crc_run(1, crc, data, n);
}
