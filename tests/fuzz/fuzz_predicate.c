/* tests/fuzz/fuzz_predicate.c - the PredicateWire decoder (and the eval
 * request decoder behind `netmesh predicate eval`). Never crash; a decoded
 * predicate re-encodes to a canonical form that is a fixed point, and
 * evaluation, traces, labels and the debug report run on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/predicate.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
exercise(const nm_pred *p)
{
    char *a = NULL, *b = NULL;
    if (nm_pred_to_wire_json(p, &a, NULL) != NM_OK) {
        return;
    }
    nm_pred *q = NULL;
    int rc = nm_pred_from_wire_json(a, strlen(a), &q);
    /* NaN thresholds cannot be built from JSON, so the canonical form
     * always decodes again. */
    if (rc != NM_OK) {
        fprintf(stderr, "canonical form does not decode: %s\n", a);
        abort();
    }
    if (nm_pred_to_wire_json(q, &b, NULL) != NM_OK || strcmp(a, b) != 0) {
        fprintf(stderr, "not a fixed point:\n%s\n%s\n", a, b ? b : "");
        abort();
    }
    static const char *tags[] = {"hardware.gpu",
                                 "hardware.memory_gb=64",
                                 "software.runtime.python=3.11.5",
                                 "software.os:linux",
                                 "scope:tenant:a",
                                 "legacy",
                                 "devices.x="};
    static const char *mk[] = {"intent", "priority", "owner"};
    static const char *mv[] = {"ml-training", "7", "alice@x"};
    nm_pred_ctx ctx = {tags, 7, mk, mv, 3};
    nm_pred_ctx empty = {NULL, 0, NULL, NULL, 0};
    int r1 = nm_pred_eval(p, &ctx), r2 = nm_pred_eval_unplanned(p, &ctx);
    if (r1 != r2) {
        fprintf(stderr, "planned %d != unplanned %d\n", r1, r2);
        abort();
    }
    bool res;
    nm_pred_trace *t = NULL;
    if (nm_pred_eval_trace(p, &ctx, &res, &t) == NM_OK) {
        if ((int)res != r1) {
            abort();
        }
        char *tj = NULL;
        (void)nm_pred_trace_to_json(t, &tj, NULL);
        free(tj);
        const char *keys[] = {"intent", "owner"};
        (void)nm_pred_trace_redact(t, keys, 2);
        nm_pred_trace_free(t);
    }
    nm_pred_report *r = NULL;
    if (nm_pred_report_new(&r) == NM_OK) {
        (void)nm_pred_report_add(r, p, &ctx);
        (void)nm_pred_report_add(r, p, &empty);
        const char *keys[] = {"intent", ""};
        (void)nm_pred_report_redact(r, keys, 2);
        char *rj = NULL;
        (void)nm_pred_report_to_json(r, &rj, NULL);
        free(rj);
        nm_pred_report_free(r);
    }
    char *label = NULL;
    (void)nm_pred_label(p, &label);
    free(label);
    nm_pred_free(q);
    free(a);
    free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nm_pred *p = NULL;
    if (nm_pred_from_wire_json((const char *)data, size, &p) == NM_OK) {
        exercise(p);
        nm_pred_free(p);
    }
    (void)nm_pred_request_eval((const char *)data, size);
    nm_header h = {NM_PRED_WHERE_HEADER, data, size};
    p = NULL;
    if (nm_pred_from_where_headers(&h, 1, &p) == NM_OK) {
        nm_pred_free(p);
    }
    return 0;
}
