/*
 * tests/unit/test_mesh_node.c - the mesh node on the deterministic
 * driver: in-process loopback ports, the seeded fault injector and
 * simulated time (1 ms per pump round). Handshake matrix, data, reliable
 * delivery under loss / duplication / reordering, fire-and-forget loss
 * accounting, replayed and tampered packets, relays that never hold the
 * end-to-end keys, failure detection and rerouting.
 *
 * Every fault test prints its seed in the failure message; set
 * NM_TEST_SEED to replay one.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>
#include <netmesh/mesh.h>

#include "core/core.h"
#include "mesh/node_impl.h"
#include "mesh/port.h"
#include "mesh_harness.h"
#include "wire/frame.h"

/* ---- a tap port: records what its node sends -------------------- */

typedef struct tap {
    nmi_port base;
    nmi_port *inner;
    uint8_t (*pkts)[NMI_NODE_BUF];
    size_t *lens;
    size_t n, cap;
    bool on;
} tap;

static void
tap_inner_recv(void *ctx, nmi_port *port, const nmi_addr *from,
               const uint8_t *data, size_t len)
{
    (void)port;
    tap *t = ctx;
    nmi_port_deliver(&t->base, from, data, len);
}

static int
tap_send(nmi_port *p, const nmi_addr *to, const void *buf, size_t len)
{
    tap *t = (tap *)p;
    if (t->on && t->n < t->cap && len <= NMI_NODE_BUF) {
        memcpy(t->pkts[t->n], buf, len);
        t->lens[t->n++] = len;
    }
    return nmi_port_send(t->inner, to, buf, len);
}

static int
tap_poll(nmi_port *p)
{
    return nmi_port_poll(((tap *)p)->inner);
}

static int
tap_local(nmi_port *p, nmi_addr *out)
{
    return nmi_port_local_addr(((tap *)p)->inner, out);
}

static void
tap_close(nmi_port *p)
{
    nmi_port_close(((tap *)p)->inner);
}

static void
tap_destroy(nmi_port *p)
{
    tap *t = (tap *)p;
    nmi_port_destroy(t->inner);
    free(t->pkts);
    free(t->lens);
    free(t);
}

static const nmi_port_ops tap_ops = {
    .size = sizeof(nmi_port_ops),
    .name = "tap",
    .send = tap_send,
    .poll = tap_poll,
    .local_addr = tap_local,
    .close = tap_close,
    .destroy = tap_destroy,
};

static tap *
tap_new(nmi_port *inner, size_t cap)
{
    tap *t = calloc(1, sizeof(*t));
    cr_assert_not_null(t);
    nmi_port_init(&t->base, &tap_ops);
    t->inner = inner;
    t->cap = cap;
    t->pkts = calloc(cap, sizeof(*t->pkts));
    t->lens = calloc(cap, sizeof(*t->lens));
    nmi_port_set_recv(inner, tap_inner_recv, t);
    return t;
}

/* ---- nodes ---------------------------------------------------------- */

typedef struct mk_opts {
    const uint8_t *psk;
    const nmi_fault_config *fault;
    tap **tap;
    bool accept_any;
} mk_opts;

static void
mk(tnode *t, uint16_t n, const mk_opts *o)
{
    memset(t, 0, sizeof(*t));
    nmi_port *p = hub_port(n);
    if (o && o->tap) {
        *o->tap = tap_new(p, 4096);
        p = &(*o->tap)->base;
    }
    if (o && o->fault) {
        cr_assert_eq(nmi_fault_new(p, o->fault, &p), NM_OK);
        t->fault = nmi_fault_from_port(p);
    }
    nm_mesh_config cfg;
    node_config(&cfg);
    if (o && o->psk) {
        memcpy(cfg.psk, o->psk, 32);
    }
    cfg.accept_any = o ? o->accept_any : true;
    node_open(t, n, p, &cfg);
}

static void
setup(void)
{
    hub_setup();
}

static bool
next_event(tnode *t, nm_mesh_event_kind kind, uint64_t peer)
{
    nm_mesh_event ev;
    while (nm_mesh_next_event(t->m, 0, &ev) == NM_OK) {
        if (ev.kind == kind && ev.peer == peer) {
            return true;
        }
    }
    return false;
}

/* ---- handshakes ----------------------------------------------------- */

Test(mesh_node, direct_handshake_and_messages, .init = setup)
{
    tnode a, b;
    tnode *all[] = {&a, &b};
    mk(&a, 1, NULL);
    mk(&b, 2, NULL);
    connect_direct(&a, &b, all, 2);
    cr_assert(next_event(&a, NM_MESH_EV_PEER_UP, b.id));
    cr_assert(next_event(&b, NM_MESH_EV_PEER_UP, a.id));

    const char *msgs[] = {"hello", "", "world"};
    size_t lens[] = {5, 0, 5};
    cr_assert_eq(
        nm_mesh_send(a.m, b.id, 7, (const void *const *)msgs, lens, 3), NM_OK,
        "%s", nm_errdetail());
    pump(all, 2, 2);
    nm_mesh_delivery *d = NULL;
    cr_assert_eq(nm_mesh_recv(b.m, 0, &d), NM_OK);
    cr_assert_eq(d->peer, a.id);
    cr_assert_eq(d->stream_id, 7);
    cr_assert_eq(d->seq, 0);
    cr_assert_eq(d->count, 3);
    cr_assert_eq(d->msgs[0].len, 5);
    cr_assert_eq(memcmp(d->msgs[0].data, "hello", 5), 0);
    cr_assert_eq(d->msgs[1].len, 0);
    cr_assert_eq(memcmp(d->msgs[2].data, "world", 5), 0);
    nm_mesh_delivery_free(d);
    cr_assert_eq(nm_mesh_recv(b.m, 0, &d), NM_EAGAIN);

    /* both directions share the session */
    cr_assert_eq(nmi_mesh_session(a.m, b.id)->session_id,
                 nmi_mesh_session(b.m, a.id)->session_id);
    nm_stream_stats st;
    cr_assert_eq(nm_mesh_stream_stats(a.m, b.id, 7, &st), NM_OK);
    cr_assert_eq(st.tx_seq, 1);
    cr_assert_eq(nm_mesh_stream_stats(b.m, a.id, 7, &st), NM_OK);
    cr_assert_eq(st.rx_seq, 1);
    cr_assert_eq(nm_mesh_stream_stats(a.m, b.id, 8, &st), NM_ENOTFOUND);
    cr_assert_eq(nm_mesh_close_stream(a.m, b.id, 7), NM_OK);
    cr_assert_eq(nm_mesh_stream_stats(a.m, b.id, 7, &st), NM_ENOTFOUND);

    /* heartbeats flow and keep both sides healthy */
    pump(all, 2, 200);
    nm_mesh_stats s;
    nm_mesh_stats_get(b.m, &s);
    cr_assert_gt(s.heartbeats_rx, 5);
    cr_assert(has_peer(&a, b.id) && has_peer(&b, a.id));
    fini_nodes(all, 2);
}

Test(mesh_node, routed_one_hop_accept_any, .init = setup)
{
    tnode a, b;
    tnode *all[] = {&a, &b};
    mk(&a, 1, NULL);
    mk(&b, 2, NULL); /* accept_any, no nm_mesh_accept */
    cr_assert_eq(nmi_mesh_connect_start(a.m, b.addr, true, b.pub, b.id),
                 NM_OK);
    pump(all, 2, 5);
    cr_assert(has_peer(&a, b.id));
    cr_assert(has_peer(&b, a.id));
    nm_mesh_peer_info pi;
    cr_assert_eq(nm_mesh_peer(b.m, a.id, &pi), NM_OK);
    cr_assert(pi.routed);
    const char *m1 = "ping";
    size_t l1 = 4;
    cr_assert_eq(nm_mesh_send(b.m, a.id, 1, (const void *const *)&m1, &l1, 1),
                 NM_OK);
    pump(all, 2, 2);
    nm_mesh_delivery *d = NULL;
    cr_assert_eq(nm_mesh_recv(a.m, 0, &d), NM_OK);
    cr_assert_eq(d->peer, b.id);
    nm_mesh_delivery_free(d);
    fini_nodes(all, 2);
}

Test(mesh_node, handshake_failure_matrix, .init = setup)
{
    uint8_t other_psk[32];
    memset(other_psk, 0x43, sizeof(other_psk));
    tnode a, b, c, d;
    tnode *all[] = {&a, &b, &c, &d};
    mk(&a, 1, NULL);
    mk(&b, 2, &(mk_opts){.psk = other_psk, .accept_any = true});
    mk_opts strict = {.accept_any = false};
    mk(&c, 3, &strict);
    mk(&d, 4, NULL);

    /* wrong PSK: B cannot authenticate msg1, nobody gets a session */
    cr_assert_eq(nm_mesh_accept(b.m, a.id), NM_OK);
    cr_assert_eq(nmi_mesh_connect_start(a.m, b.addr, false, b.pub, b.id),
                 NM_OK);
    pump(all, 4, 10);
    cr_assert(!has_peer(&a, b.id) && !has_peer(&b, a.id));
    nm_mesh_stats s;
    nm_mesh_stats_get(b.m, &s);
    cr_assert_geq(s.handshakes_failed, 1);
    cr_assert_eq(s.handshakes_ok, 0);

    /* wrong pinned static key (D's key for C) */
    cr_assert_eq(nm_mesh_accept(c.m, a.id), NM_OK);
    cr_assert_eq(nmi_mesh_connect_start(a.m, c.addr, false, d.pub, c.id),
                 NM_OK);
    pump(all, 4, 10);
    cr_assert(!has_peer(&a, c.id) && !has_peer(&c, a.id));
    nm_mesh_stats_get(c.m, &s);
    cr_assert_geq(s.handshakes_failed, 1);

    /* not accepted: C (accept_any off) refuses a routed msg1 from D */
    cr_assert_eq(nmi_mesh_connect_start(d.m, c.addr, true, c.pub, c.id),
                 NM_OK);
    pump(all, 4, 10);
    cr_assert(!has_peer(&d, c.id) && !has_peer(&c, d.id));
    nm_mesh_stats_get(c.m, &s);
    cr_assert_geq(s.handshakes_refused, 1);

    /* garbage, truncated packets and truncated handshakes */
    nmi_port *raw = NULL;
    cr_assert_eq(nmi_loop_hub_attach(hub, 9, &raw), NM_OK);
    nmi_addr to;
    nmi_addr_parse(&to, d.addr);
    nm_mesh_stats before;
    nm_mesh_stats_get(d.m, &before);
    uint8_t junk[200];
    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (uint8_t)(i * 37 + 11);
    }
    nmi_port_send(raw, &to, junk, sizeof(junk));
    junk[0] = 0x45;
    junk[1] = 0x4E;
    nmi_port_send(raw, &to, junk, 40);  /* truncated header */
    nmi_port_send(raw, &to, junk, 130); /* bad version / lengths */
    /* a real msg1 cut short */
    nmi_noise_hs hs;
    cr_assert_eq(nmi_net_hs_initiator(&hs, PSK, d.pub, 99, d.id), NM_OK);
    uint8_t m1[64], pkt[256];
    size_t ml = 0, pl = 0;
    cr_assert_eq(nmi_noise_write_message(&hs, NULL, 0, m1, sizeof(m1), &ml),
                 NM_OK);
    cr_assert_eq(nmi_wire_handshake_encode(m1, ml - 5, pkt, sizeof(pkt), &pl),
                 NM_OK);
    nmi_port_send(raw, &to, pkt, pl);
    nmi_noise_wipe(&hs);
    pump(all, 4, 2);
    nm_mesh_stats_get(d.m, &s);
    cr_assert_geq(s.rejected_decode, before.rejected_decode + 3);
    cr_assert_eq(s.handshakes_ok, before.handshakes_ok);
    nmi_port_destroy(raw);
    fini_nodes(all, 4);
}

Test(mesh_node, replayed_msg1_is_dropped, .init = setup)
{
    tnode b;
    tnode *all[] = {&b};
    mk(&b, 2, NULL);
    nmi_port *raw = NULL;
    cr_assert_eq(nmi_loop_hub_attach(hub, 9, &raw), NM_OK);
    nmi_addr to;
    nmi_addr_parse(&to, b.addr);
    /* a routed msg1 from a made-up initiator id */
    uint64_t fake = UINT64_C(0x1122334455667788);
    nmi_noise_hs hs;
    cr_assert_eq(nmi_net_hs_initiator(&hs, PSK, b.pub, fake, b.id), NM_OK);
    uint8_t payload[8], m1[64], pkt[256];
    nmi_store_le64(payload, fake);
    size_t ml = 0, pl = 0;
    cr_assert_eq(nmi_noise_write_message(&hs, payload, 8, m1, sizeof(m1), &ml),
                 NM_OK);
    cr_assert_eq(nmi_wire_routed_handshake_encode(b.id, (uint32_t)fake, m1, ml,
                                                  pkt, sizeof(pkt), &pl),
                 NM_OK);
    nmi_noise_wipe(&hs);
    nmi_port_send(raw, &to, pkt, pl);
    pump(all, 1, 1);
    nm_mesh_stats s;
    nm_mesh_stats_get(b.m, &s);
    cr_assert_eq(s.handshakes_ok, 1);
    uint64_t sid = nmi_mesh_session(b.m, fake)->session_id;
    nmi_port_send(raw, &to, pkt, pl); /* the same msg1 again */
    pump(all, 1, 1);
    nm_mesh_stats_get(b.m, &s);
    cr_assert_eq(s.handshakes_ok, 1);
    cr_assert_eq(s.rejected_replay, 1);
    cr_assert_eq(nmi_mesh_session(b.m, fake)->session_id, sid);
    nmi_port_destroy(raw);
    fini_nodes(all, 1);
}

/* ---- captured packets ---------------------------------------------- */

Test(mesh_node, replayed_and_tampered_packets_rejected, .init = setup)
{
    tnode a, b;
    tnode *all[] = {&a, &b};
    tap *t = NULL;
    mk(&a, 1, &(mk_opts){.tap = &t, .accept_any = true});
    mk(&b, 2, NULL);
    connect_direct(&a, &b, all, 2);
    t->on = true;
    const char *m1 = "secret";
    size_t l1 = 6;
    cr_assert_eq(nm_mesh_send(a.m, b.id, 3, (const void *const *)&m1, &l1, 1),
                 NM_OK);
    t->on = false;
    cr_assert_geq(t->n, 1);
    /* the capture is ciphertext */
    cr_assert_null(memmem(t->pkts[0], t->lens[0], "secret", 6));
    pump(all, 2, 1);
    nm_mesh_delivery *d = NULL;
    cr_assert_eq(nm_mesh_recv(b.m, 0, &d), NM_OK);
    nm_mesh_delivery_free(d);

    nmi_port *raw = NULL;
    cr_assert_eq(nmi_loop_hub_attach(hub, 9, &raw), NM_OK);
    nmi_addr to;
    nmi_addr_parse(&to, b.addr);
    nm_mesh_stats s0, s1;
    nm_mesh_stats_get(b.m, &s0);
    nmi_port_send(raw, &to, t->pkts[0], t->lens[0]); /* replay */
    uint8_t flip[NMI_NODE_BUF];
    memcpy(flip, t->pkts[0], t->lens[0]);
    flip[t->lens[0] - 20] ^= 0x01;   /* ciphertext bit */
    nmi_store_le64(flip + 16, 1000); /* fresh counter, so AEAD runs */
    nmi_port_send(raw, &to, flip, t->lens[0]);
    memcpy(flip, t->pkts[0], t->lens[0]);
    flip[40] ^= 0x80; /* header bit (sequence: in the AAD) */
    nmi_store_le64(flip + 16, 1001);
    nmi_port_send(raw, &to, flip, t->lens[0]);
    pump(all, 2, 2);
    nm_mesh_stats_get(b.m, &s1);
    cr_assert_eq(s1.rejected_replay, s0.rejected_replay + 1);
    cr_assert_eq(s1.rejected_crypto, s0.rejected_crypto + 2);
    cr_assert_eq(nm_mesh_recv(b.m, 0, &d), NM_EAGAIN, "nothing delivered");
    nmi_port_destroy(raw);
    fini_nodes(all, 2);
}

/* ---- reliability under faults ------------------------------------- */

static void
reliable_under_faults(bool in_order, uint64_t seed)
{
    nmi_fault_config fc = {.size = sizeof(fc),
                           .seed = seed,
                           .drop_pct = 5,
                           .dup_pct = 5,
                           .reorder_window = 8};
    nmi_fault_config fc2 = fc;
    fc2.seed = seed ^ 0x9E3779B97F4A7C15ull;
    tnode a, b;
    tnode *all[] = {&a, &b};
    mk(&a, 1, &(mk_opts){.fault = &fc, .accept_any = true});
    mk(&b, 2, &(mk_opts){.fault = &fc2, .accept_any = true});
    /* the handshake itself may be lost: retry like connect does */
    cr_assert_eq(nm_mesh_accept(b.m, a.id), NM_OK);
    for (int att = 0; att < 20 && !has_peer(&a, b.id); att++) {
        nmi_mesh_connect_start(a.m, b.addr, false, b.pub, b.id);
        pump(all, 2, 10);
    }
    cr_assert(has_peer(&a, b.id), "seed %llu: no session",
              (unsigned long long)seed);
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    sc.reliability = NM_RELIABLE;
    sc.in_order = in_order;
    sc.window_bytes = 256 * 1024;
    sc.max_retries = 30; /* 5 % loss each way: a few packets need more
                            than upstream's 3 attempts over 100k msgs */
    cr_assert_eq(nm_mesh_open_stream(a.m, b.id, 5, &sc), NM_OK);
    /* B opens its side alike so in-order delivery applies on receive */
    cr_assert_eq(nm_mesh_open_stream(b.m, a.id, 5, &sc), NM_OK);

    enum { N = 100000, PER_CALL = 50 };
    uint32_t sent = 0, next_expect = 0, got = 0;
    uint8_t *seen = calloc(N, 1);
    uint64_t bp = 0;
    for (unsigned round = 0; round < 200000 && got < N; round++) {
        if (sent < N) {
            uint32_t vals[PER_CALL];
            const void *ptrs[PER_CALL];
            size_t lens[PER_CALL];
            size_t k = 0;
            for (; k < PER_CALL && sent + k < N; k++) {
                vals[k] = sent + (uint32_t)k;
                ptrs[k] = &vals[k];
                lens[k] = sizeof(uint32_t);
            }
            int rc = nm_mesh_send(a.m, b.id, 5, ptrs, lens, k);
            if (rc == NM_OK) {
                sent += (uint32_t)k;
            } else {
                cr_assert_eq(rc, NM_EBACKPRESSURE, "seed %llu: send %s: %s",
                             (unsigned long long)seed, nm_err_name(rc),
                             nm_errdetail());
                bp++;
            }
        }
        pump(all, 2, 1);
        nm_mesh_delivery *d;
        while (nm_mesh_recv(b.m, 0, &d) == NM_OK) {
            for (size_t i = 0; i < d->count; i++) {
                uint32_t v;
                cr_assert_eq(d->msgs[i].len, 4);
                memcpy(&v, d->msgs[i].data, 4);
                cr_assert_lt(v, N);
                cr_assert_eq(seen[v], 0, "seed %llu: %u delivered twice",
                             (unsigned long long)seed, v);
                seen[v] = 1;
                if (in_order) {
                    cr_assert_eq(v, next_expect,
                                 "seed %llu: got %u, expected %u",
                                 (unsigned long long)seed, v, next_expect);
                }
                next_expect = v + 1;
                got++;
            }
            nm_mesh_delivery_free(d);
        }
    }
    cr_assert_eq(got, N, "seed %llu: %u of %u delivered",
                 (unsigned long long)seed, got, N);
    nm_stream_stats st;
    cr_assert_eq(nm_mesh_stream_stats(a.m, b.id, 5, &st), NM_OK);
    cr_assert_gt(st.retransmits, 0, "faults were injected");
    cr_assert(!st.reset);
    nmi_fault_stats fs;
    nmi_fault_stats_get(a.fault, &fs);
    cr_assert_gt(fs.dropped, 0);
    cr_assert_gt(fs.duplicated, 0);
    nm_mesh_stats_get(b.m, &(nm_mesh_stats){0});
    cr_log_info("seed %llu: %llu retransmits, %llu backpressure, %llu "
                "dropped by the injector",
                (unsigned long long)seed, (unsigned long long)st.retransmits,
                (unsigned long long)bp, (unsigned long long)fs.dropped);
    free(seen);
    fini_nodes(all, 2);
}

Test(mesh_node, reliable_100k_in_order_under_loss_dup_reorder, .init = setup,
     .timeout = 120)
{
    reliable_under_faults(true, test_seed(20261127));
}

Test(mesh_node, reliable_100k_arrival_order_under_loss_dup_reorder,
     .init = setup, .timeout = 120)
{
    reliable_under_faults(false, test_seed(7));
}

Test(mesh_node, fire_and_forget_counts_losses, .init = setup)
{
    uint64_t seed = test_seed(99);
    nmi_fault_config fc = {.size = sizeof(fc), .seed = seed, .drop_pct = 10};
    tnode a, b;
    tnode *all[] = {&a, &b};
    mk(&a, 1, &(mk_opts){.fault = &fc, .accept_any = true});
    mk(&b, 2, NULL);
    cr_assert_eq(nm_mesh_accept(b.m, a.id), NM_OK);
    for (int att = 0; att < 20 && !has_peer(&a, b.id); att++) {
        nmi_mesh_connect_start(a.m, b.addr, false, b.pub, b.id);
        pump(all, 2, 10);
    }
    cr_assert(has_peer(&a, b.id));
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    sc.window_bytes = 0; /* unbounded: lost grants cannot stall it */
    cr_assert_eq(nm_mesh_open_stream(a.m, b.id, 9, &sc), NM_OK);
    enum { P = 2000 };
    uint64_t delivered = 0;
    for (uint32_t i = 0; i < P; i++) {
        const void *ptr = &i;
        size_t len = sizeof(i);
        cr_assert_eq(nm_mesh_send(a.m, b.id, 9, &ptr, &len, 1), NM_OK);
        if (i % 16 == 0) {
            pump(all, 2, 1);
        }
    }
    pump(all, 2, 5);
    nm_mesh_delivery *d;
    while (nm_mesh_recv(b.m, 0, &d) == NM_OK) {
        delivered++;
        nm_mesh_delivery_free(d);
    }
    nm_stream_stats st;
    cr_assert_eq(nm_mesh_stream_stats(b.m, a.id, 9, &st), NM_OK);
    cr_assert_eq(st.packets_received, delivered);
    cr_assert_lt(delivered, P, "seed %llu: nothing lost?",
                 (unsigned long long)seed);
    cr_assert_gt(st.lost, 0, "losses are visible in stats");
    /* every packet below rx_seq was delivered or declared lost; packets
     * above it wait in the reorder allowance, so the sum lies between
     * rx_seq and what was sent */
    cr_assert_geq(st.lost + delivered, st.rx_seq,
                  "seed %llu: lost %llu + delivered %llu < %llu",
                  (unsigned long long)seed, (unsigned long long)st.lost,
                  (unsigned long long)delivered,
                  (unsigned long long)st.rx_seq);
    cr_assert_leq(st.lost + delivered, P);
    cr_assert_eq(nm_mesh_stream_stats(a.m, b.id, 9, &st), NM_OK);
    cr_assert_eq(st.retransmits, 0);
    fini_nodes(all, 2);
}

Test(mesh_node, backpressure_surfaces_and_clears, .init = setup)
{
    tnode a, b;
    tnode *all[] = {&a, &b};
    mk(&a, 1, NULL);
    mk(&b, 2, NULL);
    connect_direct(&a, &b, all, 2);
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    sc.reliability = NM_RELIABLE;
    sc.window_bytes = 4096;
    cr_assert_eq(nm_mesh_open_stream(a.m, b.id, 1, &sc), NM_OK);
    char big[1000];
    memset(big, 'x', sizeof(big));
    const void *p = big;
    size_t l = sizeof(big);
    int rc = NM_OK;
    int ok = 0;
    while ((rc = nm_mesh_send(a.m, b.id, 1, &p, &l, 1)) == NM_OK) {
        ok++;
        cr_assert_lt(ok, 100);
    }
    cr_assert_eq(rc, NM_EBACKPRESSURE);
    cr_assert_eq(ok, 3, "4096 credit / (1004 + 84) per packet");
    nm_stream_stats st;
    cr_assert_eq(nm_mesh_stream_stats(a.m, b.id, 1, &st), NM_OK);
    cr_assert_eq(st.backpressure_events, 1);
    pump(all, 2, 3); /* B receives, grants */
    cr_assert_eq(nm_mesh_send(a.m, b.id, 1, &p, &l, 1), NM_OK,
                 "the grant cleared it");
    fini_nodes(all, 2);
}

/* ---- relays, failure, reroute -------------------------------------- */

static bool
session_has_key(const nmi_session *s, const nmi_session *probe)
{
    return memcmp(s->tx_key, probe->tx_key, 32) == 0 ||
           memcmp(s->rx_key, probe->tx_key, 32) == 0 ||
           memcmp(s->tx_key, probe->rx_key, 32) == 0 ||
           memcmp(s->rx_key, probe->rx_key, 32) == 0;
}

Test(mesh_node, relay_line_end_to_end, .init = setup)
{
    tnode a, b, c;
    tnode *all[] = {&a, &b, &c};
    tap *tb = NULL;
    mk(&a, 1, NULL);
    mk(&b, 2, &(mk_opts){.tap = &tb, .accept_any = true});
    mk(&c, 3, NULL);
    connect_direct(&a, &b, all, 3);
    connect_direct(&c, &b, all, 3);
    /* A reaches C through B: a routed handshake sent to B, dest C */
    cr_assert_eq(nmi_mesh_connect_start(a.m, b.addr, true, c.pub, c.id),
                 NM_OK);
    pump(all, 3, 5);
    cr_assert(has_peer(&a, c.id) && has_peer(&c, a.id));
    nm_mesh_stats sb;
    nm_mesh_stats_get(b.m, &sb);
    cr_assert_geq(sb.forwarded, 2, "msg1 and msg2 relayed");

    tb->on = true;
    const char *msg = "through the relay";
    size_t len = strlen(msg);
    cr_assert_eq(
        nm_mesh_send(a.m, c.id, 11, (const void *const *)&msg, &len, 1),
        NM_OK);
    pump(all, 3, 2);
    tb->on = false;
    nm_mesh_delivery *d = NULL;
    cr_assert_eq(nm_mesh_recv(c.m, 0, &d), NM_OK);
    cr_assert_eq(d->peer, a.id);
    cr_assert_eq(d->msgs[0].len, len);
    cr_assert_eq(memcmp(d->msgs[0].data, msg, len), 0);
    nm_mesh_delivery_free(d);
    cr_assert_eq(nm_mesh_recv(b.m, 0, &d), NM_EAGAIN, "B delivers nothing");

    /* B never held the A-C keys and relayed only ciphertext */
    const nmi_session *ac = nmi_mesh_session(a.m, c.id);
    cr_assert_not_null(ac);
    cr_assert(!session_has_key(nmi_mesh_session(b.m, a.id), ac));
    cr_assert(!session_has_key(nmi_mesh_session(b.m, c.id), ac));
    cr_assert_null(nmi_mesh_session(b.m, 0));
    cr_assert_geq(tb->n, 1);
    for (size_t i = 0; i < tb->n; i++) {
        cr_assert_null(memmem(tb->pkts[i], tb->lens[i], msg, len));
    }
    fini_nodes(all, 3);
}

Test(mesh_node, relay_failure_detected_and_rerouted, .init = setup)
{
    tnode a, b, c, dd;
    tnode *all[] = {&a, &b, &c, &dd};
    mk(&a, 1, NULL);
    mk(&b, 2, NULL);
    mk(&c, 3, NULL);
    mk(&dd, 4, NULL);
    connect_direct(&a, &b, all, 4);
    connect_direct(&c, &b, all, 4);
    connect_direct(&a, &dd, all, 4);
    connect_direct(&c, &dd, all, 4);
    pump(all, 4, 60); /* pingwaves teach A and C the two paths */
    nmi_route cands[NMI_ROUTE_MAX_CANDIDATES];
    size_t nc = nmi_route_candidates(a.m->routes, c.id, cands);
    cr_assert_eq(nc, 2, "C via B and via D (%zu: %llx/%u)", nc,
                 nc ? (unsigned long long)cands[0].via : 0ull,
                 nc ? cands[0].metric : 0u);
    cr_assert_eq(nmi_mesh_connect_start(a.m, b.addr, true, c.pub, c.id),
                 NM_OK);
    pump(all, 4, 5);
    cr_assert(has_peer(&a, c.id) && has_peer(&c, a.id));
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    sc.reliability = NM_RELIABLE;
    sc.in_order = true;
    sc.max_retries = 50;
    cr_assert_eq(nm_mesh_open_stream(a.m, c.id, 2, &sc), NM_OK);
    cr_assert_eq(nm_mesh_open_stream(c.m, a.id, 2, &sc), NM_OK);
    while (next_event(&a, NM_MESH_EV_PEER_DOWN, b.id)) {
    }

    /* B dies */
    uint64_t died = now_us;
    nm_mesh_close(b.m);
    b.m = NULL;
    uint32_t sent = 0, got = 0;
    bool a_told = false, c_told = false;
    uint64_t a_at = 0, c_at = 0;
    for (int r = 0; r < 600 && (got < 200 || !a_told || !c_told); r++) {
        if (sent < 200 && r % 2 == 0) {
            const void *p = &sent;
            size_t l = 4;
            if (nm_mesh_send(a.m, c.id, 2, &p, &l, 1) == NM_OK) {
                sent++;
            }
        }
        pump(all, 4, 1);
        if (!a_told && next_event(&a, NM_MESH_EV_PEER_DOWN, b.id)) {
            a_told = true;
            a_at = now_us;
        }
        if (!c_told && next_event(&c, NM_MESH_EV_PEER_DOWN, b.id)) {
            c_told = true;
            c_at = now_us;
        }
        nm_mesh_delivery *d;
        while (nm_mesh_recv(c.m, 0, &d) == NM_OK) {
            for (size_t i = 0; i < d->count; i++) {
                uint32_t v;
                memcpy(&v, d->msgs[i].data, 4);
                cr_assert_eq(v, got, "in order, exactly once");
                got++;
            }
            nm_mesh_delivery_free(d);
        }
    }
    cr_assert(a_told && c_told, "peer_down for B reached A and C");
    /* detection window: 3 session timeouts (40 ms) + one tick */
    uint64_t window = 3 * 40000 + 2000;
    cr_assert_leq(a_at - died, window, "A told after %llu us",
                  (unsigned long long)(a_at - died));
    cr_assert_leq(c_at - died, window);
    cr_assert_eq(got, 200, "traffic resumed through D (%u of 200)", got);
    uint64_t hop = 0;
    cr_assert_eq(nm_mesh_route(a.m, c.id, &hop, NULL), NM_OK);
    cr_assert_eq(hop, dd.id);
    fini_nodes(all, 4);
}

/* ---- extension points (mesh_ext.h) --------------------------------- */

typedef struct ext_rec {
    int sp_calls, ev_up, ticks, filtered;
    uint64_t peer;
    char last[32];
    int hop;
} ext_rec;

static void
ext_sp(void *ctx, nm_mesh_t *m, uint64_t peer, uint16_t sp, uint64_t sid,
       const uint8_t *payload, size_t len, uint16_t count, int hop)
{
    ext_rec *r = ctx;
    r->sp_calls++;
    r->peer = peer;
    r->hop = hop;
    cr_assert_eq(sp, 0x2200);
    cr_assert_eq(sid, 0x2200);
    nmi_wire_frame_iter it;
    cr_assert_eq(nmi_wire_frame_iter_init(&it, payload, len, count), NM_OK);
    nmi_wire_buf ev;
    cr_assert(nmi_wire_frame_next(&it, &ev));
    snprintf(r->last, sizeof(r->last), "%.*s", (int)ev.len,
             (const char *)ev.ptr);
    if (strcmp(r->last, "ping") == 0) {
        /* the handler runs unlocked: it may answer through the node */
        const void *p = "pong";
        size_t l = 4;
        cr_assert_eq(nmi_mesh_sp_send(m, peer, 0x2200, 0x2200, &p, &l, 1),
                     NM_OK);
    }
}

static void
ext_ev(void *ctx, nm_mesh_t *m, const nm_mesh_event *ev)
{
    (void)m;
    ext_rec *r = ctx;
    if (ev->kind == NM_MESH_EV_PEER_UP) {
        r->ev_up++;
    }
}

static void
ext_tick(void *ctx, nm_mesh_t *m, uint64_t now)
{
    (void)m;
    (void)now;
    ((ext_rec *)ctx)->ticks++;
}

static bool
ext_filter(void *ctx, nm_mesh_delivery *d)
{
    ext_rec *r = ctx;
    if (d->channel_hash == 0xBEEF) {
        cr_assert_eq(d->origin_hash, 0x1234);
        r->filtered++;
        nm_mesh_delivery_free(d);
        return true;
    }
    return false;
}

Test(mesh_node, extension_points, .init = setup)
{
    tnode a, b;
    tnode *all[] = {&a, &b};
    mk(&a, 1, NULL);
    mk(&b, 2, NULL);
    ext_rec ra = {0}, rb = {0};
    cr_assert_eq(nmi_mesh_sp_register(a.m, 0x2200, ext_sp, &ra), NM_OK);
    cr_assert_eq(nmi_mesh_sp_register(b.m, 0x2200, ext_sp, &rb), NM_OK);
    cr_assert_eq(nmi_mesh_sp_register(b.m, 0x2200, ext_sp, &rb), NM_EEXIST);
    cr_assert_eq(nmi_mesh_sp_register(b.m, 0x0B00, ext_sp, &rb), NM_EINVAL);
    cr_assert_eq(nmi_mesh_event_hook(b.m, ext_ev, &rb), NM_OK);
    cr_assert_eq(nmi_mesh_tick_hook(b.m, ext_tick, &rb), NM_OK);
    cr_assert_eq(nmi_mesh_set_delivery_filter(b.m, ext_filter, &rb), NM_OK);
    connect_direct(&a, &b, all, 2);
    cr_assert_eq(rb.ev_up, 1);
    cr_assert_gt(rb.ticks, 0);
    cr_assert(nmi_mesh_is_adjacent(a.m, b.id));

    const void *p = "ping";
    size_t l = 4;
    cr_assert_eq(nmi_mesh_sp_send(a.m, b.id, 0x2200, 0x2200, &p, &l, 1),
                 NM_OK);
    pump(all, 2, 2);
    cr_assert_eq(rb.sp_calls, 1);
    cr_assert_eq(rb.peer, a.id);
    cr_assert_eq(rb.hop, -1);
    cr_assert_str_eq(rb.last, "ping");
    cr_assert_eq(ra.sp_calls, 1, "the answer came back");
    cr_assert_str_eq(ra.last, "pong");

    /* the channel publish path's header fields reach the filter */
    nmi_mesh_send_opts o = {.channel_hash = 0xBEEF, .origin_hash = 0x1234};
    cr_assert_eq(nmi_mesh_send_ex(a.m, b.id, 77, &p, &l, 1, &o), NM_OK);
    cr_assert_eq(nm_mesh_send(a.m, b.id, 78, &p, &l, 1), NM_OK);
    pump(all, 2, 2);
    cr_assert_eq(rb.filtered, 1);
    nm_mesh_delivery *d = NULL;
    cr_assert_eq(nm_mesh_recv(b.m, 0, &d), NM_OK, "unfiltered one queued");
    cr_assert_eq(d->stream_id, 78);
    cr_assert_eq(d->channel_hash, 0);
    nm_mesh_delivery_free(d);
    fini_nodes(all, 2);
}

Test(mesh_node, replayed_old_msg1_cannot_replace_a_live_session, .init = setup)
{
    tnode a, b;
    tnode *all[] = {&a, &b};
    tap *t = NULL;
    mk(&a, 1, &(mk_opts){.tap = &t, .accept_any = true});
    mk(&b, 2, NULL);
    t->on = true;
    cr_assert_eq(nmi_mesh_connect_start(a.m, b.addr, true, b.pub, b.id),
                 NM_OK);
    t->on = false;
    cr_assert_eq(t->n, 1, "captured msg1");
    pump(all, 2, 5);
    cr_assert(has_peer(&a, b.id) && has_peer(&b, a.id));
    /* a second, legitimate handshake replaces the session on both ends
     * (B switches when A's first packet under it arrives) */
    uint64_t s1 = nmi_mesh_session(a.m, b.id)->session_id;
    cr_assert_eq(nmi_mesh_connect_start(a.m, b.addr, true, b.pub, b.id),
                 NM_OK);
    pump(all, 2, 60);
    uint64_t s2 = nmi_mesh_session(a.m, b.id)->session_id;
    cr_assert_neq(s1, s2);
    cr_assert_eq(nmi_mesh_session(b.m, a.id)->session_id, s2);

    /* an attacker replays the first msg1 from elsewhere */
    nmi_port *raw = NULL;
    cr_assert_eq(nmi_loop_hub_attach(hub, 77, &raw), NM_OK);
    nmi_addr to;
    nmi_addr_parse(&to, b.addr);
    nmi_port_send(raw, &to, t->pkts[0], t->lens[0]);
    pump(all, 2, 300); /* past the handshake timeout */
    cr_assert_eq(nmi_mesh_session(b.m, a.id)->session_id, s2,
                 "the live session survived the replay");
    nm_mesh_peer_info pi;
    cr_assert_eq(nm_mesh_peer(b.m, a.id, &pi), NM_OK);
    cr_assert_str_eq(pi.addr, a.addr, "B still talks to A's address");
    const char *m1 = "still here";
    size_t l1 = strlen(m1);
    cr_assert_eq(nm_mesh_send(a.m, b.id, 4, (const void *const *)&m1, &l1, 1),
                 NM_OK);
    pump(all, 2, 2);
    nm_mesh_delivery *d = NULL;
    cr_assert_eq(nm_mesh_recv(b.m, 0, &d), NM_OK);
    nm_mesh_delivery_free(d);
    nmi_port_destroy(raw);
    fini_nodes(all, 2);
}

Test(mesh_node, closed_stream_restarts_on_both_ends, .init = setup)
{
    tnode a, b;
    tnode *all[] = {&a, &b};
    mk(&a, 1, NULL);
    mk(&b, 2, NULL);
    connect_direct(&a, &b, all, 2);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 5; i++) {
            const void *p = &i;
            size_t l = sizeof(i);
            cr_assert_eq(nm_mesh_send(a.m, b.id, 9, &p, &l, 1), NM_OK);
        }
        pump(all, 2, 3);
        int got = 0;
        nm_mesh_delivery *d;
        while (nm_mesh_recv(b.m, 0, &d) == NM_OK) {
            got += (int)d->count;
            nm_mesh_delivery_free(d);
        }
        cr_assert_eq(got, 5, "round %d: %d of 5 (both ends restarted)", round,
                     got);
        /* close on the sender: a StreamReset tells B to drop its state */
        cr_assert_eq(nm_mesh_close_stream(a.m, b.id, 9), NM_OK);
        pump(all, 2, 3);
        nm_stream_stats st;
        cr_assert_eq(nm_mesh_stream_stats(b.m, a.id, 9, &st), NM_ENOTFOUND);
        cr_assert(next_event(&b, NM_MESH_EV_STREAM_RESET, a.id));
    }
    /* a stream that carried packets keeps its config */
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    const void *p = "x";
    size_t l = 1;
    cr_assert_eq(nm_mesh_send(a.m, b.id, 10, &p, &l, 1), NM_OK);
    sc.reliability = NM_RELIABLE;
    cr_assert_eq(nm_mesh_open_stream(a.m, b.id, 10, &sc), NM_EBUSY);
    fini_nodes(all, 2);
}
