/*
 * src/behavior/announce.c - the CapabilityAnnouncement codec (0x0C00):
 * upstream's serde_json form, decode with every field bounds-checked,
 * canonical re-emission for the signature and for forwarding, ed25519
 * signing and verification. See announce_impl.h and PROTOCOL.md §9.1.
 */
#include "behavior/announce_impl.h"

#include <stdlib.h>
#include <string.h>

#include "behavior/bjson.h"
#include "behavior/caps_impl.h"
#include "core/core.h"

/* ------------------------------------------------------------ helpers */

/* Exactly 2*n hex digits (either case) -> n bytes. */
static bool
hex_decode(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = nmi_hexval(s[2 * i]), lo = nmi_hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static void
put_hex(nmi_sb *sb, const uint8_t *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    char buf[2 * 64];
    while (n > 0) {
        size_t k = n > 64 ? 64 : n;
        for (size_t i = 0; i < k; i++) {
            buf[2 * i] = hx[p[i] >> 4];
            buf[2 * i + 1] = hx[p[i] & 15];
        }
        nmi_sb_putn(sb, buf, 2 * k);
        p += k;
        n -= k;
    }
}

/* Compact re-emission of a parsed value (document order, duplicates
 * kept): byte-identical to its source whenever that source was compact
 * serde_json output. */
static void
emit(nmi_sb *sb, const nmi_bj *v)
{
    switch (v->type) {
    case NMI_BJ_NULL:
        nmi_sb_puts(sb, "null");
        break;
    case NMI_BJ_FALSE:
        nmi_sb_puts(sb, "false");
        break;
    case NMI_BJ_TRUE:
        nmi_sb_puts(sb, "true");
        break;
    case NMI_BJ_NUM:
        if (v->v.num.cls == NMI_BJ_U64) {
            nmi_sb_putu64(sb, v->v.num.u);
        } else if (v->v.num.cls == NMI_BJ_I64) {
            nmi_sb_putc(sb, '-');
            nmi_sb_putu64(sb, (uint64_t)0 - (uint64_t)v->v.num.i);
        } else {
            nmi_sb_json_f64(sb, v->v.num.f);
        }
        break;
    case NMI_BJ_STR:
        nmi_sb_json_str(sb, v->v.str.s, v->v.str.len);
        break;
    case NMI_BJ_ARR:
        nmi_sb_putc(sb, '[');
        for (size_t i = 0; i < v->v.arr.n; i++) {
            if (i) {
                nmi_sb_putc(sb, ',');
            }
            emit(sb, &v->v.arr.items[i]);
        }
        nmi_sb_putc(sb, ']');
        break;
    case NMI_BJ_OBJ:
        nmi_sb_putc(sb, '{');
        for (size_t i = 0; i < v->v.obj.n; i++) {
            if (i) {
                nmi_sb_putc(sb, ',');
            }
            const nmi_bj_member *mb = &v->v.obj.m[i];
            nmi_sb_json_str(sb, mb->key, mb->klen);
            nmi_sb_putc(sb, ':');
            emit(sb, &mb->val);
        }
        nmi_sb_putc(sb, '}');
        break;
    }
}

static bool
key_is(const nmi_bj_member *mb, const char *k)
{
    size_t n = strlen(k);
    return mb->klen == n && memcmp(mb->key, k, n) == 0;
}

static int
as_u64(const nmi_bj *v, const char *what, uint64_t *out)
{
    if (v->type != NMI_BJ_NUM || v->v.num.cls != NMI_BJ_U64) {
        return nmi_err(NM_EDECODE,
                       "announcement: '%s' must be an integer in 0..2^64-1",
                       what);
    }
    *out = v->v.num.u;
    return NM_OK;
}

void
nmi_ann_clear(nmi_ann *a)
{
    if (a == NULL) {
        return;
    }
    nm_capset_free(a->caps);
    free(a->head);
    free(a->tail);
    memset(a, 0, sizeof(*a));
}

/* ------------------------------------------------------------ decode */

static int
decode_fields(const nmi_bj *root, nmi_ann *a)
{
    bool have_node = false, have_ent = false, have_ver = false;
    bool have_ts = false;
    const nmi_bj *caps = NULL;
    a->ttl_secs = NMI_ANN_DEFAULT_TTL;
    for (size_t i = 0; i < root->v.obj.n; i++) {
        const nmi_bj_member *mb = &root->v.obj.m[i];
        const nmi_bj *v = &mb->val;
        int rc = NM_OK;
        if (key_is(mb, "node_id")) {
            rc = as_u64(v, "node_id", &a->node_id);
            have_node = true;
        } else if (key_is(mb, "entity_id")) {
            if (v->type != NMI_BJ_STR ||
                !hex_decode(v->v.str.s, v->v.str.len, a->entity_id,
                            NM_ENTITY_ID_BYTES)) {
                rc = nmi_err(NM_EDECODE,
                             "announcement: 'entity_id' must be 64 hex "
                             "digits");
            }
            have_ent = true;
        } else if (key_is(mb, "version")) {
            rc = as_u64(v, "version", &a->version);
            have_ver = true;
        } else if (key_is(mb, "timestamp_ns")) {
            rc = as_u64(v, "timestamp_ns", &a->timestamp_ns);
            have_ts = true;
        } else if (key_is(mb, "ttl_secs")) {
            rc = nmi_bj_as_u32(v, "ttl_secs", &a->ttl_secs);
        } else if (key_is(mb, "capabilities")) {
            caps = v;
        } else if (key_is(mb, "signature")) {
            if (v->type == NMI_BJ_NULL) {
                a->has_sig = false;
            } else if (v->type != NMI_BJ_STR ||
                       !hex_decode(v->v.str.s, v->v.str.len, a->sig,
                                   NM_SIGNATURE_BYTES)) {
                rc = nmi_err(NM_EDECODE, "announcement: 'signature' must "
                                         "be 128 hex digits");
            } else {
                a->has_sig = true;
            }
        } else if (key_is(mb, "hop_count")) {
            uint32_t h = 0;
            rc = nmi_bj_as_u32(v, "hop_count", &h);
            if (rc == NM_OK && h > 255) {
                rc = nmi_err(NM_EDECODE,
                             "announcement: 'hop_count' must be 0..255");
            }
            a->hop_count = h;
        }
        if (rc != NM_OK) {
            return rc;
        }
    }
    if (!have_node || !have_ent || !have_ver || !have_ts || caps == NULL) {
        return nmi_err(NM_EDECODE, "announcement: missing field '%s'",
                       !have_node  ? "node_id"
                       : !have_ent ? "entity_id"
                       : !have_ver ? "version"
                       : !have_ts  ? "timestamp_ns"
                                   : "capabilities");
    }
    if (caps->type != NMI_BJ_OBJ) {
        return nmi_err(NM_EDECODE,
                       "announcement: 'capabilities' must be an object");
    }
    return nmi_capset_from_bj(caps, "capabilities", &a->caps);
}

/* head / tail: every member but signature and hop_count, split after
 * capabilities. */
static int
split_canonical(const nmi_bj *root, nmi_ann *a)
{
    nmi_sb head, tail;
    nmi_sb_init(&head);
    nmi_sb_init(&tail);
    nmi_sb_putc(&head, '{');
    nmi_sb *cur = &head;
    bool first = true;
    for (size_t i = 0; i < root->v.obj.n; i++) {
        const nmi_bj_member *mb = &root->v.obj.m[i];
        if (key_is(mb, "signature") || key_is(mb, "hop_count")) {
            continue;
        }
        if (!first) {
            nmi_sb_putc(cur, ',');
        }
        first = false;
        nmi_sb_json_str(cur, mb->key, mb->klen);
        nmi_sb_putc(cur, ':');
        emit(cur, &mb->val);
        if (key_is(mb, "capabilities")) {
            cur = &tail;
        }
    }
    nmi_sb_putc(&tail, '}');
    int rc = nmi_sb_take(&head, &a->head, &a->head_len);
    int rc2 = nmi_sb_take(&tail, &a->tail, &a->tail_len);
    if (rc != NM_OK || rc2 != NM_OK) {
        return nmi_err(NM_ENOMEM, "announcement: out of memory");
    }
    return NM_OK;
}

int
nmi_ann_decode(const void *buf, size_t len, nmi_ann *out)
{
    if (out == NULL || (buf == NULL && len > 0)) {
        return nmi_err(NM_EINVAL, "announcement: NULL argument");
    }
    memset(out, 0, sizeof(*out));
    if (len == 0 || len > NMI_ANN_MAX_BYTES) {
        return nmi_err(NM_EDECODE, "announcement: %zu bytes (1..%u)", len,
                       NMI_ANN_MAX_BYTES);
    }
    nmi_arena ar;
    nmi_arena_init(&ar);
    nmi_bj *root = NULL;
    int rc = nmi_bj_parse(&ar, buf, len, &root);
    if (rc == NM_OK && root->type != NMI_BJ_OBJ) {
        rc = nmi_err(NM_EDECODE, "announcement: not a JSON object");
    }
    if (rc == NM_OK) {
        const char *dup = nmi_bj_dup_key(root);
        if (dup != NULL) {
            rc =
                nmi_err(NM_EDECODE, "announcement: duplicate field '%s'", dup);
        }
    }
    if (rc == NM_OK) {
        rc = decode_fields(root, out);
    }
    if (rc == NM_OK) {
        rc = split_canonical(root, out);
    }
    nmi_arena_free(&ar);
    if (rc != NM_OK) {
        nmi_ann_clear(out);
    }
    return rc;
}

/* ------------------------------------------------------------ encode */

int
nmi_ann_signed_bytes(const nmi_ann *a, char **out, size_t *len)
{
    if (a == NULL || a->head == NULL || a->tail == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "announcement: NULL argument");
    }
    nmi_sb sb;
    nmi_sb_init(&sb);
    nmi_sb_putn(&sb, a->head, a->head_len);
    nmi_sb_putn(&sb, a->tail, a->tail_len);
    return nmi_sb_take(&sb, out, len);
}

int
nmi_ann_wire(const nmi_ann *a, uint32_t hop_count, char **out, size_t *len)
{
    if (a == NULL || a->head == NULL || a->tail == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "announcement: NULL argument");
    }
    nmi_sb sb;
    nmi_sb_init(&sb);
    nmi_sb_putn(&sb, a->head, a->head_len);
    if (a->has_sig) {
        nmi_sb_puts(&sb, ",\"signature\":\"");
        put_hex(&sb, a->sig, NM_SIGNATURE_BYTES);
        nmi_sb_putc(&sb, '"');
    }
    if (hop_count > 0) {
        nmi_sb_puts(&sb, ",\"hop_count\":");
        nmi_sb_putu64(&sb, hop_count);
    }
    nmi_sb_putn(&sb, a->tail, a->tail_len);
    return nmi_sb_take(&sb, out, len);
}

int
nmi_ann_build(const nm_identity *id, uint64_t version, uint64_t timestamp_ns,
              uint32_t ttl_secs, const nm_capset *caps, nmi_ann *out)
{
    if (id == NULL || caps == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "announcement: NULL argument");
    }
    memset(out, 0, sizeof(*out));
    int rc = nm_identity_entity_id(id, out->entity_id);
    if (rc == NM_OK) {
        rc = nm_identity_node_id(id, &out->node_id);
    }
    if (rc != NM_OK) {
        return rc;
    }
    out->version = version;
    out->timestamp_ns = timestamp_ns;
    out->ttl_secs = ttl_secs;
    rc = nm_capset_clone(caps, &out->caps);
    char *cj = NULL;
    size_t cl = 0;
    if (rc == NM_OK) {
        rc = nm_capset_to_json(caps, &cj, &cl);
    }
    if (rc != NM_OK) {
        nmi_ann_clear(out);
        return rc;
    }
    nmi_sb sb;
    nmi_sb_init(&sb);
    nmi_sb_puts(&sb, "{\"node_id\":");
    nmi_sb_putu64(&sb, out->node_id);
    nmi_sb_puts(&sb, ",\"entity_id\":\"");
    put_hex(&sb, out->entity_id, NM_ENTITY_ID_BYTES);
    nmi_sb_puts(&sb, "\",\"version\":");
    nmi_sb_putu64(&sb, version);
    nmi_sb_puts(&sb, ",\"timestamp_ns\":");
    nmi_sb_putu64(&sb, timestamp_ns);
    nmi_sb_puts(&sb, ",\"ttl_secs\":");
    nmi_sb_putu64(&sb, ttl_secs);
    nmi_sb_puts(&sb, ",\"capabilities\":");
    nmi_sb_putn(&sb, cj, cl);
    free(cj);
    rc = nmi_sb_take(&sb, &out->head, &out->head_len);
    if (rc == NM_OK) {
        out->tail = malloc(2);
        if (out->tail == NULL) {
            rc = nmi_err(NM_ENOMEM, "announcement: out of memory");
        } else {
            memcpy(out->tail, "}", 2);
            out->tail_len = 1;
        }
    }
    char *msg = NULL;
    size_t ml = 0;
    if (rc == NM_OK) {
        rc = nmi_ann_signed_bytes(out, &msg, &ml);
    }
    if (rc == NM_OK) {
        rc = nm_identity_sign(id, msg, ml, out->sig);
        out->has_sig = rc == NM_OK;
    }
    free(msg);
    if (rc != NM_OK) {
        nmi_ann_clear(out);
    }
    return rc;
}

int
nmi_ann_verify(const nmi_ann *a)
{
    if (a == NULL) {
        return nmi_err(NM_EINVAL, "announcement: NULL argument");
    }
    if (!a->has_sig) {
        return nmi_err(NM_ENOTFOUND, "announcement: unsigned");
    }
    char *msg = NULL;
    size_t ml = 0;
    int rc = nmi_ann_signed_bytes(a, &msg, &ml);
    if (rc != NM_OK) {
        return rc;
    }
    rc = nm_identity_verify(a->entity_id, msg, ml, a->sig);
    free(msg);
    return rc;
}
