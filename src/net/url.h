/*
 * url: absolute http(s) URLs split into parts, and the loopback test that
 * decides where plain http:// is allowed.
 *
 * Parsing uses libcurl's own URL parser, so what pier checks (the scheme and
 * host of a request) is exactly what libcurl will connect to; no second
 * parser can disagree with it about a crafted URL.
 */
#ifndef PIER_URL_H
#define PIER_URL_H

#include <stdbool.h>

/* Splits an absolute URL with libcurl's own parser (so pier checks exactly
 * what libcurl will connect to). Outputs are malloc'ed (NULL when absent):
 * scheme ("http"/"https", lowercase), host (no brackets for IPv6), port (0
 * when not given), path (at least "/", still encoded, dot segments kept),
 * query (without '?'; "" for a bare '?'). A fragment and an IPv6 zone are
 * dropped; a numeric IPv4 host is normalised as libcurl does (127.1 is
 * 127.0.0.1). PIER_EINVALID for anything else (spaces, bad ports, port 0),
 * for other schemes and for user:password@ in the URL; *out is then all
 * NULL. */
typedef struct {
    char *scheme; /* "http" or "https" */
    char *host;   /* name or address, IPv6 without brackets */
    int port;     /* 0 when the URL gives none */
    char *path;   /* "/" at least, still percent-encoded */
    char *query;  /* after '?', or NULL when there is no '?' */
} pier_url;

int pier_url_parse(pier_url *out, const char *url);
void pier_url_free(pier_url *u);
/* True for localhost, 127.0.0.0/8, ::1. */
bool pier_host_is_loopback(const char *host);

#endif
