/*
 * src/bus/bus_impl.h - internals of the event bus.
 *
 * Each shard owns a bounded MPMC ring of 128-byte slots (Vyukov's bounded
 * queue): producers claim a position with one CAS on `tail`, write the
 * slot, then publish it by storing seq = pos + 1. The dispatcher claims a
 * run of published slots with one CAS on `head`, copies them into a
 * refcounted batch (or, for the memory adapter while no live subscription
 * needs a batch, straight into the adapter's log) and releases the slots
 * (seq = pos + capacity). DropOldest and Sample producers evict the oldest
 * slot with the same CAS on `head`.
 *
 * Shutdown sets NMI_TAIL_CLOSED in every shard's `tail`: a producer's claim
 * CAS then fails, so no event can slip in after the final drain.
 */
#ifndef NMI_BUS_IMPL_H
#define NMI_BUS_IMPL_H

#include <pthread.h>
#include <stdatomic.h>

#include <netmesh/adapter.h>
#include <netmesh/bus.h>

#include "core/core.h"

#define NMI_TAIL_CLOSED (1ull << 63)
#define NMI_SLOT_HEAP 1u

typedef struct nmi_slot {
    _Atomic uint64_t seq;
    uint64_t ts;
    uint32_t len;
    uint32_t flags;
    union {
        uint8_t inl[NM_BUS_INLINE_MAX];
        uint8_t *heap;
    } u;
} NMI_ALIGNED(128) nmi_slot;

_Static_assert(sizeof(nmi_slot) == 128, "slot must be 128 bytes");

typedef struct nmi_shard {
    /* Producers' line: claim position (| NMI_TAIL_CLOSED) and the last
     * timestamp handed out. */
    _Atomic uint64_t tail NMI_ALIGNED(NMI_CACHELINE);
    _Atomic uint64_t last_ts;
    /* Consumers' line. */
    _Atomic uint64_t head NMI_ALIGNED(NMI_CACHELINE);
    /* Position of the batch the dispatcher is handing over (or
     * UINT64_MAX): flush waits for it. */
    _Atomic uint64_t inflight;
    /* Rare-path counters. */
    _Atomic uint64_t dropped NMI_ALIGNED(NMI_CACHELINE);
    _Atomic uint64_t dropped_newest; /* also counted as ingested */
    _Atomic uint64_t sampled;
    _Atomic uint64_t rejected;
    _Atomic uint64_t sample_ctr;
    /* Dispatcher-owned counters (written by one thread, read by all). */
    _Atomic uint64_t dispatched NMI_ALIGNED(NMI_CACHELINE);
    _Atomic uint64_t batches;
    nmi_slot *slots;
    uint64_t mask;
    uint16_t id;
} nmi_shard;

/* A slot stores its Vyukov sequence minus its ring position, so that a
 * zeroed slot array is a valid empty ring (slot i expects position i):
 * no page is touched at open. `pos` is any position mapping to `s`. */
static inline uint64_t
slot_seq(const nmi_shard *sh, nmi_slot *s, uint64_t pos, memory_order mo)
{
    return atomic_load_explicit(&s->seq, mo) + (pos & sh->mask);
}

static inline void
slot_set(const nmi_shard *sh, nmi_slot *s, uint64_t pos, uint64_t seq,
         memory_order mo)
{
    atomic_store_explicit(&s->seq, seq - (pos & sh->mask), mo);
}

/* A batch as the dispatcher builds it; nm_batch is its public face. */
/* Recycled batch buffers: the memory adapter frees batches in FIFO order
 * long after they were made, which makes plain malloc/free churn the heap
 * (and fault pages in) at millions of events per second. */
#define NMI_POOL_SLOTS 32
typedef struct nmi_pool {
    pthread_mutex_t mu;
    void *buf[NMI_POOL_SLOTS];
    size_t cap[NMI_POOL_SLOTS];
    int n;
} nmi_pool;

typedef struct nmi_batch {
    nm_batch pub;
    _Atomic uint32_t refs;
    nmi_pool *pool; /* where the buffer returns, or NULL (free()) */
    size_t cap;     /* bytes allocated for this batch */
    /* Adapter ids of the events (polling subscriptions), or NULL: then the
     * id is the decimal seq. */
    char (*ids)[24];
    nm_batch_event ev[];
} nmi_batch;

static inline nmi_batch *
nmi_batch_of(const nm_batch *b)
{
    return (nmi_batch *)((char *)b - offsetof(nmi_batch, pub));
}

enum { NMI_BUS_OPEN = 0, NMI_BUS_CLOSING = 1, NMI_BUS_CLOSED = 2 };

typedef struct nmi_sublist {
    nm_sub **v;
    size_t n, cap;
} nmi_sublist;

struct nm_bus {
    nm_bus_config cfg;
    uint32_t nshards;
    uint32_t eff_min; /* batch_min capped by the ring capacity */
    uint64_t nonce;
    nmi_fastclock clock;
    _Atomic int state;
    _Atomic uint32_t refs; /* the bus handle + each live subscription */

    nmi_shard *shards;

    const nm_adapter_ops *ad;
    void *ad_state;
    /* ad_state when the adapter is the memory adapter (else NULL): the
     * dispatcher then appends to its log straight from the ring. */
    void *memlog;
    _Atomic uint64_t adapter_errors;

    /* Dispatcher. */
    pthread_t thread;
    bool thread_started;
    _Atomic bool running;
    _Atomic int sleeping;       /* dispatcher is (about to be) asleep */
    _Atomic uint32_t flushers;  /* flush() callers waiting */
    pthread_mutex_t mu;         /* guards the cvs below */
    pthread_cond_t wake_cv;     /* dispatcher sleeps here */
    pthread_cond_t progress_cv; /* flushers sleep here */
    pthread_mutex_t manual_mu;  /* serializes manual-mode dispatching */
    pthread_mutex_t shutdown_mu;
    int shutdown_rc;

    /* Subscriptions. */
    pthread_mutex_t subs_mu;
    nmi_sublist subs;

    nmi_pool *pool;
};

/* bigmem.c: a zeroed, pre-faulted mapping of `size` bytes (2 MiB aligned
 * and advised for huge pages from 2 MiB up), or NULL; and its unmap. */
void *nmi_bigmap(size_t size);
void nmi_bigunmap(void *p, size_t size);

/* Internal entry points shared by bus.c, sub.c and poll.c. */
void nmi_bus_ref(nm_bus *bus);
void nmi_bus_unref(nm_bus *bus);
void nmi_batch_free(nmi_batch *b);

/* sub.c: the dispatcher hands every batch to the subscriptions. */
void nmi_subs_deliver(nm_bus *bus, const nmi_batch *b);
/* ... or, for a batch the adapter stored only partly, count it missed. */
void nmi_subs_missed(nm_bus *bus, const nmi_batch *b);
void nmi_subs_end_all(nm_bus *bus);
/* True while the bus has a live (non-polling) subscription. */
bool nmi_subs_live(nm_bus *bus);

/* filter.c */
nm_filter *nmi_filter_clone(const nm_filter *f);
bool nmi_filter_match_json(const nm_filter *f, const json_t *doc);

/* cursor: base64(JSON {"<shard>":"<id>"}) <-> per-shard id strings.
 * ids[s] is "" when the cursor has no entry for shard s. */
#define NMI_ID_MAX 24
int nmi_cursor_decode(const char *cursor, uint32_t nshards,
                      char (*ids)[NMI_ID_MAX]);
char *nmi_cursor_encode(uint32_t nshards, char (*ids)[NMI_ID_MAX]);

#endif
