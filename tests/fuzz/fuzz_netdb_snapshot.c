/* tests/fuzz/fuzz_netdb_snapshot.c - the NetDbSnapshot bundle decoder
 * (and through it both typed snapshot decoders), which restore runs on
 * bytes from disk or the network.
 *
 * Invariants: never crash, never leak; a bundle that decodes encodes to
 * bytes that decode again and re-encode identically (the canonical
 * form); the restored states re-encode stably. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>

#include "cortex/cortex_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
state_stable(const nmi_cx_kind *k, const nm_cortex_snapshot *p)
{
    nmi_cx_table t, t2;
    uint64_t app, app2;
    nmi_cx_table_init(&t, k->esize);
    if (nmi_cx_snapshot_decode(k, p->state, p->len, &app, &t) != NM_OK) {
        abort(); /* the bundle decoder already checked it */
    }
    nmi_pc_w a, b;
    nmi_pc_w_init(&a, NULL, 0);
    nmi_pc_w_init(&b, NULL, 0);
    k->state_encode(&t, &a);
    nmi_cx_table_init(&t2, k->esize);
    if (k->state_decode(&t2, a.p, a.len) != NM_OK || t2.n != t.n) {
        abort();
    }
    k->state_encode(&t2, &b);
    if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0) {
        abort();
    }
    (void)app2;
    nmi_pc_w_free(&a);
    nmi_pc_w_free(&b);
    nmi_cx_table_free(&t, k->elem_free);
    nmi_cx_table_free(&t2, k->elem_free);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nm_netdb_snapshot s, s2;
    int rc = nm_netdb_snapshot_decode(data, size, &s);
    if (rc != NM_OK) {
        if (rc != NM_EDECODE && rc != NM_ENOMEM) {
            abort();
        }
        return 0;
    }
    uint8_t *e1, *e2;
    size_t n1, n2;
    if (nm_netdb_snapshot_encode(&s, &e1, &n1) != NM_OK) {
        abort();
    }
    if (n1 > size || nm_netdb_snapshot_decode(e1, n1, &s2) != NM_OK ||
        nm_netdb_snapshot_encode(&s2, &e2, &n2) != NM_OK || n1 != n2 ||
        memcmp(e1, e2, n1) != 0) {
        abort();
    }
    if (s.has_tasks) {
        state_stable(&nmi_cx_tasks_kind, &s.tasks);
    }
    if (s.has_memories) {
        state_stable(&nmi_cx_memories_kind, &s.memories);
    }
    free(e1);
    free(e2);
    nm_netdb_snapshot_free(&s);
    nm_netdb_snapshot_free(&s2);
    return 0;
}
