/*
 * s3internal: what s3.c and s3multipart.c share, and nothing else includes.
 * The client (struct pier_s3), the op every request is made of, and the
 * helpers both files build ops with. s3.c owns all of it; s3multipart.c
 * (create, part, complete, abort, and whole-file uploads with parts in
 * parallel) builds its requests from these ops. See s3.c for the op's life.
 */
#ifndef PIER_AWS_S3INTERNAL_H
#define PIER_AWS_S3INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/awsreq.h"
#include "aws/s3.h"

#define PIER_S3_XMLNS "http://s3.amazonaws.com/doc/2006-03-01/"

struct pier_s3 {
    pier_awsreq_client *aws;       /* signing, sending, retrying */
    char *endpoint;                /* base URL, no trailing '/' */
    char *scheme;                  /* of the endpoint */
    char *hostport;                /* host[:port] of the endpoint ([v6] bracketed) */
    char *base_path;               /* endpoint path without trailing '/' ("" usually) */
    bool custom;                   /* endpoint given or configured (not AWS's) */
    bool aws_host;                 /* endpoint is AWS's (virtual-hosted possible) */
    pier_s3_addressing addressing; /* PATH / VIRTUAL / AUTO */
    size_t pending;                /* user operations not completed */
};

typedef struct pier_s3_op pier_s3_op;
typedef struct pier_s3_upload pier_s3_upload; /* a whole-file upload (s3multipart.c) */

/* Internal completion of an op: parse, report, free. */
typedef void (*pier_s3_op_fn)(pier_s3_op *op, int rc);

struct pier_s3_op {
    pier_awsreq_call call;          /* first: explain() casts back */
    pier_s3 *s3;                    /* owner */
    char *bucket;                   /* always */
    char *key;                      /* object ops */
    pier_s3_op_fn complete;         /* internal completion */
    pier_s3_done_fn done;           /* user callback (NULL for internal ops) */
    void *ctx;                      /* its context */
    pier_s3_head own_head;          /* head: answer for async callers */
    pier_s3_head *head_out;         /* where head metadata goes, or NULL */
    pier_buf *get_out;              /* get to memory: append the body here */
    pier_s3_delete_result own_del;  /* delete batch: answer for async callers */
    pier_s3_delete_result *del_out; /* where the delete outcome goes */
    size_t del_n;                   /* keys in the batch */
    char *etag;                     /* parsed ETag */
    char *version_id;               /* parsed x-amz-version-id */
    char *upload_id;                /* create: parsed UploadId */
    pier_s3_upload *up;             /* multipart: the upload this op serves */
    uint32_t part;                  /* part number (upload part ops) */
    bool counted;                   /* counted in s3->pending */
};

/* Drives the client until *flag. The op's own result is in sync. */
typedef struct {
    bool finished;  /* the op reported */
    int rc;         /* its result */
    char msg[1100]; /* its message */
    char *etag;     /* its ETag, or create's UploadId (owned) */
} pier_s3_sync;

/* A copy of s, or NULL for NULL. */
char *pier_s3_dup_or_null(const char *s);
/* Copies the ETag without its quotes. */
char *pier_s3_etag_dup(const char *s);
/* Adds every header of src (may be NULL) to dst. */
void pier_s3_headers_copy(pier_http_headers *dst, const pier_http_headers *src);

/* A new op for operation on bucket[/key] with an encoded query (or NULL). */
int pier_s3_op_new(pier_s3_op **out, pier_s3 *s3, const char *operation, const char *method,
                   const char *bucket, const char *key, const char *query);
void pier_s3_op_free(pier_s3_op *op);
/* Submits op; on failure the op is freed and nothing will be called. A
 * counted op is a user operation of its own (pier_s3_pending). */
int pier_s3_op_submit(pier_s3_op *op, pier_s3_op_fn complete, bool counted);
/* Reports op's outcome to its user callback, then frees it. */
void pier_s3_op_report(pier_s3_op *op, int rc);

/* The callback of a synchronous form (ctx: a pier_s3_sync), and the wait
 * for it; *etag (or NULL) gets the ETag or UploadId, the caller's. */
void pier_s3_sync_done(void *ctx, int rc, const pier_s3_result *res);
int pier_s3_sync_wait(pier_s3 *s3, pier_s3_sync *s, char **etag);

/* Adds the object headers of opts to a call; md5 only when with_md5. */
int pier_s3_put_headers(pier_awsreq_call *call, const pier_s3_put_options *o, bool with_md5);
/* Size of a regular file, naming it on failure. */
int pier_s3_file_size(const char *path, uint64_t *size);
/* A bodiless request, synchronously. */
int pier_s3_simple_do(pier_s3 *s3, const char *operation, const char *method, const char *bucket,
                      const char *key, const char *query);

#endif
