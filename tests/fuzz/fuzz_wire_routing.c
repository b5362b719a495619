/*
 * tests/fuzz/fuzz_wire_routing.c - libFuzzer target for the routing
 * header, the relay forward step, routed handshakes and the route-hop
 * envelope. Invariants: decode -> encode reproduces the header (flags
 * masked); forward changes only bytes 2..4 and never grows TTL; a forged
 * envelope never opens, and re-sealing an opened one reproduces it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[32] = {0x11, 0x22, 0x33};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nmi_wire_route r;
    int rc = nmi_wire_route_decode(data, size, &r);
    if (rc == NM_OK) {
        uint8_t again[NMI_WIRE_ROUTE_LEN];
        if (nmi_wire_route_encode(&r, again) != NM_OK ||
            memcmp(again, data, 4) != 0 || again[4] != (data[4] & 0x0F) ||
            memcmp(again + 5, data + 5, 13) != 0) {
            abort();
        }
        uint8_t buf[NMI_WIRE_ROUTE_LEN];
        memcpy(buf, data, sizeof(buf));
        nmi_wire_route o;
        rc = nmi_wire_route_forward(buf, sizeof(buf), &o);
        if (r.ttl == 0) {
            if (rc != NM_EPROTO || memcmp(buf, data, sizeof(buf)) != 0) {
                abort();
            }
        } else if (rc != NM_OK || o.ttl != r.ttl - 1 ||
                   o.hop_count < r.hop_count ||
                   memcmp(buf + 5, data + 5, 13) != 0 ||
                   memcmp(buf, data, 2) != 0) {
            abort();
        }
        const uint8_t *noise;
        size_t nlen;
        rc = nmi_wire_routed_handshake_decode(data, size, &r, &noise, &nlen);
        if (rc != NM_OK && rc != NM_EDECODE) {
            abort();
        }
    } else if (rc != NM_EDECODE) {
        abort();
    }

    uint64_t sid;
    rc = nmi_wire_hop_peek_session(data, size, &sid);
    if (rc != NM_OK && rc != NM_EDECODE) {
        abort();
    }
    nmi_wire_hop hop;
    rc = nmi_wire_hop_open(key, data, size, &hop);
    if (rc == NM_OK) {
        abort(); /* the fuzzer cannot forge a keyed BLAKE2s tag */
    }
    if (rc != NM_EDECODE && rc != NM_ECRYPTO) {
        abort();
    }
    /* Seal the input as an inner packet and open it again. */
    if (size <= NMI_WIRE_MAX_PACKET) {
        static uint8_t env[NMI_WIRE_MAX_PACKET + NMI_WIRE_HOP_OVERHEAD];
        nmi_wire_route rt;
        nmi_wire_route_init(&rt, size, (uint32_t)size * 3, (uint8_t)size);
        size_t w;
        if (nmi_wire_hop_seal(key, 7, size, &rt, data, size, env, sizeof(env),
                              &w) != NM_OK ||
            w != size + NMI_WIRE_HOP_OVERHEAD ||
            (nmi_wire_classify(env, w) != NMI_WIRE_KIND_ROUTE_HOP &&
             w != NMI_WIRE_PINGWAVE_LEN)) {
            abort();
        }
        if (nmi_wire_hop_open(key, env, w, &hop) != NM_OK ||
            hop.inner_len != size || hop.hop_seq != size ||
            (size && memcmp(hop.inner, data, size) != 0)) {
            abort();
        }
    }
    /* Replay window: admitting the same sequence twice never succeeds. */
    nmi_wire_hop_replay win;
    nmi_wire_hop_replay_init(&win);
    for (size_t i = 0; i + 2 <= size && i < 256; i += 2) {
        uint64_t s = data[i] | (data[i + 1] << 8);
        if (nmi_wire_hop_replay_admit(&win, s) &&
            nmi_wire_hop_replay_admit(&win, s)) {
            abort();
        }
    }
    return 0;
}
