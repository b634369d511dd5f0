/*
 * error: the thread-local last error. One fixed 1 KiB buffer per thread,
 * no allocation, so it can be used on the out-of-resources paths too.
 */
#include "base/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MSG_MAX 1024

static _Thread_local char last_msg[MSG_MAX];
static _Thread_local int last_code;

static int vset(int code, const char *fmt, va_list ap)
{
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    last_code = code;
    return code;
}

int pier_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(code, fmt, ap);
    va_end(ap);
    return code;
}

int pier_error_set_errno(int code, const char *fmt, ...)
{
    int saved = errno;
    char msg[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pier_error_set(code, "%s: %s", msg, strerror(saved));
}

int pier_error_wrap(int code, const char *fmt, ...)
{
    char prefix[MSG_MAX];
    char old[MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", last_msg);
    size_t n = strlen(prefix);
    memcpy(last_msg, prefix, n + 1);
    if (old[0] && n + 2 < sizeof last_msg) {
        memcpy(last_msg + n, ": ", 3);
        size_t m = strlen(old), room = sizeof last_msg - n - 3;
        if (m > room)
            m = room;
        memcpy(last_msg + n + 2, old, m);
        last_msg[n + 2 + m] = '\0';
    }
    last_code = code;
    return code;
}

const char *pier_error_last(void)
{
    return last_msg;
}

int pier_error_last_code(void)
{
    return last_code;
}

void pier_error_clear(void)
{
    last_msg[0] = '\0';
    last_code = PIER_OK;
}

const char *pier_error_name(int code)
{
    switch (code) {
    case PIER_OK:
        return "ok";
    case PIER_ENOTFOUND:
        return "not found";
    case PIER_EEXISTS:
        return "exists";
    case PIER_EAUTH:
        return "auth";
    case PIER_EINVALID:
        return "invalid";
    case PIER_ETIMEOUT:
        return "timeout";
    case PIER_ECONFLICT:
        return "conflict";
    case PIER_ETOOBIG:
        return "too big";
    case PIER_EIO:
        return "i/o";
    default:
        return "error";
    }
}
