/*
 * config: see config.h. Each file is parsed once into sections of
 * (key, value) pairs, kept in file order; lookups are linear scans (a
 * config has tens of entries, not thousands). Nothing is cached across
 * loads: a new load sees edited files.
 */
#include "aws/config.h"

#include <ctype.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aws/retry.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"

typedef struct {
    char *key;   /* as written; nested ones "parent.child" */
    char *value; /* trimmed; "" for an empty value */
} kv;

typedef enum { SEC_PROFILE, SEC_SERVICES, SEC_SSO, SEC_OTHER } section_kind;

typedef struct {
    section_kind kind; /* what the header names */
    char *name;        /* the profile / services / sso-session name */
    kv *items;         /* properties in file order */
    size_t count;      /* used */
    size_t cap;        /* allocated */
} section;

typedef struct {
    char *path;        /* expanded path (NULL when no home to expand with) */
    char *display;     /* as the user names it */
    bool exists;       /* the file was there */
    section *sections; /* in file order */
    size_t count;      /* used */
    size_t cap;        /* allocated */
} ini_file;

struct pier_aws_config {
    pier_aws_getenv_fn getenv; /* the environment */
    void *getenv_ctx;          /* its context */
    char *home;                /* for "~" */
    char *profile;             /* the selected profile */
    bool explicit_profile;     /* named by the option or AWS_PROFILE */
    bool option_profile;       /* named by the option */
    ini_file config;           /* ~/.aws/config */
    ini_file credentials;      /* ~/.aws/credentials */
    int max_attempts;          /* resolved at load */
};

static const char *process_getenv(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

const char *pier_aws_config_env(const pier_aws_config *c, const char *name)
{
    const char *v = c->getenv(c->getenv_ctx, name);
    return v && *v ? v : NULL;
}

/* ---- INI parsing ---- */

static section *add_section(ini_file *f, section_kind kind, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (f->sections[i].kind == kind && strcmp(f->sections[i].name, name) == 0)
            return &f->sections[i]; /* a repeated header continues the section */
    if (f->count == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->sections = pier_realloc(f->sections, f->cap * sizeof *f->sections);
    }
    section *s = &f->sections[f->count++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->name = pier_strdup(name);
    return s;
}

static kv *find_kv(const section *s, const char *key)
{
    for (size_t i = 0; i < s->count; i++)
        if (pier_str_ieq(s->items[i].key, key))
            return &s->items[i];
    return NULL;
}

static kv *set_kv(section *s, const char *key, const char *value)
{
    kv *e = find_kv(s, key);
    if (e) { /* the later line wins */
        free(e->value);
        e->value = pier_strdup(value);
        return e;
    }
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->items = pier_realloc(s->items, s->cap * sizeof *s->items);
    }
    e = &s->items[s->count++];
    e->key = pier_strdup(key);
    e->value = pier_strdup(value);
    return e;
}

static pier_slice trim(const char *p, size_t n)
{
    return pier_slice_trim((pier_slice){p, n});
}

/* Cuts an inline comment: '#' or ';' preceded by whitespace. */
static size_t strip_inline_comment(const char *p, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if ((p[i] == '#' || p[i] == ';') && (p[i - 1] == ' ' || p[i - 1] == '\t'))
            return i;
    return n;
}

/* Classifies a section header for the config file ("profile x", "default",
 * "services x", "sso-session x") or the credentials file (any name). */
static void classify(bool config_file, pier_slice title, section_kind *kind, char **name)
{
    char *t = pier_slice_dup(title);
    *kind = SEC_OTHER;
    *name = NULL;
    if (!config_file) {
        *kind = SEC_PROFILE;
        *name = t;
        return;
    }
    static const struct {
        const char *prefix;
        section_kind kind;
    } prefixes[] = {{"profile", SEC_PROFILE}, {"services", SEC_SERVICES}, {"sso-session", SEC_SSO}};
    if (strcmp(t, "default") == 0) {
        *kind = SEC_PROFILE;
        *name = t;
        return;
    }
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i].prefix);
        if (strncmp(t, prefixes[i].prefix, n) == 0 && (t[n] == ' ' || t[n] == '\t')) {
            pier_slice rest = trim(t + n, strlen(t + n));
            if (rest.len > 0) {
                *kind = prefixes[i].kind;
                *name = pier_slice_dup(rest);
            }
            break;
        }
    }
    free(t);
}

static void parse_ini(ini_file *f, bool config_file, const char *text, size_t len)
{
    section *cur = NULL;          /* NULL: before any section, or an ignored one */
    bool in_ignored = false;      /* inside a section we do not use */
    char *parent = NULL;          /* the last key with an empty value (nested settings) */
    size_t last_index = SIZE_MAX; /* the last key set in cur (for continuations) */
    unsigned lineno = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        p = nl ? nl + 1 : end;
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        pier_slice t = trim(line, n);
        if (t.len == 0 || t.ptr[0] == '#' || t.ptr[0] == ';')
            continue;
        bool indented = line[0] == ' ' || line[0] == '\t';
        if (t.ptr[0] == '[') {
            size_t m = strip_inline_comment(t.ptr, t.len);
            pier_slice h = trim(t.ptr, m);
            if (h.len < 2 || h.ptr[h.len - 1] != ']') {
                PIER_WARN("%s:%u: section header without ']' skipped", f->display, lineno);
                cur = NULL;
                in_ignored = true;
                continue;
            }
            section_kind kind;
            char *name;
            classify(config_file, trim(h.ptr + 1, h.len - 2), &kind, &name);
            PIER_FREE(parent);
            last_index = SIZE_MAX;
            if (!name) {
                if (config_file)
                    PIER_DEBUG("%s:%u: section [%.*s] ignored (profiles are [profile NAME])",
                               f->display, lineno, (int)(h.len - 2), h.ptr + 1);
                cur = NULL;
                in_ignored = true;
                continue;
            }
            cur = add_section(f, kind, name);
            in_ignored = false;
            free(name);
            continue;
        }
        if (!cur) {
            if (!in_ignored)
                PIER_WARN("%s:%u: setting outside any section skipped", f->display, lineno);
            continue;
        }
        if (indented && parent) {
            /* nested: "  endpoint_url = ..." under "s3 =" */
            const char *eq = memchr(t.ptr, '=', t.len);
            if (!eq) {
                PIER_WARN("%s:%u: expected 'key = value' in a nested setting", f->display, lineno);
                continue;
            }
            pier_slice k = trim(t.ptr, (size_t)(eq - t.ptr));
            const char *v = eq + 1;
            size_t vn = (size_t)(t.ptr + t.len - v);
            pier_slice val = trim(v, strip_inline_comment(v, vn));
            pier_buf key = PIER_BUF_INIT;
            pier_buf_printf(&key, "%s.%.*s", parent, (int)k.len, k.ptr);
            char *vs = pier_slice_dup(val);
            set_kv(cur, pier_buf_cstr(&key), vs);
            free(vs);
            pier_buf_free(&key);
            continue;
        }
        if (indented && last_index != SIZE_MAX) {
            /* a continuation of the last value */
            kv *e = &cur->items[last_index];
            pier_buf v = PIER_BUF_INIT;
            pier_buf_printf(&v, "%s\n%.*s", e->value, (int)t.len, t.ptr);
            free(e->value);
            e->value = pier_buf_detach(&v);
            continue;
        }
        const char *eq = memchr(t.ptr, '=', t.len);
        if (!eq || eq == t.ptr) {
            PIER_WARN("%s:%u: expected 'key = value'; line skipped", f->display, lineno);
            continue;
        }
        pier_slice k = trim(t.ptr, (size_t)(eq - t.ptr));
        const char *v = eq + 1;
        size_t vn = (size_t)(t.ptr + t.len - v);
        pier_slice val = trim(v, strip_inline_comment(v, vn));
        char *ks = pier_slice_dup(k);
        char *vs = pier_slice_dup(val);
        kv *e = set_kv(cur, ks, vs);
        last_index = (size_t)(e - cur->items);
        PIER_FREE(parent);
        if (val.len == 0) {
            parent = ks;
            ks = NULL;
            last_index = SIZE_MAX;
        }
        free(ks);
        free(vs);
    }
    free(parent);
}

static void free_ini(ini_file *f)
{
    for (size_t i = 0; i < f->count; i++) {
        section *s = &f->sections[i];
        for (size_t j = 0; j < s->count; j++) {
            free(s->items[j].key);
            free(s->items[j].value);
        }
        free(s->items);
        free(s->name);
    }
    free(f->sections);
    free(f->path);
    free(f->display);
}

static int load_ini(ini_file *f, bool config_file)
{
    if (!f->path)
        return 0;
    if (pier_file_is_dir(f->path))
        return pier_error_set(PIER_EINVALID, "%s is a directory, not an AWS %s file", f->display,
                              config_file ? "config" : "credentials");
    pier_buf b;
    pier_buf_init(&b, 16 << 20);
    int rc = pier_file_read(f->path, &b);
    if (rc == PIER_ENOTFOUND) {
        pier_error_clear();
        rc = 0;
    } else if (rc == 0) {
        f->exists = true;
        parse_ini(f, config_file, b.ptr ? b.ptr : "", b.len);
    }
    pier_buf_free(&b);
    return rc;
}

static const section *find_section(const ini_file *f, section_kind kind, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (f->sections[i].kind == kind && strcmp(f->sections[i].name, name) == 0)
            return &f->sections[i];
    return NULL;
}

/* ---- loading ---- */

char *pier_aws_config_expand(const pier_aws_config *c, const char *path)
{
    if (path[0] == '~' && (path[1] == '/' || path[1] == '\0')) {
        if (!c->home)
            return NULL;
        return pier_path_join(c->home, path[1] ? path + 2 : "");
    }
    return pier_strdup(path);
}

static void setup_file(pier_aws_config *c, ini_file *f, const char *env, const char *def)
{
    const char *given = pier_aws_config_env(c, env);
    f->display = pier_strdup(given ? given : def);
    f->path = pier_aws_config_expand(c, f->display);
}

static char *find_home(pier_aws_config *c, bool injected)
{
    const char *h = pier_aws_config_env(c, "HOME");
    if (h)
        return pier_strdup(h);
    if (injected)
        return NULL;
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res && res->pw_dir)
        return pier_strdup(res->pw_dir);
    return NULL;
}

static int parse_attempts(const char *v, const char *what, int *out)
{
    uint64_t n;
    if (pier_parse_u64(v, &n) != 0 || n < 1 || n > 100)
        return pier_error_set(PIER_EINVALID, "%s: '%s' is not a number of attempts (1 to 100)",
                              what, v);
    *out = (int)n;
    return 0;
}

int pier_aws_config_load(pier_aws_config **out, const pier_aws_config_options *opts)
{
    pier_aws_config_options def = PIER_AWS_CONFIG_OPTIONS_INIT;
    if (!opts)
        opts = &def;
    *out = NULL;
    pier_aws_config *c = pier_calloc(1, sizeof *c);
    c->getenv = opts->getenv ? opts->getenv : process_getenv;
    c->getenv_ctx = opts->getenv_ctx;
    c->home = find_home(c, opts->getenv != NULL);
    const char *env_profile = pier_aws_config_env(c, "AWS_PROFILE");
    if (opts->profile && *opts->profile) {
        c->profile = pier_strdup(opts->profile);
        c->explicit_profile = c->option_profile = true;
    } else if (env_profile) {
        c->profile = pier_strdup(env_profile);
        c->explicit_profile = true;
    } else {
        c->profile = pier_strdup("default");
    }
    setup_file(c, &c->config, "AWS_CONFIG_FILE", "~/.aws/config");
    setup_file(c, &c->credentials, "AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials");
    int rc = load_ini(&c->config, true);
    if (rc == 0)
        rc = load_ini(&c->credentials, false);
    if (rc != 0)
        goto done;

    c->max_attempts = PIER_RETRY_DEFAULT_ATTEMPTS;
    const char *v = pier_aws_config_env(c, "AWS_MAX_ATTEMPTS");
    const char *where = NULL;
    if (v) {
        rc = parse_attempts(v, "AWS_MAX_ATTEMPTS", &c->max_attempts);
    } else if ((v = pier_aws_config_get(c, "max_attempts", &where)) != NULL) {
        char what[512];
        snprintf(what, sizeof what, "%s: profile %s: max_attempts", where, c->profile);
        rc = parse_attempts(v, what, &c->max_attempts);
    }
done:
    if (rc != 0) {
        pier_aws_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void pier_aws_config_free(pier_aws_config *c)
{
    if (!c)
        return;
    free_ini(&c->config);
    free_ini(&c->credentials);
    free(c->home);
    free(c->profile);
    free(c);
}

/* ---- lookups ---- */

const char *pier_aws_config_profile(const pier_aws_config *c)
{
    return c->profile;
}

bool pier_aws_config_profile_explicit(const pier_aws_config *c)
{
    return c->explicit_profile;
}

bool pier_aws_config_profile_from_option(const pier_aws_config *c)
{
    return c->option_profile;
}

bool pier_aws_config_profile_exists(const pier_aws_config *c)
{
    return find_section(&c->credentials, SEC_PROFILE, c->profile) ||
           find_section(&c->config, SEC_PROFILE, c->profile);
}

const char *pier_aws_config_get(const pier_aws_config *c, const char *key, const char **where)
{
    const ini_file *files[] = {&c->credentials, &c->config};
    for (size_t i = 0; i < 2; i++) {
        const section *s = find_section(files[i], SEC_PROFILE, c->profile);
        const kv *e = s ? find_kv(s, key) : NULL;
        if (e) {
            if (where)
                *where = files[i]->display;
            return e->value;
        }
    }
    return NULL;
}

const char *pier_aws_config_config_file(const pier_aws_config *c, bool *exists)
{
    if (exists)
        *exists = c->config.exists;
    return c->config.display;
}

const char *pier_aws_config_credentials_file(const pier_aws_config *c, bool *exists)
{
    if (exists)
        *exists = c->credentials.exists;
    return c->credentials.display;
}

const char *pier_aws_config_home(const pier_aws_config *c)
{
    return c->home;
}

const char *pier_aws_config_region(const pier_aws_config *c)
{
    const char *r = pier_aws_config_env(c, "AWS_REGION");
    if (!r)
        r = pier_aws_config_env(c, "AWS_DEFAULT_REGION");
    if (!r) {
        r = pier_aws_config_get(c, "region", NULL);
        if (r && !*r)
            r = NULL;
    }
    return r;
}

static bool is_true(const char *v)
{
    return v && pier_str_ieq(v, "true");
}

const char *pier_aws_config_endpoint(const pier_aws_config *c, const char *service_id)
{
    if (is_true(pier_aws_config_env(c, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) ||
        is_true(pier_aws_config_get(c, "ignore_configured_endpoint_urls", NULL)))
        return NULL;
    char env[128], key[128];
    int n = snprintf(env, sizeof env, "AWS_ENDPOINT_URL_");
    size_t k = 0;
    for (const char *p = service_id; *p && (size_t)n + 1 < sizeof env && k + 1 < sizeof key; p++) {
        char ch = (*p == ' ' || *p == '-') ? '_' : *p;
        env[n++] = (char)toupper((unsigned char)ch);
        key[k++] = (char)tolower((unsigned char)ch);
    }
    env[n] = '\0';
    key[k] = '\0';
    const char *v = pier_aws_config_env(c, env);
    if (!v)
        v = pier_aws_config_env(c, "AWS_ENDPOINT_URL");
    if (v)
        return v;
    const char *services = pier_aws_config_get(c, "services", NULL);
    const section *s =
        services && *services ? find_section(&c->config, SEC_SERVICES, services) : NULL;
    if (s) {
        char nested[160];
        snprintf(nested, sizeof nested, "%s.endpoint_url", key);
        const kv *e = find_kv(s, nested);
        if (e && *e->value)
            return e->value;
    }
    v = pier_aws_config_get(c, "endpoint_url", NULL);
    return v && *v ? v : NULL;
}

int pier_aws_config_max_attempts(const pier_aws_config *c)
{
    return c->max_attempts;
}
