/*
 * src/wire/control.h - the stream control messages (subprotocols
 * 0x0B00–0x0B03) and route withdrawal (0x0C01). Each message is one event
 * of an EventFrame in a packet with stream_id = NMI_WIRE_CONTROL_STREAM_ID
 * (grants, NACKs, ACK ranges, resets) or the subprotocol id (withdrawal),
 * flags 0. Decoders take exactly one message (no trailing bytes).
 * docs/PROTOCOL.md §8.11. Pure codecs, no allocation.
 */
#ifndef NMI_WIRE_CONTROL_H
#define NMI_WIRE_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include <netmesh/common.h>

#define NMI_WIRE_STREAM_WINDOW_LEN 24
#define NMI_WIRE_STREAM_NACK_LEN 24
#define NMI_WIRE_STREAM_RESET_LEN 8
#define NMI_WIRE_ACK_RANGES_HEADER_LEN 16
#define NMI_WIRE_ACK_RANGE_LEN 16
#define NMI_WIRE_ACK_RANGES_MAX 16
#define NMI_WIRE_ACK_RANGES_MIN_LEN                                           \
    (NMI_WIRE_ACK_RANGES_HEADER_LEN + NMI_WIRE_ACK_RANGE_LEN)
#define NMI_WIRE_ACK_RANGES_MAX_LEN                                           \
    (NMI_WIRE_ACK_RANGES_HEADER_LEN +                                         \
     NMI_WIRE_ACK_RANGES_MAX * NMI_WIRE_ACK_RANGE_LEN)
#define NMI_WIRE_ROUTE_WITHDRAW_LEN 16
/* The capability tag a peer advertises to receive StreamAckRanges. */
#define NMI_WIRE_ACK_RANGES_CAP "net.reliable.stream_ack_ranges@1"

/* 0x0B00, receiver -> sender credit grant (absolute, self-healing). */
typedef struct nmi_wire_stream_window {
    uint64_t stream_id;
    uint64_t total_consumed; /* cumulative bytes accounted on receive;
                                the sender clamps it to its bytes sent */
    uint64_t ack_seq;        /* next_expected (upstream sends 0 on
                                unreliable streams; we send next_expected
                                on all: docs/PROTOCOL.md §10.4) */
} nmi_wire_stream_window;

/* 0x0B01, receiver -> sender: next_expected is missing, and bit i of
 * bitmap means next_expected + 1 + i is missing too. */
typedef struct nmi_wire_stream_nack {
    uint64_t stream_id;
    uint64_t next_expected;
    uint64_t bitmap;
} nmi_wire_stream_nack;

/* 0x0B02, sender -> receiver: the stream gave up retransmitting. */
typedef struct nmi_wire_stream_reset {
    uint64_t stream_id;
} nmi_wire_stream_reset;

/* One half-open received run [start, end). */
typedef struct nmi_wire_ack_range {
    uint64_t start;
    uint64_t end;
} nmi_wire_ack_range;

/* 0x0B03, receiver -> sender SACK: every seq < ack_seq received, plus
 * 1..16 runs strictly above ack_seq, newest first (descending), merged
 * (each range ends strictly below the previous one's start). */
typedef struct nmi_wire_ack_ranges {
    uint64_t stream_id;
    uint64_t ack_seq;
    uint8_t count;
    nmi_wire_ack_range ranges[NMI_WIRE_ACK_RANGES_MAX];
} nmi_wire_ack_ranges;

/* 0x0C01: the sender no longer forwards toward dest (via = the session
 * peer it came from); seq is the sender's monotonic counter. */
typedef struct nmi_wire_route_withdraw {
    uint64_t dest;
    uint64_t seq;
} nmi_wire_route_withdraw;

void nmi_wire_stream_window_encode(const nmi_wire_stream_window *m,
                                   uint8_t out[NMI_WIRE_STREAM_WINDOW_LEN]);
NM_NODISCARD int nmi_wire_stream_window_decode(const uint8_t *buf, size_t len,
                                               nmi_wire_stream_window *m);

void nmi_wire_stream_nack_encode(const nmi_wire_stream_nack *m,
                                 uint8_t out[NMI_WIRE_STREAM_NACK_LEN]);
NM_NODISCARD int nmi_wire_stream_nack_decode(const uint8_t *buf, size_t len,
                                             nmi_wire_stream_nack *m);
/* The sequences a NACK names, ascending: next_expected, then each set
 * bit's next_expected + 1 + i (saturating at UINT64_MAX, duplicates
 * dropped). Returns how many (1..65); out must hold 65. */
size_t nmi_wire_stream_nack_missing(const nmi_wire_stream_nack *m,
                                    uint64_t out[65]);

void nmi_wire_stream_reset_encode(const nmi_wire_stream_reset *m,
                                  uint8_t out[NMI_WIRE_STREAM_RESET_LEN]);
NM_NODISCARD int nmi_wire_stream_reset_decode(const uint8_t *buf, size_t len,
                                              nmi_wire_stream_reset *m);

/* Encoded size of m (16 + 16 * count). */
size_t nmi_wire_ack_ranges_len(const nmi_wire_ack_ranges *m);
/* Encode with the decoder's rules checked (NM_EINVAL if count is not
 * 1..16 or a range is empty, not above ack_seq, or out of order;
 * NM_ETOOBIG if cap is too small). */
int nmi_wire_ack_ranges_encode(const nmi_wire_ack_ranges *m, uint8_t *out,
                               size_t cap, size_t *written);
NM_NODISCARD int nmi_wire_ack_ranges_decode(const uint8_t *buf, size_t len,
                                            nmi_wire_ack_ranges *m);

void nmi_wire_route_withdraw_encode(const nmi_wire_route_withdraw *m,
                                    uint8_t out[NMI_WIRE_ROUTE_WITHDRAW_LEN]);
NM_NODISCARD int nmi_wire_route_withdraw_decode(const uint8_t *buf, size_t len,
                                                nmi_wire_route_withdraw *m);

#endif
