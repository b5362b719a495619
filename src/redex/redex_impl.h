/*
 * src/redex/redex_impl.h - internals of RedEX.
 *
 *   codec.c    the 20-byte index record, the 16-byte REDM manifest, the
 *              payload checksum (the only byte-level decoders; fuzzed)
 *   scan.c     the read-only validator of one generation (pread based):
 *              used by recovery, `netmesh log check|dump|tail`
 *   disk.c     channel directories, manifest resolution, generations,
 *              mapped regions, the fsync pool
 *   file.c     one log: append, read, tail, retention, compaction, sync
 *   manager.c  the manager: open/close files, the sweep thread
 *
 * A log is three regions - idx (20 B per record), dat (heap payloads back
 * to back), ts (8 B per record) - each either an anonymous mapping (in
 * memory) or a shared mapping of the generation's file (persistent). Record
 * i of the current generation has seq gen_first + i; its idx record is at
 * i * 20 and its ts at i * 8. Seqs are dense, so nothing else is indexed.
 */
#ifndef NMI_REDEX_IMPL_H
#define NMI_REDEX_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <netmesh/redex.h>

#include "core/core.h"

/* ------------------------------------------------------------- codec */

#define NMI_RX_REC 20
#define NMI_RX_TS 8
#define NMI_RX_MANIFEST 16
#define NMI_RX_CKSUM_MASK 0x0FFFFFFFu
#define NMI_RX_FLAG_MASK 0xF0000000u
#define NMI_RX_FLAGS_KNOWN                                                    \
    (NM_REDEX_FLAG_INLINE | NM_REDEX_FLAG_TOMBSTONE | NM_REDEX_FLAG_COMPACTED)
#define NMI_RX_MANIFEST_VERSION 1

typedef struct nmi_rx_rec {
    uint64_t seq;
    uint32_t off; /* heap: payload offset (low 32 bits); inline: bytes 0..4 */
    uint32_t len; /* heap: payload length; inline: bytes 4..8 */
    uint32_t fc;  /* flags (top nibble) | checksum (low 28 bits) */
} nmi_rx_rec;

/* The 20-byte index record (inline: the append and tail paths). */
static inline void
nmi_rx_rec_encode(const nmi_rx_rec *r, uint8_t out[NMI_RX_REC])
{
    nmi_store_le64(out, r->seq);
    nmi_store_le32(out + 8, r->off);
    nmi_store_le32(out + 12, r->len);
    nmi_store_le32(out + 16, r->fc);
}

static inline void
nmi_rx_rec_decode(const uint8_t in[NMI_RX_REC], nmi_rx_rec *r)
{
    r->seq = nmi_load_le64(in);
    r->off = nmi_load_le32(in + 8);
    r->len = nmi_load_le32(in + 12);
    r->fc = nmi_load_le32(in + 16);
}
/* xxh3-64(p[0..n)) & 0x0FFFFFFF */
uint32_t nmi_rx_checksum(const void *p, size_t n);
/* The 8 inline payload bytes of an inline record. */
void nmi_rx_rec_inline(const nmi_rx_rec *r, uint8_t out[8]);
/* A record's payload length as read back (8 for inline records). */
static inline uint32_t
nmi_rx_rec_paylen(const nmi_rx_rec *r)
{
    return (r->fc & NM_REDEX_FLAG_INLINE) ? 8u : r->len;
}
/* Bytes of dat a record occupies (0 for inline records). */
static inline uint32_t
nmi_rx_rec_datlen(const nmi_rx_rec *r)
{
    return (r->fc & NM_REDEX_FLAG_INLINE) ? 0u : r->len;
}

void nmi_rx_manifest_encode(uint32_t gen, uint8_t out[NMI_RX_MANIFEST]);
/* NM_OK and *gen, or NM_EDECODE with a detail (wrong size, magic,
 * version, reserved bytes, generation 0, checksum). */
int nmi_rx_manifest_decode(const uint8_t *in, size_t n, uint32_t *gen);

/* -------------------------------------------------------------- scan */

typedef enum nmi_rx_end {
    NMI_RX_END_CLEAN = 0,   /* the data simply ends (maybe zero slack) */
    NMI_RX_END_TORN = 1,    /* an incomplete last record */
    NMI_RX_END_CORRUPT = 2, /* a record failed its checks, data follows */
} nmi_rx_end;

typedef struct nmi_rx_scan_rec {
    uint64_t index;  /* position in the generation */
    uint64_t off64;  /* heap: full dat offset; inline: dat end before it */
    uint64_t ts;     /* as stored, or substituted when missing */
    bool ts_missing; /* the stored timestamp was absent or 0 */
    nmi_rx_rec rec;
    const uint8_t *payload; /* only with want_payload; valid in the cb */
    uint32_t paylen;
} nmi_rx_scan_rec;

/* Return NM_OK to go on, anything else stops the scan with that code. */
typedef int (*nmi_rx_scan_cb)(void *ctx, const nmi_rx_scan_rec *r);

typedef struct nmi_rx_scan {
    /* Inputs. ts_fd may be -1 (no ts file). */
    int idx_fd, dat_fd, ts_fd;
    bool want_payload;
    /* Hold back a last valid record whose timestamp is missing: a live
     * writer has not finished it yet (readers following a writer). */
    bool ts_required;
    uint64_t fill_ts;    /* timestamp for a missing first one */
    uint64_t from_index; /* callbacks start here (records before are still
                            validated) */
    /* Resume after a previous scan of the same files: trust records
     * [0, resume_nrec) and continue from there (resume_nrec = 0: from the
     * start). The fields are a previous scan's nrec, first_seq, dat_end,
     * last_ts. */
    uint64_t resume_nrec, resume_first_seq, resume_dat_end, resume_last_ts;
    /* Outputs. */
    uint64_t idx_size, dat_size, ts_size; /* physical */
    uint64_t nrec;                        /* valid records */
    uint64_t first_seq;                   /* seq of record 0 (when nrec > 0) */
    uint64_t last_ts;
    uint64_t dat_end;   /* logical end of dat */
    uint64_t ts_filled; /* valid records with a missing timestamp */
    nmi_rx_end end;
    uint64_t dropped; /* complete non-zero records after the cut */
    char why[256];    /* the first bad record, when end != CLEAN */
} nmi_rx_scan;

/* Validate one generation. NM_OK (see s->end), NM_EIO, NM_ENOMEM or the
 * callback's code. The rules are in docs/storage.md ("Recovery"). */
int nmi_rx_scan_run(nmi_rx_scan *s, nmi_rx_scan_cb cb, void *ctx);

/* -------------------------------------------------------------- disk */

/* "v%010u" */
void nmi_rx_gen_name(uint32_t gen, char out[16]);
/* Is `name` exactly "v" + 10 digits with a value >= 1? */
bool nmi_rx_gen_parse(const char *name, uint32_t *gen);

typedef struct nmi_rx_resolved {
    uint32_t gen;
    bool manifest_ok; /* the manifest named a complete generation */
    bool fallback;    /* chose the highest complete generation */
    bool migrated;    /* moved a legacy flat idx/dat/ts into v1 */
    bool created;     /* brand-new channel */
} nmi_rx_resolved;

/* Resolve (and, when `repair`, fix up: rewrite the manifest, migrate a
 * flat layout, create generation 1) the live generation of the channel
 * directory `dfd`. Without repair, NM_ENOTFOUND when there is none. */
int nmi_rx_resolve_gen(int dfd, bool repair, nmi_rx_resolved *out);
/* Write the manifest: manifest.tmp, fsync, rename, fsync dir. */
int nmi_rx_manifest_write(int dfd, uint32_t gen);
/* fsync a directory fd. */
int nmi_rx_fsync_dir(int dfd);
/* Delete v<gen>/ (its three files and the directory); best effort. */
void nmi_rx_gen_delete(int dfd, uint32_t gen);
/* Delete every v<N>/ except `keep`, and manifest.tmp; best effort. */
void nmi_rx_gen_sweep(int dfd, uint32_t keep);
/* Open the channel directory, creating it (and its parents) if `create`. */
int nmi_rx_open_channel_dir(const char *base, const char *channel, bool create,
                            int *dfd);

/* A growable mapping of one of idx/dat/ts. */
typedef struct nmi_rx_region {
    uint8_t *map;
    uint64_t cap;      /* bytes mapped (= file size when fd >= 0) */
    uint64_t end;      /* logical end */
    uint64_t released; /* [0, released) dropped from memory (page aligned);
                          reads there use pread */
    int fd;            /* -1: anonymous */
    /* [0, ready) may be written without faulting memory in first: for
     * anonymous regions what has been faulted in (the log's mutex guards
     * it), for files the whole mapping (= cap). */
    uint64_t ready;
} nmi_rx_region;

/* Region capacities are multiples of this (lcm of 20 and the page), except
 * anonymous regions of NMI_RX_HUGE_MIN and more, whose capacities are
 * multiples of NMI_RX_HUGE (or clamped to a page multiple by a limit). */
#define NMI_RX_GRAIN 20480u
/* Anonymous regions from this size on use transparent huge pages. */
#define NMI_RX_HUGE_MIN (128u << 10)
/* The huge page size (x86-64, arm64 with 4 KiB pages). */
#define NMI_RX_HUGE (2u << 20)

/* The system page size. */
uint64_t nmi_rx_page(void);
void nmi_rx_region_anon(nmi_rx_region *r);
/* Map fd (already truncated to `end`) with room after end. */
int nmi_rx_region_file(nmi_rx_region *r, int fd, uint64_t end);
/* Make [0, need) writable (need <= cap afterwards; idx keeps one spare
 * record of zero slack), and fault in up to 4 MiB past need of the new
 * room of an anonymous region. NM_EIO / NM_ENOMEM. */
int nmi_rx_region_reserve(nmi_rx_region *r, uint64_t need);
/* nmi_rx_region_reserve with choices for anonymous regions: huge - may
 * use huge pages (capacities of NMI_RX_HUGE_MIN and more then grow in
 * whole huge pages); populate - fault in the new room up to 4 MiB past
 * need now (ready follows), else the caller does (nmi_rx_populate). The
 * mapping may move. */
int nmi_rx_region_reserve_lim(nmi_rx_region *r, uint64_t need, bool huge,
                              bool populate);
/* New faults in an anonymous region use 4 KiB pages (the huge pages it
 * has stay). */
void nmi_rx_region_nohuge(nmi_rx_region *r);
/* Give [from, to) (page-aligned, inside the mapping) of an anonymous
 * region back to the system; it reads as zeros afterwards. */
void nmi_rx_region_discard(nmi_rx_region *r, uint64_t from, uint64_t to);
/* Fault in [from, to) of a mapping (page-rounded outward by the kernel's
 * rules; huge pages where the mapping allows them). Best effort. */
void nmi_rx_populate(uint8_t *map, uint64_t from, uint64_t to);
/* Drop [released, upto) (page floor) from memory. */
void nmi_rx_region_release(nmi_rx_region *r, uint64_t upto);
int nmi_rx_region_read(const nmi_rx_region *r, uint64_t off, void *dst,
                       size_t len);
/* Unmap; when `truncate` (files) set the file size to `end` first. The fd
 * is NOT closed. */
int nmi_rx_region_unmap(nmi_rx_region *r, bool truncate);

/* A tiny pool that runs fdatasync on several fds in parallel. */
typedef struct nmi_rx_pool nmi_rx_pool;
int nmi_rx_pool_start(nmi_rx_pool **out);
void nmi_rx_pool_stop(nmi_rx_pool *p);
/* fdatasync every fd (in parallel when the pool is running; p may be
 * NULL). NM_OK or NM_EIO with the first failure in the detail. */
int nmi_rx_fsync_all(nmi_rx_pool *p, const int *fds, int n);

/* Read exactly len bytes at off (short file -> NM_EIO "short read"). */
int nmi_rx_pread_full(int fd, void *dst, size_t len, uint64_t off);
int nmi_rx_write_full(int fd, const void *src, size_t len);

/* -------------------------------------------------------------- file */

typedef struct nmi_rx_tailq nmi_rx_tailq;

/* Normalized fsync policy. */
typedef enum nmi_rx_sync_mode {
    NMI_RX_SYNC_NONE = 0,
    NMI_RX_SYNC_ALWAYS = 1,
    NMI_RX_SYNC_BG = 2, /* background: every_n / interval / bytes arms */
} nmi_rx_sync_mode;

typedef struct nmi_rx_ck {
    uint64_t index; /* record position */
    uint64_t off;   /* dat end before that record */
} nmi_rx_ck;

typedef struct nmi_rx_core nmi_rx_core;

struct nmi_rx_core {
    pthread_mutex_t mu;
    nm_redex *mgr;
    char *channel;
    nm_redex_file_config cfg;
    bool persistent;
    bool closed;
    int io_err; /* sticky: a failed fsync/grow poisons appends */
    _Atomic int refs;
    int nhandles;

    /* The log. */
    uint64_t gen_first; /* seq of record 0 of the regions */
    uint64_t low;       /* lowest retained seq */
    uint64_t next;      /* next seq */
    nmi_rx_region idx, dat, ts;
    uint64_t low_dat;    /* dat offset of record `low` */
    uint64_t live_bytes; /* 20 + heap bytes of [low, next) */
    nmi_rx_ck *ck;
    size_t nck, ck_cap;

    /* In-memory window of persistent files: [cache_lo, next). */
    uint64_t cache_lo, cache_dat, resident;

    /* Timestamps: wall = anchor_wall + (fast - anchor_fast). */
    uint64_t anchor_wall, anchor_fast;

    /* Tails. */
    nm_redex_tail **tails; /* every open tail */
    size_t ntails, tails_cap;
    nm_redex_tail **armed; /* caught-up tails waiting for an append */
    size_t narmed, armed_cap;

    /* Sync. sync_mu is held across an fsync round (and compaction,
     * close); order: sync_mu -> mu. */
    pthread_mutex_t sync_mu;
    nmi_rx_sync_mode sync_mode;
    uint64_t durable; /* seqs < durable are on stable storage (sync_mu) */
    _Atomic uint64_t durable_pub;
    uint64_t unsynced_n, unsynced_bytes;
    uint64_t unsynced_since; /* fastclock of the first unsynced append */
    uint64_t every_n, max_bytes, interval_ns;
    bool sync_req, syncer_stop, syncer_running;
    pthread_cond_t sync_cv; /* with mu; CLOCK_MONOTONIC */
    pthread_t syncer;

    /* Disk. */
    int dfd; /* channel directory, flock(LOCK_EX) */
    uint32_t gen;
    uint64_t compactions;

    /* Recovery report. */
    uint64_t rec_kept, rec_dropped, rec_ts_filled;
    bool rec_torn, rec_corrupt;

    /* Memory of in-memory logs (file.c "memory"), under mu. */
    bool mem_small;    /* near the cap: 4 KiB pages, no room ahead */
    uint64_t mem_mark; /* re-check the room once used passes it */

    /* `next` for tails that wait without mu (written under mu, after the
     * record; its own cache line, so a watching tail does not steal the
     * writer's). */
    _Alignas(NMI_CACHELINE) _Atomic uint64_t next_pub;
    /* `closed` for readers that do not take mu (a tail delivering from
     * its own buffer, once per record). Set under mu together with
     * closed; on a line nobody writes otherwise, so those reads never
     * touch a line the writer is writing. */
    _Alignas(NMI_CACHELINE) _Atomic bool closed_pub;
    /* Tails of an in-memory log copying records out of the regions
     * without mu (taken under mu, dropped after the copy). Whoever moves,
     * unmaps or releases region memory waits for 0 under mu first. */
    _Alignas(NMI_CACHELINE) _Atomic unsigned pins;
    /* spinning before sleeping is allowed (more than one CPU online) */
    bool spin_ok;
};

struct nm_redex_file {
    nmi_rx_core *c;
    bool closed; /* under c->mu */
    nm_redex_file *mgr_next;
};

struct nm_redex {
    pthread_mutex_t mu;
    char *dir; /* NULL: memory only */
    bool closed;
    nmi_rx_core **open; /* open logs */
    size_t nopen, open_cap;
    nm_redex_file *handles; /* every handle ever given out */
    nmi_rx_core **all;      /* every core created (refs held) */
    size_t nall, all_cap;
    nmi_rx_pool *pool;
    uint32_t sweep_ms;
    bool sweeper_running, sweeper_stop;
    pthread_cond_t sweep_cv;
    pthread_t sweeper;
};

/* file.c */
int nmi_rx_core_open(nm_redex *mgr, const char *channel,
                     const nm_redex_file_config *cfg, nmi_rx_core **out);
/* Close the log (last handle / manager close). */
int nmi_rx_core_close(nmi_rx_core *c);
void nmi_rx_core_unref(nmi_rx_core *c);
/* Retention sweep (+ compaction when due) of an open log. */
int64_t nmi_rx_core_sweep(nmi_rx_core *c);
/* Tests: shift RedEX's wall clock (timestamps, age retention). */
void nmi_rx_set_clock_skew(int64_t ns);
/* Normalize and validate a file config (NM_EINVAL with a detail). */
int nmi_rx_cfg_check(const nm_redex_file_config *cfg, bool have_dir);
/* NULL when equal, else the name of the first differing field. */
const char *nmi_rx_cfg_diff(const nm_redex_file_config *a,
                            const nm_redex_file_config *b);
/* Shared wall-clock source (TSC-backed, calibrated once per process). */
uint64_t nmi_rx_fast_now(void);
uint64_t nmi_rx_wall_now(void);

#endif
