/*
 * netmesh/mesh.h - the encrypted UDP mesh node (seed: "Transports",
 * "Mesh Streams (multi-peer + back-pressure)", MeshBuilder).
 *
 *   MeshBuilder::new(bind, psk)...build()  -> nm_mesh_config_init +
 *                                             nm_mesh_open
 *   node.inner().connect(addr, key, id)    -> nm_mesh_connect
 *   node.open_stream(peer, id, cfg)        -> nm_mesh_open_stream
 *   send_on_stream / send_with_retry /
 *   send_blocking                          -> nm_mesh_send /
 *                                             nm_mesh_send_with_retry /
 *                                             nm_mesh_send_blocking
 *   stream_stats(peer, id)                 -> nm_mesh_stream_stats
 *
 * A node speaks upstream Net's wire protocol v1 (docs/PROTOCOL.md §8, §10):
 * Noise NKpsk0 handshakes, 68-byte headers, ChaCha20-Poly1305 packets with
 * a replay window, event frames, heartbeats, pingwaves, routing headers.
 *
 * Threads. nm_mesh_open starts one I/O thread (a libuv loop: the UDP
 * socket, the timers). Every public function is thread-safe unless its
 * comment says otherwise: calls lock the node briefly; a send seals and
 * writes its packets on the calling thread. Blocking calls (connect, recv,
 * next_event, send's internal wait) take a timeout. The delivery handler
 * (nm_mesh_set_handler) runs on a worker thread of the node, never on the
 * I/O thread. For another event loop: nm_mesh_fd is readable while a
 * delivery or a node event is queued; drain with timeout 0.
 *
 * Errors: negative NM_E* codes (netmesh/error.h) with nm_errdetail().
 */
#ifndef NETMESH_MESH_H
#define NETMESH_MESH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/common.h>
#include <netmesh/identity.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NM_MESH_KEY_BYTES 32
#define NM_MESH_ADDR_MAX 64

typedef struct nm_mesh nm_mesh_t;

typedef struct nm_mesh_config {
    size_t size;                    /* sizeof(nm_mesh_config) */
    char bind[NM_MESH_ADDR_MAX];    /* "a.b.c.d:port" or "[v6]:port";
                                       default "127.0.0.1:0" */
    uint8_t psk[NM_MESH_KEY_BYTES]; /* the mesh pre-shared key: required */
    bool psk_set;
    /* The ed25519 identity (copied at open; the caller keeps ownership).
     * NULL: an ephemeral identity, so node_id changes on every run. */
    const nm_identity *identity;
    /* The X25519 static private key of the Noise responder role. Unset:
     * random per open (upstream behaviour); set it to keep the public
     * key stable across restarts (see nm_mesh_static_keygen). */
    uint8_t static_key[NM_MESH_KEY_BYTES];
    bool static_key_set;
    uint32_t heartbeat_ms;         /* default 5000 (upstream); >= 5 */
    uint32_t session_timeout_ms;   /* default 30000 (upstream); >= 10. A
                                      peer is suspect after 2 timeouts
                                      without a verified packet and
                                      failed after 3. */
    uint32_t handshake_timeout_ms; /* per attempt; default 5000 */
    uint32_t handshake_attempts;   /* default 3 */
    uint32_t socket_sndbuf;        /* bytes; default 4 MiB; 0 = OS */
    uint32_t socket_rcvbuf;        /* bytes; default 4 MiB; 0 = OS */
    /* Accept inbound handshakes from any node holding the PSK: routed
     * ones always; direct ones (which do not name the initiator) only
     * from node ids given to nm_mesh_accept. Default false: only
     * nm_mesh_accept'ed node ids. */
    bool accept_any;
    uint32_t max_peers;    /* default 1024 */
    size_t rx_queue_bytes; /* bound on undelivered received payload
                              bytes; default 16 MiB. Beyond it reliable
                              packets are refused (the sender
                              retransmits) and fire-and-forget ones are
                              dropped and counted. */
    uint32_t pingwave_ttl; /* hops a pingwave travels; default 3 */
} nm_mesh_config;

/* Defaults as documented above (psk unset). Thread-safe. */
NM_API void nm_mesh_config_init(nm_mesh_config *cfg);

/* A random X25519 static keypair for config.static_key (priv) and for
 * the peers that pin it (pub). Thread-safe. */
NM_API int nm_mesh_static_keygen(uint8_t pub[NM_MESH_KEY_BYTES],
                                 uint8_t priv[NM_MESH_KEY_BYTES]);

/* Bind, start the I/O thread. Errors: NM_EINVAL (bad config, with a
 * detail), NM_EIO (bind failed), NM_ENOMEM. *out is owned by the caller:
 * nm_mesh_close. */
NM_API int nm_mesh_open(const nm_mesh_config *cfg, nm_mesh_t **out);

/* Stop the I/O and worker threads, wipe every key, free the node. Blocked
 * callers on other threads return NM_ECLOSED first. Not to be called from
 * the delivery handler. NULL is a no-op. */
NM_API void nm_mesh_close(nm_mesh_t *m);

/* The node id (from the identity, see netmesh/identity.h). */
NM_API uint64_t nm_mesh_node_id(const nm_mesh_t *m);
/* The entity id (ed25519 public key) of the node's identity. */
NM_API int nm_mesh_entity_id(const nm_mesh_t *m,
                             uint8_t out[NM_ENTITY_ID_BYTES]);
/* The Noise static public key peers pin to connect to this node. */
NM_API void nm_mesh_static_pubkey(const nm_mesh_t *m,
                                  uint8_t out[NM_MESH_KEY_BYTES]);
/* The bound address ("127.0.0.1:40123"). NM_ERANGE if cap is too small. */
NM_API int nm_mesh_local_addr(const nm_mesh_t *m, char *buf, size_t cap);

/* ------------------------------------------------------------ sessions */

/* Handshake with the node at addr whose Noise static public key and node
 * id the caller knows (out of band). Blocks until the session is up or
 * every attempt timed out. Already connected: NM_OK at once. Errors:
 * NM_EINVAL, NM_ETIMEDOUT (no valid reply: wrong PSK, wrong pinned key,
 * unreachable or not accepting us - the protocol sends no refusal, so
 * these look alike to the initiator; the responder counts its failures),
 * NM_ECLOSED. */
NM_API int nm_mesh_connect(nm_mesh_t *m, const char *addr,
                           const uint8_t peer_static_pub[NM_MESH_KEY_BYTES],
                           uint64_t peer_node_id, int timeout_ms);

/* A routed handshake (upstream connect_via): msg1 travels in a routing
 * header through the direct peer `relay_node_id` (or, with relay 0,
 * through whatever route this node knows to peer_node_id); relays forward
 * without decrypting, so the session is end to end. Errors as
 * nm_mesh_connect, plus NM_EUNROUTED (no route, unknown relay). */
NM_API int nm_mesh_connect_via(nm_mesh_t *m, uint64_t relay_node_id,
                               const uint8_t peer_static_pub[32],
                               uint64_t peer_node_id, int timeout_ms);

/* The routed form sent straight to addr (one hop, dest = the peer): the
 * form a node that is already running accepts from unknown initiators
 * (see accept_any). */
NM_API int nm_mesh_connect_routed(nm_mesh_t *m, const char *addr,
                                  const uint8_t peer_static_pub[32],
                                  uint64_t peer_node_id, int timeout_ms);

/* Allow inbound handshakes from peer_node_id (direct msg1 does not carry
 * the initiator's id, so the responder must know it). Idempotent. */
NM_API int nm_mesh_accept(nm_mesh_t *m, uint64_t peer_node_id);

typedef enum nm_peer_state {
    NM_PEER_UNKNOWN = 0,
    NM_PEER_HEALTHY = 1,
    NM_PEER_SUSPECT = 2,
    NM_PEER_FAILED = 3,
} nm_peer_state;

typedef struct nm_mesh_peer_info {
    uint64_t node_id;
    nm_peer_state state;
    bool routed;   /* session set up through routing headers */
    bool adjacent; /* a direct neighbour (heartbeats, failure detection);
                      false for a session behind relays */
    char addr[NM_MESH_ADDR_MAX]; /* direct address, or the next hop's */
    uint64_t session_id;
    uint64_t last_heard_ms_ago;
} nm_mesh_peer_info;

/* Copy up to max peers into out; *n gets the number of peers (may exceed
 * max). */
NM_API int nm_mesh_peers(nm_mesh_t *m, nm_mesh_peer_info *out, size_t max,
                         size_t *n);
/* One peer. NM_ENOTFOUND when there is no session with it. */
NM_API int nm_mesh_peer(nm_mesh_t *m, uint64_t node_id,
                        nm_mesh_peer_info *out);

/* The next hop this node uses toward node_id (itself for a direct peer).
 * NM_EUNROUTED when none. */
NM_API int nm_mesh_route(nm_mesh_t *m, uint64_t node_id, uint64_t *next_hop,
                         uint32_t *metric);

/* ------------------------------------------------------------- streams */

typedef enum nm_reliability {
    NM_FIRE_AND_FORGET = 0,
    NM_RELIABLE = 1,
} nm_reliability;

typedef struct nm_stream_config {
    size_t size;                /* sizeof(nm_stream_config) */
    nm_reliability reliability; /* default NM_FIRE_AND_FORGET */
    uint32_t window_bytes;      /* byte credit (upstream semantics: cost
                                   per packet = framed payload + 84);
                                   default 65536; 0 = unbounded */
    bool in_order;              /* reliable only: deliver in sequence order (an
                                   extension; upstream delivers in arrival
                                   order); default false */
    uint32_t max_retries;       /* per packet before the stream resets;
                                   default 3 (upstream) */
} nm_stream_config;

NM_API void nm_stream_config_init(nm_stream_config *cfg);

/* Open a stream to a peer with a session (again with the same config:
 * NM_OK). Streams the peer opens are created implicitly on their first
 * packet (see nm_mesh_set_stream_defaults). A stream that already carried
 * packets cannot change its config: NM_EBUSY (close it first; both ends
 * then restart it). Errors: NM_EINVAL, NM_ENOTCONN (no session), NM_EBUSY,
 * NM_ERANGE (4096 streams with this peer). */
NM_API int nm_mesh_open_stream(nm_mesh_t *m, uint64_t peer, uint64_t stream_id,
                               const nm_stream_config *cfg);

/* Settings for streams in first..first+count-1 that are created
 * implicitly: by the peer's first packet (the receive side: in_order and
 * the window apply there) or by a send on an unopened id. At most 8
 * ranges; cfg NULL removes the range starting at first. The bus bridge
 * uses it so its streams deliver in order. NM_EINVAL, NM_ERANGE,
 * NM_ENOTFOUND. */
NM_API int nm_mesh_set_stream_defaults(nm_mesh_t *m, uint64_t first,
                                       uint64_t count,
                                       const nm_stream_config *cfg);

/* Close a stream: drops its state and sends the peer a StreamReset so
 * both ends restart the id at sequence 0; stats become NM_ENOTFOUND. */
NM_API int nm_mesh_close_stream(nm_mesh_t *m, uint64_t peer,
                                uint64_t stream_id);

/* Send n messages (data[i], lens[i]), in order, packed greedily into
 * packets of at most 8108 payload bytes (one message never spans
 * packets: at most 8104 bytes each). A stream not yet opened is opened
 * with the defaults. Back-pressure is a signal, not a policy: when the
 * first packet of the call finds no credit (or, reliable, a full
 * congestion window) the call returns NM_EBACKPRESSURE and nothing was
 * sent. When it hits after part of the call went out, the call waits
 * for grants (5 ms doubling to 200 ms, up to 30 s as upstream), then
 * NM_ETIMEDOUT. Errors: NM_EINVAL, NM_ETOOBIG, NM_ENOTCONN (no session),
 * NM_EUNROUTED (routed peer, no route now), NM_ECLOSED (stream reset or
 * node closed), NM_EBACKPRESSURE. */
NM_API int nm_mesh_send(nm_mesh_t *m, uint64_t peer, uint64_t stream_id,
                        const void *const *data, const size_t *lens, size_t n);

/* nm_mesh_send, retried on NM_EBACKPRESSURE only: sleeps 5 ms doubling
 * to 200 ms between attempts, max_retries + 1 attempts in all. */
NM_API int nm_mesh_send_with_retry(nm_mesh_t *m, uint64_t peer,
                                   uint64_t stream_id, const void *const *data,
                                   const size_t *lens, size_t n,
                                   uint32_t max_retries);

/* nm_mesh_send_with_retry with 4096 retries (~13 minutes, as upstream). */
NM_API int nm_mesh_send_blocking(nm_mesh_t *m, uint64_t peer,
                                 uint64_t stream_id, const void *const *data,
                                 const size_t *lens, size_t n);

typedef struct nm_stream_stats {
    nm_reliability reliability;
    bool in_order;
    bool reset;            /* failed (retry budget) or reset by peer */
    uint64_t tx_seq;       /* next sequence this side sends */
    uint64_t rx_seq;       /* next sequence expected from the peer */
    uint64_t in_flight;    /* reliable packets sent, not yet acked */
    uint64_t window_bytes; /* configured credit window */
    uint64_t credit_bytes; /* credit available now */
    uint64_t cwnd;         /* congestion window (packets) */
    uint64_t backpressure_events;
    uint64_t retransmits;
    uint64_t packets_sent, packets_received;
    uint64_t duplicates; /* received again, suppressed */
    uint64_t lost;       /* fire-and-forget packets never received */
    uint32_t srtt_us, rto_us;
} nm_stream_stats;

/* Live stats. NM_ENOTFOUND when the stream was closed or never opened
 * (upstream's None). */
NM_API int nm_mesh_stream_stats(nm_mesh_t *m, uint64_t peer,
                                uint64_t stream_id, nm_stream_stats *out);

/* ------------------------------------------------------------- receive */

typedef struct nm_mesh_msg {
    const uint8_t *data;
    size_t len;
} nm_mesh_msg;

/* One received packet's messages, in the order they were sent. */
typedef struct nm_mesh_delivery {
    uint64_t peer;      /* sender node id */
    uint64_t stream_id; /* stream it came on */
    uint64_t seq;       /* the packet's stream sequence */
    size_t count;       /* messages */
    const nm_mesh_msg *msgs;
    uint16_t channel_hash; /* header fields of the channel publish path */
    uint64_t origin_hash;  /* (0 on plain streams) */
} nm_mesh_delivery;

/* Take the next delivery (any peer, any stream), waiting up to
 * timeout_ms (0 = do not wait, -1 = forever). *out is the caller's: free
 * it with nm_mesh_delivery_free. Errors: NM_EAGAIN (timeout 0, nothing
 * queued), NM_ETIMEDOUT, NM_ECLOSED. Not to be mixed with a handler. */
NM_API int nm_mesh_recv(nm_mesh_t *m, int timeout_ms, nm_mesh_delivery **out);
NM_API void nm_mesh_delivery_free(nm_mesh_delivery *d);

/* Deliver through a callback instead: fn runs on a worker thread of the
 * node, one delivery at a time, which it must not free. NULL stops the
 * worker (after the delivery in progress). A slow handler does not stall
 * the transport: deliveries queue up to rx_queue_bytes. */
typedef void (*nm_mesh_handler)(void *ctx, const nm_mesh_delivery *d);
NM_API int nm_mesh_set_handler(nm_mesh_t *m, nm_mesh_handler fn, void *ctx);

/* Send the deliveries of streams first..first+count-1 (from any peer) to
 * fn instead of the receive queue: fn runs on a tap worker thread of the
 * node (one for all taps), one delivery at a time, which it must not
 * free. At most 8 taps, ranges must not overlap; fn NULL removes the tap
 * starting at `first`. Used by the bus bridge (netmesh/mesh_bus.h).
 * Errors: NM_EINVAL, NM_EEXIST (overlap), NM_ERANGE (8 taps),
 * NM_ENOTFOUND (removing an unknown tap). */
NM_API int nm_mesh_tap_streams(nm_mesh_t *m, uint64_t first, uint64_t count,
                               nm_mesh_handler fn, void *ctx);

/* Readable (eventfd) while a delivery or a node event is queued, from the
 * first call on (the node writes it only once asked for). Owned by the
 * node. Thread-safe; takes the node's lock, so not from a callback that
 * runs under it (the mesh_ext delivery filter). */
NM_API int nm_mesh_fd(const nm_mesh_t *m);

typedef enum nm_mesh_event_kind {
    NM_MESH_EV_PEER_UP = 1,      /* session established (or recovered) */
    NM_MESH_EV_PEER_SUSPECT = 2, /* 2 session timeouts without a packet */
    NM_MESH_EV_PEER_DOWN = 3,    /* failed: routes through it withdrawn */
    NM_MESH_EV_STREAM_RESET = 4, /* retry budget spent, or reset by peer */
} nm_mesh_event_kind;

typedef struct nm_mesh_event {
    nm_mesh_event_kind kind;
    uint64_t peer;
    uint64_t stream_id; /* STREAM_RESET only */
} nm_mesh_event;

/* The next node event (a bounded queue of 1024: the oldest is dropped
 * and counted in stats when it overflows). Timeout as nm_mesh_recv. */
NM_API int nm_mesh_next_event(nm_mesh_t *m, int timeout_ms,
                              nm_mesh_event *out);
/* "peer_up", "peer_suspect", "peer_down", "stream_reset". */
NM_API const char *nm_mesh_event_name(nm_mesh_event_kind k);

typedef struct nm_mesh_stats {
    uint64_t packets_tx, packets_rx, bytes_tx, bytes_rx;
    uint64_t handshakes_ok, handshakes_failed, handshakes_refused;
    uint64_t rejected_decode; /* malformed datagrams */
    uint64_t rejected_crypto; /* bad tag */
    uint64_t rejected_replay; /* counter replayed or out of window */
    uint64_t unknown_session;
    uint64_t forwarded; /* relayed packets (never decrypted) */
    uint64_t dropped_no_route, dropped_ttl;
    uint64_t rx_queue_full; /* packets refused: rx_queue_bytes reached */
    uint64_t heartbeats_tx, heartbeats_rx, pingwaves_rx;
    uint64_t events_dropped; /* node events lost to a full event queue */
    uint64_t send_errors;    /* socket send failures */
    uint64_t peers_evicted;  /* failed / silent peers forgotten */
} nm_mesh_stats;

NM_API void nm_mesh_stats_get(nm_mesh_t *m, nm_mesh_stats *out);

#ifdef __cplusplus
}
#endif

#endif
