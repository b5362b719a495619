/* tests/fuzz/fuzz_record.c - the stored-event record decoder (bytes from
 * Redis / JetStream) and the JSON scanner under it. Invariants: never
 * crash; a decoded record re-encodes to a record that decodes to the same
 * raw bytes, timestamp and shard. */
#include <stdlib.h>
#include <string.h>

#include "adapters/record.h"
#include "core/json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)nmi_json_valid(data, size);
    nmi_record r;
    if (nmi_record_decode((const char *)data, size, &r) != 0) {
        return 0;
    }
    if (!r.owned && (r.raw < data || r.raw + r.raw_len > data + size)) {
        abort(); /* raw must point inside the input */
    }
    if (r.raw_len > 0) {
        nmi_buf b = {0};
        if (nmi_record_encode(&b, r.raw, r.raw_len, r.ts, r.shard) == 0) {
            nmi_record r2;
            if (nmi_record_decode(b.p, b.len, &r2) != 0 ||
                r2.raw_len != r.raw_len ||
                memcmp(r2.raw, r.raw, r.raw_len) != 0 || r2.ts != r.ts ||
                r2.shard != r.shard) {
                abort();
            }
            nmi_record_fini(&r2);
        }
        nmi_buf_free(&b);
    }
    nmi_record_fini(&r);
    return 0;
}
