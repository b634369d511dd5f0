/*
 * execute: the plan carried out (see execute.h for the contract).
 *
 * One exec struct drives one run. A phase is a range of "units" (one
 * upload, or one DeleteObjects batch of up to 1,000 keys); pump() submits
 * units while fewer than `jobs` are in flight and nothing has failed, and
 * every completion callback calls pump() again, so pier_s3_run() returns
 * exactly when the phase is over. The barrier between phases is that
 * return.
 *
 * Costs: one small op struct per unit in flight; uploads stream from disk
 * (the S3 client reads file ranges as curl sends them), so memory is the
 * plan plus O(jobs) buffers whatever the file sizes.
 */
#include "deploy/execute.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"

#define PLAIN_EVERY_FILES 100 /* plain progress: a line every this many files ... */
#define PLAIN_EVERY_S     5.0 /* ... or this many seconds */
#define BAR_EVERY_S       0.1 /* bar redraws at most this often */
#define BAR_WIDTH         24  /* characters of the bar itself */

typedef struct exec exec;

typedef struct {
    exec *ex;     /* the run */
    size_t first; /* first action of the unit */
    size_t count; /* actions in it (1 for an upload) */
} op;

struct exec {
    pier_s3 *s3;                       /* the client */
    const char *bucket;                /* target bucket */
    pier_deploy_plan *p;               /* the plan */
    pier_deploy_result *r;             /* where counts go */
    const volatile sig_atomic_t *stop; /* interrupt flag, or NULL */
    unsigned jobs;                     /* units in flight at most */
    unsigned inflight;                 /* units in flight now */
    size_t next;                       /* next action to submit */
    size_t end;                        /* end of the current phase's actions */
    size_t unit;                       /* actions per unit in this phase */
    bool failed;                       /* some action failed: start nothing new */
    const char **keys;                 /* delete phase: the keys, by action index */
    /* progress */
    FILE *out;                      /* progress stream */
    pier_deploy_progress_mode mode; /* BAR, PLAIN or NONE */
    double t0;                      /* start (monotonic seconds) */
    double last_draw;               /* last bar draw or plain line */
    size_t last_files;              /* files done at the last plain line */
    size_t files_done;              /* actions done (ok or not) */
    size_t files_total;             /* uploads + deletes */
    uint64_t bytes_done;            /* upload bytes done */
    uint64_t bytes_total;           /* upload bytes planned */
    bool bar_drawn;                 /* a bar line is on screen */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void pier_deploy_result_init(pier_deploy_result *r)
{
    memset(r, 0, sizeof *r);
}

void pier_deploy_result_free(pier_deploy_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->error_count; i++) {
        free(r->errors[i].key);
        free(r->errors[i].path);
        free(r->errors[i].message);
    }
    free(r->errors);
    free(r->outcome);
    memset(r, 0, sizeof *r);
}

int pier_deploy_result_summary(pier_buf *out, const pier_deploy_result *r)
{
    return pier_buf_printf(
        out, "uploaded %zu (%.1f MiB), skipped %zu, deleted %zu, %zu requests, %.1f s", r->uploaded,
        (double)r->uploaded_bytes / (1024.0 * 1024.0), r->skipped, r->deleted, r->requests,
        r->seconds);
}

/* ---- progress ------------------------------------------------------------ */

static void fmt_mib(char *out, size_t size, uint64_t bytes)
{
    snprintf(out, size, "%.1f", (double)bytes / (1024.0 * 1024.0));
}

static void draw(exec *ex, bool force)
{
    if (ex->mode == PIER_DEPLOY_PROGRESS_NONE || ex->files_total == 0)
        return;
    double t = now_s();
    double el = t - ex->t0;
    double rate = el > 0 ? (double)ex->bytes_done / el : 0;
    char done[32], total[32], rs[32];
    fmt_mib(done, sizeof done, ex->bytes_done);
    fmt_mib(total, sizeof total, ex->bytes_total);
    fmt_mib(rs, sizeof rs, (uint64_t)rate);
    if (ex->mode == PIER_DEPLOY_PROGRESS_BAR) {
        if (!force && t - ex->last_draw < BAR_EVERY_S)
            return;
        ex->last_draw = t;
        size_t fill = ex->files_total ? ex->files_done * BAR_WIDTH / ex->files_total : BAR_WIDTH;
        char bar[BAR_WIDTH + 1];
        for (size_t i = 0; i < BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
        char eta[32] = "--:--";
        if (rate > 0 && ex->bytes_total > ex->bytes_done) {
            long s = (long)((double)(ex->bytes_total - ex->bytes_done) / rate);
            snprintf(eta, sizeof eta, "%ld:%02ld", s / 60, s % 60);
        } else if (ex->files_done == ex->files_total) {
            snprintf(eta, sizeof eta, "0:00");
        }
        fprintf(ex->out, "\r[%s] %zu/%zu files  %s/%s MiB  %s MiB/s  ETA %s\033[K", bar,
                ex->files_done, ex->files_total, done, total, rs, eta);
        fflush(ex->out);
        ex->bar_drawn = true;
        return;
    }
    if (!force && ex->files_done - ex->last_files < PLAIN_EVERY_FILES &&
        t - ex->last_draw < PLAIN_EVERY_S)
        return;
    if (force && ex->files_done == ex->last_files)
        return;
    ex->last_draw = t;
    ex->last_files = ex->files_done;
    fprintf(ex->out, "pier: deploy: %zu/%zu files, %s/%s MiB, %s MiB/s\n", ex->files_done,
            ex->files_total, done, total, rs);
    fflush(ex->out);
}

static void end_bar(exec *ex)
{
    if (ex->bar_drawn) {
        fputc('\n', ex->out);
        fflush(ex->out);
        ex->bar_drawn = false;
    }
}

/* ---- errors -------------------------------------------------------------- */

static void add_error(exec *ex, const char *key, const char *path, int code, const char *msg)
{
    pier_deploy_result *r = ex->r;
    if (r->error_count == r->error_cap) {
        r->error_cap = r->error_cap ? 2 * r->error_cap : 8;
        r->errors = pier_realloc(r->errors, r->error_cap * sizeof *r->errors);
    }
    pier_deploy_key_error *e = &r->errors[r->error_count++];
    e->key = pier_strdup(key);
    e->path = path ? pier_strdup(path) : NULL;
    e->code = code ? code : PIER_ERR;
    e->message = pier_strdup(msg);
    r->failed++;
    ex->failed = true;
    if (ex->mode != PIER_DEPLOY_PROGRESS_NONE) {
        end_bar(ex);
        fprintf(ex->out, "pier: deploy: failed: %s: %s\n", key, msg);
        fflush(ex->out);
    }
}

/* The message for a failed upload: names the file when it vanished or
 * changed since it was hashed (S3 refuses a body whose MD5 differs:
 * BadDigest / InvalidDigest), else S3's message as it came. */
static int upload_error(char *out, size_t size, const pier_deploy_file *f, const char *bucket,
                        const char *key, int rc, const char *msg)
{
    struct stat st;
    if (stat(f->path, &st) != 0) {
        snprintf(out, size, "%s vanished during the deploy (s3://%s/%s not uploaded): %s", f->path,
                 bucket, key, strerror(errno));
        return PIER_ENOTFOUND;
    }
    if ((uint64_t)st.st_size != f->size) {
        snprintf(out, size,
                 "%s changed during the deploy (%llu bytes when hashed, %llu now; s3://%s/%s "
                 "not uploaded)",
                 f->path, (unsigned long long)f->size, (unsigned long long)st.st_size, bucket, key);
        return PIER_ECONFLICT;
    }
    if (access(f->path, R_OK) != 0) {
        snprintf(out, size, "%s is no longer readable (s3://%s/%s not uploaded): %s", f->path,
                 bucket, key, strerror(errno));
        return PIER_EIO;
    }
    if (msg && (strstr(msg, "BadDigest") || strstr(msg, "InvalidDigest") ||
                strstr(msg, "Content-MD5") || strstr(msg, "content-md5"))) {
        snprintf(out, size,
                 "%s changed during the deploy (its content no longer matches the MD5 pier "
                 "computed; s3://%s/%s not uploaded): %s",
                 f->path, bucket, key, msg);
        return PIER_ECONFLICT;
    }
    snprintf(out, size, "%s", msg && *msg ? msg : "upload failed");
    return rc;
}

/* ---- units ----------------------------------------------------------------- */

static void pump(exec *ex);

static void upload_done(void *ctx, int rc, const pier_s3_result *res)
{
    op *o = ctx;
    exec *ex = o->ex;
    const pier_deploy_action *a = &ex->p->actions[o->first];
    const pier_deploy_file *f = a->file;
    int attempts = res && res->attempts > 0 ? res->attempts : 1;
    ex->r->requests += (size_t)attempts;
    if (f->part_count > 0)
        ex->r->requests += f->part_count + 1; /* create + parts (complete counted above) */
    ex->inflight--;
    ex->files_done++;
    if (rc == 0) {
        ex->r->uploaded++;
        ex->r->uploaded_bytes += f->size;
        if (f->part_count > 0)
            ex->r->multipart++;
        ex->bytes_done += f->size;
        ex->r->outcome[o->first] = PIER_DEPLOY_DONE;
        if (res && res->etag && *res->etag)
            pier_deploy_state_set_etag(ex->p->next_state, a->key, res->etag);
    } else {
        char msg[1536];
        int code = upload_error(msg, sizeof msg, f, ex->bucket, a->key, rc, pier_error_last());
        ex->r->outcome[o->first] = PIER_DEPLOY_FAILED;
        add_error(ex, a->key, f->path, code, msg);
    }
    free(o);
    draw(ex, false);
    pump(ex);
}

static const char *meta_header(const pier_deploy_meta *m, const char *name)
{
    for (size_t i = 0; i < m->header_count; i++)
        if (pier_str_ieq(m->headers[i].name, name))
            return m->headers[i].value;
    return NULL;
}

static int submit_upload(exec *ex, size_t i)
{
    const pier_deploy_action *a = &ex->p->actions[i];
    const pier_deploy_file *f = a->file;
    struct stat st;
    char msg[1536];
    /* The file as hashed must still be there: refuse early and by name. */
    if (stat(f->path, &st) != 0 || (uint64_t)st.st_size != f->size || !S_ISREG(st.st_mode)) {
        int code = upload_error(msg, sizeof msg, f, ex->bucket, a->key, PIER_EIO, NULL);
        if (code == PIER_EIO && !S_ISREG(st.st_mode))
            snprintf(msg, sizeof msg, "%s is no longer a regular file (s3://%s/%s not uploaded)",
                     f->path, ex->bucket, a->key);
        ex->files_done++;
        ex->r->outcome[i] = PIER_DEPLOY_FAILED;
        add_error(ex, a->key, f->path, code, msg);
        return 0;
    }
    pier_http_headers extra = {0};
    pier_s3_put_options put = PIER_S3_PUT_OPTIONS_INIT;
    put.content_type = a->meta.content_type;
    put.cache_control = a->meta.cache_control;
    put.content_encoding = a->meta.content_encoding;
    put.content_disposition = meta_header(&a->meta, "Content-Disposition");
    put.md5 = f->md5;
    for (size_t h = 0; h < a->meta.header_count; h++) {
        const pier_deploy_header *hd = &a->meta.headers[h];
        if (pier_str_ieq(hd->name, "Content-Disposition"))
            continue;
        pier_http_headers_add(&extra, hd->name, hd->value);
    }
    if (extra.count)
        put.headers = &extra;
    pier_s3_multipart_options mp = PIER_S3_MULTIPART_OPTIONS_INIT;
    if (f->part_count > 0) {
        /* exactly the manifest's parts, or the ETags will not compare */
        mp.threshold = f->size - 1;
        mp.part_size = f->part_size;
        mp.part_count = f->part_count;
        mp.part_md5 = (const unsigned char(*)[PIER_MD5_LEN])f->part_md5;
        mp.parallel = PIER_S3_PARALLEL_PARTS;
    } else {
        mp.threshold = f->size > 0 ? f->size : 1; /* one PutObject */
    }
    op *o = pier_calloc(1, sizeof *o);
    o->ex = ex;
    o->first = i;
    o->count = 1;
    ex->inflight++;
    int rc =
        pier_s3_upload_file_async(ex->s3, ex->bucket, a->key, f->path, &put, &mp, upload_done, o);
    pier_http_headers_free(&extra);
    if (rc < 0) {
        ex->inflight--;
        free(o);
        ex->files_done++;
        ex->r->outcome[i] = PIER_DEPLOY_FAILED;
        int code = upload_error(msg, sizeof msg, f, ex->bucket, a->key, rc, pier_error_last());
        add_error(ex, a->key, f->path, code, msg);
    }
    return 0;
}

/* Marks the batch's keys: every key done, then the ones S3 reported as
 * failed (a linear search per failure: failures are rare). */
static void mark_batch(exec *ex, const op *o, const pier_s3_delete_result *d, bool all_failed)
{
    for (size_t i = 0; i < o->count; i++)
        ex->r->outcome[o->first + i] = all_failed ? PIER_DEPLOY_FAILED : PIER_DEPLOY_DONE;
    for (size_t e = 0; d && e < d->error_count; e++)
        for (size_t i = 0; i < o->count; i++)
            if (strcmp(ex->keys[o->first + i], d->errors[e].key) == 0)
                ex->r->outcome[o->first + i] = PIER_DEPLOY_FAILED;
}

static void delete_done(void *ctx, int rc, const pier_s3_result *res)
{
    op *o = ctx;
    exec *ex = o->ex;
    int attempts = res && res->attempts > 0 ? res->attempts : 1;
    ex->r->requests += (size_t)attempts;
    ex->inflight--;
    ex->files_done += o->count;
    const pier_s3_delete_result *d = res ? res->deleted : NULL;
    if (rc == 0 || (d && d->error_count > 0)) {
        size_t failed = d ? d->error_count : 0;
        ex->r->deleted += o->count >= failed ? o->count - failed : 0;
        mark_batch(ex, o, d, false);
        for (size_t i = 0; d && i < d->error_count; i++) {
            char msg[1024];
            snprintf(msg, sizeof msg, "DeleteObjects could not delete s3://%s/%s: %s%s%s",
                     ex->bucket, d->errors[i].key, d->errors[i].code,
                     d->errors[i].message ? ": " : "",
                     d->errors[i].message ? d->errors[i].message : "");
            add_error(ex, d->errors[i].key, NULL, PIER_ERR, msg);
        }
    } else {
        char msg[1280];
        snprintf(msg, sizeof msg, "%s (a batch of %zu keys from this one not deleted)",
                 pier_error_last(), o->count);
        mark_batch(ex, o, NULL, true);
        add_error(ex, ex->keys[o->first], NULL, rc, msg);
    }
    free(o);
    draw(ex, false);
    pump(ex);
}

static void submit_delete(exec *ex, size_t first, size_t count)
{
    op *o = pier_calloc(1, sizeof *o);
    o->ex = ex;
    o->first = first;
    o->count = count;
    ex->inflight++;
    int rc =
        pier_s3_delete_objects_async(ex->s3, ex->bucket, ex->keys + first, count, delete_done, o);
    if (rc < 0) {
        ex->inflight--;
        free(o);
        ex->files_done += count;
        for (size_t i = 0; i < count; i++)
            ex->r->outcome[first + i] = PIER_DEPLOY_FAILED;
        add_error(ex, ex->keys[first], NULL, rc, pier_error_last());
    }
}

static bool stopping(exec *ex)
{
    if (ex->stop && *ex->stop) {
        ex->r->interrupted = true;
        return true;
    }
    return ex->failed;
}

static void pump(exec *ex)
{
    while (ex->inflight < ex->jobs && ex->next < ex->end && !stopping(ex)) {
        size_t i = ex->next;
        if (ex->p->actions[i].op == PIER_DEPLOY_UPLOAD) {
            ex->next++;
            submit_upload(ex, i);
        } else {
            size_t n = ex->end - i;
            if (n > PIER_S3_DELETE_BATCH)
                n = PIER_S3_DELETE_BATCH;
            ex->next += n;
            submit_delete(ex, i, n);
        }
    }
}

/* Runs actions [from, to) to completion. 0, or negative when the HTTP
 * client itself failed. */
static int run_phase(exec *ex, size_t from, size_t to)
{
    ex->next = from;
    ex->end = to;
    pump(ex);
    int rc = pier_s3_run(ex->s3);
    draw(ex, false);
    return rc;
}

static int write_state(exec *ex)
{
    pier_buf json = PIER_BUF_INIT;
    pier_buf_init(&json, (size_t)1 << 30);
    int rc = pier_deploy_state_to_json(&json, ex->p->next_state, false);
    if (rc == 0) {
        pier_s3_put_options put = PIER_S3_PUT_OPTIONS_INIT;
        unsigned char md5[PIER_MD5_LEN];
        pier_md5(md5, json.ptr ? json.ptr : "", json.len);
        put.content_type = "application/json";
        put.cache_control = "no-cache";
        put.md5 = md5;
        ex->r->requests++;
        rc = pier_s3_put_memory(ex->s3, ex->bucket, ex->p->state_key, json.ptr ? json.ptr : "",
                                json.len, &put, NULL);
        if (rc < 0)
            pier_error_wrap(rc,
                            "writing pier's manifest s3://%s/%s (every object is in place; "
                            "the next deploy compares by ETag)",
                            ex->bucket, ex->p->state_key);
    }
    pier_buf_free(&json);
    return rc;
}

/* True when prev records exactly what next does (keys, content, ETags,
 * metadata): rewriting it would change only the deploy id. */
static bool state_same(const pier_deploy_state *prev, const pier_deploy_state *next)
{
    if (!prev || !next || prev->count != next->count)
        return false;
    for (size_t i = 0; i < next->count; i++) {
        const pier_deploy_state_file *a = &next->files[i];
        const pier_deploy_state_file *b = pier_deploy_state_find(prev, a->key);
        if (!b || strcmp(a->sha256, b->sha256) != 0 || a->size != b->size)
            return false;
        if ((a->etag == NULL) != (b->etag == NULL) || (a->etag && strcmp(a->etag, b->etag) != 0))
            return false;
        if (!pier_deploy_meta_equal(&a->meta, &b->meta))
            return false;
    }
    return true;
}

int pier_deploy_execute(pier_deploy_result *out, pier_s3 *s3, const char *bucket,
                        pier_deploy_plan *p, const pier_deploy_exec_options *opts)
{
    pier_deploy_exec_options defaults = PIER_DEPLOY_EXEC_OPTIONS_INIT;
    if (!opts)
        opts = &defaults;
    exec ex;
    memset(&ex, 0, sizeof ex);
    ex.s3 = s3;
    ex.bucket = bucket;
    ex.p = p;
    ex.r = out;
    ex.stop = opts->interrupted;
    ex.jobs = opts->jobs ? opts->jobs : PIER_DEPLOY_JOBS_DEFAULT;
    if (ex.jobs > PIER_DEPLOY_JOBS_MAX)
        ex.jobs = PIER_DEPLOY_JOBS_MAX;
    ex.out = opts->progress ? opts->progress : stderr;
    ex.mode = opts->progress_mode;
    if (ex.mode == PIER_DEPLOY_PROGRESS_AUTO)
        ex.mode = isatty(fileno(ex.out)) ? PIER_DEPLOY_PROGRESS_BAR : PIER_DEPLOY_PROGRESS_PLAIN;
    ex.t0 = now_s();
    ex.last_draw = ex.t0;
    ex.files_total = p->count;
    ex.bytes_total = p->upload_bytes;
    out->skipped = p->skip_count;
    free(out->outcome);
    out->outcome = pier_calloc(p->count ? p->count : 1, 1);
    out->outcome_count = p->count;
    out->skipped_bytes = p->skip_bytes;

    int rc = 0;
    const char *const phase_names[] = {"non-HTML upload", "HTML upload", "delete"};
    size_t bounds[4] = {0, p->html_start, p->delete_start, p->count};
    if (p->delete_start < p->count) {
        ex.keys = pier_calloc(p->count, sizeof *ex.keys);
        for (size_t i = p->delete_start; i < p->count; i++)
            ex.keys[i] = p->actions[i].key;
    }
    for (int ph = 0; ph < 3; ph++) {
        if (bounds[ph] == bounds[ph + 1])
            continue;
        if (stopping(&ex)) {
            out->stopped_in = phase_names[ph];
            break;
        }
        rc = run_phase(&ex, bounds[ph], bounds[ph + 1]);
        if (rc < 0)
            break;
        if (ex.failed || out->interrupted) {
            out->stopped_in = phase_names[ph];
            break;
        }
    }
    draw(&ex, true);
    end_bar(&ex);
    size_t started = ex.files_done;
    out->not_started = p->count > started ? p->count - started : 0;

    if (rc < 0) {
        /* the HTTP client itself failed: message set */
    } else if (out->interrupted) {
        rc = pier_error_set(PIER_ERR,
                            "interrupted: %zu of %zu actions done, %zu not started; stopped in "
                            "the %s phase, so visitors still get the previous site whole; run "
                            "the deploy again to finish",
                            started - out->failed, p->count, out->not_started,
                            out->stopped_in ? out->stopped_in : "last");
    } else if (ex.failed) {
        const pier_deploy_key_error *e = &out->errors[0];
        bool before_html = out->stopped_in && strcmp(out->stopped_in, "delete") != 0;
        rc = pier_error_set(
            PIER_ERR, "%zu of %zu actions failed (first: %s); %s; run the deploy again",
            out->failed, p->count, e->message,
            before_html ? "stopped before the HTML pages and deletions: visitors still get the "
                          "previous site whole"
                        : "stopped in the delete phase: every page and asset is in place");
    } else if (p->count == 0 && state_same(opts->previous, p->next_state)) {
        out->state_written = false; /* nothing changed, and the manifest says so already */
    } else if (!opts->no_state && p->next_state && p->state_key) {
        rc = write_state(&ex);
        if (rc == 0)
            out->state_written = true;
    }
    free(ex.keys);
    out->seconds = now_s() - ex.t0;
    return rc;
}
