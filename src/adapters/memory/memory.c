/*
 * src/adapters/memory/memory.c - the in-memory adapter.
 *
 * Unlike upstream's memory() (a no-op that discards everything), this one
 * keeps a bounded log per shard so poll returns what was emitted in this
 * process. Zero copy: the log retains the dispatcher's batches and keeps a
 * deque of them per shard; eviction advances an index into the oldest
 * batch and releases a batch once all of its events aged out.
 *
 * Event id = the decimal per-shard sequence (the emit receipt's seq).
 * Thread safety: on_batch (dispatcher) and poll_shard (any thread) take
 * the shard's mutex.
 */
#define _GNU_SOURCE
#include <netmesh/adapter.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

typedef struct mem_shard {
    pthread_mutex_t mu;
    const nm_batch **q; /* ring of retained batches */
    size_t qcap, qhead, qlen;
    size_t first;   /* index of the first live event in q[qhead] */
    uint64_t count; /* live events */
} mem_shard;

typedef struct mem_state {
    uint64_t capacity;
    uint32_t nshards;
    _Atomic uint64_t evicted;
    _Atomic bool up;
    mem_shard shards[];
} mem_state;

void
nm_memory_config_init(nm_memory_config *cfg)
{
    if (cfg) {
        cfg->capacity_per_shard = 1u << 20;
    }
}

static int
mem_init(const void *config, uint32_t shards, void **state)
{
    nm_memory_config def;
    nm_memory_config_init(&def);
    const nm_memory_config *c = config ? config : &def;
    if (c->capacity_per_shard == 0) {
        return nmi_err(NM_EINVAL, "memory adapter: capacity_per_shard must "
                                  "be >= 1");
    }
    mem_state *m = calloc(1, sizeof(*m) + shards * sizeof(mem_shard));
    if (!m) {
        return nmi_err(NM_ENOMEM, "memory adapter");
    }
    m->capacity = c->capacity_per_shard;
    m->nshards = shards;
    for (uint32_t i = 0; i < shards; i++) {
        pthread_mutex_init(&m->shards[i].mu, NULL);
    }
    atomic_store(&m->up, true);
    *state = m;
    return NM_OK;
}

static inline const nm_batch *
qat(const mem_shard *s, size_t i)
{
    return s->q[(s->qhead + i) % s->qcap];
}

static int
q_push(mem_shard *s, const nm_batch *b)
{
    if (s->qlen == s->qcap) {
        size_t nc = s->qcap ? s->qcap * 2 : 64;
        const nm_batch **nq = malloc(nc * sizeof(*nq));
        if (!nq) {
            return NM_ENOMEM;
        }
        for (size_t i = 0; i < s->qlen; i++) {
            nq[i] = qat(s, i);
        }
        free(s->q);
        s->q = nq;
        s->qcap = nc;
        s->qhead = 0;
    }
    s->q[(s->qhead + s->qlen) % s->qcap] = b;
    s->qlen++;
    return NM_OK;
}

/* Evict `n` oldest events; caller holds the lock. */
static void
evict(mem_state *m, mem_shard *s, uint64_t n)
{
    atomic_fetch_add_explicit(&m->evicted, n, memory_order_relaxed);
    s->count -= n;
    while (n > 0) {
        const nm_batch *b = qat(s, 0);
        size_t left = b->count - s->first;
        if (n < left) {
            s->first += n;
            return;
        }
        n -= left;
        nm_batch_release(b);
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
        s->first = 0;
    }
}

static int
mem_on_batch(void *state, const nm_batch *b)
{
    mem_state *m = state;
    if (b->shard >= m->nshards || b->count == 0) {
        return NM_EINVAL;
    }
    mem_shard *s = &m->shards[b->shard];
    nm_batch_retain(b);
    pthread_mutex_lock(&s->mu);
    int rc = q_push(s, b);
    if (rc) {
        pthread_mutex_unlock(&s->mu);
        nm_batch_release(b);
        return nmi_err(rc, "memory adapter: no memory for the batch log");
    }
    s->count += b->count;
    if (s->count > m->capacity) {
        evict(m, s, s->count - m->capacity);
    }
    pthread_mutex_unlock(&s->mu);
    return NM_OK;
}

static int
mem_flush(void *state, int timeout_ms)
{
    (void)state;
    (void)timeout_ms;
    return NM_OK;
}

static int
parse_seq(const char *id, uint64_t *out)
{
    size_t n = strlen(id);
    if (n == 0 || n > 20 || (n > 1 && id[0] == '0')) {
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (id[i] < '0' || id[i] > '9') {
            return -1;
        }
        uint64_t d = (uint64_t)(id[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int
mem_poll_shard(void *state, uint16_t shard, const char *after_id,
               nm_poll_sink *sink, bool *has_more)
{
    mem_state *m = state;
    *has_more = false;
    if (shard >= m->nshards) {
        return nmi_err(NM_EINVAL, "memory adapter: no shard %u", shard);
    }
    uint64_t after = 0;
    bool from_start = after_id == NULL;
    if (!from_start && parse_seq(after_id, &after) != 0) {
        return nmi_err(NM_EDECODE,
                       "memory adapter: id '%.23s' is not a "
                       "decimal sequence",
                       after_id);
    }
    mem_shard *s = &m->shards[shard];
    pthread_mutex_lock(&s->mu);
    /* Binary search the first batch whose last event is > after. */
    size_t lo = 0, hi = s->qlen;
    if (!from_start) {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            const nm_batch *b = qat(s, mid);
            if (b->events[b->count - 1].seq <= after) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
    }
    int rc = NM_OK;
    char id[24];
    for (size_t bi = lo; bi < s->qlen; bi++) {
        const nm_batch *b = qat(s, bi);
        size_t i = bi == 0 ? s->first : 0;
        if (!from_start) {
            /* Binary search inside the batch (seqs ascend, with gaps). */
            size_t l = i, h = b->count;
            while (l < h) {
                size_t mid = l + (h - l) / 2;
                if (b->events[mid].seq <= after) {
                    l = mid + 1;
                } else {
                    h = mid;
                }
            }
            i = l;
        }
        for (; i < b->count; i++) {
            snprintf(id, sizeof(id), "%llu",
                     (unsigned long long)b->events[i].seq);
            if (nm_poll_sink_offer(sink, &b->events[i], id) != NM_OK) {
                *has_more = true;
                goto done;
            }
        }
    }
done:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void
mem_shutdown(void *state)
{
    mem_state *m = state;
    atomic_store(&m->up, false);
}

static bool
mem_healthy(void *state)
{
    return atomic_load(&((mem_state *)state)->up);
}

static uint64_t
mem_evicted(void *state)
{
    return atomic_load(&((mem_state *)state)->evicted);
}

static void
mem_destroy(void *state)
{
    mem_state *m = state;
    for (uint32_t i = 0; i < m->nshards; i++) {
        mem_shard *s = &m->shards[i];
        for (size_t j = 0; j < s->qlen; j++) {
            nm_batch_release(qat(s, j));
        }
        free(s->q);
        pthread_mutex_destroy(&s->mu);
    }
    free(m);
}

static const nm_adapter_ops mem_ops = {
    .size = sizeof(nm_adapter_ops),
    .name = "memory",
    .init = mem_init,
    .on_batch = mem_on_batch,
    .flush = mem_flush,
    .poll_shard = mem_poll_shard,
    .shutdown = mem_shutdown,
    .healthy = mem_healthy,
    .destroy = mem_destroy,
    .evicted = mem_evicted,
};

const nm_adapter_ops *
nm_adapter_memory(void)
{
    return &mem_ops;
}
