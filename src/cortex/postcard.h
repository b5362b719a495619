/*
 * src/cortex/postcard.h - a small postcard (serde wire format) codec.
 *
 * What CortEX payloads and snapshots use (docs/cortex.md, "postcard"):
 *   u8            1 raw byte
 *   u16/u32/u64,
 *   usize lengths varint: little-endian base-128 (LEB128), low 7 bits
 *                 first, bit 7 = more; at most 3/5/10 bytes, the last
 *                 byte may only carry the bits that fit the type
 *   i64           zigzag ((n << 1) ^ (n >> 63)) then varint
 *   bool          0x00 / 0x01 (anything else is an error)
 *   Option<T>     0x00 = None / 0x01 then T
 *   String,
 *   Vec<u8>       varint length then the bytes (String: valid UTF-8)
 *   Vec<T>, map   varint count then each element (map: key then value)
 *   struct, tuple the fields in order, nothing else
 *   unit enum     varint(u32) variant index
 *
 * Like postcard, the decoder accepts over-long (non-minimal) varints and
 * leaves trailing bytes to the caller. Every decoder bounds-checks and
 * fails with NM_EDECODE and a detail; lengths are checked against the
 * bytes left before anything is allocated.
 */
#ifndef NMI_CORTEX_POSTCARD_H
#define NMI_CORTEX_POSTCARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- writer */

typedef struct nmi_pc_w {
    uint8_t *p;
    size_t len, cap;
    bool heap;   /* p was malloc'd by the writer */
    bool failed; /* sticky: an allocation failed */
} nmi_pc_w;

/* Start writing into buf[0..cap) (may be NULL/0); the writer moves to the
 * heap when it outgrows it. */
void nmi_pc_w_init(nmi_pc_w *w, uint8_t *buf, size_t cap);
/* NM_OK, or NM_ENOMEM if any put failed. */
int nmi_pc_w_status(const nmi_pc_w *w);
/* Release a heap buffer (not a caller buffer). */
void nmi_pc_w_free(nmi_pc_w *w);
/* Hand the bytes over as a malloc'd block (copying a caller buffer);
 * NM_ENOMEM. The writer is left empty. */
int nmi_pc_w_take(nmi_pc_w *w, uint8_t **out, size_t *len);
/* Make room for n more bytes; false on failure (sets failed). */
bool nmi_pc_w_reserve(nmi_pc_w *w, size_t n);

void nmi_pc_put_u8(nmi_pc_w *w, uint8_t v);
void nmi_pc_put_raw(nmi_pc_w *w, const void *p, size_t n);
void nmi_pc_put_varint(nmi_pc_w *w, uint64_t v);
void nmi_pc_put_i64(nmi_pc_w *w, int64_t v);
void nmi_pc_put_bool(nmi_pc_w *w, bool v);
/* String / Vec<u8> / &[u8]: length then bytes. */
void nmi_pc_put_bytes(nmi_pc_w *w, const void *p, size_t n);

/* Encode v into out (>= 10 bytes); returns the byte count. */
size_t nmi_pc_varint_encode(uint64_t v, uint8_t *out);
uint64_t nmi_pc_zigzag(int64_t v);
int64_t nmi_pc_unzigzag(uint64_t v);

/* ------------------------------------------------------------- reader */

typedef struct nmi_pc_r {
    const uint8_t *p, *end;
} nmi_pc_r;

static inline void
nmi_pc_r_init(nmi_pc_r *r, const uint8_t *p, size_t n)
{
    r->p = p;
    r->end = p + n;
}

static inline size_t
nmi_pc_r_left(const nmi_pc_r *r)
{
    return (size_t)(r->end - r->p);
}

/* Each returns NM_OK or NM_EDECODE (detail names `what`). */
int nmi_pc_get_u8(nmi_pc_r *r, uint8_t *out, const char *what);
int nmi_pc_get_u16(nmi_pc_r *r, uint16_t *out, const char *what);
int nmi_pc_get_u32(nmi_pc_r *r, uint32_t *out, const char *what);
int nmi_pc_get_u64(nmi_pc_r *r, uint64_t *out, const char *what);
int nmi_pc_get_i64(nmi_pc_r *r, int64_t *out, const char *what);
int nmi_pc_get_bool(nmi_pc_r *r, bool *out, const char *what);
/* Option tag: *some = false (0x00) / true (0x01). */
int nmi_pc_get_option(nmi_pc_r *r, bool *some, const char *what);
/* A sequence length whose elements take >= min_elem bytes each: fails
 * when they cannot all fit in what is left. */
int nmi_pc_get_len(nmi_pc_r *r, size_t min_elem, size_t *out,
                   const char *what);
/* Vec<u8>: *p points into the input. */
int nmi_pc_get_bytes(nmi_pc_r *r, const uint8_t **p, size_t *n,
                     const char *what);
/* String: as bytes, and valid UTF-8. */
int nmi_pc_get_str(nmi_pc_r *r, const char **s, size_t *n, const char *what);

/* Strict UTF-8 (as Rust's str::from_utf8: no overlongs, no surrogates,
 * nothing above U+10FFFF). */
bool nmi_utf8_valid(const uint8_t *p, size_t n);

#endif
