/*
 * test_plan: the deploy planner, driven by the cases in
 * tests/data/deploy/plan/ (one JSON file per case; README.md there has the
 * format): each
 * writes its local files into a temporary folder, builds the manifest,
 * feeds the listing, pier's remote manifest and the rules, and compares the
 * plan (actions in order, counts, invalidation paths, next state, errors)
 * with what the case expects. Every plan is also checked for invariants
 * (phase order, JSON and text output agree, the next state round-trips).
 * Then direct tests of path encoding, collapsing, the CallerReference and
 * the state parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/mime.h"
#include "base/str.h"
#include "deploy/manifest.h"
#include "deploy/plan.h"
#include "deploy/remote.h"
#include "deploy/rules.h"

static char *data_path(const char *rel)
{
    const char *root = getenv("PIER_TESTDATA");
    assert_non_null(root);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "%s/deploy/%s", root, rel);
    return pier_buf_detach(&b);
}

static int setup(void **state)
{
    (void)state;
    char *mt = data_path("mime.types");
    int rc = pier_mime_load(mt);
    free(mt);
    return rc;
}

/* ---- case expansion ----------------------------------------------------------- */

/* "{i}" -> the repeat index as 3 digits; then "md5:TEXT" / "sha256:TEXT" ->
 * the hex digest of TEXT. Returns a new string. */
static char *expand_str(const char *s, int index)
{
    pier_buf b = PIER_BUF_INIT;
    for (const char *p = s; *p; p++) {
        if (index >= 0 && strncmp(p, "{i}", 3) == 0) {
            pier_buf_printf(&b, "%03d", index);
            p += 2;
        } else {
            pier_buf_putc(&b, *p);
        }
    }
    char *t = pier_buf_detach(&b);
    if (pier_str_starts_with(t, "md5:") || pier_str_starts_with(t, "sha256:")) {
        bool md5 = t[0] == 'm';
        const char *text = t + (md5 ? 4 : 7);
        unsigned char d[PIER_SHA256_LEN];
        char *hex = pier_malloc(65);
        if (md5)
            pier_md5(d, text, strlen(text));
        else
            pier_sha256(d, text, strlen(text));
        pier_hex_encode(hex, d, md5 ? PIER_MD5_LEN : PIER_SHA256_LEN);
        free(t);
        return hex;
    }
    return t;
}

/* A deep copy of v with expand_str applied to every string and key. */
static json_t *expand(const json_t *v, int index)
{
    if (json_is_string(v)) {
        char *s = expand_str(json_string_value(v), index);
        json_t *r = json_string(s);
        free(s);
        return r;
    }
    if (json_is_array(v)) {
        json_t *r = json_array();
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) json_array_append_new(r, expand(e, index));
        return r;
    }
    if (json_is_object(v)) {
        json_t *r = json_object();
        const char *k;
        const json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            char *key = expand_str(k, index);
            json_object_set_new(r, key, expand(e, index));
            free(key);
        }
        return r;
    }
    return json_deep_copy(v);
}

/* The entries of a local/remote list with "repeat" unrolled, expanded. */
static json_t *unroll(const json_t *list)
{
    json_t *out = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        int64_t n = pier_json_int(e, "repeat", -1);
        if (n < 0) {
            json_array_append_new(out, expand(e, -1));
            continue;
        }
        for (int k = 0; k < n; k++)
            json_array_append_new(out, expand(e, k));
    }
    return out;
}

static void fill_pattern(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)((i * 7 + (i >> 10)) % 251);
}

static void write_local(const char *dir, const json_t *e)
{
    pier_buf rel = PIER_BUF_INIT;
    const char *hex = pier_json_str(e, "path_hex", NULL);
    if (hex) {
        size_t n = strlen(hex) / 2;
        char *raw = pier_calloc(n + 1, 1);
        assert_int_equal(pier_hex_decode((unsigned char *)raw, hex, n), 0);
        pier_buf_puts(&rel, raw);
        free(raw);
    } else {
        pier_buf_puts(&rel, pier_json_str(e, "path", ""));
    }
    char *path = pier_path_join(dir, pier_buf_cstr(&rel));
    char *slash = strrchr(path, '/');
    *slash = '\0';
    assert_int_equal(pier_file_mkdirs(path, 0755), 0);
    *slash = '/';
    FILE *f = fopen(path, "wb");
    if (!f)
        print_error("cannot create %s\n", path);
    assert_non_null(f);
    int64_t pattern = pier_json_int(e, "pattern", -1);
    if (pattern >= 0) {
        unsigned char *buf = pier_malloc((size_t)pattern + 1);
        fill_pattern(buf, (size_t)pattern);
        assert_int_equal(fwrite(buf, 1, (size_t)pattern, f), (size_t)pattern);
        free(buf);
    } else {
        const char *content = pier_json_str(e, "content", "");
        fwrite(content, 1, strlen(content), f);
    }
    assert_int_equal(fclose(f), 0);
    free(path);
    pier_buf_free(&rel);
}

static pier_deploy_listing *make_listing(const json_t *remote)
{
    pier_deploy_listing *l = pier_deploy_listing_new();
    json_t *list = unroll(remote);
    size_t i;
    const json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *content = pier_json_str(e, "content", NULL);
        uint64_t size = content ? strlen(content) : (uint64_t)pier_json_int(e, "size", 0);
        char md5hex[33] = "";
        if (content) {
            unsigned char d[PIER_MD5_LEN];
            pier_md5(d, content, strlen(content));
            pier_hex_encode(md5hex, d, PIER_MD5_LEN);
        }
        const char *etag = pier_json_str(e, "etag", content ? md5hex : "");
        time_t lm = 0;
        const char *lms = pier_json_str(e, "last_modified", NULL);
        if (lms)
            assert_int_equal(pier_time_parse(lms, &lm), 0);
        pier_deploy_listing_add(l, pier_json_str(e, "key", ""), size, etag, (int64_t)lm);
    }
    json_decref(list);
    return l;
}

/* ---- checks ---------------------------------------------------------------------- */

static const char *code_name(int rc)
{
    switch (rc) {
    case PIER_EINVALID:
        return "invalid";
    case PIER_ECONFLICT:
        return "conflict";
    case PIER_ENOTFOUND:
        return "notfound";
    default:
        return rc ? "other" : "ok";
    }
}

static void action_string(pier_buf *b, const pier_deploy_action *a)
{
    pier_buf_reset(b);
    if (a->op == PIER_DEPLOY_UPLOAD)
        pier_buf_printf(b, "upload %s %s", a->key, pier_deploy_reason_name(a->reason));
    else
        pier_buf_printf(b, "delete %s", a->key);
}

/* Properties every plan has, whatever the case. */
static void check_invariants(const char *name, const pier_deploy_plan *p,
                             const pier_deploy_manifest *m)
{
    assert_true(p->html_start <= p->delete_start && p->delete_start <= p->count);
    for (size_t i = 0; i < p->count; i++) {
        const pier_deploy_action *a = &p->actions[i];
        pier_deploy_phase want = i < p->html_start     ? PIER_DEPLOY_PHASE_ASSETS
                                 : i < p->delete_start ? PIER_DEPLOY_PHASE_HTML
                                                       : PIER_DEPLOY_PHASE_DELETE;
        assert_int_equal(a->phase, want);
        if (a->op == PIER_DEPLOY_UPLOAD) {
            assert_true(want != PIER_DEPLOY_PHASE_DELETE);
            assert_non_null(a->file);
            assert_string_equal(a->file->key, a->key);
            assert_non_null(a->meta.content_type);
            assert_non_null(a->meta.cache_control);
            assert_int_equal(pier_deploy_is_html_type(a->meta.content_type),
                             want == PIER_DEPLOY_PHASE_HTML);
        } else {
            assert_int_equal(want, PIER_DEPLOY_PHASE_DELETE);
            assert_null(a->file);
        }
        /* Nothing under pier's own ".pier/" is ever an action. */
        assert_false(pier_str_starts_with(a->key + strlen(p->prefix), ".pier/"));
    }
    assert_int_equal(p->new_count + p->changed_count + p->metadata_count, p->delete_start);
    assert_int_equal(p->delete_count, p->count - p->delete_start);
    assert_int_equal(p->new_count + p->changed_count + p->metadata_count + p->skip_count, m->count);
    /* Paths: none iff nothing to do; sorted; at most the budget. */
    if (p->count == 0)
        assert_int_equal(p->path_count, 0);
    assert_int_equal(p->path_count == 0, p->paths == NULL);
    for (size_t i = 1; i < p->path_count; i++)
        assert_true(strcmp(p->paths[i - 1], p->paths[i]) < 0);
    if (p->path_count) {
        assert_true(pier_str_starts_with(p->caller_reference, "pier-"));
        assert_int_equal(strlen(p->caller_reference), 37);
    } else {
        assert_string_equal(p->caller_reference, "");
    }
    /* The next state lists every local file and round-trips. */
    assert_int_equal(p->next_state->count, m->count);
    pier_buf js = PIER_BUF_INIT;
    assert_int_equal(pier_deploy_state_to_json(&js, p->next_state, false), 0);
    pier_deploy_state *back = NULL;
    int rc = pier_deploy_state_parse(&back, js.ptr, js.len, name);
    if (rc)
        print_error("%s: %s\n", name, pier_error_last());
    assert_int_equal(rc, 0);
    assert_int_equal(back->count, p->next_state->count);
    pier_buf js2 = PIER_BUF_INIT;
    assert_int_equal(pier_deploy_state_to_json(&js2, back, false), 0);
    assert_string_equal(js.ptr, js2.ptr);
    pier_deploy_state_free(back);
    pier_buf_free(&js);
    pier_buf_free(&js2);
    /* The JSON plan agrees with the struct. */
    pier_buf pj = PIER_BUF_INIT;
    assert_int_equal(pier_deploy_plan_to_json(&pj, p, true), 0);
    json_t *doc = NULL;
    assert_int_equal(pier_json_parse(&doc, pj.ptr, pj.len, "plan json"), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "actions")), p->count);
    const json_t *sum = json_object_get(doc, "summary");
    assert_int_equal(pier_json_int(sum, "skip", -1), (int64_t)p->skip_count);
    assert_int_equal(pier_json_int(sum, "delete", -1), (int64_t)p->delete_count);
    assert_int_equal(pier_json_int(sum, "upload_bytes", -1), (int64_t)p->upload_bytes);
    const json_t *inv = json_object_get(doc, "invalidation");
    assert_int_equal(json_array_size(json_object_get(inv, "paths")), p->path_count);
    json_decref(doc);
    pier_buf_free(&pj);
    /* The text has one line per action, then skip, paths and a summary. */
    pier_buf t = PIER_BUF_INIT;
    assert_int_equal(pier_deploy_plan_to_text(&t, p), 0);
    size_t lines = 0;
    for (const char *c = t.ptr; c && *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, p->warning_count + p->count + 1 + p->path_count + 1);
    pier_buf_free(&t);
}

static void check_state_entries(const char *name, const pier_deploy_plan *p, const json_t *expected)
{
    const char *key;
    const json_t *want;
    json_object_foreach((json_t *)expected, key, want)
    {
        const pier_deploy_state_file *f = pier_deploy_state_find(p->next_state, key);
        if (!f)
            print_error("%s: next state lacks %s\n", name, key);
        assert_non_null(f);
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)want, k, v)
        {
            const char *got = NULL;
            char size[32];
            if (strcmp(k, "etag") == 0)
                got = f->etag;
            else if (strcmp(k, "sha256") == 0)
                got = f->sha256;
            else if (strcmp(k, "content_type") == 0)
                got = f->meta.content_type;
            else if (strcmp(k, "cache_control") == 0)
                got = f->meta.cache_control;
            else if (strcmp(k, "size") == 0) {
                snprintf(size, sizeof size, "%llu", (unsigned long long)f->size);
                got = size;
            } else
                fail_msg("%s: unknown state field %s", name, k);
            const char *w = json_is_null(v) ? NULL : json_string_value(v);
            if (!w && json_is_integer(v)) {
                snprintf(size, sizeof size, "%lld", (long long)json_integer_value(v));
                w = size;
            }
            if ((w == NULL) != (got == NULL) || (w && strcmp(w, got) != 0))
                print_error("%s: state %s.%s: expected %s, got %s\n", name, key, k, w ? w : "null",
                            got ? got : "null");
            if (w)
                assert_string_equal(got, w);
            else
                assert_null(got);
        }
    }
}

static void check_strings(const char *name, const char *what, char *const *got, size_t n,
                          const json_t *want)
{
    bool same = json_array_size(want) == n;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(got[i], json_string_value(json_array_get(want, i))) == 0;
    if (!same) {
        print_error("%s: %s differ\n  got:\n", name, what);
        for (size_t i = 0; i < n; i++)
            print_error("    %s\n", got[i]);
        print_error("  expected:\n");
        size_t i;
        const json_t *w;
        json_array_foreach(want, i, w) print_error("    %s\n", json_string_value(w));
    }
    assert_true(same);
}

/* The same plan from a lazy manifest (SHA-256 first, the uploads' MD5s
 * after a first plan, then planned again), as cmd_deploy does it. */
static void check_lazy_same(const char *name, const char *dir, int want_md5,
                            const pier_deploy_manifest_options *mo, const pier_deploy_listing *l,
                            const pier_deploy_state *st, const pier_deploy_rules *rules,
                            const pier_deploy_plan_options *po, const pier_deploy_plan *want)
{
    pier_deploy_manifest_options lo = *mo;
    lo.lazy_md5 = true;
    atomic_int flag;
    atomic_init(&flag, want_md5);
    lo.want_md5 = &flag;
    pier_deploy_manifest *m = NULL;
    assert_int_equal(pier_deploy_manifest_build(&m, dir, &lo), 0);
    pier_deploy_plan *p = NULL;
    int rounds = 0;
    for (;;) {
        assert_int_equal(pier_deploy_plan_make(&p, m, l, st, rules, po), 0);
        size_t *need = pier_calloc(p->count + 1, sizeof *need), n = 0;
        for (size_t i = 0; i < p->count; i++) {
            const pier_deploy_file *f = p->actions[i].file;
            if (p->actions[i].op == PIER_DEPLOY_UPLOAD && (!f->has_md5 || p->actions[i].undecided))
                need[n++] = (size_t)(f - m->files);
        }
        if (n == 0) {
            free(need);
            break;
        }
        assert_int_equal(pier_deploy_manifest_add_md5(m, need, n, 2), 0);
        free(need);
        pier_deploy_plan_free(p);
        p = NULL;
        assert_true(++rounds <= 1); /* one round of MD5s is enough */
    }
    if (p->count != want->count)
        print_error("%s: lazy plan has %zu actions, full %zu\n", name, p->count, want->count);
    assert_int_equal(p->count, want->count);
    pier_buf a = PIER_BUF_INIT, b = PIER_BUF_INIT;
    for (size_t i = 0; i < p->count; i++) {
        pier_buf_reset(&a);
        pier_buf_reset(&b);
        action_string(&a, &p->actions[i]);
        action_string(&b, &want->actions[i]);
        assert_string_equal(pier_buf_cstr(&a), pier_buf_cstr(&b));
        assert_false(p->actions[i].undecided);
        if (p->actions[i].op == PIER_DEPLOY_UPLOAD)
            assert_string_equal(p->actions[i].file->etag, want->actions[i].file->etag);
    }
    assert_int_equal(p->skip_count, want->skip_count);
    pier_buf_free(&a);
    pier_buf_free(&b);
    pier_deploy_plan_free(p);
    pier_deploy_manifest_free(m);
}

static void run_case(const char *file)
{
    char *path = data_path(file);
    json_t *c = NULL;
    assert_int_equal(pier_json_load_file(&c, path), 0);
    free(path);
    const char *name = file;
    const json_t *opts = json_object_get(c, "options");
    const json_t *expect = json_object_get(c, "expect");
    assert_non_null(expect);

    /* The local folder. */
    const char *t = getenv("TMPDIR");
    pier_buf tmpl = PIER_BUF_INIT;
    pier_buf_printf(&tmpl, "%s/pier-plan-XXXXXX", t && t[0] ? t : "/tmp");
    char *dir = pier_buf_detach(&tmpl);
    assert_non_null(mkdtemp(dir));
    json_t *local = unroll(json_object_get(c, "local"));
    size_t i;
    const json_t *e;
    json_array_foreach(local, i, e) write_local(dir, e);
    json_decref(local);
    pier_deploy_manifest_options mo = PIER_DEPLOY_MANIFEST_OPTIONS_INIT;
    mo.prefix = pier_json_str(c, "prefix", "");
    mo.multipart_threshold = (uint64_t)pier_json_int(opts, "multipart_threshold", 0);
    pier_deploy_manifest *m = NULL;
    int rc = pier_deploy_manifest_build(&m, dir, &mo);
    if (rc)
        print_error("%s: manifest: %s\n", name, pier_error_last());
    assert_int_equal(rc, 0);

    /* The remote side. */
    pier_deploy_listing *l =
        json_object_get(c, "remote") ? make_listing(json_object_get(c, "remote")) : NULL;
    pier_deploy_state *st = NULL;
    if (json_object_get(c, "state")) {
        json_t *sj = expand(json_object_get(c, "state"), -1);
        pier_buf text = PIER_BUF_INIT;
        assert_int_equal(pier_json_write(&text, sj, false), 0);
        rc = pier_deploy_state_parse(&st, text.ptr, text.len, "state");
        if (rc)
            print_error("%s: state: %s\n", name, pier_error_last());
        assert_int_equal(rc, 0);
        pier_buf_free(&text);
        json_decref(sj);
    }
    pier_deploy_rules *rules = NULL;
    const char *rules_text = pier_json_str(c, "rules", NULL);
    if (rules_text) {
        rules = pier_deploy_rules_new();
        rc = pier_deploy_rules_load_string(rules, "rules.yml", rules_text, strlen(rules_text));
        if (rc)
            print_error("%s: rules: %s\n", name, pier_error_last());
        assert_int_equal(rc, 0);
    }

    /* The plan. */
    pier_deploy_plan_options po = PIER_DEPLOY_PLAN_OPTIONS_INIT;
    po.deploy_id = pier_json_str(opts, "deploy_id", "test-deploy");
    po.time = 1700000000;
    po.no_delete = pier_json_bool(opts, "no_delete", false);
    po.allow_empty = pier_json_bool(opts, "allow_empty", false);
    po.max_deletes = pier_json_int(opts, "max_deletes", -1);
    po.origin_prefix = pier_json_str(opts, "origin_prefix", NULL);
    po.max_paths = (size_t)pier_json_int(opts, "max_paths", 0);
    po.reupload_unknown_metadata = pier_json_bool(opts, "reupload_unknown_metadata", false);
    const char *keep[16];
    const json_t *keep_j = json_object_get(opts, "keep");
    json_array_foreach(keep_j, i, e) keep[i] = json_string_value(e);
    po.keep = keep;
    po.keep_count = json_array_size(keep_j);

    pier_deploy_plan *p = NULL;
    rc = pier_deploy_plan_make(&p, m, l, st, rules, &po);
    const char *want_error = pier_json_str(expect, "error", NULL);
    if (want_error) {
        if (rc == 0 || !strstr(pier_error_last(), want_error))
            print_error("%s: expected error \"%s\", got rc %d \"%s\"\n", name, want_error, rc,
                        rc ? pier_error_last() : "");
        assert_int_not_equal(rc, 0);
        assert_non_null(strstr(pier_error_last(), want_error));
        assert_string_equal(code_name(rc), pier_json_str(expect, "code", "?"));
        assert_null(p);
    } else {
        if (rc)
            print_error("%s: %s\n", name, pier_error_last());
        assert_int_equal(rc, 0);
        check_invariants(name, p, m);
        check_lazy_same(name, dir, 0, &mo, l, st, rules, &po, p);
        check_lazy_same(name, dir, 1, &mo, l, st, rules, &po, p);
        const json_t *actions = json_object_get(expect, "actions");
        if (actions) {
            char **got = pier_calloc(p->count + 1, sizeof *got);
            pier_buf b = PIER_BUF_INIT;
            for (size_t k = 0; k < p->count; k++) {
                action_string(&b, &p->actions[k]);
                got[k] = pier_strdup(pier_buf_cstr(&b));
            }
            pier_buf_free(&b);
            check_strings(name, "actions", got, p->count, actions);
            for (size_t k = 0; k < p->count; k++)
                free(got[k]);
            free(got);
        }
        static const char *counts[] = {"skip",       "new",        "changed",      "metadata",
                                       "delete",     "kept",       "upload_bytes", "delete_bytes",
                                       "skip_bytes", "html_start", "warnings",     NULL};
        uint64_t values[] = {p->skip_count,   p->new_count,  p->changed_count, p->metadata_count,
                             p->delete_count, p->kept_count, p->upload_bytes,  p->delete_bytes,
                             p->skip_bytes,   p->html_start, p->warning_count};
        for (size_t k = 0; counts[k]; k++) {
            int64_t want = pier_json_int(expect, counts[k], -1);
            if (want >= 0 && (uint64_t)want != values[k])
                print_error("%s: %s: expected %lld, got %llu\n", name, counts[k], (long long)want,
                            (unsigned long long)values[k]);
            if (want >= 0)
                assert_int_equal(values[k], (uint64_t)want);
        }
        const json_t *paths = json_object_get(expect, "paths");
        if (paths)
            check_strings(name, "paths", p->paths, p->path_count, paths);
        const char *ref = pier_json_str(expect, "caller_reference", NULL);
        if (ref)
            assert_string_equal(p->caller_reference, ref);
        const json_t *sexp = json_object_get(expect, "state");
        if (sexp) {
            json_t *x = expand(sexp, -1);
            check_state_entries(name, p, x);
            json_decref(x);
        }
        const json_t *warn = json_object_get(expect, "warning_contains");
        json_array_foreach(warn, i, e)
        {
            bool found = false;
            for (size_t k = 0; k < p->warning_count; k++)
                found = found || strstr(p->warnings[k], json_string_value(e));
            if (!found)
                print_error("%s: no warning contains \"%s\"\n", name, json_string_value(e));
            assert_true(found);
        }
        const json_t *text = json_object_get(expect, "text");
        if (text) {
            pier_buf b = PIER_BUF_INIT;
            pier_buf want = PIER_BUF_INIT;
            json_array_foreach(text, i, e) pier_buf_printf(&want, "%s\n", json_string_value(e));
            assert_int_equal(pier_deploy_plan_to_text(&b, p), 0);
            if (strcmp(b.ptr, want.ptr) != 0)
                print_error("%s: text:\n%s\nexpected:\n%s\n", name, b.ptr, want.ptr);
            assert_string_equal(b.ptr, want.ptr);
            /* print_text writes the same to a stream. */
            char *mem = NULL;
            size_t mem_len = 0;
            FILE *f = open_memstream(&mem, &mem_len);
            assert_non_null(f);
            pier_deploy_plan_print_text(f, p);
            assert_int_equal(fclose(f), 0);
            assert_string_equal(mem, want.ptr);
            free(mem);
            pier_buf_free(&b);
            pier_buf_free(&want);
        }
    }
    pier_deploy_plan_free(p);
    pier_deploy_rules_free(rules);
    pier_deploy_state_free(st);
    pier_deploy_listing_free(l);
    pier_deploy_manifest_free(m);
    pier_file_remove_tree(dir);
    free(dir);
    json_decref(c);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_cases(void **state)
{
    (void)state;
    char *dir = data_path("plan");
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 256)
        if (pier_str_ends_with(de->d_name, ".json"))
            names[n++] = pier_strdup(de->d_name);
    closedir(d);
    free(dir);
    qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        char rel[300];
        snprintf(rel, sizeof rel, "plan/%s", names[i]);
        run_case(rel);
        free(names[i]);
    }
    assert_true(n >= 25);
}

/* ---- direct tests ------------------------------------------------------------------ */

static void test_path_encode(void **state)
{
    (void)state;
    static const char *cases[][2] = {
        {"index.html", "/index.html"},
        {"", "/"},
        {"a b/c d.html", "/a%20b/c%20d.html"},
        {"a+b.html", "/a+b.html"},
        {"100%.html", "/100%25.html"},
        {"tag#1.html", "/tag%231.html"},
        {"what?.html", "/what%3F.html"},
        {"caf\xc3\xa9.html", "/caf%C3%A9.html"},
        {"~user/*.txt", "/%7Euser/%2A.txt"},
        {"a\"<>[]{}|\\^`.txt", "/a%22%3C%3E%5B%5D%7B%7D%7C%5C%5E%60.txt"},
        {"keep-._!$&'()+,;=:@.txt", "/keep-._!$&'()+,;=:@.txt"},
        {"tab\there", "/tab%09here"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pier_buf b = PIER_BUF_INIT;
        assert_int_equal(pier_deploy_path_encode(&b, cases[i][0]), 0);
        assert_string_equal(b.ptr, cases[i][1]);
        pier_buf_free(&b);
    }
}

static char **strs(const char *const *in, size_t *n)
{
    *n = 0;
    while (in[*n])
        (*n)++;
    char **out = pier_calloc(*n + 1, sizeof *out);
    for (size_t i = 0; i < *n; i++)
        out[i] = pier_strdup(in[i]);
    return out;
}

static void check_collapse(const char *const *in, size_t max, const char *const *want)
{
    size_t n;
    char **paths = strs(in, &n);
    pier_deploy_paths_collapse(&paths, &n, max);
    size_t wn = 0;
    while (want[wn])
        wn++;
    bool same = n == wn;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(paths[i], want[i]) == 0;
    if (!same) {
        print_error("collapse to %zu gave:\n", max);
        for (size_t i = 0; i < n; i++)
            print_error("  %s\n", paths[i]);
    }
    assert_true(same);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

static void test_collapse(void **state)
{
    (void)state;
    /* Under the budget: sorted, deduplicated, covered paths dropped. */
    check_collapse((const char *const[]){"/b", "/a", "/b", "/docs/x", "/docs/*", "/docs/", NULL},
                   15, (const char *const[]){"/a", "/b", "/docs/*", NULL});
    /* The deepest directory that is enough on its own wins over its parent. */
    check_collapse((const char *const[]){"/a/x/1", "/a/x/2", "/a/x/3", "/a/x/4", "/a/y/1", "/a/y/2",
                                         "/z", NULL},
                   5, (const char *const[]){"/a/x/*", "/a/y/1", "/a/y/2", "/z", NULL});
    /* "/docs" folds into "/docs*" with "/docs/". */
    check_collapse((const char *const[]){"/docs", "/docs/", "/docs/a", "/docs/b", "/x", NULL}, 2,
                   (const char *const[]){"/docs*", "/x", NULL});
    /* No single directory is enough: the one that removes most goes first. */
    check_collapse(
        (const char *const[]){"/a/1", "/a/2", "/a/3", "/b/1", "/b/2", "/c/1", "/c/2", "/r", NULL},
        4, (const char *const[]){"/a/*", "/b/*", "/c/*", "/r", NULL});
    /* Equally deep and both enough: the one that removes more. */
    check_collapse((const char *const[]){"/x/1", "/x/2", "/y/1", "/y/2", "/y/3", NULL}, 4,
                   (const char *const[]){"/x/1", "/x/2", "/y/*", NULL});
    /* Too many top-level entries: the root wildcard. */
    check_collapse((const char *const[]){"/1", "/2", "/3", "/4", NULL}, 3,
                   (const char *const[]){"/*", NULL});
    check_collapse((const char *const[]){"/a/1", "/a/2", "/b/1", "/b/2", "/c", NULL}, 2,
                   (const char *const[]){"/*", NULL});
    /* max 0 is treated as 1. */
    check_collapse((const char *const[]){"/a/1", "/a/2", NULL}, 0,
                   (const char *const[]){"/a/*", NULL});
}

static void test_caller_reference(void **state)
{
    (void)state;
    char *a[] = {"/b", "/a"}, *b[] = {"/a", "/b"}, *c[] = {"/a"};
    char ra[PIER_DEPLOY_CALLER_REF_LEN], rb[PIER_DEPLOY_CALLER_REF_LEN],
        rc[PIER_DEPLOY_CALLER_REF_LEN], rd[PIER_DEPLOY_CALLER_REF_LEN];
    pier_deploy_caller_reference(ra, "run-1", a, 2);
    pier_deploy_caller_reference(rb, "run-1", b, 2);
    pier_deploy_caller_reference(rc, "run-1", c, 1);
    pier_deploy_caller_reference(rd, "run-2", b, 2);
    assert_string_equal(ra, rb); /* order does not matter */
    assert_string_not_equal(ra, rc);
    assert_string_not_equal(ra, rd);
    /* "pier-" + the first 32 hex digits of sha256("run-1\n/a\n/b"). */
    char hex[65];
    pier_sha256_hex(hex, "run-1\n/a\n/b", 11);
    assert_int_equal(strlen(ra), 37);
    assert_memory_equal(ra, "pier-", 5);
    assert_memory_equal(ra + 5, hex, 32);

    char id1[PIER_DEPLOY_ID_LEN], id2[PIER_DEPLOY_ID_LEN];
    pier_deploy_id_new(id1, 1440938160);
    pier_deploy_id_new(id2, 1440938160);
    assert_int_equal(strlen(id1), 25);
    assert_memory_equal(id1, "20150830T123600Z-", 17);
    assert_string_not_equal(id1, id2);
}

static void test_state_parse(void **state)
{
    (void)state;
    const char *good =
        "{\"version\":1,\"deploy_id\":\"d1\",\"time\":\"2024-08-30T12:36:00Z\",\"future\":[1],"
        "\"files\":{\"b.css\":{\"sha256\":\"" /* 64 hex */
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\",\"size\":6,"
        "\"etag\":\"\\\"ABC\\\"\",\"content_type\":\"text/css; charset=utf-8\","
        "\"cache_control\":\"no-cache\",\"headers\":{\"x-amz-meta-a\":\"1\"},\"new\":true},"
        "\"a.js\":{\"size\":0}}}";
    pier_deploy_state *s = NULL;
    assert_int_equal(pier_deploy_state_parse(&s, good, strlen(good), "s3://b/.pier/manifest.json"),
                     0);
    assert_string_equal(s->deploy_id, "d1");
    assert_int_equal(s->time, 1725021360);
    assert_int_equal(s->count, 2);
    assert_string_equal(s->files[0].key, "a.js"); /* sorted */
    assert_string_equal(s->files[0].sha256, "");
    assert_null(s->files[0].etag);
    assert_null(s->files[0].meta.content_type);
    const pier_deploy_state_file *f = pier_deploy_state_find(s, "b.css");
    assert_non_null(f);
    assert_string_equal(f->etag, "abc"); /* quotes removed, lower case */
    assert_int_equal(f->meta.header_count, 1);
    assert_null(pier_deploy_state_find(s, "c"));
    assert_int_equal(pier_deploy_state_set_etag(s, "a.js", "\"E1\""), 0);
    assert_string_equal(pier_deploy_state_find(s, "a.js")->etag, "e1");
    assert_int_equal(pier_deploy_state_set_etag(s, "zzz", "x"), PIER_ENOTFOUND);
    pier_deploy_state_free(s);

    static const struct {
        const char *text, *error;
    } bad[] = {
        {"[]", "expected an object"},
        {"{\"version\":2,\"files\":{}}", "unsupported deploy manifest version"},
        {"{\"files\":{}}", "unsupported deploy manifest version"},
        {"{\"version\":1}", "\"files\" must be an object"},
        {"{\"version\":1,\"files\":{\"a\":{\"size\":-1}}}", "size must be a whole number"},
        {"{\"version\":1,\"files\":{\"a\":{\"size\":1,\"sha256\":\"xyz\"}}}", "64 lower-case hex"},
        {"{\"version\":1,\"files\":{\"a\":{\"size\":1,\"etag\":5}}}", "etag must be a string"},
        {"{\"version\":1,\"files\":{\"a\":{\"size\":1,\"headers\":{\"Set-Cookie\":\"x\"}}}}",
         "not a header pier can set"},
        {"{\"version\":1,\"files\":{\"a\":3}}", "must be an object"},
        {"{\"version\":1,\"time\":\"yesterday\",\"files\":{}}", "bad \"time\""},
        {"{\"version\":1,", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        s = (pier_deploy_state *)1;
        int rc = pier_deploy_state_parse(&s, bad[i].text, strlen(bad[i].text), "m.json");
        assert_int_equal(rc, PIER_EINVALID);
        assert_null(s);
        if (!strstr(pier_error_last(), bad[i].error))
            print_error("%s: %s\n", bad[i].text, pier_error_last());
        assert_non_null(strstr(pier_error_last(), bad[i].error));
        assert_true(pier_str_starts_with(pier_error_last(), "m.json"));
    }
    char *key = pier_deploy_state_key("site/");
    assert_string_equal(key, "site/.pier/manifest.json");
    free(key);
}

static void test_listing(void **state)
{
    (void)state;
    pier_deploy_listing *l = pier_deploy_listing_new();
    pier_deploy_listing_add(l, "b", 1, "\"9B2CF535F27731C974343645A3985328\"", 5);
    pier_deploy_listing_add(l, "a", 2, NULL, 0);
    pier_deploy_listing_add(l, "c", 3, "W/\"x\"", 0);
    assert_int_equal(l->count, 3);
    assert_string_equal(l->objects[0].etag, "9b2cf535f27731c974343645a3985328");
    assert_string_equal(l->objects[1].etag, "");
    assert_string_equal(l->objects[2].etag, "x");
    assert_int_equal(l->objects[0].last_modified, 5);
    pier_deploy_listing_free(l);
    pier_deploy_listing_free(NULL);
    pier_deploy_state_free(NULL);
    pier_deploy_plan_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),       cmocka_unit_test(test_path_encode),
        cmocka_unit_test(test_collapse),    cmocka_unit_test(test_caller_reference),
        cmocka_unit_test(test_state_parse), cmocka_unit_test(test_listing),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
