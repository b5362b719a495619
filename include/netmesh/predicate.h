/*
 * netmesh/predicate.h - capability predicates: the AST, the canonical
 * PredicateWire JSON (byte-compatible with upstream Net's
 * `behavior::predicate`), evaluation, evaluation with trace, the debug
 * report with redaction, and the `net-where` header helpers
 * (docs/capabilities.md).
 *
 * Rust seed -> C:
 *   pred!(exists "hardware.gpu")        -> nm_pred_exists(NM_AXIS_HARDWARE,
 *                                                        "gpu", &p)
 *   pred!(and [a, b])                   -> nm_pred_and((nm_pred*[]){a,b},2,&p)
 *   p.to_wire() + serde_json            -> nm_pred_to_wire_json
 *   PredicateWire::into_predicate       -> nm_pred_from_wire_json
 *   p.evaluate(&ctx) / evaluate_unplanned -> nm_pred_eval / _unplanned
 *   p.evaluate_with_trace(&ctx)         -> nm_pred_eval_trace
 *   PredicateDebugReport::from_evaluations -> nm_pred_report_*
 *   predicate_to_rpc_header / predicate_from_rpc_headers
 *       -> nm_pred_to_where_header / nm_pred_from_where_headers
 *
 * Ownership: a predicate node is a handle released with nm_pred_free,
 * which frees its whole subtree. nm_pred_and / _or / _not take ownership
 * of their children, also on failure (the children are freed then).
 * Traces and reports are handles with *_free; strings returned through
 * `char **` are malloc'd and owned by the caller.
 *
 * Threading: predicates are immutable after construction: any number of
 * threads may evaluate, encode or trace one concurrently. A report is
 * mutated by nm_pred_report_add / _redact (external synchronisation).
 *
 * Limits: a predicate tree may have at most NM_PRED_MAX_NODES nodes and
 * NM_PRED_MAX_DEPTH levels (upstream has no limit and recurses; netmesh
 * bounds it so hostile input cannot exhaust the stack or memory:
 * NM_ETOOBIG).
 */
#ifndef NETMESH_PREDICATE_H
#define NETMESH_PREDICATE_H

#include <stdbool.h>

#include <netmesh/caps.h>
#include <netmesh/common.h>
#include <netmesh/error.h>

NM_BEGIN_DECLS

#define NM_PRED_MAX_NODES 65536
#define NM_PRED_MAX_DEPTH 1024

/* The header that carries a predicate on an nRPC request, and the cap on
 * its value (checked on encode and before decode). */
#define NM_PRED_WHERE_HEADER "net-where"
#define NM_PRED_WHERE_MAX_BYTES 4096

/* Node kinds; nm_pred_kind_name gives the wire `kind` (snake_case). */
typedef enum nm_pred_kind {
    NM_PRED_EXISTS = 0,        /* exists {key}                     20 */
    NM_PRED_EQUALS,            /* equals {key,value}               21 */
    NM_PRED_NUMERIC_AT_LEAST,  /* {key,threshold}                  30 */
    NM_PRED_NUMERIC_AT_MOST,   /* {key,threshold}                  30 */
    NM_PRED_NUMERIC_IN_RANGE,  /* {key,min,max}                    30 */
    NM_PRED_SEMVER_AT_LEAST,   /* {key,version}                    60 */
    NM_PRED_SEMVER_AT_MOST,    /* {key,version}                    60 */
    NM_PRED_SEMVER_COMPATIBLE, /* {key,version} (caret)            60 */
    NM_PRED_STRING_PREFIX,     /* {key,prefix}                     40 */
    NM_PRED_STRING_MATCHES,    /* {key,pattern} (substring)        50 */
    NM_PRED_METADATA_EXISTS,   /* {key}                            10 */
    NM_PRED_METADATA_EQUALS,   /* {key,value}                      11 */
    NM_PRED_METADATA_MATCHES,  /* {key,pattern} (substring)        45 */
    NM_PRED_METADATA_NUMERIC_AT_LEAST, /* {key,threshold}              25 */
    NM_PRED_AND, /* {children}: empty And is true   sum */
    NM_PRED_OR,  /* {children}: empty Or is false   sum */
    NM_PRED_NOT  /* {child}                      child's */
} nm_pred_kind;

typedef struct nm_pred nm_pred;

/* nm_pred_kind_name - "exists", ..., "metadata_numeric_at_least", "and",
 * "or", "not" (NULL for an unknown value). */
NM_API const char *nm_pred_kind_name(nm_pred_kind k);

/* Leaf constructors. Axis leaves take (axis, key) - the tag key after
 * "<axis>." (e.g. "gpu.vram_gb"); metadata leaves take a metadata key.
 * Strings are copied. Errors: NM_EINVAL (NULL / bad axis), NM_ENOMEM. */
NM_API int nm_pred_exists(nm_axis axis, const char *key, nm_pred **out);
NM_API int nm_pred_equals(nm_axis axis, const char *key, const char *value,
                          nm_pred **out);
NM_API int nm_pred_numeric_at_least(nm_axis axis, const char *key,
                                    double threshold, nm_pred **out);
NM_API int nm_pred_numeric_at_most(nm_axis axis, const char *key,
                                   double threshold, nm_pred **out);
NM_API int nm_pred_numeric_in_range(nm_axis axis, const char *key, double min,
                                    double max, nm_pred **out);
NM_API int nm_pred_semver_at_least(nm_axis axis, const char *key,
                                   const char *version, nm_pred **out);
NM_API int nm_pred_semver_at_most(nm_axis axis, const char *key,
                                  const char *version, nm_pred **out);
NM_API int nm_pred_semver_compatible(nm_axis axis, const char *key,
                                     const char *version, nm_pred **out);
NM_API int nm_pred_string_prefix(nm_axis axis, const char *key,
                                 const char *prefix, nm_pred **out);
NM_API int nm_pred_string_matches(nm_axis axis, const char *key,
                                  const char *pattern, nm_pred **out);
NM_API int nm_pred_metadata_exists(const char *key, nm_pred **out);
NM_API int nm_pred_metadata_equals(const char *key, const char *value,
                                   nm_pred **out);
NM_API int nm_pred_metadata_matches(const char *key, const char *pattern,
                                    nm_pred **out);
NM_API int nm_pred_metadata_numeric_at_least(const char *key, double threshold,
                                             nm_pred **out);
/* Composites: take ownership of children[0..n) (also on failure). n may be
 * 0 (children may then be NULL). Errors: NM_EINVAL (a NULL child),
 * NM_ETOOBIG (limits), NM_ENOMEM. */
NM_API int nm_pred_and(nm_pred *const *children, size_t n, nm_pred **out);
NM_API int nm_pred_or(nm_pred *const *children, size_t n, nm_pred **out);
NM_API int nm_pred_not(nm_pred *child, nm_pred **out);
/* nm_pred_clone - a deep copy. */
NM_API int nm_pred_clone(const nm_pred *p, nm_pred **out);
/* nm_pred_free - free the node and its subtree (NULL is a no-op). */
NM_API void nm_pred_free(nm_pred *p);

/* Inspection. nm_pred_child: NULL past the end. */
NM_API nm_pred_kind nm_pred_get_kind(const nm_pred *p);
NM_API size_t nm_pred_child_count(const nm_pred *p);
NM_API const nm_pred *nm_pred_child(const nm_pred *p, size_t i);
/* nm_pred_cost - upstream's static planner cost (saturating u32). */
NM_API uint32_t nm_pred_cost(const nm_pred *p);
/* nm_pred_label - upstream's debug label ("Exists(hardware.gpu)",
 * "NumericAtLeast(hardware.memory_gb >= 64)", "And(2 clauses)", ...).
 * *out is malloc'd. */
NM_API int nm_pred_label(const nm_pred *p, char **out);

/* ------------------------------------------------------------ wire */

/* nm_pred_to_wire_json - the canonical PredicateWire JSON: compact
 * {"nodes":[..],"root_idx":N}, post-order (children left to right before
 * their parent, every occurrence emitted), node keys kind, key, then the
 * kind's fields in the order listed above; floats as serde_json writes
 * them (64.0, 1e+16, NaN/inf as null). *out is malloc'd. */
NM_API int nm_pred_to_wire_json(const nm_pred *p, char **out, size_t *len);
/* nm_pred_from_wire_json - decode a PredicateWire (any key order, unknown
 * fields ignored, duplicate/missing fields and unknown kinds rejected, f64
 * fields accept integers, u32 fields reject floats). Structural checks as
 * upstream: empty nodes, root_idx out of bounds, a reachable child index
 * >= its parent's (cycle). Unreachable nodes are ignored; shared children
 * are duplicated. Errors: NM_EINVAL (NULL), NM_EDECODE (detail),
 * NM_ETOOBIG (limits), NM_ENOMEM. */
NM_API NM_NODISCARD int nm_pred_from_wire_json(const char *json, size_t len,
                                               nm_pred **out);

/* One request header: name (NUL-terminated) and a byte value. */
typedef struct nm_header {
    const char *name;
    const void *value;
    size_t value_len;
} nm_header;

/* nm_pred_to_where_header - the canonical wire JSON as a `net-where`
 * header value (*value malloc'd, NUL-terminated; *len excludes the NUL).
 * NM_ETOOBIG when it exceeds NM_PRED_WHERE_MAX_BYTES. */
NM_API int nm_pred_to_where_header(const nm_pred *p, char **value,
                                   size_t *len);
/* nm_pred_from_where_headers - the first header named exactly "net-where"
 * wins. No such header: NM_OK with *out = NULL (no filter). A value over
 * NM_PRED_WHERE_MAX_BYTES: NM_ETOOBIG before any parsing; a malformed one:
 * NM_EDECODE - never silently ignored. */
NM_API NM_NODISCARD int nm_pred_from_where_headers(const nm_header *headers,
                                                   size_t n, nm_pred **out);

/* ------------------------------------------------------------ evaluation */

/* An evaluation context: tags (each parsed with Tag::parse; reserved tags
 * accepted, an empty tag is NM_EINVAL) and metadata (parallel arrays; when
 * a key repeats, the last occurrence wins). */
typedef struct nm_pred_ctx {
    const char *const *tags;
    size_t ntags;
    const char *const *meta_keys;
    const char *const *meta_values;
    size_t nmeta;
} nm_pred_ctx;

/* nm_pred_eval - evaluate with the planner (And/Or children in a stable
 * sort by static cost, short-circuit). Returns 1 (true), 0 (false) or a
 * negative NM_E* (NM_EINVAL for a NULL argument or an empty tag,
 * NM_ENOMEM). */
NM_API int nm_pred_eval(const nm_pred *p, const nm_pred_ctx *ctx);
/* nm_pred_eval_unplanned - declaration order; the same result. */
NM_API int nm_pred_eval_unplanned(const nm_pred *p, const nm_pred_ctx *ctx);
/* nm_pred_eval_capset - evaluate against a set's tags and metadata
 * (no allocation). 1, 0 or NM_EINVAL. */
NM_API int nm_pred_eval_capset(const nm_pred *p, const nm_capset *set);

/* ------------------------------------------------------------ trace */

typedef struct nm_pred_trace nm_pred_trace;

/* nm_pred_eval_trace - evaluate with the planner and record a trace: a
 * {label, result, children} tree in planned order holding only the
 * children that ran; Not has one child carrying the pre-negation result;
 * leaves have no children. *result gets the overall result.
 * Errors: NM_EINVAL, NM_ENOMEM. */
NM_API int nm_pred_eval_trace(const nm_pred *p, const nm_pred_ctx *ctx,
                              bool *result, nm_pred_trace **out);
NM_API void nm_pred_trace_free(nm_pred_trace *t);
/* Accessors (the root is the trace itself). */
NM_API const char *nm_pred_trace_label(const nm_pred_trace *t);
NM_API bool nm_pred_trace_result(const nm_pred_trace *t);
NM_API size_t nm_pred_trace_child_count(const nm_pred_trace *t);
NM_API const nm_pred_trace *nm_pred_trace_child(const nm_pred_trace *t,
                                                size_t i);
/* nm_pred_trace_to_json - {"children":[..],"label":"..","result":b}, keys
 * alphabetical as upstream's FFI emits them. */
NM_API int nm_pred_trace_to_json(const nm_pred_trace *t, char **out,
                                 size_t *len);
/* nm_pred_trace_redact - rewrite every label that names one of `keys`
 * (see nm_pred_report_redact). */
NM_API int nm_pred_trace_redact(nm_pred_trace *t, const char *const *keys,
                                size_t nkeys);

/* ------------------------------------------------------------ requests */

/* The JSON-level entry points (upstream's C ABI net_predicate_evaluate /
 * net_predicate_evaluate_with_trace take JSON; here one request document
 * carries all three parts, the input of `netmesh predicate eval`):
 *   {"wire": <PredicateWire>, "tags": [..], "metadata": {..}}
 * "wire" is required; "tags" (strings, Tag::parse, an empty tag is an
 * error) and "metadata" (string values; a repeated key keeps its last
 * value) default to empty; unknown fields are ignored, duplicate ones are
 * errors.
 *
 * nm_pred_request_eval - 1 (true), 0 (false), or NM_EINVAL / NM_EDECODE /
 * NM_ETOOBIG / NM_ENOMEM. */
NM_API int nm_pred_request_eval(const char *json, size_t len);
/* nm_pred_request_trace - the trace as nm_pred_trace_to_json writes it
 * (*trace_json malloc'd) and the result. */
NM_API int nm_pred_request_trace(const char *json, size_t len, bool *result,
                                 char **trace_json, size_t *trace_len);

/* ------------------------------------------------------------ report */

typedef struct nm_pred_report nm_pred_report;

/* One row of the report: a clause label and its counts. */
typedef struct nm_pred_clause_stats {
    const char *label;
    uint64_t evaluated;
    uint64_t matched;
} nm_pred_clause_stats;

/* PredicateDebugReport: total_candidates, matched, and per-label clause
 * stats (every trace node adds evaluated += 1 and matched += 1 when true,
 * merged by label; Not counts post-negation, its child pre-negation). */
NM_API int nm_pred_report_new(nm_pred_report **out);
NM_API void nm_pred_report_free(nm_pred_report *r);
/* nm_pred_report_add - evaluate `p` on one candidate and fold its trace
 * in. Errors: NM_EINVAL, NM_ENOMEM. */
NM_API int nm_pred_report_add(nm_pred_report *r, const nm_pred *p,
                              const nm_pred_ctx *ctx);
/* nm_pred_report_add_capset - the same for a capability set. */
NM_API int nm_pred_report_add_capset(nm_pred_report *r, const nm_pred *p,
                                     const nm_capset *set);
NM_API uint64_t nm_pred_report_total(const nm_pred_report *r);
NM_API uint64_t nm_pred_report_matched(const nm_pred_report *r);
/* Stats sorted bytewise by label; NULL past the end. */
NM_API size_t nm_pred_report_stats_count(const nm_pred_report *r);
NM_API const nm_pred_clause_stats *
nm_pred_report_stats_at(const nm_pred_report *r, size_t i);
/* nm_pred_report_to_json - {"clause_stats":[{"evaluated":n,"label":"..",
 * "matched":m}..],"matched":m,"total_candidates":n} (keys alphabetical). */
NM_API int nm_pred_report_to_json(const nm_pred_report *r, char **out,
                                  size_t *len);
/* nm_pred_report_redact - upstream's FFI redaction: a MetadataEquals(k=v)
 * label whose earliest '=' split names a key in `keys` becomes
 * MetadataEquals(k=<redacted>); likewise MetadataMatches(k contains "p")
 * -> MetadataMatches(k contains "<redacted>") and
 * MetadataNumericAtLeast(k >= t) -> MetadataNumericAtLeast(k >= <redacted>);
 * then equal labels are merged (counts summed) and re-sorted. Idempotent.
 * Errors: NM_EINVAL, NM_ENOMEM. */
NM_API int nm_pred_report_redact(nm_pred_report *r, const char *const *keys,
                                 size_t nkeys);

NM_END_DECLS

#endif
