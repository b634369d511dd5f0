/*
 * s3sigv2: see s3sigv2.h. The rules are those of S3's REST authentication
 * documentation: x-amz-* headers lower-cased, sorted, values trimmed and
 * folded, repeated names joined with ','; the resource followed by the
 * sub-resources that S3 signs, sorted by name, with decoded values.
 * Cost: linear in the headers and query.
 */
#include "stack/s3sigv2.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"

/* The query parameters S3 includes in the canonical resource, sorted. */
static const char *const subresources[] = {
    "acl",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
};

typedef struct {
    char *name;  /* lower-case */
    char *value; /* trimmed, folded */
} kv;

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const kv *)a)->name, ((const kv *)b)->name);
}

static char *fold(const char *v)
{
    pier_buf b = PIER_BUF_INIT;
    bool space = false;
    for (const char *p = v; *p; p++) {
        if (*p == ' ' || *p == '\t') {
            space = b.len > 0;
            continue;
        }
        if (space)
            pier_buf_putc(&b, ' ');
        space = false;
        pier_buf_putc(&b, *p);
    }
    return pier_buf_detach(&b);
}

static void amz_headers(pier_buf *out, const pier_http_headers *h)
{
    kv *items = pier_calloc(h->count + 1, sizeof *items);
    size_t n = 0;
    for (size_t i = 0; i < h->count; i++) {
        if (strncasecmp(h->items[i].name, "x-amz-", 6) != 0)
            continue;
        char *name = pier_strdup(h->items[i].name);
        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        char *value = fold(h->items[i].value);
        size_t j = 0;
        while (j < n && strcmp(items[j].name, name) != 0)
            j++;
        if (j < n) {
            pier_buf joined = PIER_BUF_INIT;
            pier_buf_printf(&joined, "%s,%s", items[j].value, value);
            free(items[j].value);
            items[j].value = pier_buf_detach(&joined);
            free(name);
            free(value);
            continue;
        }
        items[n].name = name;
        items[n].value = value;
        n++;
    }
    qsort(items, n, sizeof *items, cmp_kv);
    for (size_t i = 0; i < n; i++) {
        pier_buf_printf(out, "%s:%s\n", items[i].name, items[i].value);
        free(items[i].name);
        free(items[i].value);
    }
    free(items);
}

static void sub_resources(pier_buf *out, const char *query)
{
    size_t count = sizeof subresources / sizeof *subresources;
    char **values = pier_calloc(count, sizeof *values);
    const char *p = query ? query : "";
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nl = eq ? (size_t)(eq - p) : len;
        for (size_t i = 0; i < count; i++) {
            if (strlen(subresources[i]) != nl || strncmp(subresources[i], p, nl) != 0 || values[i])
                continue;
            pier_buf v = PIER_BUF_INIT;
            if (eq) {
                pier_buf_putc(&v, '=');
                pier_uri_decode(&v, eq + 1, len - nl - 1, true);
            }
            values[i] = pier_buf_detach(&v);
        }
        p += len + (amp ? 1 : 0);
    }
    char sep = '?';
    for (size_t i = 0; i < count; i++) {
        if (!values[i])
            continue;
        pier_buf_printf(out, "%c%s%s", sep, subresources[i], values[i]);
        sep = '&';
        free(values[i]);
    }
    free(values);
}

int pier_s3sigv2_string_to_sign(pier_buf *out, const char *method, const char *resource,
                                const char *query, const pier_http_headers *headers,
                                const char *date_or_expires)
{
    const char *md5 = pier_http_headers_get(headers, "Content-MD5");
    const char *type = pier_http_headers_get(headers, "Content-Type");
    pier_buf_printf(out, "%s\n%s\n%s\n%s\n", method, md5 ? md5 : "", type ? type : "",
                    date_or_expires ? date_or_expires : "");
    amz_headers(out, headers);
    pier_buf_puts(out, resource && resource[0] ? resource : "/");
    sub_resources(out, query);
    return 0;
}

void pier_s3sigv2_sign(char sig[32], const char *secret, const char *sts, size_t sts_len)
{
    unsigned char mac[PIER_SHA1_LEN];
    pier_hmac_sha1(mac, secret, strlen(secret), sts, sts_len);
    pier_buf b = PIER_BUF_INIT;
    pier_base64_encode(&b, mac, sizeof mac);
    snprintf(sig, 32, "%s", pier_buf_cstr(&b));
    pier_buf_free(&b);
}
