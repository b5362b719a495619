/*
 * src/wire/header.c - NetHeader codec, AAD, nonce, length rule, heartbeat
 * and handshake framing, ids, and the first-bytes discriminator.
 */
#include "wire/header.h"

#include <string.h>

#include "core/core.h"
#include "wire/pingwave.h"
#include "wire/route.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#define XXH_INLINE_ALL
#include <xxhash.h>
#pragma GCC diagnostic pop

static inline void
store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline uint16_t
load_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* ---------------------------------------------------------------- ids */

const char *
nmi_wire_subprotocol_name(uint16_t id)
{
    switch (id) {
    case NMI_WIRE_SP_EVENTS:
        return "events";
    case NMI_WIRE_SP_CAUSAL:
        return "causal";
    case NMI_WIRE_SP_SNAPSHOT:
        return "snapshot";
    case NMI_WIRE_SP_MIGRATION:
        return "migration";
    case NMI_WIRE_SP_NEGOTIATION:
        return "negotiation";
    case NMI_WIRE_SP_CONTINUITY:
        return "continuity";
    case NMI_WIRE_SP_FORK:
        return "fork";
    case NMI_WIRE_SP_PROOF:
        return "proof";
    case NMI_WIRE_SP_PARTITION:
        return "partition";
    case NMI_WIRE_SP_RECONCILE:
        return "reconcile";
    case NMI_WIRE_SP_REPLICA_GROUP:
        return "replica-group";
    case NMI_WIRE_SP_MEMBERSHIP:
        return "membership";
    case NMI_WIRE_SP_STREAM_WINDOW:
        return "stream-window";
    case NMI_WIRE_SP_STREAM_NACK:
        return "stream-nack";
    case NMI_WIRE_SP_STREAM_RESET:
        return "stream-reset";
    case NMI_WIRE_SP_STREAM_ACK_RANGES:
        return "stream-ack-ranges";
    case NMI_WIRE_SP_CAPABILITY:
        return "capability";
    case NMI_WIRE_SP_ROUTE_WITHDRAW:
        return "route-withdraw";
    case NMI_WIRE_SP_SENSING_INTEREST:
        return "sensing-interest";
    case NMI_WIRE_SP_SENSING_ATTEST:
        return "sensing-attestation";
    case NMI_WIRE_SP_SCOPED_CAPABILITY:
        return "scoped-capability";
    case NMI_WIRE_SP_NAT_REFLEX:
        return "nat-reflex";
    case NMI_WIRE_SP_RENDEZVOUS:
        return "rendezvous";
    case NMI_WIRE_SP_REDEX:
        return "redex";
    case NMI_WIRE_SP_MESHDB:
        return "meshdb";
    case NMI_WIRE_SP_FOLD:
        return "fold";
    case NMI_WIRE_SP_BLOB:
        return "blob";
    default:
        break;
    }
    if (id >= NMI_WIRE_SP_EXPERIMENTAL_FIRST) {
        return "experimental";
    }
    if (id >= NMI_WIRE_SP_VENDOR_FIRST) {
        return "vendor";
    }
    return "unknown";
}

uint64_t
nmi_wire_stream_id_from_key(const void *key, size_t len)
{
    return XXH3_64bits(len ? key : "", len);
}

uint64_t
nmi_wire_channel_stream_id(const char *name, size_t len)
{
    return NMI_WIRE_CHANNEL_STREAM_BIT | XXH3_64bits(len ? name : "", len);
}

uint16_t
nmi_wire_channel_hash16(const char *name, size_t len)
{
    return (uint16_t)XXH3_64bits(len ? name : "", len);
}

/* ------------------------------------------------------------- header */

void
nmi_wire_header_init(nmi_wire_header *h, uint8_t flags, uint64_t session_id,
                     uint64_t stream_id, uint64_t sequence)
{
    memset(h, 0, sizeof(*h));
    h->flags = flags;
    h->session_id = session_id;
    h->stream_id = stream_id;
    h->sequence = sequence;
}

int
nmi_wire_header_encode(const nmi_wire_header *h,
                       uint8_t out[NMI_WIRE_HEADER_LEN])
{
    if (!h || !out) {
        return nmi_err(NM_EINVAL, "wire header: NULL argument");
    }
    if (h->flags & NMI_WIRE_F_RESERVED) {
        return nmi_err(NM_EINVAL,
                       "wire header: reserved flag bits set (flags 0x%02x)",
                       h->flags);
    }
    if (h->payload_len > NMI_WIRE_MAX_PAYLOAD) {
        return nmi_err(NM_ETOOBIG,
                       "wire header: payload_len %u exceeds %d bytes",
                       h->payload_len, NMI_WIRE_MAX_PAYLOAD);
    }
    if (h->event_count > NMI_WIRE_MAX_EVENTS) {
        return nmi_err(NM_ETOOBIG,
                       "wire header: event_count %u exceeds %d events",
                       h->event_count, NMI_WIRE_MAX_EVENTS);
    }
    store_le16(out + 0, NMI_WIRE_MAGIC);
    out[2] = NMI_WIRE_VERSION;
    out[3] = h->flags;
    out[4] = h->priority;
    out[5] = h->hop_ttl;
    out[6] = h->hop_count;
    out[7] = h->frag_flags;
    store_le16(out + 8, h->subprotocol_id);
    store_le16(out + 10, h->channel_hash);
    memcpy(out + 12, h->nonce, NMI_WIRE_NONCE_LEN);
    nmi_store_le64(out + 24, h->session_id);
    nmi_store_le64(out + 32, h->stream_id);
    nmi_store_le64(out + 40, h->sequence);
    nmi_store_le64(out + 48, h->origin_hash);
    nmi_store_le32(out + 56, h->subnet_id);
    store_le16(out + 60, h->fragment_id);
    store_le16(out + 62, h->fragment_offset);
    store_le16(out + 64, h->payload_len);
    store_le16(out + 66, h->event_count);
    return NM_OK;
}

int
nmi_wire_header_decode(const uint8_t *buf, size_t len, nmi_wire_header *h)
{
    if (!h || (!buf && len)) {
        return nmi_err(NM_EINVAL, "wire header: NULL argument");
    }
    if (len < NMI_WIRE_HEADER_LEN) {
        return nmi_err(NM_EDECODE, "wire header: %zu bytes, a header needs %d",
                       len, NMI_WIRE_HEADER_LEN);
    }
    uint16_t magic = load_le16(buf);
    if (magic != NMI_WIRE_MAGIC) {
        return nmi_err(NM_EDECODE,
                       "wire header: bad magic %02x %02x (want 45 4e)", buf[0],
                       buf[1]);
    }
    if (buf[2] != NMI_WIRE_VERSION) {
        return nmi_err(NM_EDECODE, "wire header: version %u (want %u)", buf[2],
                       NMI_WIRE_VERSION);
    }
    if (buf[3] & NMI_WIRE_F_RESERVED) {
        return nmi_err(NM_EDECODE,
                       "wire header: reserved flag bits set (flags 0x%02x)",
                       buf[3]);
    }
    uint16_t payload_len = load_le16(buf + 64);
    uint16_t event_count = load_le16(buf + 66);
    if (payload_len > NMI_WIRE_MAX_PAYLOAD) {
        return nmi_err(NM_EDECODE,
                       "wire header: payload_len %u exceeds %d bytes",
                       payload_len, NMI_WIRE_MAX_PAYLOAD);
    }
    if (event_count > NMI_WIRE_MAX_EVENTS) {
        return nmi_err(NM_EDECODE,
                       "wire header: event_count %u exceeds %d events",
                       event_count, NMI_WIRE_MAX_EVENTS);
    }
    h->flags = buf[3];
    h->priority = buf[4];
    h->hop_ttl = buf[5];
    h->hop_count = buf[6];
    h->frag_flags = buf[7];
    h->subprotocol_id = load_le16(buf + 8);
    h->channel_hash = load_le16(buf + 10);
    memcpy(h->nonce, buf + 12, NMI_WIRE_NONCE_LEN);
    h->session_id = nmi_load_le64(buf + 24);
    h->stream_id = nmi_load_le64(buf + 32);
    h->sequence = nmi_load_le64(buf + 40);
    h->origin_hash = nmi_load_le64(buf + 48);
    h->subnet_id = nmi_load_le32(buf + 56);
    h->fragment_id = load_le16(buf + 60);
    h->fragment_offset = load_le16(buf + 62);
    h->payload_len = payload_len;
    h->event_count = event_count;
    return NM_OK;
}

int
nmi_wire_packet_check(const nmi_wire_header *h, size_t packet_len)
{
    if (!h) {
        return nmi_err(NM_EINVAL, "wire packet: NULL header");
    }
    size_t want = (size_t)NMI_WIRE_HEADER_LEN + h->payload_len;
    bool hs = (h->flags & NMI_WIRE_F_HANDSHAKE) != 0;
    if (!hs) {
        want += NMI_WIRE_TAG_LEN;
    }
    if (packet_len != want) {
        return nmi_err(NM_EDECODE,
                       "wire packet: %zu bytes, but payload_len %u makes "
                       "a %s packet of %zu",
                       packet_len, h->payload_len, hs ? "handshake" : "sealed",
                       want);
    }
    return NM_OK;
}

int
nmi_wire_packet_parse(const uint8_t *buf, size_t len, nmi_wire_header *h,
                      const uint8_t **body, size_t *body_len)
{
    nmi_wire_header tmp;
    if (!h) {
        return nmi_err(NM_EINVAL, "wire packet: NULL header");
    }
    int rc = nmi_wire_header_decode(buf, len, &tmp);
    if (rc != NM_OK) {
        return rc;
    }
    rc = nmi_wire_packet_check(&tmp, len);
    if (rc != NM_OK) {
        return rc;
    }
    *h = tmp;
    if (body) {
        *body = buf + NMI_WIRE_HEADER_LEN;
    }
    if (body_len) {
        *body_len = len - NMI_WIRE_HEADER_LEN;
    }
    return NM_OK;
}

/* ------------------------------------------------------ AAD and nonce */

void
nmi_wire_aad_from_bytes(const uint8_t hdr[NMI_WIRE_HEADER_LEN],
                        uint8_t aad[NMI_WIRE_AAD_LEN])
{
    memcpy(aad, hdr, 12);
    aad[6] = 0; /* hop_count: mutable in transit, not authenticated */
    memcpy(aad + 12, hdr + 24, NMI_WIRE_HEADER_LEN - 24);
}

void
nmi_wire_aad(const nmi_wire_header *h, uint8_t aad[NMI_WIRE_AAD_LEN])
{
    store_le16(aad + 0, NMI_WIRE_MAGIC);
    aad[2] = NMI_WIRE_VERSION;
    aad[3] = h->flags;
    aad[4] = h->priority;
    aad[5] = h->hop_ttl;
    aad[6] = 0;
    aad[7] = h->frag_flags;
    store_le16(aad + 8, h->subprotocol_id);
    store_le16(aad + 10, h->channel_hash);
    nmi_store_le64(aad + 12, h->session_id);
    nmi_store_le64(aad + 20, h->stream_id);
    nmi_store_le64(aad + 28, h->sequence);
    nmi_store_le64(aad + 36, h->origin_hash);
    nmi_store_le32(aad + 44, h->subnet_id);
    store_le16(aad + 48, h->fragment_id);
    store_le16(aad + 50, h->fragment_offset);
    store_le16(aad + 52, h->payload_len);
    store_le16(aad + 54, h->event_count);
}

void
nmi_wire_nonce_prefix(uint64_t session_id, uint8_t prefix[4])
{
    nmi_store_le32(prefix,
                   (uint32_t)session_id ^ (uint32_t)(session_id >> 32));
}

void
nmi_wire_nonce(uint64_t session_id, uint64_t counter,
               uint8_t nonce[NMI_WIRE_NONCE_LEN])
{
    nmi_wire_nonce_prefix(session_id, nonce);
    nmi_store_le64(nonce + 4, counter);
}

void
nmi_wire_header_set_counter(nmi_wire_header *h, uint64_t counter)
{
    nmi_wire_nonce(h->session_id, counter, h->nonce);
}

uint64_t
nmi_wire_header_counter(const nmi_wire_header *h)
{
    return nmi_load_le64(h->nonce + 4);
}

void
nmi_wire_write_nonce(uint8_t hdr[NMI_WIRE_HEADER_LEN], uint64_t session_id,
                     uint64_t counter)
{
    nmi_wire_nonce(session_id, counter, hdr + NMI_WIRE_NONCE_OFF);
}

uint64_t
nmi_wire_read_counter(const uint8_t hdr[NMI_WIRE_HEADER_LEN])
{
    return nmi_load_le64(hdr + NMI_WIRE_NONCE_OFF + 4);
}

/* ---------------------------------------------------------- heartbeat */

void
nmi_wire_heartbeat_header(nmi_wire_header *h, uint64_t session_id)
{
    nmi_wire_header_init(h, NMI_WIRE_F_HEARTBEAT, session_id, 0, 0);
}

int
nmi_wire_heartbeat_check(const nmi_wire_header *h, size_t packet_len)
{
    if (!h) {
        return nmi_err(NM_EINVAL, "heartbeat: NULL header");
    }
    if (!(h->flags & NMI_WIRE_F_HEARTBEAT) ||
        (h->flags & NMI_WIRE_F_HANDSHAKE)) {
        return nmi_err(NM_EDECODE, "heartbeat: flags 0x%02x", h->flags);
    }
    if (h->payload_len != 0 || h->event_count != 0) {
        return nmi_err(NM_EDECODE,
                       "heartbeat: payload_len %u, event_count %u (want 0)",
                       h->payload_len, h->event_count);
    }
    if (packet_len != NMI_WIRE_HEARTBEAT_LEN) {
        return nmi_err(NM_EDECODE, "heartbeat: %zu bytes (want %d)",
                       packet_len, NMI_WIRE_HEARTBEAT_LEN);
    }
    return NM_OK;
}

/* ---------------------------------------------------------- handshake */

int
nmi_wire_handshake_encode(const uint8_t *noise, size_t noise_len, uint8_t *out,
                          size_t cap, size_t *written)
{
    if (!out || (!noise && noise_len)) {
        return nmi_err(NM_EINVAL, "handshake: NULL argument");
    }
    if (noise_len > NMI_WIRE_HS_MAX_NOISE) {
        return nmi_err(NM_ETOOBIG,
                       "handshake: Noise message of %zu bytes exceeds %d",
                       noise_len, NMI_WIRE_HS_MAX_NOISE);
    }
    size_t total = NMI_WIRE_HEADER_LEN + noise_len;
    if (cap < total) {
        return nmi_err(NM_ETOOBIG, "handshake: needs %zu bytes, have %zu",
                       total, cap);
    }
    nmi_wire_header h;
    nmi_wire_header_init(&h, NMI_WIRE_F_HANDSHAKE, 0, 0, 0);
    h.payload_len = (uint16_t)noise_len;
    if (noise_len) {
        memmove(out + NMI_WIRE_HEADER_LEN, noise, noise_len);
    }
    int rc = nmi_wire_header_encode(&h, out);
    if (rc != NM_OK) {
        return rc;
    }
    if (written) {
        *written = total;
    }
    return NM_OK;
}

int
nmi_wire_handshake_decode(const uint8_t *buf, size_t len,
                          const uint8_t **noise, size_t *noise_len)
{
    nmi_wire_header h;
    const uint8_t *body;
    size_t body_len;
    int rc = nmi_wire_packet_parse(buf, len, &h, &body, &body_len);
    if (rc != NM_OK) {
        return rc;
    }
    if (!(h.flags & NMI_WIRE_F_HANDSHAKE)) {
        return nmi_err(NM_EDECODE,
                       "handshake: HANDSHAKE flag not set "
                       "(flags 0x%02x)",
                       h.flags);
    }
    static const uint8_t zero_nonce[NMI_WIRE_NONCE_LEN];
    if (h.session_id != 0 || h.stream_id != 0 || h.sequence != 0 ||
        memcmp(h.nonce, zero_nonce, NMI_WIRE_NONCE_LEN) != 0) {
        return nmi_err(NM_EDECODE, "handshake: session, stream, sequence "
                                   "and nonce must be 0");
    }
    if (noise) {
        *noise = body;
    }
    if (noise_len) {
        *noise_len = body_len;
    }
    return NM_OK;
}

/* ------------------------------------------------------ discriminator */

nmi_wire_kind
nmi_wire_classify(const uint8_t *buf, size_t len)
{
    if (!buf || len < 2) {
        return NMI_WIRE_KIND_UNKNOWN;
    }
    uint16_t magic = load_le16(buf);
    if (len == NMI_WIRE_PINGWAVE_LEN && magic != NMI_WIRE_MAGIC) {
        return NMI_WIRE_KIND_PINGWAVE;
    }
    if (len == NMI_WIRE_KEEPALIVE_LEN && magic == NMI_WIRE_KEEPALIVE_MAGIC) {
        return NMI_WIRE_KIND_KEEPALIVE;
    }
    switch (magic) {
    case NMI_WIRE_MAGIC:
        return NMI_WIRE_KIND_DIRECT;
    case NMI_WIRE_ROUTE_MAGIC:
        return NMI_WIRE_KIND_ROUTED;
    case NMI_WIRE_HOP_MAGIC:
        return NMI_WIRE_KIND_ROUTE_HOP;
    default:
        return NMI_WIRE_KIND_UNKNOWN;
    }
}

const char *
nmi_wire_kind_name(nmi_wire_kind k)
{
    switch (k) {
    case NMI_WIRE_KIND_DIRECT:
        return "direct";
    case NMI_WIRE_KIND_ROUTED:
        return "routed";
    case NMI_WIRE_KIND_ROUTE_HOP:
        return "route-hop";
    case NMI_WIRE_KIND_PINGWAVE:
        return "pingwave";
    case NMI_WIRE_KIND_KEEPALIVE:
        return "keepalive";
    default:
        return "unknown";
    }
}
