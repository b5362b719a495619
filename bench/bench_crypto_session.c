/*
 * bench/bench_crypto_session.c - the AEAD session and the Noise handshake.
 *
 *   aead.seal_64B / aead.seal_1KiB   seals/s through nmi_session_seal (56-B
 *                                    AAD, as the mesh header gives)
 *     baseline libsodium.aead_64B / libsodium.aead_1KiB: raw
 *     crypto_aead_chacha20poly1305_ietf_encrypt with the same sizes, AAD
 *     and a counter nonce, measured in the same run, interleaved in 64
 *     short ABBA slices per run.
 *   noise.handshake                  µs for a full Net NKpsk0 handshake
 *                                    in one process: both inits, msg1
 *                                    write/read, msg2 write/read, and the
 *                                    two sessions derived.
 * Each figure is the median of o->runs repetitions.
 */
#include "bench.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "crypto/session.h"

#define NMB_AAD_LEN 56
#define NMB_SLICES 64

static double
run_session(nmi_session *s, const uint8_t *aad, const uint8_t *pt, size_t len,
            uint8_t *out, uint64_t n, int *err)
{
    uint64_t ctr = 0;
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        if (nmi_session_seal(s, aad, NMB_AAD_LEN, pt, len, out, &ctr) != 0) {
            *err = 1;
            break;
        }
        NMB_SINK(out[0]);
    }
    NMB_SINK(ctr);
    return (double)(nmb_now_ns() - t0);
}

static double
run_raw(const uint8_t key[32], uint64_t *ctr, const uint8_t *aad,
        const uint8_t *pt, size_t len, uint8_t *out, uint64_t n)
{
    uint8_t nonce[12] = {1, 2, 3, 4};
    unsigned long long clen;
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t c = (*ctr)++;
        memcpy(nonce + 4, &c, 8); /* little-endian hosts: the counter LE */
        crypto_aead_chacha20poly1305_ietf_encrypt(
            out, &clen, pt, len, aad, NMB_AAD_LEN, NULL, nonce, key);
        NMB_SINK(out[0]);
    }
    return (double)(nmb_now_ns() - t0);
}

/* One figure pair: seals/s ours vs raw, ABBA-interleaved per run. */
static void
bench_seal(const nmb_opts *o, size_t len, uint64_t base_iters,
           const char *name, const char *bname, int *err)
{
    enum { MAXR = 101 };
    double ours[MAXR], raw[MAXR];
    int runs = o->runs > MAXR ? MAXR : (o->runs < 1 ? 1 : o->runs);
    uint64_t n = nmb_iters(o, base_iters);
    uint64_t slice = n / NMB_SLICES ? n / NMB_SLICES : 1;
    static uint8_t pt[1024], out[1024 + 16];
    uint8_t aad[NMB_AAD_LEN], h[32], key[32];
    uint64_t rctr = 0;
    nmi_session s;

    randombytes_buf(h, sizeof(h));
    randombytes_buf(aad, sizeof(aad));
    randombytes_buf(pt, sizeof(pt));
    if (nmi_session_init(&s, h, true) != 0) {
        *err = 1;
        return;
    }
    memcpy(key, s.tx_key, 32);
    /* Warm-up (CPU dispatch, caches, clocks). */
    run_session(&s, aad, pt, len, out, n / 8 + 1, err);
    run_raw(key, &rctr, aad, pt, len, out, n / 8 + 1);

    /* Fine-grained ABBA interleaving: NMB_SLICES pairs of short blocks
     * per run, so a burst of machine noise hits both sides alike. */
    for (int r = 0; r < runs; r++) {
        double to = 0, tr = 0;
        for (int k = 0; k < NMB_SLICES; k++) {
            if (k % 2 == 0) {
                to += run_session(&s, aad, pt, len, out, slice, err);
                tr += run_raw(key, &rctr, aad, pt, len, out, slice);
            } else {
                tr += run_raw(key, &rctr, aad, pt, len, out, slice);
                to += run_session(&s, aad, pt, len, out, slice, err);
            }
        }
        ours[r] = (double)(NMB_SLICES * slice) * 1e9 / to;
        raw[r] = (double)(NMB_SLICES * slice) * 1e9 / tr;
    }
    nmb_report(o, name, nmb_median(ours, runs), "seals/s", bname,
               nmb_median(raw, runs));
    nmi_session_wipe(&s);
    sodium_memzero(key, sizeof(key));
}

static int
one_handshake(const uint8_t psk[32], const uint8_t spub[32],
              const uint8_t spriv[32])
{
    nmi_noise_hs ini, res;
    nmi_session si, sr;
    uint8_t m[64];
    size_t n, pl;
    int rc;

    rc = nmi_net_hs_initiator(&ini, psk, spub, 1, 2);
    if (rc == 0) {
        rc = nmi_net_hs_responder(&res, psk, spriv, 1, 2);
    }
    if (rc == 0) {
        rc = nmi_noise_write_message(&ini, NULL, 0, m, sizeof(m), &n);
    }
    if (rc == 0) {
        rc = nmi_noise_read_message(&res, m, n, NULL, 0, &pl);
    }
    if (rc == 0) {
        rc = nmi_noise_write_message(&res, NULL, 0, m, sizeof(m), &n);
    }
    if (rc == 0) {
        rc = nmi_noise_read_message(&ini, m, n, NULL, 0, &pl);
    }
    if (rc == 0) {
        rc = nmi_session_from_handshake(&si, &ini);
    }
    if (rc == 0) {
        rc = nmi_session_from_handshake(&sr, &res);
    }
    if (rc == 0 && si.session_id != sr.session_id) {
        rc = -1;
    }
    nmi_noise_wipe(&ini);
    nmi_noise_wipe(&res);
    nmi_session_wipe(&si);
    nmi_session_wipe(&sr);
    return rc;
}

static void
bench_handshake(const nmb_opts *o, int *err)
{
    enum { MAXR = 101 };
    double us[MAXR];
    int runs = o->runs > MAXR ? MAXR : (o->runs < 1 ? 1 : o->runs);
    uint64_t n = nmb_iters(o, 2000);
    uint8_t psk[32], spub[32], spriv[32];

    randombytes_buf(psk, sizeof(psk));
    if (nmi_noise_keypair(spub, spriv) != 0) {
        *err = 1;
        return;
    }
    for (uint64_t i = 0; i < n / 10 + 1; i++) { /* warm-up */
        if (one_handshake(psk, spub, spriv) != 0) {
            *err = 1;
            return;
        }
    }
    for (int r = 0; r < runs; r++) {
        uint64_t t0 = nmb_now_ns();
        for (uint64_t i = 0; i < n; i++) {
            if (one_handshake(psk, spub, spriv) != 0) {
                *err = 1;
            }
        }
        us[r] = (double)(nmb_now_ns() - t0) / 1e3 / (double)n;
    }
    nmb_report(o, "noise.handshake", nmb_median(us, runs), "us", NULL, 0);
    sodium_memzero(spriv, sizeof(spriv));
    sodium_memzero(psk, sizeof(psk));
}

int
nmb_group_crypto_session(const nmb_opts *o)
{
    int err = 0;

    if (sodium_init() < 0) {
        fprintf(stderr, "bench crypto (session): sodium_init failed\n");
        return -1;
    }
    bench_seal(o, 64, 4000000, "aead.seal_64B", "libsodium.aead_64B", &err);
    bench_seal(o, 1024, 1000000, "aead.seal_1KiB", "libsodium.aead_1KiB",
               &err);
    bench_handshake(o, &err);
    if (err) {
        fprintf(stderr, "bench crypto (session): a seal or handshake "
                        "failed\n");
    }
    return err ? -1 : 0;
}
