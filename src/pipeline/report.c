/*
 * report: builds the documents of report.h from the state store's rows,
 * the config and the git mirrors. Pure reshaping except for the store
 * queries and the mirror lookups (one open per call that needs commits).
 */
#include "pipeline/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/mem.h"
#include "source/git.h"

static json_t *copy_or_null(const json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);
    return v ? json_deep_copy(v) : json_null();
}

static json_t *duration(const json_t *o)
{
    json_t *s = json_object_get(o, "started_ms"), *e = json_object_get(o, "ended_ms");
    if (json_is_integer(s) && json_is_integer(e) && json_integer_value(e) >= json_integer_value(s))
        return json_integer(json_integer_value(e) - json_integer_value(s));
    return json_null();
}

json_t *pier_report_run_shape(const json_t *row)
{
    static const char *const plain[] = {"id",         "pipeline",    "trigger",   "status",
                                        "reason",     "from_commit", "to_commit", "created_ms",
                                        "started_ms", "ended_ms"};
    json_t *r = json_object();
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        json_object_set_new(r, plain[i], copy_or_null(row, plain[i]));
    json_object_set_new(r, "duration_ms", duration(row));
    json_t *stages = json_array();
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(row, "stages"), i, st)
    {
        json_t *o = json_object();
        json_object_set_new(o, "name", copy_or_null(st, "name"));
        json_object_set_new(o, "status", copy_or_null(st, "status"));
        json_object_set_new(o, "started_ms", copy_or_null(st, "started_ms"));
        json_object_set_new(o, "ended_ms", copy_or_null(st, "ended_ms"));
        json_object_set_new(o, "duration_ms", duration(st));
        json_object_set_new(o, "message", copy_or_null(st, "message"));
        json_array_append_new(stages, o);
    }
    json_object_set_new(r, "stages", stages);
    json_t *files = json_object_get(row, "changed_files");
    json_object_set_new(r, "changed_files",
                        json_is_array(files) ? json_deep_copy(files) : json_array());
    if (json_is_integer(json_object_get(row, "uploaded")))
        json_object_set_new(r, "deploy",
                            json_pack("{s:I, s:I, s:I, s:I}", "uploaded",
                                      (json_int_t)pier_json_int(row, "uploaded", 0), "skipped",
                                      (json_int_t)pier_json_int(row, "skipped", 0), "deleted",
                                      (json_int_t)pier_json_int(row, "deleted", 0), "bytes",
                                      (json_int_t)pier_json_int(row, "bytes", 0)));
    else
        json_object_set_new(r, "deploy", json_null());
    const char *inv = pier_json_str(row, "invalidation_id", NULL);
    json_t *paths = json_object_get(row, "invalidation_paths");
    if (inv || json_is_array(paths))
        json_object_set_new(r, "invalidation",
                            json_pack("{s:o, s:o}", "id", inv ? json_string(inv) : json_null(),
                                      "paths",
                                      json_is_array(paths) ? json_deep_copy(paths) : json_array()));
    else
        json_object_set_new(r, "invalidation", json_null());
    json_object_set_new(r, "has_log", json_boolean(pier_json_str(row, "log_path", NULL) != NULL));
    return r;
}

/* {sha, short_sha, message, author, time_ms} of rev in name's mirror, or
 * null (no mirror yet, unknown commit). */
static json_t *commit_json(const pier_report_ctx *c, const char *name, const char *rev)
{
    if (!c->data_dir || !rev || !*rev)
        return json_null();
    pier_buf path = PIER_BUF_INIT;
    pier_buf_printf(&path, "%s/git/%s.git", c->data_dir, name);
    pier_git_repo *repo = NULL;
    pier_git_commit_info info = {0};
    json_t *out = json_null();
    if (pier_git_open(&repo, pier_buf_cstr(&path), false) == 0 &&
        pier_git_describe(&info, repo, rev) == 0) {
        json_decref(out);
        out = json_pack("{s:s, s:s, s:s, s:s, s:I}", "sha", info.sha, "short_sha", info.short_sha,
                        "message", info.summary ? info.summary : "", "author",
                        info.author_name ? info.author_name : "", "time_ms",
                        (json_int_t)info.time * 1000);
    }
    pier_git_commit_info_clear(&info);
    pier_git_close(repo);
    pier_buf_free(&path);
    pier_error_clear();
    return out ? out : json_null();
}

static json_t *strings(const char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* The summary of pipeline name; p (its config) may be NULL. row is its
 * store row (may be NULL: never ran). */
static int summary(json_t **out, const pier_report_ctx *c, const char *name,
                   const pier_pipeconf_pipeline *p, const json_t *row)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "branch", p ? json_string(p->branch) : json_null());
    json_object_set_new(o, "paths", p ? strings(p->paths, p->path_count) : json_array());
    json_object_set_new(o, "exclude", p ? strings(p->exclude, p->exclude_count) : json_array());
    json_object_set_new(o, "poll_ms", p ? json_integer(p->poll_ms) : json_null());
    json_object_set_new(o, "webhook", json_boolean(p && p->webhook));
    json_object_set_new(o, "host", p ? json_string(p->host) : json_null());
    json_t *site = json_null();
    if (p && c->edge_url) {
        const char *port = strrchr(c->edge_url, ':');
        pier_buf b = PIER_BUF_INIT;
        pier_buf_printf(&b, "http://%s%s/", p->host, port ? port : "");
        site = json_string(pier_buf_cstr(&b));
        pier_buf_free(&b);
    }
    json_object_set_new(o, "site_url", site);
    json_object_set_new(o, "bucket", p ? json_string(p->bucket) : json_null());
    json_object_set_new(o, "prefix", p ? json_string(p->prefix) : json_null());
    json_object_set_new(o, "distribution", p ? json_string(p->distribution) : json_null());
    const char *dep = row ? pier_json_str(row, "last_deployed", NULL) : NULL;
    json_t *last = json_null();
    if (dep && *dep) {
        json_decref(last);
        last = commit_json(c, name, dep);
        if (json_is_null(last)) {
            json_decref(last);
            last = json_pack("{s:s, s:s%, s:n, s:n, s:n}", "sha", dep, "short_sha", dep,
                             (size_t)(strlen(dep) < 7 ? strlen(dep) : 7), "message", "author",
                             "time_ms");
        }
        json_t *run = json_object_get(row, "last_deployed_run");
        json_object_set_new(last, "run_id", run ? json_deep_copy(run) : json_null());
    }
    json_object_set_new(o, "last_deployed", last);
    json_t *runs = NULL;
    int rc = pier_state_runs_page_json(c->state, name, 1, 0, &runs);
    if (rc != 0) {
        json_decref(o);
        return rc;
    }
    json_t *latest = json_array_get(runs, 0);
    json_object_set_new(o, "latest_run", latest ? pier_report_run_shape(latest) : json_null());
    json_decref(runs);
    *out = o;
    return 0;
}

static const json_t *state_row(const json_t *rows, const char *name)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) if (strcmp(pier_json_str(r, "name", ""), name) == 0) return r;
    return NULL;
}

int pier_report_pipelines(json_t **out, const pier_report_ctx *c)
{
    json_t *rows = NULL, *a = json_array();
    int rc = pier_state_pipelines_json(c->state, &rows);
    if (rc != 0)
        goto done;
    if (c->conf) {
        for (size_t i = 0; i < c->conf->count && rc == 0; i++) {
            const pier_pipeconf_pipeline *p = &c->conf->pipelines[i];
            json_t *o = NULL;
            if ((rc = summary(&o, c, p->name, p, state_row(rows, p->name))) == 0)
                json_array_append_new(a, o);
        }
    } else {
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r)
        {
            json_t *o = NULL;
            if ((rc = summary(&o, c, pier_json_str(r, "name", "?"), NULL, r)) != 0)
                break;
            json_array_append_new(a, o);
        }
    }
done:
    json_decref(rows);
    if (rc != 0) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}

int pier_report_pipeline(json_t **out, const pier_report_ctx *c, const char *name)
{
    const pier_pipeconf_pipeline *p = c->conf ? pier_pipeconf_find(c->conf, name) : NULL;
    json_t *rows = NULL;
    int rc = pier_state_pipelines_json(c->state, &rows);
    if (rc != 0)
        return rc;
    const json_t *row = state_row(rows, name);
    if (!p && !row)
        rc = pier_error_set(PIER_ENOTFOUND, "no pipeline '%s'", name);
    else
        rc = summary(out, c, name, p, row);
    json_decref(rows);
    return rc;
}

int pier_report_runs(json_t **out, const pier_report_ctx *c, const char *pipeline, int limit,
                     int64_t before)
{
    if (limit <= 0)
        limit = 20;
    if (limit > PIER_REPORT_MAX_LIMIT)
        limit = PIER_REPORT_MAX_LIMIT;
    json_t *rows = NULL;
    /* One more than asked says whether there is a next page. */
    int rc = pier_state_runs_page_json(c->state, pipeline, limit + 1, before, &rows);
    if (rc != 0)
        return rc;
    json_t *runs = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (i == (size_t)limit)
            break;
        json_array_append_new(runs, pier_report_run_shape(r));
    }
    json_t *next = json_null();
    if (json_array_size(rows) > (size_t)limit) {
        json_decref(next);
        next = json_integer(pier_json_int(json_array_get(rows, (size_t)limit - 1), "id", 0));
    }
    json_decref(rows);
    *out = json_pack("{s:o, s:o}", "runs", runs, "next_before", next);
    return 0;
}

int pier_report_run(json_t **out, const pier_report_ctx *c, int64_t id)
{
    json_t *row = NULL;
    int rc = pier_state_run_json(c->state, id, &row);
    if (rc != 0)
        return rc;
    json_t *r = pier_report_run_shape(row);
    json_object_set_new(
        r, "commit",
        commit_json(c, pier_json_str(row, "pipeline", ""), pier_json_str(row, "to_commit", NULL)));
    json_decref(row);
    *out = r;
    return 0;
}

int pier_report_status(json_t **out, const pier_report_ctx *c, const char *pipeline, int limit)
{
    json_t *pipes = NULL, *page = NULL;
    int rc = pier_report_pipelines(&pipes, c);
    if (rc == 0)
        rc = pier_report_runs(&page, c, pipeline, limit, 0);
    if (rc != 0) {
        json_decref(pipes);
        return rc;
    }
    json_object_set_new(page, "pipelines", pipes);
    *out = page;
    return 0;
}
