/*
 * tests/fuzz/fuzz_wire_control.c - libFuzzer target for the stream control
 * messages (StreamWindow, StreamNack, StreamReset, StreamAckRanges) and
 * RouteWithdrawal. The first byte picks the decoder (low 3 bits); every
 * accepted message must re-encode to exactly the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "wire/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    uint8_t out[NMI_WIRE_ACK_RANGES_MAX_LEN];
    size_t w = 0;
    int rc;
    switch (data[0] % 5) {
    case 0: {
        nmi_wire_stream_window m;
        rc = nmi_wire_stream_window_decode(p, n, &m);
        if (rc == NM_OK) {
            nmi_wire_stream_window_encode(&m, out);
            w = NMI_WIRE_STREAM_WINDOW_LEN;
        }
        break;
    }
    case 1: {
        nmi_wire_stream_nack m;
        rc = nmi_wire_stream_nack_decode(p, n, &m);
        if (rc == NM_OK) {
            nmi_wire_stream_nack_encode(&m, out);
            w = NMI_WIRE_STREAM_NACK_LEN;
            uint64_t miss[65];
            size_t k = nmi_wire_stream_nack_missing(&m, miss);
            if (k < 1 || k > 65 || miss[0] != m.next_expected) {
                abort();
            }
            for (size_t i = 1; i < k; i++) {
                if (miss[i] <= miss[i - 1]) {
                    abort();
                }
            }
        }
        break;
    }
    case 2: {
        nmi_wire_stream_reset m;
        rc = nmi_wire_stream_reset_decode(p, n, &m);
        if (rc == NM_OK) {
            nmi_wire_stream_reset_encode(&m, out);
            w = NMI_WIRE_STREAM_RESET_LEN;
        }
        break;
    }
    case 3: {
        nmi_wire_ack_ranges m;
        rc = nmi_wire_ack_ranges_decode(p, n, &m);
        if (rc == NM_OK) {
            if (m.count < 1 || m.count > NMI_WIRE_ACK_RANGES_MAX) {
                abort();
            }
            for (size_t i = 0; i < m.count; i++) {
                if (m.ranges[i].start >= m.ranges[i].end ||
                    m.ranges[i].start <= m.ack_seq ||
                    (i && m.ranges[i].end >= m.ranges[i - 1].start)) {
                    abort();
                }
            }
            if (nmi_wire_ack_ranges_encode(&m, out, sizeof(out), &w) !=
                NM_OK) {
                abort();
            }
        }
        break;
    }
    default: {
        nmi_wire_route_withdraw m;
        rc = nmi_wire_route_withdraw_decode(p, n, &m);
        if (rc == NM_OK) {
            nmi_wire_route_withdraw_encode(&m, out);
            w = NMI_WIRE_ROUTE_WITHDRAW_LEN;
        }
        break;
    }
    }
    if (rc != NM_OK) {
        if (rc != NM_EDECODE) {
            abort();
        }
        return 0;
    }
    if (w != n || memcmp(out, p, n) != 0) {
        abort(); /* decode -> encode must round-trip */
    }
    return 0;
}
