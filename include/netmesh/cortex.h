/*
 * netmesh/cortex.h - CortEX and NetDb: event-sourced typed state on RedEX.
 *
 * Rust seed -> C:
 *   NetDb::builder(redex).origin(o).with_tasks().with_memories()
 *       .persistent(p).build()
 *       -> nm_netdb_config_init(&c); c.origin_hash = o; c.with_tasks = true;
 *          c.with_memories = true; c.dir = dir; c.persistent = p;
 *          nm_netdb_open(&c, &db)
 *   db.tasks() / db.memories()  -> nm_netdb_tasks(db) / nm_netdb_memories(db)
 *   TasksAdapter::open(redex, origin)
 *       -> nm_cortex_config_init(&c); c.origin_hash = o;
 *          nm_cortex_tasks_open(rx, &c, &t)
 *   tasks.create/rename/complete/delete -> nm_cortex_tasks_create/...
 *   memories.store/retag/pin/unpin/delete -> nm_cortex_memories_store/...
 *   wait_for_seq / wait_for_token / poll_for_token
 *       -> nm_cortex_tasks_wait_for_seq / nm_cortex_tasks_wait_for_token
 *          (timeout 0 = poll)
 *   find_unique / find_many / count_where / exists_where / count
 *       -> nm_cortex_tasks_find_unique / _find_many / _count_where /
 *          _exists_where / _count; zero-copy reads under a read guard:
 *          nm_cortex_tasks_read_begin / nm_cortex_tasks_view_get / _end
 *   watch() / snapshot_and_watch(w)
 *       -> nm_cortex_tasks_watch / nm_cortex_tasks_snapshot_and_watch,
 *          nm_cortex_watch_next_tasks, nm_cortex_watch_fd,
 *          nm_cortex_watch_close
 *   snapshot / open_from_snapshot, NetDbSnapshot encode/decode,
 *   build_from_snapshot
 *       -> nm_cortex_tasks_snapshot / nm_cortex_tasks_open_from_snapshot,
 *          nm_netdb_snapshot_take / _encode / _decode,
 *          nm_netdb_open_from_snapshot
 *   WriteToken Display / FromStr -> nm_write_token_format / _parse
 *
 * A model (tasks or memories) is one RedEX log ("cortex/tasks",
 * "cortex/memories") plus a fold: a thread that tails the log and applies
 * every event, in seq order, to an in-memory typed state (a hash table
 * keyed by id). Writes append an event (a 24-byte EventMeta followed by
 * a postcard payload, byte-compatible with upstream Net) and return a
 * WriteToken {origin_hash, seq}; reads see the state as of the fold's
 * watermark, so a reader that must see its own write waits for the token
 * first (read-your-writes). docs/cortex.md has the formats (byte tables),
 * the threading and the read-your-writes contract.
 *
 * Threading: every function is safe from any thread unless its comment
 * says otherwise. Writes never wait for the fold. Reads take the state's
 * read lock (the fold takes the write lock for a batch of at most 256
 * events). *_close must not race other calls on the same handle except
 * writes (a write that returns NM_OK while a close runs is in the log but
 * may not be folded by this handle); *_free must be the last call.
 *
 * Strings handed in (titles, contents, tags, sources) must be valid UTF-8
 * (upstream's String), else NM_EINVAL. Strings handed out are
 * NUL-terminated and carry their length: a log written by another
 * producer may hold strings with embedded NULs.
 */
#ifndef NETMESH_CORTEX_H
#define NETMESH_CORTEX_H

#include <stdbool.h>

#include <netmesh/common.h>
#include <netmesh/error.h>
#include <netmesh/redex.h>

NM_BEGIN_DECLS

/* ------------------------------------------------------------ EventMeta */

/* Size of the EventMeta prefix of every CortEX payload. */
#define NM_CORTEX_META_SIZE 24

/* EventMeta.flags bits (upstream's; netmesh writes 0). */
#define NM_CORTEX_FLAG_CAUSAL 0x01u
#define NM_CORTEX_FLAG_CONTINUITY_PROOF 0x02u

/* Dispatch bytes. 0x00 = raw (no CortEX semantics); 0x00..0x7F are
 * reserved for CortEX, 0x80..0xFF for applications. A fold ignores
 * dispatches it does not know (the event still counts as applied). */
#define NM_CORTEX_DISPATCH_RAW 0x00u
#define NM_CORTEX_TASK_CREATED 0x01u
#define NM_CORTEX_TASK_RENAMED 0x02u
#define NM_CORTEX_TASK_COMPLETED 0x03u
#define NM_CORTEX_TASK_DELETED 0x04u
#define NM_CORTEX_MEMORY_STORED 0x10u
#define NM_CORTEX_MEMORY_RETAGGED 0x11u
#define NM_CORTEX_MEMORY_PINNED 0x12u
#define NM_CORTEX_MEMORY_UNPINNED 0x13u
#define NM_CORTEX_MEMORY_DELETED 0x14u

/* The default channels of the two models. */
#define NM_CORTEX_TASKS_CHANNEL "cortex/tasks"
#define NM_CORTEX_MEMORIES_CHANNEL "cortex/memories"

/* The 24-byte little-endian prefix:
 *   [0] dispatch u8 | [1] flags u8 | [2..4) pad (0 on write, ignored on
 *   read) | [4..12) origin_hash u64 | [12..20) seq_or_ts u64 |
 *   [20..24) checksum u32 */
typedef struct nm_cortex_meta {
    uint8_t dispatch;
    uint8_t flags;
    uint8_t pad[2]; /* as read; never written */
    uint64_t origin_hash;
    uint64_t seq_or_ts; /* netmesh writers: a per-origin counter */
    uint32_t checksum;
} nm_cortex_meta;

/* nm_cortex_meta_encode - the 24 wire bytes of *m (pad written as 0,
 * checksum as given). Never fails. */
NM_API void nm_cortex_meta_encode(const nm_cortex_meta *m,
                                  uint8_t out[NM_CORTEX_META_SIZE]);

/* nm_cortex_meta_decode - parse the first 24 bytes of buf (len may be
 * longer: the rest is the tail). No checksum check. Errors: NM_EDECODE
 * (len < 24), NM_EINVAL (NULL). */
NM_API NM_NODISCARD int nm_cortex_meta_decode(const uint8_t *buf, size_t len,
                                              nm_cortex_meta *out);

/* nm_cortex_checksum - upstream's v2 checksum: (u32) xxh3_64 of the 24
 * meta bytes with pad and checksum zeroed, followed by the tail. */
NM_API uint32_t nm_cortex_checksum(const nm_cortex_meta *m,
                                   const uint8_t *tail, size_t tail_len);

/* nm_cortex_checksum_legacy - the v1 checksum: (u32) xxh3_64(tail). */
NM_API uint32_t nm_cortex_checksum_legacy(const uint8_t *tail,
                                          size_t tail_len);

/* nm_cortex_event_verify - decode the meta of a whole CortEX payload and
 * check its checksum (v2, else v1, as upstream readers do). Errors:
 * NM_EDECODE (short, or neither checksum matches; the detail says which
 * was expected), NM_EINVAL. */
NM_API NM_NODISCARD int nm_cortex_event_verify(const uint8_t *payload,
                                               size_t len,
                                               nm_cortex_meta *out);

/* ---------------------------------------------------------- WriteToken */

/* What a write returns: the producer identity and the RedEX seq of the
 * event. Text form "{origin_hash:016x}:{seq}" (16 lowercase hex digits,
 * a colon, decimal seq). */
typedef struct nm_write_token {
    uint64_t origin_hash;
    uint64_t seq;
} nm_write_token;

/* Longest text form including the NUL: 16 + 1 + 20 + 1. */
#define NM_WRITE_TOKEN_STRLEN 38

/* nm_write_token_format - write the text form into buf (cap >=
 * NM_WRITE_TOKEN_STRLEN is always enough). Errors: NM_ERANGE (cap too
 * small; buf gets "" when cap > 0), NM_EINVAL. */
NM_API int nm_write_token_format(const nm_write_token *t, char *buf,
                                 size_t cap);

/* nm_write_token_parse - parse the text form: exactly 16 hex digits
 * (either case), ':', 1..20 decimal digits fitting u64, nothing else.
 * Errors: NM_EINVAL with a detail naming the bad part. */
NM_API NM_NODISCARD int nm_write_token_parse(const char *s,
                                             nm_write_token *out);

/* -------------------------------------------------------------- config */

/* Where a fold starts reading its log. */
typedef enum nm_cortex_start {
    NM_CORTEX_FROM_BEGINNING = 0, /* the lowest retained seq (default) */
    NM_CORTEX_LIVE_ONLY = 1,      /* the next append after open */
    NM_CORTEX_FROM_SEQ = 2,       /* start_seq */
} nm_cortex_start;

/* What a fold does when an event fails (short, bad checksum, malformed
 * payload, out of memory, history evicted under it). */
typedef enum nm_cortex_on_error {
    /* Stop folding (default): the state stays as of the last good event;
     * waits past it fail with NM_ESHUTDOWN. */
    NM_CORTEX_STOP = 0,
    /* Count the error (fold_errors), skip the event, go on. The
     * applied-through watermark stops at the event before the first
     * skip (state no longer reflects every event). */
    NM_CORTEX_LOG_AND_CONTINUE = 1,
} nm_cortex_on_error;

typedef struct nm_cortex_config {
    /* sizeof(nm_cortex_config), set by nm_cortex_config_init. */
    uint32_t size;
    /* Producer identity stamped on every event (EventMeta.origin_hash)
     * and on every WriteToken. Default 0. */
    uint64_t origin_hash;
    /* Log channel; NULL (default) = the model's default channel. */
    const char *channel;
    /* Configuration of the log; NULL (default) = RedEX defaults (in
     * memory). Set file->persistent for a log on disk. */
    const nm_redex_file_config *file;
    nm_cortex_start start;       /* default NM_CORTEX_FROM_BEGINNING */
    uint64_t start_seq;          /* for NM_CORTEX_FROM_SEQ */
    nm_cortex_on_error on_error; /* default NM_CORTEX_STOP */
} nm_cortex_config;

/* nm_cortex_config_init - the defaults above. Never fails. */
NM_API void nm_cortex_config_init(nm_cortex_config *cfg);

/* ----------------------------------------------------------- the data */

/* A string handed out: NUL-terminated, len excludes the NUL. */
typedef struct nm_cortex_str {
    char *s;
    size_t len;
} nm_cortex_str;

typedef enum nm_task_status {
    NM_TASK_PENDING = 0,   /* postcard variant 0, JSON "pending" */
    NM_TASK_COMPLETED = 1, /* variant 1, "completed" */
} nm_task_status;

typedef struct nm_cortex_task {
    uint64_t id;
    nm_cortex_str title;
    nm_task_status status;
    uint64_t created_ns;
    uint64_t updated_ns;
} nm_cortex_task;

typedef struct nm_cortex_memory {
    uint64_t id;
    nm_cortex_str content;
    nm_cortex_str *tags;
    size_t ntags;
    nm_cortex_str source;
    uint64_t created_ns;
    uint64_t updated_ns;
    bool pinned;
} nm_cortex_memory;

/* A query result: count items, caller-owned, ONE allocation (items and
 * every string they point to). Free with nm_cortex_task_list_free /
 * nm_cortex_memory_list_free. */
typedef struct nm_cortex_task_list {
    nm_cortex_task *items;
    size_t count;
} nm_cortex_task_list;

typedef struct nm_cortex_memory_list {
    nm_cortex_memory *items;
    size_t count;
} nm_cortex_memory_list;

/* Release a result; leaves it empty. NULL-safe, idempotent. */
NM_API void nm_cortex_task_list_free(nm_cortex_task_list *l);
NM_API void nm_cortex_memory_list_free(nm_cortex_memory_list *l);

/* nm_task_status_name - "pending" / "completed" ("?" otherwise). */
NM_API const char *nm_task_status_name(nm_task_status s);
/* nm_task_status_parse - the inverse. NM_EINVAL on anything else. */
NM_API NM_NODISCARD int nm_task_status_parse(const char *s,
                                             nm_task_status *out);

/* ------------------------------------------------------------- queries */

typedef enum nm_cortex_order {
    NM_CORTEX_ORDER_NONE = 0, /* unspecified (storage order), default */
    NM_CORTEX_ID_ASC = 1,
    NM_CORTEX_ID_DESC = 2,
    NM_CORTEX_CREATED_ASC = 3, /* ties: id ascending */
    NM_CORTEX_CREATED_DESC = 4,
    NM_CORTEX_UPDATED_ASC = 5,
    NM_CORTEX_UPDATED_DESC = 6,
} nm_cortex_order;

/* nm_cortex_order_parse - "id_asc", "id_desc", "created_asc",
 * "created_desc", "updated_asc", "updated_desc" (upstream's C strings)
 * and "none". Errors: NM_EINVAL (unknown name). */
NM_API NM_NODISCARD int nm_cortex_order_parse(const char *s,
                                              nm_cortex_order *out);
/* nm_cortex_order_name - the inverse ("?" for bad values). */
NM_API const char *nm_cortex_order_name(nm_cortex_order o);

/* A task query: every condition that is set must hold. The time bounds
 * are inclusive (after = ">=", before = "<="); their defaults (0 and
 * UINT64_MAX) hold for every task. The filter's pointers are only read
 * during the call (a watch copies them). */
typedef struct nm_cortex_task_filter {
    uint32_t size; /* set by nm_cortex_task_filter_init */
    int status;    /* -1 (default) any, else a nm_task_status */
    /* id IN id_in[0..id_in_count): NULL (default) = no condition; a
     * non-NULL array with count 0 matches nothing. */
    const uint64_t *id_in;
    size_t id_in_count;
    uint64_t created_after, created_before;
    uint64_t updated_after, updated_before;
    /* ASCII case-insensitive substring of the title; NULL = none. */
    const char *title_contains;
    nm_cortex_order order_by;
    size_t limit; /* 0 (default) = no limit; applied after ordering */
} nm_cortex_task_filter;

/* nm_cortex_task_filter_init - match every task, unordered. */
NM_API void nm_cortex_task_filter_init(nm_cortex_task_filter *f);

/* A memory query (same rules). Tags and sources compare exactly. */
typedef struct nm_cortex_memory_filter {
    uint32_t size;
    const uint64_t *id_in;
    size_t id_in_count;
    uint64_t created_after, created_before;
    uint64_t updated_after, updated_before;
    const char *content_contains; /* ASCII case-insensitive */
    const char *source;           /* source equals */
    const char *tag;              /* has this tag */
    /* has at least one of (NULL = none; an empty set matches nothing) */
    const char *const *any_tags;
    size_t any_tags_count;
    /* has every one of (NULL = none; an empty set matches all) */
    const char *const *all_tags;
    size_t all_tags_count;
    int pinned; /* -1 (default) any, 0 unpinned, 1 pinned */
    nm_cortex_order order_by;
    size_t limit;
} nm_cortex_memory_filter;

NM_API void nm_cortex_memory_filter_init(nm_cortex_memory_filter *f);

/* ------------------------------------------------------ status / waits */

/* A consistent view of a model's fold. Watermarks are "through" seqs;
 * has_* false = none yet. */
typedef struct nm_cortex_status {
    bool running;                 /* the fold thread is folding */
    bool closed;                  /* *_close was called */
    bool has_applied;             /* applied_through_seq is meaningful */
    uint64_t applied_through_seq; /* every seq start..it applied OK */
    bool has_folded;
    uint64_t folded_through_seq; /* processed: applied or skipped */
    uint64_t start_seq;          /* where the fold started */
    uint64_t fold_errors;        /* events that failed */
    uint64_t events_applied;
    uint64_t count;        /* items in the state */
    int stop_code;         /* why it stopped (NM_OK while running or
                              after a clean close) */
    char stop_detail[200]; /* the failing event and why */
} nm_cortex_status;

/* ================================================================ tasks */

typedef struct nm_cortex_tasks nm_cortex_tasks;

/* nm_cortex_tasks_open - open the tasks model on `rx` (which must outlive
 * it): open the log, start the fold thread and wait until it has folded
 * every event that was in the log at open (so the per-origin counter is
 * past them). cfg NULL = defaults. Errors: NM_EINVAL (bad config or
 * channel name - the detail says which), NM_EEXIST / NM_EBUSY / NM_EIO /
 * NM_ECLOSED (from RedEX), NM_ESHUTDOWN (the fold stopped during the
 * catch-up, e.g. a bad event under NM_CORTEX_STOP: the detail names it),
 * NM_ENOMEM. */
NM_API int nm_cortex_tasks_open(nm_redex *rx, const nm_cortex_config *cfg,
                                nm_cortex_tasks **out);

/* nm_cortex_tasks_close - stop the fold, end every watch (NM_ECLOSED),
 * close the log handle. Later calls return NM_ECLOSED (reads of the last
 * state keep working: find/count/snapshot); waits in progress return
 * NM_ECLOSED. Idempotent. NULL-safe. */
NM_API void nm_cortex_tasks_close(nm_cortex_tasks *t);

/* nm_cortex_tasks_free - close and release. Watches stay valid until
 * nm_cortex_watch_close. NULL-safe. */
NM_API void nm_cortex_tasks_free(nm_cortex_tasks *t);

/* Writes: append one event and return its token in *tok (may be NULL).
 * They do not wait for the fold. Errors: NM_EINVAL (NULL handle, title
 * NULL or not UTF-8), NM_ECLOSED, and RedEX's append errors
 * (NM_EBACKPRESSURE, NM_EIO, NM_ETOOBIG). Upstream's fold semantics:
 * create inserts or overwrites (Pending, created = updated = now_ns);
 * rename/complete on an unknown id do nothing; delete removes. */
NM_API int nm_cortex_tasks_create(nm_cortex_tasks *t, uint64_t id,
                                  const char *title, uint64_t now_ns,
                                  nm_write_token *tok);
NM_API int nm_cortex_tasks_rename(nm_cortex_tasks *t, uint64_t id,
                                  const char *new_title, uint64_t now_ns,
                                  nm_write_token *tok);
NM_API int nm_cortex_tasks_complete(nm_cortex_tasks *t, uint64_t id,
                                    uint64_t now_ns, nm_write_token *tok);
NM_API int nm_cortex_tasks_delete(nm_cortex_tasks *t, uint64_t id,
                                  nm_write_token *tok);

/* nm_cortex_tasks_wait_for_seq - wait until the fold has processed seq
 * (applied or, under LOG_AND_CONTINUE, skipped). timeout_ms < 0 = forever,
 * 0 = poll. seqs below the start seq are done at once. NM_OK,
 * NM_ETIMEDOUT, NM_ESHUTDOWN (the fold stopped before seq; the detail
 * gives the folded seq and why), NM_ECLOSED (closed). */
NM_API int nm_cortex_tasks_wait_for_seq(nm_cortex_tasks *t, uint64_t seq,
                                        int timeout_ms);

/* nm_cortex_tasks_wait_for_token - read-your-writes: wait until state
 * reflects every event through tok->seq (the applied watermark).
 * timeout_ms as above (0 = poll_for_token). Returns NM_OK only when
 * state reflects the write. Errors: NM_EINVAL (tok from another origin;
 * the detail names both), NM_ETIMEDOUT, NM_ESHUTDOWN (the fold stopped
 * first; the detail reports applied_through_seq and why - it is also in
 * nm_cortex_tasks_status), NM_ECLOSED, or the error of a skipped event
 * (e.g. NM_EDECODE) when a LOG_AND_CONTINUE fold skipped an event at or
 * before tok->seq: state will never reflect every write through it. */
NM_API int nm_cortex_tasks_wait_for_token(nm_cortex_tasks *t,
                                          const nm_write_token *tok,
                                          int timeout_ms);

/* nm_cortex_tasks_status - the watermarks and fold state now. */
NM_API int nm_cortex_tasks_status(nm_cortex_tasks *t, nm_cortex_status *st);

/* nm_cortex_tasks_origin - the origin this handle stamps and accepts. */
NM_API uint64_t nm_cortex_tasks_origin(const nm_cortex_tasks *t);

/* Queries (the state as of the fold's watermark). */

/* nm_cortex_tasks_find_unique - the task with this id, copied into *out
 * (0 or 1 item; free with nm_cortex_task_list_free). NM_OK when found,
 * NM_ENOTFOUND (out->count == 0) otherwise. For lookups in a loop use the
 * read guard below: it is a bare hash lookup. */
NM_API int nm_cortex_tasks_find_unique(nm_cortex_tasks *t, uint64_t id,
                                       nm_cortex_task_list *out);

/* nm_cortex_tasks_find_many - the matching tasks in the filter's order,
 * at most limit. f NULL = all. Errors: NM_EINVAL (bad filter: size,
 * status or order out of range), NM_ENOMEM. */
NM_API int nm_cortex_tasks_find_many(nm_cortex_tasks *t,
                                     const nm_cortex_task_filter *f,
                                     nm_cortex_task_list *out);

/* nm_cortex_tasks_count_where - how many match (limit ignored). */
NM_API int nm_cortex_tasks_count_where(nm_cortex_tasks *t,
                                       const nm_cortex_task_filter *f,
                                       size_t *out);

/* nm_cortex_tasks_exists_where - whether any matches (stops at the
 * first). */
NM_API int nm_cortex_tasks_exists_where(nm_cortex_tasks *t,
                                        const nm_cortex_task_filter *f,
                                        bool *out);

/* nm_cortex_tasks_count - the number of tasks. */
NM_API int nm_cortex_tasks_count(nm_cortex_tasks *t, size_t *out);

/* The read guard: zero-copy access while the fold waits.
 * nm_cortex_tasks_read_begin takes the state's read lock (the fold
 * cannot apply until nm_cortex_tasks_read_end; hold it briefly) and
 * returns a view; nm_cortex_tasks_view_get is a hash lookup whose result
 * (NULL when absent) is valid until read_end; nm_cortex_tasks_view_at
 * walks the tasks in storage order (i < view_count). The view belongs
 * to the calling thread; do not call other functions of this handle
 * that lock the state from inside the guard. */
typedef struct nm_cortex_tasks_view nm_cortex_tasks_view;
NM_API const nm_cortex_tasks_view *
nm_cortex_tasks_read_begin(nm_cortex_tasks *t);
NM_API const nm_cortex_task *
nm_cortex_tasks_view_get(const nm_cortex_tasks_view *v, uint64_t id);
NM_API size_t nm_cortex_tasks_view_count(const nm_cortex_tasks_view *v);
NM_API const nm_cortex_task *
nm_cortex_tasks_view_at(const nm_cortex_tasks_view *v, size_t i);
NM_API void nm_cortex_tasks_read_end(const nm_cortex_tasks_view *v);

/* ------------------------------------------------------------- watches */

typedef struct nm_cortex_watch nm_cortex_watch;

/* nm_cortex_tasks_watch - a stream of results of f (copied): the first
 * nm_cortex_watch_next_tasks returns the current result, every later one
 * returns a new result when it differs from the previous one (re-run
 * after each fold batch; intermediate states of a burst may collapse).
 * A watch with NM_CORTEX_ORDER_NONE orders by id (so only real changes
 * are emitted). Errors: NM_EINVAL, NM_ECLOSED, NM_ENOMEM, NM_EIO (no
 * eventfd). */
NM_API int nm_cortex_tasks_watch(nm_cortex_tasks *t,
                                 const nm_cortex_task_filter *f,
                                 nm_cortex_watch **out);

/* nm_cortex_tasks_snapshot_and_watch - the current result in *snapshot
 * (caller-owned) and a watch that skips leading results equal to it: a
 * change that races the construction is delivered, an unchanged state
 * is not delivered twice. */
NM_API int nm_cortex_tasks_snapshot_and_watch(nm_cortex_tasks *t,
                                              const nm_cortex_task_filter *f,
                                              nm_cortex_task_list *snapshot,
                                              nm_cortex_watch **out);

/* nm_cortex_watch_next_tasks - wait up to timeout_ms (< 0 forever, 0
 * poll) for the next result. NM_OK: *out is caller-owned. NM_ETIMEDOUT:
 * no new result. NM_ECLOSED: the model was closed (or the watch
 * cancelled). NM_ESHUTDOWN: the fold stopped and the last result was
 * delivered. NM_EINVAL: not a tasks watch. One caller at a time per
 * watch. */
NM_API int nm_cortex_watch_next_tasks(nm_cortex_watch *w,
                                      nm_cortex_task_list *out,
                                      int timeout_ms);
/* nm_cortex_watch_next_memories - the same for a memories watch. */
NM_API int nm_cortex_watch_next_memories(nm_cortex_watch *w,
                                         nm_cortex_memory_list *out,
                                         int timeout_ms);

/* nm_cortex_watch_fd - an eventfd that polls readable whenever the state
 * changed since the last next (and at first, and for good once the
 * stream ended): then next(w, &l, 0) may return a result, or
 * NM_ETIMEDOUT when the change did not alter this watch's result. Owned
 * by the watch. */
NM_API int nm_cortex_watch_fd(const nm_cortex_watch *w);

/* nm_cortex_watch_cancel - wake a blocked next; later ones return
 * NM_ECLOSED. Safe from any thread. */
NM_API void nm_cortex_watch_cancel(nm_cortex_watch *w);

/* nm_cortex_watch_close - cancel and release. Valid after the model was
 * closed or freed. NULL-safe. */
NM_API void nm_cortex_watch_close(nm_cortex_watch *w);

/* ----------------------------------------------------------- snapshots */

/* A model snapshot: upstream's typed snapshot bytes (postcard
 * {app_seq u64, inner Vec<u8> = postcard(state)}) and the applied
 * watermark it reflects (has_last_seq false = nothing applied). */
typedef struct nm_cortex_snapshot {
    uint8_t *state;
    size_t len;
    bool has_last_seq;
    uint64_t last_seq;
} nm_cortex_snapshot;

/* nm_cortex_snapshot_free - NULL-safe; leaves *s empty. */
NM_API void nm_cortex_snapshot_free(nm_cortex_snapshot *s);

/* nm_cortex_tasks_snapshot - the state and its applied watermark, taken
 * under one read lock (consistent). Errors: NM_ENOMEM, NM_EINVAL. */
NM_API int nm_cortex_tasks_snapshot(nm_cortex_tasks *t,
                                    nm_cortex_snapshot *out);

/* nm_cortex_tasks_open_from_snapshot - open with the state of snap and
 * fold from snap->last_seq + 1 (0 when it has none); cfg->start is
 * ignored. The snapshot must come from this log (the same channel of
 * the same manager or directory): one whose last_seq is at or past the
 * log's next seq is refused with NM_EINVAL. Errors: as
 * nm_cortex_tasks_open, plus NM_EDECODE (malformed snapshot bytes, or
 * last_seq == UINT64_MAX). */
NM_API int nm_cortex_tasks_open_from_snapshot(nm_redex *rx,
                                              const nm_cortex_config *cfg,
                                              const nm_cortex_snapshot *snap,
                                              nm_cortex_tasks **out);

/* ============================================================= memories */

typedef struct nm_cortex_memories nm_cortex_memories;

/* Same contracts as the tasks functions of the same names. */
NM_API int nm_cortex_memories_open(nm_redex *rx, const nm_cortex_config *cfg,
                                   nm_cortex_memories **out);
NM_API int nm_cortex_memories_open_from_snapshot(
    nm_redex *rx, const nm_cortex_config *cfg, const nm_cortex_snapshot *snap,
    nm_cortex_memories **out);
NM_API void nm_cortex_memories_close(nm_cortex_memories *m);
NM_API void nm_cortex_memories_free(nm_cortex_memories *m);

/* store: upsert - a new id gets created = updated = now_ns, unpinned; an
 * existing one keeps created_ns and pinned and takes the rest. tags may
 * be NULL when ntags is 0; source NULL = "". retag replaces the tags;
 * pin / unpin set pinned; all three set updated_ns and do nothing on an
 * unknown id. Errors as the task writes. */
NM_API int nm_cortex_memories_store(nm_cortex_memories *m, uint64_t id,
                                    const char *content,
                                    const char *const *tags, size_t ntags,
                                    const char *source, uint64_t now_ns,
                                    nm_write_token *tok);
NM_API int nm_cortex_memories_retag(nm_cortex_memories *m, uint64_t id,
                                    const char *const *tags, size_t ntags,
                                    uint64_t now_ns, nm_write_token *tok);
NM_API int nm_cortex_memories_pin(nm_cortex_memories *m, uint64_t id,
                                  uint64_t now_ns, nm_write_token *tok);
NM_API int nm_cortex_memories_unpin(nm_cortex_memories *m, uint64_t id,
                                    uint64_t now_ns, nm_write_token *tok);
NM_API int nm_cortex_memories_delete(nm_cortex_memories *m, uint64_t id,
                                     nm_write_token *tok);

NM_API int nm_cortex_memories_wait_for_seq(nm_cortex_memories *m, uint64_t seq,
                                           int timeout_ms);
NM_API int nm_cortex_memories_wait_for_token(nm_cortex_memories *m,
                                             const nm_write_token *tok,
                                             int timeout_ms);
NM_API int nm_cortex_memories_status(nm_cortex_memories *m,
                                     nm_cortex_status *st);
NM_API uint64_t nm_cortex_memories_origin(const nm_cortex_memories *m);

NM_API int nm_cortex_memories_find_unique(nm_cortex_memories *m, uint64_t id,
                                          nm_cortex_memory_list *out);
NM_API int nm_cortex_memories_find_many(nm_cortex_memories *m,
                                        const nm_cortex_memory_filter *f,
                                        nm_cortex_memory_list *out);
NM_API int nm_cortex_memories_count_where(nm_cortex_memories *m,
                                          const nm_cortex_memory_filter *f,
                                          size_t *out);
NM_API int nm_cortex_memories_exists_where(nm_cortex_memories *m,
                                           const nm_cortex_memory_filter *f,
                                           bool *out);
NM_API int nm_cortex_memories_count(nm_cortex_memories *m, size_t *out);

typedef struct nm_cortex_memories_view nm_cortex_memories_view;
NM_API const nm_cortex_memories_view *
nm_cortex_memories_read_begin(nm_cortex_memories *m);
NM_API const nm_cortex_memory *
nm_cortex_memories_view_get(const nm_cortex_memories_view *v, uint64_t id);
NM_API size_t nm_cortex_memories_view_count(const nm_cortex_memories_view *v);
NM_API const nm_cortex_memory *
nm_cortex_memories_view_at(const nm_cortex_memories_view *v, size_t i);
NM_API void nm_cortex_memories_read_end(const nm_cortex_memories_view *v);

NM_API int nm_cortex_memories_watch(nm_cortex_memories *m,
                                    const nm_cortex_memory_filter *f,
                                    nm_cortex_watch **out);
NM_API int nm_cortex_memories_snapshot_and_watch(
    nm_cortex_memories *m, const nm_cortex_memory_filter *f,
    nm_cortex_memory_list *snapshot, nm_cortex_watch **out);

NM_API int nm_cortex_memories_snapshot(nm_cortex_memories *m,
                                       nm_cortex_snapshot *out);

/* ================================================================ NetDb */

typedef struct nm_netdb_config {
    uint32_t size;        /* set by nm_netdb_config_init */
    uint64_t origin_hash; /* producer identity, default 0 */
    bool with_tasks;      /* default false; at least one model needed */
    bool with_memories;
    /* The RedEX manager to use (not owned; must outlive the db). NULL
     * (default): the db opens its own, on `dir` (NULL = in memory). */
    nm_redex *redex;
    const char *dir;
    /* Logs on disk under the manager's directory (default false). */
    bool persistent;
    /* Further log settings (fsync, retention); its persistent flag is
     * replaced by `persistent`. NULL = RedEX defaults. */
    const nm_redex_file_config *file;
    nm_cortex_on_error on_error; /* default NM_CORTEX_STOP */
} nm_netdb_config;

NM_API void nm_netdb_config_init(nm_netdb_config *cfg);

typedef struct nm_netdb nm_netdb;

/* nm_netdb_open - build the db: open the enabled models (tasks first).
 * Errors: NM_EINVAL (no model enabled - upstream's NoModelsEnabled -,
 * persistent without a directory, bad size), and the model open errors.
 * On failure nothing stays open. */
NM_API int nm_netdb_open(const nm_netdb_config *cfg, nm_netdb **out);

/* nm_netdb_tasks / nm_netdb_memories - the model handles (owned by the
 * db, valid until nm_netdb_free), NULL when not enabled. */
NM_API nm_cortex_tasks *nm_netdb_tasks(nm_netdb *db);
NM_API nm_cortex_memories *nm_netdb_memories(nm_netdb *db);

/* nm_netdb_close - close every model (and the manager the db opened).
 * Idempotent; NULL-safe. nm_netdb_free - close and release. */
NM_API void nm_netdb_close(nm_netdb *db);
NM_API void nm_netdb_free(nm_netdb *db);

/* NetDbSnapshot: each model's snapshot, when the model is enabled. */
typedef struct nm_netdb_snapshot {
    bool has_tasks;
    nm_cortex_snapshot tasks;
    bool has_memories;
    nm_cortex_snapshot memories;
} nm_netdb_snapshot;

/* nm_netdb_snapshot_take - snapshot every model (tasks first; no cross-model
 * consistency, as upstream). Free with nm_netdb_snapshot_free. */
NM_API int nm_netdb_snapshot_take(nm_netdb *db, nm_netdb_snapshot *out);
NM_API void nm_netdb_snapshot_free(nm_netdb_snapshot *s);

/* nm_netdb_snapshot_encode - postcard of upstream's NetDbSnapshot
 * {tasks: Option<(Vec<u8>, Option<u64>)>, memories: same}. *out is
 * malloc'd (free()). Errors: NM_EINVAL, NM_ENOMEM. */
NM_API int nm_netdb_snapshot_encode(const nm_netdb_snapshot *s, uint8_t **out,
                                    size_t *len);

/* nm_netdb_snapshot_decode - the inverse; also checks that each model's
 * bytes decode as that model's snapshot. Trailing bytes are ignored (as
 * postcard::from_bytes). Errors: NM_EDECODE (the detail says where),
 * NM_EINVAL, NM_ENOMEM. */
NM_API NM_NODISCARD int nm_netdb_snapshot_decode(const uint8_t *buf,
                                                 size_t len,
                                                 nm_netdb_snapshot *out);

/* nm_netdb_open_from_snapshot - build the db with each enabled model
 * restored from its part of s and folding from its last_seq + 1; an
 * enabled model absent from s starts empty and replays its whole log.
 * Errors: as nm_netdb_open, NM_EINVAL (s holds a model the config does
 * not enable), NM_EDECODE. */
NM_API int nm_netdb_open_from_snapshot(const nm_netdb_config *cfg,
                                       const nm_netdb_snapshot *s,
                                       nm_netdb **out);

NM_END_DECLS

#endif
