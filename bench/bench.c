/* bench/bench.c - reporting helpers shared by every benchmark group. */
#define _GNU_SOURCE
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t
nmb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double
nmb_median(double *v, int n)
{
    if (n <= 0) {
        return 0;
    }
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

uint64_t
nmb_iters(const nmb_opts *o, uint64_t base)
{
    double n = (double)base * (o->scale > 0 ? o->scale : 1.0);
    return n < 1 ? 1 : (uint64_t)n;
}

void
nmb_report(const nmb_opts *o, const char *name, double value, const char *unit,
           const char *baseline, double baseline_value)
{
    if (o->json) {
        if (baseline) {
            printf("{\"bench\":\"%s\",\"value\":%.6g,\"unit\":\"%s\","
                   "\"baseline\":\"%s\",\"baseline_value\":%.6g,"
                   "\"ratio\":%.4g}\n",
                   name, value, unit, baseline, baseline_value,
                   baseline_value != 0 ? value / baseline_value : 0.0);
        } else {
            printf("{\"bench\":\"%s\",\"value\":%.6g,\"unit\":\"%s\"}\n", name,
                   value, unit);
        }
    } else if (baseline) {
        printf("%-32s %14.6g %-10s vs %-28s %14.6g  ratio %.3f\n", name, value,
               unit, baseline, baseline_value,
               baseline_value != 0 ? value / baseline_value : 0.0);
    } else {
        printf("%-32s %14.6g %s\n", name, value, unit);
    }
    fflush(stdout);
}
