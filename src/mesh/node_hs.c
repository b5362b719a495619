/*
 * src/mesh/node_hs.c - Noise NKpsk0 handshakes of the mesh node (upstream
 * mesh.rs): the initiator (connect, connect_via, connect_routed) and the
 * responder (direct msg1 from an accepted node id; routed msg1 naming the
 * initiator in its payload). docs/PROTOCOL.md §10.
 *
 * Direct msg1 carries no initiator id, yet the prologue binds it, so the
 * responder tries each node id it was told to accept (at most
 * NMI_HS_MAX_CANDIDATES of them, one DH each). Routed msg1 carries the id
 * (payload u64, checked against the routing header's src_id). A msg1
 * whose ephemeral key equals the last one accepted from that peer is a
 * replay and is dropped. Every failure is counted and never answered
 * (the protocol has no refusal message).
 */
#include "mesh/node_impl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <sodium.h>

#include "core/evfd.h"
#include "wire/route.h"

#define NMI_HS_MAX_CANDIDATES 16
/* Direct msg1 trials (one X25519 each, no PSK needed to cause them) per
 * second, over all sources: beyond it direct msg1 is dropped and counted
 * as refused until the next second. */
#define NMI_HS_TRIALS_PER_SEC 256

static void
put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t
get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Frame and send one Noise message (direct, or routed to dest). */
static int
send_hs(nm_mesh_t *m, const nmi_addr *to, bool routed, uint64_t dest,
        const uint8_t *noise, size_t noise_len)
{
    uint8_t buf[NMI_WIRE_ROUTE_LEN + NMI_WIRE_HEADER_LEN + 128];
    size_t n = 0;
    int rc;
    if (routed) {
        rc = nmi_wire_routed_handshake_encode(dest, m->route_id, noise,
                                              noise_len, buf, sizeof(buf), &n);
    } else {
        rc = nmi_wire_handshake_encode(noise, noise_len, buf, sizeof(buf), &n);
    }
    if (rc != NM_OK) {
        return rc;
    }
    return nmi_node_raw_send(m, to, buf, n);
}

void
nmi_node_take_eph(nm_mesh_t *m, nmi_noise_hs *hs)
{
    if (m->eph_n == 0) {
        return; /* the handshake draws its own */
    }
    m->eph_n--;
    (void)nmi_noise_set_ephemeral(hs, m->eph_priv[m->eph_n],
                                  m->eph_pub[m->eph_n]);
    sodium_memzero(m->eph_priv[m->eph_n], 32);
}

void
nmi_node_fill_eph(nm_mesh_t *m, unsigned max)
{
    while (m->eph_n < NMI_NODE_EPH && max-- > 0) {
        if (nmi_noise_keypair(m->eph_pub[m->eph_n], m->eph_priv[m->eph_n]) !=
            NM_OK) {
            return;
        }
        m->eph_n++;
    }
}

int
nmi_node_hs_start(nm_mesh_t *m, const nmi_addr *addr, bool routed,
                  const uint8_t peer_pub[32], uint64_t peer_id,
                  nmi_hs_pending **out)
{
    nmi_hs_pending *hp = calloc(1, sizeof(*hp));
    if (hp == NULL) {
        return nmi_err(NM_ENOMEM, "mesh: no memory for a handshake");
    }
    hp->peer_id = peer_id;
    memcpy(hp->peer_pub, peer_pub, 32);
    hp->addr = *addr;
    hp->routed = routed;
    hp->result = 1;
    hp->gen = ++m->hs_gen;
    hp->started_us = nmi_node_now(m);
    int rc = nmi_net_hs_initiator(&hp->hs, m->cfg.psk, peer_pub, m->node_id,
                                  peer_id);
    if (rc == NM_OK) {
        nmi_node_take_eph(m, &hp->hs);
    }
    uint8_t payload[8];
    put_u64le(payload, m->node_id);
    uint8_t msg[NMI_NET_MSG1_ROUTED_LEN];
    size_t mlen = 0;
    if (rc == NM_OK) {
        rc = nmi_noise_write_message(&hp->hs, payload, routed ? 8 : 0, msg,
                                     sizeof(msg), &mlen);
    }
    if (rc == NM_OK) {
        rc = send_hs(m, addr, routed, peer_id, msg, mlen);
    }
    if (rc != NM_OK) {
        nmi_noise_wipe(&hp->hs);
        free(hp);
        return rc;
    }
    hp->next = m->pending;
    m->pending = hp;
    *out = hp;
    return NM_OK;
}

void
nmi_node_hs_drop(nm_mesh_t *m, nmi_hs_pending *hp)
{
    for (nmi_hs_pending **pp = &m->pending; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == hp) {
            *pp = hp->next;
            break;
        }
    }
    nmi_noise_wipe(&hp->hs);
    free(hp);
}

/* msg2 for one of our pending handshakes? Tried on a copy, so a msg2 that
 * is not ours leaves the pending handshake intact. */
static bool
try_initiator(nm_mesh_t *m, const nmi_addr *from, const nmi_wire_route *route,
              const uint8_t *noise, size_t noise_len)
{
    if (noise_len != NMI_NET_MSG2_LEN) {
        return false;
    }
    for (nmi_hs_pending *hp = m->pending; hp != NULL; hp = hp->next) {
        if (hp->result != 1) {
            continue;
        }
        if (route != NULL) {
            if (nmi_wire_routing_id(hp->peer_id) != route->src_id) {
                continue;
            }
        } else if (!nmi_addr_equal(&hp->addr, from)) {
            continue; /* a direct msg2 comes from where msg1 went (either
                         form of msg1: a peer may answer routed msg1
                         directly) */
        }
        nmi_noise_hs copy = hp->hs;
        size_t plen = 0;
        int rc =
            nmi_noise_read_message(&copy, noise, noise_len, NULL, 0, &plen);
        if (rc != NM_OK || !nmi_noise_is_done(&copy)) {
            nmi_noise_wipe(&copy);
            continue;
        }
        nmi_peer *p = nmi_node_peer_new(m, hp->peer_id);
        if (p == NULL) {
            hp->result = NM_ENOMEM;
        } else {
            nmi_node_peer_session_up(m, p, &copy, route != NULL,
                                     route == NULL || route->hop_count == 0,
                                     from);
            hp->result = p->up ? NM_OK : NM_EINTERNAL;
        }
        nmi_noise_wipe(&copy);
        if (hp->reader && !m->hs_reading) {
            nmi_evfd_signal(m->hs_evfd); /* its caller polls, not waits */
        }
        nmi_node_wake(m);
        return true;
    }
    return false;
}

/* Run the responder side for candidate initiator id `cand`: true when
 * msg1 authenticated (hs then holds the state after reading it). */
static bool
respond_try(nm_mesh_t *m, uint64_t cand, const uint8_t *noise,
            size_t noise_len, nmi_noise_hs *hs, uint8_t *payload, size_t *plen)
{
    if (nmi_net_hs_responder2(hs, m->cfg.psk, m->static_priv, m->static_pub,
                              cand, m->node_id) != NM_OK) {
        return false;
    }
    if (nmi_noise_read_message(hs, noise, noise_len, payload, 8, plen) !=
        NM_OK) {
        nmi_noise_wipe(hs);
        return false;
    }
    return true;
}

static void
respond(nm_mesh_t *m, const nmi_addr *from, const nmi_wire_route *route,
        const uint8_t *noise, size_t noise_len)
{
    nmi_noise_hs hs;
    uint8_t payload[8];
    size_t plen = 0;
    uint64_t peer_id = 0;
    bool ok = false;
    if (route != NULL) {
        if (noise_len != NMI_NET_MSG1_ROUTED_LEN) {
            m->stats.rejected_decode++;
            return;
        }
        ok = respond_try(m, route->src_id, noise, noise_len, &hs, payload,
                         &plen);
        if (ok && plen == 8) {
            peer_id = get_u64le(payload);
            if (nmi_wire_routing_id(peer_id) != route->src_id) {
                nmi_noise_wipe(&hs);
                ok = false;
            }
        } else if (ok) {
            nmi_noise_wipe(&hs);
            ok = false;
        }
    } else {
        if (noise_len != NMI_NET_MSG1_DIRECT_LEN) {
            m->stats.rejected_decode++;
            return;
        }
        unsigned tried = 0;
        uint64_t sec = nmi_node_now(m) / 1000000u;
        if (sec != m->trial_sec) {
            m->trial_sec = sec;
            m->trials = 0;
        }
        for (size_t i = 0; i < m->accepted.cap && !ok; i++) {
            if (m->accepted.vals[i] == NULL) {
                continue;
            }
            if (++tried > NMI_HS_MAX_CANDIDATES ||
                m->trials >= NMI_HS_TRIALS_PER_SEC) {
                m->stats.handshakes_refused++;
                break;
            }
            m->trials++;
            uint64_t cand = m->accepted.keys[i];
            ok = respond_try(m, cand, noise, noise_len, &hs, payload, &plen);
            if (ok && plen != 0) {
                nmi_noise_wipe(&hs);
                ok = false;
            }
            if (ok) {
                peer_id = cand;
            }
        }
    }
    if (!ok) {
        m->stats.handshakes_failed++;
        return;
    }
    if (peer_id == m->node_id) {
        nmi_noise_wipe(&hs);
        m->stats.handshakes_refused++;
        return;
    }
    if (!m->cfg.accept_any && nmi_u64map_get(&m->accepted, peer_id) == NULL) {
        nmi_noise_wipe(&hs);
        m->stats.handshakes_refused++;
        return;
    }
    nmi_peer *p = nmi_u64map_get(&m->peers, peer_id);
    /* msg1 starts with the initiator's ephemeral key: the same key again
     * is a replay of a handshake already answered */
    if (p != NULL && p->has_last_msg1 &&
        sodium_memcmp(p->last_msg1_e, noise, 32) == 0) {
        nmi_noise_wipe(&hs);
        m->stats.rejected_replay++;
        return;
    }
    uint8_t msg2[NMI_NET_MSG2_LEN];
    size_t mlen = 0;
    nmi_node_take_eph(m, &hs);
    if (nmi_noise_write_message(&hs, NULL, 0, msg2, sizeof(msg2), &mlen) !=
            NM_OK ||
        !nmi_noise_is_done(&hs)) {
        nmi_noise_wipe(&hs);
        m->stats.handshakes_failed++;
        return;
    }
    if (p == NULL) {
        p = nmi_node_peer_new(m, peer_id);
        if (p == NULL) {
            nmi_noise_wipe(&hs);
            m->stats.handshakes_refused++;
            return;
        }
    }
    /* everything that can fail comes before msg2 goes out */
    nmi_session sess;
    if (nmi_session_from_handshake(&sess, &hs) != NM_OK) {
        nmi_noise_wipe(&hs);
        m->stats.handshakes_failed++;
        return;
    }
    nmi_noise_wipe(&hs);
    nmi_next_sess *n = NULL;
    if (p->up && (n = calloc(1, sizeof(*n))) == NULL) {
        nmi_session_wipe(&sess);
        m->stats.handshakes_failed++;
        return;
    }
    /* msg2 before the install: the initiator's DH overlaps it. Nothing
     * can use the session first: the next datagram this node processes,
     * on any thread, waits for mu, held until the install is done. */
    (void)send_hs(m, from, route != NULL, peer_id, msg2, mlen);
    memcpy(p->last_msg1_e, noise, 32);
    p->has_last_msg1 = true;
    bool adjacent = route == NULL || route->hop_count == 0;
    if (n != NULL) {
        /* a live session is replaced only once the initiator uses the
         * new one (its first packet): see nmi_next_sess */
        nmi_node_drop_next(m, p);
        n->sess = sess;
        n->routed = route != NULL;
        n->adjacent = adjacent;
        n->at_us = nmi_node_now(m);
        p->next = n;
        (void)nmi_u64map_put(&m->sessions, n->sess.session_id, p);
    } else {
        nmi_node_peer_install(m, p, &sess, route != NULL, adjacent, from);
    }
    nmi_session_wipe(&sess);
}

void
nmi_node_on_handshake(nm_mesh_t *m, const nmi_addr *from,
                      const nmi_wire_route *route, const uint8_t *noise,
                      size_t noise_len)
{
    if (try_initiator(m, from, route, noise, noise_len)) {
        return;
    }
    /* direct msg1 and msg2 are both 48 bytes: not ours, so a msg1 */
    respond(m, from, route, noise, noise_len);
}

/* ------------------------------------------------------- public calls */

static void
ms_deadline(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000u);
    ts->tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static uint64_t
mono_ms(void)
{
    return nmi_mono_ns() / 1000000u;
}

/* ------------------------------------------- the caller reads msg2 */

/* A handshake message for this node: direct, or routed with dest = us.
 * Processing one never reaches application code, so any thread may. */
static bool
hs_dgram(const nm_mesh_t *m, const uint8_t *d, size_t len)
{
    nmi_wire_header h;
    switch (nmi_wire_classify(d, len)) {
    case NMI_WIRE_KIND_DIRECT:
        return nmi_wire_header_decode(d, len, &h) == NM_OK &&
               (h.flags & NMI_WIRE_F_HANDSHAKE) != 0;
    case NMI_WIRE_KIND_ROUTED: {
        nmi_wire_route r;
        const uint8_t *in;
        size_t ilen;
        return nmi_wire_routed_split(d, len, &r, &in, &ilen) == NM_OK &&
               r.dest_id == m->node_id &&
               nmi_wire_header_decode(in, ilen, &h) == NM_OK &&
               (h.flags & NMI_WIRE_F_HANDSHAKE) != 0;
    }
    default:
        return false;
    }
}

/* Read one datagram from the socket (mu held). A handshake message for
 * us is processed here; anything else goes to the I/O thread (m->stray,
 * processed in on_async) so that application code still runs on the I/O
 * thread only. Peeking first would cost a system call on every handshake
 * to spare one rare hand-off. 1 = a handshake message was processed,
 * 0 = nothing to read (the I/O thread may have read it), -1 = something
 * else was read: the caller waits on cv from then on. */
static int
read_one(nm_mesh_t *m)
{
    if (m->stray == NULL && (m->stray = malloc(NMI_NODE_BUF)) == NULL) {
        return -1;
    }
    nmi_addr from;
    memset(&from, 0, sizeof(from));
    socklen_t sl = sizeof(from.ss);
    ssize_t n =
        recvfrom(m->sock_fd, m->stray, NMI_NODE_BUF, MSG_DONTWAIT | MSG_TRUNC,
                 (struct sockaddr *)&from.ss, &sl);
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0
                                                                         : -1;
    }
    if (n == 0 || (size_t)n > NMI_NODE_BUF) {
        m->stats.bytes_rx += (size_t)n;
        m->stats.rejected_decode++; /* no packet of ours is this long */
        return 0;
    }
    if (!hs_dgram(m, m->stray, (size_t)n)) {
        m->stray_len = (size_t)n;
        m->stray_from = from;
        uv_async_send(&m->async);
        return -1;
    }
    m->hs_reading = true; /* this thread is the reader: no hs_evfd */
    nmi_node_on_datagram(m, &from, m->stray, (size_t)n);
    m->hs_reading = false;
    m->hs_read++;
    if (m->hev_len > 0) {
        uv_async_send(&m->async); /* event hooks run on the I/O thread */
    }
    return 1;
}

/* Wait for hp's msg2 by reading the socket (mu held; released while
 * polling). The I/O thread would otherwise wake up, read msg2, run the DH
 * and then wake this caller: one thread hand-off more, and on a loaded or
 * virtualised machine a hand-off costs as much as a DH. Returns when the
 * handshake ended (either thread may finish it: hs_evfd says the I/O
 * thread did), the node closes, deadline_ns passes, or the socket's head
 * is not a handshake message (the caller then waits on cv as usual). */
static void
read_reply(nm_mesh_t *m, nmi_hs_pending *hp, uint64_t deadline_ns)
{
    while (hp->result == 1 && !m->closing) {
        uint64_t now = nmi_mono_ns();
        if (now >= deadline_ns) {
            return;
        }
        int wait_ms = (int)((deadline_ns - now + 999999u) / 1000000u);
        struct pollfd pf[2] = {{.fd = m->sock_fd, .events = POLLIN},
                               {.fd = m->hs_evfd, .events = POLLIN}};
        pthread_mutex_unlock(&m->mu);
        int n = poll(pf, 2, wait_ms);
        pthread_mutex_lock(&m->mu);
        if (n < 0 && errno != EINTR) {
            return;
        }
        if (pf[1].revents != 0) {
            nmi_evfd_drain(m->hs_evfd);
        }
        if (hp->result != 1 || m->closing) {
            return;
        }
        if ((pf[0].revents & POLLIN) != 0 && read_one(m) < 0) {
            return;
        }
    }
}

/* The blocking initiator: attempts x handshake_timeout_ms, 100 ms x
 * attempt between attempts (upstream), all bounded by timeout_ms. */
static int
connect_common(nm_mesh_t *m, const nmi_addr *addr, bool routed, uint64_t relay,
               const uint8_t pub[32], uint64_t peer_id, int timeout_ms)
{
    if (peer_id == m->node_id) {
        return nmi_err(NM_EINVAL, "mesh: cannot connect to itself");
    }
    uint64_t start = mono_ms();
    uint64_t attempt_ms = m->cfg.handshake_timeout_ms;
    uint64_t total = timeout_ms > 0 ? (uint64_t)timeout_ms
                                    : attempt_ms * m->cfg.handshake_attempts;
    pthread_mutex_lock(&m->mu);
    if (!m->threaded) {
        pthread_mutex_unlock(&m->mu);
        return nmi_err(NM_EINVAL,
                       "mesh: manual node: use nmi_mesh_connect_start");
    }
    nmi_node_enter(m);
    int rc = NM_ETIMEDOUT;
    for (uint32_t att = 1; att <= m->cfg.handshake_attempts; att++) {
        nmi_peer *p = nmi_u64map_get(&m->peers, peer_id);
        if (p != NULL && p->up && p->state != NM_PEER_FAILED) {
            rc = NM_OK;
            break;
        }
        if (m->closing) {
            rc = NM_ECLOSED;
            break;
        }
        nmi_addr to = *addr;
        if (relay != UINT64_MAX) {
            /* routed through a relay (or any route when relay == 0) */
            uint64_t hop = relay;
            if (hop == 0) {
                nmi_route r;
                if (!nmi_route_lookup(m->routes, peer_id, &r)) {
                    rc = nmi_err(NM_EUNROUTED, "mesh: no route to %016llx",
                                 (unsigned long long)peer_id);
                    break;
                }
                hop = r.via;
            }
            nmi_peer *rp = nmi_u64map_get(&m->peers, hop);
            if (rp == NULL || !rp->up || !rp->adjacent) {
                rc = nmi_err(NM_EUNROUTED,
                             "mesh: relay %016llx is not a direct peer",
                             (unsigned long long)hop);
                break;
            }
            to = rp->addr;
        }
        nmi_hs_pending *hp = NULL;
        rc = nmi_node_hs_start(m, &to, routed, pub, peer_id, &hp);
        if (rc != NM_OK) {
            break;
        }
        uint64_t now = mono_ms();
        uint64_t left = start + total > now ? start + total - now : 0;
        uint64_t wait = attempt_ms < left ? attempt_ms : left;
        struct timespec ts;
        ms_deadline(&ts, wait);
        if (m->hs_evfd >= 0 && m->sock_fd >= 0 && !m->hs_reader &&
            m->stray_len == 0) {
            m->hs_reader = true;
            hp->reader = true;
            read_reply(m, hp, nmi_mono_ns() + wait * 1000000u);
            hp->reader = false;
            m->hs_reader = false;
        }
        while (hp->result == 1 && !m->closing) {
            if (pthread_cond_timedwait(&m->cv, &m->mu, &ts) != 0) {
                break;
            }
        }
        rc = hp->result == 1 ? NM_ETIMEDOUT : hp->result;
        if (m->closing) {
            rc = NM_ECLOSED;
        }
        nmi_node_hs_drop(m, hp);
        if (rc != NM_ETIMEDOUT) {
            break;
        }
        now = mono_ms();
        if (now >= start + total || att == m->cfg.handshake_attempts) {
            break;
        }
        /* back off 100 ms x attempt (bounded by what is left) */
        uint64_t pause = 100u * att;
        left = start + total - now;
        ms_deadline(&ts, pause < left ? pause : left);
        while (!m->closing &&
               pthread_cond_timedwait(&m->cv, &m->mu, &ts) == 0) {
        }
    }
    nmi_node_leave(m);
    pthread_mutex_unlock(&m->mu);
    if (rc == NM_ETIMEDOUT) {
        char s[NMI_ADDR_STRLEN] = "?";
        nmi_addr_format(addr, s, sizeof(s));
        return nmi_err(NM_ETIMEDOUT,
                       "mesh: no valid handshake reply from %016llx (%s): "
                       "wrong PSK, wrong pinned static key, not accepting "
                       "us, or unreachable",
                       (unsigned long long)peer_id,
                       relay != UINT64_MAX ? "routed" : s);
    }
    return rc;
}

static int
connect_addr(nm_mesh_t *m, const char *addr, bool routed, const uint8_t *pub,
             uint64_t peer_node_id, int timeout_ms)
{
    if (m == NULL || addr == NULL || pub == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    nmi_addr a;
    int rc = nmi_addr_parse(&a, addr);
    if (rc != NM_OK) {
        return rc;
    }
    return connect_common(m, &a, routed, UINT64_MAX, pub, peer_node_id,
                          timeout_ms);
}

int
nm_mesh_connect(nm_mesh_t *m, const char *addr,
                const uint8_t peer_static_pub[NM_MESH_KEY_BYTES],
                uint64_t peer_node_id, int timeout_ms)
{
    return connect_addr(m, addr, false, peer_static_pub, peer_node_id,
                        timeout_ms);
}

int
nm_mesh_connect_routed(nm_mesh_t *m, const char *addr,
                       const uint8_t peer_static_pub[32],
                       uint64_t peer_node_id, int timeout_ms)
{
    return connect_addr(m, addr, true, peer_static_pub, peer_node_id,
                        timeout_ms);
}

int
nm_mesh_connect_via(nm_mesh_t *m, uint64_t relay_node_id,
                    const uint8_t peer_static_pub[32], uint64_t peer_node_id,
                    int timeout_ms)
{
    if (m == NULL || peer_static_pub == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    if (relay_node_id == UINT64_MAX) {
        return nmi_err(NM_EINVAL, "mesh: bad relay id");
    }
    nmi_addr none;
    memset(&none, 0, sizeof(none));
    return connect_common(m, &none, true, relay_node_id, peer_static_pub,
                          peer_node_id, timeout_ms);
}

int
nmi_mesh_connect_start(nm_mesh_t *m, const char *addr, bool routed,
                       const uint8_t peer_pub[32], uint64_t peer_id)
{
    nmi_addr a;
    int rc = nmi_addr_parse(&a, addr);
    if (rc != NM_OK) {
        return rc;
    }
    nmi_hs_pending *hp = NULL;
    pthread_mutex_lock(&m->mu);
    /* manual driver: the pending entry is reaped by the tick once done */
    rc = nmi_node_hs_start(m, &a, routed, peer_pub, peer_id, &hp);
    if (rc == NM_OK) {
        hp->detached = true;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}
