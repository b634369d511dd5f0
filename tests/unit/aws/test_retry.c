/*
 * test_retry: the standard retry policy, rule by rule, with a fake clock and
 * a fake random source: retryable statuses, codes and transport failures,
 * attempt limits, quota costs, exhaustion and refill, delays, clock skew.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "aws/retry.h"
#include "base/error.h"
#include "base/str.h"

typedef struct {
    int64_t now;   /* the fake wall clock */
    double random; /* what the fake random source returns */
} fake;

static int64_t fake_clock(void *ctx)
{
    return ((fake *)ctx)->now;
}

static double fake_random(void *ctx)
{
    return ((fake *)ctx)->random;
}

static pier_retry *make(fake *f, int max_attempts)
{
    pier_retry_options o = PIER_RETRY_OPTIONS_INIT;
    o.max_attempts = max_attempts;
    o.clock = fake_clock;
    o.clock_ctx = f;
    o.random = fake_random;
    o.random_ctx = f;
    pier_retry *r = NULL;
    assert_int_equal(pier_retry_new(&r, &o), 0);
    return r;
}

static pier_retry_outcome status(long s, const char *code)
{
    pier_retry_outcome o = {0};
    o.status = s;
    o.error_code = code;
    return o;
}

static pier_retry_outcome transport(pier_http_transport t)
{
    pier_retry_outcome o = {0};
    o.rc = PIER_EIO;
    o.transport = t;
    return o;
}

static void test_retryable_statuses(void **state)
{
    (void)state;
    static const struct {
        long status;
        bool retry;
    } cases[] = {{500, true},  {502, true},  {503, true},  {504, true},  {429, true},
                 {400, false}, {401, false}, {403, false}, {404, false}, {409, false},
                 {412, false}, {501, false}, {505, false}, {301, false}, {200, false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pier_retry_outcome o = status(cases[i].status, NULL);
        if (pier_retry_is_retryable(&o) != cases[i].retry)
            fail_msg("status %ld: expected retry=%d", cases[i].status, cases[i].retry);
    }
}

static void test_retryable_codes(void **state)
{
    (void)state;
    static const char *const yes[] = {"RequestTimeout",
                                      "RequestTimeoutException",
                                      "PriorRequestNotComplete",
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
                                      "EC2ThrottledException"};
    static const char *const no[] = {"AccessDenied",  "NoSuchKey", "InvalidAccessKeyId",
                                     "throttling",    "",          "ExpiredToken",
                                     "SlowDownPlease"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        pier_retry_outcome o = status(400, yes[i]);
        if (!pier_retry_is_retryable(&o))
            fail_msg("%s should be retryable", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        pier_retry_outcome o = status(400, no[i]);
        if (pier_retry_is_retryable(&o))
            fail_msg("'%s' should not be retryable", no[i]);
    }
    assert_true(pier_retry_is_throttle("SlowDown"));
    assert_false(pier_retry_is_throttle("RequestTimeout"));
    assert_false(pier_retry_is_throttle(NULL));
    /* the caller's own rule */
    pier_retry_outcome o = status(400, "IDPCommunicationError");
    assert_false(pier_retry_is_retryable(&o));
    o.transient = true;
    assert_true(pier_retry_is_retryable(&o));
}

static void test_transport(void **state)
{
    (void)state;
    pier_retry_outcome o = transport(PIER_HTTP_CONNECT);
    assert_true(pier_retry_is_retryable(&o));
    o = transport(PIER_HTTP_RESET);
    assert_true(pier_retry_is_retryable(&o));
    o = transport(PIER_HTTP_TIMEOUT);
    assert_true(pier_retry_is_retryable(&o));
    o = transport(PIER_HTTP_TLS);
    assert_false(pier_retry_is_retryable(&o));
    o = transport(PIER_HTTP_LOCAL);
    assert_false(pier_retry_is_retryable(&o));
}

static void test_max_attempts(void **state)
{
    (void)state;
    fake f = {1000000, 0.5};
    pier_retry *r = make(&f, 3);
    assert_int_equal(pier_retry_max_attempts(r), 3);
    pier_retry_state st = PIER_RETRY_STATE_INIT;
    pier_retry_outcome o = status(503, "SlowDown");
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_AGAIN);
    assert_string_equal(st.why, "throttled");
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_AGAIN);
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_STOP);
    assert_string_equal(st.why, "attempts exhausted");
    assert_int_equal(st.attempts, 3);
    pier_retry_free(r);

    r = make(&f, 1); /* 1: never retry */
    st = (pier_retry_state)PIER_RETRY_STATE_INIT;
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_STOP);
    pier_retry_free(r);

    r = make(&f, 0); /* 0: the default 3 */
    assert_int_equal(pier_retry_max_attempts(r), 3);
    pier_retry_free(r);
}

static void test_not_retryable_stops(void **state)
{
    (void)state;
    fake f = {1000000, 0.5};
    pier_retry *r = make(&f, 5);
    pier_retry_state st = PIER_RETRY_STATE_INIT;
    pier_retry_outcome o = status(403, "AccessDenied");
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_STOP);
    assert_string_equal(st.why, "not retryable");
    assert_int_equal(pier_retry_quota_left(r), 500); /* nothing taken, nothing refunded */
    pier_retry_free(r);
}

static void test_quota_costs_and_refunds(void **state)
{
    (void)state;
    fake f = {1000000, 0.0};
    pier_retry *r = make(&f, 3);
    assert_int_equal(pier_retry_quota_left(r), 500);

    /* a retry costs 5; the success gives those 5 back */
    pier_retry_state st = PIER_RETRY_STATE_INIT;
    pier_retry_outcome o = status(500, NULL);
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_AGAIN);
    assert_int_equal(st.held, 5);
    assert_int_equal(pier_retry_quota_left(r), 495);
    o = status(200, NULL);
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_SUCCESS);
    assert_int_equal(pier_retry_quota_left(r), 500);

    /* a timeout costs 10 */
    st = (pier_retry_state)PIER_RETRY_STATE_INIT;
    o = transport(PIER_HTTP_TIMEOUT);
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_AGAIN);
    assert_string_equal(st.why, "timeout");
    assert_int_equal(pier_retry_quota_left(r), 490);
    /* then a reset costs 5: the refund is what the last retry took */
    o = transport(PIER_HTTP_RESET);
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_AGAIN);
    assert_string_equal(st.why, "connection failure");
    assert_int_equal(pier_retry_quota_left(r), 485);
    o = status(204, NULL);
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_SUCCESS);
    assert_int_equal(pier_retry_quota_left(r), 490);

    /* first-try successes give back 1 each, never past the capacity */
    for (int i = 0; i < 20; i++) {
        st = (pier_retry_state)PIER_RETRY_STATE_INIT;
        o = status(200, NULL);
        assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_SUCCESS);
    }
    assert_int_equal(pier_retry_quota_left(r), 500);
    pier_retry_free(r);
}

static void test_quota_exhaustion_and_refill(void **state)
{
    (void)state;
    fake f = {1000000, 0.0};
    pier_retry_options opts = PIER_RETRY_OPTIONS_INIT;
    opts.max_attempts = 100;
    opts.random = fake_random;
    opts.random_ctx = &f;
    pier_retry *r = NULL;
    assert_int_equal(pier_retry_new(&r, &opts), 0);

    /* an outage: 100 retries of 5 drain the 500 tokens, then retries stop */
    int again = 0;
    pier_retry_verdict v = PIER_RETRY_AGAIN;
    pier_retry_outcome o = status(503, NULL);
    for (int req = 0; req < 30; req++) {
        pier_retry_state st = PIER_RETRY_STATE_INIT;
        while ((v = pier_retry_next(r, &st, &o)) == PIER_RETRY_AGAIN)
            again++;
        assert_int_equal(v, PIER_RETRY_STOP);
        if (strcmp(st.why, "retry quota exhausted") == 0)
            break;
    }
    assert_int_equal(again, 100);
    assert_int_equal(pier_retry_quota_left(r), 0);
    pier_retry_state st = PIER_RETRY_STATE_INIT;
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_STOP);
    assert_string_equal(st.why, "retry quota exhausted");

    /* recovery: five first-try successes refill 5 tokens: one retry again */
    for (int i = 0; i < 4; i++) {
        st = (pier_retry_state)PIER_RETRY_STATE_INIT;
        pier_retry_outcome ok = status(200, NULL);
        assert_int_equal(pier_retry_next(r, &st, &ok), PIER_RETRY_SUCCESS);
    }
    st = (pier_retry_state)PIER_RETRY_STATE_INIT;
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_STOP); /* 4 < 5 */
    st = (pier_retry_state)PIER_RETRY_STATE_INIT;
    pier_retry_outcome ok = status(200, NULL);
    assert_int_equal(pier_retry_next(r, &st, &ok), PIER_RETRY_SUCCESS);
    assert_int_equal(pier_retry_quota_left(r), 5);
    st = (pier_retry_state)PIER_RETRY_STATE_INIT;
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_AGAIN);
    assert_int_equal(pier_retry_quota_left(r), 0);
    /* a timeout needs 10: refused even after 5 refills */
    assert_int_equal(pier_retry_next(r, &st, &ok), PIER_RETRY_SUCCESS);
    assert_int_equal(pier_retry_quota_left(r), 5);
    st = (pier_retry_state)PIER_RETRY_STATE_INIT;
    pier_retry_outcome to = transport(PIER_HTTP_TIMEOUT);
    assert_int_equal(pier_retry_next(r, &st, &to), PIER_RETRY_STOP);
    assert_string_equal(st.why, "retry quota exhausted");
    pier_retry_free(r);
}

static void test_delays(void **state)
{
    (void)state;
    fake f = {1000000, 0.5};
    pier_retry *r = make(&f, 10);
    assert_int_equal(pier_retry_delay_ms(r, 1), 500);   /* 0.5 * 1 s */
    assert_int_equal(pier_retry_delay_ms(r, 2), 1000);  /* 0.5 * 2 s */
    assert_int_equal(pier_retry_delay_ms(r, 3), 2000);  /* 0.5 * 4 s */
    assert_int_equal(pier_retry_delay_ms(r, 5), 8000);  /* 0.5 * 16 s */
    assert_int_equal(pier_retry_delay_ms(r, 6), 10000); /* 0.5 * min(32, 20) s */
    assert_int_equal(pier_retry_delay_ms(r, 60), 10000);
    f.random = 0.0;
    assert_int_equal(pier_retry_delay_ms(r, 4), 0);
    f.random = 0.999;
    assert_int_equal(pier_retry_delay_ms(r, 1), 999);
    assert_int_equal(pier_retry_delay_ms(r, 9), 19980);
    f.random = 7.0; /* a broken source is clamped */
    assert_int_equal(pier_retry_delay_ms(r, 1), 1000);

    /* pier_retry_next uses the same schedule */
    f.random = 0.25;
    pier_retry_state st = PIER_RETRY_STATE_INIT;
    pier_retry_outcome o = status(502, NULL);
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_AGAIN);
    assert_int_equal(st.delay_ms, 250);
    assert_string_equal(st.why, "transient error");
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_AGAIN);
    assert_int_equal(st.delay_ms, 500);
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_AGAIN);
    assert_int_equal(st.delay_ms, 1000);
    pier_retry_free(r);

    /* the real random source stays within the bound */
    pier_retry *real = NULL;
    assert_int_equal(pier_retry_new(&real, NULL), 0);
    for (int i = 0; i < 100; i++) {
        long d = pier_retry_delay_ms(real, 2);
        assert_true(d >= 0 && d < 2000);
    }
    pier_retry_free(real);
}

static void test_clock_skew(void **state)
{
    (void)state;
    fake f = {1700000000, 0.5}; /* 2023-11-14T22:13:20Z */
    pier_retry *r = make(&f, 3);
    assert_int_equal(pier_retry_clock_offset(r), 0);
    assert_int_equal(pier_retry_now(r), 1700000000);

    char date[64];
    pier_time_http(date, sizeof date, (time_t)(1700000000 + 3600)); /* server an hour ahead */
    pier_retry_state st = PIER_RETRY_STATE_INIT;
    pier_retry_outcome o = status(403, "RequestTimeTooSkewed");
    o.date = date;
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_AGAIN);
    assert_string_equal(st.why, "clock skew");
    assert_int_equal(st.delay_ms, 0);
    assert_int_equal(pier_retry_clock_offset(r), 3600);
    assert_int_equal(pier_retry_now(r), 1700003600);

    /* the same error again with clocks now agreeing is a real signature
     * problem: not retried, offset kept */
    assert_int_equal(pier_retry_next(r, &st, &o), PIER_RETRY_STOP);
    assert_string_equal(st.why, "not retryable");
    assert_int_equal(pier_retry_clock_offset(r), 3600);

    /* a small difference (under 4 minutes) is not skew */
    pier_retry *r2 = make(&f, 3);
    pier_time_http(date, sizeof date, (time_t)(1700000000 - 200));
    st = (pier_retry_state)PIER_RETRY_STATE_INIT;
    o = status(403, "SignatureDoesNotMatch");
    o.date = date;
    assert_int_equal(pier_retry_next(r2, &st, &o), PIER_RETRY_STOP);
    assert_int_equal(pier_retry_clock_offset(r2), 0);

    /* server behind, ISO form (S3's ServerTime), each skew code */
    static const char *const codes[] = {"RequestTimeTooSkewed", "RequestExpired",
                                        "InvalidSignatureException", "SignatureDoesNotMatch"};
    for (size_t i = 0; i < 4; i++) {
        pier_retry *r3 = make(&f, 3);
        pier_time_iso8601(date, sizeof date, (time_t)(1700000000 - 1000));
        st = (pier_retry_state)PIER_RETRY_STATE_INIT;
        o = status(400, codes[i]);
        o.date = date;
        assert_int_equal(pier_retry_next(r3, &st, &o), PIER_RETRY_AGAIN);
        assert_int_equal(pier_retry_clock_offset(r3), -1000);
        pier_retry_free(r3);
    }

    /* no Date, or an unreadable one: not retryable, no offset */
    st = (pier_retry_state)PIER_RETRY_STATE_INIT;
    o = status(403, "RequestTimeTooSkewed");
    assert_int_equal(pier_retry_next(r2, &st, &o), PIER_RETRY_STOP);
    o.date = "yesterday-ish";
    st = (pier_retry_state)PIER_RETRY_STATE_INIT;
    assert_int_equal(pier_retry_next(r2, &st, &o), PIER_RETRY_STOP);
    assert_int_equal(pier_retry_clock_offset(r2), 0);
    /* a skew code with a far Date but non-skew code: not skew */
    pier_time_http(date, sizeof date, (time_t)(1700000000 + 7200));
    o = status(403, "AccessDenied");
    o.date = date;
    st = (pier_retry_state)PIER_RETRY_STATE_INIT;
    assert_int_equal(pier_retry_next(r2, &st, &o), PIER_RETRY_STOP);
    assert_int_equal(pier_retry_clock_offset(r2), 0);
    pier_retry_free(r2);
    pier_retry_free(r);
}

typedef struct {
    pier_retry *r;
    int rounds;
} thread_arg;

static void *hammer(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < a->rounds; i++) {
        pier_retry_state st = PIER_RETRY_STATE_INIT;
        pier_retry_outcome bad = {0};
        bad.status = 503;
        pier_retry_outcome ok = {0};
        ok.status = 200;
        if (pier_retry_next(a->r, &st, &bad) == PIER_RETRY_AGAIN)
            pier_retry_next(a->r, &st, &ok);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    fake f = {1000000, 0.0};
    pier_retry *r = make(&f, 3);
    pthread_t t[4];
    thread_arg a = {r, 2000};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    /* every retry was paid back by its success */
    assert_int_equal(pier_retry_quota_left(r), 500);
    pier_retry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retryable_statuses),
        cmocka_unit_test(test_retryable_codes),
        cmocka_unit_test(test_transport),
        cmocka_unit_test(test_max_attempts),
        cmocka_unit_test(test_not_retryable_stops),
        cmocka_unit_test(test_quota_costs_and_refunds),
        cmocka_unit_test(test_quota_exhaustion_and_refill),
        cmocka_unit_test(test_delays),
        cmocka_unit_test(test_clock_skew),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
