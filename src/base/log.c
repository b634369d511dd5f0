/*
 * log: see log.h. The level is a relaxed atomic so the hot check in the
 * PIER_DEBUG macro costs one load.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = PIER_LOG_INFO;
static int log_tty = -1;  /* stderr is a terminal: no timestamps */
static int log_color = 0; /* colour the level names */

static const char *level_name[] = {"error", "warn", "info", "debug", "trace"};
static const char *level_color[] = {"\033[31m", "\033[33m", "\033[36m", "\033[2m", "\033[2m"};

void pier_log_init(pier_log_level level)
{
    atomic_store(&log_level, (int)level);
    log_tty = isatty(STDERR_FILENO);
    const char *nc = getenv("NO_COLOR");
    log_color = log_tty && !(nc && nc[0]);
}

void pier_log_set_level(pier_log_level level)
{
    atomic_store(&log_level, (int)level);
}

pier_log_level pier_log_get_level(void)
{
    return (pier_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

void pier_log(pier_log_level level, const char *fmt, ...)
{
    if ((int)level > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    if (log_tty < 0)
        pier_log_init(pier_log_get_level());
    char line[4096];
    size_t n = 0;
    if (!log_tty) {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n += strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ ", ts.tv_nsec / 1000000);
    }
    if (log_color)
        n += (size_t)snprintf(line + n, sizeof line - n, "%s%s\033[0m: ", level_color[level],
                              level_name[level]);
    else
        n += (size_t)snprintf(line + n, sizeof line - n, "%s: ", level_name[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += (size_t)m;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
