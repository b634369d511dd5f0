/*
 * manifest: see manifest.h.
 *
 * Two steps: the walk collects paths and sizes (cheap, one thread), then
 * workers take files by an atomic index and hash them, each with its own
 * 1 MiB buffer and hash contexts. Work is handed out largest file first
 * so one big file does not start last and leave the other threads idle.
 * The first error stops the other workers; its message (per thread in
 * pier's error convention) is carried back to the caller's thread.
 * pier_deploy_manifest_add_md5 runs the same pool over a subset, in
 * "verify" mode: the SHA-256 is computed again and must match.
 *
 * Cost: one read of every byte; MD5 is the slower hash (~600 MB/s a core,
 * SHA-256 with SHA-NI ~1.5 GB/s), so 150 MiB of files take ~0.15 s on 2
 * cores with both, a third of that SHA-256 only (lazy_md5), when spread
 * over several files (a single file is hashed by one thread).
 */
#include "deploy/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/str.h"

#define READ_CHUNK  ((size_t)1 << 20)
#define MAX_THREADS 8

uint64_t pier_deploy_part_size(uint64_t size)
{
    uint64_t part = PIER_DEPLOY_PART_SIZE_MIN;
    if (size > part * PIER_DEPLOY_MAX_PARTS) {
        uint64_t need = size / PIER_DEPLOY_MAX_PARTS + (size % PIER_DEPLOY_MAX_PARTS != 0);
        part = (need + PIER_DEPLOY_MIB - 1) / PIER_DEPLOY_MIB * PIER_DEPLOY_MIB;
    }
    return part;
}

uint32_t pier_deploy_part_count(uint64_t size)
{
    uint64_t part = pier_deploy_part_size(size);
    uint64_t n = size / part + (size % part != 0);
    return n ? (uint32_t)n : 1;
}

void pier_deploy_multipart_etag(char out[PIER_DEPLOY_ETAG_LEN],
                                const unsigned char (*part_md5)[PIER_MD5_LEN], uint32_t n)
{
    unsigned char digest[PIER_MD5_LEN];
    pier_md5(digest, part_md5, (size_t)n * PIER_MD5_LEN);
    pier_hex_encode(out, digest, PIER_MD5_LEN);
    snprintf(out + 2 * PIER_MD5_LEN, PIER_DEPLOY_ETAG_LEN - 2 * PIER_MD5_LEN, "-%u", n);
}

char *pier_deploy_prefix_normalize(const char *prefix)
{
    if (!prefix)
        return pier_strdup("");
    while (*prefix == '/')
        prefix++;
    size_t n = strlen(prefix);
    char *p = pier_malloc(n + 2);
    memcpy(p, prefix, n);
    if (n && prefix[n - 1] != '/')
        p[n++] = '/';
    p[n] = '\0';
    return p;
}

/* ---- walking ---------------------------------------------------------------- */

typedef struct {
    pier_deploy_manifest *m; /* being filled */
    size_t cap;              /* files allocated */
} collect_ctx;

static int collect(const pier_file_entry *e, void *arg)
{
    collect_ctx *c = arg;
    pier_deploy_manifest *m = c->m;
    if (m->count == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        m->files = pier_realloc(m->files, c->cap * sizeof *m->files);
    }
    pier_deploy_file *f = &m->files[m->count++];
    memset(f, 0, sizeof *f);
    f->rel = pier_strdup(e->rel);
    f->path = pier_strdup(e->path);
    size_t pn = strlen(m->prefix), rn = strlen(e->rel);
    f->key = pier_malloc(pn + rn + 1);
    memcpy(f->key, m->prefix, pn);
    memcpy(f->key + pn, e->rel, rn + 1);
    f->size = e->size;
    return 0;
}

/* ---- hashing ---------------------------------------------------------------- */

typedef struct {
    pier_deploy_manifest *m; /* files to hash */
    size_t *order;           /* indexes, largest file first */
    size_t count;            /* entries in order */
    bool lazy;               /* SHA-256 only unless *want_md5 */
    atomic_int *want_md5;    /* lazy: nonzero = MD5 too; or NULL */
    bool verify;             /* add_md5: MD5 + SHA-256, which must match */
    atomic_size_t next;      /* next position in order */
    atomic_int failed;       /* set once a worker fails */
    pthread_mutex_t lock;    /* guards rc and msg */
    int rc;                  /* the first failure's code */
    char msg[1024];          /* and its message */
} pool;

typedef struct {
    unsigned char *buf; /* READ_CHUNK bytes */
    pier_hash *md5;     /* whole-file MD5 */
    pier_hash *sha256;  /* whole-file SHA-256 */
    pier_hash *part;    /* current part's MD5 */
} hasher;

/* Hashes f: SHA-256, plus the MD5s an upload needs when md5 (and, for a
 * multipart file, the whole-file MD5 too only when whole); with verify,
 * the SHA-256 must equal the one already recorded. */
static int hash_file(pier_deploy_file *f, uint64_t threshold, hasher *h, bool md5, bool whole,
                     bool verify)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO, "%s", f->path);
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    int rc = 0;
    bool multipart = md5 && f->size > threshold;
    bool do_whole = md5 && (whole || !multipart);
    if (multipart) {
        f->part_size = pier_deploy_part_size(f->size);
        f->part_count = pier_deploy_part_count(f->size);
        free(f->part_md5);
        f->part_md5 = pier_calloc(f->part_count, PIER_MD5_LEN);
    }
    uint64_t total = 0, part_left = f->part_size;
    uint32_t part = 0;
    for (;;) {
        ssize_t r = read(fd, h->buf, READ_CHUNK);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = pier_error_set_errno(PIER_EIO, "reading %s", f->path);
            goto done;
        }
        if (r == 0)
            break;
        total += (uint64_t)r;
        if (total > f->size)
            break; /* grew while we read: reported below */
        if (do_whole)
            pier_hash_update(h->md5, h->buf, (size_t)r);
        pier_hash_update(h->sha256, h->buf, (size_t)r);
        for (size_t off = 0; multipart && off < (size_t)r;) {
            size_t n = (size_t)r - off;
            if (n > part_left)
                n = (size_t)part_left;
            pier_hash_update(h->part, h->buf + off, n);
            off += n;
            part_left -= n;
            if (part_left == 0) {
                pier_hash_final(h->part, f->part_md5[part++]);
                part_left = f->part_size;
            }
        }
    }
    if (total != f->size) {
        rc = pier_error_set(PIER_ECONFLICT,
                            "%s changed while being read (%llu bytes, then %s%llu); is a build "
                            "still writing to the folder?",
                            f->path, (unsigned long long)f->size, total > f->size ? "over " : "",
                            (unsigned long long)total);
        goto done;
    }
    if (multipart && part_left != f->part_size)
        pier_hash_final(h->part, f->part_md5[part++]);
    unsigned char sha[PIER_SHA256_LEN];
    pier_hash_final(h->sha256, sha);
    if (verify && memcmp(sha, f->sha256, sizeof sha) != 0) {
        rc = pier_error_set(PIER_ECONFLICT,
                            "%s changed while being read (its content differs between two "
                            "reads); is a build still writing to the folder?",
                            f->path);
        goto done;
    }
    memcpy(f->sha256, sha, sizeof sha);
    pier_hex_encode(f->sha256_hex, f->sha256, PIER_SHA256_LEN);
    if (!md5)
        goto done;
    if (do_whole) {
        pier_hash_final(h->md5, f->md5);
        pier_hex_encode(f->md5_hex, f->md5, PIER_MD5_LEN);
        f->whole_md5 = true;
    }
    if (multipart)
        pier_deploy_multipart_etag(f->etag, (const unsigned char(*)[PIER_MD5_LEN])f->part_md5,
                                   part);
    else
        memcpy(f->etag, f->md5_hex, sizeof f->md5_hex);
    f->has_md5 = true;
done:
    if (rc) {
        /* Leave the contexts clean for the next file. */
        unsigned char scratch[PIER_SHA256_LEN];
        pier_hash_final(h->md5, scratch);
        pier_hash_final(h->sha256, scratch);
        pier_hash_final(h->part, scratch);
    }
    close(fd);
    return rc;
}

static void *worker(void *arg)
{
    pool *p = arg;
    hasher h = {pier_malloc(READ_CHUNK), pier_hash_new(PIER_HASH_MD5),
                pier_hash_new(PIER_HASH_SHA256), pier_hash_new(PIER_HASH_MD5)};
    for (;;) {
        if (atomic_load(&p->failed))
            break;
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->count)
            break;
        pier_deploy_file *f = &p->m->files[p->order[i]];
        if (p->verify && f->has_md5 && f->whole_md5)
            continue;
        /* lazy + want_md5: what an upload needs, so no whole-file MD5 of a
         * multipart file (only a plain ETag would be compared with it) */
        bool md5 = p->verify || !p->lazy || (p->want_md5 && atomic_load(p->want_md5));
        bool whole = p->verify || !p->lazy;
        int rc = hash_file(f, p->m->multipart_threshold, &h, md5, whole, p->verify);
        if (rc) {
            pthread_mutex_lock(&p->lock);
            if (!atomic_load(&p->failed)) {
                p->rc = rc;
                snprintf(p->msg, sizeof p->msg, "%s", pier_error_last());
                atomic_store(&p->failed, 1);
            }
            pthread_mutex_unlock(&p->lock);
            break;
        }
    }
    free(h.buf);
    pier_hash_free(h.md5);
    pier_hash_free(h.sha256);
    pier_hash_free(h.part);
    return NULL;
}

typedef struct {
    uint64_t size; /* the file's size */
    size_t index;  /* its index in the manifest */
} job;

static int cmp_job(const void *a, const void *b)
{
    const job *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->index < y->index ? -1 : 1;
}

static unsigned thread_count(unsigned asked, size_t files)
{
    long n = asked ? (long)asked : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    if ((size_t)n > files)
        n = (long)files;
    return (unsigned)n;
}

/* Hashes the n files at idx (all when idx is NULL) on the pool. */
static int hash_some(pier_deploy_manifest *m, const size_t *idx, size_t n, unsigned threads,
                     bool lazy, atomic_int *want_md5, bool verify)
{
    if (n == 0)
        return 0;
    pool p;
    memset(&p, 0, sizeof p);
    p.m = m;
    p.count = n;
    p.lazy = lazy;
    p.want_md5 = want_md5;
    p.verify = verify;
    job *jobs = pier_malloc(n * sizeof *jobs);
    for (size_t i = 0; i < n; i++) {
        size_t k = idx ? idx[i] : i;
        jobs[i] = (job){m->files[k].size, k};
    }
    qsort(jobs, n, sizeof *jobs, cmp_job);
    p.order = pier_malloc(n * sizeof *p.order);
    for (size_t i = 0; i < n; i++)
        p.order[i] = jobs[i].index;
    free(jobs);
    atomic_init(&p.next, 0);
    atomic_init(&p.failed, 0);
    pthread_mutex_init(&p.lock, NULL);
    unsigned nt = thread_count(threads, n);
    pthread_t *tids = pier_calloc(nt, sizeof *tids);
    unsigned started = 0;
    for (unsigned i = 1; i < nt; i++) {
        if (pthread_create(&tids[i], NULL, worker, &p) != 0)
            break; /* fewer threads is fine: the caller's thread works too */
        started++;
    }
    worker(&p);
    for (unsigned i = 1; i <= started; i++)
        pthread_join(tids[i], NULL);
    free(tids);
    free(p.order);
    pthread_mutex_destroy(&p.lock);
    if (p.rc)
        return pier_error_set(p.rc, "%s", p.msg);
    return 0;
}

int pier_deploy_manifest_add_md5(pier_deploy_manifest *m, const size_t *idx, size_t n,
                                 unsigned threads)
{
    for (size_t i = 0; i < n; i++)
        if (idx[i] >= m->count)
            return pier_error_set(PIER_EINVALID, "manifest of %s: no file #%zu", m->root, idx[i]);
    return hash_some(m, idx, n, threads, false, NULL, true);
}

int pier_deploy_manifest_build(pier_deploy_manifest **out, const char *root,
                               const pier_deploy_manifest_options *opts)
{
    *out = NULL;
    pier_deploy_manifest_options defaults = PIER_DEPLOY_MANIFEST_OPTIONS_INIT;
    if (!opts)
        opts = &defaults;
    pier_deploy_manifest *m = pier_calloc(1, sizeof *m);
    m->root = pier_strdup(root);
    m->prefix = pier_deploy_prefix_normalize(opts->prefix);
    m->multipart_threshold =
        opts->multipart_threshold ? opts->multipart_threshold : PIER_DEPLOY_MULTIPART_THRESHOLD;
    collect_ctx c = {m, 0};
    int rc = pier_file_walk(root, collect, &c);
    if (rc == 0)
        rc = hash_some(m, NULL, m->count, opts->threads, opts->lazy_md5, opts->want_md5, false);
    if (rc) {
        pier_deploy_manifest_free(m);
        return rc;
    }
    for (size_t i = 0; i < m->count; i++)
        m->total_bytes += m->files[i].size;
    *out = m;
    return 0;
}

void pier_deploy_manifest_free(pier_deploy_manifest *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++) {
        free(m->files[i].key);
        free(m->files[i].rel);
        free(m->files[i].path);
        free(m->files[i].part_md5);
    }
    free(m->files);
    free(m->root);
    free(m->prefix);
    free(m);
}

const pier_deploy_file *pier_deploy_manifest_find(const pier_deploy_manifest *m, const char *key)
{
    size_t lo = 0, hi = m->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->files[mid].key, key);
        if (c == 0)
            return &m->files[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
