/*
 * test_stackconf: the `pier serve --config` file: a full example read into
 * buckets, sites and rules; defaults; and a table of bad files, each with
 * the line:column and words its error must carry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "stack/stackconf.h"

static const char full[] = "api-listen: 127.0.0.1:9100\n"
                           "edge-listen: 127.0.0.1:8100\n"
                           "edge:\n"
                           "  cache-size: 64MiB\n"
                           "  cache-object-max: 1M\n"
                           "buckets:\n"
                           "  - name: web-dev\n"
                           "    public-read: true\n"
                           "  - name: assets\n"
                           "distributions:\n"
                           "  - id: EDEV0000000001\n"
                           "    hosts: [web-dev.localhost, '*.dev.test']\n"
                           "    bucket: web-dev\n"
                           "    prefix: /main\n"
                           "    default-ttl: 600\n"
                           "    max-ttl: 3600\n"
                           "    rules:\n"
                           "      index: default.htm\n"
                           "      spa-fallback: /index.html\n"
                           "      not-found: /404.html\n"
                           "      rewrites:\n"
                           "        - {from: /storybook, to: /storybook/index.html}\n"
                           "        - {from: /docs/, to: /docs/index.html, prefix: true}\n"
                           "      redirects:\n"
                           "        - {from: /old, to: /new}\n"
                           "        - {from: /blog/, to: 'https://blog.test/', status: 308, "
                           "prefix: true}\n"
                           "      headers:\n"
                           "        - match: '**'\n"
                           "          set: {X-Frame-Options: DENY, X-Test: 'a b'}\n"
                           "        - match: ['*.css', '**/*.css']\n"
                           "          set: {Access-Control-Allow-Origin: '*'}\n"
                           "  - id: EPROD000000001\n"
                           "    host: '*'\n"
                           "    bucket: prod\n"
                           "    rules:\n"
                           "      index: false\n";

static void full_file(void **state)
{
    pier_stackconf *c = NULL;
    if (pier_stackconf_load_string(&c, "stack.yml", full, strlen(full)) != 0)
        fail_msg("%s", pier_error_last());
    assert_string_equal(c->api_listen, "127.0.0.1:9100");
    assert_string_equal(c->edge_listen, "127.0.0.1:8100");
    assert_int_equal(c->cache_bytes, 64 << 20);
    assert_int_equal(c->cache_object_max, 1 << 20);
    assert_int_equal(c->bucket_count, 2);
    assert_string_equal(c->buckets[0].name, "web-dev");
    assert_true(c->buckets[0].public_read_set && c->buckets[0].public_read);
    assert_false(c->buckets[1].public_read_set);
    assert_int_equal(c->site_count, 2);
    const pier_edge_site *s = c->sites[0];
    assert_string_equal(s->id, "EDEV0000000001");
    assert_int_equal(s->host_count, 2);
    assert_string_equal(s->hosts[1], "*.dev.test");
    assert_string_equal(s->bucket, "web-dev");
    assert_string_equal(s->prefix, "main/");
    assert_int_equal(s->ttl.min_ttl, 0);
    assert_int_equal(s->ttl.default_ttl, 600);
    assert_int_equal(s->ttl.max_ttl, 3600);
    assert_string_equal(s->index, "default.htm");
    assert_string_equal(s->spa_fallback, "/index.html");
    assert_string_equal(s->not_found, "/404.html");
    assert_int_equal(s->rules->rewrite_count, 2);
    assert_true(s->rules->rewrites[1].prefix);
    assert_int_equal(s->redirect_count, 2);
    assert_int_equal(s->redirects[0].status, 301); /* the default */
    assert_int_equal(s->redirects[1].status, 308);
    assert_true(s->redirects[1].prefix);
    assert_int_equal(s->header_count, 2);
    assert_int_equal(s->headers[0].set_count, 2);
    assert_string_equal(s->headers[0].set[1].value, "a b");
    assert_int_equal(s->headers[1].glob_count, 2);
    s = c->sites[1];
    assert_string_equal(s->hosts[0], "*");
    assert_null(s->index);
    assert_int_equal(s->ttl.default_ttl, 86400);
    pier_stackconf_free(c);

    /* an empty file is all defaults */
    assert_int_equal(pier_stackconf_load_string(&c, "empty.yml", "", 0), 0);
    assert_int_equal(c->site_count, 0);
    assert_null(c->api_listen);
    pier_stackconf_free(c);
    assert_int_equal(pier_stackconf_load_file(&c, "/nonexistent/stack.yml"), PIER_ENOTFOUND);
    pier_stackconf_free(NULL);
}

static void bad_files(void **state)
{
    static const struct {
        const char *text;
        const char *want; /* position and words */
    } cases[] = {
        {"nope: 1\n", "c.yml:1:1: unknown key 'nope'"},
        {"- a\n", "c.yml:1:1: the stack config is a mapping"},
        {"edge: {cache-size: lots}\n", "c.yml:1:20: expected a size"},
        {"edge: {cache: 1}\n", "unknown key 'cache'"},
        {"buckets: [{name: Bad_Name}]\n", "c.yml:1:18: bad bucket name 'Bad_Name'"},
        {"buckets: [{name: a1b}, {name: a1b}]\n", "listed twice"},
        {"buckets: [{name: abc, public-read: maybe}]\n", "expected true or false"},
        {"distributions: [{id: EDEV0000000001, bucket: b12}]\n", "needs a host"},
        {"distributions: [{host: x, bucket: b12}]\n", "needs an id"},
        {"distributions: [{id: EDEV0000000001, host: x}]\n", "needs a bucket"},
        {"distributions: [{id: edev, host: x, bucket: b12}]\n",
         "c.yml:1:22: distribution id 'edev'"},
        {"distributions:\n  - {id: EDEV0000000001, host: 'a:1', bucket: b12}\n",
         "c.yml:2:32: distribution EDEV0000000001: bad host 'a:1'"},
        {"distributions:\n  - {id: EDEV0000000001, host: a, hosts: [b], bucket: b12}\n",
         "either 'host' or 'hosts'"},
        {"distributions:\n  - {id: EDEV0000000001, host: a, bucket: b12}\n"
         "  - {id: EDEV0000000001, host: b, bucket: b12}\n",
         "c.yml:3:10: distribution EDEV0000000001 is defined twice"},
        {"distributions:\n  - {id: EDEV0000000001, host: a, bucket: b12}\n"
         "  - {id: EDEV0000000002, host: a, bucket: b12}\n",
         "host 'a' is already served by EDEV0000000001"},
        {"distributions:\n  - {id: EDEV0000000001, host: a, bucket: b12, default-ttl: -5}\n",
         "number of seconds"},
        {"distributions:\n  - {id: EDEV0000000001, host: a, bucket: b12, max-ttl: 10}\n",
         "min-ttl <= default-ttl <= max-ttl"},
        {"distributions:\n  - id: EDEV0000000001\n    host: a\n    bucket: b12\n"
         "    rules: {spa: /x}\n",
         "c.yml:5:13: unknown key 'spa'"},
        {"distributions:\n  - id: EDEV0000000001\n    host: a\n    bucket: b12\n"
         "    rules: {spa-fallback: index.html}\n",
         "c.yml:5:27: distribution EDEV0000000001: spa-fallback 'index.html'"},
        {"distributions:\n  - id: EDEV0000000001\n    host: a\n    bucket: b12\n"
         "    rules:\n      rewrites:\n        - {from: /a}\n",
         "c.yml:7:11: a rewrite needs 'from' and 'to'"},
        {"distributions:\n  - id: EDEV0000000001\n    host: a\n    bucket: b12\n"
         "    rules:\n      rewrites:\n        - {from: a, to: /b}\n",
         "c.yml:7:11: rewrite source 'a'"},
        {"distributions:\n  - id: EDEV0000000001\n    host: a\n    bucket: b12\n"
         "    rules:\n      redirects:\n        - {from: /a, to: /b, status: 200}\n",
         "redirect status 200"},
        {"distributions:\n  - id: EDEV0000000001\n    host: a\n    bucket: b12\n"
         "    rules:\n      redirects:\n        - {from: /a, to: /b, code: 301}\n",
         "unknown key 'code'"},
        {"distributions:\n  - id: EDEV0000000001\n    host: a\n    bucket: b12\n"
         "    rules:\n      headers:\n        - {match: '**', set: {Content-Length: 1}}\n",
         "c.yml:7:11: distribution EDEV0000000001: header 'Content-Length' is set by the edge"},
        {"distributions:\n  - id: EDEV0000000001\n    host: a\n    bucket: b12\n"
         "    rules:\n      headers:\n        - {set: {X-A: b}}\n",
         "missing 'match'"},
        {"distributions: {id: x}\n", "'distributions' must be a list"},
        {"key: [unclosed\n", "c.yml:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pier_stackconf *c = NULL;
        int rc = pier_stackconf_load_string(&c, "c.yml", cases[i].text, strlen(cases[i].text));
        if (rc == 0) {
            pier_stackconf_free(c);
            fail_msg("case %zu was accepted: %s", i, cases[i].text);
        }
        assert_null(c);
        if (!strstr(pier_error_last(), cases[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, pier_error_last(), cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_file),
        cmocka_unit_test(bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
