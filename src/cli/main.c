/*
 * main: global options, then dispatch to one command from the table.
 *
 *   pier [-v|-vv|-q] [--version] [--help] COMMAND [ARGS...]
 *   pier help COMMAND
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "cli/commands.h"

static const pier_command commands[] = {
    {"up", pier_cmd_up, "run the embedded stack and every pipeline of DIR/pier.yml",
     "usage: pier up [DIR] [--data DIR] [--api-listen HOST:PORT] [--edge-listen HOST:PORT]\n"
     "               [--no-poll] [--dashboard-listen HOST:PORT] [--no-dashboard]\n"
     "\n"
     "Starts the embedded stack (S3 API on --api-listen, default 127.0.0.1:9000) and\n"
     "every pipeline of DIR/pier.yml (default .): each watches its branch (polling\n"
     "and/or webhook), builds when a watched path changed since the last deployed\n"
     "commit, deploys to its bucket and invalidates. Runs are recorded in\n"
     "DIR/.pier/state.db (see pier status, pier logs). Stops on SIGINT or SIGTERM.\n"
     "docs/pipelines.md documents pier.yml. The dashboard and its JSON API listen on\n"
     "--dashboard-listen (default 127.0.0.1:9090; elsewhere than loopback they need the\n"
     "token kept in DIR/.pier/dashboard.token); docs/api.md documents the API.\n"},
    {"run", pier_cmd_run, "start a run of a pipeline now",
     "usage: pier run PIPELINE [--dir DIR] [--wait] [--commit SHA]\n"
     "                [--trigger manual|retry|redeploy]\n"
     "\n"
     "Queues a run on the `pier up` running in DIR (default .); with no pier up\n"
     "running, brings the stack up, runs the pipeline once and stops (it waits).\n"
     "--wait waits for the run to end; exit status 1 when it failed.\n"},
    {"status", pier_cmd_status, "latest runs of the pipelines, with their stages",
     "usage: pier status [PIPELINE] [--dir DIR] [--json] [--limit N]\n"
     "\n"
     "Reads DIR/.pier/state.db (read-only) and prints each pipeline's last deployed\n"
     "commit and its latest runs (default 10) with the state of each stage.\n"},
    {"logs", pier_cmd_logs, "print a run's log",
     "usage: pier logs RUN [--dir DIR] [--follow]\n"
     "\n"
     "Prints the log of run RUN (its id, or PIPELINE:ID). --follow keeps printing\n"
     "until the run ends.\n"},
    {"deploy", pier_cmd_deploy,
     "publish a build folder to S3 by content and invalidate exactly what changed",
     "usage: pier deploy DIR --to s3://BUCKET[/PREFIX] [--cdn cloudfront://ID] [options]\n"
     "\n"
     "Uploads the files of DIR whose content differs from the objects under the\n"
     "prefix (MD5 / multipart ETag / SHA-256 in pier's manifest object, never\n"
     "mtimes), each with its Content-Type and the Cache-Control its rule gives;\n"
     "non-HTML first, HTML after, stale objects deleted last, pier's manifest\n"
     "(PREFIX.pier/manifest.json) written at the very end. An interrupted deploy\n"
     "leaves the previous site whole; the next one converges. With --cdn, one\n"
     "CloudFront invalidation of the changed paths follows, and pier waits for it.\n"
     "\n"
     "options:\n"
     "  --to s3://BUCKET[/PREFIX]   where the site goes (required)\n"
     "  --cdn cloudfront://ID       invalidate the changed paths on this distribution\n"
     "  --endpoint-url URL          S3 endpoint (S3-compatible stores, pier serve)\n"
     "  --cdn-endpoint-url URL      CloudFront endpoint (default the AWS one)\n"
     "  --region R                  AWS region (default from AWS_REGION / the profile)\n"
     "  --profile P                 AWS profile of the shared files\n"
     "  --rules FILE                rules file (YAML: defaults, cache, headers, rewrites)\n"
     "  --cache-control GLOB=VALUE  Cache-Control for matching paths (repeatable; before\n"
     "                              the file's rules; the first match wins)\n"
     "  --header GLOB:NAME=VALUE    set a header on matching objects (repeatable)\n"
     "  --dry-run                   print the plan and change nothing\n"
     "  --json                      print the plan (--dry-run) or the result as JSON\n"
     "  --no-delete                 keep objects that are gone from DIR\n"
     "  --max-deletes N             refuse to delete more than N objects (default:\n"
     "                              refuse more than 10 that are over half the objects)\n"
     "  --allow-empty               an empty DIR is intended (deletes everything)\n"
     "  --jobs N                    transfers in flight (default 16)\n"
     "  --max-paths N               invalidation paths before collapsing to wildcards\n"
     "                              (default 15)\n"
     "  --no-wait                   do not wait for the invalidation to complete\n"
     "  --path-style                path-style S3 URLs (endpoint/bucket/key)\n"
     "  --origin-path P             the distribution's origin path (keys outside it are\n"
     "                              not invalidated; default: read from the distribution\n"
     "                              with GetDistribution, else /)\n"
     "\n"
     "Progress goes to stderr (a bar on a terminal, plain lines elsewhere;\n"
     "PIER_PROGRESS=plain|bar|none); the summary line (or --json) to stdout.\n"
     "Ctrl-C stops starting transfers; a second one stops at once.\n"
     "\n"
     "exit status: 0 deployed, 1 failed (nothing the old site needs was removed),\n"
     "2 usage error. See docs/deploy.md.\n"},
    {"invalidate", pier_cmd_invalidate, "invalidate paths on a CloudFront distribution",
     "usage: pier invalidate --cdn cloudfront://ID [--endpoint-url URL] [--no-wait]\n"
     "                       [--caller-reference REF] [--max-paths N] [--json] PATH...\n"
     "\n"
     "Sends one CreateInvalidation of the paths (each starting with '/', a trailing\n"
     "'*' is a wildcard; other characters are URL-encoded as CloudFront wants) and\n"
     "waits until it is Completed. The CallerReference is the idempotency token:\n"
     "by default one derived from a fresh id and the paths; give the one a deploy\n"
     "printed to retry its invalidation without creating a second one.\n"
     "\n"
     "options:\n"
     "  --cdn cloudfront://ID     the distribution (required)\n"
     "  --endpoint-url URL        CloudFront endpoint (default the AWS one)\n"
     "  --region R, --profile P   as for deploy\n"
     "  --no-wait                 return once created\n"
     "  --caller-reference REF    the idempotency token to use\n"
     "  --max-paths N             collapse to wildcards past N paths (default 3000)\n"
     "  --json                    print the invalidation as JSON\n"
     "\n"
     "exit status: 0 done, 1 failed, 2 usage error.\n"},
    {"build", pier_cmd_build, "run a CodeBuild buildspec (version 0.2) here, as CodeBuild would",
     "usage: pier build [BUILDSPEC] [--src DIR] [--out DIR] [--env NAME=VALUE]...\n"
     "                  [--secret NAME=ENVVAR]... [--timeout SECONDS] [--cache DIR]\n"
     "\n"
     "Runs the buildspec (default SRC/buildspec.yml) in the source directory: the\n"
     "phases install, pre_build, build and post_build with finally and on-failure,\n"
     "env variables, cache.paths and artifacts, as AWS CodeBuild runs version 0.2.\n"
     "Log lines go to stdout, timestamped, with every secret shown as ***.\n"
     "\n"
     "options:\n"
     "  --src DIR              source directory (default .)\n"
     "  --out DIR              artifact directory (default ./pier-artifacts); emptied\n"
     "                         first only when inside the current directory\n"
     "  --env NAME=VALUE       set a variable (overrides the buildspec's)\n"
     "  --secret NAME=ENVVAR   set NAME from pier's environment variable ENVVAR and\n"
     "                         mask its value; also answers env/parameter-store and\n"
     "                         env/secrets-manager entries named NAME\n"
     "  --timeout SECONDS      stop the build after this long (default 3600)\n"
     "  --cache DIR            keep cache.paths here between builds\n"
     "\n"
     "exit status: 0 the build succeeded, 1 it failed (the phase and command are\n"
     "printed), 2 usage error.\n"},
    {"changed", pier_cmd_changed,
     "would this push build? (files under the watched paths changed since a commit)",
     "usage: pier changed --since REV [--to REV] [--repo DIR] [--paths GLOB...]\n"
     "                    [--exclude GLOB...] [--json] [-q] [PATHS...]\n"
     "\n"
     "Diffs the tree of REV (the last commit that was deployed) against the tree\n"
     "of --to (one tree-to-tree diff with rename detection, whatever the number\n"
     "of commits between) and says whether any changed file is under the paths.\n"
     "A renamed file counts at its old and its new path. It never wrongly skips:\n"
     "an empty REV (first run), the zero SHA, a REV that is not in the repository\n"
     "(force push, shallow clone) all say build.\n"
     "\n"
     "options:\n"
     "  --since REV       the last deployed commit (any revision git resolves);\n"
     "                    '' or a missing value means a first run\n"
     "  --to REV          the commit to build (default HEAD)\n"
     "  --repo DIR        the repository, found upward from DIR (default .)\n"
     "  --paths GLOB...   include globs, up to the next option; PATHS after the\n"
     "                    options are added to them. None: every path\n"
     "  --exclude GLOB... exclude globs, up to the next option\n"
     "  --json            print the decision, reason and files as JSON\n"
     "  -q, --quiet       print nothing; the exit status answers\n"
     "\n"
     "Globs: ** any depth, * and ? within a segment, [a-z], {a,b}. A pattern also\n"
     "selects everything under a directory it names: frontend, frontend/ and\n"
     "frontend/** are the same; --exclude 'frontend/**/*.md' drops Markdown.\n"
     "\n"
     "exit status (as `git diff --quiet`, Netlify's ignore and Vercel's Ignored\n"
     "Build Step expect):\n"
     "  0  nothing under the paths changed: skip the build\n"
     "  1  something changed: build\n"
     "  2  error or usage error (not a repository, bad --to): callers build\n"
     "\n"
     "examples:\n"
     "  pier changed --since 1a2b3c4 frontend/ 'shared/**'\n"
     "  pier changed --since v1.2.0 --paths 'docs/**' --exclude 'docs/**/*.png' --json\n"
     "  netlify.toml:  [build]\n"
     "                 ignore = \"pier changed --since $CACHED_COMMIT_REF --to $COMMIT_REF "
     "frontend/\"\n"
     "  Vercel, Settings > Git > Ignored Build Step:\n"
     "    pier changed --since \"$VERCEL_GIT_PREVIOUS_SHA\" --to \"$VERCEL_GIT_COMMIT_SHA\" "
     "frontend/\n"},
    {"serve", pier_cmd_serve,
     "run the embedded stack: S3-compatible store, CloudFront API, edge (no pipelines)",
     "usage: pier serve [--data DIR] [--api-listen HOST:PORT] [--edge-listen HOST:PORT]\n"
     "                  [--no-edge] [--bucket NAME] [--config FILE]\n"
     "\n"
     "Serves an S3-compatible API from DIR (default ./.pier-data), the CloudFront\n"
     "invalidation API and a container-credentials endpoint on the same address,\n"
     "and the edge (sites by Host name, cached like a CDN) on its own. The first start\n"
     "writes an administrator credential to DIR/credentials (profile [pier], mode\n"
     "0600); point the AWS CLI, boto3, s3cmd or rclone at the printed URL with it:\n"
     "\n"
     "  AWS_SHARED_CREDENTIALS_FILE=DIR/credentials AWS_PROFILE=pier \\\n"
     "    aws --endpoint-url http://127.0.0.1:9000 s3 ls\n"
     "\n"
     "options:\n"
     "  --data DIR               data directory (created when missing)\n"
     "  --api-listen HOST:PORT   S3 API address (default 127.0.0.1:9000; port 0 = any)\n"
     "  --edge-listen HOST:PORT  edge address (default 127.0.0.1:8080; port 0 = any, and\n"
     "                           the default when the API's port is 0)\n"
     "  --no-edge                no edge listener\n"
     "  --bucket NAME            bucket created at start (default site; '' = none)\n"
     "  --config FILE            buckets, distributions (sites) and their rules, cache\n"
     "                           sizes (YAML; docs/serve.md)\n"
     "\n"
     "Without --config, distribution EPIER000000001 serves the default bucket at any\n"
     "Host. Stops cleanly on SIGINT or SIGTERM. GET /_pier/health answers 200 with JSON.\n"},
    {"credentials", pier_cmd_credentials,
     "show which keyless source gives AWS credentials (never the secret)",
     "usage: pier credentials [--json] [--profile NAME]\n"
     "\n"
     "Resolves AWS credentials the way the AWS SDKs do and prints which provider\n"
     "answered, the access key id's last 4 characters and the expiry. The secret\n"
     "and the session token are never printed.\n"
     "\n"
     "Providers, in order (the first that answers wins):\n"
     "  env             AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN]\n"
     "  profile         ~/.aws/credentials and ~/.aws/config (AWS_PROFILE, keys,\n"
     "                  role_arn + web_identity_token_file, credential_process)\n"
     "  web-identity    AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN via STS\n"
     "  container       AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI\n"
     "                  (CodeBuild, ECS, pier's own stack)\n"
     "  imds            EC2 instance metadata (IMDSv2)\n"
     "\n"
     "options:\n"
     "  --json            print the result as JSON\n"
     "  --profile NAME    use this profile of the shared files (as AWS_PROFILE)\n"
     "\n"
     "exit status: 0 credentials found, 1 none found (every provider's reason is\n"
     "printed), 2 usage error.\n"},
};

static const size_t command_count = sizeof commands / sizeof *commands;

static const pier_command *find_command(const char *name)
{
    for (size_t i = 0; i < command_count; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_help(FILE *f)
{
    fprintf(f,
            "pier %s: from a push to a live, cache-correct static site, without "
            "long-lived keys\n\n",
            PIER_VERSION);
    fprintf(f, "usage: pier [-v|-q] COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < command_count; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nglobal options:\n"
               "  -v, --verbose   more output (-vv for tracing)\n"
               "  -q, --quiet     errors only\n"
               "  --version       print the version\n"
               "  -h, --help      this help\n"
               "\n'pier help COMMAND' shows a command's options.\n");
}

int pier_cli_fail(const char *msg)
{
    fprintf(stderr, "pier: %s\n", msg ? msg : pier_error_last());
    return PIER_EXIT_ERROR;
}

int pier_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pier %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'pier help %s'.\n", cmd);
    va_end(ap);
    return PIER_EXIT_USAGE;
}

int pier_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

void pier_cli_print_usage(FILE *f, const char *cmd)
{
    const pier_command *c = find_command(cmd);
    if (c)
        fputs(c->usage, f);
}

int main(int argc, char **argv)
{
    pier_log_level level = PIER_LOG_INFO;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            level = level < PIER_LOG_DEBUG ? PIER_LOG_DEBUG : PIER_LOG_TRACE;
        } else if (strcmp(a, "-vv") == 0) {
            level = PIER_LOG_TRACE;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            level = PIER_LOG_ERROR;
        } else if (strcmp(a, "--version") == 0) {
            printf("pier %s\n", PIER_VERSION);
            return PIER_EXIT_OK;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_help(stdout);
            return PIER_EXIT_OK;
        } else {
            fprintf(stderr, "pier: unknown option '%s'\nTry 'pier --help'.\n", a);
            return PIER_EXIT_USAGE;
        }
    }
    pier_log_init(level);
    if (i >= argc) {
        print_help(stderr);
        return PIER_EXIT_USAGE;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        if (i + 1 >= argc) {
            print_help(stdout);
            return PIER_EXIT_OK;
        }
        const pier_command *c = find_command(argv[i + 1]);
        if (!c) {
            fprintf(stderr, "pier: no command '%s'\nTry 'pier --help'.\n", argv[i + 1]);
            return PIER_EXIT_USAGE;
        }
        fputs(c->usage, stdout);
        return PIER_EXIT_OK;
    }
    const pier_command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "pier: no command '%s'\nTry 'pier --help'.\n", name);
        return PIER_EXIT_USAGE;
    }
    if (pier_cli_wants_help(argc - i, argv + i)) {
        fputs(c->usage, stdout);
        return PIER_EXIT_OK;
    }
    return c->run(argc - i, argv + i);
}
