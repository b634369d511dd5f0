/*
 * changes: would this push build? The source stage's decision.
 *
 * The tree of `since` (the last commit the pipeline DEPLOYED) is diffed
 * against the tree of `to` (the new tip) in one tree-to-tree diff, with
 * rename detection, and the changed paths are filtered by include and
 * exclude globs. Comparing trees, not walking commits, makes the answer
 * independent of how many commits the push carries and of their order, and
 * a failed run hides nothing: the base only moves on a deploy.
 *
 * Rules:
 * - BUILD when a changed path matches: a rename counts on both sides (its
 *   old and its new path are both candidates), so moving a file into or out
 *   of frontend/ builds frontend.
 * - A path matches when it matches any include (no includes: every path)
 *   and no exclude. A pattern also covers everything under a directory it
 *   matches, as in .gitignore: "frontend", "frontend/" and "frontend/ **"
 *   (no space) all select frontend/a/b.js; an exclude "frontend/ ** / *.md"
 *   (no spaces) drops only the Markdown files under frontend.
 *   A leading "./" or "/" is ignored. Glob syntax: base/glob.h.
 * - Never wrongly skip: no base (first run), the zero SHA, a base that no
 *   longer exists (force push, history rewritten, shallow clone) and any git
 *   error all decide BUILD, with the reason saying why.
 *
 * Costs: resolving two revisions, one diff of two trees (subtrees with equal
 * ids are skipped without reading them), rename detection over the changed
 * files only; counting the commits between is optional and bounded.
 */
#ifndef PIER_CHANGES_H
#define PIER_CHANGES_H

#include <stdbool.h>
#include <stddef.h>

#include "source/git.h"

typedef enum {
    PIER_CHANGES_BUILD = 1, /* run the pipeline */
    PIER_CHANGES_SKIP = 0,  /* nothing under the watched paths changed */
} pier_changes_decision;

/* Why the decision was made. */
typedef enum {
    PIER_CHANGES_MATCHED,      /* BUILD: changed files matched the filters */
    PIER_CHANGES_NONE_MATCHED, /* SKIP: no changed file matched (or no change at all) */
    PIER_CHANGES_FIRST_RUN,    /* BUILD: no deployed commit yet */
    PIER_CHANGES_ZERO_SHA,     /* BUILD: the base is 40 zeros */
    PIER_CHANGES_BASE_MISSING, /* BUILD: the base id is not in the repository */
    PIER_CHANGES_ERROR,        /* BUILD: git failed; `error` holds the code */
} pier_changes_why;

typedef enum {
    PIER_CHANGE_ADDED,
    PIER_CHANGE_MODIFIED,
    PIER_CHANGE_DELETED,
    PIER_CHANGE_RENAMED,
    PIER_CHANGE_COPIED,
    PIER_CHANGE_TYPECHANGE, /* e.g. a file became a symlink */
} pier_change_status;

typedef struct {
    pier_change_status status; /* what happened to it */
    char *path;                /* the path in `to` (in `since` for a deletion) */
    char *old_path;            /* renamed/copied: the path in `since`; else NULL */
} pier_change;

typedef struct {
    const char *const *include; /* globs; none means every path */
    size_t include_count;       /* entries in include */
    const char *const *exclude; /* globs a path must not match */
    size_t exclude_count;       /* entries in exclude */
    size_t max_commits;         /* count commits since..to up to this; 0: don't count */
} pier_changes_opts;

#define PIER_CHANGES_OPTS_INIT                                                                     \
    {                                                                                              \
        NULL, 0, NULL, 0, 1000                                                                     \
    }

typedef struct {
    pier_changes_decision decision;   /* BUILD or SKIP */
    pier_changes_why why;             /* the rule that decided */
    char *reason;                     /* one line for people: "3 files under frontend/ changed
                                         since 1a2b3c4" */
    int error;                        /* why == ERROR: the PIER_ code; else 0 */
    char since[PIER_GIT_SHA_LEN + 1]; /* the resolved base, "" when there is none */
    char to[PIER_GIT_SHA_LEN + 1];    /* the resolved tip, "" when it did not resolve */
    long commits;                     /* commits in since..to; -1 when not counted */
    bool commits_capped;              /* there are more than max_commits */
    size_t files_changed;             /* entries in the whole diff, before filtering */
    pier_change *files;               /* the entries that matched, by path */
    size_t count;                     /* entries in files */
} pier_changes;

/* Decides whether `to` needs a build given the deployed commit `since`
 * (NULL or "" on the first run; any revision git resolves). Fills *out
 * (owned; pier_changes_free) and returns 0 for every git outcome, errors
 * included: a git failure is a BUILD with why == PIER_CHANGES_ERROR, error
 * set and the reason carrying libgit2's message (also left in
 * pier_error_last()). Fails, with *out NULL, only on bad arguments: a
 * malformed glob (PIER_EINVALID naming it) or a NULL repo/to. */
int pier_changes_detect(pier_changes **out, pier_git_repo *repo, const char *since, const char *to,
                        const pier_changes_opts *opts);
void pier_changes_free(pier_changes *changes);

/* The filter alone: does path pass opts' include and exclude globs? */
bool pier_changes_path_selected(const pier_changes_opts *opts, const char *path);
/* Checks every glob of opts; PIER_EINVALID naming the first bad one. */
int pier_changes_validate(const pier_changes_opts *opts);

/* "added", "modified", "deleted", "renamed", "copied", "typechange". */
const char *pier_change_status_name(pier_change_status status);
/* "matched", "none_matched", "first_run", "zero_sha", "base_missing", "error". */
const char *pier_changes_why_name(pier_changes_why why);
/* "build" or "skip". */
const char *pier_changes_decision_name(pier_changes_decision decision);

#endif
