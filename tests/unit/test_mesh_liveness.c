/*
 * tests/unit/test_mesh_liveness.c - the failure detector (exact
 * boundaries with small timeouts, recovery, clock steps), the pingwave
 * duplicate filter (window, expiry, memory bound, a seeded comparison
 * with a plain list), withdrawal damping and topology pingwave pacing.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "mesh/liveness.h"

#define MS 1000ull      /* µs */
#define SEC 1000000ull  /* µs */
#define T0 123456789ull /* an arbitrary start time */

/* ================================================== failure detector */

Test(mesh_liveness, fd_config)
{
    nmi_fd d;
    cr_assert_eq(nmi_fd_init(NULL, NULL, 0), NM_EINVAL);
    nmi_fd_config bad = {.suspect_after = 4, .fail_after = 3};
    cr_assert_eq(nmi_fd_init(&d, &bad, 0), NM_EINVAL);
    /* Defaults: upstream's 30 s, 2 and 3 missed timeouts. */
    cr_assert_eq(nmi_fd_init(&d, NULL, T0), NM_OK);
    cr_assert_eq(nmi_fd_state_get(&d), NMI_FD_HEALTHY);
    cr_assert_eq(nmi_fd_last_heard(&d), T0);
    cr_assert_eq(nmi_fd_next_change(&d), T0 + 60 * SEC);
    bool ch;
    cr_assert_eq(nmi_fd_check(&d, T0 + 60 * SEC - 1, &ch), NMI_FD_HEALTHY);
    cr_assert_not(ch);
    cr_assert_eq(nmi_fd_check(&d, T0 + 60 * SEC, &ch), NMI_FD_SUSPECT);
    cr_assert(ch);
    cr_assert_eq(nmi_fd_next_change(&d), T0 + 90 * SEC);
    cr_assert_eq(nmi_fd_check(&d, T0 + 90 * SEC - 1, &ch), NMI_FD_SUSPECT);
    cr_assert_not(ch);
    cr_assert_eq(nmi_fd_check(&d, T0 + 90 * SEC, &ch), NMI_FD_FAILED);
    cr_assert(ch);
    cr_assert_eq(nmi_fd_next_change(&d), UINT64_MAX);
    cr_assert_str_eq(nmi_fd_state_name(NMI_FD_HEALTHY), "healthy");
    cr_assert_str_eq(nmi_fd_state_name(NMI_FD_SUSPECT), "suspect");
    cr_assert_str_eq(nmi_fd_state_name(NMI_FD_FAILED), "failed");
    cr_assert_str_eq(nmi_fd_state_name((nmi_fd_state)9), "?");
}

/* 20 ms timeout: every transition at its exact microsecond. */
Test(mesh_liveness, fd_small_timeout_boundaries)
{
    const uint64_t to = 20 * MS;
    nmi_fd_config cfg = {.timeout_us = to};
    nmi_fd d;
    cr_assert_eq(nmi_fd_init(&d, &cfg, T0), NM_OK);
    bool ch = true;
    cr_assert_eq(nmi_fd_missed(&d, T0), 0);
    cr_assert_eq(nmi_fd_missed(&d, T0 + to - 1), 0);
    cr_assert_eq(nmi_fd_missed(&d, T0 + to), 1);
    cr_assert_eq(nmi_fd_missed(&d, T0 + 2 * to - 1), 1);
    cr_assert_eq(nmi_fd_missed(&d, T0 + 2 * to), 2);
    cr_assert_eq(nmi_fd_missed(&d, T0 - 5), 0); /* before last heard */
    /* One missed timeout is still healthy. */
    cr_assert_eq(nmi_fd_check(&d, T0 + to, &ch), NMI_FD_HEALTHY);
    cr_assert_not(ch);
    cr_assert_eq(nmi_fd_check(&d, T0 + 2 * to - 1, &ch), NMI_FD_HEALTHY);
    cr_assert_not(ch);
    cr_assert_eq(nmi_fd_check(&d, T0 + 2 * to, &ch), NMI_FD_SUSPECT);
    cr_assert(ch);
    cr_assert_eq(nmi_fd_check(&d, T0 + 2 * to, &ch), NMI_FD_SUSPECT);
    cr_assert_not(ch); /* changed only once */
    cr_assert_eq(nmi_fd_check(&d, T0 + 3 * to - 1, &ch), NMI_FD_SUSPECT);
    cr_assert_not(ch);
    cr_assert_eq(nmi_fd_check(&d, T0 + 3 * to, &ch), NMI_FD_FAILED);
    cr_assert(ch);
    /* Failed stays failed, however long, and check(NULL) is fine. */
    cr_assert_eq(nmi_fd_check(&d, T0 + 1000 * to, &ch), NMI_FD_FAILED);
    cr_assert_not(ch);
    cr_assert_eq(nmi_fd_check(&d, UINT64_MAX, NULL), NMI_FD_FAILED);
    /* A clock step back does not recover it: only heard() does. */
    cr_assert_eq(nmi_fd_check(&d, T0, &ch), NMI_FD_FAILED);
    cr_assert_not(ch);

    /* Recovery: heard() returns the state before and resets. */
    uint64_t t1 = T0 + 5000 * to;
    cr_assert_eq(nmi_fd_heard(&d, t1), NMI_FD_FAILED);
    cr_assert_eq(nmi_fd_state_get(&d), NMI_FD_HEALTHY);
    cr_assert_eq(nmi_fd_last_heard(&d), t1);
    cr_assert_eq(nmi_fd_next_change(&d), t1 + 2 * to);
    cr_assert_eq(nmi_fd_check(&d, t1 + 2 * to - 1, &ch), NMI_FD_HEALTHY);
    cr_assert_not(ch);
    /* Heard while suspect: back to healthy, counted from then. */
    cr_assert_eq(nmi_fd_check(&d, t1 + 2 * to, &ch), NMI_FD_SUSPECT);
    cr_assert(ch);
    uint64_t t2 = t1 + 2 * to + 7;
    cr_assert_eq(nmi_fd_heard(&d, t2), NMI_FD_SUSPECT);
    cr_assert_eq(nmi_fd_check(&d, t1 + 3 * to, &ch), NMI_FD_HEALTHY);
    cr_assert_not(ch);
    cr_assert_eq(nmi_fd_check(&d, t2 + 2 * to - 1, &ch), NMI_FD_HEALTHY);
    cr_assert_eq(nmi_fd_check(&d, t2 + 2 * to, &ch), NMI_FD_SUSPECT);
    /* Heard while healthy returns healthy. */
    cr_assert_eq(nmi_fd_heard(&d, t2 + 2 * to), NMI_FD_SUSPECT);
    cr_assert_eq(nmi_fd_heard(&d, t2 + 2 * to + 1), NMI_FD_HEALTHY);
    /* A late (older) heard() keeps the newer last-heard time. */
    cr_assert_eq(nmi_fd_heard(&d, t2), NMI_FD_HEALTHY);
    cr_assert_eq(nmi_fd_last_heard(&d), t2 + 2 * to + 1);
}

Test(mesh_liveness, fd_straight_to_failed_and_custom_thresholds)
{
    nmi_fd_config cfg = {.timeout_us = 30 * MS};
    nmi_fd d;
    cr_assert_eq(nmi_fd_init(&d, &cfg, 0), NM_OK);
    bool ch;
    /* Nobody checked for a long time: HEALTHY -> FAILED directly. */
    cr_assert_eq(nmi_fd_check(&d, 95 * MS, &ch), NMI_FD_FAILED);
    cr_assert(ch);

    /* suspect_after == fail_after: no SUSPECT stage. */
    nmi_fd_config same = {
        .timeout_us = 10, .suspect_after = 3, .fail_after = 3};
    cr_assert_eq(nmi_fd_init(&d, &same, 100), NM_OK);
    cr_assert_eq(nmi_fd_next_change(&d), 130);
    cr_assert_eq(nmi_fd_check(&d, 129, &ch), NMI_FD_HEALTHY);
    cr_assert_eq(nmi_fd_check(&d, 130, &ch), NMI_FD_FAILED);
    cr_assert(ch);

    /* Custom thresholds and a 1 µs timeout. */
    nmi_fd_config c1 = {.timeout_us = 1, .suspect_after = 1, .fail_after = 5};
    cr_assert_eq(nmi_fd_init(&d, &c1, 0), NM_OK);
    cr_assert_eq(nmi_fd_check(&d, 0, &ch), NMI_FD_HEALTHY);
    cr_assert_eq(nmi_fd_check(&d, 1, &ch), NMI_FD_SUSPECT);
    cr_assert_eq(nmi_fd_check(&d, 4, &ch), NMI_FD_SUSPECT);
    cr_assert_eq(nmi_fd_check(&d, 5, &ch), NMI_FD_FAILED);

    /* next_change saturates instead of wrapping. */
    nmi_fd_config big = {.timeout_us = UINT64_MAX / 2};
    cr_assert_eq(nmi_fd_init(&d, &big, 10), NM_OK);
    cr_assert_eq(nmi_fd_next_change(&d), UINT64_MAX);
}

/* ============================================ pingwave duplicate filter */

static nmi_dedup *
dedup(uint64_t window, uint32_t capacity)
{
    nmi_dedup_config cfg = {
        .window_us = window, .capacity = capacity, .hash_key = 0x1234};
    nmi_dedup *f = NULL;
    cr_assert_eq(nmi_dedup_new(&cfg, &f), NM_OK);
    return f;
}

Test(mesh_liveness, dedup_window)
{
    nmi_dedup *f = NULL;
    cr_assert_eq(nmi_dedup_new(NULL, NULL), NM_EINVAL);
    nmi_dedup_config bad = {.capacity = NMI_DEDUP_MAX_CAPACITY + 1};
    cr_assert_eq(nmi_dedup_new(&bad, &f), NM_EINVAL);
    cr_assert_eq(nmi_dedup_new(NULL, &f), NM_OK); /* 10 s, 16,384 */
    nmi_dedup_stats st;
    nmi_dedup_stats_get(f, &st);
    cr_assert_eq(st.capacity, NMI_DEDUP_DEFAULT_CAPACITY);
    const uint64_t w = 10 * SEC;
    cr_assert_not(nmi_dedup_check(f, 7, 1, T0));
    cr_assert(nmi_dedup_check(f, 7, 1, T0));
    cr_assert(nmi_dedup_check(f, 7, 1, T0 + w - 1));
    /* Other seq, other origin: not duplicates. */
    cr_assert_not(nmi_dedup_check(f, 7, 2, T0 + 1));
    cr_assert_not(nmi_dedup_check(f, 8, 1, T0 + 1));
    /* The window runs from the first sighting: exactly window later the
     * pair is new again (duplicates did not extend it). */
    cr_assert_not(nmi_dedup_check(f, 7, 1, T0 + w));
    cr_assert(nmi_dedup_check(f, 7, 2, T0 + w));
    cr_assert(nmi_dedup_check(f, 7, 1, T0 + w + 1));
    cr_assert_not(nmi_dedup_check(f, 7, 2, T0 + w + 1));
    nmi_dedup_stats_get(f, &st);
    cr_assert_eq(st.accepted, 5);
    cr_assert_eq(st.duplicates, 4);
    cr_assert_eq(st.evicted, 0);
    /* Expired entries left as they aged: (7,1)@T0+w and (7,2)@T0+w+1
     * remain; after a window of silence the next check drops them. */
    cr_assert_eq(st.size, 2);
    cr_assert_eq(st.expired, 3);
    cr_assert_not(nmi_dedup_check(f, 9, 9, T0 + 3 * w));
    nmi_dedup_stats_get(f, &st);
    cr_assert_eq(st.size, 1);
    cr_assert_eq(st.expired, 5);
    nmi_dedup_free(f);
    nmi_dedup_free(NULL);

    /* A small window in µs works the same way. */
    f = dedup(20 * MS, 0);
    cr_assert_not(nmi_dedup_check(f, 1, 1, 0));
    cr_assert(nmi_dedup_check(f, 1, 1, 20 * MS - 1));
    cr_assert_not(nmi_dedup_check(f, 1, 1, 20 * MS));
    nmi_dedup_free(f);
}

Test(mesh_liveness, dedup_memory_bound)
{
    nmi_dedup *f = dedup(10 * SEC, 8);
    /* Nine distinct pairs within the window: the oldest is evicted. */
    for (uint64_t s = 0; s < 9; s++) {
        cr_assert_not(nmi_dedup_check(f, 42, s, T0 + s));
    }
    nmi_dedup_stats st;
    nmi_dedup_stats_get(f, &st);
    cr_assert_eq(st.size, 8);
    cr_assert_eq(st.capacity, 8);
    cr_assert_eq(st.evicted, 1);
    /* The seven newest are still remembered... */
    for (uint64_t s = 2; s < 9; s++) {
        cr_assert(nmi_dedup_check(f, 42, s, T0 + 100), "seq %lu",
                  (unsigned long)s);
    }
    cr_assert(nmi_dedup_check(f, 42, 1, T0 + 100));
    /* ... the evicted one is accepted again (which evicts seq 1). */
    cr_assert_not(nmi_dedup_check(f, 42, 0, T0 + 100));
    cr_assert_not(nmi_dedup_check(f, 42, 1, T0 + 100));
    nmi_dedup_stats_get(f, &st);
    cr_assert_eq(st.size, 8);
    cr_assert_eq(st.evicted, 3);
    /* A long run of distinct pairs never grows it. */
    for (uint64_t s = 100; s < 100000; s++) {
        cr_assert_not(nmi_dedup_check(f, s * 31, s, T0 + 200 + s));
        if (s % 9973 == 0) {
            nmi_dedup_stats_get(f, &st);
            cr_assert_eq(st.size, 8);
        }
    }
    nmi_dedup_free(f);
}

/* A seeded run against a plain list of (origin, seq, first seen) in
 * arrival order, with the same expiry and eviction rules. */
typedef struct ref_pair {
    uint64_t origin, seq, t;
} ref_pair;

static uint64_t
rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

Test(mesh_liveness, dedup_property)
{
    enum { CAP = 64, OPS = 100000 };
    const uint64_t w = 20 * MS;
    nmi_dedup *f = dedup(w, CAP);
    ref_pair ref[CAP];
    size_t n = 0;
    uint64_t rng = 77, now = 0, dups = 0;
    for (size_t op = 0; op < OPS; op++) {
        now += rng_next(&rng) % 200; /* µs; now and then a pause */
        if (rng_next(&rng) % 1000 == 0) {
            now += rng_next(&rng) % (2 * w);
        }
        uint64_t origin = rng_next(&rng) % 12;
        uint64_t seq = rng_next(&rng) % 16;
        /* Reference: expire from the front, look up, evict, append. */
        while (n > 0 && now - ref[0].t >= w) {
            memmove(ref, ref + 1, --n * sizeof(ref[0]));
        }
        bool want = false;
        for (size_t i = 0; i < n; i++) {
            if (ref[i].origin == origin && ref[i].seq == seq) {
                want = true;
            }
        }
        if (!want) {
            if (n == CAP) {
                memmove(ref, ref + 1, --n * sizeof(ref[0]));
            }
            ref[n++] = (ref_pair){origin, seq, now};
        }
        bool got = nmi_dedup_check(f, origin, seq, now);
        cr_assert_eq(got, want, "op %zu", op);
        dups += got;
        nmi_dedup_stats st;
        nmi_dedup_stats_get(f, &st);
        cr_assert_eq(st.size, n, "op %zu", op);
    }
    nmi_dedup_stats st;
    nmi_dedup_stats_get(f, &st);
    cr_assert_eq(st.duplicates, dups);
    cr_assert_gt(st.evicted, 0);
    cr_assert_gt(st.expired, 0);
    cr_assert_gt(dups, OPS / 10);
    nmi_dedup_free(f);
}

Test(mesh_liveness, dedup_clock_step_back)
{
    nmi_dedup *f = dedup(100, 4);
    cr_assert_not(nmi_dedup_check(f, 1, 1, 1000));
    /* Time goes back: age saturates at 0, still a duplicate. */
    cr_assert(nmi_dedup_check(f, 1, 1, 500));
    cr_assert_not(nmi_dedup_check(f, 2, 2, 500));
    /* Forward again past both windows: new again. */
    cr_assert_not(nmi_dedup_check(f, 2, 2, 1100));
    cr_assert_not(nmi_dedup_check(f, 1, 1, 1100));
    cr_assert(nmi_dedup_check(f, 1, 1, 1150));
    nmi_dedup_stats st;
    nmi_dedup_stats_get(f, &st);
    cr_assert_leq(st.size, 4);
    nmi_dedup_free(f);
}

/* ================================================= withdrawal damping */

Test(mesh_liveness, damp_per_destination)
{
    nmi_damp *d = NULL;
    cr_assert_eq(nmi_damp_new(NULL, NULL), NM_EINVAL);
    nmi_damp_config bad = {.max_in_flight = NMI_DAMP_MAX_IN_FLIGHT + 1};
    cr_assert_eq(nmi_damp_new(&bad, &d), NM_EINVAL);
    cr_assert_eq(nmi_damp_new(NULL, &d), NM_OK); /* 1 s, 64 */
    cr_assert_eq(nmi_damp_admit(d, 5, T0), NMI_DAMP_SEND);
    cr_assert_eq(nmi_damp_admit(d, 5, T0), NMI_DAMP_DEST);
    cr_assert_eq(nmi_damp_admit(d, 5, T0 + SEC - 1), NMI_DAMP_DEST);
    /* Other destinations are independent. */
    cr_assert_eq(nmi_damp_admit(d, 6, T0 + 10), NMI_DAMP_SEND);
    /* Exactly one interval later: again. */
    cr_assert_eq(nmi_damp_admit(d, 5, T0 + SEC), NMI_DAMP_SEND);
    cr_assert_eq(nmi_damp_admit(d, 6, T0 + SEC), NMI_DAMP_DEST);
    cr_assert_eq(nmi_damp_admit(d, 6, T0 + SEC + 10), NMI_DAMP_SEND);
    cr_assert_eq(nmi_damp_in_flight(d, T0 + SEC + 10), 2);
    cr_assert_eq(nmi_damp_in_flight(d, T0 + 3 * SEC), 0);
    nmi_damp_free(d);
    nmi_damp_free(NULL);
}

Test(mesh_liveness, damp_in_flight_cap)
{
    nmi_damp *d = NULL;
    cr_assert_eq(nmi_damp_new(NULL, &d), NM_OK);
    /* 64 distinct destinations within one second, then the cap. */
    for (uint64_t i = 0; i < 64; i++) {
        cr_assert_eq(nmi_damp_admit(d, 1000 + i, T0 + i * 10 * MS),
                     NMI_DAMP_SEND);
    }
    uint64_t last = T0 + 63 * 10 * MS;
    cr_assert_eq(nmi_damp_in_flight(d, last), 64);
    cr_assert_eq(nmi_damp_admit(d, 2000, last), NMI_DAMP_IN_FLIGHT);
    /* The per-destination rule is decided first. */
    cr_assert_eq(nmi_damp_admit(d, 1000, last), NMI_DAMP_DEST);
    /* Sliding window: when the first admission (at T0) leaves the
     * window one slot frees, not more. */
    cr_assert_eq(nmi_damp_admit(d, 2000, T0 + SEC - 1), NMI_DAMP_IN_FLIGHT);
    cr_assert_eq(nmi_damp_admit(d, 2000, T0 + SEC), NMI_DAMP_SEND);
    cr_assert_eq(nmi_damp_admit(d, 2001, T0 + SEC), NMI_DAMP_IN_FLIGHT);
    cr_assert_eq(nmi_damp_admit(d, 2001, T0 + SEC + 10 * MS), NMI_DAMP_SEND);
    /* Refusals are not recorded: 2002 refused, then admitted later. */
    cr_assert_eq(nmi_damp_admit(d, 2002, T0 + SEC + 10 * MS),
                 NMI_DAMP_IN_FLIGHT);
    cr_assert_eq(nmi_damp_admit(d, 2002, T0 + SEC + 20 * MS), NMI_DAMP_SEND);
    nmi_damp_free(d);

    /* Configurable: 100 ms, 3 in flight. */
    nmi_damp_config c = {.interval_us = 100 * MS, .max_in_flight = 3};
    cr_assert_eq(nmi_damp_new(&c, &d), NM_OK);
    cr_assert_eq(nmi_damp_admit(d, 1, 0), NMI_DAMP_SEND);
    cr_assert_eq(nmi_damp_admit(d, 2, 0), NMI_DAMP_SEND);
    cr_assert_eq(nmi_damp_admit(d, 3, 0), NMI_DAMP_SEND);
    cr_assert_eq(nmi_damp_admit(d, 4, 0), NMI_DAMP_IN_FLIGHT);
    cr_assert_eq(nmi_damp_admit(d, 1, 99 * MS), NMI_DAMP_DEST);
    cr_assert_eq(nmi_damp_admit(d, 1, 100 * MS), NMI_DAMP_SEND);
    cr_assert_eq(nmi_damp_admit(d, 4, 100 * MS), NMI_DAMP_SEND);
    cr_assert_eq(nmi_damp_admit(d, 5, 100 * MS), NMI_DAMP_SEND);
    /* A clock step back: nothing underflows, all still in flight. */
    cr_assert_eq(nmi_damp_admit(d, 9, 50 * MS), NMI_DAMP_IN_FLIGHT);
    cr_assert_eq(nmi_damp_in_flight(d, 50 * MS), 3);
    nmi_damp_free(d);
}

/* ================================== topology-change pingwave pacing */

Test(mesh_liveness, pace_burst)
{
    nmi_pace p;
    cr_assert_eq(nmi_pace_init(NULL, NULL), NM_EINVAL);
    cr_assert_eq(nmi_pace_init(&p, NULL), NM_OK); /* 250 ms, 2 x 50 ms */
    /* Idle: nothing due, ever. */
    cr_assert_not(nmi_pace_due(&p, T0));
    cr_assert_eq(nmi_pace_next_due(&p), UINT64_MAX);
    /* A first trigger sends at once, then the copy 50 ms later. */
    nmi_pace_trigger(&p, T0);
    cr_assert_eq(nmi_pace_next_due(&p), 0);
    cr_assert(nmi_pace_due(&p, T0));
    cr_assert_not(nmi_pace_due(&p, T0));
    cr_assert_eq(nmi_pace_next_due(&p), T0 + 50 * MS);
    cr_assert_not(nmi_pace_due(&p, T0 + 50 * MS - 1));
    cr_assert(nmi_pace_due(&p, T0 + 50 * MS));
    cr_assert_not(nmi_pace_due(&p, T0 + 50 * MS));
    cr_assert_eq(nmi_pace_next_due(&p), UINT64_MAX);
    cr_assert_not(nmi_pace_due(&p, T0 + 10 * SEC));
    /* A trigger 100 ms after the burst start waits for 250 ms. */
    nmi_pace_trigger(&p, T0 + 100 * MS);
    cr_assert_eq(nmi_pace_next_due(&p), T0 + 250 * MS);
    cr_assert_not(nmi_pace_due(&p, T0 + 100 * MS));
    cr_assert_not(nmi_pace_due(&p, T0 + 250 * MS - 1));
    cr_assert(nmi_pace_due(&p, T0 + 250 * MS));
    cr_assert(nmi_pace_due(&p, T0 + 300 * MS));
    cr_assert_not(nmi_pace_due(&p, T0 + 300 * MS));
    /* Many triggers before a burst starts coalesce into one burst. */
    for (int i = 0; i < 10; i++) {
        nmi_pace_trigger(&p, T0 + 310 * MS + (uint64_t)i);
    }
    cr_assert_not(nmi_pace_due(&p, T0 + 499 * MS));
    cr_assert(nmi_pace_due(&p, T0 + 500 * MS));
    cr_assert(nmi_pace_due(&p, T0 + 550 * MS));
    cr_assert_not(nmi_pace_due(&p, T0 + 2 * SEC));
    cr_assert_eq(nmi_pace_next_due(&p), UINT64_MAX);
}

Test(mesh_liveness, pace_trigger_mid_burst_and_late_polls)
{
    nmi_pace p;
    cr_assert_eq(nmi_pace_init(&p, NULL), NM_OK);
    nmi_pace_trigger(&p, 0);
    cr_assert(nmi_pace_due(&p, 1000)); /* burst 1 starts at 1000 */
    /* A trigger after the first copy left: the copy still goes at
     * +50 ms, and another burst follows 250 ms after burst 1. */
    nmi_pace_trigger(&p, 2000);
    cr_assert_eq(nmi_pace_next_due(&p), 1000 + 50 * MS);
    cr_assert(nmi_pace_due(&p, 1000 + 50 * MS));
    cr_assert_eq(nmi_pace_next_due(&p), 1000 + 250 * MS);
    cr_assert_not(nmi_pace_due(&p, 1000 + 250 * MS - 1));
    cr_assert(nmi_pace_due(&p, 1000 + 250 * MS));
    /* A late poll: the copy is not skipped, it goes when polled. */
    uint64_t late = 1000 + 900 * MS;
    cr_assert(nmi_pace_due(&p, late));
    cr_assert_not(nmi_pace_due(&p, late));
    /* The next burst is spaced from the actual start (1000 + 250 ms). */
    nmi_pace_trigger(&p, late);
    cr_assert(nmi_pace_due(&p, late)); /* 650 ms after the start */
    /* A trigger while a copy is still to go: the copy goes first,
     * then the new burst after the gap. */
    nmi_pace_trigger(&p, late + 10 * MS);
    cr_assert_eq(nmi_pace_next_due(&p), late + 50 * MS);
    cr_assert_not(nmi_pace_due(&p, late + 49 * MS));
    cr_assert(nmi_pace_due(&p, late + 50 * MS));
    cr_assert_eq(nmi_pace_next_due(&p), late + 250 * MS);
    cr_assert_not(nmi_pace_due(&p, late + 249 * MS));
    cr_assert(nmi_pace_due(&p, late + 250 * MS));
    cr_assert(nmi_pace_due(&p, late + 300 * MS));
    cr_assert_eq(nmi_pace_next_due(&p), UINT64_MAX);
}

Test(mesh_liveness, pace_config)
{
    /* Three copies 10 ms apart, bursts at least 100 ms apart. */
    nmi_pace_config c = {
        .min_gap_us = 100 * MS, .spacing_us = 10 * MS, .copies = 3};
    nmi_pace p;
    cr_assert_eq(nmi_pace_init(&p, &c), NM_OK);
    nmi_pace_trigger(&p, 0);
    cr_assert(nmi_pace_due(&p, 0));
    cr_assert_not(nmi_pace_due(&p, 9 * MS));
    cr_assert(nmi_pace_due(&p, 10 * MS));
    cr_assert(nmi_pace_due(&p, 20 * MS));
    cr_assert_not(nmi_pace_due(&p, 30 * MS));
    nmi_pace_trigger(&p, 30 * MS);
    cr_assert_not(nmi_pace_due(&p, 99 * MS));
    cr_assert(nmi_pace_due(&p, 100 * MS));
    /* Copies are spaced from the actual (late) send, never packed. */
    cr_assert(nmi_pace_due(&p, 110 * MS));
    cr_assert(nmi_pace_due(&p, 120 * MS));
    nmi_pace_trigger(&p, 130 * MS);
    cr_assert_eq(nmi_pace_next_due(&p), 200 * MS);
    cr_assert(nmi_pace_due(&p, 200 * MS));
    cr_assert(nmi_pace_due(&p, 230 * MS)); /* 20 ms late */
    cr_assert_eq(nmi_pace_next_due(&p), 240 * MS);
    cr_assert_not(nmi_pace_due(&p, 239 * MS));
    cr_assert(nmi_pace_due(&p, 240 * MS));
    /* One copy: no follow-up. */
    nmi_pace_config one = {.copies = 1};
    cr_assert_eq(nmi_pace_init(&p, &one), NM_OK);
    nmi_pace_trigger(&p, 0);
    cr_assert(nmi_pace_due(&p, 0));
    cr_assert_eq(nmi_pace_next_due(&p), UINT64_MAX);
    cr_assert_not(nmi_pace_due(&p, 10 * SEC));
}
