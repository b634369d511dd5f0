/*
 * state: the SQLite store of pipelines, runs and stages (see state.h).
 *
 * Each mutation is one statement or a BEGIN IMMEDIATE .. COMMIT block, so
 * a crash leaves every row as of the last committed change. Reads for the
 * CLI (`pier status`) open the file read-only and see the last commit (WAL
 * lets them run while `pier up` writes). Costs: one small transaction per
 * state change (a few per run stage).
 */
#include "pipeline/state.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/mem.h"

struct pier_state {
    sqlite3 *db; /* the connection (serialized mode) */
    char *path;  /* for messages */
};

static const char *const status_names[] = {"Queued", "InProgress", "Succeeded",
                                           "Failed", "Skipped",    "Superseded"};

const char *pier_run_status_name(pier_run_status st)
{
    return (unsigned)st < sizeof status_names / sizeof *status_names ? status_names[st] : "?";
}

int pier_run_status_parse(const char *name, pier_run_status *out)
{
    for (size_t i = 0; i < sizeof status_names / sizeof *status_names; i++)
        if (strcmp(status_names[i], name) == 0) {
            *out = (pier_run_status)i;
            return 0;
        }
    return pier_error_set(PIER_EINVALID, "unknown run status '%s'", name);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int db_fail(pier_state *s, const char *what)
{
    return pier_error_set(PIER_EIO, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(pier_state *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = pier_error_set(PIER_EIO, "%s: %s", s->path, msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

/* A transaction holds the connection's recursive mutex from BEGIN to its
 * COMMIT or ROLLBACK (tx_end), so no other thread's statement interleaves. */
static int tx_begin(pier_state *s)
{
    sqlite3_mutex_enter(sqlite3_db_mutex(s->db));
    int rc = exec(s, "BEGIN IMMEDIATE");
    if (rc != 0)
        sqlite3_mutex_leave(sqlite3_db_mutex(s->db));
    return rc;
}

static int tx_end(pier_state *s, const char *sql)
{
    int rc = exec(s, sql);
    sqlite3_mutex_leave(sqlite3_db_mutex(s->db));
    return rc;
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS pipelines("
    " name TEXT PRIMARY KEY, last_deployed TEXT NOT NULL DEFAULT '',"
    " last_deployed_run INTEGER, updated_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS runs("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, trigger TEXT NOT NULL,"
    " from_commit TEXT, to_commit TEXT, status TEXT NOT NULL, reason TEXT,"
    " created_ms INTEGER NOT NULL, started_ms INTEGER, ended_ms INTEGER, log_path TEXT,"
    " uploaded INTEGER, skipped INTEGER, deleted INTEGER, bytes INTEGER,"
    " invalidation_id TEXT, invalidation_paths TEXT, changed_files TEXT);"
    "CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs(pipeline, id);"
    "CREATE TABLE IF NOT EXISTS stages("
    " run_id INTEGER NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,"
    " started_ms INTEGER, ended_ms INTEGER, message TEXT, PRIMARY KEY(run_id, name));";

int pier_state_open(pier_state **out, const char *path, bool readonly)
{
    *out = NULL;
    pier_state *s = pier_calloc(1, sizeof *s);
    s->path = pier_strdup(path);
    int flags = SQLITE_OPEN_FULLMUTEX |
                (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = 0;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        rc = pier_error_set(readonly ? PIER_ENOTFOUND : PIER_EIO, "cannot open %s: %s", path,
                            s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto done;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (!readonly) {
        if ((rc = exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")) != 0 ||
            (rc = exec(s, schema)) != 0)
            goto done;
    }
done:
    if (rc != 0) {
        pier_state_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void pier_state_close(pier_state *s)
{
    if (!s)
        return;
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

/* Prepares sql, binds the arguments by the letters of types (s: text or
 * NULL, i: int64), steps once and finalizes. */
static int run_sql(pier_state *s, const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "prepare");
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 's') {
            const char *v = va_arg(ap, const char *);
            if (v)
                sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(st, i + 1);
        } else {
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        }
    }
    va_end(ap);
    int rc = sqlite3_step(st);
    int ret = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? 0 : db_fail(s, "write");
    sqlite3_finalize(st);
    return ret;
}

int pier_state_recover(pier_state *s, int *count)
{
    int64_t t = now_ms();
    int rc = tx_begin(s);
    if (rc != 0)
        return rc;
    if ((rc = run_sql(s,
                      "UPDATE stages SET status='Failed', ended_ms=?, message='interrupted' "
                      "WHERE status='InProgress'",
                      "i", t)) != 0 ||
        (rc = run_sql(s,
                      "UPDATE runs SET status='Failed', reason='interrupted', ended_ms=? "
                      "WHERE status IN ('InProgress','Queued')",
                      "i", t)) != 0) {
        tx_end(s, "ROLLBACK");
        return rc;
    }
    if (count)
        *count = sqlite3_changes(s->db);
    return tx_end(s, "COMMIT");
}

int pier_state_pipeline_ensure(pier_state *s, const char *pipeline)
{
    return run_sql(s, "INSERT OR IGNORE INTO pipelines(name, updated_ms) VALUES(?, ?)", "si",
                   pipeline, now_ms());
}

int pier_state_last_deployed(pier_state *s, const char *pipeline, char out[41])
{
    out[0] = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT last_deployed FROM pipelines WHERE name=?", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(s, "prepare");
    sqlite3_bind_text(st, 1, pipeline, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        if (v)
            snprintf(out, 41, "%s", v);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? 0 : db_fail(s, "read");
    }
    sqlite3_finalize(st);
    return rc;
}

int pier_state_mark_deployed(pier_state *s, const char *pipeline, const char *commit,
                             int64_t run_id)
{
    int rc = tx_begin(s);
    if (rc != 0)
        return rc;
    if ((rc = run_sql(s, "INSERT OR IGNORE INTO pipelines(name, updated_ms) VALUES(?, ?)", "si",
                      pipeline, now_ms())) != 0 ||
        (rc = run_sql(s,
                      "UPDATE pipelines SET last_deployed=?, last_deployed_run=?, updated_ms=? "
                      "WHERE name=?",
                      "siis", commit, run_id, now_ms(), pipeline)) != 0) {
        tx_end(s, "ROLLBACK");
        return rc;
    }
    return tx_end(s, "COMMIT");
}

int pier_state_run_create(pier_state *s, const char *pipeline, const char *trigger,
                          const char *to_commit, int64_t *id)
{
    int rc = tx_begin(s);
    if (rc != 0)
        return rc;
    int64_t t = now_ms();
    if ((rc = run_sql(s,
                      "INSERT INTO runs(pipeline, trigger, to_commit, status, created_ms) "
                      "VALUES(?, ?, ?, 'Queued', ?)",
                      "sssi", pipeline, trigger, to_commit, t)) != 0) {
        tx_end(s, "ROLLBACK");
        return rc;
    }
    *id = sqlite3_last_insert_rowid(s->db);
    static const char *const stages[] = {"source", "build", "deploy", "invalidate", "actions"};
    for (size_t i = 0; i < 5; i++)
        if ((rc = run_sql(s, "INSERT INTO stages(run_id, name, status) VALUES(?, ?, 'NotRun')",
                          "is", *id, stages[i])) != 0) {
            tx_end(s, "ROLLBACK");
            return rc;
        }
    return tx_end(s, "COMMIT");
}

int pier_state_supersede(pier_state *s, const char *pipeline, int64_t keep_id, int *count)
{
    sqlite3_mutex_enter(sqlite3_db_mutex(s->db)); /* sqlite3_changes is per connection */
    int rc = run_sql(s,
                     "UPDATE runs SET status='Superseded', ended_ms=?, "
                     "reason='superseded by run ' || ? "
                     "WHERE pipeline=? AND status='Queued' AND id<>?",
                     "iisi", now_ms(), keep_id, pipeline, keep_id);
    if (count)
        *count = rc == 0 ? sqlite3_changes(s->db) : 0;
    sqlite3_mutex_leave(sqlite3_db_mutex(s->db));
    return rc;
}

int pier_state_run_start(pier_state *s, int64_t id, const char *log_path)
{
    return run_sql(s, "UPDATE runs SET status='InProgress', started_ms=?, log_path=? WHERE id=?",
                   "isi", now_ms(), log_path, id);
}

int pier_state_run_commits(pier_state *s, int64_t id, const char *from, const char *to)
{
    return run_sql(s, "UPDATE runs SET from_commit=?, to_commit=? WHERE id=?", "ssi",
                   from && *from ? from : NULL, to, id);
}

int pier_state_stage(pier_state *s, int64_t id, const char *stage, pier_run_status status,
                     const char *message)
{
    int64_t t = now_ms();
    if (status == PIER_RUN_IN_PROGRESS)
        return run_sql(s,
                       "UPDATE stages SET status='InProgress', started_ms=?, message=? "
                       "WHERE run_id=? AND name=?",
                       "isis", t, message, id, stage);
    return run_sql(s,
                   "UPDATE stages SET status=?, started_ms=coalesce(started_ms, ?), ended_ms=?, "
                   "message=? WHERE run_id=? AND name=?",
                   "siisis", pier_run_status_name(status), t, t, message, id, stage);
}

int pier_state_run_changes(pier_state *s, int64_t id, const char *files_json)
{
    return run_sql(s, "UPDATE runs SET changed_files=? WHERE id=?", "si", files_json, id);
}

int pier_state_run_deploy(pier_state *s, int64_t id, int64_t uploaded, int64_t skipped,
                          int64_t deleted, int64_t bytes)
{
    return run_sql(s, "UPDATE runs SET uploaded=?, skipped=?, deleted=?, bytes=? WHERE id=?",
                   "iiiii", uploaded, skipped, deleted, bytes, id);
}

int pier_state_run_invalidation(pier_state *s, int64_t id, const char *invalidation_id,
                                const char *paths_json)
{
    return run_sql(s, "UPDATE runs SET invalidation_id=?, invalidation_paths=? WHERE id=?", "ssi",
                   invalidation_id, paths_json, id);
}

int pier_state_run_finish(pier_state *s, int64_t id, pier_run_status status, const char *reason)
{
    return run_sql(s, "UPDATE runs SET status=?, reason=coalesce(?, reason), ended_ms=? WHERE id=?",
                   "ssii", pier_run_status_name(status), reason, now_ms(), id);
}

int pier_state_run_status(pier_state *s, int64_t id, pier_run_status *out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT status FROM runs WHERE id=?", -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "prepare");
    sqlite3_bind_int64(st, 1, id);
    int rc;
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = pier_run_status_parse((const char *)sqlite3_column_text(st, 0), out);
    else
        rc = pier_error_set(PIER_ENOTFOUND, "no run %lld", (long long)id);
    sqlite3_finalize(st);
    return rc;
}

/* Column i of st as a JSON value: integers, text, JSON text for the
 * columns whose names end in _paths or _files, null. */
static json_t *column_json(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return json_integer(sqlite3_column_int64(st, i));
    case SQLITE_TEXT: {
        const char *name = sqlite3_column_name(st, i);
        const char *v = (const char *)sqlite3_column_text(st, i);
        size_t n = strlen(name);
        if ((n > 6 && strcmp(name + n - 6, "_paths") == 0) ||
            (n > 6 && strcmp(name + n - 6, "_files") == 0)) {
            json_t *j = json_loads(v, 0, NULL);
            if (j)
                return j;
        }
        return json_string(v);
    }
    default:
        return json_null();
    }
}

static json_t *row_json(sqlite3_stmt *st)
{
    json_t *o = json_object();
    for (int i = 0; i < sqlite3_column_count(st); i++)
        json_object_set_new(o, sqlite3_column_name(st, i), column_json(st, i));
    return o;
}

static int stages_json(pier_state *s, int64_t id, json_t **out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT name, status, started_ms, ended_ms, message FROM stages "
                           "WHERE run_id=? ORDER BY CASE name WHEN 'source' THEN 0 WHEN 'build' "
                           "THEN 1 WHEN 'deploy' THEN 2 WHEN 'invalidate' THEN 3 ELSE 4 END",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "prepare");
    sqlite3_bind_int64(st, 1, id);
    json_t *a = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(a, row_json(st));
    sqlite3_finalize(st);
    *out = a;
    return 0;
}

static const char run_columns[] =
    "SELECT id, pipeline, trigger, from_commit, to_commit, status, reason, created_ms, "
    "started_ms, ended_ms, log_path, uploaded, skipped, deleted, bytes, invalidation_id, "
    "invalidation_paths, changed_files FROM runs ";

static int runs_query(pier_state *s, sqlite3_stmt *st, json_t **out)
{
    json_t *a = json_array();
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *r = row_json(st);
        json_t *stages = NULL;
        if ((rc = stages_json(s, sqlite3_column_int64(st, 0), &stages)) != 0) {
            json_decref(r);
            break;
        }
        json_object_set_new(r, "stages", stages);
        json_array_append_new(a, r);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_fail(s, "read runs");
    sqlite3_finalize(st);
    if (rc != 0) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}

int pier_state_runs_json(pier_state *s, const char *pipeline, int limit, json_t **out)
{
    return pier_state_runs_page_json(s, pipeline, limit, 0, out);
}

int pier_state_runs_page_json(pier_state *s, const char *pipeline, int limit, int64_t before,
                              json_t **out)
{
    char sql[700];
    snprintf(sql, sizeof sql, "%sWHERE %s AND %s ORDER BY id DESC LIMIT ?", run_columns,
             pipeline ? "pipeline=?" : "1", before > 0 ? "id<?" : "1");
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "prepare");
    int i = 1;
    if (pipeline)
        sqlite3_bind_text(st, i++, pipeline, -1, SQLITE_TRANSIENT);
    if (before > 0)
        sqlite3_bind_int64(st, i++, before);
    sqlite3_bind_int64(st, i, limit > 0 ? limit : 20);
    return runs_query(s, st, out);
}

int pier_state_run_json(pier_state *s, int64_t id, json_t **out)
{
    char sql[700];
    snprintf(sql, sizeof sql, "%sWHERE id=?", run_columns);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "prepare");
    sqlite3_bind_int64(st, 1, id);
    json_t *a = NULL;
    int rc = runs_query(s, st, &a);
    if (rc != 0)
        return rc;
    if (json_array_size(a) == 0) {
        json_decref(a);
        return pier_error_set(PIER_ENOTFOUND, "no run %lld in %s", (long long)id, s->path);
    }
    *out = json_incref(json_array_get(a, 0));
    json_decref(a);
    return 0;
}

int pier_state_pipelines_json(pier_state *s, json_t **out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT name, last_deployed, last_deployed_run FROM pipelines "
                           "ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(s, "prepare");
    json_t *a = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(a, row_json(st));
    sqlite3_finalize(st);
    *out = a;
    return 0;
}
