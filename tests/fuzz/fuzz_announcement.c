/* tests/fuzz/fuzz_announcement.c - the CapabilityAnnouncement decoder
 * (0x0C00 JSON). Never crash; a decoded announcement re-emits to a fixed
 * point: decode(wire(a, h)) has hop_count h and the same signed bytes and
 * capability set, and its wire form is byte-identical; verification only
 * answers OK / unsigned / bad signature. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/caps.h>

#include "behavior/announce_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_announcement: %s\n", what);
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nmi_ann a;
    if (nmi_ann_decode(data, size, &a) != NM_OK) {
        if (a.head != NULL || a.caps != NULL) {
            fail("a failed decode left state behind");
        }
        return 0;
    }
    int vr = nmi_ann_verify(&a);
    if (vr != NM_OK && vr != NM_ENOTFOUND && vr != NM_ECRYPTO) {
        fail("unexpected verify result");
    }
    if ((vr == NM_ENOTFOUND) != !a.has_sig) {
        fail("verify disagrees with has_sig");
    }
    uint32_t hop = (a.hop_count + 1) & 0xff;
    char *w = NULL, *s1 = NULL, *s2 = NULL, *w2 = NULL;
    size_t wl = 0, l1 = 0, l2 = 0, wl2 = 0;
    if (nmi_ann_wire(&a, hop, &w, &wl) != NM_OK ||
        nmi_ann_signed_bytes(&a, &s1, &l1) != NM_OK) {
        fail("re-emission failed");
    }
    nmi_ann b;
    if (nmi_ann_decode(w, wl, &b) != NM_OK) {
        fail("the wire form does not decode");
    }
    if (b.hop_count != hop || b.node_id != a.node_id ||
        b.version != a.version || b.timestamp_ns != a.timestamp_ns ||
        b.ttl_secs != a.ttl_secs || b.has_sig != a.has_sig ||
        memcmp(b.entity_id, a.entity_id, sizeof(a.entity_id)) != 0 ||
        (a.has_sig && memcmp(b.sig, a.sig, sizeof(a.sig)) != 0)) {
        fail("fields changed in the round trip");
    }
    if (nmi_ann_signed_bytes(&b, &s2, &l2) != NM_OK || l1 != l2 ||
        memcmp(s1, s2, l1) != 0) {
        fail("signed bytes changed in the round trip");
    }
    if (nmi_ann_wire(&b, hop, &w2, &wl2) != NM_OK || wl != wl2 ||
        memcmp(w, w2, wl) != 0) {
        fail("the wire form is not a fixed point");
    }
    char *c1 = NULL, *c2 = NULL;
    if (nm_capset_to_json(a.caps, &c1, NULL) != NM_OK ||
        nm_capset_to_json(b.caps, &c2, NULL) != NM_OK || strcmp(c1, c2) != 0) {
        fail("the capability set changed in the round trip");
    }
    free(c1);
    free(c2);
    free(w);
    free(w2);
    free(s1);
    free(s2);
    nmi_ann_clear(&a);
    nmi_ann_clear(&b);
    return 0;
}
