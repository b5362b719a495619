/* bench/bench_redex.c - placeholder until the RedEX work lands. */
#include "bench.h"

#include <stdio.h>

int
nmb_group_redex(const nmb_opts *o)
{
    (void)o;
    fprintf(stderr, "bench redex: not built yet\n");
    return 0;
}
