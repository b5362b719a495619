/*
 * src/behavior/announce_impl.h - the CapabilityAnnouncement codec (0x0C00,
 * docs/PROTOCOL.md §9.1) and test hooks of the discovery object.
 *
 * An announcement is kept as two canonical JSON pieces so it can be
 * verified and re-emitted with another hop_count without understanding
 * every field:
 *   head = '{' + the members up to and including "capabilities", in
 *          document order, compact, minus "signature" / "hop_count"
 *   tail = the members after "capabilities" (each with its leading ','),
 *          minus "signature" / "hop_count", then '}'
 * signed bytes = head ‖ tail (upstream: the JSON with `signature` and
 * `hop_count` removed); wire = head ‖ ,"signature":"<hex>" ‖
 * ,"hop_count":N (when N > 0) ‖ tail (serde_json's field order).
 */
#ifndef NMI_BEHAVIOR_ANNOUNCE_IMPL_H
#define NMI_BEHAVIOR_ANNOUNCE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netmesh/caps.h>
#include <netmesh/discovery.h>
#include <netmesh/identity.h>

/* Upstream's default ttl_secs when the field is absent. */
#define NMI_ANN_DEFAULT_TTL 300u
/* Largest announcement the decoder looks at (one event is at most 8104
 * bytes; the bound only guards the parser). */
#define NMI_ANN_MAX_BYTES 65536u

typedef struct nmi_ann {
    uint64_t node_id;
    uint8_t entity_id[NM_ENTITY_ID_BYTES];
    uint64_t version;
    uint64_t timestamp_ns;
    uint32_t ttl_secs;
    nm_capset *caps;
    bool has_sig;
    uint8_t sig[NM_SIGNATURE_BYTES];
    uint32_t hop_count; /* 0..255 */
    char *head;
    size_t head_len;
    char *tail;
    size_t tail_len;
} nmi_ann;

/* Decode one announcement (strict JSON, no duplicate top-level field;
 * unknown fields kept for the signature). Required: node_id (u64),
 * entity_id (64 hex), version (u64), timestamp_ns (u64), capabilities
 * (a CapabilitySet object). Optional: ttl_secs (u32, default 300),
 * signature (128 hex or null), hop_count (0..255). NM_OK, NM_EDECODE
 * (detail), NM_ENOMEM. *out is cleared first; nmi_ann_clear after. */
int nmi_ann_decode(const void *buf, size_t len, nmi_ann *out);
void nmi_ann_clear(nmi_ann *a);

/* head ‖ tail (malloc'd, NUL-terminated). */
int nmi_ann_signed_bytes(const nmi_ann *a, char **out, size_t *len);
/* The wire form with this hop_count (malloc'd, NUL-terminated). */
int nmi_ann_wire(const nmi_ann *a, uint32_t hop_count, char **out,
                 size_t *len);

/* Build and sign (id != NULL) our own announcement. NM_EINVAL, NM_ENOMEM,
 * NM_ECRYPTO. */
int nmi_ann_build(const nm_identity *id, uint64_t version,
                  uint64_t timestamp_ns, uint32_t ttl_secs,
                  const nm_capset *caps, nmi_ann *out);

/* Verify the signature over head ‖ tail with entity_id: NM_OK,
 * NM_ENOTFOUND (unsigned), NM_ECRYPTO. */
int nmi_ann_verify(const nmi_ann *a);

/* Test hook: pin node_id to an entity key as if a first announcement had
 * bound it (TOFU). NM_EEXIST when already bound, NM_ENOMEM. */
int nmi_discovery_pin(nm_discovery *d, uint64_t node_id,
                      const uint8_t entity_id[NM_ENTITY_ID_BYTES]);

#endif
