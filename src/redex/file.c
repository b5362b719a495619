/*
 * src/redex/file.c - one RedEX log.
 *
 * Appends take the file mutex, copy the payload into the dat region, the
 * 20-byte record into idx and the timestamp into ts (in that order, with a
 * release fence between: a process killed mid-append leaves at most an
 * incomplete last record, which recovery cuts), bump next, wake waiting
 * tails, and leave. For persistent files the regions are shared mappings
 * of the generation's files, so the bytes are in the page cache the moment
 * append returns: a kill -9 loses nothing that was acknowledged.
 *
 * fsync runs outside the file mutex under sync_mu (leader/follower group
 * commit: whoever holds sync_mu fsyncs everything appended so far; waiters
 * behind it usually find their record already durable).
 *
 * Tails are cursors: a reader stages a batch under the mutex (of an
 * in-memory log only the index records, pinning the regions to copy the
 * rest without it), and when caught up watches next_pub for a moment
 * before it arms itself (under the mutex) and sleeps on its eventfd; an
 * append signals armed tails only. In-memory logs fault their memory in
 * just ahead of the writer ("memory" below).
 */
#define _GNU_SOURCE
#include "redex/redex_impl.h"
#include "core/evfd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <netmesh/name.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#define XXH_INLINE_ALL
#include <xxhash.h>
#pragma GCC diagnostic pop

#define CK_SPAN (1ull << 31)
#define COMPACT_MIN (64u << 10)
#define WALK_CHUNK 256u
#define TAIL_BYTES (1u << 20)

/* ------------------------------------------------------------- clocks */

static pthread_once_t clk_once = PTHREAD_ONCE_INIT;
static nmi_fastclock clk;
static _Atomic int64_t clock_skew; /* tests only: nmi_rx_set_clock_skew */

static void
clk_init(void)
{
    nmi_fastclock_init(&clk);
}

uint64_t
nmi_rx_fast_now(void)
{
    pthread_once(&clk_once, clk_init);
    return nmi_fastclock_now(&clk);
}

uint64_t
nmi_rx_wall_now(void)
{
    return nmi_wall_ns() + (uint64_t)atomic_load(&clock_skew);
}

void
nmi_rx_set_clock_skew(int64_t ns)
{
    atomic_store(&clock_skew, ns);
}

/* nmi_fastclock_now, inlined for the append path. */
static inline uint64_t
fast_now(void)
{
#if defined(__x86_64__)
    if (nmi_likely(clk.use_tsc)) {
        uint64_t t = __rdtsc();
        if (nmi_unlikely(t < clk.base_tsc)) {
            return 0;
        }
        return (uint64_t)(((unsigned __int128)(t - clk.base_tsc) * clk.mult) >>
                          clk.shift);
    }
#endif
    return nmi_fastclock_now(&clk);
}

/* Timestamp of a record appended now; caller holds c->mu. */
static inline uint64_t
core_ts(nmi_rx_core *c)
{
    uint64_t f = fast_now();
    if (nmi_unlikely(f - c->anchor_fast > 1000000000ull)) {
        c->anchor_wall = nmi_wall_ns();
        c->anchor_fast = nmi_fastclock_now(&clk);
        f = c->anchor_fast;
    }
    return c->anchor_wall + (f - c->anchor_fast) +
           (uint64_t)atomic_load_explicit(&clock_skew, memory_order_relaxed);
}

static inline uint32_t
cksum(const void *p, size_t n)
{
    return (uint32_t)XXH3_64bits(p, n) & NMI_RX_CKSUM_MASK;
}

/* ------------------------------------------------------------ helpers */

/* The full dat offset of heap record `index` whose stored offset is off32:
 * the nearest checkpoint at or below it is less than 2^31 bytes back. */
static uint64_t
ck_resolve(const nmi_rx_core *c, uint64_t index, uint32_t off32)
{
    size_t lo = 0, hi = c->nck; /* ck[0].index == 0 */
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (c->ck[mid].index <= index) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    uint64_t base = c->ck[lo].off;
    return base + (uint32_t)(off32 - (uint32_t)base);
}

static int
ck_reserve(nmi_rx_core *c, size_t more)
{
    if (c->nck + more <= c->ck_cap) {
        return NM_OK;
    }
    size_t nc = c->ck_cap ? c->ck_cap * 2 : 16;
    while (nc < c->nck + more) {
        nc *= 2;
    }
    nmi_rx_ck *nv = realloc(c->ck, nc * sizeof(*nv));
    if (!nv) {
        return nmi_err(NM_ENOMEM, "checkpoint table");
    }
    c->ck = nv;
    c->ck_cap = nc;
    return NM_OK;
}

/* Record `index` starts at dat offset `off`: add a checkpoint if needed
 * (capacity reserved beforehand). */
static inline void
ck_note(nmi_rx_core *c, uint64_t index, uint64_t off)
{
    if (c->nck == 0 || off - c->ck[c->nck - 1].off >= CK_SPAN) {
        c->ck[c->nck].index = index;
        c->ck[c->nck].off = off;
        c->nck++;
    }
}

static bool
retention_set(const nmi_rx_core *c)
{
    return c->cfg.retention_max_events || c->cfg.retention_max_bytes ||
           c->cfg.retention_max_age_ns;
}

/* Read n idx records starting at seq into buf (n * 20 bytes). */
static int
read_recs(const nmi_rx_core *c, uint64_t seq, size_t n, uint8_t *buf)
{
    return nmi_rx_region_read(&c->idx, (seq - c->gen_first) * NMI_RX_REC, buf,
                              n * NMI_RX_REC);
}

static int
read_ts(const nmi_rx_core *c, uint64_t seq, uint64_t *ts)
{
    uint8_t b[8];
    int rc =
        nmi_rx_region_read(&c->ts, (seq - c->gen_first) * NMI_RX_TS, b, 8);
    *ts = nmi_load_le64(b);
    return rc;
}

/* ---------------------------------------------------------------- tails */

struct nm_redex_tail {
    nmi_rx_core *c;
    uint64_t pos; /* next seq to fetch from the log */
    int fd;
    bool armed; /* in c->armed (c->mu) */
    _Atomic bool cancelled;
    uint32_t batch;
    nm_redex_event *ev; /* payloads point into arena */
    size_t nev, iev, ev_cap;
    uint8_t *arena;
    size_t arena_cap;
    uint8_t *scratch; /* the staged heap payloads, back to back */
    size_t scratch_cap;
    /* The staged batch (tail_grab, under the log's mutex) that tail_build
     * turns into events without it. */
    size_t sk;     /* records staged */
    bool s_disk;   /* payloads came from the file: verify checksums */
    bool s_pinned; /* in-memory log: copy ts and payloads from the
                      regions in tail_build (c->pins held) */
    const uint8_t *s_pdat, *s_pts; /* pinned: where they start */
    uint64_t s_arena;              /* arena bytes the batch needs */
    uint8_t s_recs[WALK_CHUNK * NMI_RX_REC];
    uint8_t s_ts[WALK_CHUNK * NMI_RX_TS];
};

static void
wake_armed(nmi_rx_core *c)
{
    for (size_t i = 0; i < c->narmed; i++) {
        c->armed[i]->armed = false;
        nmi_evfd_signal(c->armed[i]->fd);
    }
    c->narmed = 0;
}

static int
arm(nmi_rx_core *c, nm_redex_tail *t)
{
    if (t->armed) {
        return NM_OK;
    }
    if (c->narmed == c->armed_cap) {
        size_t nc = c->armed_cap ? c->armed_cap * 2 : 8;
        nm_redex_tail **nv = realloc(c->armed, nc * sizeof(*nv));
        if (!nv) {
            return nmi_err(NM_ENOMEM, "tail wait list");
        }
        c->armed = nv;
        c->armed_cap = nc;
    }
    c->armed[c->narmed++] = t;
    t->armed = true;
    return NM_OK;
}

static void
disarm(nmi_rx_core *c, nm_redex_tail *t)
{
    if (!t->armed) {
        return;
    }
    for (size_t i = 0; i < c->narmed; i++) {
        if (c->armed[i] == t) {
            c->armed[i] = c->armed[--c->narmed];
            break;
        }
    }
    t->armed = false;
}

/* ----------------------------------------------------------- sync */

/* One fsync round covering everything appended so far. Caller holds
 * sync_mu (not mu). */
static int
sync_round(nmi_rx_core *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->closed) {
        pthread_mutex_unlock(&c->mu);
        return NM_OK; /* close fsynced */
    }
    if (c->io_err) {
        pthread_mutex_unlock(&c->mu);
        return nmi_err(NM_EIO,
                       "an earlier fsync of channel %s failed; reopen it",
                       c->channel);
    }
    uint64_t target = c->next;
    int fds[3] = {c->dat.fd, c->idx.fd, c->ts.fd};
    c->unsynced_n = 0;
    c->unsynced_bytes = 0;
    c->sync_req = false;
    nmi_rx_pool *pool = c->mgr->pool;
    pthread_mutex_unlock(&c->mu);
    int rc = nmi_rx_fsync_all(pool, fds, 3);
    if (rc) {
        pthread_mutex_lock(&c->mu);
        c->io_err = NM_EIO;
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    if (target > c->durable) {
        c->durable = target;
        atomic_store(&c->durable_pub, target);
    }
    return NM_OK;
}

/* Return once seqs < target are durable (force: run a round anyway). */
static int
sync_through(nmi_rx_core *c, uint64_t target, bool force)
{
    if (!force && atomic_load(&c->durable_pub) >= target) {
        return NM_OK;
    }
    pthread_mutex_lock(&c->sync_mu);
    int rc = NM_OK;
    if (force || c->durable < target) {
        rc = sync_round(c);
        if (!rc && c->durable < target) {
            /* closed before our record was synced by close */
            rc = nmi_err(NM_ECLOSED, "channel %s closed", c->channel);
        }
    }
    pthread_mutex_unlock(&c->sync_mu);
    return rc;
}

static void
mono_deadline(struct timespec *ts, uint64_t in_ns)
{
    uint64_t t = nmi_mono_ns() + in_ns;
    ts->tv_sec = (time_t)(t / 1000000000ull);
    ts->tv_nsec = (long)(t % 1000000000ull);
}

static void *
syncer_main(void *arg)
{
    nmi_rx_core *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->syncer_stop) {
        bool due = c->sync_req;
        uint64_t wait_ns = 0;
        if (!due && c->interval_ns && c->unsynced_n > 0) {
            uint64_t age = nmi_fastclock_now(&clk) - c->unsynced_since;
            if (age >= c->interval_ns) {
                due = true;
            } else {
                wait_ns = c->interval_ns - age;
            }
        }
        if (due) {
            pthread_mutex_unlock(&c->mu);
            pthread_mutex_lock(&c->sync_mu);
            (void)sync_round(c); /* errors are sticky in io_err */
            pthread_mutex_unlock(&c->sync_mu);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        if (wait_ns) {
            struct timespec ts;
            mono_deadline(&ts, wait_ns);
            pthread_cond_timedwait(&c->sync_cv, &c->mu, &ts);
        } else {
            pthread_cond_wait(&c->sync_cv, &c->mu);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* -------------------------------------------------------- accounting */

/* Walk records [from, from+n) in chunks: fn(ctx, seq, rec) returns false
 * to stop. Returns the number visited or a negative error. */
typedef bool (*walk_fn)(void *ctx, uint64_t seq, const nmi_rx_rec *r);

static int64_t
walk(const nmi_rx_core *c, uint64_t from, uint64_t n, walk_fn fn, void *ctx)
{
    uint8_t buf[WALK_CHUNK * NMI_RX_REC];
    uint64_t done = 0;
    while (done < n) {
        size_t k = n - done < WALK_CHUNK ? (size_t)(n - done) : WALK_CHUNK;
        int rc = read_recs(c, from + done, k, buf);
        if (rc) {
            return rc;
        }
        for (size_t j = 0; j < k; j++) {
            nmi_rx_rec r;
            nmi_rx_rec_decode(buf + j * NMI_RX_REC, &r);
            if (!fn(ctx, from + done, &r)) {
                return (int64_t)done;
            }
            done++;
        }
    }
    return (int64_t)done;
}

typedef struct sum_ctx {
    uint64_t dat;      /* dat bytes of the visited records */
    uint64_t cache_lo; /* records >= this are resident */
    uint64_t resident; /* bytes of visited resident records */
    uint64_t excess;   /* bytes retention must drop (bytes walk) */
    uint64_t acc;
} sum_ctx;

static bool
sum_fn(void *ctx, uint64_t seq, const nmi_rx_rec *r)
{
    sum_ctx *s = ctx;
    uint32_t d = nmi_rx_rec_datlen(r);
    s->dat += d;
    if (seq >= s->cache_lo) {
        s->resident += 28u + d;
    }
    return true;
}

static bool
bytes_fn(void *ctx, uint64_t seq, const nmi_rx_rec *r)
{
    (void)seq;
    sum_ctx *s = ctx;
    if (s->acc >= s->excess) {
        return false;
    }
    s->acc += NMI_RX_REC + nmi_rx_rec_datlen(r);
    return true;
}

/* Wait until no tail is copying out of the regions (tails pin them under
 * mu for a copy they make after releasing it, so holding mu, no new copy
 * starts). Before moving, unmapping or releasing region memory. Caller
 * holds mu. */
static void
wait_pins(nmi_rx_core *c)
{
    for (unsigned i = 0;
         atomic_load_explicit(&c->pins, memory_order_acquire) != 0; i++) {
        if (i < 4096) {
            nmi_cpu_relax();
        } else if (i < 4096 + 64) {
            sched_yield(); /* a copier that lost its CPU */
        } else {
            /* a copier that yielding does not let run (a real-time
             * waiter, one CPU): sleep so it can */
            struct timespec ts = {0, 50000L};
            nanosleep(&ts, NULL);
        }
    }
}

static void
release_to_cache(nmi_rx_core *c)
{
    wait_pins(c);
    uint64_t i = c->cache_lo - c->gen_first;
    nmi_rx_region_release(&c->idx, i * NMI_RX_REC);
    nmi_rx_region_release(&c->ts, i * NMI_RX_TS);
    nmi_rx_region_release(&c->dat, c->cache_dat);
}

/* Drop [low, low+k). Caller holds mu. */
static int
evict(nmi_rx_core *c, uint64_t k)
{
    if (k == 0) {
        return NM_OK;
    }
    sum_ctx s = {.cache_lo = c->persistent ? c->cache_lo : UINT64_MAX};
    int64_t r = walk(c, c->low, k, sum_fn, &s);
    if (r < 0) {
        return (int)r;
    }
    c->live_bytes -= k * NMI_RX_REC + s.dat;
    c->low += k;
    c->low_dat += s.dat;
    if (c->persistent) {
        if (c->cache_lo < c->low) {
            c->resident -= s.resident;
            c->cache_lo = c->low;
            c->cache_dat = c->low_dat;
            release_to_cache(c);
        }
    } else {
        c->cache_lo = c->low;
        c->cache_dat = c->low_dat;
        release_to_cache(c);
    }
    return NM_OK;
}

/* Shrink the in-memory window of a persistent file to 7/8 of the cap. */
static void
trim_cache(nmi_rx_core *c)
{
    uint64_t cap = c->cfg.max_memory_bytes;
    uint64_t target = cap - cap / 8;
    uint8_t b[NMI_RX_REC];
    while (c->resident > target && c->cache_lo < c->next) {
        if (read_recs(c, c->cache_lo, 1, b)) {
            break;
        }
        nmi_rx_rec r;
        nmi_rx_rec_decode(b, &r);
        uint32_t d = nmi_rx_rec_datlen(&r);
        c->resident -= 28u + d;
        c->cache_dat += d;
        c->cache_lo++;
    }
    release_to_cache(c);
}

/* How many of the oldest records retention drops at wall time `now`. */
typedef struct age_ctx {
    const nmi_rx_core *c;
    uint64_t cutoff;
    int err;
} age_ctx;

static bool
age_fn(void *ctx, uint64_t seq, const nmi_rx_rec *r)
{
    (void)r;
    age_ctx *a = ctx;
    uint64_t ts;
    a->err = read_ts(a->c, seq, &ts);
    return !a->err && ts < a->cutoff;
}

static int64_t
retention_drop(const nmi_rx_core *c, uint64_t now)
{
    uint64_t n = c->next - c->low, drop = 0;
    const nm_redex_file_config *f = &c->cfg;
    if (f->retention_max_events && n > f->retention_max_events) {
        drop = n - f->retention_max_events;
    }
    if (f->retention_max_bytes && c->live_bytes > f->retention_max_bytes) {
        sum_ctx s = {.excess = c->live_bytes - f->retention_max_bytes};
        int64_t k = walk(c, c->low, n, bytes_fn, &s);
        if (k < 0) {
            return k;
        }
        if ((uint64_t)k > drop) {
            drop = (uint64_t)k;
        }
    }
    if (f->retention_max_age_ns && now > f->retention_max_age_ns) {
        age_ctx a = {.c = c, .cutoff = now - f->retention_max_age_ns};
        int64_t k = walk(c, c->low, n, age_fn, &a);
        if (k < 0) {
            return k;
        }
        if (a.err) {
            return a.err;
        }
        if ((uint64_t)k > drop) {
            drop = (uint64_t)k;
        }
    }
    return (int64_t)drop;
}

static bool
compact_due(const nmi_rx_core *c)
{
    uint64_t dead =
        (c->low - c->gen_first) * (NMI_RX_REC + NMI_RX_TS) + c->low_dat;
    uint64_t live = (c->next - c->low) * (NMI_RX_REC + NMI_RX_TS) +
                    (c->dat.end - c->low_dat);
    return dead >= COMPACT_MIN && dead >= live;
}

/* ------------------------------------------------ memory (in memory) */

/*
 * An in-memory log's three regions are anonymous mappings; only what is
 * faulted in costs memory. Fresh memory is expensive to touch - a page
 * fault per 4 KiB page, and on some hypervisors a second, hidden one on
 * the first access - so:
 *
 * - regions of NMI_RX_HUGE_MIN and more use 2 MiB pages ("huge" regions;
 *   a region moves to a fresh mapping when it becomes one, see
 *   nmi_rx_region_reserve_lim), in logs whose cap is HUGE_LOG_MIN or more;
 * - the writer faults memory in one step ahead of use, with one
 *   MADV_POPULATE_WRITE: a huge region the huge page its next record
 *   needs, a small region its new room at growth (up to SMALL_AHEAD past
 *   the end). Just in time, on the writer's thread, so the zeroed lines
 *   are still in its cache when the records land there. (Faulting further
 *   ahead, or on another thread, measured slower.)
 *
 * Both are paid from the cap. A region holds its records plus its
 * "extra": the room faulted in past its end, and at least the rest of the
 * page its end is in (a huge page for huge regions). The accounted bytes
 * (mem_used) plus every region's extra stay within max_memory_bytes:
 * faulting in ahead only takes what the cap leaves, and once an append
 * would pass (pre_append watches mem_mark), mem_check gives the room ahead
 * back and, if that is not enough, the regions leave huge pages
 * (mem_small) until the next compaction. So resident memory never passes
 * the cap by more than the page rounding of the regions' ends.
 */
#define SMALL_AHEAD (4u << 20)
#define MEM_HYST (64u << 10)
/* Logs with a smaller cap never use huge pages (3 x 2 MiB of rounding
 * would be too large a share of it). */
#define HUGE_LOG_MIN (16u << 20)

static inline uint64_t
sat_sub(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static inline uint64_t
page_up(uint64_t x)
{
    uint64_t ps = nmi_rx_page();
    return (x + ps - 1) & ~(ps - 1);
}

static inline uint64_t
huge_up(uint64_t x)
{
    return (x + NMI_RX_HUGE - 1) & ~(uint64_t)(NMI_RX_HUGE - 1);
}

/* The bytes max_memory_bytes bounds (28 + heap payload per record).
 * Caller holds mu. */
static inline uint64_t
mem_used(const nmi_rx_core *c)
{
    return c->live_bytes + (c->next - c->low) * NMI_RX_TS;
}

/* Does r use huge pages (or will it, as it grows)? */
static inline bool
mem_huge(const nmi_rx_core *c, const nmi_rx_region *r)
{
    return !c->mem_small && r->cap >= NMI_RX_HUGE_MIN;
}

/* Memory r may hold past its end (see above). */
static uint64_t
mem_extra(const nmi_rx_core *c, const nmi_rx_region *r)
{
    if (!r->map) {
        return 0;
    }
    uint64_t unit = mem_huge(c, r) ? NMI_RX_HUGE : nmi_rx_page();
    uint64_t room = sat_sub(r->ready, r->end);
    return room > unit ? room : unit;
}

static uint64_t
mem_extra_all(const nmi_rx_core *c)
{
    return mem_extra(c, &c->idx) + mem_extra(c, &c->dat) +
           mem_extra(c, &c->ts);
}

/* pre_append calls mem_check once the accounted bytes would pass this. */
static inline void
mem_set_mark(nmi_rx_core *c)
{
    c->mem_mark = sat_sub(c->cfg.max_memory_bytes, mem_extra_all(c));
}

/* Give back each region's faulted-in room past its end, beyond the rest
 * of the page (huge page, for huge regions) the end is in; leave: also
 * leave huge pages, giving back the rest of the ends' huge pages too.
 * Caller holds mu. */
static void
mem_give_back(nmi_rx_core *c, bool leave)
{
    nmi_rx_region *rg[3] = {&c->idx, &c->dat, &c->ts};
    for (int i = 0; i < 3; i++) {
        nmi_rx_region *r = rg[i];
        if (!r->map) {
            continue;
        }
        uint64_t keep = page_up(r->end + (i == 0 ? NMI_RX_REC : 0));
        uint64_t top = r->ready;
        if (leave) {
            nmi_rx_region_nohuge(r);
            if (r->cap >= NMI_RX_HUGE_MIN && huge_up(r->end) > top) {
                top = huge_up(r->end);
            }
        } else if (mem_huge(c, r) && huge_up(r->end) > keep) {
            keep = huge_up(r->end);
        }
        keep = keep > r->cap ? r->cap : keep;
        top = top > r->cap ? r->cap : top;
        if (top > keep) {
            nmi_rx_region_discard(r, keep, top);
        }
        if (r->ready > keep) {
            r->ready = keep;
        }
    }
    if (leave) {
        c->mem_small = true;
    }
    mem_set_mark(c);
}

/* An append would take the accounted bytes to `need`, past mem_mark:
 * make room for it under the cap. Caller holds mu. */
static void
mem_check(nmi_rx_core *c, uint64_t need)
{
    mem_set_mark(c); /* the writer has used up part of the room */
    if (need <= c->mem_mark) {
        return;
    }
    mem_give_back(c, false);
    if (need > c->mem_mark && !c->mem_small) {
        mem_give_back(c, true);
    }
}

/* Make anonymous region r writable up to `need`, for an append that
 * takes the accounted bytes to `used` (<= the cap): grow the mapping when
 * needed, then fault in the huge page `need` falls in (huge regions) or
 * up to SMALL_AHEAD past need (4 KiB-page regions, as far as the cap
 * leaves MEM_HYST to spare); near the cap, leave huge pages first. Caller
 * holds mu. */
static int
mem_make_ready(nmi_rx_core *c, nmi_rx_region *r, uint64_t need, uint64_t used)
{
    if (need > r->cap) {
        wait_pins(c); /* the mapping may move */
        int rc = nmi_rx_region_reserve_lim(r, need, !c->mem_small, false);
        if (rc) {
            return rc;
        }
        if (!mem_huge(c, r)) {
            /* counted in 4 KiB pages: keep THP=always from backing it
             * with huge ones */
            nmi_rx_region_nohuge(r);
        }
    }
    uint64_t cap = c->cfg.max_memory_bytes;
    if (!c->mem_small && used + mem_extra_all(c) > cap) {
        mem_give_back(c, true); /* no room for huge-page rounding */
    }
    uint64_t to;
    if (mem_huge(c, r)) {
        to = huge_up(need); /* within the extra the mark counts */
    } else {
        /* As far as the cap leaves (minus MEM_HYST, so that the writer's
         * page rounding does not make mem_check give it straight back). */
        uint64_t avail = sat_sub(cap, used + mem_extra_all(c) + MEM_HYST);
        uint64_t lim =
            (r->end + mem_extra(c, r) + avail) & ~(nmi_rx_page() - 1);
        to = page_up(need + SMALL_AHEAD);
        to = to > lim ? lim : to;
        to = to < page_up(need) ? page_up(need) : to;
    }
    to = to > r->cap ? r->cap : to;
    if (to > r->ready) {
        nmi_rx_populate(r->map, r->ready, to);
        r->ready = to;
    }
    mem_set_mark(c);
    return NM_OK;
}

/* ---------------------------------------------------------- compaction */

typedef struct gen_files {
    int fd[3]; /* idx, dat, ts */
} gen_files;

static int
open_gen(nmi_rx_core *c, uint32_t gen, bool trunc, gen_files *g)
{
    char name[16], p[40];
    static const char *const fn[3] = {"idx", "dat", "ts"};
    nmi_rx_gen_name(gen, name);
    for (int i = 0; i < 3; i++) {
        g->fd[i] = -1;
    }
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", name, fn[i]);
        g->fd[i] =
            openat(c->dfd, p,
                   O_RDWR | O_CREAT | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0644);
        if (g->fd[i] < 0) {
            int e = errno;
            for (int j = 0; j < i; j++) {
                close(g->fd[j]);
            }
            return nmi_err(NM_EIO, "open %s/%s: %s", c->channel, p,
                           strerror(e));
        }
    }
    return NM_OK;
}

static void
close_gen(gen_files *g)
{
    for (int i = 0; i < 3; i++) {
        if (g->fd[i] >= 0) {
            close(g->fd[i]);
            g->fd[i] = -1;
        }
    }
}

/* Buffered writer for compaction into files. */
typedef struct wbuf {
    int fd;
    uint8_t *p;
    size_t n, cap;
    int rc;
} wbuf;

static void
wb_put(wbuf *w, const void *src, size_t len)
{
    if (w->rc) {
        return;
    }
    if (w->n + len > w->cap) {
        if (w->n) {
            w->rc = nmi_rx_write_full(w->fd, w->p, w->n);
            w->n = 0;
        }
        if (len > w->cap) {
            w->rc = w->rc ? w->rc : nmi_rx_write_full(w->fd, src, len);
            return;
        }
    }
    memcpy(w->p + w->n, src, len);
    w->n += len;
}

static void
wb_flush(wbuf *w)
{
    if (!w->rc && w->n) {
        w->rc = nmi_rx_write_full(w->fd, w->p, w->n);
    }
    w->n = 0;
}

/* Rewrite [keep, next) into fresh regions (memory) or a new generation
 * (disk), then switch to it. Caller holds mu (and sync_mu on disk).
 * `quarantine`: keep the old generation as v<gen>.corrupt/. */
static int
compact_locked(nmi_rx_core *c, bool quarantine)
{
    uint64_t keep = c->low;
    if (c->persistent && keep == c->next && c->next > c->gen_first) {
        keep = c->next - 1; /* so next_seq survives a reopen */
    }
    uint64_t n = c->next - keep;
    uint64_t dat_from = c->low_dat;
    if (keep < c->low) {
        uint8_t b[NMI_RX_REC];
        nmi_rx_rec r;
        int rc = read_recs(c, keep, 1, b);
        if (rc) {
            return rc;
        }
        nmi_rx_rec_decode(b, &r);
        dat_from = c->low_dat - nmi_rx_rec_datlen(&r);
    }
    uint64_t dat_n = c->dat.end - dat_from;

    nmi_rx_region ni, nd, nt;
    gen_files g = {{-1, -1, -1}};
    uint32_t ngen = c->gen + 1;
    int rc = NM_OK;
    nmi_rx_ck *nck = NULL;
    size_t nnck = 0, nck_cap = 0;
    uint8_t *chunk = malloc(1u << 20);
    wbuf wi = {0}, wd = {0}, wt = {0};
    if (!chunk) {
        return nmi_err(NM_ENOMEM, "compaction buffer");
    }
    if (c->persistent) {
        if (c->gen == UINT32_MAX) {
            free(chunk);
            return nmi_err(NM_ERANGE, "generation counter exhausted");
        }
        char name[16];
        nmi_rx_gen_name(ngen, name);
        nmi_rx_gen_delete(c->dfd, ngen); /* a leftover of a crash */
        if (mkdirat(c->dfd, name, 0755) != 0) {
            rc = nmi_err(NM_EIO, "mkdir %s/%s: %s", c->channel, name,
                         strerror(errno));
            free(chunk);
            return rc;
        }
        rc = open_gen(c, ngen, true, &g);
        if (rc) {
            goto fail;
        }
        wi = (wbuf){.fd = g.fd[0], .p = malloc(1u << 16), .cap = 1u << 16};
        wt = (wbuf){.fd = g.fd[2], .p = malloc(1u << 16), .cap = 1u << 16};
        wd = (wbuf){.fd = g.fd[1], .p = NULL, .cap = 0};
        if (!wi.p || !wt.p) {
            rc = nmi_err(NM_ENOMEM, "compaction buffers");
            goto fail;
        }
    } else {
        nmi_rx_region_anon(&ni);
        nmi_rx_region_anon(&nd);
        nmi_rx_region_anon(&nt);
        uint64_t want[3] = {(n + 1) * NMI_RX_REC, dat_n ? dat_n : 1,
                            n ? n * NMI_RX_TS : 1};
        nmi_rx_region *nr[3] = {&ni, &nd, &nt};
        for (int i = 0; i < 3 && !rc; i++) {
            rc = nmi_rx_region_reserve_lim(nr[i], want[i], false, true);
        }
        if (rc) {
            goto fail;
        }
    }
    /* idx: rebase offsets, rebuild checkpoints. */
    uint64_t off = 0;
    for (uint64_t done = 0; done < n && !rc;) {
        size_t k = n - done < WALK_CHUNK ? (size_t)(n - done) : WALK_CHUNK;
        uint8_t buf[WALK_CHUNK * NMI_RX_REC];
        rc = read_recs(c, keep + done, k, buf);
        for (size_t j = 0; j < k && !rc; j++) {
            nmi_rx_rec r;
            nmi_rx_rec_decode(buf + j * NMI_RX_REC, &r);
            if (nnck == 0 || off - nck[nnck - 1].off >= CK_SPAN) {
                if (nnck == nck_cap) {
                    size_t nc = nck_cap ? nck_cap * 2 : 16;
                    nmi_rx_ck *nv = realloc(nck, nc * sizeof(*nv));
                    if (!nv) {
                        rc = nmi_err(NM_ENOMEM, "checkpoint table");
                        break;
                    }
                    nck = nv;
                    nck_cap = nc;
                }
                nck[nnck++] = (nmi_rx_ck){.index = done + j, .off = off};
            }
            if (!(r.fc & NM_REDEX_FLAG_INLINE)) {
                r.off = (uint32_t)off;
                off += r.len;
            }
            uint8_t e[NMI_RX_REC];
            nmi_rx_rec_encode(&r, e);
            if (c->persistent) {
                wb_put(&wi, e, NMI_RX_REC);
            } else {
                memcpy(ni.map + (done + j) * NMI_RX_REC, e, NMI_RX_REC);
            }
        }
        done += k;
    }
    if (nnck == 0 && !rc) {
        nck = malloc(sizeof(*nck));
        if (!nck) {
            rc = nmi_err(NM_ENOMEM, "checkpoint table");
        } else {
            nck[0] = (nmi_rx_ck){0, 0};
            nnck = 1;
        }
    }
    /* dat and ts: straight copies of the live ranges. */
    for (uint64_t done = 0; done < dat_n && !rc;) {
        size_t k = dat_n - done < (1u << 20) ? (size_t)(dat_n - done)
                                             : (size_t)(1u << 20);
        if (c->persistent) {
            rc = nmi_rx_region_read(&c->dat, dat_from + done, chunk, k);
            wb_put(&wd, chunk, k);
        } else {
            rc =
                nmi_rx_region_read(&c->dat, dat_from + done, nd.map + done, k);
        }
        done += k;
    }
    uint64_t ts_from = (keep - c->gen_first) * NMI_RX_TS;
    for (uint64_t done = 0; done < n * NMI_RX_TS && !rc;) {
        uint64_t left = n * NMI_RX_TS - done;
        size_t k = left < (1u << 20) ? (size_t)left : (size_t)(1u << 20);
        if (c->persistent) {
            rc = nmi_rx_region_read(&c->ts, ts_from + done, chunk, k);
            wb_put(&wt, chunk, k);
        } else {
            rc = nmi_rx_region_read(&c->ts, ts_from + done, nt.map + done, k);
        }
        done += k;
    }
    if (rc) {
        goto fail;
    }
    if (c->persistent) {
        wb_flush(&wi);
        wb_flush(&wd);
        wb_flush(&wt);
        rc = wi.rc ? wi.rc : wd.rc ? wd.rc : wt.rc;
        if (rc) {
            goto fail;
        }
        int fds[3] = {g.fd[1], g.fd[0], g.fd[2]};
        rc = nmi_rx_fsync_all(c->mgr->pool, fds, 3);
        if (rc) {
            goto fail;
        }
        char name[16];
        nmi_rx_gen_name(ngen, name);
        int gfd = openat(c->dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (gfd >= 0) {
            rc = nmi_rx_fsync_dir(gfd);
            close(gfd);
        }
        if (rc) {
            goto fail;
        }
        /* Map the new files before the flip: after it, there is no way
         * back. */
        rc = nmi_rx_region_file(&ni, g.fd[0], n * NMI_RX_REC);
        if (!rc) {
            rc = nmi_rx_region_file(&nd, g.fd[1], dat_n);
            if (rc) {
                nmi_rx_region_unmap(&ni, false);
            }
        }
        if (!rc) {
            rc = nmi_rx_region_file(&nt, g.fd[2], n * NMI_RX_TS);
            if (rc) {
                nmi_rx_region_unmap(&ni, false);
                nmi_rx_region_unmap(&nd, false);
            }
        }
        if (rc) {
            goto fail;
        }
        rc = nmi_rx_manifest_write(c->dfd, ngen);
        if (rc) {
            nmi_rx_region_unmap(&ni, false);
            nmi_rx_region_unmap(&nd, false);
            nmi_rx_region_unmap(&nt, false);
            goto fail;
        }
    } else {
        ni.end = n * NMI_RX_REC;
        nd.end = dat_n;
        nt.end = n * NMI_RX_TS;
    }
    /* Switch. */
    wait_pins(c);
    nmi_rx_region_unmap(&c->idx, false);
    nmi_rx_region_unmap(&c->dat, false);
    nmi_rx_region_unmap(&c->ts, false);
    if (c->persistent) {
        close(c->idx.fd);
        close(c->dat.fd);
        close(c->ts.fd);
    }
    c->idx = ni;
    c->dat = nd;
    c->ts = nt;
    if (!c->persistent) {
        /* Fresh regions, in 4 KiB pages; they may use huge pages again
         * as they grow, while the cap allows. */
        c->mem_small = c->cfg.max_memory_bytes < HUGE_LOG_MIN;
        mem_set_mark(c);
    }
    free(c->ck);
    c->ck = nck;
    c->nck = nnck;
    c->ck_cap = nck_cap ? nck_cap : nnck;
    c->low_dat -= dat_from;
    c->gen_first = keep;
    c->compactions++;
    if (c->persistent) {
        uint32_t old = c->gen;
        c->gen = ngen;
        c->cache_lo = c->next;
        c->cache_dat = c->dat.end;
        c->resident = 0;
        c->durable = c->next;
        atomic_store(&c->durable_pub, c->next);
        if (quarantine) {
            char from[16], to[48];
            nmi_rx_gen_name(old, from);
            for (int k = 0; k < 100; k++) {
                if (k == 0) {
                    snprintf(to, sizeof(to), "%s.corrupt", from);
                } else {
                    snprintf(to, sizeof(to), "%s.corrupt.%d", from, k);
                }
                struct stat st;
                if (fstatat(c->dfd, to, &st, 0) != 0) {
                    break;
                }
            }
            if (renameat(c->dfd, from, c->dfd, to) != 0) {
                nmi_rx_gen_delete(c->dfd, old);
            }
        } else {
            nmi_rx_gen_delete(c->dfd, old);
        }
        (void)nmi_rx_fsync_dir(c->dfd);
    } else {
        c->cache_lo = c->low;
        c->cache_dat = c->low_dat;
    }
    free(wi.p);
    free(wt.p);
    free(chunk);
    return NM_OK;

fail:
    free(nck);
    free(wi.p);
    free(wt.p);
    free(chunk);
    if (c->persistent) {
        close_gen(&g);
        nmi_rx_gen_delete(c->dfd, ngen);
    } else {
        nmi_rx_region_unmap(&ni, false);
        nmi_rx_region_unmap(&nd, false);
        nmi_rx_region_unmap(&nt, false);
    }
    return rc;
}

/* ---------------------------------------------------------- open / close */

typedef struct rec_ctx {
    nmi_rx_core *c;
    int ts_fd;
    int err;
} rec_ctx;

static int
recovery_cb(void *ctx, const nmi_rx_scan_rec *r)
{
    rec_ctx *x = ctx;
    nmi_rx_core *c = x->c;
    if (ck_reserve(c, 1)) {
        return NM_ENOMEM;
    }
    ck_note(c, r->index, r->off64);
    c->live_bytes += NMI_RX_REC + nmi_rx_rec_datlen(&r->rec);
    if (r->ts_missing) {
        uint8_t b[8];
        nmi_store_le64(b, r->ts);
        if (pwrite(x->ts_fd, b, 8, (off_t)(r->index * NMI_RX_TS)) != 8) {
            return nmi_err(NM_EIO, "repair a timestamp of %s: %s", c->channel,
                           strerror(errno));
        }
    }
    return NM_OK;
}

static int
disk_open(nmi_rx_core *c)
{
    int rc = nmi_rx_open_channel_dir(c->mgr->dir, c->channel, true, &c->dfd);
    if (rc) {
        return rc;
    }
    if (flock(c->dfd, LOCK_EX | LOCK_NB) != 0) {
        return nmi_err(errno == EWOULDBLOCK ? NM_EBUSY : NM_EIO,
                       "channel %s is open in another process or manager "
                       "(%s)",
                       c->channel, strerror(errno));
    }
    nmi_rx_resolved res;
    rc = nmi_rx_resolve_gen(c->dfd, true, &res);
    if (rc) {
        return rc;
    }
    c->gen = res.gen;
    gen_files g;
    rc = open_gen(c, c->gen, false, &g);
    if (rc) {
        return rc;
    }
    nmi_rx_scan s = {
        .idx_fd = g.fd[0],
        .dat_fd = g.fd[1],
        .ts_fd = g.fd[2],
        .fill_ts = nmi_rx_wall_now(),
    };
    rec_ctx x = {.c = c, .ts_fd = g.fd[2]};
    rc = ck_reserve(c, 1);
    if (!rc) {
        rc = nmi_rx_scan_run(&s, recovery_cb, &x);
    }
    if (rc) {
        close_gen(&g);
        return rc;
    }
    c->rec_kept = s.nrec;
    c->rec_dropped = s.dropped;
    c->rec_ts_filled = s.ts_filled;
    c->rec_torn = s.end == NMI_RX_END_TORN;
    c->rec_corrupt = s.end == NMI_RX_END_CORRUPT;
    if (c->nck == 0) {
        c->ck[0] = (nmi_rx_ck){0, 0};
        c->nck = 1;
    }
    bool corrupt = s.end == NMI_RX_END_CORRUPT;
    uint64_t ends[3] = {s.nrec * NMI_RX_REC, s.dat_end, s.nrec * NMI_RX_TS};
    uint64_t sizes[3] = {s.idx_size, s.dat_size, s.ts_size};
    bool changed = s.ts_filled > 0;
    if (!corrupt) {
        /* Cut the torn tail / zero slack, as upstream: idx to whole
         * records, dat to the last payload, ts to one per record. */
        for (int i = 0; i < 3; i++) {
            if (sizes[i] != ends[i]) {
                changed = true;
                if (ftruncate(g.fd[i], (off_t)ends[i]) != 0) {
                    rc = nmi_err(NM_EIO, "truncate during recovery of %s: %s",
                                 c->channel, strerror(errno));
                    close_gen(&g);
                    return rc;
                }
            }
        }
    }
    (void)changed;
    /* Always fsync on open: what a killed process left in the page cache
     * becomes durable before anything is acknowledged as such. */
    int fds[3] = {g.fd[1], g.fd[0], g.fd[2]};
    rc = nmi_rx_fsync_all(c->mgr->pool, fds, 3);
    nmi_rx_region *rg[3] = {&c->idx, &c->dat, &c->ts};
    for (int i = 0; i < 3 && !rc; i++) {
        if (corrupt) {
            /* Read-only view (pread) of the damaged generation: it is
             * copied, never mapped or extended. */
            memset(rg[i], 0, sizeof(*rg[i]));
            rg[i]->fd = g.fd[i];
            rg[i]->end = ends[i];
        } else {
            rc = nmi_rx_region_file(rg[i], g.fd[i], ends[i]);
        }
    }
    if (rc) {
        nmi_rx_region_unmap(&c->idx, false);
        nmi_rx_region_unmap(&c->dat, false);
        nmi_rx_region_unmap(&c->ts, false);
        close_gen(&g);
        return rc;
    }
    c->gen_first = s.nrec ? s.first_seq : 0;
    c->low = c->gen_first;
    c->next = c->gen_first + s.nrec;
    c->low_dat = 0;
    c->cache_lo = c->next;
    c->cache_dat = s.dat_end;
    c->resident = 0;
    c->durable = c->next;
    atomic_store(&c->durable_pub, c->next);
    if (corrupt) {
        /* Keep the damaged generation for inspection; continue from a
         * clean copy of the valid prefix. */
        pthread_mutex_lock(&c->sync_mu);
        pthread_mutex_lock(&c->mu);
        rc = compact_locked(c, true);
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->sync_mu);
        if (rc) {
            nmi_rx_region_unmap(&c->idx, false);
            nmi_rx_region_unmap(&c->dat, false);
            nmi_rx_region_unmap(&c->ts, false);
            close_gen(&g);
            return rc;
        }
        c->compactions = 0;
    }
    nmi_rx_gen_sweep(c->dfd, c->gen);
    return NM_OK;
}

int
nmi_rx_cfg_check(const nm_redex_file_config *f, bool have_dir)
{
    if (f->size != sizeof(*f)) {
        return nmi_err(NM_EINVAL,
                       "file config size is %u, expected %zu: call "
                       "nm_redex_file_config_init",
                       f->size, sizeof(*f));
    }
    if (f->persistent && !have_dir) {
        return nmi_err(NM_EINVAL, "a persistent file needs a manager "
                                  "directory (nm_redex_config.dir)");
    }
    if ((unsigned)f->fsync > NM_REDEX_FSYNC_INTERVAL_OR_BYTES) {
        return nmi_err(NM_EINVAL, "unknown fsync policy %d", (int)f->fsync);
    }
    if (f->fsync == NM_REDEX_FSYNC_INTERVAL && f->fsync_interval_ms == 0) {
        return nmi_err(NM_EINVAL, "fsync interval policy needs "
                                  "fsync_interval_ms > 0");
    }
    if (f->max_memory_bytes == 0) {
        return nmi_err(NM_EINVAL, "max_memory_bytes must be > 0");
    }
    if (f->tail_buffer_size == 0 || f->tail_buffer_size > (1u << 20)) {
        return nmi_err(NM_EINVAL, "tail_buffer_size must be 1..1048576");
    }
    return NM_OK;
}

typedef struct norm_sync {
    nmi_rx_sync_mode mode;
    uint64_t every_n, max_bytes, interval_ms;
} norm_sync;

static norm_sync
normalize(const nm_redex_file_config *f)
{
    norm_sync n = {NMI_RX_SYNC_NONE, 0, 0, 0};
    if (!f->persistent) {
        return n;
    }
    switch (f->fsync) {
    case NM_REDEX_FSYNC_NEVER:
        break;
    case NM_REDEX_FSYNC_EVERY_N:
        if (f->fsync_every_n <= 1) {
            n.mode = NMI_RX_SYNC_ALWAYS;
        } else {
            n.mode = NMI_RX_SYNC_BG;
            n.every_n = f->fsync_every_n;
        }
        break;
    case NM_REDEX_FSYNC_INTERVAL:
        n.mode = NMI_RX_SYNC_BG;
        n.interval_ms = f->fsync_interval_ms;
        break;
    case NM_REDEX_FSYNC_INTERVAL_OR_BYTES:
        if (f->fsync_interval_ms || f->fsync_max_bytes) {
            n.mode = NMI_RX_SYNC_BG;
            n.interval_ms = f->fsync_interval_ms;
            n.max_bytes = f->fsync_max_bytes;
        }
        break;
    }
    return n;
}

const char *
nmi_rx_cfg_diff(const nm_redex_file_config *a, const nm_redex_file_config *b)
{
    if (a->persistent != b->persistent) {
        return "persistent";
    }
    norm_sync x = normalize(a), y = normalize(b);
    if (x.mode != y.mode || x.every_n != y.every_n ||
        x.max_bytes != y.max_bytes || x.interval_ms != y.interval_ms) {
        return "fsync policy";
    }
    if (a->max_memory_bytes != b->max_memory_bytes) {
        return "max_memory_bytes";
    }
    if (a->retention_max_events != b->retention_max_events) {
        return "retention_max_events";
    }
    if (a->retention_max_bytes != b->retention_max_bytes) {
        return "retention_max_bytes";
    }
    if (a->retention_max_age_ns != b->retention_max_age_ns) {
        return "retention_max_age_ns";
    }
    if (a->tail_buffer_size != b->tail_buffer_size) {
        return "tail_buffer_size";
    }
    return NULL;
}

static void
core_free(nmi_rx_core *c)
{
    free(c->ck);
    free(c->tails);
    free(c->armed);
    free(c->channel);
    pthread_cond_destroy(&c->sync_cv);
    pthread_mutex_destroy(&c->sync_mu);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void
nmi_rx_core_unref(nmi_rx_core *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
        core_free(c);
    }
}

int
nmi_rx_core_open(nm_redex *mgr, const char *channel,
                 const nm_redex_file_config *cfg, nmi_rx_core **out)
{
    /* Cache-line aligned: next_pub sits on a line of its own. */
    size_t csz = (sizeof(nmi_rx_core) + NMI_CACHELINE - 1) &
                 ~(size_t)(NMI_CACHELINE - 1);
    nmi_rx_core *c = aligned_alloc(NMI_CACHELINE, csz);
    if (!c) {
        return nmi_err(NM_ENOMEM, "file");
    }
    memset(c, 0, csz);
    /* spinning only helps when another CPU can make progress meanwhile */
    c->spin_ok = sysconf(_SC_NPROCESSORS_ONLN) > 1;
    c->channel = strdup(channel);
    if (!c->channel) {
        free(c);
        return nmi_err(NM_ENOMEM, "file");
    }
    /* Adaptive: appends hold mu for well under a microsecond, a tail's
     * copy a few; a short spin on contention beats a futex sleep and wake
     * (each a system call - microseconds on some hypervisors). */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&c->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_mutex_init(&c->sync_mu, NULL);
    atomic_init(&c->closed_pub, false);
    atomic_init(&c->next_pub, 0);
    atomic_init(&c->pins, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->sync_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&c->refs, 1);
    atomic_init(&c->durable_pub, 0);
    c->mgr = mgr;
    c->cfg = *cfg;
    c->persistent = cfg->persistent;
    c->dfd = -1;
    norm_sync ns = normalize(cfg);
    c->sync_mode = ns.mode;
    c->every_n = ns.every_n;
    c->max_bytes = ns.max_bytes;
    c->interval_ns = ns.interval_ms * 1000000ull;
    pthread_once(&clk_once, clk_init);
    c->anchor_wall = nmi_wall_ns();
    c->anchor_fast = nmi_fastclock_now(&clk);

    int rc;
    if (c->persistent) {
        rc = disk_open(c);
    } else {
        nmi_rx_region_anon(&c->idx);
        nmi_rx_region_anon(&c->dat);
        nmi_rx_region_anon(&c->ts);
        c->mem_small = c->cfg.max_memory_bytes < HUGE_LOG_MIN;
        mem_set_mark(c);
        rc = ck_reserve(c, 1);
        if (!rc) {
            c->ck[0] = (nmi_rx_ck){0, 0};
            c->nck = 1;
        }
    }
    if (rc) {
        if (c->dfd >= 0) {
            close(c->dfd);
        }
        core_free(c);
        return rc;
    }
    atomic_store(&c->next_pub, c->next);
    if (c->sync_mode == NMI_RX_SYNC_BG) {
        if (pthread_create(&c->syncer, NULL, syncer_main, c) != 0) {
            nmi_rx_core_close(c);
            core_free(c);
            return nmi_err(NM_ENOMEM, "fsync thread");
        }
        c->syncer_running = true;
    }
    *out = c;
    return NM_OK;
}

int
nmi_rx_core_close(nmi_rx_core *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->closed) {
        pthread_mutex_unlock(&c->mu);
        return NM_OK;
    }
    c->syncer_stop = true;
    pthread_cond_broadcast(&c->sync_cv);
    bool join = c->syncer_running;
    c->syncer_running = false;
    pthread_mutex_unlock(&c->mu);
    if (join) {
        pthread_join(c->syncer, NULL);
    }
    pthread_mutex_lock(&c->sync_mu);
    pthread_mutex_lock(&c->mu);
    c->closed = true;
    atomic_store(&c->closed_pub, true);
    for (size_t i = 0; i < c->ntails; i++) {
        nmi_evfd_signal(c->tails[i]->fd);
    }
    c->narmed = 0;
    for (size_t i = 0; i < c->ntails; i++) {
        c->tails[i]->armed = false;
    }
    int rc = NM_OK;
    if (c->persistent) {
        int r1 = nmi_rx_region_unmap(&c->idx, true);
        int r2 = nmi_rx_region_unmap(&c->dat, true);
        int r3 = nmi_rx_region_unmap(&c->ts, true);
        rc = r1 ? r1 : r2 ? r2 : r3;
        if (!rc) {
            int fds[3] = {c->dat.fd, c->idx.fd, c->ts.fd};
            rc = nmi_rx_fsync_all(c->mgr->pool, fds, 3);
            if (!rc && !c->io_err) {
                c->durable = c->next;
                atomic_store(&c->durable_pub, c->next);
            }
        }
        close(c->idx.fd);
        close(c->dat.fd);
        close(c->ts.fd);
        close(c->dfd); /* releases the flock */
        c->dfd = -1;
    } else {
        wait_pins(c);
        nmi_rx_region_unmap(&c->idx, false);
        nmi_rx_region_unmap(&c->dat, false);
        nmi_rx_region_unmap(&c->ts, false);
    }
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->sync_mu);
    return rc;
}

/* ------------------------------------------------------------- append */

/* How long an appender spins for the log's mutex before it sleeps. A
 * tail copying a batch holds it for a few microseconds; sleeping and
 * being woken costs more than that (two system calls, a wake-up). */
#define APPEND_SPIN_NS 20000u

/* Take c->mu for an append: try, then spin (trying again now and then)
 * for up to APPEND_SPIN_NS, then block. */
static inline void
append_lock(nmi_rx_core *c)
{
    if (nmi_likely(pthread_mutex_trylock(&c->mu) == 0)) {
        return;
    }
    if (!c->spin_ok) {
        pthread_mutex_lock(&c->mu);
        return;
    }
    uint64_t t0 = fast_now();
    do {
        for (int i = 0; i < 32; i++) {
            nmi_cpu_relax();
        }
        if (pthread_mutex_trylock(&c->mu) == 0) {
            return;
        }
    } while (fast_now() - t0 < APPEND_SPIN_NS);
    pthread_mutex_lock(&c->mu);
}

/* Checks and room for nrec records with datlen heap bytes. Caller holds
 * mu. */
static int
pre_append(nmi_rx_core *c, const nm_redex_file *h, uint64_t nrec,
           uint64_t datlen)
{
    if (nmi_unlikely(h->closed || c->closed)) {
        return nmi_err(NM_ECLOSED, "channel %s is closed", c->channel);
    }
    if (nmi_unlikely(c->io_err)) {
        return nmi_err(NM_EIO,
                       "an earlier fsync of channel %s failed; reopen it",
                       c->channel);
    }
    if (!c->persistent) {
        uint64_t need = c->live_bytes + (c->next - c->low) * NMI_RX_TS +
                        nrec * (NMI_RX_REC + NMI_RX_TS) + datlen;
        if (nmi_unlikely(need > c->cfg.max_memory_bytes)) {
            if (retention_set(c)) {
                int64_t k = retention_drop(c, nmi_rx_wall_now());
                if (k > 0 && evict(c, (uint64_t)k) == NM_OK &&
                    compact_due(c)) {
                    (void)compact_locked(c, false);
                }
                need = c->live_bytes + (c->next - c->low) * NMI_RX_TS +
                       nrec * (NMI_RX_REC + NMI_RX_TS) + datlen;
            }
            if (need > c->cfg.max_memory_bytes) {
                return nmi_err(
                    NM_EBACKPRESSURE,
                    "in-memory channel %s is full: %llu of "
                    "max_memory_bytes %llu retained (sweep "
                    "retention or raise the cap)",
                    c->channel,
                    (unsigned long long)(c->live_bytes +
                                         (c->next - c->low) * NMI_RX_TS),
                    (unsigned long long)c->cfg.max_memory_bytes);
            }
        }
    }
    if (!c->persistent) {
        uint64_t used = mem_used(c) + nrec * (NMI_RX_REC + NMI_RX_TS) + datlen;
        if (nmi_unlikely(used > c->mem_mark)) {
            mem_check(c, used);
        }
    }
    uint64_t ni = c->idx.end + (nrec + 1) * NMI_RX_REC;
    uint64_t nd = c->dat.end + datlen;
    uint64_t nt = c->ts.end + nrec * NMI_RX_TS;
    if (nmi_unlikely(ni > c->idx.ready || nd > c->dat.ready ||
                     nt > c->ts.ready || !c->dat.map ||
                     c->nck + 2 + datlen / CK_SPAN > c->ck_cap)) {
        int rc = NM_OK;
        if (c->persistent) {
            rc = nmi_rx_region_reserve(&c->idx, ni);
            if (!rc) {
                rc = nmi_rx_region_reserve(&c->dat, nd ? nd : 1);
            }
            if (!rc) {
                rc = nmi_rx_region_reserve(&c->ts, nt);
            }
        } else {
            /* Under the cap (checked above): fault in what is needed. */
            uint64_t used =
                mem_used(c) + nrec * (NMI_RX_REC + NMI_RX_TS) + datlen;
            if (ni > c->idx.ready) {
                rc = mem_make_ready(c, &c->idx, ni, used);
            }
            if (!rc && (nd > c->dat.ready || !c->dat.map)) {
                rc = mem_make_ready(c, &c->dat, nd ? nd : 1, used);
            }
            if (!rc && nt > c->ts.ready) {
                rc = mem_make_ready(c, &c->ts, nt, used);
            }
        }
        if (!rc) {
            rc = ck_reserve(c, 2 + datlen / CK_SPAN);
        }
        if (rc) {
            return rc;
        }
    }
    return NM_OK;
}

/* Store one record. inl: exactly 8 bytes inline. Caller holds mu and has
 * reserved room. */
static inline void
put(nmi_rx_core *c, const uint8_t *data, uint32_t len, bool inl, uint32_t ck,
    uint64_t ts)
{
    uint64_t i = c->next - c->gen_first;
    nmi_rx_rec r;
    r.seq = c->next;
    uint32_t datlen = 0;
    ck_note(c, i, c->dat.end);
    if (inl) {
        r.off = nmi_load_le32(data);
        r.len = nmi_load_le32(data + 4);
        r.fc = NM_REDEX_FLAG_INLINE | ck;
    } else {
        r.off = (uint32_t)c->dat.end;
        r.len = len;
        r.fc = ck;
        if (len) {
            memcpy(c->dat.map + c->dat.end, data, len);
        }
        c->dat.end += len;
        datlen = len;
    }
    atomic_thread_fence(memory_order_release); /* dat before idx */
    nmi_rx_rec_encode(&r, c->idx.map + c->idx.end);
    c->idx.end += NMI_RX_REC;
    atomic_thread_fence(memory_order_release); /* idx before ts */
    nmi_store_le64(c->ts.map + c->ts.end, ts);
    c->ts.end += NMI_RX_TS;
    c->next++;
    c->live_bytes += NMI_RX_REC + datlen;
    if (c->persistent) {
        c->resident += NMI_RX_REC + NMI_RX_TS + datlen;
        if (c->sync_mode == NMI_RX_SYNC_BG) {
            if (c->unsynced_n++ == 0) {
                c->unsynced_since = fast_now();
                if (c->interval_ns) {
                    pthread_cond_signal(&c->sync_cv);
                }
            }
            c->unsynced_bytes += NMI_RX_REC + NMI_RX_TS + datlen;
        }
    }
}

/* After the records are in: wake tails, the syncer, trim the window.
 * Caller holds mu. */
static inline void
post_append(nmi_rx_core *c)
{
    /* Release: a tail that reads next_pub without mu sees the records. */
    atomic_store_explicit(&c->next_pub, c->next, memory_order_release);
    if (nmi_unlikely(c->narmed)) {
        wake_armed(c);
    }
    if (c->persistent) {
        if (c->sync_mode == NMI_RX_SYNC_BG && !c->sync_req &&
            ((c->every_n && c->unsynced_n >= c->every_n) ||
             (c->max_bytes && c->unsynced_bytes >= c->max_bytes))) {
            c->sync_req = true;
            pthread_cond_signal(&c->sync_cv);
        }
        if (nmi_unlikely(c->resident > c->cfg.max_memory_bytes)) {
            trim_cache(c);
        }
    }
}

int
nm_redex_append(nm_redex_file *h, const void *data, size_t len, uint64_t *seq)
{
    if (nmi_unlikely(!h || (!data && len))) {
        return nmi_err(NM_EINVAL, "file is NULL, or data is NULL with len "
                                  "> 0");
    }
    if (nmi_unlikely(len > NM_REDEX_MAX_PAYLOAD)) {
        return nmi_err(NM_ETOOBIG, "payload of %zu bytes exceeds %u", len,
                       NM_REDEX_MAX_PAYLOAD);
    }
    uint32_t ck = cksum(len ? data : "", len);
    nmi_rx_core *c = h->c;
    append_lock(c);
    int rc = pre_append(c, h, 1, len);
    if (nmi_unlikely(rc)) {
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    uint64_t s = c->next;
    put(c, data, (uint32_t)len, false, ck, core_ts(c));
    post_append(c);
    bool always = c->sync_mode == NMI_RX_SYNC_ALWAYS;
    pthread_mutex_unlock(&c->mu);
    if (seq) {
        *seq = s;
    }
    return always ? sync_through(c, s + 1, false) : NM_OK;
}

int
nm_redex_append_inline(nm_redex_file *h,
                       const uint8_t data[NM_REDEX_INLINE_SIZE], uint64_t *seq)
{
    if (!h || !data) {
        return nmi_err(NM_EINVAL, "file and data must not be NULL");
    }
    uint32_t ck = cksum(data, NM_REDEX_INLINE_SIZE);
    nmi_rx_core *c = h->c;
    append_lock(c);
    int rc = pre_append(c, h, 1, 0);
    if (rc) {
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    uint64_t s = c->next;
    put(c, data, 0, true, ck, core_ts(c));
    post_append(c);
    bool always = c->sync_mode == NMI_RX_SYNC_ALWAYS;
    pthread_mutex_unlock(&c->mu);
    if (seq) {
        *seq = s;
    }
    return always ? sync_through(c, s + 1, false) : NM_OK;
}

int
nm_redex_append_batch(nm_redex_file *h, const void *const *data,
                      const size_t *lens, size_t n, uint64_t *first_seq)
{
    if (!h || !data || !lens || n == 0) {
        return nmi_err(NM_EINVAL, "file, data and lens must not be NULL and "
                                  "n > 0");
    }
    if (n > (1u << 30)) {
        return nmi_err(NM_ETOOBIG, "batch of %zu records", n);
    }
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > NM_REDEX_MAX_PAYLOAD) {
            return nmi_err(NM_ETOOBIG, "payload %zu of %zu bytes exceeds %u",
                           i, lens[i], NM_REDEX_MAX_PAYLOAD);
        }
        if (!data[i] && lens[i]) {
            return nmi_err(NM_EINVAL, "payload %zu is NULL with len > 0", i);
        }
        total += lens[i];
    }
    uint32_t stack_ck[64];
    uint32_t *cks = n <= 64 ? stack_ck : malloc(n * sizeof(uint32_t));
    if (!cks) {
        return nmi_err(NM_ENOMEM, "batch checksums");
    }
    for (size_t i = 0; i < n; i++) {
        cks[i] = cksum(lens[i] ? data[i] : "", lens[i]);
    }
    nmi_rx_core *c = h->c;
    append_lock(c);
    int rc = pre_append(c, h, n, total);
    if (rc) {
        pthread_mutex_unlock(&c->mu);
        if (cks != stack_ck) {
            free(cks);
        }
        return rc;
    }
    uint64_t s = c->next;
    uint64_t ts = core_ts(c);
    for (size_t i = 0; i < n; i++) {
        put(c, data[i], (uint32_t)lens[i], false, cks[i], ts);
    }
    post_append(c);
    bool always = c->sync_mode == NMI_RX_SYNC_ALWAYS;
    pthread_mutex_unlock(&c->mu);
    if (cks != stack_ck) {
        free(cks);
    }
    if (first_seq) {
        *first_seq = s;
    }
    return always ? sync_through(c, s + n, false) : NM_OK;
}

/* --------------------------------------------------------------- reads */

static int
check_open(const nmi_rx_core *c, const nm_redex_file *h)
{
    if (h->closed || c->closed) {
        return nmi_err(NM_ECLOSED, "channel %s is closed", c->channel);
    }
    return NM_OK;
}

/* Records [seq, seq+n) into evs, payloads into arena (each + NUL). The
 * arena must hold sum(len) + n bytes. Caller holds mu. */
static int
load_range(nmi_rx_core *c, uint64_t seq, size_t n, const uint8_t *recs,
           nm_redex_event *evs, uint8_t *arena, uint8_t **scratch,
           size_t *scratch_cap)
{
    /* Heap payloads of consecutive records are contiguous in dat. */
    uint64_t dstart = UINT64_MAX, dlen = 0;
    for (size_t j = 0; j < n; j++) {
        nmi_rx_rec r;
        nmi_rx_rec_decode(recs + j * NMI_RX_REC, &r);
        if (!(r.fc & NM_REDEX_FLAG_INLINE)) {
            if (dstart == UINT64_MAX) {
                dstart = ck_resolve(c, seq + j - c->gen_first, r.off);
            }
            dlen += r.len;
        }
    }
    const uint8_t *src = NULL; /* src[x] = dat byte dstart + x */
    bool from_disk = false;
    if (dlen) {
        if (dstart >= c->dat.released && dstart + dlen <= c->dat.cap) {
            src = c->dat.map + dstart;
        } else {
            if (dlen > *scratch_cap) {
                uint8_t *nb = realloc(*scratch, (size_t)dlen);
                if (!nb) {
                    return nmi_err(NM_ENOMEM, "read buffer of %llu bytes",
                                   (unsigned long long)dlen);
                }
                *scratch = nb;
                *scratch_cap = (size_t)dlen;
            }
            int rc =
                nmi_rx_region_read(&c->dat, dstart, *scratch, (size_t)dlen);
            if (rc) {
                return rc;
            }
            src = *scratch;
            from_disk = true;
        }
    }
    uint8_t tsb[WALK_CHUNK * NMI_RX_TS];
    size_t a = 0;
    uint64_t doff = 0;
    for (size_t j = 0; j < n; j++) {
        if (j % WALK_CHUNK == 0) {
            size_t k = n - j < WALK_CHUNK ? n - j : WALK_CHUNK;
            int rc = nmi_rx_region_read(&c->ts,
                                        (seq + j - c->gen_first) * NMI_RX_TS,
                                        tsb, k * NMI_RX_TS);
            if (rc) {
                return rc;
            }
        }
        nmi_rx_rec r;
        nmi_rx_rec_decode(recs + j * NMI_RX_REC, &r);
        nm_redex_event *e = &evs[j];
        e->seq = r.seq;
        e->timestamp_ns = nmi_load_le64(tsb + (j % WALK_CHUNK) * NMI_RX_TS);
        e->flags = r.fc & NMI_RX_FLAG_MASK;
        e->checksum = r.fc & NMI_RX_CKSUM_MASK;
        uint8_t *dst = arena + a;
        if (r.fc & NM_REDEX_FLAG_INLINE) {
            nmi_rx_rec_inline(&r, dst);
            e->len = 8;
        } else {
            if (r.len) {
                memcpy(dst, src + doff, r.len);
            }
            doff += r.len;
            e->len = r.len;
        }
        dst[e->len] = '\0';
        e->payload = dst;
        a += e->len + 1;
        if (from_disk && cksum(dst, e->len) != e->checksum) {
            return nmi_err(NM_EDECODE,
                           "record %llu of channel %s no longer matches its "
                           "checksum on disk",
                           (unsigned long long)r.seq, c->channel);
        }
    }
    return NM_OK;
}

static int
seq_missing(const nmi_rx_core *c, uint64_t seq)
{
    if (seq < c->low) {
        return nmi_err(NM_ENOTFOUND,
                       "seq %llu of %s was evicted (lowest retained is %llu)",
                       (unsigned long long)seq, c->channel,
                       (unsigned long long)c->low);
    }
    return nmi_err(
        NM_ENOTFOUND, "seq %llu of %s is not written yet (next is %llu)",
        (unsigned long long)seq, c->channel, (unsigned long long)c->next);
}

int
nm_redex_read_one(nm_redex_file *h, uint64_t seq, nm_redex_event *ev)
{
    if (!h || !ev) {
        return nmi_err(NM_EINVAL, "file and ev must not be NULL");
    }
    memset(ev, 0, sizeof(*ev));
    nmi_rx_core *c = h->c;
    pthread_mutex_lock(&c->mu);
    int rc = check_open(c, h);
    if (!rc && (seq < c->low || seq >= c->next)) {
        rc = seq_missing(c, seq);
    }
    uint8_t rb[NMI_RX_REC];
    if (!rc) {
        rc = read_recs(c, seq, 1, rb);
    }
    uint8_t *buf = NULL, *scratch = NULL;
    size_t scap = 0;
    if (!rc) {
        nmi_rx_rec r;
        nmi_rx_rec_decode(rb, &r);
        buf = malloc((size_t)nmi_rx_rec_paylen(&r) + 1);
        rc = buf ? load_range(c, seq, 1, rb, ev, buf, &scratch, &scap)
                 : nmi_err(NM_ENOMEM, "payload copy");
    }
    pthread_mutex_unlock(&c->mu);
    free(scratch);
    if (rc) {
        free(buf);
        memset(ev, 0, sizeof(*ev));
    }
    return rc;
}

void
nm_redex_event_free(nm_redex_event *ev)
{
    if (ev) {
        free((void *)ev->payload);
        ev->payload = NULL;
        ev->len = 0;
    }
}

int
nm_redex_read_range(nm_redex_file *h, uint64_t start, uint64_t end,
                    size_t max_events, nm_redex_batch *out)
{
    if (!h || !out) {
        return nmi_err(NM_EINVAL, "file and out must not be NULL");
    }
    memset(out, 0, sizeof(*out));
    if (start > end) {
        return nmi_err(NM_EINVAL, "start %llu > end %llu",
                       (unsigned long long)start, (unsigned long long)end);
    }
    nmi_rx_core *c = h->c;
    pthread_mutex_lock(&c->mu);
    int rc = check_open(c, h);
    if (rc) {
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    uint64_t a = start < c->low ? c->low : start;
    uint64_t b = end > c->next ? c->next : end;
    if (a > b) {
        a = b;
    }
    uint64_t n = b - a;
    if (max_events && n > max_events) {
        n = max_events;
    }
    out->next_seq = a + n;
    if (n == 0) {
        pthread_mutex_unlock(&c->mu);
        out->next_seq = b > start ? b : start;
        return NM_OK;
    }
    if (n > SIZE_MAX / (NMI_RX_REC + sizeof(nm_redex_event))) {
        pthread_mutex_unlock(&c->mu);
        return nmi_err(NM_ENOMEM, "range of %llu records",
                       (unsigned long long)n);
    }
    uint8_t *recs = malloc((size_t)n * NMI_RX_REC);
    if (!recs) {
        pthread_mutex_unlock(&c->mu);
        return nmi_err(NM_ENOMEM, "range of %llu records",
                       (unsigned long long)n);
    }
    rc = read_recs(c, a, (size_t)n, recs);
    uint64_t bytes = 0;
    for (uint64_t j = 0; j < n && !rc; j++) {
        nmi_rx_rec r;
        nmi_rx_rec_decode(recs + j * NMI_RX_REC, &r);
        bytes += nmi_rx_rec_paylen(&r) + 1;
    }
    uint8_t *blk = NULL, *scratch = NULL;
    size_t scap = 0;
    if (!rc) {
        size_t evb = (size_t)n * sizeof(nm_redex_event);
        blk = malloc(evb + (size_t)bytes);
        if (!blk) {
            rc = nmi_err(NM_ENOMEM, "range of %llu bytes",
                         (unsigned long long)bytes);
        } else {
            rc = load_range(c, a, (size_t)n, recs, (nm_redex_event *)blk,
                            blk + evb, &scratch, &scap);
        }
    }
    pthread_mutex_unlock(&c->mu);
    free(recs);
    free(scratch);
    if (rc) {
        free(blk);
        memset(out, 0, sizeof(*out));
        return rc;
    }
    out->events = (nm_redex_event *)blk;
    out->count = (size_t)n;
    return NM_OK;
}

void
nm_redex_batch_free(nm_redex_batch *b)
{
    if (b) {
        free(b->events);
        memset(b, 0, sizeof(*b));
    }
}

int
nm_redex_next_seq(nm_redex_file *h, uint64_t *out)
{
    if (!h || !out) {
        return nmi_err(NM_EINVAL, "file and out must not be NULL");
    }
    nmi_rx_core *c = h->c;
    pthread_mutex_lock(&c->mu);
    int rc = check_open(c, h);
    *out = c->next;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int
nm_redex_lowest_seq(nm_redex_file *h, uint64_t *out)
{
    if (!h || !out) {
        return nmi_err(NM_EINVAL, "file and out must not be NULL");
    }
    nmi_rx_core *c = h->c;
    pthread_mutex_lock(&c->mu);
    int rc = check_open(c, h);
    *out = c->low;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int
nm_redex_sync(nm_redex_file *h)
{
    if (!h) {
        return nmi_err(NM_EINVAL, "file is NULL");
    }
    nmi_rx_core *c = h->c;
    pthread_mutex_lock(&c->mu);
    int rc = check_open(c, h);
    bool persistent = c->persistent;
    pthread_mutex_unlock(&c->mu);
    if (rc || !persistent) {
        return rc;
    }
    pthread_mutex_lock(&c->sync_mu);
    rc = sync_round(c);
    pthread_mutex_unlock(&c->sync_mu);
    if (!rc) {
        pthread_mutex_lock(&c->mu);
        rc = check_open(c, h);
        pthread_mutex_unlock(&c->mu);
    }
    return rc;
}

int64_t
nm_redex_sweep(nm_redex_file *h)
{
    if (!h) {
        return nmi_err(NM_EINVAL, "file is NULL");
    }
    nmi_rx_core *c = h->c;
    pthread_mutex_lock(&c->mu);
    int rc = check_open(c, h);
    pthread_mutex_unlock(&c->mu);
    return rc ? rc : nmi_rx_core_sweep(c);
}

int64_t
nmi_rx_core_sweep(nmi_rx_core *c)
{
    pthread_mutex_lock(&c->mu);
    int rc = NM_OK;
    if (c->closed) {
        pthread_mutex_unlock(&c->mu);
        return nmi_err(NM_ECLOSED, "channel %s is closed", c->channel);
    }
    int64_t k = retention_drop(c, nmi_rx_wall_now());
    if (k > 0) {
        rc = evict(c, (uint64_t)k);
        if (rc) {
            pthread_mutex_unlock(&c->mu);
            return rc;
        }
    }
    if (k < 0) {
        pthread_mutex_unlock(&c->mu);
        return k;
    }
    bool due = compact_due(c);
    if (due && !c->persistent) {
        rc = compact_locked(c, false);
        due = false;
    }
    pthread_mutex_unlock(&c->mu);
    if (due) {
        pthread_mutex_lock(&c->sync_mu);
        pthread_mutex_lock(&c->mu);
        if (!c->closed && compact_due(c)) {
            rc = compact_locked(c, false);
        }
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->sync_mu);
    }
    return rc ? rc : k;
}

int
nm_redex_compact(nm_redex_file *h)
{
    if (!h) {
        return nmi_err(NM_EINVAL, "file is NULL");
    }
    nmi_rx_core *c = h->c;
    pthread_mutex_lock(&c->sync_mu);
    pthread_mutex_lock(&c->mu);
    int rc = check_open(c, h);
    if (!rc) {
        rc = compact_locked(c, false);
    }
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->sync_mu);
    return rc;
}

int
nm_redex_file_stats_get(nm_redex_file *h, nm_redex_file_stats *st)
{
    if (!h || !st) {
        return nmi_err(NM_EINVAL, "file and st must not be NULL");
    }
    nmi_rx_core *c = h->c;
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&c->mu);
    int rc = check_open(c, h);
    st->next_seq = c->next;
    st->lowest_seq = c->low;
    st->records = c->next - c->low;
    st->retained_bytes = c->live_bytes;
    st->durable_seq = c->persistent ? atomic_load(&c->durable_pub) : 0;
    st->generation = c->persistent ? c->gen : 0;
    st->disk_bytes = c->persistent ? c->idx.end + c->dat.end + c->ts.end : 0;
    st->resident_bytes = c->persistent
                             ? c->resident
                             : c->live_bytes + (c->next - c->low) * NMI_RX_TS;
    st->compactions = c->compactions;
    st->recovered_records = c->rec_kept;
    st->recovery_dropped = c->rec_dropped;
    st->recovery_ts_filled = c->rec_ts_filled;
    st->recovery_torn = c->rec_torn;
    st->recovery_corrupt = c->rec_corrupt;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* --------------------------------------------------------------- tails */

int
nm_redex_tail_open(nm_redex_file *h, uint64_t from_seq, nm_redex_tail **out)
{
    if (!h || !out) {
        return nmi_err(NM_EINVAL, "file and out must not be NULL");
    }
    *out = NULL;
    nm_redex_tail *t = calloc(1, sizeof(*t));
    if (!t) {
        return nmi_err(NM_ENOMEM, "tail");
    }
    t->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->fd < 0) {
        free(t);
        return nmi_err(NM_EIO, "eventfd: %s", strerror(errno));
    }
    atomic_init(&t->cancelled, false);
    nmi_rx_core *c = h->c;
    pthread_mutex_lock(&c->mu);
    int rc = check_open(c, h);
    if (!rc && c->ntails == c->tails_cap) {
        size_t nc = c->tails_cap ? c->tails_cap * 2 : 8;
        nm_redex_tail **nv = realloc(c->tails, nc * sizeof(*nv));
        if (!nv) {
            rc = nmi_err(NM_ENOMEM, "tail list");
        } else {
            c->tails = nv;
            c->tails_cap = nc;
        }
    }
    if (!rc) {
        t->c = c;
        t->batch = c->cfg.tail_buffer_size;
        t->pos = from_seq == NM_REDEX_TAIL_LIVE ? c->next : from_seq;
        if (t->pos < c->next || t->pos < c->low) {
            nmi_evfd_signal(t->fd);
        } else {
            rc = arm(c, t);
        }
    }
    if (!rc) {
        c->tails[c->ntails++] = t;
        atomic_fetch_add(&c->refs, 1);
    }
    pthread_mutex_unlock(&c->mu);
    if (rc) {
        close(t->fd);
        free(t);
        return rc;
    }
    *out = t;
    return NM_OK;
}

/* Stage the next batch of records: copy their index records and make
 * room for their events. Of an in-memory log, pin the regions and leave
 * the timestamps and payloads to tail_build (which copies them without the
 * mutex: those are the lines the writer has just written, and pulling
 * them over takes microseconds the writer should not wait). Of a
 * persistent log, copy them now (one block of dat; pread outside the
 * window). Caller holds c->mu and t->pos is in [low, next). */
static int
tail_grab(nm_redex_tail *t)
{
    nmi_rx_core *c = t->c;
    uint64_t n = c->next - t->pos;
    if (n > t->batch) {
        n = t->batch;
    }
    if (n > WALK_CHUNK) {
        n = WALK_CHUNK;
    }
    int rc = read_recs(c, t->pos, (size_t)n, t->s_recs);
    if (rc) {
        return rc;
    }
    /* Bound the batch to ~TAIL_BYTES (at least one record); find the
     * heap payloads' block (contiguous in dat). */
    size_t bytes = 0, k = 0;
    uint64_t dstart = UINT64_MAX, dlen = 0;
    for (; k < n; k++) {
        nmi_rx_rec r;
        nmi_rx_rec_decode(t->s_recs + k * NMI_RX_REC, &r);
        size_t l = nmi_rx_rec_paylen(&r) + 1u;
        if (k > 0 && bytes + l > TAIL_BYTES) {
            break;
        }
        bytes += l;
        if (!(r.fc & NM_REDEX_FLAG_INLINE)) {
            if (dstart == UINT64_MAX) {
                dstart = ck_resolve(c, t->pos + k - c->gen_first, r.off);
            }
            dlen += r.len;
        }
    }
    /* Room for the events now (tail_build must not allocate while it
     * holds a pin). */
    if (k > t->ev_cap) {
        nm_redex_event *nv = realloc(t->ev, k * sizeof(*nv));
        if (!nv) {
            return nmi_err(NM_ENOMEM, "tail buffer");
        }
        t->ev = nv;
        t->ev_cap = k;
    }
    if (bytes > t->arena_cap) {
        uint8_t *na = realloc(t->arena, bytes);
        if (!na) {
            return nmi_err(NM_ENOMEM, "tail buffer");
        }
        t->arena = na;
        t->arena_cap = bytes;
    }
    t->sk = k;
    t->s_arena = bytes;
    t->s_disk = false;
    t->s_pinned = !c->persistent;
    if (t->s_pinned) {
        /* In memory, every retained record is resident: pin the regions
         * and copy after releasing the mutex (the copy pulls the lines
         * the writer just wrote; it should not hold the writer up). */
        t->s_pdat = dlen ? c->dat.map + dstart : NULL;
        t->s_pts = c->ts.map + (t->pos - c->gen_first) * NMI_RX_TS;
        atomic_fetch_add_explicit(&c->pins, 1, memory_order_relaxed);
        return NM_OK;
    }
    if (dlen > t->scratch_cap) {
        uint8_t *nb = realloc(t->scratch, (size_t)dlen);
        if (!nb) {
            return nmi_err(NM_ENOMEM, "tail buffer");
        }
        t->scratch = nb;
        t->scratch_cap = (size_t)dlen;
    }
    if (dlen) {
        if (dstart >= c->dat.released && dstart + dlen <= c->dat.cap) {
            memcpy(t->scratch, c->dat.map + dstart, (size_t)dlen);
        } else {
            rc = nmi_rx_region_read(&c->dat, dstart, t->scratch, (size_t)dlen);
            if (rc) {
                return rc;
            }
            t->s_disk = true; /* not our memory: check it */
        }
    }
    return nmi_rx_region_read(&c->ts, (t->pos - c->gen_first) * NMI_RX_TS,
                              t->s_ts, k * NMI_RX_TS);
}

/* Turn the staged batch into events (payloads NUL-terminated in the
 * arena), advancing the tail; drops the pin. Reader thread, no lock. */
static int
tail_build(nm_redex_tail *t)
{
    size_t k = t->sk;
    const uint8_t *src = t->scratch, *tsb = t->s_ts;
    if (t->s_pinned) {
        src = t->s_pdat;
        tsb = t->s_pts;
    }
    size_t a = 0;
    uint64_t doff = 0;
    for (size_t j = 0; j < k; j++) {
        nmi_rx_rec r;
        nmi_rx_rec_decode(t->s_recs + j * NMI_RX_REC, &r);
        nm_redex_event *e = &t->ev[j];
        e->seq = r.seq;
        e->timestamp_ns = nmi_load_le64(tsb + j * NMI_RX_TS);
        e->flags = r.fc & NMI_RX_FLAG_MASK;
        e->checksum = r.fc & NMI_RX_CKSUM_MASK;
        uint8_t *dst = t->arena + a;
        if (r.fc & NM_REDEX_FLAG_INLINE) {
            nmi_rx_rec_inline(&r, dst);
            e->len = 8;
        } else {
            if (r.len) {
                memcpy(dst, src + doff, r.len);
            }
            doff += r.len;
            e->len = r.len;
        }
        dst[e->len] = '\0';
        e->payload = dst;
        a += e->len + 1;
        if (t->s_disk && cksum(dst, e->len) != e->checksum) {
            t->sk = 0;
            return nmi_err(NM_EDECODE,
                           "record %llu of channel %s no longer matches its "
                           "checksum on disk",
                           (unsigned long long)r.seq, t->c->channel);
        }
    }
    if (t->s_pinned) {
        /* Release: our reads are done before whoever waits moves on. */
        atomic_fetch_sub_explicit(&t->c->pins, 1, memory_order_release);
        t->s_pinned = false;
    }
    t->nev = k;
    t->iev = 0;
    t->pos += k;
    t->sk = 0;
    return NM_OK;
}

/* How long a caught-up tail watches the log before it sleeps, and the
 * longest pause between two looks (the pauses double from the first). */
#define TAIL_SPIN_NS 20000u
#define TAIL_SPIN_FIRST_NS 250u
#define TAIL_SPIN_MAX_GAP_NS 4000u

/* Watch next_pub (no lock) for up to TAIL_SPIN_NS: return once the log
 * has moved past pos, or the tail or the log was closed. Looks are spaced
 * out (doubling gaps), so the writer's cache line is left alone. */
static void
tail_spin(nm_redex_tail *t, uint64_t pos)
{
    nmi_rx_core *c = t->c;
    if (!c->spin_ok) {
        return;
    }
    uint64_t start = fast_now(), gap = TAIL_SPIN_FIRST_NS;
    uint64_t next_look = start;
    for (;;) {
        uint64_t now = fast_now();
        if (now - start >= TAIL_SPIN_NS) {
            return;
        }
        if (now >= next_look) {
            if (atomic_load_explicit(&c->next_pub, memory_order_acquire) !=
                    pos ||
                atomic_load_explicit(&c->closed_pub, memory_order_relaxed) ||
                atomic_load_explicit(&t->cancelled, memory_order_relaxed)) {
                return;
            }
            next_look = now + gap;
            if (gap < TAIL_SPIN_MAX_GAP_NS) {
                gap *= 2;
            }
        }
        nmi_cpu_relax();
    }
}

static int
wait_fd(int fd, uint64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int left = nmi_ms_left(deadline);
    if (left == 0) {
        return NM_ETIMEDOUT;
    }
    int r = poll(&p, 1, left);
    if (r < 0 && errno != EINTR) {
        return nmi_err(NM_EIO, "poll: %s", strerror(errno));
    }
    if (r == 0 && nmi_ms_left(deadline) == 0) {
        return NM_ETIMEDOUT;
    }
    return NM_OK;
}

int
nm_redex_tail_next(nm_redex_tail *t, nm_redex_event *ev, int timeout_ms)
{
    if (!t || !ev) {
        return nmi_err(NM_EINVAL, "tail and ev must not be NULL");
    }
    if (atomic_load(&t->cancelled)) {
        return nmi_err(NM_ECLOSED, "tail cancelled");
    }
    nmi_rx_core *c = t->c;
    if (t->iev < t->nev) {
        /* The buffer is only ours; but a closed file ends the stream at
         * once (documented). No lock: the writer's mutex stays its own. */
        if (!atomic_load_explicit(&c->closed_pub, memory_order_acquire)) {
            *ev = t->ev[t->iev++];
            return NM_OK;
        }
    }
    uint64_t deadline = nmi_deadline_ms(timeout_ms);
    bool spun = timeout_ms == 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (atomic_load(&t->cancelled) || c->closed) {
            t->nev = t->iev = 0;
            pthread_mutex_unlock(&c->mu);
            return nmi_err(NM_ECLOSED, "%s",
                           c->closed ? "channel closed" : "tail cancelled");
        }
        if (t->pos < c->low) {
            uint64_t first = t->pos;
            t->pos = c->low;
            pthread_mutex_unlock(&c->mu);
            memset(ev, 0, sizeof(*ev));
            ev->seq = first;
            return nmi_err(NM_ELAGGED,
                           "tail of %s fell behind: seqs %llu..%llu were "
                           "evicted before it read them; resuming at %llu",
                           c->channel, (unsigned long long)first,
                           (unsigned long long)(t->pos - 1),
                           (unsigned long long)t->pos);
        }
        if (t->pos < c->next) {
            int rc = tail_grab(t);
            pthread_mutex_unlock(&c->mu);
            if (!rc) {
                rc = tail_build(t);
            }
            if (rc) {
                return rc;
            }
            *ev = t->ev[t->iev++];
            return NM_OK;
        }
        if (!spun) {
            /* Caught up. Sleeping would cost the next append a system
             * call to wake us (and us the wake-up), so first watch the
             * log for a moment: a streaming writer is back within it. */
            spun = true;
            uint64_t pos = t->pos;
            pthread_mutex_unlock(&c->mu);
            tail_spin(t, pos);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        /* Reset readiness and wait for the next append. A cancel (flag,
         * then signal; no lock) that landed between the check above and
         * the drain lost its signal: look again. */
        nmi_evfd_drain(t->fd);
        if (atomic_load(&t->cancelled)) {
            continue;
        }
        int rc = arm(c, t);
        pthread_mutex_unlock(&c->mu);
        if (rc) {
            return rc;
        }
        rc = wait_fd(t->fd, deadline);
        pthread_mutex_lock(&c->mu);
        if (rc) {
            if (t->pos < c->next || t->pos < c->low || c->closed ||
                atomic_load(&t->cancelled)) {
                continue;
            }
            pthread_mutex_unlock(&c->mu);
            return rc == NM_ETIMEDOUT
                       ? nmi_err(NM_ETIMEDOUT, "no record within %d ms",
                                 timeout_ms)
                       : rc;
        }
    }
}

int
nm_redex_tail_fd(const nm_redex_tail *t)
{
    return t ? t->fd : -1;
}

uint64_t
nm_redex_tail_position(const nm_redex_tail *t)
{
    if (!t) {
        return 0;
    }
    return t->pos - (t->nev - t->iev);
}

void
nm_redex_tail_cancel(nm_redex_tail *t)
{
    if (!t) {
        return;
    }
    atomic_store(&t->cancelled, true);
    nmi_evfd_signal(t->fd);
}

void
nm_redex_tail_close(nm_redex_tail *t)
{
    if (!t) {
        return;
    }
    nm_redex_tail_cancel(t);
    nmi_rx_core *c = t->c;
    pthread_mutex_lock(&c->mu);
    disarm(c, t);
    for (size_t i = 0; i < c->ntails; i++) {
        if (c->tails[i] == t) {
            c->tails[i] = c->tails[--c->ntails];
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    close(t->fd);
    free(t->ev);
    free(t->arena);
    free(t->scratch);
    free(t);
    nmi_rx_core_unref(c);
}
