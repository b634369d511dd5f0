/*
 * retry: the AWS SDKs' "standard" retry mode as a pure policy object.
 *
 * The policy does no I/O and never sleeps: after each attempt the caller
 * describes what happened (pier_retry_outcome) and asks pier_retry_next()
 * whether to try again and after how long. Synchronous callers sleep the
 * delay (pier_retry_sleep_ms); asynchronous ones schedule it.
 *
 * Rules (the SDKs' standard mode)
 *   - At most max_attempts attempts (default 3; the caller resolves
 *     AWS_MAX_ATTEMPTS / the profile's max_attempts through pier_aws_config).
 *   - Retryable: a transport failure of kind connect, reset or timeout; HTTP
 *     500, 502, 503, 504 and 429; the transient error codes RequestTimeout,
 *     RequestTimeoutException, PriorRequestNotComplete; the throttling codes
 *     (Throttling, ThrottlingException, SlowDown, ...); a clock-skew error
 *     (RequestTimeTooSkewed, RequestExpired, InvalidSignatureException,
 *     SignatureDoesNotMatch) when the response's Date is more than 4 minutes
 *     away from our corrected clock; and anything the caller marks
 *     transient (an operation-specific rule, such as STS's
 *     IDPCommunicationError).
 *   - Delay before retry n (n = 1, 2, ...): random[0,1) * min(2^(n-1) s, 20 s).
 *   - Retry quota, shared by every request of the policy object: 500 tokens;
 *     a retry takes 5 (10 after a timeout) and is refused when the quota
 *     cannot pay; a 2xx response gives back what its request's last retry
 *     took, or 1 when it was not retried. So an outage drains the quota and
 *     then fails fast instead of multiplying the load.
 *   - Clock skew: the offset between the server's Date and our clock is
 *     recorded; signers take their time from pier_retry_now() so the retry
 *     and every later request are signed with the corrected time.
 *
 * Thread safety: one policy object is shared by every thread and transfer of
 * a client; the quota and the clock offset are behind a mutex. The
 * per-request pier_retry_state belongs to one request.
 *
 * Ownership: pier_retry_new gives the caller the object, freed with
 * pier_retry_free; strings in an outcome are borrowed for the call only.
 */
#ifndef PIER_RETRY_H
#define PIER_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "net/http.h"

#define PIER_RETRY_DEFAULT_ATTEMPTS 3
#define PIER_RETRY_QUOTA            500 /* initial and maximum retry tokens */
#define PIER_RETRY_COST             5   /* tokens a retry takes */
#define PIER_RETRY_TIMEOUT_COST     10  /* tokens a retry after a timeout takes */
#define PIER_RETRY_SUCCESS_REFUND   1   /* tokens a first-try success gives back */
#define PIER_RETRY_MAX_BACKOFF_MS   20000
#define PIER_RETRY_SKEW_THRESHOLD_S 240 /* |server - corrected local| beyond this is skew */

/* Seconds since the epoch (the wall clock, for skew). */
typedef int64_t (*pier_retry_clock_fn)(void *ctx);
/* A uniform random number in [0, 1). */
typedef double (*pier_retry_random_fn)(void *ctx);

typedef struct {
    int max_attempts;            /* total attempts, first included; <= 0: 3 */
    unsigned quota;              /* initial and maximum tokens; 0: 500 */
    pier_retry_clock_fn clock;   /* NULL: time() */
    void *clock_ctx;             /* its context */
    pier_retry_random_fn random; /* NULL: pier_random_bytes */
    void *random_ctx;            /* its context */
} pier_retry_options;

#define PIER_RETRY_OPTIONS_INIT                                                                    \
    {                                                                                              \
        PIER_RETRY_DEFAULT_ATTEMPTS, PIER_RETRY_QUOTA, NULL, NULL, NULL, NULL                      \
    }

typedef struct pier_retry pier_retry;

/* What one attempt gave. Fill what is known; zero the rest. */
typedef struct {
    int rc;                        /* pier_http_do's return (0: a response arrived) */
    pier_http_transport transport; /* resp.transport when rc != 0 */
    long status;                   /* HTTP status when rc == 0 */
    const char *error_code;        /* AWS error code from the body or header, or NULL */
    const char *date;              /* the response's Date header (or S3's <ServerTime>), or NULL */
    bool transient;                /* the caller knows this failure is transient */
} pier_retry_outcome;

/* Per-request state: start each request with PIER_RETRY_STATE_INIT. */
typedef struct {
    int attempts;    /* attempts finished */
    unsigned held;   /* tokens taken by the retry now in flight (0: none) */
    long delay_ms;   /* the delay pier_retry_next chose (0 when none) */
    const char *why; /* static text: why it retries or stops */
} pier_retry_state;

#define PIER_RETRY_STATE_INIT                                                                      \
    {                                                                                              \
        0, 0, 0, NULL                                                                              \
    }

typedef enum {
    PIER_RETRY_SUCCESS = 0, /* a 2xx: done (quota refunded) */
    PIER_RETRY_AGAIN,       /* retry after state->delay_ms */
    PIER_RETRY_STOP,        /* give up: not retryable, attempts or quota spent (state->why) */
} pier_retry_verdict;

int pier_retry_new(pier_retry **out, const pier_retry_options *opts);
void pier_retry_free(pier_retry *r);

/* Records one finished attempt and decides. On PIER_RETRY_AGAIN the tokens
 * for the retry are already taken and state->delay_ms is set; on
 * PIER_RETRY_STOP state->why says why ("not retryable", "gave up after 3
 * attempts", "retry quota exhausted"). A non-2xx, non-retryable response is
 * PIER_RETRY_STOP with why "not retryable" (the caller reports its error). */
pier_retry_verdict pier_retry_next(pier_retry *r, pier_retry_state *state,
                                   const pier_retry_outcome *outcome);

/* True when the outcome alone is retryable by the rules above (no quota,
 * no attempt count, no skew bookkeeping). */
bool pier_retry_is_retryable(const pier_retry_outcome *outcome);
bool pier_retry_is_throttle(const char *error_code);
bool pier_retry_is_skew_error(const char *error_code);

/* The delay before retry number n (1-based): random * min(2^(n-1) s, 20 s),
 * in milliseconds. */
long pier_retry_delay_ms(pier_retry *r, int n);

/* Tokens left in the quota. */
unsigned pier_retry_quota_left(pier_retry *r);
/* Seconds to add to the local clock to get the servers' time (0 until a
 * skew has been seen). */
int64_t pier_retry_clock_offset(pier_retry *r);
/* The corrected time: the policy's clock + the offset. Signers use this. */
int64_t pier_retry_now(pier_retry *r);
int pier_retry_max_attempts(const pier_retry *r);

/* Sleeps ms milliseconds (restarting on EINTR). */
void pier_retry_sleep_ms(long ms);

#endif
