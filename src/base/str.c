/*
 * str: see str.h. All functions are pure except pier_time_* which only
 * use the C library's reentrant time functions.
 */
#include "base/str.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"

int pier_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return pier_error_set(PIER_EINVALID, "'%s' is not a non-negative integer", s ? s : "");
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return pier_error_set(PIER_EINVALID, "'%s' is not a non-negative integer", s);
    *out = v;
    return 0;
}

int pier_parse_i64(const char *s, int64_t *out)
{
    if (!s || !s[0])
        return pier_error_set(PIER_EINVALID, "'' is not an integer");
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s)
        return pier_error_set(PIER_EINVALID, "'%s' is not an integer", s);
    *out = v;
    return 0;
}

int pier_parse_size(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return pier_error_set(PIER_EINVALID, "'%s' is not a size", s ? s : "");
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return pier_error_set(PIER_EINVALID, "'%s' is not a size", s);
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0':
        break;
    case 'K':
        shift = 10;
        break;
    case 'M':
        shift = 20;
        break;
    case 'G':
        shift = 30;
        break;
    case 'T':
        shift = 40;
        break;
    default:
        return pier_error_set(PIER_EINVALID, "'%s' is not a size (use e.g. 8M)", s);
    }
    if (*end) {
        const char *u = end + 1;
        if (!(*u == '\0' || strcasecmp(u, "b") == 0 || strcasecmp(u, "ib") == 0))
            return pier_error_set(PIER_EINVALID, "'%s' is not a size (use e.g. 8M)", s);
    }
    if (shift && v > (UINT64_MAX >> shift))
        return pier_error_set(PIER_EINVALID, "'%s' is too large", s);
    *out = (uint64_t)v << shift;
    return 0;
}

static bool unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int pier_uri_encode(pier_buf *out, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if (unreserved(c) || (keep_slash && c == '/')) {
            rc = pier_buf_putc(out, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = pier_buf_put(out, e, 3);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int pier_uri_decode(pier_buf *out, const char *s, size_t n, bool plus_space)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return pier_error_set(PIER_EINVALID, "bad percent-escape in '%.*s'", (int)n, s);
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        int rc = pier_buf_putc(out, c);
        if (rc)
            return rc;
    }
    return 0;
}

void pier_hex_encode(char *out, const unsigned char *in, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int pier_hex_decode(unsigned char *out, const char *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)in[2 * i]);
        int lo = hi < 0 ? -1 : hexval((unsigned char)in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return pier_error_set(PIER_EINVALID, "bad hex digit");
        out[i] = (unsigned char)(hi * 16 + lo);
    }
    return 0;
}

void pier_time_iso8601_basic(char *out, size_t size, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y%m%dT%H%M%SZ", &tm);
}

void pier_time_iso8601(char *out, size_t size, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void pier_time_http(char *out, size_t size, time_t t)
{
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&t, &tm);
    /* Not strftime: %a and %b follow the locale, HTTP wants English. */
    snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int month_index(const char *m)
{
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strncasecmp(m, months[i], 3) == 0)
            return i;
    return -1;
}

int pier_time_parse(const char *s, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h, mi, sec, n = 0;
    char mon[4] = {0};
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6 ||
        sscanf(s, "%4d%2d%2dT%2d%2d%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) == 6) {
        const char *rest = s + n;
        if (*rest == '.') {
            rest++;
            while (isdigit((unsigned char)*rest))
                rest++;
        }
        if (!(strcmp(rest, "Z") == 0 || strcmp(rest, "+00:00") == 0 || strcmp(rest, "") == 0 ||
              strcmp(rest, "UTC") == 0))
            return pier_error_set(PIER_EINVALID, "'%s' is not a UTC time", s);
        tm.tm_mon = mo - 1;
    } else if (sscanf(s, "%*3s, %2d %3s %4d %2d:%2d:%2d GMT", &d, mon, &y, &h, &mi, &sec) == 6) {
        tm.tm_mon = month_index(mon);
        if (tm.tm_mon < 0)
            return pier_error_set(PIER_EINVALID, "'%s' is not a time", s);
    } else {
        return pier_error_set(PIER_EINVALID, "'%s' is not a time", s);
    }
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return pier_error_set(PIER_EINVALID, "'%s' is not a valid time", s);
    tm.tm_year = y - 1900;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = timegm(&tm);
    return 0;
}

void pier_str_snippet(char *out, size_t size, const char *s, size_t n, size_t max)
{
    size_t j = 0;
    bool space = false;
    for (size_t i = 0; i < n && j + 4 < size && j < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            space = j > 0;
            continue;
        }
        if (space)
            out[j++] = ' ';
        space = false;
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (j >= max && j + 4 < size) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
}

bool pier_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, min;
        size_t len;
        if (c < 0x80) {
            p++;
            continue;
        }
        if ((c & 0xE0) == 0xC0)
            len = 2, min = 0x80, c &= 0x1F;
        else if ((c & 0xF0) == 0xE0)
            len = 3, min = 0x800, c &= 0x0F;
        else if ((c & 0xF8) == 0xF0)
            len = 4, min = 0x10000, c &= 0x07;
        else
            return false;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false; /* also stops at the NUL */
            c = (c << 6) | (p[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        p += len;
    }
    return true;
}

bool pier_str_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool pier_str_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

bool pier_str_ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

int pier_str_fmt(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size)
        return pier_error_set(PIER_ETOOBIG, "text too long (limit %zu bytes)", size);
    return 0;
}
