/*
 * plan: what a deploy must do, as a pure function of
 *   (local manifest, remote listing, pier's remote manifest or NULL, rules,
 *    options) -> plan.
 * No I/O: the executor carries the plan out, the CLI prints it.
 *
 * Deciding "equal" for a local file and a listed object of the same key:
 * - different sizes: changed;
 * - pier's manifest has the key with a sha256, and its size and ETag agree
 *   with the listing (nobody replaced the object since pier wrote it; with
 *   no ETag recorded, the size alone): equal iff the sha256 is the local
 *   one. This is what makes SSE-KMS buckets work, where ETags are not MD5s;
 * - otherwise the ETag decides: a plain ETag is compared with the local
 *   MD5, a multipart one ("...-N") with the local multipart form; when the
 *   local digest it needs was not computed (a lazy manifest: has_md5 or
 *   whole_md5 false) the file is an upload marked "undecided": the caller
 *   hashes the MD5s of the uploads and plans again before executing.
 * An equal object is re-uploaded (reason "metadata") when pier's manifest
 * recorded other metadata than the rules now give (Content-Type,
 * Cache-Control, Content-Encoding, headers); the executor may use a copy
 * in place (CopyObject, MetadataDirective REPLACE) instead.
 *
 * Actions come in execution order: phase 1 uploads of everything that is
 * not HTML, phase 2 HTML uploads, phase 3 deletions (each phase in key
 * order), so a visitor never gets a page whose assets are missing. A phase
 * must finish before the next starts; actions within a phase may run in
 * parallel.
 *
 * Refusals, before anything is uploaded (the plan is not made):
 * - PIER_EINVALID: an empty folder (unless allow_empty); a key over S3's
 *   1,024 bytes, or not UTF-8; a local file under ".pier/" (pier's own);
 * - PIER_ECONFLICT: more deletions than allowed (max_deletes; by default
 *   more than 10 and more than half of the objects under the prefix).
 *
 * Never touched: the objects under "<prefix>.pier/", "directory" markers
 * (keys ending in '/'), objects matching `keep`, objects under a deeper
 * prefix that holds its own ".pier/manifest.json" (another pier deploy),
 * and objects outside the prefix.
 *
 * Invalidation paths, for every uploaded or deleted key reachable through
 * the CDN (keys under origin_prefix; the path is "/" + the rest):
 * - the key's path, URL-encoded as CloudFront wants (RFC 1738's unsafe
 *   characters, '?', '*', controls and non-ASCII bytes as %XX; '+' and the
 *   other reserved characters as they are);
 * - for ".../index.html" also "/dir/" and "/dir" ("/" for the root);
 * - every viewer path that a rewrite maps onto the key (a prefix rewrite
 *   gives "from*");
 * deduplicated (paths under a wildcard dropped), and when more than
 * max_paths remain, collapsed into directory wildcards ("dir/" then '*',
 * see pier_deploy_paths_collapse), the root wildcard ("/" then '*') as
 * the last resort. New keys are included: the CDN may hold a
 * cached 404 for them. Nothing changed: no paths.
 *
 * Ownership: the plan owns everything in it except each action's `file`,
 * borrowed from the local manifest, which must outlive the plan.
 */
#ifndef PIER_DEPLOY_PLAN_H
#define PIER_DEPLOY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "deploy/manifest.h"
#include "deploy/remote.h"
#include "deploy/rules.h"

#define PIER_DEPLOY_MAX_KEY        1024 /* S3's limit on a key, in bytes */
#define PIER_DEPLOY_MAX_PATHS      15   /* default invalidation path budget */
#define PIER_DEPLOY_CALLER_REF_LEN 38   /* "pier-" + 32 hex + NUL */
#define PIER_DEPLOY_ID_LEN         32   /* "20240830T123600Z-" + 8 + NUL, rounded */

typedef enum {
    PIER_DEPLOY_UPLOAD, /* PUT (or multipart) the local file */
    PIER_DEPLOY_DELETE, /* delete the remote object */
} pier_deploy_op;

typedef enum {
    PIER_DEPLOY_REASON_NONE,     /* deletes */
    PIER_DEPLOY_REASON_NEW,      /* no object at the key */
    PIER_DEPLOY_REASON_CHANGED,  /* content differs */
    PIER_DEPLOY_REASON_METADATA, /* content equal, metadata differs */
} pier_deploy_reason;

typedef enum {
    PIER_DEPLOY_PHASE_ASSETS, /* uploads that are not HTML */
    PIER_DEPLOY_PHASE_HTML,   /* HTML uploads */
    PIER_DEPLOY_PHASE_DELETE, /* deletions */
} pier_deploy_phase;

typedef struct {
    pier_deploy_op op;            /* what to do */
    pier_deploy_reason reason;    /* why (uploads) */
    pier_deploy_phase phase;      /* when */
    char *key;                    /* the S3 key */
    uint64_t size;                /* upload: local size; delete: listed size */
    const pier_deploy_file *file; /* upload: the local file (borrowed); NULL for deletes */
    pier_deploy_meta meta;        /* upload: Content-Type, Cache-Control, ... to send */
    char *remote_etag;            /* the listed object's ETag (copy-source-if-match for a
                                     metadata copy); NULL for new keys */
    bool undecided;               /* upload only because the local MD5 it would be
                                     compared by was not computed (lazy manifest) */
} pier_deploy_action;

typedef struct {
    const char *deploy_id;          /* recorded in the new state and the CallerReference */
    int64_t time;                   /* recorded in the new state, seconds since the epoch */
    bool no_delete;                 /* keep objects that are gone from the folder */
    bool allow_empty;               /* an empty folder is intended (deletes everything) */
    int64_t max_deletes;            /* most deletions allowed; -1: refuse more than 10 that
                                       are also more than half the objects */
    const char *origin_prefix;      /* key prefix the CDN origin path names (origin path
                                       "/site" -> "site/"); NULL or "" = the bucket root */
    size_t max_paths;               /* invalidation path budget; 0 = PIER_DEPLOY_MAX_PATHS */
    bool reupload_unknown_metadata; /* re-upload equal objects whose metadata pier has not
                                       recorded (first pier deploy over an existing site) */
    const char *const *keep;        /* globs, relative to the prefix, never deleted */
    size_t keep_count;              /* their number */
} pier_deploy_plan_options;

#define PIER_DEPLOY_PLAN_OPTIONS_INIT                                                              \
    {                                                                                              \
        NULL, 0, false, false, -1, NULL, 0, false, NULL, 0                                         \
    }

typedef struct {
    char *prefix;                /* the deploy prefix (from the manifest) */
    char *deploy_id;             /* as given ("" when none) */
    pier_deploy_action *actions; /* in execution order */
    size_t count;                /* their number */
    size_t html_start;           /* first HTML upload (== delete_start when none) */
    size_t delete_start;         /* first deletion (== count when none) */
    size_t new_count;            /* uploads by reason */
    size_t changed_count;
    size_t metadata_count;
    size_t delete_count;   /* deletions */
    size_t skip_count;     /* local files equal to their object */
    size_t kept_count;     /* remote objects gone locally but kept (no_delete, keep,
                              another deploy's) */
    uint64_t upload_bytes; /* bytes to upload */
    uint64_t skip_bytes;   /* bytes not uploaded */
    uint64_t delete_bytes; /* listed bytes deleted */
    char **paths;          /* invalidation paths, sorted; NULL when none */
    size_t path_count;     /* their number (0 when nothing changed) */
    char caller_reference[PIER_DEPLOY_CALLER_REF_LEN]; /* "" when no paths */
    char **warnings;                                   /* lines for the user (kept objects ...) */
    size_t warning_count;                              /* their number */
    char *state_key;               /* where the new state goes: prefix + .pier/manifest.json */
    pier_deploy_state *next_state; /* pier's manifest to write after the deploy: every local
                                      file; uploads carry the local ETag until the executor
                                      records S3's with pier_deploy_state_set_etag */
} pier_deploy_plan;

/* Makes the plan. remote and state may be NULL (nothing there, no pier
 * manifest); rules NULL means the defaults. Errors as listed above. */
int pier_deploy_plan_make(pier_deploy_plan **out, const pier_deploy_manifest *local,
                          const pier_deploy_listing *remote, const pier_deploy_state *state,
                          const pier_deploy_rules *rules, const pier_deploy_plan_options *opts);
void pier_deploy_plan_free(pier_deploy_plan *p);

/* The plan as text, one line per action:
 *   upload  KEY  (SIZE, reason: new|changed|metadata)
 *   delete  KEY
 *   skip N unchanged
 *   invalidate  PATH
 * plus warnings first and a summary line last. */
int pier_deploy_plan_to_text(pier_buf *out, const pier_deploy_plan *p);
void pier_deploy_plan_print_text(FILE *f, const pier_deploy_plan *p);
/* The plan as JSON: {"prefix", "deploy_id", "actions": [{"op", "key", "size",
 * "phase", "reason", "content_type", "cache_control", "content_encoding",
 * "headers"}], "summary": {...}, "invalidation": {"paths", "caller_reference"},
 * "warnings"}. */
int pier_deploy_plan_to_json(pier_buf *out, const pier_deploy_plan *p, bool pretty);
const char *pier_deploy_reason_name(pier_deploy_reason r);
const char *pier_deploy_phase_name(pier_deploy_phase ph);

/* The CloudFront CallerReference for one invalidation: "pier-" + the first
 * 32 hex digits of sha256(deploy_id "\n" sorted paths joined by "\n"), so
 * a retried run sends the same reference for the same paths. */
void pier_deploy_caller_reference(char out[PIER_DEPLOY_CALLER_REF_LEN], const char *deploy_id,
                                  char *const *paths, size_t count);
/* A new deploy id: the UTC time in ISO 8601 basic form, '-', 8 random
 * characters ("20240830T123600Z-k3J9xQ2a"). */
void pier_deploy_id_new(char out[PIER_DEPLOY_ID_LEN], int64_t time);

/* Appends "/" + path, URL-encoded for a CloudFront invalidation, to out
 * (path without its leading '/'). */
int pier_deploy_path_encode(pier_buf *out, const char *path);
/* Collapses *paths (malloc'ed strings in a malloc'ed array, replaced in
 * place) to at most max: paths under a wildcard are dropped; then, while
 * too many remain, the paths under one directory "dir/" become the one
 * wildcard "dir/" + '*' ("dir" + '*' when "dir" itself is among them),
 * choosing a directory whose collapse alone is enough, deepest first
 * (then the one removing most paths, then byte order), else the one that
 * removes the most paths (then the deepest), and repeating; the root
 * wildcard "/" + '*' when nothing else fits. The result is sorted. */
void pier_deploy_paths_collapse(char ***paths, size_t *count, size_t max);

#endif
