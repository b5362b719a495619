/* tests/unit/test_bus_backpressure.c - ring edge cases and every
 * backpressure mode on a tiny ring, with exact counts. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "bus_helpers.h"

/* Poll everything (one shard) and return the "i" values in order. */
static size_t
poll_is(nm_bus *bus, int *out, size_t max)
{
    nm_poll_request req;
    nm_poll_request_init(&req);
    req.limit = 100000;
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    size_t n = 0;
    for (size_t k = 0; k < resp.count && n < max; k++) {
        int v;
        cr_assert_eq(
            sscanf((const char *)resp.events[k].data, "{\"i\":%d}", &v), 1);
        out[n++] = v;
    }
    nm_poll_response_free(&resp);
    return n;
}

Test(ring, two_slots_full_then_wrap)
{
    nm_bus *bus = tiny_bus(2, NM_BP_FAIL_PRODUCER, 0);
    nm_receipt r;
    NM_ASSERT_OK(emit_n(bus, 0, &r));
    cr_assert_eq(r.seq, 0);
    NM_ASSERT_OK(emit_n(bus, 1, &r));
    cr_assert_eq(r.seq, 1);
    NM_ASSERT_ERR(emit_n(bus, 2, &r), NM_EBACKPRESSURE);
    cr_assert_eq(nm_bus_dispatch(bus, 1), 1); /* one slot frees */
    NM_ASSERT_OK(emit_n(bus, 3, &r));
    cr_assert_eq(r.seq, 2, "sequence continues across the wrap");
    NM_ASSERT_ERR(emit_n(bus, 4, &r), NM_EBACKPRESSURE);
    cr_assert_eq(nm_bus_dispatch(bus, 0), 2);
    int is[8];
    cr_assert_eq(poll_is(bus, is, 8), 3);
    cr_assert_eq(is[0], 0);
    cr_assert_eq(is[1], 1);
    cr_assert_eq(is[2], 3);
    nm_bus_close(bus);
}

Test(ring, wraps_many_times_in_order)
{
    nm_bus *bus = tiny_bus(4, NM_BP_FAIL_PRODUCER, 0);
    int next = 0;
    for (int round = 0; round < 1000; round++) {
        for (int k = 0; k < 3; k++) {
            nm_receipt r;
            NM_ASSERT_OK(emit_n(bus, next, &r));
            cr_assert_eq(r.seq, (uint64_t)next);
            next++;
        }
        cr_assert_eq(nm_bus_dispatch(bus, 0), 3);
    }
    int *is = malloc(sizeof(int) * 3000);
    cr_assert_eq(poll_is(bus, is, 3000), 3000);
    for (int k = 0; k < 3000; k++) {
        cr_assert_eq(is[k], k);
    }
    free(is);
    nm_bus_close(bus);
}

Test(ring, fills_exactly_to_capacity)
{
    /* Every slot is usable: capacity 8 takes 8 events, the 9th is full. */
    nm_bus *bus = tiny_bus(8, NM_BP_FAIL_PRODUCER, 0);
    for (int k = 0; k < 8; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_ERR(emit_n(bus, 8, NULL), NM_EBACKPRESSURE);
    cr_assert_eq(stats_of(bus).queued, 8);
    nm_bus_close(bus);
}

Test(ring, large_events_take_the_heap_path)
{
    nm_bus *bus = tiny_bus(4, NM_BP_DROP_OLDEST, 0);
    size_t sizes[] = {1,
                      NM_BUS_INLINE_MAX - 1,
                      NM_BUS_INLINE_MAX,
                      NM_BUS_INLINE_MAX + 1,
                      4096,
                      100000};
    size_t ns = sizeof(sizes) / sizeof(sizes[0]);
    uint8_t *buf = malloc(100000);
    for (size_t k = 0; k < ns; k++) {
        memset(buf, 'a' + (int)k, sizes[k]);
        NM_ASSERT_OK(nm_bus_emit_raw(bus, buf, sizes[k], NULL));
    }
    /* 6 into 4 slots: the two oldest (inline) were evicted. */
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.dropped, 2);
    cr_assert_eq(nm_bus_dispatch(bus, 0), 4);
    nm_poll_request req;
    nm_poll_request_init(&req);
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 4);
    for (size_t k = 0; k < 4; k++) {
        cr_assert_eq(resp.events[k].len, sizes[k + 2]);
        cr_assert_eq(resp.events[k].data[0], 'a' + (int)(k + 2));
        cr_assert_eq(resp.events[k].data[resp.events[k].len - 1],
                     'a' + (int)(k + 2));
        cr_assert_eq(resp.events[k].data[resp.events[k].len], '\0');
    }
    nm_poll_response_free(&resp);
    /* Heap events still queued at close are freed (ASan checks). */
    for (int k = 0; k < 3; k++) {
        NM_ASSERT_OK(nm_bus_emit_raw(bus, buf, 5000, NULL));
    }
    free(buf);
    nm_bus_close(bus);
}

Test(backpressure, drop_newest_rejects_and_counts_dropped)
{
    nm_bus *bus = tiny_bus(4, NM_BP_DROP_NEWEST, 0);
    for (int k = 0; k < 4; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_ERR(emit_n(bus, 4, NULL), NM_EBACKPRESSURE);
    NM_ASSERT_ERR(emit_n(bus, 5, NULL), NM_EBACKPRESSURE);
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.ingested, 6);
    cr_assert_eq(st.dropped, 2);
    cr_assert_eq(st.rejected, 0);
    cr_assert_eq(st.queued, 4);
    NM_ASSERT_OK(nm_bus_flush(bus, 1000));
    st = stats_of(bus);
    cr_assert_eq(st.dispatched + st.dropped, st.ingested);
    int is[8];
    cr_assert_eq(poll_is(bus, is, 8), 4);
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(is[k], k, "the old events survive");
    }
    nm_bus_close(bus);
}

Test(backpressure, drop_oldest_evicts_and_counts)
{
    nm_bus *bus = tiny_bus(4, NM_BP_DROP_OLDEST, 0);
    for (int k = 0; k < 10; k++) {
        nm_receipt r;
        NM_ASSERT_OK(emit_n(bus, k, &r));
        cr_assert_eq(r.seq, (uint64_t)k);
    }
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.ingested, 10);
    cr_assert_eq(st.dropped, 6,
                 "evictions are counted (upstream hides "
                 "them)");
    NM_ASSERT_OK(nm_bus_flush(bus, 1000));
    st = stats_of(bus);
    cr_assert_eq(st.dispatched, 4);
    cr_assert_eq(st.dispatched + st.dropped, st.ingested);
    int is[8];
    cr_assert_eq(poll_is(bus, is, 8), 4);
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(is[k], 6 + k, "the newest events survive");
    }
    nm_bus_close(bus);
}

Test(backpressure, fail_producer_rejects_without_dropping)
{
    nm_bus *bus = tiny_bus(4, NM_BP_FAIL_PRODUCER, 0);
    for (int k = 0; k < 4; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    for (int k = 0; k < 3; k++) {
        NM_ASSERT_ERR(emit_n(bus, 4 + k, NULL), NM_EBACKPRESSURE);
    }
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.ingested, 4);
    cr_assert_eq(st.dropped, 0, "FailProducer never counts drops");
    cr_assert_eq(st.rejected, 3);
    NM_ASSERT_OK(nm_bus_flush(bus, 1000));
    st = stats_of(bus);
    cr_assert_eq(st.dispatched + st.dropped, st.ingested);
    nm_bus_close(bus);
}

Test(backpressure, sample_keeps_one_in_rate)
{
    nm_bus *bus = tiny_bus(4, NM_BP_SAMPLE, 3);
    for (int k = 0; k < 4; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL)); /* not full: all accepted */
    }
    int kept = 0, sampled = 0;
    for (int k = 4; k < 13; k++) {
        int rc = emit_n(bus, k, NULL);
        if (rc == NM_OK) {
            kept++;
        } else {
            cr_assert_eq(rc, NM_ESAMPLED);
            sampled++;
        }
    }
    cr_assert_eq(kept, 3, "1 in 3 of the 9 arrivals under pressure");
    cr_assert_eq(sampled, 6);
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.sampled, 6);
    cr_assert_eq(st.ingested, 7);
    cr_assert_eq(st.dropped, 3, "each kept sample evicted the oldest");
    NM_ASSERT_OK(nm_bus_flush(bus, 1000));
    st = stats_of(bus);
    cr_assert_eq(st.dispatched + st.dropped, st.ingested);
    int is[8];
    cr_assert_eq(poll_is(bus, is, 8), 4);
    /* Arrivals 4 (kept), 5, 6 (sampled), 7 (kept), ..., 10 (kept). */
    cr_assert_eq(is[0], 3);
    cr_assert_eq(is[1], 4);
    cr_assert_eq(is[2], 7);
    cr_assert_eq(is[3], 10);
    nm_bus_close(bus);
}

Test(backpressure, sample_rate_one_keeps_everything)
{
    nm_bus *bus = tiny_bus(2, NM_BP_SAMPLE, 1);
    for (int k = 0; k < 10; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.sampled, 0);
    cr_assert_eq(st.dropped, 8);
    nm_bus_close(bus);
}

Test(backpressure, block_times_out)
{
    nm_bus *bus = tiny_bus(2, NM_BP_BLOCK, 0); /* block_timeout_ms = 50 */
    NM_ASSERT_OK(emit_n(bus, 0, NULL));
    NM_ASSERT_OK(emit_n(bus, 1, NULL));
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    NM_ASSERT_ERR(emit_n(bus, 2, NULL), NM_ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    cr_assert_geq(ms, 49.0, "waited the whole timeout (%.1f ms)", ms);
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.rejected, 1);
    cr_assert_eq(st.dropped, 0);
    cr_assert_eq(st.ingested, 2);
    nm_bus_close(bus);
}

static void *
dispatch_later(void *arg)
{
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    nm_bus_dispatch(arg, 0);
    return NULL;
}

Test(backpressure, block_waits_for_room)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 1;
    cfg.ring_capacity = 2;
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 30000; /* generous: room comes from the thread */
    cfg.dispatch = NM_DISPATCH_MANUAL;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    NM_ASSERT_OK(emit_n(bus, 0, NULL));
    NM_ASSERT_OK(emit_n(bus, 1, NULL));
    pthread_t t;
    pthread_create(&t, NULL, dispatch_later, bus);
    NM_ASSERT_OK(emit_n(bus, 2, NULL)); /* blocks until the dispatch */
    pthread_join(t, NULL);
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.ingested, 3);
    cr_assert_eq(st.rejected, 0);
    cr_assert_eq(st.dropped, 0);
    nm_bus_close(bus);
}

Test(backpressure, block_with_dispatcher_thread_loses_nothing)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 2;
    cfg.ring_capacity = 16;
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 30000;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    for (int k = 0; k < 20000; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 30000));
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.ingested, 20000);
    cr_assert_eq(st.dispatched, 20000);
    cr_assert_eq(st.dropped + st.rejected, 0);
    nm_bus_close(bus);
}
