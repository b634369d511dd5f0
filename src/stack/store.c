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
 * Object file format: DATA, RECORDS, TRAILER.
 *   RECORDS is a run of (u32 name length, name, u32 value length, value),
 *   little-endian: ":key", ":size", ":etag", ":mtime" (decimal ms), then
 *   the headers in order. TRAILER is 16 bytes: u32 length of RECORDS,
 *   u32 CRC-32C of RECORDS, "PIEROBJ1". A reader opens the file once and
 *   reads data and metadata from that one inode, so a concurrent replace
 *   can never mix two versions. Upload and part files use the same format.
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
 *   The index is a skip list per bucket: O(log n) seek, O(1) per listed
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

#define TRAILER_LEN   16
#define TRAILER_MAGIC "PIEROBJ1"
#define RECORDS_MAX   ((size_t)8 << 20)
#define SL_MAX_LEVEL  24
#define COPY_CHUNK    ((size_t)1 << 20)

/* ---- the per-bucket index: a skip list of keys ---- */

typedef struct sl_node {
    char *key;                      /* key bytes, NUL-terminated */
    size_t key_len;                 /* their count */
    uint64_t size;                  /* object size */
    int64_t mtime_ms;               /* last modified */
    char etag[PIER_STORE_ETAG_MAX]; /* ETag without quotes */
    int level;                      /* number of forward pointers */
    struct sl_node *next[];         /* forward pointers, level of them */
} sl_node;

typedef struct {
    sl_node *head; /* sentinel with SL_MAX_LEVEL pointers */
    int level;     /* levels in use */
    size_t count;  /* keys */
    uint64_t rng;  /* xorshift state for node levels */
} skiplist;

typedef struct {
    char name[64];        /* bucket name */
    char *dir;            /* DIR/buckets/NAME */
    int64_t created_ms;   /* creation time */
    bool public_read;     /* anonymous reads allowed */
    pthread_mutex_t lock; /* guards index and renames into objects/ */
    skiplist index;       /* the keys */
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

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static sl_node *sl_node_new(int level, const char *key, size_t key_len)
{
    sl_node *n = pier_calloc(1, sizeof *n + (size_t)level * sizeof(sl_node *));
    n->level = level;
    if (key) {
        n->key = pier_malloc(key_len + 1);
        memcpy(n->key, key, key_len);
        n->key[key_len] = '\0';
        n->key_len = key_len;
    }
    return n;
}

static void sl_init(skiplist *l)
{
    l->head = sl_node_new(SL_MAX_LEVEL, NULL, 0);
    l->level = 1;
    l->count = 0;
    l->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)l;
}

static void sl_destroy(skiplist *l)
{
    sl_node *n = l->head;
    while (n) {
        sl_node *next = n->next[0];
        free(n->key);
        free(n);
        n = next;
    }
    l->head = NULL;
}

static int sl_random_level(skiplist *l)
{
    int level = 1;
    while (level < SL_MAX_LEVEL) {
        l->rng ^= l->rng << 13;
        l->rng ^= l->rng >> 7;
        l->rng ^= l->rng << 17;
        if ((l->rng & 3) != 0) /* p = 1/4 */
            break;
        level++;
    }
    return level;
}

/* Fills update[] with the last node before key at each level; returns the
 * first node >= key (or > key when strict). */
static sl_node *sl_seek(skiplist *l, const char *key, size_t key_len, bool strict, sl_node **update)
{
    sl_node *x = l->head;
    for (int i = l->level - 1; i >= 0; i--) {
        while (x->next[i]) {
            int c = key_cmp(x->next[i]->key, x->next[i]->key_len, key, key_len);
            if (c < 0 || (strict && c == 0))
                x = x->next[i];
            else
                break;
        }
        if (update)
            update[i] = x;
    }
    return x->next[0];
}

static void sl_upsert(skiplist *l, const pier_store_meta *m)
{
    sl_node *update[SL_MAX_LEVEL];
    sl_node *x = sl_seek(l, m->key, m->key_len, false, update);
    if (!x || key_cmp(x->key, x->key_len, m->key, m->key_len) != 0) {
        int level = sl_random_level(l);
        for (int i = l->level; i < level; i++)
            update[i] = l->head;
        if (level > l->level)
            l->level = level;
        x = sl_node_new(level, m->key, m->key_len);
        for (int i = 0; i < level; i++) {
            x->next[i] = update[i]->next[i];
            update[i]->next[i] = x;
        }
        l->count++;
    }
    x->size = m->size;
    x->mtime_ms = m->mtime_ms;
    snprintf(x->etag, sizeof x->etag, "%s", m->etag);
}

static void sl_remove(skiplist *l, const char *key, size_t key_len)
{
    sl_node *update[SL_MAX_LEVEL];
    sl_node *x = sl_seek(l, key, key_len, false, update);
    if (!x || key_cmp(x->key, x->key_len, key, key_len) != 0)
        return;
    for (int i = 0; i < x->level; i++)
        if (update[i]->next[i] == x)
            update[i]->next[i] = x->next[i];
    while (l->level > 1 && !l->head->next[l->level - 1])
        l->level--;
    free(x->key);
    free(x);
    l->count--;
}

/* ---- small helpers ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return pier_error_set_errno(PIER_EIO, "open %s", path);
    int rc = fsync(fd) == 0 ? 0 : pier_error_set_errno(PIER_EIO, "fsync %s", path);
    close(fd);
    return rc;
}

static int write_all(int fd, const void *data, size_t n, const char *what)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return pier_error_set_errno(errno == ENOSPC ? PIER_ETOOBIG : PIER_EIO, "write %s",
                                        what);
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int pread_all(int fd, void *out, size_t n, off_t off, const char *what)
{
    char *p = out;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return pier_error_set_errno(PIER_EIO, "read %s", what);
        }
        if (r == 0)
            return pier_error_set(PIER_EIO, "%s: unexpected end of file", what);
        p += r;
        off += r;
        n -= (size_t)r;
    }
    return 0;
}

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

static void meta_set_key(pier_store_meta *m, const char *key, size_t key_len)
{
    free(m->key);
    m->key = pier_malloc(key_len + 1);
    memcpy(m->key, key, key_len);
    m->key[key_len] = '\0';
    m->key_len = key_len;
}

static int rec_put(pier_buf *b, const char *name, const void *value, size_t n)
{
    unsigned char len[4];
    size_t name_len = strlen(name);
    put_u32(len, (uint32_t)name_len);
    if (pier_buf_put(b, len, 4) || pier_buf_put(b, name, name_len))
        return PIER_ETOOBIG;
    put_u32(len, (uint32_t)n);
    if (pier_buf_put(b, len, 4) || pier_buf_put(b, value, n))
        return PIER_ETOOBIG;
    return 0;
}

/* Serializes m as RECORDS + TRAILER into b. */
static int meta_encode(pier_buf *b, const pier_store_meta *m)
{
    char num[32];
    int rc = 0;
    if (m->key)
        rc |= rec_put(b, ":key", m->key, m->key_len);
    snprintf(num, sizeof num, "%llu", (unsigned long long)m->size);
    rc |= rec_put(b, ":size", num, strlen(num));
    rc |= rec_put(b, ":etag", m->etag, strlen(m->etag));
    snprintf(num, sizeof num, "%lld", (long long)m->mtime_ms);
    rc |= rec_put(b, ":mtime", num, strlen(num));
    for (size_t i = 0; i < m->header_count; i++)
        rc |= rec_put(b, m->headers[i].name, m->headers[i].value, strlen(m->headers[i].value));
    if (rc)
        return pier_error_set(PIER_ETOOBIG, "object metadata is larger than %zu bytes",
                              RECORDS_MAX);
    unsigned char tr[TRAILER_LEN];
    put_u32(tr, (uint32_t)b->len);
    put_u32(tr + 4, pier_crc32c(0, b->ptr, b->len));
    memcpy(tr + 8, TRAILER_MAGIC, 8);
    return pier_buf_put(b, tr, TRAILER_LEN);
}

/* Reads the metadata of an open object file (what names it in errors). The
 * data is bytes 0..meta->size. */
static int meta_read_fd(int fd, const char *what, pier_store_meta *m)
{
    int rc = 0;
    unsigned char *rec = NULL;
    struct stat st;
    memset(m, 0, sizeof *m);
    if (fstat(fd, &st) != 0)
        return pier_error_set_errno(PIER_EIO, "stat %s", what);
    unsigned char tr[TRAILER_LEN];
    if (st.st_size < TRAILER_LEN)
        return pier_error_set(PIER_EIO, "%s: not an object file (too short)", what);
    if ((rc = pread_all(fd, tr, TRAILER_LEN, st.st_size - TRAILER_LEN, what)))
        return rc;
    if (memcmp(tr + 8, TRAILER_MAGIC, 8) != 0)
        return pier_error_set(PIER_EIO, "%s: not an object file (no trailer)", what);
    uint32_t len = get_u32(tr);
    if (len > RECORDS_MAX || (off_t)len + TRAILER_LEN > st.st_size)
        return pier_error_set(PIER_EIO, "%s: corrupt metadata length", what);
    rec = pier_malloc(len ? len : 1);
    off_t rec_off = st.st_size - TRAILER_LEN - (off_t)len;
    if ((rc = pread_all(fd, rec, len, rec_off, what)))
        goto done;
    if (pier_crc32c(0, rec, len) != get_u32(tr + 4)) {
        rc = pier_error_set(PIER_EIO, "%s: metadata checksum mismatch", what);
        goto done;
    }
    bool have_size = false;
    for (size_t p = 0; p < len;) {
        if (len - p < 4)
            goto corrupt;
        uint32_t nl = get_u32(rec + p);
        p += 4;
        if (nl > len - p || len - p - nl < 4)
            goto corrupt;
        char *name = pier_strndup((const char *)rec + p, nl);
        p += nl;
        uint32_t vl = get_u32(rec + p);
        p += 4;
        if (vl > len - p) {
            free(name);
            goto corrupt;
        }
        const char *val = (const char *)rec + p;
        p += vl;
        if (strcmp(name, ":key") == 0) {
            meta_set_key(m, val, vl);
        } else if (strcmp(name, ":size") == 0 || strcmp(name, ":mtime") == 0) {
            char *v = pier_strndup(val, vl);
            uint64_t u = 0;
            int prc = pier_parse_u64(v, &u);
            free(v);
            if (prc) {
                free(name);
                goto corrupt;
            }
            if (name[1] == 's') {
                m->size = u;
                have_size = true;
            } else {
                m->mtime_ms = (int64_t)u;
            }
        } else if (strcmp(name, ":etag") == 0) {
            snprintf(m->etag, sizeof m->etag, "%.*s", (int)vl, val);
        } else if (name[0] != ':') {
            char *v = pier_strndup(val, vl);
            pier_store_meta_add(m, name, v);
            free(v);
        }
        free(name);
    }
    if (!have_size || m->size != (uint64_t)rec_off)
        goto corrupt;
    goto done;
corrupt:
    rc = pier_error_set(PIER_EIO, "%s: corrupt metadata", what);
done:
    free(rec);
    if (rc)
        pier_store_meta_clear(m);
    return rc;
}

static int meta_read_path(const char *path, pier_store_meta *m)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO, "open %s", path);
    int rc = meta_read_fd(fd, path, m);
    close(fd);
    return rc;
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
    sl_destroy(&b->index);
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
    sl_init(&b->index);
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
                if (meta_read_path(path, &m) == 0 && m.key) {
                    sl_upsert(&b->index, &m);
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
        b->created_ms = stat(b->dir, &st) == 0 ? (int64_t)st.st_mtime * 1000 : now_ms();
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
    int64_t created = now_ms();
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
    fsync_dir(s->buckets_dir);
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
    fsync_dir(s->buckets_dir);
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
    int rc = write_all(p->fd, data, n, p->tmp_path);
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

/* Appends meta's records to the temp file, fsyncs and closes it. */
static int seal_tmp(int fd, const char *tmp_path, const pier_store_meta *meta)
{
    pier_buf rec;
    pier_buf_init(&rec, RECORDS_MAX + TRAILER_LEN);
    int rc = meta_encode(&rec, meta);
    if (!rc)
        rc = write_all(fd, rec.ptr, rec.len, tmp_path);
    if (!rc && fsync(fd) != 0)
        rc = pier_error_set_errno(PIER_EIO, "fsync %s", tmp_path);
    pier_buf_free(&rec);
    return rc;
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
        fsync_dir(objects);
        free(objects);
    } else if (errno != EEXIST) {
        rc = pier_error_set_errno(PIER_EIO, "mkdir %s", shard);
        goto done;
    }
    pthread_mutex_lock(&b->lock);
    if (rename(tmp_path, path) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "rename %s to %s", tmp_path, path);
    } else {
        sl_upsert(&b->index, meta);
    }
    pthread_mutex_unlock(&b->lock);
done:
    pthread_rwlock_unlock(&s->lock);
    if (!rc)
        rc = fsync_dir(shard);
    free(path);
    free(shard);
    return rc;
}

static void meta_copy_headers(pier_store_meta *m, const pier_store_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pier_store_meta_add(m, h[i].name, h[i].value);
}

static void meta_move(pier_store_meta *dst, pier_store_meta *src)
{
    if (dst)
        *dst = *src;
    else
        pier_store_meta_clear(src);
    memset(src, 0, sizeof *src);
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
        meta_set_key(&meta, p->key, p->key_len);
    meta.size = p->size;
    pier_hex_encode(meta.etag, md5, PIER_MD5_LEN);
    meta.mtime_ms = now_ms();
    meta_copy_headers(&meta, headers, header_count);
    if ((rc = seal_tmp(p->fd, p->tmp_path, &meta)))
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
            rc = fsync_dir(dir);
            free(dir);
        }
        free(dst);
    } else {
        rc = install_object(p->s, p->bucket, p->tmp_path, &meta);
    }
    if (!rc) {
        free(p->tmp_path); /* renamed: nothing left to unlink */
        p->tmp_path = NULL;
        meta_move(out, &meta);
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
    if ((rc = meta_read_fd(fd, path, meta)))
        goto done;
    if (!meta->key || key_cmp(meta->key, meta->key_len, key, key_len) != 0) {
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
        sl_remove(&b->index, key, key_len);
    }
    pthread_mutex_unlock(&b->lock);
done:
    pthread_rwlock_unlock(&s->lock);
    if (!rc) {
        shard = pier_strndup(path, strrchr(path, '/') - path);
        fsync_dir(shard);
    }
    free(path);
    free(shard);
    return rc;
}

/* Copies len bytes from in (at offset off) to out, hashing them into md5
 * when not NULL. */
static int copy_range(int in, off_t off, uint64_t len, int out, const char *out_path,
                      pier_hash *md5)
{
    char *buf = pier_malloc(COPY_CHUNK);
    int rc = 0;
    while (len > 0) {
        size_t n = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
        if ((rc = pread_all(in, buf, n, off, "object data")))
            break;
        if (md5)
            pier_hash_update(md5, buf, n);
        if ((rc = write_all(out, buf, n, out_path)))
            break;
        off += (off_t)n;
        len -= n;
    }
    free(buf);
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
    if ((rc = copy_range(in, 0, src.size, fd, tmp, md5)))
        goto done;
    unsigned char digest[PIER_MD5_LEN];
    pier_hash_final(md5, digest);
    meta_set_key(&meta, dst_key, dst_len);
    meta.size = src.size;
    pier_hex_encode(meta.etag, digest, PIER_MD5_LEN);
    meta.mtime_ms = now_ms();
    if (headers) {
        meta_copy_headers(&meta, headers, header_count);
        for (size_t i = 0; i < src.header_count; i++)
            if (pier_str_starts_with(src.headers[i].name, "x-amz-checksum-") &&
                !pier_store_meta_get(&meta, src.headers[i].name))
                pier_store_meta_add(&meta, src.headers[i].name, src.headers[i].value);
    } else {
        meta_copy_headers(&meta, src.headers, src.header_count);
    }
    if ((rc = seal_tmp(fd, tmp, &meta)))
        goto done;
    close(fd);
    fd = -1;
    if ((rc = install_object(s, dst_bucket, tmp, &meta)))
        goto done;
    PIER_FREE(tmp);
    meta_move(out, &meta);
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
static sl_node *skip_group(skiplist *l, const char *key, size_t g)
{
    char succ[PIER_STORE_KEY_MAX + 1];
    size_t succ_len;
    if (g > PIER_STORE_KEY_MAX || !prefix_successor(key, g, succ, &succ_len))
        return NULL;
    return sl_seek(l, succ, succ_len, false, NULL);
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
    skiplist *l = &b->index;
    const char *prefix = o->prefix ? o->prefix : "";
    sl_node *x;
    if (o->start_after && o->start_after_len > 0 &&
        key_cmp(o->start_after, o->start_after_len, prefix, o->prefix_len) >= 0) {
        /* A start inside a group means that group was already given. */
        size_t g = group_end(o->start_after, o->start_after_len, o);
        if (g)
            x = skip_group(l, o->start_after, g);
        else
            x = sl_seek(l, o->start_after, o->start_after_len, true, NULL);
    } else {
        x = sl_seek(l, prefix, o->prefix_len, false, NULL);
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
    meta_set_key(&meta, key, key_len);
    meta.mtime_ms = now_ms();
    meta_copy_headers(&meta, headers, header_count);
    if ((rc = seal_tmp(fd, file, &meta)))
        goto done;
    final = part_path(s, bucket_name, upload_id, 0);
    char *uploads = pier_strndup(final, strrchr(final, '/') - final);
    if (mkdir(uploads, 0755) != 0 && errno != EEXIST)
        rc = pier_error_set_errno(PIER_EIO, "mkdir %s", uploads);
    else if (rename(tmp_dir, final) != 0)
        rc = pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO, "rename to %s",
                                  final);
    else
        fsync_dir(uploads);
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
    rc = meta_read_path(file, meta);
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
        if (meta_read_path(path, &pm) == 0) {
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
    int c = key_cmp(x->key, x->key_len, y->key, y->key_len);
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
        rc = in < 0 ? PIER_ENOTFOUND : meta_read_fd(in, path, &pm);
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
        rc = copy_range(in, 0, pm.size, fd, tmp, NULL);
        total += pm.size;
        close(in);
        free(path);
        pier_store_meta_clear(&pm);
        if (rc)
            goto done;
    }
    unsigned char digest[PIER_MD5_LEN];
    pier_hash_final(md5s, digest);
    meta_set_key(&meta, up.key, up.key_len);
    meta.size = total;
    pier_hex_encode(meta.etag, digest, PIER_MD5_LEN);
    snprintf(meta.etag + 32, sizeof meta.etag - 32, "-%zu", count);
    meta.mtime_ms = now_ms();
    meta_copy_headers(&meta, up.headers, up.header_count);
    if ((rc = seal_tmp(fd, tmp, &meta)))
        goto done;
    close(fd);
    fd = -1;
    if ((rc = install_object(s, bucket_name, tmp, &meta)))
        goto done;
    PIER_FREE(tmp);
    pier_file_remove_tree(dir);
    meta_move(out, &meta);
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
