/*
 * webassets: lookup in the generated table (see webassets.h).
 */
#include "stack/webassets.h"

#include <string.h>

const pier_webasset *pier_webassets_find(const char *path, size_t len)
{
    if (len == 1 && path[0] == '/') {
        path = "/index.html";
        len = strlen(path);
    }
    for (const pier_webasset *a = pier_webassets; a->path; a++)
        if (strlen(a->path) == len && memcmp(a->path, path, len) == 0)
            return a;
    return NULL;
}
