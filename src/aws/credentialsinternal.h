/*
 * credentialsinternal: what credentials.c (the chain: resolve, cache,
 * refresh, the summary of reasons) and credproviders.c (the providers: env,
 * profile with credential_process, web identity, container, IMDSv2) share,
 * and nothing else includes. The chain struct, the context of one fetch, the
 * providers' fetch functions (defined in credproviders.c) and the small
 * helpers both use (defined in credentials.c).
 *
 * Every fetch function has one contract: fill *out and return 0; return
 * PIER_ENOTFOUND when the provider is not configured here; return another
 * negative code when it is configured but failed. Either way the one-line
 * reason is the thread's last error, which the chain copies into its
 * summary. Fetches run under the chain's mutex.
 */
#ifndef PIER_AWS_CREDENTIALSINTERNAL_H
#define PIER_AWS_CREDENTIALSINTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/config.h"
#include "aws/credentials.h"
#include "aws/retry.h"

struct pier_credentials_chain {
    pthread_mutex_t lock;            /* guards everything below */
    char *profile;                   /* the explicit profile option, or NULL */
    pier_aws_getenv_fn getenv;       /* injected environment, or NULL */
    void *getenv_ctx;                /* its context */
    pier_credentials_clock_fn clock; /* wall clock */
    void *clock_ctx;                 /* its context */
    pier_retry *retry;               /* policy for STS / container calls */
    bool own_retry;                  /* we made it */
    long connect_ms;                 /* STS / container connect timeout */
    long timeout_ms;                 /* STS / container request timeout */
    long imds_connect_ms;            /* IMDS connect timeout */
    long imds_timeout_ms;            /* IMDS request timeout */
    int margin;                      /* refresh this many seconds before expiry */
    int chosen;                      /* who answered last: a provider_id of credentials.c */
    bool have;                       /* cached is filled */
    pier_credentials cached;         /* the current credentials */
    char *imds_token;                /* IMDSv2 session token, or NULL */
    char *imds_token_endpoint;       /* the endpoint it is for */
    int64_t imds_token_expiry;       /* when it stops being valid */
};

/* One fetch: the chain plus what the resolve loaded. */
typedef struct {
    pier_credentials_chain *ch; /* the chain (locked) */
    pier_aws_config *cfg;       /* environment and shared files */
    int64_t now;                /* the clock at the start of the fetch */
} pier_credentials_fetch_ctx;

/* Frees s after zeroing it (a secret or token); NULL is fine. */
void pier_credentials_wipe_free(char *s);
/* Fills *out (zeroed first) with copies of the strings; an empty token is
 * none. provider is a static string; source is copied. */
void pier_credentials_fill(pier_credentials *out, const char *akid, const char *secret,
                           const char *token, int64_t expiration, const char *provider,
                           const char *source);

/* The providers, in the chain's order (credproviders.c). */
int pier_credentials_fetch_env(pier_credentials_fetch_ctx *f, pier_credentials *out);
int pier_credentials_fetch_profile(pier_credentials_fetch_ctx *f, pier_credentials *out);
int pier_credentials_fetch_web_identity(pier_credentials_fetch_ctx *f, pier_credentials *out);
int pier_credentials_fetch_container(pier_credentials_fetch_ctx *f, pier_credentials *out);
int pier_credentials_fetch_imds(pier_credentials_fetch_ctx *f, pier_credentials *out);

#endif
