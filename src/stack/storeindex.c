/*
 * storeindex: see storeindex.h. Node levels are drawn with p = 1/4 from a
 * per-list xorshift generator (the caller's lock serializes it).
 */
#include "stack/storeindex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

int pier_storeindex_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static pier_storeindex_node *sl_node_new(int level, const char *key, size_t key_len)
{
    pier_storeindex_node *n =
        pier_calloc(1, sizeof *n + (size_t)level * sizeof(pier_storeindex_node *));
    n->level = level;
    if (key) {
        n->key = pier_malloc(key_len + 1);
        memcpy(n->key, key, key_len);
        n->key[key_len] = '\0';
        n->key_len = key_len;
    }
    return n;
}

void pier_storeindex_init(pier_storeindex *l)
{
    l->head = sl_node_new(PIER_STOREINDEX_MAX_LEVEL, NULL, 0);
    l->level = 1;
    l->count = 0;
    l->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)l;
}

void pier_storeindex_destroy(pier_storeindex *l)
{
    pier_storeindex_node *n = l->head;
    while (n) {
        pier_storeindex_node *next = n->next[0];
        free(n->key);
        free(n);
        n = next;
    }
    l->head = NULL;
}

static int sl_random_level(pier_storeindex *l)
{
    int level = 1;
    while (level < PIER_STOREINDEX_MAX_LEVEL) {
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
pier_storeindex_node *pier_storeindex_seek(pier_storeindex *l, const char *key, size_t key_len,
                                           bool strict, pier_storeindex_node **update)
{
    pier_storeindex_node *x = l->head;
    for (int i = l->level - 1; i >= 0; i--) {
        while (x->next[i]) {
            int c = pier_storeindex_cmp(x->next[i]->key, x->next[i]->key_len, key, key_len);
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

void pier_storeindex_upsert(pier_storeindex *l, const pier_store_meta *m)
{
    pier_storeindex_node *update[PIER_STOREINDEX_MAX_LEVEL];
    pier_storeindex_node *x = pier_storeindex_seek(l, m->key, m->key_len, false, update);
    if (!x || pier_storeindex_cmp(x->key, x->key_len, m->key, m->key_len) != 0) {
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

void pier_storeindex_remove(pier_storeindex *l, const char *key, size_t key_len)
{
    pier_storeindex_node *update[PIER_STOREINDEX_MAX_LEVEL];
    pier_storeindex_node *x = pier_storeindex_seek(l, key, key_len, false, update);
    if (!x || pier_storeindex_cmp(x->key, x->key_len, key, key_len) != 0)
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
