/*
 * src/wire/membership.h - channel membership messages (subprotocol 0x0A00,
 * upstream channel/membership.rs): Subscribe, Unsubscribe, Ack. One
 * message per event, stream_id = 0x0A00, flags 0. docs/PROTOCOL.md §8.12.
 *
 *   Subscribe   00 ‖ nonce u64 ‖ nlen u8 ‖ name ‖ [tlen u16 ‖ token chain]
 *                  ‖ [qlen u8 ‖ queue group]
 *   Unsubscribe 01 ‖ nonce u64 ‖ nlen u8 ‖ name
 *   Ack         02 ‖ nonce u64 ‖ accepted u8 (0/1) ‖ reason u8
 *
 * Decoded names, tokens and queue groups borrow the input buffer. Pure
 * codecs, no allocation.
 */
#ifndef NMI_WIRE_MEMBERSHIP_H
#define NMI_WIRE_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/common.h>
#include <netmesh/token.h>

enum nmi_wire_membership_type {
    NMI_WIRE_MEMB_SUBSCRIBE = 0,
    NMI_WIRE_MEMB_UNSUBSCRIBE = 1,
    NMI_WIRE_MEMB_ACK = 2,
};

/* Ack reasons. 5 exists in later upstream revisions; it is decoded (so
 * such an Ack is not lost) but netmesh does not send it. */
enum nmi_wire_ack_reason {
    NMI_WIRE_ACK_OK = 0,
    NMI_WIRE_ACK_UNAUTHORIZED = 1,
    NMI_WIRE_ACK_UNKNOWN_CHANNEL = 2,
    NMI_WIRE_ACK_RATE_LIMITED = 3,
    NMI_WIRE_ACK_TOO_MANY_CHANNELS = 4,
    NMI_WIRE_ACK_IDENTITY_NOT_ESTABLISHED = 5,
};
#define NMI_WIRE_ACK_REASON_MAX 5

/* Longest queue-group name (its length prefix is a u8). */
#define NMI_WIRE_QUEUE_GROUP_MAX 255
/* An Ack is always 11 bytes; an Unsubscribe is 10 + name. */
#define NMI_WIRE_MEMB_ACK_LEN 11

typedef struct nmi_wire_membership {
    uint8_t type; /* NMI_WIRE_MEMB_* */
    uint64_t nonce;
    /* Subscribe / Unsubscribe: the channel name, 1..255 bytes, valid per
     * nm_channel_name_validate. */
    const char *channel;
    size_t channel_len;
    /* Subscribe: the token chain bytes (u8 count ‖ count × 169), or
     * token_len 0 for none. Decoding leaves them opaque (as upstream: an
     * unparsable token is an authorization failure answered with Ack
     * Unauthorized, not a framing error); parse with
     * nmi_wire_membership_token_chain. */
    const uint8_t *token;
    size_t token_len;
    /* Subscribe: queue group (UTF-8, 1..255 bytes), or 0 for broadcast. */
    const char *queue_group;
    size_t queue_group_len;
    /* Ack. */
    bool accepted;
    uint8_t reason; /* NMI_WIRE_ACK_* */
} nmi_wire_membership;

/* Constructors (zero the rest; pointers are borrowed). */
void nmi_wire_membership_subscribe(nmi_wire_membership *m, uint64_t nonce,
                                   const char *channel, size_t channel_len,
                                   const uint8_t *token, size_t token_len,
                                   const char *queue_group, size_t qg_len);
void nmi_wire_membership_unsubscribe(nmi_wire_membership *m, uint64_t nonce,
                                     const char *channel, size_t channel_len);
void nmi_wire_membership_ack(nmi_wire_membership *m, uint64_t nonce,
                             bool accepted, uint8_t reason);

/* Bytes nmi_wire_membership_encode writes (0 for an unknown type). */
size_t nmi_wire_membership_len(const nmi_wire_membership *m);

/* Encode as upstream does: Subscribe always carries the u16 token length
 * (0 when there is no token) and carries the queue-group field only when
 * there is a group. Checks: a valid channel name, a token that parses as
 * a token chain (nm_token_chain_decode) when present, a queue group of at
 * most 255 bytes of valid UTF-8, reason <= 5. Errors: NM_EINVAL,
 * NM_ETOOBIG (cap too small; nothing written). */
int nmi_wire_membership_encode(const nmi_wire_membership *m, uint8_t *out,
                               size_t cap, size_t *written);

/* Decode exactly one message from buf[0..len). Accepts every form
 * upstream accepts: a Subscribe may stop right after the name (no token)
 * or after the token (no queue group); tlen 0 and qlen 0 mean absent.
 * Rejects: unknown type, truncation anywhere (including a lone byte where
 * the u16 token length belongs), an empty or invalid channel name, a
 * non-UTF-8 queue group, accepted not 0/1, reason > 5, trailing bytes.
 * Errors: NM_EDECODE, NM_EINVAL. */
NM_NODISCARD int nmi_wire_membership_decode(const uint8_t *buf, size_t len,
                                            nmi_wire_membership *m);

/* Parse a Subscribe's token bytes as a token chain (framing only:
 * nm_token_chain_decode; verify with nm_token_chain_verify). Errors:
 * NM_ENOTFOUND (no token), NM_EDECODE (not a chain), NM_EINVAL. */
NM_NODISCARD int nmi_wire_membership_token_chain(const nmi_wire_membership *m,
                                                 nm_token_chain *out);

/* Strict UTF-8 check (no overlongs, surrogates or code points above
 * U+10FFFF), the rule Rust's str::from_utf8 applies. */
bool nmi_wire_utf8_valid(const uint8_t *s, size_t len);

#endif
