/* src/behavior/predicate.c - the predicate AST, evaluation, traces and
 * labels (behavior/predicate.rs). The wire codec is in pred_wire.c, the
 * debug report in pred_report.c. */
#include "behavior/pred_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const char *const kind_names[] = {"exists",
                                         "equals",
                                         "numeric_at_least",
                                         "numeric_at_most",
                                         "numeric_in_range",
                                         "semver_at_least",
                                         "semver_at_most",
                                         "semver_compatible",
                                         "string_prefix",
                                         "string_matches",
                                         "metadata_exists",
                                         "metadata_equals",
                                         "metadata_matches",
                                         "metadata_numeric_at_least",
                                         "and",
                                         "or",
                                         "not"};

static const uint32_t kind_costs[] = {20, 21, 30, 30, 30, 60, 60, 60, 40,
                                      50, 10, 11, 45, 25, 0,  0,  0};

const char *
nm_pred_kind_name(nm_pred_kind k)
{
    if ((unsigned)k >= NMI_ARRAY_LEN(kind_names)) {
        return NULL;
    }
    return kind_names[k];
}

int
nmi_pred_kind_from_name(const char *s, nm_pred_kind *out)
{
    for (size_t i = 0; i < NMI_ARRAY_LEN(kind_names); i++) {
        if (strcmp(s, kind_names[i]) == 0) {
            *out = (nm_pred_kind)i;
            return 0;
        }
    }
    return -1;
}

bool
nmi_pred_is_axis_leaf(nm_pred_kind k)
{
    return k <= NM_PRED_STRING_MATCHES;
}

bool
nmi_pred_is_composite(nm_pred_kind k)
{
    return k == NM_PRED_AND || k == NM_PRED_OR || k == NM_PRED_NOT;
}

/* ================================================================== build */

void
nm_pred_free(nm_pred *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        nm_pred_free(p->kids[i]);
    }
    free(p->kids);
    free(p->order);
    free(p->key);
    free(p->str);
    free(p);
}

nm_pred *
nmi_pred_leaf(nm_pred_kind kind, nm_axis axis, const char *key, size_t klen,
              const char *str, size_t slen, double a, double b)
{
    nm_pred *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->kind = kind;
    p->axis = axis;
    p->a = a;
    p->b = b;
    p->cost = kind_costs[kind];
    p->depth = 1;
    p->nodes = 1;
    p->key = malloc(klen + 1);
    if (p->key == NULL) {
        free(p);
        return NULL;
    }
    memcpy(p->key, key, klen);
    p->key[klen] = '\0';
    p->key_len = klen;
    if (str) {
        p->str = malloc(slen + 1);
        if (p->str == NULL) {
            free(p->key);
            free(p);
            return NULL;
        }
        memcpy(p->str, str, slen);
        p->str[slen] = '\0';
        p->str_len = slen;
    }
    if (kind == NM_PRED_SEMVER_AT_LEAST || kind == NM_PRED_SEMVER_AT_MOST ||
        kind == NM_PRED_SEMVER_COMPATIBLE) {
        p->ref_ok = nmi_parse_semver(p->str, p->str_len, &p->ref);
    }
    return p;
}

/* Stable order of children by static cost (insertion sort on indices:
 * stable, and children lists are short). */
static int
plan(nm_pred *p)
{
    if (p->n == 0) {
        return 0;
    }
    p->order = malloc(p->n * sizeof(uint32_t));
    if (p->order == NULL) {
        return -1;
    }
    for (size_t i = 0; i < p->n; i++) {
        size_t j = i;
        uint32_t c = p->kids[i]->cost;
        while (j > 0 && p->kids[p->order[j - 1]]->cost > c) {
            p->order[j] = p->order[j - 1];
            j--;
        }
        p->order[j] = (uint32_t)i;
    }
    return 0;
}

int
nmi_pred_composite(nm_pred_kind kind, nm_pred *const *kids, size_t n,
                   nm_pred **out)
{
    uint64_t nodes = 1;
    uint32_t depth = 0, cost = 0;
    for (size_t i = 0; i < n; i++) {
        if (kids[i] == NULL) {
            for (size_t j = 0; j < n; j++) {
                nm_pred_free(kids[j]);
            }
            return nmi_err(NM_EINVAL, "a predicate child is NULL");
        }
        nodes += kids[i]->nodes;
        if (kids[i]->depth > depth) {
            depth = kids[i]->depth;
        }
        uint64_t c = (uint64_t)cost + kids[i]->cost;
        cost = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
    }
    if (nodes > NM_PRED_MAX_NODES || depth + 1 > NM_PRED_MAX_DEPTH) {
        for (size_t j = 0; j < n; j++) {
            nm_pred_free(kids[j]);
        }
        return nmi_err(NM_ETOOBIG, "predicate exceeds %d nodes or %d levels",
                       NM_PRED_MAX_NODES, NM_PRED_MAX_DEPTH);
    }
    nm_pred *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        goto oom;
    }
    p->kind = kind;
    p->cost = cost;
    p->depth = depth + 1;
    p->nodes = (uint32_t)nodes;
    if (n) {
        p->kids = malloc(n * sizeof(nm_pred *));
        if (p->kids == NULL) {
            free(p);
            goto oom;
        }
        memcpy(p->kids, kids, n * sizeof(nm_pred *));
        p->n = n;
        if ((kind == NM_PRED_AND || kind == NM_PRED_OR) && plan(p) != 0) {
            nm_pred_free(p);
            return nmi_err(NM_ENOMEM, "out of memory building a predicate");
        }
    }
    *out = p;
    return NM_OK;
oom:
    for (size_t j = 0; j < n; j++) {
        nm_pred_free(kids[j]);
    }
    return nmi_err(NM_ENOMEM, "out of memory building a predicate");
}

static int
axis_leaf(nm_pred_kind kind, nm_axis axis, const char *key, const char *str,
          double a, double b, nm_pred **out)
{
    if (key == NULL || out == NULL || (unsigned)axis > NM_AXIS_DATAFORTS ||
        (kind != NM_PRED_EXISTS && kind != NM_PRED_NUMERIC_AT_LEAST &&
         kind != NM_PRED_NUMERIC_AT_MOST && kind != NM_PRED_NUMERIC_IN_RANGE &&
         str == NULL)) {
        return nmi_err(NM_EINVAL, "predicate leaf: NULL argument or bad axis");
    }
    nm_pred *p = nmi_pred_leaf(kind, axis, key, strlen(key), str,
                               str ? strlen(str) : 0, a, b);
    if (p == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory building a predicate");
    }
    *out = p;
    return NM_OK;
}

static int
meta_leaf(nm_pred_kind kind, const char *key, const char *str, double a,
          nm_pred **out)
{
    if (key == NULL || out == NULL ||
        ((kind == NM_PRED_METADATA_EQUALS ||
          kind == NM_PRED_METADATA_MATCHES) &&
         str == NULL)) {
        return nmi_err(NM_EINVAL, "predicate leaf: NULL argument");
    }
    nm_pred *p = nmi_pred_leaf(kind, NM_AXIS_HARDWARE, key, strlen(key), str,
                               str ? strlen(str) : 0, a, 0);
    if (p == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory building a predicate");
    }
    *out = p;
    return NM_OK;
}

int
nm_pred_exists(nm_axis axis, const char *key, nm_pred **out)
{
    return axis_leaf(NM_PRED_EXISTS, axis, key, NULL, 0, 0, out);
}

int
nm_pred_equals(nm_axis axis, const char *key, const char *value, nm_pred **out)
{
    return axis_leaf(NM_PRED_EQUALS, axis, key, value, 0, 0, out);
}

int
nm_pred_numeric_at_least(nm_axis axis, const char *key, double t,
                         nm_pred **out)
{
    return axis_leaf(NM_PRED_NUMERIC_AT_LEAST, axis, key, NULL, t, 0, out);
}

int
nm_pred_numeric_at_most(nm_axis axis, const char *key, double t, nm_pred **out)
{
    return axis_leaf(NM_PRED_NUMERIC_AT_MOST, axis, key, NULL, t, 0, out);
}

int
nm_pred_numeric_in_range(nm_axis axis, const char *key, double min, double max,
                         nm_pred **out)
{
    return axis_leaf(NM_PRED_NUMERIC_IN_RANGE, axis, key, NULL, min, max, out);
}

int
nm_pred_semver_at_least(nm_axis axis, const char *key, const char *version,
                        nm_pred **out)
{
    return axis_leaf(NM_PRED_SEMVER_AT_LEAST, axis, key, version, 0, 0, out);
}

int
nm_pred_semver_at_most(nm_axis axis, const char *key, const char *version,
                       nm_pred **out)
{
    return axis_leaf(NM_PRED_SEMVER_AT_MOST, axis, key, version, 0, 0, out);
}

int
nm_pred_semver_compatible(nm_axis axis, const char *key, const char *version,
                          nm_pred **out)
{
    return axis_leaf(NM_PRED_SEMVER_COMPATIBLE, axis, key, version, 0, 0, out);
}

int
nm_pred_string_prefix(nm_axis axis, const char *key, const char *prefix,
                      nm_pred **out)
{
    return axis_leaf(NM_PRED_STRING_PREFIX, axis, key, prefix, 0, 0, out);
}

int
nm_pred_string_matches(nm_axis axis, const char *key, const char *pattern,
                       nm_pred **out)
{
    return axis_leaf(NM_PRED_STRING_MATCHES, axis, key, pattern, 0, 0, out);
}

int
nm_pred_metadata_exists(const char *key, nm_pred **out)
{
    return meta_leaf(NM_PRED_METADATA_EXISTS, key, NULL, 0, out);
}

int
nm_pred_metadata_equals(const char *key, const char *value, nm_pred **out)
{
    return meta_leaf(NM_PRED_METADATA_EQUALS, key, value, 0, out);
}

int
nm_pred_metadata_matches(const char *key, const char *pattern, nm_pred **out)
{
    return meta_leaf(NM_PRED_METADATA_MATCHES, key, pattern, 0, out);
}

int
nm_pred_metadata_numeric_at_least(const char *key, double t, nm_pred **out)
{
    return meta_leaf(NM_PRED_METADATA_NUMERIC_AT_LEAST, key, NULL, t, out);
}

static int
composite_api(nm_pred_kind kind, nm_pred *const *children, size_t n,
              nm_pred **out)
{
    if (out == NULL || (n && children == NULL)) {
        if (children) {
            for (size_t i = 0; i < n; i++) {
                nm_pred_free(children[i]);
            }
        }
        return nmi_err(NM_EINVAL, "out (and children when n > 0) non-NULL");
    }
    return nmi_pred_composite(kind, children, n, out);
}

int
nm_pred_and(nm_pred *const *children, size_t n, nm_pred **out)
{
    return composite_api(NM_PRED_AND, children, n, out);
}

int
nm_pred_or(nm_pred *const *children, size_t n, nm_pred **out)
{
    return composite_api(NM_PRED_OR, children, n, out);
}

int
nm_pred_not(nm_pred *child, nm_pred **out)
{
    if (child == NULL) {
        return nmi_err(NM_EINVAL, "child must be non-NULL");
    }
    return composite_api(NM_PRED_NOT, &child, 1, out);
}

int
nm_pred_clone(const nm_pred *p, nm_pred **out)
{
    if (p == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "p and out must be non-NULL");
    }
    if (!nmi_pred_is_composite(p->kind)) {
        nm_pred *c = nmi_pred_leaf(p->kind, p->axis, p->key, p->key_len,
                                   p->str, p->str_len, p->a, p->b);
        if (c == NULL) {
            return nmi_err(NM_ENOMEM, "out of memory cloning a predicate");
        }
        *out = c;
        return NM_OK;
    }
    nm_pred **kids = p->n ? calloc(p->n, sizeof(nm_pred *)) : NULL;
    if (p->n && kids == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory cloning a predicate");
    }
    for (size_t i = 0; i < p->n; i++) {
        int rc = nm_pred_clone(p->kids[i], &kids[i]);
        if (rc != NM_OK) {
            for (size_t j = 0; j < i; j++) {
                nm_pred_free(kids[j]);
            }
            free(kids);
            return rc;
        }
    }
    int rc = nmi_pred_composite(p->kind, kids, p->n, out);
    free(kids);
    return rc;
}

nm_pred_kind
nm_pred_get_kind(const nm_pred *p)
{
    return p ? p->kind : NM_PRED_AND;
}

size_t
nm_pred_child_count(const nm_pred *p)
{
    return p ? p->n : 0;
}

const nm_pred *
nm_pred_child(const nm_pred *p, size_t i)
{
    return p && i < p->n ? p->kids[i] : NULL;
}

uint32_t
nm_pred_cost(const nm_pred *p)
{
    return p ? p->cost : 0;
}

/* ================================================================== labels */

static void
put_key(nmi_sb *sb, const nm_pred *p)
{
    if (nmi_pred_is_axis_leaf(p->kind)) {
        nmi_sb_puts(sb, nm_axis_name(p->axis));
        nmi_sb_putc(sb, '.');
    }
    nmi_sb_putn(sb, p->key, p->key_len);
}

void
nmi_pred_label(const nm_pred *p, nmi_sb *sb)
{
    static const char *const names[] = {"Exists",
                                        "Equals",
                                        "NumericAtLeast",
                                        "NumericAtMost",
                                        "NumericInRange",
                                        "SemverAtLeast",
                                        "SemverAtMost",
                                        "SemverCompatible",
                                        "StringPrefix",
                                        "StringMatches",
                                        "MetadataExists",
                                        "MetadataEquals",
                                        "MetadataMatches",
                                        "MetadataNumericAtLeast",
                                        "And",
                                        "Or",
                                        "Not"};
    nmi_sb_puts(sb, names[p->kind]);
    switch (p->kind) {
    case NM_PRED_AND:
    case NM_PRED_OR:
        nmi_sb_putc(sb, '(');
        nmi_sb_putu64(sb, p->n);
        nmi_sb_puts(sb, " clauses)");
        return;
    case NM_PRED_NOT:
        return;
    default:
        break;
    }
    nmi_sb_putc(sb, '(');
    put_key(sb, p);
    switch (p->kind) {
    case NM_PRED_EQUALS:
    case NM_PRED_METADATA_EQUALS:
        nmi_sb_putc(sb, '=');
        nmi_sb_putn(sb, p->str, p->str_len);
        break;
    case NM_PRED_NUMERIC_AT_LEAST:
    case NM_PRED_METADATA_NUMERIC_AT_LEAST:
        nmi_sb_puts(sb, " >= ");
        nmi_sb_rust_f64(sb, p->a);
        break;
    case NM_PRED_NUMERIC_AT_MOST:
        nmi_sb_puts(sb, " <= ");
        nmi_sb_rust_f64(sb, p->a);
        break;
    case NM_PRED_NUMERIC_IN_RANGE:
        nmi_sb_puts(sb, " in [");
        nmi_sb_rust_f64(sb, p->a);
        nmi_sb_puts(sb, ", ");
        nmi_sb_rust_f64(sb, p->b);
        nmi_sb_putc(sb, ']');
        break;
    case NM_PRED_SEMVER_AT_LEAST:
        nmi_sb_puts(sb, " >= ");
        nmi_sb_putn(sb, p->str, p->str_len);
        break;
    case NM_PRED_SEMVER_AT_MOST:
        nmi_sb_puts(sb, " <= ");
        nmi_sb_putn(sb, p->str, p->str_len);
        break;
    case NM_PRED_SEMVER_COMPATIBLE:
        nmi_sb_puts(sb, " ~= ");
        nmi_sb_putn(sb, p->str, p->str_len);
        break;
    case NM_PRED_STRING_PREFIX:
        nmi_sb_puts(sb, " starts with ");
        nmi_sb_rust_debug_str(sb, p->str, p->str_len);
        break;
    case NM_PRED_STRING_MATCHES:
    case NM_PRED_METADATA_MATCHES:
        nmi_sb_puts(sb, " contains ");
        nmi_sb_rust_debug_str(sb, p->str, p->str_len);
        break;
    default:
        break; /* Exists, MetadataExists */
    }
    nmi_sb_putc(sb, ')');
}

int
nm_pred_label(const nm_pred *p, char **out)
{
    if (p == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "p and out must be non-NULL");
    }
    nmi_sb sb;
    nmi_sb_init(&sb);
    nmi_pred_label(p, &sb);
    return nmi_sb_take(&sb, out, NULL);
}

/* ================================================================== eval */

static const char *
ctx_meta(const nmi_ectx *c, const char *key)
{
    if (c->set) {
        return nmi_capset_meta(c->set, key);
    }
    for (size_t i = c->nmeta; i-- > 0;) {
        if (strcmp(c->mk[i], key) == 0) {
            return c->mv[i];
        }
    }
    return NULL;
}

static bool
num_ok(const nm_pred *p, const char *v, size_t n)
{
    double x;
    if (!nmi_parse_f64(v, n, &x)) {
        return false;
    }
    switch (p->kind) {
    case NM_PRED_NUMERIC_AT_LEAST:
        return x >= p->a;
    case NM_PRED_NUMERIC_AT_MOST:
        return x <= p->a;
    default: /* in range */
        return x >= p->a && x <= p->b;
    }
}

/* Substring test; both strings are NUL-terminated (tag values are the
 * suffix of their wire string). */
static bool
contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

/* One AxisValue tag's value against a value leaf. */
static bool
value_ok(const nm_pred *p, const char *v, size_t n)
{
    switch (p->kind) {
    case NM_PRED_EQUALS:
        return n == p->str_len && memcmp(v, p->str, n) == 0;
    case NM_PRED_NUMERIC_AT_LEAST:
    case NM_PRED_NUMERIC_AT_MOST:
    case NM_PRED_NUMERIC_IN_RANGE:
        return num_ok(p, v, n);
    case NM_PRED_SEMVER_AT_LEAST:
    case NM_PRED_SEMVER_AT_MOST:
    case NM_PRED_SEMVER_COMPATIBLE: {
        nmi_semver l;
        if (!nmi_parse_semver(v, n, &l)) {
            return false;
        }
        if (p->kind == NM_PRED_SEMVER_AT_LEAST) {
            return nmi_semver_cmp(&l, &p->ref) >= 0;
        }
        if (p->kind == NM_PRED_SEMVER_AT_MOST) {
            return nmi_semver_cmp(&l, &p->ref) <= 0;
        }
        return nmi_semver_caret(&l, &p->ref);
    }
    case NM_PRED_STRING_PREFIX:
        return n >= p->str_len && memcmp(v, p->str, p->str_len) == 0;
    case NM_PRED_STRING_MATCHES:
        return contains(v, p->str);
    default:
        return false;
    }
}

bool
nmi_pred_leaf_eval(const nm_pred *p, const nmi_ectx *c)
{
    if (nmi_pred_is_axis_leaf(p->kind)) {
        if ((p->kind == NM_PRED_SEMVER_AT_LEAST ||
             p->kind == NM_PRED_SEMVER_AT_MOST ||
             p->kind == NM_PRED_SEMVER_COMPATIBLE) &&
            !p->ref_ok) {
            return false;
        }
        size_t i = 0, end = c->ntags;
        char stack[128];
        if (c->set && p->key_len + 12 < sizeof(stack)) {
            /* A set is sorted: every tag with this axis and key starts
             * with "<axis>.<key>", a contiguous range. */
            const char *an = nm_axis_name(p->axis);
            size_t al = strlen(an);
            memcpy(stack, an, al);
            stack[al] = '.';
            memcpy(stack + al + 1, p->key, p->key_len);
            size_t pl = al + 1 + p->key_len;
            i = nmi_capset_lower_bound(c->set, stack, pl);
            for (end = i; end < c->ntags && c->tags[end].len >= pl &&
                          memcmp(c->tags[end].wire, stack, pl) == 0;
                 end++) {
            }
        }
        for (; i < end; i++) {
            const nmi_tag *t = &c->tags[i];
            if (!nmi_tag_has_key(t, p->axis, p->key, p->key_len)) {
                continue;
            }
            if (p->kind == NM_PRED_EXISTS) {
                return true;
            }
            if (t->kind == NM_TAG_AXIS_VALUE &&
                value_ok(p, nmi_tag_val(t), t->val_len)) {
                return true;
            }
        }
        return false;
    }
    const char *v = ctx_meta(c, p->key);
    if (v == NULL) {
        return false;
    }
    switch (p->kind) {
    case NM_PRED_METADATA_EXISTS:
        return true;
    case NM_PRED_METADATA_EQUALS:
        return strcmp(v, p->str) == 0;
    case NM_PRED_METADATA_MATCHES:
        return contains(v, p->str);
    case NM_PRED_METADATA_NUMERIC_AT_LEAST: {
        double x;
        return nmi_parse_f64(v, strlen(v), &x) && x >= p->a;
    }
    default:
        return false;
    }
}

bool
nmi_pred_eval(const nm_pred *p, const nmi_ectx *c, bool planned)
{
    switch (p->kind) {
    case NM_PRED_AND:
        for (size_t i = 0; i < p->n; i++) {
            size_t k = planned ? p->order[i] : i;
            if (!nmi_pred_eval(p->kids[k], c, planned)) {
                return false;
            }
        }
        return true;
    case NM_PRED_OR:
        for (size_t i = 0; i < p->n; i++) {
            size_t k = planned ? p->order[i] : i;
            if (nmi_pred_eval(p->kids[k], c, planned)) {
                return true;
            }
        }
        return false;
    case NM_PRED_NOT:
        return !nmi_pred_eval(p->kids[0], c, planned);
    default:
        return nmi_pred_leaf_eval(p, c);
    }
}

int
nmi_ectx_from_ctx(const nm_pred_ctx *ctx, nmi_ectx *c, nmi_tag *stack,
                  size_t stack_n, nmi_tag **heap)
{
    memset(c, 0, sizeof(*c));
    *heap = NULL;
    if ((ctx->ntags && ctx->tags == NULL) ||
        (ctx->nmeta && (ctx->meta_keys == NULL || ctx->meta_values == NULL))) {
        return nmi_err(NM_EINVAL, "context arrays must be non-NULL");
    }
    nmi_tag *tags = stack;
    if (ctx->ntags > stack_n) {
        tags = malloc(ctx->ntags * sizeof(nmi_tag));
        if (tags == NULL) {
            return nmi_err(NM_ENOMEM, "out of memory parsing context tags");
        }
        *heap = tags;
    }
    for (size_t i = 0; i < ctx->ntags; i++) {
        const char *s = ctx->tags[i];
        if (s == NULL) {
            free(*heap);
            *heap = NULL;
            return nmi_err(NM_EINVAL, "context tag %zu is NULL", i);
        }
        if (nmi_tag_parse_into(s, strlen(s), &tags[i]) != NM_OK) {
            free(*heap);
            *heap = NULL;
            return nmi_err(NM_EINVAL, "capability tag must be non-empty");
        }
        tags[i].wire = (char *)s;
    }
    for (size_t i = 0; i < ctx->nmeta; i++) {
        if (ctx->meta_keys[i] == NULL || ctx->meta_values[i] == NULL) {
            free(*heap);
            *heap = NULL;
            return nmi_err(NM_EINVAL, "context metadata %zu is NULL", i);
        }
    }
    c->tags = tags;
    c->ntags = ctx->ntags;
    c->mk = ctx->meta_keys;
    c->mv = ctx->meta_values;
    c->nmeta = ctx->nmeta;
    return NM_OK;
}

void
nmi_ectx_from_set(const nm_capset *set, nmi_ectx *c)
{
    memset(c, 0, sizeof(*c));
    c->tags = set->tags;
    c->ntags = set->ntags;
    c->set = set;
}

static int
eval_api(const nm_pred *p, const nm_pred_ctx *ctx, bool planned)
{
    if (p == NULL || ctx == NULL) {
        return nmi_err(NM_EINVAL, "p and ctx must be non-NULL");
    }
    nmi_tag stack[32], *heap;
    nmi_ectx c;
    int rc = nmi_ectx_from_ctx(ctx, &c, stack, NMI_ARRAY_LEN(stack), &heap);
    if (rc != NM_OK) {
        return rc;
    }
    bool r = nmi_pred_eval(p, &c, planned);
    free(heap);
    return r ? 1 : 0;
}

int
nm_pred_eval(const nm_pred *p, const nm_pred_ctx *ctx)
{
    return eval_api(p, ctx, true);
}

int
nm_pred_eval_unplanned(const nm_pred *p, const nm_pred_ctx *ctx)
{
    return eval_api(p, ctx, false);
}

int
nm_pred_eval_capset(const nm_pred *p, const nm_capset *set)
{
    if (p == NULL || set == NULL) {
        return nmi_err(NM_EINVAL, "p and set must be non-NULL");
    }
    nmi_ectx c;
    nmi_ectx_from_set(set, &c);
    return nmi_pred_eval(p, &c, true) ? 1 : 0;
}

/* ================================================================== trace */

void
nmi_trace_clear(nm_pred_trace *t)
{
    for (size_t i = 0; i < t->n; i++) {
        nmi_trace_clear(&t->kids[i]);
    }
    free(t->kids);
    free(t->label);
    t->kids = NULL;
    t->label = NULL;
    t->n = 0;
}

void
nm_pred_trace_free(nm_pred_trace *t)
{
    if (t == NULL) {
        return;
    }
    nmi_trace_clear(t);
    free(t);
}

/* Evaluate p into t (t zeroed by the caller). Returns 0 or -1 (ENOMEM). */
int
nmi_pred_trace(const nm_pred *p, const nmi_ectx *c, nm_pred_trace *t)
{
    nmi_sb sb;
    nmi_sb_init(&sb);
    nmi_pred_label(p, &sb);
    if (nmi_sb_take(&sb, &t->label, NULL) != NM_OK) {
        return -1;
    }
    if (!nmi_pred_is_composite(p->kind)) {
        t->result = nmi_pred_leaf_eval(p, c);
        return 0;
    }
    if (p->n) {
        t->kids = calloc(p->n, sizeof(nm_pred_trace));
        if (t->kids == NULL) {
            return -1;
        }
    }
    if (p->kind == NM_PRED_NOT) {
        t->n = 1;
        if (nmi_pred_trace(p->kids[0], c, &t->kids[0]) != 0) {
            return -1;
        }
        t->result = !t->kids[0].result;
        return 0;
    }
    bool is_and = p->kind == NM_PRED_AND;
    t->result = is_and;
    for (size_t i = 0; i < p->n; i++) {
        nm_pred_trace *k = &t->kids[t->n++];
        if (nmi_pred_trace(p->kids[p->order[i]], c, k) != 0) {
            return -1;
        }
        if (k->result != is_and) {
            t->result = !is_and;
            break;
        }
    }
    return 0;
}

int
nm_pred_eval_trace(const nm_pred *p, const nm_pred_ctx *ctx, bool *result,
                   nm_pred_trace **out)
{
    if (p == NULL || ctx == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "p, ctx and out must be non-NULL");
    }
    nmi_tag stack[32], *heap;
    nmi_ectx c;
    int rc = nmi_ectx_from_ctx(ctx, &c, stack, NMI_ARRAY_LEN(stack), &heap);
    if (rc != NM_OK) {
        return rc;
    }
    nm_pred_trace *t = calloc(1, sizeof(*t));
    if (t == NULL || nmi_pred_trace(p, &c, t) != 0) {
        nm_pred_trace_free(t);
        free(heap);
        return nmi_err(NM_ENOMEM, "out of memory tracing a predicate");
    }
    free(heap);
    if (result) {
        *result = t->result;
    }
    *out = t;
    return NM_OK;
}

const char *
nm_pred_trace_label(const nm_pred_trace *t)
{
    return t ? t->label : NULL;
}

bool
nm_pred_trace_result(const nm_pred_trace *t)
{
    return t ? t->result : false;
}

size_t
nm_pred_trace_child_count(const nm_pred_trace *t)
{
    return t ? t->n : 0;
}

const nm_pred_trace *
nm_pred_trace_child(const nm_pred_trace *t, size_t i)
{
    return t && i < t->n ? &t->kids[i] : NULL;
}

static void
trace_json(const nm_pred_trace *t, nmi_sb *sb)
{
    nmi_sb_puts(sb, "{\"children\":[");
    for (size_t i = 0; i < t->n; i++) {
        if (i) {
            nmi_sb_putc(sb, ',');
        }
        trace_json(&t->kids[i], sb);
    }
    nmi_sb_puts(sb, "],\"label\":");
    nmi_sb_json_str(sb, t->label, strlen(t->label));
    nmi_sb_puts(sb, t->result ? ",\"result\":true}" : ",\"result\":false}");
}

int
nm_pred_trace_to_json(const nm_pred_trace *t, char **out, size_t *len)
{
    if (t == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "t and out must be non-NULL");
    }
    nmi_sb sb;
    nmi_sb_init(&sb);
    trace_json(t, &sb);
    return nmi_sb_take(&sb, out, len);
}

static int
trace_redact(nm_pred_trace *t, const char *const *keys, size_t nkeys)
{
    char *nl;
    int rc = nmi_redact_label(t->label, keys, nkeys, &nl);
    if (rc != NM_OK) {
        return rc;
    }
    if (nl) {
        free(t->label);
        t->label = nl;
    }
    for (size_t i = 0; i < t->n; i++) {
        if ((rc = trace_redact(&t->kids[i], keys, nkeys)) != NM_OK) {
            return rc;
        }
    }
    return NM_OK;
}

int
nm_pred_trace_redact(nm_pred_trace *t, const char *const *keys, size_t nkeys)
{
    if (t == NULL || (nkeys && keys == NULL)) {
        return nmi_err(NM_EINVAL, "t (and keys when nkeys > 0) non-NULL");
    }
    return trace_redact(t, keys, nkeys);
}
