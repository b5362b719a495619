/*
 * tests/unit/test_envelope.c - the 209-byte sealed identity envelope:
 * a known answer computed independently (Python: hashlib.blake2s and the
 * `cryptography` package, XChaCha20 via HChaCha20), round trips, every bit
 * flipped, wrong target key, wrong chain link, truncation, spliced and
 * substituted envelopes.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "crypto/envelope.h"
#include "crypto/noise.h"

static void
unhex(uint8_t *out, size_t n, const char *hex)
{
    cr_assert_eq(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void
fill_seq(uint8_t *p, size_t n, uint8_t start)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(start + i);
    }
}

/* A CausalLink {origin_hash, horizon, sequence, parent_hash}, 4 x u64 LE. */
static void
chain_link(uint8_t out[32], uint64_t origin, uint64_t seq)
{
    nmi_store_le64(out, origin);
    nmi_store_le64(out + 8, 0);
    nmi_store_le64(out + 16, seq);
    nmi_store_le64(out + 24, 0);
}

static const char *kat_env =
    "0179a631eede1bf9c98f12032cdeadd0e7a079398fc786b88cc846ec89af85a51a493e82"
    "fc74464a59268817623d2053c5eb8e2cc4a988b4fee179ec6b010d531d6b732ddf3f85b7"
    "c1de2dafca1ca6813dd79996626a70bfa666da6d067beac1398c7861cf5915b454bbe240"
    "256755bb0503a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531"
    "b872ce002d64bd7c49ab88d98b4ffc7011255da1fa8229c0221a00b5e638ce4f1570e774"
    "a4a22b907d05e5a37e6f3cdb3aff879bcb3ff575c405b7bb17dcef4c04";

Test(envelope, known_answer)
{
    uint8_t seed[32], tpriv[32], tpub[32], epriv[32], link[32];
    uint8_t want[NMI_ENVELOPE_SIZE], env[NMI_ENVELOPE_SIZE], back[32];
    uint8_t signer[32], spk[32], ssk[64];

    fill_seq(seed, 32, 0x00);
    fill_seq(tpriv, 32, 0x40);
    fill_seq(epriv, 32, 0x80);
    chain_link(link, 0xDEADBEEF, 7);
    cr_assert_eq(nmi_noise_pubkey(tpub, tpriv), NM_OK);
    unhex(want, NMI_ENVELOPE_SIZE, kat_env);

    cr_assert_eq(
        nmi_envelope_seal_with_ephemeral(env, seed, tpub, link, epriv), NM_OK);
    cr_assert_arr_eq(env, want, NMI_ENVELOPE_SIZE);
    cr_assert_eq(
        nmi_envelope_open(back, want, sizeof(want), tpriv, link, NULL), NM_OK,
        "%s", nm_errdetail());
    cr_assert_arr_eq(back, seed, 32);
    cr_assert_eq(nmi_envelope_signer(want, sizeof(want), signer), NM_OK);
    cr_assert_eq(sodium_init() >= 0, true);
    crypto_sign_seed_keypair(spk, ssk, seed);
    cr_assert_arr_eq(signer, spk, 32);
}

typedef struct fixture {
    uint8_t seed[32], tpub[32], tpriv[32], link[32];
    uint8_t env[NMI_ENVELOPE_SIZE];
} fixture;

static void
fx_setup(fixture *f)
{
    cr_assert_geq(sodium_init(), 0);
    randombytes_buf(f->seed, 32);
    cr_assert_eq(nmi_noise_keypair(f->tpub, f->tpriv), NM_OK);
    chain_link(f->link, 0x1234, 42);
    cr_assert_eq(nmi_envelope_seal(f->env, f->seed, f->tpub, f->link), NM_OK);
}

Test(envelope, roundtrip_and_layout)
{
    fixture f;
    uint8_t back[32], spk[32], ssk[64], env2[NMI_ENVELOPE_SIZE];

    fx_setup(&f);
    cr_assert_eq(f.env[0], 1);
    cr_assert_arr_eq(f.env + 1, f.tpub, 32);
    crypto_sign_seed_keypair(spk, ssk, f.seed);
    cr_assert_arr_eq(f.env + 113, spk, 32);
    cr_assert_eq(
        nmi_envelope_open(back, f.env, sizeof(f.env), f.tpriv, f.link, NULL),
        NM_OK);
    cr_assert_arr_eq(back, f.seed, 32);
    /* With the expected signer. */
    memset(back, 0, 32);
    cr_assert_eq(
        nmi_envelope_open(back, f.env, sizeof(f.env), f.tpriv, f.link, spk),
        NM_OK);
    cr_assert_arr_eq(back, f.seed, 32);
    /* A fresh ephemeral each time: two seals differ, both open. */
    cr_assert_eq(nmi_envelope_seal(env2, f.seed, f.tpub, f.link), NM_OK);
    cr_assert_arr_neq(env2 + 33, f.env + 33, 80);
    cr_assert_arr_eq(env2 + 145, f.env + 145, 64, "ed25519 is deterministic");
    cr_assert_eq(
        nmi_envelope_open(back, env2, sizeof(env2), f.tpriv, f.link, NULL),
        NM_OK);
}

Test(envelope, every_bit_flip_rejected)
{
    fixture f;
    uint8_t bad[NMI_ENVELOPE_SIZE], back[32], zero[32] = {0};

    fx_setup(&f);
    for (size_t bit = 0; bit < NMI_ENVELOPE_SIZE * 8; bit++) {
        memcpy(bad, f.env, sizeof(bad));
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        memset(back, 0xaa, 32);
        int rc =
            nmi_envelope_open(back, bad, sizeof(bad), f.tpriv, f.link, NULL);
        cr_assert_eq(rc, bit < 8 ? NM_EDECODE : NM_ECRYPTO, "bit %zu: %d", bit,
                     rc);
        cr_assert_arr_eq(back, zero, 32, "no seed on failure");
    }
}

Test(envelope, wrong_target_key_rejected)
{
    fixture f;
    uint8_t opub[32], opriv[32], back[32];

    fx_setup(&f);
    cr_assert_eq(nmi_noise_keypair(opub, opriv), NM_OK);
    cr_assert_eq(
        nmi_envelope_open(back, f.env, sizeof(f.env), opriv, f.link, NULL),
        NM_ECRYPTO);
    cr_assert_str_eq(nm_errdetail(), "cryptographic verification failed");
    /* Sealing to a low-order point fails instead of sealing to nobody. */
    memset(opub, 0, 32);
    cr_assert_eq(nmi_envelope_seal(f.env, f.seed, opub, f.link), NM_ECRYPTO);
}

Test(envelope, wrong_chain_link_rejected)
{
    fixture f;
    uint8_t link[32], back[32];

    fx_setup(&f);
    for (size_t bit = 0; bit < 256; bit += 7) {
        memcpy(link, f.link, 32);
        link[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_eq(
            nmi_envelope_open(back, f.env, sizeof(f.env), f.tpriv, link, NULL),
            NM_ECRYPTO, "link bit %zu", bit);
    }
    chain_link(link, 0x1234, 43); /* replay at the next migration point */
    cr_assert_eq(
        nmi_envelope_open(back, f.env, sizeof(f.env), f.tpriv, link, NULL),
        NM_ECRYPTO);
}

Test(envelope, truncated_or_long_rejected)
{
    fixture f;
    uint8_t big[NMI_ENVELOPE_SIZE + 1], back[32], signer[32];

    fx_setup(&f);
    for (size_t len = 0; len < NMI_ENVELOPE_SIZE; len++) {
        cr_assert_eq(
            nmi_envelope_open(back, f.env, len, f.tpriv, f.link, NULL),
            NM_EDECODE, "len %zu", len);
    }
    memcpy(big, f.env, sizeof(f.env));
    big[NMI_ENVELOPE_SIZE] = 0;
    cr_assert_eq(
        nmi_envelope_open(back, big, sizeof(big), f.tpriv, f.link, NULL),
        NM_EDECODE);
    cr_assert_eq(nmi_envelope_open(back, NULL, 0, f.tpriv, f.link, NULL),
                 NM_EDECODE);
    cr_assert_eq(nmi_envelope_signer(f.env, 100, signer), NM_EDECODE);
    f.env[0] = 2;
    cr_assert_eq(nmi_envelope_signer(f.env, sizeof(f.env), signer),
                 NM_EDECODE);
}

Test(envelope, substituted_and_spliced_envelopes)
{
    fixture a, b;
    uint8_t back[32], apk[32], ask[64], mix[NMI_ENVELOPE_SIZE];

    fx_setup(&a);
    /* b: another identity, sealed to the same target and link. */
    b = a;
    randombytes_buf(b.seed, 32);
    cr_assert_eq(nmi_envelope_seal(b.env, b.seed, b.tpub, b.link), NM_OK);
    crypto_sign_seed_keypair(apk, ask, a.seed);

    /* The expected signer rejects b's (otherwise valid) envelope. */
    cr_assert_eq(
        nmi_envelope_open(back, b.env, sizeof(b.env), b.tpriv, b.link, apk),
        NM_ECRYPTO);
    cr_assert_eq(
        nmi_envelope_open(back, b.env, sizeof(b.env), b.tpriv, b.link, NULL),
        NM_OK);
    cr_assert_arr_eq(back, b.seed, 32);

    /* a's attestation with b's sealed seed: signature and AEAD both pass,
     * the seed/signer check does not. */
    memcpy(mix, a.env, sizeof(mix));
    memcpy(mix + 33, b.env + 33, 80);
    cr_assert_eq(
        nmi_envelope_open(back, mix, sizeof(mix), a.tpriv, a.link, NULL),
        NM_ECRYPTO);
}

Test(envelope, misuse)
{
    fixture f;
    uint8_t back[32];

    fx_setup(&f);
    cr_assert_eq(nmi_envelope_seal(NULL, f.seed, f.tpub, f.link), NM_EINVAL);
    cr_assert_eq(nmi_envelope_seal(f.env, NULL, f.tpub, f.link), NM_EINVAL);
    cr_assert_eq(
        nmi_envelope_seal_with_ephemeral(f.env, f.seed, f.tpub, f.link, NULL),
        NM_EINVAL);
    cr_assert_eq(
        nmi_envelope_open(NULL, f.env, sizeof(f.env), f.tpriv, f.link, NULL),
        NM_EINVAL);
    cr_assert_eq(
        nmi_envelope_open(back, f.env, sizeof(f.env), NULL, f.link, NULL),
        NM_EINVAL);
    cr_assert_eq(nmi_envelope_open(back, NULL, 209, f.tpriv, f.link, NULL),
                 NM_EINVAL);
}
