/*
 * bench/bench_crypto_primitives.c - `netmesh bench crypto` (primitives):
 *
 *   token.verify    ns per nm_token_verify (signature + window + scope +
 *                   channel + subject) of a valid token; no anchor.
 *   blake2s.64KiB   MB/s of our BLAKE2s-256 over a 64 KiB buffer, anchored
 *                   on libsodium.blake2b_64KiB (crypto_generichash, BLAKE2b
 *                   -256, same buffer, measured interleaved in this run).
 *                   BLAKE2b is the fastest BLAKE2 libsodium ships; on
 *                   64-bit CPUs it is expected to beat BLAKE2s, so a ratio
 *                   below 1 is normal: the anchor shows the order of
 *                   magnitude, not a target.
 *
 * Each figure is the median of o->runs repetitions.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <netmesh.h>

#include "../src/crypto/blake2s.h"

#define BUF_BYTES (64 * 1024)

static int
bench_token_verify(const nmb_opts *o)
{
    nm_identity *issuer = NULL, *subject = NULL;
    uint8_t spk[NM_ENTITY_ID_BYTES];
    uint64_t ch = 0;
    nm_token t;
    int rc;

    if ((rc = nm_identity_generate(&issuer)) != NM_OK ||
        (rc = nm_identity_generate(&subject)) != NM_OK ||
        (rc = nm_identity_entity_id(subject, spk)) != NM_OK ||
        (rc = nm_channel_hash("bench/tokens", 12, &ch)) != NM_OK ||
        (rc = nm_token_try_issue(issuer, spk,
                                 NM_SCOPE_PUBLISH | NM_SCOPE_SUBSCRIBE, ch,
                                 3600, 0, &t)) != NM_OK) {
        fprintf(stderr, "bench token.verify: setup failed: %s\n",
                nm_strerror(rc));
        nm_identity_free(issuer);
        nm_identity_free(subject);
        return 1;
    }
    nm_token_verify_opts vo;
    nm_token_verify_opts_init(&vo);
    vo.now = t.not_before + 1;
    vo.scope = NM_SCOPE_PUBLISH;
    vo.check_channel = true;
    vo.channel_hash = ch;
    vo.subject = spk;

    uint64_t iters = nmb_iters(o, 4000);
    double *v = calloc((size_t)o->runs, sizeof(double));
    if (v == NULL) {
        nm_identity_free(issuer);
        nm_identity_free(subject);
        return 1;
    }
    int bad = 0;
    for (int r = 0; r < o->runs; r++) {
        uint64_t t0 = nmb_now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            rc = nm_token_verify(&t, &vo);
            bad |= rc != NM_OK;
            NMB_SINK(rc);
        }
        v[r] = (double)(nmb_now_ns() - t0) / (double)iters;
    }
    if (bad) {
        fprintf(stderr, "bench token.verify: a verify failed\n");
    } else {
        nmb_report(o, "token.verify", nmb_median(v, o->runs), "ns", NULL, 0);
    }
    free(v);
    nm_identity_free(issuer);
    nm_identity_free(subject);
    return bad;
}

static int
bench_blake2s(const nmb_opts *o)
{
    uint8_t *buf = malloc(BUF_BYTES);
    double *ours = calloc((size_t)o->runs, sizeof(double));
    double *anchor = calloc((size_t)o->runs, sizeof(double));
    if (buf == NULL || ours == NULL || anchor == NULL) {
        free(buf);
        free(ours);
        free(anchor);
        return 1;
    }
    for (size_t i = 0; i < BUF_BYTES; i++) {
        buf[i] = (uint8_t)(i * 2654435761u >> 24);
    }
    uint8_t out[32];
    uint64_t iters = nmb_iters(o, 400);
    double mb = (double)BUF_BYTES * (double)iters / 1e6;
    for (int r = 0; r < o->runs; r++) {
        uint64_t t0 = nmb_now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            (void)nmi_blake2s(out, sizeof(out), NULL, 0, buf, BUF_BYTES);
            NMB_SINK(out[0]);
        }
        uint64_t t1 = nmb_now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            (void)crypto_generichash(out, sizeof(out), buf, BUF_BYTES, NULL,
                                     0);
            NMB_SINK(out[0]);
        }
        uint64_t t2 = nmb_now_ns();
        ours[r] = mb / ((double)(t1 - t0) / 1e9);
        anchor[r] = mb / ((double)(t2 - t1) / 1e9);
    }
    nmb_report(o, "blake2s.64KiB", nmb_median(ours, o->runs), "MB/s",
               "libsodium.blake2b_64KiB", nmb_median(anchor, o->runs));
    free(buf);
    free(ours);
    free(anchor);
    return 0;
}

int
nmb_group_crypto_primitives(const nmb_opts *o)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "bench crypto: libsodium failed to initialize\n");
        return 1;
    }
    int rc = bench_token_verify(o);
    int rc2 = bench_blake2s(o);
    return rc ? rc : rc2;
}
