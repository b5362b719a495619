/*
 * src/crypto/session.h - the AEAD packet session derived from a finished
 * Net handshake (upstream crypto.rs: SessionKeys, PacketCipher,
 * ReplayWindow). Internal API; the mesh transport uses it as it is.
 *
 * Key schedule (Noise split() is not used), h = the handshake hash:
 *   session_id = u64 LE of h[0..8]
 *   initiator: tx = KDF(h,"initiator-tx")  rx = KDF(h,"initiator-rx")
 *              hop_tx = KDF(h,"route-hop-tx-v1") hop_rx = KDF(h,
 *              "route-hop-rx-v1")
 *   responder: the same values with tx/rx swapped.
 * KDF = nmi_net_kdf (src/crypto/blake2s.h).
 *
 * Packet AEAD: ChaCha20-Poly1305 IETF (RFC 8439), nonce = prefix(4) ‖
 * counter u64 LE, prefix = u32 LE of ((u32)sid ^ (u32)(sid >> 32)).
 * One TX counter per session starting at 0; the receiver rebuilds the
 * nonce from the packet's counter. The AAD is the caller's (the mesh
 * passes the 56-byte header-derived AAD).
 *
 * Replay window (1024 bits), with next = highest accepted counter + 1
 * (0 before anything was accepted):
 *   counter == UINT64_MAX               rejected
 *   counter >= next: accepted iff counter - next <= 1024
 *   counter <  next: age = next - 1 - counter; rejected if age >= 1024 or
 *                    already seen
 * The window is committed only after the tag verified.
 *
 * Errors: NM_EINVAL (NULL/misuse), NM_EDECODE (ciphertext shorter than the
 * tag), NM_EPROTO (counter replayed, too old, too far ahead or UINT64_MAX:
 * the packet is dropped before decryption), NM_ECRYPTO (bad tag; the
 * window is not touched), NM_ERANGE (TX counter exhausted: a new
 * handshake is needed; the counter never wraps).
 *
 * Not thread-safe: the owner serializes seal/open on one session.
 */
#ifndef NMI_SESSION_H
#define NMI_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/common.h>

#include "crypto/noise.h"

#define NMI_SESSION_KEYLEN 32
#define NMI_SESSION_TAGLEN 16
#define NMI_SESSION_NONCELEN 12
#define NMI_REPLAY_WINDOW 1024
#define NMI_REPLAY_WORDS (NMI_REPLAY_WINDOW / 64)

/* The receive-side replay window (usable on its own, e.g. per hop). */
typedef struct nmi_replay {
    uint64_t next; /* highest accepted + 1; 0 = nothing accepted yet */
    uint64_t bits[NMI_REPLAY_WORDS]; /* bit i of the window: counter
                                        next-1-i was accepted */
} nmi_replay;

void nmi_replay_init(nmi_replay *r);
/* Would `counter` be accepted now? (no state change) */
bool nmi_replay_check(const nmi_replay *r, uint64_t counter);
/* Mark `counter` accepted. Returns false (and changes nothing) when
 * nmi_replay_check would have refused it. */
bool nmi_replay_commit(nmi_replay *r, uint64_t counter);

typedef struct nmi_session {
    uint64_t session_id;
    bool initiator;
    uint8_t tx_key[NMI_SESSION_KEYLEN];
    uint8_t rx_key[NMI_SESSION_KEYLEN];
    uint8_t hop_tx_key[NMI_SESSION_KEYLEN]; /* route-hop keys: derived  */
    uint8_t hop_rx_key[NMI_SESSION_KEYLEN]; /* here, used by the mesh   */
    uint8_t remote_static[32]; /* the peer's Noise static key, or zeros */
    uint8_t nonce_prefix[4];
    uint64_t tx_counter; /* the counter the next seal uses */
    nmi_replay rx;
} nmi_session;

/* Derive everything from a 32-byte handshake hash. */
int nmi_session_init(nmi_session *s, const uint8_t h[32], bool initiator);

/* From a finished handshake (NM_EINVAL if not done): the hash, the role
 * and the remote static key (zeros when the pattern never learned it). */
int nmi_session_from_handshake(nmi_session *s, const nmi_noise_hs *hs);

/* The 12-byte nonce for `counter` in this session. */
void nmi_session_nonce(const nmi_session *s, uint64_t counter,
                       uint8_t nonce[NMI_SESSION_NONCELEN]);

/* Seal pt[ptlen] with the next TX counter: out gets ciphertext ‖ tag
 * (ptlen + 16 bytes; out may equal pt). *counter receives the counter
 * used (the mesh writes it into the header). */
int nmi_session_seal(nmi_session *s, const uint8_t *ad, size_t adlen,
                     const uint8_t *pt, size_t ptlen, uint8_t *out,
                     uint64_t *counter) NM_NODISCARD;

/* Open ct[ctlen] (ciphertext ‖ tag) sent with `counter`: out gets
 * ctlen - 16 plaintext bytes (out may equal ct). Checks the replay
 * window first, verifies, then commits the counter. */
int nmi_session_open(nmi_session *s, uint64_t counter, const uint8_t *ad,
                     size_t adlen, const uint8_t *ct, size_t ctlen,
                     uint8_t *out) NM_NODISCARD;

/* Wipe every key. */
void nmi_session_wipe(nmi_session *s);

#endif
