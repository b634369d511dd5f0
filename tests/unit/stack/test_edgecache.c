/*
 * test_edgecache: the edge cache with a fake clock: the TTL table
 * (CloudFront's rules, data-driven), freshness and expiry, the byte bound
 * and LRU order, references that outlive eviction, purges by path, by
 * source object and by prefix, and the epoch that keeps a slow miss from
 * undoing an invalidation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "stack/edgecache.h"

#define NOW_S 1700000000LL

static void ttl_table(void **state)
{
    pier_edgecache_ttl_policy def = PIER_EDGECACHE_TTL_POLICY_INIT;
    pier_edgecache_ttl_policy min60 = {60, 300, 3600};
    static const struct {
        int policy; /* 0: CloudFront's defaults, 1: min 60 / default 300 / max 3600 */
        const char *cc;
        const char *expires;
        int64_t want;
    } cases[] = {
        {0, NULL, NULL, 86400},        /* nothing: DefaultTTL */
        {0, "", NULL, 86400},          /* empty header: same */
        {0, "public", NULL, 86400},    /* no time: DefaultTTL */
        {0, "max-age=300", NULL, 300}, /* max-age */
        {0, "public, max-age=31536000, immutable", NULL, 31536000},
        {0, "max-age=99999999999", NULL, 31536000}, /* clamped to MaxTTL */
        {0, "max-age=60, s-maxage=600", NULL, 600}, /* s-maxage wins */
        {0, "s-maxage=5", NULL, 5},
        {0, "MAX-AGE = 42", NULL, 42},   /* case, spaces */
        {0, "max-age=\"30\"", NULL, 30}, /* quoted */
        {0, "max-age=0", NULL, 0},       /* revalidate: not kept */
        {0, "max-age=abc", NULL, 86400}, /* unreadable: ignored */
        {0, "no-cache", NULL, 0},        /* MinTTL 0: not cached */
        {0, "no-store", NULL, 0},
        {0, "private, max-age=600", NULL, 0},
        {0, "private=\"set-cookie\"", NULL, 0},
        {0, "public, NO-CACHE", NULL, 0},
        {0, NULL, "Tue, 14 Nov 2023 23:13:20 GMT", 3600},       /* NOW_S + 3600 */
        {0, NULL, "Tue, 14 Nov 2023 21:13:20 GMT", 0},          /* past */
        {0, NULL, "garbage", 0},                                /* unparsable: expired */
        {0, "max-age=10", "Tue, 14 Nov 2023 23:13:20 GMT", 10}, /* max-age wins */
        {1, NULL, NULL, 300},
        {1, "max-age=5", NULL, 60},      /* raised to MinTTL */
        {1, "max-age=7200", NULL, 3600}, /* lowered to MaxTTL */
        {1, "no-store", NULL, 60},       /* MinTTL > 0 caches anyway */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t got = pier_edgecache_ttl(cases[i].policy ? &min60 : &def, cases[i].cc,
                                         cases[i].expires, NOW_S);
        if (got != cases[i].want)
            fail_msg("case %zu (%s | %s): got %lld, want %lld", i, cases[i].cc ? cases[i].cc : "-",
                     cases[i].expires ? cases[i].expires : "-", (long long)got,
                     (long long)cases[i].want);
    }
    assert_int_equal(pier_edgecache_ttl(NULL, NULL, NULL, NOW_S), 86400);
}

static pier_edgecache_object make_obj(const char *source, const char *body)
{
    pier_edgecache_object o = {0};
    o.status = 200;
    o.size = strlen(body);
    o.body = pier_strdup(body);
    o.source = pier_strdup(source);
    snprintf(o.etag, sizeof o.etag, "\"%s\"", body);
    pier_edgecache_object_add_header(&o, "Content-Type", "text/plain");
    return o;
}

static const char *body_of(pier_edgecache_entry *e)
{
    return pier_edgecache_entry_object(e)->body;
}

static void put_get_expire(void **state)
{
    pier_edgecache *c = pier_edgecache_new(0);
    int64_t t = NOW_S * 1000;
    pier_edgecache_object o = make_obj("/index.html", "v1");
    pier_edgecache_entry *e = pier_edgecache_put(c, "E1", "/", &o, t, 60, 0);
    assert_non_null(e);
    assert_true(pier_edgecache_entry_cached(e));
    assert_null(o.body); /* taken over */
    pier_edgecache_release(e);

    assert_null(pier_edgecache_get(c, "E2", "/", t)); /* other scope */
    assert_null(pier_edgecache_get(c, "E1", "/index.html", t));
    e = pier_edgecache_get(c, "E1", "/", t + 59999);
    assert_non_null(e);
    assert_string_equal(body_of(e), "v1");
    assert_int_equal(pier_edgecache_entry_age(e, t + 59999), 59);
    pier_edgecache_release(e);
    /* fresh for exactly 60 s */
    assert_null(pier_edgecache_get(c, "E1", "/", t + 60000));
    pier_edgecache_stats st;
    pier_edgecache_get_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);

    /* ttl 0: handed back, not kept */
    o = make_obj("/a", "x");
    e = pier_edgecache_put(c, "E1", "/a", &o, t, 0, 0);
    assert_false(pier_edgecache_entry_cached(e));
    assert_string_equal(body_of(e), "x");
    pier_edgecache_release(e);
    assert_null(pier_edgecache_get(c, "E1", "/a", t));

    /* a put replaces */
    o = make_obj("/a", "one");
    pier_edgecache_release(pier_edgecache_put(c, "E1", "/a", &o, t, 100, 0));
    o = make_obj("/a", "two");
    pier_edgecache_release(pier_edgecache_put(c, "E1", "/a", &o, t, 100, 0));
    e = pier_edgecache_get(c, "E1", "/a", t);
    assert_string_equal(body_of(e), "two");
    pier_edgecache_release(e);
    pier_edgecache_get_stats(c, &st);
    assert_int_equal(st.entries, 1);
    pier_edgecache_free(c);
}

static void lru_bound(void **state)
{
    char big[1001];
    memset(big, 'b', 1000);
    big[1000] = 0;
    /* room for three entries of ~1.3 KB, not four */
    uint64_t one = PIER_EDGECACHE_ENTRY_OVERHEAD + 1000 + 2 + 4 + 4 + strlen("Content-Type") +
                   strlen("text/plain") + 16;
    pier_edgecache *c = pier_edgecache_new(one * 3 + 10);
    int64_t t = NOW_S * 1000;
    const char *paths[] = {"/k1", "/k2", "/k3", "/k4"};
    for (int i = 0; i < 3; i++) {
        pier_edgecache_object o = make_obj(paths[i], big);
        pier_edgecache_release(pier_edgecache_put(c, "E1", paths[i], &o, t, 3600, 0));
    }
    pier_edgecache_stats st;
    pier_edgecache_get_stats(c, &st);
    assert_int_equal(st.entries, 3);
    assert_true(st.bytes <= st.max_bytes);
    /* touch k1 so k2 is the least recently used */
    pier_edgecache_release(pier_edgecache_get(c, "E1", "/k1", t));
    pier_edgecache_object o = make_obj(paths[3], big);
    pier_edgecache_release(pier_edgecache_put(c, "E1", "/k4", &o, t, 3600, 0));
    pier_edgecache_get_stats(c, &st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.evictions, 1);
    assert_null(pier_edgecache_get(c, "E1", "/k2", t));
    pier_edgecache_entry *e;
    assert_non_null(e = pier_edgecache_get(c, "E1", "/k1", t));
    pier_edgecache_release(e);
    assert_non_null(e = pier_edgecache_get(c, "E1", "/k3", t));
    pier_edgecache_release(e);
    assert_non_null(e = pier_edgecache_get(c, "E1", "/k4", t));
    pier_edgecache_release(e);

    /* bigger than the whole cache: served, never kept, nothing evicted */
    char *huge = pier_malloc(one * 4);
    memset(huge, 'h', one * 4 - 1);
    huge[one * 4 - 1] = 0;
    o = make_obj("/huge", huge);
    free(huge);
    e = pier_edgecache_put(c, "E1", "/huge", &o, t, 3600, 0);
    assert_false(pier_edgecache_entry_cached(e));
    pier_edgecache_release(e);
    pier_edgecache_get_stats(c, &st);
    assert_int_equal(st.entries, 3);
    pier_edgecache_free(c);
}

static void references_outlive_eviction(void **state)
{
    pier_edgecache *c = pier_edgecache_new(0);
    int64_t t = NOW_S * 1000;
    pier_edgecache_object o = make_obj("/a", "in flight");
    pier_edgecache_release(pier_edgecache_put(c, "E1", "/a", &o, t, 3600, 0));
    pier_edgecache_entry *held = pier_edgecache_get(c, "E1", "/a", t);
    /* purged and replaced while a response still sends it */
    assert_int_equal(pier_edgecache_purge(c, "E1", "/a"), 1);
    o = make_obj("/a", "new");
    pier_edgecache_release(pier_edgecache_put(c, "E1", "/a", &o, t, 3600, 1));
    assert_string_equal(body_of(held), "in flight");
    assert_false(pier_edgecache_entry_cached(held));
    pier_edgecache_release(held); /* freed here (ASan checks) */
    /* an entry held past the cache's end */
    held = pier_edgecache_get(c, "E1", "/a", t);
    pier_edgecache_free(c);
    assert_string_equal(body_of(held), "new");
    pier_edgecache_release(held);
    pier_edgecache_release(NULL);
}

static size_t count(pier_edgecache *c)
{
    pier_edgecache_stats st;
    pier_edgecache_get_stats(c, &st);
    return (size_t)st.entries;
}

static void purge(void **state)
{
    pier_edgecache *c = pier_edgecache_new(0);
    int64_t t = NOW_S * 1000;
    static const struct {
        const char *scope, *path, *source;
    } entries[] = {
        {"E1", "/", "/index.html"},           {"E1", "/index.html", "/index.html"},
        {"E1", "/app/route", "/index.html"}, /* SPA fallback */
        {"E1", "/img/a.png", "/img/a.png"},   {"E1", "/img/b/c.png", "/img/b/c.png"},
        {"E1", "/imgs.txt", "/imgs.txt"},     {"E1", "/storybook", "/storybook/index.html"},
        {"E2", "/index.html", "/index.html"},
    };
    for (size_t i = 0; i < sizeof entries / sizeof *entries; i++) {
        pier_edgecache_object o = make_obj(entries[i].source, "x");
        pier_edgecache_release(
            pier_edgecache_put(c, entries[i].scope, entries[i].path, &o, t, 3600, 0));
    }
    assert_int_equal(count(c), 8);
    uint64_t epoch = pier_edgecache_epoch(c);
    /* nothing matches: still a purge (the epoch moves) */
    assert_int_equal(pier_edgecache_purge(c, "E1", "/nope"), 0);
    assert_true(pier_edgecache_epoch(c) > epoch);
    /* by source: the object and every path that served it, in E1 only */
    assert_int_equal(pier_edgecache_purge(c, "E1", "/index.html"), 3);
    assert_int_equal(count(c), 5);
    pier_edgecache_entry *e = pier_edgecache_get(c, "E2", "/index.html", t);
    assert_non_null(e);
    pier_edgecache_release(e);
    /* prefix */
    assert_int_equal(pier_edgecache_purge(c, "E1", "/img/*"), 2);
    e = pier_edgecache_get(c, "E1", "/imgs.txt", t);
    assert_non_null(e);
    pier_edgecache_release(e);
    /* a viewer path purges its rewrite's entry */
    assert_int_equal(pier_edgecache_purge(c, "E1", "/storybook"), 1);
    /* everything */
    assert_int_equal(pier_edgecache_purge(c, "E1", "/*"), 1);
    assert_int_equal(count(c), 1);
    pier_edgecache_free(c);
}

static void epoch_blocks_stale_insert(void **state)
{
    pier_edgecache *c = pier_edgecache_new(0);
    int64_t t = NOW_S * 1000;
    uint64_t epoch = pier_edgecache_epoch(c); /* a miss starts reading the origin */
    pier_edgecache_purge(c, "E1", "/a");      /* an invalidation lands meanwhile */
    pier_edgecache_object o = make_obj("/a", "old");
    pier_edgecache_entry *e = pier_edgecache_put(c, "E1", "/a", &o, t, 3600, epoch);
    assert_false(pier_edgecache_entry_cached(e)); /* served once, not kept */
    pier_edgecache_release(e);
    assert_null(pier_edgecache_get(c, "E1", "/a", t));
    pier_edgecache_free(c);
}

static void many_entries_grow(void **state)
{
    pier_edgecache *c = pier_edgecache_new(0);
    int64_t t = NOW_S * 1000;
    char path[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(path, sizeof path, "/f%d", i);
        pier_edgecache_object o = make_obj(path, "x");
        pier_edgecache_release(pier_edgecache_put(c, "E1", path, &o, t, 3600, 0));
    }
    assert_int_equal(count(c), 5000);
    for (int i = 0; i < 5000; i += 499) {
        snprintf(path, sizeof path, "/f%d", i);
        pier_edgecache_entry *e = pier_edgecache_get(c, "E1", path, t);
        assert_non_null(e);
        assert_string_equal(pier_edgecache_entry_object(e)->source, path);
        pier_edgecache_release(e);
    }
    assert_int_equal(pier_edgecache_purge(c, "E1", "/f1*"), 1111);
    pier_edgecache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ttl_table),
        cmocka_unit_test(put_get_expire),
        cmocka_unit_test(lru_bound),
        cmocka_unit_test(references_outlive_eviction),
        cmocka_unit_test(purge),
        cmocka_unit_test(epoch_blocks_stale_insert),
        cmocka_unit_test(many_entries_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
