/*
 * tests/unit/test_wire_route.c - routing header, relay forward step,
 * routed handshakes, the route-hop envelope and its replay window.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "crypto/session.h"
#include "wire/wire.h"
#include "wire_vectors.h"

/* ----------------------------------------------------- routing header */

Test(wire_route, known_answer)
{
    uint8_t want[32], got[NMI_WIRE_ROUTE_LEN];
    cr_assert_eq(vec("routing_header", want, sizeof(want)),
                 NMI_WIRE_ROUTE_LEN);
    nmi_wire_route r, d;
    nmi_wire_route_init(&r, 0x0123456789ABCDEFull, 0xDEADBEEF,
                        NMI_WIRE_TTL_DATA);
    r.flags = NMI_WIRE_RF_CONTROL;
    cr_assert_eq(nmi_wire_route_encode(&r, got), NM_OK);
    cr_assert_arr_eq(got, want, NMI_WIRE_ROUTE_LEN);
    cr_assert_eq(nmi_wire_route_decode(want, NMI_WIRE_ROUTE_LEN, &d), NM_OK);
    cr_assert_eq(memcmp(&r, &d, sizeof(r)), 0);

    /* Forward in place: ttl 8 -> 7, hops 0 -> 1. */
    uint8_t fwd[32];
    vec("routing_header_forwarded", fwd, sizeof(fwd));
    nmi_wire_route o;
    cr_assert_eq(nmi_wire_route_forward(got, sizeof(got), &o), NM_OK);
    cr_assert_arr_eq(got, fwd, NMI_WIRE_ROUTE_LEN);
    cr_assert_eq(o.ttl, 7);
    cr_assert_eq(o.hop_count, 1);
}

Test(wire_route, decode_rejects)
{
    uint8_t b[NMI_WIRE_ROUTE_LEN + 4];
    nmi_wire_route r, d;
    nmi_wire_route_init(&r, 1, 2, 3);
    cr_assert_eq(nmi_wire_route_encode(&r, b), NM_OK);
    for (size_t n = 0; n < NMI_WIRE_ROUTE_LEN; n++) {
        cr_assert_eq(nmi_wire_route_decode(b, n, &d), NM_EDECODE, "len %zu",
                     n);
    }
    cr_assert_eq(nmi_wire_route_decode(b, sizeof(b), &d), NM_OK,
                 "a routed packet continues after the header");
    b[0] = 0x54;
    b[1] = 0x52;
    cr_assert_eq(nmi_wire_route_decode(b, NMI_WIRE_ROUTE_LEN, &d), NM_EDECODE);
}

Test(wire_route, flags_high_nibble_masked)
{
    uint8_t b[NMI_WIRE_ROUTE_LEN];
    nmi_wire_route r, d;
    nmi_wire_route_init(&r, 7, 8, 9);
    r.reserved = 0x5A;
    cr_assert_eq(nmi_wire_route_encode(&r, b), NM_OK);
    b[4] = 0xF3;
    cr_assert_eq(nmi_wire_route_decode(b, sizeof(b), &d), NM_OK);
    cr_assert_eq(d.flags, 0x03);
    cr_assert_eq(d.reserved, 0x5A);
    r.flags = 0x10;
    cr_assert_eq(nmi_wire_route_encode(&r, b), NM_EINVAL);
    /* forward re-masks, like upstream's parse + re-serialize */
    r.flags = 0;
    cr_assert_eq(nmi_wire_route_encode(&r, b), NM_OK);
    b[4] = 0xF3;
    cr_assert_eq(nmi_wire_route_forward(b, sizeof(b), NULL), NM_OK);
    cr_assert_eq(b[4], 0x03);
    cr_assert_eq(b[5], 0x5A);
}

Test(wire_route, forward_ttl_and_saturation)
{
    uint8_t b[NMI_WIRE_ROUTE_LEN];
    nmi_wire_route r, o;
    nmi_wire_route_init(&r, 1, 2, 2);
    cr_assert_eq(nmi_wire_route_encode(&r, b), NM_OK);
    cr_assert_eq(nmi_wire_route_forward(b, sizeof(b), &o), NM_OK);
    cr_assert_eq(nmi_wire_route_forward(b, sizeof(b), &o), NM_OK);
    cr_assert_eq(o.ttl, 0);
    cr_assert_eq(o.hop_count, 2);
    uint8_t before[NMI_WIRE_ROUTE_LEN];
    memcpy(before, b, sizeof(b));
    cr_assert_eq(nmi_wire_route_forward(b, sizeof(b), &o), NM_EPROTO);
    cr_assert_arr_eq(b, before, sizeof(b), "refused: nothing changed");

    r.ttl = 5;
    r.hop_count = 255;
    cr_assert_eq(nmi_wire_route_encode(&r, b), NM_OK);
    cr_assert_eq(nmi_wire_route_forward(b, sizeof(b), &o), NM_OK);
    cr_assert_eq(o.hop_count, 255);
    cr_assert_eq(o.ttl, 4);
    cr_assert_eq(nmi_wire_route_forward(b, 17, &o), NM_EDECODE);
}

Test(wire_route, routed_packet_split)
{
    uint8_t pkt[200];
    nmi_wire_route r, d;
    nmi_wire_route_init(&r, 0xAAAABBBBCCCCDDDDull, 0x11112222,
                        NMI_WIRE_TTL_DATA);
    cr_assert_eq(nmi_wire_route_encode(&r, pkt), NM_OK);
    memset(pkt + 18, 0x77, 100);
    const uint8_t *inner;
    size_t inner_len;
    cr_assert_eq(nmi_wire_routed_split(pkt, 118, &d, &inner, &inner_len),
                 NM_OK);
    cr_assert_eq(inner, pkt + 18);
    cr_assert_eq(inner_len, 100);
    cr_assert_eq(d.dest_id, r.dest_id);
}

Test(wire_route, routed_handshake)
{
    uint8_t noise[56], want[256], out[256];
    for (int i = 0; i < 56; i++) {
        noise[i] = (uint8_t)i;
    }
    size_t wlen = vec("handshake_routed", want, sizeof(want));
    cr_assert_eq(wlen, 18 + 68 + NMI_WIRE_HS_MSG1_ROUTED_LEN);
    size_t w;
    cr_assert_eq(nmi_wire_routed_handshake_encode(0xFEDCBA9876543210ull,
                                                  0x89ABCDEF, noise, 56, out,
                                                  sizeof(out), &w),
                 NM_OK);
    cr_assert_eq(w, wlen);
    cr_assert_arr_eq(out, want, wlen);
    nmi_wire_route r;
    const uint8_t *n;
    size_t nlen;
    cr_assert_eq(nmi_wire_routed_handshake_decode(out, w, &r, &n, &nlen),
                 NM_OK);
    cr_assert_eq(r.ttl, NMI_WIRE_TTL_HANDSHAKE);
    cr_assert_eq(r.flags, 0);
    cr_assert_eq(r.src_id, 0x89ABCDEF);
    cr_assert_eq(r.dest_id, 0xFEDCBA9876543210ull);
    cr_assert_eq(nlen, 56);
    cr_assert_arr_eq(n, noise, 56);
    for (size_t k = 0; k < w; k++) {
        cr_assert_eq(nmi_wire_routed_handshake_decode(out, k, &r, &n, &nlen),
                     NM_EDECODE, "len %zu", k);
    }
    cr_assert_eq(
        nmi_wire_routed_handshake_encode(1, 2, noise, 56, out, wlen - 1, &w),
        NM_ETOOBIG);
}

/* ------------------------------------------------- route-hop envelope */

static const char *kat_h =
    "6bd69bd4066f41f32e47134976f5bf01606f7a4a0e04369fe61158b06f3a144e";

Test(wire_route, hop_known_answer)
{
    uint8_t h[32];
    unhex(h, 32, kat_h);
    nmi_session i, r;
    cr_assert_eq(nmi_session_init(&i, h, true), NM_OK);
    cr_assert_eq(nmi_session_init(&r, h, false), NM_OK);
    uint8_t inner[NMI_WIRE_HEARTBEAT_LEN], want[256], out[256];
    cr_assert_eq(vec("heartbeat", inner, sizeof(inner)), sizeof(inner));
    size_t wlen = vec("route_hop", want, sizeof(want));
    cr_assert_eq(wlen, nmi_wire_hop_sealed_len(sizeof(inner)));

    nmi_wire_route rt;
    nmi_wire_route_init(&rt, 0x0123456789ABCDEFull, 0xDEADBEEF,
                        NMI_WIRE_TTL_DATA);
    rt.flags = NMI_WIRE_RF_CONTROL;
    size_t w;
    cr_assert_eq(nmi_wire_hop_seal(i.hop_tx_key, i.session_id, 5, &rt, inner,
                                   sizeof(inner), out, sizeof(out), &w),
                 NM_OK);
    cr_assert_eq(w, wlen);
    cr_assert_arr_eq(out, want, wlen);

    uint64_t sid;
    cr_assert_eq(nmi_wire_hop_peek_session(out, w, &sid), NM_OK);
    cr_assert_eq(sid, i.session_id);
    nmi_wire_hop hop;
    /* The responder verifies with its hop_rx key (= initiator hop_tx). */
    cr_assert_eq(nmi_wire_hop_open(r.hop_rx_key, out, w, &hop), NM_OK);
    cr_assert_eq(hop.hop_session_id, i.session_id);
    cr_assert_eq(hop.hop_seq, 5);
    cr_assert_eq(hop.route.dest_id, rt.dest_id);
    cr_assert_eq(hop.inner_len, sizeof(inner));
    cr_assert_arr_eq(hop.inner, inner, sizeof(inner));
    /* Not under the reverse direction's key. */
    cr_assert_eq(nmi_wire_hop_open(r.hop_tx_key, out, w, &hop), NM_ECRYPTO);
}

Test(wire_route, hop_every_byte_covered)
{
    uint8_t key[32], inner[50], out[200];
    memset(key, 0x11, sizeof(key));
    memcpy(inner, "end-to-end ciphertext that a relay must not touch", 50);
    nmi_wire_route rt;
    nmi_wire_route_init(&rt, 0xDEADBEEFCAFEull, 0x1234, 8);
    size_t w;
    cr_assert_eq(
        nmi_wire_hop_seal(key, 42, 7, &rt, inner, 50, out, sizeof(out), &w),
        NM_OK);
    nmi_wire_hop hop;
    for (size_t i = 0; i < w; i++) {
        uint8_t t[200];
        memcpy(t, out, w);
        t[i] ^= 1;
        int rc = nmi_wire_hop_open(key, t, w, &hop);
        if (i < 2 || i == 18 || i == 19) {
            cr_assert_eq(rc, NM_EDECODE, "magic byte %zu", i);
        } else {
            cr_assert_eq(rc, NM_ECRYPTO, "byte %zu must be covered", i);
        }
    }
    for (size_t n = 0; n < NMI_WIRE_HOP_OVERHEAD; n++) {
        cr_assert_eq(nmi_wire_hop_open(key, out, n, &hop), NM_EDECODE);
        uint64_t sid;
        cr_assert_eq(nmi_wire_hop_peek_session(out, n, &sid), NM_EDECODE);
    }
    /* An envelope with an empty inner packet is well-formed. */
    cr_assert_eq(
        nmi_wire_hop_seal(key, 1, 1, &rt, NULL, 0, out, sizeof(out), &w),
        NM_OK);
    cr_assert_eq(w, NMI_WIRE_HOP_OVERHEAD);
    cr_assert_eq(nmi_wire_hop_open(key, out, w, &hop), NM_OK);
    cr_assert_eq(hop.inner_len, 0);
}

Test(wire_route, hop_seal_buffer_rules)
{
    uint8_t key[32] = {0}, buf[300], inner[100];
    memset(inner, 0xEE, sizeof(inner));
    nmi_wire_route rt;
    nmi_wire_route_init(&rt, 9, 9, 9);
    size_t need = nmi_wire_hop_sealed_len(sizeof(inner)), w;
    memset(buf, 0, sizeof(buf));
    cr_assert_eq(nmi_wire_hop_seal(key, 1, 1, &rt, inner, sizeof(inner), buf,
                                   need - 1, &w),
                 NM_ETOOBIG);
    for (size_t i = 0; i < sizeof(buf); i++) {
        cr_assert_eq(buf[i], 0, "nothing written on refusal");
    }
    /* In place: the inner packet already sits at offset 36. */
    memcpy(buf + 36, inner, sizeof(inner));
    uint8_t ref[300];
    cr_assert_eq(nmi_wire_hop_seal(key, 1, 1, &rt, inner, sizeof(inner), ref,
                                   sizeof(ref), &w),
                 NM_OK);
    cr_assert_eq(nmi_wire_hop_seal(key, 1, 1, &rt, buf + 36, sizeof(inner),
                                   buf, need, &w),
                 NM_OK);
    cr_assert_arr_eq(buf, ref, need);
}

Test(wire_route, hop_replay_window)
{
    nmi_wire_hop_replay w;
    nmi_wire_hop_replay_init(&w);
    cr_assert(nmi_wire_hop_replay_admit(&w, 100));
    cr_assert_not(nmi_wire_hop_replay_admit(&w, 100));
    cr_assert(nmi_wire_hop_replay_admit(&w, 101));
    cr_assert_not(nmi_wire_hop_replay_admit(&w, 101));
    cr_assert(nmi_wire_hop_replay_admit(&w, 99));
    cr_assert_not(nmi_wire_hop_replay_admit(&w, 99));
    cr_assert(nmi_wire_hop_replay_admit(&w, 100000));
    cr_assert_not(nmi_wire_hop_replay_admit(&w, 101));
    cr_assert_not(nmi_wire_hop_replay_admit(&w, 99));

    /* Edges: exactly 128 behind admissible once, 129 refused. */
    const uint64_t W = NMI_WIRE_HOP_REPLAY_WINDOW, base = 1000000;
    nmi_wire_hop_replay_init(&w);
    cr_assert(nmi_wire_hop_replay_admit(&w, base));
    cr_assert_not(nmi_wire_hop_replay_admit(&w, base - W - 1));
    cr_assert(nmi_wire_hop_replay_admit(&w, base - W));
    cr_assert_not(nmi_wire_hop_replay_admit(&w, base - W));

    /* A duplicate exactly one window behind stays refused. */
    nmi_wire_hop_replay_init(&w);
    cr_assert(nmi_wire_hop_replay_admit(&w, 100));
    cr_assert(nmi_wire_hop_replay_admit(&w, 100 + W));
    cr_assert_not(nmi_wire_hop_replay_admit(&w, 100));

    /* Boundary matrix, as upstream's test. */
    for (uint64_t adv = W - 1; adv <= W + 1; adv++) {
        for (uint64_t off = 1; off <= W; off++) {
            nmi_wire_hop_replay_init(&w);
            cr_assert(nmi_wire_hop_replay_admit(&w, base));
            uint64_t victim = base + adv - off;
            if (victim < base) {
                continue;
            }
            if (victim > base) {
                cr_assert(nmi_wire_hop_replay_admit(&w, victim));
            }
            cr_assert(nmi_wire_hop_replay_admit(&w, base + adv));
            cr_assert_not(nmi_wire_hop_replay_admit(&w, victim),
                          "adv %llu off %llu", (unsigned long long)adv,
                          (unsigned long long)off);
        }
    }

    /* Model check against a naive set over random traffic. */
    srand(7);
    nmi_wire_hop_replay_init(&w);
    static uint8_t seen[4096];
    memset(seen, 0, sizeof(seen));
    uint64_t highest = 0;
    bool started = false;
    for (int i = 0; i < 200000; i++) {
        uint64_t s = (uint64_t)(rand() % 4000);
        bool want;
        if (!started) {
            want = true;
        } else if (s > highest) {
            want = true;
        } else {
            want = !seen[s] && highest - s <= W && s != highest;
        }
        bool got = nmi_wire_hop_replay_admit(&w, s);
        cr_assert_eq(got, want, "seq %llu", (unsigned long long)s);
        if (got) {
            seen[s] = 1;
            if (!started || s > highest) {
                highest = s;
            }
            started = true;
        }
        if (i % 5000 == 4999) { /* restart so highest does not pin */
            nmi_wire_hop_replay_init(&w);
            memset(seen, 0, sizeof(seen));
            started = false;
        }
    }
    /* Huge advance does not remember anything old. */
    nmi_wire_hop_replay_init(&w);
    cr_assert(nmi_wire_hop_replay_admit(&w, 1));
    cr_assert(nmi_wire_hop_replay_admit(&w, UINT64_MAX / 2));
    cr_assert_not(nmi_wire_hop_replay_admit(&w, 1));
}
