/*
 * s3object: the S3 object operations (GetObject, HeadObject, PutObject,
 * CopyObject, DeleteObject, DeleteObjects) and multipart uploads
 * (Create, UploadPart, UploadPartCopy, ListParts, Complete, Abort) over the
 * store, for s3api.c's dispatch. Each answers the request itself; the
 * return value is the respond result (0, or negative when the server could
 * not take the answer).
 */
#ifndef PIER_S3OBJECT_H
#define PIER_S3OBJECT_H

#include <stdbool.h>

#include "stack/s3req.h"

int pier_s3object_get(pier_s3req *r, bool head);
int pier_s3object_put(pier_s3req *r);
int pier_s3object_copy(pier_s3req *r, const char *copy_source);
int pier_s3object_delete(pier_s3req *r);
/* Body finishers (pass to pier_s3req_body_begin). */
int pier_s3object_delete_many_finish(pier_s3req *r);
int pier_s3object_complete_finish(pier_s3req *r);

int pier_s3object_create_upload(pier_s3req *r);
int pier_s3object_upload_part(pier_s3req *r, const char *upload_id);
int pier_s3object_list_parts(pier_s3req *r, const char *upload_id);
int pier_s3object_abort_upload(pier_s3req *r, const char *upload_id);

#endif
