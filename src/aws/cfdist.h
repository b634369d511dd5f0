/*
 * cfdist: what pier needs to know about a CloudFront distribution, from
 * GetDistribution (GET /2020-05-31/distribution/{Id}, permission
 * cloudfront:GetDistribution): the origin path in front of a bucket, so a
 * deploy under a prefix invalidates the viewer paths, not the keys.
 *
 * The origin is the one whose DomainName names the bucket
 * ("<bucket>.s3.amazonaws.com", "<bucket>.s3.<region>.amazonaws.com",
 * "<bucket>.s3-website-<region>.amazonaws.com", "<bucket>.s3-website.
 * <region>.amazonaws.com"), else the default cache behaviour's target
 * origin (a custom domain in front of the bucket, pier's own edge).
 *
 * Kept apart from cloudfront.c (the invalidation client) as an additive
 * piece; it makes its own awsreq client from the caller's shared pieces.
 *
 * Ownership: *origin_path is malloc'ed for the caller.
 */
#ifndef PIER_CFDIST_H
#define PIER_CFDIST_H

#include "aws/awsreq.h"

/* Sets *origin_path to the OriginPath ("" when none, else "/site" as
 * CloudFront stores it) of the origin serving bucket on distribution_id.
 * PIER_ENOTFOUND (no such distribution, or it has no origin), PIER_EAUTH,
 * PIER_EINVALID (a malformed answer), PIER_EIO. */
int pier_cloudfront_origin_path(char **origin_path, const pier_awsreq_shared *shared,
                                const char *distribution_id, const char *bucket);

#endif
