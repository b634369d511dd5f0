/*
 * manifest: the local side of a deploy: every file under a build folder,
 * its S3 key, size and digests.
 *
 * pier_deploy_manifest_build walks the folder (base/file.h: byte order,
 * symlinks leading out of the folder skipped), then hashes the files on a
 * small thread pool, one read pass per file computing MD5, SHA-256 and, for
 * a file above the multipart threshold, the MD5 of each part, from which
 * the ETag S3 reports for a multipart upload follows:
 * hex(md5(md5(part 1) || ... || md5(part N))) + "-N".
 *
 * Part sizes (pier_deploy_part_size) start at 8 MiB and grow, for objects
 * past 10,000 x 8 MiB, to ceil(size / 10,000) rounded up to a whole MiB, so
 * no object needs more than S3's 10,000 parts. The uploader must use the
 * part_size and part_count recorded here, or the ETags will not compare.
 *
 * Lazy MD5 (options.lazy_md5): the first pass computes SHA-256 only (with
 * SHA-NI several times faster than MD5), which is all a deploy needs for
 * the files pier's remote manifest vouches for; the MD5s (Content-MD5, the
 * ETag forms) are then computed with pier_deploy_manifest_add_md5 for just
 * the files that need them, in a pass that re-hashes SHA-256 too and fails
 * if the content moved, so md5 and sha256 always describe the same bytes.
 * options.want_md5, when set by another thread (the remote manifest turned
 * out absent), makes every file hashed from then on get both at once (a
 * multipart file then gets its part MD5s and ETag but no whole-file MD5,
 * which only a plain ETag would be compared with: whole_md5 says).
 *
 * Ownership: the manifest owns its files and their strings; free it with
 * pier_deploy_manifest_free. Entries are sorted by key (byte order, the
 * order S3 lists in).
 */
#ifndef PIER_DEPLOY_MANIFEST_H
#define PIER_DEPLOY_MANIFEST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/digest.h"

#define PIER_DEPLOY_MIB                 ((uint64_t)1 << 20)
#define PIER_DEPLOY_PART_SIZE_MIN       (8 * PIER_DEPLOY_MIB)
#define PIER_DEPLOY_MAX_PARTS           10000
#define PIER_DEPLOY_MULTIPART_THRESHOLD (8 * PIER_DEPLOY_MIB)
/* Room for a multipart ETag: 32 hex digits, '-', up to 5 digits, NUL. */
#define PIER_DEPLOY_ETAG_LEN 48

typedef struct {
    char *key;                                /* S3 key: prefix + rel */
    char *rel;                                /* path under the folder, '/'-separated */
    char *path;                               /* local path to read when uploading */
    uint64_t size;                            /* bytes (as hashed) */
    bool has_md5;                             /* what an upload needs is set: etag and
                                                 md5 (one PUT) or part_md5 (multipart);
                                                 false only with lazy_md5 */
    bool whole_md5;                           /* md5 and md5_hex are set (always with
                                                 has_md5 but for a multipart file
                                                 hashed with lazy_md5 + want_md5) */
    unsigned char md5[PIER_MD5_LEN];          /* of the whole content */
    unsigned char sha256[PIER_SHA256_LEN];    /* of the whole content */
    char md5_hex[2 * PIER_MD5_LEN + 1];       /* lower-case hex of md5 */
    char sha256_hex[2 * PIER_SHA256_LEN + 1]; /* lower-case hex of sha256 */
    char etag[PIER_DEPLOY_ETAG_LEN];          /* the ETag S3 reports once pier uploads it:
                                                 md5_hex, or the multipart form */
    uint64_t part_size;                       /* multipart part size; 0 for one PUT */
    uint32_t part_count;                      /* parts; 0 for one PUT */
    unsigned char (*part_md5)[PIER_MD5_LEN];  /* part_count digests (Content-MD5 of
                                                 each part); NULL for one PUT */
} pier_deploy_file;

typedef struct {
    char *root;                   /* the folder, as given */
    char *prefix;                 /* normalized key prefix: "" or ending in '/' */
    uint64_t multipart_threshold; /* files larger than this are multipart */
    pier_deploy_file *files;      /* sorted by key */
    size_t count;                 /* their number */
    uint64_t total_bytes;         /* sum of sizes */
} pier_deploy_manifest;

typedef struct {
    const char *prefix;           /* key prefix (normalized, see below); NULL = "" */
    uint64_t multipart_threshold; /* 0 = PIER_DEPLOY_MULTIPART_THRESHOLD */
    unsigned threads;             /* hashing threads; 0 = online CPUs, at most 8 */
    bool lazy_md5;                /* SHA-256 only; MD5s by pier_deploy_manifest_add_md5 */
    atomic_int *want_md5;         /* lazy_md5: when nonzero, hash MD5 too; may be NULL */
} pier_deploy_manifest_options;

#define PIER_DEPLOY_MANIFEST_OPTIONS_INIT                                                          \
    {                                                                                              \
        NULL, 0, 0, false, NULL                                                                    \
    }

/* Builds the manifest of root. Errors name the file or folder at fault:
 * PIER_ENOTFOUND (no such folder), PIER_EINVALID (not a folder), PIER_EIO
 * (unreadable), PIER_ECONFLICT (a file changed size while being read). */
int pier_deploy_manifest_build(pier_deploy_manifest **out, const char *root,
                               const pier_deploy_manifest_options *opts);
/* Computes the MD5s of the files at the n indexes idx that lack them (the
 * others are left alone), re-hashing SHA-256 alongside: PIER_ECONFLICT,
 * naming the file, when the content is no longer what the first pass read;
 * else the errors of pier_deploy_manifest_build. threads as there. */
int pier_deploy_manifest_add_md5(pier_deploy_manifest *m, const size_t *idx, size_t n,
                                 unsigned threads);
void pier_deploy_manifest_free(pier_deploy_manifest *m);
/* The entry for key, or NULL (binary search). Borrowed. */
const pier_deploy_file *pier_deploy_manifest_find(const pier_deploy_manifest *m, const char *key);

/* The part size for a multipart upload of size bytes. */
uint64_t pier_deploy_part_size(uint64_t size);
/* ceil(size / pier_deploy_part_size(size)), at least 1. */
uint32_t pier_deploy_part_count(uint64_t size);
/* The multipart ETag "hex(md5(concat of part md5s))-N" into out. */
void pier_deploy_multipart_etag(char out[PIER_DEPLOY_ETAG_LEN],
                                const unsigned char (*part_md5)[PIER_MD5_LEN], uint32_t n);
/* A key prefix as pier uses it: leading '/' removed, a trailing '/' added
 * when not empty ("site" -> "site/", "/" -> ""). Malloc'ed. */
char *pier_deploy_prefix_normalize(const char *prefix);

#endif
