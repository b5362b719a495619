/* tests/fuzz/fuzz_cortex_task.c - the tasks fold: payload decoders, the
 * apply step, and the state's postcard form (fuzz_cortex_fold.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fuzz_cortex_fold.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
task_roundtrip(uint8_t dispatch, const uint8_t *tail, size_t len)
{
    nmi_cx_task_op op, op2;
    int rc = nmi_cx_task_op_decode(dispatch, tail, len, &op);
    if (rc != NM_OK) {
        return rc;
    }
    nmi_pc_w w;
    nmi_pc_w_init(&w, NULL, 0);
    nmi_cx_task_op_encode(&op, &w);
    if (nmi_pc_w_status(&w) ||
        nmi_cx_task_op_decode(dispatch, w.p, w.len, &op2) != NM_OK ||
        op2.id != op.id || op2.now_ns != op.now_ns ||
        op2.title_len != op.title_len ||
        (op.title_len && memcmp(op.title, op2.title, op.title_len) != 0)) {
        abort();
    }
    nmi_pc_w_free(&w);
    return NM_OK;
}

static uint64_t
task_id(const void *elem)
{
    return ((const nm_cortex_task *)elem)->id;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_cx_fold_run(&nmi_cx_tasks_kind, task_roundtrip, task_id, data,
                          size);
}
