/*
 * src/mesh/node_rx.c - what the node does with a datagram (upstream
 * mesh.rs dispatch_packet / process_local_packet) and on each tick.
 *
 *   first bytes 45 4E  -> a Net packet: handshake, or session lookup by
 *                         session_id, AEAD open (replay window), then by
 *                         flags / subprotocol: heartbeat, event data,
 *                         stream control, route withdrawal
 *   52 54 ("RT")       -> dest == self: strip, handle the inner packet;
 *                         else relay by dest_id without decrypting
 *   72 bytes           -> pingwave: routes, flooding with split horizon
 *   anything else      -> dropped, counted
 *
 * All functions run with the node mutex held.
 */
#include "mesh/node_impl.h"

#include <stdlib.h>
#include <string.h>

#include "core/evfd.h"
#include "wire/control.h"
#include "wire/frame.h"
#include "wire/packet.h"
#include "wire/pingwave.h"
#include "wire/route.h"

/* ------------------------------------------------------- deliveries */

static void
enqueue(nm_mesh_t *m, nmi_peer *p, nmi_strm *s, uint64_t seq,
        const uint8_t *pt, size_t len, uint16_t count)
{
    size_t bytes =
        sizeof(nmi_delivery) + (size_t)count * sizeof(nm_mesh_msg) + len;
    nmi_delivery *d = malloc(bytes);
    if (d == NULL) {
        m->stats.rx_queue_full++;
        return;
    }
    uint8_t *copy = (uint8_t *)&d->msgs[count];
    if (len > 0) {
        memcpy(copy, pt, len);
    }
    nmi_wire_frame_iter it;
    if (nmi_wire_frame_iter_init(&it, copy, len, count) != NM_OK) {
        free(d); /* validated before: cannot happen */
        return;
    }
    nmi_wire_buf ev;
    size_t i = 0;
    while (i < count && nmi_wire_frame_next(&it, &ev)) {
        d->msgs[i].data = ev.ptr;
        d->msgs[i].len = ev.len;
        i++;
    }
    d->next = NULL;
    d->bytes = bytes; /* the whole allocation counts against the bound */
    d->pub.peer = p->node_id;
    d->pub.stream_id = s->id;
    d->pub.seq = seq;
    d->pub.count = i;
    d->pub.msgs = d->msgs;
    d->pub.channel_hash = s->ch_hash;
    d->pub.origin_hash = s->origin;
    if (m->filter != NULL && m->filter(m->filter_ctx, &d->pub)) {
        return; /* taken by an upper layer (channels) */
    }
    for (size_t t = 0; t < m->ntaps; t++) {
        if (s->id - m->taps[t].first < m->taps[t].count) {
            if (m->tap_tail != NULL) {
                m->tap_tail->next = d;
            } else {
                m->tap_head = d;
            }
            m->tap_tail = d;
            m->rx_bytes += bytes;
            nmi_node_wake(m);
            return;
        }
    }
    bool was_empty = m->rx_head == NULL && m->ev_len == 0;
    if (m->rx_tail != NULL) {
        m->rx_tail->next = d;
    } else {
        m->rx_head = d;
    }
    m->rx_tail = d;
    m->rx_bytes += bytes;
    if (was_empty && m->fd_used) {
        nmi_evfd_signal(m->evfd);
    }
    nmi_node_wake(m);
}

static void
on_data(nm_mesh_t *m, nmi_peer *p, const nmi_wire_header *h, const uint8_t *pt,
        size_t len)
{
    if (nmi_wire_frame_validate(pt, len, h->event_count) != NM_OK) {
        m->stats.rejected_decode++;
        return;
    }
    nmi_stream_params sp;
    nmi_node_stream_defaults(m, h->stream_id, &sp);
    sp.reliable = (h->flags & NMI_WIRE_F_RELIABLE) != 0; /* the sender's */
    sp.in_order = sp.in_order && sp.reliable;
    nmi_strm *s = nmi_node_stream(m, p, h->stream_id, &sp, true);
    if (s == NULL) {
        return;
    }
    if (m->rx_bytes + len + sizeof(nmi_delivery) +
            (size_t)h->event_count * sizeof(nm_mesh_msg) >
        m->cfg.rx_queue_bytes) {
        /* not accounted: a reliable sender retransmits it later */
        m->stats.rx_queue_full++;
        return;
    }
    s->ch_hash = h->channel_hash;
    s->origin = h->origin_hash;
    int r = nmi_stream_rx_on_packet(&s->rx, h->sequence, pt, len,
                                    h->event_count, nmi_stream_cost(len));
    if (r == NMI_RX_DELIVER || r == NMI_RX_BUFFERED || r == NMI_RX_DUPLICATE) {
        s->grant_dirty = true;
        p->grants_dirty = true;
        __atomic_store_n(&m->grants_pending, true, __ATOMIC_RELAXED);
        s->regrant = 40; /* ~1 s of NACK ticks */
        if (r == NMI_RX_DUPLICATE) {
            /* a retransmission of what we have: our grant / ack was
             * lost, so repeat it even though it did not change */
            s->grant_force = true;
        }
    }
    if (r == NMI_RX_DELIVER) {
        enqueue(m, p, s, h->sequence, pt, len, h->event_count);
    }
    if (s->params.in_order || s->rx.p.in_order) {
        uint64_t seq;
        const uint8_t *bp;
        size_t blen;
        uint16_t cnt;
        while (nmi_stream_rx_pop(&s->rx, &seq, &bp, &blen, &cnt)) {
            enqueue(m, p, s, seq, bp, blen, cnt);
        }
    }
}

/* A StreamReset from the peer (it gave up or closed the stream): tell
 * the app and drop our state, so the id restarts at sequence 0 on both
 * ends (a stream the app opened is re-created with its settings). */
static void
stream_reset(nm_mesh_t *m, nmi_peer *p, nmi_strm *s)
{
    if (!s->reset_notified) {
        nmi_node_event(m, NM_MESH_EV_STREAM_RESET, p->node_id, s->id);
    }
    nmi_node_stream_restart(m, p, s);
    nmi_node_wake(m);
}

static void
on_control(nm_mesh_t *m, nmi_peer *p, const nmi_wire_header *h,
           const uint8_t *pt, size_t len)
{
    nmi_wire_frame_iter it;
    if (nmi_wire_frame_iter_init(&it, pt, len, h->event_count) != NM_OK) {
        m->stats.rejected_decode++;
        return;
    }
    uint64_t now = nmi_node_now(m);
    nmi_wire_buf ev;
    while (nmi_wire_frame_next(&it, &ev)) {
        nmi_strm *s = NULL;
        switch (h->subprotocol_id) {
        case NMI_WIRE_SP_STREAM_WINDOW: {
            nmi_wire_stream_window w;
            if (nmi_wire_stream_window_decode(ev.ptr, ev.len, &w) != NM_OK) {
                m->stats.rejected_decode++;
                break;
            }
            s = nmi_node_stream(m, p, w.stream_id, NULL, false);
            if (s != NULL) {
                nmi_stream_tx_on_window(&s->tx, w.total_consumed, w.ack_seq,
                                        now);
            }
            break;
        }
        case NMI_WIRE_SP_STREAM_NACK: {
            nmi_wire_stream_nack k;
            if (nmi_wire_stream_nack_decode(ev.ptr, ev.len, &k) != NM_OK) {
                m->stats.rejected_decode++;
                break;
            }
            s = nmi_node_stream(m, p, k.stream_id, NULL, false);
            if (s != NULL) {
                nmi_stream_tx_on_nack(&s->tx, k.next_expected, k.bitmap, now);
                nmi_node_stream_poll(m, p, s, now);
            }
            break;
        }
        case NMI_WIRE_SP_STREAM_ACK_RANGES: {
            nmi_wire_ack_ranges a;
            if (nmi_wire_ack_ranges_decode(ev.ptr, ev.len, &a) != NM_OK) {
                m->stats.rejected_decode++;
                break;
            }
            s = nmi_node_stream(m, p, a.stream_id, NULL, false);
            if (s != NULL) {
                nmi_stream_tx_on_ack_ranges(&s->tx, &a, now);
                nmi_node_stream_poll(m, p, s, now);
            }
            break;
        }
        case NMI_WIRE_SP_STREAM_RESET: {
            nmi_wire_stream_reset r;
            if (nmi_wire_stream_reset_decode(ev.ptr, ev.len, &r) != NM_OK) {
                m->stats.rejected_decode++;
                break;
            }
            s = nmi_node_stream(m, p, r.stream_id, NULL, false);
            if (s != NULL) {
                stream_reset(m, p, s);
            }
            break;
        }
        default:
            break;
        }
    }
    /* credit or acks arrived: wake senders waiting for room */
    nmi_node_wake(m);
}

/* Flood a withdrawal for dest to every direct peer but `except`. */
static void
flood_withdraw(nm_mesh_t *m, uint64_t dest, uint64_t except)
{
    uint64_t now = nmi_node_now(m);
    if (nmi_damp_admit(m->damp, dest, now) != NMI_DAMP_SEND) {
        return;
    }
    nmi_wire_route_withdraw w = {.dest = dest, .seq = ++m->withdraw_seq};
    uint8_t msg[NMI_WIRE_ROUTE_WITHDRAW_LEN];
    nmi_wire_route_withdraw_encode(&w, msg);
    for (size_t i = 0; i < m->peers.cap; i++) {
        nmi_peer *q = m->peers.vals[i];
        if (q == NULL || !q->up || !q->adjacent || q->node_id == except ||
            q->state == NM_PEER_FAILED) {
            continue;
        }
        (void)nmi_node_send_control(m, q, NMI_WIRE_SP_ROUTE_WITHDRAW, msg,
                                    sizeof(msg), 1);
    }
}

static void
on_withdraw(nm_mesh_t *m, nmi_peer *p, const nmi_wire_header *h,
            const uint8_t *pt, size_t len)
{
    nmi_wire_frame_iter it;
    if (!p->adjacent ||
        nmi_wire_frame_iter_init(&it, pt, len, h->event_count) != NM_OK) {
        m->stats.rejected_decode++;
        return;
    }
    nmi_wire_buf ev;
    while (nmi_wire_frame_next(&it, &ev)) {
        nmi_wire_route_withdraw w;
        if (nmi_wire_route_withdraw_decode(ev.ptr, ev.len, &w) != NM_OK) {
            m->stats.rejected_decode++;
            continue;
        }
        if (w.dest == m->node_id) {
            continue;
        }
        if (nmi_route_withdraw(m->routes, w.dest, p->node_id) ==
            NMI_ROUTE_WD_UNREACHABLE) {
            flood_withdraw(m, w.dest, p->node_id);
        }
    }
}

/* ------------------------------------------------------------ packets */

static void
heard(nm_mesh_t *m, nmi_peer *p, const nmi_addr *from, bool via_route)
{
    uint64_t now = nmi_node_now(m);
    p->last_heard_us = now;
    if (p->adjacent || via_route) {
        p->addr = *from; /* roaming / the current previous hop */
    }
    if (!p->adjacent) {
        return;
    }
    nmi_fd_state before = nmi_fd_heard(&p->fd, now);
    if (before == NMI_FD_FAILED || p->state != NM_PEER_HEALTHY) {
        p->state = NM_PEER_HEALTHY;
        (void)nmi_route_add_direct(m->routes, p->node_id, now);
        nmi_pace_trigger(&m->pace, now);
        if (before == NMI_FD_FAILED) {
            nmi_node_event(m, NM_MESH_EV_PEER_UP, p->node_id, 0);
        }
    }
}

static void
on_packet(nm_mesh_t *m, const nmi_addr *from, const nmi_wire_route *route,
          const uint8_t *buf, size_t len)
{
    nmi_wire_header h;
    if (nmi_wire_header_decode(buf, len, &h) != NM_OK) {
        m->stats.rejected_decode++;
        return;
    }
    if (h.flags & NMI_WIRE_F_HANDSHAKE) {
        const uint8_t *noise;
        size_t nlen;
        if (nmi_wire_handshake_decode(buf, len, &noise, &nlen) != NM_OK) {
            m->stats.rejected_decode++;
            return;
        }
        nmi_node_on_handshake(m, from, route, noise, nlen);
        return;
    }
    if (h.flags & NMI_WIRE_F_HEARTBEAT) {
        /* upstream: a heartbeat inside a routing header is dropped, and
         * its body must be exactly the empty plaintext's tag */
        if (route != NULL || nmi_wire_heartbeat_check(&h, len) != NM_OK) {
            m->stats.rejected_decode++;
            return;
        }
    }
    nmi_peer *p = nmi_u64map_get(&m->sessions, h.session_id);
    if (p == NULL || !p->up) {
        m->stats.unknown_session++;
        return;
    }
    if (len > sizeof(m->rxbuf)) {
        m->stats.rejected_decode++;
        return;
    }
    memcpy(m->rxbuf, buf, len);
    uint8_t *pt = NULL;
    size_t ptlen = 0;
    bool is_next = p->next != NULL &&
                   h.session_id == p->next->sess.session_id &&
                   h.session_id != p->sess.session_id;
    int rc = nmi_wire_open(is_next ? &p->next->sess : &p->sess, m->rxbuf, len,
                           &h, &pt, &ptlen);
    if (rc != NM_OK) {
        if (rc == NM_ECRYPTO) {
            m->stats.rejected_crypto++;
        } else if (rc == NM_EPROTO) {
            m->stats.rejected_replay++;
        } else {
            m->stats.rejected_decode++;
        }
        return;
    }
    m->stats.packets_rx++;
    if (is_next) {
        /* the initiator uses the new session: it replaces the old one */
        nmi_next_sess *n = p->next;
        p->next = NULL;
        nmi_node_peer_install(m, p, &n->sess, n->routed, n->adjacent, from);
        nmi_session_wipe(&n->sess);
        free(n);
    }
    heard(m, p, from, route != NULL);
    if (h.flags & NMI_WIRE_F_HEARTBEAT) {
        m->stats.heartbeats_rx++;
        return;
    }
    if (p->adjacent) {
        /* answer a neighbour in the framing it uses (an implementation
         * that handshakes routed may send its data direct, or not) */
        p->frame_routed = route != NULL;
    }
    switch (h.subprotocol_id) {
    case NMI_WIRE_SP_EVENTS:
        on_data(m, p, &h, pt, ptlen);
        break;
    case NMI_WIRE_SP_STREAM_WINDOW:
    case NMI_WIRE_SP_STREAM_NACK:
    case NMI_WIRE_SP_STREAM_RESET:
    case NMI_WIRE_SP_STREAM_ACK_RANGES:
        on_control(m, p, &h, pt, ptlen);
        break;
    case NMI_WIRE_SP_ROUTE_WITHDRAW:
        on_withdraw(m, p, &h, pt, ptlen);
        break;
    default:
        for (size_t i = 0; i < m->n_sp; i++) {
            if (m->sp_h[i].sp == h.subprotocol_id) {
                if (nmi_wire_frame_validate(pt, ptlen, h.event_count) !=
                    NM_OK) {
                    m->stats.rejected_decode++;
                    break;
                }
                nmi_mesh_sp_fn fn = m->sp_h[i].fn;
                void *ctx = m->sp_h[i].ctx;
                uint64_t peer = p->node_id;
                /* unlocked: the handler may call back into the node; the
                 * plaintext stays in rxbuf, which only this thread uses */
                m->ext_busy++;
                bool defer = nmi_node_io_release(m);
                fn(ctx, m, peer, h.subprotocol_id, h.stream_id, pt, ptlen,
                   h.event_count, route ? (int)route->hop_count : -1);
                nmi_node_io_relock(m, defer);
                nmi_node_ext_done(m);
                break;
            }
        }
        break; /* unknown subprotocol at the endpoint: dropped (upstream) */
    }
}

static nmi_peer *
direct_peer_by_addr(nm_mesh_t *m, const nmi_addr *a)
{
    for (size_t i = 0; i < m->peers.cap; i++) {
        nmi_peer *p = m->peers.vals[i];
        if (p != NULL && p->up && p->adjacent && nmi_addr_equal(&p->addr, a)) {
            return p;
        }
    }
    return NULL;
}

static void
on_routed(nm_mesh_t *m, const nmi_addr *from, const uint8_t *buf, size_t len)
{
    nmi_wire_route r;
    const uint8_t *inner;
    size_t ilen;
    if (nmi_wire_routed_split(buf, len, &r, &inner, &ilen) != NM_OK) {
        m->stats.rejected_decode++;
        return;
    }
    if (r.dest_id == m->node_id) {
        on_packet(m, from, &r, inner, ilen);
        return;
    }
    /* relay: forward by dest_id, never decrypting */
    if (r.ttl == 0) {
        m->stats.dropped_ttl++;
        return;
    }
    nmi_route rt;
    nmi_peer *next = NULL;
    if (nmi_route_lookup(m->routes, r.dest_id, &rt)) {
        next = nmi_u64map_get(&m->peers, rt.via);
    }
    if (next == NULL || !next->up || !next->adjacent ||
        next->state == NM_PEER_FAILED) {
        m->stats.dropped_no_route++;
        return;
    }
    if (len > sizeof(m->rxbuf)) {
        m->stats.rejected_decode++;
        return;
    }
    memcpy(m->rxbuf, buf, len);
    if (nmi_wire_route_forward(m->rxbuf, len, NULL) != NM_OK) {
        m->stats.dropped_ttl++;
        return;
    }
    m->stats.forwarded++;
    (void)nmi_node_raw_send(m, &next->addr, m->rxbuf, len);
}

static void
on_pingwave(nm_mesh_t *m, const nmi_addr *from, const uint8_t *buf, size_t len)
{
    nmi_wire_pingwave pw;
    if (nmi_wire_pingwave_decode(buf, len, &pw) != NM_OK) {
        m->stats.rejected_decode++;
        return;
    }
    uint64_t origin = nmi_wire_pingwave_origin_node(&pw);
    if (origin == m->node_id || pw.hop_count >= 16) {
        return;
    }
    nmi_peer *src = direct_peer_by_addr(m, from);
    if (src == NULL || src->state == NM_PEER_FAILED) {
        return; /* only from registered direct peers (upstream) */
    }
    uint64_t now = nmi_node_now(m);
    /* learn before the duplicate check (an extension: upstream learns
     * from the first copy only), so every path a pingwave took becomes
     * a candidate route; duplicates are still never forwarded */
    if (origin != src->node_id) {
        (void)nmi_route_learn(m->routes, origin, src->node_id,
                              nmi_route_metric_from_hops(pw.hop_count), now);
    }
    if (nmi_dedup_check(m->pw_dedup, origin, pw.seq, now)) {
        return;
    }
    m->stats.pingwaves_rx++;
    if (!nmi_wire_pingwave_forward(&pw)) {
        return;
    }
    uint8_t out[NMI_WIRE_PINGWAVE_LEN];
    if (nmi_wire_pingwave_encode(&pw, out) != NM_OK) {
        return;
    }
    for (size_t i = 0; i < m->peers.cap; i++) {
        nmi_peer *q = m->peers.vals[i];
        if (q == NULL || !q->up || !q->adjacent || q == src ||
            q->node_id == origin || q->state == NM_PEER_FAILED ||
            !nmi_route_split_horizon_ok(m->routes, origin, q->node_id)) {
            continue;
        }
        nmi_node_raw_send_later(m, &q->addr, out, sizeof(out));
    }
}

void
nmi_node_on_datagram(nm_mesh_t *m, const nmi_addr *from, const uint8_t *data,
                     size_t len)
{
    if (m->closing) {
        return;
    }
    m->stats.bytes_rx += len;
    switch (nmi_wire_classify(data, len)) {
    case NMI_WIRE_KIND_DIRECT:
        on_packet(m, from, NULL, data, len);
        break;
    case NMI_WIRE_KIND_ROUTED:
        on_routed(m, from, data, len);
        break;
    case NMI_WIRE_KIND_PINGWAVE:
        on_pingwave(m, from, data, len);
        break;
    default:
        /* route-hop envelopes (protected gateways) and NAT keep-alives
         * are not used by this node */
        m->stats.rejected_decode++;
        break;
    }
}

/* --------------------------------------------------------------- tick */

static void
on_route_loss(void *ctx, uint64_t dest, nmi_route_loss kind,
              const nmi_route *best)
{
    (void)best;
    nm_mesh_t *m = ctx;
    if (kind == NMI_ROUTE_UNREACHABLE && dest != m->fail_peer) {
        flood_withdraw(m, dest, m->fail_peer);
    }
}

void
nmi_node_peer_failed(nm_mesh_t *m, nmi_peer *p)
{
    p->state = NM_PEER_FAILED;
    nmi_node_event(m, NM_MESH_EV_PEER_DOWN, p->node_id, 0);
    m->fail_peer = p->node_id;
    nmi_route_remove_via(m->routes, p->node_id, on_route_loss, m);
    flood_withdraw(m, p->node_id, p->node_id);
    m->fail_peer = 0;
    nmi_pace_trigger(&m->pace, nmi_node_now(m));
}

static void
reap_pending(nm_mesh_t *m, uint64_t now)
{
    uint64_t limit = (uint64_t)m->cfg.handshake_timeout_ms * 1000u;
    nmi_hs_pending **pp = &m->pending;
    while (*pp != NULL) {
        nmi_hs_pending *h = *pp;
        if (h->detached && (h->result != 1 || now - h->started_us > limit)) {
            *pp = h->next;
            nmi_noise_wipe(&h->hs);
            free(h);
            continue;
        }
        pp = &h->next;
    }
}

void
nmi_node_tick_locked(nm_mesh_t *m, uint64_t now)
{
    if (m->closing) {
        return;
    }
    reap_pending(m, now);
    /* ephemeral keys: once the pool is half used, one key per tick until
     * it is full again (a tick runs ahead of the datagrams of its loop
     * pass, so a refill of many would sit in front of a waiting msg1, and
     * a refill after every handshake would be work on every node) */
    if (m->eph_n < NMI_NODE_EPH / 2) {
        m->eph_refill = true;
    }
    if (m->eph_refill) {
        nmi_node_fill_eph(m, 1);
        m->eph_refill = m->eph_n < NMI_NODE_EPH;
    }
    /* a pace copy due later needs no 5 ms tick: on_timer sleeps until it */
    m->active = m->pending != NULL;
    uint64_t hb = (uint64_t)m->cfg.heartbeat_ms * 1000u;
    bool nack_due = now - m->last_nack_us >= NMI_NODE_NACK_US;
    if (nack_due) {
        m->last_nack_us = now;
    }
    uint64_t hs_limit = (uint64_t)m->cfg.handshake_timeout_ms * 1000u;
    for (size_t i = 0; i < m->peers.cap; i++) {
        nmi_peer *p = m->peers.vals[i];
        if (p == NULL || !p->up) {
            continue;
        }
        if (p->next != NULL && now - p->next->at_us > hs_limit) {
            nmi_node_drop_next(m, p); /* never used: a replay, or lost */
        }
        if (p->adjacent) {
            if (now - p->last_hb_us >= hb) {
                p->last_hb_us = now;
                nmi_node_send_heartbeat(m, p);
            }
            bool changed = false;
            nmi_fd_state st = nmi_fd_check(&p->fd, now, &changed);
            if (changed && st == NMI_FD_SUSPECT) {
                p->state = NM_PEER_SUSPECT;
                nmi_node_event(m, NM_MESH_EV_PEER_SUSPECT, p->node_id, 0);
            } else if (changed && st == NMI_FD_FAILED) {
                nmi_node_peer_failed(m, p);
            }
        }
        /* streams: retransmissions due, NACKs for gaps */
        uint8_t nacks[64 * NMI_WIRE_STREAM_NACK_LEN];
        size_t nn = 0;
        for (size_t j = 0; j < p->streams.cap; j++) {
            nmi_strm *s = p->streams.vals[j];
            if (s == NULL) {
                continue;
            }
            if (s->params.reliable && s->tx.in_flight > 0 &&
                nmi_stream_tx_next_deadline(&s->tx) <= now) {
                nmi_node_stream_poll(m, p, s, now);
            }
            if (s->tx.in_flight > 0 || s->regrant > 0 || s->rx.nranges > 0) {
                m->active = true;
            }
            if (nack_due && s->regrant > 0) {
                /* re-send the latest grant for a while after data: if
                 * the last one was lost the sender would wait forever */
                s->regrant--;
                s->grant_dirty = true;
                s->grant_force = true;
                p->grants_dirty = true;
                __atomic_store_n(&m->grants_pending, true, __ATOMIC_RELAXED);
            }
            nmi_wire_stream_nack k;
            if (nack_due && nmi_stream_rx_nack(&s->rx, &k)) {
                nmi_wire_stream_nack_encode(
                    &k, nacks + nn * NMI_WIRE_STREAM_NACK_LEN);
                if (++nn == 64) {
                    (void)nmi_node_send_control(m, p, NMI_WIRE_SP_STREAM_NACK,
                                                nacks,
                                                NMI_WIRE_STREAM_NACK_LEN, nn);
                    nn = 0;
                }
            }
        }
        if (nn > 0) {
            (void)nmi_node_send_control(m, p, NMI_WIRE_SP_STREAM_NACK, nacks,
                                        NMI_WIRE_STREAM_NACK_LEN, nn);
        }
    }
    if (now - m->last_pw_us >= hb || nmi_pace_due(&m->pace, now)) {
        m->last_pw_us = now;
        nmi_node_send_pingwaves(m, now);
    }
    uint64_t to = (uint64_t)m->cfg.session_timeout_ms * 1000u;
    if (now - m->last_sweep_us >= hb) {
        m->last_sweep_us = now;
        m->fail_peer = 0;
        nmi_route_sweep(m->routes, now, 3 * to, on_route_loss, m);
        /* forget peers silent for 900 s (upstream evicts failed peers
         * idle that long; with short timeouts: 30 session timeouts) */
        uint64_t idle = 30 * to < 900000000u ? 30 * to : 900000000u;
        for (size_t i = 0; i < m->peers.cap; i++) {
            nmi_peer *p = m->peers.vals[i];
            if (p != NULL && now - p->last_heard_us > idle &&
                (!p->up || p->state == NM_PEER_FAILED || !p->adjacent)) {
                nmi_node_peer_evict(m, p);
                i = (size_t)-1; /* the map shifted: rescan */
            }
        }
    }
}

void
nmi_node_flush_locked(nm_mesh_t *m)
{
    if (__atomic_load_n(&m->tx_later, __ATOMIC_RELAXED)) {
        nmi_node_flush_later(m); /* pingwave floods (raw_send_later) */
    }
    /* runs after every poll phase: skip the peer walk when nothing
     * received since the last flush asked for a grant */
    if (m->closing || !__atomic_load_n(&m->grants_pending, __ATOMIC_RELAXED)) {
        return;
    }
    __atomic_store_n(&m->grants_pending, false, __ATOMIC_RELAXED);
    for (size_t i = 0; i < m->peers.cap; i++) {
        nmi_peer *p = m->peers.vals[i];
        if (p != NULL && p->up && p->grants_dirty) {
            nmi_node_flush_grants(m, p);
        }
    }
}
