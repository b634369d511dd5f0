/*
 * stackconf: the `pier serve --config FILE` file: listen addresses, edge
 * cache sizes, buckets and distributions (sites) with their rules. Unknown
 * keys are errors; every error reads "file:line:column: what".
 * docs/serve.md has the reference; in short:
 *
 *   api-listen: 127.0.0.1:9000      # optional; the command line wins
 *   edge-listen: 127.0.0.1:8080
 *   edge:
 *     cache-size: 256MiB            # memory for cached responses
 *     cache-object-max: 8MiB        # larger objects are streamed, not cached
 *   buckets:
 *     - name: web-dev
 *       public-read: false          # anonymous S3 GET of its objects
 *   distributions:
 *     - id: EDEV0000000001
 *       hosts: [web-dev.localhost]  # or host: NAME; "*.suffix", "*" = any
 *       bucket: web-dev             # created at start when missing
 *       prefix: ""                  # key prefix (CloudFront's origin path)
 *       min-ttl: 0                  # seconds; CloudFront's defaults
 *       default-ttl: 86400
 *       max-ttl: 31536000
 *       rules:
 *         index: index.html         # directory index; false disables
 *         spa-fallback: /index.html # for unknown paths without an extension
 *         not-found: /404.html      # served with status 404
 *         rewrites:                 # as in a deploy rules file
 *           - {from: /storybook, to: /storybook/index.html}
 *           - {from: /docs/, to: /docs/index.html, prefix: true}
 *         redirects:
 *           - {from: /old, to: /new, status: 301}
 *           - {from: /blog/, to: "https://blog.example.com/", prefix: true, status: 308}
 *         headers:                  # all matching rules apply
 *           - match: "**"
 *             set: {X-Frame-Options: DENY}
 *
 * Ownership: a pier_stackconf owns everything in it; pier_edge_site_clone
 * copies a site for an edge.
 */
#ifndef PIER_STACKCONF_H
#define PIER_STACKCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stack/edge.h"

typedef struct {
    char *name;           /* bucket name */
    bool public_read;     /* anonymous GET/HEAD of objects */
    bool public_read_set; /* public-read was given (else left as it is) */
} pier_stackconf_bucket;

typedef struct pier_stackconf {
    char *path;                     /* the file, for messages */
    char *api_listen;               /* NULL when not set */
    char *edge_listen;              /* NULL when not set */
    uint64_t cache_bytes;           /* 0 when not set */
    uint64_t cache_object_max;      /* 0 when not set */
    pier_stackconf_bucket *buckets; /* in file order */
    size_t bucket_count;            /* their number */
    pier_edge_site **sites;         /* distributions, in file order */
    size_t site_count;              /* their number */
} pier_stackconf;

int pier_stackconf_load_file(pier_stackconf **out, const char *path);
/* Same from text; name is used in messages. */
int pier_stackconf_load_string(pier_stackconf **out, const char *name, const char *text,
                               size_t len);
void pier_stackconf_free(pier_stackconf *c);

#endif
