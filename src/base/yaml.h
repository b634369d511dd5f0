/*
 * yaml: a YAML document as a tree with positions, on libyaml. The one place
 * that includes <yaml.h>.
 *
 * Config files (pier.yml, buildspec.yml, the stack config, rules files) are
 * small, so the whole document is loaded into a tree; each node keeps its
 * line and column (1-based) so validation can report "file:line:column:
 * what is wrong". Anchors and aliases are resolved (an alias points at the
 * anchored node; the tree is a DAG, freed once). Merge keys (<<) are not
 * interpreted. Scalars keep their text; typed getters interpret it.
 *
 * Ownership: the pier_yaml_doc owns every node and string; nodes are
 * borrowed from it and live until pier_yaml_free.
 */
#ifndef PIER_YAML_H
#define PIER_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PIER_YAML_SCALAR, /* text, possibly empty; `null`, `~` and empty plain are nulls */
    PIER_YAML_SEQ,    /* items[0..count) */
    PIER_YAML_MAP,    /* keys[i] -> items[i], in document order */
} pier_yaml_kind;

typedef struct pier_yaml_node pier_yaml_node;
struct pier_yaml_node {
    pier_yaml_kind kind;    /* which of the three */
    const char *value;      /* scalar text (NUL-terminated); NULL otherwise */
    bool plain;             /* scalar was unquoted (so `null`, `true`, `1` are typed) */
    size_t line;            /* 1-based position of the node's start */
    size_t column;          /* 1-based */
    pier_yaml_node **items; /* sequence items, or map values */
    pier_yaml_node **keys;  /* map keys (scalar nodes), NULL for a sequence */
    size_t count;           /* number of items */
};

typedef struct pier_yaml_doc pier_yaml_doc;

/* Parses a file. Syntax errors come back as "path:line:column: message". An
 * empty file gives a document whose root is NULL. */
int pier_yaml_load_file(pier_yaml_doc **out, const char *path);
/* Parses text; name is used in messages. */
int pier_yaml_load_string(pier_yaml_doc **out, const char *name, const char *text, size_t len);
void pier_yaml_free(pier_yaml_doc *doc);
/* The root node, or NULL for an empty document. Borrowed. */
const pier_yaml_node *pier_yaml_root(const pier_yaml_doc *doc);
/* The name given at load (the path). Borrowed. */
const char *pier_yaml_name(const pier_yaml_doc *doc);

/* The value of key in a map, or NULL (also when node is not a map). */
const pier_yaml_node *pier_yaml_get(const pier_yaml_node *map, const char *key);
/* True for a missing node and for a plain `null`, `~` or empty scalar. */
bool pier_yaml_is_null(const pier_yaml_node *n);

/* Sets the error "name:line:column: <message>" at node n (or at 1:1 when n
 * is NULL) and returns PIER_EINVALID. */
int pier_yaml_error(const pier_yaml_doc *doc, const pier_yaml_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Typed reads; each fails with a positioned PIER_EINVALID error when the
 * node has another type. */
int pier_yaml_string(const pier_yaml_doc *doc, const pier_yaml_node *n, const char **out);
int pier_yaml_bool(const pier_yaml_doc *doc, const pier_yaml_node *n, bool *out);
int pier_yaml_int(const pier_yaml_doc *doc, const pier_yaml_node *n, int64_t *out);
/* A scalar or a sequence of scalars, as a NULL-terminated array (the array
 * is malloc'ed and owned by the caller; the strings are borrowed). */
int pier_yaml_strings(const pier_yaml_doc *doc, const pier_yaml_node *n, const char ***out,
                      size_t *count);

/* Checks that every key of map is one of allowed (NULL-terminated): unknown
 * keys are errors, not silently ignored. The message names the key and
 * lists the allowed ones. */
int pier_yaml_check_keys(const pier_yaml_doc *doc, const pier_yaml_node *map,
                         const char *const *allowed);

#endif
