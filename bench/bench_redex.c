/*
 * bench/bench_redex.c - `netmesh bench redex`: RedEX append and tail.
 *
 *   redex.append_mem_32B          ns per 32-byte append, in memory (the
 *                                 log grows: first-touch page faults of
 *                                 its memory are part of the figure)
 *   redex.append_mem_32B_prefaulted
 *                                 the same with the log's memory touched
 *                                 beforehand (internals: the append path
 *                                 alone; a diagnostic, no target)
 *   redex.append_mem_1KiB         ns per 1 KiB append, in memory
 *   redex.append_batch_64x64B     ns per append_batch of 64 x 64 B
 *   redex.tail_latency            ns from append to a tail reader that was
 *                                 asleep in nm_redex_tail_next holding the
 *                                 record (ping-pong, median; each append
 *                                 waits 100 us, past the 20 us a caught-up
 *                                 reader watches the log before it sleeps)
 *   redex.append_disk_groupcommit_32B
 *                                 appends/s on disk with EveryN(64),
 *                                 including the final sync; anchor
 *                                 sqlite_wal_insert_32B: SQLite, WAL,
 *                                 synchronous=NORMAL, one row per insert
 *                                 (autocommit), same run
 *   redex.append_disk_always_32B  appends/s with fsync Always (EveryN(1));
 *                                 anchor fdatasync_write_32B: a bare
 *                                 write(32 B) + fdatasync per op
 *
 * Every figure is the median of o->runs runs, each anchor measured in
 * the same run right after its figure. Files live in a fresh directory
 * under $TMPDIR (default /tmp), removed at the end.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <netmesh.h>
#include <netmesh/redex.h>

#include "redex/redex_impl.h"

#define MAXRUNS 101

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void
rm_rf(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int
fail(const char *what, int rc)
{
    fprintf(stderr, "bench redex: %s: %s (%s)\n", what, nm_strerror(rc),
            nm_errdetail());
    return -1;
}

static nm_redex_file *
open_file(nm_redex **rx, const char *dir, const nm_redex_file_config *fc)
{
    nm_redex_config c;
    nm_redex_config_init(&c);
    c.dir = dir;
    int rc = nm_redex_open(&c, rx);
    if (rc) {
        fail("open manager", rc);
        return NULL;
    }
    nm_redex_file *f;
    rc = nm_redex_open_file(*rx, "bench/log", fc, &f);
    if (rc) {
        fail("open file", rc);
        nm_redex_close(*rx);
        return NULL;
    }
    return f;
}

/* ns per append of `size` bytes, in memory. */
static double
run_append_mem(uint64_t n, size_t size)
{
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.max_memory_bytes = n * (size + 64) + (1u << 20);
    nm_redex *rx;
    nm_redex_file *f = open_file(&rx, NULL, &fc);
    if (!f) {
        return -1;
    }
    uint8_t *buf = malloc(size);
    memset(buf, 'x', size);
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        memcpy(buf, &i, sizeof(i));
        if (nm_redex_append(f, buf, size, NULL)) {
            fail("append", NM_EIO);
            n = 0;
            break;
        }
    }
    uint64_t t1 = nmb_now_ns();
    free(buf);
    nm_redex_close(rx);
    return n ? (double)(t1 - t0) / (double)n : -1;
}

/* ns per 32-byte append into memory that is already faulted in. */
static double
run_append_mem_prefaulted(uint64_t n)
{
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.max_memory_bytes = n * 96 + (1u << 20);
    nm_redex *rx;
    nm_redex_file *f = open_file(&rx, NULL, &fc);
    if (!f) {
        return -1;
    }
    nmi_rx_core *c = f->c;
    if (nmi_rx_region_reserve(&c->idx, (n + 2) * NMI_RX_REC) ||
        nmi_rx_region_reserve(&c->dat, (n + 2) * 32) ||
        nmi_rx_region_reserve(&c->ts, (n + 2) * NMI_RX_TS)) {
        nm_redex_close(rx);
        return -1;
    }
    memset(c->idx.map, 0, (size_t)c->idx.cap);
    memset(c->dat.map, 0, (size_t)c->dat.cap);
    memset(c->ts.map, 0, (size_t)c->ts.cap);
    uint8_t buf[32];
    memset(buf, 'x', sizeof(buf));
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        memcpy(buf, &i, sizeof(i));
        if (nm_redex_append(f, buf, sizeof(buf), NULL)) {
            n = 0;
            break;
        }
    }
    uint64_t t1 = nmb_now_ns();
    nm_redex_close(rx);
    return n ? (double)(t1 - t0) / (double)n : -1;
}

/* ns per append_batch of 64 x 64 B. */
static double
run_batch(uint64_t nbatches)
{
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.max_memory_bytes = nbatches * 64 * 128 + (1u << 20);
    nm_redex *rx;
    nm_redex_file *f = open_file(&rx, NULL, &fc);
    if (!f) {
        return -1;
    }
    static uint8_t bufs[64][64];
    const void *p[64];
    size_t l[64];
    for (int i = 0; i < 64; i++) {
        memset(bufs[i], 'a' + i % 26, 64);
        p[i] = bufs[i];
        l[i] = 64;
    }
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < nbatches; i++) {
        memcpy(bufs[0], &i, sizeof(i));
        if (nm_redex_append_batch(f, p, l, 64, NULL)) {
            fail("append_batch", NM_EIO);
            nbatches = 0;
            break;
        }
    }
    uint64_t t1 = nmb_now_ns();
    nm_redex_close(rx);
    return nbatches ? (double)(t1 - t0) / (double)nbatches : -1;
}

/* --------------------------------------------------------- tail latency */

typedef struct lat_ctx {
    nm_redex_tail *t;
    _Atomic uint64_t sent_at;
    _Atomic uint64_t got; /* records received */
    uint64_t n;
    double *lat;
} lat_ctx;

static void *
lat_reader(void *arg)
{
    lat_ctx *x = arg;
    for (uint64_t i = 0; i < x->n; i++) {
        nm_redex_event ev;
        if (nm_redex_tail_next(x->t, &ev, 10000) != NM_OK) {
            break;
        }
        uint64_t now = nmb_now_ns();
        x->lat[i] = (double)(now - atomic_load(&x->sent_at));
        atomic_store(&x->got, i + 1);
    }
    return NULL;
}

static double
run_tail_latency(uint64_t n)
{
    nm_redex *rx;
    nm_redex_file *f = open_file(&rx, NULL, NULL);
    if (!f) {
        return -1;
    }
    lat_ctx x = {.n = n};
    x.lat = calloc(n, sizeof(double));
    int rc = nm_redex_tail_open(f, NM_REDEX_TAIL_LIVE, &x.t);
    if (rc) {
        fail("tail", rc);
        nm_redex_close(rx);
        free(x.lat);
        return -1;
    }
    pthread_t th;
    pthread_create(&th, NULL, lat_reader, &x);
    uint8_t buf[32] = {0};
    for (uint64_t i = 0; i < n; i++) {
        /* let the reader block again before the next append */
        uint64_t deadline = nmb_now_ns() + 1000000000ull;
        while (atomic_load(&x.got) < i && nmb_now_ns() < deadline) {
        }
        /* ... and give it time to go to sleep in poll() (a caught-up
         * reader watches the log for up to 20 us first) */
        uint64_t settle = nmb_now_ns() + 100000;
        while (nmb_now_ns() < settle) {
        }
        atomic_store(&x.sent_at, nmb_now_ns());
        if (nm_redex_append(f, buf, sizeof(buf), NULL)) {
            break;
        }
    }
    pthread_join(th, NULL);
    uint64_t got = atomic_load(&x.got);
    double med = got ? nmb_median(x.lat, (int)got) : -1;
    nm_redex_tail_close(x.t);
    nm_redex_close(rx);
    free(x.lat);
    return med;
}

/* ----------------------------------------------------------- disk */

/* appends/s of 32 B on disk with fsync EveryN(n) (n = 1: Always), the
 * final sync included. */
static double
run_append_disk(const char *base, uint64_t n, uint64_t every)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/rx-%llu", base, (unsigned long long)every);
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.persistent = true;
    fc.fsync = NM_REDEX_FSYNC_EVERY_N;
    fc.fsync_every_n = every;
    nm_redex *rx;
    nm_redex_file *f = open_file(&rx, dir, &fc);
    if (!f) {
        return -1;
    }
    uint8_t buf[32];
    memset(buf, 'd', sizeof(buf));
    int rc = 0;
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n && !rc; i++) {
        memcpy(buf, &i, sizeof(i));
        rc = nm_redex_append(f, buf, sizeof(buf), NULL);
    }
    if (!rc) {
        rc = nm_redex_sync(f);
    }
    uint64_t t1 = nmb_now_ns();
    nm_redex_close(rx);
    rm_rf(dir);
    if (rc) {
        fail("disk append", rc);
        return -1;
    }
    return (double)n * 1e9 / (double)(t1 - t0);
}

/* inserts/s: SQLite WAL, synchronous=NORMAL, one 32-byte row per
 * (autocommit) insert. */
static double
run_sqlite(const char *base, uint64_t n)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/sqlite.db", base);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "bench redex: sqlite open: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return -1;
    }
    char *err = NULL;
    if (sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                     "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);",
                     NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "bench redex: sqlite setup: %s\n", err);
        sqlite3_free(err);
        sqlite3_close(db);
        return -1;
    }
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES(?)", -1, &st, NULL);
    uint8_t buf[32];
    memset(buf, 's', sizeof(buf));
    int ok = 1;
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n && ok; i++) {
        memcpy(buf, &i, sizeof(i));
        sqlite3_bind_blob(st, 1, buf, sizeof(buf), SQLITE_STATIC);
        ok = sqlite3_step(st) == SQLITE_DONE;
        sqlite3_reset(st);
    }
    uint64_t t1 = nmb_now_ns();
    sqlite3_finalize(st);
    sqlite3_close(db);
    char p2[700];
    remove(path);
    snprintf(p2, sizeof(p2), "%s-wal", path);
    remove(p2);
    snprintf(p2, sizeof(p2), "%s-shm", path);
    remove(p2);
    if (!ok) {
        fprintf(stderr, "bench redex: sqlite insert failed\n");
        return -1;
    }
    return (double)n * 1e9 / (double)(t1 - t0);
}

/* ops/s: write(32 B) + fdatasync on a plain append-only file. */
static double
run_fdatasync(const char *base, uint64_t n)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/plain", base);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0) {
        fprintf(stderr, "bench redex: %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t buf[32];
    memset(buf, 'f', sizeof(buf));
    int ok = 1;
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n && ok; i++) {
        memcpy(buf, &i, sizeof(i));
        ok = write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf) &&
             fdatasync(fd) == 0;
    }
    uint64_t t1 = nmb_now_ns();
    close(fd);
    remove(path);
    return ok ? (double)n * 1e9 / (double)(t1 - t0) : -1;
}

/* ------------------------------------------------------------- group */

static int
runs_of(const nmb_opts *o)
{
    int r = o->runs < 1 ? 1 : o->runs;
    return r > MAXRUNS ? MAXRUNS : r;
}

static bool
any_failed(const double *v, int n)
{
    for (int i = 0; i < n; i++) {
        if (v[i] < 0) {
            return true;
        }
    }
    return false;
}

int
nmb_group_redex(const nmb_opts *o)
{
    int runs = runs_of(o);
    double a[MAXRUNS], b[MAXRUNS];
    int rc = 0;

    /* in memory */
    uint64_t n32 = nmb_iters(o, 2000000);
    for (int r = 0; r < runs; r++) {
        a[r] = run_append_mem(n32, 32);
    }
    if (any_failed(a, runs)) {
        return 1;
    }
    nmb_report(o, "redex.append_mem_32B", nmb_median(a, runs), "ns", NULL, 0);

    for (int r = 0; r < runs; r++) {
        a[r] = run_append_mem_prefaulted(n32);
    }
    if (any_failed(a, runs)) {
        return 1;
    }
    nmb_report(o, "redex.append_mem_32B_prefaulted", nmb_median(a, runs), "ns",
               NULL, 0);

    uint64_t n1k = nmb_iters(o, 200000);
    for (int r = 0; r < runs; r++) {
        a[r] = run_append_mem(n1k, 1024);
    }
    if (any_failed(a, runs)) {
        return 1;
    }
    nmb_report(o, "redex.append_mem_1KiB", nmb_median(a, runs), "ns", NULL, 0);

    uint64_t nb = nmb_iters(o, 50000);
    for (int r = 0; r < runs; r++) {
        a[r] = run_batch(nb);
    }
    if (any_failed(a, runs)) {
        return 1;
    }
    nmb_report(o, "redex.append_batch_64x64B", nmb_median(a, runs), "ns", NULL,
               0);

    uint64_t nl = nmb_iters(o, 2000);
    for (int r = 0; r < runs; r++) {
        a[r] = run_tail_latency(nl);
    }
    if (any_failed(a, runs)) {
        return 1;
    }
    nmb_report(o, "redex.tail_latency", nmb_median(a, runs), "ns", NULL, 0);

    /* on disk */
    const char *tmp = getenv("TMPDIR");
    char base[512];
    snprintf(base, sizeof(base), "%s/nm_bench_redex_XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base)) {
        fprintf(stderr, "bench redex: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    uint64_t ng = nmb_iters(o, 200000), ns = nmb_iters(o, 20000);
    for (int r = 0; r < runs && !rc; r++) {
        a[r] = run_append_disk(base, ng, 64);
        b[r] = run_sqlite(base, ns);
        rc = a[r] < 0 || b[r] < 0;
    }
    if (!rc) {
        nmb_report(o, "redex.append_disk_groupcommit_32B", nmb_median(a, runs),
                   "appends/s", "sqlite_wal_insert_32B", nmb_median(b, runs));
    }
    uint64_t na = nmb_iters(o, 200);
    for (int r = 0; r < runs && !rc; r++) {
        a[r] = run_append_disk(base, na, 1);
        b[r] = run_fdatasync(base, na);
        rc = a[r] < 0 || b[r] < 0;
    }
    if (!rc) {
        nmb_report(o, "redex.append_disk_always_32B", nmb_median(a, runs),
                   "appends/s", "fdatasync_write_32B", nmb_median(b, runs));
    }
    rm_rf(base);
    return rc;
}
