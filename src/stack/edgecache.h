/*
 * edgecache: the edge's response cache, with a CDN's semantics. No I/O and
 * no clock: every call that needs the time takes "now" (milliseconds), so
 * tests drive it with a fake clock.
 *
 * What is kept: one response per (scope, path) - scope is a distribution id,
 * path the viewer path it was asked for - with its body, its headers and
 * the path of the object it came from (a rewrite, an index document or a
 * SPA fallback serve one object under many paths).
 *
 * How long (pier_edgecache_ttl): CloudFront's rules with a cache policy's
 * MinTTL / DefaultTTL / MaxTTL: Cache-Control no-cache, no-store or private
 * keep an object MinTTL (0 by default: not cached); else s-maxage, then
 * max-age, then Expires give the time, clamped to [MinTTL, MaxTTL]; with
 * none of them, DefaultTTL (24 h). An object changed at the origin is
 * served stale until it expires or is invalidated: that is the point.
 *
 * Memory: bounded in bytes (bodies, keys, headers and a fixed overhead per
 * entry); inserting past the bound evicts the least recently used entries.
 *
 * Sharing: an entry handed out by get/put carries a reference; the caller
 * releases it when it no longer needs the body (after the response is
 * sent). Eviction, expiry and purges only unlink an entry; its memory goes
 * when the last reference does, so a response in flight never loses its
 * body.
 *
 * Invalidation (pier_edgecache_purge): a path matches an entry when it
 * equals the entry's viewer path or its source object path; a path ending in
 * '*' matches every path that starts with what precedes the '*'. Each purge
 * moves an epoch forward: a response read from the origin before a purge and
 * offered to put after it is served once but not kept (else an
 * invalidation could be undone by a slow miss).
 *
 * Each entry also has a slot for data a user derives from it (the edge:
 * its prebuilt HTTP response), under a mutex of its own, freed with it.
 *
 * Thread-safe: one mutex, held for hash and list updates only.
 */
#ifndef PIER_EDGECACHE_H
#define PIER_EDGECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PIER_EDGECACHE_DEFAULT_TTL    86400    /* CloudFront's DefaultTTL */
#define PIER_EDGECACHE_MAX_TTL        31536000 /* CloudFront's MaxTTL */
#define PIER_EDGECACHE_ERROR_TTL      10       /* ErrorCachingMinTTL: fallback and 404 pages */
#define PIER_EDGECACHE_ENTRY_OVERHEAD 256      /* bytes counted per entry besides its data */

typedef struct {
    int64_t min_ttl;     /* seconds; CloudFront default 0 */
    int64_t default_ttl; /* when the origin says nothing; 86400 */
    int64_t max_ttl;     /* upper bound on what the origin asks; 31536000 */
} pier_edgecache_ttl_policy;

/* clang-format off */
#define PIER_EDGECACHE_TTL_POLICY_INIT {0, PIER_EDGECACHE_DEFAULT_TTL, PIER_EDGECACHE_MAX_TTL}
/* clang-format on */

/* Seconds to keep an object given its Cache-Control and Expires headers
 * (either may be NULL) at now_s; 0 means do not cache. */
int64_t pier_edgecache_ttl(const pier_edgecache_ttl_policy *p, const char *cache_control,
                           const char *expires, int64_t now_s);

typedef struct {
    char *name;  /* as sent: "Content-Type" */
    char *value; /* its value */
} pier_edgecache_header;

/* A response to keep: every pointer is owned (malloc'ed) by the object. The
 * body is in memory, or (in_file) in an open file the object owns, which
 * must never change (the store's object files are replaced, not rewritten,
 * so an open one keeps the version that was read). */
typedef struct {
    unsigned status;                /* 200, or 404 for a not-found page */
    char *body;                     /* the bytes (NULL when size is 0 or in_file) */
    size_t size;                    /* their count */
    bool in_file;                   /* the bytes are fd's, from offset 0 */
    int fd;                         /* that file (closed at clear) */
    char *source;                   /* the object path it came from: "/index.html" */
    char etag[52];                  /* quoted: "\"9b2c...\"", "" when none */
    int64_t last_modified;          /* seconds since the epoch, 0 when unknown */
    pier_edgecache_header *headers; /* the other response headers, in order */
    size_t header_count;            /* their count */
} pier_edgecache_object;

/* Appends a header (both strings copied). */
void pier_edgecache_object_add_header(pier_edgecache_object *o, const char *name,
                                      const char *value);
/* Frees what o holds (closing its file) and zeroes it. */
void pier_edgecache_object_clear(pier_edgecache_object *o);

typedef struct pier_edgecache pier_edgecache;
typedef struct pier_edgecache_entry pier_edgecache_entry;

/* A cache of at most max_bytes (0: 256 MiB). */
pier_edgecache *pier_edgecache_new(uint64_t max_bytes);
/* Frees the cache; entries still referenced are freed at their release.
 * Accepts NULL. */
void pier_edgecache_free(pier_edgecache *c);

/* The fresh entry for (scope, path) at now_ms, with a reference the caller
 * releases; NULL when absent or expired (an expired entry is dropped). */
pier_edgecache_entry *pier_edgecache_get(pier_edgecache *c, const char *scope, const char *path,
                                         int64_t now_ms);
/* The current epoch: read it before fetching from the origin, pass it to
 * put. */
uint64_t pier_edgecache_epoch(pier_edgecache *c);
/* Makes an entry of obj (its contents are taken over and obj is zeroed),
 * fresh for ttl_s from now_ms, and returns it with a reference. It is kept
 * (replacing any entry for the same key) unless a purge happened since
 * epoch, ttl_s <= 0, or it alone exceeds the cache: then it is only handed
 * back, and freed at its release. Never NULL. */
pier_edgecache_entry *pier_edgecache_put(pier_edgecache *c, const char *scope, const char *path,
                                         pier_edgecache_object *obj, int64_t now_ms, int64_t ttl_s,
                                         uint64_t epoch);
/* Drops a reference. Accepts NULL. */
void pier_edgecache_release(pier_edgecache_entry *e);

/* The entry's response (borrowed while the reference is held). */
const pier_edgecache_object *pier_edgecache_entry_object(const pier_edgecache_entry *e);
/* Seconds since it was stored (the Age header). */
int64_t pier_edgecache_entry_age(const pier_edgecache_entry *e, int64_t now_ms);
/* True when the entry is kept in the cache (false: handed back only). */
bool pier_edgecache_entry_cached(const pier_edgecache_entry *e);

/* A slot for data derived from an entry's response, kept as long as the
 * entry (the edge keeps its prebuilt HTTP response there): what it is and
 * what tag means are the user's; free_fn(data) runs when the entry is freed.
 * pier_edgecache_slot_lock returns the entry's slot with its lock held (the
 * user reads or replaces data, freeing what it replaces), and
 * pier_edgecache_slot_unlock lets it go; hold it briefly. */
typedef struct {
    void *data;                  /* the user's, or NULL */
    int64_t tag;                 /* the user's (e.g. the second data was made for) */
    void (*free_fn)(void *data); /* frees data with the entry */
} pier_edgecache_slot;

pier_edgecache_slot *pier_edgecache_slot_lock(pier_edgecache_entry *e);
void pier_edgecache_slot_unlock(pier_edgecache_entry *e);

/* Drops every entry of scope that pattern matches (see the design note);
 * pattern is a decoded viewer path: "/index.html", "/img/ *" (no space),
 * "/ *". Returns the number dropped. */
size_t pier_edgecache_purge(pier_edgecache *c, const char *scope, const char *pattern);

typedef struct {
    uint64_t entries;   /* kept now */
    uint64_t bytes;     /* counted now */
    uint64_t max_bytes; /* the bound */
    uint64_t evictions; /* entries dropped for room, since creation */
    uint64_t files;     /* file-backed entries alive in the process (all caches) */
} pier_edgecache_stats;

void pier_edgecache_get_stats(pier_edgecache *c, pier_edgecache_stats *out);

#endif
