/*
 * artifacts: see artifacts.h.
 *
 * Each pattern is split into its literal prefix (the leading segments
 * without wildcards) and the rest; only the prefix directory is walked, and
 * every file or link under it is matched against the whole pattern. Matches
 * from all patterns are gathered, sorted and de-duplicated before anything
 * is copied, so the output does not depend on pattern order and conflicts
 * (discard-paths) are found before the first write.
 *
 * Directories created in a destination are made writable first and given
 * their source's mode at the end (a read-only directory such as Go's module
 * cache would otherwise refuse its own files).
 */
#include "build/artifacts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/glob.h"
#include "base/mem.h"
#include "base/str.h"

typedef struct {
    char *rel;    /* path relative to the walk root, '/'-separated */
    char *base;   /* the base directory it came from ("" for the root) */
    bool is_link; /* a symlink (else a regular file) */
} match;

typedef struct {
    match *items; /* the matches */
    size_t count; /* their number */
    size_t cap;   /* allocated */
} match_list;

typedef struct {
    char *path;  /* a directory this copy created */
    mode_t mode; /* the mode it should end with */
} made_dir;

typedef struct {
    made_dir *items; /* directories to chmod at the end, in creation order */
    size_t count;    /* their number */
    size_t cap;      /* allocated */
} dir_list;

typedef struct {
    pier_artifacts_note_fn note; /* for skipped links and the like */
    void *ctx;                   /* its context */
} notes;

static void note(const notes *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(const notes *n, const char *fmt, ...)
{
    if (!n->note)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    n->note(n->ctx, msg);
}

static void matches_add(match_list *l, const char *rel, const char *base, bool is_link)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = pier_realloc(l->items, l->cap * sizeof *l->items);
    }
    l->items[l->count].rel = pier_strdup(rel);
    l->items[l->count].base = pier_strdup(base);
    l->items[l->count].is_link = is_link;
    l->count++;
}

static void matches_free(match_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i].rel);
        free(l->items[i].base);
    }
    free(l->items);
    l->items = NULL;
    l->count = l->cap = 0;
}

static int cmp_match(const void *a, const void *b)
{
    const match *x = a, *y = b;
    int c = strcmp(x->base, y->base);
    return c ? c : strcmp(x->rel, y->rel);
}

static void matches_sort_unique(match_list *l)
{
    if (l->count < 2)
        return;
    qsort(l->items, l->count, sizeof *l->items, cmp_match);
    size_t w = 1;
    for (size_t i = 1; i < l->count; i++) {
        if (cmp_match(&l->items[i], &l->items[w - 1]) == 0) {
            free(l->items[i].rel);
            free(l->items[i].base);
            continue;
        }
        l->items[w++] = l->items[i];
    }
    l->count = w;
}

/* Pattern text without a leading "./" (any number) or trailing '/'. */
static char *normalize(const char *pattern)
{
    while (pattern[0] == '.' && pattern[1] == '/')
        pattern += 2;
    char *p = pier_strdup(pattern);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/')
        p[--n] = '\0';
    if (strcmp(p, ".") == 0)
        p[0] = '\0';
    return p;
}

/* Length of the literal directory prefix of a pattern: the leading segments
 * without wildcards, not counting the last segment. */
static size_t literal_prefix(const char *p)
{
    size_t keep = 0;
    const char *s = p;
    for (;;) {
        const char *slash = strchr(s, '/');
        if (!slash)
            return keep;
        char *seg = pier_strndup(s, (size_t)(slash - s));
        bool lit = pier_glob_is_literal(seg);
        free(seg);
        if (!lit)
            return keep;
        keep = (size_t)(slash - p);
        s = slash + 1;
    }
}

/* True when rel is selected by the normalized pattern p: a glob match, or
 * (for a literal p) p itself or anything under it. */
static bool selects(const char *p, const char *rel)
{
    if (p[0] == '\0')
        return true;
    if (pier_glob_is_literal(p)) {
        size_t n = strlen(p);
        return strncmp(rel, p, n) == 0 && (rel[n] == '\0' || rel[n] == '/');
    }
    return pier_glob_match(p, rel);
}

typedef struct {
    dev_t dev; /* a directory never to enter (the output itself) */
    ino_t ino; /* its inode */
    bool set;  /* whether there is one */
} skip_dir;

typedef struct {
    const char *root;     /* walk root (absolute or relative path) */
    const char *base;     /* recorded in matches */
    const char *pattern;  /* normalized pattern matched against rel */
    match_list *out;      /* gathered matches */
    const skip_dir *skip; /* not entered */
} walk_ctx;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Visits dir (root + "/" + rel), recording files and links whose rel the
 * pattern selects. Links are never followed here. */
static int walk(walk_ctx *w, const char *rel)
{
    char *dir = rel[0] ? pier_path_join(w->root, rel) : pier_strdup(w->root);
    DIR *d = opendir(dir);
    int rc = 0;
    char **names = NULL;
    size_t count = 0, cap = 0;
    if (!d) {
        rc = errno == ENOENT || errno == ENOTDIR ? 0 : pier_error_set_errno(PIER_EIO, "%s", dir);
        goto done;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 32;
            names = pier_realloc(names, cap * sizeof *names);
        }
        names[count++] = pier_strdup(de->d_name);
    }
    closedir(d);
    if (count)
        qsort(names, count, sizeof *names, cmp_str);
    for (size_t i = 0; i < count && rc == 0; i++) {
        char *child_rel = rel[0] ? pier_path_join(rel, names[i]) : pier_strdup(names[i]);
        char *child = pier_path_join(dir, names[i]);
        struct stat st;
        if (lstat(child, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                if (!(w->skip->set && st.st_dev == w->skip->dev && st.st_ino == w->skip->ino))
                    rc = walk(w, child_rel);
            } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
                if (selects(w->pattern, child_rel))
                    matches_add(w->out, child_rel, w->base, S_ISLNK(st.st_mode));
            }
        }
        free(child_rel);
        free(child);
    }
done:
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    free(dir);
    return rc;
}

/* Gathers the files under root that the (raw) pattern selects. */
static int gather(const char *root, const char *base, const char *pattern, const skip_dir *skip,
                  match_list *out)
{
    char *p = normalize(pattern);
    walk_ctx w = {root, base, p, out, skip};
    int rc = 0;
    if (pier_glob_is_literal(p) && p[0]) {
        /* One file, or everything under one directory. */
        char *full = pier_path_join(root, p);
        struct stat st;
        if (lstat(full, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = walk(&w, p);
            else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
                matches_add(out, p, base, S_ISLNK(st.st_mode));
        }
        free(full);
    } else {
        size_t pre = literal_prefix(p);
        char *start = pier_strndup(p, pre);
        rc = walk(&w, start);
        free(start);
    }
    free(p);
    return rc;
}

/* ---- copying ---- */

static void dirs_add(dir_list *l, const char *path, mode_t mode)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 32;
        l->items = pier_realloc(l->items, l->cap * sizeof *l->items);
    }
    l->items[l->count].path = pier_strdup(path);
    l->items[l->count].mode = mode;
    l->count++;
}

/* Gives created directories their final modes, deepest first. */
static void dirs_finish(dir_list *l)
{
    for (size_t i = l->count; i-- > 0;) {
        chmod(l->items[i].path, l->items[i].mode);
        free(l->items[i].path);
    }
    free(l->items);
    l->items = NULL;
    l->count = l->cap = 0;
}

/* Creates the missing parent directories of dst_root/rel, each with the mode
 * of the same directory under src_root when there is one (0755 otherwise),
 * applied at the end through dirs. */
static int make_parents(const char *dst_root, const char *src_root, const char *rel, dir_list *dirs)
{
    char *r = pier_strdup(rel);
    int rc = 0;
    for (char *s = r; (s = strchr(s, '/')); s++) {
        *s = '\0';
        char *dst = pier_path_join(dst_root, r);
        struct stat st;
        if (lstat(dst, &st) != 0) {
            mode_t mode = 0755;
            if (src_root) {
                char *src = pier_path_join(src_root, r);
                struct stat sst;
                if (stat(src, &sst) == 0 && S_ISDIR(sst.st_mode))
                    mode = sst.st_mode & 07777;
                free(src);
            }
            if (mkdir(dst, 0700) != 0 && errno != EEXIST) {
                rc = pier_error_set_errno(PIER_EIO, "creating directory %s", dst);
                free(dst);
                break;
            }
            dirs_add(dirs, dst, mode);
        } else if (!S_ISDIR(st.st_mode)) {
            rc = pier_error_set(PIER_EEXISTS, "%s exists and is not a directory", dst);
            free(dst);
            break;
        }
        free(dst);
        *s = '/';
    }
    free(r);
    return rc;
}

/* Copies the regular file src to dst (which must not exist), with src's
 * mode and times. */
static int copy_file(const char *src, const char *dst)
{
    int in = -1, out = -1, rc = 0;
    char *buf = NULL;
    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        rc = pier_error_set_errno(PIER_EIO, "reading %s", src);
        goto done;
    }
    struct stat st;
    if (fstat(in, &st) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "%s", src);
        goto done;
    }
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = pier_error_set_errno(errno == EEXIST ? PIER_EEXISTS : PIER_EIO, "creating %s", dst);
        goto done;
    }
    bool plain = false;
    for (;;) {
        ssize_t n;
        if (!plain) {
            n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
            if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                          errno == EOPNOTSUPP || errno == EPERM)) {
                plain = true;
                continue;
            }
        } else {
            if (!buf)
                buf = pier_malloc(1 << 17);
            n = read(in, buf, 1 << 17);
            if (n > 0) {
                for (ssize_t off = 0; off < n;) {
                    ssize_t w = write(out, buf + off, (size_t)(n - off));
                    if (w < 0 && errno == EINTR)
                        continue;
                    if (w < 0) {
                        rc = pier_error_set_errno(PIER_EIO, "writing %s", dst);
                        goto done;
                    }
                    off += w;
                }
            }
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pier_error_set_errno(PIER_EIO, "copying %s to %s", src, dst);
            goto done;
        }
        if (n == 0)
            break;
    }
    if (fchmod(out, st.st_mode & 07777) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "chmod %s", dst);
        goto done;
    }
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    futimens(out, times);
done:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0 && rc == 0)
        rc = pier_error_set_errno(PIER_EIO, "writing %s", dst);
    if (rc && out >= 0)
        unlink(dst);
    free(buf);
    return rc;
}

/* Recreates the link src at dst with the same target text. */
static int copy_link(const char *src, const char *dst)
{
    char target[PATH_MAX];
    ssize_t n = readlink(src, target, sizeof target - 1);
    if (n < 0)
        return pier_error_set_errno(PIER_EIO, "reading link %s", src);
    target[n] = '\0';
    if (symlink(target, dst) != 0)
        return pier_error_set_errno(errno == EEXIST ? PIER_EEXISTS : PIER_EIO, "creating link %s",
                                    dst);
    return 0;
}

static bool inside(const char *real, const char *root_real)
{
    size_t n = strlen(root_real);
    if (n == 1)
        return true;
    return strncmp(real, root_real, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/* ---- artifacts ---- */

static const char *basename_of(const char *rel)
{
    const char *s = strrchr(rel, '/');
    return s ? s + 1 : rel;
}

/* Expands base-directory into the directories (relative to src) it names:
 * itself when literal, else every directory whose path matches, segment by
 * segment. */
static int expand_base(const char *src, const char *pattern, char ***out, size_t *count)
{
    char *p = normalize(pattern);
    char **cur = pier_calloc(1, sizeof *cur);
    size_t n = 1;
    cur[0] = pier_strdup("");
    char *save = NULL;
    int rc = 0;
    for (char *seg = strtok_r(p, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        char **next = NULL;
        size_t nn = 0, cap = 0;
        for (size_t i = 0; i < n; i++) {
            char *dir = cur[i][0] ? pier_path_join(src, cur[i]) : pier_strdup(src);
            if (pier_glob_is_literal(seg)) {
                char *cand = pier_path_join(dir, seg);
                struct stat st;
                if (lstat(cand, &st) == 0 && S_ISDIR(st.st_mode)) {
                    if (nn == cap)
                        next = pier_realloc(next, (cap = cap ? cap * 2 : 8) * sizeof *next);
                    next[nn++] = cur[i][0] ? pier_path_join(cur[i], seg) : pier_strdup(seg);
                }
                free(cand);
            } else {
                DIR *d = opendir(dir);
                struct dirent *de;
                while (d && (de = readdir(d))) {
                    if (de->d_name[0] == '.' &&
                        (de->d_name[1] == '\0' || (de->d_name[1] == '.' && !de->d_name[2])))
                        continue;
                    if (!pier_glob_match(seg, de->d_name))
                        continue;
                    char *cand = pier_path_join(dir, de->d_name);
                    struct stat st;
                    if (lstat(cand, &st) == 0 && S_ISDIR(st.st_mode)) {
                        if (nn == cap)
                            next = pier_realloc(next, (cap = cap ? cap * 2 : 8) * sizeof *next);
                        next[nn++] = cur[i][0] ? pier_path_join(cur[i], de->d_name)
                                               : pier_strdup(de->d_name);
                    }
                    free(cand);
                }
                if (d)
                    closedir(d);
            }
            free(dir);
        }
        for (size_t i = 0; i < n; i++)
            free(cur[i]);
        free(cur);
        cur = next;
        n = nn;
        if (!n)
            break;
    }
    free(p);
    if (n)
        qsort(cur, n, sizeof *cur, cmp_str);
    *out = cur;
    *count = n;
    return rc;
}

static bool excluded(const pier_buildspec_artifact *a, const char *rel)
{
    for (size_t i = 0; i < a->exclude_count; i++) {
        char *p = normalize(a->exclude_paths[i]);
        bool hit = selects(p, rel);
        if (!hit && !pier_glob_is_literal(p)) {
            /* A pattern naming directories ("node_modules", "* /tmp") excludes
             * what is under them too. */
            pier_buf b;
            pier_buf_init(&b, PATH_MAX * 2);
            pier_buf_printf(&b, "%s/**", p);
            hit = pier_glob_match(pier_buf_cstr(&b), rel);
            pier_buf_free(&b);
        }
        free(p);
        if (hit)
            return true;
    }
    return false;
}

typedef struct {
    const char *dest; /* output path */
    const match *m;   /* where it comes from */
} placement;

static int cmp_placement(const void *a, const void *b)
{
    const placement *x = a, *y = b;
    int c = strcmp(x->dest, y->dest);
    return c ? c : cmp_match(x->m, y->m);
}

static int prepare_out_dir(const char *out_dir, skip_dir *skip)
{
    struct stat st;
    if (lstat(out_dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return pier_error_set(PIER_EEXISTS,
                                  "artifact directory %s exists and is not a "
                                  "directory",
                                  out_dir);
        DIR *d = opendir(out_dir);
        if (!d)
            return pier_error_set_errno(PIER_EIO, "%s", out_dir);
        struct dirent *de;
        bool empty = true;
        while ((de = readdir(d)))
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                empty = false;
        closedir(d);
        if (!empty)
            return pier_error_set(PIER_EEXISTS,
                                  "artifact directory %s is not empty; pier does not write over "
                                  "files it did not make",
                                  out_dir);
    } else {
        int rc = pier_file_mkdirs(out_dir, 0755);
        if (rc)
            return rc;
    }
    if (stat(out_dir, &st) == 0) {
        skip->dev = st.st_dev;
        skip->ino = st.st_ino;
        skip->set = true;
    }
    return 0;
}

int pier_artifacts_collect(const pier_buildspec_artifact *a, const char *src_dir,
                           const char *out_dir, pier_artifacts_note_fn note_fn, void *ctx,
                           size_t *files)
{
    notes nt = {note_fn, ctx};
    match_list ml = {0};
    char **bases = NULL;
    size_t base_count = 0;
    placement *pl = NULL;
    size_t pl_count = 0;
    dir_list dirs = {0};
    char src_real[PATH_MAX];
    skip_dir skip = {0};
    int rc = 0;
    if (files)
        *files = 0;
    if (!realpath(src_dir, src_real))
        return pier_error_set_errno(PIER_ENOTFOUND, "source directory %s", src_dir);
    if ((rc = prepare_out_dir(out_dir, &skip)))
        return rc;
    if (a->base_directory) {
        if ((rc = expand_base(src_dir, a->base_directory, &bases, &base_count)))
            goto done;
        if (!base_count) {
            rc = pier_error_set(PIER_EINVALID,
                                "artifacts/base-directory '%s' matches no directory in %s",
                                a->base_directory, src_dir);
            goto done;
        }
    } else {
        bases = pier_calloc(1, sizeof *bases);
        bases[0] = pier_strdup("");
        base_count = 1;
    }
    for (size_t b = 0; b < base_count; b++) {
        char *root = bases[b][0] ? pier_path_join(src_dir, bases[b]) : pier_strdup(src_dir);
        for (size_t f = 0; f < a->file_count && rc == 0; f++)
            rc = gather(root, bases[b], a->files[f], &skip, &ml);
        free(root);
        if (rc)
            goto done;
    }
    matches_sort_unique(&ml);
    pl = pier_calloc(ml.count ? ml.count : 1, sizeof *pl);
    for (size_t i = 0; i < ml.count; i++) {
        if (excluded(a, ml.items[i].rel))
            continue;
        pl[pl_count].m = &ml.items[i];
        pl[pl_count].dest = a->discard_paths ? basename_of(ml.items[i].rel) : ml.items[i].rel;
        pl_count++;
    }
    if (!pl_count) {
        pier_buf pats;
        pier_buf_init(&pats, 4096);
        for (size_t f = 0; f < a->file_count; f++)
            pier_buf_printf(&pats, "%s'%s'", f ? ", " : "", a->files[f]);
        rc = pier_error_set(PIER_EINVALID,
                            "no matching artifact paths found: artifacts/files %s matched no file "
                            "under %s%s%s",
                            pier_buf_cstr(&pats), src_dir, a->base_directory ? "/" : "",
                            a->base_directory ? a->base_directory : "");
        pier_buf_free(&pats);
        goto done;
    }
    qsort(pl, pl_count, sizeof *pl, cmp_placement);
    for (size_t i = 1; i < pl_count; i++) {
        if (strcmp(pl[i].dest, pl[i - 1].dest) == 0) {
            const match *x = pl[i - 1].m, *y = pl[i].m;
            rc = pier_error_set(
                PIER_EINVALID, "artifacts: '%s%s%s' and '%s%s%s' would both be written to '%s'%s",
                x->base, x->base[0] ? "/" : "", x->rel, y->base, y->base[0] ? "/" : "", y->rel,
                pl[i].dest, a->discard_paths ? " (discard-paths: yes)" : "");
            goto done;
        }
    }
    for (size_t i = 0; i < pl_count && rc == 0; i++) {
        const match *m = pl[i].m;
        char *root = m->base[0] ? pier_path_join(src_dir, m->base) : pier_strdup(src_dir);
        char *src = pier_path_join(root, m->rel);
        char *dst = pier_path_join(out_dir, pl[i].dest);
        char real[PATH_MAX];
        real[0] = '\0';
        bool copy = true;
        if (m->is_link) {
            struct stat st;
            if (!realpath(src, real) || !inside(real, src_real)) {
                note(&nt, "skipping %s: the link points outside the source directory", src);
                copy = false;
            } else if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
                note(&nt, "skipping %s: the link does not point to a file", src);
                copy = false;
            }
        }
        if (copy) {
            rc = make_parents(out_dir, a->discard_paths ? NULL : root, pl[i].dest, &dirs);
            if (rc == 0)
                rc = copy_file(m->is_link ? real : src, dst);
            if (rc == 0 && files)
                (*files)++;
        }
        free(root);
        free(src);
        free(dst);
    }
done:
    dirs_finish(&dirs);
    for (size_t i = 0; i < base_count; i++)
        free(bases[i]);
    free(bases);
    free(pl);
    matches_free(&ml);
    return rc;
}

/* ---- cache ---- */

/* rm -rf that first makes each directory writable (a cached read-only
 * directory must still be replaceable). Best effort. */
static void force_remove(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        chmod(path, (st.st_mode & 07777) | 0700);
        DIR *d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char *child = pier_path_join(path, de->d_name);
            force_remove(child);
            free(child);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* The slot directory name for a key: "default" without one, the key itself
 * when it is a plain name, else a hash of it. */
static char *slot_name(const char *key)
{
    if (!key || !key[0])
        return pier_strdup("default");
    bool plain = key[0] != '.' && strlen(key) <= 128;
    for (const char *c = key; *c && plain; c++)
        plain = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                *c == '.' || *c == '_' || *c == '-';
    char *out = pier_malloc(160);
    if (plain) {
        snprintf(out, 160, "key-%s", key);
    } else {
        char hex[65];
        pier_sha256_hex(hex, key, strlen(key));
        snprintf(out, 160, "key-%.32s", hex);
    }
    return out;
}

typedef struct {
    const char *from_root; /* where the files are */
    const char *to_root;   /* where they go */
    bool links_confined;   /* skip links that resolve outside from_root */
    bool keep_existing;    /* a present destination is kept, not an error */
    notes *nt;             /* for skipped entries */
    dir_list *dirs;        /* directories created */
    size_t copied;         /* files and links copied */
} copier;

static int copy_matches(copier *c, const match_list *ml)
{
    char from_real[PATH_MAX];
    if (c->links_confined && !realpath(c->from_root, from_real))
        return pier_error_set_errno(PIER_EIO, "%s", c->from_root);
    int rc = 0;
    for (size_t i = 0; i < ml->count && rc == 0; i++) {
        const match *m = &ml->items[i];
        char *src = pier_path_join(c->from_root, m->rel);
        char *dst = pier_path_join(c->to_root, m->rel);
        struct stat st;
        if (lstat(dst, &st) == 0) {
            if (!c->keep_existing)
                rc = pier_error_set(PIER_EEXISTS, "%s already exists", dst);
            goto next;
        }
        if (m->is_link && c->links_confined) {
            char real[PATH_MAX];
            if (!realpath(src, real) || !inside(real, from_real)) {
                note(c->nt, "cache: skipping %s: the link points outside %s", src, c->from_root);
                goto next;
            }
        }
        rc = make_parents(c->to_root, c->from_root, m->rel, c->dirs);
        if (rc == 0)
            rc = m->is_link ? copy_link(src, dst) : copy_file(src, dst);
        if (rc == 0)
            c->copied++;
    next:
        free(src);
        free(dst);
    }
    return rc;
}

/* Splits cache paths into the relative and the absolute ones (the latter
 * without their leading '/'). */
static void split_paths(const pier_buildspec_cache *c, const char ***rel, size_t *nrel,
                        const char ***abs, size_t *nabs)
{
    *rel = pier_calloc(c->path_count + 1, sizeof **rel);
    *abs = pier_calloc(c->path_count + 1, sizeof **abs);
    *nrel = *nabs = 0;
    for (size_t i = 0; i < c->path_count; i++) {
        const char *p = c->paths[i];
        if (p[0] == '/') {
            while (p[0] == '/')
                p++;
            (*abs)[(*nabs)++] = p;
        } else {
            (*rel)[(*nrel)++] = p;
        }
    }
}

int pier_artifacts_cache_save(const pier_buildspec_cache *c, const char *src_dir,
                              const char *cache_dir, pier_artifacts_note_fn note_fn, void *ctx,
                              size_t *files)
{
    notes nt = {note_fn, ctx};
    const char **rel = NULL, **abs = NULL;
    size_t nrel = 0, nabs = 0;
    match_list ml_rel = {0}, ml_abs = {0};
    dir_list dirs = {0};
    char *slot = slot_name(c->key);
    char *final = pier_path_join(cache_dir, slot);
    char token[17];
    pier_random_token(token, 16, false);
    char tmpname[64], oldname[64];
    snprintf(tmpname, sizeof tmpname, ".tmp-%s", token);
    snprintf(oldname, sizeof oldname, ".old-%s", token);
    char *tmp = pier_path_join(cache_dir, tmpname);
    char *old = pier_path_join(cache_dir, oldname);
    char *tmp_src = pier_path_join(tmp, "src");
    char *tmp_abs = pier_path_join(tmp, "abs");
    skip_dir skip = {0};
    struct stat st;
    int rc = 0;
    if (files)
        *files = 0;
    if ((rc = pier_file_mkdirs(cache_dir, 0700)))
        goto done;
    if (stat(cache_dir, &st) == 0)
        skip = (skip_dir){st.st_dev, st.st_ino, true};
    if ((rc = pier_file_mkdirs(tmp_src, 0700)) || (rc = pier_file_mkdirs(tmp_abs, 0700)))
        goto done;
    split_paths(c, &rel, &nrel, &abs, &nabs);
    for (size_t i = 0; i < nrel && rc == 0; i++)
        rc = gather(src_dir, "", rel[i], &skip, &ml_rel);
    for (size_t i = 0; i < nabs && rc == 0; i++)
        rc = gather("/", "", abs[i], &skip, &ml_abs);
    if (rc)
        goto done;
    matches_sort_unique(&ml_rel);
    matches_sort_unique(&ml_abs);
    copier cr = {src_dir, tmp_src, true, true, &nt, &dirs, 0};
    copier ca = {"/", tmp_abs, false, true, &nt, &dirs, 0};
    if ((rc = copy_matches(&cr, &ml_rel)) || (rc = copy_matches(&ca, &ml_abs)))
        goto done;
    dirs_finish(&dirs);
    if (files)
        *files = cr.copied + ca.copied;
    /* Swap in the new copy: the slot is never half old, half new. */
    if (lstat(final, &st) == 0 && rename(final, old) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "moving %s aside", final);
        goto done;
    }
    if (rename(tmp, final) != 0) {
        rc = pier_error_set_errno(PIER_EIO, "renaming %s to %s", tmp, final);
        rename(old, final);
        goto done;
    }
done:
    dirs_finish(&dirs);
    if (rc)
        force_remove(tmp);
    force_remove(old);
    matches_free(&ml_rel);
    matches_free(&ml_abs);
    free(rel);
    free(abs);
    free(slot);
    free(final);
    free(tmp);
    free(old);
    free(tmp_src);
    free(tmp_abs);
    return rc;
}

/* Keeps only the matches some pattern in pats selects. */
static void filter(match_list *ml, const char **pats, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < ml->count; i++) {
        bool keep = false;
        for (size_t k = 0; k < n && !keep; k++) {
            char *p = normalize(pats[k]);
            keep = selects(p, ml->items[i].rel);
            free(p);
        }
        if (keep) {
            ml->items[w++] = ml->items[i];
        } else {
            free(ml->items[i].rel);
            free(ml->items[i].base);
        }
    }
    ml->count = w;
}

int pier_artifacts_cache_restore(const pier_buildspec_cache *c, const char *src_dir,
                                 const char *cache_dir, pier_artifacts_note_fn note_fn, void *ctx,
                                 size_t *files)
{
    notes nt = {note_fn, ctx};
    const char **rel = NULL, **abs = NULL;
    size_t nrel = 0, nabs = 0;
    match_list ml_rel = {0}, ml_abs = {0};
    dir_list dirs = {0};
    char *slot_dir = NULL;
    int rc = 0;
    skip_dir skip = {0};
    if (files)
        *files = 0;
    /* The key's slot, else the first fallback key that has one. */
    for (size_t i = 0; i <= c->fallback_count && !slot_dir; i++) {
        const char *key = i == 0 ? c->key : c->fallback_keys[i - 1];
        if (i > 0 && !key)
            continue;
        char *slot = slot_name(key);
        char *dir = pier_path_join(cache_dir, slot);
        free(slot);
        if (pier_file_is_dir(dir)) {
            slot_dir = dir;
            if (i > 0)
                note(&nt, "cache: no entry for key '%s'; using fallback key '%s'",
                     c->key ? c->key : "", key);
        } else {
            free(dir);
        }
    }
    if (!slot_dir) {
        note(&nt, "cache: nothing saved yet in %s", cache_dir);
        return 0;
    }
    char *from_src = pier_path_join(slot_dir, "src");
    char *from_abs = pier_path_join(slot_dir, "abs");
    split_paths(c, &rel, &nrel, &abs, &nabs);
    if ((rc = gather(from_src, "", "", &skip, &ml_rel)) ||
        (rc = gather(from_abs, "", "", &skip, &ml_abs)))
        goto done;
    filter(&ml_rel, rel, nrel);
    filter(&ml_abs, abs, nabs);
    matches_sort_unique(&ml_rel);
    matches_sort_unique(&ml_abs);
    copier cr = {from_src, src_dir, false, true, &nt, &dirs, 0};
    copier ca = {from_abs, "/", false, true, &nt, &dirs, 0};
    rc = copy_matches(&cr, &ml_rel);
    if (rc == 0)
        rc = copy_matches(&ca, &ml_abs);
    if (files)
        *files = cr.copied + ca.copied;
done:
    dirs_finish(&dirs);
    matches_free(&ml_rel);
    matches_free(&ml_abs);
    free(rel);
    free(abs);
    free(from_src);
    free(from_abs);
    free(slot_dir);
    return rc;
}
