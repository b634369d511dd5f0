/*
 * mem: abort-on-failure allocation wrappers. See mem.h.
 */
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n)
{
    fprintf(stderr, "pier: out of memory (allocating %zu bytes)\n", n);
    abort();
}

void *pier_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *pier_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *pier_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *pier_strdup(const char *s)
{
    return pier_strndup(s, strlen(s));
}

char *pier_strndup(const char *s, size_t n)
{
    char *p = pier_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
