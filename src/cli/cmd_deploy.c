/*
 * cmd_deploy: `pier deploy DIR --to s3://BUCKET[/PREFIX] [--cdn
 * cloudfront://ID] ...` and `pier invalidate --cdn cloudfront://ID PATH...`.
 *
 * deploy is stages 3 and 4 of a pipeline, alone: the local manifest
 * (deploy/manifest.h), the listing under the prefix and pier's manifest
 * object, the plan (deploy/plan.h), then either the plan printed
 * (--dry-run) or executed (deploy/execute.h) and the CDN told what changed
 * (deploy/invalidate.h). Progress goes to stderr; stdout gets the summary
 * line, or the result as JSON with --json.
 *
 * Exit status: 0 done, 1 failed (message "pier: ..."), 2 usage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/cloudfront.h"
#include "aws/s3.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "cli/commands.h"
#include "deploy/execute.h"
#include "deploy/invalidate.h"
#include "deploy/plan.h"
#include "deploy/run.h"
#include "deploy/rules.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct {
    const char **items; /* borrowed from argv */
    size_t count;       /* their number */
} str_list;

static void list_add(str_list *l, const char *s)
{
    l->items = pier_realloc(l->items, (l->count + 1) * sizeof *l->items);
    l->items[l->count++] = s;
}

typedef struct {
    const char *dir;          /* the build folder */
    const char *to;           /* s3://bucket[/prefix] */
    const char *cdn;          /* cloudfront://ID or NULL */
    const char *endpoint;     /* S3 endpoint or NULL */
    const char *cdn_endpoint; /* CloudFront endpoint or NULL */
    const char *region;       /* or NULL */
    const char *profile;      /* or NULL */
    const char *rules;        /* rules file or NULL */
    const char *origin_path;  /* CloudFront origin path or NULL */
    const char *caller_ref;   /* invalidate: --caller-reference */
    str_list cache;           /* GLOB=VALUE */
    str_list headers;         /* GLOB:NAME=VALUE */
    str_list paths;           /* invalidate: PATH... */
    bool dry_run, json, no_delete, allow_empty, no_wait, path_style;
    int64_t max_deletes; /* -1 = the plan's default */
    uint64_t jobs;       /* 0 = default */
    uint64_t max_paths;  /* 0 = default */
} args;

/* Matches "--name" or "--name=value"; a value-taking option takes the next
 * argument when no '=' is given. Returns 1 on a match (*val set for value
 * options), 0 when not this option, -1 on a missing value. */
static int opt_match(int argc, char **argv, int *i, const char *name, bool takes, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '\0') {
        if (!takes)
            return 1;
        if (*i + 1 >= argc)
            return -1;
        *val = argv[++*i];
        return 1;
    }
    if (a[n] == '=' && takes) {
        *val = a + n + 1;
        return 1;
    }
    return 0;
}

static int parse_args(const char *cmd, int argc, char **argv, args *a)
{
    static const char *const valued[] = {
        "--to",      "--cdn",       "--endpoint-url",  "--cdn-endpoint-url", "--region",
        "--profile", "--rules",     "--cache-control", "--header",           "--max-deletes",
        "--jobs",    "--max-paths", "--origin-path",   "--caller-reference", NULL};
    static const char *const flags[] = {"--dry-run", "--json",       "--no-delete", "--allow-empty",
                                        "--no-wait", "--path-style", NULL};
    bool deploy = strcmp(cmd, "deploy") == 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        const char *name = NULL;
        if (strcmp(arg, "--") == 0) {
            for (i++; i < argc; i++) {
                if (deploy && !a->dir)
                    a->dir = argv[i];
                else if (!deploy)
                    list_add(&a->paths, argv[i]);
                else
                    return pier_cli_usage_error(cmd, "one folder at a time ('%s' and '%s')", a->dir,
                                                argv[i]);
            }
            break;
        }
        for (const char *const *o = valued; *o && !name; o++) {
            int m = opt_match(argc, argv, &i, *o, true, &val);
            if (m < 0)
                return pier_cli_usage_error(cmd, "%s needs a value", *o);
            if (m > 0)
                name = *o;
        }
        for (const char *const *o = flags; *o && !name; o++)
            if (opt_match(argc, argv, &i, *o, false, &val) > 0)
                name = *o;
        if (!name) {
            if (arg[0] == '-' && arg[1] != '\0' && (deploy || arg[1] == '-'))
                return pier_cli_usage_error(cmd, "unknown option '%s'", arg);
            if (!deploy)
                list_add(&a->paths, arg);
            else if (a->dir)
                return pier_cli_usage_error(cmd, "one folder at a time ('%s' and '%s')", a->dir,
                                            arg);
            else
                a->dir = arg;
            continue;
        }
        if (!strcmp(name, "--to"))
            a->to = val;
        else if (!strcmp(name, "--cdn"))
            a->cdn = val;
        else if (!strcmp(name, "--endpoint-url"))
            a->endpoint = val;
        else if (!strcmp(name, "--cdn-endpoint-url"))
            a->cdn_endpoint = val;
        else if (!strcmp(name, "--region"))
            a->region = val;
        else if (!strcmp(name, "--profile"))
            a->profile = val;
        else if (!strcmp(name, "--rules"))
            a->rules = val;
        else if (!strcmp(name, "--origin-path"))
            a->origin_path = val;
        else if (!strcmp(name, "--caller-reference"))
            a->caller_ref = val;
        else if (!strcmp(name, "--cache-control"))
            list_add(&a->cache, val);
        else if (!strcmp(name, "--header"))
            list_add(&a->headers, val);
        else if (!strcmp(name, "--max-deletes")) {
            uint64_t v;
            if (pier_parse_u64(val, &v) != 0 || v > INT64_MAX)
                return pier_cli_usage_error(cmd, "--max-deletes wants a number, found '%s'", val);
            a->max_deletes = (int64_t)v;
        } else if (!strcmp(name, "--jobs")) {
            if (pier_parse_u64(val, &a->jobs) != 0 || a->jobs < 1 || a->jobs > PIER_DEPLOY_JOBS_MAX)
                return pier_cli_usage_error(cmd, "--jobs wants 1..%d, found '%s'",
                                            PIER_DEPLOY_JOBS_MAX, val);
        } else if (!strcmp(name, "--max-paths")) {
            if (pier_parse_u64(val, &a->max_paths) != 0 || a->max_paths < 1 ||
                a->max_paths > PIER_CLOUDFRONT_MAX_PATHS)
                return pier_cli_usage_error(cmd, "--max-paths wants 1..%d, found '%s'",
                                            PIER_CLOUDFRONT_MAX_PATHS, val);
        } else if (!strcmp(name, "--dry-run"))
            a->dry_run = true;
        else if (!strcmp(name, "--json"))
            a->json = true;
        else if (!strcmp(name, "--no-delete"))
            a->no_delete = true;
        else if (!strcmp(name, "--allow-empty"))
            a->allow_empty = true;
        else if (!strcmp(name, "--no-wait"))
            a->no_wait = true;
        else if (!strcmp(name, "--path-style"))
            a->path_style = true;
    }
    return 0;
}

/* --cache-control GLOB=VALUE and --header GLOB:NAME=VALUE into rules. */
static int add_flag_rules(pier_deploy_rules *r, const args *a)
{
    for (size_t i = 0; i < a->cache.count; i++) {
        const char *s = a->cache.items[i];
        const char *eq = strchr(s, '=');
        if (!eq || eq == s)
            return pier_cli_usage_error("deploy", "--cache-control wants GLOB=VALUE, found '%s'",
                                        s);
        char *glob = pier_strndup(s, (size_t)(eq - s));
        int rc = pier_deploy_rules_add_cache(r, glob, eq + 1);
        free(glob);
        if (rc < 0)
            return pier_cli_usage_error("deploy", "--cache-control %s: %s", s, pier_error_last());
    }
    for (size_t i = 0; i < a->headers.count; i++) {
        const char *s = a->headers.items[i];
        /* NAME=VALUE after the last ':' before the first '=' (globs may hold ':') */
        const char *eq = strchr(s, '=');
        const char *colon = NULL;
        for (const char *q = s; eq && q < eq; q++)
            if (*q == ':')
                colon = q;
        if (!colon || !eq || colon == s || eq == colon + 1)
            return pier_cli_usage_error("deploy", "--header wants GLOB:NAME=VALUE, found '%s'", s);
        char *glob = pier_strndup(s, (size_t)(colon - s));
        char *name = pier_strndup(colon + 1, (size_t)(eq - colon - 1));
        int rc = pier_deploy_rules_add_header(r, glob, name, eq + 1);
        free(glob);
        free(name);
        if (rc < 0)
            return pier_cli_usage_error("deploy", "--header %s: %s", s, pier_error_last());
    }
    return 0;
}

static void set_shared(pier_awsreq_shared *sh, const args *a, const char *endpoint)
{
    sh->endpoint_url = endpoint;
    sh->region = a->region;
    sh->profile = a->profile;
}

static json_t *str_array(char *const *v, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_string(v[i]));
    return arr;
}

static void print_json(json_t *o)
{
    pier_buf out = PIER_BUF_INIT;
    if (pier_json_write(&out, o, true) == 0) {
        fputs(pier_buf_cstr(&out), stdout);
        fputc('\n', stdout);
    }
    fflush(stdout);
    pier_buf_free(&out);
}

static json_t *result_json(const char *bucket, const pier_deploy_plan *p,
                           const pier_deploy_result *r, const pier_deploy_invalidation *inv,
                           const char *cdn_id, int rc, const char *message)
{
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_boolean(rc == 0));
    if (rc != 0)
        json_object_set_new(o, "error", json_string(message ? message : ""));
    json_object_set_new(o, "bucket", json_string(bucket));
    json_object_set_new(o, "prefix", json_string(p ? p->prefix : ""));
    json_object_set_new(o, "deploy_id", json_string(p ? p->deploy_id : ""));
    json_t *s = json_object();
    json_object_set_new(s, "uploaded", json_integer((json_int_t)r->uploaded));
    json_object_set_new(s, "uploaded_bytes", json_integer((json_int_t)r->uploaded_bytes));
    json_object_set_new(s, "multipart", json_integer((json_int_t)r->multipart));
    json_object_set_new(s, "skipped", json_integer((json_int_t)r->skipped));
    json_object_set_new(s, "skipped_bytes", json_integer((json_int_t)r->skipped_bytes));
    json_object_set_new(s, "deleted", json_integer((json_int_t)r->deleted));
    json_object_set_new(s, "kept", json_integer(p ? (json_int_t)p->kept_count : 0));
    json_object_set_new(s, "failed", json_integer((json_int_t)r->failed));
    json_object_set_new(s, "not_started", json_integer((json_int_t)r->not_started));
    json_object_set_new(s, "requests", json_integer((json_int_t)r->requests));
    json_object_set_new(s, "seconds", json_real(r->seconds));
    json_object_set_new(s, "new", json_integer(p ? (json_int_t)p->new_count : 0));
    json_object_set_new(s, "changed", json_integer(p ? (json_int_t)p->changed_count : 0));
    json_object_set_new(s, "metadata", json_integer(p ? (json_int_t)p->metadata_count : 0));
    json_object_set_new(o, "summary", s);
    json_object_set_new(o, "state_written", json_boolean(r->state_written));
    json_object_set_new(o, "interrupted", json_boolean(r->interrupted));
    if (r->stopped_in)
        json_object_set_new(o, "stopped_in", json_string(r->stopped_in));
    json_t *up = json_array(), *del = json_array();
    for (size_t i = 0; p && i < p->count && i < r->outcome_count; i++) {
        if (r->outcome[i] != PIER_DEPLOY_DONE)
            continue;
        json_array_append_new(p->actions[i].op == PIER_DEPLOY_UPLOAD ? up : del,
                              json_string(p->actions[i].key));
    }
    json_object_set_new(o, "uploaded", up);
    json_object_set_new(o, "deleted", del);
    json_t *errs = json_array();
    for (size_t i = 0; i < r->error_count; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "key", json_string(r->errors[i].key));
        if (r->errors[i].path)
            json_object_set_new(e, "path", json_string(r->errors[i].path));
        json_object_set_new(e, "error", json_string(pier_error_name(r->errors[i].code)));
        json_object_set_new(e, "message", json_string(r->errors[i].message));
        json_array_append_new(errs, e);
    }
    json_object_set_new(o, "errors", errs);
    json_t *iv = json_object();
    json_object_set_new(iv, "distribution", cdn_id ? json_string(cdn_id) : json_null());
    json_object_set_new(iv, "paths", p ? str_array(p->paths, p->path_count) : json_array());
    json_object_set_new(iv, "caller_reference",
                        json_string(p && p->path_count ? p->caller_reference : ""));
    json_object_set_new(iv, "id", inv && inv->id ? json_string(inv->id) : json_null());
    json_object_set_new(iv, "status", inv && inv->status ? json_string(inv->status) : json_null());
    json_object_set_new(o, "invalidation", iv);
    json_t *w = json_array();
    for (size_t i = 0; p && i < p->warning_count; i++)
        json_array_append_new(w, json_string(p->warnings[i]));
    json_object_set_new(o, "warnings", w);
    return o;
}

static pier_deploy_progress_mode progress_mode(void)
{
    if (pier_log_get_level() < PIER_LOG_INFO)
        return PIER_DEPLOY_PROGRESS_NONE;
    const char *env = getenv("PIER_PROGRESS");
    if (env && !strcmp(env, "plain"))
        return PIER_DEPLOY_PROGRESS_PLAIN;
    if (env && !strcmp(env, "none"))
        return PIER_DEPLOY_PROGRESS_NONE;
    if (env && !strcmp(env, "bar"))
        return PIER_DEPLOY_PROGRESS_BAR;
    return PIER_DEPLOY_PROGRESS_AUTO;
}

/* A failure before anything was done: with --json, {"ok": false, "error"}
 * on stdout too, so a script reading stdout sees it. */
static int fail_json(const args *a, const char *bucket)
{
    if (a->json) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_false());
        json_object_set_new(o, "error", json_string(pier_error_last()));
        json_object_set_new(o, "code", json_string(pier_error_name(pier_error_last_code())));
        if (bucket)
            json_object_set_new(o, "bucket", json_string(bucket));
        print_json(o);
        json_decref(o);
    }
    return pier_cli_fail(NULL);
}

static void install_handlers(void *ctx)
{
    struct sigaction *old = ctx; /* [0] SIGINT, [1] SIGTERM */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = (int)SA_RESETHAND; /* a second Ctrl-C stops at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old[0]);
    sigaction(SIGTERM, &sa, &old[1]);
}

int pier_cmd_deploy(int argc, char **argv)
{
    args a;
    memset(&a, 0, sizeof a);
    a.max_deletes = -1;
    int status = PIER_EXIT_ERROR;
    char *bucket = NULL, *prefix = NULL, *cdn_id = NULL;
    pier_deploy_rules *rules = NULL;
    pier_s3 *s3 = NULL;
    pier_deploy_run_result run;
    pier_deploy_invalidation inv;
    pier_deploy_run_result_init(&run);
    pier_deploy_invalidation_init(&inv);
    struct sigaction old[2];
    int rc = 0;
    char *msg = NULL;

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (parse_args("deploy", argc, argv, &a) != 0) {
        status = PIER_EXIT_USAGE;
        goto done;
    }
    if (!a.dir) {
        status = pier_cli_usage_error("deploy", "which folder? (pier deploy DIR --to s3://...)");
        goto done;
    }
    if (!a.to) {
        status = pier_cli_usage_error("deploy", "--to s3://BUCKET[/PREFIX] is required");
        goto done;
    }
    if (pier_s3_parse_uri(a.to, &bucket, &prefix) != 0) {
        status = pier_cli_usage_error("deploy", "--to: %s", pier_error_last());
        goto done;
    }
    if (a.cdn && pier_cloudfront_parse_uri(a.cdn, &cdn_id) != 0) {
        status = pier_cli_usage_error("deploy", "--cdn: %s", pier_error_last());
        goto done;
    }
    if (a.no_wait && !a.cdn)
        PIER_WARN("--no-wait without --cdn: there is no invalidation to wait for");

    /* rules: flags first, then the file (the first matching rule wins) */
    rules = pier_deploy_rules_new();
    if (add_flag_rules(rules, &a) != 0) {
        status = PIER_EXIT_USAGE;
        goto done;
    }
    if (a.rules && pier_deploy_rules_load_file(rules, a.rules) != 0) {
        status = fail_json(&a, bucket);
        goto done;
    }

    if (!pier_file_exists(a.dir)) {
        pier_error_set(PIER_ENOTFOUND, "no such folder: %s (build the site first?)", a.dir);
        status = fail_json(&a, bucket);
        goto done;
    }

    pier_s3_options so = PIER_S3_OPTIONS_INIT;
    set_shared(&so.shared, &a, a.endpoint);
    if (a.path_style)
        so.addressing = PIER_S3_ADDRESSING_PATH;
    if (pier_s3_new(&s3, &so) != 0) {
        status = fail_json(&a, bucket);
        goto done;
    }
    pier_awsreq_shared cdn_aws = PIER_AWSREQ_SHARED_INIT;
    set_shared(&cdn_aws, &a, a.cdn_endpoint);
    cdn_aws.http = pier_awsreq_client_http(pier_s3_awsreq(s3));
    cdn_aws.config = pier_awsreq_client_config(pier_s3_awsreq(s3));

    pier_deploy_run_options ro = PIER_DEPLOY_RUN_OPTIONS_INIT;
    ro.dir = a.dir;
    ro.bucket = bucket;
    ro.prefix = prefix;
    ro.s3 = s3;
    ro.rules = rules;
    ro.no_delete = a.no_delete;
    ro.allow_empty = a.allow_empty;
    ro.max_deletes = a.max_deletes;
    ro.max_paths = (size_t)a.max_paths;
    ro.origin_prefix = a.origin_path;
    ro.cdn_id = cdn_id;
    ro.cdn_aws = &cdn_aws;
    ro.jobs = (unsigned)a.jobs;
    ro.dry_run = a.dry_run;
    ro.progress = stderr;
    ro.progress_mode = progress_mode();
    ro.interrupted = &interrupted;
    ro.start = &t0;
    ro.before_execute = install_handlers;
    ro.ctx = old;
    rc = pier_deploy_run(&ro, &run);
    pier_deploy_plan *plan = run.plan;
    if (rc < 0 && !run.executed) {
        rc = 0;
        status = fail_json(&a, bucket);
        goto done;
    }

    if (a.dry_run) {
        if (a.json) {
            pier_buf out = PIER_BUF_INIT;
            pier_buf_init(&out, (size_t)1 << 30);
            if (pier_deploy_plan_to_json(&out, plan, true) != 0) {
                pier_buf_free(&out);
                status = fail_json(&a, bucket);
                goto done;
            }
            fputs(pier_buf_cstr(&out), stdout);
            fputc('\n', stdout);
            pier_buf_free(&out);
        } else {
            printf("dry run: s3://%s/%s (nothing is changed)\n", bucket, plan->prefix);
            pier_deploy_plan_print_text(stdout, plan);
        }
        fflush(stdout);
        status = PIER_EXIT_OK;
        goto done;
    }
    if (rc < 0) {
        msg = pier_strdup(pier_error_last());
        goto report;
    }

    if (cdn_id && plan->path_count > 0) {
        pier_deploy_invalidate_options io = PIER_DEPLOY_INVALIDATE_OPTIONS_INIT;
        io.no_wait = a.no_wait;
        io.progress = ro.progress_mode == PIER_DEPLOY_PROGRESS_NONE ? NULL : stderr;
        rc = pier_deploy_run_invalidate(&inv, &cdn_aws, cdn_id, plan->paths, plan->path_count,
                                        plan->caller_reference, &io);
        if (rc < 0) {
            pier_error_wrap(rc,
                            "the deploy succeeded but the invalidation failed (run `pier "
                            "invalidate --cdn %s --caller-reference %s` with the same paths)",
                            a.cdn, plan->caller_reference);
            msg = pier_strdup(pier_error_last());
        }
    }

report:
    if (a.json) {
        json_t *o = result_json(bucket, plan, &run.exec, &inv, cdn_id, rc, msg);
        print_json(o);
        json_decref(o);
    } else {
        pier_buf line = PIER_BUF_INIT;
        pier_deploy_result_summary(&line, &run.exec);
        printf("%s\n", pier_buf_cstr(&line));
        pier_buf_free(&line);
        if (inv.id)
            printf("invalidation %s: %zu path%s, %s\n", inv.id, inv.paths,
                   inv.paths == 1 ? "" : "s", inv.status ? inv.status : "created");
        fflush(stdout);
    }
    if (rc < 0) {
        pier_error_set(rc, "%s", msg ? msg : "deploy failed");
        status = pier_cli_fail(NULL);
    } else {
        status = PIER_EXIT_OK;
    }

done:
    if (run.executed) {
        sigaction(SIGINT, &old[0], NULL);
        sigaction(SIGTERM, &old[1], NULL);
    }
    free(msg);
    pier_deploy_invalidation_free(&inv);
    pier_deploy_run_result_free(&run);
    pier_s3_free(s3);
    pier_deploy_rules_free(rules);
    free(bucket);
    free(prefix);
    free(cdn_id);
    free(a.cache.items);
    free(a.headers.items);
    free(a.paths.items);
    return status;
}

int pier_cmd_invalidate(int argc, char **argv)
{
    args a;
    memset(&a, 0, sizeof a);
    int status = PIER_EXIT_ERROR;
    char *cdn_id = NULL;
    char **paths = NULL;
    size_t n = 0;
    pier_cloudfront *cf = NULL;
    pier_deploy_invalidation inv;
    pier_deploy_invalidation_init(&inv);
    pier_buf enc = PIER_BUF_INIT;
    if (parse_args("invalidate", argc, argv, &a) != 0) {
        status = PIER_EXIT_USAGE;
        goto done;
    }
    if (!a.cdn) {
        status = pier_cli_usage_error("invalidate", "--cdn cloudfront://ID is required");
        goto done;
    }
    if (a.paths.count == 0) {
        status = pier_cli_usage_error("invalidate", "which paths? (e.g. / /index.html '/docs/*')");
        goto done;
    }
    if (pier_cloudfront_parse_uri(a.cdn, &cdn_id) != 0) {
        status = pier_cli_usage_error("invalidate", "--cdn: %s", pier_error_last());
        goto done;
    }
    paths = pier_calloc(a.paths.count, sizeof *paths);
    for (size_t i = 0; i < a.paths.count; i++) {
        const char *p = a.paths.items[i];
        if (p[0] != '/') {
            status = pier_cli_usage_error("invalidate", "a path starts with '/', found '%s'", p);
            goto done;
        }
        /* encode as the plan does, keeping a trailing '*' wildcard */
        size_t len = strlen(p);
        bool star = len > 1 && p[len - 1] == '*';
        char *body = pier_strndup(p + 1, star ? len - 2 : len - 1);
        pier_buf_reset(&enc);
        int rc = pier_deploy_path_encode(&enc, body);
        free(body);
        if (rc < 0) {
            status = pier_cli_fail(NULL);
            goto done;
        }
        if (star)
            pier_buf_putc(&enc, '*');
        paths[n++] = pier_strdup(strcmp(p, "/*") == 0 ? "/*" : pier_buf_cstr(&enc));
    }
    size_t max = a.max_paths ? (size_t)a.max_paths : PIER_CLOUDFRONT_MAX_PATHS;
    pier_deploy_paths_collapse(&paths, &n, max);
    char ref[PIER_DEPLOY_CALLER_REF_LEN];
    if (!a.caller_ref) {
        char id[PIER_DEPLOY_ID_LEN];
        pier_deploy_id_new(id, (int64_t)time(NULL));
        pier_deploy_caller_reference(ref, id, paths, n);
    }
    pier_cloudfront_options co = PIER_CLOUDFRONT_OPTIONS_INIT;
    set_shared(&co.shared, &a, a.endpoint ? a.endpoint : a.cdn_endpoint);
    if (pier_cloudfront_new(&cf, &co) != 0) {
        status = pier_cli_fail(NULL);
        goto done;
    }
    pier_deploy_invalidate_options io = PIER_DEPLOY_INVALIDATE_OPTIONS_INIT;
    io.no_wait = a.no_wait;
    io.progress = pier_log_get_level() < PIER_LOG_INFO ? NULL : stderr;
    const char *use_ref = a.caller_ref ? a.caller_ref : ref;
    int rc = pier_deploy_invalidate(&inv, cf, cdn_id, paths, n, use_ref, &io);
    if (a.json) {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_boolean(rc == 0));
        if (rc < 0)
            json_object_set_new(o, "error", json_string(pier_error_last()));
        json_object_set_new(o, "distribution", json_string(cdn_id));
        json_object_set_new(o, "id", inv.id ? json_string(inv.id) : json_null());
        json_object_set_new(o, "status", inv.status ? json_string(inv.status) : json_null());
        json_object_set_new(o, "caller_reference", json_string(use_ref));
        json_object_set_new(o, "paths", str_array(paths, n));
        print_json(o);
        json_decref(o);
    } else if (rc == 0) {
        printf("invalidation %s: %zu path%s, %s (CallerReference %s)\n", inv.id ? inv.id : "?", n,
               n == 1 ? "" : "s", inv.status ? inv.status : "created", use_ref);
        fflush(stdout);
    }
    status = rc == 0 ? PIER_EXIT_OK : pier_cli_fail(NULL);
done:
    pier_buf_free(&enc);
    pier_deploy_invalidation_free(&inv);
    pier_cloudfront_free(cf);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    free(cdn_id);
    free(a.cache.items);
    free(a.headers.items);
    free(a.paths.items);
    return status;
}
