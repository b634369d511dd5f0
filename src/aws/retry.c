/*
 * retry: see retry.h. The rule tables below are the SDKs' standard mode;
 * everything else is bookkeeping under one mutex (quota, clock offset).
 * Each decision costs a few string comparisons.
 */
#include "aws/retry.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"

struct pier_retry {
    pthread_mutex_t lock;        /* guards quota and offset */
    int max_attempts;            /* total attempts per request */
    unsigned quota_max;          /* capacity */
    unsigned quota;              /* tokens left */
    int64_t offset;              /* server time - local time, seconds */
    pier_retry_clock_fn clock;   /* wall clock */
    void *clock_ctx;             /* its context */
    pier_retry_random_fn random; /* [0, 1) */
    void *random_ctx;            /* its context */
};

static const char *const transient_codes[] = {
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
};

static const char *const throttle_codes[] = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "EC2ThrottledException",
};

static const char *const skew_codes[] = {
    "RequestTimeTooSkewed",
    "RequestExpired",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
};

#define COUNT(a) (sizeof(a) / sizeof(a)[0])

static bool in_list(const char *code, const char *const *list, size_t n)
{
    if (!code || !*code)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(code, list[i]) == 0)
            return true;
    return false;
}

static int64_t system_clock(void *ctx)
{
    (void)ctx;
    return (int64_t)time(NULL);
}

static double system_random(void *ctx)
{
    (void)ctx;
    uint64_t v;
    pier_random_bytes(&v, sizeof v);
    return (double)(v >> 11) / (double)(UINT64_C(1) << 53);
}

int pier_retry_new(pier_retry **out, const pier_retry_options *opts)
{
    pier_retry_options def = PIER_RETRY_OPTIONS_INIT;
    if (!opts)
        opts = &def;
    pier_retry *r = pier_calloc(1, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->max_attempts = opts->max_attempts > 0 ? opts->max_attempts : PIER_RETRY_DEFAULT_ATTEMPTS;
    r->quota_max = opts->quota ? opts->quota : PIER_RETRY_QUOTA;
    r->quota = r->quota_max;
    r->clock = opts->clock ? opts->clock : system_clock;
    r->clock_ctx = opts->clock_ctx;
    r->random = opts->random ? opts->random : system_random;
    r->random_ctx = opts->random_ctx;
    *out = r;
    return 0;
}

void pier_retry_free(pier_retry *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free(r);
}

bool pier_retry_is_throttle(const char *error_code)
{
    return in_list(error_code, throttle_codes, COUNT(throttle_codes));
}

bool pier_retry_is_skew_error(const char *error_code)
{
    return in_list(error_code, skew_codes, COUNT(skew_codes));
}

bool pier_retry_is_retryable(const pier_retry_outcome *o)
{
    if (o->transient)
        return true;
    if (o->rc != 0)
        return o->transport == PIER_HTTP_CONNECT || o->transport == PIER_HTTP_RESET ||
               o->transport == PIER_HTTP_TIMEOUT;
    if (o->status >= 200 && o->status < 300)
        return false;
    if (o->status == 429 || o->status == 500 || o->status == 502 || o->status == 503 ||
        o->status == 504)
        return true;
    return in_list(o->error_code, transient_codes, COUNT(transient_codes)) ||
           pier_retry_is_throttle(o->error_code);
}

long pier_retry_delay_ms(pier_retry *r, int n)
{
    long cap = PIER_RETRY_MAX_BACKOFF_MS;
    if (n < 1)
        n = 1;
    if (n <= 15 && (1000L << (n - 1)) < cap)
        cap = 1000L << (n - 1);
    double x = r->random(r->random_ctx);
    if (!(x >= 0.0))
        x = 0.0;
    if (x >= 1.0)
        x = 1.0;
    return (long)(x * (double)cap);
}

/* A skew error whose Date is far from our corrected clock: records the new
 * offset and returns true (retry); false when the clocks agree (the
 * signature is wrong for another reason) or no usable Date came back. */
static bool note_skew(pier_retry *r, const pier_retry_outcome *o)
{
    if (o->rc != 0 || !pier_retry_is_skew_error(o->error_code) || !o->date || !*o->date)
        return false;
    time_t server;
    if (pier_time_parse(o->date, &server) != 0) {
        pier_error_clear();
        return false;
    }
    int64_t local = r->clock(r->clock_ctx);
    bool skewed = false;
    pthread_mutex_lock(&r->lock);
    int64_t diff = (int64_t)server - (local + r->offset);
    if (diff > PIER_RETRY_SKEW_THRESHOLD_S || diff < -PIER_RETRY_SKEW_THRESHOLD_S) {
        r->offset = (int64_t)server - local;
        skewed = true;
    }
    int64_t offset = r->offset;
    pthread_mutex_unlock(&r->lock);
    if (skewed)
        PIER_WARN("clock skew: the server's time is %lld s from this machine's; signing with "
                  "the corrected time",
                  (long long)offset);
    return skewed;
}

pier_retry_verdict pier_retry_next(pier_retry *r, pier_retry_state *st, const pier_retry_outcome *o)
{
    st->attempts++;
    st->delay_ms = 0;
    if (o->rc == 0 && o->status >= 200 && o->status < 300) {
        unsigned refund = st->held ? st->held : PIER_RETRY_SUCCESS_REFUND;
        pthread_mutex_lock(&r->lock);
        r->quota = r->quota + refund > r->quota_max ? r->quota_max : r->quota + refund;
        pthread_mutex_unlock(&r->lock);
        st->held = 0;
        st->why = "success";
        return PIER_RETRY_SUCCESS;
    }
    bool skew = note_skew(r, o);
    if (!skew && !pier_retry_is_retryable(o)) {
        st->why = "not retryable";
        return PIER_RETRY_STOP;
    }
    if (st->attempts >= r->max_attempts) {
        st->why = "attempts exhausted";
        return PIER_RETRY_STOP;
    }
    unsigned cost = (o->rc != 0 && o->transport == PIER_HTTP_TIMEOUT) ? PIER_RETRY_TIMEOUT_COST
                                                                      : PIER_RETRY_COST;
    bool paid = false;
    pthread_mutex_lock(&r->lock);
    if (r->quota >= cost) {
        r->quota -= cost;
        paid = true;
    }
    pthread_mutex_unlock(&r->lock);
    if (!paid) {
        st->why = "retry quota exhausted";
        return PIER_RETRY_STOP;
    }
    st->held = cost;
    st->delay_ms = skew ? 0 : pier_retry_delay_ms(r, st->attempts);
    if (skew)
        st->why = "clock skew";
    else if (o->rc != 0)
        st->why = o->transport == PIER_HTTP_TIMEOUT ? "timeout" : "connection failure";
    else if (o->status == 429 || pier_retry_is_throttle(o->error_code))
        st->why = "throttled";
    else
        st->why = "transient error";
    return PIER_RETRY_AGAIN;
}

unsigned pier_retry_quota_left(pier_retry *r)
{
    pthread_mutex_lock(&r->lock);
    unsigned q = r->quota;
    pthread_mutex_unlock(&r->lock);
    return q;
}

int64_t pier_retry_clock_offset(pier_retry *r)
{
    pthread_mutex_lock(&r->lock);
    int64_t off = r->offset;
    pthread_mutex_unlock(&r->lock);
    return off;
}

int64_t pier_retry_now(pier_retry *r)
{
    return r->clock(r->clock_ctx) + pier_retry_clock_offset(r);
}

int pier_retry_max_attempts(const pier_retry *r)
{
    return r->max_attempts;
}

void pier_retry_sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}
