/*
 * edge: the embedded CDN. It serves sites chosen by the Host header, the
 * way CloudFront serves distributions: each site (a "distribution") has an
 * id, host names, an origin (a bucket of the store and a key prefix) and
 * rules; objects are read from the store directly and kept in a cache with
 * CloudFront's expiration semantics (stack/edgecache.h) until they expire or
 * are invalidated (pier_edge_invalidate, which the CloudFront API calls).
 *
 * One request (GET or HEAD; the query string is not part of the cache key,
 * as with CloudFront's CachingOptimized policy):
 *   1. redirects: the first rule whose `from` is the path (or, with prefix,
 *      starts it) answers its status and Location (the rest of the path and
 *      the query string are appended);
 *   2. the cache: a fresh entry for the path answers at once
 *      (X-Cache: Hit from pier, Age);
 *   3. exact rewrites (from -> to), then the directory index (a path ending
 *      in '/' gets the index document appended): the object at that path is
 *      served if it exists;
 *   4. else, for a missing object: prefix rewrites, then the SPA fallback
 *      (paths whose last segment has no '.'), then the not-found page, served
 *      with status 404; else a plain 404.
 *   Responses from 4 are cached at most PIER_EDGECACHE_ERROR_TTL seconds
 *   (CloudFront's error caching minimum), so an object uploaded later under
 *   such a path shows up within seconds. Header rules (glob -> headers) add
 *   response headers when a glob matches the viewer path or the object's
 *   path, overriding the object's own. An object stored with
 *   x-amz-website-redirect-location answers 301 to it, as an S3 website does.
 *   ETag / If-None-Match and If-Modified-Since answer 304; one byte range
 *   answers 206 (several ranges: the whole object, 200).
 *
 * Large objects (over cache_object_max) and objects the origin says not to
 * cache are streamed from the store file (sendfile) on every request.
 *
 * Ownership: a site belongs to its caller until pier_edge_add_site, which
 * takes it; sites are never removed while the edge lives, so pointers to
 * them stay valid. The store is borrowed and must outlive the edge; the
 * handler borrows the edge, so the server must be freed before the edge.
 */
#ifndef PIER_EDGE_H
#define PIER_EDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deploy/rules.h"
#include "net/server.h"
#include "stack/edgecache.h"
#include "stack/store.h"

#define PIER_EDGE_DEFAULT_ID "EPIER000000001"

typedef struct {
    char *name;  /* "X-Frame-Options" */
    char *value; /* "DENY" */
} pier_edge_header;

typedef struct {
    char *from;      /* viewer path, starts with '/' */
    char *to;        /* a path ("/new") or an absolute http(s) URL */
    unsigned status; /* 301, 302, 303, 307 or 308 */
    bool prefix;     /* from is a prefix; the rest of the path is appended to `to` */
} pier_edge_redirect;

typedef struct {
    char **globs;          /* base/glob.h patterns over the path without its leading '/' */
    size_t glob_count;     /* at least 1 */
    pier_edge_header *set; /* headers to set */
    size_t set_count;      /* at least 1 */
} pier_edge_header_rule;

/* A site (distribution). Fields are read-only once added to an edge; fill
 * them through the functions below, which validate. */
typedef struct {
    char *id;                       /* "EDEV0000000001" */
    char **hosts;                   /* "web.localhost", "*.example.test" or "*" (any) */
    size_t host_count;              /* their number */
    char *bucket;                   /* the origin bucket */
    char *prefix;                   /* key prefix: "" or "dir/" */
    pier_edgecache_ttl_policy ttl;  /* Min/Default/MaxTTL */
    char *index;                    /* directory index document ("index.html"), NULL: none */
    char *spa_fallback;             /* object path for unknown extensionless paths, or NULL */
    char *not_found;                /* object path of the 404 page, or NULL */
    pier_deploy_rules *rules;       /* rewrites (only those are used); NULL: none */
    pier_edge_redirect *redirects;  /* in match order */
    size_t redirect_count;          /* their number */
    pier_edge_header_rule *headers; /* all matching rules apply; the first to set a name wins */
    size_t header_count;            /* their number */
} pier_edge_site;

/* True for a CloudFront-like distribution id: 'E' then 9 to 19 upper-case
 * letters and digits (CloudFront's own are 13 or 14 characters long). */
bool pier_edge_id_ok(const char *id);

/* A site with the default TTLs and index "index.html". PIER_EINVALID for a
 * bad id or bucket name. */
int pier_edge_site_new(pier_edge_site **out, const char *id, const char *bucket);
void pier_edge_site_free(pier_edge_site *s);
/* A deep copy (for a caller that keeps its own, e.g. a parsed config). */
pier_edge_site *pier_edge_site_clone(const pier_edge_site *s);
/* A host name (no port; case-insensitive), "*.suffix" or "*". */
int pier_edge_site_add_host(pier_edge_site *s, const char *host);
/* The key prefix (origin path): leading '/' dropped, trailing '/' added. */
int pier_edge_site_set_prefix(pier_edge_site *s, const char *prefix);
/* The index document name ("index.html", no '/'); NULL disables. */
int pier_edge_site_set_index(pier_edge_site *s, const char *name);
/* Object paths starting with '/'; NULL disables. */
int pier_edge_site_set_spa_fallback(pier_edge_site *s, const char *path);
int pier_edge_site_set_not_found(pier_edge_site *s, const char *path);
/* Rewrites, as in deploy/rules.h (pier_deploy_rules_add_rewrite). */
int pier_edge_site_add_rewrite(pier_edge_site *s, const char *from, const char *to, bool prefix);
int pier_edge_site_add_redirect(pier_edge_site *s, const char *from, const char *to,
                                unsigned status, bool prefix);
/* One header rule: any of globs -> set (all copied). PIER_EINVALID for a
 * bad glob, a bad header name or value, or a header the server owns
 * (Content-Length, Transfer-Encoding, Connection, Date, ...). */
int pier_edge_site_add_headers(pier_edge_site *s, const char *const *globs, size_t glob_count,
                               const pier_edge_header *set, size_t set_count);

/* ---- rules, as a pure function ---- */

typedef enum {
    PIER_EDGE_SERVE,     /* serve the object at path with status */
    PIER_EDGE_REDIRECT,  /* answer status with Location: path */
    PIER_EDGE_NOT_FOUND, /* no object: a plain 404 */
} pier_edge_kind;

typedef struct {
    pier_edge_kind kind; /* what to do */
    unsigned status;     /* 200, 404 (not-found page or none), or the redirect's */
    char *path;          /* SERVE: the object path; REDIRECT: the Location; else NULL */
    bool fallback;       /* SERVE through a prefix rewrite, the SPA fallback or the 404 page */
} pier_edge_route;

/* Whether an object exists at path ("/a/b.html", relative to the site's
 * prefix). */
typedef bool (*pier_edge_exists_fn)(void *ctx, const char *path);

/* Applies the site's rules to a decoded viewer path (and the raw query
 * string, "" for none, kept on redirects) into out (clear it with
 * pier_edge_route_clear). exists is asked about candidate objects in rule
 * order; the last path it answered true for is the one served. */
void pier_edge_resolve(const pier_edge_site *s, const char *path, const char *query,
                       pier_edge_exists_fn exists, void *ctx, pier_edge_route *out);
void pier_edge_route_clear(pier_edge_route *r);

/* ---- the edge ---- */

typedef struct pier_edge pier_edge;

typedef struct {
    pier_store *store;              /* the origin (borrowed) */
    uint64_t cache_bytes;           /* memory for cached responses; 0: 256 MiB */
    uint64_t cache_object_max;      /* larger objects are streamed; 0: 8 MiB */
    int64_t (*clock_ms)(void *ctx); /* wall clock in ms; NULL: the system's */
    void *clock_ctx;                /* its context */
} pier_edge_options;

int pier_edge_new(pier_edge **out, const pier_edge_options *opts);
/* Frees the edge and its sites. Accepts NULL. */
void pier_edge_free(pier_edge *e);
/* Adds a site (taking it, also on failure). PIER_EEXISTS when its id or one
 * of its hosts is already served; PIER_EINVALID when it has no host. */
int pier_edge_add_site(pier_edge *e, pier_edge_site *site);
size_t pier_edge_site_count(pier_edge *e);
/* The i-th site in the order added, or the one with this id (NULL when
 * none). Borrowed for the edge's life. */
const pier_edge_site *pier_edge_site_at(pier_edge *e, size_t i);
const pier_edge_site *pier_edge_find_site(pier_edge *e, const char *id);

/* Purges what an invalidation path covers in site id: path as CloudFront
 * takes it ("/index.html", "/images/ *" without the space, "/ *"),
 * percent-encoding decoded here. Returns the entries dropped. */
size_t pier_edge_invalidate(pier_edge *e, const char *id, const char *path);

/* The cache's numbers (for logs and tests). */
void pier_edge_cache_stats(pier_edge *e, pier_edgecache_stats *out);

/* A handler serving every site (the server owns the handler; the handler
 * borrows e). */
pier_handler *pier_edge_handler(pier_edge *e);

#endif
