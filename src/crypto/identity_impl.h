/*
 * src/crypto/identity_impl.h - internals shared by identity.c and token.c.
 */
#ifndef NMI_IDENTITY_IMPL_H
#define NMI_IDENTITY_IMPL_H

#include <stdint.h>

#include <netmesh/identity.h>

struct nm_identity {
    uint8_t seed[NM_IDENTITY_SEED_BYTES]; /* secret */
    uint8_t sk[64];                       /* secret: libsodium seed || pk */
    uint8_t pk[NM_ENTITY_ID_BYTES];
    uint64_t node_id;
    uint64_t origin_hash;
};

/* nmi_sodium_ready - sodium_init() once (idempotent, thread-safe).
 * NM_OK or NM_EINTERNAL. */
int nmi_sodium_ready(void);

/* Domain keys of the id derivations (ASCII bytes, no NUL). */
#define NMI_NODE_ID_KEY "net-node-id-v1"
#define NMI_ORIGIN_KEY "net-origin-v1"

#endif
