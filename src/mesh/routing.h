/*
 * src/mesh/routing.h - the mesh routing table: destination node_id ->
 * next hop (a direct session peer). Pure: no I/O, no clock (callers pass
 * now_us from one monotonic clock), no locks, no global state.
 *
 * Upstream (shared/docs/upstream/upstream-mesh-protocol.md §5):
 *   - a direct route (dest = peer, via = peer, metric 1) exists while a
 *     session with the peer is up; recovery reinstalls only it;
 *   - pingwaves and capability announcements install (origin -> source,
 *     metric hops + 2), only from a registered direct peer;
 *   - on a peer's failure every route through it goes, and a withdrawal
 *     (0x0C01) is flooded for what became unreachable;
 *   - routes not refreshed for 3 x session_timeout (90 s) are swept;
 *   - split horizon: a pingwave / announcement is not forwarded to the
 *     next hop toward its origin.
 *
 * Extension over upstream (upstream keeps one route per destination):
 * each destination keeps up to NMI_ROUTE_MAX_CANDIDATES candidate next
 * hops with distinct vias, so when a relay fails an alternative path is
 * already known and traffic moves without waiting for the next pingwave.
 * Nothing on the wire changes: a v1 peer sees the same packets.
 *
 * Choices where upstream is silent (each is tested):
 *   - Ordering. Candidates are ranked by metric (lower first), then by
 *     refresh time (more recent first), then by via (lower first, only
 *     to make ties deterministic). The best is what lookups return.
 *     Equal-metric candidates therefore alternate as they are refreshed;
 *     the node may add hysteresis on top if route flapping matters.
 *   - The direct route is a candidate like the others (via = dest,
 *     metric 1), so it always ranks first. It is never swept, never
 *     removed by a withdrawal (only nmi_route_remove_via removes it), and
 *     never evicted to make room for a learned candidate.
 *   - Same (dest, via) learned again: metric and refresh time are
 *     replaced by the new ones (the newest advertisement through that
 *     peer is the truth, even if its metric is worse).
 *   - Learning dest through itself (via == dest) is ignored: via must
 *     be direct, and its direct route already says more (a direct peer's
 *     own pingwave arrives with hops 0, i.e. metric 2, every heartbeat;
 *     it must not demote the metric-1 direct route).
 *   - A fifth via: the new candidate replaces the worst learned one if
 *     it ranks better than it (a fresher equal-metric route ranks
 *     better); otherwise it is ignored (NMI_ROUTE_LEARN_IGNORED).
 *   - Sweep drops candidates whose age now - refreshed is strictly
 *     greater than max_age (a route exactly max_age old survives).
 *   - Split horizon excludes only the current best next hop toward the
 *     origin (as upstream's single route), not every candidate.
 *   - The table does not know the local node id: the node drops
 *     pingwaves whose origin is itself before learning (upstream rule).
 *
 * Memory bounds. Two separate caps so that a flood of unauthenticated
 * pingwaves with fake origins can never stop a session peer's direct
 * route from being installed:
 *   - max_dests (default 10,000, upstream's proximity cap): destinations
 *     reachable only through learned routes; a new one beyond it is
 *     refused with NM_ERANGE (existing ones still learn new candidates);
 *   - max_direct (default 1,024): destinations with a direct route; one
 *     more is refused with NM_ERANGE.
 * The table never holds more than max_dests + max_direct destinations.
 * A destination losing its direct route but keeping learned candidates
 * moves to the learned-only count even if that goes over max_dests (caps
 * are checked on admission only); in that rare state a new direct peer
 * can be refused (NM_ERANGE) until sweep or remove_via makes room. The
 * hash table is open addressing with linear probing (deletion by
 * backward shift, no tombstones) on a keyed mix of the node_id (a
 * per-table random key, so node_ids chosen by an attacker cannot be
 * aimed at one probe run), load factor <= 3/4, starting at 16 slots,
 * doubled on demand and never beyond
 * pow2_ceil((max_dests + max_direct) * 4 / 3 + 1) slots of 112 bytes
 * (16,384 slots = 1.75 MiB at the defaults). Lookups and updates are
 * O(1) expected; remove_via, sweep and foreach walk the slot array.
 *
 * Thread safety: none. One owner thread (the node's I/O thread) calls
 * everything; callbacks run on it and must not modify the table.
 */
#ifndef NMI_MESH_ROUTING_H
#define NMI_MESH_ROUTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Candidate next hops kept per destination (direct route included). */
#define NMI_ROUTE_MAX_CANDIDATES 4
/* Metric of a direct route; learned routes have metric >= 2. */
#define NMI_ROUTE_METRIC_DIRECT 1u
#define NMI_ROUTE_DEFAULT_MAX_DESTS 10000u
#define NMI_ROUTE_DEFAULT_MAX_DIRECT 1024u
/* Sweep age as a multiple of session_timeout (upstream: 3 x 30 s). */
#define NMI_ROUTE_MAX_AGE_FACTOR 3u
/* Upper limit for either cap (keeps the slot count within 2^26). */
#define NMI_ROUTE_LIMIT_MAX (1u << 24)

typedef struct nmi_route_table nmi_route_table;

typedef struct nmi_route_config {
    uint32_t max_dests;  /* 0 = NMI_ROUTE_DEFAULT_MAX_DESTS */
    uint32_t max_direct; /* 0 = NMI_ROUTE_DEFAULT_MAX_DIRECT */
    /* Key of the slot hash; 0 = draw one from libsodium's randombytes.
     * Tests pass a fixed key to get a reproducible slot layout. */
    uint64_t hash_key;
} nmi_route_config;

/* One candidate next hop toward a destination. */
typedef struct nmi_route {
    uint64_t dest;
    uint64_t via;          /* the direct peer to send to */
    uint64_t refreshed_us; /* last install / refresh (now_us of the call) */
    uint32_t metric;       /* 1 = direct, else hops + 2 */
    bool direct;           /* metric == NMI_ROUTE_METRIC_DIRECT */
} nmi_route;

typedef struct nmi_route_stats {
    size_t dests;        /* destinations with at least one candidate */
    size_t direct;       /* ... of which have a direct route */
    size_t learned_only; /* dests - direct */
    size_t candidates;   /* all candidates, direct ones included */
    size_t slots;        /* current hash slots (memory: slots * 112 B) */
} nmi_route_stats;

/* What learn did (values >= 0; errors are negative NM_E*). */
enum nmi_route_learn_result {
    NMI_ROUTE_LEARN_NEW = 0,   /* a new candidate (dest, via) was stored */
    NMI_ROUTE_LEARN_REFRESHED, /* (dest, via) existed: metric + time set */
    NMI_ROUTE_LEARN_IGNORED,   /* not stored: the set is full of better
                                  candidates, or via == dest is direct */
};

/* What a withdrawal did (values >= 0). */
enum nmi_route_withdraw_result {
    NMI_ROUTE_WD_NONE = 0,    /* no such learned candidate: no change */
    NMI_ROUTE_WD_LOST,        /* candidate dropped; dest still reachable */
    NMI_ROUTE_WD_UNREACHABLE, /* candidate dropped; dest now unreachable */
};

/* How a destination was affected by remove_via / sweep. */
typedef enum nmi_route_loss {
    NMI_ROUTE_UNREACHABLE,    /* its last candidate went: flood a withdrawal */
    NMI_ROUTE_LOST_CANDIDATE, /* still reachable through another via */
} nmi_route_loss;

/*
 * Loss callback of remove_via and sweep, once per affected destination,
 * after that destination has been updated. `best` is its new best route
 * for NMI_ROUTE_LOST_CANDIDATE (compare best->via with the old next hop
 * to see whether traffic moved) and NULL for NMI_ROUTE_UNREACHABLE. The
 * callback may call the read-only functions (lookup, candidates,
 * is_direct, split_horizon_ok, stats) but must not modify the table.
 */
typedef void (*nmi_route_loss_fn)(void *ctx, uint64_t dest,
                                  nmi_route_loss kind, const nmi_route *best);

/*
 * foreach visitor: one destination and its candidates, best first
 * (n in 1..NMI_ROUTE_MAX_CANDIDATES; the array is borrowed for the call).
 * Return 0 to go on, anything else to stop (foreach returns that value).
 * Must not modify the table.
 */
typedef int (*nmi_route_visit_fn)(void *ctx, uint64_t dest,
                                  const nmi_route *cands, size_t n);

/* nmi_route_table_new - an empty table. cfg may be NULL (defaults).
 * NM_EINVAL (out NULL, a cap over NMI_ROUTE_LIMIT_MAX), NM_ENOMEM. */
int nmi_route_table_new(const nmi_route_config *cfg, nmi_route_table **out);
/* nmi_route_table_free - release everything; NULL is a no-op. */
void nmi_route_table_free(nmi_route_table *t);

/* nmi_route_metric_from_hops - the learned metric for a pingwave or
 * announcement that arrived with hop_count `hops`: hops + 2 (upstream). */
static inline uint32_t
nmi_route_metric_from_hops(uint8_t hops)
{
    return (uint32_t)hops + 2u;
}

/*
 * nmi_route_add_direct - a session with `peer` opened (or the peer
 * recovered): install (peer via peer, metric 1, refreshed now_us).
 * Learned candidates toward peer through other peers are kept (they are
 * the fallback if this link fails); if there are already
 * NMI_ROUTE_MAX_CANDIDATES of them the worst goes. Idempotent: again on
 * a direct peer only updates refreshed_us. Returns NM_OK, NM_ERANGE
 * (max_direct direct peers already, or a new destination while the table
 * holds max_dests + max_direct; with a detail), NM_ENOMEM.
 */
int nmi_route_add_direct(nmi_route_table *t, uint64_t peer, uint64_t now_us);

/*
 * nmi_route_learn - a pingwave / capability announcement from direct
 * peer `via` says `dest` is reachable at `metric` (use
 * nmi_route_metric_from_hops). Stores or refreshes the candidate
 * (dest, via) under the rules in the file comment.
 * Returns an nmi_route_learn_result (>= 0) or:
 *   NM_ENOTCONN - via is not a current direct peer (refused, no change);
 *   NM_EINVAL   - metric < 2 (a learned route is never direct);
 *   NM_ERANGE   - dest is new and max_dests learned-only destinations
 *                 exist already;
 *   NM_ENOMEM   - growing the table failed (no change).
 * The hot path formats no error detail for NM_ENOTCONN / NM_ERANGE
 * (both are expected under normal churn); NM_EINVAL sets one.
 */
int nmi_route_learn(nmi_route_table *t, uint64_t dest, uint64_t via,
                    uint32_t metric, uint64_t now_us);

/*
 * nmi_route_remove_via - peer `via` failed or its session closed: drop
 * its direct route and every candidate through it. `fn` (may be NULL) is
 * called once per affected destination: NMI_ROUTE_UNREACHABLE when its
 * last candidate went (flood a withdrawal for it), NMI_ROUTE_LOST_CANDIDATE
 * when it is still reachable. Learned candidates toward `via` itself
 * through other peers are kept. Returns the number of affected
 * destinations (0 if via was unknown). O(slots).
 */
size_t nmi_route_remove_via(nmi_route_table *t, uint64_t via,
                            nmi_route_loss_fn fn, void *ctx);

/*
 * nmi_route_withdraw - a withdrawal (0x0C01) for `dest` arrived from
 * session peer `via`: drop the learned candidate (dest, via). A direct
 * route is never withdrawn (only remove_via removes it): withdrawing
 * (P via P) while P is direct gives NMI_ROUTE_WD_NONE. Returns an
 * nmi_route_withdraw_result; NMI_ROUTE_WD_UNREACHABLE means flood the
 * withdrawal on (subject to damping).
 */
int nmi_route_withdraw(nmi_route_table *t, uint64_t dest, uint64_t via);

/*
 * nmi_route_sweep - drop learned candidates with now_us - refreshed_us >
 * max_age_us (upstream: 3 x session_timeout). Direct routes are never
 * swept. A refresh time in the future counts as age 0. `fn` (may be
 * NULL) as in remove_via. Returns the number of candidates dropped.
 * O(slots).
 */
size_t nmi_route_sweep(nmi_route_table *t, uint64_t now_us,
                       uint64_t max_age_us, nmi_route_loss_fn fn, void *ctx);

/* nmi_route_lookup - the best candidate toward dest into *out (may be
 * NULL): true, or false when dest is unreachable (*out untouched). */
bool nmi_route_lookup(const nmi_route_table *t, uint64_t dest, nmi_route *out);

/* nmi_route_candidates - every candidate toward dest, best first, into
 * out[0..NMI_ROUTE_MAX_CANDIDATES). Returns how many (0 = unreachable). */
size_t nmi_route_candidates(const nmi_route_table *t, uint64_t dest,
                            nmi_route out[NMI_ROUTE_MAX_CANDIDATES]);

/* nmi_route_is_direct - peer has a direct route (a session is up). */
bool nmi_route_is_direct(const nmi_route_table *t, uint64_t peer);

/*
 * nmi_route_split_horizon_ok - may a pingwave / announcement originated
 * by `origin` be forwarded to `candidate_peer`? False exactly when
 * candidate_peer is the current best next hop toward origin; true when
 * origin is unreachable. (The node separately skips the packet's source
 * and requires hop/TTL limits.)
 */
bool nmi_route_split_horizon_ok(const nmi_route_table *t, uint64_t origin,
                                uint64_t candidate_peer);

/* nmi_route_foreach - visit every destination (slot order: arbitrary but
 * deterministic for a given hash_key and call history). Returns 0 or the
 * first non-zero value a visitor returned. */
int nmi_route_foreach(const nmi_route_table *t, nmi_route_visit_fn fn,
                      void *ctx);

void nmi_route_stats_get(const nmi_route_table *t, nmi_route_stats *out);

#endif
