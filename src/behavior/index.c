/* src/behavior/index.c - the local capability index: node_id -> set, an
 * inverted index normalised-tag -> posting list, TTL sweep, find /
 * find_scoped / best.
 *
 * Layout: entries live in a slot array (freed slots are reused). Every
 * distinct normalised tag (separator folded to '=', so semantic_eq tags
 * share one id) is interned once and owns a posting list of (slot, k)
 * pairs, k being the tag's position in that entry's sorted id array; the
 * entry keeps the reverse position, so removing a node is O(its tags) with
 * swap-removal in each posting list. A query resolves its required tags
 * (plus hardware.gpu / the vendor tag when asked) to ids, walks the
 * smallest posting list and checks the other ids by binary search in each
 * candidate: the cost follows the smallest list, not the index size.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "behavior/filter_impl.h"
#include "core/core.h"

typedef struct entry {
    uint64_t node_id;
    uint64_t version;
    uint64_t expires_at;
    nm_capset *set;
    nmi_caps_facts facts;
    uint32_t *ids; /* sorted unique tag ids */
    uint32_t *pos; /* pos[k]: index of this entry in posting ids[k] */
    size_t nids;
    bool live;
} entry;

typedef struct posting {
    char *norm; /* NULL when the id is free */
    uint64_t hash;
    uint32_t *slot;
    uint32_t *k;
    size_t n, cap;
} posting;

#define EMPTY UINT32_MAX
#define TOMB (UINT32_MAX - 1)

struct nm_capindex {
    pthread_rwlock_t lock;
    entry *e;
    size_t ne, ecap;
    uint32_t *free_slots;
    size_t nfree, fcap;
    size_t live;
    /* node_id -> slot (open addressing, linear probing) */
    uint64_t *nkeys;
    uint32_t *nvals; /* EMPTY / TOMB / slot */
    size_t ncap, nused;
    /* tag id table */
    posting *post;
    size_t npost, pcap;
    uint32_t *free_ids;
    size_t nfree_ids, ficap;
    /* normalised string -> tag id */
    uint32_t *tslots; /* EMPTY / TOMB / id */
    size_t tcap, tused;
};

/* ------------------------------------------------------------ node map */

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static long
nmap_find(const nm_capindex *x, uint64_t id)
{
    if (x->ncap == 0) {
        return -1;
    }
    size_t mask = x->ncap - 1, i = mix64(id) & mask;
    for (;;) {
        uint32_t v = x->nvals[i];
        if (v == EMPTY) {
            return -1;
        }
        if (v != TOMB && x->nkeys[i] == id) {
            return (long)i;
        }
        i = (i + 1) & mask;
    }
}

static int nmap_put(nm_capindex *x, uint64_t id, uint32_t slot);

static int
nmap_grow(nm_capindex *x)
{
    size_t oc = x->ncap, nc = 64;
    while (x->live * 2 + 2 > nc) {
        nc *= 2;
    }
    uint64_t *ok = x->nkeys;
    uint32_t *ov = x->nvals;
    x->nkeys = malloc(nc * sizeof(uint64_t));
    x->nvals = malloc(nc * sizeof(uint32_t));
    if (x->nkeys == NULL || x->nvals == NULL) {
        free(x->nkeys);
        free(x->nvals);
        x->nkeys = ok;
        x->nvals = ov;
        return -1;
    }
    for (size_t i = 0; i < nc; i++) {
        x->nvals[i] = EMPTY;
    }
    x->ncap = nc;
    x->nused = 0;
    for (size_t i = 0; i < oc; i++) {
        if (ov[i] != EMPTY && ov[i] != TOMB) {
            nmap_put(x, ok[i], ov[i]);
        }
    }
    free(ok);
    free(ov);
    return 0;
}

static int
nmap_put(nm_capindex *x, uint64_t id, uint32_t slot)
{
    if ((x->nused + 1) * 4 > x->ncap * 3 && nmap_grow(x) != 0) {
        return -1;
    }
    size_t mask = x->ncap - 1, i = mix64(id) & mask;
    while (x->nvals[i] != EMPTY && x->nvals[i] != TOMB) {
        i = (i + 1) & mask;
    }
    if (x->nvals[i] == EMPTY) {
        x->nused++;
    }
    x->nkeys[i] = id;
    x->nvals[i] = slot;
    return 0;
}

/* ------------------------------------------------------------ tag table */

static long
tmap_find(const nm_capindex *x, const char *s, size_t n, uint64_t h)
{
    if (x->tcap == 0) {
        return -1;
    }
    size_t mask = x->tcap - 1, i = h & mask;
    for (;;) {
        uint32_t v = x->tslots[i];
        if (v == EMPTY) {
            return -1;
        }
        if (v != TOMB) {
            const posting *p = &x->post[v];
            if (p->hash == h && strlen(p->norm) == n &&
                memcmp(p->norm, s, n) == 0) {
                return (long)v;
            }
        }
        i = (i + 1) & mask;
    }
}

static void
tmap_insert_raw(nm_capindex *x, uint64_t h, uint32_t id)
{
    size_t mask = x->tcap - 1, i = h & mask;
    while (x->tslots[i] != EMPTY && x->tslots[i] != TOMB) {
        i = (i + 1) & mask;
    }
    if (x->tslots[i] == EMPTY) {
        x->tused++;
    }
    x->tslots[i] = id;
}

static int
tmap_rehash(nm_capindex *x, size_t want_live)
{
    size_t nc = 64;
    while (want_live * 2 + 2 > nc) {
        nc *= 2;
    }
    uint32_t *ns = malloc(nc * sizeof(uint32_t));
    if (ns == NULL) {
        return -1;
    }
    for (size_t i = 0; i < nc; i++) {
        ns[i] = EMPTY;
    }
    free(x->tslots);
    x->tslots = ns;
    x->tcap = nc;
    x->tused = 0;
    for (size_t id = 0; id < x->npost; id++) {
        if (x->post[id].norm) {
            tmap_insert_raw(x, x->post[id].hash, (uint32_t)id);
        }
    }
    return 0;
}

static void
tmap_remove(nm_capindex *x, uint32_t id)
{
    const posting *p = &x->post[id];
    size_t mask = x->tcap - 1, i = p->hash & mask;
    while (x->tslots[i] != id) {
        i = (i + 1) & mask;
    }
    x->tslots[i] = TOMB;
}

/* Intern (s, n): returns the id, or -1 on ENOMEM. */
static long
intern(nm_capindex *x, const char *s, size_t n)
{
    uint64_t h = XXH3_64bits(s, n);
    long found = tmap_find(x, s, n, h);
    if (found >= 0) {
        return found;
    }
    size_t live = x->npost - x->nfree_ids + 1;
    if ((x->tused + 1) * 4 > x->tcap * 3 && tmap_rehash(x, live) != 0) {
        return -1;
    }
    char *norm = malloc(n + 1);
    if (norm == NULL) {
        return -1;
    }
    memcpy(norm, s, n);
    norm[n] = '\0';
    uint32_t id;
    if (x->nfree_ids) {
        id = x->free_ids[--x->nfree_ids];
    } else {
        if (x->npost == x->pcap) {
            size_t nc = x->pcap ? x->pcap * 2 : 64;
            posting *np = realloc(x->post, nc * sizeof(posting));
            if (np == NULL) {
                free(norm);
                return -1;
            }
            x->post = np;
            x->pcap = nc;
        }
        id = (uint32_t)x->npost++;
    }
    posting *p = &x->post[id];
    memset(p, 0, sizeof(*p));
    p->norm = norm;
    p->hash = h;
    tmap_insert_raw(x, h, id);
    return id;
}

static void
release_id(nm_capindex *x, uint32_t id)
{
    posting *p = &x->post[id];
    tmap_remove(x, id);
    free(p->norm);
    free(p->slot);
    free(p->k);
    memset(p, 0, sizeof(*p));
    if (x->nfree_ids == x->ficap) {
        size_t nc = x->ficap ? x->ficap * 2 : 64;
        uint32_t *nf = realloc(x->free_ids, nc * sizeof(uint32_t));
        if (nf == NULL) {
            return; /* the id leaks until the index is freed; harmless */
        }
        x->free_ids = nf;
        x->ficap = nc;
    }
    x->free_ids[x->nfree_ids++] = id;
}

/* ------------------------------------------------------------ entries */

static void
unlink_entry(nm_capindex *x, uint32_t slot)
{
    entry *e = &x->e[slot];
    for (size_t k = 0; k < e->nids; k++) {
        posting *p = &x->post[e->ids[k]];
        uint32_t at = e->pos[k];
        uint32_t last = (uint32_t)p->n - 1;
        if (at != last) {
            p->slot[at] = p->slot[last];
            p->k[at] = p->k[last];
            x->e[p->slot[at]].pos[p->k[at]] = at;
        }
        p->n--;
        if (p->n == 0) {
            release_id(x, e->ids[k]);
        }
    }
    free(e->ids);
    free(e->pos);
    e->ids = e->pos = NULL;
    e->nids = 0;
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Intern the set's tags and link slot into their posting lists. */
static int
link_entry(nm_capindex *x, uint32_t slot)
{
    entry *e = &x->e[slot];
    const nm_capset *set = e->set;
    e->nids = 0;
    if (set->ntags == 0) {
        return 0;
    }
    e->ids = malloc(set->ntags * sizeof(uint32_t));
    e->pos = malloc(set->ntags * sizeof(uint32_t));
    if (e->ids == NULL || e->pos == NULL) {
        goto oom;
    }
    for (size_t i = 0; i < set->ntags; i++) {
        nmi_sb sb;
        nmi_sb_init(&sb);
        nmi_tag_normalise(&set->tags[i], &sb);
        if (sb.oom) {
            nmi_sb_free(&sb);
            goto oom;
        }
        long id = intern(x, sb.buf, sb.len);
        nmi_sb_free(&sb);
        if (id < 0) {
            goto oom;
        }
        /* keep ids referenced so a failure below can release them */
        e->ids[e->nids] = (uint32_t)id;
        e->pos[e->nids] = UINT32_MAX;
        e->nids++;
    }
    qsort(e->ids, e->nids, sizeof(uint32_t), cmp_u32);
    size_t w = 0;
    for (size_t i = 0; i < e->nids; i++) {
        if (w == 0 || e->ids[w - 1] != e->ids[i]) {
            e->ids[w++] = e->ids[i];
        }
    }
    e->nids = w;
    for (size_t k = 0; k < e->nids; k++) {
        posting *p = &x->post[e->ids[k]];
        if (p->n == p->cap) {
            size_t nc = p->cap ? p->cap * 2 : 4;
            uint32_t *ns = realloc(p->slot, nc * sizeof(uint32_t));
            if (ns == NULL) {
                goto oom_linked;
            }
            p->slot = ns;
            uint32_t *nk = realloc(p->k, nc * sizeof(uint32_t));
            if (nk == NULL) {
                goto oom_linked;
            }
            p->k = nk;
            p->cap = nc;
        }
        p->slot[p->n] = slot;
        p->k[p->n] = (uint32_t)k;
        e->pos[k] = (uint32_t)p->n;
        p->n++;
        continue;
    oom_linked:
        /* unlink what is linked (pos set), release never-linked ids */
        for (size_t j = k; j < e->nids; j++) {
            if (x->post[e->ids[j]].norm && x->post[e->ids[j]].n == 0) {
                release_id(x, e->ids[j]);
            }
        }
        e->nids = k;
        unlink_entry(x, slot);
        return -1;
    }
    return 0;
oom:
    for (size_t j = 0; j < e->nids; j++) {
        if (x->post[e->ids[j]].norm && x->post[e->ids[j]].n == 0) {
            release_id(x, e->ids[j]);
        }
    }
    free(e->ids);
    free(e->pos);
    e->ids = e->pos = NULL;
    e->nids = 0;
    return -1;
}

static void
drop_slot(nm_capindex *x, uint32_t slot)
{
    entry *e = &x->e[slot];
    unlink_entry(x, slot);
    long mi = nmap_find(x, e->node_id);
    if (mi >= 0) {
        x->nvals[mi] = TOMB;
    }
    nm_capset_free(e->set);
    e->set = NULL;
    e->live = false;
    x->live--;
    if (x->nfree == x->fcap) {
        size_t nc = x->fcap ? x->fcap * 2 : 64;
        uint32_t *nf = realloc(x->free_slots, nc * sizeof(uint32_t));
        if (nf == NULL) {
            return; /* the slot is not reused; harmless */
        }
        x->free_slots = nf;
        x->fcap = nc;
    }
    x->free_slots[x->nfree++] = slot;
}

/* ------------------------------------------------------------ API */

int
nm_capindex_new(nm_capindex **out)
{
    if (out == NULL) {
        return nmi_err(NM_EINVAL, "out must be non-NULL");
    }
    nm_capindex *x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory allocating an index");
    }
    if (pthread_rwlock_init(&x->lock, NULL) != 0) {
        free(x);
        return nmi_err(NM_ENOMEM, "cannot initialise the index lock");
    }
    *out = x;
    return NM_OK;
}

void
nm_capindex_free(nm_capindex *x)
{
    if (x == NULL) {
        return;
    }
    for (size_t i = 0; i < x->ne; i++) {
        if (x->e[i].live) {
            nm_capset_free(x->e[i].set);
            free(x->e[i].ids);
            free(x->e[i].pos);
        }
    }
    for (size_t i = 0; i < x->npost; i++) {
        free(x->post[i].norm);
        free(x->post[i].slot);
        free(x->post[i].k);
    }
    free(x->e);
    free(x->free_slots);
    free(x->nkeys);
    free(x->nvals);
    free(x->post);
    free(x->free_ids);
    free(x->tslots);
    pthread_rwlock_destroy(&x->lock);
    free(x);
}

static int
put_locked(nm_capindex *x, uint64_t node_id, const nm_capset *set,
           uint64_t version, uint64_t expires_at)
{
    long mi = nmap_find(x, node_id);
    nm_capset *copy;
    int rc;
    if (mi >= 0) {
        entry *e = &x->e[x->nvals[mi]];
        if (version < e->version) {
            return NM_CAPINDEX_STALE;
        }
        if ((rc = nm_capset_clone(set, &copy)) != NM_OK) {
            return rc;
        }
        uint32_t slot = x->nvals[mi];
        unlink_entry(x, slot);
        nm_capset_free(e->set);
        e->set = copy;
        e->version = version;
        e->expires_at = expires_at;
        nmi_caps_facts_of(copy, &e->facts);
        if (link_entry(x, slot) != 0) {
            drop_slot(x, slot);
            return nmi_err(NM_ENOMEM, "out of memory indexing node %llu",
                           (unsigned long long)node_id);
        }
        return NM_OK;
    }
    if ((rc = nm_capset_clone(set, &copy)) != NM_OK) {
        return rc;
    }
    uint32_t slot;
    if (x->nfree) {
        slot = x->free_slots[--x->nfree];
    } else {
        if (x->ne == x->ecap) {
            size_t nc = x->ecap ? x->ecap * 2 : 64;
            entry *ne = realloc(x->e, nc * sizeof(entry));
            if (ne == NULL) {
                nm_capset_free(copy);
                return nmi_err(NM_ENOMEM, "out of memory growing the index");
            }
            x->e = ne;
            x->ecap = nc;
        }
        slot = (uint32_t)x->ne++;
    }
    entry *e = &x->e[slot];
    memset(e, 0, sizeof(*e));
    e->node_id = node_id;
    e->version = version;
    e->expires_at = expires_at;
    e->set = copy;
    e->live = true;
    nmi_caps_facts_of(copy, &e->facts);
    x->live++;
    if (nmap_put(x, node_id, slot) != 0 || link_entry(x, slot) != 0) {
        drop_slot(x, slot);
        return nmi_err(NM_ENOMEM, "out of memory indexing node %llu",
                       (unsigned long long)node_id);
    }
    return NM_OK;
}

int
nm_capindex_put(nm_capindex *x, uint64_t node_id, const nm_capset *set,
                uint64_t version, uint64_t expires_at)
{
    if (x == NULL || set == NULL) {
        return nmi_err(NM_EINVAL, "index and set must be non-NULL");
    }
    pthread_rwlock_wrlock(&x->lock);
    int rc = put_locked(x, node_id, set, version, expires_at);
    pthread_rwlock_unlock(&x->lock);
    return rc;
}

int
nm_capindex_remove(nm_capindex *x, uint64_t node_id)
{
    if (x == NULL) {
        return nmi_err(NM_EINVAL, "index must be non-NULL");
    }
    pthread_rwlock_wrlock(&x->lock);
    long mi = nmap_find(x, node_id);
    if (mi >= 0) {
        drop_slot(x, x->nvals[mi]);
    }
    pthread_rwlock_unlock(&x->lock);
    if (mi < 0) {
        return nmi_err(NM_ENOTFOUND, "node %llu is not indexed",
                       (unsigned long long)node_id);
    }
    return NM_OK;
}

int
nm_capindex_sweep(nm_capindex *x, uint64_t now)
{
    if (x == NULL) {
        return nmi_err(NM_EINVAL, "index must be non-NULL");
    }
    int n = 0;
    pthread_rwlock_wrlock(&x->lock);
    for (size_t i = 0; i < x->ne; i++) {
        entry *e = &x->e[i];
        if (e->live && e->expires_at != 0 && e->expires_at <= now) {
            drop_slot(x, (uint32_t)i);
            n++;
        }
    }
    pthread_rwlock_unlock(&x->lock);
    return n;
}

size_t
nm_capindex_count(const nm_capindex *x)
{
    if (x == NULL) {
        return 0;
    }
    nm_capindex *m = (nm_capindex *)x;
    pthread_rwlock_rdlock(&m->lock);
    size_t n = x->live;
    pthread_rwlock_unlock(&m->lock);
    return n;
}

int
nm_capindex_get(const nm_capindex *x, uint64_t node_id, nm_capset **out,
                uint64_t *version)
{
    if (x == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "index and out must be non-NULL");
    }
    nm_capindex *m = (nm_capindex *)x;
    pthread_rwlock_rdlock(&m->lock);
    long mi = nmap_find(x, node_id);
    int rc;
    if (mi < 0) {
        rc = nmi_err(NM_ENOTFOUND, "node %llu is not indexed",
                     (unsigned long long)node_id);
    } else {
        const entry *e = &x->e[x->nvals[mi]];
        rc = nm_capset_clone(e->set, out);
        if (rc == NM_OK && version) {
            *version = e->version;
        }
    }
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

/* ------------------------------------------------------------ queries */

typedef struct hit {
    uint64_t node_id;
    uint32_t slot;
} hit;

typedef struct hits {
    hit *v;
    size_t n, cap;
} hits;

static int
hits_push(hits *h, uint64_t id, uint32_t slot)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        hit *nv = realloc(h->v, nc * sizeof(hit));
        if (nv == NULL) {
            return -1;
        }
        h->v = nv;
        h->cap = nc;
    }
    h->v[h->n].node_id = id;
    h->v[h->n].slot = slot;
    h->n++;
    return 0;
}

static int
cmp_hit(const void *a, const void *b)
{
    uint64_t x = ((const hit *)a)->node_id, y = ((const hit *)b)->node_id;
    return x < y ? -1 : x > y;
}

/* Ascending node ids: qsort for short lists, an LSD radix sort (16-bit
 * digits, skipping digits that are equal everywhere) for long ones. */
static int
sort_hits(hits *h)
{
    if (h->n < 256) {
        qsort(h->v, h->n, sizeof(hit), cmp_hit);
        return 0;
    }
    hit *tmp = malloc(h->n * sizeof(hit));
    size_t *cnt = malloc(65536 * sizeof(size_t));
    if (tmp == NULL || cnt == NULL) {
        free(tmp);
        free(cnt);
        return -1;
    }
    uint64_t all_or = 0, all_and = UINT64_MAX;
    for (size_t i = 0; i < h->n; i++) {
        all_or |= h->v[i].node_id;
        all_and &= h->v[i].node_id;
    }
    hit *src = h->v, *dst = tmp;
    for (unsigned shift = 0; shift < 64; shift += 16) {
        if ((((all_or ^ all_and) >> shift) & 0xFFFF) == 0) {
            continue; /* this digit is the same in every id */
        }
        memset(cnt, 0, 65536 * sizeof(size_t));
        for (size_t i = 0; i < h->n; i++) {
            cnt[(src[i].node_id >> shift) & 0xFFFF]++;
        }
        size_t sum = 0;
        for (size_t d = 0; d < 65536; d++) {
            size_t c = cnt[d];
            cnt[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < h->n; i++) {
            dst[cnt[(src[i].node_id >> shift) & 0xFFFF]++] = src[i];
        }
        hit *t = src;
        src = dst;
        dst = t;
    }
    if (src != h->v) {
        memcpy(h->v, src, h->n * sizeof(hit));
    }
    free(tmp);
    free(cnt);
    return 0;
}

static bool
entry_has(const entry *e, uint32_t id)
{
    size_t lo = 0, hi = e->nids;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (e->ids[mid] < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < e->nids && e->ids[lo] == id;
}

/* Resolve a tag string to its id: 1 found, 0 unknown (nothing can match),
 * -1 ENOMEM. An empty string never matches (0). */
static int
probe_id(const nm_capindex *x, const char *q, uint32_t *id)
{
    if (q == NULL || q[0] == '\0') {
        return 0;
    }
    nmi_tag t;
    if (nmi_tag_parse_into(q, strlen(q), &t) != NM_OK) {
        return 0;
    }
    t.wire = (char *)q;
    nmi_sb sb;
    nmi_sb_init(&sb);
    nmi_tag_normalise(&t, &sb);
    if (sb.oom) {
        nmi_sb_free(&sb);
        return -1;
    }
    long v = tmap_find(x, sb.buf, sb.len, XXH3_64bits(sb.buf, sb.len));
    nmi_sb_free(&sb);
    if (v < 0) {
        return 0;
    }
    *id = (uint32_t)v;
    return 1;
}

/* Collect matching (node, slot) pairs in ascending node order. Caller
 * holds the read lock. */
static int
collect(const nm_capindex *x, const nm_capfilter *f,
        const nm_scope_filter *scope, hits *out)
{
    memset(out, 0, sizeof(*out));
    static const nm_capfilter none = NM_CAPFILTER_INIT;
    if (f == NULL) {
        f = &none;
    }
    size_t np = f->n_require_tags + 2;
    uint32_t stack_ids[16];
    uint32_t *ids = np <= 16 ? stack_ids : malloc(np * sizeof(uint32_t));
    if (ids == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory querying the index");
    }
    size_t nids = 0;
    int rc = NM_OK;
    bool impossible = false;
    for (size_t i = 0; i < f->n_require_tags && !impossible; i++) {
        int r = probe_id(x, f->require_tags[i], &ids[nids]);
        if (r < 0) {
            rc = nmi_err(NM_ENOMEM, "out of memory querying the index");
            goto done;
        }
        if (r == 0) {
            impossible = true;
        } else {
            nids++;
        }
    }
    bool need_gpu = f->require_gpu || f->gpu_vendor != NM_GPU_UNKNOWN ||
                    f->min_vram_gb > 0;
    if (!impossible && need_gpu) {
        int r = probe_id(x, "hardware.gpu", &ids[nids]);
        if (r <= 0) {
            impossible = true;
        } else {
            nids++;
        }
    }
    if (!impossible && f->gpu_vendor != NM_GPU_UNKNOWN) {
        char v[64];
        snprintf(v, sizeof(v), "hardware.gpu.vendor=%s",
                 nm_gpu_vendor_name(f->gpu_vendor));
        int r = probe_id(x, v, &ids[nids]);
        if (r <= 0) {
            impossible = true;
        } else {
            nids++;
        }
    }
    if (impossible) {
        goto done;
    }
    /* Start from the smallest posting list. */
    long best = -1;
    for (size_t i = 0; i < nids; i++) {
        if (best < 0 || x->post[ids[i]].n < x->post[ids[best]].n) {
            best = (long)i;
        }
    }
    size_t count = best >= 0 ? x->post[ids[best]].n : x->ne;
    for (size_t c = 0; c < count; c++) {
        uint32_t slot = best >= 0 ? x->post[ids[best]].slot[c] : (uint32_t)c;
        const entry *e = &x->e[slot];
        if (!e->live) {
            continue;
        }
        bool ok = true;
        for (size_t i = 0; ok && i < nids; i++) {
            ok = (long)i == best || entry_has(e, ids[i]);
        }
        if (!ok || !nm_scope_matches(scope, e->node_id, e->set) ||
            !nmi_filter_match(f, e->set, &e->facts, true)) {
            continue;
        }
        if (hits_push(out, e->node_id, slot) != 0) {
            rc = nmi_err(NM_ENOMEM, "out of memory querying the index");
            goto done;
        }
    }
    if (out->n > 1 && sort_hits(out) != 0) {
        rc = nmi_err(NM_ENOMEM, "out of memory querying the index");
        goto done;
    }
done:
    if (ids != stack_ids) {
        free(ids);
    }
    if (rc != NM_OK) {
        free(out->v);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

int
nm_capindex_find_scoped(const nm_capindex *x, const nm_capfilter *f,
                        const nm_scope_filter *scope, uint64_t **ids,
                        size_t *n)
{
    if (x == NULL || ids == NULL || n == NULL) {
        return nmi_err(NM_EINVAL, "index, ids and n must be non-NULL");
    }
    nm_capindex *m = (nm_capindex *)x;
    hits h;
    pthread_rwlock_rdlock(&m->lock);
    int rc = collect(x, f, scope, &h);
    pthread_rwlock_unlock(&m->lock);
    if (rc != NM_OK) {
        return rc;
    }
    *ids = NULL;
    *n = 0;
    if (h.n) {
        uint64_t *v = malloc(h.n * sizeof(uint64_t));
        if (v == NULL) {
            free(h.v);
            return nmi_err(NM_ENOMEM, "out of memory querying the index");
        }
        for (size_t i = 0; i < h.n; i++) {
            v[i] = h.v[i].node_id;
        }
        *ids = v;
        *n = h.n;
    }
    free(h.v);
    return NM_OK;
}

int
nm_capindex_find(const nm_capindex *x, const nm_capfilter *f, uint64_t **ids,
                 size_t *n)
{
    return nm_capindex_find_scoped(x, f, NULL, ids, n);
}

int
nm_capindex_best(const nm_capindex *x, const nm_capreq *req,
                 const nm_scope_filter *scope, uint64_t *node_id)
{
    if (x == NULL || req == NULL || node_id == NULL) {
        return nmi_err(NM_EINVAL, "index, req and node_id must be non-NULL");
    }
    nm_capindex *m = (nm_capindex *)x;
    hits h;
    pthread_rwlock_rdlock(&m->lock);
    int rc = collect(x, &req->filter, scope, &h);
    bool found = false;
    uint64_t best_id = 0;
    if (rc == NM_OK && h.n) {
        float best = 0.0f;
        for (size_t i = 0; i < h.n; i++) {
            float s = nmi_req_score(req, x->e[h.v[i].slot].set);
            if (s != s) {
                continue; /* NaN */
            }
            if (!found || s > best) {
                best = s;
                best_id = h.v[i].node_id;
                found = true;
            }
        }
        if (!found) {
            best_id = h.v[0].node_id; /* all NaN: the lowest id */
            found = true;
        }
    }
    pthread_rwlock_unlock(&m->lock);
    free(h.v);
    if (rc != NM_OK) {
        return rc;
    }
    if (!found) {
        return nmi_err(NM_ENOTFOUND, "no indexed node matches");
    }
    *node_id = best_id;
    return NM_OK;
}
