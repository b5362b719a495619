/*
 * src/wire/membership.c - channel membership codec (Subscribe /
 * Unsubscribe / Ack, subprotocol 0x0A00).
 */
#include "wire/membership.h"

#include <stdio.h>
#include <string.h>

#include <netmesh/name.h>

#include "core/core.h"

bool
nmi_wire_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false; /* continuation byte, C0/C1, F5..FF */
        }
        if (len - i - 1 < n) {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

void
nmi_wire_membership_subscribe(nmi_wire_membership *m, uint64_t nonce,
                              const char *channel, size_t channel_len,
                              const uint8_t *token, size_t token_len,
                              const char *queue_group, size_t qg_len)
{
    memset(m, 0, sizeof(*m));
    m->type = NMI_WIRE_MEMB_SUBSCRIBE;
    m->nonce = nonce;
    m->channel = channel;
    m->channel_len = channel_len;
    m->token = token;
    m->token_len = token_len;
    m->queue_group = queue_group;
    m->queue_group_len = qg_len;
}

void
nmi_wire_membership_unsubscribe(nmi_wire_membership *m, uint64_t nonce,
                                const char *channel, size_t channel_len)
{
    memset(m, 0, sizeof(*m));
    m->type = NMI_WIRE_MEMB_UNSUBSCRIBE;
    m->nonce = nonce;
    m->channel = channel;
    m->channel_len = channel_len;
}

void
nmi_wire_membership_ack(nmi_wire_membership *m, uint64_t nonce, bool accepted,
                        uint8_t reason)
{
    memset(m, 0, sizeof(*m));
    m->type = NMI_WIRE_MEMB_ACK;
    m->nonce = nonce;
    m->accepted = accepted;
    m->reason = reason;
}

size_t
nmi_wire_membership_len(const nmi_wire_membership *m)
{
    switch (m->type) {
    case NMI_WIRE_MEMB_SUBSCRIBE:
        return 1 + 8 + 1 + m->channel_len + 2 + m->token_len +
               (m->queue_group_len ? 1 + m->queue_group_len : 0);
    case NMI_WIRE_MEMB_UNSUBSCRIBE:
        return 1 + 8 + 1 + m->channel_len;
    case NMI_WIRE_MEMB_ACK:
        return NMI_WIRE_MEMB_ACK_LEN;
    default:
        return 0;
    }
}

static int
check_channel(const char *name, size_t len, int code)
{
    if (!name || len == 0) {
        return nmi_err(code, "membership: empty channel name");
    }
    if (len > NM_CHANNEL_NAME_MAX) {
        return nmi_err(code, "membership: channel name of %zu bytes", len);
    }
    if (nm_channel_name_validate(name, len) != NM_OK) {
        /* Keep the validator's sentence (copied: nmi_err writes the same
         * thread-local buffer), under our code. */
        char why[200];
        snprintf(why, sizeof(why), "%s", nm_errdetail());
        return nmi_err(code, "membership: %s", why);
    }
    return NM_OK;
}

int
nmi_wire_membership_encode(const nmi_wire_membership *m, uint8_t *out,
                           size_t cap, size_t *written)
{
    if (!m || !out) {
        return nmi_err(NM_EINVAL, "membership: NULL argument");
    }
    int rc;
    switch (m->type) {
    case NMI_WIRE_MEMB_SUBSCRIBE:
    case NMI_WIRE_MEMB_UNSUBSCRIBE:
        rc = check_channel(m->channel, m->channel_len, NM_EINVAL);
        if (rc != NM_OK) {
            return rc;
        }
        break;
    case NMI_WIRE_MEMB_ACK:
        if (m->reason > NMI_WIRE_ACK_REASON_MAX) {
            return nmi_err(NM_EINVAL, "membership: ack reason %u", m->reason);
        }
        break;
    default:
        return nmi_err(NM_EINVAL, "membership: unknown message type %u",
                       m->type);
    }
    if (m->type == NMI_WIRE_MEMB_SUBSCRIBE) {
        if (m->token_len) {
            nm_token_chain chain;
            if (!m->token || nm_token_chain_decode(m->token, m->token_len,
                                                   &chain) != NM_OK) {
                return nmi_err(NM_EINVAL, "membership: the token is not a "
                                          "token chain");
            }
        }
        if (m->queue_group_len > NMI_WIRE_QUEUE_GROUP_MAX) {
            return nmi_err(NM_EINVAL,
                           "membership: queue group of %zu bytes exceeds %d",
                           m->queue_group_len, NMI_WIRE_QUEUE_GROUP_MAX);
        }
        if (m->queue_group_len &&
            (!m->queue_group ||
             !nmi_wire_utf8_valid((const uint8_t *)m->queue_group,
                                  m->queue_group_len))) {
            return nmi_err(NM_EINVAL,
                           "membership: queue group is not valid UTF-8");
        }
    }
    size_t total = nmi_wire_membership_len(m);
    if (cap < total) {
        return nmi_err(NM_ETOOBIG, "membership: needs %zu bytes, have %zu",
                       total, cap);
    }
    uint8_t *p = out;
    *p++ = m->type;
    nmi_store_le64(p, m->nonce);
    p += 8;
    if (m->type == NMI_WIRE_MEMB_ACK) {
        *p++ = m->accepted ? 1 : 0;
        *p++ = m->reason;
    } else {
        *p++ = (uint8_t)m->channel_len;
        memcpy(p, m->channel, m->channel_len);
        p += m->channel_len;
        if (m->type == NMI_WIRE_MEMB_SUBSCRIBE) {
            *p++ = (uint8_t)m->token_len;
            *p++ = (uint8_t)(m->token_len >> 8);
            if (m->token_len) {
                memcpy(p, m->token, m->token_len);
                p += m->token_len;
            }
            if (m->queue_group_len) {
                *p++ = (uint8_t)m->queue_group_len;
                memcpy(p, m->queue_group, m->queue_group_len);
                p += m->queue_group_len;
            }
        }
    }
    if (written) {
        *written = (size_t)(p - out);
    }
    return NM_OK;
}

int
nmi_wire_membership_decode(const uint8_t *buf, size_t len,
                           nmi_wire_membership *out)
{
    if (!out || (!buf && len)) {
        return nmi_err(NM_EINVAL, "membership: NULL argument");
    }
    if (len == 0) {
        return nmi_err(NM_EDECODE, "membership: empty message");
    }
    nmi_wire_membership m;
    memset(&m, 0, sizeof(m));
    m.type = buf[0];
    size_t off = 1;
    switch (m.type) {
    case NMI_WIRE_MEMB_SUBSCRIBE:
    case NMI_WIRE_MEMB_UNSUBSCRIBE: {
        if (len - off < 9) {
            return nmi_err(NM_EDECODE, "membership: truncated header");
        }
        m.nonce = nmi_load_le64(buf + off);
        size_t nlen = buf[off + 8];
        off += 9;
        if (nlen == 0) {
            return nmi_err(NM_EDECODE, "membership: empty channel name");
        }
        if (nlen > len - off) {
            return nmi_err(NM_EDECODE,
                           "membership: channel name of %zu bytes, %zu left",
                           nlen, len - off);
        }
        m.channel = (const char *)buf + off;
        m.channel_len = nlen;
        off += nlen;
        int rc = check_channel(m.channel, m.channel_len, NM_EDECODE);
        if (rc != NM_OK) {
            return rc;
        }
        if (m.type == NMI_WIRE_MEMB_UNSUBSCRIBE) {
            break;
        }
        /* Token: absent when the message stops after the name; a lone
         * byte is half a length prefix. */
        if (len - off == 1) {
            return nmi_err(NM_EDECODE,
                           "membership: truncated token length prefix");
        }
        if (len - off >= 2) {
            size_t tlen = (size_t)buf[off] | ((size_t)buf[off + 1] << 8);
            off += 2;
            if (tlen > len - off) {
                return nmi_err(NM_EDECODE,
                               "membership: token of %zu bytes, %zu left",
                               tlen, len - off);
            }
            if (tlen) {
                m.token = buf + off;
                m.token_len = tlen;
                off += tlen;
            }
        }
        /* Queue group: absent when nothing is left; qlen 0 = absent. */
        if (len - off >= 1) {
            size_t qlen = buf[off++];
            if (qlen > len - off) {
                return nmi_err(NM_EDECODE,
                               "membership: queue group of %zu bytes, %zu "
                               "left",
                               qlen, len - off);
            }
            if (qlen) {
                if (!nmi_wire_utf8_valid(buf + off, qlen)) {
                    return nmi_err(NM_EDECODE, "membership: queue group is "
                                               "not valid UTF-8");
                }
                m.queue_group = (const char *)buf + off;
                m.queue_group_len = qlen;
                off += qlen;
            }
        }
        break;
    }
    case NMI_WIRE_MEMB_ACK:
        if (len - off < 10) {
            return nmi_err(NM_EDECODE, "membership: truncated ack");
        }
        m.nonce = nmi_load_le64(buf + off);
        if (buf[off + 8] > 1) {
            return nmi_err(NM_EDECODE,
                           "membership: ack accepted byte %u (want 0 or 1)",
                           buf[off + 8]);
        }
        m.accepted = buf[off + 8] == 1;
        m.reason = buf[off + 9];
        if (m.reason > NMI_WIRE_ACK_REASON_MAX) {
            return nmi_err(NM_EDECODE, "membership: unknown ack reason %u",
                           m.reason);
        }
        off += 10;
        break;
    default:
        return nmi_err(NM_EDECODE, "membership: unknown message type %u",
                       m.type);
    }
    if (off != len) {
        return nmi_err(NM_EDECODE, "membership: %zu trailing bytes",
                       len - off);
    }
    *out = m;
    return NM_OK;
}

int
nmi_wire_membership_token_chain(const nmi_wire_membership *m,
                                nm_token_chain *out)
{
    if (!m || !out) {
        return nmi_err(NM_EINVAL, "membership: NULL argument");
    }
    if (m->type != NMI_WIRE_MEMB_SUBSCRIBE || m->token_len == 0) {
        return nmi_err(NM_ENOTFOUND, "membership: no token");
    }
    if (nm_token_chain_decode(m->token, m->token_len, out) != NM_OK) {
        char why[200];
        snprintf(why, sizeof(why), "%s", nm_errdetail());
        return nmi_err(NM_EDECODE,
                       "membership: token is not a token "
                       "chain: %s",
                       why);
    }
    return NM_OK;
}
