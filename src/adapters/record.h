/*
 * src/adapters/record.h - the stored-event record shared by the Redis and
 * JetStream adapters (upstream's shape), and a growable byte buffer.
 *
 *   {"r":<raw event JSON>,"t":<insertion ts>,"s":<shard>}
 *
 * Extension (docs/PROTOCOL.md §7): an event whose bytes are not exactly one
 * JSON value is stored as {"r":"<standard base64>","t":..,"s":..,"b":true}
 * so that any byte string round-trips; an upstream reader sees a string.
 */
#ifndef NMI_RECORD_H
#define NMI_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nmi_buf {
    char *p;
    size_t len, cap;
} nmi_buf;

/* Append; 0 or NM_ENOMEM. The buffer stays NUL-terminated. */
int nmi_buf_append(nmi_buf *b, const void *data, size_t len);
int nmi_buf_printf(nmi_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void nmi_buf_reset(nmi_buf *b); /* len = 0, keeps the memory */
void nmi_buf_free(nmi_buf *b);

/* Append the record of one event to `out`. 0 or NM_ENOMEM. */
int nmi_record_encode(nmi_buf *out, const uint8_t *raw, size_t len,
                      uint64_t ts, uint16_t shard);

typedef struct nmi_record {
    const uint8_t *raw; /* points into the input, or into `owned` */
    size_t raw_len;
    uint64_t ts;
    uint16_t shard;
    uint8_t *owned; /* base64-decoded bytes (the "b" form), or NULL */
} nmi_record;

/* Decode a stored record (keys in any order; unknown keys ignored; "r"
 * required, "t" and "s" optional unsigned integers, default 0). raw is the
 * exact bytes of the "r" value as stored. Returns 0 or NM_EDECODE (with a
 * detail); on success free `owned` with nmi_record_fini. */
int nmi_record_decode(const char *json, size_t len, nmi_record *out);
void nmi_record_fini(nmi_record *r);

#endif
