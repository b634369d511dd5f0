/*
 * sts: the AWS Security Token Service client, query protocol (form-encoded
 * POST, XML answers). For now one call: AssumeRoleWithWebIdentity, which is
 * unsigned (the OIDC token is the proof), so it needs no credentials: it is
 * how keyless web identity (GitHub Actions, EKS IRSA) becomes AWS keys.
 *
 * Errors from STS (<ErrorResponse><Error><Code>..) become one line naming
 * the endpoint, the role, the code and STS's message; retries follow the
 * standard policy, with IDPCommunicationError (the identity provider was
 * slow to answer STS) also treated as transient, as the SDKs do.
 *
 * Secrets: the web identity token and the returned secret and session
 * token never appear in a message or a log line.
 */
#ifndef PIER_STS_H
#define PIER_STS_H

#include "aws/config.h"
#include "aws/credentials.h"
#include "aws/retry.h"

/* The STS endpoint: the configured one (AWS_ENDPOINT_URL_STS and the rest
 * of config.h's precedence), else https://sts.REGION.amazonaws.com
 * (.amazonaws.com.cn for cn- regions), else https://sts.amazonaws.com when
 * no region is set. *out is malloc'ed. PIER_EINVALID for a region that is
 * not a region name. */
int pier_sts_endpoint(const pier_aws_config *cfg, char **out);

typedef struct {
    const char *endpoint;           /* from pier_sts_endpoint */
    const char *role_arn;           /* arn:aws:iam::ACCOUNT:role/NAME */
    const char *role_session_name;  /* names the session in CloudTrail */
    const char *web_identity_token; /* the OIDC token itself (a secret) */
    const char *duration_seconds;   /* NULL: the role's default (1 hour) */
    pier_retry *retry;              /* the retry policy (borrowed; required) */
    long connect_timeout_ms;        /* 0: 2000 */
    long timeout_ms;                /* per attempt; 0: 10000 */
} pier_sts_web_identity_request;

/* Calls AssumeRoleWithWebIdentity and fills out's key id, secret, session
 * token and expiration; out->provider is NULL and out->source the assumed
 * role's ARN (the caller may replace both). PIER_EAUTH when STS refuses,
 * PIER_EIO / PIER_ETIMEOUT when it cannot be reached, PIER_EINVALID for an
 * answer without credentials. */
int pier_sts_assume_role_with_web_identity(pier_credentials *out,
                                           const pier_sts_web_identity_request *req);

#endif
