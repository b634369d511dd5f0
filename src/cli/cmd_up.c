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
 * meet: deploy and invalidation go through pipeline/publish.c over the
 * S3 and CloudFront APIs of the stack, signed with the stack's credential.
 */
#include <dirent.h>
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
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "cli/commands.h"
#include "pipeline/engine.h"
#include "pipeline/pipeconf.h"
#include "pipeline/publish.h"
#include "pipeline/state.h"
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
} up_session;

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
    (void)run;
    memset(out, 0, sizeof *out);
    out->s3_endpoint = pier_strdup(pier_stack_api_url(u->stack));
    if (u->cdn_endpoint)
        out->cloudfront_endpoint = pier_strdup(u->cdn_endpoint);
    return 0;
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

/* ---- the session ---- */

static void ini_value(const char *text, const char *key, char *out, size_t size)
{
    out[0] = 0;
    size_t kl = strlen(key);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (n > kl && strncmp(p, key, kl) == 0) {
            const char *v = p + kl;
            while (*v == ' ' || *v == '=')
                v++;
            size_t vl = n - (size_t)(v - p);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            if (vl < size) {
                memcpy(out, v, vl);
                out[vl] = 0;
            }
        }
        p = eol ? eol + 1 : NULL;
    }
}

static int make_creds(up_session *u)
{
    pier_buf text = PIER_BUF_INIT;
    int rc = pier_file_read(pier_stack_credentials_file(u->stack), &text);
    if (rc != 0)
        return rc;
    char id[128], secret[128];
    ini_value(pier_buf_cstr(&text), "aws_access_key_id", id, sizeof id);
    ini_value(pier_buf_cstr(&text), "aws_secret_access_key", secret, sizeof secret);
    pier_buf_free(&text);
    rc = pier_credentials_chain_new_static(&u->creds, id, secret, NULL);
    memset(secret, 0, sizeof secret);
    return rc;
}

static void session_close(up_session *u)
{
    pier_engine_stop(u->engine);
    pier_state_close(u->state);
    pier_stack_free(u->stack);
    pier_credentials_chain_free(u->creds);
    pier_pipeconf_free(u->conf);
    free(u->cdn_endpoint);
    free(u->data);
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
    rc = pier_stack_start(&u->stack, &so);
    free(stack_dir);
    if (rc != 0)
        return rc;
    if (u->edge_listen)
        PIER_WARN("--edge-listen %s: this build's stack has no edge yet; sites are served "
                  "from the S3 API (public-read buckets)",
                  u->edge_listen);
    pier_store *store = pier_stack_store(u->stack);
    for (size_t i = 0; i < u->conf->count; i++) {
        const pier_pipeconf_pipeline *p = &u->conf->pipelines[i];
        rc = pier_store_bucket_create(store, p->bucket);
        if (rc != 0 && rc != PIER_EEXISTS)
            return pier_error_wrap(rc, "pipeline %s: bucket %s", p->name, p->bucket);
        pier_store_bucket_set_public(store, p->bucket, true);
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
    pier_engine_options eo = {0};
    eo.data_dir = u->data;
    eo.conf = u->conf;
    eo.state = u->state;
    eo.hooks.ctx = u;
    eo.hooks.grant = hook_grant;
    eo.hooks.deploy = hook_deploy;
    eo.hooks.invalidate = hook_invalidate;
    eo.no_poll = no_poll;
    eo.keep_work = getenv("PIER_KEEP_WORK") != NULL;
    return pier_engine_start(&u->engine, &eo);
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
        printf("\n  site:    %s/%s/index.html  (host %s, distribution %s)\n", api, p->bucket,
               p->host, p->distribution);
        if (p->webhook)
            printf("  webhook: %s/_pier/webhook/%s\n", api, p->name);
    }
    printf("dashboard: not in this version; `pier status --dir %s` shows the runs\n", u->dir);
    printf("push a change: commit to a watched branch of the repository; polling picks it up,\n"
           "  or `pier run PIPELINE --dir %s` starts a run now\n",
           u->dir);
    fflush(stdout);
}

int pier_cmd_up(int argc, char **argv)
{
    up_session u = {0};
    u.dir = ".";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-poll") == 0)
            u.no_poll = true;
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
