/* bench/bench_crypto_primitives.c - placeholder until the crypto work lands. */
#include "bench.h"

#include <stdio.h>

int
nmb_group_crypto_primitives(const nmb_opts *o)
{
    (void)o;
    fprintf(stderr, "bench crypto (primitives): not built yet\n");
    return 0;
}
