/*
 * src/crypto/blake2s.h - BLAKE2s-256 (RFC 7693), plain and keyed mode,
 * written here from the RFC (no Debian package provides BLAKE2s).
 * Internal API; the crypto layer and the Noise hash use it.
 */
#ifndef NMI_BLAKE2S_H
#define NMI_BLAKE2S_H

#include <stddef.h>
#include <stdint.h>

#define NMI_BLAKE2S_OUTBYTES 32
#define NMI_BLAKE2S_KEYBYTES 32
#define NMI_BLAKE2S_BLOCKBYTES 64

typedef struct nmi_blake2s_state {
    uint32_t h[8];
    uint32_t t[2];
    uint32_t f[2];
    uint8_t buf[NMI_BLAKE2S_BLOCKBYTES];
    size_t buflen;
    size_t outlen;
} nmi_blake2s_state;

/* outlen 1..32; key may be NULL when keylen == 0; keylen 0..32.
 * Return 0, or NM_EINVAL for out-of-range lengths. */
int nmi_blake2s_init(nmi_blake2s_state *s, size_t outlen, const void *key,
                     size_t keylen);
void nmi_blake2s_update(nmi_blake2s_state *s, const void *in, size_t inlen);
/* Writes s->outlen bytes to out and wipes the state. */
void nmi_blake2s_final(nmi_blake2s_state *s, uint8_t *out);

/* One-shot: out[outlen] = BLAKE2s(key, in). Returns 0 or NM_EINVAL. */
int nmi_blake2s(uint8_t *out, size_t outlen, const void *key, size_t keylen,
                const void *in, size_t inlen);

/* Upstream Net's KDF ("net-kdf-v1"), keyed BLAKE2s in both steps:
 *   PRK = B2s(key = ikm, msg = "net-kdf-v1")
 *   OKM = B2s(key = PRK, msg = info)
 * ikm is 1..32 bytes (a BLAKE2s key). out is 32 bytes. Returns 0 or
 * NM_EINVAL. PRK is wiped. */
int nmi_net_kdf(uint8_t out[32], const uint8_t *ikm, size_t ikmlen,
                const char *info);

#endif
