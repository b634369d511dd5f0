/*
 * cmd_serve: `pier serve` runs the embedded stack with no pipelines: the
 * S3-compatible store on a data directory, until SIGINT or SIGTERM.
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

int pier_cmd_serve(int argc, char **argv)
{
    pier_stack_options o = {0};
    const char *config = NULL;
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
        } else {
            return pier_cli_usage_error("serve", "unknown or incomplete option '%s'", a);
        }
    }
    if (config) {
        FILE *f = fopen(config, "r");
        if (!f)
            return pier_cli_usage_error("serve", "cannot read --config %s", config);
        fclose(f);
        PIER_WARN("--config %s: the stack has no settings to read from it yet", config);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    pier_stack *s = NULL;
    if (pier_stack_start(&s, &o) != 0)
        return pier_cli_fail(NULL);
    const char *url = pier_stack_api_url(s);
    printf("pier serve: data in %s\n", pier_stack_data_dir(s));
    printf("s3 api: %s  (AWS_SHARED_CREDENTIALS_FILE=%s AWS_PROFILE=pier aws --endpoint-url %s "
           "s3 ls)\n",
           url, pier_stack_credentials_file(s), url);
    printf("health: %s/_pier/health\n", url);
    fflush(stdout);

    int sig = 0;
    sigwait(&set, &sig);
    PIER_INFO("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pier_stack_free(s);
    return PIER_EXIT_OK;
}
