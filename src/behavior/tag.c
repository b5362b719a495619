/* src/behavior/tag.c - upstream's tag grammar (behavior/tag.rs). */
#include <string.h>

#include "behavior/caps_impl.h"
#include "core/core.h"

static const char *const axis_names[] = {"hardware", "software", "devices",
                                         "dataforts"};

static const char *const reserved_prefixes[NM_TAG_RESERVED_PREFIX_COUNT] = {
    "causal:", "dataforts:", "fork-of:", "heat:", "scope:"};

const char *
nm_axis_name(nm_axis axis)
{
    if ((unsigned)axis >= NMI_ARRAY_LEN(axis_names)) {
        return NULL;
    }
    return axis_names[axis];
}

int
nm_axis_parse(const char *name, nm_axis *out)
{
    if (name == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "axis name and out must be non-NULL");
    }
    for (size_t i = 0; i < NMI_ARRAY_LEN(axis_names); i++) {
        if (strcmp(name, axis_names[i]) == 0) {
            *out = (nm_axis)i;
            return NM_OK;
        }
    }
    return nmi_err(NM_EINVAL,
                   "unknown axis '%s' (hardware, software, devices, "
                   "dataforts)",
                   name);
}

const char *
nm_tag_reserved_prefix(size_t i)
{
    return i < NM_TAG_RESERVED_PREFIX_COUNT ? reserved_prefixes[i] : NULL;
}

static int
reserved_index(const char *s, size_t n)
{
    for (int i = 0; i < NM_TAG_RESERVED_PREFIX_COUNT; i++) {
        size_t pl = strlen(reserved_prefixes[i]);
        if (n >= pl && memcmp(s, reserved_prefixes[i], pl) == 0) {
            return i;
        }
    }
    return -1;
}

int
nmi_tag_parse_into(const char *s, size_t n, nmi_tag *t)
{
    if (n == 0) {
        return nmi_err(NM_EINVAL, "capability tag must be non-empty");
    }
    t->len = (uint32_t)n;
    t->sep = 0;
    t->rprefix = 0;
    t->key_off = t->key_len = t->val_off = t->val_len = 0;
    t->axis = 0;
    int r = reserved_index(s, n);
    if (r >= 0) {
        t->kind = NM_TAG_RESERVED;
        t->rprefix = (uint8_t)r;
        t->val_off = (uint32_t)strlen(reserved_prefixes[r]);
        t->val_len = (uint32_t)(n - t->val_off);
        return NM_OK;
    }
    const char *dot = memchr(s, '.', n);
    if (dot) {
        size_t al = (size_t)(dot - s);
        for (size_t i = 0; i < NMI_ARRAY_LEN(axis_names); i++) {
            if (strlen(axis_names[i]) == al &&
                memcmp(s, axis_names[i], al) == 0) {
                t->axis = (uint8_t)i;
                size_t bo = al + 1, bl = n - bo;
                const char *body = s + bo;
                const char *eq = memchr(body, '=', bl);
                const char *co = memchr(body, ':', bl);
                const char *sep = eq;
                if (co && (!sep || co < sep)) {
                    sep = co;
                }
                t->key_off = (uint32_t)bo;
                if (sep) {
                    t->kind = NM_TAG_AXIS_VALUE;
                    t->sep = *sep;
                    t->key_len = (uint32_t)(sep - body);
                    t->val_off = (uint32_t)(sep - s + 1);
                    t->val_len = (uint32_t)(n - t->val_off);
                } else {
                    t->kind = NM_TAG_AXIS_PRESENT;
                    t->key_len = (uint32_t)bl;
                }
                return NM_OK;
            }
        }
    }
    t->kind = NM_TAG_LEGACY;
    return NM_OK;
}

static void
view_from(const char *s, const nmi_tag *t, nm_tag_view *v)
{
    memset(v, 0, sizeof(*v));
    v->kind = (nm_tag_kind)t->kind;
    if (t->kind == NM_TAG_AXIS_PRESENT || t->kind == NM_TAG_AXIS_VALUE) {
        v->axis = (nm_axis)t->axis;
        v->key = s + t->key_off;
        v->key_len = t->key_len;
        if (t->kind == NM_TAG_AXIS_VALUE) {
            v->value = s + t->val_off;
            v->value_len = t->val_len;
            v->sep = t->sep;
        }
    } else if (t->kind == NM_TAG_RESERVED) {
        v->prefix = reserved_prefixes[t->rprefix];
        v->body = s + t->val_off;
    }
}

int
nm_tag_parse(const char *tag, nm_tag_view *out)
{
    if (tag == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "tag and out must be non-NULL");
    }
    nmi_tag t;
    int rc = nmi_tag_parse_into(tag, strlen(tag), &t);
    if (rc != NM_OK) {
        return rc;
    }
    view_from(tag, &t, out);
    return NM_OK;
}

int
nm_tag_parse_user(const char *tag, nm_tag_view *out)
{
    if (tag == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "tag and out must be non-NULL");
    }
    int r = reserved_index(tag, strlen(tag));
    if (r >= 0) {
        return nmi_err(NM_EINVAL,
                       "tag '%s' uses the reserved prefix '%s' (use the "
                       "scope/chain builders)",
                       tag, reserved_prefixes[r]);
    }
    return nm_tag_parse(tag, out);
}

bool
nmi_tag_sem_eq(const nmi_tag *a, const nmi_tag *b)
{
    if (a->kind != b->kind) {
        return false;
    }
    switch (a->kind) {
    case NM_TAG_AXIS_PRESENT:
        return a->axis == b->axis && a->key_len == b->key_len &&
               memcmp(nmi_tag_key(a), nmi_tag_key(b), a->key_len) == 0;
    case NM_TAG_AXIS_VALUE:
        return a->axis == b->axis && a->key_len == b->key_len &&
               a->val_len == b->val_len &&
               memcmp(nmi_tag_key(a), nmi_tag_key(b), a->key_len) == 0 &&
               memcmp(nmi_tag_val(a), nmi_tag_val(b), a->val_len) == 0;
    default:
        /* Reserved: same prefix and body = same wire; legacy: same wire. */
        return a->len == b->len && memcmp(a->wire, b->wire, a->len) == 0;
    }
}

void
nmi_tag_normalise(const nmi_tag *t, nmi_sb *sb)
{
    if (t->kind == NM_TAG_AXIS_VALUE && t->sep == ':') {
        nmi_sb_putn(sb, t->wire, t->val_off - 1);
        nmi_sb_putc(sb, '=');
        nmi_sb_putn(sb, nmi_tag_val(t), t->val_len);
        return;
    }
    nmi_sb_putn(sb, t->wire, t->len);
}

bool
nmi_tag_has_key(const nmi_tag *t, nm_axis axis, const char *key, size_t klen)
{
    return (t->kind == NM_TAG_AXIS_PRESENT || t->kind == NM_TAG_AXIS_VALUE) &&
           t->axis == (uint8_t)axis && t->key_len == klen &&
           memcmp(nmi_tag_key(t), key, klen) == 0;
}

bool
nm_tag_semantic_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        return false;
    }
    nmi_tag ta, tb;
    if (nmi_tag_parse_into(a, strlen(a), &ta) != NM_OK ||
        nmi_tag_parse_into(b, strlen(b), &tb) != NM_OK) {
        return false;
    }
    ta.wire = (char *)a;
    tb.wire = (char *)b;
    return nmi_tag_sem_eq(&ta, &tb);
}
