/* bench/bench_jetstream.c - placeholder until the jetstream adapter lands. */
#include "bench.h"

#include <stdio.h>

int
nmb_group_jetstream(const nmb_opts *o)
{
    (void)o;
    fprintf(stderr, "bench jetstream: not built yet\n");
    return 0;
}
