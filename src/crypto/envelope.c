/*
 * src/crypto/envelope.c - the 209-byte sealed identity envelope
 * (X25519 + BLAKE2s-MAC + XChaCha20-Poly1305 + ed25519), byte-compatible
 * with upstream IdentityEnvelope v1. See envelope.h for the layout.
 */
#include "crypto/envelope.h"

#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "crypto/blake2s.h"
#include "crypto/noise.h"

static const char nmi_env_key_domain[] = "net-identity-envelope";
static const char nmi_env_nonce_domain[] = "net-identity-nonce";

/* key = B2s(key = "net-identity-envelope", msg = shared) */
static void
env_key(uint8_t key[32], const uint8_t shared[32])
{
    (void)nmi_blake2s(key, 32, nmi_env_key_domain,
                      sizeof(nmi_env_key_domain) - 1, shared, 32);
}

/* nonce = B2s(key = "net-identity-nonce", msg = eph_pk ‖ target_pub)[..24] */
static void
env_nonce(uint8_t nonce[24], const uint8_t eph_pk[32],
          const uint8_t target_pub[32])
{
    nmi_blake2s_state st;
    uint8_t full[32];

    (void)nmi_blake2s_init(&st, 32, nmi_env_nonce_domain,
                           sizeof(nmi_env_nonce_domain) - 1);
    nmi_blake2s_update(&st, eph_pk, 32);
    nmi_blake2s_update(&st, target_pub, 32);
    nmi_blake2s_final(&st, full);
    memcpy(nonce, full, 24);
}

static int
env_seal(uint8_t out[NMI_ENVELOPE_SIZE], const uint8_t seed[32],
         const uint8_t target_pub[32], const uint8_t chain_link[32],
         const uint8_t *fixed_eph)
{
    uint8_t eph_sk[32], eph_pk[32], shared[32], key[32], nonce[24];
    uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sign_sk[crypto_sign_SECRETKEYBYTES];
    uint8_t transcript[32 + NMI_CHAIN_LINK_SIZE];
    unsigned long long clen = 0;
    int rc;

    if (out == NULL || seed == NULL || target_pub == NULL ||
        chain_link == NULL) {
        return nmi_err(NM_EINVAL, "envelope: NULL argument");
    }
    if (sodium_init() < 0) {
        return nmi_err(NM_EINTERNAL, "envelope: libsodium init failed");
    }
    if (fixed_eph != NULL) {
        memcpy(eph_sk, fixed_eph, 32);
        rc = nmi_noise_pubkey(eph_pk, eph_sk);
    } else {
        rc = nmi_noise_keypair(eph_pk, eph_sk);
    }
    if (rc == NM_OK) {
        rc = nmi_noise_dh(shared, eph_sk, target_pub);
    }
    sodium_memzero(eph_sk, sizeof(eph_sk));
    if (rc != NM_OK) {
        sodium_memzero(shared, sizeof(shared));
        return rc;
    }
    env_key(key, shared);
    sodium_memzero(shared, sizeof(shared));
    env_nonce(nonce, eph_pk, target_pub);

    out[0] = NMI_ENVELOPE_VERSION;
    memcpy(out + NMI_ENVELOPE_OFF_TARGET, target_pub, 32);
    memcpy(out + NMI_ENVELOPE_OFF_SEALED, eph_pk, 32);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        out + NMI_ENVELOPE_OFF_SEALED + 32, &clen, seed, 32, chain_link,
        NMI_CHAIN_LINK_SIZE, NULL, nonce, key);
    sodium_memzero(key, sizeof(key));

    crypto_sign_seed_keypair(sign_pk, sign_sk, seed);
    memcpy(out + NMI_ENVELOPE_OFF_SIGNER, sign_pk, 32);
    memcpy(transcript, target_pub, 32);
    memcpy(transcript + 32, chain_link, NMI_CHAIN_LINK_SIZE);
    crypto_sign_detached(out + NMI_ENVELOPE_OFF_SIG, NULL, transcript,
                         sizeof(transcript), sign_sk);
    sodium_memzero(sign_sk, sizeof(sign_sk));
    return NM_OK;
}

int
nmi_envelope_seal(uint8_t out[NMI_ENVELOPE_SIZE], const uint8_t seed[32],
                  const uint8_t target_static_pub[32],
                  const uint8_t chain_link[NMI_CHAIN_LINK_SIZE])
{
    return env_seal(out, seed, target_static_pub, chain_link, NULL);
}

int
nmi_envelope_seal_with_ephemeral(uint8_t out[NMI_ENVELOPE_SIZE],
                                 const uint8_t seed[32],
                                 const uint8_t target_static_pub[32],
                                 const uint8_t chain_link[32],
                                 const uint8_t eph_priv[32])
{
    if (eph_priv == NULL) {
        return nmi_err(NM_EINVAL, "envelope: NULL argument");
    }
    return env_seal(out, seed, target_static_pub, chain_link, eph_priv);
}

static int
env_decode(const uint8_t *env, size_t len)
{
    if (env == NULL && len > 0) {
        return nmi_err(NM_EINVAL, "envelope: NULL argument");
    }
    if (len != NMI_ENVELOPE_SIZE) {
        return nmi_err(NM_EDECODE, "envelope: %zu bytes, %d expected", len,
                       NMI_ENVELOPE_SIZE);
    }
    if (env[0] != NMI_ENVELOPE_VERSION) {
        return nmi_err(NM_EDECODE, "envelope: unknown version %u",
                       (unsigned)env[0]);
    }
    return NM_OK;
}

int
nmi_envelope_signer(const uint8_t *env, size_t len, uint8_t signer_pub[32])
{
    int rc;

    if (signer_pub == NULL) {
        return nmi_err(NM_EINVAL, "envelope: NULL argument");
    }
    if ((rc = env_decode(env, len)) != NM_OK) {
        return rc;
    }
    memcpy(signer_pub, env + NMI_ENVELOPE_OFF_SIGNER, 32);
    return NM_OK;
}

int
nmi_envelope_open(uint8_t seed_out[32], const uint8_t *env, size_t len,
                  const uint8_t target_static_priv[32],
                  const uint8_t chain_link[NMI_CHAIN_LINK_SIZE],
                  const uint8_t *expected_signer)
{
    uint8_t transcript[32 + NMI_CHAIN_LINK_SIZE];
    uint8_t my_pub[32], shared[32], key[32], nonce[24], seed[32];
    uint8_t sign_pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sign_sk[crypto_sign_SECRETKEYBYTES];
    const uint8_t *target, *eph_pk, *signer;
    unsigned long long mlen = 0;
    int rc, bad = 0;

    if (seed_out == NULL || target_static_priv == NULL || chain_link == NULL) {
        return nmi_err(NM_EINVAL, "envelope: NULL argument");
    }
    memset(seed_out, 0, 32);
    if ((rc = env_decode(env, len)) != NM_OK) {
        return rc;
    }
    if (sodium_init() < 0) {
        return nmi_err(NM_EINTERNAL, "envelope: libsodium init failed");
    }
    target = env + NMI_ENVELOPE_OFF_TARGET;
    eph_pk = env + NMI_ENVELOPE_OFF_SEALED;
    signer = env + NMI_ENVELOPE_OFF_SIGNER;

    /* 0. The caller's expected identity (public data: early reject). */
    if (expected_signer != NULL &&
        sodium_memcmp(expected_signer, signer, 32) != 0) {
        goto fail;
    }
    /* 1. The attestation, before any secret is touched. */
    memcpy(transcript, target, 32);
    memcpy(transcript + 32, chain_link, NMI_CHAIN_LINK_SIZE);
    if (crypto_sign_verify_detached(env + NMI_ENVELOPE_OFF_SIG, transcript,
                                    sizeof(transcript), signer) != 0) {
        goto fail;
    }
    /* 2. The envelope is sealed to us. */
    if (nmi_noise_pubkey(my_pub, target_static_priv) != NM_OK ||
        sodium_memcmp(my_pub, target, 32) != 0) {
        goto fail;
    }
    /* 3. Unseal. */
    if (nmi_noise_dh(shared, target_static_priv, eph_pk) != NM_OK) {
        goto fail;
    }
    env_key(key, shared);
    sodium_memzero(shared, sizeof(shared));
    env_nonce(nonce, eph_pk, target);
    bad = crypto_aead_xchacha20poly1305_ietf_decrypt(
        seed, &mlen, NULL, eph_pk + 32, NMI_ENVELOPE_SEALED_SIZE - 32,
        chain_link, NMI_CHAIN_LINK_SIZE, nonce, key);
    sodium_memzero(key, sizeof(key));
    if (bad != 0 || mlen != 32) {
        sodium_memzero(seed, sizeof(seed));
        goto fail;
    }
    /* 4. The seed is the identity that signed. */
    crypto_sign_seed_keypair(sign_pk, sign_sk, seed);
    sodium_memzero(sign_sk, sizeof(sign_sk));
    if (sodium_memcmp(sign_pk, signer, 32) != 0) {
        sodium_memzero(seed, sizeof(seed));
        goto fail;
    }
    memcpy(seed_out, seed, 32);
    sodium_memzero(seed, sizeof(seed));
    return NM_OK;

fail:
    return nmi_err(NM_ECRYPTO, "cryptographic verification failed");
}
