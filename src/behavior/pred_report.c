/* src/behavior/pred_report.c - PredicateDebugReport and the FFI-side label
 * redaction (behavior/predicate.rs, ffi/predicate_debug.rs). */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "behavior/pred_impl.h"
#include "core/core.h"

struct nm_pred_report {
    uint64_t total, matched;
    nm_pred_clause_stats *st; /* sorted bytewise by label */
    size_t n, cap;
};

int
nm_pred_report_new(nm_pred_report **out)
{
    if (out == NULL) {
        return nmi_err(NM_EINVAL, "out must be non-NULL");
    }
    *out = calloc(1, sizeof(nm_pred_report));
    return *out ? NM_OK : nmi_err(NM_ENOMEM, "out of memory");
}

void
nm_pred_report_free(nm_pred_report *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        free((char *)r->st[i].label);
    }
    free(r->st);
    free(r);
}

/* Add counts to `label` (copied when new). */
static int
bump(nm_pred_report *r, const char *label, uint64_t ev, uint64_t m)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(r->st[mid].label, label) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < r->n && strcmp(r->st[lo].label, label) == 0) {
        r->st[lo].evaluated += ev;
        r->st[lo].matched += m;
        return NM_OK;
    }
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 8;
        nm_pred_clause_stats *ns = realloc(r->st, nc * sizeof(*ns));
        if (ns == NULL) {
            return nmi_err(NM_ENOMEM, "out of memory in a debug report");
        }
        r->st = ns;
        r->cap = nc;
    }
    char *l = strdup(label);
    if (l == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory in a debug report");
    }
    memmove(&r->st[lo + 1], &r->st[lo], (r->n - lo) * sizeof(*r->st));
    r->st[lo].label = l;
    r->st[lo].evaluated = ev;
    r->st[lo].matched = m;
    r->n++;
    return NM_OK;
}

static int
fold(nm_pred_report *r, const nm_pred_trace *t)
{
    int rc = bump(r, t->label, 1, t->result ? 1 : 0);
    for (size_t i = 0; rc == NM_OK && i < t->n; i++) {
        rc = fold(r, &t->kids[i]);
    }
    return rc;
}

static int
add_ectx(nm_pred_report *r, const nm_pred *p, const nmi_ectx *c)
{
    nm_pred_trace t;
    memset(&t, 0, sizeof(t));
    if (nmi_pred_trace(p, c, &t) != 0) {
        nmi_trace_clear(&t);
        return nmi_err(NM_ENOMEM, "out of memory tracing a predicate");
    }
    r->total++;
    if (t.result) {
        r->matched++;
    }
    int rc = fold(r, &t);
    nmi_trace_clear(&t);
    return rc;
}

int
nm_pred_report_add(nm_pred_report *r, const nm_pred *p, const nm_pred_ctx *ctx)
{
    if (r == NULL || p == NULL || ctx == NULL) {
        return nmi_err(NM_EINVAL, "r, p and ctx must be non-NULL");
    }
    nmi_tag stack[32], *heap;
    nmi_ectx c;
    int rc = nmi_ectx_from_ctx(ctx, &c, stack, NMI_ARRAY_LEN(stack), &heap);
    if (rc == NM_OK) {
        rc = add_ectx(r, p, &c);
        free(heap);
    }
    return rc;
}

int
nm_pred_report_add_capset(nm_pred_report *r, const nm_pred *p,
                          const nm_capset *set)
{
    if (r == NULL || p == NULL || set == NULL) {
        return nmi_err(NM_EINVAL, "r, p and set must be non-NULL");
    }
    nmi_ectx c;
    nmi_ectx_from_set(set, &c);
    return add_ectx(r, p, &c);
}

uint64_t
nm_pred_report_total(const nm_pred_report *r)
{
    return r ? r->total : 0;
}

uint64_t
nm_pred_report_matched(const nm_pred_report *r)
{
    return r ? r->matched : 0;
}

size_t
nm_pred_report_stats_count(const nm_pred_report *r)
{
    return r ? r->n : 0;
}

const nm_pred_clause_stats *
nm_pred_report_stats_at(const nm_pred_report *r, size_t i)
{
    return r && i < r->n ? &r->st[i] : NULL;
}

int
nm_pred_report_to_json(const nm_pred_report *r, char **out, size_t *len)
{
    if (r == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "r and out must be non-NULL");
    }
    nmi_sb sb;
    nmi_sb_init(&sb);
    nmi_sb_puts(&sb, "{\"clause_stats\":[");
    for (size_t i = 0; i < r->n; i++) {
        if (i) {
            nmi_sb_putc(&sb, ',');
        }
        nmi_sb_puts(&sb, "{\"evaluated\":");
        nmi_sb_putu64(&sb, r->st[i].evaluated);
        nmi_sb_puts(&sb, ",\"label\":");
        nmi_sb_json_str(&sb, r->st[i].label, strlen(r->st[i].label));
        nmi_sb_puts(&sb, ",\"matched\":");
        nmi_sb_putu64(&sb, r->st[i].matched);
        nmi_sb_putc(&sb, '}');
    }
    nmi_sb_puts(&sb, "],\"matched\":");
    nmi_sb_putu64(&sb, r->matched);
    nmi_sb_puts(&sb, ",\"total_candidates\":");
    nmi_sb_putu64(&sb, r->total);
    nmi_sb_putc(&sb, '}');
    return nmi_sb_take(&sb, out, len);
}

/* ================================================================== redact */

static bool
is_key(const char *s, size_t n, const char *const *keys, size_t nkeys)
{
    for (size_t i = 0; i < nkeys; i++) {
        if (keys[i] && strlen(keys[i]) == n && memcmp(keys[i], s, n) == 0) {
            return true;
        }
    }
    return false;
}

static bool
starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

int
nmi_redact_label(const char *label, const char *const *keys, size_t nkeys,
                 char **out)
{
    static const struct {
        const char *head; /* "Variant(" */
        const char *sep;  /* between key and the redacted part */
        const char *tail; /* replacement after sep, incl. ')' */
        bool quoted;      /* inner must end with '"' */
    } rules[] = {
        {"MetadataEquals(", "=", "<redacted>)", false},
        {"MetadataMatches(", " contains \"", "<redacted>\")", true},
        {"MetadataNumericAtLeast(", " >= ", "<redacted>)", false},
    };
    *out = NULL;
    size_t ll = strlen(label);
    for (size_t r = 0; r < NMI_ARRAY_LEN(rules); r++) {
        size_t hl = strlen(rules[r].head);
        if (!starts(label, rules[r].head) || ll < hl + 1 ||
            label[ll - 1] != ')') {
            continue;
        }
        const char *inner = label + hl;
        size_t il = ll - hl - 1;
        if (rules[r].quoted && (il == 0 || inner[il - 1] != '"')) {
            return NM_OK;
        }
        size_t sl = strlen(rules[r].sep);
        for (size_t pos = 0; pos + sl <= il; pos++) {
            if (memcmp(inner + pos, rules[r].sep, sl) != 0 ||
                !is_key(inner, pos, keys, nkeys)) {
                continue;
            }
            nmi_sb sb;
            nmi_sb_init(&sb);
            nmi_sb_puts(&sb, rules[r].head);
            nmi_sb_putn(&sb, inner, pos);
            nmi_sb_puts(&sb, rules[r].sep);
            nmi_sb_puts(&sb, rules[r].tail);
            return nmi_sb_take(&sb, out, NULL);
        }
        return NM_OK;
    }
    return NM_OK;
}

int
nm_pred_report_redact(nm_pred_report *r, const char *const *keys, size_t nkeys)
{
    if (r == NULL || (nkeys && keys == NULL)) {
        return nmi_err(NM_EINVAL, "r (and keys when nkeys > 0) non-NULL");
    }
    nm_pred_report fresh;
    memset(&fresh, 0, sizeof(fresh));
    int rc = NM_OK;
    for (size_t i = 0; i < r->n && rc == NM_OK; i++) {
        char *nl;
        rc = nmi_redact_label(r->st[i].label, keys, nkeys, &nl);
        if (rc == NM_OK) {
            rc = bump(&fresh, nl ? nl : r->st[i].label, r->st[i].evaluated,
                      r->st[i].matched);
            free(nl);
        }
    }
    if (rc != NM_OK) {
        for (size_t i = 0; i < fresh.n; i++) {
            free((char *)fresh.st[i].label);
        }
        free(fresh.st);
        return rc;
    }
    for (size_t i = 0; i < r->n; i++) {
        free((char *)r->st[i].label);
    }
    free(r->st);
    r->st = fresh.st;
    r->n = fresh.n;
    r->cap = fresh.cap;
    return NM_OK;
}
