/*
 * src/crypto/identity.c - ed25519 identities (libsodium) and the ids
 * upstream Net derives from the public key with keyed BLAKE2s.
 */
#include "crypto/identity_impl.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "crypto/blake2s.h"

size_t
nm_identity_seed_bytes(void)
{
    return NM_IDENTITY_SEED_BYTES;
}

size_t
nm_entity_id_bytes(void)
{
    return NM_ENTITY_ID_BYTES;
}

size_t
nm_signature_bytes(void)
{
    return NM_SIGNATURE_BYTES;
}

int
nmi_sodium_ready(void)
{
    /* sodium_init is thread-safe and idempotent: 0 first time, 1 after. */
    if (sodium_init() < 0) {
        return nmi_err(NM_EINTERNAL, "libsodium failed to initialize");
    }
    return NM_OK;
}

/* u64 LE of BLAKE2s-256(key = domain, msg = pk)[0..8]. */
static int
derive_id(const char *domain, const uint8_t pk[NM_ENTITY_ID_BYTES],
          uint64_t *out)
{
    uint8_t h[NMI_BLAKE2S_OUTBYTES];
    int rc = nmi_blake2s(h, sizeof(h), domain, strlen(domain), pk,
                         NM_ENTITY_ID_BYTES);
    if (rc == NM_OK) {
        *out = nmi_load_le64(h);
    }
    return rc;
}

int
nm_entity_node_id(const uint8_t entity_id[NM_ENTITY_ID_BYTES], uint64_t *out)
{
    if (entity_id == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "entity_node_id: NULL argument");
    }
    return derive_id(NMI_NODE_ID_KEY, entity_id, out);
}

int
nm_entity_origin_hash(const uint8_t entity_id[NM_ENTITY_ID_BYTES],
                      uint64_t *out)
{
    if (entity_id == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "entity_origin_hash: NULL argument");
    }
    return derive_id(NMI_ORIGIN_KEY, entity_id, out);
}

static void
identity_wipe_free(nm_identity *id)
{
    sodium_memzero(id, sizeof(*id));
    free(id);
}

int
nm_identity_from_seed(const uint8_t seed[NM_IDENTITY_SEED_BYTES],
                      nm_identity **out)
{
    if (seed == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "identity_from_seed: NULL argument");
    }
    int rc = nmi_sodium_ready();
    if (rc != NM_OK) {
        return rc;
    }
    nm_identity *id = calloc(1, sizeof(*id));
    if (id == NULL) {
        return nmi_err(NM_ENOMEM, "identity: out of memory");
    }
    memcpy(id->seed, seed, NM_IDENTITY_SEED_BYTES);
    if (crypto_sign_seed_keypair(id->pk, id->sk, id->seed) != 0) {
        identity_wipe_free(id);
        return nmi_err(NM_EINTERNAL, "identity: keypair derivation failed");
    }
    if ((rc = derive_id(NMI_NODE_ID_KEY, id->pk, &id->node_id)) != NM_OK ||
        (rc = derive_id(NMI_ORIGIN_KEY, id->pk, &id->origin_hash)) != NM_OK) {
        identity_wipe_free(id);
        return rc;
    }
    *out = id;
    return NM_OK;
}

int
nm_identity_generate(nm_identity **out)
{
    uint8_t seed[NM_IDENTITY_SEED_BYTES];

    if (out == NULL) {
        return nmi_err(NM_EINVAL, "identity_generate: NULL out");
    }
    int rc = nmi_sodium_ready();
    if (rc != NM_OK) {
        return rc;
    }
    randombytes_buf(seed, sizeof(seed));
    rc = nm_identity_from_seed(seed, out);
    sodium_memzero(seed, sizeof(seed));
    return rc;
}

int
nm_identity_to_seed(const nm_identity *id,
                    uint8_t seed_out[NM_IDENTITY_SEED_BYTES])
{
    if (id == NULL || seed_out == NULL) {
        return nmi_err(NM_EINVAL, "identity_to_seed: NULL argument");
    }
    memcpy(seed_out, id->seed, NM_IDENTITY_SEED_BYTES);
    return NM_OK;
}

void
nm_identity_free(nm_identity *id)
{
    if (id != NULL) {
        identity_wipe_free(id);
    }
}

int
nm_identity_entity_id(const nm_identity *id, uint8_t out[NM_ENTITY_ID_BYTES])
{
    if (id == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "identity_entity_id: NULL argument");
    }
    memcpy(out, id->pk, NM_ENTITY_ID_BYTES);
    return NM_OK;
}

int
nm_identity_node_id(const nm_identity *id, uint64_t *out)
{
    if (id == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "identity_node_id: NULL argument");
    }
    *out = id->node_id;
    return NM_OK;
}

int
nm_identity_origin_hash(const nm_identity *id, uint64_t *out)
{
    if (id == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "identity_origin_hash: NULL argument");
    }
    *out = id->origin_hash;
    return NM_OK;
}

int
nm_identity_sign(const nm_identity *id, const void *msg, size_t len,
                 uint8_t sig[NM_SIGNATURE_BYTES])
{
    if (id == NULL || sig == NULL || (msg == NULL && len > 0)) {
        return nmi_err(NM_EINVAL, "identity_sign: NULL argument");
    }
    int rc = nmi_sodium_ready();
    if (rc != NM_OK) {
        return rc;
    }
    static const uint8_t empty[1] = {0};
    if (crypto_sign_detached(sig, NULL, len ? msg : empty, len, id->sk) != 0) {
        sodium_memzero(sig, NM_SIGNATURE_BYTES);
        return nmi_err(NM_ECRYPTO, "signing failed");
    }
    return NM_OK;
}

int
nm_identity_verify(const uint8_t entity_id[NM_ENTITY_ID_BYTES],
                   const void *msg, size_t len,
                   const uint8_t sig[NM_SIGNATURE_BYTES])
{
    if (entity_id == NULL || sig == NULL || (msg == NULL && len > 0)) {
        return nmi_err(NM_EINVAL, "identity_verify: NULL argument");
    }
    int rc = nmi_sodium_ready();
    if (rc != NM_OK) {
        return rc;
    }
    static const uint8_t empty[1] = {0};
    if (crypto_sign_verify_detached(sig, len ? msg : empty, len, entity_id) !=
        0) {
        return nmi_err(NM_ECRYPTO, "signature verification failed");
    }
    return NM_OK;
}
