/*
 * src/crypto/noise.h - a generic Noise HandshakeState (Noise Protocol
 * Framework, revision 34) for the 25519 / ChaChaPoly / BLAKE2s suite.
 *
 * Internal API. The handshake is driven by a pattern table (tokens e, s,
 * ee, es, se, ss, psk); NN, NK, IK, XX and NKpsk0 are table entries, so the
 * state machine is tested against the cacophony vectors for all five.
 * The mesh uses Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s with the upstream
 * prologue (nmi_net_prologue) and derives its packet keys from the
 * handshake hash with the Net KDF (src/crypto/session.h), not from split().
 *
 * Errors:
 *   NM_EINVAL  misuse: NULL pointers, a missing key the pattern needs,
 *              wrong turn, handshake finished or failed, output buffer
 *              too small;
 *   NM_ETOOBIG the message would exceed 65535 bytes;
 *   NM_EDECODE a received message has the wrong length for the pattern
 *              (too short, or longer than 65535). Checked before any
 *              state changes, so the handshake is still usable;
 *   NM_ECRYPTO authentication failed (bad tag: wrong PSK, wrong static
 *              key, wrong prologue, tampered bytes) or a DH produced the
 *              all-zero output. The handshake becomes failed and its
 *              secrets are wiped; create a new one.
 *
 * Not thread-safe: one handshake object belongs to one thread at a time.
 */
#ifndef NMI_NOISE_H
#define NMI_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/common.h>

#define NMI_NOISE_DHLEN 32
#define NMI_NOISE_HASHLEN 32
#define NMI_NOISE_KEYLEN 32
#define NMI_NOISE_PSKLEN 32
#define NMI_NOISE_TAGLEN 16
#define NMI_NOISE_MAX_MSG 65535

/* The handshake patterns in the table. */
typedef enum nmi_noise_pattern {
    NMI_NOISE_NN = 0,
    NMI_NOISE_NK,
    NMI_NOISE_IK,
    NMI_NOISE_XX,
    NMI_NOISE_NKPSK0,
    NMI_NOISE_PATTERN_COUNT
} nmi_noise_pattern;

/* The protocol name of a pattern ("Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s"),
 * or NULL for an unknown value. */
const char *nmi_noise_protocol_name(nmi_noise_pattern p);

/* A Noise CipherState (k, n). Also the transport cipher returned by
 * split(). The nonce is 4 zero bytes ‖ n as u64 LE (ChaChaPoly). */
typedef struct nmi_noise_cipher {
    uint8_t k[NMI_NOISE_KEYLEN];
    uint64_t n;
    bool has_key;
} nmi_noise_cipher;

/* EncryptWithAd: out[ptlen + 16] (or out[ptlen] without a key). out may
 * equal pt. NM_ERANGE when n reached 2^64-1 (never wraps). */
int nmi_noise_cipher_encrypt(nmi_noise_cipher *c, const uint8_t *ad,
                             size_t adlen, const uint8_t *pt, size_t ptlen,
                             uint8_t *out);
/* DecryptWithAd: out[ctlen - 16]. NM_EDECODE if ctlen < 16, NM_ECRYPTO on
 * a bad tag (n is then unchanged). */
int nmi_noise_cipher_decrypt(nmi_noise_cipher *c, const uint8_t *ad,
                             size_t adlen, const uint8_t *ct, size_t ctlen,
                             uint8_t *out) NM_NODISCARD;
void nmi_noise_cipher_wipe(nmi_noise_cipher *c);

/* Handshake configuration. Keys the pattern does not use must be NULL;
 * keys it needs must be present (NM_EINVAL otherwise). */
typedef struct nmi_noise_config {
    nmi_noise_pattern pattern;
    bool initiator;
    const uint8_t *prologue; /* may be NULL when prologue_len == 0 */
    size_t prologue_len;
    const uint8_t *s;   /* local static private key (32), or NULL */
    const uint8_t *rs;  /* remote static public key (32), pre-message */
    const uint8_t *psk; /* 32-byte PSK for psk patterns */
    /* Tests only: a fixed ephemeral private key instead of a random one
     * (the cacophony vectors fix both ephemerals). NULL in production. */
    const uint8_t *fixed_e;
    /* Optional: the public key of `s`, when the caller already has it
     * (saves one X25519 base-point multiplication per handshake). It is
     * trusted to equal X25519(s). */
    const uint8_t *s_pub;
} nmi_noise_config;

typedef enum nmi_noise_status {
    NMI_NOISE_IN_PROGRESS = 0,
    NMI_NOISE_DONE,
    NMI_NOISE_FAILED
} nmi_noise_status;

typedef struct nmi_noise_hs {
    const void *pat; /* the pattern table entry */
    bool initiator;
    nmi_noise_status status;
    unsigned msg_index; /* index of the next handshake message */
    /* SymmetricState */
    nmi_noise_cipher cs;
    uint8_t ck[NMI_NOISE_HASHLEN];
    uint8_t h[NMI_NOISE_HASHLEN];
    /* keys */
    uint8_t s_priv[NMI_NOISE_DHLEN], s_pub[NMI_NOISE_DHLEN];
    uint8_t e_priv[NMI_NOISE_DHLEN], e_pub[NMI_NOISE_DHLEN];
    uint8_t rs[NMI_NOISE_DHLEN], re[NMI_NOISE_DHLEN];
    uint8_t psk[NMI_NOISE_PSKLEN];
    bool has_s, has_e, has_rs, has_re, has_psk, fixed_e;
    bool fixed_e_pub; /* e_pub is already X25519(e_priv) */
} nmi_noise_hs;

/* Initialize: InitializeSymmetric(protocol_name), MixHash(prologue), the
 * pre-message public keys. On error the object is wiped. */
int nmi_noise_init(nmi_noise_hs *hs, const nmi_noise_config *cfg) NM_NODISCARD;

/* Use a pre-generated, one-use ephemeral keypair (fresh from the CSPRNG,
 * made ahead of time off the latency path) for the next 'e' token this
 * side writes. pub must equal X25519(priv); the keys are copied. NM_EINVAL
 * on NULL or a finished handshake. */
int nmi_noise_set_ephemeral(nmi_noise_hs *hs, const uint8_t priv[32],
                            const uint8_t pub[32]);

/* Bytes that write_message produces for a payload of payload_len at the
 * current step (0 when it is not our turn or the handshake is over). */
size_t nmi_noise_write_len(const nmi_noise_hs *hs, size_t payload_len);

/* Produce the next handshake message (our turn only) into out[cap].
 * *out_len receives its length. */
int nmi_noise_write_message(nmi_noise_hs *hs, const uint8_t *payload,
                            size_t payload_len, uint8_t *out, size_t cap,
                            size_t *out_len) NM_NODISCARD;

/* Consume the peer's next handshake message; the decrypted payload goes to
 * payload[cap] (payload may be NULL when cap == 0), its length to
 * *payload_len. */
int nmi_noise_read_message(nmi_noise_hs *hs, const uint8_t *msg,
                           size_t msg_len, uint8_t *payload, size_t cap,
                           size_t *payload_len) NM_NODISCARD;

/* True when it is our turn to write_message. */
bool nmi_noise_my_turn(const nmi_noise_hs *hs);
/* True once every handshake message was written/read successfully. */
bool nmi_noise_is_done(const nmi_noise_hs *hs);

/* The handshake hash h (32 bytes); valid at any time, final once done. */
void nmi_noise_handshake_hash(const nmi_noise_hs *hs,
                              uint8_t out[NMI_NOISE_HASHLEN]);

/* The remote static public key if known (pre-message or received 's').
 * NM_ENOTFOUND otherwise. */
int nmi_noise_remote_static(const nmi_noise_hs *hs,
                            uint8_t out[NMI_NOISE_DHLEN]);

/* Split(): the two transport CipherStates, c1 for initiator-to-responder
 * and c2 for responder-to-initiator. Handshake must be done (NM_EINVAL
 * otherwise). Net does not use this (see session.h); the tests do. */
int nmi_noise_split(const nmi_noise_hs *hs, nmi_noise_cipher *c1,
                    nmi_noise_cipher *c2);

/* Wipe every secret in the handshake (always call when done with it). */
void nmi_noise_wipe(nmi_noise_hs *hs);

/* ----------------------------------------------------------------------
 * Net's use of Noise (upstream crypto.rs / mesh.rs).
 */

#define NMI_NET_PROLOGUE_LEN 32
#define NMI_NET_MSG1_DIRECT_LEN 48 /* e 32 + tag 16, empty payload */
#define NMI_NET_MSG1_ROUTED_LEN 56 /* + the initiator's node_id u64 LE */
#define NMI_NET_MSG2_LEN 48        /* e 32 + tag 16, empty payload */

/* "net-handshake-v1" (16) ‖ src u64 LE ‖ dst u64 LE, where each id is
 * `node_id as u32`, zero-extended (this helper truncates). The initiator
 * passes (self, peer), the responder (peer, self). */
void nmi_net_prologue(uint8_t out[NMI_NET_PROLOGUE_LEN], uint64_t src_node_id,
                      uint64_t dst_node_id);

/* NKpsk0 initiator with the Net prologue (self_node_id, peer_node_id). */
int nmi_net_hs_initiator(nmi_noise_hs *hs, const uint8_t psk[32],
                         const uint8_t responder_static_pub[32],
                         uint64_t self_node_id,
                         uint64_t peer_node_id) NM_NODISCARD;

/* NKpsk0 responder with the Net prologue (peer_node_id, self_node_id).
 * For routed handshakes peer_node_id is the routing header's src_id. */
int nmi_net_hs_responder(nmi_noise_hs *hs, const uint8_t psk[32],
                         const uint8_t static_priv[32], uint64_t peer_node_id,
                         uint64_t self_node_id) NM_NODISCARD;
/* The same with the static public key supplied (static_pub must equal
 * X25519(static_priv)): no base-point multiplication at init. */
int nmi_net_hs_responder2(nmi_noise_hs *hs, const uint8_t psk[32],
                          const uint8_t static_priv[32],
                          const uint8_t static_pub[32], uint64_t peer_node_id,
                          uint64_t self_node_id) NM_NODISCARD;

/* X25519 over libsodium. nmi_noise_dh fails with NM_ECRYPTO on the
 * all-zero output (a low-order peer key); nmi_noise_pubkey derives the
 * public key of a private one; nmi_noise_keypair makes a random pair
 * (e.g. a node's Noise static key, random per instance as upstream). */
int nmi_noise_dh(uint8_t out[32], const uint8_t priv[32],
                 const uint8_t pub[32]) NM_NODISCARD;
int nmi_noise_pubkey(uint8_t pub[32], const uint8_t priv[32]);
int nmi_noise_keypair(uint8_t pub[32], uint8_t priv[32]);

#endif
