/* src/behavior/filter.c - CapabilityFilter::matches, CapabilityRequirement
 * scoring and the scope rules of scoped discovery
 * (behavior/capability.rs, fold/capability_bridge.rs). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "behavior/filter_impl.h"
#include "core/core.h"

/* Is a tag semantically equal to the (parsed) query in the set? The
 * exact string, or - for an axis value - the same with the other
 * separator (the key holds neither '=' nor ':', so both forms parse to the
 * same (axis, key, value)). */
static bool
has_semantic(const nm_capset *set, const char *q, size_t n)
{
    if (nmi_capset_find(set, q, n) >= 0) {
        return true;
    }
    nmi_tag t;
    if (nmi_tag_parse_into(q, n, &t) != NM_OK || t.kind != NM_TAG_AXIS_VALUE) {
        return false;
    }
    char stack[256];
    char *alt = n < sizeof(stack) ? stack : malloc(n + 1);
    if (alt == NULL) {
        return false;
    }
    memcpy(alt, q, n);
    alt[n] = '\0';
    alt[t.val_off - 1] = t.sep == '=' ? ':' : '=';
    bool hit = nmi_capset_find(set, alt, n) >= 0;
    if (alt != stack) {
        free(alt);
    }
    return hit;
}

/* software.<shape>.<x>.<field>=<want>, x without '.', either separator. */
static bool
has_indexed_value(const nm_capset *set, const char *shape, const char *field,
                  const char *want)
{
    size_t sl = strlen(shape), fl = strlen(field);
    for (size_t i = 0; i < set->ntags; i++) {
        const nmi_tag *t = &set->tags[i];
        if (t->kind != NM_TAG_AXIS_VALUE || t->axis != NM_AXIS_SOFTWARE) {
            continue;
        }
        const char *k = nmi_tag_key(t);
        size_t kl = t->key_len;
        if (kl < sl + 1 + fl + 1 || memcmp(k, shape, sl) != 0 ||
            k[sl] != '.' || k[kl - fl - 1] != '.' ||
            memcmp(k + kl - fl, field, fl) != 0) {
            continue;
        }
        /* the middle segment <x>: k[sl+1 .. kl-fl-1) without '.' */
        const char *x = k + sl + 1;
        size_t xl = kl - fl - 1 - (sl + 1);
        if (memchr(x, '.', xl) != NULL) {
            continue;
        }
        if (strcmp(nmi_tag_val(t), want) == 0) {
            return true;
        }
    }
    return false;
}

bool
nmi_filter_match(const nm_capfilter *f, const nm_capset *set,
                 const nmi_caps_facts *facts, bool skip_tags)
{
    if (!skip_tags) {
        for (size_t i = 0; i < f->n_require_tags; i++) {
            const char *q = f->require_tags[i];
            if (q == NULL || q[0] == '\0' ||
                !has_semantic(set, q, strlen(q))) {
                return false;
            }
        }
    }
    if (f->n_require_models) {
        bool any = false;
        for (size_t i = 0; !any && i < f->n_require_models; i++) {
            any = f->require_models[i] &&
                  has_indexed_value(set, "model", "id", f->require_models[i]);
        }
        if (!any) {
            return false;
        }
    }
    if (f->n_require_tools) {
        bool any = false;
        for (size_t i = 0; !any && i < f->n_require_tools; i++) {
            any =
                f->require_tools[i] &&
                has_indexed_value(set, "tool", "tool_id", f->require_tools[i]);
        }
        if (!any) {
            return false;
        }
    }
    bool need_gpu = f->require_gpu || f->gpu_vendor != NM_GPU_UNKNOWN ||
                    f->min_vram_gb > 0;
    nmi_caps_facts local;
    if (facts == NULL && (need_gpu || f->min_memory_gb)) {
        nmi_caps_facts_of(set, &local);
        facts = &local;
    }
    if (f->min_memory_gb && facts->memory_first < f->min_memory_gb) {
        return false;
    }
    if (need_gpu && !facts->gpu_present) {
        return false;
    }
    if (f->gpu_vendor != NM_GPU_UNKNOWN) {
        char want[64];
        int n = snprintf(want, sizeof(want), "hardware.gpu.vendor=%s",
                         nm_gpu_vendor_name(f->gpu_vendor));
        if (nmi_capset_find(set, want, (size_t)n) < 0) {
            return false;
        }
    }
    if (f->min_vram_gb > 0 && facts->vram_first < f->min_vram_gb &&
        facts->vram_decoded < f->min_vram_gb) {
        return false;
    }
    if (f->has_min_context_length || f->require_modalities) {
        nmi_model_row *rows;
        size_t n;
        if (nmi_caps_models(set, &rows, &n) != NM_OK) {
            return false;
        }
        bool ok = true;
        if (f->has_min_context_length) {
            bool any = false;
            for (size_t i = 0; i < n && !any; i++) {
                any = rows[i].m.context_length >= f->min_context_length;
            }
            ok = any;
        }
        for (uint32_t bit = 1; ok && bit <= NM_MODALITY_TOOL_USE; bit <<= 1) {
            if (!(f->require_modalities & bit)) {
                continue;
            }
            bool any = false;
            for (size_t i = 0; i < n && !any; i++) {
                any = (rows[i].m.modalities & bit) != 0;
            }
            ok = any;
        }
        free(rows);
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool
nm_capfilter_matches(const nm_capfilter *f, const nm_capset *set)
{
    if (set == NULL) {
        return false;
    }
    if (f == NULL) {
        return true;
    }
    return nmi_filter_match(f, set, NULL, false);
}

static float
min1(float v)
{
    return v < 1.0f ? v : 1.0f;
}

static float
clamp01(float w)
{
    if (w < 0.0f) {
        return 0.0f;
    }
    if (w > 1.0f) {
        return 1.0f;
    }
    return w; /* NaN stays NaN, as Rust's f32::clamp */
}

float
nmi_req_score(const nm_capreq *req, const nm_capset *set)
{
    nm_hardware hw;
    nm_capset_hardware(set, &hw);
    nmi_model_row *rows = NULL;
    size_t n = 0;
    (void)nmi_caps_models(set, &rows, &n);
    uint64_t max_tps = 0, loaded = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].m.tokens_per_sec > max_tps) {
            max_tps = rows[i].m.tokens_per_sec;
        }
        if (rows[i].m.loaded) {
            loaded++;
        }
    }
    free(rows);
    float wm = clamp01(req->w_memory), wv = clamp01(req->w_vram),
          ws = clamp01(req->w_speed), wl = clamp01(req->w_loaded);
    float mem = min1((float)hw.memory_gb / 256.0f);
    float vram = min1((float)hw.gpu.vram_gb / 80.0f);
    float tps = min1((float)max_tps / 1000.0f);
    float ld = n ? (float)loaded / (float)n : 0.0f;
    float s = 1.0f;
    s = s + wm * mem;
    s = s + wv * vram;
    s = s + ws * tps;
    s = s + wl * ld;
    return s;
}

float
nm_capreq_score(const nm_capreq *req, const nm_capset *set)
{
    if (req == NULL || set == NULL ||
        !nmi_filter_match(&req->filter, set, NULL, false)) {
        return 0.0f;
    }
    return nmi_req_score(req, set);
}

/* ================================================================== scope */

static const char SCOPE_TENANT[] = "scope:tenant:";
static const char SCOPE_REGION[] = "scope:region:";

/* The scope: tags are contiguous in a sorted set. */
static size_t
scope_begin(const nm_capset *set)
{
    size_t lo = 0, hi = set->ntags;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(set->tags[mid].wire, "scope:") < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static bool
starts(const char *s, const char *p, size_t pl)
{
    return strncmp(s, p, pl) == 0;
}

void
nmi_scope_of(const nm_capset *set, nmi_scope_summary *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = scope_begin(set);
         i < set->ntags && starts(set->tags[i].wire, "scope:", 6); i++) {
        const char *w = set->tags[i].wire;
        if (strcmp(w, "scope:subnet-local") == 0) {
            out->subnet_local = true;
        } else if (starts(w, SCOPE_TENANT, sizeof(SCOPE_TENANT) - 1) &&
                   w[sizeof(SCOPE_TENANT) - 1]) {
            out->tenants++;
        } else if (starts(w, SCOPE_REGION, sizeof(SCOPE_REGION) - 1) &&
                   w[sizeof(SCOPE_REGION) - 1]) {
            out->regions++;
        }
    }
}

nm_scope_class
nm_capset_scope_class(const nm_capset *set)
{
    if (set == NULL) {
        return NM_SCOPE_CLASS_GLOBAL;
    }
    nmi_scope_summary s;
    nmi_scope_of(set, &s);
    if (s.subnet_local) {
        return NM_SCOPE_CLASS_SUBNET_LOCAL;
    }
    return s.tenants || s.regions ? NM_SCOPE_CLASS_SCOPED
                                  : NM_SCOPE_CLASS_GLOBAL;
}

/* Is there a tag <prefix><label> for some label of the filter? */
static bool
label_hit(const nm_capset *set, const char *prefix,
          const nm_scope_filter *scope)
{
    size_t pl = strlen(prefix);
    for (size_t k = 0; k < scope->n_labels; k++) {
        const char *l = scope->labels ? scope->labels[k] : NULL;
        if (l == NULL || l[0] == '\0') {
            continue;
        }
        size_t ll = strlen(l);
        char stack[256];
        char *want = pl + ll < sizeof(stack) ? stack : malloc(pl + ll + 1);
        if (want == NULL) {
            return false;
        }
        memcpy(want, prefix, pl);
        memcpy(want + pl, l, ll + 1);
        bool hit = nmi_capset_find(set, want, pl + ll) >= 0;
        if (want != stack) {
            free(want);
        }
        if (hit) {
            return true;
        }
    }
    return false;
}

bool
nm_scope_matches(const nm_scope_filter *scope, uint64_t node_id,
                 const nm_capset *set)
{
    if (set == NULL) {
        return false;
    }
    if (scope == NULL) {
        return true;
    }
    nm_scope_kind kind = scope->kind;
    if (kind == NM_SCOPE_SAME_SUBNET) {
        return scope->same_subnet &&
               scope->same_subnet(node_id, set, scope->ctx);
    }
    nmi_scope_summary s;
    nmi_scope_of(set, &s);
    if (s.subnet_local) {
        return false;
    }
    bool global = s.tenants == 0 && s.regions == 0;
    switch (kind) {
    case NM_SCOPE_ANY:
        return true;
    case NM_SCOPE_GLOBAL_ONLY:
        return global;
    case NM_SCOPE_TENANTS:
        return global || (s.tenants && label_hit(set, SCOPE_TENANT, scope));
    case NM_SCOPE_REGIONS:
        return global || (s.regions && label_hit(set, SCOPE_REGION, scope));
    default:
        return false;
    }
}
