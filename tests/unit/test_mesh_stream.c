/*
 * tests/unit/test_mesh_stream.c - the per-stream state machines
 * (src/mesh/stream.h): credit, grants, retransmit buffer, RTO, NACKs, ACK
 * ranges, congestion window, retry budget, receiver tracking and in-order
 * release; then a sender and a receiver exchanging 100,000 messages through
 * the seeded fault injector (5 % drop, 5 % duplicate, reorder window 8) on
 * a simulated clock.
 *
 * Every simulation assertion prints its seed; NM_TEST_SEED=<n> in the
 * environment replaces the built-in seeds.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "mesh/port.h"
#include "mesh/stream.h"
#include "wire/control.h"
#include "wire/frame.h"

#define MS 1000u

/* ---- helpers -------------------------------------------------------- */

static nmi_stream_params
params(bool reliable, uint32_t window)
{
    nmi_stream_params p;
    nmi_stream_params_default(&p);
    p.reliable = reliable;
    p.window_bytes = window;
    return p;
}

static nmi_stream_tx_stats
txs(const nmi_stream_tx *tx)
{
    nmi_stream_tx_stats s;
    nmi_stream_tx_stats_get(tx, &s);
    return s;
}

static nmi_stream_rx_stats
rxs(const nmi_stream_rx *rx)
{
    nmi_stream_rx_stats s;
    nmi_stream_rx_stats_get(rx, &s);
    return s;
}

/* Commit a packet of `len` bytes filled with (seq & 0xff), expecting ok. */
static uint64_t
commit(nmi_stream_tx *tx, size_t len, uint64_t now)
{
    uint8_t buf[NMI_WIRE_MAX_PAYLOAD];
    memset(buf, (int)(tx->next_seq & 0xff), len);
    uint64_t seq = UINT64_MAX;
    int rc = nmi_stream_tx_commit(tx, buf, len, 1, now, &seq);
    cr_assert_eq(rc, NM_OK, "commit: %s", nm_errdetail());
    return seq;
}

/* A resend hook recording what it was asked to send. */
typedef struct resends {
    uint64_t seq[256];
    size_t n;
    int fail; /* return this instead of sending, when non-zero */
    bool bad_payload;
} resends;

static int
record_resend(void *ctx, uint64_t seq, const uint8_t *payload, size_t len,
              uint16_t event_count)
{
    resends *r = ctx;
    if (r->fail != 0) {
        return r->fail;
    }
    for (size_t i = 0; i < len; i++) {
        if (payload[i] != (uint8_t)(seq & 0xff)) {
            r->bad_payload = true;
        }
    }
    if (event_count != 1) {
        r->bad_payload = true;
    }
    if (r->n < NMI_ARRAY_LEN(r->seq)) {
        r->seq[r->n] = seq;
    }
    r->n++;
    return NM_OK;
}

/* ---- parameters ----------------------------------------------------- */

Test(mesh_stream, defaults_and_formulas)
{
    nmi_stream_params p;
    nmi_stream_params_default(&p);
    cr_assert_not(p.reliable);
    cr_assert_not(p.in_order);
    cr_assert_eq(p.window_bytes, 65536);
    cr_assert_eq(p.max_retries, 3);
    cr_assert_eq(p.rto_init_us, 50000);
    cr_assert_eq(p.rto_min_us, 10000);
    cr_assert_eq(p.rto_max_us, 2000000);
    cr_assert_eq(p.cwnd_init, 32);
    cr_assert_eq(p.cwnd_min, 2);
    cr_assert_eq(NMI_STREAM_PACKET_OVERHEAD, 84);
    cr_assert_eq(nmi_stream_cost(0), 84);
    cr_assert_eq(nmi_stream_cost(8108), 8192);
    cr_assert_eq(nmi_stream_rtx_window(0), 32);
    cr_assert_eq(nmi_stream_rtx_window(16384), 32);
    cr_assert_eq(nmi_stream_rtx_window(65536), 128);
    cr_assert_eq(nmi_stream_rtx_window(1u << 20), 2048);
    cr_assert_eq(nmi_stream_rtx_window(UINT32_MAX), 16384);

    nmi_stream_tx tx;
    p.rto_min_us = 0;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_EINVAL);
    nmi_stream_params_default(&p);
    p.cwnd_min = 40;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_EINVAL);
    nmi_stream_params_default(&p);
    p.rto_min_us = 3000000;
    nmi_stream_rx rx;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_EINVAL);
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, NULL), NM_OK);
    cr_assert_eq(txs(&tx).rto_us, 50000);
    cr_assert_eq(txs(&tx).cwnd, 32);
    cr_assert_eq(txs(&tx).credit, 65536);
    nmi_stream_tx_fini(&tx);
    nmi_stream_tx_fini(NULL);
    nmi_stream_rx_fini(NULL);
}

Test(mesh_stream, sequences_start_at_zero)
{
    for (int rel = 0; rel < 2; rel++) {
        nmi_stream_params p = params(rel, 65536);
        nmi_stream_tx tx;
        cr_assert_eq(nmi_stream_tx_init(&tx, 7, &p), NM_OK);
        for (uint64_t i = 0; i < 5; i++) {
            cr_assert_eq(commit(&tx, 10, 0), i);
        }
        cr_assert_eq(txs(&tx).next_seq, 5);
        cr_assert_eq(txs(&tx).packets_sent, 5);
        cr_assert_eq(txs(&tx).bytes_sent, 5 * 94);
        cr_assert_eq(txs(&tx).in_flight, rel ? 5 : 0);
        nmi_stream_tx_fini(&tx);
    }
}

/* ---- credit --------------------------------------------------------- */

Test(mesh_stream, credit_exhaustion_backpressure_grant)
{
    nmi_stream_params p = params(false, 1000);
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    cr_assert_eq(nmi_stream_tx_admit(&tx, 416), NM_OK); /* cost 500 */
    commit(&tx, 416, 0);
    commit(&tx, 416, 0);
    cr_assert_eq(txs(&tx).credit, 0);
    cr_assert_eq(nmi_stream_tx_admit(&tx, 0), NM_EBACKPRESSURE);
    cr_assert_eq(txs(&tx).backpressure_events, 1);
    uint8_t b[8] = {0};
    uint64_t seq = 99;
    cr_assert_eq(nmi_stream_tx_commit(&tx, b, 8, 1, 0, &seq),
                 NM_EBACKPRESSURE);
    cr_assert_eq(seq, 99, "a refused commit assigns no seq");
    cr_assert_eq(txs(&tx).backpressure_events, 2);
    cr_assert_eq(txs(&tx).next_seq, 2);
    /* The receiver accounted the first packet: 500 bytes come back. */
    nmi_stream_tx_on_window(&tx, 500, 0, 1 * MS);
    cr_assert_eq(txs(&tx).credit, 500);
    cr_assert_eq(nmi_stream_tx_admit(&tx, 416), NM_OK);
    cr_assert_eq(nmi_stream_tx_admit(&tx, 417), NM_EBACKPRESSURE);
    commit(&tx, 416, 0);
    cr_assert_eq(txs(&tx).credit, 0);
    nmi_stream_tx_on_window(&tx, 1500, 0, 2 * MS);
    cr_assert_eq(txs(&tx).credit, 1000);
    cr_assert_eq(nmi_stream_tx_admit(&tx, 8109), NM_ETOOBIG);
    nmi_stream_tx_fini(&tx);
}

Test(mesh_stream, grants_stale_and_oversized)
{
    nmi_stream_params p = params(false, 1000);
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    commit(&tx, 416, 0); /* sent 500 */
    commit(&tx, 416, 0); /* sent 1000 */
    /* Over-large: clamped to the 1000 bytes sent, credit capped at the
     * window. */
    nmi_stream_tx_on_window(&tx, UINT64_MAX, 0, 0);
    cr_assert_eq(txs(&tx).credit, 1000);
    cr_assert_eq(txs(&tx).grants, 1);
    /* Stale (not above the largest seen): ignored. */
    nmi_stream_tx_on_window(&tx, 400, 0, 0);
    nmi_stream_tx_on_window(&tx, 1000, 0, 0);
    cr_assert_eq(txs(&tx).stale_grants, 2);
    cr_assert_eq(txs(&tx).credit, 1000);
    /* The clamp kept honest grants working after the bogus one. */
    commit(&tx, 416, 0);
    commit(&tx, 416, 0); /* sent 2000, credit 0 */
    cr_assert_eq(txs(&tx).credit, 0);
    nmi_stream_tx_on_window(&tx, 1500, 0, 0);
    cr_assert_eq(txs(&tx).credit, 500);
    /* A grant never pushes credit above the window. */
    nmi_stream_tx_on_window(&tx, 2000, 0, 0);
    cr_assert_eq(txs(&tx).credit, 1000);
    nmi_stream_tx_fini(&tx);
}

Test(mesh_stream, window_zero_is_unbounded)
{
    nmi_stream_params p = params(false, 0);
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    for (int i = 0; i < 1000; i++) {
        commit(&tx, 8108, 0);
    }
    cr_assert_eq(txs(&tx).credit, UINT64_MAX);
    cr_assert_eq(txs(&tx).backpressure_events, 0);
    nmi_stream_tx_fini(&tx);
    /* No grants needed from an unbounded FireAndForget receiver. */
    nmi_stream_rx rx;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    nmi_wire_stream_window w;
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 0, NULL, 0, 0, 84),
                 NMI_RX_DELIVER);
    cr_assert_not(nmi_stream_rx_window(&rx, false, &w));
    cr_assert(nmi_stream_rx_window(&rx, true, &w));
    cr_assert_eq(w.total_consumed, 84);
    nmi_stream_rx_fini(&rx);
}

/* Choice 10: FireAndForget losses return their credit through ack_seq. */
Test(mesh_stream, ff_credit_heals_through_ack_seq)
{
    nmi_stream_params p = params(false, 1000);
    for (int heal = 0; heal < 2; heal++) {
        nmi_stream_tx tx;
        nmi_stream_rx rx;
        cr_assert_eq(nmi_stream_tx_init(&tx, 5, &p), NM_OK);
        cr_assert_eq(nmi_stream_rx_init(&rx, 5, &p), NM_OK);
        uint8_t b[166] = {0};
        for (uint64_t s = 0; s < 4; s++) { /* cost 250 each */
            commit(&tx, sizeof(b), 0);
            if (s != 2) { /* seq 2 is lost */
                cr_assert_eq(
                    nmi_stream_rx_on_packet(&rx, s, b, sizeof(b), 1, 250),
                    NMI_RX_DELIVER);
            }
        }
        cr_assert_eq(txs(&tx).credit, 0);
        cr_assert_eq(nmi_stream_rx_skip_to(&rx, 4), NM_OK);
        nmi_wire_stream_window w;
        cr_assert(nmi_stream_rx_window(&rx, false, &w));
        cr_assert_eq(w.total_consumed, 750);
        cr_assert_eq(w.ack_seq, 4);
        cr_assert_eq(rxs(&rx).lost, 1);
        /* heal 0: an upstream receiver (ack_seq 0) leaks the lost 250 */
        nmi_stream_tx_on_window(&tx, w.total_consumed, heal ? w.ack_seq : 0,
                                0);
        cr_assert_eq(txs(&tx).credit, heal ? 1000 : 750);
        nmi_stream_tx_fini(&tx);
        nmi_stream_rx_fini(&rx);
    }
}

/* ---- reliable sender ------------------------------------------------ */

Test(mesh_stream, cumulative_ack_prunes_buffer)
{
    nmi_stream_params p = params(true, 65536);
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    for (int i = 0; i < 5; i++) {
        commit(&tx, 100, 0);
    }
    nmi_stream_tx_on_window(&tx, 3 * 184, 3, 1 * MS);
    cr_assert_eq(txs(&tx).in_flight, 2);
    cr_assert_eq(txs(&tx).una, 3);
    /* An ack beyond what was sent acknowledges only what exists. */
    nmi_stream_tx_on_window(&tx, 5 * 184, 1000, 2 * MS);
    cr_assert_eq(txs(&tx).in_flight, 0);
    cr_assert_eq(txs(&tx).una, 5);
    cr_assert_eq(nmi_stream_tx_next_deadline(&tx), UINT64_MAX);
    nmi_stream_tx_fini(&tx);
}

Test(mesh_stream, cwnd_limits_and_grows)
{
    nmi_stream_params p = params(true, 1u << 20); /* rtx window 2048 */
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    for (int i = 0; i < 32; i++) {
        commit(&tx, 10, 0);
    }
    cr_assert_eq(nmi_stream_tx_admit(&tx, 10), NM_EBACKPRESSURE,
                 "in flight == cwnd");
    cr_assert_eq(txs(&tx).backpressure_events, 1);
    nmi_stream_tx_on_window(&tx, 0, 32, 5 * MS); /* a whole window acked */
    cr_assert_eq(txs(&tx).cwnd, 33);
    for (int i = 0; i < 33; i++) {
        commit(&tx, 10, 5 * MS);
    }
    cr_assert_eq(nmi_stream_tx_admit(&tx, 10), NM_EBACKPRESSURE);
    nmi_stream_tx_on_window(&tx, 0, 32 + 16, 10 * MS); /* half a window */
    cr_assert_eq(txs(&tx).cwnd, 33);
    nmi_stream_tx_on_window(&tx, 0, 32 + 33, 10 * MS);
    cr_assert_eq(txs(&tx).cwnd, 34);
    nmi_stream_tx_fini(&tx);

    /* The retransmit window caps in-flight (and cwnd) too. */
    p = params(true, 8192); /* rtx window 32 */
    p.cwnd_init = 64;
    p.window_bytes = 1u << 14;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    for (int i = 0; i < 32; i++) {
        commit(&tx, 0, 0);
    }
    cr_assert_eq(nmi_stream_tx_admit(&tx, 0), NM_EBACKPRESSURE);
    nmi_stream_tx_fini(&tx);
}

Test(mesh_stream, cwnd_halves_once_per_rtt)
{
    nmi_stream_params p = params(true, 1u << 20);
    p.max_retries = 10;
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    for (int i = 0; i < 32; i++) {
        commit(&tx, 10, 0);
    }
    resends r = {0};
    /* 20 ms later (no RTT sample: hold-off 10 ms) seq 0 is NACKed. */
    nmi_stream_tx_on_nack(&tx, 0, 0, 20 * MS);
    cr_assert_eq(txs(&tx).cwnd, 16);
    /* More losses of packets sent before that cut: same event. */
    nmi_stream_tx_on_nack(&tx, 0, 0x6, 21 * MS);
    cr_assert_eq(txs(&tx).cwnd, 16);
    cr_assert_eq(nmi_stream_tx_poll(&tx, 21 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(r.n, 3);
    cr_assert_eq(r.seq[0], 0);
    cr_assert_eq(r.seq[1], 2);
    cr_assert_eq(r.seq[2], 3);
    /* The resent seq 0 (sent at 21 ms, after the cut) is lost again. */
    nmi_stream_tx_on_nack(&tx, 0, 0, 40 * MS);
    cr_assert_eq(txs(&tx).cwnd, 8);
    cr_assert_eq(nmi_stream_tx_poll(&tx, 40 * MS, record_resend, &r), NM_OK);
    /* RTO expiries of the packets sent at 0 ms (before the 40 ms cut) do
     * not cut again; seq 0, resent at 40 ms, times out at 90 ms and
     * again at 140 ms: 8 -> 4 -> 2, then the floor. */
    for (uint64_t t = 41; t <= 89; t++) {
        cr_assert_eq(nmi_stream_tx_poll(&tx, t * MS, record_resend, &r),
                     NM_OK);
    }
    cr_assert_eq(txs(&tx).cwnd, 8);
    cr_assert_gt(txs(&tx).rto_expiries, 0);
    cr_assert_eq(nmi_stream_tx_poll(&tx, 90 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(txs(&tx).cwnd, 4);
    for (uint64_t t = 91; t <= 400; t++) {
        cr_assert_eq(nmi_stream_tx_poll(&tx, t * MS, record_resend, &r),
                     NM_OK);
    }
    cr_assert_eq(txs(&tx).cwnd, 2, "cwnd_min");
    cr_assert_not(txs(&tx).reset);
    nmi_stream_tx_fini(&tx);
}

Test(mesh_stream, rto_estimator_rfc6298)
{
    nmi_stream_params p = params(true, 65536);
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    cr_assert_eq(txs(&tx).rto_us, 50000);
    cr_assert_eq(txs(&tx).srtt_us, 0);
    /* First sample R = 30 ms: SRTT = R, RTTVAR = R/2, RTO = R + 4 R/2. */
    commit(&tx, 10, 0);
    nmi_stream_tx_on_window(&tx, 0, 1, 30 * MS);
    cr_assert_eq(txs(&tx).srtt_us, 30000);
    cr_assert_eq(txs(&tx).rto_us, 90000);
    /* Second R = 10 ms: RTTVAR = 3/4 15000 + 1/4 20000 = 16250,
     * SRTT = 7/8 30000 + 1/8 10000 = 27500, RTO = 27500 + 65000. */
    commit(&tx, 10, 100 * MS);
    nmi_stream_tx_on_window(&tx, 0, 2, 110 * MS);
    cr_assert_eq(txs(&tx).srtt_us, 27500);
    cr_assert_eq(txs(&tx).rto_us, 92500);
    /* One sample per ack: the newest packet acknowledged (seq 3, 5 ms). */
    commit(&tx, 10, 200 * MS);
    commit(&tx, 10, 205 * MS);
    nmi_stream_tx_on_window(&tx, 0, 4, 210 * MS);
    cr_assert_eq(txs(&tx).srtt_us, (7 * 27500 + 5000) / 8);
    nmi_stream_tx_fini(&tx);

    /* Clamp to 10 ms below. */
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    commit(&tx, 10, 0);
    nmi_stream_tx_on_window(&tx, 0, 1, 1 * MS);
    cr_assert_eq(txs(&tx).srtt_us, 1000);
    cr_assert_eq(txs(&tx).rto_us, 10000);
    nmi_stream_tx_fini(&tx);

    /* Clamp to 2 s above. */
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    p.max_retries = 100;
    commit(&tx, 10, 0);
    nmi_stream_tx_on_window(&tx, 0, 1, 1500 * MS);
    cr_assert_eq(txs(&tx).rto_us, 2000000);
    nmi_stream_tx_fini(&tx);

    /* Karn: an ack of a retransmitted packet gives no sample. */
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    resends r = {0};
    commit(&tx, 10, 0);
    cr_assert_eq(nmi_stream_tx_poll(&tx, 50 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(r.n, 1);
    nmi_stream_tx_on_window(&tx, 0, 1, 52 * MS); /* ambiguous: 2 or 52 */
    cr_assert_eq(txs(&tx).srtt_us, 0);
    cr_assert_eq(txs(&tx).rto_us, 50000);
    cr_assert_eq(txs(&tx).in_flight, 0);
    nmi_stream_tx_fini(&tx);
}

Test(mesh_stream, rto_resend_without_backoff)
{
    nmi_stream_params p = params(true, 65536);
    p.max_retries = 10;
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    resends r = {0};
    commit(&tx, 10, 0);
    commit(&tx, 20, 5 * MS);
    cr_assert_eq(nmi_stream_tx_next_deadline(&tx), 50 * MS);
    cr_assert_eq(nmi_stream_tx_poll(&tx, 50 * MS - 1, record_resend, &r),
                 NM_OK);
    cr_assert_eq(r.n, 0);
    cr_assert_eq(nmi_stream_tx_poll(&tx, 50 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.seq[0], 0, "same seq on resend");
    cr_assert_not(r.bad_payload, "the stored plaintext is resent");
    /* Oldest transmission first: seq 1 (5 ms) then seq 0 (50 ms). */
    cr_assert_eq(nmi_stream_tx_next_deadline(&tx), 55 * MS);
    cr_assert_eq(nmi_stream_tx_poll(&tx, 55 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.seq[1], 1);
    /* No exponential backoff: the next expiry is one RTO later. */
    cr_assert_eq(nmi_stream_tx_next_deadline(&tx), 100 * MS);
    cr_assert_eq(nmi_stream_tx_poll(&tx, 100 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(r.n, 3);
    cr_assert_eq(txs(&tx).retransmits, 3);
    cr_assert_eq(txs(&tx).rto_expiries, 3);
    /* A failing hook stops the poll; the packet stays due, uncounted. */
    r.fail = NM_EAGAIN;
    cr_assert_eq(nmi_stream_tx_poll(&tx, 105 * MS, record_resend, &r),
                 NM_EAGAIN);
    cr_assert_eq(txs(&tx).retransmits, 3);
    cr_assert_eq(nmi_stream_tx_next_deadline(&tx), 105 * MS);
    r.fail = 0;
    cr_assert_eq(nmi_stream_tx_poll(&tx, 106 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(txs(&tx).retransmits, 4);
    nmi_stream_tx_fini(&tx);
}

Test(mesh_stream, retry_budget_resets_stream)
{
    nmi_stream_params p = params(true, 65536); /* default max_retries 3 */
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 0x77, &p), NM_OK);
    resends r = {0};
    commit(&tx, 10, 0);
    commit(&tx, 10, 0);
    uint64_t t = 0;
    int rc = NM_OK;
    while (rc == NM_OK && t < 10000 * MS) {
        t += 1 * MS;
        rc = nmi_stream_tx_poll(&tx, t, record_resend, &r);
    }
    cr_assert_eq(rc, NM_ECLOSED);
    cr_assert_eq(t, 200 * MS, "3 resends at 50/100/150 ms, fail at 200");
    cr_assert_eq(r.n, 6);
    nmi_stream_tx_stats s = txs(&tx);
    cr_assert(s.reset);
    cr_assert_eq(s.in_flight, 0);
    cr_assert_eq(nmi_stream_tx_admit(&tx, 1), NM_ECLOSED);
    uint8_t b[1] = {0};
    cr_assert_eq(nmi_stream_tx_commit(&tx, b, 1, 1, t, NULL), NM_ECLOSED);
    cr_assert_eq(nmi_stream_tx_poll(&tx, t, record_resend, &r), NM_ECLOSED);
    cr_assert_eq(nmi_stream_tx_next_deadline(&tx), UINT64_MAX);
    nmi_stream_tx_on_window(&tx, 100, 2, t); /* ignored after reset */
    nmi_stream_tx_fini(&tx);
}

Test(mesh_stream, nack_bitmap_and_holdoff)
{
    nmi_stream_params p = params(true, 65536);
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    resends r = {0};
    for (int i = 0; i < 10; i++) {
        commit(&tx, 10, 0);
    }
    /* Too young (< rto_min without an RTT sample): nothing queued. */
    nmi_stream_tx_on_nack(&tx, 0, 0x5, 5 * MS);
    cr_assert_eq(txs(&tx).in_flight, 10);
    cr_assert_neq(nmi_stream_tx_next_deadline(&tx), 0);
    /* next_expected 2 acks 0 and 1 (an RTT sample of 20 ms: the hold-off
     * is now SRTT); 2 is missing, bit 0 -> 3, bit 2 -> 5; bit 40 is
     * beyond next_seq. */
    nmi_stream_tx_on_nack(&tx, 2, 0x5 | (UINT64_C(1) << 40), 20 * MS);
    cr_assert_eq(txs(&tx).in_flight, 8);
    cr_assert_eq(txs(&tx).srtt_us, 20000);
    cr_assert_eq(nmi_stream_tx_next_deadline(&tx), 0, "due now");
    nmi_stream_tx_on_nack(&tx, 2, 0x5, 20 * MS); /* queued once */
    cr_assert_eq(nmi_stream_tx_poll(&tx, 20 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(r.n, 3);
    cr_assert_eq(r.seq[0], 2);
    cr_assert_eq(r.seq[1], 3);
    cr_assert_eq(r.seq[2], 5);
    cr_assert_not(r.bad_payload);
    cr_assert_eq(txs(&tx).nack_resends, 3);
    /* The same NACK again right away cannot reflect the resends. */
    nmi_stream_tx_on_nack(&tx, 2, 0x5, 21 * MS);
    cr_assert_eq(nmi_stream_tx_poll(&tx, 21 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(r.n, 3);
    /* A stale NACK (lower next_expected) does not resurrect anything. */
    nmi_stream_tx_on_nack(&tx, 0, 0x1, 40 * MS);
    cr_assert_eq(txs(&tx).in_flight, 8);
    cr_assert_eq(nmi_stream_tx_poll(&tx, 40 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(r.n, 3);
    nmi_stream_tx_fini(&tx);

    /* FireAndForget ignores NACKs. */
    p = params(false, 65536);
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    commit(&tx, 10, 0);
    nmi_stream_tx_on_nack(&tx, 0, 0, 100 * MS);
    cr_assert_eq(nmi_stream_tx_poll(&tx, 100 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(r.n, 3);
    cr_assert_eq(nmi_stream_tx_next_deadline(&tx), UINT64_MAX);
    nmi_stream_tx_fini(&tx);
}

Test(mesh_stream, ack_ranges_are_selective_acks)
{
    nmi_stream_params p = params(true, 65536);
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 9, &p), NM_OK);
    for (int i = 0; i < 10; i++) {
        commit(&tx, 10, 0);
    }
    nmi_wire_ack_ranges m = {
        .stream_id = 9, .ack_seq = 2, .count = 2, .ranges = {{7, 9}, {4, 6}}};
    m.stream_id = 8; /* another stream: ignored */
    nmi_stream_tx_on_ack_ranges(&tx, &m, 1 * MS);
    cr_assert_eq(txs(&tx).in_flight, 10);
    m.stream_id = 9;
    nmi_stream_tx_on_ack_ranges(&tx, &m, 1 * MS);
    cr_assert_eq(txs(&tx).in_flight, 4, "2, 3, 6 and 9 remain");
    cr_assert_eq(txs(&tx).una, 2);
    cr_assert_eq(txs(&tx).srtt_us, 1000);
    resends r = {0};
    cr_assert_eq(nmi_stream_tx_poll(&tx, 50 * MS, record_resend, &r), NM_OK);
    cr_assert_eq(r.n, 4);
    cr_assert_eq(r.seq[0], 2);
    cr_assert_eq(r.seq[1], 3);
    cr_assert_eq(r.seq[2], 6);
    cr_assert_eq(r.seq[3], 9);
    m = (nmi_wire_ack_ranges){
        .stream_id = 9, .ack_seq = 4, .count = 1, .ranges = {{9, 10}}};
    nmi_stream_tx_on_ack_ranges(&tx, &m, 60 * MS);
    cr_assert_eq(txs(&tx).in_flight, 1);
    cr_assert_eq(txs(&tx).una, 6);
    nmi_stream_tx_fini(&tx);
}

/* Choice 5: a hole at una stops new seqs at the receiver's horizon. */
Test(mesh_stream, sender_span_stops_at_horizon)
{
    nmi_stream_params p = params(true, UINT32_MAX); /* rtx window 16384 */
    p.cwnd_init = 16384;
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    for (uint32_t i = 0; i < NMI_STREAM_HORIZON; i++) {
        commit(&tx, 0, 0);
    }
    nmi_wire_ack_ranges m = {.stream_id = 1,
                             .ack_seq = 0,
                             .count = 1,
                             .ranges = {{1, NMI_STREAM_HORIZON}}};
    nmi_stream_tx_on_ack_ranges(&tx, &m, 1 * MS);
    cr_assert_eq(txs(&tx).in_flight, 1);
    cr_assert_eq(nmi_stream_tx_admit(&tx, 0), NM_EBACKPRESSURE);
    nmi_stream_tx_on_window(&tx, 0, 1, 2 * MS);
    cr_assert_eq(txs(&tx).una, NMI_STREAM_HORIZON);
    cr_assert_eq(nmi_stream_tx_admit(&tx, 0), NM_OK);
    nmi_stream_tx_fini(&tx);
}

/* ---- receiver ------------------------------------------------------- */

Test(mesh_stream, rx_arrival_order_and_duplicates)
{
    nmi_stream_params p = params(true, 65536);
    nmi_stream_rx rx;
    cr_assert_eq(nmi_stream_rx_init(&rx, 3, &p), NM_OK);
    uint8_t b[16] = {0};
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 0, b, 16, 1, 100),
                 NMI_RX_DELIVER);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 2, b, 16, 1, 100),
                 NMI_RX_DELIVER, "arrival order");
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 2, b, 16, 1, 100),
                 NMI_RX_DUPLICATE);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 1, b, 16, 1, 100),
                 NMI_RX_DELIVER);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 0, b, 16, 1, 100),
                 NMI_RX_DUPLICATE);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 1, b, 16, 1, 100),
                 NMI_RX_DUPLICATE);
    nmi_stream_rx_stats s = rxs(&rx);
    cr_assert_eq(s.next_expected, 3);
    cr_assert_eq(s.highest_seen, 2);
    cr_assert_eq(s.delivered_packets, 3);
    cr_assert_eq(s.duplicates, 3);
    cr_assert_eq(s.total_consumed, 300, "duplicates cost nothing");
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 4, NULL, 1, 1, 1), NM_EINVAL);
    cr_assert_not(nmi_stream_rx_pop(&rx, NULL, NULL, NULL, NULL));
    nmi_stream_rx_reset(&rx);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 3, b, 16, 1, 100), NM_ECLOSED);
    cr_assert(rxs(&rx).reset);
    nmi_stream_rx_fini(&rx);
}

Test(mesh_stream, rx_nack_and_ack_ranges)
{
    nmi_stream_params p = params(true, 65536);
    nmi_stream_rx rx;
    cr_assert_eq(nmi_stream_rx_init(&rx, 3, &p), NM_OK);
    nmi_wire_stream_nack k;
    nmi_wire_ack_ranges a;
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 0, NULL, 0, 0, 84),
                 NMI_RX_DELIVER);
    cr_assert_not(nmi_stream_rx_nack(&rx, &k), "no gap");
    cr_assert_not(nmi_stream_rx_ack_ranges(&rx, &a));
    uint64_t got[] = {2, 5, 6, 70};
    for (size_t i = 0; i < NMI_ARRAY_LEN(got); i++) {
        cr_assert_eq(nmi_stream_rx_on_packet(&rx, got[i], NULL, 0, 0, 84),
                     NMI_RX_DELIVER);
    }
    cr_assert(nmi_stream_rx_nack(&rx, &k));
    cr_assert_eq(k.stream_id, 3);
    cr_assert_eq(k.next_expected, 1);
    uint64_t miss[65];
    size_t n = nmi_wire_stream_nack_missing(&k, miss);
    /* 1, 3, 4, then 7..65 (the bitmap covers next_expected+1..+64). */
    cr_assert_eq(n, 3 + (65 - 7 + 1));
    cr_assert_eq(miss[0], 1);
    cr_assert_eq(miss[1], 3);
    cr_assert_eq(miss[2], 4);
    cr_assert_eq(miss[3], 7);
    cr_assert_eq(miss[n - 1], 65);
    cr_assert(nmi_stream_rx_ack_ranges(&rx, &a));
    cr_assert_eq(a.ack_seq, 1);
    cr_assert_eq(a.count, 3);
    cr_assert_eq(a.ranges[0].start, 70);
    cr_assert_eq(a.ranges[0].end, 71);
    cr_assert_eq(a.ranges[1].start, 5);
    cr_assert_eq(a.ranges[1].end, 7);
    cr_assert_eq(a.ranges[2].start, 2);
    cr_assert_eq(a.ranges[2].end, 3);
    uint8_t enc[NMI_WIRE_ACK_RANGES_MAX_LEN];
    size_t wn;
    cr_assert_eq(nmi_wire_ack_ranges_encode(&a, enc, sizeof(enc), &wn), NM_OK,
                 "a valid message: %s", nm_errdetail());
    /* Only the highest seq seen bounds the bitmap. */
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 1, NULL, 0, 0, 84),
                 NMI_RX_DELIVER);
    cr_assert(nmi_stream_rx_nack(&rx, &k));
    cr_assert_eq(k.next_expected, 3);
    n = nmi_wire_stream_nack_missing(&k, miss);
    cr_assert_eq(miss[0], 3);
    cr_assert_eq(miss[1], 4);
    cr_assert_eq(miss[2], 7);
    cr_assert_eq(miss[n - 1], 67, "bitmap ends at next_expected + 64");
    /* FireAndForget never NACKs. */
    nmi_stream_rx_fini(&rx);
    p = params(false, 65536);
    cr_assert_eq(nmi_stream_rx_init(&rx, 3, &p), NM_OK);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 3, NULL, 0, 0, 84),
                 NMI_RX_DELIVER);
    cr_assert_not(nmi_stream_rx_nack(&rx, &k));
    cr_assert_not(nmi_stream_rx_ack_ranges(&rx, &a));
    nmi_stream_rx_fini(&rx);
}

Test(mesh_stream, rx_grants)
{
    nmi_stream_params p = params(true, 65536);
    nmi_stream_rx rx;
    cr_assert_eq(nmi_stream_rx_init(&rx, 11, &p), NM_OK);
    nmi_wire_stream_window w;
    cr_assert(nmi_stream_rx_window(&rx, false, &w), "first grant");
    cr_assert_eq(w.total_consumed, 0);
    cr_assert_not(nmi_stream_rx_window(&rx, false, &w));
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 1, NULL, 0, 0, 100),
                 NMI_RX_DELIVER);
    cr_assert(nmi_stream_rx_window(&rx, false, &w));
    cr_assert_eq(w.stream_id, 11);
    cr_assert_eq(w.total_consumed, 100, "accounted at receive time");
    cr_assert_eq(w.ack_seq, 0);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 1, NULL, 0, 0, 100),
                 NMI_RX_DUPLICATE);
    cr_assert_not(nmi_stream_rx_window(&rx, false, &w), "unchanged");
    cr_assert(nmi_stream_rx_window(&rx, true, &w), "forced");
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 0, NULL, 0, 0, 50),
                 NMI_RX_DELIVER);
    cr_assert(nmi_stream_rx_window(&rx, false, &w));
    cr_assert_eq(w.total_consumed, 150);
    cr_assert_eq(w.ack_seq, 2);
    nmi_stream_rx_fini(&rx);
}

Test(mesh_stream, rx_horizon)
{
    nmi_stream_params p = params(true, 65536);
    nmi_stream_rx rx;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    cr_assert_eq(
        nmi_stream_rx_on_packet(&rx, NMI_STREAM_HORIZON + 1, NULL, 0, 0, 84),
        NMI_RX_TOO_FAR);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, UINT64_MAX - 1, NULL, 0, 0, 84),
                 NMI_RX_TOO_FAR);
    cr_assert_eq(
        nmi_stream_rx_on_packet(&rx, NMI_STREAM_HORIZON, NULL, 0, 0, 84),
        NMI_RX_DELIVER);
    nmi_stream_rx_stats s = rxs(&rx);
    cr_assert_eq(s.too_far, 2);
    cr_assert_eq(s.total_consumed, 84);
    cr_assert_eq(s.highest_seen, NMI_STREAM_HORIZON);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 0, NULL, 0, 0, 84),
                 NMI_RX_DELIVER);
    cr_assert_eq(
        nmi_stream_rx_on_packet(&rx, NMI_STREAM_HORIZON + 1, NULL, 0, 0, 84),
        NMI_RX_DELIVER, "the horizon moved with next_expected");
    nmi_stream_rx_fini(&rx);
}

Test(mesh_stream, rx_range_overflow)
{
    /* Reliable: a 33rd run is refused, merging into a run is fine. */
    nmi_stream_params p = params(true, 65536);
    nmi_stream_rx rx;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    for (uint64_t s = 2; s <= 64; s += 2) {
        cr_assert_eq(nmi_stream_rx_on_packet(&rx, s, NULL, 0, 0, 84),
                     NMI_RX_DELIVER);
    }
    cr_assert_eq(rxs(&rx).gaps, 32);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 100, NULL, 0, 0, 84),
                 NMI_RX_DROPPED);
    cr_assert_eq(rxs(&rx).dropped, 1);
    cr_assert_eq(rxs(&rx).total_consumed, 32 * 84, "not accounted");
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 65, NULL, 0, 0, 84),
                 NMI_RX_DELIVER, "extends the last run");
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 3, NULL, 0, 0, 84),
                 NMI_RX_DELIVER, "joins two runs");
    cr_assert_eq(rxs(&rx).gaps, 31);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 100, NULL, 0, 0, 84),
                 NMI_RX_DELIVER);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 0, NULL, 0, 0, 84),
                 NMI_RX_DELIVER);
    cr_assert_eq(rxs(&rx).next_expected, 1);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 1, NULL, 0, 0, 84),
                 NMI_RX_DELIVER);
    cr_assert_eq(rxs(&rx).next_expected, 5, "0..4 contiguous");
    cr_assert_eq(rxs(&rx).lost, 0);
    nmi_stream_rx_fini(&rx);

    /* FireAndForget: the oldest gap is declared lost instead. */
    p = params(false, 65536);
    p.ff_reorder = 10000;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    for (uint64_t s = 2; s <= 64; s += 2) {
        cr_assert_eq(nmi_stream_rx_on_packet(&rx, s, NULL, 0, 0, 84),
                     NMI_RX_DELIVER);
    }
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 100, NULL, 0, 0, 84),
                 NMI_RX_DELIVER);
    nmi_stream_rx_stats s = rxs(&rx);
    cr_assert_eq(s.lost, 2, "0 and 1");
    cr_assert_eq(s.next_expected, 3);
    cr_assert_eq(s.gaps, 32);
    /* A seq inside the first gap with the runs full: the part of the gap
     * below it is lost, it is delivered. */
    nmi_stream_rx_fini(&rx);
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    for (uint64_t q = 10; q <= 72; q += 2) {
        cr_assert_eq(nmi_stream_rx_on_packet(&rx, q, NULL, 0, 0, 84),
                     NMI_RX_DELIVER);
    }
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 5, NULL, 0, 0, 84),
                 NMI_RX_DELIVER);
    s = rxs(&rx);
    cr_assert_eq(s.lost, 5, "0..4");
    cr_assert_eq(s.next_expected, 6);
    cr_assert_eq(s.delivered_packets, 33);
    nmi_stream_rx_fini(&rx);
}

Test(mesh_stream, rx_ff_counts_lost)
{
    nmi_stream_params p = params(false, 65536); /* ff_reorder 64 */
    nmi_stream_rx rx;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    uint64_t in[] = {0, 1, 3, 70};
    for (size_t i = 0; i < NMI_ARRAY_LEN(in); i++) {
        cr_assert_eq(nmi_stream_rx_on_packet(&rx, in[i], NULL, 0, 0, 84),
                     NMI_RX_DELIVER);
    }
    /* 70 - 64 = 6: 2, 4 and 5 are more than 64 below the highest. */
    nmi_stream_rx_stats s = rxs(&rx);
    cr_assert_eq(s.lost, 3);
    cr_assert_eq(s.next_expected, 6);
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 2, NULL, 0, 0, 84),
                 NMI_RX_DUPLICATE, "late: already counted lost");
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 6, NULL, 0, 0, 84),
                 NMI_RX_DELIVER, "within the tolerance: still accepted");
    cr_assert_eq(nmi_stream_rx_on_packet(&rx, 6, NULL, 0, 0, 84),
                 NMI_RX_DUPLICATE);
    /* Stream end at 80: 8..69 and 71..79 never came (tail loss too). */
    cr_assert_eq(nmi_stream_rx_skip_to(&rx, 80), NM_OK);
    s = rxs(&rx);
    cr_assert_eq(s.next_expected, 80);
    cr_assert_eq(s.delivered_packets, 5);
    cr_assert_eq(s.delivered_packets + s.lost, 80, "delivered + lost");
    cr_assert_eq(s.gaps, 0);
    nmi_stream_rx_fini(&rx);
    p.reliable = true;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    cr_assert_eq(nmi_stream_rx_skip_to(&rx, 80), NM_EINVAL);
    nmi_stream_rx_fini(&rx);
}

static void
expect_pop(nmi_stream_rx *rx, uint64_t want)
{
    uint64_t seq;
    const uint8_t *pl;
    size_t len;
    uint16_t cnt;
    cr_assert(nmi_stream_rx_pop(rx, &seq, &pl, &len, &cnt), "pop %llu",
              (unsigned long long)want);
    cr_assert_eq(seq, want);
    cr_assert_eq(len, 3);
    cr_assert_eq(cnt, 1);
    cr_assert_eq(pl[0], (uint8_t)want);
    cr_assert_eq(pl[2], (uint8_t)want);
}

static int
rx3(nmi_stream_rx *rx, uint64_t seq)
{
    uint8_t b[3];
    memset(b, (int)(uint8_t)seq, sizeof(b));
    return nmi_stream_rx_on_packet(rx, seq, b, sizeof(b), 1,
                                   nmi_stream_cost(sizeof(b)));
}

Test(mesh_stream, rx_in_order_release)
{
    nmi_stream_params p = params(true, 65536);
    p.in_order = true;
    nmi_stream_rx rx;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    cr_assert_eq(rx3(&rx, 2), NMI_RX_BUFFERED);
    cr_assert_eq(rx3(&rx, 1), NMI_RX_BUFFERED);
    cr_assert_eq(rx3(&rx, 2), NMI_RX_DUPLICATE);
    cr_assert_not(nmi_stream_rx_pop(&rx, NULL, NULL, NULL, NULL));
    cr_assert_eq(rxs(&rx).buffered, 2);
    cr_assert_eq(rxs(&rx).buffered_bytes, 6);
    cr_assert_eq(rxs(&rx).total_consumed, 2 * 87, "accounted on receive");
    cr_assert_eq(rx3(&rx, 0), NMI_RX_DELIVER, "at the cursor: direct");
    expect_pop(&rx, 1);
    /* Not popped yet: 4 is buffered behind 2 even though 3 is missing. */
    cr_assert_eq(rx3(&rx, 4), NMI_RX_BUFFERED);
    expect_pop(&rx, 2);
    cr_assert_not(nmi_stream_rx_pop(&rx, NULL, NULL, NULL, NULL));
    cr_assert_eq(rx3(&rx, 3), NMI_RX_DELIVER);
    expect_pop(&rx, 4);
    cr_assert_not(nmi_stream_rx_pop(&rx, NULL, NULL, NULL, NULL));
    /* The caller did not pop: 5 is buffered, not delivered past 6. */
    cr_assert_eq(rx3(&rx, 6), NMI_RX_BUFFERED);
    cr_assert_eq(rx3(&rx, 5), NMI_RX_DELIVER);
    cr_assert_eq(rx3(&rx, 7), NMI_RX_BUFFERED, "6 not popped yet");
    expect_pop(&rx, 6);
    expect_pop(&rx, 7);
    cr_assert_not(nmi_stream_rx_pop(&rx, NULL, NULL, NULL, NULL));
    nmi_stream_rx_stats s = rxs(&rx);
    cr_assert_eq(s.delivered_packets, 8);
    cr_assert_eq(s.buffered, 0);
    cr_assert_eq(s.buffered_bytes, 0);
    /* Far ahead: the ring grows. */
    for (uint64_t q = 1000; q > 8; q--) {
        cr_assert_eq(rx3(&rx, q), NMI_RX_BUFFERED);
    }
    cr_assert_eq(rx3(&rx, 8), NMI_RX_DELIVER);
    for (uint64_t q = 9; q <= 1000; q++) {
        expect_pop(&rx, q);
    }
    cr_assert_not(nmi_stream_rx_pop(&rx, NULL, NULL, NULL, NULL));
    /* Leave something buffered for fini to free. */
    cr_assert_eq(rx3(&rx, 1005), NMI_RX_BUFFERED);
    nmi_stream_rx_fini(&rx);
}

Test(mesh_stream, rx_in_order_buffer_bound)
{
    nmi_stream_params p = params(true, 65536);
    p.in_order = true;
    p.rx_buffer_bytes = 5;
    nmi_stream_rx rx;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    cr_assert_eq(rx3(&rx, 1), NMI_RX_BUFFERED);
    cr_assert_eq(rx3(&rx, 2), NMI_RX_DROPPED, "6 bytes > 5");
    cr_assert_eq(rxs(&rx).total_consumed, 87, "dropped: not accounted");
    cr_assert_eq(rx3(&rx, 0), NMI_RX_DELIVER, "direct needs no room");
    expect_pop(&rx, 1);
    cr_assert_eq(rx3(&rx, 2), NMI_RX_DELIVER, "resent later: accepted");
    nmi_stream_rx_fini(&rx);

    /* Default bound: the retransmit window of full packets. */
    p.rx_buffer_bytes = 0;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    cr_assert_eq(rx.buffer_limit, 128u * 8192u);
    nmi_stream_rx_fini(&rx);
}

Test(mesh_stream, rx_in_order_ff_skips_lost)
{
    nmi_stream_params p = params(false, 65536);
    p.in_order = true;
    p.ff_reorder = 4;
    nmi_stream_rx rx;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    cr_assert_eq(rx3(&rx, 0), NMI_RX_DELIVER);
    cr_assert_eq(rx3(&rx, 2), NMI_RX_BUFFERED);
    cr_assert_eq(rx3(&rx, 3), NMI_RX_BUFFERED);
    cr_assert_not(nmi_stream_rx_pop(&rx, NULL, NULL, NULL, NULL));
    cr_assert_eq(rx3(&rx, 6), NMI_RX_BUFFERED); /* 6 - 4 = 2: 1 is lost */
    expect_pop(&rx, 2);
    expect_pop(&rx, 3);
    cr_assert_not(nmi_stream_rx_pop(&rx, NULL, NULL, NULL, NULL));
    cr_assert_eq(rx3(&rx, 1), NMI_RX_DUPLICATE, "late");
    cr_assert_eq(nmi_stream_rx_skip_to(&rx, 10), NM_OK);
    expect_pop(&rx, 6);
    cr_assert_not(nmi_stream_rx_pop(&rx, NULL, NULL, NULL, NULL));
    nmi_stream_rx_stats s = rxs(&rx);
    cr_assert_eq(s.lost, 6); /* 1, 4, 5, 7, 8, 9 */
    cr_assert_eq(s.delivered_packets + s.lost, 10);
    cr_assert_eq(s.buffered, 0);
    /* Buffer full in FireAndForget: the packet is dropped and the oldest
     * gap declared lost so the buffer drains. */
    nmi_stream_rx_fini(&rx);
    p.rx_buffer_bytes = 3;
    p.ff_reorder = 64;
    cr_assert_eq(nmi_stream_rx_init(&rx, 1, &p), NM_OK);
    cr_assert_eq(rx3(&rx, 2), NMI_RX_BUFFERED);
    cr_assert_eq(rx3(&rx, 3), NMI_RX_DROPPED);
    expect_pop(&rx, 2);
    cr_assert_eq(rx3(&rx, 3), NMI_RX_DELIVER);
    s = rxs(&rx);
    cr_assert_eq(s.lost, 2);
    cr_assert_eq(s.delivered_packets, 2);
    nmi_stream_rx_fini(&rx);
}

Test(mesh_stream, tx_reset)
{
    nmi_stream_params p = params(true, 65536);
    nmi_stream_tx tx;
    cr_assert_eq(nmi_stream_tx_init(&tx, 1, &p), NM_OK);
    commit(&tx, 100, 0);
    commit(&tx, 100, 0);
    nmi_stream_tx_reset(&tx);
    nmi_stream_tx_reset(&tx);
    cr_assert(txs(&tx).reset);
    cr_assert_eq(txs(&tx).in_flight, 0);
    cr_assert_eq(nmi_stream_tx_admit(&tx, 1), NM_ECLOSED);
    nmi_stream_tx_on_nack(&tx, 0, 1, 100 * MS);
    nmi_wire_ack_ranges m = {
        .stream_id = 1, .ack_seq = 0, .count = 1, .ranges = {{1, 2}}};
    nmi_stream_tx_on_ack_ranges(&tx, &m, 100 * MS);
    nmi_stream_tx_fini(&tx);
}

/* ==================================================== the simulation */

/* Test-only data packet: 'D' | seq u64 | event_count u16 | frame.
 * Control packet: 'C' | subprotocol u16 | count u16 | frame of messages. */
#define DATA_HDR 11
#define CTRL_HDR 5
#define SIM_MSGS 100000u
#define SIM_MAX_ROUNDS 400000u

typedef struct sim {
    uint64_t seed;
    bool reliable, in_order, ranges;
    nmi_loop_hub *hub;
    nmi_port *ps, *pr; /* fault-wrapped sender / receiver ports */
    nmi_addr as, ar;
    nmi_stream_tx tx;
    nmi_stream_rx rx;
    uint64_t now;
    uint64_t rng;
    uint32_t next_msg;
    uint8_t *seen;
    uint64_t delivered_msgs;
    int64_t last_id;
    bool dirty_grant; /* a duplicate arrived: resend the grant */
    uint64_t events_in_delivered;
    uint64_t data_sent, ctrl_sent;
    uint8_t *resent;     /* resends per seq */
    uint32_t max_resent; /* the most any packet needed */
} sim;

static uint64_t
sim_rand(sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Message id: 4 bytes LE id, then (id * 7) % 61 bytes of (id + k). */
static size_t
msg_build(uint32_t id, uint8_t *out)
{
    size_t n = (id * 7u) % 61u;
    nmi_store_le32(out, id);
    for (size_t k = 0; k < n; k++) {
        out[4 + k] = (uint8_t)(id + k);
    }
    return 4 + n;
}

static void
sim_deliver(sim *s, uint64_t seq, const uint8_t *pl, size_t len,
            uint16_t count)
{
    nmi_wire_frame_iter it;
    cr_assert_eq(nmi_wire_frame_iter_init(&it, pl, len, count), NM_OK,
                 "seed %#llx: seq %llu: bad frame",
                 (unsigned long long)s->seed, (unsigned long long)seq);
    nmi_wire_buf ev;
    while (nmi_wire_frame_next(&it, &ev)) {
        cr_assert_geq(ev.len, 4, "seed %#llx", (unsigned long long)s->seed);
        uint32_t id = nmi_load_le32(ev.ptr);
        cr_assert_lt(id, SIM_MSGS, "seed %#llx", (unsigned long long)s->seed);
        uint8_t want[128];
        size_t wl = msg_build(id, want);
        cr_assert(wl == ev.len && memcmp(want, ev.ptr, wl) == 0,
                  "seed %#llx: message %u corrupted",
                  (unsigned long long)s->seed, id);
        cr_assert_eq(s->seen[id], 0,
                     "seed %#llx: message %u delivered twice (seq %llu)",
                     (unsigned long long)s->seed, id, (unsigned long long)seq);
        s->seen[id] = 1;
        if (s->in_order) {
            cr_assert_gt((int64_t)id, s->last_id,
                         "seed %#llx: message %u after %lld (seq %llu)",
                         (unsigned long long)s->seed, id,
                         (long long)s->last_id, (unsigned long long)seq);
            if (s->reliable) {
                cr_assert_eq((int64_t)id, s->last_id + 1,
                             "seed %#llx: gap before message %u",
                             (unsigned long long)s->seed, id);
            }
        }
        s->last_id = id;
        s->delivered_msgs++;
    }
    s->events_in_delivered += count;
}

/* Receiver side: data packets. */
static void
sim_on_data(void *ctx, nmi_port *port, const nmi_addr *from, const uint8_t *d,
            size_t len)
{
    (void)port;
    (void)from;
    sim *s = ctx;
    cr_assert(len >= DATA_HDR && d[0] == 'D', "seed %#llx",
              (unsigned long long)s->seed);
    uint64_t seq = nmi_load_le64(d + 1);
    uint16_t count = (uint16_t)(d[9] | (d[10] << 8));
    const uint8_t *pl = d + DATA_HDR;
    size_t pl_len = len - DATA_HDR;
    int r = nmi_stream_rx_on_packet(&s->rx, seq, pl, pl_len, count,
                                    nmi_stream_cost(pl_len));
    cr_assert_geq(r, 0, "seed %#llx: rx error %d", (unsigned long long)s->seed,
                  r);
    cr_assert(r != NMI_RX_TOO_FAR, "seed %#llx: seq %llu too far",
              (unsigned long long)s->seed, (unsigned long long)seq);
    if (r == NMI_RX_DUPLICATE) {
        s->dirty_grant = true; /* our last grant may have been lost */
    }
    if (r == NMI_RX_DELIVER) {
        sim_deliver(s, seq, pl, pl_len, count);
    }
    uint64_t ps;
    const uint8_t *pp;
    size_t pn;
    uint16_t pc;
    while (nmi_stream_rx_pop(&s->rx, &ps, &pp, &pn, &pc)) {
        sim_deliver(s, ps, pp, pn, pc);
    }
}

/* Sender side: control packets. */
static void
sim_on_ctrl(void *ctx, nmi_port *port, const nmi_addr *from, const uint8_t *d,
            size_t len)
{
    (void)port;
    (void)from;
    sim *s = ctx;
    cr_assert(len >= CTRL_HDR && d[0] == 'C', "seed %#llx",
              (unsigned long long)s->seed);
    uint16_t sp = (uint16_t)(d[1] | (d[2] << 8));
    uint16_t count = (uint16_t)(d[3] | (d[4] << 8));
    nmi_wire_frame_iter it;
    cr_assert_eq(
        nmi_wire_frame_iter_init(&it, d + CTRL_HDR, len - CTRL_HDR, count),
        NM_OK, "seed %#llx", (unsigned long long)s->seed);
    nmi_wire_buf ev;
    while (nmi_wire_frame_next(&it, &ev)) {
        if (sp == NMI_WIRE_SP_STREAM_WINDOW) {
            nmi_wire_stream_window w;
            cr_assert_eq(nmi_wire_stream_window_decode(ev.ptr, ev.len, &w),
                         NM_OK);
            nmi_stream_tx_on_window(&s->tx, w.total_consumed, w.ack_seq,
                                    s->now);
        } else if (sp == NMI_WIRE_SP_STREAM_NACK) {
            nmi_wire_stream_nack k;
            cr_assert_eq(nmi_wire_stream_nack_decode(ev.ptr, ev.len, &k),
                         NM_OK);
            nmi_stream_tx_on_nack(&s->tx, k.next_expected, k.bitmap, s->now);
        } else if (sp == NMI_WIRE_SP_STREAM_ACK_RANGES) {
            nmi_wire_ack_ranges a;
            cr_assert_eq(nmi_wire_ack_ranges_decode(ev.ptr, ev.len, &a),
                         NM_OK);
            nmi_stream_tx_on_ack_ranges(&s->tx, &a, s->now);
        } else {
            cr_assert_fail("seed %#llx: subprotocol %#x",
                           (unsigned long long)s->seed, sp);
        }
    }
}

static void
sim_send_data(sim *s, uint64_t seq, const uint8_t *pl, size_t len,
              uint16_t count)
{
    uint8_t pkt[DATA_HDR + NMI_WIRE_MAX_PAYLOAD];
    pkt[0] = 'D';
    nmi_store_le64(pkt + 1, seq);
    pkt[9] = (uint8_t)count;
    pkt[10] = (uint8_t)(count >> 8);
    memcpy(pkt + DATA_HDR, pl, len);
    cr_assert_eq(nmi_port_send(s->ps, &s->ar, pkt, DATA_HDR + len), NM_OK,
                 "seed %#llx", (unsigned long long)s->seed);
    s->data_sent++;
}

static int
sim_resend(void *ctx, uint64_t seq, const uint8_t *pl, size_t len,
           uint16_t count)
{
    sim *s = ctx;
    cr_assert_lt(seq, SIM_MSGS, "seed %#llx", (unsigned long long)s->seed);
    if (++s->resent[seq] > s->max_resent) {
        s->max_resent = s->resent[seq];
    }
    sim_send_data(s, seq, pl, len, count);
    return NM_OK;
}

static void
sim_send_ctrl(sim *s, uint16_t sp, const uint8_t *msg, size_t len)
{
    uint8_t pkt[CTRL_HDR + 512];
    nmi_wire_frame_writer w;
    nmi_wire_frame_init(&w, pkt + CTRL_HDR, sizeof(pkt) - CTRL_HDR);
    cr_assert_eq(nmi_wire_frame_add(&w, msg, len), NM_OK);
    pkt[0] = 'C';
    pkt[1] = (uint8_t)sp;
    pkt[2] = (uint8_t)(sp >> 8);
    pkt[3] = (uint8_t)w.count;
    pkt[4] = (uint8_t)(w.count >> 8);
    cr_assert_eq(nmi_port_send(s->pr, &s->as, pkt, CTRL_HDR + w.len), NM_OK,
                 "seed %#llx", (unsigned long long)s->seed);
    s->ctrl_sent++;
}

/* Pack up to `budget` new packets of 1..24 messages each. */
static void
sim_sender(sim *s, int budget)
{
    uint8_t pl[NMI_WIRE_MAX_PAYLOAD];
    uint8_t m[128];
    while (budget-- > 0 && s->next_msg < SIM_MSGS) {
        uint32_t k = 1 + (uint32_t)(sim_rand(s) % 24);
        nmi_wire_frame_writer w;
        nmi_wire_frame_init(&w, pl, sizeof(pl));
        uint32_t j = s->next_msg;
        while (j < SIM_MSGS && w.count < k) {
            size_t ml = msg_build(j, m);
            if (nmi_wire_frame_add(&w, m, ml) != NM_OK) {
                break;
            }
            j++;
        }
        uint64_t seq;
        int rc =
            nmi_stream_tx_commit(&s->tx, pl, w.len, w.count, s->now, &seq);
        if (rc == NM_EBACKPRESSURE) {
            return;
        }
        cr_assert_eq(rc, NM_OK, "seed %#llx: commit %s",
                     (unsigned long long)s->seed, nm_errdetail());
        sim_send_data(s, seq, pl, w.len, w.count);
        s->next_msg = j;
    }
}

/* Receiver control, as upstream: a grant when it changed (forced on each
 * 25 ms tick and after a duplicate: the sender cannot ask for a lost
 * one), with a NACK (and ACK ranges) piggybacked while gaps exist; the
 * NACK is also repeated on every tick (proactive NACK). */
static void
sim_receiver(sim *s, bool tick)
{
    uint8_t buf[NMI_WIRE_ACK_RANGES_MAX_LEN];
    nmi_wire_stream_window w;
    bool granted = nmi_stream_rx_window(&s->rx, tick || s->dirty_grant, &w);
    if (granted) {
        nmi_wire_stream_window_encode(&w, buf);
        sim_send_ctrl(s, NMI_WIRE_SP_STREAM_WINDOW, buf,
                      NMI_WIRE_STREAM_WINDOW_LEN);
    }
    s->dirty_grant = false;
    if (!tick && !granted) {
        return;
    }
    nmi_wire_stream_nack k;
    if (nmi_stream_rx_nack(&s->rx, &k)) {
        nmi_wire_stream_nack_encode(&k, buf);
        sim_send_ctrl(s, NMI_WIRE_SP_STREAM_NACK, buf,
                      NMI_WIRE_STREAM_NACK_LEN);
    }
    nmi_wire_ack_ranges a;
    if (s->ranges && nmi_stream_rx_ack_ranges(&s->rx, &a)) {
        size_t n;
        cr_assert_eq(nmi_wire_ack_ranges_encode(&a, buf, sizeof(buf), &n),
                     NM_OK, "seed %#llx: %s", (unsigned long long)s->seed,
                     nm_errdetail());
        sim_send_ctrl(s, NMI_WIRE_SP_STREAM_ACK_RANGES, buf, n);
    }
}

static nmi_fault_config
sim_fault(uint64_t seed, double drop)
{
    return (nmi_fault_config){.size = sizeof(nmi_fault_config),
                              .seed = seed,
                              .drop_pct = drop,
                              .dup_pct = 5,
                              .reorder_window = 8,
                              .delay_ticks = 0};
}

static void
sim_open(sim *s, uint64_t seed, const nmi_stream_params *p, bool ranges,
         double drop)
{
    memset(s, 0, sizeof(*s));
    s->seed = seed;
    s->rng = seed ^ 0x5157;
    s->reliable = p->reliable;
    s->in_order = p->in_order;
    s->ranges = ranges;
    s->last_id = -1;
    s->seen = calloc(SIM_MSGS, 1);
    s->resent = calloc(SIM_MSGS, 1); /* seqs < messages: >= 1 per packet */
    cr_assert_not_null(s->seen);
    cr_assert_not_null(s->resent);
    cr_assert_eq(nmi_loop_hub_new(&s->hub), NM_OK);
    nmi_port *a, *b;
    cr_assert_eq(nmi_loop_hub_attach(s->hub, 0, &a), NM_OK);
    cr_assert_eq(nmi_loop_hub_attach(s->hub, 0, &b), NM_OK);
    nmi_fault_config fa = sim_fault(seed, drop);
    nmi_fault_config fb = sim_fault(seed ^ 0xa5a5a5a5a5a5a5a5ull, drop);
    cr_assert_eq(nmi_fault_new(a, &fa, &s->ps), NM_OK);
    cr_assert_eq(nmi_fault_new(b, &fb, &s->pr), NM_OK);
    cr_assert_eq(nmi_port_local_addr(s->ps, &s->as), NM_OK);
    cr_assert_eq(nmi_port_local_addr(s->pr, &s->ar), NM_OK);
    nmi_port_set_recv(s->ps, sim_on_ctrl, s);
    nmi_port_set_recv(s->pr, sim_on_data, s);
    cr_assert_eq(nmi_stream_tx_init(&s->tx, 42, p), NM_OK);
    cr_assert_eq(nmi_stream_rx_init(&s->rx, 42, p), NM_OK);
}

static void
sim_close(sim *s)
{
    nmi_stream_tx_fini(&s->tx);
    nmi_stream_rx_fini(&s->rx);
    nmi_port_destroy(s->ps);
    nmi_port_destroy(s->pr);
    nmi_loop_hub_free(s->hub);
    free(s->seen);
    free(s->resent);
}

/* One simulated millisecond. Returns the sender's poll result. */
static int
sim_round(sim *s, uint32_t round)
{
    s->now += 1 * MS;
    sim_sender(s, 8);
    int rc = nmi_stream_tx_poll(&s->tx, s->now, sim_resend, s);
    nmi_loop_hub_run(s->hub, 0);
    sim_receiver(s, round % 25 == 0);
    nmi_loop_hub_run(s->hub, 0);
    if (round % 4 == 0) {
        nmi_fault_tick(nmi_fault_from_port(s->ps));
        nmi_fault_tick(nmi_fault_from_port(s->pr));
        nmi_loop_hub_run(s->hub, 0);
    }
    return rc;
}

static uint64_t
env_seed(uint64_t dflt)
{
    const char *e = getenv("NM_TEST_SEED");
    return e != NULL && *e != '\0' ? strtoull(e, NULL, 0) : dflt;
}

static void
run_reliable(uint64_t seed, bool in_order, bool ranges)
{
    nmi_stream_params p = params(true, 65536);
    p.in_order = in_order;
    p.max_retries = 20; /* see the report: 3 is upstream's default */
    sim s;
    sim_open(&s, seed, &p, ranges, 5);
    uint32_t round = 0;
    while (round < SIM_MAX_ROUNDS &&
           (s.next_msg < SIM_MSGS || s.tx.in_flight > 0 ||
            s.delivered_msgs < SIM_MSGS)) {
        int rc = sim_round(&s, ++round);
        cr_assert_eq(rc, NM_OK, "seed %#llx: poll at round %u: %s",
                     (unsigned long long)seed, round, nm_errdetail());
    }
    nmi_stream_tx_stats ts = txs(&s.tx);
    nmi_stream_rx_stats rs = rxs(&s.rx);
    cr_assert_eq(
        s.delivered_msgs, SIM_MSGS,
        "seed %#llx: %llu of %u delivered after %u rounds "
        "(in flight %llu, next_expected %llu of %llu)",
        (unsigned long long)seed, (unsigned long long)s.delivered_msgs,
        SIM_MSGS, round, (unsigned long long)ts.in_flight,
        (unsigned long long)rs.next_expected, (unsigned long long)ts.next_seq);
    for (uint32_t i = 0; i < SIM_MSGS; i++) {
        cr_assert_eq(s.seen[i], 1, "seed %#llx: message %u",
                     (unsigned long long)seed, i);
    }
    cr_assert_eq(rs.next_expected, ts.next_seq, "seed %#llx",
                 (unsigned long long)seed);
    cr_assert_eq(rs.delivered_packets, ts.packets_sent, "seed %#llx",
                 (unsigned long long)seed);
    cr_assert_eq(rs.buffered, 0, "seed %#llx", (unsigned long long)seed);
    cr_assert_eq(rs.lost, 0, "seed %#llx", (unsigned long long)seed);
    cr_assert_eq(rs.total_consumed, ts.bytes_sent,
                 "seed %#llx: each seq accounted once",
                 (unsigned long long)seed);
    cr_assert_gt(ts.retransmits, 0, "seed %#llx", (unsigned long long)seed);
    cr_assert_gt(rs.duplicates, 0, "seed %#llx", (unsigned long long)seed);
    cr_assert_not(ts.reset, "seed %#llx", (unsigned long long)seed);
    fprintf(stderr,
            "stream sim reliable in_order=%d ranges=%d seed %#llx: %u "
            "rounds, %llu packets, %llu resends (%llu rto, %llu nack), %llu "
            "dups, %llu dropped, %llu backpressure, cwnd %llu, srtt %u us, "
            "rto %u us, most resends of one packet %u\n",
            in_order, ranges, (unsigned long long)seed, round,
            (unsigned long long)ts.packets_sent,
            (unsigned long long)ts.retransmits,
            (unsigned long long)ts.rto_expiries,
            (unsigned long long)ts.nack_resends,
            (unsigned long long)rs.duplicates, (unsigned long long)rs.dropped,
            (unsigned long long)ts.backpressure_events,
            (unsigned long long)ts.cwnd, ts.srtt_us, ts.rto_us, s.max_resent);
    sim_close(&s);
}

static void
run_ff(uint64_t seed, bool in_order)
{
    nmi_stream_params p = params(false, 65536);
    p.in_order = in_order;
    sim s;
    sim_open(&s, seed, &p, false, 5);
    uint32_t round = 0;
    while (round < SIM_MAX_ROUNDS && s.next_msg < SIM_MSGS) {
        cr_assert_eq(sim_round(&s, ++round), NM_OK);
    }
    cr_assert_eq(s.next_msg, SIM_MSGS,
                 "seed %#llx: sender stalled at message %u (credit %llu)",
                 (unsigned long long)seed, s.next_msg,
                 (unsigned long long)txs(&s.tx).credit);
    for (int i = 0; i < 100; i++) { /* drain what is still held */
        cr_assert_eq(sim_round(&s, ++round), NM_OK);
    }
    /* Stream end: the sender's final seq (what a FIN would carry). */
    cr_assert_eq(nmi_stream_rx_skip_to(&s.rx, s.tx.next_seq), NM_OK);
    uint64_t ps;
    const uint8_t *pp;
    size_t pn;
    uint16_t pc;
    while (nmi_stream_rx_pop(&s.rx, &ps, &pp, &pn, &pc)) {
        sim_deliver(&s, ps, pp, pn, pc);
    }
    nmi_stream_tx_stats ts = txs(&s.tx);
    nmi_stream_rx_stats rs = rxs(&s.rx);
    cr_assert_eq(
        rs.delivered_packets + rs.lost, ts.packets_sent,
        "seed %#llx: delivered %llu + lost %llu != sent %llu",
        (unsigned long long)seed, (unsigned long long)rs.delivered_packets,
        (unsigned long long)rs.lost, (unsigned long long)ts.packets_sent);
    cr_assert_eq(s.events_in_delivered, s.delivered_msgs, "seed %#llx",
                 (unsigned long long)seed);
    cr_assert_gt(rs.lost, 0, "seed %#llx: drops are visible",
                 (unsigned long long)seed);
    cr_assert_gt(rs.duplicates, 0, "seed %#llx", (unsigned long long)seed);
    cr_assert_eq(rs.buffered, 0, "seed %#llx", (unsigned long long)seed);
    cr_assert_eq(ts.retransmits, 0, "seed %#llx", (unsigned long long)seed);
    cr_assert_lt(s.delivered_msgs, SIM_MSGS, "seed %#llx",
                 (unsigned long long)seed);
    cr_assert_gt(s.delivered_msgs, SIM_MSGS * 9 / 10, "seed %#llx",
                 (unsigned long long)seed);
    fprintf(stderr,
            "stream sim fire-and-forget in_order=%d seed %#llx: %u rounds, "
            "%llu packets, %llu delivered, %llu lost, %llu dups, %llu "
            "dropped, %llu backpressure, %llu messages delivered\n",
            in_order, (unsigned long long)seed, round,
            (unsigned long long)ts.packets_sent,
            (unsigned long long)rs.delivered_packets,
            (unsigned long long)rs.lost, (unsigned long long)rs.duplicates,
            (unsigned long long)rs.dropped,
            (unsigned long long)ts.backpressure_events,
            (unsigned long long)s.delivered_msgs);
    sim_close(&s);
}

Test(mesh_stream, sim_reliable_arrival_order, .timeout = 120)
{
    run_reliable(env_seed(0x5eed5701u), false, false);
}

Test(mesh_stream, sim_reliable_in_order, .timeout = 120)
{
    run_reliable(env_seed(0x5eed5702u), true, false);
}

Test(mesh_stream, sim_reliable_in_order_ack_ranges, .timeout = 120)
{
    run_reliable(env_seed(0x5eed5703u), true, true);
}

Test(mesh_stream, sim_fire_and_forget, .timeout = 120)
{
    run_ff(env_seed(0x5eed5704u), false);
}

Test(mesh_stream, sim_fire_and_forget_in_order, .timeout = 120)
{
    run_ff(env_seed(0x5eed5705u), true);
}

/* Upstream's default budget (3 resends) under 100 % loss: the stream
 * fails 4 RTOs after the first send and stops. */
Test(mesh_stream, sim_total_loss_resets_with_default_budget, .timeout = 60)
{
    uint64_t seed = env_seed(0x5eed5706u);
    nmi_stream_params p = params(true, 65536);
    sim s;
    sim_open(&s, seed, &p, false, 100);
    int rc = NM_OK;
    uint32_t round = 0;
    while (rc == NM_OK && round < 10000) {
        rc = sim_round(&s, ++round);
    }
    cr_assert_eq(rc, NM_ECLOSED, "seed %#llx: %d", (unsigned long long)seed,
                 rc);
    cr_assert_eq(round, 201, "seed %#llx: sent at 1 ms, failed at 201 ms",
                 (unsigned long long)seed);
    nmi_stream_tx_stats ts = txs(&s.tx);
    cr_assert(ts.reset);
    cr_assert_eq(ts.retransmits, 3 * ts.packets_sent, "seed %#llx",
                 (unsigned long long)seed);
    cr_assert_eq(rxs(&s.rx).accepted, 0);
    cr_assert_eq(nmi_stream_tx_admit(&s.tx, 0), NM_ECLOSED);
    sim_close(&s);
}
