/*
 * tests/fuzz/fuzz_wire_pingwave.c - libFuzzer target for the pingwave
 * (72 B) and NAT keep-alive (14 B) decoders. Invariants: a decoded
 * datagram re-encodes to the input (the gpu byte normalized to 0/1).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "wire/pingwave.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nmi_wire_pingwave pw;
    int rc = nmi_wire_pingwave_decode(data, size, &pw);
    if (rc == NM_OK) {
        uint8_t again[NMI_WIRE_PINGWAVE_LEN];
        if (size != 72 || nmi_wire_pingwave_encode(&pw, again) != NM_OK ||
            memcmp(again, data, 64) != 0 || again[64] != (data[64] != 0) ||
            memcmp(again + 65, data + 65, 7) != 0) {
            abort();
        }
        uint8_t ttl = pw.ttl, hops = pw.hop_count;
        bool fwd = nmi_wire_pingwave_forward(&pw);
        if (fwd != (ttl != 0) || (fwd && pw.ttl != ttl - 1) ||
            pw.hop_count < hops) {
            abort();
        }
    } else if (rc != NM_EDECODE || (size == 72 && data[63] <= 3)) {
        abort();
    }
    nmi_wire_keepalive ka;
    rc = nmi_wire_keepalive_decode(data, size, &ka);
    if (rc == NM_OK) {
        uint8_t again[NMI_WIRE_KEEPALIVE_LEN];
        nmi_wire_keepalive_encode(&ka, again);
        if (size != 14 || memcmp(again, data, 14) != 0) {
            abort();
        }
    } else if (rc != NM_EDECODE) {
        abort();
    }
    return 0;
}
