/*
 * src/mesh/mesh_ext.h - extension points of the mesh node for the layers
 * above it (src/behavior: capability announcements, channels; later nRPC,
 * replication). Internal API: not exported, not stable.
 *
 * Threads. Hooks marked "unlocked" run on the node's I/O thread (or, on
 * the manual driver, inside nmi_mesh_tick / the hub run) WITHOUT the node
 * mutex: they may call any nm_mesh_* function and nmi_mesh_sp_send, but
 * must not block for long (they delay the transport). The delivery filter
 * runs WITH the mutex held and must not call into the node.
 */
#ifndef NMI_MESH_EXT_H
#define NMI_MESH_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/mesh.h>

/* At most this many subprotocol handlers / hooks per node. */
#define NMI_MESH_EXT_MAX 16

/* A verified packet of subprotocol `sp` from session peer `peer`
 * (unlocked). payload = the decrypted EventFrame (event_count events;
 * iterate with nmi_wire_frame_iter_init); hop_count = the routing
 * header's hop count on arrival, or -1 for a direct packet. */
typedef void (*nmi_mesh_sp_fn)(void *ctx, nm_mesh_t *m, uint64_t peer,
                               uint16_t sp, uint64_t stream_id,
                               const uint8_t *payload, size_t len,
                               uint16_t event_count, int hop_count);

/* Register the handler of a subprotocol the node does not handle itself
 * (not 0x0000, 0x0B00-0x0B03, 0x0C01). Packets of unregistered
 * subprotocols are dropped (upstream). NM_EEXIST, NM_EINVAL, NM_ERANGE. */
int nmi_mesh_sp_register(nm_mesh_t *m, uint16_t sp, nmi_mesh_sp_fn fn,
                         void *ctx);

/* Send n messages (one event each, in order, packed greedily into
 * packets) of subprotocol sp to a session peer: flags 0, the given
 * stream_id (upstream: the subprotocol id for membership / capability
 * messages), sequence from the peer's control counter; unreliable, like
 * upstream's control traffic. Thread-safe. NM_ENOTCONN, NM_ETOOBIG,
 * NM_EINVAL, NM_ECLOSED. */
int nmi_mesh_sp_send(nm_mesh_t *m, uint64_t peer, uint16_t sp,
                     uint64_t stream_id, const void *const *msgs,
                     const size_t *lens, size_t n);

/* Node events (peer up / suspect / down, stream reset) also go to these
 * hooks (unlocked), in order, after the node's own handling. */
typedef void (*nmi_mesh_event_fn)(void *ctx, nm_mesh_t *m,
                                  const nm_mesh_event *ev);
int nmi_mesh_event_hook(nm_mesh_t *m, nmi_mesh_event_fn fn, void *ctx);

/* Called after every tick (unlocked) with the node's clock (µs). */
typedef void (*nmi_mesh_tick_fn)(void *ctx, nm_mesh_t *m, uint64_t now_us);
int nmi_mesh_tick_hook(nm_mesh_t *m, nmi_mesh_tick_fn fn, void *ctx);

/* The node's clock (µs, monotonic; simulated on the manual driver). */
uint64_t nmi_mesh_now_us(nm_mesh_t *m);

/* Delivery filter (locked): offered every received delivery before the
 * taps and the receive queue; return true to take it (free it later with
 * nm_mesh_delivery_free), false to leave it. One per node; NULL removes. */
typedef bool (*nmi_mesh_filter_fn)(void *ctx, nm_mesh_delivery *d);
int nmi_mesh_set_delivery_filter(nm_mesh_t *m, nmi_mesh_filter_fn fn,
                                 void *ctx);

/* nm_mesh_send with extra header fields: channel_hash (xxh3_64(name) as
 * u16) and origin_hash, as upstream's channel publish path sets them. */
typedef struct nmi_mesh_send_opts {
    uint16_t channel_hash;
    uint64_t origin_hash;
} nmi_mesh_send_opts;
int nmi_mesh_send_ex(nm_mesh_t *m, uint64_t peer, uint64_t stream_id,
                     const void *const *data, const size_t *lens, size_t n,
                     const nmi_mesh_send_opts *opts);

/* Is peer an adjacent (direct-neighbour) session? */
bool nmi_mesh_is_adjacent(nm_mesh_t *m, uint64_t peer);

/* The node's ed25519 identity (owned by the node; valid until close). */
const nm_identity *nmi_mesh_identity(nm_mesh_t *m);

/* A capability announcement from adjacent peer `via` that travelled
 * `hops` hops says `dest` exists: learn the route (metric hops + 2, as
 * pingwaves). Ignored for dest == self or a non-adjacent via. */
void nmi_mesh_learn_route(nm_mesh_t *m, uint64_t dest, uint64_t via,
                          uint8_t hops);

/* Split horizon: may something originated by `origin` be forwarded to
 * adjacent peer `peer`? (false when peer is the best next hop toward
 * origin). */
bool nmi_mesh_split_horizon_ok(nm_mesh_t *m, uint64_t origin, uint64_t peer);

/* Remove every subprotocol handler, event hook and tick hook registered
 * with this ctx, then wait until no hook call is running unlocked (not
 * when called on the I/O thread itself, or on the manual driver), so the
 * caller may free ctx. Not to be called from a hook of the same node on
 * another thread. */
void nmi_mesh_ext_detach(nm_mesh_t *m, void *ctx);

#endif
