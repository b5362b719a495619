/*
 * tests/unit/test_identity.c - ed25519 identities and the ids derived from
 * them. The fixed-seed vectors are recorded in docs/PROTOCOL.md §1; they
 * were computed independently with Python (cryptography's Ed25519 and
 * hashlib.blake2s), so they check our BLAKE2s keyed mode and libsodium's
 * seed expansion together.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include <netmesh.h>

static void
unhex(uint8_t *out, size_t n, const char *hex)
{
    cr_assert_eq(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned x;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &x), 1);
        out[i] = (uint8_t)x;
    }
}

static const struct {
    const char *seed, *entity_id;
    uint64_t node_id, origin_hash;
} vectors[] = {
    {"0000000000000000000000000000000000000000000000000000000000000000",
     "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
     0x2a22743fee3e433dull, 0x87482e2f287f5d52ull},
    /* RFC 8032 §7.1 TEST 1 secret key. */
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     0x652f03ba688dde03ull, 0x96dd720507478b63ull},
    {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
     0xbd826a5d0a6394f5ull, 0x782a3238801976bfull},
};

Test(identity, size_macros_match_functions)
{
    cr_assert_eq(nm_identity_seed_bytes(), NM_IDENTITY_SEED_BYTES);
    cr_assert_eq(nm_entity_id_bytes(), NM_ENTITY_ID_BYTES);
    cr_assert_eq(nm_signature_bytes(), NM_SIGNATURE_BYTES);
    cr_assert_eq(NM_IDENTITY_SEED_BYTES, 32);
    cr_assert_eq(NM_ENTITY_ID_BYTES, 32);
    cr_assert_eq(NM_SIGNATURE_BYTES, 64);
}

Test(identity, fixed_seed_vectors)
{
    for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
        uint8_t seed[32], want[32], got[32], back[32];
        unhex(seed, 32, vectors[v].seed);
        unhex(want, 32, vectors[v].entity_id);
        nm_identity *id = NULL;
        cr_assert_eq(nm_identity_from_seed(seed, &id), NM_OK);
        cr_assert_eq(nm_identity_entity_id(id, got), NM_OK);
        cr_assert_arr_eq(got, want, 32, "vector %zu entity id", v);
        uint64_t nid = 0, org = 0;
        cr_assert_eq(nm_identity_node_id(id, &nid), NM_OK);
        cr_assert_eq(nm_identity_origin_hash(id, &org), NM_OK);
        cr_assert_eq(nid, vectors[v].node_id, "vector %zu node_id %016llx", v,
                     (unsigned long long)nid);
        cr_assert_eq(org, vectors[v].origin_hash, "vector %zu origin", v);
        uint64_t nid2 = 0, org2 = 0;
        cr_assert_eq(nm_entity_node_id(want, &nid2), NM_OK);
        cr_assert_eq(nm_entity_origin_hash(want, &org2), NM_OK);
        cr_assert_eq(nid2, nid);
        cr_assert_eq(org2, org);
        cr_assert_eq(nm_identity_to_seed(id, back), NM_OK);
        cr_assert_arr_eq(back, seed, 32);
        nm_identity_free(id);
    }
}

Test(identity, rfc8032_test1_signature)
{
    uint8_t seed[32], pk[32], want[64], sig[64];
    unhex(seed, 32, vectors[1].seed);
    unhex(pk, 32, vectors[1].entity_id);
    unhex(want, 64,
          "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
          "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    nm_identity *id = NULL;
    cr_assert_eq(nm_identity_from_seed(seed, &id), NM_OK);
    cr_assert_eq(nm_identity_sign(id, NULL, 0, sig), NM_OK);
    cr_assert_arr_eq(sig, want, 64);
    cr_assert_eq(nm_identity_verify(pk, NULL, 0, sig), NM_OK);
    nm_identity_free(id);
}

Test(identity, same_seed_same_ids_generate_differs)
{
    nm_identity *a = NULL, *b = NULL, *c = NULL;
    uint8_t seed[32], ea[32], eb[32], ec[32];
    cr_assert_eq(nm_identity_generate(&a), NM_OK);
    cr_assert_eq(nm_identity_to_seed(a, seed), NM_OK);
    cr_assert_eq(nm_identity_from_seed(seed, &b), NM_OK);
    cr_assert_eq(nm_identity_generate(&c), NM_OK);
    cr_assert_eq(nm_identity_entity_id(a, ea), NM_OK);
    cr_assert_eq(nm_identity_entity_id(b, eb), NM_OK);
    cr_assert_eq(nm_identity_entity_id(c, ec), NM_OK);
    cr_assert_arr_eq(ea, eb, 32);
    cr_assert(memcmp(ea, ec, 32) != 0);
    uint64_t na, nb;
    cr_assert_eq(nm_identity_node_id(a, &na), NM_OK);
    cr_assert_eq(nm_identity_node_id(b, &nb), NM_OK);
    cr_assert_eq(na, nb);
    nm_identity_free(a);
    nm_identity_free(b);
    nm_identity_free(c);
}

Test(identity, sign_verify_and_tamper)
{
    nm_identity *id = NULL, *other = NULL;
    uint8_t pk[32], opk[32], sig[64];
    const char msg[] = "net mesh";
    cr_assert_eq(nm_identity_generate(&id), NM_OK);
    cr_assert_eq(nm_identity_generate(&other), NM_OK);
    cr_assert_eq(nm_identity_entity_id(id, pk), NM_OK);
    cr_assert_eq(nm_identity_entity_id(other, opk), NM_OK);
    cr_assert_eq(nm_identity_sign(id, msg, sizeof(msg), sig), NM_OK);
    cr_assert_eq(nm_identity_verify(pk, msg, sizeof(msg), sig), NM_OK);
    cr_assert_eq(nm_identity_verify(opk, msg, sizeof(msg), sig), NM_ECRYPTO);
    cr_assert_eq(nm_identity_verify(pk, msg, sizeof(msg) - 1, sig),
                 NM_ECRYPTO);
    for (size_t i = 0; i < 64; i++) {
        sig[i] ^= 0x01;
        cr_assert_eq(nm_identity_verify(pk, msg, sizeof(msg), sig), NM_ECRYPTO,
                     "flipped signature byte %zu", i);
        sig[i] ^= 0x01;
    }
    uint8_t zero[32] = {0};
    cr_assert_eq(nm_identity_verify(zero, msg, sizeof(msg), sig), NM_ECRYPTO);
    nm_identity_free(id);
    nm_identity_free(other);
}

Test(identity, null_arguments)
{
    nm_identity *id = NULL;
    uint8_t b[64];
    uint64_t u;
    cr_assert_eq(nm_identity_generate(NULL), NM_EINVAL);
    cr_assert_eq(nm_identity_from_seed(NULL, &id), NM_EINVAL);
    cr_assert_eq(nm_identity_from_seed(b, NULL), NM_EINVAL);
    cr_assert_eq(nm_identity_to_seed(NULL, b), NM_EINVAL);
    cr_assert_eq(nm_identity_entity_id(NULL, b), NM_EINVAL);
    cr_assert_eq(nm_identity_node_id(NULL, &u), NM_EINVAL);
    cr_assert_eq(nm_identity_origin_hash(NULL, &u), NM_EINVAL);
    cr_assert_eq(nm_entity_node_id(NULL, &u), NM_EINVAL);
    cr_assert_eq(nm_entity_origin_hash(b, NULL), NM_EINVAL);
    cr_assert_eq(nm_identity_sign(NULL, "x", 1, b), NM_EINVAL);
    cr_assert_eq(nm_identity_verify(NULL, "x", 1, b), NM_EINVAL);
    cr_assert_eq(nm_identity_verify(b, NULL, 1, b), NM_EINVAL);
    nm_identity_free(NULL);
}
