/*
 * bench/bench_cortex.c - `netmesh bench cortex`: CortEX tasks and NetDb
 * snapshots, in memory.
 *
 *   cortex.tasks_create         ns per nm_cortex_tasks_create (encode,
 *                               checksum, RedEX append) while the fold
 *                               thread applies concurrently; the wait for
 *                               the fold to catch up is not timed. Anchor
 *                               redex_append_45B: a bare nm_redex_append
 *                               of an event-sized payload, same run
 *   cortex.create_wait_roundtrip
 *                               us from create to wait_for_token returning
 *                               (the fold applied it), one at a time,
 *                               median over the ops
 *   cortex.find_unique          ns per lookup inside one read guard
 *                               (nm_cortex_tasks_view_get) over 10,000
 *                               tasks, random ids
 *   cortex.find_unique_copy     ns per nm_cortex_tasks_find_unique (lock
 *                               + lookup + copy into a new list + free)
 *   cortex.find_many_10k        us per find_many over 10,000 tasks: status
 *                               pending (half of them), ordered
 *                               created_desc, copied out (5,000 results)
 *   cortex.count_where_10k      us per count_where(status pending, title
 *                               contains "7") over 10,000 tasks
 *   netdb.snapshot_encode_10k   us for nm_netdb_snapshot_take +
 *                               nm_netdb_snapshot_encode of 10,000 tasks
 *   netdb.snapshot_decode_10k   us for nm_netdb_snapshot_decode of it
 *                               (which also validates both states)
 *
 * Every figure is the median of o->runs runs.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh.h>
#include <netmesh/cortex.h>

#define MAXRUNS 101
#define NTASKS 10000

static int
fail(const char *what, int rc)
{
    fprintf(stderr, "bench cortex: %s: %s (%s)\n", what, nm_strerror(rc),
            nm_errdetail());
    return -1;
}

static nm_netdb *
open_db(uint64_t events)
{
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.max_memory_bytes = events * 128 + (64u << 20);
    nm_netdb_config c;
    nm_netdb_config_init(&c);
    c.origin_hash = 0xabcdef01;
    c.with_tasks = true;
    c.file = &fc;
    nm_netdb *db;
    int rc = nm_netdb_open(&c, &db);
    if (rc) {
        fail("open", rc);
        return NULL;
    }
    return db;
}

/* A db holding NTASKS tasks: id i*7+1, title "task <i>", created i, odd
 * ones completed. */
static nm_netdb *
filled_db(void)
{
    nm_netdb *db = open_db(2 * NTASKS);
    if (!db) {
        return NULL;
    }
    nm_cortex_tasks *t = nm_netdb_tasks(db);
    nm_write_token tok = {0};
    char title[32];
    int rc = 0;
    for (uint64_t i = 0; i < NTASKS && !rc; i++) {
        snprintf(title, sizeof(title), "task %llu", (unsigned long long)i);
        rc = nm_cortex_tasks_create(t, i * 7 + 1, title, i, &tok);
        if (!rc && i % 2) {
            rc = nm_cortex_tasks_complete(t, i * 7 + 1, i + 1, &tok);
        }
    }
    if (!rc) {
        rc = nm_cortex_tasks_wait_for_token(t, &tok, 60000);
    }
    if (rc) {
        fail("fill", rc);
        nm_netdb_free(db);
        return NULL;
    }
    return db;
}

static double
run_create(uint64_t n)
{
    nm_netdb *db = open_db(n);
    if (!db) {
        return -1;
    }
    nm_cortex_tasks *t = nm_netdb_tasks(db);
    nm_write_token tok = {0};
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        if (nm_cortex_tasks_create(t, i, "write the docs", i, &tok)) {
            fail("create", NM_EIO);
            n = 0;
            break;
        }
    }
    uint64_t t1 = nmb_now_ns();
    if (n && nm_cortex_tasks_wait_for_token(t, &tok, 60000)) {
        fail("wait", NM_ETIMEDOUT);
        n = 0;
    }
    nm_netdb_free(db);
    return n ? (double)(t1 - t0) / (double)n : -1;
}

/* The anchor: ns per bare nm_redex_append of a payload the size of the
 * create events above (45 bytes), in a fresh in-memory log, no fold. */
static double
run_raw_append(uint64_t n)
{
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.max_memory_bytes = n * 128 + (64u << 20);
    nm_redex *rx;
    nm_redex_file *f;
    if (nm_redex_open(NULL, &rx)) {
        return -1;
    }
    if (nm_redex_open_file(rx, "bench/raw", &fc, &f)) {
        nm_redex_close(rx);
        return -1;
    }
    uint8_t buf[45];
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

static double
run_roundtrip(uint64_t n)
{
    nm_netdb *db = open_db(n);
    if (!db) {
        return -1;
    }
    nm_cortex_tasks *t = nm_netdb_tasks(db);
    double *lat = calloc(n, sizeof(*lat));
    uint64_t done = 0;
    for (uint64_t i = 0; i < n; i++) {
        nm_write_token tok;
        uint64_t t0 = nmb_now_ns();
        if (nm_cortex_tasks_create(t, i, "x", i, &tok) ||
            nm_cortex_tasks_wait_for_token(t, &tok, 10000)) {
            fail("create+wait", NM_EIO);
            break;
        }
        lat[done++] = (double)(nmb_now_ns() - t0) / 1000.0;
    }
    double med = done ? nmb_median(lat, (int)done) : -1;
    free(lat);
    nm_netdb_free(db);
    return med;
}

static uint64_t *
random_ids(uint64_t n)
{
    uint64_t *ids = malloc(n * sizeof(*ids));
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids[i] = (x % NTASKS) * 7 + 1;
    }
    return ids;
}

static double
run_find_unique(nm_cortex_tasks *t, const uint64_t *ids, uint64_t n)
{
    const nm_cortex_tasks_view *v = nm_cortex_tasks_read_begin(t);
    uint64_t sum = 0;
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        const nm_cortex_task *x = nm_cortex_tasks_view_get(v, ids[i]);
        sum += x->created_ns;
    }
    uint64_t t1 = nmb_now_ns();
    nm_cortex_tasks_read_end(v);
    NMB_SINK(sum);
    return (double)(t1 - t0) / (double)n;
}

static double
run_find_unique_copy(nm_cortex_tasks *t, const uint64_t *ids, uint64_t n)
{
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        nm_cortex_task_list l;
        if (nm_cortex_tasks_find_unique(t, ids[i], &l)) {
            return -1;
        }
        NMB_SINK(l.items);
        nm_cortex_task_list_free(&l);
    }
    return (double)(nmb_now_ns() - t0) / (double)n;
}

static double
run_find_many(nm_cortex_tasks *t, uint64_t n)
{
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.status = NM_TASK_PENDING;
    f.order_by = NM_CORTEX_CREATED_DESC;
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        nm_cortex_task_list l;
        if (nm_cortex_tasks_find_many(t, &f, &l) || l.count != NTASKS / 2) {
            return -1;
        }
        nm_cortex_task_list_free(&l);
    }
    return (double)(nmb_now_ns() - t0) / (double)n / 1000.0;
}

static double
run_count_where(nm_cortex_tasks *t, uint64_t n)
{
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.status = NM_TASK_PENDING;
    f.title_contains = "7";
    size_t c = 0;
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        if (nm_cortex_tasks_count_where(t, &f, &c)) {
            return -1;
        }
    }
    NMB_SINK(c);
    return (double)(nmb_now_ns() - t0) / (double)n / 1000.0;
}

static double
run_snap_encode(nm_netdb *db, uint64_t n, uint8_t **keep, size_t *keep_len)
{
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        nm_netdb_snapshot s;
        uint8_t *enc;
        size_t len;
        if (nm_netdb_snapshot_take(db, &s) ||
            nm_netdb_snapshot_encode(&s, &enc, &len)) {
            return -1;
        }
        nm_netdb_snapshot_free(&s);
        if (!*keep) {
            *keep = enc;
            *keep_len = len;
        } else {
            free(enc);
        }
    }
    return (double)(nmb_now_ns() - t0) / (double)n / 1000.0;
}

static double
run_snap_decode(const uint8_t *enc, size_t len, uint64_t n)
{
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        nm_netdb_snapshot s;
        if (nm_netdb_snapshot_decode(enc, len, &s)) {
            return -1;
        }
        nm_netdb_snapshot_free(&s);
    }
    return (double)(nmb_now_ns() - t0) / (double)n / 1000.0;
}

int
nmb_group_cortex(const nmb_opts *o)
{
    int runs = o->runs < 1 ? 1 : (o->runs > MAXRUNS ? MAXRUNS : o->runs);
    double v[8][MAXRUNS], anchor[MAXRUNS];
    nm_netdb *db = filled_db();
    if (!db) {
        return -1;
    }
    nm_cortex_tasks *t = nm_netdb_tasks(db);
    uint64_t nlook = nmb_iters(o, 2000000);
    uint64_t *ids = random_ids(nlook);
    uint8_t *snap = NULL;
    size_t snap_len = 0;
    for (int r = 0; r < runs; r++) {
        v[0][r] = run_create(nmb_iters(o, 200000));
        anchor[r] = run_raw_append(nmb_iters(o, 200000));
        v[1][r] = run_roundtrip(nmb_iters(o, 2000));
        v[2][r] = run_find_unique(t, ids, nlook);
        v[3][r] = run_find_unique_copy(t, ids, nmb_iters(o, 200000));
        v[4][r] = run_find_many(t, nmb_iters(o, 50));
        v[5][r] = run_count_where(t, nmb_iters(o, 200));
        v[6][r] = run_snap_encode(db, nmb_iters(o, 20), &snap, &snap_len);
        v[7][r] =
            snap ? run_snap_decode(snap, snap_len, nmb_iters(o, 20)) : -1;
    }
    free(ids);
    free(snap);
    nm_netdb_free(db);
    static const struct {
        const char *name, *unit;
    } fig[8] = {
        {"cortex.tasks_create", "ns"},
        {"cortex.create_wait_roundtrip", "us"},
        {"cortex.find_unique", "ns"},
        {"cortex.find_unique_copy", "ns"},
        {"cortex.find_many_10k", "us"},
        {"cortex.count_where_10k", "us"},
        {"netdb.snapshot_encode_10k", "us"},
        {"netdb.snapshot_decode_10k", "us"},
    };
    int rc = 0;
    for (int k = 0; k < 8; k++) {
        for (int r = 0; r < runs; r++) {
            if (v[k][r] < 0) {
                fprintf(stderr, "bench cortex: %s failed\n", fig[k].name);
                rc = -1;
            }
        }
        if (k == 0) {
            nmb_report(o, fig[k].name, nmb_median(v[k], runs), fig[k].unit,
                       "redex_append_45B", nmb_median(anchor, runs));
        } else {
            nmb_report(o, fig[k].name, nmb_median(v[k], runs), fig[k].unit,
                       NULL, 0);
        }
    }
    return rc;
}
