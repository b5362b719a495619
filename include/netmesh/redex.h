/*
 * netmesh/redex.h - RedEX: named append-only logs, in memory or on disk.
 *
 * Rust seed -> C:
 *   Redex::new() / Redex::with_persistent_dir(dir)
 *       -> nm_redex_config_init(&cfg); cfg.dir = dir; nm_redex_open(&cfg, &rx)
 *   redex.open_file(&ChannelName, RedexFileConfig)
 *       -> nm_redex_file_config_init(&fc); ...;
 *          nm_redex_open_file(rx, "cortex/tasks", &fc, &f)
 *   file.append / append_batch / append_inline / read_one / read_range /
 *   next_seq / lowest_retained_seq / sync / close / sweep_retention / tail
 *       -> nm_redex_append / nm_redex_append_batch / nm_redex_append_inline
 *          / nm_redex_read_one / nm_redex_read_range / nm_redex_next_seq /
 *          nm_redex_lowest_seq / nm_redex_sync / nm_redex_file_close /
 *          nm_redex_sweep / nm_redex_tail_open
 *
 * A log ("file") is a sequence of records numbered by a dense per-file
 * sequence (seq), starting at 0 and never reused. Each record is a payload
 * (0..NM_REDEX_MAX_PAYLOAD bytes, or exactly 8 bytes stored inline in the
 * index record) plus a wall-clock timestamp. Retention evicts the oldest
 * records; the seqs of the others never change.
 *
 * Persistent files use upstream Net's disk layout (docs/storage.md):
 *   <dir>/<channel segments>/manifest           16-byte REDM pointer
 *   <dir>/<channel segments>/v0000000001/idx    20-byte index records
 *                                       /dat    payload bytes
 *                                       /ts     8-byte LE unix ns per record
 * The files are memory-mapped for appends; records outside the in-memory
 * window (max_memory_bytes) are read back with pread, so a log larger
 * than memory works. Every append that returned survives a crash of the
 * process (kill -9) under every fsync policy; the policy decides what
 * survives a crash of the machine (docs/storage.md, "Durability").
 *
 * Threading: every function is safe to call from any thread unless its
 * comment says otherwise. A file's appends, reads, sweeps and tails
 * serialize on one mutex per file; fsyncs run outside it.
 */
#ifndef NETMESH_REDEX_H
#define NETMESH_REDEX_H

#include <stdbool.h>

#include <netmesh/common.h>
#include <netmesh/error.h>

NM_BEGIN_DECLS

/* Largest payload of one record (1 GiB). */
#define NM_REDEX_MAX_PAYLOAD (1u << 30)
/* Size of an inline payload: nm_redex_append_inline stores exactly this. */
#define NM_REDEX_INLINE_SIZE 8
/* nm_redex_tail from_seq: start at the next record appended (live only). */
#define NM_REDEX_TAIL_LIVE UINT64_MAX

/* Record flags: the top nibble of the index record's flags_and_checksum
 * word (nm_redex_event.flags). TOMBSTONE and COMPACTED are reserved by
 * upstream; netmesh never sets them but keeps records that carry them. */
#define NM_REDEX_FLAG_INLINE 0x80000000u
#define NM_REDEX_FLAG_TOMBSTONE 0x40000000u
#define NM_REDEX_FLAG_COMPACTED 0x20000000u

/* ------------------------------------------------------------ manager */

typedef struct nm_redex_config {
    /* sizeof(nm_redex_config), set by nm_redex_config_init. */
    uint32_t size;
    /* Base directory for persistent files (created if missing). NULL
     * (default) = in-memory only: opening a persistent file fails. */
    const char *dir;
    /* > 0: a manager thread runs nm_redex_sweep on every open file this
     * often. 0 (default, as upstream): retention is caller-driven only. */
    uint32_t sweep_interval_ms;
} nm_redex_config;

/* nm_redex_config_init - the defaults above. Never fails. */
NM_API void nm_redex_config_init(nm_redex_config *cfg);

typedef struct nm_redex nm_redex;

/* nm_redex_open - a new manager. cfg NULL = defaults (in memory). The
 * directory string is copied. Errors: NM_EINVAL (bad size field), NM_EIO
 * (the directory cannot be created or is not a directory), NM_ENOMEM. */
NM_API int nm_redex_open(const nm_redex_config *cfg, nm_redex **out);

/* nm_redex_close - close every file (final fsync + exact-size truncate on
 * disk), end every tail (NM_ECLOSED), stop the sweep thread and release
 * the manager and every nm_redex_file handle it gave out. Tails stay
 * valid until nm_redex_tail_close. NULL is a no-op. Must not race other
 * calls on the same manager or its files. */
NM_API void nm_redex_close(nm_redex *rx);

/* nm_redex_sweep_all - nm_redex_sweep on every open file. Returns the
 * total number of records evicted, or the first error. */
NM_API int64_t nm_redex_sweep_all(nm_redex *rx);

/* --------------------------------------------------------------- files */

/* When a persistent file fsyncs (docs/storage.md, "Durability"). fsync
 * always covers dat, idx and ts (in parallel). nm_redex_sync and close
 * always fsync, whatever the policy. */
typedef enum nm_redex_fsync {
    /* Never on append (default, as upstream). */
    NM_REDEX_FSYNC_NEVER = 0,
    /* fsync_every_n 0 or 1 = "Always": append returns only once its
     * record is on stable storage (group commit: concurrent appenders
     * share one fsync). n >= 2: a background thread fsyncs after every n
     * appends; append does not wait. */
    NM_REDEX_FSYNC_EVERY_N = 1,
    /* A background thread fsyncs every fsync_interval_ms (> 0) while
     * there is unsynced data. */
    NM_REDEX_FSYNC_INTERVAL = 2,
    /* Background fsync when fsync_interval_ms elapsed OR fsync_max_bytes
     * (idx + dat + ts bytes) accumulated, whichever first. A 0 disables
     * that arm; both 0 = NEVER. */
    NM_REDEX_FSYNC_INTERVAL_OR_BYTES = 3,
} nm_redex_fsync;

typedef struct nm_redex_file_config {
    /* sizeof(nm_redex_file_config), set by nm_redex_file_config_init. */
    uint32_t size;
    /* On disk under the manager's directory (default false). */
    bool persistent;
    nm_redex_fsync fsync; /* default NM_REDEX_FSYNC_NEVER */
    uint64_t fsync_every_n;
    uint32_t fsync_interval_ms;
    uint64_t fsync_max_bytes;
    /* Default 64 MiB (upstream's value). In-memory files: a hard ceiling
     * on retained bytes (28 + payload per record); an append that would
     * pass it first sweeps retention, then fails with NM_EBACKPRESSURE.
     * Persistent files: the size of the in-memory window of the newest
     * records; older ones are read from the files. >= 1. */
    uint64_t max_memory_bytes;
    /* Retention, applied by nm_redex_sweep (all that are set must hold:
     * the sweep drops the largest count any of them asks for). 0 = no
     * limit (default). Bytes count 20 + heap payload bytes per record
     * (inline records 20), as upstream. Age is against each record's
     * timestamp. */
    uint64_t retention_max_events;
    uint64_t retention_max_bytes;
    uint64_t retention_max_age_ns;
    /* Records a tail copies out per lock hold (its read-ahead buffer),
     * 1..1,048,576. Default 1024. See nm_redex_tail. */
    uint32_t tail_buffer_size;
} nm_redex_file_config;

/* nm_redex_file_config_init - the defaults above. Never fails. */
NM_API void nm_redex_file_config_init(nm_redex_file_config *cfg);

typedef struct nm_redex_file nm_redex_file;

/* nm_redex_open_file - open (or create) the log named `channel` (a channel
 * name, see <netmesh/name.h>; "a/b" is the directory <dir>/a/b). cfg NULL
 * = defaults. Persistent files are recovered on open: a torn tail is cut,
 * and the first record failing its checks ends the log (the files of a
 * generation holding corrupt records are kept as v<gen>.corrupt/ - see
 * docs/storage.md); nm_redex_file_stats reports what was found.
 *
 * Opening a channel that is already open in this manager with an equal
 * configuration returns a NEW handle onto the same log (each handle is
 * closed on its own; the log closes with the last). With a different
 * configuration: NM_EEXIST, the detail naming the first differing field.
 *
 * Errors: NM_EINVAL (bad name or config; persistent without a manager
 * directory), NM_EEXIST, NM_EBUSY (another process or manager holds the
 * channel directory), NM_EIO (file system, with strerror in the detail),
 * NM_ECLOSED (manager closed), NM_ENOMEM. Handles are owned by the
 * manager and stay valid (closed) until nm_redex_close. */
NM_API int nm_redex_open_file(nm_redex *rx, const char *channel,
                              const nm_redex_file_config *cfg,
                              nm_redex_file **out);

/* nm_redex_file_close - close this handle. The last handle of a log
 * closes the log: final fsync, files truncated to their exact sizes, tails
 * end with NM_ECLOSED. Idempotent (a second call returns NM_OK); every
 * other call on a closed handle returns NM_ECLOSED. Returns the final
 * fsync's NM_EIO if it failed. NULL is a no-op. */
NM_API int nm_redex_file_close(nm_redex_file *f);

/* nm_redex_append - append len bytes (data may be NULL when len is 0) and
 * store the new record's seq in *seq (may be NULL). Errors: NM_EINVAL,
 * NM_ETOOBIG (len > NM_REDEX_MAX_PAYLOAD), NM_EBACKPRESSURE (in-memory
 * file at max_memory_bytes), NM_EIO (the disk: growing a file, or the
 * fsync of an "Always" file - then the record IS in the log but its
 * durability is unknown; the file refuses further appends until it is
 * reopened), NM_ECLOSED. On any other error nothing was appended. */
NM_API int nm_redex_append(nm_redex_file *f, const void *data, size_t len,
                           uint64_t *seq);

/* nm_redex_append_inline - append exactly NM_REDEX_INLINE_SIZE bytes,
 * stored inside the index record (no dat bytes). Same errors. */
NM_API int nm_redex_append_inline(nm_redex_file *f,
                                  const uint8_t data[NM_REDEX_INLINE_SIZE],
                                  uint64_t *seq);

/* nm_redex_append_batch - append n payloads as n consecutive records, all
 * or nothing; *first_seq (may be NULL) gets the first one's seq. n == 0 is
 * NM_EINVAL. An "Always" file fsyncs once for the batch. */
NM_API int nm_redex_append_batch(nm_redex_file *f, const void *const *data,
                                 const size_t *lens, size_t n,
                                 uint64_t *first_seq);

/* One record as read back. */
typedef struct nm_redex_event {
    uint64_t seq;
    uint64_t timestamp_ns;  /* wall clock, unix ns, taken at append */
    uint32_t flags;         /* NM_REDEX_FLAG_* */
    uint32_t checksum;      /* xxh3-64(payload) & 0x0FFFFFFF */
    const uint8_t *payload; /* len bytes + a NUL (not counted) */
    size_t len;
} nm_redex_event;

/* nm_redex_read_one - read record `seq` into *ev; ev->payload is a new
 * allocation released by nm_redex_event_free. Errors: NM_ENOTFOUND (seq
 * evicted or not yet written; the detail says which), NM_EDECODE (the
 * bytes on disk no longer match their checksum), NM_EIO, NM_ECLOSED. */
NM_API int nm_redex_read_one(nm_redex_file *f, uint64_t seq,
                             nm_redex_event *ev);

/* nm_redex_event_free - release a nm_redex_read_one result (the struct
 * itself is the caller's). NULL-safe. */
NM_API void nm_redex_event_free(nm_redex_event *ev);

typedef struct nm_redex_batch {
    nm_redex_event *events; /* count events in seq order */
    size_t count;
    /* Where to continue: one past the last seq examined. Equal to `end`
     * (clamped to next_seq) unless max_events stopped the read early. */
    uint64_t next_seq;
} nm_redex_batch;

/* nm_redex_read_range - the retained records with start <= seq < end
 * (half-open; evicted ones are skipped silently, as upstream), at most
 * max_events of them (0 = no limit). The result is one allocation:
 * nm_redex_batch_free. Errors: NM_EINVAL (start > end), NM_EDECODE,
 * NM_EIO, NM_ECLOSED, NM_ENOMEM. */
NM_API int nm_redex_read_range(nm_redex_file *f, uint64_t start, uint64_t end,
                               size_t max_events, nm_redex_batch *out);

/* nm_redex_batch_free - NULL-safe; leaves *b empty. */
NM_API void nm_redex_batch_free(nm_redex_batch *b);

/* nm_redex_next_seq - the seq the next append will get. */
NM_API int nm_redex_next_seq(nm_redex_file *f, uint64_t *out);

/* nm_redex_lowest_seq - the lowest retained seq; equals next_seq when
 * no record is retained. */
NM_API int nm_redex_lowest_seq(nm_redex_file *f, uint64_t *out);

/* nm_redex_sync - fsync dat, idx and ts now (whatever the policy) and
 * return once every record appended before the call is on stable
 * storage. In-memory files: NM_OK. Errors: NM_EIO, NM_ECLOSED. */
NM_API int nm_redex_sync(nm_redex_file *f);

/* nm_redex_sweep - apply the retention limits now. Returns the number of
 * records evicted (>= 0) or an error. Tails positioned below the new
 * lowest seq get NM_ELAGGED. When the evicted prefix of a generation
 * grows as large as the live part (and >= 64 KiB), the sweep compacts:
 * a new generation holding only the live records, then the manifest
 * flip (docs/storage.md). */
NM_API int64_t nm_redex_sweep(nm_redex_file *f);

/* nm_redex_compact - rewrite the log into a new generation holding only
 * retained records now (persistent: new v<gen+1>/, fsync, manifest flip,
 * old generation deleted). Appends wait meanwhile. */
NM_API int nm_redex_compact(nm_redex_file *f);

typedef struct nm_redex_file_stats {
    uint64_t next_seq;
    uint64_t lowest_seq;
    uint64_t records;        /* retained: next_seq - lowest_seq */
    uint64_t retained_bytes; /* 20 + heap payload per retained record */
    /* Every record with seq < durable_seq is on stable storage (in-memory
     * files: 0). */
    uint64_t durable_seq;
    uint32_t generation;     /* current v<gen>/ (0 in memory) */
    uint64_t disk_bytes;     /* logical idx + dat + ts bytes of it */
    uint64_t resident_bytes; /* bytes of the in-memory window */
    uint64_t compactions;    /* since open */
    /* What recovery found when the file was opened. */
    uint64_t recovered_records;  /* records kept */
    uint64_t recovery_dropped;   /* complete records dropped after the cut */
    uint64_t recovery_ts_filled; /* records whose timestamp was missing */
    bool recovery_torn;          /* an incomplete last record was cut */
    bool recovery_corrupt;       /* a record failed its checks */
} nm_redex_file_stats;

/* nm_redex_file_stats - a consistent snapshot. */
NM_API int nm_redex_file_stats_get(nm_redex_file *f, nm_redex_file_stats *st);

/* --------------------------------------------------------------- tails */

typedef struct nm_redex_tail nm_redex_tail;

/* nm_redex_tail_open - follow the log from from_seq (NM_REDEX_TAIL_LIVE = from
 * the next append). A tail is a cursor over the log itself, so backfill
 * and live records form one gap-free, duplicate-free sequence by
 * construction. It copies up to tail_buffer_size records per lock hold
 * into its own buffer (its only memory); a slow reader never holds the
 * log back and never loses data silently: when records it has not read
 * yet are evicted (or from_seq is below the lowest retained seq), the
 * next nm_redex_tail_next returns NM_ELAGGED once, then continues from
 * the lowest retained seq. Errors: NM_ECLOSED, NM_ENOMEM, NM_EIO. */
NM_API int nm_redex_tail_open(nm_redex_file *f, uint64_t from_seq,
                              nm_redex_tail **out);

/* nm_redex_tail_next - wait up to timeout_ms (< 0 forever, 0 = poll) for
 * the next record (a caught-up reader spins up to 20 us, watching the
 * log, before it sleeps; timeout 0 never spins). NM_OK: *ev is filled;
 * ev->payload stays valid until the next nm_redex_tail_next or
 * nm_redex_tail_close. NM_ELAGGED: records were skipped: ev->seq is the first
 * one missed and nm_redex_tail_position() where delivery resumes (payload
 * NULL, len 0). NM_ETIMEDOUT: nothing arrived. NM_ECLOSED: the tail was
 * cancelled or its log closed (records not yet delivered stay in the log). One
 * reader at a time per tail. */
NM_API int nm_redex_tail_next(nm_redex_tail *t, nm_redex_event *ev,
                              int timeout_ms);

/* nm_redex_tail_fd - polls readable while nm_redex_tail_next(t, ev, 0)
 * has something to return (a record, a lag or the end). Owned by the
 * tail. */
NM_API int nm_redex_tail_fd(const nm_redex_tail *t);

/* nm_redex_tail_position - the seq the next delivered record will have
 * (read from the reader's thread). */
NM_API uint64_t nm_redex_tail_position(const nm_redex_tail *t);

/* nm_redex_tail_cancel - wake a blocked reader; every later next returns
 * NM_ECLOSED. Safe from any thread while a reader waits. */
NM_API void nm_redex_tail_cancel(nm_redex_tail *t);

/* nm_redex_tail_close - cancel and release. Call once, after the reader
 * has returned. Valid after the file or manager closed. NULL-safe. */
NM_API void nm_redex_tail_close(nm_redex_tail *t);

/* ------------------------------------------- offline, read-only access */

/* These read one channel directory (<dir>/<channel segments>) without
 * opening it: no lock, no repair, safe while another process appends.
 * `netmesh log check|dump|tail` are built on them. */

/* How the valid prefix of a generation ends (docs/storage.md). */
typedef enum nm_redex_end {
    NM_REDEX_END_CLEAN = 0,   /* the data simply ends */
    NM_REDEX_END_TORN = 1,    /* an incomplete last record (a crash) */
    NM_REDEX_END_CORRUPT = 2, /* a record failed its checks */
} nm_redex_end;

typedef struct nm_redex_check_report {
    uint32_t generation; /* the generation recovery would use; 0 = a
                            legacy flat layout (files in the directory) */
    bool manifest_present;
    bool manifest_valid; /* decodes AND names a complete generation */
    char manifest_error[128];
    uint64_t idx_bytes, dat_bytes, ts_bytes; /* file sizes */
    uint64_t records;    /* valid records recovery would keep */
    uint64_t first_seq;  /* seq of the first (when records > 0) */
    uint64_t ts_missing; /* kept records without a timestamp */
    nm_redex_end end;
    uint64_t dropped;     /* complete records after the first bad one */
    char detail[256];     /* the first bad record and why ("" if clean) */
    uint32_t quarantined; /* v<gen>.corrupt* directories present */
} nm_redex_check_report;

/* nm_redex_check - verify every record of the channel directory the way
 * recovery would (nothing is modified). Returns NM_OK with the report
 * filled (also when it finds corruption: see r->end, r->manifest_valid),
 * or NM_ENOTFOUND (no log there), NM_EIO, NM_ENOMEM. */
NM_API int nm_redex_check(const char *channel_dir, nm_redex_check_report *r);

/* Called with each record; return 0 to go on, anything else stops the
 * read and is returned by it. ev->payload is valid during the call. */
typedef int (*nm_redex_record_fn)(void *ctx, const nm_redex_event *ev);

typedef struct nm_redex_reader nm_redex_reader;

/* nm_redex_reader_open - a read-only cursor over a channel directory,
 * from from_seq. live: a writer may be appending right now - a last
 * record whose timestamp is not written yet is held back until it is. */
NM_API int nm_redex_reader_open(const char *channel_dir, uint64_t from_seq,
                                bool live, nm_redex_reader **out);

/* nm_redex_reader_poll - deliver every valid record past the position
 * that is there now (follows compactions). Returns how many were
 * delivered, fn's non-zero code, or NM_EDECODE (a corrupt record: the
 * detail says which), NM_EIO, NM_ENOTFOUND (the log vanished). */
NM_API int64_t nm_redex_reader_poll(nm_redex_reader *r, nm_redex_record_fn fn,
                                    void *ctx);

/* nm_redex_reader_position - the seq the next delivered record will have
 * (at least from_seq). */
NM_API uint64_t nm_redex_reader_position(const nm_redex_reader *r);

/* nm_redex_reader_close - NULL-safe. */
NM_API void nm_redex_reader_close(nm_redex_reader *r);

NM_END_DECLS

#endif
