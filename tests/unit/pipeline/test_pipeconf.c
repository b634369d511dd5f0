/*
 * test_pipeconf: pier.yml parsing. Defaults on the embedded stack, a full
 * pipeline, durations, and table-driven bad inputs, each with the
 * "file:line:column: what" it must report.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "pipeline/pipeconf.h"

static pier_pipeconf *load(const char *text)
{
    pier_pipeconf *c = NULL;
    int rc = pier_pipeconf_load_string(&c, "pier.yml", "/proj", text, strlen(text));
    if (rc != 0)
        fail_msg("load: %s", pier_error_last());
    return c;
}

static void test_defaults(void **st)
{
    (void)st;
    pier_pipeconf *c =
        load("pipelines:\n  - name: web-dev\n    source: {repo: ., branch: develop}\n");
    assert_int_equal(c->count, 1);
    const pier_pipeconf_pipeline *p = pier_pipeconf_find(c, "web-dev");
    assert_non_null(p);
    assert_string_equal(p->repo, "/proj/.");
    assert_string_equal(p->branch, "develop");
    assert_string_equal(p->bucket, "web-dev");
    assert_string_equal(p->prefix, "");
    assert_string_equal(p->distribution, "EWEBDEVPIER000");
    assert_string_equal(p->host, "web-dev.localhost");
    assert_string_equal(p->buildspec, "buildspec.yml");
    assert_int_equal(p->poll_ms, 10000);
    assert_true(p->stage_invalidate);
    assert_null(pier_pipeconf_find(c, "nope"));
    pier_pipeconf_free(c);
}

static void test_full(void **st)
{
    (void)st;
    setenv("PIPECONF_T", "x", 1);
    pier_pipeconf *c =
        load("version: 1\n"
             "pipelines:\n"
             "  - name: dev\n"
             "    source:\n"
             "      repo: https://example.com/r.git\n"
             "      paths: [\"frontend/**\", buildspec.yml]\n"
             "      exclude: \"**/*.md\"\n"
             "      trigger: {poll: 500ms, webhook: {provider: github, "
             "secret-env: HOOK}}\n"
             "    build:\n"
             "      buildspec: ci/b.yml\n"
             "      env: {A: 1, B: two}\n"
             "      secrets: {TOKEN: {env: PIPECONF_T}, PUB: {env: X}}\n"
             "      allow-in-artifacts: [PUB]\n"
             "      timeout: 2m\n"
             "    deploy: {bucket: site-dev, prefix: app/}\n"
             "    cdn: {distribution: E123, host: dev.example}\n"
             "    actions: [{name: notify, command: ./n.sh, timeout: 5s}]\n"
             "    site: {rewrites: [{from: /storybook, to: /storybook/index.html}]}\n"
             "    stages: {invalidate: false}\n");
    const pier_pipeconf_pipeline *p = &c->pipelines[0];
    assert_string_equal(p->repo, "https://example.com/r.git");
    assert_int_equal(p->path_count, 2);
    assert_string_equal(p->paths[0], "frontend/**");
    assert_int_equal(p->exclude_count, 1);
    assert_int_equal(p->poll_ms, 500);
    assert_true(p->webhook);
    assert_string_equal(p->webhook_provider, "github");
    assert_string_equal(p->webhook_secret_env, "HOOK");
    assert_string_equal(p->buildspec, "ci/b.yml");
    assert_int_equal(p->env_count, 2);
    assert_string_equal(p->env[1].value, "two");
    assert_int_equal(p->secret_count, 2);
    assert_false(p->secrets[0].allow_in_artifacts);
    assert_true(p->secrets[1].allow_in_artifacts);
    assert_int_equal(p->timeout_sec, 120);
    assert_string_equal(p->bucket, "site-dev");
    assert_string_equal(p->prefix, "app/");
    assert_string_equal(p->distribution, "E123");
    assert_int_equal(p->action_count, 1);
    assert_int_equal(p->actions[0].timeout_sec, 5);
    assert_non_null(p->site);
    assert_false(p->stage_invalidate);
    assert_true(p->stage_deploy);
    pier_pipeconf_free(c);
}

static void test_durations(void **st)
{
    (void)st;
    unsigned long long ms = 0;
    assert_int_equal(pier_pipeconf_parse_duration("10s", &ms), 0);
    assert_int_equal(ms, 10000);
    assert_int_equal(pier_pipeconf_parse_duration("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(pier_pipeconf_parse_duration("3", &ms), 0);
    assert_int_equal(ms, 3000);
    assert_int_equal(pier_pipeconf_parse_duration("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(pier_pipeconf_parse_duration("10 s", &ms), PIER_EINVALID);
    assert_int_equal(pier_pipeconf_parse_duration("-1s", &ms), PIER_EINVALID);
    assert_int_equal(pier_pipeconf_parse_duration("", &ms), PIER_EINVALID);
}

static const struct {
    const char *text;   /* pier.yml */
    const char *expect; /* a part of the message, starting with the position */
} bad[] = {
    {"pipelines:\n  - name: app\n    source: {repo: .}\n    bild: {}\n", "pier.yml:4:5:"},
    {"pipelines:\n  - name: app\n    source: {repo: ., brnch: x}\n", "brnch"},
    {"pipelines:\n  - name: app\n", "pier.yml:2:5: pipeline app: source is required"},
    {"pipelines:\n  - name: Bad_Name\n    source: {repo: .}\n", "pier.yml:2:11:"},
    {"pipelines:\n  - name: app\n    source: {repo: .}\n  - name: app\n    source: {repo: .}\n",
     "defined twice"},
    {"pipelines:\n  - name: app\n    source: {repo: ., trigger: {poll: soon}}\n",
     "pier.yml:3:39: poll: bad duration"},
    {"pipelines:\n  - name: app\n    source: {repo: .}\n    build:\n      secrets: {T: abc}\n",
     "pier.yml:5:20: secret T"},
    {"pipelines:\n  - name: app\n    source: {repo: .}\n    build:\n      secrets: {T: {env: A, "
     "file: b}}\n",
     "exactly one of env or file"},
    {"pipelines:\n  - name: app\n    source: {repo: .}\n    build:\n      allow-in-artifacts: "
     "[NOPE]\n",
     "NOPE is not a secret"},
    {"pipelines:\n  - name: app\n    source: {repo: ., paths: [\"a/[b\"]}\n",
     "pier.yml:3:31: paths: pattern"},
    {"pipelines:\n  - name: app\n    source: {repo: .}\n    stages: {invalidate: maybe}\n",
     "pier.yml:4:26:"},
    {"pipelines: []\n", "at least one pipeline"},
    {"version: 2\npipelines:\n  - name: app\n    source: {repo: .}\n", "pier.yml:1:10: version 2"},
    {"pipelines:\n  - name: app\n    source: {repo: .}\n    site: {rewrites: [{from: x, to: "
     "/y}]}\n",
     "pier.yml:4"},
    {"pipelines:\n  - name: ab\n    source: {repo: .}\n", "3 to 63"},
};

static void test_bad(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pier_pipeconf *c = NULL;
        int rc =
            pier_pipeconf_load_string(&c, "pier.yml", "/proj", bad[i].text, strlen(bad[i].text));
        if (rc != PIER_EINVALID || !strstr(pier_error_last(), bad[i].expect))
            fail_msg("case %zu: rc %d, message '%s', want '%s'", i, rc, pier_error_last(),
                     bad[i].expect);
        assert_null(c);
    }
}

static void test_secret_file_mode(void **st)
{
    (void)st;
    char path[] = "/tmp/pier-pipeconf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "v\n", 2), 2);
    close(fd);
    chmod(path, 0644);
    char text[512];
    snprintf(text, sizeof text,
             "pipelines:\n  - name: app\n    source: {repo: .}\n    build:\n      secrets: {T: "
             "{file: %s}}\n",
             path);
    pier_pipeconf *c = NULL;
    assert_int_equal(pier_pipeconf_load_string(&c, "pier.yml", "/proj", text, strlen(text)),
                     PIER_EINVALID);
    assert_non_null(strstr(pier_error_last(), "0600"));
    chmod(path, 0600);
    assert_int_equal(pier_pipeconf_load_string(&c, "pier.yml", "/proj", text, strlen(text)), 0);
    assert_string_equal(c->pipelines[0].secrets[0].file, path);
    pier_pipeconf_free(c);
    unlink(path);
    assert_int_equal(pier_pipeconf_load(&c, "/nonexistent/pier.yml"), PIER_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_full),
        cmocka_unit_test(test_durations),        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_secret_file_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
