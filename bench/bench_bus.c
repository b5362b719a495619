/*
 * bench/bench_bus.c - `netmesh bench bus`: event-bus ingestion and poll.
 *
 * Anchor: spsc_ring_64B, a bare single-producer/single-consumer ring (no
 * hashing, no timestamps, no batching) moving 64-byte messages between
 * two threads, measured in the same run, interleaved with each figure.
 *
 * Every bus figure is end to end and sustainable: the bus runs in Block
 * mode, so a producer faster than the dispatcher waits instead of having
 * its events evicted, and the clock stops only after nm_bus_flush. A run
 * that dropped anything is reported as an error.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh.h>

#define MSG 64

/* ------------------------------------------------------------ anchor */

typedef struct spsc {
    _Atomic uint64_t head __attribute__((aligned(64)));
    _Atomic uint64_t tail __attribute__((aligned(64)));
    uint64_t mask;
    uint8_t (*slot)[MSG];
    uint64_t n;
} spsc;

static void *
spsc_consumer(void *arg)
{
    spsc *r = arg;
    uint64_t head = 0, tail = 0, sum = 0;
    uint8_t tmp[MSG];
    while (head < r->n) {
        if (head == tail) {
            tail = atomic_load_explicit(&r->tail, memory_order_acquire);
            if (head == tail) {
                continue;
            }
        }
        memcpy(tmp, r->slot[head & r->mask], MSG);
        sum += tmp[0];
        head++;
        atomic_store_explicit(&r->head, head, memory_order_release);
    }
    NMB_SINK(sum);
    return NULL;
}

/* Messages per second through a bare SPSC ring. */
static double
run_spsc(uint64_t n)
{
    spsc r = {.mask = 65535, .n = n};
    r.slot = aligned_alloc(64, 65536 * MSG);
    memset(r.slot, 0, 65536 * MSG);
    pthread_t t;
    uint8_t msg[MSG];
    memset(msg, 'x', MSG);
    uint64_t t0 = nmb_now_ns();
    pthread_create(&t, NULL, spsc_consumer, &r);
    uint64_t head = 0;
    for (uint64_t i = 0; i < n; i++) {
        while (i - head > r.mask) {
            head = atomic_load_explicit(&r.head, memory_order_acquire);
        }
        memcpy(msg, &i, sizeof(i));
        memcpy(r.slot[i & r.mask], msg, MSG);
        atomic_store_explicit(&r.tail, i + 1, memory_order_release);
    }
    pthread_join(t, NULL);
    uint64_t t1 = nmb_now_ns();
    free(r.slot);
    return (double)n * 1e9 / (double)(t1 - t0);
}

/* ------------------------------------------------------------ bus */

static nm_bus *
bench_bus_open(void)
{
    static nm_memory_config mc = {.capacity_per_shard = 1u << 16};
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 4;
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 60000;
    cfg.adapter_config = &mc;
    nm_bus *bus = NULL;
    int rc = nm_bus_open(&cfg, &bus);
    if (rc) {
        fprintf(stderr, "bench bus: open: %s (%s)\n", nm_strerror(rc),
                nm_errdetail());
        exit(1);
    }
    return bus;
}

static int
finish(nm_bus *bus, uint64_t expect)
{
    int rc = nm_bus_flush(bus, 60000);
    nm_bus_stats st;
    nm_bus_stats_get(bus, &st);
    if (rc || st.dropped || st.rejected || st.dispatched != expect) {
        fprintf(stderr,
                "bench bus: lost events (flush %s, dispatched %llu of %llu, "
                "dropped %llu, rejected %llu)\n",
                nm_strerror(rc), (unsigned long long)st.dispatched,
                (unsigned long long)expect, (unsigned long long)st.dropped,
                (unsigned long long)st.rejected);
        return -1;
    }
    return 0;
}

static void
fill_msg(uint8_t *msg, uint64_t i)
{
    memcpy(msg, &i, sizeof(i));
}

static double
run_emit(uint64_t n, int *err)
{
    nm_bus *bus = bench_bus_open();
    uint8_t msg[MSG];
    memset(msg, 'x', MSG);
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        fill_msg(msg, i);
        if (nm_bus_emit_raw(bus, msg, MSG, NULL) != NM_OK) {
            *err = 1;
        }
    }
    *err |= finish(bus, n) != 0;
    uint64_t t1 = nmb_now_ns();
    nm_bus_close(bus);
    return (double)n * 1e9 / (double)(t1 - t0);
}

static double
run_emit_batch(uint64_t n, int *err)
{
    enum { B = 1000 };
    nm_bus *bus = bench_bus_open();
    uint8_t(*msgs)[MSG] = malloc(B * MSG);
    const void *ptrs[B];
    size_t lens[B];
    for (int k = 0; k < B; k++) {
        memset(msgs[k], 'x', MSG);
        ptrs[k] = msgs[k];
        lens[k] = MSG;
    }
    n -= n % B;
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i += B) {
        for (int k = 0; k < B; k++) {
            fill_msg(msgs[k], i + (uint64_t)k);
        }
        if (nm_bus_emit_raw_batch(bus, ptrs, lens, B) != B) {
            *err = 1;
        }
    }
    *err |= finish(bus, n) != 0;
    uint64_t t1 = nmb_now_ns();
    nm_bus_close(bus);
    free(msgs);
    return (double)n * 1e9 / (double)(t1 - t0);
}

typedef struct {
    nm_bus *bus;
    uint64_t from, n;
    int err;
} prod_arg;

static void *
producer(void *arg)
{
    prod_arg *a = arg;
    uint8_t msg[MSG];
    memset(msg, 'y', MSG);
    for (uint64_t i = a->from; i < a->from + a->n; i++) {
        fill_msg(msg, i);
        if (nm_bus_emit_raw(a->bus, msg, MSG, NULL) != NM_OK) {
            a->err = 1;
        }
    }
    return NULL;
}

static double
run_emit_2p(uint64_t n, int *err)
{
    nm_bus *bus = bench_bus_open();
    prod_arg a[2] = {{bus, 0, n / 2, 0}, {bus, n / 2, n / 2, 0}};
    pthread_t t[2];
    uint64_t t0 = nmb_now_ns();
    for (int k = 0; k < 2; k++) {
        pthread_create(&t[k], NULL, producer, &a[k]);
    }
    for (int k = 0; k < 2; k++) {
        pthread_join(t[k], NULL);
        *err |= a[k].err;
    }
    *err |= finish(bus, n / 2 * 2) != 0;
    uint64_t t1 = nmb_now_ns();
    nm_bus_close(bus);
    return (double)(n / 2 * 2) * 1e9 / (double)(t1 - t0);
}

/* Events per second read back through poll(limit 1000), paging the
 * whole memory log with the cursor. */
static double
run_poll(uint64_t n, int *err)
{
    nm_memory_config mc = {.capacity_per_shard = n};
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 4;
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 60000;
    cfg.adapter_config = &mc;
    nm_bus *bus;
    if (nm_bus_open(&cfg, &bus)) {
        *err = 1;
        return 0;
    }
    uint8_t msg[MSG];
    memset(msg, 'z', MSG);
    for (uint64_t i = 0; i < n; i++) {
        fill_msg(msg, i);
        nm_bus_emit_raw(bus, msg, MSG, NULL);
    }
    *err |= finish(bus, n) != 0;
    uint64_t got = 0;
    char *cursor = NULL;
    uint64_t t0 = nmb_now_ns();
    for (;;) {
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = 1000;
        req.cursor = cursor;
        nm_poll_response resp;
        if (nm_bus_poll(bus, &req, &resp) != NM_OK) {
            *err = 1;
            break;
        }
        got += resp.count;
        free(cursor);
        cursor = strdup(resp.next_cursor);
        bool more = resp.has_more;
        nm_poll_response_free(&resp);
        if (!more) {
            break;
        }
    }
    uint64_t t1 = nmb_now_ns();
    free(cursor);
    if (got != n) {
        fprintf(stderr, "bench bus: poll read %llu of %llu\n",
                (unsigned long long)got, (unsigned long long)n);
        *err = 1;
    }
    nm_bus_close(bus);
    return (double)got * 1e9 / (double)(t1 - t0);
}

int
nmb_group_bus(const nmb_opts *o)
{
    enum { MAXR = 101 };
    double base[MAXR], v1[MAXR], v2[MAXR], v3[MAXR], v4[MAXR];
    int runs = o->runs > MAXR ? MAXR : o->runs;
    uint64_t n = nmb_iters(o, 5000000);
    int err = 0;
    for (int r = 0; r < runs; r++) {
        base[r] = run_spsc(n);
        v1[r] = run_emit(n, &err);
        v2[r] = run_emit_batch(n, &err);
        v3[r] = run_emit_2p(n, &err);
        v4[r] = run_poll(nmb_iters(o, 1000000), &err);
    }
    double b = nmb_median(base, runs);
    nmb_report(o, "bus.emit_raw_64B", nmb_median(v1, runs), "events/s",
               "spsc_ring_64B", b);
    nmb_report(o, "bus.emit_raw_batch_64B", nmb_median(v2, runs), "events/s",
               "spsc_ring_64B", b);
    nmb_report(o, "bus.emit_raw_64B_2producers", nmb_median(v3, runs),
               "events/s", "spsc_ring_64B", b);
    nmb_report(o, "bus.poll_1000", nmb_median(v4, runs), "events/s", NULL, 0);
    if (err) {
        fprintf(stderr, "bench bus: some runs lost or failed events\n");
    }
    return err ? -1 : 0;
}
