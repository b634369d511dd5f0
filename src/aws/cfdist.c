/*
 * cfdist: GetDistribution, read for the origin path in front of a bucket
 * (see cfdist.h). One signed GET on a short-lived awsreq client; the
 * answer (a few KiB) is parsed whole with pier_xml_doc and walked in
 * document order, one Origin at a time.
 */
#include "aws/cfdist.h"

#include <stdlib.h>
#include <string.h>

#include "aws/cloudfront.h"
#include "aws/xml.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"

typedef struct {
    char *id;     /* Origin/Id */
    char *domain; /* Origin/DomainName */
    char *path;   /* Origin/OriginPath ("" when absent) */
} origin;

static void origin_clear(origin *o)
{
    free(o->id);
    free(o->domain);
    free(o->path);
    memset(o, 0, sizeof *o);
}

static void set(char **dst, const char *v)
{
    free(*dst);
    *dst = pier_strdup(v ? v : "");
}

/* True when domain is an S3 (REST or website) endpoint of bucket. */
static bool names_bucket(const char *domain, const char *bucket)
{
    size_t n = strlen(bucket);
    if (!domain || strncmp(domain, bucket, n) != 0 || domain[n] != '.')
        return false;
    return pier_str_starts_with(domain + n + 1, "s3.") ||
           pier_str_starts_with(domain + n + 1, "s3-");
}

/* The suffix of an element path under DistributionConfig (GetDistribution
 * nests it in Distribution/, GetDistributionConfig does not), or NULL. */
static const char *under_config(const char *path)
{
    const char *p = strstr(path, "DistributionConfig/");
    return p ? p + strlen("DistributionConfig/") : NULL;
}

int pier_cloudfront_origin_path(char **origin_path, const pier_awsreq_shared *shared,
                                const char *distribution_id, const char *bucket)
{
    pier_awsreq_client *c = NULL;
    pier_awsreq_call call;
    pier_buf url = PIER_BUF_INIT, what = PIER_BUF_INIT, path = PIER_BUF_INIT;
    pier_xml_doc *doc = NULL;
    origin cur = {0}, *all = NULL;
    size_t count = 0;
    char *target = NULL;
    pier_awsreq_call_init(&call);
    *origin_path = NULL;
    int rc = 0;
    if (!distribution_id || !*distribution_id) {
        rc = pier_error_set(PIER_EINVALID, "GetDistribution: empty distribution id");
        goto done;
    }
    pier_awsreq_service svc = {"CloudFront", "cloudfront", PIER_CLOUDFRONT_REGION,
                               false,        NULL,         NULL};
    if ((rc = pier_awsreq_client_new(&c, &svc, shared)) < 0)
        goto done;
    const char *endpoint = pier_awsreq_client_endpoint(c);
    pier_buf_puts(&path, "/" PIER_CLOUDFRONT_API_VERSION "/distribution/");
    pier_uri_encode(&path, distribution_id, strlen(distribution_id), false);
    if ((rc = pier_awsreq_url(&url, endpoint ? endpoint : PIER_CLOUDFRONT_ENDPOINT,
                              pier_buf_cstr(&path), NULL)) < 0)
        goto done;
    pier_buf_printf(&what, "distribution %s", distribution_id);
    call.operation = "GetDistribution";
    call.method = "GET";
    call.url = pier_buf_detach(&url);
    call.what = pier_buf_detach(&what);
    call.response_max = (size_t)4 << 20;
    if ((rc = pier_awsreq_do(c, &call)) < 0)
        goto done;
    if ((rc = pier_xml_doc_parse(&doc, call.resp.body.ptr ? call.resp.body.ptr : "",
                                 call.resp.body.len, "GetDistribution answer")) < 0)
        goto done;
    for (size_t i = 0; i < pier_xml_doc_count(doc); i++) {
        const char *p, *text;
        pier_xml_doc_at(doc, i, &p, &text);
        const char *s = under_config(p);
        if (!s)
            continue;
        if (!strcmp(s, "Origins/Items/Origin/Id"))
            set(&cur.id, text);
        else if (!strcmp(s, "Origins/Items/Origin/DomainName"))
            set(&cur.domain, text);
        else if (!strcmp(s, "Origins/Items/Origin/OriginPath"))
            set(&cur.path, text);
        else if (!strcmp(s, "Origins/Items/Origin")) {
            all = pier_realloc(all, (count + 1) * sizeof *all);
            all[count++] = cur;
            memset(&cur, 0, sizeof cur);
        } else if (!strcmp(s, "DefaultCacheBehavior/TargetOriginId"))
            set(&target, text);
    }
    const origin *pick = NULL;
    for (size_t i = 0; i < count && !pick; i++)
        if (names_bucket(all[i].domain, bucket))
            pick = &all[i];
    for (size_t i = 0; i < count && !pick; i++)
        if (target && all[i].id && !strcmp(all[i].id, target))
            pick = &all[i];
    if (!pick && count == 1)
        pick = &all[0];
    if (!pick) {
        rc = pier_error_set(PIER_ENOTFOUND,
                            "distribution %s has no origin for bucket %s (and no default "
                            "origin to assume)",
                            distribution_id, bucket);
        goto done;
    }
    *origin_path = pier_strdup(pick->path ? pick->path : "");

done:
    for (size_t i = 0; i < count; i++)
        origin_clear(&all[i]);
    free(all);
    origin_clear(&cur);
    free(target);
    pier_xml_doc_free(doc);
    pier_awsreq_call_free(&call);
    pier_awsreq_client_free(c);
    pier_buf_free(&url);
    pier_buf_free(&what);
    pier_buf_free(&path);
    return rc;
}
