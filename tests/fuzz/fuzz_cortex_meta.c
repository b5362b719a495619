/* tests/fuzz/fuzz_cortex_meta.c - the 24-byte EventMeta codec and the
 * checksum verifier CortEX folds run on every event.
 *
 * Input: a whole CortEX payload (meta + tail).
 *
 * Invariants: never crash; decode of >= 24 bytes succeeds and re-encodes
 * to the same bytes with the pad zeroed; shorter input is NM_EDECODE;
 * verify succeeds exactly when the checksum field equals the v2 or the
 * legacy checksum, and re-sealing with v2 always verifies. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>

#include "cortex/cortex_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nm_cortex_meta m;
    int rc = nm_cortex_meta_decode(data, size, &m);
    if (size < NM_CORTEX_META_SIZE) {
        if (rc != NM_EDECODE) {
            abort();
        }
        if (nm_cortex_event_verify(data, size, &m) != NM_EDECODE) {
            abort();
        }
        return 0;
    }
    if (rc != NM_OK) {
        abort();
    }
    uint8_t back[NM_CORTEX_META_SIZE];
    nm_cortex_meta_encode(&m, back);
    uint8_t want[NM_CORTEX_META_SIZE];
    memcpy(want, data, sizeof(want));
    want[2] = want[3] = 0;
    if (memcmp(back, want, sizeof(want)) != 0) {
        abort();
    }
    const uint8_t *tail = data + NM_CORTEX_META_SIZE;
    size_t tl = size - NM_CORTEX_META_SIZE;
    uint32_t v2 = nm_cortex_checksum(&m, tail, tl);
    uint32_t v1 = nm_cortex_checksum_legacy(tail, tl);
    nm_cortex_meta out;
    rc = nm_cortex_event_verify(data, size, &out);
    bool ok = m.checksum == v2 || m.checksum == v1;
    if ((rc == NM_OK) != ok || (rc != NM_OK && rc != NM_EDECODE)) {
        abort();
    }
    uint8_t *sealed = malloc(size);
    if (!sealed) {
        return 0;
    }
    memcpy(sealed, data, size);
    m.checksum = v2;
    nm_cortex_meta_encode(&m, sealed);
    if (nm_cortex_event_verify(sealed, size, &out) != NM_OK) {
        abort();
    }
    free(sealed);
    return 0;
}
