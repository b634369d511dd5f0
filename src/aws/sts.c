/*
 * sts: see sts.h. One POST per attempt on a client made for the call; the
 * answer (a few KiB) is read whole and looked up by path.
 */
#include "aws/sts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/xml.h"
#include "base/buf.h"
#include "base/error.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/str.h"
#include "net/http.h"

#define RESULT "AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/"

static bool valid_region(const char *r)
{
    if (!*r)
        return false;
    for (const char *p = r; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    return true;
}

int pier_sts_endpoint(const pier_aws_config *cfg, char **out)
{
    *out = NULL;
    const char *e = pier_aws_config_endpoint(cfg, "STS");
    if (e) {
        *out = pier_strdup(e);
        return 0;
    }
    const char *region = pier_aws_config_region(cfg);
    if (!region) {
        *out = pier_strdup("https://sts.amazonaws.com");
        return 0;
    }
    if (!valid_region(region))
        return pier_error_set(PIER_EINVALID, "region '%s' is not a region name", region);
    pier_buf b = PIER_BUF_INIT;
    pier_buf_printf(&b, "https://sts.%s.%s", region,
                    pier_str_starts_with(region, "cn-") ? "amazonaws.com.cn" : "amazonaws.com");
    *out = pier_buf_detach(&b);
    return 0;
}

static void form_param(pier_buf *b, const char *name, const char *value)
{
    if (b->len)
        pier_buf_putc(b, '&');
    pier_buf_puts(b, name);
    pier_buf_putc(b, '=');
    pier_uri_encode(b, value, strlen(value), false);
}

/* POSTs body, retrying per the policy. 0 when a response arrived. */
static int post(const pier_sts_web_identity_request *req, const pier_buf *body,
                pier_http_response *resp)
{
    pier_http_client_options co = PIER_HTTP_CLIENT_OPTIONS_INIT;
    co.connect_timeout_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms : 2000;
    co.allow_insecure_http = true; /* an endpoint the user configured (a local test STS) */
    pier_http_client *client = NULL;
    int rc = pier_http_client_new(&client, &co);
    if (rc != 0)
        return rc;
    pier_retry_state st = PIER_RETRY_STATE_INIT;
    for (;;) {
        pier_http_request r = PIER_HTTP_REQUEST_INIT;
        r.method = "POST";
        r.url = req->endpoint;
        pier_http_headers_add(&r.headers, "Content-Type",
                              "application/x-www-form-urlencoded; charset=utf-8");
        pier_http_headers_add(&r.headers, "Accept", "text/xml");
        r.body = body->ptr;
        r.body_len = body->len;
        r.connect_timeout_ms = co.connect_timeout_ms;
        r.timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 10000;
        r.response_max = 1 << 20;
        pier_http_response_free(resp);
        pier_http_response_init(resp);
        rc = pier_http_do(client, &r, resp);
        pier_http_headers_free(&r.headers);
        char saved[1024]; /* the transfer's message, kept across the parsing below */
        snprintf(saved, sizeof saved, "%s", pier_error_last());
        pier_retry_outcome o = {0};
        o.rc = rc;
        o.transport = resp->transport;
        o.status = resp->status;
        o.date = pier_http_headers_get(&resp->headers, "Date");
        pier_xml_aws_error err = {0};
        if (rc == 0 && resp->status >= 400 &&
            pier_xml_parse_aws_error(&err, pier_buf_cstr(&resp->body), resp->body.len) == 0) {
            o.error_code = err.code;
            o.transient = strcmp(err.code, "IDPCommunicationError") == 0;
        }
        pier_retry_verdict v = pier_retry_next(req->retry, &st, &o);
        pier_xml_aws_error_free(&err);
        if (v != PIER_RETRY_AGAIN) {
            if (rc != 0)
                pier_error_set(rc, "%s", saved);
            break;
        }
        PIER_DEBUG("STS %s: retrying (%s) in %ld ms", req->endpoint, st.why, st.delay_ms);
        pier_retry_sleep_ms(st.delay_ms);
    }
    pier_http_client_free(client);
    return rc;
}

static int refused(const pier_sts_web_identity_request *req, const pier_http_response *resp)
{
    const char *body = pier_buf_cstr(&resp->body);
    pier_xml_aws_error err;
    int rc;
    if (pier_xml_parse_aws_error(&err, body, resp->body.len) == 0) {
        char msg[160];
        pier_str_snippet(msg, sizeof msg, err.message ? err.message : "",
                         err.message ? strlen(err.message) : 0, 120);
        rc = pier_error_set(PIER_EAUTH, "STS %s refused AssumeRoleWithWebIdentity for %s: %s%s%s",
                            req->endpoint, req->role_arn, err.code, *msg ? ": " : "", msg);
        pier_xml_aws_error_free(&err);
        return rc;
    }
    char msg[120];
    pier_str_snippet(msg, sizeof msg, body, resp->body.len, 80);
    return pier_error_set(PIER_EAUTH,
                          "STS %s answered HTTP %ld to AssumeRoleWithWebIdentity for %s%s%s",
                          req->endpoint, resp->status, req->role_arn, *msg ? ": " : "", msg);
}

int pier_sts_assume_role_with_web_identity(pier_credentials *out,
                                           const pier_sts_web_identity_request *req)
{
    memset(out, 0, sizeof *out);
    pier_buf body = PIER_BUF_INIT;
    pier_http_response resp;
    pier_http_response_init(&resp);
    pier_xml_doc *doc = NULL;
    int rc = 0;

    form_param(&body, "Action", "AssumeRoleWithWebIdentity");
    form_param(&body, "Version", "2011-06-15");
    form_param(&body, "RoleArn", req->role_arn);
    form_param(&body, "RoleSessionName", req->role_session_name);
    if (req->duration_seconds && *req->duration_seconds)
        form_param(&body, "DurationSeconds", req->duration_seconds);
    form_param(&body, "WebIdentityToken", req->web_identity_token);
    rc = post(req, &body, &resp);
    if (rc != 0) {
        rc = pier_error_wrap(rc, "STS AssumeRoleWithWebIdentity for %s", req->role_arn);
        goto done;
    }
    if (resp.status != 200) {
        rc = refused(req, &resp);
        goto done;
    }
    rc = pier_xml_doc_parse(&doc, pier_buf_cstr(&resp.body), resp.body.len, req->endpoint);
    if (rc != 0)
        goto done;
    const char *akid = pier_xml_doc_get(doc, RESULT "Credentials/AccessKeyId");
    const char *secret = pier_xml_doc_get(doc, RESULT "Credentials/SecretAccessKey");
    const char *token = pier_xml_doc_get(doc, RESULT "Credentials/SessionToken");
    const char *exp = pier_xml_doc_get(doc, RESULT "Credentials/Expiration");
    const char *arn = pier_xml_doc_get(doc, RESULT "AssumedRoleUser/Arn");
    time_t expiration;
    if (!akid || !*akid || !secret || !*secret || !token || !*token || !exp) {
        rc = pier_error_set(PIER_EINVALID,
                            "STS %s: the AssumeRoleWithWebIdentity answer lacks Credentials",
                            req->endpoint);
        goto done;
    }
    if (pier_time_parse(exp, &expiration) != 0) {
        rc = pier_error_set(PIER_EINVALID, "STS %s: Expiration '%s' is not an ISO 8601 time",
                            req->endpoint, exp);
        goto done;
    }
    out->access_key_id = pier_strdup(akid);
    out->secret_access_key = pier_strdup(secret);
    out->session_token = pier_strdup(token);
    out->expiration = (int64_t)expiration;
    out->source = pier_strdup(arn && *arn ? arn : req->role_arn);
done:
    if (body.ptr) /* it holds the token */
        memset(body.ptr, 0, body.len);
    pier_buf_free(&body);
    pier_http_response_free(&resp);
    pier_xml_doc_free(doc);
    return rc;
}
