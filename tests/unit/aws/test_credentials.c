/*
 * test_credentials: the provider chain against one in-process HTTP server
 * on 127.0.0.1 that speaks each provider's protocol:
 *   /creds                        container endpoint (checks Authorization)
 *   /latest/api/token             IMDSv2 session token (PUT + TTL header)
 *   /latest/meta-data/iam/...     IMDS role list and role credentials
 *   /sts                          STS AssumeRoleWithWebIdentity (query
 *                                 protocol, the real XML shapes)
 * with an injected environment, a temp HOME for the shared files, a fake
 * clock for expiry and refresh, and a retry policy with no delays.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aws/credentials.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
#define TOKEN  "IQoJb3JpZ2luX2VjEXAMPLETOKEN"

/* ---- the server ---- */

typedef struct {
    struct MHD_Daemon *daemon; /* the server */
    int port;                  /* its port */
    pthread_mutex_t mu;        /* guards the rest */
    int64_t now;               /* the fake clock, shared with the chain */

    /* container */
    char container_auth[256]; /* the Authorization it requires ("" none) */
    int container_hits;       /* requests seen */
    int container_fail;       /* answer this many requests with 500 first */
    long container_ttl;       /* Expiration = now + ttl (0: omit) */
    char container_akid[32];  /* the key id it hands out */

    /* IMDS */
    char imds_token[64];   /* the session token it issued */
    int imds_puts;         /* token requests */
    char imds_ttl[32];     /* the TTL header of the last PUT */
    int imds_gets;         /* metadata requests */
    int imds_unauthorized; /* GETs refused for a bad token */
    bool imds_no_role;     /* no instance profile */

    /* STS */
    int sts_hits;             /* requests */
    int sts_idp_errors;       /* answer IDPCommunicationError this many times first */
    bool sts_refuse;          /* answer InvalidIdentityToken */
    char sts_method[8];       /* the last request's method */
    char sts_ctype[128];      /* its Content-Type */
    char sts_action[64];      /* Action */
    char sts_version[32];     /* Version */
    char sts_role[256];       /* RoleArn */
    char sts_session[128];    /* RoleSessionName */
    char sts_duration[16];    /* DurationSeconds */
    char sts_token[256];      /* WebIdentityToken */
    bool sts_had_auth_header; /* an Authorization header (must not: unsigned) */
} server;

static server srv;

typedef struct {
    pier_buf body; /* the request body */
} req_ctx;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&srv.mu);
    int64_t t = srv.now;
    pthread_mutex_unlock(&srv.mu);
    return t;
}

static void advance(int64_t s)
{
    pthread_mutex_lock(&srv.mu);
    srv.now += s;
    pthread_mutex_unlock(&srv.mu);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (type)
        MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static void iso(char *out, size_t n, int64_t t)
{
    pier_time_iso8601(out, n, (time_t)t);
}

static enum MHD_Result handle_container(struct MHD_Connection *c, const char *method)
{
    const char *auth = header(c, "Authorization");
    srv.container_hits++;
    if (strcmp(method, "GET") != 0)
        return reply(c, 405, NULL, "");
    if (srv.container_auth[0] && (!auth || strcmp(auth, srv.container_auth) != 0))
        return reply(c, 401, "application/json",
                     "{\"code\":\"InvalidToken\",\"message\":\"Authorization token is invalid\"}");
    if (srv.container_fail > 0) {
        srv.container_fail--;
        return reply(c, 500, NULL, "busy");
    }
    char exp[64] = "", body[1024];
    if (srv.container_ttl)
        iso(exp, sizeof exp, srv.now + srv.container_ttl);
    snprintf(body, sizeof body,
             "{\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"" TOKEN
             "\",\"RoleArn\":\"arn:aws:iam::123456789012:role/build\"%s%s%s}",
             srv.container_akid, exp[0] ? ",\"Expiration\":\"" : "", exp, exp[0] ? "\"" : "");
    return reply(c, 200, "application/json", body);
}

static enum MHD_Result handle_imds(struct MHD_Connection *c, const char *url, const char *method)
{
    if (strcmp(url, "/latest/api/token") == 0) {
        if (strcmp(method, "PUT") != 0)
            return reply(c, 405, NULL, "");
        const char *ttl = header(c, "X-aws-ec2-metadata-token-ttl-seconds");
        if (!ttl)
            return reply(c, 400, NULL, "missing TTL");
        snprintf(srv.imds_ttl, sizeof srv.imds_ttl, "%s", ttl);
        srv.imds_puts++;
        snprintf(srv.imds_token, sizeof srv.imds_token, "imds-token-%d", srv.imds_puts);
        return reply(c, 200, "text/plain", srv.imds_token);
    }
    srv.imds_gets++;
    const char *tok = header(c, "X-aws-ec2-metadata-token");
    if (strcmp(method, "GET") != 0)
        return reply(c, 405, NULL, "");
    if (!tok || !srv.imds_token[0] || strcmp(tok, srv.imds_token) != 0) {
        srv.imds_unauthorized++;
        return reply(c, 401, NULL, "");
    }
    if (strcmp(url, "/latest/meta-data/iam/security-credentials/") == 0) {
        if (srv.imds_no_role)
            return reply(c, 404, "text/html", "<html>Not Found</html>");
        return reply(c, 200, "text/plain", "pier-instance-role\n");
    }
    if (strcmp(url, "/latest/meta-data/iam/security-credentials/pier-instance-role") == 0) {
        char exp[64], upd[64], body[1024];
        iso(exp, sizeof exp, srv.now + 6 * 3600);
        iso(upd, sizeof upd, srv.now);
        snprintf(body, sizeof body,
                 "{\n  \"Code\" : \"Success\",\n  \"LastUpdated\" : \"%s\",\n"
                 "  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAIMDSEXAMPLE1234\",\n"
                 "  \"SecretAccessKey\" : \"" SECRET "\",\n  \"Token\" : \"" TOKEN "\",\n"
                 "  \"Expiration\" : \"%s\"\n}",
                 upd, exp);
        return reply(c, 200, "text/plain", body);
    }
    return reply(c, 404, NULL, "");
}

/* Pulls one form field out of an x-www-form-urlencoded body. */
static void form_get(const char *body, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    size_t n = strlen(name);
    const char *p = body;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            pier_buf d = PIER_BUF_INIT;
            if (pier_uri_decode(&d, p + n + 1, len - n - 1, true) == 0)
                snprintf(out, size, "%s", pier_buf_cstr(&d));
            pier_buf_free(&d);
            return;
        }
        p = amp ? amp + 1 : NULL;
    }
}

static enum MHD_Result handle_sts(struct MHD_Connection *c, const char *method, req_ctx *rc)
{
    srv.sts_hits++;
    snprintf(srv.sts_method, sizeof srv.sts_method, "%s", method);
    const char *ct = header(c, "Content-Type");
    snprintf(srv.sts_ctype, sizeof srv.sts_ctype, "%s", ct ? ct : "");
    srv.sts_had_auth_header = header(c, "Authorization") != NULL;
    const char *body = pier_buf_cstr(&rc->body);
    form_get(body, "Action", srv.sts_action, sizeof srv.sts_action);
    form_get(body, "Version", srv.sts_version, sizeof srv.sts_version);
    form_get(body, "RoleArn", srv.sts_role, sizeof srv.sts_role);
    form_get(body, "RoleSessionName", srv.sts_session, sizeof srv.sts_session);
    form_get(body, "DurationSeconds", srv.sts_duration, sizeof srv.sts_duration);
    form_get(body, "WebIdentityToken", srv.sts_token, sizeof srv.sts_token);
    if (srv.sts_idp_errors > 0) {
        srv.sts_idp_errors--;
        return reply(c, 400, "text/xml",
                     "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                     "  <Error>\n    <Type>Sender</Type>\n"
                     "    <Code>IDPCommunicationError</Code>\n"
                     "    <Message>Couldn't retrieve verification key from your identity "
                     "provider</Message>\n  </Error>\n"
                     "  <RequestId>11111111-2222-3333-4444-555555555555</RequestId>\n"
                     "</ErrorResponse>\n");
    }
    if (srv.sts_refuse)
        return reply(c, 400, "text/xml",
                     "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
                     "  <Error>\n    <Type>Sender</Type>\n"
                     "    <Code>InvalidIdentityToken</Code>\n"
                     "    <Message>No OpenIDConnect provider found in your account for "
                     "https://token.actions.githubusercontent.com</Message>\n  </Error>\n"
                     "  <RequestId>8d3e3c56-7a54-4ef0-9f2b-5b1bd5a0c7e1</RequestId>\n"
                     "</ErrorResponse>\n");
    char exp[64], xml[4096];
    iso(exp, sizeof exp, srv.now + 3600);
    snprintf(xml, sizeof xml,
             "<AssumeRoleWithWebIdentityResponse "
             "xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
             "  <AssumeRoleWithWebIdentityResult>\n"
             "    <Audience>sts.amazonaws.com</Audience>\n"
             "    <AssumedRoleUser>\n"
             "      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:%s</AssumedRoleId>\n"
             "      <Arn>arn:aws:sts::123456789012:assumed-role/deploy/%s</Arn>\n"
             "    </AssumedRoleUser>\n"
             "    <Provider>arn:aws:iam::123456789012:oidc-provider/"
             "token.actions.githubusercontent.com</Provider>\n"
             "    <Credentials>\n"
             "      <AccessKeyId>ASIASTSEXAMPLE5678</AccessKeyId>\n"
             "      <SecretAccessKey>" SECRET "</SecretAccessKey>\n"
             "      <SessionToken>" TOKEN "</SessionToken>\n"
             "      <Expiration>%s</Expiration>\n"
             "    </Credentials>\n"
             "    <SubjectFromWebIdentityToken>repo:acme/site:ref:refs/heads/main"
             "</SubjectFromWebIdentityToken>\n"
             "  </AssumeRoleWithWebIdentityResult>\n"
             "  <ResponseMetadata>\n"
             "    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\n"
             "  </ResponseMetadata>\n"
             "</AssumeRoleWithWebIdentityResponse>\n",
             srv.sts_session, srv.sts_session, exp);
    return reply(c, 200, "text/xml", xml);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)version;
    req_ctx *rc = *con_cls;
    if (!rc) {
        rc = pier_calloc(1, sizeof *rc);
        pier_buf_init(&rc->body, 1 << 20);
        *con_cls = rc;
        return MHD_YES;
    }
    if (*upload_data_size) {
        pier_buf_put(&rc->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&srv.mu);
    enum MHD_Result ret;
    if (strcmp(url, "/creds") == 0)
        ret = handle_container(c, method);
    else if (strncmp(url, "/latest/", 8) == 0)
        ret = handle_imds(c, url, method);
    else if (strcmp(url, "/sts") == 0 || strcmp(url, "/sts/") == 0)
        ret = handle_sts(c, method, rc);
    else
        ret = reply(c, 404, NULL, "no such test endpoint");
    pthread_mutex_unlock(&srv.mu);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)c;
    (void)code;
    req_ctx *rc = *con_cls;
    if (rc) {
        pier_buf_free(&rc->body);
        free(rc);
        *con_cls = NULL;
    }
}

/* ---- fixtures ---- */

static char tmpdir[256];
static char base_url[64];

typedef struct {
    const char *vars[48];
} fake_env;

static const char *fake_getenv(void *ctx, const char *name)
{
    fake_env *e = ctx;
    size_t n = strlen(name);
    for (size_t i = 0; e->vars[i]; i++)
        if (strncmp(e->vars[i], name, n) == 0 && e->vars[i][n] == '=')
            return e->vars[i] + n + 1;
    return NULL;
}

/* Strings for the environment, kept alive for the test. */
static char strings[32][512];
static int nstrings;

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
    assert_true(nstrings < 32);
    va_list ap;
    va_start(ap, f);
    vsnprintf(strings[nstrings], sizeof strings[0], f, ap);
    va_end(ap);
    return strings[nstrings++];
}

static pier_retry *test_retry;

static double zero_random(void *ctx)
{
    (void)ctx;
    return 0.0;
}

static int setup(void **state)
{
    (void)state;
    pthread_mutex_lock(&srv.mu);
    memset(&srv.now, 0, sizeof srv - offsetof(server, now));
    srv.now = 1700000000;
    snprintf(srv.container_akid, sizeof srv.container_akid, "ASIACONTAINERWXYZ");
    srv.container_ttl = 3600;
    pthread_mutex_unlock(&srv.mu);
    nstrings = 0;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pier-test-creds-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char *aws = pier_path_join(tmpdir, ".aws");
    assert_int_equal(pier_file_mkdirs(aws, 0700), 0);
    free(aws);
    pier_retry_options ro = PIER_RETRY_OPTIONS_INIT;
    ro.random = zero_random;
    pier_retry_new(&test_retry, &ro);
    pier_error_clear();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pier_file_remove_tree(tmpdir);
    pier_retry_free(test_retry);
    test_retry = NULL;
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    pthread_mutex_init(&srv.mu, NULL);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv.daemon =
        MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                         NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!srv.daemon)
        return -1;
    srv.port = MHD_get_daemon_info(srv.daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", srv.port);
    return srv.port > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(srv.daemon);
    pthread_mutex_destroy(&srv.mu);
    return 0;
}

static void write_file(const char *rel, const char *text)
{
    char *p = pier_path_join(tmpdir, rel);
    assert_int_equal(pier_file_write_atomic(p, text, strlen(text), 0600), 0);
    free(p);
}

static const char *path_of(const char *rel)
{
    return fmt("%s/%s", tmpdir, rel);
}

/* An environment with HOME set and IMDS off unless the test adds more. */
static void env_init(fake_env *e)
{
    memset(e, 0, sizeof *e);
    e->vars[0] = fmt("HOME=%s", tmpdir);
}

static void env_add(fake_env *e, const char *var)
{
    size_t i = 0;
    while (e->vars[i])
        i++;
    assert_true(i + 1 < sizeof e->vars / sizeof e->vars[0]);
    e->vars[i] = var;
}

static pier_credentials_chain *chain(fake_env *e, const char *profile)
{
    pier_credentials_options o = PIER_CREDENTIALS_OPTIONS_INIT;
    o.getenv = fake_getenv;
    o.getenv_ctx = e;
    o.clock = fake_clock;
    o.profile = profile;
    o.retry = test_retry;
    o.connect_timeout_ms = 1000;
    o.timeout_ms = 5000;
    pier_credentials_chain *ch = NULL;
    assert_int_equal(pier_credentials_chain_new(&ch, &o), 0);
    return ch;
}

static void get_ok(pier_credentials_chain *ch, pier_credentials *c)
{
    int rc = pier_credentials_get(ch, c);
    if (rc != 0)
        fail_msg("get: %s", pier_error_last());
}

static int get_fail(pier_credentials_chain *ch)
{
    pier_credentials c;
    int rc = pier_credentials_get(ch, &c);
    if (rc == 0)
        fail_msg("get succeeded from %s", c.provider);
    assert_null(c.access_key_id);
    /* no secret ever reaches a message */
    assert_null(strstr(pier_error_last(), SECRET));
    assert_null(strstr(pier_error_last(), TOKEN));
    return rc;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("'%s' lacks '%s'", hay, needle);
}

/* ---- env ---- */

static void test_env(void **state)
{
    (void)state;
    fake_env e;
    env_init(&e);
    env_add(&e, "AWS_ACCESS_KEY_ID=AKIAENVEXAMPLEABCD");
    env_add(&e, "AWS_SECRET_ACCESS_KEY=" SECRET);
    env_add(&e, "AWS_SESSION_TOKEN=" TOKEN);
    env_add(&e, "AWS_EC2_METADATA_DISABLED=true");
    pier_credentials_chain *ch = chain(&e, NULL);
    pier_credentials c;
    get_ok(ch, &c);
    assert_string_equal(c.provider, "env");
    assert_string_equal(c.access_key_id, "AKIAENVEXAMPLEABCD");
    assert_string_equal(c.secret_access_key, SECRET);
    assert_string_equal(c.session_token, TOKEN);
    assert_int_equal(c.expiration, 0);
    char masked[16];
    pier_credentials_mask(masked, sizeof masked, c.access_key_id);
    assert_string_equal(masked, "****ABCD");
    pier_credentials_clear(&c);
    assert_null(c.secret_access_key);
    pier_credentials_chain_free(ch);

    /* half-configured: a clear reason, and the chain goes on */
    fake_env half;
    env_init(&half);
    env_add(&half, "AWS_ACCESS_KEY_ID=AKIAENVEXAMPLEABCD");
    env_add(&half, "AWS_EC2_METADATA_DISABLED=true");
    ch = chain(&half, NULL);
    assert_int_equal(get_fail(ch), PIER_EAUTH);
    assert_contains(pier_error_last(),
                    "env: AWS_ACCESS_KEY_ID set but AWS_SECRET_ACCESS_KEY not set");
    pier_credentials_chain_free(ch);

    /* mask of short ids */
    char m[16];
    pier_credentials_mask(m, sizeof m, "AB");
    assert_string_equal(m, "****");
    pier_credentials_mask(m, sizeof m, NULL);
    assert_string_equal(m, "****");
}

/* ---- profiles ---- */

static void test_profile_keys(void **state)
{
    (void)state;
    write_file(".aws/credentials", "[default]\n"
                                   "aws_access_key_id = AKIADEFAULT00001111\n"
                                   "aws_secret_access_key = " SECRET "\n"
                                   "\n"
                                   "[dev]\n"
                                   "  aws_access_key_id=AKIADEVCREDS0002222\n"
                                   "aws_secret_access_key =" SECRET "  ; comment\n"
                                   "aws_session_token = " TOKEN "\n");
    write_file(".aws/config", "[default]\nregion = eu-west-3\n"
                              "[profile cfgonly]\n"
                              "aws_access_key_id = AKIACONFIGFILE33333\n"
                              "aws_secret_access_key = " SECRET "\n"
                              "[profile broken]\naws_access_key_id = AKIANOSECRET\n"
                              "[profile regiononly]\nregion = us-west-2\n");
    fake_env e;
    env_init(&e);
    env_add(&e, "AWS_EC2_METADATA_DISABLED=true");
    pier_credentials_chain *ch = chain(&e, NULL);
    pier_credentials c;
    get_ok(ch, &c);
    assert_string_equal(c.provider, "profile");
    assert_string_equal(c.access_key_id, "AKIADEFAULT00001111");
    assert_null(c.session_token);
    assert_string_equal(c.source, "profile default: keys in ~/.aws/credentials");
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);

    ch = chain(&e, "dev");
    get_ok(ch, &c);
    assert_string_equal(c.access_key_id, "AKIADEVCREDS0002222");
    assert_string_equal(c.secret_access_key, SECRET);
    assert_string_equal(c.session_token, TOKEN);
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);

    /* keys in the config file's [profile x] section */
    fake_env e2;
    env_init(&e2);
    env_add(&e2, "AWS_PROFILE=cfgonly");
    env_add(&e2, "AWS_EC2_METADATA_DISABLED=true");
    ch = chain(&e2, NULL);
    get_ok(ch, &c);
    assert_string_equal(c.access_key_id, "AKIACONFIGFILE33333");
    assert_string_equal(c.source, "profile cfgonly: keys in ~/.aws/config");
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);

    /* a key without a secret */
    ch = chain(&e, "broken");
    get_fail(ch);
    assert_contains(pier_error_last(), "profile broken: ~/.aws/config: aws_access_key_id without "
                                       "aws_secret_access_key");
    pier_credentials_chain_free(ch);

    /* a profile without credentials passes on to the next provider */
    ch = chain(&e, "regiononly");
    get_fail(ch);
    assert_contains(pier_error_last(), "profile regiononly: no credentials in the profile");
    pier_credentials_chain_free(ch);

    /* a named profile that does not exist is an error at once */
    ch = chain(&e, "nosuch");
    assert_int_equal(get_fail(ch), PIER_ENOTFOUND);
    assert_string_equal(pier_error_last(), "AWS profile 'nosuch' (--profile) is in neither "
                                           "~/.aws/credentials nor ~/.aws/config");
    pier_credentials_chain_free(ch);
    fake_env e3;
    env_init(&e3);
    env_add(&e3, "AWS_PROFILE=ghost");
    ch = chain(&e3, NULL);
    assert_int_equal(get_fail(ch), PIER_ENOTFOUND);
    assert_contains(pier_error_last(), "'ghost' (AWS_PROFILE)");
    pier_credentials_chain_free(ch);

    /* other file locations */
    write_file("elsewhere", "[ci]\naws_access_key_id = AKIAELSEWHERE4444\n"
                            "aws_secret_access_key = " SECRET "\n");
    fake_env e4;
    env_init(&e4);
    env_add(&e4, fmt("AWS_SHARED_CREDENTIALS_FILE=%s", path_of("elsewhere")));
    env_add(&e4, "AWS_PROFILE=ci");
    ch = chain(&e4, NULL);
    get_ok(ch, &c);
    assert_string_equal(c.access_key_id, "AKIAELSEWHERE4444");
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);
}

static void test_profile_sso_and_unsupported(void **state)
{
    (void)state;
    write_file(".aws/config", "[profile sso]\nsso_session = corp\nsso_account_id = 1\n"
                              "[sso-session corp]\nsso_start_url = https://x.awsapps.com/start\n"
                              "[profile chained]\nrole_arn = arn:aws:iam::1:role/r\n"
                              "source_profile = default\n"
                              "[profile lonely]\nrole_arn = arn:aws:iam::1:role/r\n");
    fake_env e;
    env_init(&e);
    env_add(&e, "AWS_EC2_METADATA_DISABLED=true");
    pier_credentials_chain *ch = chain(&e, "sso");
    get_fail(ch);
    assert_contains(pier_error_last(), "credential_process = aws configure export-credentials "
                                       "--profile sso --format process");
    pier_credentials_chain_free(ch);
    ch = chain(&e, "chained");
    get_fail(ch);
    assert_contains(pier_error_last(), "source_profile or credential_source");
    pier_credentials_chain_free(ch);
    ch = chain(&e, "lonely");
    get_fail(ch);
    assert_contains(pier_error_last(), "role_arn needs web_identity_token_file");
    pier_credentials_chain_free(ch);
}

static void test_credential_process(void **state)
{
    (void)state;
    char exp[64];
    iso(exp, sizeof exp, 1700000000 + 900);
    write_file("good.sh", "#!/bin/sh\n"
                          "echo 'progress goes to stderr' >&2\n"
                          "printf '%s' '{\"Version\": 1, \"AccessKeyId\": \"ASIAPROCESS0005555\", "
                          "\"SecretAccessKey\": \"" SECRET "\", \"SessionToken\": \"" TOKEN "\", ");
    char *p = pier_path_join(tmpdir, "good.sh");
    FILE *f = fopen(p, "a");
    fprintf(f, "\"Expiration\": \"%s\"}'\n", exp);
    fclose(f);
    free(p);
    write_file("static.sh",
               "#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"AKIASTATICPROC6666\","
               "\"SecretAccessKey\":\"" SECRET "\"}'\n");
    write_file("fail.sh", "#!/bin/sh\necho 'token expired, run aws sso login' >&2\nexit 3\n");
    write_file("junk.sh", "#!/bin/sh\necho 'not json " SECRET "'\n");
    write_file("v2.sh", "#!/bin/sh\necho '{\"Version\":2,\"AccessKeyId\":\"A\","
                        "\"SecretAccessKey\":\"B\"}'\n");
    write_file("nokey.sh", "#!/bin/sh\necho '{\"Version\":1,\"SecretAccessKey\":\"B\"}'\n");
    write_file(".aws/config",
               fmt("[profile good]\ncredential_process = sh %s/good.sh --flag \"quoted arg\"\n"
                   "[profile static]\ncredential_process = sh %s/static.sh\n"
                   "[profile fail]\ncredential_process = sh %s/fail.sh\n"
                   "[profile junk]\ncredential_process = sh %s/junk.sh\n"
                   "[profile v2]\ncredential_process = sh %s/v2.sh\n"
                   "[profile nokey]\ncredential_process = sh %s/nokey.sh\n",
                   tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir));
    fake_env e;
    env_init(&e);
    env_add(&e, "AWS_EC2_METADATA_DISABLED=true");

    pier_credentials_chain *ch = chain(&e, "good");
    pier_credentials c;
    get_ok(ch, &c);
    assert_string_equal(c.provider, "profile");
    assert_string_equal(c.access_key_id, "ASIAPROCESS0005555");
    assert_string_equal(c.secret_access_key, SECRET);
    assert_string_equal(c.session_token, TOKEN);
    assert_int_equal(c.expiration, 1700000000 + 900);
    assert_string_equal(c.source, "profile good: credential_process");
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);

    ch = chain(&e, "static");
    get_ok(ch, &c);
    assert_int_equal(c.expiration, 0);
    assert_null(c.session_token);
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);

    static const struct {
        const char *profile;
        const char *needle;
    } bad[] = {
        {"fail", "exited with status 3"},
        {"junk", "did not print JSON"},
        {"v2", "needs \"Version\": 1"},
        {"nokey", "lacks AccessKeyId or SecretAccessKey"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ch = chain(&e, bad[i].profile);
        get_fail(ch);
        assert_contains(pier_error_last(), bad[i].needle);
        assert_contains(pier_error_last(), "credential_process 'sh ");
        pier_credentials_chain_free(ch);
    }
}

/* ---- web identity ---- */

static void test_web_identity(void **state)
{
    (void)state;
    write_file("token", "eyJhbGciOiJSUzI1NiJ9.first-token.sig\n");
    fake_env e;
    env_init(&e);
    env_add(&e, fmt("AWS_WEB_IDENTITY_TOKEN_FILE=%s", path_of("token")));
    env_add(&e, "AWS_ROLE_ARN=arn:aws:iam::123456789012:role/deploy");
    env_add(&e, fmt("AWS_ENDPOINT_URL_STS=%s/sts", base_url));
    env_add(&e, "AWS_EC2_METADATA_DISABLED=true");
    pier_credentials_chain *ch = chain(&e, NULL);
    pier_credentials c;
    get_ok(ch, &c);
    assert_string_equal(c.provider, "web-identity");
    assert_string_equal(c.access_key_id, "ASIASTSEXAMPLE5678");
    assert_string_equal(c.secret_access_key, SECRET);
    assert_string_equal(c.session_token, TOKEN);
    assert_int_equal(c.expiration, 1700000000 + 3600);
    assert_contains(c.source, "arn:aws:iam::123456789012:role/deploy (session pier-1700000000");
    pier_credentials_clear(&c);
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.sts_hits, 1);
    assert_string_equal(srv.sts_method, "POST");
    assert_contains(srv.sts_ctype, "application/x-www-form-urlencoded");
    assert_string_equal(srv.sts_action, "AssumeRoleWithWebIdentity");
    assert_string_equal(srv.sts_version, "2011-06-15");
    assert_string_equal(srv.sts_role, "arn:aws:iam::123456789012:role/deploy");
    assert_string_equal(srv.sts_session, "pier-1700000000");
    assert_string_equal(srv.sts_token, "eyJhbGciOiJSUzI1NiJ9.first-token.sig");
    assert_false(srv.sts_had_auth_header); /* unsigned */
    pthread_mutex_unlock(&srv.mu);

    /* cached: no new call */
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    assert_int_equal(srv.sts_hits, 1);

    /* the token rotates; near expiry the refresh reads the new one */
    write_file("token", "eyJhbGciOiJSUzI1NiJ9.second-token.sig");
    advance(3600 - 200);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.sts_hits, 2);
    assert_string_equal(srv.sts_token, "eyJhbGciOiJSUzI1NiJ9.second-token.sig");
    pthread_mutex_unlock(&srv.mu);
    pier_credentials_chain_free(ch);

    /* a session name and a transient IdP error, retried */
    fake_env e2 = e;
    env_add(&e2, "AWS_ROLE_SESSION_NAME=gh-run-42");
    pthread_mutex_lock(&srv.mu);
    srv.sts_idp_errors = 1;
    srv.sts_hits = 0;
    pthread_mutex_unlock(&srv.mu);
    ch = chain(&e2, NULL);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    assert_int_equal(srv.sts_hits, 2);
    assert_string_equal(srv.sts_session, "gh-run-42");
    pier_credentials_chain_free(ch);

    /* STS refuses: code and message, and the chain lists it */
    pthread_mutex_lock(&srv.mu);
    srv.sts_refuse = true;
    srv.sts_hits = 0;
    pthread_mutex_unlock(&srv.mu);
    ch = chain(&e, NULL);
    assert_int_equal(get_fail(ch), PIER_EAUTH);
    assert_contains(pier_error_last(), "web-identity: STS ");
    assert_contains(pier_error_last(), "refused AssumeRoleWithWebIdentity for "
                                       "arn:aws:iam::123456789012:role/deploy: "
                                       "InvalidIdentityToken: No OpenIDConnect provider found");
    assert_int_equal(srv.sts_hits, 1); /* not retried */
    assert_null(strstr(pier_error_last(), "second-token"));
    pier_credentials_chain_free(ch);
    srv.sts_refuse = false;

    /* half-configured, missing token file */
    fake_env e3;
    env_init(&e3);
    env_add(&e3, "AWS_ROLE_ARN=arn:aws:iam::123456789012:role/deploy");
    env_add(&e3, "AWS_EC2_METADATA_DISABLED=true");
    ch = chain(&e3, NULL);
    get_fail(ch);
    assert_contains(pier_error_last(),
                    "web-identity: AWS_ROLE_ARN set but AWS_WEB_IDENTITY_TOKEN_FILE not set");
    pier_credentials_chain_free(ch);
    env_add(&e3, fmt("AWS_WEB_IDENTITY_TOKEN_FILE=%s", path_of("missing-token")));
    ch = chain(&e3, NULL);
    get_fail(ch);
    assert_contains(pier_error_last(), "web-identity: web identity token file");
    assert_contains(pier_error_last(), "missing-token");
    pier_credentials_chain_free(ch);
}

static void test_profile_web_identity(void **state)
{
    (void)state;
    write_file("oidc", "profile-token");
    write_file(".aws/config", fmt("[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/ci\n"
                                  "web_identity_token_file = %s\nrole_session_name = from-profile\n"
                                  "duration_seconds = 900\n",
                                  path_of("oidc")));
    fake_env e;
    env_init(&e);
    env_add(&e, fmt("AWS_ENDPOINT_URL=%s/sts", base_url)); /* the global override */
    pier_credentials_chain *ch = chain(&e, "ci");
    pier_credentials c;
    get_ok(ch, &c);
    assert_string_equal(c.provider, "profile");
    assert_contains(c.source, "profile ci: arn:aws:iam::123456789012:role/ci");
    pier_credentials_clear(&c);
    assert_string_equal(srv.sts_token, "profile-token");
    assert_string_equal(srv.sts_session, "from-profile");
    assert_string_equal(srv.sts_duration, "900");
    assert_string_equal(srv.sts_role, "arn:aws:iam::123456789012:role/ci");
    pier_credentials_chain_free(ch);
}

/* ---- container ---- */

static void test_container(void **state)
{
    (void)state;
    snprintf(srv.container_auth, sizeof srv.container_auth, "Bearer right-token");
    fake_env e;
    env_init(&e);
    env_add(&e, fmt("AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", base_url));
    env_add(&e, "AWS_CONTAINER_AUTHORIZATION_TOKEN=Bearer right-token");
    env_add(&e, "AWS_EC2_METADATA_DISABLED=true");
    pier_credentials_chain *ch = chain(&e, NULL);
    pier_credentials c;
    get_ok(ch, &c);
    assert_string_equal(c.provider, "container");
    assert_string_equal(c.access_key_id, "ASIACONTAINERWXYZ");
    assert_string_equal(c.secret_access_key, SECRET);
    assert_string_equal(c.session_token, TOKEN);
    assert_int_equal(c.expiration, 1700000000 + 3600);
    assert_string_equal(c.source, fmt("%s/creds", base_url));
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);

    /* the wrong token: 401, a clear error, never retried */
    fake_env bad;
    env_init(&bad);
    env_add(&bad, fmt("AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", base_url));
    env_add(&bad, "AWS_CONTAINER_AUTHORIZATION_TOKEN=Bearer wrong-token");
    env_add(&bad, "AWS_EC2_METADATA_DISABLED=true");
    srv.container_hits = 0;
    ch = chain(&bad, NULL);
    assert_int_equal(get_fail(ch), PIER_EAUTH);
    assert_contains(pier_error_last(), "container: the authorization token was refused: ");
    assert_contains(pier_error_last(), "/creds answered HTTP 401 Unauthorized");
    assert_contains(pier_error_last(), "Authorization token is invalid");
    assert_null(strstr(pier_error_last(), "wrong-token"));
    assert_int_equal(srv.container_hits, 1);
    pier_credentials_chain_free(ch);

    /* no token at all */
    fake_env none;
    env_init(&none);
    env_add(&none, fmt("AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", base_url));
    env_add(&none, "AWS_EC2_METADATA_DISABLED=true");
    ch = chain(&none, NULL);
    get_fail(ch);
    assert_contains(pier_error_last(), "container: no authorization token was sent");
    pier_credentials_chain_free(ch);

    /* the token file wins over the variable and is read at each refresh */
    write_file("ctoken", "Bearer right-token\n");
    fake_env tf;
    env_init(&tf);
    env_add(&tf, fmt("AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", base_url));
    env_add(&tf, "AWS_CONTAINER_AUTHORIZATION_TOKEN=Bearer wrong-token");
    env_add(&tf, fmt("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=%s", path_of("ctoken")));
    ch = chain(&tf, NULL);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    write_file("ctoken", "Bearer rotated-token");
    snprintf(srv.container_auth, sizeof srv.container_auth, "Bearer rotated-token");
    advance(3400); /* within the 5-minute margin */
    get_ok(ch, &c);
    assert_string_equal(c.provider, "container");
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);

    /* 500s are retried (the policy allows 3 attempts) */
    srv.container_fail = 2;
    srv.container_hits = 0;
    ch = chain(&tf, NULL);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    assert_int_equal(srv.container_hits, 3);
    pier_credentials_chain_free(ch);

    /* plain http only to allowed hosts */
    static const char *const refused[] = {"http://example.com/creds", "http://10.0.0.1/creds",
                                          "http://169.254.169.254/latest"};
    for (size_t i = 0; i < 3; i++) {
        fake_env r;
        env_init(&r);
        env_add(&r, fmt("AWS_CONTAINER_CREDENTIALS_FULL_URI=%s", refused[i]));
        env_add(&r, "AWS_EC2_METADATA_DISABLED=true");
        ch = chain(&r, NULL);
        get_fail(ch);
        assert_contains(pier_error_last(), "plain http is allowed only to a loopback address, "
                                           "169.254.170.2 or 169.254.170.23; use https");
        pier_credentials_chain_free(ch);
    }
    fake_env junk;
    env_init(&junk);
    env_add(&junk, "AWS_CONTAINER_CREDENTIALS_FULL_URI=not a url");
    env_add(&junk, "AWS_EC2_METADATA_DISABLED=true");
    ch = chain(&junk, NULL);
    get_fail(ch);
    assert_contains(pier_error_last(), "container: AWS_CONTAINER_CREDENTIALS_FULL_URI");
    pier_credentials_chain_free(ch);
}

static void test_container_relative(void **state)
{
    (void)state;
    /* the relative form goes to 169.254.170.2; nothing answers there in a
     * test: check the URL named in the failure (a short timeout, no retry) */
    fake_env e;
    env_init(&e);
    env_add(&e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/abc-123");
    env_add(&e, "AWS_EC2_METADATA_DISABLED=true");
    pier_retry_options ro = PIER_RETRY_OPTIONS_INIT;
    ro.max_attempts = 1;
    pier_retry *one = NULL;
    pier_retry_new(&one, &ro);
    pier_credentials_options o = PIER_CREDENTIALS_OPTIONS_INIT;
    o.getenv = fake_getenv;
    o.getenv_ctx = &e;
    o.clock = fake_clock;
    o.retry = one;
    o.connect_timeout_ms = 100;
    o.timeout_ms = 200;
    pier_credentials_chain *ch = NULL;
    pier_credentials_chain_new(&ch, &o);
    get_fail(ch);
    assert_contains(pier_error_last(), "http://169.254.170.2/v2/credentials/abc-123");
    pier_credentials_chain_free(ch);
    pier_retry_free(one);
}

/* ---- IMDS ---- */

static void test_imds(void **state)
{
    (void)state;
    fake_env e;
    env_init(&e);
    env_add(&e, fmt("AWS_EC2_METADATA_SERVICE_ENDPOINT=%s/", base_url));
    pier_credentials_chain *ch = chain(&e, NULL);
    pier_credentials c;
    get_ok(ch, &c);
    assert_string_equal(c.provider, "imds");
    assert_string_equal(c.access_key_id, "ASIAIMDSEXAMPLE1234");
    assert_string_equal(c.session_token, TOKEN);
    assert_int_equal(c.expiration, 1700000000 + 6 * 3600);
    assert_contains(c.source, "instance role pier-instance-role");
    pier_credentials_clear(&c);
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.imds_puts, 1);
    assert_string_equal(srv.imds_ttl, "21600");
    assert_int_equal(srv.imds_gets, 2);
    assert_int_equal(srv.imds_unauthorized, 0);
    pthread_mutex_unlock(&srv.mu);

    /* refresh within the token's TTL: the token is reused */
    advance(6 * 3600 - 100);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    assert_int_equal(srv.imds_puts, 1);
    assert_int_equal(srv.imds_gets, 4);

    /* the server forgets the token (reboot): 401, a new token, success */
    pthread_mutex_lock(&srv.mu);
    snprintf(srv.imds_token, sizeof srv.imds_token, "server-side-new");
    pthread_mutex_unlock(&srv.mu);
    pier_credentials_invalidate(ch);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    assert_int_equal(srv.imds_puts, 2);
    assert_int_equal(srv.imds_unauthorized, 1);

    /* past the token TTL a new token is fetched */
    advance(21600);
    pier_credentials_invalidate(ch);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    assert_int_equal(srv.imds_puts, 3);
    pier_credentials_chain_free(ch);

    /* no role attached */
    srv.imds_no_role = true;
    ch = chain(&e, NULL);
    get_fail(ch);
    assert_contains(pier_error_last(), "imds: no IAM role is attached to this instance");
    pier_credentials_chain_free(ch);
}

static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

static void test_imds_failures(void **state)
{
    (void)state;
    fake_env e;
    env_init(&e);
    env_add(&e, fmt("AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:%d", closed_port()));
    pier_credentials_chain *ch = chain(&e, NULL);
    get_fail(ch);
    assert_contains(pier_error_last(), "imds: PUT http://127.0.0.1:");
    assert_contains(pier_error_last(), "/latest/api/token failed (connect)");
    assert_contains(pier_error_last(), "(after ");
    pier_credentials_chain_free(ch);

    /* the endpoint answers something that is not IMDS: a clear status */
    fake_env e2;
    env_init(&e2);
    env_add(&e2, fmt("AWS_EC2_METADATA_SERVICE_ENDPOINT=%s/elsewhere", base_url));
    ch = chain(&e2, NULL);
    get_fail(ch);
    assert_contains(pier_error_last(), "/elsewhere/latest/api/token answered HTTP 404 Not Found");
    pier_credentials_chain_free(ch);

    fake_env off;
    env_init(&off);
    env_add(&off, "AWS_EC2_METADATA_DISABLED=TRUE");
    env_add(&off, fmt("AWS_EC2_METADATA_SERVICE_ENDPOINT=%s", base_url));
    ch = chain(&off, NULL);
    get_fail(ch);
    assert_contains(pier_error_last(), "imds: disabled by AWS_EC2_METADATA_DISABLED");
    assert_int_equal(srv.imds_puts, 0);
    pier_credentials_chain_free(ch);
}

/* ---- the chain ---- */

static void test_precedence(void **state)
{
    (void)state;
    snprintf(srv.container_auth, sizeof srv.container_auth, "tok");
    write_file(".aws/credentials", "[default]\naws_access_key_id = AKIAPROFILE77778888\n"
                                   "aws_secret_access_key = " SECRET "\n");
    write_file("wi", "web-token");
    const char *envs[] = {
        "AWS_ACCESS_KEY_ID=AKIAENV000011112222",
        "AWS_SECRET_ACCESS_KEY=" SECRET,
    };
    const char *web[] = {fmt("AWS_WEB_IDENTITY_TOKEN_FILE=%s", path_of("wi")),
                         "AWS_ROLE_ARN=arn:aws:iam::123456789012:role/deploy",
                         fmt("AWS_ENDPOINT_URL_STS=%s/sts", base_url)};
    const char *container[] = {fmt("AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", base_url),
                               "AWS_CONTAINER_AUTHORIZATION_TOKEN=tok"};
    const char *imds = fmt("AWS_EC2_METADATA_SERVICE_ENDPOINT=%s", base_url);

    /* everything configured: env wins; take them away one by one */
    static const char *const expect[] = {"env", "profile", "web-identity", "container", "imds"};
    for (int drop = 0; drop < 5; drop++) {
        fake_env e;
        env_init(&e);
        if (drop < 1)
            for (int i = 0; i < 2; i++)
                env_add(&e, envs[i]);
        if (drop >= 2) /* no profile: point the files elsewhere */
            env_add(&e, "AWS_SHARED_CREDENTIALS_FILE=/nonexistent/credentials");
        if (drop < 3)
            for (int i = 0; i < 3; i++)
                env_add(&e, web[i]);
        if (drop < 4)
            for (int i = 0; i < 2; i++)
                env_add(&e, container[i]);
        env_add(&e, imds);
        pier_credentials_chain *ch = chain(&e, NULL);
        pier_credentials c;
        get_ok(ch, &c);
        if (strcmp(c.provider, expect[drop]) != 0)
            fail_msg("drop %d: got %s, want %s", drop, c.provider, expect[drop]);
        pier_credentials_clear(&c);
        pier_credentials_chain_free(ch);
    }

    /* --profile skips the environment's keys */
    fake_env e;
    env_init(&e);
    for (int i = 0; i < 2; i++)
        env_add(&e, envs[i]);
    pier_credentials_chain *ch = chain(&e, "default");
    pier_credentials c;
    get_ok(ch, &c);
    assert_string_equal(c.provider, "profile");
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);
    /* AWS_PROFILE does not */
    env_add(&e, "AWS_PROFILE=default");
    ch = chain(&e, NULL);
    get_ok(ch, &c);
    assert_string_equal(c.provider, "env");
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);

    /* a configured provider that fails gives way to the next (with a
     * warning) */
    fake_env f;
    env_init(&f);
    env_add(&f, "AWS_SHARED_CREDENTIALS_FILE=/nonexistent/credentials");
    env_add(&f, fmt("AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", base_url));
    env_add(&f, "AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong");
    env_add(&f, imds);
    ch = chain(&f, NULL);
    get_ok(ch, &c);
    assert_string_equal(c.provider, "imds");
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);
}

static void test_nothing_found(void **state)
{
    (void)state;
    fake_env e;
    env_init(&e);
    env_add(&e, "AWS_EC2_METADATA_DISABLED=true");
    pier_credentials_chain *ch = chain(&e, NULL);
    assert_int_equal(get_fail(ch), PIER_EAUTH);
    assert_string_equal(pier_error_last(),
                        "no AWS credentials found: env: AWS_ACCESS_KEY_ID not set; "
                        "profile default: no ~/.aws/credentials or ~/.aws/config; "
                        "web-identity: AWS_WEB_IDENTITY_TOKEN_FILE not set; "
                        "container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI not set; "
                        "imds: disabled by AWS_EC2_METADATA_DISABLED");
    pier_credentials_chain_free(ch);

    /* the files exist but lack the profile */
    write_file(".aws/config", "[profile other]\nregion = x\n");
    ch = chain(&e, NULL);
    get_fail(ch);
    assert_contains(pier_error_last(),
                    "profile default: no [default] in ~/.aws/credentials or ~/.aws/config;");
    pier_credentials_chain_free(ch);

    /* every provider failing at once still fits one message */
    write_file("t", "x");
    snprintf(srv.container_auth, sizeof srv.container_auth, "required");
    fake_env all;
    env_init(&all);
    env_add(&all, "AWS_ACCESS_KEY_ID=AKIAX");
    env_add(&all, "AWS_PROFILE=other");
    env_add(&all, fmt("AWS_WEB_IDENTITY_TOKEN_FILE=%s", path_of("t")));
    env_add(&all, "AWS_ROLE_ARN=arn:aws:iam::123456789012:role/a-rather-long-role-name-for-"
                  "testing-the-length-of-messages");
    env_add(&all, fmt("AWS_ENDPOINT_URL_STS=%s/nowhere", base_url));
    env_add(&all, fmt("AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", base_url));
    env_add(&all, fmt("AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:%d", closed_port()));
    ch = chain(&all, NULL);
    get_fail(ch);
    const char *m = pier_error_last();
    assert_contains(m, "env: ");
    assert_contains(m, "; profile other: ");
    assert_contains(m, "; web-identity: ");
    assert_contains(m, "; container: ");
    assert_contains(m, "; imds: ");
    pier_credentials_chain_free(ch);
}

static void test_refresh_and_expiry(void **state)
{
    (void)state;
    fake_env e;
    env_init(&e);
    env_add(&e, fmt("AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", base_url));
    env_add(&e, "AWS_EC2_METADATA_DISABLED=true");
    srv.container_ttl = 3600;
    pier_credentials_chain *ch = chain(&e, NULL);
    pier_credentials c;
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    assert_int_equal(srv.container_hits, 1); /* cached */
    advance(3600 - 301);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    assert_int_equal(srv.container_hits, 1); /* 301 s left: still fine */
    advance(2);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    assert_int_equal(srv.container_hits, 2); /* inside the 5-minute margin */

    /* short-lived credentials: every get refetches */
    srv.container_ttl = 60;
    pier_credentials_invalidate(ch);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    assert_int_equal(srv.container_hits, 4);

    /* the refresh fails while the old ones are valid: keep them */
    srv.container_ttl = 3600;
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    int64_t exp_before = srv.now + 3600;
    snprintf(srv.container_auth, sizeof srv.container_auth, "now-required");
    advance(3600 - 100);
    get_ok(ch, &c);
    assert_int_equal(c.expiration, exp_before);
    pier_credentials_clear(&c);
    /* once they expire, the failure is the caller's */
    advance(200);
    assert_int_equal(get_fail(ch), PIER_EAUTH);
    assert_contains(pier_error_last(), "refreshing AWS credentials from container: ");
    pier_credentials_chain_free(ch);

    /* a provider handing out expired credentials is refused */
    srv.container_auth[0] = '\0';
    srv.container_ttl = -10;
    ch = chain(&e, NULL);
    get_fail(ch);
    assert_contains(pier_error_last(), "container: container returned credentials that expired");
    pier_credentials_chain_free(ch);
}

typedef struct {
    pier_credentials_chain *ch;
    int failures;
} thread_arg;

static void *worker(void *p)
{
    thread_arg *a = p;
    for (int i = 0; i < 20; i++) {
        pier_credentials c;
        if (pier_credentials_get(a->ch, &c) != 0 || strcmp(c.secret_access_key, SECRET) != 0)
            a->failures++;
        pier_credentials_clear(&c);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    fake_env e;
    env_init(&e);
    env_add(&e, fmt("AWS_CONTAINER_CREDENTIALS_FULL_URI=%s/creds", base_url));
    srv.container_ttl = 3600;
    pier_credentials_chain *ch = chain(&e, NULL);
    pthread_t t[4];
    thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thread_arg){ch, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    assert_int_equal(srv.container_hits, 1); /* one fetch for 80 gets */
    pier_credentials_chain_free(ch);
}

static void test_static_chain(void **state)
{
    (void)state;
    pier_credentials_chain *ch = NULL;
    assert_int_equal(pier_credentials_chain_new_static(&ch, "AKIASTATIC", SECRET, NULL), 0);
    pier_credentials c;
    get_ok(ch, &c);
    assert_string_equal(c.provider, "static");
    assert_string_equal(c.secret_access_key, SECRET);
    assert_int_equal(c.expiration, 0);
    pier_credentials_clear(&c);
    pier_credentials_invalidate(ch); /* no effect */
    get_ok(ch, &c);
    pier_credentials_clear(&c);
    pier_credentials_chain_free(ch);
    assert_int_equal(pier_credentials_chain_new_static(&ch, "", SECRET, NULL), PIER_EINVALID);
    pier_credentials_chain_free(NULL);
    pier_credentials_clear(NULL);
}

int main(void)
{
    /* local servers only: no proxy, no CA settings needed */
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    pier_log_init(PIER_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_sso_and_unsupported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credential_process, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profile_web_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container, setup, teardown),
        cmocka_unit_test_setup_teardown(test_container_relative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imds_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_chain, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
