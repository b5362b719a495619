/*
 * netmesh/identity.h - the node identity: an ed25519 keypair derived from a
 * 32-byte seed, and the ids upstream Net derives from its public key.
 *
 *   entity_id   = the 32-byte ed25519 public key
 *   node_id     = u64 LE of BLAKE2s-256(key = "net-node-id-v1", msg =
 *                 entity_id)[0..8]
 *   origin_hash = u64 LE of BLAKE2s-256(key = "net-origin-v1",  msg =
 *                 entity_id)[0..8]
 *
 * The same seed gives the same ids forever (docs/PROTOCOL.md §1 records
 * vectors). The seed is the only secret: whoever holds it IS the node. See
 * docs/security.md.
 *
 * Every function here is thread-safe; an nm_identity is immutable after
 * creation, so one handle may be shared by any number of threads (only
 * nm_identity_free must not race with other uses of the same handle).
 */
#ifndef NETMESH_IDENTITY_H
#define NETMESH_IDENTITY_H

#include <netmesh/common.h>

NM_BEGIN_DECLS

/* Size of an identity seed (secret). */
#define NM_IDENTITY_SEED_BYTES 32
/* Size of an entity id (the ed25519 public key). */
#define NM_ENTITY_ID_BYTES 32
/* Size of an ed25519 signature. */
#define NM_SIGNATURE_BYTES 64

/* nm_identity_seed_bytes - NM_IDENTITY_SEED_BYTES, for FFI users. */
NM_API size_t nm_identity_seed_bytes(void);
/* nm_entity_id_bytes - NM_ENTITY_ID_BYTES, for FFI users. */
NM_API size_t nm_entity_id_bytes(void);
/* nm_signature_bytes - NM_SIGNATURE_BYTES, for FFI users. */
NM_API size_t nm_signature_bytes(void);

/* An ed25519 identity (opaque). Holds the secret key; freed (and wiped)
 * only by nm_identity_free. */
typedef struct nm_identity nm_identity;

/* nm_identity_generate - create an identity from a fresh random seed
 * (libsodium's CSPRNG). On success *out owns a new handle the caller frees
 * with nm_identity_free. Errors: NM_EINVAL (out NULL), NM_ENOMEM,
 * NM_EINTERNAL (libsodium could not initialize). Thread-safe. */
NM_API int nm_identity_generate(nm_identity **out);

/* nm_identity_from_seed - create the identity determined by `seed`. The
 * seed is copied (the caller keeps and should wipe its buffer). Same seed,
 * same keys and ids. On success *out owns a new handle (free with
 * nm_identity_free). Errors: NM_EINVAL, NM_ENOMEM, NM_EINTERNAL.
 * Thread-safe. */
NM_API int nm_identity_from_seed(const uint8_t seed[NM_IDENTITY_SEED_BYTES],
                                 nm_identity **out);

/* nm_identity_to_seed - copy the identity's 32-byte seed into seed_out.
 * SECRET MATERIAL: the seed recreates the private key; store it only in a
 * file of mode 0600 (as `netmesh identity new` does) and wipe buffers that
 * held it (sodium_memzero). Errors: NM_EINVAL. Thread-safe. */
NM_API int nm_identity_to_seed(const nm_identity *id,
                               uint8_t seed_out[NM_IDENTITY_SEED_BYTES]);

/* nm_identity_free - wipe the secret key and seed, then free the handle.
 * NULL is a no-op. The handle must not be in use by another thread. */
NM_API void nm_identity_free(nm_identity *id);

/* nm_identity_entity_id - copy the 32-byte entity id (the public key) into
 * out. Errors: NM_EINVAL. Thread-safe. */
NM_API int nm_identity_entity_id(const nm_identity *id,
                                 uint8_t out[NM_ENTITY_ID_BYTES]);

/* nm_identity_node_id - the identity's 64-bit node id into *out.
 * Errors: NM_EINVAL. Thread-safe. */
NM_API int nm_identity_node_id(const nm_identity *id, uint64_t *out);

/* nm_identity_origin_hash - the identity's 64-bit origin hash into *out.
 * Errors: NM_EINVAL. Thread-safe. */
NM_API int nm_identity_origin_hash(const nm_identity *id, uint64_t *out);

/* nm_entity_node_id - node_id of any entity id (no secret needed).
 * Errors: NM_EINVAL. Thread-safe. */
NM_API int nm_entity_node_id(const uint8_t entity_id[NM_ENTITY_ID_BYTES],
                             uint64_t *out);

/* nm_entity_origin_hash - origin_hash of any entity id.
 * Errors: NM_EINVAL. Thread-safe. */
NM_API int nm_entity_origin_hash(const uint8_t entity_id[NM_ENTITY_ID_BYTES],
                                 uint64_t *out);

/* nm_identity_sign - ed25519-sign msg[0..len) (no prefix, no hashing of our
 * own) into sig. msg may be NULL when len is 0. Errors: NM_EINVAL,
 * NM_ECRYPTO (libsodium refused). Thread-safe. */
NM_API int nm_identity_sign(const nm_identity *id, const void *msg, size_t len,
                            uint8_t sig[NM_SIGNATURE_BYTES]);

/* nm_identity_verify - check an ed25519 signature of msg[0..len) by the
 * entity `entity_id`. Uses libsodium's strict verification (canonical
 * encodings, small-order keys and R rejected). Returns NM_OK, NM_ECRYPTO
 * for any bad signature or key (deliberately no finer reason), NM_EINVAL
 * for NULL arguments. Thread-safe. */
NM_API NM_NODISCARD int
nm_identity_verify(const uint8_t entity_id[NM_ENTITY_ID_BYTES],
                   const void *msg, size_t len,
                   const uint8_t sig[NM_SIGNATURE_BYTES]);

NM_END_DECLS

#endif
