/*
 * credproviders: the credential providers of the chain (see credentials.h
 * for the order and what each reads; credentialsinternal.h for the contract
 * every fetch function keeps). The environment and the profile's keys are
 * read in place; web identity trades a token file for keys at STS (sts.h);
 * credential_process runs a command with /bin/sh -c and reads JSON from its
 * stdout (capped at 1 MiB); the container provider makes one GET to its
 * endpoint (only https, or http to loopback and the link-local container
 * hosts); IMDSv2 takes a session token with a PUT (kept on the chain, for
 * its TTL less a minute), then GETs the role name and the role's
 * credentials, fetching a fresh token once on a 401.
 *
 * Invariants: no secret or token reaches a log line or an error message;
 * untrusted text in a message (a server's body, the command) goes through
 * pier_str_snippet. Token files are read again at every fetch.
 *
 * Costs: zero to three short HTTP requests (STS and container calls retried
 * per the chain's policy; IMDS not, with short timeouts) or one process.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aws/credentialsinternal.h"
#include "aws/sts.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/http.h"

extern char **environ;

#define CONTAINER_HOST     "http://169.254.170.2"
#define IMDS_ENDPOINT      "http://169.254.169.254"
#define IMDS_ENDPOINT_V6   "http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL     21600
#define PROCESS_OUTPUT_MAX (1u << 20) /* credential_process stdout cap */

/* ---- small helpers ---- */

/* Reads a small secret file (a token), trimmed. The path is named in the
 * error; the content never is. */
static int read_token_file(const char *path, const char *what, char **out)
{
    *out = NULL;
    pier_buf b;
    pier_buf_init(&b, 64 * 1024);
    int rc = pier_file_read(path, &b);
    if (rc != 0) {
        rc = pier_error_wrap(rc == PIER_ENOTFOUND ? PIER_ENOTFOUND : rc, "%s", what);
        goto done;
    }
    pier_slice t = pier_slice_trim(pier_buf_slice(&b));
    if (t.len == 0) {
        rc = pier_error_set(PIER_EINVALID, "%s %s is empty", what, path);
        goto done;
    }
    for (size_t i = 0; i < t.len; i++)
        if (t.ptr[i] == '\r' || t.ptr[i] == '\n' || t.ptr[i] == '\0') {
            rc = pier_error_set(PIER_EINVALID, "%s %s holds more than one line", what, path);
            goto done;
        }
    *out = pier_slice_dup(t);
done:
    if (b.ptr)
        memset(b.ptr, 0, b.len);
    pier_buf_free(&b);
    return rc;
}

static int parse_expiration(const char *s, const char *what, int64_t *out)
{
    time_t t;
    if (!s || pier_time_parse(s, &t) != 0)
        return pier_error_set(PIER_EINVALID, "%s: Expiration '%s' is not an ISO 8601 time", what,
                              s ? s : "");
    *out = (int64_t)t;
    return 0;
}

/* Reads the credentials members of a JSON object (container, IMDS,
 * credential_process share the shape; the token member's name differs). */
static int creds_from_json(const char *body, size_t len, const char *what, const char *token_key,
                           bool expiration_required, const char *provider, const char *source,
                           pier_credentials *out)
{
    json_t *j = NULL;
    int rc = pier_json_parse(&j, body, len, what);
    if (rc != 0) {
        /* jansson quotes the text near the error: that may be a secret */
        rc = pier_error_set(PIER_EINVALID, "%s: the answer is not JSON", what);
        goto done;
    }
    const char *akid = pier_json_str(j, "AccessKeyId", NULL);
    const char *secret = pier_json_str(j, "SecretAccessKey", NULL);
    const char *token = pier_json_str(j, token_key, NULL);
    const char *exp = pier_json_str(j, "Expiration", NULL);
    if (!akid || !*akid || !secret || !*secret) {
        rc = pier_error_set(PIER_EINVALID, "%s: the answer lacks AccessKeyId or SecretAccessKey",
                            what);
        goto done;
    }
    int64_t expiration = 0;
    if (exp || expiration_required) {
        rc = parse_expiration(exp, what, &expiration);
        if (rc != 0)
            goto done;
    }
    pier_credentials_fill(out, akid, secret, token, expiration, provider, source);
done:
    json_decref(j);
    return rc;
}

/* ---- HTTP ---- */

typedef struct {
    const char *method;         /* GET, PUT, POST */
    const char *url;            /* absolute */
    pier_http_headers *headers; /* borrowed, may be NULL */
    const char *body;           /* request body or NULL */
    size_t body_len;            /* its length */
    long connect_ms;            /* connect timeout */
    long timeout_ms;            /* total timeout */
    bool retry;                 /* use the chain's retry policy */
} call;

/* One request (retried per the policy when asked). 0 when a response
 * arrived (resp->status says which); negative on a transport failure. */
static int http_call(pier_credentials_fetch_ctx *f, const call *c, pier_http_response *resp)
{
    pier_http_client_options co = PIER_HTTP_CLIENT_OPTIONS_INIT;
    co.connect_timeout_ms = c->connect_ms;
    co.allow_insecure_http = true; /* callers checked which http:// hosts they accept */
    pier_http_client *client = NULL;
    int rc = pier_http_client_new(&client, &co);
    if (rc != 0)
        return rc;
    pier_retry_state st = PIER_RETRY_STATE_INIT;
    for (;;) {
        pier_http_request req = PIER_HTTP_REQUEST_INIT;
        req.method = c->method;
        req.url = c->url;
        if (c->headers)
            for (size_t i = 0; i < c->headers->count; i++)
                pier_http_headers_add(&req.headers, c->headers->items[i].name,
                                      c->headers->items[i].value);
        req.body = c->body;
        req.body_len = c->body_len;
        req.connect_timeout_ms = c->connect_ms;
        req.timeout_ms = c->timeout_ms;
        req.response_max = 1 << 20;
        pier_http_response_free(resp);
        pier_http_response_init(resp);
        rc = pier_http_do(client, &req, resp);
        pier_http_headers_free(&req.headers);
        if (!c->retry)
            break;
        char saved[1024]; /* the transfer's message, kept across the parsing below */
        snprintf(saved, sizeof saved, "%s", pier_error_last());
        pier_retry_outcome o = {0};
        o.rc = rc;
        o.transport = resp->transport;
        o.status = resp->status;
        pier_retry_verdict v = pier_retry_next(f->ch->retry, &st, &o);
        if (v != PIER_RETRY_AGAIN) {
            if (rc != 0)
                pier_error_set(rc, "%s", saved);
            break;
        }
        PIER_DEBUG("%s %s: retrying (%s) in %ld ms", c->method, c->url, st.why, st.delay_ms);
        pier_retry_sleep_ms(st.delay_ms);
    }
    pier_http_client_free(client);
    return rc;
}

static const char *status_text(long status)
{
    switch (status) {
    case 400:
        return " Bad Request";
    case 401:
        return " Unauthorized";
    case 403:
        return " Forbidden";
    case 404:
        return " Not Found";
    case 405:
        return " Method Not Allowed";
    case 500:
        return " Internal Server Error";
    case 503:
        return " Service Unavailable";
    default:
        return "";
    }
}

/* ---- env ---- */

int pier_credentials_fetch_env(pier_credentials_fetch_ctx *f, pier_credentials *out)
{
    if (pier_aws_config_profile_from_option(f->cfg))
        return pier_error_set(PIER_ENOTFOUND, "skipped: a profile was given");
    const char *akid = pier_aws_config_env(f->cfg, "AWS_ACCESS_KEY_ID");
    const char *secret = pier_aws_config_env(f->cfg, "AWS_SECRET_ACCESS_KEY");
    const char *token = pier_aws_config_env(f->cfg, "AWS_SESSION_TOKEN");
    if (!akid && !secret)
        return pier_error_set(PIER_ENOTFOUND, "AWS_ACCESS_KEY_ID not set");
    if (!akid)
        return pier_error_set(PIER_EINVALID,
                              "AWS_SECRET_ACCESS_KEY set but AWS_ACCESS_KEY_ID not set");
    if (!secret)
        return pier_error_set(PIER_EINVALID,
                              "AWS_ACCESS_KEY_ID set but AWS_SECRET_ACCESS_KEY not set");
    pier_credentials_fill(out, akid, secret, token, 0, "env", "environment (AWS_ACCESS_KEY_ID)");
    return 0;
}

/* ---- web identity (STS AssumeRoleWithWebIdentity) ---- */

/* Reads the token file (again at every refresh: it rotates) and trades the
 * token for credentials at STS. */
static int assume_role_with_web_identity(pier_credentials_fetch_ctx *f, const char *role_arn,
                                         const char *token_file, const char *session_name,
                                         const char *duration, const char *provider,
                                         const char *source_prefix, pier_credentials *out)
{
    char *endpoint = NULL, *token = NULL;
    char session[64];
    pier_credentials got = {0};
    int rc = pier_sts_endpoint(f->cfg, &endpoint);
    if (rc == 0)
        rc = read_token_file(token_file, "web identity token file", &token);
    if (rc != 0)
        goto done;
    if (!session_name || !*session_name) {
        snprintf(session, sizeof session, "pier-%lld", (long long)f->now);
        session_name = session;
    }
    pier_sts_web_identity_request req = {
        endpoint, role_arn,     session_name,      token,
        duration, f->ch->retry, f->ch->connect_ms, f->ch->timeout_ms};
    rc = pier_sts_assume_role_with_web_identity(&got, &req);
    if (rc != 0)
        goto done;
    pier_buf source = PIER_BUF_INIT;
    pier_buf_printf(&source, "%s%s (session %s, via %s)", source_prefix, role_arn, session_name,
                    endpoint);
    pier_credentials_fill(out, got.access_key_id, got.secret_access_key, got.session_token,
                          got.expiration, provider, pier_buf_cstr(&source));
    pier_buf_free(&source);
done:
    pier_credentials_clear(&got);
    pier_credentials_wipe_free(token);
    free(endpoint);
    return rc;
}

int pier_credentials_fetch_web_identity(pier_credentials_fetch_ctx *f, pier_credentials *out)
{
    const char *file = pier_aws_config_env(f->cfg, "AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *role = pier_aws_config_env(f->cfg, "AWS_ROLE_ARN");
    if (!file && !role)
        return pier_error_set(PIER_ENOTFOUND, "AWS_WEB_IDENTITY_TOKEN_FILE not set");
    if (!file)
        return pier_error_set(PIER_EINVALID,
                              "AWS_ROLE_ARN set but AWS_WEB_IDENTITY_TOKEN_FILE not set");
    if (!role)
        return pier_error_set(PIER_EINVALID,
                              "AWS_WEB_IDENTITY_TOKEN_FILE set but AWS_ROLE_ARN not set");
    return assume_role_with_web_identity(f, role, file,
                                         pier_aws_config_env(f->cfg, "AWS_ROLE_SESSION_NAME"), NULL,
                                         "web-identity", "", out);
}

/* ---- profile ---- */

/* Runs cmd with /bin/sh -c, its stdout into out (capped); *status gets
 * the exit status. stdin and stderr are inherited (a process may prompt). */
static int run_process(const char *cmd, pier_buf *out, int *status)
{
    int fds[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    bool fa_init = false;
    pid_t pid = -1;
    int rc = 0;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return pier_error_set_errno(PIER_EIO, "credential_process: pipe");
    if (posix_spawn_file_actions_init(&fa) != 0) {
        rc = pier_error_set(PIER_EIO, "credential_process: posix_spawn_file_actions_init");
        goto done;
    }
    fa_init = true;
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    int err = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
    if (err != 0) {
        errno = err;
        pid = -1;
        rc = pier_error_set_errno(PIER_EIO, "credential_process: cannot start /bin/sh");
        goto done;
    }
    close(fds[1]);
    fds[1] = -1;
    bool too_big = false;
    for (;;) {
        char buf[4096];
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (!too_big && pier_buf_put(out, buf, (size_t)n) != 0)
            too_big = true;
    }
    if (too_big)
        rc = pier_error_set(PIER_ETOOBIG, "credential_process wrote more than %zu bytes", out->max);
done:
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (pid > 0) {
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        *status = st;
    }
    return rc;
}

static int credential_process(pier_credentials_fetch_ctx *f, const char *cmd, pier_credentials *out)
{
    const char *profile = pier_aws_config_profile(f->cfg);
    char shown[80];
    pier_str_snippet(shown, sizeof shown, cmd, strlen(cmd), 60);
    pier_buf o;
    pier_buf_init(&o, PROCESS_OUTPUT_MAX);
    json_t *j = NULL;
    int status = 0;
    int rc = run_process(cmd, &o, &status);
    if (rc != 0)
        goto done;
    if (WIFSIGNALED(status)) {
        rc = pier_error_set(PIER_EAUTH, "credential_process '%s' was killed by signal %d", shown,
                            WTERMSIG(status));
        goto done;
    }
    if (WEXITSTATUS(status) != 0) {
        rc = pier_error_set(PIER_EAUTH, "credential_process '%s' exited with status %d", shown,
                            WEXITSTATUS(status));
        goto done;
    }
    char what[128];
    snprintf(what, sizeof what, "credential_process '%s'", shown);
    if (pier_json_parse(&j, o.ptr ? o.ptr : "", o.len, what) != 0) {
        rc = pier_error_set(PIER_EINVALID, "%s did not print JSON", what);
        goto done;
    }
    json_t *version = json_object_get(j, "Version");
    if (!json_is_integer(version) || json_integer_value(version) != 1) {
        rc = pier_error_set(PIER_EINVALID, "%s: output needs \"Version\": 1", what);
        goto done;
    }
    pier_buf source = PIER_BUF_INIT;
    pier_buf_printf(&source, "profile %s: credential_process", profile);
    rc = creds_from_json(o.ptr, o.len, what, "SessionToken", false, "profile",
                         pier_buf_cstr(&source), out);
    pier_buf_free(&source);
done:
    json_decref(j);
    if (o.ptr)
        memset(o.ptr, 0, o.len);
    pier_buf_free(&o);
    return rc;
}

int pier_credentials_fetch_profile(pier_credentials_fetch_ctx *f, pier_credentials *out)
{
    pier_aws_config *cfg = f->cfg;
    const char *name = pier_aws_config_profile(cfg);
    bool cfg_exists, cred_exists;
    const char *cfg_file = pier_aws_config_config_file(cfg, &cfg_exists);
    const char *cred_file = pier_aws_config_credentials_file(cfg, &cred_exists);
    if (!pier_aws_config_profile_exists(cfg)) {
        if (!cfg_exists && !cred_exists)
            return pier_error_set(PIER_ENOTFOUND, "no %s or %s", cred_file, cfg_file);
        return pier_error_set(PIER_ENOTFOUND, "no [%s%s] in %s or %s",
                              strcmp(name, "default") == 0 ? "" : "profile ", name, cred_file,
                              cfg_file);
    }
    const char *where = NULL;
    const char *role = pier_aws_config_get(cfg, "role_arn", &where);
    if (role && *role) {
        const char *token_file = pier_aws_config_get(cfg, "web_identity_token_file", NULL);
        if (token_file && *token_file) {
            char *path = pier_aws_config_expand(cfg, token_file);
            if (!path)
                return pier_error_set(PIER_EINVALID,
                                      "%s: web_identity_token_file %s: no home "
                                      "directory to expand '~'",
                                      where, token_file);
            char prefix[160];
            snprintf(prefix, sizeof prefix, "profile %s: ", name);
            int rc = assume_role_with_web_identity(
                f, role, path, pier_aws_config_get(cfg, "role_session_name", NULL),
                pier_aws_config_get(cfg, "duration_seconds", NULL), "profile", prefix, out);
            free(path);
            return rc;
        }
        if (pier_aws_config_get(cfg, "source_profile", NULL) ||
            pier_aws_config_get(cfg, "credential_source", NULL))
            return pier_error_set(PIER_EINVALID,
                                  "%s: role_arn with source_profile or "
                                  "credential_source (AssumeRole chaining) is not supported; "
                                  "use web_identity_token_file or credential_process",
                                  where);
        return pier_error_set(PIER_EINVALID, "%s: role_arn needs web_identity_token_file", where);
    }
    const char *akid = pier_aws_config_get(cfg, "aws_access_key_id", &where);
    if (akid && *akid) {
        const char *secret = pier_aws_config_get(cfg, "aws_secret_access_key", NULL);
        if (!secret || !*secret)
            return pier_error_set(PIER_EINVALID,
                                  "%s: aws_access_key_id without "
                                  "aws_secret_access_key",
                                  where);
        char source[200];
        snprintf(source, sizeof source, "profile %s: keys in %s", name, where);
        pier_credentials_fill(out, akid, secret,
                              pier_aws_config_get(cfg, "aws_session_token", NULL), 0, "profile",
                              source);
        return 0;
    }
    const char *process = pier_aws_config_get(cfg, "credential_process", NULL);
    if (process && *process)
        return credential_process(f, process, out);
    if (pier_aws_config_get(cfg, "sso_session", NULL) ||
        pier_aws_config_get(cfg, "sso_start_url", NULL))
        return pier_error_set(PIER_EINVALID,
                              "uses AWS IAM Identity Center (sso), which pier does "
                              "not read; add: credential_process = aws configure "
                              "export-credentials --profile %s --format process",
                              name);
    return pier_error_set(PIER_ENOTFOUND, "no credentials in the profile (keys, role_arn + "
                                          "web_identity_token_file, or credential_process)");
}

/* ---- container ---- */

static bool container_host_allowed(const char *host)
{
    return pier_host_is_loopback(host) || strcmp(host, "169.254.170.2") == 0 ||
           strcmp(host, "169.254.170.23") == 0 || pier_str_ieq(host, "fd00:ec2::23");
}

int pier_credentials_fetch_container(pier_credentials_fetch_ctx *f, pier_credentials *out)
{
    const char *rel = pier_aws_config_env(f->cfg, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = pier_aws_config_env(f->cfg, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return pier_error_set(PIER_ENOTFOUND, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
                                              "AWS_CONTAINER_CREDENTIALS_FULL_URI not set");
    pier_buf url = PIER_BUF_INIT;
    char *token = NULL;
    pier_url u = {0};
    pier_http_headers headers = {0};
    pier_http_response resp;
    pier_http_response_init(&resp);
    int rc = 0;
    if (rel) {
        pier_buf_printf(&url, "%s%s%s", CONTAINER_HOST, rel[0] == '/' ? "" : "/", rel);
    } else {
        if (pier_url_parse(&u, full) != 0) {
            rc = pier_error_wrap(PIER_EINVALID, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
            goto done;
        }
        if (strcmp(u.scheme, "https") != 0 && !container_host_allowed(u.host)) {
            rc = pier_error_set(PIER_EINVALID,
                                "AWS_CONTAINER_CREDENTIALS_FULL_URI %s: plain "
                                "http is allowed only to a loopback address, 169.254.170.2 or "
                                "169.254.170.23; use https",
                                full);
            goto done;
        }
        pier_buf_puts(&url, full);
    }
    const char *token_file = pier_aws_config_env(f->cfg, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (token_file) {
        rc = read_token_file(token_file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token);
        if (rc != 0)
            goto done;
    } else {
        const char *t = pier_aws_config_env(f->cfg, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
        if (t) {
            if (strpbrk(t, "\r\n")) {
                rc = pier_error_set(PIER_EINVALID,
                                    "AWS_CONTAINER_AUTHORIZATION_TOKEN holds a line break");
                goto done;
            }
            token = pier_strdup(t);
        }
    }
    pier_http_headers_add(&headers, "Accept", "application/json");
    if (token)
        pier_http_headers_add(&headers, "Authorization", token);
    call c = {"GET", pier_buf_cstr(&url), &headers,          NULL,
              0,     f->ch->connect_ms,   f->ch->timeout_ms, true};
    rc = http_call(f, &c, &resp);
    if (rc != 0)
        goto done;
    if (resp.status != 200) {
        char msg[120];
        pier_str_snippet(msg, sizeof msg, resp.body.ptr ? resp.body.ptr : "", resp.body.len, 80);
        rc = pier_error_set(resp.status == 401 || resp.status == 403 ? PIER_EAUTH : PIER_EIO,
                            "%s answered HTTP %ld%s%s%s%s", pier_buf_cstr(&url), resp.status,
                            status_text(resp.status), *msg ? " (" : "", msg, *msg ? ")" : "");
        if (resp.status == 401 || resp.status == 403)
            pier_error_wrap(PIER_EAUTH, "%s",
                            token ? "the authorization token was refused"
                                  : "no authorization token was sent");
        goto done;
    }
    rc = creds_from_json(resp.body.ptr ? resp.body.ptr : "", resp.body.len, pier_buf_cstr(&url),
                         "Token", false, "container", pier_buf_cstr(&url), out);
done:
    pier_credentials_wipe_free(token);
    pier_url_free(&u);
    pier_http_headers_free(&headers);
    pier_http_response_free(&resp);
    pier_buf_free(&url);
    return rc;
}

/* ---- EC2 instance metadata (IMDSv2) ---- */

static int imds_request(pier_credentials_fetch_ctx *f, const char *method, const char *url,
                        const char *token, pier_http_response *resp)
{
    pier_http_headers h = {0};
    char ttl[32];
    if (token) {
        pier_http_headers_add(&h, "X-aws-ec2-metadata-token", token);
    } else {
        snprintf(ttl, sizeof ttl, "%d", IMDS_TOKEN_TTL);
        pier_http_headers_add(&h, "X-aws-ec2-metadata-token-ttl-seconds", ttl);
    }
    call c = {method, url, &h, NULL, 0, f->ch->imds_connect_ms, f->ch->imds_timeout_ms, false};
    int rc = http_call(f, &c, resp);
    if (rc != 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", pier_error_last());
        pier_error_set(rc, "%s (after %.1f s)", msg, resp->seconds);
    }
    pier_http_headers_free(&h);
    return rc;
}

static int imds_token(pier_credentials_fetch_ctx *f, const char *base, bool force, const char **out)
{
    pier_credentials_chain *ch = f->ch;
    if (!force && ch->imds_token && strcmp(ch->imds_token_endpoint, base) == 0 &&
        f->now < ch->imds_token_expiry) {
        *out = ch->imds_token;
        return 0;
    }
    pier_credentials_wipe_free(ch->imds_token);
    ch->imds_token = NULL;
    PIER_FREE(ch->imds_token_endpoint);
    pier_buf url = PIER_BUF_INIT;
    pier_buf_printf(&url, "%s/latest/api/token", base);
    pier_http_response resp;
    pier_http_response_init(&resp);
    int rc = imds_request(f, "PUT", pier_buf_cstr(&url), NULL, &resp);
    if (rc != 0)
        goto done;
    if (resp.status != 200) {
        rc = pier_error_set(PIER_EAUTH, "PUT %s answered HTTP %ld%s: no IMDSv2 session token%s",
                            pier_buf_cstr(&url), resp.status, status_text(resp.status),
                            resp.status == 403 ? " (metadata turned off, or not on EC2?)" : "");
        goto done;
    }
    pier_slice t = pier_slice_trim(pier_buf_slice(&resp.body));
    if (t.len == 0 || memchr(t.ptr, '\n', t.len)) {
        rc = pier_error_set(PIER_EINVALID, "PUT %s: not an IMDSv2 token", pier_buf_cstr(&url));
        goto done;
    }
    ch->imds_token = pier_slice_dup(t);
    ch->imds_token_endpoint = pier_strdup(base);
    /* stop using it a minute early: the server counts from its own clock */
    ch->imds_token_expiry = f->now + IMDS_TOKEN_TTL - 60;
    *out = ch->imds_token;
done:
    pier_http_response_free(&resp);
    pier_buf_free(&url);
    return rc;
}

/* GET with the session token, getting a fresh token once on a 401. */
static int imds_get(pier_credentials_fetch_ctx *f, const char *base, const char *url,
                    pier_http_response *resp)
{
    for (int round = 0; round < 2; round++) {
        const char *token = NULL;
        int rc = imds_token(f, base, round > 0, &token);
        if (rc != 0)
            return rc;
        pier_http_response_free(resp);
        pier_http_response_init(resp);
        rc = imds_request(f, "GET", url, token, resp);
        if (rc != 0 || resp->status != 401)
            return rc;
    }
    return pier_error_set(PIER_EAUTH, "GET %s: the IMDSv2 session token was refused (401)", url);
}

/* IAM role names are [A-Za-z0-9+=,.@_-]: anything else is not a role. */
static bool role_name_ok(pier_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("+=,.@_-", c))))
            return false;
    }
    return true;
}

int pier_credentials_fetch_imds(pier_credentials_fetch_ctx *f, pier_credentials *out)
{
    const char *disabled = pier_aws_config_env(f->cfg, "AWS_EC2_METADATA_DISABLED");
    if (disabled && pier_str_ieq(disabled, "true"))
        return pier_error_set(PIER_ENOTFOUND, "disabled by AWS_EC2_METADATA_DISABLED");
    const char *base = pier_aws_config_env(f->cfg, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (!base)
        base = pier_aws_config_get(f->cfg, "ec2_metadata_service_endpoint", NULL);
    if (!base || !*base) {
        const char *mode = pier_aws_config_env(f->cfg, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
        base = mode && pier_str_ieq(mode, "IPv6") ? IMDS_ENDPOINT_V6 : IMDS_ENDPOINT;
    }
    char *root = pier_strdup(base);
    size_t n = strlen(root);
    while (n > 0 && root[n - 1] == '/')
        root[--n] = '\0';
    pier_buf url = PIER_BUF_INIT, source = PIER_BUF_INIT;
    pier_http_response resp;
    pier_http_response_init(&resp);
    char *role = NULL;
    pier_url u = {0};
    int rc = pier_url_parse(&u, root);
    if (rc != 0) {
        rc = pier_error_wrap(PIER_EINVALID, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
        goto done;
    }
    pier_buf_printf(&url, "%s/latest/meta-data/iam/security-credentials/", root);
    rc = imds_get(f, root, pier_buf_cstr(&url), &resp);
    if (rc != 0)
        goto done;
    if (resp.status == 404) {
        rc = pier_error_set(PIER_ENOTFOUND, "no IAM role is attached to this instance (%s)", root);
        goto done;
    }
    if (resp.status != 200) {
        rc = pier_error_set(PIER_EIO, "GET %s answered HTTP %ld%s", pier_buf_cstr(&url),
                            resp.status, status_text(resp.status));
        goto done;
    }
    pier_slice list = pier_slice_trim(pier_buf_slice(&resp.body));
    const char *nl = memchr(list.ptr, '\n', list.len);
    pier_slice first =
        pier_slice_trim((pier_slice){list.ptr, nl ? (size_t)(nl - list.ptr) : list.len});
    if (first.len == 0 || !role_name_ok(first)) {
        rc = pier_error_set(PIER_ENOTFOUND, "no IAM role is attached to this instance (%s)", root);
        goto done;
    }
    role = pier_slice_dup(first);
    pier_buf_reset(&url);
    pier_buf_printf(&url, "%s/latest/meta-data/iam/security-credentials/", root);
    pier_buf_puts(&url, role);
    rc = imds_get(f, root, pier_buf_cstr(&url), &resp);
    if (rc != 0)
        goto done;
    if (resp.status != 200) {
        rc = pier_error_set(PIER_EIO, "GET %s answered HTTP %ld%s", pier_buf_cstr(&url),
                            resp.status, status_text(resp.status));
        goto done;
    }
    json_t *j = NULL;
    if (pier_json_parse(&j, resp.body.ptr ? resp.body.ptr : "", resp.body.len, "IMDS") == 0) {
        const char *code = pier_json_str(j, "Code", "Success");
        if (strcmp(code, "Success") != 0) {
            char msg[120];
            const char *m = pier_json_str(j, "Message", "");
            pier_str_snippet(msg, sizeof msg, m, strlen(m), 80);
            rc = pier_error_set(PIER_EAUTH, "role %s: IMDS answered Code %s %s", role, code, msg);
        }
        json_decref(j);
        if (rc != 0)
            goto done;
    }
    pier_buf_printf(&source, "instance role %s (%s)", role, root);
    rc = creds_from_json(resp.body.ptr ? resp.body.ptr : "", resp.body.len, pier_buf_cstr(&url),
                         "Token", false, "imds", pier_buf_cstr(&source), out);
done:
    pier_url_free(&u);
    free(role);
    free(root);
    pier_http_response_free(&resp);
    pier_buf_free(&url);
    pier_buf_free(&source);
    return rc;
}
