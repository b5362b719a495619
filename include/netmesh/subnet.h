/*
 * netmesh/subnet.h - subnets (visibility partitioning), compatible with
 * upstream Net's `subnet::{id, assignment, gateway}` and the channel
 * visibility rules (docs/capabilities.md).
 *
 * Rust seed -> C:
 *   SubnetId::new(&[3, 7])            -> nm_subnet_new((uint8_t[]){3,7}, 2,
 * &id) SubnetPolicy::new().add_rule(SubnetRule::new("region:", 0).map("us",
 * 3))
 *       -> nm_subnet_policy_new(&p); nm_subnet_rule_new("region:", 0, &r);
 *          nm_subnet_rule_map(r, "us", 3); nm_subnet_policy_add_rule(p, r)
 *   policy.assign(&caps)              -> nm_subnet_policy_assign_capset
 *   Visibility::{Global, SubnetLocal, ParentVisible, Exported}
 *       -> nm_visibility; nm_subnet_visible / nm_subnet_should_forward
 *
 * A SubnetId is a plain uint32_t: four 8-bit levels packed from the most
 * significant byte (level i at bits 24-8i); 0 is GLOBAL.
 *
 * Ownership: policies and rules are handles (*_free).
 * nm_subnet_policy_add_rule takes ownership of the rule, also on failure.
 * Threading: a policy is immutable once built (concurrent assign calls are
 * safe); building it needs external synchronisation. Everything else is a pure
 * function.
 */
#ifndef NETMESH_SUBNET_H
#define NETMESH_SUBNET_H

#include <stdbool.h>

#include <netmesh/caps.h>
#include <netmesh/common.h>
#include <netmesh/error.h>

NM_BEGIN_DECLS

typedef uint32_t nm_subnet_id;

#define NM_SUBNET_GLOBAL ((nm_subnet_id)0)
#define NM_SUBNET_MAX_LEVELS 4
/* Longest text form: "255.255.255.255" or "global", plus NUL. */
#define NM_SUBNET_STR_MAX 16

/* nm_subnet_new - pack up to 4 levels ({3,7} -> 0x03070000). NM_EINVAL
 * for more than 4 levels or NULL with n > 0. */
NM_API int nm_subnet_new(const uint8_t *levels, size_t n, nm_subnet_id *out);
/* nm_subnet_level - level i (0..3), 0 past 3. */
NM_API uint8_t nm_subnet_level(nm_subnet_id id, unsigned i);
/* nm_subnet_depth - index of the deepest non-zero level + 1 (0 = GLOBAL;
 * 3.0.7 has depth 3). */
NM_API unsigned nm_subnet_depth(nm_subnet_id id);
/* nm_subnet_mask - 0, FF000000, FFFF0000, FFFFFF00, FFFFFFFF for depth
 * 0..4 (depth > 4 is treated as 4). */
NM_API uint32_t nm_subnet_mask(unsigned depth);
/* nm_subnet_parent - id & mask(depth-1) (GLOBAL's parent is GLOBAL). */
NM_API nm_subnet_id nm_subnet_parent(nm_subnet_id id);
/* nm_subnet_is_ancestor_of - ancestor-or-self: GLOBAL contains everything;
 * otherwise (a ^ b) & mask(depth(a)) == 0 (a non-global a never contains
 * GLOBAL). */
NM_API bool nm_subnet_is_ancestor_of(nm_subnet_id a, nm_subnet_id b);
/* nm_subnet_is_sibling - equal non-zero depths, equal parents, a != b. */
NM_API bool nm_subnet_is_sibling(nm_subnet_id a, nm_subnet_id b);
/* nm_subnet_format - "global" or the dotted levels up to the depth
 * ("3.0.7"). buf must hold NM_SUBNET_STR_MAX bytes. Returns buf. */
NM_API const char *nm_subnet_format(nm_subnet_id id,
                                    char buf[NM_SUBNET_STR_MAX]);
/* nm_subnet_parse - trimmed "global" (any case) or 1..4 '.'-separated u8
 * levels (Rust integer rules). NM_EINVAL otherwise. */
NM_API int nm_subnet_parse(const char *s, nm_subnet_id *out);

/* ------------------------------------------------------------ policy */

typedef struct nm_subnet_rule nm_subnet_rule;
typedef struct nm_subnet_policy nm_subnet_policy;

/* nm_subnet_rule_new - a rule mapping tags "<tag_prefix><value>" to
 * levels[level]. NM_EINVAL for level >= 4 or a NULL prefix. */
NM_API int nm_subnet_rule_new(const char *tag_prefix, unsigned level,
                              nm_subnet_rule **out);
/* nm_subnet_rule_map - value -> level byte. NM_EINVAL for byte 0 (0 means
 * "unassigned"); a repeated value overwrites. */
NM_API int nm_subnet_rule_map(nm_subnet_rule *rule, const char *value,
                              uint8_t byte);
NM_API void nm_subnet_rule_free(nm_subnet_rule *rule);

NM_API int nm_subnet_policy_new(nm_subnet_policy **out);
NM_API void nm_subnet_policy_free(nm_subnet_policy *p);
/* nm_subnet_policy_add_rule - append (rules apply in declaration order);
 * takes ownership of `rule` (also on failure). */
NM_API int nm_subnet_policy_add_rule(nm_subnet_policy *p,
                                     nm_subnet_rule *rule);
/* nm_subnet_policy_assign - the SubnetId of a peer with these tags (wire
 * strings): levels start at 0; for each rule in order, the bytewise-
 * smallest tag that starts with the rule's prefix and whose remainder is
 * exactly a mapped value wins and writes its level (a later same-level rule
 * overwrites only if it matched). Unmatched levels stay 0. */
NM_API nm_subnet_id nm_subnet_policy_assign(const nm_subnet_policy *p,
                                            const char *const *tags,
                                            size_t ntags);
/* nm_subnet_policy_assign_capset - the same over a set's tags. */
NM_API nm_subnet_id nm_subnet_policy_assign_capset(const nm_subnet_policy *p,
                                                   const nm_capset *set);

/* The SameSubnet resolver of scoped discovery: same_subnet(node, set) =
 * node == self_id, else (with a policy) assign(set) == local, else false.
 * Pass nm_subnet_same_subnet_cb with a pointer to this as the ctx of a
 * NM_SCOPE_SAME_SUBNET nm_scope_filter. */
typedef struct nm_subnet_resolver {
    uint64_t self_id;
    const nm_subnet_policy *policy; /* may be NULL */
    nm_subnet_id local;
} nm_subnet_resolver;

NM_API bool nm_subnet_same_subnet_cb(uint64_t node_id, const nm_capset *set,
                                     void *resolver);

/* ------------------------------------------------------------ visibility */

typedef enum nm_visibility {
    NM_VIS_GLOBAL = 0, /* the default */
    NM_VIS_SUBNET_LOCAL = 1,
    NM_VIS_PARENT_VISIBLE = 2,
    NM_VIS_EXPORTED = 3 /* deferred upstream: refused with NM_ENOTSUP */
} nm_visibility;

/* nm_subnet_visible - node fan-out / subscribe gate: may `src` (the local
 * subnet) deliver to a peer in `dst`? `dst_known` false = the peer's subnet
 * is unknown. Returns 1 / 0, or NM_ENOTSUP for NM_VIS_EXPORTED (export
 * tables are deferred upstream, which drops in v1), NM_EINVAL for an
 * unknown visibility.
 *   Global: 1.  SubnetLocal: src == dst (unknown dst: src is GLOBAL).
 *   ParentVisible: dst is an ancestor-or-self of src (unknown: src GLOBAL). */
NM_API int nm_subnet_visible(nm_visibility vis, nm_subnet_id src,
                             nm_subnet_id dst, bool dst_known);

/* Gateway verdicts. */
typedef enum nm_gateway_verdict {
    NM_GW_FORWARD = 0,
    NM_GW_DROP_TTL_EXPIRED = 1,
    NM_GW_DROP_SUBNET_LOCAL = 2,
    NM_GW_DROP_NOT_ANCESTOR = 3,
    NM_GW_DROP_NOT_EXPORTED = 4
} nm_gateway_verdict;

/* nm_subnet_should_forward - the gateway rule for a packet of a channel
 * with visibility `vis` (pass NM_VIS_SUBNET_LOCAL for an unknown channel,
 * as upstream): ttl == 0 or count >= ttl -> TTL_EXPIRED first; Global
 * forwards; SubnetLocal always drops; ParentVisible forwards iff dst is an
 * ancestor-or-self of src. Writes *verdict and returns NM_OK, or
 * NM_ENOTSUP for NM_VIS_EXPORTED (after the TTL check; *verdict is then
 * NM_GW_DROP_NOT_EXPORTED), NM_EINVAL for bad arguments. */
NM_API int nm_subnet_should_forward(nm_visibility vis, nm_subnet_id src,
                                    nm_subnet_id dst, uint32_t ttl,
                                    uint32_t count,
                                    nm_gateway_verdict *verdict);

NM_END_DECLS

#endif
