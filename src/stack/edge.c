/*
 * edge: see edge.h. Three parts: the site definition (validated setters),
 * the rules (pier_edge_resolve, pure), and the HTTP handler.
 *
 * The handler's hot path is a cache hit: Host -> site (a read lock over a
 * short array), the path decoded into the request arena, one hash lookup,
 * and a response over the entry's body (pier_server_respond_static: no
 * copy), whose reference is dropped by an on_done hook once the response
 * has been sent or the connection lost. Static headers (Content-Type, ETag,
 * Last-Modified, Cache-Control, the rules' headers) are formatted once, when
 * the entry is made; only Age and X-Cache are per request.
 *
 * A plain hit (GET of the whole object: no Range, no validator that
 * matches) is answered with the entry's shared response (a prebuilt server
 * response in the entry's slot: body, headers, X-Cache and Age), made again
 * when Age has moved on, i.e. at most once a second per entry; requests
 * still sending the previous one keep it alive. A memory body is held by
 * the entry reference each such request keeps until done; a file-backed
 * one has its own descriptor (so an entry dropped mid-send loses nothing).
 * HEAD, 304, 206 and 416 are built per request as before.
 *
 * A miss resolves the rules against the store (each candidate opened with
 * pier_store_get, keeping the one found), computes the TTL from the
 * object's Cache-Control / Expires, and either reads the body into a new
 * cache entry or, when it must not be cached or is too big, streams it from
 * the store file.
 *
 * Objects of FILE_MIN (1 MiB) and more are cached as the open store file
 * rather than a copy (the cache's bound still counts their size) and sent
 * with sendfile (the shared response holds its own descriptor). The store replaces
 * object files and never rewrites them, so the open file keeps the version
 * that was cached, stale exactly as a copy would be. At most FILE_MAX_LIVE
 * such files are held; past that, copies. Smaller objects are kept in
 * memory because that is cheaper to send with libmicrohttpd 0.9.75: one
 * sendmsg of head and body, where a file response costs a send of the
 * head, three setsockopt calls, sendfile in 128 KiB pieces and a response
 * mutex per piece (measured at 200 KiB: 39 against 57 us of server CPU per
 * request).
 */
#include "stack/edge.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/glob.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/mime.h"
#include "base/str.h"

#define DEFAULT_CACHE_BYTES ((uint64_t)256 << 20)
#define DEFAULT_OBJECT_MAX  ((uint64_t)8 << 20)
#define PATH_MAX_LEN        2048
#define FILE_MIN            ((uint64_t)1 << 20) /* from here, cache the open file */
#define FILE_MAX_LIVE       256                 /* open files the caches may hold */
#define X_CACHE_HIT         "Hit from pier"
#define X_CACHE_MISS        "Miss from pier"
#define X_CACHE_ERROR       "Error from pier"
#define X_CACHE_REDIRECT    "Redirect from pier"

struct pier_edge {
    pier_store *store;              /* origin (borrowed) */
    pier_edgecache *cache;          /* responses */
    uint64_t object_max;            /* larger: streamed */
    int64_t (*clock_ms)(void *ctx); /* wall clock */
    void *clock_ctx;                /* its context */
    pthread_rwlock_t lock;          /* guards sites (the array, not the sites) */
    pier_edge_site **sites;         /* in the order added */
    size_t site_count;              /* used */
};

/* ---- sites ---- */

bool pier_edge_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n < 10 || n > 20 || id[0] != 'E')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isupper((unsigned char)id[i]) || isdigit((unsigned char)id[i])))
            return false;
    return true;
}

int pier_edge_site_new(pier_edge_site **out, const char *id, const char *bucket)
{
    *out = NULL;
    if (!pier_edge_id_ok(id))
        return pier_error_set(PIER_EINVALID,
                              "distribution id '%s': expected 'E' and 9 to 19 upper-case letters "
                              "and digits (e.g. EDEV0000000001)",
                              id ? id : "");
    if (!bucket || !pier_store_bucket_name_ok(bucket))
        return pier_error_set(PIER_EINVALID, "distribution %s: bad bucket name '%s'", id,
                              bucket ? bucket : "");
    pier_edge_site *s = pier_calloc(1, sizeof *s);
    s->id = pier_strdup(id);
    s->bucket = pier_strdup(bucket);
    s->prefix = pier_strdup("");
    s->index = pier_strdup("index.html");
    s->ttl = (pier_edgecache_ttl_policy)PIER_EDGECACHE_TTL_POLICY_INIT;
    *out = s;
    return 0;
}

void pier_edge_site_free(pier_edge_site *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->host_count; i++)
        free(s->hosts[i]);
    free(s->hosts);
    for (size_t i = 0; i < s->redirect_count; i++) {
        free(s->redirects[i].from);
        free(s->redirects[i].to);
    }
    free(s->redirects);
    for (size_t i = 0; i < s->header_count; i++) {
        pier_edge_header_rule *h = &s->headers[i];
        for (size_t j = 0; j < h->glob_count; j++)
            free(h->globs[j]);
        free(h->globs);
        for (size_t j = 0; j < h->set_count; j++) {
            free(h->set[j].name);
            free(h->set[j].value);
        }
        free(h->set);
    }
    free(s->headers);
    pier_deploy_rules_free(s->rules);
    free(s->id);
    free(s->bucket);
    free(s->prefix);
    free(s->index);
    free(s->spa_fallback);
    free(s->not_found);
    free(s);
}

static char *dup_or_null(const char *s)
{
    return s ? pier_strdup(s) : NULL;
}

pier_edge_site *pier_edge_site_clone(const pier_edge_site *s)
{
    pier_edge_site *c = pier_calloc(1, sizeof *c);
    c->id = pier_strdup(s->id);
    c->bucket = pier_strdup(s->bucket);
    c->prefix = pier_strdup(s->prefix);
    c->ttl = s->ttl;
    c->index = dup_or_null(s->index);
    c->spa_fallback = dup_or_null(s->spa_fallback);
    c->not_found = dup_or_null(s->not_found);
    c->hosts = pier_calloc(s->host_count + 1, sizeof *c->hosts);
    for (size_t i = 0; i < s->host_count; i++)
        c->hosts[i] = pier_strdup(s->hosts[i]);
    c->host_count = s->host_count;
    for (size_t i = 0; s->rules && i < s->rules->rewrite_count; i++) {
        const pier_deploy_rewrite *w = &s->rules->rewrites[i];
        pier_edge_site_add_rewrite(c, w->from, w->to, w->prefix);
    }
    for (size_t i = 0; i < s->redirect_count; i++) {
        const pier_edge_redirect *rd = &s->redirects[i];
        pier_edge_site_add_redirect(c, rd->from, rd->to, rd->status, rd->prefix);
    }
    for (size_t i = 0; i < s->header_count; i++) {
        const pier_edge_header_rule *h = &s->headers[i];
        pier_edge_site_add_headers(c, (const char *const *)h->globs, h->glob_count, h->set,
                                   h->set_count);
    }
    return c;
}

static bool host_ok(const char *h)
{
    if (strcmp(h, "*") == 0)
        return true;
    if (h[0] == '*') {
        if (h[1] != '.' || !h[2])
            return false;
        h += 2;
    }
    if (!*h || strlen(h) > 253)
        return false;
    for (const char *p = h; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.' || *p == '_'))
            return false;
    return true;
}

int pier_edge_site_add_host(pier_edge_site *s, const char *host)
{
    if (!host || !host_ok(host))
        return pier_error_set(PIER_EINVALID,
                              "distribution %s: bad host '%s' (a name without port, '*.suffix' "
                              "or '*')",
                              s->id, host ? host : "");
    s->hosts = pier_realloc(s->hosts, (s->host_count + 1) * sizeof *s->hosts);
    char *h = pier_strdup(host);
    for (char *p = h; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    s->hosts[s->host_count++] = h;
    return 0;
}

int pier_edge_site_set_prefix(pier_edge_site *s, const char *prefix)
{
    const char *p = prefix ? prefix : "";
    while (*p == '/')
        p++;
    size_t n = strlen(p);
    if (n > 512 || strstr(p, "//"))
        return pier_error_set(PIER_EINVALID, "distribution %s: bad prefix '%s'", s->id, prefix);
    free(s->prefix);
    s->prefix = pier_malloc(n + 2);
    memcpy(s->prefix, p, n);
    if (n && p[n - 1] != '/')
        s->prefix[n++] = '/';
    s->prefix[n] = '\0';
    return 0;
}

int pier_edge_site_set_index(pier_edge_site *s, const char *name)
{
    if (name && (!name[0] || strchr(name, '/')))
        return pier_error_set(PIER_EINVALID,
                              "distribution %s: index '%s' must be a file name such as "
                              "index.html",
                              s->id, name);
    free(s->index);
    s->index = name ? pier_strdup(name) : NULL;
    return 0;
}

static int check_object_path(const pier_edge_site *s, const char *what, const char *path)
{
    if (path && (path[0] != '/' || pier_str_ends_with(path, "/")))
        return pier_error_set(PIER_EINVALID,
                              "distribution %s: %s '%s' must be an object path starting with "
                              "'/' (e.g. /index.html)",
                              s->id, what, path);
    return 0;
}

int pier_edge_site_set_spa_fallback(pier_edge_site *s, const char *path)
{
    if (check_object_path(s, "spa-fallback", path))
        return PIER_EINVALID;
    free(s->spa_fallback);
    s->spa_fallback = path ? pier_strdup(path) : NULL;
    return 0;
}

int pier_edge_site_set_not_found(pier_edge_site *s, const char *path)
{
    if (check_object_path(s, "not-found", path))
        return PIER_EINVALID;
    free(s->not_found);
    s->not_found = path ? pier_strdup(path) : NULL;
    return 0;
}

int pier_edge_site_add_rewrite(pier_edge_site *s, const char *from, const char *to, bool prefix)
{
    if (!s->rules)
        s->rules = pier_deploy_rules_new();
    return pier_deploy_rules_add_rewrite(s->rules, from, to, prefix);
}

static bool url_ok(const char *to)
{
    if (to[0] == '/')
        return to[1] != '/'; /* "//host" would be a scheme-relative URL */
    return pier_str_starts_with(to, "http://") || pier_str_starts_with(to, "https://");
}

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

int pier_edge_site_add_redirect(pier_edge_site *s, const char *from, const char *to,
                                unsigned status, bool prefix)
{
    if (!from || from[0] != '/' || has_ctl(from))
        return pier_error_set(PIER_EINVALID,
                              "distribution %s: redirect source '%s' must start with '/'", s->id,
                              from ? from : "");
    if (!to || !url_ok(to) || has_ctl(to) || strchr(to, ' '))
        return pier_error_set(PIER_EINVALID,
                              "distribution %s: redirect target '%s' must be a path starting "
                              "with '/' or an http(s) URL",
                              s->id, to ? to : "");
    if (status != 301 && status != 302 && status != 303 && status != 307 && status != 308)
        return pier_error_set(PIER_EINVALID,
                              "distribution %s: redirect status %u (use 301, 302, 303, 307 or "
                              "308)",
                              s->id, status);
    s->redirects = pier_realloc(s->redirects, (s->redirect_count + 1) * sizeof *s->redirects);
    s->redirects[s->redirect_count++] =
        (pier_edge_redirect){pier_strdup(from), pier_strdup(to), status, prefix};
    return 0;
}

static bool token_ok(const char *name)
{
    if (!*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p)))
            return false;
    return true;
}

static const char *const owned_headers[] = {
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "date",
    "upgrade",
    "trailer",
    "te",
    "age",
    "x-cache",
    "content-range",
    "etag",
    "last-modified",
};

int pier_edge_site_add_headers(pier_edge_site *s, const char *const *globs, size_t glob_count,
                               const pier_edge_header *set, size_t set_count)
{
    if (glob_count == 0 || set_count == 0)
        return pier_error_set(PIER_EINVALID,
                              "distribution %s: a header rule needs a match and a "
                              "header to set",
                              s->id);
    for (size_t i = 0; i < glob_count; i++)
        if (pier_glob_validate(globs[i]))
            return pier_error_wrap(PIER_EINVALID, "distribution %s", s->id);
    for (size_t i = 0; i < set_count; i++) {
        if (!token_ok(set[i].name))
            return pier_error_set(PIER_EINVALID, "distribution %s: bad header name '%s'", s->id,
                                  set[i].name);
        for (size_t j = 0; j < sizeof owned_headers / sizeof *owned_headers; j++)
            if (pier_str_ieq(set[i].name, owned_headers[j]))
                return pier_error_set(PIER_EINVALID,
                                      "distribution %s: header '%s' is set by the edge itself",
                                      s->id, set[i].name);
        if (has_ctl(set[i].value))
            return pier_error_set(PIER_EINVALID,
                                  "distribution %s: header '%s' has a control character in its "
                                  "value",
                                  s->id, set[i].name);
    }
    s->headers = pier_realloc(s->headers, (s->header_count + 1) * sizeof *s->headers);
    pier_edge_header_rule *h = &s->headers[s->header_count++];
    h->globs = pier_calloc(glob_count, sizeof *h->globs);
    h->glob_count = glob_count;
    for (size_t i = 0; i < glob_count; i++)
        h->globs[i] = pier_strdup(globs[i]);
    h->set = pier_calloc(set_count, sizeof *h->set);
    h->set_count = set_count;
    for (size_t i = 0; i < set_count; i++) {
        h->set[i].name = pier_strdup(set[i].name);
        h->set[i].value = pier_strdup(set[i].value);
    }
    return 0;
}

/* ---- rules ---- */

void pier_edge_route_clear(pier_edge_route *r)
{
    if (!r)
        return;
    free(r->path);
    memset(r, 0, sizeof *r);
}

static void route_set(pier_edge_route *out, pier_edge_kind kind, unsigned status, char *path,
                      bool fallback)
{
    out->kind = kind;
    out->status = status;
    out->path = path;
    out->fallback = fallback;
}

/* True when the last segment of path has no '.' (a client-side route). */
static bool extensionless(const char *path)
{
    const char *slash = strrchr(path, '/');
    return !strchr(slash ? slash + 1 : path, '.');
}

void pier_edge_resolve(const pier_edge_site *s, const char *path, const char *query,
                       pier_edge_exists_fn exists, void *ctx, pier_edge_route *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < s->redirect_count; i++) {
        const pier_edge_redirect *rd = &s->redirects[i];
        bool hit = rd->prefix ? pier_str_starts_with(path, rd->from) : strcmp(path, rd->from) == 0;
        if (!hit)
            continue;
        pier_buf loc = PIER_BUF_INIT;
        pier_buf_puts(&loc, rd->to);
        if (rd->prefix) {
            const char *rest = path + strlen(rd->from);
            /* "/old/" -> "/new" and "/old/a" keep one '/' between */
            if (loc.len && loc.ptr[loc.len - 1] == '/' && rest[0] == '/')
                rest++;
            pier_uri_encode(&loc, rest, strlen(rest), true);
        }
        if (query && query[0]) {
            pier_buf_putc(&loc, strchr(rd->to, '?') ? '&' : '?');
            pier_buf_puts(&loc, query);
        }
        route_set(out, PIER_EDGE_REDIRECT, rd->status, pier_buf_detach(&loc), false);
        return;
    }
    const char *exact = s->rules ? pier_deploy_rules_rewrite(s->rules, path, true) : NULL;
    const char *p = exact ? exact : path;
    char *target;
    if (s->index && pier_str_ends_with(p, "/")) {
        size_t n = strlen(p), m = strlen(s->index);
        target = pier_malloc(n + m + 1);
        memcpy(target, p, n);
        memcpy(target + n, s->index, m + 1);
    } else {
        target = pier_strdup(p);
    }
    if (exists(ctx, target)) {
        route_set(out, PIER_EDGE_SERVE, 200, target, false);
        return;
    }
    const char *pre = s->rules ? pier_deploy_rules_rewrite(s->rules, path, false) : NULL;
    if (pre && strcmp(pre, target) != 0 && exists(ctx, pre)) {
        free(target);
        route_set(out, PIER_EDGE_SERVE, 200, pier_strdup(pre), true);
        return;
    }
    free(target);
    if (s->spa_fallback && extensionless(path) && exists(ctx, s->spa_fallback)) {
        route_set(out, PIER_EDGE_SERVE, 200, pier_strdup(s->spa_fallback), true);
        return;
    }
    if (s->not_found && exists(ctx, s->not_found)) {
        route_set(out, PIER_EDGE_SERVE, 404, pier_strdup(s->not_found), true);
        return;
    }
    route_set(out, PIER_EDGE_NOT_FOUND, 404, NULL, false);
}

/* ---- the edge ---- */

static int64_t system_clock_ms(void *ctx)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pier_edge_new(pier_edge **out, const pier_edge_options *o)
{
    pier_edge *e = pier_calloc(1, sizeof *e);
    e->store = o->store;
    e->cache = pier_edgecache_new(o->cache_bytes ? o->cache_bytes : DEFAULT_CACHE_BYTES);
    e->object_max = o->cache_object_max ? o->cache_object_max : DEFAULT_OBJECT_MAX;
    e->clock_ms = o->clock_ms ? o->clock_ms : system_clock_ms;
    e->clock_ctx = o->clock_ctx;
    pthread_rwlock_init(&e->lock, NULL);
    *out = e;
    return 0;
}

void pier_edge_free(pier_edge *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->site_count; i++)
        pier_edge_site_free(e->sites[i]);
    free(e->sites);
    pier_edgecache_free(e->cache);
    pthread_rwlock_destroy(&e->lock);
    free(e);
}

int pier_edge_add_site(pier_edge *e, pier_edge_site *site)
{
    int rc = 0;
    if (site->host_count == 0) {
        rc = pier_error_set(PIER_EINVALID, "distribution %s: no host to serve", site->id);
        pier_edge_site_free(site);
        return rc;
    }
    pthread_rwlock_wrlock(&e->lock);
    for (size_t i = 0; i < e->site_count && !rc; i++) {
        const pier_edge_site *o = e->sites[i];
        if (strcmp(o->id, site->id) == 0)
            rc = pier_error_set(PIER_EEXISTS, "distribution %s is defined twice", site->id);
        for (size_t j = 0; j < o->host_count && !rc; j++)
            for (size_t k = 0; k < site->host_count && !rc; k++)
                if (strcmp(o->hosts[j], site->hosts[k]) == 0)
                    rc = pier_error_set(PIER_EEXISTS,
                                        "host '%s' is served by distributions %s and %s",
                                        site->hosts[k], o->id, site->id);
    }
    if (!rc) {
        e->sites = pier_realloc(e->sites, (e->site_count + 1) * sizeof *e->sites);
        e->sites[e->site_count++] = site;
    }
    pthread_rwlock_unlock(&e->lock);
    if (rc)
        pier_edge_site_free(site);
    return rc;
}

size_t pier_edge_site_count(pier_edge *e)
{
    pthread_rwlock_rdlock(&e->lock);
    size_t n = e->site_count;
    pthread_rwlock_unlock(&e->lock);
    return n;
}

const pier_edge_site *pier_edge_site_at(pier_edge *e, size_t i)
{
    pthread_rwlock_rdlock(&e->lock);
    const pier_edge_site *s = i < e->site_count ? e->sites[i] : NULL;
    pthread_rwlock_unlock(&e->lock);
    return s;
}

const pier_edge_site *pier_edge_find_site(pier_edge *e, const char *id)
{
    const pier_edge_site *s = NULL;
    pthread_rwlock_rdlock(&e->lock);
    for (size_t i = 0; i < e->site_count && !s; i++)
        if (strcmp(e->sites[i]->id, id) == 0)
            s = e->sites[i];
    pthread_rwlock_unlock(&e->lock);
    return s;
}

size_t pier_edge_invalidate(pier_edge *e, const char *id, const char *path)
{
    pier_buf dec = PIER_BUF_INIT;
    const char *p = path;
    if (strchr(path, '%') && pier_uri_decode(&dec, path, strlen(path), false) == 0)
        p = pier_buf_cstr(&dec);
    size_t n = pier_edgecache_purge(e->cache, id, p);
    pier_buf_free(&dec);
    return n;
}

void pier_edge_cache_stats(pier_edge *e, pier_edgecache_stats *out)
{
    pier_edgecache_get_stats(e->cache, out);
}

/* The site for a Host header value: an exact name first, then the longest
 * "*.suffix", then "*". Caller holds the read lock. */
static const pier_edge_site *site_for_host(pier_edge *e, const char *host_header)
{
    char host[256];
    size_t n = 0;
    if (host_header) {
        const char *end = host_header + strlen(host_header);
        if (host_header[0] == '[') {
            const char *close = strchr(host_header, ']');
            if (close)
                end = close + 1;
        } else {
            const char *colon = strrchr(host_header, ':');
            if (colon)
                end = colon;
        }
        n = (size_t)(end - host_header);
        if (n >= sizeof host)
            n = 0;
        for (size_t i = 0; i < n; i++)
            host[i] = (char)tolower((unsigned char)host_header[i]);
        /* a trailing dot names the same host */
        if (n && host[n - 1] == '.')
            n--;
    }
    host[n] = '\0';
    const pier_edge_site *best = NULL, *any = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < e->site_count; i++) {
        const pier_edge_site *s = e->sites[i];
        for (size_t j = 0; j < s->host_count; j++) {
            const char *h = s->hosts[j];
            if (strcmp(h, "*") == 0) {
                any = s;
            } else if (h[0] == '*') {
                size_t sl = strlen(h + 1); /* ".suffix" */
                if (n > sl && memcmp(host + n - sl, h + 1, sl) == 0 && sl > best_len) {
                    best = s;
                    best_len = sl;
                }
            } else if (strcmp(h, host) == 0) {
                return s;
            }
        }
    }
    return best ? best : any;
}

/* ---- the handler ---- */

typedef struct {
    pier_handler base; /* must be first */
    pier_edge *edge;   /* borrowed */
} edge_handler;

/* What a miss found in the store. */
typedef struct {
    pier_edge *edge;            /* the edge */
    const pier_edge_site *site; /* the site */
    int fd;                     /* the open object, or -1 */
    pier_store_meta meta;       /* its metadata */
    char *path;                 /* its object path (malloc'ed) */
} origin;

static void origin_close(origin *o)
{
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    pier_store_meta_clear(&o->meta);
    PIER_FREE(o->path);
}

static bool origin_exists(void *ctx, const char *path)
{
    origin *o = ctx;
    pier_buf key = PIER_BUF_INIT;
    pier_buf_puts(&key, o->site->prefix);
    pier_buf_puts(&key, path[0] == '/' ? path + 1 : path);
    int fd = -1;
    pier_store_meta meta = {0};
    int rc = key.len ? pier_store_get(o->edge->store, o->site->bucket, key.ptr, key.len, &fd, &meta)
                     : PIER_ENOTFOUND;
    pier_buf_free(&key);
    if (rc) {
        if (rc != PIER_ENOTFOUND && rc != PIER_EINVALID)
            PIER_WARN("edge %s: %s: %s", o->site->id, path, pier_error_last());
        pier_store_meta_clear(&meta);
        return false;
    }
    origin_close(o);
    o->fd = fd;
    o->meta = meta;
    o->path = pier_strdup(path);
    return true;
}

/* Reads size bytes at off into a malloc'ed buffer. */
static int read_range(int fd, uint64_t off, uint64_t size, char **out)
{
    char *buf = pier_malloc(size ? size : 1);
    uint64_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            return n < 0 ? pier_error_set_errno(PIER_EIO, "reading an object")
                         : pier_error_set(PIER_EIO, "an object is shorter than its metadata says");
        }
        got += (uint64_t)n;
    }
    *out = buf;
    return 0;
}

static bool rule_matches(const pier_edge_header_rule *h, const char *viewer, const char *object)
{
    for (size_t i = 0; i < h->glob_count; i++)
        if (pier_glob_match(h->globs[i], viewer + (viewer[0] == '/')) ||
            (object && pier_glob_match(h->globs[i], object + (object[0] == '/'))))
            return true;
    return false;
}

static bool obj_has_header(const pier_edgecache_object *o, const char *name)
{
    for (size_t i = 0; i < o->header_count; i++)
        if (pier_str_ieq(o->headers[i].name, name))
            return true;
    return false;
}

/* Adds the site's rule headers for this path (first rule to set a name
 * wins). */
static void add_rule_headers(const pier_edge_site *s, const char *viewer, const char *object,
                             pier_edgecache_object *o)
{
    for (size_t i = 0; i < s->header_count; i++) {
        const pier_edge_header_rule *h = &s->headers[i];
        if (!rule_matches(h, viewer, object))
            continue;
        for (size_t j = 0; j < h->set_count; j++)
            if (!obj_has_header(o, h->set[j].name))
                pier_edgecache_object_add_header(o, h->set[j].name, h->set[j].value);
    }
}

/* A stored lower-case header name as HTTP writes it ("Content-Type");
 * x-amz-* names stay as they are, as S3 sends them. */
static void header_case(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s", name);
    if (strncmp(name, "x-amz-", 6) == 0)
        return;
    bool up = true;
    for (char *p = out; *p; p++) {
        if (up)
            *p = (char)toupper((unsigned char)*p);
        up = *p == '-';
    }
}

/* The response for the object o->fd / o->meta, without its body. */
static void object_from_meta(const origin *o, const char *viewer, unsigned status,
                             pier_edgecache_object *obj)
{
    const pier_store_meta *m = &o->meta;
    memset(obj, 0, sizeof *obj);
    obj->status = status;
    obj->size = m->size;
    obj->source = pier_strdup(o->path);
    snprintf(obj->etag, sizeof obj->etag, "\"%s\"", m->etag);
    obj->last_modified = m->mtime_ms / 1000;
    add_rule_headers(o->site, viewer, o->path, obj);
    bool have_type = obj_has_header(obj, "Content-Type");
    for (size_t i = 0; i < m->header_count; i++) {
        const char *name = m->headers[i].name;
        if (strncmp(name, "x-amz-checksum-", 15) == 0 ||
            strcmp(name, "x-amz-website-redirect-location") == 0)
            continue;
        char cased[128];
        header_case(cased, sizeof cased, name);
        if (obj_has_header(obj, cased))
            continue;
        if (strcmp(name, "content-type") == 0)
            have_type = true;
        pier_edgecache_object_add_header(obj, cased, m->headers[i].value);
    }
    if (!have_type) {
        char type[128];
        pier_mime_content_type(type, sizeof type, o->path);
        pier_edgecache_object_add_header(obj, "Content-Type", type);
    }
    char date[64];
    pier_time_http(date, sizeof date, (time_t)obj->last_modified);
    pier_edgecache_object_add_header(obj, "ETag", obj->etag);
    pier_edgecache_object_add_header(obj, "Last-Modified", date);
    if (status == 200)
        pier_edgecache_object_add_header(obj, "Accept-Ranges", "bytes");
}

/* True when etag matches an entry of an If-None-Match list (weak
 * comparison: W/ prefixes ignored), or the list is "*". */
static bool etag_listed(const char *list, const char *etag)
{
    const char *tag = etag;
    size_t tlen = strlen(tag);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        if (*p == '*')
            return true;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *start = p;
        if (*p == '"') {
            p++;
            while (*p && *p != '"')
                p++;
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != ' ')
                p++;
        }
        if ((size_t)(p - start) == tlen && memcmp(start, tag, tlen) == 0)
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

/* True when the request's validators say the client's copy is current. */
static bool not_modified(pier_server_req *r, const char *etag, int64_t last_modified)
{
    const char *inm = pier_server_req_header(r, "If-None-Match");
    if (inm)
        return etag[0] && etag_listed(inm, etag);
    const char *ims = pier_server_req_header(r, "If-Modified-Since");
    time_t t;
    if (ims && last_modified > 0 && pier_time_parse(ims, &t) == 0)
        return last_modified <= (int64_t)t;
    return false;
}

typedef enum { RANGE_NONE, RANGE_OK, RANGE_BAD } range_kind;

/* Reads a single "bytes=a-b" / "bytes=a-" / "bytes=-n" range against size.
 * Several ranges, other units, or a syntax error: RANGE_NONE (the whole
 * object is sent, as RFC 9110 allows); a range past the end: RANGE_BAD. */
static range_kind parse_range(const char *h, uint64_t size, uint64_t *off, uint64_t *len)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return RANGE_NONE;
    const char *p = h + 6;
    while (*p == ' ')
        p++;
    const char *dash = strchr(p, '-');
    if (!dash)
        return RANGE_NONE;
    char a[24] = "", b[24] = "";
    size_t alen = (size_t)(dash - p), blen = strlen(dash + 1);
    if (alen >= sizeof a || blen >= sizeof b)
        return RANGE_NONE;
    memcpy(a, p, alen);
    memcpy(b, dash + 1, blen);
    while (blen && b[blen - 1] == ' ')
        b[--blen] = '\0';
    uint64_t first = 0, last = 0;
    if (alen == 0) {
        if (blen == 0 || pier_parse_u64(b, &last) != 0)
            return RANGE_NONE;
        if (last == 0)
            return RANGE_BAD;
        if (size == 0)
            return RANGE_BAD;
        first = last >= size ? 0 : size - last;
        last = size - 1;
    } else {
        if (pier_parse_u64(a, &first) != 0)
            return RANGE_NONE;
        if (blen == 0) {
            last = size ? size - 1 : 0;
        } else if (pier_parse_u64(b, &last) != 0 || last < first) {
            return RANGE_NONE;
        }
        if (first >= size)
            return RANGE_BAD;
        if (last >= size)
            last = size - 1;
    }
    *off = first;
    *len = last - first + 1;
    return RANGE_OK;
}

/* If-Range: the range applies only when the validator is current. */
static bool if_range_ok(pier_server_req *r, const char *etag, int64_t last_modified)
{
    const char *ir = pier_server_req_header(r, "If-Range");
    if (!ir)
        return true;
    if (ir[0] == '"')
        return strcmp(ir, etag) == 0;
    if (ir[0] == 'W' && ir[1] == '/')
        return false; /* weak validators never match for If-Range */
    time_t t;
    return pier_time_parse(ir, &t) == 0 && (int64_t)t == last_modified;
}

static void release_hook(pier_server_req *r, void *ctx)
{
    pier_edgecache_release(ctx);
}

static void add_headers(pier_server_req *r, const pier_edgecache_object *o, bool bodiless)
{
    for (size_t i = 0; i < o->header_count; i++) {
        if (bodiless && pier_str_ieq(o->headers[i].name, "Content-Type"))
            continue;
        pier_server_resp_header(r, o->headers[i].name, o->headers[i].value);
    }
}

/* Decides between 304, 416, 206 and the full response for an object of
 * o->size bytes; sets the headers. Returns the status and the byte span to
 * send. */
static unsigned plan_response(pier_server_req *r, const pier_edgecache_object *o, uint64_t *off,
                              uint64_t *len)
{
    *off = 0;
    *len = o->size;
    if (o->status != 200) {
        add_headers(r, o, false);
        return o->status;
    }
    if (not_modified(r, o->etag, o->last_modified)) {
        add_headers(r, o, true);
        *len = 0;
        return 304;
    }
    add_headers(r, o, false);
    const char *range = pier_server_req_header(r, "Range");
    if (!range || !if_range_ok(r, o->etag, o->last_modified))
        return 200;
    char cr[96];
    switch (parse_range(range, o->size, off, len)) {
    case RANGE_OK:
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)*off,
                 (unsigned long long)(*off + *len - 1), (unsigned long long)o->size);
        pier_server_resp_header(r, "Content-Range", cr);
        return 206;
    case RANGE_BAD:
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)o->size);
        pier_server_resp_header(r, "Content-Range", cr);
        *off = *len = 0;
        return 416;
    case RANGE_NONE:
        break;
    }
    *off = 0;
    *len = o->size;
    return 200;
}

static bool is_head(pier_server_req *r)
{
    return strcmp(pier_server_req_method(r), "HEAD") == 0;
}

static void shared_free(void *p)
{
    pier_server_response_release(p);
}

/* The response to a plain hit on o at age seconds: the whole body, the
 * entry's headers, X-Cache and Age. NULL when it cannot be built. */
static pier_server_response *shared_build(const pier_edgecache_object *o, int64_t age)
{
    pier_server_response *p;
    if (o->in_file) {
        /* its own descriptor: it may outlive the entry while sent */
        int fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return NULL;
        p = pier_server_response_new_fd(o->status, fd, 0, o->size);
    } else {
        p = pier_server_response_new_static(o->status, o->body, o->size, NULL, NULL);
    }
    if (!p)
        return NULL;
    for (size_t i = 0; i < o->header_count; i++)
        pier_server_response_header(p, o->headers[i].name, o->headers[i].value);
    char v[24];
    snprintf(v, sizeof v, "%lld", (long long)age);
    pier_server_response_header(p, "X-Cache", X_CACHE_HIT);
    pier_server_response_header(p, "Age", v);
    return p;
}

/* Answers a plain hit (a GET of the whole object) with the entry's shared
 * response, made again when Age has moved on (at most once a second per
 * entry; requests still sending the old one keep it alive). Takes over the
 * caller's reference on success; false (reference kept) when the slow path
 * must answer. */
static bool serve_shared(pier_server_req *r, pier_edgecache_entry *ent, int64_t age)
{
    const pier_edgecache_object *o = pier_edgecache_entry_object(ent);
    pier_server_response *old = NULL;
    pier_edgecache_slot *slot = pier_edgecache_slot_lock(ent);
    if (!slot->data || slot->tag != age) {
        pier_server_response *p = shared_build(o, age);
        if (p) {
            old = slot->data;
            slot->data = p;
            slot->tag = age;
            slot->free_fn = shared_free;
        }
    }
    bool ok = slot->data && slot->tag == age && pier_server_respond_prebuilt(r, slot->data) == 0;
    pier_edgecache_slot_unlock(ent);
    pier_server_response_release(old);
    if (!ok)
        return false;
    if (o->in_file)
        pier_edgecache_release(ent); /* the response has its own descriptor */
    else
        pier_server_req_on_done(r, release_hook, ent); /* the body is the entry's */
    return true;
}

/* True when a hit on o answers the whole object (no 304, 206 or 416). */
static bool plain_hit(pier_server_req *r, const pier_edgecache_object *o)
{
    if (strcmp(pier_server_req_method(r), "GET") != 0)
        return false;
    if (o->status != 200)
        return true;
    return !pier_server_req_header(r, "Range") && !not_modified(r, o->etag, o->last_modified);
}

/* Answers from a cache entry (taking over the caller's reference). */
static int serve_entry(pier_server_req *r, pier_edgecache_entry *ent, bool hit, int64_t now_ms)
{
    const pier_edgecache_object *o = pier_edgecache_entry_object(ent);
    if (hit && plain_hit(r, o) && serve_shared(r, ent, pier_edgecache_entry_age(ent, now_ms)))
        return 0;
    uint64_t off, len;
    unsigned status = plan_response(r, o, &off, &len);
    pier_server_resp_header(r, "X-Cache", hit ? X_CACHE_HIT : X_CACHE_MISS);
    if (hit) {
        char age[24];
        snprintf(age, sizeof age, "%lld", (long long)pier_edgecache_entry_age(ent, now_ms));
        pier_server_resp_header(r, "Age", age);
    }
    int rc;
    if (status == 304 || status == 416) {
        rc = pier_server_respond_mem(r, status, "", 0);
        pier_edgecache_release(ent);
        return rc;
    }
    if (is_head(r)) {
        rc = pier_server_respond_empty(r, status, len);
        pier_edgecache_release(ent);
        return rc;
    }
    if (o->in_file) {
        /* the server closes its own descriptor; the entry keeps the file */
        int fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
        if (fd >= 0) {
            pier_edgecache_release(ent);
            return pier_server_respond_fd(r, status, fd, off, len);
        }
        char *copy = NULL;
        rc = read_range(o->fd, off, len, &copy);
        pier_edgecache_release(ent);
        if (rc == 0)
            rc = pier_server_respond_mem(r, status, copy, (size_t)len);
        free(copy);
        return rc;
    }
    pier_server_req_on_done(r, release_hook, ent);
    return pier_server_respond_static(r, status, o->body + off, (size_t)len);
}

static int respond_text(pier_server_req *r, unsigned status, const char *xcache, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

static int respond_text(pier_server_req *r, unsigned status, const char *xcache, const char *fmt,
                        ...)
{
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof body)
        n = (int)sizeof body - 1;
    pier_server_resp_header(r, "Content-Type", "text/plain; charset=utf-8");
    if (xcache)
        pier_server_resp_header(r, "X-Cache", xcache);
    if (is_head(r))
        return pier_server_respond_empty(r, status, (uint64_t)n);
    return pier_server_respond_mem(r, status, body, (size_t)n);
}

static int respond_redirect(pier_server_req *r, unsigned status, const char *location)
{
    pier_server_resp_header(r, "Location", location);
    pier_server_resp_header(r, "X-Cache", X_CACHE_REDIRECT);
    return pier_server_respond_mem(r, status, "", 0);
}

/* A miss: resolve against the store, then cache or stream. */
static int serve_miss(pier_edge *e, pier_server_req *r, const pier_edge_site *site,
                      const char *path, const char *query, int64_t now_ms)
{
    uint64_t epoch = pier_edgecache_epoch(e->cache);
    origin o = {.edge = e, .site = site, .fd = -1};
    pier_edge_route route;
    pier_edge_resolve(site, path, query, origin_exists, &o, &route);
    int rc = 0;
    if (route.kind == PIER_EDGE_REDIRECT) {
        rc = respond_redirect(r, route.status, route.path);
        goto done;
    }
    if (route.kind == PIER_EDGE_NOT_FOUND) {
        pier_edgecache_object none = {0};
        add_rule_headers(site, path, NULL, &none);
        add_headers(r, &none, false);
        pier_edgecache_object_clear(&none);
        rc = respond_text(r, 404, X_CACHE_ERROR, "404 Not Found: %s\n", path);
        goto done;
    }
    if (!o.path || strcmp(o.path, route.path) != 0) {
        /* resolve ends on the object it found last; be sure */
        if (!origin_exists(&o, route.path)) {
            rc = respond_text(r, 404, X_CACHE_ERROR, "404 Not Found: %s\n", path);
            goto done;
        }
    }
    const char *website = pier_store_meta_get(&o.meta, "x-amz-website-redirect-location");
    if (website && website[0]) {
        rc = respond_redirect(r, 301, website);
        goto done;
    }
    pier_edgecache_object obj;
    object_from_meta(&o, path, route.status, &obj);
    int64_t ttl = pier_edgecache_ttl(&site->ttl, pier_store_meta_get(&o.meta, "cache-control"),
                                     pier_store_meta_get(&o.meta, "expires"), now_ms / 1000);
    if (route.fallback && ttl > PIER_EDGECACHE_ERROR_TTL)
        ttl = PIER_EDGECACHE_ERROR_TTL;
    bool cacheable = ttl > 0 && obj.size <= e->object_max;
    pier_edgecache_stats st = {0};
    if (cacheable && obj.size >= FILE_MIN)
        pier_edgecache_get_stats(e->cache, &st);
    if (cacheable && obj.size >= FILE_MIN && st.files < FILE_MAX_LIVE) {
        obj.in_file = true;
        obj.fd = o.fd;
        o.fd = -1; /* the entry owns it now */
        pier_edgecache_entry *ent =
            pier_edgecache_put(e->cache, site->id, path, &obj, now_ms, ttl, epoch);
        rc = serve_entry(r, ent, false, now_ms);
        goto done;
    }
    if (cacheable) {
        if (read_range(o.fd, 0, obj.size, &obj.body) == 0) {
            pier_edgecache_entry *ent =
                pier_edgecache_put(e->cache, site->id, path, &obj, now_ms, ttl, epoch);
            rc = serve_entry(r, ent, false, now_ms);
            goto done;
        }
        PIER_WARN("edge %s: %s: %s", site->id, o.path, pier_error_last());
    }
    /* stream it */
    uint64_t off, len;
    unsigned status = plan_response(r, &obj, &off, &len);
    pier_server_resp_header(r, "X-Cache", X_CACHE_MISS);
    pier_edgecache_object_clear(&obj);
    if (status == 304 || status == 416)
        rc = pier_server_respond_mem(r, status, "", 0);
    else if (is_head(r))
        rc = pier_server_respond_empty(r, status, len);
    else {
        rc = pier_server_respond_fd(r, status, o.fd, off, len);
        o.fd = -1; /* the server owns it now */
    }
done:
    pier_edge_route_clear(&route);
    origin_close(&o);
    return rc;
}

static int edge_on_req(pier_handler *self, pier_server_req *r)
{
    pier_edge *e = ((edge_handler *)self)->edge;
    const char *method = pier_server_req_method(r);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        pier_server_resp_header(r, "Allow", "GET, HEAD");
        return respond_text(r, 405, X_CACHE_ERROR,
                            "405 Method Not Allowed: the edge serves GET "
                            "and HEAD\n");
    }
    const char *host = pier_server_req_header(r, "Host");
    pthread_rwlock_rdlock(&e->lock);
    const pier_edge_site *site = site_for_host(e, host);
    pthread_rwlock_unlock(&e->lock);
    if (!site)
        return respond_text(r, 404, X_CACHE_ERROR,
                            "404 Not Found: no site is served at host '%s'\n", host ? host : "");

    pier_slice raw = pier_server_req_raw_path(r);
    if (raw.len == 0 || raw.ptr[0] != '/' || raw.len > PATH_MAX_LEN)
        return respond_text(r, 400, X_CACHE_ERROR, "400 Bad Request: bad path\n");
    const char *path;
    if (memchr(raw.ptr, '%', raw.len)) {
        pier_buf dec = PIER_BUF_INIT;
        if (pier_uri_decode(&dec, raw.ptr, raw.len, false) != 0 || memchr(dec.ptr, 0, dec.len)) {
            pier_buf_free(&dec);
            return respond_text(r, 400, X_CACHE_ERROR, "400 Bad Request: bad percent-encoding\n");
        }
        path = pier_server_req_strndup(r, dec.ptr, dec.len);
        pier_buf_free(&dec);
    } else {
        path = pier_server_req_strndup(r, raw.ptr, raw.len);
    }
    pier_slice q = pier_server_req_raw_query(r);
    const char *query = q.len ? pier_server_req_strndup(r, q.ptr, q.len) : "";

    /* redirects come before the cache (they never reach the origin) */
    for (size_t i = 0; i < site->redirect_count; i++) {
        const pier_edge_redirect *rd = &site->redirects[i];
        if (rd->prefix ? pier_str_starts_with(path, rd->from) : strcmp(path, rd->from) == 0) {
            pier_edge_route route;
            pier_edge_resolve(site, path, query, NULL, NULL, &route);
            int rc = respond_redirect(r, route.status, route.path);
            pier_edge_route_clear(&route);
            return rc;
        }
    }
    int64_t now_ms = e->clock_ms(e->clock_ctx);
    pier_edgecache_entry *ent = pier_edgecache_get(e->cache, site->id, path, now_ms);
    if (ent)
        return serve_entry(r, ent, true, now_ms);
    return serve_miss(e, r, site, path, query, now_ms);
}

static void edge_dispose(pier_handler *self)
{
    free(self);
}

pier_handler *pier_edge_handler(pier_edge *e)
{
    edge_handler *h = pier_calloc(1, sizeof *h);
    h->base.on_req = edge_on_req;
    h->base.dispose = edge_dispose;
    h->edge = e;
    return &h->base;
}
