/*
 * storeindex: the store's in-memory index of one bucket: a skip list of
 * keys in byte order (unsigned memcmp, shorter first on a tie), each with
 * the size, modification time and ETag a listing shows.
 *
 * O(log n) seek, O(1) step to the next key, about 120 bytes + the key per
 * entry. Not thread-safe: the store holds the bucket's mutex around every
 * call and every walk.
 */
#ifndef PIER_STOREINDEX_H
#define PIER_STOREINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack/store.h"

#define PIER_STOREINDEX_MAX_LEVEL 24

typedef struct pier_storeindex_node {
    char *key;                           /* key bytes, NUL-terminated */
    size_t key_len;                      /* their count */
    uint64_t size;                       /* object size */
    int64_t mtime_ms;                    /* last modified */
    char etag[PIER_STORE_ETAG_MAX];      /* ETag without quotes */
    int level;                           /* number of forward pointers */
    struct pier_storeindex_node *next[]; /* forward pointers, level of them */
} pier_storeindex_node;

typedef struct {
    pier_storeindex_node *head; /* sentinel with PIER_STOREINDEX_MAX_LEVEL pointers */
    int level;                  /* levels in use */
    size_t count;               /* keys */
    uint64_t rng;               /* xorshift state for node levels */
} pier_storeindex;

/* Byte order of two keys. */
int pier_storeindex_cmp(const char *a, size_t alen, const char *b, size_t blen);
void pier_storeindex_init(pier_storeindex *l);
void pier_storeindex_destroy(pier_storeindex *l);
/* The first node >= key (> key when strict), or NULL; walk on with
 * node->next[0]. When update is not NULL it receives the last node before
 * key at every level (for insertion). */
pier_storeindex_node *pier_storeindex_seek(pier_storeindex *l, const char *key, size_t key_len,
                                           bool strict, pier_storeindex_node **update);
/* Inserts m->key or updates its entry. */
void pier_storeindex_upsert(pier_storeindex *l, const pier_store_meta *m);
void pier_storeindex_remove(pier_storeindex *l, const char *key, size_t key_len);

#endif
