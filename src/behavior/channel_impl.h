/*
 * src/behavior/channel_impl.h - internals of the channel service
 * (include/netmesh/channel.h): the AuthGuard, the auth-failure limiter,
 * the publisher registry and the subscriber side.
 *
 * Locking: one service mutex (ch->mu). The mesh's delivery filter runs
 * with the node mutex held and takes ch->mu, so the order is node mutex
 * -> ch->mu: nothing here calls into the mesh while holding ch->mu.
 */
#ifndef NMI_CHANNEL_IMPL_H
#define NMI_CHANNEL_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <netmesh/channel.h>

#include "core/u64map.h"

/* ---- AuthGuard (upstream channel/guard.rs) ------------------------- */

#define NMI_GUARD_BITS 32768u /* 2^15 bits = 4 KiB */
#define NMI_GUARD_MASK (NMI_GUARD_BITS - 1u)
#define NMI_GUARD_DOMAIN_NODE 1
#define NMI_GUARD_DOMAIN_ORIGIN 2

typedef struct nmi_guard_entry {
    uint64_t principal, chan;
    uint8_t domain;
    struct nmi_guard_entry *next;
} nmi_guard_entry;

/* Bloom filter (two probes) in front of an exact set of (principal,
 * channel hash, domain). Allow sets both; revoke removes from the exact
 * set only (the bloom keeps stale bits until the next rebuild, which the
 * exact set makes harmless). Not thread-safe: the owner locks. */
typedef struct nmi_guard {
    uint64_t bloom[NMI_GUARD_BITS / 64];
    nmi_u64map exact; /* key -> chain of nmi_guard_entry */
    size_t len;
    size_t stale; /* revocations since the last rebuild */
} nmi_guard;

void nmi_guard_init(nmi_guard *g);
void nmi_guard_fini(nmi_guard *g);
/* key = xxh3_64(principal u64 LE || chan_hash u64 LE || domain u8). */
uint64_t nmi_guard_key(uint64_t principal, uint64_t chan, uint8_t domain);
int nmi_guard_allow(nmi_guard *g, uint64_t principal, uint64_t chan,
                    uint8_t domain);
/* Returns true when something was removed. */
bool nmi_guard_revoke(nmi_guard *g, uint64_t principal, uint64_t chan,
                      uint8_t domain);
/* The publish fast path: bloom negative -> false at once; else the exact
 * set decides. */
bool nmi_guard_check(const nmi_guard *g, uint64_t principal, uint64_t chan,
                     uint8_t domain);
/* Recompute the bloom from the exact set (drops stale bits). */
void nmi_guard_rebuild(nmi_guard *g);

/* ---- auth-failure limiter ----------------------------------------- */

typedef struct nmi_limiter_entry {
    uint64_t window_start_us;
    uint32_t failures;
    uint64_t throttled_until_us;
} nmi_limiter_entry;

typedef struct nmi_limiter {
    nmi_u64map peers; /* node id -> nmi_limiter_entry */
    uint32_t limit;   /* 65535: disabled */
    uint64_t window_us, throttle_us;
} nmi_limiter;

void nmi_limiter_init(nmi_limiter *l, uint32_t limit, uint64_t window_us,
                      uint64_t throttle_us);
void nmi_limiter_fini(nmi_limiter *l);
/* Is the peer throttled now? */
bool nmi_limiter_throttled(nmi_limiter *l, uint64_t peer, uint64_t now_us);
/* Count one authorization failure (may start a throttle). */
void nmi_limiter_fail(nmi_limiter *l, uint64_t peer, uint64_t now_us);
/* A successful subscribe clears the peer's counter. */
void nmi_limiter_clear(nmi_limiter *l, uint64_t peer);
/* Forget idle peers (window over, not throttled). */
void nmi_limiter_sweep(nmi_limiter *l, uint64_t now_us);

/* ---- publisher registry -------------------------------------------- */

typedef struct nmi_csub {
    uint64_t node;
    char *group;      /* NULL = broadcast */
    uint64_t expires; /* Unix seconds (token not_after), 0 = no token */
} nmi_csub;

typedef struct nmi_cgroup {
    char *name;
    uint64_t rr;
} nmi_cgroup;

typedef struct nmi_filter_copy nmi_filter_copy; /* a deep-copied filter */

typedef struct nmi_chan {
    char name[NM_CHANNEL_NAME_MAX + 1];
    size_t name_len;
    uint64_t hash, stream_id;
    uint16_t hash16;
    nm_visibility vis;
    bool reliable;
    uint8_t priority;
    nmi_filter_copy *pub_caps, *sub_caps;
    bool require_token;
    uint8_t (*roots)[NM_ENTITY_ID_BYTES];
    size_t nroots;
    uint32_t max_subs, window;
    nmi_csub *subs; /* sorted by node id */
    size_t nsubs, subs_cap;
    nmi_cgroup *groups;
    size_t ngroups;
    uint64_t *revoked;
    size_t nrevoked;
} nmi_chan;

/* ---- subscriber side ----------------------------------------------- */

typedef struct nmi_mysub {
    uint64_t publisher, stream_id, hash;
    char name[NM_CHANNEL_NAME_MAX + 1];
    bool active; /* false until the Ack (deliveries are taken meanwhile) */
    struct nmi_mysub *next;
} nmi_mysub;

typedef struct nmi_creq {
    uint64_t nonce, publisher;
    bool subscribe;
    bool created; /* the request created `sub` (removed on refusal) */
    bool done;
    uint8_t reason;
    nmi_mysub *sub; /* subscribe: the pending subscription */
    struct nmi_creq *next;
} nmi_creq;

typedef struct nmi_chdel {
    nm_channel_delivery pub;
    nm_mesh_delivery *md;
    char name[NM_CHANNEL_NAME_MAX + 1];
    struct nmi_chdel *next;
} nmi_chdel;

struct nm_channels {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* acks, queue, close */
    nm_mesh_t *m;
    nm_channels_config cfg;
    uint64_t self_id, origin;
    uint8_t self_entity[NM_ENTITY_ID_BYTES];
    bool closed;
    bool attached; /* hooks registered on the node */
    unsigned waiters;

    /* publisher */
    nmi_u64map chans;      /* channel hash -> nmi_chan */
    nmi_u64map peer_count; /* node id -> (uintptr_t) channels subscribed */
    nmi_guard guard;
    nmi_limiter limiter;
    uint64_t last_sweep_us;

    /* subscriber */
    nmi_u64map mysubs; /* stream id -> nmi_mysub chain */
    nmi_creq *reqs;
    nmi_chdel *q_head, *q_tail;
    size_t q_len;
    int evfd;
    nm_channel_handler handler;
    void *handler_ctx;
    pthread_t worker;
    bool worker_running, worker_stop;

    nm_channels_stats stats;
};

/* channel.c: the membership subprotocol handler, the tick hook. */
void nmi_channels_on_membership(void *ctx, nm_mesh_t *m, uint64_t peer,
                                uint16_t sp, uint64_t stream_id,
                                const uint8_t *payload, size_t len,
                                uint16_t event_count, int hop_count);
void nmi_channels_on_tick(void *ctx, nm_mesh_t *m, uint64_t now_us);
/* channel_rx.c */
bool nmi_channels_filter(void *ctx, nm_mesh_delivery *d);
/* An Ack from `peer` (called with ch->mu held). */
void nmi_channels_on_ack(nm_channels_t *ch, uint64_t peer, uint64_t nonce,
                         bool accepted, uint8_t reason);
void nmi_channels_rx_fini(nm_channels_t *ch);
uint64_t nmi_channels_unix_now(const nm_channels_t *ch);

/* ---- non-blocking membership requests (manual driver tests) --------- */

/* Send a Subscribe / Unsubscribe and return its nonce without waiting. */
int nmi_channels_subscribe_start(nm_channels_t *ch, uint64_t publisher,
                                 const char *name,
                                 const nm_subscribe_opts *opts,
                                 uint64_t *nonce);
int nmi_channels_unsubscribe_start(nm_channels_t *ch, uint64_t publisher,
                                   const char *name, uint64_t *nonce);
/* NM_EAGAIN while no Ack came; then (once) NM_OK or NM_ECHANREJECTED with
 * *reason. NM_ENOTFOUND for an unknown nonce. */
int nmi_channels_request_poll(nm_channels_t *ch, uint64_t nonce,
                              nm_channel_reason *reason);
/* Give up on a request (timeout): a pending subscription is dropped. */
void nmi_channels_request_cancel(nm_channels_t *ch, uint64_t nonce);

#endif
