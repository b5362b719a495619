/* bench/bench_crypto_session.c - placeholder until the crypto work lands. */
#include "bench.h"

#include <stdio.h>

int
nmb_group_crypto_session(const nmb_opts *o)
{
    (void)o;
    fprintf(stderr, "bench crypto (session): not built yet\n");
    return 0;
}
