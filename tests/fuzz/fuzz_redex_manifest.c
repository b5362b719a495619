/* tests/fuzz/fuzz_redex_manifest.c - the 16-byte REDM manifest decoder and
 * the generation directory name parser. Invariants: never crash; a
 * manifest that decodes re-encodes to exactly the input; a parsed
 * generation name prints back to the input. */
#include <stdlib.h>
#include <string.h>

#include "redex/redex_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t gen = 0;
    if (nmi_rx_manifest_decode(data, size, &gen) == NM_OK) {
        uint8_t back[NMI_RX_MANIFEST];
        nmi_rx_manifest_encode(gen, back);
        if (gen == 0 || size != NMI_RX_MANIFEST ||
            memcmp(back, data, NMI_RX_MANIFEST) != 0) {
            abort();
        }
    }
    char name[32];
    size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
    memcpy(name, data, n);
    name[n] = '\0';
    if (nmi_rx_gen_parse(name, &gen)) {
        char back[16];
        nmi_rx_gen_name(gen, back);
        if (strcmp(back, name) != 0) {
            abort();
        }
    }
    return 0;
}
