/*
 * remote: what the bucket holds, as the planner sees it.
 *
 * - pier_deploy_listing: the objects under the deploy prefix as ListObjectsV2
 *   reports them: key, size, ETag (quotes removed, lower-cased) and
 *   LastModified. The S3 client fills it with pier_deploy_listing_add; the
 *   planner sorts its own view, so any order is accepted.
 * - pier_deploy_state: pier's own manifest, the object pier writes at
 *   "<prefix>.pier/manifest.json" after each deploy:
 *
 *     {"version": 1, "deploy_id": "20240830T123600Z-k3J9xQ2a",
 *      "time": "2024-08-30T12:36:00Z",
 *      "files": {"<key>": {"sha256": "<64 hex>", "size": 123, "etag": "<etag>",
 *                          "content_type": "text/html; charset=utf-8",
 *                          "cache_control": "no-cache",
 *                          "content_encoding": "gzip",         (when set)
 *                          "headers": {"Content-Disposition": "..."}}}}  (when set)
 *
 *   Keys are full S3 keys (with the prefix), written in byte order. An entry
 *   without content_type records an object whose metadata pier does not
 *   know (it was there, equal, before pier managed it). Unknown members are
 *   ignored when parsing, so a later pier may add some; another version is
 *   refused (the caller then plans without the state, from ETags alone).
 *
 * Ownership: both types own all their strings; free with their _free.
 */
#ifndef PIER_DEPLOY_REMOTE_H
#define PIER_DEPLOY_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "deploy/rules.h"

/* Where pier's manifest lives, relative to the deploy prefix. Everything
 * under "<prefix>.pier/" belongs to pier, never to the site. */
#define PIER_DEPLOY_STATE_DIR     ".pier/"
#define PIER_DEPLOY_STATE_NAME    ".pier/manifest.json"
#define PIER_DEPLOY_STATE_VERSION 1

typedef struct {
    char *key;             /* full key */
    uint64_t size;         /* bytes */
    char *etag;            /* without quotes, lower-case; "" when the listing had none */
    int64_t last_modified; /* seconds since the epoch; 0 when unknown */
} pier_deploy_object;

typedef struct {
    pier_deploy_object *objects; /* in the order added */
    size_t count;                /* their number */
    size_t cap;                  /* allocated */
} pier_deploy_listing;

pier_deploy_listing *pier_deploy_listing_new(void);
/* Appends one object; etag may be quoted ("\"abc\"") or NULL. */
void pier_deploy_listing_add(pier_deploy_listing *l, const char *key, uint64_t size,
                             const char *etag, int64_t last_modified);
void pier_deploy_listing_free(pier_deploy_listing *l);

typedef struct {
    char *key;             /* full key */
    char sha256[65];       /* lower-case hex of the content; "" when unknown */
    uint64_t size;         /* bytes */
    char *etag;            /* the ETag S3 gave when pier wrote it; NULL when unknown */
    pier_deploy_meta meta; /* as uploaded; meta.content_type NULL = unknown */
} pier_deploy_state_file;

typedef struct {
    int version;                   /* PIER_DEPLOY_STATE_VERSION */
    char *deploy_id;               /* the deploy that wrote it */
    int64_t time;                  /* when, seconds since the epoch */
    pier_deploy_state_file *files; /* sorted by key once parsed or finished */
    size_t count;                  /* their number */
    size_t cap;                    /* allocated */
} pier_deploy_state;

/* An empty state (deploy_id may be NULL). */
pier_deploy_state *pier_deploy_state_new(const char *deploy_id, int64_t time);
void pier_deploy_state_free(pier_deploy_state *s);
/* Appends an entry for key (zeroed but for the key) and returns it,
 * borrowed until the next add. Call pier_deploy_state_sort after adding
 * out of order. */
pier_deploy_state_file *pier_deploy_state_add(pier_deploy_state *s, const char *key);
void pier_deploy_state_sort(pier_deploy_state *s);
/* Binary search (the state must be sorted); NULL when absent. */
const pier_deploy_state_file *pier_deploy_state_find(const pier_deploy_state *s, const char *key);
/* Records the ETag S3 returned for an upload (quotes removed).
 * PIER_ENOTFOUND when key is not in the state. */
int pier_deploy_state_set_etag(pier_deploy_state *s, const char *key, const char *etag);

/* Parses the manifest JSON (what names it in errors: "s3://b/p/.pier/..."). */
int pier_deploy_state_parse(pier_deploy_state **out, const char *text, size_t len,
                            const char *what);
/* Appends the manifest JSON to out (indented when pretty). */
int pier_deploy_state_to_json(pier_buf *out, const pier_deploy_state *s, bool pretty);

/* The manifest's key for a normalized prefix: prefix + ".pier/manifest.json"
 * (malloc'ed). */
char *pier_deploy_state_key(const char *prefix);

#endif
