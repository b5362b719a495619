/* tests/bus_helpers.h - shared helpers for the bus tests. */
#ifndef NM_TEST_BUS_HELPERS_H
#define NM_TEST_BUS_HELPERS_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include <netmesh.h>

#define NM_ASSERT_OK(call)                                                    \
    do {                                                                      \
        int rc_ = (call);                                                     \
        cr_assert_eq(rc_, NM_OK, "%s -> %s (%s)", #call, nm_err_name(rc_),    \
                     nm_errdetail());                                         \
    } while (0)

#define NM_ASSERT_ERR(call, code)                                             \
    do {                                                                      \
        int rc_ = (call);                                                     \
        cr_assert_eq(rc_, (code), "%s -> %s, expected %s (%s)", #call,        \
                     nm_err_name(rc_), nm_err_name(code), nm_errdetail());    \
    } while (0)

/* A one-shard, manual-dispatch bus with a tiny ring: every count in the
 * backpressure tests is exact because nothing drains behind our back. */
static inline nm_bus *
tiny_bus(uint32_t cap, nm_backpressure mode, uint32_t rate)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 1;
    cfg.ring_capacity = cap;
    cfg.backpressure = mode;
    cfg.sample_rate = rate;
    cfg.block_timeout_ms = 50;
    cfg.dispatch = NM_DISPATCH_MANUAL;
    cfg.batch_min = 1;
    nm_bus *bus = NULL;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    return bus;
}

static inline int
emit_n(nm_bus *bus, int i, nm_receipt *r)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "{\"i\":%d}", i);
    return nm_bus_emit_raw(bus, buf, (size_t)n, r);
}

static inline nm_bus_stats
stats_of(nm_bus *bus)
{
    nm_bus_stats st;
    NM_ASSERT_OK(nm_bus_stats_get(bus, &st));
    return st;
}

#endif
