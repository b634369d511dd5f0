/*
 * runner: see runner.h.
 *
 * How one command runs. CodeBuild 0.2 runs each command as a small script
 * (its logs name /codebuild/output/tmp/script.sh) and carries the shell's
 * variables and working directory from one command to the next; functions
 * and arrays do not carry over (aws/aws-cdk#26694). pier does the same:
 * each command is written to <scratch>/cmd.sh behind a prologue that
 *   - turns on `set -a`, so a plain assignment (IMAGE_TAG=...) is exported
 *     and survives like an export,
 *   - installs an EXIT trap that writes "$PWD\0" and `env -0` into
 *     <scratch>/state (the trap also runs on `exit N`, so `exit 1` fails one
 *     command, not the build),
 * and is run by the build's shell in a new session (its own process group),
 * with the environment and directory the previous command left. The state
 * file is read back and deleted after each command. Secrets pass through
 * the environment only; the scratch directory is 0700 and removed at the end.
 *
 * Output. Every command writes to one pipe (stdout and stderr merged) that
 * lives for the whole build, so a background process's output is still
 * logged. The runner reads it while it waits (poll on the pipe and a pidfd),
 * splits it into lines, masks every secret value (longest first, and AWS
 * access key ids as CodeBuild does), timestamps each line and hands it to
 * the callback and the log file. A line is masked whole; a line longer than
 * LONG_LINE is flushed early except for its last (longest secret - 1) bytes,
 * so a secret split across reads is still caught.
 *
 * Stopping. A timeout or cancel sends SIGTERM to every process group the
 * build started, then SIGKILL after the grace period; at the end of every
 * build the groups that still have live members (found in /proc) are
 * stopped the same way. procgroup.c starts the commands and keeps, signals
 * and checks the groups; the runner decides when.
 */
#include "build/runner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "base/str.h"
#include "build/artifacts.h"
#include "build/mask.h"
#include "build/procgroup.h"

extern char **environ;

#define LONG_LINE     (64 * 1024)        /* a line longer than this is flushed in pieces */
#define READ_CHUNK    (64 * 1024)        /* bytes per read of the output pipe */
#define STATE_MAX     ((size_t)64 << 20) /* cap on one state file */
#define DEFAULT_GRACE 5000               /* ms between SIGTERM and SIGKILL */

typedef struct {
    char **items; /* "NAME=VALUE", owned */
    size_t count; /* entries in use */
    size_t cap;   /* allocated */
} envmap;

struct pier_runner {
    const pier_buildspec *spec; /* borrowed */
    pier_runner_options opts;   /* copied; strings borrowed */
    atomic_int cancel;          /* set by pier_runner_cancel */
    atomic_int running;         /* a run is in progress */
    bool used;                  /* run already called */
    /* state of the run */
    char *src_real;           /* realpath of src_dir */
    char *tmp;                /* private scratch directory (0700) */
    char *script;             /* tmp/cmd.sh */
    char *state;              /* tmp/state */
    char *shell;              /* absolute path of the shell */
    char *env_tool;           /* absolute path of env(1) */
    envmap env;               /* the build's environment */
    char *cwd;                /* the build's working directory */
    pier_mask *mask;          /* secret values, hidden in every line */
    char **secret_names;      /* variables holding secrets (never exported) */
    size_t secret_name_count; /* their number */
    int out_r;                /* read end of the output pipe */
    int out_w;                /* write end, given to every command */
    int null_fd;              /* /dev/null for stdin */
    int log_fd;               /* options.log_file, or -1 */
    pier_buf partial;         /* output not yet ended by a newline */
    pier_procgroup groups;    /* process groups started */
    int64_t deadline;         /* monotonic ms for the timeout, 0 = none */
    pier_build_status stop;   /* TIMED_OUT or STOPPED once stopping, else SUCCEEDED */
};

/* ---- time ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void format_time(char *out, size_t size, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03dZ", (int)(ms % 1000));
}

/* ---- environment map ---- */

static size_t entry_name_len(const char *e)
{
    const char *eq = strchr(e, '=');
    return eq ? (size_t)(eq - e) : strlen(e);
}

static ssize_t env_find(const envmap *m, const char *name, size_t n)
{
    for (size_t i = 0; i < m->count; i++)
        if (entry_name_len(m->items[i]) == n && strncmp(m->items[i], name, n) == 0)
            return (ssize_t)i;
    return -1;
}

static const char *env_get(const envmap *m, const char *name)
{
    ssize_t i = env_find(m, name, strlen(name));
    return i < 0 ? NULL : m->items[i] + strlen(name) + 1;
}

/* Takes ownership of entry ("NAME=VALUE"). */
static void env_put(envmap *m, char *entry)
{
    ssize_t i = env_find(m, entry, entry_name_len(entry));
    if (i >= 0) {
        free(m->items[i]);
        m->items[i] = entry;
        return;
    }
    if (m->count == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->items = pier_realloc(m->items, m->cap * sizeof *m->items);
    }
    m->items[m->count++] = entry;
}

static void env_set(envmap *m, const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value);
    char *e = pier_malloc(n + v + 2);
    memcpy(e, name, n);
    e[n] = '=';
    memcpy(e + n + 1, value, v + 1);
    env_put(m, e);
}

static void env_clear(envmap *m)
{
    for (size_t i = 0; i < m->count; i++)
        free(m->items[i]);
    m->count = 0;
}

static void env_free(envmap *m)
{
    env_clear(m);
    free(m->items);
    m->items = NULL;
    m->cap = 0;
}

/* A NULL-terminated copy of the pointers, for execve. */
static char **env_array(const envmap *m)
{
    char **a = pier_calloc(m->count + 1, sizeof *a);
    memcpy(a, m->items, m->count * sizeof *a);
    return a;
}

/* ---- masking and log lines ---- */

static void add_secret_name(pier_runner *r, const char *name)
{
    r->secret_names =
        pier_realloc(r->secret_names, (r->secret_name_count + 1) * sizeof *r->secret_names);
    r->secret_names[r->secret_name_count++] = pier_strdup(name);
}

static bool is_secret_name(const pier_runner *r, const char *name)
{
    for (size_t i = 0; i < r->secret_name_count; i++)
        if (strcmp(r->secret_names[i], name) == 0)
            return true;
    return false;
}

/* A malloc'ed masked copy of s. */
static char *masked(const pier_runner *r, const char *s)
{
    return pier_mask_dup(r->mask, s);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Delivers one already-masked line. */
static void deliver(pier_runner *r, const char *text, size_t n, bool from_runner)
{
    if (!r->opts.log && r->log_fd < 0)
        return;
    int64_t now = wall_ms();
    char ts[40];
    format_time(ts, sizeof ts, now);
    pier_buf line;
    pier_buf_init(&line, n + 64);
    pier_buf_printf(&line, "%s ", ts);
    size_t text_at = line.len;
    pier_buf_put(&line, text, n);
    if (r->opts.log) {
        pier_runner_log_line l = {now, line.ptr + text_at, line.ptr, from_runner};
        r->opts.log(r->opts.log_ctx, &l);
    }
    if (r->log_fd >= 0) {
        pier_buf_putc(&line, '\n');
        write_all(r->log_fd, line.ptr, line.len);
    }
    pier_buf_free(&line);
}

/* Masks a raw line and delivers it. */
static void emit(pier_runner *r, const char *raw, size_t n, bool from_runner)
{
    if (n && raw[n - 1] == '\r')
        n--;
    pier_buf m;
    pier_buf_init(&m, n * 2 + 64);
    pier_mask_apply(r->mask, raw, n, &m);
    deliver(r, pier_buf_cstr(&m), m.len, from_runner);
    pier_buf_free(&m);
}

static void rlog(pier_runner *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A runner line "[pier] ...", masked; a multi-line message gives one log
 * line per line. */
static void rlog(pier_runner *r, const char *fmt, ...)
{
    pier_buf b;
    pier_buf_init(&b, PIER_BUF_MAX_DEFAULT);
    va_list ap;
    va_start(ap, fmt);
    pier_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    const char *s = pier_buf_cstr(&b);
    bool first = true;
    do {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        pier_buf line;
        pier_buf_init(&line, PIER_BUF_MAX_DEFAULT);
        pier_buf_puts(&line, first ? "[pier] " : "[pier]   ");
        pier_buf_put(&line, s, n);
        emit(r, line.ptr, line.len, true);
        pier_buf_free(&line);
        first = false;
        s += n + (nl ? 1 : 0);
    } while (*s);
    pier_buf_free(&b);
}

static void note_cb(void *ctx, const char *msg)
{
    rlog(ctx, "%s", msg);
}

/* Feeds command output: whole lines go out at once; an overlong line is
 * masked and flushed except for a tail that could start a secret. */
static void feed(pier_runner *r, const char *data, size_t n)
{
    while (n) {
        const char *nl = memchr(data, '\n', n);
        size_t take = nl ? (size_t)(nl - data) : n;
        pier_buf_put(&r->partial, data, take);
        if (nl) {
            emit(r, pier_buf_cstr(&r->partial), r->partial.len, false);
            pier_buf_reset(&r->partial);
            take++;
        } else if (r->partial.len > LONG_LINE) {
            pier_buf m;
            pier_buf_init(&m, r->partial.len * 2 + 64);
            pier_mask_apply(r->mask, r->partial.ptr, r->partial.len, &m);
            size_t longest = pier_mask_longest(r->mask);
            size_t keep = longest ? longest - 1 : 0;
            if (keep > m.len)
                keep = m.len;
            deliver(r, m.ptr, m.len - keep, false);
            pier_buf_reset(&r->partial);
            pier_buf_put(&r->partial, m.ptr + m.len - keep, keep);
            pier_buf_free(&m);
        }
        data += take;
        n -= take;
    }
}

static void flush_partial(pier_runner *r)
{
    if (r->partial.len) {
        emit(r, r->partial.ptr, r->partial.len, false);
        pier_buf_reset(&r->partial);
    }
}

/* Reads what the output pipe holds now (never waits). */
static void drain(pier_runner *r)
{
    char *buf = pier_malloc(READ_CHUNK);
    for (;;) {
        ssize_t n = read(r->out_r, buf, READ_CHUNK);
        if (n > 0) {
            feed(r, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        break;
    }
    free(buf);
}

/* ---- processes ---- */

static unsigned grace_ms(const pier_runner *r)
{
    return r->opts.kill_grace_ms ? r->opts.kill_grace_ms : DEFAULT_GRACE;
}

/* Stops whatever the build left running: SIGTERM, then SIGKILL after the
 * grace period. Output written meanwhile is still logged. */
static void stop_leftovers(pier_runner *r)
{
    if (!pier_procgroup_alive(&r->groups))
        return;
    rlog(r, "Stopping processes the build left running");
    pier_procgroup_signal(&r->groups, SIGTERM);
    int64_t until = mono_ms() + grace_ms(r);
    while (mono_ms() < until && pier_procgroup_alive(&r->groups)) {
        struct pollfd p = {r->out_r, POLLIN, 0};
        if (poll(&p, 1, 20) > 0)
            drain(r);
    }
    pier_procgroup_signal(&r->groups, SIGKILL);
    drain(r);
}

/* Checks the timeout and the cancel flag; the first reason wins. */
static bool should_stop(pier_runner *r)
{
    if (r->stop != PIER_BUILD_SUCCEEDED)
        return true;
    if (atomic_load(&r->cancel)) {
        r->stop = PIER_BUILD_STOPPED;
        return true;
    }
    if (r->deadline && mono_ms() >= r->deadline) {
        r->stop = PIER_BUILD_TIMED_OUT;
        return true;
    }
    return false;
}

/* Starts the shell on the script in a new session (procgroup.h). */
static int spawn(pier_runner *r, pid_t *out)
{
    char **envp = env_array(&r->env);
    int rc = pier_procgroup_spawn(&r->groups, r->shell, r->script, envp, r->cwd, r->null_fd,
                                  r->out_w, out);
    free(envp);
    return rc;
}

/* Waits for pid while logging its output; handles timeout and cancel.
 * Returns its exit code (128+N for signal N). */
static int wait_child(pier_runner *r, pid_t pid)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    char *buf = pier_malloc(READ_CHUNK);
    bool terminating = false, killed = false;
    int64_t kill_at = 0;
    int code = 255;
    for (;;) {
        struct pollfd fds[2] = {{r->out_r, POLLIN, 0}, {pidfd, POLLIN, 0}};
        int pr = poll(fds, pidfd >= 0 ? 2 : 1, pidfd >= 0 ? 100 : 10);
        if (pr > 0 && (fds[0].revents & POLLIN)) {
            ssize_t n = read(r->out_r, buf, READ_CHUNK);
            if (n > 0)
                feed(r, buf, (size_t)n);
        }
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            code = pier_procgroup_exit_code(st);
            break;
        }
        if (w < 0 && errno != EINTR)
            break; /* not our child any more: nothing to wait for */
        if (!terminating && should_stop(r)) {
            pier_procgroup_signal(&r->groups, SIGTERM);
            terminating = true;
            kill_at = mono_ms() + grace_ms(r);
        } else if (terminating && !killed && mono_ms() >= kill_at) {
            pier_procgroup_signal(&r->groups, SIGKILL);
            killed = true;
        }
    }
    if (terminating && !killed)
        pier_procgroup_signal(&r->groups, SIGKILL);
    if (pidfd >= 0)
        close(pidfd);
    free(buf);
    drain(r);
    return code;
}

/* Reads the state the command's EXIT trap wrote: "$PWD\0" then env -0. A
 * missing state (the command replaced the trap, or exec'd) keeps the old. */
static void load_state(pier_runner *r)
{
    pier_buf b;
    pier_buf_init(&b, STATE_MAX);
    if (pier_file_read(r->state, &b) != 0 || b.len == 0) {
        pier_buf_free(&b);
        unlink(r->state);
        return;
    }
    unlink(r->state);
    const char *p = b.ptr, *end = b.ptr + b.len;
    const char *z = memchr(p, '\0', (size_t)(end - p));
    if (!z || z == p) {
        pier_buf_free(&b);
        return;
    }
    char *cwd = pier_strndup(p, (size_t)(z - p));
    if (pier_file_is_dir(cwd)) {
        free(r->cwd);
        r->cwd = cwd;
    } else {
        free(cwd);
    }
    p = z + 1;
    envmap fresh = {0};
    while (p < end) {
        z = memchr(p, '\0', (size_t)(end - p));
        size_t n = z ? (size_t)(z - p) : (size_t)(end - p);
        const char *eq = memchr(p, '=', n);
        if (eq && eq != p) {
            size_t name = (size_t)(eq - p);
            bool skip = (name == 1 && p[0] == '_') || (name == 5 && !strncmp(p, "SHLVL", 5)) ||
                        (name >= 7 && !strncmp(p, "__pier_", 7));
            if (!skip)
                env_put(&fresh, pier_strndup(p, n));
        }
        p += n + 1;
    }
    if (fresh.count) {
        env_free(&r->env);
        r->env = fresh;
    } else {
        env_free(&fresh);
    }
    pier_buf_free(&b);
}

/* Runs one command (the text as the shell reads it) as described at the
 * top. Returns 0 and *code, or a negative code when pier could not run it. */
static int run_text(pier_runner *r, const char *text, int *code)
{
    pier_buf s;
    pier_buf_init(&s, PIER_BUF_MAX_DEFAULT);
    pier_buf_printf(&s,
                    "__pier_state='%s'\n"
                    "__pier_env='%s'\n"
                    "trap '__pier_rc=$?; { printf \"%%s\\0\" \"$PWD\"; \"$__pier_env\" -0; } "
                    ">\"$__pier_state\" 2>/dev/null; exit $__pier_rc' EXIT\n"
                    "set -a\n",
                    r->state, r->env_tool);
    pier_buf_puts(&s, text);
    pier_buf_putc(&s, '\n');
    int rc = pier_file_write_atomic(r->script, s.ptr, s.len, 0600);
    pier_buf_free(&s);
    if (rc)
        return rc;
    unlink(r->state);
    pid_t pid = -1;
    if ((rc = spawn(r, &pid)))
        return rc;
    *code = wait_child(r, pid);
    flush_partial(r); /* a last line without a newline belongs to this command */
    load_state(r);
    return 0;
}

/* ---- setup ---- */

static bool executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The first name found on PATH (of the build's environment), or NULL. */
static char *find_in_path(const pier_runner *r, const char *name)
{
    const char *path = env_get(&r->env, "PATH");
    if (!path || !path[0])
        path = "/usr/local/bin:/usr/bin:/bin";
    char *copy = pier_strdup(path), *save = NULL, *found = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        if (dir[0] != '/')
            continue;
        char *cand = pier_path_join(dir, name);
        if (executable(cand))
            found = cand;
        else
            free(cand);
    }
    free(copy);
    return found;
}

/* A path pier writes between single quotes in the script. */
static bool quotable(const char *s)
{
    return strchr(s, '\'') == NULL && strchr(s, '\n') == NULL;
}

static int choose_shell(pier_runner *r)
{
    const char *want = r->spec->shell;
    if (!want) {
        r->shell = find_in_path(r, "bash");
        if (!r->shell)
            r->shell = pier_strdup("/bin/sh");
    } else if (strcmp(want, "bash") == 0) {
        r->shell = find_in_path(r, "bash");
        if (!r->shell)
            return pier_error_set(PIER_ENOTFOUND,
                                  "env/shell is bash, but bash is not installed (not on PATH)");
    } else if (strcmp(want, "sh") == 0) {
        r->shell = pier_strdup("/bin/sh");
    } else {
        r->shell = pier_strdup(want);
    }
    if (!executable(r->shell))
        return pier_error_set(PIER_ENOTFOUND, "the build shell %s is not an executable file",
                              r->shell);
    r->env_tool = find_in_path(r, "env");
    if (!r->env_tool) {
        if (executable("/usr/bin/env"))
            r->env_tool = pier_strdup("/usr/bin/env");
        else
            return pier_error_set(PIER_ENOTFOUND, "env(1) is not installed: pier needs it to "
                                                  "carry variables between commands");
    }
    if (!quotable(r->env_tool))
        return pier_error_set(PIER_EINVALID, "env(1) path %s has a quote in it", r->env_tool);
    return 0;
}

static int make_scratch(pier_runner *r)
{
    const char *base = r->opts.tmp_dir;
    if (!base || !base[0])
        base = getenv("TMPDIR");
    if (!base || !base[0] || !quotable(base))
        base = "/tmp";
    char *tmpl = pier_path_join(base, "pier-build-XXXXXX");
    if (!mkdtemp(tmpl)) {
        int rc = pier_error_set_errno(PIER_EIO, "creating a scratch directory in %s", base);
        free(tmpl);
        return rc;
    }
    r->tmp = tmpl;
    r->script = pier_path_join(tmpl, "cmd.sh");
    r->state = pier_path_join(tmpl, "state");
    return 0;
}

static void make_uuid(char out[37])
{
    unsigned char b[16];
    pier_random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char hex[33];
    pier_hex_encode(hex, b, 16);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static const char *find_secret(const pier_runner *r, const char *name)
{
    for (size_t i = 0; i < r->opts.secret_count; i++)
        if (strcmp(r->opts.secrets[i].name, name) == 0)
            return r->opts.secrets[i].value;
    return NULL;
}

/* Resolves parameter-store and secrets-manager entries into env. Every
 * value becomes a secret. */
static int resolve_secrets(pier_runner *r, envmap *env)
{
    const pier_buildspec *s = r->spec;
    for (int kind = 0; kind < 2; kind++) {
        const pier_buildspec_var *vars = kind == 0 ? s->parameter_store : s->secrets_manager;
        size_t n = kind == 0 ? s->parameter_count : s->secret_count;
        const char *section = kind == 0 ? "parameter-store" : "secrets-manager";
        for (size_t i = 0; i < n; i++) {
            add_secret_name(r, vars[i].name);
            const char *given = find_secret(r, vars[i].name);
            char *value = NULL;
            if (given) {
                value = pier_strdup(given);
            } else if (!r->opts.resolve ||
                       r->opts.resolve(r->opts.resolve_ctx,
                                       kind == 0 ? PIER_SECRET_PARAMETER_STORE
                                                 : PIER_SECRET_SECRETS_MANAGER,
                                       vars[i].name, vars[i].value, &value) != 0 ||
                       !value) {
                free(value);
                return pier_error_set(PIER_ENOTFOUND,
                                      "%s:%zu: env/%s %s ('%s') is not available on the embedded "
                                      "stack: give the build a secret named %s",
                                      s->path, vars[i].line, section, vars[i].name, vars[i].value,
                                      vars[i].name);
            }
            pier_mask_add(r->mask, value);
            env_set(env, vars[i].name, value);
            free(value);
        }
    }
    return 0;
}

/* The environment, lowest precedence first: the image (base_env), the
 * buildspec's variables, its parameter-store and secrets-manager values, the
 * caller's secrets and variables (project and start-build level), then
 * pier's CODEBUILD_* values (the prefix is reserved). */
static int build_env(pier_runner *r, pier_runner_result *res)
{
    const pier_runner_options *o = &r->opts;
    char *const *base = o->base_env ? o->base_env : environ;
    for (size_t i = 0; base && base[i]; i++)
        if (strchr(base[i], '='))
            env_put(&r->env, pier_strdup(base[i]));
    for (size_t i = 0; i < r->spec->variable_count; i++)
        env_set(&r->env, r->spec->variables[i].name, r->spec->variables[i].value);
    for (size_t i = 0; i < o->secret_count; i++) {
        pier_mask_add(r->mask, o->secrets[i].value);
        add_secret_name(r, o->secrets[i].name);
    }
    int rc = resolve_secrets(r, &r->env);
    if (rc)
        return rc;
    for (size_t i = 0; i < o->secret_count; i++)
        env_set(&r->env, o->secrets[i].name, o->secrets[i].value);
    for (size_t i = 0; i < o->env_count; i++)
        env_set(&r->env, o->env[i].name, o->env[i].value);
    /* Credentials handed to the build are masked like secrets. */
    static const char *const creds[] = {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                        "AWS_CONTAINER_AUTHORIZATION_TOKEN", NULL};
    for (const char *const *c = creds; *c; c++)
        pier_mask_add(r->mask, env_get(&r->env, *c));

    char buf[512];
    env_set(&r->env, "CODEBUILD_BUILD_ID", res->build_id);
    const char *region = o->region ? o->region : env_get(&r->env, "AWS_REGION");
    if (o->region) {
        env_set(&r->env, "AWS_REGION", o->region);
        env_set(&r->env, "AWS_DEFAULT_REGION", o->region);
    }
    snprintf(buf, sizeof buf, "arn:aws:codebuild:%s:%s:build/%s", region ? region : "local",
             o->account_id ? o->account_id : "000000000000", res->build_id);
    env_set(&r->env, "CODEBUILD_BUILD_ARN", buf);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)(o->build_number ? o->build_number : 1));
    env_set(&r->env, "CODEBUILD_BUILD_NUMBER", buf);
    env_set(&r->env, "CODEBUILD_BUILD_SUCCEEDING", "1");
    env_set(&r->env, "CODEBUILD_INITIATOR", o->initiator ? o->initiator : "pier");
    snprintf(buf, sizeof buf, "%lld", (long long)res->start_ms);
    env_set(&r->env, "CODEBUILD_START_TIME", buf);
    env_set(&r->env, "CODEBUILD_SRC_DIR", r->src_real);
    struct {
        const char *name, *value;
    } opt[] = {
        {"CODEBUILD_SOURCE_VERSION", o->source_version},
        {"CODEBUILD_RESOLVED_SOURCE_VERSION", o->resolved_source_version},
        {"CODEBUILD_SOURCE_REPO_URL", o->source_repo_url},
        {"CODEBUILD_WEBHOOK_PREV_COMMIT", o->webhook_prev_commit},
        {"CODEBUILD_WEBHOOK_HEAD_REF", o->webhook_head_ref},
        {"CODEBUILD_WEBHOOK_TRIGGER", o->webhook_trigger},
        {"CODEBUILD_WEBHOOK_EVENT", o->webhook_event},
    };
    for (size_t i = 0; i < sizeof opt / sizeof *opt; i++)
        if (opt[i].value)
            env_set(&r->env, opt[i].name, opt[i].value);
    return 0;
}

/* ---- phases ---- */

static void record_failure(pier_runner *r, pier_runner_result *res, pier_phase_id phase,
                           const pier_buildspec_command *cmd, int code)
{
    if (res->failed_phase >= 0)
        return; /* the first failure is the cause */
    res->failed_phase = (int)phase;
    res->failed_command = masked(r, cmd->text);
    res->failed_command_line = cmd->line;
    res->exit_status = code;
}

/* Runs a list of commands until the first failure. Returns 1 when a command
 * failed, 0 when all succeeded, negative when pier could not run one (or
 * the build is stopping: then r->stop is set). */
static int run_commands(pier_runner *r, pier_runner_result *res, pier_phase_id phase,
                        const pier_buildspec_command *cmds, size_t n, bool *succeeding)
{
    for (size_t i = 0; i < n; i++) {
        if (should_stop(r))
            return -1;
        rlog(r, "Running command %s", cmds[i].text);
        env_set(&r->env, "CODEBUILD_BUILD_SUCCEEDING", *succeeding ? "1" : "0");
        int code = 0;
        int rc = run_text(r, cmds[i].text, &code);
        if (rc)
            return rc;
        if (r->stop != PIER_BUILD_SUCCEEDED)
            return -1;
        if (code != 0) {
            rlog(r, "Command did not exit successfully %s exit status %d", cmds[i].text, code);
            record_failure(r, res, phase, &cmds[i], code);
            *succeeding = false;
            return 1;
        }
    }
    return 0;
}

/*
 * Phase transitions, as the CodeBuild User Guide documents them:
 *  - Build specification reference, phases/ * /finally: "if the commands
 *    block contains three commands and the first fails, CodeBuild skips the
 *    remaining two commands and runs any commands in the finally block. The
 *    phase is successful when all commands in the commands and the finally
 *    blocks run successfully. If any command in a phase fails, the phase
 *    fails."
 *  - same page, phases: "if a command fails during the install phase, none
 *    of the commands in the pre_build, build, and post_build phases are run".
 *  - Build phase transitions (view-build-details.html): a failed PRE_BUILD
 *    ends the build (it goes to FINALIZING); a failed BUILD still goes to
 *    POST_BUILD; "The UPLOAD_ARTIFACTS phase is always attempted, even if
 *    the BUILD phase fails."
 *  - phases/ * /on-failure: "ABORT - Abort the build. CONTINUE - Continue
 *    to the next phase. If this property is not specified, the failure
 *    process follows the transition phases".
 *  - Environment variables in build environments: CODEBUILD_BUILD_SUCCEEDING
 *    "Set to 0 if the build is failing, or 1 if the build is succeeding."
 * Returns true when the build got through its phases without being ended
 * early (so UPLOAD_ARTIFACTS is attempted).
 */
static bool run_phases(pier_runner *r, pier_runner_result *res, bool *succeeding, int *fault)
{
    for (int p = 0; p < PIER_PHASE_COUNT; p++) {
        const pier_buildspec_phase *ph = &r->spec->phases[p];
        pier_runner_phase *out = &res->phases[p];
        out->start_ms = wall_ms();
        if (!ph->present) {
            out->status = PIER_PHASE_SUCCEEDED;
            out->end_ms = out->start_ms;
            continue;
        }
        rlog(r, "Entering phase %s", pier_buildspec_phase_type((pier_phase_id)p));
        for (size_t i = 0; i < ph->runtime_count; i++)
            rlog(r,
                 "runtime-versions %s: %s ignored: pier uses the tools installed on this "
                 "machine",
                 ph->runtimes[i].name, ph->runtimes[i].value);
        int rc =
            run_commands(r, res, (pier_phase_id)p, ph->commands, ph->command_count, succeeding);
        bool failed = rc == 1;
        if (rc >= 0 && r->stop == PIER_BUILD_SUCCEEDED) {
            /* finally runs whether or not a command failed. */
            int frc =
                run_commands(r, res, (pier_phase_id)p, ph->finally, ph->finally_count, succeeding);
            if (frc == 1)
                failed = true;
            else if (frc < 0)
                rc = frc;
        }
        out->end_ms = wall_ms();
        if (r->stop != PIER_BUILD_SUCCEEDED) {
            out->status =
                r->stop == PIER_BUILD_TIMED_OUT ? PIER_PHASE_TIMED_OUT : PIER_PHASE_STOPPED;
            rlog(r, "Phase complete: %s State: %s", pier_buildspec_phase_type((pier_phase_id)p),
                 pier_phase_status_name(out->status));
            return false;
        }
        if (rc < 0) {
            *fault = rc;
            out->status = PIER_PHASE_FAILED;
            return false;
        }
        out->status = failed ? PIER_PHASE_FAILED : PIER_PHASE_SUCCEEDED;
        rlog(r, "Phase complete: %s State: %s", pier_buildspec_phase_type((pier_phase_id)p),
             pier_phase_status_name(out->status));
        if (!failed)
            continue;
        if (res->failed_phase == p)
            rlog(r,
                 "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while "
                 "executing command: %s. Reason: exit status %d",
                 res->failed_command, res->exit_status);
        pier_on_failure how = ph->on_failure;
        if (how == PIER_ON_FAILURE_CONTINUE)
            continue;
        if (how == PIER_ON_FAILURE_ABORT || p == PIER_PHASE_INSTALL || p == PIER_PHASE_PRE_BUILD)
            return false;
        /* BUILD: on to POST_BUILD; POST_BUILD: on to UPLOAD_ARTIFACTS. */
    }
    return true;
}

static void read_exports(pier_runner *r, pier_runner_result *res)
{
    const pier_buildspec *s = r->spec;
    if (!s->exported_count)
        return;
    res->exported = pier_calloc(s->exported_count, sizeof *res->exported);
    for (size_t i = 0; i < s->exported_count; i++) {
        const char *name = s->exported_variables[i];
        if (strncmp(name, "AWS_", 4) == 0) {
            rlog(r,
                 "exported-variables: %s is not exported (variables starting with AWS_ "
                 "cannot be exported)",
                 name);
            continue;
        }
        if (is_secret_name(r, name)) {
            rlog(r, "exported-variables: %s is not exported (it holds a secret)", name);
            continue;
        }
        const char *v = env_get(&r->env, name);
        if (!v) {
            rlog(r, "exported-variables: %s has no value at the end of the build", name);
            continue;
        }
        res->exported[res->exported_count].name = pier_strdup(name);
        res->exported[res->exported_count].value = masked(r, v);
        res->exported_count++;
    }
}

/* artifacts/name is shell words ("myname-$(date +%Y-%m-%d)"): the build's
 * shell evaluates it in the final environment. */
static void eval_artifact_name(pier_runner *r, pier_runner_result *res)
{
    const char *name = r->spec->artifacts.name;
    char *out = pier_path_join(r->tmp, "name");
    pier_buf s;
    pier_buf_init(&s, PIER_BUF_MAX_DEFAULT);
    const char *nl = strchr(name, '\n');
    pier_buf_puts(&s, "printf '%s' ");
    pier_buf_put(&s, name, nl ? (size_t)(nl - name) : strlen(name));
    pier_buf_printf(&s, " >'%s'", out);
    int code = 0;
    if (run_text(r, pier_buf_cstr(&s), &code) == 0 && code == 0) {
        pier_buf v;
        pier_buf_init(&v, 4096);
        if (pier_file_read(out, &v) == 0 && v.len)
            res->artifact_name = masked(r, pier_buf_cstr(&v));
        pier_buf_free(&v);
    } else {
        rlog(r, "artifacts/name '%s' could not be evaluated", name);
    }
    unlink(out);
    free(out);
    pier_buf_free(&s);
}

static void finish_message(pier_runner *r, pier_runner_result *res, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets res->message (masked) unless one is set. */
static void finish_message(pier_runner *r, pier_runner_result *res, const char *fmt, ...)
{
    if (res->message)
        return;
    pier_buf b;
    pier_buf_init(&b, 8192);
    va_list ap;
    va_start(ap, fmt);
    pier_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    res->message = masked(r, pier_buf_cstr(&b));
    pier_buf_free(&b);
}

/* The first line of a command, for one-line messages. */
static char *first_line(const char *s)
{
    const char *nl = strchr(s, '\n');
    if (!nl)
        return pier_strdup(s);
    pier_buf b;
    pier_buf_init(&b, PIER_BUF_MAX_DEFAULT);
    pier_buf_put(&b, s, (size_t)(nl - s));
    pier_buf_puts(&b, " ...");
    return pier_buf_detach(&b);
}

static void run_build(pier_runner *r, pier_runner_result *res)
{
    const pier_runner_options *o = &r->opts;
    const pier_buildspec *s = r->spec;
    int rc;
    bool succeeding = true;
    rlog(r, "Build %s: %s in %s", res->build_id, s->path, r->src_real);
    if ((rc = build_env(r, res))) {
        res->status = PIER_BUILD_FAILED;
        finish_message(r, res, "%s", pier_error_last());
        rlog(r, "%s", res->message);
        return;
    }
    for (size_t i = 0; i < s->warning_count; i++)
        rlog(r, "%s", s->warnings[i]);
    if ((rc = make_scratch(r)) || (rc = choose_shell(r))) {
        res->status = PIER_BUILD_FAULT;
        finish_message(r, res, "%s", pier_error_last());
        rlog(r, "%s", res->message);
        return;
    }
    rlog(r, "Shell: %s", r->shell);
    if (s->cache.present && o->cache_dir && s->cache.action != PIER_CACHE_SAVE_ONLY) {
        size_t n = 0;
        if (pier_artifacts_cache_restore(&s->cache, r->src_real, o->cache_dir, note_cb, r, &n))
            rlog(r, "cache: restore failed: %s", pier_error_last());
        else if (n)
            rlog(r, "cache: restored %zu files from %s", n, o->cache_dir);
    }
    int fault = 0;
    res->artifacts_attempted = run_phases(r, res, &succeeding, &fault);
    if (r->stop != PIER_BUILD_SUCCEEDED) {
        res->status = r->stop;
        int p = 0;
        while (p < PIER_PHASE_COUNT && res->phases[p].status != PIER_PHASE_TIMED_OUT &&
               res->phases[p].status != PIER_PHASE_STOPPED)
            p++;
        if (r->stop == PIER_BUILD_TIMED_OUT)
            finish_message(r, res, "build timed out after %u seconds%s%s", o->timeout_sec,
                           p < PIER_PHASE_COUNT ? " in phase " : "",
                           p < PIER_PHASE_COUNT ? pier_buildspec_phase_type((pier_phase_id)p) : "");
        else
            finish_message(r, res, "build stopped%s%s", p < PIER_PHASE_COUNT ? " in phase " : "",
                           p < PIER_PHASE_COUNT ? pier_buildspec_phase_type((pier_phase_id)p) : "");
        rlog(r, "%s", res->message);
        return;
    }
    if (fault) {
        res->status = PIER_BUILD_FAULT;
        finish_message(r, res, "%s", pier_error_last());
        rlog(r, "%s", res->message);
        return;
    }
    if (res->failed_phase >= 0) {
        char *cmd = first_line(res->failed_command);
        res->status = PIER_BUILD_FAILED;
        finish_message(r, res, "phase %s failed: command '%s' (%s:%zu) exited with status %d",
                       pier_buildspec_phase_type((pier_phase_id)res->failed_phase), cmd, s->path,
                       res->failed_command_line, res->exit_status);
        free(cmd);
    }
    read_exports(r, res);
    if (res->artifacts_attempted && s->has_artifacts) {
        if (s->artifacts.name)
            eval_artifact_name(r, res);
        if (o->artifact_dir) {
            rlog(r, "Entering phase UPLOAD_ARTIFACTS");
            size_t n = 0;
            if (pier_artifacts_collect(&s->artifacts, r->src_real, o->artifact_dir, note_cb, r,
                                       &n) != 0) {
                char *err = masked(r, pier_error_last());
                rlog(r, "Phase complete: UPLOAD_ARTIFACTS State: FAILED");
                rlog(r, "Phase context status code: CLIENT_ERROR Message: %s", err);
                if (res->status == PIER_BUILD_SUCCEEDED) {
                    res->status = PIER_BUILD_FAILED;
                    finish_message(r, res, "UPLOAD_ARTIFACTS failed: %s", err);
                }
                free(err);
            } else {
                res->artifact_files = n;
                rlog(r, "Collected %zu artifact files into %s", n, o->artifact_dir);
                rlog(r, "Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED");
            }
        }
    }
    if (res->status == PIER_BUILD_SUCCEEDED && s->cache.present && o->cache_dir &&
        s->cache.action != PIER_CACHE_RESTORE_ONLY) {
        size_t n = 0;
        if (pier_artifacts_cache_save(&s->cache, r->src_real, o->cache_dir, note_cb, r, &n))
            rlog(r, "cache: save failed: %s", pier_error_last());
        else
            rlog(r, "cache: saved %zu files to %s", n, o->cache_dir);
    }
}

/* ---- public ---- */

int pier_runner_new(pier_runner **out, const pier_buildspec *spec, const pier_runner_options *opts)
{
    *out = NULL;
    if (!opts->src_dir || !pier_file_is_dir(opts->src_dir))
        return pier_error_set(PIER_EINVALID, "build source directory %s does not exist",
                              opts->src_dir ? opts->src_dir : "(none)");
    pier_runner *r = pier_calloc(1, sizeof *r);
    r->spec = spec;
    r->opts = *opts;
    atomic_init(&r->cancel, 0);
    atomic_init(&r->running, 0);
    r->out_r = r->out_w = r->null_fd = r->log_fd = -1;
    pier_buf_init(&r->partial, (size_t)4 << 20);
    r->mask = pier_mask_new();
    *out = r;
    return 0;
}

void pier_runner_cancel(pier_runner *r)
{
    if (r)
        atomic_store(&r->cancel, 1);
}

int pier_runner_run(pier_runner *r, pier_runner_result **out)
{
    *out = NULL;
    if (r->used)
        return pier_error_set(PIER_EINVALID, "a runner runs one build; make a new one");
    r->used = true;
    atomic_store(&r->running, 1);
    pier_runner_result *res = pier_calloc(1, sizeof *res);
    res->failed_phase = -1;
    res->start_ms = wall_ms();
    if (r->opts.build_id) {
        res->build_id = pier_strdup(r->opts.build_id);
    } else {
        char uuid[37];
        make_uuid(uuid);
        pier_buf b;
        pier_buf_init(&b, 1024);
        pier_buf_printf(&b, "%s:%s", r->opts.project ? r->opts.project : "pier", uuid);
        res->build_id = pier_buf_detach(&b);
    }
    char real[PATH_MAX];
    r->src_real = pier_strdup(realpath(r->opts.src_dir, real) ? real : r->opts.src_dir);
    r->cwd = pier_strdup(r->src_real);
    if (r->opts.timeout_sec)
        r->deadline = mono_ms() + (int64_t)r->opts.timeout_sec * 1000;
    r->stop = PIER_BUILD_SUCCEEDED;
    int fds[2];
    if (r->opts.log_file) {
        r->log_fd =
            open(r->opts.log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (r->log_fd < 0) {
            res->status = PIER_BUILD_FAULT;
            pier_error_set_errno(PIER_EIO, "opening the build log %s", r->opts.log_file);
            res->message = pier_strdup(pier_error_last());
            goto done;
        }
    }
    r->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (r->null_fd < 0 || pipe2(fds, O_CLOEXEC) != 0) {
        res->status = PIER_BUILD_FAULT;
        pier_error_set_errno(PIER_EIO, "creating the build's output pipe");
        res->message = pier_strdup(pier_error_last());
        goto done;
    }
    r->out_r = fds[0];
    r->out_w = fds[1];
    fcntl(r->out_r, F_SETFL, fcntl(r->out_r, F_GETFL) | O_NONBLOCK);
    run_build(r, res);
    stop_leftovers(r);
    drain(r);
    flush_partial(r);
    rlog(r, "Build %s: %s", res->build_id, pier_build_status_name(res->status));
done:
    res->end_ms = wall_ms();
    atomic_store(&r->running, 0);
    int *fdp[] = {&r->out_r, &r->out_w, &r->null_fd, &r->log_fd};
    for (size_t i = 0; i < sizeof fdp / sizeof *fdp; i++)
        if (*fdp[i] >= 0) {
            close(*fdp[i]);
            *fdp[i] = -1;
        }
    if (r->tmp)
        pier_file_remove_tree(r->tmp);
    if (res->status != PIER_BUILD_SUCCEEDED) {
        int code = res->status == PIER_BUILD_TIMED_OUT ? PIER_ETIMEOUT
                   : res->status == PIER_BUILD_FAULT   ? PIER_EIO
                                                       : PIER_ERR;
        pier_error_set(code, "%s", res->message ? res->message : "build failed");
    }
    *out = res;
    return 0;
}

void pier_runner_free(pier_runner *r)
{
    if (!r)
        return;
    if (r->out_r >= 0)
        close(r->out_r);
    if (r->out_w >= 0)
        close(r->out_w);
    if (r->null_fd >= 0)
        close(r->null_fd);
    if (r->log_fd >= 0)
        close(r->log_fd);
    free(r->src_real);
    free(r->tmp);
    free(r->script);
    free(r->state);
    free(r->shell);
    free(r->env_tool);
    env_free(&r->env);
    free(r->cwd);
    pier_mask_free(r->mask); /* scrubs the values: secrets do not linger in freed memory */
    for (size_t i = 0; i < r->secret_name_count; i++)
        free(r->secret_names[i]);
    free(r->secret_names);
    pier_buf_free(&r->partial);
    pier_procgroup_free(&r->groups);
    free(r);
}

void pier_runner_result_free(pier_runner_result *res)
{
    if (!res)
        return;
    free(res->build_id);
    free(res->message);
    free(res->failed_command);
    free(res->artifact_name);
    for (size_t i = 0; i < res->exported_count; i++) {
        free(res->exported[i].name);
        free(res->exported[i].value);
    }
    free(res->exported);
    free(res);
}

const char *pier_build_status_name(pier_build_status status)
{
    switch (status) {
    case PIER_BUILD_SUCCEEDED:
        return "SUCCEEDED";
    case PIER_BUILD_FAILED:
        return "FAILED";
    case PIER_BUILD_FAULT:
        return "FAULT";
    case PIER_BUILD_TIMED_OUT:
        return "TIMED_OUT";
    case PIER_BUILD_STOPPED:
        return "STOPPED";
    }
    return "?";
}

const char *pier_phase_status_name(pier_phase_status status)
{
    switch (status) {
    case PIER_PHASE_PENDING:
        return "PENDING";
    case PIER_PHASE_SUCCEEDED:
        return "SUCCEEDED";
    case PIER_PHASE_FAILED:
        return "FAILED";
    case PIER_PHASE_TIMED_OUT:
        return "TIMED_OUT";
    case PIER_PHASE_STOPPED:
        return "STOPPED";
    }
    return "?";
}
