/* tests/fuzz/fuzz_cortex_memory.c - the memories fold: payload decoders, the
 * apply step, and the state's postcard form.
 *
 * Input: a sequence of events [dispatch u8][len u8][tail: len bytes]
 * (the last one takes what is left).
 *
 * Invariants: never crash, never leak; an op that decodes re-encodes to
 * bytes that decode to the same op; apply never fails on a decoded op
 * except for memory; after every event the index finds every stored
 * memory; the state encodes, decodes to an equal state and re-encodes to
 * the same bytes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>

#include "cortex/cortex_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_index(const nmi_cx_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        const nm_cortex_memory *x = nmi_cx_table_at(t, i);
        if (nmi_cx_table_get(t, x->id) != x) {
            abort();
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const nmi_cx_kind *k = &nmi_cx_memories_kind;
    nmi_cx_table tab;
    nmi_cx_table_init(&tab, k->esize);
    size_t i = 0;
    while (i + 2 <= size) {
        uint8_t dispatch = data[i];
        size_t len = data[i + 1];
        i += 2;
        if (len > size - i) {
            len = size - i;
        }
        const uint8_t *tail = data + i;
        i += len;
        nmi_cx_mem_op op, op2;
        int rc = nmi_cx_mem_op_decode(dispatch, tail, len, &op);
        if (rc == NM_OK) {
            nmi_pc_w w;
            nmi_pc_w_init(&w, NULL, 0);
            nmi_cx_mem_op_encode(&op, &w);
            if (nmi_pc_w_status(&w) ||
                nmi_cx_mem_op_decode(dispatch, w.p, w.len, &op2) != NM_OK ||
                op2.id != op.id || op2.now_ns != op.now_ns ||
                op2.ntags != op.ntags || op2.tags_bytes != op.tags_bytes ||
                op2.content_len != op.content_len ||
                op2.source_len != op.source_len ||
                (op.content_len &&
                 memcmp(op.content, op2.content, op.content_len) != 0) ||
                (op.source_len &&
                 memcmp(op.source, op2.source, op.source_len) != 0) ||
                (op.tags_bytes &&
                 memcmp(op.tags_at, op2.tags_at, op.tags_bytes) != 0)) {
                abort();
            }
            nmi_pc_w_free(&w);
        } else if (rc != NM_EDECODE && rc != NM_ENOTSUP) {
            abort();
        }
        nm_cortex_meta m = {.dispatch = dispatch};
        rc = k->apply(&tab, &m, tail, len);
        if (rc != NM_OK && rc != NM_EDECODE && rc != NM_ENOMEM) {
            abort();
        }
        check_index(&tab);
    }
    nmi_pc_w a, b;
    nmi_pc_w_init(&a, NULL, 0);
    nmi_pc_w_init(&b, NULL, 0);
    k->state_encode(&tab, &a);
    nmi_cx_table t2;
    nmi_cx_table_init(&t2, k->esize);
    if (nmi_pc_w_status(&a) || k->state_decode(&t2, a.p, a.len) != NM_OK ||
        t2.n != tab.n) {
        abort();
    }
    k->state_encode(&t2, &b);
    if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0) {
        abort();
    }
    /* and the raw input read as a state must not crash either */
    nmi_cx_table t3;
    nmi_cx_table_init(&t3, k->esize);
    (void)k->state_decode(&t3, data, size);
    nmi_cx_table_free(&t3, k->elem_free);
    nmi_pc_w_free(&a);
    nmi_pc_w_free(&b);
    nmi_cx_table_free(&t2, k->elem_free);
    nmi_cx_table_free(&tab, k->elem_free);
    return 0;
}
