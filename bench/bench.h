/*
 * bench/bench.h - the tiny benchmark harness behind `netmesh bench`.
 *
 * Every figure is printed as one line. With --json the line is
 *   {"bench":"<name>","value":<v>,"unit":"<u>","baseline":"<anchor>",
 *    "baseline_value":<b>,"ratio":<v/b>}
 * (baseline fields omitted for figures that have no anchor). Each figure
 * is the median of `runs` repetitions; the anchor is measured in the same
 * process, interleaved with the figure, so machine noise hits both.
 */
#ifndef NM_BENCH_H
#define NM_BENCH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct nmb_opts {
    bool json;
    const char *url; /* --url: an existing server for redis/jetstream */
    int runs;        /* repetitions per figure; the median is reported */
    double scale;    /* multiplies iteration counts (0.1 for a smoke run) */
} nmb_opts;

/* Print one figure. baseline may be NULL (no anchor). */
void nmb_report(const nmb_opts *o, const char *name, double value,
                const char *unit, const char *baseline, double baseline_value);

/* Median of n doubles (sorts v in place). */
double nmb_median(double *v, int n);

/* Monotonic nanoseconds. */
uint64_t nmb_now_ns(void);

/* Scaled iteration count, at least 1. */
uint64_t nmb_iters(const nmb_opts *o, uint64_t base);

/* Keep the compiler from optimising a value away. */
#define NMB_SINK(x) __asm__ __volatile__("" : : "r"(x) : "memory")

/* Benchmark groups. Each returns 0 on success. */
int nmb_group_bus(const nmb_opts *o);
int nmb_group_crypto_primitives(const nmb_opts *o); /* blake2s, tokens */
int nmb_group_crypto_session(const nmb_opts *o);    /* aead, noise */
int nmb_group_redis(const nmb_opts *o);
int nmb_group_jetstream(const nmb_opts *o);
int nmb_group_redex(const nmb_opts *o);
int nmb_group_caps(const nmb_opts *o);
int nmb_group_cortex(const nmb_opts *o);
int nmb_group_mesh_base(const nmb_opts *o); /* the mesh anchors alone */
int nmb_group_mesh(const nmb_opts *o);      /* the mesh node */
int nmb_group_channels(const nmb_opts *o);  /* channels over the mesh */

#endif
