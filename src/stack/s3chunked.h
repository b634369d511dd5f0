/*
 * s3chunked: a streaming decoder for S3's aws-chunked request bodies
 * (Content-Encoding: aws-chunked), the framing the AWS SDKs use for signed
 * streaming uploads and for trailing checksums:
 *
 *   <hex size>[;chunk-signature=<sig>]\r\n<data>\r\n ... 0[;chunk-signature=<sig>]\r\n
 *   [<trailer name>:<value>\r\n ...][x-amz-trailer-signature:<sig>\r\n]\r\n
 *
 * Bytes go in as the network delivers them, in pieces of any size; decoded
 * data comes out through a sink callback, never held whole. With a signing
 * chain (from the seed request's verified signature) each chunk's signature
 * is checked as the chunk ends, and a trailer signature when one is
 * expected.
 *
 * Ownership: the chain is copied; trailer values returned are borrowed from
 * the decoder.
 */
#ifndef PIER_S3CHUNKED_H
#define PIER_S3CHUNKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/sigv4.h"

typedef struct pier_s3chunked pier_s3chunked;

/* Receives decoded data; non-zero stops the decode and is returned by feed. */
typedef int (*pier_s3chunked_sink)(void *ctx, const char *data, size_t n);

/* chain NULL: unsigned chunks (STREAMING-UNSIGNED-PAYLOAD-TRAILER);
 * otherwise every chunk must carry a valid signature, and a trailer must be
 * signed when signed_trailer. */
pier_s3chunked *pier_s3chunked_new(const pier_sigv4_chunk *chain, bool signed_trailer,
                                   pier_s3chunked_sink sink, void *ctx);
void pier_s3chunked_free(pier_s3chunked *d);
/* Decodes n more bytes. PIER_EINVALID for bad framing (message says what),
 * PIER_EAUTH for a chunk or trailer signature that does not match, or the
 * sink's code. After an error the decoder refuses further input. */
int pier_s3chunked_feed(pier_s3chunked *d, const char *data, size_t n);
/* PIER_EINVALID ("IncompleteBody") unless the final chunk and the trailer
 * section were complete. */
int pier_s3chunked_finish(pier_s3chunked *d);
/* Decoded bytes so far. */
uint64_t pier_s3chunked_decoded(const pier_s3chunked *d);
/* The value of a trailing header (case-insensitive name), or NULL. */
const char *pier_s3chunked_trailer(const pier_s3chunked *d, const char *name);

#endif
