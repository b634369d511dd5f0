/*
 * pipeconf: pier.yml parsing and validation (see pipeconf.h for the format).
 *
 * One pass over the YAML tree per pipeline: each section is checked for
 * unknown keys, typed, and defaulted. Errors come from pier_yaml_error so
 * they carry the node's position. Costs: linear in the document.
 */
#include "pipeline/pipeconf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/glob.h"
#include "base/mem.h"
#include "base/str.h"
#include "deploy/rules.h"

int pier_pipeconf_parse_duration(const char *s, unsigned long long *ms)
{
    if (!s || !*s)
        return pier_error_set(PIER_EINVALID, "empty duration");
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || s[0] == '-')
        return pier_error_set(PIER_EINVALID, "bad duration '%s' (e.g. 500ms, 10s, 5m, 1h)", s);
    unsigned long long mul;
    if (*end == 0 || strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else if (strcmp(end, "h") == 0)
        mul = 3600000;
    else
        return pier_error_set(PIER_EINVALID, "bad duration '%s' (e.g. 500ms, 10s, 5m, 1h)", s);
    if (v > ULLONG_MAX / mul / 2)
        return pier_error_set(PIER_EINVALID, "duration '%s' is too long", s);
    *ms = v * mul;
    return 0;
}

/* Keeps every array the parser allocates, for pier_pipeconf_free. */
typedef struct {
    pier_pipeconf *c;   /* being built */
    pier_yaml_doc *doc; /* its document */
} parser;

static int get_string(parser *p, const pier_yaml_node *map, const char *key, const char **out)
{
    const pier_yaml_node *n = pier_yaml_get(map, key);
    if (pier_yaml_is_null(n))
        return 0;
    return pier_yaml_string(p->doc, n, out);
}

static int get_duration(parser *p, const pier_yaml_node *map, const char *key,
                        unsigned long long *ms)
{
    const pier_yaml_node *n = pier_yaml_get(map, key);
    if (pier_yaml_is_null(n))
        return 0;
    const char *s = NULL;
    if (pier_yaml_string(p->doc, n, &s) != 0)
        return PIER_EINVALID;
    if (pier_pipeconf_parse_duration(s, ms) != 0)
        return pier_yaml_error(p->doc, n, "%s: %s", key, pier_error_last());
    return 0;
}

static int get_bool(parser *p, const pier_yaml_node *map, const char *key, bool *out)
{
    const pier_yaml_node *n = pier_yaml_get(map, key);
    if (pier_yaml_is_null(n))
        return 0;
    return pier_yaml_bool(p->doc, n, out);
}

static int check_map(parser *p, const pier_yaml_node *n, const char *what,
                     const char *const *allowed)
{
    if (!n || n->kind != PIER_YAML_MAP)
        return pier_yaml_error(p->doc, n, "%s must be a mapping", what);
    return pier_yaml_check_keys(p->doc, n, allowed);
}

static char *resolve_path(const char *dir, const char *path)
{
    if (path[0] == '/')
        return pier_strdup(path);
    return pier_path_join(dir, path);
}

static bool looks_like_url(const char *s)
{
    return strstr(s, "://") != NULL || (strchr(s, '@') && strchr(s, ':'));
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 40 || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return true;
}

static int globs(parser *p, const pier_yaml_node *map, const char *key, const char ***out,
                 size_t *count)
{
    const pier_yaml_node *n = pier_yaml_get(map, key);
    if (pier_yaml_is_null(n))
        return 0;
    if (pier_yaml_strings(p->doc, n, out, count) != 0)
        return PIER_EINVALID;
    for (size_t i = 0; i < *count; i++) {
        if (pier_glob_validate((*out)[i]) != 0)
            return pier_yaml_error(p->doc, n->kind == PIER_YAML_SEQ ? n->items[i] : n, "%s: %s",
                                   key, pier_error_last());
    }
    return 0;
}

static int parse_source(parser *p, pier_pipeconf_pipeline *pl, const pier_yaml_node *n)
{
    static const char *const keys[] = {"repo", "branch", "paths", "exclude", "trigger", NULL};
    static const char *const tkeys[] = {"poll", "webhook", NULL};
    static const char *const wkeys[] = {"provider", "secret-env", "secret-file", NULL};
    if (check_map(p, n, "source", keys) != 0)
        return PIER_EINVALID;
    const char *repo = NULL;
    if (get_string(p, n, "repo", &repo) != 0 || get_string(p, n, "branch", &pl->branch) != 0)
        return PIER_EINVALID;
    if (!repo)
        return pier_yaml_error(p->doc, n, "source: repo is required (a path or a URL)");
    pl->repo = looks_like_url(repo) ? pier_strdup(repo) : resolve_path(p->c->dir, repo);
    if (globs(p, n, "paths", &pl->paths, &pl->path_count) != 0 ||
        globs(p, n, "exclude", &pl->exclude, &pl->exclude_count) != 0)
        return PIER_EINVALID;
    const pier_yaml_node *t = pier_yaml_get(n, "trigger");
    if (pier_yaml_is_null(t)) {
        pl->poll_ms = 10000;
        return 0;
    }
    if (check_map(p, t, "source.trigger", tkeys) != 0)
        return PIER_EINVALID;
    unsigned long long ms = 0;
    if (get_duration(p, t, "poll", &ms) != 0)
        return PIER_EINVALID;
    if (ms > 0 && ms < 100)
        return pier_yaml_error(p->doc, pier_yaml_get(t, "poll"), "trigger.poll: at least 100ms");
    pl->poll_ms = (unsigned)(ms > 86400000ULL ? 86400000ULL : ms);
    const pier_yaml_node *w = pier_yaml_get(t, "webhook");
    if (w && w->kind == PIER_YAML_SCALAR) {
        bool on = false;
        if (pier_yaml_bool(p->doc, w, &on) != 0)
            return PIER_EINVALID;
        pl->webhook = on;
    } else if (!pier_yaml_is_null(w)) {
        if (check_map(p, w, "trigger.webhook", wkeys) != 0)
            return PIER_EINVALID;
        pl->webhook = true;
        const char *file = NULL;
        if (get_string(p, w, "provider", &pl->webhook_provider) != 0 ||
            get_string(p, w, "secret-env", &pl->webhook_secret_env) != 0 ||
            get_string(p, w, "secret-file", &file) != 0)
            return PIER_EINVALID;
        if (pl->webhook_provider && strcmp(pl->webhook_provider, "github") != 0 &&
            strcmp(pl->webhook_provider, "gitlab") != 0 &&
            strcmp(pl->webhook_provider, "gitea") != 0)
            return pier_yaml_error(p->doc, pier_yaml_get(w, "provider"),
                                   "webhook.provider must be github, gitlab or gitea");
        if (pl->webhook_secret_env && file)
            return pier_yaml_error(p->doc, w, "webhook: give secret-env or secret-file, not both");
        if (file)
            pl->webhook_secret_file = resolve_path(p->c->dir, file);
    }
    return 0;
}

static int parse_secret_file(parser *p, const pier_yaml_node *n, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return pier_yaml_error(p->doc, n, "secret file %s: %s", path, strerror(errno));
    if ((st.st_mode & 077) != 0)
        return pier_yaml_error(p->doc, n,
                               "secret file %s has mode %04o: it must be 0600 or stricter "
                               "(chmod 600 %s)",
                               path, (unsigned)(st.st_mode & 07777), path);
    return 0;
}

static int parse_build(parser *p, pier_pipeconf_pipeline *pl, const pier_yaml_node *n)
{
    static const char *const keys[] = {"buildspec",          "env",     "secrets",
                                       "allow-in-artifacts", "timeout", NULL};
    static const char *const skeys[] = {"env", "file", NULL};
    if (check_map(p, n, "build", keys) != 0)
        return PIER_EINVALID;
    if (get_string(p, n, "buildspec", &pl->buildspec) != 0)
        return PIER_EINVALID;
    unsigned long long ms = 0;
    if (get_duration(p, n, "timeout", &ms) != 0)
        return PIER_EINVALID;
    pl->timeout_sec = (unsigned)(ms / 1000 > 86400 ? 86400 : (ms + 999) / 1000);
    const pier_yaml_node *e = pier_yaml_get(n, "env");
    if (!pier_yaml_is_null(e)) {
        if (e->kind != PIER_YAML_MAP)
            return pier_yaml_error(p->doc, e, "build.env must be a mapping NAME: value");
        pl->env = pier_calloc(e->count ? e->count : 1, sizeof *pl->env);
        for (size_t i = 0; i < e->count; i++) {
            if (e->items[i]->kind != PIER_YAML_SCALAR)
                return pier_yaml_error(p->doc, e->items[i], "build.env.%s must be a scalar",
                                       e->keys[i]->value);
            pl->env[i].name = e->keys[i]->value;
            pl->env[i].value = e->items[i]->value ? e->items[i]->value : "";
            pl->env_count++;
        }
    }
    const pier_yaml_node *s = pier_yaml_get(n, "secrets");
    if (!pier_yaml_is_null(s)) {
        if (s->kind != PIER_YAML_MAP)
            return pier_yaml_error(p->doc, s,
                                   "build.secrets must be a mapping NAME: {env: VAR} or "
                                   "NAME: {file: PATH} (values are never written inline)");
        pl->secrets = pier_calloc(s->count ? s->count : 1, sizeof *pl->secrets);
        for (size_t i = 0; i < s->count; i++) {
            const pier_yaml_node *v = s->items[i];
            pier_pipeconf_secret *sec = &pl->secrets[pl->secret_count++];
            sec->name = s->keys[i]->value;
            if (!v || v->kind != PIER_YAML_MAP)
                return pier_yaml_error(p->doc, v,
                                       "secret %s: give {env: VAR} or {file: PATH}; a secret's "
                                       "value is never written in pier.yml",
                                       sec->name);
            if (pier_yaml_check_keys(p->doc, v, skeys) != 0)
                return PIER_EINVALID;
            const char *file = NULL;
            if (get_string(p, v, "env", &sec->env) != 0 || get_string(p, v, "file", &file) != 0)
                return PIER_EINVALID;
            if ((sec->env != NULL) == (file != NULL))
                return pier_yaml_error(p->doc, v, "secret %s: give exactly one of env or file",
                                       sec->name);
            if (file) {
                sec->file = resolve_path(p->c->dir, file);
                if (parse_secret_file(p, pier_yaml_get(v, "file"), sec->file) != 0)
                    return PIER_EINVALID;
            }
        }
    }
    const pier_yaml_node *a = pier_yaml_get(n, "allow-in-artifacts");
    if (!pier_yaml_is_null(a)) {
        const char **names = NULL;
        size_t count = 0;
        if (pier_yaml_strings(p->doc, a, &names, &count) != 0)
            return PIER_EINVALID;
        for (size_t i = 0; i < count; i++) {
            size_t j = 0;
            for (; j < pl->secret_count; j++)
                if (strcmp(pl->secrets[j].name, names[i]) == 0)
                    break;
            if (j == pl->secret_count) {
                int rc = pier_yaml_error(p->doc, a->kind == PIER_YAML_SEQ ? a->items[i] : a,
                                         "allow-in-artifacts: %s is not a secret of this build",
                                         names[i]);
                free(names);
                return rc;
            }
            pl->secrets[j].allow_in_artifacts = true;
        }
        free(names);
    }
    return 0;
}

static int parse_actions(parser *p, pier_pipeconf_pipeline *pl, const pier_yaml_node *n)
{
    static const char *const keys[] = {"name", "command", "user-parameters", "timeout", NULL};
    if (n->kind != PIER_YAML_SEQ)
        return pier_yaml_error(p->doc, n, "actions must be a list");
    pl->actions = pier_calloc(n->count ? n->count : 1, sizeof *pl->actions);
    for (size_t i = 0; i < n->count; i++) {
        const pier_yaml_node *a = n->items[i];
        pier_pipeconf_action *ac = &pl->actions[pl->action_count++];
        if (check_map(p, a, "an action", keys) != 0)
            return PIER_EINVALID;
        unsigned long long ms = 0;
        if (get_string(p, a, "name", &ac->name) != 0 ||
            get_string(p, a, "command", &ac->command) != 0 ||
            get_string(p, a, "user-parameters", &ac->user_parameters) != 0 ||
            get_duration(p, a, "timeout", &ms) != 0)
            return PIER_EINVALID;
        if (!ac->name || !ac->command)
            return pier_yaml_error(p->doc, a, "an action needs a name and a command");
        ac->timeout_sec = (unsigned)((ms + 999) / 1000);
    }
    return 0;
}

/* "E" + the name's letters and digits (15 at most) + "PIER", padded with
 * '0' to 14 characters: a CloudFront-shaped id (E + 9..19), as the edge
 * requires. */
static void default_distribution(pier_buf *b, const char *name)
{
    pier_buf_putc(b, 'E');
    size_t n = 0;
    for (const char *s = name; *s && n < 15; s++)
        if (isalnum((unsigned char)*s)) {
            pier_buf_putc(b, (char)toupper((unsigned char)*s));
            n++;
        }
    pier_buf_puts(b, "PIER");
    while (b->len < 14)
        pier_buf_putc(b, '0');
}

/* Strings the defaults make live as long as the config, in a list. */
typedef struct owned {
    struct owned *next; /* next */
    char text[];        /* the string */
} owned;

/* The config's private tail: the owned-string list. Every pier_pipeconf is
 * allocated as one of these. */
typedef struct {
    pier_pipeconf pub; /* what callers see */
    owned *strings;    /* defaults made up at load */
} pipeconf_full;

static const char *keep(pier_pipeconf *c, const char *s)
{
    pipeconf_full *f = (pipeconf_full *)(void *)c;
    size_t n = strlen(s);
    owned *o = pier_malloc(sizeof *o + n + 1);
    memcpy(o->text, s, n + 1);
    o->next = f->strings;
    f->strings = o;
    return o->text;
}

static int parse_pipeline(parser *p, pier_pipeconf_pipeline *pl, const pier_yaml_node *n)
{
    static const char *const keys[] = {"name",    "source", "build",  "deploy", "cdn",
                                       "actions", "site",   "stages", NULL};
    static const char *const dkeys[] = {"bucket", "prefix", "rules", NULL};
    static const char *const ckeys[] = {"distribution", "host", NULL};
    static const char *const stkeys[] = {"deploy", "invalidate", "actions", NULL};
    if (check_map(p, n, "a pipeline", keys) != 0)
        return PIER_EINVALID;
    pl->line = n->line;
    pl->stage_deploy = pl->stage_invalidate = pl->stage_actions = true;
    if (get_string(p, n, "name", &pl->name) != 0)
        return PIER_EINVALID;
    if (!pl->name)
        return pier_yaml_error(p->doc, n, "a pipeline needs a name");
    if (!name_ok(pl->name))
        return pier_yaml_error(p->doc, pier_yaml_get(n, "name"),
                               "pipeline name '%s': use 1 to 40 of a-z, 0-9 and '-'", pl->name);
    for (size_t i = 0; i < p->c->count; i++)
        if (strcmp(p->c->pipelines[i].name, pl->name) == 0)
            return pier_yaml_error(p->doc, pier_yaml_get(n, "name"),
                                   "pipeline '%s' is defined twice (first at line %zu)", pl->name,
                                   p->c->pipelines[i].line);
    const pier_yaml_node *src = pier_yaml_get(n, "source");
    if (pier_yaml_is_null(src))
        return pier_yaml_error(p->doc, n, "pipeline %s: source is required", pl->name);
    if (parse_source(p, pl, src) != 0)
        return PIER_EINVALID;
    if (!pl->branch)
        pl->branch = "main";
    const pier_yaml_node *b = pier_yaml_get(n, "build");
    if (!pier_yaml_is_null(b) && parse_build(p, pl, b) != 0)
        return PIER_EINVALID;
    if (!pl->buildspec)
        pl->buildspec = "buildspec.yml";
    const pier_yaml_node *d = pier_yaml_get(n, "deploy");
    if (!pier_yaml_is_null(d)) {
        const char *rules = NULL;
        if (check_map(p, d, "deploy", dkeys) != 0 || get_string(p, d, "bucket", &pl->bucket) != 0 ||
            get_string(p, d, "prefix", &pl->prefix) != 0 || get_string(p, d, "rules", &rules) != 0)
            return PIER_EINVALID;
        if (rules) {
            pl->rules_file = resolve_path(p->c->dir, rules);
            pier_deploy_rules *r = pier_deploy_rules_new();
            int rc = pier_deploy_rules_load_file(r, pl->rules_file);
            pier_deploy_rules_free(r);
            if (rc != 0)
                return pier_yaml_error(p->doc, pier_yaml_get(d, "rules"), "deploy.rules: %s",
                                       pier_error_last());
        }
    }
    if (!pl->bucket)
        pl->bucket = pl->name;
    if (!pl->prefix)
        pl->prefix = "";
    if (strlen(pl->bucket) < 3 || strlen(pl->bucket) > 63)
        return pier_yaml_error(p->doc, d ? pier_yaml_get(d, "bucket") : n,
                               "bucket '%s' must have 3 to 63 characters (set deploy.bucket)",
                               pl->bucket);
    const pier_yaml_node *c = pier_yaml_get(n, "cdn");
    if (!pier_yaml_is_null(c)) {
        if (check_map(p, c, "cdn", ckeys) != 0 ||
            get_string(p, c, "distribution", &pl->distribution) != 0 ||
            get_string(p, c, "host", &pl->host) != 0)
            return PIER_EINVALID;
    }
    pier_buf tmp;
    pier_buf_init(&tmp, 256);
    if (!pl->distribution) {
        default_distribution(&tmp, pl->name);
        pl->distribution = keep(p->c, pier_buf_cstr(&tmp));
        pier_buf_reset(&tmp);
    }
    if (!pl->host) {
        pier_buf_printf(&tmp, "%s.localhost", pl->name);
        pl->host = keep(p->c, pier_buf_cstr(&tmp));
    }
    pier_buf_free(&tmp);
    const pier_yaml_node *a = pier_yaml_get(n, "actions");
    if (!pier_yaml_is_null(a) && parse_actions(p, pl, a) != 0)
        return PIER_EINVALID;
    const pier_yaml_node *site = pier_yaml_get(n, "site");
    if (!pier_yaml_is_null(site)) {
        pier_deploy_rules *r = pier_deploy_rules_new();
        int rc = pier_deploy_rules_load_yaml(r, p->doc, site);
        pier_deploy_rules_free(r);
        if (rc != 0)
            return rc;
        pl->site = site;
    }
    const pier_yaml_node *st = pier_yaml_get(n, "stages");
    if (!pier_yaml_is_null(st)) {
        if (check_map(p, st, "stages", stkeys) != 0 ||
            get_bool(p, st, "deploy", &pl->stage_deploy) != 0 ||
            get_bool(p, st, "invalidate", &pl->stage_invalidate) != 0 ||
            get_bool(p, st, "actions", &pl->stage_actions) != 0)
            return PIER_EINVALID;
    }
    return 0;
}

static int parse_doc(pier_pipeconf *c)
{
    static const char *const keys[] = {"version", "pipelines", NULL};
    parser p = {c, c->doc};
    const pier_yaml_node *root = pier_yaml_root(c->doc);
    if (!root)
        return pier_yaml_error(c->doc, NULL, "empty file: expected 'pipelines:'");
    if (check_map(&p, root, "the document", keys) != 0)
        return PIER_EINVALID;
    const pier_yaml_node *v = pier_yaml_get(root, "version");
    if (!pier_yaml_is_null(v)) {
        int64_t ver = 0;
        if (pier_yaml_int(c->doc, v, &ver) != 0)
            return PIER_EINVALID;
        if (ver != 1)
            return pier_yaml_error(c->doc, v, "version %lld is not supported (use 1)",
                                   (long long)ver);
    }
    const pier_yaml_node *ps = pier_yaml_get(root, "pipelines");
    if (!ps || ps->kind != PIER_YAML_SEQ || ps->count == 0)
        return pier_yaml_error(c->doc, ps ? ps : root,
                               "pipelines: a list of at least one pipeline");
    c->pipelines = pier_calloc(ps->count, sizeof *c->pipelines);
    for (size_t i = 0; i < ps->count; i++) {
        if (parse_pipeline(&p, &c->pipelines[i], ps->items[i]) != 0) {
            c->count = i + 1;
            return PIER_EINVALID;
        }
        c->count = i + 1;
    }
    for (size_t i = 0; i < c->count; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->pipelines[i].host, c->pipelines[j].host) == 0)
                return pier_yaml_error(
                    c->doc, ps->items[i], "pipelines %s and %s serve the same host %s",
                    c->pipelines[j].name, c->pipelines[i].name, c->pipelines[i].host);
    return 0;
}

static int finish(pier_pipeconf **out, pipeconf_full *f, int rc)
{
    if (rc == 0)
        rc = parse_doc(&f->pub);
    if (rc != 0) {
        pier_pipeconf_free(&f->pub);
        return rc;
    }
    *out = &f->pub;
    return 0;
}

static char *abs_dir_of(const char *path)
{
    char *copy = pier_strdup(path);
    char *slash = strrchr(copy, '/');
    const char *dir = ".";
    if (slash) {
        *slash = 0;
        dir = copy[0] ? copy : "/";
    }
    char buf[PATH_MAX];
    char *res = realpath(dir, buf) ? pier_strdup(buf) : pier_strdup(dir);
    free(copy);
    return res;
}

int pier_pipeconf_load(pier_pipeconf **out, const char *path)
{
    *out = NULL;
    pipeconf_full *f = pier_calloc(1, sizeof *f);
    f->pub.path = pier_strdup(path);
    f->pub.dir = abs_dir_of(path);
    int rc = pier_yaml_load_file(&f->pub.doc, path);
    return finish(out, f, rc);
}

int pier_pipeconf_load_string(pier_pipeconf **out, const char *name, const char *dir,
                              const char *text, size_t len)
{
    *out = NULL;
    pipeconf_full *f = pier_calloc(1, sizeof *f);
    f->pub.path = pier_strdup(name);
    f->pub.dir = pier_strdup(dir ? dir : ".");
    int rc = pier_yaml_load_string(&f->pub.doc, name, text, len);
    return finish(out, f, rc);
}

void pier_pipeconf_free(pier_pipeconf *c)
{
    if (!c)
        return;
    pipeconf_full *f = (pipeconf_full *)(void *)c;
    for (size_t i = 0; i < c->count; i++) {
        pier_pipeconf_pipeline *pl = &c->pipelines[i];
        free(pl->repo);
        free(pl->paths);
        free(pl->exclude);
        free(pl->webhook_secret_file);
        free(pl->env);
        for (size_t j = 0; j < pl->secret_count; j++)
            free(pl->secrets[j].file);
        free(pl->secrets);
        free(pl->rules_file);
        free(pl->actions);
    }
    free(c->pipelines);
    for (owned *o = f->strings; o;) {
        owned *next = o->next;
        free(o);
        o = next;
    }
    pier_yaml_free(c->doc);
    free(c->path);
    free(c->dir);
    free(f);
}

const pier_pipeconf_pipeline *pier_pipeconf_find(const pier_pipeconf *c, const char *name)
{
    for (size_t i = 0; c && name && i < c->count; i++)
        if (strcmp(c->pipelines[i].name, name) == 0)
            return &c->pipelines[i];
    return NULL;
}
