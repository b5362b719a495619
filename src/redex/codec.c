/*
 * src/redex/codec.c - the byte layouts of RedEX (docs/storage.md):
 *
 *   index record, 20 bytes LE:
 *     [0..8)   seq u64
 *     [8..12)  payload_offset u32   (inline: payload bytes 0..4)
 *     [12..16) payload_len u32      (inline: payload bytes 4..8)
 *     [16..20) flags_and_checksum u32: flags top nibble, checksum =
 *              xxh3_64(payload) & 0x0FFFFFFF in the low 28 bits
 *     (its encoder and decoder are inline in redex_impl.h: the append
 *     and tail paths run them per record)
 *
 *   manifest, 16 bytes:
 *     [0..4) "REDM" | [4] version 1 | [5..9) generation u32 LE (>= 1) |
 *     [9..12) zero | [12..16) (u32) xxh3_64(bytes[0..12]) LE
 */
#include "redex/redex_impl.h"

#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#define XXH_INLINE_ALL
#include <xxhash.h>
#pragma GCC diagnostic pop

uint32_t
nmi_rx_checksum(const void *p, size_t n)
{
    return (uint32_t)XXH3_64bits(p, n) & NMI_RX_CKSUM_MASK;
}

void
nmi_rx_rec_inline(const nmi_rx_rec *r, uint8_t out[8])
{
    nmi_store_le32(out, r->off);
    nmi_store_le32(out + 4, r->len);
}

void
nmi_rx_manifest_encode(uint32_t gen, uint8_t out[NMI_RX_MANIFEST])
{
    memset(out, 0, NMI_RX_MANIFEST);
    memcpy(out, "REDM", 4);
    out[4] = NMI_RX_MANIFEST_VERSION;
    nmi_store_le32(out + 5, gen);
    nmi_store_le32(out + 12, (uint32_t)XXH3_64bits(out, 12));
}

int
nmi_rx_manifest_decode(const uint8_t *in, size_t n, uint32_t *gen)
{
    if (in == NULL || n != NMI_RX_MANIFEST) {
        return nmi_err(NM_EDECODE, "manifest is %zu bytes, expected 16", n);
    }
    if (memcmp(in, "REDM", 4) != 0) {
        return nmi_err(NM_EDECODE, "manifest magic is not REDM");
    }
    if (in[4] != NMI_RX_MANIFEST_VERSION) {
        return nmi_err(NM_EDECODE, "manifest version %u, expected 1", in[4]);
    }
    if (in[9] | in[10] | in[11]) {
        return nmi_err(NM_EDECODE, "manifest reserved bytes are not zero");
    }
    uint32_t want = (uint32_t)XXH3_64bits(in, 12);
    if (nmi_load_le32(in + 12) != want) {
        return nmi_err(NM_EDECODE,
                       "manifest checksum 0x%08x does not match 0x%08x",
                       nmi_load_le32(in + 12), want);
    }
    uint32_t g = nmi_load_le32(in + 5);
    if (g == 0) {
        return nmi_err(NM_EDECODE, "manifest generation is 0");
    }
    if (gen) {
        *gen = g;
    }
    return NM_OK;
}
