/*
 * buf: the owning growable byte buffer with a size cap, and the borrowed
 * slice.
 *
 * A pier_buf owns its bytes; it always keeps a NUL after the last byte so
 * ptr can be used as a C string when the content is text. Every buffer has
 * a maximum size fixed at init: input from the network or a file can never
 * grow one without limit (curl's dynbuf habit). Appending past the cap fails
 * with PIER_ETOOBIG and leaves the buffer as it was.
 *
 * A pier_slice borrows: {ptr, len}, not NUL-terminated, never freed.
 */
#ifndef PIER_BUF_H
#define PIER_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *ptr;  /* the bytes, NUL-terminated; NULL until the first append */
    size_t len; /* bytes in use, not counting the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* the cap on len */
} pier_buf;

typedef struct {
    const char *ptr; /* borrowed bytes */
    size_t len;      /* their count */
} pier_slice;

#define PIER_BUF_MAX_DEFAULT ((size_t)64 << 20) /* 64 MiB */
#define PIER_BUF_INIT                                                                              \
    {                                                                                              \
        NULL, 0, 0, PIER_BUF_MAX_DEFAULT                                                           \
    }
#define PIER_SLICE_LIT(s) ((pier_slice){(s), sizeof(s) - 1})

void pier_buf_init(pier_buf *b, size_t max);
void pier_buf_free(pier_buf *b);
/* Empties the buffer and keeps the allocation. */
void pier_buf_reset(pier_buf *b);
int pier_buf_put(pier_buf *b, const void *data, size_t n);
int pier_buf_puts(pier_buf *b, const char *s);
int pier_buf_putc(pier_buf *b, char c);
int pier_buf_put_slice(pier_buf *b, pier_slice s);
int pier_buf_printf(pier_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int pier_buf_vprintf(pier_buf *b, const char *fmt, va_list ap);
/* Makes room for n more bytes without changing len; returns the write
 * position, or NULL past the cap (error set). Commit with pier_buf_commit. */
char *pier_buf_reserve(pier_buf *b, size_t n);
void pier_buf_commit(pier_buf *b, size_t n);
/* Shortens to len bytes (no-op if already shorter). */
void pier_buf_truncate(pier_buf *b, size_t len);
/* The content as a C string: "" for an empty buffer, never NULL. Borrowed. */
const char *pier_buf_cstr(const pier_buf *b);
/* Hands the bytes to the caller (free() them) and resets the buffer. Never
 * NULL: an empty buffer gives an allocated "". */
char *pier_buf_detach(pier_buf *b);
pier_slice pier_buf_slice(const pier_buf *b);

pier_slice pier_slice_from(const char *s);
bool pier_slice_eq(pier_slice a, pier_slice b);
bool pier_slice_eq_cstr(pier_slice a, const char *s);
bool pier_slice_ieq_cstr(pier_slice a, const char *s);
bool pier_slice_starts_with(pier_slice s, const char *prefix);
pier_slice pier_slice_trim(pier_slice s);
/* A malloc'ed NUL-terminated copy. */
char *pier_slice_dup(pier_slice s);

#endif
