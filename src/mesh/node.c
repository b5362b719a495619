/*
 * src/mesh/node.c - the mesh node: configuration, the two drivers
 * (threaded libuv I/O thread, manual for tests), the delivery and event
 * queues, the handler worker, peers and stats. Packet handling lives in
 * node_rx.c, sending and streams in node_tx.c, handshakes in node_hs.c.
 */
#include "mesh/node_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/evfd.h"

/* ------------------------------------------------------------ config */

void
nm_mesh_config_init(nm_mesh_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    snprintf(cfg->bind, sizeof(cfg->bind), "127.0.0.1:0");
    cfg->heartbeat_ms = 5000;
    cfg->session_timeout_ms = 30000;
    cfg->handshake_timeout_ms = 5000;
    cfg->handshake_attempts = 3;
    cfg->socket_sndbuf = 4u << 20;
    cfg->socket_rcvbuf = 4u << 20;
    cfg->max_peers = 1024;
    cfg->rx_queue_bytes = (size_t)16 << 20;
    cfg->pingwave_ttl = 3;
}

int
nm_mesh_static_keygen(uint8_t pub[NM_MESH_KEY_BYTES],
                      uint8_t priv[NM_MESH_KEY_BYTES])
{
    if (pub == NULL || priv == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL key buffer");
    }
    return nmi_noise_keypair(pub, priv);
}

static int
check_config(const nm_mesh_config *cfg)
{
    if (cfg == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL config");
    }
    if (cfg->size != sizeof(*cfg)) {
        return nmi_err(NM_EINVAL,
                       "mesh: config.size is %zu, expected %zu (call "
                       "nm_mesh_config_init)",
                       cfg->size, sizeof(*cfg));
    }
    if (!cfg->psk_set) {
        return nmi_err(NM_EINVAL, "mesh: a 32-byte PSK is required");
    }
    if (cfg->heartbeat_ms < 5) {
        return nmi_err(NM_EINVAL, "mesh: heartbeat_ms must be >= 5");
    }
    if (cfg->session_timeout_ms < 10) {
        return nmi_err(NM_EINVAL, "mesh: session_timeout_ms must be >= 10");
    }
    if (cfg->handshake_timeout_ms == 0 || cfg->handshake_attempts == 0) {
        return nmi_err(NM_EINVAL,
                       "mesh: handshake timeout and attempts must be > 0");
    }
    if (cfg->max_peers == 0 || cfg->max_peers > NMI_ROUTE_LIMIT_MAX) {
        return nmi_err(NM_EINVAL, "mesh: max_peers must be 1..%u",
                       NMI_ROUTE_LIMIT_MAX);
    }
    if (cfg->rx_queue_bytes < NMI_WIRE_MAX_PACKET) {
        return nmi_err(NM_EINVAL, "mesh: rx_queue_bytes must be >= %u",
                       NMI_WIRE_MAX_PACKET);
    }
    if (cfg->pingwave_ttl > 16) {
        return nmi_err(NM_EINVAL, "mesh: pingwave_ttl must be <= 16");
    }
    if (memchr(cfg->bind, 0, sizeof(cfg->bind)) == NULL) {
        return nmi_err(NM_EINVAL, "mesh: bind address not NUL-terminated");
    }
    return NM_OK;
}

/* ------------------------------------------------------------- clock */

uint64_t
nmi_node_now(const nm_mesh_t *m)
{
    if (!m->threaded) {
        return m->sim_now_us;
    }
    return nmi_mono_ns() / 1000u;
}

/* ---------------------------------------------------- peers, streams */

nmi_peer *
nmi_node_peer_new(nm_mesh_t *m, uint64_t node_id)
{
    nmi_peer *p = nmi_u64map_get(&m->peers, node_id);
    if (p != NULL) {
        return p;
    }
    if (m->peers.len >= m->cfg.max_peers) {
        /* make room: the longest-silent peer that failed or never came up
         * (a live one is never evicted) */
        nmi_peer *victim = NULL;
        for (size_t i = 0; i < m->peers.cap; i++) {
            nmi_peer *q = m->peers.vals[i];
            if (q != NULL && (!q->up || q->state == NM_PEER_FAILED) &&
                (victim == NULL || q->last_heard_us < victim->last_heard_us)) {
                victim = q;
            }
        }
        if (victim == NULL) {
            nmi_err(NM_ERANGE, "mesh: max_peers (%u) live peers",
                    m->cfg.max_peers);
            return NULL;
        }
        nmi_node_peer_evict(m, victim);
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->node_id = node_id;
    p->state = NM_PEER_UNKNOWN;
    nmi_u64map_init(&p->streams);
    if (nmi_u64map_put(&m->peers, node_id, p) != NM_OK) {
        free(p);
        return NULL;
    }
    return p;
}

void
nmi_node_strm_free(nmi_strm *s)
{
    nmi_stream_tx_fini(&s->tx);
    nmi_stream_rx_fini(&s->rx);
    free(s);
}

static void
peer_drop_streams(nmi_peer *p)
{
    for (size_t i = 0; i < p->streams.cap; i++) {
        if (p->streams.vals[i] != NULL) {
            nmi_node_strm_free(p->streams.vals[i]);
        }
    }
    nmi_u64map_fini(&p->streams);
    nmi_u64map_init(&p->streams);
    p->grants_dirty = false;
}

void
nmi_node_peer_evict(nm_mesh_t *m, nmi_peer *p)
{
    nmi_u64map_del(&m->peers, p->node_id);
    if (p->up && nmi_u64map_get(&m->sessions, p->sess.session_id) == p) {
        nmi_u64map_del(&m->sessions, p->sess.session_id);
    }
    nmi_node_drop_next(m, p);
    if (p->adjacent) {
        nmi_route_remove_via(m->routes, p->node_id, NULL, NULL);
    }
    m->stats.peers_evicted++;
    nmi_node_peer_free(p);
}

void
nmi_node_drop_next(nm_mesh_t *m, nmi_peer *p)
{
    if (p->next == NULL) {
        return;
    }
    if (nmi_u64map_get(&m->sessions, p->next->sess.session_id) == p &&
        p->next->sess.session_id != p->sess.session_id) {
        nmi_u64map_del(&m->sessions, p->next->sess.session_id);
    }
    nmi_session_wipe(&p->next->sess);
    free(p->next);
    p->next = NULL;
}

void
nmi_node_peer_free(nmi_peer *p)
{
    if (p == NULL) {
        return;
    }
    if (p->next != NULL) {
        nmi_session_wipe(&p->next->sess);
        free(p->next);
    }
    peer_drop_streams(p);
    nmi_session_wipe(&p->sess);
    sodium_memzero(p, sizeof(*p));
    free(p);
}

void
nmi_node_peer_session_up(nm_mesh_t *m, nmi_peer *p, const nmi_noise_hs *hs,
                         bool routed, bool adjacent, const nmi_addr *addr)
{
    nmi_session s;
    if (nmi_session_from_handshake(&s, hs) != NM_OK) {
        return;
    }
    nmi_node_peer_install(m, p, &s, routed, adjacent, addr);
    nmi_session_wipe(&s);
}

/* A replaced session restarts the streams (both ends start at seq 0):
 * the ones the application opened are re-created with their settings,
 * and every stream that existed gets a stream_reset event. */
static void
restart_streams(nm_mesh_t *m, nmi_peer *p)
{
    enum { KEEP = 64 };
    uint64_t ids[KEEP];
    nmi_stream_params params[KEEP];
    size_t k = 0;
    for (size_t i = 0; i < p->streams.cap; i++) {
        nmi_strm *s = p->streams.vals[i];
        if (s == NULL) {
            continue;
        }
        if (s->local && k < KEEP) {
            ids[k] = s->id;
            params[k] = s->params;
            k++;
        }
        nmi_node_event(m, NM_MESH_EV_STREAM_RESET, p->node_id, s->id);
    }
    peer_drop_streams(p);
    for (size_t i = 0; i < k; i++) {
        nmi_strm *s = nmi_node_stream(m, p, ids[i], &params[i], true);
        if (s != NULL) {
            s->local = true;
        }
    }
}

void
nmi_node_peer_install(nm_mesh_t *m, nmi_peer *p, const nmi_session *sess,
                      bool routed, bool adjacent, const nmi_addr *addr)
{
    uint64_t now = nmi_node_now(m);
    if (p->up) {
        /* a new handshake replaces the session (no rekey upstream) */
        nmi_u64map_del(&m->sessions, p->sess.session_id);
        nmi_session_wipe(&p->sess);
        restart_streams(m, p);
    }
    nmi_node_drop_next(m, p);
    p->sess = *sess;
    p->routed = routed;
    p->adjacent = adjacent;
    p->frame_routed = routed || !adjacent;
    p->addr = *addr;
    p->up = true;
    p->last_heard_us = now;
    p->last_hb_us = now;
    nmi_fd_config fc = {.timeout_us =
                            (uint64_t)m->cfg.session_timeout_ms * 1000u};
    (void)nmi_fd_init(&p->fd, &fc, now);
    p->ctrl_seq = 0;
    bool was_healthy = p->state == NM_PEER_HEALTHY;
    p->state = NM_PEER_HEALTHY;
    (void)nmi_u64map_put(&m->sessions, p->sess.session_id, p);
    if (adjacent) {
        (void)nmi_route_add_direct(m->routes, p->node_id, now);
        nmi_pace_trigger(&m->pace, now);
    }
    m->stats.handshakes_ok++;
    if (!was_healthy) {
        nmi_node_event(m, NM_MESH_EV_PEER_UP, p->node_id, 0);
    }
    nmi_node_wake(m);
}

void
nmi_node_stream_defaults(nm_mesh_t *m, uint64_t id, nmi_stream_params *out)
{
    for (size_t i = 0; i < m->n_sdef; i++) {
        if (id - m->sdef[i].first < m->sdef[i].count) {
            *out = m->sdef[i].params;
            return;
        }
    }
    nmi_stream_params_default(out);
}

int
nmi_node_stream_error(const nmi_peer *p)
{
    return p->streams.len >= NMI_NODE_MAX_STREAMS
               ? nmi_err(NM_ERANGE, "mesh: %u streams with this peer",
                         NMI_NODE_MAX_STREAMS)
               : nmi_err(NM_ENOMEM, "mesh: cannot create the stream");
}

void
nmi_node_stream_restart(nm_mesh_t *m, nmi_peer *p, nmi_strm *s)
{
    uint64_t id = s->id;
    bool local = s->local;
    nmi_stream_params params = s->params;
    nmi_u64map_del(&p->streams, id);
    nmi_node_strm_free(s);
    if (local) {
        nmi_strm *n = nmi_node_stream(m, p, id, &params, true);
        if (n != NULL) {
            n->local = true;
        }
    }
}

int
nm_mesh_set_stream_defaults(nm_mesh_t *m, uint64_t first, uint64_t count,
                            const nm_stream_config *cfg)
{
    if (m == NULL ||
        (cfg != NULL && (count == 0 || first + count - 1 < first))) {
        return nmi_err(NM_EINVAL, "mesh: bad stream range");
    }
    nmi_stream_params sp;
    if (cfg != NULL) {
        int rc = nmi_node_params_from(cfg, &sp);
        if (rc != NM_OK) {
            return rc;
        }
    }
    pthread_mutex_lock(&m->mu);
    int rc = NM_OK;
    size_t i = 0;
    while (i < m->n_sdef && m->sdef[i].first != first) {
        i++;
    }
    if (cfg == NULL) {
        if (i == m->n_sdef) {
            rc = nmi_err(NM_ENOTFOUND, "mesh: no stream range at %llu",
                         (unsigned long long)first);
        } else {
            m->sdef[i] = m->sdef[--m->n_sdef];
        }
    } else if (i == m->n_sdef && m->n_sdef == 8) {
        rc = nmi_err(NM_ERANGE, "mesh: at most 8 stream ranges");
    } else {
        m->sdef[i].first = first;
        m->sdef[i].count = count;
        m->sdef[i].params = sp;
        if (i == m->n_sdef) {
            m->n_sdef++;
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

nmi_strm *
nmi_node_stream(nm_mesh_t *m, nmi_peer *p, uint64_t id,
                const nmi_stream_params *params, bool create)
{
    (void)m;
    nmi_strm *s = nmi_u64map_get(&p->streams, id);
    if (s != NULL || !create) {
        return s;
    }
    if (p->streams.len >= NMI_NODE_MAX_STREAMS) {
        nmi_err(NM_ERANGE, "mesh: %u streams per peer reached",
                NMI_NODE_MAX_STREAMS);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->id = id;
    s->params = *params;
    if (nmi_stream_tx_init(&s->tx, id, params) != NM_OK) {
        free(s);
        return NULL;
    }
    if (nmi_stream_rx_init(&s->rx, id, params) != NM_OK) {
        nmi_stream_tx_fini(&s->tx);
        free(s);
        return NULL;
    }
    if (nmi_u64map_put(&p->streams, id, s) != NM_OK) {
        nmi_node_strm_free(s);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------ events */

void
nmi_node_event(nm_mesh_t *m, nm_mesh_event_kind kind, uint64_t peer,
               uint64_t stream_id)
{
    bool was_empty = m->rx_head == NULL && m->ev_len == 0;
    if (m->ev_len == NMI_NODE_EVENTS_MAX) {
        m->ev_head = (m->ev_head + 1) % NMI_NODE_EVENTS_MAX;
        m->ev_len--;
        m->stats.events_dropped++;
    }
    nm_mesh_event *e =
        &m->events[(m->ev_head + m->ev_len) % NMI_NODE_EVENTS_MAX];
    e->kind = kind;
    e->peer = peer;
    e->stream_id = stream_id;
    m->ev_len++;
    if (was_empty && m->fd_used) {
        nmi_evfd_signal(m->evfd);
    }
    nmi_node_wake(m);
    if (m->n_evh > 0) {
        if (m->hev_len == NMI_NODE_EVENTS_MAX) {
            m->hev_head = (m->hev_head + 1) % NMI_NODE_EVENTS_MAX;
            m->hev_len--;
        }
        nm_mesh_event *h =
            &m->hook_ev[(m->hev_head + m->hev_len) % NMI_NODE_EVENTS_MAX];
        h->kind = kind;
        h->peer = peer;
        h->stream_id = stream_id;
        m->hev_len++;
    }
}

void
nmi_node_ext_dispatch(nm_mesh_t *m, uint64_t tick_now)
{
    pthread_mutex_lock(&m->mu);
    if (m->in_dispatch ||
        (m->hev_len == 0 && (tick_now == 0 || m->n_tickh == 0))) {
        pthread_mutex_unlock(&m->mu);
        return;
    }
    m->in_dispatch = true;
    while (m->hev_len > 0 && !m->closing) {
        nm_mesh_event ev = m->hook_ev[m->hev_head];
        m->hev_head = (m->hev_head + 1) % NMI_NODE_EVENTS_MAX;
        m->hev_len--;
        /* re-read n_evh: a hook may be detached meanwhile */
        for (size_t i = 0; i < m->n_evh; i++) {
            nmi_mesh_event_fn fn = m->ev_h[i].fn.ev;
            void *ctx = m->ev_h[i].ctx;
            m->ext_busy++;
            pthread_mutex_unlock(&m->mu);
            fn(ctx, m, &ev);
            pthread_mutex_lock(&m->mu);
            nmi_node_ext_done(m);
        }
    }
    for (size_t i = 0; tick_now != 0 && i < m->n_tickh && !m->closing; i++) {
        nmi_mesh_tick_fn fn = m->tick_h[i].fn.tick;
        void *ctx = m->tick_h[i].ctx;
        m->ext_busy++;
        pthread_mutex_unlock(&m->mu);
        fn(ctx, m, tick_now);
        pthread_mutex_lock(&m->mu);
        nmi_node_ext_done(m);
    }
    m->in_dispatch = false;
    pthread_mutex_unlock(&m->mu);
}

void
nmi_node_ext_done(nm_mesh_t *m)
{
    if (--m->ext_busy == 0) {
        nmi_node_wake(m);
    }
}

static size_t
hooks_drop(nmi_hook *arr, size_t n, void *ctx)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (arr[i].ctx != ctx) {
            arr[k++] = arr[i];
        }
    }
    return k;
}

void
nmi_mesh_ext_detach(nm_mesh_t *m, void *ctx)
{
    if (m == NULL) {
        return;
    }
    pthread_mutex_lock(&m->mu);
    size_t k = 0;
    for (size_t i = 0; i < m->n_sp; i++) {
        if (m->sp_h[i].ctx != ctx) {
            m->sp_h[k++] = m->sp_h[i];
        }
    }
    m->n_sp = k;
    m->n_evh = hooks_drop(m->ev_h, m->n_evh, ctx);
    m->n_tickh = hooks_drop(m->tick_h, m->n_tickh, ctx);
    bool self = !m->threaded ||
                (m->io_known && pthread_equal(pthread_self(), m->io_self));
    while (!self && m->ext_busy > 0) {
        pthread_cond_wait(&m->cv, &m->mu);
    }
    pthread_mutex_unlock(&m->mu);
}

static int
hook_add(nm_mesh_t *m, nmi_hook *arr, size_t *n, nmi_hook h)
{
    pthread_mutex_lock(&m->mu);
    int rc = NM_OK;
    if (*n == NMI_MESH_EXT_MAX) {
        rc = nmi_err(NM_ERANGE, "mesh: more than %d hooks", NMI_MESH_EXT_MAX);
    } else {
        arr[(*n)++] = h;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int
nmi_mesh_event_hook(nm_mesh_t *m, nmi_mesh_event_fn fn, void *ctx)
{
    if (m == NULL || fn == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL hook");
    }
    return hook_add(m, m->ev_h, &m->n_evh,
                    (nmi_hook){.fn.ev = fn, .ctx = ctx});
}

int
nmi_mesh_tick_hook(nm_mesh_t *m, nmi_mesh_tick_fn fn, void *ctx)
{
    if (m == NULL || fn == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL hook");
    }
    return hook_add(m, m->tick_h, &m->n_tickh,
                    (nmi_hook){.fn.tick = fn, .ctx = ctx});
}

int
nmi_mesh_sp_register(nm_mesh_t *m, uint16_t sp, nmi_mesh_sp_fn fn, void *ctx)
{
    if (m == NULL || fn == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL handler");
    }
    if (sp == NMI_WIRE_SP_EVENTS || sp == NMI_WIRE_SP_ROUTE_WITHDRAW ||
        (sp >= NMI_WIRE_SP_STREAM_WINDOW &&
         sp <= NMI_WIRE_SP_STREAM_ACK_RANGES)) {
        return nmi_err(NM_EINVAL, "mesh: subprotocol 0x%04x is the node's",
                       (unsigned)sp);
    }
    pthread_mutex_lock(&m->mu);
    int rc = NM_OK;
    for (size_t i = 0; i < m->n_sp; i++) {
        if (m->sp_h[i].sp == sp) {
            rc = nmi_err(NM_EEXIST, "mesh: subprotocol 0x%04x taken",
                         (unsigned)sp);
        }
    }
    if (rc == NM_OK && m->n_sp == NMI_MESH_EXT_MAX) {
        rc = nmi_err(NM_ERANGE, "mesh: too many subprotocol handlers");
    }
    if (rc == NM_OK) {
        m->sp_h[m->n_sp].sp = sp;
        m->sp_h[m->n_sp].fn = fn;
        m->sp_h[m->n_sp].ctx = ctx;
        m->n_sp++;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int
nmi_mesh_set_delivery_filter(nm_mesh_t *m, nmi_mesh_filter_fn fn, void *ctx)
{
    if (m == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL node");
    }
    pthread_mutex_lock(&m->mu);
    m->filter = fn;
    m->filter_ctx = ctx;
    pthread_mutex_unlock(&m->mu);
    return NM_OK;
}

uint64_t
nmi_mesh_now_us(nm_mesh_t *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t now = nmi_node_now(m);
    pthread_mutex_unlock(&m->mu);
    return now;
}

const nm_identity *
nmi_mesh_identity(nm_mesh_t *m)
{
    return m->ident;
}

void
nmi_mesh_learn_route(nm_mesh_t *m, uint64_t dest, uint64_t via, uint8_t hops)
{
    pthread_mutex_lock(&m->mu);
    if (dest != m->node_id && dest != via) {
        (void)nmi_route_learn(m->routes, dest, via,
                              nmi_route_metric_from_hops(hops),
                              nmi_node_now(m));
    }
    pthread_mutex_unlock(&m->mu);
}

bool
nmi_mesh_split_horizon_ok(nm_mesh_t *m, uint64_t origin, uint64_t peer)
{
    pthread_mutex_lock(&m->mu);
    bool ok = nmi_route_split_horizon_ok(m->routes, origin, peer);
    pthread_mutex_unlock(&m->mu);
    return ok;
}

bool
nmi_mesh_is_adjacent(nm_mesh_t *m, uint64_t peer)
{
    pthread_mutex_lock(&m->mu);
    nmi_peer *p = nmi_u64map_get(&m->peers, peer);
    bool adj = p != NULL && p->up && p->adjacent;
    pthread_mutex_unlock(&m->mu);
    return adj;
}

const char *
nm_mesh_event_name(nm_mesh_event_kind k)
{
    switch (k) {
    case NM_MESH_EV_PEER_UP:
        return "peer_up";
    case NM_MESH_EV_PEER_SUSPECT:
        return "peer_suspect";
    case NM_MESH_EV_PEER_DOWN:
        return "peer_down";
    case NM_MESH_EV_STREAM_RESET:
        return "stream_reset";
    }
    return "unknown";
}

/* Deadline helpers for the blocking calls. timeout < 0: forever. */
static void
deadline_ts(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Wait on cv (mu held) until woken or the deadline; true on timeout. */
static bool
wait_until(nm_mesh_t *m, const struct timespec *ts, bool forever)
{
    if (forever) {
        pthread_cond_wait(&m->cv, &m->mu);
        return false;
    }
    return pthread_cond_timedwait(&m->cv, &m->mu, ts) == ETIMEDOUT;
}

static void
maybe_drain_fd(nm_mesh_t *m)
{
    if (m->fd_used && m->rx_head == NULL && m->ev_len == 0) {
        nmi_evfd_drain(m->evfd);
    }
}

int
nm_mesh_next_event(nm_mesh_t *m, int timeout_ms, nm_mesh_event *out)
{
    if (m == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    struct timespec ts;
    deadline_ts(&ts, timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&m->mu);
    nmi_node_enter(m);
    int rc = NM_OK;
    while (m->ev_len == 0) {
        if (m->closing) {
            rc = nmi_err(NM_ECLOSED, "mesh: node closed");
            break;
        }
        if (timeout_ms == 0) {
            rc = NM_EAGAIN;
            break;
        }
        if (!m->threaded) {
            rc = nmi_err(NM_EINVAL, "mesh: manual node: use timeout 0");
            break;
        }
        if (wait_until(m, &ts, timeout_ms < 0)) {
            rc = m->ev_len ? NM_OK : NM_ETIMEDOUT;
            break;
        }
    }
    if (m->ev_len > 0) {
        *out = m->events[m->ev_head];
        m->ev_head = (m->ev_head + 1) % NMI_NODE_EVENTS_MAX;
        m->ev_len--;
        rc = NM_OK;
    }
    maybe_drain_fd(m);
    nmi_node_leave(m);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* -------------------------------------------------------- deliveries */

static nmi_delivery *
pop_delivery(nm_mesh_t *m)
{
    nmi_delivery *d = m->rx_head;
    if (d != NULL) {
        m->rx_head = d->next;
        if (m->rx_head == NULL) {
            m->rx_tail = NULL;
        }
        m->rx_bytes -= d->bytes;
    }
    return d;
}

int
nm_mesh_recv(nm_mesh_t *m, int timeout_ms, nm_mesh_delivery **out)
{
    if (m == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    *out = NULL;
    struct timespec ts;
    deadline_ts(&ts, timeout_ms < 0 ? 0 : timeout_ms);
    pthread_mutex_lock(&m->mu);
    int rc = NM_OK;
    if (m->handler != NULL) {
        pthread_mutex_unlock(&m->mu);
        return nmi_err(NM_EINVAL, "mesh: a handler is installed");
    }
    nmi_node_enter(m);
    while (m->rx_head == NULL) {
        if (m->closing) {
            rc = nmi_err(NM_ECLOSED, "mesh: node closed");
            break;
        }
        if (timeout_ms == 0) {
            rc = NM_EAGAIN;
            break;
        }
        if (!m->threaded) {
            rc = nmi_err(NM_EINVAL, "mesh: manual node: use timeout 0");
            break;
        }
        if (wait_until(m, &ts, timeout_ms < 0)) {
            rc = NM_ETIMEDOUT;
            break;
        }
    }
    nmi_delivery *d = pop_delivery(m);
    if (d != NULL) {
        *out = &d->pub;
        rc = NM_OK;
    }
    maybe_drain_fd(m);
    nmi_node_leave(m);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void
nm_mesh_delivery_free(nm_mesh_delivery *d)
{
    if (d != NULL) {
        free((char *)d - offsetof(nmi_delivery, pub));
    }
}

static void *
worker_main(void *arg)
{
    nm_mesh_t *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->worker_stop) {
        nmi_delivery *d = pop_delivery(m);
        if (d == NULL) {
            maybe_drain_fd(m);
            pthread_cond_wait(&m->cv, &m->mu);
            continue;
        }
        nm_mesh_handler fn = m->handler;
        void *ctx = m->handler_ctx;
        pthread_mutex_unlock(&m->mu);
        fn(ctx, &d->pub);
        free(d);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

static void
stop_worker(nm_mesh_t *m)
{
    pthread_mutex_lock(&m->mu);
    bool running = m->worker_running;
    m->worker_stop = true;
    nmi_node_wake(m);
    pthread_mutex_unlock(&m->mu);
    if (running) {
        pthread_join(m->worker, NULL);
    }
    pthread_mutex_lock(&m->mu);
    m->worker_running = false;
    m->worker_stop = false;
    m->handler = NULL;
    pthread_mutex_unlock(&m->mu);
}

int
nm_mesh_set_handler(nm_mesh_t *m, nm_mesh_handler fn, void *ctx)
{
    if (m == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL node");
    }
    if (!m->threaded && fn != NULL) {
        return nmi_err(NM_EINVAL, "mesh: manual node has no worker");
    }
    pthread_mutex_lock(&m->mu);
    bool self = m->worker_running && pthread_equal(pthread_self(), m->worker);
    pthread_mutex_unlock(&m->mu);
    if (self) {
        return nmi_err(NM_EINVAL, "mesh: set_handler from the handler");
    }
    pthread_mutex_lock(&m->handler_mu); /* one caller joins the worker */
    stop_worker(m);
    if (fn == NULL) {
        pthread_mutex_unlock(&m->handler_mu);
        return NM_OK;
    }
    pthread_mutex_lock(&m->mu);
    m->handler = fn;
    m->handler_ctx = ctx;
    int rc = pthread_create(&m->worker, NULL, worker_main, m);
    if (rc != 0) {
        m->handler = NULL;
        pthread_mutex_unlock(&m->mu);
        pthread_mutex_unlock(&m->handler_mu);
        return nmi_err(NM_ENOMEM, "mesh: cannot start the worker: %s",
                       strerror(rc));
    }
    m->worker_running = true;
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_unlock(&m->handler_mu);
    return NM_OK;
}

/* Tap worker: deliveries of tapped streams, to their tap's function. */
static void *
tap_main(void *arg)
{
    nm_mesh_t *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->tap_stop) {
        nmi_delivery *d = m->tap_head;
        if (d == NULL) {
            pthread_cond_wait(&m->cv, &m->mu);
            continue;
        }
        m->tap_head = d->next;
        if (m->tap_head == NULL) {
            m->tap_tail = NULL;
        }
        m->rx_bytes -= d->bytes;
        nm_mesh_handler fn = NULL;
        void *ctx = NULL;
        for (size_t t = 0; t < m->ntaps; t++) {
            if (d->pub.stream_id - m->taps[t].first < m->taps[t].count) {
                fn = m->taps[t].fn;
                ctx = m->taps[t].ctx;
            }
        }
        m->tap_busy = fn != NULL;
        pthread_mutex_unlock(&m->mu);
        if (fn != NULL) {
            fn(ctx, &d->pub);
        }
        free(d);
        pthread_mutex_lock(&m->mu);
        m->tap_busy = false;
        nmi_node_wake(m);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int
nm_mesh_tap_streams(nm_mesh_t *m, uint64_t first, uint64_t count,
                    nm_mesh_handler fn, void *ctx)
{
    if (m == NULL || (fn != NULL && count == 0)) {
        return nmi_err(NM_EINVAL, "mesh: tap: NULL node or empty range");
    }
    if (!m->threaded && fn != NULL) {
        return nmi_err(NM_EINVAL, "mesh: manual node has no tap worker");
    }
    if (fn != NULL && first + count - 1 < first) {
        return nmi_err(NM_EINVAL, "mesh: tap range wraps");
    }
    int rc = NM_OK;
    pthread_mutex_lock(&m->mu);
    if (fn == NULL) {
        size_t t = 0;
        while (t < m->ntaps && m->taps[t].first != first) {
            t++;
        }
        if (t == m->ntaps) {
            rc = nmi_err(NM_ENOTFOUND, "mesh: no tap at stream %llu",
                         (unsigned long long)first);
        } else {
            m->taps[t] = m->taps[--m->ntaps];
            /* let a call in progress finish before returning (unless
             * this is that call: a tap removing itself) */
            bool self =
                m->tap_running && pthread_equal(pthread_self(), m->tap_worker);
            nmi_node_enter(m);
            while (m->tap_busy && !self && !m->closing) {
                pthread_cond_wait(&m->cv, &m->mu);
            }
            nmi_node_leave(m);
        }
        pthread_mutex_unlock(&m->mu);
        return rc;
    }
    for (size_t t = 0; t < m->ntaps; t++) {
        uint64_t a = m->taps[t].first, b = a + m->taps[t].count - 1;
        if (first <= b && a <= first + count - 1) {
            pthread_mutex_unlock(&m->mu);
            return nmi_err(NM_EEXIST, "mesh: tap ranges overlap");
        }
    }
    if (m->ntaps == NMI_NODE_TAPS) {
        pthread_mutex_unlock(&m->mu);
        return nmi_err(NM_ERANGE, "mesh: at most %d taps", NMI_NODE_TAPS);
    }
    if (!m->tap_running) {
        int prc = pthread_create(&m->tap_worker, NULL, tap_main, m);
        if (prc != 0) {
            pthread_mutex_unlock(&m->mu);
            return nmi_err(NM_ENOMEM, "mesh: cannot start the tap worker");
        }
        m->tap_running = true;
    }
    m->taps[m->ntaps].first = first;
    m->taps[m->ntaps].count = count;
    m->taps[m->ntaps].fn = fn;
    m->taps[m->ntaps].ctx = ctx;
    m->ntaps++;
    pthread_mutex_unlock(&m->mu);
    return NM_OK;
}

int
nm_mesh_fd(const nm_mesh_t *m)
{
    if (m == NULL) {
        return NM_EINVAL;
    }
    /* The eventfd is written only once somebody asked for it: a system
     * call per event or first delivery is a cost on every handshake and
     * receive otherwise. The node is never a const object (nm_mesh_open
     * allocates it), so the cast is sound. */
    nm_mesh_t *w = (nm_mesh_t *)(uintptr_t)m;
    pthread_mutex_lock(&w->mu);
    if (!w->fd_used) {
        w->fd_used = true;
        if (w->rx_head != NULL || w->ev_len > 0) {
            nmi_evfd_signal(w->evfd);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return m->evfd;
}

/* --------------------------------------------------- threaded driver */

/* The I/O callbacks lock and unlock through these: waiters on m->cv are
 * woken after the unlock (nmi_node_wake). */
static void
io_lock(nm_mesh_t *m)
{
    pthread_mutex_lock(&m->mu);
    m->wake_defer = true;
}

static void
io_unlock(nm_mesh_t *m)
{
    bool wake = m->wake_pending;
    m->wake_pending = false;
    m->wake_defer = false;
    pthread_mutex_unlock(&m->mu);
    if (wake) {
        pthread_cond_broadcast(&m->cv);
    }
}

static void
on_port_recv(void *ctx, nmi_port *port, const nmi_addr *from,
             const uint8_t *data, size_t len)
{
    (void)port;
    nm_mesh_t *m = ctx;
    io_lock(m);
    nmi_node_on_datagram(m, from, data, len);
    bool hooks = m->hev_len > 0;
    io_unlock(m);
    if (hooks) {
        nmi_node_ext_dispatch(m, 0);
    }
}

/* The tick runs every 5 ms while streams have packets in flight, gaps or
 * grants to repeat, and otherwise at min(25 ms, heartbeat / 2, session
 * timeout / 4): an idle node wakes rarely. A sender starting a reliable
 * burst on a slow-ticking node asks the loop for the fast tick
 * (nmi_node_want_fast_tick). */
static uint64_t
idle_tick_ms(const nm_mesh_t *m)
{
    uint64_t t = 25;
    if (m->cfg.heartbeat_ms / 2 < t) {
        t = m->cfg.heartbeat_ms / 2;
    }
    if (m->cfg.session_timeout_ms / 4 < t) {
        t = m->cfg.session_timeout_ms / 4;
    }
    return t < NMI_NODE_TICK_US / 1000u ? NMI_NODE_TICK_US / 1000u : t;
}

static void
on_idle(uv_idle_t *h)
{
    (void)h; /* only there so that the loop polls without sleeping */
}

static void
on_timer(uv_timer_t *t)
{
    nm_mesh_t *m = t->data;
    io_lock(m);
    uint64_t now = nmi_node_now(m);
    nmi_node_tick_locked(m, now);
    /* the tick's pingwaves go out in on_check, after the datagrams that
     * are waiting now; the idle handle keeps the poll from sleeping */
    bool later = m->later_n > 0;
    io_unlock(m);
    if (later) {
        uv_idle_start(&m->idle, on_idle);
    }
    nmi_node_ext_dispatch(m, now);
    pthread_mutex_lock(&m->mu);
    bool fast = m->active || m->want_fast;
    m->want_fast = false;
    m->fast_tick = fast;
    uint64_t next = fast ? NMI_NODE_TICK_US / 1000u : idle_tick_ms(m);
    uint64_t due = nmi_pace_next_due(&m->pace); /* topology pingwaves */
    if (!fast && due != UINT64_MAX) {
        uint64_t in_ms = due > now ? (due - now + 999u) / 1000u : 0;
        in_ms = in_ms < NMI_NODE_TICK_US / 1000u ? NMI_NODE_TICK_US / 1000u
                                                 : in_ms;
        next = in_ms < next ? in_ms : next;
    }
    pthread_mutex_unlock(&m->mu);
    uv_timer_start(&m->timer, on_timer, next, 0);
}

void
nmi_node_want_fast_tick(nm_mesh_t *m)
{
    if (m->threaded && !m->fast_tick && !m->want_fast && !m->closing) {
        m->want_fast = true;
        uv_async_send(&m->async);
    }
}

/* After each poll phase: grants for what this iteration received. */
static void
on_check(uv_check_t *c)
{
    nm_mesh_t *m = c->data;
    uv_idle_stop(&m->idle); /* the poll it kept awake is done */
    /* after every loop iteration: most have no grant to send, and taking
     * mu then would only contend with a caller holding it */
    if (!__atomic_load_n(&m->grants_pending, __ATOMIC_RELAXED) &&
        !__atomic_load_n(&m->tx_later, __ATOMIC_RELAXED)) {
        return;
    }
    io_lock(m);
    nmi_node_flush_locked(m);
    io_unlock(m);
}

static void
close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static void
on_async(uv_async_t *a)
{
    nm_mesh_t *m = a->data;
    io_lock(m);
    bool closing = m->closing;
    bool fast = m->want_fast && !m->fast_tick;
    if (fast) {
        m->fast_tick = true;
    }
    if (m->stray_len > 0 && !closing) {
        /* a datagram a connect caller read that was not its msg2
         * (node_hs.c read_one) */
        nmi_node_on_datagram(m, &m->stray_from, m->stray, m->stray_len);
        m->stray_len = 0;
        m->hs_handed_off++;
    }
    bool hooks = m->hev_len > 0;
    io_unlock(m);
    if (hooks && !closing) {
        nmi_node_ext_dispatch(m, 0);
    }
    if (fast && !closing) {
        uv_timer_start(&m->timer, on_timer, NMI_NODE_TICK_US / 1000u, 0);
    }
    if (closing) {
        uv_timer_stop(&m->timer);
        uv_check_stop(&m->check);
        uv_idle_stop(&m->idle);
        pthread_mutex_lock(&m->mu);
        nmi_port *port = m->port;
        m->port = NULL; /* senders check it under mu */
        pthread_mutex_unlock(&m->mu);
        nmi_port_destroy(port);
        uv_walk(&m->loop, close_walk, NULL);
    }
}

static void *
io_main(void *arg)
{
    nm_mesh_t *m = arg;
    pthread_mutex_lock(&m->mu);
    m->io_self = pthread_self(); /* io_thread is written by the creator */
    m->io_known = true;
    pthread_mutex_unlock(&m->mu);
    uv_run(&m->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ------------------------------------------------------ open / close */

static int
node_alloc(const nm_mesh_config *cfg, nm_mesh_t **out)
{
    int rc = check_config(cfg);
    if (rc != NM_OK) {
        return rc;
    }
    if (sodium_init() < 0) {
        return nmi_err(NM_EINTERNAL, "mesh: libsodium init failed");
    }
    nm_mesh_t *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return nmi_err(NM_ENOMEM, "mesh: no memory");
    }
    m->cfg = *cfg;
    m->evfd = -1;
    m->hs_evfd = -1;
    m->sock_fd = -1;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->handler_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    nmi_u64map_init(&m->peers);
    nmi_u64map_init(&m->sessions);
    nmi_u64map_init(&m->accepted);
    *out = m;

    if (cfg->identity != NULL) {
        uint8_t seed[NM_IDENTITY_SEED_BYTES];
        rc = nm_identity_to_seed(cfg->identity, seed);
        if (rc == NM_OK) {
            rc = nm_identity_from_seed(seed, &m->ident);
        }
        sodium_memzero(seed, sizeof(seed));
    } else {
        rc = nm_identity_generate(&m->ident);
    }
    if (rc != NM_OK) {
        return rc;
    }
    rc = nm_identity_node_id(m->ident, &m->node_id);
    if (rc != NM_OK) {
        return rc;
    }
    m->route_id = nmi_wire_routing_id(m->node_id);
    if (cfg->static_key_set) {
        memcpy(m->static_priv, cfg->static_key, 32);
        rc = nmi_noise_pubkey(m->static_pub, m->static_priv);
    } else {
        rc = nmi_noise_keypair(m->static_pub, m->static_priv);
    }
    if (rc != NM_OK) {
        return rc;
    }
    /* the config copy must not keep secrets or borrowed pointers */
    sodium_memzero(m->cfg.static_key, sizeof(m->cfg.static_key));
    m->cfg.identity = NULL;

    nmi_route_config rcfg = {.max_direct = cfg->max_peers};
    rc = nmi_route_table_new(&rcfg, &m->routes);
    if (rc != NM_OK) {
        return rc;
    }
    rc = nmi_dedup_new(NULL, &m->pw_dedup);
    if (rc == NM_OK) {
        rc = nmi_damp_new(NULL, &m->damp);
    }
    if (rc == NM_OK) {
        rc = nmi_pace_init(&m->pace, NULL);
    }
    if (rc != NM_OK) {
        return rc;
    }
    nmi_node_fill_eph(m, NMI_NODE_EPH);
    m->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (m->evfd < 0) {
        return nmi_err(NM_EIO, "mesh: eventfd: %s", strerror(errno));
    }
    return NM_OK;
}

static void
node_free(nm_mesh_t *m)
{
    for (size_t i = 0; i < m->peers.cap; i++) {
        if (m->peers.vals[i] != NULL) {
            nmi_node_peer_free(m->peers.vals[i]);
        }
    }
    nmi_u64map_fini(&m->peers);
    nmi_u64map_fini(&m->sessions);
    nmi_u64map_fini(&m->accepted);
    while (m->pending != NULL) {
        nmi_hs_pending *h = m->pending;
        m->pending = h->next;
        nmi_noise_wipe(&h->hs);
        free(h);
    }
    nmi_delivery *d;
    while ((d = pop_delivery(m)) != NULL) {
        free(d);
    }
    while ((d = m->tap_head) != NULL) {
        m->tap_head = d->next;
        free(d);
    }
    nmi_route_table_free(m->routes);
    nmi_dedup_free(m->pw_dedup);
    nmi_damp_free(m->damp);
    nm_identity_free(m->ident);
    if (m->evfd >= 0) {
        close(m->evfd);
    }
    if (m->hs_evfd >= 0) {
        close(m->hs_evfd);
    }
    free(m->stray);
    free(m->later);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->handler_mu);
    sodium_memzero(m->static_priv, sizeof(m->static_priv));
    sodium_memzero(m->eph_priv, sizeof(m->eph_priv));
    free(m->txb);
    sodium_memzero(m->cfg.psk, sizeof(m->cfg.psk));
    free(m);
}

int
nm_mesh_open(const nm_mesh_config *cfg, nm_mesh_t **out)
{
    if (out == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL out");
    }
    *out = NULL;
    nm_mesh_t *m = NULL;
    int rc = node_alloc(cfg, &m);
    if (rc != NM_OK) {
        if (m != NULL) {
            node_free(m);
        }
        return rc;
    }
    m->threaded = true;
    nmi_addr bind;
    rc = nmi_addr_parse(&bind, cfg->bind);
    if (rc != NM_OK) {
        node_free(m);
        return rc;
    }
    int uvrc = uv_loop_init(&m->loop);
    if (uvrc != 0) {
        node_free(m);
        return nmi_err(NM_EIO, "mesh: uv_loop_init: %s", uv_strerror(uvrc));
    }
    nmi_udp_opts uo;
    nmi_udp_opts_init(&uo);
    uo.sndbuf =
        (int)(cfg->socket_sndbuf > INT32_MAX ? INT32_MAX : cfg->socket_sndbuf);
    uo.rcvbuf =
        (int)(cfg->socket_rcvbuf > INT32_MAX ? INT32_MAX : cfg->socket_rcvbuf);
    rc = nmi_udp_port_open2(&m->loop, &bind, &uo, &m->port);
    if (rc == NM_OK) {
        /* sends go straight to the socket from any thread (under mu);
         * the port keeps the receive side on the loop */
        rc = nmi_udp_port_fd(m->port, &m->sock_fd);
        if (rc == NM_OK) {
            m->hs_evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (m->hs_evfd < 0) {
                rc = nmi_err(NM_EIO, "mesh: eventfd: %s", strerror(errno));
            }
        }
        if (rc != NM_OK) {
            nmi_port_destroy(m->port);
        }
    }
    if (rc != NM_OK) {
        uv_run(&m->loop, UV_RUN_NOWAIT);
        uv_loop_close(&m->loop);
        node_free(m);
        return rc;
    }
    nmi_port_set_recv(m->port, on_port_recv, m);
    uv_timer_init(&m->loop, &m->timer);
    m->timer.data = m;
    uv_idle_init(&m->loop, &m->idle);
    m->idle.data = m;
    uv_check_init(&m->loop, &m->check);
    m->check.data = m;
    uv_async_init(&m->loop, &m->async, on_async);
    m->async.data = m;
    m->fast_tick = true;
    uv_timer_start(&m->timer, on_timer, NMI_NODE_TICK_US / 1000u, 0);
    uv_check_start(&m->check, on_check);
    m->io_started = true; /* before the thread exists: it reads it */
    int prc = pthread_create(&m->io_thread, NULL, io_main, m);
    if (prc != 0) {
        m->io_started = false;
        m->closing = true;
        on_async(&m->async);
        uv_run(&m->loop, UV_RUN_DEFAULT);
        uv_loop_close(&m->loop);
        node_free(m);
        return nmi_err(NM_ENOMEM, "mesh: cannot start the I/O thread");
    }
    *out = m;
    return NM_OK;
}

void
nm_mesh_close(nm_mesh_t *m)
{
    if (m == NULL) {
        return;
    }
    /* wake every blocked caller with closing set and wait until they
     * are gone: nothing may touch the node once it is freed */
    pthread_mutex_lock(&m->mu);
    m->closing = true;
    nmi_node_wake(m);
    if (m->hs_evfd >= 0) {
        nmi_evfd_signal(m->hs_evfd); /* a connect reading the socket */
    }
    while (m->callers > 0) {
        pthread_cond_wait(&m->cv, &m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_lock(&m->handler_mu);
    stop_worker(m);
    pthread_mutex_unlock(&m->handler_mu);
    pthread_mutex_lock(&m->mu);
    bool tap = m->tap_running;
    m->tap_stop = true;
    nmi_node_wake(m);
    pthread_mutex_unlock(&m->mu);
    if (tap) {
        pthread_join(m->tap_worker, NULL);
    }
    if (m->threaded) {
        if (m->io_started) {
            uv_async_send(&m->async);
            pthread_join(m->io_thread, NULL);
        }
        uv_run(&m->loop, UV_RUN_NOWAIT);
        uv_loop_close(&m->loop);
    } else {
        nmi_port_destroy(m->port);
    }
    node_free(m);
}

/* ------------------------------------------------------ manual driver */

int
nmi_mesh_open_port(const nm_mesh_config *cfg, nmi_port *port, uint64_t now_us,
                   nm_mesh_t **out)
{
    if (out == NULL || port == NULL) {
        nmi_port_destroy(port);
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    *out = NULL;
    nm_mesh_t *m = NULL;
    int rc = node_alloc(cfg, &m);
    if (rc != NM_OK) {
        if (m != NULL) {
            node_free(m);
        }
        nmi_port_destroy(port);
        return rc;
    }
    m->threaded = false;
    m->sim_now_us = now_us;
    m->port = port;
    nmi_port_set_recv(port, on_port_recv, m);
    *out = m;
    return NM_OK;
}

void
nmi_mesh_tick(nm_mesh_t *m, uint64_t now_us)
{
    pthread_mutex_lock(&m->mu);
    if (now_us > m->sim_now_us) {
        m->sim_now_us = now_us;
    }
    nmi_node_tick_locked(m, m->sim_now_us);
    nmi_node_flush_locked(m);
    uint64_t now = m->sim_now_us;
    pthread_mutex_unlock(&m->mu);
    nmi_node_ext_dispatch(m, now);
}

const nmi_session *
nmi_mesh_session(nm_mesh_t *m, uint64_t peer)
{
    pthread_mutex_lock(&m->mu);
    nmi_peer *p = nmi_u64map_get(&m->peers, peer);
    pthread_mutex_unlock(&m->mu);
    return p != NULL && p->up ? &p->sess : NULL;
}

void
nmi_mesh_test_reads(nm_mesh_t *m, uint64_t *hs_read, uint64_t *handed_off)
{
    pthread_mutex_lock(&m->mu);
    *hs_read = m->hs_read;
    *handed_off = m->hs_handed_off;
    pthread_mutex_unlock(&m->mu);
}

/* ------------------------------------------------------------ queries */

uint64_t
nm_mesh_node_id(const nm_mesh_t *m)
{
    return m == NULL ? 0 : m->node_id;
}

int
nm_mesh_entity_id(const nm_mesh_t *m, uint8_t out[NM_ENTITY_ID_BYTES])
{
    if (m == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    return nm_identity_entity_id(m->ident, out);
}

void
nm_mesh_static_pubkey(const nm_mesh_t *m, uint8_t out[NM_MESH_KEY_BYTES])
{
    if (m != NULL && out != NULL) {
        memcpy(out, m->static_pub, 32);
    }
}

int
nm_mesh_local_addr(const nm_mesh_t *m, char *buf, size_t cap)
{
    if (m == NULL || buf == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    nmi_addr a;
    pthread_mutex_lock((pthread_mutex_t *)&m->mu);
    int rc = m->port ? nmi_port_local_addr(m->port, &a) : NM_ECLOSED;
    pthread_mutex_unlock((pthread_mutex_t *)&m->mu);
    if (rc != NM_OK) {
        return rc;
    }
    rc = nmi_addr_format(&a, buf, cap);
    return rc < 0 ? rc : NM_OK;
}

static void
peer_info(nm_mesh_t *m, const nmi_peer *p, nm_mesh_peer_info *o)
{
    memset(o, 0, sizeof(*o));
    o->node_id = p->node_id;
    o->state = p->state;
    o->routed = p->routed;
    o->adjacent = p->adjacent;
    o->session_id = p->sess.session_id;
    nmi_addr_format(&p->addr, o->addr, sizeof(o->addr));
    uint64_t now = nmi_node_now(m);
    o->last_heard_ms_ago =
        now > p->last_heard_us ? (now - p->last_heard_us) / 1000u : 0;
}

int
nm_mesh_peers(nm_mesh_t *m, nm_mesh_peer_info *out, size_t max, size_t *n)
{
    if (m == NULL || n == NULL || (out == NULL && max > 0)) {
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    pthread_mutex_lock(&m->mu);
    size_t k = 0;
    for (size_t i = 0; i < m->peers.cap; i++) {
        nmi_peer *p = m->peers.vals[i];
        if (p == NULL || !p->up) {
            continue;
        }
        if (k < max) {
            peer_info(m, p, &out[k]);
        }
        k++;
    }
    pthread_mutex_unlock(&m->mu);
    *n = k;
    return NM_OK;
}

int
nm_mesh_peer(nm_mesh_t *m, uint64_t node_id, nm_mesh_peer_info *out)
{
    if (m == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL argument");
    }
    pthread_mutex_lock(&m->mu);
    nmi_peer *p = nmi_u64map_get(&m->peers, node_id);
    int rc = NM_OK;
    if (p == NULL || !p->up) {
        rc = nmi_err(NM_ENOTFOUND, "mesh: no session with %016llx",
                     (unsigned long long)node_id);
    } else {
        peer_info(m, p, out);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int
nm_mesh_route(nm_mesh_t *m, uint64_t node_id, uint64_t *next_hop,
              uint32_t *metric)
{
    if (m == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL node");
    }
    nmi_route r;
    pthread_mutex_lock(&m->mu);
    bool ok = nmi_route_lookup(m->routes, node_id, &r);
    pthread_mutex_unlock(&m->mu);
    if (!ok) {
        return nmi_err(NM_EUNROUTED, "mesh: no route to %016llx",
                       (unsigned long long)node_id);
    }
    if (next_hop != NULL) {
        *next_hop = r.via;
    }
    if (metric != NULL) {
        *metric = r.metric;
    }
    return NM_OK;
}

void
nm_mesh_stats_get(nm_mesh_t *m, nm_mesh_stats *out)
{
    if (m == NULL || out == NULL) {
        return;
    }
    pthread_mutex_lock(&m->mu);
    *out = m->stats;
    pthread_mutex_unlock(&m->mu);
}

int
nm_mesh_accept(nm_mesh_t *m, uint64_t peer_node_id)
{
    if (m == NULL) {
        return nmi_err(NM_EINVAL, "mesh: NULL node");
    }
    pthread_mutex_lock(&m->mu);
    int rc = nmi_u64map_put(&m->accepted, peer_node_id, (void *)1);
    pthread_mutex_unlock(&m->mu);
    return rc == NM_OK ? NM_OK : nmi_err(rc, "mesh: accept list: no memory");
}
