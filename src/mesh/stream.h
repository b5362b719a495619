/*
 * src/mesh/stream.h - the per-stream send and receive state machines of a
 * Net stream: sequence numbers, the byte-credit window, the reliable
 * retransmit buffer (RTO, NACK, ACK ranges, retry budget), the congestion
 * window, and the receiver's gap tracking, duplicate suppression, NACKs,
 * grants and optional in-order release. Upstream reference: `stream.rs`,
 * `session.rs`, `reliability.rs`; facts in
 * shared/docs/upstream/upstream-mesh-protocol.md §2-§4.
 *
 * Pure: no I/O, no locks, no clock reads (time is the caller's `now_us`, a
 * monotonic microsecond count), no global state. The node seals and sends
 * what this module decides; this module never sees a socket or a key.
 *
 * Thread-safety: none. A stream (tx or rx) is owned by the node and used
 * only from the node's I/O thread. Different streams are independent.
 *
 * Memory: the sender stores one malloc'd copy of each unacknowledged
 * reliable packet (at most the retransmit window, and at most the credit
 * window's worth of bytes); the in-order receiver stores one copy of each
 * packet waiting for a gap (bounded by the horizon and `rx_buffer_bytes`).
 * Everything else is fixed-size or grows to a bounded ring.
 *
 * ---------------------------------------------------------------------
 * Rules (upstream unless marked "choice" or "extension"):
 *
 *  - Sequence numbers of a stream start at 0 and increase by one per new
 *    packet; the node writes them into the header's `sequence`.
 *    Retransmits keep their seq (the node seals them with a fresh AEAD
 *    counter).
 *  - Credit: `window_bytes` (default 65,536; 0 = unbounded). A packet
 *    costs its framed payload + 84 (NMI_STREAM_PACKET_OVERHEAD). Sending
 *    needs credit >= cost, else NM_EBACKPRESSURE (counted). The receiver
 *    accounts at receive time: each accepted (new, not duplicate, not
 *    dropped) packet adds its cost to total_consumed, and it emits
 *    StreamWindow {stream_id, total_consumed, ack_seq = next_expected}.
 *    The sender clamps total_consumed to its bytes sent, ignores a value
 *    not above the largest seen, and adds the increase to its credit,
 *    capped at the window. Retransmits cost no credit (the receiver counts
 *    each seq once).
 *  - Reliable: each packet's plaintext (framed events + event_count) is
 *    stored until acknowledged by a cumulative ack (StreamWindow.ack_seq,
 *    StreamNack.next_expected, StreamAckRanges.ack_seq) or selectively
 *    (StreamAckRanges ranges). It is resent when NACKed and when its RTO
 *    expires. RTO: 50 ms initially, RFC 6298 (SRTT/RTTVAR, K = 4) with
 *    Karn's rule, clamped to [10 ms, 2 s], no exponential backoff. A
 *    packet may be resent max_retries times (default 3); needing one more
 *    resend fails the stream (state reset; the node sends StreamReset).
 *    In flight (stored, unacked packets) is limited by the retransmit
 *    window clamp(window_bytes / 512, 32, 16384) and by the congestion
 *    window (initial 32, minimum 2, AIMD); reaching either gives
 *    NM_EBACKPRESSURE.
 *  - Receiver: next_expected (every seq below it received or, in
 *    FireAndForget, declared lost), up to 32 received runs above it, a
 *    horizon of 16,384 seqs beyond next_expected (farther is dropped and
 *    counted), duplicates reported and never delivered twice. Delivery is
 *    in arrival order (upstream) unless `in_order` (extension).
 *  - FireAndForget: no retransmit buffer, no congestion window; the
 *    receiver still tracks seqs, suppresses duplicates, counts skipped
 *    gaps as lost, and credit/grants still apply.
 *
 * Choices where upstream is silent or that we changed:
 *
 *  1. NACK hold-off. Upstream resends every NACKed seq (receivers NACK
 *     proactively every 25 ms tick) and counts it against the retry
 *     budget, so a path with RTT > 25 ms burns the budget on copies still
 *     in flight. We resend a NACKed packet only if its last transmission
 *     is at least one SRTT old (rto_min before the first RTT sample): a
 *     NACK younger than that cannot reflect it.
 *  2. The retry budget counts every resend (NACK- or RTO-driven), as
 *     upstream does.
 *  3. Congestion window: counted in packets; +1 after a full cwnd of
 *     packets is newly acknowledged (no slow start); halved (not below
 *     cwnd_min) on a loss signal — a NACK that triggers a resend, or an
 *     RTO expiry. "At most once per RTT" is implemented as the classic
 *     once-per-window rule keyed on send time: a loss reduces cwnd only if
 *     the lost transmission was sent at or after the previous reduction,
 *     so one burst of losses halves once, while a packet that keeps timing
 *     out keeps halving down to cwnd_min. cwnd never grows above the
 *     retransmit window.
 *  4. window_bytes = 0 gives a retransmit window of 32 (the formula
 *     applied literally: 0 / 512 clamps to 32).
 *  5. The sender never lets the span next_seq - (lowest unacked seq) reach
 *     the receiver's horizon (16,384), so a conforming receiver never
 *     drops its packets as too far.
 *  6. RTT samples: at most one per acknowledgement message, from the most
 *     recently sent newly acknowledged packet that was never resent.
 *  7. StreamNack.next_expected is also a cumulative ack (every seq below
 *     it was received). Zero bits of the bitmap are not taken as
 *     selective acks (only StreamAckRanges are).
 *  8. Receiver range overflow: a reliable packet that would need a 33rd
 *     run is dropped unaccounted (NMI_RX_DROPPED; the sender resends it
 *     later). In FireAndForget the oldest gap is declared lost instead.
 *  9. FireAndForget loss declaration (upstream does not track it): a gap
 *     is declared lost when it is more than `ff_reorder` (default 64) seqs
 *     below the highest seq seen, when the 32 runs overflow, when the
 *     in-order buffer is full, or when the owner calls
 *     nmi_stream_rx_skip_to (stream end: the sender's final seq). A packet
 *     arriving after its seq was declared lost is reported as a duplicate
 *     (not delivered), so delivered + lost == sent holds exactly.
 * 10. FireAndForget credit leak (extension, wire-compatible). Upstream's
 *     receiver never accounts a lost packet, so every FireAndForget loss
 *     leaks its cost from the sender's credit until the stream stalls.
 *     Our receiver sends ack_seq = next_expected on every stream (upstream
 *     sends 0 on unreliable ones; upstream senders ignore it there), and
 *     our FireAndForget sender remembers the cumulative cost C(s) of its
 *     last NMI_STREAM_FF_COST_RING seqs: a grant then counts as consumed
 *     max(total_consumed, C(ack_seq)) — every byte below ack_seq was
 *     received or is lost, never still in flight — which returns the
 *     credit of declared-lost packets. With an upstream receiver
 *     (ack_seq 0) this is exactly upstream's rule.
 * 11. Grants are produced for streams with a window or reliable streams
 *     (the grant's ack_seq is the cumulative ack that prunes the
 *     retransmit buffer); an unbounded FireAndForget stream needs none.
 * 12. In-order mode (extension): a packet at the delivery cursor is
 *     delivered from the caller's buffer (NMI_RX_DELIVER); others are
 *     copied (NMI_RX_BUFFERED) and released by nmi_stream_rx_pop strictly
 *     in seq order (in FireAndForget, skipping seqs declared lost). The
 *     buffer holds at most `rx_buffer_bytes` payload bytes (0: the
 *     retransmit window's worth of full packets, at most 16 MiB); a packet
 *     that does not fit is dropped unaccounted (NMI_RX_DROPPED), and in
 *     FireAndForget the oldest gap is declared lost so the buffer drains.
 * 13. Stream reset: after nmi_stream_tx_reset / a failed retry budget,
 *     admit/commit return NM_ECLOSED and the buffer is freed; after
 *     nmi_stream_rx_reset, packets give NM_ECLOSED. A grant, NACK or ACK
 *     ranges message for a reset stream is ignored.
 */
#ifndef NMI_MESH_STREAM_H
#define NMI_MESH_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "wire/control.h"
#include "wire/header.h"

/* Bytes a packet costs on top of its framed payload (header + tag). */
#define NMI_STREAM_PACKET_OVERHEAD NMI_WIRE_PACKET_OVERHEAD
/* Default credit window of a stream (upstream DEFAULT_STREAM_WINDOW_BYTES). */
#define NMI_STREAM_DEFAULT_WINDOW 65536u
/* Receiver: how far beyond next_expected a seq may be (farther: dropped). */
#define NMI_STREAM_HORIZON 16384u
/* Receiver: received runs tracked above next_expected. */
#define NMI_STREAM_MAX_RANGES 32u
/* Retransmit window bounds (packets): clamp(window / 512, 32, 16384). */
#define NMI_STREAM_RTX_MIN 32u
#define NMI_STREAM_RTX_MAX 16384u
/* Upstream's retransmit / proactive-NACK tick (for the node's timer). */
#define NMI_STREAM_TICK_US 25000u
/* FireAndForget sender: seqs whose cumulative cost is remembered (choice
 * 10). */
#define NMI_STREAM_FF_COST_RING 1024u
/* In-order receive buffer ceiling when rx_buffer_bytes = 0 (choice 12). */
#define NMI_STREAM_RX_BUFFER_CAP (16u * 1024u * 1024u)

typedef struct nmi_stream_params {
    bool reliable;         /* Reliable (true) or FireAndForget (false) */
    bool in_order;         /* receiver: release in seq order (extension) */
    uint32_t window_bytes; /* credit window; 0 = unbounded */
    uint32_t max_retries;  /* resends allowed per packet */
    uint32_t rto_init_us, rto_min_us, rto_max_us;
    uint32_t cwnd_init, cwnd_min; /* packets */
    uint32_t ff_reorder;          /* FireAndForget: gap declared lost this far
                                     below the highest seq (choice 9); >= 1 */
    uint32_t rx_buffer_bytes; /* in-order buffer; 0 = derived (choice 12) */
} nmi_stream_params;

/* Upstream defaults: reliable false, in_order false, window 65,536,
 * max_retries 3, RTO 50 ms in [10 ms, 2 s], cwnd 32 (min 2); ff_reorder
 * 64 and rx_buffer_bytes 0 (derived) are ours. */
void nmi_stream_params_default(nmi_stream_params *p);

/* The credit cost of a packet whose framed payload is payload_len bytes. */
static inline size_t
nmi_stream_cost(size_t payload_len)
{
    return payload_len + NMI_STREAM_PACKET_OVERHEAD;
}

/* The retransmit window of a credit window: clamp(window / 512, 32,
 * 16384) packets (window 0 gives 32, choice 4). */
uint32_t nmi_stream_rtx_window(uint32_t window_bytes);

/* ================================================================ send */

/* One stored packet of the reliable sender (internal). */
typedef struct nmi_stream_pkt {
    uint8_t *payload;    /* malloc'd plaintext, NULL when len is 0 */
    uint64_t sent_at;    /* last transmission, µs */
    uint64_t prev, next; /* timer list (seqs, UINT64_MAX = none) */
    uint32_t len;
    uint32_t retries;
    uint16_t event_count;
    uint8_t flags; /* internal NMI_PKT_* bits */
} nmi_stream_pkt;

/* The sender state. Defined here so the node can embed it; treat every
 * field as private and use the functions below. */
typedef struct nmi_stream_tx {
    uint64_t stream_id;
    nmi_stream_params p;
    bool reset;
    uint64_t next_seq;
    /* credit */
    uint64_t window; /* 0 = unbounded */
    uint64_t credit;
    uint64_t tx_bytes_sent;     /* cost of every new packet */
    uint64_t max_consumed_seen; /* largest (clamped) grant applied */
    /* reliable: ring of stored packets for seqs [una, next_seq) */
    nmi_stream_pkt *ring;
    uint32_t ring_cap; /* power of two, 0 until the first commit */
    uint64_t una;      /* lowest seq not yet acknowledged */
    uint64_t in_flight;
    uint64_t timer_head, timer_tail; /* oldest / newest transmission */
    uint64_t *nackq;                 /* seqs flagged by NACKs, FIFO */
    uint32_t nackq_len, nackq_cap;
    uint32_t rtx_window;
    /* RTO estimator (µs) */
    bool have_rtt;
    uint64_t srtt, rttvar, rto;
    /* congestion window (packets) */
    uint32_t cwnd, cwnd_acc;
    bool have_cut;
    uint64_t last_cut_us;
    /* FireAndForget credit healing (choice 10): cumulative cost before
     * each seq in [ff_lo, next_seq], by seq % NMI_STREAM_FF_COST_RING */
    uint64_t *ff_cost;
    uint64_t ff_lo;
    /* statistics */
    uint64_t backpressure_events, retransmits, packets_sent, bytes_sent;
    uint64_t rto_expiries, nack_resends, grants, stale_grants;
} nmi_stream_tx;

/* Initialise a sender for stream_id with params p (NULL = defaults). Only
 * a FireAndForget stream with a window allocates here (its 8 KiB cost
 * ring, choice 10); the retransmit ring grows on commit. Errors:
 * NM_EINVAL (tx NULL, rto_min > rto_max, rto_min 0, cwnd_min 0, cwnd_min >
 * cwnd_init, ff_reorder 0), NM_ENOMEM. */
int nmi_stream_tx_init(nmi_stream_tx *tx, uint64_t stream_id,
                       const nmi_stream_params *p);
/* Free the stored packets and rings. The struct may be re-initialised.
 * NULL is a no-op. */
void nmi_stream_tx_fini(nmi_stream_tx *tx);

/* May a packet of payload_len framed bytes be sent now? NM_OK,
 * NM_EBACKPRESSURE (credit < cost, in flight >= cwnd, in flight >= the
 * retransmit window, or the seq span at the horizon; counted in
 * backpressure_events), NM_ECLOSED (reset), NM_ETOOBIG (payload over
 * 8108 bytes). Changes nothing but the counter. */
int nmi_stream_tx_admit(nmi_stream_tx *tx, size_t payload_len);

/* Record a packet the node is about to send: checks as admit (and
 * counts a refusal the same way), then assigns *seq_out = the next seq,
 * debits its cost, and in reliable mode stores a copy of payload[0..len)
 * with event_count, sent at now_us. Errors: those of admit, NM_ENOMEM
 * (nothing changed), NM_EINVAL (payload NULL with len > 0). */
int nmi_stream_tx_commit(nmi_stream_tx *tx, const uint8_t *payload, size_t len,
                         uint16_t event_count, uint64_t now_us,
                         uint64_t *seq_out);

/* A StreamWindow grant for this stream: credit (clamp total_consumed to
 * bytes sent, ignore non-increasing, add the increase up to the window;
 * FireAndForget: choice 10) and, in reliable mode, the cumulative ack
 * ack_seq (everything below it is acknowledged; an RTT sample). */
void nmi_stream_tx_on_window(nmi_stream_tx *tx, uint64_t total_consumed,
                             uint64_t ack_seq, uint64_t now_us);

/* A StreamNack: next_expected is a cumulative ack (choice 7) and missing;
 * bit i of bitmap means next_expected + 1 + i is missing. Each missing
 * stored packet whose last transmission is at least one SRTT old (choice
 * 1) is queued for resend by the next poll and signals a loss to the
 * congestion window. Ignored in FireAndForget. */
void nmi_stream_tx_on_nack(nmi_stream_tx *tx, uint64_t next_expected,
                           uint64_t bitmap, uint64_t now_us);

/* A StreamAckRanges: cumulative ack_seq plus selective acks of each
 * [start, end). Ignored when m->stream_id differs or in FireAndForget. */
void nmi_stream_tx_on_ack_ranges(nmi_stream_tx *tx,
                                 const nmi_wire_ack_ranges *m,
                                 uint64_t now_us);

/* The node's resend hook: seal and send payload as packet `seq` (same
 * stream, same flags, fresh AEAD counter). Return >= 0 when sent, or a
 * negative code to stop the poll (the packet stays due and is not
 * counted). It must not call back into this tx. */
typedef int (*nmi_stream_resend_fn)(void *ctx, uint64_t seq,
                                    const uint8_t *payload, size_t len,
                                    uint16_t event_count);

/* Resend what is due at now_us: NACKed packets first (in NACK order),
 * then RTO-expired ones (oldest transmission first). Each resend counts
 * against the packet's retry budget and restarts its RTO (same RTO, no
 * backoff). Returns NM_OK; the resend hook's error (poll stopped); or
 * NM_ECLOSED when a packet needed a resend beyond max_retries: the stream
 * is now reset (buffer freed) and the node should send StreamReset. A
 * reset stream returns NM_ECLOSED. */
int nmi_stream_tx_poll(nmi_stream_tx *tx, uint64_t now_us,
                       nmi_stream_resend_fn fn, void *ctx);

/* The earliest time poll has work: the oldest transmission's RTO expiry,
 * 0 when NACKed packets are queued (due now), UINT64_MAX when nothing is
 * in flight (or the stream is reset / FireAndForget). */
uint64_t nmi_stream_tx_next_deadline(const nmi_stream_tx *tx);

/* Mark the stream reset (a StreamReset arrived, or the node closes it):
 * frees the stored packets; later sends give NM_ECLOSED. Idempotent. */
void nmi_stream_tx_reset(nmi_stream_tx *tx);

typedef struct nmi_stream_tx_stats {
    uint64_t next_seq;  /* seq of the next new packet */
    uint64_t in_flight; /* stored, unacknowledged packets */
    uint64_t credit;    /* bytes; UINT64_MAX when unbounded */
    uint64_t window;    /* 0 = unbounded */
    uint64_t cwnd;      /* packets */
    uint64_t backpressure_events, retransmits, packets_sent;
    uint64_t bytes_sent; /* cost (payload + 84) of new packets */
    uint64_t rto_expiries, nack_resends;
    uint64_t grants, stale_grants; /* StreamWindow applied / ignored */
    uint64_t una;                  /* lowest unacknowledged seq */
    uint32_t srtt_us, rto_us;      /* srtt 0 before the first sample */
    bool reset;
} nmi_stream_tx_stats;

void nmi_stream_tx_stats_get(const nmi_stream_tx *tx,
                             nmi_stream_tx_stats *out);

/* ============================================================= receive */

/* A packet held by the in-order receiver (internal). */
typedef struct nmi_stream_held {
    uint64_t seq;
    size_t len;
    uint16_t event_count;
    uint8_t payload[];
} nmi_stream_held;

typedef struct nmi_stream_range {
    uint64_t start, end; /* received [start, end) */
} nmi_stream_range;

/* The receiver state; embed it, treat the fields as private. */
typedef struct nmi_stream_rx {
    uint64_t stream_id;
    nmi_stream_params p;
    bool reset;
    uint64_t next_expected;
    uint64_t highest_seen;
    bool seen_any;
    uint64_t total_consumed;
    nmi_stream_range ranges[NMI_STREAM_MAX_RANGES]; /* ascending */
    uint32_t nranges;
    /* last grant returned by nmi_stream_rx_window */
    bool granted;
    uint64_t grant_consumed, grant_ack;
    /* in-order buffer: ring by seq, seqs in [next_deliver, ...) */
    nmi_stream_held **held;
    uint32_t held_cap; /* power of two, 0 until needed */
    uint64_t next_deliver;
    uint64_t buffered, buffered_bytes, buffer_limit;
    nmi_stream_held *popped; /* returned by the last pop; freed next */
    /* statistics */
    uint64_t accepted, delivered, duplicates, too_far, lost, dropped;
} nmi_stream_rx;

/* Outcomes of nmi_stream_rx_on_packet (>= 0). */
enum {
    NMI_RX_DELIVER = 0,   /* new: deliver its events now, tagged with seq */
    NMI_RX_DUPLICATE = 1, /* already received (or declared lost): drop */
    NMI_RX_BUFFERED = 2,  /* in_order: copied, released later by pop */
    NMI_RX_TOO_FAR = 3,   /* beyond the horizon: dropped, counted */
    NMI_RX_DROPPED = 4,   /* no room to track/buffer it: dropped,
                             unaccounted (choices 8, 12) */
};

/* Initialise a receiver (p NULL = defaults). Errors: NM_EINVAL. */
int nmi_stream_rx_init(nmi_stream_rx *rx, uint64_t stream_id,
                       const nmi_stream_params *p);
/* Free the in-order buffer (and the last popped packet). NULL is a
 * no-op. */
void nmi_stream_rx_fini(nmi_stream_rx *rx);

/* A data packet arrived (already authenticated) with sequence seq,
 * framed payload[0..len), event_count, and its credit cost (the node
 * passes nmi_stream_cost(len)). Returns one of NMI_RX_* or NM_ECLOSED
 * (reset), NM_EINVAL (payload NULL with len > 0), NM_ENOMEM (in-order
 * copy failed; the packet is not accepted, as if dropped). DELIVER and
 * BUFFERED add cost to total_consumed. In in_order mode, drain
 * nmi_stream_rx_pop after every call whatever it returned (a gap may have
 * been filled or declared lost). */
int nmi_stream_rx_on_packet(nmi_stream_rx *rx, uint64_t seq,
                            const uint8_t *payload, size_t len,
                            uint16_t event_count, size_t cost);

/* in_order mode: the next packet releasable in seq order, or false.
 * *payload stays valid until the next pop or fini. */
bool nmi_stream_rx_pop(nmi_stream_rx *rx, uint64_t *seq,
                       const uint8_t **payload, size_t *len,
                       uint16_t *event_count);

/* The grant to send: true when it changed since the last one returned
 * (or force), for reliable streams and streams with a window (choice
 * 11); *out = {stream_id, total_consumed, ack_seq = next_expected}. */
bool nmi_stream_rx_window(nmi_stream_rx *rx, bool force,
                          nmi_wire_stream_window *out);

/* Reliable streams: true while gaps exist, with the NACK to send
 * (next_expected is missing; bit i = next_expected + 1 + i missing, up to
 * the highest seq seen). The node sends it every tick while true. */
bool nmi_stream_rx_nack(nmi_stream_rx *rx, nmi_wire_stream_nack *out);

/* Reliable streams: true while gaps exist, with the StreamAckRanges to
 * send to peers advertising NMI_WIRE_ACK_RANGES_CAP (ack_seq =
 * next_expected, the 16 newest received runs, newest first). */
bool nmi_stream_rx_ack_ranges(nmi_stream_rx *rx, nmi_wire_ack_ranges *out);

/* FireAndForget: nothing more will arrive below end_seq (stream end: the
 * sender's final next_seq, as a FIN or close would carry): every seq
 * below it not received is declared lost, and later arrivals below it
 * are duplicates. NM_EINVAL on a reliable stream. */
int nmi_stream_rx_skip_to(nmi_stream_rx *rx, uint64_t end_seq);

/* Mark the stream reset (StreamReset received or closed); later packets
 * give NM_ECLOSED. The in-order buffer is kept for pop. Idempotent. */
void nmi_stream_rx_reset(nmi_stream_rx *rx);

typedef struct nmi_stream_rx_stats {
    uint64_t next_expected;
    uint64_t highest_seen;      /* 0 before the first packet */
    uint64_t delivered_packets; /* DELIVER results + pops */
    uint64_t duplicates, too_far, lost, dropped;
    uint64_t accepted; /* new packets accounted (DELIVER + BUFFERED) */
    uint64_t total_consumed;
    uint64_t buffered, buffered_bytes; /* in-order buffer */
    uint32_t gaps;                     /* received runs above next_expected */
    bool reset;
} nmi_stream_rx_stats;

void nmi_stream_rx_stats_get(const nmi_stream_rx *rx,
                             nmi_stream_rx_stats *out);

#endif
