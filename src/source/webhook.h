/*
 * webhook: push events from GitHub, GitLab and Gitea/Forgejo, checked and
 * parsed. Pure functions: no I/O, no clock; the HTTP endpoint hands in the
 * headers (through a lookup callback) and the raw body.
 *
 * Authentication comes first and runs over the raw body bytes as received,
 * before any parsing:
 *   GitHub        X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
 *   GitLab        X-Gitlab-Token: <secret>   (no signature: the token itself)
 *   Gitea/Forgejo X-Gitea-Signature / X-Forgejo-Signature / X-Gogs-Signature:
 *                 <hex HMAC-SHA256>, or X-Hub-Signature-256 as GitHub
 * Every comparison is constant-time (the token is compared through its
 * SHA-256 so its length does not leak either). A missing, malformed or
 * wrong signature, or no secret configured, is PIER_EAUTH with a message
 * that says which header and why, never the expected value.
 *
 * Ownership: a pier_webhook_event comes back through **out and is freed
 * with pier_webhook_event_free; its strings are owned by it.
 */
#ifndef PIER_WEBHOOK_H
#define PIER_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    PIER_WEBHOOK_AUTO = 0, /* detect from the event headers */
    PIER_WEBHOOK_GITHUB,
    PIER_WEBHOOK_GITLAB,
    PIER_WEBHOOK_GITEA, /* Gitea, Forgejo and Gogs */
} pier_webhook_provider;

typedef enum {
    PIER_WEBHOOK_PUSH,  /* a push (branch or tag, created, updated or deleted) */
    PIER_WEBHOOK_PING,  /* GitHub's ping when a hook is created */
    PIER_WEBHOOK_OTHER, /* any other event: acknowledge and ignore */
} pier_webhook_kind;

typedef enum {
    PIER_REF_BRANCH, /* refs/heads/... */
    PIER_REF_TAG,    /* refs/tags/... */
    PIER_REF_OTHER,  /* anything else (refs/notes/..., refs/pull/...) */
} pier_ref_kind;

typedef struct {
    pier_webhook_provider provider; /* who sent it */
    pier_webhook_kind kind;         /* push, ping or other */
    char *event;                    /* the event header as sent: "push", "Push Hook", "ping" ... */
    char *delivery;                 /* the delivery id header, or NULL */
    char *ref;                      /* push: the full ref, "refs/heads/main" */
    pier_ref_kind ref_kind;         /* push: what the ref is */
    char *name;                     /* push: branch or tag name ("main"), else the ref */
    char *before;                   /* push: old commit (40 zeros when created) */
    char *after;                    /* push: new commit (40 zeros when deleted) */
    bool created;                   /* push: the ref did not exist before */
    bool deleted;                   /* push: the ref is gone; nothing to build */
    bool forced;                    /* push: a force push (GitHub reports it; else false) */
    char *repo_name;                /* "owner/name" */
    char *clone_url;                /* https clone URL */
    char *ssh_url;                  /* ssh clone URL, or NULL */
    char *pusher;                   /* who pushed (login or name), or NULL */
    long commits;                   /* commits in the push (the provider's count), -1 unknown */
    char *head_message;             /* first line of the head commit's message, or NULL */
} pier_webhook_event;

/* Looks a header up by name, case-insensitively; NULL when absent. */
typedef const char *(*pier_webhook_header_fn)(void *ctx, const char *name);

/* The provider that sent the request, from its event header (X-Gitea-Event,
 * X-Forgejo-Event, X-Gogs-Event, X-Gitlab-Event, X-GitHub-Event; Gitea also
 * sends X-GitHub-Event, so it is tested first). PIER_EINVALID when none. */
int pier_webhook_detect(pier_webhook_provider *out, pier_webhook_header_fn header, void *ctx);

/* Checks the request's signature or token for provider (AUTO detects). */
int pier_webhook_verify(pier_webhook_provider provider, const char *secret,
                        pier_webhook_header_fn header, void *ctx, const void *body, size_t len);

/* The checks alone, on header values (NULL when the header is missing). */
int pier_webhook_verify_github(const char *secret, const char *signature_256, const void *body,
                               size_t len);
int pier_webhook_verify_gitlab(const char *secret, const char *token);
int pier_webhook_verify_gitea(const char *secret, const char *signature_hex, const void *body,
                              size_t len);

/* Parses a payload already authenticated. event is the event header's value
 * (it decides ping/push/other; NULL reads as push). PIER_EINVALID naming the
 * field when a push lacks ref, before or after, or the JSON is bad. */
int pier_webhook_parse(pier_webhook_event **out, pier_webhook_provider provider, const char *event,
                       const void *body, size_t len);

/* Detect, verify, parse: what an endpoint calls. provider may be AUTO.
 * PIER_EAUTH before any parsing when the request is not authentic. */
int pier_webhook_receive(pier_webhook_event **out, pier_webhook_provider provider,
                         const char *secret, pier_webhook_header_fn header, void *ctx,
                         const void *body, size_t len);

void pier_webhook_event_free(pier_webhook_event *event);
/* "github", "gitlab", "gitea", "auto". */
const char *pier_webhook_provider_name(pier_webhook_provider provider);

#endif
