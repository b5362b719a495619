/*
 * src/core/u64map.h - an open-addressing hash map from u64 keys to
 * non-NULL pointers (linear probing, backward-shift deletion, no
 * tombstones). Capacity is a power of two and grows at 70 % load. Any
 * u64 is a valid key. Not thread-safe: the owner serializes access.
 */
#ifndef NMI_U64MAP_H
#define NMI_U64MAP_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <netmesh/error.h>

typedef struct nmi_u64map {
    uint64_t *keys;
    void **vals; /* NULL = empty slot */
    size_t cap;  /* power of two, or 0 before the first put */
    size_t len;
} nmi_u64map;

static inline size_t
nmi_u64map_slot(const nmi_u64map *m, uint64_t k)
{
    return (size_t)((k * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (m->cap - 1);
}

static inline void
nmi_u64map_init(nmi_u64map *m)
{
    m->keys = NULL;
    m->vals = NULL;
    m->cap = 0;
    m->len = 0;
}

static inline void
nmi_u64map_fini(nmi_u64map *m)
{
    free(m->keys);
    free(m->vals);
    nmi_u64map_init(m);
}

static inline void *
nmi_u64map_get(const nmi_u64map *m, uint64_t k)
{
    if (m->cap == 0) {
        return NULL;
    }
    for (size_t i = nmi_u64map_slot(m, k);; i = (i + 1) & (m->cap - 1)) {
        if (m->vals[i] == NULL) {
            return NULL;
        }
        if (m->keys[i] == k) {
            return m->vals[i];
        }
    }
}

static inline int nmi_u64map_put(nmi_u64map *m, uint64_t k, void *v);

static inline int
nmi_u64map_grow(nmi_u64map *m)
{
    nmi_u64map n;
    n.cap = m->cap ? m->cap * 2 : 16;
    n.len = 0;
    n.keys = calloc(n.cap, sizeof(*n.keys));
    n.vals = calloc(n.cap, sizeof(*n.vals));
    if (n.keys == NULL || n.vals == NULL) {
        free(n.keys);
        free(n.vals);
        return NM_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->vals[i] != NULL) {
            (void)nmi_u64map_put(&n, m->keys[i], m->vals[i]);
        }
    }
    free(m->keys);
    free(m->vals);
    *m = n;
    return NM_OK;
}

/* Insert or replace (v must not be NULL). NM_ENOMEM when growing fails. */
static inline int
nmi_u64map_put(nmi_u64map *m, uint64_t k, void *v)
{
    if ((m->len + 1) * 10 > m->cap * 7) {
        int rc = nmi_u64map_grow(m);
        if (rc != NM_OK) {
            return rc;
        }
    }
    for (size_t i = nmi_u64map_slot(m, k);; i = (i + 1) & (m->cap - 1)) {
        if (m->vals[i] == NULL) {
            m->keys[i] = k;
            m->vals[i] = v;
            m->len++;
            return NM_OK;
        }
        if (m->keys[i] == k) {
            m->vals[i] = v;
            return NM_OK;
        }
    }
}

/* Remove k; returns its value or NULL. */
static inline void *
nmi_u64map_del(nmi_u64map *m, uint64_t k)
{
    if (m->cap == 0) {
        return NULL;
    }
    size_t mask = m->cap - 1;
    size_t i = nmi_u64map_slot(m, k);
    for (;; i = (i + 1) & mask) {
        if (m->vals[i] == NULL) {
            return NULL;
        }
        if (m->keys[i] == k) {
            break;
        }
    }
    void *old = m->vals[i];
    m->vals[i] = NULL;
    m->len--;
    /* backward shift: pull later members of the cluster into the hole */
    for (size_t j = (i + 1) & mask; m->vals[j] != NULL; j = (j + 1) & mask) {
        size_t home = nmi_u64map_slot(m, m->keys[j]);
        /* j may move to i when home is not cyclically within (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->vals[j] = NULL;
            i = j;
        }
    }
    return old;
}

#endif
