/*
 * engine: runs pipelines (see engine.h).
 *
 * Per pipeline a `lane`: one worker thread, an optional poller thread, a
 * mutex and a condition variable. The lane holds at most one waiting run
 * (`pending`); a newer trigger supersedes it in the store and takes its
 * place. Git work on a pipeline's mirror (the poller's fetch, the source
 * stage) is serialized by the lane's git mutex.
 *
 * A run is a chain of small static steps (stage_source, stage_build, ...)
 * that record their outcome in the store before returning; run_pipeline
 * ties them together and always ends the run (no run is left InProgress).
 */
#include "pipeline/engine.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "build/mask.h"
#include "build/buildspec.h"
#include "build/runner.h"
#include "pipeline/secretscan.h"
#include "source/changes.h"
#include "source/git.h"

typedef struct lane lane;

struct lane {
    pier_engine *engine;                    /* owner */
    const pier_pipeconf_pipeline *p;        /* the pipeline */
    pthread_t worker;                       /* runs runs */
    pthread_t poller;                       /* polls, when p->poll_ms */
    bool has_poller;                        /* poller started */
    pthread_mutex_t git_mu;                 /* serializes work on the mirror */
    int64_t pending;                        /* a Queued run waiting, or 0 */
    char pending_sha[PIER_GIT_SHA_LEN + 1]; /* its commit, "" = tip */
    int64_t running;                        /* the run in progress, or 0 */
    pier_runner *runner;                    /* the build in progress (cancel), or NULL */
    char last_seen[PIER_GIT_SHA_LEN + 1];   /* the poller's last tip */
    char *mirror;                           /* <data>/git/<name>.git */
};

struct pier_engine {
    pier_engine_options o; /* copy */
    char *data_dir;        /* owned copy */
    lane *lanes;           /* one per pipeline */
    size_t count;          /* their number */
    pthread_mutex_t mu;    /* guards lanes' pending/running and stopping */
    pthread_cond_t cond;   /* work arrived, a run ended, or stop */
    bool stopping;         /* stop asked */
    int64_t last_ended;    /* for waiters: bumps on every run end */
};

void pier_engine_grant_clear(pier_engine_grant *g)
{
    if (!g)
        return;
    free(g->credentials_uri);
    free(g->credentials_token);
    free(g->s3_endpoint);
    free(g->cloudfront_endpoint);
    free(g->codepipeline_endpoint);
    memset(g, 0, sizeof *g);
}

void pier_engine_deploy_result_clear(pier_engine_deploy_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->path_count; i++)
        free(r->paths[i]);
    free(r->paths);
    free(r->summary);
    memset(r, 0, sizeof *r);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pier_engine_log(FILE *log, const char *fmt, ...)
{
    if (!log)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(log, "%s.%03ldZ [pier] ", stamp, ts.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(log, fmt, ap);
    va_end(ap);
    fputc('\n', log);
    fflush(log);
}

/* ---- one run ---- */

typedef struct {
    pier_engine *e;                   /* engine */
    lane *l;                          /* its lane */
    const pier_pipeconf_pipeline *p;  /* pipeline */
    int64_t id;                       /* run id */
    const char *trigger;              /* how it started */
    char build_id[128];               /* "<pipeline>:<id>" */
    char from[PIER_GIT_SHA_LEN + 1];  /* last deployed commit ("" none) */
    char to[PIER_GIT_SHA_LEN + 1];    /* the commit */
    char *log_path;                   /* <data>/logs/<id>.log */
    FILE *log;                        /* open on log_path */
    char *work;                       /* <data>/work/<id> */
    char *artifact;                   /* <data>/work/<id>.artifact */
    pier_runner_var *secrets;         /* resolved secret values (never stored) */
    size_t secret_count;              /* their number */
    pier_mask *mask;                  /* hides their values in what the run writes */
    pier_engine_deploy_result deploy; /* the deploy stage's outcome */
    pier_engine_run hook_run;         /* what hooks see */
} run_ctx;

/* Ends a stage as failed, and the run with it, with reason. */
static int fail_stage(run_ctx *r, const char *stage, const char *reason)
{
    pier_engine_log(r->log, "%s failed: %s", stage, reason);
    pier_state_stage(r->e->o.state, r->id, stage, PIER_RUN_FAILED, reason);
    pier_state_run_finish(r->e->o.state, r->id, PIER_RUN_FAILED, reason);
    return PIER_ERR;
}

static json_t *changes_json(const pier_changes *c)
{
    json_t *a = json_array();
    for (size_t i = 0; i < c->count && i < 1000; i++) {
        json_t *f = json_pack("{s:s, s:s}", "path", c->files[i].path, "status",
                              pier_change_status_name(c->files[i].status));
        if (c->files[i].old_path)
            json_object_set_new(f, "old_path", json_string(c->files[i].old_path));
        json_array_append_new(a, f);
    }
    return a;
}

/* SOURCE. Returns 1 when the run must build, 0 when it was skipped (and
 * ended), negative when it failed (and ended). */
static int stage_source(run_ctx *r, const char *sha)
{
    pier_state *st = r->e->o.state;
    pier_state_stage(st, r->id, "source", PIER_RUN_IN_PROGRESS, NULL);
    int ret = PIER_ERR;
    pier_git_repo *repo = NULL;
    pier_changes *ch = NULL;
    pier_buf msg;
    pier_buf_init(&msg, 4096);

    pthread_mutex_lock(&r->l->git_mu);
    pier_git_fetch_opts fo = {0};
    fo.url = r->p->repo;
    fo.branch = r->p->branch;
    fo.mirror = r->l->mirror;
    int rc = pier_git_fetch(NULL, &fo);
    if (rc == 0)
        rc = pier_git_open(&repo, r->l->mirror, false);
    if (rc == 0) {
        if (sha && *sha)
            rc = pier_git_resolve(repo, sha, r->to);
        else
            rc = pier_git_branch_tip(repo, r->p->branch, r->to);
    }
    pthread_mutex_unlock(&r->l->git_mu);
    if (rc != 0) {
        pier_buf_printf(&msg, "fetch %s (branch %s): %s", r->p->repo, r->p->branch,
                        pier_error_last());
        fail_stage(r, "source", pier_buf_cstr(&msg));
        goto done;
    }
    pier_state_last_deployed(st, r->p->name, r->from);
    pier_state_run_commits(st, r->id, r->from, r->to);
    pier_changes_opts co = PIER_CHANGES_OPTS_INIT;
    co.include = r->p->paths;
    co.include_count = r->p->path_count;
    co.exclude = r->p->exclude;
    co.exclude_count = r->p->exclude_count;
    co.max_commits = 0;
    if (pier_changes_detect(&ch, repo, r->from[0] ? r->from : NULL, r->to, &co) != 0) {
        fail_stage(r, "source", pier_error_last());
        goto done;
    }
    json_t *files = changes_json(ch);
    pier_buf_reset(&msg);
    pier_json_write(&msg, files, false);
    json_decref(files);
    pier_state_run_changes(st, r->id, pier_buf_cstr(&msg));
    pier_engine_log(r->log, "source: %s at %.12s (last deployed %.12s): %s: %s", r->p->branch,
                    r->to, r->from[0] ? r->from : "none", pier_changes_decision_name(ch->decision),
                    ch->reason);
    for (size_t i = 0; i < ch->count && i < 50; i++)
        pier_engine_log(r->log, "  %s %s", pier_change_status_name(ch->files[i].status),
                        ch->files[i].path);
    const char *reason = ch->reason;
    pier_buf forced;
    pier_buf_init(&forced, 4096);
    if (ch->decision == PIER_CHANGES_SKIP && pier_engine_trigger_forces_build(r->trigger)) {
        pier_buf_printf(&forced,
                        "%s trigger: builds and deploys %.12s regardless of the paths (%s)",
                        r->trigger, r->to, ch->reason);
        reason = pier_buf_cstr(&forced);
        ch->decision = PIER_CHANGES_BUILD;
        pier_engine_log(r->log, "source: %s", reason);
    }
    pier_state_stage(st, r->id, "source", PIER_RUN_SUCCEEDED, reason);
    pier_buf_free(&forced);
    if (ch->decision == PIER_CHANGES_SKIP) {
        pier_state_run_finish(st, r->id, PIER_RUN_SKIPPED, ch->reason);
        ret = 0;
    } else {
        ret = 1;
    }
done:
    pier_changes_free(ch);
    pier_git_close(repo);
    pier_buf_free(&msg);
    return ret;
}

/* Reads secret values from the environment or 0600 files. */
static int resolve_secrets(run_ctx *r)
{
    r->secrets = pier_calloc(r->p->secret_count + 1, sizeof *r->secrets);
    for (size_t i = 0; i < r->p->secret_count; i++) {
        const pier_pipeconf_secret *s = &r->p->secrets[i];
        char *value = NULL;
        if (s->env) {
            const char *v = getenv(s->env);
            if (!v)
                return pier_error_set(PIER_ENOTFOUND,
                                      "secret %s: environment variable %s is not set", s->name,
                                      s->env);
            value = pier_strdup(v);
        } else {
            pier_buf b;
            pier_buf_init(&b, 1 << 20);
            if (pier_file_read(s->file, &b) != 0) {
                pier_buf_free(&b);
                return pier_error_wrap(PIER_EIO, "secret %s", s->name);
            }
            size_t n = b.len;
            while (n > 0 && (b.ptr[n - 1] == '\n' || b.ptr[n - 1] == '\r'))
                n--;
            pier_buf_truncate(&b, n);
            value = pier_buf_detach(&b);
        }
        r->secrets[r->secret_count].name = s->name;
        r->secrets[r->secret_count].value = value;
        r->secret_count++;
        pier_mask_add(r->mask, value);
    }
    return 0;
}

static int stage_build(run_ctx *r)
{
    pier_state *st = r->e->o.state;
    pier_state_stage(st, r->id, "build", PIER_RUN_IN_PROGRESS, NULL);
    int ret = PIER_ERR;
    pier_git_repo *repo = NULL;
    pier_buildspec *spec = NULL;
    pier_runner *runner = NULL;
    pier_runner_result *res = NULL;
    pier_engine_grant grant = {0};
    char *spec_path = NULL, *cache_dir = NULL;
    pier_runner_var *env = NULL;
    size_t env_count = 0;
    pier_buf msg;
    pier_buf_init(&msg, 4096);

    pier_file_remove_tree(r->work);
    pthread_mutex_lock(&r->l->git_mu);
    int rc = pier_git_open(&repo, r->l->mirror, false);
    if (rc == 0)
        rc = pier_git_checkout(repo, r->to, r->work);
    pthread_mutex_unlock(&r->l->git_mu);
    if (rc != 0) {
        fail_stage(r, "build", pier_error_last());
        goto done;
    }
    spec_path = pier_path_join(r->work, r->p->buildspec);
    if (pier_buildspec_load_file(&spec, spec_path) != 0) {
        pier_buf_printf(&msg, "%s", pier_error_last());
        fail_stage(r, "build", pier_buf_cstr(&msg));
        goto done;
    }
    for (size_t i = 0; i < spec->warning_count; i++)
        pier_engine_log(r->log, "%s", spec->warnings[i]);
    if (resolve_secrets(r) != 0) {
        fail_stage(r, "build", pier_error_last());
        goto done;
    }
    if (r->e->o.hooks.grant && r->e->o.hooks.grant(r->e->o.hooks.ctx, &r->hook_run, &grant) != 0) {
        pier_buf_printf(&msg, "credentials for the build: %s", pier_error_last());
        fail_stage(r, "build", pier_buf_cstr(&msg));
        goto done;
    }
    env = pier_calloc(r->p->env_count + 8, sizeof *env);
    for (size_t i = 0; i < r->p->env_count; i++)
        env[env_count++] = (pier_runner_var){r->p->env[i].name, r->p->env[i].value};
    if (grant.credentials_uri)
        env[env_count++] =
            (pier_runner_var){"AWS_CONTAINER_CREDENTIALS_FULL_URI", grant.credentials_uri};
    if (grant.s3_endpoint)
        env[env_count++] = (pier_runner_var){"AWS_ENDPOINT_URL_S3", grant.s3_endpoint};
    if (grant.cloudfront_endpoint)
        env[env_count++] =
            (pier_runner_var){"AWS_ENDPOINT_URL_CLOUDFRONT", grant.cloudfront_endpoint};
    if (grant.codepipeline_endpoint)
        env[env_count++] =
            (pier_runner_var){"AWS_ENDPOINT_URL_CODEPIPELINE", grant.codepipeline_endpoint};
    if (grant.credentials_token) {
        r->secrets = pier_realloc(r->secrets, (r->secret_count + 1) * sizeof *r->secrets);
        r->secrets[r->secret_count].name = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
        r->secrets[r->secret_count].value = pier_strdup(grant.credentials_token);
        r->secret_count++;
        pier_mask_add(r->mask, grant.credentials_token);
    }
    {
        pier_buf cd;
        pier_buf_init(&cd, 4096);
        pier_buf_printf(&cd, "%s/cache/%s", r->e->data_dir, r->p->name);
        cache_dir = pier_buf_detach(&cd);
    }
    pier_file_mkdirs(cache_dir, 0700);
    pier_file_remove_tree(r->artifact);
    char initiator[64];
    snprintf(initiator, sizeof initiator, "pier/%s", r->trigger);
    pier_runner_options ro = PIER_RUNNER_OPTIONS_INIT;
    ro.src_dir = r->work;
    ro.project = r->p->name;
    ro.build_id = r->build_id;
    ro.build_number = (uint64_t)r->id;
    ro.initiator = initiator;
    ro.region = "us-east-1";
    ro.source_version = r->to;
    ro.resolved_source_version = r->to;
    ro.source_repo_url = r->p->repo;
    ro.webhook_prev_commit = r->from[0] ? r->from : NULL;
    ro.env = env;
    ro.env_count = env_count;
    ro.secrets = r->secrets;
    ro.secret_count = r->secret_count;
    ro.cache_dir = cache_dir;
    ro.artifact_dir = r->artifact;
    ro.timeout_sec = r->p->timeout_sec ? r->p->timeout_sec : 3600;
    ro.kill_grace_ms = 2000;
    ro.log_file = r->log_path;
    pier_engine_log(r->log, "build: %s at %.12s (%s)", r->p->buildspec, r->to, r->build_id);
    if (pier_runner_new(&runner, spec, &ro) != 0) {
        fail_stage(r, "build", pier_error_last());
        goto done;
    }
    pthread_mutex_lock(&r->e->mu);
    bool stop = r->e->stopping;
    r->l->runner = runner;
    pthread_mutex_unlock(&r->e->mu);
    if (stop) {
        fail_stage(r, "build", "interrupted (pier is stopping)");
        goto done;
    }
    rc = pier_runner_run(runner, &res);
    pthread_mutex_lock(&r->e->mu);
    r->l->runner = NULL;
    pthread_mutex_unlock(&r->e->mu);
    if (rc != 0 || !res) {
        fail_stage(r, "build", pier_error_last());
        goto done;
    }
    if (res->status != PIER_BUILD_SUCCEEDED) {
        pier_buf_printf(&msg, "build %s: %s", pier_build_status_name(res->status),
                        res->message ? res->message : "failed");
        fail_stage(r, "build", pier_buf_cstr(&msg));
        goto done;
    }
    pier_buf_printf(&msg, "%zu artifact files", res->artifact_files);
    pier_state_stage(st, r->id, "build", PIER_RUN_SUCCEEDED, pier_buf_cstr(&msg));
    ret = 0;
done:
    pier_runner_result_free(res);
    pier_runner_free(runner);
    pier_buildspec_free(spec);
    pier_git_close(repo);
    pier_engine_grant_clear(&grant);
    free(env);
    free(spec_path);
    free(cache_dir);
    pier_buf_free(&msg);
    return ret;
}

static void scan_warn(void *ctx, const char *message)
{
    pier_engine_log(ctx, "secret scan: %s", message);
}

/* The secret scan runs before anything is uploaded; a hit fails the deploy
 * stage and names the file and the secret, never the value. */
static int stage_scan(run_ctx *r)
{
    if (r->p->secret_count == 0)
        return 0;
    pier_secretscan_secret *ss = pier_calloc(r->p->secret_count, sizeof *ss);
    for (size_t i = 0; i < r->p->secret_count; i++) {
        ss[i].name = r->secrets[i].name;
        ss[i].value = r->secrets[i].value;
        ss[i].allowed = r->p->secrets[i].allow_in_artifacts;
    }
    pier_secretscan *scan = NULL;
    pier_secretscan_new(&scan, ss, r->p->secret_count, scan_warn, r->log);
    pier_secretscan_hit hit = {0};
    int rc = pier_secretscan_dir(scan, r->artifact, &hit);
    pier_secretscan_hit_clear(&hit);
    pier_secretscan_free(scan);
    free(ss);
    if (rc != 0) {
        pier_state_stage(r->e->o.state, r->id, "build", PIER_RUN_FAILED, pier_error_last());
        return fail_stage(r, "deploy", pier_error_last());
    }
    pier_engine_log(r->log, "secret scan: the artifact holds no secret value");
    return 0;
}

static int stage_deploy(run_ctx *r)
{
    pier_state *st = r->e->o.state;
    if (!r->p->stage_deploy || !r->e->o.hooks.deploy) {
        pier_engine_log(r->log, "deploy: stage disabled");
        return 0;
    }
    pier_state_stage(st, r->id, "deploy", PIER_RUN_IN_PROGRESS, NULL);
    pier_engine_log(r->log, "deploy: to s3://%s/%s", r->p->bucket, r->p->prefix);
    if (r->e->o.hooks.deploy(r->e->o.hooks.ctx, &r->hook_run, r->artifact, &r->deploy) != 0)
        return fail_stage(r, "deploy", pier_error_last());
    pier_state_run_deploy(st, r->id, r->deploy.uploaded, r->deploy.skipped, r->deploy.deleted,
                          r->deploy.bytes);
    pier_engine_log(r->log, "deploy: %s", r->deploy.summary ? r->deploy.summary : "done");
    pier_state_stage(st, r->id, "deploy", PIER_RUN_SUCCEEDED, r->deploy.summary);
    return 0;
}

/* Returns 1 when the invalidation ran (the commit may advance), 0 when the
 * stage is disabled, negative on failure. */
static int stage_invalidate(run_ctx *r)
{
    pier_state *st = r->e->o.state;
    if (!r->p->stage_invalidate || !r->e->o.hooks.invalidate || !r->p->stage_deploy) {
        pier_engine_log(r->log, "invalidate: stage disabled; the last deployed commit stays");
        return 0;
    }
    pier_state_stage(st, r->id, "invalidate", PIER_RUN_IN_PROGRESS, NULL);
    json_t *paths = json_array();
    for (size_t i = 0; i < r->deploy.path_count; i++)
        json_array_append_new(paths, json_string(r->deploy.paths[i]));
    pier_buf pj;
    pier_buf_init(&pj, 1 << 20);
    pier_json_write(&pj, paths, false);
    json_decref(paths);
    char *inv = NULL;
    int ret = 1;
    if (r->deploy.path_count == 0) {
        pier_engine_log(r->log, "invalidate: nothing changed");
        pier_state_stage(st, r->id, "invalidate", PIER_RUN_SUCCEEDED, "nothing to invalidate");
        goto done;
    }
    char ref[160];
    snprintf(ref, sizeof ref, "pier-%s-%lld", r->p->name, (long long)r->id);
    pier_engine_log(r->log, "invalidate: %zu paths on %s", r->deploy.path_count,
                    r->p->distribution);
    if (r->e->o.hooks.invalidate(r->e->o.hooks.ctx, &r->hook_run, r->deploy.paths,
                                 r->deploy.path_count, ref, &inv) != 0) {
        ret = fail_stage(r, "invalidate", pier_error_last());
        goto done;
    }
    pier_state_run_invalidation(st, r->id, inv, pier_buf_cstr(&pj));
    pier_engine_log(r->log, "invalidate: %s completed", inv ? inv : "");
    pier_state_stage(st, r->id, "invalidate", PIER_RUN_SUCCEEDED, inv);
done:
    free(inv);
    pier_buf_free(&pj);
    return ret;
}

static int stage_actions(run_ctx *r)
{
    pier_state *st = r->e->o.state;
    if (r->p->action_count == 0 || !r->p->stage_actions)
        return 0;
    if (!r->e->o.hooks.action) {
        pier_state_stage(st, r->id, "actions", PIER_RUN_FAILED,
                         "invoke actions are not available in this build of pier");
        pier_state_run_finish(st, r->id, PIER_RUN_FAILED, "invoke actions are not available");
        return PIER_ERR;
    }
    pier_state_stage(st, r->id, "actions", PIER_RUN_IN_PROGRESS, NULL);
    for (size_t i = 0; i < r->p->action_count; i++) {
        const pier_pipeconf_action *a = &r->p->actions[i];
        pier_engine_log(r->log, "action %s: %s", a->name, a->command);
        if (r->e->o.hooks.action(r->e->o.hooks.ctx, &r->hook_run, a, r->artifact) != 0) {
            pier_buf m;
            pier_buf_init(&m, 4096);
            pier_buf_printf(&m, "action %s: %s", a->name, pier_error_last());
            fail_stage(r, "actions", pier_buf_cstr(&m));
            pier_buf_free(&m);
            return PIER_ERR;
        }
    }
    pier_state_stage(st, r->id, "actions", PIER_RUN_SUCCEEDED, NULL);
    return 0;
}

/* pier_engine_run.mask: every secret value of the run becomes ***. */
static void run_mask(void *ctx, pier_buf *text)
{
    const run_ctx *r = ctx;
    pier_mask_buf(r->mask, text);
}

/* One line on pier up's output per finished run: what the user watches for
 * after a push ("run 7 Succeeded", "run 8 Skipped: no changes under ..."). */
static void log_outcome(pier_engine *e, const char *pipeline, int64_t id, int64_t ms)
{
    json_t *row = NULL;
    if (pier_state_run_json(e->o.state, id, &row) != 0)
        return;
    const char *reason = pier_json_str(row, "reason", NULL);
    pier_log(PIER_LOG_INFO, "pipeline %s: run %lld %s in %lld ms%s%s", pipeline, (long long)id,
             pier_json_str(row, "status", "?"), (long long)ms, reason ? ": " : "",
             reason ? reason : "");
    json_decref(row);
}

static void run_pipeline(pier_engine *e, lane *l, int64_t id, const char *sha)
{
    run_ctx r = {0};
    r.e = e;
    r.l = l;
    r.p = l->p;
    r.id = id;
    r.trigger = "manual";
    snprintf(r.build_id, sizeof r.build_id, "%s:%lld", l->p->name, (long long)id);
    r.mask = pier_mask_new();
    pier_buf b;
    pier_buf_init(&b, 4096);
    pier_buf_printf(&b, "%s/logs/%lld.log", e->data_dir, (long long)id);
    r.log_path = pier_buf_detach(&b);
    pier_buf_init(&b, 4096);
    pier_buf_printf(&b, "%s/work/%lld", e->data_dir, (long long)id);
    r.work = pier_buf_detach(&b);
    pier_buf_init(&b, 4096);
    pier_buf_printf(&b, "%s/work/%lld.artifact", e->data_dir, (long long)id);
    r.artifact = pier_buf_detach(&b);
    r.log = fopen(r.log_path, "a");
    if (r.log)
        chmod(r.log_path, 0600);
    r.hook_run = (pier_engine_run){l->p, id, r.build_id, r.to, r.log, run_mask, &r};
    json_t *row = NULL;
    if (pier_state_run_json(e->o.state, id, &row) == 0) {
        static const char *const triggers[] = {"webhook", "poll", "manual", "retry", "redeploy"};
        const char *t = pier_json_str(row, "trigger", "manual");
        for (size_t i = 0; i < 5; i++)
            if (strcmp(t, triggers[i]) == 0)
                r.trigger = triggers[i];
        json_decref(row);
    }
    pier_state_run_start(e->o.state, id, r.log_path);
    pier_engine_log(r.log, "run %s (%s) started", r.build_id, r.trigger);
    int64_t t0 = now_ms();

    int rc = stage_source(&r, sha);
    if (rc == 0) {
        pier_engine_log(r.log, "run skipped in %lld ms", (long long)(now_ms() - t0));
        goto done;
    }
    if (rc < 0)
        goto done;
    if (stage_build(&r) != 0 || stage_scan(&r) != 0 || stage_deploy(&r) != 0)
        goto done;
    rc = stage_invalidate(&r);
    if (rc < 0)
        goto done;
    if (rc == 1)
        pier_state_mark_deployed(e->o.state, l->p->name, r.to, id);
    if (stage_actions(&r) != 0)
        goto done;
    pier_state_run_finish(e->o.state, id, PIER_RUN_SUCCEEDED,
                          rc == 1 ? NULL : "deployed; invalidate stage disabled");
    pier_engine_log(r.log, "run succeeded in %lld ms", (long long)(now_ms() - t0));
done:
    log_outcome(e, l->p->name, id, now_ms() - t0);
    if (!e->o.keep_work) {
        pier_file_remove_tree(r.work);
        pier_file_remove_tree(r.artifact);
    }
    for (size_t i = 0; i < r.secret_count; i++) {
        char *v = (char *)r.secrets[i].value;
        if (v) {
            memset(v, 0, strlen(v));
            free(v);
        }
    }
    free(r.secrets);
    pier_mask_free(r.mask);
    pier_engine_deploy_result_clear(&r.deploy);
    if (r.log)
        fclose(r.log);
    free(r.log_path);
    free(r.work);
    free(r.artifact);
}

/* ---- threads ---- */

static void *worker_main(void *arg)
{
    lane *l = arg;
    pier_engine *e = l->engine;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->stopping && l->pending == 0)
            pthread_cond_wait(&e->cond, &e->mu);
        if (e->stopping)
            break;
        int64_t id = l->pending;
        char sha[PIER_GIT_SHA_LEN + 1];
        memcpy(sha, l->pending_sha, sizeof sha);
        l->pending = 0;
        l->running = id;
        pthread_mutex_unlock(&e->mu);
        run_pipeline(e, l, id, sha[0] ? sha : NULL);
        pthread_mutex_lock(&e->mu);
        l->running = 0;
        e->last_ended++;
        pthread_cond_broadcast(&e->cond);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

static void poll_once(lane *l)
{
    pier_git_fetch_opts fo = {0};
    fo.url = l->p->repo;
    fo.branch = l->p->branch;
    fo.mirror = l->mirror;
    pier_git_fetch_result fr;
    memset(&fr, 0, sizeof fr);
    pthread_mutex_lock(&l->git_mu);
    int rc = pier_git_fetch(&fr, &fo);
    pthread_mutex_unlock(&l->git_mu);
    if (rc != 0) {
        PIER_WARN("pipeline %s: poll: %s", l->p->name, pier_error_last());
        return;
    }
    if (strcmp(fr.tip, l->last_seen) == 0)
        return;
    PIER_INFO("pipeline %s: %s is now at %.12s", l->p->name, l->p->branch, fr.tip);
    /* The tip counts as seen only once its run is queued: a failed trigger
     * is retried by the next poll instead of never firing again. */
    if (pier_engine_trigger(l->engine, l->p->name, "poll", fr.tip, NULL) != 0)
        PIER_WARN("pipeline %s: poll: %s", l->p->name, pier_error_last());
    else
        memcpy(l->last_seen, fr.tip, sizeof l->last_seen);
}

static void *poller_main(void *arg)
{
    lane *l = arg;
    pier_engine *e = l->engine;
    pier_state_last_deployed(e->o.state, l->p->name, l->last_seen);
    for (;;) {
        poll_once(l);
        pthread_mutex_lock(&e->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = (long long)ts.tv_nsec + (long long)l->p->poll_ms * 1000000LL;
        ts.tv_sec += (time_t)(ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        while (!e->stopping) {
            if (pthread_cond_timedwait(&e->cond, &e->mu, &ts) == ETIMEDOUT)
                break;
        }
        bool stop = e->stopping;
        pthread_mutex_unlock(&e->mu);
        if (stop)
            break;
    }
    return NULL;
}

bool pier_engine_trigger_forces_build(const char *trigger)
{
    return trigger && strcmp(trigger, "redeploy") == 0;
}

int pier_engine_trigger(pier_engine *e, const char *pipeline, const char *trigger, const char *sha,
                        int64_t *run_id)
{
    lane *l = NULL;
    for (size_t i = 0; i < e->count; i++)
        if (strcmp(e->lanes[i].p->name, pipeline) == 0)
            l = &e->lanes[i];
    if (!l)
        return pier_error_set(PIER_ENOTFOUND, "no pipeline '%s' in %s", pipeline, e->o.conf->path);
    if (sha && *sha && (strlen(sha) > PIER_GIT_SHA_LEN || !pier_git_looks_like_sha(sha)))
        return pier_error_set(PIER_EINVALID, "'%s' is not a commit id", sha);
    int64_t id = 0;
    int rc = pier_state_run_create(e->o.state, pipeline, trigger ? trigger : "manual",
                                   sha && *sha ? sha : NULL, &id);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&e->mu);
    if (l->pending) {
        int n = 0;
        pier_state_supersede(e->o.state, pipeline, id, &n);
        PIER_INFO("pipeline %s: run %lld superseded by run %lld", pipeline, (long long)l->pending,
                  (long long)id);
    }
    l->pending = id;
    snprintf(l->pending_sha, sizeof l->pending_sha, "%s", sha ? sha : "");
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
    if (run_id)
        *run_id = id;
    return 0;
}

int pier_engine_wait(pier_engine *e, int64_t run_id, long timeout_ms, pier_run_status *status)
{
    int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
    for (;;) {
        pier_run_status st;
        int rc = pier_state_run_status(e->o.state, run_id, &st);
        if (rc != 0)
            return rc;
        if (st != PIER_RUN_QUEUED && st != PIER_RUN_IN_PROGRESS) {
            if (status)
                *status = st;
            return 0;
        }
        if (deadline && now_ms() >= deadline)
            return pier_error_set(PIER_ETIMEOUT, "run %lld has not ended", (long long)run_id);
        pthread_mutex_lock(&e->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&e->cond, &e->mu, &ts);
        pthread_mutex_unlock(&e->mu);
    }
}

int pier_engine_start(pier_engine **out, const pier_engine_options *opts)
{
    *out = NULL;
    pier_engine *e = pier_calloc(1, sizeof *e);
    e->o = *opts;
    e->data_dir = pier_strdup(opts->data_dir);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cond, NULL);
    static const char *const dirs[] = {"git", "work", "logs", "cache"};
    for (size_t i = 0; i < 4; i++) {
        char *d = pier_path_join(e->data_dir, dirs[i]);
        int rc = pier_file_mkdirs(d, 0700);
        free(d);
        if (rc != 0) {
            pier_engine_stop(e);
            return rc;
        }
    }
    e->lanes = pier_calloc(opts->conf->count ? opts->conf->count : 1, sizeof *e->lanes);
    for (size_t i = 0; i < opts->conf->count; i++) {
        lane *l = &e->lanes[i];
        l->engine = e;
        l->p = &opts->conf->pipelines[i];
        pthread_mutex_init(&l->git_mu, NULL);
        pier_buf b;
        pier_buf_init(&b, 4096);
        pier_buf_printf(&b, "%s/git/%s.git", e->data_dir, l->p->name);
        l->mirror = pier_buf_detach(&b);
        pier_state_pipeline_ensure(opts->state, l->p->name);
    }
    for (size_t i = 0; i < opts->conf->count; i++) {
        lane *l = &e->lanes[i];
        pthread_create(&l->worker, NULL, worker_main, l);
        e->count = i + 1;
        if (l->p->poll_ms && !opts->no_poll) {
            pthread_create(&l->poller, NULL, poller_main, l);
            l->has_poller = true;
        }
    }
    *out = e;
    return 0;
}

void pier_engine_stop(pier_engine *e)
{
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    for (size_t i = 0; i < e->count; i++)
        if (e->lanes[i].runner)
            pier_runner_cancel(e->lanes[i].runner);
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->mu);
    for (size_t i = 0; i < e->count; i++) {
        pthread_join(e->lanes[i].worker, NULL);
        if (e->lanes[i].has_poller)
            pthread_join(e->lanes[i].poller, NULL);
    }
    for (size_t i = 0; e->lanes && i < (e->o.conf ? e->o.conf->count : 0); i++) {
        if (e->lanes[i].mirror) {
            pthread_mutex_destroy(&e->lanes[i].git_mu);
            free(e->lanes[i].mirror);
        }
    }
    /* Runs left waiting were never started: they end as superseded by the
     * shutdown rather than stay Queued. */
    pier_state_recover(e->o.state, NULL);
    free(e->lanes);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cond);
    free(e->data_dir);
    free(e);
}
