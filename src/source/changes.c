/*
 * changes: the build-or-skip decision (see changes.h for the rules).
 *
 * Steps of pier_changes_detect, each a small static function:
 *   1. resolve `to`, then `since` (first run, zero SHA, missing base and
 *      errors decide BUILD right there, reason set);
 *   2. diff the two trees (git_diff_tree_to_tree, typechanges kept), then
 *      git_diff_find_similar for renames;
 *   3. keep the deltas whose old or new path passes the filter;
 *   4. optionally count since..to with a revwalk, stopping at max_commits;
 *   5. write the reason.
 * Invariant: every path out of step 1-2 that is not a clean diff ends in
 * BUILD. The filter normalises patterns once per call (strip "./" and "/",
 * a trailing "/" means "a directory"); a pattern selects a path when it
 * matches the path or one of its leading directories. Matching costs
 * O(patterns x depth) glob calls per changed path.
 */
#include "source/changes.h"

#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/glob.h"
#include "base/log.h"
#include "base/mem.h"

typedef struct {
    const char *glob; /* the pattern without "./", "/" prefixes or a trailing "/" */
    bool dir_only;    /* it ended in "/": matches directories, so never a path itself */
    bool all;         /* empty after normalising ("." or "./"): every path */
} pattern;

/* Normalises p into *out; out->glob borrows from p or is a copy in *owned. */
static void pattern_init(pattern *out, const char *p, char **owned)
{
    *owned = NULL;
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    while (p[0] == '/')
        p++;
    size_t n = strlen(p);
    out->dir_only = n > 0 && p[n - 1] == '/';
    while (n > 0 && p[n - 1] == '/')
        n--;
    out->all = n == 0 || (n == 1 && p[0] == '.');
    if (n != strlen(p)) {
        *owned = pier_strndup(p, n);
        out->glob = *owned;
    } else {
        out->glob = p;
    }
}

/* True when pat matches path or one of its leading directories. scratch is
 * a writable copy of path (restored before returning). */
static bool pattern_selects(const pattern *pat, const char *path, char *scratch)
{
    if (pat->all)
        return true;
    if (!pat->dir_only && pier_glob_match(pat->glob, path))
        return true;
    bool hit = false;
    for (char *s = strchr(scratch, '/'); s && !hit; s = strchr(s + 1, '/')) {
        *s = '\0';
        hit = pier_glob_match(pat->glob, scratch);
        *s = '/';
    }
    return hit;
}

typedef struct {
    pattern *inc;  /* normalised includes */
    size_t ninc;   /* their count */
    pattern *exc;  /* normalised excludes */
    size_t nexc;   /* their count */
    char **owned;  /* copies made while normalising */
    size_t nowned; /* their count */
} filter;

static void filter_init(filter *f, const pier_changes_opts *o)
{
    memset(f, 0, sizeof *f);
    size_t total = o->include_count + o->exclude_count;
    f->inc = pier_calloc(o->include_count + 1, sizeof *f->inc);
    f->exc = pier_calloc(o->exclude_count + 1, sizeof *f->exc);
    f->owned = pier_calloc(total + 1, sizeof *f->owned);
    for (size_t i = 0; i < o->include_count; i++)
        pattern_init(&f->inc[f->ninc++], o->include[i], &f->owned[f->nowned++]);
    for (size_t i = 0; i < o->exclude_count; i++)
        pattern_init(&f->exc[f->nexc++], o->exclude[i], &f->owned[f->nowned++]);
}

static void filter_free(filter *f)
{
    for (size_t i = 0; i < f->nowned; i++)
        free(f->owned[i]);
    free(f->owned);
    free(f->inc);
    free(f->exc);
}

static bool filter_selects(const filter *f, const char *path)
{
    char *scratch = pier_strdup(path);
    bool in = f->ninc == 0;
    for (size_t i = 0; i < f->ninc && !in; i++)
        in = pattern_selects(&f->inc[i], path, scratch);
    for (size_t i = 0; i < f->nexc && in; i++)
        in = !pattern_selects(&f->exc[i], path, scratch);
    free(scratch);
    return in;
}

int pier_changes_validate(const pier_changes_opts *o)
{
    for (size_t i = 0; i < o->include_count; i++) {
        if (!o->include[i])
            return pier_error_set(PIER_EINVALID, "include pattern %zu is NULL", i);
        if (pier_glob_validate(o->include[i]) < 0)
            return pier_error_wrap(PIER_EINVALID, "path filter");
    }
    for (size_t i = 0; i < o->exclude_count; i++) {
        if (!o->exclude[i])
            return pier_error_set(PIER_EINVALID, "exclude pattern %zu is NULL", i);
        if (pier_glob_validate(o->exclude[i]) < 0)
            return pier_error_wrap(PIER_EINVALID, "exclude filter");
    }
    return 0;
}

bool pier_changes_path_selected(const pier_changes_opts *o, const char *path)
{
    filter f;
    filter_init(&f, o);
    bool in = filter_selects(&f, path);
    filter_free(&f);
    return in;
}

const char *pier_change_status_name(pier_change_status s)
{
    switch (s) {
    case PIER_CHANGE_ADDED:
        return "added";
    case PIER_CHANGE_MODIFIED:
        return "modified";
    case PIER_CHANGE_DELETED:
        return "deleted";
    case PIER_CHANGE_RENAMED:
        return "renamed";
    case PIER_CHANGE_COPIED:
        return "copied";
    case PIER_CHANGE_TYPECHANGE:
        return "typechange";
    }
    return "unknown";
}

const char *pier_changes_why_name(pier_changes_why why)
{
    switch (why) {
    case PIER_CHANGES_MATCHED:
        return "matched";
    case PIER_CHANGES_NONE_MATCHED:
        return "none_matched";
    case PIER_CHANGES_FIRST_RUN:
        return "first_run";
    case PIER_CHANGES_ZERO_SHA:
        return "zero_sha";
    case PIER_CHANGES_BASE_MISSING:
        return "base_missing";
    case PIER_CHANGES_ERROR:
        return "error";
    }
    return "unknown";
}

const char *pier_changes_decision_name(pier_changes_decision d)
{
    return d == PIER_CHANGES_SKIP ? "skip" : "build";
}

void pier_changes_free(pier_changes *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->count; i++) {
        free(c->files[i].path);
        free(c->files[i].old_path);
    }
    free(c->files);
    free(c->reason);
    free(c);
}

/* Ends in BUILD for a rule that needs no diff. */
static void decide_build(pier_changes *c, pier_changes_why why, const char *reason)
{
    c->decision = PIER_CHANGES_BUILD;
    c->why = why;
    free(c->reason);
    c->reason = pier_strdup(reason);
}

/* Ends in BUILD because git failed with code (pier's error already set). */
static void decide_error(pier_changes *c, int code)
{
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "git error: %s: building", pier_error_last());
    decide_build(c, PIER_CHANGES_ERROR, pier_buf_cstr(&b));
    c->error = code;
    pier_buf_free(&b);
}

static pier_change_status status_of(git_delta_t s)
{
    switch (s) {
    case GIT_DELTA_ADDED:
        return PIER_CHANGE_ADDED;
    case GIT_DELTA_DELETED:
        return PIER_CHANGE_DELETED;
    case GIT_DELTA_RENAMED:
        return PIER_CHANGE_RENAMED;
    case GIT_DELTA_COPIED:
        return PIER_CHANGE_COPIED;
    case GIT_DELTA_TYPECHANGE:
        return PIER_CHANGE_TYPECHANGE;
    default:
        return PIER_CHANGE_MODIFIED;
    }
}

static int change_cmp(const void *a, const void *b)
{
    const pier_change *x = a, *y = b;
    return strcmp(x->path, y->path);
}

/* Steps 2 and 3: the tree diff, renames, and the filter. */
static int diff_and_filter(pier_changes *c, git_repository *r, const git_oid *since,
                           const git_oid *to, const filter *f)
{
    git_commit *cs = NULL, *ct = NULL;
    git_tree *ts = NULL, *tt = NULL;
    git_diff *diff = NULL;
    int rc = 0, grc;
    if ((grc = git_commit_lookup(&cs, r, since)) < 0 || (grc = git_commit_lookup(&ct, r, to)) < 0 ||
        (grc = git_commit_tree(&ts, cs)) < 0 || (grc = git_commit_tree(&tt, ct)) < 0) {
        rc = pier_git_fail(grc, "cannot read the trees of %.7s and %.7s in %s", c->since, c->to,
                           git_repository_path(r));
        goto done;
    }
    git_diff_options dopts;
    git_diff_options_init(&dopts, GIT_DIFF_OPTIONS_VERSION);
    dopts.flags = GIT_DIFF_INCLUDE_TYPECHANGE;
    if ((grc = git_diff_tree_to_tree(&diff, r, ts, tt, &dopts)) < 0) {
        rc = pier_git_fail(grc, "cannot diff %.7s..%.7s in %s", c->since, c->to,
                           git_repository_path(r));
        goto done;
    }
    git_diff_find_options fopts;
    git_diff_find_options_init(&fopts, GIT_DIFF_FIND_OPTIONS_VERSION);
    fopts.flags = GIT_DIFF_FIND_RENAMES;
    if ((grc = git_diff_find_similar(diff, &fopts)) < 0) {
        rc = pier_git_fail(grc, "cannot detect renames in %.7s..%.7s in %s", c->since, c->to,
                           git_repository_path(r));
        goto done;
    }
    size_t n = git_diff_num_deltas(diff);
    c->files_changed = n;
    c->files = pier_calloc(n + 1, sizeof *c->files);
    for (size_t i = 0; i < n; i++) {
        const git_diff_delta *d = git_diff_get_delta(diff, i);
        const char *newp = d->new_file.path, *oldp = d->old_file.path;
        bool moved = d->status == GIT_DELTA_RENAMED || d->status == GIT_DELTA_COPIED;
        const char *path = d->status == GIT_DELTA_DELETED ? oldp : newp;
        bool hit = filter_selects(f, path);
        /* A rename counts on both sides: leaving frontend/ changes frontend. */
        if (!hit && moved && d->status == GIT_DELTA_RENAMED)
            hit = filter_selects(f, oldp);
        if (!hit)
            continue;
        pier_change *ch = &c->files[c->count++];
        ch->status = status_of(d->status);
        ch->path = pier_strdup(path);
        ch->old_path = moved ? pier_strdup(oldp) : NULL;
    }
    qsort(c->files, c->count, sizeof *c->files, change_cmp);
done:
    git_diff_free(diff);
    git_tree_free(ts);
    git_tree_free(tt);
    git_commit_free(cs);
    git_commit_free(ct);
    return rc;
}

/* Step 4: commits reachable from to and not from since, up to max. A
 * failure only leaves the count unknown: the diff decides, not the count. */
static void count_commits(pier_changes *c, git_repository *r, const git_oid *since,
                          const git_oid *to, size_t max)
{
    git_revwalk *w = NULL;
    git_oid oid;
    long n = 0;
    if (git_revwalk_new(&w, r) < 0 || git_revwalk_push(w, to) < 0 || git_revwalk_hide(w, since) < 0)
        goto done;
    int grc;
    while ((grc = git_revwalk_next(&oid, w)) == 0) {
        if ((size_t)n == max) {
            c->commits_capped = true;
            break;
        }
        n++;
    }
    if (grc < 0 && grc != GIT_ITEROVER)
        goto done;
    c->commits = n;
done:
    if (c->commits < 0)
        PIER_DEBUG("changes: cannot count commits %.7s..%.7s", c->since, c->to);
    git_error_clear();
    git_revwalk_free(w);
}

/* "under a, b (excluding c)" or "(excluding c)" or "". */
static void describe_scope(pier_buf *b, const pier_changes_opts *o)
{
    if (o->include_count) {
        pier_buf_puts(b, " under ");
        for (size_t i = 0; i < o->include_count; i++)
            pier_buf_printf(b, "%s%s", i ? ", " : "", o->include[i]);
    }
    if (o->exclude_count) {
        pier_buf_puts(b, " (excluding ");
        for (size_t i = 0; i < o->exclude_count; i++)
            pier_buf_printf(b, "%s%s", i ? ", " : "", o->exclude[i]);
        pier_buf_puts(b, ")");
    }
}

/* Step 5. */
static void write_reason(pier_changes *c, const pier_changes_opts *o)
{
    pier_buf b = PIER_BUF_INIT;
    if (c->count > 0) {
        pier_buf_printf(&b, "%zu file%s", c->count, c->count == 1 ? "" : "s");
        describe_scope(&b, o);
        pier_buf_printf(&b, " changed since %.7s", c->since);
    } else {
        pier_buf_puts(&b, "no changes");
        describe_scope(&b, o);
        pier_buf_printf(&b, " since %.7s (", c->since);
        if (c->commits >= 0)
            pier_buf_printf(&b, "%s%ld commit%s, ", c->commits_capped ? "more than " : "",
                            c->commits, c->commits == 1 && !c->commits_capped ? "" : "s");
        if (c->files_changed == 0)
            pier_buf_puts(&b, "no files changed)");
        else
            pier_buf_printf(&b, "%zu file%s changed, none matched)", c->files_changed,
                            c->files_changed == 1 ? "" : "s");
    }
    free(c->reason);
    c->reason = pier_buf_detach(&b);
}

int pier_changes_detect(pier_changes **out, pier_git_repo *repo, const char *since, const char *to,
                        const pier_changes_opts *opts)
{
    *out = NULL;
    pier_changes_opts defaults = PIER_CHANGES_OPTS_INIT;
    const pier_changes_opts *o = opts ? opts : &defaults;
    if (!repo || !to || !to[0])
        return pier_error_set(PIER_EINVALID, "change detection needs a repository and a revision");
    int rc = pier_changes_validate(o);
    if (rc < 0)
        return rc;

    pier_changes *c = pier_calloc(1, sizeof *c);
    c->commits = -1;
    git_repository *r = pier_git_handle(repo);
    filter f;
    filter_init(&f, o);
    git_oid since_oid, to_oid;

    /* Step 1: resolve, and the rules that need no diff. */
    if ((rc = pier_git_resolve(repo, to, c->to)) < 0) {
        decide_error(c, rc);
        goto done;
    }
    if (!since || !since[0]) {
        decide_build(c, PIER_CHANGES_FIRST_RUN, "first run: no deployed commit");
        goto done;
    }
    if (pier_git_is_zero_sha(since)) {
        decide_build(c, PIER_CHANGES_ZERO_SHA,
                     "zero SHA as the deployed commit (a new branch?): building");
        goto done;
    }
    if ((rc = pier_git_resolve(repo, since, c->since)) < 0) {
        if (rc == PIER_ENOTFOUND && pier_git_looks_like_sha(since)) {
            pier_buf b = PIER_BUF_INIT;
            pier_buf_printf(&b, "deployed commit %.7s not found (history rewritten?): building",
                            since);
            decide_build(c, PIER_CHANGES_BASE_MISSING, pier_buf_cstr(&b));
            pier_buf_free(&b);
        } else {
            decide_error(c, rc);
        }
        goto done;
    }
    if (git_oid_fromstr(&since_oid, c->since) < 0 || git_oid_fromstr(&to_oid, c->to) < 0) {
        decide_error(c, pier_git_fail(GIT_ERROR, "bad object id"));
        goto done;
    }

    /* Steps 2-5. */
    if ((rc = diff_and_filter(c, r, &since_oid, &to_oid, &f)) < 0) {
        for (size_t i = 0; i < c->count; i++) {
            free(c->files[i].path);
            free(c->files[i].old_path);
        }
        c->count = 0;
        c->files_changed = 0;
        decide_error(c, rc);
        goto done;
    }
    if (o->max_commits > 0)
        count_commits(c, r, &since_oid, &to_oid, o->max_commits);
    c->decision = c->count > 0 ? PIER_CHANGES_BUILD : PIER_CHANGES_SKIP;
    c->why = c->count > 0 ? PIER_CHANGES_MATCHED : PIER_CHANGES_NONE_MATCHED;
    write_reason(c, o);
done:
    filter_free(&f);
    PIER_DEBUG("changes: %s: %s", pier_changes_decision_name(c->decision), c->reason);
    *out = c;
    return 0;
}
