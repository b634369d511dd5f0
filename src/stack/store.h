/*
 * store: the embedded object store's engine, over one data directory. No
 * HTTP here: s3api.c maps the S3 REST API onto these calls.
 *
 * Model
 *   - Buckets hold objects; a key is a byte string (1..1024 bytes, any byte
 *     but NUL), never a path: its file name is the SHA-256 of the key.
 *   - An object is one file: its data, then its metadata (key, size, ETag,
 *     modification time and the headers to give back on GET), then a
 *     16-byte trailer. It is written under tmp/, fsynced, then renamed into
 *     place, so readers see the old version or the new one, whole, and data
 *     and metadata switch together.
 *   - Each bucket keeps a sorted in-memory index of its keys (rebuilt by a
 *     scan at open) that lists in byte order without touching the disk.
 *   - Multipart uploads live under the bucket's uploads/ folder until they
 *     are completed (concatenated into one object) or aborted.
 *
 * Ownership: every pier_store_* out-parameter belongs to the caller and is
 * freed with the matching *_free (or *_clear for structs the caller holds).
 * All functions are thread-safe.
 */
#ifndef PIER_STORE_H
#define PIER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PIER_STORE_KEY_MAX   1024
#define PIER_STORE_ETAG_MAX  48 /* "hex32-10000" + NUL fits */
#define PIER_STORE_MAX_PARTS 10000

typedef struct pier_store pier_store;

typedef struct {
    char *name;  /* lower-case header name, e.g. "content-type", "x-amz-meta-a" */
    char *value; /* its value, as received */
} pier_store_header;

/* An object's (or a part's) metadata. */
typedef struct {
    char *key;                      /* the key bytes, NUL-terminated for convenience */
    size_t key_len;                 /* their count */
    uint64_t size;                  /* data bytes */
    int64_t mtime_ms;               /* last modified, ms since the epoch */
    char etag[PIER_STORE_ETAG_MAX]; /* lower-case hex MD5, or "hex-N" for multipart; no quotes */
    pier_store_header *headers;     /* headers given at put time, in order */
    size_t header_count;            /* their count */
} pier_store_meta;

/* Frees what m holds and zeroes it (m itself is not freed). */
void pier_store_meta_clear(pier_store_meta *m);
/* Appends a header (both strings copied). */
void pier_store_meta_add(pier_store_meta *m, const char *name, const char *value);
/* The value of header name (case-insensitive), or NULL. Borrowed. */
const char *pier_store_meta_get(const pier_store_meta *m, const char *name);

typedef struct {
    uint64_t min_part_size; /* every part but the last of a multipart upload; 5 MiB by default */
} pier_store_options;

/* Opens (creating when needed) the store in dir: removes leftover temp
 * files, loads the buckets and rebuilds each index. opts may be NULL. */
int pier_store_open(pier_store **out, const char *dir, const pier_store_options *opts);
void pier_store_free(pier_store *s);

/* ---- buckets ---- */

typedef struct {
    char name[64];      /* the bucket's name */
    int64_t created_ms; /* creation time */
    bool public_read;   /* anonymous GET/HEAD of objects allowed */
} pier_store_bucket;

/* True when name follows S3's bucket naming rules (3-63 of a-z 0-9 . -). */
bool pier_store_bucket_name_ok(const char *name);
/* PIER_EEXISTS when it exists, PIER_EINVALID for a bad name. */
int pier_store_bucket_create(pier_store *s, const char *name);
/* PIER_ENOTFOUND, or PIER_ECONFLICT when it still holds objects. */
int pier_store_bucket_delete(pier_store *s, const char *name);
/* PIER_ENOTFOUND when missing; out may be NULL. */
int pier_store_bucket_head(pier_store *s, const char *name, pier_store_bucket *out);
int pier_store_bucket_set_public(pier_store *s, const char *name, bool public_read);
/* All buckets in name order; free *out with free(). */
int pier_store_bucket_list(pier_store *s, pier_store_bucket **out, size_t *count);

/* ---- objects ---- */

/* A write in progress (an object or a part): data goes to a temp file. */
typedef struct pier_store_put pier_store_put;

/* Starts writing key into bucket (PIER_ENOTFOUND: no bucket; PIER_EINVALID:
 * bad key). */
int pier_store_put_begin(pier_store_put **out, pier_store *s, const char *bucket, const char *key,
                         size_t key_len);
int pier_store_put_write(pier_store_put *p, const void *data, size_t n);
/* Bytes written so far, and the MD5 of them (valid once all is written). */
uint64_t pier_store_put_size(const pier_store_put *p);
void pier_store_put_md5(pier_store_put *p, unsigned char md5[16]);
/* Makes the object visible with the given headers (copied; may be NULL/0)
 * and frees p, whatever the outcome. When out is not NULL it receives the
 * stored metadata. */
int pier_store_put_commit(pier_store_put *p, const pier_store_header *headers, size_t header_count,
                          pier_store_meta *out);
/* Drops the temp file and frees p. Accepts NULL. */
void pier_store_put_abort(pier_store_put *p);

/* Opens the current version of an object: *fd (caller closes) holds the data
 * at offset 0..meta->size. PIER_ENOTFOUND for a missing bucket or key (the
 * message says which). */
int pier_store_get(pier_store *s, const char *bucket, const char *key, size_t key_len, int *fd,
                   pier_store_meta *meta);
int pier_store_head(pier_store *s, const char *bucket, const char *key, size_t key_len,
                    pier_store_meta *meta);
/* PIER_ENOTFOUND when the key (or bucket) does not exist. */
int pier_store_delete(pier_store *s, const char *bucket, const char *key, size_t key_len);
/* Copies an object's data. With headers == NULL the source's headers are
 * kept; otherwise they are replaced by the given ones, except the
 * source's x-amz-checksum-* headers, which describe the data and follow it. */
int pier_store_copy(pier_store *s, const char *src_bucket, const char *src_key, size_t src_len,
                    const char *dst_bucket, const char *dst_key, size_t dst_len,
                    const pier_store_header *headers, size_t header_count, pier_store_meta *out);

/* ---- listing ---- */

typedef struct {
    const char *prefix;      /* only keys starting with it (may be NULL) */
    size_t prefix_len;       /* its length */
    const char *delimiter;   /* group keys at its first occurrence after prefix (NULL: none) */
    size_t delimiter_len;    /* its length */
    const char *start_after; /* only keys after it; a key or common prefix (NULL: from the start) */
    size_t start_after_len;  /* its length */
    size_t max_keys;         /* objects + common prefixes returned, at most (0: none) */
} pier_store_list_options;

typedef struct {
    char *key;                      /* key bytes (NUL-terminated) */
    size_t key_len;                 /* their count */
    uint64_t size;                  /* data bytes */
    int64_t mtime_ms;               /* last modified */
    char etag[PIER_STORE_ETAG_MAX]; /* as in pier_store_meta */
} pier_store_entry;

typedef struct {
    pier_store_entry *objects; /* in key order */
    size_t object_count;       /* their count */
    char **prefixes;           /* common prefixes (NUL-terminated), in order */
    size_t *prefix_lens;       /* their lengths */
    size_t prefix_count;       /* their count */
    bool truncated;            /* more items follow */
    char *last;                /* the last item returned (key or prefix), for the next page */
    size_t last_len;           /* its length */
} pier_store_list_result;

int pier_store_list(pier_store *s, const char *bucket, const pier_store_list_options *o,
                    pier_store_list_result *out);
void pier_store_list_result_clear(pier_store_list_result *r);
/* The number of objects in a bucket (PIER_ENOTFOUND when missing). */
int pier_store_count(pier_store *s, const char *bucket, uint64_t *count);

/* ---- multipart uploads ---- */

#define PIER_STORE_UPLOAD_ID_LEN 32

typedef struct {
    char upload_id[PIER_STORE_UPLOAD_ID_LEN + 1]; /* opaque id */
    char *key;                                    /* the object's key */
    size_t key_len;                               /* its length */
    int64_t initiated_ms;                         /* creation time */
} pier_store_upload;

typedef struct {
    unsigned number;                /* 1..10000 */
    uint64_t size;                  /* bytes */
    int64_t mtime_ms;               /* when uploaded */
    char etag[PIER_STORE_ETAG_MAX]; /* hex MD5 */
} pier_store_part;

/* Creates an upload; headers (copied) become the object's on completion. */
int pier_store_upload_create(pier_store *s, const char *bucket, const char *key, size_t key_len,
                             const pier_store_header *headers, size_t header_count,
                             char upload_id[PIER_STORE_UPLOAD_ID_LEN + 1]);
/* Reads an upload's key and headers (PIER_ENOTFOUND: no such upload). */
int pier_store_upload_head(pier_store *s, const char *bucket, const char *upload_id,
                           pier_store_meta *meta);
/* Starts writing part `number`; commit with pier_store_put_commit (its
 * headers are stored with the part), which replaces an earlier part of that
 * number. */
int pier_store_part_begin(pier_store_put **out, pier_store *s, const char *bucket,
                          const char *upload_id, unsigned number);
/* The parts uploaded so far, by number; free *out with free(). */
int pier_store_part_list(pier_store *s, const char *bucket, const char *upload_id,
                         pier_store_part **out, size_t *count);
/* The uploads in progress in bucket, by key then time; free with
 * pier_store_upload_list_free. */
int pier_store_upload_list(pier_store *s, const char *bucket, pier_store_upload **out,
                           size_t *count);
void pier_store_upload_list_free(pier_store_upload *u, size_t count);

typedef struct {
    unsigned number;  /* part number */
    const char *etag; /* as the client sent it (quotes allowed) */
} pier_store_complete_part;

/* Joins the listed parts into the object. PIER_ENOTFOUND: no such upload;
 * PIER_EINVALID with the message starting "InvalidPartOrder", "InvalidPart"
 * or "EntityTooSmall" naming the part at fault. */
int pier_store_upload_complete(pier_store *s, const char *bucket, const char *upload_id,
                               const pier_store_complete_part *parts, size_t count,
                               pier_store_meta *out);
int pier_store_upload_abort(pier_store *s, const char *bucket, const char *upload_id);

#endif
