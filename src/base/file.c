/*
 * file: see file.h.
 *
 * The walk reads each directory fully, sorts its names, then recurses, so
 * memory is O(depth x widest directory). Directory names are sorted with a
 * '/' appended, which makes the visiting order exactly the byte order of the
 * full relative paths ("a.txt" < "a/b" because '.' < '/'), the order S3
 * lists keys in, so a manifest can be merged with a listing in one pass.
 */
#include "base/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/log.h"
#include "base/mem.h"

typedef struct {
    char *name;  /* entry name, with a '/' appended for directories */
    bool is_dir; /* a real directory (not a link to one) */
} dirent_item;

typedef struct {
    const char *root;     /* as given */
    char *root_real;      /* realpath of root */
    size_t root_real_len; /* its length */
    pier_file_walk_cb cb; /* the visitor */
    void *ctx;            /* its context */
} walk_state;

static int cmp_items(const void *a, const void *b)
{
    return strcmp(((const dirent_item *)a)->name, ((const dirent_item *)b)->name);
}

static bool inside_root(walk_state *w, const char *real)
{
    return strncmp(real, w->root_real, w->root_real_len) == 0 &&
           (real[w->root_real_len] == '/' || real[w->root_real_len] == '\0' ||
            w->root_real_len == 1);
}

static int walk_dir(walk_state *w, const char *rel)
{
    int rc = 0;
    char *dir_path = rel[0] ? pier_path_join(w->root, rel) : pier_strdup(w->root);
    dirent_item *items = NULL;
    size_t count = 0, cap = 0;
    DIR *d = opendir(dir_path);
    if (!d) {
        rc = pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO, "%s", dir_path);
        goto done;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *full = pier_path_join(dir_path, de->d_name);
        struct stat st;
        if (lstat(full, &st) != 0) {
            free(full);
            continue; /* vanished between readdir and lstat */
        }
        bool is_dir = S_ISDIR(st.st_mode);
        free(full);
        if (count == cap) {
            cap = cap ? cap * 2 : 32;
            items = pier_realloc(items, cap * sizeof *items);
        }
        size_t n = strlen(de->d_name);
        items[count].name = pier_malloc(n + 2);
        memcpy(items[count].name, de->d_name, n);
        items[count].name[n] = is_dir ? '/' : '\0';
        items[count].name[n + 1] = '\0';
        items[count].is_dir = is_dir;
        count++;
    }
    closedir(d);
    if (count)
        qsort(items, count, sizeof *items, cmp_items); /* items is NULL for an empty dir */
    for (size_t i = 0; i < count && rc == 0; i++) {
        size_t n = strlen(items[i].name);
        if (items[i].is_dir)
            items[i].name[n - 1] = '\0';
        char *child_rel = rel[0] ? pier_path_join(rel, items[i].name) : pier_strdup(items[i].name);
        char *child = pier_path_join(w->root, child_rel);
        if (items[i].is_dir) {
            rc = walk_dir(w, child_rel);
        } else {
            struct stat st;
            if (lstat(child, &st) == 0 && S_ISLNK(st.st_mode)) {
                char real[PATH_MAX];
                if (!realpath(child, real)) {
                    PIER_WARN("skipping %s: broken symlink", child);
                    goto next;
                }
                if (!inside_root(w, real)) {
                    PIER_WARN("skipping %s: symlink points outside %s", child, w->root);
                    goto next;
                }
                if (stat(child, &st) != 0 || !S_ISREG(st.st_mode))
                    goto next; /* links to directories are not followed */
            } else if (lstat(child, &st) != 0 || !S_ISREG(st.st_mode)) {
                goto next; /* sockets, fifos, devices, vanished files */
            }
            pier_file_entry e = {child, child_rel, (uint64_t)st.st_size, (int64_t)st.st_mtime,
                                 st.st_mode};
            rc = w->cb(&e, w->ctx);
        }
    next:
        free(child_rel);
        free(child);
    }
done:
    for (size_t i = 0; i < count; i++)
        free(items[i].name);
    free(items);
    free(dir_path);
    return rc;
}

int pier_file_walk(const char *root, pier_file_walk_cb cb, void *ctx)
{
    char real[PATH_MAX];
    if (!realpath(root, real))
        return pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO, "%s", root);
    if (!pier_file_is_dir(real))
        return pier_error_set(PIER_EINVALID, "%s is not a directory", root);
    walk_state w = {root, pier_strdup(real), strlen(real), cb, ctx};
    int rc = walk_dir(&w, "");
    free(w.root_real);
    return rc;
}

int pier_file_read(const char *path, pier_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO, "%s", path);
    int rc = 0;
    for (;;) {
        char *at = pier_buf_reserve(out, 65536);
        if (!at) {
            /* Maybe the rest fits in what the cap allows. */
            at = pier_buf_reserve(out, out->max - out->len);
            if (!at || out->max == out->len) {
                char probe;
                ssize_t r = read(fd, &probe, 1);
                if (r > 0)
                    rc =
                        pier_error_set(PIER_ETOOBIG, "%s is larger than %zu bytes", path, out->max);
                break;
            }
        }
        size_t room = out->len + 65536 <= out->max ? 65536 : out->max - out->len;
        ssize_t r = read(fd, at, room);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = pier_error_set_errno(PIER_EIO, "reading %s", path);
            break;
        }
        if (r == 0)
            break;
        pier_buf_commit(out, (size_t)r);
    }
    close(fd);
    return rc;
}

static int fsync_dir_of(const char *path)
{
    char *dir = pier_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        dir[0] = '.', dir[1] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return 0; /* best effort */
    fsync(fd);
    close(fd);
    return 0;
}

int pier_file_write_atomic(const char *path, const void *data, size_t n, mode_t mode)
{
    char suffix[24];
    pier_random_token(suffix, 12, false);
    size_t plen = strlen(path);
    char *tmp = pier_malloc(plen + 32);
    snprintf(tmp, plen + 32, "%s.tmp-%s", path, suffix);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        rc = pier_error_set_errno(PIER_EIO, "creating %s", tmp);
        goto done;
    }
    if (fchmod(fd, mode) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "chmod %s", tmp);
        goto fail;
    }
    const char *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = pier_error_set_errno(PIER_EIO, "writing %s", tmp);
            goto fail;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "fsync %s", tmp);
        goto fail;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "renaming %s to %s", tmp, path);
        goto fail;
    }
    fsync_dir_of(path);
    goto done;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
done:
    free(tmp);
    return rc;
}

int pier_file_mkdirs(const char *path, mode_t mode)
{
    char *p = pier_strdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, mode) != 0 && errno != EEXIST) {
                rc = pier_error_set_errno(PIER_EIO, "creating directory %s", p);
                break;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    if (rc == 0 && !pier_file_is_dir(path))
        rc = pier_error_set(PIER_EEXISTS, "%s exists and is not a directory", path);
    free(p);
    return rc;
}

int pier_file_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : pier_error_set_errno(PIER_EIO, "%s", path);
    if (!S_ISDIR(st.st_mode)) {
        if (unlink(path) != 0 && errno != ENOENT)
            return pier_error_set_errno(PIER_EIO, "removing %s", path);
        return 0;
    }
    DIR *d = opendir(path);
    if (!d)
        return pier_error_set_errno(PIER_EIO, "%s", path);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *child = pier_path_join(path, de->d_name);
        rc = pier_file_remove_tree(child);
        free(child);
    }
    closedir(d);
    if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
        rc = pier_error_set_errno(PIER_EIO, "removing %s", path);
    return rc;
}

bool pier_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

bool pier_file_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *pier_path_join(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    while (n > 1 && a[n - 1] == '/')
        n--;
    while (m && b[0] == '/') {
        b++;
        m--;
    }
    bool slash = !(n && a[n - 1] == '/'); /* a is "/" */
    char *p = pier_malloc(n + m + 2);
    memcpy(p, a, n);
    if (slash)
        p[n] = '/';
    memcpy(p + n + slash, b, m);
    p[n + slash + m] = '\0';
    return p;
}
