/* src/behavior/request.c - the JSON request entry points behind
 * `netmesh predicate eval` and `netmesh caps diff`. */
#include <stdlib.h>
#include <string.h>

#include "behavior/pred_impl.h"
#include "core/core.h"

typedef struct req {
    nmi_arena arena;
    nm_pred *pred;
    const char **tags, **mk, **mv;
    nm_pred_ctx ctx;
} req;

static void
req_free(req *r)
{
    nm_pred_free(r->pred);
    free(r->tags);
    free(r->mk);
    free(r->mv);
    nmi_arena_free(&r->arena);
}

static int
req_decode(const char *json, size_t len, req *r)
{
    memset(r, 0, sizeof(*r));
    nmi_arena_init(&r->arena);
    if (json == NULL) {
        return nmi_err(NM_EINVAL, "json must be non-NULL");
    }
    nmi_bj *root;
    int rc = nmi_bj_parse(&r->arena, json, len, &root);
    if (rc != NM_OK) {
        return rc;
    }
    if (root->type != NMI_BJ_OBJ) {
        return nmi_err(NM_EDECODE, "the request must be {\"wire\":..,"
                                   "\"tags\":[..],\"metadata\":{..}}");
    }
    const char *dup = nmi_bj_dup_key(root);
    if (dup) {
        return nmi_err(NM_EDECODE, "request: duplicate field '%s'", dup);
    }
    const nmi_bj *wire = nmi_bj_get(root, "wire");
    const nmi_bj *tags = nmi_bj_get(root, "tags");
    const nmi_bj *meta = nmi_bj_get(root, "metadata");
    if (wire == NULL) {
        return nmi_err(NM_EDECODE, "request: missing field 'wire'");
    }
    if (tags && tags->type != NMI_BJ_ARR) {
        return nmi_err(NM_EDECODE, "request: 'tags' must be an array");
    }
    if (meta && meta->type != NMI_BJ_OBJ) {
        return nmi_err(NM_EDECODE, "request: 'metadata' must be an object");
    }
    size_t nt = tags ? tags->v.arr.n : 0, nm = meta ? meta->v.obj.n : 0;
    if (nt && (r->tags = malloc(nt * sizeof(char *))) == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nt; i++) {
        const nmi_bj *t = &tags->v.arr.items[i];
        if ((rc = nmi_bj_as_str(t, "tags[]", &r->tags[i])) != NM_OK) {
            return rc;
        }
        if (t->v.str.len == 0) {
            return nmi_err(NM_EDECODE, "capability tag must be non-empty");
        }
    }
    if (nm && ((r->mk = malloc(nm * sizeof(char *))) == NULL ||
               (r->mv = malloc(nm * sizeof(char *))) == NULL)) {
        return nmi_err(NM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nm; i++) {
        const nmi_bj_member *m = &meta->v.obj.m[i];
        if (m->key_has_nul) {
            return nmi_err(NM_EDECODE,
                           "metadata key contains U+0000 (not supported)");
        }
        r->mk[i] = m->key;
        if ((rc = nmi_bj_as_str(&m->val, "metadata value", &r->mv[i])) !=
            NM_OK) {
            return rc;
        }
    }
    if ((rc = nmi_pred_from_bj(wire, &r->pred)) != NM_OK) {
        return rc;
    }
    r->ctx.tags = r->tags;
    r->ctx.ntags = nt;
    r->ctx.meta_keys = r->mk;
    r->ctx.meta_values = r->mv;
    r->ctx.nmeta = nm;
    return NM_OK;
}

int
nm_pred_request_eval(const char *json, size_t len)
{
    req r;
    int rc = req_decode(json, len, &r);
    if (rc == NM_OK) {
        rc = nm_pred_eval(r.pred, &r.ctx);
    }
    req_free(&r);
    return rc;
}

int
nm_pred_request_trace(const char *json, size_t len, bool *result,
                      char **trace_json, size_t *trace_len)
{
    if (trace_json == NULL) {
        return nmi_err(NM_EINVAL, "trace_json must be non-NULL");
    }
    req r;
    int rc = req_decode(json, len, &r);
    if (rc == NM_OK) {
        nm_pred_trace *t;
        rc = nm_pred_eval_trace(r.pred, &r.ctx, result, &t);
        if (rc == NM_OK) {
            rc = nm_pred_trace_to_json(t, trace_json, trace_len);
            nm_pred_trace_free(t);
        }
    }
    req_free(&r);
    return rc;
}

int
nm_caps_diff_request(const char *json, size_t len, char **out, size_t *outlen)
{
    if (json == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "json and out must be non-NULL");
    }
    nmi_arena a;
    nmi_arena_init(&a);
    nmi_bj *root;
    nm_capset *prev = NULL, *curr = NULL;
    nm_caps_diff *d = NULL;
    int rc = nmi_bj_parse(&a, json, len, &root);
    if (rc != NM_OK) {
        goto done;
    }
    if (root->type != NMI_BJ_OBJ) {
        rc = nmi_err(NM_EDECODE,
                     "the request must be {\"prev\":<CapabilitySet>,"
                     "\"curr\":<CapabilitySet>}");
        goto done;
    }
    const char *dup = nmi_bj_dup_key(root);
    if (dup) {
        rc = nmi_err(NM_EDECODE, "request: duplicate field '%s'", dup);
        goto done;
    }
    const nmi_bj *pv = nmi_bj_get(root, "prev"),
                 *cv = nmi_bj_get(root, "curr");
    if (pv == NULL || cv == NULL) {
        rc = nmi_err(NM_EDECODE, "request: missing field '%s'",
                     pv == NULL ? "prev" : "curr");
        goto done;
    }
    if ((rc = nmi_capset_from_bj(pv, "prev", &prev)) != NM_OK ||
        (rc = nmi_capset_from_bj(cv, "curr", &curr)) != NM_OK ||
        (rc = nm_capset_diff(curr, prev, &d)) != NM_OK) {
        goto done;
    }
    rc = nm_caps_diff_to_json(d, out, outlen);
done:
    nm_caps_diff_free(d);
    nm_capset_free(prev);
    nm_capset_free(curr);
    nmi_arena_free(&a);
    return rc;
}
