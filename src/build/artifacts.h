/*
 * artifacts: a build's artifact (artifacts: files, base-directory,
 * exclude-paths, discard-paths) and its cache (cache: paths), as CodeBuild
 * defines them, on the local file system.
 *
 * Paths are CodeBuild's globs (src/base/glob.h): `**` + `/` + `*` is every
 * file, `dir` + `/` + `*` the files directly in dir, a plain path one file; a plain
 * path naming a directory stands for everything under it. Only files are
 * matched (directories come along as needed).
 *
 * - pier_artifacts_collect copies the artifact's files from the source
 *   into an output directory (which the deploy stage publishes). A symlink
 *   to a file inside the source is copied as that file; a link leading out
 *   of the source, or to a directory, is skipped with a note.
 * - pier_artifacts_cache_save copies cache.paths (relative to the source,
 *   or absolute such as /root/.npm/ ** / *) into a cache directory,
 *   replacing the previous copy at once; pier_artifacts_cache_restore puts
 *   them back before the next build (files already present are kept).
 *   Modes and mtimes are kept; links are kept as links.
 *
 * Layout of a cache directory: <cache_dir>/<slot>/src/<relative path> and
 * <cache_dir>/<slot>/abs/<absolute path>, where slot is "default", or
 * derived from cache/key.
 *
 * Costs: one walk of the directories each pattern names (from its literal
 * prefix), one copy per file.
 */
#ifndef PIER_ARTIFACTS_H
#define PIER_ARTIFACTS_H

#include <stddef.h>

#include "build/buildspec.h"

/* Receives one human line (a skipped link, a restored count ...). */
typedef void (*pier_artifacts_note_fn)(void *ctx, const char *message);

/* Copies the files a selects under src_dir into out_dir, which must not
 * exist or be empty (it is created). *files gets the number copied. Fails
 * (PIER_EINVALID) when nothing matches, when base-directory matches no
 * directory, or when discard-paths puts two files at one name (both named). */
int pier_artifacts_collect(const pier_buildspec_artifact *a, const char *src_dir,
                           const char *out_dir, pier_artifacts_note_fn note, void *ctx,
                           size_t *files);

/* Saves the files c->paths selects (relative ones under src_dir) into
 * cache_dir, replacing the slot's previous content atomically. */
int pier_artifacts_cache_save(const pier_buildspec_cache *c, const char *src_dir,
                              const char *cache_dir, pier_artifacts_note_fn note, void *ctx,
                              size_t *files);
/* Restores what the slot of c (or its first fallback key that exists)
 * holds and c->paths still selects; missing cache is not an error. */
int pier_artifacts_cache_restore(const pier_buildspec_cache *c, const char *src_dir,
                                 const char *cache_dir, pier_artifacts_note_fn note, void *ctx,
                                 size_t *files);

#endif
