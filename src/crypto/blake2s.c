/*
 * src/crypto/blake2s.c - BLAKE2s (RFC 7693), written from the RFC text.
 *
 * Sequential mode only (fanout 1, depth 1, no salt/personalization): the
 * parameter block collapses to h[0] ^= 0x01010000 ^ (keylen << 8) ^ outlen.
 * Keyed mode ("MAC") pads the key to one 64-byte block that is compressed
 * as the first block of the message.
 */
#include "crypto/blake2s.h"

#include <string.h>

#include <sodium.h>

#include "core/core.h"

/* RFC 7693 §2.6: the initialization vector (same as SHA-256's). */
static const uint32_t nmi_b2s_iv[8] = {
    0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
    0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u,
};

/* RFC 7693 §2.7: message word schedule permutations (rounds 0..9). */
static const uint8_t nmi_b2s_sigma[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint32_t
nmi_rotr32(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

/* RFC 7693 §3.1: the mixing function G with BLAKE2s rotations 16/12/8/7. */
#define NMI_B2S_G(a, b, c, d, x, y)                                           \
    do {                                                                      \
        v[a] = v[a] + v[b] + (x);                                             \
        v[d] = nmi_rotr32(v[d] ^ v[a], 16);                                   \
        v[c] = v[c] + v[d];                                                   \
        v[b] = nmi_rotr32(v[b] ^ v[c], 12);                                   \
        v[a] = v[a] + v[b] + (y);                                             \
        v[d] = nmi_rotr32(v[d] ^ v[a], 8);                                    \
        v[c] = v[c] + v[d];                                                   \
        v[b] = nmi_rotr32(v[b] ^ v[c], 7);                                    \
    } while (0)

/* RFC 7693 §3.2: the compression function F. The caller sets the
 * final-block flag f[0] and the byte counter t (which must already include
 * this block's bytes). */
static void
nmi_b2s_compress(nmi_blake2s_state *s, const uint8_t block[64])
{
    uint32_t m[16];
    uint32_t v[16];

    for (int i = 0; i < 16; i++) {
        m[i] = nmi_load_le32(block + 4 * i);
    }
    for (int i = 0; i < 8; i++) {
        v[i] = s->h[i];
        v[i + 8] = nmi_b2s_iv[i];
    }
    v[12] ^= s->t[0];
    v[13] ^= s->t[1];
    v[14] ^= s->f[0];
    v[15] ^= s->f[1];

    /* Rounds are spelled out with constant round numbers so the sigma
     * lookups fold to constant message-word indices. */
#define NMI_B2S_ROUND(r)                                                      \
    do {                                                                      \
        const uint8_t *sg = nmi_b2s_sigma[r];                                 \
        NMI_B2S_G(0, 4, 8, 12, m[sg[0]], m[sg[1]]);                           \
        NMI_B2S_G(1, 5, 9, 13, m[sg[2]], m[sg[3]]);                           \
        NMI_B2S_G(2, 6, 10, 14, m[sg[4]], m[sg[5]]);                          \
        NMI_B2S_G(3, 7, 11, 15, m[sg[6]], m[sg[7]]);                          \
        NMI_B2S_G(0, 5, 10, 15, m[sg[8]], m[sg[9]]);                          \
        NMI_B2S_G(1, 6, 11, 12, m[sg[10]], m[sg[11]]);                        \
        NMI_B2S_G(2, 7, 8, 13, m[sg[12]], m[sg[13]]);                         \
        NMI_B2S_G(3, 4, 9, 14, m[sg[14]], m[sg[15]]);                         \
    } while (0)
    NMI_B2S_ROUND(0);
    NMI_B2S_ROUND(1);
    NMI_B2S_ROUND(2);
    NMI_B2S_ROUND(3);
    NMI_B2S_ROUND(4);
    NMI_B2S_ROUND(5);
    NMI_B2S_ROUND(6);
    NMI_B2S_ROUND(7);
    NMI_B2S_ROUND(8);
    NMI_B2S_ROUND(9);
#undef NMI_B2S_ROUND
    for (int i = 0; i < 8; i++) {
        s->h[i] ^= v[i] ^ v[i + 8];
    }
    /* m and v are not wiped per block: that forces them out of registers
     * and costs about a third of the throughput. final() wipes the state
     * and scrubs the stack region these temporaries used. */
}

/* Best-effort scrub of the stack below the caller: overwrites the frames
 * that nmi_b2s_compress (and update's inlined copies) left behind, which
 * may hold key-derived words. noinline so it runs at the same depth as
 * those frames did. */
__attribute__((noinline)) static void
nmi_b2s_scrub_stack(void)
{
    uint8_t scratch[1024];
    sodium_memzero(scratch, sizeof(scratch));
}

static inline void
nmi_b2s_count(nmi_blake2s_state *s, uint32_t inc)
{
    s->t[0] += inc;
    if (s->t[0] < inc) {
        s->t[1]++;
    }
}

int
nmi_blake2s_init(nmi_blake2s_state *s, size_t outlen, const void *key,
                 size_t keylen)
{
    if (s == NULL || outlen == 0 || outlen > NMI_BLAKE2S_OUTBYTES ||
        keylen > NMI_BLAKE2S_KEYBYTES || (keylen > 0 && key == NULL)) {
        return nmi_err(NM_EINVAL,
                       "blake2s: outlen must be 1..32 and keylen 0..32");
    }
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < 8; i++) {
        s->h[i] = nmi_b2s_iv[i];
    }
    /* Parameter block word 0: digest length, key length, fanout 1,
     * depth 1. */
    s->h[0] ^= 0x01010000u ^ ((uint32_t)keylen << 8) ^ (uint32_t)outlen;
    s->outlen = outlen;
    if (keylen > 0) {
        /* The zero-padded key is the first full block; it is buffered so
         * that final() marks it last when the message is empty. */
        memcpy(s->buf, key, keylen);
        s->buflen = NMI_BLAKE2S_BLOCKBYTES;
    }
    return NM_OK;
}

void
nmi_blake2s_update(nmi_blake2s_state *s, const void *in, size_t inlen)
{
    const uint8_t *p = in;

    if (inlen == 0) {
        return;
    }
    /* Keep at least one (possibly full) block buffered: the last block
     * must be compressed by final() with the final flag set. */
    while (inlen > 0) {
        if (s->buflen == NMI_BLAKE2S_BLOCKBYTES) {
            nmi_b2s_count(s, NMI_BLAKE2S_BLOCKBYTES);
            nmi_b2s_compress(s, s->buf);
            s->buflen = 0;
        }
        if (s->buflen == 0) {
            /* Fast path: compress whole blocks straight from the input
             * while more than one block remains. */
            while (inlen > NMI_BLAKE2S_BLOCKBYTES) {
                nmi_b2s_count(s, NMI_BLAKE2S_BLOCKBYTES);
                nmi_b2s_compress(s, p);
                p += NMI_BLAKE2S_BLOCKBYTES;
                inlen -= NMI_BLAKE2S_BLOCKBYTES;
            }
        }
        size_t take = NMI_BLAKE2S_BLOCKBYTES - s->buflen;
        if (take > inlen) {
            take = inlen;
        }
        memcpy(s->buf + s->buflen, p, take);
        s->buflen += take;
        p += take;
        inlen -= take;
    }
}

void
nmi_blake2s_final(nmi_blake2s_state *s, uint8_t *out)
{
    uint8_t full[NMI_BLAKE2S_OUTBYTES];

    nmi_b2s_count(s, (uint32_t)s->buflen);
    memset(s->buf + s->buflen, 0, NMI_BLAKE2S_BLOCKBYTES - s->buflen);
    s->f[0] = 0xFFFFFFFFu;
    nmi_b2s_compress(s, s->buf);
    for (int i = 0; i < 8; i++) {
        nmi_store_le32(full + 4 * i, s->h[i]);
    }
    memcpy(out, full, s->outlen);
    sodium_memzero(full, sizeof(full));
    sodium_memzero(s, sizeof(*s));
    nmi_b2s_scrub_stack();
}

int
nmi_blake2s(uint8_t *out, size_t outlen, const void *key, size_t keylen,
            const void *in, size_t inlen)
{
    nmi_blake2s_state s;
    int rc;

    if (out == NULL || (inlen > 0 && in == NULL)) {
        return nmi_err(NM_EINVAL, "blake2s: NULL output or input");
    }
    rc = nmi_blake2s_init(&s, outlen, key, keylen);
    if (rc != NM_OK) {
        return rc;
    }
    nmi_blake2s_update(&s, in, inlen);
    nmi_blake2s_final(&s, out);
    return NM_OK;
}

int
nmi_net_kdf(uint8_t out[32], const uint8_t *ikm, size_t ikmlen,
            const char *info)
{
    static const char salt[] = "net-kdf-v1";
    uint8_t prk[NMI_BLAKE2S_OUTBYTES];
    int rc;

    if (out == NULL || ikm == NULL || info == NULL || ikmlen == 0 ||
        ikmlen > NMI_BLAKE2S_KEYBYTES) {
        return nmi_err(NM_EINVAL, "net_kdf: ikm must be 1..32 bytes and "
                                  "info non-NULL");
    }
    rc = nmi_blake2s(prk, sizeof(prk), ikm, ikmlen, salt, sizeof(salt) - 1);
    if (rc == NM_OK) {
        rc = nmi_blake2s(out, NMI_BLAKE2S_OUTBYTES, prk, sizeof(prk), info,
                         strlen(info));
    }
    sodium_memzero(prk, sizeof(prk));
    return rc;
}
