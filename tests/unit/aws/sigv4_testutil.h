/*
 * sigv4_testutil: helpers the SigV4 tests share (test_sigv4.c and
 * test_sigv4_oracle.c). Header-only.
 */
#ifndef PIER_TEST_SIGV4_TESTUTIL_H
#define PIER_TEST_SIGV4_TESTUTIL_H

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"

/* The '&'-separated parameters of a query, sorted, for an order-free
 * compare (the docs list presigned parameters in another order). At most
 * 64 parameters. malloc'ed. */
static __attribute__((unused)) char *sorted_params(const char *q)
{
    char *copy = pier_strdup(q);
    char *items[64];
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, "&", &save); t && n < 64; t = strtok_r(NULL, "&", &save))
        items[n++] = t;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(items[j - 1], items[j]) > 0; j--) {
            char *t = items[j];
            items[j] = items[j - 1];
            items[j - 1] = t;
        }
    pier_buf b = PIER_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        pier_buf_printf(&b, "%s%s", i ? "&" : "", items[i]);
    free(copy);
    return pier_buf_detach(&b);
}

#endif
