/*
 * mime: Content-Type by file name, from the system's mime.types (Debian's
 * media-types package installs /etc/mime.types), not from a table of our
 * own. PIER_MIME_TYPES overrides the path (for tests).
 *
 * Loaded once, on first use, into a hash table of extension -> type;
 * lookups are O(1) and thread-safe after that.
 */
#ifndef PIER_MIME_H
#define PIER_MIME_H

#include <stdbool.h>
#include <stddef.h>

/* The type for a path by its last extension (case-insensitive), or
 * "application/octet-stream". Borrowed, valid for the process's life. */
const char *pier_mime_type(const char *path);
/* True for types a browser decodes as text (text/ *, JSON, JavaScript,
 * XML, SVG, manifest...): these get "; charset=utf-8". */
bool pier_mime_is_text(const char *type);
/* The Content-Type header value: the type, plus "; charset=utf-8" for text.
 * Writes into out (size bytes). */
void pier_mime_content_type(char *out, size_t size, const char *path);
/* Loads from a specific file (replacing what was loaded); for tests. */
int pier_mime_load(const char *path);

#endif
