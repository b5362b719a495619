/*
 * tests/unit/test_discovery.c - capability announcements over the mesh
 * (netmesh/discovery.h): the 0x0C00 JSON codec, flooding on a 6-node line
 * and a diamond on the deterministic driver (loopback hub, simulated time,
 * 1 ms per pump round), TTL expiry after the announcer dies, rate
 * limiting, every receive-side rejection, TOFU, the late-joiner sync, and
 * three threaded nodes over real UDP with bounded waits.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netmesh.h>

#include "behavior/announce_impl.h"
#include "core/core.h"
#include "mesh/mesh_ext.h"
#include "mesh/node_impl.h"
#include "mesh/port.h"

/* What a node's discovery handler saw. */
typedef struct seen {
    uint64_t from[64];
    uint32_t hops[64];
    uint64_t version[64];
    size_t n;
} seen;

#define NMT_NODE_EXTRA                                                        \
    nm_discovery *d;                                                          \
    seen s;
#include "mesh_harness.h"

static void
on_ann(void *ctx, uint64_t node_id, const nm_capset *caps, uint64_t version,
       uint32_t hops)
{
    (void)caps;
    seen *s = ctx;
    if (s->n < 64) {
        s->from[s->n] = node_id;
        s->hops[s->n] = hops;
        s->version[s->n] = version;
        s->n++;
    }
}

static size_t
seen_from(const tnode *t, uint64_t id)
{
    size_t k = 0;
    for (size_t i = 0; i < t->s.n; i++) {
        k += t->s.from[i] == id;
    }
    return k;
}

static void
mk(tnode *t, uint16_t n, const nm_discovery_config *dc)
{
    memset(t, 0, sizeof(*t));
    node_open(t, n, NULL, NULL);
    cr_assert_eq(nm_discovery_open(t->m, dc, &t->d), NM_OK, "%s",
                 nm_errdetail());
    cr_assert_eq(nm_discovery_set_handler(t->d, on_ann, &t->s), NM_OK);
}

static void
fini(tnode *const *all, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        nm_discovery_close(all[i]->d);
        all[i]->d = NULL;
    }
    fini_nodes(all, k);
}

static void
setup(void)
{
    hub_setup();
}

static nm_capset *
gpu_caps(void)
{
    nm_capset *c = NULL;
    cr_assert_eq(nm_capset_new(&c), NM_OK);
    nm_hardware hw;
    memset(&hw, 0, sizeof(hw));
    hw.cpu_cores = 16;
    hw.cpu_threads = 32;
    hw.memory_gb = 64;
    hw.has_gpu = true;
    hw.gpu.vendor = NM_GPU_NVIDIA;
    hw.gpu.model = "RTX 4090";
    hw.gpu.vram_gb = 24;
    cr_assert_eq(nm_capset_set_hardware(c, &hw), NM_OK);
    return c;
}

static nm_capset *
mem_caps(uint64_t gb)
{
    nm_capset *c = NULL;
    cr_assert_eq(nm_capset_new(&c), NM_OK);
    nm_hardware hw;
    memset(&hw, 0, sizeof(hw));
    hw.memory_gb = gb;
    cr_assert_eq(nm_capset_set_hardware(c, &hw), NM_OK);
    return c;
}

static bool
finds(tnode *t, const nm_capfilter *f, uint64_t id)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    cr_assert_eq(nm_discovery_find_nodes(t->d, f, &ids, &n), NM_OK);
    bool hit = false;
    for (size_t i = 0; i < n; i++) {
        hit |= ids[i] == id;
    }
    free(ids);
    return hit;
}

/* ================================================================ codec */

static nm_identity *
new_identity(void)
{
    nm_identity *id = NULL;
    cr_assert_eq(nm_identity_generate(&id), NM_OK);
    return id;
}

static char *
hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", p[i]);
    }
    return out;
}

Test(discovery_codec, build_wire_decode_verify)
{
    nm_identity *id = new_identity();
    nm_capset *caps = NULL;
    cr_assert_eq(nm_capset_new(&caps), NM_OK);
    cr_assert_eq(nm_capset_add_tag(caps, "hardware.gpu"), NM_OK);
    cr_assert_eq(nm_capset_add_tag(caps, "a-legacy"), NM_OK);
    cr_assert_eq(nm_capset_set_metadata(caps, "k", "v\"q"), NM_OK);
    nmi_ann a;
    cr_assert_eq(nmi_ann_build(id, 7, 123456789, 300, caps, &a), NM_OK);
    uint64_t nid = 0;
    uint8_t ent[32];
    char enthex[65];
    cr_assert_eq(nm_identity_node_id(id, &nid), NM_OK);
    cr_assert_eq(nm_identity_entity_id(id, ent), NM_OK);
    hex(ent, 32, enthex);

    char expect[1024];
    snprintf(expect, sizeof(expect),
             "{\"node_id\":%llu,\"entity_id\":\"%s\",\"version\":7,"
             "\"timestamp_ns\":123456789,\"ttl_secs\":300,\"capabilities\":"
             "{\"tags\":[\"a-legacy\",\"hardware.gpu\"],\"metadata\":{\"k\":"
             "\"v\\\"q\"}}}",
             (unsigned long long)nid, enthex);
    char *sb = NULL;
    size_t sl = 0;
    cr_assert_eq(nmi_ann_signed_bytes(&a, &sb, &sl), NM_OK);
    cr_assert_str_eq(sb, expect);
    cr_assert_eq(sl, strlen(expect));

    /* wire: the signature then hop_count after capabilities (serde order),
     * hop_count omitted when 0 */
    char sighex[129];
    hex(a.sig, 64, sighex);
    char *w0 = NULL, *w3 = NULL;
    size_t l0 = 0, l3 = 0;
    cr_assert_eq(nmi_ann_wire(&a, 0, &w0, &l0), NM_OK);
    cr_assert_eq(nmi_ann_wire(&a, 3, &w3, &l3), NM_OK);
    char exp0[1200], exp3[1200];
    snprintf(exp0, sizeof(exp0), "%.*s,\"signature\":\"%s\"}",
             (int)(strlen(expect) - 1), expect, sighex);
    snprintf(exp3, sizeof(exp3), "%.*s,\"signature\":\"%s\",\"hop_count\":3}",
             (int)(strlen(expect) - 1), expect, sighex);
    cr_assert_str_eq(w0, exp0);
    cr_assert_str_eq(w3, exp3);

    nmi_ann b;
    cr_assert_eq(nmi_ann_decode(w3, l3, &b), NM_OK, "%s", nm_errdetail());
    cr_assert_eq(b.node_id, nid);
    cr_assert_eq(b.version, 7);
    cr_assert_eq(b.timestamp_ns, 123456789);
    cr_assert_eq(b.ttl_secs, 300);
    cr_assert_eq(b.hop_count, 3);
    cr_assert(b.has_sig);
    cr_assert_eq(memcmp(b.entity_id, ent, 32), 0);
    cr_assert(nm_capset_has_tag(b.caps, "hardware.gpu"));
    cr_assert_eq(nmi_ann_verify(&b), NM_OK);
    char *w1 = NULL;
    size_t l1 = 0;
    cr_assert_eq(nmi_ann_wire(&b, 3, &w1, &l1), NM_OK);
    cr_assert_str_eq(w1, w3, "re-emission is byte-identical");

    /* any change to a signed byte breaks the signature */
    char *t = strdup(w0);
    char *g = strstr(t, "hardware.gpu");
    g[0] = 'H';
    nmi_ann c;
    cr_assert_eq(nmi_ann_decode(t, strlen(t), &c), NM_OK);
    cr_assert_eq(nmi_ann_verify(&c), NM_ECRYPTO);
    nmi_ann_clear(&c);
    free(t);

    free(sb);
    free(w0);
    free(w1);
    free(w3);
    nmi_ann_clear(&a);
    nmi_ann_clear(&b);
    nm_capset_free(caps);
    nm_identity_free(id);
}

/* The vector of PROTOCOL.md §9.1: seed 32 x 0x07, version 1, ttl 300. */
static const char VECTOR[] =
    "{\"node_id\":13103677501849256759,\"entity_id\":"
    "\"ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c\","
    "\"version\":1,\"timestamp_ns\":1700000000000000000,\"ttl_secs\":300,"
    "\"capabilities\":{\"tags\":[\"hardware.gpu\",\"hardware.gpu.vram_gb="
    "24\"],\"metadata\":{}},\"signature\":\"e27bd3192b2850aefdf2ff7faa9d84"
    "ab978cd9b5a2374d13bc8402df3dce5be2c853ec68a2b5f6a171442fbcfd5e521152ed"
    "194e826496dbcff4d6ad84231f03\",\"hop_count\":2}";

Test(discovery_codec, fixed_vector)
{
    uint8_t seed[32];
    memset(seed, 7, sizeof(seed));
    nm_identity *id = NULL;
    cr_assert_eq(nm_identity_from_seed(seed, &id), NM_OK);
    nm_capset *c = NULL;
    cr_assert_eq(nm_capset_new(&c), NM_OK);
    cr_assert_eq(nm_capset_add_tag(c, "hardware.gpu.vram_gb=24"), NM_OK);
    cr_assert_eq(nm_capset_add_tag(c, "hardware.gpu"), NM_OK);
    nmi_ann a;
    cr_assert_eq(
        nmi_ann_build(id, 1, UINT64_C(1700000000000000000), 300, c, &a),
        NM_OK);
    char *w = NULL;
    cr_assert_eq(nmi_ann_wire(&a, 2, &w, NULL), NM_OK);
    cr_assert_str_eq(w, VECTOR);
    nmi_ann b;
    cr_assert_eq(nmi_ann_decode(VECTOR, strlen(VECTOR), &b), NM_OK);
    cr_assert_eq(nmi_ann_verify(&b), NM_OK);
    uint64_t bound = 0;
    cr_assert_eq(nm_entity_node_id(b.entity_id, &bound), NM_OK);
    cr_assert_eq(bound, b.node_id);
    free(w);
    nmi_ann_clear(&a);
    nmi_ann_clear(&b);
    nm_capset_free(c);
    nm_identity_free(id);
}

Test(discovery_codec, unknown_fields_are_signed_and_kept)
{
    /* an upstream announcement with a reflex_addr after hop_count: the
     * signature covers it, forwarding keeps it in place */
    nm_identity *id = new_identity();
    uint64_t nid = 0;
    uint8_t ent[32];
    char enthex[65], sighex[129];
    cr_assert_eq(nm_identity_node_id(id, &nid), NM_OK);
    cr_assert_eq(nm_identity_entity_id(id, ent), NM_OK);
    hex(ent, 32, enthex);
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"node_id\":%llu,\"entity_id\":\"%s\",\"version\":1,"
             "\"timestamp_ns\":2,\"ttl_secs\":60,\"capabilities\":{\"tags\":"
             "[\"x\"],\"metadata\":{}},\"reflex_addr\":\"1.2.3.4:5\","
             "\"allowed_nodes\":[1,2]}",
             (unsigned long long)nid, enthex);
    uint8_t sig[64];
    cr_assert_eq(nm_identity_sign(id, body, strlen(body), sig), NM_OK);
    hex(sig, 64, sighex);
    const char *cut = strstr(body, ",\"reflex_addr\"");
    char wire[1400];
    snprintf(wire, sizeof(wire), "%.*s,\"signature\":\"%s\",\"hop_count\":2%s",
             (int)(cut - body), body, sighex, cut);
    nmi_ann a;
    cr_assert_eq(nmi_ann_decode(wire, strlen(wire), &a), NM_OK, "%s",
                 nm_errdetail());
    cr_assert_eq(nmi_ann_verify(&a), NM_OK);
    cr_assert_eq(a.ttl_secs, 60);
    char *w = NULL;
    cr_assert_eq(nmi_ann_wire(&a, 2, &w, NULL), NM_OK);
    cr_assert_str_eq(w, wire);
    free(w);
    nmi_ann_clear(&a);

    /* ttl_secs absent -> 300; signature null -> unsigned */
    const char *min = "{\"node_id\":1,\"entity_id\":\"00000000000000000000"
                      "000000000000000000000000000000000000000000AB\","
                      "\"version\":1,\"timestamp_ns\":0,\"capabilities\":{},"
                      "\"signature\":null}";
    cr_assert_eq(nmi_ann_decode(min, strlen(min), &a), NM_OK, "%s",
                 nm_errdetail());
    cr_assert_eq(a.ttl_secs, 300);
    cr_assert_not(a.has_sig);
    cr_assert_eq(a.entity_id[31], 0xAB);
    cr_assert_eq(nmi_ann_verify(&a), NM_ENOTFOUND);
    nmi_ann_clear(&a);
    nm_identity_free(id);
}

Test(discovery_codec, malformed_rejected)
{
    static const char *bad[] = {
        "",
        "[]",
        "{}",
        "{\"node_id\":1}",
        "{\"node_id\":1,\"entity_id\":\"00\",\"version\":1,"
        "\"timestamp_ns\":0,\"capabilities\":{}}",
        "{\"node_id\":-1,\"entity_id\":\"00000000000000000000000000000000"
        "00000000000000000000000000000000\",\"version\":1,\"timestamp_ns\":0,"
        "\"capabilities\":{}}",
        "{\"node_id\":1,\"node_id\":1,\"entity_id\":\"0000000000000000000000"
        "000000000000000000000000000000000000000000\",\"version\":1,"
        "\"timestamp_ns\":0,\"capabilities\":{}}",
        "{\"node_id\":1,\"entity_id\":\"00000000000000000000000000000000"
        "00000000000000000000000000000000\",\"version\":1,\"timestamp_ns\":0,"
        "\"capabilities\":{},\"hop_count\":256}",
        "{\"node_id\":1,\"entity_id\":\"00000000000000000000000000000000"
        "00000000000000000000000000000000\",\"version\":1,\"timestamp_ns\":0,"
        "\"capabilities\":{},\"signature\":\"abcd\"}",
        "{\"node_id\":1,\"entity_id\":\"00000000000000000000000000000000"
        "00000000000000000000000000000000\",\"version\":1,\"timestamp_ns\":0,"
        "\"capabilities\":{\"tags\":[\"\"]}}",
        "{\"node_id\":1,\"entity_id\":\"00000000000000000000000000000000"
        "00000000000000000000000000000000\",\"version\":1.5,"
        "\"timestamp_ns\":0,\"capabilities\":{}}",
        "{\"node_id\":1,\"entity_id\":\"0000000000000000000000000000000g"
        "00000000000000000000000000000000\",\"version\":1,\"timestamp_ns\":0,"
        "\"capabilities\":{}}",
        "{\"node_id\":1,\"entity_id\":\"00000000000000000000000000000000"
        "00000000000000000000000000000000\",\"version\":1,\"timestamp_ns\":0,"
        "\"capabilities\":[]}",
        "{\"node_id\":1,\"entity_id\":\"00000000000000000000000000000000"
        "00000000000000000000000000000000\",\"version\":1,\"timestamp_ns\":0,"
        "\"capabilities\":{}} x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nmi_ann a;
        int rc = nmi_ann_decode(bad[i], strlen(bad[i]), &a);
        cr_assert_eq(rc, NM_EDECODE, "case %zu: %d", i, rc);
        cr_assert_null(a.head);
        cr_assert_null(a.caps);
    }
}

/* ================================================================ mesh */

static void
small_cfg(nm_discovery_config *dc)
{
    nm_discovery_config_init(dc);
    dc->debounce_ms = 10;
    dc->min_announce_interval_ms = 1000;
}

Test(discovery, line_of_six_floods_once_and_finds_gpu, .init = setup)
{
    nm_discovery_config dc;
    small_cfg(&dc);
    tnode n[6];
    tnode *all[6];
    for (int i = 0; i < 6; i++) {
        all[i] = &n[i];
        mk(&n[i], (uint16_t)(i + 1), &dc);
    }
    for (int i = 0; i < 5; i++) {
        connect_direct(&n[i], &n[i + 1], all, 6);
    }
    pump(all, 6, 30);
    nm_capset *gpu = gpu_caps();
    cr_assert_eq(nm_discovery_announce(n[0].d, gpu), NM_OK);
    nm_capset_free(gpu);

    /* self-match at once, before any broadcast */
    nm_capfilter f = NM_CAPFILTER_INIT;
    f.require_gpu = true;
    f.min_vram_gb = 16;
    cr_assert(finds(&n[0], &f, n[0].id));
    cr_assert_not(finds(&n[5], &f, n[0].id));
    pump(all, 6, 60);

    for (int i = 1; i < 6; i++) {
        cr_assert_eq(seen_from(&n[i], n[0].id), 1, "node %d saw it %zu times",
                     i + 1, seen_from(&n[i], n[0].id));
        cr_assert_eq(n[i].s.hops[0], (uint32_t)(i - 1), "hops at node %d",
                     i + 1);
        cr_assert(finds(&n[i], &f, n[0].id), "node %d finds the GPU", i + 1);
        nm_discovery_stats st;
        nm_discovery_stats_get(n[i].d, &st);
        cr_assert_eq(st.accepted, 1);
        cr_assert_eq(st.duplicates, 0);
        cr_assert_eq(st.forwarded, i < 5 ? 1u : 0u);
    }
    nm_discovery_stats st0;
    nm_discovery_stats_get(n[0].d, &st0);
    cr_assert_eq(st0.broadcasts, 1);
    cr_assert_eq(st0.own, 0);

    /* the node 4 hops away: find_nodes, find_best_node, get */
    uint64_t *ids = NULL;
    size_t k = 0;
    cr_assert_eq(nm_discovery_find_nodes(n[4].d, &f, &ids, &k), NM_OK);
    cr_assert_eq(k, 1);
    cr_assert_eq(ids[0], n[0].id);
    free(ids);
    nm_capreq req;
    memset(&req, 0, sizeof(req));
    req.filter = f;
    uint64_t best = 0;
    cr_assert_eq(nm_discovery_find_best_node(n[4].d, &req, NULL, &best),
                 NM_OK);
    cr_assert_eq(best, n[0].id);
    nm_capset *got = NULL;
    uint64_t ver = 0;
    cr_assert_eq(nm_discovery_get(n[4].d, n[0].id, &got, &ver), NM_OK);
    cr_assert(nm_capset_has_tag(got, "hardware.gpu.vram_gb=24"));
    cr_assert_eq(ver, n[4].s.version[0]);
    nm_capset_free(got);
    cr_assert_eq(nm_discovery_count(n[4].d), 1);

    /* the announcement taught node 6 a route to node 1 through node 5 */
    uint64_t hop = 0;
    cr_assert_eq(nm_mesh_route(n[5].m, n[0].id, &hop, NULL), NM_OK);
    cr_assert_eq(hop, n[4].id);
    fini(all, 6);
}

Test(discovery, diamond_dedups, .init = setup)
{
    nm_discovery_config dc;
    small_cfg(&dc);
    tnode a, b, c, d;
    tnode *all[] = {&a, &b, &c, &d};
    mk(&a, 1, &dc);
    mk(&b, 2, &dc);
    mk(&c, 3, &dc);
    mk(&d, 4, &dc);
    connect_direct(&a, &b, all, 4);
    connect_direct(&a, &c, all, 4);
    connect_direct(&b, &d, all, 4);
    connect_direct(&c, &d, all, 4);
    pump(all, 4, 30);
    nm_capset *gpu = gpu_caps();
    cr_assert_eq(nm_discovery_announce(a.d, gpu), NM_OK);
    nm_capset_free(gpu);
    pump(all, 4, 60);
    cr_assert_eq(seen_from(&b, a.id), 1);
    cr_assert_eq(seen_from(&c, a.id), 1);
    cr_assert_eq(seen_from(&d, a.id), 1, "D accepted %zu copies",
                 seen_from(&d, a.id));
    cr_assert_eq(d.s.hops[0], 1);
    nm_discovery_stats st;
    nm_discovery_stats_get(d.d, &st);
    cr_assert_eq(st.received, 2, "two copies reached D");
    cr_assert_eq(st.duplicates, 1, "the second was a duplicate");
    nm_capfilter f = NM_CAPFILTER_INIT;
    f.require_gpu = true;
    cr_assert(finds(&d, &f, a.id));
    fini(all, 4);
}

Test(discovery, entry_expires_by_ttl_after_announcer_dies, .init = setup)
{
    nm_discovery_config dc;
    small_cfg(&dc);
    dc.ttl_secs = 1;        /* re-announce every 500 ms */
    dc.gc_interval_ms = 50; /* GC every 50 ms */
    tnode a, b, c;
    tnode *all[] = {&a, &b, &c};
    mk(&a, 1, &dc);
    mk(&b, 2, &dc);
    mk(&c, 3, &dc);
    connect_direct(&a, &b, all, 3);
    connect_direct(&b, &c, all, 3);
    nm_capset *gpu = gpu_caps();
    cr_assert_eq(nm_discovery_announce(a.d, gpu), NM_OK);
    nm_capset_free(gpu);
    nm_capfilter f = NM_CAPFILTER_INIT;
    f.require_gpu = true;
    pump(all, 3, 50);
    cr_assert(finds(&c, &f, a.id));
    /* alive: re-announcements (new versions) keep the entry for 3 TTLs */
    for (int i = 0; i < 30; i++) {
        pump(all, 3, 100);
        cr_assert(finds(&c, &f, a.id), "entry lost while alive (%d)", i);
    }
    cr_assert_geq(seen_from(&c, a.id), 5, "re-announced");
    /* the announcer dies */
    nm_discovery_close(a.d);
    a.d = NULL;
    nm_mesh_close(a.m);
    a.m = NULL;
    bool gone = false;
    for (int i = 0; i < 40 && !gone; i++) {
        pump(all, 3, 50);
        gone = !finds(&c, &f, a.id) && !finds(&b, &f, a.id);
    }
    cr_assert(gone, "the entry outlived its TTL");
    nm_discovery_stats st;
    nm_discovery_stats_get(c.d, &st);
    cr_assert_geq(st.expired, 1);
    cr_assert_eq(nm_discovery_count(c.d), 0);
    fini(all, 3);
}

Test(discovery, burst_is_coalesced_and_rate_limited, .init = setup)
{
    nm_discovery_config dc;
    nm_discovery_config_init(&dc);
    dc.min_announce_interval_ms = 2000;
    tnode a, b;
    tnode *all[] = {&a, &b};
    mk(&a, 1, &dc);
    mk(&b, 2, &dc);
    connect_direct(&a, &b, all, 2);
    pump(all, 2, 20);
    for (uint64_t i = 1; i <= 20; i++) {
        nm_capset *c = mem_caps(i);
        cr_assert_eq(nm_discovery_announce(a.d, c), NM_OK);
        nm_capset_free(c);
    }
    pump(all, 2, 200); /* > debounce (100 ms) */
    cr_assert_eq(seen_from(&b, a.id), 1, "a burst of 20 -> %zu",
                 seen_from(&b, a.id));
    nm_capset *got = NULL;
    cr_assert_eq(nm_discovery_get(b.d, a.id, &got, NULL), NM_OK);
    cr_assert(nm_capset_has_tag(got, "hardware.memory_gb=20"), "last set");
    nm_capset_free(got);

    /* inside the 2 s window: changes wait for the floor */
    for (uint64_t i = 30; i <= 32; i++) {
        nm_capset *c = mem_caps(i);
        cr_assert_eq(nm_discovery_announce(a.d, c), NM_OK);
        nm_capset_free(c);
        pump(all, 2, 300);
    }
    cr_assert_eq(seen_from(&b, a.id), 1, "rate limited");
    /* but the local index has the latest at once */
    cr_assert_eq(nm_discovery_get(a.d, a.id, &got, NULL), NM_OK);
    cr_assert(nm_capset_has_tag(got, "hardware.memory_gb=32"));
    nm_capset_free(got);
    pump(all, 2, 1200); /* past the floor */
    cr_assert_eq(seen_from(&b, a.id), 2);
    cr_assert_eq(nm_discovery_get(b.d, a.id, &got, NULL), NM_OK);
    cr_assert(nm_capset_has_tag(got, "hardware.memory_gb=32"));
    nm_capset_free(got);

    /* the setter resets the floor: the next change goes out after the
     * debounce alone */
    nm_capset *c = mem_caps(40);
    cr_assert_eq(nm_discovery_announce(a.d, c), NM_OK);
    nm_capset_free(c);
    pump(all, 2, 300);
    cr_assert_eq(seen_from(&b, a.id), 2);
    cr_assert_eq(nm_discovery_set_min_announce_interval(a.d, 5000), NM_OK);
    pump(all, 2, 150);
    cr_assert_eq(seen_from(&b, a.id), 3);
    nm_discovery_stats st;
    nm_discovery_stats_get(a.d, &st);
    cr_assert_eq(st.broadcasts, 3);
    fini(all, 2);
}

/* Send raw announcement JSON from a to b on 0x0C00. */
static void
inject(tnode *from, tnode *to, const char *json)
{
    const void *p = json;
    size_t l = strlen(json);
    cr_assert_eq(nmi_mesh_sp_send(from->m, to->id, NM_DISCOVERY_SUBPROTOCOL,
                                  NM_DISCOVERY_SUBPROTOCOL, &p, &l, 1),
                 NM_OK);
}

/* A signed announcement of `id` (optionally claiming another node id),
 * hop_count hops. */
static char *
make_ann(const nm_identity *id, uint64_t version, uint32_t hops,
         const uint64_t *claim_node)
{
    nm_capset *caps = gpu_caps();
    nmi_ann a;
    cr_assert_eq(nmi_ann_build(id, version, 1, 300, caps, &a), NM_OK);
    nm_capset_free(caps);
    if (claim_node != NULL) {
        /* rewrite node_id and sign again with the same key */
        char *rest = strchr(a.head, ',');
        char nh[2048];
        snprintf(nh, sizeof(nh), "{\"node_id\":%llu%s",
                 (unsigned long long)*claim_node, rest);
        free(a.head);
        a.head = strdup(nh);
        a.head_len = strlen(nh);
        char *msg = NULL;
        size_t ml = 0;
        cr_assert_eq(nmi_ann_signed_bytes(&a, &msg, &ml), NM_OK);
        cr_assert_eq(nm_identity_sign(id, msg, ml, a.sig), NM_OK);
        free(msg);
    }
    char *w = NULL;
    cr_assert_eq(nmi_ann_wire(&a, hops, &w, NULL), NM_OK);
    nmi_ann_clear(&a);
    return w;
}

Test(discovery, receive_checks_reject, .init = setup)
{
    nm_discovery_config dc;
    small_cfg(&dc);
    tnode a, b;
    tnode *all[] = {&a, &b};
    mk(&a, 1, &dc);
    mk(&b, 2, &dc);
    connect_direct(&a, &b, all, 2);
    pump(all, 2, 10);
    const nm_identity *ida = nmi_mesh_identity(a.m);
    nm_identity *other = new_identity();
    uint64_t other_id = 0;
    cr_assert_eq(nm_identity_node_id(other, &other_id), NM_OK);
    nm_discovery_stats st;

    /* forged signature */
    char *w = make_ann(ida, 10, 0, NULL);
    char *s = strstr(w, "\"signature\":\"") + 13;
    s[5] = s[5] == '0' ? '1' : '0';
    inject(&a, &b, w);
    free(w);
    /* tampered JSON (a signed byte changed) */
    w = make_ann(ida, 11, 0, NULL);
    s = strstr(w, "vram_gb=24");
    s[8] = '8';
    inject(&a, &b, w);
    free(w);
    pump(all, 2, 3);
    nm_discovery_stats_get(b.d, &st);
    cr_assert_eq(st.rejected_signature, 2);

    /* hop 0 from a session peer that is not the origin */
    w = make_ann(other, 12, 0, NULL);
    inject(&a, &b, w);
    free(w);
    pump(all, 2, 3);
    nm_discovery_stats_get(b.d, &st);
    cr_assert_eq(st.rejected_origin, 1);
    cr_assert_eq(seen_from(&b, other_id), 0);
    /* the same as a forward (hop 1) is fine */
    w = make_ann(other, 12, 1, NULL);
    inject(&a, &b, w);
    free(w);
    pump(all, 2, 3);
    cr_assert_eq(seen_from(&b, other_id), 1);

    /* a node id that is not the entity's (validly signed by it) */
    uint64_t fake = a.id ^ 1;
    w = make_ann(ida, 13, 1, &fake);
    inject(&a, &b, w);
    free(w);
    /* unsigned */
    w = make_ann(ida, 14, 0, NULL);
    s = strstr(w, ",\"signature\"");
    memcpy(s, "}", 2);
    inject(&a, &b, w);
    free(w);
    /* too many hops, malformed */
    w = make_ann(ida, 15, 16, NULL);
    inject(&a, &b, w);
    free(w);
    inject(&a, &b, "{\"node_id\":");
    pump(all, 2, 3);
    nm_discovery_stats_get(b.d, &st);
    cr_assert_eq(st.rejected_binding, 1);
    cr_assert_eq(st.rejected_unsigned, 1);
    cr_assert_eq(st.rejected_hops, 1);
    cr_assert_eq(st.rejected_decode, 1);
    cr_assert_eq(seen_from(&b, a.id), 0, "nothing of A's was accepted");

    /* a valid one is accepted; replaying it is a duplicate */
    w = make_ann(ida, 20, 0, NULL);
    inject(&a, &b, w);
    inject(&a, &b, w);
    pump(all, 2, 3);
    cr_assert_eq(seen_from(&b, a.id), 1);
    nm_discovery_stats_get(b.d, &st);
    cr_assert_eq(st.duplicates, 1);
    /* an older version afterwards is a duplicate too */
    char *old = make_ann(ida, 19, 0, NULL);
    inject(&a, &b, old);
    free(old);
    free(w);
    pump(all, 2, 3);
    nm_discovery_stats_get(b.d, &st);
    cr_assert_eq(st.duplicates, 2);
    cr_assert_eq(st.accepted, 2);

    /* our own announcement coming back is dropped */
    w = make_ann(nmi_mesh_identity(b.m), 5, 1, NULL);
    inject(&a, &b, w);
    free(w);
    pump(all, 2, 3);
    nm_discovery_stats_get(b.d, &st);
    cr_assert_eq(st.own, 1);
    nm_identity_free(other);
    fini(all, 2);
}

Test(discovery, unsigned_accepted_when_not_required, .init = setup)
{
    nm_discovery_config dc;
    small_cfg(&dc);
    dc.require_signed = false;
    tnode a, b;
    tnode *all[] = {&a, &b};
    mk(&a, 1, &dc);
    mk(&b, 2, &dc);
    connect_direct(&a, &b, all, 2);
    char *w = make_ann(nmi_mesh_identity(a.m), 3, 0, NULL);
    char *s = strstr(w, ",\"signature\"");
    memcpy(s, "}", 2);
    inject(&a, &b, w);
    free(w);
    pump(all, 2, 3);
    cr_assert_eq(seen_from(&b, a.id), 1);
    fini(all, 2);
}

Test(discovery, tofu_rebinding_rejected, .init = setup)
{
    nm_discovery_config dc;
    small_cfg(&dc);
    tnode a, b, c;
    tnode *all[] = {&a, &b, &c};
    mk(&a, 1, &dc);
    mk(&b, 2, &dc);
    mk(&c, 3, &dc);
    /* B first bound A's node id to another key (the state a node is in
     * when an impostor with a colliding id announced first) */
    nm_identity *other = new_identity();
    uint8_t ent[32];
    cr_assert_eq(nm_identity_entity_id(other, ent), NM_OK);
    cr_assert_eq(nmi_discovery_pin(b.d, a.id, ent), NM_OK);
    cr_assert_eq(nmi_discovery_pin(b.d, a.id, ent), NM_EEXIST);
    connect_direct(&a, &b, all, 3);
    connect_direct(&c, &b, all, 3);
    nm_capset *gpu = gpu_caps();
    cr_assert_eq(nm_discovery_announce(a.d, gpu), NM_OK);
    cr_assert_eq(nm_discovery_announce(c.d, gpu), NM_OK);
    nm_capset_free(gpu);
    pump(all, 3, 50);
    nm_discovery_stats st;
    nm_discovery_stats_get(b.d, &st);
    cr_assert_eq(st.rejected_tofu, 1);
    cr_assert_eq(seen_from(&b, a.id), 0);
    cr_assert_eq(seen_from(&b, c.id), 1, "C's own key is bound on first use");
    /* and once bound, C's id cannot be pinned to a new key */
    cr_assert_eq(nmi_discovery_pin(b.d, c.id, ent), NM_EEXIST);
    nm_identity_free(other);
    fini(all, 3);
}

Test(discovery, late_joiner_gets_sync_and_scoped_queries, .init = setup)
{
    nm_discovery_config dc;
    small_cfg(&dc);
    tnode a, b, c;
    tnode *all[] = {&a, &b, &c};
    mk(&a, 1, &dc);
    mk(&b, 2, &dc);
    mk(&c, 3, &dc);
    connect_direct(&a, &b, all, 3);
    nm_capset *ta = gpu_caps();
    cr_assert_eq(nm_capset_set_tenant_scope(ta, "oem-123"), NM_OK);
    cr_assert_eq(nm_discovery_announce(a.d, ta), NM_OK);
    nm_capset_free(ta);
    nm_capset *gb = gpu_caps();
    cr_assert_eq(nm_discovery_announce(b.d, gb), NM_OK);
    nm_capset_free(gb);
    pump(all, 3, 50);
    cr_assert_eq(seen_from(&b, a.id), 1);
    /* C joins after the broadcasts: B pushes its own and A's at once */
    connect_direct(&c, &b, all, 3);
    pump(all, 3, 5);
    cr_assert_eq(seen_from(&c, b.id), 1);
    cr_assert_eq(seen_from(&c, a.id), 1, "synced on connect");
    for (size_t i = 0; i < c.s.n; i++) {
        cr_assert_eq(c.s.hops[i], c.s.from[i] == a.id ? 1u : 0u);
    }

    nm_capfilter f = NM_CAPFILTER_INIT;
    f.require_gpu = true;
    uint64_t *ids = NULL;
    size_t n = 0;
    const char *other[] = {"other"};
    nm_scope_filter sc = {
        .kind = NM_SCOPE_TENANTS, .labels = other, .n_labels = 1};
    cr_assert_eq(nm_discovery_find_nodes_scoped(c.d, &f, &sc, &ids, &n),
                 NM_OK);
    cr_assert_eq(n, 1, "only the global GPU node");
    cr_assert_eq(ids[0], b.id);
    free(ids);
    const char *oem[] = {"oem-123"};
    sc.labels = oem;
    cr_assert_eq(nm_discovery_find_nodes_scoped(c.d, &f, &sc, &ids, &n),
                 NM_OK);
    cr_assert_eq(n, 2);
    free(ids);
    fini(all, 3);
}

Test(discovery, api_errors)
{
    nm_discovery_config dc;
    nm_discovery_config_init(&dc);
    cr_assert_eq(dc.ttl_secs, 300);
    cr_assert_eq(dc.min_announce_interval_ms, 10000);
    cr_assert_eq(dc.gc_interval_ms, 60000);
    cr_assert_eq(dc.max_hops, 16);
    cr_assert(dc.require_signed);
    nm_discovery *d = NULL;
    cr_assert_eq(nm_discovery_open(NULL, &dc, &d), NM_EINVAL);
    cr_assert_eq(nm_discovery_announce(NULL, NULL), NM_EINVAL);
    cr_assert_eq(nm_discovery_set_min_announce_interval(NULL, 1), NM_EINVAL);
    cr_assert_eq(nm_discovery_count(NULL), 0);
    nm_discovery_close(NULL);

    cr_assert_eq(nmi_loop_hub_new(&hub), NM_OK);
    tnode a;
    mk(&a, 1, NULL);
    /* one discovery per node */
    cr_assert_eq(nm_discovery_open(a.m, NULL, &d), NM_EEXIST);
    dc.max_hops = 17;
    nm_discovery_close(a.d);
    cr_assert_eq(nm_discovery_open(a.m, &dc, &d), NM_EINVAL);
    dc.max_hops = 16;
    dc.ttl_secs = 0;
    cr_assert_eq(nm_discovery_open(a.m, &dc, &d), NM_EINVAL);
    /* reattach after close works */
    cr_assert_eq(nm_discovery_open(a.m, NULL, &a.d), NM_OK);
    /* an announcement larger than one event */
    nm_capset *big = NULL;
    cr_assert_eq(nm_capset_new(&big), NM_OK);
    char v[9000];
    memset(v, 'x', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    cr_assert_eq(nm_capset_set_metadata(big, "k", v), NM_OK);
    cr_assert_eq(nm_discovery_announce(a.d, big), NM_ETOOBIG);
    nm_capset_free(big);
    tnode *all[] = {&a};
    fini(all, 1);
}

/* ================================================================ UDP */

static bool
wait_find(nm_discovery *d, const nm_capfilter *f, uint64_t id, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        uint64_t *ids = NULL;
        size_t n = 0;
        cr_assert_eq(nm_discovery_find_nodes(d, f, &ids, &n), NM_OK);
        bool hit = false;
        for (size_t k = 0; k < n; k++) {
            hit |= ids[k] == id;
        }
        free(ids);
        if (hit) {
            return true;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

Test(discovery_udp, three_threaded_nodes, .timeout = 60)
{
    nm_mesh_t *m[3];
    nm_discovery *d[3];
    uint8_t pub[3][32];
    char addr[3][64];
    uint64_t id[3];
    nm_discovery_config dc;
    nm_discovery_config_init(&dc);
    dc.debounce_ms = 10;
    for (int i = 0; i < 3; i++) {
        nm_mesh_config cfg;
        nm_mesh_config_init(&cfg);
        memcpy(cfg.psk, PSK, 32);
        cfg.psk_set = true;
        cfg.heartbeat_ms = 100;
        cfg.session_timeout_ms = 1000;
        cr_assert_eq(nm_mesh_open(&cfg, &m[i]), NM_OK, "%s", nm_errdetail());
        nm_mesh_static_pubkey(m[i], pub[i]);
        cr_assert_eq(nm_mesh_local_addr(m[i], addr[i], sizeof(addr[i])),
                     NM_OK);
        id[i] = nm_mesh_node_id(m[i]);
        cr_assert_eq(nm_discovery_open(m[i], &dc, &d[i]), NM_OK);
    }
    /* A announces before it has any peer; C joins B after A did */
    nm_capset *gpu = gpu_caps();
    cr_assert_eq(nm_discovery_announce(d[0], gpu), NM_OK);
    nm_capset_free(gpu);
    cr_assert_eq(nm_mesh_accept(m[1], id[0]), NM_OK);
    cr_assert_eq(nm_mesh_accept(m[1], id[2]), NM_OK);
    cr_assert_eq(nm_mesh_connect(m[0], addr[1], pub[1], id[1], 5000), NM_OK,
                 "%s", nm_errdetail());
    nm_capfilter f = NM_CAPFILTER_INIT;
    f.require_gpu = true;
    cr_assert(wait_find(d[1], &f, id[0], 10000), "B learns A");
    cr_assert_eq(nm_mesh_connect(m[2], addr[1], pub[1], id[1], 5000), NM_OK,
                 "%s", nm_errdetail());
    cr_assert(wait_find(d[2], &f, id[0], 10000), "C learns A through B");
    /* a change reaches both (after the debounce; the rate limit floor is
     * reset so the test does not wait 10 s) */
    cr_assert_eq(nm_discovery_set_min_announce_interval(d[0], 0), NM_OK);
    nm_capset *c2 = mem_caps(512);
    cr_assert_eq(nm_discovery_announce(d[0], c2), NM_OK);
    nm_capset_free(c2);
    nm_capfilter fm = NM_CAPFILTER_INIT;
    fm.min_memory_gb = 512;
    cr_assert(wait_find(d[2], &fm, id[0], 10000), "C sees the change");
    cr_assert_not(wait_find(d[2], &f, id[0], 10), "the GPU is gone");
    for (int i = 0; i < 3; i++) {
        nm_discovery_close(d[i]);
    }
    for (int i = 0; i < 3; i++) {
        nm_mesh_close(m[i]);
    }
}
