/* src/cortex/postcard.c - the postcard codec (postcard.h). */
#include "cortex/postcard.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void
nmi_pc_w_init(nmi_pc_w *w, uint8_t *buf, size_t cap)
{
    w->p = buf;
    w->len = 0;
    w->cap = buf ? cap : 0;
    w->heap = false;
    w->failed = false;
}

int
nmi_pc_w_status(const nmi_pc_w *w)
{
    return w->failed ? nmi_err(NM_ENOMEM, "postcard: out of memory") : NM_OK;
}

void
nmi_pc_w_free(nmi_pc_w *w)
{
    if (w->heap) {
        free(w->p);
    }
    w->p = NULL;
    w->len = w->cap = 0;
    w->heap = false;
}

int
nmi_pc_w_take(nmi_pc_w *w, uint8_t **out, size_t *len)
{
    if (w->failed) {
        nmi_pc_w_free(w);
        return nmi_err(NM_ENOMEM, "postcard: out of memory");
    }
    uint8_t *p;
    if (w->heap) {
        p = w->p;
    } else {
        p = malloc(w->len ? w->len : 1);
        if (!p) {
            return nmi_err(NM_ENOMEM, "postcard: out of memory");
        }
        if (w->len) {
            memcpy(p, w->p, w->len);
        }
    }
    *out = p;
    *len = w->len;
    w->p = NULL;
    w->len = w->cap = 0;
    w->heap = false;
    return NM_OK;
}

bool
nmi_pc_w_reserve(nmi_pc_w *w, size_t n)
{
    if (w->failed) {
        return false;
    }
    if (w->cap - w->len >= n) {
        return true;
    }
    if (n > SIZE_MAX / 4 - w->len) {
        w->failed = true;
        return false;
    }
    size_t nc = w->cap ? w->cap * 2 : 64;
    while (nc - w->len < n) {
        nc *= 2;
    }
    uint8_t *np;
    if (w->heap) {
        np = realloc(w->p, nc);
    } else {
        np = malloc(nc);
        if (np && w->len) {
            memcpy(np, w->p, w->len);
        }
    }
    if (!np) {
        w->failed = true;
        return false;
    }
    w->p = np;
    w->cap = nc;
    w->heap = true;
    return true;
}

void
nmi_pc_put_u8(nmi_pc_w *w, uint8_t v)
{
    if (nmi_pc_w_reserve(w, 1)) {
        w->p[w->len++] = v;
    }
}

void
nmi_pc_put_raw(nmi_pc_w *w, const void *p, size_t n)
{
    if (n && nmi_pc_w_reserve(w, n)) {
        memcpy(w->p + w->len, p, n);
        w->len += n;
    }
}

size_t
nmi_pc_varint_encode(uint64_t v, uint8_t *out)
{
    size_t i = 0;
    while (v >= 0x80) {
        out[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[i++] = (uint8_t)v;
    return i;
}

void
nmi_pc_put_varint(nmi_pc_w *w, uint64_t v)
{
    if (nmi_pc_w_reserve(w, 10)) {
        w->len += nmi_pc_varint_encode(v, w->p + w->len);
    }
}

uint64_t
nmi_pc_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

int64_t
nmi_pc_unzigzag(uint64_t v)
{
    return (int64_t)((v >> 1) ^ (0 - (v & 1)));
}

void
nmi_pc_put_i64(nmi_pc_w *w, int64_t v)
{
    nmi_pc_put_varint(w, nmi_pc_zigzag(v));
}

void
nmi_pc_put_bool(nmi_pc_w *w, bool v)
{
    nmi_pc_put_u8(w, v ? 1 : 0);
}

void
nmi_pc_put_bytes(nmi_pc_w *w, const void *p, size_t n)
{
    nmi_pc_put_varint(w, n);
    nmi_pc_put_raw(w, p, n);
}

/* ------------------------------------------------------------- reader */

int
nmi_pc_get_u8(nmi_pc_r *r, uint8_t *out, const char *what)
{
    if (r->p >= r->end) {
        return nmi_err(NM_EDECODE, "postcard: %s: unexpected end of input",
                       what);
    }
    *out = *r->p++;
    return NM_OK;
}

/* A varint of at most `max` bytes whose last byte may carry at most
 * `last_max` (the bits of the type that are left). */
static int
get_varint(nmi_pc_r *r, unsigned max, uint8_t last_max, uint64_t *out,
           const char *what)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < max; i++) {
        if (r->p >= r->end) {
            return nmi_err(NM_EDECODE,
                           "postcard: %s: varint cut short by the end of "
                           "input",
                           what);
        }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (i == max - 1 && b > last_max) {
                return nmi_err(NM_EDECODE,
                               "postcard: %s: varint overflows its type",
                               what);
            }
            *out = v;
            return NM_OK;
        }
    }
    return nmi_err(NM_EDECODE, "postcard: %s: varint longer than %u bytes",
                   what, max);
}

int
nmi_pc_get_u16(nmi_pc_r *r, uint16_t *out, const char *what)
{
    uint64_t v = 0;
    int rc = get_varint(r, 3, 0x03, &v, what);
    if (!rc) {
        *out = (uint16_t)v;
    }
    return rc;
}

int
nmi_pc_get_u32(nmi_pc_r *r, uint32_t *out, const char *what)
{
    uint64_t v = 0;
    int rc = get_varint(r, 5, 0x0f, &v, what);
    if (!rc) {
        *out = (uint32_t)v;
    }
    return rc;
}

int
nmi_pc_get_u64(nmi_pc_r *r, uint64_t *out, const char *what)
{
    return get_varint(r, 10, 0x01, out, what);
}

int
nmi_pc_get_i64(nmi_pc_r *r, int64_t *out, const char *what)
{
    uint64_t v = 0;
    int rc = get_varint(r, 10, 0x01, &v, what);
    if (!rc) {
        *out = nmi_pc_unzigzag(v);
    }
    return rc;
}

int
nmi_pc_get_bool(nmi_pc_r *r, bool *out, const char *what)
{
    uint8_t b = 0;
    int rc = nmi_pc_get_u8(r, &b, what);
    if (rc) {
        return rc;
    }
    if (b > 1) {
        return nmi_err(NM_EDECODE, "postcard: %s: bool byte 0x%02x", what, b);
    }
    *out = b == 1;
    return NM_OK;
}

int
nmi_pc_get_option(nmi_pc_r *r, bool *some, const char *what)
{
    uint8_t b = 0;
    int rc = nmi_pc_get_u8(r, &b, what);
    if (rc) {
        return rc;
    }
    if (b > 1) {
        return nmi_err(NM_EDECODE, "postcard: %s: option tag 0x%02x", what, b);
    }
    *some = b == 1;
    return NM_OK;
}

int
nmi_pc_get_len(nmi_pc_r *r, size_t min_elem, size_t *out, const char *what)
{
    uint64_t n = 0;
    int rc = nmi_pc_get_u64(r, &n, what);
    if (rc) {
        return rc;
    }
    size_t left = nmi_pc_r_left(r);
    if (min_elem && n > left / min_elem) {
        return nmi_err(NM_EDECODE,
                       "postcard: %s: length %llu exceeds the %zu bytes "
                       "left",
                       what, (unsigned long long)n, left);
    }
    if (!min_elem && n > SIZE_MAX / 2) {
        return nmi_err(NM_EDECODE, "postcard: %s: length %llu too large", what,
                       (unsigned long long)n);
    }
    *out = (size_t)n;
    return NM_OK;
}

int
nmi_pc_get_bytes(nmi_pc_r *r, const uint8_t **p, size_t *n, const char *what)
{
    size_t len = 0;
    int rc = nmi_pc_get_len(r, 1, &len, what);
    if (rc) {
        return rc;
    }
    *p = r->p;
    *n = len;
    r->p += len;
    return NM_OK;
}

int
nmi_pc_get_str(nmi_pc_r *r, const char **s, size_t *n, const char *what)
{
    const uint8_t *p = NULL;
    size_t len = 0;
    int rc = nmi_pc_get_bytes(r, &p, &len, what);
    if (rc) {
        return rc;
    }
    if (!nmi_utf8_valid(p, len)) {
        return nmi_err(NM_EDECODE, "postcard: %s: string is not UTF-8", what);
    }
    *s = (const char *)p;
    *n = len;
    return NM_OK;
}

/* Is p[0..n) all ASCII? Eight bytes at a time; the last (partial) step
 * reads the final eight bytes again, overlapping. n >= 8. */
static inline bool
all_ascii8(const uint8_t *p, size_t n)
{
    uint64_t acc = 0, x;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&x, p + i, sizeof(x));
        acc |= x;
    }
    memcpy(&x, p + n - 8, sizeof(x));
    return ((acc | x) & 0x8080808080808080ull) == 0;
}

bool
nmi_utf8_valid(const uint8_t *p, size_t n)
{
    if (n >= 8 && all_ascii8(p, n)) {
        return true; /* the usual title, tag, source */
    }
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0) {
                lo = 0xa0; /* no overlongs */
            } else if (c == 0xed) {
                hi = 0x9f; /* no surrogates */
            }
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0) {
                lo = 0x90;
            } else if (c == 0xf4) {
                hi = 0x8f; /* <= U+10FFFF */
            }
        } else {
            return false;
        }
        if (n - i - 1 < need) {
            return false;
        }
        if (p[i + 1] < lo || p[i + 1] > hi) {
            return false;
        }
        for (size_t k = 2; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return false;
            }
        }
        i += need + 1;
    }
    return true;
}
