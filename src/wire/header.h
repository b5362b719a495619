/*
 * src/wire/header.h - the 68-byte NetHeader of upstream Net wire v1, its
 * 56-byte AAD and nonce, the packet length rule, handshake framing, the
 * first-bytes discriminator, and the protocol's ids and limits.
 * docs/PROTOCOL.md §8 has the byte tables and every choice made here.
 *
 * Pure codecs over caller buffers: no I/O, no allocation, no global
 * state, thread-safe. Decoders return NM_EDECODE (with a detail for
 * nm_errdetail()) for malformed bytes, encoders NM_ETOOBIG for values over
 * a protocol limit or a too-small output buffer and NM_EINVAL for bad
 * arguments. Decoded outputs are untouched on error.
 *
 * All integers on the wire are little-endian.
 */
#ifndef NMI_WIRE_HEADER_H
#define NMI_WIRE_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/common.h>

/* ------------------------------------------------------------ sizes */

#define NMI_WIRE_MAGIC 0x4E45u /* bytes 45 4E ("EN") */
#define NMI_WIRE_VERSION 1u
#define NMI_WIRE_HEADER_LEN 68
#define NMI_WIRE_NONCE_LEN 12
#define NMI_WIRE_NONCE_OFF 12 /* nonce at header bytes [12, 24) */
#define NMI_WIRE_TAG_LEN 16
#define NMI_WIRE_AAD_LEN 56
#define NMI_WIRE_MAX_PACKET 8192
/* 8192 - 68 - 16: the largest ciphertext (tag not counted). */
#define NMI_WIRE_MAX_PAYLOAD 8108
/* 8108 / 4: every event needs at least its u32 length. */
#define NMI_WIRE_MAX_EVENTS 2027
/* A heartbeat: the header and the tag of an empty plaintext. */
#define NMI_WIRE_HEARTBEAT_LEN (NMI_WIRE_HEADER_LEN + NMI_WIRE_TAG_LEN)
/* Bytes a sealed packet adds around its plaintext payload (84). Upstream's
 * credit cost of a packet is payload + this. */
#define NMI_WIRE_PACKET_OVERHEAD (NMI_WIRE_HEADER_LEN + NMI_WIRE_TAG_LEN)

/* ------------------------------------------------------------ flags */

enum nmi_wire_flag {
    NMI_WIRE_F_RELIABLE = 0x01,  /* reliable-stream data */
    NMI_WIRE_F_NACK = 0x02,      /* defined, unused by the mesh */
    NMI_WIRE_F_PRIORITY = 0x04,  /* defined, unused by the mesh */
    NMI_WIRE_F_FIN = 0x08,       /* defined, unused by the mesh */
    NMI_WIRE_F_HANDSHAKE = 0x10, /* Noise message, no AEAD */
    NMI_WIRE_F_HEARTBEAT = 0x20, /* AEAD over an empty plaintext */
};
/* Bits 6 and 7: reserved; decode rejects them, encode refuses them. */
#define NMI_WIRE_F_RESERVED 0xC0u

/* ------------------------------------------------------- subprotocols */

enum nmi_wire_subprotocol {
    NMI_WIRE_SP_EVENTS = 0x0000, /* the event plane */
    NMI_WIRE_SP_CAUSAL = 0x0400,
    NMI_WIRE_SP_SNAPSHOT = 0x0401,
    NMI_WIRE_SP_MIGRATION = 0x0500,
    NMI_WIRE_SP_NEGOTIATION = 0x0600, /* defined, never exchanged */
    NMI_WIRE_SP_CONTINUITY = 0x0700,
    NMI_WIRE_SP_FORK = 0x0701,
    NMI_WIRE_SP_PROOF = 0x0702,
    NMI_WIRE_SP_PARTITION = 0x0800,
    NMI_WIRE_SP_RECONCILE = 0x0801,
    NMI_WIRE_SP_REPLICA_GROUP = 0x0900,
    NMI_WIRE_SP_MEMBERSHIP = 0x0A00,
    NMI_WIRE_SP_STREAM_WINDOW = 0x0B00,
    NMI_WIRE_SP_STREAM_NACK = 0x0B01,
    NMI_WIRE_SP_STREAM_RESET = 0x0B02,
    NMI_WIRE_SP_STREAM_ACK_RANGES = 0x0B03,
    NMI_WIRE_SP_CAPABILITY = 0x0C00,
    NMI_WIRE_SP_ROUTE_WITHDRAW = 0x0C01,
    NMI_WIRE_SP_SENSING_INTEREST = 0x0C02,
    NMI_WIRE_SP_SENSING_ATTEST = 0x0C03,
    NMI_WIRE_SP_SCOPED_CAPABILITY = 0x0C04,
    NMI_WIRE_SP_NAT_REFLEX = 0x0D00,
    NMI_WIRE_SP_RENDEZVOUS = 0x0D01,
    NMI_WIRE_SP_REDEX = 0x0E00,
    NMI_WIRE_SP_MESHDB = 0x0F00,
    NMI_WIRE_SP_FOLD = 0x1000,
    NMI_WIRE_SP_BLOB = 0x1100,
    NMI_WIRE_SP_VENDOR_FIRST = 0x2200, /* vendor: 0x2200..0xEFFF */
    NMI_WIRE_SP_EXPERIMENTAL_FIRST = 0xF000,
};

/* The stream id of grants, NACKs, ACK ranges and resets (u64::MAX).
 * Membership and capability messages use stream_id = subprotocol id. */
#define NMI_WIRE_CONTROL_STREAM_ID UINT64_MAX
/* The bit OR-ed into a channel's publish stream id. */
#define NMI_WIRE_CHANNEL_STREAM_BIT (UINT64_C(1) << 48)

/* A printable name for a subprotocol id ("membership", "stream-window",
 * "vendor", "experimental", "unknown"...). Never NULL. */
const char *nmi_wire_subprotocol_name(uint16_t id);

/* stream_id_from_key = xxh3_64(key) (no seed). */
uint64_t nmi_wire_stream_id_from_key(const void *key, size_t len);
/* A channel's publish stream: (1 << 48) | xxh3_64(name). */
uint64_t nmi_wire_channel_stream_id(const char *name, size_t len);
/* The header's channel hint: xxh3_64(name) truncated to u16 (low bits). */
uint16_t nmi_wire_channel_hash16(const char *name, size_t len);
/* The routing id of a node: node_id as u32 (low 32 bits). */
static inline uint32_t
nmi_wire_routing_id(uint64_t node_id)
{
    return (uint32_t)node_id;
}

/* ------------------------------------------------------------ header */

/* The header fields in host order. magic and version are not stored: the
 * encoder always writes 45 4E 01, the decoder requires them. */
typedef struct nmi_wire_header {
    uint8_t flags; /* NMI_WIRE_F_* */
    uint8_t priority;
    uint8_t hop_ttl;
    uint8_t hop_count; /* not authenticated (AAD byte 6 is 0) */
    uint8_t frag_flags;
    uint16_t subprotocol_id;
    uint16_t channel_hash;
    uint8_t nonce[NMI_WIRE_NONCE_LEN]; /* prefix(4) ‖ counter u64 LE */
    uint64_t session_id;
    uint64_t stream_id;
    uint64_t sequence;
    uint64_t origin_hash;
    uint32_t subnet_id;
    uint16_t fragment_id;     /* unused upstream (no fragmentation) */
    uint16_t fragment_offset; /* unused upstream */
    uint16_t payload_len;     /* ciphertext bytes, tag not counted */
    uint16_t event_count;
} nmi_wire_header;

/* Zero every field, then set flags, session, stream and sequence (the
 * shape of upstream's NetHeader::new; the nonce stays zero until the
 * packet is sealed). */
void nmi_wire_header_init(nmi_wire_header *h, uint8_t flags,
                          uint64_t session_id, uint64_t stream_id,
                          uint64_t sequence);

/* Write the 68 header bytes. Errors: NM_EINVAL (NULL, reserved flag bits
 * set), NM_ETOOBIG (payload_len > 8108 or event_count > 2027). */
int nmi_wire_header_encode(const nmi_wire_header *h,
                           uint8_t out[NMI_WIRE_HEADER_LEN]);

/* Parse the first 68 bytes of buf[0..len) (len may be larger: the
 * payload follows). Checks: len >= 68, magic 45 4E, version 1, reserved
 * flags clear, payload_len <= 8108, event_count <= 2027. The packet
 * length rule is separate (nmi_wire_packet_check). Errors: NM_EDECODE,
 * NM_EINVAL (NULL). */
NM_NODISCARD int nmi_wire_header_decode(const uint8_t *buf, size_t len,
                                        nmi_wire_header *h);

/* The packet length rule: a handshake (flag 0x10) is exactly 68 +
 * payload_len bytes; every other packet is 68 + payload_len + 16.
 * Returns NM_OK or NM_EDECODE. */
NM_NODISCARD int nmi_wire_packet_check(const nmi_wire_header *h,
                                       size_t packet_len);

/* Header decode + length rule in one call. *body points into buf at
 * offset 68 (ciphertext ‖ tag, or the Noise bytes of a handshake) and
 * *body_len is its length. body/body_len may be NULL. */
NM_NODISCARD int nmi_wire_packet_parse(const uint8_t *buf, size_t len,
                                       nmi_wire_header *h,
                                       const uint8_t **body, size_t *body_len);

/* What a valid header is, for dispatch. HANDSHAKE wins over HEARTBEAT
 * (upstream tests the handshake flag first); anything else is DATA. */
typedef enum nmi_wire_packet_kind {
    NMI_WIRE_PACKET_DATA = 0,
    NMI_WIRE_PACKET_HANDSHAKE,
    NMI_WIRE_PACKET_HEARTBEAT,
} nmi_wire_packet_kind;

static inline nmi_wire_packet_kind
nmi_wire_packet_kind_of(const nmi_wire_header *h)
{
    if (h->flags & NMI_WIRE_F_HANDSHAKE) {
        return NMI_WIRE_PACKET_HANDSHAKE;
    }
    if (h->flags & NMI_WIRE_F_HEARTBEAT) {
        return NMI_WIRE_PACKET_HEARTBEAT;
    }
    return NMI_WIRE_PACKET_DATA;
}

/* ------------------------------------------------------- AAD and nonce */

/* The 56-byte AAD of a header: bytes [0,12) of the header with byte 6
 * (hop_count) forced to 0, then bytes [24,68) (the nonce left out). */
void nmi_wire_aad(const nmi_wire_header *h, uint8_t aad[NMI_WIRE_AAD_LEN]);
/* The same from 68 encoded header bytes (no validation). */
void nmi_wire_aad_from_bytes(const uint8_t hdr[NMI_WIRE_HEADER_LEN],
                             uint8_t aad[NMI_WIRE_AAD_LEN]);

/* The nonce prefix of a session: u32 LE of
 * ((u32)sid ^ (u32)(sid >> 32)). Equal to nmi_session's nonce_prefix. */
void nmi_wire_nonce_prefix(uint64_t session_id, uint8_t prefix[4]);
/* The 12-byte nonce: prefix(session_id) ‖ counter u64 LE. */
void nmi_wire_nonce(uint64_t session_id, uint64_t counter,
                    uint8_t nonce[NMI_WIRE_NONCE_LEN]);
/* Store the nonce for (h->session_id, counter) in h->nonce. */
void nmi_wire_header_set_counter(nmi_wire_header *h, uint64_t counter);
/* The AEAD counter of a header: u64 LE of nonce[4..12). The prefix bytes
 * are not checked (the receiver recomputes them from its session). */
uint64_t nmi_wire_header_counter(const nmi_wire_header *h);
/* Rewrite the nonce of an encoded header in place (after sealing: the
 * AAD does not cover the nonce). */
void nmi_wire_write_nonce(uint8_t hdr[NMI_WIRE_HEADER_LEN],
                          uint64_t session_id, uint64_t counter);
/* The counter of an encoded header. */
uint64_t nmi_wire_read_counter(const uint8_t hdr[NMI_WIRE_HEADER_LEN]);

/* --------------------------------------------------------- heartbeat */

/* A heartbeat header: flags = HEARTBEAT, session_id, everything else 0
 * (the nonce is set when sealed). The packet is this header ‖ the 16-byte
 * tag of an empty plaintext (84 bytes); sealing it is nmi_wire_seal (or
 * nmi_session_seal with nmi_wire_aad). */
void nmi_wire_heartbeat_header(nmi_wire_header *h, uint64_t session_id);
/* Shape check of a received heartbeat before its tag is verified: the
 * HEARTBEAT flag without HANDSHAKE, payload_len 0, event_count 0, and a
 * packet of exactly 84 bytes. NM_OK or NM_EDECODE. */
NM_NODISCARD int nmi_wire_heartbeat_check(const nmi_wire_header *h,
                                          size_t packet_len);

/* --------------------------------------------------------- handshake */

/* Noise message sizes on the wire (NKpsk0 with upstream's payloads). */
#define NMI_WIRE_HS_MSG1_LEN 48        /* direct: e(32) + tag(16) */
#define NMI_WIRE_HS_MSG1_ROUTED_LEN 56 /* routed: payload = node_id u64 */
#define NMI_WIRE_HS_MSG2_LEN 48
/* Largest Noise message a handshake packet carries (payload_len bound). */
#define NMI_WIRE_HS_MAX_NOISE NMI_WIRE_MAX_PAYLOAD

/* Frame a Noise message: header (flags = HANDSHAKE, session, stream,
 * sequence and nonce 0, payload_len = noise_len) ‖ the raw Noise bytes.
 * Writes 68 + noise_len bytes. noise may alias out + 68. Errors:
 * NM_EINVAL, NM_ETOOBIG (noise_len > 8108 or cap too small; nothing is
 * written then). */
int nmi_wire_handshake_encode(const uint8_t *noise, size_t noise_len,
                              uint8_t *out, size_t cap, size_t *written);

/* Parse a direct handshake packet: a valid header with the HANDSHAKE flag,
 * session/stream/sequence/nonce all zero, and exactly 68 + payload_len
 * bytes. *noise points into buf. Errors: NM_EDECODE, NM_EINVAL. */
NM_NODISCARD int nmi_wire_handshake_decode(const uint8_t *buf, size_t len,
                                           const uint8_t **noise,
                                           size_t *noise_len);

/* ------------------------------------------------------ discriminator */

/* What a received datagram is, from its length and first two bytes, in
 * upstream's dispatch order:
 *   1. exactly 72 bytes not starting 45 4E    -> PINGWAVE
 *   2. exactly 14 bytes starting 50 48 ("PH") -> KEEPALIVE (NAT)
 *   3. 45 4E                                  -> DIRECT (NetHeader)
 *   4. 52 54 ("RT")                           -> ROUTED (routing header)
 *   5. 48 52 ("RH")                           -> ROUTE_HOP (envelope)
 *   6. anything else (or < 2 bytes)           -> UNKNOWN (drop)
 * Only a classification: the kind's decoder does the checks. */
typedef enum nmi_wire_kind {
    NMI_WIRE_KIND_UNKNOWN = 0,
    NMI_WIRE_KIND_DIRECT,
    NMI_WIRE_KIND_ROUTED,
    NMI_WIRE_KIND_ROUTE_HOP,
    NMI_WIRE_KIND_PINGWAVE,
    NMI_WIRE_KIND_KEEPALIVE,
} nmi_wire_kind;

nmi_wire_kind nmi_wire_classify(const uint8_t *buf, size_t len);
/* "direct", "routed", "route-hop", "pingwave", "keepalive", "unknown". */
const char *nmi_wire_kind_name(nmi_wire_kind k);

#endif
