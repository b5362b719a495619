/* tests/unit/test_bus_sub.c - live subscriptions: order, readiness fd,
 * typed decode errors, close/shutdown wake-ups, producers racing a
 * subscriber with exact loss accounting. */
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "bus_helpers.h"

static nm_bus *
open_bus(uint32_t shards, uint32_t ring, uint32_t subq)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = shards;
    cfg.ring_capacity = ring;
    cfg.sub_queue_capacity = subq;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    return bus;
}

static bool
fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

Test(sub, delivers_in_per_shard_order)
{
    nm_bus *bus = open_bus(4, 4096, 65536);
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe(bus, NULL, &sub));
    for (int k = 0; k < 1000; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    int64_t last[4] = {-1, -1, -1, -1};
    unsigned char seen[1000] = {0};
    for (int k = 0; k < 1000; k++) {
        nm_event ev;
        NM_ASSERT_OK(nm_sub_next(sub, &ev, 10000));
        cr_assert_gt((int64_t)ev.seq, last[ev.shard]);
        last[ev.shard] = (int64_t)ev.seq;
        int v;
        cr_assert_eq(sscanf((const char *)ev.data, "{\"i\":%d}", &v), 1);
        cr_assert_eq(seen[v], 0);
        seen[v] = 1;
    }
    nm_event ev;
    NM_ASSERT_ERR(nm_sub_next(sub, &ev, 0), NM_ETIMEDOUT);
    cr_assert_eq(nm_sub_missed(sub), 0);
    nm_sub_close(sub);
    nm_bus_close(bus);
}

Test(sub, only_events_accepted_after_creation)
{
    nm_bus *bus = open_bus(2, 4096, 65536);
    for (int k = 0; k < 50; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL)); /* may still be queued */
    }
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe(bus, NULL, &sub));
    for (int k = 50; k < 100; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    int got = 0;
    nm_event ev;
    while (nm_sub_next(sub, &ev, 0) == NM_OK) {
        int v;
        sscanf((const char *)ev.data, "{\"i\":%d}", &v);
        cr_assert_geq(v, 50, "event %d predates the subscription", v);
        got++;
    }
    cr_assert_eq(got, 50);
    nm_sub_close(sub);
    nm_bus_close(bus);
}

Test(sub, fd_is_readable_exactly_when_events_wait)
{
    nm_bus *bus = open_bus(1, 1024, 65536);
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe(bus, NULL, &sub));
    int fd = nm_sub_fd(sub);
    cr_assert_geq(fd, 0);
    cr_assert_not(fd_readable(fd));
    NM_ASSERT_OK(emit_n(bus, 1, NULL));
    NM_ASSERT_OK(emit_n(bus, 2, NULL));
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 10000), 1, "readable after a flush");
    nm_event ev;
    NM_ASSERT_OK(nm_sub_next(sub, &ev, 0));
    NM_ASSERT_OK(nm_sub_next(sub, &ev, 0));
    NM_ASSERT_ERR(nm_sub_next(sub, &ev, 0), NM_ETIMEDOUT);
    cr_assert_not(fd_readable(fd), "drained: not readable any more");
    nm_sub_close(sub);
    nm_bus_close(bus);
}

Test(sub, typed_stream_reports_decode_errors_and_goes_on)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 1;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe(bus, NULL, &sub));
    NM_ASSERT_OK(nm_bus_emit_str(bus, "{\"token\":\"a\",\"index\":1}", NULL));
    NM_ASSERT_OK(nm_bus_emit_raw(bus, "{broken", 7, NULL));
    NM_ASSERT_OK(nm_bus_emit_str(bus, "{\"token\":\"b\",\"index\":2}", NULL));
    nm_event ev;
    json_t *v;
    NM_ASSERT_OK(nm_sub_next_json(sub, &ev, &v, 10000));
    cr_assert_eq(json_integer_value(json_object_get(v, "index")), 1);
    json_decref(v);
    NM_ASSERT_ERR(nm_sub_next_json(sub, &ev, &v, 10000), NM_EDECODE);
    cr_assert_null(v);
    cr_assert_eq(ev.len, 7, "the bad event is still reported");
    NM_ASSERT_OK(nm_sub_next_json(sub, &ev, &v, 10000));
    cr_assert_str_eq(json_string_value(json_object_get(v, "token")), "b");
    json_decref(v);
    nm_sub_close(sub);
    nm_bus_close(bus);
}

static void *
blocked_reader(void *arg)
{
    nm_event ev;
    intptr_t rc = nm_sub_next(arg, &ev, -1);
    return (void *)rc;
}

Test(sub, cancel_wakes_a_blocked_reader)
{
    nm_bus *bus = open_bus(1, 1024, 1024);
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe(bus, NULL, &sub));
    pthread_t t;
    pthread_create(&t, NULL, blocked_reader, sub);
    nm_sub_cancel(sub);
    void *ret;
    pthread_join(t, &ret);
    cr_assert_eq((intptr_t)ret, NM_ECLOSED);
    nm_event ev;
    NM_ASSERT_ERR(nm_sub_next(sub, &ev, 0), NM_ECLOSED);
    nm_sub_close(sub);
    nm_bus_close(bus);
}

Test(sub, shutdown_drains_then_ends_the_stream)
{
    nm_bus *bus = open_bus(4, 4096, 65536);
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe(bus, NULL, &sub));
    for (int k = 0; k < 3000; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    /* No flush: shutdown must dispatch what is queued. */
    NM_ASSERT_OK(nm_bus_shutdown(bus, 10000));
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.queued, 0);
    cr_assert_eq(st.dispatched + st.dropped, st.ingested);
    int got = 0;
    nm_event ev;
    int rc;
    while ((rc = nm_sub_next(sub, &ev, 10000)) == NM_OK) {
        got++;
    }
    cr_assert_eq(rc, NM_ECLOSED, "end of stream, got %s", nm_err_name(rc));
    cr_assert_eq((uint64_t)got + st.dropped, 3000);
    /* A blocked reader after shutdown returns at once. */
    NM_ASSERT_ERR(nm_sub_next(sub, &ev, -1), NM_ECLOSED);
    /* Subscribing to a shut-down bus is refused. */
    nm_sub *late;
    NM_ASSERT_ERR(nm_bus_subscribe(bus, NULL, &late), NM_ESHUTDOWN);
    nm_bus_close(bus);
    nm_sub_close(sub); /* valid after the bus is gone */
}

Test(sub, slow_subscriber_misses_are_counted)
{
    nm_bus *bus = open_bus(1, 65536, 100);
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe(bus, NULL, &sub));
    for (int k = 0; k < 10000; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    uint64_t got = 0;
    nm_event ev;
    while (nm_sub_next(sub, &ev, 0) == NM_OK) {
        got++;
    }
    cr_assert_gt(nm_sub_missed(sub), 0);
    cr_assert_eq(got + nm_sub_missed(sub) + stats_of(bus).dropped, 10000);
    nm_sub_close(sub);
    nm_bus_close(bus);
}

Test(sub, filtered_subscription)
{
    nm_bus *bus = open_bus(2, 4096, 65536);
    nm_filter *f;
    NM_ASSERT_OK(nm_filter_parse("{\"path\":\"i\",\"value\":7}", &f));
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe(bus, f, &sub));
    nm_filter_free(f); /* the subscription keeps its own copy */
    for (int k = 0; k < 20; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    nm_event ev;
    NM_ASSERT_OK(nm_sub_next(sub, &ev, 10000));
    cr_assert_str_eq((const char *)ev.data, "{\"i\":7}");
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    NM_ASSERT_ERR(nm_sub_next(sub, &ev, 0), NM_ETIMEDOUT);
    nm_sub_close(sub);
    nm_bus_close(bus);
}

/* ---------------------------------------------------- the race test */

#define PRODUCERS 4
#define PER_PRODUCER 1000000

typedef struct {
    nm_bus *bus;
    int id;
    uint64_t accepted;
} producer_arg;

static void *
producer(void *arg)
{
    producer_arg *a = arg;
    char buf[32];
    for (int k = 0; k < PER_PRODUCER; k++) {
        int n = snprintf(buf, sizeof(buf), "{\"p\":%d,\"k\":%d}", a->id, k);
        int rc = nm_bus_emit_raw(a->bus, buf, (size_t)n, NULL);
        if (rc == NM_OK) {
            a->accepted++;
        }
    }
    return NULL;
}

typedef struct {
    nm_sub *sub;
    uint64_t got;
    uint64_t order_errors;
} consumer_arg;

static void *
consumer(void *arg)
{
    consumer_arg *c = arg;
    int64_t last[4] = {-1, -1, -1, -1};
    nm_event ev;
    while (nm_sub_next(c->sub, &ev, -1) == NM_OK) {
        if ((int64_t)ev.seq <= last[ev.shard]) {
            c->order_errors++;
        }
        last[ev.shard] = (int64_t)ev.seq;
        c->got++;
    }
    return NULL;
}

Test(sub, four_producers_race_a_subscriber_nothing_lost_silently,
     .timeout = 240)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 4;
    cfg.backpressure = NM_BP_DROP_OLDEST;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe(bus, NULL, &sub));
    consumer_arg c = {.sub = sub};
    pthread_t ct;
    pthread_create(&ct, NULL, consumer, &c);
    producer_arg pa[PRODUCERS];
    pthread_t pt[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        pa[i] = (producer_arg){.bus = bus, .id = i};
        pthread_create(&pt[i], NULL, producer, &pa[i]);
    }
    uint64_t accepted = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(pt[i], NULL);
        accepted += pa[i].accepted;
    }
    /* DropOldest never rejects the producer. */
    cr_assert_eq(accepted, (uint64_t)PRODUCERS * PER_PRODUCER);
    NM_ASSERT_OK(nm_bus_shutdown(bus, 60000)); /* ends the stream */
    pthread_join(ct, NULL);
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(c.order_errors, 0, "per-shard order");
    cr_assert_eq(st.ingested, (uint64_t)PRODUCERS * PER_PRODUCER);
    cr_assert_eq(st.dispatched + st.dropped, st.ingested);
    cr_assert_eq(c.got + st.dropped + nm_sub_missed(sub),
                 (uint64_t)PRODUCERS * PER_PRODUCER,
                 "received %llu + dropped %llu + missed %llu",
                 (unsigned long long)c.got, (unsigned long long)st.dropped,
                 (unsigned long long)nm_sub_missed(sub));
    nm_sub_close(sub);
    nm_bus_close(bus);
}

/* ---------------------------------------------- polling subscriptions */

static int
read_all(nm_sub *sub, int expect, int *values)
{
    int got = 0;
    nm_event ev;
    while (got < expect && nm_sub_next(sub, &ev, 10000) == NM_OK) {
        int v = -1;
        sscanf((const char *)ev.data, "{\"i\":%d}", &v);
        values[got++] = v;
    }
    return got;
}

Test(sub_from, replays_history_then_follows_and_resumes, .timeout = 60)
{
    nm_bus *bus = open_bus(4, 4096, 65536);
    for (int k = 0; k < 1000; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe_from(bus, NULL, NULL, &sub));
    int *vals = calloc(2000, sizeof(int));
    cr_assert_eq(read_all(sub, 1000, vals), 1000, "the history");
    for (int k = 1000; k < 1500; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    cr_assert_eq(read_all(sub, 500, vals + 1000), 500, "then live events");
    unsigned char *seen = calloc(1500, 1);
    for (int k = 0; k < 1500; k++) {
        cr_assert(vals[k] >= 0 && vals[k] < 1500);
        cr_assert_eq(seen[vals[k]], 0, "no duplicates");
        seen[vals[k]] = 1;
    }
    char *cursor;
    NM_ASSERT_OK(nm_sub_cursor(sub, &cursor));
    nm_sub_close(sub);

    /* Resume from the saved position: only what came after. */
    for (int k = 1500; k < 1600; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_OK(nm_bus_subscribe_from(bus, cursor, NULL, &sub));
    free(cursor);
    cr_assert_eq(read_all(sub, 100, vals), 100);
    for (int k = 0; k < 100; k++) {
        cr_assert_geq(vals[k], 1500, "resumed after the cursor");
    }
    nm_event ev;
    NM_ASSERT_ERR(nm_sub_next(sub, &ev, 50), NM_ETIMEDOUT);
    nm_sub_close(sub);
    free(vals);
    free(seen);
    nm_bus_close(bus);
}

Test(sub_from, never_misses_with_a_small_queue, .timeout = 60)
{
    nm_bus *bus = open_bus(2, 65536, 64);
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe_from(bus, NULL, NULL, &sub));
    for (int k = 0; k < 10000; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    int *vals = calloc(10000, sizeof(int));
    cr_assert_eq(read_all(sub, 10000, vals), 10000);
    cr_assert_eq(nm_sub_missed(sub), 0);
    free(vals);
    nm_sub_close(sub);
    nm_bus_close(bus);
}

Test(sub_from, filter_bad_cursor_and_shutdown)
{
    nm_bus *bus = open_bus(2, 4096, 65536);
    nm_sub *sub;
    NM_ASSERT_ERR(nm_bus_subscribe_from(bus, "###", NULL, &sub), NM_EDECODE);
    char *c;
    NM_ASSERT_OK(nm_bus_subscribe(bus, NULL, &sub));
    NM_ASSERT_ERR(nm_sub_cursor(sub, &c), NM_ENOTSUP);
    nm_sub_close(sub);
    nm_filter *f;
    NM_ASSERT_OK(nm_filter_parse("{\"path\":\"i\",\"value\":3}", &f));
    NM_ASSERT_OK(nm_bus_subscribe_from(bus, NULL, f, &sub));
    nm_filter_free(f);
    for (int k = 0; k < 10; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    nm_event ev;
    NM_ASSERT_OK(nm_sub_next(sub, &ev, 10000));
    cr_assert_str_eq((const char *)ev.data, "{\"i\":3}");
    NM_ASSERT_OK(nm_bus_shutdown(bus, 10000));
    NM_ASSERT_ERR(nm_sub_next(sub, &ev, 10000), NM_ECLOSED);
    nm_bus_close(bus);
    nm_sub_close(sub);
}
