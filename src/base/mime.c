/*
 * mime: see mime.h. The file format is "type ext1 ext2 ..." per line, '#'
 * comments. When an extension is listed twice the first line wins, as in
 * nginx and Apache.
 */
#include "base/mime.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"

#define DEFAULT_TYPE "application/octet-stream"

typedef struct {
    char *ext;  /* lowercase extension without the dot; NULL = empty slot */
    char *type; /* its media type */
} mime_slot;

static mime_slot *table;  /* open addressing, power-of-two size */
static size_t table_size; /* slots */
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t hash_ext(const char *s)
{
    size_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)tolower((unsigned char)*s);
    return h;
}

static void table_put(const char *ext, const char *type)
{
    size_t i = hash_ext(ext) & (table_size - 1);
    while (table[i].ext) {
        if (strcmp(table[i].ext, ext) == 0)
            return; /* first definition wins */
        i = (i + 1) & (table_size - 1);
    }
    table[i].ext = pier_strdup(ext);
    table[i].type = pier_strdup(type);
}

static void table_clear(void)
{
    for (size_t i = 0; i < table_size; i++) {
        free(table[i].ext);
        free(table[i].type);
    }
    free(table);
    table = NULL;
    table_size = 0;
}

static int load_file(const char *path)
{
    pier_buf text = PIER_BUF_INIT;
    pier_buf_init(&text, 16 << 20);
    int rc = pier_file_read(path, &text);
    if (rc) {
        pier_buf_free(&text);
        return rc;
    }
    table_clear();
    table_size = 4096;
    table = pier_calloc(table_size, sizeof *table);
    char *save = NULL;
    for (char *line = strtok_r(text.ptr ? text.ptr : (char *)"", "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save2 = NULL;
        char *type = strtok_r(line, " \t\r", &save2);
        if (!type)
            continue;
        for (char *ext = strtok_r(NULL, " \t\r", &save2); ext;
             ext = strtok_r(NULL, " \t\r", &save2)) {
            for (char *c = ext; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            table_put(ext, type);
        }
    }
    pier_buf_free(&text);
    return 0;
}

static void load_default(void)
{
    const char *path = getenv("PIER_MIME_TYPES");
    if (!path || !path[0])
        path = "/etc/mime.types";
    pthread_mutex_lock(&load_lock);
    if (load_file(path) != 0)
        PIER_WARN("cannot read %s (%s); every file will be %s. Install Debian's media-types "
                  "package.",
                  path, pier_error_last(), DEFAULT_TYPE);
    pthread_mutex_unlock(&load_lock);
}

int pier_mime_load(const char *path)
{
    pthread_once(&load_once, load_default);
    pthread_mutex_lock(&load_lock);
    int rc = load_file(path);
    pthread_mutex_unlock(&load_lock);
    return rc;
}

const char *pier_mime_type(const char *path)
{
    pthread_once(&load_once, load_default);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || !dot[1] || !table_size)
        return DEFAULT_TYPE;
    char ext[64];
    size_t n = strlen(dot + 1);
    if (n >= sizeof ext)
        return DEFAULT_TYPE;
    for (size_t i = 0; i <= n; i++)
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    size_t i = hash_ext(ext) & (table_size - 1);
    while (table[i].ext) {
        if (strcmp(table[i].ext, ext) == 0)
            return table[i].type;
        i = (i + 1) & (table_size - 1);
    }
    return DEFAULT_TYPE;
}

bool pier_mime_is_text(const char *type)
{
    static const char *text_types[] = {
        "application/json",         "application/javascript", "application/xml",
        "application/xhtml+xml",    "image/svg+xml",          "application/manifest+json",
        "application/ld+json",      "application/rss+xml",    "application/atom+xml",
        "application/x-javascript", "application/ecmascript", "application/geo+json",
        "application/x-sh",         "application/toml",       "application/yaml",
    };
    if (strncmp(type, "text/", 5) == 0)
        return true;
    for (size_t i = 0; i < sizeof text_types / sizeof *text_types; i++)
        if (strcmp(type, text_types[i]) == 0)
            return true;
    return false;
}

void pier_mime_content_type(char *out, size_t size, const char *path)
{
    const char *type = pier_mime_type(path);
    snprintf(out, size, pier_mime_is_text(type) ? "%s; charset=utf-8" : "%s", type);
}
