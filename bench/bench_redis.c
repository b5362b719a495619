/* bench/bench_redis.c - placeholder until the redis adapter lands. */
#include "bench.h"

#include <stdio.h>

int
nmb_group_redis(const nmb_opts *o)
{
    (void)o;
    fprintf(stderr, "bench redis: not built yet\n");
    return 0;
}
