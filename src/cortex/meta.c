/* src/cortex/meta.c - EventMeta, checksums, WriteToken, names. */
#include "cortex/cortex_impl.h"

#include <stdio.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/core.h"

void
nm_cortex_meta_encode(const nm_cortex_meta *m,
                      uint8_t out[NM_CORTEX_META_SIZE])
{
    out[0] = m->dispatch;
    out[1] = m->flags;
    out[2] = 0;
    out[3] = 0;
    nmi_store_le64(out + 4, m->origin_hash);
    nmi_store_le64(out + 12, m->seq_or_ts);
    nmi_store_le32(out + 20, m->checksum);
}

int
nm_cortex_meta_decode(const uint8_t *buf, size_t len, nm_cortex_meta *out)
{
    if (!out || (!buf && len)) {
        return nmi_err(NM_EINVAL, "buf and out must not be NULL");
    }
    if (len < NM_CORTEX_META_SIZE) {
        return nmi_err(NM_EDECODE, "EventMeta needs %d bytes, payload has %zu",
                       NM_CORTEX_META_SIZE, len);
    }
    out->dispatch = buf[0];
    out->flags = buf[1];
    out->pad[0] = buf[2];
    out->pad[1] = buf[3];
    out->origin_hash = nmi_load_le64(buf + 4);
    out->seq_or_ts = nmi_load_le64(buf + 12);
    out->checksum = nmi_load_le32(buf + 20);
    return NM_OK;
}

uint32_t
nm_cortex_checksum(const nm_cortex_meta *m, const uint8_t *tail,
                   size_t tail_len)
{
    nm_cortex_meta z = *m;
    z.checksum = 0;
    /* Small events (all of CortEX's usual ones): one-shot over a copy -
     * the same hash as the streaming form, in a fraction of the time. */
    uint8_t one[NM_CORTEX_META_SIZE + 232];
    if (tail_len <= sizeof(one) - NM_CORTEX_META_SIZE) {
        nm_cortex_meta_encode(&z, one);
        if (tail_len) {
            memcpy(one + NM_CORTEX_META_SIZE, tail, tail_len);
        }
        return (uint32_t)XXH3_64bits(one, NM_CORTEX_META_SIZE + tail_len);
    }
    uint8_t b[NM_CORTEX_META_SIZE];
    nm_cortex_meta_encode(&z, b);
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, b, sizeof(b));
    if (tail_len) {
        XXH3_64bits_update(&st, tail, tail_len);
    }
    return (uint32_t)XXH3_64bits_digest(&st);
}

uint32_t
nm_cortex_checksum_legacy(const uint8_t *tail, size_t tail_len)
{
    return (uint32_t)XXH3_64bits(tail_len ? tail : (const uint8_t *)"",
                                 tail_len);
}

int
nm_cortex_event_verify(const uint8_t *payload, size_t len, nm_cortex_meta *out)
{
    int rc = nm_cortex_meta_decode(payload, len, out);
    if (rc) {
        return rc;
    }
    const uint8_t *tail = payload + NM_CORTEX_META_SIZE;
    size_t tl = len - NM_CORTEX_META_SIZE;
    uint32_t v2 = nm_cortex_checksum(out, tail, tl);
    if (out->checksum == v2 ||
        out->checksum == nm_cortex_checksum_legacy(tail, tl)) {
        return NM_OK;
    }
    return nmi_err(NM_EDECODE,
                   "EventMeta checksum mismatch (got 0x%08x, v2 expects "
                   "0x%08x)",
                   out->checksum, v2);
}

/* --------------------------------------------------------- WriteToken */

int
nm_write_token_format(const nm_write_token *t, char *buf, size_t cap)
{
    if (!t || !buf) {
        return nmi_err(NM_EINVAL, "token and buf must not be NULL");
    }
    char tmp[NM_WRITE_TOKEN_STRLEN];
    int n = snprintf(tmp, sizeof(tmp), "%016llx:%llu",
                     (unsigned long long)t->origin_hash,
                     (unsigned long long)t->seq);
    if ((size_t)n >= cap) {
        if (cap) {
            buf[0] = '\0';
        }
        return nmi_err(NM_ERANGE, "token needs %d bytes, buffer has %zu",
                       n + 1, cap);
    }
    memcpy(buf, tmp, (size_t)n + 1);
    return NM_OK;
}

int
nm_write_token_parse(const char *s, nm_write_token *out)
{
    if (!s || !out) {
        return nmi_err(NM_EINVAL, "s and out must not be NULL");
    }
    const char *colon = strchr(s, ':');
    if (!colon) {
        return nmi_err(NM_EINVAL,
                       "write token: expected <origin_hex>:<seq>, no ':'");
    }
    if (colon - s != 16) {
        return nmi_err(NM_EINVAL,
                       "write token: origin must be 16 hex digits, got %d "
                       "characters",
                       (int)(colon - s));
    }
    uint64_t o = 0;
    for (int i = 0; i < 16; i++) {
        int v = nmi_hexval(s[i]);
        if (v < 0) {
            return nmi_err(NM_EINVAL,
                           "write token: origin must be 16 hex digits");
        }
        o = (o << 4) | (uint64_t)v;
    }
    const char *p = colon + 1;
    if (!*p) {
        return nmi_err(NM_EINVAL, "write token: seq is empty");
    }
    uint64_t seq = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            return nmi_err(NM_EINVAL,
                           "write token: seq must be a decimal u64");
        }
        unsigned d = (unsigned)(*p - '0');
        if (seq > (UINT64_MAX - d) / 10) {
            return nmi_err(NM_EINVAL, "write token: seq overflows u64");
        }
        seq = seq * 10 + d;
    }
    out->origin_hash = o;
    out->seq = seq;
    return NM_OK;
}

/* -------------------------------------------------------------- names */

static const char *const order_names[] = {
    "none",         "id_asc",      "id_desc",      "created_asc",
    "created_desc", "updated_asc", "updated_desc",
};

int
nm_cortex_order_parse(const char *s, nm_cortex_order *out)
{
    if (!s || !out) {
        return nmi_err(NM_EINVAL, "s and out must not be NULL");
    }
    for (size_t i = 0; i < NMI_ARRAY_LEN(order_names); i++) {
        if (!strcmp(s, order_names[i])) {
            *out = (nm_cortex_order)i;
            return NM_OK;
        }
    }
    return nmi_err(NM_EINVAL,
                   "unknown order '%s' (id_asc, id_desc, created_asc, "
                   "created_desc, updated_asc, updated_desc, none)",
                   s);
}

const char *
nm_cortex_order_name(nm_cortex_order o)
{
    if ((unsigned)o < NMI_ARRAY_LEN(order_names)) {
        return order_names[o];
    }
    return "?";
}

const char *
nm_task_status_name(nm_task_status s)
{
    switch (s) {
    case NM_TASK_PENDING:
        return "pending";
    case NM_TASK_COMPLETED:
        return "completed";
    }
    return "?";
}

int
nm_task_status_parse(const char *s, nm_task_status *out)
{
    if (!s || !out) {
        return nmi_err(NM_EINVAL, "s and out must not be NULL");
    }
    if (!strcmp(s, "pending")) {
        *out = NM_TASK_PENDING;
        return NM_OK;
    }
    if (!strcmp(s, "completed")) {
        *out = NM_TASK_COMPLETED;
        return NM_OK;
    }
    return nmi_err(NM_EINVAL, "unknown task status '%s' (pending, completed)",
                   s);
}
