/*
 * tests/unit/test_wire_header.c - the NetHeader codec, its AAD and nonce,
 * the packet length rule, heartbeat and handshake framing, ids, the
 * discriminator, and sealing with a real AEAD session. Known answers come
 * from tests/vectors/wire-v1.json (computed independently in Python).
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

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#define XXH_INLINE_ALL
#include <xxhash.h>
#pragma GCC diagnostic pop

/* ------------------------------------------------------------ helpers */

/* Vector `name` of wire-v1.json into out; returns its length. */

static const char *kat_h =
    "6bd69bd4066f41f32e47134976f5bf01606f7a4a0e04369fe61158b06f3a144e";

static void
session_pair(nmi_session *i, nmi_session *r)
{
    uint8_t h[32];
    unhex(h, 32, kat_h);
    cr_assert_eq(nmi_session_init(i, h, true), NM_OK);
    cr_assert_eq(nmi_session_init(r, h, false), NM_OK);
}

static void
vector_header(nmi_wire_header *h)
{
    nmi_wire_header_init(h, NMI_WIRE_F_RELIABLE, 0x1122334455667788ull,
                         0xFEDCBA0987654321ull, 42);
    h->priority = 7;
    h->hop_ttl = 5;
    h->hop_count = 3;
    h->frag_flags = 2;
    h->subprotocol_id = NMI_WIRE_SP_MEMBERSHIP;
    h->channel_hash = 0xABCD;
    nmi_wire_header_set_counter(h, 0x0102030405060708ull);
    h->origin_hash = 0xCAFEBABEDEADBEEFull;
    h->subnet_id = 0x01020304;
    h->fragment_id = 0x1357;
    h->fragment_offset = 0x2468;
    h->payload_len = 1024;
    h->event_count = 10;
}

static bool
header_eq(const nmi_wire_header *a, const nmi_wire_header *b)
{
    return a->flags == b->flags && a->priority == b->priority &&
           a->hop_ttl == b->hop_ttl && a->hop_count == b->hop_count &&
           a->frag_flags == b->frag_flags &&
           a->subprotocol_id == b->subprotocol_id &&
           a->channel_hash == b->channel_hash &&
           memcmp(a->nonce, b->nonce, sizeof(a->nonce)) == 0 &&
           a->session_id == b->session_id && a->stream_id == b->stream_id &&
           a->sequence == b->sequence && a->origin_hash == b->origin_hash &&
           a->subnet_id == b->subnet_id && a->fragment_id == b->fragment_id &&
           a->fragment_offset == b->fragment_offset &&
           a->payload_len == b->payload_len &&
           a->event_count == b->event_count;
}

/* ------------------------------------------------------------- header */

Test(wire_header, known_answer_encode_decode)
{
    uint8_t want[128], got[NMI_WIRE_HEADER_LEN];
    cr_assert_eq(vec("header", want, sizeof(want)), NMI_WIRE_HEADER_LEN);
    nmi_wire_header h, d;
    vector_header(&h);
    cr_assert_eq(nmi_wire_header_encode(&h, got), NM_OK);
    cr_assert_arr_eq(got, want, NMI_WIRE_HEADER_LEN);

    cr_assert_eq(nmi_wire_header_decode(want, sizeof(got), &d), NM_OK);
    cr_assert(header_eq(&h, &d), "decode(encode(h)) == h");
    cr_assert_eq(nmi_wire_header_counter(&d), 0x0102030405060708ull);
    cr_assert_eq(nmi_wire_read_counter(want), 0x0102030405060708ull);

    uint8_t aad[NMI_WIRE_AAD_LEN], aad2[NMI_WIRE_AAD_LEN], wa[64];
    cr_assert_eq(vec("header_aad", wa, sizeof(wa)), NMI_WIRE_AAD_LEN);
    nmi_wire_aad(&h, aad);
    cr_assert_arr_eq(aad, wa, NMI_WIRE_AAD_LEN);
    nmi_wire_aad_from_bytes(want, aad2);
    cr_assert_arr_eq(aad2, wa, NMI_WIRE_AAD_LEN);

    uint8_t pfx[4], wp[4];
    vec("header_nonce_prefix", wp, 4);
    nmi_wire_nonce_prefix(h.session_id, pfx);
    cr_assert_arr_eq(pfx, wp, 4);
}

Test(wire_header, field_offsets)
{
    /* Each field lands at the offset of the byte table. */
    nmi_wire_header h;
    uint8_t b[NMI_WIRE_HEADER_LEN];
    nmi_wire_header_init(&h, 0, 0, 0, 0);
    h.session_id = 0x0807060504030201ull;
    h.stream_id = 0x1817161514131211ull;
    h.sequence = 0x2827262524232221ull;
    h.origin_hash = 0x3837363534333231ull;
    h.subnet_id = 0x44434241;
    h.payload_len = 0x0102;
    h.event_count = 0x0304;
    cr_assert_eq(nmi_wire_header_encode(&h, b), NM_OK);
    cr_assert_eq(b[0], 0x45);
    cr_assert_eq(b[1], 0x4E);
    cr_assert_eq(b[2], 1);
    cr_assert_eq(b[24], 0x01);
    cr_assert_eq(b[31], 0x08);
    cr_assert_eq(b[32], 0x11);
    cr_assert_eq(b[40], 0x21);
    cr_assert_eq(b[48], 0x31);
    cr_assert_eq(b[55], 0x38);
    cr_assert_eq(b[56], 0x41);
    cr_assert_eq(b[64], 0x02);
    cr_assert_eq(b[65], 0x01);
    cr_assert_eq(b[66], 0x04);
    cr_assert_eq(b[67], 0x03);
}

Test(wire_header, decode_rejects_every_truncation)
{
    uint8_t b[NMI_WIRE_HEADER_LEN];
    nmi_wire_header h, d;
    vector_header(&h);
    cr_assert_eq(nmi_wire_header_encode(&h, b), NM_OK);
    for (size_t n = 0; n < NMI_WIRE_HEADER_LEN; n++) {
        cr_assert_eq(nmi_wire_header_decode(b, n, &d), NM_EDECODE, "len %zu",
                     n);
    }
    cr_assert_eq(nmi_wire_header_decode(b, NMI_WIRE_HEADER_LEN, &d), NM_OK);
    cr_assert_eq(nmi_wire_header_decode(NULL, 0, &d), NM_EDECODE);
    cr_assert_eq(nmi_wire_header_decode(b, 68, NULL), NM_EINVAL);
}

Test(wire_header, decode_rejects_bad_fields)
{
    uint8_t b[NMI_WIRE_HEADER_LEN], t[NMI_WIRE_HEADER_LEN];
    nmi_wire_header h, d;
    nmi_wire_header_init(&h, 0, 1, 2, 3);
    cr_assert_eq(nmi_wire_header_encode(&h, b), NM_OK);

    memcpy(t, b, sizeof(t));
    t[0] = 0x4E; /* byte-swapped magic */
    t[1] = 0x45;
    cr_assert_eq(nmi_wire_header_decode(t, sizeof(t), &d), NM_EDECODE);
    cr_assert(strstr(nm_errdetail(), "magic"));
    for (unsigned v = 0; v < 256; v++) {
        memcpy(t, b, sizeof(t));
        t[2] = (uint8_t)v;
        cr_assert_eq(nmi_wire_header_decode(t, sizeof(t), &d),
                     v == 1 ? NM_OK : NM_EDECODE, "version %u", v);
    }
    for (unsigned f = 0; f < 256; f++) {
        memcpy(t, b, sizeof(t));
        t[3] = (uint8_t)f;
        cr_assert_eq(nmi_wire_header_decode(t, sizeof(t), &d),
                     (f & 0xC0) ? NM_EDECODE : NM_OK, "flags %02x", f);
    }
    /* payload_len 8108 ok, 8109 not; event_count 2027 ok, 2028 not. */
    memcpy(t, b, sizeof(t));
    t[64] = 8108 & 0xFF;
    t[65] = 8108 >> 8;
    cr_assert_eq(nmi_wire_header_decode(t, sizeof(t), &d), NM_OK);
    cr_assert_eq(d.payload_len, 8108);
    t[64]++;
    cr_assert_eq(nmi_wire_header_decode(t, sizeof(t), &d), NM_EDECODE);
    t[64] = t[65] = 0xFF;
    cr_assert_eq(nmi_wire_header_decode(t, sizeof(t), &d), NM_EDECODE);
    memcpy(t, b, sizeof(t));
    t[66] = 2027 & 0xFF;
    t[67] = 2027 >> 8;
    cr_assert_eq(nmi_wire_header_decode(t, sizeof(t), &d), NM_OK);
    t[66]++;
    cr_assert_eq(nmi_wire_header_decode(t, sizeof(t), &d), NM_EDECODE);
}

Test(wire_header, encode_limits)
{
    nmi_wire_header h;
    uint8_t b[NMI_WIRE_HEADER_LEN];
    nmi_wire_header_init(&h, 0x40, 0, 0, 0);
    cr_assert_eq(nmi_wire_header_encode(&h, b), NM_EINVAL);
    nmi_wire_header_init(&h, 0, 0, 0, 0);
    h.payload_len = NMI_WIRE_MAX_PAYLOAD + 1;
    cr_assert_eq(nmi_wire_header_encode(&h, b), NM_ETOOBIG);
    h.payload_len = NMI_WIRE_MAX_PAYLOAD;
    h.event_count = NMI_WIRE_MAX_EVENTS + 1;
    cr_assert_eq(nmi_wire_header_encode(&h, b), NM_ETOOBIG);
    h.event_count = NMI_WIRE_MAX_EVENTS;
    cr_assert_eq(nmi_wire_header_encode(&h, b), NM_OK);
    cr_assert_eq(nmi_wire_header_encode(NULL, b), NM_EINVAL);
}

Test(wire_header, sizes)
{
    cr_assert_eq(NMI_WIRE_MAX_PAYLOAD,
                 NMI_WIRE_MAX_PACKET - NMI_WIRE_HEADER_LEN - NMI_WIRE_TAG_LEN);
    cr_assert_eq(NMI_WIRE_MAX_EVENTS, NMI_WIRE_MAX_PAYLOAD / 4);
    cr_assert_eq(NMI_WIRE_HEARTBEAT_LEN, 84);
    cr_assert_eq(NMI_WIRE_PACKET_OVERHEAD, 84);
}

Test(wire_header, packet_length_rule)
{
    nmi_wire_header h;
    nmi_wire_header_init(&h, 0, 1, 2, 3);
    h.payload_len = 100;
    cr_assert_eq(nmi_wire_packet_check(&h, 68 + 100 + 16), NM_OK);
    cr_assert_eq(nmi_wire_packet_check(&h, 68 + 100 + 15), NM_EDECODE);
    cr_assert_eq(nmi_wire_packet_check(&h, 68 + 100 + 17), NM_EDECODE);
    cr_assert_eq(nmi_wire_packet_check(&h, 68 + 100), NM_EDECODE);
    h.flags = NMI_WIRE_F_HANDSHAKE;
    cr_assert_eq(nmi_wire_packet_check(&h, 68 + 100), NM_OK);
    cr_assert_eq(nmi_wire_packet_check(&h, 68 + 100 + 16), NM_EDECODE);
    /* Largest packet: 8192 bytes exactly. */
    h.flags = 0;
    h.payload_len = NMI_WIRE_MAX_PAYLOAD;
    cr_assert_eq(nmi_wire_packet_check(&h, NMI_WIRE_MAX_PACKET), NM_OK);

    /* parse = decode + rule. */
    uint8_t pkt[68 + 10 + 16];
    memset(pkt, 0xA5, sizeof(pkt));
    nmi_wire_header_init(&h, 0, 9, 8, 7);
    h.payload_len = 10;
    cr_assert_eq(nmi_wire_header_encode(&h, pkt), NM_OK);
    nmi_wire_header d;
    const uint8_t *body;
    size_t body_len;
    cr_assert_eq(nmi_wire_packet_parse(pkt, sizeof(pkt), &d, &body, &body_len),
                 NM_OK);
    cr_assert_eq(body, pkt + 68);
    cr_assert_eq(body_len, 26);
    for (size_t n = 0; n < sizeof(pkt); n++) {
        cr_assert_eq(nmi_wire_packet_parse(pkt, n, &d, NULL, NULL), NM_EDECODE,
                     "len %zu", n);
    }
}

/* ------------------------------------------------------ AAD and nonce */

Test(wire_header, aad_rule)
{
    nmi_wire_header h, g;
    uint8_t a[NMI_WIRE_AAD_LEN], b[NMI_WIRE_AAD_LEN];
    vector_header(&h);
    nmi_wire_aad(&h, a);
    /* hop_count and the nonce are outside the AAD. */
    g = h;
    g.hop_count = 200;
    nmi_wire_header_set_counter(&g, 999);
    nmi_wire_aad(&g, b);
    cr_assert_arr_eq(a, b, NMI_WIRE_AAD_LEN);
    cr_assert_eq(a[6], 0);
    /* Every other field is inside. */
    g = h;
    g.hop_ttl++;
    nmi_wire_aad(&g, b);
    cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
    g = h;
    g.origin_hash ^= 1ull << 40;
    nmi_wire_aad(&g, b);
    cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
    g = h;
    g.fragment_offset ^= 1;
    nmi_wire_aad(&g, b);
    cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
    /* From bytes == from fields, for any header bytes. */
    uint8_t hb[NMI_WIRE_HEADER_LEN];
    cr_assert_eq(nmi_wire_header_encode(&h, hb), NM_OK);
    nmi_wire_aad_from_bytes(hb, b);
    cr_assert_arr_eq(a, b, NMI_WIRE_AAD_LEN);
    cr_assert_arr_eq(b, hb, 6);
    cr_assert_arr_eq(b + 12, hb + 24, 44);
}

Test(wire_header, nonce_prefix_matches_session)
{
    nmi_session i, r;
    session_pair(&i, &r);
    uint8_t p[4], n[12], sn[12];
    nmi_wire_nonce_prefix(i.session_id, p);
    cr_assert_arr_eq(p, i.nonce_prefix, 4);
    uint8_t want[4] = {0x6d, 0xb9, 0xda, 0x27};
    cr_assert_arr_eq(p, want, 4);
    nmi_wire_nonce(i.session_id, 0x1234567890ull, n);
    nmi_session_nonce(&i, 0x1234567890ull, sn);
    cr_assert_arr_eq(n, sn, 12);
    /* A session id whose halves are equal has prefix 0. */
    nmi_wire_nonce_prefix(0xABCDEF01ABCDEF01ull, p);
    cr_assert_eq(nmi_load_le32(p), 0);
}

/* The integration test of the brief: seal with nmi_session_seal and the
 * wire AAD, open after flipping hop_count (must open), and after flipping
 * any other header byte (must fail). */
Test(wire_header, aad_session_integration)
{
    nmi_session tx, rx0;
    session_pair(&tx, &rx0);
    const uint8_t frame[] = "\x05\x00\x00\x00hello";
    const size_t plen = sizeof(frame) - 1;
    nmi_wire_header h;
    nmi_wire_header_init(&h, NMI_WIRE_F_RELIABLE, tx.session_id, 77, 5);
    h.subprotocol_id = 0;
    h.channel_hash = 0x4242;
    h.origin_hash = 0x1122334455667788ull;
    h.payload_len = (uint16_t)plen;
    h.event_count = 1;
    uint8_t pkt[NMI_WIRE_PACKET_OVERHEAD + 16];
    size_t total = NMI_WIRE_PACKET_OVERHEAD + plen;
    cr_assert_eq(nmi_wire_header_encode(&h, pkt), NM_OK);
    uint8_t aad[NMI_WIRE_AAD_LEN];
    nmi_wire_aad(&h, aad);
    uint64_t counter = 99;
    cr_assert_eq(nmi_session_seal(&tx, aad, sizeof(aad), frame, plen,
                                  pkt + NMI_WIRE_HEADER_LEN, &counter),
                 NM_OK);
    cr_assert_eq(counter, 0);
    nmi_wire_write_nonce(pkt, h.session_id, counter);

    for (size_t byte = 0; byte < NMI_WIRE_HEADER_LEN; byte++) {
        uint8_t t[sizeof(pkt)], out[64], a2[NMI_WIRE_AAD_LEN];
        memcpy(t, pkt, total);
        t[byte] ^= 0x01;
        nmi_session rx = rx0; /* fresh replay window each time */
        nmi_wire_aad_from_bytes(t, a2);
        int rc = nmi_session_open(&rx, nmi_wire_read_counter(t), a2,
                                  sizeof(a2), t + NMI_WIRE_HEADER_LEN,
                                  total - NMI_WIRE_HEADER_LEN, out);
        if (byte == 6) {
            cr_assert_eq(rc, NM_OK, "hop_count is not authenticated");
            cr_assert_arr_eq(out, frame, plen);
        } else if (byte >= 12 && byte < 16) {
            /* The prefix bytes are not read: the receiver rebuilds the
             * nonce from its session and the counter. */
            cr_assert_eq(rc, NM_OK, "nonce prefix byte %zu", byte);
        } else {
            cr_assert_neq(rc, NM_OK, "header byte %zu must be covered", byte);
        }
    }
    /* Unmodified: opens, then the replay is refused. */
    uint8_t t[sizeof(pkt)], out[64], a2[NMI_WIRE_AAD_LEN];
    memcpy(t, pkt, total);
    nmi_wire_aad_from_bytes(t, a2);
    nmi_session rx = rx0;
    cr_assert_eq(
        nmi_session_open(&rx, 0, a2, sizeof(a2), t + 68, total - 68, out),
        NM_OK);
    cr_assert_eq(
        nmi_session_open(&rx, 0, a2, sizeof(a2), t + 68, total - 68, out),
        NM_EPROTO);
}

Test(wire_header, sealed_packet_known_answer)
{
    nmi_session tx, rx;
    session_pair(&tx, &rx);
    uint8_t frame[64], want[256], out[256];
    size_t flen = vec("frame_3_events", frame, sizeof(frame));
    size_t wlen = vec("sealed_packet", want, sizeof(want));
    nmi_wire_header h;
    nmi_wire_header_init(&h, NMI_WIRE_F_RELIABLE, 0,
                         NMI_WIRE_CHANNEL_STREAM_BIT | 0x5EED, 1);
    h.channel_hash = 0x1234;
    h.origin_hash = 0x0102030405060708ull;
    h.event_count = 3;
    size_t w = 0;
    cr_assert_eq(nmi_wire_seal(&tx, &h, frame, flen, out, sizeof(out), &w),
                 NM_OK);
    cr_assert_eq(w, wlen);
    cr_assert_arr_eq(out, want, wlen);
    cr_assert_eq(h.session_id, tx.session_id);
    cr_assert_eq(h.payload_len, flen);
    cr_assert_eq(nmi_wire_header_counter(&h), 0);

    uint8_t wa[64], aad[NMI_WIRE_AAD_LEN];
    vec("sealed_packet_aad", wa, sizeof(wa));
    nmi_wire_aad_from_bytes(out, aad);
    cr_assert_arr_eq(aad, wa, NMI_WIRE_AAD_LEN);

    /* The receiver opens it in place and reads the 3 events. */
    nmi_wire_header d;
    uint8_t *pt;
    size_t ptlen;
    cr_assert_eq(nmi_wire_open(&rx, out, w, &d, &pt, &ptlen), NM_OK);
    cr_assert_eq(ptlen, flen);
    cr_assert_arr_eq(pt, frame, flen);
    nmi_wire_frame_iter it;
    nmi_wire_buf ev;
    cr_assert_eq(nmi_wire_frame_iter_init(&it, pt, ptlen, d.event_count),
                 NM_OK);
    cr_assert(nmi_wire_frame_next(&it, &ev));
    cr_assert_eq(ev.len, 5);
    cr_assert_arr_eq(ev.ptr, "alpha", 5);
    cr_assert(nmi_wire_frame_next(&it, &ev));
    cr_assert_eq(ev.len, 0);
    cr_assert(nmi_wire_frame_next(&it, &ev));
    cr_assert_eq(ev.len, 9);
    cr_assert_arr_eq(ev.ptr, "gamma-ray", 9);
    cr_assert_not(nmi_wire_frame_next(&it, &ev));
}

Test(wire_header, seal_open_in_place_and_failures)
{
    nmi_session tx, rx;
    session_pair(&tx, &rx);
    uint8_t pkt[NMI_WIRE_MAX_PACKET + 8];
    const size_t plen = 500;
    for (size_t i = 0; i < plen; i++) {
        pkt[68 + i] = (uint8_t)i;
    }
    nmi_wire_header h;
    nmi_wire_header_init(&h, 0, 0, 3, 4);
    h.event_count = 1;
    size_t w;
    /* In place: pt == out + 68. */
    cr_assert_eq(nmi_wire_seal(&tx, &h, pkt + 68, plen, pkt, sizeof(pkt), &w),
                 NM_OK);
    cr_assert_eq(w, plen + 84);
    uint8_t copy[sizeof(pkt)];
    memcpy(copy, pkt, w);
    nmi_wire_header d;
    uint8_t *pt;
    size_t ptlen;
    cr_assert_eq(nmi_wire_open(&rx, pkt, w, &d, &pt, &ptlen), NM_OK);
    for (size_t i = 0; i < plen; i++) {
        cr_assert_eq(pt[i], (uint8_t)i);
    }
    /* Replay of the same bytes. */
    memcpy(pkt, copy, w);
    cr_assert_eq(nmi_wire_open(&rx, pkt, w, &d, &pt, &ptlen), NM_EPROTO);
    /* Wrong length. */
    memcpy(pkt, copy, w);
    cr_assert_eq(nmi_wire_open(&rx, pkt, w - 1, &d, &pt, &ptlen), NM_EDECODE);
    /* Another session. */
    nmi_session other = rx;
    other.session_id ^= 1;
    cr_assert_eq(nmi_wire_open(&other, pkt, w, &d, &pt, &ptlen), NM_EPROTO);
    /* Errors of seal. */
    cr_assert_eq(nmi_wire_seal(&tx, &h, pkt, NMI_WIRE_MAX_PAYLOAD + 1, pkt,
                               sizeof(pkt), &w),
                 NM_ETOOBIG);
    cr_assert_eq(nmi_wire_seal(&tx, &h, pkt + 68, 10, pkt, 68 + 10 + 15, &w),
                 NM_ETOOBIG);
    h.flags = NMI_WIRE_F_HANDSHAKE;
    cr_assert_eq(nmi_wire_seal(&tx, &h, pkt + 68, 10, pkt, sizeof(pkt), &w),
                 NM_EINVAL);
    /* Largest payload: an 8192-byte packet. */
    h.flags = 0;
    cr_assert_eq(nmi_wire_seal(&tx, &h, pkt + 68, NMI_WIRE_MAX_PAYLOAD, pkt,
                               sizeof(pkt), &w),
                 NM_OK);
    cr_assert_eq(w, NMI_WIRE_MAX_PACKET);
    cr_assert_eq(nmi_wire_open(&rx, pkt, w, &d, &pt, &ptlen), NM_OK);
}

/* ---------------------------------------------------------- heartbeat */

Test(wire_header, heartbeat_known_answer)
{
    nmi_session tx, rx;
    session_pair(&tx, &rx);
    uint8_t want[NMI_WIRE_HEARTBEAT_LEN], hb[NMI_WIRE_HEARTBEAT_LEN];
    cr_assert_eq(vec("heartbeat", want, sizeof(want)), NMI_WIRE_HEARTBEAT_LEN);
    tx.tx_counter = 1; /* the vector uses counter 1 */
    cr_assert_eq(nmi_wire_heartbeat_seal(&tx, hb), NM_OK);
    cr_assert_arr_eq(hb, want, sizeof(hb));

    nmi_wire_header h;
    cr_assert_eq(nmi_wire_header_decode(hb, sizeof(hb), &h), NM_OK);
    cr_assert_eq(nmi_wire_packet_kind_of(&h), NMI_WIRE_PACKET_HEARTBEAT);
    cr_assert_eq(nmi_wire_heartbeat_check(&h, sizeof(hb)), NM_OK);
    cr_assert_eq(nmi_wire_heartbeat_check(&h, sizeof(hb) - 1), NM_EDECODE);
    uint8_t *pt;
    size_t ptlen = 99;
    cr_assert_eq(nmi_wire_open(&rx, hb, sizeof(hb), &h, &pt, &ptlen), NM_OK);
    cr_assert_eq(ptlen, 0);

    /* Shape failures. */
    nmi_wire_header g;
    nmi_wire_heartbeat_header(&g, 5);
    cr_assert_eq(g.flags, NMI_WIRE_F_HEARTBEAT);
    cr_assert_eq(nmi_wire_heartbeat_check(&g, 84), NM_OK);
    g.payload_len = 1;
    cr_assert_eq(nmi_wire_heartbeat_check(&g, 84), NM_EDECODE);
    g.payload_len = 0;
    g.event_count = 1;
    cr_assert_eq(nmi_wire_heartbeat_check(&g, 84), NM_EDECODE);
    g.event_count = 0;
    g.flags |= NMI_WIRE_F_HANDSHAKE;
    cr_assert_eq(nmi_wire_heartbeat_check(&g, 84), NM_EDECODE);
    cr_assert_eq(nmi_wire_packet_kind_of(&g), NMI_WIRE_PACKET_HANDSHAKE);
    g.flags = 0;
    cr_assert_eq(nmi_wire_heartbeat_check(&g, 84), NM_EDECODE);
    cr_assert_eq(nmi_wire_packet_kind_of(&g), NMI_WIRE_PACKET_DATA);
}

/* ---------------------------------------------------------- handshake */

Test(wire_header, handshake_framing)
{
    uint8_t noise[48], want[200], out[200];
    for (int i = 0; i < 48; i++) {
        noise[i] = (uint8_t)i;
    }
    size_t wlen = vec("handshake_direct", want, sizeof(want));
    cr_assert_eq(wlen, 68 + NMI_WIRE_HS_MSG1_LEN);
    size_t w = 0;
    cr_assert_eq(nmi_wire_handshake_encode(noise, 48, out, sizeof(out), &w),
                 NM_OK);
    cr_assert_eq(w, wlen);
    cr_assert_arr_eq(out, want, wlen);
    const uint8_t *n;
    size_t nlen;
    cr_assert_eq(nmi_wire_handshake_decode(out, w, &n, &nlen), NM_OK);
    cr_assert_eq(nlen, 48);
    cr_assert_eq(n, out + 68);
    /* The classifier sees a direct packet; its kind is HANDSHAKE. */
    cr_assert_eq(nmi_wire_classify(out, w), NMI_WIRE_KIND_DIRECT);
    nmi_wire_header h;
    cr_assert_eq(nmi_wire_packet_parse(out, w, &h, NULL, NULL), NM_OK);
    cr_assert_eq(nmi_wire_packet_kind_of(&h), NMI_WIRE_PACKET_HANDSHAKE);

    /* Every truncation and a trailing byte are refused. */
    for (size_t k = 0; k < w; k++) {
        cr_assert_eq(nmi_wire_handshake_decode(out, k, &n, &nlen), NM_EDECODE,
                     "len %zu", k);
    }
    out[w] = 0;
    cr_assert_eq(nmi_wire_handshake_decode(out, w + 1, &n, &nlen), NM_EDECODE);
    /* Non-zero session, stream, sequence or nonce; missing flag. */
    const size_t pos[] = {3, 12, 23, 24, 32, 40};
    for (size_t k = 0; k < NMI_ARRAY_LEN(pos); k++) {
        uint8_t t[200];
        memcpy(t, want, wlen);
        t[pos[k]] ^= (pos[k] == 3) ? 0x10 : 0x01;
        cr_assert_eq(nmi_wire_handshake_decode(t, wlen, &n, &nlen), NM_EDECODE,
                     "byte %zu", pos[k]);
    }
    /* In place (noise already at out + 68) and limits. */
    memmove(out + 68, noise, 48);
    cr_assert_eq(nmi_wire_handshake_encode(out + 68, 48, out, 116, &w), NM_OK);
    cr_assert_arr_eq(out, want, wlen);
    cr_assert_eq(nmi_wire_handshake_encode(noise, 48, out, 115, &w),
                 NM_ETOOBIG);
    cr_assert_eq(nmi_wire_handshake_encode(noise, NMI_WIRE_MAX_PAYLOAD + 1,
                                           out, sizeof(out), &w),
                 NM_ETOOBIG);
}

/* ------------------------------------------------------ discriminator */

Test(wire_header, discriminator)
{
    uint8_t b[128];
    memset(b, 0x33, sizeof(b));
    cr_assert_eq(nmi_wire_classify(b, 0), NMI_WIRE_KIND_UNKNOWN);
    cr_assert_eq(nmi_wire_classify(NULL, 10), NMI_WIRE_KIND_UNKNOWN);
    cr_assert_eq(nmi_wire_classify(b, 1), NMI_WIRE_KIND_UNKNOWN);
    cr_assert_eq(nmi_wire_classify(b, 100), NMI_WIRE_KIND_UNKNOWN);
    /* Any 72-byte datagram not starting 45 4E is a pingwave. */
    cr_assert_eq(nmi_wire_classify(b, 72), NMI_WIRE_KIND_PINGWAVE);
    b[0] = 0x52;
    b[1] = 0x54;
    cr_assert_eq(nmi_wire_classify(b, 72), NMI_WIRE_KIND_PINGWAVE);
    cr_assert_eq(nmi_wire_classify(b, 102), NMI_WIRE_KIND_ROUTED);
    cr_assert_eq(nmi_wire_classify(b, 14), NMI_WIRE_KIND_ROUTED);
    b[0] = 0x45;
    b[1] = 0x4E;
    cr_assert_eq(nmi_wire_classify(b, 72), NMI_WIRE_KIND_DIRECT);
    cr_assert_eq(nmi_wire_classify(b, 84), NMI_WIRE_KIND_DIRECT);
    cr_assert_eq(nmi_wire_classify(b, 2), NMI_WIRE_KIND_DIRECT);
    b[0] = 0x48;
    b[1] = 0x52;
    cr_assert_eq(nmi_wire_classify(b, 60), NMI_WIRE_KIND_ROUTE_HOP);
    b[0] = 0x50;
    b[1] = 0x48;
    cr_assert_eq(nmi_wire_classify(b, 14), NMI_WIRE_KIND_KEEPALIVE);
    cr_assert_eq(nmi_wire_classify(b, 15), NMI_WIRE_KIND_UNKNOWN);
    cr_assert_eq(nmi_wire_classify(b, 13), NMI_WIRE_KIND_UNKNOWN);
    b[1] = 0x49;
    cr_assert_eq(nmi_wire_classify(b, 14), NMI_WIRE_KIND_UNKNOWN);

    /* Every vector classifies as its kind. */
    uint8_t v[512];
    size_t n;
    n = vec("sealed_packet", v, sizeof(v));
    cr_assert_eq(nmi_wire_classify(v, n), NMI_WIRE_KIND_DIRECT);
    n = vec("heartbeat", v, sizeof(v));
    cr_assert_eq(nmi_wire_classify(v, n), NMI_WIRE_KIND_DIRECT);
    n = vec("handshake_routed", v, sizeof(v));
    cr_assert_eq(nmi_wire_classify(v, n), NMI_WIRE_KIND_ROUTED);
    n = vec("route_hop", v, sizeof(v));
    cr_assert_eq(nmi_wire_classify(v, n), NMI_WIRE_KIND_ROUTE_HOP);
    n = vec("pingwave", v, sizeof(v));
    cr_assert_eq(nmi_wire_classify(v, n), NMI_WIRE_KIND_PINGWAVE);
    n = vec("keepalive", v, sizeof(v));
    cr_assert_eq(nmi_wire_classify(v, n), NMI_WIRE_KIND_KEEPALIVE);

    cr_assert_str_eq(nmi_wire_kind_name(NMI_WIRE_KIND_ROUTE_HOP), "route-hop");
    cr_assert_str_eq(nmi_wire_kind_name((nmi_wire_kind)99), "unknown");
}

/* ---------------------------------------------------------------- ids */

Test(wire_header, ids)
{
    const char *name = "sensors/lidar";
    size_t len = strlen(name);
    uint64_t x = XXH3_64bits(name, len);
    cr_assert_eq(nmi_wire_stream_id_from_key(name, len), x);
    cr_assert_eq(nmi_wire_channel_stream_id(name, len), (1ull << 48) | x);
    cr_assert_eq(nmi_wire_channel_hash16(name, len), (uint16_t)x);
    /* xxh3_64 of the empty input (reference value). */
    cr_assert_eq(nmi_wire_stream_id_from_key(NULL, 0), 0x2D06800538D394C2ull);
    cr_assert_eq(nmi_wire_routing_id(0x1122334455667788ull), 0x55667788u);
    cr_assert_eq(NMI_WIRE_CONTROL_STREAM_ID, UINT64_MAX);
    cr_assert_str_eq(nmi_wire_subprotocol_name(0x0A00), "membership");
    cr_assert_str_eq(nmi_wire_subprotocol_name(0x0B03), "stream-ack-ranges");
    cr_assert_str_eq(nmi_wire_subprotocol_name(0x0C01), "route-withdraw");
    cr_assert_str_eq(nmi_wire_subprotocol_name(0x2200), "vendor");
    cr_assert_str_eq(nmi_wire_subprotocol_name(0xF123), "experimental");
    cr_assert_str_eq(nmi_wire_subprotocol_name(0x0123), "unknown");
}
