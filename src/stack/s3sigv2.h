/*
 * s3sigv2: verification support for S3's legacy Signature Version 2, which
 * older SDKs still use for presigned URLs (boto3 before 1.36 presigns with
 * it by default) and s3cmd uses with signature_v2 = True. A pure function of
 * the request: the string to sign, and its HMAC-SHA1 signature.
 *
 *   StringToSign = Method \n Content-MD5 \n Content-Type \n Date-or-Expires \n
 *                  CanonicalizedAmzHeaders CanonicalizedResource
 */
#ifndef PIER_S3SIGV2_H
#define PIER_S3SIGV2_H

#include "base/buf.h"
#include "net/http.h"

/* Builds the string to sign into out. resource is "/bucket/key" as sent
 * (still percent-encoded; for a virtual-hosted request, "/bucket" + path);
 * query is the raw query (its sub-resources are added, decoded);
 * date_or_expires is the Date header, "" when x-amz-date is signed, or the
 * Expires parameter of a presigned URL. */
int pier_s3sigv2_string_to_sign(pier_buf *out, const char *method, const char *resource,
                                const char *query, const pier_http_headers *headers,
                                const char *date_or_expires);
/* base64(HMAC-SHA1(secret, sts)) into sig (at least 29 bytes). */
void pier_s3sigv2_sign(char sig[32], const char *secret, const char *sts, size_t sts_len);

#endif
