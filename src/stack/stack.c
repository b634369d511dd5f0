/*
 * stack: see stack.h. Start order: data directory, store, credential,
 * default bucket, the config's buckets, the edge with its sites, the
 * credentials service and the CloudFront API, then the API listener with its
 * handlers in match order (health, credentials and grants, CloudFront under
 * /2020-05-31/, then the S3 API for everything else), then the edge
 * listener. Stop order is the reverse: the servers stop (in-flight requests
 * finish) before what their handlers borrow (edge, APIs, store) is freed.
 *
 * Credentials: the administrator key (below) may do everything; session
 * keys minted by the credentials service (ASIA...) are found through it and
 * carry their grant's scope.
 *
 * The administrator credential lives in DIR/credentials in the AWS shared
 * credentials format, so `AWS_SHARED_CREDENTIALS_FILE=DIR/credentials
 * AWS_PROFILE=pier aws ...` works as is. It is written once (0600, atomic)
 * and reused on later starts.
 */
#include "stack/stack.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/server.h"
#include "stack/s3api.h"

#define PROFILE "pier"

struct pier_stack {
    char *data_dir;        /* absolute data directory */
    char *cred_file;       /* DIR/credentials */
    char access_key[32];   /* administrator key id */
    char secret[64];       /* its secret */
    pier_store *store;     /* the objects */
    pier_server *api;      /* the S3 listener */
    pier_edge *edge;       /* sites and cache */
    pier_credsvc *creds;   /* session credentials */
    pier_cfapi *cfapi;     /* invalidations */
    pier_server *edge_srv; /* the edge listener, or NULL */
};

/* Reads key = value from the [pier] section of an AWS credentials file. */
static void ini_get(const char *text, const char *key, char *out, size_t size)
{
    bool in_profile = false;
    out[0] = '\0';
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        pier_slice line = pier_slice_trim((pier_slice){p, n});
        if (line.len && line.ptr[0] == '[') {
            in_profile = pier_slice_eq_cstr(line, "[" PROFILE "]");
        } else if (in_profile) {
            const char *eq = memchr(line.ptr, '=', line.len);
            if (eq) {
                pier_slice k = pier_slice_trim((pier_slice){line.ptr, (size_t)(eq - line.ptr)});
                pier_slice v =
                    pier_slice_trim((pier_slice){eq + 1, line.len - (size_t)(eq - line.ptr) - 1});
                if (pier_slice_eq_cstr(k, key) && v.len < size) {
                    memcpy(out, v.ptr, v.len);
                    out[v.len] = '\0';
                }
            }
        }
        p += n + (eol ? 1 : 0);
    }
}

static int load_or_create_credential(pier_stack *s)
{
    pier_buf text = PIER_BUF_INIT;
    int rc = pier_file_read(s->cred_file, &text);
    if (rc == 0) {
        ini_get(pier_buf_cstr(&text), "aws_access_key_id", s->access_key, sizeof s->access_key);
        ini_get(pier_buf_cstr(&text), "aws_secret_access_key", s->secret, sizeof s->secret);
        pier_buf_free(&text);
        if (!s->access_key[0] || !s->secret[0])
            return pier_error_set(PIER_EINVALID,
                                  "%s: no [" PROFILE "] profile with aws_access_key_id and "
                                  "aws_secret_access_key (delete the file to make a new one)",
                                  s->cred_file);
        return 0;
    }
    pier_buf_free(&text);
    if (rc != PIER_ENOTFOUND)
        return rc;
    char id[17];
    pier_random_token(id, 16, true);
    snprintf(s->access_key, sizeof s->access_key, "PIER%s", id);
    pier_random_token(s->secret, 40, false);
    pier_buf out = PIER_BUF_INIT;
    pier_buf_printf(&out,
                    "# pier serve: the administrator credential of this data directory.\n"
                    "# Use it with AWS_SHARED_CREDENTIALS_FILE=%s AWS_PROFILE=" PROFILE "\n"
                    "[" PROFILE "]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
                    s->cred_file, s->access_key, s->secret);
    rc = pier_file_write_atomic(s->cred_file, out.ptr, out.len, 0600);
    pier_buf_free(&out);
    if (rc == 0)
        PIER_INFO("created the administrator credential in %s", s->cred_file);
    return rc;
}

static int admin_lookup(void *ctx, const char *access_key_id, pier_sigv4_secret *secret,
                        pier_s3api_authorize_fn *authorize, void **authorize_ctx)
{
    pier_stack *s = ctx;
    if (!pier_ct_streq(access_key_id, s->access_key))
        return s->creds
                   ? pier_credsvc_lookup(s->creds, access_key_id, secret, authorize, authorize_ctx)
                   : PIER_ENOTFOUND;
    pier_buf_puts(&secret->secret, s->secret);
    *authorize = NULL; /* the administrator may do everything */
    *authorize_ctx = NULL;
    return 0;
}

/* ---- health ---- */

typedef struct {
    pier_handler base; /* must be first */
} health_handler;

static int health_on_req(pier_handler *self, pier_server_req *req)
{
    pier_slice path = pier_server_req_raw_path(req);
    const char *m = pier_server_req_method(req);
    if (!pier_slice_eq_cstr(path, "/_pier/health"))
        return pier_server_respond_mem(req, 404, "{\"error\":\"not found\"}\n", 22);
    if (strcmp(m, "GET") && strcmp(m, "HEAD"))
        return pier_server_respond_mem(req, 405, "{\"error\":\"method not allowed\"}\n", 31);
    char body[128];
    int n = snprintf(body, sizeof body, "{\"status\":\"ok\",\"version\":\"%s\"}\n", PIER_VERSION);
    pier_server_resp_header(req, "Content-Type", "application/json");
    pier_server_resp_header(req, "Cache-Control", "no-store");
    return pier_server_respond_mem(req, 200, body, (size_t)n);
}

static void health_dispose(pier_handler *self)
{
    free(self);
}

static pier_handler *health_new(void)
{
    health_handler *h = pier_calloc(1, sizeof *h);
    h->base.on_req = health_on_req;
    h->base.dispose = health_dispose;
    return &h->base;
}

/* ---- edge, CloudFront API, credentials ---- */

static int ensure_bucket(pier_stack *s, const char *name)
{
    int rc = pier_store_bucket_create(s->store, name);
    return rc == PIER_EEXISTS ? 0 : rc;
}

/* The config's buckets and sites (or the default site over the default
 * bucket), then the services that sit on the edge. */
static int setup_edge(pier_stack *s, const pier_stack_options *o, const char *default_bucket)
{
    const pier_stackconf *c = o ? o->config : NULL;
    int rc = 0;
    for (size_t i = 0; c && i < c->bucket_count && !rc; i++) {
        rc = ensure_bucket(s, c->buckets[i].name);
        if (!rc && c->buckets[i].public_read_set)
            rc = pier_store_bucket_set_public(s->store, c->buckets[i].name,
                                              c->buckets[i].public_read);
    }
    pier_edge_options eo = {
        .store = s->store,
        .cache_bytes = c ? c->cache_bytes : 0,
        .cache_object_max = c ? c->cache_object_max : 0,
    };
    if (!rc)
        rc = pier_edge_new(&s->edge, &eo);
    for (size_t i = 0; c && i < c->site_count && !rc; i++) {
        rc = ensure_bucket(s, c->sites[i]->bucket);
        if (!rc)
            rc = pier_edge_add_site(s->edge, pier_edge_site_clone(c->sites[i]));
    }
    if (!rc && (!c || c->site_count == 0) && default_bucket[0]) {
        pier_edge_site *site = NULL;
        rc = pier_edge_site_new(&site, PIER_EDGE_DEFAULT_ID, default_bucket);
        if (!rc && !(rc = pier_edge_site_add_host(site, "*")))
            rc = pier_edge_add_site(s->edge, site);
        else
            pier_edge_site_free(site);
    }
    pier_credsvc_options co = {.lookup = admin_lookup, .lookup_ctx = s};
    if (!rc)
        rc = pier_credsvc_new(&s->creds, &co);
    pier_cfapi_options fo = {
        .edge = s->edge,
        .data_dir = s->data_dir,
        .lookup = admin_lookup,
        .lookup_ctx = s,
    };
    if (!rc)
        rc = pier_cfapi_new(&s->cfapi, &fo);
    return rc;
}

/* The credentials URIs must name an address a client can reach. */
static void set_credentials_base(pier_stack *s)
{
    const char *url = pier_server_url(s->api);
    if (pier_str_starts_with(url, "http://0.0.0.0:") || pier_str_starts_with(url, "http://[::]:")) {
        char local[128];
        snprintf(local, sizeof local, "http://127.0.0.1:%u", (unsigned)pier_server_port(s->api));
        pier_credsvc_set_base_url(s->creds, local);
    } else {
        pier_credsvc_set_base_url(s->creds, url);
    }
}

static int start_edge_listener(pier_stack *s, const pier_stack_options *o)
{
    const pier_stackconf *c = o ? o->config : NULL;
    const char *listen = o && o->edge_listen ? o->edge_listen : c ? c->edge_listen : NULL;
    if (!listen || !listen[0])
        return 0;
    pier_server_options so = {
        .listen = listen,
        .threads = o ? o->threads : 0,
        .memory_limit = 32 << 10, /* GETs only: a small pool is much faster (server.h) */
    };
    int rc = pier_server_new(&s->edge_srv, &so);
    if (rc)
        return rc;
    pier_server_add(s->edge_srv, NULL, pier_edge_handler(s->edge));
    return pier_server_start(s->edge_srv);
}

/* ---- lifecycle ---- */

int pier_stack_start(pier_stack **out, const pier_stack_options *o)
{
    int rc = 0;
    *out = NULL;
    pier_stack *s = pier_calloc(1, sizeof *s);
    const char *dir = o && o->data_dir ? o->data_dir : "./.pier-data";
    if ((rc = pier_file_mkdirs(dir, 0700)))
        goto done;
    char real[PATH_MAX];
    s->data_dir = pier_strdup(realpath(dir, real) ? real : dir);
    s->cred_file = pier_path_join(s->data_dir, "credentials");
    if ((rc = load_or_create_credential(s)))
        goto done;
    if ((rc = pier_store_open(&s->store, s->data_dir, NULL)))
        goto done;
    const char *bucket = o && o->default_bucket ? o->default_bucket : "site";
    if (bucket[0]) {
        rc = pier_store_bucket_create(s->store, bucket);
        if (rc == PIER_EEXISTS)
            rc = 0;
        if (rc)
            goto done;
    }
    if ((rc = setup_edge(s, o, bucket)))
        goto done;
    const char *conf_api = o && o->config ? o->config->api_listen : NULL;
    pier_server_options so = {
        .listen = o && o->api_listen ? o->api_listen
                  : conf_api         ? conf_api
                                     : "127.0.0.1:9000",
        .threads = o ? o->threads : 0,
    };
    if ((rc = pier_server_new(&s->api, &so)))
        goto done;
    pier_server_match health = {.path_prefix = "/_pier/health"};
    pier_server_add(s->api, &health, health_new());
    pier_server_match creds = {.path_prefix = PIER_CREDSVC_PATH};
    pier_server_add(s->api, &creds, pier_credsvc_handler(s->creds));
    pier_server_match grants = {.path_prefix = PIER_CREDSVC_GRANTS_PATH};
    pier_server_add(s->api, &grants, pier_credsvc_handler(s->creds));
    pier_server_match cf = {.path_prefix = PIER_CFAPI_PREFIX};
    pier_server_add(s->api, &cf, pier_cfapi_handler(s->cfapi));
    pier_s3api_options ao = {
        .store = s->store,
        .lookup = admin_lookup,
        .lookup_ctx = s,
    };
    if (o && o->webhooks)
        pier_webhookhttp_register(s->api, o->webhooks);
    if (o && o->jobs) {
        pier_jobhttp_options jo = {.jobs = o->jobs, .lookup = admin_lookup, .lookup_ctx = s};
        pier_jobhttp_register(s->api, &jo);
    }
    pier_s3api_register(s->api, NULL, &ao);
    if ((rc = pier_server_start(s->api)))
        goto done;
    set_credentials_base(s);
    rc = start_edge_listener(s, o);
done:
    if (rc) {
        pier_stack_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void pier_stack_free(pier_stack *s)
{
    if (!s)
        return;
    pier_server_free(s->edge_srv);
    pier_server_free(s->api);
    pier_cfapi_free(s->cfapi);
    pier_credsvc_free(s->creds);
    pier_edge_free(s->edge);
    pier_store_free(s->store);
    free(s->data_dir);
    free(s->cred_file);
    free(s);
}

const char *pier_stack_api_url(const pier_stack *s)
{
    return pier_server_url(s->api);
}

const char *pier_stack_data_dir(const pier_stack *s)
{
    return s->data_dir;
}

const char *pier_stack_credentials_file(const pier_stack *s)
{
    return s->cred_file;
}

const char *pier_stack_access_key_id(const pier_stack *s)
{
    return s->access_key;
}

pier_store *pier_stack_store(pier_stack *s)
{
    return s->store;
}

const char *pier_stack_edge_url(const pier_stack *s)
{
    return s->edge_srv ? pier_server_url(s->edge_srv) : NULL;
}

pier_edge *pier_stack_edge(pier_stack *s)
{
    return s->edge;
}

pier_credsvc *pier_stack_credsvc(pier_stack *s)
{
    return s->creds;
}

pier_cfapi *pier_stack_cfapi(pier_stack *s)
{
    return s->cfapi;
}
