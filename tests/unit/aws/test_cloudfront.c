/*
 * test_cloudfront: the CloudFront client against a fake CloudFront (pier's
 * libmicrohttpd server on 127.0.0.1) that checks what the real one checks:
 * the SigV4 signature and its scope .../us-east-1/cloudfront/aws4_request,
 * the InvalidationBatch XML (namespace, Quantity, escaped paths), and the
 * CallerReference idempotency rules. It answers 201 + Location + the
 * Invalidation document, and GetInvalidation InProgress twice, then
 * Completed.
 *
 * Scripted failures: a 500 on the first create (the retry must reuse the
 * reference and get the same invalidation), TooManyInvalidationsInProgress
 * N times, NoSuchDistribution for EMISSING, InvalidationBatchAlreadyExists
 * for a reference reused with other paths. Sleeps are faked, retries use a
 * tiny backoff: the test runs in well under a second.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/cloudfront.h"
#include "aws/config.h"
#include "aws/credentials.h"
#include "aws/retry.h"
#include "aws/xml.h"
#include "base/error.h"
#include "base/mem.h"
#include "base/str.h"
#include "fakeaws.h"

#define DIST   "EDFDVBD6EXAMPLE"
#define XMLNS  "http://cloudfront.amazonaws.com/doc/2020-05-31/"
#define SECRET "cf-secret"

/* One invalidation the fake remembers. */
typedef struct {
    char id[16];     /* "I1" ... */
    char *reference; /* its CallerReference */
    char *paths;     /* its paths, joined by '\n' (to compare batches) */
    int gets;        /* GetInvalidation calls so far */
} fake_inv;

typedef struct {
    fake_server fs;                /* the server */
    fake_inv invs[16];             /* created */
    int ninv;                      /* their number */
    int creates;                   /* CreateInvalidation requests seen */
    int fail_500;                  /* answer 500 to this many creates first */
    int too_many;                  /* answer TooManyInvalidationsInProgress this many times */
    int bad_sig;                   /* requests whose signature or scope was wrong */
    int bad_body;                  /* create bodies that were not right */
    char last_paths[4096];         /* paths of the last create, '\n'-joined, as parsed */
    long slept;                    /* total fake sleep */
    int naps;                      /* fake sleeps */
    pier_aws_config *config;       /* empty environment */
    pier_credentials_chain *creds; /* static keys */
    pier_retry *retry;             /* tiny backoff */
    pier_cloudfront *cf;           /* the client */
} world;

static void answer_error(pier_server_req *r, unsigned status, const char *code, const char *msg)
{
    char xml[1024];
    snprintf(xml, sizeof xml,
             "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"" XMLNS "\"><Error><Type>Sender</Type>"
             "<Code>%s</Code><Message>%s</Message></Error><RequestId>rid-1</RequestId>"
             "</ErrorResponse>",
             code, msg);
    fake_xml(r, status, xml, NULL, NULL);
}

static void answer_invalidation(world *w, pier_server_req *r, unsigned status, fake_inv *inv,
                                const char *state)
{
    pier_buf x = PIER_BUF_INIT;
    pier_buf_printf(&x,
                    "<?xml version=\"1.0\"?><Invalidation xmlns=\"" XMLNS "\"><Id>%s</Id>"
                    "<Status>%s</Status><CreateTime>2024-08-30T12:36:00.123Z</CreateTime>"
                    "<InvalidationBatch><Paths><Quantity>1</Quantity><Items>",
                    inv->id, state);
    /* The paths, escaped again. */
    char *paths = pier_strdup(inv->paths);
    char *save = NULL;
    for (char *p = strtok_r(paths, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
        pier_buf_puts(&x, "<Path>");
        pier_xml_escape(&x, p, strlen(p));
        pier_buf_puts(&x, "</Path>");
    }
    free(paths);
    pier_buf_printf(&x,
                    "</Items></Paths><CallerReference>%s</CallerReference>"
                    "</InvalidationBatch></Invalidation>",
                    inv->reference);
    char loc[256];
    snprintf(loc, sizeof loc, "%s/2020-05-31/distribution/" DIST "/invalidation/%s", w->fs.url,
             inv->id);
    fake_xml(r, status, pier_buf_cstr(&x), "Location", loc);
    pier_buf_free(&x);
}

/* Parses a create body: paths joined by '\n' and the reference. */
static bool parse_batch(const fake_req *fr, pier_buf *paths, char **reference)
{
    const char *b = pier_buf_cstr(&fr->body);
    if (!strstr(b, "<InvalidationBatch xmlns=\"" XMLNS "\">"))
        return false;
    pier_xml_doc *d = NULL;
    if (pier_xml_doc_parse(&d, b, fr->body.len, "batch") < 0)
        return false;
    size_t count = 0;
    for (size_t i = 0; i < pier_xml_doc_count(d); i++) {
        const char *path, *text;
        pier_xml_doc_at(d, i, &path, &text);
        if (strcmp(path, "InvalidationBatch/Paths/Items/Path") == 0) {
            if (paths->len)
                pier_buf_putc(paths, '\n');
            pier_buf_puts(paths, text);
            count++;
        }
    }
    const char *q = pier_xml_doc_get(d, "InvalidationBatch/Paths/Quantity");
    const char *ref = pier_xml_doc_get(d, "InvalidationBatch/CallerReference");
    uint64_t quantity = 0;
    bool ok = q && pier_parse_u64(q, &quantity) == 0 && quantity == count && ref && ref[0];
    if (ok)
        *reference = pier_strdup(ref);
    pier_xml_doc_free(d);
    return ok;
}

static void cf_answer(void *ctx, const fake_req *fr, pier_server_req *r)
{
    world *w = ctx;
    if (fr->sig != PIER_SIGV4_OK || strcmp(fr->region, "us-east-1") != 0 ||
        strcmp(fr->service, "cloudfront") != 0) {
        w->bad_sig++;
        answer_error(r, 403, "SignatureDoesNotMatch", "bad signature or scope");
        return;
    }
    const char *auth = pier_http_headers_get(&fr->headers, "Authorization");
    if (!auth || !strstr(auth, "/us-east-1/cloudfront/aws4_request")) {
        w->bad_sig++;
        answer_error(r, 403, "IncompleteSignature", "scope");
        return;
    }
    const char *base = "/2020-05-31/distribution/";
    if (!pier_str_starts_with(fr->path, base)) {
        answer_error(r, 404, "NotFound", "no route");
        return;
    }
    const char *rest = fr->path + strlen(base);
    if (pier_str_starts_with(rest, "EMISSING/")) {
        answer_error(r, 404, "NoSuchDistribution", "The specified distribution does not exist.");
        return;
    }
    if (!pier_str_starts_with(rest, DIST "/invalidation")) {
        answer_error(r, 404, "NotFound", "no route");
        return;
    }
    rest += strlen(DIST "/invalidation");

    if (strcmp(fr->method, "POST") == 0 && rest[0] == '\0') {
        w->creates++;
        pier_buf paths = PIER_BUF_INIT;
        char *ref = NULL;
        if (!parse_batch(fr, &paths, &ref)) {
            w->bad_body++;
            answer_error(r, 400, "MalformedXML", "bad batch");
            pier_buf_free(&paths);
            return;
        }
        snprintf(w->last_paths, sizeof w->last_paths, "%s", pier_buf_cstr(&paths));
        if (w->fail_500 > 0) {
            w->fail_500--;
            /* Created, but the answer is lost: the retry must find it. */
            fake_inv *inv = &w->invs[w->ninv++];
            snprintf(inv->id, sizeof inv->id, "I%d", w->ninv);
            inv->reference = ref;
            inv->paths = pier_buf_detach(&paths);
            answer_error(r, 500, "InternalError", "try again");
            return;
        }
        if (w->too_many > 0) {
            w->too_many--;
            answer_error(r, 400, "TooManyInvalidationsInProgress", "Processing your request");
            free(ref);
            pier_buf_free(&paths);
            return;
        }
        for (int i = 0; i < w->ninv; i++) {
            if (strcmp(w->invs[i].reference, ref) == 0) {
                if (strcmp(w->invs[i].paths, pier_buf_cstr(&paths)) == 0)
                    answer_invalidation(w, r, 201, &w->invs[i], "InProgress");
                else
                    answer_error(r, 409, "InvalidationBatchAlreadyExists",
                                 "The caller reference was already used.");
                free(ref);
                pier_buf_free(&paths);
                return;
            }
        }
        fake_inv *inv = &w->invs[w->ninv++];
        snprintf(inv->id, sizeof inv->id, "I%d", w->ninv);
        inv->reference = ref;
        inv->paths = pier_buf_detach(&paths);
        answer_invalidation(w, r, 201, inv, "InProgress");
        return;
    }
    if (strcmp(fr->method, "GET") == 0 && rest[0] == '/') {
        for (int i = 0; i < w->ninv; i++) {
            if (strcmp(w->invs[i].id, rest + 1) == 0) {
                fake_inv *inv = &w->invs[i];
                inv->gets++;
                answer_invalidation(w, r, 200, inv, inv->gets <= 2 ? "InProgress" : "Completed");
                return;
            }
        }
        answer_error(r, 404, "NoSuchInvalidation", "The specified invalidation does not exist.");
        return;
    }
    if (strcmp(fr->method, "GET") == 0 && rest[0] == '\0') {
        /* ListInvalidations: one page per invalidation, to test paging. */
        const char *marker = strstr(fr->query, "Marker=");
        int from = 0;
        if (marker)
            from = (int)strtol(marker + 8, NULL, 10); /* after "I<n>" comes index n */
        pier_buf x = PIER_BUF_INIT;
        pier_buf_puts(&x, "<?xml version=\"1.0\"?><InvalidationList xmlns=\"" XMLNS "\">");
        bool more = from + 1 < w->ninv;
        pier_buf_printf(&x, "<IsTruncated>%s</IsTruncated><Items>", more ? "true" : "false");
        if (from < w->ninv)
            pier_buf_printf(&x,
                            "<InvalidationSummary><CreateTime>2024-08-30T12:36:00Z</CreateTime>"
                            "<Id>%s</Id><Status>Completed</Status></InvalidationSummary>",
                            w->invs[from].id);
        pier_buf_puts(&x, "</Items>");
        if (more)
            pier_buf_printf(&x, "<NextMarker>%s</NextMarker>", w->invs[from].id);
        pier_buf_puts(&x, "<MaxItems>100</MaxItems><Quantity>1</Quantity></InvalidationList>");
        fake_xml(r, 200, pier_buf_cstr(&x), NULL, NULL);
        pier_buf_free(&x);
        return;
    }
    answer_error(r, 405, "MethodNotAllowed", "no");
}

static void fake_sleep(void *ctx, long ms)
{
    world *w = ctx;
    w->slept += ms;
    w->naps++;
}

static int setup(void **state)
{
    unsetenv("AWS_CA_BUNDLE");
    world *w = pier_calloc(1, sizeof *w);
    if (fake_start(&w->fs, cf_answer, w, SECRET, false) < 0)
        return -1;
    /* CloudFront must still sign for us-east-1 */
    if (fake_client_setup(&w->config, &w->creds, &w->retry, "eu-west-3", "AKIDCLOUDFRONT", SECRET) <
        0)
        return -1;
    pier_cloudfront_options o = PIER_CLOUDFRONT_OPTIONS_INIT;
    o.shared.config = w->config;
    o.shared.credentials = w->creds;
    o.shared.retry = w->retry;
    o.shared.endpoint_url = w->fs.url;
    if (pier_cloudfront_new(&w->cf, &o) < 0)
        return -1;
    pier_cloudfront_set_sleep(w->cf, fake_sleep, w);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    pier_cloudfront_free(w->cf);
    fake_stop(&w->fs);
    for (int i = 0; i < w->ninv; i++) {
        free(w->invs[i].reference);
        free(w->invs[i].paths);
    }
    pier_retry_free(w->retry);
    pier_credentials_chain_free(w->creds);
    pier_aws_config_free(w->config);
    free(w);
    return 0;
}

/* Each test starts from a fresh fake state. */
static int reset(void **state)
{
    world *w = *state;
    for (int i = 0; i < w->ninv; i++) {
        free(w->invs[i].reference);
        free(w->invs[i].paths);
    }
    memset(w->invs, 0, sizeof w->invs);
    w->ninv = w->creates = w->fail_500 = w->too_many = w->bad_sig = w->bad_body = 0;
    w->slept = 0;
    w->naps = 0;
    return 0;
}

static void test_create_and_wait(void **state)
{
    world *w = *state;
    const char *paths[] = {"/index.html", "/assets/*"};
    pier_cloudfront_invalidation inv;
    pier_cloudfront_invalidation_init(&inv);
    pier_cloudfront_wait_options wo = PIER_CLOUDFRONT_WAIT_OPTIONS_INIT;
    int rc = pier_cloudfront_invalidate(w->cf, DIST, paths, 2, "run-1", &wo, &inv);
    if (rc < 0)
        fail_msg("invalidate: %s", pier_error_last());
    assert_string_equal(inv.id, "I1");
    assert_string_equal(inv.status, "Completed");
    assert_int_equal(inv.create_time, 1725021360);
    assert_string_equal(inv.caller_reference, "run-1");
    assert_int_equal(inv.path_count, 2);
    assert_string_equal(inv.paths[0], "/index.html");
    assert_string_equal(inv.paths[1], "/assets/*");
    assert_non_null(inv.location);
    assert_true(pier_str_ends_with(inv.location, "/invalidation/I1"));
    assert_int_equal(w->bad_sig, 0);
    assert_int_equal(w->bad_body, 0);
    assert_int_equal(w->invs[0].gets, 3); /* InProgress, InProgress, Completed */
    /* Polls: 1 s, then growing by half (1.5 s, 2.25 s). */
    assert_int_equal(w->naps, 3);
    assert_int_equal(w->slept, 1000 + 1500 + 2250);
    pier_cloudfront_invalidation_free(&inv);

    /* Create alone answers InProgress; Get finds it. */
    const char *one[] = {"/a"};
    pier_cloudfront_invalidation_init(&inv);
    assert_int_equal(pier_cloudfront_create_invalidation(w->cf, DIST, one, 1, "run-2", NULL, &inv),
                     0);
    assert_string_equal(inv.status, "InProgress");
    assert_string_equal(inv.id, "I2");
    pier_cloudfront_invalidation got;
    pier_cloudfront_invalidation_init(&got);
    assert_int_equal(pier_cloudfront_get_invalidation(w->cf, DIST, "I2", &got), 0);
    assert_string_equal(got.id, "I2");
    pier_cloudfront_invalidation_free(&got);
    pier_cloudfront_invalidation_free(&inv);
}

static void test_retry_after_500_is_idempotent(void **state)
{
    world *w = *state;
    w->fail_500 = 1;
    const char *paths[] = {"/x.html"};
    pier_cloudfront_invalidation inv;
    pier_cloudfront_invalidation_init(&inv);
    int rc = pier_cloudfront_create_invalidation(w->cf, DIST, paths, 1, "run-500", NULL, &inv);
    if (rc < 0)
        fail_msg("create: %s", pier_error_last());
    assert_int_equal(w->creates, 2);   /* the 500, then the retry */
    assert_int_equal(w->ninv, 1);      /* one invalidation, not two */
    assert_string_equal(inv.id, "I1"); /* the retry got the first one back */
    assert_string_equal(inv.caller_reference, "run-500");
    pier_cloudfront_invalidation_free(&inv);

    /* The same reference with other paths: an error naming the cause. */
    const char *other[] = {"/y.html"};
    rc = pier_cloudfront_create_invalidation(w->cf, DIST, other, 1, "run-500", NULL, NULL);
    assert_int_equal(rc, PIER_ECONFLICT);
    assert_non_null(strstr(pier_error_last(), "caller reference was already used"));
}

static void test_too_many_waited_out(void **state)
{
    world *w = *state;
    w->too_many = 3;
    const char *paths[] = {"/busy"};
    pier_cloudfront_invalidation inv;
    pier_cloudfront_invalidation_init(&inv);
    int rc = pier_cloudfront_create_invalidation(w->cf, DIST, paths, 1, "run-busy", NULL, &inv);
    if (rc < 0)
        fail_msg("create: %s", pier_error_last());
    assert_int_equal(w->creates, 4);
    assert_int_equal(w->naps, 3);
    assert_int_equal(w->slept, 1000 + 2000 + 4000);
    assert_string_equal(inv.id, "I1");
    pier_cloudfront_invalidation_free(&inv);

    /* Busy for longer than busy_timeout_ms: PIER_ETIMEOUT, named. */
    reset(state);
    w->too_many = 100;
    pier_cloudfront_wait_options wo = PIER_CLOUDFRONT_WAIT_OPTIONS_INIT;
    wo.busy_timeout_ms = 10000;
    rc = pier_cloudfront_create_invalidation(w->cf, DIST, paths, 1, "run-busy2", &wo, NULL);
    assert_int_equal(rc, PIER_ETIMEOUT);
    assert_non_null(strstr(pier_error_last(), "TooManyInvalidationsInProgress"));
    assert_non_null(strstr(pier_error_last(), DIST));
    assert_true(w->slept <= 10000);
}

static void test_wait_timeout(void **state)
{
    world *w = *state;
    const char *paths[] = {"/slow"};
    pier_cloudfront_invalidation inv;
    pier_cloudfront_invalidation_init(&inv);
    assert_int_equal(
        pier_cloudfront_create_invalidation(w->cf, DIST, paths, 1, "run-slow", NULL, &inv), 0);
    pier_cloudfront_wait_options wo = PIER_CLOUDFRONT_WAIT_OPTIONS_INIT;
    wo.timeout_ms = 2000; /* room for one poll only (1 s + 1.5 s > 2 s) */
    int rc = pier_cloudfront_wait(w->cf, DIST, inv.id, &wo, NULL);
    assert_int_equal(rc, PIER_ETIMEOUT);
    assert_non_null(strstr(pier_error_last(), "still InProgress"));
    pier_cloudfront_invalidation_free(&inv);
}

static void test_errors(void **state)
{
    world *w = *state;
    const char *paths[] = {"/a"};
    int rc = pier_cloudfront_create_invalidation(w->cf, "EMISSING", paths, 1, "r", NULL, NULL);
    assert_int_equal(rc, PIER_ENOTFOUND);
    assert_string_equal(pier_error_last(), "no such CloudFront distribution: EMISSING");

    pier_cloudfront_invalidation none;
    pier_cloudfront_invalidation_init(&none);
    rc = pier_cloudfront_get_invalidation(w->cf, DIST, "INOPE", &none);
    assert_int_equal(rc, PIER_ENOTFOUND);
    assert_non_null(strstr(pier_error_last(), "INOPE"));
    pier_cloudfront_invalidation_free(&none);

    /* Bad input, refused before sending. */
    const char *rel[] = {"index.html"};
    assert_int_equal(pier_cloudfront_create_invalidation(w->cf, DIST, rel, 1, "r", NULL, NULL),
                     PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "must start with '/'"));
    assert_int_equal(pier_cloudfront_create_invalidation(w->cf, DIST, paths, 0, "r", NULL, NULL),
                     PIER_EINVALID);
    assert_int_equal(pier_cloudfront_create_invalidation(w->cf, DIST, paths, 1, "", NULL, NULL),
                     PIER_EINVALID);
    const char *ctl[] = {"/bad\x01path"};
    assert_int_equal(pier_cloudfront_create_invalidation(w->cf, DIST, ctl, 1, "r", NULL, NULL),
                     PIER_EINVALID);
    assert_int_equal(w->creates, 0);

    /* A wrong secret: the fake refuses the signature. */
    pier_credentials_chain *bad = NULL;
    assert_int_equal(pier_credentials_chain_new_static(&bad, "AKIDCLOUDFRONT", "nope", NULL), 0);
    pier_cloudfront_options o = PIER_CLOUDFRONT_OPTIONS_INIT;
    o.shared.config = w->config;
    o.shared.credentials = bad;
    o.shared.retry = w->retry;
    o.shared.endpoint_url = w->fs.url;
    pier_cloudfront *cf = NULL;
    assert_int_equal(pier_cloudfront_new(&cf, &o), 0);
    rc = pier_cloudfront_create_invalidation(cf, DIST, paths, 1, "r", NULL, NULL);
    assert_int_equal(rc, PIER_EAUTH);
    assert_non_null(strstr(pier_error_last(), "secret access key"));
    pier_cloudfront_free(cf);
    pier_credentials_chain_free(bad);

    char *id = NULL;
    assert_int_equal(pier_cloudfront_parse_uri("cloudfront://E2QWRUHAPOMQZL", &id), 0);
    assert_string_equal(id, "E2QWRUHAPOMQZL");
    free(id);
    assert_int_equal(pier_cloudfront_parse_uri("E2QWRUHAPOMQZL", &id), 0);
    free(id);
    assert_int_equal(pier_cloudfront_parse_uri("cloudfront://e2q/x", &id), PIER_EINVALID);
    assert_int_equal(pier_cloudfront_parse_uri("s3://bucket", &id), PIER_EINVALID);
}

static void test_paths_escaped(void **state)
{
    world *w = *state;
    const char *paths[] = {"/a b.html", "/q&a/<x>.html", "/\"quoted\"/'s", "/caf\xc3\xa9/*"};
    pier_cloudfront_invalidation inv;
    pier_cloudfront_invalidation_init(&inv);
    int rc = pier_cloudfront_create_invalidation(w->cf, DIST, paths, 4, "run-esc", NULL, &inv);
    if (rc < 0)
        fail_msg("create: %s", pier_error_last());
    assert_int_equal(w->bad_body, 0);
    /* The fake parsed exactly the paths sent, and the answer round-trips. */
    assert_string_equal(w->last_paths, "/a b.html\n/q&a/<x>.html\n/\"quoted\"/'s\n/caf\xc3\xa9/*");
    assert_int_equal(inv.path_count, 4);
    for (size_t i = 0; i < 4; i++)
        assert_string_equal(inv.paths[i], paths[i]);
    pier_cloudfront_invalidation_free(&inv);
}

typedef struct {
    int n;         /* invalidations seen */
    char ids[512]; /* their ids, space-separated */
} listing;

static int list_fn(void *ctx, const pier_cloudfront_invalidation *inv)
{
    listing *l = ctx;
    l->n++;
    size_t len = strlen(l->ids);
    snprintf(l->ids + len, sizeof l->ids - len, "%s%s", len ? " " : "", inv->id);
    return 0;
}

static void test_list(void **state)
{
    world *w = *state;
    const char *p1[] = {"/1"}, *p2[] = {"/2"}, *p3[] = {"/3"};
    assert_int_equal(pier_cloudfront_create_invalidation(w->cf, DIST, p1, 1, "l1", NULL, NULL), 0);
    assert_int_equal(pier_cloudfront_create_invalidation(w->cf, DIST, p2, 1, "l2", NULL, NULL), 0);
    assert_int_equal(pier_cloudfront_create_invalidation(w->cf, DIST, p3, 1, "l3", NULL, NULL), 0);
    listing l = {0, ""};
    int rc = pier_cloudfront_list_invalidations(w->cf, DIST, list_fn, &l);
    if (rc < 0)
        fail_msg("list: %s", pier_error_last());
    assert_int_equal(l.n, 3);
    assert_string_equal(l.ids, "I1 I2 I3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_create_and_wait, reset),
        cmocka_unit_test_setup(test_retry_after_500_is_idempotent, reset),
        cmocka_unit_test_setup(test_too_many_waited_out, reset),
        cmocka_unit_test_setup(test_wait_timeout, reset),
        cmocka_unit_test_setup(test_errors, reset),
        cmocka_unit_test_setup(test_paths_escaped, reset),
        cmocka_unit_test_setup(test_list, reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
