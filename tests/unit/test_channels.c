/*
 * tests/unit/test_channels.c - authenticated channels over the mesh
 * (include/netmesh/channel.h) on the deterministic driver: in-process
 * loopback ports, simulated time (1 ms per pump round) and a simulated
 * Unix clock for token windows. Subscribe / publish / receive, the auth
 * matrix (caps, token, subject, channel, expiry, roots, revocation,
 * subnets), the rate limiter (signature verifications counted), per-peer
 * and per-channel limits, publish reports, queue groups, unsubscribe, the
 * bounded receive queue; the AuthGuard alone; and one threaded test over
 * real UDP.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/channel.h>
#include <netmesh/discovery.h>
#include <netmesh/error.h>
#include <netmesh/mesh.h>

#include "behavior/channel_impl.h"
#include "core/core.h"
#include "mesh/node_impl.h"
#include "mesh/port.h"

#define NMT_NODE_EXTRA                                                        \
    nm_channels_t *ch;                                                        \
    nm_identity *ident;                                                       \
    uint8_t entity[32];
#include "mesh_harness.h"

static uint64_t unix_now = 1700000000;

static uint64_t
test_clock(void *ctx)
{
    (void)ctx;
    return unix_now;
}

/* Service config tweaks per test. */
static nm_channels_config ccfg;

static void
mk(tnode *t, uint16_t n)
{
    memset(t, 0, sizeof(*t));
    nmi_port *p = hub_port(n);
    uint8_t seed[32];
    memset(seed, (int)n, sizeof(seed));
    cr_assert_eq(nm_identity_from_seed(seed, &t->ident), NM_OK);
    nm_mesh_config cfg;
    node_config(&cfg);
    cfg.identity = t->ident;
    cfg.session_timeout_ms = 1000;
    node_open(t, n, p, &cfg);
    cr_assert_eq(nm_mesh_entity_id(t->m, t->entity), NM_OK);
    cr_assert_eq(nm_channels_open(t->m, &ccfg, &t->ch), NM_OK, "%s",
                 nm_errdetail());
}

static void
fini(tnode *const *all, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        nm_channels_close(all[i]->ch);
    }
    fini_nodes(all, k);
    for (size_t i = 0; i < k; i++) {
        nm_identity_free(all[i]->ident);
    }
}

static void
setup(void)
{
    hub_setup();
    nm_channels_config_init(&ccfg);
    ccfg.clock = test_clock;
    ccfg.token_sweep_ms = 100;
}

/* Subscribe from s to publisher p on the manual driver. */
static int
sub(tnode *s, tnode *p, tnode *const *all, size_t k, const char *name,
    const nm_subscribe_opts *o, nm_channel_reason *reason)
{
    uint64_t nonce;
    int rc = nmi_channels_subscribe_start(s->ch, p->id, name, o, &nonce);
    if (rc != NM_OK) {
        return rc;
    }
    for (int i = 0; i < 20; i++) {
        pump(all, k, 1);
        rc = nmi_channels_request_poll(s->ch, nonce, reason);
        if (rc != NM_EAGAIN) {
            return rc;
        }
    }
    nmi_channels_request_cancel(s->ch, nonce);
    return NM_ETIMEDOUT;
}

static int
unsub(tnode *s, tnode *p, tnode *const *all, size_t k, const char *name)
{
    uint64_t nonce;
    int rc = nmi_channels_unsubscribe_start(s->ch, p->id, name, &nonce);
    if (rc != NM_OK) {
        return rc;
    }
    for (int i = 0; i < 20; i++) {
        pump(all, k, 1);
        rc = nmi_channels_request_poll(s->ch, nonce, NULL);
        if (rc != NM_EAGAIN) {
            return rc;
        }
    }
    return NM_ETIMEDOUT;
}

/* Count (and free) every queued delivery of s; returns messages. */
static size_t
drain(tnode *s, const char *expect_name)
{
    size_t msgs = 0;
    nm_channel_delivery *d;
    while (nm_channels_recv(s->ch, 0, &d) == NM_OK) {
        if (expect_name != NULL) {
            cr_assert_str_eq(d->channel, expect_name);
        }
        msgs += d->count;
        nm_channel_delivery_free(d);
    }
    return msgs;
}

static nm_publish_report
pub1(tnode *p, const char *name, const char *msg)
{
    nm_publish_report r;
    cr_assert_eq(nm_channels_publish(p->ch, name, msg, strlen(msg), &r), NM_OK,
                 "%s", nm_errdetail());
    return r;
}

static void
reg(tnode *p, const char *name, void (*tweak)(nm_channel_config *, void *),
    void *arg)
{
    nm_channel_config c;
    nm_channel_config_init(&c, name);
    if (tweak) {
        tweak(&c, arg);
    }
    cr_assert_eq(nm_channels_register(p->ch, &c), NM_OK, "%s", nm_errdetail());
}

static nm_token_chain
token_for(const nm_identity *issuer, const uint8_t subject[32],
          const char *chan, uint32_t scope, uint64_t issued, uint64_t ttl)
{
    uint64_t h;
    cr_assert_eq(nm_channel_hash(chan, strlen(chan), &h), NM_OK);
    nm_token t;
    cr_assert_eq(nm_token_try_issue_at(issuer, 0, issued, subject, scope, h,
                                       ttl, 0, &t),
                 NM_OK);
    nm_token_chain c;
    nm_token_chain_init(&c);
    cr_assert_eq(nm_token_chain_push(&c, &t), NM_OK);
    return c;
}

/* ---- basics ---------------------------------------------------------- */

Test(channels, subscribe_publish_receive, .init = setup)
{
    tnode p, s;
    tnode *all[] = {&p, &s};
    mk(&p, 1);
    mk(&s, 2);
    connect_direct(&s, &p, all, 2);
    reg(&p, "sensors/temp", NULL, NULL);

    nm_channel_reason why = 99;
    cr_assert_eq(sub(&s, &p, all, 2, "sensors/temp", NULL, &why), NM_OK, "%s",
                 nm_errdetail());
    cr_assert_eq(why, NM_CHAN_OK);
    uint64_t ids[4];
    size_t n = 0;
    cr_assert_eq(nm_channels_subscribers(p.ch, "sensors/temp", ids, 4, &n),
                 NM_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], s.id);

    nm_publish_report r = pub1(&p, "sensors/temp", "22.5");
    cr_assert_eq(r.attempted, 1);
    cr_assert_eq(r.delivered, 1);
    cr_assert_eq(r.filtered, 0);
    const char *many[] = {"a", "bb", "ccc"};
    size_t lens[] = {1, 2, 3};
    cr_assert_eq(nm_channels_publish_many(p.ch, "sensors/temp",
                                          (const void *const *)many, lens, 3,
                                          &r),
                 NM_OK);
    cr_assert_eq(r.delivered, 1);
    pump(all, 2, 3);

    cr_assert_eq(
        poll(&(struct pollfd){.fd = nm_channels_fd(s.ch), .events = POLLIN}, 1,
             0),
        1, "the eventfd is readable");
    nm_channel_delivery *d = NULL;
    cr_assert_eq(nm_channels_recv(s.ch, 0, &d), NM_OK);
    cr_assert_str_eq(d->channel, "sensors/temp");
    cr_assert_eq(d->publisher, p.id);
    cr_assert_eq(d->count, 1);
    cr_assert_eq(d->msgs[0].len, 4);
    cr_assert_eq(memcmp(d->msgs[0].data, "22.5", 4), 0);
    nm_channel_delivery_free(d);
    cr_assert_eq(nm_channels_recv(s.ch, 0, &d), NM_OK);
    cr_assert_eq(d->count, 3);
    cr_assert_eq(memcmp(d->msgs[2].data, "ccc", 3), 0);
    nm_channel_delivery_free(d);
    cr_assert_eq(nm_channels_recv(s.ch, 0, &d), NM_EAGAIN);
    cr_assert_eq(
        poll(&(struct pollfd){.fd = nm_channels_fd(s.ch), .events = POLLIN}, 1,
             0),
        0, "drained");

    /* channel traffic is not in the mesh's own receive queue */
    nm_mesh_delivery *md = NULL;
    cr_assert_eq(nm_mesh_recv(s.m, 0, &md), NM_EAGAIN);
    /* a plain stream still is */
    const void *x = "plain";
    size_t xl = 5;
    cr_assert_eq(nm_mesh_send(p.m, s.id, 5, &x, &xl, 1), NM_OK);
    pump(all, 2, 2);
    cr_assert_eq(nm_mesh_recv(s.m, 0, &md), NM_OK);
    cr_assert_eq(md->stream_id, 5);
    nm_mesh_delivery_free(md);

    nm_channels_stats st;
    nm_channels_stats_get(p.ch, &st);
    cr_assert_eq(st.subscribes_accepted, 1);
    cr_assert_eq(st.publishes, 2);
    nm_channels_stats_get(s.ch, &st);
    cr_assert_eq(st.deliveries, 2);
    fini(all, 2);
}

static void
set_reliable(nm_channel_config *c, void *arg)
{
    (void)arg;
    c->reliable = true;
}

Test(channels, reliable_channel_uses_reliable_stream, .init = setup)
{
    tnode p, s;
    tnode *all[] = {&p, &s};
    mk(&p, 1);
    mk(&s, 2);
    connect_direct(&s, &p, all, 2);
    reg(&p, "orders", set_reliable, NULL);
    cr_assert_eq(sub(&s, &p, all, 2, "orders", NULL, NULL), NM_OK);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(pub1(&p, "orders", "o").delivered, 1);
    }
    pump(all, 2, 5);
    cr_assert_eq(drain(&s, "orders"), 10);
    nm_stream_stats st;
    uint64_t sid = nmi_wire_channel_stream_id("orders", 6);
    cr_assert_eq(nm_mesh_stream_stats(p.m, s.id, sid, &st), NM_OK);
    cr_assert_eq(st.reliability, NM_RELIABLE);
    cr_assert_eq(st.in_flight, 0, "everything acknowledged");
    fini(all, 2);
}

Test(channels, unknown_channel_and_register_errors, .init = setup)
{
    tnode p, s;
    tnode *all[] = {&p, &s};
    mk(&p, 1);
    mk(&s, 2);
    connect_direct(&s, &p, all, 2);
    nm_channel_reason why = NM_CHAN_OK;
    cr_assert_eq(sub(&s, &p, all, 2, "nope", NULL, &why), NM_ECHANREJECTED);
    cr_assert_eq(why, NM_CHAN_UNKNOWN_CHANNEL);
    cr_assert(strstr(nm_errdetail(), "unknown_channel") != NULL, "%s",
              nm_errdetail());
    cr_assert_str_eq(nm_channel_reason_name(NM_CHAN_RATE_LIMITED),
                     "rate_limited");

    nm_channel_config c;
    nm_channel_config_init(&c, "Bad/Name");
    cr_assert_eq(nm_channels_register(p.ch, &c), NM_EINVAL);
    nm_channel_config_init(&c, "ok/name");
    c.visibility = NM_VIS_EXPORTED;
    cr_assert_eq(nm_channels_register(p.ch, &c), NM_ENOTSUP);
    cr_assert(strstr(nm_errdetail(), "Exported") != NULL);
    cr_assert_eq(nm_channels_publish(p.ch, "ok/name", "x", 1, NULL),
                 NM_ENOTFOUND);
    cr_assert_eq(nm_channels_unregister(p.ch, "ok/name"), NM_ENOTFOUND);
    cr_assert_eq(
        nmi_channels_subscribe_start(s.ch, p.id, "a//b", NULL, &(uint64_t){0}),
        NM_EINVAL);
    /* a second service on one node */
    nm_channels_t *again = NULL;
    cr_assert_eq(nm_channels_open(p.m, NULL, &again), NM_EEXIST);
    fini(all, 2);
}

/* ---- auth matrix ------------------------------------------------------- */

static const char *GPU_TAGS[] = {"hardware.gpu"};

static void
set_token_and_caps(nm_channel_config *c, void *arg)
{
    static nm_capfilter f = NM_CAPFILTER_INIT;
    f.require_tags = GPU_TAGS;
    f.n_require_tags = 1;
    c->subscribe_caps = &f;
    c->require_token = true;
    c->token_roots = arg; /* NULL: the publisher's own identity */
    c->n_token_roots = arg ? 1 : 0;
}

static void
put_caps(nm_capindex *idx, uint64_t node, const char *const *tags, size_t n)
{
    nm_capset *set;
    cr_assert_eq(nm_capset_new(&set), NM_OK);
    for (size_t i = 0; i < n; i++) {
        cr_assert_geq(nm_capset_add_tag(set, tags[i]), 0);
    }
    cr_assert_eq(nm_capindex_put(idx, node, set, 1, 0), NM_OK);
    nm_capset_free(set);
}

Test(channels, auth_matrix, .init = setup)
{
    nm_capindex *idx;
    cr_assert_eq(nm_capindex_new(&idx), NM_OK);
    ccfg.caps = idx;
    ccfg.auth_failure_limit = 65535; /* the limiter has its own test */
    tnode p, s, o;
    tnode *all[] = {&p, &s, &o};
    mk(&p, 1);
    mk(&s, 2);
    mk(&o, 3);
    connect_direct(&s, &p, all, 3);
    const char *ch = "events/inference";
    reg(&p, ch, set_token_and_caps, NULL);
    nm_channel_reason why;
    nm_channels_stats st;

    nm_token_chain good =
        token_for(p.ident, s.entity, ch, NM_SCOPE_SUBSCRIBE, unix_now, 300);
    nm_subscribe_opts so = {.size = sizeof(so), .token = &good};

    /* missing caps (nothing announced yet: fail closed) */
    cr_assert_eq(sub(&s, &p, all, 3, ch, &so, &why), NM_ECHANREJECTED);
    cr_assert_eq(why, NM_CHAN_UNAUTHORIZED);
    nm_channels_stats_get(p.ch, &st);
    cr_assert_eq(st.token_verifications, 0, "caps are checked first");
    put_caps(idx, s.id, (const char *[]){"hardware.cpu_cores=8"}, 1);
    cr_assert_eq(sub(&s, &p, all, 3, ch, &so, &why), NM_ECHANREJECTED);
    put_caps(idx, s.id, GPU_TAGS, 1);

    /* missing token */
    cr_assert_eq(sub(&s, &p, all, 3, ch, NULL, &why), NM_ECHANREJECTED);
    cr_assert_eq(why, NM_CHAN_UNAUTHORIZED);

    /* wrong subject: a token for another node */
    nm_token_chain other =
        token_for(p.ident, o.entity, ch, NM_SCOPE_SUBSCRIBE, unix_now, 300);
    so.token = &other;
    cr_assert_eq(sub(&s, &p, all, 3, ch, &so, &why), NM_ECHANREJECTED);
    cr_assert_eq(why, NM_CHAN_UNAUTHORIZED);

    /* wrong channel */
    nm_token_chain wrongch = token_for(p.ident, s.entity, "events/other",
                                       NM_SCOPE_SUBSCRIBE, unix_now, 300);
    so.token = &wrongch;
    cr_assert_eq(sub(&s, &p, all, 3, ch, &so, &why), NM_ECHANREJECTED);

    /* wrong scope */
    nm_token_chain pubonly =
        token_for(p.ident, s.entity, ch, NM_SCOPE_PUBLISH, unix_now, 300);
    so.token = &pubonly;
    cr_assert_eq(sub(&s, &p, all, 3, ch, &so, &why), NM_ECHANREJECTED);

    /* expired (beyond the 60 s skew) and not yet valid */
    nm_token_chain old = token_for(p.ident, s.entity, ch, NM_SCOPE_SUBSCRIBE,
                                   unix_now - 1000, 100);
    so.token = &old;
    cr_assert_eq(sub(&s, &p, all, 3, ch, &so, &why), NM_ECHANREJECTED);
    nm_token_chain future = token_for(
        p.ident, s.entity, ch, NM_SCOPE_SUBSCRIBE, unix_now + 1000, 100);
    so.token = &future;
    cr_assert_eq(sub(&s, &p, all, 3, ch, &so, &why), NM_ECHANREJECTED);

    /* issued by someone who is not a root */
    nm_token_chain rogue =
        token_for(o.ident, s.entity, ch, NM_SCOPE_SUBSCRIBE, unix_now, 300);
    so.token = &rogue;
    cr_assert_eq(sub(&s, &p, all, 3, ch, &so, &why), NM_ECHANREJECTED);

    /* tampered signature */
    nm_token_chain bad = good;
    bad.links[0].signature[5] ^= 1;
    so.token = &bad;
    cr_assert_eq(sub(&s, &p, all, 3, ch, &so, &why), NM_ECHANREJECTED);

    nm_channels_stats_get(p.ch, &st);
    cr_assert_eq(st.subscribes_accepted, 0);
    cr_assert_eq(st.subscribes_rejected, 10);

    /* the good token: accepted */
    so.token = &good;
    cr_assert_eq(sub(&s, &p, all, 3, ch, &so, &why), NM_OK, "%s",
                 nm_errdetail());
    cr_assert_eq(why, NM_CHAN_OK);
    cr_assert_eq(pub1(&p, ch, "x").delivered, 1);

    /* a delegated chain: p -> o (DELEGATE) -> s */
    reg(&p, "events/delegated", set_token_and_caps, NULL);
    uint64_t h2;
    cr_assert_eq(nm_channel_hash("events/delegated", 16, &h2), NM_OK);
    nm_token root, leaf;
    cr_assert_eq(nm_token_try_issue_at(p.ident, 0, unix_now, o.entity,
                                       NM_SCOPE_SUBSCRIBE | NM_SCOPE_DELEGATE,
                                       h2, 300, 1, &root),
                 NM_OK);
    /* nm_token_delegate_at checks the parent at `now`: use its window */
    cr_assert_eq(nm_token_delegate_at(&root, o.ident, unix_now + 1, s.entity,
                                      NM_SCOPE_SUBSCRIBE, &leaf),
                 NM_OK, "%s", nm_errdetail());
    nm_token_chain chain;
    nm_token_chain_init(&chain);
    cr_assert_eq(nm_token_chain_push(&chain, &root), NM_OK);
    cr_assert_eq(nm_token_chain_push(&chain, &leaf), NM_OK);
    so.token = &chain;
    unix_now += 2;
    cr_assert_eq(sub(&s, &p, all, 3, "events/delegated", &so, &why), NM_OK,
                 "%s", nm_errdetail());

    /* explicit roots: o is the only root now, p's own tokens fail */
    reg(&p, "events/rooted", set_token_and_caps, o.entity);
    nm_token_chain byp = token_for(p.ident, s.entity, "events/rooted",
                                   NM_SCOPE_SUBSCRIBE, unix_now, 300);
    so.token = &byp;
    cr_assert_eq(sub(&s, &p, all, 3, "events/rooted", &so, &why),
                 NM_ECHANREJECTED);
    nm_token_chain byo = token_for(o.ident, s.entity, "events/rooted",
                                   NM_SCOPE_SUBSCRIBE, unix_now, 300);
    so.token = &byo;
    cr_assert_eq(sub(&s, &p, all, 3, "events/rooted", &so, &why), NM_OK);
    fini(all, 3);
    nm_capindex_free(idx);
}

static bool
entity_lookup(void *ctx, uint64_t node, uint8_t out[32])
{
    tnode *known = ctx;
    if (node != known->id) {
        return false;
    }
    memcpy(out, known->entity, 32);
    return true;
}

Test(channels, entity_lookup_binding, .init = setup)
{
    tnode p, s, o;
    tnode *all[] = {&p, &s, &o};
    ccfg.entity_of = entity_lookup;
    ccfg.entity_ctx = &s; /* only s's identity is established */
    mk(&p, 1);
    mk(&s, 2);
    mk(&o, 3);
    connect_direct(&s, &p, all, 3);
    connect_direct(&o, &p, all, 3);
    reg(&p, "c", set_token_and_caps, NULL);
    nm_channels_unregister(p.ch, "c");
    nm_channel_config c;
    nm_channel_config_init(&c, "c");
    c.require_token = true;
    cr_assert_eq(nm_channels_register(p.ch, &c), NM_OK);
    nm_channel_reason why;
    nm_token_chain ts =
        token_for(p.ident, s.entity, "c", NM_SCOPE_SUBSCRIBE, unix_now, 300);
    nm_subscribe_opts so = {.size = sizeof(so), .token = &ts};
    cr_assert_eq(sub(&s, &p, all, 3, "c", &so, &why), NM_OK);
    /* o's token is fine, but the lookup does not know o: fail closed */
    nm_token_chain to =
        token_for(p.ident, o.entity, "c", NM_SCOPE_SUBSCRIBE, unix_now, 300);
    so.token = &to;
    cr_assert_eq(sub(&o, &p, all, 3, "c", &so, &why), NM_ECHANREJECTED);
    cr_assert_eq(why, NM_CHAN_UNAUTHORIZED);
    fini(all, 3);
}

Test(channels, revoked_mid_stream, .init = setup)
{
    tnode p, s;
    tnode *all[] = {&p, &s};
    mk(&p, 1);
    mk(&s, 2);
    connect_direct(&s, &p, all, 2);
    reg(&p, "feed", NULL, NULL);
    cr_assert_eq(sub(&s, &p, all, 2, "feed", NULL, NULL), NM_OK);
    cr_assert_eq(pub1(&p, "feed", "1").delivered, 1);
    pump(all, 2, 2);
    cr_assert_eq(drain(&s, "feed"), 1);

    cr_assert_eq(nm_channels_revoke(p.ch, "feed", s.id), NM_OK);
    nm_publish_report r = pub1(&p, "feed", "2");
    cr_assert_eq(r.attempted, 0, "the very next publish skips it");
    pump(all, 2, 2);
    cr_assert_eq(drain(&s, NULL), 0);
    nm_channel_reason why;
    cr_assert_eq(sub(&s, &p, all, 2, "feed", NULL, &why), NM_ECHANREJECTED,
                 "revocation is sticky");
    cr_assert_eq(why, NM_CHAN_UNAUTHORIZED);
    cr_assert_eq(nm_channels_unrevoke(p.ch, "feed", s.id), NM_OK);
    cr_assert_eq(sub(&s, &p, all, 2, "feed", NULL, &why), NM_OK);
    cr_assert_eq(pub1(&p, "feed", "3").delivered, 1);
    fini(all, 2);
}

Test(channels, token_expiry_sweep, .init = setup)
{
    tnode p, s;
    tnode *all[] = {&p, &s};
    mk(&p, 1);
    mk(&s, 2);
    connect_direct(&s, &p, all, 2);
    nm_channel_config c;
    nm_channel_config_init(&c, "ttl");
    c.require_token = true;
    cr_assert_eq(nm_channels_register(p.ch, &c), NM_OK);
    nm_token_chain t =
        token_for(p.ident, s.entity, "ttl", NM_SCOPE_SUBSCRIBE, unix_now, 100);
    nm_subscribe_opts so = {.size = sizeof(so), .token = &t};
    cr_assert_eq(sub(&s, &p, all, 2, "ttl", &so, NULL), NM_OK);
    pump(all, 2, 200); /* sweeps run; the token is live */
    cr_assert_eq(pub1(&p, "ttl", "x").attempted, 1);
    unix_now += 100 + 60; /* not_after + skew */
    pump(all, 2, 150);    /* one sweep period (100 ms) and more */
    size_t n = 9;
    cr_assert_eq(nm_channels_subscribers(p.ch, "ttl", NULL, 0, &n), NM_OK);
    cr_assert_eq(n, 0, "evicted by the sweep");
    cr_assert_eq(pub1(&p, "ttl", "y").attempted, 0);
    nm_channels_stats st;
    nm_channels_stats_get(p.ch, &st);
    cr_assert_eq(st.expired_evictions, 1);
    fini(all, 2);
}

static void
set_vis(nm_channel_config *c, void *arg)
{
    c->visibility = *(nm_visibility *)arg;
}

Test(channels, subnet_visibility, .init = setup)
{
    nm_capindex *idx;
    cr_assert_eq(nm_capindex_new(&idx), NM_OK);
    nm_subnet_policy *pol;
    nm_subnet_rule *r;
    cr_assert_eq(nm_subnet_policy_new(&pol), NM_OK);
    cr_assert_eq(nm_subnet_rule_new("region:", 0, &r), NM_OK);
    cr_assert_eq(nm_subnet_rule_map(r, "us", 3), NM_OK);
    cr_assert_eq(nm_subnet_rule_map(r, "eu", 4), NM_OK);
    cr_assert_eq(nm_subnet_policy_add_rule(pol, r), NM_OK);
    cr_assert_eq(nm_subnet_rule_new("fleet:", 1, &r), NM_OK);
    cr_assert_eq(nm_subnet_rule_map(r, "blue", 7), NM_OK);
    cr_assert_eq(nm_subnet_policy_add_rule(pol, r), NM_OK);
    ccfg.caps = idx;
    ccfg.subnet_policy = pol;
    ccfg.subnet = 0x03070000u; /* us / blue */
    tnode p, near, far, parent, unknown;
    tnode *all[] = {&p, &near, &far, &parent, &unknown};
    mk(&p, 1);
    mk(&near, 2);
    mk(&far, 3);
    mk(&parent, 4);
    mk(&unknown, 5);
    for (size_t i = 1; i < 5; i++) {
        connect_direct(all[i], &p, all, 5);
    }
    put_caps(idx, near.id, (const char *[]){"region:us", "fleet:blue"}, 2);
    put_caps(idx, far.id, (const char *[]){"region:eu", "fleet:blue"}, 2);
    put_caps(idx, parent.id, (const char *[]){"region:us"}, 1);

    nm_visibility v = NM_VIS_SUBNET_LOCAL;
    reg(&p, "local", set_vis, &v);
    v = NM_VIS_PARENT_VISIBLE;
    reg(&p, "up", set_vis, &v);
    reg(&p, "all", NULL, NULL);
    nm_channel_reason why;
    cr_assert_eq(sub(&near, &p, all, 5, "local", NULL, &why), NM_OK);
    cr_assert_eq(sub(&far, &p, all, 5, "local", NULL, &why), NM_ECHANREJECTED);
    cr_assert_eq(why, NM_CHAN_UNAUTHORIZED);
    cr_assert_eq(sub(&parent, &p, all, 5, "local", NULL, &why),
                 NM_ECHANREJECTED);
    cr_assert_eq(sub(&unknown, &p, all, 5, "local", NULL, &why),
                 NM_ECHANREJECTED, "unknown subnet, local not global");
    cr_assert_eq(sub(&near, &p, all, 5, "up", NULL, &why), NM_OK);
    cr_assert_eq(sub(&parent, &p, all, 5, "up", NULL, &why), NM_OK);
    cr_assert_eq(sub(&far, &p, all, 5, "up", NULL, &why), NM_ECHANREJECTED);

    /* publish-time filtering: everyone joins a Global channel, which then
     * becomes SubnetLocal; filtered subscribers are not attempted */
    for (size_t i = 1; i < 5; i++) {
        cr_assert_eq(sub(all[i], &p, all, 5, "all", NULL, &why), NM_OK);
    }
    cr_assert_eq(pub1(&p, "all", "g").attempted, 4);
    v = NM_VIS_SUBNET_LOCAL;
    reg(&p, "all", set_vis, &v);
    nm_publish_report rep = pub1(&p, "all", "l");
    cr_assert_eq(rep.attempted, 1);
    cr_assert_eq(rep.delivered, 1);
    cr_assert_eq(rep.filtered, 3);
    pump(all, 5, 3);
    cr_assert_eq(drain(&near, "all"), 2);
    cr_assert_eq(drain(&far, "all"), 1);
    fini(all, 5);
    nm_subnet_policy_free(pol);
    nm_capindex_free(idx);
}

/* ---- rate limiter and limits ---------------------------------------------
 */

Test(channels, rate_limit_storm_skips_verification, .init = setup)
{
    ccfg.auth_throttle_ms = 500;
    tnode p, s;
    tnode *all[] = {&p, &s};
    mk(&p, 1);
    mk(&s, 2);
    connect_direct(&s, &p, all, 2);
    nm_channel_config c;
    nm_channel_config_init(&c, "guarded");
    c.require_token = true;
    cr_assert_eq(nm_channels_register(p.ch, &c), NM_OK);
    nm_token_chain good = token_for(p.ident, s.entity, "guarded",
                                    NM_SCOPE_SUBSCRIBE, unix_now, 300);
    nm_token_chain bad = good;
    bad.links[0].signature[0] ^= 0x80;
    nm_subscribe_opts so = {.size = sizeof(so), .token = &bad};

    /* a storm of 200 bad subscribes in one burst */
    uint64_t nonces[200];
    for (int i = 0; i < 200; i++) {
        cr_assert_eq(nmi_channels_subscribe_start(s.ch, p.id, "guarded", &so,
                                                  &nonces[i]),
                     NM_OK);
        if (i % 20 == 19) {
            pump(all, 2, 1);
        }
    }
    pump(all, 2, 3);
    int unauth = 0, limited = 0;
    for (int i = 0; i < 200; i++) {
        nm_channel_reason why;
        cr_assert_eq(nmi_channels_request_poll(s.ch, nonces[i], &why),
                     NM_ECHANREJECTED);
        unauth += why == NM_CHAN_UNAUTHORIZED;
        limited += why == NM_CHAN_RATE_LIMITED;
    }
    cr_assert_eq(unauth, 16, "16 failures, then the throttle");
    cr_assert_eq(limited, 184);
    nm_channels_stats st;
    nm_channels_stats_get(p.ch, &st);
    cr_assert_eq(st.token_verifications, 16,
                 "throttled requests never reach ed25519");
    cr_assert_eq(st.rate_limited, 184);

    /* even a good token is refused while throttled */
    so.token = &good;
    nm_channel_reason why;
    cr_assert_eq(sub(&s, &p, all, 2, "guarded", &so, &why), NM_ECHANREJECTED);
    cr_assert_eq(why, NM_CHAN_RATE_LIMITED);
    /* after the throttle period it goes through (and clears the count) */
    pump(all, 2, 520);
    cr_assert_eq(sub(&s, &p, all, 2, "guarded", &so, &why), NM_OK, "%s",
                 nm_errdetail());
    nm_channels_stats_get(p.ch, &st);
    cr_assert_eq(st.token_verifications, 17);
    fini(all, 2);
}

Test(channels, too_many_channels_per_peer, .init = setup)
{
    ccfg.auth_failure_limit = 2; /* TooManyChannels must not count */
    tnode p, s;
    tnode *all[] = {&p, &s};
    mk(&p, 1);
    mk(&s, 2);
    connect_direct(&s, &p, all, 2);
    char name[32];
    for (int i = 0; i <= NM_CHANNELS_PER_PEER_MAX + 2; i++) {
        snprintf(name, sizeof(name), "c/%d", i);
        reg(&p, name, NULL, NULL);
    }
    static uint64_t nonces[NM_CHANNELS_PER_PEER_MAX + 3];
    for (int i = 0; i <= NM_CHANNELS_PER_PEER_MAX + 2; i++) {
        snprintf(name, sizeof(name), "c/%d", i);
        cr_assert_eq(
            nmi_channels_subscribe_start(s.ch, p.id, name, NULL, &nonces[i]),
            NM_OK);
        if (i % 32 == 31) {
            pump(all, 2, 1);
        }
    }
    pump(all, 2, 3);
    int ok = 0, many = 0;
    for (int i = 0; i <= NM_CHANNELS_PER_PEER_MAX + 2; i++) {
        nm_channel_reason why = NM_CHAN_OK;
        int rc = nmi_channels_request_poll(s.ch, nonces[i], &why);
        ok += rc == NM_OK;
        many += why == NM_CHAN_TOO_MANY_CHANNELS;
    }
    cr_assert_eq(ok, NM_CHANNELS_PER_PEER_MAX);
    cr_assert_eq(many, 3);
    /* not counted as failures: not throttled */
    cr_assert_eq(unsub(&s, &p, all, 2, "c/0"), NM_OK);
    nm_channel_reason why;
    cr_assert_eq(sub(&s, &p, all, 2, "c/1025", NULL, &why), NM_OK);
    fini(all, 2);
}

static void
set_max1(nm_channel_config *c, void *arg)
{
    (void)arg;
    c->max_subscribers = 1;
}

Test(channels, max_subscribers_and_publish_caps, .init = setup)
{
    nm_capindex *idx;
    cr_assert_eq(nm_capindex_new(&idx), NM_OK);
    ccfg.caps = idx;
    tnode p, a, b;
    tnode *all[] = {&p, &a, &b};
    mk(&p, 1);
    mk(&a, 2);
    mk(&b, 3);
    connect_direct(&a, &p, all, 3);
    connect_direct(&b, &p, all, 3);
    reg(&p, "one", set_max1, NULL);
    nm_channel_reason why;
    cr_assert_eq(sub(&a, &p, all, 3, "one", NULL, &why), NM_OK);
    cr_assert_eq(sub(&a, &p, all, 3, "one", NULL, &why), NM_OK,
                 "re-subscribing is not a new member");
    cr_assert_eq(sub(&b, &p, all, 3, "one", NULL, &why), NM_ECHANREJECTED);
    cr_assert_eq(why, NM_CHAN_UNAUTHORIZED);

    static nm_capfilter f = NM_CAPFILTER_INIT;
    f.require_tags = GPU_TAGS;
    f.n_require_tags = 1;
    nm_channel_config c;
    nm_channel_config_init(&c, "gpu-only");
    c.publish_caps = &f;
    cr_assert_eq(nm_channels_register(p.ch, &c), NM_OK);
    cr_assert_eq(sub(&a, &p, all, 3, "gpu-only", NULL, &why), NM_OK);
    nm_publish_report r = {9, 9, 9};
    cr_assert_eq(nm_channels_publish(p.ch, "gpu-only", "x", 1, &r),
                 NM_EUNAUTHORIZED);
    cr_assert_eq(r.attempted, 0);
    put_caps(idx, p.id, GPU_TAGS, 1);
    cr_assert_eq(nm_channels_publish(p.ch, "gpu-only", "x", 1, &r), NM_OK);
    cr_assert_eq(r.delivered, 1);
    fini(all, 3);
    nm_capindex_free(idx);
}

/* ---- fan-out ------------------------------------------------------------ */

Test(channels, queue_groups_round_robin, .init = setup)
{
    tnode p, w1, w2, w3, bc;
    tnode *all[] = {&p, &w1, &w2, &w3, &bc};
    mk(&p, 1);
    mk(&w1, 2);
    mk(&w2, 3);
    mk(&w3, 4);
    mk(&bc, 5);
    for (size_t i = 1; i < 5; i++) {
        connect_direct(all[i], &p, all, 5);
    }
    reg(&p, "jobs", NULL, NULL);
    nm_subscribe_opts g = {.size = sizeof(g), .queue_group = "workers"};
    for (size_t i = 1; i < 4; i++) {
        cr_assert_eq(sub(all[i], &p, all, 5, "jobs", &g, NULL), NM_OK);
    }
    cr_assert_eq(sub(&bc, &p, all, 5, "jobs", NULL, NULL), NM_OK);
    for (int i = 0; i < 6; i++) {
        nm_publish_report r = pub1(&p, "jobs", "j");
        cr_assert_eq(r.attempted, 2, "one worker + the broadcast member");
        cr_assert_eq(r.delivered, 2);
        cr_assert_eq(r.filtered, 2);
    }
    pump(all, 5, 3);
    cr_assert_eq(drain(&w1, "jobs"), 2);
    cr_assert_eq(drain(&w2, "jobs"), 2);
    cr_assert_eq(drain(&w3, "jobs"), 2);
    cr_assert_eq(drain(&bc, "jobs"), 6);

    /* a member leaving shrinks the rotation */
    cr_assert_eq(unsub(&w2, &p, all, 5, "jobs"), NM_OK);
    for (int i = 0; i < 4; i++) {
        pub1(&p, "jobs", "k");
    }
    pump(all, 5, 3);
    cr_assert_eq(drain(&w1, NULL) + drain(&w3, NULL), 4);
    cr_assert_eq(drain(&w2, NULL), 0);
    fini(all, 5);
}

Test(channels, unsubscribe_idempotent, .init = setup)
{
    tnode p, s;
    tnode *all[] = {&p, &s};
    mk(&p, 1);
    mk(&s, 2);
    connect_direct(&s, &p, all, 2);
    reg(&p, "news", NULL, NULL);
    cr_assert_eq(unsub(&s, &p, all, 2, "news"), NM_OK, "never subscribed");
    cr_assert_eq(unsub(&s, &p, all, 2, "no/such"), NM_OK, "unknown channel");
    cr_assert_eq(sub(&s, &p, all, 2, "news", NULL, NULL), NM_OK);
    cr_assert_eq(unsub(&s, &p, all, 2, "news"), NM_OK);
    cr_assert_eq(unsub(&s, &p, all, 2, "news"), NM_OK, "twice");
    size_t n = 9;
    cr_assert_eq(nm_channels_subscribers(p.ch, "news", NULL, 0, &n), NM_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(pub1(&p, "news", "x").attempted, 0);

    /* traffic racing the unsubscribe is taken and counted, not leaked
     * into the mesh's queue */
    cr_assert_eq(sub(&s, &p, all, 2, "news", NULL, NULL), NM_OK);
    uint64_t nonce;
    cr_assert_eq(nmi_channels_unsubscribe_start(s.ch, p.id, "news", &nonce),
                 NM_OK);
    cr_assert_eq(pub1(&p, "news", "late").delivered, 1);
    pump(all, 2, 3);
    cr_assert_eq(nmi_channels_request_poll(s.ch, nonce, NULL), NM_OK);
    cr_assert_eq(drain(&s, NULL), 0);
    nm_mesh_delivery *md;
    cr_assert_eq(nm_mesh_recv(s.m, 0, &md), NM_EAGAIN);
    nm_channels_stats st;
    nm_channels_stats_get(s.ch, &st);
    cr_assert_eq(st.unsolicited, 1);
    fini(all, 2);
}

Test(channels, bounded_receive_queue, .init = setup)
{
    ccfg.rx_queue_max = 4;
    tnode p, s;
    tnode *all[] = {&p, &s};
    mk(&p, 1);
    mk(&s, 2);
    connect_direct(&s, &p, all, 2);
    reg(&p, "flood", NULL, NULL);
    cr_assert_eq(sub(&s, &p, all, 2, "flood", NULL, NULL), NM_OK);
    for (int i = 0; i < 10; i++) {
        pub1(&p, "flood", "x");
    }
    pump(all, 2, 3);
    cr_assert_eq(drain(&s, "flood"), 4);
    nm_channels_stats st;
    nm_channels_stats_get(s.ch, &st);
    cr_assert_eq(st.deliveries, 4);
    cr_assert_eq(st.deliveries_dropped, 6);
    fini(all, 2);
}

typedef struct hrec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int msgs;
    pthread_t thread;
} hrec;

static void
on_msg(void *ctx, const nm_channel_delivery *d)
{
    hrec *h = ctx;
    pthread_mutex_lock(&h->mu);
    h->msgs += (int)d->count;
    h->thread = pthread_self();
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

Test(channels, handler_runs_on_worker, .init = setup)
{
    tnode p, s;
    tnode *all[] = {&p, &s};
    mk(&p, 1);
    mk(&s, 2);
    connect_direct(&s, &p, all, 2);
    reg(&p, "cb", NULL, NULL);
    hrec h = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    cr_assert_eq(nm_channels_set_handler(s.ch, on_msg, &h), NM_OK);
    cr_assert_eq(sub(&s, &p, all, 2, "cb", NULL, NULL), NM_OK);
    for (int i = 0; i < 5; i++) {
        pub1(&p, "cb", "x");
    }
    pump(all, 2, 3);
    uint64_t deadline = nmi_mono_ns() + 10ull * 1000000000ull;
    pthread_mutex_lock(&h.mu);
    while (h.msgs < 5 && nmi_mono_ns() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&h.cv, &h.mu, &ts);
    }
    cr_assert_eq(h.msgs, 5);
    cr_assert(!pthread_equal(h.thread, pthread_self()));
    pthread_mutex_unlock(&h.mu);
    fini(all, 2);
}

/* ---- the AuthGuard alone -------------------------------------------------
 */

Test(channels, guard_bloom_and_exact_set)
{
    nmi_guard g;
    nmi_guard_init(&g);
    cr_assert(!nmi_guard_check(&g, 1, 2, NMI_GUARD_DOMAIN_NODE));
    for (uint64_t i = 0; i < 5000; i++) {
        cr_assert_eq(nmi_guard_allow(&g, i, 77, NMI_GUARD_DOMAIN_NODE), NM_OK);
    }
    for (uint64_t i = 0; i < 5000; i++) {
        cr_assert(nmi_guard_check(&g, i, 77, NMI_GUARD_DOMAIN_NODE));
        cr_assert(!nmi_guard_check(&g, i, 78, NMI_GUARD_DOMAIN_NODE),
                  "exact set behind the bloom");
        cr_assert(!nmi_guard_check(&g, i, 77, NMI_GUARD_DOMAIN_ORIGIN));
    }
    cr_assert(nmi_guard_revoke(&g, 42, 77, NMI_GUARD_DOMAIN_NODE));
    cr_assert(!nmi_guard_revoke(&g, 42, 77, NMI_GUARD_DOMAIN_NODE));
    cr_assert(!nmi_guard_check(&g, 42, 77, NMI_GUARD_DOMAIN_NODE));
    nmi_guard_rebuild(&g);
    cr_assert(!nmi_guard_check(&g, 42, 77, NMI_GUARD_DOMAIN_NODE));
    cr_assert(nmi_guard_check(&g, 43, 77, NMI_GUARD_DOMAIN_NODE));
    cr_assert_eq(g.len, 4999);
    /* the key is xxh3 over 17 bytes: stable */
    cr_assert_eq(nmi_guard_key(1, 2, 1), nmi_guard_key(1, 2, 1));
    cr_assert_neq(nmi_guard_key(1, 2, 1), nmi_guard_key(1, 2, 2));
    nmi_guard_fini(&g);
}

/* ---- threaded, real UDP ---------------------------------------------------
 */

Test(channels, threaded_udp)
{
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    memcpy(cfg.psk, PSK, 32);
    cfg.psk_set = true;
    cfg.accept_any = true;
    nm_mesh_t *pm = NULL, *sm = NULL;
    cr_assert_eq(nm_mesh_open(&cfg, &pm), NM_OK);
    cr_assert_eq(nm_mesh_open(&cfg, &sm), NM_OK);
    char addr[64];
    uint8_t key[32];
    cr_assert_eq(nm_mesh_local_addr(pm, addr, sizeof(addr)), NM_OK);
    nm_mesh_static_pubkey(pm, key);
    uint64_t pid = nm_mesh_node_id(pm);
    cr_assert_eq(nm_mesh_connect_routed(sm, addr, key, pid, 5000), NM_OK, "%s",
                 nm_errdetail());
    nm_channels_t *pc = NULL, *sc = NULL;
    cr_assert_eq(nm_channels_open(pm, NULL, &pc), NM_OK);
    cr_assert_eq(nm_channels_open(sm, NULL, &sc), NM_OK);
    nm_channel_config c;
    nm_channel_config_init(&c, "udp/reliable");
    c.reliable = true;
    cr_assert_eq(nm_channels_register(pc, &c), NM_OK);
    nm_channel_reason why;
    cr_assert_eq(
        nm_channels_subscribe(sc, pid, "udp/nothing", NULL, 5000, &why),
        NM_ECHANREJECTED);
    cr_assert_eq(why, NM_CHAN_UNKNOWN_CHANNEL);
    cr_assert_eq(nm_channels_subscribe(sc, pid, "udp/reliable", NULL, 0, &why),
                 NM_OK, "%s", nm_errdetail());
    int sent = 0;
    for (int i = 0; i < 200; i++) {
        char m[16];
        int l = snprintf(m, sizeof(m), "m%d", i);
        nm_publish_report r;
        for (int t = 0; t < 1000; t++) {
            cr_assert_eq(
                nm_channels_publish(pc, "udp/reliable", m, (size_t)l, &r),
                NM_OK);
            if (r.delivered == 1) {
                break;
            }
            nmi_sleep_ns(1000000); /* back-pressure: retry */
        }
        cr_assert_eq(r.delivered, 1);
        sent++;
    }
    int got = 0;
    while (got < sent) {
        nm_channel_delivery *d;
        int rc = nm_channels_recv(sc, 10000, &d);
        cr_assert_eq(rc, NM_OK, "got %d of %d", got, sent);
        cr_assert_str_eq(d->channel, "udp/reliable");
        got += (int)d->count;
        nm_channel_delivery_free(d);
    }
    cr_assert_eq(got, sent);
    cr_assert_eq(nm_channels_unsubscribe(sc, pid, "udp/reliable", 5000, NULL),
                 NM_OK);
    nm_channels_close(sc);
    nm_channels_close(pc);
    nm_mesh_close(sm);
    nm_mesh_close(pm);
}

/* ---- gated by real announcements (netmesh/discovery.h) -------------- */

Test(channels, discovery_gates_caps_and_binds_entities, .init = setup)
{
    tnode p, g, c, x;
    tnode *all[] = {&p, &g, &c, &x};
    mk(&p, 1);
    mk(&g, 2);
    mk(&c, 3);
    mk(&x, 4);
    connect_direct(&g, &p, all, 4);
    connect_direct(&c, &p, all, 4);
    connect_direct(&x, &p, all, 4);
    nm_discovery *dp = NULL, *dg = NULL, *dc = NULL;
    cr_assert_eq(nm_discovery_open(p.m, NULL, &dp), NM_OK);
    cr_assert_eq(nm_discovery_open(g.m, NULL, &dg), NM_OK);
    cr_assert_eq(nm_discovery_open(c.m, NULL, &dc), NM_OK);
    nm_capset *gpu = NULL, *cpu = NULL;
    cr_assert_eq(nm_capset_new(&gpu), NM_OK);
    cr_assert_eq(nm_capset_new(&cpu), NM_OK);
    nm_hardware hw = {.cpu_cores = 8, .memory_gb = 32, .has_gpu = true};
    hw.gpu.vendor = NM_GPU_NVIDIA;
    hw.gpu.model = "a100";
    hw.gpu.vram_gb = 40;
    cr_assert_eq(nm_capset_set_hardware(gpu, &hw), NM_OK);
    hw.has_gpu = false;
    cr_assert_eq(nm_capset_set_hardware(cpu, &hw), NM_OK);
    cr_assert_eq(nm_discovery_announce(dg, gpu), NM_OK);
    cr_assert_eq(nm_discovery_announce(dc, cpu), NM_OK);
    for (int i = 0; i < 2000 && nm_discovery_count(dp) < 2; i++) {
        pump(all, 4, 1);
    }
    cr_assert_eq(nm_discovery_count(dp), 2, "P indexed G and C");
    uint8_t ent[32];
    cr_assert(nm_discovery_entity_of(dp, g.id, ent));
    cr_assert_eq(memcmp(ent, g.entity, 32), 0);
    cr_assert(!nm_discovery_entity_of(dp, x.id, ent), "X never announced");

    /* P's channel service consults the announcements */
    nm_channels_close(p.ch);
    nm_channels_config pc = ccfg;
    pc.caps_of = nm_discovery_caps_of;
    pc.caps_ctx = dp;
    pc.entity_of = nm_discovery_entity_of;
    pc.entity_ctx = dp;
    cr_assert_eq(nm_channels_open(p.m, &pc, &p.ch), NM_OK);
    nm_capfilter f = NM_CAPFILTER_INIT;
    f.require_gpu = true;
    nm_channel_config cc;
    nm_channel_config_init(&cc, "jobs/gpu");
    cc.subscribe_caps = &f;
    cc.require_token = true; /* rooted in P */
    cr_assert_eq(nm_channels_register(p.ch, &cc), NM_OK);

    nm_channel_reason why = NM_CHAN_OK;
    nm_token_chain tg = token_for(p.ident, g.entity, "jobs/gpu",
                                  NM_SCOPE_SUBSCRIBE, unix_now, 600);
    nm_subscribe_opts so = {.size = sizeof(so), .token = &tg};
    cr_assert_eq(sub(&g, &p, all, 4, "jobs/gpu", &so, &why), NM_OK,
                 "GPU node with a token: %s", nm_channel_reason_name(why));
    nm_token_chain tc = token_for(p.ident, c.entity, "jobs/gpu",
                                  NM_SCOPE_SUBSCRIBE, unix_now, 600);
    so.token = &tc;
    cr_assert_eq(sub(&c, &p, all, 4, "jobs/gpu", &so, &why), NM_ECHANREJECTED,
                 "announced no GPU");
    cr_assert_eq(why, NM_CHAN_UNAUTHORIZED);
    /* X holds a valid token but never announced: its entity is unknown
     * to P, so the binding fails closed (and it has no caps either) */
    nm_token_chain tx = token_for(p.ident, x.entity, "jobs/gpu",
                                  NM_SCOPE_SUBSCRIBE, unix_now, 600);
    so.token = &tx;
    cr_assert_eq(sub(&x, &p, all, 4, "jobs/gpu", &so, &why), NM_ECHANREJECTED);
    nm_publish_report r = pub1(&p, "jobs/gpu", "train");
    cr_assert_eq(r.attempted, 1);
    pump(all, 4, 3);
    cr_assert_eq(drain(&g, "jobs/gpu"), 1);
    cr_assert_eq(drain(&c, NULL), 0);
    nm_channels_close(p.ch);
    p.ch = NULL;
    nm_discovery_close(dp);
    nm_discovery_close(dg);
    nm_discovery_close(dc);
    nm_capset_free(gpu);
    nm_capset_free(cpu);
    fini(all, 4);
}
