/*
 * xml: see xml.h. One expat parser per reader; the current path is one
 * buffer plus a stack of its lengths, the current text one capped buffer
 * that is emptied at every element boundary. A failure inside a handler
 * stops expat and is kept in rc, which every later call returns.
 */
#include "aws/xml.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"

struct pier_xml_reader {
    XML_Parser parser;                   /* expat */
    char *what;                          /* the document's name for messages */
    pier_xml_element_fn fn;              /* the caller's callback */
    void *ctx;                           /* its context */
    pier_buf path;                       /* "Root/Child/..." of the open elements */
    size_t lens[PIER_XML_MAX_DEPTH + 1]; /* path length before each open element */
    int depth;                           /* open elements */
    int max_depth;                       /* cap on depth */
    pier_buf text;                       /* character data of the innermost element */
    char root[128];                      /* the root element's name */
    int rc;                              /* first failure (0: none) */
    bool finished;                       /* finish was called */
};

static void fail(pier_xml_reader *r, int rc)
{
    if (r->rc == 0)
        r->rc = rc;
    XML_StopParser(r->parser, XML_FALSE);
}

static const char *local_name(const char *name)
{
    const char *colon = strrchr(name, ':');
    return colon ? colon + 1 : name;
}

static void XMLCALL on_start(void *p, const XML_Char *name, const XML_Char **atts)
{
    (void)atts;
    pier_xml_reader *r = p;
    if (r->rc)
        return;
    if (r->depth >= r->max_depth) {
        fail(r, pier_error_set(PIER_ETOOBIG, "%s: XML nested deeper than %d elements", r->what,
                               r->max_depth));
        return;
    }
    const char *local = local_name(name);
    if (r->depth == 0)
        snprintf(r->root, sizeof r->root, "%s", local);
    r->lens[r->depth] = r->path.len;
    int rc = 0;
    if (r->depth > 0)
        rc = pier_buf_putc(&r->path, '/');
    if (rc == 0)
        rc = pier_buf_puts(&r->path, local);
    if (rc != 0) {
        fail(r, pier_error_set(PIER_ETOOBIG, "%s: XML element path too long", r->what));
        return;
    }
    r->depth++;
    pier_buf_reset(&r->text);
}

static void XMLCALL on_end(void *p, const XML_Char *name)
{
    (void)name;
    pier_xml_reader *r = p;
    if (r->rc)
        return;
    int rc = r->fn ? r->fn(r->ctx, pier_buf_cstr(&r->path), r->depth, pier_buf_cstr(&r->text),
                           r->text.len)
                   : 0;
    if (rc != 0) {
        fail(r, rc);
        return;
    }
    r->depth--;
    pier_buf_truncate(&r->path, r->lens[r->depth]);
    pier_buf_reset(&r->text);
}

static void XMLCALL on_text(void *p, const XML_Char *s, int len)
{
    pier_xml_reader *r = p;
    if (r->rc || r->depth == 0)
        return;
    if (pier_buf_put(&r->text, s, (size_t)len) != 0)
        fail(r, pier_error_set(PIER_ETOOBIG, "%s: XML element %s has more than %zu bytes of text",
                               r->what, pier_buf_cstr(&r->path), r->text.max));
}

static void XMLCALL on_doctype(void *p, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    pier_xml_reader *r = p;
    fail(r, pier_error_set(PIER_EINVALID, "%s: XML with a DOCTYPE is refused", r->what));
}

static void XMLCALL on_entity_decl(void *p, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_length, const XML_Char *base,
                                   const XML_Char *system_id, const XML_Char *public_id,
                                   const XML_Char *notation)
{
    (void)name;
    (void)is_param;
    (void)value;
    (void)value_length;
    (void)base;
    (void)system_id;
    (void)public_id;
    (void)notation;
    pier_xml_reader *r = p;
    fail(r, pier_error_set(PIER_EINVALID, "%s: XML entity declarations are refused", r->what));
}

int pier_xml_reader_new(pier_xml_reader **out, const char *what, pier_xml_element_fn on_element,
                        void *ctx)
{
    pier_xml_reader *r = pier_calloc(1, sizeof *r);
    r->parser = XML_ParserCreate("UTF-8");
    if (!r->parser) {
        free(r);
        return pier_error_set(PIER_ERR, "cannot create an XML parser");
    }
    r->what = pier_strdup(what ? what : "XML document");
    r->fn = on_element;
    r->ctx = ctx;
    r->max_depth = PIER_XML_MAX_DEPTH;
    pier_buf_init(&r->path, 64 * 1024);
    pier_buf_init(&r->text, PIER_XML_MAX_TEXT);
    XML_SetUserData(r->parser, r);
    XML_SetElementHandler(r->parser, on_start, on_end);
    XML_SetCharacterDataHandler(r->parser, on_text);
    XML_SetStartDoctypeDeclHandler(r->parser, on_doctype);
    XML_SetEntityDeclHandler(r->parser, on_entity_decl);
    XML_SetParamEntityParsing(r->parser, XML_PARAM_ENTITY_PARSING_NEVER);
    *out = r;
    return 0;
}

void pier_xml_reader_free(pier_xml_reader *r)
{
    if (!r)
        return;
    XML_ParserFree(r->parser);
    pier_buf_free(&r->path);
    pier_buf_free(&r->text);
    free(r->what);
    free(r);
}

void pier_xml_reader_limits(pier_xml_reader *r, int max_depth, size_t max_text)
{
    if (max_depth > 0 && max_depth <= PIER_XML_MAX_DEPTH)
        r->max_depth = max_depth;
    if (max_text > 0)
        r->text.max = max_text;
}

static int parse(pier_xml_reader *r, const char *data, size_t n, bool final)
{
    if (r->rc)
        return r->rc;
    /* expat takes an int length: feed huge pieces in slices */
    do {
        size_t piece = n > (1u << 30) ? (1u << 30) : n;
        bool last = final && piece == n;
        if (XML_Parse(r->parser, data, (int)piece, last) == XML_STATUS_ERROR) {
            if (r->rc)
                return r->rc;
            enum XML_Error e = XML_GetErrorCode(r->parser);
            if (e == XML_ERROR_NO_ELEMENTS && r->root[0] == '\0') {
                r->rc = pier_error_set(PIER_EINVALID, "%s: empty XML document", r->what);
                return r->rc;
            }
            r->rc = pier_error_set(PIER_EINVALID, "%s: invalid XML at line %lu column %lu: %s",
                                   r->what, (unsigned long)XML_GetCurrentLineNumber(r->parser),
                                   (unsigned long)XML_GetCurrentColumnNumber(r->parser) + 1,
                                   XML_ErrorString(e));
            return r->rc;
        }
        data += piece;
        n -= piece;
    } while (n > 0);
    return r->rc;
}

int pier_xml_reader_feed(pier_xml_reader *r, const char *data, size_t n)
{
    if (r->finished)
        return pier_error_set(PIER_EINVALID, "%s: XML fed after its end", r->what);
    return parse(r, data, n, false);
}

int pier_xml_reader_finish(pier_xml_reader *r)
{
    if (r->finished)
        return r->rc;
    r->finished = true;
    int rc = parse(r, "", 0, true);
    if (rc == 0 && r->root[0] == '\0')
        rc = r->rc = pier_error_set(PIER_EINVALID, "%s: empty XML document", r->what);
    return rc;
}

const char *pier_xml_reader_root(const pier_xml_reader *r)
{
    return r->root;
}

int pier_xml_reader_body(void *reader, const char *data, size_t n)
{
    return pier_xml_reader_feed(reader, data, n) == 0 ? 0 : 1;
}

/* ---- whole documents ---- */

struct pier_xml_doc {
    char **paths;   /* element paths in document order */
    char **texts;   /* their texts */
    size_t count;   /* used */
    size_t cap;     /* allocated */
    char root[128]; /* the root element's name */
};

static int doc_add(void *ctx, const char *path, int depth, const char *text, size_t len)
{
    (void)depth;
    pier_xml_doc *d = ctx;
    if (d->count == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->paths = pier_realloc(d->paths, d->cap * sizeof *d->paths);
        d->texts = pier_realloc(d->texts, d->cap * sizeof *d->texts);
    }
    d->paths[d->count] = pier_strdup(path);
    d->texts[d->count] = pier_strndup(text, len);
    d->count++;
    return 0;
}

int pier_xml_doc_parse(pier_xml_doc **out, const char *data, size_t len, const char *what)
{
    *out = NULL;
    pier_xml_doc *d = pier_calloc(1, sizeof *d);
    pier_xml_reader *r = NULL;
    int rc = pier_xml_reader_new(&r, what, doc_add, d);
    if (rc == 0)
        rc = pier_xml_reader_feed(r, data, len);
    if (rc == 0)
        rc = pier_xml_reader_finish(r);
    if (rc == 0) {
        snprintf(d->root, sizeof d->root, "%s", pier_xml_reader_root(r));
        *out = d;
        d = NULL;
    }
    pier_xml_reader_free(r);
    pier_xml_doc_free(d);
    return rc;
}

void pier_xml_doc_free(pier_xml_doc *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->count; i++) {
        free(d->paths[i]);
        free(d->texts[i]);
    }
    free(d->paths);
    free(d->texts);
    free(d);
}

const char *pier_xml_doc_get(const pier_xml_doc *d, const char *path)
{
    /* elements are reported as they close, so a parent comes after its
     * children: first match in document order is the first closed */
    for (size_t i = 0; i < d->count; i++)
        if (strcmp(d->paths[i], path) == 0)
            return d->texts[i];
    return NULL;
}

const char *pier_xml_doc_root(const pier_xml_doc *d)
{
    return d->root;
}

size_t pier_xml_doc_count(const pier_xml_doc *d)
{
    return d->count;
}

void pier_xml_doc_at(const pier_xml_doc *d, size_t i, const char **path, const char **text)
{
    *path = i < d->count ? d->paths[i] : NULL;
    *text = i < d->count ? d->texts[i] : NULL;
}

/* ---- escaping ---- */

int pier_xml_escape(pier_buf *out, const char *s, size_t n)
{
    size_t start = out->len;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '&':
            rc = pier_buf_puts(out, "&amp;");
            break;
        case '<':
            rc = pier_buf_puts(out, "&lt;");
            break;
        case '>':
            rc = pier_buf_puts(out, "&gt;");
            break;
        case '"':
            rc = pier_buf_puts(out, "&quot;");
            break;
        case '\'':
            rc = pier_buf_puts(out, "&apos;");
            break;
        case '\t':
            rc = pier_buf_puts(out, "&#9;");
            break;
        case '\n':
            rc = pier_buf_puts(out, "&#10;");
            break;
        case '\r':
            rc = pier_buf_puts(out, "&#13;");
            break;
        default:
            if (c < 0x20) {
                pier_buf_truncate(out, start);
                return pier_error_set(PIER_EINVALID,
                                      "control character 0x%02x at byte %zu cannot be written "
                                      "in XML 1.0",
                                      c, i);
            }
            rc = pier_buf_putc(out, (char)c);
        }
    }
    if (rc != 0)
        pier_buf_truncate(out, start);
    return rc;
}

/* ---- AWS errors ---- */

static char *dup_first(const pier_xml_doc *d, const char *const *paths, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = pier_xml_doc_get(d, paths[i]);
        if (v)
            return pier_strdup(v);
    }
    return NULL;
}

int pier_xml_parse_aws_error(pier_xml_aws_error *out, const char *body, size_t len)
{
    static const char *const code[] = {"Error/Code", "ErrorResponse/Error/Code",
                                       "Response/Errors/Error/Code"};
    static const char *const message[] = {"Error/Message", "ErrorResponse/Error/Message",
                                          "Response/Errors/Error/Message"};
    static const char *const type[] = {"ErrorResponse/Error/Type", "Error/Type"};
    static const char *const request_id[] = {"Error/RequestId", "ErrorResponse/RequestId",
                                             "ErrorResponse/Error/RequestId", "Response/RequestID",
                                             "Response/RequestId"};
    static const char *const server_time[] = {"Error/ServerTime"};
    memset(out, 0, sizeof *out);
    pier_xml_doc *d = NULL;
    int rc = pier_xml_doc_parse(&d, body, len, "error response");
    if (rc != 0)
        return rc;
    out->code = dup_first(d, code, 3);
    if (!out->code || !*out->code) {
        free(out->code);
        out->code = NULL;
        rc = pier_error_set(PIER_EINVALID, "<%s> response is not an AWS error document",
                            pier_xml_doc_root(d));
        goto done;
    }
    out->message = dup_first(d, message, 3);
    out->type = dup_first(d, type, 2);
    out->request_id = dup_first(d, request_id, 5);
    out->server_time = dup_first(d, server_time, 1);
done:
    pier_xml_doc_free(d);
    return rc;
}

void pier_xml_aws_error_free(pier_xml_aws_error *e)
{
    if (!e)
        return;
    PIER_FREE(e->code);
    PIER_FREE(e->message);
    PIER_FREE(e->type);
    PIER_FREE(e->request_id);
    PIER_FREE(e->server_time);
}
