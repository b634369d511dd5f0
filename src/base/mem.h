/*
 * mem: allocation that never returns NULL.
 *
 * pier is an application: when memory runs out there is nothing sensible
 * left to do, so every allocation aborts with a message instead of making
 * each caller test for NULL (the habit of redis' zmalloc).
 */
#ifndef PIER_MEM_H
#define PIER_MEM_H

#include <stddef.h>

void *pier_malloc(size_t n);
void *pier_calloc(size_t count, size_t size);
void *pier_realloc(void *p, size_t n);
char *pier_strdup(const char *s);
char *pier_strndup(const char *s, size_t n);
/* Frees *p and sets it to NULL. */
#define PIER_FREE(p)                                                                               \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

#endif
