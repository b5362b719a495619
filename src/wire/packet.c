/*
 * src/wire/packet.c - seal/open whole packets with an AEAD session, the
 * AAD and nonce placed as upstream does.
 */
#include "wire/packet.h"

#include <string.h>

#include "core/core.h"

int
nmi_wire_seal(nmi_session *s, nmi_wire_header *h, const uint8_t *pt,
              size_t ptlen, uint8_t *out, size_t cap, size_t *written)
{
    if (!s || !h || !out || (!pt && ptlen)) {
        return nmi_err(NM_EINVAL, "wire seal: NULL argument");
    }
    if (h->flags & NMI_WIRE_F_HANDSHAKE) {
        return nmi_err(NM_EINVAL, "wire seal: a handshake is not sealed");
    }
    if (ptlen > NMI_WIRE_MAX_PAYLOAD) {
        return nmi_err(NM_ETOOBIG, "wire seal: %zu-byte payload exceeds %d",
                       ptlen, NMI_WIRE_MAX_PAYLOAD);
    }
    size_t total = NMI_WIRE_PACKET_OVERHEAD + ptlen;
    if (cap < total) {
        return nmi_err(NM_ETOOBIG, "wire seal: needs %zu bytes, have %zu",
                       total, cap);
    }
    nmi_wire_header hh = *h;
    hh.session_id = s->session_id;
    hh.payload_len = (uint16_t)ptlen;
    memset(hh.nonce, 0, sizeof(hh.nonce));
    uint8_t hdr[NMI_WIRE_HEADER_LEN], aad[NMI_WIRE_AAD_LEN];
    int rc = nmi_wire_header_encode(&hh, hdr);
    if (rc != NM_OK) {
        return rc;
    }
    nmi_wire_aad(&hh, aad);
    uint64_t counter;
    /* pt may be out + 68: seal in place before the header lands. */
    rc = nmi_session_seal(s, aad, sizeof(aad), pt, ptlen,
                          out + NMI_WIRE_HEADER_LEN, &counter);
    if (rc != NM_OK) {
        return rc;
    }
    nmi_wire_header_set_counter(&hh, counter);
    memcpy(out, hdr, NMI_WIRE_HEADER_LEN);
    nmi_wire_write_nonce(out, hh.session_id, counter);
    *h = hh;
    if (written) {
        *written = total;
    }
    return NM_OK;
}

int
nmi_wire_heartbeat_seal(nmi_session *s, uint8_t out[NMI_WIRE_HEARTBEAT_LEN])
{
    nmi_wire_header h;
    if (!s || !out) {
        return nmi_err(NM_EINVAL, "heartbeat: NULL argument");
    }
    nmi_wire_heartbeat_header(&h, s->session_id);
    return nmi_wire_seal(s, &h, NULL, 0, out, NMI_WIRE_HEARTBEAT_LEN, NULL);
}

int
nmi_wire_open(nmi_session *s, uint8_t *pkt, size_t len, nmi_wire_header *h,
              uint8_t **pt, size_t *ptlen)
{
    nmi_wire_header hh;
    if (!s || !pkt || !h) {
        return nmi_err(NM_EINVAL, "wire open: NULL argument");
    }
    int rc = nmi_wire_packet_parse(pkt, len, &hh, NULL, NULL);
    if (rc != NM_OK) {
        return rc;
    }
    if (hh.flags & NMI_WIRE_F_HANDSHAKE) {
        return nmi_err(NM_EDECODE, "wire open: a handshake is not sealed");
    }
    if (hh.session_id != s->session_id) {
        return nmi_err(NM_EPROTO,
                       "wire open: packet for session %016llx, not %016llx",
                       (unsigned long long)hh.session_id,
                       (unsigned long long)s->session_id);
    }
    uint8_t aad[NMI_WIRE_AAD_LEN];
    nmi_wire_aad_from_bytes(pkt, aad);
    uint8_t *body = pkt + NMI_WIRE_HEADER_LEN;
    rc = nmi_session_open(s, nmi_wire_header_counter(&hh), aad, sizeof(aad),
                          body, len - NMI_WIRE_HEADER_LEN, body);
    if (rc != NM_OK) {
        return rc;
    }
    *h = hh;
    if (pt) {
        *pt = body;
    }
    if (ptlen) {
        *ptlen = hh.payload_len;
    }
    return NM_OK;
}
