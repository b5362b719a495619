/* tests/unit/test_redis_dedup.c - nm_redis_dedup window semantics and
 * nm_dedup_id's exact strings. */
#include <stdio.h>
#include <string.h>

#include "bus_helpers.h"

static bool
dup(nm_redis_dedup *d, const char *id)
{
    return nm_redis_dedup_is_duplicate(d, id, strlen(id));
}

Test(redis_dedup, test_and_insert)
{
    nm_redis_dedup *d;
    NM_ASSERT_OK(nm_redis_dedup_new(8, &d));
    cr_assert(nm_redis_dedup_is_empty(d));
    cr_assert_eq(nm_redis_dedup_len(d), 0);
    cr_assert_not(dup(d, "a:0:0:0"), "first sight is new");
    cr_assert(dup(d, "a:0:0:0"), "second sight is a duplicate");
    cr_assert(dup(d, "a:0:0:0"));
    cr_assert_not(dup(d, "a:0:0:1"));
    cr_assert_eq(nm_redis_dedup_len(d), 2);
    cr_assert_not(nm_redis_dedup_is_empty(d));
    /* Binary-safe on length: a prefix is a different id. */
    cr_assert_not(nm_redis_dedup_is_duplicate(d, "a:0:0:0", 5));
    cr_assert(nm_redis_dedup_is_duplicate(d, "a:0:0:0xyz", 5));
    nm_redis_dedup_free(d);
}

Test(redis_dedup, fifo_window_evicts_oldest)
{
    nm_redis_dedup *d;
    NM_ASSERT_OK(nm_redis_dedup_new(3, &d));
    cr_assert_not(dup(d, "1"));
    cr_assert_not(dup(d, "2"));
    cr_assert_not(dup(d, "3"));
    cr_assert_eq(nm_redis_dedup_len(d), 3);
    cr_assert_not(dup(d, "4")); /* evicts "1" */
    cr_assert_eq(nm_redis_dedup_len(d), 3);
    cr_assert(dup(d, "2"));
    cr_assert(dup(d, "3"));
    cr_assert(dup(d, "4"));
    cr_assert_not(dup(d, "1"), "the oldest left the window");
    /* "1" re-entered and evicted "2". */
    cr_assert(dup(d, "1"));
    cr_assert_not(dup(d, "2"));
    nm_redis_dedup_free(d);
}

Test(redis_dedup, reobservation_does_not_refresh)
{
    nm_redis_dedup *d;
    NM_ASSERT_OK(nm_redis_dedup_new(3, &d));
    cr_assert_not(dup(d, "a"));
    cr_assert_not(dup(d, "b"));
    cr_assert_not(dup(d, "c"));
    /* Seeing "a" again would move it to the back in an LRU; in the FIFO
     * window it stays the oldest... */
    cr_assert(dup(d, "a"));
    cr_assert(dup(d, "a"));
    cr_assert_not(dup(d, "d")); /* ...so "d" evicts "a", not "b" */
    cr_assert(dup(d, "b"));
    cr_assert(dup(d, "c"));
    cr_assert(dup(d, "d"));
    cr_assert_not(dup(d, "a"), "re-observation did not refresh 'a'");
    nm_redis_dedup_free(d);
}

Test(redis_dedup, capacity_clamping_and_default)
{
    nm_redis_dedup *d;
    NM_ASSERT_OK(nm_redis_dedup_new(0, &d));
    cr_assert_eq(nm_redis_dedup_capacity(d), NM_REDIS_DEDUP_DEFAULT);
    cr_assert_eq(nm_redis_dedup_capacity(d), 4096);
    nm_redis_dedup_free(d);

    NM_ASSERT_OK(nm_redis_dedup_new(1, &d));
    cr_assert_eq(nm_redis_dedup_capacity(d), 1);
    cr_assert_not(dup(d, "x"));
    cr_assert(dup(d, "x"));
    cr_assert_not(dup(d, "y"));
    cr_assert_not(dup(d, "x"), "capacity 1 remembers only the last id");
    cr_assert_eq(nm_redis_dedup_len(d), 1);
    nm_redis_dedup_free(d);

    NM_ASSERT_OK(nm_redis_dedup_new((size_t)1 << 24, &d));
    cr_assert_eq(nm_redis_dedup_capacity(d), (size_t)1 << 24);
    nm_redis_dedup_free(d);

    NM_ASSERT_OK(nm_redis_dedup_new(((size_t)1 << 24) + 1, &d));
    cr_assert_eq(nm_redis_dedup_capacity(d), NM_REDIS_DEDUP_MAX);
    nm_redis_dedup_free(d);

    NM_ASSERT_OK(nm_redis_dedup_new(SIZE_MAX, &d));
    cr_assert_eq(nm_redis_dedup_capacity(d), NM_REDIS_DEDUP_MAX);
    nm_redis_dedup_free(d);
}

Test(redis_dedup, clear_and_len)
{
    nm_redis_dedup *d;
    NM_ASSERT_OK(nm_redis_dedup_new(100, &d));
    char id[32];
    for (int i = 0; i < 250; i++) {
        snprintf(id, sizeof(id), "n:0:0:%d", i);
        cr_assert_not(dup(d, id));
        cr_assert_eq(nm_redis_dedup_len(d), i < 100 ? (size_t)i + 1 : 100);
    }
    /* Exactly the last 100 are remembered. */
    for (int i = 150; i < 250; i++) {
        snprintf(id, sizeof(id), "n:0:0:%d", i);
        cr_assert(dup(d, id), "%s should be in the window", id);
    }
    cr_assert_eq(nm_redis_dedup_len(d), 100);
    cr_assert_not(dup(d, "n:0:0:149"), "149 left the window");
    nm_redis_dedup_clear(d);
    cr_assert(nm_redis_dedup_is_empty(d));
    cr_assert_eq(nm_redis_dedup_len(d), 0);
    cr_assert_eq(nm_redis_dedup_capacity(d), 100);
    cr_assert_not(dup(d, "n:0:0:249"), "cleared");
    cr_assert_eq(nm_redis_dedup_len(d), 1);
    nm_redis_dedup_free(d);
}

Test(redis_dedup, large_window_churn)
{
    /* Many evictions through the open-addressing index stay exact. */
    nm_redis_dedup *d;
    NM_ASSERT_OK(nm_redis_dedup_new(1000, &d));
    char id[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "%d", i);
        cr_assert_not(dup(d, id));
        if (i >= 999) {
            snprintf(id, sizeof(id), "%d", i - 999);
            cr_assert(dup(d, id), "window holds %d", i - 999);
        }
    }
    cr_assert_eq(nm_redis_dedup_len(d), 1000);
    nm_redis_dedup_free(d);
}

Test(redis_dedup, null_safety)
{
    cr_assert_not(nm_redis_dedup_is_duplicate(NULL, "x", 1));
    cr_assert_eq(nm_redis_dedup_len(NULL), 0);
    cr_assert_eq(nm_redis_dedup_capacity(NULL), 0);
    cr_assert(nm_redis_dedup_is_empty(NULL));
    nm_redis_dedup_clear(NULL);
    nm_redis_dedup_free(NULL);
    NM_ASSERT_ERR(nm_redis_dedup_new(4, NULL), NM_EINVAL);
    nm_redis_dedup *d;
    NM_ASSERT_OK(nm_redis_dedup_new(4, &d));
    cr_assert_not(nm_redis_dedup_is_duplicate(d, NULL, 0));
    nm_redis_dedup_free(d);
}

Test(redis_dedup, dedup_id_exact_strings)
{
    char out[64];
    /* Lowercase hex nonce without padding, then decimals. */
    cr_assert_eq(nm_dedup_id(out, sizeof(out), 0xabcdefULL, 3, 1000, 7), 15);
    cr_assert_str_eq(out, "abcdef:3:1000:7");
    /* The largest id a batch can produce (index < batch_max <= 10^6). */
    cr_assert_eq(
        nm_dedup_id(out, sizeof(out), UINT64_MAX, 65535, UINT64_MAX, 999999),
        50);
    cr_assert_str_eq(out,
                     "ffffffffffffffff:65535:18446744073709551615:999999");
    cr_assert_gt(nm_dedup_id(out, sizeof(out), 1, 0, 0, 0), 0);
    cr_assert_str_eq(out, "1:0:0:0");
    NM_ASSERT_ERR(nm_dedup_id(out, 4, 1, 0, 0, 0), NM_ERANGE);
}
