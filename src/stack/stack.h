/*
 * stack: the embedded stack's composition root. It opens the store, makes
 * (or reuses) the administrator credential, and starts the listeners with
 * their handlers: the API listener (health, the credentials endpoint and
 * grants, the CloudFront API under /2020-05-31/, the webhooks and the
 * CodePipeline job API when given, the S3 API for the rest)
 * and the edge listener (the sites of the config, or one default site
 * EPIER000000001 serving the default bucket at any Host).
 *
 * Ownership: a pier_stack owns everything it starts; strings returned are
 * borrowed from it.
 */
#ifndef PIER_STACK_H
#define PIER_STACK_H

#include "stack/cfapi.h"
#include "stack/credsvc.h"
#include "stack/edge.h"
#include "stack/jobhttp.h"
#include "stack/stackconf.h"
#include "stack/store.h"
#include "stack/webhookhttp.h"

typedef struct {
    const char *data_dir;         /* NULL = "./.pier-data" */
    const char *api_listen;       /* S3 API HOST:PORT; NULL = "127.0.0.1:9000"; port 0 = any */
    const char *default_bucket;   /* created at start when missing; NULL = "site", "" = none */
    unsigned threads;             /* server workers; 0 = cores */
    const char *edge_listen;      /* edge HOST:PORT (port 0 = any); NULL = the config's
                                     edge-listen, else no edge listener; "" = none */
    const pier_stackconf *config; /* buckets, sites, cache sizes, addresses (borrowed; NULL:
                                     defaults); api_listen/edge_listen above win over it */
    const pier_webhookhttp_options *webhooks; /* POST /_pier/webhooks/<pipeline> on the API
                                                 listener (copied; its contexts borrowed), or
                                                 NULL: none */
    pier_jobapi *jobs; /* the CodePipeline job API at /_pier/codepipeline over this registry
                          (borrowed), or NULL: none */
} pier_stack_options;

typedef struct pier_stack pier_stack;

/* Opens DIR, writes DIR/credentials on first start (profile [pier], 0600),
 * and starts listening. Errors name the directory or address at fault. */
int pier_stack_start(pier_stack **out, const pier_stack_options *opts);
/* Stops the listeners and closes the store. Accepts NULL. */
void pier_stack_free(pier_stack *s);

const char *pier_stack_api_url(const pier_stack *s);
const char *pier_stack_data_dir(const pier_stack *s);
/* Absolute path of DIR/credentials. */
const char *pier_stack_credentials_file(const pier_stack *s);
const char *pier_stack_access_key_id(const pier_stack *s);
pier_store *pier_stack_store(pier_stack *s);
/* The edge listener's URL, or NULL when there is none. */
const char *pier_stack_edge_url(const pier_stack *s);
/* The edge (its sites and cache; present even without a listener), the
 * credentials service (grants for builds) and the CloudFront API. */
pier_edge *pier_stack_edge(pier_stack *s);
pier_credsvc *pier_stack_credsvc(pier_stack *s);
pier_cfapi *pier_stack_cfapi(pier_stack *s);

#endif
