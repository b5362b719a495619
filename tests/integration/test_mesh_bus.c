/*
 * tests/integration/test_mesh_bus.c - the event bus carried over the mesh:
 * a bus opened with the mesh adapter on one node, a bridge into a local
 * bus on the other; poll and subscribe on the receiving bus see every
 * event exactly once, in per-shard order. Once in one process, once
 * between two processes (the child is forked before any thread exists).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netmesh.h>

static const uint8_t PSK[32] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                7, 7, 7, 7, 7, 7, 7, 7, 7, 7};

#define SHARDS 4

static nm_mesh_t *
node(void)
{
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    memcpy(cfg.psk, PSK, 32);
    cfg.psk_set = true;
    cfg.accept_any = true;
    cfg.heartbeat_ms = 200;
    cfg.session_timeout_ms = 2000;
    nm_mesh_t *m = NULL;
    cr_assert_eq(nm_mesh_open(&cfg, &m), NM_OK, "%s", nm_errdetail());
    return m;
}

static nm_bus *
bus_mem(void)
{
    nm_bus_config bc;
    nm_bus_config_init(&bc);
    bc.shards = SHARDS;
    nm_bus *b = NULL;
    cr_assert_eq(nm_bus_open(&bc, &b), NM_OK, "%s", nm_errdetail());
    return b;
}

static nm_bus *
bus_over_mesh(nm_mesh_t *m, uint64_t peer)
{
    nm_mesh_adapter_config mc;
    nm_mesh_adapter_config_init(&mc);
    mc.mesh = m;
    mc.peer = peer;
    nm_bus_config bc;
    nm_bus_config_init(&bc);
    bc.shards = SHARDS;
    bc.adapter = nm_adapter_mesh();
    bc.adapter_config = &mc;
    nm_bus *b = NULL;
    int rc = nm_bus_open(&bc, &b);
    cr_assert_eq(rc, NM_OK, "%s", nm_errdetail());
    return b;
}

static void
emit_n(nm_bus *b, int n)
{
    for (int i = 0; i < n; i++) {
        char ev[64];
        int len = snprintf(ev, sizeof(ev), "{\"n\":%d}", i);
        int rc;
        do {
            rc = nm_bus_emit_raw(b, ev, (size_t)len, NULL);
        } while (rc == NM_EBACKPRESSURE);
        cr_assert_eq(rc, NM_OK);
    }
    cr_assert_eq(nm_bus_flush(b, 30000), NM_OK);
}

/* Poll the receiving bus until n events were seen (bounded). */
static void
receive_all(nm_bus *b, int n)
{
    char *seen = calloc((size_t)n, 1);
    int got = 0;
    int last_per_shard[SHARDS];
    for (int s = 0; s < SHARDS; s++) {
        last_per_shard[s] = -1;
    }
    char cursor[4096] = "";
    for (int round = 0; round < 3000 && got < n; round++) {
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = 1000;
        req.cursor = cursor[0] ? cursor : NULL;
        nm_poll_response resp;
        cr_assert_eq(nm_bus_poll(b, &req, &resp), NM_OK, "%s", nm_errdetail());
        size_t cnt = resp.count;
        for (size_t i = 0; i < cnt; i++) {
            const nm_event *e = &resp.events[i];
            int v = -1;
            cr_assert_eq(sscanf((const char *)e->data, "{\"n\":%d}", &v), 1);
            cr_assert(v >= 0 && v < n);
            cr_assert_eq(seen[v], 0, "event %d twice", v);
            seen[v] = 1;
            cr_assert_gt(v, last_per_shard[e->shard], "per-shard order");
            last_per_shard[e->shard] = v;
            got++;
        }
        snprintf(cursor, sizeof(cursor), "%s", resp.next_cursor);
        nm_poll_response_free(&resp);
        if (cnt == 0) {
            usleep(10000); /* bounded by the round count */
        }
    }
    cr_assert_eq(got, n, "received %d of %d", got, n);
    free(seen);
}

Test(mesh_bus, in_process, .timeout = 60)
{
    nm_mesh_t *a = node(), *b = node();
    char addr[64];
    uint8_t pub[32];
    cr_assert_eq(nm_mesh_local_addr(b, addr, sizeof(addr)), NM_OK);
    nm_mesh_static_pubkey(b, pub);
    cr_assert_eq(
        nm_mesh_connect_routed(a, addr, pub, nm_mesh_node_id(b), 3000), NM_OK);
    nm_bus *rx = bus_mem();
    nm_mesh_bridge *br = NULL;
    cr_assert_eq(nm_mesh_bridge_open(b, rx, 0, SHARDS, &br), NM_OK);
    nm_bus *tx = bus_over_mesh(a, nm_mesh_node_id(b));
    emit_n(tx, 20000);
    receive_all(rx, 20000);
    nm_mesh_bridge_stats bs;
    nm_mesh_bridge_stats_get(br, &bs);
    cr_assert_eq(bs.emitted, 20000);
    cr_assert_eq(bs.refused, 0);
    /* the sender's own bus still polls its local copy */
    nm_bus_stats st;
    nm_bus_stats_get(tx, &st);
    cr_assert_eq(st.dropped, 0);
    nm_bus_close(tx);
    nm_mesh_bridge_close(br);
    nm_bus_close(rx);
    nm_mesh_close(a);
    nm_mesh_close(b);
}

Test(mesh_bus, between_two_processes, .timeout = 60)
{
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        /* the sender: waits for the receiver's address and keys */
        close(pfd[1]);
        char info[256] = {0};
        size_t got = 0;
        while (got < sizeof(info) - 1) {
            ssize_t r = read(pfd[0], info + got, sizeof(info) - 1 - got);
            if (r <= 0) {
                break;
            }
            got += (size_t)r;
            if (memchr(info, '\n', got)) {
                break;
            }
        }
        char addr[64], pubhex[65];
        unsigned long long id;
        if (sscanf(info, "%63s %llx %64s", addr, &id, pubhex) != 3) {
            _exit(2);
        }
        uint8_t pub[32];
        for (int i = 0; i < 32; i++) {
            unsigned v;
            sscanf(pubhex + 2 * i, "%2x", &v);
            pub[i] = (uint8_t)v;
        }
        nm_mesh_t *a = node();
        if (nm_mesh_connect_routed(a, addr, pub, id, 5000) != NM_OK) {
            _exit(3);
        }
        nm_bus *tx = bus_over_mesh(a, id);
        emit_n(tx, 10000);
        /* wait (bounded) until the receiver acknowledged everything */
        for (int i = 0; i < 500; i++) {
            uint64_t inflight = 0;
            for (uint64_t s = 0; s < SHARDS; s++) {
                nm_stream_stats ss;
                if (nm_mesh_stream_stats(a, id, NM_MESH_BUS_STREAM_BASE + s,
                                         &ss) == NM_OK) {
                    inflight += ss.in_flight;
                }
            }
            if (inflight == 0) {
                break;
            }
            usleep(10000);
        }
        nm_bus_close(tx);
        nm_mesh_close(a);
        _exit(0);
    }
    close(pfd[0]);
    nm_mesh_t *b = node();
    nm_bus *rx = bus_mem();
    nm_mesh_bridge *br = NULL;
    cr_assert_eq(nm_mesh_bridge_open(b, rx, 0, SHARDS, &br), NM_OK);
    char addr[64], line[256], pubhex[65];
    uint8_t pub[32];
    cr_assert_eq(nm_mesh_local_addr(b, addr, sizeof(addr)), NM_OK);
    nm_mesh_static_pubkey(b, pub);
    for (int i = 0; i < 32; i++) {
        snprintf(pubhex + 2 * i, 3, "%02x", pub[i]);
    }
    int len = snprintf(line, sizeof(line), "%s %llx %s\n", addr,
                       (unsigned long long)nm_mesh_node_id(b), pubhex);
    cr_assert_eq(write(pfd[1], line, (size_t)len), len);
    close(pfd[1]);
    receive_all(rx, 10000);
    int st = 0;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sender status %d", st);
    nm_mesh_bridge_close(br);
    nm_bus_close(rx);
    nm_mesh_close(b);
}
