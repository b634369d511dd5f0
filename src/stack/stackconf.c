/*
 * stackconf: see stackconf.h. The YAML tree is walked once, section by
 * section; each value goes through the setter that validates it (the edge
 * site functions, the store's bucket-name check), and a setter's message is
 * re-issued at the node's position.
 */
#include "stack/stackconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"
#include "base/yaml.h"

typedef struct {
    const pier_yaml_doc *doc; /* the file */
    pier_stackconf *c;        /* being filled */
} loader;

/* Re-issues the current error message at node n. */
static int at(const loader *l, const pier_yaml_node *n)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", pier_error_last());
    return pier_yaml_error(l->doc, n, "%s", msg);
}

static int get_string(const loader *l, const pier_yaml_node *n, char **out)
{
    const char *v;
    int rc = pier_yaml_string(l->doc, n, &v);
    if (rc == 0) {
        free(*out);
        *out = pier_strdup(v);
    }
    return rc;
}

static int get_size(const loader *l, const pier_yaml_node *n, uint64_t *out)
{
    if (!n || n->kind != PIER_YAML_SCALAR || pier_parse_size(n->value, out) != 0 || *out == 0)
        return pier_yaml_error(l->doc, n, "expected a size such as 64MiB, 8M or 1048576");
    return 0;
}

static int get_seconds(const loader *l, const pier_yaml_node *n, int64_t *out)
{
    int rc = pier_yaml_int(l->doc, n, out);
    if (rc == 0 && (*out < 0 || *out > 3153600000LL))
        return pier_yaml_error(l->doc, n, "expected a number of seconds from 0 to 3153600000");
    return rc;
}

/* An optional path setting: a string, or null/false to disable. */
static int get_optional(const loader *l, const pier_yaml_node *n, const char **out)
{
    *out = NULL;
    if (pier_yaml_is_null(n))
        return 0;
    if (n->kind == PIER_YAML_SCALAR && n->plain && strcmp(n->value, "false") == 0)
        return 0;
    return pier_yaml_string(l->doc, n, out);
}

static int load_bucket(loader *l, const pier_yaml_node *n)
{
    static const char *const keys[] = {"name", "public-read", NULL};
    if (!n || n->kind != PIER_YAML_MAP)
        return pier_yaml_error(l->doc, n, "a bucket is a mapping with name and public-read");
    int rc = pier_yaml_check_keys(l->doc, n, keys);
    if (rc)
        return rc;
    const pier_yaml_node *name = pier_yaml_get(n, "name");
    if (!name)
        return pier_yaml_error(l->doc, n, "a bucket needs a name");
    const char *v;
    if ((rc = pier_yaml_string(l->doc, name, &v)))
        return rc;
    if (!pier_store_bucket_name_ok(v))
        return pier_yaml_error(l->doc, name,
                               "bad bucket name '%s' (3 to 63 of a-z, 0-9, '.' and '-')", v);
    for (size_t i = 0; i < l->c->bucket_count; i++)
        if (strcmp(l->c->buckets[i].name, v) == 0)
            return pier_yaml_error(l->doc, name, "bucket '%s' is listed twice", v);
    pier_stackconf_bucket b = {0};
    const pier_yaml_node *pub = pier_yaml_get(n, "public-read");
    if (pub) {
        if ((rc = pier_yaml_bool(l->doc, pub, &b.public_read)))
            return rc;
        b.public_read_set = true;
    }
    b.name = pier_strdup(v);
    l->c->buckets = pier_realloc(l->c->buckets, (l->c->bucket_count + 1) * sizeof b);
    l->c->buckets[l->c->bucket_count++] = b;
    return 0;
}

static int load_rewrites(loader *l, pier_edge_site *s, const pier_yaml_node *seq)
{
    static const char *const keys[] = {"from", "to", "prefix", NULL};
    if (seq->kind != PIER_YAML_SEQ)
        return pier_yaml_error(l->doc, seq, "'rewrites' must be a list of {from, to, prefix}");
    for (size_t i = 0; i < seq->count; i++) {
        const pier_yaml_node *n = seq->items[i];
        if (n->kind != PIER_YAML_MAP)
            return pier_yaml_error(l->doc, n, "a rewrite is a mapping {from, to, prefix}");
        int rc = pier_yaml_check_keys(l->doc, n, keys);
        if (!rc && (!pier_yaml_get(n, "from") || !pier_yaml_get(n, "to")))
            rc = pier_yaml_error(l->doc, n, "a rewrite needs 'from' and 'to'");
        const char *from = NULL, *to = NULL;
        bool prefix = false;
        if (!rc)
            rc = pier_yaml_string(l->doc, pier_yaml_get(n, "from"), &from);
        if (!rc)
            rc = pier_yaml_string(l->doc, pier_yaml_get(n, "to"), &to);
        if (!rc && pier_yaml_get(n, "prefix"))
            rc = pier_yaml_bool(l->doc, pier_yaml_get(n, "prefix"), &prefix);
        if (rc)
            return rc;
        if (pier_edge_site_add_rewrite(s, from, to, prefix))
            return at(l, n);
    }
    return 0;
}

static int load_redirects(loader *l, pier_edge_site *s, const pier_yaml_node *seq)
{
    static const char *const keys[] = {"from", "to", "status", "prefix", NULL};
    if (seq->kind != PIER_YAML_SEQ)
        return pier_yaml_error(l->doc, seq,
                               "'redirects' must be a list of {from, to, status, prefix}");
    for (size_t i = 0; i < seq->count; i++) {
        const pier_yaml_node *n = seq->items[i];
        if (n->kind != PIER_YAML_MAP)
            return pier_yaml_error(l->doc, n, "a redirect is a mapping {from, to, status, prefix}");
        int rc = pier_yaml_check_keys(l->doc, n, keys);
        if (!rc && (!pier_yaml_get(n, "from") || !pier_yaml_get(n, "to")))
            rc = pier_yaml_error(l->doc, n, "a redirect needs 'from' and 'to'");
        const char *from = NULL, *to = NULL;
        bool prefix = false;
        int64_t status = 301;
        if (!rc)
            rc = pier_yaml_string(l->doc, pier_yaml_get(n, "from"), &from);
        if (!rc)
            rc = pier_yaml_string(l->doc, pier_yaml_get(n, "to"), &to);
        if (!rc && pier_yaml_get(n, "prefix"))
            rc = pier_yaml_bool(l->doc, pier_yaml_get(n, "prefix"), &prefix);
        if (!rc && pier_yaml_get(n, "status"))
            rc = pier_yaml_int(l->doc, pier_yaml_get(n, "status"), &status);
        if (rc)
            return rc;
        if (status < 0 || status > 999 ||
            pier_edge_site_add_redirect(s, from, to, (unsigned)status, prefix))
            return status < 0 || status > 999
                       ? pier_yaml_error(l->doc, pier_yaml_get(n, "status"), "bad status")
                       : at(l, n);
    }
    return 0;
}

static int load_headers(loader *l, pier_edge_site *s, const pier_yaml_node *seq)
{
    static const char *const keys[] = {"match", "set", NULL};
    if (seq->kind != PIER_YAML_SEQ)
        return pier_yaml_error(l->doc, seq, "'headers' must be a list of {match, set}");
    for (size_t i = 0; i < seq->count; i++) {
        const pier_yaml_node *n = seq->items[i];
        if (n->kind != PIER_YAML_MAP)
            return pier_yaml_error(l->doc, n, "a header rule is a mapping {match, set}");
        int rc = pier_yaml_check_keys(l->doc, n, keys);
        if (rc)
            return rc;
        const pier_yaml_node *m = pier_yaml_get(n, "match"), *set = pier_yaml_get(n, "set");
        if (!m)
            return pier_yaml_error(l->doc, n, "missing 'match' (a glob or a list of globs)");
        if (!set || set->kind != PIER_YAML_MAP || set->count == 0)
            return pier_yaml_error(l->doc, set ? set : n,
                                   "'set' must be a mapping of header names to values");
        const char **globs = NULL;
        size_t glob_count = 0;
        if ((rc = pier_yaml_strings(l->doc, m, &globs, &glob_count)))
            return rc;
        pier_edge_header *h = pier_calloc(set->count, sizeof *h);
        for (size_t j = 0; j < set->count && !rc; j++) {
            const char *v;
            rc = pier_yaml_string(l->doc, set->items[j], &v);
            h[j].name = (char *)set->keys[j]->value;
            h[j].value = (char *)v;
        }
        if (!rc && glob_count == 0)
            rc = pier_yaml_error(l->doc, m, "'match' needs at least one glob");
        if (!rc && pier_edge_site_add_headers(s, globs, glob_count, h, set->count))
            rc = at(l, n);
        free(h);
        free(globs);
        if (rc)
            return rc;
    }
    return 0;
}

static int load_rules(loader *l, pier_edge_site *s, const pier_yaml_node *n)
{
    static const char *const keys[] = {"index",     "spa-fallback", "not-found", "rewrites",
                                       "redirects", "headers",      NULL};
    if (pier_yaml_is_null(n))
        return 0;
    if (n->kind != PIER_YAML_MAP)
        return pier_yaml_error(l->doc, n, "'rules' must be a mapping");
    int rc = pier_yaml_check_keys(l->doc, n, keys);
    if (rc)
        return rc;
    const pier_yaml_node *v;
    const char *str;
    if ((v = pier_yaml_get(n, "index"))) {
        if ((rc = get_optional(l, v, &str)))
            return rc;
        if (pier_edge_site_set_index(s, str))
            return at(l, v);
    }
    if ((v = pier_yaml_get(n, "spa-fallback"))) {
        if ((rc = get_optional(l, v, &str)))
            return rc;
        if (pier_edge_site_set_spa_fallback(s, str))
            return at(l, v);
    }
    if ((v = pier_yaml_get(n, "not-found"))) {
        if ((rc = get_optional(l, v, &str)))
            return rc;
        if (pier_edge_site_set_not_found(s, str))
            return at(l, v);
    }
    if ((v = pier_yaml_get(n, "rewrites")) && !pier_yaml_is_null(v) &&
        (rc = load_rewrites(l, s, v)))
        return rc;
    if ((v = pier_yaml_get(n, "redirects")) && !pier_yaml_is_null(v) &&
        (rc = load_redirects(l, s, v)))
        return rc;
    if ((v = pier_yaml_get(n, "headers")) && !pier_yaml_is_null(v) && (rc = load_headers(l, s, v)))
        return rc;
    return 0;
}

static int load_site_fields(loader *l, pier_edge_site *s, const pier_yaml_node *n)
{
    int rc = 0;
    const pier_yaml_node *v;
    const pier_yaml_node *host = pier_yaml_get(n, "host"), *hosts = pier_yaml_get(n, "hosts");
    if (host && hosts)
        return pier_yaml_error(l->doc, hosts, "give either 'host' or 'hosts', not both");
    if (!host && !hosts)
        return pier_yaml_error(
            l->doc, n, "distribution %s needs a host (or hosts; \"*\" serves any Host)", s->id);
    const char **list = NULL;
    size_t count = 0;
    if ((rc = pier_yaml_strings(l->doc, host ? host : hosts, &list, &count)))
        return rc;
    for (size_t i = 0; i < count && !rc; i++)
        if (pier_edge_site_add_host(s, list[i]))
            rc = at(l, host ? host : hosts->items[i]);
    free(list);
    if (rc)
        return rc;
    if (count == 0)
        return pier_yaml_error(l->doc, hosts, "'hosts' needs at least one name");
    if ((v = pier_yaml_get(n, "prefix")) && !pier_yaml_is_null(v)) {
        const char *p;
        if ((rc = pier_yaml_string(l->doc, v, &p)))
            return rc;
        if (pier_edge_site_set_prefix(s, p))
            return at(l, v);
    }
    if ((v = pier_yaml_get(n, "min-ttl")) && (rc = get_seconds(l, v, &s->ttl.min_ttl)))
        return rc;
    if ((v = pier_yaml_get(n, "default-ttl")) && (rc = get_seconds(l, v, &s->ttl.default_ttl)))
        return rc;
    if ((v = pier_yaml_get(n, "max-ttl")) && (rc = get_seconds(l, v, &s->ttl.max_ttl)))
        return rc;
    if (s->ttl.min_ttl > s->ttl.default_ttl || s->ttl.default_ttl > s->ttl.max_ttl)
        return pier_yaml_error(l->doc, n,
                               "distribution %s: TTLs must satisfy min-ttl <= default-ttl <= "
                               "max-ttl",
                               s->id);
    return load_rules(l, s, pier_yaml_get(n, "rules"));
}

static int load_site(loader *l, const pier_yaml_node *n)
{
    static const char *const keys[] = {"id",      "host",        "hosts",   "bucket", "prefix",
                                       "min-ttl", "default-ttl", "max-ttl", "rules",  NULL};
    if (!n || n->kind != PIER_YAML_MAP)
        return pier_yaml_error(l->doc, n, "a distribution is a mapping (id, host, bucket, rules)");
    int rc = pier_yaml_check_keys(l->doc, n, keys);
    if (rc)
        return rc;
    const pier_yaml_node *idn = pier_yaml_get(n, "id"), *bn = pier_yaml_get(n, "bucket");
    if (!idn)
        return pier_yaml_error(l->doc, n, "a distribution needs an id (e.g. EDEV0000000001)");
    if (!bn)
        return pier_yaml_error(l->doc, n, "a distribution needs a bucket");
    const char *id, *bucket;
    if ((rc = pier_yaml_string(l->doc, idn, &id)) || (rc = pier_yaml_string(l->doc, bn, &bucket)))
        return rc;
    if (!pier_edge_id_ok(id))
        return pier_yaml_error(l->doc, idn,
                               "distribution id '%s': expected 'E' and 9 to 19 upper-case "
                               "letters and digits (e.g. EDEV0000000001)",
                               id);
    for (size_t i = 0; i < l->c->site_count; i++)
        if (strcmp(l->c->sites[i]->id, id) == 0)
            return pier_yaml_error(l->doc, idn, "distribution %s is defined twice", id);
    pier_edge_site *s = NULL;
    if (pier_edge_site_new(&s, id, bucket))
        return at(l, bn);
    if ((rc = load_site_fields(l, s, n))) {
        pier_edge_site_free(s);
        return rc;
    }
    for (size_t i = 0; i < l->c->site_count; i++)
        for (size_t j = 0; j < l->c->sites[i]->host_count; j++)
            for (size_t k = 0; k < s->host_count; k++)
                if (strcmp(l->c->sites[i]->hosts[j], s->hosts[k]) == 0) {
                    rc = pier_yaml_error(l->doc, n, "host '%s' is already served by %s",
                                         s->hosts[k], l->c->sites[i]->id);
                    pier_edge_site_free(s);
                    return rc;
                }
    l->c->sites = pier_realloc(l->c->sites, (l->c->site_count + 1) * sizeof *l->c->sites);
    l->c->sites[l->c->site_count++] = s;
    return 0;
}

static int load_list(loader *l, const pier_yaml_node *seq, const char *what,
                     int (*each)(loader *, const pier_yaml_node *))
{
    if (pier_yaml_is_null(seq))
        return 0;
    if (seq->kind != PIER_YAML_SEQ)
        return pier_yaml_error(l->doc, seq, "'%s' must be a list", what);
    for (size_t i = 0; i < seq->count; i++) {
        int rc = each(l, seq->items[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int load_doc(loader *l)
{
    static const char *const top[] = {"api-listen", "edge-listen",   "edge",
                                      "buckets",    "distributions", NULL};
    static const char *const edge_keys[] = {"cache-size", "cache-object-max", NULL};
    const pier_yaml_node *root = pier_yaml_root(l->doc);
    if (!root)
        return 0; /* an empty file: all defaults */
    if (root->kind != PIER_YAML_MAP)
        return pier_yaml_error(l->doc, root,
                               "the stack config is a mapping (api-listen, edge-listen, edge, "
                               "buckets, distributions)");
    int rc = pier_yaml_check_keys(l->doc, root, top);
    const pier_yaml_node *v;
    if (!rc && (v = pier_yaml_get(root, "api-listen")) && !pier_yaml_is_null(v))
        rc = get_string(l, v, &l->c->api_listen);
    if (!rc && (v = pier_yaml_get(root, "edge-listen")) && !pier_yaml_is_null(v))
        rc = get_string(l, v, &l->c->edge_listen);
    if (!rc && (v = pier_yaml_get(root, "edge")) && !pier_yaml_is_null(v)) {
        if (v->kind != PIER_YAML_MAP)
            return pier_yaml_error(l->doc, v, "'edge' must be a mapping");
        rc = pier_yaml_check_keys(l->doc, v, edge_keys);
        const pier_yaml_node *x;
        if (!rc && (x = pier_yaml_get(v, "cache-size")))
            rc = get_size(l, x, &l->c->cache_bytes);
        if (!rc && (x = pier_yaml_get(v, "cache-object-max")))
            rc = get_size(l, x, &l->c->cache_object_max);
    }
    if (!rc)
        rc = load_list(l, pier_yaml_get(root, "buckets"), "buckets", load_bucket);
    if (!rc)
        rc = load_list(l, pier_yaml_get(root, "distributions"), "distributions", load_site);
    return rc;
}

static int finish(pier_stackconf **out, pier_yaml_doc *doc, const char *name, int rc)
{
    pier_stackconf *c = NULL;
    if (rc == 0) {
        c = pier_calloc(1, sizeof *c);
        c->path = pier_strdup(name);
        loader l = {doc, c};
        rc = load_doc(&l);
    }
    pier_yaml_free(doc);
    if (rc) {
        pier_stackconf_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int pier_stackconf_load_file(pier_stackconf **out, const char *path)
{
    *out = NULL;
    pier_yaml_doc *doc = NULL;
    int rc = pier_yaml_load_file(&doc, path);
    return finish(out, doc, path, rc);
}

int pier_stackconf_load_string(pier_stackconf **out, const char *name, const char *text, size_t len)
{
    *out = NULL;
    pier_yaml_doc *doc = NULL;
    int rc = pier_yaml_load_string(&doc, name, text, len);
    return finish(out, doc, name, rc);
}

void pier_stackconf_free(pier_stackconf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->bucket_count; i++)
        free(c->buckets[i].name);
    free(c->buckets);
    for (size_t i = 0; i < c->site_count; i++)
        pier_edge_site_free(c->sites[i]);
    free(c->sites);
    free(c->path);
    free(c->api_listen);
    free(c->edge_listen);
    free(c);
}
