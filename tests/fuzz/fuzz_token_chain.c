/*
 * tests/fuzz/fuzz_token_chain.c - libFuzzer target for the token-chain
 * decoder (`u8 count || count x 169`, 1..8 links). A decoded chain must
 * re-encode to exactly the input; chain verification against the chain's
 * own root issuer (so the anchor check passes and the link checks run)
 * must return a defined code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nm_token_chain c;
    int rc = nm_token_chain_decode(data, size, &c);
    if (rc != NM_OK) {
        if (rc != NM_EDECODE) {
            abort();
        }
        return 0;
    }
    if (c.count == 0 || c.count > NM_TOKEN_CHAIN_MAX ||
        size != nm_token_chain_encoded_len(&c)) {
        abort();
    }
    uint8_t again[NM_TOKEN_CHAIN_MAX_BYTES];
    size_t w = 0;
    if (nm_token_chain_encode(&c, again, sizeof(again), &w) != NM_OK ||
        w != size || memcmp(again, data, size) != 0) {
        abort(); /* decode -> encode must round-trip */
    }
    const nm_token *leaf = &c.links[c.count - 1];
    nm_token_verify_opts o;
    nm_token_verify_opts_init(&o);
    o.now = leaf->not_before + (data[size - 1] & 7);
    o.subject = leaf->subject;
    o.scope = leaf->scope & 0x1F;
    o.check_channel = (data[size - 1] & 8) != 0;
    o.channel_hash = leaf->channel_hash;
    rc = nm_token_chain_verify(&c, c.links[0].issuer, 1, &o);
    if (rc != NM_OK && rc != NM_ECRYPTO && rc != NM_EEXPIRED &&
        rc != NM_EUNAUTHORIZED) {
        abort();
    }
    return 0;
}
