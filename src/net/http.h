/*
 * http: pier's HTTP client, on libcurl. Only src/net/ includes curl/curl.h
 * (http.c, url.c); callers see none of it.
 *
 * Model
 *   - A pier_http_client owns one curl multi handle: many transfers in flight
 *     at once on one thread, and the client's keep-alive connection cache
 *     (so a long-lived client reuses its connections across requests).
 *   - All clients of the process share one DNS cache and one TLS session
 *     cache (a curl share handle with pthread locks), so a new client or a
 *     new connection resumes TLS sessions instead of full handshakes.
 *     Connections themselves are not shared between clients: libcurl
 *     documents a shared connection cache as unsupported across concurrent
 *     threads (known crashes), so each client keeps its own pool.
 *   - The first client set up also ignores SIGPIPE for the process (unless
 *     a handler is installed): libcurl cannot shield OpenSSL's writes from
 *     it safely when threads are used.
 *   - A client is used by one thread at a time. Other threads make their own
 *     client (cheap); long-lived work should keep one client per thread.
 *   - A request is described by pier_http_request (borrowed by the client
 *     until its transfer completes); the result lands in pier_http_response
 *     (owned by the caller, freed with pier_http_response_free).
 *   - Bodies stream: a request body comes from memory or from a file range
 *     (read as it is sent, never loaded whole); a response body goes to
 *     memory (capped), to a file, or to a callback (for streamed XML parses).
 *     Only a 2xx response body goes to a file or callback: any other status
 *     (an S3 error document, a redirect) keeps its body in memory, capped
 *     by response_max, so the caller can read the error and a target file
 *     is never clobbered by it.
 *   - Headers are sent as given: no Expect: 100-continue, Accept or
 *     Content-Type is added unless the caller sets it; Content-Length comes
 *     from the body. Host and User-Agent are added unless given. HTTP/1.1
 *     only; redirects are never followed (a 301/307 is a response).
 *
 * TLS
 *   Verification is always on, except for plain http:// (no TLS at all),
 *   which is only allowed for loopback hosts unless allow_insecure_http is
 *   set by the caller (S3-compatible stores on a LAN). Loopback means
 *   localhost and *.localhost (libcurl resolves those itself, never by DNS),
 *   127.0.0.0/8 and ::1. AWS_CA_BUNDLE (as the AWS SDKs do) names the CA
 *   file when set; options.ca_file overrides it. TLS 1.2 at least.
 *   Proxies from the environment (https_proxy ...) are honoured as libcurl
 *   does, except for loopback hosts, which are always reached directly.
 *
 * Errors
 *   pier_http_do / the completion callback report transport failures
 *   (connect refused, reset, timeout, TLS) as a negative code with the
 *   message set, and the kind in response->transport (for the retry policy);
 *   any HTTP status, 4xx and 5xx included, is a completed transfer (0).
 *   Messages name the method and the URL without its query (presigned URLs
 *   carry signatures there), and copy libcurl's own error text.
 */
#ifndef PIER_HTTP_H
#define PIER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "net/url.h"

typedef struct {
    char *name;  /* as sent or received (case preserved) */
    char *value; /* trimmed */
} pier_http_header;

typedef struct {
    pier_http_header *items; /* in order */
    size_t count;            /* used */
    size_t cap;              /* allocated */
} pier_http_headers;

void pier_http_headers_add(pier_http_headers *h, const char *name, const char *value);
/* Replaces every header of that name (case-insensitive) with one. */
void pier_http_headers_set(pier_http_headers *h, const char *name, const char *value);
/* The first value of that name (case-insensitive), or NULL. Borrowed. */
const char *pier_http_headers_get(const pier_http_headers *h, const char *name);
void pier_http_headers_remove(pier_http_headers *h, const char *name);
void pier_http_headers_free(pier_http_headers *h);

/* How a transfer failed below HTTP; the retry policy reads it. */
typedef enum {
    PIER_HTTP_OK = 0,  /* a response was received (any status) */
    PIER_HTTP_CONNECT, /* could not connect (refused, DNS, unreachable) */
    PIER_HTTP_RESET,   /* connection reset / closed mid-transfer */
    PIER_HTTP_TIMEOUT, /* connect, low-speed or total timeout */
    PIER_HTTP_TLS,     /* TLS handshake or verification failed */
    PIER_HTTP_LOCAL,   /* local problem: file unreadable, body sink full, aborted */
} pier_http_transport;

/* Called with each piece of a 2xx response body when on_body is set; return
 * non-zero to abort the transfer (the transfer then fails with
 * PIER_HTTP_LOCAL and the callback's error message kept; a negative return
 * is used as the transfer's error code, anything else gives PIER_ERR). */
typedef int (*pier_http_body_fn)(void *ctx, const char *data, size_t n);

typedef struct {
    const char *method;        /* "GET", "PUT", ... */
    const char *url;           /* absolute, already percent-encoded */
    pier_http_headers headers; /* sent as given (the caller signs them) */

    /* Request body: at most one of these. */
    const void *body;          /* memory, borrowed */
    size_t body_len;           /* its length */
    const char *body_file;     /* or: a file ... */
    uint64_t body_file_offset; /* ... from this offset ... */
    uint64_t body_file_len;    /* ... this many bytes (the Content-Length) */

    /* Response body: at most one of these; default is memory. */
    const char *response_file; /* write a 2xx body here (created/truncated;
                                  removed again when the transfer fails) */
    pier_http_body_fn on_body; /* or: hand each piece to this */
    void *on_body_ctx;         /* its context */
    size_t response_max;       /* cap for the in-memory body (0: 16 MiB) */

    long connect_timeout_ms; /* 0: the client's default */
    long low_speed_time_s;   /* abort below 1 byte/s for this long (0: default) */
    long timeout_ms;         /* total; 0: none */
    bool no_body;            /* HEAD-like: do not read a body (HEAD implies it) */
} pier_http_request;

/* clang-format off */
#define PIER_HTTP_REQUEST_INIT {0}
/* clang-format on */

typedef struct {
    long status;                   /* HTTP status, 0 when no response */
    pier_http_headers headers;     /* response headers of the final response */
    pier_buf body;                 /* in-memory body (empty when a 2xx body was streamed) */
    pier_http_transport transport; /* PIER_HTTP_OK, or how it failed */
    double seconds;                /* total time of the transfer */
    uint64_t bytes_sent;           /* request body bytes sent */
    uint64_t bytes_received;       /* response body bytes received */
} pier_http_response;

void pier_http_response_init(pier_http_response *r);
/* Frees headers and body; keeps the struct reusable after init. */
void pier_http_response_free(pier_http_response *r);

typedef struct {
    long connect_timeout_ms;  /* default 5000 */
    long low_speed_time_s;    /* default 30 */
    int max_host_connections; /* per host; default 64 */
    bool allow_insecure_http; /* http:// to non-loopback hosts */
    const char *ca_file;      /* overrides AWS_CA_BUNDLE */
    const char *user_agent;   /* default "pier/VERSION" */
} pier_http_client_options;

/* clang-format off */
#define PIER_HTTP_CLIENT_OPTIONS_INIT {5000, 30, 64, false, NULL, NULL}
/* clang-format on */

typedef struct pier_http_client pier_http_client;

int pier_http_client_new(pier_http_client **out, const pier_http_client_options *opts);
void pier_http_client_free(pier_http_client *c);

/* One request, synchronously. 0 when a response arrived (check
 * resp->status); negative on a transport failure (message set). */
int pier_http_do(pier_http_client *c, pier_http_request *req, pier_http_response *resp);

/* Asynchronous use: submit any number of transfers, then pier_http_run
 * drives them all; done is called on the running thread as each completes
 * (rc as for pier_http_do) and may submit more (but must not free the
 * client). req and resp must stay alive until done is called; done may
 * free them. */
typedef void (*pier_http_done_fn)(void *ctx, int rc, pier_http_request *req,
                                  pier_http_response *resp);
int pier_http_submit(pier_http_client *c, pier_http_request *req, pier_http_response *resp,
                     pier_http_done_fn done, void *ctx);
/* pier_http_submit resets resp first. When it returns negative (a bad
 * request, a refused http:// URL, an unreadable body file) nothing was sent,
 * done will not be called and resp->transport is PIER_HTTP_LOCAL.
 *
 * Runs until no transfer is in flight. Returns 0, or negative when the
 * multi handle itself failed. pier_http_run and pier_http_do must not be
 * called from a done callback (they return PIER_EINVALID). */
int pier_http_run(pier_http_client *c);
/* Like pier_http_run, but returns after about max_ms milliseconds even
 * when transfers are still in flight (they go on at the next call): for
 * callers that also keep timers, such as awsreq's retry delays. */
int pier_http_run_for(pier_http_client *c, long max_ms);
/* Transfers in flight now. */
size_t pier_http_in_flight(const pier_http_client *c);

/* "ok", "connect", "reset", "timeout", "tls", "local". */
const char *pier_http_transport_name(pier_http_transport t);

#endif
