/*
 * tests/unit/test_wire_control.c - StreamWindow, StreamNack, StreamReset,
 * StreamAckRanges (0x0B00-0x0B03) and RouteWithdrawal (0x0C01), plus the
 * pingwave and NAT keep-alive datagrams.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "wire/wire.h"
#include "wire_vectors.h"

/* ------------------------------------------------- fixed-size messages */

Test(wire_control, stream_window)
{
    uint8_t want[64], got[NMI_WIRE_STREAM_WINDOW_LEN + 1];
    cr_assert_eq(vec("stream_window", want, sizeof(want)), 24);
    nmi_wire_stream_window m = {0xDEADBEEFCAFEF00Dull, 0x0102030405060708ull,
                                0x1122334455667788ull},
                           d;
    nmi_wire_stream_window_encode(&m, got);
    cr_assert_arr_eq(got, want, 24);
    cr_assert_eq(nmi_wire_stream_window_decode(got, 24, &d), NM_OK);
    cr_assert_eq(memcmp(&m, &d, sizeof(m)), 0);
    for (size_t n = 0; n < 24; n++) {
        cr_assert_eq(nmi_wire_stream_window_decode(got, n, &d), NM_EDECODE);
    }
    cr_assert_eq(nmi_wire_stream_window_decode(got, 25, &d), NM_EDECODE);
    cr_assert(strstr(nm_errdetail(), "oversize"));
}

Test(wire_control, stream_nack)
{
    uint8_t want[64], got[NMI_WIRE_STREAM_NACK_LEN + 1];
    cr_assert_eq(vec("stream_nack", want, sizeof(want)), 24);
    nmi_wire_stream_nack m = {7, 100, 0xA5}, d;
    nmi_wire_stream_nack_encode(&m, got);
    cr_assert_arr_eq(got, want, 24);
    cr_assert_eq(nmi_wire_stream_nack_decode(got, 24, &d), NM_OK);
    cr_assert_eq(memcmp(&m, &d, sizeof(m)), 0);
    for (size_t n = 0; n < 24; n++) {
        cr_assert_eq(nmi_wire_stream_nack_decode(got, n, &d), NM_EDECODE);
    }
    cr_assert_eq(nmi_wire_stream_nack_decode(got, 25, &d), NM_EDECODE);

    /* 100 (always), then bits 0,2,5,7 -> 101,103,106,108. */
    uint64_t miss[65];
    cr_assert_eq(nmi_wire_stream_nack_missing(&m, miss), 5);
    const uint64_t wantm[5] = {100, 101, 103, 106, 108};
    cr_assert_arr_eq(miss, wantm, sizeof(wantm));
    nmi_wire_stream_nack all = {1, 0, UINT64_MAX};
    cr_assert_eq(nmi_wire_stream_nack_missing(&all, miss), 65);
    cr_assert_eq(miss[64], 64);
    nmi_wire_stream_nack top = {1, UINT64_MAX - 2, UINT64_MAX};
    cr_assert_eq(nmi_wire_stream_nack_missing(&top, miss), 3);
    cr_assert_eq(miss[2], UINT64_MAX);
}

Test(wire_control, stream_reset_and_withdraw)
{
    uint8_t want[64], got[32];
    cr_assert_eq(vec("stream_reset", want, sizeof(want)), 8);
    nmi_wire_stream_reset r = {UINT64_MAX - 1}, rd;
    nmi_wire_stream_reset_encode(&r, got);
    cr_assert_arr_eq(got, want, 8);
    cr_assert_eq(nmi_wire_stream_reset_decode(got, 8, &rd), NM_OK);
    cr_assert_eq(rd.stream_id, r.stream_id);
    for (size_t n = 0; n < 8; n++) {
        cr_assert_eq(nmi_wire_stream_reset_decode(got, n, &rd), NM_EDECODE);
    }
    cr_assert_eq(nmi_wire_stream_reset_decode(got, 9, &rd), NM_EDECODE);

    cr_assert_eq(vec("route_withdraw", want, sizeof(want)), 16);
    nmi_wire_route_withdraw w = {0xDEADBEEFCAFEF00Dull, 42}, wd;
    nmi_wire_route_withdraw_encode(&w, got);
    cr_assert_arr_eq(got, want, 16);
    cr_assert_eq(nmi_wire_route_withdraw_decode(got, 16, &wd), NM_OK);
    cr_assert_eq(wd.dest, w.dest);
    cr_assert_eq(wd.seq, 42);
    for (size_t n = 0; n < 16; n++) {
        cr_assert_eq(nmi_wire_route_withdraw_decode(got, n, &wd), NM_EDECODE);
    }
    cr_assert_eq(nmi_wire_route_withdraw_decode(got, 17, &wd), NM_EDECODE);
    cr_assert_eq(nmi_wire_route_withdraw_decode(got, 16, NULL), NM_EINVAL);
}

/* ---------------------------------------------------- StreamAckRanges */

Test(wire_control, ack_ranges_known_answer)
{
    uint8_t want[64], got[NMI_WIRE_ACK_RANGES_MAX_LEN];
    cr_assert_eq(vec("stream_ack_ranges", want, sizeof(want)), 48);
    nmi_wire_ack_ranges m = {.stream_id = 9, .ack_seq = 101, .count = 2};
    m.ranges[0] = (nmi_wire_ack_range){200, 300};
    m.ranges[1] = (nmi_wire_ack_range){102, 150};
    size_t w;
    cr_assert_eq(nmi_wire_ack_ranges_len(&m), 48);
    cr_assert_eq(nmi_wire_ack_ranges_encode(&m, got, sizeof(got), &w), NM_OK);
    cr_assert_eq(w, 48);
    cr_assert_arr_eq(got, want, 48);
    nmi_wire_ack_ranges d;
    cr_assert_eq(nmi_wire_ack_ranges_decode(got, w, &d), NM_OK);
    cr_assert_eq(d.count, 2);
    cr_assert_eq(d.ranges[1].end, 150);
    for (size_t n = 0; n < w; n++) {
        /* The 32-byte prefix is itself a valid one-range message. */
        cr_assert_eq(nmi_wire_ack_ranges_decode(got, n, &d),
                     n == 32 ? NM_OK : NM_EDECODE, "len %zu", n);
    }
    cr_assert_eq(nmi_wire_ack_ranges_encode(&m, got, 47, &w), NM_ETOOBIG);
}

static int
decode_ranges(uint64_t ack, const uint64_t *pairs, size_t n)
{
    uint8_t b[16 + 17 * 16];
    nmi_store_le64(b, 1);
    nmi_store_le64(b + 8, ack);
    for (size_t i = 0; i < n; i++) {
        nmi_store_le64(b + 16 + 16 * i, pairs[2 * i]);
        nmi_store_le64(b + 24 + 16 * i, pairs[2 * i + 1]);
    }
    nmi_wire_ack_ranges d;
    int rc = nmi_wire_ack_ranges_decode(b, 16 + 16 * n, &d);
    /* encode agrees with decode on validity */
    nmi_wire_ack_ranges m = {.stream_id = 1, .ack_seq = ack};
    if (n <= NMI_WIRE_ACK_RANGES_MAX) {
        m.count = (uint8_t)n;
        for (size_t i = 0; i < n; i++) {
            m.ranges[i].start = pairs[2 * i];
            m.ranges[i].end = pairs[2 * i + 1];
        }
        uint8_t o[NMI_WIRE_ACK_RANGES_MAX_LEN];
        int erc = nmi_wire_ack_ranges_encode(&m, o, sizeof(o), NULL);
        cr_assert_eq(erc == NM_OK, rc == NM_OK);
    }
    return rc;
}

Test(wire_control, ack_ranges_validation)
{
    const uint64_t ok[] = {200, 300, 102, 150};
    cr_assert_eq(decode_ranges(101, ok, 2), NM_OK);
    cr_assert_eq(decode_ranges(101, ok, 0), NM_EDECODE); /* no ranges */
    const uint64_t empty[] = {200, 200};
    cr_assert_eq(decode_ranges(101, empty, 1), NM_EDECODE);
    const uint64_t inverted[] = {300, 200};
    cr_assert_eq(decode_ranges(101, inverted, 1), NM_EDECODE);
    const uint64_t at_ack[] = {101, 150};
    cr_assert_eq(decode_ranges(101, at_ack, 1), NM_EDECODE);
    const uint64_t ascending[] = {102, 150, 200, 300};
    cr_assert_eq(decode_ranges(101, ascending, 2), NM_EDECODE);
    const uint64_t adjacent[] = {150, 300, 102, 150};
    cr_assert_eq(decode_ranges(101, adjacent, 2), NM_EDECODE);
    const uint64_t overlap[] = {140, 300, 102, 150};
    cr_assert_eq(decode_ranges(101, overlap, 2), NM_EDECODE);
    const uint64_t gap1[] = {151, 300, 102, 150};
    cr_assert_eq(decode_ranges(101, gap1, 2), NM_OK);
    uint64_t many[34];
    for (int i = 0; i < 17; i++) { /* descending, merged, above 0 */
        many[2 * i] = 1000 - 10 * (uint64_t)i;
        many[2 * i + 1] = 1005 - 10 * (uint64_t)i;
    }
    cr_assert_eq(decode_ranges(0, many, 16), NM_OK);
    cr_assert_eq(decode_ranges(0, many, 17), NM_EDECODE);
    /* Not 16 + 16n. */
    uint8_t b[40] = {0};
    nmi_wire_ack_ranges d;
    cr_assert_eq(nmi_wire_ack_ranges_decode(b, 40, &d), NM_EDECODE);
    nmi_wire_ack_ranges m = {.count = 17};
    cr_assert_eq(nmi_wire_ack_ranges_encode(&m, b, sizeof(b), NULL),
                 NM_EINVAL);
}

/* ----------------------------------------------------------- pingwave */

Test(wire_pingwave, known_answer)
{
    uint8_t want[NMI_WIRE_PINGWAVE_LEN], got[NMI_WIRE_PINGWAVE_LEN];
    cr_assert_eq(vec("pingwave", want, sizeof(want)), 72);
    nmi_wire_pingwave pw, d;
    nmi_wire_pingwave_init(&pw, 0x1122334455667788ull, 42,
                           NMI_WIRE_PINGWAVE_RADIUS);
    pw.hop_count = 1;
    pw.origin_ts_us = 1700000000123456ull;
    pw.cap_hash = 0xDEADBEEFCAFEF00Dull;
    pw.cap_version = 5;
    pw.load = 128;
    pw.health = NMI_WIRE_HEALTH_DEGRADED;
    pw.gpu = true;
    pw.model_slots = 4;
    pw.mem_tier = 5;
    pw.tools = 0xAA;
    pw.cap_flags = 0x12345678;
    cr_assert_eq(nmi_wire_pingwave_encode(&pw, got), NM_OK);
    cr_assert_arr_eq(got, want, 72);
    cr_assert_eq(nmi_wire_pingwave_decode(want, 72, &d), NM_OK);
    cr_assert_arr_eq(d.origin, pw.origin, 32);
    cr_assert_eq(d.seq, pw.seq);
    cr_assert_eq(d.ttl, pw.ttl);
    cr_assert_eq(d.hop_count, pw.hop_count);
    cr_assert_eq(d.origin_ts_us, pw.origin_ts_us);
    cr_assert_eq(d.cap_hash, pw.cap_hash);
    cr_assert_eq(d.cap_version, pw.cap_version);
    cr_assert_eq(d.load, pw.load);
    cr_assert_eq(d.health, pw.health);
    cr_assert_eq(d.gpu, pw.gpu);
    cr_assert_eq(d.model_slots, pw.model_slots);
    cr_assert_eq(d.mem_tier, pw.mem_tier);
    cr_assert_eq(d.tools, pw.tools);
    cr_assert_eq(d.cap_flags, pw.cap_flags);
    cr_assert_eq(nmi_wire_pingwave_origin_node(&d), 0x1122334455667788ull);

    for (size_t n = 0; n < 72; n++) {
        cr_assert_eq(nmi_wire_pingwave_decode(want, n, &d), NM_EDECODE);
    }
    uint8_t longer[73];
    memcpy(longer, want, 72);
    cr_assert_eq(nmi_wire_pingwave_decode(longer, 73, &d), NM_EDECODE);
    for (unsigned hb = 0; hb < 256; hb++) {
        uint8_t t[72];
        memcpy(t, want, 72);
        t[63] = (uint8_t)hb;
        cr_assert_eq(nmi_wire_pingwave_decode(t, 72, &d),
                     hb <= 3 ? NM_OK : NM_EDECODE);
    }
    /* gpu byte: any non-zero decodes as true, re-encodes as 1. */
    uint8_t t[72];
    memcpy(t, want, 72);
    t[64] = 0x7F;
    cr_assert_eq(nmi_wire_pingwave_decode(t, 72, &d), NM_OK);
    cr_assert(d.gpu);
    cr_assert_eq(nmi_wire_pingwave_encode(&d, got), NM_OK);
    cr_assert_eq(got[64], 1);
    pw.health = 4;
    cr_assert_eq(nmi_wire_pingwave_encode(&pw, got), NM_EINVAL);
}

Test(wire_pingwave, forward)
{
    nmi_wire_pingwave pw;
    nmi_wire_pingwave_init(&pw, 1, 1, 2);
    cr_assert(nmi_wire_pingwave_forward(&pw));
    cr_assert(nmi_wire_pingwave_forward(&pw));
    cr_assert_eq(pw.ttl, 0);
    cr_assert_eq(pw.hop_count, 2);
    cr_assert_not(nmi_wire_pingwave_forward(&pw));
    cr_assert_eq(pw.hop_count, 2);
    pw.ttl = 1;
    pw.hop_count = 255;
    cr_assert(nmi_wire_pingwave_forward(&pw));
    cr_assert_eq(pw.hop_count, 255);
}

Test(wire_pingwave, keepalive)
{
    uint8_t want[32], got[NMI_WIRE_KEEPALIVE_LEN + 1];
    cr_assert_eq(vec("keepalive", want, sizeof(want)), 14);
    nmi_wire_keepalive ka = {0x0102030405060708ull, 0x0A0B0C0D}, d;
    nmi_wire_keepalive_encode(&ka, got);
    cr_assert_arr_eq(got, want, 14);
    cr_assert_eq(got[0], 'P');
    cr_assert_eq(got[1], 'H');
    cr_assert_eq(nmi_wire_keepalive_decode(got, 14, &d), NM_OK);
    cr_assert_eq(d.node_id, ka.node_id);
    cr_assert_eq(d.punch_id, ka.punch_id);
    for (size_t n = 0; n < 14; n++) {
        cr_assert_eq(nmi_wire_keepalive_decode(got, n, &d), NM_EDECODE);
    }
    cr_assert_eq(nmi_wire_keepalive_decode(got, 15, &d), NM_EDECODE);
    got[0] = 'H';
    got[1] = 'P';
    cr_assert_eq(nmi_wire_keepalive_decode(got, 14, &d), NM_EDECODE);
}
