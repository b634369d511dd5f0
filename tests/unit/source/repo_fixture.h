/*
 * repo_fixture: builds throwaway git repositories for the source tests by
 * running /usr/bin/git in a temp directory, isolated from the machine's git
 * config (HOME points into the temp dir, no system or global config) and
 * with fixed author/committer identities and dates.
 *
 * Helpers are static inline so a test file uses only what it needs.
 */
#ifndef PIER_TEST_REPO_FIXTURE_H
#define PIER_TEST_REPO_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"

#define FX_GIT "/usr/bin/git"

/* Makes a fresh temp directory, points HOME and git's config at it. The
 * returned path is malloc'ed. */
static inline char *fx_setup(void)
{
    const char *tmp = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/pier-source-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    char *dir = mkdtemp(tmpl);
    if (!dir) {
        perror("mkdtemp");
        abort();
    }
    setenv("HOME", dir, 1);
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
    setenv("GIT_AUTHOR_NAME", "Ada Lovelace", 1);
    setenv("GIT_AUTHOR_EMAIL", "ada@example.com", 1);
    setenv("GIT_COMMITTER_NAME", "Pier Test", 1);
    setenv("GIT_COMMITTER_EMAIL", "test@example.com", 1);
    setenv("GIT_AUTHOR_DATE", "1700000000 +0100", 1);
    setenv("GIT_COMMITTER_DATE", "1700000000 +0100", 1);
    unsetenv("GIT_DIR");
    unsetenv("GIT_WORK_TREE");
    return strdup(dir);
}

static inline void fx_teardown(char *dir)
{
    if (dir)
        pier_file_remove_tree(dir);
    free(dir);
}

/* Runs a shell command in dir; returns its exit status (-1 if it died). */
static inline int fx_sh(const char *dir, const char *fmt, ...)
{
    pier_buf cmd = PIER_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    pier_buf_printf(&cmd, "cd '%s' && ", dir);
    pier_buf_vprintf(&cmd, fmt, ap);
    va_end(ap);
    int st = system(pier_buf_cstr(&cmd));
    if (st != 0)
        fprintf(stderr, "fixture: command failed (%d): %s\n", st, pier_buf_cstr(&cmd));
    pier_buf_free(&cmd);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* Writes content (len bytes) to dir/rel, creating parents. */
static inline void fx_write_n(const char *dir, const char *rel, const void *content, size_t len)
{
    char *path = pier_path_join(dir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    pier_file_mkdirs(path, 0755);
    *slash = '/';
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        abort();
    }
    fwrite(content, 1, len, f);
    fclose(f);
    free(path);
}

static inline void fx_write(const char *dir, const char *rel, const char *content)
{
    fx_write_n(dir, rel, content, strlen(content));
}

/* `git rev-parse rev` in dir into out (41 bytes); "" on failure. */
static inline void fx_rev(const char *dir, const char *rev, char *out)
{
    out[0] = '\0';
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && " FX_GIT " rev-parse --verify -q '%s^{commit}'", dir,
             rev);
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    if (!fgets(out, 42, p))
        out[0] = '\0';
    pclose(p);
    out[strcspn(out, "\n")] = '\0';
}

/* git init -b main in dir/name; returns the malloc'ed path. */
static inline char *fx_init(const char *root, const char *name)
{
    char *path = pier_path_join(root, name);
    pier_file_mkdirs(path, 0755);
    if (fx_sh(path, FX_GIT " -c init.defaultBranch=main init -q") != 0)
        abort();
    return path;
}

/* git add -A && git commit -m msg (allowing an empty commit); sha into out
 * when out is not NULL. */
static inline int fx_commit(const char *repo, const char *msg, char *out)
{
    int rc = fx_sh(repo, FX_GIT " add -A && " FX_GIT " commit -q --allow-empty -m '%s'", msg);
    if (out)
        fx_rev(repo, "HEAD", out);
    return rc;
}

#endif
