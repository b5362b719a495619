/*
 * src/behavior/pred_impl.h - predicate internals shared by predicate.c,
 * pred_wire.c and pred_report.c.
 */
#ifndef NMI_BEHAVIOR_PRED_IMPL_H
#define NMI_BEHAVIOR_PRED_IMPL_H

#include <netmesh/predicate.h>

#include "behavior/caps_impl.h"

struct nm_pred {
    nm_pred_kind kind;
    nm_axis axis; /* axis leaves */
    char *key;    /* leaves: axis key or metadata key */
    size_t key_len;
    char *str; /* value / version / prefix / pattern */
    size_t str_len;
    double a, b;   /* threshold, or min / max */
    uint32_t cost; /* static planner cost (saturating) */
    uint32_t depth;
    uint32_t nodes; /* subtree size */
    size_t n;
    nm_pred **kids;
    uint32_t *order; /* And/Or: children in stable cost order */
    nmi_semver ref;  /* semver leaves: the parsed reference */
    bool ref_ok;
};

struct nm_pred_trace {
    char *label;
    bool result;
    size_t n;
    nm_pred_trace *kids;
};

/* Evaluation context: parsed tags plus metadata from a set (sorted) or
 * from parallel arrays (the last occurrence of a key wins). */
typedef struct nmi_ectx {
    const nmi_tag *tags;
    size_t ntags;
    const nm_capset *set;
    const char *const *mk;
    const char *const *mv;
    size_t nmeta;
} nmi_ectx;

int nmi_pred_kind_from_name(const char *s, nm_pred_kind *out);
bool nmi_pred_is_axis_leaf(nm_pred_kind k);
bool nmi_pred_is_composite(nm_pred_kind k);

/* A leaf (strings copied); NULL on ENOMEM. */
nm_pred *nmi_pred_leaf(nm_pred_kind kind, nm_axis axis, const char *key,
                       size_t klen, const char *str, size_t slen, double a,
                       double b);
/* A composite owning kids[0..n) (freed on failure). */
int nmi_pred_composite(nm_pred_kind kind, nm_pred *const *kids, size_t n,
                       nm_pred **out);

void nmi_pred_label(const nm_pred *p, nmi_sb *sb);
bool nmi_pred_leaf_eval(const nm_pred *p, const nmi_ectx *c);
bool nmi_pred_eval(const nm_pred *p, const nmi_ectx *c, bool planned);
int nmi_pred_trace(const nm_pred *p, const nmi_ectx *c, nm_pred_trace *t);
void nmi_trace_clear(nm_pred_trace *t);

/* Build a context from the public form; tags parsed into `stack` when
 * they fit, else into *heap (caller frees). */
int nmi_ectx_from_ctx(const nm_pred_ctx *ctx, nmi_ectx *c, nmi_tag *stack,
                      size_t stack_n, nmi_tag **heap);
void nmi_ectx_from_set(const nm_capset *set, nmi_ectx *c);

/* Redact one label: *out = the rewritten label (malloc'd), or NULL when it
 * is unchanged. NM_OK or NM_ENOMEM. */
int nmi_redact_label(const char *label, const char *const *keys, size_t nkeys,
                     char **out);

/* Decode a PredicateWire from a parsed JSON value. */
int nmi_pred_from_bj(const nmi_bj *v, nm_pred **out);

#endif
