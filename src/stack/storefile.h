/*
 * storefile: the store's file format and its durable-write helpers.
 *
 * An object (or part, or upload record) is one file: DATA, RECORDS,
 * TRAILER. RECORDS is a run of (u32 name length, name, u32 value length,
 * value), little-endian: ":key", ":size", ":etag", ":mtime" (decimal ms),
 * then the headers in order. TRAILER is 16 bytes: u32 length of RECORDS,
 * u32 CRC-32C of RECORDS, "PIEROBJ1". The data is bytes 0..size, so a file
 * can be served with sendfile as it is.
 */
#ifndef PIER_STOREFILE_H
#define PIER_STOREFILE_H

#include <stdint.h>
#include <sys/types.h>

#include "base/buf.h"
#include "base/digest.h"
#include "stack/store.h"

/* Appends m as RECORDS + TRAILER to b. PIER_ETOOBIG past 8 MiB of metadata. */
int pier_storefile_encode(pier_buf *b, const pier_store_meta *m);
/* Appends m's records to an open temp file (its data already written),
 * then fsyncs it. Errors name tmp_path. */
int pier_storefile_seal(int fd, const char *tmp_path, const pier_store_meta *m);
/* Reads the metadata of an open file (what names it in errors): PIER_EIO
 * for a file that is not a whole object. */
int pier_storefile_read(int fd, const char *what, pier_store_meta *m);
int pier_storefile_read_path(const char *path, pier_store_meta *m);

/* write(2) and pread(2) until done (EINTR retried); errors name what. */
int pier_storefile_write(int fd, const void *data, size_t n, const char *what);
int pier_storefile_pread(int fd, void *out, size_t n, off_t off, const char *what);
/* Copies len bytes of in from off to the end of out, hashing them into md5
 * when not NULL. */
int pier_storefile_copy(int in, off_t off, uint64_t len, int out, const char *out_path,
                        pier_hash *md5);
int pier_storefile_fsync_dir(const char *path);

/* Metadata helpers: set the key (copied), append headers (copied), move
 * dst <- src (or clear src when dst is NULL). */
void pier_storefile_set_key(pier_store_meta *m, const char *key, size_t key_len);
void pier_storefile_add_headers(pier_store_meta *m, const pier_store_header *h, size_t n);
void pier_storefile_move(pier_store_meta *dst, pier_store_meta *src);
/* The wall clock in ms since the epoch. */
int64_t pier_storefile_now_ms(void);

#endif
