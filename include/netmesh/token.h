/*
 * netmesh/token.h - permission tokens: ed25519-signed, scoped, expiring,
 * delegable grants, byte-compatible with upstream Net's PermissionToken.
 *
 * Wire form (169 bytes, integers little-endian, docs/PROTOCOL.md §2):
 *
 *   off size field
 *     0   32 issuer            entity id of the signer
 *    32   32 subject           entity id the token authorizes
 *    64    4 scope             NM_SCOPE_* bits
 *    68    8 channel_hash      XXH3-64 of the channel name (nm_channel_hash)
 *    76    4 issuer_generation the issuer's credential epoch
 *    80    8 not_before        Unix seconds
 *    88    8 not_after         Unix seconds (exclusive)
 *    96    1 delegation_depth  how many more times it may be delegated
 *    97    8 nonce             random
 *   105   64 signature         ed25519 by issuer over bytes 0..105
 *
 * A token is live while  not_before - skew <= now < not_after + skew,
 * and its window (not_after - not_before) is at most one year.
 *
 * Time: every `now` parameter is Unix seconds; 0 means "read the wall
 * clock". Tokens are plain values (nm_token); only the cache is a handle.
 * Every function is thread-safe unless it says otherwise.
 *
 * Error codes: NM_ECRYPTO for any signature failure (no finer reason),
 * NM_EEXPIRED for time-window failures, NM_EUNAUTHORIZED for wrong
 * scope / subject / channel / issuer / delegation rights, NM_EDECODE for
 * malformed bytes, NM_EINVAL / NM_ERANGE for bad arguments. nm_errdetail()
 * has a sentence (generic for NM_ECRYPTO).
 */
#ifndef NETMESH_TOKEN_H
#define NETMESH_TOKEN_H

#include <stdbool.h>

#include <netmesh/common.h>
#include <netmesh/identity.h>
#include <netmesh/name.h>

NM_BEGIN_DECLS

/* Encoded token size. */
#define NM_TOKEN_BYTES 169
/* Bytes covered by the signature (the token minus its signature). */
#define NM_TOKEN_SIGNED_BYTES 105
/* Most links in a token chain. */
#define NM_TOKEN_CHAIN_MAX 8
/* Largest encoded chain: u8 count + NM_TOKEN_CHAIN_MAX tokens. */
#define NM_TOKEN_CHAIN_MAX_BYTES (1 + NM_TOKEN_CHAIN_MAX * NM_TOKEN_BYTES)
/* Longest token validity window: one year (365 days) in seconds. */
#define NM_TOKEN_TTL_MAX_SECS 31536000u
/* Default and maximum clock-skew tolerance of verification, seconds. */
#define NM_TOKEN_SKEW_DEFAULT_SECS 60u
#define NM_TOKEN_SKEW_MAX_SECS 300u

/* nm_token_bytes - NM_TOKEN_BYTES, for FFI users. */
NM_API size_t nm_token_bytes(void);
/* nm_token_signed_bytes - NM_TOKEN_SIGNED_BYTES. */
NM_API size_t nm_token_signed_bytes(void);
/* nm_token_chain_max - NM_TOKEN_CHAIN_MAX. */
NM_API size_t nm_token_chain_max(void);
/* nm_token_chain_max_bytes - NM_TOKEN_CHAIN_MAX_BYTES. */
NM_API size_t nm_token_chain_max_bytes(void);
/* nm_token_ttl_max_secs - NM_TOKEN_TTL_MAX_SECS. */
NM_API uint64_t nm_token_ttl_max_secs(void);
/* nm_token_skew_default_secs - NM_TOKEN_SKEW_DEFAULT_SECS. */
NM_API uint32_t nm_token_skew_default_secs(void);
/* nm_token_skew_max_secs - NM_TOKEN_SKEW_MAX_SECS. */
NM_API uint32_t nm_token_skew_max_secs(void);

/* Scope bits (upstream TokenScope). */
enum nm_token_scope {
    NM_SCOPE_PUBLISH = 1u,
    NM_SCOPE_SUBSCRIBE = 2u,
    NM_SCOPE_ADMIN = 4u,
    NM_SCOPE_DELEGATE = 8u,
    /* Authorizes every channel, whatever channel_hash says. */
    NM_SCOPE_WILDCARD = 16u,
    /* Every action on one channel; deliberately without WILDCARD. */
    NM_SCOPE_ALL = 0xFu
};
/* Every scope bit this version knows (ALL | WILDCARD). Issuing refuses
 * other bits; decoding keeps them (they are signed data). */
#define NM_SCOPE_KNOWN 0x1Fu

/* A decoded token. Plain data: copy it freely. */
typedef struct nm_token {
    uint8_t issuer[NM_ENTITY_ID_BYTES];
    uint8_t subject[NM_ENTITY_ID_BYTES];
    uint32_t scope;
    uint64_t channel_hash;
    uint32_t issuer_generation;
    uint64_t not_before;
    uint64_t not_after;
    uint8_t delegation_depth;
    uint64_t nonce;
    uint8_t signature[NM_SIGNATURE_BYTES];
} nm_token;

/* nm_token_now - the wall clock in Unix seconds (what `now = 0` means). */
NM_API uint64_t nm_token_now(void);

/* nm_token_encode - write the 169-byte wire form of t into out. Encodes
 * whatever the struct holds (it does not sign). Errors: NM_EINVAL. */
NM_API int nm_token_encode(const nm_token *t, uint8_t out[NM_TOKEN_BYTES]);

/* nm_token_decode - parse exactly NM_TOKEN_BYTES bytes into *out. Checks
 * the framing only, NOT the signature (use nm_token_verify). Errors:
 * NM_EDECODE (len != 169), NM_EINVAL (NULL). *out is untouched on error. */
NM_API NM_NODISCARD int nm_token_decode(const uint8_t *in, size_t len,
                                        nm_token *out);

/* nm_token_try_issue - sign a new token from `issuer` to `subject`:
 * not_before = now (wall clock), not_after = now + ttl_secs, generation 0,
 * a fresh random nonce. scope must be non-zero and within NM_SCOPE_KNOWN.
 * Errors: NM_EINVAL (NULL argument, bad scope, ttl_secs == 0 — the detail
 * says "zero TTL"), NM_ERANGE (ttl_secs > NM_TOKEN_TTL_MAX_SECS),
 * NM_ECRYPTO. Writes *out only on success. */
NM_API int nm_token_try_issue(const nm_identity *issuer,
                              const uint8_t subject[NM_ENTITY_ID_BYTES],
                              uint32_t scope, uint64_t channel_hash,
                              uint64_t ttl_secs, uint8_t delegation_depth,
                              nm_token *out);

/* nm_token_issue - like nm_token_try_issue, but a zero ttl_secs is
 * soft-clamped to 1 second instead of refused. */
NM_API int nm_token_issue(const nm_identity *issuer,
                          const uint8_t subject[NM_ENTITY_ID_BYTES],
                          uint32_t scope, uint64_t channel_hash,
                          uint64_t ttl_secs, uint8_t delegation_depth,
                          nm_token *out);

/* nm_token_try_issue_at - nm_token_try_issue with an explicit issuer
 * generation and issue time (`now`, Unix seconds; 0 = wall clock). For
 * issuers that track key rotation, and for tests. Same errors, plus
 * NM_ERANGE when now + ttl_secs overflows. */
NM_API int nm_token_try_issue_at(const nm_identity *issuer,
                                 uint32_t issuer_generation, uint64_t now,
                                 const uint8_t subject[NM_ENTITY_ID_BYTES],
                                 uint32_t scope, uint64_t channel_hash,
                                 uint64_t ttl_secs, uint8_t delegation_depth,
                                 nm_token *out);

/* What nm_token_verify checks besides the signature and time window.
 * Fill with nm_token_verify_opts_init, then set what you need. */
typedef struct nm_token_verify_opts {
    /* Required action bits; the token must carry all of them. 0 = do not
     * check scope. */
    uint32_t scope;
    /* When true the token must authorize channel_hash (its channel_hash
     * equals it, or it carries NM_SCOPE_WILDCARD). */
    bool check_channel;
    uint64_t channel_hash;
    /* When non-NULL, token.subject must equal these 32 bytes (for a chain:
     * the leaf's subject, i.e. the presenting peer). Borrowed. */
    const uint8_t *subject;
    /* Unix seconds; 0 = wall clock. */
    uint64_t now;
    /* Clock-skew tolerance, 0..NM_TOKEN_SKEW_MAX_SECS. */
    uint32_t skew_secs;
} nm_token_verify_opts;

/* nm_token_verify_opts_init - defaults: no scope/channel/subject check,
 * now = wall clock, skew = NM_TOKEN_SKEW_DEFAULT_SECS. */
NM_API void nm_token_verify_opts_init(nm_token_verify_opts *o);

/* nm_token_verify - verify t: signature by t->issuer (NM_ECRYPTO), the
 * time window with skew (NM_EEXPIRED, also for a window longer than a
 * year), then subject, scope and channel as requested by o
 * (NM_EUNAUTHORIZED). o may be NULL for the defaults. NM_EINVAL for NULL t
 * or skew > NM_TOKEN_SKEW_MAX_SECS. Checks run in that order, so a
 * tampered token always reports NM_ECRYPTO. */
NM_API NM_NODISCARD int nm_token_verify(const nm_token *t,
                                        const nm_token_verify_opts *o);

/* nm_token_authorizes - pure predicate, no signature or time check: does t
 * carry every bit of `action` (non-zero) on `channel_hash`
 * (exact match or WILDCARD)? Returns 1 or 0; 0 for action 0 or NULL t. */
NM_API int nm_token_authorizes(const nm_token *t, uint32_t action,
                               uint64_t channel_hash);

/* nm_token_delegate - re-grant `parent` to new_subject, signed by `signer`,
 * which must be parent->subject. The parent must verify now (signature and
 * window, zero skew), carry NM_SCOPE_DELEGATE and have depth > 0. Child:
 * scope = parent.scope & scope (must be non-zero), depth - 1, channel,
 * generation and not_after inherited, not_before = now (wall clock), fresh
 * nonce. Errors: NM_EINVAL (NULL, empty resulting scope), NM_ECRYPTO /
 * NM_EEXPIRED (parent invalid), NM_EUNAUTHORIZED (no DELEGATE, depth 0,
 * signer is not the subject). Writes *out only on success. */
NM_API int nm_token_delegate(const nm_token *parent, const nm_identity *signer,
                             const uint8_t new_subject[NM_ENTITY_ID_BYTES],
                             uint32_t scope, nm_token *out);

/* nm_token_delegate_at - nm_token_delegate with an explicit `now`
 * (Unix seconds, 0 = wall clock). */
NM_API int nm_token_delegate_at(const nm_token *parent,
                                const nm_identity *signer, uint64_t now,
                                const uint8_t new_subject[NM_ENTITY_ID_BYTES],
                                uint32_t scope, nm_token *out);

/* A delegation chain, root first: links[0] is issued by a trusted root,
 * links[count-1] is held by the presenting peer. Plain data. */
typedef struct nm_token_chain {
    uint8_t count;
    nm_token links[NM_TOKEN_CHAIN_MAX];
} nm_token_chain;

/* nm_token_chain_init - an empty chain. */
NM_API void nm_token_chain_init(nm_token_chain *c);

/* nm_token_chain_push - append a copy of t as the new leaf. Errors:
 * NM_EINVAL, NM_ERANGE (already NM_TOKEN_CHAIN_MAX links). */
NM_API int nm_token_chain_push(nm_token_chain *c, const nm_token *t);

/* nm_token_chain_encoded_len - bytes nm_token_chain_encode writes
 * (1 + count * 169); 0 for NULL or an out-of-range count. */
NM_API size_t nm_token_chain_encoded_len(const nm_token_chain *c);

/* nm_token_chain_encode - write `u8 count || count x 169` into out[0..cap)
 * and the length into *written. Errors: NM_EINVAL (NULL, count 0 or
 * > NM_TOKEN_CHAIN_MAX), NM_ETOOBIG (cap too small). */
NM_API int nm_token_chain_encode(const nm_token_chain *c, uint8_t *out,
                                 size_t cap, size_t *written);

/* nm_token_chain_decode - parse exactly one chain from in[0..len): count
 * 1..NM_TOKEN_CHAIN_MAX and len == 1 + count * 169 (no trailing bytes).
 * Framing only; signatures are checked by nm_token_chain_verify.
 * Errors: NM_EDECODE, NM_EINVAL (NULL). *out is untouched on error. */
NM_API NM_NODISCARD int nm_token_chain_decode(const uint8_t *in, size_t len,
                                              nm_token_chain *out);

/* nm_token_chain_verify - verify a chain against trusted root issuers
 * (`roots`: nroots entity ids, 32 bytes each, contiguous, borrowed):
 *  - links[0].issuer is one of roots (NM_EUNAUTHORIZED);
 *  - every link passes nm_token_verify(link, o) — signature, window, and
 *    o's scope / channel; o->subject is checked against the LEAF only;
 *  - each child: issuer == parent.subject, parent carries DELEGATE, depth
 *    strictly decreasing, scope a subset of the parent's, window nested
 *    in the parent's (NM_EUNAUTHORIZED).
 * Errors also: NM_EINVAL (NULL, nroots 0, count 0 or > 8). o may be NULL
 * (defaults). */
NM_API NM_NODISCARD int nm_token_chain_verify(const nm_token_chain *c,
                                              const uint8_t *roots,
                                              size_t nroots,
                                              const nm_token_verify_opts *o);

/* ---------------------------------------------------------------- cache */

/* Most tokens with distinct scopes kept per (subject, channel) slot. */
#define NM_TOKEN_CACHE_SLOT_TOKENS 4
/* nm_token_cache_slot_tokens - NM_TOKEN_CACHE_SLOT_TOKENS. */
NM_API size_t nm_token_cache_slot_tokens(void);

/* A bounded cache of verified tokens keyed by (subject, channel hash);
 * WILDCARD tokens live in a per-subject wildcard slot. Opaque. Every
 * function on it is thread-safe (one internal mutex); only
 * nm_token_cache_free must not race with other calls. */
typedef struct nm_token_cache nm_token_cache;

/* nm_token_cache_new - a cache of at most `capacity` slots (1..2^20) that
 * checks time windows with skew_secs (0..NM_TOKEN_SKEW_MAX_SECS). On
 * success *out owns the cache (free with nm_token_cache_free). Errors:
 * NM_EINVAL, NM_ENOMEM. */
NM_API int nm_token_cache_new(size_t capacity, uint32_t skew_secs,
                              nm_token_cache **out);

/* nm_token_cache_free - free the cache and every token in it. NULL ok. */
NM_API void nm_token_cache_free(nm_token_cache *c);

/* nm_token_cache_install - verify t's signature and window at `now` and
 * copy it into the slot (t->subject, t->channel_hash), replacing a token of
 * the same scope. A full slot drops its soonest-expiring token. Errors:
 * NM_ECRYPTO, NM_EEXPIRED, NM_EINVAL, NM_ETOOBIG (capacity slots in use,
 * even after sweeping expired tokens). */
NM_API int nm_token_cache_install(nm_token_cache *c, const nm_token *t,
                                  uint64_t now);

/* nm_token_cache_lookup - find a cached token for `subject` that is live at
 * `now` and authorizes `action` on channel_hash (exact slot first, then
 * the subject's wildcard slot). Copies it to *out when out is non-NULL.
 * Errors: NM_ENOTFOUND, NM_EINVAL. */
NM_API NM_NODISCARD int nm_token_cache_lookup(
    nm_token_cache *c, const uint8_t subject[NM_ENTITY_ID_BYTES],
    uint64_t channel_hash, uint32_t action, uint64_t now, nm_token *out);

/* nm_token_cache_revoke - drop every cached token of `subject` for
 * channel_hash (wildcard == true: the subject's wildcard slot instead).
 * Returns the number of tokens dropped (>= 0), or NM_EINVAL. */
NM_API int nm_token_cache_revoke(nm_token_cache *c,
                                 const uint8_t subject[NM_ENTITY_ID_BYTES],
                                 uint64_t channel_hash, bool wildcard);

/* nm_token_cache_sweep - drop every token expired at `now` (not_after +
 * skew <= now). Returns the number dropped (>= 0), or NM_EINVAL. */
NM_API int nm_token_cache_sweep(nm_token_cache *c, uint64_t now);

/* nm_token_cache_count - number of cached tokens into *out. */
NM_API int nm_token_cache_count(nm_token_cache *c, size_t *out);

NM_END_DECLS

#endif
