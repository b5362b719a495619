/*
 * netmesh/dedup.h - cross-restart dedup: the persistent producer nonce and
 * the consumer-side Redis Streams dedup filter (seed: "Persistent producer
 * nonce", "Redis Streams consumer-side dedup helper").
 *
 * Dedup ids are "{nonce hex}:{shard}:{sequence_start}:{i}". They are stable
 * across a crash and restart when the nonce is persisted
 * (nm_bus_config.producer_nonce_path) AND the restarted producer re-emits
 * the same events in the same order (so sequences line up): then
 * JetStream's duplicate window, or a consumer using nm_redis_dedup, keeps
 * each event once.
 */
#ifndef NETMESH_DEDUP_H
#define NETMESH_DEDUP_H

#include <stdbool.h>

#include <netmesh/common.h>

NM_BEGIN_DECLS

/* Size of the nonce file: [0x01 version][u64 little-endian nonce]. */
#define NM_NONCE_FILE_BYTES 9

/* nm_producer_nonce_load - read the nonce at `path`, or create the file
 * with a fresh random non-zero nonce (written to "<path>.tmp", fsynced,
 * renamed, directory fsynced) when it does not exist. A file of the wrong
 * size or version, or holding 0, is NM_EDECODE and is never replaced; a
 * missing parent directory or an I/O failure is NM_EIO. Thread-safe;
 * concurrent creators of one path end with one nonce on disk, but each
 * may return its own: create it once. */
NM_API int nm_producer_nonce_load(const char *path, uint64_t *nonce);

/* nm_dedup_id - format upstream's dedup id into out (at most 65 bytes
 * with the NUL; real ids need at most 51). Returns the length, or
 * NM_ERANGE if cap is too small. */
NM_API int nm_dedup_id(char *out, size_t cap, uint64_t nonce, uint16_t shard,
                       uint64_t sequence_start, uint64_t index);

/* nm_dedup_id_event - the id the adapters put on each event:
 * nm_dedup_id(nonce, shard, seq, 0), i.e. "{nonce hex}:{shard}:{seq}:0",
 * as if each event were its own batch. It depends only on the event's
 * per-shard sequence, not on how the dispatcher happened to cut batches,
 * so a producer that restarts with the same nonce and re-emits the same
 * events in the same order produces the same ids. */
NM_API int nm_dedup_id_event(char *out, size_t cap, uint64_t nonce,
                             uint16_t shard, uint64_t seq);

typedef struct nm_redis_dedup nm_redis_dedup;

#define NM_REDIS_DEDUP_DEFAULT 4096u
#define NM_REDIS_DEDUP_MAX (1u << 24)

/* nm_redis_dedup_new - a FIFO window remembering the last `capacity` ids
 * (clamped to [1, NM_REDIS_DEDUP_MAX]; 0 means the default 4096). As
 * upstream: re-observing an id does NOT refresh it; the oldest id leaves
 * the window first. Free with nm_redis_dedup_free. Not thread-safe: one
 * owner (or your own lock). */
NM_API int nm_redis_dedup_new(size_t capacity, nm_redis_dedup **out);
NM_API void nm_redis_dedup_free(nm_redis_dedup *d);

/* nm_redis_dedup_is_duplicate - test-and-insert: true if `id` is in the
 * window (skip the entry), else remembers it (evicting the oldest when
 * full) and returns false. O(1). NULL id or d: false. */
NM_API bool nm_redis_dedup_is_duplicate(nm_redis_dedup *d, const char *id,
                                        size_t len);
NM_API size_t nm_redis_dedup_len(const nm_redis_dedup *d);
NM_API size_t nm_redis_dedup_capacity(const nm_redis_dedup *d);
NM_API bool nm_redis_dedup_is_empty(const nm_redis_dedup *d);
NM_API void nm_redis_dedup_clear(nm_redis_dedup *d);

NM_END_DECLS

#endif
