/*
 * src/wire/control.c - StreamWindow, StreamNack, StreamReset,
 * StreamAckRanges and RouteWithdrawal codecs.
 */
#include "wire/control.h"

#include <string.h>

#include "core/core.h"

static int
exact_len(const char *what, const uint8_t *buf, size_t len, size_t want,
          const void *out)
{
    if (!out || (!buf && len)) {
        return nmi_err(NM_EINVAL, "%s: NULL argument", what);
    }
    if (len < want) {
        return nmi_err(NM_EDECODE, "%s: truncated, %zu bytes (need %zu)", what,
                       len, want);
    }
    if (len > want) {
        return nmi_err(NM_EDECODE, "%s: oversize, %zu bytes (need %zu)", what,
                       len, want);
    }
    return NM_OK;
}

/* -------------------------------------------------------- StreamWindow */

void
nmi_wire_stream_window_encode(const nmi_wire_stream_window *m,
                              uint8_t out[NMI_WIRE_STREAM_WINDOW_LEN])
{
    nmi_store_le64(out, m->stream_id);
    nmi_store_le64(out + 8, m->total_consumed);
    nmi_store_le64(out + 16, m->ack_seq);
}

int
nmi_wire_stream_window_decode(const uint8_t *buf, size_t len,
                              nmi_wire_stream_window *m)
{
    int rc =
        exact_len("stream window", buf, len, NMI_WIRE_STREAM_WINDOW_LEN, m);
    if (rc != NM_OK) {
        return rc;
    }
    m->stream_id = nmi_load_le64(buf);
    m->total_consumed = nmi_load_le64(buf + 8);
    m->ack_seq = nmi_load_le64(buf + 16);
    return NM_OK;
}

/* ---------------------------------------------------------- StreamNack */

void
nmi_wire_stream_nack_encode(const nmi_wire_stream_nack *m,
                            uint8_t out[NMI_WIRE_STREAM_NACK_LEN])
{
    nmi_store_le64(out, m->stream_id);
    nmi_store_le64(out + 8, m->next_expected);
    nmi_store_le64(out + 16, m->bitmap);
}

int
nmi_wire_stream_nack_decode(const uint8_t *buf, size_t len,
                            nmi_wire_stream_nack *m)
{
    int rc = exact_len("stream nack", buf, len, NMI_WIRE_STREAM_NACK_LEN, m);
    if (rc != NM_OK) {
        return rc;
    }
    m->stream_id = nmi_load_le64(buf);
    m->next_expected = nmi_load_le64(buf + 8);
    m->bitmap = nmi_load_le64(buf + 16);
    return NM_OK;
}

size_t
nmi_wire_stream_nack_missing(const nmi_wire_stream_nack *m, uint64_t out[65])
{
    size_t n = 0;
    uint64_t base = m->next_expected;
    out[n++] = base;
    for (unsigned i = 0; i < 64; i++) {
        if (!((m->bitmap >> i) & 1)) {
            continue;
        }
        uint64_t s = (base > UINT64_MAX - 1 - i) ? UINT64_MAX : base + 1 + i;
        if (s == out[n - 1]) {
            break; /* saturated: every later bit maps here too */
        }
        out[n++] = s;
    }
    return n;
}

/* --------------------------------------------------------- StreamReset */

void
nmi_wire_stream_reset_encode(const nmi_wire_stream_reset *m,
                             uint8_t out[NMI_WIRE_STREAM_RESET_LEN])
{
    nmi_store_le64(out, m->stream_id);
}

int
nmi_wire_stream_reset_decode(const uint8_t *buf, size_t len,
                             nmi_wire_stream_reset *m)
{
    int rc = exact_len("stream reset", buf, len, NMI_WIRE_STREAM_RESET_LEN, m);
    if (rc != NM_OK) {
        return rc;
    }
    m->stream_id = nmi_load_le64(buf);
    return NM_OK;
}

/* ----------------------------------------------------- StreamAckRanges */

size_t
nmi_wire_ack_ranges_len(const nmi_wire_ack_ranges *m)
{
    return NMI_WIRE_ACK_RANGES_HEADER_LEN +
           (size_t)m->count * NMI_WIRE_ACK_RANGE_LEN;
}

/* The decoder's rules, shared by encode (NM_EINVAL) and decode
 * (NM_EDECODE). Returns NULL when valid, else the reason. */
static const char *
ack_ranges_invalid(uint64_t ack_seq, const nmi_wire_ack_range *r, size_t n)
{
    if (n == 0) {
        return "no ranges";
    }
    if (n > NMI_WIRE_ACK_RANGES_MAX) {
        return "more than 16 ranges";
    }
    for (size_t i = 0; i < n; i++) {
        if (r[i].start >= r[i].end) {
            return "empty or inverted range";
        }
        if (r[i].start <= ack_seq) {
            return "range not strictly above ack_seq";
        }
        /* Descending and merged: each range ends strictly below the
         * start of the previous (newer) one. */
        if (i > 0 && r[i].end >= r[i - 1].start) {
            return "ranges not descending and merged";
        }
    }
    return NULL;
}

int
nmi_wire_ack_ranges_encode(const nmi_wire_ack_ranges *m, uint8_t *out,
                           size_t cap, size_t *written)
{
    if (!m || !out) {
        return nmi_err(NM_EINVAL, "stream ack ranges: NULL argument");
    }
    const char *why = ack_ranges_invalid(m->ack_seq, m->ranges, m->count);
    if (why) {
        return nmi_err(NM_EINVAL, "stream ack ranges: %s", why);
    }
    size_t total = nmi_wire_ack_ranges_len(m);
    if (cap < total) {
        return nmi_err(NM_ETOOBIG,
                       "stream ack ranges: needs %zu bytes, have %zu", total,
                       cap);
    }
    nmi_store_le64(out, m->stream_id);
    nmi_store_le64(out + 8, m->ack_seq);
    for (size_t i = 0; i < m->count; i++) {
        uint8_t *p =
            out + NMI_WIRE_ACK_RANGES_HEADER_LEN + i * NMI_WIRE_ACK_RANGE_LEN;
        nmi_store_le64(p, m->ranges[i].start);
        nmi_store_le64(p + 8, m->ranges[i].end);
    }
    if (written) {
        *written = total;
    }
    return NM_OK;
}

int
nmi_wire_ack_ranges_decode(const uint8_t *buf, size_t len,
                           nmi_wire_ack_ranges *m)
{
    if (!m || (!buf && len)) {
        return nmi_err(NM_EINVAL, "stream ack ranges: NULL argument");
    }
    if (len < NMI_WIRE_ACK_RANGES_MIN_LEN) {
        return nmi_err(NM_EDECODE,
                       "stream ack ranges: truncated, %zu bytes (need at "
                       "least %d)",
                       len, NMI_WIRE_ACK_RANGES_MIN_LEN);
    }
    size_t body = len - NMI_WIRE_ACK_RANGES_HEADER_LEN;
    if (body % NMI_WIRE_ACK_RANGE_LEN != 0) {
        return nmi_err(NM_EDECODE,
                       "stream ack ranges: %zu bytes is not 16 + 16*n", len);
    }
    size_t n = body / NMI_WIRE_ACK_RANGE_LEN;
    if (n > NMI_WIRE_ACK_RANGES_MAX) {
        return nmi_err(NM_EDECODE, "stream ack ranges: %zu ranges exceed %d",
                       n, NMI_WIRE_ACK_RANGES_MAX);
    }
    nmi_wire_ack_range r[NMI_WIRE_ACK_RANGES_MAX];
    uint64_t ack_seq = nmi_load_le64(buf + 8);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p =
            buf + NMI_WIRE_ACK_RANGES_HEADER_LEN + i * NMI_WIRE_ACK_RANGE_LEN;
        r[i].start = nmi_load_le64(p);
        r[i].end = nmi_load_le64(p + 8);
    }
    const char *why = ack_ranges_invalid(ack_seq, r, n);
    if (why) {
        return nmi_err(NM_EDECODE, "stream ack ranges: %s", why);
    }
    m->stream_id = nmi_load_le64(buf);
    m->ack_seq = ack_seq;
    m->count = (uint8_t)n;
    memcpy(m->ranges, r, n * sizeof(r[0]));
    return NM_OK;
}

/* ----------------------------------------------------- RouteWithdrawal */

void
nmi_wire_route_withdraw_encode(const nmi_wire_route_withdraw *m,
                               uint8_t out[NMI_WIRE_ROUTE_WITHDRAW_LEN])
{
    nmi_store_le64(out, m->dest);
    nmi_store_le64(out + 8, m->seq);
}

int
nmi_wire_route_withdraw_decode(const uint8_t *buf, size_t len,
                               nmi_wire_route_withdraw *m)
{
    int rc = exact_len("route withdrawal", buf, len,
                       NMI_WIRE_ROUTE_WITHDRAW_LEN, m);
    if (rc != NM_OK) {
        return rc;
    }
    m->dest = nmi_load_le64(buf);
    m->seq = nmi_load_le64(buf + 8);
    return NM_OK;
}
