/*
 * src/wire/frame.c - EventFrame writer and strict reader.
 */
#include "wire/frame.h"

#include <string.h>

#include "core/core.h"

size_t
nmi_wire_frame_fit(const nmi_wire_buf *ev, size_t n, size_t budget,
                   size_t *bytes)
{
    if (budget > NMI_WIRE_MAX_PAYLOAD) {
        budget = NMI_WIRE_MAX_PAYLOAD;
    }
    size_t used = 0, i = 0;
    if (ev) {
        for (; i < n && i < NMI_WIRE_MAX_EVENTS; i++) {
            if (ev[i].len > budget - used ||
                budget - used - ev[i].len < NMI_WIRE_FRAME_LEN_BYTES) {
                break;
            }
            used += nmi_wire_frame_cost(ev[i].len);
        }
    }
    if (bytes) {
        *bytes = used;
    }
    return i;
}

/* ------------------------------------------------------------- writer */

void
nmi_wire_frame_init(nmi_wire_frame_writer *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap =
        buf ? (cap > NMI_WIRE_MAX_PAYLOAD ? NMI_WIRE_MAX_PAYLOAD : cap) : 0;
    w->len = 0;
    w->count = 0;
}

bool
nmi_wire_frame_fits(const nmi_wire_frame_writer *w, size_t len)
{
    size_t room = w->cap - w->len;
    return w->count < NMI_WIRE_MAX_EVENTS &&
           room >= NMI_WIRE_FRAME_LEN_BYTES &&
           len <= room - NMI_WIRE_FRAME_LEN_BYTES;
}

int
nmi_wire_frame_add(nmi_wire_frame_writer *w, const void *ev, size_t len)
{
    if (!w || (!ev && len)) {
        return nmi_err(NM_EINVAL, "event frame: NULL argument");
    }
    if (len > NMI_WIRE_FRAME_MAX_EVENT || w->cap < NMI_WIRE_FRAME_LEN_BYTES ||
        len > w->cap - NMI_WIRE_FRAME_LEN_BYTES) {
        return nmi_err(NM_ETOOBIG,
                       "event frame: a %zu-byte event never fits a packet "
                       "(at most %zu bytes)",
                       len,
                       w->cap < NMI_WIRE_FRAME_LEN_BYTES
                           ? (size_t)0
                           : w->cap - NMI_WIRE_FRAME_LEN_BYTES);
    }
    if (!nmi_wire_frame_fits(w, len)) {
        return nmi_err(NM_EAGAIN,
                       "event frame: full (%zu of %zu bytes, %u events)",
                       w->len, w->cap, w->count);
    }
    nmi_store_le32(w->buf + w->len, (uint32_t)len);
    if (len) {
        memcpy(w->buf + w->len + NMI_WIRE_FRAME_LEN_BYTES, ev, len);
    }
    w->len += nmi_wire_frame_cost(len);
    w->count++;
    return NM_OK;
}

size_t
nmi_wire_frame_pack(nmi_wire_frame_writer *w, const nmi_wire_buf *ev, size_t n)
{
    size_t i = 0;
    if (!w || !ev) {
        return 0;
    }
    for (; i < n; i++) {
        if (!nmi_wire_frame_fits(w, ev[i].len) || (!ev[i].ptr && ev[i].len)) {
            break;
        }
        nmi_store_le32(w->buf + w->len, (uint32_t)ev[i].len);
        if (ev[i].len) {
            memcpy(w->buf + w->len + NMI_WIRE_FRAME_LEN_BYTES, ev[i].ptr,
                   ev[i].len);
        }
        w->len += nmi_wire_frame_cost(ev[i].len);
        w->count++;
    }
    return i;
}

int
nmi_wire_frame_encode(const nmi_wire_buf *ev, size_t n, uint8_t *out,
                      size_t cap, size_t *written)
{
    if ((!ev && n) || (!out && cap)) {
        return nmi_err(NM_EINVAL, "event frame: NULL argument");
    }
    if (n > NMI_WIRE_MAX_EVENTS) {
        return nmi_err(NM_ETOOBIG, "event frame: %zu events exceed %d", n,
                       NMI_WIRE_MAX_EVENTS);
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ev[i].ptr && ev[i].len) {
            return nmi_err(NM_EINVAL, "event frame: event %zu is NULL", i);
        }
        if (ev[i].len > NMI_WIRE_MAX_PAYLOAD - total ||
            NMI_WIRE_MAX_PAYLOAD - total - ev[i].len <
                NMI_WIRE_FRAME_LEN_BYTES) {
            return nmi_err(NM_ETOOBIG,
                           "event frame: events exceed the %d-byte payload",
                           NMI_WIRE_MAX_PAYLOAD);
        }
        total += nmi_wire_frame_cost(ev[i].len);
    }
    if (total > cap) {
        return nmi_err(NM_ETOOBIG, "event frame: needs %zu bytes, have %zu",
                       total, cap);
    }
    nmi_wire_frame_writer w;
    nmi_wire_frame_init(&w, out, cap);
    size_t done = nmi_wire_frame_pack(&w, ev, n);
    if (done != n) { /* cannot happen: checked above */
        return nmi_err(NM_EINTERNAL, "event frame: packing failed");
    }
    if (written) {
        *written = w.len;
    }
    return NM_OK;
}

/* ------------------------------------------------------------- reader */

int
nmi_wire_frame_validate(const uint8_t *payload, size_t len,
                        uint32_t event_count)
{
    if (!payload && len) {
        return nmi_err(NM_EINVAL, "event frame: NULL payload");
    }
    if (len > NMI_WIRE_MAX_PAYLOAD) {
        return nmi_err(NM_EDECODE,
                       "event frame: %zu bytes exceed the %d-byte payload",
                       len, NMI_WIRE_MAX_PAYLOAD);
    }
    if (event_count > NMI_WIRE_MAX_EVENTS) {
        return nmi_err(NM_EDECODE, "event frame: %u events exceed %d",
                       event_count, NMI_WIRE_MAX_EVENTS);
    }
    size_t off = 0;
    for (uint32_t i = 0; i < event_count; i++) {
        if (len - off < NMI_WIRE_FRAME_LEN_BYTES) {
            return nmi_err(NM_EDECODE,
                           "event frame: event %u of %u: length prefix "
                           "truncated at byte %zu of %zu",
                           i, event_count, off, len);
        }
        uint32_t elen = nmi_load_le32(payload + off);
        off += NMI_WIRE_FRAME_LEN_BYTES;
        if (elen > len - off) {
            return nmi_err(NM_EDECODE,
                           "event frame: event %u of %u declares %u bytes, "
                           "%zu left",
                           i, event_count, elen, len - off);
        }
        off += elen;
    }
    if (off != len) {
        return nmi_err(NM_EDECODE,
                       "event frame: %zu trailing bytes after %u events",
                       len - off, event_count);
    }
    return NM_OK;
}

int
nmi_wire_frame_iter_init(nmi_wire_frame_iter *it, const uint8_t *payload,
                         size_t len, uint32_t event_count)
{
    if (!it) {
        return nmi_err(NM_EINVAL, "event frame: NULL iterator");
    }
    it->p = payload;
    it->left = 0;
    it->remaining = 0;
    int rc = nmi_wire_frame_validate(payload, len, event_count);
    if (rc != NM_OK) {
        return rc;
    }
    it->left = len;
    it->remaining = event_count;
    return NM_OK;
}

bool
nmi_wire_frame_next(nmi_wire_frame_iter *it, nmi_wire_buf *ev)
{
    /* Re-checked here so the iterator stays memory-safe even if a caller
     * skipped or ignored validation. */
    if (!it || it->remaining == 0 || it->left < NMI_WIRE_FRAME_LEN_BYTES) {
        return false;
    }
    uint32_t elen = nmi_load_le32(it->p);
    if (elen > it->left - NMI_WIRE_FRAME_LEN_BYTES) {
        it->remaining = 0;
        return false;
    }
    ev->ptr = it->p + NMI_WIRE_FRAME_LEN_BYTES;
    ev->len = elen;
    it->p += nmi_wire_frame_cost(elen);
    it->left -= nmi_wire_frame_cost(elen);
    it->remaining--;
    return true;
}

int
nmi_wire_frame_decode(const uint8_t *payload, size_t len, uint32_t event_count,
                      nmi_wire_buf *out, size_t max)
{
    nmi_wire_frame_iter it;
    if (!out && max) {
        return nmi_err(NM_EINVAL, "event frame: NULL output");
    }
    int rc = nmi_wire_frame_iter_init(&it, payload, len, event_count);
    if (rc != NM_OK) {
        return rc;
    }
    nmi_wire_buf ev;
    size_t i = 0;
    while (i < max && nmi_wire_frame_next(&it, &ev)) {
        out[i++] = ev;
    }
    return (int)event_count;
}
