/*
 * buildspec: see buildspec.h.
 *
 * The YAML tree is walked once, section by section, each by a small static
 * parser that checks its keys against the list CodeBuild documents and
 * copies pointers to the tree's strings into the spec (the tree stays owned
 * by the spec). Checks that need the machine (run-as names the current user)
 * happen here too, so the error can point at the line. Cost: linear in the
 * size of the document.
 */
#include "build/buildspec.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/glob.h"
#include "base/mem.h"

typedef struct {
    pier_buildspec *spec;     /* being filled */
    const pier_yaml_doc *doc; /* for positioned errors */
} parser;

static const char *const phase_names[PIER_PHASE_COUNT] = {"install", "pre_build", "build",
                                                          "post_build"};
static const char *const phase_types[PIER_PHASE_COUNT] = {"INSTALL", "PRE_BUILD", "BUILD",
                                                          "POST_BUILD"};

const char *pier_buildspec_phase_name(pier_phase_id phase)
{
    return phase >= 0 && phase < PIER_PHASE_COUNT ? phase_names[phase] : "?";
}

const char *pier_buildspec_phase_type(pier_phase_id phase)
{
    return phase >= 0 && phase < PIER_PHASE_COUNT ? phase_types[phase] : "?";
}

static void warn(parser *p, const pier_yaml_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records "file:line:column: message" for the runner to log. */
static void warn(parser *p, const pier_yaml_node *n, const char *fmt, ...)
{
    pier_buf b;
    pier_buf_init(&b, 4096);
    pier_buf_printf(&b, "%s:%zu:%zu: ", pier_yaml_name(p->doc), n ? n->line : 1, n ? n->column : 1);
    va_list ap;
    va_start(ap, fmt);
    pier_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    pier_buildspec *s = p->spec;
    s->warnings = pier_realloc(s->warnings, (s->warning_count + 1) * sizeof *s->warnings);
    s->warnings[s->warning_count++] = pier_buf_detach(&b);
}

static bool is_scalar(const pier_yaml_node *n)
{
    return n && n->kind == PIER_YAML_SCALAR;
}

/* A string value; a null (`key:` with nothing) is refused as missing. */
static int get_string(parser *p, const pier_yaml_node *n, const char *what, const char **out)
{
    if (!is_scalar(n) || pier_yaml_is_null(n))
        return pier_yaml_error(p->doc, n, "%s must be a string", what);
    *out = n->value;
    return 0;
}

/* yes/no/true/false, as CodeBuild takes them. */
static int get_bool(parser *p, const pier_yaml_node *n, const char *what, bool *out)
{
    if (pier_yaml_bool(p->doc, n, out) != 0)
        return pier_yaml_error(p->doc, n, "%s must be yes or no (or true or false)", what);
    return 0;
}

static bool valid_env_name(const char *s)
{
    if (!s[0] || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '_'))
            return false;
    return true;
}

/* The key node of name in map (for errors that point at the key). */
static const pier_yaml_node *key_node(const pier_yaml_node *map, const char *name)
{
    for (size_t i = 0; i < map->count; i++)
        if (strcmp(map->keys[i]->value, name) == 0)
            return map->keys[i];
    return map;
}

/* A mapping of NAME: scalar, as env/variables, parameter-store,
 * secrets-manager and runtime-versions use. Numbers and booleans stay as
 * the text written; an empty value is "". */
static int parse_vars(parser *p, const pier_yaml_node *map, const char *section, bool env_names,
                      pier_buildspec_var **out, size_t *count)
{
    if (pier_yaml_is_null(map))
        return 0;
    if (map->kind != PIER_YAML_MAP)
        return pier_yaml_error(p->doc, map, "%s must be a mapping of NAME: value", section);
    pier_buildspec_var *v = pier_calloc(map->count ? map->count : 1, sizeof *v);
    *out = v;
    *count = map->count;
    for (size_t i = 0; i < map->count; i++) {
        const pier_yaml_node *k = map->keys[i], *val = map->items[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(map->keys[j]->value, k->value) == 0)
                return pier_yaml_error(p->doc, k, "%s: duplicate name '%s'", section, k->value);
        if (env_names && !valid_env_name(k->value))
            return pier_yaml_error(p->doc, k,
                                   "%s: '%s' is not a valid environment variable name "
                                   "(letters, digits and _, not starting with a digit)",
                                   section, k->value);
        if (!is_scalar(val))
            return pier_yaml_error(p->doc, val,
                                   "%s: the value of '%s' must be a string or a number, "
                                   "found %s",
                                   section, k->value,
                                   val->kind == PIER_YAML_SEQ ? "a list" : "a mapping");
        v[i].name = k->value;
        v[i].value = pier_yaml_is_null(val) ? "" : val->value;
        v[i].line = k->line;
        if (env_names && strncmp(k->value, "CODEBUILD_", 10) == 0)
            warn(p, k,
                 "%s: '%s' uses the reserved prefix CODEBUILD_; pier's own value takes "
                 "precedence",
                 section, k->value);
    }
    return 0;
}

/* A list of strings (a single string is a list of one). */
static int parse_strings(parser *p, const pier_yaml_node *n, const char *what, const char ***out,
                         size_t *count)
{
    if (!n || pier_yaml_is_null(n))
        return pier_yaml_error(p->doc, n, "%s must be a list of strings", what);
    if (pier_yaml_strings(p->doc, n, out, count) != 0)
        return pier_yaml_error(p->doc, n, "%s must be a list of strings", what);
    return 0;
}

static int parse_commands(parser *p, const pier_yaml_node *n, const char *what,
                          pier_buildspec_command **out, size_t *count)
{
    if (pier_yaml_is_null(n))
        return 0;
    if (is_scalar(n)) {
        pier_buildspec_command *c = pier_calloc(1, sizeof *c);
        c->text = n->value;
        c->line = n->line;
        *out = c;
        *count = 1;
        return 0;
    }
    if (n->kind != PIER_YAML_SEQ)
        return pier_yaml_error(p->doc, n, "%s must be a list of commands", what);
    pier_buildspec_command *c = pier_calloc(n->count ? n->count : 1, sizeof *c);
    *out = c;
    *count = n->count;
    for (size_t i = 0; i < n->count; i++) {
        const pier_yaml_node *item = n->items[i];
        if (item->kind == PIER_YAML_MAP)
            return pier_yaml_error(p->doc, item,
                                   "%s: a command must be a string, found a mapping (a ': ' "
                                   "inside a command makes YAML read a key; quote the command)",
                                   what);
        if (!is_scalar(item))
            return pier_yaml_error(p->doc, item, "%s: a command must be a string, found a list",
                                   what);
        c[i].text = item->value;
        c[i].line = item->line;
    }
    return 0;
}

static const char *current_user(char *buf, size_t size)
{
    struct passwd pw, *res = NULL;
    char tmp[4096];
    if (getpwuid_r(geteuid(), &pw, tmp, sizeof tmp, &res) == 0 && res) {
        snprintf(buf, size, "%s", res->pw_name);
        return buf;
    }
    snprintf(buf, size, "%u", (unsigned)geteuid());
    return buf;
}

/* run-as: only the user pier runs as can be honoured (pier does not switch
 * users); naming that user is accepted. */
static int parse_run_as(parser *p, const pier_yaml_node *n)
{
    const char *user = NULL;
    int rc = get_string(p, n, "run-as", &user);
    if (rc)
        return rc;
    char me[256];
    current_user(me, sizeof me);
    if (strcmp(user, me) != 0)
        return pier_yaml_error(p->doc, n,
                               "run-as '%s' is not supported: pier runs build commands as the "
                               "user running pier ('%s'); remove run-as or run pier as '%s'",
                               user, me, user);
    return 0;
}

static int parse_shell(parser *p, const pier_yaml_node *n)
{
    const char *sh = NULL;
    int rc = get_string(p, n, "env/shell", &sh);
    if (rc)
        return rc;
    if (strcmp(sh, "powershell.exe") == 0 || strcmp(sh, "cmd.exe") == 0 ||
        strcmp(sh, "pwsh.exe") == 0)
        return pier_yaml_error(p->doc, n,
                               "env/shell '%s' is a Windows shell; pier runs Linux builds "
                               "(use bash or /bin/sh)",
                               sh);
    if (strcmp(sh, "bash") != 0 && strcmp(sh, "sh") != 0 && sh[0] != '/')
        return pier_yaml_error(p->doc, n,
                               "env/shell '%s' is not supported (expected bash, /bin/sh or an "
                               "absolute path to a POSIX shell)",
                               sh);
    p->spec->shell = sh;
    return 0;
}

static int parse_env(parser *p, const pier_yaml_node *env)
{
    static const char *const keys[] = {"shell",
                                       "variables",
                                       "parameter-store",
                                       "secrets-manager",
                                       "exported-variables",
                                       "git-credential-helper",
                                       NULL};
    if (pier_yaml_is_null(env))
        return 0;
    int rc = pier_yaml_check_keys(p->doc, env, keys);
    if (rc)
        return rc;
    pier_buildspec *s = p->spec;
    const pier_yaml_node *n;
    if ((n = pier_yaml_get(env, "shell")) && (rc = parse_shell(p, n)))
        return rc;
    if ((rc = parse_vars(p, pier_yaml_get(env, "variables"), "env/variables", true, &s->variables,
                         &s->variable_count)))
        return rc;
    if ((rc = parse_vars(p, pier_yaml_get(env, "parameter-store"), "env/parameter-store", true,
                         &s->parameter_store, &s->parameter_count)))
        return rc;
    if ((rc = parse_vars(p, pier_yaml_get(env, "secrets-manager"), "env/secrets-manager", true,
                         &s->secrets_manager, &s->secret_count)))
        return rc;
    for (size_t i = 0; i < s->parameter_count; i++)
        for (size_t j = 0; j < s->secret_count; j++)
            if (strcmp(s->parameter_store[i].name, s->secrets_manager[j].name) == 0)
                return pier_yaml_error(
                    p->doc,
                    key_node(pier_yaml_get(env, "secrets-manager"), s->secrets_manager[j].name),
                    "'%s' is both in env/parameter-store and in env/secrets-manager",
                    s->secrets_manager[j].name);
    if ((n = pier_yaml_get(env, "exported-variables")) && !pier_yaml_is_null(n)) {
        if ((rc = parse_strings(p, n, "env/exported-variables", &s->exported_variables,
                                &s->exported_count)))
            return rc;
        for (size_t i = 0; i < s->exported_count; i++)
            if (!valid_env_name(s->exported_variables[i]))
                return pier_yaml_error(p->doc, n->kind == PIER_YAML_SEQ ? n->items[i] : n,
                                       "env/exported-variables: '%s' is not a valid environment "
                                       "variable name",
                                       s->exported_variables[i]);
    }
    if ((n = pier_yaml_get(env, "git-credential-helper"))) {
        if ((rc = get_bool(p, n, "env/git-credential-helper", &s->git_credential_helper)))
            return rc;
        if (s->git_credential_helper)
            warn(p, n,
                 "env/git-credential-helper is ignored: git uses the machine's own "
                 "credential configuration");
    }
    return 0;
}

static int parse_on_failure(parser *p, const pier_yaml_node *n, pier_on_failure *out)
{
    const char *v = NULL;
    int rc = get_string(p, n, "on-failure", &v);
    if (rc)
        return rc;
    if (strcmp(v, "ABORT") == 0)
        *out = PIER_ON_FAILURE_ABORT;
    else if (strcmp(v, "CONTINUE") == 0)
        *out = PIER_ON_FAILURE_CONTINUE;
    else if (strncmp(v, "RETRY", 5) == 0)
        return pier_yaml_error(p->doc, n,
                               "on-failure %s is not supported: pier does not retry builds "
                               "(use ABORT or CONTINUE, and re-run the pipeline)",
                               v);
    else
        return pier_yaml_error(p->doc, n, "on-failure must be ABORT or CONTINUE, found '%s'", v);
    return 0;
}

static int parse_phase(parser *p, pier_phase_id id, const pier_yaml_node *n)
{
    static const char *const install_keys[] = {"run-as",   "on-failure", "runtime-versions",
                                               "commands", "finally",    NULL};
    static const char *const phase_keys[] = {"run-as", "on-failure", "commands", "finally", NULL};
    pier_buildspec_phase *ph = &p->spec->phases[id];
    ph->present = true;
    ph->line = n ? n->line : 0;
    if (pier_yaml_is_null(n))
        return pier_yaml_error(p->doc, n, "phases/%s must be a mapping with commands",
                               phase_names[id]);
    int rc = pier_yaml_check_keys(p->doc, n, id == PIER_PHASE_INSTALL ? install_keys : phase_keys);
    if (rc)
        return rc;
    char what[64];
    const pier_yaml_node *v;
    if ((v = pier_yaml_get(n, "run-as")) && (rc = parse_run_as(p, v)))
        return rc;
    if ((v = pier_yaml_get(n, "on-failure")) && (rc = parse_on_failure(p, v, &ph->on_failure)))
        return rc;
    if ((v = pier_yaml_get(n, "runtime-versions"))) {
        if ((rc = parse_vars(p, v, "phases/install/runtime-versions", false, &ph->runtimes,
                             &ph->runtime_count)))
            return rc;
    }
    snprintf(what, sizeof what, "phases/%s/commands", phase_names[id]);
    v = pier_yaml_get(n, "commands");
    /* The reference makes commands required in pre_build, build and
     * post_build, optional in install (runtime-versions alone is fine). */
    if (!v && id != PIER_PHASE_INSTALL)
        return pier_yaml_error(p->doc, n, "phases/%s needs a 'commands' list", phase_names[id]);
    if ((rc = parse_commands(p, v, what, &ph->commands, &ph->command_count)))
        return rc;
    snprintf(what, sizeof what, "phases/%s/finally", phase_names[id]);
    if ((rc = parse_commands(p, pier_yaml_get(n, "finally"), what, &ph->finally,
                             &ph->finally_count)))
        return rc;
    return 0;
}

static int parse_phases(parser *p, const pier_yaml_node *n)
{
    static const char *const keys[] = {"install", "pre_build", "build", "post_build", NULL};
    int rc = pier_yaml_check_keys(p->doc, n, keys);
    if (rc)
        return rc;
    for (int i = 0; i < PIER_PHASE_COUNT; i++) {
        for (size_t k = 0; k < n->count; k++)
            if (strcmp(n->keys[k]->value, phase_names[i]) == 0 &&
                (rc = parse_phase(p, (pier_phase_id)i, n->items[k])))
                return rc;
    }
    return 0;
}

static bool has_dotdot(const char *pat)
{
    const char *s = pat;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 2 && s[0] == '.' && s[1] == '.')
            return true;
        s += len + (e ? 1 : 0);
    }
    return false;
}

/* A path pattern relative to the source: no "..", not absolute. */
static int check_relative(parser *p, const pier_yaml_node *n, const char *what, const char *pat)
{
    if (pat[0] == '/')
        return pier_yaml_error(p->doc, n, "%s '%s' must be relative to the source directory", what,
                               pat);
    if (has_dotdot(pat))
        return pier_yaml_error(p->doc, n, "%s '%s' must not leave the source directory (..)", what,
                               pat);
    if (pier_glob_validate(pat) != 0)
        return pier_yaml_error(p->doc, n, "%s: %s", what, pier_error_last());
    return 0;
}

static const pier_yaml_node *item_at(const pier_yaml_node *n, size_t i)
{
    return n->kind == PIER_YAML_SEQ ? n->items[i] : n;
}

static int parse_artifact(parser *p, const pier_yaml_node *n, const char *identifier,
                          pier_buildspec_artifact *a)
{
    static const char *const primary_keys[] = {"files",
                                               "name",
                                               "discard-paths",
                                               "base-directory",
                                               "exclude-paths",
                                               "enable-symlinks",
                                               "s3-prefix",
                                               "secondary-artifacts",
                                               NULL};
    static const char *const secondary_keys[] = {
        "files",     "name", "discard-paths", "base-directory", "exclude-paths", "enable-symlinks",
        "s3-prefix", NULL};
    const char *section = identifier ? "artifacts/secondary-artifacts" : "artifacts";
    if (pier_yaml_is_null(n))
        return pier_yaml_error(p->doc, n, "%s must be a mapping with files", section);
    int rc = pier_yaml_check_keys(p->doc, n, identifier ? secondary_keys : primary_keys);
    if (rc)
        return rc;
    a->identifier = identifier;
    a->line = n->line;
    const pier_yaml_node *v = pier_yaml_get(n, "files");
    if (!v)
        return pier_yaml_error(p->doc, n, "%s needs a 'files' list", section);
    if ((rc = parse_strings(p, v, "artifacts/files", &a->files, &a->file_count)))
        return rc;
    if (a->file_count == 0)
        return pier_yaml_error(p->doc, v, "artifacts/files must name at least one path");
    for (size_t i = 0; i < a->file_count; i++)
        if ((rc = check_relative(p, item_at(v, i), "artifacts/files", a->files[i])))
            return rc;
    if ((v = pier_yaml_get(n, "name")) && (rc = get_string(p, v, "artifacts/name", &a->name)))
        return rc;
    if ((v = pier_yaml_get(n, "discard-paths")) &&
        (rc = get_bool(p, v, "artifacts/discard-paths", &a->discard_paths)))
        return rc;
    if ((v = pier_yaml_get(n, "base-directory"))) {
        if ((rc = get_string(p, v, "artifacts/base-directory", &a->base_directory)))
            return rc;
        if ((rc = check_relative(p, v, "artifacts/base-directory", a->base_directory)))
            return rc;
    }
    if ((v = pier_yaml_get(n, "exclude-paths"))) {
        if ((rc = parse_strings(p, v, "artifacts/exclude-paths", &a->exclude_paths,
                                &a->exclude_count)))
            return rc;
        for (size_t i = 0; i < a->exclude_count; i++)
            if ((rc = check_relative(p, item_at(v, i), "artifacts/exclude-paths",
                                     a->exclude_paths[i])))
                return rc;
    }
    if ((v = pier_yaml_get(n, "enable-symlinks"))) {
        if ((rc = get_bool(p, v, "artifacts/enable-symlinks", &a->enable_symlinks)))
            return rc;
        if (a->enable_symlinks)
            warn(p, v,
                 "artifacts/enable-symlinks is ignored: pier's artifact is a directory and links "
                 "inside the source are copied as files");
    }
    if ((v = pier_yaml_get(n, "s3-prefix"))) {
        if ((rc = get_string(p, v, "artifacts/s3-prefix", &a->s3_prefix)))
            return rc;
        warn(p, v, "artifacts/s3-prefix is ignored: the deploy stage sets the bucket and prefix");
    }
    if (!identifier && (v = pier_yaml_get(n, "secondary-artifacts"))) {
        if (v->kind != PIER_YAML_MAP)
            return pier_yaml_error(p->doc, v,
                                   "artifacts/secondary-artifacts must be a mapping of "
                                   "identifier: artifact");
        pier_buildspec *s = p->spec;
        s->secondary = pier_calloc(v->count ? v->count : 1, sizeof *s->secondary);
        s->secondary_count = v->count;
        for (size_t i = 0; i < v->count; i++)
            if ((rc = parse_artifact(p, v->items[i], v->keys[i]->value, &s->secondary[i])))
                return rc;
        if (v->count)
            warn(p, v,
                 "artifacts/secondary-artifacts are parsed but not collected: a pier pipeline "
                 "deploys one artifact");
    }
    return 0;
}

static int parse_cache(parser *p, const pier_yaml_node *n)
{
    static const char *const keys[] = {"paths", "key", "fallback-keys", "action", NULL};
    int rc = pier_yaml_check_keys(p->doc, n, keys);
    if (rc)
        return rc;
    pier_buildspec_cache *c = &p->spec->cache;
    c->present = true;
    const pier_yaml_node *v = pier_yaml_get(n, "paths");
    if (!v)
        return pier_yaml_error(p->doc, n, "cache needs a 'paths' list");
    if ((rc = parse_strings(p, v, "cache/paths", &c->paths, &c->path_count)))
        return rc;
    for (size_t i = 0; i < c->path_count; i++) {
        const char *path = c->paths[i];
        if (path[0] == '/') {
            if (has_dotdot(path))
                return pier_yaml_error(p->doc, item_at(v, i), "cache/paths '%s' must not use ..",
                                       path);
            if (pier_glob_validate(path) != 0)
                return pier_yaml_error(p->doc, item_at(v, i), "cache/paths: %s", pier_error_last());
        } else if ((rc = check_relative(p, item_at(v, i), "cache/paths", path))) {
            return rc;
        }
    }
    if ((v = pier_yaml_get(n, "key")) && (rc = get_string(p, v, "cache/key", &c->key)))
        return rc;
    if ((v = pier_yaml_get(n, "fallback-keys")) &&
        (rc = parse_strings(p, v, "cache/fallback-keys", &c->fallback_keys, &c->fallback_count)))
        return rc;
    if ((v = pier_yaml_get(n, "action"))) {
        const char *a = NULL;
        if ((rc = get_string(p, v, "cache/action", &a)))
            return rc;
        if (strcmp(a, "restore") == 0)
            c->action = PIER_CACHE_RESTORE_ONLY;
        else if (strcmp(a, "save") == 0)
            c->action = PIER_CACHE_SAVE_ONLY;
        else
            return pier_yaml_error(p->doc, v, "cache/action must be restore or save, found '%s'",
                                   a);
    }
    return 0;
}

static int parse_version(parser *p, const pier_yaml_node *root)
{
    const pier_yaml_node *v = pier_yaml_get(root, "version");
    if (!v)
        return pier_yaml_error(p->doc, root, "version is required (version: 0.2)");
    if (!is_scalar(v))
        return pier_yaml_error(p->doc, v, "version must be 0.2");
    if (strcmp(v->value, "0.2") == 0)
        return 0;
    if (strcmp(v->value, "0.1") == 0)
        return pier_yaml_error(p->doc, v,
                               "buildspec version 0.1 is not supported (it runs each command in "
                               "its own shell); use version: 0.2");
    return pier_yaml_error(p->doc, v, "buildspec version '%s' is not supported; use version: 0.2",
                           v->value);
}

static int parse_root(parser *p, const pier_yaml_node *root)
{
    static const char *const keys[] = {"version", "run-as",  "env",       "proxy", "batch",
                                       "phases",  "reports", "artifacts", "cache", NULL};
    if (!root)
        return pier_yaml_error(p->doc, NULL,
                               "the buildspec is empty (expected version: 0.2 and "
                               "phases)");
    if (root->kind != PIER_YAML_MAP)
        return pier_yaml_error(p->doc, root, "a buildspec must be a mapping (version, phases ...)");
    int rc = pier_yaml_check_keys(p->doc, root, keys);
    if (rc)
        return rc;
    if ((rc = parse_version(p, root)))
        return rc;
    const pier_yaml_node *n;
    if ((n = pier_yaml_get(root, "batch")))
        return pier_yaml_error(p->doc, key_node(root, "batch"),
                               "batch builds are not supported by pier: remove the 'batch' "
                               "section (one pipeline runs one build)");
    if ((n = pier_yaml_get(root, "run-as")) && (rc = parse_run_as(p, n)))
        return rc;
    if ((rc = parse_env(p, pier_yaml_get(root, "env"))))
        return rc;
    if ((n = pier_yaml_get(root, "proxy"))) {
        static const char *const proxy_keys[] = {"upload-artifacts", "logs", NULL};
        if (!pier_yaml_is_null(n) && (rc = pier_yaml_check_keys(p->doc, n, proxy_keys)))
            return rc;
        bool ignored;
        const pier_yaml_node *v;
        if ((v = pier_yaml_get(n, "upload-artifacts")) &&
            (rc = get_bool(p, v, "proxy/upload-artifacts", &ignored)))
            return rc;
        if ((v = pier_yaml_get(n, "logs")) && (rc = get_bool(p, v, "proxy/logs", &ignored)))
            return rc;
        warn(p, key_node(root, "proxy"),
             "proxy is ignored: pier does not run builds behind an explicit proxy server");
    }
    n = pier_yaml_get(root, "phases");
    if (!n || pier_yaml_is_null(n))
        return pier_yaml_error(p->doc, n ? n : root,
                               "phases is required (install, pre_build, "
                               "build, post_build)");
    if ((rc = parse_phases(p, n)))
        return rc;
    if ((n = pier_yaml_get(root, "reports"))) {
        if (!pier_yaml_is_null(n) && n->kind != PIER_YAML_MAP)
            return pier_yaml_error(p->doc, n, "reports must be a mapping of report groups");
        warn(p, key_node(root, "reports"), "reports are ignored: pier has no test report groups");
    }
    if ((n = pier_yaml_get(root, "artifacts"))) {
        p->spec->has_artifacts = true;
        if ((rc = parse_artifact(p, n, NULL, &p->spec->artifacts)))
            return rc;
    }
    if ((n = pier_yaml_get(root, "cache")) && !pier_yaml_is_null(n) && (rc = parse_cache(p, n)))
        return rc;
    return 0;
}

static int load(pier_buildspec **out, pier_yaml_doc *doc)
{
    pier_buildspec *s = pier_calloc(1, sizeof *s);
    s->doc = doc;
    s->path = pier_yaml_name(doc);
    parser p = {s, doc};
    int rc = parse_root(&p, pier_yaml_root(doc));
    if (rc) {
        pier_buildspec_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int pier_buildspec_load_string(pier_buildspec **out, const char *name, const char *text, size_t len)
{
    *out = NULL;
    pier_yaml_doc *doc = NULL;
    int rc = pier_yaml_load_string(&doc, name, text, len);
    if (rc)
        return rc;
    return load(out, doc);
}

int pier_buildspec_load_file(pier_buildspec **out, const char *path)
{
    *out = NULL;
    pier_yaml_doc *doc = NULL;
    int rc = pier_yaml_load_file(&doc, path);
    if (rc)
        return rc;
    return load(out, doc);
}

static void free_artifact(pier_buildspec_artifact *a)
{
    free(a->files);
    free(a->exclude_paths);
}

void pier_buildspec_free(pier_buildspec *s)
{
    if (!s)
        return;
    free(s->variables);
    free(s->parameter_store);
    free(s->secrets_manager);
    free(s->exported_variables);
    for (int i = 0; i < PIER_PHASE_COUNT; i++) {
        free(s->phases[i].commands);
        free(s->phases[i].finally);
        free(s->phases[i].runtimes);
    }
    free_artifact(&s->artifacts);
    for (size_t i = 0; i < s->secondary_count; i++)
        free_artifact(&s->secondary[i]);
    free(s->secondary);
    free(s->cache.paths);
    free(s->cache.fallback_keys);
    for (size_t i = 0; i < s->warning_count; i++)
        free(s->warnings[i]);
    free(s->warnings);
    pier_yaml_free(s->doc);
    free(s);
}
