/*
 * src/adapters/dedup.c - nm_dedup_id and nm_redis_dedup: a FIFO window of
 * the last `capacity` ids with O(1) test-and-insert (a ring of ids in
 * arrival order + an open-addressing index keyed by xxh3 of the id).
 */
#define _GNU_SOURCE
#include <netmesh/dedup.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#define XXH_INLINE_ALL
#include <xxhash.h>
#pragma GCC diagnostic pop

int
nm_dedup_id(char *out, size_t cap, uint64_t nonce, uint16_t shard,
            uint64_t sequence_start, uint64_t index)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out is NULL");
    }
    int n = snprintf(out, cap, "%llx:%u:%llu:%llu", (unsigned long long)nonce,
                     shard, (unsigned long long)sequence_start,
                     (unsigned long long)index);
    if (n < 0 || (size_t)n >= cap) {
        return nmi_err(NM_ERANGE, "dedup id needs %d bytes", n + 1);
    }
    return n;
}

int
nm_dedup_id_event(char *out, size_t cap, uint64_t nonce, uint16_t shard,
                  uint64_t seq)
{
    return nm_dedup_id(out, cap, nonce, shard, seq, 0);
}

typedef struct dd_entry {
    char *id; /* owned */
    size_t len;
    uint64_t hash;
} dd_entry;

struct nm_redis_dedup {
    size_t capacity;
    dd_entry *ring; /* arrival order, capacity entries */
    size_t head, len;
    /* Index: slot -> ring position + 1 (0 = empty); linear probing with
     * backward-shift deletion, table size a power of two >= 2*capacity. */
    uint32_t *table;
    size_t tmask;
};

int
nm_redis_dedup_new(size_t capacity, nm_redis_dedup **out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out is NULL");
    }
    *out = NULL;
    if (capacity == 0) {
        capacity = NM_REDIS_DEDUP_DEFAULT;
    }
    if (capacity > NM_REDIS_DEDUP_MAX) {
        capacity = NM_REDIS_DEDUP_MAX;
    }
    nm_redis_dedup *d = calloc(1, sizeof(*d));
    size_t tsize = nmi_pow2_ceil(capacity * 2);
    if (d) {
        d->capacity = capacity;
        d->ring = calloc(capacity, sizeof(dd_entry));
        d->table = calloc(tsize, sizeof(uint32_t));
        d->tmask = tsize - 1;
    }
    if (!d || !d->ring || !d->table) {
        nm_redis_dedup_free(d);
        return nmi_err(NM_ENOMEM, "dedup window of %zu", capacity);
    }
    *out = d;
    return NM_OK;
}

void
nm_redis_dedup_free(nm_redis_dedup *d)
{
    if (!d) {
        return;
    }
    if (d->ring) {
        nm_redis_dedup_clear(d);
    }
    free(d->ring);
    free(d->table);
    free(d);
}

static size_t
find(const nm_redis_dedup *d, const char *id, size_t len, uint64_t h,
     bool *found)
{
    size_t i = h & d->tmask;
    for (;;) {
        uint32_t v = d->table[i];
        if (v == 0) {
            *found = false;
            return i;
        }
        const dd_entry *e = &d->ring[v - 1];
        if (e->hash == h && e->len == len && memcmp(e->id, id, len) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & d->tmask;
    }
}

/* Remove table slot i, shifting later entries of the cluster back. */
static void
table_delete(nm_redis_dedup *d, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & d->tmask;
        uint32_t v = d->table[j];
        if (v == 0) {
            break;
        }
        size_t home = d->ring[v - 1].hash & d->tmask;
        /* Move j into the hole at i if its home is not in (i, j]. */
        bool in_range =
            i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            d->table[i] = v;
            i = j;
        }
    }
    d->table[i] = 0;
}

bool
nm_redis_dedup_is_duplicate(nm_redis_dedup *d, const char *id, size_t len)
{
    if (!d || !id) {
        return false;
    }
    uint64_t h = XXH3_64bits(id, len);
    bool found;
    size_t slot = find(d, id, len, h, &found);
    if (found) {
        return true; /* FIFO: no refresh on re-observation */
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        return false; /* cannot remember it; say "new" (never drop data) */
    }
    memcpy(copy, id, len);
    copy[len] = '\0';
    size_t pos;
    if (d->len == d->capacity) {
        /* Evict the oldest: its ring position is reused. */
        pos = d->head;
        dd_entry *old = &d->ring[pos];
        bool f;
        size_t os = find(d, old->id, old->len, old->hash, &f);
        if (f) {
            table_delete(d, os);
        }
        free(old->id);
        d->head = (d->head + 1) % d->capacity;
        d->len--;
        slot = find(d, id, len, h, &found); /* the table moved */
    } else {
        pos = (d->head + d->len) % d->capacity;
    }
    d->ring[pos] = (dd_entry){.id = copy, .len = len, .hash = h};
    d->table[slot] = (uint32_t)pos + 1;
    d->len++;
    return false;
}

size_t
nm_redis_dedup_len(const nm_redis_dedup *d)
{
    return d ? d->len : 0;
}

size_t
nm_redis_dedup_capacity(const nm_redis_dedup *d)
{
    return d ? d->capacity : 0;
}

bool
nm_redis_dedup_is_empty(const nm_redis_dedup *d)
{
    return !d || d->len == 0;
}

void
nm_redis_dedup_clear(nm_redis_dedup *d)
{
    if (!d) {
        return;
    }
    for (size_t i = 0; i < d->len; i++) {
        dd_entry *e = &d->ring[(d->head + i) % d->capacity];
        free(e->id);
        e->id = NULL;
    }
    memset(d->table, 0, (d->tmask + 1) * sizeof(uint32_t));
    d->head = 0;
    d->len = 0;
}
