/* src/adapters/record.c - see record.h. */
#define _GNU_SOURCE
#include "adapters/record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "core/json_scan.h"

static int
buf_reserve(nmi_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) {
        return NM_OK;
    }
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + extra + 1) {
        nc *= 2;
    }
    char *np = realloc(b->p, nc);
    if (!np) {
        return NM_ENOMEM;
    }
    b->p = np;
    b->cap = nc;
    return NM_OK;
}

int
nmi_buf_append(nmi_buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len)) {
        return NM_ENOMEM;
    }
    if (len) {
        memcpy(b->p + b->len, data, len);
    }
    b->len += len;
    b->p[b->len] = '\0';
    return NM_OK;
}

int
nmi_buf_printf(nmi_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n)) {
        return NM_ENOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return NM_OK;
}

void
nmi_buf_reset(nmi_buf *b)
{
    b->len = 0;
    if (b->p) {
        b->p[0] = '\0';
    }
}

void
nmi_buf_free(nmi_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int
nmi_record_encode(nmi_buf *out, const uint8_t *raw, size_t len, uint64_t ts,
                  uint16_t shard)
{
    if (nmi_json_valid(raw, len)) {
        char tail[64];
        int n = snprintf(tail, sizeof(tail), ",\"t\":%llu,\"s\":%u}",
                         (unsigned long long)ts, shard);
        if (nmi_buf_append(out, "{\"r\":", 5) ||
            nmi_buf_append(out, raw, len) ||
            nmi_buf_append(out, tail, (size_t)n)) {
            return NM_ENOMEM;
        }
        return NM_OK;
    }
    size_t b64 =
        sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
    if (nmi_buf_append(out, "{\"r\":\"", 6) || buf_reserve(out, b64)) {
        return NM_ENOMEM;
    }
    sodium_bin2base64(out->p + out->len, b64, raw, len,
                      sodium_base64_VARIANT_ORIGINAL);
    out->len += b64 - 1;
    return nmi_buf_printf(out, "\",\"t\":%llu,\"s\":%u,\"b\":true}",
                          (unsigned long long)ts, shard)
               ? NM_ENOMEM
               : NM_OK;
}

static bool
key_is(const uint8_t *k, const uint8_t *kend, const char *name)
{
    size_t n = strlen(name);
    return (size_t)(kend - k) == n + 2 && memcmp(k + 1, name, n) == 0;
}

static bool
parse_u64(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
    if (p >= end || *p < '0' || *p > '9' || (end - p > 1 && *p == '0')) {
        return false;
    }
    uint64_t v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

int
nmi_record_decode(const char *json, size_t len, nmi_record *out)
{
    memset(out, 0, sizeof(*out));
    const uint8_t *p = (const uint8_t *)json, *end = p + len;
    const uint8_t *r = NULL, *rend = NULL;
    bool b64 = false, have_s = false;
    uint64_t t = 0, s = 0;
    p = nmi_json_ws(p, end);
    if (p >= end || *p != '{') {
        return nmi_err(NM_EDECODE, "record is not a JSON object");
    }
    p = nmi_json_ws(p + 1, end);
    if (p < end && *p == '}') {
        return nmi_err(NM_EDECODE, "record has no \"r\"");
    }
    for (;;) {
        const uint8_t *k = p;
        const uint8_t *kend = nmi_json_string(p, end);
        if (!kend) {
            return nmi_err(NM_EDECODE, "record: bad key");
        }
        p = nmi_json_ws(kend, end);
        if (p >= end || *p != ':') {
            return nmi_err(NM_EDECODE, "record: expected ':'");
        }
        p = nmi_json_ws(p + 1, end);
        const uint8_t *v = p;
        const uint8_t *vend = nmi_json_value(p, end);
        if (!vend) {
            return nmi_err(NM_EDECODE, "record: bad value");
        }
        if (key_is(k, kend, "r")) {
            r = v;
            rend = vend;
        } else if (key_is(k, kend, "t")) {
            if (!parse_u64(v, vend, &t)) {
                return nmi_err(NM_EDECODE, "record: \"t\" is not a u64");
            }
        } else if (key_is(k, kend, "s")) {
            if (!parse_u64(v, vend, &s) || s > 65535) {
                return nmi_err(NM_EDECODE, "record: \"s\" is not a u16");
            }
            have_s = true;
        } else if (key_is(k, kend, "b")) {
            b64 = (size_t)(vend - v) == 4 && memcmp(v, "true", 4) == 0;
        }
        p = nmi_json_ws(vend, end);
        if (p >= end) {
            return nmi_err(NM_EDECODE, "record: unterminated object");
        }
        if (*p == '}') {
            break;
        }
        if (*p != ',') {
            return nmi_err(NM_EDECODE, "record: expected ',' or '}'");
        }
        p = nmi_json_ws(p + 1, end);
    }
    if (nmi_json_ws(p + 1, end) != end) {
        return nmi_err(NM_EDECODE, "record: trailing bytes");
    }
    if (!r) {
        return nmi_err(NM_EDECODE, "record has no \"r\"");
    }
    (void)have_s;
    out->ts = t;
    out->shard = (uint16_t)s;
    if (!b64) {
        out->raw = r;
        out->raw_len = (size_t)(rend - r);
        return NM_OK;
    }
    /* "b":true: r is a base64 string without escapes. */
    if (*r != '"' || rend - r < 2) {
        return nmi_err(NM_EDECODE, "record: \"b\" needs a string \"r\"");
    }
    size_t blen = (size_t)(rend - r) - 2;
    out->owned = malloc(blen / 4 * 3 + 3);
    if (!out->owned) {
        return nmi_err(NM_ENOMEM, "record");
    }
    size_t n = 0;
    const char *bend = NULL;
    if (sodium_base642bin(out->owned, blen / 4 * 3 + 3, (const char *)r + 1,
                          blen, NULL, &n, &bend,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        bend != (const char *)r + 1 + blen) {
        nmi_record_fini(out);
        return nmi_err(NM_EDECODE, "record: \"r\" is not base64");
    }
    out->raw = out->owned;
    out->raw_len = n;
    return NM_OK;
}

void
nmi_record_fini(nmi_record *r)
{
    free(r->owned);
    r->owned = NULL;
}
