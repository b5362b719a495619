/*
 * tests/unit/test_noise.c - the Noise HandshakeState against every
 * cacophony vector in tests/vectors/noise-25519-chachapoly-blake2s.json
 * (NN, NK, IK, XX, NKpsk0: handshake messages, handshake hash, transport
 * messages through split()), then Net's NKpsk0 use: the prologue, message
 * sizes (48 / 56 / 48), wrong PSK / static key / prologue, flipped bits,
 * truncation, misuse.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "crypto/noise.h"

static size_t
unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n;

    cr_assert_not_null(hex);
    n = strlen(hex) / 2;
    cr_assert_leq(n, cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* A 32-byte key field of a vector, or NULL when absent. */
static const uint8_t *
key_field(json_t *v, const char *name, uint8_t buf[32])
{
    json_t *f = json_object_get(v, name);

    if (f == NULL) {
        return NULL;
    }
    if (json_is_array(f)) { /* init_psks / resp_psks */
        cr_assert_eq(json_array_size(f), 1);
        f = json_array_get(f, 0);
    }
    cr_assert_eq(unhex(buf, 32, json_string_value(f)), 32);
    return buf;
}

static nmi_noise_pattern
pattern_by_name(const char *name)
{
    for (int p = 0; p < NMI_NOISE_PATTERN_COUNT; p++) {
        if (strcmp(nmi_noise_protocol_name((nmi_noise_pattern)p), name) == 0) {
            return (nmi_noise_pattern)p;
        }
    }
    cr_assert_fail("unknown protocol %s", name);
    return NMI_NOISE_PATTERN_COUNT;
}

static void
run_vector(json_t *v, size_t idx)
{
    const char *name = json_string_value(json_object_get(v, "protocol_name"));
    nmi_noise_pattern pat = pattern_by_name(name);
    uint8_t ipro[256], rpro[256], is[32], irs[32], ipsk[32], ie[32];
    uint8_t rs_[32], rrs[32], rpsk[32], re[32], hh[32], got_h[32];
    nmi_noise_config ic = {0}, rc = {0};
    nmi_noise_hs ini, res;
    nmi_noise_cipher ic1, ic2, rc1, rc2;
    json_t *msgs = json_object_get(v, "messages");
    json_t *m;
    size_t i;

    ic.pattern = rc.pattern = pat;
    ic.initiator = true;
    ic.prologue_len =
        unhex(ipro, sizeof(ipro),
              json_string_value(json_object_get(v, "init_prologue")));
    ic.prologue = ipro;
    rc.prologue_len =
        unhex(rpro, sizeof(rpro),
              json_string_value(json_object_get(v, "resp_prologue")));
    rc.prologue = rpro;
    ic.s = key_field(v, "init_static", is);
    ic.rs = key_field(v, "init_remote_static", irs);
    ic.psk = key_field(v, "init_psks", ipsk);
    ic.fixed_e = key_field(v, "init_ephemeral", ie);
    rc.s = key_field(v, "resp_static", rs_);
    rc.rs = key_field(v, "resp_remote_static", rrs);
    rc.psk = key_field(v, "resp_psks", rpsk);
    rc.fixed_e = key_field(v, "resp_ephemeral", re);
    cr_assert_eq(
        unhex(hh, 32, json_string_value(json_object_get(v, "handshake_hash"))),
        32);

    cr_assert_eq(nmi_noise_init(&ini, &ic), NM_OK, "%s: %s", name,
                 nm_errdetail());
    cr_assert_eq(nmi_noise_init(&res, &rc), NM_OK, "%s: %s", name,
                 nm_errdetail());

    json_array_foreach(msgs, i, m)
    {
        uint8_t pl[1024], want[2048], out[2048], back[2048];
        size_t pllen = unhex(pl, sizeof(pl),
                             json_string_value(json_object_get(m, "payload")));
        size_t wlen =
            unhex(want, sizeof(want),
                  json_string_value(json_object_get(m, "ciphertext")));
        size_t olen = 0, blen = 0;
        bool from_init = (i % 2) == 0;

        if (!nmi_noise_is_done(&ini)) {
            nmi_noise_hs *snd = from_init ? &ini : &res;
            nmi_noise_hs *rcv = from_init ? &res : &ini;
            cr_assert(nmi_noise_my_turn(snd));
            cr_assert_not(nmi_noise_my_turn(rcv));
            cr_assert_eq(nmi_noise_write_len(snd, pllen), wlen);
            cr_assert_eq(nmi_noise_write_message(snd, pl, pllen, out,
                                                 sizeof(out), &olen),
                         NM_OK, "%s msg %zu: %s", name, i, nm_errdetail());
            cr_assert_eq(olen, wlen, "%s msg %zu length", name, i);
            cr_assert_arr_eq(out, want, wlen, "%s msg %zu bytes", name, i);
            cr_assert_eq(nmi_noise_read_message(rcv, out, olen, back,
                                                sizeof(back), &blen),
                         NM_OK, "%s msg %zu read: %s", name, i,
                         nm_errdetail());
            cr_assert_eq(blen, pllen);
            cr_assert_arr_eq(back, pl, pllen);
            if (nmi_noise_is_done(&ini)) {
                cr_assert(nmi_noise_is_done(&res));
                nmi_noise_handshake_hash(&ini, got_h);
                cr_assert_arr_eq(got_h, hh, 32, "%s initiator hash", name);
                nmi_noise_handshake_hash(&res, got_h);
                cr_assert_arr_eq(got_h, hh, 32, "%s responder hash", name);
                cr_assert_eq(nmi_noise_split(&ini, &ic1, &ic2), NM_OK);
                cr_assert_eq(nmi_noise_split(&res, &rc1, &rc2), NM_OK);
            }
        } else {
            /* Transport: initiator sends with c1, responder with c2. */
            nmi_noise_cipher *enc = from_init ? &ic1 : &rc2;
            nmi_noise_cipher *dec = from_init ? &rc1 : &ic2;
            cr_assert_eq(
                nmi_noise_cipher_encrypt(enc, NULL, 0, pl, pllen, out), NM_OK);
            cr_assert_eq(pllen + 16, wlen);
            cr_assert_arr_eq(out, want, wlen, "%s transport msg %zu", name, i);
            cr_assert_eq(
                nmi_noise_cipher_decrypt(dec, NULL, 0, out, wlen, back),
                NM_OK);
            cr_assert_arr_eq(back, pl, pllen);
        }
    }
    cr_assert(nmi_noise_is_done(&ini), "vector %zu never finished", idx);
    nmi_noise_wipe(&ini);
    nmi_noise_wipe(&res);
}

Test(noise, cacophony_vectors_all_patterns)
{
    json_error_t jerr;
    json_t *root = json_load_file(
        NM_TEST_VECTORS_DIR "/noise-25519-chachapoly-blake2s.json", 0, &jerr);
    json_t *vecs, *v;
    size_t idx;
    bool seen[NMI_NOISE_PATTERN_COUNT] = {false};

    cr_assert_not_null(root, "cannot load vectors: %s", jerr.text);
    vecs = json_object_get(root, "vectors");
    cr_assert(json_is_array(vecs));
    json_array_foreach(vecs, idx, v)
    {
        const char *name =
            json_string_value(json_object_get(v, "protocol_name"));
        seen[pattern_by_name(name)] = true;
        run_vector(v, idx);
    }
    for (int p = 0; p < NMI_NOISE_PATTERN_COUNT; p++) {
        cr_assert(seen[p], "no vector for %s",
                  nmi_noise_protocol_name((nmi_noise_pattern)p));
    }
    json_decref(root);
}

/* ------------------------------------------------------------ Net NKpsk0 */

typedef struct pair {
    uint8_t psk[32];
    uint8_t spub[32], spriv[32];
    uint64_t init_id, resp_id;
    nmi_noise_hs ini, res;
} pair;

static void
pair_setup(pair *p)
{
    cr_assert_geq(sodium_init(), 0);
    randombytes_buf(p->psk, sizeof(p->psk));
    cr_assert_eq(nmi_noise_keypair(p->spub, p->spriv), NM_OK);
    p->init_id = 0x1122334455667788ull;
    p->resp_id = 0x99aabbccddeeff00ull;
    cr_assert_eq(
        nmi_net_hs_initiator(&p->ini, p->psk, p->spub, p->init_id, p->resp_id),
        NM_OK);
    cr_assert_eq(nmi_net_hs_responder(&p->res, p->psk, p->spriv, p->init_id,
                                      p->resp_id),
                 NM_OK);
}

static size_t
write_ok(nmi_noise_hs *hs, const uint8_t *pl, size_t pllen, uint8_t *out)
{
    size_t n = 0;

    cr_assert_eq(nmi_noise_write_message(hs, pl, pllen, out, 128, &n), NM_OK,
                 "%s", nm_errdetail());
    return n;
}

Test(noise, prologue_bytes)
{
    uint8_t p[NMI_NET_PROLOGUE_LEN];
    static const uint8_t want[32] = {
        'n', 'e', 't',  '-',  'h',  'a',  'n',  'd',  's',  'h', 'a',
        'k', 'e', '-',  'v',  '1',  0x88, 0x77, 0x66, 0x55, 0,   0,
        0,   0,   0x00, 0xff, 0xee, 0xdd, 0,    0,    0,    0};

    /* Ids are `node_id as u32`, zero-extended to u64 LE. */
    nmi_net_prologue(p, 0x1122334455667788ull, 0x99aabbccddeeff00ull);
    cr_assert_arr_eq(p, want, 32);
}

Test(noise, nkpsk0_direct_roundtrip)
{
    pair p;
    uint8_t m1[128], m2[128], pl[16], h1[32], h2[32], rs[32];
    size_t n1, n2, plen = 99;

    pair_setup(&p);
    cr_assert_eq(nmi_noise_write_len(&p.ini, 0), NMI_NET_MSG1_DIRECT_LEN);
    n1 = write_ok(&p.ini, NULL, 0, m1);
    cr_assert_eq(n1, 48);
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, pl, sizeof(pl), &plen),
                 NM_OK);
    cr_assert_eq(plen, 0);
    n2 = write_ok(&p.res, NULL, 0, m2);
    cr_assert_eq(n2, NMI_NET_MSG2_LEN);
    cr_assert_eq(nmi_noise_read_message(&p.ini, m2, n2, NULL, 0, &plen),
                 NM_OK);
    cr_assert_eq(plen, 0);
    cr_assert(nmi_noise_is_done(&p.ini) && nmi_noise_is_done(&p.res));
    nmi_noise_handshake_hash(&p.ini, h1);
    nmi_noise_handshake_hash(&p.res, h2);
    cr_assert_arr_eq(h1, h2, 32);
    cr_assert_eq(nmi_noise_remote_static(&p.ini, rs), NM_OK);
    cr_assert_arr_eq(rs, p.spub, 32);
    /* NK: the initiator is anonymous. */
    cr_assert_eq(nmi_noise_remote_static(&p.res, rs), NM_ENOTFOUND);
    /* Finished: no more messages either way. */
    cr_assert_eq(nmi_noise_write_message(&p.ini, NULL, 0, m1, 128, &n1),
                 NM_EINVAL);
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, 48, NULL, 0, &plen),
                 NM_EINVAL);
    nmi_noise_wipe(&p.ini);
    nmi_noise_wipe(&p.res);
}

Test(noise, nkpsk0_routed_msg1_carries_node_id)
{
    pair p;
    uint8_t m1[128], m2[128], id[8], pl[16];
    size_t n1, n2, plen = 0;

    pair_setup(&p);
    nmi_store_le64(id, p.init_id);
    n1 = write_ok(&p.ini, id, sizeof(id), m1);
    cr_assert_eq(n1, NMI_NET_MSG1_ROUTED_LEN);
    cr_assert_eq(n1, 56);
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, pl, sizeof(pl), &plen),
                 NM_OK);
    cr_assert_eq(plen, 8);
    /* The responder checks payload_id as u32 == routing.src_id. */
    cr_assert_eq((uint32_t)nmi_load_le64(pl), (uint32_t)p.init_id);
    n2 = write_ok(&p.res, NULL, 0, m2);
    cr_assert_eq(n2, 48);
    cr_assert_eq(nmi_noise_read_message(&p.ini, m2, n2, NULL, 0, &plen),
                 NM_OK);
    nmi_noise_wipe(&p.ini);
    nmi_noise_wipe(&p.res);
}

Test(noise, random_ephemerals_differ)
{
    pair a, b;
    uint8_t m1a[128], m1b[128];

    pair_setup(&a);
    memcpy(&b, &a, sizeof(a));
    cr_assert_eq(write_ok(&a.ini, NULL, 0, m1a), 48);
    cr_assert_eq(write_ok(&b.ini, NULL, 0, m1b), 48);
    cr_assert_arr_neq(m1a, m1b, 32);
}

Test(noise, wrong_psk_fails)
{
    pair p;
    uint8_t m1[128], other[32];
    size_t n1, plen;

    pair_setup(&p);
    memcpy(other, p.psk, 32);
    other[5] ^= 1;
    nmi_noise_wipe(&p.res);
    cr_assert_eq(
        nmi_net_hs_responder(&p.res, other, p.spriv, p.init_id, p.resp_id),
        NM_OK);
    n1 = write_ok(&p.ini, NULL, 0, m1);
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, NULL, 0, &plen),
                 NM_ECRYPTO);
    cr_assert_str_eq(nm_errdetail(), "cryptographic verification failed");
    /* A failed handshake is dead. */
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, NULL, 0, &plen),
                 NM_EINVAL);
    cr_assert_eq(nmi_noise_write_message(&p.res, NULL, 0, m1, 128, &n1),
                 NM_EINVAL);
}

Test(noise, wrong_responder_static_fails)
{
    pair p;
    uint8_t m1[128], wpub[32], wpriv[32];
    size_t n1, plen;

    pair_setup(&p);
    cr_assert_eq(nmi_noise_keypair(wpub, wpriv), NM_OK);
    nmi_noise_wipe(&p.ini);
    cr_assert_eq(
        nmi_net_hs_initiator(&p.ini, p.psk, wpub, p.init_id, p.resp_id),
        NM_OK);
    n1 = write_ok(&p.ini, NULL, 0, m1);
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, NULL, 0, &plen),
                 NM_ECRYPTO);
}

Test(noise, prologue_mismatch_fails)
{
    pair p;
    uint8_t m1[128];
    size_t n1, plen;

    pair_setup(&p);
    nmi_noise_wipe(&p.res);
    /* A relay rewriting the src id. */
    cr_assert_eq(
        nmi_net_hs_responder(&p.res, p.psk, p.spriv, p.init_id + 1, p.resp_id),
        NM_OK);
    n1 = write_ok(&p.ini, NULL, 0, m1);
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, NULL, 0, &plen),
                 NM_ECRYPTO);

    /* Only the low 32 bits of each id are bound (upstream: as u32). */
    pair_setup(&p);
    nmi_noise_wipe(&p.res);
    cr_assert_eq(nmi_net_hs_responder(&p.res, p.psk, p.spriv,
                                      p.init_id ^ 0xffff000000000000ull,
                                      p.resp_id),
                 NM_OK);
    n1 = write_ok(&p.ini, NULL, 0, m1);
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, NULL, 0, &plen),
                 NM_OK);
}

Test(noise, every_bit_flip_in_msg1_fails)
{
    pair p;
    uint8_t m1[128], bad[128];
    size_t n1, plen;

    pair_setup(&p);
    n1 = write_ok(&p.ini, NULL, 0, m1);
    for (size_t bit = 0; bit < n1 * 8; bit++) {
        nmi_noise_hs r;
        cr_assert_eq(
            nmi_net_hs_responder(&r, p.psk, p.spriv, p.init_id, p.resp_id),
            NM_OK);
        memcpy(bad, m1, n1);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_eq(nmi_noise_read_message(&r, bad, n1, NULL, 0, &plen),
                     NM_ECRYPTO, "bit %zu accepted", bit);
        nmi_noise_wipe(&r);
    }
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, NULL, 0, &plen),
                 NM_OK);
}

Test(noise, every_bit_flip_in_msg2_fails)
{
    pair p;
    uint8_t m1[128], m2[128], bad[128];
    size_t n1, n2, plen;

    pair_setup(&p);
    n1 = write_ok(&p.ini, NULL, 0, m1);
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, NULL, 0, &plen),
                 NM_OK);
    n2 = write_ok(&p.res, NULL, 0, m2);
    for (size_t bit = 0; bit < n2 * 8; bit++) {
        nmi_noise_hs i2 = p.ini; /* the initiator state after msg1 */
        memcpy(bad, m2, n2);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_eq(nmi_noise_read_message(&i2, bad, n2, NULL, 0, &plen),
                     NM_ECRYPTO, "bit %zu accepted", bit);
        nmi_noise_wipe(&i2);
    }
    cr_assert_eq(nmi_noise_read_message(&p.ini, m2, n2, NULL, 0, &plen),
                 NM_OK);
}

Test(noise, truncated_and_oversized_messages)
{
    pair p;
    uint8_t m1[128], m2[128];
    static uint8_t big[NMI_NOISE_MAX_MSG + 1];
    size_t n1, n2, plen;
    uint8_t pl[64];

    pair_setup(&p);
    n1 = write_ok(&p.ini, NULL, 0, m1);
    for (size_t len = 0; len < n1; len++) {
        cr_assert_eq(
            nmi_noise_read_message(&p.res, m1, len, pl, sizeof(pl), &plen),
            NM_EDECODE, "msg1 truncated to %zu", len);
    }
    cr_assert_eq(
        nmi_noise_read_message(&p.res, big, sizeof(big), NULL, 0, &plen),
        NM_EDECODE);
    /* A length error changes nothing: the real msg1 still goes through. */
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, pl, sizeof(pl), &plen),
                 NM_OK);
    n2 = write_ok(&p.res, NULL, 0, m2);
    for (size_t len = 0; len < n2; len++) {
        cr_assert_eq(nmi_noise_read_message(&p.ini, m2, len, NULL, 0, &plen),
                     NM_EDECODE, "msg2 truncated to %zu", len);
    }
    /* One trailing byte is a 1-byte "payload" whose tag cannot verify. */
    m2[n2] = 0;
    cr_assert_eq(
        nmi_noise_read_message(&p.ini, m2, n2 + 1, pl, sizeof(pl), &plen),
        NM_ECRYPTO);
}

Test(noise, payload_too_big_for_buffer_is_einval_and_harmless)
{
    pair p;
    uint8_t m1[128], id[8] = {1, 2, 3, 4, 5, 6, 7, 8}, pl[8];
    size_t n1, plen;

    pair_setup(&p);
    n1 = write_ok(&p.ini, id, 8, m1);
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, pl, 4, &plen),
                 NM_EINVAL);
    cr_assert_eq(nmi_noise_read_message(&p.res, m1, n1, pl, 8, &plen), NM_OK);
    cr_assert_arr_eq(pl, id, 8);
    /* write: output buffer too small. */
    cr_assert_eq(nmi_noise_write_message(&p.res, NULL, 0, m1, 47, &n1),
                 NM_EINVAL);
    cr_assert_eq(write_ok(&p.res, NULL, 0, m1), 48);
}

Test(noise, misuse)
{
    pair p;
    nmi_noise_hs hs;
    nmi_noise_config cfg = {0};
    nmi_noise_cipher c1, c2;
    uint8_t buf[128];
    size_t n;

    pair_setup(&p);
    /* Wrong turn. */
    cr_assert_eq(nmi_noise_write_message(&p.res, NULL, 0, buf, 128, &n),
                 NM_EINVAL);
    cr_assert_eq(nmi_noise_read_message(&p.ini, buf, 48, NULL, 0, &n),
                 NM_EINVAL);
    cr_assert_eq(nmi_noise_write_len(&p.res, 0), 0);
    /* Split before the end. */
    cr_assert_eq(nmi_noise_split(&p.ini, &c1, &c2), NM_EINVAL);

    /* NKpsk0 without the PSK / without rs / with an unused key. */
    cfg.pattern = NMI_NOISE_NKPSK0;
    cfg.initiator = true;
    cfg.rs = p.spub;
    cr_assert_eq(nmi_noise_init(&hs, &cfg), NM_EINVAL);
    cfg.psk = p.psk;
    cfg.rs = NULL;
    cr_assert_eq(nmi_noise_init(&hs, &cfg), NM_EINVAL);
    cfg.rs = p.spub;
    cfg.s = p.spriv;
    cr_assert_eq(nmi_noise_init(&hs, &cfg), NM_EINVAL);
    cfg.s = NULL;
    cr_assert_eq(nmi_noise_init(&hs, &cfg), NM_OK);
    cfg.pattern = NMI_NOISE_PATTERN_COUNT;
    cr_assert_eq(nmi_noise_init(&hs, &cfg), NM_EINVAL);
    cr_assert_null(nmi_noise_protocol_name(NMI_NOISE_PATTERN_COUNT));
    cr_assert_eq(nmi_noise_init(NULL, &cfg), NM_EINVAL);
    cr_assert_eq(nmi_noise_init(&hs, NULL), NM_EINVAL);
    /* The uninitialized (zeroed) handshake refuses everything. */
    cr_assert_eq(nmi_noise_write_message(&hs, NULL, 0, buf, 128, &n),
                 NM_EINVAL);
    cr_assert_eq(nmi_net_hs_initiator(&hs, NULL, p.spub, 1, 2), NM_EINVAL);
    cr_assert_eq(nmi_net_hs_responder(&hs, p.psk, NULL, 1, 2), NM_EINVAL);
}

Test(noise, low_order_remote_static_is_ecrypto)
{
    uint8_t zero[32] = {0}, psk[32] = {7}, buf[128];
    nmi_noise_hs hs;
    size_t n;

    /* The all-zero point: X25519 gives the all-zero output. */
    cr_assert_eq(nmi_net_hs_initiator(&hs, psk, zero, 1, 2), NM_OK);
    cr_assert_eq(nmi_noise_write_message(&hs, NULL, 0, buf, 128, &n),
                 NM_ECRYPTO);
    cr_assert_eq(nmi_noise_write_message(&hs, NULL, 0, buf, 128, &n),
                 NM_EINVAL);
    cr_assert_eq(nmi_noise_dh(buf, psk, zero), NM_ECRYPTO);
}

Test(noise, transport_cipher_edges)
{
    nmi_noise_cipher c = {0}, d;
    uint8_t k[32] = {1}, pt[4] = {1, 2, 3, 4}, ct[20], back[4];

    /* Without a key, Encrypt/DecryptWithAd pass the plaintext through. */
    cr_assert_eq(nmi_noise_cipher_encrypt(&c, NULL, 0, pt, 4, ct), NM_OK);
    cr_assert_arr_eq(ct, pt, 4);
    memcpy(c.k, k, 32);
    c.has_key = true;
    d = c;
    cr_assert_eq(nmi_noise_cipher_encrypt(&c, NULL, 0, pt, 4, ct), NM_OK);
    cr_assert_eq(nmi_noise_cipher_decrypt(&d, NULL, 0, ct, 15, back),
                 NM_EDECODE);
    ct[19] ^= 1;
    cr_assert_eq(nmi_noise_cipher_decrypt(&d, NULL, 0, ct, 20, back),
                 NM_ECRYPTO);
    cr_assert_eq(d.n, 0, "a failed decrypt does not advance n");
    ct[19] ^= 1;
    cr_assert_eq(nmi_noise_cipher_decrypt(&d, NULL, 0, ct, 20, back), NM_OK);
    cr_assert_arr_eq(back, pt, 4);
    /* 2^64-1 is reserved: exhaustion is an error, never a wrap. */
    c.n = UINT64_MAX;
    cr_assert_eq(nmi_noise_cipher_encrypt(&c, NULL, 0, pt, 4, ct), NM_ERANGE);
    nmi_noise_cipher_wipe(&c);
    cr_assert_not(c.has_key);
}
