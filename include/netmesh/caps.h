/*
 * netmesh/caps.h - capability tags, capability sets, typed builders, the
 * local capability index with filters and scoped discovery, schema
 * validation and set diffs, compatible with upstream Net's
 * `behavior::{tag, capability, tag_codec, schema}` (docs/capabilities.md).
 *
 * Rust seed -> C:
 *   Tag::parse / parse_user / semantic_eq
 *       -> nm_tag_parse / nm_tag_parse_user / nm_tag_semantic_eq
 *   CapabilitySet::new().add_tag(..).with_metadata(..).with_hardware(hw)
 *       -> nm_capset_new, nm_capset_add_tag, nm_capset_set_metadata,
 *          nm_capset_set_hardware (typed structs below)
 *   .with_tenant_scope / with_region_scope / with_subnet_local_scope
 *       -> nm_capset_set_tenant_scope / ..._region_scope / ..._subnet_local
 *   serde_json of CapabilitySet -> nm_capset_to_json / nm_capset_from_json
 *   CapabilityFilter::new().require_gpu().with_min_vram(16)
 *       -> nm_capfilter f = NM_CAPFILTER_INIT; f.require_gpu = true; ...
 *   mesh.find_nodes(filter) / find_nodes_scoped / find_best_node
 *       -> nm_capindex_find / nm_capindex_find_scoped / nm_capindex_best
 *   validate_capabilities(caps) -> nm_caps_validate (+ _to_json)
 *   caps.diff(prev) -> nm_capset_diff (+ _to_json)
 *
 * Ownership: every handle (nm_capset, nm_capindex, nm_caps_report,
 * nm_caps_diff) is created by one function and released by its *_free;
 * strings returned through `char **` are malloc'd and owned by the caller
 * (free()). Functions never keep pointers to caller memory after they
 * return: sets and the index copy what they are given.
 *
 * Threading: a nm_capset, report or diff is a plain value: any number of
 * threads may read one concurrently; mutation needs external
 * synchronisation. A nm_capindex is internally synchronised (a read-write
 * lock): every nm_capindex_* call is safe from any thread.
 *
 * Strings are NUL-terminated UTF-8 (JSON decoding rejects U+0000 inside
 * strings: netmesh strings are C strings).
 */
#ifndef NETMESH_CAPS_H
#define NETMESH_CAPS_H

#include <stdbool.h>

#include <netmesh/common.h>
#include <netmesh/error.h>

NM_BEGIN_DECLS

/* ================================================================== tags */

/* The four taxonomy axes (lowercase, case-sensitive in tags and JSON). */
typedef enum nm_axis {
    NM_AXIS_HARDWARE = 0,
    NM_AXIS_SOFTWARE = 1,
    NM_AXIS_DEVICES = 2,
    NM_AXIS_DATAFORTS = 3
} nm_axis;

/* The shape of a parsed tag. */
typedef enum nm_tag_kind {
    NM_TAG_AXIS_PRESENT = 0, /* <axis>.<key>                 hardware.gpu */
    NM_TAG_AXIS_VALUE = 1, /* <axis>.<key>=<v> / :<v>  hardware.memory_gb=64 */
    NM_TAG_RESERVED = 2,   /* scope:, causal:, dataforts:, fork-of:, heat: */
    NM_TAG_LEGACY = 3      /* anything else                  relay-capable */
} nm_tag_kind;

/* A parsed tag: a view into the string that was parsed (nothing is
 * allocated; the pointers live as long as that string). */
typedef struct nm_tag_view {
    nm_tag_kind kind;
    nm_axis axis;    /* axis kinds only */
    const char *key; /* axis kinds: the key (not NUL-terminated) */
    size_t key_len;
    const char *value; /* AXIS_VALUE: the value (may be empty) */
    size_t value_len;
    char sep;           /* AXIS_VALUE: '=' or ':'; otherwise 0 */
    const char *prefix; /* RESERVED: the static prefix, e.g. "scope:" */
    const char *body;   /* RESERVED: the rest (NUL-terminated, may be "") */
} nm_tag_view;

/* nm_axis_name - "hardware", "software", "devices", "dataforts" (NULL for
 * an out-of-range value). nm_axis_parse - the reverse; NM_EINVAL. */
NM_API const char *nm_axis_name(nm_axis axis);
NM_API int nm_axis_parse(const char *name, nm_axis *out);

/* The reserved prefixes, in upstream's order: "causal:", "dataforts:",
 * "fork-of:", "heat:", "scope:". nm_tag_reserved_prefix(i) returns the
 * i-th (NULL past the end). */
#define NM_TAG_RESERVED_PREFIX_COUNT 5
NM_API const char *nm_tag_reserved_prefix(size_t i);

/* nm_tag_parse - upstream's permissive Tag::parse (reserved prefixes
 * accepted; every shape round-trips byte for byte). Errors: NM_EINVAL for
 * NULL or the empty string. Thread-safe. */
NM_API int nm_tag_parse(const char *tag, nm_tag_view *out);
/* nm_tag_parse_user - Tag::parse_user: as nm_tag_parse, but a reserved
 * prefix is NM_EINVAL ("reserved prefix"). */
NM_API int nm_tag_parse_user(const char *tag, nm_tag_view *out);
/* nm_tag_semantic_eq - true when both parse and describe the same tag,
 * ignoring the '=' / ':' separator of axis values. Empty/NULL -> false. */
NM_API bool nm_tag_semantic_eq(const char *a, const char *b);

/* ================================================================== sets */

typedef struct nm_capset nm_capset;

/* Status of nm_capset_add_tag when upstream silently drops the tag. */
#define NM_CAPS_DROPPED 1

/* nm_capset_new - an empty set. Errors: NM_EINVAL, NM_ENOMEM. */
NM_API int nm_capset_new(nm_capset **out);
/* nm_capset_clone - a deep copy. */
NM_API int nm_capset_clone(const nm_capset *set, nm_capset **out);
/* nm_capset_free - release (NULL is a no-op). */
NM_API void nm_capset_free(nm_capset *set);

/* nm_capset_add_tag - CapabilitySet::add_tag (parse_user). Returns NM_OK
 * when the tag is in the set afterwards, NM_CAPS_DROPPED (1, not an error,
 * as upstream) for an empty or reserved-prefix tag, which is not added.
 * Errors: NM_EINVAL (NULL), NM_ENOMEM. */
NM_API int nm_capset_add_tag(nm_capset *set, const char *tag);
/* nm_capset_insert_tag - the privileged path (Tag::parse): reserved tags
 * are accepted. Errors: NM_EINVAL (NULL or empty), NM_ENOMEM. */
NM_API int nm_capset_insert_tag(nm_capset *set, const char *tag);
/* nm_capset_remove_tag - remove the exact tag; NM_ENOTFOUND if absent. */
NM_API int nm_capset_remove_tag(nm_capset *set, const char *tag);
/* nm_capset_has_tag - exact (byte-wise) membership. */
NM_API bool nm_capset_has_tag(const nm_capset *set, const char *tag);
/* Tags in bytewise order. nm_capset_tag_at: NULL past the end; the
 * pointer is valid until the set is next modified or freed. */
NM_API size_t nm_capset_tag_count(const nm_capset *set);
NM_API const char *nm_capset_tag_at(const nm_capset *set, size_t i);

/* nm_capset_set_metadata - with_metadata: insert or overwrite. */
NM_API int nm_capset_set_metadata(nm_capset *set, const char *key,
                                  const char *value);
/* nm_capset_remove_metadata - NM_ENOTFOUND if absent. */
NM_API int nm_capset_remove_metadata(nm_capset *set, const char *key);
/* nm_capset_metadata - the value of `key` or NULL. */
NM_API const char *nm_capset_metadata(const nm_capset *set, const char *key);
/* Metadata in bytewise key order. */
NM_API size_t nm_capset_metadata_count(const nm_capset *set);
NM_API int nm_capset_metadata_at(const nm_capset *set, size_t i,
                                 const char **key, const char **value);

/* Scope builders (reserved tags; an empty argument is ignored -> NM_OK,
 * nothing added): scope:tenant:<id>, scope:region:<r>, scope:subnet-local. */
NM_API int nm_capset_set_tenant_scope(nm_capset *set, const char *tenant);
NM_API int nm_capset_set_region_scope(nm_capset *set, const char *region);
NM_API int nm_capset_set_subnet_local_scope(nm_capset *set);

/* Chain builders (reserved tags; an empty hash is ignored):
 * causal:<h>; causal:<h>:<n>; causal:<h>[<a>..<b>] (only when a < b);
 * fork-of:<h>; heat:<h>=<r clamped to [0,1], two decimals> (a non-finite
 * r is ignored). */
NM_API int nm_capset_add_causal(nm_capset *set, const char *hash);
NM_API int nm_capset_add_causal_tip(nm_capset *set, const char *hash,
                                    uint64_t tip_seq);
NM_API int nm_capset_add_causal_range(nm_capset *set, const char *hash,
                                      uint64_t start, uint64_t end);
NM_API int nm_capset_add_fork_of(nm_capset *set, const char *parent_hash);
NM_API int nm_capset_add_heat(nm_capset *set, const char *hash,
                              double reads_ratio);

/* nm_capset_to_json - {"tags":[...],"metadata":{...}}, tags and metadata
 * keys sorted bytewise, compact, serde_json escaping. *out is malloc'd. */
NM_API int nm_capset_to_json(const nm_capset *set, char **out, size_t *len);
/* nm_capset_from_json - decode the JSON form: missing fields are empty,
 * unknown fields ignored, duplicate fields an error, every tag parsed with
 * Tag::parse (an empty tag fails the whole decode), tags de-duplicated by
 * exact string, a metadata key given twice keeps its last value.
 * Errors: NM_EINVAL (NULL), NM_EDECODE (detail), NM_ENOMEM. */
NM_API NM_NODISCARD int nm_capset_from_json(const char *json, size_t len,
                                            nm_capset **out);
/* nm_capset_from_bytes - CapabilitySet::from_bytes: first byte '{' ->
 * JSON; 0x01 -> postcard (not supported here: NM_ENOTSUP); else
 * NM_EDECODE. */
NM_API NM_NODISCARD int nm_capset_from_bytes(const void *data, size_t len,
                                             nm_capset **out);

/* ------------------------------------------------- typed projections */

typedef enum nm_gpu_vendor {
    NM_GPU_UNKNOWN = 0, /* no vendor tag is emitted; "any" in a filter */
    NM_GPU_NVIDIA = 1,
    NM_GPU_AMD = 2,
    NM_GPU_INTEL = 3,
    NM_GPU_APPLE = 4,
    NM_GPU_QUALCOMM = 5
} nm_gpu_vendor;

/* nm_gpu_vendor_name - "nvidia", "amd", "intel", "apple", "qualcomm", or
 * "unknown". */
NM_API const char *nm_gpu_vendor_name(nm_gpu_vendor v);

/* Zero / NULL / empty fields are omitted from the tags. */
typedef struct nm_gpu_info {
    nm_gpu_vendor vendor;
    const char *model;
    uint64_t vram_gb;
    uint64_t compute_units;
    uint64_t tensor_cores;
    uint64_t fp16_tflops_x10;
} nm_gpu_info;

typedef struct nm_hardware {
    uint64_t cpu_cores;
    uint64_t cpu_threads;
    uint64_t memory_gb;
    bool has_gpu; /* emits hardware.gpu (+ the gpu.* fields) */
    nm_gpu_info gpu;
    uint64_t storage_gb;
    uint64_t network_gbps;
} nm_hardware;

typedef struct nm_resource_limits {
    uint64_t max_concurrent_requests;
    uint64_t max_tokens_per_request;
    uint64_t rate_limit_rpm;
    uint64_t max_batch_size;
    uint64_t max_input_bytes;
    uint64_t max_output_bytes;
} nm_resource_limits;

/* A (name, version) pair: runtimes, frameworks, drivers. A name that is
 * empty or contains '=', ':' or '.' is skipped, as is an empty version. */
typedef struct nm_named_version {
    const char *name;
    const char *version;
} nm_named_version;

typedef struct nm_software {
    const char *os;
    const char *os_version;
    const nm_named_version *runtimes;
    size_t n_runtimes;
    const nm_named_version *frameworks;
    size_t n_frameworks;
    const char *cuda_version;
    const nm_named_version *drivers;
    size_t n_drivers;
} nm_software;

/* Model modalities (bit flags), CSV names text,image,audio,video,code,
 * embedding,tool_use. */
typedef enum nm_modality {
    NM_MODALITY_TEXT = 1u << 0,
    NM_MODALITY_IMAGE = 1u << 1,
    NM_MODALITY_AUDIO = 1u << 2,
    NM_MODALITY_VIDEO = 1u << 3,
    NM_MODALITY_CODE = 1u << 4,
    NM_MODALITY_EMBEDDING = 1u << 5,
    NM_MODALITY_TOOL_USE = 1u << 6
} nm_modality;

typedef struct nm_model {
    const char *id;
    const char *family;
    uint64_t parameters_b_x10;
    uint64_t context_length;
    const char *quantization;
    uint32_t modalities; /* nm_modality bits; CSV in the order above */
    uint64_t tokens_per_sec;
    bool loaded; /* loaded=true only when true */
} nm_model;

typedef struct nm_tool {
    const char *tool_id;
    const char *name;
    const char *version;
    const char *const *requires; /* CSV */
    size_t n_requires;
    uint64_t estimated_time_ms;
    bool stateless;            /* always emitted (true|false) */
    const char *input_schema;  /* metadata tool::<id>::input_schema */
    const char *output_schema; /* metadata tool::<id>::output_schema */
} nm_tool;

/* nm_capset_set_hardware - with_hardware: first removes every hardware.*
 * axis tag except hardware.limits.* (user-added ones included), then adds
 * upstream's tags (hardware.cpu_cores=.., hardware.gpu, ...). additional
 * GPUs and accelerators are not representable (upstream loses them). */
NM_API int nm_capset_set_hardware(nm_capset *set, const nm_hardware *hw);
/* nm_capset_set_limits - replaces every hardware.limits.* tag. */
NM_API int nm_capset_set_limits(nm_capset *set,
                                const nm_resource_limits *limits);
/* nm_capset_set_software - removes every software.* axis tag except
 * software.model.* and software.tool.*, then adds the software tags. */
NM_API int nm_capset_set_software(nm_capset *set, const nm_software *sw);
/* nm_capset_set_models - replaces every software.model.* tag with
 * software.model.<i>.* for i = list position. */
NM_API int nm_capset_set_models(nm_capset *set, const nm_model *models,
                                size_t n);
/* nm_capset_add_model - appends at index = the number of models decoded
 * from the set. */
NM_API int nm_capset_add_model(nm_capset *set, const nm_model *model);
/* nm_capset_set_tools - replaces every software.tool.* tag (and writes the
 * schemas to metadata when given). */
NM_API int nm_capset_set_tools(nm_capset *set, const nm_tool *tools, size_t n);

/* Decoded views (upstream's decoders: unknown keys ignored, unparseable
 * numbers are 0, tags walked in sorted order so the last duplicate wins).
 * Strings point into the set (valid until it is modified or freed). */
NM_API int nm_capset_hardware(const nm_capset *set, nm_hardware *out);
/* Number of models (distinct numeric indices of software.model.<i>.*);
 * nm_capset_model_at fills model i (in index order; modalities decoded
 * from the CSV, unknown names ignored). */
NM_API size_t nm_capset_model_count(const nm_capset *set);
NM_API int nm_capset_model_at(const nm_capset *set, size_t i, nm_model *out);

/* ================================================================== filter */

/* CapabilityFilter. Plain data; start from NM_CAPFILTER_INIT. Checks are
 * upstream's CapabilityFilter::matches, in its order (docs). */
typedef struct nm_capfilter {
    const char *const *require_tags; /* all; semantic_eq; "" never matches */
    size_t n_require_tags;
    const char *const *require_models; /* any software.model.<x>.id=<m> */
    size_t n_require_models;
    const char *const *require_tools; /* any software.tool.<x>.tool_id=<t> */
    size_t n_require_tools;
    uint32_t min_memory_gb;   /* first hardware.memory_gb as u32 (bad -> 0) */
    bool require_gpu;         /* the presence tag hardware.gpu, exactly */
    nm_gpu_vendor gpu_vendor; /* != UNKNOWN: exact hardware.gpu.vendor=<v>
                                 (implies require_gpu) */
    uint32_t min_vram_gb;     /* > 0: implies require_gpu; vram_gb as u32, else
                                 the decoded primary GPU's */
    bool has_min_context_length;
    uint32_t min_context_length; /* some model has context_length >= it */
    uint32_t require_modalities; /* nm_modality bits, each in some model */
} nm_capfilter;

#define NM_CAPFILTER_INIT                                                     \
    {                                                                         \
        NULL, 0, NULL, 0, NULL, 0, 0, false, NM_GPU_UNKNOWN, 0, false, 0, 0   \
    }

/* nm_capfilter_matches - true when `set` passes every check. */
NM_API bool nm_capfilter_matches(const nm_capfilter *f, const nm_capset *set);

/* CapabilityRequirement: a filter plus scoring weights (clamped to [0,1]). */
typedef struct nm_capreq {
    nm_capfilter filter;
    float w_memory;
    float w_vram;
    float w_speed;
    float w_loaded;
} nm_capreq;

/* nm_capreq_score - 0 when the filter fails, else (f32 arithmetic)
 * 1 + wm*min(mem/256,1) + wv*min(vram/80,1) + ws*min(max_tps/1000,1)
 *   + wl*(loaded_models/models or 0). */
NM_API float nm_capreq_score(const nm_capreq *req, const nm_capset *set);

/* ================================================================== scope */

/* How a query narrows candidates by their scope:* tags (docs table). */
typedef enum nm_scope_kind {
    NM_SCOPE_ANY = 0,         /* everything except subnet-local sets */
    NM_SCOPE_GLOBAL_ONLY = 1, /* only untagged (Global) sets */
    NM_SCOPE_SAME_SUBNET =
        2,                /* same_subnet(node, set) decides, tags ignored */
    NM_SCOPE_TENANTS = 3, /* Global + sets tagged with a listed tenant */
    NM_SCOPE_REGIONS = 4  /* Global + sets tagged with a listed region */
} nm_scope_kind;

/* The resolver of NM_SCOPE_SAME_SUBNET (e.g. nm_subnet_same_subnet_cb in
 * netmesh/subnet.h). Called under the index's read lock: it must not call
 * back into the index. */
typedef bool (*nm_same_subnet_fn)(uint64_t node_id, const nm_capset *set,
                                  void *ctx);

typedef struct nm_scope_filter {
    nm_scope_kind kind;
    const char *const *labels; /* TENANTS / REGIONS: the ids (an empty list
                                  matches only Global candidates) */
    size_t n_labels;
    nm_same_subnet_fn same_subnet; /* SAME_SUBNET (NULL: nothing matches) */
    void *ctx;
} nm_scope_filter;

/* The scope a set declares. */
typedef enum nm_scope_class {
    NM_SCOPE_CLASS_GLOBAL = 0,       /* no tenant / region tags */
    NM_SCOPE_CLASS_SUBNET_LOCAL = 1, /* scope:subnet-local (strictest wins) */
    NM_SCOPE_CLASS_SCOPED = 2        /* tenant and/or region tags */
} nm_scope_class;

/* nm_capset_scope_class - the class of `set` (scope:global, empty ids and
 * unknown scope: bodies are ignored). */
NM_API nm_scope_class nm_capset_scope_class(const nm_capset *set);
/* nm_scope_matches - the scope table of docs/capabilities.md for one
 * candidate. A NULL scope applies no scope rule (true), like upstream's
 * unscoped find_nodes. */
NM_API bool nm_scope_matches(const nm_scope_filter *scope, uint64_t node_id,
                             const nm_capset *set);

/* ================================================================== index */

typedef struct nm_capindex nm_capindex;

/* Status of nm_capindex_put for an older version (nothing changed). */
#define NM_CAPINDEX_STALE 1

/* nm_capindex_new - an empty index: node_id -> (set, version, expiry).
 * Tag queries use an inverted index (normalised tag -> posting list) and
 * start from the smallest posting list, so a selective query costs what it
 * matches, not the index size. Errors: NM_EINVAL, NM_ENOMEM. */
NM_API int nm_capindex_new(nm_capindex **out);
NM_API void nm_capindex_free(nm_capindex *idx);

/* nm_capindex_put - add or replace node_id's set (copied). `version`
 * orders announcements: an older version than the stored one returns
 * NM_CAPINDEX_STALE and changes nothing; an equal or newer one replaces
 * (and refreshes the expiry). `expires_at` is a deadline on the caller's
 * clock (any unit, compared with nm_capindex_sweep's `now`); 0 = never.
 * The local node indexes itself like any peer (self-match included).
 * Errors: NM_EINVAL, NM_ENOMEM. */
NM_API int nm_capindex_put(nm_capindex *idx, uint64_t node_id,
                           const nm_capset *set, uint64_t version,
                           uint64_t expires_at);
/* nm_capindex_remove - NM_ENOTFOUND if absent. */
NM_API int nm_capindex_remove(nm_capindex *idx, uint64_t node_id);
/* nm_capindex_sweep - the TTL hook: drop every entry whose expires_at is
 * non-zero and <= now. Returns the number dropped (>= 0). */
NM_API int nm_capindex_sweep(nm_capindex *idx, uint64_t now);
/* nm_capindex_count - entries in the index. */
NM_API size_t nm_capindex_count(const nm_capindex *idx);
/* nm_capindex_get - a copy of node_id's set (*out, nm_capset_free) and,
 * when non-NULL, its version. NM_ENOTFOUND if absent. */
NM_API int nm_capindex_get(const nm_capindex *idx, uint64_t node_id,
                           nm_capset **out, uint64_t *version);

/* nm_capindex_find - find_nodes: node ids whose set matches `f` (NULL =
 * match all), ascending, de-duplicated. No scope rule applies (upstream's
 * unscoped query: subnet-local sets included). *ids is malloc'd (NULL
 * when *n == 0). Errors: NM_EINVAL, NM_ENOMEM. */
NM_API int nm_capindex_find(const nm_capindex *idx, const nm_capfilter *f,
                            uint64_t **ids, size_t *n);
/* nm_capindex_find_scoped - find_nodes_scoped: as nm_capindex_find, every
 * candidate also passing nm_scope_matches(scope) (NULL = unscoped). */
NM_API int nm_capindex_find_scoped(const nm_capindex *idx,
                                   const nm_capfilter *f,
                                   const nm_scope_filter *scope,
                                   uint64_t **ids, size_t *n);
/* nm_capindex_best - find_best_node(_scoped) (scope NULL = unscoped): the
 * matching node with the
 * highest nm_capreq_score (ascending id order, only a strictly greater
 * score replaces: ties -> lowest id; NaN skipped; all NaN -> lowest
 * matching id). NM_ENOTFOUND when nothing matches. */
NM_API int nm_capindex_best(const nm_capindex *idx, const nm_capreq *req,
                            const nm_scope_filter *scope, uint64_t *node_id);

/* ================================================================== schema */

/* One validation finding. Fields a kind does not carry are NULL / 0.
 *   errors:   type_mismatch{axis,key,expected,actual}
 *             index_malformed{axis,prefix,index,tag}
 *   warnings: unknown_key{axis,key}  legacy_tag{tag}
 *             metadata_reserved_key{key}
 *             metadata_oversize{soft_cap_bytes,actual_bytes}
 * `expected` is a value type: presence, number, string, enumeration, bool,
 * csv. */
typedef struct nm_caps_issue {
    const char *kind;
    const char *axis;
    const char *key;
    const char *expected;
    const char *actual;
    const char *prefix;
    const char *index;
    const char *tag;
    uint64_t soft_cap_bytes;
    uint64_t actual_bytes;
} nm_caps_issue;

/* Soft cap of Σ(key+value bytes) over the metadata. */
#define NM_CAPS_METADATA_SOFT_CAP 4096

typedef struct nm_caps_report nm_caps_report;

/* nm_caps_validate - validate_capabilities against upstream's schema. The
 * lists are in upstream's FFI order (each sorted by its compact JSON).
 * Errors: NM_EINVAL, NM_ENOMEM. */
NM_API int nm_caps_validate(const nm_capset *set, nm_caps_report **out);
NM_API void nm_caps_report_free(nm_caps_report *r);
NM_API size_t nm_caps_report_error_count(const nm_caps_report *r);
NM_API size_t nm_caps_report_warning_count(const nm_caps_report *r);
/* NULL past the end; valid until the report is freed. */
NM_API const nm_caps_issue *nm_caps_report_error(const nm_caps_report *r,
                                                 size_t i);
NM_API const nm_caps_issue *nm_caps_report_warning(const nm_caps_report *r,
                                                   size_t i);
/* {"errors":[..],"warnings":[..]}, every item with its keys in
 * alphabetical order, byte-identical to upstream's
 * net_validate_capabilities. */
NM_API int nm_caps_report_to_json(const nm_caps_report *r, char **out,
                                  size_t *len);

/* ================================================================== diff */

typedef enum nm_meta_change_kind {
    NM_META_ADDED = 0,   /* {key, value} */
    NM_META_REMOVED = 1, /* {key, prev_value} */
    NM_META_UPDATED = 2  /* {key, prev_value, new_value} */
} nm_meta_change_kind;

typedef struct nm_meta_change {
    nm_meta_change_kind kind;
    const char *key;
    const char *value;      /* ADDED */
    const char *prev_value; /* REMOVED, UPDATED */
    const char *new_value;  /* UPDATED */
} nm_meta_change;

typedef struct nm_caps_diff nm_caps_diff;

/* nm_capset_diff - curr.diff(prev): added_tags = curr tags with no
 * semantic_eq match in prev, removed_tags the reverse (both bytewise
 * sorted; a separator-only change is in neither); metadata changes merged
 * in key order (equal values omitted, a rename is removed + added). */
NM_API int nm_capset_diff(const nm_capset *curr, const nm_capset *prev,
                          nm_caps_diff **out);
NM_API void nm_caps_diff_free(nm_caps_diff *d);
NM_API size_t nm_caps_diff_added_count(const nm_caps_diff *d);
NM_API const char *nm_caps_diff_added(const nm_caps_diff *d, size_t i);
NM_API size_t nm_caps_diff_removed_count(const nm_caps_diff *d);
NM_API const char *nm_caps_diff_removed(const nm_caps_diff *d, size_t i);
NM_API size_t nm_caps_diff_change_count(const nm_caps_diff *d);
NM_API const nm_meta_change *nm_caps_diff_change(const nm_caps_diff *d,
                                                 size_t i);
/* nm_caps_diff_is_empty - no tag and no metadata change. */
NM_API bool nm_caps_diff_is_empty(const nm_caps_diff *d);
/* {"added_tags":[..],"removed_tags":[..],"metadata_changes":[{"kind":
 * "added"|"removed"|"updated","key":..,..}]} (the binding shape). */
NM_API int nm_caps_diff_to_json(const nm_caps_diff *d, char **out,
                                size_t *len);

/* nm_caps_diff_request - decode {"prev":<CapabilitySet>,"curr":
 * <CapabilitySet>} (both required; unknown fields ignored, duplicates
 * rejected) and write the diff JSON (the input/output of `netmesh caps
 * diff`). Errors: NM_EINVAL, NM_EDECODE, NM_ENOMEM. */
NM_API NM_NODISCARD int nm_caps_diff_request(const char *json, size_t len,
                                             char **out, size_t *outlen);

NM_END_DECLS

#endif
