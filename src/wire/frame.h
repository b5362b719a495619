/*
 * src/wire/frame.h - EventFrame: the plaintext payload of a data or
 * control packet, `[u32 len LE][len bytes]` repeated event_count times.
 *
 * The writer packs events greedily into at most 8108 bytes and 2027
 * events, never splitting an event; the reader validates the whole frame
 * before handing out the first event (every length bounded, exactly
 * event_count events, no trailing bytes), so a malformed frame is refused
 * as a unit. Pure codecs, no allocation. docs/PROTOCOL.md §8.4.
 */
#ifndef NMI_WIRE_FRAME_H
#define NMI_WIRE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/common.h>

#include "wire/header.h"

/* Size of the length prefix of every event. */
#define NMI_WIRE_FRAME_LEN_BYTES 4
/* The largest single event: the whole payload minus its prefix (8104). */
#define NMI_WIRE_FRAME_MAX_EVENT                                              \
    (NMI_WIRE_MAX_PAYLOAD - NMI_WIRE_FRAME_LEN_BYTES)

/* A borrowed byte range (an event to write, or one read). */
typedef struct nmi_wire_buf {
    const uint8_t *ptr;
    size_t len;
} nmi_wire_buf;

/* Framed size of one event (4 + len). */
static inline size_t
nmi_wire_frame_cost(size_t event_len)
{
    return NMI_WIRE_FRAME_LEN_BYTES + event_len;
}

/* How many of ev[0..n), taken in order, fit in a payload of `budget`
 * bytes (clamped to 8108) and 2027 events; stops at the first that does
 * not fit (never reorders, never splits). *bytes (may be NULL) receives
 * the framed size of those events. */
size_t nmi_wire_frame_fit(const nmi_wire_buf *ev, size_t n, size_t budget,
                          size_t *bytes);

/* ------------------------------------------------------------ writer */

typedef struct nmi_wire_frame_writer {
    uint8_t *buf;   /* borrowed output */
    size_t cap;     /* min(caller cap, 8108) */
    size_t len;     /* bytes written */
    uint16_t count; /* events written */
} nmi_wire_frame_writer;

/* Start an empty frame in buf[0..cap) (cap is clamped to 8108). */
void nmi_wire_frame_init(nmi_wire_frame_writer *w, uint8_t *buf, size_t cap);
/* Would an event of `len` bytes fit now? */
bool nmi_wire_frame_fits(const nmi_wire_frame_writer *w, size_t len);
/* Append one event. Errors: NM_ETOOBIG (the event can never fit one
 * packet: len > 8104, or larger than the writer's whole capacity),
 * NM_EAGAIN (no room left in this frame: seal it and start another),
 * NM_EINVAL (NULL). Nothing is written on error. */
int nmi_wire_frame_add(nmi_wire_frame_writer *w, const void *ev, size_t len);
/* Append ev[0..n) greedily, in order, stopping at the first event that
 * does not fit. Returns how many were written (0..n). */
size_t nmi_wire_frame_pack(nmi_wire_frame_writer *w, const nmi_wire_buf *ev,
                           size_t n);

/* Encode ev[0..n) as one frame into out[0..cap): all or nothing. Errors:
 * NM_ETOOBIG (more than 2027 events, over 8108 bytes, or cap too small),
 * NM_EINVAL. *count gets n. */
int nmi_wire_frame_encode(const nmi_wire_buf *ev, size_t n, uint8_t *out,
                          size_t cap, size_t *written);

/* ------------------------------------------------------------ reader */

/* Validate a whole frame: payload[0..len) holds exactly event_count
 * events (len <= 8108, event_count <= 2027, every declared length within
 * the bytes left, no trailing bytes). NM_OK or NM_EDECODE. */
NM_NODISCARD int nmi_wire_frame_validate(const uint8_t *payload, size_t len,
                                         uint32_t event_count);

typedef struct nmi_wire_frame_iter {
    const uint8_t *p;
    size_t left;
    uint32_t remaining;
} nmi_wire_frame_iter;

/* Validate (as above), then position the iterator on the first event.
 * On error the iterator yields nothing. */
NM_NODISCARD int nmi_wire_frame_iter_init(nmi_wire_frame_iter *it,
                                          const uint8_t *payload, size_t len,
                                          uint32_t event_count);
/* The next event (borrowed from the payload); false at the end. */
bool nmi_wire_frame_next(nmi_wire_frame_iter *it, nmi_wire_buf *ev);

/* Decode into out[0..max): validates, then stores up to max events and
 * returns event_count (which may exceed max: call again with room), or a
 * negative NM_EDECODE. */
int nmi_wire_frame_decode(const uint8_t *payload, size_t len,
                          uint32_t event_count, nmi_wire_buf *out, size_t max);

#endif
