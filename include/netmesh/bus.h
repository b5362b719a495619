/*
 * netmesh/bus.h - the event bus: shards, rings, batching, backpressure,
 * poll with a cursor, live subscriptions.
 *
 * Rust seed -> C:
 *   Net::builder().shards(4).backpressure(..).memory().build()
 *       -> nm_bus_config_init(&cfg); cfg.shards = 4; ...; nm_bus_open(&cfg,
 *          &bus)
 *   node.emit(&T) / emit_raw / emit_str / emit_batch / emit_raw_batch
 *       -> nm_bus_emit_json / nm_bus_emit_raw / nm_bus_emit_str /
 *          nm_bus_emit_json_batch / nm_bus_emit_raw_batch
 *   node.flush(), poll(), subscribe(), subscribe_typed::<T>(), stats(),
 *   shards(), health(), shutdown()
 *       -> nm_bus_flush, nm_bus_poll, nm_bus_subscribe, nm_sub_next_json,
 *          nm_bus_stats, nm_bus_shards, nm_bus_healthy, nm_bus_shutdown
 *
 * Threading: every nm_bus_* function is safe to call from any thread at
 * any time, concurrently, unless its comment says otherwise. Emitting is a
 * lock-free push into a per-shard bounded ring (no syscall, no allocation
 * for events up to NM_BUS_INLINE_MAX bytes). One dispatcher thread per bus
 * drains the rings into batches and hands them to the adapter.
 *
 * Ownership: the bus copies every emitted byte; the caller keeps its
 * buffers. Poll responses and subscriptions are owned by the caller and
 * released with nm_poll_response_free / nm_sub_close.
 */
#ifndef NETMESH_BUS_H
#define NETMESH_BUS_H

#include <stdbool.h>

#include <netmesh/common.h>
#include <netmesh/error.h>

NM_BEGIN_DECLS

typedef struct json_t json_t; /* jansson */

/* Events up to this many bytes are stored inline in the ring slot (no
 * allocation on emit). Larger events allocate once. */
#define NM_BUS_INLINE_MAX 104
/* Default and hard ceiling of cfg.max_event_bytes. */
#define NM_BUS_MAX_EVENT_DEFAULT (1u << 20)
#define NM_BUS_MAX_EVENT_LIMIT (64u << 20)
/* Default ring capacity per shard (slots, power of two). */
#define NM_BUS_RING_DEFAULT (1u << 16)
/* The most shards one bus may have. */
#define NM_BUS_MAX_SHARDS 1024

/* What emit does when the target shard's ring is full. */
typedef enum nm_backpressure {
    /* The new event is rejected with NM_EBACKPRESSURE and counted in
     * stats.dropped (and stats.ingested: the bus took it and dropped it). */
    NM_BP_DROP_NEWEST = 0,
    /* The oldest queued event of that shard is evicted (counted in
     * stats.dropped) and the new one accepted. The default, as upstream. */
    NM_BP_DROP_OLDEST = 1,
    /* The new event is rejected with NM_EBACKPRESSURE; the producer still
     * owns it: counted in stats.rejected, never in stats.dropped. */
    NM_BP_FAIL_PRODUCER = 2,
    /* While the ring is full, 1 of every `sample_rate` arrivals is kept
     * (it evicts the oldest queued event, counted in stats.dropped); the
     * others are rejected with NM_ESAMPLED and counted in stats.sampled.
     * The 1-in-rate counter is per shard. */
    NM_BP_SAMPLE = 3,
    /* The producer waits for room up to `block_timeout_ms`, then gets
     * NM_ETIMEDOUT (counted in stats.rejected). */
    NM_BP_BLOCK = 4,
} nm_backpressure;

/* Who drains the rings. */
typedef enum nm_dispatch_mode {
    /* A dispatcher thread owned by the bus (default). */
    NM_DISPATCH_THREAD = 0,
    /* No thread: the application calls nm_bus_dispatch() itself. For
     * embedding in a single-threaded loop and for deterministic tests. */
    NM_DISPATCH_MANUAL = 1,
} nm_dispatch_mode;

typedef struct nm_adapter_ops nm_adapter_ops; /* see netmesh/adapter.h */

typedef struct nm_bus_config {
    /* sizeof(nm_bus_config), set by nm_bus_config_init: lets the struct
     * grow without breaking the ABI. */
    uint32_t size;
    /* Number of shards, 1..NM_BUS_MAX_SHARDS. Default: online CPUs. */
    uint32_t shards;
    /* Ring slots per shard: a power of two >= 2. All slots are usable.
     * Each slot is 128 bytes. Default NM_BUS_RING_DEFAULT (65,536). */
    uint32_t ring_capacity;
    nm_backpressure backpressure; /* default NM_BP_DROP_OLDEST */
    uint32_t sample_rate;         /* NM_BP_SAMPLE: keep 1 in N, N >= 1 */
    int32_t block_timeout_ms;     /* NM_BP_BLOCK: >= 0; default 100 */
    /* Batching: a shard is dispatched when it holds >= batch_min events or
     * its oldest event has waited batch_max_delay_us; one batch carries at
     * most batch_max events. Defaults 1,000 / 10,000 / 1,000 us. */
    uint32_t batch_min;
    uint32_t batch_max;
    uint32_t batch_max_delay_us;
    /* Largest accepted event in bytes, 1..NM_BUS_MAX_EVENT_LIMIT. Default
     * NM_BUS_MAX_EVENT_DEFAULT (1 MiB). */
    uint32_t max_event_bytes;
    nm_dispatch_mode dispatch; /* default NM_DISPATCH_THREAD */
    /* The adapter the batches go to. NULL = the memory adapter. */
    const nm_adapter_ops *adapter;
    /* Adapter-specific configuration, passed to adapter->init. For the
     * memory adapter: NULL or a `const nm_memory_config *`. */
    const void *adapter_config;
    /* Subscription queue depth (events) before a slow subscriber starts
     * missing events (reported by nm_sub_missed). Default 65,536. */
    uint32_t sub_queue_capacity;
    /* Where to keep the producer nonce across restarts (see
     * <netmesh/dedup.h>); NULL (default) = a fresh random nonce per open. */
    const char *producer_nonce_path;
} nm_bus_config;

/* In-memory adapter settings. */
typedef struct nm_memory_config {
    /* Events retained per shard; the oldest is evicted (and counted in
     * nm_bus_stats.adapter_evicted) when full. Default 1,048,576. */
    uint64_t capacity_per_shard;
} nm_memory_config;

/* nm_bus_config_init - fill `cfg` with the documented defaults. Never
 * fails. Thread-safe (touches only *cfg). */
NM_API void nm_bus_config_init(nm_bus_config *cfg);

/* nm_memory_config_init - defaults for the memory adapter. */
NM_API void nm_memory_config_init(nm_memory_config *cfg);

typedef struct nm_bus nm_bus;

/* nm_bus_open - validate `cfg`, start the adapter and the dispatcher, and
 * return a new bus in *out. The config is copied. Errors: NM_EINVAL (with
 * a detail naming the bad field; nothing is created), NM_ENOMEM, or the
 * adapter's init error. Thread-safe. */
NM_API int nm_bus_open(const nm_bus_config *cfg, nm_bus **out);

/* What an accepted emit returns. */
typedef struct nm_receipt {
    uint16_t shard;     /* the shard the event landed on */
    uint64_t seq;       /* per-shard sequence, from 0, never reused */
    uint64_t timestamp; /* ns since the bus opened; strictly increasing per
                           shard for one producer thread, unique per shard */
} nm_receipt;

/* nm_bus_emit_raw - emit `len` bytes. The shard is xxh3-64(data) mapped
 * by multiply-shift onto the shard count, so equal bytes always land on
 * the same shard. `receipt` may be NULL. Errors: NM_EINVAL (NULL data or
 * len 0), NM_ETOOBIG (len > max_event_bytes), NM_EBACKPRESSURE,
 * NM_ESAMPLED, NM_ETIMEDOUT (per the backpressure mode), NM_ESHUTDOWN,
 * NM_ENOMEM. On error nothing is stored. Thread-safe, lock-free. */
NM_API int nm_bus_emit_raw(nm_bus *bus, const void *data, size_t len,
                           nm_receipt *receipt);

/* nm_bus_emit_str - emit a NUL-terminated JSON text after validating it
 * (NM_EDECODE if it is not one JSON value). Same errors as emit_raw. */
NM_API int nm_bus_emit_str(nm_bus *bus, const char *json, nm_receipt *receipt);

/* nm_bus_emit_json - serialize a jansson value (compact) and emit it: the
 * seed's emit(&T). The value is borrowed. */
NM_API int nm_bus_emit_json(nm_bus *bus, const json_t *value,
                            nm_receipt *receipt);

/* nm_bus_emit_raw_batch - emit n buffers in order. Returns how many were
 * accepted (0..n, stopping at the first failure) or a negative error for
 * bad arguments/shutdown before any was accepted. The detail of the
 * stopping failure is left in nm_errdetail(). */
NM_API int nm_bus_emit_raw_batch(nm_bus *bus, const void *const *data,
                                 const size_t *lens, size_t n);

/* nm_bus_emit_json_batch - serialize and emit n jansson values; returns
 * how many were accepted, like nm_bus_emit_raw_batch. */
NM_API int nm_bus_emit_json_batch(nm_bus *bus, json_t *const *values,
                                  size_t n);

/* nm_bus_flush - wait until every event accepted before the call has been
 * handed to the adapter (and the adapter flushed). timeout_ms < 0 waits
 * forever. Afterwards stats.dispatched + stats.dropped == stats.ingested
 * if no producer raced the flush. Errors: NM_ETIMEDOUT, NM_ESHUTDOWN. In
 * NM_DISPATCH_MANUAL mode the calling thread dispatches. */
NM_API int nm_bus_flush(nm_bus *bus, int timeout_ms);

/* nm_bus_dispatch - NM_DISPATCH_MANUAL only: drain up to `max_events`
 * (0 = everything queued) into batches now, ignoring batch_min and the
 * delay. Returns the number dispatched or NM_EINVAL in thread mode.
 * Not to be called concurrently with itself. */
NM_API int nm_bus_dispatch(nm_bus *bus, size_t max_events);

typedef struct nm_bus_stats {
    uint64_t ingested;   /* accepted + dropped by DropNewest */
    uint64_t dropped;    /* discarded by the bus's policy */
    uint64_t sampled;    /* rejected by Sample (not ingested) */
    uint64_t rejected;   /* FailProducer / Block time-outs (not ingested) */
    uint64_t dispatched; /* accepted by the adapter */
    uint64_t batches;    /* batches accepted by the adapter */
    uint64_t queued;     /* sitting in the rings right now */
    uint64_t adapter_evicted; /* memory adapter: events aged out */
    uint64_t adapter_errors;  /* batches the adapter gave up on (their
                                 events are counted in dropped) */
} nm_bus_stats;

/* nm_bus_stats - a snapshot of the counters (each read atomically; the
 * set is not one atomic snapshot while producers run). Thread-safe. */
NM_API int nm_bus_stats_get(const nm_bus *bus, nm_bus_stats *out);

/* nm_bus_shards - the shard count. */
NM_API uint32_t nm_bus_shards(const nm_bus *bus);

/* nm_bus_nonce - this bus's non-zero producer nonce (the first field of
 * every dedup id). */
NM_API uint64_t nm_bus_nonce(const nm_bus *bus);

/* nm_bus_healthy - true while the bus is open and its adapter healthy. */
NM_API bool nm_bus_healthy(const nm_bus *bus);

/* nm_bus_shutdown - stop accepting (emits then fail with NM_ESHUTDOWN),
 * dispatch everything queued, flush and shut the adapter, stop the
 * dispatcher, and end every subscription (readers get the remaining
 * events, then NM_ECLOSED). The handle stays valid for stats and poll of
 * what the adapter holds; free it with nm_bus_close. Idempotent; NULL is
 * a no-op. Returns NM_ETIMEDOUT if the final flush did not finish in
 * timeout_ms (< 0 = forever); the threads are stopped either way. */
NM_API int nm_bus_shutdown(nm_bus *bus, int timeout_ms);

/* nm_bus_close - shut down (if not yet) and release the bus. Open
 * subscriptions stay valid until their own nm_sub_close. NULL is a no-op.
 * Must not race other calls on the same bus. */
NM_API void nm_bus_close(nm_bus *bus);

/* ------------------------------------------------------------------ poll */

typedef enum nm_ordering {
    NM_ORDER_NONE = 0,      /* shard by shard */
    NM_ORDER_INSERTION = 1, /* sorted by insertion timestamp */
} nm_ordering;

typedef struct nm_filter nm_filter;

/* nm_filter_parse - compile a JSON filter: {"path":"a.b","value":V}
 * (equality), {"$and":[..]}, {"$or":[..]}, {"$not":F}; as upstream. The
 * filter is applied to each event's JSON after retrieval; events that are
 * not JSON never match. Errors: NM_EINVAL, NM_EDECODE (with a detail). */
NM_API int nm_filter_parse(const char *json, nm_filter **out);
/* nm_filter_free - NULL is a no-op. */
NM_API void nm_filter_free(nm_filter *f);
/* nm_filter_match - true when the event bytes match. */
NM_API bool nm_filter_match(const nm_filter *f, const void *data, size_t len);

typedef struct nm_poll_request {
    size_t limit;            /* 1..100,000; the most events returned */
    const char *cursor;      /* NULL = from the oldest retained event */
    const nm_filter *filter; /* NULL = everything */
    nm_ordering ordering;
    const uint16_t *shards; /* NULL = all shards */
    size_t nshards;
} nm_poll_request;

/* nm_poll_request_init - limit 100, everything else empty. */
NM_API void nm_poll_request_init(nm_poll_request *req);

typedef struct nm_event {
    const uint8_t *data; /* the raw bytes (NUL-terminated for convenience,
                            the NUL not counted in len) */
    size_t len;
    uint64_t seq;       /* per-shard sequence: the receipt's seq */
    uint64_t timestamp; /* insertion timestamp: the receipt's */
    uint16_t shard;
    char id[24]; /* adapter event id (decimal seq for memory) */
} nm_event;

typedef struct nm_poll_response {
    nm_event *events;
    size_t count;
    char *next_cursor; /* resume here; never NULL after a successful poll */
    bool has_more;     /* more events were available past `limit` */
} nm_poll_response;

/* nm_bus_poll - read up to req->limit events after req->cursor. Paging
 * with next_cursor returns every retained event exactly once. The cursor
 * is standard base64 of a JSON object {"<shard>":"<last id>",...}, as
 * upstream. Errors: NM_EINVAL (bad request; NM_EDECODE for a malformed
 * cursor), NM_ENOMEM, the adapter's error. `resp` is filled only on
 * success and then owned by the caller: nm_poll_response_free. */
NM_API int nm_bus_poll(nm_bus *bus, const nm_poll_request *req,
                       nm_poll_response *resp);

/* nm_poll_response_free - release the events and cursor; NULL-safe. */
NM_API void nm_poll_response_free(nm_poll_response *resp);

/* ------------------------------------------------------------ subscribe */

typedef struct nm_sub nm_sub;

/* nm_bus_subscribe - a live subscription: every event accepted (emitted
 * successfully) after this call returns is delivered, per shard in
 * sequence order, unless dropped by the bus policy or by this
 * subscription's bounded queue (then counted: nm_sub_missed). `filter`
 * (borrowed only during the call; NULL = all) is copied. Errors:
 * NM_ESHUTDOWN, NM_ENOMEM. Thread-safe. */
NM_API int nm_bus_subscribe(nm_bus *bus, const nm_filter *filter,
                            nm_sub **out);

/* nm_bus_subscribe_from - a polling subscription: a thread of the
 * subscription pages the adapter from `cursor` (a poll cursor; NULL = from
 * the oldest retained event) and queues what it reads, so it also sees
 * events written by OTHER processes to a shared Redis/JetStream bus, and
 * it never misses (when its queue is full it waits for the reader). When
 * caught up it polls again after 1 ms, doubling to 100 ms (upstream's
 * EventStream). `filter` (copied) is applied by the poll. Read it like any
 * subscription; nm_sub_cursor gives the position to resume from later.
 * Errors: NM_EDECODE (bad cursor), NM_ESHUTDOWN, NM_ENOMEM. */
NM_API int nm_bus_subscribe_from(nm_bus *bus, const char *cursor,
                                 const nm_filter *filter, nm_sub **out);

/* nm_sub_cursor - for nm_bus_subscribe_from subscriptions: a poll cursor
 * just after the last event nm_sub_next returned (a new string; free()
 * it). Pass it to nm_bus_subscribe_from or nm_bus_poll to resume.
 * NM_ENOTSUP for live subscriptions. Call from the reader's thread. */
NM_API int nm_sub_cursor(nm_sub *sub, char **cursor);

/* nm_sub_next - wait up to timeout_ms (< 0 forever, 0 = poll) for the next
 * event. On NM_OK *ev is filled; ev->data stays valid until the next
 * nm_sub_next* call on this subscription or nm_sub_close. Returns
 * NM_ETIMEDOUT (nothing arrived), NM_ECLOSED (end of stream: the
 * subscription or the bus was closed and everything before it was
 * delivered). One reader at a time per subscription. */
NM_API int nm_sub_next(nm_sub *sub, nm_event *ev, int timeout_ms);

/* nm_sub_next_json - the typed form (subscribe_typed::<T>): like
 * nm_sub_next, and decodes the event into *value (a new reference, caller
 * json_decref's it). An event that is not valid JSON returns NM_EDECODE
 * with *ev still filled and *value NULL; the stream goes on. */
NM_API int nm_sub_next_json(nm_sub *sub, nm_event *ev, json_t **value,
                            int timeout_ms);

/* nm_sub_fd - a file descriptor that polls readable while an event (or
 * the end of stream) is ready, for epoll/libuv embedding; then drain with
 * nm_sub_next(sub, &ev, 0). Owned by the subscription. */
NM_API int nm_sub_fd(const nm_sub *sub);

/* nm_sub_missed - events this subscription lost because its queue was
 * full (the reader was too slow). */
NM_API uint64_t nm_sub_missed(const nm_sub *sub);

/* nm_sub_close - end the subscription: a reader blocked in nm_sub_next on
 * another thread wakes with NM_ECLOSED... then release it. Call it once,
 * after the reader has returned. NULL-safe. Valid after the bus closed. */
NM_API void nm_sub_close(nm_sub *sub);

/* nm_sub_cancel - wake a blocked reader and make every later next return
 * NM_ECLOSED, without freeing (safe from any thread while a reader
 * waits). */
NM_API void nm_sub_cancel(nm_sub *sub);

NM_END_DECLS

#endif
