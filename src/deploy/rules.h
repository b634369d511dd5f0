/*
 * rules: what each deployed object is served with, and the edge rewrites.
 *
 * A rules set holds, in the order they were added (flags first, then a
 * file, when the caller adds them in that order):
 *
 * - cache rules: glob(s) -> Cache-Control; the first rule that matches a
 *   path wins; when none matches, the defaults apply: `no-cache` for HTML,
 *   `public, max-age=31536000, immutable` for content-hashed names
 *   (pier_deploy_is_hashed_name), `public, max-age=300` for the rest;
 * - header rules: glob(s) -> headers to set (Content-Type, Content-Encoding,
 *   Content-Language, Content-Disposition, Expires, x-amz-meta-*,
 *   x-amz-website-redirect-location: what an S3 object can carry); every
 *   matching rule applies, and for one header the first rule that sets it
 *   wins;
 * - rewrites: a viewer path (exact, or a prefix) served from another object,
 *   e.g. /storybook -> /storybook/index.html. The edge applies them; the
 *   planner uses them to invalidate the viewer paths of a changed object.
 *
 * Paths given to the rules are relative to the deployed folder ("a/b.css",
 * no leading '/'); globs follow base/glob.h. Content-Type comes from
 * base/mime.h (the system's mime.types) with "; charset=utf-8" for text,
 * unless a header rule sets it.
 *
 * The rules file (YAML; unknown keys are errors, every error is
 * "file:line:column: what"; docs/deploy.md has the full reference):
 *
 *   defaults:                     # optional: replace the built-in defaults
 *     html: "no-cache"
 *     hashed: "public, max-age=31536000, immutable"
 *     other: "public, max-age=300"
 *   cache:                        # first match wins
 *     - match: "*.html"           # a glob or a list of globs
 *       cache-control: "no-cache"
 *   headers:                      # all matching rules apply
 *     - match: "**.wasm"
 *       set: { Content-Type: application/wasm }
 *   rewrites:
 *     - from: /storybook
 *       to: /storybook/index.html
 *     - from: /docs/              # prefix: paths under /docs/ that name
 *       to: /docs/index.html      # no object are served /docs/index.html
 *       prefix: true
 *
 * Ownership: a pier_deploy_rules owns all its strings; pier_deploy_meta
 * owns its strings and is emptied with pier_deploy_meta_clear.
 */
#ifndef PIER_DEPLOY_RULES_H
#define PIER_DEPLOY_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "base/yaml.h"

#define PIER_DEPLOY_CACHE_HTML   "no-cache"
#define PIER_DEPLOY_CACHE_HASHED "public, max-age=31536000, immutable"
#define PIER_DEPLOY_CACHE_OTHER  "public, max-age=300"

typedef struct {
    char *name;  /* canonical spelling: "Content-Disposition", "x-amz-meta-owner" */
    char *value; /* the value, no CR/LF */
} pier_deploy_header;

/* The metadata an object is uploaded with (and that pier records in its
 * remote manifest to notice when a rule changes it). */
typedef struct {
    char *content_type;          /* never NULL once resolved; NULL = unknown */
    char *cache_control;         /* never NULL once resolved */
    char *content_encoding;      /* NULL when none */
    pier_deploy_header *headers; /* the other headers, sorted by name (case-insensitive) */
    size_t header_count;         /* their number */
} pier_deploy_meta;

typedef struct {
    char **globs;        /* the path matches when any glob does */
    size_t glob_count;   /* at least 1 */
    char *cache_control; /* the value to send */
} pier_deploy_cache_rule;

typedef struct {
    char **globs;            /* as in a cache rule */
    size_t glob_count;       /* at least 1 */
    pier_deploy_header *set; /* headers to set, canonical names */
    size_t set_count;        /* at least 1 */
} pier_deploy_header_rule;

typedef struct {
    char *from;  /* viewer path, starts with '/' */
    char *to;    /* the object's path, starts with '/', names a file */
    bool prefix; /* from is a prefix: paths under it naming no object are served `to` */
} pier_deploy_rewrite;

typedef struct {
    pier_deploy_cache_rule *cache;    /* in match order */
    size_t cache_count;               /* their number */
    pier_deploy_header_rule *headers; /* in match order */
    size_t header_count;              /* their number */
    pier_deploy_rewrite *rewrites;    /* in match order */
    size_t rewrite_count;             /* their number */
    char *default_html;               /* Cache-Control for HTML with no rule */
    char *default_hashed;             /* for content-hashed names with no rule */
    char *default_other;              /* for everything else */
} pier_deploy_rules;

/* Rules with the built-in defaults only. */
pier_deploy_rules *pier_deploy_rules_new(void);
void pier_deploy_rules_free(pier_deploy_rules *r);

/* Appends the rules of a YAML rules file to r (after those already there;
 * `defaults` replace the current ones). On error r is unchanged and the
 * message is "path:line:column: what". */
int pier_deploy_rules_load_file(pier_deploy_rules *r, const char *path);
/* Same, from text; name is used in messages. */
int pier_deploy_rules_load_string(pier_deploy_rules *r, const char *name, const char *text,
                                  size_t len);
/* Same, from a mapping inside another document (a `rules:` section of
 * pier.yml); node NULL or a YAML null is an empty rules mapping. */
int pier_deploy_rules_load_yaml(pier_deploy_rules *r, const pier_yaml_doc *doc,
                                const pier_yaml_node *node);

/* Appends one rule, as from a command-line flag. PIER_EINVALID for a bad
 * glob, a value with control characters, a header S3 cannot store, or a
 * rewrite path that does not start with '/'. */
int pier_deploy_rules_add_cache(pier_deploy_rules *r, const char *glob, const char *cache_control);
int pier_deploy_rules_add_header(pier_deploy_rules *r, const char *glob, const char *name,
                                 const char *value);
int pier_deploy_rules_add_rewrite(pier_deploy_rules *r, const char *from, const char *to,
                                  bool prefix);

/* Resolves the metadata for rel (relative path) into out, which the caller
 * empties with pier_deploy_meta_clear. r may be NULL (defaults only). */
void pier_deploy_rules_resolve(const pier_deploy_rules *r, const char *rel, pier_deploy_meta *out);

/* The object path a viewer path is served from, or NULL when no rewrite
 * applies: exact rules first match; prefix rules only when `exists` is
 * false (no object at path). Borrowed from r. */
const char *pier_deploy_rules_rewrite(const pier_deploy_rules *r, const char *path, bool exists);

/* True when the file name (the part after the last '/') carries a content
 * hash: a segment of the name, separated by '.', '-' or '_', that is 8+
 * hex digits with both digits and letters (app.3f2a9c1b.js), or, after the
 * first segment, 8+ base64url characters with an upper-case letter and a
 * digit and no run of 4+ lower-case letters (main-BjX9k2Lq.css,
 * index-B_2xZ-9k.js as rollup writes it). Tuned to miss rather than to
 * mistake: a false positive caches a mutable file for a year. */
bool pier_deploy_is_hashed_name(const char *path);
/* True for text/html and application/xhtml+xml (parameters ignored). */
bool pier_deploy_is_html_type(const char *content_type);

void pier_deploy_meta_clear(pier_deploy_meta *m);
/* Deep copy into dst (which must be empty). */
void pier_deploy_meta_copy(pier_deploy_meta *dst, const pier_deploy_meta *src);
/* Field-by-field equality (header names case-insensitive). */
bool pier_deploy_meta_equal(const pier_deploy_meta *a, const pier_deploy_meta *b);
/* Sets one header on m (replacing a previous value), by canonical name:
 * Content-Type and Content-Encoding go to their fields. PIER_EINVALID for
 * Cache-Control (set by cache rules) or a header S3 cannot store. */
int pier_deploy_meta_set(pier_deploy_meta *m, const char *name, const char *value);

#endif
