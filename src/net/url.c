/*
 * url: see url.h.
 *
 * pier_url_parse keeps the path as given (CURLU_PATH_AS_IS): an S3 key may
 * hold "." or ".." segments that must reach the server unchanged. Each call
 * allocates one CURLU handle and the returned strings; nothing is cached.
 */
#include "net/url.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"

void pier_url_free(pier_url *u)
{
    if (!u)
        return;
    PIER_FREE(u->scheme);
    PIER_FREE(u->host);
    PIER_FREE(u->path);
    PIER_FREE(u->query);
    u->port = 0;
}

/* One part of a parsed URL as a pier-owned string; NULL when absent. */
static char *url_part(CURLU *h, CURLUPart part)
{
    char *v = NULL;
    if (curl_url_get(h, part, &v, 0) != CURLUE_OK || !v)
        return NULL;
    char *copy = pier_strdup(v);
    curl_free(v);
    return copy;
}

int pier_url_parse(pier_url *out, const char *url)
{
    int rc = 0;
    char *user = NULL, *port = NULL;
    memset(out, 0, sizeof *out);
    CURLU *h = curl_url();
    if (!h)
        return pier_error_set(PIER_ERR, "out of memory parsing a URL");

    /* PATH_AS_IS: an S3 key may hold "..", which must reach the server. */
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, url ? url : "", CURLU_PATH_AS_IS);
    if (uc != CURLUE_OK) {
        rc = pier_error_set(PIER_EINVALID, "invalid URL '%s': %s", url ? url : "",
                            curl_url_strerror(uc));
        goto done;
    }
    out->scheme = url_part(h, CURLUPART_SCHEME);
    for (char *p = out->scheme; p && *p; p++)
        *p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    if (!out->scheme || (strcmp(out->scheme, "http") != 0 && strcmp(out->scheme, "https") != 0)) {
        rc = pier_error_set(PIER_EINVALID, "URL '%s' is not http:// or https://", url);
        goto done;
    }
    user = url_part(h, CURLUPART_USER);
    if (user) {
        /* Not echoed: the URL holds a credential. */
        rc = pier_error_set(PIER_EINVALID, "a URL with user:password@ is not supported");
        goto done;
    }
    out->host = url_part(h, CURLUPART_HOST);
    if (!out->host || !out->host[0]) {
        rc = pier_error_set(PIER_EINVALID, "URL '%s' has no host", url);
        goto done;
    }
    size_t hl = strlen(out->host);
    if (out->host[0] == '[' && hl >= 2 && out->host[hl - 1] == ']') {
        memmove(out->host, out->host + 1, hl - 2);
        out->host[hl - 2] = '\0';
    }
    port = url_part(h, CURLUPART_PORT);
    if (port) {
        uint64_t v = 0;
        if (pier_parse_u64(port, &v) < 0 || v == 0 || v > 65535) {
            rc = pier_error_set(PIER_EINVALID, "URL '%s' has a bad port", url);
            goto done;
        }
        out->port = (int)v;
    }
    out->path = url_part(h, CURLUPART_PATH);
    if (!out->path || !out->path[0]) {
        free(out->path);
        out->path = pier_strdup("/");
    }
    out->query = url_part(h, CURLUPART_QUERY);
done:
    if (rc < 0)
        pier_url_free(out);
    free(user);
    free(port);
    curl_url_cleanup(h);
    return rc;
}

bool pier_host_is_loopback(const char *host)
{
    if (!host)
        return false;
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    /* libcurl (7.85+) answers localhost and *.localhost itself, never DNS. */
    if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
        return true;
    if (n > 10 && strncasecmp(host + n - 10, ".localhost", 10) == 0)
        return true;

    char buf[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, host, n);
    buf[n] = '\0';
    struct in_addr a4;
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        if (IN6_IS_ADDR_LOOPBACK(&a6))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
    }
    return false;
}
