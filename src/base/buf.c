/*
 * buf: growable buffer with a cap, and slices. See buf.h.
 *
 * Growth doubles the allocation (amortised O(1) appends) but never allocates
 * past max + 1 bytes.
 */
#include "base/buf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "base/mem.h"

void pier_buf_init(pier_buf *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : PIER_BUF_MAX_DEFAULT;
}

void pier_buf_free(pier_buf *b)
{
    if (!b)
        return;
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

void pier_buf_reset(pier_buf *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

char *pier_buf_reserve(pier_buf *b, size_t n)
{
    if (n > b->max || b->len > b->max - n) {
        pier_error_set(PIER_ETOOBIG, "data exceeds the limit of %zu bytes", b->max);
        return NULL;
    }
    size_t need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        b->ptr = pier_realloc(b->ptr, cap);
        b->cap = cap;
    }
    return b->ptr + b->len;
}

void pier_buf_commit(pier_buf *b, size_t n)
{
    b->len += n;
    b->ptr[b->len] = '\0';
}

int pier_buf_put(pier_buf *b, const void *data, size_t n)
{
    char *at = pier_buf_reserve(b, n);
    if (!at)
        return PIER_ETOOBIG;
    if (n)
        memcpy(at, data, n);
    pier_buf_commit(b, n);
    return 0;
}

int pier_buf_puts(pier_buf *b, const char *s)
{
    return pier_buf_put(b, s, strlen(s));
}

int pier_buf_putc(pier_buf *b, char c)
{
    return pier_buf_put(b, &c, 1);
}

int pier_buf_put_slice(pier_buf *b, pier_slice s)
{
    return pier_buf_put(b, s.ptr, s.len);
}

int pier_buf_vprintf(pier_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return pier_error_set(PIER_EINVALID, "bad format string");
    char *at = pier_buf_reserve(b, (size_t)n);
    if (!at)
        return PIER_ETOOBIG;
    vsnprintf(at, (size_t)n + 1, fmt, ap);
    pier_buf_commit(b, (size_t)n);
    return 0;
}

int pier_buf_printf(pier_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = pier_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void pier_buf_truncate(pier_buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->ptr[len] = '\0';
    }
}

const char *pier_buf_cstr(const pier_buf *b)
{
    return b->ptr ? b->ptr : "";
}

char *pier_buf_detach(pier_buf *b)
{
    char *p = b->ptr ? b->ptr : pier_strdup("");
    b->ptr = NULL;
    b->len = b->cap = 0;
    return p;
}

pier_slice pier_buf_slice(const pier_buf *b)
{
    return (pier_slice){pier_buf_cstr(b), b->len};
}

pier_slice pier_slice_from(const char *s)
{
    return (pier_slice){s, s ? strlen(s) : 0};
}

bool pier_slice_eq(pier_slice a, pier_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool pier_slice_eq_cstr(pier_slice a, const char *s)
{
    return pier_slice_eq(a, pier_slice_from(s));
}

bool pier_slice_ieq_cstr(pier_slice a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && strncasecmp(a.ptr, s, n) == 0;
}

bool pier_slice_starts_with(pier_slice s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

pier_slice pier_slice_trim(pier_slice s)
{
    while (s.len && isspace((unsigned char)s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len && isspace((unsigned char)s.ptr[s.len - 1]))
        s.len--;
    return s;
}

char *pier_slice_dup(pier_slice s)
{
    return pier_strndup(s.ptr ? s.ptr : "", s.len);
}
