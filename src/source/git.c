/*
 * git: mirror, resolve, check out, describe (see git.h).
 *
 * Operations and their costs:
 * - pier_git_fetch: opens (or git-inits) the bare mirror, then one
 *   anonymous-remote fetch (no url.insteadOf rewriting) of a single refspec,
 * +refs/heads/B:refs/heads/B, with prune, no tags, no FETCH_HEAD. The server negotiates from what
 * the mirror has, so a fetch transfers only the new commits. The remote's ref advertisement (still
 * readable after the fetch disconnects) tells whether the branch exists; a missing branch is an
 * error that names it and its stale mirror ref is removed, so nothing builds an old tip by
 * accident.
 * - pier_git_checkout: git_checkout_tree with a target directory and an
 *   empty in-memory baseline index, so every file of the tree is written,
 *   on a private repository handle whose index is the target tree held in
 *   memory (the filters read .gitattributes from it: eol=crlf comes out as
 *   a clone writes it). Nothing in the mirror is written (no index, HEAD
 *   untouched), so runs can check out of one mirror at once. Cost: the size
 *   of the tree. External filter drivers (git-lfs smudge) are not run.
 * - resolve, branch tip, commit info: a few object lookups.
 *
 * Invariants: libgit2 is initialised once per process (pthread_once) and
 * never shut down; every libgit2 failure goes through pier_git_fail, which
 * copies git_error_last() behind a context naming the repository or branch.
 */
#include "source/git.h"

#include <dirent.h>
#include <errno.h>
#include <git2.h>
#include <git2/sys/repository.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"

struct pier_git_repo {
    git_repository *repo; /* the libgit2 handle, owned */
};

static pthread_once_t git_once = PTHREAD_ONCE_INIT;

static void git_init_once(void)
{
    git_libgit2_init();
}

static void git_ready(void)
{
    pthread_once(&git_once, git_init_once);
}

int pier_git_fail(int git_code, const char *fmt, ...)
{
    char context[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);

    const git_error *e = git_error_last();
    const char *msg = e && e->message && e->message[0] ? e->message : NULL;

    int code;
    switch (git_code) {
    case GIT_ENOTFOUND:
        code = PIER_ENOTFOUND;
        break;
    case GIT_EAUTH:
    case GIT_ECERTIFICATE:
        code = PIER_EAUTH;
        break;
    case GIT_EINVALIDSPEC:
    case GIT_EINVALID:
    case GIT_EAMBIGUOUS:
    case GIT_EPEEL:
        code = PIER_EINVALID;
        break;
    case GIT_EEXISTS:
        code = PIER_EEXISTS;
        break;
    case GIT_ELOCKED:
    case GIT_ECONFLICT:
    case GIT_EMODIFIED:
        code = PIER_ECONFLICT;
        break;
    default:
        code = PIER_ERR;
        break;
    }
    if (msg)
        pier_error_set(code, "%s: %s", context, msg);
    else
        pier_error_set(code, "%s: libgit2 error %d", context, git_code);
    git_error_clear();
    return code;
}

bool pier_git_is_zero_sha(const char *sha)
{
    if (!sha || strlen(sha) != PIER_GIT_SHA_LEN)
        return false;
    for (const char *p = sha; *p; p++)
        if (*p != '0')
            return false;
    return true;
}

bool pier_git_looks_like_sha(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 4 || n > PIER_GIT_SHA_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

struct git_repository *pier_git_handle(pier_git_repo *repo)
{
    return repo ? repo->repo : NULL;
}

const char *pier_git_path(const pier_git_repo *repo)
{
    return repo ? git_repository_path(repo->repo) : "";
}

int pier_git_open(pier_git_repo **out, const char *path, bool discover)
{
    *out = NULL;
    git_ready();
    git_repository *r = NULL;
    unsigned flags = discover ? 0 : GIT_REPOSITORY_OPEN_NO_SEARCH;
    int rc = git_repository_open_ext(&r, path, flags, NULL);
    if (rc == GIT_ENOTFOUND) {
        git_error_clear();
        return pier_error_set(PIER_ENOTFOUND, "no git repository %s %s",
                              discover ? "at or above" : "at", path);
    }
    if (rc < 0)
        return pier_git_fail(rc, "cannot open the git repository at %s", path);
    pier_git_repo *repo = pier_calloc(1, sizeof *repo);
    repo->repo = r;
    *out = repo;
    return 0;
}

void pier_git_close(pier_git_repo *repo)
{
    if (!repo)
        return;
    git_repository_free(repo->repo);
    free(repo);
}

/* Peels rev to a commit; *out is owned by the caller. */
static int lookup_commit(git_commit **out, git_repository *r, const char *rev)
{
    *out = NULL;
    git_object *obj = NULL;
    int rc = git_revparse_single(&obj, r, rev);
    if (rc < 0)
        return pier_git_fail(rc, "revision '%s' not found in %s", rev, git_repository_path(r));
    git_object *peeled = NULL;
    rc = git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT);
    git_object_free(obj);
    if (rc < 0)
        return pier_git_fail(rc, "revision '%s' in %s is not a commit", rev,
                             git_repository_path(r));
    *out = (git_commit *)peeled;
    return 0;
}

int pier_git_resolve(pier_git_repo *repo, const char *rev, char out[PIER_GIT_SHA_LEN + 1])
{
    out[0] = '\0';
    if (!rev || !rev[0])
        return pier_error_set(PIER_EINVALID, "empty revision");
    git_commit *c = NULL;
    int rc = lookup_commit(&c, repo->repo, rev);
    if (rc < 0)
        return rc;
    git_oid_tostr(out, PIER_GIT_SHA_LEN + 1, git_commit_id(c));
    git_commit_free(c);
    return 0;
}

/* "refs/heads/<branch>" into b, checked as a ref name. */
static int branch_ref(pier_buf *b, const char *branch)
{
    if (!branch || !branch[0])
        return pier_error_set(PIER_EINVALID, "no branch given");
    if (pier_buf_printf(b, "refs/heads/%s", branch) < 0)
        return pier_error_wrap(PIER_EINVALID, "branch '%.64s'", branch);
    int valid = 0;
    if (git_reference_name_is_valid(&valid, b->ptr) < 0 || !valid) {
        git_error_clear();
        return pier_error_set(PIER_EINVALID, "'%s' is not a valid branch name", branch);
    }
    return 0;
}

int pier_git_branch_tip(pier_git_repo *repo, const char *branch, char out[PIER_GIT_SHA_LEN + 1])
{
    out[0] = '\0';
    pier_buf ref = PIER_BUF_INIT;
    git_oid oid;
    int rc = branch_ref(&ref, branch);
    if (rc < 0)
        goto done;
    int grc = git_reference_name_to_id(&oid, repo->repo, ref.ptr);
    if (grc < 0) {
        rc = pier_git_fail(grc, "branch '%s' not found in %s", branch,
                           git_repository_path(repo->repo));
        goto done;
    }
    git_oid_tostr(out, PIER_GIT_SHA_LEN + 1, &oid);
done:
    pier_buf_free(&ref);
    return rc;
}

/* Mirror setup: opens the bare repository at path, or creates it when the
 * path is missing or an empty directory. */
static int open_mirror(git_repository **out, const char *path)
{
    *out = NULL;
    if (pier_file_is_dir(path)) {
        int rc = git_repository_open_ext(out, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
        if (rc == 0)
            return 0;
        if (rc != GIT_ENOTFOUND)
            return pier_git_fail(rc, "cannot open the git mirror %s", path);
        git_error_clear();
        DIR *d = opendir(path);
        if (!d)
            return pier_error_set_errno(PIER_EIO, "cannot read %s", path);
        struct dirent *e;
        bool empty = true;
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                empty = false;
        closedir(d);
        if (!empty)
            return pier_error_set(PIER_EEXISTS,
                                  "%s exists and is not a git repository: cannot use it as the "
                                  "mirror (remove it or choose another cache directory)",
                                  path);
    } else if (pier_file_exists(path)) {
        return pier_error_set(PIER_EEXISTS, "%s exists and is not a directory", path);
    }
    int rc = pier_file_mkdirs(path, 0755);
    if (rc < 0)
        return pier_error_wrap(rc, "cannot create the git mirror %s", path);
    rc = git_repository_init(out, path, 1);
    if (rc < 0)
        return pier_git_fail(rc, "cannot create the git mirror %s", path);
    PIER_DEBUG("git: created the mirror %s", path);
    return 0;
}

/* A URL without a scheme and not scp-like (host:path, user@host:path). */
static bool is_local_path(const char *url)
{
    if (strstr(url, "://"))
        return false;
    const char *colon = strchr(url, ':');
    const char *slash = strchr(url, '/');
    return !colon || (slash && slash < colon);
}

typedef struct {
    const pier_git_fetch_opts *opts; /* the credentials to offer */
    int tries;                       /* calls so far: libgit2 asks again after a refusal */
} cred_state;

/* libgit2's credential callback: offers what the options hold, at most
 * three times, so a wrong password fails instead of looping. */
static int credentials_cb(git_credential **out, const char *url, const char *user_from_url,
                          unsigned int allowed, void *payload)
{
    cred_state *st = payload;
    const pier_git_fetch_opts *o = st->opts;
    if (++st->tries > 3) {
        git_error_set_str(GIT_ERROR_NET, "authentication failed (credentials refused)");
        return GIT_EAUTH;
    }
    const char *user = o->username ? o->username : user_from_url ? user_from_url : "git";
    if (allowed & GIT_CREDENTIAL_SSH_KEY) {
        if (o->ssh_key)
            return git_credential_ssh_key_new(out, user, NULL, o->ssh_key, o->ssh_passphrase);
        return git_credential_ssh_key_from_agent(out, user);
    }
    if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && o->password)
        return git_credential_userpass_plaintext_new(out, user, o->password);
    if (allowed & GIT_CREDENTIAL_USERNAME)
        return git_credential_username_new(out, user);
    (void)url;
    git_error_set_str(GIT_ERROR_NET, "authentication required and no credentials are configured");
    return GIT_EAUTH;
}

int pier_git_fetch(pier_git_fetch_result *out, const pier_git_fetch_opts *o)
{
    pier_git_fetch_result res;
    memset(&res, 0, sizeof res);
    if (out)
        *out = res;
    if (!o || !o->url || !o->url[0] || !o->mirror || !o->mirror[0])
        return pier_error_set(PIER_EINVALID, "git fetch needs a URL and a mirror directory");
    git_ready();

    pier_buf ref = PIER_BUF_INIT, spec = PIER_BUF_INIT;
    git_repository *r = NULL;
    git_remote *remote = NULL;
    git_reference *stale = NULL;
    char *local = NULL;
    int rc = branch_ref(&ref, o->branch);
    if (rc < 0)
        goto done;
    if ((rc = pier_buf_printf(&spec, "+%s:%s", ref.ptr, ref.ptr)) < 0)
        goto done;
    if ((rc = open_mirror(&r, o->mirror)) < 0)
        goto done;

    git_oid oid;
    if (git_reference_name_to_id(&oid, r, ref.ptr) == 0)
        git_oid_tostr(res.previous, sizeof res.previous, &oid);
    git_error_clear();

    /* libgit2 reads a missing local path as an unknown protocol: say what
     * is wrong instead, and hand it an absolute path. */
    if (is_local_path(o->url)) {
        local = realpath(o->url, NULL);
        if (!local || !pier_file_is_dir(local)) {
            rc = pier_error_set(PIER_ENOTFOUND,
                                "cannot fetch branch '%s' from %s: no such repository directory",
                                o->branch, o->url);
            goto done;
        }
    }
    /* Anonymous, and without url.<base>.insteadOf: libgit2 1.5.1 leaks
     * pcre2 match data on every config entry its insteadOf lookup does not
     * match (fixed upstream by libgit2 PR 6382), which a long-running
     * poller would pay on each fetch. pier's URLs are explicit anyway. */
    git_remote_create_options ro;
    git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
    ro.repository = r;
    ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
    int grc = git_remote_create_with_opts(&remote, local ? local : o->url, &ro);
    if (grc < 0) {
        rc = pier_git_fail(grc, "bad git URL '%s'", o->url);
        goto done;
    }
    cred_state cred = {o, 0};
    git_fetch_options fo;
    git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
    fo.callbacks.credentials = credentials_cb;
    fo.callbacks.payload = &cred;
    fo.prune = GIT_FETCH_PRUNE;
    fo.update_fetchhead = 0;
    fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
    /* http.proxy from git config, else the *_proxy environment variables. */
    fo.proxy_opts.type = GIT_PROXY_AUTO;
    char *specs[] = {spec.ptr};
    git_strarray refspecs = {specs, 1};
    grc = git_remote_fetch(remote, &refspecs, &fo, "pier: fetch");
    if (grc < 0) {
        rc = pier_git_fail(grc, "cannot fetch branch '%s' from %s", o->branch, o->url);
        goto done;
    }

    /* The advertisement stays readable after the fetch disconnected. */
    const git_remote_head **heads = NULL;
    size_t nheads = 0;
    bool found = false;
    if (git_remote_ls(&heads, &nheads, remote) == 0)
        for (size_t i = 0; i < nheads && !found; i++)
            found = strcmp(heads[i]->name, ref.ptr) == 0;
    git_error_clear();
    if (!found) {
        if (git_reference_lookup(&stale, r, ref.ptr) == 0)
            git_reference_delete(stale);
        git_error_clear();
        rc = pier_error_set(PIER_ENOTFOUND, "branch '%s' not found in %s", o->branch, o->url);
        goto done;
    }
    grc = git_reference_name_to_id(&oid, r, ref.ptr);
    if (grc < 0) {
        rc = pier_git_fail(grc, "branch '%s' of %s is missing from the mirror %s after the fetch",
                           o->branch, o->url, o->mirror);
        goto done;
    }
    git_oid_tostr(res.tip, sizeof res.tip, &oid);
    res.updated = strcmp(res.tip, res.previous) != 0;
    const git_indexer_progress *st = git_remote_stats(remote);
    res.objects = st->received_objects;
    res.bytes = st->received_bytes;
    /* HEAD names the watched branch so `git log` in the mirror shows it. */
    if (git_repository_set_head(r, ref.ptr) < 0)
        git_error_clear();
    PIER_DEBUG("git: fetched %s from %s: %.12s (%zu objects, %zu bytes)", o->branch, o->url,
               res.tip, res.objects, res.bytes);
    if (out)
        *out = res;
    rc = 0;
done:
    free(local);
    git_reference_free(stale);
    git_remote_free(remote);
    git_repository_free(r);
    pier_buf_free(&ref);
    pier_buf_free(&spec);
    return rc;
}

/* 0 when dir is missing (it is created) or an empty directory. */
static int prepare_empty_dir(const char *dir)
{
    if (pier_file_is_dir(dir)) {
        DIR *d = opendir(dir);
        if (!d)
            return pier_error_set_errno(PIER_EIO, "cannot read %s", dir);
        struct dirent *e;
        bool empty = true;
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                empty = false;
        closedir(d);
        if (!empty)
            return pier_error_set(PIER_EEXISTS,
                                  "checkout directory %s is not empty (a build needs a fresh one)",
                                  dir);
        return 0;
    }
    if (pier_file_exists(dir))
        return pier_error_set(PIER_EEXISTS, "checkout directory %s exists and is not a directory",
                              dir);
    return pier_file_mkdirs(dir, 0755);
}

int pier_git_checkout(pier_git_repo *repo, const char *rev, const char *dir)
{
    const char *gitdir = git_repository_path(repo->repo);
    git_repository *own = NULL;
    git_commit *c = NULL;
    git_tree *tree = NULL;
    git_index *empty = NULL, *attrs = NULL;
    int rc = lookup_commit(&c, repo->repo, rev);
    if (rc < 0)
        goto done;
    if ((rc = prepare_empty_dir(dir)) < 0)
        goto done;
    /* A handle of our own: its index is replaced below, and the caller's
     * handle must not see that. */
    int grc = git_repository_open_ext(&own, gitdir, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);
    if (grc == 0)
        grc = git_tree_lookup(&tree, own, git_commit_tree_id(c));
    if (grc == 0)
        grc = git_index_new(&empty);
    /* The filters (.gitattributes eol, ident) read attributes from the
     * repository's index: make it the target tree, in memory only, so the
     * files come out as `git clone` writes them. */
    if (grc == 0)
        grc = git_index_new(&attrs);
    if (grc == 0)
        grc = git_index_read_tree(attrs, tree);
    if (grc == 0)
        grc = git_repository_set_index(own, attrs);
    if (grc < 0) {
        rc = pier_git_fail(grc, "cannot read the tree of %s in %s", rev, gitdir);
        goto done;
    }
    git_checkout_options co;
    git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
    co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_RECREATE_MISSING |
                           GIT_CHECKOUT_DONT_UPDATE_INDEX | GIT_CHECKOUT_DONT_WRITE_INDEX |
                           GIT_CHECKOUT_NO_REFRESH;
    co.target_directory = dir;
    /* An empty baseline: every file of the tree is "new", whatever HEAD is. */
    co.baseline_index = empty;
    grc = git_checkout_tree(own, (const git_object *)tree, &co);
    if (grc < 0) {
        rc = pier_git_fail(grc, "cannot check out %s of %s into %s", rev, gitdir, dir);
        goto done;
    }
    rc = 0;
done:
    git_index_free(attrs);
    git_index_free(empty);
    git_tree_free(tree);
    git_commit_free(c);
    git_repository_free(own);
    return rc;
}

int pier_git_describe(pier_git_commit_info *out, pier_git_repo *repo, const char *rev)
{
    memset(out, 0, sizeof *out);
    git_commit *c = NULL;
    git_buf shortid = GIT_BUF_INIT;
    int rc = lookup_commit(&c, repo->repo, rev);
    if (rc < 0)
        goto done;
    git_oid_tostr(out->sha, sizeof out->sha, git_commit_id(c));
    if (git_object_short_id(&shortid, (const git_object *)c) == 0)
        snprintf(out->short_sha, sizeof out->short_sha, "%s", shortid.ptr);
    else
        snprintf(out->short_sha, sizeof out->short_sha, "%.7s", out->sha);
    git_error_clear();
    const char *summary = git_commit_summary(c);
    out->summary = pier_strdup(summary ? summary : "");
    const git_signature *a = git_commit_author(c);
    out->author_name = pier_strdup(a && a->name ? a->name : "");
    out->author_email = pier_strdup(a && a->email ? a->email : "");
    out->time = a ? (int64_t)a->when.time : (int64_t)git_commit_time(c);
    out->tz_offset = a ? a->when.offset : git_commit_time_offset(c);
    rc = 0;
done:
    git_buf_dispose(&shortid);
    git_commit_free(c);
    return rc;
}

void pier_git_commit_info_clear(pier_git_commit_info *info)
{
    if (!info)
        return;
    free(info->summary);
    free(info->author_name);
    free(info->author_email);
    memset(info, 0, sizeof *info);
}
