/*
 * tests/unit/test_session.c - the AEAD packet session: the key schedule
 * from the handshake hash (known answers computed independently with
 * Python's hashlib.blake2s and the `cryptography` package), symmetry
 * between initiator and responder, seal/open, and every edge of the
 * 1024-bit replay window.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "crypto/blake2s.h"
#include "crypto/noise.h"
#include "crypto/session.h"

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

/* h = the handshake hash of the cacophony NKpsk0 vector. */
static const char *kat_h =
    "6bd69bd4066f41f32e47134976f5bf01606f7a4a0e04369fe61158b06f3a144e";

Test(session, key_schedule_known_answer)
{
    uint8_t h[32], want[32];
    nmi_session i, r;

    unhex(h, 32, kat_h);
    cr_assert_eq(nmi_session_init(&i, h, true), NM_OK);
    cr_assert_eq(nmi_session_init(&r, h, false), NM_OK);
    cr_assert_eq(i.session_id, 0xf3416f06d49bd66bull);
    cr_assert_eq(r.session_id, i.session_id);
    unhex(want, 4, "6db9da27");
    cr_assert_arr_eq(i.nonce_prefix, want, 4);
    cr_assert_arr_eq(r.nonce_prefix, want, 4);

    unhex(want, 32,
          "ac15ceabdeaf0848e35536d91ca3caf99569ff92185fac07d24cbece7362b57a");
    cr_assert_arr_eq(i.tx_key, want, 32, "initiator tx = KDF(h,initiator-tx)");
    cr_assert_arr_eq(r.rx_key, want, 32);
    unhex(want, 32,
          "ca4e80d7e1cd892b4f01268ae2870ac44cfa70f479ed45edb9f6d7f9ed1039da");
    cr_assert_arr_eq(i.rx_key, want, 32, "initiator rx = KDF(h,initiator-rx)");
    cr_assert_arr_eq(r.tx_key, want, 32);
    unhex(want, 32,
          "21321caddc465a5b79b53b65575edf1ba4447e02d58cf4f80b219cb1fc6fc24d");
    cr_assert_arr_eq(i.hop_tx_key, want, 32);
    cr_assert_arr_eq(r.hop_rx_key, want, 32);
    unhex(want, 32,
          "6947f333da4599e3c664eb1c3a24e3843877d44660c553df836290d29fd211cc");
    cr_assert_arr_eq(i.hop_rx_key, want, 32);
    cr_assert_arr_eq(r.hop_tx_key, want, 32);
}

Test(session, sealed_packet_known_answer)
{
    uint8_t h[32], ct[21], want[21], back[5];
    uint64_t ctr = 99;
    nmi_session i, r;

    unhex(h, 32, kat_h);
    cr_assert_eq(nmi_session_init(&i, h, true), NM_OK);
    cr_assert_eq(nmi_session_init(&r, h, false), NM_OK);
    cr_assert_eq(nmi_session_seal(&i, (const uint8_t *)"aad", 3,
                                  (const uint8_t *)"hello", 5, ct, &ctr),
                 NM_OK);
    cr_assert_eq(ctr, 0);
    unhex(want, 21, "c935a40455e67e026c33fcae82489db5d59a9d8687");
    cr_assert_arr_eq(ct, want, 21);
    cr_assert_eq(nmi_session_seal(&i, (const uint8_t *)"aad", 3,
                                  (const uint8_t *)"hello", 5, ct, &ctr),
                 NM_OK);
    cr_assert_eq(ctr, 1);
    unhex(want, 21, "7c9850640f4df1bfaebdee5569c5a38a0fa2930d7f");
    cr_assert_arr_eq(ct, want, 21);
    cr_assert_eq(
        nmi_session_open(&r, 1, (const uint8_t *)"aad", 3, ct, 21, back),
        NM_OK);
    cr_assert_arr_eq(back, "hello", 5);
}

Test(session, prefix_folds_both_halves)
{
    uint8_t h[32] = {0}, n[12], want[12];
    nmi_session s;

    for (int k = 0; k < 32; k++) {
        h[k] = (uint8_t)k;
    }
    cr_assert_eq(nmi_session_init(&s, h, true), NM_OK);
    cr_assert_eq(s.session_id, 0x0706050403020100ull);
    nmi_session_nonce(&s, 0x1122334455667788ull, n);
    /* 0x03020100 ^ 0x07060504 = 0x04040404, LE; then the counter LE. */
    unhex(want, 12, "040404048877665544332211");
    cr_assert_arr_eq(n, want, 12);
}

/* A real NKpsk0 handshake, then sessions on both ends. */
static void
handshake_pair(nmi_session *si, nmi_session *sr, uint8_t spub_out[32])
{
    uint8_t psk[32], spub[32], spriv[32], m[64], hi[32], hr[32];
    nmi_noise_hs ini, res;
    size_t n, pl;

    cr_assert_geq(sodium_init(), 0);
    randombytes_buf(psk, sizeof(psk));
    cr_assert_eq(nmi_noise_keypair(spub, spriv), NM_OK);
    cr_assert_eq(nmi_net_hs_initiator(&ini, psk, spub, 10, 20), NM_OK);
    cr_assert_eq(nmi_net_hs_responder(&res, psk, spriv, 10, 20), NM_OK);
    cr_assert_eq(nmi_session_from_handshake(si, &ini), NM_EINVAL);
    cr_assert_eq(nmi_noise_write_message(&ini, NULL, 0, m, sizeof(m), &n),
                 NM_OK);
    cr_assert_eq(nmi_noise_read_message(&res, m, n, NULL, 0, &pl), NM_OK);
    cr_assert_eq(nmi_noise_write_message(&res, NULL, 0, m, sizeof(m), &n),
                 NM_OK);
    cr_assert_eq(nmi_noise_read_message(&ini, m, n, NULL, 0, &pl), NM_OK);
    cr_assert_eq(nmi_session_from_handshake(si, &ini), NM_OK);
    cr_assert_eq(nmi_session_from_handshake(sr, &res), NM_OK);
    nmi_noise_handshake_hash(&ini, hi);
    nmi_noise_handshake_hash(&res, hr);
    cr_assert_arr_eq(hi, hr, 32);
    cr_assert_eq(si->session_id, nmi_load_le64(hi));
    nmi_noise_wipe(&ini);
    nmi_noise_wipe(&res);
    if (spub_out != NULL) {
        memcpy(spub_out, spub, 32);
    }
    sodium_memzero(spriv, sizeof(spriv));
}

Test(session, symmetric_after_handshake)
{
    nmi_session i, r;
    uint8_t spub[32], zero[32] = {0};

    handshake_pair(&i, &r, spub);
    cr_assert(i.initiator);
    cr_assert_not(r.initiator);
    cr_assert_eq(i.session_id, r.session_id);
    cr_assert_arr_eq(i.tx_key, r.rx_key, 32);
    cr_assert_arr_eq(i.rx_key, r.tx_key, 32);
    cr_assert_arr_neq(i.tx_key, i.rx_key, 32);
    cr_assert_arr_eq(i.hop_tx_key, r.hop_rx_key, 32);
    cr_assert_arr_eq(i.hop_rx_key, r.hop_tx_key, 32);
    cr_assert_arr_eq(i.nonce_prefix, r.nonce_prefix, 4);
    cr_assert_arr_eq(i.remote_static, spub, 32);
    cr_assert_arr_eq(r.remote_static, zero, 32, "initiator is anonymous");
}

Test(session, seal_open_roundtrip_both_directions)
{
    nmi_session i, r;
    uint8_t aad[56], pt[1500], ct[1516], back[1500];
    uint64_t ctr;

    handshake_pair(&i, &r, NULL);
    randombytes_buf(aad, sizeof(aad));
    for (size_t len = 0; len <= sizeof(pt); len += 97) {
        randombytes_buf(pt, len);
        cr_assert_eq(nmi_session_seal(&i, aad, sizeof(aad), pt, len, ct, &ctr),
                     NM_OK);
        cr_assert_eq(
            nmi_session_open(&r, ctr, aad, sizeof(aad), ct, len + 16, back),
            NM_OK);
        cr_assert_arr_eq(back, pt, len);
        cr_assert_eq(nmi_session_seal(&r, aad, sizeof(aad), pt, len, ct, &ctr),
                     NM_OK);
        cr_assert_eq(
            nmi_session_open(&i, ctr, aad, sizeof(aad), ct, len + 16, back),
            NM_OK);
        cr_assert_arr_eq(back, pt, len);
    }
    /* Empty plaintext, NULL out: a heartbeat (tag only). */
    cr_assert_eq(nmi_session_seal(&i, aad, 56, NULL, 0, ct, &ctr), NM_OK);
    cr_assert_eq(nmi_session_open(&r, ctr, aad, 56, ct, 16, NULL), NM_OK);
    /* In place. */
    memcpy(ct, "in-place", 8);
    cr_assert_eq(nmi_session_seal(&i, NULL, 0, ct, 8, ct, &ctr), NM_OK);
    cr_assert_eq(nmi_session_open(&r, ctr, NULL, 0, ct, 24, ct), NM_OK);
    cr_assert_arr_eq(ct, "in-place", 8);
}

Test(session, counters_increase_and_match_raw_aead)
{
    nmi_session i, r;
    uint8_t ct[32], raw[32], nonce[12];
    unsigned long long clen;
    uint64_t ctr;

    handshake_pair(&i, &r, NULL);
    for (uint64_t want = 0; want < 5; want++) {
        cr_assert_eq(nmi_session_seal(&i, (const uint8_t *)"ad", 2,
                                      (const uint8_t *)"0123456789abcdef", 16,
                                      ct, &ctr),
                     NM_OK);
        cr_assert_eq(ctr, want);
        memcpy(nonce, i.nonce_prefix, 4);
        nmi_store_le64(nonce + 4, want);
        crypto_aead_chacha20poly1305_ietf_encrypt(
            raw, &clen, (const uint8_t *)"0123456789abcdef", 16,
            (const uint8_t *)"ad", 2, NULL, nonce, r.rx_key);
        cr_assert_arr_eq(ct, raw, 32);
    }
}

Test(session, wrong_aad_key_or_counter_fails)
{
    nmi_session i, r;
    uint8_t aad[8] = {1, 2, 3, 4, 5, 6, 7, 8}, ct[26], back[10];
    uint64_t ctr;

    handshake_pair(&i, &r, NULL);
    cr_assert_eq(nmi_session_seal(&i, aad, 8, (const uint8_t *)"0123456789",
                                  10, ct, &ctr),
                 NM_OK);
    aad[0] ^= 1;
    cr_assert_eq(nmi_session_open(&r, ctr, aad, 8, ct, 26, back), NM_ECRYPTO);
    cr_assert_str_eq(nm_errdetail(), "cryptographic verification failed");
    aad[0] ^= 1;
    cr_assert_eq(nmi_session_open(&r, ctr + 1, aad, 8, ct, 26, back),
                 NM_ECRYPTO);
    /* Own TX key is not the RX key (reflection fails). */
    cr_assert_eq(nmi_session_open(&i, ctr, aad, 8, ct, 26, back), NM_ECRYPTO);
    cr_assert_eq(nmi_session_open(&r, ctr, aad, 8, ct, 15, back), NM_EDECODE);
    for (size_t b = 0; b < 26 * 8; b++) {
        ct[b / 8] ^= (uint8_t)(1u << (b % 8));
        cr_assert_eq(nmi_session_open(&r, ctr, aad, 8, ct, 26, back),
                     NM_ECRYPTO, "bit %zu", b);
        ct[b / 8] ^= (uint8_t)(1u << (b % 8));
    }
    cr_assert_eq(nmi_session_open(&r, ctr, aad, 8, ct, 26, back), NM_OK);
    cr_assert_eq(nmi_session_open(&r, ctr, aad, 8, ct, 26, back), NM_EPROTO);
}

/* ------------------------------------------------------- replay window */

/* Seal with the sender forced to `counter`, open on the receiver. */
static int
deliver(nmi_session *tx, nmi_session *rx, uint64_t counter)
{
    uint8_t ct[24], back[8];
    uint64_t got;

    tx->tx_counter = counter;
    cr_assert_eq(nmi_session_seal(tx, NULL, 0, (const uint8_t *)"payload!", 8,
                                  ct, &got),
                 NM_OK);
    cr_assert_eq(got, counter);
    return nmi_session_open(rx, counter, NULL, 0, ct, sizeof(ct), back);
}

Test(session, replay_fresh_window_limits)
{
    nmi_session i, r;

    handshake_pair(&i, &r, NULL);
    /* Nothing received yet (next = 0): up to 0 + 1024 accepted. */
    cr_assert_eq(deliver(&i, &r, 1025), NM_EPROTO);
    cr_assert_eq(deliver(&i, &r, 1024), NM_OK);
    cr_assert_eq(r.rx.next, 1025);
    /* 0 is now exactly 1024 behind the highest (1024): rejected. */
    cr_assert_eq(deliver(&i, &r, 0), NM_EPROTO);
    cr_assert_eq(deliver(&i, &r, 1), NM_OK); /* 1023 behind */
    cr_assert_eq(deliver(&i, &r, 1), NM_EPROTO);
}

Test(session, replay_ahead_edge)
{
    nmi_session i, r;

    handshake_pair(&i, &r, NULL);
    cr_assert_eq(deliver(&i, &r, 5000), NM_EPROTO);
    cr_assert_eq(deliver(&i, &r, 1000), NM_OK);
    /* next = 1001: exactly next + 1024 is accepted, one more is not. */
    cr_assert_eq(deliver(&i, &r, 1001 + 1025), NM_EPROTO);
    cr_assert_eq(deliver(&i, &r, 1001 + 1024), NM_OK);
    cr_assert_eq(r.rx.next, 2026);
    /* After the jump of 1025 every older counter is >= 1024 behind. */
    cr_assert_eq(deliver(&i, &r, 1001), NM_EPROTO);
    cr_assert_eq(deliver(&i, &r, 1002), NM_OK);
}

Test(session, replay_behind_edges_and_duplicates)
{
    nmi_session i, r;
    const uint64_t top = 3000;

    handshake_pair(&i, &r, NULL);
    for (uint64_t c = 1000; c <= top; c += 1000) {
        cr_assert_eq(deliver(&i, &r, c), NM_OK);
    }
    cr_assert_eq(deliver(&i, &r, top), NM_EPROTO, "duplicate of highest");
    cr_assert_eq(deliver(&i, &r, top - 1024), NM_EPROTO, "1024 behind");
    cr_assert_eq(deliver(&i, &r, top - 1025), NM_EPROTO);
    cr_assert_eq(deliver(&i, &r, top - 1023), NM_OK, "1023 behind, once");
    cr_assert_eq(deliver(&i, &r, top - 1023), NM_EPROTO, "... only once");
    cr_assert_eq(deliver(&i, &r, 2000), NM_EPROTO, "2000: seen before");
    cr_assert_eq(deliver(&i, &r, 2500), NM_OK, "2500: unseen, 500 behind");
    cr_assert_eq(deliver(&i, &r, 2500), NM_EPROTO);
    /* Out of order inside the window, each once. */
    for (uint64_t c = top - 10; c < top; c++) {
        cr_assert_eq(deliver(&i, &r, c), NM_OK);
    }
    for (uint64_t c = top - 10; c <= top; c++) {
        cr_assert_eq(deliver(&i, &r, c), NM_EPROTO);
    }
}

Test(session, replay_u64_max_rejected)
{
    nmi_session i, r;
    uint8_t ct[16];

    handshake_pair(&i, &r, NULL);
    /* White-box: move the window next to the ceiling. */
    r.rx.next = UINT64_MAX - 10;
    cr_assert_eq(deliver(&i, &r, UINT64_MAX - 1), NM_OK);
    cr_assert_eq(r.rx.next, UINT64_MAX);
    memset(ct, 0, sizeof(ct));
    cr_assert_eq(nmi_session_open(&r, UINT64_MAX, NULL, 0, ct, 16, NULL),
                 NM_EPROTO);
    cr_assert_not(nmi_replay_check(&r.rx, UINT64_MAX));
    cr_assert_not(nmi_replay_commit(&r.rx, UINT64_MAX));
    /* A fresh window rejects it too. */
    nmi_replay rr;
    nmi_replay_init(&rr);
    cr_assert_not(nmi_replay_check(&rr, UINT64_MAX));
}

Test(session, bad_tag_does_not_advance_window)
{
    nmi_session i, r;
    uint8_t ct[24], back[8];
    uint64_t ctr;
    nmi_replay before;

    handshake_pair(&i, &r, NULL);
    cr_assert_eq(deliver(&i, &r, 10), NM_OK);
    i.tx_counter = 900;
    cr_assert_eq(nmi_session_seal(&i, NULL, 0, (const uint8_t *)"payload!", 8,
                                  ct, &ctr),
                 NM_OK);
    ct[3] ^= 0x40;
    before = r.rx;
    cr_assert_eq(nmi_session_open(&r, 900, NULL, 0, ct, 24, back), NM_ECRYPTO);
    cr_assert_arr_eq(&before, &r.rx, sizeof(before));
    /* A forged far-ahead counter cannot slide the window away either. */
    cr_assert_eq(nmi_session_open(&r, 1034, NULL, 0, ct, 24, back),
                 NM_ECRYPTO);
    cr_assert_arr_eq(&before, &r.rx, sizeof(before));
    /* A forged old-but-unseen counter does not burn it. */
    cr_assert_eq(nmi_session_open(&r, 5, NULL, 0, ct, 24, back), NM_ECRYPTO);
    cr_assert_eq(deliver(&i, &r, 5), NM_OK);
    ct[3] ^= 0x40;
    cr_assert_eq(nmi_session_open(&r, 900, NULL, 0, ct, 24, back), NM_OK);
    cr_assert_eq(nmi_session_open(&r, 900, NULL, 0, ct, 24, back), NM_EPROTO);
}

/* The bitmap against a model that remembers every accepted counter. */
Test(session, replay_window_matches_model)
{
    enum { SPAN = 40000 };
    static bool seen[SPAN];
    nmi_replay w;
    uint64_t next = 0, base = 0;
    uint32_t rnd = 12345;

    nmi_replay_init(&w);
    memset(seen, 0, sizeof(seen));
    for (int step = 0; step < 200000; step++) {
        rnd = rnd * 1103515245u + 12345u;
        int64_t delta = (int64_t)((rnd >> 8) % 2300) - 1250;
        int64_t c64 = (int64_t)base + delta;
        if (c64 < 0 || c64 >= SPAN) {
            continue;
        }
        uint64_t c = (uint64_t)c64;
        bool want;
        if (c >= next) {
            want = c - next <= 1024;
        } else {
            want = next - 1 - c < 1024 && !seen[c];
        }
        cr_assert_eq(nmi_replay_check(&w, c), want, "step %d counter %lu",
                     step, (unsigned long)c);
        cr_assert_eq(nmi_replay_commit(&w, c), want);
        if (want) {
            seen[c] = true;
            if (c >= next) {
                next = c + 1;
            }
        }
        cr_assert_eq(w.next, next);
        if ((rnd & 0xff) < 40 && base + 600 < SPAN) {
            base += 300; /* drift upward */
        }
    }
}

Test(session, tx_counter_exhaustion_is_an_error)
{
    nmi_session i, r;
    uint8_t ct[16];
    uint64_t ctr;

    handshake_pair(&i, &r, NULL);
    i.tx_counter = UINT64_MAX - 1;
    cr_assert_eq(nmi_session_seal(&i, NULL, 0, NULL, 0, ct, &ctr), NM_OK);
    cr_assert_eq(ctr, UINT64_MAX - 1);
    cr_assert_eq(nmi_session_seal(&i, NULL, 0, NULL, 0, ct, &ctr), NM_ERANGE);
    cr_assert_eq(i.tx_counter, UINT64_MAX, "never wraps");
    cr_assert_eq(nmi_session_seal(&i, NULL, 0, NULL, 0, ct, &ctr), NM_ERANGE);
}

Test(session, misuse)
{
    nmi_session s;
    uint8_t h[32] = {0}, buf[32];
    uint64_t ctr;

    cr_assert_eq(nmi_session_init(NULL, h, true), NM_EINVAL);
    cr_assert_eq(nmi_session_init(&s, NULL, true), NM_EINVAL);
    cr_assert_eq(nmi_session_init(&s, h, true), NM_OK);
    cr_assert_eq(nmi_session_seal(&s, NULL, 0, buf, 4, buf, NULL), NM_EINVAL);
    cr_assert_eq(nmi_session_seal(&s, NULL, 3, buf, 4, buf, &ctr), NM_EINVAL);
    cr_assert_eq(nmi_session_open(&s, 0, NULL, 0, NULL, 16, buf), NM_EINVAL);
    cr_assert_eq(nmi_session_from_handshake(&s, NULL), NM_EINVAL);
    nmi_session_wipe(&s);
    cr_assert_eq(s.session_id, 0);
}
