/*
 * src/mesh/routing.c - the mesh routing table (see routing.h).
 *
 * Layout: one array of slots, open addressing with linear probing. A slot
 * is in use when it holds at least one candidate (n > 0); a destination
 * whose last candidate goes is deleted by backward shift, so probe runs
 * never contain holes and there are no tombstones. Each slot keeps its
 * candidates sorted best first, so a lookup reads c[0] and "has a direct
 * route" is c[0].metric == 1 (only a direct route has metric 1).
 */
#include "mesh/routing.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define ROUTE_MIN_SLOTS 16u

typedef struct route_cand {
    uint64_t via;
    uint64_t refreshed_us;
    uint32_t metric;
} route_cand;

typedef struct route_slot {
    uint64_t dest;
    uint8_t n; /* candidates in c[0..n); 0 = free slot */
    route_cand c[NMI_ROUTE_MAX_CANDIDATES];
} route_slot;

#if UINTPTR_MAX == UINT64_MAX
/* routing.h documents the memory bound with this size. */
_Static_assert(sizeof(route_slot) == 112, "route_slot is 112 bytes");
#endif

struct nmi_route_table {
    route_slot *slots;
    size_t mask;      /* slot count - 1 (a power of two) */
    size_t max_slots; /* the growth limit */
    size_t used;      /* destinations */
    size_t direct;    /* destinations with a direct route */
    size_t learned;   /* destinations without one */
    size_t ncands;
    uint32_t max_dests;
    uint32_t max_direct;
    uint64_t key;
};

/* ------------------------------------------------------------ helpers */

static inline size_t
slot_home(const nmi_route_table *t, uint64_t dest)
{
    /* splitmix64's finalizer over the keyed id: a bijection, so distinct
     * ids never collide before the mask, and the key hides the layout. */
    uint64_t z = dest ^ t->key;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (size_t)z & t->mask;
}

static inline bool
slot_direct(const route_slot *s)
{
    return s->n > 0 && s->c[0].metric == NMI_ROUTE_METRIC_DIRECT;
}

/* Ranking: lower metric, then more recent, then lower via. */
static inline bool
cand_better(const route_cand *a, const route_cand *b)
{
    if (a->metric != b->metric) {
        return a->metric < b->metric;
    }
    if (a->refreshed_us != b->refreshed_us) {
        return a->refreshed_us > b->refreshed_us;
    }
    return a->via < b->via;
}

static void
slot_sort(route_slot *s)
{
    for (size_t i = 1; i < s->n; i++) {
        route_cand x = s->c[i];
        size_t j = i;
        while (j > 0 && cand_better(&x, &s->c[j - 1])) {
            s->c[j] = s->c[j - 1];
            j--;
        }
        s->c[j] = x;
    }
}

static int
slot_find_via(const route_slot *s, uint64_t via)
{
    for (int i = 0; i < (int)s->n; i++) {
        if (s->c[i].via == via) {
            return i;
        }
    }
    return -1;
}

static void
slot_drop(route_slot *s, size_t i)
{
    memmove(&s->c[i], &s->c[i + 1], (s->n - 1 - i) * sizeof(s->c[0]));
    s->n--;
}

static void
to_route(const route_slot *s, size_t i, nmi_route *out)
{
    out->dest = s->dest;
    out->via = s->c[i].via;
    out->refreshed_us = s->c[i].refreshed_us;
    out->metric = s->c[i].metric;
    out->direct = s->c[i].metric == NMI_ROUTE_METRIC_DIRECT;
}

static route_slot *
find(const nmi_route_table *t, uint64_t dest)
{
    for (size_t i = slot_home(t, dest);; i = (i + 1) & t->mask) {
        route_slot *s = &t->slots[i];
        if (s->n == 0) {
            return NULL;
        }
        if (s->dest == dest) {
            return s;
        }
    }
}

/* Place dest (not present; a free slot exists) and return its slot. */
static route_slot *
place(nmi_route_table *t, uint64_t dest)
{
    size_t i = slot_home(t, dest);
    while (t->slots[i].n != 0) {
        i = (i + 1) & t->mask;
    }
    t->slots[i].dest = dest;
    return &t->slots[i];
}

/* Room for one more destination: grow at load > 3/4. */
static int
reserve(nmi_route_table *t)
{
    size_t cap = t->mask + 1;
    if ((t->used + 1) * 4 <= cap * 3) {
        return NM_OK;
    }
    if (cap >= t->max_slots) {
        /* Unreachable while the caps hold; kept as a hard stop. */
        return nmi_err(NM_ERANGE, "routing table at its slot limit (%zu)",
                       cap);
    }
    size_t ncap = cap * 2;
    route_slot *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL) {
        return nmi_err(NM_ENOMEM, "routing table: %zu slots", ncap);
    }
    route_slot *old = t->slots;
    t->slots = ns;
    t->mask = ncap - 1;
    for (size_t i = 0; i < cap; i++) {
        if (old[i].n != 0) {
            *place(t, old[i].dest) = old[i];
        }
    }
    free(old);
    return NM_OK;
}

/* Delete the (now empty) slot at index i by backward shift. */
static void
slot_delete(nmi_route_table *t, size_t i)
{
    size_t hole = i;
    for (size_t j = (i + 1) & t->mask;; j = (j + 1) & t->mask) {
        route_slot *s = &t->slots[j];
        if (s->n == 0) {
            break;
        }
        size_t home = slot_home(t, s->dest);
        /* s may move into the hole unless its home lies cyclically in
         * (hole, j]. */
        bool stays = hole <= j ? (home > hole && home <= j)
                               : (home > hole || home <= j);
        if (!stays) {
            t->slots[hole] = *s;
            hole = j;
        }
    }
    memset(&t->slots[hole], 0, sizeof(t->slots[hole]));
    t->used--;
}

/* Account for a slot whose candidate set changed from (had_direct, had
 * n>0) to its current state; delete it at index i when empty. Returns
 * true when it was deleted. */
static bool
settle(nmi_route_table *t, size_t i, bool had_direct)
{
    route_slot *s = &t->slots[i];
    bool has_direct = slot_direct(s);
    if (had_direct && !has_direct) {
        t->direct--;
        if (s->n > 0) {
            t->learned++;
        }
    } else if (!had_direct && s->n == 0) {
        t->learned--;
    }
    if (s->n == 0) {
        slot_delete(t, i);
        return true;
    }
    return false;
}

/* ---------------------------------------------------------- lifecycle */

int
nmi_route_table_new(const nmi_route_config *cfg, nmi_route_table **out)
{
    if (out == NULL) {
        return nmi_err(NM_EINVAL, "nmi_route_table_new: out is NULL");
    }
    *out = NULL;
    nmi_route_config c = {0};
    if (cfg != NULL) {
        c = *cfg;
    }
    if (c.max_dests == 0) {
        c.max_dests = NMI_ROUTE_DEFAULT_MAX_DESTS;
    }
    if (c.max_direct == 0) {
        c.max_direct = NMI_ROUTE_DEFAULT_MAX_DIRECT;
    }
    if (c.max_dests > NMI_ROUTE_LIMIT_MAX ||
        c.max_direct > NMI_ROUTE_LIMIT_MAX) {
        return nmi_err(NM_EINVAL,
                       "routing caps must be <= %u (max_dests %u, "
                       "max_direct %u)",
                       NMI_ROUTE_LIMIT_MAX, c.max_dests, c.max_direct);
    }
    if (c.hash_key == 0) {
        if (sodium_init() < 0) {
            return nmi_err(NM_EINTERNAL, "sodium_init failed");
        }
        randombytes_buf(&c.hash_key, sizeof(c.hash_key));
    }
    nmi_route_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return nmi_err(NM_ENOMEM, "routing table");
    }
    uint64_t bound = (uint64_t)c.max_dests + c.max_direct;
    t->max_slots = (size_t)nmi_pow2_ceil(bound * 4 / 3 + 1);
    if (t->max_slots < ROUTE_MIN_SLOTS) {
        t->max_slots = ROUTE_MIN_SLOTS;
    }
    t->slots = calloc(ROUTE_MIN_SLOTS, sizeof(*t->slots));
    if (t->slots == NULL) {
        free(t);
        return nmi_err(NM_ENOMEM, "routing table slots");
    }
    t->mask = ROUTE_MIN_SLOTS - 1;
    t->max_dests = c.max_dests;
    t->max_direct = c.max_direct;
    t->key = c.hash_key;
    *out = t;
    return NM_OK;
}

void
nmi_route_table_free(nmi_route_table *t)
{
    if (t == NULL) {
        return;
    }
    free(t->slots);
    free(t);
}

/* ----------------------------------------------------------- updates */

int
nmi_route_add_direct(nmi_route_table *t, uint64_t peer, uint64_t now_us)
{
    route_slot *s = find(t, peer);
    route_cand d = {.via = peer,
                    .refreshed_us = now_us,
                    .metric = NMI_ROUTE_METRIC_DIRECT};
    if (s == NULL) {
        if (t->direct >= t->max_direct ||
            t->used >= (size_t)t->max_dests + t->max_direct) {
            return nmi_err(NM_ERANGE,
                           "routing table full: %zu direct peers, %zu "
                           "destinations",
                           t->direct, t->used);
        }
        int rc = reserve(t);
        if (rc != NM_OK) {
            return rc;
        }
        s = place(t, peer);
        s->n = 1;
        s->c[0] = d;
        t->used++;
        t->direct++;
        t->ncands++;
        return NM_OK;
    }
    if (slot_direct(s)) {
        s->c[0].refreshed_us = now_us;
        return NM_OK;
    }
    if (t->direct >= t->max_direct) {
        return nmi_err(NM_ERANGE, "routing table full: %zu direct peers",
                       t->direct);
    }
    /* No learned (peer via peer) can exist: learn requires via to be
     * direct and ignores via == dest. */
    if (s->n < NMI_ROUTE_MAX_CANDIDATES) {
        s->c[s->n++] = d;
        t->ncands++;
    } else {
        s->c[s->n - 1] = d; /* evict the worst learned candidate */
    }
    slot_sort(s);
    t->learned--;
    t->direct++;
    return NM_OK;
}

int
nmi_route_learn(nmi_route_table *t, uint64_t dest, uint64_t via,
                uint32_t metric, uint64_t now_us)
{
    if (metric <= NMI_ROUTE_METRIC_DIRECT) {
        return nmi_err(NM_EINVAL, "learned route metric %u must be >= 2",
                       metric);
    }
    const route_slot *v = find(t, via);
    if (v == NULL || !slot_direct(v)) {
        return NM_ENOTCONN; /* expected churn: no detail on this path */
    }
    route_cand nc = {.via = via, .refreshed_us = now_us, .metric = metric};
    route_slot *s = find(t, dest);
    if (s == NULL) {
        if (t->learned >= t->max_dests) {
            return NM_ERANGE;
        }
        int rc = reserve(t);
        if (rc != NM_OK) {
            return rc;
        }
        s = place(t, dest);
        s->n = 1;
        s->c[0] = nc;
        t->used++;
        t->learned++;
        t->ncands++;
        return NMI_ROUTE_LEARN_NEW;
    }
    if (dest == via && slot_direct(s)) {
        return NMI_ROUTE_LEARN_IGNORED;
    }
    int k = slot_find_via(s, via);
    if (k >= 0) {
        s->c[k].metric = metric;
        s->c[k].refreshed_us = now_us;
        slot_sort(s);
        return NMI_ROUTE_LEARN_REFRESHED;
    }
    if (s->n < NMI_ROUTE_MAX_CANDIDATES) {
        s->c[s->n++] = nc;
        t->ncands++;
    } else if (cand_better(&nc, &s->c[s->n - 1])) {
        /* Sorted best first and full: c[n-1] is the worst, and it is
         * learned (a direct route ranks first). */
        s->c[s->n - 1] = nc;
    } else {
        return NMI_ROUTE_LEARN_IGNORED;
    }
    slot_sort(s);
    return NMI_ROUTE_LEARN_NEW;
}

int
nmi_route_withdraw(nmi_route_table *t, uint64_t dest, uint64_t via)
{
    route_slot *s = find(t, dest);
    if (s == NULL) {
        return NMI_ROUTE_WD_NONE;
    }
    int k = slot_find_via(s, via);
    if (k < 0 || s->c[k].metric == NMI_ROUTE_METRIC_DIRECT) {
        return NMI_ROUTE_WD_NONE;
    }
    bool had_direct = slot_direct(s);
    slot_drop(s, (size_t)k);
    t->ncands--;
    return settle(t, (size_t)(s - t->slots), had_direct)
               ? NMI_ROUTE_WD_UNREACHABLE
               : NMI_ROUTE_WD_LOST;
}

/* The shared walk of remove_via and sweep: drop, in every slot, the
 * candidates `doomed` selects, report each affected destination. */
typedef bool (*doomed_fn)(const route_slot *s, const route_cand *c,
                          const void *arg);

static size_t
prune(nmi_route_table *t, doomed_fn doomed, const void *arg,
      nmi_route_loss_fn fn, void *ctx, size_t *dests)
{
    size_t dropped = 0;
    *dests = 0;
    for (size_t i = 0; i <= t->mask; i++) {
        /* A deletion at i can shift another destination into i, so
         * look at i again until it is free or unchanged. A destination
         * shifted back across the wrap was already pruned; pruning it
         * again finds nothing, so nobody is reported twice. */
        for (;;) {
            route_slot *s = &t->slots[i];
            if (s->n == 0) {
                break;
            }
            bool had_direct = slot_direct(s);
            size_t before = s->n;
            for (size_t k = s->n; k-- > 0;) {
                if (doomed(s, &s->c[k], arg)) {
                    slot_drop(s, k);
                }
            }
            if (s->n == before) {
                break;
            }
            dropped += before - s->n;
            t->ncands -= before - s->n;
            (*dests)++;
            uint64_t dest = s->dest;
            if (settle(t, i, had_direct)) {
                if (fn != NULL) {
                    fn(ctx, dest, NMI_ROUTE_UNREACHABLE, NULL);
                }
                continue;
            }
            if (fn != NULL) {
                nmi_route best;
                to_route(s, 0, &best);
                fn(ctx, dest, NMI_ROUTE_LOST_CANDIDATE, &best);
            }
            break;
        }
    }
    return dropped;
}

static bool
doomed_via(const route_slot *s, const route_cand *c, const void *arg)
{
    (void)s;
    return c->via == *(const uint64_t *)arg;
}

size_t
nmi_route_remove_via(nmi_route_table *t, uint64_t via, nmi_route_loss_fn fn,
                     void *ctx)
{
    size_t dests;
    prune(t, doomed_via, &via, fn, ctx, &dests);
    return dests;
}

typedef struct sweep_arg {
    uint64_t now_us;
    uint64_t max_age_us;
} sweep_arg;

static bool
doomed_old(const route_slot *s, const route_cand *c, const void *arg)
{
    (void)s;
    const sweep_arg *a = arg;
    if (c->metric == NMI_ROUTE_METRIC_DIRECT || c->refreshed_us >= a->now_us) {
        return false;
    }
    return a->now_us - c->refreshed_us > a->max_age_us;
}

size_t
nmi_route_sweep(nmi_route_table *t, uint64_t now_us, uint64_t max_age_us,
                nmi_route_loss_fn fn, void *ctx)
{
    sweep_arg a = {.now_us = now_us, .max_age_us = max_age_us};
    size_t dests;
    return prune(t, doomed_old, &a, fn, ctx, &dests);
}

/* ----------------------------------------------------------- queries */

bool
nmi_route_lookup(const nmi_route_table *t, uint64_t dest, nmi_route *out)
{
    const route_slot *s = find(t, dest);
    if (s == NULL) {
        return false;
    }
    if (out != NULL) {
        to_route(s, 0, out);
    }
    return true;
}

size_t
nmi_route_candidates(const nmi_route_table *t, uint64_t dest,
                     nmi_route out[NMI_ROUTE_MAX_CANDIDATES])
{
    const route_slot *s = find(t, dest);
    if (s == NULL) {
        return 0;
    }
    for (size_t i = 0; i < s->n; i++) {
        to_route(s, i, &out[i]);
    }
    return s->n;
}

bool
nmi_route_is_direct(const nmi_route_table *t, uint64_t peer)
{
    const route_slot *s = find(t, peer);
    return s != NULL && slot_direct(s);
}

bool
nmi_route_split_horizon_ok(const nmi_route_table *t, uint64_t origin,
                           uint64_t candidate_peer)
{
    const route_slot *s = find(t, origin);
    return s == NULL || s->c[0].via != candidate_peer;
}

int
nmi_route_foreach(const nmi_route_table *t, nmi_route_visit_fn fn, void *ctx)
{
    nmi_route cands[NMI_ROUTE_MAX_CANDIDATES];
    for (size_t i = 0; i <= t->mask; i++) {
        const route_slot *s = &t->slots[i];
        if (s->n == 0) {
            continue;
        }
        for (size_t k = 0; k < s->n; k++) {
            to_route(s, k, &cands[k]);
        }
        int rc = fn(ctx, s->dest, cands, s->n);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

void
nmi_route_stats_get(const nmi_route_table *t, nmi_route_stats *out)
{
    out->dests = t->used;
    out->direct = t->direct;
    out->learned_only = t->learned;
    out->candidates = t->ncands;
    out->slots = t->mask + 1;
}
