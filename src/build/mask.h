/*
 * mask: hides secret values in text before it is written anywhere (build
 * logs, the run log, error messages, action output).
 *
 * A pier_mask holds the values to hide, longest first, so a secret that
 * contains another is replaced whole. A multi-line value is also added line
 * by line (logs are masked a line at a time). Besides the listed values,
 * anything shaped like an AWS access key id (AKIA/ASIA + 16 upper-case
 * letters or digits, standing alone) is hidden. Every hit becomes "***".
 *
 * Cost: O(text x values) in the worst case, with a first-byte check that
 * keeps the common case near one pass. Values are wiped when freed.
 */
#ifndef PIER_MASK_H
#define PIER_MASK_H

#include <stddef.h>

#include "base/buf.h"

typedef struct pier_mask pier_mask;

pier_mask *pier_mask_new(void);
/* Frees the mask, zeroing the values it held. Accepts NULL. */
void pier_mask_free(pier_mask *m);
/* Adds a value (and each of its lines); NULL and "" are ignored. */
void pier_mask_add(pier_mask *m, const char *value);
/* The longest value held (0 when none): a streaming caller keeps that many
 * bytes minus one back, so a value split across reads is still caught. */
size_t pier_mask_longest(const pier_mask *m);
/* Appends s[0..n) to out with every value replaced by "***". */
void pier_mask_apply(const pier_mask *m, const char *s, size_t n, pier_buf *out);
/* Masks a buffer in place. */
void pier_mask_buf(const pier_mask *m, pier_buf *text);
/* A malloc'ed masked copy of s. */
char *pier_mask_dup(const pier_mask *m, const char *s);

#endif
