/*
 * git: the repository side of a pipeline's source stage, on libgit2.
 *
 * A pipeline watches one branch of one repository. pier keeps a bare mirror
 * of that branch alone per pipeline (by convention <cache>/<pipeline>.git):
 * pier_git_fetch creates it on first use and then fetches only
 * +refs/heads/<branch>:refs/heads/<branch> into it, with prune, no tags and
 * no FETCH_HEAD, so a fetch costs what the new commits cost. A build gets the
 * tree of one commit written into a fresh directory by pier_git_checkout
 * (plain files, no .git: what CodeBuild hands a build as its source dir),
 * with .gitattributes filters (eol, ident) applied as a clone would; git-lfs
 * smudge filters are not run, so LFS files stay pointers.
 *
 * Remotes: https (credentials from the options; proxies from git config or
 * the environment), ssh (a key file or ssh-agent; libgit2 >= 1.5.1 checks
 * the host key against ~/.ssh/known_hosts), file:// and local paths.
 * url.<base>.insteadOf rewriting is not applied.
 *
 * Only src/source/ includes git2.h; this header names no libgit2 type except
 * the opaque struct git_repository that changes.c needs.
 *
 * Ownership: what comes back through `**out` belongs to the caller and is
 * freed with the matching _free/_close. Errors copy libgit2's own message
 * (git_error_last()) and name the repository, branch or revision at fault.
 * Thread-safety: one pier_git_repo per thread; libgit2 itself is set up once
 * per process on first use.
 */
#ifndef PIER_GIT_H
#define PIER_GIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PIER_GIT_SHA_LEN 40 /* hex characters of a SHA-1 object id */

typedef struct pier_git_repo pier_git_repo; /* an open repository */

/* Where and what to fetch. Only url, branch and mirror are required. */
typedef struct {
    const char *url;            /* local path, file://, https://, ssh://, user@host:path */
    const char *branch;         /* the watched branch, "main" (not refs/heads/main) */
    const char *mirror;         /* the bare mirror directory; created when missing */
    const char *username;       /* https user or ssh user (default: from the URL, else "git") */
    const char *password;       /* https password or token; NULL for none */
    const char *ssh_key;        /* private key file for ssh; NULL tries ssh-agent */
    const char *ssh_passphrase; /* passphrase of ssh_key, or NULL */
} pier_git_fetch_opts;

/* What a fetch found. */
typedef struct {
    char tip[PIER_GIT_SHA_LEN + 1];      /* the branch's commit after the fetch */
    char previous[PIER_GIT_SHA_LEN + 1]; /* its commit before, "" on first fetch */
    bool updated;                        /* tip != previous */
    size_t objects;                      /* objects received over the wire */
    size_t bytes;                        /* bytes received */
} pier_git_fetch_result;

/* One commit, for display. */
typedef struct {
    char sha[PIER_GIT_SHA_LEN + 1];       /* full id */
    char short_sha[PIER_GIT_SHA_LEN + 1]; /* unique abbreviation, at least 7 */
    char *summary;                        /* first line of the message */
    char *author_name;                    /* author's name */
    char *author_email;                   /* author's email */
    int64_t time;                         /* author time, seconds since the epoch */
    int tz_offset;                        /* author's UTC offset in minutes */
} pier_git_commit_info;

/* Opens the repository at path (a work tree, a .git dir or a bare repo).
 * With discover, looks upward from path as git does. PIER_ENOTFOUND when
 * there is none. */
int pier_git_open(pier_git_repo **out, const char *path, bool discover);
void pier_git_close(pier_git_repo *repo);
/* The directory of the repository (the .git dir or the bare repo). Borrowed. */
const char *pier_git_path(const pier_git_repo *repo);

/* Fetches opts->branch from opts->url into the bare mirror opts->mirror,
 * creating it on first use, and fills *out (may be NULL). A branch missing
 * on the remote is PIER_ENOTFOUND naming branch and URL (and its stale
 * mirror ref is removed); bad credentials PIER_EAUTH; other failures carry
 * libgit2's message. */
int pier_git_fetch(pier_git_fetch_result *out, const pier_git_fetch_opts *opts);

/* The commit at the tip of refs/heads/<branch>, as hex. PIER_ENOTFOUND when
 * the branch does not exist. */
int pier_git_branch_tip(pier_git_repo *repo, const char *branch, char out[PIER_GIT_SHA_LEN + 1]);
/* Resolves any revision git understands (sha, abbreviation, branch, tag,
 * HEAD~2 ...) to a commit, as hex. PIER_ENOTFOUND when it names nothing. */
int pier_git_resolve(pier_git_repo *repo, const char *rev, char out[PIER_GIT_SHA_LEN + 1]);

/* Writes the tree of commit `rev` into dir, which must be missing or empty
 * (it is created with its parents). Files get their modes (executable bit),
 * symlinks stay symlinks, submodules become empty directories; no .git is
 * written. PIER_EEXISTS when dir holds anything. */
int pier_git_checkout(pier_git_repo *repo, const char *rev, const char *dir);

/* Fills *out for commit `rev`; release with pier_git_commit_info_clear. */
int pier_git_describe(pier_git_commit_info *out, pier_git_repo *repo, const char *rev);
void pier_git_commit_info_clear(pier_git_commit_info *info);

/* True for the 40-zero id git hooks use for "no commit" (new branch before,
 * deleted branch after). */
bool pier_git_is_zero_sha(const char *sha);
/* True for 4 to 40 hex digits: something that can only be an object id. */
bool pier_git_looks_like_sha(const char *s);

/* For src/source/ only. The libgit2 handle behind repo (borrowed). */
struct git_repository *pier_git_handle(pier_git_repo *repo);
/* For src/source/ only. Sets pier's error from libgit2's last error after a
 * libgit2 call returned git_code: "<context>: <libgit2 message>", and returns
 * the matching PIER_ code (ENOTFOUND, EAUTH, EINVALID, EEXISTS, ECONFLICT or
 * ERR). */
int pier_git_fail(int git_code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
