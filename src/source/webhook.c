/*
 * webhook: authenticate and parse push events (see webhook.h).
 *
 * Verification is a function of (secret, header value, raw body); parsing
 * is a function of (provider, event name, body). The three providers' push
 * payloads share a shape (ref, before, after, repository, commits), so one
 * parser reads them with a per-provider table of where the remaining
 * fields live (clone URLs, pusher, commit count).
 *
 * Costs: one HMAC over the body; one JSON parse. Nothing is kept.
 */
#include "source/webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/json.h"
#include "base/mem.h"
#include "base/str.h"

const char *pier_webhook_provider_name(pier_webhook_provider p)
{
    switch (p) {
    case PIER_WEBHOOK_GITHUB:
        return "github";
    case PIER_WEBHOOK_GITLAB:
        return "gitlab";
    case PIER_WEBHOOK_GITEA:
        return "gitea";
    case PIER_WEBHOOK_AUTO:
        break;
    }
    return "auto";
}

/* ---- authentication ---------------------------------------------------- */

static int no_secret(const char *who)
{
    return pier_error_set(PIER_EAUTH,
                          "%s webhook: no secret is configured for this pipeline; refusing an "
                          "unauthenticated request (set the hook's secret)",
                          who);
}

/* Decodes exactly 64 hex digits into out; false when s is anything else. */
static bool hex256(unsigned char out[PIER_SHA256_LEN], const char *s)
{
    if (strlen(s) != 2 * PIER_SHA256_LEN)
        return false;
    if (pier_hex_decode(out, s, PIER_SHA256_LEN) < 0) {
        pier_error_clear();
        return false;
    }
    return true;
}

/* Compares the hex HMAC in given against HMAC-SHA256(secret, body). */
static int check_hmac(const char *who, const char *header, const char *secret, const char *given,
                      const void *body, size_t len)
{
    unsigned char want[PIER_SHA256_LEN], got[PIER_SHA256_LEN];
    if (!hex256(got, given))
        return pier_error_set(PIER_EAUTH,
                              "%s webhook: %s is malformed (expected %s64 hex digits of an "
                              "HMAC-SHA256)",
                              who, header,
                              strcmp(header, "X-Hub-Signature-256") == 0 ? "sha256=" : "");
    pier_hmac_sha256(want, secret, strlen(secret), body, len);
    if (!pier_ct_equal(want, got, PIER_SHA256_LEN))
        return pier_error_set(PIER_EAUTH,
                              "%s webhook: %s does not match the body (wrong secret, or the body "
                              "was altered)",
                              who, header);
    return 0;
}

static int verify_hub(const char *who, const char *secret, const char *sig, const void *body,
                      size_t len)
{
    if (!secret || !secret[0])
        return no_secret(who);
    if (!sig)
        return pier_error_set(PIER_EAUTH,
                              "%s webhook: no X-Hub-Signature-256 header (set a secret on the "
                              "hook)",
                              who);
    if (strncmp(sig, "sha256=", 7) != 0)
        return pier_error_set(PIER_EAUTH,
                              "%s webhook: X-Hub-Signature-256 is malformed (expected "
                              "sha256=<64 hex digits>)",
                              who);
    return check_hmac(who, "X-Hub-Signature-256", secret, sig + 7, body, len);
}

int pier_webhook_verify_github(const char *secret, const char *signature_256, const void *body,
                               size_t len)
{
    return verify_hub("GitHub", secret, signature_256, body, len);
}

int pier_webhook_verify_gitlab(const char *secret, const char *token)
{
    if (!secret || !secret[0])
        return no_secret("GitLab");
    if (!token || !token[0])
        return pier_error_set(PIER_EAUTH,
                              "GitLab webhook: no X-Gitlab-Token header (set the secret token on "
                              "the hook)");
    /* Equal digests iff equal tokens; comparing digests hides the length. */
    unsigned char a[PIER_SHA256_LEN], b[PIER_SHA256_LEN];
    pier_sha256(a, secret, strlen(secret));
    pier_sha256(b, token, strlen(token));
    if (!pier_ct_equal(a, b, PIER_SHA256_LEN))
        return pier_error_set(PIER_EAUTH, "GitLab webhook: X-Gitlab-Token is wrong");
    return 0;
}

int pier_webhook_verify_gitea(const char *secret, const char *signature_hex, const void *body,
                              size_t len)
{
    if (!secret || !secret[0])
        return no_secret("Gitea");
    if (!signature_hex || !signature_hex[0])
        return pier_error_set(PIER_EAUTH,
                              "Gitea webhook: no X-Gitea-Signature header (set a secret on the "
                              "hook)");
    return check_hmac("Gitea", "X-Gitea-Signature", secret, signature_hex, body, len);
}

int pier_webhook_detect(pier_webhook_provider *out, pier_webhook_header_fn header, void *ctx)
{
    static const struct {
        const char *name;
        pier_webhook_provider p;
    } order[] = {
        /* Gitea and Forgejo also send X-GitHub-Event: they come first. */
        {"X-Gitea-Event", PIER_WEBHOOK_GITEA},   {"X-Forgejo-Event", PIER_WEBHOOK_GITEA},
        {"X-Gogs-Event", PIER_WEBHOOK_GITEA},    {"X-Gitlab-Event", PIER_WEBHOOK_GITLAB},
        {"X-GitHub-Event", PIER_WEBHOOK_GITHUB},
    };
    *out = PIER_WEBHOOK_AUTO;
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        if (header(ctx, order[i].name)) {
            *out = order[i].p;
            return 0;
        }
    }
    return pier_error_set(PIER_EINVALID, "not a webhook: no X-GitHub-Event, X-Gitlab-Event or "
                                         "X-Gitea-Event header");
}

int pier_webhook_verify(pier_webhook_provider p, const char *secret, pier_webhook_header_fn header,
                        void *ctx, const void *body, size_t len)
{
    if (p == PIER_WEBHOOK_AUTO) {
        if (pier_webhook_detect(&p, header, ctx) < 0) {
            char msg[256]; /* the message moves: set_error writes over it */
            snprintf(msg, sizeof msg, "%s", pier_error_last());
            return pier_error_set(PIER_EAUTH, "%s", msg);
        }
    }
    switch (p) {
    case PIER_WEBHOOK_GITLAB:
        return pier_webhook_verify_gitlab(secret, header(ctx, "X-Gitlab-Token"));
    case PIER_WEBHOOK_GITEA: {
        const char *hex = header(ctx, "X-Gitea-Signature");
        if (!hex)
            hex = header(ctx, "X-Forgejo-Signature");
        if (!hex)
            hex = header(ctx, "X-Gogs-Signature");
        if (!hex && header(ctx, "X-Hub-Signature-256"))
            return verify_hub("Gitea", secret, header(ctx, "X-Hub-Signature-256"), body, len);
        return pier_webhook_verify_gitea(secret, hex, body, len);
    }
    case PIER_WEBHOOK_GITHUB:
    case PIER_WEBHOOK_AUTO:
    default: {
        const char *sig = header(ctx, "X-Hub-Signature-256");
        if (!sig && header(ctx, "X-Hub-Signature"))
            return pier_error_set(PIER_EAUTH,
                                  "GitHub webhook: only X-Hub-Signature (SHA-1) was sent; pier "
                                  "checks X-Hub-Signature-256");
        return pier_webhook_verify_github(secret, sig, body, len);
    }
    }
}

/* ---- parsing ------------------------------------------------------------ */

void pier_webhook_event_free(pier_webhook_event *e)
{
    if (!e)
        return;
    free(e->event);
    free(e->delivery);
    free(e->ref);
    free(e->name);
    free(e->before);
    free(e->after);
    free(e->repo_name);
    free(e->clone_url);
    free(e->ssh_url);
    free(e->pusher);
    free(e->head_message);
    free(e);
}

static char *dup_or_null(const char *s)
{
    return s ? pier_strdup(s) : NULL;
}

/* The first non-NULL string among obj's members keys[] (NULL-terminated). */
static const char *first_str(const json_t *obj, const char *const *keys)
{
    if (!json_is_object(obj))
        return NULL;
    for (size_t i = 0; keys[i]; i++) {
        const char *s = pier_json_str(obj, keys[i], NULL);
        if (s && s[0])
            return s;
    }
    return NULL;
}

/* A commit id: 40 (SHA-1) or 64 (SHA-256) hex digits. */
static bool is_object_id(const char *s)
{
    size_t n = strlen(s);
    if (n != 40 && n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool all_zeros(const char *s)
{
    if (!s[0])
        return false;
    for (; *s; s++)
        if (*s != '0')
            return false;
    return true;
}

/* The first line of a commit message, or NULL. */
static char *first_line(const char *msg)
{
    if (!msg)
        return NULL;
    size_t n = strcspn(msg, "\r\n");
    return pier_strndup(msg, n);
}

static pier_webhook_kind kind_of(pier_webhook_provider p, const char *event, const json_t *root)
{
    if (!event) {
        const char *ok = pier_json_str(root, "object_kind", NULL);
        if (ok && strcmp(ok, "push") != 0 && strcmp(ok, "tag_push") != 0)
            return PIER_WEBHOOK_OTHER;
        return json_object_get(root, "zen") ? PIER_WEBHOOK_PING : PIER_WEBHOOK_PUSH;
    }
    if (p == PIER_WEBHOOK_GITLAB) {
        if (strcmp(event, "Push Hook") == 0 || strcmp(event, "Tag Push Hook") == 0)
            return PIER_WEBHOOK_PUSH;
        if (strcmp(event, "System Hook") == 0) {
            const char *ok = pier_json_str(root, "object_kind", "");
            if (strcmp(ok, "push") == 0 || strcmp(ok, "tag_push") == 0)
                return PIER_WEBHOOK_PUSH;
        }
        return PIER_WEBHOOK_OTHER;
    }
    if (strcmp(event, "push") == 0)
        return PIER_WEBHOOK_PUSH;
    if (strcmp(event, "ping") == 0)
        return PIER_WEBHOOK_PING;
    return PIER_WEBHOOK_OTHER;
}

/* Reads the push fields of root into e. */
static int parse_push(pier_webhook_event *e, const json_t *root)
{
    static const char *const k_ref[] = {"ref", NULL};
    const char *ref = first_str(root, k_ref);
    const char *before = pier_json_str(root, "before", NULL);
    const char *after = pier_json_str(root, "after", NULL);
    if (!ref)
        return pier_error_set(PIER_EINVALID, "%s push event: no \"ref\"",
                              pier_webhook_provider_name(e->provider));
    if (!before || !is_object_id(before))
        return pier_error_set(PIER_EINVALID,
                              "%s push event: \"before\" is missing or not a commit id",
                              pier_webhook_provider_name(e->provider));
    if (!after || !is_object_id(after))
        return pier_error_set(PIER_EINVALID,
                              "%s push event: \"after\" is missing or not a commit id",
                              pier_webhook_provider_name(e->provider));
    e->ref = pier_strdup(ref);
    e->before = pier_strdup(before);
    e->after = pier_strdup(after);
    if (pier_str_starts_with(ref, "refs/heads/")) {
        e->ref_kind = PIER_REF_BRANCH;
        e->name = pier_strdup(ref + strlen("refs/heads/"));
    } else if (pier_str_starts_with(ref, "refs/tags/")) {
        e->ref_kind = PIER_REF_TAG;
        e->name = pier_strdup(ref + strlen("refs/tags/"));
    } else {
        e->ref_kind = PIER_REF_OTHER;
        e->name = pier_strdup(ref);
    }
    e->deleted = pier_json_bool(root, "deleted", false) || all_zeros(after);
    e->created = pier_json_bool(root, "created", false) || all_zeros(before);
    e->forced = pier_json_bool(root, "forced", false);

    const json_t *repo = json_object_get(root, "repository");
    const json_t *project = json_object_get(root, "project"); /* GitLab */
    static const char *const k_name[] = {"full_name", "path_with_namespace", NULL};
    static const char *const k_clone[] = {"clone_url", "git_http_url", NULL};
    static const char *const k_ssh[] = {"ssh_url", "git_ssh_url", NULL};
    const char *s = first_str(project, k_name);
    e->repo_name = dup_or_null(s ? s : first_str(repo, k_name));
    if (!e->repo_name)
        e->repo_name = dup_or_null(pier_json_str(repo, "name", NULL));
    s = first_str(project, k_clone);
    e->clone_url = dup_or_null(s ? s : first_str(repo, k_clone));
    s = first_str(project, k_ssh);
    e->ssh_url = dup_or_null(s ? s : first_str(repo, k_ssh));

    /* GitHub pusher.name, Gitea pusher.login/username, GitLab user_username. */
    static const char *const k_pusher[] = {"login", "username", "name", NULL};
    static const char *const k_user[] = {"user_username", "user_name", NULL};
    s = first_str(json_object_get(root, "pusher"), k_pusher);
    e->pusher = dup_or_null(s ? s : first_str(root, k_user));

    const json_t *commits = json_object_get(root, "commits");
    json_int_t total = -1;
    const json_t *t = json_object_get(root, "total_commits_count"); /* GitLab */
    if (!json_is_integer(t))
        t = json_object_get(root, "total_commits"); /* Gitea */
    if (json_is_integer(t))
        total = json_integer_value(t);
    else if (json_is_array(commits))
        total = (json_int_t)json_array_size(commits);
    e->commits = (long)total;

    const json_t *head = json_object_get(root, "head_commit");
    const char *msg = json_is_object(head) ? pier_json_str(head, "message", NULL) : NULL;
    if (!msg && json_is_array(commits)) {
        size_t i;
        json_t *c;
        json_array_foreach(commits, i, c)
        {
            const char *id = pier_json_str(c, "id", "");
            if (strcmp(id, after) == 0)
                msg = pier_json_str(c, "message", NULL);
        }
    }
    e->head_message = first_line(msg);
    return 0;
}

int pier_webhook_parse(pier_webhook_event **out, pier_webhook_provider provider, const char *event,
                       const void *body, size_t len)
{
    *out = NULL;
    json_t *root = NULL;
    pier_webhook_event *e = pier_calloc(1, sizeof *e);
    e->provider = provider;
    e->commits = -1;
    e->event = dup_or_null(event);
    char what[64];
    snprintf(what, sizeof what, "%s webhook body", pier_webhook_provider_name(provider));
    int rc = pier_json_parse(&root, body, len, what);
    if (rc < 0)
        goto done;
    if (!json_is_object(root)) {
        rc = pier_error_set(PIER_EINVALID, "%s is not a JSON object", what);
        goto done;
    }
    e->kind = kind_of(provider, event, root);
    if (e->kind == PIER_WEBHOOK_PUSH && (rc = parse_push(e, root)) < 0)
        goto done;
    if (e->kind != PIER_WEBHOOK_PUSH) {
        static const char *const k_name[] = {"full_name", "path_with_namespace", NULL};
        e->repo_name = dup_or_null(first_str(json_object_get(root, "repository"), k_name));
    }
    *out = e;
    e = NULL;
    rc = 0;
done:
    json_decref(root);
    pier_webhook_event_free(e);
    return rc;
}

/* The event and delivery headers of provider. */
static void event_headers(pier_webhook_provider p, pier_webhook_header_fn header, void *ctx,
                          const char **event, const char **delivery)
{
    *event = *delivery = NULL;
    switch (p) {
    case PIER_WEBHOOK_GITLAB:
        *event = header(ctx, "X-Gitlab-Event");
        *delivery = header(ctx, "X-Gitlab-Event-UUID");
        break;
    case PIER_WEBHOOK_GITEA:
        *event = header(ctx, "X-Gitea-Event");
        if (!*event)
            *event = header(ctx, "X-Forgejo-Event");
        if (!*event)
            *event = header(ctx, "X-Gogs-Event");
        *delivery = header(ctx, "X-Gitea-Delivery");
        if (!*delivery)
            *delivery = header(ctx, "X-Forgejo-Delivery");
        if (!*delivery)
            *delivery = header(ctx, "X-Gogs-Delivery");
        break;
    default:
        break;
    }
    if (!*event)
        *event = header(ctx, "X-GitHub-Event");
    if (!*delivery)
        *delivery = header(ctx, "X-GitHub-Delivery");
}

int pier_webhook_receive(pier_webhook_event **out, pier_webhook_provider provider,
                         const char *secret, pier_webhook_header_fn header, void *ctx,
                         const void *body, size_t len)
{
    *out = NULL;
    if (provider == PIER_WEBHOOK_AUTO) {
        int rc = pier_webhook_detect(&provider, header, ctx);
        if (rc < 0)
            return rc;
    }
    int rc = pier_webhook_verify(provider, secret, header, ctx, body, len);
    if (rc < 0)
        return rc;
    const char *event, *delivery;
    event_headers(provider, header, ctx, &event, &delivery);
    if ((rc = pier_webhook_parse(out, provider, event, body, len)) < 0)
        return rc;
    (*out)->delivery = dup_or_null(delivery);
    return 0;
}
