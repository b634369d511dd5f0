/*
 * action: one invoke action, invocation by invocation (see action.h).
 *
 * The loop of one invocation polls the command's two pipes with a 100 ms
 * tick; each tick also asks the registry whether the job was reported and
 * whether the process exited (waitpid WNOHANG), and checks the deadline.
 * Lines are split at '\n' (a line longer than 8 KiB is cut), masked, and
 * handed to the log callback; stderr lines also go to a 20-line ring for
 * the failure message. Whatever the end, the process group is killed
 * (background children included) before the next invocation.
 */
#include "pipeline/action.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"

extern char **environ;

#define TAIL_LINES 20
#define LINE_MAX_  8192

typedef struct {
    pier_buf partial; /* bytes after the last newline */
    bool is_stderr;   /* which stream */
    bool eof;         /* closed */
    int fd;           /* read end, or -1 */
} stream;

typedef struct {
    const pier_action_options *o; /* the options */
    char *tail[TAIL_LINES];       /* ring of stderr lines (masked) */
    size_t tail_next;             /* next slot */
    size_t tail_count;            /* lines held */
} runctx;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emit_line(runctx *c, bool is_stderr, const char *p, size_t n)
{
    pier_buf line = PIER_BUF_INIT;
    if (n && p[n - 1] == '\r')
        n--;
    pier_buf_put(&line, p, n > LINE_MAX_ ? LINE_MAX_ : n);
    if (c->o->mask)
        c->o->mask(c->o->mask_ctx, &line);
    if (c->o->log)
        c->o->log(c->o->log_ctx, is_stderr, pier_buf_cstr(&line));
    if (is_stderr) {
        free(c->tail[c->tail_next]);
        c->tail[c->tail_next] = pier_strdup(pier_buf_cstr(&line));
        c->tail_next = (c->tail_next + 1) % TAIL_LINES;
        if (c->tail_count < TAIL_LINES)
            c->tail_count++;
    }
    pier_buf_free(&line);
}

/* Reads what is available on s: 1 when bytes came, 0 when none are ready,
 * -1 at EOF. */
static int pump(runctx *c, stream *s)
{
    char buf[4096];
    ssize_t n = read(s->fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0) {
        if (s->partial.len)
            emit_line(c, s->is_stderr, s->partial.ptr, s->partial.len);
        pier_buf_reset(&s->partial);
        s->eof = true;
        return -1;
    }
    size_t start = 0;
    for (size_t i = 0; i < (size_t)n; i++) {
        if (buf[i] != '\n')
            continue;
        if (s->partial.len) {
            pier_buf_put(&s->partial, buf + start, i - start);
            emit_line(c, s->is_stderr, s->partial.ptr, s->partial.len);
            pier_buf_reset(&s->partial);
        } else {
            emit_line(c, s->is_stderr, buf + start, i - start);
        }
        start = i + 1;
    }
    if (start < (size_t)n) {
        if (s->partial.len + ((size_t)n - start) > LINE_MAX_) {
            pier_buf_put(&s->partial, buf + start, (size_t)n - start);
            emit_line(c, s->is_stderr, s->partial.ptr, s->partial.len);
            pier_buf_reset(&s->partial);
        } else {
            pier_buf_put(&s->partial, buf + start, (size_t)n - start);
        }
    }
    return 1;
}

static bool drop_var(const char *entry)
{
    static const char *const prefixes[] = {"AWS_ACCESS_KEY_ID=",
                                           "AWS_SECRET_ACCESS_KEY=",
                                           "AWS_SESSION_TOKEN=",
                                           "AWS_SECURITY_TOKEN=",
                                           "AWS_PROFILE=",
                                           "AWS_DEFAULT_PROFILE=",
                                           "AWS_CONTAINER_",
                                           "AWS_ENDPOINT_URL",
                                           "AWS_WEB_IDENTITY_TOKEN_FILE=",
                                           "AWS_ROLE_ARN=",
                                           "AWS_ROLE_SESSION_NAME=",
                                           "AWS_REGION=",
                                           "AWS_DEFAULT_REGION=",
                                           "AWS_SHARED_CREDENTIALS_FILE=",
                                           "AWS_CONFIG_FILE=",
                                           "PIER_JOB_"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(entry, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* The child's environment (NULL-terminated; entries malloc'ed). */
static char **make_env(const pier_action_options *o, const char *event_file, const char *job_id)
{
    size_t n = 0, cap = 16;
    for (char **e = environ; *e; e++)
        cap++;
    cap += o->env_count;
    char **env = pier_calloc(cap + 1, sizeof *env);
    for (char **e = environ; *e; e++)
        if (!drop_var(*e))
            env[n++] = pier_strdup(*e);
    pier_buf b = PIER_BUF_INIT;
#define ADD(name, value)                                                                           \
    do {                                                                                           \
        if (value) {                                                                               \
            pier_buf_printf(&b, "%s=%s", name, value);                                             \
            env[n++] = pier_buf_detach(&b);                                                        \
        }                                                                                          \
    } while (0)
    const char *region = o->region ? o->region : "us-east-1";
    ADD("AWS_REGION", region);
    ADD("AWS_DEFAULT_REGION", region);
    ADD("AWS_ENDPOINT_URL_CODEPIPELINE", o->codepipeline_endpoint);
    ADD("AWS_ENDPOINT_URL_CLOUDFRONT", o->cloudfront_endpoint);
    ADD("AWS_ENDPOINT_URL_S3", o->s3_endpoint);
    ADD("PIER_JOB_EVENT_FILE", event_file);
    ADD("PIER_JOB_ID", job_id);
#undef ADD
    for (size_t i = 0; i < o->env_count; i++)
        env[n++] = pier_strdup(o->env[i]);
    env[n] = NULL;
    pier_buf_free(&b);
    return env;
}

static void free_env(char **env)
{
    for (char **e = env; e && *e; e++)
        free(*e);
    free(env);
}

static void kill_group(pid_t pid, unsigned grace_ms)
{
    kill(-pid, SIGTERM);
    int64_t until = now_ms() + grace_ms;
    while (now_ms() < until) {
        if (kill(-pid, 0) < 0)
            return;
        /* Reap the leader if it is gone so the group can empty. */
        waitpid(pid, NULL, WNOHANG);
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(-pid, SIGKILL);
}

typedef enum { END_REPORTED, END_EXITED, END_TIMEOUT, END_FAULT } end_kind;

/* Runs the command once for job id; *status gets the exit status. */
static end_kind invoke(runctx *c, const char *id, const char *event_file, int64_t deadline,
                       int *status)
{
    const pier_action_options *o = c->o;
    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1}, in_fd = -1;
    char **env = NULL;
    end_kind end = END_FAULT;
    stream so = {PIER_BUF_INIT, false, false, -1}, se = {PIER_BUF_INIT, true, false, -1};
    pid_t pid = -1;
    *status = -1;

    if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
        pier_error_set_errno(PIER_EIO, "action %s: pipe", o->name);
        goto done;
    }
    if ((in_fd = open(event_file, O_RDONLY | O_CLOEXEC)) < 0) {
        pier_error_set_errno(PIER_EIO, "action %s: cannot open %s", o->name, event_file);
        goto done;
    }
    env = make_env(o, event_file, id);
    pid = fork();
    if (pid < 0) {
        pier_error_set_errno(PIER_EIO, "action %s: fork", o->name);
        goto done;
    }
    if (pid == 0) {
        setpgid(0, 0);
        dup2(in_fd, 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        if (o->cwd && chdir(o->cwd) < 0) {
            dprintf(2, "pier: cannot enter %s: %s\n", o->cwd, strerror(errno));
            _exit(127);
        }
        signal(SIGPIPE, SIG_DFL);
        char *const argv[] = {"sh", "-c", (char *)o->command, NULL};
        execve("/bin/sh", argv, env);
        _exit(127);
    }
    setpgid(pid, pid); /* also in the parent: no race with kill(-pid) */
    close(out_pipe[1]);
    close(err_pipe[1]);
    out_pipe[1] = err_pipe[1] = -1;
    so.fd = out_pipe[0];
    se.fd = err_pipe[0];
    fcntl(so.fd, F_SETFL, O_NONBLOCK);
    fcntl(se.fd, F_SETFL, O_NONBLOCK);

    bool exited = false, reported = false;
    int64_t exit_by = 0;
    unsigned exit_grace = o->exit_grace_ms ? o->exit_grace_ms : 5000;
    for (;;) {
        struct pollfd pf[2];
        nfds_t nf = 0;
        if (!so.eof)
            pf[nf++] = (struct pollfd){.fd = so.fd, .events = POLLIN};
        if (!se.eof)
            pf[nf++] = (struct pollfd){.fd = se.fd, .events = POLLIN};
        if (nf)
            poll(pf, nf, 100);
        else if (!exited) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        for (nfds_t i = 0; i < nf; i++)
            if (pf[i].revents)
                pump(c, pf[i].fd == so.fd ? &so : &se);
        if (!exited) {
            int ws;
            if (waitpid(pid, &ws, WNOHANG) == pid) {
                exited = true;
                *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
            }
        }
        if (!reported && pier_jobapi_wait(o->jobs, id, 0) == 0) {
            reported = true;
            exit_by = now_ms() + exit_grace;
        }
        if (exited) {
            /* Drain what the pipes still hold (without waiting on
             * background children that keep them open). */
            while (!so.eof && pump(c, &so) == 1) {
            }
            while (!se.eof && pump(c, &se) == 1) {
            }
            if (!reported && pier_jobapi_wait(o->jobs, id, 0) == 0)
                reported = true;
            end = reported ? END_REPORTED : END_EXITED;
            break;
        }
        if (reported && now_ms() >= exit_by) {
            end = END_REPORTED;
            break;
        }
        if (!reported && now_ms() >= deadline) {
            end = END_TIMEOUT;
            break;
        }
    }
    if (so.partial.len)
        emit_line(c, false, so.partial.ptr, so.partial.len);
    if (se.partial.len)
        emit_line(c, true, se.partial.ptr, se.partial.len);
    kill_group(pid, exited ? 0 : (o->kill_grace_ms ? o->kill_grace_ms : 2000));
    if (!exited) {
        int ws;
        if (waitpid(pid, &ws, 0) == pid)
            *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    }
done:
    for (int i = 0; i < 2; i++) {
        if (out_pipe[i] >= 0)
            close(out_pipe[i]);
        if (err_pipe[i] >= 0)
            close(err_pipe[i]);
    }
    if (in_fd >= 0)
        close(in_fd);
    pier_buf_free(&so.partial);
    pier_buf_free(&se.partial);
    free_env(env);
    return end;
}

/* text with its newlines as " | " (into b; borrowed). */
static const char *one_line(const char *text, pier_buf *b)
{
    for (const char *p = text ? text : ""; *p; p++) {
        if (*p == '\n')
            pier_buf_puts(b, " | ");
        else
            pier_buf_putc(b, *p);
    }
    return pier_buf_cstr(b);
}

static char *tail_text(runctx *c)
{
    if (c->tail_count == 0)
        return NULL;
    pier_buf b = PIER_BUF_INIT;
    size_t first = (c->tail_next + TAIL_LINES - c->tail_count) % TAIL_LINES;
    for (size_t i = 0; i < c->tail_count; i++) {
        if (i)
            pier_buf_putc(&b, '\n');
        pier_buf_puts(&b, c->tail[(first + i) % TAIL_LINES]);
    }
    return pier_buf_detach(&b);
}

static void masked_message(runctx *c, pier_action_result *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void masked_message(runctx *c, pier_action_result *out, const char *fmt, ...)
{
    pier_buf b = PIER_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    pier_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (c->o->mask)
        c->o->mask(c->o->mask_ctx, &b);
    free(out->message);
    out->message = pier_buf_detach(&b);
}

int pier_action_run(const pier_action_options *o, pier_action_result *out)
{
    memset(out, 0, sizeof *out);
    out->exit_status = -1;
    if (!o->command || !o->jobs)
        return pier_error_set(PIER_EINVALID, "action %s: a command and a job registry are needed",
                              o->name ? o->name : "?");
    runctx c = {.o = o};
    const char *name = o->name ? o->name : "action";
    unsigned max_inv = o->max_invocations ? o->max_invocations : 10;
    int64_t deadline = now_ms() + (int64_t)(o->timeout_sec ? o->timeout_sec : 600) * 1000;
    char *token = NULL, *dir = NULL, *event_file = NULL;
    pier_jobapi_result res = {0};
    res.percent_complete = -1;

    const char *tmp = o->tmp_dir ? o->tmp_dir : getenv("TMPDIR");
    pier_buf tmpl = PIER_BUF_INIT;
    pier_buf_printf(&tmpl, "%s/pier-action-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    dir = pier_buf_detach(&tmpl);
    if (!mkdtemp(dir)) {
        out->status = PIER_ACTION_FAILED;
        pier_error_set_errno(PIER_EIO, "action %s: cannot create a directory for the job event",
                             name);
        out->message = pier_strdup(pier_error_last());
        free(dir);
        return 0;
    }
    event_file = pier_path_join(dir, "event.json");

    for (;;) {
        char id[PIER_JOBAPI_ID_LEN + 1];
        pier_jobapi_spec spec = o->job;
        spec.continuation_token = token;
        pier_jobapi_create(o->jobs, &spec, id);
        pier_buf ev = PIER_BUF_INIT;
        pier_jobapi_event_json(o->jobs, id, &ev);
        pier_buf_putc(&ev, '\n');
        int wrc = pier_file_write_atomic(event_file, ev.ptr, ev.len, 0600);
        memset(ev.ptr, 0, ev.len); /* it holds the artifact credentials */
        pier_buf_free(&ev);
        if (wrc < 0) {
            out->status = PIER_ACTION_FAILED;
            masked_message(&c, out, "action %s: %s", name, pier_error_last());
            pier_jobapi_remove(o->jobs, id);
            break;
        }
        out->invocations++;
        int status;
        end_kind end = invoke(&c, id, event_file, deadline, &status);
        unlink(event_file);
        out->exit_status = status;
        pier_jobapi_get(o->jobs, id, &res);
        pier_jobapi_remove(o->jobs, id);
        free(out->stderr_tail);
        out->stderr_tail = tail_text(&c);
        if (end == END_FAULT) {
            out->status = PIER_ACTION_FAILED;
            masked_message(&c, out, "%s", pier_error_last());
            break;
        }
        if (end == END_TIMEOUT) {
            out->status = PIER_ACTION_TIMED_OUT;
            masked_message(&c, out,
                           "action %s timed out after %u s without reporting a result; its "
                           "process group was killed",
                           name, o->timeout_sec ? o->timeout_sec : 600);
            break;
        }
        pier_buf oneline = PIER_BUF_INIT;
        if (end == END_EXITED) {
            out->status = PIER_ACTION_FAILED;
            masked_message(&c, out,
                           "action %s exited with status %d without reporting a result to the "
                           "job API (PutJobSuccessResult or PutJobFailureResult)%s%s",
                           name, status, out->stderr_tail ? "; stderr ends with: " : "",
                           one_line(out->stderr_tail, &oneline));
            pier_buf_free(&oneline);
            break;
        }
        free(out->external_execution_id);
        out->external_execution_id =
            res.external_execution_id ? pier_strdup(res.external_execution_id) : NULL;
        if (res.state == PIER_JOB_FAILED) {
            out->status = PIER_ACTION_FAILED;
            out->failure_type = res.failure_type ? pier_strdup(res.failure_type) : NULL;
            masked_message(&c, out, "action %s reported failure (%s): %s", name,
                           res.failure_type ? res.failure_type : "JobFailed",
                           res.failure_message ? res.failure_message : "");
            break;
        }
        free(out->summary);
        out->summary = res.summary ? pier_strdup(res.summary) : NULL;
        if (res.continuation_token) {
            if (out->invocations >= max_inv) {
                out->status = PIER_ACTION_FAILED;
                masked_message(&c, out,
                               "action %s asked to continue after %u invocations (the limit)", name,
                               out->invocations);
                break;
            }
            free(token);
            token = pier_strdup(res.continuation_token);
            continue;
        }
        out->status = PIER_ACTION_SUCCEEDED;
        out->vars = res.vars;
        out->var_count = res.var_count;
        res.vars = NULL;
        res.var_count = 0;
        masked_message(&c, out, "action %s succeeded%s%s", name, res.summary ? ": " : "",
                       res.summary ? res.summary : "");
        break;
    }
    if (out->status != PIER_ACTION_SUCCEEDED)
        pier_error_set(out->status == PIER_ACTION_TIMED_OUT ? PIER_ETIMEOUT : PIER_ERR, "%s",
                       out->message);
    pier_jobapi_result_clear(&res);
    unlink(event_file);
    rmdir(dir);
    free(event_file);
    free(dir);
    free(token);
    for (size_t i = 0; i < TAIL_LINES; i++)
        free(c.tail[i]);
    return 0;
}

void pier_action_result_clear(pier_action_result *r)
{
    if (!r)
        return;
    free(r->message);
    free(r->summary);
    free(r->external_execution_id);
    free(r->failure_type);
    for (size_t i = 0; i < r->var_count; i++) {
        free(r->vars[i].name);
        free(r->vars[i].value);
    }
    free(r->vars);
    free(r->stderr_tail);
    memset(r, 0, sizeof *r);
}

const char *pier_action_status_name(pier_action_status s)
{
    switch (s) {
    case PIER_ACTION_SUCCEEDED:
        return "Succeeded";
    case PIER_ACTION_FAILED:
        return "Failed";
    case PIER_ACTION_TIMED_OUT:
        return "TimedOut";
    }
    return "?";
}
