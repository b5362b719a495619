/*
 * src/behavior/caps_impl.h - internals shared by the behavior layer:
 * parsed tags, the capability set layout, Rust parse rules, semver.
 */
#ifndef NMI_BEHAVIOR_CAPS_IMPL_H
#define NMI_BEHAVIOR_CAPS_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/caps.h>

#include "behavior/bjson.h"

/* ------------------------------------------------------------ tags */

/* A tag owned by a set: its wire string and the parse, as offsets. */
typedef struct nmi_tag {
    char *wire;
    uint32_t len;
    uint8_t kind;    /* nm_tag_kind */
    uint8_t axis;    /* nm_axis */
    char sep;        /* '=' / ':' / 0 */
    uint8_t rprefix; /* reserved: index into the prefix table */
    uint32_t key_off, key_len;
    uint32_t val_off, val_len;
} nmi_tag;

typedef struct nmi_meta {
    char *key;
    char *value;
} nmi_meta;

struct nm_capset {
    nmi_tag *tags; /* sorted bytewise by wire, unique */
    size_t ntags, tcap;
    nmi_meta *meta; /* sorted bytewise by key, unique */
    size_t nmeta, mcap;
};

/* Parse `s` (length n, NUL-terminated) into t's shape fields (t->wire is
 * not touched). NM_EINVAL for the empty string. */
int nmi_tag_parse_into(const char *s, size_t n, nmi_tag *t);

static inline const char *
nmi_tag_key(const nmi_tag *t)
{
    return t->wire + t->key_off;
}

static inline const char *
nmi_tag_val(const nmi_tag *t)
{
    return t->wire + t->val_off;
}

/* semantic_eq over two parsed tags. */
bool nmi_tag_sem_eq(const nmi_tag *a, const nmi_tag *b);
/* The separator-normalised form ("=" for axis values) into sb: two tags
 * are semantic_eq iff their normalised forms are equal. */
void nmi_tag_normalise(const nmi_tag *t, nmi_sb *sb);
/* Does the tag have exactly this axis and key (byte-wise)? */
bool nmi_tag_has_key(const nmi_tag *t, nm_axis axis, const char *key,
                     size_t klen);

/* ------------------------------------------------------------ sets */

/* Insert an already parsed tag string (exact dedup). NM_OK, NM_ENOMEM. */
int nmi_capset_insert(nm_capset *set, const char *s, size_t n);
/* Index of the first tag >= (s, n) in bytewise order. */
size_t nmi_capset_lower_bound(const nm_capset *set, const char *s, size_t n);
/* Find the index of the exact tag, or -1. */
long nmi_capset_find(const nm_capset *set, const char *s, size_t n);
/* The metadata value of key or NULL (binary search). */
const char *nmi_capset_meta(const nm_capset *set, const char *key);
/* Decode a capability set from a parsed JSON object (used by the CLI's
 * {"prev":..,"curr":..} too). `what` names the value in errors. */
int nmi_capset_from_bj(const nmi_bj *v, const char *what, nm_capset **out);

/* ------------------------------------------------------------ numbers */

/* Rust `str::parse::<u64>()`: optional '+', >= 1 ASCII digit, fits. */
bool nmi_parse_u64(const char *s, size_t n, uint64_t *out);
bool nmi_parse_u32(const char *s, size_t n, uint32_t *out);
bool nmi_parse_u8(const char *s, size_t n, uint8_t *out);
/* Rust `str::parse::<f64>()` (see docs: sign, decimal or inf/infinity/nan,
 * no whitespace, no hex, correctly rounded). */
bool nmi_parse_f64(const char *s, size_t n, double *out);

typedef struct nmi_semver {
    uint64_t major, minor, patch;
} nmi_semver;

/* Upstream's parse_semver: cut at the first '-' or '+', split on '.',
 * trim Unicode whitespace per part, u64 each, missing minor/patch = 0. */
bool nmi_parse_semver(const char *s, size_t n, nmi_semver *out);
int nmi_semver_cmp(const nmi_semver *a, const nmi_semver *b);
/* Caret rule, lhs = tag value, rhs = reference. */
bool nmi_semver_caret(const nmi_semver *lhs, const nmi_semver *rhs);

/* ------------------------------------------------------------ decoders */

/* Per-set facts the filter and the score need, computed in one pass. */
typedef struct nmi_caps_facts {
    bool has_memory_first;
    uint32_t memory_first;   /* first hardware.memory_gb, u32 (bad -> 0) */
    uint32_t vram_first;     /* first hardware.gpu.vram_gb, u32 (bad -> 0) */
    uint64_t memory_decoded; /* last hardware.memory_gb, u64 (bad -> 0) */
    uint64_t vram_decoded;   /* last hardware.gpu.vram_gb, u64 */
    bool gpu_present;        /* exact presence tag hardware.gpu */
} nmi_caps_facts;

void nmi_caps_facts_of(const nm_capset *set, nmi_caps_facts *f);

/* Decoded models: indices, context lengths, modalities, tps, loaded. */
typedef struct nmi_model_row {
    uint32_t index;
    nm_model m;
    const char *modalities_csv;
} nmi_model_row;

/* Decode every model of the set (malloc'd rows in index order; *n rows).
 * Strings point into the set. NM_OK or NM_ENOMEM. */
int nmi_caps_models(const nm_capset *set, nmi_model_row **rows, size_t *n);
/* CSV of modality names -> bits (unknown names ignored). */
uint32_t nmi_modalities_from_csv(const char *csv);

#endif
