/*
 * tests/unit/test_mesh_routing.c - the mesh routing table: direct and
 * learned routes, candidate ranking and the 4-candidate cap, failover
 * when a relay fails, withdrawals, sweep, split horizon, the caps,
 * iteration, and a seeded 100k-operation comparison with a reference
 * model made of plain arrays.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "mesh/routing.h"

/* Node ids: arbitrary non-sequential values, as real ids are. */
#define A 0xA000000000000001ull
#define B 0xB000000000000002ull
#define C 0xC000000000000003ull
#define D 0xD000000000000004ull
#define E 0xE000000000000005ull
#define F 0xF000000000000006ull

#define MS 1000ull /* µs */

static nmi_route_table *
table(uint32_t max_dests, uint32_t max_direct)
{
    nmi_route_config cfg = {.max_dests = max_dests,
                            .max_direct = max_direct,
                            .hash_key = 0x5eed5eed5eed5eedull};
    nmi_route_table *t = NULL;
    cr_assert_eq(nmi_route_table_new(&cfg, &t), NM_OK);
    cr_assert_not_null(t);
    return t;
}

static uint64_t
next_hop(const nmi_route_table *t, uint64_t dest)
{
    nmi_route r;
    if (!nmi_route_lookup(t, dest, &r)) {
        return 0;
    }
    cr_assert_eq(r.dest, dest);
    return r.via;
}

/* A log of loss callbacks. */
typedef struct loss_log {
    size_t n;
    uint64_t dest[64];
    nmi_route_loss kind[64];
    uint64_t best_via[64]; /* 0 when best was NULL */
} loss_log;

static void
on_loss(void *ctx, uint64_t dest, nmi_route_loss kind, const nmi_route *best)
{
    loss_log *l = ctx;
    cr_assert_lt(l->n, 64);
    cr_assert_eq(kind == NMI_ROUTE_UNREACHABLE, best == NULL);
    l->dest[l->n] = dest;
    l->kind[l->n] = kind;
    l->best_via[l->n] = best ? best->via : 0;
    l->n++;
}

static int
loss_find(const loss_log *l, uint64_t dest)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->dest[i] == dest) {
            return (int)i;
        }
    }
    return -1;
}

/* ---------------------------------------------------------- basics */

Test(mesh_routing, config_and_empty)
{
    nmi_route_table *t = NULL;
    cr_assert_eq(nmi_route_table_new(NULL, NULL), NM_EINVAL);
    nmi_route_config bad = {.max_dests = NMI_ROUTE_LIMIT_MAX + 1};
    cr_assert_eq(nmi_route_table_new(&bad, &t), NM_EINVAL);
    cr_assert_null(t);
    /* NULL config: defaults, random hash key. */
    cr_assert_eq(nmi_route_table_new(NULL, &t), NM_OK);
    nmi_route r;
    cr_assert_not(nmi_route_lookup(t, A, &r));
    cr_assert_not(nmi_route_is_direct(t, A));
    cr_assert(nmi_route_split_horizon_ok(t, A, B));
    nmi_route out[NMI_ROUTE_MAX_CANDIDATES];
    cr_assert_eq(nmi_route_candidates(t, A, out), 0);
    cr_assert_eq(nmi_route_withdraw(t, A, B), NMI_ROUTE_WD_NONE);
    cr_assert_eq(nmi_route_remove_via(t, A, NULL, NULL), 0);
    cr_assert_eq(nmi_route_sweep(t, 1000000, 1, NULL, NULL), 0);
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.dests + st.direct + st.learned_only + st.candidates, 0);
    cr_assert_eq(st.slots, 16);
    nmi_route_table_free(t);
    nmi_route_table_free(NULL);
    cr_assert_eq(nmi_route_metric_from_hops(0), 2);
    cr_assert_eq(nmi_route_metric_from_hops(255), 257);
}

Test(mesh_routing, direct_routes)
{
    nmi_route_table *t = table(0, 0);
    cr_assert_eq(nmi_route_add_direct(t, B, 10), NM_OK);
    nmi_route r;
    cr_assert(nmi_route_lookup(t, B, &r));
    cr_assert_eq(r.dest, B);
    cr_assert_eq(r.via, B);
    cr_assert_eq(r.metric, NMI_ROUTE_METRIC_DIRECT);
    cr_assert(r.direct);
    cr_assert_eq(r.refreshed_us, 10);
    cr_assert(nmi_route_is_direct(t, B));
    cr_assert(nmi_route_lookup(t, B, NULL));
    /* Idempotent: again only refreshes. */
    cr_assert_eq(nmi_route_add_direct(t, B, 20), NM_OK);
    cr_assert(nmi_route_lookup(t, B, &r));
    cr_assert_eq(r.refreshed_us, 20);
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.dests, 1);
    cr_assert_eq(st.direct, 1);
    cr_assert_eq(st.candidates, 1);
    /* The peer fails: its direct route goes; it is unreachable. */
    loss_log l = {0};
    cr_assert_eq(nmi_route_remove_via(t, B, on_loss, &l), 1);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.dest[0], B);
    cr_assert_eq(l.kind[0], NMI_ROUTE_UNREACHABLE);
    cr_assert_not(nmi_route_lookup(t, B, NULL));
    cr_assert_not(nmi_route_is_direct(t, B));
    /* Recovery reinstalls the direct route. */
    cr_assert_eq(nmi_route_add_direct(t, B, 30), NM_OK);
    cr_assert_eq(next_hop(t, B), B);
    nmi_route_table_free(t);
}

Test(mesh_routing, learn_rules)
{
    nmi_route_table *t = table(0, 0);
    /* via must be a current direct peer. */
    cr_assert_eq(nmi_route_learn(t, C, B, 3, 1), NM_ENOTCONN);
    cr_assert_not(nmi_route_lookup(t, C, NULL));
    cr_assert_eq(nmi_route_add_direct(t, B, 1), NM_OK);
    /* A learned metric is >= 2. */
    cr_assert_eq(nmi_route_learn(t, C, B, 1, 1), NM_EINVAL);
    cr_assert_eq(nmi_route_learn(t, C, B, 0, 1), NM_EINVAL);
    cr_assert_eq(nmi_route_learn(t, C, B, nmi_route_metric_from_hops(1), 2),
                 NMI_ROUTE_LEARN_NEW);
    nmi_route r;
    cr_assert(nmi_route_lookup(t, C, &r));
    cr_assert_eq(r.via, B);
    cr_assert_eq(r.metric, 3);
    cr_assert_not(r.direct);
    cr_assert_eq(r.refreshed_us, 2);
    cr_assert_not(nmi_route_is_direct(t, C));
    /* A learned destination is not a direct peer: no learning via it. */
    cr_assert_eq(nmi_route_learn(t, D, C, 3, 2), NM_ENOTCONN);
    /* Same (dest, via) again: metric and time replaced, even if worse. */
    cr_assert_eq(nmi_route_learn(t, C, B, 7, 5), NMI_ROUTE_LEARN_REFRESHED);
    cr_assert(nmi_route_lookup(t, C, &r));
    cr_assert_eq(r.metric, 7);
    cr_assert_eq(r.refreshed_us, 5);
    /* The direct peer's own pingwave (hops 0, metric 2) never demotes
     * its direct route. */
    cr_assert_eq(nmi_route_learn(t, B, B, 2, 6), NMI_ROUTE_LEARN_IGNORED);
    cr_assert(nmi_route_lookup(t, B, &r));
    cr_assert(r.direct);
    cr_assert_eq(r.metric, 1);
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.dests, 2);
    cr_assert_eq(st.direct, 1);
    cr_assert_eq(st.learned_only, 1);
    cr_assert_eq(st.candidates, 2);
    nmi_route_table_free(t);
}

Test(mesh_routing, ranking)
{
    nmi_route_table *t = table(0, 0);
    for (uint64_t p = 1; p <= 4; p++) {
        cr_assert_eq(nmi_route_add_direct(t, p, 0), NM_OK);
    }
    /* Lower metric wins over recency. */
    cr_assert_eq(nmi_route_learn(t, C, 1, 4, 10), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, C, 2, 3, 5), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(next_hop(t, C), 2);
    /* Equal metric: the more recently refreshed wins. */
    cr_assert_eq(nmi_route_learn(t, C, 3, 3, 20), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(next_hop(t, C), 3);
    cr_assert_eq(nmi_route_learn(t, C, 2, 3, 30), NMI_ROUTE_LEARN_REFRESHED);
    cr_assert_eq(next_hop(t, C), 2);
    /* Equal metric and time: the lower via (deterministic tie). */
    cr_assert_eq(nmi_route_learn(t, C, 3, 3, 30), NMI_ROUTE_LEARN_REFRESHED);
    cr_assert_eq(next_hop(t, C), 2);
    /* candidates(): best first. */
    nmi_route out[NMI_ROUTE_MAX_CANDIDATES];
    cr_assert_eq(nmi_route_candidates(t, C, out), 3);
    cr_assert_eq(out[0].via, 2);
    cr_assert_eq(out[1].via, 3);
    cr_assert_eq(out[2].via, 1);
    cr_assert_eq(out[2].metric, 4);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(out[i].dest, C);
    }
    nmi_route_table_free(t);
}

Test(mesh_routing, candidate_cap)
{
    nmi_route_table *t = table(0, 0);
    for (uint64_t p = 1; p <= 6; p++) {
        cr_assert_eq(nmi_route_add_direct(t, p, 0), NM_OK);
    }
    /* Four distinct vias fill the set. */
    cr_assert_eq(nmi_route_learn(t, C, 1, 3, 10), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, C, 2, 4, 10), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, C, 3, 5, 10), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, C, 4, 6, 10), NMI_ROUTE_LEARN_NEW);
    nmi_route out[NMI_ROUTE_MAX_CANDIDATES];
    cr_assert_eq(nmi_route_candidates(t, C, out), 4);
    /* A fifth, worse than all: ignored. */
    cr_assert_eq(nmi_route_learn(t, C, 5, 7, 11), NMI_ROUTE_LEARN_IGNORED);
    cr_assert_eq(nmi_route_candidates(t, C, out), 4);
    cr_assert_eq(out[3].via, 4);
    /* Equal to the worst's metric but fresher: replaces it. */
    cr_assert_eq(nmi_route_learn(t, C, 5, 6, 11), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_candidates(t, C, out), 4);
    cr_assert_eq(out[3].via, 5);
    /* Equal metric and equal time, higher via: not better, ignored. */
    cr_assert_eq(nmi_route_learn(t, C, 6, 6, 11), NMI_ROUTE_LEARN_IGNORED);
    /* Better than the worst: evicts it. */
    cr_assert_eq(nmi_route_learn(t, C, 6, 2, 12), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_candidates(t, C, out), 4);
    cr_assert_eq(out[0].via, 6);
    cr_assert_eq(out[1].via, 1);
    cr_assert_eq(out[2].via, 2);
    cr_assert_eq(out[3].via, 3);
    /* A direct route to a destination with 4 learned candidates: the
     * worst learned goes, the direct route ranks first. */
    for (uint64_t p = 1; p <= 4; p++) {
        cr_assert_eq(nmi_route_learn(t, E, p, 3 + p, 20), NMI_ROUTE_LEARN_NEW);
    }
    cr_assert_eq(nmi_route_add_direct(t, E, 21), NM_OK);
    cr_assert_eq(nmi_route_candidates(t, E, out), 4);
    cr_assert(out[0].direct);
    cr_assert_eq(out[0].via, E);
    cr_assert_eq(out[1].via, 1);
    cr_assert_eq(out[3].via, 3);
    /* A full set with a direct route never evicts the direct one. */
    cr_assert_eq(nmi_route_learn(t, E, 4, 2, 22), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_candidates(t, E, out), 4);
    cr_assert(out[0].direct);
    cr_assert_eq(out[1].via, 4);
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.direct, 7);
    cr_assert_eq(st.learned_only, 1);
    cr_assert_eq(st.candidates, 6 + 4 + 4);
    nmi_route_table_free(t);
}

/* -------------------------------------------------------- failover */

/*
 * Node A's table in the topology
 *
 *      B
 *     / \
 *    A   C
 *     \ /
 *      D
 *
 * C's pingwaves reach A through B and through D (hops 1, metric 3). B
 * was heard last, so traffic to C goes through B; B fails and lookup(C)
 * moves to D at once.
 */
Test(mesh_routing, failover_line_with_second_path)
{
    nmi_route_table *t = table(0, 0);
    cr_assert_eq(nmi_route_add_direct(t, B, 0), NM_OK);
    cr_assert_eq(nmi_route_add_direct(t, D, 0), NM_OK);
    uint32_t m = nmi_route_metric_from_hops(1);
    cr_assert_eq(nmi_route_learn(t, C, D, m, 100 * MS), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, C, B, m, 101 * MS), NMI_ROUTE_LEARN_NEW);
    /* B's view of D and D's view of B (2 hops through the other). */
    cr_assert_eq(nmi_route_learn(t, D, B, 4, 101 * MS), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, B, D, 4, 101 * MS), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(next_hop(t, C), B);
    cr_assert_eq(next_hop(t, B), B);
    cr_assert_eq(next_hop(t, D), D);

    loss_log l = {0};
    cr_assert_eq(nmi_route_remove_via(t, B, on_loss, &l), 3);
    cr_assert_eq(l.n, 3);
    /* C lost a candidate only; its best is now through D. */
    int i = loss_find(&l, C);
    cr_assert_geq(i, 0);
    cr_assert_eq(l.kind[i], NMI_ROUTE_LOST_CANDIDATE);
    cr_assert_eq(l.best_via[i], D);
    /* D lost its alternative through B; still direct. */
    i = loss_find(&l, D);
    cr_assert_geq(i, 0);
    cr_assert_eq(l.kind[i], NMI_ROUTE_LOST_CANDIDATE);
    cr_assert_eq(l.best_via[i], D);
    /* B lost its direct route but is still reachable through D. */
    i = loss_find(&l, B);
    cr_assert_geq(i, 0);
    cr_assert_eq(l.kind[i], NMI_ROUTE_LOST_CANDIDATE);
    cr_assert_eq(l.best_via[i], D);

    nmi_route r;
    cr_assert(nmi_route_lookup(t, C, &r));
    cr_assert_eq(r.via, D);
    cr_assert_eq(r.metric, m);
    cr_assert(nmi_route_lookup(t, B, &r));
    cr_assert_eq(r.via, D);
    cr_assert_not(r.direct);
    cr_assert_not(nmi_route_is_direct(t, B));
    /* Nothing learns through the failed peer any more. */
    cr_assert_eq(nmi_route_learn(t, C, B, m, 200 * MS), NM_ENOTCONN);

    /* Then D fails too: C and B become unreachable, D too. */
    memset(&l, 0, sizeof(l));
    cr_assert_eq(nmi_route_remove_via(t, D, on_loss, &l), 3);
    for (size_t k = 0; k < l.n; k++) {
        cr_assert_eq(l.kind[k], NMI_ROUTE_UNREACHABLE);
    }
    cr_assert_geq(loss_find(&l, B), 0);
    cr_assert_geq(loss_find(&l, C), 0);
    cr_assert_geq(loss_find(&l, D), 0);
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.dests, 0);
    cr_assert_eq(st.candidates, 0);
    /* remove_via on an unknown peer: nothing. */
    cr_assert_eq(nmi_route_remove_via(t, E, on_loss, &l), 0);
    nmi_route_table_free(t);
}

Test(mesh_routing, remove_via_reports_separately)
{
    nmi_route_table *t = table(0, 0);
    cr_assert_eq(nmi_route_add_direct(t, B, 0), NM_OK);
    cr_assert_eq(nmi_route_add_direct(t, D, 0), NM_OK);
    /* C only through B; E through B and D; F only through D. */
    cr_assert_eq(nmi_route_learn(t, C, B, 3, 1), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, E, B, 3, 1), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, E, D, 4, 1), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, F, D, 3, 1), NMI_ROUTE_LEARN_NEW);
    loss_log l = {0};
    cr_assert_eq(nmi_route_remove_via(t, B, on_loss, &l), 3);
    cr_assert_eq(l.kind[loss_find(&l, B)], NMI_ROUTE_UNREACHABLE);
    cr_assert_eq(l.kind[loss_find(&l, C)], NMI_ROUTE_UNREACHABLE);
    cr_assert_eq(l.kind[loss_find(&l, E)], NMI_ROUTE_LOST_CANDIDATE);
    cr_assert_eq(l.best_via[loss_find(&l, E)], D);
    cr_assert_lt(loss_find(&l, F), 0);
    cr_assert_eq(next_hop(t, F), D);
    cr_assert_eq(next_hop(t, E), D);
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.dests, 3);
    cr_assert_eq(st.direct, 1);
    cr_assert_eq(st.learned_only, 2);
    cr_assert_eq(st.candidates, 3);
    /* Without a callback it still works and still counts. */
    cr_assert_eq(nmi_route_remove_via(t, D, NULL, NULL), 3);
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.dests, 0);
    nmi_route_table_free(t);
}

/* ------------------------------------------------------ withdrawal */

Test(mesh_routing, withdraw)
{
    nmi_route_table *t = table(0, 0);
    cr_assert_eq(nmi_route_add_direct(t, B, 0), NM_OK);
    cr_assert_eq(nmi_route_add_direct(t, D, 0), NM_OK);
    cr_assert_eq(nmi_route_learn(t, C, B, 3, 1), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, C, D, 4, 1), NMI_ROUTE_LEARN_NEW);
    /* Unknown dest / unknown via: no change. */
    cr_assert_eq(nmi_route_withdraw(t, E, B), NMI_ROUTE_WD_NONE);
    cr_assert_eq(nmi_route_withdraw(t, C, E), NMI_ROUTE_WD_NONE);
    /* B withdraws C: D's candidate remains. */
    cr_assert_eq(nmi_route_withdraw(t, C, B), NMI_ROUTE_WD_LOST);
    cr_assert_eq(next_hop(t, C), D);
    cr_assert_eq(nmi_route_withdraw(t, C, B), NMI_ROUTE_WD_NONE);
    /* D withdraws C: unreachable (flood a withdrawal). */
    cr_assert_eq(nmi_route_withdraw(t, C, D), NMI_ROUTE_WD_UNREACHABLE);
    cr_assert_not(nmi_route_lookup(t, C, NULL));
    cr_assert_eq(nmi_route_withdraw(t, C, D), NMI_ROUTE_WD_NONE);
    /* A direct route is never withdrawn, learned alternatives are. */
    cr_assert_eq(nmi_route_learn(t, B, D, 4, 2), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_withdraw(t, B, B), NMI_ROUTE_WD_NONE);
    cr_assert_eq(nmi_route_withdraw(t, B, D), NMI_ROUTE_WD_LOST);
    cr_assert(nmi_route_is_direct(t, B));
    cr_assert_eq(next_hop(t, B), B);
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.dests, 2);
    cr_assert_eq(st.direct, 2);
    cr_assert_eq(st.learned_only, 0);
    cr_assert_eq(st.candidates, 2);
    nmi_route_table_free(t);
}

/* ----------------------------------------------------------- sweep */

Test(mesh_routing, sweep_keeps_direct)
{
    nmi_route_table *t = table(0, 0);
    const uint64_t max_age = 90 * 1000 * MS;
    cr_assert_eq(nmi_route_add_direct(t, B, 0), NM_OK);
    cr_assert_eq(nmi_route_add_direct(t, D, 0), NM_OK);
    cr_assert_eq(nmi_route_learn(t, C, B, 3, 1000), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, C, D, 4, 2000), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, E, B, 3, 1000), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, D, B, 4, 1000), NMI_ROUTE_LEARN_NEW);
    /* Exactly max_age old: kept (strictly older goes). */
    loss_log l = {0};
    cr_assert_eq(nmi_route_sweep(t, 1000 + max_age, max_age, on_loss, &l), 0);
    cr_assert_eq(l.n, 0);
    /* One µs later the three candidates refreshed at 1000 go. */
    cr_assert_eq(nmi_route_sweep(t, 1001 + max_age, max_age, on_loss, &l), 3);
    cr_assert_eq(l.n, 3);
    cr_assert_eq(l.kind[loss_find(&l, C)], NMI_ROUTE_LOST_CANDIDATE);
    cr_assert_eq(l.best_via[loss_find(&l, C)], D);
    cr_assert_eq(l.kind[loss_find(&l, E)], NMI_ROUTE_UNREACHABLE);
    cr_assert_eq(l.kind[loss_find(&l, D)], NMI_ROUTE_LOST_CANDIDATE);
    cr_assert_eq(next_hop(t, C), D);
    cr_assert_not(nmi_route_lookup(t, E, NULL));
    /* Long after: only the direct routes (added at 0) remain. */
    memset(&l, 0, sizeof(l));
    cr_assert_eq(nmi_route_sweep(t, UINT64_MAX, max_age, on_loss, &l), 1);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.kind[0], NMI_ROUTE_UNREACHABLE);
    cr_assert_eq(l.dest[0], C);
    cr_assert(nmi_route_is_direct(t, B));
    cr_assert(nmi_route_is_direct(t, D));
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.dests, 2);
    cr_assert_eq(st.candidates, 2);
    /* A refresh time in the future (clock step) counts as age 0; a
     * refresh keeps a route alive. */
    cr_assert_eq(nmi_route_learn(t, C, B, 3, 5000), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_sweep(t, 10, 0, NULL, NULL), 0);
    cr_assert_eq(nmi_route_sweep(t, 5000, 0, NULL, NULL), 0);
    cr_assert_eq(nmi_route_learn(t, C, B, 3, 6000), NMI_ROUTE_LEARN_REFRESHED);
    cr_assert_eq(nmi_route_sweep(t, 6000 + max_age, max_age, NULL, NULL), 0);
    cr_assert_eq(nmi_route_sweep(t, 6001, 0, NULL, NULL), 1);
    nmi_route_table_free(t);
}

/* ---------------------------------------------------- split horizon */

Test(mesh_routing, split_horizon)
{
    nmi_route_table *t = table(0, 0);
    cr_assert_eq(nmi_route_add_direct(t, B, 0), NM_OK);
    cr_assert_eq(nmi_route_add_direct(t, D, 0), NM_OK);
    cr_assert_eq(nmi_route_add_direct(t, E, 0), NM_OK);
    cr_assert_eq(nmi_route_learn(t, C, B, 3, 10), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, C, D, 4, 10), NMI_ROUTE_LEARN_NEW);
    /* A pingwave from C is not sent back to B (the next hop toward
     * C), but may go to D (a worse candidate) and E. */
    cr_assert_not(nmi_route_split_horizon_ok(t, C, B));
    cr_assert(nmi_route_split_horizon_ok(t, C, D));
    cr_assert(nmi_route_split_horizon_ok(t, C, E));
    /* A direct peer's own pingwave is not sent back to it. */
    cr_assert_not(nmi_route_split_horizon_ok(t, B, B));
    cr_assert(nmi_route_split_horizon_ok(t, B, D));
    /* The next hop moves: so does the horizon. */
    cr_assert_eq(nmi_route_withdraw(t, C, B), NMI_ROUTE_WD_LOST);
    cr_assert(nmi_route_split_horizon_ok(t, C, B));
    cr_assert_not(nmi_route_split_horizon_ok(t, C, D));
    /* Unknown origin: no restriction. */
    cr_assert(nmi_route_split_horizon_ok(t, F, B));
    nmi_route_table_free(t);
}

/* ------------------------------------------------------------ caps */

Test(mesh_routing, caps)
{
    nmi_route_table *t = table(8, 3);
    cr_assert_eq(nmi_route_add_direct(t, 1, 0), NM_OK);
    cr_assert_eq(nmi_route_add_direct(t, 2, 0), NM_OK);
    /* Eight learned-only destinations fit, the ninth is refused. */
    for (uint64_t d = 100; d < 108; d++) {
        cr_assert_eq(nmi_route_learn(t, d, 1, 3, 1), NMI_ROUTE_LEARN_NEW);
    }
    cr_assert_eq(nmi_route_learn(t, 108, 1, 3, 1), NM_ERANGE);
    cr_assert_not(nmi_route_lookup(t, 108, NULL));
    /* ... but known destinations still take new candidates. */
    cr_assert_eq(nmi_route_learn(t, 100, 2, 3, 2), NMI_ROUTE_LEARN_NEW);
    /* A full learned table never blocks a session peer (the flood of
     * fake pingwave origins case). */
    cr_assert_eq(nmi_route_add_direct(t, 3, 0), NM_OK);
    cr_assert_eq(nmi_route_add_direct(t, 4, 0), NM_ERANGE);
    cr_assert_not(nmi_route_lookup(t, 4, NULL));
    /* A learned destination becoming direct moves between the counts
     * but is still capped by max_direct. */
    cr_assert_eq(nmi_route_add_direct(t, 101, 0), NM_ERANGE);
    cr_assert_eq(nmi_route_remove_via(t, 3, NULL, NULL), 1);
    cr_assert_eq(nmi_route_add_direct(t, 101, 0), NM_OK);
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.direct, 3);
    cr_assert_eq(st.learned_only, 7);
    /* Room again for one learned destination. */
    cr_assert_eq(nmi_route_learn(t, 108, 1, 3, 1), NMI_ROUTE_LEARN_NEW);
    cr_assert_eq(nmi_route_learn(t, 109, 1, 3, 1), NM_ERANGE);
    /* Demotion: 101 fails as a direct peer but keeps its learned route
     * through 1, so learned-only goes to 9 > max_dests; the total bound
     * (8 + 3) still holds and new learned dests are refused. */
    cr_assert_eq(nmi_route_remove_via(t, 101, NULL, NULL), 1);
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.learned_only, 9);
    cr_assert_eq(st.direct, 2);
    cr_assert_eq(nmi_route_learn(t, 109, 1, 3, 1), NM_ERANGE);
    /* The table holds 11 = max_dests + max_direct destinations: in
     * this rare state a new direct peer waits for a sweep. */
    cr_assert_eq(st.dests, 11);
    cr_assert_eq(nmi_route_add_direct(t, 5, 0), NM_ERANGE);
    cr_assert_eq(nmi_route_sweep(t, 100, 50, NULL, NULL), 10);
    cr_assert_eq(nmi_route_add_direct(t, 5, 0), NM_OK);
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.dests, 3);
    cr_assert_eq(st.direct, 3);
    cr_assert_eq(st.learned_only, 0);
    nmi_route_table_free(t);
}

/* The default caps at full size: 10,000 learned-only destinations plus
 * 1,024 direct peers, 16,384 slots, then a mass failure. */
typedef struct count_ctx {
    size_t unreachable, lost;
} count_ctx;

static void
count_loss(void *ctx, uint64_t dest, nmi_route_loss kind,
           const nmi_route *best)
{
    count_ctx *c = ctx;
    (void)dest;
    (void)best;
    if (kind == NMI_ROUTE_UNREACHABLE) {
        c->unreachable++;
    } else {
        c->lost++;
    }
}

Test(mesh_routing, default_caps_at_scale)
{
    nmi_route_table *t = table(0, 0);
    uint64_t peer0 = 0x1000000000000000ull;
    for (uint64_t i = 0; i < NMI_ROUTE_DEFAULT_MAX_DIRECT; i++) {
        cr_assert_eq(nmi_route_add_direct(t, peer0 + i, 0), NM_OK);
    }
    cr_assert_eq(nmi_route_add_direct(t, peer0 + 5000, 0), NM_ERANGE);
    for (uint64_t i = 0; i < NMI_ROUTE_DEFAULT_MAX_DESTS; i++) {
        uint64_t dest = i * 0x9E3779B97F4A7C15ull + 7;
        uint64_t via = peer0 + (i % 3);
        cr_assert_eq(nmi_route_learn(t, dest, via, 3, i), NMI_ROUTE_LEARN_NEW);
        if (i % 2 == 0) {
            cr_assert_eq(nmi_route_learn(t, dest, peer0 + 3, 4, i),
                         NMI_ROUTE_LEARN_NEW);
        }
    }
    cr_assert_eq(nmi_route_learn(t, 42, peer0, 3, 1), NM_ERANGE);
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    cr_assert_eq(st.dests, 11024);
    cr_assert_eq(st.slots, 16384); /* the documented bound */
    cr_assert_eq(st.candidates, 1024 + 10000 + 5000);
    for (uint64_t i = 0; i < NMI_ROUTE_DEFAULT_MAX_DESTS; i++) {
        uint64_t dest = i * 0x9E3779B97F4A7C15ull + 7;
        cr_assert_eq(next_hop(t, dest), peer0 + (i % 3));
    }
    for (uint64_t i = 0; i < NMI_ROUTE_DEFAULT_MAX_DIRECT; i++) {
        cr_assert(nmi_route_is_direct(t, peer0 + i));
    }
    /* peer0 + 0 fails: 1 + 3334 destinations affected; the even ones
     * keep their candidate through peer0 + 3. */
    count_ctx c = {0};
    size_t n = nmi_route_remove_via(t, peer0, count_loss, &c);
    cr_assert_eq(n, 3335);
    cr_assert_eq(c.unreachable + c.lost, n);
    cr_assert_eq(c.lost, 1667);        /* i % 3 == 0 and i even */
    cr_assert_eq(c.unreachable, 1668); /* the rest, plus peer0 itself */
    for (uint64_t i = 0; i < NMI_ROUTE_DEFAULT_MAX_DESTS; i++) {
        uint64_t dest = i * 0x9E3779B97F4A7C15ull + 7;
        uint64_t want =
            i % 3 == 0 ? (i % 2 == 0 ? peer0 + 3 : 0) : peer0 + (i % 3);
        cr_assert_eq(next_hop(t, dest), want, "dest %" PRIu64, i);
    }
    nmi_route_table_free(t);
}

typedef struct visit_ctx {
    const nmi_route_table *t;
    size_t dests, cands, stop_at;
} visit_ctx;

static int
visit(void *ctx, uint64_t dest, const nmi_route *cands, size_t n)
{
    visit_ctx *v = ctx;
    cr_assert_geq(n, 1);
    cr_assert_leq(n, NMI_ROUTE_MAX_CANDIDATES);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(cands[i].dest, dest);
        if (i > 0) {
            cr_assert_leq(cands[i - 1].metric, cands[i].metric);
        }
    }
    /* Read-only calls are allowed from a visitor. */
    nmi_route best;
    cr_assert(nmi_route_lookup(v->t, dest, &best));
    cr_assert_eq(best.via, cands[0].via);
    cr_assert_eq(best.metric, cands[0].metric);
    cr_assert_eq(best.refreshed_us, cands[0].refreshed_us);
    cr_assert_eq(best.direct, cands[0].direct);
    v->dests++;
    v->cands += n;
    return v->dests == v->stop_at ? 77 : 0;
}

Test(mesh_routing, foreach)
{
    nmi_route_table *t = table(0, 0);
    visit_ctx v = {.t = t};
    cr_assert_eq(nmi_route_foreach(t, visit, &v), 0);
    cr_assert_eq(v.dests, 0);
    for (uint64_t p = 1; p <= 3; p++) {
        cr_assert_eq(nmi_route_add_direct(t, p, 0), NM_OK);
    }
    for (uint64_t d = 10; d < 60; d++) {
        for (uint64_t p = 1; p <= 1 + d % 3; p++) {
            cr_assert_geq(
                nmi_route_learn(t, d, p, (uint32_t)(2 + (d + p) % 5), d), 0);
        }
    }
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    cr_assert_eq(nmi_route_foreach(t, visit, &v), 0);
    cr_assert_eq(v.dests, st.dests);
    cr_assert_eq(v.dests, 53);
    cr_assert_eq(v.cands, st.candidates);
    /* A visitor's non-zero return stops the walk and is returned. */
    v = (visit_ctx){.t = t, .stop_at = 5};
    cr_assert_eq(nmi_route_foreach(t, visit, &v), 77);
    cr_assert_eq(v.dests, 5);
    nmi_route_table_free(t);
}

/* ------------------------------------------- property: reference model */

/*
 * The model: one plain array of destinations indexed like the id pool,
 * each with an unsorted array of candidates; every rule of routing.h
 * written out directly (linear scans, no hashing, no sorting kept).
 */
typedef struct mcand {
    uint64_t via;
    uint64_t t;
    uint32_t metric;
} mcand;

typedef struct mdest {
    int n;
    mcand c[NMI_ROUTE_MAX_CANDIDATES];
} mdest;

typedef struct model {
    const uint64_t *ids;
    size_t nids;
    mdest *d;
    uint32_t max_dests, max_direct;
} model;

static uint64_t
rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t
rng_below(uint64_t *s, size_t n)
{
    return (size_t)(rng_next(s) % n);
}

static bool
m_better(const mcand *a, const mcand *b)
{
    if (a->metric != b->metric) {
        return a->metric < b->metric;
    }
    if (a->t != b->t) {
        return a->t > b->t;
    }
    return a->via < b->via;
}

static bool
m_direct(const mdest *d)
{
    for (int i = 0; i < d->n; i++) {
        if (d->c[i].metric == 1) {
            return true;
        }
    }
    return false;
}

static size_t
m_idx(const model *m, uint64_t id)
{
    for (size_t i = 0; i < m->nids; i++) {
        if (m->ids[i] == id) {
            return i;
        }
    }
    cr_assert_fail("id not in pool");
    return 0;
}

static void
m_counts(const model *m, size_t *direct, size_t *learned, size_t *cands)
{
    *direct = *learned = *cands = 0;
    for (size_t i = 0; i < m->nids; i++) {
        const mdest *d = &m->d[i];
        *cands += (size_t)d->n;
        if (m_direct(d)) {
            (*direct)++;
        } else if (d->n > 0) {
            (*learned)++;
        }
    }
}

static int
m_find(const mdest *d, uint64_t via)
{
    for (int i = 0; i < d->n; i++) {
        if (d->c[i].via == via) {
            return i;
        }
    }
    return -1;
}

static int
m_worst_learned(const mdest *d)
{
    int w = -1;
    for (int i = 0; i < d->n; i++) {
        if (d->c[i].metric == 1) {
            continue;
        }
        if (w < 0 || m_better(&d->c[w], &d->c[i])) {
            w = i;
        }
    }
    return w;
}

static void
m_remove(mdest *d, int i)
{
    d->c[i] = d->c[d->n - 1];
    d->n--;
}

/* Sorted copy, best first. */
static int
m_sorted(const mdest *d, mcand out[NMI_ROUTE_MAX_CANDIDATES])
{
    memcpy(out, d->c, sizeof(d->c));
    for (int i = 0; i < d->n; i++) {
        for (int j = i + 1; j < d->n; j++) {
            if (m_better(&out[j], &out[i])) {
                mcand x = out[i];
                out[i] = out[j];
                out[j] = x;
            }
        }
    }
    return d->n;
}

static int
m_add_direct(model *m, size_t p, uint64_t now)
{
    mdest *d = &m->d[p];
    mcand nc = {.via = m->ids[p], .t = now, .metric = 1};
    size_t direct, learned, cands;
    m_counts(m, &direct, &learned, &cands);
    if (d->n == 0) {
        if (direct >= m->max_direct ||
            direct + learned >= (size_t)m->max_dests + m->max_direct) {
            return NM_ERANGE;
        }
        d->c[d->n++] = nc;
        return NM_OK;
    }
    for (int i = 0; i < d->n; i++) {
        if (d->c[i].metric == 1) {
            d->c[i].t = now;
            return NM_OK;
        }
    }
    if (direct >= m->max_direct) {
        return NM_ERANGE;
    }
    if (d->n < NMI_ROUTE_MAX_CANDIDATES) {
        d->c[d->n++] = nc;
    } else {
        d->c[m_worst_learned(d)] = nc;
    }
    return NM_OK;
}

static int
m_learn(model *m, size_t dest, size_t via, uint32_t metric, uint64_t now)
{
    if (metric < 2) {
        return NM_EINVAL;
    }
    if (!m_direct(&m->d[via])) {
        return NM_ENOTCONN;
    }
    mdest *d = &m->d[dest];
    mcand nc = {.via = m->ids[via], .t = now, .metric = metric};
    if (d->n == 0) {
        size_t direct, learned, cands;
        m_counts(m, &direct, &learned, &cands);
        if (learned >= m->max_dests) {
            return NM_ERANGE;
        }
        d->c[d->n++] = nc;
        return NMI_ROUTE_LEARN_NEW;
    }
    if (dest == via) {
        return NMI_ROUTE_LEARN_IGNORED;
    }
    int k = m_find(d, nc.via);
    if (k >= 0) {
        d->c[k] = nc;
        return NMI_ROUTE_LEARN_REFRESHED;
    }
    if (d->n < NMI_ROUTE_MAX_CANDIDATES) {
        d->c[d->n++] = nc;
        return NMI_ROUTE_LEARN_NEW;
    }
    int w = m_worst_learned(d);
    if (m_better(&nc, &d->c[w])) {
        d->c[w] = nc;
        return NMI_ROUTE_LEARN_NEW;
    }
    return NMI_ROUTE_LEARN_IGNORED;
}

static int
m_withdraw(model *m, size_t dest, size_t via)
{
    mdest *d = &m->d[dest];
    int k = m_find(d, m->ids[via]);
    if (k < 0 || d->c[k].metric == 1) {
        return NMI_ROUTE_WD_NONE;
    }
    m_remove(d, k);
    return d->n == 0 ? NMI_ROUTE_WD_UNREACHABLE : NMI_ROUTE_WD_LOST;
}

/* What a loss walk should report, per destination index. */
typedef struct m_report {
    bool hit;
    nmi_route_loss kind;
    uint64_t best_via;
} m_report;

static size_t
m_prune(model *m, bool by_via, uint64_t via, uint64_t now, uint64_t max_age,
        m_report *rep, size_t *dests)
{
    size_t dropped = 0;
    *dests = 0;
    for (size_t i = 0; i < m->nids; i++) {
        mdest *d = &m->d[i];
        rep[i].hit = false;
        int before = d->n;
        for (int k = d->n - 1; k >= 0; k--) {
            bool doomed;
            if (by_via) {
                doomed = d->c[k].via == via;
            } else {
                doomed = d->c[k].metric != 1 && now > d->c[k].t &&
                         now - d->c[k].t > max_age;
            }
            if (doomed) {
                m_remove(d, k);
            }
        }
        if (d->n == before) {
            continue;
        }
        dropped += (size_t)(before - d->n);
        (*dests)++;
        rep[i].hit = true;
        if (d->n == 0) {
            rep[i].kind = NMI_ROUTE_UNREACHABLE;
            rep[i].best_via = 0;
        } else {
            mcand s[NMI_ROUTE_MAX_CANDIDATES];
            m_sorted(d, s);
            rep[i].kind = NMI_ROUTE_LOST_CANDIDATE;
            rep[i].best_via = s[0].via;
        }
    }
    return dropped;
}

/* The table's loss reports, by pool index. */
typedef struct t_report_ctx {
    const model *m;
    m_report *rep;
    size_t calls;
} t_report_ctx;

static void
t_report(void *ctx, uint64_t dest, nmi_route_loss kind, const nmi_route *best)
{
    t_report_ctx *c = ctx;
    size_t i = m_idx(c->m, dest);
    cr_assert_not(c->rep[i].hit, "destination reported twice");
    c->rep[i].hit = true;
    c->rep[i].kind = kind;
    c->rep[i].best_via = best ? best->via : 0;
    c->calls++;
}

static void
check_dest(const nmi_route_table *t, const model *m, size_t i, size_t op)
{
    nmi_route got[NMI_ROUTE_MAX_CANDIDATES];
    mcand want[NMI_ROUTE_MAX_CANDIDATES];
    size_t n = nmi_route_candidates(t, m->ids[i], got);
    int wn = m_sorted(&m->d[i], want);
    cr_assert_eq(n, (size_t)wn, "op %zu dest %zu: %zu candidates, want %d", op,
                 i, n, wn);
    for (size_t k = 0; k < n; k++) {
        cr_assert_eq(got[k].via, want[k].via, "op %zu dest %zu cand %zu", op,
                     i, k);
        cr_assert_eq(got[k].metric, want[k].metric);
        cr_assert_eq(got[k].refreshed_us, want[k].t);
        cr_assert_eq(got[k].direct, want[k].metric == 1);
    }
    nmi_route r;
    bool found = nmi_route_lookup(t, m->ids[i], &r);
    cr_assert_eq(found, wn > 0, "op %zu dest %zu lookup", op, i);
    if (found) {
        cr_assert_eq(r.via, want[0].via, "op %zu dest %zu best", op, i);
    }
    cr_assert_eq(nmi_route_is_direct(t, m->ids[i]), m_direct(&m->d[i]));
}

static void
check_all(const nmi_route_table *t, const model *m, size_t op)
{
    for (size_t i = 0; i < m->nids; i++) {
        check_dest(t, m, i, op);
        /* Model invariant: learned candidates go through direct peers. */
        for (int k = 0; k < m->d[i].n; k++) {
            cr_assert(m_direct(&m->d[m_idx(m, m->d[i].c[k].via)]));
        }
    }
    nmi_route_stats st;
    nmi_route_stats_get(t, &st);
    size_t direct, learned, cands;
    m_counts(m, &direct, &learned, &cands);
    cr_assert_eq(st.direct, direct, "op %zu", op);
    cr_assert_eq(st.learned_only, learned, "op %zu", op);
    cr_assert_eq(st.dests, direct + learned, "op %zu", op);
    cr_assert_eq(st.candidates, cands, "op %zu", op);
}

/* How often each outcome happened (index = -code for errors, 32 + result
 * for add_direct, 48 + result for learn, 64 + result for withdraw). */
typedef struct outcomes {
    size_t n[80];
} outcomes;

static size_t
outcome_slot(int rc, size_t base)
{
    return rc < 0 ? (size_t)-rc : base + (size_t)rc;
}

static void
run_property(outcomes *seen, uint64_t seed, size_t nids, uint32_t max_dests,
             uint32_t max_direct, size_t ops, size_t full_every)
{
    uint64_t rng = seed;
    uint64_t *ids = calloc(nids, sizeof(*ids));
    for (size_t i = 0; i < nids; i++) {
        /* Distinct, random-looking; small pools also get tiny ids. */
        ids[i] = i < 8 ? i + 1 : rng_next(&rng) | 0x100;
        for (size_t j = 0; j < i; j++) {
            cr_assert_neq(ids[i], ids[j]);
        }
    }
    model m = {.ids = ids,
               .nids = nids,
               .d = calloc(nids, sizeof(mdest)),
               .max_dests = max_dests,
               .max_direct = max_direct};
    m_report *want = calloc(nids, sizeof(*want));
    m_report *got = calloc(nids, sizeof(*got));
    nmi_route_config cfg = {.max_dests = max_dests,
                            .max_direct = max_direct,
                            .hash_key = seed ^ 0xabcdef};
    nmi_route_table *t = NULL;
    cr_assert_eq(nmi_route_table_new(&cfg, &t), NM_OK);
    uint64_t now = 1000;
    size_t counts[6] = {0};
    for (size_t op = 0; op < ops; op++) {
        now += rng_below(&rng, 3) * 500; /* ties happen often */
        size_t r = rng_below(&rng, 100);
        size_t a = rng_below(&rng, nids);
        size_t b = rng_below(&rng, nids);
        if (r < 12) {
            int wr = m_add_direct(&m, a, now);
            int gr = nmi_route_add_direct(t, ids[a], now);
            cr_assert_eq(gr, wr, "op %zu add_direct: %d want %d", op, gr, wr);
            seen->n[outcome_slot(gr, 32)]++;
            counts[0]++;
            check_dest(t, &m, a, op);
        } else if (r < 16) {
            size_t wd, gd = 0;
            m_prune(&m, true, ids[a], 0, 0, want, &wd);
            memset(got, 0, nids * sizeof(*got));
            t_report_ctx c = {.m = &m, .rep = got};
            gd = nmi_route_remove_via(t, ids[a], t_report, &c);
            cr_assert_eq(gd, wd, "op %zu remove_via", op);
            cr_assert_eq(c.calls, wd);
            for (size_t i = 0; i < nids; i++) {
                cr_assert_eq(got[i].hit, want[i].hit, "op %zu dest %zu", op,
                             i);
                if (want[i].hit) {
                    cr_assert_eq(got[i].kind, want[i].kind);
                    cr_assert_eq(got[i].best_via, want[i].best_via);
                }
            }
            counts[1]++;
        } else if (r < 72) {
            /* Mostly through a direct peer, sometimes not. */
            if (rng_below(&rng, 10) < 8) {
                for (size_t tries = 0; tries < 8; tries++) {
                    if (m_direct(&m.d[b])) {
                        break;
                    }
                    b = rng_below(&rng, nids);
                }
            }
            uint32_t metric = (uint32_t)rng_below(&rng, 6) + 2;
            if (rng_below(&rng, 50) == 0) {
                metric = (uint32_t)rng_below(&rng, 2); /* refused */
            }
            int wr = m_learn(&m, a, b, metric, now);
            int gr = nmi_route_learn(t, ids[a], ids[b], metric, now);
            cr_assert_eq(gr, wr, "op %zu learn: %d want %d", op, gr, wr);
            seen->n[outcome_slot(gr, 48)]++;
            counts[2]++;
            check_dest(t, &m, a, op);
        } else if (r < 94) {
            /* Half the time a via that is a real candidate. */
            if (m.d[a].n > 0 && rng_below(&rng, 2) == 0) {
                uint64_t v = m.d[a].c[rng_below(&rng, (size_t)m.d[a].n)].via;
                b = m_idx(&m, v);
            }
            int wr = m_withdraw(&m, a, b);
            int gr = nmi_route_withdraw(t, ids[a], ids[b]);
            cr_assert_eq(gr, wr, "op %zu withdraw: %d want %d", op, gr, wr);
            seen->n[outcome_slot(gr, 64)]++;
            counts[3]++;
            check_dest(t, &m, a, op);
        } else {
            uint64_t max_age = rng_below(&rng, 40) * 500;
            size_t wd;
            size_t wn = m_prune(&m, false, 0, now, max_age, want, &wd);
            memset(got, 0, nids * sizeof(*got));
            t_report_ctx c = {.m = &m, .rep = got};
            size_t gn = nmi_route_sweep(t, now, max_age, t_report, &c);
            cr_assert_eq(gn, wn, "op %zu sweep", op);
            cr_assert_eq(c.calls, wd);
            for (size_t i = 0; i < nids; i++) {
                cr_assert_eq(got[i].hit, want[i].hit, "op %zu dest %zu", op,
                             i);
                if (want[i].hit) {
                    cr_assert_eq(got[i].kind, want[i].kind);
                    cr_assert_eq(got[i].best_via, want[i].best_via);
                }
            }
            counts[4]++;
        }
        if (op % full_every == 0 || op + 1 == ops) {
            check_all(t, &m, op);
        }
    }
    /* Every kind of operation ran. */
    for (size_t i = 0; i < 5; i++) {
        cr_assert_gt(counts[i], ops / 50);
    }
    nmi_route_table_free(t);
    free(want);
    free(got);
    free(m.d);
    free(ids);
}

Test(mesh_routing, property_small_pool, .timeout = 240)
{
    /* 48 ids with tight caps: dense candidate sets, the 4-cap, both
     * table caps, and a table that grows and empties repeatedly. */
    outcomes o = {0};
    run_property(&o, 0x0123456789abcdefull, 48, 24, 10, 100000, 1);
    /* Every outcome of every operation happened. */
    cr_assert_gt(o.n[-NM_EINVAL], 0);
    cr_assert_gt(o.n[-NM_ENOTCONN], 0);
    cr_assert_gt(o.n[-NM_ERANGE], 0);
    cr_assert_gt(o.n[32 + NM_OK], 0);
    cr_assert_gt(o.n[48 + NMI_ROUTE_LEARN_NEW], 0);
    cr_assert_gt(o.n[48 + NMI_ROUTE_LEARN_REFRESHED], 0);
    cr_assert_gt(o.n[48 + NMI_ROUTE_LEARN_IGNORED], 0);
    cr_assert_gt(o.n[64 + NMI_ROUTE_WD_NONE], 0);
    cr_assert_gt(o.n[64 + NMI_ROUTE_WD_LOST], 0);
    cr_assert_gt(o.n[64 + NMI_ROUTE_WD_UNREACHABLE], 0);
}

Test(mesh_routing, property_large_pool, .timeout = 240)
{
    /* 1,500 ids, caps at or above the pool: growth through seven
     * doublings, long probe runs, wrap-around deletions. */
    outcomes o = {0};
    run_property(&o, 0xfeedfacecafebeefull, 1500, 1500, 400, 100000, 5000);
    cr_assert_gt(o.n[48 + NMI_ROUTE_LEARN_NEW], 0);
    cr_assert_gt(o.n[64 + NMI_ROUTE_WD_UNREACHABLE], 0);
}
