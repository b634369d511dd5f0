/*
 * cloudfront: see cloudfront.h. Three REST-XML requests on awsreq (which
 * signs for us-east-1/cloudfront and retries 5xx, throttling and network
 * failures), and two waiting loops above them:
 *
 *   create: CreateInvalidation; when CloudFront answers
 *           TooManyInvalidationsInProgress (or throttles past awsreq's
 *           retries), sleep with doubling backoff and send the same batch
 *           again (same CallerReference, so never a duplicate) until
 *           busy_timeout_ms.
 *   wait:   GetInvalidation until Completed, sleeping between polls
 *           (growing by half) until timeout_ms.
 *
 * Time in the loops is the larger of the wall time spent and the sum of
 * the sleeps asked for, so a test's fake sleep still reaches the timeouts.
 * Answers are small documents (one invalidation, a page of 100 summaries)
 * read with the streaming reader from memory.
 */
#include "aws/cloudfront.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/retry.h"
#include "aws/xml.h"
#include "base/error.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"

#define POLL_FIRST_MS   1000
#define POLL_MAX_MS     15000
#define WAIT_TIMEOUT_MS (20L * 60 * 1000)
#define BUSY_FIRST_MS   1000
#define BUSY_MAX_MS     20000
#define BUSY_TIMEOUT_MS (10L * 60 * 1000)
#define LIST_PAGE       "100"

struct pier_cloudfront {
    pier_awsreq_client *aws;        /* signing, sending, retrying */
    char *endpoint;                 /* base URL, no trailing '/' */
    pier_cloudfront_sleep_fn sleep; /* between polls and busy retries */
    void *sleep_ctx;                /* its context */
};

static void real_sleep(void *ctx, long ms)
{
    (void)ctx;
    if (ms > 0)
        pier_retry_sleep_ms(ms);
}

static int explain(void *ctx, const pier_awsreq_call *call);

int pier_cloudfront_new(pier_cloudfront **out, const pier_cloudfront_options *opts)
{
    pier_cloudfront_options none = PIER_CLOUDFRONT_OPTIONS_INIT;
    *out = NULL;
    if (!opts)
        opts = &none;
    pier_cloudfront *cf = pier_calloc(1, sizeof *cf);
    pier_awsreq_service svc = {"CloudFront", "cloudfront", PIER_CLOUDFRONT_REGION,
                               false,        explain,      cf};
    int rc = pier_awsreq_client_new(&cf->aws, &svc, &opts->shared);
    if (rc < 0) {
        free(cf);
        return rc;
    }
    const char *ep = pier_awsreq_client_endpoint(cf->aws);
    cf->endpoint = pier_strdup(ep ? ep : PIER_CLOUDFRONT_ENDPOINT);
    cf->sleep = real_sleep;
    *out = cf;
    return 0;
}

void pier_cloudfront_free(pier_cloudfront *cf)
{
    if (!cf)
        return;
    pier_awsreq_client_free(cf->aws);
    free(cf->endpoint);
    free(cf);
}

const char *pier_cloudfront_endpoint(const pier_cloudfront *cf)
{
    return cf->endpoint;
}

void pier_cloudfront_set_sleep(pier_cloudfront *cf, pier_cloudfront_sleep_fn fn, void *ctx)
{
    cf->sleep = fn ? fn : real_sleep;
    cf->sleep_ctx = ctx;
}

int pier_cloudfront_parse_uri(const char *uri, char **distribution_id)
{
    *distribution_id = NULL;
    const char *id = uri;
    if (pier_str_starts_with(uri, "cloudfront://"))
        id = uri + 13;
    size_t n = strlen(id);
    while (n > 0 && id[n - 1] == '/')
        n--;
    bool ok = n > 0 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = (id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9');
    if (!ok)
        return pier_error_set(PIER_EINVALID,
                              "not a CloudFront distribution (cloudfront://ID, an id like "
                              "E2QWRUHAPOMQZL): %s",
                              uri);
    *distribution_id = pier_strndup(id, n);
    return 0;
}

/* ---- invalidations -------------------------------------------------------- */

void pier_cloudfront_invalidation_init(pier_cloudfront_invalidation *inv)
{
    memset(inv, 0, sizeof *inv);
}

void pier_cloudfront_invalidation_free(pier_cloudfront_invalidation *inv)
{
    if (!inv)
        return;
    free(inv->id);
    free(inv->status);
    free(inv->caller_reference);
    for (size_t i = 0; i < inv->path_count; i++)
        free(inv->paths[i]);
    free(inv->paths);
    free(inv->location);
    pier_cloudfront_invalidation_init(inv);
}

/* Reading an <Invalidation> or an <InvalidationList>. */
typedef struct {
    pier_cloudfront_invalidation *inv; /* Invalidation: filled here */
    size_t path_cap;                   /* allocated paths */
    pier_cloudfront_invalidation item; /* List: the current summary */
    pier_cloudfront_list_fn fn;        /* List: callback */
    void *ctx;                         /* its context */
    bool truncated;                    /* List: IsTruncated */
    char *next_marker;                 /* List: NextMarker */
    int user_rc;                       /* List: the callback stopped it */
    char user_msg[1100];               /* with this message */
} reading;

static void set_str(char **dst, const char *text, size_t len)
{
    free(*dst);
    *dst = pier_strndup(text, len);
}

static int64_t parse_time(const char *text)
{
    time_t t;
    int rc = pier_time_parse(text, &t);
    pier_error_clear();
    return rc == 0 ? (int64_t)t : 0;
}

static int on_invalidation(void *ctx, const char *path, int depth, const char *text, size_t len)
{
    (void)depth;
    reading *rd = ctx;
    pier_cloudfront_invalidation *inv = rd->inv;
    if (strcmp(path, "Invalidation/Id") == 0) {
        set_str(&inv->id, text, len);
    } else if (strcmp(path, "Invalidation/Status") == 0) {
        set_str(&inv->status, text, len);
    } else if (strcmp(path, "Invalidation/CreateTime") == 0) {
        inv->create_time = parse_time(text);
    } else if (strcmp(path, "Invalidation/InvalidationBatch/CallerReference") == 0) {
        set_str(&inv->caller_reference, text, len);
    } else if (strcmp(path, "Invalidation/InvalidationBatch/Paths/Items/Path") == 0) {
        if (inv->path_count == rd->path_cap) {
            rd->path_cap = rd->path_cap ? rd->path_cap * 2 : 16;
            inv->paths = pier_realloc(inv->paths, rd->path_cap * sizeof *inv->paths);
        }
        inv->paths[inv->path_count++] = pier_strndup(text, len);
    }
    return 0;
}

/* Parses an <Invalidation> answer into inv (emptied first). */
static int read_invalidation(const pier_awsreq_call *call, pier_cloudfront_invalidation *inv,
                             const char *what)
{
    pier_cloudfront_invalidation_free(inv);
    reading rd;
    memset(&rd, 0, sizeof rd);
    rd.inv = inv;
    pier_xml_reader *xr = NULL;
    const pier_buf *b = &call->resp.body;
    int rc = pier_xml_reader_new(&xr, what, on_invalidation, &rd);
    if (rc == 0)
        rc = pier_xml_reader_feed(xr, b->ptr ? b->ptr : "", b->len);
    if (rc == 0)
        rc = pier_xml_reader_finish(xr);
    if (rc == 0 && strcmp(pier_xml_reader_root(xr), "Invalidation") != 0)
        rc = pier_error_set(PIER_EINVALID, "%s: unexpected answer <%s>", what,
                            pier_xml_reader_root(xr));
    if (rc == 0 && (!inv->id || !inv->status))
        rc = pier_error_set(PIER_EINVALID, "%s: answer without Id or Status", what);
    const char *loc = pier_http_headers_get(&call->resp.headers, "Location");
    if (rc == 0 && loc)
        inv->location = pier_strdup(loc);
    pier_xml_reader_free(xr);
    return rc;
}

/* ---- messages ----------------------------------------------------------- */

/* The distribution id from a call's URL ("/2020-05-31/distribution/ID/..."). */
static char *distribution_of(const char *url)
{
    const char *p = strstr(url, "/distribution/");
    if (!p)
        return pier_strdup("?");
    p += 14;
    return pier_strndup(p, strcspn(p, "/?"));
}

static bool is(const char *code, const char *want)
{
    return code && strcmp(code, want) == 0;
}

static int explain(void *ctx, const pier_awsreq_call *call)
{
    (void)ctx;
    const char *code = call->error_code;
    char *dist = distribution_of(call->url);
    int rc = 0;
    if (is(code, "NoSuchDistribution")) {
        rc = pier_error_set(PIER_ENOTFOUND, "no such CloudFront distribution: %s", dist);
    } else if (is(code, "NoSuchInvalidation")) {
        const char *inv = strstr(call->url, "/invalidation/");
        rc = pier_error_set(PIER_ENOTFOUND, "no such invalidation %s on CloudFront distribution %s",
                            inv ? inv + 14 : "?", dist);
    } else if (is(code, "AccessDenied") || is(code, "AccessDeniedException") ||
               (call->status == 403 && !is(code, "SignatureDoesNotMatch") &&
                !is(code, "InvalidClientTokenId"))) {
        rc = pier_error_set(PIER_EAUTH,
                            "access denied: %s on distribution %s (check the role's "
                            "cloudfront:%s permission)",
                            call->operation, dist, call->operation);
    } else if (is(code, "SignatureDoesNotMatch")) {
        rc = pier_error_set(PIER_EAUTH,
                            "signature rejected by CloudFront for %s on distribution %s: check "
                            "the secret access key and the system clock",
                            call->operation, dist);
    } else if (is(code, "InvalidationBatchAlreadyExists")) {
        rc = pier_error_set(PIER_ECONFLICT,
                            "CreateInvalidation on distribution %s: this caller reference was "
                            "already used for other paths (use a new reference per batch)",
                            dist);
    }
    free(dist);
    return rc;
}

/* ---- requests ------------------------------------------------------------- */

/* Appends endpoint + "/2020-05-31/distribution/<id>/invalidation". */
static int base_url(const pier_cloudfront *cf, pier_buf *out, const char *dist)
{
    if (!dist || !dist[0])
        return pier_error_set(PIER_EINVALID, "CloudFront: empty distribution id");
    int rc = pier_buf_printf(out, "%s/" PIER_CLOUDFRONT_API_VERSION "/distribution/", cf->endpoint);
    if (rc == 0)
        rc = pier_uri_encode(out, dist, strlen(dist), false);
    if (rc == 0)
        rc = pier_buf_puts(out, "/invalidation");
    return rc;
}

static int build_batch(pier_buf *body, const char *const *paths, size_t n, const char *ref)
{
    int rc = pier_buf_printf(body,
                             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                             "<InvalidationBatch xmlns=\"" PIER_CLOUDFRONT_XMLNS "\">"
                             "<Paths><Quantity>%zu</Quantity><Items>",
                             n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        pier_buf_puts(body, "<Path>");
        if ((rc = pier_xml_escape(body, paths[i], strlen(paths[i]))) < 0)
            return pier_error_wrap(PIER_EINVALID, "invalidation path \"%s\"", paths[i]);
        rc = pier_buf_puts(body, "</Path>");
    }
    if (rc == 0)
        rc = pier_buf_puts(body, "</Items></Paths><CallerReference>");
    if (rc == 0 && (rc = pier_xml_escape(body, ref, strlen(ref))) < 0)
        return pier_error_wrap(PIER_EINVALID, "caller reference");
    if (rc == 0)
        rc = pier_buf_puts(body, "</CallerReference></InvalidationBatch>");
    return rc;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Time spent in a waiting loop: wall time or the sleeps asked, the larger. */
typedef struct {
    int64_t start; /* monotonic ms at the start */
    long slept;    /* sum of sleeps asked */
} clockwork;

static long elapsed(const clockwork *cw)
{
    int64_t wall = monotonic_ms() - cw->start;
    return wall > cw->slept ? (long)wall : cw->slept;
}

static void nap(pier_cloudfront *cf, clockwork *cw, long ms)
{
    cf->sleep(cf->sleep_ctx, ms);
    cw->slept += ms;
}

static long or_default(long v, long d)
{
    return v > 0 ? v : d;
}

static bool busy_code(const char *code)
{
    return is(code, "TooManyInvalidationsInProgress") || pier_retry_is_throttle(code);
}

int pier_cloudfront_create_invalidation(pier_cloudfront *cf, const char *distribution_id,
                                        const char *const *paths, size_t n,
                                        const char *caller_reference,
                                        const pier_cloudfront_wait_options *opts,
                                        pier_cloudfront_invalidation *out)
{
    pier_cloudfront_wait_options none = PIER_CLOUDFRONT_WAIT_OPTIONS_INIT;
    pier_awsreq_call call;
    pier_buf url = PIER_BUF_INIT;
    pier_buf what = PIER_BUF_INIT;
    pier_buf body = PIER_BUF_INIT;
    pier_cloudfront_invalidation own;
    int rc = 0;
    if (!opts)
        opts = &none;
    pier_cloudfront_invalidation_init(&own);
    pier_awsreq_call_init(&call);

    if (n == 0 || n > PIER_CLOUDFRONT_MAX_PATHS) {
        rc = pier_error_set(PIER_EINVALID,
                            "CreateInvalidation on distribution %s: 1..%d paths, not %zu",
                            distribution_id, PIER_CLOUDFRONT_MAX_PATHS, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (paths[i][0] != '/') {
            rc = pier_error_set(PIER_EINVALID,
                                "CreateInvalidation on distribution %s: path \"%s\" must start "
                                "with '/'",
                                distribution_id, paths[i]);
            goto done;
        }
    }
    if (!caller_reference || !caller_reference[0]) {
        rc = pier_error_set(PIER_EINVALID,
                            "CreateInvalidation on distribution %s: empty caller reference",
                            distribution_id);
        goto done;
    }
    if ((rc = base_url(cf, &url, distribution_id)) < 0 ||
        (rc = build_batch(&body, paths, n, caller_reference)) < 0)
        goto done;
    pier_buf_printf(&what, "distribution %s", distribution_id);

    clockwork cw = {monotonic_ms(), 0};
    long busy_wait = or_default(opts->busy_first_ms, BUSY_FIRST_MS);
    long busy_max = or_default(opts->busy_max_ms, BUSY_MAX_MS);
    long busy_timeout = or_default(opts->busy_timeout_ms, BUSY_TIMEOUT_MS);
    for (;;) {
        pier_awsreq_call_free(&call);
        call.operation = "CreateInvalidation";
        call.method = "POST";
        call.url = pier_strdup(pier_buf_cstr(&url));
        call.what = pier_strdup(pier_buf_cstr(&what));
        pier_buf_put(&call.body, body.ptr, body.len);
        pier_http_headers_set(&call.headers, "Content-Type", "application/xml");
        rc = pier_awsreq_do(cf->aws, &call);
        if (rc == 0 || !busy_code(call.error_code))
            break;
        if (elapsed(&cw) + busy_wait > busy_timeout) {
            rc = pier_error_set(PIER_ETIMEOUT,
                                "CreateInvalidation on distribution %s: CloudFront still "
                                "answers %s after %ld s of waiting",
                                distribution_id, call.error_code, elapsed(&cw) / 1000);
            goto done;
        }
        PIER_INFO("CloudFront distribution %s: %s; trying again in %ld ms", distribution_id,
                  call.error_code, busy_wait);
        nap(cf, &cw, busy_wait);
        busy_wait = busy_wait * 2 > busy_max ? busy_max : busy_wait * 2;
    }
    if (rc < 0)
        goto done;
    rc = read_invalidation(&call, out ? out : &own, "CreateInvalidation answer");

done:
    pier_awsreq_call_free(&call);
    pier_buf_free(&url);
    pier_buf_free(&what);
    pier_buf_free(&body);
    pier_cloudfront_invalidation_free(&own);
    if (rc == 0)
        pier_error_clear();
    return rc;
}

int pier_cloudfront_get_invalidation(pier_cloudfront *cf, const char *distribution_id,
                                     const char *invalidation_id, pier_cloudfront_invalidation *out)
{
    pier_awsreq_call call;
    pier_buf url = PIER_BUF_INIT;
    pier_buf what = PIER_BUF_INIT;
    pier_awsreq_call_init(&call);
    int rc = base_url(cf, &url, distribution_id);
    if (rc == 0 && (!invalidation_id || !invalidation_id[0]))
        rc = pier_error_set(PIER_EINVALID, "GetInvalidation: empty invalidation id");
    if (rc == 0)
        rc = pier_buf_putc(&url, '/');
    if (rc == 0)
        rc = pier_uri_encode(&url, invalidation_id, strlen(invalidation_id), false);
    if (rc < 0)
        goto done;
    pier_buf_printf(&what, "invalidation %s of distribution %s", invalidation_id, distribution_id);
    call.operation = "GetInvalidation";
    call.method = "GET";
    call.url = pier_buf_detach(&url);
    call.what = pier_buf_detach(&what);
    if ((rc = pier_awsreq_do(cf->aws, &call)) < 0)
        goto done;
    rc = read_invalidation(&call, out, "GetInvalidation answer");

done:
    pier_awsreq_call_free(&call);
    pier_buf_free(&url);
    pier_buf_free(&what);
    if (rc == 0)
        pier_error_clear();
    return rc;
}

int pier_cloudfront_wait(pier_cloudfront *cf, const char *distribution_id,
                         const char *invalidation_id, const pier_cloudfront_wait_options *opts,
                         pier_cloudfront_invalidation *out)
{
    pier_cloudfront_wait_options none = PIER_CLOUDFRONT_WAIT_OPTIONS_INIT;
    pier_cloudfront_invalidation own;
    pier_cloudfront_invalidation *inv = out ? out : &own;
    int rc = 0;
    if (!opts)
        opts = &none;
    pier_cloudfront_invalidation_init(&own);
    clockwork cw = {monotonic_ms(), 0};
    long delay = or_default(opts->poll_first_ms, POLL_FIRST_MS);
    long max = or_default(opts->poll_max_ms, POLL_MAX_MS);
    long timeout = or_default(opts->timeout_ms, WAIT_TIMEOUT_MS);
    for (;;) {
        if (elapsed(&cw) + delay > timeout) {
            rc = pier_error_set(PIER_ETIMEOUT,
                                "invalidation %s of CloudFront distribution %s is still %s after "
                                "%ld s",
                                invalidation_id, distribution_id,
                                inv->status ? inv->status : "not completed", elapsed(&cw) / 1000);
            break;
        }
        nap(cf, &cw, delay);
        delay = delay + delay / 2 > max ? max : delay + delay / 2;
        if ((rc = pier_cloudfront_get_invalidation(cf, distribution_id, invalidation_id, inv)) < 0)
            break;
        if (strcmp(inv->status, "Completed") == 0)
            break;
        PIER_DEBUG("invalidation %s: %s", invalidation_id, inv->status);
    }
    pier_cloudfront_invalidation_free(&own);
    return rc;
}

int pier_cloudfront_invalidate(pier_cloudfront *cf, const char *distribution_id,
                               const char *const *paths, size_t n, const char *caller_reference,
                               const pier_cloudfront_wait_options *opts,
                               pier_cloudfront_invalidation *out)
{
    pier_cloudfront_invalidation own;
    pier_cloudfront_invalidation *inv = out ? out : &own;
    pier_cloudfront_invalidation_init(&own);
    int rc = pier_cloudfront_create_invalidation(cf, distribution_id, paths, n, caller_reference,
                                                 opts, inv);
    if (rc == 0 && strcmp(inv->status, "Completed") != 0) {
        char *id = pier_strdup(inv->id);
        char *location = inv->location ? pier_strdup(inv->location) : NULL;
        rc = pier_cloudfront_wait(cf, distribution_id, id, opts, inv);
        if (!inv->location)
            inv->location = location;
        else
            free(location);
        free(id);
    }
    pier_cloudfront_invalidation_free(&own);
    return rc;
}

/* ---- listing ------------------------------------------------------------- */

static int on_list(void *ctx, const char *path, int depth, const char *text, size_t len)
{
    (void)depth;
    reading *rd = ctx;
    static const char item[] = "InvalidationList/Items/InvalidationSummary";
    if (pier_str_starts_with(path, item)) {
        const char *p = path + sizeof item - 1;
        if (strcmp(p, "/Id") == 0) {
            set_str(&rd->item.id, text, len);
        } else if (strcmp(p, "/Status") == 0) {
            set_str(&rd->item.status, text, len);
        } else if (strcmp(p, "/CreateTime") == 0) {
            rd->item.create_time = parse_time(text);
        } else if (p[0] == '\0') {
            int rc = rd->fn(rd->ctx, &rd->item);
            pier_cloudfront_invalidation_free(&rd->item);
            if (rc != 0) {
                rd->user_rc = rc < 0 ? rc : PIER_ERR;
                snprintf(rd->user_msg, sizeof rd->user_msg, "%s", pier_error_last());
                return rd->user_rc;
            }
        }
    } else if (strcmp(path, "InvalidationList/IsTruncated") == 0) {
        rd->truncated = strcmp(text, "true") == 0;
    } else if (strcmp(path, "InvalidationList/NextMarker") == 0) {
        set_str(&rd->next_marker, text, len);
    }
    return 0;
}

int pier_cloudfront_list_invalidations(pier_cloudfront *cf, const char *distribution_id,
                                       pier_cloudfront_list_fn fn, void *ctx)
{
    char *marker = NULL;
    int rc = 0;
    for (;;) {
        pier_awsreq_call call;
        pier_buf url = PIER_BUF_INIT;
        reading rd;
        memset(&rd, 0, sizeof rd);
        rd.fn = fn;
        rd.ctx = ctx;
        pier_awsreq_call_init(&call);
        rc = base_url(cf, &url, distribution_id);
        if (rc == 0 && marker) {
            pier_buf_puts(&url, "?Marker=");
            pier_uri_encode(&url, marker, strlen(marker), false);
            pier_buf_puts(&url, "&MaxItems=" LIST_PAGE);
        } else if (rc == 0) {
            pier_buf_puts(&url, "?MaxItems=" LIST_PAGE);
        }
        if (rc == 0) {
            pier_buf w = PIER_BUF_INIT;
            pier_buf_printf(&w, "distribution %s", distribution_id);
            call.operation = "ListInvalidations";
            call.method = "GET";
            call.url = pier_buf_detach(&url);
            call.what = pier_buf_detach(&w);
            rc = pier_awsreq_do(cf->aws, &call);
        }
        pier_xml_reader *xr = NULL;
        if (rc == 0)
            rc = pier_xml_reader_new(&xr, "ListInvalidations answer", on_list, &rd);
        if (rc == 0)
            rc = pier_xml_reader_feed(xr, pier_buf_cstr(&call.resp.body), call.resp.body.len);
        if (rc == 0)
            rc = pier_xml_reader_finish(xr);
        if (rc == 0 && strcmp(pier_xml_reader_root(xr), "InvalidationList") != 0)
            rc = pier_error_set(PIER_EINVALID, "ListInvalidations answer: unexpected <%s>",
                                pier_xml_reader_root(xr));
        if (rd.user_rc)
            rc = pier_error_set(rd.user_rc, "%s", rd.user_msg);
        pier_xml_reader_free(xr);
        pier_cloudfront_invalidation_free(&rd.item);
        pier_awsreq_call_free(&call);
        pier_buf_free(&url);
        free(marker);
        marker = rd.next_marker;
        if (rc < 0 || !rd.truncated)
            break;
        if (!marker || !marker[0]) {
            rc = pier_error_set(PIER_EINVALID, "ListInvalidations: truncated page without "
                                               "NextMarker");
            break;
        }
    }
    free(marker);
    if (rc == 0)
        pier_error_clear();
    return rc;
}
