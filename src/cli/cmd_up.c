/*
 * cmd_up: `pier up [DIR]` runs the embedded stack and every pipeline of
 * DIR/pier.yml until SIGINT/SIGTERM; `pier run PIPELINE` starts a run now.
 *
 * Layout of DIR/.pier/ (the data directory):
 *   stack/        the embedded stack (store, administrator credential)
 *   state.db      runs and stages (SQLite, pipeline/state.h)
 *   git/ work/ logs/ cache/   the engine's (pipeline/engine.h)
 *   up.pid        the running `pier up` (removed on a clean stop)
 *   triggers/     `pier run` talks to a running `pier up` through this
 *                 spool: it writes <pipeline>.<nonce>.req, `pier up` picks
 *                 it up within 200 ms, queues the run and answers with
 *                 <nonce>.resp holding the run id. Only processes that can
 *                 write DIR/.pier (0700) can trigger runs.
 * With no `pier up` running, `pier run` brings the stack up itself, runs
 * the pipeline once and stops.
 *
 * The engine's hooks are wired here, where the stack and the pipeline
 * meet:
 *   grant       a credentials-service grant per build, scoped to the
 *               pipeline's bucket (and prefix) and distribution
 *               (AWS_CONTAINER_CREDENTIALS_FULL_URI + _AUTHORIZATION_TOKEN);
 *   deploy, invalidate   pipeline/publish.c over the stack's S3 and
 *               CloudFront APIs, signed with session credentials that pier
 *               fetches from its own grant over the same endpoint (the
 *               administrator key is never handed to a build);
 *   action      pipeline/action.c with one job registry, served as the
 *               CodePipeline job API on the API listener, and a grant per
 *               action (also codepipeline:*); the job is bound to the
 *               grant's session key.
 * The stack serves one distribution per pipeline on the edge listener
 * (Host = the pipeline's host) and the webhook endpoint of every pipeline
 * with a webhook trigger.
 */
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aws/credentials.h"
#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "cli/commands.h"
#include "deploy/rules.h"
#include "pipeline/action.h"
#include "pipeline/engine.h"
#include "pipeline/jobapi.h"
#include "pipeline/pipeconf.h"
#include "pipeline/publish.h"
#include "pipeline/state.h"
#include "stack/dashboard.h"
#include "stack/stack.h"
#include "stack/store.h"

typedef struct {
    const char *dir;               /* the project (holds pier.yml) */
    char *data;                    /* DIR/.pier or --data */
    const char *api_listen;        /* --api-listen */
    const char *edge_listen;       /* --edge-listen */
    bool no_poll;                  /* --no-poll */
    pier_pipeconf *conf;           /* pier.yml */
    pier_stack *stack;             /* the embedded stack */
    pier_state *state;             /* state.db */
    pier_engine *engine;           /* the pipelines */
    pier_credentials_chain *creds; /* signs deploys and invalidations */
    char *cdn_endpoint;            /* CloudFront API of the stack, or NULL */
    pier_jobapi *jobs;             /* invoke actions' jobs (the job API reports here) */
    char *codepipeline_endpoint;   /* AWS_ENDPOINT_URL_CODEPIPELINE */
    pthread_mutex_t engine_mu;     /* guards engine for the webhook threads */
    pier_credsvc_grant own;        /* pier's own grant (deploy, invalidate) */
    char own_env[2][400];          /* its FULL_URI and token, read by creds_getenv */
    const char *dashboard_listen;  /* --dashboard-listen (default 127.0.0.1:9090) */
    bool no_dashboard;             /* --no-dashboard */
    bool dashboard_wanted;         /* `pier up` (not `pier run`): start it */
    pier_dashboard *dashboard;     /* the dashboard listener, or NULL */
    char *dashboard_token;         /* its token when the bind is not loopback */
    bool dashboard_token_new;      /* made at this start (shown once) */
} up_session;

/* ---- grants ---- */

/* A grant scoped to the pipeline's bucket (prefix) and distribution, plus
 * extra actions (NULL: s3:* and cloudfront:*). */
static int pipeline_grant(up_session *u, const pier_pipeconf_pipeline *p, bool codepipeline,
                          int64_t ttl_s, pier_credsvc_grant *g)
{
    char bucket[512];
    if (p->prefix && p->prefix[0])
        snprintf(bucket, sizeof bucket, "%s/%s", p->bucket, p->prefix);
    else
        snprintf(bucket, sizeof bucket, "%s", p->bucket);
    const char *buckets[] = {bucket};
    const char *dists[] = {p->distribution};
    const char *actions[] = {"s3:*", "cloudfront:*", "codepipeline:*"};
    pier_credsvc_scope sc = {
        .name = p->name,
        .buckets = buckets,
        .bucket_count = 1,
        .distributions = dists,
        .distribution_count = 1,
        .actions = actions,
        .action_count = codepipeline ? 3 : 2,
        .ttl_s = ttl_s > PIER_CREDSVC_MAX_TTL ? PIER_CREDSVC_MAX_TTL : ttl_s,
    };
    return pier_credsvc_grant_new(pier_stack_credsvc(u->stack), &sc, g);
}

/* The credential chain's environment: only the container endpoint of
 * pier's own grant. */
static const char *creds_getenv(void *ctx, const char *name)
{
    up_session *u = ctx;
    if (strcmp(name, "AWS_CONTAINER_CREDENTIALS_FULL_URI") == 0)
        return u->own_env[0];
    if (strcmp(name, "AWS_CONTAINER_AUTHORIZATION_TOKEN") == 0)
        return u->own_env[1];
    return NULL;
}

/* ---- hooks ---- */

static void fill_publish(up_session *u, const pier_engine_run *run, pier_publish_options *o)
{
    memset(o, 0, sizeof *o);
    o->endpoint = pier_stack_api_url(u->stack);
    o->cdn_endpoint = u->cdn_endpoint;
    o->credentials = u->creds;
    o->bucket = run->pipeline->bucket;
    o->prefix = run->pipeline->prefix;
    o->rules_file = run->pipeline->rules_file;
    o->site_doc = u->conf->doc;
    o->site_rules = run->pipeline->site;
    o->log = run->log;
}

static int hook_grant(void *ctx, const pier_engine_run *run, pier_engine_grant *out)
{
    up_session *u = ctx;
    memset(out, 0, sizeof *out);
    const pier_pipeconf_pipeline *p = run->pipeline;
    pier_credsvc_grant g;
    int64_t ttl = (int64_t)(p->timeout_sec ? p->timeout_sec : 3600) + 600;
    int rc = pipeline_grant(u, p, false, ttl, &g);
    if (rc != 0)
        return rc;
    out->credentials_uri = pier_strdup(g.uri);
    out->credentials_token = pier_strdup(g.token);
    memset(&g, 0, sizeof g);
    out->s3_endpoint = pier_strdup(pier_stack_api_url(u->stack));
    if (u->cdn_endpoint)
        out->cloudfront_endpoint = pier_strdup(u->cdn_endpoint);
    out->codepipeline_endpoint = pier_strdup(u->codepipeline_endpoint);
    return 0;
}

/* ---- invoke actions ---- */

typedef struct {
    const pier_engine_run *run;    /* the run */
    const pier_pipeconf_action *a; /* the action */
    const char *secrets[3];        /* the action's token, session secret and session token */
} action_ctx;

static void action_log(void *ctx, bool is_stderr, const char *line)
{
    action_ctx *c = ctx;
    pier_engine_log(c->run->log, "action %s%s: %s", c->a->name, is_stderr ? " (stderr)" : "", line);
}

static void action_mask(void *ctx, pier_buf *text)
{
    action_ctx *c = ctx;
    if (c->run->mask)
        c->run->mask(c->run->mask_ctx, text);
    for (size_t i = 0; i < 3; i++) {
        const char *v = c->secrets[i];
        size_t vl = v ? strlen(v) : 0;
        if (vl == 0 || !text->ptr || !strstr(text->ptr, v))
            continue;
        pier_buf out = PIER_BUF_INIT;
        for (const char *p = text->ptr, *hit; p; p = hit ? hit + vl : NULL) {
            hit = strstr(p, v);
            pier_buf_put(&out, p, hit ? (size_t)(hit - p) : strlen(p));
            if (hit)
                pier_buf_puts(&out, "***");
        }
        pier_buf_reset(text);
        pier_buf_put(text, out.ptr ? out.ptr : "", out.len);
        pier_buf_free(&out);
    }
}

static int hook_action(void *ctx, const pier_engine_run *run, const pier_pipeconf_action *a,
                       const char *artifact_dir)
{
    up_session *u = ctx;
    const pier_pipeconf_pipeline *p = run->pipeline;
    unsigned timeout = a->timeout_sec ? a->timeout_sec : 300;
    pier_credsvc_grant g;
    pier_credsvc_session sess;
    memset(&sess, 0, sizeof sess);
    int rc = pipeline_grant(u, p, true, (int64_t)timeout + 300, &g);
    if (rc != 0)
        return rc;
    if ((rc = pier_credsvc_fetch(pier_stack_credsvc(u->stack), g.id, g.token, &sess)) != 0) {
        pier_credsvc_revoke(pier_stack_credsvc(u->stack), g.id);
        return rc;
    }
    pier_buf e0 = PIER_BUF_INIT, e1 = PIER_BUF_INIT;
    pier_buf_printf(&e0, "AWS_CONTAINER_CREDENTIALS_FULL_URI=%s", g.uri);
    pier_buf_printf(&e1, "AWS_CONTAINER_AUTHORIZATION_TOKEN=%s", g.token);
    const char *env[] = {pier_buf_cstr(&e0), pier_buf_cstr(&e1)};
    char expiration[32];
    pier_time_iso8601(expiration, sizeof expiration, (time_t)sess.expires);
    pier_jobapi_artifact input = {
        .name = "BuildArtifact",
        .revision = run->commit,
        .bucket = p->bucket,
        .key = p->prefix,
    };
    action_ctx ac = {run, a, {g.token, sess.secret_access_key, sess.session_token}};
    pier_action_options o = {
        .name = a->name,
        .command = a->command,
        .cwd = artifact_dir,
        .jobs = u->jobs,
        .job =
            {
                .function_name = a->name,
                .user_parameters = a->user_parameters,
                .inputs = &input,
                .input_count = 1,
                .access_key_id = sess.access_key_id,
                .secret_access_key = sess.secret_access_key,
                .session_token = sess.session_token,
                .expiration = expiration,
                .owner_key_id = sess.access_key_id,
                .pipeline = p->name,
                .action = a->name,
            },
        .env = env,
        .env_count = 2,
        .codepipeline_endpoint = u->codepipeline_endpoint,
        .cloudfront_endpoint = u->cdn_endpoint,
        .s3_endpoint = pier_stack_api_url(u->stack),
        .region = "us-east-1",
        .timeout_sec = timeout,
        .log = action_log,
        .log_ctx = &ac,
        .mask = action_mask,
        .mask_ctx = &ac,
    };
    pier_action_result res;
    memset(&res, 0, sizeof res);
    rc = pier_action_run(&o, &res);
    if (rc == 0 && res.status == PIER_ACTION_SUCCEEDED) {
        pier_engine_log(run->log, "action %s: Succeeded%s%s", a->name, res.summary ? ": " : "",
                        res.summary ? res.summary : "");
    } else if (rc == 0) {
        pier_buf m = PIER_BUF_INIT;
        pier_buf_printf(&m, "%s: %s", pier_action_status_name(res.status),
                        res.message ? res.message : "failed");
        if (res.stderr_tail && res.stderr_tail[0] &&
            !(res.message && strstr(res.message, "stderr"))) {
            /* the tail on one line, its last 600 bytes at most */
            size_t n = strlen(res.stderr_tail);
            const char *t = n > 600 ? res.stderr_tail + n - 600 : res.stderr_tail;
            pier_buf_puts(&m, "; stderr: ");
            for (; *t; t++)
                pier_buf_putc(&m, *t == '\n' ? '|' : *t);
        }
        pier_engine_log(run->log, "action %s: %s", a->name, pier_buf_cstr(&m));
        rc = pier_error_set(PIER_ERR, "%s", pier_buf_cstr(&m));
        pier_buf_free(&m);
    }
    pier_action_result_clear(&res);
    pier_credsvc_revoke(pier_stack_credsvc(u->stack), g.id);
    memset(&g, 0, sizeof g);
    memset(&sess, 0, sizeof sess);
    pier_buf_free(&e0);
    if (e1.ptr)
        memset(e1.ptr, 0, e1.len);
    pier_buf_free(&e1);
    return rc;
}

static int hook_deploy(void *ctx, const pier_engine_run *run, const char *dir,
                       pier_engine_deploy_result *out)
{
    up_session *u = ctx;
    pier_publish_options o;
    fill_publish(u, run, &o);
    return pier_publish_deploy(&o, dir, out);
}

static int hook_invalidate(void *ctx, const pier_engine_run *run, char *const *paths, size_t n,
                           const char *caller_reference, char **invalidation_id)
{
    up_session *u = ctx;
    if (!u->cdn_endpoint) {
        /* No caching edge in this stack: nothing holds an old copy. */
        pier_engine_log(run->log, "invalidate: the stack has no CDN; nothing is cached");
        *invalidation_id = pier_strdup("none");
        return 0;
    }
    pier_publish_options o;
    fill_publish(u, run, &o);
    return pier_publish_invalidate(&o, run->pipeline->distribution, paths, n, caller_reference,
                                   invalidation_id);
}

/* ---- webhooks ---- */

/* The pipeline's secret (trigger.webhook secret-env or secret-file) and
 * branch; a pipeline without a webhook trigger is unknown here (404). */
static int webhook_lookup(void *ctx, const char *pipeline, char **secret, char **branch)
{
    up_session *u = ctx;
    const pier_pipeconf_pipeline *p = pier_pipeconf_find(u->conf, pipeline);
    if (!p || !p->webhook)
        return pier_error_set(PIER_ENOTFOUND, "no pipeline '%s' with a webhook trigger", pipeline);
    *secret = NULL;
    if (p->webhook_secret_env) {
        const char *v = getenv(p->webhook_secret_env);
        if (v && *v)
            *secret = pier_strdup(v);
        else
            PIER_WARN("pipeline %s: webhook secret variable %s is not set: refusing the request",
                      p->name, p->webhook_secret_env);
    } else if (p->webhook_secret_file) {
        pier_buf b = PIER_BUF_INIT;
        if (pier_file_read(p->webhook_secret_file, &b) == 0 && b.ptr) {
            while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r'))
                b.ptr[--b.len] = 0;
            if (b.len)
                *secret = pier_strdup(b.ptr);
            memset(b.ptr, 0, b.len);
        } else {
            PIER_WARN("pipeline %s: webhook secret file %s: %s", p->name, p->webhook_secret_file,
                      pier_error_last());
        }
        pier_buf_free(&b);
    }
    *branch = pier_strdup(p->branch);
    return 0;
}

static int webhook_trigger(void *ctx, const char *pipeline, const char *trigger, const char *sha,
                           int64_t *run_id)
{
    up_session *u = ctx;
    pthread_mutex_lock(&u->engine_mu);
    int rc = u->engine ? pier_engine_trigger(u->engine, pipeline, trigger, sha, run_id)
                       : pier_error_set(PIER_EIO, "pier is starting or stopping");
    pthread_mutex_unlock(&u->engine_mu);
    return rc;
}

/* ---- the edge ---- */

/* One distribution per pipeline: its id and host, bucket/prefix, and the
 * rules file's and pier.yml `site:` rewrites. */
static int add_site(up_session *u, const pier_pipeconf_pipeline *p)
{
    pier_edge_site *site = NULL;
    int rc = pier_edge_site_new(&site, p->distribution, p->bucket);
    if (rc == 0)
        rc = pier_edge_site_add_host(site, p->host);
    if (rc == 0 && p->prefix && p->prefix[0])
        rc = pier_edge_site_set_prefix(site, p->prefix);
    if (rc == 0 && (p->rules_file || p->site)) {
        site->rules = pier_deploy_rules_new();
        if (p->rules_file)
            rc = pier_deploy_rules_load_file(site->rules, p->rules_file);
        if (rc == 0 && p->site)
            rc = pier_deploy_rules_load_yaml(site->rules, u->conf->doc, p->site);
    }
    if (rc != 0) {
        pier_edge_site_free(site);
        return pier_error_wrap(rc, "pipeline %s: distribution %s", p->name, p->distribution);
    }
    rc = pier_edge_add_site(pier_stack_edge(u->stack), site);
    return rc == 0 ? 0 : pier_error_wrap(rc, "pipeline %s", p->name);
}

/* ---- the session ---- */

/* pier's own deploys and invalidations: one grant over every pipeline's
 * bucket and distribution, its session credentials fetched (and renewed)
 * from the container endpoint by the standard chain. */
static int make_creds(up_session *u)
{
    size_t n = u->conf->count;
    const char **buckets = pier_calloc(n + 1, sizeof *buckets);
    const char **dists = pier_calloc(n + 1, sizeof *dists);
    for (size_t i = 0; i < n; i++) {
        buckets[i] = u->conf->pipelines[i].bucket;
        dists[i] = u->conf->pipelines[i].distribution;
    }
    pier_credsvc_scope sc = {
        .name = "pier",
        .buckets = buckets,
        .bucket_count = n,
        .distributions = dists,
        .distribution_count = n,
        .ttl_s = PIER_CREDSVC_MAX_TTL,
    };
    int rc = pier_credsvc_grant_new(pier_stack_credsvc(u->stack), &sc, &u->own);
    free(buckets);
    free(dists);
    if (rc != 0)
        return rc;
    snprintf(u->own_env[0], sizeof u->own_env[0], "%s", u->own.uri);
    snprintf(u->own_env[1], sizeof u->own_env[1], "%s", u->own.token);
    pier_credentials_options co = PIER_CREDENTIALS_OPTIONS_INIT;
    co.getenv = creds_getenv;
    co.getenv_ctx = u;
    return pier_credentials_chain_new(&u->creds, &co);
}

static void session_close(up_session *u)
{
    pier_dashboard_free(u->dashboard);
    u->dashboard = NULL;
    free(u->dashboard_token);
    u->dashboard_token = NULL;
    pthread_mutex_lock(&u->engine_mu);
    pier_engine *e = u->engine;
    u->engine = NULL;
    pthread_mutex_unlock(&u->engine_mu);
    pier_engine_stop(e);
    pier_state_close(u->state);
    pier_stack_free(u->stack);
    pier_credentials_chain_free(u->creds);
    pier_pipeconf_free(u->conf);
    pier_jobapi_free(u->jobs);
    free(u->cdn_endpoint);
    free(u->codepipeline_endpoint);
    free(u->data);
    memset(&u->own, 0, sizeof u->own);
    memset(u->own_env, 0, sizeof u->own_env);
}

/* The dashboard's listener (`pier up` only, not one-off `pier run`s),
 * started before the engine so that a bad address stops pier before any
 * run; writes DATA/up.json (the edge and dashboard URLs, for `pier status`). */
static int dashboard_open(up_session *u)
{
    const char *listen = u->dashboard_listen ? u->dashboard_listen : "127.0.0.1:9090";
    const char *edge = pier_stack_edge_url(u->stack);
    int rc = 0;
    if (!u->no_dashboard) {
        if (!pier_dashboard_listen_is_loopback(listen)) {
            char *path = pier_path_join(u->data, "dashboard.token");
            rc = pier_dashboard_token(path, &u->dashboard_token, &u->dashboard_token_new);
            free(path);
            if (rc != 0)
                return rc;
        }
        pier_dashboard_options o = {
            .listen = listen,
            .state = u->state,
            .conf = u->conf,
            .data_dir = u->data,
            .edge_url = edge,
            .token = u->dashboard_token,
            .trigger = webhook_trigger,
            .trigger_ctx = u,
        };
        rc = pier_dashboard_start(&u->dashboard, &o);
        if (rc != 0 && !u->dashboard_listen) {
            /* The default port is taken (another pier up): any free port
             * rather than no pipelines; the banner prints where. */
            PIER_WARN("%s; the dashboard takes a free port instead", pier_error_last());
            o.listen = "127.0.0.1:0";
            rc = pier_dashboard_start(&u->dashboard, &o);
        }
        if (rc != 0)
            return rc;
    }
    json_t *info =
        json_pack("{s:o, s:o}", "edge_url", edge ? json_string(edge) : json_null(), "dashboard_url",
                  u->dashboard ? json_string(pier_dashboard_url(u->dashboard)) : json_null());
    pier_buf b = PIER_BUF_INIT;
    pier_json_write(&b, info, true);
    json_decref(info);
    char *path = pier_path_join(u->data, "up.json");
    rc = pier_file_write_atomic(path, b.ptr, b.len, 0600);
    free(path);
    pier_buf_free(&b);
    return rc;
}

static int session_open(up_session *u, bool no_poll)
{
    char *yml = pier_path_join(u->dir, "pier.yml");
    int rc = pier_pipeconf_load(&u->conf, yml);
    free(yml);
    if (rc != 0)
        return rc;
    if (!u->data)
        u->data = pier_path_join(u->dir, ".pier");
    if ((rc = pier_file_mkdirs(u->data, 0700)) != 0)
        return rc;
    char abs[PATH_MAX];
    if (!realpath(u->data, abs))
        return pier_error_set_errno(PIER_EIO, "%s", u->data);
    free(u->data);
    u->data = pier_strdup(abs);
    char *stack_dir = pier_path_join(u->data, "stack");
    pier_stack_options so = {0};
    so.data_dir = stack_dir;
    so.api_listen = u->api_listen ? u->api_listen : "127.0.0.1:9000";
    so.default_bucket = "";
    so.edge_listen = u->edge_listen ? u->edge_listen : "127.0.0.1:8080";
    pier_webhookhttp_options wo = {
        .lookup = webhook_lookup,
        .lookup_ctx = u,
        .trigger = webhook_trigger,
        .trigger_ctx = u,
    };
    so.webhooks = &wo;
    pier_jobapi_new(&u->jobs);
    so.jobs = u->jobs;
    rc = pier_stack_start(&u->stack, &so);
    free(stack_dir);
    if (rc != 0)
        return rc;
    u->cdn_endpoint = pier_strdup(pier_stack_api_url(u->stack));
    {
        pier_buf b = PIER_BUF_INIT;
        pier_jobhttp_endpoint(&b, pier_stack_api_url(u->stack));
        u->codepipeline_endpoint = pier_buf_detach(&b);
    }
    pier_store *store = pier_stack_store(u->stack);
    for (size_t i = 0; i < u->conf->count; i++) {
        const pier_pipeconf_pipeline *p = &u->conf->pipelines[i];
        rc = pier_store_bucket_create(store, p->bucket);
        if (rc != 0 && rc != PIER_EEXISTS)
            return pier_error_wrap(rc, "pipeline %s: bucket %s", p->name, p->bucket);
        pier_store_bucket_set_public(store, p->bucket, true);
        if ((rc = add_site(u, p)) != 0)
            return rc;
    }
    if ((rc = make_creds(u)) != 0)
        return rc;
    char *db = pier_path_join(u->data, "state.db");
    rc = pier_state_open(&u->state, db, false);
    free(db);
    if (rc != 0)
        return rc;
    int recovered = 0;
    pier_state_recover(u->state, &recovered);
    if (recovered)
        PIER_WARN("%d run(s) interrupted by the last stop were marked Failed (interrupted)",
                  recovered);
    if (u->dashboard_wanted && (rc = dashboard_open(u)) != 0)
        return rc;
    pier_engine_options eo = {0};
    eo.data_dir = u->data;
    eo.conf = u->conf;
    eo.state = u->state;
    eo.hooks.ctx = u;
    eo.hooks.grant = hook_grant;
    eo.hooks.deploy = hook_deploy;
    eo.hooks.invalidate = hook_invalidate;
    eo.hooks.action = hook_action;
    eo.no_poll = no_poll;
    eo.keep_work = getenv("PIER_KEEP_WORK") != NULL;
    pier_engine *e = NULL;
    if ((rc = pier_engine_start(&e, &eo)) != 0)
        return rc;
    pthread_mutex_lock(&u->engine_mu);
    u->engine = e;
    pthread_mutex_unlock(&u->engine_mu);
    return 0;
}

static const char up_usage_name[] = "up";

static int parse_common(const char *cmd, int argc, char **argv, int *i, up_session *u)
{
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (strcmp(a, "--api-listen") == 0 && v) {
        u->api_listen = v;
    } else if (strcmp(a, "--edge-listen") == 0 && v) {
        u->edge_listen = v;
    } else if (strcmp(a, "--data") == 0 && v) {
        u->data = pier_strdup(v);
    } else if (strcmp(a, "--dir") == 0 && v) {
        u->dir = v;
    } else {
        return pier_cli_usage_error(cmd, "unknown or incomplete option '%s'", a);
    }
    (*i)++;
    return 0;
}

/* Answers the trigger spool: every <pipeline>.<nonce>.req becomes a run. */
static void serve_triggers(up_session *u, const char *spool)
{
    DIR *d = opendir(spool);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".req") != 0)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 4), de->d_name);
        char *dot = strrchr(name, '.');
        if (!dot)
            continue;
        *dot = 0;
        const char *nonce = dot + 1;
        char *req = pier_path_join(spool, de->d_name);
        pier_buf body = PIER_BUF_INIT;
        pier_file_read(req, &body);
        unlink(req);
        free(req);
        char trigger[32] = "manual";
        char sha[64] = "";
        if (body.ptr)
            sscanf(body.ptr, "%31s %63s", trigger, sha);
        pier_buf_free(&body);
        int64_t id = 0;
        pier_buf resp = PIER_BUF_INIT;
        if (pier_engine_trigger(u->engine, name, trigger, sha[0] && strcmp(sha, "-") ? sha : NULL,
                                &id) == 0)
            pier_buf_printf(&resp, "ok %lld\n", (long long)id);
        else
            pier_buf_printf(&resp, "error %s\n", pier_error_last());
        pier_buf rp = PIER_BUF_INIT;
        pier_buf_printf(&rp, "%s/%s.resp", spool, nonce);
        pier_file_write_atomic(pier_buf_cstr(&rp), resp.ptr, resp.len, 0600);
        pier_buf_free(&rp);
        pier_buf_free(&resp);
    }
    closedir(d);
}

static void print_banner(up_session *u)
{
    const char *api = pier_stack_api_url(u->stack);
    printf("pier up: %zu pipeline(s) from %s, data in %s\n", u->conf->count, u->conf->path,
           u->data);
    printf("s3 api:  %s  (AWS_SHARED_CREDENTIALS_FILE=%s AWS_PROFILE=pier)\n", api,
           pier_stack_credentials_file(u->stack));
    for (size_t i = 0; i < u->conf->count; i++) {
        const pier_pipeconf_pipeline *p = &u->conf->pipelines[i];
        printf("pipeline %s: %s branch %s", p->name, p->repo, p->branch);
        if (p->path_count) {
            printf(", paths");
            for (size_t j = 0; j < p->path_count; j++)
                printf(" %s", p->paths[j]);
        }
        if (p->poll_ms)
            printf(", polling every %u ms", p->poll_ms);
        const char *edge = pier_stack_edge_url(u->stack);
        if (edge) {
            const char *port = strrchr(edge, ':');
            printf("\n  site:    http://%s%s/  (distribution %s; or curl -H 'Host: %s' %s/)\n",
                   p->host, port ? port : "", p->distribution, p->host, edge);
        } else {
            printf("\n  site:    %s/%s/index.html  (no edge listener; distribution %s)\n", api,
                   p->bucket, p->distribution);
        }
        if (p->webhook)
            printf("  webhook: %s%s%s\n", api, PIER_WEBHOOKHTTP_PREFIX, p->name);
    }
    if (u->dashboard) {
        printf("dashboard: %s\n", pier_dashboard_url(u->dashboard));
        if (pier_dashboard_needs_token(u->dashboard)) {
            char *path = pier_path_join(u->data, "dashboard.token");
            if (u->dashboard_token_new)
                printf("  token (shown once; kept 0600 in %s): %s\n"
                       "  open %s?token=%s once in a browser, or send Authorization: Bearer "
                       "TOKEN\n",
                       path, u->dashboard_token, pier_dashboard_url(u->dashboard),
                       u->dashboard_token);
            else
                printf("  token required (not a loopback address): it is in %s\n", path);
            free(path);
        }
    } else {
        printf("dashboard: off (--no-dashboard); `pier status --dir %s` shows the runs\n", u->dir);
    }
    printf("push a change: commit to a watched branch of the repository; polling picks it up,\n"
           "  or `pier run PIPELINE --dir %s` starts a run now\n",
           u->dir);
    fflush(stdout);
}

int pier_cmd_up(int argc, char **argv)
{
    up_session u = {0};
    pthread_mutex_init(&u.engine_mu, NULL);
    u.dir = ".";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-poll") == 0)
            u.no_poll = true;
        else if (strcmp(argv[i], "--no-dashboard") == 0)
            u.no_dashboard = true;
        else if (strcmp(argv[i], "--dashboard-listen") == 0 && i + 1 < argc)
            u.dashboard_listen = argv[++i];
        else if (argv[i][0] != '-')
            u.dir = argv[i];
        else if (parse_common(up_usage_name, argc, argv, &i, &u) != 0)
            return PIER_EXIT_USAGE;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int status = PIER_EXIT_OK;
    char *pidfile = NULL, *spool = NULL;
    u.dashboard_wanted = true;
    if (session_open(&u, u.no_poll) != 0) {
        status = pier_cli_fail(NULL);
        goto done;
    }
    pidfile = pier_path_join(u.data, "up.pid");
    spool = pier_path_join(u.data, "triggers");
    pier_file_mkdirs(spool, 0700);
    {
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        pier_file_write_atomic(pidfile, pid, (size_t)n, 0600);
    }
    print_banner(&u);
    for (;;) {
        struct timespec ts = {0, 200000000L};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            PIER_INFO("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        serve_triggers(&u, spool);
    }
    unlink(pidfile);
done:
    session_close(&u);
    free(pidfile);
    free(spool);
    return status;
}

/* ---- pier run ---- */

static bool server_running(const char *data)
{
    char *pidfile = pier_path_join(data, "up.pid");
    pier_buf b = PIER_BUF_INIT;
    int rc = pier_file_read(pidfile, &b);
    free(pidfile);
    uint64_t pid = 0;
    if (rc == 0 && b.ptr) {
        char *nl = strchr(b.ptr, '\n');
        if (nl)
            *nl = 0;
        pier_parse_u64(b.ptr, &pid);
    }
    pier_buf_free(&b);
    return pid > 0 && kill((pid_t)pid, 0) == 0;
}

static int run_remote(const char *data, const char *pipeline, const char *trigger, const char *sha,
                      int64_t *id)
{
    char nonce[17];
    pier_random_token(nonce, 16, false);
    for (char *c = nonce; *c; c++)
        if (*c == '.' || *c == '/')
            *c = 'x';
    pier_buf req = PIER_BUF_INIT, resp = PIER_BUF_INIT, body = PIER_BUF_INIT;
    pier_buf_printf(&req, "%s/triggers/%s.%s.req", data, pipeline, nonce);
    pier_buf_printf(&resp, "%s/triggers/%s.resp", data, nonce);
    pier_buf_printf(&body, "%s %s\n", trigger, sha ? sha : "-");
    int rc = pier_file_write_atomic(pier_buf_cstr(&req), body.ptr, body.len, 0600);
    pier_buf_reset(&body);
    for (int i = 0; rc == 0 && i < 150; i++) {
        if (pier_file_read(pier_buf_cstr(&resp), &body) == 0)
            break;
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    if (rc == 0 && !body.ptr)
        rc = pier_error_set(PIER_ETIMEOUT, "pier up (in %s) did not pick up the request", data);
    if (rc == 0) {
        long long v = 0;
        if (sscanf(body.ptr, "ok %lld", &v) == 1)
            *id = v;
        else
            rc =
                pier_error_set(PIER_ERR, "%s", body.ptr + (strncmp(body.ptr, "error ", 6) ? 0 : 6));
        unlink(pier_buf_cstr(&resp));
    }
    unlink(pier_buf_cstr(&req));
    pier_buf_free(&req);
    pier_buf_free(&resp);
    pier_buf_free(&body);
    return rc;
}

static int wait_run(const char *data, int64_t id, pier_run_status *st)
{
    char *db = pier_path_join(data, "state.db");
    int rc = 0;
    for (;;) {
        pier_state *s = NULL;
        rc = pier_state_open(&s, db, true);
        if (rc == 0)
            rc = pier_state_run_status(s, id, st);
        pier_state_close(s);
        if (rc != 0 || (*st != PIER_RUN_QUEUED && *st != PIER_RUN_IN_PROGRESS))
            break;
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    free(db);
    return rc;
}

int pier_cmd_run(int argc, char **argv)
{
    up_session u = {0};
    pthread_mutex_init(&u.engine_mu, NULL);
    u.dir = ".";
    const char *pipeline = NULL, *sha = NULL, *trigger = "manual";
    bool wait = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--wait") == 0)
            wait = true;
        else if (strcmp(argv[i], "--commit") == 0 && i + 1 < argc)
            sha = argv[++i];
        else if (strcmp(argv[i], "--trigger") == 0 && i + 1 < argc)
            trigger = argv[++i];
        else if (argv[i][0] != '-' && !pipeline)
            pipeline = argv[i];
        else if (parse_common("run", argc, argv, &i, &u) != 0)
            return PIER_EXIT_USAGE;
    }
    if (!pipeline)
        return pier_cli_usage_error("run", "which pipeline? (pier run PIPELINE)");
    static const char *const triggers[] = {"manual", "retry", "redeploy", "webhook", "poll"};
    bool ok = false;
    for (size_t i = 0; i < 5; i++)
        ok |= strcmp(trigger, triggers[i]) == 0;
    if (!ok)
        return pier_cli_usage_error("run", "--trigger: manual, retry, redeploy, webhook or poll");
    char *data = u.data ? pier_strdup(u.data) : pier_path_join(u.dir, ".pier");
    free(u.data);
    u.data = NULL;
    int64_t id = 0;
    pier_run_status st = PIER_RUN_QUEUED;
    int status = PIER_EXIT_OK;
    if (server_running(data)) {
        if (run_remote(data, pipeline, trigger, sha, &id) != 0) {
            status = pier_cli_fail(NULL);
            goto done;
        }
        printf("run %lld queued on the running pier up\n", (long long)id);
        fflush(stdout);
        if (wait && wait_run(data, id, &st) != 0) {
            status = pier_cli_fail(NULL);
            goto done;
        }
    } else {
        u.data = pier_strdup(data);
        signal(SIGPIPE, SIG_IGN);
        if (!u.api_listen)
            u.api_listen = "127.0.0.1:0";
        if (!u.edge_listen)
            u.edge_listen = ""; /* a one-off run serves no sites */
        if (session_open(&u, true) != 0 ||
            pier_engine_trigger(u.engine, pipeline, trigger, sha, &id) != 0) {
            status = pier_cli_fail(NULL);
            session_close(&u);
            goto done;
        }
        printf("run %lld started (no pier up is running: running it here)\n", (long long)id);
        fflush(stdout);
        pier_engine_wait(u.engine, id, 0, &st);
        wait = true;
        session_close(&u);
    }
    if (wait) {
        printf("run %lld: %s\n", (long long)id, pier_run_status_name(st));
        if (st == PIER_RUN_FAILED)
            status = PIER_EXIT_ERROR;
    }
done:
    free(data);
    return status;
}
