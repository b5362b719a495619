/* tests/fuzz/fuzz_cursor.c - the poll cursor decoder (an opaque string
 * applications pass back). Invariants: never crash; a decoded cursor
 * re-encodes and decodes to the same per-shard ids. */
#include <stdlib.h>
#include <string.h>

#include "bus/bus_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { SHARDS = 8 };
    char *s = malloc(size + 1);
    if (!s) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    char ids[SHARDS][NMI_ID_MAX];
    memset(ids, 0, sizeof(ids));
    if (nmi_cursor_decode(s, SHARDS, ids) == 0) {
        char *enc = nmi_cursor_encode(SHARDS, ids);
        char ids2[SHARDS][NMI_ID_MAX];
        memset(ids2, 0, sizeof(ids2));
        if (!enc || nmi_cursor_decode(enc, SHARDS, ids2) != 0 ||
            memcmp(ids, ids2, sizeof(ids)) != 0) {
            abort();
        }
        free(enc);
    }
    free(s);
    return 0;
}
