/*
 * src/mesh/node_impl.h - the mesh node's internals (include/netmesh/mesh.h
 * is the public face).
 *
 * Design (docs/mesh.md):
 *   - One mutex (mu) guards the whole node state: peers, sessions,
 *     streams, routes, queues. The I/O thread takes it per received
 *     datagram and per tick; application threads take it per call. A send
 *     seals and writes its packets on the caller's thread, under mu, so
 *     back-pressure answers synchronously and no hand-off per packet is
 *     needed. Port sends therefore happen on several threads, always
 *     serialized by mu (the UDP port's send is a plain sendto on the
 *     socket, which is safe next to the loop's reads).
 *   - Two drivers for the same engine: threaded (nm_mesh_open: a libuv
 *     loop on an I/O thread, real UDP, a tick timer) and manual (tests:
 *     nmi_mesh_open_port on a loopback / fault-injection port, simulated
 *     time, the test pumps the hub and calls nmi_mesh_tick), so loss and
 *     partition tests are deterministic and replayable from a seed.
 *   - Per-stream reliability, credit and congestion live in the pure
 *     module src/mesh/stream.h; routes in src/mesh/routing.h; the failure
 *     detector and pingwave dedup in src/mesh/liveness.h.
 */
#ifndef NMI_MESH_NODE_IMPL_H
#define NMI_MESH_NODE_IMPL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <netmesh/mesh.h>

#include "core/core.h"
#include "core/u64map.h"
#include "crypto/noise.h"
#include "crypto/session.h"
#include "mesh/liveness.h"
#include "mesh/mesh_ext.h"
#include "mesh/port.h"
#include "mesh/routing.h"
#include "mesh/stream.h"
#include "wire/header.h"
#include "wire/pingwave.h"
#include "wire/route.h"

/* Datagram scratch: a routing header + the largest packet. */
#define NMI_NODE_BUF (NMI_WIRE_ROUTE_LEN + NMI_WIRE_MAX_PACKET + 64)
#define NMI_NODE_EVENTS_MAX 1024
#define NMI_NODE_TAPS 8
/* Pre-generated one-use ephemeral keypairs (off the handshake's latency
 * path): all at open, then, once half are used, one per tick until full.
 * A burst of this many handshakes (a node restarting with many peers)
 * runs no key generation; 2 KiB. */
#define NMI_NODE_EPH 32
/* Data packets of one nm_mesh_send go out NMI_NODE_BATCH at a time with
 * one sendmmsg (threaded driver). */
#define NMI_NODE_BATCH 16
/* Tick of the threaded driver and the NACK / retransmit cadence. */
#define NMI_NODE_TICK_US 5000u
#define NMI_NODE_NACK_US 25000u
/* Stream limits as upstream: 4096 per peer. */
#define NMI_NODE_MAX_STREAMS 4096u

typedef struct nmi_strm {
    uint64_t id;
    nmi_stream_params params;
    nmi_stream_tx tx;
    nmi_stream_rx rx;
    bool grant_dirty;    /* a StreamWindow should go out */
    bool grant_force;    /* ... even if unchanged (a duplicate arrived:
                            the sender lost our last grant) */
    bool reset_notified; /* the application was told */
    bool local;          /* opened by nm_mesh_open_stream */
    uint16_t ch_hash;    /* channel_hash / origin_hash of the latest */
    uint64_t origin;     /* packet (the channel publish path) */
    uint8_t regrant;     /* ticks left re-sending the grant after data
                            (a lost last grant must not stall a sender) */
} nmi_strm;

/* A responder-side session waiting to replace a live one: it becomes the
 * session when the first packet authenticated under it arrives, so a
 * replayed older msg1 (which still authenticates) cannot kill a live
 * session; dropped after the handshake timeout. */
typedef struct nmi_next_sess {
    nmi_session sess;
    bool routed, adjacent;
    uint64_t at_us;
} nmi_next_sess;

typedef struct nmi_peer {
    uint64_t node_id;
    bool up;           /* has a session */
    bool routed;       /* the session runs through routing headers */
    bool frame_routed; /* our packets to it carry a routing header:
                          always when not adjacent; for an adjacent peer,
                          the form its latest data packet used (mirror) */
    bool adjacent;     /* a neighbour: its handshake arrived with hop_count 0
                          (direct, or the routed form sent straight to it):
                          heartbeats, failure detection, direct route,
                          pingwaves. A peer behind relays is not adjacent. */
    nm_peer_state state;
    nmi_addr addr; /* direct: the peer; routed: where its packets came
                      from (the fallback next hop) */
    nmi_session sess;
    nmi_next_sess *next; /* pending replacement (responder), or NULL */
    nmi_fd fd;           /* failure detector (direct peers) */
    uint64_t last_heard_us;
    uint64_t last_hb_us;
    uint64_t ctrl_seq;       /* sequence of control packets */
    uint8_t last_msg1_e[32]; /* responder: replayed msg1 detection */
    bool has_last_msg1;
    nmi_u64map streams; /* stream id -> nmi_strm */
    bool grants_dirty;  /* some stream has grant_dirty */
} nmi_peer;

/* A small datagram sent at the end of the I/O thread's loop pass. */
#define NMI_NODE_LATER 64
typedef struct nmi_later {
    nmi_addr to;
    size_t len;
    uint8_t b[NMI_WIRE_PINGWAVE_LEN];
} nmi_later;

/* An initiator handshake in progress. */
typedef struct nmi_hs_pending {
    struct nmi_hs_pending *next;
    uint64_t peer_id;
    uint8_t peer_pub[32];
    nmi_addr addr; /* where msg1 went (first hop) */
    bool routed;
    nmi_noise_hs hs;
    int result; /* 1 = in progress, NM_OK, or an error */
    uint64_t gen;
    uint64_t started_us;
    bool detached; /* nobody waits: the tick reaps it */
    bool reader;   /* its caller reads the socket (hs_evfd on completion) */
} nmi_hs_pending;

typedef struct nmi_delivery {
    struct nmi_delivery *next;
    size_t bytes;
    nm_mesh_delivery pub;
    nm_mesh_msg msgs[];
} nmi_delivery;

/* An event or tick hook (mesh_ext.h). */
typedef struct nmi_hook {
    union {
        nmi_mesh_event_fn ev;
        nmi_mesh_tick_fn tick;
    } fn;
    void *ctx;
} nmi_hook;

struct nm_mesh {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* handshakes, credit, queues, close */
    nm_mesh_config cfg;
    uint8_t static_priv[32], static_pub[32];
    nm_identity *ident;
    uint64_t node_id;
    uint32_t route_id; /* (u32)node_id */

    nmi_port *port;
    int sock_fd; /* threaded driver: the UDP socket, written directly */
    bool threaded;
    bool closing;
    /* threaded driver */
    uv_loop_t loop;
    uv_timer_t timer;
    uv_async_t async;
    uv_check_t check;
    pthread_t io_thread;
    bool io_started;
    pthread_t io_self; /* set by the I/O thread itself (under mu) */
    bool io_known;
    /* While an I/O callback holds mu, wakes of m->cv are collected and
     * broadcast after it unlocks (nmi_node_wake): a woken waiter then
     * finds the mutex free instead of sleeping again on it. */
    bool wake_defer, wake_pending;
    bool active;    /* last tick saw streams in flight / with gaps */
    bool fast_tick; /* the timer runs at NMI_NODE_TICK_US */
    bool want_fast; /* a sender asked the loop for the fast tick */
    /* manual driver */
    uint64_t sim_now_us;

    nmi_u64map peers;    /* node id -> nmi_peer */
    nmi_u64map sessions; /* session id -> nmi_peer */
    nmi_u64map accepted; /* node ids allowed to handshake */
    nmi_hs_pending *pending;
    uint64_t hs_gen;
    uint64_t trial_sec; /* direct msg1 trial budget (node_hs.c) */
    unsigned trials;
    uint8_t eph_priv[NMI_NODE_EPH][32], eph_pub[NMI_NODE_EPH][32];
    unsigned eph_n;
    bool eph_refill; /* refilling, one per tick (node_rx.c) */

    nmi_route_table *routes;
    nmi_dedup *pw_dedup; /* (origin, seq) seen recently */
    nmi_damp *damp;      /* withdrawal damping */
    nmi_pace pace;       /* extra pingwaves after topology changes */
    uint64_t pw_seq;
    uint64_t withdraw_seq;
    uint64_t fail_peer; /* the peer being failed (withdrawal source) */
    uint64_t last_nack_us, last_sweep_us, last_pw_us;
    /* some peer has grants_dirty (flush_locked); written under mu, read
     * without it by the I/O thread's check callback: __atomic accesses */
    bool grants_pending;

    /* received deliveries, oldest first */
    nmi_delivery *rx_head, *rx_tail;
    size_t rx_bytes;
    /* node events ring */
    nm_mesh_event events[NMI_NODE_EVENTS_MAX];
    size_t ev_head, ev_len;
    int evfd;
    bool fd_used; /* nm_mesh_fd was called: evfd is kept signalled */

    /* delivery handler worker */
    nm_mesh_handler handler;
    void *handler_ctx;
    pthread_t worker;
    bool worker_running, worker_stop;
    pthread_mutex_t handler_mu; /* serializes set_handler / close */

    /* implicit-stream settings by id range (nm_mesh_set_stream_defaults) */
    struct {
        uint64_t first, count;
        nmi_stream_params params;
    } sdef[8];
    size_t n_sdef;
    /* stream taps (nm_mesh_tap_streams) and their worker */
    struct {
        uint64_t first, count;
        nm_mesh_handler fn;
        void *ctx;
    } taps[NMI_NODE_TAPS];
    size_t ntaps;
    nmi_delivery *tap_head, *tap_tail;
    pthread_t tap_worker;
    bool tap_running, tap_stop, tap_busy;

    /* extension points (mesh_ext.h) */
    struct {
        uint16_t sp;
        nmi_mesh_sp_fn fn;
        void *ctx;
    } sp_h[NMI_MESH_EXT_MAX];
    size_t n_sp;
    nmi_hook ev_h[NMI_MESH_EXT_MAX];
    size_t n_evh;
    nmi_hook tick_h[NMI_MESH_EXT_MAX];
    size_t n_tickh;
    nmi_mesh_filter_fn filter;
    void *filter_ctx;
    nm_mesh_event hook_ev[NMI_NODE_EVENTS_MAX]; /* for the event hooks */
    size_t hev_head, hev_len;
    bool in_dispatch;
    unsigned callers; /* public calls that may wait (close waits for 0) */
    /* A blocking connect reads its msg2 from the socket itself instead of
     * waiting for the I/O thread to read it and wake it (node_hs.c). */
    int hs_evfd;      /* the I/O thread finished a reader's handshake; close */
    bool hs_reader;   /* one connect caller at a time reads */
    bool hs_reading;  /* the reader is processing what it read */
    uint64_t hs_read; /* handshake messages a caller read (tests) */
    uint8_t *stray; /* NMI_NODE_BUF: a non-handshake datagram a reader took */
    size_t stray_len;       /* 0 = free; else the I/O thread processes it */
    uint64_t hs_handed_off; /* strays processed (tests) */
    nmi_addr stray_from;
    unsigned ext_busy; /* hook calls running unlocked (ext_detach) */

    nm_mesh_stats stats;
    uint8_t rxbuf[NMI_NODE_BUF];
    uint8_t txbuf[NMI_NODE_BUF];
    uint8_t ctlbuf[NMI_WIRE_MAX_PAYLOAD];
    /* pingwave copies waiting for nmi_node_flush_later (allocated on
     * first use); tx_later says some are (__atomic: on_check reads it
     * without mu) */
    nmi_later *later;
    size_t later_n;
    bool tx_later;
    uv_idle_t idle; /* active while some wait: the loop polls, not sleeps */
    /* send batch (allocated on first use): NMI_NODE_BATCH slots */
    uint8_t (*txb)[NMI_NODE_BUF];
    size_t txb_len[NMI_NODE_BATCH];
    nmi_addr txb_to[NMI_NODE_BATCH];
    size_t txb_n;
};

/* A public call that may wait on cv enters (mu held) and leaves before it
 * unlocks for good: nm_mesh_close wakes them with closing set and frees
 * the node only once none is left. */
static inline void
nmi_node_enter(nm_mesh_t *m)
{
    m->callers++;
}

static inline void
nmi_node_leave(nm_mesh_t *m)
{
    if (--m->callers == 0 && m->closing) {
        pthread_cond_broadcast(&m->cv);
    }
}

/* ---- clock (under mu) -------------------------------------------- */
uint64_t nmi_node_now(const nm_mesh_t *m);

/* ---- engine entry points (mu held) -------------------------------- */
void nmi_node_on_datagram(nm_mesh_t *m, const nmi_addr *from,
                          const uint8_t *data, size_t len);
void nmi_node_tick_locked(nm_mesh_t *m, uint64_t now);
/* A sender made a stream busy: make sure the tick runs fast (mu held). */
void nmi_node_want_fast_tick(nm_mesh_t *m);
void nmi_node_flush_locked(nm_mesh_t *m);

/* ---- helpers shared by the node files (mu held) ------------------- */
nmi_peer *nmi_node_peer_new(nm_mesh_t *m, uint64_t node_id);
void nmi_node_peer_session_up(nm_mesh_t *m, nmi_peer *p,
                              const nmi_noise_hs *hs, bool routed,
                              bool adjacent, const nmi_addr *addr);
void nmi_node_peer_free(nmi_peer *p);
/* Make `sess` the peer's session (replacing one: streams restart). */
void nmi_node_peer_install(nm_mesh_t *m, nmi_peer *p, const nmi_session *sess,
                           bool routed, bool adjacent, const nmi_addr *addr);
void nmi_node_drop_next(nm_mesh_t *m, nmi_peer *p);
/* Forget a peer entirely (maps, routes, memory). */
void nmi_node_peer_evict(nm_mesh_t *m, nmi_peer *p);
void nmi_node_strm_free(nmi_strm *s);
int nmi_node_params_from(const nm_stream_config *cfg, nmi_stream_params *sp);
/* The params an implicitly created stream `id` gets (defaults, or its
 * nm_mesh_set_stream_defaults range). */
void nmi_node_stream_defaults(nm_mesh_t *m, uint64_t id,
                              nmi_stream_params *out);
/* Why nmi_node_stream(create) returned NULL: NM_ERANGE or NM_ENOMEM. */
int nmi_node_stream_error(const nmi_peer *p);
/* Drop a stream's state; a stream the application opened is re-created
 * fresh with its settings (both ends restart at sequence 0). */
void nmi_node_stream_restart(nm_mesh_t *m, nmi_peer *p, nmi_strm *s);
nmi_strm *nmi_node_stream(nm_mesh_t *m, nmi_peer *p, uint64_t id,
                          const nmi_stream_params *params, bool create);
void nmi_node_event(nm_mesh_t *m, nm_mesh_event_kind kind, uint64_t peer,
                    uint64_t stream_id);
/* Route a datagram toward a peer: its next hop address. */
/* Send a pingwave-sized datagram at the end of the I/O thread's loop pass
 * (on_check) instead of now: floods go out in one sendmmsg after what was
 * received in that pass was processed (a tick's flood makes the loop poll
 * without sleeping first), so a handshake reply is not queued behind
 * them. Manual driver: sent at once. */
void nmi_node_raw_send_later(nm_mesh_t *m, const nmi_addr *to,
                             const uint8_t *buf, size_t len);
/* Send what nmi_node_raw_send_later queued (mu held). */
void nmi_node_flush_later(nm_mesh_t *m);
int nmi_node_next_hop(nm_mesh_t *m, nmi_peer *p, nmi_addr *out);
/* Seal header + payload for peer p and send it (routing header added for
 * routed peers). h: flags, subprotocol, stream, sequence, event_count set
 * by the caller. The payload must be in m->txbuf at offset
 * NMI_WIRE_ROUTE_LEN + NMI_WIRE_HEADER_LEN (payload == NULL) or
 * anywhere else (copied). */
int nmi_node_seal_send(nm_mesh_t *m, nmi_peer *p, nmi_wire_header *h,
                       const uint8_t *payload, size_t len);
int nmi_node_raw_send(nm_mesh_t *m, const nmi_addr *to, const uint8_t *buf,
                      size_t len);
/* Seal the plaintext at base + routing offset + 68 (len bytes) into a
 * packet starting at base (routing header included when the peer needs
 * one); *total gets its size and *to the next hop. */
int nmi_node_seal_at(nm_mesh_t *m, nmi_peer *p, nmi_wire_header *h,
                     uint8_t *base, size_t len, size_t *total, nmi_addr *to);
/* Send the queued batch (sendmmsg on the threaded driver). */
void nmi_node_flush_batch(nm_mesh_t *m);
void nmi_node_send_heartbeat(nm_mesh_t *m, nmi_peer *p);
void nmi_node_send_pingwaves(nm_mesh_t *m, uint64_t now);
void nmi_node_peer_failed(nm_mesh_t *m, nmi_peer *p);
/* Control packets: n messages of one subprotocol, one event each. */
int nmi_node_send_control(nm_mesh_t *m, nmi_peer *p, uint16_t subprotocol,
                          const uint8_t *msgs, size_t msg_len, size_t n);
void nmi_node_flush_grants(nm_mesh_t *m, nmi_peer *p);
void nmi_node_stream_poll(nm_mesh_t *m, nmi_peer *p, nmi_strm *s,
                          uint64_t now);

/* Wake the threads waiting on m->cv (mu held). On the I/O thread inside
 * an I/O callback the broadcast happens once the callback unlocks. */
static inline void
nmi_node_wake(nm_mesh_t *m)
{
    if (m->wake_defer && m->io_known &&
        pthread_equal(pthread_self(), m->io_self)) {
        m->wake_pending = true;
    } else {
        pthread_cond_broadcast(&m->cv);
    }
}

/* Release mu inside an I/O callback to run application code (a
 * subprotocol handler): the wakes collected so far go out now, and none
 * is deferred while unlocked (the code may wait for a thread that needs
 * one). Returns the deferral state for nmi_node_io_relock. */
static inline bool
nmi_node_io_release(nm_mesh_t *m)
{
    bool defer = m->wake_defer, wake = m->wake_pending;
    m->wake_defer = m->wake_pending = false;
    pthread_mutex_unlock(&m->mu);
    if (wake) {
        pthread_cond_broadcast(&m->cv);
    }
    return defer;
}

static inline void
nmi_node_io_relock(nm_mesh_t *m, bool defer)
{
    pthread_mutex_lock(&m->mu);
    m->wake_defer = defer;
}

/* Handshakes (node_hs.c). */
void nmi_node_on_handshake(nm_mesh_t *m, const nmi_addr *from,
                           const nmi_wire_route *route, const uint8_t *noise,
                           size_t noise_len);
int nmi_node_hs_start(nm_mesh_t *m, const nmi_addr *addr, bool routed,
                      const uint8_t peer_pub[32], uint64_t peer_id,
                      nmi_hs_pending **out);
void nmi_node_hs_drop(nm_mesh_t *m, nmi_hs_pending *hp);
/* Give hs a pre-generated ephemeral if one is ready; refill the pool. */
void nmi_node_take_eph(nm_mesh_t *m, nmi_noise_hs *hs);
void nmi_node_fill_eph(nm_mesh_t *m, unsigned max);

/* Run the event and tick hooks (call WITHOUT the mutex, on the I/O
 * thread or the manual driver's thread). tick_now: 0 = no tick happened. */
void nmi_node_ext_dispatch(nm_mesh_t *m, uint64_t tick_now);
/* A hook call that ran unlocked returned (mu held): ext_busy - 1. */
void nmi_node_ext_done(nm_mesh_t *m);

/* ---- manual driver (tests) ---------------------------------------- */

/* Open a node on an existing port (ownership passes to the node, even on
 * failure) without any thread: the caller pumps the port (e.g. its
 * loopback hub) and calls nmi_mesh_tick with simulated time. Blocking
 * public calls (connect, recv with a timeout) must not be used; use
 * nmi_mesh_connect_start and timeout 0. */
int nmi_mesh_open_port(const nm_mesh_config *cfg, nmi_port *port,
                       uint64_t now_us, nm_mesh_t **out);
/* Advance simulated time and run the tick (heartbeats, retransmits,
 * NACKs, failure detection, sweeps) and flush pending grants. */
void nmi_mesh_tick(nm_mesh_t *m, uint64_t now_us);
/* Start a handshake without waiting (direct, or routed when routed). */
int nmi_mesh_connect_start(nm_mesh_t *m, const char *addr, bool routed,
                           const uint8_t peer_pub[32], uint64_t peer_id);
/* Threaded node (tests): how many handshake messages connecting callers
 * read and processed themselves, and how many other datagrams they read
 * and handed to the I/O thread (node_hs.c read_one). */
void nmi_mesh_test_reads(nm_mesh_t *m, uint64_t *hs_read,
                         uint64_t *handed_off);
/* The session of a peer (tests: prove relays never hold A-C keys). */
const nmi_session *nmi_mesh_session(nm_mesh_t *m, uint64_t peer);

#endif
