/*
 * tests/unit/test_wire_frame.c - EventFrame packing (greedy, 8108 bytes,
 * 2027 events, never split) and strict decoding.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "wire/frame.h"

static const uint8_t kat_frame[] = {
    0x05, 0x00, 0x00, 0x00, 'a', 'l', 'p', 'h', 'a', 0x00, 0x00, 0x00, 0x00,
    0x09, 0x00, 0x00, 0x00, 'g', 'a', 'm', 'm', 'a', '-',  'r',  'a',  'y'};

Test(wire_frame, known_answer_three_events)
{
    /* Same bytes as vector frame_3_events of tests/vectors/wire-v1.json. */
    nmi_wire_buf ev[3] = {{(const uint8_t *)"alpha", 5},
                          {NULL, 0},
                          {(const uint8_t *)"gamma-ray", 9}};
    uint8_t out[64];
    size_t w = 0;
    cr_assert_eq(nmi_wire_frame_encode(ev, 3, out, sizeof(out), &w), NM_OK);
    cr_assert_eq(w, sizeof(kat_frame));
    cr_assert_arr_eq(out, kat_frame, w);

    nmi_wire_frame_writer wr;
    nmi_wire_frame_init(&wr, out, sizeof(out));
    cr_assert_eq(nmi_wire_frame_add(&wr, "alpha", 5), NM_OK);
    cr_assert_eq(nmi_wire_frame_add(&wr, NULL, 0), NM_OK);
    cr_assert_eq(nmi_wire_frame_add(&wr, "gamma-ray", 9), NM_OK);
    cr_assert_eq(wr.len, sizeof(kat_frame));
    cr_assert_eq(wr.count, 3);
    cr_assert_arr_eq(out, kat_frame, wr.len);

    nmi_wire_buf got[3];
    cr_assert_eq(
        nmi_wire_frame_decode(kat_frame, sizeof(kat_frame), 3, got, 3), 3);
    cr_assert_eq(got[0].len, 5);
    cr_assert_arr_eq(got[0].ptr, "alpha", 5);
    cr_assert_eq(got[1].len, 0);
    cr_assert_eq(got[2].len, 9);
    cr_assert_eq(got[2].ptr, kat_frame + 17);
    /* Fewer slots than events: returns the count anyway. */
    cr_assert_eq(
        nmi_wire_frame_decode(kat_frame, sizeof(kat_frame), 3, got, 1), 3);
}

Test(wire_frame, decode_rejects_truncation_count_and_trailing)
{
    nmi_wire_frame_iter it;
    nmi_wire_buf ev;
    for (size_t n = 0; n < sizeof(kat_frame); n++) {
        cr_assert_eq(nmi_wire_frame_validate(kat_frame, n, 3), NM_EDECODE,
                     "len %zu", n);
        cr_assert_eq(nmi_wire_frame_iter_init(&it, kat_frame, n, 3),
                     NM_EDECODE);
        cr_assert_not(nmi_wire_frame_next(&it, &ev));
    }
    cr_assert_eq(nmi_wire_frame_validate(kat_frame, sizeof(kat_frame), 3),
                 NM_OK);
    /* Count too small (trailing bytes) or too large (truncated). */
    cr_assert_eq(nmi_wire_frame_validate(kat_frame, sizeof(kat_frame), 2),
                 NM_EDECODE);
    cr_assert(strstr(nm_errdetail(), "trailing"));
    cr_assert_eq(nmi_wire_frame_validate(kat_frame, sizeof(kat_frame), 4),
                 NM_EDECODE);
    cr_assert_eq(nmi_wire_frame_validate(kat_frame, sizeof(kat_frame), 0),
                 NM_EDECODE);
    /* Empty frame. */
    cr_assert_eq(nmi_wire_frame_validate(NULL, 0, 0), NM_OK);
    cr_assert_eq(nmi_wire_frame_validate(kat_frame, 0, 1), NM_EDECODE);
    /* A length that points past the end, including a huge u32. */
    uint8_t bad[8] = {0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4};
    cr_assert_eq(nmi_wire_frame_validate(bad, 8, 1), NM_EDECODE);
    bad[0] = 5;
    bad[1] = bad[2] = bad[3] = 0;
    cr_assert_eq(nmi_wire_frame_validate(bad, 8, 1), NM_EDECODE);
    bad[0] = 4;
    cr_assert_eq(nmi_wire_frame_validate(bad, 8, 1), NM_OK);
    /* Over the limits. */
    static uint8_t big[NMI_WIRE_MAX_PAYLOAD + 4];
    cr_assert_eq(nmi_wire_frame_validate(big, sizeof(big), 1), NM_EDECODE);
    cr_assert_eq(nmi_wire_frame_validate(big, NMI_WIRE_MAX_PAYLOAD, 2027),
                 NM_OK, "2027 empty events fill 8108 bytes");
    cr_assert_eq(nmi_wire_frame_validate(big, NMI_WIRE_MAX_PAYLOAD, 2028),
                 NM_EDECODE);
}

Test(wire_frame, iterator_is_safe_without_validation)
{
    nmi_wire_frame_iter it = {kat_frame, 10, 3};
    nmi_wire_buf ev;
    cr_assert(nmi_wire_frame_next(&it, &ev)); /* "alpha" fits in 10 */
    cr_assert_not(nmi_wire_frame_next(&it, &ev));
}

Test(wire_frame, writer_limits)
{
    static uint8_t buf[NMI_WIRE_MAX_PAYLOAD + 100];
    static uint8_t ev[NMI_WIRE_MAX_PAYLOAD + 100];
    nmi_wire_frame_writer w;

    /* One event of exactly 8104 bytes fills the frame. */
    nmi_wire_frame_init(&w, buf, sizeof(buf));
    cr_assert_eq(w.cap, NMI_WIRE_MAX_PAYLOAD);
    cr_assert_eq(nmi_wire_frame_add(&w, ev, NMI_WIRE_FRAME_MAX_EVENT), NM_OK);
    cr_assert_eq(w.len, NMI_WIRE_MAX_PAYLOAD);
    cr_assert_eq(nmi_wire_frame_add(&w, NULL, 0), NM_EAGAIN);
    /* 8105 never fits. */
    nmi_wire_frame_init(&w, buf, sizeof(buf));
    cr_assert_eq(nmi_wire_frame_add(&w, ev, NMI_WIRE_FRAME_MAX_EVENT + 1),
                 NM_ETOOBIG);
    cr_assert_eq(w.len, 0);
    /* A small writer: an event larger than its capacity is ETOOBIG. */
    nmi_wire_frame_init(&w, buf, 10);
    cr_assert_eq(nmi_wire_frame_add(&w, ev, 7), NM_ETOOBIG);
    cr_assert_eq(nmi_wire_frame_add(&w, ev, 6), NM_OK);
    cr_assert_eq(nmi_wire_frame_add(&w, ev, 0), NM_EAGAIN);
    nmi_wire_frame_init(&w, buf, 3);
    cr_assert_eq(nmi_wire_frame_add(&w, NULL, 0), NM_ETOOBIG);

    /* 2027 empty events, then the event limit. */
    nmi_wire_frame_init(&w, buf, sizeof(buf));
    for (int i = 0; i < NMI_WIRE_MAX_EVENTS; i++) {
        cr_assert_eq(nmi_wire_frame_add(&w, NULL, 0), NM_OK);
    }
    cr_assert_eq(w.len, NMI_WIRE_MAX_PAYLOAD);
    cr_assert_eq(nmi_wire_frame_add(&w, NULL, 0), NM_EAGAIN);
    cr_assert_eq(nmi_wire_frame_validate(buf, w.len, w.count), NM_OK);
}

Test(wire_frame, greedy_pack_never_splits)
{
    static uint8_t buf[NMI_WIRE_MAX_PAYLOAD];
    static uint8_t data[1000];
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)(i * 7);
    }
    /* 64-byte events: 8108 / 68 = 119 fit (8092 bytes), the 120th not. */
    nmi_wire_buf ev[200];
    for (int i = 0; i < 200; i++) {
        ev[i].ptr = data + i;
        ev[i].len = 64;
    }
    size_t bytes = 0;
    cr_assert_eq(nmi_wire_frame_fit(ev, 200, NMI_WIRE_MAX_PAYLOAD, &bytes),
                 119);
    cr_assert_eq(bytes, 119 * 68);
    nmi_wire_frame_writer w;
    nmi_wire_frame_init(&w, buf, sizeof(buf));
    cr_assert_eq(nmi_wire_frame_pack(&w, ev, 200), 119);
    cr_assert_eq(w.len, 119 * 68);
    cr_assert_eq(w.count, 119);
    nmi_wire_frame_iter it;
    cr_assert_eq(nmi_wire_frame_iter_init(&it, buf, w.len, w.count), NM_OK);
    nmi_wire_buf e;
    int k = 0;
    while (nmi_wire_frame_next(&it, &e)) {
        cr_assert_eq(e.len, 64);
        cr_assert_arr_eq(e.ptr, data + k, 64);
        k++;
    }
    cr_assert_eq(k, 119);

    /* In order: a big event blocks smaller later ones (no reordering). */
    nmi_wire_buf mix[3] = {{data, 100}, {data, 900}, {data, 1}};
    nmi_wire_frame_init(&w, buf, 1000);
    cr_assert_eq(nmi_wire_frame_pack(&w, mix, 3), 1);
    cr_assert_eq(nmi_wire_frame_fit(mix, 3, 1000, NULL), 1);
    cr_assert_eq(nmi_wire_frame_fit(mix, 3, 1012, NULL), 2);
    cr_assert_eq(nmi_wire_frame_fit(mix, 3, 1013, NULL), 3);

    /* 2027 empty events fit; 2028 do not. */
    static nmi_wire_buf empty[2100];
    cr_assert_eq(nmi_wire_frame_fit(empty, 2100, 1 << 20, &bytes),
                 NMI_WIRE_MAX_EVENTS);
    cr_assert_eq(bytes, NMI_WIRE_MAX_PAYLOAD);
    cr_assert_eq(nmi_wire_frame_encode(empty, 2028, buf, sizeof(buf), NULL),
                 NM_ETOOBIG);
    cr_assert_eq(nmi_wire_frame_encode(empty, 2027, buf, sizeof(buf), NULL),
                 NM_OK);
    /* All-or-nothing encode into a too-small buffer. */
    cr_assert_eq(nmi_wire_frame_encode(mix, 3, buf, 1012, NULL), NM_ETOOBIG);
    cr_assert_eq(nmi_wire_frame_encode(mix, 3, buf, 1013, NULL), NM_OK);
}

Test(wire_frame, random_round_trips)
{
    static uint8_t buf[NMI_WIRE_MAX_PAYLOAD];
    static uint8_t data[NMI_WIRE_MAX_PAYLOAD];
    srand(12345);
    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t)rand();
    }
    for (int round = 0; round < 300; round++) {
        nmi_wire_buf ev[64];
        size_t n = (size_t)(rand() % 64);
        for (size_t i = 0; i < n; i++) {
            size_t len = (size_t)(rand() % (round % 3 == 0 ? 2000 : 80));
            size_t off = (size_t)rand() % (sizeof(data) - len);
            ev[i].ptr = data + off;
            ev[i].len = len;
        }
        nmi_wire_frame_writer w;
        nmi_wire_frame_init(&w, buf, sizeof(buf));
        size_t fit = nmi_wire_frame_fit(ev, n, sizeof(buf), NULL);
        cr_assert_eq(nmi_wire_frame_pack(&w, ev, n), fit);
        if (fit < n) {
            cr_assert_not(nmi_wire_frame_fits(&w, ev[fit].len));
        }
        nmi_wire_buf got[64];
        cr_assert_eq(nmi_wire_frame_decode(buf, w.len, w.count, got, 64),
                     (int)fit);
        for (size_t i = 0; i < fit; i++) {
            cr_assert_eq(got[i].len, ev[i].len);
            cr_assert_arr_eq(got[i].ptr, ev[i].ptr, ev[i].len);
        }
    }
}
