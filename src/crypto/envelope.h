/*
 * src/crypto/envelope.h - the sealed identity envelope (upstream
 * identity/envelope.rs, IdentityEnvelope v1): carries a daemon's 32-byte
 * ed25519 seed to a migration target, sealed to the target's X25519 Noise
 * static key and attested by the identity itself. Internal API; the
 * migration layer uses it.
 *
 * Wire (209 bytes):
 *   0    1  version = 1
 *   1   32  target_static_pub   X25519 key the seed is sealed to
 *   33  80  sealed_seed         eph_pk (32) ‖ XChaCha20-Poly1305(seed) (48)
 *   113 32  signer_pub          ed25519 public key of the sealed seed
 *   145 64  signature           ed25519 over target_static_pub ‖ chain_link
 *
 *   shared = X25519(eph_sk, target_static_pub)
 *   key    = BLAKE2s-256(key = "net-identity-envelope", msg = shared)
 *   nonce  = BLAKE2s-256(key = "net-identity-nonce",
 *                        msg = eph_pk ‖ target_static_pub)[0..24]
 *   ct     = XChaCha20-Poly1305(key, nonce, seed, aad = chain_link (32))
 *
 * Open, in order: length and version (NM_EDECODE); optional expected
 * signer; signature; target private key matches target_static_pub; AEAD;
 * the seed's ed25519 public key equals signer_pub. Every failure after
 * decoding is NM_ECRYPTO with one generic detail.
 */
#ifndef NMI_ENVELOPE_H
#define NMI_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <netmesh/common.h>

#define NMI_ENVELOPE_VERSION 1
#define NMI_ENVELOPE_SIZE 209
#define NMI_ENVELOPE_SEALED_SIZE 80
#define NMI_CHAIN_LINK_SIZE 32

/* Field offsets in the wire form. */
#define NMI_ENVELOPE_OFF_TARGET 1
#define NMI_ENVELOPE_OFF_SEALED 33
#define NMI_ENVELOPE_OFF_SIGNER 113
#define NMI_ENVELOPE_OFF_SIG 145

/* Seal `seed` (the identity's ed25519 seed) to target_static_pub, bound to
 * chain_link (the 32-byte CausalLink of the migration point). out gets the
 * 209 wire bytes. NM_ECRYPTO if target_static_pub is a low-order point. */
int nmi_envelope_seal(uint8_t out[NMI_ENVELOPE_SIZE], const uint8_t seed[32],
                      const uint8_t target_static_pub[32],
                      const uint8_t chain_link[NMI_CHAIN_LINK_SIZE]);

/* Tests only: seal with a fixed ephemeral X25519 private key, so the
 * output is deterministic (ed25519 signatures are deterministic too). */
int nmi_envelope_seal_with_ephemeral(uint8_t out[NMI_ENVELOPE_SIZE],
                                     const uint8_t seed[32],
                                     const uint8_t target_static_pub[32],
                                     const uint8_t chain_link[32],
                                     const uint8_t eph_priv[32]);

/* Verify and unseal env[len] with the target's X25519 static private key.
 * expected_signer (32 bytes) may be NULL; when given, an envelope from any
 * other identity is rejected before any cryptographic work. seed_out gets
 * the seed only on success (zeroed otherwise). */
int nmi_envelope_open(uint8_t seed_out[32], const uint8_t *env, size_t len,
                      const uint8_t target_static_priv[32],
                      const uint8_t chain_link[NMI_CHAIN_LINK_SIZE],
                      const uint8_t *expected_signer) NM_NODISCARD;

/* Structural decode only (length and version): the signer public key,
 * e.g. to look up which identity an envelope claims to carry. */
int nmi_envelope_signer(const uint8_t *env, size_t len,
                        uint8_t signer_pub[32]) NM_NODISCARD;

#endif
