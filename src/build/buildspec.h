/*
 * buildspec: an AWS CodeBuild buildspec (version 0.2), parsed and checked.
 *
 * pier runs buildspecs written for CodeBuild unchanged, so the parser takes
 * every key of the CodeBuild "Build specification reference" and sorts it
 * three ways:
 *   - supported: version, env (shell, variables, parameter-store,
 *     secrets-manager, exported-variables), phases (commands, finally,
 *     on-failure ABORT|CONTINUE), artifacts (files, name, base-directory,
 *     discard-paths, exclude-paths), cache (paths, key, fallback-keys,
 *     action);
 *   - accepted and ignored with a warning: run-as naming the current user,
 *     git-credential-helper, proxy, runtime-versions, reports,
 *     enable-symlinks, s3-prefix, secondary-artifacts;
 *   - refused with a clear error: version 0.1, batch, run-as naming another
 *     user, Windows shells, on-failure RETRY.
 * Unknown keys are errors that list the allowed ones. Every error is
 * "file:line:column: what is wrong" (from src/base/yaml.h).
 *
 * Ownership: pier_buildspec_load_* returns a spec the caller frees with
 * pier_buildspec_free. Every string in it is borrowed from the spec (the YAML
 * document is kept inside) and lives until that free.
 */
#ifndef PIER_BUILDSPEC_H
#define PIER_BUILDSPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "base/yaml.h"

typedef enum {
    PIER_PHASE_INSTALL = 0,
    PIER_PHASE_PRE_BUILD = 1,
    PIER_PHASE_BUILD = 2,
    PIER_PHASE_POST_BUILD = 3,
    PIER_PHASE_COUNT = 4,
} pier_phase_id;

typedef enum {
    PIER_ON_FAILURE_DEFAULT = 0, /* not given: CodeBuild's phase transitions */
    PIER_ON_FAILURE_ABORT,       /* end the build after this phase */
    PIER_ON_FAILURE_CONTINUE,    /* go on to the next phase */
} pier_on_failure;

typedef enum {
    PIER_CACHE_RESTORE_AND_SAVE = 0, /* no cache/action given */
    PIER_CACHE_RESTORE_ONLY,         /* action: restore */
    PIER_CACHE_SAVE_ONLY,            /* action: save */
} pier_cache_action;

typedef struct {
    const char *name;  /* variable name */
    const char *value; /* its value (text as written; numbers stay as typed) */
    size_t line;       /* position of the key in the buildspec */
} pier_buildspec_var;

typedef struct {
    const char *text; /* the command as one string (block scalars keep newlines) */
    size_t line;      /* position in the buildspec, for messages */
} pier_buildspec_command;

typedef struct {
    bool present;                     /* the phase is in the buildspec */
    pier_on_failure on_failure;       /* what a failure does */
    pier_buildspec_command *commands; /* the commands, in order */
    size_t command_count;             /* their number */
    pier_buildspec_command *finally;  /* run after commands, even when one failed */
    size_t finally_count;             /* their number */
    pier_buildspec_var *runtimes;     /* install/runtime-versions (ignored) */
    size_t runtime_count;             /* their number */
    size_t line;                      /* position of the phase's key */
} pier_buildspec_phase;

typedef struct {
    const char *identifier;     /* secondary artifact identifier; NULL for the primary */
    const char **files;         /* globs relative to base_directory */
    size_t file_count;          /* their number (at least 1) */
    const char *name;           /* artifacts/name (shell words), or NULL */
    bool discard_paths;         /* flatten into one directory */
    const char *base_directory; /* relative directory or glob of directories, or NULL */
    const char **exclude_paths; /* globs relative to base_directory */
    size_t exclude_count;       /* their number */
    bool enable_symlinks;       /* parsed; pier always copies file contents */
    const char *s3_prefix;      /* parsed; the deploy stage chooses the prefix */
    size_t line;                /* position of the artifacts key */
} pier_buildspec_artifact;

typedef struct {
    bool present;               /* a cache section was given */
    const char **paths;         /* globs, relative to the source or absolute */
    size_t path_count;          /* their number */
    const char *key;            /* cache/key, taken literally, or NULL */
    const char **fallback_keys; /* tried in order when key has no entry */
    size_t fallback_count;      /* their number */
    pier_cache_action action;   /* restore and/or save */
} pier_buildspec_cache;

typedef struct {
    const char *path;                    /* the name given at load, for messages */
    const char *shell;                   /* env/shell, or NULL (bash if installed, else /bin/sh) */
    pier_buildspec_var *variables;       /* env/variables */
    size_t variable_count;               /* their number */
    pier_buildspec_var *parameter_store; /* env/parameter-store: name -> parameter */
    size_t parameter_count;              /* their number */
    pier_buildspec_var *secrets_manager; /* env/secrets-manager: name -> reference */
    size_t secret_count;                 /* their number */
    const char **exported_variables;     /* env/exported-variables */
    size_t exported_count;               /* their number */
    bool git_credential_helper;          /* parsed; no-op */
    pier_buildspec_phase phases[PIER_PHASE_COUNT]; /* install, pre_build, build, post_build */
    bool has_artifacts;                            /* an artifacts section was given */
    pier_buildspec_artifact artifacts;             /* the primary artifact */
    pier_buildspec_artifact *secondary;            /* artifacts/secondary-artifacts (parsed only) */
    size_t secondary_count;                        /* their number */
    pier_buildspec_cache cache;                    /* cache section */
    char **warnings;                               /* "file:line:column: ... ignored" for the log */
    size_t warning_count;                          /* their number */
    pier_yaml_doc *doc;                            /* owns every string above */
} pier_buildspec;

/* Parses and checks a buildspec file. Errors are PIER_EINVALID with
 * "path:line:column: message" (PIER_ENOTFOUND when the file is missing). */
int pier_buildspec_load_file(pier_buildspec **out, const char *path);
/* The same from text; name is used in messages. */
int pier_buildspec_load_string(pier_buildspec **out, const char *name, const char *text,
                               size_t len);
void pier_buildspec_free(pier_buildspec *spec);

/* "install", "pre_build", "build", "post_build". */
const char *pier_buildspec_phase_name(pier_phase_id phase);
/* "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD" (CodeBuild's phase types). */
const char *pier_buildspec_phase_type(pier_phase_id phase);

#endif
