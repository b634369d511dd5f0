/*
 * glob: see glob.h.
 *
 * Braces are expanded first (each alternative is matched in turn; patterns
 * are short, so the expansion stays small). The core matcher is the
 * classic backtracking one with two resume points: the last '*' (which
 * cannot cross '/') and the last '**' (which can). Worst case is
 * O(pattern x path) per '**'.
 */
#include "base/glob.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

/* Matches one character class at p (just after '['); sets *next past ']'.
 * Returns -1 on a malformed class. */
static int match_class(const char *p, char c, const char **next)
{
    bool negate = false, found = false;
    if (*p == '!' || *p == '^') {
        negate = true;
        p++;
    }
    const char *start = p;
    while (*p && (*p != ']' || p == start)) {
        char lo = *p;
        if (lo == '\\' && p[1])
            lo = *++p;
        char hi = lo;
        if (p[1] == '-' && p[2] && p[2] != ']') {
            hi = p[2];
            if (hi == '\\' && p[3])
                hi = *(p += 1, p + 2);
            p += 2;
        }
        if ((unsigned char)c >= (unsigned char)lo && (unsigned char)c <= (unsigned char)hi)
            found = true;
        p++;
    }
    if (*p != ']')
        return -1;
    *next = p + 1;
    return (found != negate) && c != '/';
}

static bool match_simple(const char *p, const char *s)
{
    const char *star_p = NULL, *star_s = NULL;   /* resume point for '*' */
    const char *gstar_p = NULL, *gstar_s = NULL; /* resume point for '**' */
    for (;;) {
        if (*p == '*' && p[1] == '*') {
            const char *q = p + 2;
            if (*q == '/') {
                /* "**" + "/": zero or more whole directories. */
                gstar_p = q + 1;
                gstar_s = s;
                star_p = NULL;
                p = q + 1;
                continue;
            }
            /* trailing "**" or "**x": anything, across '/'. */
            gstar_p = q;
            gstar_s = s;
            star_p = NULL;
            p = q;
            continue;
        }
        if (*p == '*') {
            star_p = ++p;
            star_s = s;
            continue;
        }
        if (*s == '\0' && *p == '\0')
            return true;
        if (*s) {
            const char *next = p + 1;
            int ok;
            if (*p == '?')
                ok = *s != '/';
            else if (*p == '[')
                ok = match_class(p + 1, *s, &next);
            else if (*p == '\\' && p[1])
                ok = p[1] == *s, next = p + 2;
            else
                ok = *p && *p == *s;
            if (ok == 1) {
                p = next;
                s++;
                continue;
            }
            if (ok < 0)
                return false;
        }
        /* Mismatch: widen the last '*' if it can take one more non-'/' char. */
        if (star_p && *star_s && *star_s != '/') {
            p = star_p;
            s = ++star_s;
            continue;
        }
        /* Else widen the last '**' by one character (a whole segment for
         * "**" + "/"). */
        if (gstar_p && *gstar_s) {
            star_p = NULL;
            if (gstar_p[-1] == '/') {
                const char *slash = strchr(gstar_s, '/');
                if (!slash)
                    return false;
                gstar_s = slash + 1;
            } else {
                gstar_s++;
            }
            p = gstar_p;
            s = gstar_s;
            continue;
        }
        return false;
    }
}

/* Finds the '}' closing the '{' at p, or NULL. */
static const char *brace_end(const char *p)
{
    int depth = 0;
    for (; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '{')
            depth++;
        else if (*p == '}' && --depth == 0)
            return p;
    }
    return NULL;
}

static bool match_braces(const char *pattern, const char *path)
{
    const char *open = NULL;
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        if (*p == '{') {
            open = p;
            break;
        }
    }
    if (!open)
        return match_simple(pattern, path);
    const char *close = brace_end(open);
    if (!close)
        return match_simple(pattern, path); /* literal '{' */
    size_t pre = (size_t)(open - pattern), post = strlen(close + 1);
    const char *alt = open + 1;
    bool matched = false;
    while (!matched && alt <= close) {
        /* Find the end of this alternative at depth 0. */
        const char *e = alt;
        int depth = 0;
        for (; e < close; e++) {
            if (*e == '\\' && e + 1 < close) {
                e++;
                continue;
            }
            if (*e == '{')
                depth++;
            else if (*e == '}')
                depth--;
            else if (*e == ',' && depth == 0)
                break;
        }
        size_t alen = (size_t)(e - alt);
        char *expanded = pier_malloc(pre + alen + post + 1);
        memcpy(expanded, pattern, pre);
        memcpy(expanded + pre, alt, alen);
        memcpy(expanded + pre + alen, close + 1, post + 1);
        matched = match_braces(expanded, path);
        free(expanded);
        alt = e + 1;
    }
    return matched;
}

bool pier_glob_match(const char *pattern, const char *path)
{
    return match_braces(pattern, path);
}

bool pier_glob_is_literal(const char *pattern)
{
    return strpbrk(pattern, "*?[{\\") == NULL;
}

int pier_glob_validate(const char *pattern)
{
    int braces = 0;
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\') {
            if (!p[1])
                return pier_error_set(PIER_EINVALID, "pattern '%s' ends with a backslash", pattern);
            p++;
        } else if (*p == '[') {
            const char *q = p + 1;
            if (*q == '!' || *q == '^')
                q++;
            if (*q == ']')
                q++;
            while (*q && *q != ']')
                q++;
            if (!*q)
                return pier_error_set(PIER_EINVALID, "pattern '%s' has an unclosed '['", pattern);
            p = q;
        } else if (*p == '{') {
            braces++;
        } else if (*p == '}') {
            if (--braces < 0)
                return pier_error_set(PIER_EINVALID, "pattern '%s' has an unmatched '}'", pattern);
        }
    }
    if (braces)
        return pier_error_set(PIER_EINVALID, "pattern '%s' has an unclosed '{'", pattern);
    return 0;
}
