/*
 * cfapi: see cfapi.h. One request: the body (4 MiB at most) is read whole,
 * its SHA-256 is the signed payload hash, SigV4 is verified, then the path
 * is split into (distribution, invalidation) and dispatched. Answers are
 * built into a pier_buf with the XML escaped by aws/xml.h.
 *
 * State: per distribution, its invalidations oldest first, under one mutex
 * (held across the purge and the save of a create, so two creates with the
 * same CallerReference cannot both make one). A save rewrites the
 * distribution's JSON file atomically.
 */
#include "stack/cfapi.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/xml.h"
#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "stack/credsvc.h"

#define CF_NS        "http://cloudfront.amazonaws.com/doc/2020-05-31/"
#define XML_DECL     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
#define BODY_MAX     ((size_t)4 << 20)
#define MAX_PATHS    3000
#define PATH_LEN_MAX 4096
#define REF_LEN_MAX  256
#define KEEP_MAX     10000
#define ACCOUNT      "000000000000"

typedef struct {
    char id[16];        /* "I" + 13 characters */
    char *ref;          /* CallerReference */
    int64_t created_ms; /* CreateTime */
    bool completed;     /* Status */
    char **paths;       /* the batch */
    size_t path_count;  /* its size */
} inval;

typedef struct {
    char *id;     /* distribution id */
    inval *items; /* oldest first */
    size_t count; /* used */
} dist;

struct pier_cfapi {
    pthread_mutex_t lock;        /* guards dists */
    pier_edge *edge;             /* borrowed */
    char *dir;                   /* DIR/cloudfront, or NULL */
    pier_s3api_lookup_fn lookup; /* credentials */
    void *lookup_ctx;            /* its context */
    dist *dists;                 /* known distributions */
    size_t dist_count;           /* their number */
    int64_t started;             /* LastModifiedTime of every distribution */
};

static void inval_clear(inval *v)
{
    free(v->ref);
    for (size_t i = 0; i < v->path_count; i++)
        free(v->paths[i]);
    free(v->paths);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void time_iso_ms(char *out, size_t size, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03dZ", base, (int)(ms % 1000));
}

/* The distribution's record (created on first use). Caller holds the lock. */
static dist *dist_get(pier_cfapi *a, const char *id)
{
    for (size_t i = 0; i < a->dist_count; i++)
        if (strcmp(a->dists[i].id, id) == 0)
            return &a->dists[i];
    a->dists = pier_realloc(a->dists, (a->dist_count + 1) * sizeof *a->dists);
    dist *d = &a->dists[a->dist_count++];
    memset(d, 0, sizeof *d);
    d->id = pier_strdup(id);
    return d;
}

static void push_inval(dist *d, inval *v)
{
    if (d->count == KEEP_MAX) {
        inval_clear(&d->items[0]);
        memmove(d->items, d->items + 1, (d->count - 1) * sizeof *d->items);
        d->count--;
    }
    d->items = pier_realloc(d->items, (d->count + 1) * sizeof *d->items);
    d->items[d->count++] = *v;
    memset(v, 0, sizeof *v);
}

/* ---- persistence ---- */

static char *dist_file(const pier_cfapi *a, const char *id)
{
    char name[64];
    snprintf(name, sizeof name, "%s.json", id);
    return pier_path_join(a->dir, name);
}

static int save(pier_cfapi *a, const dist *d)
{
    if (!a->dir)
        return 0;
    json_t *list = json_array();
    for (size_t i = 0; i < d->count; i++) {
        const inval *v = &d->items[i];
        json_t *paths = json_array();
        for (size_t j = 0; j < v->path_count; j++)
            json_array_append_new(paths, json_string(v->paths[j]));
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", v->id, "caller_reference", v->ref,
                            "create_time_ms", (json_int_t)v->created_ms, "status",
                            v->completed ? "Completed" : "InProgress", "paths", paths));
    }
    json_t *doc = json_pack("{s:s, s:o}", "distribution", d->id, "invalidations", list);
    pier_buf b = PIER_BUF_INIT;
    pier_json_write(&b, doc, false);
    pier_buf_putc(&b, '\n');
    json_decref(doc);
    char *path = dist_file(a, d->id);
    int rc = pier_file_mkdirs(a->dir, 0700);
    if (rc == 0)
        rc = pier_file_write_atomic(path, b.ptr, b.len, 0600);
    free(path);
    pier_buf_free(&b);
    return rc;
}

static int load(pier_cfapi *a, const char *id)
{
    char *path = dist_file(a, id);
    json_t *doc = NULL;
    int rc = 0;
    if (!pier_file_exists(path))
        goto done;
    if ((rc = pier_json_load_file(&doc, path)))
        goto done;
    json_t *list = json_object_get(doc, "invalidations");
    if (!json_is_array(list)) {
        rc = pier_error_set(PIER_EINVALID, "%s: no 'invalidations' list", path);
        goto done;
    }
    dist *d = dist_get(a, id);
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *x = json_array_get(list, i);
        const char *vid = pier_json_str(x, "id", NULL),
                   *ref = pier_json_str(x, "caller_reference", NULL);
        json_t *paths = json_object_get(x, "paths");
        if (!vid || strlen(vid) >= sizeof((inval *)0)->id || !ref || !json_is_array(paths)) {
            rc = pier_error_set(PIER_EINVALID, "%s: invalidation %zu is incomplete", path, i);
            goto done;
        }
        inval v = {0};
        snprintf(v.id, sizeof v.id, "%s", vid);
        v.ref = pier_strdup(ref);
        v.created_ms = pier_json_int(x, "create_time_ms", 0);
        v.completed = strcmp(pier_json_str(x, "status", ""), "InProgress") != 0;
        v.paths = pier_calloc(json_array_size(paths) + 1, sizeof *v.paths);
        for (size_t j = 0; j < json_array_size(paths); j++) {
            const char *p = json_string_value(json_array_get(paths, j));
            if (p)
                v.paths[v.path_count++] = pier_strdup(p);
        }
        push_inval(d, &v);
    }
done:
    json_decref(doc);
    free(path);
    return rc;
}

int pier_cfapi_new(pier_cfapi **out, const pier_cfapi_options *o)
{
    *out = NULL;
    pier_cfapi *a = pier_calloc(1, sizeof *a);
    pthread_mutex_init(&a->lock, NULL);
    a->edge = o->edge;
    a->dir = o->data_dir ? pier_path_join(o->data_dir, "cloudfront") : NULL;
    a->lookup = o->lookup;
    a->lookup_ctx = o->lookup_ctx;
    a->started = now_ms();
    int rc = 0;
    for (size_t i = 0; a->dir && i < pier_edge_site_count(a->edge) && !rc; i++)
        rc = load(a, pier_edge_site_at(a->edge, i)->id);
    if (rc) {
        pier_cfapi_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void pier_cfapi_free(pier_cfapi *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->dist_count; i++) {
        for (size_t j = 0; j < a->dists[i].count; j++)
            inval_clear(&a->dists[i].items[j]);
        free(a->dists[i].items);
        free(a->dists[i].id);
    }
    free(a->dists);
    free(a->dir);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* ---- CreateInvalidation ---- */

static int check_paths(const char *const *paths, size_t n, const char *ref)
{
    if (!ref || !ref[0] || strlen(ref) > REF_LEN_MAX)
        return pier_error_set(PIER_EINVALID,
                              "InvalidArgument: CallerReference must be 1 to %d "
                              "characters",
                              REF_LEN_MAX);
    if (n == 0)
        return pier_error_set(PIER_EINVALID, "InvalidArgument: the batch has no path");
    if (n > MAX_PATHS)
        return pier_error_set(PIER_ETOOBIG, "BatchTooLarge: %zu paths (at most %d per batch)", n,
                              MAX_PATHS);
    for (size_t i = 0; i < n; i++) {
        const char *p = paths[i];
        size_t len = strlen(p);
        if (p[0] != '/' || len > PATH_LEN_MAX)
            return pier_error_set(PIER_EINVALID,
                                  "InvalidArgument: invalidation path '%s' must start with '/'", p);
        const char *star = strchr(p, '*');
        if (star && star != p + len - 1)
            return pier_error_set(PIER_EINVALID,
                                  "InvalidArgument: invalidation path '%s': '*' may only be the "
                                  "last character",
                                  p);
        for (const char *c = p; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                return pier_error_set(PIER_EINVALID,
                                      "InvalidArgument: invalidation path %zu has a control "
                                      "character",
                                      i + 1);
    }
    return 0;
}

static bool same_paths(const inval *v, const char *const *paths, size_t n)
{
    if (v->path_count != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v->paths[i], paths[i]) != 0)
            return false;
    return true;
}

int pier_cfapi_invalidate(pier_cfapi *a, const char *dist_id, const char *const *paths, size_t n,
                          const char *ref, char inv_id[16], bool *existing)
{
    *existing = false;
    inv_id[0] = '\0';
    if (!pier_edge_find_site(a->edge, dist_id))
        return pier_error_set(PIER_ENOTFOUND,
                              "NoSuchDistribution: the specified distribution does not exist: %s",
                              dist_id);
    int rc = check_paths(paths, n, ref);
    if (rc)
        return rc;
    pthread_mutex_lock(&a->lock);
    dist *d = dist_get(a, dist_id);
    for (size_t i = 0; i < d->count; i++) {
        if (strcmp(d->items[i].ref, ref) != 0)
            continue;
        if (same_paths(&d->items[i], paths, n)) {
            snprintf(inv_id, 16, "%s", d->items[i].id);
            *existing = true;
        } else {
            rc = pier_error_set(PIER_ECONFLICT,
                                "InvalidationBatchAlreadyExists: CallerReference '%s' was used "
                                "by invalidation %s with other paths",
                                ref, d->items[i].id);
        }
        pthread_mutex_unlock(&a->lock);
        return rc;
    }
    inval v = {0};
    v.id[0] = 'I';
    pier_random_token(v.id + 1, 13, true);
    v.ref = pier_strdup(ref);
    v.created_ms = now_ms();
    v.paths = pier_calloc(n + 1, sizeof *v.paths);
    size_t purged = 0;
    for (size_t i = 0; i < n; i++) {
        v.paths[i] = pier_strdup(paths[i]);
        purged += pier_edge_invalidate(a->edge, dist_id, paths[i]);
    }
    v.path_count = n;
    v.completed = true; /* every matching entry is gone */
    snprintf(inv_id, 16, "%s", v.id);
    push_inval(d, &v);
    rc = save(a, d);
    pthread_mutex_unlock(&a->lock);
    PIER_INFO("cloudfront: invalidation %s on %s: %zu path(s), %zu cached response(s) purged",
              inv_id, dist_id, n, purged);
    return rc;
}

/* ---- HTTP ---- */

typedef struct {
    pier_cfapi *api;     /* the API */
    pier_buf body;       /* request body */
    bool too_big;        /* past BODY_MAX */
    char request_id[37]; /* x-amz-request-id */
} cfreq;

static void xml_el(pier_buf *b, const char *name, const char *text)
{
    pier_buf_printf(b, "<%s>", name);
    if (pier_xml_escape(b, text, strlen(text)) != 0)
        pier_buf_puts(b, "?");
    pier_buf_printf(b, "</%s>", name);
}

static int send_xml(pier_server_req *r, cfreq *c, unsigned status, pier_buf *b)
{
    pier_server_resp_header(r, "Content-Type", "text/xml");
    pier_server_resp_header(r, "x-amz-request-id", c->request_id);
    return pier_server_respond_mem(r, status, b->ptr, b->len);
}

static int send_error(pier_server_req *r, cfreq *c, unsigned status, const char *code,
                      const char *msg)
{
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<ErrorResponse xmlns=\"" CF_NS "\"><Error>");
    xml_el(&b, "Type", status >= 500 ? "Receiver" : "Sender");
    xml_el(&b, "Code", code);
    xml_el(&b, "Message", msg);
    pier_buf_puts(&b, "</Error>");
    xml_el(&b, "RequestId", c->request_id);
    pier_buf_puts(&b, "</ErrorResponse>");
    int rc = send_xml(r, c, status, &b);
    pier_buf_free(&b);
    return rc;
}

/* Answers the error whose message starts "Code: ..." (the convention of
 * pier_cfapi_invalidate), with the status the code calls for. */
static int send_coded_error(pier_server_req *r, cfreq *c, int rc)
{
    static const struct {
        const char *code;
        unsigned status;
    } table[] = {
        {"NoSuchDistribution", 404},     {"InvalidationBatchAlreadyExists", 409},
        {"BatchTooLarge", 413},          {"InvalidArgument", 400},
        {"InconsistentQuantities", 400},
    };
    const char *msg = pier_error_last();
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        size_t n = strlen(table[i].code);
        if (strncmp(msg, table[i].code, n) == 0 && msg[n] == ':')
            return send_error(r, c, table[i].status, table[i].code, msg + n + 2);
    }
    (void)rc;
    return send_error(r, c, 500, "InternalError", msg);
}

static void invalidation_xml(pier_buf *b, const inval *v, bool in_progress)
{
    char t[40];
    time_iso_ms(t, sizeof t, v->created_ms);
    pier_buf_puts(b, XML_DECL "<Invalidation xmlns=\"" CF_NS "\">");
    xml_el(b, "Id", v->id);
    xml_el(b, "Status", in_progress || !v->completed ? "InProgress" : "Completed");
    xml_el(b, "CreateTime", t);
    pier_buf_printf(b, "<InvalidationBatch><Paths><Quantity>%zu</Quantity><Items>", v->path_count);
    for (size_t i = 0; i < v->path_count; i++)
        xml_el(b, "Path", v->paths[i]);
    pier_buf_puts(b, "</Items></Paths>");
    xml_el(b, "CallerReference", v->ref);
    pier_buf_puts(b, "</InvalidationBatch></Invalidation>");
}

/* Finds an invalidation by id and writes its XML (lock held inside). */
static bool find_xml(pier_cfapi *a, const char *dist_id, const char *inv_id, pier_buf *b,
                     bool in_progress)
{
    bool found = false;
    pthread_mutex_lock(&a->lock);
    dist *d = dist_get(a, dist_id);
    for (size_t i = 0; i < d->count && !found; i++)
        if (strcmp(d->items[i].id, inv_id) == 0) {
            invalidation_xml(b, &d->items[i], in_progress);
            found = true;
        }
    pthread_mutex_unlock(&a->lock);
    return found;
}

static int create_invalidation(pier_server_req *r, cfreq *c, const char *dist_id)
{
    if (c->body.len == 0)
        return send_error(r, c, 400, "MissingBody",
                          "This operation requires a body (an InvalidationBatch).");
    pier_xml_doc *doc = NULL;
    if (pier_xml_doc_parse(&doc, c->body.ptr, c->body.len, "InvalidationBatch") != 0)
        return send_error(r, c, 400, "MalformedInput", pier_error_last());
    int rc = 0;
    const char **paths = NULL;
    size_t n = 0;
    if (strcmp(pier_xml_doc_root(doc), "InvalidationBatch") != 0) {
        rc = send_error(r, c, 400, "MalformedInput", "the root element must be InvalidationBatch");
        goto done;
    }
    const char *ref = pier_xml_doc_get(doc, "InvalidationBatch/CallerReference");
    const char *qty = pier_xml_doc_get(doc, "InvalidationBatch/Paths/Quantity");
    uint64_t q = 0;
    if (!qty || pier_parse_u64(qty, &q) != 0) {
        rc = send_error(r, c, 400, "MalformedInput", "Paths/Quantity is missing or not a number");
        goto done;
    }
    paths = pier_calloc(pier_xml_doc_count(doc) + 1, sizeof *paths);
    for (size_t i = 0; i < pier_xml_doc_count(doc); i++) {
        const char *p, *t;
        pier_xml_doc_at(doc, i, &p, &t);
        if (strcmp(p, "InvalidationBatch/Paths/Items/Path") == 0)
            paths[n++] = t;
    }
    if (q != n) {
        rc = send_error(r, c, 400, "InconsistentQuantities",
                        "The value of Quantity and the size of Items don't match.");
        goto done;
    }
    char id[16];
    bool existing = false;
    if (pier_cfapi_invalidate(c->api, dist_id, paths, n, ref ? ref : "", id, &existing) != 0) {
        rc = send_coded_error(r, c, -1);
        goto done;
    }
    pier_buf b = PIER_BUF_INIT;
    find_xml(c->api, dist_id, id, &b, !existing);
    const char *host = pier_server_req_header(r, "Host");
    char loc[512];
    snprintf(loc, sizeof loc, "http://%s" PIER_CFAPI_PREFIX "distribution/%s/invalidation/%s",
             host ? host : "localhost", dist_id, id);
    pier_server_resp_header(r, "Location", loc);
    rc = send_xml(r, c, 201, &b);
    pier_buf_free(&b);
done:
    free(paths);
    pier_xml_doc_free(doc);
    return rc;
}

/* Reads query parameter name (decoded) into out; false when absent. */
static bool query_param(pier_server_req *r, const char *name, char *out, size_t size)
{
    pier_slice q = pier_server_req_raw_query(r);
    size_t nlen = strlen(name);
    const char *p = q.ptr, *end = q.ptr + q.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            pier_buf v = PIER_BUF_INIT;
            if (eq)
                pier_uri_decode(&v, eq + 1, (size_t)(stop - eq - 1), true);
            snprintf(out, size, "%s", pier_buf_cstr(&v));
            pier_buf_free(&v);
            return true;
        }
        p = stop + 1;
    }
    return false;
}

static int list_invalidations(pier_server_req *r, cfreq *c, const char *dist_id)
{
    char marker[64] = "", max_s[32] = "";
    query_param(r, "Marker", marker, sizeof marker);
    uint64_t max = 100;
    if (query_param(r, "MaxItems", max_s, sizeof max_s) && max_s[0] &&
        (pier_parse_u64(max_s, &max) != 0 || max == 0 || max > 1000))
        return send_error(r, c, 400, "InvalidArgument", "MaxItems must be from 1 to 1000");
    pier_buf b = PIER_BUF_INIT;
    pier_buf items = PIER_BUF_INIT;
    size_t count = 0;
    bool truncated = false;
    char next[16] = "";
    pthread_mutex_lock(&c->api->lock);
    dist *d = dist_get(c->api, dist_id);
    size_t i = d->count;
    if (marker[0]) {
        /* start after the marker (newest first) */
        while (i > 0 && strcmp(d->items[i - 1].id, marker) != 0)
            i--;
        if (i > 0)
            i--;
    }
    for (; i > 0; i--) {
        const inval *v = &d->items[i - 1];
        if (count == max) {
            truncated = true;
            break;
        }
        char t[40];
        time_iso_ms(t, sizeof t, v->created_ms);
        pier_buf_puts(&items, "<InvalidationSummary>");
        xml_el(&items, "Id", v->id);
        xml_el(&items, "CreateTime", t);
        xml_el(&items, "Status", v->completed ? "Completed" : "InProgress");
        pier_buf_puts(&items, "</InvalidationSummary>");
        snprintf(next, sizeof next, "%s", v->id);
        count++;
    }
    pthread_mutex_unlock(&c->api->lock);
    pier_buf_puts(&b, XML_DECL "<InvalidationList xmlns=\"" CF_NS "\">");
    xml_el(&b, "Marker", marker);
    if (truncated)
        xml_el(&b, "NextMarker", next);
    pier_buf_printf(&b, "<MaxItems>%llu</MaxItems><IsTruncated>%s</IsTruncated>",
                    (unsigned long long)max, truncated ? "true" : "false");
    pier_buf_printf(&b, "<Quantity>%zu</Quantity>", count);
    if (count) {
        pier_buf_puts(&b, "<Items>");
        pier_buf_put_slice(&b, pier_buf_slice(&items));
        pier_buf_puts(&b, "</Items>");
    }
    pier_buf_puts(&b, "</InvalidationList>");
    int rc = send_xml(r, c, 200, &b);
    pier_buf_free(&b);
    pier_buf_free(&items);
    return rc;
}

/* The shared part of Distribution and DistributionSummary. */
static void distribution_fields(pier_buf *b, const pier_cfapi *a, const pier_edge_site *s,
                                bool summary)
{
    char t[40];
    time_iso_ms(t, sizeof t, a->started);
    const char *domain = "localhost";
    for (size_t i = 0; i < s->host_count; i++)
        if (s->hosts[i][0] != '*') {
            domain = s->hosts[i];
            break;
        }
    xml_el(b, "Id", s->id);
    pier_buf_printf(b, "<ARN>arn:aws:cloudfront::" ACCOUNT ":distribution/%s</ARN>", s->id);
    pier_buf_puts(b, "<Status>Deployed</Status>");
    xml_el(b, "LastModifiedTime", t);
    if (!summary)
        pier_buf_puts(b, "<InProgressInvalidationBatches>0</InProgressInvalidationBatches>");
    xml_el(b, "DomainName", domain);
    if (!summary) {
        pier_buf_puts(b, "<DistributionConfig>");
        pier_buf_printf(b, "<CallerReference>pier-%s</CallerReference>", s->id);
    }
    pier_buf_printf(b, "<Aliases><Quantity>%zu</Quantity>", s->host_count);
    if (s->host_count) {
        pier_buf_puts(b, "<Items>");
        for (size_t i = 0; i < s->host_count; i++)
            xml_el(b, "CNAME", s->hosts[i]);
        pier_buf_puts(b, "</Items>");
    }
    pier_buf_puts(b, "</Aliases>");
    if (!summary)
        xml_el(b, "DefaultRootObject", s->index ? s->index : "");
    pier_buf_puts(b, "<Origins><Quantity>1</Quantity><Items><Origin>");
    xml_el(b, "Id", s->bucket);
    pier_buf_printf(b, "<DomainName>%s.s3.localhost</DomainName>", s->bucket);
    pier_buf_puts(b, "<OriginPath>");
    if (s->prefix[0]) {
        pier_buf_putc(b, '/');
        pier_xml_escape(b, s->prefix, strlen(s->prefix) - 1);
    }
    pier_buf_puts(b, "</OriginPath><S3OriginConfig><OriginAccessIdentity></OriginAccessIdentity>"
                     "</S3OriginConfig></Origin></Items></Origins>");
    pier_buf_puts(b, "<DefaultCacheBehavior>");
    xml_el(b, "TargetOriginId", s->bucket);
    pier_buf_printf(b,
                    "<ViewerProtocolPolicy>allow-all</ViewerProtocolPolicy><MinTTL>%lld</MinTTL>"
                    "<DefaultTTL>%lld</DefaultTTL><MaxTTL>%lld</MaxTTL></DefaultCacheBehavior>",
                    (long long)s->ttl.min_ttl, (long long)s->ttl.default_ttl,
                    (long long)s->ttl.max_ttl);
    pier_buf_puts(b, "<Comment>pier edge</Comment><Enabled>true</Enabled>");
    if (!summary)
        pier_buf_puts(b, "</DistributionConfig>");
}

static int get_distribution(pier_server_req *r, cfreq *c, const pier_edge_site *s)
{
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<Distribution xmlns=\"" CF_NS "\">");
    distribution_fields(&b, c->api, s, false);
    pier_buf_puts(&b, "</Distribution>");
    char etag[40];
    snprintf(etag, sizeof etag, "E%s", s->id + 1);
    pier_server_resp_header(r, "ETag", etag);
    int rc = send_xml(r, c, 200, &b);
    pier_buf_free(&b);
    return rc;
}

static int list_distributions(pier_server_req *r, cfreq *c)
{
    pier_edge *e = c->api->edge;
    size_t n = pier_edge_site_count(e);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_puts(&b, XML_DECL "<DistributionList xmlns=\"" CF_NS "\">");
    pier_buf_printf(&b,
                    "<Marker></Marker><MaxItems>%zu</MaxItems><IsTruncated>false</IsTruncated>"
                    "<Quantity>%zu</Quantity>",
                    n > 100 ? n : 100, n);
    if (n) {
        pier_buf_puts(&b, "<Items>");
        for (size_t i = 0; i < n; i++) {
            pier_buf_puts(&b, "<DistributionSummary>");
            distribution_fields(&b, c->api, pier_edge_site_at(e, i), true);
            pier_buf_puts(&b, "</DistributionSummary>");
        }
        pier_buf_puts(&b, "</Items>");
    }
    pier_buf_puts(&b, "</DistributionList>");
    int rc = send_xml(r, c, 200, &b);
    pier_buf_free(&b);
    return rc;
}

/* Splits "distribution/ID[/invalidation[/INV]]" (after the version). */
typedef struct {
    char dist[32]; /* "" for the collection */
    bool inval;    /* /invalidation follows */
    char inv[32];  /* "" for the collection */
    bool ok;       /* the shape is one we serve */
} cf_path;

static cf_path split_path(pier_slice path)
{
    cf_path p = {0};
    size_t pl = strlen(PIER_CFAPI_PREFIX);
    char rest[128];
    if (path.len < pl || path.len - pl >= sizeof rest)
        return p;
    memcpy(rest, path.ptr + pl, path.len - pl);
    rest[path.len - pl] = '\0';
    char *save = NULL;
    char *seg[5] = {0};
    size_t n = 0;
    for (char *t = strtok_r(rest, "/", &save); t && n < 5; t = strtok_r(NULL, "/", &save))
        seg[n++] = t;
    if (n == 0 || n > 4 || strcmp(seg[0], "distribution") != 0)
        return p;
    if (n >= 2)
        snprintf(p.dist, sizeof p.dist, "%s", seg[1]);
    if (n >= 3) {
        if (strcmp(seg[2], "invalidation") != 0)
            return p;
        p.inval = true;
    }
    if (n == 4)
        snprintf(p.inv, sizeof p.inv, "%s", seg[3]);
    p.ok = true;
    return p;
}

static const char *action_for(const cf_path *p, const char *method)
{
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (!p->dist[0])
        return get ? "cloudfront:ListDistributions" : NULL;
    if (!p->inval)
        return get ? "cloudfront:GetDistribution" : NULL;
    if (p->inv[0])
        return get ? "cloudfront:GetInvalidation" : NULL;
    return post ? "cloudfront:CreateInvalidation" : get ? "cloudfront:ListInvalidations" : NULL;
}

static void cf_end(pier_server_req *r, void *ctx)
{
    cfreq *c = ctx;
    pier_cfapi *a = c->api;
    if (c->too_big) {
        send_error(r, c, 413, "BatchTooLarge", "the request body is over 4 MiB");
        return;
    }
    char sha[65];
    pier_sha256_hex(sha, c->body.ptr ? c->body.ptr : "", c->body.len);
    pier_credsvc_auth auth;
    if (pier_credsvc_authenticate(r, "cloudfront", sha, a->lookup, a->lookup_ctx, &auth) != 0) {
        send_error(r, c, auth.http, auth.code, auth.message);
        return;
    }
    const char *method = pier_server_req_method(r);
    cf_path p = split_path(pier_server_req_raw_path(r));
    const char *action = p.ok ? action_for(&p, method) : NULL;
    if (!action) {
        send_error(r, c, 400, "InvalidArgument",
                   "pier's CloudFront API serves CreateInvalidation, GetInvalidation, "
                   "ListInvalidations, GetDistribution and ListDistributions");
        return;
    }
    if (auth.authorize && auth.authorize(auth.authorize_ctx, action, p.dist, "") != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "User is not authorized to perform: %s on resource: %s", action,
                 p.dist[0] ? p.dist : "*");
        send_error(r, c, 403, "AccessDenied", msg);
        return;
    }
    if (!p.dist[0]) {
        list_distributions(r, c);
        return;
    }
    const pier_edge_site *site = pier_edge_find_site(a->edge, p.dist);
    if (!site) {
        send_error(r, c, 404, "NoSuchDistribution", "The specified distribution does not exist.");
        return;
    }
    if (!p.inval) {
        get_distribution(r, c, site);
    } else if (strcmp(method, "POST") == 0) {
        create_invalidation(r, c, p.dist);
    } else if (!p.inv[0]) {
        list_invalidations(r, c, p.dist);
    } else {
        pier_buf b = PIER_BUF_INIT;
        if (find_xml(a, p.dist, p.inv, &b, false))
            send_xml(r, c, 200, &b);
        else
            send_error(r, c, 404, "NoSuchInvalidation",
                       "The specified invalidation does not exist.");
        pier_buf_free(&b);
    }
}

static int cf_body(pier_server_req *r, void *ctx, const char *data, size_t n)
{
    cfreq *c = ctx;
    if (pier_buf_put(&c->body, data, n) != 0) {
        c->too_big = true;
        return -1;
    }
    return 0;
}

static void cf_done(pier_server_req *r, void *ctx)
{
    cfreq *c = ctx;
    pier_buf_free(&c->body);
}

typedef struct {
    pier_handler base; /* must be first */
    pier_cfapi *api;   /* borrowed */
} cf_handler;

static int cf_on_req(pier_handler *self, pier_server_req *r)
{
    pier_cfapi *a = ((cf_handler *)self)->api;
    cfreq *c = pier_server_req_alloc(r, sizeof *c);
    memset(c, 0, sizeof *c);
    c->api = a;
    pier_buf_init(&c->body, BODY_MAX);
    pier_random_token(c->request_id, 36, true);
    if (pier_server_req_content_length(r) > (int64_t)BODY_MAX)
        return send_error(r, c, 413, "BatchTooLarge", "the request body is over 4 MiB");
    pier_server_req_on_done(r, cf_done, c);
    pier_server_req_read_body(r, cf_body, cf_end, c);
    return 0;
}

static void cf_dispose(pier_handler *self)
{
    free(self);
}

pier_handler *pier_cfapi_handler(pier_cfapi *a)
{
    cf_handler *h = pier_calloc(1, sizeof *h);
    h->base.on_req = cf_on_req;
    h->base.dispose = cf_dispose;
    h->api = a;
    return &h->base;
}
