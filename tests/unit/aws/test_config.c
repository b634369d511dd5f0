/*
 * test_config: the shared AWS configuration with an injected environment
 * and files in a temp directory: profile selection, the INI dialect
 * (comments, spaces, nested settings, continuations, junk lines), the
 * credentials file winning over the config file, region and endpoint
 * precedence (the SDKs' shared test cases), max_attempts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/config.h"
#include "base/error.h"
#include "base/file.h"
#include "base/log.h"
#include "base/mem.h"

/* A fake environment: NULL-terminated "NAME=value" strings. */
typedef struct {
    const char *vars[32];
} fake_env;

static const char *fake_getenv(void *ctx, const char *name)
{
    fake_env *e = ctx;
    size_t n = strlen(name);
    for (size_t i = 0; e->vars[i]; i++)
        if (strncmp(e->vars[i], name, n) == 0 && e->vars[i][n] == '=')
            return e->vars[i] + n + 1;
    return NULL;
}

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pier-test-config-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char *aws = pier_path_join(tmpdir, ".aws");
    assert_int_equal(pier_file_mkdirs(aws, 0700), 0);
    free(aws);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pier_file_remove_tree(tmpdir);
    return 0;
}

static void write_file(const char *rel, const char *text)
{
    char *p = pier_path_join(tmpdir, rel);
    assert_int_equal(pier_file_write_atomic(p, text, strlen(text), 0600), 0);
    free(p);
}

static void remove_file(const char *rel)
{
    char *p = pier_path_join(tmpdir, rel);
    unlink(p);
    free(p);
}

static char home_var[300];

static pier_aws_config *load(fake_env *env, const char *profile)
{
    snprintf(home_var, sizeof home_var, "HOME=%s", tmpdir);
    size_t i = 0;
    while (env->vars[i])
        i++;
    env->vars[i] = home_var;
    pier_aws_config_options o = PIER_AWS_CONFIG_OPTIONS_INIT;
    o.getenv = fake_getenv;
    o.getenv_ctx = env;
    o.profile = profile;
    pier_aws_config *c = NULL;
    int rc = pier_aws_config_load(&c, &o);
    env->vars[i] = NULL;
    if (rc != 0)
        fail_msg("load: %s", pier_error_last());
    return c;
}

static const char config_text[] = "# a comment\n"
                                  "; another\n"
                                  "[default]\n"
                                  "region = eu-west-1\n"
                                  "output=json\n"
                                  "\n"
                                  "[profile dev]\n"
                                  "  region   =   us-east-2   # trailing comment\n"
                                  "role_arn=arn:aws:iam::123456789012:role/dev;not-a-comment\n"
                                  "credential_process = /usr/bin/fetch --flag \"a b\"\n"
                                  "max_attempts = 7\n"
                                  "\n"
                                  "[profile   spaced   ]\r\n"
                                  "region = ap-south-1\r\n"
                                  "\n"
                                  "[unprefixed]\n"
                                  "region = should-be-ignored\n"
                                  "\n"
                                  "[profile multi]\n"
                                  "description = first line\n"
                                  "  second line\n"
                                  "services = local\n"
                                  "endpoint_url = https://global.example\n"
                                  "this line is junk\n"
                                  "= also junk\n"
                                  "\n"
                                  "[services local]\n"
                                  "s3 =\n"
                                  "  endpoint_url = http://127.0.0.1:9000\n"
                                  "  addressing_style = path\n"
                                  "cloudfront =\n"
                                  "  endpoint_url = http://127.0.0.1:9001 ; comment\n";

static const char credentials_text[] = "[default]\n"
                                       "aws_access_key_id = AKIDEFAULT\n"
                                       "aws_secret_access_key = secret/with+chars=\n"
                                       "region = from-credentials-file\n"
                                       "[dev]\n"
                                       "aws_access_key_id=AKIDEV\n"
                                       "[profile dev]\n"
                                       "aws_access_key_id=NOT-A-PROFILE-IN-THIS-FILE\n";

static void test_profiles_and_ini(void **state)
{
    (void)state;
    write_file(".aws/config", config_text);
    write_file(".aws/credentials", credentials_text);
    fake_env env = {{NULL}};
    pier_aws_config *c = load(&env, NULL);
    assert_string_equal(pier_aws_config_profile(c), "default");
    assert_false(pier_aws_config_profile_explicit(c));
    assert_true(pier_aws_config_profile_exists(c));
    const char *where = NULL;
    assert_string_equal(pier_aws_config_get(c, "aws_access_key_id", &where), "AKIDEFAULT");
    assert_string_equal(where, "~/.aws/credentials");
    assert_string_equal(pier_aws_config_get(c, "aws_secret_access_key", NULL),
                        "secret/with+chars=");
    /* credentials file wins over config file */
    assert_string_equal(pier_aws_config_get(c, "region", &where), "from-credentials-file");
    assert_string_equal(pier_aws_config_get(c, "output", &where), "json");
    assert_string_equal(where, "~/.aws/config");
    assert_string_equal(pier_aws_config_get(c, "OUTPUT", NULL), "json"); /* case-insensitive */
    bool exists = false;
    assert_string_equal(pier_aws_config_config_file(c, &exists), "~/.aws/config");
    assert_true(exists);
    assert_int_equal(pier_aws_config_max_attempts(c), 3);
    pier_aws_config_free(c);

    c = load(&env, "dev");
    assert_true(pier_aws_config_profile_explicit(c));
    assert_true(pier_aws_config_profile_from_option(c));
    assert_string_equal(pier_aws_config_get(c, "region", NULL), "us-east-2");
    assert_string_equal(pier_aws_config_get(c, "role_arn", NULL),
                        "arn:aws:iam::123456789012:role/dev;not-a-comment");
    assert_string_equal(pier_aws_config_get(c, "credential_process", NULL),
                        "/usr/bin/fetch --flag \"a b\"");
    assert_string_equal(pier_aws_config_get(c, "aws_access_key_id", NULL), "AKIDEV");
    assert_int_equal(pier_aws_config_max_attempts(c), 7);
    pier_aws_config_free(c);

    c = load(&env, "spaced");
    assert_string_equal(pier_aws_config_get(c, "region", NULL), "ap-south-1");
    pier_aws_config_free(c);

    /* "[unprefixed]" in the config file is not a profile */
    c = load(&env, "unprefixed");
    assert_false(pier_aws_config_profile_exists(c));
    assert_null(pier_aws_config_get(c, "region", NULL));
    pier_aws_config_free(c);

    c = load(&env, "multi");
    assert_string_equal(pier_aws_config_get(c, "description", NULL), "first line\nsecond line");
    assert_null(pier_aws_config_get(c, "this line is junk", NULL));
    assert_string_equal(pier_aws_config_endpoint(c, "S3"), "http://127.0.0.1:9000");
    assert_string_equal(pier_aws_config_endpoint(c, "CloudFront"), "http://127.0.0.1:9001");
    assert_string_equal(pier_aws_config_endpoint(c, "STS"), "https://global.example");
    pier_aws_config_free(c);

    /* AWS_PROFILE selects; the option beats it */
    fake_env env2 = {{"AWS_PROFILE=dev", NULL}};
    c = load(&env2, NULL);
    assert_string_equal(pier_aws_config_profile(c), "dev");
    assert_true(pier_aws_config_profile_explicit(c));
    assert_false(pier_aws_config_profile_from_option(c));
    pier_aws_config_free(c);
    c = load(&env2, "spaced");
    assert_string_equal(pier_aws_config_profile(c), "spaced");
    pier_aws_config_free(c);

    /* missing profile */
    c = load(&env, "nope");
    assert_false(pier_aws_config_profile_exists(c));
    pier_aws_config_free(c);
}

static void test_file_locations(void **state)
{
    (void)state;
    write_file("alt-config", "[profile x]\nregion = alt-region\n");
    write_file("alt-creds", "[x]\naws_access_key_id = AKIALT\n");
    char v1[400], v2[400];
    snprintf(v1, sizeof v1, "AWS_CONFIG_FILE=%s/alt-config", tmpdir);
    snprintf(v2, sizeof v2, "AWS_SHARED_CREDENTIALS_FILE=%s/alt-creds", tmpdir);
    fake_env env = {{v1, v2, "AWS_PROFILE=x", NULL}};
    pier_aws_config *c = load(&env, NULL);
    assert_string_equal(pier_aws_config_region(c), "alt-region");
    assert_string_equal(pier_aws_config_get(c, "aws_access_key_id", NULL), "AKIALT");
    bool exists;
    assert_string_equal(pier_aws_config_credentials_file(c, &exists), v2 + 28);
    assert_true(exists);
    pier_aws_config_free(c);

    /* "~/" in a variable is expanded */
    fake_env env2 = {{"AWS_CONFIG_FILE=~/alt-config", "AWS_PROFILE=x", NULL}};
    c = load(&env2, NULL);
    assert_string_equal(pier_aws_config_region(c), "alt-region");
    char *e = pier_aws_config_expand(c, "~/a/b");
    char want[400];
    snprintf(want, sizeof want, "%s/a/b", tmpdir);
    assert_string_equal(e, want);
    free(e);
    pier_aws_config_free(c);

    /* no files at all: empty, not an error */
    remove_file(".aws/config");
    remove_file(".aws/credentials");
    fake_env env3 = {{NULL}};
    c = load(&env3, NULL);
    assert_false(pier_aws_config_profile_exists(c));
    pier_aws_config_config_file(c, &exists);
    assert_false(exists);
    assert_null(pier_aws_config_region(c));
    pier_aws_config_free(c);

    /* a directory where the file should be is an error naming it */
    char *d = pier_path_join(tmpdir, ".aws/config");
    assert_int_equal(pier_file_mkdirs(d, 0700), 0);
    pier_aws_config_options o = PIER_AWS_CONFIG_OPTIONS_INIT;
    snprintf(home_var, sizeof home_var, "HOME=%s", tmpdir);
    fake_env env4 = {{home_var, NULL}};
    o.getenv = fake_getenv;
    o.getenv_ctx = &env4;
    assert_int_equal(pier_aws_config_load(&c, &o), PIER_EINVALID);
    assert_null(c);
    assert_non_null(strstr(pier_error_last(), "~/.aws/config is a directory"));
    pier_file_remove_tree(d);
    free(d);

    /* no HOME in an injected environment: no files, no crash */
    fake_env empty = {{NULL}};
    o.getenv_ctx = &empty;
    assert_int_equal(pier_aws_config_load(&c, &o), 0);
    assert_null(pier_aws_config_home(c));
    assert_false(pier_aws_config_profile_exists(c));
    pier_aws_config_free(c);
}

static void test_region(void **state)
{
    (void)state;
    write_file(".aws/config", "[default]\nregion = profile-region\n[profile empty]\nregion =\n");
    remove_file(".aws/credentials");
    fake_env both = {{"AWS_REGION=env-region", "AWS_DEFAULT_REGION=default-region", NULL}};
    pier_aws_config *c = load(&both, NULL);
    assert_string_equal(pier_aws_config_region(c), "env-region");
    pier_aws_config_free(c);
    fake_env def = {{"AWS_DEFAULT_REGION=default-region", "AWS_REGION=", NULL}};
    c = load(&def, NULL);
    assert_string_equal(pier_aws_config_region(c), "default-region");
    pier_aws_config_free(c);
    fake_env none = {{NULL}};
    c = load(&none, NULL);
    assert_string_equal(pier_aws_config_region(c), "profile-region");
    pier_aws_config_free(c);
    c = load(&none, "empty");
    assert_null(pier_aws_config_region(c));
    pier_aws_config_free(c);
}

/* The SDKs' shared endpoint tests (aws-cli's configured_endpoint_urls
 * suite): env service > env global > services section > profile global,
 * and the ignore switch. */
static void test_endpoints(void **state)
{
    (void)state;
    write_file(".aws/config", "[profile service_global_only]\n"
                              "endpoint_url = https://global.endpoint.aws\n"
                              "[profile service_specific_s3]\n"
                              "services = service_specific_s3\n"
                              "[profile global_and_service_specific_s3]\n"
                              "endpoint_url = https://global.endpoint.aws\n"
                              "services = service_specific_s3\n"
                              "[profile ignore_global_and_service_specific_s3]\n"
                              "endpoint_url = https://global.endpoint.aws\n"
                              "services = service_specific_s3\n"
                              "ignore_configured_endpoint_urls = true\n"
                              "[services service_specific_s3]\n"
                              "s3 =\n"
                              "  endpoint_url = https://s3.endpoint.aws\n"
                              "[default]\n");
    static const char *const envs[][3] = {
        {NULL},
        {"AWS_ENDPOINT_URL=https://global-from-envvar.endpoint.aws", NULL},
        {"AWS_ENDPOINT_URL_S3=https://s3-from-envvar.endpoint.aws", NULL},
        {"AWS_ENDPOINT_URL=https://global-from-envvar.endpoint.aws",
         "AWS_ENDPOINT_URL_S3=https://s3-from-envvar.endpoint.aws", NULL},
    };
    static const struct {
        const char *profile;
        int env;
        const char *want; /* NULL: the SDK default */
    } cases[] = {
        {"default", 0, NULL},
        {"service_global_only", 0, "https://global.endpoint.aws"},
        {"service_specific_s3", 0, "https://s3.endpoint.aws"},
        {"global_and_service_specific_s3", 0, "https://s3.endpoint.aws"},
        {"default", 1, "https://global-from-envvar.endpoint.aws"},
        {"service_global_only", 1, "https://global-from-envvar.endpoint.aws"},
        {"service_specific_s3", 1, "https://global-from-envvar.endpoint.aws"},
        {"global_and_service_specific_s3", 1, "https://global-from-envvar.endpoint.aws"},
        {"default", 2, "https://s3-from-envvar.endpoint.aws"},
        {"service_global_only", 2, "https://s3-from-envvar.endpoint.aws"},
        {"service_specific_s3", 2, "https://s3-from-envvar.endpoint.aws"},
        {"global_and_service_specific_s3", 2, "https://s3-from-envvar.endpoint.aws"},
        {"default", 3, "https://s3-from-envvar.endpoint.aws"},
        {"service_global_only", 3, "https://s3-from-envvar.endpoint.aws"},
        {"global_and_service_specific_s3", 3, "https://s3-from-envvar.endpoint.aws"},
        {"ignore_global_and_service_specific_s3", 3, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_env env = {{NULL}};
        for (int j = 0; envs[cases[i].env][j]; j++)
            env.vars[j] = envs[cases[i].env][j];
        pier_aws_config *c = load(&env, cases[i].profile);
        const char *got = pier_aws_config_endpoint(c, "S3");
        if (cases[i].want ? !got || strcmp(got, cases[i].want) != 0 : got != NULL)
            fail_msg("case %zu (%s, env %d): got %s, want %s", i, cases[i].profile, cases[i].env,
                     got ? got : "(none)", cases[i].want ? cases[i].want : "(none)");
        /* another service never sees the s3 settings */
        const char *sts = pier_aws_config_endpoint(c, "STS");
        if (sts && strstr(sts, "s3"))
            fail_msg("case %zu: STS got the S3 endpoint %s", i, sts);
        pier_aws_config_free(c);
    }
    /* the ignore switch from the environment */
    fake_env ign = {
        {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true", "AWS_ENDPOINT_URL=https://x.example", NULL}};
    pier_aws_config *c = load(&ign, "service_global_only");
    assert_null(pier_aws_config_endpoint(c, "S3"));
    pier_aws_config_free(c);
    /* service ids with spaces / dashes, upper-cased */
    fake_env svc = {{"AWS_ENDPOINT_URL_CODEPIPELINE=http://127.0.0.1:1",
                     "AWS_ENDPOINT_URL_ELASTIC_BEANSTALK=http://127.0.0.1:2", NULL}};
    c = load(&svc, NULL);
    assert_string_equal(pier_aws_config_endpoint(c, "CodePipeline"), "http://127.0.0.1:1");
    assert_string_equal(pier_aws_config_endpoint(c, "Elastic Beanstalk"), "http://127.0.0.1:2");
    assert_null(pier_aws_config_endpoint(c, "CloudFront"));
    pier_aws_config_free(c);
}

static void test_max_attempts(void **state)
{
    (void)state;
    write_file(".aws/config", "[default]\nmax_attempts = 5\n[profile bad]\nmax_attempts = lots\n");
    fake_env none = {{NULL}};
    pier_aws_config *c = load(&none, NULL);
    assert_int_equal(pier_aws_config_max_attempts(c), 5);
    pier_aws_config_free(c);
    fake_env env = {{"AWS_MAX_ATTEMPTS=2", NULL}};
    c = load(&env, NULL);
    assert_int_equal(pier_aws_config_max_attempts(c), 2);
    pier_aws_config_free(c);

    snprintf(home_var, sizeof home_var, "HOME=%s", tmpdir);
    static const char *const bad[] = {"AWS_MAX_ATTEMPTS=0", "AWS_MAX_ATTEMPTS=-1",
                                      "AWS_MAX_ATTEMPTS=3x", "AWS_MAX_ATTEMPTS=1000"};
    for (size_t i = 0; i < 4; i++) {
        fake_env e = {{bad[i], home_var, NULL}};
        pier_aws_config_options o = PIER_AWS_CONFIG_OPTIONS_INIT;
        o.getenv = fake_getenv;
        o.getenv_ctx = &e;
        assert_int_equal(pier_aws_config_load(&c, &o), PIER_EINVALID);
        assert_non_null(strstr(pier_error_last(), "AWS_MAX_ATTEMPTS"));
    }
    fake_env e = {{home_var, NULL}};
    pier_aws_config_options o = PIER_AWS_CONFIG_OPTIONS_INIT;
    o.getenv = fake_getenv;
    o.getenv_ctx = &e;
    o.profile = "bad";
    assert_int_equal(pier_aws_config_load(&c, &o), PIER_EINVALID);
    assert_string_equal(pier_error_last(), "~/.aws/config: profile bad: max_attempts: 'lots' is "
                                           "not a number of attempts (1 to 100)");
}

int main(void)
{
    pier_log_init(PIER_LOG_ERROR); /* the junk-line warnings are expected */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_profiles_and_ini, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_locations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_region, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_attempts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
