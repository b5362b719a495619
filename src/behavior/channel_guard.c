/*
 * src/behavior/channel_guard.c - the channel AuthGuard (a 4 KiB bloom
 * filter, two probes, in front of an exact set: upstream channel/guard.rs)
 * and the per-peer auth-failure limiter.
 */
#include <stdlib.h>
#include <string.h>

#include "behavior/channel_impl.h"
#include "core/core.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

void
nmi_guard_init(nmi_guard *g)
{
    memset(g->bloom, 0, sizeof(g->bloom));
    nmi_u64map_init(&g->exact);
    g->len = 0;
    g->stale = 0;
}

void
nmi_guard_fini(nmi_guard *g)
{
    for (size_t i = 0; i < g->exact.cap; i++) {
        nmi_guard_entry *e = g->exact.vals[i];
        while (e != NULL) {
            nmi_guard_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    nmi_u64map_fini(&g->exact);
    g->len = 0;
}

uint64_t
nmi_guard_key(uint64_t principal, uint64_t chan, uint8_t domain)
{
    uint8_t b[17];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(principal >> (8 * i));
        b[8 + i] = (uint8_t)(chan >> (8 * i));
    }
    b[16] = domain;
    return XXH3_64bits(b, sizeof(b));
}

static void
bloom_set(nmi_guard *g, uint64_t k)
{
    uint32_t h1 = (uint32_t)(k & NMI_GUARD_MASK);
    uint32_t h2 = (uint32_t)((k >> 15) & NMI_GUARD_MASK);
    g->bloom[h1 / 64] |= UINT64_C(1) << (h1 % 64);
    g->bloom[h2 / 64] |= UINT64_C(1) << (h2 % 64);
}

static bool
bloom_test(const nmi_guard *g, uint64_t k)
{
    uint32_t h1 = (uint32_t)(k & NMI_GUARD_MASK);
    uint32_t h2 = (uint32_t)((k >> 15) & NMI_GUARD_MASK);
    return (g->bloom[h1 / 64] >> (h1 % 64) & 1u) &&
           (g->bloom[h2 / 64] >> (h2 % 64) & 1u);
}

static nmi_guard_entry *
exact_find(const nmi_guard *g, uint64_t k, uint64_t principal, uint64_t chan,
           uint8_t domain)
{
    for (nmi_guard_entry *e = nmi_u64map_get(&g->exact, k); e != NULL;
         e = e->next) {
        if (e->principal == principal && e->chan == chan &&
            e->domain == domain) {
            return e;
        }
    }
    return NULL;
}

int
nmi_guard_allow(nmi_guard *g, uint64_t principal, uint64_t chan,
                uint8_t domain)
{
    uint64_t k = nmi_guard_key(principal, chan, domain);
    if (exact_find(g, k, principal, chan, domain) != NULL) {
        return NM_OK;
    }
    nmi_guard_entry *e = malloc(sizeof(*e));
    if (e == NULL) {
        return nmi_err(NM_ENOMEM, "channels: guard entry");
    }
    e->principal = principal;
    e->chan = chan;
    e->domain = domain;
    e->next = nmi_u64map_get(&g->exact, k);
    if (nmi_u64map_put(&g->exact, k, e) != NM_OK) {
        free(e);
        return nmi_err(NM_ENOMEM, "channels: guard set");
    }
    g->len++;
    bloom_set(g, k);
    return NM_OK;
}

bool
nmi_guard_revoke(nmi_guard *g, uint64_t principal, uint64_t chan,
                 uint8_t domain)
{
    uint64_t k = nmi_guard_key(principal, chan, domain);
    nmi_guard_entry *head = nmi_u64map_get(&g->exact, k);
    nmi_guard_entry **pp = &head;
    while (*pp != NULL) {
        nmi_guard_entry *e = *pp;
        if (e->principal == principal && e->chan == chan &&
            e->domain == domain) {
            *pp = e->next;
            free(e);
            if (head == NULL) {
                (void)nmi_u64map_del(&g->exact, k);
            } else {
                (void)nmi_u64map_put(&g->exact, k, head); /* replace */
            }
            g->len--;
            g->stale++;
            return true;
        }
        pp = &e->next;
    }
    return false;
}

bool
nmi_guard_check(const nmi_guard *g, uint64_t principal, uint64_t chan,
                uint8_t domain)
{
    uint64_t k = nmi_guard_key(principal, chan, domain);
    if (!bloom_test(g, k)) {
        return false;
    }
    return exact_find(g, k, principal, chan, domain) != NULL;
}

void
nmi_guard_rebuild(nmi_guard *g)
{
    memset(g->bloom, 0, sizeof(g->bloom));
    for (size_t i = 0; i < g->exact.cap; i++) {
        if (g->exact.vals[i] != NULL) {
            bloom_set(g, g->exact.keys[i]);
        }
    }
    g->stale = 0;
}

/* ---- limiter --------------------------------------------------------- */

void
nmi_limiter_init(nmi_limiter *l, uint32_t limit, uint64_t window_us,
                 uint64_t throttle_us)
{
    nmi_u64map_init(&l->peers);
    l->limit = limit;
    l->window_us = window_us;
    l->throttle_us = throttle_us;
}

void
nmi_limiter_fini(nmi_limiter *l)
{
    for (size_t i = 0; i < l->peers.cap; i++) {
        free(l->peers.vals[i]);
    }
    nmi_u64map_fini(&l->peers);
}

bool
nmi_limiter_throttled(nmi_limiter *l, uint64_t peer, uint64_t now_us)
{
    if (l->limit >= 65535u) {
        return false;
    }
    nmi_limiter_entry *e = nmi_u64map_get(&l->peers, peer);
    return e != NULL && now_us < e->throttled_until_us;
}

void
nmi_limiter_fail(nmi_limiter *l, uint64_t peer, uint64_t now_us)
{
    if (l->limit >= 65535u) {
        return;
    }
    nmi_limiter_entry *e = nmi_u64map_get(&l->peers, peer);
    if (e == NULL) {
        e = calloc(1, sizeof(*e));
        if (e == NULL || nmi_u64map_put(&l->peers, peer, e) != NM_OK) {
            free(e);
            return; /* out of memory: no throttle (failures still refused) */
        }
        e->window_start_us = now_us;
    }
    if (now_us - e->window_start_us >= l->window_us) {
        e->window_start_us = now_us;
        e->failures = 0;
    }
    if (++e->failures >= l->limit) {
        e->throttled_until_us = now_us + l->throttle_us;
        e->failures = 0;
        e->window_start_us = now_us;
    }
}

void
nmi_limiter_clear(nmi_limiter *l, uint64_t peer)
{
    free(nmi_u64map_del(&l->peers, peer));
}

void
nmi_limiter_sweep(nmi_limiter *l, uint64_t now_us)
{
    for (size_t i = 0; i < l->peers.cap;) {
        nmi_limiter_entry *e = l->peers.vals[i];
        if (e != NULL && now_us >= e->throttled_until_us &&
            now_us - e->window_start_us >= l->window_us) {
            /* backward-shift deletion may move another entry into slot i:
             * look at it again */
            free(nmi_u64map_del(&l->peers, l->peers.keys[i]));
            continue;
        }
        i++;
    }
}
