/*
 * json: pier's JSON, on jansson. This header is the one place that includes
 * <jansson.h>; the rest of pier includes "base/json.h" and uses jansson's
 * json_t API directly (it is well documented and reference counted: a
 * json_t * returned by json_object_get() is borrowed, one returned by
 * json_pack()/json_loads() is owned and released with json_decref()).
 *
 * The helpers below cover what jansson lacks: errors in pier's convention,
 * typed getters with defaults, and writing into a pier_buf.
 */
#ifndef PIER_JSON_H
#define PIER_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"

/* Parses text (len bytes) into *out (owned). On failure the error names
 * `what` (a file name or a URL) with jansson's line and column. */
int pier_json_parse(json_t **out, const char *text, size_t len, const char *what);
/* Reads and parses a file (capped at 64 MiB). */
int pier_json_load_file(json_t **out, const char *path);
/* The string member `key` of obj, or def when missing or not a string. */
const char *pier_json_str(const json_t *obj, const char *key, const char *def);
/* The integer member `key`, or def. */
int64_t pier_json_int(const json_t *obj, const char *key, int64_t def);
bool pier_json_bool(const json_t *obj, const char *key, bool def);
/* Appends the compact (or indented) serialization of v to out. */
int pier_json_write(pier_buf *out, const json_t *v, bool pretty);

#endif
