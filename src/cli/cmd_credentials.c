/*
 * cmd_credentials: `pier credentials [--json] [--profile NAME]`.
 *
 * Resolves AWS credentials through the provider chain (aws/credentials.h)
 * and shows where they came from: the provider, its source, the access key
 * id's last 4 characters, the expiry and the region. Never the secret or
 * the session token. When no provider answers, every provider's reason is
 * printed, one per line, and the exit status is 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/config.h"
#include "aws/credentials.h"
#include "base/error.h"
#include "base/json.h"
#include "base/str.h"
#include "cli/commands.h"

static const char *const labels[] = {"env: ", "profile ",
                                     "web-identity: ", "container: ", "imds: "};

static bool starts_label(const char *s)
{
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        if (pier_str_starts_with(s, labels[i]))
            return true;
    return false;
}

/* "no AWS credentials found: env: ...; profile x: ...; ..." as one line
 * per provider. Splits only at "; " followed by a provider label, so a
 * reason may itself contain "; ". */
static int print_not_found(const char *msg)
{
    static const char head[] = "no AWS credentials found: ";
    if (!pier_str_starts_with(msg, head))
        return pier_cli_fail(msg);
    fprintf(stderr, "pier: no AWS credentials found; tried, in order:\n  ");
    for (const char *p = msg + sizeof head - 1; *p; p++) {
        if (p[0] == ';' && p[1] == ' ' && starts_label(p + 2)) {
            fputs("\n  ", stderr);
            p++;
            continue;
        }
        fputc(*p, stderr);
    }
    fputs("\nSee docs/credentials.md for each way to give pier credentials without keys.\n",
          stderr);
    return PIER_EXIT_ERROR;
}

static void format_left(char *out, size_t size, int64_t secs)
{
    if (secs < 0)
        snprintf(out, size, "expired");
    else if (secs < 3600)
        snprintf(out, size, "in %lldm %llds", (long long)(secs / 60), (long long)(secs % 60));
    else
        snprintf(out, size, "in %lldh %lldm", (long long)(secs / 3600),
                 (long long)(secs % 3600 / 60));
}

static int print_json(const pier_credentials *c, const char *masked, const char *profile,
                      const char *region, int64_t now)
{
    json_t *o = json_object();
    json_object_set_new(o, "provider", json_string(c->provider));
    json_object_set_new(o, "source", json_string(c->source ? c->source : ""));
    json_object_set_new(o, "access_key_id", json_string(masked));
    json_object_set_new(o, "session_token", json_boolean(c->session_token != NULL));
    if (c->expiration) {
        char when[32];
        pier_time_iso8601(when, sizeof when, (time_t)c->expiration);
        json_object_set_new(o, "expiration", json_string(when));
        json_object_set_new(o, "expires_in_seconds", json_integer(c->expiration - now));
    } else {
        json_object_set_new(o, "expiration", json_null());
        json_object_set_new(o, "expires_in_seconds", json_null());
    }
    json_object_set_new(o, "profile", json_string(profile));
    json_object_set_new(o, "region", region ? json_string(region) : json_null());
    pier_buf b = PIER_BUF_INIT;
    int rc = pier_json_write(&b, o, true);
    if (rc == 0)
        printf("%s\n", pier_buf_cstr(&b));
    pier_buf_free(&b);
    json_decref(o);
    return rc == 0 ? PIER_EXIT_OK : pier_cli_fail(NULL);
}

int pier_cmd_credentials(int argc, char **argv)
{
    bool json = false;
    const char *profile = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--profile") == 0) {
            if (i + 1 >= argc || !*argv[i + 1])
                return pier_cli_usage_error("credentials", "--profile needs a profile name");
            profile = argv[++i];
        } else if (pier_str_starts_with(a, "--profile=")) {
            profile = a + strlen("--profile=");
            if (!*profile)
                return pier_cli_usage_error("credentials", "--profile needs a profile name");
        } else {
            return pier_cli_usage_error("credentials", "unexpected argument '%s'", a);
        }
    }

    pier_aws_config *cfg = NULL;
    pier_credentials_chain *chain = NULL;
    pier_credentials c = {0};
    int status = PIER_EXIT_OK;
    pier_aws_config_options co = PIER_AWS_CONFIG_OPTIONS_INIT;
    co.profile = profile;
    if (pier_aws_config_load(&cfg, &co) != 0) {
        status = pier_cli_fail(NULL);
        goto done;
    }
    pier_credentials_options o = PIER_CREDENTIALS_OPTIONS_INIT;
    o.profile = profile;
    pier_credentials_chain_new(&chain, &o);
    if (pier_credentials_get(chain, &c) != 0) {
        status = print_not_found(pier_error_last());
        goto done;
    }

    char masked[16];
    pier_credentials_mask(masked, sizeof masked, c.access_key_id);
    const char *region = pier_aws_config_region(cfg);
    int64_t now = (int64_t)time(NULL);
    if (json) {
        status = print_json(&c, masked, pier_aws_config_profile(cfg), region, now);
        goto done;
    }
    char expires[96] = "never (static credentials)";
    if (c.expiration) {
        char when[32], left[32];
        pier_time_iso8601(when, sizeof when, (time_t)c.expiration);
        format_left(left, sizeof left, c.expiration - now);
        snprintf(expires, sizeof expires, "%s (%s)", when, left);
    }
    printf("provider:    %s\n", c.provider);
    printf("source:      %s\n", c.source ? c.source : "");
    printf("access key:  %s%s\n", masked, c.session_token ? " (with a session token)" : "");
    printf("expires:     %s\n", expires);
    printf("profile:     %s\n", pier_aws_config_profile(cfg));
    printf("region:      %s\n", region ? region : "(not set: AWS_REGION or the profile's region)");
done:
    pier_credentials_clear(&c);
    pier_credentials_chain_free(chain);
    pier_aws_config_free(cfg);
    return status;
}
