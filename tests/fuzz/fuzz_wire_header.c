/*
 * tests/fuzz/fuzz_wire_header.c - libFuzzer target for the NetHeader
 * decoder, the packet length rule, the discriminator, handshake and
 * heartbeat framing, and opening a packet with a fixed AEAD session.
 * Invariants: a decoded header re-encodes to the same 68 bytes; the AAD
 * from fields equals the AAD from bytes; decoders return only NM_OK /
 * NM_EDECODE; opening never succeeds on a forged tag.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "crypto/session.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nmi_wire_kind k = nmi_wire_classify(data, size);
    if (k > NMI_WIRE_KIND_KEEPALIVE) {
        abort();
    }
    nmi_wire_header h;
    int rc = nmi_wire_header_decode(data, size, &h);
    if (rc != NM_OK) {
        if (rc != NM_EDECODE) {
            abort();
        }
        /* A refusal must have a reason: short, magic, version, reserved
         * flags, or a length field over its limit. */
        if (size >= NMI_WIRE_HEADER_LEN && data[0] == 0x45 &&
            data[1] == 0x4E && data[2] == 1 && !(data[3] & 0xC0) &&
            (data[64] | data[65] << 8) <= NMI_WIRE_MAX_PAYLOAD &&
            (data[66] | data[67] << 8) <= NMI_WIRE_MAX_EVENTS) {
            abort();
        }
    } else {
        uint8_t again[NMI_WIRE_HEADER_LEN];
        if (nmi_wire_header_encode(&h, again) != NM_OK ||
            memcmp(again, data, NMI_WIRE_HEADER_LEN) != 0) {
            abort(); /* decode -> encode must round-trip */
        }
        uint8_t a1[NMI_WIRE_AAD_LEN], a2[NMI_WIRE_AAD_LEN];
        nmi_wire_aad(&h, a1);
        nmi_wire_aad_from_bytes(data, a2);
        if (memcmp(a1, a2, sizeof(a1)) != 0 || a1[6] != 0) {
            abort();
        }
        if (nmi_wire_header_counter(&h) != nmi_wire_read_counter(data)) {
            abort();
        }
        rc = nmi_wire_packet_check(&h, size);
        size_t want = NMI_WIRE_HEADER_LEN + h.payload_len +
                      ((h.flags & NMI_WIRE_F_HANDSHAKE) ? 0 : 16);
        if ((rc == NM_OK) != (size == want)) {
            abort();
        }
        rc = nmi_wire_heartbeat_check(&h, size);
        if (rc != NM_OK && rc != NM_EDECODE) {
            abort();
        }
        if (rc == NM_OK && (size != 84 || h.payload_len != 0)) {
            abort();
        }
    }
    const uint8_t *noise;
    size_t noise_len;
    rc = nmi_wire_handshake_decode(data, size, &noise, &noise_len);
    if (rc == NM_OK) {
        uint8_t out[NMI_WIRE_HEADER_LEN + NMI_WIRE_MAX_PAYLOAD];
        size_t w;
        if (noise != data + NMI_WIRE_HEADER_LEN ||
            nmi_wire_handshake_encode(noise, noise_len, out, sizeof(out),
                                      &w) != NM_OK ||
            w != size) {
            abort();
        }
    } else if (rc != NM_EDECODE) {
        abort();
    }

    /* Open with a fixed session (a copy: open decrypts in place). */
    if (size <= NMI_WIRE_MAX_PACKET) {
        static nmi_session s;
        static int init;
        if (!init) {
            uint8_t hh[32];
            for (int i = 0; i < 32; i++) {
                hh[i] = (uint8_t)(i * 29 + 1);
            }
            if (nmi_session_init(&s, hh, false) != NM_OK) {
                abort();
            }
            init = 1;
        }
        uint8_t pkt[NMI_WIRE_MAX_PACKET];
        memcpy(pkt, data, size);
        nmi_session t = s;
        uint8_t *pt;
        size_t ptlen;
        /* Make the session id match so the AEAD path runs. */
        if (size >= 32) {
            t.session_id = nmi_load_le64(data + 24);
        }
        rc = nmi_wire_open(&t, pkt, size, &h, &pt, &ptlen);
        if (rc == NM_OK) {
            abort(); /* no forged tag verifies */
        }
        if (rc != NM_EDECODE && rc != NM_EPROTO && rc != NM_ECRYPTO) {
            abort();
        }
    }
    return 0;
}
