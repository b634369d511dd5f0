/*
 * s3chunked: see s3chunked.h. A byte-driven state machine: header line,
 * data, CRLF, ... final chunk, trailer lines, empty line. Lines are
 * collected in a buffer capped at 8 KiB (a chunk header or a trailer line);
 * data passes straight through to the sink. Each chunk's data is hashed
 * (SHA-256) only when chunks are signed. Cost: O(1) memory per request.
 */
#include "stack/s3chunked.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"

#define LINE_MAX_LEN 8192
#define MAX_TRAILERS 16

typedef enum { S_HEADER, S_DATA, S_DATA_CR, S_DATA_LF, S_TRAILER, S_DONE, S_ERROR } state;

struct pier_s3chunked {
    state st;                   /* where the decoder is */
    bool is_signed;             /* chunks carry signatures */
    bool signed_trailer;        /* the trailer must be signed */
    bool trailer_verified;      /* a trailer signature matched */
    pier_sigv4_chunk chain;     /* signature chain */
    pier_s3chunked_sink sink;   /* decoded data goes here */
    void *ctx;                  /* its context */
    pier_buf line;              /* the line being collected */
    uint64_t remaining;         /* data bytes left in this chunk */
    char sig[65];               /* this chunk's claimed signature */
    pier_hash *sha;             /* SHA-256 of this chunk's data (signed) */
    uint64_t decoded;           /* data bytes delivered */
    pier_buf canon;             /* "name:value\n" of the trailers, for the signature */
    char *names[MAX_TRAILERS];  /* trailer names */
    char *values[MAX_TRAILERS]; /* trailer values */
    size_t trailer_count;       /* used */
};

pier_s3chunked *pier_s3chunked_new(const pier_sigv4_chunk *chain, bool signed_trailer,
                                   pier_s3chunked_sink sink, void *ctx)
{
    pier_s3chunked *d = pier_calloc(1, sizeof *d);
    d->st = S_HEADER;
    if (chain) {
        d->is_signed = true;
        d->chain = *chain;
        d->sha = pier_hash_new(PIER_HASH_SHA256);
    }
    d->signed_trailer = signed_trailer;
    d->sink = sink;
    d->ctx = ctx;
    pier_buf_init(&d->line, LINE_MAX_LEN);
    pier_buf_init(&d->canon, LINE_MAX_LEN * 2);
    return d;
}

void pier_s3chunked_free(pier_s3chunked *d)
{
    if (!d)
        return;
    pier_buf_free(&d->line);
    pier_buf_free(&d->canon);
    pier_hash_free(d->sha);
    for (size_t i = 0; i < d->trailer_count; i++) {
        free(d->names[i]);
        free(d->values[i]);
    }
    free(d);
}

static int fail(pier_s3chunked *d, int code, const char *msg)
{
    d->st = S_ERROR;
    return pier_error_set(code, "%s", msg);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int verify_chunk(pier_s3chunked *d, bool empty)
{
    unsigned char digest[PIER_SHA256_LEN];
    char hex[65];
    if (empty)
        snprintf(hex, sizeof hex, "%s", PIER_SIGV4_EMPTY_SHA256);
    else {
        pier_hash_final(d->sha, digest);
        pier_hex_encode(hex, digest, PIER_SHA256_LEN);
    }
    if (pier_sigv4_chunk_verify(&d->chain, d->sig, hex) != 0)
        return fail(d, PIER_EAUTH,
                    "SignatureDoesNotMatch: an aws-chunked chunk signature does not match");
    return 0;
}

static int on_header_line(pier_s3chunked *d)
{
    pier_slice line = pier_buf_slice(&d->line);
    uint64_t size = 0;
    if (d->is_signed) {
        if (pier_sigv4_chunk_parse_header(line, &size, d->sig) != 0) {
            d->st = S_ERROR;
            return PIER_EINVALID;
        }
    } else {
        size_t i = 0;
        while (i < line.len && hexval(line.ptr[i]) >= 0) {
            if (i >= 15)
                return fail(d, PIER_EINVALID, "IncompleteBody: aws-chunked chunk size too large");
            size = size * 16 + (uint64_t)hexval(line.ptr[i]);
            i++;
        }
        if (i == 0 || (i < line.len && line.ptr[i] != ';'))
            return fail(d, PIER_EINVALID, "IncompleteBody: bad aws-chunked chunk header");
    }
    if (size == 0) {
        if (d->is_signed) {
            int rc = verify_chunk(d, true);
            if (rc)
                return rc;
        }
        d->st = S_TRAILER;
        return 0;
    }
    d->remaining = size;
    d->st = S_DATA;
    return 0;
}

static int on_trailer_line(pier_s3chunked *d)
{
    pier_slice line = pier_buf_slice(&d->line);
    if (line.len == 0) {
        if (d->signed_trailer && d->trailer_count > 0 && !d->trailer_verified)
            return fail(d, PIER_EAUTH, "SignatureDoesNotMatch: the trailer is not signed");
        d->st = S_DONE;
        return 0;
    }
    const char *colon = memchr(line.ptr, ':', line.len);
    if (!colon || colon == line.ptr)
        return fail(d, PIER_EINVALID, "IncompleteBody: bad aws-chunked trailer line");
    size_t nl = (size_t)(colon - line.ptr);
    pier_slice value = pier_slice_trim((pier_slice){colon + 1, line.len - nl - 1});
    char *name = pier_strndup(line.ptr, nl);
    for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    if (strcmp(name, "x-amz-trailer-signature") == 0) {
        free(name);
        if (!d->is_signed)
            return 0; /* nothing to check it against */
        char sig[65];
        snprintf(sig, sizeof sig, "%.*s", (int)(value.len > 64 ? 64 : value.len), value.ptr);
        if (pier_sigv4_trailer_verify(&d->chain, sig, d->canon.ptr ? d->canon.ptr : "",
                                      d->canon.len) != 0)
            return fail(d, PIER_EAUTH,
                        "SignatureDoesNotMatch: the aws-chunked trailer signature does not match");
        d->trailer_verified = true;
        return 0;
    }
    if (d->trailer_count == MAX_TRAILERS) {
        free(name);
        return fail(d, PIER_EINVALID, "InvalidRequest: too many trailing headers");
    }
    pier_buf_printf(&d->canon, "%s:%.*s\n", name, (int)value.len, value.ptr);
    d->names[d->trailer_count] = name;
    d->values[d->trailer_count] = pier_slice_dup(value);
    d->trailer_count++;
    return 0;
}

int pier_s3chunked_feed(pier_s3chunked *d, const char *data, size_t n)
{
    int rc = 0;
    size_t i = 0;
    if (d->st == S_ERROR)
        return pier_error_set(PIER_EINVALID, "IncompleteBody: aws-chunked body already failed");
    while (i < n) {
        switch (d->st) {
        case S_HEADER:
        case S_TRAILER: {
            const char *nl = memchr(data + i, '\n', n - i);
            size_t take = nl ? (size_t)(nl - (data + i)) : n - i;
            if (pier_buf_put(&d->line, data + i, take) != 0)
                return fail(d, PIER_EINVALID, "IncompleteBody: aws-chunked line too long");
            i += take;
            if (!nl)
                break;
            i++; /* the '\n' */
            if (d->line.len == 0 || d->line.ptr[d->line.len - 1] != '\r')
                return fail(d, PIER_EINVALID, "IncompleteBody: aws-chunked line without CRLF");
            pier_buf_truncate(&d->line, d->line.len - 1);
            rc = d->st == S_HEADER ? on_header_line(d) : on_trailer_line(d);
            pier_buf_reset(&d->line);
            if (rc)
                return rc;
            break;
        }
        case S_DATA: {
            size_t take = n - i;
            if ((uint64_t)take > d->remaining)
                take = (size_t)d->remaining;
            if (d->sha)
                pier_hash_update(d->sha, data + i, take);
            if ((rc = d->sink(d->ctx, data + i, take)) != 0) {
                d->st = S_ERROR;
                return rc;
            }
            d->decoded += take;
            d->remaining -= take;
            i += take;
            if (d->remaining == 0) {
                if (d->is_signed && (rc = verify_chunk(d, false)) != 0)
                    return rc;
                d->st = S_DATA_CR;
            }
            break;
        }
        case S_DATA_CR:
            if (data[i++] != '\r')
                return fail(d, PIER_EINVALID,
                            "IncompleteBody: aws-chunked data not followed by CRLF");
            d->st = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (data[i++] != '\n')
                return fail(d, PIER_EINVALID,
                            "IncompleteBody: aws-chunked data not followed by CRLF");
            d->st = S_HEADER;
            break;
        case S_DONE:
            return fail(d, PIER_EINVALID,
                        "IncompleteBody: bytes after the end of an aws-chunked body");
        case S_ERROR:
            return PIER_EINVALID;
        }
    }
    return 0;
}

int pier_s3chunked_finish(pier_s3chunked *d)
{
    if (d->st == S_DONE)
        return 0;
    /* Some senders end the body right after the final chunk without the
     * empty line when there is no trailer. */
    if (d->st == S_TRAILER && d->line.len == 0 && d->trailer_count == 0)
        return 0;
    if (d->st == S_ERROR)
        return pier_error_set(PIER_EINVALID, "IncompleteBody: the aws-chunked body is invalid");
    return pier_error_set(PIER_EINVALID,
                          "IncompleteBody: the aws-chunked body ended before its final chunk");
}

uint64_t pier_s3chunked_decoded(const pier_s3chunked *d)
{
    return d->decoded;
}

const char *pier_s3chunked_trailer(const pier_s3chunked *d, const char *name)
{
    for (size_t i = 0; i < d->trailer_count; i++)
        if (pier_str_ieq(d->names[i], name))
            return d->values[i];
    return NULL;
}
