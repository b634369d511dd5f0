/*
 * cmd_serve: `pier serve` runs the embedded stack with no pipelines: the
 * S3-compatible store on a data directory, the CloudFront and credentials
 * APIs beside it, and the edge serving the sites, until SIGINT or SIGTERM.
 *
 * The edge listens on --edge-listen, else the config's edge-listen, else
 * 127.0.0.1:8080; when the API takes any free port (port 0) and nothing
 * names the edge's address, the edge takes any free port too, so tests can
 * run side by side.
 *
 * Signals are blocked before any server thread starts (threads inherit the
 * mask), and the main thread waits for them with sigwait, so shutdown runs
 * in ordinary code: stop the listeners, close the store, exit 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/commands.h"
#include "stack/stack.h"
#include "stack/stackconf.h"

/* True when HOST:PORT ends in port 0. */
static bool any_port(const char *listen)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    return colon && strcmp(colon + 1, "0") == 0;
}

/* Prints one line per site with the URL a browser would use. */
static void print_sites(pier_stack *s)
{
    const char *edge = pier_stack_edge_url(s);
    if (!edge)
        return;
    const char *port = strrchr(edge, ':');
    pier_edge *e = pier_stack_edge(s);
    for (size_t i = 0; i < pier_edge_site_count(e); i++) {
        const pier_edge_site *site = pier_edge_site_at(e, i);
        for (size_t j = 0; j < site->host_count; j++) {
            const char *h = site->hosts[j];
            if (strcmp(h, "*") == 0)
                printf("site %s: %s/  (any host; bucket %s%s%s)\n", site->id, edge, site->bucket,
                       site->prefix[0] ? "/" : "", site->prefix);
            else
                printf("site %s: http://%s%s%s/  (bucket %s%s%s)\n", site->id,
                       h[0] == '*' ? "NAME" : "", h[0] == '*' ? h + 1 : h, port, site->bucket,
                       site->prefix[0] ? "/" : "", site->prefix);
        }
    }
}

int pier_cmd_serve(int argc, char **argv)
{
    pier_stack_options o = {0};
    const char *config = NULL;
    bool no_edge = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--data") == 0 && v) {
            o.data_dir = v;
            i++;
        } else if (strcmp(a, "--api-listen") == 0 && v) {
            o.api_listen = v;
            i++;
        } else if (strcmp(a, "--config") == 0 && v) {
            config = v;
            i++;
        } else if (strcmp(a, "--bucket") == 0 && v) {
            o.default_bucket = v;
            i++;
        } else if (strcmp(a, "--edge-listen") == 0 && v) {
            o.edge_listen = v;
            i++;
        } else if (strcmp(a, "--no-edge") == 0) {
            no_edge = true;
        } else {
            return pier_cli_usage_error("serve", "unknown or incomplete option '%s'", a);
        }
    }
    pier_stackconf *conf = NULL;
    if (config && pier_stackconf_load_file(&conf, config) != 0)
        return pier_cli_fail(NULL);
    o.config = conf;
    if (no_edge) {
        o.edge_listen = "";
    } else if (!o.edge_listen && !(conf && conf->edge_listen)) {
        const char *api = o.api_listen ? o.api_listen : conf ? conf->api_listen : NULL;
        o.edge_listen = any_port(api) ? "127.0.0.1:0" : "127.0.0.1:8080";
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    pier_stack *s = NULL;
    if (pier_stack_start(&s, &o) != 0) {
        pier_stackconf_free(conf);
        return pier_cli_fail(NULL);
    }
    const char *url = pier_stack_api_url(s);
    printf("pier serve: data in %s\n", pier_stack_data_dir(s));
    printf("s3 api: %s  (AWS_SHARED_CREDENTIALS_FILE=%s AWS_PROFILE=pier aws --endpoint-url %s "
           "s3 ls)\n",
           url, pier_stack_credentials_file(s), url);
    printf("cloudfront api: %s/2020-05-31/  (aws cloudfront create-invalidation --endpoint-url %s "
           "--distribution-id ID --paths '/*')\n",
           url, url);
    printf("credentials: POST %s/_pier/grants, signed with the administrator key (docs/serve.md)\n",
           url);
    if (pier_stack_edge_url(s))
        printf("edge: %s\n", pier_stack_edge_url(s));
    print_sites(s);
    printf("health: %s/_pier/health\n", url);
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    PIER_INFO("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pier_stack_free(s);
    pier_stackconf_free(conf);
    return PIER_EXIT_OK;
}
