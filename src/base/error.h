/*
 * error: pier's error convention.
 *
 * A function that can fail returns int: 0 on success, a negative code on
 * failure. The human message is set once, where the failure is understood,
 * with pier_error_set(), and passed up unchanged; it is per thread, one line,
 * and names the file, key, URL or setting at fault. Callers act on the code,
 * users read the message.
 */
#ifndef PIER_ERROR_H
#define PIER_ERROR_H

enum {
    PIER_OK = 0,
    PIER_ERR = -1,       /* anything without a more useful code */
    PIER_ENOTFOUND = -2, /* file, key, bucket, profile ... does not exist */
    PIER_EEXISTS = -3,   /* already exists */
    PIER_EAUTH = -4,     /* credentials missing, wrong or denied */
    PIER_EINVALID = -5,  /* bad input: config, argument, request, data */
    PIER_ETIMEOUT = -6,  /* an operation ran out of time */
    PIER_ECONFLICT = -7, /* state changed under us, or a precondition failed */
    PIER_ETOOBIG = -8,   /* a size cap was hit */
    PIER_EIO = -9,       /* the OS or the network failed */
};

/* Sets this thread's last error and returns code, so `return
 * pier_error_set(PIER_EINVALID, "...")` reads as one step. A format is
 * printf's; the message is truncated to 1 KiB. */
int pier_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like pier_error_set, appending ": strerror(errno)". */
int pier_error_set_errno(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with more context: "what: <old message>". */
int pier_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* This thread's last message, or "" when none is set. Borrowed; valid until
 * the next pier_error_* call on this thread. */
const char *pier_error_last(void);
/* The code that went with the last message (PIER_OK when none). */
int pier_error_last_code(void);
void pier_error_clear(void);
/* The name of a code, as "not found", "invalid" ... */
const char *pier_error_name(int code);

#endif
