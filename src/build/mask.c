/*
 * mask: see mask.h. The values live in one array sorted by length, longest
 * first (re-sorted on each add: secrets are few and added once per build).
 */
#include "build/mask.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

typedef struct {
    char *text; /* a value to mask */
    size_t len; /* its length */
} secret;

struct pier_mask {
    secret *items;  /* values, longest first */
    size_t count;   /* their number */
    size_t longest; /* the longest length */
};

pier_mask *pier_mask_new(void)
{
    return pier_calloc(1, sizeof(pier_mask));
}

void pier_mask_free(pier_mask *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++) {
        memset(m->items[i].text, 0, m->items[i].len);
        free(m->items[i].text);
    }
    free(m->items);
    free(m);
}

static int cmp_secret(const void *a, const void *b)
{
    const secret *x = a, *y = b;
    return x->len < y->len ? 1 : x->len > y->len ? -1 : strcmp(x->text, y->text);
}

static void add_one(pier_mask *m, const char *s, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = 0; i < m->count; i++)
        if (m->items[i].len == n && memcmp(m->items[i].text, s, n) == 0)
            return;
    m->items = pier_realloc(m->items, (m->count + 1) * sizeof *m->items);
    m->items[m->count].text = pier_strndup(s, n);
    m->items[m->count].len = n;
    m->count++;
    if (n > m->longest)
        m->longest = n;
    qsort(m->items, m->count, sizeof *m->items, cmp_secret);
}

void pier_mask_add(pier_mask *m, const char *value)
{
    if (!value)
        return;
    add_one(m, value, strlen(value));
    const char *s = value;
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        if (n && s[n - 1] == '\r')
            add_one(m, s, n - 1);
        add_one(m, s, n);
        s += n + (nl ? 1 : 0);
    }
}

size_t pier_mask_longest(const pier_mask *m)
{
    return m ? m->longest : 0;
}

static bool key_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* An AWS access key id (AKIA/ASIA + 16) standing alone at s[i]. */
static bool access_key_at(const char *s, size_t n, size_t i)
{
    if (n - i < 20 || (i > 0 && key_char(s[i - 1])))
        return false;
    if (memcmp(s + i, "AKIA", 4) != 0 && memcmp(s + i, "ASIA", 4) != 0)
        return false;
    for (size_t k = 4; k < 20; k++)
        if (!key_char(s[i + k]))
            return false;
    return i + 20 == n || !key_char(s[i + 20]);
}

void pier_mask_apply(const pier_mask *m, const char *s, size_t n, pier_buf *out)
{
    size_t i = 0, plain = 0; /* s[plain..i) is unmasked text not yet copied */
    size_t count = m ? m->count : 0;
    while (i < n) {
        size_t hit = 0;
        for (size_t k = 0; k < count; k++) {
            const secret *sec = &m->items[k];
            if (sec->len <= n - i && s[i] == sec->text[0] &&
                memcmp(s + i, sec->text, sec->len) == 0) {
                hit = sec->len;
                break;
            }
        }
        if (!hit && s[i] == 'A' && access_key_at(s, n, i))
            hit = 20;
        if (hit) {
            pier_buf_put(out, s + plain, i - plain);
            pier_buf_puts(out, "***");
            i += hit;
            plain = i;
        } else {
            i++;
        }
    }
    pier_buf_put(out, s + plain, n - plain);
}

void pier_mask_buf(const pier_mask *m, pier_buf *text)
{
    if (!text->ptr)
        return;
    pier_buf out;
    pier_buf_init(&out, text->max + text->max / 2);
    pier_mask_apply(m, text->ptr, text->len, &out);
    pier_buf_reset(text);
    pier_buf_put(text, pier_buf_cstr(&out), out.len <= text->max ? out.len : text->max);
    pier_buf_free(&out);
}

char *pier_mask_dup(const pier_mask *m, const char *s)
{
    pier_buf b;
    pier_buf_init(&b, PIER_BUF_MAX_DEFAULT);
    pier_mask_apply(m, s, strlen(s), &b);
    return pier_buf_detach(&b);
}
