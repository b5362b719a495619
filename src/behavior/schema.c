/* src/behavior/schema.c - validate_capabilities against upstream's axis
 * schema (behavior/schema.rs) and the FFI's report rendering
 * (ffi/schema.rs). */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "behavior/caps_impl.h"
#include "core/core.h"

typedef enum vtype {
    VT_PRESENCE,
    VT_NUMBER,
    VT_STRING,
    VT_ENUMERATION,
    VT_BOOL,
    VT_CSV
} vtype;

static const char *const vtype_names[] = {"presence",    "number", "string",
                                          "enumeration", "bool",   "csv"};

typedef struct kentry {
    const char *key;
    vtype type;
} kentry;

static const kentry hardware_keys[] = {
    {"cpu_cores", VT_NUMBER},
    {"cpu_threads", VT_NUMBER},
    {"memory_gb", VT_NUMBER},
    {"gpu", VT_PRESENCE},
    {"gpu.vendor", VT_ENUMERATION},
    {"gpu.model", VT_STRING},
    {"gpu.vram_gb", VT_NUMBER},
    {"gpu.compute_units", VT_NUMBER},
    {"gpu.tensor_cores", VT_NUMBER},
    {"gpu.fp16_tflops_x10", VT_NUMBER},
    {"storage_gb", VT_NUMBER},
    {"network_gbps", VT_NUMBER},
    {"limits.max_concurrent_requests", VT_NUMBER},
    {"limits.max_tokens_per_request", VT_NUMBER},
    {"limits.rate_limit_rpm", VT_NUMBER},
    {"limits.max_batch_size", VT_NUMBER},
    {"limits.max_input_bytes", VT_NUMBER},
    {"limits.max_output_bytes", VT_NUMBER},
};

static const kentry software_keys[] = {
    {"os", VT_STRING},
    {"os_version", VT_STRING},
    {"cuda_version", VT_STRING},
};

static const kentry model_subkeys[] = {
    {"id", VT_STRING},
    {"family", VT_STRING},
    {"parameters_b_x10", VT_NUMBER},
    {"context_length", VT_NUMBER},
    {"quantization", VT_STRING},
    {"modalities", VT_CSV},
    {"tokens_per_sec", VT_NUMBER},
    {"loaded", VT_BOOL},
};

static const kentry tool_subkeys[] = {
    {"tool_id", VT_STRING},           {"name", VT_STRING},
    {"version", VT_STRING},           {"requires", VT_CSV},
    {"estimated_time_ms", VT_NUMBER}, {"stateless", VT_BOOL},
};

typedef struct shape {
    const char *prefix;
    bool indexed;       /* IndexedCollection; else KeyedMap */
    vtype map_type;     /* KeyedMap value type */
    const kentry *subs; /* IndexedCollection sub-keys */
    size_t nsubs;
} shape;

static const shape software_shapes[] = {
    {"runtime.", false, VT_STRING, NULL, 0},
    {"framework.", false, VT_STRING, NULL, 0},
    {"driver.", false, VT_STRING, NULL, 0},
    {"model.", true, VT_STRING, model_subkeys, NMI_ARRAY_LEN(model_subkeys)},
    {"tool.", true, VT_STRING, tool_subkeys, NMI_ARRAY_LEN(tool_subkeys)},
};

static const char *const metadata_reserved[] = {
    "intent", "colocate-with", "colocate-with-strict", "priority", "owner"};

/* ------------------------------------------------------------ report */

typedef struct item {
    nm_caps_issue is;
    char *json; /* compact JSON, keys alphabetical (also the sort key) */
    char *owned[6];
} item;

struct nm_caps_report {
    item *err, *warn;
    size_t nerr, nwarn, cerr, cwarn;
    bool oom;
};

static char *
dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Render an issue as upstream's FFI does: serde_json's json! map (keys in
 * alphabetical order), compact. */
static char *
render(const nm_caps_issue *is)
{
    nmi_sb sb;
    nmi_sb_init(&sb);
    /* Alphabetical over every possible key: actual, actual_bytes, axis,
     * expected, index, key, kind, prefix, soft_cap_bytes, tag. */
    bool sizes = strcmp(is->kind, "metadata_oversize") == 0;
    bool first = true;
#define SEP()                                                                 \
    do {                                                                      \
        nmi_sb_putc(&sb, first ? '{' : ',');                                  \
        first = false;                                                        \
    } while (0)
#define STR(name, v)                                                          \
    do {                                                                      \
        if (v) {                                                              \
            SEP();                                                            \
            nmi_sb_puts(&sb, "\"" name "\":");                                \
            nmi_sb_json_str(&sb, (v), strlen(v));                             \
        }                                                                     \
    } while (0)
#define NUM(name, v)                                                          \
    do {                                                                      \
        if (sizes) {                                                          \
            SEP();                                                            \
            nmi_sb_puts(&sb, "\"" name "\":");                                \
            nmi_sb_putu64(&sb, (v));                                          \
        }                                                                     \
    } while (0)
    STR("actual", is->actual);
    NUM("actual_bytes", is->actual_bytes);
    STR("axis", is->axis);
    STR("expected", is->expected);
    STR("index", is->index);
    STR("key", is->key);
    STR("kind", is->kind);
    STR("prefix", is->prefix);
    NUM("soft_cap_bytes", is->soft_cap_bytes);
    STR("tag", is->tag);
#undef SEP
#undef STR
#undef NUM
    nmi_sb_putc(&sb, '}');
    char *out;
    return nmi_sb_take(&sb, &out, NULL) == NM_OK ? out : NULL;
}

/* Append an issue; string fields are copied (n = length, -1 = strlen). */
static void
push(nm_caps_report *r, bool error, const char *kind, const char *axis,
     const char *key, size_t klen, const char *expected, const char *actual,
     const char *prefix, const char *index, size_t ilen, const char *tag,
     uint64_t soft, uint64_t actual_bytes)
{
    if (r->oom) {
        return;
    }
    item **arr = error ? &r->err : &r->warn;
    size_t *n = error ? &r->nerr : &r->nwarn;
    size_t *cap = error ? &r->cerr : &r->cwarn;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        item *ni = realloc(*arr, nc * sizeof(item));
        if (ni == NULL) {
            r->oom = true;
            return;
        }
        *arr = ni;
        *cap = nc;
    }
    item *it = &(*arr)[*n];
    memset(it, 0, sizeof(*it));
    it->is.kind = kind;
    it->is.axis = axis;
    it->is.expected = expected;
    it->is.prefix = prefix;
    it->is.soft_cap_bytes = soft;
    it->is.actual_bytes = actual_bytes;
    int k = 0;
    if (key) {
        it->is.key = it->owned[k++] = dupn(key, klen);
    }
    if (actual) {
        it->is.actual = it->owned[k++] = strdup(actual);
    }
    if (index) {
        it->is.index = it->owned[k++] = dupn(index, ilen);
    }
    if (tag) {
        it->is.tag = it->owned[k++] = strdup(tag);
    }
    for (int j = 0; j < k; j++) {
        if (it->owned[j] == NULL) {
            r->oom = true;
        }
    }
    it->json = r->oom ? NULL : render(&it->is);
    if (it->json == NULL) {
        r->oom = true;
    }
    (*n)++;
}

static void
check_value(nm_caps_report *r, const char *axis, const char *key, size_t klen,
            vtype expected, const nmi_tag *t)
{
    bool has_value = t->kind == NM_TAG_AXIS_VALUE;
    const char *v = has_value ? nmi_tag_val(t) : NULL;
    if (expected == VT_PRESENCE) {
        if (has_value) {
            push(r, true, "type_mismatch", axis, key, klen, "presence", v,
                 NULL, NULL, 0, NULL, 0, 0);
        }
        return;
    }
    if (!has_value) {
        push(r, true, "type_mismatch", axis, key, klen, vtype_names[expected],
             "<no value>", NULL, NULL, 0, NULL, 0, 0);
        return;
    }
    bool ok;
    uint64_t u;
    switch (expected) {
    case VT_NUMBER:
        ok = nmi_parse_u64(v, t->val_len, &u);
        break;
    case VT_BOOL:
        ok = strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
        break;
    default: /* string, enumeration, csv */
        ok = t->val_len > 0;
        break;
    }
    if (!ok) {
        push(r, true, "type_mismatch", axis, key, klen, vtype_names[expected],
             v, NULL, NULL, 0, NULL, 0, 0);
    }
}

static void
validate_axis(nm_caps_report *r, const nmi_tag *t)
{
    const char *axis = nm_axis_name((nm_axis)t->axis);
    const char *key = nmi_tag_key(t);
    size_t kl = t->key_len;
    const kentry *keys = NULL;
    size_t nkeys = 0;
    const shape *shapes = NULL;
    size_t nshapes = 0;
    if (t->axis == NM_AXIS_HARDWARE) {
        keys = hardware_keys;
        nkeys = NMI_ARRAY_LEN(hardware_keys);
    } else if (t->axis == NM_AXIS_SOFTWARE) {
        keys = software_keys;
        nkeys = NMI_ARRAY_LEN(software_keys);
        shapes = software_shapes;
        nshapes = NMI_ARRAY_LEN(software_shapes);
    }
    for (size_t i = 0; i < nkeys; i++) {
        if (strlen(keys[i].key) == kl && memcmp(keys[i].key, key, kl) == 0) {
            check_value(r, axis, keys[i].key, kl, keys[i].type, t);
            return;
        }
    }
    for (size_t s = 0; s < nshapes; s++) {
        const shape *sh = &shapes[s];
        size_t pl = strlen(sh->prefix);
        if (kl < pl || memcmp(key, sh->prefix, pl) != 0) {
            continue;
        }
        const char *rest = key + pl;
        size_t rl = kl - pl;
        if (sh->indexed) {
            const char *dot = memchr(rest, '.', rl);
            if (dot == NULL) {
                continue; /* falls through to unknown_key */
            }
            size_t il = (size_t)(dot - rest);
            uint32_t idx;
            if (!nmi_parse_u32(rest, il, &idx)) {
                push(r, true, "index_malformed", axis, NULL, 0, NULL, NULL,
                     sh->prefix, rest, il, t->wire, 0, 0);
                return;
            }
            const char *sub = dot + 1;
            size_t sl = rl - il - 1;
            for (size_t k = 0; k < sh->nsubs; k++) {
                if (strlen(sh->subs[k].key) == sl &&
                    memcmp(sh->subs[k].key, sub, sl) == 0) {
                    check_value(r, axis, sub, sl, sh->subs[k].type, t);
                    return;
                }
            }
            push(r, false, "unknown_key", axis, key, kl, NULL, NULL, NULL,
                 NULL, 0, NULL, 0, 0);
            return;
        }
        if (rl > 0) {
            check_value(r, axis, sh->prefix, pl, sh->map_type, t);
            return;
        }
    }
    push(r, false, "unknown_key", axis, key, kl, NULL, NULL, NULL, NULL, 0,
         NULL, 0, 0);
}

static int
cmp_item(const void *a, const void *b)
{
    return strcmp(((const item *)a)->json, ((const item *)b)->json);
}

void
nm_caps_report_free(nm_caps_report *r)
{
    if (r == NULL) {
        return;
    }
    item *lists[2] = {r->err, r->warn};
    size_t ns[2] = {r->nerr, r->nwarn};
    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; i < ns[l]; i++) {
            free(lists[l][i].json);
            for (int k = 0; k < 6; k++) {
                free(lists[l][i].owned[k]);
            }
        }
        free(lists[l]);
    }
    free(r);
}

int
nm_caps_validate(const nm_capset *set, nm_caps_report **out)
{
    if (set == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "set and out must be non-NULL");
    }
    nm_caps_report *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory validating");
    }
    for (size_t i = 0; i < set->ntags; i++) {
        const nmi_tag *t = &set->tags[i];
        switch (t->kind) {
        case NM_TAG_AXIS_PRESENT:
        case NM_TAG_AXIS_VALUE:
            validate_axis(r, t);
            break;
        case NM_TAG_LEGACY:
            push(r, false, "legacy_tag", NULL, NULL, 0, NULL, NULL, NULL, NULL,
                 0, t->wire, 0, 0);
            break;
        default:
            break; /* reserved: unchecked */
        }
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < set->nmeta; i++) {
        const char *k = set->meta[i].key;
        bytes += strlen(k) + strlen(set->meta[i].value);
        for (size_t j = 0; j < NMI_ARRAY_LEN(metadata_reserved); j++) {
            if (strcmp(k, metadata_reserved[j]) == 0) {
                push(r, false, "metadata_reserved_key", NULL, k, strlen(k),
                     NULL, NULL, NULL, NULL, 0, NULL, 0, 0);
                break;
            }
        }
        /* The reserved-prefix list is empty upstream at HEAD, so
         * metadata_reserved_prefix never fires. */
    }
    if (bytes > NM_CAPS_METADATA_SOFT_CAP) {
        push(r, false, "metadata_oversize", NULL, NULL, 0, NULL, NULL, NULL,
             NULL, 0, NULL, NM_CAPS_METADATA_SOFT_CAP, bytes);
    }
    if (r->oom) {
        nm_caps_report_free(r);
        return nmi_err(NM_ENOMEM, "out of memory validating");
    }
    if (r->nerr > 1) {
        qsort(r->err, r->nerr, sizeof(item), cmp_item);
    }
    if (r->nwarn > 1) {
        qsort(r->warn, r->nwarn, sizeof(item), cmp_item);
    }
    *out = r;
    return NM_OK;
}

size_t
nm_caps_report_error_count(const nm_caps_report *r)
{
    return r ? r->nerr : 0;
}

size_t
nm_caps_report_warning_count(const nm_caps_report *r)
{
    return r ? r->nwarn : 0;
}

const nm_caps_issue *
nm_caps_report_error(const nm_caps_report *r, size_t i)
{
    return r && i < r->nerr ? &r->err[i].is : NULL;
}

const nm_caps_issue *
nm_caps_report_warning(const nm_caps_report *r, size_t i)
{
    return r && i < r->nwarn ? &r->warn[i].is : NULL;
}

int
nm_caps_report_to_json(const nm_caps_report *r, char **out, size_t *len)
{
    if (r == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "r and out must be non-NULL");
    }
    nmi_sb sb;
    nmi_sb_init(&sb);
    nmi_sb_puts(&sb, "{\"errors\":[");
    for (size_t i = 0; i < r->nerr; i++) {
        if (i) {
            nmi_sb_putc(&sb, ',');
        }
        nmi_sb_puts(&sb, r->err[i].json);
    }
    nmi_sb_puts(&sb, "],\"warnings\":[");
    for (size_t i = 0; i < r->nwarn; i++) {
        if (i) {
            nmi_sb_putc(&sb, ',');
        }
        nmi_sb_puts(&sb, r->warn[i].json);
    }
    nmi_sb_puts(&sb, "]}");
    return nmi_sb_take(&sb, out, len);
}
