/* tests/fuzz/fuzz_cortex_memory.c - the memories fold: payload decoders,
 * the apply step, and the state's postcard form (fuzz_cortex_fold.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_cortex_fold.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
memory_roundtrip(uint8_t dispatch, const uint8_t *tail, size_t len)
{
    nmi_cx_mem_op op, op2;
    int rc = nmi_cx_mem_op_decode(dispatch, tail, len, &op);
    if (rc != NM_OK) {
        return rc;
    }
    nmi_pc_w w;
    nmi_pc_w_init(&w, NULL, 0);
    nmi_cx_mem_op_encode(&op, &w);
    if (nmi_pc_w_status(&w) ||
        nmi_cx_mem_op_decode(dispatch, w.p, w.len, &op2) != NM_OK ||
        op2.id != op.id || op2.now_ns != op.now_ns || op2.ntags != op.ntags ||
        op2.tags_bytes != op.tags_bytes || op2.content_len != op.content_len ||
        op2.source_len != op.source_len ||
        (op.content_len &&
         memcmp(op.content, op2.content, op.content_len) != 0) ||
        (op.source_len && memcmp(op.source, op2.source, op.source_len) != 0) ||
        (op.tags_bytes &&
         memcmp(op.tags_at, op2.tags_at, op.tags_bytes) != 0)) {
        abort();
    }
    nmi_pc_w_free(&w);
    return NM_OK;
}

static uint64_t
memory_id(const void *elem)
{
    return ((const nm_cortex_memory *)elem)->id;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_cx_fold_run(&nmi_cx_memories_kind, memory_roundtrip, memory_id,
                          data, size);
}
