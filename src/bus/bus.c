/*
 * src/bus/bus.c - the event bus: open/close, emit, dispatcher, flush,
 * stats. See bus_impl.h for the ring protocol.
 */
#define _GNU_SOURCE
#include "bus/bus_impl.h"
#include "adapters/memory/memlog.h"

#include <netmesh/dedup.h>

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Slots the dispatcher's scan fetches ahead of the one it reads. */
#define NMI_SCAN_AHEAD 16
/* A producer that claims slot p fetches slot p + NMI_CLAIM_AHEAD of the
 * same shard for writing: by the time it (or another producer) claims
 * that slot, the line is here instead of in DRAM, where a ring cycle
 * leaves it. */
#define NMI_CLAIM_AHEAD 4

/* ------------------------------------------------------------ config */

void
nm_bus_config_init(nm_bus_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    unsigned n = nmi_ncpus();
    cfg->shards = n > NM_BUS_MAX_SHARDS ? NM_BUS_MAX_SHARDS : n;
    cfg->ring_capacity = NM_BUS_RING_DEFAULT;
    cfg->backpressure = NM_BP_DROP_OLDEST;
    cfg->sample_rate = 0;
    cfg->block_timeout_ms = 100;
    cfg->batch_min = 1000;
    cfg->batch_max = 10000;
    cfg->batch_max_delay_us = 1000;
    cfg->max_event_bytes = NM_BUS_MAX_EVENT_DEFAULT;
    cfg->dispatch = NM_DISPATCH_THREAD;
    cfg->adapter = NULL;
    cfg->adapter_config = NULL;
    cfg->sub_queue_capacity = 65536;
}

static int
validate_config(const nm_bus_config *c)
{
    if (c->size != sizeof(*c)) {
        return nmi_err(NM_EINVAL,
                       "config.size is %u, expected %zu: call "
                       "nm_bus_config_init first",
                       c->size, sizeof(*c));
    }
    if (c->shards == 0 || c->shards > NM_BUS_MAX_SHARDS) {
        return nmi_err(NM_EINVAL, "shards must be 1..%d (got %u)",
                       NM_BUS_MAX_SHARDS, c->shards);
    }
    if (c->ring_capacity < 2 || !nmi_is_pow2(c->ring_capacity) ||
        c->ring_capacity > (1u << 30)) {
        return nmi_err(NM_EINVAL,
                       "ring_capacity must be a power of two in 2..2^30 "
                       "(got %u)",
                       c->ring_capacity);
    }
    if ((unsigned)c->backpressure > NM_BP_BLOCK) {
        return nmi_err(NM_EINVAL, "unknown backpressure mode %d",
                       (int)c->backpressure);
    }
    if (c->backpressure == NM_BP_SAMPLE && c->sample_rate == 0) {
        return nmi_err(NM_EINVAL, "backpressure Sample needs sample_rate "
                                  ">= 1 (got 0)");
    }
    if (c->backpressure == NM_BP_BLOCK && c->block_timeout_ms < 0) {
        return nmi_err(NM_EINVAL, "block_timeout_ms must be >= 0");
    }
    if (c->batch_min == 0 || c->batch_max == 0 ||
        c->batch_min > c->batch_max || c->batch_max > 1000000) {
        return nmi_err(NM_EINVAL,
                       "batch sizes need 1 <= batch_min <= batch_max <= "
                       "1,000,000 (got %u/%u)",
                       c->batch_min, c->batch_max);
    }
    if (c->batch_max_delay_us == 0 || c->batch_max_delay_us > 10000000) {
        return nmi_err(NM_EINVAL, "batch_max_delay_us must be 1..10^7");
    }
    if (c->max_event_bytes == 0 ||
        c->max_event_bytes > NM_BUS_MAX_EVENT_LIMIT) {
        return nmi_err(NM_EINVAL, "max_event_bytes must be 1..%u",
                       NM_BUS_MAX_EVENT_LIMIT);
    }
    if ((unsigned)c->dispatch > NM_DISPATCH_MANUAL) {
        return nmi_err(NM_EINVAL, "unknown dispatch mode %d",
                       (int)c->dispatch);
    }
    if (c->adapter &&
        (c->adapter->size < sizeof(nm_adapter_ops) || !c->adapter->init ||
         !c->adapter->on_batch || !c->adapter->poll_shard)) {
        return nmi_err(NM_EINVAL, "adapter ops table is incomplete");
    }
    if (c->sub_queue_capacity == 0) {
        return nmi_err(NM_EINVAL, "sub_queue_capacity must be >= 1");
    }
    return NM_OK;
}

/* ------------------------------------------------------------ lifetime */

static void *dispatcher_main(void *arg);
static nmi_pool *pool_new(void);
static void pool_destroy(nmi_pool *p);

static void
free_ring(nmi_shard *sh)
{
    if (!sh->slots) {
        return;
    }
    uint64_t head = atomic_load(&sh->head);
    uint64_t tail = atomic_load(&sh->tail) & ~NMI_TAIL_CLOSED;
    for (uint64_t p = head; p < tail; p++) {
        nmi_slot *s = &sh->slots[p & sh->mask];
        if (slot_seq(sh, s, p, memory_order_acquire) == p + 1 &&
            (s->flags & NMI_SLOT_HEAP)) {
            free(s->u.heap);
        }
    }
    nmi_bigunmap(sh->slots, sizeof(nmi_slot) * (sh->mask + 1));
    sh->slots = NULL;
}

static void
bus_free(nm_bus *bus)
{
    if (bus->ad_state && bus->ad->destroy) {
        bus->ad->destroy(bus->ad_state);
    }
    if (bus->shards) {
        for (uint32_t i = 0; i < bus->nshards; i++) {
            free_ring(&bus->shards[i]);
        }
        free(bus->shards);
    }
    free(bus->subs.v);
    pool_destroy(bus->pool); /* after the adapter released its batches */
    pthread_mutex_destroy(&bus->mu);
    pthread_mutex_destroy(&bus->manual_mu);
    pthread_mutex_destroy(&bus->shutdown_mu);
    pthread_mutex_destroy(&bus->subs_mu);
    pthread_cond_destroy(&bus->wake_cv);
    pthread_cond_destroy(&bus->progress_cv);
    free(bus);
}

void
nmi_bus_ref(nm_bus *bus)
{
    atomic_fetch_add(&bus->refs, 1);
}

void
nmi_bus_unref(nm_bus *bus)
{
    if (atomic_fetch_sub(&bus->refs, 1) == 1) {
        bus_free(bus);
    }
}

int
nm_bus_open(const nm_bus_config *cfg, nm_bus **out)
{
    if (!cfg || !out) {
        return nmi_err(NM_EINVAL, "cfg and out must not be NULL");
    }
    *out = NULL;
    int rc = validate_config(cfg);
    if (rc) {
        return rc;
    }
    if (sodium_init() < 0) {
        return nmi_err(NM_EINTERNAL, "libsodium failed to initialise");
    }
    nm_bus *bus = calloc(1, sizeof(*bus));
    if (!bus) {
        return nmi_err(NM_ENOMEM, "bus");
    }
    bus->cfg = *cfg;
    bus->nshards = cfg->shards;
    uint32_t cap_min = cfg->ring_capacity - cfg->ring_capacity / 4;
    bus->eff_min = cfg->batch_min < cap_min ? cfg->batch_min : cap_min;
    if (bus->eff_min == 0) {
        bus->eff_min = 1;
    }
    if (cfg->producer_nonce_path) {
        rc = nm_producer_nonce_load(cfg->producer_nonce_path, &bus->nonce);
        if (rc) {
            free(bus);
            return rc;
        }
    } else {
        do {
            randombytes_buf(&bus->nonce, sizeof(bus->nonce));
        } while (bus->nonce == 0);
    }
    atomic_init(&bus->refs, 1);
    atomic_init(&bus->state, NMI_BUS_OPEN);
    pthread_mutex_init(&bus->mu, NULL);
    pthread_mutex_init(&bus->manual_mu, NULL);
    pthread_mutex_init(&bus->shutdown_mu, NULL);
    pthread_mutex_init(&bus->subs_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&bus->wake_cv, &ca);
    pthread_cond_init(&bus->progress_cv, &ca);
    pthread_condattr_destroy(&ca);
    bus->pool = pool_new();
    if (!bus->pool) {
        bus_free(bus);
        return nmi_err(NM_ENOMEM, "batch pool");
    }
    bus->shards =
        aligned_alloc(NMI_CACHELINE, sizeof(nmi_shard) * bus->nshards);
    if (!bus->shards) {
        bus_free(bus);
        return nmi_err(NM_ENOMEM, "shards");
    }
    memset(bus->shards, 0, sizeof(nmi_shard) * bus->nshards);
    for (uint32_t i = 0; i < bus->nshards; i++) {
        nmi_shard *sh = &bus->shards[i];
        sh->id = (uint16_t)i;
        sh->mask = cfg->ring_capacity - 1;
        atomic_init(&sh->inflight, UINT64_MAX);
        /* Fresh anonymous pages are zero, and zero is an empty ring (see
         * slot_seq), so there is no initialisation pass; nmi_bigmap faults
         * them in now rather than on the emit path (on huge pages where it
         * can: the ring is walked end to end in a cycle), and the mapping
         * is page-aligned so no slot straddles an extra cache line. */
        sh->slots = nmi_bigmap(sizeof(nmi_slot) * cfg->ring_capacity);
        if (!sh->slots) {
            bus_free(bus);
            return nmi_err(NM_ENOMEM, "ring of %u slots", cfg->ring_capacity);
        }
    }

    bus->ad = cfg->adapter ? cfg->adapter : nm_adapter_memory();
    rc = bus->ad->init(cfg->adapter_config, bus->nshards, &bus->ad_state);
    if (rc) {
        bus->ad_state = NULL;
        bus_free(bus);
        return rc;
    }
    bus->memlog = nmi_memlog_of(bus->ad, bus->ad_state);
    if (bus->ad->size >=
            offsetof(nm_adapter_ops, max_batch) + sizeof(bus->ad->max_batch) &&
        bus->ad->max_batch) {
        size_t m = bus->ad->max_batch(bus->ad_state);
        if (m > 0 && m < bus->cfg.batch_max) {
            bus->cfg.batch_max = (uint32_t)m;
            if (bus->cfg.batch_min > bus->cfg.batch_max) {
                bus->cfg.batch_min = bus->cfg.batch_max;
            }
            if (bus->eff_min > bus->cfg.batch_min) {
                bus->eff_min = bus->cfg.batch_min;
            }
        }
    }

    /* Timestamps count from here: the end of open. */
    nmi_fastclock_init(&bus->clock);
    if (cfg->dispatch == NM_DISPATCH_THREAD) {
        atomic_store(&bus->running, true);
        if (pthread_create(&bus->thread, NULL, dispatcher_main, bus) != 0) {
            bus_free(bus);
            return nmi_err(NM_ENOMEM, "cannot start the dispatcher thread");
        }
        bus->thread_started = true;
    }
    *out = bus;
    return NM_OK;
}

uint64_t
nm_bus_nonce(const nm_bus *bus)
{
    return bus ? bus->nonce : 0;
}

uint32_t
nm_bus_shards(const nm_bus *bus)
{
    return bus ? bus->nshards : 0;
}

bool
nm_bus_healthy(const nm_bus *bus)
{
    if (!bus || atomic_load(&((nm_bus *)bus)->state) != NMI_BUS_OPEN) {
        return false;
    }
    return bus->ad->healthy ? bus->ad->healthy(bus->ad_state) : true;
}

/* ------------------------------------------------------------ dispatch */

static nmi_pool *
pool_new(void)
{
    nmi_pool *p = calloc(1, sizeof(*p));
    if (p) {
        pthread_mutex_init(&p->mu, NULL);
    }
    return p;
}

static void
pool_destroy(nmi_pool *p)
{
    if (!p) {
        return;
    }
    for (int i = 0; i < p->n; i++) {
        free(p->buf[i]);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* A batch buffer of at least `need` bytes: the smallest pooled one that
 * fits, else a new one rounded up to 64 KiB so buffers are reusable. */
static nmi_batch *
pool_get(nmi_pool *p, size_t need)
{
    nmi_batch *b = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&p->mu);
    int best = -1;
    for (int i = 0; i < p->n; i++) {
        if (p->cap[i] >= need && (best < 0 || p->cap[i] < p->cap[best])) {
            best = i;
        }
    }
    if (best >= 0) {
        b = p->buf[best];
        cap = p->cap[best];
        p->n--;
        p->buf[best] = p->buf[p->n];
        p->cap[best] = p->cap[p->n];
    }
    pthread_mutex_unlock(&p->mu);
    if (!b) {
        cap = (need + 65535) & ~(size_t)65535;
        b = malloc(cap);
        if (!b) {
            return NULL;
        }
    }
    b->pool = p;
    b->cap = cap;
    return b;
}

void
nmi_batch_free(nmi_batch *b)
{
    nmi_pool *p = b->pool;
    if (p) {
        pthread_mutex_lock(&p->mu);
        if (p->n < NMI_POOL_SLOTS) {
            p->buf[p->n] = b;
            p->cap[p->n] = b->cap;
            p->n++;
            b = NULL;
        }
        pthread_mutex_unlock(&p->mu);
    }
    free(b);
}

void
nm_batch_retain(const nm_batch *b)
{
    if (b) {
        atomic_fetch_add_explicit(&nmi_batch_of(b)->refs, 1,
                                  memory_order_relaxed);
    }
}

void
nm_batch_release(const nm_batch *b)
{
    if (b && atomic_fetch_sub_explicit(&nmi_batch_of(b)->refs, 1,
                                       memory_order_acq_rel) == 1) {
        nmi_batch_free(nmi_batch_of(b));
    }
}

/* Fetch both lines of a slot with intent to write. */
static inline void
prefetch_slot_w(const nmi_slot *s)
{
#if defined(__x86_64__) || defined(__i386__)
    /* PREFETCHW (a no-op on CPUs without it) rather than the prefetcht0
     * __builtin_prefetch emits without -mprfchw. */
    __asm__ volatile("prefetchw %0\n\tprefetchw %1"
                     :
                     : "m"(*(const char *)s), "m"(((const char *)s)[64]));
#else
    __builtin_prefetch(s, 1, 3);
    __builtin_prefetch((const char *)s + 64, 1, 3);
#endif
}

static inline const uint8_t *
slot_data(const nmi_slot *s)
{
    return (s->flags & NMI_SLOT_HEAP) ? s->u.heap : s->u.inl;
}

/* Scan up to `max` published slots from the head of `sh` and claim them
 * with one CAS on head. Returns how many (0: none published), their first
 * position in *hp and their size in *bytes. The claimed run is marked in
 * flight (flush waits for it) until the caller hands it over. */
static uint64_t
claim_run(nmi_shard *sh, uint64_t max, uint64_t *hp, size_t *bytes)
{
    uint64_t h, k;
    size_t n;
    for (;;) {
        h = atomic_load_explicit(&sh->head, memory_order_acquire);
        k = 0;
        n = 0;
        /* One scan finds the run of published slots and sizes it (len
         * shares the cache line with seq). The slots come from the
         * producers' caches: fetch both lines of the ones ahead. */
        while (k < max) {
            const char *ahead =
                (const char *)&sh->slots[(h + k + NMI_SCAN_AHEAD) & sh->mask];
            __builtin_prefetch(ahead, 0, 3);
            __builtin_prefetch(ahead + 64, 0, 3);
            nmi_slot *s = &sh->slots[(h + k) & sh->mask];
            if (slot_seq(sh, s, h + k, memory_order_acquire) != h + k + 1) {
                break;
            }
            n += s->len + 1;
            k++;
        }
        if (k == 0) {
            return 0;
        }
        atomic_store(&sh->inflight, h);
        if (atomic_compare_exchange_strong(&sh->head, &h, h + k)) {
            break;
        }
        /* An evicting producer moved head: retry from the new head. */
        atomic_store(&sh->inflight, UINT64_MAX);
    }
    *hp = h;
    *bytes = n;
    return k;
}

/* The memory adapter's path, taken while the bus has no live subscription
 * to share a batch with: append the claimed slots [h, h + k) to its log
 * straight from the ring (one copy, no batch buffer) and release them. */
static size_t
dispatch_memlog(nm_bus *bus, nmi_shard *sh, uint64_t h, uint64_t k)
{
    nmi_memlog_w w;
    nmi_memlog_begin(bus->memlog, sh->id, &w);
    for (uint64_t i = 0; i < k; i++) {
        nmi_slot *s = &sh->slots[(h + i) & sh->mask];
        nmi_memlog_put(&w, h + i, s->ts, slot_data(s), s->len);
        if (s->flags & NMI_SLOT_HEAP) {
            free(s->u.heap);
        }
        slot_set(sh, s, h + i, h + i + sh->mask + 1, memory_order_release);
    }
    uint64_t lost = nmi_memlog_end(&w);
    if (lost) {
        atomic_fetch_add(&bus->adapter_errors, 1);
        atomic_fetch_add(&sh->dropped, lost);
    }
    if (lost < k) {
        atomic_fetch_add_explicit(&sh->dispatched, k - lost,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&sh->batches, 1, memory_order_relaxed);
    }
    atomic_store(&sh->inflight, UINT64_MAX);
    return k;
}

/* Copy the claimed slots [h, h + k) into a batch, release them, and hand
 * the batch to the adapter and the live subscriptions. */
static size_t
dispatch_claimed(nm_bus *bus, nmi_shard *sh, uint64_t h, uint64_t k,
                 size_t bytes)
{
    nmi_batch *b = pool_get(bus->pool, sizeof(nmi_batch) +
                                           k * sizeof(nm_batch_event) + bytes);
    uint8_t *arena = b ? (uint8_t *)&b->ev[k] : NULL;
    for (uint64_t i = 0; i < k; i++) {
        nmi_slot *s = &sh->slots[(h + i) & sh->mask];
        if (b) {
            memcpy(arena, slot_data(s), s->len);
            arena[s->len] = '\0';
            b->ev[i].data = arena;
            b->ev[i].len = s->len;
            b->ev[i].seq = h + i;
            b->ev[i].timestamp = s->ts;
            arena += s->len + 1;
        }
        if (s->flags & NMI_SLOT_HEAP) {
            free(s->u.heap);
        }
        slot_set(sh, s, h + i, h + i + sh->mask + 1, memory_order_release);
    }
    if (!b) {
        /* Out of memory: the events are lost, and said so. */
        atomic_fetch_add(&sh->dropped, k);
        atomic_store(&sh->inflight, UINT64_MAX);
        return k;
    }
    atomic_init(&b->refs, 1);
    b->ids = NULL;
    b->pub.shard = sh->id;
    b->pub.sequence_start = h;
    b->pub.process_nonce = bus->nonce;
    b->pub.count = k;
    b->pub.events = b->ev;

    int rc = bus->ad->on_batch(bus->ad_state, &b->pub);
    if (rc > 0 && (uint64_t)rc < k) {
        /* Partly stored: rc events were lost, the rest are stored. Live
         * subscriptions cannot tell which, so they get none and count the
         * stored part as missed. */
        atomic_fetch_add(&bus->adapter_errors, 1);
        atomic_fetch_add(&sh->dropped, (uint64_t)rc);
        atomic_fetch_add_explicit(&sh->dispatched, k - (uint64_t)rc,
                                  memory_order_relaxed);
        atomic_fetch_add_explicit(&sh->batches, 1, memory_order_relaxed);
        nmi_subs_missed(bus, b);
    } else if (rc != 0) {
        /* The adapter gave up on the batch (after its own retries): the
         * events are lost, and counted as dropped, never silently. */
        atomic_fetch_add(&bus->adapter_errors, 1);
        atomic_fetch_add(&sh->dropped, k);
    } else {
        nmi_subs_deliver(bus, b);
        atomic_fetch_add_explicit(&sh->dispatched, k, memory_order_relaxed);
        atomic_fetch_add_explicit(&sh->batches, 1, memory_order_relaxed);
    }
    nm_batch_release(&b->pub);
    atomic_store(&sh->inflight, UINT64_MAX);
    return k;
}

/* Claim up to `max` published slots at the head of `sh` and hand them to
 * the adapter and the subscriptions as one batch. Returns the number of
 * events dispatched (0 when nothing was ready). Only one thread at a time
 * (the dispatcher, or a manual-mode caller holding manual_mu). */
static size_t
dispatch_shard(nm_bus *bus, nmi_shard *sh, size_t max)
{
    uint64_t h;
    size_t bytes;
    uint64_t k = claim_run(sh, max, &h, &bytes);
    if (k == 0) {
        return 0;
    }
    /* A subscription created after this check is owed none of these
     * events: they were claimed before it (nmi_subs_live takes the lock
     * that creation holds while it reads the claim positions). */
    if (bus->memlog && !nmi_subs_live(bus)) {
        return dispatch_memlog(bus, sh, h, k);
    }
    return dispatch_claimed(bus, sh, h, k, bytes);
}

static inline uint64_t
shard_occupancy(const nmi_shard *sh)
{
    uint64_t t =
        atomic_load_explicit(&((nmi_shard *)sh)->tail, memory_order_relaxed) &
        ~NMI_TAIL_CLOSED;
    uint64_t h =
        atomic_load_explicit(&((nmi_shard *)sh)->head, memory_order_relaxed);
    return t > h ? t - h : 0;
}

/* True when the n-th event from the head of `sh` is published. The
 * dispatcher decides with these probes of the slots rather than reading
 * the producers' `tail` line, which every claim must own exclusively:
 * reading it from another core on each pass would cost every emit a
 * cache-line round trip. */
static inline bool
published_at_least(const nmi_shard *sh, uint64_t n)
{
    uint64_t h =
        atomic_load_explicit(&((nmi_shard *)sh)->head, memory_order_relaxed);
    uint64_t p = h + n - 1;
    return slot_seq(sh, &sh->slots[p & sh->mask], p, memory_order_acquire) ==
           p + 1;
}

/* Timestamp of the oldest published event of `sh`, or UINT64_MAX. */
static uint64_t
head_ts(const nmi_shard *sh)
{
    uint64_t h = atomic_load(&((nmi_shard *)sh)->head);
    nmi_slot *s = &sh->slots[h & sh->mask];
    if (slot_seq(sh, s, h, memory_order_acquire) != h + 1) {
        return UINT64_MAX;
    }
    return s->ts;
}

/* One pass over every shard. `all` ignores batch_min and the delay.
 * Sets *next_due to the clock time the next partial batch falls due. */
static size_t
dispatch_pass(nm_bus *bus, bool all, uint64_t *next_due)
{
    size_t done = 0;
    uint64_t delay = (uint64_t)bus->cfg.batch_max_delay_us * 1000ull;
    uint64_t now = nmi_fastclock_now(&bus->clock);
    *next_due = UINT64_MAX;
    for (uint32_t i = 0; i < bus->nshards; i++) {
        nmi_shard *sh = &bus->shards[i];
        if (!published_at_least(sh, 1)) {
            continue;
        }
        bool go = all || published_at_least(sh, bus->eff_min);
        if (!go) {
            uint64_t ts = head_ts(sh);
            if (ts != UINT64_MAX && ts + delay <= now) {
                go = true;
            } else if (ts != UINT64_MAX && ts + delay < *next_due) {
                *next_due = ts + delay;
            }
        }
        if (go) {
            size_t n;
            /* Drain what is there now, a batch at a time. */
            do {
                n = dispatch_shard(bus, sh, bus->cfg.batch_max);
                done += n;
            } while (n == bus->cfg.batch_max && !all);
            if (all) {
                while ((n = dispatch_shard(bus, sh, bus->cfg.batch_max))) {
                    done += n;
                }
            }
        }
    }
    return done;
}

static void
wake_dispatcher(nm_bus *bus)
{
    pthread_mutex_lock(&bus->mu);
    atomic_store(&bus->sleeping, 0);
    pthread_cond_signal(&bus->wake_cv);
    pthread_mutex_unlock(&bus->mu);
}

static void
timespec_after_ns(struct timespec *ts, uint64_t ns)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    uint64_t t = (uint64_t)ts->tv_nsec + ns % 1000000000ull;
    ts->tv_sec += (time_t)(ns / 1000000000ull + t / 1000000000ull);
    ts->tv_nsec = (long)(t % 1000000000ull);
}

static bool
any_ready(nm_bus *bus)
{
    for (uint32_t i = 0; i < bus->nshards; i++) {
        if (published_at_least(&bus->shards[i], bus->eff_min)) {
            return true;
        }
    }
    return false;
}

/* Earliest time a pending partial batch falls due (UINT64_MAX: every
 * shard is empty). */
static uint64_t
pending_due(nm_bus *bus)
{
    uint64_t delay = (uint64_t)bus->cfg.batch_max_delay_us * 1000ull;
    uint64_t due = UINT64_MAX;
    for (uint32_t i = 0; i < bus->nshards; i++) {
        uint64_t ts = head_ts(&bus->shards[i]);
        if (ts != UINT64_MAX && ts + delay < due) {
            due = ts + delay;
        }
    }
    return due;
}

/* How long the dispatcher keeps polling after running dry before it
 * sleeps: under sustained load the next events arrive within
 * microseconds, and a sleep/wake pair costs two system calls. */
#define NMI_IDLE_SPIN_NS 50000ull

static void *
dispatcher_main(void *arg)
{
    nm_bus *bus = arg;
    uint64_t idle_since = 0;
    unsigned spins = 0;
    while (atomic_load(&bus->running)) {
        bool flushing = atomic_load(&bus->flushers) > 0;
        uint64_t due;
        size_t n = dispatch_pass(bus, flushing, &due);
        if (n > 0 || flushing) {
            pthread_mutex_lock(&bus->mu);
            pthread_cond_broadcast(&bus->progress_cv);
            pthread_mutex_unlock(&bus->mu);
            idle_since = 0;
            if (n == 0) {
                sched_yield(); /* waiting for a producer to publish */
            }
            continue;
        }
        /* Nothing ready: keep polling for a moment (yielding now and then,
         * in case producers share our core), then sleep. */
        uint64_t now = nmi_fastclock_now(&bus->clock);
        if (idle_since == 0) {
            idle_since = now;
        }
        if (now - idle_since < NMI_IDLE_SPIN_NS) {
            if (++spins % 256 == 0) {
                sched_yield();
            } else {
                nmi_cpu_relax();
            }
            continue;
        }
        idle_since = 0;
        /* Two kinds of sleep. Deep (every shard empty): any new event
         * wakes us. Timed (partial batches pending): only a full batch
         * wakes us; otherwise the earliest due time does. The 50 ms
         * ceiling bounds the latency of a wake-up lost to a race. */
        pthread_mutex_lock(&bus->mu);
        atomic_store(&bus->sleeping, due == UINT64_MAX ? 1 : 2);
        /* Re-check after announcing sleep: a producer that published
         * before it could see `sleeping` must not be stranded. */
        uint64_t due2 = pending_due(bus);
        if (atomic_load(&bus->running) && !any_ready(bus) &&
            atomic_load(&bus->flushers) == 0 && due2 >= due) {
            uint64_t wait_ns = 50000000ull;
            if (due2 != UINT64_MAX) {
                now = nmi_fastclock_now(&bus->clock);
                wait_ns = due2 > now ? due2 - now : 0;
                if (wait_ns > 50000000ull) {
                    wait_ns = 50000000ull;
                }
            }
            if (wait_ns > 0) {
                struct timespec ts;
                timespec_after_ns(&ts, wait_ns);
                pthread_cond_timedwait(&bus->wake_cv, &bus->mu, &ts);
            }
        }
        atomic_store(&bus->sleeping, 0);
        pthread_mutex_unlock(&bus->mu);
    }
    return NULL;
}

int
nm_bus_dispatch(nm_bus *bus, size_t max_events)
{
    if (!bus) {
        return nmi_err(NM_EINVAL, "bus is NULL");
    }
    if (bus->cfg.dispatch != NM_DISPATCH_MANUAL) {
        return nmi_err(NM_EINVAL, "nm_bus_dispatch needs "
                                  "NM_DISPATCH_MANUAL");
    }
    pthread_mutex_lock(&bus->manual_mu);
    size_t done = 0;
    for (uint32_t i = 0; i < bus->nshards; i++) {
        nmi_shard *sh = &bus->shards[i];
        for (;;) {
            size_t room = max_events ? max_events - done : SIZE_MAX;
            if (room == 0) {
                break;
            }
            size_t want =
                room < bus->cfg.batch_max ? room : bus->cfg.batch_max;
            size_t n = dispatch_shard(bus, sh, want);
            if (n == 0) {
                break;
            }
            done += n;
        }
    }
    pthread_mutex_unlock(&bus->manual_mu);
    return done > INT32_MAX ? INT32_MAX : (int)done;
}

/* ------------------------------------------------------------ emit */

static inline uint16_t
pick_shard(const nm_bus *bus, const void *data, size_t len)
{
    uint64_t h = XXH3_64bits(data, len);
    return (uint16_t)(((unsigned __int128)h * bus->nshards) >> 64);
}

/* Evict the oldest published event of `sh`. Returns true if one was
 * evicted (counted in dropped), false if the head slot is not published
 * yet (the caller retries). */
static bool
evict_oldest(nmi_shard *sh)
{
    uint64_t h = atomic_load_explicit(&sh->head, memory_order_acquire);
    nmi_slot *s = &sh->slots[h & sh->mask];
    if (slot_seq(sh, s, h, memory_order_acquire) != h + 1) {
        return false;
    }
    if (!atomic_compare_exchange_strong(&sh->head, &h, h + 1)) {
        return false;
    }
    if (s->flags & NMI_SLOT_HEAP) {
        free(s->u.heap);
    }
    slot_set(sh, s, h, h + sh->mask + 1, memory_order_release);
    atomic_fetch_add_explicit(&sh->dropped, 1, memory_order_relaxed);
    return true;
}

static void
backoff(unsigned *n)
{
    if (*n < 64) {
        nmi_cpu_relax();
    } else if (*n < 128) {
        sched_yield();
    } else {
        nmi_sleep_ns(*n < 256 ? 20000 : 200000);
    }
    (*n)++;
}

static int
emit_one(nm_bus *bus, const void *data, size_t len, nm_receipt *receipt)
{
    if (nmi_unlikely(!data || len == 0)) {
        return nmi_err(NM_EINVAL, data ? "empty event" : "data is NULL");
    }
    if (nmi_unlikely(len > bus->cfg.max_event_bytes)) {
        return nmi_err(NM_ETOOBIG,
                       "event of %zu bytes exceeds "
                       "max_event_bytes %u",
                       len, bus->cfg.max_event_bytes);
    }
    uint8_t *heap = NULL;
    if (len > NM_BUS_INLINE_MAX) {
        heap = malloc(len);
        if (!heap) {
            return nmi_err(NM_ENOMEM, "event of %zu bytes", len);
        }
        memcpy(heap, data, len);
    }

    nmi_shard *sh = &bus->shards[pick_shard(bus, data, len)];
    uint64_t deadline = 0;
    unsigned spins = 0;
    bool kept_sample = false;
    uint64_t pos = atomic_load_explicit(&sh->tail, memory_order_relaxed);
    nmi_slot *s;
    for (;;) {
        if (nmi_unlikely(pos & NMI_TAIL_CLOSED)) {
            free(heap);
            return nmi_err(NM_ESHUTDOWN, "the bus is shutting down");
        }
        s = &sh->slots[pos & sh->mask];
        uint64_t seq = slot_seq(sh, s, pos, memory_order_acquire);
        int64_t diff = (int64_t)(seq - pos);
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&sh->tail, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                break;
            }
            continue;
        }
        if (diff > 0) {
            pos = atomic_load_explicit(&sh->tail, memory_order_relaxed);
            continue;
        }
        /* The ring is full. */
        if (atomic_load_explicit(&bus->sleeping, memory_order_relaxed)) {
            wake_dispatcher(bus);
        }
        switch (bus->cfg.backpressure) {
        case NM_BP_DROP_NEWEST:
            free(heap);
            atomic_fetch_add_explicit(&sh->dropped_newest, 1,
                                      memory_order_relaxed);
            atomic_fetch_add_explicit(&sh->dropped, 1, memory_order_relaxed);
            return nmi_err(NM_EBACKPRESSURE,
                           "shard %u is full (DropNewest: event dropped)",
                           sh->id);
        case NM_BP_FAIL_PRODUCER:
            free(heap);
            atomic_fetch_add_explicit(&sh->rejected, 1, memory_order_relaxed);
            return nmi_err(NM_EBACKPRESSURE, "shard %u is full (FailProducer)",
                           sh->id);
        case NM_BP_SAMPLE:
            if (!kept_sample) {
                uint64_t c = atomic_fetch_add_explicit(&sh->sample_ctr, 1,
                                                       memory_order_relaxed);
                if (c % bus->cfg.sample_rate != 0) {
                    free(heap);
                    atomic_fetch_add_explicit(&sh->sampled, 1,
                                              memory_order_relaxed);
                    return nmi_err(NM_ESAMPLED,
                                   "shard %u is full: sampled out (keeping "
                                   "1 in %u)",
                                   sh->id, bus->cfg.sample_rate);
                }
                kept_sample = true;
            }
            /* The kept event makes room like DropOldest. */
            __attribute__((fallthrough));
        case NM_BP_DROP_OLDEST:
            if (!evict_oldest(sh)) {
                backoff(&spins);
            }
            break;
        case NM_BP_BLOCK:
            if (deadline == 0) {
                deadline = nmi_deadline_ms(bus->cfg.block_timeout_ms);
            }
            if (nmi_mono_ns() >= deadline) {
                free(heap);
                atomic_fetch_add_explicit(&sh->rejected, 1,
                                          memory_order_relaxed);
                return nmi_err(NM_ETIMEDOUT,
                               "shard %u stayed full for %d ms (Block)",
                               sh->id, bus->cfg.block_timeout_ms);
            }
            backoff(&spins);
            break;
        }
        pos = atomic_load_explicit(&sh->tail, memory_order_relaxed);
    }

    /* Slot `pos` is ours: timestamp, fill, publish. */
    prefetch_slot_w(&sh->slots[(pos + NMI_CLAIM_AHEAD) & sh->mask]);
    uint64_t now = nmi_fastclock_now(&bus->clock);
    uint64_t prev = atomic_load_explicit(&sh->last_ts, memory_order_relaxed);
    uint64_t ts;
    do {
        ts = now > prev ? now : prev + 1;
    } while (!atomic_compare_exchange_weak_explicit(
        &sh->last_ts, &prev, ts, memory_order_relaxed, memory_order_relaxed));
    s->ts = ts;
    s->len = (uint32_t)len;
    if (heap) {
        s->flags = NMI_SLOT_HEAP;
        s->u.heap = heap;
    } else {
        s->flags = 0;
        memcpy(s->u.inl, data, len);
    }
    slot_set(sh, s, pos, pos + 1, memory_order_release);

    /* Wake a sleeping dispatcher: from a deep sleep (nothing was pending)
     * for any event, from a timed sleep only when this shard reached a
     * full batch. Under load it never sleeps, so this is a single read of
     * a shared, rarely written line. */
    int sleeping = atomic_load_explicit(&bus->sleeping, memory_order_relaxed);
    if (nmi_unlikely(sleeping)) {
        uint64_t h = atomic_load_explicit(&sh->head, memory_order_relaxed);
        if (sleeping == 1 || pos + 1 - h >= bus->eff_min) {
            wake_dispatcher(bus);
        }
    }
    if (receipt) {
        receipt->shard = sh->id;
        receipt->seq = pos;
        receipt->timestamp = ts;
    }
    return NM_OK;
}

int
nm_bus_emit_raw(nm_bus *bus, const void *data, size_t len, nm_receipt *receipt)
{
    if (nmi_unlikely(!bus)) {
        return nmi_err(NM_EINVAL, "bus is NULL");
    }
    return emit_one(bus, data, len, receipt);
}

int
nm_bus_emit_str(nm_bus *bus, const char *json, nm_receipt *receipt)
{
    if (!bus || !json) {
        return nmi_err(NM_EINVAL, "bus and json must not be NULL");
    }
    size_t len = strlen(json);
    json_error_t jerr;
    json_t *v = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
    if (!v) {
        return nmi_err(NM_EDECODE, "invalid JSON at line %d column %d: %s",
                       jerr.line, jerr.column, jerr.text);
    }
    json_decref(v);
    return emit_one(bus, json, len, receipt);
}

int
nm_bus_emit_json(nm_bus *bus, const json_t *value, nm_receipt *receipt)
{
    if (!bus || !value) {
        return nmi_err(NM_EINVAL, "bus and value must not be NULL");
    }
    char stack[512];
    size_t n = json_dumpb(value, stack, sizeof(stack),
                          JSON_COMPACT | JSON_ENCODE_ANY);
    if (n == 0) {
        return nmi_err(NM_EDECODE, "value cannot be serialized to JSON");
    }
    if (n <= sizeof(stack)) {
        return emit_one(bus, stack, n, receipt);
    }
    char *heap = malloc(n);
    if (!heap) {
        return nmi_err(NM_ENOMEM, "serializing %zu bytes", n);
    }
    size_t n2 = json_dumpb(value, heap, n, JSON_COMPACT | JSON_ENCODE_ANY);
    int rc = n2 == n ? emit_one(bus, heap, n, receipt)
                     : nmi_err(NM_EINTERNAL, "JSON size changed");
    free(heap);
    return rc;
}

int
nm_bus_emit_raw_batch(nm_bus *bus, const void *const *data, const size_t *lens,
                      size_t n)
{
    if (!bus || (n > 0 && (!data || !lens))) {
        return nmi_err(NM_EINVAL, "bus, data and lens must not be NULL");
    }
    if (n > INT32_MAX) {
        return nmi_err(NM_EINVAL, "at most INT32_MAX events per batch");
    }
    size_t i = 0;
    for (; i < n; i++) {
        int rc = emit_one(bus, data[i], lens[i], NULL);
        if (rc) {
            if (i == 0 && rc == NM_ESHUTDOWN) {
                return rc;
            }
            break;
        }
    }
    return (int)i;
}

int
nm_bus_emit_json_batch(nm_bus *bus, json_t *const *values, size_t n)
{
    if (!bus || (n > 0 && !values)) {
        return nmi_err(NM_EINVAL, "bus and values must not be NULL");
    }
    if (n > INT32_MAX) {
        return nmi_err(NM_EINVAL, "at most INT32_MAX events per batch");
    }
    size_t i = 0;
    for (; i < n; i++) {
        int rc = nm_bus_emit_json(bus, values[i], NULL);
        if (rc) {
            if (i == 0 && rc == NM_ESHUTDOWN) {
                return rc;
            }
            break;
        }
    }
    return (int)i;
}

/* ------------------------------------------------------------ flush */

/* True once everything claimed below target[i] is resolved: dispatched
 * (handed over) or dropped. */
static bool
reached(nm_bus *bus, const uint64_t *target)
{
    for (uint32_t i = 0; i < bus->nshards; i++) {
        nmi_shard *sh = &bus->shards[i];
        if (atomic_load(&sh->head) < target[i]) {
            return false;
        }
        uint64_t inflight = atomic_load(&sh->inflight);
        if (inflight != UINT64_MAX && inflight < target[i]) {
            return false;
        }
    }
    return true;
}

static int
drain_to(nm_bus *bus, const uint64_t *target, uint64_t deadline)
{
    if (bus->cfg.dispatch == NM_DISPATCH_MANUAL || !bus->thread_started) {
        unsigned spins = 0;
        while (!reached(bus, target)) {
            pthread_mutex_lock(&bus->manual_mu);
            size_t n = 0;
            for (uint32_t i = 0; i < bus->nshards; i++) {
                n += dispatch_shard(bus, &bus->shards[i], bus->cfg.batch_max);
            }
            pthread_mutex_unlock(&bus->manual_mu);
            if (n == 0) {
                if (nmi_mono_ns() >= deadline) {
                    return nmi_err(NM_ETIMEDOUT, "flush timed out");
                }
                backoff(&spins);
            }
        }
        return NM_OK;
    }
    atomic_fetch_add(&bus->flushers, 1);
    wake_dispatcher(bus);
    int rc = NM_OK;
    pthread_mutex_lock(&bus->mu);
    while (!reached(bus, target)) {
        if (!atomic_load(&bus->running)) {
            rc = nmi_err(NM_ESHUTDOWN, "dispatcher stopped");
            break;
        }
        int left = nmi_ms_left(deadline);
        if (left == 0) {
            rc = nmi_err(NM_ETIMEDOUT, "flush timed out");
            break;
        }
        /* Bounded waits: progress is broadcast, but re-check at least
         * every 10 ms in case a producer is slow to publish. */
        uint64_t ns =
            left < 0 || left > 10 ? 10000000ull : (uint64_t)left * 1000000ull;
        struct timespec ts;
        timespec_after_ns(&ts, ns);
        pthread_cond_timedwait(&bus->progress_cv, &bus->mu, &ts);
    }
    pthread_mutex_unlock(&bus->mu);
    atomic_fetch_sub(&bus->flushers, 1);
    return rc;
}

static int
flush_locked(nm_bus *bus, int timeout_ms)
{
    uint64_t deadline = nmi_deadline_ms(timeout_ms);
    uint64_t stack_target[64];
    uint64_t *target = bus->nshards <= 64
                           ? stack_target
                           : malloc(sizeof(uint64_t) * bus->nshards);
    if (!target) {
        return nmi_err(NM_ENOMEM, "flush");
    }
    for (uint32_t i = 0; i < bus->nshards; i++) {
        target[i] = atomic_load(&bus->shards[i].tail) & ~NMI_TAIL_CLOSED;
    }
    int rc = drain_to(bus, target, deadline);
    if (target != stack_target) {
        free(target);
    }
    if (rc == NM_OK && bus->ad->flush) {
        rc = bus->ad->flush(bus->ad_state, nmi_ms_left(deadline));
    }
    return rc;
}

int
nm_bus_flush(nm_bus *bus, int timeout_ms)
{
    if (!bus) {
        return nmi_err(NM_EINVAL, "bus is NULL");
    }
    if (atomic_load(&bus->state) != NMI_BUS_OPEN) {
        return nmi_err(NM_ESHUTDOWN, "the bus is shut down");
    }
    return flush_locked(bus, timeout_ms);
}

/* ------------------------------------------------------------ stats */

int
nm_bus_stats_get(const nm_bus *cbus, nm_bus_stats *out)
{
    if (!cbus || !out) {
        return nmi_err(NM_EINVAL, "bus and out must not be NULL");
    }
    nm_bus *bus = (nm_bus *)cbus;
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < bus->nshards; i++) {
        nmi_shard *sh = &bus->shards[i];
        uint64_t tail = atomic_load(&sh->tail) & ~NMI_TAIL_CLOSED;
        uint64_t head = atomic_load(&sh->head);
        out->ingested += tail + atomic_load(&sh->dropped_newest);
        out->dropped += atomic_load(&sh->dropped);
        out->sampled += atomic_load(&sh->sampled);
        out->rejected += atomic_load(&sh->rejected);
        out->dispatched += atomic_load(&sh->dispatched);
        out->batches += atomic_load(&sh->batches);
        out->queued += tail > head ? tail - head : 0;
    }
    out->adapter_errors = atomic_load(&bus->adapter_errors);
    if (bus->ad->evicted && bus->ad_state) {
        out->adapter_evicted = bus->ad->evicted(bus->ad_state);
    }
    return NM_OK;
}

/* ------------------------------------------------------------ shutdown */

int
nm_bus_shutdown(nm_bus *bus, int timeout_ms)
{
    if (!bus) {
        return NM_OK;
    }
    pthread_mutex_lock(&bus->shutdown_mu);
    int expected = NMI_BUS_OPEN;
    if (!atomic_compare_exchange_strong(&bus->state, &expected,
                                        NMI_BUS_CLOSING)) {
        int rc = bus->shutdown_rc;
        pthread_mutex_unlock(&bus->shutdown_mu);
        return rc;
    }
    /* No claim can succeed after this: the final drain sees everything. */
    for (uint32_t i = 0; i < bus->nshards; i++) {
        atomic_fetch_or(&bus->shards[i].tail, NMI_TAIL_CLOSED);
    }
    int rc = flush_locked(bus, timeout_ms);

    if (bus->thread_started) {
        atomic_store(&bus->running, false);
        wake_dispatcher(bus);
        pthread_join(bus->thread, NULL);
        bus->thread_started = false;
    }
    /* Whatever a timed-out flush left behind is dropped, and counted. */
    for (uint32_t i = 0; i < bus->nshards; i++) {
        nmi_shard *sh = &bus->shards[i];
        unsigned spins = 0;
        while (shard_occupancy(sh) > 0) {
            if (!evict_oldest(sh)) {
                backoff(&spins);
                if (spins > 2000) {
                    break; /* a producer died mid-publish */
                }
            }
        }
    }
    /* Subscriptions end (and polling ones stop polling) before the adapter
     * shuts down under them. */
    nmi_subs_end_all(bus);
    if (bus->ad->shutdown) {
        bus->ad->shutdown(bus->ad_state);
    }
    bus->shutdown_rc = rc;
    atomic_store(&bus->state, NMI_BUS_CLOSED);
    pthread_mutex_unlock(&bus->shutdown_mu);
    return rc;
}

void
nm_bus_close(nm_bus *bus)
{
    if (!bus) {
        return;
    }
    nm_bus_shutdown(bus, -1);
    nmi_bus_unref(bus);
}
