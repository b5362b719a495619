/*
 * netmesh/discovery.h - capability announcements over the mesh: a node
 * announces its capability set, every node floods the signed
 * announcements it accepts to its neighbours, and each node answers
 * find_nodes / find_best_node queries from its local index (itself
 * included). Upstream Net's `CapabilityAnnouncement` (subprotocol 0x0C00,
 * docs/PROTOCOL.md §9.1, docs/capabilities.md "Announcements over the
 * mesh").
 *
 * Rust seed -> C:
 *   mesh.announce_capabilities(caps)       -> nm_discovery_announce
 *   mesh.find_nodes(filter)                -> nm_discovery_find_nodes
 *   mesh.find_nodes_scoped(filter, scope)  -> nm_discovery_find_nodes_scoped
 *   mesh.find_best_node(_scoped)(req, ..)  -> nm_discovery_find_best_node
 *   min_announce_interval setter           -> nm_discovery_set_min_announce_
 *                                             interval
 *   require_signed_capabilities, capability_gc_interval
 *                                          -> nm_discovery_config
 *
 * A discovery object attaches to one mesh node (at most one per node): it
 * registers the node's 0x0C00 handler, a peer-up hook (a node announces
 * itself to every new neighbour) and a tick hook (debounced and
 * rate-limited broadcasts, re-announcement before the TTL runs out, the
 * index GC). Nothing is announced until nm_discovery_announce is called;
 * announcements from others are received and indexed from open on.
 *
 * Threads. Every nm_discovery_* call is thread-safe. Announcing never
 * sends on the calling thread: broadcasts leave from the node's I/O thread
 * (or, on the tests' manual driver, inside its tick). The handler
 * (nm_discovery_set_handler) runs on the node's I/O thread.
 *
 * Lifetime. Close the discovery object before its mesh node. Not to be
 * closed from its own handler.
 *
 * Errors: negative NM_E* codes (netmesh/error.h) with nm_errdetail().
 */
#ifndef NETMESH_DISCOVERY_H
#define NETMESH_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/caps.h>
#include <netmesh/common.h>
#include <netmesh/error.h>
#include <netmesh/mesh.h>

NM_BEGIN_DECLS

/* The subprotocol (and stream id) of capability announcements. */
#define NM_DISCOVERY_SUBPROTOCOL 0x0C00u
/* Upstream's MAX_CAPABILITY_HOPS: an announcement is forwarded while its
 * hop_count is below NM_DISCOVERY_MAX_HOPS - 1. */
#define NM_DISCOVERY_MAX_HOPS 16u

typedef struct nm_discovery nm_discovery;

typedef struct nm_discovery_config {
    size_t size;       /* sizeof(nm_discovery_config) */
    uint32_t ttl_secs; /* announced TTL; receivers drop the entry this long
                          after they accepted it. Default 300, >= 1 */
    uint32_t reannounce_ms; /* re-announce period; default 0 = half the
                               TTL (150 s) */
    uint32_t min_announce_interval_ms; /* at most one broadcast of a
                                          changed set per interval;
                                          default 10000 */
    uint32_t debounce_ms;    /* a change waits this long for more changes
                                before it is broadcast; default 100 */
    uint32_t gc_interval_ms; /* index GC period; default 60000, >= 1 */
    uint32_t max_hops;       /* 1..16; default 16 (upstream) */
    bool require_signed;     /* reject unsigned announcements; default
                                true (a present signature is always
                                verified) */
    bool sync_on_connect;    /* extension, default true: a new neighbour
                                also gets the latest accepted announcement
                                of every other node this node indexes (as
                                a forward, hop_count + 1), so a node that
                                joins late learns the mesh at once instead
                                of at the next re-announcement */
    uint32_t max_origins;    /* nodes remembered (TOFU keys, dedup state);
                                announcements of further new nodes are
                                dropped and counted; default 65536 */
} nm_discovery_config;

/* Defaults as documented above. Thread-safe. */
NM_API void nm_discovery_config_init(nm_discovery_config *cfg);

/* Attach discovery to a mesh node (cfg NULL = defaults). Errors:
 * NM_EINVAL (NULL, bad config: the detail names the field), NM_EEXIST
 * (the node already has a 0x0C00 handler: one discovery per node),
 * NM_ERANGE (the node's extension slots are full), NM_ENOMEM. *out:
 * nm_discovery_close. */
NM_API int nm_discovery_open(nm_mesh_t *mesh, const nm_discovery_config *cfg,
                             nm_discovery **out);

/* Detach from the node (waits for a handler call in progress on the I/O
 * thread) and free. NULL is a no-op. */
NM_API void nm_discovery_close(nm_discovery *d);

/* Set (replace) our capability set (copied). The local index reflects it
 * at once (self-match); the broadcast to neighbours follows after
 * debounce_ms, and no sooner than min_announce_interval_ms after the
 * previous broadcast, so a burst of calls becomes one announcement of the
 * last set. A new neighbour always gets the latest set. Errors: NM_EINVAL,
 * NM_ETOOBIG (the signed announcement would exceed one 8104-byte event),
 * NM_ENOMEM. */
NM_API int nm_discovery_announce(nm_discovery *d, const nm_capset *caps);

/* Change the rate limit (ms, 0 = none) and reset its floor: the next
 * change is broadcast after the debounce alone. NM_EINVAL. */
NM_API int nm_discovery_set_min_announce_interval(nm_discovery *d,
                                                  uint32_t ms);

/* Queries of the local index (netmesh/caps.h semantics: ids ascending and
 * de-duplicated, *ids malloc'd, NULL when *n is 0; this node included when
 * its own set matches). Errors: NM_EINVAL, NM_ENOMEM. best: NM_ENOTFOUND
 * when nothing matches. */
NM_API int nm_discovery_find_nodes(nm_discovery *d, const nm_capfilter *f,
                                   uint64_t **ids, size_t *n);
NM_API int nm_discovery_find_nodes_scoped(nm_discovery *d,
                                          const nm_capfilter *f,
                                          const nm_scope_filter *scope,
                                          uint64_t **ids, size_t *n);
NM_API int nm_discovery_find_best_node(nm_discovery *d, const nm_capreq *req,
                                       const nm_scope_filter *scope,
                                       uint64_t *node_id);

/* A copy of node_id's indexed set (nm_capset_free) and, when non-NULL,
 * its announcement version (0 for this node). NM_ENOTFOUND. */
NM_API int nm_discovery_get(nm_discovery *d, uint64_t node_id, nm_capset **out,
                            uint64_t *version);
/* Lookups shaped for the channel service (netmesh/channel.h): ctx is the
 * nm_discovery. caps_of: a copy of node_id's announced set (free with
 * nm_capset_free), false when unknown. entity_of: the entity id its
 * signed announcements bound to node_id (trust on first use), false when
 * none yet. Thread-safe. */
NM_API bool nm_discovery_caps_of(void *discovery, uint64_t node_id,
                                 nm_capset **out);
NM_API bool nm_discovery_entity_of(void *discovery, uint64_t node_id,
                                   uint8_t out[NM_ENTITY_ID_BYTES]);

/* Entries in the local index (this node included once it announced). */
NM_API size_t nm_discovery_count(nm_discovery *d);

/* Called (on the node's I/O thread, unlocked) for every accepted
 * announcement: new (node_id, version), verified, indexed. `caps` is
 * valid during the call. hop_count = hops it travelled (0 = from the
 * origin itself). The handler may call nm_discovery_* queries and
 * nm_mesh_* functions, not nm_discovery_close. fn NULL removes it. */
typedef void (*nm_discovery_handler)(void *ctx, uint64_t node_id,
                                     const nm_capset *caps, uint64_t version,
                                     uint32_t hop_count);
NM_API int nm_discovery_set_handler(nm_discovery *d, nm_discovery_handler fn,
                                    void *ctx);

typedef struct nm_discovery_stats {
    uint64_t broadcasts;      /* own announcements built and broadcast */
    uint64_t sent;            /* 0x0C00 messages sent (own, forwards, sync) */
    uint64_t received;        /* 0x0C00 messages received */
    uint64_t accepted;        /* new, verified, indexed */
    uint64_t forwarded;       /* copies forwarded to neighbours */
    uint64_t duplicates;      /* (node_id, version, direct) seen before */
    uint64_t own;             /* our own announcement came back: dropped */
    uint64_t rejected_decode; /* malformed JSON / fields */
    uint64_t rejected_hops;   /* hop_count >= max_hops */
    uint64_t rejected_origin; /* hop 0 but node_id != session peer */
    uint64_t rejected_unsigned;  /* no signature, require_signed */
    uint64_t rejected_signature; /* signature does not verify */
    uint64_t rejected_binding;   /* node_id is not entity_id's */
    uint64_t rejected_tofu;      /* entity key differs from the first */
    uint64_t rejected_full;      /* max_origins reached */
    uint64_t expired;            /* index entries dropped by the GC */
} nm_discovery_stats;

NM_API void nm_discovery_stats_get(nm_discovery *d, nm_discovery_stats *out);

NM_END_DECLS

#endif
