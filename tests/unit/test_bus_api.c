/* tests/unit/test_bus_api.c - configuration validation, every bad input,
 * emit variants, receipts and shard choice, shutdown rules. */
#include <jansson.h>
#include <stdlib.h>

/* GCC 12 misreads xxh3's inlined short-input paths as out of bounds. */
#pragma GCC diagnostic ignored "-Warray-bounds"
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bus_helpers.h"

static int
open_with(void (*tweak)(nm_bus_config *), nm_bus **out)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    tweak(&cfg);
    *out = (nm_bus *)0x1;
    return nm_bus_open(&cfg, out);
}

static void
zero_shards(nm_bus_config *c)
{
    c->shards = 0;
}
static void
many_shards(nm_bus_config *c)
{
    c->shards = NM_BUS_MAX_SHARDS + 1;
}
static void
zero_ring(nm_bus_config *c)
{
    c->ring_capacity = 0;
}
static void
odd_ring(nm_bus_config *c)
{
    c->ring_capacity = 1000;
}
static void
one_ring(nm_bus_config *c)
{
    c->ring_capacity = 1;
}
static void
sample_zero(nm_bus_config *c)
{
    c->backpressure = NM_BP_SAMPLE;
    c->sample_rate = 0;
}
static void
bad_mode(nm_bus_config *c)
{
    c->backpressure = (nm_backpressure)9;
}
static void
bad_block(nm_bus_config *c)
{
    c->backpressure = NM_BP_BLOCK;
    c->block_timeout_ms = -1;
}
static void
bad_batch(nm_bus_config *c)
{
    c->batch_min = c->batch_max + 1;
}
static void
zero_batch(nm_bus_config *c)
{
    c->batch_max = 0;
}
static void
zero_delay(nm_bus_config *c)
{
    c->batch_max_delay_us = 0;
}
static void
zero_max_event(nm_bus_config *c)
{
    c->max_event_bytes = 0;
}
static void
huge_max_event(nm_bus_config *c)
{
    c->max_event_bytes = NM_BUS_MAX_EVENT_LIMIT + 1;
}
static void
no_size(nm_bus_config *c)
{
    c->size = 0;
}
static void
zero_subq(nm_bus_config *c)
{
    c->sub_queue_capacity = 0;
}
static void
bad_dispatch(nm_bus_config *c)
{
    c->dispatch = (nm_dispatch_mode)5;
}

Test(config, defaults_are_documented_values)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cr_assert_eq(cfg.size, sizeof(cfg));
    cr_assert_geq(cfg.shards, 1);
    cr_assert_eq(cfg.ring_capacity, NM_BUS_RING_DEFAULT);
    cr_assert_eq(cfg.backpressure, NM_BP_DROP_OLDEST);
    cr_assert_eq(cfg.batch_min, 1000);
    cr_assert_eq(cfg.batch_max, 10000);
    cr_assert_eq(cfg.batch_max_delay_us, 1000);
    cr_assert_eq(cfg.max_event_bytes, NM_BUS_MAX_EVENT_DEFAULT);
    cr_assert_eq(cfg.dispatch, NM_DISPATCH_THREAD);
    cr_assert_null(cfg.adapter);
    nm_memory_config mc;
    nm_memory_config_init(&mc);
    cr_assert_eq(mc.capacity_per_shard, 1u << 20);
}

Test(config, every_bad_field_is_rejected_with_einval)
{
    void (*tweaks[])(nm_bus_config *) = {
        zero_shards,    many_shards, zero_ring,  odd_ring,
        one_ring,       sample_zero, bad_mode,   bad_block,
        bad_batch,      zero_batch,  zero_delay, zero_max_event,
        huge_max_event, no_size,     zero_subq,  bad_dispatch};
    for (size_t i = 0; i < sizeof(tweaks) / sizeof(tweaks[0]); i++) {
        nm_bus *bus;
        int rc = open_with(tweaks[i], &bus);
        cr_assert_eq(rc, NM_EINVAL, "case %zu -> %s", i, nm_err_name(rc));
        cr_assert_null(bus, "case %zu: nothing created", i);
        cr_assert_str_neq(nm_errdetail(), "", "a detail names the field");
    }
    NM_ASSERT_ERR(nm_bus_open(NULL, NULL), NM_EINVAL);
    nm_memory_config mc = {.capacity_per_shard = 0};
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.adapter_config = &mc;
    nm_bus *bus;
    NM_ASSERT_ERR(nm_bus_open(&cfg, &bus), NM_EINVAL);
}

Test(emit, bad_inputs_change_nothing)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 2;
    cfg.max_event_bytes = 256;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    char big[257];
    memset(big, 'x', sizeof(big));
    NM_ASSERT_ERR(nm_bus_emit_raw(NULL, "a", 1, NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_bus_emit_raw(bus, NULL, 1, NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_bus_emit_raw(bus, "a", 0, NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_bus_emit_raw(bus, big, 257, NULL), NM_ETOOBIG);
    NM_ASSERT_OK(nm_bus_emit_raw(bus, big, 256, NULL));
    NM_ASSERT_ERR(nm_bus_emit_str(bus, NULL, NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_bus_emit_str(bus, "{\"a\":", NULL), NM_EDECODE);
    NM_ASSERT_ERR(nm_bus_emit_str(bus, "{} trailing", NULL), NM_EDECODE);
    NM_ASSERT_ERR(nm_bus_emit_str(bus, "", NULL), NM_EDECODE);
    NM_ASSERT_ERR(nm_bus_emit_json(bus, NULL, NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_bus_emit_raw_batch(bus, NULL, NULL, 3), NM_EINVAL);
    NM_ASSERT_ERR(nm_bus_emit_json_batch(bus, NULL, 2), NM_EINVAL);
    cr_assert_eq(nm_bus_emit_raw_batch(bus, NULL, NULL, 0), 0);
    NM_ASSERT_ERR(nm_bus_flush(NULL, 0), NM_EINVAL);
    NM_ASSERT_ERR(nm_bus_stats_get(NULL, NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_bus_dispatch(bus, 0), NM_EINVAL); /* thread mode */
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.ingested, 1, "only the one good emit counted");
    cr_assert_eq(st.dropped + st.rejected + st.sampled, 0);
    nm_bus_close(bus);
}

Test(emit, every_variant_and_receipts)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 4;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    nm_receipt r1, r2;
    json_t *v = json_pack("{s:s,s:i}", "token", "hello", "index", 0);
    NM_ASSERT_OK(nm_bus_emit_json(bus, v, &r1));
    json_decref(v);
    /* A value larger than the serializer's stack buffer. */
    json_t *big = json_object();
    char *s = malloc(3000);
    memset(s, 'q', 2999);
    s[2999] = '\0';
    json_object_set_new(big, "s", json_string(s));
    free(s);
    NM_ASSERT_OK(nm_bus_emit_json(bus, big, NULL));
    json_decref(big);
    NM_ASSERT_OK(nm_bus_emit_str(bus, "{\"token\":\"foo\"}", &r2));
    const void *bufs[3] = {"{\"a\":1}", "{\"a\":2}", "{\"a\":3}"};
    size_t lens[3] = {7, 7, 7};
    cr_assert_eq(nm_bus_emit_raw_batch(bus, bufs, lens, 3), 3);
    json_t *vals[2] = {json_pack("{s:i}", "b", 1), json_pack("{s:i}", "b", 2)};
    cr_assert_eq(nm_bus_emit_json_batch(bus, vals, 2), 2);
    json_decref(vals[0]);
    json_decref(vals[1]);
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.ingested, 8);
    cr_assert_eq(st.dispatched, 8);
    cr_assert_geq(st.batches, 1);
    cr_assert_eq(nm_bus_shards(bus), 4);
    cr_assert(nm_bus_healthy(bus));
    /* The JSON value was serialized compactly. */
    nm_poll_request req;
    nm_poll_request_init(&req);
    uint16_t sh[1] = {r1.shard};
    req.shards = sh;
    req.nshards = 1;
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    bool found = false;
    for (size_t i = 0; i < resp.count; i++) {
        if (resp.events[i].seq == r1.seq) {
            cr_assert_str_eq((const char *)resp.events[i].data,
                             "{\"token\":\"hello\",\"index\":0}");
            cr_assert_eq(resp.events[i].timestamp, r1.timestamp);
            found = true;
        }
    }
    cr_assert(found);
    nm_poll_response_free(&resp);
    nm_bus_close(bus);
}

Test(emit, batch_stops_at_first_failure)
{
    nm_bus *bus = tiny_bus(2, NM_BP_FAIL_PRODUCER, 0);
    const void *bufs[4] = {"1", "2", "3", "4"};
    size_t lens[4] = {1, 1, 1, 1};
    cr_assert_eq(nm_bus_emit_raw_batch(bus, bufs, lens, 4), 2);
    cr_assert_eq(nm_errdetail()[0] != '\0', 1);
    nm_bus_close(bus);
}

Test(emit, shard_is_xxh3_multiply_shift)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 7;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    for (int k = 0; k < 200; k++) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "{\"k\":%d}", k);
        nm_receipt a, b;
        NM_ASSERT_OK(nm_bus_emit_raw(bus, buf, (size_t)n, &a));
        NM_ASSERT_OK(nm_bus_emit_raw(bus, buf, (size_t)n, &b));
        cr_assert_eq(a.shard, b.shard, "same bytes, same shard");
        cr_assert_eq(b.seq, a.seq + 1);
        cr_assert_gt(b.timestamp, a.timestamp, "strictly increasing");
        uint64_t h = XXH3_64bits(buf, (size_t)n);
        uint16_t expect = (uint16_t)(((unsigned __int128)h * 7) >> 64);
        cr_assert_eq(a.shard, expect);
    }
    nm_bus_close(bus);
}

Test(shutdown, emits_after_shutdown_fail_and_double_shutdown_is_safe)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 2;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    for (int k = 0; k < 100; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_OK(nm_bus_shutdown(bus, 10000));
    NM_ASSERT_OK(nm_bus_shutdown(bus, 10000));
    cr_assert_not(nm_bus_healthy(bus));
    NM_ASSERT_ERR(emit_n(bus, 1, NULL), NM_ESHUTDOWN);
    NM_ASSERT_ERR(nm_bus_emit_str(bus, "{}", NULL), NM_ESHUTDOWN);
    const void *bufs[1] = {"x"};
    size_t lens[1] = {1};
    NM_ASSERT_ERR(nm_bus_emit_raw_batch(bus, bufs, lens, 1), NM_ESHUTDOWN);
    NM_ASSERT_ERR(nm_bus_flush(bus, 0), NM_ESHUTDOWN);
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.ingested, 100);
    cr_assert_eq(st.dispatched, 100, "shutdown dispatched everything");
    /* What the adapter holds can still be polled. */
    nm_poll_request req;
    nm_poll_request_init(&req);
    req.limit = 1000;
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 100);
    nm_poll_response_free(&resp);
    nm_bus_close(bus);
    nm_bus_close(NULL);
    NM_ASSERT_OK(nm_bus_shutdown(NULL, 0));
    cr_assert_eq(nm_bus_shards(NULL), 0);
    cr_assert_not(nm_bus_healthy(NULL));
}

Test(shutdown, manual_mode_shutdown_dispatches_the_rest)
{
    nm_bus *bus = tiny_bus(8, NM_BP_DROP_OLDEST, 0);
    for (int k = 0; k < 5; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_OK(nm_bus_shutdown(bus, 1000));
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.dispatched, 5);
    cr_assert_eq(st.queued, 0);
    nm_bus_close(bus);
}

Test(memory_adapter, evicts_oldest_and_counts)
{
    nm_memory_config mc = {.capacity_per_shard = 10};
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 1;
    cfg.adapter = nm_adapter_memory();
    cfg.adapter_config = &mc;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    for (int k = 0; k < 25; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
        if (k % 4 == 3) {
            NM_ASSERT_OK(nm_bus_flush(bus, 10000)); /* several batches */
        }
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.adapter_evicted, 15);
    nm_poll_request req;
    nm_poll_request_init(&req);
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 10);
    for (size_t i = 0; i < 10; i++) {
        cr_assert_eq(resp.events[i].seq, 15 + i);
    }
    /* A cursor pointing into evicted history resumes at the oldest. */
    req.cursor = "eyIwIjoiMyJ9"; /* {"0":"3"} */
    nm_poll_response r2;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &r2));
    cr_assert_eq(r2.count, 10);
    cr_assert_eq(r2.events[0].seq, 15);
    nm_poll_response_free(&r2);
    nm_poll_response_free(&resp);
    nm_bus_close(bus);
}
