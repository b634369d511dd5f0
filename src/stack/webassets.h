/*
 * webassets: the dashboard's files (web/ in the source tree), compiled
 * into the binary by scripts/embed-web.cmake at build time, so `pier up`
 * serves them with nothing installed. The table is generated; this module
 * only looks paths up (a linear scan: a handful of files).
 */
#ifndef PIER_WEBASSETS_H
#define PIER_WEBASSETS_H

#include <stddef.h>

typedef struct {
    const char *path;          /* URL path: "/index.html" */
    const char *content_type;  /* its Content-Type */
    const char *etag;          /* a strong ETag, quoted */
    const unsigned char *data; /* the bytes */
    size_t size;               /* their number */
} pier_webasset;

/* Every asset, ended by an entry whose path is NULL (generated). */
extern const pier_webasset pier_webassets[];

/* The asset at path ("/" is "/index.html"), or NULL. Borrowed (static). */
const pier_webasset *pier_webassets_find(const char *path, size_t len);

#endif
