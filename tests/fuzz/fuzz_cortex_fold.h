/* tests/fuzz/fuzz_cortex_fold.h - the body shared by the fold harnesses
 * (fuzz_cortex_task.c, fuzz_cortex_memory.c): payload decoders, the apply
 * step, and the state's postcard form of one CortEX model.
 *
 * Input: a sequence of events [dispatch u8][len u8][tail: len bytes]
 * (the last one takes what is left).
 *
 * Invariants: never crash, never leak; an op that decodes re-encodes to
 * bytes that decode to the same op (the model's roundtrip function);
 * apply never fails on a decoded op except for memory; after every event
 * the index finds every element; the state encodes, decodes to an equal
 * state and re-encodes to the same bytes; the raw input read as a state
 * does not crash either. */
#ifndef NM_FUZZ_CORTEX_FOLD_H
#define NM_FUZZ_CORTEX_FOLD_H

#include <stdlib.h>
#include <string.h>

#include "cortex/cortex_impl.h"

/* Decode the op (dispatch, tail), and if it decodes, encode it and decode
 * that again: abort() when the two decoded ops differ. Returns the first
 * decode's code. */
typedef int (*fz_cx_roundtrip_fn)(uint8_t dispatch, const uint8_t *tail,
                                  size_t len);
/* The id of a table element of the model. */
typedef uint64_t (*fz_cx_id_fn)(const void *elem);

static void
fz_cx_check_index(const nmi_cx_table *t, fz_cx_id_fn id_of)
{
    for (size_t i = 0; i < t->n; i++) {
        const void *x = nmi_cx_table_at(t, i);
        if (nmi_cx_table_get(t, id_of(x)) != x) {
            abort();
        }
    }
}

static int
fz_cx_fold_run(const nmi_cx_kind *k, fz_cx_roundtrip_fn roundtrip,
               fz_cx_id_fn id_of, const uint8_t *data, size_t size)
{
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
        int rc = roundtrip(dispatch, tail, len);
        if (rc != NM_OK && rc != NM_EDECODE && rc != NM_ENOTSUP) {
            abort();
        }
        nm_cortex_meta m = {.dispatch = dispatch};
        rc = k->apply(&tab, &m, tail, len);
        if (rc != NM_OK && rc != NM_EDECODE && rc != NM_ENOMEM) {
            abort();
        }
        fz_cx_check_index(&tab, id_of);
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

#endif
