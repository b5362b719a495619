/*
 * src/wire/pingwave.c - pingwave (72 B) and NAT keep-alive (14 B) codecs.
 */
#include "wire/pingwave.h"

#include <string.h>

#include "core/core.h"

void
nmi_wire_pingwave_init(nmi_wire_pingwave *pw, uint64_t origin_node_id,
                       uint64_t seq, uint8_t ttl)
{
    memset(pw, 0, sizeof(*pw));
    nmi_store_le64(pw->origin, origin_node_id);
    pw->seq = seq;
    pw->ttl = ttl;
}

uint64_t
nmi_wire_pingwave_origin_node(const nmi_wire_pingwave *pw)
{
    return nmi_load_le64(pw->origin);
}

int
nmi_wire_pingwave_encode(const nmi_wire_pingwave *pw,
                         uint8_t out[NMI_WIRE_PINGWAVE_LEN])
{
    if (!pw || !out) {
        return nmi_err(NM_EINVAL, "pingwave: NULL argument");
    }
    if (pw->health > NMI_WIRE_HEALTH_UNKNOWN) {
        return nmi_err(NM_EINVAL, "pingwave: health %u (0..3)", pw->health);
    }
    memcpy(out, pw->origin, 32);
    nmi_store_le64(out + 32, pw->seq);
    out[40] = pw->ttl;
    out[41] = pw->hop_count;
    nmi_store_le64(out + 42, pw->origin_ts_us);
    nmi_store_le64(out + 50, pw->cap_hash);
    nmi_store_le32(out + 58, pw->cap_version);
    out[62] = pw->load;
    out[63] = pw->health;
    out[64] = pw->gpu ? 1 : 0;
    out[65] = pw->model_slots;
    out[66] = pw->mem_tier;
    out[67] = pw->tools;
    nmi_store_le32(out + 68, pw->cap_flags);
    return NM_OK;
}

int
nmi_wire_pingwave_decode(const uint8_t *buf, size_t len, nmi_wire_pingwave *pw)
{
    if (!pw || (!buf && len)) {
        return nmi_err(NM_EINVAL, "pingwave: NULL argument");
    }
    if (len != NMI_WIRE_PINGWAVE_LEN) {
        return nmi_err(NM_EDECODE, "pingwave: %zu bytes (want %d)", len,
                       NMI_WIRE_PINGWAVE_LEN);
    }
    if (buf[63] > NMI_WIRE_HEALTH_UNKNOWN) {
        return nmi_err(NM_EDECODE, "pingwave: health byte %u (0..3)", buf[63]);
    }
    memcpy(pw->origin, buf, 32);
    pw->seq = nmi_load_le64(buf + 32);
    pw->ttl = buf[40];
    pw->hop_count = buf[41];
    pw->origin_ts_us = nmi_load_le64(buf + 42);
    pw->cap_hash = nmi_load_le64(buf + 50);
    pw->cap_version = nmi_load_le32(buf + 58);
    pw->load = buf[62];
    pw->health = buf[63];
    pw->gpu = buf[64] != 0;
    pw->model_slots = buf[65];
    pw->mem_tier = buf[66];
    pw->tools = buf[67];
    pw->cap_flags = nmi_load_le32(buf + 68);
    return NM_OK;
}

bool
nmi_wire_pingwave_forward(nmi_wire_pingwave *pw)
{
    if (pw->ttl == 0) {
        return false;
    }
    pw->ttl--;
    if (pw->hop_count != UINT8_MAX) {
        pw->hop_count++;
    }
    return true;
}

void
nmi_wire_keepalive_encode(const nmi_wire_keepalive *ka,
                          uint8_t out[NMI_WIRE_KEEPALIVE_LEN])
{
    out[0] = (uint8_t)NMI_WIRE_KEEPALIVE_MAGIC;
    out[1] = (uint8_t)(NMI_WIRE_KEEPALIVE_MAGIC >> 8);
    nmi_store_le64(out + 2, ka->node_id);
    nmi_store_le32(out + 10, ka->punch_id);
}

int
nmi_wire_keepalive_decode(const uint8_t *buf, size_t len,
                          nmi_wire_keepalive *ka)
{
    if (!ka || (!buf && len)) {
        return nmi_err(NM_EINVAL, "keep-alive: NULL argument");
    }
    if (len != NMI_WIRE_KEEPALIVE_LEN) {
        return nmi_err(NM_EDECODE, "keep-alive: %zu bytes (want %d)", len,
                       NMI_WIRE_KEEPALIVE_LEN);
    }
    if ((buf[0] | (buf[1] << 8)) != NMI_WIRE_KEEPALIVE_MAGIC) {
        return nmi_err(NM_EDECODE,
                       "keep-alive: bad magic %02x %02x (want 50 48)", buf[0],
                       buf[1]);
    }
    ka->node_id = nmi_load_le64(buf + 2);
    ka->punch_id = nmi_load_le32(buf + 10);
    return NM_OK;
}
