/*
 * tests/fuzz/fuzz_token.c - libFuzzer target for the 169-byte permission
 * token decoder. Any input must be rejected cleanly or decode; a decoded
 * token must re-encode to exactly the input bytes, and verifying it must
 * return a defined code (never crash).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nm_token t;
    int rc = nm_token_decode(data, size, &t);
    if (rc != NM_OK) {
        if (rc != NM_EDECODE || size == NM_TOKEN_BYTES) {
            abort();
        }
        return 0;
    }
    if (size != NM_TOKEN_BYTES) {
        abort();
    }
    uint8_t again[NM_TOKEN_BYTES];
    if (nm_token_encode(&t, again) != NM_OK ||
        memcmp(again, data, NM_TOKEN_BYTES) != 0) {
        abort(); /* decode -> encode must round-trip */
    }
    /* Exercise the checks. Random bytes almost never carry a valid
     * signature; the window/scope/channel logic runs on the rest. */
    nm_token_verify_opts o;
    nm_token_verify_opts_init(&o);
    o.now = t.nonce;
    o.skew_secs = data[0] % (NM_TOKEN_SKEW_MAX_SECS + 1);
    o.scope = t.scope & 0x1F;
    o.check_channel = (data[1] & 1) != 0;
    o.channel_hash = t.channel_hash ^ (data[2] & 1);
    o.subject = (data[3] & 1) ? t.subject : t.issuer;
    rc = nm_token_verify(&t, &o);
    if (rc != NM_OK && rc != NM_ECRYPTO && rc != NM_EEXPIRED &&
        rc != NM_EUNAUTHORIZED) {
        abort();
    }
    (void)nm_token_authorizes(&t, t.scope, t.channel_hash);
    return 0;
}
