/*
 * tests/fuzz/fuzz_handshake.c - arbitrary bytes as Noise handshake
 * messages and as session packets; nothing may crash, and nothing forged
 * may be accepted.
 *
 * Each input is fed
 *   1. as msg1 to a fresh Net NKpsk0 responder,
 *   2. as msg2 to an initiator that already sent msg1,
 *   3. as msg2 of XX (tokens e, ee, s, es) and msg1 of IK (e, es, s, ss),
 *      so the 's' token decoding is exercised too,
 *   4. as the payload of a genuine msg1 (must round-trip),
 *   5. as a session packet: counter u64 LE ‖ ciphertext ‖ tag.
 * The states are built once and copied per input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "crypto/noise.h"
#include "crypto/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ready;
static uint8_t psk[32], spub[32], spriv[32], ipriv[32];
static nmi_noise_hs resp0;    /* NKpsk0 responder before msg1 */
static nmi_noise_hs init1;    /* NKpsk0 initiator after msg1 */
static nmi_noise_hs xx_init1; /* XX initiator after msg1 */
static nmi_noise_hs ik_resp0; /* IK responder before msg1 */
static nmi_session sess;      /* a session to open packets with */
static uint8_t payload[NMI_NOISE_MAX_MSG];
static uint8_t msg[NMI_NOISE_MAX_MSG];

static void
fill(uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)(v + 7 * i);
    }
}

static void
setup(void)
{
    nmi_noise_config c = {0};
    uint8_t m[128], e[32], h[32];
    size_t n;

    fill(psk, 32, 1);
    fill(spriv, 32, 2);
    fill(ipriv, 32, 3);
    fill(e, 32, 4);
    if (nmi_noise_pubkey(spub, spriv) != NM_OK ||
        nmi_net_hs_responder(&resp0, psk, spriv, 1, 2) != NM_OK ||
        nmi_net_hs_initiator(&init1, psk, spub, 1, 2) != NM_OK) {
        abort();
    }
    init1.fixed_e = true;
    memcpy(init1.e_priv, e, 32);
    if (nmi_noise_write_message(&init1, NULL, 0, m, sizeof(m), &n) != NM_OK) {
        abort();
    }

    c.pattern = NMI_NOISE_XX;
    c.initiator = true;
    c.s = ipriv;
    c.fixed_e = e;
    if (nmi_noise_init(&xx_init1, &c) != NM_OK ||
        nmi_noise_write_message(&xx_init1, NULL, 0, m, sizeof(m), &n) !=
            NM_OK) {
        abort();
    }

    memset(&c, 0, sizeof(c));
    c.pattern = NMI_NOISE_IK;
    c.initiator = false;
    c.s = spriv;
    if (nmi_noise_init(&ik_resp0, &c) != NM_OK) {
        abort();
    }

    fill(h, 32, 5);
    if (nmi_session_init(&sess, h, false) != NM_OK) {
        abort();
    }
    ready = true;
}

static void
must_fail(nmi_noise_hs *hs, const uint8_t *d, size_t n)
{
    size_t plen = 0;
    int rc = nmi_noise_read_message(hs, d, n, payload, sizeof(payload), &plen);

    /* Forging a message without the keys must not succeed. */
    if (rc == NM_OK || (rc != NM_ECRYPTO && rc != NM_EDECODE)) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nmi_noise_hs hs;
    size_t n = 0, plen = 0;

    if (!ready) {
        setup();
    }

    hs = resp0;
    must_fail(&hs, data, size);
    hs = init1;
    must_fail(&hs, data, size);
    hs = xx_init1;
    must_fail(&hs, data, size);
    hs = ik_resp0;
    must_fail(&hs, data, size);

    /* A genuine msg1 carrying the input as payload round-trips. */
    if (size <= NMI_NOISE_MAX_MSG - NMI_NET_MSG1_DIRECT_LEN) {
        nmi_noise_hs ini, res = resp0;
        uint8_t e[32];
        if (nmi_net_hs_initiator(&ini, psk, spub, 1, 2) != NM_OK) {
            abort();
        }
        fill(e, 32, 9);
        ini.fixed_e = true;
        memcpy(ini.e_priv, e, 32);
        if (nmi_noise_write_message(&ini, data, size, msg, sizeof(msg), &n) !=
                NM_OK ||
            n != size + NMI_NET_MSG1_DIRECT_LEN ||
            nmi_noise_read_message(&res, msg, n, payload, sizeof(payload),
                                   &plen) != NM_OK ||
            plen != size || (size > 0 && memcmp(payload, data, size) != 0)) {
            abort();
        }
        nmi_noise_wipe(&ini);
        nmi_noise_wipe(&res);
    }

    /* A session packet. */
    if (size >= 8) {
        nmi_session s = sess;
        int rc = nmi_session_open(&s, nmi_load_le64(data), data, 8, data + 8,
                                  size - 8, payload);
        if (rc == NM_OK) {
            abort();
        }
    }
    return 0;
}
