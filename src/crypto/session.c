/*
 * src/crypto/session.c - Net's AEAD packet session: key schedule from the
 * handshake hash, counter nonces, the 1024-bit sliding replay window.
 */
#include "crypto/session.h"

#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "crypto/blake2s.h"

/* ------------------------------------------------------- replay window */

void
nmi_replay_init(nmi_replay *r)
{
    memset(r, 0, sizeof(*r));
}

bool
nmi_replay_check(const nmi_replay *r, uint64_t counter)
{
    uint64_t age;

    if (counter == UINT64_MAX) {
        return false;
    }
    if (counter >= r->next) {
        return counter - r->next <= NMI_REPLAY_WINDOW;
    }
    age = r->next - 1 - counter;
    if (age >= NMI_REPLAY_WINDOW) {
        return false;
    }
    return (r->bits[age / 64] & (1ull << (age % 64))) == 0;
}

/* Slide the window up by `shift` positions (bit i moves to bit i+shift). */
static void
replay_shift(nmi_replay *r, uint64_t shift)
{
    unsigned ws, bs;

    if (shift >= NMI_REPLAY_WINDOW) {
        memset(r->bits, 0, sizeof(r->bits));
        return;
    }
    ws = (unsigned)(shift / 64);
    bs = (unsigned)(shift % 64);
    for (int i = NMI_REPLAY_WORDS - 1; i >= 0; i--) {
        uint64_t v = 0;
        int src = i - (int)ws;
        if (src >= 0) {
            v = r->bits[src] << bs;
            if (bs != 0 && src >= 1) {
                v |= r->bits[src - 1] >> (64 - bs);
            }
        }
        r->bits[i] = v;
    }
}

bool
nmi_replay_commit(nmi_replay *r, uint64_t counter)
{
    uint64_t age;

    if (!nmi_replay_check(r, counter)) {
        return false;
    }
    if (counter >= r->next) {
        replay_shift(r, counter - r->next + 1);
        r->next = counter + 1; /* counter < UINT64_MAX: no overflow */
        r->bits[0] |= 1;
        return true;
    }
    age = r->next - 1 - counter;
    r->bits[age / 64] |= 1ull << (age % 64);
    return true;
}

/* ------------------------------------------------------------- session */

int
nmi_session_init(nmi_session *s, const uint8_t h[32], bool initiator)
{
    int rc;
    uint32_t prefix;

    if (s == NULL || h == NULL) {
        return nmi_err(NM_EINVAL, "session: NULL argument");
    }
    memset(s, 0, sizeof(*s));
    s->initiator = initiator;
    s->session_id = nmi_load_le64(h);
    rc = nmi_net_kdf(initiator ? s->tx_key : s->rx_key, h, 32, "initiator-tx");
    if (rc == NM_OK) {
        rc = nmi_net_kdf(initiator ? s->rx_key : s->tx_key, h, 32,
                         "initiator-rx");
    }
    if (rc == NM_OK) {
        rc = nmi_net_kdf(initiator ? s->hop_tx_key : s->hop_rx_key, h, 32,
                         "route-hop-tx-v1");
    }
    if (rc == NM_OK) {
        rc = nmi_net_kdf(initiator ? s->hop_rx_key : s->hop_tx_key, h, 32,
                         "route-hop-rx-v1");
    }
    if (rc != NM_OK) {
        nmi_session_wipe(s);
        return rc;
    }
    prefix = (uint32_t)s->session_id ^ (uint32_t)(s->session_id >> 32);
    nmi_store_le32(s->nonce_prefix, prefix);
    nmi_replay_init(&s->rx);
    /* Idempotent; selects libsodium's fastest ChaCha20 for this CPU. */
    rc = sodium_init();
    (void)rc;
    return NM_OK;
}

int
nmi_session_from_handshake(nmi_session *s, const nmi_noise_hs *hs)
{
    uint8_t h[32];
    int rc;

    if (s == NULL || hs == NULL) {
        return nmi_err(NM_EINVAL, "session: NULL argument");
    }
    if (!nmi_noise_is_done(hs)) {
        return nmi_err(NM_EINVAL, "session: handshake not finished");
    }
    nmi_noise_handshake_hash(hs, h);
    rc = nmi_session_init(s, h, hs->initiator);
    if (rc == NM_OK && hs->has_rs) {
        memcpy(s->remote_static, hs->rs, sizeof(s->remote_static));
    }
    sodium_memzero(h, sizeof(h));
    return rc;
}

void
nmi_session_nonce(const nmi_session *s, uint64_t counter,
                  uint8_t nonce[NMI_SESSION_NONCELEN])
{
    memcpy(nonce, s->nonce_prefix, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(nonce + 4, &counter, 8); /* one store on the hot path */
#else
    nmi_store_le64(nonce + 4, counter);
#endif
}

int
nmi_session_seal(nmi_session *s, const uint8_t *ad, size_t adlen,
                 const uint8_t *pt, size_t ptlen, uint8_t *out,
                 uint64_t *counter)
{
    uint8_t nonce[NMI_SESSION_NONCELEN];
    unsigned long long clen;

    if (nmi_unlikely(s == NULL || out == NULL || counter == NULL ||
                     (pt == NULL && ptlen > 0) || (ad == NULL && adlen > 0))) {
        return nmi_err(NM_EINVAL, "session: NULL argument");
    }
    /* UINT64_MAX is never accepted by a receiver, so it is never sent. */
    if (nmi_unlikely(s->tx_counter == UINT64_MAX)) {
        return nmi_err(NM_ERANGE, "session: TX counter exhausted, "
                                  "re-handshake");
    }
    nmi_session_nonce(s, s->tx_counter, nonce);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, ptlen, ad, adlen,
                                              NULL, nonce, s->tx_key);
    *counter = s->tx_counter++;
    return NM_OK;
}

int
nmi_session_open(nmi_session *s, uint64_t counter, const uint8_t *ad,
                 size_t adlen, const uint8_t *ct, size_t ctlen, uint8_t *out)
{
    uint8_t nonce[NMI_SESSION_NONCELEN];
    uint8_t dummy[1];
    unsigned long long mlen;

    if (nmi_unlikely(s == NULL || ct == NULL ||
                     (out == NULL && ctlen > NMI_SESSION_TAGLEN) ||
                     (ad == NULL && adlen > 0))) {
        return nmi_err(NM_EINVAL, "session: NULL argument");
    }
    if (nmi_unlikely(ctlen < NMI_SESSION_TAGLEN)) {
        return nmi_err(NM_EDECODE, "session: ciphertext shorter than the "
                                   "tag");
    }
    if (!nmi_replay_check(&s->rx, counter)) {
        return nmi_err(NM_EPROTO, "session: counter replayed or outside "
                                  "the window");
    }
    nmi_session_nonce(s, counter, nonce);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(
            out != NULL ? out : dummy, &mlen, NULL, ct, ctlen, ad, adlen,
            nonce, s->rx_key) != 0) {
        if (out != NULL && ctlen > NMI_SESSION_TAGLEN && out != ct) {
            sodium_memzero(out, ctlen - NMI_SESSION_TAGLEN);
        }
        return nmi_err(NM_ECRYPTO, "cryptographic verification failed");
    }
    (void)nmi_replay_commit(&s->rx, counter);
    return NM_OK;
}

void
nmi_session_wipe(nmi_session *s)
{
    if (s != NULL) {
        sodium_memzero(s, sizeof(*s));
    }
}
