/*
 * cmd_status: `pier status [PIPELINE] [--json]` and `pier logs RUN
 * [--follow]`, read-only views of DIR/.pier (the state store opened
 * read-only, so they work while `pier up` runs, and after it stopped).
 * `--json` prints pipeline/report.h's status document, the one the
 * dashboard's GET /api/status returns.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"
#include "cli/commands.h"
#include "pipeline/pipeconf.h"
#include "pipeline/report.h"
#include "pipeline/state.h"

typedef struct {
    const char *dir;  /* --dir (default .) */
    const char *data; /* --data (default DIR/.pier) */
} where;

static int open_state(const where *w, pier_state **out, char **data)
{
    *data = w->data ? pier_strdup(w->data) : pier_path_join(w->dir, ".pier");
    char *db = pier_path_join(*data, "state.db");
    int rc = pier_state_open(out, db, true);
    if (rc != 0)
        pier_error_set(PIER_ENOTFOUND, "no pipeline state in %s (has `pier up` run there?)", *data);
    free(db);
    return rc;
}

static void fmt_time(char *out, size_t size, json_int_t ms)
{
    if (ms <= 0) {
        snprintf(out, size, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
}

static void print_duration(json_t *o)
{
    json_int_t s = json_integer_value(json_object_get(o, "started_ms"));
    json_int_t e = json_integer_value(json_object_get(o, "ended_ms"));
    if (s > 0 && e >= s)
        printf(" (%.1f s)", (double)(e - s) / 1000.0);
}

static void print_run(json_t *r)
{
    char when[40];
    fmt_time(when, sizeof when, json_integer_value(json_object_get(r, "created_ms")));
    const char *from = pier_json_str(r, "from_commit", "");
    const char *to = pier_json_str(r, "to_commit", "");
    printf("run %-5lld %-8s %-11s %s  %s %.7s -> %.7s", (long long)pier_json_int(r, "id", 0),
           pier_json_str(r, "pipeline", "?"), pier_json_str(r, "status", "?"), when,
           pier_json_str(r, "trigger", "?"), from[0] ? from : "(none)", to[0] ? to : "?");
    print_duration(r);
    printf("\n");
    const char *reason = pier_json_str(r, "reason", NULL);
    if (reason)
        printf("    reason: %s\n", reason);
    json_t *stages = json_object_get(r, "stages");
    size_t i;
    json_t *st;
    json_array_foreach(stages, i, st)
    {
        const char *status = pier_json_str(st, "status", "?");
        if (strcmp(status, "NotRun") == 0)
            continue;
        printf("    %-10s %-10s", pier_json_str(st, "name", "?"), status);
        print_duration(st);
        const char *msg = pier_json_str(st, "message", NULL);
        if (msg)
            printf("  %s", msg);
        printf("\n");
    }
    if (json_is_integer(json_object_get(r, "uploaded")))
        printf("    deploy: uploaded %lld, skipped %lld, deleted %lld, %lld bytes\n",
               (long long)pier_json_int(r, "uploaded", 0),
               (long long)pier_json_int(r, "skipped", 0), (long long)pier_json_int(r, "deleted", 0),
               (long long)pier_json_int(r, "bytes", 0));
}

/* The report's status document: pier.yml from DIR when it loads (else the
 * store's pipelines alone), the edge URL from the last `pier up`'s
 * DATA/up.json. */
static int status_json(json_t **out, const where *w, pier_state *s, const char *data,
                       const char *pipeline, int limit)
{
    pier_pipeconf *conf = NULL;
    char *yml = pier_path_join(w->dir, "pier.yml");
    if (pier_pipeconf_load(&conf, yml) != 0)
        conf = NULL;
    free(yml);
    json_t *up = NULL;
    char *upj = pier_path_join(data, "up.json");
    if (pier_json_load_file(&up, upj) != 0)
        up = NULL;
    free(upj);
    pier_error_clear();
    pier_report_ctx c = {s, conf, data, up ? pier_json_str(up, "edge_url", NULL) : NULL};
    int rc = pier_report_status(out, &c, pipeline, limit);
    json_decref(up);
    pier_pipeconf_free(conf);
    return rc;
}

int pier_cmd_status(int argc, char **argv)
{
    where w = {".", NULL};
    const char *pipeline = NULL;
    bool json = false;
    uint64_t limit = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--dir") == 0 && v)
            w.dir = argv[++i];
        else if (strcmp(a, "--data") == 0 && v)
            w.data = argv[++i];
        else if (strcmp(a, "--limit") == 0 && v && pier_parse_u64(v, &limit) == 0 && limit > 0 &&
                 limit < 100000)
            i++;
        else if (a[0] != '-' && !pipeline)
            pipeline = a;
        else
            return pier_cli_usage_error("status", "unknown or incomplete option '%s'", a);
    }
    /* `pier status --json | grep -q ...` closes the pipe early: that is not
     * an error of ours (and, under pipefail, must not become one). */
    signal(SIGPIPE, SIG_IGN);
    pier_state *s = NULL;
    char *data = NULL;
    int status = PIER_EXIT_OK;
    json_t *runs = NULL, *pipes = NULL;
    if (open_state(&w, &s, &data) != 0) {
        status = pier_cli_fail(NULL);
        goto done;
    }
    if (json) {
        json_t *o = NULL;
        if (status_json(&o, &w, s, data, pipeline, (int)limit) != 0) {
            status = pier_cli_fail(NULL);
            goto done;
        }
        pier_buf out = PIER_BUF_INIT;
        pier_json_write(&out, o, true);
        printf("%s\n", pier_buf_cstr(&out));
        pier_buf_free(&out);
        json_decref(o);
        goto done;
    }
    if (pier_state_runs_json(s, pipeline, (int)limit, &runs) != 0 ||
        pier_state_pipelines_json(s, &pipes) != 0) {
        status = pier_cli_fail(NULL);
        goto done;
    }
    size_t i;
    json_t *p;
    json_array_foreach(pipes, i, p)
    {
        const char *name = pier_json_str(p, "name", "?");
        if (pipeline && strcmp(name, pipeline) != 0)
            continue;
        const char *dep = pier_json_str(p, "last_deployed", "");
        printf("pipeline %s: last deployed %s\n", name, dep[0] ? dep : "(nothing yet)");
    }
    json_array_foreach(runs, i, p) print_run(p);
    if (json_array_size(runs) == 0)
        printf("no runs yet\n");
done:
    json_decref(runs);
    json_decref(pipes);
    pier_state_close(s);
    free(data);
    return status;
}

int pier_cmd_logs(int argc, char **argv)
{
    where w = {".", NULL};
    const char *run = NULL;
    bool follow = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--follow") == 0 || strcmp(a, "-f") == 0)
            follow = true;
        else if (strcmp(a, "--dir") == 0 && v)
            w.dir = argv[++i];
        else if (strcmp(a, "--data") == 0 && v)
            w.data = argv[++i];
        else if (a[0] != '-' && !run)
            run = a;
        else
            return pier_cli_usage_error("logs", "unknown or incomplete option '%s'", a);
    }
    uint64_t id = 0;
    if (!run)
        return pier_cli_usage_error("logs", "which run? (pier logs RUN; `pier status` lists them)");
    const char *colon = strrchr(run, ':');
    if (pier_parse_u64(colon ? colon + 1 : run, &id) != 0)
        return pier_cli_usage_error("logs", "'%s' is not a run id", run);
    pier_state *s = NULL;
    char *data = NULL;
    json_t *r = NULL;
    FILE *f = NULL;
    int status = PIER_EXIT_OK;
    if (open_state(&w, &s, &data) != 0 || pier_state_run_json(s, (int64_t)id, &r) != 0) {
        status = pier_cli_fail(NULL);
        goto done;
    }
    const char *path = pier_json_str(r, "log_path", NULL);
    if (!path) {
        printf("run %llu has not started (%s)\n", (unsigned long long)id,
               pier_json_str(r, "status", "?"));
        goto done;
    }
    f = fopen(path, "r");
    if (!f) {
        pier_error_set_errno(PIER_ENOTFOUND, "log of run %llu: %s", (unsigned long long)id, path);
        status = pier_cli_fail(NULL);
        goto done;
    }
    char buf[8192];
    for (;;) {
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, stdout);
        fflush(stdout);
        if (!follow)
            break;
        pier_run_status st;
        if (pier_state_run_status(s, (int64_t)id, &st) != 0 ||
            (st != PIER_RUN_QUEUED && st != PIER_RUN_IN_PROGRESS)) {
            while ((n = fread(buf, 1, sizeof buf, f)) > 0)
                fwrite(buf, 1, n, stdout);
            break;
        }
        clearerr(f);
        struct timespec ts = {0, 200000000L};
        nanosleep(&ts, NULL);
    }
done:
    if (f)
        fclose(f);
    json_decref(r);
    pier_state_close(s);
    free(data);
    return status;
}
