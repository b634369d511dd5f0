/*
 * config: the AWS SDKs' shared configuration, as they define it: the
 * environment, ~/.aws/config and ~/.aws/credentials, one selected profile.
 *
 * What it resolves
 *   - profile: the explicit one (an option, like --profile), else
 *     AWS_PROFILE, else "default".
 *   - files: AWS_CONFIG_FILE (default ~/.aws/config; sections "[default]",
 *     "[profile NAME]", "[services NAME]", "[sso-session NAME]") and
 *     AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials; sections
 *     "[NAME]"). A profile's properties are both files' sections merged,
 *     the credentials file winning.
 *   - region: AWS_REGION, AWS_DEFAULT_REGION, the profile's `region`.
 *   - endpoint for a service: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL,
 *     the profile's `services` section's "<service> = / endpoint_url = ...",
 *     the profile's `endpoint_url`; none at all when
 *     AWS_IGNORE_CONFIGURED_ENDPOINT_URLS or the profile's
 *     ignore_configured_endpoint_urls is true. SERVICE is the service id
 *     upper-cased with spaces and dashes as underscores (S3, CLOUDFRONT, STS,
 *     CODEPIPELINE); the services-section key is the same in lower case.
 *   - max_attempts: AWS_MAX_ATTEMPTS, the profile's `max_attempts`, 3.
 *
 * INI syntax accepted (what the SDKs write and read): "[section]" lines,
 * "key = value" with any spaces around '=', full-line comments starting
 * with '#' or ';', inline comments only after whitespace (" # ..."),
 * indented "sub = value" lines under a key with an empty value (nested
 * settings such as `s3 =` / `  endpoint_url = ...`), indented lines under a
 * key with a value continue that value. A line that fits none of these is
 * skipped with a warning naming file:line; a missing file is simply empty.
 *
 * The environment is read through a function pointer so tests (and the
 * stack, for builds) can supply their own. An empty variable counts as
 * unset.
 *
 * Ownership: pier_aws_config_load gives the caller the object (free with
 * pier_aws_config_free); every string it returns is borrowed from it (or
 * from the environment) and lives as long as it.
 */
#ifndef PIER_AWS_CONFIG_H
#define PIER_AWS_CONFIG_H

#include <stdbool.h>

/* Returns the value of an environment variable, or NULL when unset. */
typedef const char *(*pier_aws_getenv_fn)(void *ctx, const char *name);

typedef struct {
    const char *profile;       /* explicit profile; NULL: AWS_PROFILE, then "default" */
    pier_aws_getenv_fn getenv; /* NULL: the process environment */
    void *getenv_ctx;          /* its context */
} pier_aws_config_options;

#define PIER_AWS_CONFIG_OPTIONS_INIT                                                               \
    {                                                                                              \
        NULL, NULL, NULL                                                                           \
    }

typedef struct pier_aws_config pier_aws_config;

/* Reads the environment and both files. Fails (PIER_EINVALID, naming the
 * setting) only on an invalid max_attempts or an unreadable file. */
int pier_aws_config_load(pier_aws_config **out, const pier_aws_config_options *opts);
void pier_aws_config_free(pier_aws_config *c);

/* The environment the config was loaded with (NULL when unset or empty). */
const char *pier_aws_config_env(const pier_aws_config *c, const char *name);

/* The selected profile's name, and whether it was named explicitly (option
 * or AWS_PROFILE) rather than defaulted. */
const char *pier_aws_config_profile(const pier_aws_config *c);
bool pier_aws_config_profile_explicit(const pier_aws_config *c);
/* Whether the option (not AWS_PROFILE) named it: the AWS CLI's --profile. */
bool pier_aws_config_profile_from_option(const pier_aws_config *c);
/* Whether the selected profile has a section in either file. */
bool pier_aws_config_profile_exists(const pier_aws_config *c);

/* A property of the selected profile (credentials file first), or NULL.
 * Nested settings are "parent.child" ("s3.endpoint_url"). Keys compare
 * case-insensitively. *where (may be NULL) gets the file it came from. */
const char *pier_aws_config_get(const pier_aws_config *c, const char *key, const char **where);

/* The two files as the user would name them ("~/.aws/config" for the
 * default, else the path given), and whether each exists. */
const char *pier_aws_config_config_file(const pier_aws_config *c, bool *exists);
const char *pier_aws_config_credentials_file(const pier_aws_config *c, bool *exists);
/* The home directory used for "~" (NULL when unknown). */
const char *pier_aws_config_home(const pier_aws_config *c);
/* Expands a leading "~/" with the home directory: malloc'ed. */
char *pier_aws_config_expand(const pier_aws_config *c, const char *path);

/* The region, or NULL when none is configured. */
const char *pier_aws_config_region(const pier_aws_config *c);
/* The configured endpoint URL for a service id ("S3", "CloudFront",
 * "STS", "CodePipeline"), or NULL when none (use the AWS default). */
const char *pier_aws_config_endpoint(const pier_aws_config *c, const char *service_id);
/* AWS_MAX_ATTEMPTS / max_attempts / 3. */
int pier_aws_config_max_attempts(const pier_aws_config *c);

#endif
