/*
 * src/crypto/noise.c - Noise HandshakeState / SymmetricState / CipherState
 * (Noise Protocol Framework rev. 34, §5) for 25519 / ChaChaPoly / BLAKE2s.
 *
 * HASH = BLAKE2s-256 (src/crypto/blake2s.c), HMAC over it with a 64-byte
 * block (§4.3), HKDF with 2 or 3 outputs. DH = X25519, cipher =
 * ChaCha20-Poly1305 IETF with the nonce 4 zero bytes ‖ n u64 LE (libsodium).
 * Written from the specification; every secret is wiped with
 * sodium_memzero on every path.
 */
#include "crypto/noise.h"

#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "crypto/blake2s.h"

/* ------------------------------------------------------------ patterns */

enum {
    TK_END = 0,
    TK_E,
    TK_S,
    TK_EE,
    TK_ES,
    TK_SE,
    TK_SS,
    TK_PSK,
};

#define NMI_NOISE_MAX_MSGS 3
#define NMI_NOISE_MAX_TOKENS 6

typedef struct nmi_noise_pattern_def {
    const char *name;
    bool pre_init_s; /* -> s  (initiator's static known beforehand) */
    bool pre_resp_s; /* <- s  (responder's static known beforehand) */
    bool psk;        /* a psk modifier: 'e' also calls MixKey */
    unsigned nmsgs;
    uint8_t msgs[NMI_NOISE_MAX_MSGS][NMI_NOISE_MAX_TOKENS];
} nmi_noise_pattern_def;

/* Message i is sent by the initiator when i is even. */
static const nmi_noise_pattern_def nmi_noise_patterns[] = {
    [NMI_NOISE_NN] = {"Noise_NN_25519_ChaChaPoly_BLAKE2s",
                      false,
                      false,
                      false,
                      2,
                      {{TK_E}, {TK_E, TK_EE}}},
    [NMI_NOISE_NK] = {"Noise_NK_25519_ChaChaPoly_BLAKE2s",
                      false,
                      true,
                      false,
                      2,
                      {{TK_E, TK_ES}, {TK_E, TK_EE}}},
    [NMI_NOISE_IK] = {"Noise_IK_25519_ChaChaPoly_BLAKE2s",
                      false,
                      true,
                      false,
                      2,
                      {{TK_E, TK_ES, TK_S, TK_SS}, {TK_E, TK_EE, TK_SE}}},
    [NMI_NOISE_XX] = {"Noise_XX_25519_ChaChaPoly_BLAKE2s",
                      false,
                      false,
                      false,
                      3,
                      {{TK_E}, {TK_E, TK_EE, TK_S, TK_ES}, {TK_S, TK_SE}}},
    [NMI_NOISE_NKPSK0] = {"Noise_NKpsk0_25519_ChaChaPoly_BLAKE2s",
                          false,
                          true,
                          true,
                          2,
                          {{TK_PSK, TK_E, TK_ES}, {TK_E, TK_EE}}},
};

const char *
nmi_noise_protocol_name(nmi_noise_pattern p)
{
    if ((unsigned)p >= NMI_NOISE_PATTERN_COUNT) {
        return NULL;
    }
    return nmi_noise_patterns[p].name;
}

static const nmi_noise_pattern_def *
pat_of(const nmi_noise_hs *hs)
{
    return (const nmi_noise_pattern_def *)hs->pat;
}

/* ---------------------------------------------------------------- X25519 */

static void
sodium_once(void)
{
    /* Idempotent and thread-safe; it also picks the fastest ChaCha20
     * implementation for this CPU. -1 only if no entropy source. */
    int rc = sodium_init();
    (void)rc;
}

int
nmi_noise_pubkey(uint8_t pub[32], const uint8_t priv[32])
{
    if (pub == NULL || priv == NULL) {
        return nmi_err(NM_EINVAL, "x25519: NULL key");
    }
    sodium_once();
    if (crypto_scalarmult_curve25519_base(pub, priv) != 0) {
        return nmi_err(NM_ECRYPTO, "cryptographic verification failed");
    }
    return NM_OK;
}

int
nmi_noise_keypair(uint8_t pub[32], uint8_t priv[32])
{
    if (pub == NULL || priv == NULL) {
        return nmi_err(NM_EINVAL, "x25519: NULL key");
    }
    sodium_once();
    for (;;) {
        randombytes_buf(priv, 32);
        if (crypto_scalarmult_curve25519_base(pub, priv) == 0) {
            return NM_OK;
        }
    }
}

int
nmi_noise_dh(uint8_t out[32], const uint8_t priv[32], const uint8_t pub[32])
{
    if (out == NULL || priv == NULL || pub == NULL) {
        return nmi_err(NM_EINVAL, "x25519: NULL key");
    }
    sodium_once();
    /* libsodium returns -1 when the result is all zeros (low-order pub). */
    if (crypto_scalarmult_curve25519(out, priv, pub) != 0) {
        sodium_memzero(out, 32);
        return nmi_err(NM_ECRYPTO, "cryptographic verification failed");
    }
    return NM_OK;
}

/* ------------------------------------------------------- HASH/HMAC/HKDF */

static void
hash2(uint8_t out[NMI_NOISE_HASHLEN], const uint8_t *a, size_t alen,
      const uint8_t *b, size_t blen)
{
    nmi_blake2s_state st;

    (void)nmi_blake2s_init(&st, NMI_NOISE_HASHLEN, NULL, 0);
    nmi_blake2s_update(&st, a, alen);
    if (blen > 0) {
        nmi_blake2s_update(&st, b, blen);
    }
    nmi_blake2s_final(&st, out);
}

/* HMAC-BLAKE2s(key[32], d1 ‖ d2), block length 64 (Noise §4.3, RFC 2104). */
static void
hmac(uint8_t out[NMI_NOISE_HASHLEN], const uint8_t key[NMI_NOISE_HASHLEN],
     const uint8_t *d1, size_t l1, const uint8_t *d2, size_t l2)
{
    uint8_t pad[NMI_BLAKE2S_BLOCKBYTES];
    uint8_t inner[NMI_NOISE_HASHLEN];
    nmi_blake2s_state st;

    memset(pad, 0x36, sizeof(pad));
    for (size_t i = 0; i < NMI_NOISE_HASHLEN; i++) {
        pad[i] ^= key[i];
    }
    (void)nmi_blake2s_init(&st, NMI_NOISE_HASHLEN, NULL, 0);
    nmi_blake2s_update(&st, pad, sizeof(pad));
    if (l1 > 0) {
        nmi_blake2s_update(&st, d1, l1);
    }
    if (l2 > 0) {
        nmi_blake2s_update(&st, d2, l2);
    }
    nmi_blake2s_final(&st, inner);

    memset(pad, 0x5c, sizeof(pad));
    for (size_t i = 0; i < NMI_NOISE_HASHLEN; i++) {
        pad[i] ^= key[i];
    }
    (void)nmi_blake2s_init(&st, NMI_NOISE_HASHLEN, NULL, 0);
    nmi_blake2s_update(&st, pad, sizeof(pad));
    nmi_blake2s_update(&st, inner, sizeof(inner));
    nmi_blake2s_final(&st, out);

    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
    sodium_memzero(&st, sizeof(st));
}

/* HKDF(chaining_key, ikm, 2 or 3): o3 may be NULL. */
static void
hkdf(const uint8_t ck[NMI_NOISE_HASHLEN], const uint8_t *ikm, size_t ikmlen,
     uint8_t o1[NMI_NOISE_HASHLEN], uint8_t o2[NMI_NOISE_HASHLEN],
     uint8_t o3[NMI_NOISE_HASHLEN])
{
    uint8_t temp[NMI_NOISE_HASHLEN];
    uint8_t b;

    hmac(temp, ck, ikm, ikmlen, NULL, 0);
    b = 0x01;
    hmac(o1, temp, &b, 1, NULL, 0);
    b = 0x02;
    hmac(o2, temp, o1, NMI_NOISE_HASHLEN, &b, 1);
    if (o3 != NULL) {
        b = 0x03;
        hmac(o3, temp, o2, NMI_NOISE_HASHLEN, &b, 1);
    }
    sodium_memzero(temp, sizeof(temp));
}

/* ---------------------------------------------------------- CipherState */

static void
cipher_init_key(nmi_noise_cipher *c, const uint8_t k[NMI_NOISE_KEYLEN])
{
    memcpy(c->k, k, NMI_NOISE_KEYLEN);
    c->n = 0;
    c->has_key = true;
}

static void
cipher_nonce(uint8_t nonce[12], uint64_t n)
{
    memset(nonce, 0, 4);
    nmi_store_le64(nonce + 4, n);
}

int
nmi_noise_cipher_encrypt(nmi_noise_cipher *c, const uint8_t *ad, size_t adlen,
                         const uint8_t *pt, size_t ptlen, uint8_t *out)
{
    uint8_t nonce[12];
    unsigned long long clen = 0;

    if (c == NULL || (pt == NULL && ptlen > 0) || out == NULL ||
        (ad == NULL && adlen > 0)) {
        return nmi_err(NM_EINVAL, "noise cipher: NULL argument");
    }
    if (!c->has_key) {
        if (out != pt && ptlen > 0) {
            memmove(out, pt, ptlen);
        }
        return NM_OK;
    }
    if (c->n == UINT64_MAX) {
        return nmi_err(NM_ERANGE, "noise cipher: nonce exhausted");
    }
    sodium_once();
    cipher_nonce(nonce, c->n);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, ptlen, ad, adlen,
                                              NULL, nonce, c->k);
    c->n++;
    return NM_OK;
}

int
nmi_noise_cipher_decrypt(nmi_noise_cipher *c, const uint8_t *ad, size_t adlen,
                         const uint8_t *ct, size_t ctlen, uint8_t *out)
{
    uint8_t nonce[12];
    uint8_t dummy[1];
    unsigned long long mlen = 0;

    if (c == NULL || (ct == NULL && ctlen > 0) ||
        (out == NULL && ctlen > (c->has_key ? NMI_NOISE_TAGLEN : 0)) ||
        (ad == NULL && adlen > 0)) {
        return nmi_err(NM_EINVAL, "noise cipher: NULL argument");
    }
    if (!c->has_key) {
        if (out != ct && ctlen > 0) {
            memmove(out, ct, ctlen);
        }
        return NM_OK;
    }
    if (ctlen < NMI_NOISE_TAGLEN) {
        return nmi_err(NM_EDECODE, "noise cipher: ciphertext shorter than "
                                   "the tag");
    }
    if (c->n == UINT64_MAX) {
        return nmi_err(NM_ERANGE, "noise cipher: nonce exhausted");
    }
    sodium_once();
    cipher_nonce(nonce, c->n);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out != NULL ? out : dummy,
                                                  &mlen, NULL, ct, ctlen, ad,
                                                  adlen, nonce, c->k) != 0) {
        if (out != NULL && ctlen > NMI_NOISE_TAGLEN) {
            sodium_memzero(out, ctlen - NMI_NOISE_TAGLEN);
        }
        return nmi_err(NM_ECRYPTO, "cryptographic verification failed");
    }
    c->n++;
    return NM_OK;
}

void
nmi_noise_cipher_wipe(nmi_noise_cipher *c)
{
    if (c != NULL) {
        sodium_memzero(c, sizeof(*c));
    }
}

/* -------------------------------------------------------- SymmetricState */

static void
mix_hash(nmi_noise_hs *hs, const uint8_t *data, size_t len)
{
    hash2(hs->h, hs->h, NMI_NOISE_HASHLEN, data, len);
}

static void
mix_key(nmi_noise_hs *hs, const uint8_t *ikm, size_t len)
{
    uint8_t k[NMI_NOISE_HASHLEN];

    hkdf(hs->ck, ikm, len, hs->ck, k, NULL);
    cipher_init_key(&hs->cs, k);
    sodium_memzero(k, sizeof(k));
}

static void
mix_key_and_hash(nmi_noise_hs *hs, const uint8_t *ikm, size_t len)
{
    uint8_t th[NMI_NOISE_HASHLEN], k[NMI_NOISE_HASHLEN];

    hkdf(hs->ck, ikm, len, hs->ck, th, k);
    mix_hash(hs, th, sizeof(th));
    cipher_init_key(&hs->cs, k);
    sodium_memzero(th, sizeof(th));
    sodium_memzero(k, sizeof(k));
}

/* EncryptAndHash: out gets ptlen (+16 with a key) bytes; *n their count. */
static int
encrypt_and_hash(nmi_noise_hs *hs, const uint8_t *pt, size_t ptlen,
                 uint8_t *out, size_t *n)
{
    int rc = nmi_noise_cipher_encrypt(&hs->cs, hs->h, NMI_NOISE_HASHLEN, pt,
                                      ptlen, out);
    if (rc != NM_OK) {
        return rc;
    }
    *n = ptlen + (hs->cs.has_key ? NMI_NOISE_TAGLEN : 0);
    mix_hash(hs, out, *n);
    return NM_OK;
}

/* DecryptAndHash: ct[ctlen] -> out[ctlen - 16 (with a key)]. */
static int
decrypt_and_hash(nmi_noise_hs *hs, const uint8_t *ct, size_t ctlen,
                 uint8_t *out)
{
    uint8_t hnext[NMI_NOISE_HASHLEN];
    int rc;

    /* MixHash(ct) uses the ciphertext, so h' = HASH(h ‖ ct) is computed
     * first and committed only when the tag verifies. */
    hash2(hnext, hs->h, NMI_NOISE_HASHLEN, ct, ctlen);
    rc = nmi_noise_cipher_decrypt(&hs->cs, hs->h, NMI_NOISE_HASHLEN, ct, ctlen,
                                  out);
    if (rc == NM_OK) {
        memcpy(hs->h, hnext, NMI_NOISE_HASHLEN);
    }
    return rc;
}

/* -------------------------------------------------------- HandshakeState */

/* Does this role use its own static key / need the remote one up front? */
static bool
needs_local_static(const nmi_noise_pattern_def *p, bool initiator)
{
    if (initiator ? p->pre_init_s : p->pre_resp_s) {
        return true;
    }
    for (unsigned m = 0; m < p->nmsgs; m++) {
        bool mine = ((m % 2) == 0) == initiator;
        for (unsigned t = 0; t < NMI_NOISE_MAX_TOKENS; t++) {
            uint8_t tk = p->msgs[m][t];
            if ((tk == TK_S && mine) || tk == TK_SS ||
                (tk == TK_SE && initiator) || (tk == TK_ES && !initiator)) {
                return true;
            }
        }
    }
    return false;
}

int
nmi_noise_init(nmi_noise_hs *hs, const nmi_noise_config *cfg)
{
    const nmi_noise_pattern_def *p;
    bool need_s, need_rs;
    size_t nlen;
    int rc;

    if (hs == NULL) {
        return nmi_err(NM_EINVAL, "noise: NULL handshake");
    }
    memset(hs, 0, sizeof(*hs));
    if (cfg == NULL || (unsigned)cfg->pattern >= NMI_NOISE_PATTERN_COUNT) {
        return nmi_err(NM_EINVAL, "noise: unknown pattern");
    }
    if (cfg->prologue == NULL && cfg->prologue_len > 0) {
        return nmi_err(NM_EINVAL, "noise: NULL prologue");
    }
    p = &nmi_noise_patterns[cfg->pattern];
    need_s = needs_local_static(p, cfg->initiator);
    need_rs = cfg->initiator ? p->pre_resp_s : p->pre_init_s;
    if ((cfg->s != NULL) != need_s) {
        return nmi_err(NM_EINVAL, "noise: %s %s a local static key", p->name,
                       need_s ? "needs" : "does not take");
    }
    if ((cfg->rs != NULL) != need_rs) {
        return nmi_err(NM_EINVAL, "noise: %s %s a remote static key", p->name,
                       need_rs ? "needs" : "does not take");
    }
    if ((cfg->psk != NULL) != p->psk) {
        return nmi_err(NM_EINVAL, "noise: %s %s a PSK", p->name,
                       p->psk ? "needs" : "does not take");
    }
    sodium_once();

    hs->pat = p;
    hs->initiator = cfg->initiator;
    hs->status = NMI_NOISE_IN_PROGRESS;
    if (cfg->s != NULL) {
        memcpy(hs->s_priv, cfg->s, NMI_NOISE_DHLEN);
        if (cfg->s_pub != NULL) {
            memcpy(hs->s_pub, cfg->s_pub, NMI_NOISE_DHLEN);
            rc = NM_OK;
        } else {
            rc = nmi_noise_pubkey(hs->s_pub, hs->s_priv);
        }
        if (rc != NM_OK) {
            nmi_noise_wipe(hs);
            return rc;
        }
        hs->has_s = true;
    }
    if (cfg->rs != NULL) {
        memcpy(hs->rs, cfg->rs, NMI_NOISE_DHLEN);
        hs->has_rs = true;
    }
    if (cfg->psk != NULL) {
        memcpy(hs->psk, cfg->psk, NMI_NOISE_PSKLEN);
        hs->has_psk = true;
    }
    if (cfg->fixed_e != NULL) {
        memcpy(hs->e_priv, cfg->fixed_e, NMI_NOISE_DHLEN);
        hs->fixed_e = true;
    }

    /* InitializeSymmetric(protocol_name) */
    nlen = strlen(p->name);
    if (nlen <= NMI_NOISE_HASHLEN) {
        memset(hs->h, 0, NMI_NOISE_HASHLEN);
        memcpy(hs->h, p->name, nlen);
    } else {
        hash2(hs->h, (const uint8_t *)p->name, nlen, NULL, 0);
    }
    memcpy(hs->ck, hs->h, NMI_NOISE_HASHLEN);
    /* MixHash(prologue) - always, even when empty. */
    mix_hash(hs, cfg->prologue, cfg->prologue_len);
    /* Pre-messages: the initiator's first, then the responder's. */
    if (p->pre_init_s) {
        mix_hash(hs, cfg->initiator ? hs->s_pub : hs->rs, NMI_NOISE_DHLEN);
    }
    if (p->pre_resp_s) {
        mix_hash(hs, cfg->initiator ? hs->rs : hs->s_pub, NMI_NOISE_DHLEN);
    }
    return NM_OK;
}

bool
nmi_noise_my_turn(const nmi_noise_hs *hs)
{
    return hs != NULL && hs->status == NMI_NOISE_IN_PROGRESS &&
           ((hs->msg_index % 2) == 0) == hs->initiator;
}

bool
nmi_noise_is_done(const nmi_noise_hs *hs)
{
    return hs != NULL && hs->status == NMI_NOISE_DONE;
}

/* Bytes of message `idx` excluding the payload plaintext, simulating when
 * the CipherState gets its key. */
static size_t
msg_overhead(const nmi_noise_hs *hs, unsigned idx)
{
    const nmi_noise_pattern_def *p = pat_of(hs);
    bool k = hs->cs.has_key;
    size_t n = 0;

    for (unsigned t = 0; t < NMI_NOISE_MAX_TOKENS; t++) {
        switch (p->msgs[idx][t]) {
        case TK_E:
            n += NMI_NOISE_DHLEN;
            if (p->psk) {
                k = true;
            }
            break;
        case TK_S:
            n += NMI_NOISE_DHLEN + (k ? NMI_NOISE_TAGLEN : 0);
            break;
        case TK_EE:
        case TK_ES:
        case TK_SE:
        case TK_SS:
        case TK_PSK:
            k = true;
            break;
        default:
            break;
        }
    }
    return n + (k ? NMI_NOISE_TAGLEN : 0);
}

size_t
nmi_noise_write_len(const nmi_noise_hs *hs, size_t payload_len)
{
    if (!nmi_noise_my_turn(hs)) {
        return 0;
    }
    return msg_overhead(hs, hs->msg_index) + payload_len;
}

/* The DH of a token for this role. */
static int
token_dh(nmi_noise_hs *hs, uint8_t tk, uint8_t out[32])
{
    const uint8_t *priv = NULL, *pub = NULL;
    bool have = false;

    switch (tk) {
    case TK_EE:
        priv = hs->e_priv, pub = hs->re, have = hs->has_e && hs->has_re;
        break;
    case TK_ES: /* initiator: DH(e, rs); responder: DH(s, re) */
        if (hs->initiator) {
            priv = hs->e_priv, pub = hs->rs, have = hs->has_e && hs->has_rs;
        } else {
            priv = hs->s_priv, pub = hs->re, have = hs->has_s && hs->has_re;
        }
        break;
    case TK_SE: /* initiator: DH(s, re); responder: DH(e, rs) */
        if (hs->initiator) {
            priv = hs->s_priv, pub = hs->re, have = hs->has_s && hs->has_re;
        } else {
            priv = hs->e_priv, pub = hs->rs, have = hs->has_e && hs->has_rs;
        }
        break;
    case TK_SS:
        priv = hs->s_priv, pub = hs->rs, have = hs->has_s && hs->has_rs;
        break;
    default:
        break;
    }
    if (!have) {
        return nmi_err(NM_EINTERNAL, "noise: DH token without its keys");
    }
    return nmi_noise_dh(out, priv, pub);
}

static void
hs_fail(nmi_noise_hs *hs)
{
    const void *p = hs->pat;
    bool initiator = hs->initiator;

    sodium_memzero(hs, sizeof(*hs));
    hs->pat = p;
    hs->initiator = initiator;
    hs->status = NMI_NOISE_FAILED;
}

/* After the last message: private keys and the PSK are no longer needed. */
static void
hs_finish_message(nmi_noise_hs *hs)
{
    hs->msg_index++;
    if (hs->msg_index >= pat_of(hs)->nmsgs) {
        hs->status = NMI_NOISE_DONE;
        sodium_memzero(hs->e_priv, sizeof(hs->e_priv));
        sodium_memzero(hs->s_priv, sizeof(hs->s_priv));
        sodium_memzero(hs->psk, sizeof(hs->psk));
        sodium_memzero(&hs->cs, sizeof(hs->cs));
    }
}

static int
hs_usable(const nmi_noise_hs *hs, bool write)
{
    if (hs == NULL || hs->pat == NULL) {
        return nmi_err(NM_EINVAL, "noise: handshake not initialized");
    }
    if (hs->status == NMI_NOISE_FAILED) {
        return nmi_err(NM_EINVAL, "noise: handshake failed earlier");
    }
    if (hs->status == NMI_NOISE_DONE) {
        return nmi_err(NM_EINVAL, "noise: handshake already complete");
    }
    if (nmi_noise_my_turn(hs) != write) {
        return nmi_err(NM_EINVAL, "noise: not our turn to %s",
                       write ? "write" : "read");
    }
    return NM_OK;
}

int
nmi_noise_write_message(nmi_noise_hs *hs, const uint8_t *payload,
                        size_t payload_len, uint8_t *out, size_t cap,
                        size_t *out_len)
{
    const nmi_noise_pattern_def *p;
    uint8_t dh[NMI_NOISE_DHLEN];
    size_t need, off = 0, n = 0;
    int rc;

    if ((rc = hs_usable(hs, true)) != NM_OK) {
        return rc;
    }
    if (out == NULL || out_len == NULL || (payload == NULL && payload_len)) {
        return nmi_err(NM_EINVAL, "noise: NULL argument");
    }
    p = pat_of(hs);
    need = msg_overhead(hs, hs->msg_index);
    if (payload_len > NMI_NOISE_MAX_MSG - need) {
        return nmi_err(NM_ETOOBIG, "noise: message would exceed %d bytes",
                       NMI_NOISE_MAX_MSG);
    }
    need += payload_len;
    if (cap < need) {
        return nmi_err(NM_EINVAL, "noise: output buffer %zu < %zu bytes", cap,
                       need);
    }

    for (unsigned t = 0; t < NMI_NOISE_MAX_TOKENS && rc == NM_OK; t++) {
        uint8_t tk = p->msgs[hs->msg_index][t];
        switch (tk) {
        case TK_END:
            t = NMI_NOISE_MAX_TOKENS;
            break;
        case TK_E:
            if (!hs->fixed_e) {
                randombytes_buf(hs->e_priv, sizeof(hs->e_priv));
                hs->fixed_e_pub = false;
            }
            hs->fixed_e = false; /* a fixed ephemeral is used once */
            rc = hs->fixed_e_pub ? NM_OK
                                 : nmi_noise_pubkey(hs->e_pub, hs->e_priv);
            hs->fixed_e_pub = false;
            if (rc != NM_OK) {
                break;
            }
            hs->has_e = true;
            memcpy(out + off, hs->e_pub, NMI_NOISE_DHLEN);
            off += NMI_NOISE_DHLEN;
            mix_hash(hs, hs->e_pub, NMI_NOISE_DHLEN);
            if (p->psk) {
                mix_key(hs, hs->e_pub, NMI_NOISE_DHLEN);
            }
            break;
        case TK_S:
            rc = encrypt_and_hash(hs, hs->s_pub, NMI_NOISE_DHLEN, out + off,
                                  &n);
            off += n;
            break;
        case TK_PSK:
            mix_key_and_hash(hs, hs->psk, NMI_NOISE_PSKLEN);
            break;
        default:
            rc = token_dh(hs, tk, dh);
            if (rc == NM_OK) {
                mix_key(hs, dh, sizeof(dh));
            }
            sodium_memzero(dh, sizeof(dh));
            break;
        }
    }
    if (rc == NM_OK) {
        rc = encrypt_and_hash(hs, payload, payload_len, out + off, &n);
        off += n;
    }
    if (rc != NM_OK) {
        sodium_memzero(out, cap < need ? cap : need);
        hs_fail(hs);
        return rc;
    }
    *out_len = off;
    hs_finish_message(hs);
    return NM_OK;
}

int
nmi_noise_read_message(nmi_noise_hs *hs, const uint8_t *msg, size_t msg_len,
                       uint8_t *payload, size_t cap, size_t *payload_len)
{
    const nmi_noise_pattern_def *p;
    uint8_t dh[NMI_NOISE_DHLEN];
    size_t over, plen, off = 0;
    int rc;

    if ((rc = hs_usable(hs, false)) != NM_OK) {
        return rc;
    }
    if ((msg == NULL && msg_len > 0) || payload_len == NULL ||
        (payload == NULL && cap > 0)) {
        return nmi_err(NM_EINVAL, "noise: NULL argument");
    }
    p = pat_of(hs);
    over = msg_overhead(hs, hs->msg_index);
    if (msg_len > NMI_NOISE_MAX_MSG) {
        return nmi_err(NM_EDECODE, "noise: message longer than %d bytes",
                       NMI_NOISE_MAX_MSG);
    }
    if (msg_len < over) {
        return nmi_err(NM_EDECODE,
                       "noise: message %zu bytes, at least %zu expected",
                       msg_len, over);
    }
    plen = msg_len - over;
    if (plen > cap) {
        return nmi_err(NM_EINVAL, "noise: payload buffer %zu < %zu bytes", cap,
                       plen);
    }

    for (unsigned t = 0; t < NMI_NOISE_MAX_TOKENS && rc == NM_OK; t++) {
        uint8_t tk = p->msgs[hs->msg_index][t];
        size_t n;
        switch (tk) {
        case TK_END:
            t = NMI_NOISE_MAX_TOKENS;
            break;
        case TK_E:
            memcpy(hs->re, msg + off, NMI_NOISE_DHLEN);
            hs->has_re = true;
            off += NMI_NOISE_DHLEN;
            mix_hash(hs, hs->re, NMI_NOISE_DHLEN);
            if (p->psk) {
                mix_key(hs, hs->re, NMI_NOISE_DHLEN);
            }
            break;
        case TK_S: {
            uint8_t rs[NMI_NOISE_DHLEN];
            n = NMI_NOISE_DHLEN + (hs->cs.has_key ? NMI_NOISE_TAGLEN : 0);
            rc = decrypt_and_hash(hs, msg + off, n, rs);
            if (rc == NM_OK) {
                memcpy(hs->rs, rs, NMI_NOISE_DHLEN);
                hs->has_rs = true;
            }
            sodium_memzero(rs, sizeof(rs));
            off += n;
            break;
        }
        case TK_PSK:
            mix_key_and_hash(hs, hs->psk, NMI_NOISE_PSKLEN);
            break;
        default:
            rc = token_dh(hs, tk, dh);
            if (rc == NM_OK) {
                mix_key(hs, dh, sizeof(dh));
            }
            sodium_memzero(dh, sizeof(dh));
            break;
        }
    }
    if (rc == NM_OK) {
        rc = decrypt_and_hash(hs, msg + off, msg_len - off, payload);
    }
    if (rc != NM_OK) {
        if (payload != NULL && cap > 0) {
            sodium_memzero(payload, plen < cap ? plen : cap);
        }
        hs_fail(hs);
        /* One code and one sentence for every authentication failure. */
        return nmi_err(NM_ECRYPTO, "cryptographic verification failed");
    }
    *payload_len = plen;
    hs_finish_message(hs);
    return NM_OK;
}

void
nmi_noise_handshake_hash(const nmi_noise_hs *hs,
                         uint8_t out[NMI_NOISE_HASHLEN])
{
    if (hs != NULL && out != NULL) {
        memcpy(out, hs->h, NMI_NOISE_HASHLEN);
    }
}

int
nmi_noise_remote_static(const nmi_noise_hs *hs, uint8_t out[NMI_NOISE_DHLEN])
{
    if (hs == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "noise: NULL argument");
    }
    if (!hs->has_rs) {
        return nmi_err(NM_ENOTFOUND, "noise: remote static key not known");
    }
    memcpy(out, hs->rs, NMI_NOISE_DHLEN);
    return NM_OK;
}

int
nmi_noise_split(const nmi_noise_hs *hs, nmi_noise_cipher *c1,
                nmi_noise_cipher *c2)
{
    uint8_t k1[NMI_NOISE_HASHLEN], k2[NMI_NOISE_HASHLEN];

    if (hs == NULL || c1 == NULL || c2 == NULL) {
        return nmi_err(NM_EINVAL, "noise: NULL argument");
    }
    if (hs->status != NMI_NOISE_DONE) {
        return nmi_err(NM_EINVAL, "noise: split before the handshake is done");
    }
    hkdf(hs->ck, NULL, 0, k1, k2, NULL);
    cipher_init_key(c1, k1);
    cipher_init_key(c2, k2);
    sodium_memzero(k1, sizeof(k1));
    sodium_memzero(k2, sizeof(k2));
    return NM_OK;
}

void
nmi_noise_wipe(nmi_noise_hs *hs)
{
    if (hs != NULL) {
        sodium_memzero(hs, sizeof(*hs));
    }
}

/* ------------------------------------------------------------- Net glue */

void
nmi_net_prologue(uint8_t out[NMI_NET_PROLOGUE_LEN], uint64_t src_node_id,
                 uint64_t dst_node_id)
{
    memcpy(out, "net-handshake-v1", 16);
    nmi_store_le64(out + 16, (uint64_t)(uint32_t)src_node_id);
    nmi_store_le64(out + 24, (uint64_t)(uint32_t)dst_node_id);
}

int
nmi_net_hs_initiator(nmi_noise_hs *hs, const uint8_t psk[32],
                     const uint8_t responder_static_pub[32],
                     uint64_t self_node_id, uint64_t peer_node_id)
{
    uint8_t prologue[NMI_NET_PROLOGUE_LEN];
    nmi_noise_config cfg = {0};

    if (psk == NULL || responder_static_pub == NULL) {
        return nmi_err(NM_EINVAL, "noise: NULL key");
    }
    nmi_net_prologue(prologue, self_node_id, peer_node_id);
    cfg.pattern = NMI_NOISE_NKPSK0;
    cfg.initiator = true;
    cfg.prologue = prologue;
    cfg.prologue_len = sizeof(prologue);
    cfg.rs = responder_static_pub;
    cfg.psk = psk;
    return nmi_noise_init(hs, &cfg);
}

int
nmi_noise_set_ephemeral(nmi_noise_hs *hs, const uint8_t priv[32],
                        const uint8_t pub[32])
{
    if (hs == NULL || priv == NULL || pub == NULL ||
        hs->status != NMI_NOISE_IN_PROGRESS) {
        return nmi_err(NM_EINVAL, "noise: bad ephemeral or state");
    }
    memcpy(hs->e_priv, priv, NMI_NOISE_DHLEN);
    memcpy(hs->e_pub, pub, NMI_NOISE_DHLEN);
    hs->fixed_e = true;
    hs->fixed_e_pub = true;
    return NM_OK;
}

int
nmi_net_hs_responder2(nmi_noise_hs *hs, const uint8_t psk[32],
                      const uint8_t static_priv[32],
                      const uint8_t static_pub[32], uint64_t peer_node_id,
                      uint64_t self_node_id)
{
    uint8_t prologue[NMI_NET_PROLOGUE_LEN];
    nmi_noise_config cfg = {0};

    if (psk == NULL || static_priv == NULL || static_pub == NULL) {
        return nmi_err(NM_EINVAL, "noise: NULL key");
    }
    nmi_net_prologue(prologue, peer_node_id, self_node_id);
    cfg.pattern = NMI_NOISE_NKPSK0;
    cfg.initiator = false;
    cfg.prologue = prologue;
    cfg.prologue_len = sizeof(prologue);
    cfg.s = static_priv;
    cfg.s_pub = static_pub;
    cfg.psk = psk;
    return nmi_noise_init(hs, &cfg);
}

int
nmi_net_hs_responder(nmi_noise_hs *hs, const uint8_t psk[32],
                     const uint8_t static_priv[32], uint64_t peer_node_id,
                     uint64_t self_node_id)
{
    uint8_t prologue[NMI_NET_PROLOGUE_LEN];
    nmi_noise_config cfg = {0};

    if (psk == NULL || static_priv == NULL) {
        return nmi_err(NM_EINVAL, "noise: NULL key");
    }
    nmi_net_prologue(prologue, peer_node_id, self_node_id);
    cfg.pattern = NMI_NOISE_NKPSK0;
    cfg.initiator = false;
    cfg.prologue = prologue;
    cfg.prologue_len = sizeof(prologue);
    cfg.s = static_priv;
    cfg.psk = psk;
    return nmi_noise_init(hs, &cfg);
}
