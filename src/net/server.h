/*
 * server: pier's HTTP server, on libmicrohttpd (the only file that includes
 * microhttpd.h). A server listens on one HOST:PORT and hands each request
 * to the first handler whose match accepts it.
 *
 * Handlers
 *   A feature is a pier_handler: a struct with on_req and dispose, embedded
 *   first in the feature's own struct and added with pier_server_add (the
 *   server owns it from then on and calls dispose at pier_server_free).
 *
 * One request
 *   1. on_req runs once the request line and headers are in. It can answer
 *      at once (pier_server_respond_*), e.g. an error before any body byte
 *      is read (a 413, or a refused 100-continue), or a GET; or it calls
 *      pier_server_req_read_body to have the body streamed to it.
 *   2. Body pieces (up to ~512 KiB each) go to on_body. A non-zero return
 *      means "stop": the rest of the body is read and dropped.
 *   3. on_end runs when the body is complete; it must respond (else the
 *      client gets a 500). on_done hooks run when the request is over in any
 *      way (response sent, or connection lost): the place to free state.
 *   All calls for one request happen on one thread, one at a time.
 *
 * Memory: pier_server_req_alloc gives memory that lives as long as the
 * request (one arena, freed at once when the request ends). Strings the
 * accessors return are borrowed from the request and live as long.
 */
#ifndef PIER_SERVER_H
#define PIER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

typedef struct pier_server pier_server;
typedef struct pier_server_req pier_server_req;
typedef struct pier_handler pier_handler;

struct pier_handler {
    /* Called once per request with its headers; returns 0, or negative to
     * have the server answer 500 (when the handler has not answered). */
    int (*on_req)(pier_handler *self, pier_server_req *req);
    /* Frees the handler; NULL when there is nothing to free. */
    void (*dispose)(pier_handler *self);
};

/* What requests a handler takes; every field NULL means all. */
typedef struct {
    const char *host;        /* Host without port: exact, or "*.suffix" for its subdomains */
    const char *path_prefix; /* the raw path starts with this */
} pier_server_match;

typedef struct {
    const char *listen;    /* HOST:PORT ("[::1]:0" for IPv6); port 0 = any free port */
    unsigned threads;      /* worker threads; 0 = the number of cores */
    unsigned timeout_s;    /* idle connection timeout; 0 = 120 s */
    uint64_t memory_limit; /* per connection (request head + upload pieces); 0 = 1 MiB. MHD
                              0.9.75 resets this pool per request, and cost grows with it:
                              (4 KiB static body, 64 conns, 2 cores) 62k req/s at 32 KiB,
                              48k at 128 KiB, 22k at 1 MiB. Uploads want 1 MiB (512 KiB
                              pieces); a GET-heavy listener (the edge) wants 32-64 KiB. */
} pier_server_options;

int pier_server_new(pier_server **out, const pier_server_options *opts);
/* Adds a handler after those already added (first match wins); takes
 * ownership of h. match may be NULL (all requests); it is copied. */
void pier_server_add(pier_server *s, const pier_server_match *match, pier_handler *h);
/* Binds and starts the worker threads. Errors name the address. */
int pier_server_start(pier_server *s);
/* The bound port (after start). */
uint16_t pier_server_port(const pier_server *s);
/* "http://HOST:PORT" of the listener (borrowed). */
const char *pier_server_url(const pier_server *s);
/* Stops accepting and waits for the workers; idempotent. */
void pier_server_stop(pier_server *s);
/* Stops, disposes every handler, frees. Accepts NULL. */
void pier_server_free(pier_server *s);

/* ---- the request ---- */

const char *pier_server_req_method(const pier_server_req *r);
/* The request target exactly as sent: "/a%20b/c?x=1". */
const char *pier_server_req_raw_uri(const pier_server_req *r);
/* Its path part (before '?') and query part (after '?', "" when none),
 * still percent-encoded. */
pier_slice pier_server_req_raw_path(const pier_server_req *r);
pier_slice pier_server_req_raw_query(const pier_server_req *r);
/* The number of request headers, and the i-th, in the order received, with
 * the name's case as sent. */
size_t pier_server_req_header_count(const pier_server_req *r);
void pier_server_req_header_at(const pier_server_req *r, size_t i, const char **name,
                               const char **value);
/* The first header named name (case-insensitive), or NULL. */
const char *pier_server_req_header(const pier_server_req *r, const char *name);
/* The client's address as "IP" (no port). */
const char *pier_server_req_client(const pier_server_req *r);
/* The declared body length, or -1 when unknown (chunked); 0 for none. */
int64_t pier_server_req_content_length(const pier_server_req *r);
/* Memory freed when the request ends. Never NULL. */
void *pier_server_req_alloc(pier_server_req *r, size_t n);
char *pier_server_req_strndup(pier_server_req *r, const char *s, size_t n);

typedef int (*pier_server_body_fn)(pier_server_req *r, void *ctx, const char *data, size_t n);
typedef void (*pier_server_end_fn)(pier_server_req *r, void *ctx);

/* Streams the body to on_body (which may be NULL to drop it); on_end runs
 * when it is complete. Call from on_req. */
void pier_server_req_read_body(pier_server_req *r, pier_server_body_fn on_body,
                               pier_server_end_fn on_end, void *ctx);
/* Runs fn(r, ctx) when the request is over, however it ended. Hooks run in
 * reverse order of registration. */
void pier_server_req_on_done(pier_server_req *r, pier_server_end_fn fn, void *ctx);

/* ---- the response (one per request) ---- */

/* Adds a response header; call before pier_server_respond_*. */
void pier_server_resp_header(pier_server_req *r, const char *name, const char *value);
/* Answers with a copy of body. */
int pier_server_respond_mem(pier_server_req *r, unsigned status, const void *body, size_t n);
/* Answers with doc as compact JSON (plus a newline), Content-Type
 * application/json and Cache-Control no-store; takes doc's reference. */
struct json_t;
int pier_server_respond_json(pier_server_req *r, unsigned status, struct json_t *doc);
/* Answers with body, which the caller keeps alive and unchanged for as long
 * as the server may send it (e.g. a cache entry that outlives the server). */
int pier_server_respond_static(pier_server_req *r, unsigned status, const void *body, size_t n);
/* Answers with len bytes of fd from offset (sendfile where possible); takes
 * ownership of fd (closed even on failure). */
int pier_server_respond_fd(pier_server_req *r, unsigned status, int fd, uint64_t offset,
                           uint64_t len);
/* Answers with Content-Length: len and no body: for HEAD (the server never
 * sends a body to HEAD) and bodiless statuses. */
int pier_server_respond_empty(pier_server_req *r, unsigned status, uint64_t len);

/* Fills buf with up to max bytes at position pos; returns the count, 0 at
 * the end, negative on error (the connection is then closed). */
typedef ssize_t (*pier_server_read_fn)(void *ctx, uint64_t pos, char *buf, size_t max);
/* Answers with a body produced by read (size -1: unknown, sent chunked);
 * free_ctx(ctx) runs when the response is done (may be NULL). */
int pier_server_respond_stream(pier_server_req *r, unsigned status, int64_t size,
                               pier_server_read_fn read, void *ctx, void (*free_ctx)(void *));
/* True once a response has been given. */
bool pier_server_req_responded(const pier_server_req *r);

/* ---- prebuilt responses (shared by many requests) ----
 *
 * A response whose status, headers and body are fixed, built once and given
 * to any number of requests, on any threads, at the same time (a cache hit:
 * no per-request allocation, header copy or response object). Building
 * costs one response object; each use costs a reference. The server's Date
 * and Connection headers are still per connection. Reference counted: new
 * gives the caller one; each pending use holds one until it is queued, and
 * the server keeps what it sends alive until sent, so a holder may release
 * at any time, even while requests are sending it. */
typedef struct pier_server_response pier_server_response;

/* Over n bytes of body that stay valid until done(done_ctx) runs (NULL: the
 * caller keeps them valid until every request using the response is over,
 * e.g. memory that outlives the server). done runs once, when the last
 * request using the response has finished and the last reference is gone. */
pier_server_response *pier_server_response_new_static(unsigned status, const void *body, size_t n,
                                                      void (*done)(void *), void *done_ctx);
/* Over len bytes of fd from offset (sendfile where possible); takes fd
 * (closed when the response goes, or at once on failure). NULL on failure,
 * with the error set. */
pier_server_response *pier_server_response_new_fd(unsigned status, int fd, uint64_t offset,
                                                  uint64_t len);
/* Adds a header; only before the response is first used. */
void pier_server_response_header(pier_server_response *p, const char *name, const char *value);
/* Answers r with p (taking a reference for the request). Headers given with
 * pier_server_resp_header for r are not sent (p's are). */
int pier_server_respond_prebuilt(pier_server_req *r, pier_server_response *p);
/* Drops the caller's reference. Accepts NULL. */
void pier_server_response_release(pier_server_response *p);

#endif
