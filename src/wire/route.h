/*
 * src/wire/route.h - multi-hop framing: the 18-byte routing header, the
 * relay's forward step, routed handshakes, and the authenticated
 * route-hop envelope ("RH") with its 128-entry per-edge replay window.
 * docs/PROTOCOL.md §8.6–8.7.
 *
 * A routed packet is RoutingHeader(18) ‖ inner Net packet, where the
 * inner packet is byte-for-byte what a direct packet would be (end-to-end
 * AEAD with the destination's session); relays touch only the routing
 * header. Pure codecs, no allocation.
 */
#ifndef NMI_WIRE_ROUTE_H
#define NMI_WIRE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/common.h>

#include "wire/header.h"

#define NMI_WIRE_ROUTE_MAGIC 0x5452u /* bytes 52 54 ("RT") */
#define NMI_WIRE_ROUTE_LEN 18
/* Initial TTLs: routed data and control, routed handshakes. */
#define NMI_WIRE_TTL_DATA 8
#define NMI_WIRE_TTL_HANDSHAKE 16

/* Routing flags (the low nibble; the high nibble is masked off on decode,
 * as upstream's RouteFlags::from_u8). */
enum nmi_wire_route_flag {
    NMI_WIRE_RF_CONTROL = 0x01,
    NMI_WIRE_RF_REQUIRES_ACK = 0x02,
    NMI_WIRE_RF_PRIORITY = 0x04,
    NMI_WIRE_RF_END_OF_STREAM = 0x08,
};
#define NMI_WIRE_RF_MASK 0x0Fu

typedef struct nmi_wire_route {
    uint8_t ttl;       /* hops left; 0 = expired, never forwarded */
    uint8_t hop_count; /* hops so far */
    uint8_t flags;     /* NMI_WIRE_RF_* */
    uint8_t reserved;  /* carried as is */
    uint32_t src_id;   /* nmi_wire_routing_id(origin node_id) */
    uint64_t dest_id;  /* full destination node_id */
} nmi_wire_route;

/* A fresh header: ttl, hop_count 0, flags 0 (upstream RoutingHeader::new).
 */
void nmi_wire_route_init(nmi_wire_route *r, uint64_t dest_id, uint32_t src_id,
                         uint8_t ttl);

/* Write 18 bytes. NM_EINVAL for NULL or flags outside the low nibble. */
int nmi_wire_route_encode(const nmi_wire_route *r,
                          uint8_t out[NMI_WIRE_ROUTE_LEN]);
/* Parse the first 18 bytes of buf[0..len): len >= 18, magic 52 54; flags
 * are masked to the low nibble. NM_EDECODE / NM_EINVAL. */
NM_NODISCARD int nmi_wire_route_decode(const uint8_t *buf, size_t len,
                                       nmi_wire_route *r);

/* The relay step, in place on a routed packet's first 18 bytes: refuse
 * (NM_EPROTO, nothing changed) when ttl == 0, else ttl - 1 and hop_count +
 * 1 (saturating at 255), and the flags byte re-masked to its low nibble
 * (upstream re-serializes the parsed header). NM_EDECODE if buf is not a
 * routing header. `out` (may be NULL) receives the new header. */
int nmi_wire_route_forward(uint8_t *buf, size_t len, nmi_wire_route *out);

/* Split a routed packet: decode the routing header and point *inner at
 * the bytes after it (the inner Net packet, not yet validated). */
NM_NODISCARD int nmi_wire_routed_split(const uint8_t *buf, size_t len,
                                       nmi_wire_route *r,
                                       const uint8_t **inner,
                                       size_t *inner_len);

/* A routed handshake: RoutingHeader(dest_id, src_id, TTL 16, flags 0) ‖
 * the handshake packet of nmi_wire_handshake_encode. Writes 18 + 68 +
 * noise_len bytes. Errors as nmi_wire_handshake_encode. */
int nmi_wire_routed_handshake_encode(uint64_t dest_id, uint32_t src_id,
                                     const uint8_t *noise, size_t noise_len,
                                     uint8_t *out, size_t cap,
                                     size_t *written);
/* Parse one: routing header + nmi_wire_handshake_decode on the rest. */
NM_NODISCARD int nmi_wire_routed_handshake_decode(const uint8_t *buf,
                                                  size_t len,
                                                  nmi_wire_route *r,
                                                  const uint8_t **noise,
                                                  size_t *noise_len);

/* ------------------------------------------------- route-hop envelope */

#define NMI_WIRE_HOP_MAGIC 0x5248u /* bytes 48 52 ("RH") */
/* magic(2) ‖ hop_session_id u64 ‖ hop_seq u64 */
#define NMI_WIRE_HOP_PREFIX_LEN 18
#define NMI_WIRE_HOP_TAG_LEN 16
/* Everything around the inner packet: prefix + routing header + tag. */
#define NMI_WIRE_HOP_OVERHEAD                                                 \
    (NMI_WIRE_HOP_PREFIX_LEN + NMI_WIRE_ROUTE_LEN + NMI_WIRE_HOP_TAG_LEN)
#define NMI_WIRE_HOP_KEY_LEN 32
/* The MAC domain, prepended to the tagged transcript (23 bytes). */
#define NMI_WIRE_HOP_DOMAIN "net.subnet.route-hop.v1"
/* Width of the per-edge replay window. */
#define NMI_WIRE_HOP_REPLAY_WINDOW 128

/* An opened (tag-verified) envelope; inner borrows the input. */
typedef struct nmi_wire_hop {
    uint64_t hop_session_id;
    uint64_t hop_seq;
    nmi_wire_route route;
    const uint8_t *inner;
    size_t inner_len;
} nmi_wire_hop;

/* Exact envelope size for an inner packet of inner_len bytes (52 + n). */
static inline size_t
nmi_wire_hop_sealed_len(size_t inner_len)
{
    return NMI_WIRE_HOP_OVERHEAD + inner_len;
}

/* The 16-byte tag: keyed BLAKE2s-256 (key = the 32-byte route-hop key of
 * the adjacent session, hop_tx on send, hop_rx on receive) over
 * domain ‖ hop_session_id LE ‖ hop_seq LE ‖ the 18 routing-header bytes ‖
 * inner, truncated to its first 16 bytes. The "RH" magic is not in the
 * transcript (as upstream). */
void nmi_wire_hop_tag(const uint8_t key[NMI_WIRE_HOP_KEY_LEN],
                      uint64_t hop_session_id, uint64_t hop_seq,
                      const uint8_t route_bytes[NMI_WIRE_ROUTE_LEN],
                      const uint8_t *inner, size_t inner_len,
                      uint8_t tag[NMI_WIRE_HOP_TAG_LEN]);

/* Seal "RH" ‖ hop_session_id ‖ hop_seq ‖ route ‖ inner ‖ tag into
 * out[0..cap). inner may alias out + 36 (it is moved, not copied). Errors:
 * NM_ETOOBIG (cap < nmi_wire_hop_sealed_len; nothing written), NM_EINVAL.
 */
int nmi_wire_hop_seal(const uint8_t key[NMI_WIRE_HOP_KEY_LEN],
                      uint64_t hop_session_id, uint64_t hop_seq,
                      const nmi_wire_route *route, const uint8_t *inner,
                      size_t inner_len, uint8_t *out, size_t cap,
                      size_t *written);

/* The only field readable before verification: which session's key to
 * try. NM_EDECODE unless the bytes have the envelope's shape (magic, a
 * valid routing header, length >= 52). */
NM_NODISCARD int nmi_wire_hop_peek_session(const uint8_t *buf, size_t len,
                                           uint64_t *hop_session_id);

/* Verify (constant time) and open an envelope. Errors: NM_EDECODE
 * (shape), NM_ECRYPTO (tag mismatch; generic detail). Replay admission is
 * the caller's nmi_wire_hop_replay_admit, after this succeeds. */
NM_NODISCARD int nmi_wire_hop_open(const uint8_t key[NMI_WIRE_HOP_KEY_LEN],
                                   const uint8_t *buf, size_t len,
                                   nmi_wire_hop *out);

/* Per-edge replay window over hop_seq (upstream HopReplayWindow): the
 * first sequence seen is accepted; afterwards a sequence is accepted once
 * if it is newer than the highest, or at most 128 behind it and unseen. */
typedef struct nmi_wire_hop_replay {
    uint64_t highest;
    uint64_t seen[2]; /* bit i: highest - 1 - i was admitted (i < 128) */
    bool started;
} nmi_wire_hop_replay;

void nmi_wire_hop_replay_init(nmi_wire_hop_replay *w);
/* Admit seq exactly once: true (recorded) or false (replay / too old). */
bool nmi_wire_hop_replay_admit(nmi_wire_hop_replay *w, uint64_t seq);

#endif
