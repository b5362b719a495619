/*
 * src/wire/route.c - routing header, relay forward step, routed
 * handshakes, route-hop envelope and its replay window.
 */
#include "wire/route.h"

#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "crypto/blake2s.h"

static inline uint16_t
load_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline void
store_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* ---------------------------------------------------- routing header */

void
nmi_wire_route_init(nmi_wire_route *r, uint64_t dest_id, uint32_t src_id,
                    uint8_t ttl)
{
    memset(r, 0, sizeof(*r));
    r->dest_id = dest_id;
    r->src_id = src_id;
    r->ttl = ttl;
}

int
nmi_wire_route_encode(const nmi_wire_route *r, uint8_t out[NMI_WIRE_ROUTE_LEN])
{
    if (!r || !out) {
        return nmi_err(NM_EINVAL, "routing header: NULL argument");
    }
    if (r->flags & ~NMI_WIRE_RF_MASK) {
        return nmi_err(NM_EINVAL,
                       "routing header: flags 0x%02x outside the low nibble",
                       r->flags);
    }
    store_le16(out, NMI_WIRE_ROUTE_MAGIC);
    out[2] = r->ttl;
    out[3] = r->hop_count;
    out[4] = r->flags;
    out[5] = r->reserved;
    nmi_store_le32(out + 6, r->src_id);
    nmi_store_le64(out + 10, r->dest_id);
    return NM_OK;
}

int
nmi_wire_route_decode(const uint8_t *buf, size_t len, nmi_wire_route *r)
{
    if (!r || (!buf && len)) {
        return nmi_err(NM_EINVAL, "routing header: NULL argument");
    }
    if (len < NMI_WIRE_ROUTE_LEN) {
        return nmi_err(NM_EDECODE, "routing header: %zu bytes, needs %d", len,
                       NMI_WIRE_ROUTE_LEN);
    }
    if (load_le16(buf) != NMI_WIRE_ROUTE_MAGIC) {
        return nmi_err(NM_EDECODE,
                       "routing header: bad magic %02x %02x (want 52 54)",
                       buf[0], buf[1]);
    }
    r->ttl = buf[2];
    r->hop_count = buf[3];
    r->flags = buf[4] & NMI_WIRE_RF_MASK;
    r->reserved = buf[5];
    r->src_id = nmi_load_le32(buf + 6);
    r->dest_id = nmi_load_le64(buf + 10);
    return NM_OK;
}

int
nmi_wire_route_forward(uint8_t *buf, size_t len, nmi_wire_route *out)
{
    nmi_wire_route r;
    int rc = nmi_wire_route_decode(buf, len, &r);
    if (rc != NM_OK) {
        return rc;
    }
    if (r.ttl == 0) {
        return nmi_err(NM_EPROTO, "routing header: TTL expired");
    }
    r.ttl--;
    if (r.hop_count != UINT8_MAX) {
        r.hop_count++;
    }
    buf[2] = r.ttl;
    buf[3] = r.hop_count;
    buf[4] = r.flags;
    if (out) {
        *out = r;
    }
    return NM_OK;
}

int
nmi_wire_routed_split(const uint8_t *buf, size_t len, nmi_wire_route *r,
                      const uint8_t **inner, size_t *inner_len)
{
    nmi_wire_route tmp;
    if (!r) {
        return nmi_err(NM_EINVAL, "routing header: NULL argument");
    }
    int rc = nmi_wire_route_decode(buf, len, &tmp);
    if (rc != NM_OK) {
        return rc;
    }
    *r = tmp;
    if (inner) {
        *inner = buf + NMI_WIRE_ROUTE_LEN;
    }
    if (inner_len) {
        *inner_len = len - NMI_WIRE_ROUTE_LEN;
    }
    return NM_OK;
}

int
nmi_wire_routed_handshake_encode(uint64_t dest_id, uint32_t src_id,
                                 const uint8_t *noise, size_t noise_len,
                                 uint8_t *out, size_t cap, size_t *written)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "routed handshake: NULL output");
    }
    if (cap < NMI_WIRE_ROUTE_LEN) {
        return nmi_err(NM_ETOOBIG, "routed handshake: %zu-byte buffer", cap);
    }
    size_t hs_len = 0;
    int rc =
        nmi_wire_handshake_encode(noise, noise_len, out + NMI_WIRE_ROUTE_LEN,
                                  cap - NMI_WIRE_ROUTE_LEN, &hs_len);
    if (rc != NM_OK) {
        return rc;
    }
    nmi_wire_route r;
    nmi_wire_route_init(&r, dest_id, src_id, NMI_WIRE_TTL_HANDSHAKE);
    rc = nmi_wire_route_encode(&r, out);
    if (rc != NM_OK) {
        return rc;
    }
    if (written) {
        *written = NMI_WIRE_ROUTE_LEN + hs_len;
    }
    return NM_OK;
}

int
nmi_wire_routed_handshake_decode(const uint8_t *buf, size_t len,
                                 nmi_wire_route *r, const uint8_t **noise,
                                 size_t *noise_len)
{
    nmi_wire_route tmp;
    const uint8_t *inner;
    size_t inner_len;
    if (!r) {
        return nmi_err(NM_EINVAL, "routed handshake: NULL argument");
    }
    int rc = nmi_wire_routed_split(buf, len, &tmp, &inner, &inner_len);
    if (rc != NM_OK) {
        return rc;
    }
    rc = nmi_wire_handshake_decode(inner, inner_len, noise, noise_len);
    if (rc != NM_OK) {
        return rc;
    }
    *r = tmp;
    return NM_OK;
}

/* ------------------------------------------------- route-hop envelope */

void
nmi_wire_hop_tag(const uint8_t key[NMI_WIRE_HOP_KEY_LEN],
                 uint64_t hop_session_id, uint64_t hop_seq,
                 const uint8_t route_bytes[NMI_WIRE_ROUTE_LEN],
                 const uint8_t *inner, size_t inner_len,
                 uint8_t tag[NMI_WIRE_HOP_TAG_LEN])
{
    nmi_blake2s_state st;
    uint8_t ids[16], full[NMI_BLAKE2S_OUTBYTES];
    nmi_store_le64(ids, hop_session_id);
    nmi_store_le64(ids + 8, hop_seq);
    /* Cannot fail: outlen 32, keylen 32. */
    (void)nmi_blake2s_init(&st, NMI_BLAKE2S_OUTBYTES, key,
                           NMI_WIRE_HOP_KEY_LEN);
    nmi_blake2s_update(&st, NMI_WIRE_HOP_DOMAIN,
                       sizeof(NMI_WIRE_HOP_DOMAIN) - 1);
    nmi_blake2s_update(&st, ids, sizeof(ids));
    nmi_blake2s_update(&st, route_bytes, NMI_WIRE_ROUTE_LEN);
    if (inner_len) {
        nmi_blake2s_update(&st, inner, inner_len);
    }
    nmi_blake2s_final(&st, full);
    memcpy(tag, full, NMI_WIRE_HOP_TAG_LEN);
    sodium_memzero(full, sizeof(full));
}

int
nmi_wire_hop_seal(const uint8_t key[NMI_WIRE_HOP_KEY_LEN],
                  uint64_t hop_session_id, uint64_t hop_seq,
                  const nmi_wire_route *route, const uint8_t *inner,
                  size_t inner_len, uint8_t *out, size_t cap, size_t *written)
{
    if (!key || !route || !out || (!inner && inner_len)) {
        return nmi_err(NM_EINVAL, "route-hop: NULL argument");
    }
    if (route->flags & ~NMI_WIRE_RF_MASK) {
        return nmi_err(NM_EINVAL, "route-hop: routing flags 0x%02x",
                       route->flags);
    }
    if (inner_len > SIZE_MAX - NMI_WIRE_HOP_OVERHEAD ||
        cap < nmi_wire_hop_sealed_len(inner_len)) {
        return nmi_err(NM_ETOOBIG, "route-hop: needs %zu bytes, have %zu",
                       nmi_wire_hop_sealed_len(inner_len), cap);
    }
    const size_t hdr_off = NMI_WIRE_HOP_PREFIX_LEN;
    const size_t inner_off = hdr_off + NMI_WIRE_ROUTE_LEN;
    if (inner_len) {
        memmove(out + inner_off, inner, inner_len);
    }
    store_le16(out, NMI_WIRE_HOP_MAGIC);
    nmi_store_le64(out + 2, hop_session_id);
    nmi_store_le64(out + 10, hop_seq);
    (void)nmi_wire_route_encode(route, out + hdr_off); /* checked above */
    /* Tag the routing header as it sits in the buffer. */
    nmi_wire_hop_tag(key, hop_session_id, hop_seq, out + hdr_off,
                     out + inner_off, inner_len, out + inner_off + inner_len);
    if (written) {
        *written = nmi_wire_hop_sealed_len(inner_len);
    }
    return NM_OK;
}

/* Structural parse, nothing verified. */
static int
hop_parse(const uint8_t *buf, size_t len, nmi_wire_hop *h)
{
    if (!buf && len) {
        return nmi_err(NM_EINVAL, "route-hop: NULL buffer");
    }
    if (len < NMI_WIRE_HOP_OVERHEAD) {
        return nmi_err(NM_EDECODE, "route-hop: %zu bytes, needs at least %d",
                       len, NMI_WIRE_HOP_OVERHEAD);
    }
    if (load_le16(buf) != NMI_WIRE_HOP_MAGIC) {
        return nmi_err(NM_EDECODE,
                       "route-hop: bad magic %02x %02x (want 48 52)", buf[0],
                       buf[1]);
    }
    int rc = nmi_wire_route_decode(buf + NMI_WIRE_HOP_PREFIX_LEN,
                                   NMI_WIRE_ROUTE_LEN, &h->route);
    if (rc != NM_OK) {
        return nmi_err(NM_EDECODE, "route-hop: bad routing header");
    }
    h->hop_session_id = nmi_load_le64(buf + 2);
    h->hop_seq = nmi_load_le64(buf + 10);
    h->inner = buf + NMI_WIRE_HOP_PREFIX_LEN + NMI_WIRE_ROUTE_LEN;
    h->inner_len = len - NMI_WIRE_HOP_OVERHEAD;
    return NM_OK;
}

int
nmi_wire_hop_peek_session(const uint8_t *buf, size_t len,
                          uint64_t *hop_session_id)
{
    nmi_wire_hop h;
    if (!hop_session_id) {
        return nmi_err(NM_EINVAL, "route-hop: NULL argument");
    }
    int rc = hop_parse(buf, len, &h);
    if (rc != NM_OK) {
        return rc;
    }
    *hop_session_id = h.hop_session_id;
    return NM_OK;
}

int
nmi_wire_hop_open(const uint8_t key[NMI_WIRE_HOP_KEY_LEN], const uint8_t *buf,
                  size_t len, nmi_wire_hop *out)
{
    nmi_wire_hop h;
    uint8_t tag[NMI_WIRE_HOP_TAG_LEN];
    if (!key || !out) {
        return nmi_err(NM_EINVAL, "route-hop: NULL argument");
    }
    int rc = hop_parse(buf, len, &h);
    if (rc != NM_OK) {
        return rc;
    }
    nmi_wire_hop_tag(key, h.hop_session_id, h.hop_seq,
                     buf + NMI_WIRE_HOP_PREFIX_LEN, h.inner, h.inner_len, tag);
    if (crypto_verify_16(tag, buf + len - NMI_WIRE_HOP_TAG_LEN) != 0) {
        return nmi_err(NM_ECRYPTO, "route-hop: verification failed");
    }
    *out = h;
    return NM_OK;
}

void
nmi_wire_hop_replay_init(nmi_wire_hop_replay *w)
{
    memset(w, 0, sizeof(*w));
}

/* The window as a 128-bit value seen[1]:seen[0]. */
static void
shl128(uint64_t v[2], uint64_t n)
{
    if (n >= 128) {
        v[0] = v[1] = 0;
    } else if (n >= 64) {
        v[1] = v[0] << (n - 64);
        v[0] = 0;
    } else if (n > 0) {
        v[1] = (v[1] << n) | (v[0] >> (64 - n));
        v[0] <<= n;
    }
}

static bool
bit128(const uint64_t v[2], uint64_t i)
{
    return (v[i / 64] >> (i % 64)) & 1;
}

static void
set128(uint64_t v[2], uint64_t i)
{
    v[i / 64] |= UINT64_C(1) << (i % 64);
}

bool
nmi_wire_hop_replay_admit(nmi_wire_hop_replay *w, uint64_t seq)
{
    const uint64_t W = NMI_WIRE_HOP_REPLAY_WINDOW;
    if (!w->started) {
        w->started = true;
        w->highest = seq;
        w->seen[0] = w->seen[1] = 0;
        return true;
    }
    if (seq > w->highest) {
        uint64_t advance = seq - w->highest;
        /* The old highest lands at bit advance - 1 (kept when
         * advance <= W); older marks shift up and fall off. */
        shl128(w->seen, advance);
        if (advance <= W) {
            set128(w->seen, advance - 1);
        }
        w->highest = seq;
        return true;
    }
    if (seq == w->highest) {
        return false;
    }
    uint64_t behind = w->highest - seq;
    if (behind > W) {
        return false;
    }
    if (bit128(w->seen, behind - 1)) {
        return false;
    }
    set128(w->seen, behind - 1);
    return true;
}
