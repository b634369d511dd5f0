/*
 * credentials: see credentials.h.
 *
 * Shape: the chain over the providers of credproviders.c, one fetch
 * function each with the contract stated in credentialsinternal.h. The
 * chain resolves once (first that answers), collecting each skipped
 * provider's reason into the summary, then refreshes only from that
 * provider; a cached answer is handed out as a copy until it comes within
 * the refresh margin of its expiry. This file also holds the credentials
 * value (clear, copy, mask) and the helpers the providers share.
 *
 * Costs: a resolve reads the environment and both shared files; the HTTP
 * providers make one to three short requests each. All of it happens under
 * the chain's mutex, at most once per credential lifetime.
 */
#include "aws/credentials.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/credentialsinternal.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"

#define REASON_MAX 200 /* characters of one provider's reason in the summary */

typedef enum {
    P_ENV,
    P_PROFILE,
    P_WEB,
    P_CONTAINER,
    P_IMDS,
    P_COUNT,
    P_STATIC,
    P_NONE
} provider_id;

static const char *const provider_names[P_COUNT] = {"env", "profile", "web-identity", "container",
                                                    "imds"};

static int64_t system_clock(void *ctx)
{
    (void)ctx;
    return (int64_t)time(NULL);
}

/* ---- the credentials value ---- */

void pier_credentials_wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *p = s;
    while (*p)
        *p++ = 0;
    free(s);
}

void pier_credentials_clear(pier_credentials *c)
{
    if (!c)
        return;
    free(c->access_key_id);
    pier_credentials_wipe_free(c->secret_access_key);
    pier_credentials_wipe_free(c->session_token);
    free(c->source);
    memset(c, 0, sizeof *c);
}

static char *dup_or_null(const char *s)
{
    return s ? pier_strdup(s) : NULL;
}

void pier_credentials_copy(pier_credentials *dst, const pier_credentials *src)
{
    dst->access_key_id = dup_or_null(src->access_key_id);
    dst->secret_access_key = dup_or_null(src->secret_access_key);
    dst->session_token = dup_or_null(src->session_token);
    dst->expiration = src->expiration;
    dst->provider = src->provider;
    dst->source = dup_or_null(src->source);
}

void pier_credentials_mask(char *out, size_t size, const char *access_key_id)
{
    size_t n = access_key_id ? strlen(access_key_id) : 0;
    snprintf(out, size, "****%s", n >= 8 ? access_key_id + n - 4 : "");
}

void pier_credentials_fill(pier_credentials *out, const char *akid, const char *secret,
                           const char *token, int64_t expiration, const char *provider,
                           const char *source)
{
    memset(out, 0, sizeof *out);
    out->access_key_id = pier_strdup(akid);
    out->secret_access_key = pier_strdup(secret);
    out->session_token = token && *token ? pier_strdup(token) : NULL;
    out->expiration = expiration;
    out->provider = provider;
    out->source = pier_strdup(source);
}

/* ---- small helpers ---- */

/* ---- the chain ---- */

typedef int (*fetch_fn)(pier_credentials_fetch_ctx *f, pier_credentials *out);
static const fetch_fn fetchers[P_COUNT] = {
    pier_credentials_fetch_env, pier_credentials_fetch_profile, pier_credentials_fetch_web_identity,
    pier_credentials_fetch_container, pier_credentials_fetch_imds};

int pier_credentials_chain_new(pier_credentials_chain **out, const pier_credentials_options *opts)
{
    pier_credentials_options def = PIER_CREDENTIALS_OPTIONS_INIT;
    if (!opts)
        opts = &def;
    pier_credentials_chain *ch = pier_calloc(1, sizeof *ch);
    pthread_mutex_init(&ch->lock, NULL);
    ch->profile = opts->profile && *opts->profile ? pier_strdup(opts->profile) : NULL;
    ch->getenv = opts->getenv;
    ch->getenv_ctx = opts->getenv_ctx;
    ch->clock = opts->clock ? opts->clock : system_clock;
    ch->clock_ctx = opts->clock_ctx;
    ch->retry = opts->retry;
    ch->connect_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 2000;
    ch->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
    ch->imds_connect_ms = opts->imds_connect_timeout_ms > 0 ? opts->imds_connect_timeout_ms : 1000;
    ch->imds_timeout_ms = opts->imds_timeout_ms > 0 ? opts->imds_timeout_ms : 2000;
    ch->margin = opts->refresh_margin_s > 0 ? opts->refresh_margin_s : 300;
    ch->chosen = P_NONE;
    *out = ch;
    return 0;
}

int pier_credentials_chain_new_static(pier_credentials_chain **out, const char *access_key_id,
                                      const char *secret_access_key, const char *session_token)
{
    if (!access_key_id || !*access_key_id || !secret_access_key || !*secret_access_key)
        return pier_error_set(PIER_EINVALID, "static credentials need a key id and a secret");
    pier_credentials_chain_new(out, NULL);
    pier_credentials_chain *ch = *out;
    pier_credentials_fill(&ch->cached, access_key_id, secret_access_key, session_token, 0, "static",
                          "given by the caller");
    ch->have = true;
    ch->chosen = P_STATIC;
    return 0;
}

void pier_credentials_chain_free(pier_credentials_chain *ch)
{
    if (!ch)
        return;
    pier_credentials_clear(&ch->cached);
    if (ch->own_retry)
        pier_retry_free(ch->retry);
    pier_credentials_wipe_free(ch->imds_token);
    free(ch->imds_token_endpoint);
    free(ch->profile);
    pthread_mutex_destroy(&ch->lock);
    free(ch);
}

static int load_config(pier_credentials_chain *ch, pier_aws_config **cfg)
{
    pier_aws_config_options o = PIER_AWS_CONFIG_OPTIONS_INIT;
    o.profile = ch->profile;
    o.getenv = ch->getenv;
    o.getenv_ctx = ch->getenv_ctx;
    int rc = pier_aws_config_load(cfg, &o);
    if (rc == 0 && !ch->retry) {
        pier_retry_options ro = PIER_RETRY_OPTIONS_INIT;
        ro.max_attempts = pier_aws_config_max_attempts(*cfg);
        pier_retry_new(&ch->retry, &ro);
        ch->own_retry = true;
    }
    return rc;
}

/* Checks what a provider returned: already-expired credentials are a
 * failure (a wrong clock or a stale cache upstream). */
static int check_fresh(const pier_credentials *c, int64_t now, const char *name)
{
    if (c->expiration != 0 && c->expiration <= now) {
        char when[32];
        pier_time_iso8601(when, sizeof when, (time_t)c->expiration);
        return pier_error_set(PIER_EAUTH,
                              "%s returned credentials that expired at %s (is this "
                              "machine's clock right?)",
                              name, when);
    }
    return 0;
}

static void add_reason(pier_buf *b, const char *label)
{
    char reason[REASON_MAX + 4];
    const char *msg = pier_error_last();
    pier_str_snippet(reason, sizeof reason, msg, strlen(msg), REASON_MAX);
    pier_buf_printf(b, "%s%s: %s", b->len ? "; " : "", label, *reason ? reason : "failed");
}

static int resolve(pier_credentials_chain *ch, pier_credentials_fetch_ctx *f, pier_credentials *out)
{
    pier_aws_config *cfg = f->cfg;
    if (pier_aws_config_profile_explicit(cfg) && !pier_aws_config_profile_exists(cfg)) {
        bool ce, fe;
        const char *cf = pier_aws_config_config_file(cfg, &ce);
        const char *cr = pier_aws_config_credentials_file(cfg, &fe);
        return pier_error_set(
            PIER_ENOTFOUND, "AWS profile '%s' (%s) is in neither %s nor %s",
            pier_aws_config_profile(cfg),
            pier_aws_config_profile_from_option(cfg) ? "--profile" : "AWS_PROFILE", cr, cf);
    }
    pier_buf reasons;
    pier_buf_init(&reasons, 8192);
    const char *failed = NULL; /* a configured provider that failed */
    int rc = PIER_EAUTH;
    for (int p = 0; p < P_COUNT; p++) {
        char label[96];
        if (p == P_PROFILE)
            snprintf(label, sizeof label, "profile %s", pier_aws_config_profile(cfg));
        else
            snprintf(label, sizeof label, "%s", provider_names[p]);
        pier_error_clear();
        int prc = fetchers[p](f, out);
        if (prc == 0) {
            prc = check_fresh(out, f->now, provider_names[p]);
            if (prc != 0)
                pier_credentials_clear(out);
        }
        if (prc == 0) {
            if (failed)
                PIER_WARN("AWS credentials: %s failed (%s); using %s", failed,
                          pier_buf_cstr(&reasons), provider_names[p]);
            PIER_DEBUG("AWS credentials from %s: %s", provider_names[p], out->source);
            ch->chosen = (provider_id)p;
            rc = 0;
            break;
        }
        if (prc != PIER_ENOTFOUND && !failed)
            failed = provider_names[p];
        add_reason(&reasons, label);
    }
    if (rc != 0)
        rc = pier_error_set(PIER_EAUTH, "no AWS credentials found: %s", pier_buf_cstr(&reasons));
    pier_buf_free(&reasons);
    return rc;
}

static bool usable(const pier_credentials_chain *ch, int64_t now)
{
    return ch->have && (ch->cached.expiration == 0 || now < ch->cached.expiration - ch->margin);
}

int pier_credentials_get(pier_credentials_chain *ch, pier_credentials *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ch->lock);
    int64_t now = ch->clock(ch->clock_ctx);
    int rc = 0;
    pier_aws_config *cfg = NULL;
    if (usable(ch, now))
        goto copy;
    if (ch->chosen == P_STATIC) /* static credentials never expire */
        goto copy;
    rc = load_config(ch, &cfg);
    if (rc != 0)
        goto done;
    pier_credentials_fetch_ctx f = {ch, cfg, now};
    pier_credentials fresh = {0};
    if (ch->chosen == P_NONE) {
        rc = resolve(ch, &f, &fresh);
    } else {
        rc = fetchers[ch->chosen](&f, &fresh);
        if (rc == 0) {
            rc = check_fresh(&fresh, now, provider_names[ch->chosen]);
            if (rc != 0)
                pier_credentials_clear(&fresh);
        }
        if (rc != 0) {
            if (ch->have && (ch->cached.expiration == 0 || now < ch->cached.expiration)) {
                PIER_WARN("refreshing AWS credentials from %s failed: %s; the current ones stay "
                          "valid until they expire",
                          provider_names[ch->chosen], pier_error_last());
                rc = 0;
                goto copy;
            }
            rc = pier_error_wrap(rc, "refreshing AWS credentials from %s",
                                 provider_names[ch->chosen]);
        }
    }
    if (rc != 0)
        goto done;
    pier_credentials_clear(&ch->cached);
    ch->cached = fresh;
    ch->have = true;
copy:
    pier_credentials_copy(out, &ch->cached);
done:
    pier_aws_config_free(cfg);
    pthread_mutex_unlock(&ch->lock);
    return rc;
}

void pier_credentials_invalidate(pier_credentials_chain *ch)
{
    pthread_mutex_lock(&ch->lock);
    if (ch->chosen != P_STATIC) {
        pier_credentials_clear(&ch->cached);
        ch->have = false;
    }
    pthread_mutex_unlock(&ch->lock);
}
