/*
 * storefile: see storefile.h. A reader opens the file once and reads data
 * and metadata from that one inode, so a concurrent replace can never mix
 * two versions; the CRC over the records catches a torn or foreign file.
 */
#include "stack/storefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"

#define TRAILER_LEN   16
#define TRAILER_MAGIC "PIEROBJ1"
#define RECORDS_MAX   ((size_t)8 << 20)
#define COPY_CHUNK    ((size_t)1 << 20)

int64_t pier_storefile_now_ms(void)
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

int pier_storefile_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return pier_error_set_errno(PIER_EIO, "open %s", path);
    int rc = fsync(fd) == 0 ? 0 : pier_error_set_errno(PIER_EIO, "fsync %s", path);
    close(fd);
    return rc;
}

int pier_storefile_write(int fd, const void *data, size_t n, const char *what)
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

int pier_storefile_pread(int fd, void *out, size_t n, off_t off, const char *what)
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

void pier_storefile_set_key(pier_store_meta *m, const char *key, size_t key_len)
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
int pier_storefile_encode(pier_buf *b, const pier_store_meta *m)
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
int pier_storefile_read(int fd, const char *what, pier_store_meta *m)
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
    if ((rc = pier_storefile_pread(fd, tr, TRAILER_LEN, st.st_size - TRAILER_LEN, what)))
        return rc;
    if (memcmp(tr + 8, TRAILER_MAGIC, 8) != 0)
        return pier_error_set(PIER_EIO, "%s: not an object file (no trailer)", what);
    uint32_t len = get_u32(tr);
    if (len > RECORDS_MAX || (off_t)len + TRAILER_LEN > st.st_size)
        return pier_error_set(PIER_EIO, "%s: corrupt metadata length", what);
    rec = pier_malloc(len ? len : 1);
    off_t rec_off = st.st_size - TRAILER_LEN - (off_t)len;
    if ((rc = pier_storefile_pread(fd, rec, len, rec_off, what)))
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
            pier_storefile_set_key(m, val, vl);
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

int pier_storefile_read_path(const char *path, pier_store_meta *m)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO, "open %s", path);
    int rc = pier_storefile_read(fd, path, m);
    close(fd);
    return rc;
}

/* Appends meta's records to the temp file, fsyncs and closes it. */
int pier_storefile_seal(int fd, const char *tmp_path, const pier_store_meta *meta)
{
    pier_buf rec;
    pier_buf_init(&rec, RECORDS_MAX + TRAILER_LEN);
    int rc = pier_storefile_encode(&rec, meta);
    if (!rc)
        rc = pier_storefile_write(fd, rec.ptr, rec.len, tmp_path);
    if (!rc && fsync(fd) != 0)
        rc = pier_error_set_errno(PIER_EIO, "fsync %s", tmp_path);
    pier_buf_free(&rec);
    return rc;
}

/* Copies len bytes from in (at offset off) to out, hashing them into md5
 * when not NULL. */
int pier_storefile_copy(int in, off_t off, uint64_t len, int out, const char *out_path,
                        pier_hash *md5)
{
    char *buf = pier_malloc(COPY_CHUNK);
    int rc = 0;
    while (len > 0) {
        size_t n = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
        if ((rc = pier_storefile_pread(in, buf, n, off, "object data")))
            break;
        if (md5)
            pier_hash_update(md5, buf, n);
        if ((rc = pier_storefile_write(out, buf, n, out_path)))
            break;
        off += (off_t)n;
        len -= n;
    }
    free(buf);
    return rc;
}

void pier_storefile_add_headers(pier_store_meta *m, const pier_store_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        pier_store_meta_add(m, h[i].name, h[i].value);
}

void pier_storefile_move(pier_store_meta *dst, pier_store_meta *src)
{
    if (dst)
        *dst = *src;
    else
        pier_store_meta_clear(src);
    memset(src, 0, sizeof *src);
}
