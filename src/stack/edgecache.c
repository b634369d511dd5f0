/*
 * edgecache: see edgecache.h. A chained hash table (FNV-1a over scope, NUL,
 * path; doubled when it holds more entries than buckets) plus one doubly
 * linked LRU list, both under one mutex. get moves the entry to the front;
 * put evicts from the back until the new entry fits.
 *
 * References: the table holds one; get and put add one for the caller.
 * Unlinking (eviction, expiry, purge, replacement, free) drops the table's
 * reference; the atomic count reaching 0 frees the entry, whoever holds
 * the last reference.
 *
 * Costs: get and put are O(1) expected; purge walks the LRU list (O(n)),
 * which an invalidation can afford.
 */
#include "stack/edgecache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/str.h"

struct pier_edgecache_entry {
    pier_edgecache_object obj;                        /* the response */
    char *scope;                                      /* distribution id */
    char *path;                                       /* decoded viewer path */
    uint64_t hash;                                    /* of scope and path */
    int64_t stored_ms;                                /* when put */
    int64_t expires_ms;                               /* fresh until */
    uint64_t charge;                                  /* bytes counted against the bound */
    atomic_uint refs;                                 /* the table's (while linked) + callers' */
    pthread_mutex_t slot_lock;                        /* guards slot */
    pier_edgecache_slot slot;                         /* the user's derived data */
    bool linked;                                      /* in the table and the list */
    struct pier_edgecache_entry *next;                /* hash chain */
    struct pier_edgecache_entry *prev_lru, *next_lru; /* LRU list, front = newest */
};

struct pier_edgecache {
    pthread_mutex_t lock;           /* guards everything below */
    pier_edgecache_entry **slots;   /* hash buckets */
    size_t slot_count;              /* a power of two */
    size_t count;                   /* linked entries */
    uint64_t bytes;                 /* their charge */
    uint64_t max_bytes;             /* the bound */
    uint64_t evictions;             /* dropped for room */
    uint64_t epoch;                 /* bumped by every purge */
    pier_edgecache_entry *lru_head; /* most recently used */
    pier_edgecache_entry *lru_tail; /* least recently used */
};

/* File-backed objects alive in the process (kept or in flight): entries can
 * outlive their cache, so the count is not the cache's. */
static atomic_uint_fast64_t live_files;

/* ---- TTL ---- */

/* Reads the value of directive name (e.g. "max-age") in a Cache-Control
 * list: 1 with *value set when present with a number, 2 when present
 * without one (or with a non-number), 0 when absent. */
static int directive(const char *cc, const char *name, int64_t *value)
{
    size_t nlen = strlen(name);
    const char *p = cc;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',' && *p != '=' && *p != ' ' && *p != '\t')
            p++;
        size_t len = (size_t)(p - start);
        while (*p == ' ' || *p == '\t')
            p++;
        const char *val = NULL;
        size_t vlen = 0;
        if (*p == '=') {
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == '"') {
                val = ++p;
                while (*p && *p != '"')
                    p++;
                vlen = (size_t)(p - val);
                if (*p == '"')
                    p++;
            } else {
                val = p;
                while (*p && *p != ',' && *p != ' ' && *p != '\t')
                    p++;
                vlen = (size_t)(p - val);
            }
        }
        while (*p && *p != ',')
            p++;
        if (len == nlen && strncasecmp(start, name, nlen) == 0) {
            if (!val || vlen == 0 || vlen > 19)
                return 2;
            char num[24];
            memcpy(num, val, vlen);
            num[vlen] = '\0';
            if (pier_parse_i64(num, value) != 0 || *value < 0)
                return 2;
            return 1;
        }
    }
    return 0;
}

int64_t pier_edgecache_ttl(const pier_edgecache_ttl_policy *p, const char *cache_control,
                           const char *expires, int64_t now_s)
{
    pier_edgecache_ttl_policy def = PIER_EDGECACHE_TTL_POLICY_INIT;
    if (!p)
        p = &def;
    const char *cc = cache_control ? cache_control : "";
    int64_t v = 0;
    if (directive(cc, "no-cache", &v) || directive(cc, "no-store", &v) ||
        directive(cc, "private", &v))
        return p->min_ttl;
    int64_t ttl;
    if (directive(cc, "s-maxage", &v) == 1 || directive(cc, "max-age", &v) == 1) {
        ttl = v;
    } else if (expires && expires[0]) {
        time_t t;
        /* an unparsable Expires means "already expired" (RFC 9111 5.3) */
        ttl = pier_time_parse(expires, &t) == 0 ? (int64_t)t - now_s : 0;
        if (ttl < 0)
            ttl = 0;
    } else {
        return p->default_ttl;
    }
    if (ttl < p->min_ttl)
        ttl = p->min_ttl;
    if (ttl > p->max_ttl)
        ttl = p->max_ttl;
    return ttl;
}

/* ---- objects ---- */

void pier_edgecache_object_add_header(pier_edgecache_object *o, const char *name, const char *value)
{
    o->headers = pier_realloc(o->headers, (o->header_count + 1) * sizeof *o->headers);
    o->headers[o->header_count].name = pier_strdup(name);
    o->headers[o->header_count].value = pier_strdup(value);
    o->header_count++;
}

void pier_edgecache_object_clear(pier_edgecache_object *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->header_count; i++) {
        free(o->headers[i].name);
        free(o->headers[i].value);
    }
    free(o->headers);
    free(o->body);
    free(o->source);
    if (o->in_file && o->fd >= 0)
        close(o->fd);
    memset(o, 0, sizeof *o);
}

/* ---- entries ---- */

static uint64_t key_hash(const char *scope, const char *path)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)scope; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ 0) * 1099511628211ULL;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static void entry_destroy(pier_edgecache_entry *e)
{
    if (e->obj.in_file)
        atomic_fetch_sub(&live_files, 1);
    if (e->slot.data && e->slot.free_fn)
        e->slot.free_fn(e->slot.data);
    pthread_mutex_destroy(&e->slot_lock);
    pier_edgecache_object_clear(&e->obj);
    free(e->scope);
    free(e->path);
    free(e);
}

void pier_edgecache_release(pier_edgecache_entry *e)
{
    if (e && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        entry_destroy(e);
}

const pier_edgecache_object *pier_edgecache_entry_object(const pier_edgecache_entry *e)
{
    return &e->obj;
}

int64_t pier_edgecache_entry_age(const pier_edgecache_entry *e, int64_t now_ms)
{
    int64_t age = (now_ms - e->stored_ms) / 1000;
    return age < 0 ? 0 : age;
}

bool pier_edgecache_entry_cached(const pier_edgecache_entry *e)
{
    return e->linked;
}

pier_edgecache_slot *pier_edgecache_slot_lock(pier_edgecache_entry *e)
{
    pthread_mutex_lock(&e->slot_lock);
    return &e->slot;
}

void pier_edgecache_slot_unlock(pier_edgecache_entry *e)
{
    pthread_mutex_unlock(&e->slot_lock);
}

/* ---- the table (caller holds the lock) ---- */

static void lru_unlink(pier_edgecache *c, pier_edgecache_entry *e)
{
    if (e->prev_lru)
        e->prev_lru->next_lru = e->next_lru;
    else
        c->lru_head = e->next_lru;
    if (e->next_lru)
        e->next_lru->prev_lru = e->prev_lru;
    else
        c->lru_tail = e->prev_lru;
    e->prev_lru = e->next_lru = NULL;
}

static void lru_push_front(pier_edgecache *c, pier_edgecache_entry *e)
{
    e->prev_lru = NULL;
    e->next_lru = c->lru_head;
    if (c->lru_head)
        c->lru_head->prev_lru = e;
    c->lru_head = e;
    if (!c->lru_tail)
        c->lru_tail = e;
}

/* Removes e from the table and the list and drops the table's reference. */
static void unlink_entry(pier_edgecache *c, pier_edgecache_entry *e)
{
    pier_edgecache_entry **pp = &c->slots[e->hash & (c->slot_count - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    e->next = NULL;
    lru_unlink(c, e);
    c->count--;
    c->bytes -= e->charge;
    e->linked = false;
    pier_edgecache_release(e);
}

static pier_edgecache_entry *find(pier_edgecache *c, uint64_t h, const char *scope,
                                  const char *path)
{
    for (pier_edgecache_entry *e = c->slots[h & (c->slot_count - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->path, path) == 0 && strcmp(e->scope, scope) == 0)
            return e;
    return NULL;
}

static void grow(pier_edgecache *c)
{
    size_t n = c->slot_count * 2;
    pier_edgecache_entry **slots = pier_calloc(n, sizeof *slots);
    for (size_t i = 0; i < c->slot_count; i++) {
        pier_edgecache_entry *e = c->slots[i];
        while (e) {
            pier_edgecache_entry *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(c->slots);
    c->slots = slots;
    c->slot_count = n;
}

/* ---- the cache ---- */

pier_edgecache *pier_edgecache_new(uint64_t max_bytes)
{
    pier_edgecache *c = pier_calloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->slot_count = 256;
    c->slots = pier_calloc(c->slot_count, sizeof *c->slots);
    c->max_bytes = max_bytes ? max_bytes : (uint64_t)256 << 20;
    return c;
}

void pier_edgecache_free(pier_edgecache *c)
{
    if (!c)
        return;
    while (c->lru_head)
        unlink_entry(c, c->lru_head);
    free(c->slots);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

pier_edgecache_entry *pier_edgecache_get(pier_edgecache *c, const char *scope, const char *path,
                                         int64_t now_ms)
{
    uint64_t h = key_hash(scope, path);
    pthread_mutex_lock(&c->lock);
    pier_edgecache_entry *e = find(c, h, scope, path);
    if (e && now_ms >= e->expires_ms) {
        unlink_entry(c, e);
        e = NULL;
    }
    if (e) {
        if (c->lru_head != e) {
            lru_unlink(c, e);
            lru_push_front(c, e);
        }
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&c->lock);
    return e;
}

uint64_t pier_edgecache_epoch(pier_edgecache *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t epoch = c->epoch;
    pthread_mutex_unlock(&c->lock);
    return epoch;
}

pier_edgecache_entry *pier_edgecache_put(pier_edgecache *c, const char *scope, const char *path,
                                         pier_edgecache_object *obj, int64_t now_ms, int64_t ttl_s,
                                         uint64_t epoch)
{
    pier_edgecache_entry *e = pier_calloc(1, sizeof *e);
    e->obj = *obj;
    memset(obj, 0, sizeof *obj);
    e->scope = pier_strdup(scope);
    e->path = pier_strdup(path);
    e->hash = key_hash(scope, path);
    e->stored_ms = now_ms;
    e->expires_ms = ttl_s > 0 ? now_ms + ttl_s * 1000 : now_ms;
    e->charge = PIER_EDGECACHE_ENTRY_OVERHEAD + e->obj.size + strlen(scope) + strlen(path) +
                (e->obj.source ? strlen(e->obj.source) : 0);
    for (size_t i = 0; i < e->obj.header_count; i++)
        e->charge += strlen(e->obj.headers[i].name) + strlen(e->obj.headers[i].value) + 16;
    atomic_init(&e->refs, 1); /* the caller's */
    pthread_mutex_init(&e->slot_lock, NULL);
    if (e->obj.in_file)
        atomic_fetch_add(&live_files, 1);

    pthread_mutex_lock(&c->lock);
    if (ttl_s > 0 && epoch == c->epoch && e->charge <= c->max_bytes) {
        pier_edgecache_entry *old = find(c, e->hash, scope, path);
        if (old)
            unlink_entry(c, old);
        while (c->bytes + e->charge > c->max_bytes && c->lru_tail) {
            unlink_entry(c, c->lru_tail);
            c->evictions++;
        }
        if (c->count >= c->slot_count)
            grow(c);
        size_t slot = e->hash & (c->slot_count - 1);
        e->next = c->slots[slot];
        c->slots[slot] = e;
        lru_push_front(c, e);
        c->count++;
        c->bytes += e->charge;
        e->linked = true;
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed); /* the table's */
    }
    pthread_mutex_unlock(&c->lock);
    return e;
}

/* True when the invalidation pattern covers path. */
static bool pattern_matches(const char *pattern, size_t plen, bool wildcard, const char *path)
{
    if (!path)
        return false;
    if (wildcard)
        return strncmp(path, pattern, plen) == 0;
    return strcmp(path, pattern) == 0;
}

size_t pier_edgecache_purge(pier_edgecache *c, const char *scope, const char *pattern)
{
    size_t plen = strlen(pattern);
    bool wildcard = plen > 0 && pattern[plen - 1] == '*';
    if (wildcard)
        plen--;
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    c->epoch++;
    pier_edgecache_entry *e = c->lru_head;
    while (e) {
        pier_edgecache_entry *next = e->next_lru;
        if (strcmp(e->scope, scope) == 0 &&
            (pattern_matches(pattern, plen, wildcard, e->path) ||
             pattern_matches(pattern, plen, wildcard, e->obj.source))) {
            unlink_entry(c, e);
            n++;
        }
        e = next;
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}

void pier_edgecache_get_stats(pier_edgecache *c, pier_edgecache_stats *out)
{
    pthread_mutex_lock(&c->lock);
    out->entries = c->count;
    out->bytes = c->bytes;
    out->max_bytes = c->max_bytes;
    out->evictions = c->evictions;
    pthread_mutex_unlock(&c->lock);
    out->files = atomic_load(&live_files);
}
