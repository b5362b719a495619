/*
 * src/adapters/memory/memlog.h - the memory adapter's packed per-shard log,
 * and the writer the bus's dispatcher appends through.
 *
 * Each shard keeps a FIFO of chunks. A chunk holds records packed from its
 * start ([seq u64][timestamp u64][len u32][bytes], 4-byte aligned) and an
 * index of their offsets growing down from its end; it is full when the
 * two meet. Chunks start at 64 KiB and double up to 2 MiB (huge pages where
 * the kernel gives them); a chunk whose events were all evicted is kept as
 * the shard's spare and reused for the next one, so at steady state the
 * log allocates nothing and faults in nothing.
 *
 * The writer (only ever the dispatcher) appends past the published end of
 * the newest chunk, or into chunks not yet published, without the lock;
 * nmi_memlog_end then publishes the batch, and evicts, under the shard's
 * mutex. Readers (poll) only look at published records under the mutex.
 */
#ifndef NMI_MEMLOG_H
#define NMI_MEMLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"

#define NMI_MEMLOG_HDR 20u /* seq, timestamp, len */

typedef struct nmi_memchunk {
    struct nmi_memchunk *next; /* pending list (writer only) */
    size_t size;               /* bytes of the allocation */
    size_t room;               /* bytes of data[]: records + index */
    uint32_t n;                /* published records (under the mutex) */
    uint32_t nw;               /* written records (writer only) */
    size_t used;               /* record bytes written (writer only) */
    uint64_t last_seq;         /* seq of record n - 1 (under the mutex) */
    uint64_t wlast;            /* seq of record nw - 1 (writer only) */
    bool big;                  /* mapped with nmi_bigmap */
    uint8_t data[] NMI_ALIGNED(64);
} nmi_memchunk;

/* One batch being appended to one shard. */
typedef struct nmi_memlog_w {
    void *state;
    uint16_t shard;
    nmi_memchunk *c;     /* the chunk being written, or NULL */
    uint8_t *pos;        /* next record */
    uint32_t *idx;       /* last index entry written (grows down) */
    nmi_memchunk *pend;  /* chunks started by this batch, oldest first */
    nmi_memchunk *pendl; /* ... and the newest */
    uint64_t added;      /* records written by this batch */
    uint64_t failed;     /* records lost (no memory) */
} nmi_memlog_w;

/* The memory adapter's state if `ops` is the memory adapter, else NULL. */
struct nm_adapter_ops;
void *nmi_memlog_of(const struct nm_adapter_ops *ops, void *state);

void nmi_memlog_begin(void *state, uint16_t shard, nmi_memlog_w *w);
/* Publish what the batch wrote and evict down to the capacity. Returns the
 * number of records lost to allocation failures. */
uint64_t nmi_memlog_end(nmi_memlog_w *w);
/* Slow path of nmi_memlog_put: a new chunk. */
bool nmi_memlog_put_slow(nmi_memlog_w *w, uint64_t seq, uint64_t ts,
                         const void *data, uint32_t len);

static inline size_t
nmi_memlog_recsize(uint32_t len)
{
    return (NMI_MEMLOG_HDR + (size_t)len + 3) & ~(size_t)3;
}

/* Append one event. Returns false (the event is lost and counted) only
 * when no chunk could be allocated. */
static inline bool
nmi_memlog_put(nmi_memlog_w *w, uint64_t seq, uint64_t ts, const void *data,
               uint32_t len)
{
    size_t need = nmi_memlog_recsize(len);
    /* Room between the records and the index: pos <= idx always. */
    if (nmi_unlikely(!w->c || (size_t)((uint8_t *)w->idx - w->pos) <
                                  need + sizeof(uint32_t))) {
        return nmi_memlog_put_slow(w, seq, ts, data, len);
    }
    uint8_t *p = w->pos;
    memcpy(p, &seq, 8);
    memcpy(p + 8, &ts, 8);
    memcpy(p + 16, &len, 4);
    memcpy(p + NMI_MEMLOG_HDR, data, len);
    *--w->idx = (uint32_t)(p - w->c->data);
    w->pos = p + need;
    w->c->wlast = seq;
    w->added++;
    return true;
}

#endif
