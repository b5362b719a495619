/* src/behavior/pred_wire.c - the canonical PredicateWire JSON codec and the
 * `net-where` header helpers (behavior/predicate.rs to_wire /
 * into_predicate / predicate_{to,from}_rpc_header{,s}). */
#include <stdlib.h>
#include <string.h>

#include "behavior/pred_impl.h"
#include "core/core.h"

/* ================================================================== encode */

typedef struct enc {
    nmi_sb sb;
    uint32_t next; /* index of the next node */
    bool oom;
} enc;

static void
put_tagkey(nmi_sb *sb, const nm_pred *p)
{
    nmi_sb_puts(sb, ",\"key\":{\"axis\":\"");
    nmi_sb_puts(sb, nm_axis_name(p->axis));
    nmi_sb_puts(sb, "\",\"key\":");
    nmi_sb_json_str(sb, p->key, p->key_len);
    nmi_sb_putc(sb, '}');
}

static void
put_field_str(nmi_sb *sb, const char *name, const char *s, size_t n)
{
    nmi_sb_puts(sb, ",\"");
    nmi_sb_puts(sb, name);
    nmi_sb_puts(sb, "\":");
    nmi_sb_json_str(sb, s, n);
}

static void
put_field_f64(nmi_sb *sb, const char *name, double v)
{
    nmi_sb_puts(sb, ",\"");
    nmi_sb_puts(sb, name);
    nmi_sb_puts(sb, "\":");
    nmi_sb_json_f64(sb, v);
}

/* Post-order: children left to right, then the node. Returns its index. */
static uint32_t
emit(enc *e, const nm_pred *p)
{
    uint32_t stack_idx[16];
    uint32_t *kids = stack_idx;
    if (p->n > NMI_ARRAY_LEN(stack_idx)) {
        kids = malloc(p->n * sizeof(uint32_t));
        if (kids == NULL) {
            e->oom = true;
            return 0;
        }
    }
    for (size_t i = 0; i < p->n; i++) {
        kids[i] = emit(e, p->kids[i]);
    }
    nmi_sb *sb = &e->sb;
    if (e->next) {
        nmi_sb_putc(sb, ',');
    }
    nmi_sb_puts(sb, "{\"kind\":\"");
    nmi_sb_puts(sb, nm_pred_kind_name(p->kind));
    nmi_sb_putc(sb, '"');
    switch (p->kind) {
    case NM_PRED_AND:
    case NM_PRED_OR:
        nmi_sb_puts(sb, ",\"children\":[");
        for (size_t i = 0; i < p->n; i++) {
            if (i) {
                nmi_sb_putc(sb, ',');
            }
            nmi_sb_putu64(sb, kids[i]);
        }
        nmi_sb_putc(sb, ']');
        break;
    case NM_PRED_NOT:
        nmi_sb_puts(sb, ",\"child\":");
        nmi_sb_putu64(sb, kids[0]);
        break;
    default:
        if (nmi_pred_is_axis_leaf(p->kind)) {
            put_tagkey(sb, p);
        } else {
            put_field_str(sb, "key", p->key, p->key_len);
        }
        switch (p->kind) {
        case NM_PRED_EQUALS:
        case NM_PRED_METADATA_EQUALS:
            put_field_str(sb, "value", p->str, p->str_len);
            break;
        case NM_PRED_NUMERIC_AT_LEAST:
        case NM_PRED_NUMERIC_AT_MOST:
        case NM_PRED_METADATA_NUMERIC_AT_LEAST:
            put_field_f64(sb, "threshold", p->a);
            break;
        case NM_PRED_NUMERIC_IN_RANGE:
            put_field_f64(sb, "min", p->a);
            put_field_f64(sb, "max", p->b);
            break;
        case NM_PRED_SEMVER_AT_LEAST:
        case NM_PRED_SEMVER_AT_MOST:
        case NM_PRED_SEMVER_COMPATIBLE:
            put_field_str(sb, "version", p->str, p->str_len);
            break;
        case NM_PRED_STRING_PREFIX:
            put_field_str(sb, "prefix", p->str, p->str_len);
            break;
        case NM_PRED_STRING_MATCHES:
        case NM_PRED_METADATA_MATCHES:
            put_field_str(sb, "pattern", p->str, p->str_len);
            break;
        default:
            break;
        }
    }
    nmi_sb_putc(sb, '}');
    if (kids != stack_idx) {
        free(kids);
    }
    return e->next++;
}

int
nm_pred_to_wire_json(const nm_pred *p, char **out, size_t *len)
{
    if (p == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "p and out must be non-NULL");
    }
    enc e;
    nmi_sb_init(&e.sb);
    e.next = 0;
    e.oom = false;
    nmi_sb_puts(&e.sb, "{\"nodes\":[");
    uint32_t root = emit(&e, p);
    nmi_sb_puts(&e.sb, "],\"root_idx\":");
    nmi_sb_putu64(&e.sb, root);
    nmi_sb_putc(&e.sb, '}');
    if (e.oom) {
        nmi_sb_free(&e.sb);
        return nmi_err(NM_ENOMEM, "out of memory encoding a predicate");
    }
    return nmi_sb_take(&e.sb, out, len);
}

/* ================================================================== decode */

/* One decoded wire node (strings point into the JSON arena). */
typedef struct wnode {
    nm_pred_kind kind;
    nm_axis axis;
    const char *key;
    size_t klen;
    const char *str;
    size_t slen;
    double a, b;
    const uint32_t *kids;
    size_t n;
} wnode;

static int
need(const nmi_bj *node, const char *field, size_t i, const nmi_bj **out)
{
    const nmi_bj *v = nmi_bj_get(node, field);
    if (v == NULL) {
        return nmi_err(NM_EDECODE, "nodes[%zu]: missing field '%s'", i, field);
    }
    *out = v;
    return NM_OK;
}

static int
get_str(const nmi_bj *node, const char *field, size_t i, const char **s,
        size_t *n)
{
    const nmi_bj *v = NULL;
    int rc = need(node, field, i, &v);
    if (rc == NM_OK) {
        rc = nmi_bj_as_str(v, field, s);
    }
    if (rc == NM_OK) {
        *n = v->v.str.len;
    }
    return rc;
}

static int
get_f64(const nmi_bj *node, const char *field, size_t i, double *d)
{
    const nmi_bj *v = NULL;
    int rc = need(node, field, i, &v);
    return rc == NM_OK ? nmi_bj_as_f64(v, field, d) : rc;
}

static int
decode_tagkey(const nmi_bj *v, size_t i, wnode *w)
{
    if (v->type != NMI_BJ_OBJ) {
        return nmi_err(NM_EDECODE,
                       "nodes[%zu]: 'key' must be {\"axis\":..,\"key\":..}",
                       i);
    }
    const char *dup = nmi_bj_dup_key(v);
    if (dup) {
        return nmi_err(NM_EDECODE, "nodes[%zu].key: duplicate field '%s'", i,
                       dup);
    }
    const char *axis;
    int rc = get_str(v, "axis", i, &axis, &w->slen);
    if (rc != NM_OK) {
        return rc;
    }
    if (nm_axis_parse(axis, &w->axis) != NM_OK) {
        return nmi_err(NM_EDECODE,
                       "nodes[%zu].key: unknown axis (hardware, software, "
                       "devices, dataforts)",
                       i);
    }
    return get_str(v, "key", i, &w->key, &w->klen);
}

static int
decode_node(nmi_arena *a, const nmi_bj *node, size_t i, wnode *w)
{
    if (node->type != NMI_BJ_OBJ) {
        return nmi_err(NM_EDECODE, "nodes[%zu] must be an object", i);
    }
    const char *dup = nmi_bj_dup_key(node);
    if (dup) {
        return nmi_err(NM_EDECODE, "nodes[%zu]: duplicate field '%s'", i, dup);
    }
    const char *kind;
    size_t kl;
    int rc = get_str(node, "kind", i, &kind, &kl);
    if (rc != NM_OK) {
        return rc;
    }
    memset(w, 0, sizeof(*w));
    if (nmi_pred_kind_from_name(kind, &w->kind) != 0) {
        return nmi_err(NM_EDECODE, "nodes[%zu]: unknown kind '%.40s'", i,
                       kind);
    }
    if (w->kind == NM_PRED_AND || w->kind == NM_PRED_OR) {
        const nmi_bj *c = NULL;
        if ((rc = need(node, "children", i, &c)) != NM_OK) {
            return rc;
        }
        if (c->type != NMI_BJ_ARR) {
            return nmi_err(NM_EDECODE,
                           "nodes[%zu]: 'children' must be an "
                           "array of indices",
                           i);
        }
        uint32_t *kids = NULL;
        if (c->v.arr.n) {
            kids = nmi_arena_alloc(a, c->v.arr.n * sizeof(uint32_t));
            if (kids == NULL) {
                return nmi_err(NM_ENOMEM, "out of memory decoding");
            }
        }
        for (size_t k = 0; k < c->v.arr.n; k++) {
            if ((rc = nmi_bj_as_u32(&c->v.arr.items[k], "children[]",
                                    &kids[k])) != NM_OK) {
                return rc;
            }
        }
        w->kids = kids;
        w->n = c->v.arr.n;
        return NM_OK;
    }
    if (w->kind == NM_PRED_NOT) {
        const nmi_bj *c = NULL;
        uint32_t *kid = nmi_arena_alloc(a, sizeof(uint32_t));
        if (kid == NULL) {
            return nmi_err(NM_ENOMEM, "out of memory decoding");
        }
        if ((rc = need(node, "child", i, &c)) != NM_OK ||
            (rc = nmi_bj_as_u32(c, "child", kid)) != NM_OK) {
            return rc;
        }
        w->kids = kid;
        w->n = 1;
        return NM_OK;
    }
    /* Leaves: the key first. */
    const nmi_bj *key = NULL;
    if ((rc = need(node, "key", i, &key)) != NM_OK) {
        return rc;
    }
    if (nmi_pred_is_axis_leaf(w->kind)) {
        rc = decode_tagkey(key, i, w);
        w->slen = 0;
    } else {
        rc = nmi_bj_as_str(key, "key", &w->key);
        if (rc == NM_OK) {
            w->klen = key->v.str.len;
        }
    }
    if (rc != NM_OK) {
        return rc;
    }
    switch (w->kind) {
    case NM_PRED_EQUALS:
    case NM_PRED_METADATA_EQUALS:
        return get_str(node, "value", i, &w->str, &w->slen);
    case NM_PRED_NUMERIC_AT_LEAST:
    case NM_PRED_NUMERIC_AT_MOST:
    case NM_PRED_METADATA_NUMERIC_AT_LEAST:
        return get_f64(node, "threshold", i, &w->a);
    case NM_PRED_NUMERIC_IN_RANGE:
        if ((rc = get_f64(node, "min", i, &w->a)) != NM_OK) {
            return rc;
        }
        return get_f64(node, "max", i, &w->b);
    case NM_PRED_SEMVER_AT_LEAST:
    case NM_PRED_SEMVER_AT_MOST:
    case NM_PRED_SEMVER_COMPATIBLE:
        return get_str(node, "version", i, &w->str, &w->slen);
    case NM_PRED_STRING_PREFIX:
        return get_str(node, "prefix", i, &w->str, &w->slen);
    case NM_PRED_STRING_MATCHES:
    case NM_PRED_METADATA_MATCHES:
        return get_str(node, "pattern", i, &w->str, &w->slen);
    default:
        return NM_OK; /* exists, metadata_exists */
    }
}

typedef struct rebuild {
    const wnode *nodes;
    size_t len;
    uint64_t count; /* nodes built so far (shared children expand) */
} rebuild;

static int
build(rebuild *r, uint32_t idx, uint32_t depth, nm_pred **out)
{
    if (depth > NM_PRED_MAX_DEPTH || ++r->count > NM_PRED_MAX_NODES) {
        return nmi_err(NM_ETOOBIG,
                       "predicate wire expands past %d nodes or %d levels",
                       NM_PRED_MAX_NODES, NM_PRED_MAX_DEPTH);
    }
    if (idx >= r->len) {
        return nmi_err(NM_EDECODE,
                       "predicate wire child index %u out of bounds for "
                       "nodes len %zu",
                       idx, r->len);
    }
    const wnode *w = &r->nodes[idx];
    if (!nmi_pred_is_composite(w->kind)) {
        nm_pred *p = nmi_pred_leaf(w->kind, w->axis, w->key, w->klen, w->str,
                                   w->slen, w->a, w->b);
        if (p == NULL) {
            return nmi_err(NM_ENOMEM, "out of memory decoding a predicate");
        }
        *out = p;
        return NM_OK;
    }
    for (size_t k = 0; k < w->n; k++) {
        if (w->kids[k] >= idx) {
            return nmi_err(NM_EDECODE,
                           "predicate wire child index %u >= parent index "
                           "%u (cycle)",
                           w->kids[k], idx);
        }
    }
    nm_pred *stack_kids[16];
    nm_pred **kids = stack_kids;
    if (w->n > NMI_ARRAY_LEN(stack_kids)) {
        kids = malloc(w->n * sizeof(nm_pred *));
        if (kids == NULL) {
            return nmi_err(NM_ENOMEM, "out of memory decoding a predicate");
        }
    }
    int rc = NM_OK;
    size_t built = 0;
    for (; built < w->n; built++) {
        if ((rc = build(r, w->kids[built], depth + 1, &kids[built])) !=
            NM_OK) {
            break;
        }
    }
    if (rc == NM_OK) {
        rc = nmi_pred_composite(w->kind, kids, w->n, out);
    } else {
        for (size_t k = 0; k < built; k++) {
            nm_pred_free(kids[k]);
        }
    }
    if (kids != stack_kids) {
        free(kids);
    }
    return rc;
}

int
nmi_pred_from_bj(const nmi_bj *v, nm_pred **out)
{
    if (v->type != NMI_BJ_OBJ) {
        return nmi_err(
            NM_EDECODE,
            "a PredicateWire must be {\"nodes\":[..],\"root_idx\":N}");
    }
    const char *dup = nmi_bj_dup_key(v);
    if (dup) {
        return nmi_err(NM_EDECODE, "PredicateWire: duplicate field '%s'", dup);
    }
    const nmi_bj *nodes = nmi_bj_get(v, "nodes");
    const nmi_bj *root = nmi_bj_get(v, "root_idx");
    if (nodes == NULL) {
        return nmi_err(NM_EDECODE, "PredicateWire: missing field 'nodes'");
    }
    if (nodes->type != NMI_BJ_ARR) {
        return nmi_err(NM_EDECODE, "PredicateWire: 'nodes' must be an array");
    }
    if (root == NULL) {
        return nmi_err(NM_EDECODE, "PredicateWire: missing field 'root_idx'");
    }
    uint32_t root_idx;
    int rc = nmi_bj_as_u32(root, "root_idx", &root_idx);
    if (rc != NM_OK) {
        return rc;
    }
    size_t len = nodes->v.arr.n;
    nmi_arena a;
    nmi_arena_init(&a);
    wnode *w = len ? nmi_arena_alloc(&a, len * sizeof(wnode)) : NULL;
    if (len && w == NULL) {
        nmi_arena_free(&a);
        return nmi_err(NM_ENOMEM, "out of memory decoding a predicate");
    }
    for (size_t i = 0; i < len && rc == NM_OK; i++) {
        rc = decode_node(&a, &nodes->v.arr.items[i], i, &w[i]);
    }
    if (rc == NM_OK) {
        if (len == 0) {
            rc = nmi_err(NM_EDECODE, "predicate wire has empty nodes table");
        } else if (root_idx >= len) {
            rc = nmi_err(NM_EDECODE,
                         "predicate wire root_idx %u >= nodes len %zu",
                         root_idx, len);
        } else {
            rebuild r = {w, len, 0};
            rc = build(&r, root_idx, 1, out);
        }
    }
    nmi_arena_free(&a);
    return rc;
}

int
nm_pred_from_wire_json(const char *json, size_t len, nm_pred **out)
{
    if (json == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "json and out must be non-NULL");
    }
    nmi_arena a;
    nmi_arena_init(&a);
    nmi_bj *root;
    int rc = nmi_bj_parse(&a, json, len, &root);
    if (rc == NM_OK) {
        rc = nmi_pred_from_bj(root, out);
    }
    nmi_arena_free(&a);
    return rc;
}

/* ================================================================== header */

int
nm_pred_to_where_header(const nm_pred *p, char **value, size_t *len)
{
    if (p == NULL || value == NULL) {
        return nmi_err(NM_EINVAL, "p and value must be non-NULL");
    }
    char *v;
    size_t n;
    int rc = nm_pred_to_wire_json(p, &v, &n);
    if (rc != NM_OK) {
        return rc;
    }
    if (n > NM_PRED_WHERE_MAX_BYTES) {
        free(v);
        return nmi_err(NM_ETOOBIG,
                       "predicate wire encoding %zu bytes exceeds header cap "
                       "%d",
                       n, NM_PRED_WHERE_MAX_BYTES);
    }
    *value = v;
    if (len) {
        *len = n;
    }
    return NM_OK;
}

int
nm_pred_from_where_headers(const nm_header *headers, size_t n, nm_pred **out)
{
    if (out == NULL || (n && headers == NULL)) {
        return nmi_err(NM_EINVAL, "out (and headers when n > 0) non-NULL");
    }
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        if (headers[i].name == NULL ||
            strcmp(headers[i].name, NM_PRED_WHERE_HEADER) != 0) {
            continue;
        }
        if (headers[i].value_len > NM_PRED_WHERE_MAX_BYTES) {
            return nmi_err(NM_ETOOBIG,
                           "predicate wire payload %zu bytes exceeds header "
                           "cap %d",
                           headers[i].value_len, NM_PRED_WHERE_MAX_BYTES);
        }
        if (headers[i].value == NULL) {
            return nmi_err(NM_EDECODE, "net-where header has no value");
        }
        return nm_pred_from_wire_json(headers[i].value, headers[i].value_len,
                                      out);
    }
    return NM_OK;
}
