/*
 * yaml: libyaml's document API loaded into pier's own tree. See yaml.h.
 *
 * libyaml's yaml_document_t already holds nodes with marks and resolves
 * aliases to node ids; we translate it node by node (by id, so an alias
 * becomes a shared pointer) and then drop libyaml's document.
 */
#include "base/yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/str.h"

struct pier_yaml_doc {
    char *name;            /* file name for messages */
    pier_yaml_node *root;  /* NULL for an empty document */
    pier_yaml_node *nodes; /* all nodes, indexed by libyaml id - 1 */
    size_t node_count;     /* their number */
    char **strings;        /* every scalar's text, to free */
};

static int convert(pier_yaml_doc *doc, yaml_document_t *ydoc)
{
    size_t n = (size_t)(ydoc->nodes.top - ydoc->nodes.start);
    doc->nodes = pier_calloc(n ? n : 1, sizeof *doc->nodes);
    doc->strings = pier_calloc(n ? n : 1, sizeof *doc->strings);
    doc->node_count = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *y = &ydoc->nodes.start[i];
        pier_yaml_node *p = &doc->nodes[i];
        p->line = y->start_mark.line + 1;
        p->column = y->start_mark.column + 1;
        switch (y->type) {
        case YAML_SCALAR_NODE:
            p->kind = PIER_YAML_SCALAR;
            doc->strings[i] =
                pier_strndup((const char *)y->data.scalar.value, y->data.scalar.length);
            p->value = doc->strings[i];
            p->plain = y->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            break;
        case YAML_SEQUENCE_NODE: {
            p->kind = PIER_YAML_SEQ;
            size_t c = (size_t)(y->data.sequence.items.top - y->data.sequence.items.start);
            p->items = pier_calloc(c ? c : 1, sizeof *p->items);
            for (size_t k = 0; k < c; k++)
                p->items[k] = &doc->nodes[y->data.sequence.items.start[k] - 1];
            p->count = c;
            break;
        }
        case YAML_MAPPING_NODE: {
            p->kind = PIER_YAML_MAP;
            size_t c = (size_t)(y->data.mapping.pairs.top - y->data.mapping.pairs.start);
            p->items = pier_calloc(c ? c : 1, sizeof *p->items);
            p->keys = pier_calloc(c ? c : 1, sizeof *p->keys);
            for (size_t k = 0; k < c; k++) {
                yaml_node_pair_t *pair = &y->data.mapping.pairs.start[k];
                p->keys[k] = &doc->nodes[pair->key - 1];
                p->items[k] = &doc->nodes[pair->value - 1];
            }
            p->count = c;
            break;
        }
        default:
            p->kind = PIER_YAML_SCALAR;
            p->value = "";
            break;
        }
    }
    /* Keys must be scalars for pier's configs; check once here. */
    for (size_t i = 0; i < n; i++) {
        pier_yaml_node *p = &doc->nodes[i];
        if (p->kind != PIER_YAML_MAP)
            continue;
        for (size_t k = 0; k < p->count; k++)
            if (p->keys[k]->kind != PIER_YAML_SCALAR)
                return pier_yaml_error(doc, p->keys[k], "a mapping key must be a plain value");
    }
    doc->root = n ? &doc->nodes[0] : NULL;
    return 0;
}

int pier_yaml_load_string(pier_yaml_doc **out, const char *name, const char *text, size_t len)
{
    *out = NULL;
    pier_yaml_doc *doc = pier_calloc(1, sizeof *doc);
    doc->name = pier_strdup(name);
    yaml_parser_t parser;
    yaml_document_t ydoc;
    int rc = 0;
    if (!yaml_parser_initialize(&parser))
        abort();
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &ydoc)) {
        rc = pier_error_set(PIER_EINVALID, "%s:%zu:%zu: %s%s%s", name, parser.problem_mark.line + 1,
                            parser.problem_mark.column + 1,
                            parser.problem ? parser.problem : "invalid YAML",
                            parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        pier_yaml_free(doc);
        return rc;
    }
    rc = convert(doc, &ydoc);
    yaml_document_delete(&ydoc);
    yaml_parser_delete(&parser);
    if (rc) {
        pier_yaml_free(doc);
        return rc;
    }
    *out = doc;
    return 0;
}

int pier_yaml_load_file(pier_yaml_doc **out, const char *path)
{
    pier_buf b;
    pier_buf_init(&b, 16 << 20);
    int rc = pier_file_read(path, &b);
    if (rc == 0)
        rc = pier_yaml_load_string(out, path, pier_buf_cstr(&b), b.len);
    pier_buf_free(&b);
    return rc;
}

void pier_yaml_free(pier_yaml_doc *doc)
{
    if (!doc)
        return;
    for (size_t i = 0; i < doc->node_count; i++) {
        free(doc->nodes[i].items);
        free(doc->nodes[i].keys);
        free(doc->strings[i]);
    }
    free(doc->nodes);
    free(doc->strings);
    free(doc->name);
    free(doc);
}

const pier_yaml_node *pier_yaml_root(const pier_yaml_doc *doc)
{
    return doc->root;
}

const char *pier_yaml_name(const pier_yaml_doc *doc)
{
    return doc->name;
}

const pier_yaml_node *pier_yaml_get(const pier_yaml_node *map, const char *key)
{
    if (!map || map->kind != PIER_YAML_MAP)
        return NULL;
    for (size_t i = 0; i < map->count; i++)
        if (strcmp(map->keys[i]->value, key) == 0)
            return map->items[i];
    return NULL;
}

bool pier_yaml_is_null(const pier_yaml_node *n)
{
    if (!n)
        return true;
    if (n->kind != PIER_YAML_SCALAR || !n->plain)
        return false;
    return n->value[0] == '\0' || strcmp(n->value, "~") == 0 || strcasecmp(n->value, "null") == 0;
}

int pier_yaml_error(const pier_yaml_doc *doc, const pier_yaml_node *n, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pier_error_set(PIER_EINVALID, "%s:%zu:%zu: %s", doc->name, n ? n->line : 1,
                          n ? n->column : 1, msg);
}

static const char *kind_name(const pier_yaml_node *n)
{
    if (!n)
        return "nothing";
    switch (n->kind) {
    case PIER_YAML_SEQ:
        return "a list";
    case PIER_YAML_MAP:
        return "a mapping";
    default:
        return "a value";
    }
}

int pier_yaml_string(const pier_yaml_doc *doc, const pier_yaml_node *n, const char **out)
{
    if (!n || n->kind != PIER_YAML_SCALAR)
        return pier_yaml_error(doc, n, "expected a string, found %s", kind_name(n));
    *out = n->value;
    return 0;
}

int pier_yaml_bool(const pier_yaml_doc *doc, const pier_yaml_node *n, bool *out)
{
    if (n && n->kind == PIER_YAML_SCALAR) {
        const char *v = n->value;
        if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) {
            *out = false;
            return 0;
        }
    }
    return pier_yaml_error(doc, n, "expected true or false, found %s%s%s", kind_name(n),
                           n && n->value ? " " : "", n && n->value ? n->value : "");
}

int pier_yaml_int(const pier_yaml_doc *doc, const pier_yaml_node *n, int64_t *out)
{
    if (!n || n->kind != PIER_YAML_SCALAR || pier_parse_i64(n->value, out) != 0)
        return pier_yaml_error(doc, n, "expected an integer, found %s%s%s", kind_name(n),
                               n && n->value ? " " : "", n && n->value ? n->value : "");
    return 0;
}

int pier_yaml_strings(const pier_yaml_doc *doc, const pier_yaml_node *n, const char ***out,
                      size_t *count)
{
    *out = NULL;
    *count = 0;
    if (n && n->kind == PIER_YAML_SCALAR) {
        const char **v = pier_calloc(2, sizeof *v);
        v[0] = n->value;
        *out = v;
        *count = 1;
        return 0;
    }
    if (!n || n->kind != PIER_YAML_SEQ)
        return pier_yaml_error(doc, n, "expected a list of strings, found %s", kind_name(n));
    const char **v = pier_calloc(n->count + 1, sizeof *v);
    for (size_t i = 0; i < n->count; i++) {
        if (n->items[i]->kind != PIER_YAML_SCALAR) {
            free(v);
            return pier_yaml_error(doc, n->items[i], "expected a string, found %s",
                                   kind_name(n->items[i]));
        }
        v[i] = n->items[i]->value;
    }
    *out = v;
    *count = n->count;
    return 0;
}

int pier_yaml_check_keys(const pier_yaml_doc *doc, const pier_yaml_node *map,
                         const char *const *allowed)
{
    if (!map || map->kind != PIER_YAML_MAP)
        return pier_yaml_error(doc, map, "expected a mapping, found %s", kind_name(map));
    for (size_t i = 0; i < map->count; i++) {
        const char *key = map->keys[i]->value;
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = true;
        if (!ok) {
            pier_buf list;
            pier_buf_init(&list, 4096);
            for (const char *const *a = allowed; *a; a++)
                pier_buf_printf(&list, "%s%s", a == allowed ? "" : ", ", *a);
            int rc = pier_yaml_error(doc, map->keys[i], "unknown key '%s' (expected one of: %s)",
                                     key, pier_buf_cstr(&list));
            pier_buf_free(&list);
            return rc;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(map->keys[j]->value, key) == 0)
                return pier_yaml_error(doc, map->keys[i], "duplicate key '%s'", key);
    }
    return 0;
}
