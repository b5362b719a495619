/*
 * tests/unit/test_blake2s.c - BLAKE2s-256 (RFC 7693) against every entry of
 * tests/vectors/blake2s-kat.json (plain and keyed), the incremental API
 * against the one-shot one, argument checks, and the Net KDF.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <netmesh/error.h>

#include "crypto/blake2s.h"

static size_t
unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex) / 2;

    cr_assert_leq(n, cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

Test(blake2s, kat_every_entry)
{
    json_error_t jerr;
    json_t *root =
        json_load_file(NM_TEST_VECTORS_DIR "/blake2s-kat.json", 0, &jerr);
    cr_assert_not_null(root, "cannot load KAT: %s", jerr.text);
    cr_assert(json_is_array(root));

    size_t idx;
    json_t *e;
    size_t plain = 0, keyed = 0;
    json_array_foreach(root, idx, e)
    {
        const char *hash = json_string_value(json_object_get(e, "hash"));
        cr_assert_str_eq(hash, "blake2s");
        uint8_t in[1024], key[64], want[32], got[32];
        size_t inlen =
            unhex(in, sizeof(in), json_string_value(json_object_get(e, "in")));
        size_t keylen = unhex(key, sizeof(key),
                              json_string_value(json_object_get(e, "key")));
        size_t outlen = unhex(want, sizeof(want),
                              json_string_value(json_object_get(e, "out")));
        cr_assert_eq(outlen, 32);
        cr_assert_leq(keylen, 32, "entry %zu: key longer than 32", idx);

        cr_assert_eq(
            nmi_blake2s(got, 32, keylen ? key : NULL, keylen, in, inlen), 0);
        cr_assert_arr_eq(got, want, 32, "entry %zu (in %zu B, key %zu B)", idx,
                         inlen, keylen);

        /* Incremental, byte by byte and in odd-sized pieces. */
        nmi_blake2s_state s;
        cr_assert_eq(nmi_blake2s_init(&s, 32, key, keylen), 0);
        for (size_t i = 0; i < inlen; i++) {
            nmi_blake2s_update(&s, in + i, 1);
        }
        nmi_blake2s_final(&s, got);
        cr_assert_arr_eq(got, want, 32, "entry %zu bytewise", idx);

        cr_assert_eq(nmi_blake2s_init(&s, 32, key, keylen), 0);
        for (size_t i = 0; i < inlen;) {
            size_t step = 1 + (i * 7) % 70;
            if (step > inlen - i) {
                step = inlen - i;
            }
            nmi_blake2s_update(&s, in + i, step);
            i += step;
        }
        nmi_blake2s_final(&s, got);
        cr_assert_arr_eq(got, want, 32, "entry %zu chunked", idx);

        if (keylen) {
            keyed++;
        } else {
            plain++;
        }
    }
    cr_assert_eq(plain, 256);
    cr_assert_eq(keyed, 256);
    json_decref(root);
}

/* Keyed entries carry a 32-byte key (64 hex chars); check the file so a
 * changed vector set cannot silently skip keyed mode. */
Test(blake2s, kat_keys_are_32_bytes)
{
    json_t *root =
        json_load_file(NM_TEST_VECTORS_DIR "/blake2s-kat.json", 0, NULL);
    cr_assert_not_null(root);
    size_t idx;
    json_t *e;
    json_array_foreach(root, idx, e)
    {
        size_t kl = strlen(json_string_value(json_object_get(e, "key")));
        cr_assert(kl == 0 || kl == 64, "entry %zu key hex length %zu", idx,
                  kl);
    }
    json_decref(root);
}

Test(blake2s, rfc7693_appendix_b_abc)
{
    /* RFC 7693 Appendix B: BLAKE2s-256("abc"). */
    static const uint8_t want[32] = {
        0x50, 0x8C, 0x5E, 0x8C, 0x32, 0x7C, 0x14, 0xE2, 0xE1, 0xA7, 0x2B,
        0xA3, 0x4E, 0xEB, 0x45, 0x2F, 0x37, 0x45, 0x8B, 0x20, 0x9E, 0xD6,
        0x3A, 0x29, 0x4D, 0x99, 0x9B, 0x4C, 0x86, 0x67, 0x59, 0x82};
    uint8_t got[32];
    cr_assert_eq(nmi_blake2s(got, 32, NULL, 0, "abc", 3), 0);
    cr_assert_arr_eq(got, want, 32);
}

Test(blake2s, short_output_is_not_a_prefix)
{
    /* outlen is part of the parameter block, so a 16-byte digest differs
     * from the first 16 bytes of the 32-byte one. */
    uint8_t a[32], b[16];
    cr_assert_eq(nmi_blake2s(a, 32, NULL, 0, "x", 1), 0);
    cr_assert_eq(nmi_blake2s(b, 16, NULL, 0, "x", 1), 0);
    cr_assert(memcmp(a, b, 16) != 0);
}

Test(blake2s, rejects_bad_lengths)
{
    nmi_blake2s_state s;
    uint8_t key[33] = {0}, out[33];
    cr_assert_eq(nmi_blake2s_init(&s, 0, NULL, 0), NM_EINVAL);
    cr_assert_eq(nmi_blake2s_init(&s, 33, NULL, 0), NM_EINVAL);
    cr_assert_eq(nmi_blake2s_init(&s, 32, key, 33), NM_EINVAL);
    cr_assert_eq(nmi_blake2s_init(&s, 32, NULL, 5), NM_EINVAL);
    cr_assert_eq(nmi_blake2s(out, 33, NULL, 0, "", 0), NM_EINVAL);
    cr_assert_eq(nmi_blake2s(NULL, 32, NULL, 0, "", 0), NM_EINVAL);
}

Test(blake2s, large_input_matches_incremental)
{
    static uint8_t buf[65536 + 13];
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 131 + 7);
    }
    uint8_t one[32], inc[32];
    cr_assert_eq(nmi_blake2s(one, 32, "k", 1, buf, sizeof(buf)), 0);
    nmi_blake2s_state s;
    cr_assert_eq(nmi_blake2s_init(&s, 32, "k", 1), 0);
    nmi_blake2s_update(&s, buf, 64);
    nmi_blake2s_update(&s, buf + 64, 0);
    nmi_blake2s_update(&s, buf + 64, 1000);
    nmi_blake2s_update(&s, buf + 1064, sizeof(buf) - 1064);
    nmi_blake2s_final(&s, inc);
    cr_assert_arr_eq(one, inc, 32);
}

Test(blake2s, net_kdf_matches_definition)
{
    /* PRK = B2s(key=ikm, msg="net-kdf-v1"); OKM = B2s(key=PRK, msg=info) */
    uint8_t ikm[32], prk[32], want[32], got[32];
    for (int i = 0; i < 32; i++) {
        ikm[i] = (uint8_t)i;
    }
    cr_assert_eq(nmi_blake2s(prk, 32, ikm, 32, "net-kdf-v1", 10), 0);
    cr_assert_eq(nmi_blake2s(want, 32, prk, 32, "initiator-tx", 12), 0);
    cr_assert_eq(nmi_net_kdf(got, ikm, 32, "initiator-tx"), 0);
    cr_assert_arr_eq(got, want, 32);

    uint8_t other[32];
    cr_assert_eq(nmi_net_kdf(other, ikm, 32, "initiator-rx"), 0);
    cr_assert(memcmp(got, other, 32) != 0);

    cr_assert_eq(nmi_net_kdf(got, ikm, 0, "x"), NM_EINVAL);
    cr_assert_eq(nmi_net_kdf(got, ikm, 33, "x"), NM_EINVAL);
    cr_assert_eq(nmi_net_kdf(got, ikm, 32, NULL), NM_EINVAL);
}
