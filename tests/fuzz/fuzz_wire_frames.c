/*
 * tests/fuzz/fuzz_wire_frames.c - libFuzzer target for EventFrame
 * decoding. Input: u16 event_count LE ‖ payload. Invariants: validate,
 * iterate and decode agree; a valid frame re-encodes to the same bytes;
 * the greedy packer never reports more events than fit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "wire/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    uint32_t count = data[0] | (data[1] << 8);
    const uint8_t *p = data + 2;
    size_t len = size - 2;
    int rc = nmi_wire_frame_validate(p, len, count);
    if (rc != NM_OK && rc != NM_EDECODE) {
        abort();
    }
    static nmi_wire_buf ev[NMI_WIRE_MAX_EVENTS];
    int n = nmi_wire_frame_decode(p, len, count, ev, NMI_WIRE_MAX_EVENTS);
    if ((rc == NM_OK) != (n >= 0) || (n >= 0 && (uint32_t)n != count)) {
        abort();
    }
    nmi_wire_frame_iter it;
    int irc = nmi_wire_frame_iter_init(&it, p, len, count);
    if (irc != rc) {
        abort();
    }
    nmi_wire_buf e;
    uint32_t k = 0;
    while (nmi_wire_frame_next(&it, &e)) {
        if (e.ptr < p || e.ptr + e.len > p + len || e.len != ev[k].len ||
            e.ptr != ev[k].ptr) {
            abort();
        }
        k++;
    }
    if (rc != NM_OK) {
        return 0;
    }
    if (k != count) {
        abort();
    }
    static uint8_t out[NMI_WIRE_MAX_PAYLOAD];
    size_t w;
    if (nmi_wire_frame_encode(ev, count, out, sizeof(out), &w) != NM_OK ||
        w != len || (len && memcmp(out, p, len) != 0)) {
        abort(); /* decode -> encode must round-trip */
    }
    /* Greedy packing into a budget taken from the input. */
    size_t budget = len / 2, bytes;
    size_t fit = nmi_wire_frame_fit(ev, count, budget, &bytes);
    nmi_wire_frame_writer wr;
    nmi_wire_frame_init(&wr, out, budget);
    if (nmi_wire_frame_pack(&wr, ev, count) != fit || wr.len != bytes ||
        bytes > budget ||
        (fit < count && nmi_wire_frame_fits(&wr, ev[fit].len))) {
        abort();
    }
    if (nmi_wire_frame_validate(out, wr.len, wr.count) != NM_OK) {
        abort();
    }
    return 0;
}
