/*
 * pipeconf: pier.yml, pipelines as code, parsed and checked.
 *
 *   pipelines:
 *     - name: dev                      # [a-z0-9-], 1..40; names the run ids and defaults
 *       source:
 *         repo: .                      # path (relative to pier.yml) or URL
 *         branch: develop              # default main
 *         paths: [frontend/]            # include globs (none: every path)
 *         exclude: ["docs"]
 *         trigger:
 *           poll: 10s                  # interval (ms, s, m, h; a bare number is seconds)
 *           webhook: {provider: github, secret-env: HOOK_SECRET}   # or secret-file
 *       build:
 *         buildspec: buildspec.yml     # in the repository (default)
 *         env: {NAME: value}
 *         secrets: {NPM_TOKEN: {env: NPM_TOKEN}, API_KEY: {file: /path/0600}}
 *         allow-in-artifacts: [PUBLIC_KEY]
 *         timeout: 30m
 *       deploy: {bucket: dev, prefix: "", rules: rules.yml}
 *       cdn: {distribution: EDEV..., host: dev.localhost}
 *       actions: [{name, command, user-parameters, timeout}]
 *       site: {rewrites: [...], ...}     # edge rules, the rules file format (deploy/rules.h)
 *       stages: {deploy: true, invalidate: true, actions: true}
 *
 * Defaults run on the embedded stack: bucket <name>, distribution
 * "E" + upper-case name + "PIER" (letters and digits only), host
 * <name>.localhost. Every error is "file:line:column: what is wrong";
 * unknown keys are errors. Secret values are never read here (only where
 * they come from; a secret file must exist with mode 0600 or stricter).
 *
 * Ownership: pier_pipeconf_load gives the caller a config freed with
 * pier_pipeconf_free; every string in it lives until then.
 */
#ifndef PIER_PIPECONF_H
#define PIER_PIPECONF_H

#include <stdbool.h>
#include <stddef.h>

#include "base/yaml.h"

typedef struct {
    const char *name;  /* variable */
    const char *value; /* its value */
} pier_pipeconf_var;

typedef struct {
    const char *name;        /* the variable the build sees */
    const char *env;         /* read from pier's environment variable, or NULL */
    char *file;              /* or from this file (absolute), or NULL */
    bool allow_in_artifacts; /* the artifact scan does not fail on this one */
} pier_pipeconf_secret;

typedef struct {
    const char *name;            /* action name */
    const char *command;         /* shell command */
    const char *user_parameters; /* UserParameters, or NULL */
    unsigned timeout_sec;        /* 0 = 300 */
} pier_pipeconf_action;

typedef struct {
    const char *name;               /* pipeline name */
    char *repo;                     /* absolute path, or the URL as given */
    const char *branch;             /* watched branch */
    const char **paths;             /* include globs (NULL-terminated) */
    size_t path_count;              /* their number */
    const char **exclude;           /* exclude globs (NULL-terminated) */
    size_t exclude_count;           /* their number */
    unsigned poll_ms;               /* 0 = no polling */
    bool webhook;                   /* a webhook endpoint is served */
    const char *webhook_provider;   /* github|gitlab|gitea, or NULL = auto */
    const char *webhook_secret_env; /* the secret's variable, or NULL */
    char *webhook_secret_file;      /* or its file, or NULL */
    const char *buildspec;          /* path in the repository */
    pier_pipeconf_var *env;         /* build.env */
    size_t env_count;               /* their number */
    pier_pipeconf_secret *secrets;  /* build.secrets */
    size_t secret_count;            /* their number */
    unsigned timeout_sec;           /* build timeout; 0 = 3600 */
    const char *bucket;             /* deploy bucket */
    const char *prefix;             /* key prefix ("" = root) */
    char *rules_file;               /* absolute rules file, or NULL */
    const char *distribution;       /* CDN distribution id */
    const char *host;               /* the edge's Host name */
    pier_pipeconf_action *actions;  /* invoke actions, in order */
    size_t action_count;            /* their number */
    const pier_yaml_node *site;     /* edge rules mapping, or NULL */
    bool stage_deploy;              /* stages.deploy */
    bool stage_invalidate;          /* stages.invalidate */
    bool stage_actions;             /* stages.actions */
    size_t line;                    /* position in pier.yml */
} pier_pipeconf_pipeline;

typedef struct {
    char *path;                        /* pier.yml as given */
    char *dir;                         /* its directory, absolute */
    pier_pipeconf_pipeline *pipelines; /* in file order */
    size_t count;                      /* their number */
    pier_yaml_doc *doc;                /* owns the borrowed strings */
} pier_pipeconf;

/* Loads and validates path. PIER_EINVALID "file:line:column: what",
 * PIER_ENOTFOUND when the file is missing. */
int pier_pipeconf_load(pier_pipeconf **out, const char *path);
/* The same from text; dir resolves relative paths. */
int pier_pipeconf_load_string(pier_pipeconf **out, const char *name, const char *dir,
                              const char *text, size_t len);
void pier_pipeconf_free(pier_pipeconf *c);
/* The pipeline called name, or NULL. Borrowed. */
const pier_pipeconf_pipeline *pier_pipeconf_find(const pier_pipeconf *c, const char *name);
/* "10s" / "500ms" / "2m" / "1h" / "30" (seconds) -> milliseconds. */
int pier_pipeconf_parse_duration(const char *s, unsigned long long *ms);

#endif
