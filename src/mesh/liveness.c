/*
 * src/mesh/liveness.c - failure detector, pingwave duplicate filter,
 * withdrawal damping and topology pingwave pacing (see liveness.h).
 */
#include "mesh/liveness.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* now - then, 0 when then is not in the past. */
static inline uint64_t
age_us(uint64_t now, uint64_t then)
{
    return now > then ? now - then : 0;
}

static inline uint64_t
sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static inline uint64_t
sat_mul(uint64_t a, uint64_t b)
{
    if (a != 0 && b > UINT64_MAX / a) {
        return UINT64_MAX;
    }
    return a * b;
}

static inline uint64_t
mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int
random_key(uint64_t *key)
{
    if (sodium_init() < 0) {
        return nmi_err(NM_EINTERNAL, "sodium_init failed");
    }
    do {
        randombytes_buf(key, sizeof(*key));
    } while (*key == 0);
    return NM_OK;
}

/* ================================================== failure detector */

int
nmi_fd_init(nmi_fd *d, const nmi_fd_config *cfg, uint64_t now_us)
{
    if (d == NULL) {
        return nmi_err(NM_EINVAL, "nmi_fd_init: d is NULL");
    }
    memset(d, 0, sizeof(*d));
    nmi_fd_config c = {0};
    if (cfg != NULL) {
        c = *cfg;
    }
    if (c.timeout_us == 0) {
        c.timeout_us = NMI_FD_DEFAULT_TIMEOUT_US;
    }
    if (c.suspect_after == 0) {
        c.suspect_after = NMI_FD_DEFAULT_SUSPECT;
    }
    if (c.fail_after == 0) {
        c.fail_after = NMI_FD_DEFAULT_FAIL;
    }
    if (c.fail_after < c.suspect_after) {
        return nmi_err(NM_EINVAL,
                       "failure detector: fail_after (%u) < suspect_after "
                       "(%u)",
                       c.fail_after, c.suspect_after);
    }
    d->timeout_us = c.timeout_us;
    d->suspect_after = c.suspect_after;
    d->fail_after = c.fail_after;
    d->last_heard_us = now_us;
    d->state = NMI_FD_HEALTHY;
    return NM_OK;
}

nmi_fd_state
nmi_fd_heard(nmi_fd *d, uint64_t now_us)
{
    nmi_fd_state before = d->state;
    if (now_us > d->last_heard_us) {
        d->last_heard_us = now_us;
    }
    d->state = NMI_FD_HEALTHY;
    return before;
}

uint64_t
nmi_fd_missed(const nmi_fd *d, uint64_t now_us)
{
    return age_us(now_us, d->last_heard_us) / d->timeout_us;
}

nmi_fd_state
nmi_fd_check(nmi_fd *d, uint64_t now_us, bool *changed)
{
    uint64_t missed = nmi_fd_missed(d, now_us);
    nmi_fd_state s = NMI_FD_HEALTHY;
    if (missed >= d->fail_after) {
        s = NMI_FD_FAILED;
    } else if (missed >= d->suspect_after) {
        s = NMI_FD_SUSPECT;
    }
    bool moved = s > d->state; /* only ever worsen */
    if (moved) {
        d->state = s;
    }
    if (changed != NULL) {
        *changed = moved;
    }
    return d->state;
}

nmi_fd_state
nmi_fd_state_get(const nmi_fd *d)
{
    return d->state;
}

uint64_t
nmi_fd_last_heard(const nmi_fd *d)
{
    return d->last_heard_us;
}

uint64_t
nmi_fd_next_change(const nmi_fd *d)
{
    uint32_t n;
    switch (d->state) {
    case NMI_FD_HEALTHY:
        n = d->suspect_after;
        break;
    case NMI_FD_SUSPECT:
        n = d->fail_after;
        break;
    default:
        return UINT64_MAX;
    }
    return sat_add(d->last_heard_us, sat_mul(n, d->timeout_us));
}

const char *
nmi_fd_state_name(nmi_fd_state s)
{
    switch (s) {
    case NMI_FD_HEALTHY:
        return "healthy";
    case NMI_FD_SUSPECT:
        return "suspect";
    case NMI_FD_FAILED:
        return "failed";
    }
    return "?";
}

/* ============================================ pingwave duplicate filter */

typedef struct dedup_entry {
    uint64_t origin;
    uint64_t seq;
    uint64_t seen_us;
} dedup_entry;

struct nmi_dedup {
    dedup_entry *ring; /* capacity entries, arrival order */
    uint32_t *index;   /* ring position + 1; 0 = free */
    size_t imask;      /* index slots - 1 */
    size_t capacity;
    size_t head; /* oldest entry */
    size_t size;
    uint64_t window_us;
    uint64_t key;
    uint64_t accepted, duplicates, evicted, expired;
};

static inline size_t
dedup_home(const nmi_dedup *f, uint64_t origin, uint64_t seq)
{
    return (size_t)mix64(mix64(origin ^ f->key) ^ seq) & f->imask;
}

/* Index slot holding ring position pos (which must be indexed). */
static size_t
dedup_slot_of(const nmi_dedup *f, size_t pos)
{
    const dedup_entry *e = &f->ring[pos];
    size_t i = dedup_home(f, e->origin, e->seq);
    while (f->index[i] != pos + 1) {
        i = (i + 1) & f->imask;
    }
    return i;
}

/* Remove index slot i by backward shift. */
static void
dedup_unindex(nmi_dedup *f, size_t i)
{
    size_t hole = i;
    for (size_t j = (i + 1) & f->imask;; j = (j + 1) & f->imask) {
        uint32_t v = f->index[j];
        if (v == 0) {
            break;
        }
        const dedup_entry *e = &f->ring[v - 1];
        size_t home = dedup_home(f, e->origin, e->seq);
        bool stays = hole <= j ? (home > hole && home <= j)
                               : (home > hole || home <= j);
        if (!stays) {
            f->index[hole] = v;
            hole = j;
        }
    }
    f->index[hole] = 0;
}

static void
dedup_pop(nmi_dedup *f)
{
    dedup_unindex(f, dedup_slot_of(f, f->head));
    f->head = (f->head + 1) % f->capacity;
    f->size--;
}

int
nmi_dedup_new(const nmi_dedup_config *cfg, nmi_dedup **out)
{
    if (out == NULL) {
        return nmi_err(NM_EINVAL, "nmi_dedup_new: out is NULL");
    }
    *out = NULL;
    nmi_dedup_config c = {0};
    if (cfg != NULL) {
        c = *cfg;
    }
    if (c.window_us == 0) {
        c.window_us = NMI_DEDUP_DEFAULT_WINDOW_US;
    }
    if (c.capacity == 0) {
        c.capacity = NMI_DEDUP_DEFAULT_CAPACITY;
    }
    if (c.capacity > NMI_DEDUP_MAX_CAPACITY) {
        return nmi_err(NM_EINVAL, "dedup capacity %u > %u", c.capacity,
                       NMI_DEDUP_MAX_CAPACITY);
    }
    if (c.hash_key == 0) {
        int rc = random_key(&c.hash_key);
        if (rc != NM_OK) {
            return rc;
        }
    }
    nmi_dedup *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return nmi_err(NM_ENOMEM, "dedup filter");
    }
    size_t islots = (size_t)nmi_pow2_ceil(2 * (uint64_t)c.capacity);
    f->ring = calloc(c.capacity, sizeof(*f->ring));
    f->index = calloc(islots, sizeof(*f->index));
    if (f->ring == NULL || f->index == NULL) {
        nmi_dedup_free(f);
        return nmi_err(NM_ENOMEM, "dedup filter: %u entries", c.capacity);
    }
    f->imask = islots - 1;
    f->capacity = c.capacity;
    f->window_us = c.window_us;
    f->key = c.hash_key;
    *out = f;
    return NM_OK;
}

void
nmi_dedup_free(nmi_dedup *f)
{
    if (f == NULL) {
        return;
    }
    free(f->ring);
    free(f->index);
    free(f);
}

bool
nmi_dedup_check(nmi_dedup *f, uint64_t origin, uint64_t seq, uint64_t now_us)
{
    while (f->size > 0 &&
           age_us(now_us, f->ring[f->head].seen_us) >= f->window_us) {
        dedup_pop(f);
        f->expired++;
    }
    size_t i = dedup_home(f, origin, seq);
    for (uint32_t v; (v = f->index[i]) != 0; i = (i + 1) & f->imask) {
        dedup_entry *e = &f->ring[v - 1];
        if (e->origin == origin && e->seq == seq) {
            if (age_us(now_us, e->seen_us) < f->window_us) {
                f->duplicates++;
                return true;
            }
            /* Expired but not yet popped (an older-looking entry ahead
             * of it after a clock step back): a fresh sighting. */
            e->seen_us = now_us;
            f->accepted++;
            return false;
        }
    }
    if (f->size == f->capacity) {
        dedup_pop(f);
        f->evicted++;
        /* the pop may have shifted the index: probe for a free slot
         * again below */
    }
    size_t pos = (f->head + f->size) % f->capacity;
    f->ring[pos] =
        (dedup_entry){.origin = origin, .seq = seq, .seen_us = now_us};
    i = dedup_home(f, origin, seq);
    while (f->index[i] != 0) {
        i = (i + 1) & f->imask;
    }
    f->index[i] = (uint32_t)pos + 1;
    f->size++;
    f->accepted++;
    return false;
}

void
nmi_dedup_stats_get(const nmi_dedup *f, nmi_dedup_stats *out)
{
    out->size = f->size;
    out->capacity = f->capacity;
    out->accepted = f->accepted;
    out->duplicates = f->duplicates;
    out->evicted = f->evicted;
    out->expired = f->expired;
}

/* ================================================= withdrawal damping */

typedef struct damp_entry {
    uint64_t dest;
    uint64_t at_us;
} damp_entry;

struct nmi_damp {
    damp_entry *ring; /* the last max admissions, arrival order */
    size_t max;
    size_t head; /* oldest */
    size_t size;
    uint64_t interval_us;
};

int
nmi_damp_new(const nmi_damp_config *cfg, nmi_damp **out)
{
    if (out == NULL) {
        return nmi_err(NM_EINVAL, "nmi_damp_new: out is NULL");
    }
    *out = NULL;
    nmi_damp_config c = {0};
    if (cfg != NULL) {
        c = *cfg;
    }
    if (c.interval_us == 0) {
        c.interval_us = NMI_DAMP_DEFAULT_INTERVAL_US;
    }
    if (c.max_in_flight == 0) {
        c.max_in_flight = NMI_DAMP_DEFAULT_MAX_IN_FLIGHT;
    }
    if (c.max_in_flight > NMI_DAMP_MAX_IN_FLIGHT) {
        return nmi_err(NM_EINVAL, "withdrawal damping: max_in_flight %u > %u",
                       c.max_in_flight, NMI_DAMP_MAX_IN_FLIGHT);
    }
    nmi_damp *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return nmi_err(NM_ENOMEM, "withdrawal damping");
    }
    d->ring = calloc(c.max_in_flight, sizeof(*d->ring));
    if (d->ring == NULL) {
        free(d);
        return nmi_err(NM_ENOMEM, "withdrawal damping ring");
    }
    d->max = c.max_in_flight;
    d->interval_us = c.interval_us;
    *out = d;
    return NM_OK;
}

void
nmi_damp_free(nmi_damp *d)
{
    if (d == NULL) {
        return;
    }
    free(d->ring);
    free(d);
}

nmi_damp_verdict
nmi_damp_admit(nmi_damp *d, uint64_t dest, uint64_t now_us)
{
    /* Forget what left the window (oldest first). */
    while (d->size > 0 &&
           age_us(now_us, d->ring[d->head].at_us) >= d->interval_us) {
        d->head = (d->head + 1) % d->max;
        d->size--;
    }
    size_t live = 0;
    for (size_t k = 0; k < d->size; k++) {
        const damp_entry *e = &d->ring[(d->head + k) % d->max];
        if (age_us(now_us, e->at_us) < d->interval_us) {
            if (e->dest == dest) {
                return NMI_DAMP_DEST;
            }
            live++;
        }
    }
    if (live >= d->max) {
        return NMI_DAMP_IN_FLIGHT;
    }
    if (d->size == d->max) {
        /* Only after a clock step back can an entry outlive the window
         * behind a newer one; the oldest goes. */
        d->head = (d->head + 1) % d->max;
        d->size--;
    }
    d->ring[(d->head + d->size) % d->max] =
        (damp_entry){.dest = dest, .at_us = now_us};
    d->size++;
    return NMI_DAMP_SEND;
}

size_t
nmi_damp_in_flight(const nmi_damp *d, uint64_t now_us)
{
    size_t live = 0;
    for (size_t k = 0; k < d->size; k++) {
        const damp_entry *e = &d->ring[(d->head + k) % d->max];
        if (age_us(now_us, e->at_us) < d->interval_us) {
            live++;
        }
    }
    return live;
}

/* ================================== topology-change pingwave pacing */

int
nmi_pace_init(nmi_pace *p, const nmi_pace_config *cfg)
{
    if (p == NULL) {
        return nmi_err(NM_EINVAL, "nmi_pace_init: p is NULL");
    }
    memset(p, 0, sizeof(*p));
    nmi_pace_config c = {0};
    if (cfg != NULL) {
        c = *cfg;
    }
    p->min_gap_us = c.min_gap_us ? c.min_gap_us : NMI_PACE_DEFAULT_MIN_GAP_US;
    p->spacing_us = c.spacing_us ? c.spacing_us : NMI_PACE_DEFAULT_SPACING_US;
    p->copies = c.copies ? c.copies : NMI_PACE_DEFAULT_COPIES;
    return NM_OK;
}

void
nmi_pace_trigger(nmi_pace *p, uint64_t now_us)
{
    (void)now_us; /* the rules need only the send times */
    p->pending = true;
}

bool
nmi_pace_due(nmi_pace *p, uint64_t now_us)
{
    if (p->copies_left > 0) {
        if (now_us < p->next_copy_us) {
            return false;
        }
        p->copies_left--;
        p->next_copy_us = sat_add(now_us, p->spacing_us);
        return true;
    }
    if (!p->pending ||
        (p->started && now_us < sat_add(p->burst_start_us, p->min_gap_us))) {
        return false;
    }
    p->pending = false;
    p->started = true;
    p->burst_start_us = now_us;
    p->copies_left = p->copies - 1;
    p->next_copy_us = sat_add(now_us, p->spacing_us);
    return true;
}

uint64_t
nmi_pace_next_due(const nmi_pace *p)
{
    if (p->copies_left > 0) {
        return p->next_copy_us;
    }
    if (!p->pending) {
        return UINT64_MAX;
    }
    return p->started ? sat_add(p->burst_start_us, p->min_gap_us) : 0;
}
