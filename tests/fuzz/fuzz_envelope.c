/*
 * tests/fuzz/fuzz_envelope.c - arbitrary bytes as a sealed identity
 * envelope (nothing may crash; nothing forged may open), and the first 96
 * bytes as (seed, target public key, chain link) for seal -> open, which
 * must round-trip unless the target key is a low-order point.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "crypto/envelope.h"
#include "crypto/noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ready;
static uint8_t tpriv[32], tpub[32], link[32];
static uint8_t genuine[NMI_ENVELOPE_SIZE];

static void
setup(void)
{
    uint8_t seed[32];

    for (int i = 0; i < 32; i++) {
        tpriv[i] = (uint8_t)(0x40 + i);
        link[i] = (uint8_t)(3 * i);
        seed[i] = (uint8_t)i;
    }
    if (nmi_noise_pubkey(tpub, tpriv) != NM_OK ||
        nmi_envelope_seal(genuine, seed, tpub, link) != NM_OK) {
        abort();
    }
    ready = true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t seed[32], back[32], signer[32];
    int rc;

    if (!ready) {
        setup();
    }

    rc = nmi_envelope_open(seed, data, size, tpriv, link, NULL);
    if (rc == NM_OK) {
        /* Only the genuine envelope may open. */
        if (size != sizeof(genuine) || memcmp(data, genuine, size) != 0) {
            abort();
        }
    } else if (rc != NM_EDECODE && rc != NM_ECRYPTO) {
        abort();
    }
    rc = nmi_envelope_signer(data, size, signer);
    if (rc != NM_OK && rc != NM_EDECODE) {
        abort();
    }
    if (size == NMI_ENVELOPE_SIZE) {
        /* The same bytes with the right version and an expected signer. */
        uint8_t env[NMI_ENVELOPE_SIZE];
        memcpy(env, data, size);
        env[0] = NMI_ENVELOPE_VERSION;
        rc = nmi_envelope_open(seed, env, size, tpriv, link, signer);
        if (rc == NM_OK && memcmp(env, genuine, size) != 0) {
            abort();
        }
    }

    if (size >= 96) {
        uint8_t env[NMI_ENVELOPE_SIZE], pub[32], priv[32];
        /* Seal to the fuzzed public key: fails only on low-order points. */
        rc = nmi_envelope_seal(env, data, data + 32, data + 64);
        if (rc != NM_OK && rc != NM_ECRYPTO) {
            abort();
        }
        /* Seal to a key whose private half we hold: must round-trip. */
        memcpy(priv, data + 32, 32);
        if (nmi_noise_pubkey(pub, priv) != NM_OK ||
            nmi_envelope_seal(env, data, pub, data + 64) != NM_OK ||
            nmi_envelope_open(back, env, sizeof(env), priv, data + 64, NULL) !=
                NM_OK ||
            memcmp(back, data, 32) != 0) {
            abort();
        }
    }
    return 0;
}
