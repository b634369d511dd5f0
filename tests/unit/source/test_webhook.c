/*
 * test_webhook: signatures and payloads of GitHub, GitLab and Gitea push
 * events. GitHub's documented test vector; tokens; wrong, missing,
 * malformed signatures and altered bodies are PIER_EAUTH before any
 * parsing; pushes, branch deletions, new branches, tags and pings parse.
 * Payloads are trimmed copies of the providers' documented examples.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/str.h"
#include "source/webhook.h"

/* A header table the lookup callback searches case-insensitively. */
typedef struct {
    const char *name;
    const char *value;
} hdr;

static const char *lookup(void *ctx, const char *name)
{
    for (const hdr *h = ctx; h->name; h++)
        if (strcasecmp(h->name, name) == 0)
            return h->value;
    return NULL;
}

static const char *SECRET = "It's a Secret to Everybody";

/* "sha256=" + hex HMAC of body with SECRET, into out (72 bytes). */
static void sign(char *out, const char *secret, const char *body, bool prefix)
{
    unsigned char mac[PIER_SHA256_LEN];
    pier_hmac_sha256(mac, secret, strlen(secret), body, strlen(body));
    char hex[65];
    pier_hex_encode(hex, mac, sizeof mac);
    snprintf(out, 72, "%s%s", prefix ? "sha256=" : "", hex);
}

static void test_github_documented_vector(void **st)
{
    (void)st;
    const char *body = "Hello, World!";
    const char *sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_int_equal(pier_webhook_verify_github(SECRET, sig, body, strlen(body)), 0);
    /* Upper-case hex is the same signature. */
    assert_int_equal(pier_webhook_verify_github(
                         SECRET,
                         "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17",
                         body, strlen(body)),
                     0);
    char mine[72];
    sign(mine, SECRET, body, true);
    assert_string_equal(mine, sig);
}

static void test_github_refusals(void **st)
{
    (void)st;
    const char *body = "Hello, World!";
    const char *sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    /* altered body */
    assert_int_equal(pier_webhook_verify_github(SECRET, sig, "Hello, World?", 13), PIER_EAUTH);
    assert_non_null(strstr(pier_error_last(), "does not match"));
    /* a body one byte shorter */
    assert_int_equal(pier_webhook_verify_github(SECRET, sig, body, strlen(body) - 1), PIER_EAUTH);
    /* wrong secret */
    assert_int_equal(
        pier_webhook_verify_github("It's a secret to everybody", sig, body, strlen(body)),
        PIER_EAUTH);
    /* missing header */
    assert_int_equal(pier_webhook_verify_github(SECRET, NULL, body, strlen(body)), PIER_EAUTH);
    assert_non_null(strstr(pier_error_last(), "no X-Hub-Signature-256"));
    /* no secret configured: refuse rather than accept anything */
    assert_int_equal(pier_webhook_verify_github("", sig, body, strlen(body)), PIER_EAUTH);
    assert_int_equal(pier_webhook_verify_github(NULL, sig, body, strlen(body)), PIER_EAUTH);
    assert_non_null(strstr(pier_error_last(), "no secret"));
    /* malformed */
    static const char *bad[] = {
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", /* no prefix */
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1", /* 63 */
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e177",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g",
        "sha256=",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = pier_webhook_verify_github(SECRET, bad[i], body, strlen(body));
        if (rc != PIER_EAUTH)
            fail_msg("malformed signature %zu accepted (%d)", i, rc);
        assert_non_null(strstr(pier_error_last(), "X-Hub-Signature-256"));
    }
    /* The last error never carries the expected value. */
    assert_null(strstr(pier_error_last(), "757107"));
}

static void test_gitlab_token(void **st)
{
    (void)st;
    assert_int_equal(pier_webhook_verify_gitlab("s3cret-token", "s3cret-token"), 0);
    assert_int_equal(pier_webhook_verify_gitlab("s3cret-token", "s3cret-tokeN"), PIER_EAUTH);
    assert_non_null(strstr(pier_error_last(), "X-Gitlab-Token is wrong"));
    assert_int_equal(pier_webhook_verify_gitlab("s3cret-token", "s3cret"), PIER_EAUTH);
    assert_int_equal(pier_webhook_verify_gitlab("s3cret-token", "s3cret-token "), PIER_EAUTH);
    assert_int_equal(pier_webhook_verify_gitlab("s3cret-token", NULL), PIER_EAUTH);
    assert_non_null(strstr(pier_error_last(), "no X-Gitlab-Token"));
    assert_int_equal(pier_webhook_verify_gitlab("s3cret-token", ""), PIER_EAUTH);
    assert_int_equal(pier_webhook_verify_gitlab(NULL, "x"), PIER_EAUTH);
    assert_int_equal(pier_webhook_verify_gitlab("", ""), PIER_EAUTH);
}

static void test_gitea_signature(void **st)
{
    (void)st;
    const char *body = "{\"ref\":\"refs/heads/main\"}";
    char hex[72], hub[72];
    sign(hex, "gitea-secret", body, false);
    sign(hub, "gitea-secret", body, true);
    assert_int_equal(pier_webhook_verify_gitea("gitea-secret", hex, body, strlen(body)), 0);
    assert_int_equal(pier_webhook_verify_gitea("other", hex, body, strlen(body)), PIER_EAUTH);
    assert_int_equal(pier_webhook_verify_gitea("gitea-secret", hex, body, strlen(body) - 1),
                     PIER_EAUTH);
    assert_int_equal(pier_webhook_verify_gitea("gitea-secret", hub, body, strlen(body)),
                     PIER_EAUTH); /* the prefixed form is not X-Gitea-Signature's */
    assert_int_equal(pier_webhook_verify_gitea("gitea-secret", NULL, body, strlen(body)),
                     PIER_EAUTH);
    assert_non_null(strstr(pier_error_last(), "X-Gitea-Signature"));

    /* Through headers: X-Gitea-Signature, X-Forgejo-Signature, or GitHub's. */
    hdr h1[] = {{"X-Gitea-Event", "push"}, {"X-Gitea-Signature", hex}, {NULL, NULL}};
    assert_int_equal(
        pier_webhook_verify(PIER_WEBHOOK_AUTO, "gitea-secret", lookup, h1, body, strlen(body)), 0);
    hdr h2[] = {{"x-forgejo-event", "push"}, {"x-forgejo-signature", hex}, {NULL, NULL}};
    assert_int_equal(
        pier_webhook_verify(PIER_WEBHOOK_AUTO, "gitea-secret", lookup, h2, body, strlen(body)), 0);
    hdr h3[] = {{"X-Gitea-Event", "push"},
                {"X-GitHub-Event", "push"},
                {"X-Hub-Signature-256", hub},
                {NULL, NULL}};
    pier_webhook_provider p;
    assert_int_equal(pier_webhook_detect(&p, lookup, h3), 0);
    assert_int_equal(p, PIER_WEBHOOK_GITEA);
    assert_int_equal(
        pier_webhook_verify(PIER_WEBHOOK_AUTO, "gitea-secret", lookup, h3, body, strlen(body)), 0);
    assert_int_equal(
        pier_webhook_verify(PIER_WEBHOOK_AUTO, "wrong", lookup, h3, body, strlen(body)),
        PIER_EAUTH);
}

static const char *GITHUB_PUSH =
    "{\"ref\":\"refs/heads/main\","
    "\"before\":\"6113728f27ae82c7b1a177c8d03f9e96e0adf246\","
    "\"after\":\"0000000000000000000000000000000000000001\","
    "\"created\":false,\"deleted\":false,\"forced\":true,\"base_ref\":null,"
    "\"compare\":\"https://github.com/Codertocat/Hello-World/compare/6113728f27ae...000000000001\","
    "\"commits\":[{\"id\":\"1111111111111111111111111111111111111111\",\"message\":\"one\"},"
    "{\"id\":\"0000000000000000000000000000000000000001\",\"message\":\"Update "
    "README.md\\n\\nwith a body\"}],"
    "\"head_commit\":{\"id\":\"0000000000000000000000000000000000000001\",\"message\":\"Update "
    "README.md\\n\\nwith a body\"},"
    "\"repository\":{\"id\":186853002,\"name\":\"Hello-World\",\"full_name\":\"Codertocat/"
    "Hello-World\",\"clone_url\":\"https://github.com/Codertocat/Hello-World.git\","
    "\"ssh_url\":\"git@github.com:Codertocat/Hello-World.git\"},"
    "\"pusher\":{\"name\":\"Codertocat\",\"email\":\"21031067+Codertocat@users.noreply.github."
    "com\"},\"sender\":{\"login\":\"Codertocat\"}}";

static void test_receive_github_push(void **st)
{
    (void)st;
    char sig[72];
    sign(sig, SECRET, GITHUB_PUSH, true);
    hdr h[] = {{"X-GitHub-Event", "push"},
               {"X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
               {"X-Hub-Signature-256", sig},
               {"Content-Type", "application/json"},
               {NULL, NULL}};
    pier_webhook_event *e = NULL;
    int rc = pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, SECRET, lookup, h, GITHUB_PUSH,
                                  strlen(GITHUB_PUSH));
    if (rc < 0)
        fail_msg("receive: %s", pier_error_last());
    assert_int_equal(e->provider, PIER_WEBHOOK_GITHUB);
    assert_int_equal(e->kind, PIER_WEBHOOK_PUSH);
    assert_string_equal(e->event, "push");
    assert_string_equal(e->delivery, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_string_equal(e->ref, "refs/heads/main");
    assert_int_equal(e->ref_kind, PIER_REF_BRANCH);
    assert_string_equal(e->name, "main");
    assert_string_equal(e->before, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
    assert_string_equal(e->after, "0000000000000000000000000000000000000001");
    assert_false(e->deleted);
    assert_false(e->created);
    assert_true(e->forced);
    assert_string_equal(e->repo_name, "Codertocat/Hello-World");
    assert_string_equal(e->clone_url, "https://github.com/Codertocat/Hello-World.git");
    assert_string_equal(e->ssh_url, "git@github.com:Codertocat/Hello-World.git");
    assert_string_equal(e->pusher, "Codertocat");
    assert_int_equal(e->commits, 2);
    assert_string_equal(e->head_message, "Update README.md");
    pier_webhook_event_free(e);

    /* The same request with one byte of the body changed: refused. */
    char *altered = strdup(GITHUB_PUSH);
    altered[strlen(altered) - 3] = 'X';
    e = (pier_webhook_event *)1;
    assert_int_equal(
        pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, SECRET, lookup, h, altered, strlen(altered)),
        PIER_EAUTH);
    assert_null(e);
    free(altered);

    /* Configured for GitHub, sent without a signature: refused. */
    hdr nosig[] = {{"X-GitHub-Event", "push"}, {NULL, NULL}};
    assert_int_equal(pier_webhook_receive(&e, PIER_WEBHOOK_GITHUB, SECRET, lookup, nosig,
                                          GITHUB_PUSH, strlen(GITHUB_PUSH)),
                     PIER_EAUTH);
    /* Only the SHA-1 header: refused with a pointer to the SHA-256 one. */
    hdr sha1[] = {{"X-GitHub-Event", "push"}, {"X-Hub-Signature", "sha1=abc"}, {NULL, NULL}};
    assert_int_equal(pier_webhook_receive(&e, PIER_WEBHOOK_GITHUB, SECRET, lookup, sha1,
                                          GITHUB_PUSH, strlen(GITHUB_PUSH)),
                     PIER_EAUTH);
    assert_non_null(strstr(pier_error_last(), "X-Hub-Signature-256"));
    /* Not a webhook at all. */
    hdr none[] = {{"Content-Type", "application/json"}, {NULL, NULL}};
    assert_int_equal(pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, SECRET, lookup, none, GITHUB_PUSH,
                                          strlen(GITHUB_PUSH)),
                     PIER_EINVALID);
    assert_int_equal(pier_webhook_verify(PIER_WEBHOOK_AUTO, SECRET, lookup, none, GITHUB_PUSH,
                                         strlen(GITHUB_PUSH)),
                     PIER_EAUTH);
    assert_non_null(strstr(pier_error_last(), "not a webhook"));
}

/* Authentication runs before parsing: a bad body with a bad signature is
 * EAUTH, with a good signature it is EINVALID. */
static void test_auth_before_parse(void **st)
{
    (void)st;
    const char *junk = "{not json";
    hdr bad[] = {{"X-GitHub-Event", "push"},
                 {"X-Hub-Signature-256",
                  "sha256=0000000000000000000000000000000000000000000000000000000000000000"},
                 {NULL, NULL}};
    pier_webhook_event *e = NULL;
    assert_int_equal(
        pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, SECRET, lookup, bad, junk, strlen(junk)),
        PIER_EAUTH);
    char sig[72];
    sign(sig, SECRET, junk, true);
    hdr good[] = {{"X-GitHub-Event", "push"}, {"X-Hub-Signature-256", sig}, {NULL, NULL}};
    assert_int_equal(
        pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, SECRET, lookup, good, junk, strlen(junk)),
        PIER_EINVALID);
    assert_null(e);

    /* A push without "after", or with a junk id: invalid, naming the field. */
    const char *noafter = "{\"ref\":\"refs/heads/main\","
                          "\"before\":\"6113728f27ae82c7b1a177c8d03f9e96e0adf246\"}";
    assert_int_equal(pier_webhook_parse(&e, PIER_WEBHOOK_GITHUB, "push", noafter, strlen(noafter)),
                     PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "\"after\""));
    const char *badid = "{\"ref\":\"refs/heads/main\",\"before\":\"x\",\"after\":\"y\"}";
    assert_int_equal(pier_webhook_parse(&e, PIER_WEBHOOK_GITHUB, "push", badid, strlen(badid)),
                     PIER_EINVALID);
    const char *array = "[1,2]";
    assert_int_equal(pier_webhook_parse(&e, PIER_WEBHOOK_GITHUB, "push", array, strlen(array)),
                     PIER_EINVALID);
}

static void test_github_delete_tag_create_ping(void **st)
{
    (void)st;
    pier_webhook_event *e = NULL;
    const char *del = "{\"ref\":\"refs/heads/feature\","
                      "\"before\":\"6113728f27ae82c7b1a177c8d03f9e96e0adf246\","
                      "\"after\":\"0000000000000000000000000000000000000000\","
                      "\"created\":false,\"deleted\":true,\"forced\":false,\"commits\":[],"
                      "\"head_commit\":null,\"repository\":{\"full_name\":\"o/r\"}}";
    assert_int_equal(pier_webhook_parse(&e, PIER_WEBHOOK_GITHUB, "push", del, strlen(del)), 0);
    assert_int_equal(e->kind, PIER_WEBHOOK_PUSH);
    assert_true(e->deleted);
    assert_false(e->created);
    assert_string_equal(e->name, "feature");
    assert_int_equal(e->commits, 0);
    assert_null(e->head_message);
    pier_webhook_event_free(e);

    /* Deleted by zeros alone (no "deleted" member). */
    const char *zeros = "{\"ref\":\"refs/heads/x\","
                        "\"before\":\"6113728f27ae82c7b1a177c8d03f9e96e0adf246\","
                        "\"after\":\"0000000000000000000000000000000000000000\"}";
    assert_int_equal(pier_webhook_parse(&e, PIER_WEBHOOK_GITHUB, "push", zeros, strlen(zeros)), 0);
    assert_true(e->deleted);
    assert_int_equal(e->commits, -1);
    assert_null(e->clone_url);
    pier_webhook_event_free(e);

    const char *tag = "{\"ref\":\"refs/tags/v1.2.0\","
                      "\"before\":\"0000000000000000000000000000000000000000\","
                      "\"after\":\"6113728f27ae82c7b1a177c8d03f9e96e0adf246\","
                      "\"created\":true,\"deleted\":false,\"commits\":[]}";
    assert_int_equal(pier_webhook_parse(&e, PIER_WEBHOOK_GITHUB, "push", tag, strlen(tag)), 0);
    assert_int_equal(e->ref_kind, PIER_REF_TAG);
    assert_string_equal(e->name, "v1.2.0");
    assert_true(e->created);
    assert_false(e->deleted);
    pier_webhook_event_free(e);

    const char *notes = "{\"ref\":\"refs/notes/commits\","
                        "\"before\":\"6113728f27ae82c7b1a177c8d03f9e96e0adf246\","
                        "\"after\":\"7113728f27ae82c7b1a177c8d03f9e96e0adf246\"}";
    assert_int_equal(pier_webhook_parse(&e, PIER_WEBHOOK_GITHUB, "push", notes, strlen(notes)), 0);
    assert_int_equal(e->ref_kind, PIER_REF_OTHER);
    assert_string_equal(e->name, "refs/notes/commits");
    pier_webhook_event_free(e);

    const char *ping = "{\"zen\":\"Design for failure.\",\"hook_id\":30,"
                       "\"hook\":{\"type\":\"Repository\",\"events\":[\"push\"]},"
                       "\"repository\":{\"full_name\":\"o/r\"}}";
    char sig[72];
    sign(sig, SECRET, ping, true);
    hdr h[] = {{"X-GitHub-Event", "ping"}, {"X-Hub-Signature-256", sig}, {NULL, NULL}};
    assert_int_equal(
        pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, SECRET, lookup, h, ping, strlen(ping)), 0);
    assert_int_equal(e->kind, PIER_WEBHOOK_PING);
    assert_null(e->ref);
    assert_string_equal(e->repo_name, "o/r");
    pier_webhook_event_free(e);

    const char *issue = "{\"action\":\"opened\",\"issue\":{}}";
    assert_int_equal(pier_webhook_parse(&e, PIER_WEBHOOK_GITHUB, "issues", issue, strlen(issue)),
                     0);
    assert_int_equal(e->kind, PIER_WEBHOOK_OTHER);
    pier_webhook_event_free(e);
}

static const char *GITLAB_PUSH =
    "{\"object_kind\":\"push\",\"event_name\":\"push\","
    "\"before\":\"95790bf891e76fee5e1747ab589903a6a1f80f22\","
    "\"after\":\"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\","
    "\"ref\":\"refs/heads/master\",\"ref_protected\":true,"
    "\"checkout_sha\":\"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\","
    "\"user_id\":4,\"user_name\":\"John Smith\",\"user_username\":\"jsmith\","
    "\"project_id\":15,\"project\":{\"id\":15,\"name\":\"Diaspora\","
    "\"git_ssh_url\":\"git@example.com:mike/diaspora.git\","
    "\"git_http_url\":\"http://example.com/mike/diaspora.git\","
    "\"path_with_namespace\":\"mike/diaspora\",\"default_branch\":\"master\"},"
    "\"commits\":[{\"id\":\"b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327\",\"message\":\"Update "
    "Catalan translation to e38cb41.\\n\\nSee https://gitlab.com/gitlab-org/gitlab for more "
    "information\"},{\"id\":\"da1560886d4f094c3e6c9ef40349f7d38b5d27d7\",\"message\":\"fixed "
    "readme\"}],\"total_commits_count\":4,"
    "\"repository\":{\"name\":\"Diaspora\",\"url\":\"git@example.com:mike/diaspora.git\","
    "\"git_http_url\":\"http://example.com/mike/diaspora.git\","
    "\"git_ssh_url\":\"git@example.com:mike/diaspora.git\"}}";

static void test_receive_gitlab(void **st)
{
    (void)st;
    hdr h[] = {{"X-Gitlab-Event", "Push Hook"},
               {"X-Gitlab-Token", "gl-token"},
               {"X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e"},
               {NULL, NULL}};
    pier_webhook_event *e = NULL;
    int rc = pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, "gl-token", lookup, h, GITLAB_PUSH,
                                  strlen(GITLAB_PUSH));
    if (rc < 0)
        fail_msg("receive: %s", pier_error_last());
    assert_int_equal(e->provider, PIER_WEBHOOK_GITLAB);
    assert_int_equal(e->kind, PIER_WEBHOOK_PUSH);
    assert_string_equal(e->name, "master");
    assert_string_equal(e->after, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
    assert_string_equal(e->repo_name, "mike/diaspora");
    assert_string_equal(e->clone_url, "http://example.com/mike/diaspora.git");
    assert_string_equal(e->ssh_url, "git@example.com:mike/diaspora.git");
    assert_string_equal(e->pusher, "jsmith");
    assert_int_equal(e->commits, 4); /* total_commits_count, not the array's 2 */
    assert_string_equal(e->head_message, "fixed readme");
    assert_string_equal(e->delivery, "13792a34-cac6-4fda-95a8-c58e00a3954e");
    assert_false(e->deleted);
    pier_webhook_event_free(e);

    hdr wrong[] = {{"X-Gitlab-Event", "Push Hook"}, {"X-Gitlab-Token", "nope"}, {NULL, NULL}};
    assert_int_equal(pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, "gl-token", lookup, wrong,
                                          GITLAB_PUSH, strlen(GITLAB_PUSH)),
                     PIER_EAUTH);
    hdr missing[] = {{"X-Gitlab-Event", "Push Hook"}, {NULL, NULL}};
    assert_int_equal(pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, "gl-token", lookup, missing,
                                          GITLAB_PUSH, strlen(GITLAB_PUSH)),
                     PIER_EAUTH);

    const char *tag = "{\"object_kind\":\"tag_push\","
                      "\"before\":\"0000000000000000000000000000000000000000\","
                      "\"after\":\"82b3d5ae55f7080f1e6022629cdb57bfae7cccc7\","
                      "\"ref\":\"refs/tags/v1.0.0\",\"user_username\":\"jsmith\","
                      "\"project\":{\"path_with_namespace\":\"jsmith/example\"},"
                      "\"commits\":[],\"total_commits_count\":0}";
    assert_int_equal(pier_webhook_parse(&e, PIER_WEBHOOK_GITLAB, "Tag Push Hook", tag, strlen(tag)),
                     0);
    assert_int_equal(e->kind, PIER_WEBHOOK_PUSH);
    assert_int_equal(e->ref_kind, PIER_REF_TAG);
    assert_string_equal(e->name, "v1.0.0");
    assert_true(e->created);
    pier_webhook_event_free(e);

    const char *del = "{\"object_kind\":\"push\","
                      "\"before\":\"82b3d5ae55f7080f1e6022629cdb57bfae7cccc7\","
                      "\"after\":\"0000000000000000000000000000000000000000\","
                      "\"ref\":\"refs/heads/feature\",\"checkout_sha\":null,"
                      "\"commits\":[],\"total_commits_count\":0}";
    assert_int_equal(pier_webhook_parse(&e, PIER_WEBHOOK_GITLAB, "Push Hook", del, strlen(del)), 0);
    assert_true(e->deleted);
    pier_webhook_event_free(e);

    const char *mr = "{\"object_kind\":\"merge_request\"}";
    assert_int_equal(
        pier_webhook_parse(&e, PIER_WEBHOOK_GITLAB, "Merge Request Hook", mr, strlen(mr)), 0);
    assert_int_equal(e->kind, PIER_WEBHOOK_OTHER);
    pier_webhook_event_free(e);
}

static const char *GITEA_PUSH =
    "{\"ref\":\"refs/heads/develop\","
    "\"before\":\"28e1879d029cb852e4844d9c718537df08844e03\","
    "\"after\":\"bffeb74224043ba2feb48d137756c8a9331c449a\","
    "\"compare_url\":\"http://localhost:3000/gitea/webhooks/compare/28e1879...bffeb74\","
    "\"commits\":[{\"id\":\"bffeb74224043ba2feb48d137756c8a9331c449a\","
    "\"message\":\"Webhooks Yay!\",\"url\":\"http://localhost:3000/gitea/webhooks/commit/"
    "bffeb74224043ba2feb48d137756c8a9331c449a\"}],\"total_commits\":1,"
    "\"head_commit\":{\"id\":\"bffeb74224043ba2feb48d137756c8a9331c449a\",\"message\":\"Webhooks "
    "Yay!\"},"
    "\"repository\":{\"id\":140,\"name\":\"webhooks\",\"full_name\":\"gitea/webhooks\","
    "\"clone_url\":\"http://localhost:3000/gitea/webhooks.git\","
    "\"ssh_url\":\"ssh://gitea@localhost:2222/gitea/webhooks.git\"},"
    "\"pusher\":{\"id\":1,\"login\":\"gitea\",\"full_name\":\"Gitea\",\"username\":\"gitea\"},"
    "\"sender\":{\"login\":\"gitea\"}}";

static void test_receive_gitea(void **st)
{
    (void)st;
    char hex[72], hub[72];
    sign(hex, "gt", GITEA_PUSH, false);
    sign(hub, "gt", GITEA_PUSH, true);
    hdr h[] = {
        {"X-Gitea-Event", "push"},    {"X-Gitea-Delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473"},
        {"X-Gitea-Signature", hex},   {"X-GitHub-Event", "push"},
        {"X-Hub-Signature-256", hub}, {NULL, NULL}};
    pier_webhook_event *e = NULL;
    int rc = pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, "gt", lookup, h, GITEA_PUSH,
                                  strlen(GITEA_PUSH));
    if (rc < 0)
        fail_msg("receive: %s", pier_error_last());
    assert_int_equal(e->provider, PIER_WEBHOOK_GITEA);
    assert_int_equal(e->kind, PIER_WEBHOOK_PUSH);
    assert_string_equal(e->name, "develop");
    assert_string_equal(e->repo_name, "gitea/webhooks");
    assert_string_equal(e->clone_url, "http://localhost:3000/gitea/webhooks.git");
    assert_string_equal(e->pusher, "gitea");
    assert_int_equal(e->commits, 1);
    assert_string_equal(e->head_message, "Webhooks Yay!");
    assert_string_equal(e->delivery, "f6266f16-1bf3-46a5-9ea4-602e06ead473");
    pier_webhook_event_free(e);

    /* Only GitHub's header from Forgejo: accepted as Gitea. */
    hdr fj[] = {{"X-Forgejo-Event", "push"}, {"X-Hub-Signature-256", hub}, {NULL, NULL}};
    assert_int_equal(pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, "gt", lookup, fj, GITEA_PUSH,
                                          strlen(GITEA_PUSH)),
                     0);
    assert_int_equal(e->provider, PIER_WEBHOOK_GITEA);
    assert_string_equal(e->event, "push");
    pier_webhook_event_free(e);

    hdr bad[] = {{"X-Gitea-Event", "push"}, {"X-Gitea-Signature", hex}, {NULL, NULL}};
    assert_int_equal(pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, "other", lookup, bad, GITEA_PUSH,
                                          strlen(GITEA_PUSH)),
                     PIER_EAUTH);
    assert_int_equal(pier_webhook_receive(&e, PIER_WEBHOOK_AUTO, "gt", lookup, bad, GITEA_PUSH,
                                          strlen(GITEA_PUSH) - 1),
                     PIER_EAUTH);
    assert_string_equal(pier_webhook_provider_name(PIER_WEBHOOK_GITEA), "gitea");
    pier_webhook_event_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_github_documented_vector),
        cmocka_unit_test(test_github_refusals),
        cmocka_unit_test(test_gitlab_token),
        cmocka_unit_test(test_gitea_signature),
        cmocka_unit_test(test_receive_github_push),
        cmocka_unit_test(test_auth_before_parse),
        cmocka_unit_test(test_github_delete_tag_create_ping),
        cmocka_unit_test(test_receive_gitlab),
        cmocka_unit_test(test_receive_gitea),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
