/*
 * tests/unit/test_wire_membership.c - channel membership messages
 * (subprotocol 0x0A00): Subscribe (token chain, queue group), Unsubscribe,
 * Ack; every form upstream accepts and every malformation it rejects.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>
#include <netmesh/token.h>

#include "core/core.h"
#include "wire/membership.h"
#include "wire_vectors.h"

static void
check_vector(const char *name, const nmi_wire_membership *m)
{
    uint8_t want[512], got[512];
    size_t wlen = vec(name, want, sizeof(want)), w = 0;
    cr_assert_eq(nmi_wire_membership_len(m), wlen, "%s", name);
    cr_assert_eq(nmi_wire_membership_encode(m, got, sizeof(got), &w), NM_OK,
                 "%s: %s", name, nm_errdetail());
    cr_assert_eq(w, wlen);
    cr_assert_arr_eq(got, want, wlen, "%s", name);
    nmi_wire_membership d;
    cr_assert_eq(nmi_wire_membership_decode(want, wlen, &d), NM_OK, "%s: %s",
                 name, nm_errdetail());
    cr_assert_eq(d.type, m->type);
    cr_assert_eq(d.nonce, m->nonce);
    cr_assert_eq(d.channel_len, m->channel_len);
    if (m->channel_len) {
        cr_assert_arr_eq(d.channel, m->channel, m->channel_len);
    }
    cr_assert_eq(d.token_len, m->token_len);
    cr_assert_eq(d.queue_group_len, m->queue_group_len);
    if (m->queue_group_len) {
        cr_assert_arr_eq(d.queue_group, m->queue_group, m->queue_group_len);
    }
    cr_assert_eq(d.accepted, m->accepted);
    cr_assert_eq(d.reason, m->reason);
    /* Every proper prefix is refused, except a Subscribe that stops
     * after the name or after the token (upstream's legacy forms). */
    for (size_t n = 0; n < wlen; n++) {
        int rc = nmi_wire_membership_decode(want, n, &d);
        bool legacy = m->type == NMI_WIRE_MEMB_SUBSCRIBE &&
                      (n == 10 + m->channel_len ||
                       n == 12 + m->channel_len + m->token_len);
        cr_assert_eq(rc, legacy ? NM_OK : NM_EDECODE, "%s len %zu", name, n);
    }
    /* A trailing byte is refused (for a Subscribe without a queue group
     * the byte reads as a queue-group length that overruns). */
    want[wlen] = 0x01;
    cr_assert_eq(nmi_wire_membership_decode(want, wlen + 1, &d), NM_EDECODE,
                 "%s + 1", name);
}

Test(wire_membership, known_answers)
{
    nmi_wire_membership m;
    nmi_wire_membership_subscribe(&m, 0xDEADBEEFCAFEF00Dull, "sensors/lidar",
                                  13, NULL, 0, NULL, 0);
    check_vector("subscribe", &m);
    nmi_wire_membership_subscribe(&m, 7, "svc/req", 7, NULL, 0, "workers", 7);
    check_vector("subscribe_queue_group", &m);
    nmi_wire_membership_unsubscribe(&m, 42, "control/estop", 13);
    check_vector("unsubscribe", &m);
    nmi_wire_membership_ack(&m, 99, false, NMI_WIRE_ACK_UNAUTHORIZED);
    check_vector("ack_unauthorized", &m);
}

Test(wire_membership, token_chain)
{
    /* A one-link chain: framing is all the codec checks. */
    static uint8_t chain[1 + NM_TOKEN_BYTES];
    chain[0] = 1;
    for (size_t i = 1; i < sizeof(chain); i++) {
        chain[i] = (uint8_t)(i * 13);
    }
    nm_token_chain parsed;
    cr_assert_eq(nm_token_chain_decode(chain, sizeof(chain), &parsed), NM_OK,
                 "%s", nm_errdetail());

    nmi_wire_membership m, d;
    nmi_wire_membership_subscribe(&m, 5, "lab/x", 5, chain, sizeof(chain),
                                  "pool-a", 6);
    static uint8_t buf[600];
    size_t w;
    cr_assert_eq(nmi_wire_membership_encode(&m, buf, sizeof(buf), &w), NM_OK);
    cr_assert_eq(w, 1 + 8 + 1 + 5 + 2 + sizeof(chain) + 1 + 6);
    cr_assert_eq(buf[15], sizeof(chain) & 0xFF);
    cr_assert_eq(buf[16], sizeof(chain) >> 8);
    cr_assert_eq(nmi_wire_membership_decode(buf, w, &d), NM_OK);
    cr_assert_eq(d.token_len, sizeof(chain));
    cr_assert_eq(d.token, buf + 17);
    nm_token_chain c;
    cr_assert_eq(nmi_wire_membership_token_chain(&d, &c), NM_OK);
    cr_assert_eq(c.count, 1);
    cr_assert_arr_eq(c.links[0].issuer, chain + 1, 32);

    /* A token that is not a chain: decode keeps it (the mesh answers
     * Unauthorized with the nonce), token_chain refuses it, and encode
     * refuses to send it. */
    uint8_t bad[200];
    nmi_wire_membership_subscribe(&m, 5, "lab/x", 5, chain, 100, NULL, 0);
    cr_assert_eq(nmi_wire_membership_encode(&m, bad, sizeof(bad), &w),
                 NM_EINVAL);
    bad[0] = 0;
    nmi_store_le64(bad + 1, 5);
    bad[9] = 5;
    memcpy(bad + 10, "lab/x", 5);
    bad[15] = 3;
    bad[16] = 0;
    memcpy(bad + 17, "\x01\x02\x03", 3);
    cr_assert_eq(nmi_wire_membership_decode(bad, 20, &d), NM_OK);
    cr_assert_eq(d.token_len, 3);
    cr_assert_eq(nmi_wire_membership_token_chain(&d, &c), NM_EDECODE);
    nmi_wire_membership_subscribe(&m, 5, "lab/x", 5, NULL, 0, NULL, 0);
    cr_assert_eq(nmi_wire_membership_token_chain(&m, &c), NM_ENOTFOUND);
}

Test(wire_membership, legacy_and_zero_forms)
{
    nmi_wire_membership d;
    uint8_t b[64];
    b[0] = 0;
    nmi_store_le64(b + 1, 42);
    b[9] = 5;
    memcpy(b + 10, "lab/x", 5);
    /* Stops after the name: no token, broadcast. */
    cr_assert_eq(nmi_wire_membership_decode(b, 15, &d), NM_OK);
    cr_assert_eq(d.token_len, 0);
    cr_assert_eq(d.queue_group_len, 0);
    /* Half a token length. */
    b[15] = 5;
    cr_assert_eq(nmi_wire_membership_decode(b, 16, &d), NM_EDECODE);
    cr_assert(strstr(nm_errdetail(), "token length"));
    /* tlen 0, qlen 0: both absent. */
    b[15] = 0;
    b[16] = 0;
    b[17] = 0;
    cr_assert_eq(nmi_wire_membership_decode(b, 18, &d), NM_OK);
    cr_assert_eq(d.token_len, 0);
    cr_assert_eq(d.queue_group_len, 0);
    /* Token overrun, queue-group overrun. */
    b[15] = 10;
    cr_assert_eq(nmi_wire_membership_decode(b, 18, &d), NM_EDECODE);
    b[15] = 0;
    b[17] = 200;
    memcpy(b + 18, "short", 5);
    cr_assert_eq(nmi_wire_membership_decode(b, 23, &d), NM_EDECODE);
    /* Non-UTF-8 queue group. */
    b[17] = 2;
    b[18] = 0xC3;
    b[19] = 0x28;
    cr_assert_eq(nmi_wire_membership_decode(b, 20, &d), NM_EDECODE);
    b[19] = 0xA9; /* "é" */
    cr_assert_eq(nmi_wire_membership_decode(b, 20, &d), NM_OK);
    cr_assert_eq(d.queue_group_len, 2);
    /* Trailing after the queue group. */
    b[20] = 'x';
    cr_assert_eq(nmi_wire_membership_decode(b, 21, &d), NM_EDECODE);
}

Test(wire_membership, rejects)
{
    nmi_wire_membership d;
    uint8_t b[300] = {0};
    cr_assert_eq(nmi_wire_membership_decode(b, 0, &d), NM_EDECODE);
    b[0] = 3;
    cr_assert_eq(nmi_wire_membership_decode(b, 1, &d), NM_EDECODE);
    b[0] = 0xFF;
    cr_assert_eq(nmi_wire_membership_decode(b, 11, &d), NM_EDECODE);
    /* Empty name and invalid names. */
    b[0] = 1;
    nmi_store_le64(b + 1, 0);
    b[9] = 0;
    cr_assert_eq(nmi_wire_membership_decode(b, 10, &d), NM_EDECODE);
    const char *bad[] = {"a//b", "/a", "a/",     "Abc",
                         "a b",  ".",  "x/../y", "a\x00"};
    for (size_t i = 0; i < NMI_ARRAY_LEN(bad); i++) {
        size_t n = strlen(bad[i]) + (i == 7 ? 1 : 0);
        b[9] = (uint8_t)n;
        memcpy(b + 10, bad[i], n);
        cr_assert_eq(nmi_wire_membership_decode(b, 10 + n, &d), NM_EDECODE,
                     "%s", bad[i]);
        nmi_wire_membership m;
        nmi_wire_membership_unsubscribe(&m, 1, bad[i], n);
        uint8_t o[64];
        cr_assert_eq(nmi_wire_membership_encode(&m, o, sizeof(o), NULL),
                     NM_EINVAL);
    }
    /* 255-byte name is fine. */
    b[9] = 255;
    memset(b + 10, 'a', 255);
    cr_assert_eq(nmi_wire_membership_decode(b, 265, &d), NM_OK);
    cr_assert_eq(d.channel_len, 255);
    /* Ack: accepted must be 0/1, reason 0..5, exactly 11 bytes. */
    b[0] = 2;
    nmi_store_le64(b + 1, 9);
    for (unsigned acc = 0; acc < 256; acc++) {
        b[9] = (uint8_t)acc;
        b[10] = 0;
        cr_assert_eq(nmi_wire_membership_decode(b, 11, &d),
                     acc <= 1 ? NM_OK : NM_EDECODE);
    }
    b[9] = 0;
    for (unsigned r = 0; r < 256; r++) {
        b[10] = (uint8_t)r;
        cr_assert_eq(nmi_wire_membership_decode(b, 11, &d),
                     r <= NMI_WIRE_ACK_REASON_MAX ? NM_OK : NM_EDECODE);
    }
    nmi_wire_membership m;
    nmi_wire_membership_ack(&m, 1, true, 6);
    cr_assert_eq(nmi_wire_membership_encode(&m, b, sizeof(b), NULL),
                 NM_EINVAL);
    nmi_wire_membership_ack(&m, 1, true, 0);
    cr_assert_eq(nmi_wire_membership_encode(&m, b, 10, NULL), NM_ETOOBIG);
    m.type = 9;
    cr_assert_eq(nmi_wire_membership_len(&m), 0);
    cr_assert_eq(nmi_wire_membership_encode(&m, b, sizeof(b), NULL),
                 NM_EINVAL);
    /* Queue group limits on encode. */
    char qg[300];
    memset(qg, 'q', sizeof(qg));
    nmi_wire_membership_subscribe(&m, 1, "a", 1, NULL, 0, qg, 256);
    cr_assert_eq(nmi_wire_membership_encode(&m, b, sizeof(b), NULL),
                 NM_EINVAL);
    nmi_wire_membership_subscribe(&m, 1, "a", 1, NULL, 0, "\xff", 1);
    cr_assert_eq(nmi_wire_membership_encode(&m, b, sizeof(b), NULL),
                 NM_EINVAL);
}

Test(wire_membership, utf8)
{
    struct {
        const char *s;
        size_t n;
        bool ok;
    } c[] = {
        {"", 0, true},
        {"plain", 5, true},
        {"\xc3\xa9", 2, true},
        {"\xe2\x82\xac", 3, true},
        {"\xf0\x9f\x98\x80", 4, true},
        {"\xf4\x8f\xbf\xbf", 4, true},  /* U+10FFFF */
        {"\xf4\x90\x80\x80", 4, false}, /* > U+10FFFF */
        {"\xc0\x80", 2, false},         /* overlong NUL */
        {"\xe0\x80\xaf", 3, false},     /* overlong */
        {"\xed\xa0\x80", 3, false},     /* surrogate */
        {"\x80", 1, false},
        {"\xe2\x82", 2, false},
        {"\xf5\x80\x80\x80", 4, false},
        {"a\x00", 2, true}, /* NUL is valid UTF-8 */
    };
    for (size_t i = 0; i < NMI_ARRAY_LEN(c); i++) {
        cr_assert_eq(nmi_wire_utf8_valid((const uint8_t *)c[i].s, c[i].n),
                     c[i].ok, "case %zu", i);
    }
}
