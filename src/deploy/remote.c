/*
 * remote: see remote.h.
 *
 * The state is parsed strictly where a wrong value would change a decision
 * (a sha256 that is not 64 hex digits, a negative size) and leniently
 * elsewhere (unknown members are skipped). Parsing and writing are O(n log
 * n) in the number of files (one sort); a 100,000-file manifest is about
 * 30 MB of JSON, under pier_buf's default cap.
 */
#include "deploy/remote.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"

/* ---- listing ---------------------------------------------------------------- */

pier_deploy_listing *pier_deploy_listing_new(void)
{
    return pier_calloc(1, sizeof(pier_deploy_listing));
}

/* Copies an ETag without its quotes (and a weak W/ marker), lower-cased. */
static char *clean_etag(const char *etag)
{
    if (!etag)
        return pier_strdup("");
    if (etag[0] == 'W' && etag[1] == '/')
        etag += 2;
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        etag++;
        n -= 2;
    }
    char *e = pier_strndup(etag, n);
    for (char *p = e; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return e;
}

void pier_deploy_listing_add(pier_deploy_listing *l, const char *key, uint64_t size,
                             const char *etag, int64_t last_modified)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->objects = pier_realloc(l->objects, l->cap * sizeof *l->objects);
    }
    l->objects[l->count++] =
        (pier_deploy_object){pier_strdup(key), size, clean_etag(etag), last_modified};
}

void pier_deploy_listing_free(pier_deploy_listing *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++) {
        free(l->objects[i].key);
        free(l->objects[i].etag);
    }
    free(l->objects);
    free(l);
}

/* ---- state ------------------------------------------------------------------ */

pier_deploy_state *pier_deploy_state_new(const char *deploy_id, int64_t time)
{
    pier_deploy_state *s = pier_calloc(1, sizeof *s);
    s->version = PIER_DEPLOY_STATE_VERSION;
    s->deploy_id = pier_strdup(deploy_id ? deploy_id : "");
    s->time = time;
    return s;
}

void pier_deploy_state_free(pier_deploy_state *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++) {
        free(s->files[i].key);
        free(s->files[i].etag);
        pier_deploy_meta_clear(&s->files[i].meta);
    }
    free(s->files);
    free(s->deploy_id);
    free(s);
}

pier_deploy_state_file *pier_deploy_state_add(pier_deploy_state *s, const char *key)
{
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->files = pier_realloc(s->files, s->cap * sizeof *s->files);
    }
    pier_deploy_state_file *f = &s->files[s->count++];
    memset(f, 0, sizeof *f);
    f->key = pier_strdup(key);
    return f;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const pier_deploy_state_file *)a)->key,
                  ((const pier_deploy_state_file *)b)->key);
}

static int cmp_file_ptr(const void *a, const void *b)
{
    return strcmp((*(const pier_deploy_state_file *const *)a)->key,
                  (*(const pier_deploy_state_file *const *)b)->key);
}

void pier_deploy_state_sort(pier_deploy_state *s)
{
    if (s->count)
        qsort(s->files, s->count, sizeof *s->files, cmp_file);
}

const pier_deploy_state_file *pier_deploy_state_find(const pier_deploy_state *s, const char *key)
{
    if (!s)
        return NULL;
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->files[mid].key, key);
        if (c == 0)
            return &s->files[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int pier_deploy_state_set_etag(pier_deploy_state *s, const char *key, const char *etag)
{
    pier_deploy_state_file *f = (pier_deploy_state_file *)pier_deploy_state_find(s, key);
    if (!f)
        return pier_error_set(PIER_ENOTFOUND, "%s is not in the deploy manifest", key);
    free(f->etag);
    f->etag = clean_etag(etag);
    return 0;
}

char *pier_deploy_state_key(const char *prefix)
{
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, prefix ? prefix : "");
    pier_buf_puts(&b, PIER_DEPLOY_STATE_NAME);
    return pier_buf_detach(&b);
}

static bool is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* A string member, or NULL; PIER_EINVALID (named) when present but not a
 * string. */
static int opt_string(const json_t *obj, const char *member, const char *key, const char *what,
                      const char **out)
{
    const json_t *v = json_object_get(obj, member);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return pier_error_set(PIER_EINVALID, "%s: files[\"%s\"].%s must be a string", what, key,
                              member);
    *out = json_string_value(v);
    return 0;
}

static int parse_file(pier_deploy_state *s, const char *key, const json_t *e, const char *what)
{
    if (!json_is_object(e))
        return pier_error_set(PIER_EINVALID, "%s: files[\"%s\"] must be an object", what, key);
    const char *sha = NULL, *etag = NULL, *ct = NULL, *cc = NULL, *ce = NULL;
    int rc = opt_string(e, "sha256", key, what, &sha);
    if (rc == 0)
        rc = opt_string(e, "etag", key, what, &etag);
    if (rc == 0)
        rc = opt_string(e, "content_type", key, what, &ct);
    if (rc == 0)
        rc = opt_string(e, "cache_control", key, what, &cc);
    if (rc == 0)
        rc = opt_string(e, "content_encoding", key, what, &ce);
    if (rc)
        return rc;
    if (sha && !is_hex64(sha))
        return pier_error_set(
            PIER_EINVALID, "%s: files[\"%s\"].sha256 is not 64 lower-case hex digits", what, key);
    const json_t *size = json_object_get(e, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return pier_error_set(PIER_EINVALID, "%s: files[\"%s\"].size must be a whole number", what,
                              key);
    const json_t *headers = json_object_get(e, "headers");
    if (headers && !json_is_null(headers) && !json_is_object(headers))
        return pier_error_set(PIER_EINVALID, "%s: files[\"%s\"].headers must be an object", what,
                              key);
    pier_deploy_state_file *f = pier_deploy_state_add(s, key);
    if (sha)
        memcpy(f->sha256, sha, 65);
    f->size = (uint64_t)json_integer_value(size);
    f->etag = etag ? clean_etag(etag) : NULL;
    f->meta.content_type = ct ? pier_strdup(ct) : NULL;
    f->meta.cache_control = cc ? pier_strdup(cc) : NULL;
    f->meta.content_encoding = ce ? pier_strdup(ce) : NULL;
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)headers, name, v)
    {
        if (!json_is_string(v) || pier_deploy_meta_set(&f->meta, name, json_string_value(v)) != 0)
            return pier_error_set(PIER_EINVALID,
                                  "%s: files[\"%s\"].headers[\"%s\"] is not a "
                                  "header pier can set",
                                  what, key, name);
    }
    return 0;
}

int pier_deploy_state_parse(pier_deploy_state **out, const char *text, size_t len, const char *what)
{
    *out = NULL;
    json_t *root = NULL;
    pier_deploy_state *s = NULL;
    int rc = pier_json_parse(&root, text, len, what);
    if (rc)
        goto done;
    if (!json_is_object(root)) {
        rc = pier_error_set(PIER_EINVALID, "%s: not a pier deploy manifest (expected an object)",
                            what);
        goto done;
    }
    const json_t *version = json_object_get(root, "version");
    if (!json_is_integer(version) || json_integer_value(version) != PIER_DEPLOY_STATE_VERSION) {
        rc = pier_error_set(PIER_EINVALID,
                            "%s: unsupported deploy manifest version (this pier reads version %d)",
                            what, PIER_DEPLOY_STATE_VERSION);
        goto done;
    }
    const json_t *files = json_object_get(root, "files");
    if (!json_is_object(files)) {
        rc = pier_error_set(PIER_EINVALID, "%s: \"files\" must be an object", what);
        goto done;
    }
    time_t t = 0;
    const char *time_s = pier_json_str(root, "time", NULL);
    if (time_s && pier_time_parse(time_s, &t) != 0) {
        rc = pier_error_set(PIER_EINVALID, "%s: bad \"time\" %s", what, time_s);
        goto done;
    }
    s = pier_deploy_state_new(pier_json_str(root, "deploy_id", ""), (int64_t)t);
    const char *key;
    const json_t *e;
    json_object_foreach((json_t *)files, key, e)
    {
        rc = parse_file(s, key, e, what);
        if (rc)
            goto done;
    }
    pier_deploy_state_sort(s);
    *out = s;
    s = NULL;
done:
    pier_deploy_state_free(s);
    json_decref(root);
    return rc;
}

static json_t *file_json(const pier_deploy_state_file *f)
{
    json_t *o = json_object();
    if (f->sha256[0])
        json_object_set_new(o, "sha256", json_string(f->sha256));
    json_object_set_new(o, "size", json_integer((json_int_t)f->size));
    if (f->etag)
        json_object_set_new(o, "etag", json_string(f->etag));
    if (f->meta.content_type) {
        json_object_set_new(o, "content_type", json_string(f->meta.content_type));
        if (f->meta.cache_control)
            json_object_set_new(o, "cache_control", json_string(f->meta.cache_control));
        if (f->meta.content_encoding)
            json_object_set_new(o, "content_encoding", json_string(f->meta.content_encoding));
        if (f->meta.header_count) {
            json_t *h = json_object();
            for (size_t i = 0; i < f->meta.header_count; i++)
                json_object_set_new(h, f->meta.headers[i].name,
                                    json_string(f->meta.headers[i].value));
            json_object_set_new(o, "headers", h);
        }
    }
    return o;
}

int pier_deploy_state_to_json(pier_buf *out, const pier_deploy_state *s, bool pretty)
{
    char when[32];
    pier_time_iso8601(when, sizeof when, (time_t)s->time);
    json_t *root = json_object();
    json_object_set_new(root, "version", json_integer(s->version));
    json_object_set_new(root, "deploy_id", json_string(s->deploy_id ? s->deploy_id : ""));
    json_object_set_new(root, "time", json_string(when));
    json_t *files = json_object();
    /* Byte order, whatever order the entries were added in. */
    const pier_deploy_state_file **order = pier_calloc(s->count + 1, sizeof *order);
    for (size_t i = 0; i < s->count; i++)
        order[i] = &s->files[i];
    qsort(order, s->count, sizeof *order, cmp_file_ptr);
    for (size_t i = 0; i < s->count; i++)
        json_object_set_new(files, order[i]->key, file_json(order[i]));
    free(order);
    json_object_set_new(root, "files", files);
    int rc = pier_json_write(out, root, pretty);
    json_decref(root);
    return rc;
}
