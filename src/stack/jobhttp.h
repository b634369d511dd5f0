/*
 * jobhttp: the CodePipeline job API (JSON 1.1) on the API listener, over a
 * pier_jobapi registry: what an invoke action's handler calls.
 *
 *   POST PIER_JOBHTTP_PATH/   Content-Type: application/x-amz-json-1.1
 *   X-Amz-Target: CodePipeline_20150709.PutJobSuccessResult
 *                 CodePipeline_20150709.PutJobFailureResult
 *                 CodePipeline_20150709.AcknowledgeJob
 *                 CodePipeline_20150709.GetJobDetails
 *
 * Routing: the S3 API also takes POST on "/", and the server routes by host
 * and path prefix only, so the job API lives under its own path; the
 * handler's endpoint is pier_jobhttp_endpoint(api_url) =
 * "<api_url>/_pier/codepipeline", which is what AWS_ENDPOINT_URL_CODEPIPELINE
 * is set to (the SDKs keep an endpoint's path: boto3, the AWS CLI and the JS
 * SDK send "POST /_pier/codepipeline/"). Register before the S3 API.
 *
 * Authentication: SigV4 (service "codepipeline", any region) over the body's
 * SHA-256, with the same credential lookup the S3 API uses
 * (pier_s3api_lookup_fn: the administrator key, or session credentials
 * from the container-credentials endpoint); the lookup's authorize callback
 * is asked for "codepipeline:<Operation>" with bucket "" and key = the job
 * id. A job bound to an access key (pier_jobapi_spec.owner_key_id) answers
 * JobNotFoundException to other keys.
 *
 * Errors are JSON {"__type": "...", "message": "..."}: JobNotFoundException,
 * InvalidJobStateException, ValidationException, InvalidJobException
 * (status 400); UnknownOperationException, SerializationException (400);
 * MissingAuthenticationTokenException, UnrecognizedClientException,
 * InvalidSignatureException, ExpiredTokenException, AccessDeniedException
 * (400/403) for authentication. Bodies are capped at 1 MiB.
 *
 * Ownership: the registry and the lookup context are borrowed and must
 * outlive the server.
 */
#ifndef PIER_JOBHTTP_H
#define PIER_JOBHTTP_H

#include "base/buf.h"
#include "net/server.h"
#include "pipeline/jobapi.h"
#include "stack/s3api.h"

#define PIER_JOBHTTP_PATH "/_pier/codepipeline"

typedef struct {
    pier_jobapi *jobs;           /* the registry (borrowed) */
    pier_s3api_lookup_fn lookup; /* credential lookup, as the S3 API's (required) */
    void *lookup_ctx;            /* its context */
} pier_jobhttp_options;

pier_handler *pier_jobhttp_new(const pier_jobhttp_options *opts);
/* pier_jobhttp_new + pier_server_add with path_prefix PIER_JOBHTTP_PATH. */
void pier_jobhttp_register(pier_server *srv, const pier_jobhttp_options *opts);
/* Appends "<api_url>/_pier/codepipeline" (the value for
 * AWS_ENDPOINT_URL_CODEPIPELINE) to out. */
int pier_jobhttp_endpoint(pier_buf *out, const char *api_url);

#endif
