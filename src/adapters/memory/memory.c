/*
 * src/adapters/memory/memory.c - the in-memory adapter.
 *
 * Unlike upstream's memory() (a no-op that discards everything), this one
 * keeps a bounded log per shard so poll returns what was emitted in this
 * process. The log is packed (see memlog.h): each event is copied once,
 * contiguously, into large chunks that are recycled when their events age
 * out. The bus's dispatcher appends straight from its ring slots through
 * nmi_memlog_put; on_batch (a batch from anywhere else) appends the same
 * way.
 *
 * Event id = the decimal per-shard sequence (the emit receipt's seq).
 * Thread safety: appends come from the dispatcher only; publishing,
 * eviction and poll_shard (any thread) take the shard's mutex.
 */
#define _GNU_SOURCE
#include <netmesh/adapter.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/memory/memlog.h"
#include "bus/bus_impl.h"
#include "core/core.h"

#define CHUNK_MIN (64u << 10)
#define CHUNK_MAX (2u << 20)

typedef struct mem_shard {
    pthread_mutex_t mu;
    nmi_memchunk **q; /* ring of published chunks, oldest first */
    size_t qcap, qhead, qlen;
    uint32_t first; /* index of the first live record in q[qhead] */
    uint64_t count; /* live events */
    /* Writer (dispatcher) only. */
    nmi_memchunk *wc;    /* chunk being appended to */
    nmi_memchunk *spare; /* a recycled chunk of CHUNK_MAX bytes */
    size_t next_size;    /* size of the next new chunk */
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
        m->shards[i].next_size = CHUNK_MIN;
    }
    atomic_store(&m->up, true);
    *state = m;
    return NM_OK;
}

/* ------------------------------------------------------------ chunks */

static inline uint32_t
chunk_off(const nmi_memchunk *c, uint32_t i)
{
    return ((const uint32_t *)(c->data + c->room))[-1 - (int64_t)i];
}

static inline uint64_t
rec_seq(const nmi_memchunk *c, uint32_t i)
{
    uint64_t seq;
    memcpy(&seq, c->data + chunk_off(c, i), 8);
    return seq;
}

static inline void
rec_event(const nmi_memchunk *c, uint32_t i, nm_batch_event *ev)
{
    const uint8_t *p = c->data + chunk_off(c, i);
    memcpy(&ev->seq, p, 8);
    memcpy(&ev->timestamp, p + 8, 8);
    memcpy(&ev->len, p + 16, 4);
    ev->data = p + NMI_MEMLOG_HDR;
}

static nmi_memchunk *
chunk_new(size_t size)
{
    nmi_memchunk *c;
    bool big = size >= CHUNK_MAX;
    if (big) {
        c = nmi_bigmap(size);
    } else {
        c = aligned_alloc(64, size);
    }
    if (!c) {
        return NULL;
    }
    c->size = size;
    c->big = big;
    c->room = size - offsetof(nmi_memchunk, data);
    return c;
}

static void
chunk_free(nmi_memchunk *c)
{
    if (!c) {
        return;
    }
    if (c->big) {
        nmi_bigunmap(c, c->size);
    } else {
        free(c);
    }
}

static void
chunk_reset(nmi_memchunk *c)
{
    c->next = NULL;
    c->n = 0;
    c->nw = 0;
    c->used = 0;
    c->last_seq = 0;
    c->wlast = 0;
}

static inline nmi_memchunk *
qat(const mem_shard *s, size_t i)
{
    return s->q[(s->qhead + i) % s->qcap];
}

static int
q_push(mem_shard *s, nmi_memchunk *c)
{
    if (s->qlen == s->qcap) {
        size_t nc = s->qcap ? s->qcap * 2 : 16;
        nmi_memchunk **nq = malloc(nc * sizeof(*nq));
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
    s->q[(s->qhead + s->qlen) % s->qcap] = c;
    s->qlen++;
    return NM_OK;
}

/* A chunk all of whose events aged out: keep it as the spare or free it.
 * Caller is the writer (inside nmi_memlog_end). */
static void
chunk_retire(mem_shard *s, nmi_memchunk *c)
{
    if (c == s->wc) {
        s->wc = NULL;
    }
    if (!s->spare && c->size == CHUNK_MAX) {
        s->spare = c;
    } else {
        chunk_free(c);
    }
}

/* Evict the `n` oldest events; caller holds the lock and is the writer. */
static void
evict(mem_state *m, mem_shard *s, uint64_t n)
{
    atomic_fetch_add_explicit(&m->evicted, n, memory_order_relaxed);
    s->count -= n;
    while (n > 0 && s->qlen > 0) {
        nmi_memchunk *c = qat(s, 0);
        uint64_t left = c->n - s->first;
        if (n < left) {
            s->first += (uint32_t)n;
            return;
        }
        n -= left;
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
        s->first = 0;
        chunk_retire(s, c);
    }
}

/* ------------------------------------------------------------ writer */

void *
nmi_memlog_of(const nm_adapter_ops *ops, void *state)
{
    return ops == nm_adapter_memory() ? state : NULL;
}

static void
w_load(nmi_memlog_w *w, nmi_memchunk *c)
{
    w->c = c;
    if (c) {
        w->pos = c->data + c->used;
        w->idx = (uint32_t *)(c->data + c->room) - c->nw;
    }
}

static void
w_save(nmi_memlog_w *w)
{
    nmi_memchunk *c = w->c;
    if (c) {
        c->used = (size_t)(w->pos - c->data);
        c->nw = (uint32_t)((uint32_t *)(c->data + c->room) - w->idx);
    }
}

void
nmi_memlog_begin(void *state, uint16_t shard, nmi_memlog_w *w)
{
    mem_state *m = state;
    memset(w, 0, sizeof(*w));
    w->state = state;
    w->shard = shard;
    w_load(w, m->shards[shard].wc);
}

bool
nmi_memlog_put_slow(nmi_memlog_w *w, uint64_t seq, uint64_t ts,
                    const void *data, uint32_t len)
{
    mem_state *m = w->state;
    mem_shard *s = &m->shards[w->shard];
    size_t need = nmi_memlog_recsize(len) + sizeof(uint32_t) +
                  offsetof(nmi_memchunk, data);
    nmi_memchunk *c = NULL;
    if (s->spare && s->spare->size >= need) {
        c = s->spare;
        s->spare = NULL;
    } else {
        size_t size = s->next_size;
        if (size < need) {
            size = (need + 4095) & ~(size_t)4095;
        }
        c = chunk_new(size);
        if (!c) {
            w->failed++;
            return false;
        }
        if (s->next_size < CHUNK_MAX) {
            s->next_size *= 2;
        }
    }
    chunk_reset(c);
    w_save(w);
    if (w->pendl) {
        w->pendl->next = c;
    } else {
        w->pend = c;
    }
    w->pendl = c;
    s->wc = c;
    w_load(w, c);
    return nmi_memlog_put(w, seq, ts, data, len);
}

uint64_t
nmi_memlog_end(nmi_memlog_w *w)
{
    mem_state *m = w->state;
    mem_shard *s = &m->shards[w->shard];
    w_save(w);
    pthread_mutex_lock(&s->mu);
    /* The published chunk this batch may have appended to first. */
    if (s->qlen > 0) {
        nmi_memchunk *t = qat(s, s->qlen - 1);
        t->n = t->nw;
        t->last_seq = t->wlast;
    }
    for (nmi_memchunk *c = w->pend; c;) {
        nmi_memchunk *next = c->next;
        c->next = NULL;
        c->n = c->nw;
        c->last_seq = c->wlast;
        if (q_push(s, c) != NM_OK) {
            /* Cannot list the chunk: its events are lost. */
            w->added -= c->n;
            w->failed += c->n;
            if (s->wc == c) {
                s->wc = NULL;
            }
            chunk_free(c);
        }
        c = next;
    }
    s->count += w->added;
    if (s->count > m->capacity) {
        evict(m, s, s->count - m->capacity);
    }
    pthread_mutex_unlock(&s->mu);
    w->pend = w->pendl = NULL;
    return w->failed;
}

/* ------------------------------------------------------------ ops */

static int
mem_on_batch(void *state, const nm_batch *b)
{
    mem_state *m = state;
    if (b->shard >= m->nshards || b->count == 0) {
        return NM_EINVAL;
    }
    nmi_memlog_w w;
    nmi_memlog_begin(state, b->shard, &w);
    for (size_t i = 0; i < b->count; i++) {
        const nm_batch_event *e = &b->events[i];
        nmi_memlog_put(&w, e->seq, e->timestamp, e->data, e->len);
    }
    uint64_t lost = nmi_memlog_end(&w);
    if (lost == 0) {
        return NM_OK;
    }
    if (lost >= b->count) {
        return nmi_err(NM_ENOMEM, "memory adapter: no memory for the log");
    }
    nmi_err(NM_ENOMEM, "memory adapter: no memory for %llu events",
            (unsigned long long)lost);
    return (int)lost;
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

/* Decimal form of v into id (at least 21 bytes). */
static void
format_seq(uint64_t v, char *id)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++) {
        id[i] = tmp[n - 1 - i];
    }
    id[n] = '\0';
}

/* First record index in [lo, c->n) whose seq is > after. */
static uint32_t
chunk_search(const nmi_memchunk *c, uint32_t lo, uint64_t after)
{
    uint32_t hi = c->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (rec_seq(c, mid) <= after) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
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
    /* Binary search the first chunk whose last event is > after (every
     * listed chunk holds at least one published event). */
    size_t lo = 0, hi = s->qlen;
    if (!from_start) {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (qat(s, mid)->last_seq <= after) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
    }
    char id[24];
    nm_batch_event ev;
    for (size_t ci = lo; ci < s->qlen; ci++) {
        const nmi_memchunk *c = qat(s, ci);
        uint32_t i = ci == 0 ? s->first : 0;
        if (!from_start) {
            i = chunk_search(c, i, after);
        }
        for (; i < c->n; i++) {
            rec_event(c, i, &ev);
            format_seq(ev.seq, id);
            if (nm_poll_sink_offer(sink, &ev, id) != NM_OK) {
                *has_more = true;
                goto done;
            }
        }
    }
done:
    pthread_mutex_unlock(&s->mu);
    return NM_OK;
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
            chunk_free(qat(s, j));
        }
        chunk_free(s->spare);
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
