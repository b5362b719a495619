/*
 * tests/fuzz/fuzz_mesh_node.c - arbitrary datagrams into a live mesh node
 * (nmi_node_on_datagram, the entry point of every received byte). Nothing
 * may crash, leak, or trip ASan / UBSan.
 *
 * Two nodes on the manual driver (loopback hub, simulated time) are built
 * once, with fixed identities and static keys so the seed corpus can name
 * them: A (127.0.0.1:1, the initiator) and B (127.0.0.1:2, the responder,
 * accept_any), with a direct session. Each input is a list of records fed
 * to B under its mutex:
 *
 *   record := op u8 ‖ len u16 LE ‖ body[len]   (len clamped to the input)
 *   op % 8:
 *     0 RAW      body is a datagram from A's address (pingwaves, forged
 *                packets, handshakes, routed packets...)
 *     1 STRANGER body is a datagram from an address that is no peer
 *     2 SEALED   body = flags u8 ‖ subprotocol u16 ‖ stream u64 ‖ seq u64 ‖
 *                event_count u16 ‖ payload, sealed with A's session so it
 *                passes the AEAD and reaches the stream / control code;
 *                op & 8: inside a routing header to B (ttl = 8)
 *     3 EVENTS   body = flags u8 ‖ stream u64 ‖ seq u64 ‖ (n u8 ‖ n bytes)*:
 *                a valid EventFrame built here, sealed (op & 8: routed)
 *     4 CONTROL  body = kind u8 ‖ messages: grants (24 B), NACKs (24 B),
 *                resets (8 B), route withdrawals (16 B) or one ACK-ranges
 *                message, framed one per event and sealed (kind & 0x80:
 *                routed)
 *     5 ROUTED   body = dest u8 ‖ ttl u8 ‖ hops u8 ‖ inner: a routing
 *                header (dest: B, A, the origin 0x58... of the seed
 *                pingwave, or an unknown id) around arbitrary inner bytes
 *     6 TICK     advance simulated time by u16 LE ms, tick both nodes,
 *                pump the hub
 *     7 DRAIN    pump the hub and drain both nodes' queues
 *
 * Before each input B opens a reliable stream 5 (and sends on it, so
 * grants / NACKs / ACK ranges from the input meet packets in flight) and
 * a reliable in-order stream 6; after it both nodes close every stream of
 * the pair, so inputs mostly replay alone (peers, routes and the replay
 * window persist). A session the input replaced is re-established.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the fuzz build does not define it; uv.h needs it */
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>
#include <netmesh/identity.h>
#include <netmesh/mesh.h>

#include "core/core.h"
#include "mesh/node_impl.h"
#include "mesh/port.h"
#include "wire/control.h"
#include "wire/frame.h"
#include "wire/packet.h"
#include "wire/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MAX_RECORDS 64
#define FZ_PORT_A 1
#define FZ_PORT_B 2
#define FZ_PORT_STRANGER 77
/* The origin node id of the seed pingwave (a route B learns via A). */
#define FZ_PW_ORIGIN UINT64_C(0x5858585858585858)

static const uint8_t FZ_PSK[32] = {
    0x50, 0x53, 0x4b, 0x21, 0x50, 0x53, 0x4b, 0x21, 0x50, 0x53, 0x4b,
    0x21, 0x50, 0x53, 0x4b, 0x21, 0x50, 0x53, 0x4b, 0x21, 0x50, 0x53,
    0x4b, 0x21, 0x50, 0x53, 0x4b, 0x21, 0x50, 0x53, 0x4b, 0x21};

typedef struct fz_node {
    nm_mesh_t *m;
    uint64_t id;
    uint8_t pub[32];
    nmi_addr addr;
} fz_node;

static bool fz_ready;
static nmi_loop_hub *fz_hub;
static fz_node fz_a, fz_b;
static nmi_addr fz_stranger;
static uint64_t fz_now = 1000000;
static uint8_t fz_pkt[NMI_NODE_BUF];
static uint8_t fz_pt[NMI_WIRE_MAX_PAYLOAD];

static void
fz_fill(uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(v + 13 * i);
    }
}

static uint16_t
fz_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint64_t
fz_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void
fz_open(fz_node *n, uint16_t port_n, uint8_t seed_byte)
{
    nmi_port *port = NULL;
    uint8_t seed[NM_IDENTITY_SEED_BYTES];
    nm_identity *ident = NULL;
    fz_fill(seed, sizeof(seed), seed_byte);
    if (nmi_loop_hub_attach(fz_hub, port_n, &port) != NM_OK ||
        nm_identity_from_seed(seed, &ident) != NM_OK) {
        abort();
    }
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    memcpy(cfg.psk, FZ_PSK, 32);
    cfg.psk_set = true;
    cfg.identity = ident;
    fz_fill(cfg.static_key, 32, (uint8_t)(seed_byte + 1));
    cfg.static_key_set = true;
    cfg.heartbeat_ms = 20;
    cfg.session_timeout_ms = 40;
    cfg.handshake_timeout_ms = 200;
    cfg.accept_any = true;
    cfg.max_peers = 16;
    cfg.rx_queue_bytes = 32 * 1024;
    if (nmi_mesh_open_port(&cfg, port, fz_now, &n->m) != NM_OK) {
        abort();
    }
    nm_identity_free(ident);
    n->id = nm_mesh_node_id(n->m);
    nm_mesh_static_pubkey(n->m, n->pub);
    nmi_addr_ipv4(&n->addr, 0x7f000001u, port_n);
}

static void
fz_drain(fz_node *n)
{
    nm_mesh_delivery *d;
    while (nm_mesh_recv(n->m, 0, &d) == NM_OK) {
        for (size_t i = 0; i < d->count; i++) {
            if (d->msgs[i].len > 0 && d->msgs[i].data == NULL) {
                abort();
            }
        }
        nm_mesh_delivery_free(d);
    }
    nm_mesh_event ev;
    while (nm_mesh_next_event(n->m, 0, &ev) == NM_OK) {
    }
}

/* Deliver what the hub holds, advance ms, tick both nodes. */
static void
fz_pump(uint64_t ms)
{
    nmi_loop_hub_run(fz_hub, 16);
    fz_now += ms * 1000u;
    nmi_mesh_tick(fz_a.m, fz_now);
    nmi_mesh_tick(fz_b.m, fz_now);
    nmi_loop_hub_run(fz_hub, 16);
}

/* The sessions A->B and B->A exist and agree. */
static bool
fz_session_ok(void)
{
    uint64_t sa = 0, sb = 1;
    pthread_mutex_lock(&fz_a.m->mu);
    nmi_peer *pa = nmi_u64map_get(&fz_a.m->peers, fz_b.id);
    if (pa != NULL && pa->up) {
        sa = pa->sess.session_id;
    }
    pthread_mutex_unlock(&fz_a.m->mu);
    pthread_mutex_lock(&fz_b.m->mu);
    nmi_peer *pb = nmi_u64map_get(&fz_b.m->peers, fz_a.id);
    if (pb != NULL && pb->up) {
        sb = pb->sess.session_id;
    }
    pthread_mutex_unlock(&fz_b.m->mu);
    return sa == sb;
}

static void
fz_connect(void)
{
    for (int attempt = 0; attempt < 4 && !fz_session_ok(); attempt++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", FZ_PORT_B);
        (void)nmi_mesh_connect_start(fz_a.m, addr, false, fz_b.pub, fz_b.id);
        for (int i = 0; i < 8 && !fz_session_ok(); i++) {
            fz_pump(1);
        }
    }
    fz_drain(&fz_a);
    fz_drain(&fz_b);
}

static void
fz_teardown(void)
{
    if (!fz_ready) {
        return;
    }
    nm_mesh_close(fz_a.m);
    nm_mesh_close(fz_b.m);
    nmi_loop_hub_free(fz_hub);
    fz_ready = false;
}

static void
fz_setup(void)
{
    if (nmi_loop_hub_new(&fz_hub) != NM_OK) {
        abort();
    }
    fz_open(&fz_a, FZ_PORT_A, 0xA0);
    fz_open(&fz_b, FZ_PORT_B, 0xB0);
    nmi_addr_ipv4(&fz_stranger, 0x7f000001u, FZ_PORT_STRANGER);
    if (nm_mesh_accept(fz_b.m, fz_a.id) != NM_OK) {
        abort();
    }
    fz_ready = true;
    fz_connect();
    if (!fz_session_ok()) {
        fprintf(stderr, "fuzz_mesh_node: no session between A and B\n");
        abort();
    }
    atexit(fz_teardown);
}

static void
fz_feed(const nmi_addr *from, const uint8_t *d, size_t n)
{
    pthread_mutex_lock(&fz_b.m->mu);
    nmi_node_on_datagram(fz_b.m, from, d, n);
    pthread_mutex_unlock(&fz_b.m->mu);
}

/* Seal pt[0..len) as A's packet for B (optionally routed) and feed it. */
static void
fz_seal_feed(nmi_wire_header *h, const uint8_t *pt, size_t len, bool routed,
             uint8_t ttl, uint8_t hops)
{
    size_t off = routed ? NMI_WIRE_ROUTE_LEN : 0;
    size_t w = 0;
    int rc = NM_EINVAL;
    pthread_mutex_lock(&fz_a.m->mu);
    nmi_peer *pa = nmi_u64map_get(&fz_a.m->peers, fz_b.id);
    if (pa != NULL && pa->up) {
        h->session_id = pa->sess.session_id;
        rc = nmi_wire_seal(&pa->sess, h, pt, len, fz_pkt + off,
                           sizeof(fz_pkt) - off, &w);
    }
    pthread_mutex_unlock(&fz_a.m->mu);
    if (rc != NM_OK) {
        return;
    }
    if (routed) {
        nmi_wire_route r;
        nmi_wire_route_init(&r, fz_b.id, nmi_wire_routing_id(fz_a.id), ttl);
        r.hop_count = hops;
        (void)nmi_wire_route_encode(&r, fz_pkt);
    }
    fz_feed(&fz_a.addr, fz_pkt, off + w);
}

static void
op_sealed(const uint8_t *b, size_t n, bool routed)
{
    if (n < 21) {
        return;
    }
    nmi_wire_header h;
    /* the handshake flag is never sealed, reserved bits never encode */
    nmi_wire_header_init(&h, (uint8_t)(b[0] & 0x2F), 0, fz_le64(b + 3),
                         fz_le64(b + 11));
    h.subprotocol_id = fz_le16(b + 1);
    h.event_count = fz_le16(b + 19);
    size_t len = n - 21;
    if (len > NMI_WIRE_MAX_PAYLOAD) {
        len = NMI_WIRE_MAX_PAYLOAD;
    }
    fz_seal_feed(&h, b + 21, len, routed, 8, 0);
}

static void
op_events(const uint8_t *b, size_t n, bool routed)
{
    if (n < 17) {
        return;
    }
    nmi_wire_frame_writer w;
    nmi_wire_frame_init(&w, fz_pt, sizeof(fz_pt));
    size_t i = 17;
    while (i < n) {
        size_t ev = b[i++];
        if (ev > n - i) {
            ev = n - i;
        }
        if (nmi_wire_frame_add(&w, b + i, ev) != NM_OK) {
            break;
        }
        i += ev;
    }
    nmi_wire_header h;
    nmi_wire_header_init(&h, (uint8_t)(b[0] & NMI_WIRE_F_RELIABLE), 0,
                         fz_le64(b + 1), fz_le64(b + 9));
    h.subprotocol_id = NMI_WIRE_SP_EVENTS;
    h.event_count = (uint16_t)w.count;
    fz_seal_feed(&h, fz_pt, w.len, routed, 8, 0);
}

static void
op_control(const uint8_t *b, size_t n)
{
    static const struct {
        uint16_t sp;
        size_t len; /* 0: the rest is one message */
    } kinds[] = {
        {NMI_WIRE_SP_STREAM_WINDOW, NMI_WIRE_STREAM_WINDOW_LEN},
        {NMI_WIRE_SP_STREAM_NACK, NMI_WIRE_STREAM_NACK_LEN},
        {NMI_WIRE_SP_STREAM_RESET, NMI_WIRE_STREAM_RESET_LEN},
        {NMI_WIRE_SP_ROUTE_WITHDRAW, NMI_WIRE_ROUTE_WITHDRAW_LEN},
        {NMI_WIRE_SP_STREAM_ACK_RANGES, 0},
    };
    if (n < 1) {
        return;
    }
    size_t k = (size_t)b[0] % (sizeof(kinds) / sizeof(kinds[0]));
    bool routed = (b[0] & 0x80) != 0;
    b++;
    n--;
    nmi_wire_frame_writer w;
    nmi_wire_frame_init(&w, fz_pt, sizeof(fz_pt));
    if (kinds[k].len == 0) {
        (void)nmi_wire_frame_add(&w, b, n);
    } else {
        for (size_t i = 0; i + kinds[k].len <= n; i += kinds[k].len) {
            if (nmi_wire_frame_add(&w, b + i, kinds[k].len) != NM_OK) {
                break;
            }
        }
    }
    nmi_wire_header h;
    uint64_t sid = kinds[k].sp == NMI_WIRE_SP_ROUTE_WITHDRAW
                       ? NMI_WIRE_SP_ROUTE_WITHDRAW
                       : NMI_WIRE_CONTROL_STREAM_ID;
    nmi_wire_header_init(&h, 0, 0, sid, 0);
    h.subprotocol_id = kinds[k].sp;
    h.event_count = (uint16_t)w.count;
    fz_seal_feed(&h, fz_pt, w.len, routed, 8, 0);
}

static void
op_routed(const uint8_t *b, size_t n)
{
    if (n < 3) {
        return;
    }
    uint64_t dest;
    switch (b[0] & 3) {
    case 0:
        dest = fz_b.id;
        break;
    case 1:
        dest = fz_a.id;
        break;
    case 2:
        dest = FZ_PW_ORIGIN;
        break;
    default:
        dest = UINT64_C(0x1234567812345678) ^ b[0];
        break;
    }
    size_t inner = n - 3;
    if (inner > sizeof(fz_pkt) - NMI_WIRE_ROUTE_LEN) {
        inner = sizeof(fz_pkt) - NMI_WIRE_ROUTE_LEN;
    }
    nmi_wire_route r;
    nmi_wire_route_init(&r, dest, nmi_wire_routing_id(fz_a.id), b[1]);
    r.hop_count = b[2];
    r.flags = (uint8_t)((b[0] >> 4) & NMI_WIRE_RF_MASK);
    if (nmi_wire_route_encode(&r, fz_pkt) != NM_OK) {
        return;
    }
    memcpy(fz_pkt + NMI_WIRE_ROUTE_LEN, b + 3, inner);
    fz_feed(&fz_a.addr, fz_pkt, NMI_WIRE_ROUTE_LEN + inner);
}

/* B's local streams for this input: 5 reliable with data in flight, 6
 * reliable in order (receives held out-of-order packets). */
static void
fz_prologue(void)
{
    if (!fz_session_ok()) {
        fz_connect();
    }
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    sc.reliability = NM_RELIABLE;
    sc.window_bytes = 4096;
    if (nm_mesh_open_stream(fz_b.m, fz_a.id, 5, &sc) == NM_OK) {
        static const char m0[] = "zero", m1[] = "one", m2[] = "two";
        const void *msgs[] = {m0, m1, m2};
        size_t lens[] = {4, 3, 3};
        for (int i = 0; i < 3; i++) {
            (void)nm_mesh_send(fz_b.m, fz_a.id, 5, &msgs[i], &lens[i], 1);
        }
    }
    sc.in_order = true;
    (void)nm_mesh_open_stream(fz_b.m, fz_a.id, 6, &sc);
}

static void
fz_close_streams(fz_node *n, uint64_t peer)
{
    uint64_t ids[64];
    for (;;) {
        size_t k = 0;
        pthread_mutex_lock(&n->m->mu);
        nmi_peer *p = nmi_u64map_get(&n->m->peers, peer);
        for (size_t i = 0; p != NULL && i < p->streams.cap && k < 64; i++) {
            if (p->streams.vals[i] != NULL) {
                ids[k++] = p->streams.keys[i];
            }
        }
        pthread_mutex_unlock(&n->m->mu);
        if (k == 0) {
            return;
        }
        for (size_t i = 0; i < k; i++) {
            (void)nm_mesh_close_stream(n->m, peer, ids[i]);
        }
    }
}

static void
fz_epilogue(void)
{
    fz_pump(1);
    fz_drain(&fz_a);
    fz_drain(&fz_b);
    fz_close_streams(&fz_a, fz_b.id);
    fz_close_streams(&fz_b, fz_a.id);
    nm_mesh_stats st;
    nm_mesh_stats_get(fz_b.m, &st);
    nm_mesh_peer_info peers[16];
    size_t np = 0;
    (void)nm_mesh_peers(fz_b.m, peers, 16, &np);
    uint64_t hop;
    uint32_t metric;
    (void)nm_mesh_route(fz_b.m, FZ_PW_ORIGIN, &hop, &metric);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz_ready) {
        fz_setup();
    }
    fz_prologue();
    size_t pos = 0;
    for (int rec = 0; rec < FZ_MAX_RECORDS && size - pos >= 3; rec++) {
        uint8_t op = data[pos];
        size_t len = fz_le16(data + pos + 1);
        pos += 3;
        if (len > size - pos) {
            len = size - pos;
        }
        const uint8_t *b = data + pos;
        pos += len;
        bool routed = (op & 8) != 0;
        switch (op % 8) {
        case 0:
            fz_feed(&fz_a.addr, b, len);
            break;
        case 1:
            fz_feed(&fz_stranger, b, len);
            break;
        case 2:
            op_sealed(b, len, routed);
            break;
        case 3:
            op_events(b, len, routed);
            break;
        case 4:
            op_control(b, len);
            break;
        case 5:
            op_routed(b, len);
            break;
        case 6:
            fz_pump(len >= 2 ? fz_le16(b) : 1);
            break;
        default:
            nmi_loop_hub_run(fz_hub, 16);
            fz_drain(&fz_a);
            fz_drain(&fz_b);
            break;
        }
    }
    fz_epilogue();
    return 0;
}
