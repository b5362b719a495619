/*
 * src/mesh/stream.c - per-stream send and receive state machines (see
 * stream.h for the rules and every choice made where upstream is silent).
 *
 * Sender. Reliable packets live in a power-of-two ring indexed by
 * seq & (cap - 1) covering [una, next_seq); an acknowledged slot is freed
 * at once and una slides over freed slots. Live slots are also threaded,
 * by seq, on a "timer list" ordered by last transmission time (sends and
 * resends append at the tail since now_us never decreases), so the RTO
 * scan and the next deadline look only at the head. NACKed seqs wait in
 * a FIFO and are flagged so each is queued once.
 *
 * Receiver. next_expected plus up to 32 sorted, merged runs [start, end)
 * received above it. The in-order buffer is a ring of pointers indexed by
 * seq, covering [next_deliver, next_deliver + cap).
 */
#include "mesh/stream.h"

#include <stdlib.h>
#include <string.h>

#define NIL UINT64_MAX

/* nmi_stream_pkt.flags */
#define PKT_LIVE 0x01u   /* stored, not acknowledged */
#define PKT_RESENT 0x02u /* transmitted more than once (Karn) */
#define PKT_NACKED 0x04u /* queued in nackq */

#define RTX_RING_INIT 32u
#define HELD_RING_INIT 64u
#define HELD_RING_MAX (2u * NMI_STREAM_HORIZON)

static inline uint64_t
u64_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static inline uint64_t
u64_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

void
nmi_stream_params_default(nmi_stream_params *p)
{
    if (p == NULL) {
        return;
    }
    memset(p, 0, sizeof(*p));
    p->reliable = false;
    p->in_order = false;
    p->window_bytes = NMI_STREAM_DEFAULT_WINDOW;
    p->max_retries = 3;
    p->rto_init_us = 50000;
    p->rto_min_us = 10000;
    p->rto_max_us = 2000000;
    p->cwnd_init = 32;
    p->cwnd_min = 2;
    p->ff_reorder = 64;
    p->rx_buffer_bytes = 0;
}

uint32_t
nmi_stream_rtx_window(uint32_t window_bytes)
{
    uint32_t w = window_bytes / 512u;
    if (w < NMI_STREAM_RTX_MIN) {
        return NMI_STREAM_RTX_MIN;
    }
    if (w > NMI_STREAM_RTX_MAX) {
        return NMI_STREAM_RTX_MAX;
    }
    return w;
}

static int
params_check(const char *who, const nmi_stream_params *p)
{
    if (p->rto_min_us == 0 || p->rto_min_us > p->rto_max_us) {
        return nmi_err(NM_EINVAL,
                       "%s: RTO bounds [%u, %u] us must be non-zero and "
                       "ordered",
                       who, p->rto_min_us, p->rto_max_us);
    }
    if (p->cwnd_min == 0 || p->cwnd_min > p->cwnd_init) {
        return nmi_err(NM_EINVAL,
                       "%s: cwnd_min %u must be in 1..cwnd_init (%u)", who,
                       p->cwnd_min, p->cwnd_init);
    }
    if (p->ff_reorder == 0) {
        return nmi_err(NM_EINVAL, "%s: ff_reorder must be >= 1", who);
    }
    return NM_OK;
}

/* ================================================================ send */

static inline nmi_stream_pkt *
tx_slot(const nmi_stream_tx *tx, uint64_t seq)
{
    return &tx->ring[seq & (tx->ring_cap - 1)];
}

/* The stored, unacknowledged packet `seq`, or NULL. */
static nmi_stream_pkt *
tx_live(const nmi_stream_tx *tx, uint64_t seq)
{
    if (tx->ring_cap == 0 || seq < tx->una || seq >= tx->next_seq) {
        return NULL;
    }
    nmi_stream_pkt *pk = tx_slot(tx, seq);
    return (pk->flags & PKT_LIVE) ? pk : NULL;
}

static void
timer_append(nmi_stream_tx *tx, uint64_t seq)
{
    nmi_stream_pkt *pk = tx_slot(tx, seq);
    pk->prev = tx->timer_tail;
    pk->next = NIL;
    if (tx->timer_tail != NIL) {
        tx_slot(tx, tx->timer_tail)->next = seq;
    } else {
        tx->timer_head = seq;
    }
    tx->timer_tail = seq;
}

static void
timer_remove(nmi_stream_tx *tx, uint64_t seq)
{
    nmi_stream_pkt *pk = tx_slot(tx, seq);
    if (pk->prev != NIL) {
        tx_slot(tx, pk->prev)->next = pk->next;
    } else {
        tx->timer_head = pk->next;
    }
    if (pk->next != NIL) {
        tx_slot(tx, pk->next)->prev = pk->prev;
    } else {
        tx->timer_tail = pk->prev;
    }
    pk->prev = pk->next = NIL;
}

static void
tx_free_all(nmi_stream_tx *tx)
{
    if (tx->ring != NULL) {
        for (uint64_t s = tx->una; s < tx->next_seq; s++) {
            nmi_stream_pkt *pk = tx_slot(tx, s);
            if (pk->flags & PKT_LIVE) {
                free(pk->payload);
            }
        }
    }
    free(tx->ring);
    free(tx->nackq);
    tx->ring = NULL;
    tx->ring_cap = 0;
    tx->nackq = NULL;
    tx->nackq_len = tx->nackq_cap = 0;
    tx->in_flight = 0;
    tx->una = tx->next_seq;
    tx->timer_head = tx->timer_tail = NIL;
}

int
nmi_stream_tx_init(nmi_stream_tx *tx, uint64_t stream_id,
                   const nmi_stream_params *p)
{
    if (tx == NULL) {
        return nmi_err(NM_EINVAL, "stream tx: NULL state");
    }
    nmi_stream_params def;
    if (p == NULL) {
        nmi_stream_params_default(&def);
        p = &def;
    }
    int rc = params_check("stream tx", p);
    if (rc != NM_OK) {
        return rc;
    }
    memset(tx, 0, sizeof(*tx));
    tx->stream_id = stream_id;
    tx->p = *p;
    tx->window = p->window_bytes;
    tx->credit = p->window_bytes;
    tx->timer_head = tx->timer_tail = NIL;
    tx->rtx_window = nmi_stream_rtx_window(p->window_bytes);
    uint64_t rto = p->rto_init_us;
    tx->rto = u64_max(p->rto_min_us, u64_min(rto, p->rto_max_us));
    tx->cwnd = p->cwnd_init;
    if (!p->reliable && p->window_bytes != 0) {
        tx->ff_cost = calloc(NMI_STREAM_FF_COST_RING, sizeof(uint64_t));
        if (tx->ff_cost == NULL) {
            return nmi_err(NM_ENOMEM, "stream tx: no memory");
        }
    }
    return NM_OK;
}

void
nmi_stream_tx_fini(nmi_stream_tx *tx)
{
    if (tx == NULL) {
        return;
    }
    tx_free_all(tx);
    free(tx->ff_cost);
    tx->ff_cost = NULL;
}

void
nmi_stream_tx_reset(nmi_stream_tx *tx)
{
    if (tx == NULL || tx->reset) {
        return;
    }
    tx->reset = true;
    tx_free_all(tx);
}

/* The admission rules, without counting. */
static int
tx_check(const nmi_stream_tx *tx, size_t len)
{
    if (tx->reset) {
        return nmi_err(NM_ECLOSED, "stream %#llx: reset",
                       (unsigned long long)tx->stream_id);
    }
    if (len > NMI_WIRE_MAX_PAYLOAD) {
        return nmi_err(NM_ETOOBIG, "stream: payload of %zu bytes over %d", len,
                       NMI_WIRE_MAX_PAYLOAD);
    }
    if (tx->p.reliable) {
        if (tx->in_flight >= tx->cwnd) {
            return nmi_err(NM_EBACKPRESSURE,
                           "stream %#llx: %llu in flight, cwnd %u",
                           (unsigned long long)tx->stream_id,
                           (unsigned long long)tx->in_flight, tx->cwnd);
        }
        if (tx->in_flight >= tx->rtx_window) {
            return nmi_err(NM_EBACKPRESSURE,
                           "stream %#llx: retransmit window full (%u)",
                           (unsigned long long)tx->stream_id, tx->rtx_window);
        }
        if (tx->next_seq - tx->una >= NMI_STREAM_HORIZON) {
            return nmi_err(
                NM_EBACKPRESSURE, "stream %#llx: seq %llu waits on seq %llu",
                (unsigned long long)tx->stream_id,
                (unsigned long long)tx->next_seq, (unsigned long long)tx->una);
        }
    }
    if (tx->window != 0 && tx->credit < nmi_stream_cost(len)) {
        return nmi_err(NM_EBACKPRESSURE,
                       "stream %#llx: credit %llu < cost %zu",
                       (unsigned long long)tx->stream_id,
                       (unsigned long long)tx->credit, nmi_stream_cost(len));
    }
    return NM_OK;
}

int
nmi_stream_tx_admit(nmi_stream_tx *tx, size_t payload_len)
{
    if (tx == NULL) {
        return nmi_err(NM_EINVAL, "stream tx: NULL state");
    }
    int rc = tx_check(tx, payload_len);
    if (rc == NM_EBACKPRESSURE) {
        tx->backpressure_events++;
    }
    return rc;
}

/* Room in the ring for seq next_seq. */
static int
tx_ring_reserve(nmi_stream_tx *tx)
{
    uint64_t span = tx->next_seq - tx->una;
    if (tx->ring_cap != 0 && span < tx->ring_cap) {
        return NM_OK;
    }
    uint32_t ncap = tx->ring_cap ? tx->ring_cap * 2 : RTX_RING_INIT;
    nmi_stream_pkt *nr = calloc(ncap, sizeof(*nr));
    if (nr == NULL) {
        return nmi_err(NM_ENOMEM, "stream tx: no memory");
    }
    for (uint64_t s = tx->una; s < tx->next_seq; s++) {
        nr[s & (ncap - 1)] = *tx_slot(tx, s);
    }
    free(tx->ring);
    tx->ring = nr;
    tx->ring_cap = ncap;
    return NM_OK;
}

int
nmi_stream_tx_commit(nmi_stream_tx *tx, const uint8_t *payload, size_t len,
                     uint16_t event_count, uint64_t now_us, uint64_t *seq_out)
{
    if (tx == NULL || (payload == NULL && len > 0)) {
        return nmi_err(NM_EINVAL, "stream tx commit: NULL argument");
    }
    int rc = nmi_stream_tx_admit(tx, len);
    if (rc != NM_OK) {
        return rc;
    }
    uint64_t seq = tx->next_seq;
    size_t cost = nmi_stream_cost(len);
    if (tx->p.reliable) {
        uint8_t *copy = NULL;
        if (len > 0) {
            copy = malloc(len);
            if (copy == NULL) {
                return nmi_err(NM_ENOMEM, "stream tx: no memory");
            }
            memcpy(copy, payload, len);
        }
        rc = tx_ring_reserve(tx);
        if (rc != NM_OK) {
            free(copy);
            return rc;
        }
        nmi_stream_pkt *pk = tx_slot(tx, seq);
        memset(pk, 0, sizeof(*pk));
        pk->payload = copy;
        pk->len = (uint32_t)len;
        pk->event_count = event_count;
        pk->sent_at = now_us;
        pk->flags = PKT_LIVE;
        tx->next_seq = seq + 1;
        timer_append(tx, seq);
        tx->in_flight++;
    } else {
        tx->next_seq = seq + 1;
    }
    if (tx->window != 0) {
        tx->credit -= cost;
    }
    tx->tx_bytes_sent += cost;
    tx->packets_sent++;
    tx->bytes_sent += cost;
    if (tx->ff_cost != NULL) {
        /* C(seq + 1) = everything sent so far (choice 10). */
        tx->ff_cost[tx->next_seq % NMI_STREAM_FF_COST_RING] =
            tx->tx_bytes_sent;
        if (tx->next_seq - tx->ff_lo >= NMI_STREAM_FF_COST_RING) {
            tx->ff_lo = tx->next_seq - NMI_STREAM_FF_COST_RING + 1;
        }
    }
    if (seq_out != NULL) {
        *seq_out = seq;
    }
    return NM_OK;
}

/* ---- acknowledgement, RTT, congestion ----------------------------- */

static void
rtt_sample(nmi_stream_tx *tx, uint64_t r)
{
    if (!tx->have_rtt) {
        tx->srtt = r;
        tx->rttvar = r / 2;
        tx->have_rtt = true;
    } else {
        uint64_t diff = tx->srtt > r ? tx->srtt - r : r - tx->srtt;
        tx->rttvar = (3 * tx->rttvar + diff) / 4;
        tx->srtt = (7 * tx->srtt + r) / 8;
    }
    uint64_t var = 4 * tx->rttvar;
    uint64_t rto = tx->srtt + (var > 0 ? var : 1);
    tx->rto = u64_max(tx->p.rto_min_us, u64_min(rto, tx->p.rto_max_us));
}

/* A loss of a transmission sent at sent_at, detected at now (choice 3). */
static void
loss_signal(nmi_stream_tx *tx, uint64_t sent_at, uint64_t now)
{
    if (tx->have_cut && sent_at < tx->last_cut_us) {
        return; /* same congestion event */
    }
    uint32_t c = tx->cwnd / 2;
    tx->cwnd = c < tx->p.cwnd_min ? tx->p.cwnd_min : c;
    tx->cwnd_acc = 0;
    tx->have_cut = true;
    tx->last_cut_us = now;
}

/* Per-message acknowledgement bookkeeping: the newest first-transmission
 * send time among the packets it acknowledged (Karn). */
typedef struct ack_batch {
    bool have;
    uint64_t sent_at;
} ack_batch;

static void
ack_one(nmi_stream_tx *tx, uint64_t seq, ack_batch *b)
{
    nmi_stream_pkt *pk = tx_live(tx, seq);
    if (pk == NULL) {
        return;
    }
    if (!(pk->flags & PKT_RESENT) && (!b->have || pk->sent_at > b->sent_at)) {
        b->have = true;
        b->sent_at = pk->sent_at;
    }
    timer_remove(tx, seq);
    free(pk->payload);
    pk->payload = NULL;
    pk->flags = 0;
    tx->in_flight--;
    if (++tx->cwnd_acc >= tx->cwnd) {
        tx->cwnd_acc = 0;
        if (tx->cwnd < tx->rtx_window) {
            tx->cwnd++;
        }
    }
}

static void
ack_finish(nmi_stream_tx *tx, const ack_batch *b, uint64_t now)
{
    while (tx->una < tx->next_seq &&
           !(tx_slot(tx, tx->una)->flags & PKT_LIVE)) {
        tx->una++;
    }
    if (b->have) {
        rtt_sample(tx, now > b->sent_at ? now - b->sent_at : 0);
    }
}

/* Everything below ack_seq was received. */
static void
ack_cumulative(nmi_stream_tx *tx, uint64_t ack_seq, ack_batch *b)
{
    uint64_t end = u64_min(ack_seq, tx->next_seq);
    for (uint64_t s = tx->una; s < end; s++) {
        ack_one(tx, s, b);
    }
}

void
nmi_stream_tx_on_window(nmi_stream_tx *tx, uint64_t total_consumed,
                        uint64_t ack_seq, uint64_t now_us)
{
    if (tx == NULL || tx->reset) {
        return;
    }
    uint64_t consumed = total_consumed;
    if (tx->ff_cost != NULL && ack_seq >= tx->ff_lo &&
        ack_seq <= tx->next_seq) {
        /* Below ack_seq everything was received or is lost (choice 10). */
        consumed =
            u64_max(consumed, tx->ff_cost[ack_seq % NMI_STREAM_FF_COST_RING]);
    }
    if (tx->window != 0) {
        consumed = u64_min(consumed, tx->tx_bytes_sent);
        if (consumed <= tx->max_consumed_seen) {
            tx->stale_grants++;
        } else {
            tx->grants++;
            uint64_t delta = consumed - tx->max_consumed_seen;
            tx->max_consumed_seen = consumed;
            tx->credit = u64_min(tx->credit + delta, tx->window);
        }
    } else {
        tx->grants++;
    }
    if (tx->p.reliable && tx->ring_cap != 0) {
        ack_batch b = {0};
        ack_cumulative(tx, ack_seq, &b);
        ack_finish(tx, &b, now_us);
    }
}

static void
nackq_push(nmi_stream_tx *tx, uint64_t seq)
{
    if (tx->nackq_len == tx->nackq_cap) {
        uint32_t ncap = tx->nackq_cap ? tx->nackq_cap * 2 : 64;
        uint64_t *nq = realloc(tx->nackq, ncap * sizeof(*nq));
        if (nq == NULL) {
            return; /* the packet still has its RTO */
        }
        tx->nackq = nq;
        tx->nackq_cap = ncap;
    }
    tx->nackq[tx->nackq_len++] = seq;
    tx_slot(tx, seq)->flags |= PKT_NACKED;
}

static void
nack_one(nmi_stream_tx *tx, uint64_t seq, uint64_t holdoff, uint64_t now)
{
    nmi_stream_pkt *pk = tx_live(tx, seq);
    if (pk == NULL || (pk->flags & PKT_NACKED)) {
        return;
    }
    if (now < pk->sent_at || now - pk->sent_at < holdoff) {
        return; /* the NACK cannot reflect this transmission (choice 1) */
    }
    nackq_push(tx, seq);
    if (pk->flags & PKT_NACKED) {
        loss_signal(tx, pk->sent_at, now);
    }
}

void
nmi_stream_tx_on_nack(nmi_stream_tx *tx, uint64_t next_expected,
                      uint64_t bitmap, uint64_t now_us)
{
    if (tx == NULL || tx->reset || !tx->p.reliable || tx->ring_cap == 0) {
        return;
    }
    ack_batch b = {0};
    ack_cumulative(tx, next_expected, &b);
    ack_finish(tx, &b, now_us);
    if (next_expected >= tx->next_seq) {
        return;
    }
    uint64_t holdoff = tx->have_rtt ? tx->srtt : tx->p.rto_min_us;
    nack_one(tx, next_expected, holdoff, now_us);
    uint64_t room = tx->next_seq - next_expected - 1; /* seqs above it */
    for (unsigned i = 0; i < 64 && i < room; i++) {
        if (bitmap & (UINT64_C(1) << i)) {
            nack_one(tx, next_expected + 1 + i, holdoff, now_us);
        }
    }
}

void
nmi_stream_tx_on_ack_ranges(nmi_stream_tx *tx, const nmi_wire_ack_ranges *m,
                            uint64_t now_us)
{
    if (tx == NULL || m == NULL || tx->reset || !tx->p.reliable ||
        tx->ring_cap == 0 || m->stream_id != tx->stream_id) {
        return;
    }
    ack_batch b = {0};
    ack_cumulative(tx, m->ack_seq, &b);
    unsigned n = m->count < NMI_WIRE_ACK_RANGES_MAX ? m->count
                                                    : NMI_WIRE_ACK_RANGES_MAX;
    for (unsigned i = 0; i < n; i++) {
        uint64_t lo = u64_max(m->ranges[i].start, tx->una);
        uint64_t hi = u64_min(m->ranges[i].end, tx->next_seq);
        for (uint64_t s = lo; s < hi; s++) {
            ack_one(tx, s, &b);
        }
    }
    ack_finish(tx, &b, now_us);
}

/* ---- resend -------------------------------------------------------- */

/* Resend `seq` (live) now. NM_ECLOSED when its budget is spent (the
 * stream is reset), the hook's error (nothing changed), or NM_OK. */
static int
tx_resend(nmi_stream_tx *tx, uint64_t seq, bool rto, uint64_t now,
          nmi_stream_resend_fn fn, void *ctx)
{
    nmi_stream_pkt *pk = tx_slot(tx, seq);
    if (pk->retries >= tx->p.max_retries) {
        uint64_t sid = tx->stream_id;
        uint32_t max = tx->p.max_retries;
        nmi_stream_tx_reset(tx);
        return nmi_err(NM_ECLOSED,
                       "stream %#llx: seq %llu lost after %u retries",
                       (unsigned long long)sid, (unsigned long long)seq, max);
    }
    int rc = fn(ctx, seq, pk->payload, pk->len, pk->event_count);
    if (rc < 0) {
        return rc;
    }
    if (rto) {
        tx->rto_expiries++;
        loss_signal(tx, pk->sent_at, now);
    } else {
        tx->nack_resends++;
    }
    pk->retries++;
    pk->flags = (uint8_t)((pk->flags | PKT_RESENT) & ~PKT_NACKED);
    pk->sent_at = now;
    timer_remove(tx, seq);
    timer_append(tx, seq);
    tx->retransmits++;
    return NM_OK;
}

int
nmi_stream_tx_poll(nmi_stream_tx *tx, uint64_t now_us, nmi_stream_resend_fn fn,
                   void *ctx)
{
    if (tx == NULL || fn == NULL) {
        return nmi_err(NM_EINVAL, "stream tx poll: NULL argument");
    }
    if (tx->reset) {
        return nmi_err(NM_ECLOSED, "stream %#llx: reset",
                       (unsigned long long)tx->stream_id);
    }
    if (!tx->p.reliable || tx->ring_cap == 0) {
        return NM_OK;
    }
    for (uint32_t i = 0; i < tx->nackq_len; i++) {
        uint64_t s = tx->nackq[i];
        nmi_stream_pkt *pk = tx_live(tx, s);
        if (pk == NULL || !(pk->flags & PKT_NACKED)) {
            continue;
        }
        int rc = tx_resend(tx, s, false, now_us, fn, ctx);
        if (rc == NM_ECLOSED) {
            return rc; /* reset: the queue is gone */
        }
        if (rc != NM_OK) {
            memmove(tx->nackq, tx->nackq + i,
                    (tx->nackq_len - i) * sizeof(*tx->nackq));
            tx->nackq_len -= i;
            return rc;
        }
    }
    tx->nackq_len = 0;
    while (tx->timer_head != NIL) {
        uint64_t s = tx->timer_head;
        nmi_stream_pkt *pk = tx_slot(tx, s);
        if (pk->sent_at + tx->rto > now_us) {
            break;
        }
        int rc = tx_resend(tx, s, true, now_us, fn, ctx);
        if (rc != NM_OK) {
            return rc;
        }
    }
    return NM_OK;
}

uint64_t
nmi_stream_tx_next_deadline(const nmi_stream_tx *tx)
{
    if (tx == NULL || tx->reset || !tx->p.reliable || tx->ring_cap == 0) {
        return UINT64_MAX;
    }
    for (uint32_t i = 0; i < tx->nackq_len; i++) {
        const nmi_stream_pkt *pk = tx_live(tx, tx->nackq[i]);
        if (pk != NULL && (pk->flags & PKT_NACKED)) {
            return 0;
        }
    }
    if (tx->timer_head == NIL) {
        return UINT64_MAX;
    }
    return tx_slot(tx, tx->timer_head)->sent_at + tx->rto;
}

void
nmi_stream_tx_stats_get(const nmi_stream_tx *tx, nmi_stream_tx_stats *out)
{
    if (out == NULL) {
        return;
    }
    memset(out, 0, sizeof(*out));
    if (tx == NULL) {
        return;
    }
    out->next_seq = tx->next_seq;
    out->in_flight = tx->in_flight;
    out->credit = tx->window != 0 ? tx->credit : UINT64_MAX;
    out->window = tx->window;
    out->cwnd = tx->cwnd;
    out->backpressure_events = tx->backpressure_events;
    out->retransmits = tx->retransmits;
    out->packets_sent = tx->packets_sent;
    out->bytes_sent = tx->bytes_sent;
    out->rto_expiries = tx->rto_expiries;
    out->nack_resends = tx->nack_resends;
    out->grants = tx->grants;
    out->stale_grants = tx->stale_grants;
    out->una = tx->una;
    out->srtt_us = (uint32_t)u64_min(tx->srtt, UINT32_MAX);
    out->rto_us = (uint32_t)u64_min(tx->rto, UINT32_MAX);
    out->reset = tx->reset;
}

/* ============================================================= receive */

int
nmi_stream_rx_init(nmi_stream_rx *rx, uint64_t stream_id,
                   const nmi_stream_params *p)
{
    if (rx == NULL) {
        return nmi_err(NM_EINVAL, "stream rx: NULL state");
    }
    nmi_stream_params def;
    if (p == NULL) {
        nmi_stream_params_default(&def);
        p = &def;
    }
    int rc = params_check("stream rx", p);
    if (rc != NM_OK) {
        return rc;
    }
    memset(rx, 0, sizeof(*rx));
    rx->stream_id = stream_id;
    rx->p = *p;
    if (p->rx_buffer_bytes != 0) {
        rx->buffer_limit = p->rx_buffer_bytes;
    } else {
        uint64_t l = (uint64_t)nmi_stream_rtx_window(p->window_bytes) *
                     NMI_WIRE_MAX_PACKET;
        rx->buffer_limit = u64_min(l, NMI_STREAM_RX_BUFFER_CAP);
    }
    return NM_OK;
}

void
nmi_stream_rx_fini(nmi_stream_rx *rx)
{
    if (rx == NULL) {
        return;
    }
    for (uint32_t i = 0; i < rx->held_cap; i++) {
        free(rx->held[i]);
    }
    free(rx->held);
    free(rx->popped);
    rx->held = NULL;
    rx->held_cap = 0;
    rx->popped = NULL;
    rx->buffered = rx->buffered_bytes = 0;
}

void
nmi_stream_rx_reset(nmi_stream_rx *rx)
{
    if (rx != NULL) {
        rx->reset = true;
    }
}

static bool
rx_contains(const nmi_stream_rx *rx, uint64_t seq)
{
    for (uint32_t i = 0; i < rx->nranges; i++) {
        if (seq < rx->ranges[i].start) {
            return false;
        }
        if (seq < rx->ranges[i].end) {
            return true;
        }
    }
    return false;
}

static void
range_remove(nmi_stream_rx *rx, uint32_t i)
{
    memmove(&rx->ranges[i], &rx->ranges[i + 1],
            (rx->nranges - i - 1) * sizeof(rx->ranges[0]));
    rx->nranges--;
}

/* Would seq (> next_expected, not received) need a run of its own? */
static bool
range_needs_new(const nmi_stream_rx *rx, uint64_t seq)
{
    for (uint32_t i = 0; i < rx->nranges; i++) {
        if (rx->ranges[i].end == seq || rx->ranges[i].start == seq + 1) {
            return false;
        }
    }
    return true;
}

/* Record seq (> next_expected, not received). Room was checked. */
static void
range_insert(nmi_stream_rx *rx, uint64_t seq)
{
    uint32_t i = 0;
    while (i < rx->nranges && rx->ranges[i].start <= seq) {
        i++;
    }
    /* ranges[i - 1] (if any) is left of seq, ranges[i] (if any) right. */
    bool left = i > 0 && rx->ranges[i - 1].end == seq;
    bool right = i < rx->nranges && rx->ranges[i].start == seq + 1;
    if (left && right) {
        rx->ranges[i - 1].end = rx->ranges[i].end;
        range_remove(rx, i);
    } else if (left) {
        rx->ranges[i - 1].end = seq + 1;
    } else if (right) {
        rx->ranges[i].start = seq;
    } else {
        memmove(&rx->ranges[i + 1], &rx->ranges[i],
                (rx->nranges - i) * sizeof(rx->ranges[0]));
        rx->ranges[i].start = seq;
        rx->ranges[i].end = seq + 1;
        rx->nranges++;
    }
}

/* next_expected moved: absorb the first run if it now starts there. */
static void
rx_absorb(nmi_stream_rx *rx)
{
    if (rx->nranges > 0 && rx->ranges[0].start == rx->next_expected) {
        rx->next_expected = rx->ranges[0].end;
        range_remove(rx, 0);
    }
}

/* FireAndForget: declare [next_expected, x) lost (x <= the first run's
 * start), then absorb. */
static void
rx_lose_to(nmi_stream_rx *rx, uint64_t x)
{
    if (x > rx->next_expected) {
        rx->lost += x - rx->next_expected;
        rx->next_expected = x;
    }
    rx_absorb(rx);
}

static void
rx_lose_first_gap(nmi_stream_rx *rx)
{
    if (rx->nranges > 0) {
        rx_lose_to(rx, rx->ranges[0].start);
    }
}

/* FireAndForget: gaps more than ff_reorder below the highest are lost. */
static void
rx_ff_expire(nmi_stream_rx *rx)
{
    while (rx->nranges > 0 &&
           rx->highest_seen - rx->next_expected > rx->p.ff_reorder) {
        uint64_t limit = rx->highest_seen - rx->p.ff_reorder;
        if (limit < rx->ranges[0].start) {
            rx_lose_to(rx, limit);
            break;
        }
        rx_lose_first_gap(rx);
    }
}

/* Make the held ring cover seq (seq - next_deliver < HELD_RING_MAX). */
static int
held_reserve(nmi_stream_rx *rx, uint64_t seq)
{
    uint64_t d = seq - rx->next_deliver;
    if (rx->held_cap != 0 && d < rx->held_cap) {
        return NM_OK;
    }
    uint32_t ncap = rx->held_cap ? rx->held_cap : HELD_RING_INIT;
    while (d >= ncap) {
        ncap *= 2;
    }
    nmi_stream_held **nh = calloc(ncap, sizeof(*nh));
    if (nh == NULL) {
        return nmi_err(NM_ENOMEM, "stream rx: no memory");
    }
    for (uint32_t i = 0; i < rx->held_cap; i++) {
        nmi_stream_held *h = rx->held[i];
        if (h != NULL) {
            nh[h->seq & (ncap - 1)] = h;
        }
    }
    free(rx->held);
    rx->held = nh;
    rx->held_cap = ncap;
    return NM_OK;
}

int
nmi_stream_rx_on_packet(nmi_stream_rx *rx, uint64_t seq,
                        const uint8_t *payload, size_t len,
                        uint16_t event_count, size_t cost)
{
    if (rx == NULL || (payload == NULL && len > 0)) {
        return nmi_err(NM_EINVAL, "stream rx: NULL argument");
    }
    if (rx->reset) {
        return nmi_err(NM_ECLOSED, "stream %#llx: reset",
                       (unsigned long long)rx->stream_id);
    }
    if (seq < rx->next_expected || rx_contains(rx, seq)) {
        rx->duplicates++;
        return NMI_RX_DUPLICATE;
    }
    if (seq - rx->next_expected > NMI_STREAM_HORIZON) {
        rx->too_far++;
        return NMI_RX_TOO_FAR;
    }
    bool front = seq == rx->next_expected;
    if (!front && rx->nranges == NMI_STREAM_MAX_RANGES &&
        range_needs_new(rx, seq)) {
        if (rx->p.reliable) {
            rx->dropped++; /* choice 8: resent later */
            return NMI_RX_DROPPED;
        }
        if (seq < rx->ranges[0].start) {
            rx_lose_to(rx, seq); /* seq becomes next_expected */
            front = true;
        } else {
            rx_lose_first_gap(rx); /* frees a run; seq stays above */
        }
    }
    if (rx->p.in_order && rx->buffered == 0) {
        /* Nothing held: only seqs declared lost lie below next_expected. */
        rx->next_deliver = rx->next_expected;
    }
    bool direct = !rx->p.in_order || (front && seq == rx->next_deliver);
    if (!direct) {
        if (rx->buffered >= NMI_STREAM_HORIZON ||
            rx->buffered_bytes + len > rx->buffer_limit ||
            seq - rx->next_deliver >= HELD_RING_MAX) {
            rx->dropped++;
            if (!rx->p.reliable) {
                rx_lose_first_gap(rx); /* let the buffer drain */
            }
            return NMI_RX_DROPPED;
        }
        int rc = held_reserve(rx, seq);
        if (rc != NM_OK) {
            return rc;
        }
        nmi_stream_held *h = malloc(sizeof(*h) + len);
        if (h == NULL) {
            return nmi_err(NM_ENOMEM, "stream rx: no memory");
        }
        h->seq = seq;
        h->len = len;
        h->event_count = event_count;
        if (len > 0) {
            memcpy(h->payload, payload, len);
        }
        rx->held[seq & (rx->held_cap - 1)] = h;
        rx->buffered++;
        rx->buffered_bytes += len;
    }
    if (front) {
        rx->next_expected = seq + 1;
        rx_absorb(rx);
    } else {
        range_insert(rx, seq);
    }
    if (!rx->seen_any || seq > rx->highest_seen) {
        rx->highest_seen = seq;
        rx->seen_any = true;
    }
    rx->accepted++;
    rx->total_consumed += cost;
    if (direct) {
        rx->delivered++;
        if (rx->p.in_order) {
            rx->next_deliver = seq + 1;
        }
    }
    if (!rx->p.reliable) {
        rx_ff_expire(rx);
    }
    return direct ? NMI_RX_DELIVER : NMI_RX_BUFFERED;
}

bool
nmi_stream_rx_pop(nmi_stream_rx *rx, uint64_t *seq, const uint8_t **payload,
                  size_t *len, uint16_t *event_count)
{
    if (rx == NULL) {
        return false;
    }
    free(rx->popped);
    rx->popped = NULL;
    if (!rx->p.in_order) {
        return false;
    }
    while (rx->next_deliver < rx->next_expected) {
        if (rx->buffered == 0) {
            rx->next_deliver = rx->next_expected; /* only lost seqs left */
            break;
        }
        uint64_t s = rx->next_deliver++;
        nmi_stream_held **slot = &rx->held[s & (rx->held_cap - 1)];
        nmi_stream_held *h = *slot;
        if (h == NULL || h->seq != s) {
            continue; /* declared lost (FireAndForget) */
        }
        *slot = NULL;
        rx->buffered--;
        rx->buffered_bytes -= h->len;
        rx->delivered++;
        rx->popped = h;
        if (seq != NULL) {
            *seq = s;
        }
        if (payload != NULL) {
            *payload = h->payload;
        }
        if (len != NULL) {
            *len = h->len;
        }
        if (event_count != NULL) {
            *event_count = h->event_count;
        }
        return true;
    }
    return false;
}

bool
nmi_stream_rx_window(nmi_stream_rx *rx, bool force,
                     nmi_wire_stream_window *out)
{
    if (rx == NULL || out == NULL) {
        return false;
    }
    if (!force && !rx->p.reliable && rx->p.window_bytes == 0) {
        return false; /* choice 11 */
    }
    bool changed = !rx->granted || rx->grant_consumed != rx->total_consumed ||
                   rx->grant_ack != rx->next_expected;
    if (!changed && !force) {
        return false;
    }
    out->stream_id = rx->stream_id;
    out->total_consumed = rx->total_consumed;
    out->ack_seq = rx->next_expected;
    rx->granted = true;
    rx->grant_consumed = rx->total_consumed;
    rx->grant_ack = rx->next_expected;
    return true;
}

bool
nmi_stream_rx_nack(nmi_stream_rx *rx, nmi_wire_stream_nack *out)
{
    if (rx == NULL || out == NULL || rx->reset || !rx->p.reliable ||
        rx->nranges == 0) {
        return false;
    }
    uint64_t base = rx->next_expected + 1; /* bit 0 */
    uint64_t bm = 0;
    uint64_t cur = base;
    for (uint32_t i = 0; i < rx->nranges && cur < base + 64; i++) {
        uint64_t gap_end = u64_min(rx->ranges[i].start, base + 64);
        for (uint64_t s = cur; s < gap_end; s++) {
            bm |= UINT64_C(1) << (s - base);
        }
        cur = rx->ranges[i].end;
    }
    out->stream_id = rx->stream_id;
    out->next_expected = rx->next_expected;
    out->bitmap = bm;
    return true;
}

bool
nmi_stream_rx_ack_ranges(nmi_stream_rx *rx, nmi_wire_ack_ranges *out)
{
    if (rx == NULL || out == NULL || rx->reset || !rx->p.reliable ||
        rx->nranges == 0) {
        return false;
    }
    memset(out, 0, sizeof(*out));
    out->stream_id = rx->stream_id;
    out->ack_seq = rx->next_expected;
    uint32_t n = rx->nranges < NMI_WIRE_ACK_RANGES_MAX
                     ? rx->nranges
                     : NMI_WIRE_ACK_RANGES_MAX;
    for (uint32_t k = 0; k < n; k++) {
        out->ranges[k].start = rx->ranges[rx->nranges - 1 - k].start;
        out->ranges[k].end = rx->ranges[rx->nranges - 1 - k].end;
    }
    out->count = (uint8_t)n;
    return true;
}

int
nmi_stream_rx_skip_to(nmi_stream_rx *rx, uint64_t end_seq)
{
    if (rx == NULL) {
        return nmi_err(NM_EINVAL, "stream rx: NULL state");
    }
    if (rx->p.reliable) {
        return nmi_err(NM_EINVAL,
                       "stream %#llx: reliable streams never skip seqs",
                       (unsigned long long)rx->stream_id);
    }
    while (rx->nranges > 0 && rx->ranges[0].start < end_seq) {
        rx_lose_first_gap(rx);
    }
    rx_lose_to(rx, end_seq);
    return NM_OK;
}

void
nmi_stream_rx_stats_get(const nmi_stream_rx *rx, nmi_stream_rx_stats *out)
{
    if (out == NULL) {
        return;
    }
    memset(out, 0, sizeof(*out));
    if (rx == NULL) {
        return;
    }
    out->next_expected = rx->next_expected;
    out->highest_seen = rx->highest_seen;
    out->delivered_packets = rx->delivered;
    out->duplicates = rx->duplicates;
    out->too_far = rx->too_far;
    out->lost = rx->lost;
    out->dropped = rx->dropped;
    out->accepted = rx->accepted;
    out->total_consumed = rx->total_consumed;
    out->buffered = rx->buffered;
    out->buffered_bytes = rx->buffered_bytes;
    out->gaps = rx->nranges;
    out->reset = rx->reset;
}
