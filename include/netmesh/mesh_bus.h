/*
 * netmesh/mesh_bus.h - the event bus carried over the mesh.
 *
 * Sender side: a bus opened with the mesh adapter (nm_adapter_mesh) sends
 * every shard batch to one peer over encrypted mesh streams - shard s on
 * stream stream_base + s, reliable and in order by default, one message
 * per event - and keeps a local copy in a memory adapter so its own poll
 * and subscriptions still work.
 *
 * Receiver side: a bridge (nm_mesh_bridge_open) takes the deliveries of
 * those streams from the node (nm_mesh_tap_streams) and emits each event
 * into a local bus, where poll and subscribe see it. Sharding is by the
 * event bytes (xxh3), so with the same shard count an event lands in the
 * same shard on both sides; per-shard order is kept.
 *
 *   sender:   nm_mesh_adapter_config_init(&mc); mc.mesh = node;
 *             mc.peer = peer_id; bus_cfg.adapter = nm_adapter_mesh();
 *             bus_cfg.adapter_config = &mc; nm_bus_open(&bus_cfg, &bus);
 *   receiver: nm_mesh_bridge_open(node, local_bus, base, shards, &br);
 *
 * Delivery: with the default reliable streams every event the sender's
 * bus dispatched reaches the receiving node exactly once, in per-shard
 * order, while both run (the mesh retransmits; on_batch waits for credit
 * up to send_timeout_ms and otherwise reports the batch dropped, counted
 * in the sender's bus stats). The receiving bus may still refuse events
 * under its own backpressure policy (counted in the bridge stats).
 * Thread-safety: as the bus and the node; the bridge callbacks run on the
 * node's tap worker.
 */
#ifndef NETMESH_MESH_BUS_H
#define NETMESH_MESH_BUS_H

#include <stdint.h>

#include <netmesh/adapter.h>
#include <netmesh/bus.h>
#include <netmesh/common.h>
#include <netmesh/mesh.h>

NM_BEGIN_DECLS

/* The default first stream id of the bus streams ("nmbus" << 16). */
#define NM_MESH_BUS_STREAM_BASE UINT64_C(0x6e6d627573000000)

typedef struct nm_mesh_adapter_config {
    size_t size;          /* sizeof(nm_mesh_adapter_config) */
    nm_mesh_t *mesh;      /* the node (borrowed; must outlive the bus) */
    uint64_t peer;        /* the node id batches go to (needs a session) */
    uint64_t stream_base; /* default NM_MESH_BUS_STREAM_BASE */
    nm_reliability reliability;        /* default NM_RELIABLE */
    uint32_t window_bytes;             /* per shard stream; default 1 MiB */
    int send_timeout_ms;               /* wait for credit per batch; default
                                          30000 */
    uint64_t local_capacity_per_shard; /* the local copy (memory adapter);
                                          default 1,048,576 */
} nm_mesh_adapter_config;

NM_API void nm_mesh_adapter_config_init(nm_mesh_adapter_config *cfg);

/* The adapter ops for nm_bus_config.adapter (adapter_config: a
 * `const nm_mesh_adapter_config *`, required). init fails with
 * NM_ENOTCONN when there is no session with cfg.peer. */
NM_API const nm_adapter_ops *nm_adapter_mesh(void);

typedef struct nm_mesh_bridge nm_mesh_bridge;

typedef struct nm_mesh_bridge_stats {
    uint64_t deliveries; /* packets taken from the node */
    uint64_t events;     /* events handed to the bus */
    uint64_t emitted;    /* accepted by the bus */
    uint64_t refused;    /* refused by the bus (its backpressure) */
} nm_mesh_bridge_stats;

/* Feed the events arriving on streams stream_base..stream_base+shards-1
 * (from any peer) into `bus`. stream_base 0 means the default. Errors as
 * nm_mesh_tap_streams, NM_ENOMEM. *out: nm_mesh_bridge_close. */
NM_API int nm_mesh_bridge_open(nm_mesh_t *mesh, nm_bus *bus,
                               uint64_t stream_base, uint32_t shards,
                               nm_mesh_bridge **out);
NM_API void nm_mesh_bridge_stats_get(nm_mesh_bridge *b,
                                     nm_mesh_bridge_stats *out);
/* Stop feeding (waits for a callback in progress) and free. */
NM_API void nm_mesh_bridge_close(nm_mesh_bridge *b);

NM_END_DECLS

#endif
