/*
 * plan: see plan.h.
 *
 * Steps, each a static function: check the local keys; build the sorted
 * view of the listing that belongs to the site; merge it with the manifest
 * in one pass (both in byte order) deciding upload / skip / delete; check
 * the deletion limits; order the actions by phase; record the next state;
 * derive the invalidation paths and collapse them.
 *
 * Cost: O((local + remote) log) for the merge and sorts; path collapsing is
 * O(iterations x candidates x log paths) and only runs past max_paths.
 */
#include "deploy/plan.h"

#include <stdlib.h>
#include <string.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/glob.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"

/* ---- small helpers ------------------------------------------------------------ */

typedef struct {
    char **items; /* malloc'ed strings */
    size_t count; /* in use */
    size_t cap;   /* allocated */
} strvec;

static void strvec_push(strvec *v, char *s)
{
    if (v->count == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 16;
        v->items = pier_realloc(v->items, v->cap * sizeof *v->items);
    }
    v->items[v->count++] = s;
}

static void strvec_free_items(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and removes duplicates. */
static void sort_unique(char **items, size_t *n)
{
    if (*n == 0)
        return;
    qsort(items, *n, sizeof *items, cmp_str);
    size_t w = 1;
    for (size_t i = 1; i < *n; i++) {
        if (strcmp(items[i], items[w - 1]) == 0)
            free(items[i]);
        else
            items[w++] = items[i];
    }
    *n = w;
}

/* A key shortened for a message: the first 60 bytes and "...". */
static void short_key(char out[80], const char *key)
{
    size_t n = strlen(key);
    if (n <= 64)
        snprintf(out, 80, "%s", key);
    else
        snprintf(out, 80, "%.60s...", key);
}

const char *pier_deploy_reason_name(pier_deploy_reason r)
{
    switch (r) {
    case PIER_DEPLOY_REASON_NEW:
        return "new";
    case PIER_DEPLOY_REASON_CHANGED:
        return "changed";
    case PIER_DEPLOY_REASON_METADATA:
        return "metadata";
    default:
        return "";
    }
}

const char *pier_deploy_phase_name(pier_deploy_phase ph)
{
    switch (ph) {
    case PIER_DEPLOY_PHASE_ASSETS:
        return "assets";
    case PIER_DEPLOY_PHASE_HTML:
        return "html";
    default:
        return "delete";
    }
}

/* ---- freeing ----------------------------------------------------------------- */

static void action_clear(pier_deploy_action *a)
{
    free(a->key);
    free(a->remote_etag);
    pier_deploy_meta_clear(&a->meta);
}

void pier_deploy_plan_free(pier_deploy_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->count; i++)
        action_clear(&p->actions[i]);
    free(p->actions);
    strvec_free_items(p->paths, p->path_count);
    strvec_free_items(p->warnings, p->warning_count);
    free(p->prefix);
    free(p->deploy_id);
    free(p->state_key);
    pier_deploy_state_free(p->next_state);
    free(p);
}

/* ---- step 1: local keys -------------------------------------------------------- */

static int check_local(const pier_deploy_manifest *local, bool allow_empty)
{
    if (local->count == 0 && !allow_empty)
        return pier_error_set(PIER_EINVALID,
                              "%s has no files: refusing to deploy an empty folder, which would "
                              "delete everything under the prefix \"%s\" (allow it with "
                              "--allow-empty)",
                              local->root ? local->root : "the folder", local->prefix);
    size_t plen = strlen(local->prefix);
    for (size_t i = 0; i < local->count; i++) {
        const char *key = local->files[i].key;
        size_t n = strlen(key);
        char shown[80];
        short_key(shown, key);
        if (n > PIER_DEPLOY_MAX_KEY)
            return pier_error_set(PIER_EINVALID,
                                  "key %s is %zu bytes, over S3's limit of %d: shorten the path "
                                  "or the prefix",
                                  shown, n, PIER_DEPLOY_MAX_KEY);
        if (!pier_utf8_valid(key))
            return pier_error_set(PIER_EINVALID,
                                  "file name %s is not UTF-8, which S3 keys must be: rename it",
                                  local->files[i].rel);
        if (strncmp(key + plen, PIER_DEPLOY_STATE_DIR, strlen(PIER_DEPLOY_STATE_DIR)) == 0)
            return pier_error_set(PIER_EINVALID,
                                  "%s is under .pier/, which pier keeps for its own manifest: "
                                  "remove it from the folder",
                                  local->files[i].rel);
    }
    return 0;
}

/* ---- step 2: the site's view of the listing ------------------------------------- */

typedef struct {
    const pier_deploy_object **objects; /* site objects, sorted by key */
    size_t count;                       /* their number */
    char **foreign;                     /* prefixes owned by other pier deploys */
    size_t foreign_count;               /* their number */
} remote_view;

static int cmp_obj(const void *a, const void *b)
{
    return strcmp((*(const pier_deploy_object *const *)a)->key,
                  (*(const pier_deploy_object *const *)b)->key);
}

static bool under_foreign(const remote_view *v, const char *key)
{
    for (size_t i = 0; i < v->foreign_count; i++)
        if (pier_str_starts_with(key, v->foreign[i]))
            return true;
    return false;
}

static void view_build(remote_view *v, const pier_deploy_listing *remote, const char *prefix)
{
    memset(v, 0, sizeof *v);
    if (!remote)
        return;
    size_t plen = strlen(prefix), slen = strlen(PIER_DEPLOY_STATE_NAME);
    strvec foreign = {0};
    v->objects = pier_calloc(remote->count + 1, sizeof *v->objects);
    for (size_t i = 0; i < remote->count; i++) {
        const pier_deploy_object *o = &remote->objects[i];
        const char *key = o->key;
        size_t n = strlen(key);
        if (strncmp(key, prefix, plen) != 0 || n == plen || key[n - 1] == '/')
            continue; /* outside the prefix, or a "directory" marker */
        const char *rest = key + plen;
        if (strncmp(rest, PIER_DEPLOY_STATE_DIR, strlen(PIER_DEPLOY_STATE_DIR)) == 0)
            continue; /* pier's own */
        /* "<sub>/.pier/manifest.json": another pier deploy owns <sub>/. */
        size_t rn = n - plen;
        if (rn > slen && strcmp(rest + rn - slen, PIER_DEPLOY_STATE_NAME) == 0 &&
            rest[rn - slen - 1] == '/')
            strvec_push(&foreign, pier_strndup(key, n - slen));
        v->objects[v->count++] = o;
    }
    qsort(v->objects, v->count, sizeof *v->objects, cmp_obj);
    /* Duplicates (a listing read twice): keep the first. */
    size_t w = 0;
    for (size_t i = 0; i < v->count; i++)
        if (w == 0 || strcmp(v->objects[w - 1]->key, v->objects[i]->key) != 0)
            v->objects[w++] = v->objects[i];
    v->count = w;
    sort_unique(foreign.items, &foreign.count);
    v->foreign = foreign.items;
    v->foreign_count = foreign.count;
}

static void view_free(remote_view *v)
{
    free(v->objects);
    strvec_free_items(v->foreign, v->foreign_count);
}

/* ---- step 3: compare ------------------------------------------------------------ */

/* Does the listed object hold the local content? See plan.h. 1 yes, 0 no,
 * -1 undecided: the local digest to compare with was not computed. */
static int content_equal(const pier_deploy_file *l, const pier_deploy_object *r,
                         const pier_deploy_state_file *s)
{
    if (r->size != l->size)
        return 0;
    if (s && s->sha256[0] && s->size == r->size && (!s->etag || strcmp(s->etag, r->etag) == 0))
        return strcmp(s->sha256, l->sha256_hex) == 0;
    if (!r->etag[0])
        return 0;
    if (strchr(r->etag, '-')) {
        if (!l->has_md5)
            return -1;
        return l->part_count > 0 && strcmp(r->etag, l->etag) == 0;
    }
    if (!l->whole_md5)
        return -1;
    return strcmp(r->etag, l->md5_hex) == 0;
}

static int cmp_local(const void *a, const void *b)
{
    return strcmp((*(const pier_deploy_file *const *)a)->key,
                  (*(const pier_deploy_file *const *)b)->key);
}

typedef struct {
    pier_deploy_action *items; /* actions */
    size_t count;              /* in use */
    size_t cap;                /* allocated */
} actvec;

static pier_deploy_action *actvec_push(actvec *v)
{
    if (v->count == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        v->items = pier_realloc(v->items, v->cap * sizeof *v->items);
    }
    pier_deploy_action *a = &v->items[v->count++];
    memset(a, 0, sizeof *a);
    return a;
}

typedef struct {
    actvec assets;       /* phase 1 */
    actvec html;         /* phase 2 */
    actvec deletes;      /* phase 3 */
    strvec warnings;     /* for the user */
    size_t kept_foreign; /* objects kept because another deploy owns them */
    size_t kept_other;   /* kept by no_delete or keep */
    size_t site_objects; /* remote objects considered */
} merge_out;

static pier_deploy_action *add_upload(pier_deploy_plan *p, merge_out *m, const pier_deploy_file *f,
                                      const pier_deploy_object *r, pier_deploy_reason reason,
                                      pier_deploy_meta *meta)
{
    bool html = pier_deploy_is_html_type(meta->content_type);
    pier_deploy_action *a = actvec_push(html ? &m->html : &m->assets);
    a->op = PIER_DEPLOY_UPLOAD;
    a->reason = reason;
    a->phase = html ? PIER_DEPLOY_PHASE_HTML : PIER_DEPLOY_PHASE_ASSETS;
    a->key = pier_strdup(f->key);
    a->size = f->size;
    a->file = f;
    a->meta = *meta; /* takes the strings */
    memset(meta, 0, sizeof *meta);
    a->remote_etag = r ? pier_strdup(r->etag) : NULL;
    p->upload_bytes += f->size;
    if (reason == PIER_DEPLOY_REASON_NEW)
        p->new_count++;
    else if (reason == PIER_DEPLOY_REASON_CHANGED)
        p->changed_count++;
    else
        p->metadata_count++;
    return a;
}

static bool kept_by_glob(const pier_deploy_plan_options *o, const char *rel)
{
    for (size_t i = 0; i < o->keep_count; i++)
        if (pier_glob_match(o->keep[i][0] == '/' ? o->keep[i] + 1 : o->keep[i], rel))
            return true;
    return false;
}

static void consider_delete(pier_deploy_plan *p, merge_out *m, const remote_view *v,
                            const pier_deploy_object *r, const pier_deploy_plan_options *o)
{
    if (under_foreign(v, r->key)) {
        m->kept_foreign++;
        return;
    }
    m->site_objects++;
    if (o->no_delete || kept_by_glob(o, r->key + strlen(p->prefix))) {
        m->kept_other++;
        return;
    }
    pier_deploy_action *a = actvec_push(&m->deletes);
    a->op = PIER_DEPLOY_DELETE;
    a->phase = PIER_DEPLOY_PHASE_DELETE;
    a->key = pier_strdup(r->key);
    a->size = r->size;
    a->remote_etag = pier_strdup(r->etag);
    p->delete_bytes += r->size;
}

/* Records a local file in the next state. meta NULL = unknown. */
static void record(pier_deploy_state *next, const pier_deploy_file *f, const char *etag,
                   const pier_deploy_meta *meta)
{
    pier_deploy_state_file *e = pier_deploy_state_add(next, f->key);
    memcpy(e->sha256, f->sha256_hex, sizeof e->sha256);
    e->size = f->size;
    e->etag = pier_strdup(etag);
    if (meta)
        pier_deploy_meta_copy(&e->meta, meta);
}

static void merge(pier_deploy_plan *p, merge_out *m, const pier_deploy_manifest *local,
                  const remote_view *v, const pier_deploy_state *state,
                  const pier_deploy_rules *rules, const pier_deploy_plan_options *o)
{
    /* The manifest is in key order by contract; a sorted view makes the
     * merge safe even for one built otherwise. */
    const pier_deploy_file **files = pier_calloc(local->count + 1, sizeof *files);
    for (size_t i = 0; i < local->count; i++)
        files[i] = &local->files[i];
    for (size_t i = 1; i < local->count; i++) {
        if (strcmp(files[i - 1]->key, files[i]->key) >= 0) {
            qsort(files, local->count, sizeof *files, cmp_local);
            break;
        }
    }
    size_t li = 0, ri = 0;
    while (li < local->count || ri < v->count) {
        int c;
        if (li == local->count)
            c = 1;
        else if (ri == v->count)
            c = -1;
        else
            c = strcmp(files[li]->key, v->objects[ri]->key);
        if (c > 0) {
            consider_delete(p, m, v, v->objects[ri++], o);
            continue;
        }
        const pier_deploy_file *f = files[li++];
        const pier_deploy_object *r = c == 0 ? v->objects[ri++] : NULL;
        if (r && !under_foreign(v, r->key))
            m->site_objects++;
        pier_deploy_meta meta;
        int eq;
        pier_deploy_rules_resolve(rules, f->rel, &meta);
        const pier_deploy_state_file *s = pier_deploy_state_find(state, f->key);
        if (!r) {
            record(p->next_state, f, f->etag, &meta);
            add_upload(p, m, f, NULL, PIER_DEPLOY_REASON_NEW, &meta);
        } else if ((eq = content_equal(f, r, s)) != 1) {
            record(p->next_state, f, f->etag, &meta);
            add_upload(p, m, f, r, PIER_DEPLOY_REASON_CHANGED, &meta)->undecided = eq < 0;
        } else {
            bool known = s && s->meta.content_type;
            bool stale =
                known ? !pier_deploy_meta_equal(&s->meta, &meta) : o->reupload_unknown_metadata;
            if (stale) {
                record(p->next_state, f, f->etag, &meta);
                add_upload(p, m, f, r, PIER_DEPLOY_REASON_METADATA, &meta);
            } else {
                record(p->next_state, f, r->etag, known ? &meta : NULL);
                p->skip_count++;
                p->skip_bytes += f->size;
            }
        }
        pier_deploy_meta_clear(&meta);
    }
    free(files);
}

static int check_deletes(const pier_deploy_plan *p, const merge_out *m,
                         const pier_deploy_manifest *local, const pier_deploy_plan_options *o)
{
    size_t n = m->deletes.count;
    if (o->max_deletes >= 0) {
        if ((uint64_t)n > (uint64_t)o->max_deletes)
            return pier_error_set(PIER_ECONFLICT,
                                  "refusing to delete %zu objects under the prefix \"%s\" (the "
                                  "limit is %lld): check the folder, raise --max-deletes, or "
                                  "keep them with --no-delete",
                                  n, p->prefix, (long long)o->max_deletes);
        return 0;
    }
    if (o->allow_empty && local->count == 0)
        return 0; /* emptying the site was asked for */
    if (n > 10 && n * 2 > m->site_objects)
        return pier_error_set(PIER_ECONFLICT,
                              "refusing to delete %zu of the %zu objects under the prefix \"%s\" "
                              "(more than half): check that %s is the whole site, or allow it "
                              "with --max-deletes %zu (or keep them with --no-delete)",
                              n, m->site_objects, p->prefix,
                              local->root ? local->root : "the folder", n);
    return 0;
}

/* ---- step 4: invalidation paths ---------------------------------------------- */

int pier_deploy_path_encode(pier_buf *out, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = pier_buf_putc(out, '/');
    for (const unsigned char *c = (const unsigned char *)path; *c && rc == 0; c++) {
        if (*c <= 0x20 || *c >= 0x7f || strchr("\"#%<>?[\\]^`{|}~*", *c)) {
            char esc[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            rc = pier_buf_put(out, esc, 3);
        } else {
            rc = pier_buf_putc(out, (char)*c);
        }
    }
    return rc;
}

static char *encode_path(const char *path, const char *suffix)
{
    pier_buf b = PIER_BUF_INIT;
    pier_deploy_path_encode(&b, path);
    pier_buf_puts(&b, suffix);
    return pier_buf_detach(&b);
}

/* The path of key relative to the CDN origin, or NULL when the CDN cannot
 * reach it. Borrowed from key. */
static const char *origin_rel(const char *key, const char *origin)
{
    size_t n = strlen(origin);
    return strncmp(key, origin, n) == 0 ? key + n : NULL;
}

static void paths_for_key(strvec *out, const char *key, const char *prefix, const char *origin,
                          const pier_deploy_rules *rules)
{
    const char *rel = origin_rel(key, origin);
    if (rel) {
        strvec_push(out, encode_path(rel, ""));
        const char *slash = strrchr(rel, '/');
        const char *base = slash ? slash + 1 : rel;
        if (strcmp(base, "index.html") == 0) {
            char *dir = pier_strndup(rel, (size_t)(base - rel)); /* "" or "docs/" */
            strvec_push(out, encode_path(dir, ""));
            if (dir[0]) {
                dir[strlen(dir) - 1] = '\0';
                strvec_push(out, encode_path(dir, ""));
            }
            free(dir);
        }
    }
    /* Rewrites speak the site's paths: "/" + the key under the prefix. */
    const char *site = key + strlen(prefix);
    for (size_t i = 0; rules && i < rules->rewrite_count; i++) {
        const pier_deploy_rewrite *w = &rules->rewrites[i];
        if (w->to[0] != '/' || strcmp(w->to + 1, site) != 0)
            continue;
        pier_buf from_key = PIER_BUF_INIT;
        pier_buf_puts(&from_key, prefix);
        pier_buf_puts(&from_key, w->from + 1);
        const char *from_rel = origin_rel(pier_buf_cstr(&from_key), origin);
        if (from_rel)
            strvec_push(out, encode_path(from_rel, w->prefix ? "*" : ""));
        pier_buf_free(&from_key);
    }
}

/* First index i in sorted items with strcmp(items[i], s) >= 0. */
static size_t lower_bound(char *const *items, size_t n, const char *s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(items[mid], s) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* End of the run of sorted items that start with prefix (from `from`). */
static size_t prefix_end(char *const *items, size_t n, size_t from, const char *prefix)
{
    size_t len = strlen(prefix);
    size_t lo = from, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strncmp(items[mid], prefix, len) <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool contains(char *const *items, size_t n, const char *s)
{
    size_t i = lower_bound(items, n, s);
    return i < n && strcmp(items[i], s) == 0;
}

/* Sorts, dedups and drops paths covered by a wildcard in the set. */
static void normalize_paths(char **items, size_t *count)
{
    size_t n = *count;
    sort_unique(items, &n);
    bool *drop = pier_calloc(n + 1, sizeof *drop);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(items[i]);
        if (len == 0 || items[i][len - 1] != '*' || drop[i])
            continue;
        char *pre = pier_strndup(items[i], len - 1);
        size_t lo = lower_bound(items, n, pre);
        size_t hi = prefix_end(items, n, lo, pre);
        for (size_t j = lo; j < hi; j++)
            if (j != i)
                drop[j] = true;
        free(pre);
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (drop[i])
            free(items[i]);
        else
            items[w++] = items[i];
    }
    free(drop);
    *count = w;
}

typedef struct {
    char *dir;      /* "/a/b/" */
    size_t covered; /* paths starting with dir */
    bool exact;     /* "/a/b" is in the set too */
    size_t depth;   /* number of '/' in dir */
} candidate;

static size_t reduction(const candidate *c)
{
    size_t n = c->covered + (c->exact ? 1 : 0);
    return n ? n - 1 : 0;
}

/* The fewest paths reachable without the root wildcard: every top-level directory
 * collapsed. */
static size_t floor_count(char *const *items, size_t n)
{
    strvec tops = {0};
    for (size_t i = 0; i < n; i++) {
        const char *second = strchr(items[i] + 1, '/');
        if (second)
            strvec_push(&tops, pier_strndup(items[i], (size_t)(second - items[i]) + 1));
    }
    sort_unique(tops.items, &tops.count);
    size_t total = tops.count;
    for (size_t i = 0; i < n; i++) {
        if (strchr(items[i] + 1, '/'))
            continue;
        /* "/docs" folds into "/docs*" when "/docs/" is a top directory. */
        pier_buf b = PIER_BUF_INIT;
        pier_buf_puts(&b, items[i]);
        pier_buf_putc(&b, '/');
        if (!contains(tops.items, tops.count, pier_buf_cstr(&b)))
            total++;
        pier_buf_free(&b);
    }
    strvec_free_items(tops.items, tops.count);
    return total;
}

static void set_last_resort(char ***paths, size_t *count)
{
    strvec_free_items(*paths, *count);
    *paths = pier_malloc(sizeof **paths);
    (*paths)[0] = pier_strdup("/*");
    *count = 1;
}

/* One greedy step: returns false when no directory helps. */
static bool collapse_once(char ***paths, size_t *count, size_t max)
{
    char **items = *paths;
    size_t n = *count;
    strvec dirs = {0};
    for (size_t i = 0; i < n; i++)
        for (const char *s = strchr(items[i] + 1, '/'); s; s = strchr(s + 1, '/'))
            strvec_push(&dirs, pier_strndup(items[i], (size_t)(s - items[i]) + 1));
    sort_unique(dirs.items, &dirs.count);
    size_t need = n - max;
    candidate best = {0}, best_suff = {0};
    for (size_t i = 0; i < dirs.count; i++) {
        candidate c = {dirs.items[i], 0, false, 0};
        size_t lo = lower_bound(items, n, c.dir);
        c.covered = prefix_end(items, n, lo, c.dir) - lo;
        size_t dl = strlen(c.dir);
        c.dir[dl - 1] = '\0';
        c.exact = contains(items, n, c.dir);
        c.dir[dl - 1] = '/';
        for (const char *s = c.dir; *s; s++)
            c.depth += *s == '/';
        size_t r = reduction(&c);
        if (r == 0)
            continue;
        if (r >= need) {
            size_t br = best_suff.dir ? reduction(&best_suff) : 0;
            if (!best_suff.dir || c.depth > best_suff.depth ||
                (c.depth == best_suff.depth && r > br))
                best_suff = c; /* ties: the first in byte order */
        }
        size_t bb = best.dir ? reduction(&best) : 0;
        if (!best.dir || r > bb || (r == bb && c.depth > best.depth))
            best = c;
    }
    const candidate *pick = best_suff.dir ? &best_suff : best.dir ? &best : NULL;
    if (!pick) {
        strvec_free_items(dirs.items, dirs.count);
        return false;
    }
    size_t dl = strlen(pick->dir);
    char *exact = pier_strndup(pick->dir, dl - 1);
    strvec next = {0};
    for (size_t i = 0; i < n; i++) {
        if (strncmp(items[i], pick->dir, dl) == 0 || (pick->exact && strcmp(items[i], exact) == 0))
            free(items[i]);
        else
            strvec_push(&next, items[i]);
    }
    pier_buf w = PIER_BUF_INIT;
    pier_buf_puts(&w, pick->exact ? exact : pick->dir);
    pier_buf_putc(&w, '*');
    strvec_push(&next, pier_buf_detach(&w));
    free(exact);
    free(items);
    strvec_free_items(dirs.items, dirs.count);
    normalize_paths(next.items, &next.count);
    *paths = next.items;
    *count = next.count;
    return true;
}

void pier_deploy_paths_collapse(char ***paths, size_t *count, size_t max)
{
    if (max == 0)
        max = 1;
    normalize_paths(*paths, count);
    if (*count <= max)
        return;
    if (floor_count(*paths, *count) > max) {
        set_last_resort(paths, count);
        return;
    }
    while (*count > max) {
        if (!collapse_once(paths, count, max)) {
            set_last_resort(paths, count);
            return;
        }
    }
}

void pier_deploy_caller_reference(char out[PIER_DEPLOY_CALLER_REF_LEN], const char *deploy_id,
                                  char *const *paths, size_t count)
{
    char **sorted = pier_calloc(count + 1, sizeof *sorted);
    memcpy(sorted, paths, count * sizeof *sorted);
    qsort(sorted, count, sizeof *sorted, cmp_str);
    pier_hash *h = pier_hash_new(PIER_HASH_SHA256);
    pier_hash_update(h, deploy_id ? deploy_id : "", deploy_id ? strlen(deploy_id) : 0);
    for (size_t i = 0; i < count; i++) {
        pier_hash_update(h, "\n", 1);
        pier_hash_update(h, sorted[i], strlen(sorted[i]));
    }
    unsigned char d[PIER_SHA256_LEN];
    pier_hash_final(h, d);
    pier_hash_free(h);
    free(sorted);
    char hex[2 * PIER_SHA256_LEN + 1];
    pier_hex_encode(hex, d, PIER_SHA256_LEN);
    snprintf(out, PIER_DEPLOY_CALLER_REF_LEN, "pier-%.32s", hex);
}

void pier_deploy_id_new(char out[PIER_DEPLOY_ID_LEN], int64_t time)
{
    char when[32], token[9];
    pier_time_iso8601_basic(when, sizeof when, (time_t)time);
    pier_random_token(token, 8, false);
    snprintf(out, PIER_DEPLOY_ID_LEN, "%.16s-%.8s", when, token);
}

static void make_paths(pier_deploy_plan *p, const pier_deploy_rules *rules,
                       const pier_deploy_plan_options *o)
{
    char *origin = pier_deploy_prefix_normalize(o->origin_prefix);
    strvec v = {0};
    for (size_t i = 0; i < p->count; i++)
        paths_for_key(&v, p->actions[i].key, p->prefix, origin, rules);
    free(origin);
    if (v.count == 0) {
        free(v.items);
        return;
    }
    pier_deploy_paths_collapse(&v.items, &v.count,
                               o->max_paths ? o->max_paths : PIER_DEPLOY_MAX_PATHS);
    p->paths = v.items;
    p->path_count = v.count;
    pier_deploy_caller_reference(p->caller_reference, p->deploy_id, p->paths, p->path_count);
}

/* ---- the plan ------------------------------------------------------------------ */

static void append_actions(pier_deploy_plan *p, actvec *v)
{
    if (v->count)
        memcpy(p->actions + p->count, v->items, v->count * sizeof *v->items);
    p->count += v->count;
    free(v->items);
    memset(v, 0, sizeof *v);
}

static void free_actvec(actvec *v)
{
    for (size_t i = 0; i < v->count; i++)
        action_clear(&v->items[i]);
    free(v->items);
}

static void add_warnings(merge_out *m, const remote_view *v, const pier_deploy_plan_options *o)
{
    pier_buf b = PIER_BUF_INIT;
    for (size_t i = 0; i < v->foreign_count; i++) {
        pier_buf_reset(&b);
        pier_buf_printf(&b,
                        "keeping %s: another pier deploy owns it (it has its own %s); it is "
                        "neither compared nor deleted",
                        v->foreign[i], PIER_DEPLOY_STATE_NAME);
        strvec_push(&m->warnings, pier_strdup(pier_buf_cstr(&b)));
    }
    if (m->kept_other) {
        pier_buf_reset(&b);
        pier_buf_printf(&b, "keeping %zu remote object%s that the folder no longer has (%s)",
                        m->kept_other, m->kept_other == 1 ? "" : "s",
                        o->no_delete ? "no-delete" : "keep patterns");
        strvec_push(&m->warnings, pier_strdup(pier_buf_cstr(&b)));
    }
    pier_buf_free(&b);
}

int pier_deploy_plan_make(pier_deploy_plan **out, const pier_deploy_manifest *local,
                          const pier_deploy_listing *remote, const pier_deploy_state *state,
                          const pier_deploy_rules *rules, const pier_deploy_plan_options *opts)
{
    *out = NULL;
    pier_deploy_plan_options defaults = PIER_DEPLOY_PLAN_OPTIONS_INIT;
    const pier_deploy_plan_options *o = opts ? opts : &defaults;
    int rc = check_local(local, o->allow_empty);
    if (rc)
        return rc;
    pier_deploy_plan *p = pier_calloc(1, sizeof *p);
    p->prefix = pier_strdup(local->prefix);
    p->deploy_id = pier_strdup(o->deploy_id ? o->deploy_id : "");
    p->state_key = pier_deploy_state_key(p->prefix);
    p->next_state = pier_deploy_state_new(p->deploy_id, o->time);
    remote_view v;
    view_build(&v, remote, p->prefix);
    merge_out m;
    memset(&m, 0, sizeof m);
    merge(p, &m, local, &v, state, rules, o);
    rc = check_deletes(p, &m, local, o);
    if (rc)
        goto done;
    add_warnings(&m, &v, o);
    p->delete_count = m.deletes.count;
    p->kept_count = m.kept_foreign + m.kept_other;
    size_t total = m.assets.count + m.html.count + m.deletes.count;
    p->actions = pier_calloc(total + 1, sizeof *p->actions);
    append_actions(p, &m.assets);
    p->html_start = p->count;
    append_actions(p, &m.html);
    p->delete_start = p->count;
    append_actions(p, &m.deletes);
    p->warnings = m.warnings.items;
    p->warning_count = m.warnings.count;
    m.warnings.items = NULL;
    m.warnings.count = 0;
    pier_deploy_state_sort(p->next_state);
    make_paths(p, rules, o);
    *out = p;
    p = NULL;
done:
    free_actvec(&m.assets);
    free_actvec(&m.html);
    free_actvec(&m.deletes);
    strvec_free_items(m.warnings.items, m.warnings.count);
    view_free(&v);
    pier_deploy_plan_free(p);
    return rc;
}

/* ---- output ----------------------------------------------------------------------- */

static void human_size(char out[32], uint64_t n)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        snprintf(out, 32, "%llu B", (unsigned long long)n);
        return;
    }
    double v = (double)n / 1024;
    size_t u = 0;
    while (v >= 1024 && u < 3) {
        v /= 1024;
        u++;
    }
    snprintf(out, 32, "%.1f %s", v, units[u]);
}

/* Appends s with control bytes shown as \xNN (a key could hold them). */
static void put_printable(pier_buf *b, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c < 0x20 || *c == 0x7f || *c == '\\')
            pier_buf_printf(b, "\\x%02x", *c);
        else
            pier_buf_putc(b, (char)*c);
    }
}

int pier_deploy_plan_to_text(pier_buf *out, const pier_deploy_plan *p)
{
    char size[32];
    for (size_t i = 0; i < p->warning_count; i++)
        pier_buf_printf(out, "warning: %s\n", p->warnings[i]);
    for (size_t i = 0; i < p->count; i++) {
        const pier_deploy_action *a = &p->actions[i];
        if (a->op == PIER_DEPLOY_UPLOAD) {
            human_size(size, a->size);
            pier_buf_puts(out, "upload  ");
            put_printable(out, a->key);
            pier_buf_printf(out, "  (%s, reason: %s)\n", size, pier_deploy_reason_name(a->reason));
        } else {
            pier_buf_puts(out, "delete  ");
            put_printable(out, a->key);
            pier_buf_putc(out, '\n');
        }
    }
    pier_buf_printf(out, "skip %zu unchanged\n", p->skip_count);
    for (size_t i = 0; i < p->path_count; i++)
        pier_buf_printf(out, "invalidate  %s\n", p->paths[i]);
    human_size(size, p->upload_bytes);
    size_t uploads = p->new_count + p->changed_count + p->metadata_count;
    return pier_buf_printf(out,
                           "%zu upload%s (%s: %zu new, %zu changed, %zu metadata), %zu "
                           "delete%s, %zu unchanged, %zu invalidation path%s\n",
                           uploads, uploads == 1 ? "" : "s", size, p->new_count, p->changed_count,
                           p->metadata_count, p->delete_count, p->delete_count == 1 ? "" : "s",
                           p->skip_count, p->path_count, p->path_count == 1 ? "" : "s");
}

void pier_deploy_plan_print_text(FILE *f, const pier_deploy_plan *p)
{
    pier_buf b;
    pier_buf_init(&b, SIZE_MAX / 2);
    pier_deploy_plan_to_text(&b, p);
    fwrite(pier_buf_cstr(&b), 1, b.len, f);
    pier_buf_free(&b);
}

static json_t *meta_json(json_t *o, const pier_deploy_meta *m)
{
    if (m->content_type)
        json_object_set_new(o, "content_type", json_string(m->content_type));
    if (m->cache_control)
        json_object_set_new(o, "cache_control", json_string(m->cache_control));
    if (m->content_encoding)
        json_object_set_new(o, "content_encoding", json_string(m->content_encoding));
    if (m->header_count) {
        json_t *h = json_object();
        for (size_t i = 0; i < m->header_count; i++)
            json_object_set_new(h, m->headers[i].name, json_string(m->headers[i].value));
        json_object_set_new(o, "headers", h);
    }
    return o;
}

int pier_deploy_plan_to_json(pier_buf *out, const pier_deploy_plan *p, bool pretty)
{
    json_t *root = json_object();
    json_object_set_new(root, "prefix", json_string(p->prefix));
    json_object_set_new(root, "deploy_id", json_string(p->deploy_id));
    json_t *actions = json_array();
    for (size_t i = 0; i < p->count; i++) {
        const pier_deploy_action *a = &p->actions[i];
        json_t *o = json_object();
        json_object_set_new(o, "op",
                            json_string(a->op == PIER_DEPLOY_UPLOAD ? "upload" : "delete"));
        json_object_set_new(o, "key", json_string(a->key));
        json_object_set_new(o, "size", json_integer((json_int_t)a->size));
        json_object_set_new(o, "phase", json_string(pier_deploy_phase_name(a->phase)));
        if (a->op == PIER_DEPLOY_UPLOAD) {
            json_object_set_new(o, "reason", json_string(pier_deploy_reason_name(a->reason)));
            meta_json(o, &a->meta);
        }
        json_array_append_new(actions, o);
    }
    json_object_set_new(root, "actions", actions);
    json_t *sum = json_object();
    json_object_set_new(
        sum, "upload",
        json_integer((json_int_t)(p->new_count + p->changed_count + p->metadata_count)));
    json_object_set_new(sum, "new", json_integer((json_int_t)p->new_count));
    json_object_set_new(sum, "changed", json_integer((json_int_t)p->changed_count));
    json_object_set_new(sum, "metadata", json_integer((json_int_t)p->metadata_count));
    json_object_set_new(sum, "delete", json_integer((json_int_t)p->delete_count));
    json_object_set_new(sum, "skip", json_integer((json_int_t)p->skip_count));
    json_object_set_new(sum, "kept", json_integer((json_int_t)p->kept_count));
    json_object_set_new(sum, "upload_bytes", json_integer((json_int_t)p->upload_bytes));
    json_object_set_new(sum, "skip_bytes", json_integer((json_int_t)p->skip_bytes));
    json_object_set_new(sum, "delete_bytes", json_integer((json_int_t)p->delete_bytes));
    json_object_set_new(root, "summary", sum);
    json_t *inv = json_object();
    json_t *paths = json_array();
    for (size_t i = 0; i < p->path_count; i++)
        json_array_append_new(paths, json_string(p->paths[i]));
    json_object_set_new(inv, "paths", paths);
    json_object_set_new(inv, "caller_reference",
                        p->path_count ? json_string(p->caller_reference) : json_null());
    json_object_set_new(root, "invalidation", inv);
    json_t *warnings = json_array();
    for (size_t i = 0; i < p->warning_count; i++)
        json_array_append_new(warnings, json_string(p->warnings[i]));
    json_object_set_new(root, "warnings", warnings);
    int rc = pier_json_write(out, root, pretty);
    json_decref(root);
    return rc;
}
