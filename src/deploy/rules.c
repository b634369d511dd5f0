/*
 * rules: see rules.h.
 *
 * Loading validates everything up front (glob syntax, header names and
 * values, rewrite paths), into a scratch rules set that is merged into the
 * caller's only when the whole document is valid, so a bad file never
 * leaves half its rules behind. Resolving a path walks the rules in order:
 * O(rules x glob cost) per file, no allocation beyond the result.
 */
#include "deploy/rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "base/glob.h"
#include "base/mem.h"
#include "base/mime.h"
#include "base/str.h"

/* Headers an S3 object stores and serves back, besides Cache-Control. */
static const char *const object_headers[] = {
    "Content-Type",
    "Content-Encoding",
    "Content-Language",
    "Content-Disposition",
    "Expires",
    "x-amz-website-redirect-location",
    NULL,
};

static void free_globs(char **globs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(globs[i]);
    free(globs);
}

static void free_headers(pier_deploy_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

static void clear_rules(pier_deploy_rules *r)
{
    for (size_t i = 0; i < r->cache_count; i++) {
        free_globs(r->cache[i].globs, r->cache[i].glob_count);
        free(r->cache[i].cache_control);
    }
    free(r->cache);
    for (size_t i = 0; i < r->header_count; i++) {
        free_globs(r->headers[i].globs, r->headers[i].glob_count);
        free_headers(r->headers[i].set, r->headers[i].set_count);
    }
    free(r->headers);
    for (size_t i = 0; i < r->rewrite_count; i++) {
        free(r->rewrites[i].from);
        free(r->rewrites[i].to);
    }
    free(r->rewrites);
    free(r->default_html);
    free(r->default_hashed);
    free(r->default_other);
    memset(r, 0, sizeof *r);
}

pier_deploy_rules *pier_deploy_rules_new(void)
{
    pier_deploy_rules *r = pier_calloc(1, sizeof *r);
    r->default_html = pier_strdup(PIER_DEPLOY_CACHE_HTML);
    r->default_hashed = pier_strdup(PIER_DEPLOY_CACHE_HASHED);
    r->default_other = pier_strdup(PIER_DEPLOY_CACHE_OTHER);
    return r;
}

void pier_deploy_rules_free(pier_deploy_rules *r)
{
    if (!r)
        return;
    clear_rules(r);
    free(r);
}

/* ---- validation ---------------------------------------------------------- */

/* A header value must fit on one line: no control characters but tab, and
 * UTF-8. */
static bool value_ok(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return pier_utf8_valid(v);
}

static bool token_ok(const char *name)
{
    if (!name[0])
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

/* The canonical spelling of a header S3 can store, or NULL. x-amz-meta-*
 * names are lower-cased, as S3 stores them. The result is malloc'ed. */
static char *canonical_header(const char *name)
{
    if (!token_ok(name))
        return NULL;
    for (size_t i = 0; object_headers[i]; i++)
        if (strcasecmp(name, object_headers[i]) == 0)
            return pier_strdup(object_headers[i]);
    if (strncasecmp(name, "x-amz-meta-", 11) == 0 && name[11]) {
        char *c = pier_strdup(name);
        for (char *p = c; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        return c;
    }
    return NULL;
}

/* Checks a header for a rule; on success *canon is the malloc'ed name. The
 * message (without position) goes into msg. */
static int check_header(const char *name, const char *value, char **canon, char *msg,
                        size_t msg_size)
{
    *canon = NULL;
    if (strcasecmp(name, "Cache-Control") == 0) {
        snprintf(msg, msg_size, "Cache-Control is set by a cache rule, not a header rule");
        return PIER_EINVALID;
    }
    char *c = canonical_header(name);
    if (!c) {
        snprintf(msg, msg_size,
                 "header '%s' cannot be stored on an S3 object (use Content-Type, "
                 "Content-Encoding, Content-Language, Content-Disposition, Expires, "
                 "x-amz-website-redirect-location or x-amz-meta-*)",
                 name);
        return PIER_EINVALID;
    }
    if (!value_ok(value) || !value[0]) {
        free(c);
        snprintf(msg, msg_size, "header '%s' needs a one-line, non-empty value", name);
        return PIER_EINVALID;
    }
    *canon = c;
    return 0;
}

static int check_path(const char *what, const char *p, char *msg, size_t msg_size)
{
    if (p[0] != '/') {
        snprintf(msg, msg_size, "%s '%s' must start with '/'", what, p);
        return PIER_EINVALID;
    }
    for (const unsigned char *c = (const unsigned char *)p; *c; c++) {
        if (*c <= 0x20 || *c == 0x7f || *c == '?' || *c == '#') {
            snprintf(msg, msg_size,
                     "%s '%s' must be a plain path (no spaces, control characters, '?' or '#'; "
                     "write the characters themselves, not %%-escapes)",
                     what, p);
            return PIER_EINVALID;
        }
    }
    if (!pier_utf8_valid(p)) {
        snprintf(msg, msg_size, "%s must be UTF-8", what);
        return PIER_EINVALID;
    }
    return 0;
}

/* ---- building ------------------------------------------------------------- */

static char *strip_slash(const char *glob)
{
    return pier_strdup(glob[0] == '/' ? glob + 1 : glob);
}

static void push_cache(pier_deploy_rules *r, char **globs, size_t n, const char *value)
{
    r->cache = pier_realloc(r->cache, (r->cache_count + 1) * sizeof *r->cache);
    r->cache[r->cache_count++] = (pier_deploy_cache_rule){globs, n, pier_strdup(value)};
}

static void push_rewrite(pier_deploy_rules *r, const char *from, const char *to, bool prefix)
{
    r->rewrites = pier_realloc(r->rewrites, (r->rewrite_count + 1) * sizeof *r->rewrites);
    r->rewrites[r->rewrite_count++] =
        (pier_deploy_rewrite){pier_strdup(from), pier_strdup(to), prefix};
}

int pier_deploy_rules_add_cache(pier_deploy_rules *r, const char *glob, const char *cache_control)
{
    int rc = pier_glob_validate(glob);
    if (rc)
        return rc;
    if (!cache_control[0] || !value_ok(cache_control))
        return pier_error_set(
            PIER_EINVALID, "cache rule for '%s' needs a one-line, non-empty Cache-Control", glob);
    char **globs = pier_malloc(sizeof *globs);
    globs[0] = strip_slash(glob);
    push_cache(r, globs, 1, cache_control);
    return 0;
}

int pier_deploy_rules_add_header(pier_deploy_rules *r, const char *glob, const char *name,
                                 const char *value)
{
    int rc = pier_glob_validate(glob);
    if (rc)
        return rc;
    char msg[512], *canon = NULL;
    if (check_header(name, value, &canon, msg, sizeof msg))
        return pier_error_set(PIER_EINVALID, "%s", msg);
    pier_deploy_header_rule h = {pier_malloc(sizeof(char *)), 1, pier_malloc(sizeof *h.set), 1};
    h.globs[0] = strip_slash(glob);
    h.set[0] = (pier_deploy_header){canon, pier_strdup(value)};
    r->headers = pier_realloc(r->headers, (r->header_count + 1) * sizeof *r->headers);
    r->headers[r->header_count++] = h;
    return 0;
}

int pier_deploy_rules_add_rewrite(pier_deploy_rules *r, const char *from, const char *to,
                                  bool prefix)
{
    char msg[512];
    if (check_path("rewrite source", from, msg, sizeof msg) ||
        check_path("rewrite target", to, msg, sizeof msg))
        return pier_error_set(PIER_EINVALID, "%s", msg);
    if (pier_str_ends_with(to, "/"))
        return pier_error_set(PIER_EINVALID,
                              "rewrite target '%s' must name a file (e.g. %sindex.html)", to, to);
    push_rewrite(r, from, to, prefix);
    return 0;
}

/* ---- the YAML form ------------------------------------------------------- */

/* Reads `match` (a glob or a list) into a malloc'ed array of copies. */
static int read_globs(const pier_yaml_doc *doc, const pier_yaml_node *entry, char ***out,
                      size_t *count)
{
    *out = NULL;
    *count = 0;
    const pier_yaml_node *m = pier_yaml_get(entry, "match");
    if (!m)
        return pier_yaml_error(doc, entry, "missing 'match' (a glob or a list of globs)");
    const char **list = NULL;
    size_t n = 0;
    int rc = pier_yaml_strings(doc, m, &list, &n);
    if (rc)
        return rc;
    if (n == 0) {
        free(list);
        return pier_yaml_error(doc, m, "'match' needs at least one glob");
    }
    char **globs = pier_calloc(n, sizeof *globs);
    for (size_t i = 0; i < n; i++) {
        const pier_yaml_node *at = m->kind == PIER_YAML_SEQ ? m->items[i] : m;
        if (!list[i][0] || pier_glob_validate(list[i]) != 0) {
            rc = pier_yaml_error(doc, at, "bad glob '%s'%s%s", list[i], list[i][0] ? ": " : "",
                                 list[i][0] ? pier_error_last() : "");
            free_globs(globs, i);
            free(list);
            return rc;
        }
        globs[i] = strip_slash(list[i]);
    }
    free(list);
    *out = globs;
    *count = n;
    return 0;
}

static int read_string(const pier_yaml_doc *doc, const pier_yaml_node *map, const char *key,
                       const char **out)
{
    const pier_yaml_node *n = pier_yaml_get(map, key);
    if (!n || pier_yaml_is_null(n))
        return pier_yaml_error(doc, n ? n : map, "missing '%s'", key);
    int rc = pier_yaml_string(doc, n, out);
    if (rc)
        return rc;
    if (!(*out)[0] || !value_ok(*out))
        return pier_yaml_error(doc, n, "'%s' needs a one-line, non-empty value", key);
    return 0;
}

static int load_cache(pier_deploy_rules *r, const pier_yaml_doc *doc, const pier_yaml_node *seq)
{
    static const char *const keys[] = {"match", "cache-control", NULL};
    if (seq->kind != PIER_YAML_SEQ)
        return pier_yaml_error(doc, seq, "'cache' must be a list of {match, cache-control}");
    for (size_t i = 0; i < seq->count; i++) {
        const pier_yaml_node *e = seq->items[i];
        int rc = pier_yaml_check_keys(doc, e, keys);
        const char *value = NULL;
        if (rc == 0)
            rc = read_string(doc, e, "cache-control", &value);
        char **globs = NULL;
        size_t n = 0;
        if (rc == 0)
            rc = read_globs(doc, e, &globs, &n);
        if (rc)
            return rc;
        push_cache(r, globs, n, value);
    }
    return 0;
}

static int cmp_header(const void *a, const void *b)
{
    return strcasecmp(((const pier_deploy_header *)a)->name, ((const pier_deploy_header *)b)->name);
}

static int load_headers(pier_deploy_rules *r, const pier_yaml_doc *doc, const pier_yaml_node *seq)
{
    static const char *const keys[] = {"match", "set", NULL};
    if (seq->kind != PIER_YAML_SEQ)
        return pier_yaml_error(doc, seq, "'headers' must be a list of {match, set}");
    for (size_t i = 0; i < seq->count; i++) {
        const pier_yaml_node *e = seq->items[i];
        int rc = pier_yaml_check_keys(doc, e, keys);
        if (rc)
            return rc;
        const pier_yaml_node *set = pier_yaml_get(e, "set");
        if (!set || set->kind != PIER_YAML_MAP || set->count == 0)
            return pier_yaml_error(doc, set ? set : e,
                                   "'set' must be a mapping of header names to values");
        pier_deploy_header_rule h = {NULL, 0, pier_calloc(set->count, sizeof *h.set), 0};
        for (size_t k = 0; k < set->count; k++) {
            const char *value = NULL;
            char msg[512], *canon = NULL;
            rc = pier_yaml_string(doc, set->items[k], &value);
            if (rc == 0 && check_header(set->keys[k]->value, value, &canon, msg, sizeof msg))
                rc = pier_yaml_error(doc, set->keys[k], "%s", msg);
            for (size_t j = 0; rc == 0 && j < h.set_count; j++)
                if (strcmp(h.set[j].name, canon) == 0)
                    rc = pier_yaml_error(doc, set->keys[k], "header '%s' is set twice", canon);
            if (rc) {
                free(canon);
                free_headers(h.set, h.set_count);
                return rc;
            }
            h.set[h.set_count++] = (pier_deploy_header){canon, pier_strdup(value)};
        }
        qsort(h.set, h.set_count, sizeof *h.set, cmp_header);
        rc = read_globs(doc, e, &h.globs, &h.glob_count);
        if (rc) {
            free_headers(h.set, h.set_count);
            return rc;
        }
        r->headers = pier_realloc(r->headers, (r->header_count + 1) * sizeof *r->headers);
        r->headers[r->header_count++] = h;
    }
    return 0;
}

static int load_rewrites(pier_deploy_rules *r, const pier_yaml_doc *doc, const pier_yaml_node *seq)
{
    static const char *const keys[] = {"from", "to", "prefix", NULL};
    if (seq->kind != PIER_YAML_SEQ)
        return pier_yaml_error(doc, seq, "'rewrites' must be a list of {from, to, prefix}");
    for (size_t i = 0; i < seq->count; i++) {
        const pier_yaml_node *e = seq->items[i];
        const char *from = NULL, *to = NULL;
        bool prefix = false;
        char msg[512];
        int rc = pier_yaml_check_keys(doc, e, keys);
        if (rc == 0)
            rc = read_string(doc, e, "from", &from);
        if (rc == 0)
            rc = read_string(doc, e, "to", &to);
        if (rc == 0 && pier_yaml_get(e, "prefix"))
            rc = pier_yaml_bool(doc, pier_yaml_get(e, "prefix"), &prefix);
        if (rc)
            return rc;
        if (check_path("rewrite source", from, msg, sizeof msg))
            return pier_yaml_error(doc, pier_yaml_get(e, "from"), "%s", msg);
        if (check_path("rewrite target", to, msg, sizeof msg))
            return pier_yaml_error(doc, pier_yaml_get(e, "to"), "%s", msg);
        if (pier_str_ends_with(to, "/"))
            return pier_yaml_error(doc, pier_yaml_get(e, "to"),
                                   "rewrite target '%s' must name a file (e.g. %sindex.html)", to,
                                   to);
        push_rewrite(r, from, to, prefix);
    }
    return 0;
}

static int load_defaults(pier_deploy_rules *r, const pier_yaml_doc *doc, const pier_yaml_node *map)
{
    static const char *const keys[] = {"html", "hashed", "other", NULL};
    int rc = pier_yaml_check_keys(doc, map, keys);
    if (rc)
        return rc;
    char **slots[] = {&r->default_html, &r->default_hashed, &r->default_other};
    for (size_t i = 0; i < 3; i++) {
        if (!pier_yaml_get(map, keys[i]))
            continue;
        const char *v = NULL;
        rc = read_string(doc, map, keys[i], &v);
        if (rc)
            return rc;
        free(*slots[i]);
        *slots[i] = pier_strdup(v);
    }
    return 0;
}

/* Appends n elements of size from src to the array *dst of *count. */
static void append_array(void **dst, size_t *count, const void *src, size_t n, size_t size)
{
    if (n == 0)
        return;
    *dst = pier_realloc(*dst, (*count + n) * size);
    memcpy((char *)*dst + *count * size, src, n * size);
    *count += n;
}

/* Moves the rules of src to the end of dst; src is left empty. */
static void merge(pier_deploy_rules *dst, pier_deploy_rules *src)
{
    append_array((void **)&dst->cache, &dst->cache_count, src->cache, src->cache_count,
                 sizeof *src->cache);
    src->cache_count = 0;
    append_array((void **)&dst->headers, &dst->header_count, src->headers, src->header_count,
                 sizeof *src->headers);
    src->header_count = 0;
    append_array((void **)&dst->rewrites, &dst->rewrite_count, src->rewrites, src->rewrite_count,
                 sizeof *src->rewrites);
    src->rewrite_count = 0;
    char **from[] = {&src->default_html, &src->default_hashed, &src->default_other};
    char **to[] = {&dst->default_html, &dst->default_hashed, &dst->default_other};
    for (size_t i = 0; i < 3; i++) {
        if (*from[i]) {
            free(*to[i]);
            *to[i] = *from[i];
            *from[i] = NULL;
        }
    }
}

int pier_deploy_rules_load_yaml(pier_deploy_rules *r, const pier_yaml_doc *doc,
                                const pier_yaml_node *node)
{
    static const char *const keys[] = {"defaults", "cache", "headers", "rewrites", NULL};
    if (!node || pier_yaml_is_null(node))
        return 0;
    pier_deploy_rules scratch;
    memset(&scratch, 0, sizeof scratch); /* defaults stay NULL: only set ones replace */
    int rc = pier_yaml_check_keys(doc, node, keys);
    const pier_yaml_node *n;
    if (rc == 0 && (n = pier_yaml_get(node, "defaults")) && !pier_yaml_is_null(n))
        rc = load_defaults(&scratch, doc, n);
    if (rc == 0 && (n = pier_yaml_get(node, "cache")) && !pier_yaml_is_null(n))
        rc = load_cache(&scratch, doc, n);
    if (rc == 0 && (n = pier_yaml_get(node, "headers")) && !pier_yaml_is_null(n))
        rc = load_headers(&scratch, doc, n);
    if (rc == 0 && (n = pier_yaml_get(node, "rewrites")) && !pier_yaml_is_null(n))
        rc = load_rewrites(&scratch, doc, n);
    if (rc == 0)
        merge(r, &scratch);
    clear_rules(&scratch);
    return rc;
}

static int load_doc(pier_deploy_rules *r, pier_yaml_doc *doc)
{
    const pier_yaml_node *root = pier_yaml_root(doc);
    if (root && root->kind != PIER_YAML_MAP)
        return pier_yaml_error(doc, root,
                               "a rules file is a mapping of defaults, cache, headers, rewrites");
    return pier_deploy_rules_load_yaml(r, doc, root);
}

int pier_deploy_rules_load_file(pier_deploy_rules *r, const char *path)
{
    pier_yaml_doc *doc = NULL;
    int rc = pier_yaml_load_file(&doc, path);
    if (rc == 0)
        rc = load_doc(r, doc);
    pier_yaml_free(doc);
    return rc;
}

int pier_deploy_rules_load_string(pier_deploy_rules *r, const char *name, const char *text,
                                  size_t len)
{
    pier_yaml_doc *doc = NULL;
    int rc = pier_yaml_load_string(&doc, name, text, len);
    if (rc == 0)
        rc = load_doc(r, doc);
    pier_yaml_free(doc);
    return rc;
}

/* ---- resolving ------------------------------------------------------------ */

static bool any_glob(char *const *globs, size_t n, const char *rel)
{
    for (size_t i = 0; i < n; i++)
        if (pier_glob_match(globs[i], rel))
            return true;
    return false;
}

bool pier_deploy_is_html_type(const char *ct)
{
    if (!ct)
        return false;
    size_t n = strcspn(ct, "; \t");
    return (n == 9 && strncasecmp(ct, "text/html", 9) == 0) ||
           (n == 21 && strncasecmp(ct, "application/xhtml+xml", 21) == 0);
}

void pier_deploy_rules_resolve(const pier_deploy_rules *r, const char *rel, pier_deploy_meta *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; r && i < r->header_count; i++) {
        const pier_deploy_header_rule *h = &r->headers[i];
        if (!any_glob(h->globs, h->glob_count, rel))
            continue;
        for (size_t k = 0; k < h->set_count; k++) {
            const char *name = h->set[k].name;
            bool taken = false;
            if (strcmp(name, "Content-Type") == 0)
                taken = out->content_type != NULL;
            else if (strcmp(name, "Content-Encoding") == 0)
                taken = out->content_encoding != NULL;
            for (size_t j = 0; j < out->header_count && !taken; j++)
                taken = strcasecmp(out->headers[j].name, name) == 0;
            if (!taken)
                pier_deploy_meta_set(out, name, h->set[k].value);
        }
    }
    if (!out->content_type) {
        char ct[256];
        pier_mime_content_type(ct, sizeof ct, rel);
        out->content_type = pier_strdup(ct);
    }
    for (size_t i = 0; r && i < r->cache_count; i++) {
        if (any_glob(r->cache[i].globs, r->cache[i].glob_count, rel)) {
            out->cache_control = pier_strdup(r->cache[i].cache_control);
            return;
        }
    }
    const char *html = r ? r->default_html : PIER_DEPLOY_CACHE_HTML;
    const char *hashed = r ? r->default_hashed : PIER_DEPLOY_CACHE_HASHED;
    const char *other = r ? r->default_other : PIER_DEPLOY_CACHE_OTHER;
    if (pier_deploy_is_html_type(out->content_type))
        out->cache_control = pier_strdup(html);
    else if (pier_deploy_is_hashed_name(rel))
        out->cache_control = pier_strdup(hashed);
    else
        out->cache_control = pier_strdup(other);
}

const char *pier_deploy_rules_rewrite(const pier_deploy_rules *r, const char *path, bool exists)
{
    for (size_t i = 0; r && i < r->rewrite_count; i++) {
        const pier_deploy_rewrite *w = &r->rewrites[i];
        if (!w->prefix && strcmp(path, w->from) == 0)
            return w->to;
        if (w->prefix && !exists && pier_str_starts_with(path, w->from))
            return w->to;
    }
    return NULL;
}

/* ---- the hashed-name heuristic -------------------------------------------- */

static bool is_sep(char c)
{
    return c == '.' || c == '-' || c == '_';
}

/* 8+ hex digits of one case, with at least one digit and one letter (so
 * dates like 20240101 and words like "deadbeef" are not hashes). */
static bool hex_hash(const char *s, size_t n)
{
    if (n < 8 || n > 128)
        return false;
    bool digit = false, lower = false, upper = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9')
            digit = true;
        else if (c >= 'a' && c <= 'f')
            lower = true;
        else if (c >= 'A' && c <= 'F')
            upper = true;
        else
            return false;
    }
    return digit && (lower != upper);
}

/* 8+ base64url characters with an upper-case letter and a digit, and no
 * run of 4+ lower-case letters (which reads as a word: "Primary2"). */
static bool b64_hash(const char *s, size_t n)
{
    if (n < 8 || n > 128)
        return false;
    bool digit = false, upper = false;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'a' && c <= 'z') {
            if (++run >= 4)
                return false;
            continue;
        }
        run = 0;
        if (c >= '0' && c <= '9')
            digit = true;
        else if (c >= 'A' && c <= 'Z')
            upper = true;
        else if (c != '-' && c != '_')
            return false;
    }
    return digit && upper;
}

bool pier_deploy_is_hashed_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    const char *dot = strrchr(name, '.');
    size_t len = dot && dot != name ? (size_t)(dot - name) : strlen(name);
    /* Segments separated by '.', '-', '_'. */
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && !is_sep(name[i]))
            continue;
        size_t n = i - start;
        if (hex_hash(name + start, n))
            return true;
        if (start > 0 && b64_hash(name + start, n))
            return true;
        start = i + 1;
    }
    /* Rollup's [name]-[hash] with an 8-character base64url hash, which may
     * itself hold '-' or '_'. */
    if (len > 9 && (name[len - 9] == '-' || name[len - 9] == '.') && b64_hash(name + len - 8, 8))
        return true;
    return false;
}

/* ---- meta ------------------------------------------------------------------ */

void pier_deploy_meta_clear(pier_deploy_meta *m)
{
    if (!m)
        return;
    free(m->content_type);
    free(m->cache_control);
    free(m->content_encoding);
    free_headers(m->headers, m->header_count);
    memset(m, 0, sizeof *m);
}

static char *dup_or_null(const char *s)
{
    return s ? pier_strdup(s) : NULL;
}

void pier_deploy_meta_copy(pier_deploy_meta *dst, const pier_deploy_meta *src)
{
    dst->content_type = dup_or_null(src->content_type);
    dst->cache_control = dup_or_null(src->cache_control);
    dst->content_encoding = dup_or_null(src->content_encoding);
    dst->header_count = src->header_count;
    dst->headers = src->header_count ? pier_calloc(src->header_count, sizeof *dst->headers) : NULL;
    for (size_t i = 0; i < src->header_count; i++) {
        dst->headers[i].name = pier_strdup(src->headers[i].name);
        dst->headers[i].value = pier_strdup(src->headers[i].value);
    }
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool pier_deploy_meta_equal(const pier_deploy_meta *a, const pier_deploy_meta *b)
{
    if (!str_eq(a->content_type, b->content_type) || !str_eq(a->cache_control, b->cache_control) ||
        !str_eq(a->content_encoding, b->content_encoding) || a->header_count != b->header_count)
        return false;
    for (size_t i = 0; i < a->header_count; i++)
        if (strcasecmp(a->headers[i].name, b->headers[i].name) != 0 ||
            strcmp(a->headers[i].value, b->headers[i].value) != 0)
            return false;
    return true;
}

int pier_deploy_meta_set(pier_deploy_meta *m, const char *name, const char *value)
{
    char msg[512], *canon = NULL;
    if (check_header(name, value, &canon, msg, sizeof msg))
        return pier_error_set(PIER_EINVALID, "%s", msg);
    if (strcmp(canon, "Content-Type") == 0 || strcmp(canon, "Content-Encoding") == 0) {
        char **slot = canon[8] == 'T' ? &m->content_type : &m->content_encoding;
        free(*slot);
        *slot = pier_strdup(value);
        free(canon);
        return 0;
    }
    size_t i = 0;
    while (i < m->header_count && strcasecmp(m->headers[i].name, canon) < 0)
        i++;
    if (i < m->header_count && strcasecmp(m->headers[i].name, canon) == 0) {
        free(canon);
        free(m->headers[i].value);
        m->headers[i].value = pier_strdup(value);
        return 0;
    }
    m->headers = pier_realloc(m->headers, (m->header_count + 1) * sizeof *m->headers);
    memmove(m->headers + i + 1, m->headers + i, (m->header_count - i) * sizeof *m->headers);
    m->headers[i] = (pier_deploy_header){canon, pier_strdup(value)};
    m->header_count++;
    return 0;
}
