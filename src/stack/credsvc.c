/*
 * credsvc: see credsvc.h. Grants and sessions are two singly linked lists
 * under one mutex; lookups scan the sessions (a few per running build, so a
 * list is enough). A session points at its grant, and the authorization
 * callback's context is the session, so both must outlive any request that
 * uses them: expired grants and sessions are only freed a day after they
 * expire (lazily, when a grant is made), and revocation marks rather than
 * frees.
 */
#include "stack/credsvc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "stack/edge.h"
#include "stack/store.h"

#define DEFAULT_TTL       3600
#define KEEP_AFTER_EXPIRY 86400
#define GRANT_BODY_MAX    ((size_t)64 << 10)
#define ROLE_ACCOUNT      "000000000000"

typedef struct grant {
    char id[33];             /* in the URI */
    char token[65];          /* the bearer token */
    char *name;              /* label */
    char **buckets;          /* "bucket" or "bucket/prefix" */
    size_t bucket_count;     /* their number */
    char **dists;            /* distribution ids */
    size_t dist_count;       /* their number */
    char **actions;          /* action patterns */
    size_t action_count;     /* their number */
    int64_t expires;         /* seconds */
    bool revoked;            /* ended early */
    struct session *current; /* the session fetches hand out, or NULL */
    struct grant *next;      /* list */
} grant;

typedef struct session {
    pier_credsvc_session cred; /* the credential */
    int64_t issued;            /* when minted */
    grant *g;                  /* its scope */
    struct session *next;      /* list */
} session;

struct pier_credsvc {
    pthread_mutex_t lock;        /* guards the lists */
    grant *grants;               /* newest first */
    session *sessions;           /* newest first */
    char *base_url;              /* for URIs */
    int64_t session_ttl;         /* seconds */
    pier_s3api_lookup_fn lookup; /* administrators */
    void *lookup_ctx;            /* its context */
    int64_t (*clock)(void *ctx); /* seconds */
    void *clock_ctx;             /* its context */
};

static int64_t system_clock(void *ctx)
{
    return (int64_t)time(NULL);
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void grant_destroy(grant *g)
{
    free(g->name);
    free_strings(g->buckets, g->bucket_count);
    free_strings(g->dists, g->dist_count);
    free_strings(g->actions, g->action_count);
    explicit_bzero(g->token, sizeof g->token);
    free(g);
}

int pier_credsvc_new(pier_credsvc **out, const pier_credsvc_options *o)
{
    pier_credsvc *s = pier_calloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->base_url = pier_strdup(o && o->base_url ? o->base_url : "http://127.0.0.1:9000");
    s->session_ttl = o && o->session_ttl_s > 0 ? o->session_ttl_s : DEFAULT_TTL;
    s->lookup = o ? o->lookup : NULL;
    s->lookup_ctx = o ? o->lookup_ctx : NULL;
    s->clock = o && o->clock ? o->clock : system_clock;
    s->clock_ctx = o ? o->clock_ctx : NULL;
    *out = s;
    return 0;
}

void pier_credsvc_free(pier_credsvc *s)
{
    if (!s)
        return;
    while (s->sessions) {
        session *n = s->sessions->next;
        explicit_bzero(&s->sessions->cred, sizeof s->sessions->cred);
        free(s->sessions);
        s->sessions = n;
    }
    while (s->grants) {
        grant *n = s->grants->next;
        grant_destroy(s->grants);
        s->grants = n;
    }
    free(s->base_url);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void pier_credsvc_set_base_url(pier_credsvc *s, const char *url)
{
    pthread_mutex_lock(&s->lock);
    free(s->base_url);
    s->base_url = pier_strdup(url);
    pthread_mutex_unlock(&s->lock);
}

/* ---- validation ---- */

static bool name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 64)
        return false;
    for (const char *p = n; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("+=,.@_-", *p)))
            return false;
    return true;
}

static bool action_ok(const char *a)
{
    if (strcmp(a, "*") == 0)
        return true;
    const char *colon = strchr(a, ':');
    if (!colon || colon == a || !colon[1] || strlen(a) > 128)
        return false;
    for (const char *p = a; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == ':' || *p == '*' || *p == '-'))
            return false;
    return true;
}

static int check_scope(const pier_credsvc_scope *sc)
{
    if (sc->name && !name_ok(sc->name))
        return pier_error_set(PIER_EINVALID, "grant name '%s': 1 to 64 letters, digits and +=,.@_-",
                              sc->name);
    for (size_t i = 0; i < sc->bucket_count; i++) {
        const char *b = sc->buckets[i];
        const char *slash = strchr(b, '/');
        char name[64];
        size_t n = slash ? (size_t)(slash - b) : strlen(b);
        if (n == 0 || n >= sizeof name)
            return pier_error_set(PIER_EINVALID, "grant bucket '%s': bad bucket name", b);
        memcpy(name, b, n);
        name[n] = '\0';
        if (!pier_store_bucket_name_ok(name))
            return pier_error_set(PIER_EINVALID, "grant bucket '%s': bad bucket name", b);
    }
    for (size_t i = 0; i < sc->distribution_count; i++)
        if (!pier_edge_id_ok(sc->distributions[i]))
            return pier_error_set(PIER_EINVALID, "grant distribution '%s': not a distribution id",
                                  sc->distributions[i]);
    for (size_t i = 0; i < sc->action_count; i++)
        if (!action_ok(sc->actions[i]))
            return pier_error_set(PIER_EINVALID,
                                  "grant action '%s': expected service:Action (e.g. s3:PutObject, "
                                  "s3:*, cloudfront:CreateInvalidation)",
                                  sc->actions[i]);
    if (sc->ttl_s < 0 || sc->ttl_s > PIER_CREDSVC_MAX_TTL)
        return pier_error_set(PIER_EINVALID, "grant ttl %lld s: expected 1 to %d",
                              (long long)sc->ttl_s, PIER_CREDSVC_MAX_TTL);
    return 0;
}

static char **copy_strings(const char *const *v, size_t n)
{
    char **c = pier_calloc(n + 1, sizeof *c);
    for (size_t i = 0; i < n; i++)
        c[i] = pier_strdup(v[i]);
    return c;
}

/* Frees what expired more than a day ago. Caller holds the lock. */
static void purge_old(pier_credsvc *s, int64_t now)
{
    for (session **pp = &s->sessions; *pp;) {
        session *x = *pp;
        if (x->cred.expires + KEEP_AFTER_EXPIRY < now) {
            *pp = x->next;
            if (x->g->current == x)
                x->g->current = NULL;
            explicit_bzero(&x->cred, sizeof x->cred);
            free(x);
        } else {
            pp = &x->next;
        }
    }
    for (grant **pp = &s->grants; *pp;) {
        grant *g = *pp;
        bool used = false;
        for (session *x = s->sessions; x && !used; x = x->next)
            used = x->g == g;
        if (!used && g->expires + KEEP_AFTER_EXPIRY < now) {
            *pp = g->next;
            grant_destroy(g);
        } else {
            pp = &g->next;
        }
    }
}

int pier_credsvc_grant_new(pier_credsvc *s, const pier_credsvc_scope *sc, pier_credsvc_grant *out)
{
    memset(out, 0, sizeof *out);
    int rc = check_scope(sc);
    if (rc)
        return rc;
    static const char *const default_actions[] = {"s3:*", "cloudfront:*"};
    grant *g = pier_calloc(1, sizeof *g);
    pier_random_token(g->id, 32, false);
    pier_random_token(g->token, 64, false);
    g->name = pier_strdup(sc->name ? sc->name : "grant");
    g->buckets = copy_strings(sc->buckets, sc->bucket_count);
    g->bucket_count = sc->bucket_count;
    g->dists = copy_strings(sc->distributions, sc->distribution_count);
    g->dist_count = sc->distribution_count;
    if (sc->action_count) {
        g->actions = copy_strings(sc->actions, sc->action_count);
        g->action_count = sc->action_count;
    } else {
        g->actions = copy_strings(default_actions, 2);
        g->action_count = 2;
    }
    pthread_mutex_lock(&s->lock);
    int64_t now = s->clock(s->clock_ctx);
    purge_old(s, now);
    g->expires = now + (sc->ttl_s ? sc->ttl_s : DEFAULT_TTL);
    g->next = s->grants;
    s->grants = g;
    snprintf(out->id, sizeof out->id, "%s", g->id);
    snprintf(out->token, sizeof out->token, "%s", g->token);
    snprintf(out->uri, sizeof out->uri, "%s" PIER_CREDSVC_PATH "%s", s->base_url, g->id);
    out->expires = g->expires;
    pthread_mutex_unlock(&s->lock);
    char until[32];
    pier_time_iso8601(until, sizeof until, (time_t)g->expires);
    PIER_INFO("credentials: grant %s (%s) until %s: %zu bucket(s), %zu distribution(s)", g->id,
              g->name, until, g->bucket_count, g->dist_count);
    return 0;
}

static grant *find_grant(pier_credsvc *s, const char *id)
{
    for (grant *g = s->grants; g; g = g->next)
        if (strcmp(g->id, id) == 0)
            return g;
    return NULL;
}

int pier_credsvc_revoke(pier_credsvc *s, const char *grant_id)
{
    pthread_mutex_lock(&s->lock);
    grant *g = find_grant(s, grant_id);
    if (g)
        g->revoked = true;
    pthread_mutex_unlock(&s->lock);
    return g ? 0 : pier_error_set(PIER_ENOTFOUND, "no grant %s", grant_id);
}

int pier_credsvc_fetch(pier_credsvc *s, const char *grant_id, const char *token,
                       pier_credsvc_session *out)
{
    int rc = 0;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->lock);
    int64_t now = s->clock(s->clock_ctx);
    grant *g = find_grant(s, grant_id);
    /* the same answer for an unknown grant and a wrong token */
    if (!g || !token || !pier_ct_streq(token, g->token)) {
        rc = pier_error_set(PIER_EAUTH, "wrong authorization token for this credentials URI");
        goto done;
    }
    if (g->revoked || now >= g->expires) {
        rc = pier_error_set(PIER_EAUTH, "grant %s has %s", g->id,
                            g->revoked ? "been revoked" : "expired");
        goto done;
    }
    session *x = g->current;
    if (!x || (x->cred.expires - now) * 5 < (x->cred.expires - x->issued)) {
        x = pier_calloc(1, sizeof *x);
        char id[17];
        pier_random_token(id, 16, true);
        snprintf(x->cred.access_key_id, sizeof x->cred.access_key_id, "ASIA%s", id);
        pier_random_token(x->cred.secret_access_key, 40, false);
        pier_random_token(x->cred.session_token, 96, false);
        x->issued = now;
        x->cred.expires = now + s->session_ttl < g->expires ? now + s->session_ttl : g->expires;
        x->g = g;
        x->next = s->sessions;
        s->sessions = x;
        g->current = x;
        char until[32];
        pier_time_iso8601(until, sizeof until, (time_t)x->cred.expires);
        PIER_DEBUG("credentials: session %s for grant %s until %s", x->cred.access_key_id, g->id,
                   until);
    }
    *out = x->cred;
done:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- authorization ---- */

static bool action_allowed(const grant *g, const char *action)
{
    if (strncmp(action, "pier:", 5) == 0)
        return false;
    for (size_t i = 0; i < g->action_count; i++) {
        const char *a = g->actions[i];
        size_t n = strlen(a);
        if (n && a[n - 1] == '*' ? strncmp(action, a, n - 1) == 0 : strcmp(action, a) == 0)
            return true;
    }
    return false;
}

static bool bucket_allowed(const grant *g, const char *bucket, const char *key)
{
    size_t bl = strlen(bucket);
    for (size_t i = 0; i < g->bucket_count; i++) {
        const char *b = g->buckets[i];
        if (strncmp(b, bucket, bl) != 0)
            continue;
        if (b[bl] == '\0')
            return true;
        if (b[bl] == '/' && (!key[0] || pier_str_starts_with(key, b + bl + 1)))
            return true;
    }
    return false;
}

static int session_authorize(void *ctx, const char *action, const char *bucket, const char *key)
{
    const grant *g = ((const session *)ctx)->g;
    if (g->revoked || !action_allowed(g, action))
        return PIER_EAUTH;
    bucket = bucket ? bucket : "";
    key = key ? key : "";
    if (strncmp(action, "s3:", 3) == 0)
        return !bucket[0] || bucket_allowed(g, bucket, key) ? 0 : PIER_EAUTH;
    if (strncmp(action, "cloudfront:", 11) == 0) {
        if (!bucket[0])
            return 0;
        for (size_t i = 0; i < g->dist_count; i++)
            if (strcmp(g->dists[i], bucket) == 0)
                return 0;
        return PIER_EAUTH;
    }
    return 0;
}

int pier_credsvc_lookup(void *ctx, const char *access_key_id, pier_sigv4_secret *secret,
                        pier_s3api_authorize_fn *authorize, void **authorize_ctx)
{
    pier_credsvc *s = ctx;
    if (strncmp(access_key_id, "ASIA", 4) != 0)
        return PIER_ENOTFOUND;
    int rc = PIER_ENOTFOUND;
    pthread_mutex_lock(&s->lock);
    int64_t now = s->clock(s->clock_ctx);
    for (session *x = s->sessions; x; x = x->next) {
        if (!pier_ct_streq(x->cred.access_key_id, access_key_id))
            continue;
        pier_buf_puts(&secret->secret, x->cred.secret_access_key);
        pier_buf_puts(&secret->session_token, x->cred.session_token);
        secret->expired = now >= x->cred.expires || x->g->revoked;
        *authorize = session_authorize;
        *authorize_ctx = x;
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- SigV4 for non-S3 APIs ---- */

typedef struct {
    pier_s3api_lookup_fn lookup; /* the stack's */
    void *lookup_ctx;            /* its context */
    pier_credsvc_auth *out;      /* receives the callback */
} verify_ctx;

static int verify_lookup(void *ctx, const char *access_key_id, pier_sigv4_secret *secret)
{
    verify_ctx *v = ctx;
    return v->lookup(v->lookup_ctx, access_key_id, secret, &v->out->authorize,
                     &v->out->authorize_ctx);
}

int pier_credsvc_authenticate(pier_server_req *r, const char *service, const char *payload_sha256,
                              pier_s3api_lookup_fn lookup, void *lookup_ctx, pier_credsvc_auth *out)
{
    memset(out, 0, sizeof *out);
    pier_http_headers headers = {0};
    for (size_t i = 0; i < pier_server_req_header_count(r); i++) {
        const char *n, *v;
        pier_server_req_header_at(r, i, &n, &v);
        pier_http_headers_add(&headers, n, v);
    }
    pier_slice path = pier_server_req_raw_path(r);
    pier_slice query = pier_server_req_raw_query(r);
    char *path_s = pier_server_req_strndup(r, path.ptr, path.len);
    char *query_s = pier_server_req_strndup(r, query.ptr, query.len);
    pier_sigv4_request sreq = {
        .method = pier_server_req_method(r),
        .host = pier_server_req_header(r, "Host"),
        .path = path_s[0] ? path_s : "/",
        .query = query_s,
        .headers = &headers,
        .payload_hash = payload_sha256,
    };
    verify_ctx vc = {lookup, lookup_ctx, out};
    pier_sigv4_verify_options vo = {
        .sig = PIER_SIGV4_OPTIONS_INIT,
        .lookup = verify_lookup,
        .lookup_ctx = &vc,
        .max_skew = 0,
    };
    vo.sig.service = service;
    vo.sig.region = NULL;
    pier_sigv4_auth auth;
    pier_sigv4_auth_init(&auth);
    int rc = pier_sigv4_verify(&auth, &sreq, time(NULL), &vo);
    pier_http_headers_free(&headers);
    out->status = auth.status;
    memcpy(out->access_key_id, auth.access_key_id, sizeof out->access_key_id);
    if (rc == 0) {
        pier_sigv4_auth_free(&auth);
        return 0;
    }
    int http = 403;
    out->code = pier_sigv4_status_code(auth.status, auth.presigned, &http);
    if (!out->code)
        out->code = "AccessDenied";
    out->http = (unsigned)http;
    if (auth.status == PIER_SIGV4_MISSING)
        snprintf(out->message, sizeof out->message, "the request is not signed (SigV4)");
    else
        snprintf(out->message, sizeof out->message, "%s", pier_error_last());
    out->authorize = NULL;
    out->authorize_ctx = NULL;
    pier_sigv4_auth_free(&auth);
    return PIER_EAUTH;
}

/* ---- HTTP ---- */

typedef struct {
    pier_handler base; /* must be first */
    pier_credsvc *svc; /* borrowed */
} credsvc_handler;

typedef struct {
    pier_credsvc *svc; /* the service */
    pier_buf body;     /* the request body */
    bool too_big;      /* past GRANT_BODY_MAX */
} body_state;

static int respond_error(pier_server_req *r, unsigned status, const char *code, const char *msg)
{
    return pier_server_respond_json(r, status,
                                    json_pack("{s:s, s:s}", "code", code, "message", msg));
}

static int serve_credentials(pier_credsvc *s, pier_server_req *r, const char *id)
{
    const char *token = pier_server_req_header(r, "Authorization");
    if (!token || !token[0])
        return respond_error(r, 401, "Unauthorized",
                             "missing Authorization header (the value of "
                             "AWS_CONTAINER_AUTHORIZATION_TOKEN)");
    pier_credsvc_session cred;
    if (pier_credsvc_fetch(s, id, token, &cred) != 0)
        return respond_error(r, 403, "Forbidden", pier_error_last());
    char exp[40];
    pier_time_iso8601(exp, sizeof exp, (time_t)cred.expires);
    char role[128];
    pthread_mutex_lock(&s->lock);
    grant *g = find_grant(s, id);
    snprintf(role, sizeof role, "arn:aws:iam::" ROLE_ACCOUNT ":role/pier/%s",
             g ? g->name : "grant");
    pthread_mutex_unlock(&s->lock);
    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s}", "AccessKeyId", cred.access_key_id,
                          "SecretAccessKey", cred.secret_access_key, "Token", cred.session_token,
                          "Expiration", exp, "RoleArn", role);
    explicit_bzero(&cred, sizeof cred);
    return pier_server_respond_json(r, 200, v);
}

/* Reads a JSON array of strings into a NULL-terminated array of borrowed
 * strings; 0, or PIER_EINVALID naming the member. */
static int json_strings(json_t *obj, const char *member, const char ***out, size_t *count)
{
    *out = NULL;
    *count = 0;
    json_t *a = json_object_get(obj, member);
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return pier_error_set(PIER_EINVALID, "'%s' must be a list of strings", member);
    const char **v = pier_calloc(json_array_size(a) + 1, sizeof *v);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *x = json_array_get(a, i);
        if (!json_is_string(x)) {
            free(v);
            return pier_error_set(PIER_EINVALID, "'%s' must be a list of strings", member);
        }
        v[i] = json_string_value(x);
    }
    *out = v;
    *count = json_array_size(a);
    return 0;
}

static int body_piece(pier_server_req *r, void *ctx, const char *data, size_t n)
{
    body_state *b = ctx;
    if (pier_buf_put(&b->body, data, n) != 0) {
        b->too_big = true;
        return -1;
    }
    return 0;
}

/* Authenticates an administrator for the grants API; answers and returns
 * -1 when refused. */
static int admin_only(pier_credsvc *s, pier_server_req *r, const pier_buf *body)
{
    char sha[65];
    pier_sha256_hex(sha, body->ptr ? body->ptr : "", body->len);
    pier_credsvc_auth auth;
    if (!s->lookup) {
        respond_error(r, 403, "AccessDenied", "the grants API has no administrator");
        return -1;
    }
    if (pier_credsvc_authenticate(r, NULL, sha, s->lookup, s->lookup_ctx, &auth) != 0) {
        respond_error(r, auth.http, auth.code, auth.message);
        return -1;
    }
    if (auth.authorize) {
        respond_error(r, 403, "AccessDenied",
                      "only an administrator key (DIR/credentials) may manage grants");
        return -1;
    }
    return 0;
}

static void grants_end(pier_server_req *r, void *ctx)
{
    body_state *b = ctx;
    pier_credsvc *s = b->svc;
    const char *method = pier_server_req_method(r);
    if (b->too_big) {
        respond_error(r, 413, "RequestTooLarge", "the grant request is over 64 KiB");
        goto done;
    }
    if (admin_only(s, r, &b->body))
        goto done;
    pier_slice path = pier_server_req_raw_path(r);
    if (strcmp(method, "DELETE") == 0) {
        size_t pl = strlen(PIER_CREDSVC_GRANTS_PATH "/");
        char *id = pier_server_req_strndup(r, path.ptr + pl, path.len - pl);
        if (pier_credsvc_revoke(s, id) != 0)
            respond_error(r, 404, "NotFound", pier_error_last());
        else
            pier_server_respond_mem(r, 204, "", 0);
        goto done;
    }
    json_t *req = NULL;
    if (pier_json_parse(&req, b->body.ptr ? b->body.ptr : "", b->body.len, "grant request") ||
        !json_is_object(req)) {
        respond_error(r, 400, "InvalidRequest",
                      req ? "the body must be a JSON object" : pier_error_last());
        json_decref(req);
        goto done;
    }
    pier_credsvc_scope sc = {0};
    int rc = json_strings(req, "buckets", (const char ***)&sc.buckets, &sc.bucket_count);
    if (!rc)
        rc = json_strings(req, "distributions", (const char ***)&sc.distributions,
                          &sc.distribution_count);
    if (!rc)
        rc = json_strings(req, "actions", (const char ***)&sc.actions, &sc.action_count);
    json_t *ttl = json_object_get(req, "ttl_seconds");
    if (!rc && ttl && !json_is_integer(ttl))
        rc = pier_error_set(PIER_EINVALID, "'ttl_seconds' must be an integer");
    if (!rc && ttl && json_integer_value(ttl) <= 0)
        rc = pier_error_set(PIER_EINVALID, "'ttl_seconds' must be at least 1");
    sc.ttl_s = ttl ? (int64_t)json_integer_value(ttl) : 0;
    sc.name = pier_json_str(req, "name", NULL);
    const char *known[] = {"name", "buckets", "distributions", "actions", "ttl_seconds"};
    const char *k;
    json_t *unused;
    json_object_foreach(req, k, unused)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            ok = ok || strcmp(k, known[i]) == 0;
        if (!ok && !rc)
            rc = pier_error_set(PIER_EINVALID,
                                "unknown member '%s' (name, buckets, distributions, actions, "
                                "ttl_seconds)",
                                k);
    }
    pier_credsvc_grant g;
    if (!rc)
        rc = pier_credsvc_grant_new(s, &sc, &g);
    free((void *)sc.buckets);
    free((void *)sc.distributions);
    free((void *)sc.actions);
    json_decref(req);
    if (rc) {
        respond_error(r, 400, "InvalidRequest", pier_error_last());
        goto done;
    }
    char exp[40];
    pier_time_iso8601(exp, sizeof exp, (time_t)g.expires);
    pier_server_respond_json(r, 201,
                             json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "id", g.id, "uri",
                                       g.uri, "token", g.token, "expires", exp, "env",
                                       "AWS_CONTAINER_CREDENTIALS_FULL_URI", g.uri,
                                       "AWS_CONTAINER_AUTHORIZATION_TOKEN", g.token));
    explicit_bzero(&g, sizeof g);
done:
    return;
}

static void body_free(pier_server_req *r, void *ctx)
{
    body_state *b = ctx;
    pier_buf_free(&b->body);
}

static int credsvc_on_req(pier_handler *self, pier_server_req *r)
{
    pier_credsvc *s = ((credsvc_handler *)self)->svc;
    pier_slice path = pier_server_req_raw_path(r);
    const char *method = pier_server_req_method(r);
    size_t cl = strlen(PIER_CREDSVC_PATH);
    if (pier_slice_starts_with(path, PIER_CREDSVC_PATH) && path.len > cl) {
        if (strcmp(method, "GET") != 0)
            return respond_error(r, 405, "MethodNotAllowed", "use GET");
        char *id = pier_server_req_strndup(r, path.ptr + cl, path.len - cl);
        return serve_credentials(s, r, id);
    }
    bool create = pier_slice_eq_cstr(path, PIER_CREDSVC_GRANTS_PATH) && !strcmp(method, "POST");
    bool revoke = pier_slice_starts_with(path, PIER_CREDSVC_GRANTS_PATH "/") &&
                  path.len > strlen(PIER_CREDSVC_GRANTS_PATH "/") && !strcmp(method, "DELETE");
    if (!create && !revoke)
        return respond_error(r, 404, "NotFound",
                             "POST /_pier/grants, DELETE /_pier/grants/ID, GET "
                             "/_pier/credentials/ID");
    if (pier_server_req_content_length(r) > (int64_t)GRANT_BODY_MAX)
        return respond_error(r, 413, "RequestTooLarge", "the grant request is over 64 KiB");
    body_state *b = pier_server_req_alloc(r, sizeof *b);
    b->svc = s;
    pier_buf_init(&b->body, GRANT_BODY_MAX);
    b->too_big = false;
    pier_server_req_on_done(r, body_free, b);
    pier_server_req_read_body(r, body_piece, grants_end, b);
    return 0;
}

static void credsvc_dispose(pier_handler *self)
{
    free(self);
}

pier_handler *pier_credsvc_handler(pier_credsvc *s)
{
    credsvc_handler *h = pier_calloc(1, sizeof *h);
    h->base.on_req = credsvc_on_req;
    h->base.dispose = credsvc_dispose;
    h->svc = s;
    return &h->base;
}
