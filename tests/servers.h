/*
 * tests/servers.h - real redis-server and `nats-server -js` for a test:
 * Criterion-asserting wrappers around bench/bench_servers.h (the one
 * implementation: free loopback port, temporary directory, wait until it
 * answers, stop by PID, PR_SET_PDEATHSIG so a failing test never leaves a
 * server behind).
 *
 *   nmt_server s;
 *   nmt_server_start(&s, NMT_REDIS);   // asserts on failure
 *   ... s.url is "redis://127.0.0.1:<port>" ...
 *   nmt_server_stop(&s);               // SIGKILL by PID: as abrupt as a crash
 *   nmt_server_restart(&s);            // same port and directory, data kept
 *   nmt_server_cleanup(&s);            // stop + remove the directory
 */
#ifndef NM_TEST_SERVERS_H
#define NM_TEST_SERVERS_H

#include <criterion/criterion.h>

#include "bench_servers.h"

static inline void
nmt_server_start(nmt_server *s, nmt_kind kind)
{
    cr_assert_eq(nmt_server_try_start_aof(s, kind, true), 0,
                 "could not start %s",
                 kind == NMT_REDIS ? "redis-server" : "nats-server -js");
}

/* Restart on the same port and directory. */
static inline void
nmt_server_restart(nmt_server *s)
{
    cr_assert_eq(nmt_server_spawn(s), 0, "restart failed");
}

#endif
