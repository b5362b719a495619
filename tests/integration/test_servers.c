/* tests/integration/test_servers.c - the real-server harness itself:
 * redis-server and nats-server -js start on free loopback ports, answer,
 * stop by PID, and restart on the same port. */
#include "servers.h"

Test(servers, redis_starts_answers_stops_and_restarts, .timeout = 60)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    cr_assert(nmt_server_answers(&s));
    pid_t first = s.pid;
    nmt_server_stop(&s);
    cr_assert_eq(kill(first, 0), -1, "stopped by PID");
    cr_assert_not(nmt_server_answers(&s));
    nmt_server_restart(&s);
    cr_assert(nmt_server_answers(&s));
    nmt_server_cleanup(&s);
}

Test(servers, nats_jetstream_starts_answers_stops_and_restarts, .timeout = 60)
{
    nmt_server s;
    nmt_server_start(&s, NMT_NATS);
    cr_assert(nmt_server_answers(&s));
    nmt_server_stop(&s);
    cr_assert_not(nmt_server_answers(&s));
    nmt_server_restart(&s);
    cr_assert(nmt_server_answers(&s));
    nmt_server_cleanup(&s);
}
