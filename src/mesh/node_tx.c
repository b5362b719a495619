/*
 * src/mesh/node_tx.c - sending: sealing packets for a peer (direct or
 * inside a routing header), heartbeats, pingwaves, control packets,
 * retransmissions, and the public stream API (open, send, stats, close).
 * Internal functions run with the node mutex held.
 */
#include "mesh/node_impl.h"

#include <errno.h>
#include <poll.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wire/control.h"
#include "wire/frame.h"
#include "wire/packet.h"
#include "wire/pingwave.h"
#include "wire/route.h"

/* Routed packets carry 18 bytes in front of the Net packet. */
#define PKT_OFF(p) ((p)->frame_routed ? NMI_WIRE_ROUTE_LEN : 0u)

/* A datagram straight to the socket (thread-safe in the kernel). A full
 * send buffer waits up to 2 ms for room, then the datagram is dropped
 * like a loss on the way (reliable streams retransmit). */
static int
sock_send(int fd, const nmi_addr *to, const uint8_t *buf, size_t len)
{
    socklen_t alen = to->ss.ss_family == AF_INET6
                         ? (socklen_t)sizeof(struct sockaddr_in6)
                         : (socklen_t)sizeof(struct sockaddr_in);
    for (int attempt = 0; attempt < 2; attempt++) {
        ssize_t r = sendto(fd, buf, len, MSG_DONTWAIT,
                           (const struct sockaddr *)&to->ss, alen);
        if (r >= 0) {
            return NM_OK;
        }
        if (errno == EINTR) {
            attempt--;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return nmi_err(NM_EIO, "mesh: sendto: %s", strerror(errno));
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        (void)poll(&pfd, 1, 2);
    }
    return nmi_err(NM_EAGAIN, "mesh: socket send buffer full");
}

int
nmi_node_raw_send(nm_mesh_t *m, const nmi_addr *to, const uint8_t *buf,
                  size_t len)
{
    if (m->port == NULL) {
        return NM_ECLOSED;
    }
    int rc = m->sock_fd >= 0 ? sock_send(m->sock_fd, to, buf, len)
                             : nmi_port_send(m->port, to, buf, len);
    if (rc != NM_OK) {
        m->stats.send_errors++;
        return rc;
    }
    m->stats.packets_tx++;
    m->stats.bytes_tx += len;
    return NM_OK;
}

/* One datagram of a sendmmsg call: buf[0..len) to `to`. */
static void
mmsg_set(struct mmsghdr *mh, struct iovec *iov, void *buf, size_t len,
         nmi_addr *to)
{
    iov->iov_base = buf;
    iov->iov_len = len;
    mh->msg_hdr.msg_iov = iov;
    mh->msg_hdr.msg_iovlen = 1;
    mh->msg_hdr.msg_name = &to->ss;
    mh->msg_hdr.msg_namelen = to->ss.ss_family == AF_INET6
                                  ? (socklen_t)sizeof(struct sockaddr_in6)
                                  : (socklen_t)sizeof(struct sockaddr_in);
}

void
nmi_node_raw_send_later(nm_mesh_t *m, const nmi_addr *to, const uint8_t *buf,
                        size_t len)
{
    if (!m->threaded || m->sock_fd < 0 || len > sizeof(m->later->b)) {
        (void)nmi_node_raw_send(m, to, buf, len); /* manual driver: now */
        return;
    }
    if (m->later == NULL &&
        (m->later = malloc(NMI_NODE_LATER * sizeof(*m->later))) == NULL) {
        (void)nmi_node_raw_send(m, to, buf, len);
        return;
    }
    if (m->later_n == NMI_NODE_LATER) {
        nmi_node_flush_later(m);
    }
    nmi_later *l = &m->later[m->later_n++];
    l->to = *to;
    l->len = len;
    memcpy(l->b, buf, len);
    __atomic_store_n(&m->tx_later, true, __ATOMIC_RELAXED);
}

void
nmi_node_flush_later(nm_mesh_t *m)
{
    size_t n = m->later_n;
    m->later_n = 0;
    __atomic_store_n(&m->tx_later, false, __ATOMIC_RELAXED);
    if (n == 0) {
        return;
    }
    if (m->port == NULL || m->sock_fd < 0) {
        m->stats.send_errors += n;
        return;
    }
    struct mmsghdr mh[NMI_NODE_LATER];
    struct iovec iov[NMI_NODE_LATER];
    memset(mh, 0, n * sizeof(mh[0]));
    for (size_t i = 0; i < n; i++) {
        mmsg_set(&mh[i], &iov[i], m->later[i].b, m->later[i].len,
                 &m->later[i].to);
    }
    size_t done = 0;
    while (done < n) {
        int r = sendmmsg(m->sock_fd, mh + done, (unsigned)(n - done),
                         MSG_DONTWAIT);
        if (r > 0) {
            for (size_t i = done; i < done + (size_t)r; i++) {
                m->stats.packets_tx++;
                m->stats.bytes_tx += m->later[i].len;
            }
            done += (size_t)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            /* a full socket buffer or a refusal: these are pingwaves,
             * unreliable by design - counted, not waited for */
            m->stats.send_errors += n - done;
            break;
        }
    }
}

int
nmi_node_next_hop(nm_mesh_t *m, nmi_peer *p, nmi_addr *out)
{
    if (p->adjacent) {
        *out = p->addr;
        return NM_OK;
    }
    nmi_route r;
    if (nmi_route_lookup(m->routes, p->node_id, &r)) {
        nmi_peer *via = nmi_u64map_get(&m->peers, r.via);
        if (via != NULL && via->up && via->adjacent &&
            via->state != NM_PEER_FAILED) {
            *out = via->addr;
            return NM_OK;
        }
    }
    /* no learned route: back to where its packets come from, unless that
     * is a direct peer known to have failed */
    nmi_peer *last = NULL;
    for (size_t i = 0; i < m->peers.cap; i++) {
        nmi_peer *q = m->peers.vals[i];
        if (q != NULL && q->up && q->adjacent &&
            nmi_addr_equal(&q->addr, &p->addr)) {
            last = q;
            break;
        }
    }
    if (last != NULL && last->state == NM_PEER_FAILED) {
        return NM_EUNROUTED;
    }
    *out = p->addr;
    return NM_OK;
}

int
nmi_node_seal_at(nm_mesh_t *m, nmi_peer *p, nmi_wire_header *h, uint8_t *base,
                 size_t len, size_t *total, nmi_addr *to)
{
    size_t off = PKT_OFF(p);
    uint8_t *pkt = base + off;
    size_t w = 0;
    int rc = nmi_wire_seal(&p->sess, h, pkt + NMI_WIRE_HEADER_LEN, len, pkt,
                           NMI_WIRE_MAX_PACKET, &w);
    if (rc != NM_OK) {
        return rc;
    }
    if (p->frame_routed) {
        nmi_wire_route r;
        nmi_wire_route_init(&r, p->node_id, m->route_id, NMI_WIRE_TTL_DATA);
        (void)nmi_wire_route_encode(&r, base);
    }
    rc = nmi_node_next_hop(m, p, to);
    if (rc != NM_OK) {
        m->stats.dropped_no_route++;
        return rc;
    }
    *total = off + w;
    return NM_OK;
}

int
nmi_node_seal_send(nm_mesh_t *m, nmi_peer *p, nmi_wire_header *h,
                   const uint8_t *payload, size_t len)
{
    uint8_t *pt = m->txbuf + PKT_OFF(p) + NMI_WIRE_HEADER_LEN;
    if (payload != NULL && payload != pt && len > 0) {
        memmove(pt, payload, len);
    }
    size_t total = 0;
    nmi_addr to;
    int rc = nmi_node_seal_at(m, p, h, m->txbuf, len, &total, &to);
    return rc != NM_OK ? rc : nmi_node_raw_send(m, &to, m->txbuf, total);
}

/* sendmmsg the batch; a full socket buffer waits up to 2 ms per try, then
 * what is left is dropped like a loss (reliable streams retransmit). */
void
nmi_node_flush_batch(nm_mesh_t *m)
{
    size_t n = m->txb_n;
    m->txb_n = 0;
    if (n == 0) {
        return;
    }
    if (m->port == NULL) {
        m->stats.send_errors += n;
        return;
    }
    if (m->sock_fd < 0) {
        for (size_t i = 0; i < n; i++) {
            (void)nmi_node_raw_send(m, &m->txb_to[i], m->txb[i],
                                    m->txb_len[i]);
        }
        return;
    }
    struct mmsghdr mh[NMI_NODE_BATCH];
    struct iovec iov[NMI_NODE_BATCH];
    memset(mh, 0, sizeof(mh));
    for (size_t i = 0; i < n; i++) {
        mmsg_set(&mh[i], &iov[i], m->txb[i], m->txb_len[i], &m->txb_to[i]);
    }
    size_t done = 0;
    int stalls = 0;
    while (done < n) {
        int r = sendmmsg(m->sock_fd, mh + done, (unsigned)(n - done),
                         MSG_DONTWAIT);
        if (r > 0) {
            for (size_t i = done; i < done + (size_t)r; i++) {
                m->stats.packets_tx++;
                m->stats.bytes_tx += m->txb_len[i];
            }
            done += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            stalls++ < 2) {
            struct pollfd pfd = {.fd = m->sock_fd, .events = POLLOUT};
            (void)poll(&pfd, 1, 2);
            continue;
        }
        /* a hard error on one datagram: count it, go on with the rest */
        m->stats.send_errors++;
        done++;
    }
}

void
nmi_node_send_heartbeat(nm_mesh_t *m, nmi_peer *p)
{
    uint8_t hb[NMI_WIRE_HEARTBEAT_LEN];
    if (nmi_wire_heartbeat_seal(&p->sess, hb) == NM_OK &&
        nmi_node_raw_send(m, &p->addr, hb, sizeof(hb)) == NM_OK) {
        m->stats.heartbeats_tx++;
    }
}

void
nmi_node_send_pingwaves(nm_mesh_t *m, uint64_t now)
{
    nmi_wire_pingwave pw;
    nmi_wire_pingwave_init(&pw, m->node_id, ++m->pw_seq,
                           (uint8_t)m->cfg.pingwave_ttl);
    pw.origin_ts_us = now;
    pw.health = NMI_WIRE_HEALTH_HEALTHY;
    uint8_t out[NMI_WIRE_PINGWAVE_LEN];
    if (nmi_wire_pingwave_encode(&pw, out) != NM_OK) {
        return;
    }
    for (size_t i = 0; i < m->peers.cap; i++) {
        nmi_peer *q = m->peers.vals[i];
        if (q != NULL && q->up && q->adjacent && q->state != NM_PEER_FAILED) {
            nmi_node_raw_send_later(m, &q->addr, out, sizeof(out));
        }
    }
}

int
nmi_node_send_control(nm_mesh_t *m, nmi_peer *p, uint16_t subprotocol,
                      const uint8_t *msgs, size_t msg_len, size_t n)
{
    size_t done = 0;
    int rc = NM_OK;
    while (done < n && rc == NM_OK) {
        uint8_t *pt = m->txbuf + PKT_OFF(p) + NMI_WIRE_HEADER_LEN;
        nmi_wire_frame_writer w;
        nmi_wire_frame_init(&w, pt, NMI_WIRE_MAX_PAYLOAD);
        while (done < n && nmi_wire_frame_add(&w, msgs + done * msg_len,
                                              msg_len) == NM_OK) {
            done++;
        }
        if (w.count == 0) {
            return NM_ETOOBIG;
        }
        uint64_t sid = subprotocol >= NMI_WIRE_SP_STREAM_WINDOW &&
                               subprotocol <= NMI_WIRE_SP_STREAM_ACK_RANGES
                           ? NMI_WIRE_CONTROL_STREAM_ID
                           : subprotocol;
        nmi_wire_header h;
        nmi_wire_header_init(&h, 0, p->sess.session_id, sid, p->ctrl_seq++);
        h.subprotocol_id = subprotocol;
        h.event_count = w.count;
        rc = nmi_node_seal_send(m, p, &h, pt, w.len);
    }
    return rc;
}

/* Grants for every stream that received something, each followed (while
 * the stream has gaps) by a NACK: upstream piggybacks NACKs on grants, so
 * recovery does not wait for the 25 ms tick. */
void
nmi_node_flush_grants(nm_mesh_t *m, nmi_peer *p)
{
    p->grants_dirty = false;
    uint8_t *msgs = m->ctlbuf;
    size_t max = sizeof(m->ctlbuf) / NMI_WIRE_STREAM_WINDOW_LEN;
    size_t n = 0;
    uint8_t nacks[32 * NMI_WIRE_STREAM_NACK_LEN];
    size_t nn = 0;
    for (size_t j = 0; j < p->streams.cap; j++) {
        nmi_strm *s = p->streams.vals[j];
        if (s == NULL || !s->grant_dirty) {
            continue;
        }
        s->grant_dirty = false;
        nmi_wire_stream_window w;
        bool force = s->grant_force;
        s->grant_force = false;
        if (!nmi_stream_rx_window(&s->rx, force, &w)) {
            continue;
        }
        nmi_wire_stream_nack k;
        if (s->params.reliable && nn < 32 && nmi_stream_rx_nack(&s->rx, &k)) {
            nmi_wire_stream_nack_encode(&k,
                                        nacks + nn * NMI_WIRE_STREAM_NACK_LEN);
            nn++;
        }
        nmi_wire_stream_window_encode(&w,
                                      msgs + n * NMI_WIRE_STREAM_WINDOW_LEN);
        if (++n == max) {
            (void)nmi_node_send_control(m, p, NMI_WIRE_SP_STREAM_WINDOW, msgs,
                                        NMI_WIRE_STREAM_WINDOW_LEN, n);
            n = 0;
        }
    }
    if (n > 0) {
        (void)nmi_node_send_control(m, p, NMI_WIRE_SP_STREAM_WINDOW, msgs,
                                    NMI_WIRE_STREAM_WINDOW_LEN, n);
    }
    if (nn > 0) {
        (void)nmi_node_send_control(m, p, NMI_WIRE_SP_STREAM_NACK, nacks,
                                    NMI_WIRE_STREAM_NACK_LEN, nn);
    }
}

typedef struct resend_ctx {
    nm_mesh_t *m;
    nmi_peer *p;
    nmi_strm *s;
} resend_ctx;

/* Retransmit: same stream seq, fresh AEAD counter (upstream). */
static int
resend(void *ctx, uint64_t seq, const uint8_t *payload, size_t len,
       uint16_t event_count)
{
    resend_ctx *c = ctx;
    nmi_wire_header h;
    nmi_wire_header_init(&h, NMI_WIRE_F_RELIABLE, c->p->sess.session_id,
                         c->s->id, seq);
    h.event_count = event_count;
    return nmi_node_seal_send(c->m, c->p, &h, payload, len);
}

void
nmi_node_stream_poll(nm_mesh_t *m, nmi_peer *p, nmi_strm *s, uint64_t now)
{
    if (!s->params.reliable || s->tx.reset) {
        return;
    }
    resend_ctx c = {m, p, s};
    int rc = nmi_stream_tx_poll(&s->tx, now, resend, &c);
    if (rc == NM_ECLOSED) {
        /* retry budget spent: tell the peer, tell the application */
        uint8_t msg[NMI_WIRE_STREAM_RESET_LEN];
        nmi_wire_stream_reset r = {.stream_id = s->id};
        nmi_wire_stream_reset_encode(&r, msg);
        (void)nmi_node_send_control(m, p, NMI_WIRE_SP_STREAM_RESET, msg,
                                    sizeof(msg), 1);
        nmi_stream_rx_reset(&s->rx);
        if (!s->reset_notified) {
            s->reset_notified = true;
            nmi_node_event(m, NM_MESH_EV_STREAM_RESET, p->node_id, s->id);
        }
        nmi_node_wake(m);
    }
}

/* ------------------------------------------------------- stream API */

void
nm_stream_config_init(nm_stream_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    cfg->reliability = NM_FIRE_AND_FORGET;
    cfg->window_bytes = 65536;
    cfg->in_order = false;
    cfg->max_retries = 3;
}

int
nmi_node_params_from(const nm_stream_config *cfg, nmi_stream_params *sp)
{
    nmi_stream_params_default(sp);
    if (cfg == NULL) {
        return NM_OK;
    }
    if (cfg->size != sizeof(*cfg)) {
        return nmi_err(NM_EINVAL, "mesh: stream config.size mismatch (call "
                                  "nm_stream_config_init)");
    }
    if (cfg->reliability != NM_FIRE_AND_FORGET &&
        cfg->reliability != NM_RELIABLE) {
        return nmi_err(NM_EINVAL, "mesh: bad reliability %d",
                       (int)cfg->reliability);
    }
    if (cfg->in_order && cfg->reliability != NM_RELIABLE) {
        return nmi_err(NM_EINVAL, "mesh: in_order needs NM_RELIABLE");
    }
    sp->reliable = cfg->reliability == NM_RELIABLE;
    sp->in_order = cfg->in_order;
    sp->window_bytes = cfg->window_bytes;
    sp->max_retries = cfg->max_retries;
    return NM_OK;
}

static nmi_peer *
live_peer(nm_mesh_t *m, uint64_t peer, int *rc)
{
    nmi_peer *p = nmi_u64map_get(&m->peers, peer);
    if (m->closing) {
        *rc = nmi_err(NM_ECLOSED, "mesh: node closed");
        return NULL;
    }
    if (p == NULL || !p->up) {
        *rc = nmi_err(NM_ENOTCONN, "mesh: no session with %016llx",
                      (unsigned long long)peer);
        return NULL;
    }
    return p;
}

int
nm_mesh_open_stream(nm_mesh_t *m, uint64_t peer, uint64_t stream_id,
                    const nm_stream_config *cfg)
{
    if (m == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL node");
    }
    if (stream_id == NMI_WIRE_CONTROL_STREAM_ID) {
        return nmi_err(NM_EINVAL, "mesh: stream id 2^64-1 is reserved");
    }
    nmi_stream_params sp;
    int rc = nmi_node_params_from(cfg, &sp);
    if (rc != NM_OK) {
        return rc;
    }
    pthread_mutex_lock(&m->mu);
    nmi_peer *p = live_peer(m, peer, &rc);
    if (p != NULL) {
        nmi_strm *s = nmi_node_stream(m, p, stream_id, &sp, false);
        bool moved = s != NULL && (s->tx.next_seq > 0 || s->rx.seen_any);
        bool same = s != NULL && s->params.reliable == sp.reliable &&
                    s->params.in_order == sp.in_order &&
                    s->params.window_bytes == sp.window_bytes &&
                    s->params.max_retries == sp.max_retries;
        if (s != NULL && moved && !same) {
            /* changing it now would desynchronise the two ends */
            rc = nmi_err(NM_EBUSY,
                         "mesh: stream %llu already carried packets: close "
                         "it to change its config",
                         (unsigned long long)stream_id);
        } else if (s != NULL && !moved) {
            nmi_u64map_del(&p->streams, stream_id); /* unused: reconfigure */
            nmi_node_strm_free(s);
            s = NULL;
        }
        if (rc == NM_OK && s == NULL) {
            s = nmi_node_stream(m, p, stream_id, &sp, true);
            if (s == NULL) {
                rc = nmi_node_stream_error(p);
            }
        }
        if (s != NULL && rc == NM_OK) {
            s->local = true;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int
nm_mesh_close_stream(nm_mesh_t *m, uint64_t peer, uint64_t stream_id)
{
    if (m == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL node");
    }
    pthread_mutex_lock(&m->mu);
    int rc = NM_OK;
    nmi_peer *p = nmi_u64map_get(&m->peers, peer);
    nmi_strm *s = p ? nmi_u64map_del(&p->streams, stream_id) : NULL;
    if (s == NULL) {
        rc = nmi_err(NM_ENOTFOUND, "mesh: no stream %llu with %016llx",
                     (unsigned long long)stream_id, (unsigned long long)peer);
    } else {
        bool moved = s->tx.next_seq > 0 || s->rx.seen_any;
        nmi_node_strm_free(s);
        if (moved && p->up && !m->closing) {
            /* the peer drops its state too: the id restarts at seq 0 */
            uint8_t msg[NMI_WIRE_STREAM_RESET_LEN];
            nmi_wire_stream_reset r = {.stream_id = stream_id};
            nmi_wire_stream_reset_encode(&r, msg);
            (void)nmi_node_send_control(m, p, NMI_WIRE_SP_STREAM_RESET, msg,
                                        sizeof(msg), 1);
        }
    }
    nmi_node_wake(m);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int
nm_mesh_stream_stats(nm_mesh_t *m, uint64_t peer, uint64_t stream_id,
                     nm_stream_stats *out)
{
    if (m == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    pthread_mutex_lock(&m->mu);
    int rc = NM_OK;
    nmi_peer *p = nmi_u64map_get(&m->peers, peer);
    nmi_strm *s = p ? nmi_u64map_get(&p->streams, stream_id) : NULL;
    if (s == NULL) {
        rc = nmi_err(NM_ENOTFOUND, "mesh: no stream %llu with %016llx",
                     (unsigned long long)stream_id, (unsigned long long)peer);
    } else {
        nmi_stream_tx_stats ts;
        nmi_stream_rx_stats rs;
        nmi_stream_tx_stats_get(&s->tx, &ts);
        nmi_stream_rx_stats_get(&s->rx, &rs);
        memset(out, 0, sizeof(*out));
        out->reliability =
            s->params.reliable ? NM_RELIABLE : NM_FIRE_AND_FORGET;
        out->in_order = s->params.in_order;
        out->reset = s->tx.reset || rs.reset;
        out->tx_seq = ts.next_seq;
        out->rx_seq = rs.next_expected;
        out->in_flight = ts.in_flight;
        out->window_bytes = ts.window;
        out->credit_bytes = ts.credit;
        out->cwnd = ts.cwnd;
        out->backpressure_events = ts.backpressure_events;
        out->retransmits = ts.retransmits;
        out->packets_sent = ts.packets_sent;
        out->packets_received = rs.accepted;
        out->duplicates = rs.duplicates;
        out->lost = rs.lost;
        out->srtt_us = ts.srtt_us;
        out->rto_us = ts.rto_us;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* Wait up to `us` for something to change (grants, acks, close). */
static void
wait_us(nm_mesh_t *m, uint64_t us)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(us / 1000000u);
    ts.tv_nsec += (long)(us % 1000000u) * 1000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&m->cv, &m->mu, &ts);
}

#define SEND_PARTIAL_LIMIT_US (30u * 1000000u)

static int send_impl(nm_mesh_t *m, uint64_t peer, uint64_t stream_id,
                     const void *const *data, const size_t *lens, size_t n,
                     const nmi_mesh_send_opts *opts);

int
nm_mesh_send(nm_mesh_t *m, uint64_t peer, uint64_t stream_id,
             const void *const *data, const size_t *lens, size_t n)
{
    return send_impl(m, peer, stream_id, data, lens, n, NULL);
}

int
nmi_mesh_send_ex(nm_mesh_t *m, uint64_t peer, uint64_t stream_id,
                 const void *const *data, const size_t *lens, size_t n,
                 const nmi_mesh_send_opts *opts)
{
    return send_impl(m, peer, stream_id, data, lens, n, opts);
}

int
nmi_mesh_sp_send(nm_mesh_t *m, uint64_t peer, uint16_t sp, uint64_t stream_id,
                 const void *const *msgs, const size_t *lens, size_t n)
{
    if (m == NULL || (n > 0 && (msgs == NULL || lens == NULL))) {
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > NMI_WIRE_FRAME_MAX_EVENT) {
            return nmi_err(NM_ETOOBIG, "mesh: message %zu is %zu bytes", i,
                           lens[i]);
        }
    }
    int rc = NM_OK;
    pthread_mutex_lock(&m->mu);
    nmi_peer *p = live_peer(m, peer, &rc);
    size_t i = 0;
    while (p != NULL && rc == NM_OK && i < n) {
        uint8_t *pt = m->txbuf + PKT_OFF(p) + NMI_WIRE_HEADER_LEN;
        nmi_wire_frame_writer w;
        nmi_wire_frame_init(&w, pt, NMI_WIRE_MAX_PAYLOAD);
        while (i < n && nmi_wire_frame_add(&w, msgs[i], lens[i]) == NM_OK) {
            i++;
        }
        nmi_wire_header h;
        nmi_wire_header_init(&h, 0, p->sess.session_id, stream_id,
                             p->ctrl_seq++);
        h.subprotocol_id = sp;
        h.event_count = w.count;
        rc = nmi_node_seal_send(m, p, &h, pt, w.len);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int
send_impl(nm_mesh_t *m, uint64_t peer, uint64_t stream_id,
          const void *const *data, const size_t *lens, size_t n,
          const nmi_mesh_send_opts *opts)
{
    if (m == NULL || (n > 0 && (data == NULL || lens == NULL))) {
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    if (stream_id == NMI_WIRE_CONTROL_STREAM_ID) {
        return nmi_err(NM_EINVAL, "mesh: stream id 2^64-1 is reserved");
    }
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > NMI_WIRE_FRAME_MAX_EVENT) {
            return nmi_err(NM_ETOOBIG,
                           "mesh: message %zu is %zu bytes (max %u per "
                           "message: no fragmentation)",
                           i, lens[i], (unsigned)NMI_WIRE_FRAME_MAX_EVENT);
        }
        if (lens[i] > 0 && data[i] == NULL) {
            return nmi_err(NM_EINVAL, "mesh: message %zu is NULL", i);
        }
    }
    int rc = NM_OK;
    pthread_mutex_lock(&m->mu);
    nmi_peer *p = live_peer(m, peer, &rc);
    nmi_strm *s = NULL;
    if (p != NULL) {
        nmi_stream_params sp;
        nmi_node_stream_defaults(m, stream_id, &sp);
        s = nmi_node_stream(m, p, stream_id, &sp, true);
        if (s == NULL) {
            rc = nmi_node_stream_error(p);
        }
    }
    size_t i = 0;
    bool first = true;
    uint64_t backoff = 5000, deadline = 0;
    nmi_node_enter(m);
    if (m->sock_fd >= 0 && m->txb == NULL) {
        m->txb = malloc(NMI_NODE_BATCH * sizeof(*m->txb));
    }
    bool batch = m->sock_fd >= 0 && m->txb != NULL;
    while (rc == NM_OK && i < n) {
        if (s->tx.reset) {
            rc = nmi_err(NM_ECLOSED, "mesh: stream %llu was reset",
                         (unsigned long long)stream_id);
            break;
        }
        uint8_t *base = batch ? m->txb[m->txb_n] : m->txbuf;
        uint8_t *pt = base + PKT_OFF(p) + NMI_WIRE_HEADER_LEN;
        nmi_wire_frame_writer w;
        nmi_wire_frame_init(&w, pt, NMI_WIRE_MAX_PAYLOAD);
        size_t k = i;
        while (k < n && nmi_wire_frame_add(&w, data[k], lens[k]) == NM_OK) {
            k++;
        }
        rc = nmi_stream_tx_admit(&s->tx, w.len);
        if (rc == NM_EBACKPRESSURE) {
            if (first || !m->threaded) {
                rc = nmi_err(NM_EBACKPRESSURE,
                             "mesh: stream %llu: no credit / congestion "
                             "window full",
                             (unsigned long long)stream_id);
                break;
            }
            uint64_t now = nmi_mono_ns() / 1000u;
            if (deadline == 0) {
                deadline = now + SEND_PARTIAL_LIMIT_US;
            }
            if (now >= deadline) {
                rc = nmi_err(NM_ETIMEDOUT,
                             "mesh: stream %llu: no credit for 30 s after "
                             "part of the call was sent",
                             (unsigned long long)stream_id);
                break;
            }
            nmi_node_flush_batch(m); /* what is committed goes out */
            /* woken early by any broadcast (a grant, usually): the
             * deadline, not the sum of the sleeps, bounds the wait */
            wait_us(m, backoff < deadline - now ? backoff : deadline - now);
            backoff = backoff * 2 > 200000 ? 200000 : backoff * 2;
            rc = NM_OK;
            p = live_peer(m, peer, &rc);
            if (p == NULL) {
                break;
            }
            s = nmi_node_stream(m, p, stream_id, NULL, false);
            if (s == NULL) {
                rc = nmi_err(NM_ECLOSED, "mesh: stream closed");
                break;
            }
            continue; /* the buffer may have been reused: rebuild */
        }
        if (rc != NM_OK) {
            break;
        }
        uint64_t seq = 0;
        rc = nmi_stream_tx_commit(&s->tx, pt, w.len, w.count, nmi_node_now(m),
                                  &seq);
        if (rc != NM_OK) {
            break;
        }
        if (s->params.reliable) {
            nmi_node_want_fast_tick(m); /* its retransmit timer */
        }
        nmi_wire_header h;
        nmi_wire_header_init(&h, s->params.reliable ? NMI_WIRE_F_RELIABLE : 0,
                             p->sess.session_id, stream_id, seq);
        h.event_count = w.count;
        if (opts != NULL) {
            h.channel_hash = opts->channel_hash;
            h.origin_hash = opts->origin_hash;
        }
        if (batch) {
            size_t total = 0;
            rc = nmi_node_seal_at(m, p, &h, base, w.len, &total,
                                  &m->txb_to[m->txb_n]);
            if (rc == NM_OK) {
                m->txb_len[m->txb_n++] = total;
                if (m->txb_n == NMI_NODE_BATCH) {
                    nmi_node_flush_batch(m);
                }
            }
        } else {
            rc = nmi_node_seal_send(m, p, &h, pt, w.len);
        }
        if (rc == NM_EUNROUTED || rc == NM_EAGAIN || rc == NM_EIO) {
            /* counted; a reliable stream retransmits, like a loss */
            rc = s->params.reliable ? NM_OK : rc;
            if (rc != NM_OK) {
                rc = nmi_err(rc, "mesh: packet to %016llx not sent",
                             (unsigned long long)peer);
                break;
            }
        } else if (rc != NM_OK) {
            break;
        }
        i = k;
        first = false;
        backoff = 5000;
        deadline = 0; /* progress: a new stall gets its own 30 s */
    }
    nmi_node_flush_batch(m);
    nmi_node_leave(m);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static void
sleep_us(uint64_t us)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000u),
                          .tv_nsec = (long)(us % 1000000u) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int
nm_mesh_send_with_retry(nm_mesh_t *m, uint64_t peer, uint64_t stream_id,
                        const void *const *data, const size_t *lens, size_t n,
                        uint32_t max_retries)
{
    uint64_t backoff = 5000;
    for (uint32_t att = 0;; att++) {
        int rc = nm_mesh_send(m, peer, stream_id, data, lens, n);
        if (rc != NM_EBACKPRESSURE || att >= max_retries) {
            return rc;
        }
        sleep_us(backoff);
        backoff = backoff * 2 > 200000 ? 200000 : backoff * 2;
    }
}

int
nm_mesh_send_blocking(nm_mesh_t *m, uint64_t peer, uint64_t stream_id,
                      const void *const *data, const size_t *lens, size_t n)
{
    return nm_mesh_send_with_retry(m, peer, stream_id, data, lens, n, 4096);
}
