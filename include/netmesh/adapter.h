/*
 * netmesh/adapter.h - the bus adapter interface (where batches go).
 *
 * An adapter is a small ops table with a size field (so it can grow). The
 * bus calls it from its dispatcher thread (on_batch, flush) and from any
 * thread that polls (poll_shard): poll_shard must be safe concurrently
 * with on_batch. netmesh ships the memory adapter (nm_adapter_memory());
 * the Redis, JetStream and mesh adapters plug in through the same table.
 */
#ifndef NETMESH_ADAPTER_H
#define NETMESH_ADAPTER_H

#include <stdbool.h>

#include <netmesh/bus.h>
#include <netmesh/common.h>

NM_BEGIN_DECLS

typedef struct nm_batch_event {
    const uint8_t *data;
    uint32_t len;
    uint64_t seq;       /* per-shard sequence (the receipt's) */
    uint64_t timestamp; /* insertion timestamp (the receipt's) */
} nm_batch_event;

/* One shard's batch. Events are in sequence order (with gaps where the
 * bus dropped events). Borrowed for the duration of on_batch; an adapter
 * that wants to keep it (zero-copy) calls nm_batch_retain and later
 * nm_batch_release. */
typedef struct nm_batch {
    uint16_t shard;
    uint64_t sequence_start; /* per-process per-shard batch counter base:
                                the seq of events[0] */
    uint64_t process_nonce;  /* non-zero producer nonce of this process */
    size_t count;
    const nm_batch_event *events;
} nm_batch;

/* nm_batch_retain / nm_batch_release - reference counting for adapters
 * that keep a batch past on_batch. Thread-safe. */
NM_API void nm_batch_retain(const nm_batch *b);
NM_API void nm_batch_release(const nm_batch *b);

/* Where poll_shard delivers events. */
typedef struct nm_poll_sink nm_poll_sink;

/* nm_poll_sink_offer - hand one event (with its adapter id string, at most
 * 23 bytes) to the poll in progress. The bytes are copied. Returns NM_OK
 * (consumed; keep going) or NM_EAGAIN (the poll is full: the event was
 * NOT consumed; stop and report has_more). */
NM_API int nm_poll_sink_offer(nm_poll_sink *sink, const nm_batch_event *ev,
                              const char *id);

struct nm_adapter_ops {
    size_t size;      /* sizeof(nm_adapter_ops) */
    const char *name; /* "memory", "redis", ... */
    /* Create the adapter state for `shards` shards from `config`. */
    int (*init)(const void *config, uint32_t shards, void **state);
    /* Store/forward one batch. Called only from the dispatcher; may block
     * while retrying. Returns 0 when every event is stored; k in
     * 1..count-1 when k events were given up and the rest stored (the bus
     * counts k dropped); a negative error when the whole batch was given
     * up (all counted dropped). */
    int (*on_batch)(void *state, const nm_batch *batch);
    /* Make everything handed over so far durable/visible. */
    int (*flush)(void *state, int timeout_ms);
    /* Offer events of `shard` strictly after `after_id` (NULL = from the
     * oldest retained) to `sink` in order until it returns NM_EAGAIN or
     * there are no more; set *has_more when events remain. Returns NM_OK,
     * NM_EDECODE for an id this adapter never produced, or an error. */
    int (*poll_shard)(void *state, uint16_t shard, const char *after_id,
                      nm_poll_sink *sink, bool *has_more);
    /* Stop background work; on_batch will not be called again. */
    void (*shutdown)(void *state);
    /* Healthy = able to accept batches now. */
    bool (*healthy)(void *state);
    /* Free the state. */
    void (*destroy)(void *state);
    /* Optional: events evicted by the adapter's own retention. */
    uint64_t (*evicted)(void *state);
    /* Optional: the largest batch this adapter wants (0 = any). The bus
     * caps its batch_max (and batch_min) to it at open: e.g. Redis writes
     * a batch as one MULTI/EXEC and wants at most `pipeline` events. */
    size_t (*max_batch)(void *state);
};

/* nm_adapter_memory - the in-memory adapter: a bounded per-shard log in
 * this process (nm_memory_config). Poll and subscribe see what was
 * emitted. */
NM_API const nm_adapter_ops *nm_adapter_memory(void);

NM_END_DECLS

#endif
