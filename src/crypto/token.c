/*
 * src/crypto/token.c - permission tokens (upstream Net's PermissionToken),
 * delegation, chains and the token cache. See include/netmesh/token.h and
 * docs/PROTOCOL.md §2 for the wire form and the checks.
 */
#include <netmesh/token.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "crypto/identity_impl.h"

/* Field offsets of the wire form. */
enum {
    TOK_OFF_ISSUER = 0,
    TOK_OFF_SUBJECT = 32,
    TOK_OFF_SCOPE = 64,
    TOK_OFF_CHANNEL = 68,
    TOK_OFF_GENERATION = 76,
    TOK_OFF_NOT_BEFORE = 80,
    TOK_OFF_NOT_AFTER = 88,
    TOK_OFF_DEPTH = 96,
    TOK_OFF_NONCE = 97,
    TOK_OFF_SIGNATURE = 105,
};

_Static_assert(TOK_OFF_SIGNATURE == NM_TOKEN_SIGNED_BYTES,
               "signed part is 105 bytes");
_Static_assert(NM_TOKEN_SIGNED_BYTES + NM_SIGNATURE_BYTES == NM_TOKEN_BYTES,
               "token is 169 bytes");
_Static_assert(NM_TOKEN_TTL_MAX_SECS == 365u * 24u * 60u * 60u,
               "one year of seconds");

size_t
nm_token_bytes(void)
{
    return NM_TOKEN_BYTES;
}

size_t
nm_token_signed_bytes(void)
{
    return NM_TOKEN_SIGNED_BYTES;
}

size_t
nm_token_chain_max(void)
{
    return NM_TOKEN_CHAIN_MAX;
}

size_t
nm_token_chain_max_bytes(void)
{
    return NM_TOKEN_CHAIN_MAX_BYTES;
}

uint64_t
nm_token_ttl_max_secs(void)
{
    return NM_TOKEN_TTL_MAX_SECS;
}

uint32_t
nm_token_skew_default_secs(void)
{
    return NM_TOKEN_SKEW_DEFAULT_SECS;
}

uint32_t
nm_token_skew_max_secs(void)
{
    return NM_TOKEN_SKEW_MAX_SECS;
}

size_t
nm_token_cache_slot_tokens(void)
{
    return NM_TOKEN_CACHE_SLOT_TOKENS;
}

uint64_t
nm_token_now(void)
{
    return nmi_wall_ns() / 1000000000ull;
}

static uint64_t
resolve_now(uint64_t now)
{
    return now != 0 ? now : nm_token_now();
}

static inline uint64_t
sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ------------------------------------------------------------ wire form */

static void
token_put_signed(const nm_token *t, uint8_t out[NM_TOKEN_SIGNED_BYTES])
{
    memcpy(out + TOK_OFF_ISSUER, t->issuer, NM_ENTITY_ID_BYTES);
    memcpy(out + TOK_OFF_SUBJECT, t->subject, NM_ENTITY_ID_BYTES);
    nmi_store_le32(out + TOK_OFF_SCOPE, t->scope);
    nmi_store_le64(out + TOK_OFF_CHANNEL, t->channel_hash);
    nmi_store_le32(out + TOK_OFF_GENERATION, t->issuer_generation);
    nmi_store_le64(out + TOK_OFF_NOT_BEFORE, t->not_before);
    nmi_store_le64(out + TOK_OFF_NOT_AFTER, t->not_after);
    out[TOK_OFF_DEPTH] = t->delegation_depth;
    nmi_store_le64(out + TOK_OFF_NONCE, t->nonce);
}

int
nm_token_encode(const nm_token *t, uint8_t out[NM_TOKEN_BYTES])
{
    if (t == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "token_encode: NULL argument");
    }
    token_put_signed(t, out);
    memcpy(out + TOK_OFF_SIGNATURE, t->signature, NM_SIGNATURE_BYTES);
    return NM_OK;
}

int
nm_token_decode(const uint8_t *in, size_t len, nm_token *out)
{
    nm_token t;

    if (out == NULL || (in == NULL && len > 0)) {
        return nmi_err(NM_EINVAL, "token_decode: NULL argument");
    }
    if (len != NM_TOKEN_BYTES) {
        return nmi_err(NM_EDECODE, "token must be exactly %d bytes, got %zu",
                       NM_TOKEN_BYTES, len);
    }
    memcpy(t.issuer, in + TOK_OFF_ISSUER, NM_ENTITY_ID_BYTES);
    memcpy(t.subject, in + TOK_OFF_SUBJECT, NM_ENTITY_ID_BYTES);
    t.scope = nmi_load_le32(in + TOK_OFF_SCOPE);
    t.channel_hash = nmi_load_le64(in + TOK_OFF_CHANNEL);
    t.issuer_generation = nmi_load_le32(in + TOK_OFF_GENERATION);
    t.not_before = nmi_load_le64(in + TOK_OFF_NOT_BEFORE);
    t.not_after = nmi_load_le64(in + TOK_OFF_NOT_AFTER);
    t.delegation_depth = in[TOK_OFF_DEPTH];
    t.nonce = nmi_load_le64(in + TOK_OFF_NONCE);
    memcpy(t.signature, in + TOK_OFF_SIGNATURE, NM_SIGNATURE_BYTES);
    *out = t;
    return NM_OK;
}

/* ---------------------------------------------------------------- issue */

/* Fill issuer, nonce and signature of *t from `id`. */
static int
token_sign(nm_token *t, const nm_identity *id)
{
    uint8_t payload[NM_TOKEN_SIGNED_BYTES];
    uint8_t nonce[8];

    memcpy(t->issuer, id->pk, NM_ENTITY_ID_BYTES);
    randombytes_buf(nonce, sizeof(nonce));
    t->nonce = nmi_load_le64(nonce);
    token_put_signed(t, payload);
    return nm_identity_sign(id, payload, sizeof(payload), t->signature);
}

static int
check_scope_arg(uint32_t scope)
{
    if (scope == 0) {
        return nmi_err(NM_EINVAL, "token scope is empty");
    }
    if (scope & ~(uint32_t)NM_SCOPE_KNOWN) {
        return nmi_err(NM_EINVAL, "token scope 0x%x has unknown bits", scope);
    }
    return NM_OK;
}

int
nm_token_try_issue_at(const nm_identity *issuer, uint32_t issuer_generation,
                      uint64_t now, const uint8_t subject[NM_ENTITY_ID_BYTES],
                      uint32_t scope, uint64_t channel_hash, uint64_t ttl_secs,
                      uint8_t delegation_depth, nm_token *out)
{
    nm_token t;
    int rc;

    if (issuer == NULL || subject == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "token_issue: NULL argument");
    }
    if ((rc = check_scope_arg(scope)) != NM_OK) {
        return rc;
    }
    if (ttl_secs == 0) {
        return nmi_err(NM_EINVAL, "zero TTL: the token would be born "
                                  "expired (nm_token_issue clamps to 1 s)");
    }
    if (ttl_secs > NM_TOKEN_TTL_MAX_SECS) {
        return nmi_err(NM_ERANGE, "TTL %llu s exceeds the 1-year maximum",
                       (unsigned long long)ttl_secs);
    }
    if ((rc = nmi_sodium_ready()) != NM_OK) {
        return rc;
    }
    now = resolve_now(now);
    if (now > UINT64_MAX - ttl_secs) {
        return nmi_err(NM_ERANGE, "not_after overflows");
    }
    memset(&t, 0, sizeof(t));
    memcpy(t.subject, subject, NM_ENTITY_ID_BYTES);
    t.scope = scope;
    t.channel_hash = channel_hash;
    t.issuer_generation = issuer_generation;
    t.not_before = now;
    t.not_after = now + ttl_secs;
    t.delegation_depth = delegation_depth;
    if ((rc = token_sign(&t, issuer)) != NM_OK) {
        return rc;
    }
    *out = t;
    return NM_OK;
}

int
nm_token_try_issue(const nm_identity *issuer,
                   const uint8_t subject[NM_ENTITY_ID_BYTES], uint32_t scope,
                   uint64_t channel_hash, uint64_t ttl_secs,
                   uint8_t delegation_depth, nm_token *out)
{
    return nm_token_try_issue_at(issuer, 0, 0, subject, scope, channel_hash,
                                 ttl_secs, delegation_depth, out);
}

int
nm_token_issue(const nm_identity *issuer,
               const uint8_t subject[NM_ENTITY_ID_BYTES], uint32_t scope,
               uint64_t channel_hash, uint64_t ttl_secs,
               uint8_t delegation_depth, nm_token *out)
{
    return nm_token_try_issue_at(issuer, 0, 0, subject, scope, channel_hash,
                                 ttl_secs == 0 ? 1 : ttl_secs,
                                 delegation_depth, out);
}

/* --------------------------------------------------------------- verify */

void
nm_token_verify_opts_init(nm_token_verify_opts *o)
{
    if (o != NULL) {
        memset(o, 0, sizeof(*o));
        o->skew_secs = NM_TOKEN_SKEW_DEFAULT_SECS;
    }
}

int
nm_token_authorizes(const nm_token *t, uint32_t action, uint64_t channel_hash)
{
    if (t == NULL || action == 0 || (t->scope & action) != action) {
        return 0;
    }
    if (t->scope & NM_SCOPE_WILDCARD) {
        return 1;
    }
    return t->channel_hash == channel_hash;
}

static int
token_check_signature(const nm_token *t)
{
    uint8_t payload[NM_TOKEN_SIGNED_BYTES];

    token_put_signed(t, payload);
    if (nm_identity_verify(t->issuer, payload, sizeof(payload),
                           t->signature) != NM_OK) {
        return nmi_err(NM_ECRYPTO, "token signature verification failed");
    }
    return NM_OK;
}

/* not_before - skew <= now < not_after + skew, window <= 1 year. */
static int
token_check_window(const nm_token *t, uint64_t now, uint32_t skew)
{
    uint64_t lo = t->not_before > skew ? t->not_before - skew : 0;
    if (now < lo) {
        return nmi_err(NM_EEXPIRED,
                       "token not yet valid (not_before %llu, "
                       "now %llu, skew %u s)",
                       (unsigned long long)t->not_before,
                       (unsigned long long)now, skew);
    }
    if (now >= sat_add(t->not_after, skew)) {
        return nmi_err(
            NM_EEXPIRED, "token expired (not_after %llu, now %llu, skew %u s)",
            (unsigned long long)t->not_after, (unsigned long long)now, skew);
    }
    if (t->not_after > t->not_before &&
        t->not_after - t->not_before > NM_TOKEN_TTL_MAX_SECS) {
        return nmi_err(NM_EEXPIRED,
                       "token validity window exceeds the 1-year maximum");
    }
    return NM_OK;
}

static bool
id_eq(const uint8_t *a, const uint8_t *b)
{
    return sodium_memcmp(a, b, NM_ENTITY_ID_BYTES) == 0;
}

/* Checks after the signature: window, subject (if subject != NULL), scope,
 * channel. */
static int
token_check_claims(const nm_token *t, const nm_token_verify_opts *o,
                   const uint8_t *subject, uint64_t now)
{
    int rc = token_check_window(t, now, o->skew_secs);
    if (rc != NM_OK) {
        return rc;
    }
    if (subject != NULL && !id_eq(t->subject, subject)) {
        return nmi_err(NM_EUNAUTHORIZED, "token is for a different subject");
    }
    if (o->scope != 0 && (t->scope & o->scope) != o->scope) {
        return nmi_err(NM_EUNAUTHORIZED,
                       "token scope 0x%x lacks required 0x%x", t->scope,
                       o->scope);
    }
    if (o->check_channel && !(t->scope & NM_SCOPE_WILDCARD) &&
        t->channel_hash != o->channel_hash) {
        return nmi_err(NM_EUNAUTHORIZED,
                       "token is for channel hash %016llx, not %016llx",
                       (unsigned long long)t->channel_hash,
                       (unsigned long long)o->channel_hash);
    }
    return NM_OK;
}

static int
resolve_opts(const nm_token_verify_opts *o, nm_token_verify_opts *dst)
{
    if (o == NULL) {
        nm_token_verify_opts_init(dst);
    } else {
        *dst = *o;
    }
    if (dst->skew_secs > NM_TOKEN_SKEW_MAX_SECS) {
        return nmi_err(NM_EINVAL, "clock skew %u s exceeds the %u s maximum",
                       dst->skew_secs, NM_TOKEN_SKEW_MAX_SECS);
    }
    dst->now = resolve_now(dst->now);
    return NM_OK;
}

int
nm_token_verify(const nm_token *t, const nm_token_verify_opts *o)
{
    nm_token_verify_opts opts;
    int rc;

    if (t == NULL) {
        return nmi_err(NM_EINVAL, "token_verify: NULL token");
    }
    if ((rc = resolve_opts(o, &opts)) != NM_OK) {
        return rc;
    }
    if ((rc = nmi_sodium_ready()) != NM_OK) {
        return rc;
    }
    if ((rc = token_check_signature(t)) != NM_OK) {
        return rc;
    }
    return token_check_claims(t, &opts, opts.subject, opts.now);
}

/* ------------------------------------------------------------- delegate */

int
nm_token_delegate_at(const nm_token *parent, const nm_identity *signer,
                     uint64_t now,
                     const uint8_t new_subject[NM_ENTITY_ID_BYTES],
                     uint32_t scope, nm_token *out)
{
    nm_token_verify_opts o;
    nm_token child;
    int rc;

    if (parent == NULL || signer == NULL || new_subject == NULL ||
        out == NULL) {
        return nmi_err(NM_EINVAL, "token_delegate: NULL argument");
    }
    now = resolve_now(now);
    /* The parent must be valid on the delegator's own clock, no skew. */
    nm_token_verify_opts_init(&o);
    o.skew_secs = 0;
    o.now = now;
    if ((rc = nm_token_verify(parent, &o)) != NM_OK) {
        return rc;
    }
    if (parent->delegation_depth == 0) {
        return nmi_err(NM_EUNAUTHORIZED,
                       "delegation depth exhausted (parent depth 0)");
    }
    if (!(parent->scope & NM_SCOPE_DELEGATE)) {
        return nmi_err(NM_EUNAUTHORIZED,
                       "parent token does not carry DELEGATE");
    }
    if (!id_eq(signer->pk, parent->subject)) {
        return nmi_err(NM_EUNAUTHORIZED,
                       "only the parent token's subject may delegate it");
    }
    uint32_t child_scope = parent->scope & scope;
    if (child_scope == 0) {
        return nmi_err(NM_EINVAL,
                       "requested scope 0x%x shares no bit with "
                       "the parent's 0x%x",
                       scope, parent->scope);
    }
    memset(&child, 0, sizeof(child));
    memcpy(child.subject, new_subject, NM_ENTITY_ID_BYTES);
    child.scope = child_scope;
    child.channel_hash = parent->channel_hash;
    child.issuer_generation = parent->issuer_generation;
    child.not_before = now;
    child.not_after = parent->not_after;
    child.delegation_depth = (uint8_t)(parent->delegation_depth - 1);
    if ((rc = token_sign(&child, signer)) != NM_OK) {
        return rc;
    }
    *out = child;
    return NM_OK;
}

int
nm_token_delegate(const nm_token *parent, const nm_identity *signer,
                  const uint8_t new_subject[NM_ENTITY_ID_BYTES],
                  uint32_t scope, nm_token *out)
{
    return nm_token_delegate_at(parent, signer, 0, new_subject, scope, out);
}

/* --------------------------------------------------------------- chains */

void
nm_token_chain_init(nm_token_chain *c)
{
    if (c != NULL) {
        memset(c, 0, sizeof(*c));
    }
}

int
nm_token_chain_push(nm_token_chain *c, const nm_token *t)
{
    if (c == NULL || t == NULL) {
        return nmi_err(NM_EINVAL, "token_chain_push: NULL argument");
    }
    if (c->count >= NM_TOKEN_CHAIN_MAX) {
        return nmi_err(NM_ERANGE, "token chain already has %d links",
                       NM_TOKEN_CHAIN_MAX);
    }
    c->links[c->count++] = *t;
    return NM_OK;
}

size_t
nm_token_chain_encoded_len(const nm_token_chain *c)
{
    if (c == NULL || c->count == 0 || c->count > NM_TOKEN_CHAIN_MAX) {
        return 0;
    }
    return 1 + (size_t)c->count * NM_TOKEN_BYTES;
}

int
nm_token_chain_encode(const nm_token_chain *c, uint8_t *out, size_t cap,
                      size_t *written)
{
    if (c == NULL || out == NULL || written == NULL) {
        return nmi_err(NM_EINVAL, "token_chain_encode: NULL argument");
    }
    size_t need = nm_token_chain_encoded_len(c);
    if (need == 0) {
        return nmi_err(NM_EINVAL, "token chain must have 1..%d links",
                       NM_TOKEN_CHAIN_MAX);
    }
    if (cap < need) {
        return nmi_err(NM_ETOOBIG, "token chain needs %zu bytes, have %zu",
                       need, cap);
    }
    out[0] = c->count;
    for (size_t i = 0; i < c->count; i++) {
        (void)nm_token_encode(&c->links[i], out + 1 + i * NM_TOKEN_BYTES);
    }
    *written = need;
    return NM_OK;
}

int
nm_token_chain_decode(const uint8_t *in, size_t len, nm_token_chain *out)
{
    nm_token_chain c;

    if (out == NULL || (in == NULL && len > 0)) {
        return nmi_err(NM_EINVAL, "token_chain_decode: NULL argument");
    }
    if (len < 1) {
        return nmi_err(NM_EDECODE, "token chain is empty");
    }
    if (in[0] == 0 || in[0] > NM_TOKEN_CHAIN_MAX) {
        return nmi_err(NM_EDECODE, "token chain count %u not in 1..%d", in[0],
                       NM_TOKEN_CHAIN_MAX);
    }
    size_t need = 1 + (size_t)in[0] * NM_TOKEN_BYTES;
    if (len != need) {
        return nmi_err(NM_EDECODE,
                       "token chain of %u links must be %zu bytes, got %zu",
                       in[0], need, len);
    }
    memset(&c, 0, sizeof(c));
    c.count = in[0];
    for (size_t i = 0; i < c.count; i++) {
        int rc = nm_token_decode(in + 1 + i * NM_TOKEN_BYTES, NM_TOKEN_BYTES,
                                 &c.links[i]);
        if (rc != NM_OK) {
            return rc; /* LCOV_EXCL_LINE: length checked above */
        }
    }
    *out = c;
    return NM_OK;
}

int
nm_token_chain_verify(const nm_token_chain *c, const uint8_t *roots,
                      size_t nroots, const nm_token_verify_opts *o)
{
    nm_token_verify_opts opts;
    int rc;

    if (c == NULL || roots == NULL || nroots == 0) {
        return nmi_err(NM_EINVAL, "token_chain_verify: NULL argument or "
                                  "no trusted roots");
    }
    if (c->count == 0 || c->count > NM_TOKEN_CHAIN_MAX) {
        return nmi_err(NM_EINVAL, "token chain must have 1..%d links",
                       NM_TOKEN_CHAIN_MAX);
    }
    if ((rc = resolve_opts(o, &opts)) != NM_OK) {
        return rc;
    }
    if ((rc = nmi_sodium_ready()) != NM_OK) {
        return rc;
    }
    /* 1. Root anchor. Scan every root (no early exit). */
    int anchored = 0;
    for (size_t i = 0; i < nroots; i++) {
        anchored |= id_eq(c->links[0].issuer, roots + i * NM_ENTITY_ID_BYTES);
    }
    if (!anchored) {
        return nmi_err(NM_EUNAUTHORIZED,
                       "chain root is not issued by a trusted root");
    }
    /* 2. Every link: signature first (a tampered link is NM_ECRYPTO), then
     * its window, scope and channel; the subject check is on the leaf. */
    for (size_t i = 0; i < c->count; i++) {
        if ((rc = token_check_signature(&c->links[i])) != NM_OK) {
            return rc;
        }
    }
    for (size_t i = 0; i < c->count; i++) {
        const uint8_t *subj = i + 1 == c->count ? opts.subject : NULL;
        if ((rc = token_check_claims(&c->links[i], &opts, subj, opts.now)) !=
            NM_OK) {
            char why[200];
            snprintf(why, sizeof(why), "%s", nm_errdetail());
            return nmi_err(rc, "chain link %zu: %s", i, why);
        }
    }
    /* 3. Continuity of each (parent, child) pair. */
    for (size_t i = 1; i < c->count; i++) {
        const nm_token *p = &c->links[i - 1];
        const nm_token *k = &c->links[i];
        if (!id_eq(k->issuer, p->subject)) {
            return nmi_err(NM_EUNAUTHORIZED,
                           "chain link %zu is not issued by the subject of "
                           "link %zu",
                           i, i - 1);
        }
        if (!(p->scope & NM_SCOPE_DELEGATE)) {
            return nmi_err(NM_EUNAUTHORIZED,
                           "chain link %zu does not carry DELEGATE", i - 1);
        }
        if (k->delegation_depth >= p->delegation_depth) {
            return nmi_err(NM_EUNAUTHORIZED,
                           "chain link %zu does not decrease the delegation "
                           "depth",
                           i);
        }
        if (k->scope & ~p->scope) {
            return nmi_err(NM_EUNAUTHORIZED,
                           "chain link %zu widens scope 0x%x to 0x%x", i,
                           p->scope, k->scope);
        }
        if (k->not_before < p->not_before || k->not_after > p->not_after) {
            return nmi_err(NM_EUNAUTHORIZED,
                           "chain link %zu outlives link %zu", i, i - 1);
        }
    }
    return NM_OK;
}

/* ---------------------------------------------------------------- cache */

typedef struct cache_slot {
    uint8_t subject[NM_ENTITY_ID_BYTES];
    uint64_t channel_hash; /* 0 in wildcard slots */
    bool wildcard;
    uint8_t ntok;
    size_t home; /* hash & mask: the bucket the key hashes to */
    nm_token tok[NM_TOKEN_CACHE_SLOT_TOKENS];
} cache_slot;

struct nm_token_cache {
    pthread_mutex_t mu;
    cache_slot **tab; /* open addressing, linear probing */
    size_t mask;      /* table size - 1 (power of two) */
    size_t capacity;  /* most slots */
    size_t nslots;
    size_t ntokens;
    uint32_t skew;
    /* SipHash key: peers choose subjects, so bucket placement must be
     * unpredictable to them. */
    uint8_t hkey[crypto_shorthash_KEYBYTES];
};

#define NMI_CACHE_MAX_CAPACITY ((size_t)1 << 20)

static size_t
cache_home(const nm_token_cache *c, const uint8_t *subject, uint64_t chan,
           bool wildcard)
{
    uint8_t key[NM_ENTITY_ID_BYTES + 9];
    uint8_t h[crypto_shorthash_BYTES];

    memcpy(key, subject, NM_ENTITY_ID_BYTES);
    nmi_store_le64(key + NM_ENTITY_ID_BYTES, chan);
    key[NM_ENTITY_ID_BYTES + 8] = wildcard ? 1 : 0;
    crypto_shorthash(h, key, sizeof(key), c->hkey);
    return (size_t)nmi_load_le64(h) & c->mask;
}

/* Index of the slot with this key, or of the empty bucket where it would
 * go (*found tells which). The table is never full (size >= 2 *
 * capacity). */
static size_t
cache_find(const nm_token_cache *c, const uint8_t *subject, uint64_t chan,
           bool wildcard, bool *found)
{
    size_t i = cache_home(c, subject, chan, wildcard);
    for (;;) {
        const cache_slot *s = c->tab[i];
        if (s == NULL) {
            *found = false;
            return i;
        }
        if (s->wildcard == wildcard && s->channel_hash == chan &&
            memcmp(s->subject, subject, NM_ENTITY_ID_BYTES) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & c->mask;
    }
}

/* Free the slot at bucket i and close the hole (backward-shift deletion,
 * so lookups never need tombstones). */
static void
cache_remove_at(nm_token_cache *c, size_t i)
{
    c->ntokens -= c->tab[i]->ntok;
    c->nslots--;
    free(c->tab[i]);
    c->tab[i] = NULL;
    size_t j = i;
    for (;;) {
        j = (j + 1) & c->mask;
        cache_slot *s = c->tab[j];
        if (s == NULL) {
            return;
        }
        size_t k = s->home;
        /* Move s into the hole unless its home lies cyclically in
         * (i, j]. */
        bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            c->tab[i] = s;
            c->tab[j] = NULL;
            i = j;
        }
    }
}

int
nm_token_cache_new(size_t capacity, uint32_t skew_secs, nm_token_cache **out)
{
    if (out == NULL || capacity == 0 || capacity > NMI_CACHE_MAX_CAPACITY) {
        return nmi_err(NM_EINVAL, "token cache capacity must be 1..%zu",
                       NMI_CACHE_MAX_CAPACITY);
    }
    if (skew_secs > NM_TOKEN_SKEW_MAX_SECS) {
        return nmi_err(NM_EINVAL, "clock skew %u s exceeds the %u s maximum",
                       skew_secs, NM_TOKEN_SKEW_MAX_SECS);
    }
    int rc = nmi_sodium_ready();
    if (rc != NM_OK) {
        return rc;
    }
    nm_token_cache *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return nmi_err(NM_ENOMEM, "token cache: out of memory");
    }
    size_t size = (size_t)nmi_pow2_ceil((uint64_t)capacity * 2);
    c->tab = calloc(size, sizeof(*c->tab));
    if (c->tab == NULL) {
        free(c);
        return nmi_err(NM_ENOMEM, "token cache: out of memory");
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c->tab);
        free(c);
        return nmi_err(NM_EINTERNAL, "token cache: mutex init failed");
    }
    c->mask = size - 1;
    c->capacity = capacity;
    c->skew = skew_secs;
    crypto_shorthash_keygen(c->hkey);
    *out = c;
    return NM_OK;
}

void
nm_token_cache_free(nm_token_cache *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i <= c->mask; i++) {
        free(c->tab[i]);
    }
    free(c->tab);
    pthread_mutex_destroy(&c->mu);
    sodium_memzero(c->hkey, sizeof(c->hkey));
    free(c);
}

static bool
tok_expired(const nm_token *t, uint64_t now, uint32_t skew)
{
    return now >= sat_add(t->not_after, skew);
}

/* Drop expired tokens; the caller holds c->mu. Returns the count. */
static size_t
cache_sweep_locked(nm_token_cache *c, uint64_t now)
{
    size_t dropped = 0;
    size_t i = 0;
    while (i <= c->mask) {
        cache_slot *s = c->tab[i];
        if (s == NULL) {
            i++;
            continue;
        }
        uint8_t keep = 0;
        for (uint8_t k = 0; k < s->ntok; k++) {
            if (tok_expired(&s->tok[k], now, c->skew)) {
                dropped++;
            } else {
                s->tok[keep++] = s->tok[k];
            }
        }
        c->ntokens -= (size_t)(s->ntok - keep);
        s->ntok = keep;
        if (keep == 0) {
            /* Backward shift may move a later slot into bucket i:
             * examine i again. */
            cache_remove_at(c, i);
        } else {
            i++;
        }
    }
    return dropped;
}

int
nm_token_cache_install(nm_token_cache *c, const nm_token *t, uint64_t now)
{
    nm_token_verify_opts o;
    int rc;

    if (c == NULL || t == NULL) {
        return nmi_err(NM_EINVAL, "token_cache_install: NULL argument");
    }
    nm_token_verify_opts_init(&o);
    o.skew_secs = c->skew;
    o.now = resolve_now(now);
    if ((rc = nm_token_verify(t, &o)) != NM_OK) {
        return rc;
    }
    bool wild = (t->scope & NM_SCOPE_WILDCARD) != 0;
    uint64_t chan = wild ? 0 : t->channel_hash;

    pthread_mutex_lock(&c->mu);
    bool found;
    size_t i = cache_find(c, t->subject, chan, wild, &found);
    if (!found) {
        if (c->nslots >= c->capacity) {
            cache_sweep_locked(c, o.now);
            i = cache_find(c, t->subject, chan, wild, &found);
        }
        if (c->nslots >= c->capacity) {
            pthread_mutex_unlock(&c->mu);
            return nmi_err(NM_ETOOBIG, "token cache is full (%zu slots)",
                           c->capacity);
        }
        cache_slot *s = calloc(1, sizeof(*s));
        if (s == NULL) {
            pthread_mutex_unlock(&c->mu);
            return nmi_err(NM_ENOMEM, "token cache: out of memory");
        }
        memcpy(s->subject, t->subject, NM_ENTITY_ID_BYTES);
        s->channel_hash = chan;
        s->wildcard = wild;
        s->home = cache_home(c, t->subject, chan, wild);
        c->tab[i] = s;
        c->nslots++;
    }
    cache_slot *s = c->tab[i];
    size_t at = s->ntok;
    for (size_t k = 0; k < s->ntok; k++) {
        if (s->tok[k].scope == t->scope) {
            at = k; /* refresh: latest install wins */
            break;
        }
    }
    if (at == NM_TOKEN_CACHE_SLOT_TOKENS) {
        /* Full slot: replace the token that expires first. */
        at = 0;
        for (size_t k = 1; k < s->ntok; k++) {
            if (s->tok[k].not_after < s->tok[at].not_after) {
                at = k;
            }
        }
    }
    if (at == s->ntok) {
        s->ntok++;
        c->ntokens++;
    }
    s->tok[at] = *t;
    pthread_mutex_unlock(&c->mu);
    return NM_OK;
}

/* First token of the slot (if any) live at now that authorizes the
 * request. Signatures were checked at install. */
static const nm_token *
cache_match(const nm_token_cache *c, const uint8_t *subject, uint64_t chan,
            bool wild, uint64_t channel_hash, uint32_t action, uint64_t now)
{
    bool found;
    size_t i = cache_find(c, subject, chan, wild, &found);
    if (!found) {
        return NULL;
    }
    const cache_slot *s = c->tab[i];
    for (size_t k = 0; k < s->ntok; k++) {
        const nm_token *t = &s->tok[k];
        uint64_t lo = t->not_before > c->skew ? t->not_before - c->skew : 0;
        if (now >= lo && !tok_expired(t, now, c->skew) &&
            nm_token_authorizes(t, action, channel_hash)) {
            return t;
        }
    }
    return NULL;
}

int
nm_token_cache_lookup(nm_token_cache *c,
                      const uint8_t subject[NM_ENTITY_ID_BYTES],
                      uint64_t channel_hash, uint32_t action, uint64_t now,
                      nm_token *out)
{
    if (c == NULL || subject == NULL || action == 0) {
        return nmi_err(NM_EINVAL, "token_cache_lookup: NULL argument or "
                                  "empty action");
    }
    now = resolve_now(now);
    pthread_mutex_lock(&c->mu);
    const nm_token *t = cache_match(c, subject, channel_hash, false,
                                    channel_hash, action, now);
    if (t == NULL) {
        t = cache_match(c, subject, 0, true, channel_hash, action, now);
    }
    if (t != NULL && out != NULL) {
        *out = *t;
    }
    pthread_mutex_unlock(&c->mu);
    if (t == NULL) {
        return nmi_err(NM_ENOTFOUND, "no cached token authorizes the request");
    }
    return NM_OK;
}

int
nm_token_cache_revoke(nm_token_cache *c,
                      const uint8_t subject[NM_ENTITY_ID_BYTES],
                      uint64_t channel_hash, bool wildcard)
{
    if (c == NULL || subject == NULL) {
        return nmi_err(NM_EINVAL, "token_cache_revoke: NULL argument");
    }
    int n = 0;
    bool found;
    pthread_mutex_lock(&c->mu);
    size_t i =
        cache_find(c, subject, wildcard ? 0 : channel_hash, wildcard, &found);
    if (found) {
        n = c->tab[i]->ntok;
        cache_remove_at(c, i);
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

int
nm_token_cache_sweep(nm_token_cache *c, uint64_t now)
{
    if (c == NULL) {
        return nmi_err(NM_EINVAL, "token_cache_sweep: NULL cache");
    }
    now = resolve_now(now);
    pthread_mutex_lock(&c->mu);
    size_t n = cache_sweep_locked(c, now);
    pthread_mutex_unlock(&c->mu);
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

int
nm_token_cache_count(nm_token_cache *c, size_t *out)
{
    if (c == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "token_cache_count: NULL argument");
    }
    pthread_mutex_lock(&c->mu);
    *out = c->ntokens;
    pthread_mutex_unlock(&c->mu);
    return NM_OK;
}
