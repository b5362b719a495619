/*
 * tests/mesh_harness.h - mesh nodes on the deterministic (manual) driver,
 * shared by the unit tests of the node and of the services on top of it:
 * in-process loopback ports (hub port n is the address 127.0.0.1:n),
 * optionally behind the seeded fault injector, and simulated time (1 ms
 * per pump round), no threads.
 *
 *     static void setup(void) { hub_setup(); }
 *     Test(x, y, .init = setup) {
 *         tnode a, b;
 *         tnode *all[] = {&a, &b};
 *         memset(&a, 0, sizeof(a));
 *         node_open(&a, 1, NULL, NULL);     (the same for b, port 2)
 *         connect_direct(&a, &b, all, 2);
 *         ... pump(all, 2, rounds) ...
 *         fini_nodes(all, 2);
 *     }
 *
 * A test keeping more per node (a service handle, ...) defines
 * NMT_NODE_EXTRA as those members before including this header; it closes
 * them itself before fini_nodes.
 */
#ifndef NM_TEST_MESH_HARNESS_H
#define NM_TEST_MESH_HARNESS_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>
#include <netmesh/mesh.h>

#include "mesh/node_impl.h"
#include "mesh/port.h"

static nmi_loop_hub *hub;
static uint64_t now_us = 1000000;

static const uint8_t PSK[32] = {
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
    0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};

typedef struct tnode {
    nm_mesh_t *m;     /* NULL once closed: pump skips it */
    nmi_fault *fault; /* NULL without fault injection */
    uint16_t n;       /* its hub port */
    char addr[32];
    uint8_t pub[32];
    uint64_t id;
#ifdef NMT_NODE_EXTRA
    NMT_NODE_EXTRA
#endif
} tnode;

/* The seed of a fault test: NM_TEST_SEED when set (to replay a failure
 * whose message printed it), else dflt. */
static inline uint64_t
test_seed(uint64_t dflt)
{
    const char *s = getenv("NM_TEST_SEED");
    return s ? strtoull(s, NULL, 0) : dflt;
}

static inline void
hub_setup(void)
{
    cr_assert_eq(nmi_loop_hub_new(&hub), NM_OK);
}

/* Hub port n. */
static inline nmi_port *
hub_port(uint16_t n)
{
    nmi_port *p = NULL;
    cr_assert_eq(nmi_loop_hub_attach(hub, n, &p), NM_OK);
    return p;
}

/* The tests' node config: PSK, fast heartbeats (20 ms, session timeout
 * 40 ms, handshake timeout 200 ms), accepting any node with the PSK. */
static inline void
node_config(nm_mesh_config *cfg)
{
    nm_mesh_config_init(cfg);
    memcpy(cfg->psk, PSK, 32);
    cfg->psk_set = true;
    cfg->heartbeat_ms = 20;
    cfg->session_timeout_ms = 40;
    cfg->handshake_timeout_ms = 200;
    cfg->accept_any = true;
}

/* Open t's node on port p (NULL: hub port n) with cfg (NULL: node_config)
 * and fill in n, addr, pub and id; the rest of t is the caller's. */
static inline void
node_open(tnode *t, uint16_t n, nmi_port *p, const nm_mesh_config *cfg)
{
    nm_mesh_config dflt;
    if (cfg == NULL) {
        node_config(&dflt);
        cfg = &dflt;
    }
    if (p == NULL) {
        p = hub_port(n);
    }
    cr_assert_eq(nmi_mesh_open_port(cfg, p, now_us, &t->m), NM_OK, "%s",
                 nm_errdetail());
    t->n = n;
    snprintf(t->addr, sizeof(t->addr), "127.0.0.1:%u", n);
    nm_mesh_static_pubkey(t->m, t->pub);
    t->id = nm_mesh_node_id(t->m);
}

/* One round: deliver everything queued, advance 1 ms, tick everyone (and
 * their fault injectors). */
static inline void
pump(tnode *const *nodes, size_t k, unsigned rounds)
{
    for (unsigned r = 0; r < rounds; r++) {
        nmi_loop_hub_run(hub, 0);
        now_us += 1000;
        for (size_t i = 0; i < k; i++) {
            if (nodes[i]->m == NULL) {
                continue;
            }
            if (nodes[i]->fault) {
                nmi_fault_tick(nodes[i]->fault);
            }
            nmi_mesh_tick(nodes[i]->m, now_us);
        }
        nmi_loop_hub_run(hub, 0);
    }
}

static inline bool
has_peer(tnode *a, uint64_t id)
{
    nm_mesh_peer_info pi;
    return nm_mesh_peer(a->m, id, &pi) == NM_OK && pi.state == NM_PEER_HEALTHY;
}

/* b accepts a, a handshakes with b (direct form); pumps all until both
 * have a healthy session (at most 50 rounds). */
static inline void
connect_direct(tnode *a, tnode *b, tnode *const *all, size_t k)
{
    cr_assert_eq(nm_mesh_accept(b->m, a->id), NM_OK);
    cr_assert_eq(nmi_mesh_connect_start(a->m, b->addr, false, b->pub, b->id),
                 NM_OK);
    for (int i = 0; i < 50 && !(has_peer(a, b->id) && has_peer(b, a->id));
         i++) {
        pump(all, k, 1);
    }
    cr_assert(has_peer(a, b->id), "initiator %u has no session with %u", a->n,
              b->n);
    cr_assert(has_peer(b, a->id), "responder %u has no session with %u", b->n,
              a->n);
}

/* Close every node and the hub. */
static inline void
fini_nodes(tnode *const *all, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        nm_mesh_close(all[i]->m);
        all[i]->m = NULL;
    }
    nmi_loop_hub_free(hub);
    hub = NULL;
}

#endif
