/*
 * str: small string operations every part needs: number parsing that
 * reports errors (instead of atoi), AWS-style URI encoding, hex, and the
 * three time formats AWS speaks (ISO 8601 basic for SigV4, ISO 8601
 * extended for JSON/XML bodies, RFC 7231 for HTTP Date headers).
 */
#ifndef PIER_STR_H
#define PIER_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"

/* Parses a whole decimal string into *out; PIER_EINVALID on junk, sign or
 * overflow. */
int pier_parse_u64(const char *s, uint64_t *out);
int pier_parse_i64(const char *s, int64_t *out);
/* Parses a size with an optional unit: 10, 10k, 10KiB, 5MB, 5M, 1G ... (powers
 * of 1024). */
int pier_parse_size(const char *s, uint64_t *out);

/* URI-encodes per RFC 3986 as SigV4 wants: unreserved characters
 * (A-Z a-z 0-9 - . _ ~) are kept, every other byte is %XX uppercase; '/' is
 * kept when keep_slash. */
int pier_uri_encode(pier_buf *out, const char *s, size_t n, bool keep_slash);
/* Decodes %XX (and '+' as space when plus_space) into out; PIER_EINVALID on a
 * bad escape. */
int pier_uri_decode(pier_buf *out, const char *s, size_t n, bool plus_space);

/* Lowercase hex of n bytes into out (2n+1 bytes with the NUL). */
void pier_hex_encode(char *out, const unsigned char *in, size_t n);
/* Decodes 2n hex digits into n bytes; PIER_EINVALID on a bad digit. */
int pier_hex_decode(unsigned char *out, const char *in, size_t n);

/* Time formatting into out (at least 32 bytes), UTC. */
void pier_time_iso8601_basic(char *out, size_t size, time_t t); /* 20150830T123600Z */
void pier_time_iso8601(char *out, size_t size, time_t t);       /* 2015-08-30T12:36:00Z */
void pier_time_http(char *out, size_t size, time_t t);          /* Sun, 30 Aug 2015 12:36:00 GMT */
/* Parses any of the three forms above (ISO with optional fractional seconds
 * and Z or +00:00); PIER_EINVALID when none fits. */
int pier_time_parse(const char *s, time_t *out);

/* Writes untrusted text (a server's error body, a command line) for a
 * one-line message: runs of whitespace become one space, other control and
 * non-ASCII bytes '?', at most max characters then "...". */
void pier_str_snippet(char *out, size_t size, const char *s, size_t n, size_t max);

/* Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF
 * (S3 keys, JSON strings and XML text must be UTF-8). */
bool pier_utf8_valid(const char *s);

bool pier_str_starts_with(const char *s, const char *prefix);
bool pier_str_ends_with(const char *s, const char *suffix);
/* Case-insensitive ASCII equality. */
bool pier_str_ieq(const char *a, const char *b);
/* snprintf that reports truncation as PIER_ETOOBIG. */
int pier_str_fmt(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
