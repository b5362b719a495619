/*
 * tests/fuzz/fuzz_wire_membership.c - libFuzzer target for the channel
 * membership decoder (Subscribe / Unsubscribe / Ack). Invariants: borrowed
 * fields lie inside the input; a decoded message whose token is absent or
 * a token chain re-encodes, and that encoding decodes to the same fields;
 * in upstream's canonical encoding it is byte-identical to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>
#include <netmesh/name.h>

#include "wire/membership.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(const nmi_wire_membership *a, const nmi_wire_membership *b)
{
    return a->type == b->type && a->nonce == b->nonce &&
           a->channel_len == b->channel_len &&
           (!a->channel_len ||
            memcmp(a->channel, b->channel, a->channel_len) == 0) &&
           a->token_len == b->token_len &&
           (!a->token_len || memcmp(a->token, b->token, a->token_len) == 0) &&
           a->queue_group_len == b->queue_group_len &&
           (!a->queue_group_len ||
            memcmp(a->queue_group, b->queue_group, a->queue_group_len) == 0) &&
           a->accepted == b->accepted && a->reason == b->reason;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nmi_wire_membership m;
    int rc = nmi_wire_membership_decode(data, size, &m);
    if (rc != NM_OK) {
        if (rc != NM_EDECODE) {
            abort();
        }
        return 0;
    }
    const uint8_t *end = data + size;
    if ((m.channel_len &&
         ((const uint8_t *)m.channel < data ||
          (const uint8_t *)m.channel + m.channel_len > end ||
          nm_channel_name_validate(m.channel, m.channel_len) != NM_OK)) ||
        (m.token_len && (m.token < data || m.token + m.token_len > end)) ||
        (m.queue_group_len &&
         ((const uint8_t *)m.queue_group < data ||
          (const uint8_t *)m.queue_group + m.queue_group_len > end ||
          !nmi_wire_utf8_valid((const uint8_t *)m.queue_group,
                               m.queue_group_len)))) {
        abort();
    }
    nm_token_chain chain;
    rc = nmi_wire_membership_token_chain(&m, &chain);
    if (rc != NM_OK && rc != NM_ENOTFOUND && rc != NM_EDECODE) {
        abort();
    }
    if (rc == NM_EDECODE) {
        return 0; /* not re-encodable: encode refuses non-chain tokens */
    }
    static uint8_t out[70000];
    size_t w;
    if (nmi_wire_membership_encode(&m, out, sizeof(out), &w) != NM_OK ||
        w != nmi_wire_membership_len(&m)) {
        abort();
    }
    nmi_wire_membership d;
    if (nmi_wire_membership_decode(out, w, &d) != NM_OK || !same(&m, &d)) {
        abort();
    }
    /* Upstream's encoder output is canonical: byte-identical. */
    if (w == size && memcmp(out, data, size) != 0) {
        abort();
    }
    return 0;
}
