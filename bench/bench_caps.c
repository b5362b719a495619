/* bench/bench_caps.c - placeholder until the capabilities work lands. */
#include "bench.h"

#include <stdio.h>

int
nmb_group_caps(const nmb_opts *o)
{
    (void)o;
    fprintf(stderr, "bench caps: not built yet\n");
    return 0;
}
