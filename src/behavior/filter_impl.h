/*
 * src/behavior/filter_impl.h - filter matching and scope internals shared
 * by filter.c and index.c.
 */
#ifndef NMI_BEHAVIOR_FILTER_IMPL_H
#define NMI_BEHAVIOR_FILTER_IMPL_H

#include "behavior/caps_impl.h"

/* CapabilityFilter::matches with precomputed facts (NULL: computed here);
 * skip_tags when require_tags were already checked (the index does it by
 * tag id). */
bool nmi_filter_match(const nm_capfilter *f, const nm_capset *set,
                      const nmi_caps_facts *facts, bool skip_tags);

/* The score of a set that passed the filter. */
float nmi_req_score(const nm_capreq *req, const nm_capset *set);

typedef struct nmi_scope_summary {
    bool subnet_local;
    size_t tenants; /* scope:tenant:<non-empty> tags */
    size_t regions; /* scope:region:<non-empty> tags */
} nmi_scope_summary;

void nmi_scope_of(const nm_capset *set, nmi_scope_summary *out);

#endif
