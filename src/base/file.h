/*
 * file: the file-system operations pier relies on.
 *
 * - pier_file_walk visits every regular file under a root in byte order of
 *   their relative paths, never following a symlink that leads out of the
 *   root (links inside the tree are followed for files, not for directories,
 *   so there are no cycles).
 * - pier_file_write_atomic makes a file appear whole or not at all: write a
 *   temp file beside it, fsync, rename, fsync the directory.
 */
#ifndef PIER_FILE_H
#define PIER_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"

typedef struct {
    const char *path; /* full path (root + "/" + rel) */
    const char *rel;  /* path relative to the root, '/'-separated */
    uint64_t size;    /* bytes */
    int64_t mtime;    /* seconds since the epoch */
    mode_t mode;      /* st_mode of the file (after following a link) */
} pier_file_entry;

/* Called once per file; a non-zero return stops the walk and is returned by
 * pier_file_walk. */
typedef int (*pier_file_walk_cb)(const pier_file_entry *entry, void *ctx);

/* Walks root (a directory). Files are reported in byte order of rel.
 * Symlinks whose target resolves outside root are skipped with a warning;
 * unreadable directories are an error naming the directory. */
int pier_file_walk(const char *root, pier_file_walk_cb cb, void *ctx);

/* Reads a whole file into out (appended), failing with PIER_ETOOBIG past
 * out's cap. PIER_ENOTFOUND when the file does not exist. */
int pier_file_read(const char *path, pier_buf *out);
/* Writes data to path atomically with the given mode (e.g. 0600). */
int pier_file_write_atomic(const char *path, const void *data, size_t n, mode_t mode);
/* mkdir -p with the given mode. */
int pier_file_mkdirs(const char *path, mode_t mode);
/* rm -rf; missing is not an error. Does not follow symlinks. */
int pier_file_remove_tree(const char *path);
bool pier_file_exists(const char *path);
bool pier_file_is_dir(const char *path);
/* Joins a and b with one '/' between (b may start with '/'): malloc'ed. */
char *pier_path_join(const char *a, const char *b);

#endif
