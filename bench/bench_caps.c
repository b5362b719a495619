/*
 * bench/bench_caps.c - `netmesh bench caps`: the pure capability figures
 * (no network).
 *
 *   caps.filter_match_single_tag  ns per nm_capfilter_matches of a filter
 *                                 requiring one tag against a 20-tag set
 *                                 (upstream: 57 ns).
 *   caps.query_selective_5k       us per nm_capindex_find of a tag held by
 *   caps.query_selective_50k      5 nodes, with 5,000 / 50,000 nodes
 *                                 indexed (upstream ~2 us, flat: the two
 *                                 figures should be about equal).
 *   caps.query_broad_50k          us per nm_capindex_find(require_gpu) over
 *                                 50,000 nodes, half of which match (the
 *                                 cost of producing 25,000 sorted ids).
 *   caps.predicate_eval           ns per nm_pred_eval_capset of a 4-clause
 *                                 And against a 20-tag set.
 *
 * No anchor is measured: upstream's numbers come from its own benchmarks
 * on other hardware and are quoted here for orientation only. Each figure
 * is the median of o->runs repetitions.
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh.h>
#include <netmesh/caps.h>
#include <netmesh/predicate.h>

/* A realistic 20-tag set for node i (shard:<i/5> is shared by 5 nodes). */
static int
node_set(uint64_t i, nm_capset **out)
{
    nm_capset *s;
    int rc = nm_capset_new(&s);
    if (rc != NM_OK) {
        return rc;
    }
    char buf[96];
    nm_hardware hw = {0};
    hw.cpu_cores = 8 + i % 56;
    hw.cpu_threads = hw.cpu_cores * 2;
    hw.memory_gb = 16u << (i % 5);
    hw.has_gpu = i % 2 == 0;
    hw.gpu.vendor = i % 4 == 0 ? NM_GPU_NVIDIA : NM_GPU_AMD;
    hw.gpu.model = i % 4 == 0 ? "H100" : "MI300";
    hw.gpu.vram_gb = 24 + (i % 3) * 28;
    hw.storage_gb = 1000;
    hw.network_gbps = 100;
    nm_named_version rt[] = {{"python", "3.11.5"}, {"node", "20.1.0"}};
    nm_software sw = {"linux", "6.6", rt, 2, NULL, 0, "12.4", NULL, 0};
    nm_model m = {"llama-3.1-70b",
                  "llama",
                  700,
                  131072,
                  "q4",
                  NM_MODALITY_TEXT | NM_MODALITY_CODE,
                  40,
                  true};
    if ((rc = nm_capset_set_hardware(s, &hw)) != NM_OK ||
        (rc = nm_capset_set_software(s, &sw)) != NM_OK ||
        (rc = nm_capset_set_models(s, &m, 1)) != NM_OK) {
        nm_capset_free(s);
        return rc;
    }
    snprintf(buf, sizeof(buf), "shard:%llu", (unsigned long long)(i / 5));
    if ((rc = nm_capset_add_tag(s, buf)) < 0 ||
        (rc = nm_capset_add_tag(s, "relay-capable")) < 0 ||
        (rc = nm_capset_set_region_scope(s, i % 3 ? "eu" : "us")) != NM_OK) {
        nm_capset_free(s);
        return rc;
    }
    nm_capset_set_metadata(s, "intent", "ml-training");
    *out = s;
    return NM_OK;
}

static int
bench_filter(const nmb_opts *o)
{
    nm_capset *s;
    if (node_set(42, &s) != NM_OK) {
        return 1;
    }
    const char *tags[] = {"software.os=linux"};
    nm_capfilter f = NM_CAPFILTER_INIT;
    f.require_tags = tags;
    f.n_require_tags = 1;
    uint64_t iters = nmb_iters(o, 2000000);
    double *v = calloc((size_t)o->runs, sizeof(double));
    int bad = 0;
    for (int r = 0; v && r < o->runs; r++) {
        uint64_t t0 = nmb_now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            bool m = nm_capfilter_matches(&f, s);
            bad |= !m;
            NMB_SINK(m);
        }
        v[r] = (double)(nmb_now_ns() - t0) / (double)iters;
    }
    if (v && !bad) {
        nmb_report(o, "caps.filter_match_single_tag", nmb_median(v, o->runs),
                   "ns", NULL, 0);
    }
    free(v);
    nm_capset_free(s);
    return v && !bad ? 0 : 1;
}

static int
bench_predicate(const nmb_opts *o)
{
    nm_capset *s;
    if (node_set(40, &s) != NM_OK) {
        return 1;
    }
    const char *wire =
        "{\"nodes\":[{\"kind\":\"exists\",\"key\":{\"axis\":\"hardware\","
        "\"key\":\"gpu\"}},{\"kind\":\"numeric_at_least\",\"key\":{\"axis\":"
        "\"hardware\",\"key\":\"memory_gb\"},\"threshold\":16.0},{\"kind\":"
        "\"metadata_equals\",\"key\":\"intent\",\"value\":\"ml-training\"},"
        "{\"kind\":\"semver_at_least\",\"key\":{\"axis\":\"software\",\"key\":"
        "\"runtime.python\"},\"version\":\"3.10.0\"},{\"kind\":\"and\","
        "\"children\":[0,1,2,3]}],\"root_idx\":4}";
    nm_pred *p;
    if (nm_pred_from_wire_json(wire, strlen(wire), &p) != NM_OK) {
        nm_capset_free(s);
        return 1;
    }
    uint64_t iters = nmb_iters(o, 1000000);
    double *v = calloc((size_t)o->runs, sizeof(double));
    int bad = 0;
    for (int r = 0; v && r < o->runs; r++) {
        uint64_t t0 = nmb_now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            int m = nm_pred_eval_capset(p, s);
            bad |= m != 1;
            NMB_SINK(m);
        }
        v[r] = (double)(nmb_now_ns() - t0) / (double)iters;
    }
    if (v && !bad) {
        nmb_report(o, "caps.predicate_eval", nmb_median(v, o->runs), "ns",
                   NULL, 0);
    }
    free(v);
    nm_pred_free(p);
    nm_capset_free(s);
    return v && !bad ? 0 : 1;
}

static nm_capindex *
build_index(uint64_t n)
{
    nm_capindex *x;
    if (nm_capindex_new(&x) != NM_OK) {
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++) {
        nm_capset *s;
        if (node_set(i, &s) != NM_OK ||
            nm_capindex_put(x, 1000 + i * 3, s, 1, 0) != NM_OK) {
            nm_capindex_free(x);
            return NULL;
        }
        nm_capset_free(s);
    }
    return x;
}

/* us per query; `want` results expected (0 = do not check). */
static int
time_query(const nmb_opts *o, const nm_capindex *x, const nm_capfilter *f,
           uint64_t base_iters, size_t want, double *out)
{
    uint64_t iters = nmb_iters(o, base_iters);
    double *v = calloc((size_t)o->runs, sizeof(double));
    if (v == NULL) {
        return 1;
    }
    int bad = 0;
    for (int r = 0; r < o->runs; r++) {
        uint64_t t0 = nmb_now_ns();
        for (uint64_t i = 0; i < iters; i++) {
            uint64_t *ids;
            size_t n;
            bad |= nm_capindex_find(x, f, &ids, &n) != NM_OK ||
                   (want && n != want);
            free(ids);
        }
        v[r] = (double)(nmb_now_ns() - t0) / (double)iters / 1000.0;
    }
    *out = nmb_median(v, o->runs);
    free(v);
    return bad;
}

static int
bench_queries(const nmb_opts *o)
{
    const char *tags[] = {"shard:123"};
    nm_capfilter sel = NM_CAPFILTER_INIT;
    sel.require_tags = tags;
    sel.n_require_tags = 1;
    nm_capfilter broad = NM_CAPFILTER_INIT;
    broad.require_gpu = true;
    double us;
    int bad = 0;

    nm_capindex *x = build_index(5000);
    if (x == NULL) {
        fprintf(stderr, "bench caps: building the 5k index failed\n");
        return 1;
    }
    if (time_query(o, x, &sel, 200000, 5, &us) == 0) {
        nmb_report(o, "caps.query_selective_5k", us, "us", NULL, 0);
    } else {
        bad = 1;
    }
    nm_capindex_free(x);

    x = build_index(50000);
    if (x == NULL) {
        fprintf(stderr, "bench caps: building the 50k index failed\n");
        return 1;
    }
    if (time_query(o, x, &sel, 200000, 5, &us) == 0) {
        nmb_report(o, "caps.query_selective_50k", us, "us", NULL, 0);
    } else {
        bad = 1;
    }
    if (time_query(o, x, &broad, 100, 25000, &us) == 0) {
        nmb_report(o, "caps.query_broad_50k", us, "us", NULL, 0);
    } else {
        bad = 1;
    }
    nm_capindex_free(x);
    if (bad) {
        fprintf(stderr, "bench caps: a query returned a wrong count\n");
    }
    return bad;
}

int
nmb_group_caps(const nmb_opts *o)
{
    int rc = 0;
    rc |= bench_filter(o);
    rc |= bench_predicate(o);
    rc |= bench_queries(o);
    return rc;
}
