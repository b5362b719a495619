/*
 * src/wire/pingwave.h - the two unencrypted datagrams: the 72-byte
 * pingwave (upstream EnhancedPingwave, route discovery) and the 14-byte
 * NAT keep-alive ("PH" ‖ node_id ‖ punch_id). docs/PROTOCOL.md §8.8–8.9.
 * Pure codecs, no allocation.
 */
#ifndef NMI_WIRE_PINGWAVE_H
#define NMI_WIRE_PINGWAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/common.h>

#define NMI_WIRE_PINGWAVE_LEN 72
/* Initial TTL (upstream's proximity radius). */
#define NMI_WIRE_PINGWAVE_RADIUS 3
/* A pingwave whose hop_count is >= this is dropped (MAX_HOPS). */
#define NMI_WIRE_PINGWAVE_MAX_HOPS 16

/* Health byte (upstream HealthStatus); anything else is malformed. */
enum nmi_wire_health {
    NMI_WIRE_HEALTH_HEALTHY = 0,
    NMI_WIRE_HEALTH_DEGRADED = 1,
    NMI_WIRE_HEALTH_UNHEALTHY = 2,
    NMI_WIRE_HEALTH_UNKNOWN = 3,
};

typedef struct nmi_wire_pingwave {
    uint8_t origin[32]; /* the mesh puts node_id u64 LE in [0,8), zeros */
    uint64_t seq;       /* monotonic per origin */
    uint8_t ttl;        /* hops left */
    uint8_t hop_count;  /* hops so far */
    uint64_t origin_ts_us;
    uint64_t cap_hash;
    uint32_t cap_version;
    uint8_t load;   /* 0 idle .. 255 overloaded */
    uint8_t health; /* NMI_WIRE_HEALTH_* */
    /* primary capabilities (8 bytes) */
    bool gpu; /* byte 64: decoded as != 0, encoded as 0/1 */
    uint8_t model_slots;
    uint8_t mem_tier;
    uint8_t tools;
    uint32_t cap_flags;
} nmi_wire_pingwave;

/* Zero everything, then origin = node_id (LE in bytes 0..8), seq, ttl. */
void nmi_wire_pingwave_init(nmi_wire_pingwave *pw, uint64_t origin_node_id,
                            uint64_t seq, uint8_t ttl);
/* node_id of the origin: u64 LE of origin[0..8). */
uint64_t nmi_wire_pingwave_origin_node(const nmi_wire_pingwave *pw);

/* Write 72 bytes. NM_EINVAL for NULL or health > 3. */
int nmi_wire_pingwave_encode(const nmi_wire_pingwave *pw,
                             uint8_t out[NMI_WIRE_PINGWAVE_LEN]);
/* Parse exactly 72 bytes (len must be 72); health must be 0..3.
 * NM_EDECODE / NM_EINVAL. Does not look at the first two bytes (the
 * discriminator already has). */
NM_NODISCARD int nmi_wire_pingwave_decode(const uint8_t *buf, size_t len,
                                          nmi_wire_pingwave *pw);

/* Forward step: false when ttl == 0 (do not forward), else ttl - 1 and
 * hop_count + 1 (saturating), true. */
bool nmi_wire_pingwave_forward(nmi_wire_pingwave *pw);

/* ------------------------------------------------------ NAT keep-alive */

#define NMI_WIRE_KEEPALIVE_MAGIC 0x4850u /* bytes 50 48 ("PH") */
#define NMI_WIRE_KEEPALIVE_LEN 14

typedef struct nmi_wire_keepalive {
    uint64_t node_id;  /* the sender */
    uint32_t punch_id; /* the rendezvous correlation id */
} nmi_wire_keepalive;

void nmi_wire_keepalive_encode(const nmi_wire_keepalive *ka,
                               uint8_t out[NMI_WIRE_KEEPALIVE_LEN]);
/* Exactly 14 bytes starting 50 48. NM_EDECODE / NM_EINVAL. */
NM_NODISCARD int nmi_wire_keepalive_decode(const uint8_t *buf, size_t len,
                                           nmi_wire_keepalive *ka);

#endif
