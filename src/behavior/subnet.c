/* src/behavior/subnet.c - SubnetId, SubnetPolicy, visibility rules
 * (subnet/id.rs, subnet/assignment.rs, subnet/gateway.rs, mesh.rs). */
#define _POSIX_C_SOURCE 200809L

#include <netmesh/subnet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "behavior/caps_impl.h"
#include "core/core.h"

/* ================================================================== id */

int
nm_subnet_new(const uint8_t *levels, size_t n, nm_subnet_id *out)
{
    if (out == NULL || (n && levels == NULL)) {
        return nmi_err(NM_EINVAL, "out (and levels when n > 0) non-NULL");
    }
    if (n > NM_SUBNET_MAX_LEVELS) {
        return nmi_err(NM_EINVAL, "a subnet id has at most 4 levels (got %zu)",
                       n);
    }
    uint32_t id = 0;
    for (size_t i = 0; i < n; i++) {
        id |= (uint32_t)levels[i] << (24 - 8 * i);
    }
    *out = id;
    return NM_OK;
}

uint8_t
nm_subnet_level(nm_subnet_id id, unsigned i)
{
    return i < 4 ? (uint8_t)(id >> (24 - 8 * i)) : 0;
}

unsigned
nm_subnet_depth(nm_subnet_id id)
{
    for (unsigned d = 4; d > 0; d--) {
        if (nm_subnet_level(id, d - 1) != 0) {
            return d;
        }
    }
    return 0;
}

uint32_t
nm_subnet_mask(unsigned depth)
{
    static const uint32_t masks[] = {0, 0xFF000000u, 0xFFFF0000u, 0xFFFFFF00u,
                                     0xFFFFFFFFu};
    return masks[depth > 4 ? 4 : depth];
}

nm_subnet_id
nm_subnet_parent(nm_subnet_id id)
{
    unsigned d = nm_subnet_depth(id);
    return d == 0 ? 0 : id & nm_subnet_mask(d - 1);
}

bool
nm_subnet_is_ancestor_of(nm_subnet_id a, nm_subnet_id b)
{
    if (a == NM_SUBNET_GLOBAL) {
        return true;
    }
    if (b == NM_SUBNET_GLOBAL) {
        return false;
    }
    return ((a ^ b) & nm_subnet_mask(nm_subnet_depth(a))) == 0;
}

bool
nm_subnet_is_sibling(nm_subnet_id a, nm_subnet_id b)
{
    unsigned da = nm_subnet_depth(a), db = nm_subnet_depth(b);
    return da != 0 && da == db && a != b &&
           nm_subnet_parent(a) == nm_subnet_parent(b);
}

const char *
nm_subnet_format(nm_subnet_id id, char buf[NM_SUBNET_STR_MAX])
{
    unsigned d = nm_subnet_depth(id);
    if (d == 0) {
        memcpy(buf, "global", 7);
        return buf;
    }
    size_t n = 0;
    for (unsigned i = 0; i < d; i++) {
        n += (size_t)snprintf(buf + n, NM_SUBNET_STR_MAX - n, i ? ".%u" : "%u",
                              nm_subnet_level(id, i));
    }
    return buf;
}

/* Unicode White_Space trim (Rust str::trim), ASCII-case "global". */
static size_t
ws_len(const unsigned char *p, const unsigned char *end)
{
    size_t left = (size_t)(end - p);
    if (left == 0) {
        return 0;
    }
    if (*p == ' ' || (*p >= 0x09 && *p <= 0x0D)) {
        return 1;
    }
    if (left >= 2 && p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0)) {
        return 2;
    }
    if (left >= 3 && (p[0] & 0xF0) == 0xE0) {
        unsigned cp =
            ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
        if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
            cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000) {
            return 3;
        }
    }
    return 0;
}

int
nm_subnet_parse(const char *s, nm_subnet_id *out)
{
    if (s == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "s and out must be non-NULL");
    }
    const unsigned char *p = (const unsigned char *)s, *e = p + strlen(s);
    size_t k;
    while (p < e && (k = ws_len(p, e)) > 0) {
        p += k;
    }
    for (bool again = true; again && e > p;) {
        again = false;
        for (size_t w = 1; w <= 3 && w <= (size_t)(e - p); w++) {
            if (ws_len(e - w, e) == w) {
                e -= w;
                again = true;
                break;
            }
        }
    }
    size_t n = (size_t)(e - p);
    if (n == 6) {
        char low[7];
        for (size_t i = 0; i < 6; i++) {
            unsigned c = p[i];
            low[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        low[6] = '\0';
        if (strcmp(low, "global") == 0) {
            *out = NM_SUBNET_GLOBAL;
            return NM_OK;
        }
    }
    uint8_t levels[4];
    size_t nl = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '.') {
            if (nl == 4 || !nmi_parse_u8((const char *)p + start, i - start,
                                         &levels[nl])) {
                return nmi_err(NM_EINVAL,
                               "invalid subnet id '%s' (\"global\" or up to "
                               "4 dot-separated 0..255 levels)",
                               s);
            }
            nl++;
            start = i + 1;
        }
    }
    return nm_subnet_new(levels, nl, out);
}

/* ================================================================== policy */

typedef struct rmap {
    char *value;
    uint8_t byte;
} rmap;

struct nm_subnet_rule {
    char *prefix;
    size_t plen;
    unsigned level;
    rmap *map;
    size_t n, cap;
};

struct nm_subnet_policy {
    nm_subnet_rule **rules;
    size_t n, cap;
};

int
nm_subnet_rule_new(const char *tag_prefix, unsigned level,
                   nm_subnet_rule **out)
{
    if (tag_prefix == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "tag_prefix and out must be non-NULL");
    }
    if (level >= NM_SUBNET_MAX_LEVELS) {
        return nmi_err(NM_EINVAL, "subnet rule level %u out of range 0..3",
                       level);
    }
    nm_subnet_rule *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->prefix = strdup(tag_prefix)) == NULL) {
        free(r);
        return nmi_err(NM_ENOMEM, "out of memory building a subnet rule");
    }
    r->plen = strlen(tag_prefix);
    r->level = level;
    *out = r;
    return NM_OK;
}

int
nm_subnet_rule_map(nm_subnet_rule *rule, const char *value, uint8_t byte)
{
    if (rule == NULL || value == NULL) {
        return nmi_err(NM_EINVAL, "rule and value must be non-NULL");
    }
    if (byte == 0) {
        return nmi_err(NM_EINVAL,
                       "subnet rule value '%s' maps to 0 (0 means "
                       "unassigned)",
                       value);
    }
    for (size_t i = 0; i < rule->n; i++) {
        if (strcmp(rule->map[i].value, value) == 0) {
            rule->map[i].byte = byte;
            return NM_OK;
        }
    }
    if (rule->n == rule->cap) {
        size_t nc = rule->cap ? rule->cap * 2 : 4;
        rmap *nm = realloc(rule->map, nc * sizeof(rmap));
        if (nm == NULL) {
            return nmi_err(NM_ENOMEM, "out of memory building a subnet rule");
        }
        rule->map = nm;
        rule->cap = nc;
    }
    char *v = strdup(value);
    if (v == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory building a subnet rule");
    }
    rule->map[rule->n].value = v;
    rule->map[rule->n].byte = byte;
    rule->n++;
    return NM_OK;
}

void
nm_subnet_rule_free(nm_subnet_rule *rule)
{
    if (rule == NULL) {
        return;
    }
    for (size_t i = 0; i < rule->n; i++) {
        free(rule->map[i].value);
    }
    free(rule->map);
    free(rule->prefix);
    free(rule);
}

int
nm_subnet_policy_new(nm_subnet_policy **out)
{
    if (out == NULL) {
        return nmi_err(NM_EINVAL, "out must be non-NULL");
    }
    *out = calloc(1, sizeof(nm_subnet_policy));
    return *out ? NM_OK : nmi_err(NM_ENOMEM, "out of memory");
}

void
nm_subnet_policy_free(nm_subnet_policy *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        nm_subnet_rule_free(p->rules[i]);
    }
    free(p->rules);
    free(p);
}

int
nm_subnet_policy_add_rule(nm_subnet_policy *p, nm_subnet_rule *rule)
{
    if (p == NULL || rule == NULL) {
        nm_subnet_rule_free(rule);
        return nmi_err(NM_EINVAL, "policy and rule must be non-NULL");
    }
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 4;
        nm_subnet_rule **nr = realloc(p->rules, nc * sizeof(*nr));
        if (nr == NULL) {
            nm_subnet_rule_free(rule);
            return nmi_err(NM_ENOMEM, "out of memory adding a subnet rule");
        }
        p->rules = nr;
        p->cap = nc;
    }
    p->rules[p->n++] = rule;
    return NM_OK;
}

/* The byte a tag maps to under a rule, or 0. */
static uint8_t
rule_byte(const nm_subnet_rule *r, const char *tag)
{
    if (tag == NULL || tag[0] == '\0' || strncmp(tag, r->prefix, r->plen)) {
        return 0;
    }
    const char *rest = tag + r->plen;
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->map[i].value, rest) == 0) {
            return r->map[i].byte;
        }
    }
    return 0;
}

nm_subnet_id
nm_subnet_policy_assign(const nm_subnet_policy *p, const char *const *tags,
                        size_t ntags)
{
    if (p == NULL || (ntags && tags == NULL)) {
        return NM_SUBNET_GLOBAL;
    }
    uint8_t levels[4] = {0, 0, 0, 0};
    for (size_t r = 0; r < p->n; r++) {
        const nm_subnet_rule *rule = p->rules[r];
        const char *win = NULL;
        uint8_t byte = 0;
        for (size_t i = 0; i < ntags; i++) {
            uint8_t b = rule_byte(rule, tags[i]);
            if (b && (win == NULL || strcmp(tags[i], win) < 0)) {
                win = tags[i];
                byte = b;
            }
        }
        if (win) {
            levels[rule->level] = byte;
        }
    }
    nm_subnet_id id;
    (void)nm_subnet_new(levels, 4, &id);
    return id;
}

nm_subnet_id
nm_subnet_policy_assign_capset(const nm_subnet_policy *p, const nm_capset *set)
{
    if (p == NULL || set == NULL) {
        return NM_SUBNET_GLOBAL;
    }
    uint8_t levels[4] = {0, 0, 0, 0};
    for (size_t r = 0; r < p->n; r++) {
        const nm_subnet_rule *rule = p->rules[r];
        /* Tags are sorted: the first hit is the bytewise smallest. */
        for (size_t i = 0; i < set->ntags; i++) {
            uint8_t b = rule_byte(rule, set->tags[i].wire);
            if (b) {
                levels[rule->level] = b;
                break;
            }
        }
    }
    nm_subnet_id id;
    (void)nm_subnet_new(levels, 4, &id);
    return id;
}

bool
nm_subnet_same_subnet_cb(uint64_t node_id, const nm_capset *set,
                         void *resolver)
{
    const nm_subnet_resolver *r = resolver;
    if (r == NULL) {
        return false;
    }
    if (node_id == r->self_id) {
        return true;
    }
    if (r->policy == NULL) {
        return false;
    }
    return nm_subnet_policy_assign_capset(r->policy, set) == r->local;
}

/* ================================================================== vis */

int
nm_subnet_visible(nm_visibility vis, nm_subnet_id src, nm_subnet_id dst,
                  bool dst_known)
{
    switch (vis) {
    case NM_VIS_GLOBAL:
        return 1;
    case NM_VIS_SUBNET_LOCAL:
        return dst_known ? src == dst : src == NM_SUBNET_GLOBAL;
    case NM_VIS_PARENT_VISIBLE:
        return dst_known ? nm_subnet_is_ancestor_of(dst, src)
                         : src == NM_SUBNET_GLOBAL;
    case NM_VIS_EXPORTED:
        return nmi_err(NM_ENOTSUP,
                       "Exported visibility needs per-channel export tables, "
                       "which upstream defers (v1 drops); not supported");
    default:
        return nmi_err(NM_EINVAL, "unknown visibility %d", (int)vis);
    }
}

int
nm_subnet_should_forward(nm_visibility vis, nm_subnet_id src, nm_subnet_id dst,
                         uint32_t ttl, uint32_t count,
                         nm_gateway_verdict *verdict)
{
    if (verdict == NULL || (unsigned)vis > NM_VIS_EXPORTED) {
        return nmi_err(NM_EINVAL, "verdict non-NULL and a known visibility");
    }
    if (ttl == 0 || count >= ttl) {
        *verdict = NM_GW_DROP_TTL_EXPIRED;
        return NM_OK;
    }
    switch (vis) {
    case NM_VIS_GLOBAL:
        *verdict = NM_GW_FORWARD;
        return NM_OK;
    case NM_VIS_SUBNET_LOCAL:
        *verdict = NM_GW_DROP_SUBNET_LOCAL;
        return NM_OK;
    case NM_VIS_PARENT_VISIBLE:
        *verdict = nm_subnet_is_ancestor_of(dst, src)
                       ? NM_GW_FORWARD
                       : NM_GW_DROP_NOT_ANCESTOR;
        return NM_OK;
    default:
        *verdict = NM_GW_DROP_NOT_EXPORTED;
        return nmi_err(NM_ENOTSUP,
                       "Exported visibility needs per-channel export tables, "
                       "which upstream defers (v1 drops); not supported");
    }
}
