/*
 * xml: the XML every AWS REST-XML and query client needs, over expat.
 * The only place in pier that includes expat.h (in xml.c).
 *
 * - A streaming reader: feed bytes in pieces of any size (it can sit on an
 *   HTTP on_body callback: pier_xml_reader_body), get one callback per
 *   completed element with its path from the root ("ListBucketResult/
 *   Contents/Key") and its text. Memory is bounded by the depth and by the
 *   largest text, never by the document: a listing of a million keys is
 *   parsed in constant space.
 * - A whole-document helper for small responses (STS, errors, CloudFront
 *   results): path -> text lookups, first match wins.
 * - Escaping text for request bodies, and the standard AWS error document
 *   in its three shapes: S3's <Error><Code/>..</Error>, the query and
 *   CloudFront <ErrorResponse><Error>..</Error><RequestId/></ErrorResponse>,
 *   and EC2's <Response><Errors><Error>..</Error></Errors></Response>.
 *
 * Names: namespace prefixes are dropped ("s3:Key" is "Key"); xmlns
 * attributes are ignored; other attributes are not reported. Text is the
 * character data directly inside the element, entities decoded, nothing
 * trimmed (S3 keys may begin or end with spaces); for an element with
 * children it is only what follows the last child, so read leaves.
 *
 * Safety: a DOCTYPE (and so any entity declaration) is refused, so no
 * entity expansion or external fetch can happen; depth is capped at 64 and
 * one element's text at 1 MiB by default.
 *
 * Ownership: every string handed to a callback is borrowed for the call;
 * pier_xml_doc_get's result lives as long as the document.
 */
#ifndef PIER_XML_H
#define PIER_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define PIER_XML_MAX_DEPTH 64
#define PIER_XML_MAX_TEXT  ((size_t)1 << 20)

typedef struct pier_xml_reader pier_xml_reader;

/* Called when an element closes. path: "Root/Child/Leaf" (NUL-terminated),
 * depth: 1 for the root, text/text_len: its text (NUL-terminated too).
 * Return 0 to go on; non-zero stops the parse and is what feed/finish
 * return (set the error message first). */
typedef int (*pier_xml_element_fn)(void *ctx, const char *path, int depth, const char *text,
                                   size_t text_len);

/* what names the document in error messages (a URL, a file); copied. */
int pier_xml_reader_new(pier_xml_reader **out, const char *what, pier_xml_element_fn on_element,
                        void *ctx);
void pier_xml_reader_free(pier_xml_reader *r);
/* Changes the caps (before the first feed). 0 keeps a default. */
void pier_xml_reader_limits(pier_xml_reader *r, int max_depth, size_t max_text);
/* Parses the next n bytes. PIER_EINVALID on malformed XML (message with
 * line and column), PIER_ETOOBIG past a cap, or the callback's code. */
int pier_xml_reader_feed(pier_xml_reader *r, const char *data, size_t n);
/* Ends the document: fails when it is incomplete or empty. */
int pier_xml_reader_finish(pier_xml_reader *r);
/* The root element's name once seen ("" before). Borrowed. */
const char *pier_xml_reader_root(const pier_xml_reader *r);
/* A pier_http_body_fn: pass the reader as on_body_ctx. Returns non-zero
 * (and keeps the message) when the parse fails, which aborts the transfer. */
int pier_xml_reader_body(void *reader, const char *data, size_t n);

/* A whole small document as (path, text) pairs in document order. */
typedef struct pier_xml_doc pier_xml_doc;

/* Parses len bytes (capped at 16 MiB by the caller's buffer, if any). */
int pier_xml_doc_parse(pier_xml_doc **out, const char *data, size_t len, const char *what);
void pier_xml_doc_free(pier_xml_doc *d);
/* The text of the first element at exactly this path, or NULL. Borrowed. */
const char *pier_xml_doc_get(const pier_xml_doc *d, const char *path);
/* The root element's name. Borrowed. */
const char *pier_xml_doc_root(const pier_xml_doc *d);
/* Iteration: the number of elements and the i-th (path, text). */
size_t pier_xml_doc_count(const pier_xml_doc *d);
void pier_xml_doc_at(const pier_xml_doc *d, size_t i, const char **path, const char **text);

/* Appends s (n bytes) escaped for element text or an attribute value:
 * & < > " ' as entities, tab, newline and carriage return as character
 * references (so they survive the parser's normalisation). PIER_EINVALID
 * for other control characters, which XML 1.0 cannot carry. */
int pier_xml_escape(pier_buf *out, const char *s, size_t n);

/* An AWS error document. Fields are malloc'ed, NULL when absent. */
typedef struct {
    char *code;        /* "NoSuchKey", "AccessDenied" ... (always set on success) */
    char *message;     /* human text */
    char *type;        /* "Sender" / "Receiver" (query and CloudFront shapes) */
    char *request_id;  /* RequestId / RequestID */
    char *server_time; /* S3's <ServerTime> on RequestTimeTooSkewed */
} pier_xml_aws_error;

/* Parses body as an AWS error. 0 with out->code set; PIER_EINVALID when
 * the body is not XML or carries no error code (out left empty). */
int pier_xml_parse_aws_error(pier_xml_aws_error *out, const char *body, size_t len);
void pier_xml_aws_error_free(pier_xml_aws_error *e);

#endif
