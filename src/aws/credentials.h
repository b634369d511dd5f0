/*
 * credentials: the AWS SDKs' credential provider chain, keyless first.
 *
 * Providers, in order; the first that answers wins:
 *   env           AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN]
 *                 (skipped when a profile is given explicitly as an option,
 *                 as the AWS CLI's --profile does)
 *   profile       the selected profile of ~/.aws/credentials and ~/.aws/config
 *                 (see config.h): role_arn + web_identity_token_file
 *                 [+ role_session_name, duration_seconds], else
 *                 aws_access_key_id + aws_secret_access_key
 *                 [+ aws_session_token], else credential_process (run with
 *                 /bin/sh -c, JSON on stdout: Version 1, AccessKeyId,
 *                 SecretAccessKey, SessionToken, Expiration)
 *   web-identity  AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *                 [+ AWS_ROLE_SESSION_NAME]: STS AssumeRoleWithWebIdentity
 *                 (query protocol, unsigned) at the STS endpoint of
 *                 config.h, else https://sts.REGION.amazonaws.com, else
 *                 https://sts.amazonaws.com; the token file is read again
 *                 on every refresh (it rotates)
 *   container     AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on
 *                 http://169.254.170.2) or AWS_CONTAINER_CREDENTIALS_FULL_URI
 *                 (https, or http to loopback, 169.254.170.2, 169.254.170.23
 *                 or fd00:ec2::23), Authorization from
 *                 AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (read each refresh)
 *                 or AWS_CONTAINER_AUTHORIZATION_TOKEN: CodeBuild, ECS, EKS
 *                 Pod Identity, pier's own stack
 *   imds          EC2 instance metadata, IMDSv2 only: a session token (PUT,
 *                 TTL 21600 s, cached), the role name, the role's
 *                 credentials; AWS_EC2_METADATA_SERVICE_ENDPOINT (default
 *                 http://169.254.169.254); AWS_EC2_METADATA_DISABLED=true
 *                 skips it; 1 s to connect, 2 s per request, so a laptop
 *                 fails fast
 *
 * A provider that is not configured is passed over; one that is configured
 * but fails is passed over too, with a warning when a later one answers.
 * When none answers, the error (PIER_EAUTH) lists each provider and why:
 *   "no AWS credentials found: env: AWS_ACCESS_KEY_ID not set; profile
 *    default: ...; web-identity: ...; container: ...; imds: ..."
 * A profile named explicitly (the option or AWS_PROFILE) that exists in
 * neither file is an error at once, as in the SDKs.
 *
 * Caching: the chain remembers the provider that answered and its
 * credentials; pier_credentials_get hands out a copy, refreshing first when
 * they expire within the refresh margin (5 minutes; static ones never). If
 * a refresh fails while the old credentials are still valid, those are
 * used (with a warning). Thread-safe: one mutex; one refresh at a time,
 * other callers wait for it.
 *
 * Secrets: no secret or token is ever logged or put in an error message;
 * the source string names only where credentials came from.
 *
 * Ownership: the chain belongs to its creator (pier_credentials_chain_free);
 * a pier_credentials filled by pier_credentials_get belongs to the caller
 * (pier_credentials_clear wipes and frees it).
 */
#ifndef PIER_CREDENTIALS_H
#define PIER_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/config.h"
#include "aws/retry.h"

typedef struct {
    char *access_key_id;     /* AKIA... / ASIA... */
    char *secret_access_key; /* never printed */
    char *session_token;     /* NULL for long-term keys; never printed */
    int64_t expiration;      /* seconds since the epoch; 0: does not expire */
    const char *provider;    /* "static", "env", "profile", "web-identity", "container", "imds" */
    char *source;            /* where from, for people: a profile, URL or role */
} pier_credentials;

/* Frees the strings (the secret and token are zeroed first) and resets. */
void pier_credentials_clear(pier_credentials *c);
/* A deep copy into dst (dst's old content is not freed). */
void pier_credentials_copy(pier_credentials *dst, const pier_credentials *src);

/* Seconds since the epoch. */
typedef int64_t (*pier_credentials_clock_fn)(void *ctx);

typedef struct {
    const char *profile;             /* explicit profile (--profile); NULL: AWS_PROFILE/default */
    pier_aws_getenv_fn getenv;       /* NULL: the process environment */
    void *getenv_ctx;                /* its context */
    pier_credentials_clock_fn clock; /* NULL: time() */
    void *clock_ctx;                 /* its context */
    pier_retry *retry;               /* policy for STS and container calls (borrowed); NULL: own */
    long connect_timeout_ms;         /* STS and container; 0: 2000 */
    long timeout_ms;                 /* STS and container, per request; 0: 10000 */
    long imds_connect_timeout_ms;    /* 0: 1000 */
    long imds_timeout_ms;            /* per request; 0: 2000 */
    int refresh_margin_s;            /* refresh this long before expiry; 0: 300 */
} pier_credentials_options;

#define PIER_CREDENTIALS_OPTIONS_INIT                                                              \
    {                                                                                              \
        NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0                                          \
    }

typedef struct pier_credentials_chain pier_credentials_chain;

/* Makes a chain; nothing is resolved until the first get. */
int pier_credentials_chain_new(pier_credentials_chain **out, const pier_credentials_options *opts);
/* A chain that always answers these keys (provider "static"): for the
 * embedded stack and tests. The strings are copied; token may be NULL. */
int pier_credentials_chain_new_static(pier_credentials_chain **out, const char *access_key_id,
                                      const char *secret_access_key, const char *session_token);
void pier_credentials_chain_free(pier_credentials_chain *ch);

/* Current credentials into *out (a copy the caller clears), resolving or
 * refreshing as needed. PIER_EAUTH with the list of reasons when none. */
int pier_credentials_get(pier_credentials_chain *ch, pier_credentials *out);
/* Forgets the cached credentials (after an ExpiredToken or
 * InvalidClientTokenId answer); the next get fetches again from the same
 * provider. */
void pier_credentials_invalidate(pier_credentials_chain *ch);

/* "****WXYZ": the key id's last 4 characters, for display. out >= 9 bytes. */
void pier_credentials_mask(char *out, size_t size, const char *access_key_id);

#endif
