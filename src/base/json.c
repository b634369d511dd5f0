/*
 * json: see json.h.
 */
#include "base/json.h"

#include <stdlib.h>

#include "base/error.h"
#include "base/file.h"

int pier_json_parse(json_t **out, const char *text, size_t len, const char *what)
{
    json_error_t err;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!*out)
        return pier_error_set(PIER_EINVALID, "%s:%d:%d: invalid JSON: %s", what, err.line,
                              err.column, err.text);
    return 0;
}

int pier_json_load_file(json_t **out, const char *path)
{
    pier_buf b;
    pier_buf_init(&b, 64 << 20);
    int rc = pier_file_read(path, &b);
    if (rc == 0)
        rc = pier_json_parse(out, pier_buf_cstr(&b), b.len, path);
    pier_buf_free(&b);
    return rc;
}

const char *pier_json_str(const json_t *obj, const char *key, const char *def)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : def;
}

int64_t pier_json_int(const json_t *obj, const char *key, int64_t def)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

bool pier_json_bool(const json_t *obj, const char *key, bool def)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return pier_buf_put(data, buffer, size) == 0 ? 0 : -1;
}

int pier_json_write(pier_buf *out, const json_t *v, bool pretty)
{
    size_t flags = JSON_ENCODE_ANY | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
    if (json_dump_callback(v, dump_cb, out, flags) != 0)
        return pier_error_set(PIER_ETOOBIG, "JSON output exceeds %zu bytes", out->max);
    return 0;
}
