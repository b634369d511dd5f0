/*
 * store: see store.h for the model. This note covers the layout on disk,
 * the invariants and the costs.
 *
 * Layout (DIR is the data directory)
 *   DIR/tmp/                          temp files; emptied at open
 *   DIR/buckets/NAME/bucket.json      {"created_ms":..,"public_read":..}
 *   DIR/buckets/NAME/objects/HH/HASH  one file per object; HASH is the hex
 *                                     SHA-256 of the key, HH its first byte
 *   DIR/buckets/NAME/uploads/ID/upload      the upload's key and headers
 *   DIR/buckets/NAME/uploads/ID/part-NNNNN  one file per part
 *
 * Each file is data followed by its metadata (storefile.h has the format);
 * upload and part files use the same format. Each bucket's keys are also in
 * a sorted in-memory index (storeindex.h).
 *
 * Invariants
 *   - A file under objects/ or uploads/ is complete: it was written and
 *     fsynced under tmp/ and renamed into place (rename is atomic on one
 *     file system); the directory is fsynced after. kill -9 at any moment
 *     leaves the previous version or the new one, plus junk in tmp/.
 *   - A key's file name is derived from a hash, so no key ("../", "//",
 *     "%2F", 1024 bytes ...) can name a path outside its bucket.
 *   - Each bucket's index equals the set of files in objects/: both change
 *     together under the bucket's mutex (rename + index update), so
 *     concurrent writers to one key leave the index and the file agreeing on
 *     the last rename.
 *   - The store's rwlock guards the bucket table: object operations hold it
 *     shared while they use a bucket, bucket create and delete hold it
 *     exclusively.
 *
 * Costs
 *   The index (a skip list per bucket): O(log n) seek, O(1) per listed
 *   key, about 120 bytes + key length per object in memory. Opening the
 *   store reads each object's trailer once (one open + two preads per
 *   object). A put costs the data's write, two fsyncs and a rename; a get,
 *   one open and two preads. No SQLite: the files are the truth, and the
 *   index is rebuilt from them, so nothing can disagree after a crash.
 */
#include "stack/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "stack/storefile.h"
#include "stack/storeindex.h"

typedef struct {
    char name[64];         /* bucket name */
    char *dir;             /* DIR/buckets/NAME */
    int64_t created_ms;    /* creation time */
    bool public_read;      /* anonymous reads allowed */
    pthread_mutex_t lock;  /* guards index and renames into objects/ */
    pier_storeindex index; /* the keys */
} bucket;

struct pier_store {
    char *dir;              /* the data directory */
    char *tmp_dir;          /* DIR/tmp */
    char *buckets_dir;      /* DIR/buckets */
    uint64_t min_part_size; /* multipart minimum for all parts but the last */
    pthread_rwlock_t lock;  /* guards the bucket table */
    bucket **buckets;       /* sorted by name */
    size_t bucket_count;    /* used */
    size_t bucket_cap;      /* allocated */
};

/* ---- small helpers ---- */

static bool key_ok(const char *key, size_t key_len)
{
    return key && key_len > 0 && key_len <= PIER_STORE_KEY_MAX && !memchr(key, '\0', key_len);
}

static bool upload_id_ok(const char *id)
{
    if (!id || strlen(id) != PIER_STORE_UPLOAD_ID_LEN)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* DIR/tmp/KIND-RANDOM, created empty and open for writing. */
static int tmp_create(pier_store *s, const char *kind, char **path_out, int *fd_out)
{
    char rnd[17];
    pier_random_token(rnd, 16, false);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "%s/%s-%s", s->tmp_dir, kind, rnd);
    int fd = open(b.ptr, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        int rc = pier_error_set_errno(PIER_EIO, "create %s", b.ptr);
        pier_buf_free(&b);
        return rc;
    }
    *path_out = pier_buf_detach(&b);
    *fd_out = fd;
    return 0;
}

/* ---- metadata records ---- */

void pier_store_meta_clear(pier_store_meta *m)
{
    if (!m)
        return;
    free(m->key);
    for (size_t i = 0; i < m->header_count; i++) {
        free(m->headers[i].name);
        free(m->headers[i].value);
    }
    free(m->headers);
    memset(m, 0, sizeof *m);
}

void pier_store_meta_add(pier_store_meta *m, const char *name, const char *value)
{
    m->headers = pier_realloc(m->headers, (m->header_count + 1) * sizeof *m->headers);
    m->headers[m->header_count].name = pier_strdup(name);
    m->headers[m->header_count].value = pier_strdup(value);
    m->header_count++;
}

const char *pier_store_meta_get(const pier_store_meta *m, const char *name)
{
    for (size_t i = 0; i < m->header_count; i++)
        if (pier_str_ieq(m->headers[i].name, name))
            return m->headers[i].value;
    return NULL;
}

/* ---- buckets ---- */

bool pier_store_bucket_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '-')
            return false;
        if ((i == 0 || i == n - 1) && !alnum)
            return false;
        if (c == '.' && name[i + 1] == '.')
            return false;
    }
    return true;
}

/* Binary search; returns the index where name is or would go. */
static size_t bucket_pos(pier_store *s, const char *name, bool *found)
{
    size_t lo = 0, hi = s->bucket_count;
    *found = false;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->buckets[mid]->name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The bucket, with the store's lock held by the caller; sets the error. */
static bucket *bucket_find(pier_store *s, const char *name)
{
    bool found = false;
    size_t i = name ? bucket_pos(s, name, &found) : 0;
    if (!found) {
        pier_error_set(PIER_ENOTFOUND, "NoSuchBucket: bucket '%s' does not exist",
                       name ? name : "");
        return NULL;
    }
    return s->buckets[i];
}

static void bucket_free(bucket *b)
{
    if (!b)
        return;
    pier_storeindex_destroy(&b->index);
    pthread_mutex_destroy(&b->lock);
    free(b->dir);
    free(b);
}

static bucket *bucket_new(pier_store *s, const char *name)
{
    bucket *b = pier_calloc(1, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    b->dir = pier_path_join(s->buckets_dir, name);
    pthread_mutex_init(&b->lock, NULL);
    pier_storeindex_init(&b->index);
    return b;
}

static void bucket_insert(pier_store *s, bucket *b)
{
    bool found;
    size_t i = bucket_pos(s, b->name, &found);
    if (s->bucket_count == s->bucket_cap) {
        s->bucket_cap = s->bucket_cap ? s->bucket_cap * 2 : 8;
        s->buckets = pier_realloc(s->buckets, s->bucket_cap * sizeof *s->buckets);
    }
    memmove(s->buckets + i + 1, s->buckets + i, (s->bucket_count - i) * sizeof *s->buckets);
    s->buckets[i] = b;
    s->bucket_count++;
}

static int bucket_config_write(const char *dir, int64_t created_ms, bool public_read)
{
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "{\"created_ms\": %lld, \"public_read\": %s}\n", (long long)created_ms,
                    public_read ? "true" : "false");
    char *path = pier_path_join(dir, "bucket.json");
    int rc = pier_file_write_atomic(path, b.ptr, b.len, 0644);
    free(path);
    pier_buf_free(&b);
    return rc;
}

static char *object_path(const bucket *b, const char *key, size_t key_len)
{
    char hex[65];
    pier_sha256_hex(hex, key, key_len);
    pier_buf p = PIER_BUF_INIT;
    pier_buf_printf(&p, "%s/objects/%.2s/%s", b->dir, hex, hex);
    return pier_buf_detach(&p);
}

/* Reads every object's metadata into the bucket's index. */
static int bucket_scan(bucket *b)
{
    char *objects = pier_path_join(b->dir, "objects");
    DIR *d = opendir(objects);
    if (!d) {
        int rc = errno == ENOENT ? pier_file_mkdirs(objects, 0755)
                                 : pier_error_set_errno(PIER_EIO, "open %s", objects);
        free(objects);
        return rc;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *shard = pier_path_join(objects, de->d_name);
        DIR *sd = opendir(shard);
        if (sd) {
            struct dirent *fe;
            while ((fe = readdir(sd))) {
                if (fe->d_name[0] == '.')
                    continue;
                char *path = pier_path_join(shard, fe->d_name);
                pier_store_meta m;
                if (pier_storefile_read_path(path, &m) == 0 && m.key) {
                    pier_storeindex_upsert(&b->index, &m);
                } else {
                    PIER_WARN("store: skipping unreadable object file %s: %s", path,
                              pier_error_last());
                }
                pier_store_meta_clear(&m);
                free(path);
            }
            closedir(sd);
        }
        free(shard);
    }
    closedir(d);
    free(objects);
    return 0;
}

static int bucket_load(pier_store *s, const char *name)
{
    bucket *b = bucket_new(s, name);
    char *cfg = pier_path_join(b->dir, "bucket.json");
    json_t *j = NULL;
    if (pier_json_load_file(&j, cfg) == 0) {
        b->created_ms = pier_json_int(j, "created_ms", 0);
        b->public_read = pier_json_bool(j, "public_read", false);
        json_decref(j);
    } else {
        struct stat st;
        b->created_ms =
            stat(b->dir, &st) == 0 ? (int64_t)st.st_mtime * 1000 : pier_storefile_now_ms();
    }
    free(cfg);
    int rc = bucket_scan(b);
    if (rc) {
        bucket_free(b);
        return rc;
    }
    bucket_insert(s, b);
    return 0;
}

int pier_store_open(pier_store **out, const char *dir, const pier_store_options *opts)
{
    int rc = 0;
    *out = NULL;
    pier_store *s = pier_calloc(1, sizeof *s);
    s->dir = pier_strdup(dir);
    s->tmp_dir = pier_path_join(dir, "tmp");
    s->buckets_dir = pier_path_join(dir, "buckets");
    s->min_part_size = opts && opts->min_part_size ? opts->min_part_size : (uint64_t)5 << 20;
    pthread_rwlock_init(&s->lock, NULL);
    if ((rc = pier_file_mkdirs(s->buckets_dir, 0755)))
        goto done;
    /* Whatever is in tmp/ was never renamed into place: it belongs to no
     * object and is dropped. */
    if ((rc = pier_file_remove_tree(s->tmp_dir)) || (rc = pier_file_mkdirs(s->tmp_dir, 0755)))
        goto done;
    DIR *d = opendir(s->buckets_dir);
    if (!d) {
        rc = pier_error_set_errno(PIER_EIO, "open %s", s->buckets_dir);
        goto done;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!pier_store_bucket_name_ok(de->d_name))
            continue;
        if ((rc = bucket_load(s, de->d_name)))
            break;
    }
    closedir(d);
done:
    if (rc) {
        pier_error_wrap(rc, "open store %s", dir);
        pier_store_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void pier_store_free(pier_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->bucket_count; i++)
        bucket_free(s->buckets[i]);
    free(s->buckets);
    pthread_rwlock_destroy(&s->lock);
    free(s->dir);
    free(s->tmp_dir);
    free(s->buckets_dir);
    free(s);
}

int pier_store_bucket_create(pier_store *s, const char *name)
{
    int rc = 0;
    char *tmp = NULL, *final = NULL;
    if (!pier_store_bucket_name_ok(name))
        return pier_error_set(PIER_EINVALID,
                              "InvalidBucketName: '%s' is not a valid bucket name (3-63 "
                              "characters of a-z 0-9 . -)",
                              name ? name : "");
    pthread_rwlock_wrlock(&s->lock);
    bool found;
    bucket_pos(s, name, &found);
    if (found) {
        rc = pier_error_set(PIER_EEXISTS, "bucket '%s' already exists", name);
        goto done;
    }
    /* Built under tmp/ and renamed, so a bucket appears whole. */
    char rnd[17];
    pier_random_token(rnd, 16, false);
    pier_buf t = PIER_BUF_INIT;
    pier_buf_printf(&t, "%s/bucket-%s", s->tmp_dir, rnd);
    tmp = pier_buf_detach(&t);
    final = pier_path_join(s->buckets_dir, name);
    char *objects = pier_path_join(tmp, "objects");
    char *uploads = pier_path_join(tmp, "uploads");
    int64_t created = pier_storefile_now_ms();
    rc = pier_file_mkdirs(objects, 0755);
    if (!rc)
        rc = pier_file_mkdirs(uploads, 0755);
    if (!rc)
        rc = bucket_config_write(tmp, created, false);
    free(objects);
    free(uploads);
    if (rc)
        goto done;
    if (rename(tmp, final) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "rename %s to %s", tmp, final);
        goto done;
    }
    pier_storefile_fsync_dir(s->buckets_dir);
    bucket *b = bucket_new(s, name);
    b->created_ms = created;
    bucket_insert(s, b);
done:
    pthread_rwlock_unlock(&s->lock);
    if (rc && tmp)
        pier_file_remove_tree(tmp);
    free(tmp);
    free(final);
    return rc;
}

int pier_store_bucket_delete(pier_store *s, const char *name)
{
    int rc = 0;
    char *trash = NULL;
    pthread_rwlock_wrlock(&s->lock);
    bool found;
    size_t i = name ? bucket_pos(s, name, &found) : 0;
    if (!name || !found) {
        rc = pier_error_set(PIER_ENOTFOUND, "NoSuchBucket: bucket '%s' does not exist",
                            name ? name : "");
        goto done;
    }
    bucket *b = s->buckets[i];
    if (b->index.count > 0) {
        rc = pier_error_set(PIER_ECONFLICT, "BucketNotEmpty: bucket '%s' holds %zu objects", name,
                            b->index.count);
        goto done;
    }
    char rnd[17];
    pier_random_token(rnd, 16, false);
    pier_buf t = PIER_BUF_INIT;
    pier_buf_printf(&t, "%s/trash-%s", s->tmp_dir, rnd);
    trash = pier_buf_detach(&t);
    if (rename(b->dir, trash) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "rename %s", b->dir);
        goto done;
    }
    pier_storefile_fsync_dir(s->buckets_dir);
    memmove(s->buckets + i, s->buckets + i + 1, (s->bucket_count - i - 1) * sizeof *s->buckets);
    s->bucket_count--;
    bucket_free(b);
done:
    pthread_rwlock_unlock(&s->lock);
    if (!rc && trash)
        pier_file_remove_tree(trash);
    free(trash);
    return rc;
}

int pier_store_bucket_head(pier_store *s, const char *name, pier_store_bucket *out)
{
    int rc = 0;
    pthread_rwlock_rdlock(&s->lock);
    bucket *b = bucket_find(s, name);
    if (!b)
        rc = PIER_ENOTFOUND;
    else if (out) {
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", b->name);
        out->created_ms = b->created_ms;
        out->public_read = b->public_read;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

int pier_store_bucket_set_public(pier_store *s, const char *name, bool public_read)
{
    int rc = 0;
    pthread_rwlock_wrlock(&s->lock);
    bucket *b = bucket_find(s, name);
    if (!b)
        rc = PIER_ENOTFOUND;
    else if (!(rc = bucket_config_write(b->dir, b->created_ms, public_read)))
        b->public_read = public_read;
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

int pier_store_bucket_list(pier_store *s, pier_store_bucket **out, size_t *count)
{
    pthread_rwlock_rdlock(&s->lock);
    *count = s->bucket_count;
    *out = pier_calloc(s->bucket_count ? s->bucket_count : 1, sizeof **out);
    for (size_t i = 0; i < s->bucket_count; i++) {
        snprintf((*out)[i].name, sizeof(*out)[i].name, "%s", s->buckets[i]->name);
        (*out)[i].created_ms = s->buckets[i]->created_ms;
        (*out)[i].public_read = s->buckets[i]->public_read;
    }
    pthread_rwlock_unlock(&s->lock);
    return 0;
}

int pier_store_count(pier_store *s, const char *name, uint64_t *count)
{
    int rc = 0;
    pthread_rwlock_rdlock(&s->lock);
    bucket *b = bucket_find(s, name);
    if (!b) {
        rc = PIER_ENOTFOUND;
    } else {
        pthread_mutex_lock(&b->lock);
        *count = b->index.count;
        pthread_mutex_unlock(&b->lock);
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

/* ---- writing objects ---- */

struct pier_store_put {
    pier_store *s;                                /* the store */
    char bucket[64];                              /* target bucket */
    char *key;                                    /* object key (NULL for a part) */
    size_t key_len;                               /* its length */
    char upload_id[PIER_STORE_UPLOAD_ID_LEN + 1]; /* for a part */
    unsigned part;                                /* part number, 0 for an object */
    char *tmp_path;                               /* the temp file */
    int fd;                                       /* open on it */
    pier_hash *md5;                               /* MD5 of the data so far */
    unsigned char md5_bytes[PIER_MD5_LEN];        /* final MD5 once taken */
    bool md5_done;                                /* md5_bytes is valid */
    uint64_t size;                                /* bytes written */
};

static pier_store_put *put_new(pier_store *s, const char *bucket_name)
{
    pier_store_put *p = pier_calloc(1, sizeof *p);
    p->s = s;
    p->fd = -1;
    snprintf(p->bucket, sizeof p->bucket, "%s", bucket_name);
    p->md5 = pier_hash_new(PIER_HASH_MD5);
    return p;
}

int pier_store_put_begin(pier_store_put **out, pier_store *s, const char *bucket_name,
                         const char *key, size_t key_len)
{
    *out = NULL;
    if (!key_ok(key, key_len))
        return pier_error_set(PIER_EINVALID,
                              "KeyTooLongError: a key must be 1 to %d bytes without NUL",
                              PIER_STORE_KEY_MAX);
    int rc = pier_store_bucket_head(s, bucket_name, NULL);
    if (rc)
        return rc;
    pier_store_put *p = put_new(s, bucket_name);
    p->key = pier_malloc(key_len + 1);
    memcpy(p->key, key, key_len);
    p->key[key_len] = '\0';
    p->key_len = key_len;
    if ((rc = tmp_create(s, "put", &p->tmp_path, &p->fd))) {
        pier_store_put_abort(p);
        return rc;
    }
    *out = p;
    return 0;
}

int pier_store_put_write(pier_store_put *p, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    int rc = pier_storefile_write(p->fd, data, n, p->tmp_path);
    if (rc)
        return rc;
    pier_hash_update(p->md5, data, n);
    p->size += n;
    return 0;
}

uint64_t pier_store_put_size(const pier_store_put *p)
{
    return p->size;
}

void pier_store_put_md5(pier_store_put *p, unsigned char md5[16])
{
    if (!p->md5_done) {
        pier_hash_final(p->md5, p->md5_bytes);
        p->md5_done = true;
    }
    memcpy(md5, p->md5_bytes, PIER_MD5_LEN);
}

void pier_store_put_abort(pier_store_put *p)
{
    if (!p)
        return;
    if (p->fd >= 0)
        close(p->fd);
    if (p->tmp_path)
        unlink(p->tmp_path);
    free(p->tmp_path);
    free(p->key);
    pier_hash_free(p->md5);
    free(p);
}

/* Renames a sealed temp file into place as meta->key's object and updates
 * the index, together under the bucket's lock. */
static int install_object(pier_store *s, const char *bucket_name, const char *tmp_path,
                          const pier_store_meta *meta)
{
    int rc = 0;
    char *path = NULL, *shard = NULL;
    pthread_rwlock_rdlock(&s->lock);
    bucket *b = bucket_find(s, bucket_name);
    if (!b) {
        rc = PIER_ENOTFOUND;
        goto done;
    }
    path = object_path(b, meta->key, meta->key_len);
    shard = pier_strndup(path, strrchr(path, '/') - path);
    if (mkdir(shard, 0755) == 0) {
        /* a new shard: its entry in objects/ must be durable too */
        char *objects = pier_strndup(shard, strrchr(shard, '/') - shard);
        pier_storefile_fsync_dir(objects);
        free(objects);
    } else if (errno != EEXIST) {
        rc = pier_error_set_errno(PIER_EIO, "mkdir %s", shard);
        goto done;
    }
    pthread_mutex_lock(&b->lock);
    if (rename(tmp_path, path) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "rename %s to %s", tmp_path, path);
    } else {
        pier_storeindex_upsert(&b->index, meta);
    }
    pthread_mutex_unlock(&b->lock);
done:
    pthread_rwlock_unlock(&s->lock);
    if (!rc)
        rc = pier_storefile_fsync_dir(shard);
    free(path);
    free(shard);
    return rc;
}

static char *part_path(pier_store *s, const char *bucket_name, const char *upload_id,
                       unsigned number)
{
    pier_buf p = PIER_BUF_INIT;
    if (number)
        pier_buf_printf(&p, "%s/%s/uploads/%s/part-%05u", s->buckets_dir, bucket_name, upload_id,
                        number);
    else
        pier_buf_printf(&p, "%s/%s/uploads/%s", s->buckets_dir, bucket_name, upload_id);
    return pier_buf_detach(&p);
}

int pier_store_put_commit(pier_store_put *p, const pier_store_header *headers, size_t header_count,
                          pier_store_meta *out)
{
    int rc = 0;
    pier_store_meta meta;
    memset(&meta, 0, sizeof meta);
    unsigned char md5[PIER_MD5_LEN];
    pier_store_put_md5(p, md5);
    if (p->key)
        pier_storefile_set_key(&meta, p->key, p->key_len);
    meta.size = p->size;
    pier_hex_encode(meta.etag, md5, PIER_MD5_LEN);
    meta.mtime_ms = pier_storefile_now_ms();
    pier_storefile_add_headers(&meta, headers, header_count);
    if ((rc = pier_storefile_seal(p->fd, p->tmp_path, &meta)))
        goto done;
    close(p->fd);
    p->fd = -1;
    if (p->part) {
        char *dst = part_path(p->s, p->bucket, p->upload_id, p->part);
        if (rename(p->tmp_path, dst) != 0) {
            rc = errno == ENOENT
                     ? pier_error_set(PIER_ENOTFOUND, "NoSuchUpload: upload %s does not exist",
                                      p->upload_id)
                     : pier_error_set_errno(PIER_EIO, "rename to %s", dst);
        } else {
            char *dir = part_path(p->s, p->bucket, p->upload_id, 0);
            rc = pier_storefile_fsync_dir(dir);
            free(dir);
        }
        free(dst);
    } else {
        rc = install_object(p->s, p->bucket, p->tmp_path, &meta);
    }
    if (!rc) {
        free(p->tmp_path); /* renamed: nothing left to unlink */
        p->tmp_path = NULL;
        pier_storefile_move(out, &meta);
    }
done:
    pier_store_meta_clear(&meta);
    pier_store_put_abort(p);
    return rc;
}

/* ---- reading, deleting, copying ---- */

/* Opens bucket/key's file; NoSuchBucket / NoSuchKey as PIER_ENOTFOUND. */
static int object_open(pier_store *s, const char *bucket_name, const char *key, size_t key_len,
                       int *fd_out, pier_store_meta *meta)
{
    int rc = 0, fd = -1;
    char *path = NULL;
    memset(meta, 0, sizeof *meta);
    if (!key_ok(key, key_len))
        return pier_error_set(PIER_ENOTFOUND, "NoSuchKey: the key does not exist");
    pthread_rwlock_rdlock(&s->lock);
    bucket *b = bucket_find(s, bucket_name);
    if (b)
        path = object_path(b, key, key_len);
    pthread_rwlock_unlock(&s->lock);
    if (!b)
        return PIER_ENOTFOUND;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT
                 ? pier_error_set(PIER_ENOTFOUND, "NoSuchKey: %s/%.*s does not exist", bucket_name,
                                  (int)(key_len > 200 ? 200 : key_len), key)
                 : pier_error_set_errno(PIER_EIO, "open %s", path);
        goto done;
    }
    if ((rc = pier_storefile_read(fd, path, meta)))
        goto done;
    if (!meta->key || pier_storeindex_cmp(meta->key, meta->key_len, key, key_len) != 0) {
        rc = pier_error_set(PIER_ENOTFOUND, "NoSuchKey: the key does not exist");
        goto done;
    }
done:
    free(path);
    if (rc) {
        if (fd >= 0)
            close(fd);
        pier_store_meta_clear(meta);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

int pier_store_get(pier_store *s, const char *bucket_name, const char *key, size_t key_len, int *fd,
                   pier_store_meta *meta)
{
    *fd = -1;
    return object_open(s, bucket_name, key, key_len, fd, meta);
}

int pier_store_head(pier_store *s, const char *bucket_name, const char *key, size_t key_len,
                    pier_store_meta *meta)
{
    int fd = -1;
    int rc = object_open(s, bucket_name, key, key_len, &fd, meta);
    if (fd >= 0)
        close(fd);
    return rc;
}

int pier_store_delete(pier_store *s, const char *bucket_name, const char *key, size_t key_len)
{
    int rc = 0;
    char *path = NULL, *shard = NULL;
    if (!key_ok(key, key_len))
        return pier_error_set(PIER_ENOTFOUND, "NoSuchKey: the key does not exist");
    pthread_rwlock_rdlock(&s->lock);
    bucket *b = bucket_find(s, bucket_name);
    if (!b) {
        rc = PIER_ENOTFOUND;
        goto done;
    }
    path = object_path(b, key, key_len);
    pthread_mutex_lock(&b->lock);
    if (unlink(path) != 0) {
        rc = errno == ENOENT ? pier_error_set(PIER_ENOTFOUND, "NoSuchKey: the key does not exist")
                             : pier_error_set_errno(PIER_EIO, "unlink %s", path);
    } else {
        pier_storeindex_remove(&b->index, key, key_len);
    }
    pthread_mutex_unlock(&b->lock);
done:
    pthread_rwlock_unlock(&s->lock);
    if (!rc) {
        shard = pier_strndup(path, strrchr(path, '/') - path);
        pier_storefile_fsync_dir(shard);
    }
    free(path);
    free(shard);
    return rc;
}

int pier_store_copy(pier_store *s, const char *src_bucket, const char *src_key, size_t src_len,
                    const char *dst_bucket, const char *dst_key, size_t dst_len,
                    const pier_store_header *headers, size_t header_count, pier_store_meta *out)
{
    int rc = 0, in = -1, fd = -1;
    char *tmp = NULL;
    pier_hash *md5 = NULL;
    pier_store_meta src, meta;
    memset(&src, 0, sizeof src);
    memset(&meta, 0, sizeof meta);
    if (!key_ok(dst_key, dst_len))
        return pier_error_set(PIER_EINVALID, "KeyTooLongError: bad destination key");
    if ((rc = pier_store_bucket_head(s, dst_bucket, NULL)))
        return rc;
    if ((rc = object_open(s, src_bucket, src_key, src_len, &in, &src)))
        return rc;
    if ((rc = tmp_create(s, "copy", &tmp, &fd)))
        goto done;
    md5 = pier_hash_new(PIER_HASH_MD5);
    if ((rc = pier_storefile_copy(in, 0, src.size, fd, tmp, md5)))
        goto done;
    unsigned char digest[PIER_MD5_LEN];
    pier_hash_final(md5, digest);
    pier_storefile_set_key(&meta, dst_key, dst_len);
    meta.size = src.size;
    pier_hex_encode(meta.etag, digest, PIER_MD5_LEN);
    meta.mtime_ms = pier_storefile_now_ms();
    if (headers) {
        pier_storefile_add_headers(&meta, headers, header_count);
        for (size_t i = 0; i < src.header_count; i++)
            if (pier_str_starts_with(src.headers[i].name, "x-amz-checksum-") &&
                !pier_store_meta_get(&meta, src.headers[i].name))
                pier_store_meta_add(&meta, src.headers[i].name, src.headers[i].value);
    } else {
        pier_storefile_add_headers(&meta, src.headers, src.header_count);
    }
    if ((rc = pier_storefile_seal(fd, tmp, &meta)))
        goto done;
    close(fd);
    fd = -1;
    if ((rc = install_object(s, dst_bucket, tmp, &meta)))
        goto done;
    PIER_FREE(tmp);
    pier_storefile_move(out, &meta);
done:
    if (in >= 0)
        close(in);
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
    free(tmp);
    pier_hash_free(md5);
    pier_store_meta_clear(&src);
    pier_store_meta_clear(&meta);
    return rc;
}

/* ---- listing ---- */

/* The smallest byte string greater than every string starting with p:
 * p without its trailing 0xFF bytes, last byte + 1. False when none exists
 * (p is all 0xFF). */
static bool prefix_successor(const char *p, size_t n, char *out, size_t *out_len)
{
    while (n > 0 && (unsigned char)p[n - 1] == 0xFF)
        n--;
    if (n == 0)
        return false;
    memcpy(out, p, n);
    out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
    *out_len = n;
    return true;
}

/* The end of key's group: the index just past the first delimiter after
 * the prefix, or 0 when key does not fall into a group. */
static size_t group_end(const char *key, size_t key_len, const pier_store_list_options *o)
{
    if (!o->delimiter || o->delimiter_len == 0 || key_len < o->prefix_len)
        return 0;
    if (o->prefix_len && memcmp(key, o->prefix, o->prefix_len) != 0)
        return 0;
    for (size_t i = o->prefix_len; i + o->delimiter_len <= key_len; i++)
        if (memcmp(key + i, o->delimiter, o->delimiter_len) == 0)
            return i + o->delimiter_len;
    return 0;
}

/* The first node of the group-free range after group key[0..g]. */
static pier_storeindex_node *skip_group(pier_storeindex *l, const char *key, size_t g)
{
    char succ[PIER_STORE_KEY_MAX + 1];
    size_t succ_len;
    if (g > PIER_STORE_KEY_MAX || !prefix_successor(key, g, succ, &succ_len))
        return NULL;
    return pier_storeindex_seek(l, succ, succ_len, false, NULL);
}

static void result_add_prefix(pier_store_list_result *r, const char *p, size_t n)
{
    r->prefixes = pier_realloc(r->prefixes, (r->prefix_count + 1) * sizeof *r->prefixes);
    r->prefix_lens = pier_realloc(r->prefix_lens, (r->prefix_count + 1) * sizeof(size_t));
    r->prefixes[r->prefix_count] = pier_strndup(p, n);
    r->prefix_lens[r->prefix_count] = n;
    r->prefix_count++;
}

int pier_store_list(pier_store *s, const char *bucket_name, const pier_store_list_options *o,
                    pier_store_list_result *r)
{
    int rc = 0;
    memset(r, 0, sizeof *r);
    size_t obj_cap = 0;
    const char *last = NULL;
    size_t last_len = 0;
    pthread_rwlock_rdlock(&s->lock);
    bucket *b = bucket_find(s, bucket_name);
    if (!b) {
        pthread_rwlock_unlock(&s->lock);
        return PIER_ENOTFOUND;
    }
    pthread_mutex_lock(&b->lock);
    pier_storeindex *l = &b->index;
    const char *prefix = o->prefix ? o->prefix : "";
    pier_storeindex_node *x;
    if (o->start_after && o->start_after_len > 0 &&
        pier_storeindex_cmp(o->start_after, o->start_after_len, prefix, o->prefix_len) >= 0) {
        /* A start inside a group means that group was already given. */
        size_t g = group_end(o->start_after, o->start_after_len, o);
        if (g)
            x = skip_group(l, o->start_after, g);
        else
            x = pier_storeindex_seek(l, o->start_after, o->start_after_len, true, NULL);
    } else {
        x = pier_storeindex_seek(l, prefix, o->prefix_len, false, NULL);
    }
    size_t count = 0;
    while (x) {
        if (x->key_len < o->prefix_len || memcmp(x->key, prefix, o->prefix_len) != 0)
            break;
        if (count >= o->max_keys) {
            r->truncated = true;
            break;
        }
        size_t g = group_end(x->key, x->key_len, o);
        count++;
        if (g) {
            result_add_prefix(r, x->key, g);
            last = r->prefixes[r->prefix_count - 1];
            last_len = g;
            x = skip_group(l, x->key, g);
            continue;
        }
        if (r->object_count == obj_cap) {
            obj_cap = obj_cap ? obj_cap * 2 : 64;
            r->objects = pier_realloc(r->objects, obj_cap * sizeof *r->objects);
        }
        pier_store_entry *e = &r->objects[r->object_count++];
        e->key = pier_strndup(x->key, x->key_len);
        e->key_len = x->key_len;
        e->size = x->size;
        e->mtime_ms = x->mtime_ms;
        memcpy(e->etag, x->etag, sizeof e->etag);
        last = e->key;
        last_len = e->key_len;
        x = x->next[0];
    }
    if (last) {
        r->last = pier_strndup(last, last_len);
        r->last_len = last_len;
    }
    pthread_mutex_unlock(&b->lock);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

void pier_store_list_result_clear(pier_store_list_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->object_count; i++)
        free(r->objects[i].key);
    free(r->objects);
    for (size_t i = 0; i < r->prefix_count; i++)
        free(r->prefixes[i]);
    free(r->prefixes);
    free(r->prefix_lens);
    free(r->last);
    memset(r, 0, sizeof *r);
}

/* ---- multipart uploads ---- */

int pier_store_upload_create(pier_store *s, const char *bucket_name, const char *key,
                             size_t key_len, const pier_store_header *headers, size_t header_count,
                             char upload_id[PIER_STORE_UPLOAD_ID_LEN + 1])
{
    int rc = 0, fd = -1;
    char *tmp_dir = NULL, *file = NULL, *final = NULL;
    pier_store_meta meta;
    memset(&meta, 0, sizeof meta);
    if (!key_ok(key, key_len))
        return pier_error_set(PIER_EINVALID,
                              "KeyTooLongError: a key must be 1 to %d bytes without NUL",
                              PIER_STORE_KEY_MAX);
    if ((rc = pier_store_bucket_head(s, bucket_name, NULL)))
        return rc;
    unsigned char rnd[PIER_STORE_UPLOAD_ID_LEN / 2];
    pier_random_bytes(rnd, sizeof rnd);
    pier_hex_encode(upload_id, rnd, sizeof rnd);
    pier_buf t = PIER_BUF_INIT;
    pier_buf_printf(&t, "%s/upload-%s", s->tmp_dir, upload_id);
    tmp_dir = pier_buf_detach(&t);
    if (mkdir(tmp_dir, 0755) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "mkdir %s", tmp_dir);
        goto done;
    }
    file = pier_path_join(tmp_dir, "upload");
    fd = open(file, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = pier_error_set_errno(PIER_EIO, "create %s", file);
        goto done;
    }
    pier_storefile_set_key(&meta, key, key_len);
    meta.mtime_ms = pier_storefile_now_ms();
    pier_storefile_add_headers(&meta, headers, header_count);
    if ((rc = pier_storefile_seal(fd, file, &meta)))
        goto done;
    final = part_path(s, bucket_name, upload_id, 0);
    char *uploads = pier_strndup(final, strrchr(final, '/') - final);
    if (mkdir(uploads, 0755) != 0 && errno != EEXIST)
        rc = pier_error_set_errno(PIER_EIO, "mkdir %s", uploads);
    else if (rename(tmp_dir, final) != 0)
        rc = pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO, "rename to %s",
                                  final);
    else
        pier_storefile_fsync_dir(uploads);
    free(uploads);
done:
    if (fd >= 0)
        close(fd);
    if (rc && tmp_dir)
        pier_file_remove_tree(tmp_dir);
    free(tmp_dir);
    free(file);
    free(final);
    pier_store_meta_clear(&meta);
    return rc;
}

int pier_store_upload_head(pier_store *s, const char *bucket_name, const char *upload_id,
                           pier_store_meta *meta)
{
    memset(meta, 0, sizeof *meta);
    int rc = pier_store_bucket_head(s, bucket_name, NULL);
    if (rc)
        return rc;
    if (!upload_id_ok(upload_id))
        return pier_error_set(PIER_ENOTFOUND, "NoSuchUpload: upload '%s' does not exist",
                              upload_id ? upload_id : "");
    char *dir = part_path(s, bucket_name, upload_id, 0);
    char *file = pier_path_join(dir, "upload");
    rc = pier_storefile_read_path(file, meta);
    if (rc == PIER_ENOTFOUND)
        rc = pier_error_set(PIER_ENOTFOUND, "NoSuchUpload: upload '%s' does not exist", upload_id);
    free(dir);
    free(file);
    return rc;
}

int pier_store_part_begin(pier_store_put **out, pier_store *s, const char *bucket_name,
                          const char *upload_id, unsigned number)
{
    *out = NULL;
    if (number < 1 || number > PIER_STORE_MAX_PARTS)
        return pier_error_set(PIER_EINVALID,
                              "InvalidArgument: part number must be an integer between 1 and "
                              "%d",
                              PIER_STORE_MAX_PARTS);
    pier_store_meta m;
    int rc = pier_store_upload_head(s, bucket_name, upload_id, &m);
    pier_store_meta_clear(&m);
    if (rc)
        return rc;
    pier_store_put *p = put_new(s, bucket_name);
    snprintf(p->upload_id, sizeof p->upload_id, "%s", upload_id);
    p->part = number;
    if ((rc = tmp_create(s, "part", &p->tmp_path, &p->fd))) {
        pier_store_put_abort(p);
        return rc;
    }
    *out = p;
    return 0;
}

static int cmp_parts(const void *a, const void *b)
{
    unsigned x = ((const pier_store_part *)a)->number, y = ((const pier_store_part *)b)->number;
    return x < y ? -1 : x > y;
}

int pier_store_part_list(pier_store *s, const char *bucket_name, const char *upload_id,
                         pier_store_part **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    pier_store_meta m;
    int rc = pier_store_upload_head(s, bucket_name, upload_id, &m);
    pier_store_meta_clear(&m);
    if (rc)
        return rc;
    char *dir = part_path(s, bucket_name, upload_id, 0);
    DIR *d = opendir(dir);
    if (!d) {
        rc = pier_error_set(PIER_ENOTFOUND, "NoSuchUpload: upload '%s' does not exist", upload_id);
        free(dir);
        return rc;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t num = 0;
        if (strncmp(de->d_name, "part-", 5) != 0 || pier_parse_u64(de->d_name + 5, &num) != 0)
            continue;
        char *path = pier_path_join(dir, de->d_name);
        pier_store_meta pm;
        if (pier_storefile_read_path(path, &pm) == 0) {
            if (*count == cap) {
                cap = cap ? cap * 2 : 16;
                *out = pier_realloc(*out, cap * sizeof **out);
            }
            pier_store_part *p = &(*out)[(*count)++];
            p->number = (unsigned)num;
            p->size = pm.size;
            p->mtime_ms = pm.mtime_ms;
            memcpy(p->etag, pm.etag, sizeof p->etag);
            pier_store_meta_clear(&pm);
        }
        free(path);
    }
    closedir(d);
    free(dir);
    if (*count)
        qsort(*out, *count, sizeof **out, cmp_parts);
    return 0;
}

static int cmp_uploads(const void *a, const void *b)
{
    const pier_store_upload *x = a, *y = b;
    int c = pier_storeindex_cmp(x->key, x->key_len, y->key, y->key_len);
    if (c)
        return c;
    return x->initiated_ms < y->initiated_ms ? -1 : x->initiated_ms > y->initiated_ms;
}

int pier_store_upload_list(pier_store *s, const char *bucket_name, pier_store_upload **out,
                           size_t *count)
{
    *out = NULL;
    *count = 0;
    int rc = pier_store_bucket_head(s, bucket_name, NULL);
    if (rc)
        return rc;
    pier_buf t = PIER_BUF_INIT;
    pier_buf_printf(&t, "%s/%s/uploads", s->buckets_dir, bucket_name);
    DIR *d = opendir(t.ptr);
    if (!d) {
        pier_buf_free(&t);
        return 0;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!upload_id_ok(de->d_name))
            continue;
        pier_store_meta m;
        if (pier_store_upload_head(s, bucket_name, de->d_name, &m) != 0)
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 16;
            *out = pier_realloc(*out, cap * sizeof **out);
        }
        pier_store_upload *u = &(*out)[(*count)++];
        memcpy(u->upload_id, de->d_name, PIER_STORE_UPLOAD_ID_LEN + 1);
        u->key = m.key;
        u->key_len = m.key_len;
        u->initiated_ms = m.mtime_ms;
        m.key = NULL;
        pier_store_meta_clear(&m);
    }
    closedir(d);
    pier_buf_free(&t);
    if (*count)
        qsort(*out, *count, sizeof **out, cmp_uploads);
    return 0;
}

void pier_store_upload_list_free(pier_store_upload *u, size_t count)
{
    if (!u)
        return;
    for (size_t i = 0; i < count; i++)
        free(u[i].key);
    free(u);
}

/* An ETag as a client sends it, without quotes, lower-cased, into out. */
static void etag_norm(const char *in, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = in ? in : ""; *p && n + 1 < size; p++) {
        if (*p == '"')
            continue;
        out[n++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
    }
    out[n] = '\0';
}

int pier_store_upload_complete(pier_store *s, const char *bucket_name, const char *upload_id,
                               const pier_store_complete_part *parts, size_t count,
                               pier_store_meta *out)
{
    int rc = 0, fd = -1;
    char *tmp = NULL, *dir = NULL;
    pier_hash *md5s = NULL;
    pier_store_meta up, meta;
    memset(&meta, 0, sizeof meta);
    if ((rc = pier_store_upload_head(s, bucket_name, upload_id, &up)))
        return rc;
    if (count == 0) {
        rc = pier_error_set(PIER_EINVALID, "MalformedXML: the upload lists no parts");
        goto done;
    }
    if (count > PIER_STORE_MAX_PARTS) {
        rc =
            pier_error_set(PIER_EINVALID, "MalformedXML: more than %d parts", PIER_STORE_MAX_PARTS);
        goto done;
    }
    for (size_t i = 1; i < count; i++)
        if (parts[i].number <= parts[i - 1].number) {
            rc = pier_error_set(PIER_EINVALID,
                                "InvalidPartOrder: part %u follows part %u; list parts in "
                                "ascending order",
                                parts[i].number, parts[i - 1].number);
            goto done;
        }
    dir = part_path(s, bucket_name, upload_id, 0);
    if ((rc = tmp_create(s, "complete", &tmp, &fd)))
        goto done;
    md5s = pier_hash_new(PIER_HASH_MD5);
    uint64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        char *path = part_path(s, bucket_name, upload_id, parts[i].number);
        char want[PIER_STORE_ETAG_MAX];
        etag_norm(parts[i].etag, want, sizeof want);
        pier_store_meta pm;
        int in = open(path, O_RDONLY | O_CLOEXEC);
        rc = in < 0 ? PIER_ENOTFOUND : pier_storefile_read(in, path, &pm);
        if (rc == 0 && strcmp(pm.etag, want) != 0) {
            pier_store_meta_clear(&pm);
            rc = PIER_ENOTFOUND;
        }
        if (rc) {
            if (in >= 0)
                close(in);
            free(path);
            rc = pier_error_set(PIER_EINVALID,
                                "InvalidPart: part %u with ETag \"%s\" was not uploaded to %s",
                                parts[i].number, want, upload_id);
            goto done;
        }
        if (i + 1 < count && pm.size < s->min_part_size) {
            close(in);
            free(path);
            rc = pier_error_set(PIER_EINVALID,
                                "EntityTooSmall: part %u is %llu bytes; every part but the last "
                                "must be at least %llu bytes",
                                parts[i].number, (unsigned long long)pm.size,
                                (unsigned long long)s->min_part_size);
            pier_store_meta_clear(&pm);
            goto done;
        }
        unsigned char bin[PIER_MD5_LEN];
        if (pier_hex_decode(bin, pm.etag, PIER_MD5_LEN) == 0)
            pier_hash_update(md5s, bin, PIER_MD5_LEN);
        rc = pier_storefile_copy(in, 0, pm.size, fd, tmp, NULL);
        total += pm.size;
        close(in);
        free(path);
        pier_store_meta_clear(&pm);
        if (rc)
            goto done;
    }
    unsigned char digest[PIER_MD5_LEN];
    pier_hash_final(md5s, digest);
    pier_storefile_set_key(&meta, up.key, up.key_len);
    meta.size = total;
    pier_hex_encode(meta.etag, digest, PIER_MD5_LEN);
    snprintf(meta.etag + 32, sizeof meta.etag - 32, "-%zu", count);
    meta.mtime_ms = pier_storefile_now_ms();
    pier_storefile_add_headers(&meta, up.headers, up.header_count);
    if ((rc = pier_storefile_seal(fd, tmp, &meta)))
        goto done;
    close(fd);
    fd = -1;
    if ((rc = install_object(s, bucket_name, tmp, &meta)))
        goto done;
    PIER_FREE(tmp);
    pier_file_remove_tree(dir);
    pier_storefile_move(out, &meta);
done:
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
    free(tmp);
    free(dir);
    pier_hash_free(md5s);
    pier_store_meta_clear(&up);
    pier_store_meta_clear(&meta);
    return rc;
}

int pier_store_upload_abort(pier_store *s, const char *bucket_name, const char *upload_id)
{
    pier_store_meta m;
    int rc = pier_store_upload_head(s, bucket_name, upload_id, &m);
    pier_store_meta_clear(&m);
    if (rc)
        return rc;
    char *dir = part_path(s, bucket_name, upload_id, 0);
    char rnd[17];
    pier_random_token(rnd, 16, false);
    pier_buf t = PIER_BUF_INIT;
    pier_buf_printf(&t, "%s/trash-%s", s->tmp_dir, rnd);
    if (rename(dir, t.ptr) != 0)
        rc = pier_error_set(PIER_ENOTFOUND, "NoSuchUpload: upload '%s' does not exist", upload_id);
    else
        pier_file_remove_tree(t.ptr);
    pier_buf_free(&t);
    free(dir);
    return rc;
}
