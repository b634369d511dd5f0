/*
 * log: leveled messages on stderr.
 *
 * Levels: error, warn, info, debug, trace. The CLI sets the level from -v/-q.
 * On a terminal, lines have no timestamp and levels are coloured (unless
 * NO_COLOR is set); elsewhere (a file, CI, a pipe) each line starts with an
 * ISO 8601 UTC timestamp so logs can be correlated. Thread-safe: one line is
 * written with one write(2).
 */
#ifndef PIER_LOG_H
#define PIER_LOG_H

typedef enum {
    PIER_LOG_ERROR = 0,
    PIER_LOG_WARN = 1,
    PIER_LOG_INFO = 2,
    PIER_LOG_DEBUG = 3,
    PIER_LOG_TRACE = 4,
} pier_log_level;

/* Reads the environment (NO_COLOR) and whether stderr is a terminal. */
void pier_log_init(pier_log_level level);
void pier_log_set_level(pier_log_level level);
pier_log_level pier_log_get_level(void);
void pier_log(pier_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define PIER_ERROR(...) pier_log(PIER_LOG_ERROR, __VA_ARGS__)
#define PIER_WARN(...)  pier_log(PIER_LOG_WARN, __VA_ARGS__)
#define PIER_INFO(...)  pier_log(PIER_LOG_INFO, __VA_ARGS__)
#define PIER_DEBUG(...)                                                                            \
    do {                                                                                           \
        if (pier_log_get_level() >= PIER_LOG_DEBUG)                                                \
            pier_log(PIER_LOG_DEBUG, __VA_ARGS__);                                                 \
    } while (0)
#define PIER_TRACE(...)                                                                            \
    do {                                                                                           \
        if (pier_log_get_level() >= PIER_LOG_TRACE)                                                \
            pier_log(PIER_LOG_TRACE, __VA_ARGS__);                                                 \
    } while (0)

#endif
