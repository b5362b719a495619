/*
 * src/wire/packet.h - sealing and opening whole packets with an AEAD
 * session: header ‖ ChaCha20-Poly1305(payload, AAD = nmi_wire_aad) ‖ tag.
 * A thin layer over nmi_session_seal/open (src/crypto/session.h) that
 * puts the 56-byte AAD and the 12-byte nonce exactly where upstream does;
 * the mesh can also call the session directly with nmi_wire_aad. No I/O.
 * docs/PROTOCOL.md §8.2.
 */
#ifndef NMI_WIRE_PACKET_H
#define NMI_WIRE_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include <netmesh/common.h>

#include "crypto/session.h"
#include "wire/header.h"

/* Seal pt[0..ptlen) into out[0..cap) as one packet. Sets h->session_id
 * to the session's, h->payload_len to ptlen and h->nonce to the counter
 * used; the caller sets the rest (flags, stream, sequence, subprotocol,
 * event_count...). pt may equal out + 68 (in place). Writes 68 + ptlen +
 * 16 bytes. Errors: NM_EINVAL (NULL, handshake flag, reserved flags),
 * NM_ETOOBIG (ptlen > 8108, event_count > 2027, or cap too small),
 * NM_ERANGE (session TX counter exhausted). */
int nmi_wire_seal(nmi_session *s, nmi_wire_header *h, const uint8_t *pt,
                  size_t ptlen, uint8_t *out, size_t cap, size_t *written);

/* Seal a heartbeat into out[84]: header(flags = HEARTBEAT, session) ‖
 * tag of the empty plaintext. */
int nmi_wire_heartbeat_seal(nmi_session *s,
                            uint8_t out[NMI_WIRE_HEARTBEAT_LEN]);

/* Open a received packet in place: header decode, the length rule, not a
 * handshake, session_id equal to the session's, then nmi_session_open
 * (replay window checked before and committed after the tag). On success
 * *pt = pkt + 68 holds h->payload_len plaintext bytes (decrypted in
 * place). A heartbeat opens to 0 bytes. Errors: NM_EDECODE (malformed),
 * NM_EPROTO (wrong session, replayed or out-of-window counter),
 * NM_ECRYPTO (bad tag), NM_EINVAL. */
NM_NODISCARD int nmi_wire_open(nmi_session *s, uint8_t *pkt, size_t len,
                               nmi_wire_header *h, uint8_t **pt,
                               size_t *ptlen);

#endif
