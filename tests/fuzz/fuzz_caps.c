/* tests/fuzz/fuzz_caps.c - the CapabilitySet JSON decoder (and the diff
 * request decoder behind `netmesh caps diff`). Never crash; a decoded set
 * re-encodes to a fixed point, validates, diffs empty against itself, and
 * goes through filters, scope rules and the index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/caps.h>
#include <netmesh/subnet.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *dj = NULL;
    if (nm_caps_diff_request((const char *)data, size, &dj, NULL) == NM_OK) {
        free(dj);
    }
    nm_capset *s = NULL;
    if (nm_capset_from_json((const char *)data, size, &s) != NM_OK) {
        return 0;
    }
    char *a = NULL, *b = NULL;
    nm_capset *t = NULL;
    if (nm_capset_to_json(s, &a, NULL) != NM_OK ||
        nm_capset_from_json(a, strlen(a), &t) != NM_OK ||
        nm_capset_to_json(t, &b, NULL) != NM_OK || strcmp(a, b) != 0) {
        fprintf(stderr, "capability set JSON is not a fixed point\n");
        abort();
    }
    nm_caps_report *r = NULL;
    if (nm_caps_validate(s, &r) == NM_OK) {
        char *rj = NULL;
        (void)nm_caps_report_to_json(r, &rj, NULL);
        free(rj);
        nm_caps_report_free(r);
    }
    nm_caps_diff *d = NULL;
    if (nm_capset_diff(s, t, &d) == NM_OK) {
        if (!nm_caps_diff_is_empty(d)) {
            fprintf(stderr, "a set differs from its own round trip\n");
            abort();
        }
        nm_caps_diff_free(d);
    }
    nm_capset *e = NULL;
    if (nm_capset_new(&e) == NM_OK && nm_capset_diff(s, e, &d) == NM_OK) {
        char *j = NULL;
        (void)nm_caps_diff_to_json(d, &j, NULL);
        free(j);
        nm_caps_diff_free(d);
    }
    nm_capset_free(e);
    nm_capfilter f = NM_CAPFILTER_INIT;
    const char *req[] = {"hardware.gpu", "scope:tenant:a"};
    f.require_tags = req;
    f.n_require_tags = 1;
    f.min_vram_gb = 8;
    f.has_min_context_length = true;
    f.require_modalities = NM_MODALITY_TEXT;
    bool m = nm_capfilter_matches(&f, s);
    nm_capreq cr = {NM_CAPFILTER_INIT, 1, 1, 1, 1};
    (void)nm_capreq_score(&cr, s);
    (void)nm_capset_scope_class(s);
    const char *labels[] = {"a", "eu"};
    nm_scope_filter sc = {NM_SCOPE_TENANTS, labels, 2, NULL, NULL};
    (void)nm_scope_matches(&sc, 1, s);
    nm_hardware hw;
    (void)nm_capset_hardware(s, &hw);
    size_t nmod = nm_capset_model_count(s);
    nm_model mod;
    if (nmod) {
        (void)nm_capset_model_at(s, nmod - 1, &mod);
    }
    nm_subnet_policy *pol = NULL;
    nm_subnet_rule *rule = NULL;
    if (nm_subnet_policy_new(&pol) == NM_OK &&
        nm_subnet_rule_new("region:", 0, &rule) == NM_OK &&
        nm_subnet_rule_map(rule, "us", 3) == NM_OK) {
        (void)nm_subnet_policy_add_rule(pol, rule);
        (void)nm_subnet_policy_assign_capset(pol, s);
    }
    nm_subnet_policy_free(pol);
    nm_capindex *x = NULL;
    if (nm_capindex_new(&x) == NM_OK) {
        (void)nm_capindex_put(x, 1, s, 1, 0);
        (void)nm_capindex_put(x, 2, t, 1, 5);
        uint64_t *ids = NULL;
        size_t n = 0;
        if (nm_capindex_find(x, &f, &ids, &n) == NM_OK) {
            if ((n == 2) != m) {
                fprintf(stderr, "index and filter disagree\n");
                abort();
            }
            free(ids);
        }
        (void)nm_capindex_sweep(x, 5);
        (void)nm_capindex_remove(x, 1);
        nm_capindex_free(x);
    }
    nm_capset_free(t);
    nm_capset_free(s);
    free(a);
    free(b);
    return 0;
}
