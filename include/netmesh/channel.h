/*
 * netmesh/channel.h - authenticated channels (distributed pub/sub) over
 * the encrypted mesh (seed: "Channels (distributed pub/sub)", "Channel
 * authentication", "Channel surface", "Subnets"; docs/channels.md).
 *
 *   mesh.register_channel(ChannelConfig)   -> nm_channels_register
 *   mesh.subscribe_channel(peer, &name)    -> nm_channels_subscribe
 *   subscribe_channel_with(.., {token})    -> nm_subscribe_opts.token
 *   mesh.unsubscribe_channel(peer, &name)  -> nm_channels_unsubscribe
 *   mesh.publish(&name, bytes, cfg)        -> nm_channels_publish
 *   mesh.publish_many(&name, &[bytes], ..) -> nm_channels_publish_many
 *   SdkError::ChannelRejected(reason)      -> NM_ECHANREJECTED + reason
 *
 * A channel service is attached to one mesh node (nm_channels_open). It
 * speaks upstream's membership subprotocol 0x0A00 (Subscribe /
 * Unsubscribe / Ack, docs/PROTOCOL.md §8.12, §11) and publishes on the
 * channel's stream (1 << 48) | xxh3_64(name) over the encrypted sessions,
 * with the header's channel_hash / origin_hash set as upstream does.
 *
 * Both roles live in one service: a node publishes the channels it
 * registers, and subscribes to channels registered on other nodes.
 *
 * Threads. Every function is thread-safe. Membership requests are
 * answered on the node's I/O thread; received channel messages go to a
 * bounded queue drained by nm_channels_recv, a handler on a worker thread
 * of the service (never the I/O thread), or the readable eventfd.
 *
 * Lifetime. Close the service before its node:
 *   nm_channels_close(ch); nm_mesh_close(node);
 *
 * Errors: negative NM_E* codes (netmesh/error.h) with nm_errdetail().
 */
#ifndef NETMESH_CHANNEL_H
#define NETMESH_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/caps.h>
#include <netmesh/common.h>
#include <netmesh/mesh.h>
#include <netmesh/subnet.h>
#include <netmesh/token.h>

NM_BEGIN_DECLS

/* Membership subprotocol id (also the stream id of its messages). */
#define NM_CHANNEL_SUBPROTOCOL 0x0A00
/* Most channels one peer may be subscribed to on one publisher. */
#define NM_CHANNELS_PER_PEER_MAX 1024
/* Longest queue-group name in bytes. */
#define NM_CHANNEL_QUEUE_GROUP_MAX 255

typedef struct nm_channels nm_channels_t;

/* Why a publisher refused a request (upstream AckReason). */
typedef enum nm_channel_reason {
    NM_CHAN_OK = 0,
    NM_CHAN_UNAUTHORIZED = 1, /* caps, token, subnet, revoked, full */
    NM_CHAN_UNKNOWN_CHANNEL = 2,
    NM_CHAN_RATE_LIMITED = 3, /* too many auth failures: throttled */
    NM_CHAN_TOO_MANY_CHANNELS = 4,
    NM_CHAN_IDENTITY_NOT_ESTABLISHED = 5 /* decoded, never sent */
} nm_channel_reason;

/* "ok", "unauthorized", "unknown_channel", "rate_limited",
 * "too_many_channels", "identity_not_established" ("unknown" else). */
NM_API const char *nm_channel_reason_name(nm_channel_reason r);

/* The subscriber's entity id (ed25519 public key) as this node knows it,
 * e.g. from verified capability announcements. Return false when
 * unknown (a token is then refused: fail closed). Called with the
 * service's lock held: must not call into the service. */
typedef bool (*nm_channels_entity_fn)(void *ctx, uint64_t node_id,
                                      uint8_t out[NM_ENTITY_ID_BYTES]);
/* Unix seconds for token windows (tests, simulations). */
typedef uint64_t (*nm_channels_clock_fn)(void *ctx);
/* A node's capability set (a new set the caller frees), or false when
 * unknown. nm_discovery_caps_of (netmesh/discovery.h) is one. */
typedef bool (*nm_channels_caps_fn)(void *ctx, uint64_t node_id,
                                    nm_capset **out);

typedef struct nm_channels_config {
    size_t size; /* sizeof(nm_channels_config) */
    /* Capabilities of the peers and of this node (borrowed; the
     * announcement layer fills it). NULL = nothing known: a non-empty
     * caps filter then refuses (fail closed). */
    nm_capindex *caps;
    /* Or a lookup (takes precedence over caps): e.g. nm_discovery_caps_of
     * with the node's nm_discovery as ctx, so announcements gate
     * subscriptions. */
    nm_channels_caps_fn caps_of;
    void *caps_ctx;
    /* Subnets: this node's subnet (default GLOBAL) and the mesh-wide
     * policy deriving a peer's subnet from its capabilities (borrowed;
     * NULL = peer subnets unknown). */
    nm_subnet_id subnet;
    const nm_subnet_policy *subnet_policy;
    /* Token subject binding. NULL (default): the token's subject must be
     * the entity whose node id (nm_entity_node_id) is the session peer's
     * node id. Set: the subject must equal what fn returns
     * (nm_discovery_entity_of: the entity a peer's signed announcements
     * bound to its node id, trust on first use). */
    nm_channels_entity_fn entity_of;
    void *entity_ctx;
    nm_channels_clock_fn clock; /* NULL = wall clock */
    void *clock_ctx;
    uint32_t token_skew_secs;        /* default 60, at most 300 */
    uint32_t token_sweep_ms;         /* expiry sweep period; default 30000 */
    uint32_t auth_failure_limit;     /* per peer per window; default 16;
                                        65535 disables the limiter */
    uint32_t auth_failure_window_ms; /* default 60000 */
    uint32_t auth_throttle_ms;       /* RateLimited period; default 30000 */
    uint32_t ack_timeout_ms;         /* subscribe / unsubscribe default;
                                        default 5000 (upstream) */
    size_t rx_queue_max; /* received deliveries held; default 4096. Beyond
                            it new ones are dropped and counted. */
} nm_channels_config;

NM_API void nm_channels_config_init(nm_channels_config *cfg);

/* Attach a channel service to a node: registers the membership
 * subprotocol, the delivery filter and a tick hook. One service per node
 * (a second one: NM_EEXIST). Errors: NM_EINVAL, NM_ENOMEM, NM_EEXIST. */
NM_API int nm_channels_open(nm_mesh_t *mesh, const nm_channels_config *cfg,
                            nm_channels_t **out);
/* Detach the service from its node (which must still be open) and free
 * it. Blocked callers return NM_ECLOSED first. Not to be called from the
 * channel handler. NULL is a no-op. */
NM_API void nm_channels_close(nm_channels_t *ch);

/* ------------------------------------------------------------ publisher */

typedef struct nm_channel_config {
    size_t size;              /* sizeof(nm_channel_config) */
    const char *name;         /* validated by nm_channel_name_validate */
    nm_visibility visibility; /* default GLOBAL; EXPORTED: NM_ENOTSUP */
    bool reliable;            /* publish on reliable streams; default false */
    uint8_t priority;         /* stored, reported; not on the wire yet */
    /* Caps this node must have to publish / a peer must have to subscribe
     * (deep-copied; NULL = no requirement). */
    const nm_capfilter *publish_caps;
    const nm_capfilter *subscribe_caps;
    /* Subscribers must present a token chain (SUBSCRIBE scope, this
     * channel, live) rooted in one of token_roots (n x 32-byte entity
     * ids, copied; none = this node's own entity id). */
    bool require_token;
    const uint8_t *token_roots;
    size_t n_token_roots;
    uint32_t max_subscribers; /* 0 = no limit */
    uint32_t window_bytes;    /* stream credit per subscriber; 0 = the
                                 mesh default (65536) */
} nm_channel_config;

/* Defaults as documented above, name set (borrowed until register). */
NM_API void nm_channel_config_init(nm_channel_config *cfg, const char *name);

/* Install or replace a channel's config (replacing keeps the roster; the
 * new rules apply to later subscribes and, for visibility, to the next
 * publish). Errors: NM_EINVAL (bad name or config, with a detail),
 * NM_ENOTSUP (EXPORTED visibility), NM_ENOMEM. */
NM_API int nm_channels_register(nm_channels_t *ch,
                                const nm_channel_config *cfg);
/* Remove a channel and its roster. NM_ENOTFOUND if unknown. */
NM_API int nm_channels_unregister(nm_channels_t *ch, const char *name);

/* What a publish did. Subscribers skipped by visibility, the auth guard
 * or queue-group selection are in `filtered`, not in `attempted`. */
typedef struct nm_publish_report {
    size_t attempted; /* subscribers a send was tried to */
    size_t delivered; /* sends the transport accepted */
    size_t filtered;  /* subscribers left out (visibility, auth, groups) */
} nm_publish_report;

/* Fan one payload / a batch (one call per subscriber, in order, packed
 * into packets) out to the channel's current subscribers. A failed send
 * (back-pressure, peer gone) counts as attempted, not delivered. Errors:
 * NM_ENOTFOUND (unknown channel), NM_EUNAUTHORIZED (this node's caps fail
 * publish_caps: nobody attempted), NM_ETOOBIG, NM_EINVAL, NM_ECLOSED. */
NM_API int nm_channels_publish(nm_channels_t *ch, const char *name,
                               const void *data, size_t len,
                               nm_publish_report *report);
NM_API int nm_channels_publish_many(nm_channels_t *ch, const char *name,
                                    const void *const *data,
                                    const size_t *lens, size_t n,
                                    nm_publish_report *report);

/* Drop node_id from the channel's roster and auth guard (effective on the
 * next publish) and refuse its later subscribes to this channel
 * (Unauthorized) until nm_channels_unrevoke. NM_ENOTFOUND: unknown
 * channel. */
NM_API int nm_channels_revoke(nm_channels_t *ch, const char *name,
                              uint64_t node_id);
NM_API int nm_channels_unrevoke(nm_channels_t *ch, const char *name,
                                uint64_t node_id);

/* The channel's subscribers (node ids, ascending) into out[0..max); *n
 * gets the count (may exceed max). NM_ENOTFOUND: unknown channel. */
NM_API int nm_channels_subscribers(nm_channels_t *ch, const char *name,
                                   uint64_t *out, size_t max, size_t *n);

/* ----------------------------------------------------------- subscriber */

typedef struct nm_subscribe_opts {
    size_t size;                 /* sizeof(nm_subscribe_opts) */
    const nm_token_chain *token; /* presented; NULL = none */
    const char *queue_group;     /* NULL/"" = broadcast; else one member
                                    of the group gets each publish */
} nm_subscribe_opts;

/* Ask `publisher` to add this node to channel `name` and wait for its Ack
 * (timeout_ms 0 = the configured default, 5 s). A repeated subscribe
 * replaces token and group. Errors: NM_ECHANREJECTED (the Ack refused:
 * *reason, when non-NULL, and nm_errdetail() name why), NM_ETIMEDOUT (no
 * Ack), NM_ENOTCONN (no session), NM_EINVAL, NM_ECLOSED. Must not be
 * called from the channel handler. */
NM_API int nm_channels_subscribe(nm_channels_t *ch, uint64_t publisher,
                                 const char *name,
                                 const nm_subscribe_opts *opts, int timeout_ms,
                                 nm_channel_reason *reason);
/* Leave a channel: stops taking its messages at once, then tells the
 * publisher and waits for its Ack. Idempotent: not being subscribed is
 * fine on both sides. Errors as nm_channels_subscribe. */
NM_API int nm_channels_unsubscribe(nm_channels_t *ch, uint64_t publisher,
                                   const char *name, int timeout_ms,
                                   nm_channel_reason *reason);

/* One received packet of a channel: its messages in publish order. */
typedef struct nm_channel_delivery {
    const char *channel; /* the channel name (NUL-terminated) */
    uint64_t publisher;  /* node id */
    uint64_t seq;        /* the stream sequence */
    size_t count;
    const nm_mesh_msg *msgs;
} nm_channel_delivery;

/* Take the next delivery, waiting up to timeout_ms (0 = do not wait, -1 =
 * forever). Free *out with nm_channel_delivery_free. Errors: NM_EAGAIN,
 * NM_ETIMEDOUT, NM_ECLOSED. Not to be mixed with a handler. */
NM_API int nm_channels_recv(nm_channels_t *ch, int timeout_ms,
                            nm_channel_delivery **out);
NM_API void nm_channel_delivery_free(nm_channel_delivery *d);

/* Deliver through fn on a worker thread of the service instead (one
 * delivery at a time; fn must not free it). NULL stops the worker. */
typedef void (*nm_channel_handler)(void *ctx, const nm_channel_delivery *d);
NM_API int nm_channels_set_handler(nm_channels_t *ch, nm_channel_handler fn,
                                   void *ctx);

/* Readable (eventfd) while a delivery is queued. Owned by the service. */
NM_API int nm_channels_fd(const nm_channels_t *ch);

typedef struct nm_channels_stats {
    /* publisher side */
    uint64_t subscribes_accepted;
    uint64_t subscribes_rejected; /* every refusal, any reason */
    uint64_t rate_limited;        /* answered RateLimited */
    uint64_t token_verifications; /* chains checked (ed25519) */
    uint64_t expired_evictions;   /* removed by the expiry sweep */
    uint64_t guard_denials;       /* publish skipped by the auth guard */
    uint64_t publishes;
    /* subscriber side */
    uint64_t deliveries;         /* channel deliveries queued */
    uint64_t deliveries_dropped; /* queue full */
    uint64_t unsolicited;        /* channel traffic of no subscription */
    uint64_t bad_membership;     /* undecodable 0x0A00 messages */
} nm_channels_stats;

NM_API void nm_channels_stats_get(nm_channels_t *ch, nm_channels_stats *out);

NM_END_DECLS

#endif
