/*
 * tests/unit/test_subnet.c - SubnetId packing, depth, masks, ancestry,
 * text forms; SubnetPolicy assignment (declaration order, bytewise-
 * smallest winner, exact values, interior zeros); the visibility matrix
 * and the gateway rule, with Exported refused.
 */
#include <criterion/criterion.h>

#include <string.h>

#include <netmesh.h>
#include <netmesh/subnet.h>

static nm_subnet_id
sid(const char *s)
{
    nm_subnet_id id;
    cr_assert_eq(nm_subnet_parse(s, &id), NM_OK, "%s", s);
    return id;
}

Test(subnet, ids)
{
    nm_subnet_id id;
    cr_assert_eq(nm_subnet_new((const uint8_t[]){3, 7}, 2, &id), NM_OK);
    cr_assert_eq(id, 0x03070000u);
    cr_assert_eq(nm_subnet_new((const uint8_t[]){1, 2, 3, 4, 5}, 5, &id),
                 NM_EINVAL);
    cr_assert_eq(nm_subnet_new(NULL, 0, &id), NM_OK);
    cr_assert_eq(id, NM_SUBNET_GLOBAL);
    cr_assert_eq(nm_subnet_depth(0), 0);
    cr_assert_eq(nm_subnet_depth(0x03000700u), 3);
    cr_assert_eq(nm_subnet_depth(0x01020304u), 4);
    cr_assert_eq(nm_subnet_mask(0), 0);
    cr_assert_eq(nm_subnet_mask(1), 0xFF000000u);
    cr_assert_eq(nm_subnet_mask(2), 0xFFFF0000u);
    cr_assert_eq(nm_subnet_mask(3), 0xFFFFFF00u);
    cr_assert_eq(nm_subnet_mask(4), 0xFFFFFFFFu);
    cr_assert_eq(nm_subnet_parent(0x03070000u), 0x03000000u);
    cr_assert_eq(nm_subnet_parent(0x03000700u), 0x03000000u);
    cr_assert_eq(nm_subnet_parent(0x03000000u), 0);
    cr_assert_eq(nm_subnet_parent(0), 0);
    cr_assert_eq(nm_subnet_level(0x03070000u, 1), 7);
    /* ancestor-or-self */
    cr_assert(nm_subnet_is_ancestor_of(0, 0x03070000u));
    cr_assert(nm_subnet_is_ancestor_of(0, 0));
    cr_assert(nm_subnet_is_ancestor_of(0x03000000u, 0x03070000u));
    cr_assert(nm_subnet_is_ancestor_of(0x03070000u, 0x03070000u));
    cr_assert(!nm_subnet_is_ancestor_of(0x03070000u, 0x03000000u));
    cr_assert(!nm_subnet_is_ancestor_of(0x03000000u, 0x04070000u));
    cr_assert(!nm_subnet_is_ancestor_of(0x03000000u, 0));
    /* siblings */
    cr_assert(nm_subnet_is_sibling(0x03070000u, 0x03080000u));
    cr_assert(!nm_subnet_is_sibling(0x03070000u, 0x03070000u));
    cr_assert(!nm_subnet_is_sibling(0x03070000u, 0x04070000u));
    cr_assert(nm_subnet_is_sibling(0x03000000u, 0x04000000u));
    cr_assert(!nm_subnet_is_sibling(0, 0));
    cr_assert(!nm_subnet_is_sibling(0x03070000u, 0x03000000u));
}

Test(subnet, text_forms)
{
    char buf[NM_SUBNET_STR_MAX];
    cr_assert_str_eq(nm_subnet_format(0, buf), "global");
    cr_assert_str_eq(nm_subnet_format(0x03070000u, buf), "3.7");
    cr_assert_str_eq(nm_subnet_format(0x03000700u, buf), "3.0.7");
    cr_assert_str_eq(nm_subnet_format(0xFFFFFFFFu, buf), "255.255.255.255");
    cr_assert_eq(sid("global"), 0);
    cr_assert_eq(sid("  GLOBAL\t"), 0);
    cr_assert_eq(sid("3.7"), 0x03070000u);
    cr_assert_eq(sid(" 3.0.7 "), 0x03000700u);
    cr_assert_eq(sid("+1.2.3.4"), 0x01020304u);
    cr_assert_eq(sid("0"), 0);
    static const char *const bad[] = {"",     "1.2.3.4.5", "256",
                                      "1..2", "1.-2",      "a",
                                      "1. 2", "globals",   "1.2."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nm_subnet_id id;
        cr_assert_eq(nm_subnet_parse(bad[i], &id), NM_EINVAL, "%s", bad[i]);
    }
}

static nm_subnet_policy *
seed_policy(void)
{
    /* the seed README's policy: region:<x> -> level 0, fleet:<x> -> 1 */
    nm_subnet_policy *p;
    nm_subnet_rule *r;
    cr_assert_eq(nm_subnet_policy_new(&p), NM_OK);
    cr_assert_eq(nm_subnet_rule_new("region:", 0, &r), NM_OK);
    cr_assert_eq(nm_subnet_rule_map(r, "us", 3), NM_OK);
    cr_assert_eq(nm_subnet_rule_map(r, "eu", 4), NM_OK);
    cr_assert_eq(nm_subnet_policy_add_rule(p, r), NM_OK);
    cr_assert_eq(nm_subnet_rule_new("fleet:", 1, &r), NM_OK);
    cr_assert_eq(nm_subnet_rule_map(r, "blue", 7), NM_OK);
    cr_assert_eq(nm_subnet_rule_map(r, "green", 8), NM_OK);
    cr_assert_eq(nm_subnet_policy_add_rule(p, r), NM_OK);
    return p;
}

Test(subnet, policy_assign)
{
    nm_subnet_policy *p = seed_policy();
    static const struct {
        const char *tags[4];
        size_t n;
        nm_subnet_id want;
    } t[] = {
        {{"region:us", "fleet:blue"}, 2, 0x03070000u},
        {{"fleet:blue", "region:us"}, 2, 0x03070000u},
        {{"fleet:green"}, 1, 0x00080000u},            /* interior zero */
        {{"region:us:x", "region:", ""}, 3, 0},       /* exact values only */
        {{"region:us", "region:eu"}, 2, 0x04000000u}, /* smallest wins */
        {{"region:eu", "region:us"}, 2, 0x04000000u},
        {{"region:mars", "fleet:red"}, 2, 0},
        {{"Region:us"}, 1, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        cr_assert_eq(nm_subnet_policy_assign(p, t[i].tags, t[i].n), t[i].want,
                     "case %zu", i);
        nm_capset *s;
        cr_assert_eq(nm_capset_new(&s), NM_OK);
        for (size_t k = 0; k < t[i].n; k++) {
            if (t[i].tags[k][0]) {
                cr_assert_eq(nm_capset_insert_tag(s, t[i].tags[k]), NM_OK);
            }
        }
        cr_assert_eq(nm_subnet_policy_assign_capset(p, s), t[i].want,
                     "capset case %zu", i);
        nm_capset_free(s);
    }
    /* a later same-level rule overwrites, but only when it matched */
    nm_subnet_rule *r;
    cr_assert_eq(nm_subnet_rule_new("zone:", 0, &r), NM_OK);
    cr_assert_eq(nm_subnet_rule_map(r, "z1", 9), NM_OK);
    cr_assert_eq(nm_subnet_policy_add_rule(p, r), NM_OK);
    const char *a[] = {"region:us", "zone:z1"};
    cr_assert_eq(nm_subnet_policy_assign(p, a, 2), 0x09000000u);
    const char *b[] = {"region:us", "zone:z2"};
    cr_assert_eq(nm_subnet_policy_assign(p, b, 2), 0x03000000u);
    nm_subnet_policy_free(p);
    /* rejected rules */
    cr_assert_eq(nm_subnet_rule_new("x:", 4, &r), NM_EINVAL);
    cr_assert_eq(nm_subnet_rule_new("x:", 3, &r), NM_OK);
    cr_assert_eq(nm_subnet_rule_map(r, "v", 0), NM_EINVAL);
    nm_subnet_rule_free(r);
}

Test(subnet, visibility_matrix)
{
    const nm_subnet_id us_blue = 0x03070000u, us = 0x03000000u,
                       us_green = 0x03080000u, eu = 0x04000000u, g = 0;
    static const struct {
        nm_visibility vis;
        nm_subnet_id src, dst;
        bool known;
        int want;
    } t[] = {
        {NM_VIS_GLOBAL, 0x03070000u, 0x04000000u, true, 1},
        {NM_VIS_GLOBAL, 0x03070000u, 0, false, 1},
        {NM_VIS_SUBNET_LOCAL, 0x03070000u, 0x03070000u, true, 1},
        {NM_VIS_SUBNET_LOCAL, 0x03070000u, 0x03080000u, true, 0},
        {NM_VIS_SUBNET_LOCAL, 0x03070000u, 0x03000000u, true, 0},
        {NM_VIS_SUBNET_LOCAL, 0, 0, true, 1},
        {NM_VIS_SUBNET_LOCAL, 0x03070000u, 0, false, 0},
        {NM_VIS_SUBNET_LOCAL, 0, 0x03070000u, false, 1},
        {NM_VIS_PARENT_VISIBLE, 0x03070000u, 0x03070000u, true, 1},
        {NM_VIS_PARENT_VISIBLE, 0x03070000u, 0x03000000u, true, 1},
        {NM_VIS_PARENT_VISIBLE, 0x03070000u, 0, true, 1},
        {NM_VIS_PARENT_VISIBLE, 0x03000000u, 0x03070000u, true, 0},
        {NM_VIS_PARENT_VISIBLE, 0x03070000u, 0x03080000u, true, 0},
        {NM_VIS_PARENT_VISIBLE, 0x03070000u, 0x04000000u, true, 0},
        {NM_VIS_PARENT_VISIBLE, 0x03070000u, 0, false, 0},
        {NM_VIS_PARENT_VISIBLE, 0, 0x03070000u, false, 1},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        cr_assert_eq(
            nm_subnet_visible(t[i].vis, t[i].src, t[i].dst, t[i].known),
            t[i].want, "case %zu", i);
    }
    cr_assert_eq(nm_subnet_visible(NM_VIS_EXPORTED, us, us, true), NM_ENOTSUP);
    cr_assert_eq(nm_subnet_visible((nm_visibility)9, us, us, true), NM_EINVAL);

    nm_gateway_verdict v;
    cr_assert_eq(
        nm_subnet_should_forward(NM_VIS_GLOBAL, us_blue, eu, 4, 0, &v), NM_OK);
    cr_assert_eq(v, NM_GW_FORWARD);
    cr_assert_eq(
        nm_subnet_should_forward(NM_VIS_GLOBAL, us_blue, eu, 0, 0, &v), NM_OK);
    cr_assert_eq(v, NM_GW_DROP_TTL_EXPIRED);
    cr_assert_eq(
        nm_subnet_should_forward(NM_VIS_GLOBAL, us_blue, eu, 3, 3, &v), NM_OK);
    cr_assert_eq(v, NM_GW_DROP_TTL_EXPIRED);
    cr_assert_eq(nm_subnet_should_forward(NM_VIS_SUBNET_LOCAL, us_blue,
                                          us_blue, 4, 1, &v),
                 NM_OK);
    cr_assert_eq(v, NM_GW_DROP_SUBNET_LOCAL);
    cr_assert_eq(
        nm_subnet_should_forward(NM_VIS_PARENT_VISIBLE, us_blue, us, 4, 1, &v),
        NM_OK);
    cr_assert_eq(v, NM_GW_FORWARD);
    cr_assert_eq(nm_subnet_should_forward(NM_VIS_PARENT_VISIBLE, us_blue,
                                          us_green, 4, 1, &v),
                 NM_OK);
    cr_assert_eq(v, NM_GW_DROP_NOT_ANCESTOR);
    cr_assert_eq(
        nm_subnet_should_forward(NM_VIS_PARENT_VISIBLE, us_blue, g, 4, 1, &v),
        NM_OK);
    cr_assert_eq(v, NM_GW_FORWARD);
    cr_assert_eq(
        nm_subnet_should_forward(NM_VIS_EXPORTED, us_blue, us, 4, 1, &v),
        NM_ENOTSUP);
    cr_assert_eq(v, NM_GW_DROP_NOT_EXPORTED);
    cr_assert_eq(
        nm_subnet_should_forward(NM_VIS_EXPORTED, us_blue, us, 0, 0, &v),
        NM_OK);
    cr_assert_eq(v, NM_GW_DROP_TTL_EXPIRED);
}
