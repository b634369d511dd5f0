/*
 * awsreq: see awsreq.h. One call moves through
 *
 *   submit -> attempt (credentials, Host, SigV4, pier_http_submit)
 *          -> http_done -> outcome (status, AWS error code, Date)
 *          -> pier_retry_next: SUCCESS -> finish(0)
 *                              AGAIN   -> attempt now, or a timer
 *                              STOP    -> finish(error message, code)
 *
 * Timers: a singly linked list sorted by due time (a deploy has at most a
 * few dozen calls waiting at once, so insertion is linear and cheap). The
 * run loop fires due timers, then drives the HTTP client with
 * pier_http_run_for until the next one is due, or sleeps when nothing is
 * on the wire. Costs per attempt: one URL parse, one signature, one
 * SHA-256 of a memory body.
 */
#include "aws/awsreq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/sigv4.h"
#include "aws/xml.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/url.h"

struct pier_awsreq_client {
    char *service_id;               /* "S3" */
    char *signing_name;             /* "s3" */
    char *region;                   /* signing region */
    char *endpoint;                 /* given or configured endpoint, or NULL */
    bool s3_rules;                  /* S3 signing */
    pier_awsreq_explain_fn explain; /* service messages */
    void *explain_ctx;              /* its context */
    pier_aws_config *config;        /* in use */
    pier_credentials_chain *creds;  /* in use */
    pier_http_client *http;         /* in use */
    pier_retry *retry;              /* in use */
    bool own_config;                /* made here: free with the client */
    bool own_creds;                 /* made here */
    bool own_http;                  /* made here */
    bool own_retry;                 /* made here */
    pier_awsreq_call *timers;       /* calls waiting to retry, by due time */
    size_t pending;                 /* calls submitted and not finished */
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- client --------------------------------------------------------- */

int pier_awsreq_client_new(pier_awsreq_client **out, const pier_awsreq_service *svc,
                           const pier_awsreq_shared *shared)
{
    pier_awsreq_shared none = PIER_AWSREQ_SHARED_INIT;
    int rc = 0;
    *out = NULL;
    if (!shared)
        shared = &none;
    pier_awsreq_client *c = pier_calloc(1, sizeof *c);
    c->service_id = pier_strdup(svc->service_id);
    c->signing_name = pier_strdup(svc->signing_name);
    c->s3_rules = svc->s3_rules;
    c->explain = svc->explain;
    c->explain_ctx = svc->explain_ctx;

    c->config = shared->config;
    if (!c->config) {
        pier_aws_config_options co = PIER_AWS_CONFIG_OPTIONS_INIT;
        co.profile = shared->profile;
        if ((rc = pier_aws_config_load(&c->config, &co)) < 0)
            goto done;
        c->own_config = true;
    }

    const char *region = svc->region;
    if (!region)
        region = shared->region;
    if (!region)
        region = pier_aws_config_region(c->config);
    c->region = pier_strdup(region ? region : "us-east-1");

    const char *endpoint = shared->endpoint_url;
    if (!endpoint)
        endpoint = pier_aws_config_endpoint(c->config, svc->service_id);
    if (endpoint) {
        pier_url u;
        if (pier_url_parse(&u, endpoint) < 0) {
            rc = pier_error_wrap(PIER_EINVALID, "%s endpoint %s", svc->service_id, endpoint);
            goto done;
        }
        pier_url_free(&u);
        size_t n = strlen(endpoint);
        while (n > 0 && endpoint[n - 1] == '/')
            n--;
        c->endpoint = pier_strndup(endpoint, n);
    }

    c->retry = shared->retry;
    if (!c->retry) {
        pier_retry_options ro = PIER_RETRY_OPTIONS_INIT;
        ro.max_attempts = pier_aws_config_max_attempts(c->config);
        if ((rc = pier_retry_new(&c->retry, &ro)) < 0)
            goto done;
        c->own_retry = true;
    }

    c->http = shared->http;
    if (!c->http) {
        pier_http_client_options ho = PIER_HTTP_CLIENT_OPTIONS_INIT;
        ho.allow_insecure_http = shared->allow_insecure_http;
        if ((rc = pier_http_client_new(&c->http, &ho)) < 0)
            goto done;
        c->own_http = true;
    }

    c->creds = shared->credentials;
    if (!c->creds) {
        pier_credentials_options cr = PIER_CREDENTIALS_OPTIONS_INIT;
        cr.profile = shared->profile;
        cr.retry = c->retry;
        if ((rc = pier_credentials_chain_new(&c->creds, &cr)) < 0)
            goto done;
        c->own_creds = true;
    }

done:
    if (rc < 0) {
        pier_awsreq_client_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void pier_awsreq_client_free(pier_awsreq_client *c)
{
    if (!c)
        return;
    if (c->own_creds)
        pier_credentials_chain_free(c->creds);
    if (c->own_http)
        pier_http_client_free(c->http);
    if (c->own_retry)
        pier_retry_free(c->retry);
    if (c->own_config)
        pier_aws_config_free(c->config);
    free(c->service_id);
    free(c->signing_name);
    free(c->region);
    free(c->endpoint);
    free(c);
}

const char *pier_awsreq_client_region(const pier_awsreq_client *c)
{
    return c->region;
}

const char *pier_awsreq_client_endpoint(const pier_awsreq_client *c)
{
    return c->endpoint;
}

pier_aws_config *pier_awsreq_client_config(const pier_awsreq_client *c)
{
    return c->config;
}

pier_http_client *pier_awsreq_client_http(const pier_awsreq_client *c)
{
    return c->http;
}

pier_retry *pier_awsreq_client_retry(const pier_awsreq_client *c)
{
    return c->retry;
}

/* ---- calls ---------------------------------------------------------- */

void pier_awsreq_call_init(pier_awsreq_call *call)
{
    memset(call, 0, sizeof *call);
    pier_buf_init(&call->body, PIER_BUF_MAX_DEFAULT);
    pier_http_response_init(&call->resp);
    pier_retry_state st = PIER_RETRY_STATE_INIT;
    call->retry = st;
}

static void clear_outcome(pier_awsreq_call *call)
{
    PIER_FREE(call->error_code);
    PIER_FREE(call->error_message);
    PIER_FREE(call->request_id);
}

void pier_awsreq_call_free(pier_awsreq_call *call)
{
    if (!call)
        return;
    free(call->what);
    free(call->url);
    pier_http_headers_free(&call->headers);
    pier_buf_free(&call->body);
    free(call->body_file);
    free(call->response_file);
    pier_http_response_free(&call->resp);
    clear_outcome(call);
    pier_awsreq_call_init(call);
}

int pier_awsreq_url(pier_buf *out, const char *endpoint, const char *path, const char *query)
{
    size_t n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    int rc = pier_buf_put(out, endpoint, n);
    if (rc == 0 && path[0] != '/')
        rc = pier_buf_putc(out, '/');
    if (rc == 0)
        rc = pier_buf_puts(out, path);
    if (rc == 0 && query && query[0]) {
        rc = pier_buf_putc(out, '?');
        if (rc == 0)
            rc = pier_buf_puts(out, query);
    }
    return rc;
}

/* The URL without its query, for messages (presigned or not, a query can
 * carry tokens). */
static char *shown_url(const char *url)
{
    const char *q = strchr(url, '?');
    return q ? pier_strndup(url, (size_t)(q - url)) : pier_strdup(url);
}

/* "host" or "host:port" or "[v6]:port", as the Host header. */
static int host_header(pier_buf *out, const pier_url *u)
{
    bool v6 = strchr(u->host, ':') != NULL;
    int rc = pier_buf_printf(out, v6 ? "[%s]" : "%s", u->host);
    if (rc == 0 && u->port > 0) {
        bool dflt = (u->port == 443 && strcmp(u->scheme, "https") == 0) ||
                    (u->port == 80 && strcmp(u->scheme, "http") == 0);
        if (!dflt)
            rc = pier_buf_printf(out, ":%d", u->port);
    }
    return rc;
}

/* Signs and sends one attempt. Negative when nothing could be sent. */
static void http_done(void *ctx, int rc, pier_http_request *req, pier_http_response *resp);

static int attempt(pier_awsreq_client *c, pier_awsreq_call *call)
{
    pier_credentials cred = {0};
    pier_url u = {0};
    pier_buf host = PIER_BUF_INIT;
    int rc;

    if (call->on_attempt && (rc = call->on_attempt(call->on_attempt_ctx, call->attempts + 1)) < 0)
        return rc;
    if ((rc = pier_credentials_get(c->creds, &cred)) < 0)
        goto done;
    if ((rc = pier_url_parse(&u, call->url)) < 0)
        goto done;
    if ((rc = host_header(&host, &u)) < 0)
        goto done;
    pier_http_headers_set(&call->headers, "Host", pier_buf_cstr(&host));

    char hash[65];
    const char *payload = call->payload_hash;
    if (!payload) {
        if (call->body_file && c->s3_rules) {
            payload = PIER_SIGV4_UNSIGNED_PAYLOAD;
        } else if (call->body_file) {
            unsigned char md[PIER_SHA256_LEN];
            /* Non-S3 services need the real hash; their bodies are small. */
            if ((rc = pier_digest_file(call->body_file, NULL, md)) < 0)
                goto done;
            pier_hex_encode(hash, md, sizeof md);
            payload = hash;
        } else {
            pier_sha256_hex(hash, call->body.ptr ? call->body.ptr : "", call->body.len);
            payload = hash;
        }
    }

    pier_sigv4_options so = PIER_SIGV4_OPTIONS_INIT;
    if (c->s3_rules) {
        pier_sigv4_options s3 = PIER_SIGV4_OPTIONS_S3_INIT;
        so = s3;
    }
    so.region = c->region;
    so.service = c->signing_name;
    pier_sigv4_credentials sc = {cred.access_key_id, cred.secret_access_key, cred.session_token};
    pier_sigv4_request sr = {call->method, pier_buf_cstr(&host), u.path,
                             u.query,      &call->headers,       payload};
    if ((rc = pier_sigv4_sign(NULL, &sr, &sc, (time_t)pier_retry_now(c->retry), &so)) < 0)
        goto done;

    pier_http_request *r = &call->req;
    memset(r, 0, sizeof *r);
    r->method = call->method;
    r->url = call->url;
    r->headers = call->headers; /* shares the list: never freed through req */
    if (call->body_file) {
        r->body_file = call->body_file;
        r->body_file_offset = call->body_file_offset;
        r->body_file_len = call->body_file_len;
    } else if (call->body.len > 0) {
        r->body = call->body.ptr;
        r->body_len = call->body.len;
    }
    r->response_file = call->response_file;
    r->on_body = call->on_body;
    r->on_body_ctx = call->on_body_ctx;
    r->response_max = call->response_max;
    r->timeout_ms = call->timeout_ms;
    r->no_body = call->no_body;
    rc = pier_http_submit(c->http, r, &call->resp, http_done, call);

done:
    pier_credentials_clear(&cred);
    pier_url_free(&u);
    pier_buf_free(&host);
    return rc;
}

/* ---- errors --------------------------------------------------------- */

static char *trim_code(const char *s)
{
    const char *hash = strrchr(s, '#');
    if (hash)
        s = hash + 1;
    size_t n = strcspn(s, ":");
    return pier_strndup(s, n);
}

static const char *status_code_name(long status)
{
    switch (status) {
    case 301:
        return "PermanentRedirect";
    case 304:
        return "NotModified";
    case 307:
        return "TemporaryRedirect";
    case 400:
        return "BadRequest";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 405:
        return "MethodNotAllowed";
    case 409:
        return "Conflict";
    case 412:
        return "PreconditionFailed";
    case 429:
        return "TooManyRequests";
    case 500:
        return "InternalError";
    case 502:
        return "BadGateway";
    case 503:
        return "ServiceUnavailable";
    case 504:
        return "GatewayTimeout";
    default:
        return NULL;
    }
}

int pier_awsreq_parse_error(const pier_http_response *resp, char **code, char **message,
                            char **request_id)
{
    *code = *message = *request_id = NULL;
    const char *body = pier_buf_cstr(&resp->body);
    size_t len = resp->body.len;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    if (i < len && body[i] == '<') {
        pier_xml_aws_error e = {0};
        if (pier_xml_parse_aws_error(&e, body, len) == 0) {
            *code = e.code;
            *message = e.message;
            *request_id = e.request_id;
            e.code = e.message = e.request_id = NULL;
        }
        pier_xml_aws_error_free(&e);
    } else if (i < len && body[i] == '{') {
        json_t *j = NULL;
        if (pier_json_parse(&j, body, len, "error") == 0 && json_is_object(j)) {
            const char *t = pier_json_str(j, "__type", NULL);
            if (!t)
                t = pier_json_str(j, "code", NULL);
            if (t)
                *code = trim_code(t);
            const char *m = pier_json_str(j, "message", NULL);
            if (!m)
                m = pier_json_str(j, "Message", NULL);
            if (m)
                *message = pier_strdup(m);
        }
        json_decref(j);
        pier_error_clear();
    }
    if (!*code) {
        const char *h = pier_http_headers_get(&resp->headers, "x-amzn-ErrorType");
        if (!h)
            h = pier_http_headers_get(&resp->headers, "x-amz-error-code");
        if (h && *h)
            *code = trim_code(h);
    }
    if (!*message) {
        const char *h = pier_http_headers_get(&resp->headers, "x-amz-error-message");
        if (h && *h)
            *message = pier_strdup(h);
    }
    if (!*request_id) {
        const char *h = pier_http_headers_get(&resp->headers, "x-amz-request-id");
        if (!h)
            h = pier_http_headers_get(&resp->headers, "x-amzn-RequestId");
        if (h && *h)
            *request_id = pier_strdup(h);
    }
    if (!*code) {
        const char *s = status_code_name(resp->status);
        if (s)
            *code = pier_strdup(s);
    }
    return *code ? 0 : PIER_EINVALID;
}

static bool code_is(const char *code, const char *const *list)
{
    for (; code && *list; list++)
        if (strcmp(code, *list) == 0)
            return true;
    return false;
}

static const char *const auth_codes[] = {
    "AccessDenied",
    "AccessDeniedException",
    "Forbidden",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidToken",
    "UnrecognizedClientException",
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "AllAccessDisabled",
    "AccountProblem",
    NULL,
};

/* Answers after which cached credentials are fetched again (once). */
static const char *const refresh_codes[] = {
    "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId",
    "InvalidToken", "TokenRefreshRequired",  NULL,
};

/* The pier code for a failed HTTP answer. */
static int code_for(long status, const char *code)
{
    if (code && strncmp(code, "NoSuch", 6) == 0)
        return PIER_ENOTFOUND;
    if (code_is(code, auth_codes) || status == 401 || status == 403)
        return PIER_EAUTH;
    if (status == 404)
        return PIER_ENOTFOUND;
    if (status == 409 || status == 412)
        return PIER_ECONFLICT;
    if (status >= 500 || status == 429)
        return PIER_EIO;
    return PIER_EINVALID;
}

/* Sets the final message of a failed call and returns its code. */
static int fail_message(pier_awsreq_client *c, pier_awsreq_call *call, int rc)
{
    char *url = shown_url(call->url ? call->url : "");
    const char *what = call->what ? call->what : url;
    const char *op = call->operation ? call->operation : call->method;
    char tries[48] = "";
    if (call->attempts > 1)
        snprintf(tries, sizeof tries, ", after %d attempts", call->attempts);

    if (rc < 0) {
        /* A transport failure: keep the HTTP client's text. */
        char msg[1100];
        snprintf(msg, sizeof msg, "%s", pier_error_last());
        int code = call->resp.transport == PIER_HTTP_TIMEOUT ? PIER_ETIMEOUT
                   : call->resp.transport == PIER_HTTP_LOCAL ? rc
                                                             : PIER_EIO;
        pier_error_set(code, "%s on %s failed: %s%s%s%s", op, what, msg, tries[0] ? " (" : "",
                       tries[0] ? tries + 2 : "", tries[0] ? ")" : "");
        free(url);
        return code;
    }

    int code = code_for(call->status, call->error_code);
    char rid[160] = "";
    if (call->request_id)
        snprintf(rid, sizeof rid, ", request id %s", call->request_id);
    pier_error_set(code, "%s on %s failed: %s%s%s (HTTP %ld%s%s)", op, what,
                   call->error_code ? call->error_code : "error", call->error_message ? ": " : "",
                   call->error_message ? call->error_message : "", call->status, rid, tries);
    free(url);
    if (c->explain) {
        char saved[1100];
        snprintf(saved, sizeof saved, "%s", pier_error_last());
        int e = c->explain(c->explain_ctx, call);
        if (e < 0)
            return e;
        pier_error_set(code, "%s", saved);
    }
    return code;
}

/* ---- completion and retries ----------------------------------------- */

static void finish(pier_awsreq_client *c, pier_awsreq_call *call, int rc)
{
    call->client = NULL;
    c->pending--;
    if (rc == 0)
        pier_error_clear();
    call->done(call->done_ctx, rc, call);
}

static void schedule(pier_awsreq_client *c, pier_awsreq_call *call, long delay_ms)
{
    call->due_ms = monotonic_ms() + delay_ms;
    pier_awsreq_call **p = &c->timers;
    while (*p && (*p)->due_ms <= call->due_ms)
        p = &(*p)->next;
    call->next = *p;
    *p = call;
}

/* Starts the next attempt now; a failure to send ends the call. */
static void retry_now(pier_awsreq_client *c, pier_awsreq_call *call)
{
    int rc = attempt(c, call);
    if (rc < 0) {
        call->resp.transport = PIER_HTTP_LOCAL;
        finish(c, call, fail_message(c, call, rc));
    }
}

static bool is_2xx(long status)
{
    return status >= 200 && status < 300;
}

static void http_done(void *ctx, int rc, pier_http_request *req, pier_http_response *resp)
{
    (void)req;
    pier_awsreq_call *call = ctx;
    pier_awsreq_client *c = call->client;
    call->attempts++;
    call->status = rc == 0 ? resp->status : 0;
    clear_outcome(call);

    pier_retry_outcome o = {0};
    o.rc = rc;
    o.transport = resp->transport;
    o.status = call->status;
    o.date = pier_http_headers_get(&resp->headers, "Date");
    if (rc == 0 && !is_2xx(resp->status)) {
        pier_awsreq_parse_error(resp, &call->error_code, &call->error_message, &call->request_id);
    } else if (rc == 0 && call->error_in_2xx && resp->body.len > 0) {
        /* S3's CompleteMultipartUpload and CopyObject may answer 200 with
         * an <Error> body: an InternalError there is retryable. */
        pier_xml_aws_error e = {0};
        const char *b = pier_buf_cstr(&resp->body);
        if (strstr(b, "<Error>") && pier_xml_parse_aws_error(&e, b, resp->body.len) == 0) {
            call->error_code = e.code;
            call->error_message = e.message;
            call->request_id = e.request_id;
            e.code = e.message = e.request_id = NULL;
            bool server = strcmp(call->error_code, "InternalError") == 0 ||
                          strcmp(call->error_code, "SlowDown") == 0 ||
                          strcmp(call->error_code, "ServiceUnavailable") == 0;
            call->status = server ? 500 : 400;
            o.status = call->status;
        }
        pier_xml_aws_error_free(&e);
        pier_error_clear();
    }
    o.error_code = call->error_code;
    if (code_is(call->error_code, refresh_codes) && !call->refreshed) {
        call->refreshed = true;
        pier_credentials_invalidate(c->creds);
        o.transient = true;
    }

    char saved[1100] = "";
    if (rc < 0)
        snprintf(saved, sizeof saved, "%s", pier_error_last());
    pier_retry_verdict v = pier_retry_next(c->retry, &call->retry, &o);
    if (v == PIER_RETRY_SUCCESS && !call->error_code) {
        finish(c, call, 0);
        return;
    }
    if (v == PIER_RETRY_AGAIN) {
        PIER_DEBUG("%s on %s: retry %d in %ld ms (%s)", call->operation ? call->operation : "",
                   call->what ? call->what : "", call->attempts + 1, call->retry.delay_ms,
                   call->retry.why ? call->retry.why : "");
        if (call->retry.delay_ms <= 0)
            retry_now(c, call);
        else
            schedule(c, call, call->retry.delay_ms);
        return;
    }
    if (rc < 0)
        pier_error_set(rc, "%s", saved);
    finish(c, call, fail_message(c, call, rc < 0 ? rc : 0));
}

int pier_awsreq_submit(pier_awsreq_client *c, pier_awsreq_call *call, pier_awsreq_done_fn done,
                       void *ctx)
{
    pier_retry_state st = PIER_RETRY_STATE_INIT;
    call->retry = st;
    call->attempts = 0;
    call->status = 0;
    call->refreshed = false;
    call->next = NULL;
    clear_outcome(call);
    call->client = c;
    call->done = done;
    call->done_ctx = ctx;
    int rc = attempt(c, call);
    if (rc < 0) {
        call->client = NULL;
        return rc;
    }
    c->pending++;
    return 0;
}

size_t pier_awsreq_pending(const pier_awsreq_client *c)
{
    return c->pending;
}

/* Starts every timer that is due. */
static void fire_timers(pier_awsreq_client *c)
{
    int64_t now = monotonic_ms();
    while (c->timers && c->timers->due_ms <= now) {
        pier_awsreq_call *call = c->timers;
        c->timers = call->next;
        call->next = NULL;
        retry_now(c, call);
    }
}

static void sleep_ms(long ms)
{
    if (ms > 0)
        pier_retry_sleep_ms(ms);
}

/* Drives until nothing is pending (or *stop). */
static int drive(pier_awsreq_client *c, const bool *stop)
{
    for (;;) {
        fire_timers(c);
        if (stop && *stop)
            return 0;
        bool wire = pier_http_in_flight(c->http) > 0;
        if (!wire && !c->timers)
            return 0;
        long wait = -1;
        if (c->timers) {
            int64_t left = c->timers->due_ms - monotonic_ms();
            wait = left > 0 ? (long)left : 0;
        }
        if (!wire) {
            sleep_ms(wait);
            continue;
        }
        int rc;
        if (wait >= 0)
            rc = pier_http_run_for(c->http, wait);
        else if (stop)
            rc = pier_http_run_for(c->http, 100); /* notice *stop soon */
        else
            rc = pier_http_run(c->http);
        if (rc < 0)
            return rc;
    }
}

int pier_awsreq_run(pier_awsreq_client *c)
{
    return drive(c, NULL);
}

int pier_awsreq_run_until(pier_awsreq_client *c, const bool *stop)
{
    return drive(c, stop);
}

typedef struct {
    bool finished;  /* done was called */
    int rc;         /* its result */
    char msg[1100]; /* its message (other calls driven after it may set theirs) */
} sync_state;

static void sync_done(void *ctx, int rc, pier_awsreq_call *call)
{
    (void)call;
    sync_state *s = ctx;
    s->finished = true;
    s->rc = rc;
    if (rc < 0)
        snprintf(s->msg, sizeof s->msg, "%s", pier_error_last());
}

int pier_awsreq_do(pier_awsreq_client *c, pier_awsreq_call *call)
{
    sync_state s = {false, 0, ""};
    int rc = pier_awsreq_submit(c, call, sync_done, &s);
    if (rc < 0)
        return rc;
    rc = drive(c, &s.finished);
    if (rc < 0 && !s.finished)
        return rc; /* the HTTP client itself failed */
    if (s.rc < 0)
        pier_error_set(s.rc, "%s", s.msg);
    else
        pier_error_clear();
    return s.rc;
}
