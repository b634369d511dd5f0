/*
 * run: the deploy orchestration (see run.h). The remote side (pier's
 * manifest object, then the listing) is read on its own thread while the
 * files are hashed: network and CPU overlap. When pier's manifest is absent
 * every file needs its MD5 to compare against ETags, and want_md5 tells the
 * hashing so mid-walk. After the first plan the uploads without an MD5 get
 * one and the plan is made again (an MD5 can only turn an upload into a
 * skip, so this ends).
 */
#include "deploy/run.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "aws/cfdist.h"
#include "aws/cloudfront.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "base/mem.h"
#include "deploy/manifest.h"
#include "deploy/remote.h"

#define STATE_MAX ((size_t)256 << 20) /* pier's manifest object, read at most */

static double elapsed(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int on_object(void *ctx, const pier_s3_object *o)
{
    pier_deploy_listing_add(ctx, o->key, o->size, o->etag, o->last_modified);
    return 0;
}

/* Reads pier's manifest object; *out NULL when absent or unreadable (then
 * warn gets the warning to print once the listing worked: the plan falls
 * back to ETags). */
static void read_state(pier_s3 *s3, const char *bucket, const char *key, pier_deploy_state **out,
                       size_t *requests, char *warn, size_t warn_size)
{
    pier_buf body;
    pier_buf_init(&body, STATE_MAX);
    char what[1400];
    snprintf(what, sizeof what, "s3://%s/%s", bucket, key);
    *out = NULL;
    (*requests)++;
    int rc = pier_s3_get_object(s3, bucket, key, &body, NULL);
    if (rc == PIER_ENOTFOUND) {
        pier_buf_free(&body);
        return;
    }
    if (rc < 0)
        snprintf(warn, warn_size, "pier's manifest %s could not be read (%s); comparing by ETag",
                 what, pier_error_last());
    else if (pier_deploy_state_parse(out, body.ptr ? body.ptr : "", body.len, what) < 0)
        snprintf(warn, warn_size, "pier's manifest could not be parsed (%s); comparing by ETag",
                 pier_error_last());
    pier_buf_free(&body);
}

/* The remote side, read on its own thread while the files are hashed. */
typedef struct {
    pier_s3 *s3;                  /* used by this thread alone until joined */
    const char *bucket;           /* the bucket */
    const char *prefix;           /* normalized key prefix */
    pier_deploy_listing *listing; /* filled */
    pier_deploy_state *state;     /* pier's manifest, or NULL */
    size_t requests;              /* requests sent */
    atomic_int *want_md5;         /* set when state is NULL */
    int rc;                       /* 0, or the listing's error code */
    char msg[1024];               /* and its message */
    char warn[2048];              /* about pier's manifest, or "" */
} remote_job;

static void *read_remote(void *arg)
{
    remote_job *j = arg;
    char *state_key = pier_deploy_state_key(j->prefix);
    read_state(j->s3, j->bucket, state_key, &j->state, &j->requests, j->warn, sizeof j->warn);
    free(state_key);
    if (!j->state)
        atomic_store(j->want_md5, 1);
    PIER_DEBUG("deploy: pier's manifest %s", j->state ? "read" : "absent");
    pier_s3_list_options lo = PIER_S3_LIST_OPTIONS_INIT;
    lo.prefix = j->prefix;
    j->rc = pier_s3_list_objects(j->s3, j->bucket, &lo, on_object, j->listing);
    if (j->rc < 0)
        snprintf(j->msg, sizeof j->msg, "%s", pier_error_last());
    else
        j->requests += j->listing->count / 1000 + 1;
    return NULL;
}

/* The origin path in front of the bucket: given, asked of the distribution
 * (a warning and the root when that fails), or the root. Owned. */
static char *origin_prefix(const pier_deploy_run_options *o, size_t *requests)
{
    if (o->origin_prefix)
        return pier_deploy_prefix_normalize(o->origin_prefix);
    if (!o->cdn_id)
        return pier_deploy_prefix_normalize("");
    pier_awsreq_shared sh = PIER_AWSREQ_SHARED_INIT;
    if (o->cdn_aws)
        sh = *o->cdn_aws;
    sh.http = pier_awsreq_client_http(pier_s3_awsreq(o->s3));
    sh.config = pier_awsreq_client_config(pier_s3_awsreq(o->s3));
    char *op = NULL, *norm;
    (*requests)++;
    if (pier_cloudfront_origin_path(&op, &sh, o->cdn_id, o->bucket) == 0) {
        norm = pier_deploy_prefix_normalize(op);
    } else {
        PIER_WARN("could not read the origin path of distribution %s (%s); assuming the "
                  "bucket root (set --origin-path to say otherwise)",
                  o->cdn_id, pier_error_last());
        norm = pier_deploy_prefix_normalize("");
    }
    free(op);
    return norm;
}

/* The uploads still without an MD5 (or undecided without one) get it and the
 * plan is made again, until none is left. */
static int plan_with_md5(pier_deploy_plan **plan, pier_deploy_manifest *m,
                         const pier_deploy_listing *listing, const pier_deploy_state *state,
                         const pier_deploy_rules *rules, const pier_deploy_plan_options *po,
                         const struct timespec *t0)
{
    int rc = pier_deploy_plan_make(plan, m, listing, state, rules, po);
    if (rc != 0)
        return rc;
    for (;;) {
        pier_deploy_plan *p = *plan;
        size_t *need = pier_calloc(p->count + 1, sizeof *need);
        size_t nneed = 0;
        for (size_t i = 0; i < p->count; i++) {
            const pier_deploy_file *f = p->actions[i].file;
            if (p->actions[i].op == PIER_DEPLOY_UPLOAD && f &&
                (!f->has_md5 || p->actions[i].undecided))
                need[nneed++] = (size_t)(f - m->files);
        }
        if (nneed == 0) {
            free(need);
            return 0;
        }
        int hrc = pier_deploy_manifest_add_md5(m, need, nneed, 0);
        free(need);
        PIER_DEBUG("deploy: MD5s of %zu files at %.3f s", nneed, elapsed(t0));
        pier_deploy_plan_free(p);
        *plan = NULL;
        if (hrc != 0)
            return hrc;
        if ((rc = pier_deploy_plan_make(plan, m, listing, state, rules, po)) != 0)
            return rc;
    }
}

void pier_deploy_run_result_init(pier_deploy_run_result *r)
{
    memset(r, 0, sizeof *r);
    pier_deploy_result_init(&r->exec);
}

void pier_deploy_run_result_free(pier_deploy_run_result *r)
{
    if (!r)
        return;
    pier_deploy_plan_free(r->plan);
    r->plan = NULL;
    pier_deploy_result_free(&r->exec);
}

int pier_deploy_run(const pier_deploy_run_options *o, pier_deploy_run_result *out)
{
    struct timespec t0;
    if (o->start)
        t0 = *o->start;
    else
        clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = 0;
    char *norm = pier_deploy_prefix_normalize(o->prefix ? o->prefix : "");
    char *origin = NULL;
    pier_deploy_manifest *m = NULL;
    pier_deploy_state *state = NULL;
    pier_deploy_listing *listing = pier_deploy_listing_new();

    /* the remote side (network-bound) while the files are hashed (CPU) */
    atomic_int want_md5;
    atomic_init(&want_md5, 0);
    remote_job rj;
    memset(&rj, 0, sizeof rj);
    rj.s3 = o->s3;
    rj.bucket = o->bucket;
    rj.prefix = norm;
    rj.listing = listing;
    rj.want_md5 = &want_md5;
    pthread_t remote_tid;
    bool remote_thread = pthread_create(&remote_tid, NULL, read_remote, &rj) == 0;
    if (!remote_thread)
        read_remote(&rj);
    pier_deploy_manifest_options mo = PIER_DEPLOY_MANIFEST_OPTIONS_INIT;
    mo.prefix = norm;
    mo.lazy_md5 = true;
    mo.want_md5 = &want_md5;
    int mrc = pier_deploy_manifest_build(&m, o->dir, &mo);
    char mmsg[1024];
    snprintf(mmsg, sizeof mmsg, "%s", mrc ? pier_error_last() : "");
    PIER_DEBUG("deploy: %zu files, %.1f MiB hashed at %.3f s", m ? m->count : 0,
               m ? (double)m->total_bytes / (1024.0 * 1024.0) : 0.0, elapsed(&t0));
    if (remote_thread)
        pthread_join(remote_tid, NULL);
    state = rj.state;
    out->exec.requests += rj.requests;
    PIER_DEBUG("deploy: %zu objects listed at %.3f s", listing->count, elapsed(&t0));
    if (mrc != 0 || rj.rc != 0) {
        rc = mrc != 0 ? mrc : rj.rc;
        pier_error_set(rc, "%s", mrc != 0 ? mmsg : rj.msg);
        goto done;
    }
    if (rj.warn[0])
        PIER_WARN("%s", rj.warn);

    char deploy_id[PIER_DEPLOY_ID_LEN];
    int64_t now = (int64_t)time(NULL);
    if (o->deploy_id)
        snprintf(deploy_id, sizeof deploy_id, "%s", o->deploy_id);
    else
        pier_deploy_id_new(deploy_id, now);
    pier_deploy_plan_options po = PIER_DEPLOY_PLAN_OPTIONS_INIT;
    po.deploy_id = deploy_id;
    po.time = now;
    po.no_delete = o->no_delete;
    po.allow_empty = o->allow_empty;
    po.max_deletes = o->max_deletes;
    origin = origin_prefix(o, &out->exec.requests);
    po.origin_prefix = origin;
    po.max_paths = o->max_paths;
    if ((rc = plan_with_md5(&out->plan, m, listing, state, o->rules, &po, &t0)) != 0)
        goto done;
    PIER_DEBUG("deploy: planned %zu actions at %.3f s", out->plan->count, elapsed(&t0));
    if (o->dry_run)
        goto done;
    for (size_t i = 0; i < out->plan->warning_count; i++)
        PIER_WARN("%s", out->plan->warnings[i]);
    if (o->before_execute)
        o->before_execute(o->ctx);

    pier_deploy_exec_options eo = PIER_DEPLOY_EXEC_OPTIONS_INIT;
    eo.jobs = o->jobs;
    eo.progress = o->progress ? o->progress : stderr;
    eo.progress_mode = o->progress_mode;
    eo.interrupted = o->interrupted;
    eo.previous = state;
    out->executed = true;
    rc = pier_deploy_execute(&out->exec, o->s3, o->bucket, out->plan, &eo);
    out->exec.seconds = elapsed(&t0);
    PIER_DEBUG("deploy: executed at %.3f s (manifest %s)", out->exec.seconds,
               out->exec.state_written ? "written" : "not written");
done:
    pier_deploy_state_free(state);
    pier_deploy_listing_free(listing);
    pier_deploy_manifest_free(m);
    free(norm);
    free(origin);
    return rc;
}

int pier_deploy_run_invalidate(pier_deploy_invalidation *out, const pier_awsreq_shared *aws,
                               const char *distribution_id, char *const *paths, size_t n,
                               const char *caller_reference,
                               const pier_deploy_invalidate_options *io)
{
    pier_cloudfront *cf = NULL;
    pier_cloudfront_options co = PIER_CLOUDFRONT_OPTIONS_INIT;
    if (aws)
        co.shared = *aws;
    int rc = pier_cloudfront_new(&cf, &co);
    if (rc == 0)
        rc = pier_deploy_invalidate(out, cf, distribution_id, paths, n, caller_reference, io);
    pier_cloudfront_free(cf);
    return rc;
}
