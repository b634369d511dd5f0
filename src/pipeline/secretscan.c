/*
 * secretscan: the needle variants of each secret and one Aho-Corasick
 * automaton over all of them (see secretscan.h).
 *
 * The trie keeps children as sibling lists (most nodes have one child: the
 * needles share few prefixes), except the root, which has a 256-entry table
 * since every byte of the input passes through it. Failure links are
 * computed breadth-first; each node also keeps the nearest node on its
 * failure chain that ends a needle (out_link), so a match is seen at the
 * byte where it ends even when it is a suffix of a longer partial match.
 * Transitions are computed on the fly by following failure links: amortised
 * O(1) per input byte. Memory: about 24 bytes per needle byte.
 */
#include "pipeline/secretscan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"

#define CHUNK ((size_t)64 << 10)

typedef struct {
    int32_t child;    /* first child node, or -1 */
    int32_t sibling;  /* next sibling, or -1 */
    int32_t fail;     /* failure link */
    int32_t out;      /* needle that ends here, or -1 */
    int32_t out_link; /* nearest node on the failure chain with out >= 0, or -1 */
    unsigned char c;  /* the byte on the edge from the parent */
} node;

typedef struct {
    char *bytes;          /* the needle (owned) */
    size_t len;           /* its length */
    size_t secret;        /* index into names */
    const char *encoding; /* static label */
} needle;

struct pier_secretscan {
    node *nodes;         /* the trie; nodes[0] is the root */
    size_t node_count;   /* nodes in use */
    size_t node_cap;     /* nodes allocated */
    int32_t root[256];   /* the root's transitions (0 = stay at the root) */
    needle *needles;     /* every variant of every scanned secret */
    size_t needle_count; /* their number */
    char **names;        /* names of the scanned secrets (owned) */
    size_t name_count;   /* their number */
};

/* ---- needle variants ---- */

static void add_needle(pier_secretscan *s, size_t secret, const char *enc, const char *p, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = 0; i < s->needle_count; i++)
        if (s->needles[i].len == n && memcmp(s->needles[i].bytes, p, n) == 0)
            return;
    s->needles = pier_realloc(s->needles, (s->needle_count + 1) * sizeof *s->needles);
    needle *nd = &s->needles[s->needle_count++];
    nd->bytes = pier_malloc(n);
    memcpy(nd->bytes, p, n);
    nd->len = n;
    nd->secret = secret;
    nd->encoding = enc;
}

static void add_buf(pier_secretscan *s, size_t secret, const char *enc, pier_buf *b)
{
    add_needle(s, secret, enc, b->ptr, b->len);
    pier_buf_reset(b);
}

enum { JSON_SLASH = 1, JSON_ASCII = 2 };

/* Decodes one UTF-8 sequence at p (n bytes left) into *cp; returns its
 * length, or 0 when it is not valid UTF-8. */
static size_t utf8_next(const unsigned char *p, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t v;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    } else if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        v = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        v = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        v = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    *cp = v;
    return len;
}

/* The value as the body of a JSON string; false when the ASCII form is
 * asked for and the value is not UTF-8. */
static bool json_escape(pier_buf *out, const char *v, size_t n, int flags)
{
    const unsigned char *p = (const unsigned char *)v;
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c == '"')
            pier_buf_puts(out, "\\\"");
        else if (c == '\\')
            pier_buf_puts(out, "\\\\");
        else if (c == '/' && (flags & JSON_SLASH))
            pier_buf_puts(out, "\\/");
        else if (c == '\b')
            pier_buf_puts(out, "\\b");
        else if (c == '\f')
            pier_buf_puts(out, "\\f");
        else if (c == '\n')
            pier_buf_puts(out, "\\n");
        else if (c == '\r')
            pier_buf_puts(out, "\\r");
        else if (c == '\t')
            pier_buf_puts(out, "\\t");
        else if (c < 0x20 || c == 0x7f)
            pier_buf_printf(out, "\\u%04x", c);
        else if ((flags & JSON_ASCII) && strchr("<>&'=", c))
            pier_buf_printf(out, "\\u%04x", c);
        else if ((flags & JSON_ASCII) && c >= 0x80) {
            uint32_t cp;
            size_t len = utf8_next(p + i, n - i, &cp);
            if (len == 0)
                return false;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                pier_buf_printf(out, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
            } else {
                pier_buf_printf(out, "\\u%04x", cp);
            }
            i += len;
            continue;
        } else
            pier_buf_putc(out, (char)c);
        i++;
    }
    return true;
}

/* The characters of base64(k zero bytes + value) that depend on the value
 * alone: from ceil(8k/6) to floor(8(k+n)/6). */
static void base64_shifted(pier_buf *out, const char *v, size_t n, unsigned k, bool url)
{
    pier_buf in = PIER_BUF_INIT, enc = PIER_BUF_INIT;
    static const char zeros[2] = {0, 0};
    pier_buf_put(&in, zeros, k);
    pier_buf_put(&in, v, n);
    pier_base64_encode(&enc, in.ptr, in.len);
    size_t start = (8 * k + 5) / 6, end = (8 * (k + n)) / 6;
    if (end > enc.len)
        end = enc.len;
    for (size_t i = start; i < end; i++) {
        char c = enc.ptr[i];
        if (url && c == '+')
            c = '-';
        else if (url && c == '/')
            c = '_';
        pier_buf_putc(out, c);
    }
    pier_buf_free(&in);
    pier_buf_free(&enc);
}

enum { URL_UPPER = 1, URL_PLUS = 2, URL_COMPONENT = 4 };

static void url_encode(pier_buf *out, const char *v, size_t n, int flags)
{
    const char *hex = (flags & URL_UPPER) ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '~';
        if ((flags & URL_COMPONENT) && strchr("!'()*", c) && c)
            keep = true;
        if (keep)
            pier_buf_putc(out, (char)c);
        else if (c == ' ' && (flags & URL_PLUS))
            pier_buf_putc(out, '+');
        else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            pier_buf_put(out, e, 3);
        }
    }
}

static void hex_encode(pier_buf *out, const char *v, size_t n, bool upper)
{
    const char *hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        char e[2] = {hex[c >> 4], hex[c & 15]};
        pier_buf_put(out, e, 2);
    }
}

static void add_variants(pier_secretscan *s, size_t secret, const char *v)
{
    size_t n = strlen(v);
    pier_buf b = PIER_BUF_INIT;
    add_needle(s, secret, "plain", v, n);
    static const int json_flags[] = {0, JSON_SLASH, JSON_ASCII, JSON_ASCII | JSON_SLASH};
    for (size_t i = 0; i < sizeof json_flags / sizeof *json_flags; i++) {
        if (json_escape(&b, v, n, json_flags[i]))
            add_buf(s, secret, "JSON-escaped", &b);
        pier_buf_reset(&b);
    }
    for (unsigned k = 0; k < 3; k++) {
        base64_shifted(&b, v, n, k, false);
        add_buf(s, secret, "base64", &b);
        base64_shifted(&b, v, n, k, true);
        add_buf(s, secret, "base64url", &b);
    }
    for (int f = 0; f < 8; f++) {
        url_encode(&b, v, n, f);
        add_buf(s, secret, "URL-encoded", &b);
    }
    hex_encode(&b, v, n, false);
    add_buf(s, secret, "hex", &b);
    hex_encode(&b, v, n, true);
    add_buf(s, secret, "hex", &b);
    pier_buf_free(&b);
}

/* ---- the automaton ---- */

static int32_t new_node(pier_secretscan *s, unsigned char c)
{
    if (s->node_count == s->node_cap) {
        s->node_cap = s->node_cap ? s->node_cap * 2 : 256;
        s->nodes = pier_realloc(s->nodes, s->node_cap * sizeof *s->nodes);
    }
    node *nd = &s->nodes[s->node_count];
    nd->child = nd->sibling = -1;
    nd->fail = 0;
    nd->out = nd->out_link = -1;
    nd->c = c;
    return (int32_t)s->node_count++;
}

static int32_t find_child(const pier_secretscan *s, int32_t at, unsigned char c)
{
    if (at == 0)
        return s->root[c] ? s->root[c] : -1;
    for (int32_t ch = s->nodes[at].child; ch >= 0; ch = s->nodes[ch].sibling)
        if (s->nodes[ch].c == c)
            return ch;
    return -1;
}

static void insert(pier_secretscan *s, size_t idx)
{
    const needle *nd = &s->needles[idx];
    int32_t at = 0;
    for (size_t i = 0; i < nd->len; i++) {
        unsigned char c = (unsigned char)nd->bytes[i];
        int32_t next = find_child(s, at, c);
        if (next < 0) {
            next = new_node(s, c);
            if (at == 0) {
                s->root[c] = next;
            } else {
                s->nodes[next].sibling = s->nodes[at].child;
                s->nodes[at].child = next;
            }
        }
        at = next;
    }
    if (s->nodes[at].out < 0)
        s->nodes[at].out = (int32_t)idx;
}

/* The state after reading c in state at. */
static int32_t step(const pier_secretscan *s, int32_t at, unsigned char c)
{
    for (;;) {
        int32_t next = find_child(s, at, c);
        if (next >= 0)
            return next;
        if (at == 0)
            return 0;
        at = s->nodes[at].fail;
    }
}

static void build_links(pier_secretscan *s)
{
    int32_t *queue = pier_malloc((s->node_count + 1) * sizeof *queue);
    size_t head = 0, tail = 0;
    for (int c = 0; c < 256; c++)
        if (s->root[c]) {
            s->nodes[s->root[c]].fail = 0;
            queue[tail++] = s->root[c];
        }
    while (head < tail) {
        int32_t at = queue[head++];
        for (int32_t ch = s->nodes[at].child; ch >= 0; ch = s->nodes[ch].sibling) {
            int32_t f = step(s, s->nodes[at].fail, s->nodes[ch].c);
            s->nodes[ch].fail = f;
            s->nodes[ch].out_link = s->nodes[f].out >= 0 ? f : s->nodes[f].out_link;
            queue[tail++] = ch;
        }
    }
    free(queue);
}

static void warn(pier_secretscan_warn_fn fn, void *ctx, const char *msg)
{
    if (fn)
        fn(ctx, msg);
    else
        PIER_WARN("%s", msg);
}

void pier_secretscan_new(pier_secretscan **out, const pier_secretscan_secret *secrets, size_t n,
                         pier_secretscan_warn_fn warn_fn, void *warn_ctx)
{
    pier_secretscan *s = pier_calloc(1, sizeof *s);
    new_node(s, 0);
    char msg[512];
    for (size_t i = 0; i < n; i++) {
        const char *name = secrets[i].name ? secrets[i].name : "(unnamed)";
        const char *v = secrets[i].value ? secrets[i].value : "";
        if (secrets[i].allowed) {
            snprintf(msg, sizeof msg,
                     "secret %s is listed under build.secrets-allowed-in-artifacts: artifacts are "
                     "not checked for its value",
                     name);
            warn(warn_fn, warn_ctx, msg);
            continue;
        }
        if (strlen(v) < PIER_SECRETSCAN_MIN_LEN) {
            snprintf(msg, sizeof msg,
                     "secret %s is shorter than %d characters: artifacts are not checked for its "
                     "value (it would match everywhere)",
                     name, PIER_SECRETSCAN_MIN_LEN);
            warn(warn_fn, warn_ctx, msg);
            continue;
        }
        s->names = pier_realloc(s->names, (s->name_count + 1) * sizeof *s->names);
        s->names[s->name_count] = pier_strdup(name);
        add_variants(s, s->name_count, v);
        s->name_count++;
    }
    for (size_t i = 0; i < s->needle_count; i++)
        insert(s, i);
    build_links(s);
    *out = s;
}

void pier_secretscan_free(pier_secretscan *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->needle_count; i++) {
        /* Needles hold secret material: wipe before freeing. */
        memset(s->needles[i].bytes, 0, s->needles[i].len);
        free(s->needles[i].bytes);
    }
    free(s->needles);
    for (size_t i = 0; i < s->name_count; i++)
        free(s->names[i]);
    free(s->names);
    if (s->nodes)
        memset(s->nodes, 0, s->node_count * sizeof *s->nodes);
    free(s->nodes);
    free(s);
}

size_t pier_secretscan_secret_count(const pier_secretscan *s)
{
    return s->name_count;
}

size_t pier_secretscan_needle_count(const pier_secretscan *s)
{
    return s->needle_count;
}

/* Feeds data from state *at; returns the needle that matched first, or -1.
 * *consumed is how many bytes were read up to the match's end. */
static int32_t feed(const pier_secretscan *s, int32_t *at, const unsigned char *p, size_t n,
                    size_t *consumed)
{
    int32_t st = *at;
    for (size_t i = 0; i < n; i++) {
        st = step(s, st, p[i]);
        int32_t o = s->nodes[st].out >= 0 ? st : s->nodes[st].out_link;
        if (o >= 0) {
            *at = st;
            *consumed = i + 1;
            return s->nodes[o].out;
        }
    }
    *at = st;
    *consumed = n;
    return -1;
}

static void fill_hit(const pier_secretscan *s, int32_t idx, unsigned long long offset,
                     pier_secretscan_hit *hit)
{
    if (!hit)
        return;
    hit->secret = s->names[s->needles[idx].secret];
    hit->encoding = s->needles[idx].encoding;
    hit->offset = offset;
}

int pier_secretscan_buffer(const pier_secretscan *s, const void *data, size_t len,
                           pier_secretscan_hit *hit)
{
    if (s->needle_count == 0)
        return 0;
    int32_t at = 0;
    size_t used;
    int32_t idx = feed(s, &at, data, len, &used);
    if (idx < 0)
        return 0;
    fill_hit(s, idx, used, hit);
    return 1;
}

int pier_secretscan_file(const pier_secretscan *s, const char *path, const char *rel,
                         pier_secretscan_hit *hit)
{
    int rc = 0, fd = -1;
    unsigned char *chunk = NULL;
    if (s->needle_count == 0)
        return 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = pier_error_set_errno(errno == ENOENT ? PIER_ENOTFOUND : PIER_EIO,
                                  "secret scan: cannot open artifact %s", rel);
        goto done;
    }
    chunk = pier_malloc(CHUNK);
    int32_t at = 0;
    unsigned long long offset = 0;
    for (;;) {
        ssize_t got = read(fd, chunk, CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = pier_error_set_errno(PIER_EIO, "secret scan: cannot read artifact %s", rel);
            goto done;
        }
        if (got == 0)
            break;
        size_t used;
        int32_t idx = feed(s, &at, chunk, (size_t)got, &used);
        if (idx >= 0) {
            const char *name = s->names[s->needles[idx].secret];
            fill_hit(s, idx, offset + used, hit);
            if (hit) {
                free(hit->file);
                hit->file = pier_strdup(rel);
            }
            rc = pier_error_set(PIER_EINVALID,
                                "artifact %s contains the value of secret %s (%s): refusing to "
                                "deploy; if this is intended, list %s under "
                                "build.secrets-allowed-in-artifacts",
                                rel, name, s->needles[idx].encoding, name);
            goto done;
        }
        offset += (size_t)got;
    }
done:
    if (fd >= 0)
        close(fd);
    free(chunk);
    return rc;
}

typedef struct {
    const pier_secretscan *s;
    pier_secretscan_hit *hit;
} walk_ctx;

static int walk_one(const pier_file_entry *e, void *ctx)
{
    walk_ctx *w = ctx;
    return pier_secretscan_file(w->s, e->path, e->rel, w->hit);
}

int pier_secretscan_dir(const pier_secretscan *s, const char *root, pier_secretscan_hit *hit)
{
    if (s->needle_count == 0)
        return 0;
    walk_ctx w = {s, hit};
    return pier_file_walk(root, walk_one, &w);
}

void pier_secretscan_hit_clear(pier_secretscan_hit *hit)
{
    if (!hit)
        return;
    free(hit->file);
    memset(hit, 0, sizeof *hit);
}
