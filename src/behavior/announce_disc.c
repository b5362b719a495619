/*
 * src/behavior/announce_disc.c - nm_discovery: capability announcements
 * over a mesh node (netmesh/discovery.h).
 *
 * Everything on the wire happens in the node's unlocked hooks (on its I/O
 * thread, or inside nmi_mesh_tick on the manual driver):
 *   - the 0x0C00 handler decodes, checks (hop 0 => node_id is the session
 *     peer; dedup on (node_id, version, direct?); signature; entity ->
 *     node binding; TOFU), indexes, learns the route, and floods to the
 *     other adjacent peers while hop_count < max_hops - 1;
 *   - the peer-up hook pushes our announcement (and, sync_on_connect, the
 *     latest one of every other indexed node) to a new neighbour;
 *   - the tick hook broadcasts a debounced / rate-limited change,
 *     re-announces before the TTL runs out and runs the index GC.
 * API calls only change state under d->mu. Lock order: d->mu, then the
 * node's mutex (taken inside nm_mesh_* / nmi_mesh_*); sends happen after
 * d->mu is released.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/discovery.h>

#include "behavior/announce_impl.h"
#include "core/core.h"
#include "core/u64map.h"
#include "mesh/mesh_ext.h"
#include "wire/frame.h"

#define US_PER_MS UINT64_C(1000)
#define US_PER_S UINT64_C(1000000)

typedef struct origin {
    uint8_t entity[NM_ENTITY_ID_BYTES]; /* TOFU key */
    uint64_t max_any, max_direct;       /* dedup: highest versions seen */
    bool seen_any, seen_direct;
    nmi_ann last; /* latest accepted (head == NULL: none / expired) */
    uint64_t expires_us;
} origin;

struct nm_discovery {
    nm_mesh_t *m;
    nm_discovery_config cfg;
    pthread_mutex_t mu;
    nm_capindex *idx;
    uint64_t self_id;
    const nm_identity *ident;

    nm_capset *caps; /* latest set (NULL: never announced) */
    bool dirty;      /* caps changed since `cur` was built */
    nmi_ann cur;     /* our latest built announcement */
    uint64_t version;
    bool pending; /* a broadcast is scheduled at due_us */
    uint64_t due_us;
    bool bcast_ever;
    bool floor_reset; /* set_min_announce_interval: no floor until the
                         next broadcast */
    uint64_t last_bcast_us;
    uint64_t next_reannounce_us;
    uint64_t next_gc_us;
    uint32_t min_interval_ms;

    nmi_u64map origins; /* node id -> origin */
    nm_discovery_handler fn;
    void *fn_ctx;
    nm_discovery_stats st;
    bool attached;
};

/* ------------------------------------------------------------ config */

void
nm_discovery_config_init(nm_discovery_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    cfg->ttl_secs = NMI_ANN_DEFAULT_TTL;
    cfg->reannounce_ms = 0;
    cfg->min_announce_interval_ms = 10000;
    cfg->debounce_ms = 100;
    cfg->gc_interval_ms = 60000;
    cfg->max_hops = NM_DISCOVERY_MAX_HOPS;
    cfg->require_signed = true;
    cfg->sync_on_connect = true;
    cfg->max_origins = 65536;
}

static int
check_config(const nm_discovery_config *c)
{
    if (c->size != sizeof(*c)) {
        return nmi_err(NM_EINVAL, "discovery: config.size must be "
                                  "sizeof(nm_discovery_config)");
    }
    if (c->ttl_secs == 0) {
        return nmi_err(NM_EINVAL, "discovery: ttl_secs must be >= 1");
    }
    if (c->gc_interval_ms == 0) {
        return nmi_err(NM_EINVAL, "discovery: gc_interval_ms must be >= 1");
    }
    if (c->max_hops == 0 || c->max_hops > NM_DISCOVERY_MAX_HOPS) {
        return nmi_err(NM_EINVAL, "discovery: max_hops must be 1..%u",
                       NM_DISCOVERY_MAX_HOPS);
    }
    if (c->max_origins == 0) {
        return nmi_err(NM_EINVAL, "discovery: max_origins must be >= 1");
    }
    return NM_OK;
}

static uint64_t
reannounce_us(const nm_discovery *d)
{
    uint64_t ms = d->cfg.reannounce_ms;
    if (ms == 0) {
        ms = (uint64_t)d->cfg.ttl_secs * 1000u / 2u;
    }
    return (ms == 0 ? 1 : ms) * US_PER_MS;
}

/* ------------------------------------------------------------ sending */

/* Messages to one peer, collected under d->mu and sent after it. */
typedef struct outmsg {
    uint64_t peer;
    char *buf;
    size_t len;
} outmsg;

typedef struct outbox {
    outmsg *v;
    size_t n, cap;
} outbox;

static void
outbox_add(outbox *o, uint64_t peer, char *buf, size_t len)
{
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 8;
        outmsg *nv = realloc(o->v, nc * sizeof(*nv));
        if (nv == NULL) {
            free(buf);
            return;
        }
        o->v = nv;
        o->cap = nc;
    }
    o->v[o->n++] = (outmsg){peer, buf, len};
}

/* Send everything (consecutive messages to one peer go in one call) and
 * free the box. Called without d->mu. */
static void
outbox_flush(nm_discovery *d, outbox *o)
{
    uint64_t sent = 0;
    size_t i = 0;
    while (i < o->n) {
        size_t j = i;
        const void *ptrs[64];
        size_t lens[64];
        while (j < o->n && j - i < 64 && o->v[j].peer == o->v[i].peer) {
            ptrs[j - i] = o->v[j].buf;
            lens[j - i] = o->v[j].len;
            j++;
        }
        if (nmi_mesh_sp_send(d->m, o->v[i].peer, NM_DISCOVERY_SUBPROTOCOL,
                             NM_DISCOVERY_SUBPROTOCOL, ptrs, lens,
                             j - i) == NM_OK) {
            sent += j - i;
        }
        i = j;
    }
    for (size_t k = 0; k < o->n; k++) {
        free(o->v[k].buf);
    }
    free(o->v);
    memset(o, 0, sizeof(*o));
    if (sent > 0) {
        pthread_mutex_lock(&d->mu);
        d->st.sent += sent;
        pthread_mutex_unlock(&d->mu);
    }
}

/* Adjacent, not failed peers of the node (malloc'd ids). */
static size_t
adjacent_peers(nm_discovery *d, uint64_t **out)
{
    *out = NULL;
    nm_mesh_peer_info small[32];
    nm_mesh_peer_info *pi = small;
    size_t n = 0;
    if (nm_mesh_peers(d->m, small, 32, &n) != NM_OK) {
        return 0;
    }
    if (n > 32) {
        pi = malloc(n * sizeof(*pi));
        size_t n2 = 0;
        if (pi == NULL || nm_mesh_peers(d->m, pi, n, &n2) != NM_OK) {
            free(pi);
            return 0;
        }
        n = n2 < n ? n2 : n;
    }
    uint64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
    size_t k = 0;
    for (size_t i = 0; ids != NULL && i < n; i++) {
        if (pi[i].adjacent && (pi[i].state == NM_PEER_HEALTHY ||
                               pi[i].state == NM_PEER_SUSPECT)) {
            ids[k++] = pi[i].node_id;
        }
    }
    if (pi != small) {
        free(pi);
    }
    *out = ids;
    return k;
}

/* ------------------------------------------------------------ own */

static uint64_t
next_version(nm_discovery *d)
{
    /* wall-clock microseconds, strictly increasing: a restarted node's
     * announcements are newer than those receivers still hold */
    uint64_t v = nmi_wall_ns() / 1000u;
    d->version = v > d->version ? v : d->version + 1;
    return d->version;
}

/* Build a new version of our announcement from d->caps (d->mu held). */
static int
rebuild(nm_discovery *d)
{
    nmi_ann a;
    int rc = nmi_ann_build(d->ident, next_version(d), nmi_wall_ns(),
                           d->cfg.ttl_secs, d->caps, &a);
    if (rc != NM_OK) {
        return rc;
    }
    nmi_ann_clear(&d->cur);
    d->cur = a;
    d->dirty = false;
    return NM_OK;
}

/* Queue our announcement for every adjacent peer (d->mu held). */
static void
broadcast_locked(nm_discovery *d, uint64_t now, bool new_version, outbox *o)
{
    if ((new_version || d->dirty || d->cur.head == NULL) &&
        rebuild(d) != NM_OK) {
        return;
    }
    char *w = NULL;
    size_t wl = 0;
    if (nmi_ann_wire(&d->cur, 0, &w, &wl) != NM_OK) {
        return;
    }
    uint64_t *peers = NULL;
    size_t np = adjacent_peers(d, &peers);
    for (size_t i = 0; i < np; i++) {
        char *c = malloc(wl + 1);
        if (c != NULL) {
            memcpy(c, w, wl + 1);
            outbox_add(o, peers[i], c, wl);
        }
    }
    free(peers);
    free(w);
    d->st.broadcasts++;
    d->pending = false;
    d->bcast_ever = true;
    d->floor_reset = false;
    d->last_bcast_us = now;
    d->next_reannounce_us = now + reannounce_us(d);
}

/* ------------------------------------------------------------ receive */

static void
drop_last(origin *o)
{
    nmi_ann_clear(&o->last);
    o->expires_us = 0;
}

static void
origins_free(nmi_u64map *map)
{
    for (size_t i = 0; i < map->cap; i++) {
        origin *o = map->vals[i];
        if (o != NULL) {
            drop_last(o);
            free(o);
        }
    }
    nmi_u64map_fini(map);
}

typedef enum verdict { V_ACCEPT, V_DUP, V_TOFU, V_FULL, V_NOMEM } verdict;

/* Dedup + TOFU + bookkeeping (d->mu held). On V_ACCEPT the announcement
 * moves into the origin (a is left empty). */
static verdict
admit_locked(nm_discovery *d, nmi_ann *a, bool direct, uint64_t now)
{
    origin *o = nmi_u64map_get(&d->origins, a->node_id);
    if (o != NULL) {
        if (direct ? (o->seen_direct && a->version <= o->max_direct)
                   : (o->seen_any && a->version <= o->max_any)) {
            return V_DUP;
        }
        if (memcmp(o->entity, a->entity_id, NM_ENTITY_ID_BYTES) != 0) {
            return V_TOFU;
        }
    } else {
        if (d->origins.len >= d->cfg.max_origins) {
            return V_FULL;
        }
        o = calloc(1, sizeof(*o));
        if (o == NULL || nmi_u64map_put(&d->origins, a->node_id, o) != NM_OK) {
            free(o);
            return V_NOMEM;
        }
        memcpy(o->entity, a->entity_id, NM_ENTITY_ID_BYTES);
    }
    if (!o->seen_any || a->version > o->max_any) {
        o->max_any = a->version;
    }
    o->seen_any = true;
    if (direct) {
        if (!o->seen_direct || a->version > o->max_direct) {
            o->max_direct = a->version;
        }
        o->seen_direct = true;
    }
    uint64_t exp = now + (uint64_t)a->ttl_secs * US_PER_S;
    if (exp == 0) {
        exp = 1;
    }
    int rc = nm_capindex_put(d->idx, a->node_id, a->caps, a->version, exp);
    if (rc == NM_CAPINDEX_STALE) {
        return V_DUP; /* an older version than the one indexed */
    }
    if (rc != NM_OK) {
        return V_NOMEM;
    }
    if (o->last.head == NULL || a->version >= o->last.version) {
        drop_last(o);
        o->last = *a;
        o->expires_us = exp;
        memset(a, 0, sizeof(*a));
    }
    return V_ACCEPT;
}

static void
process_one(nm_discovery *d, uint64_t peer, const uint8_t *buf, size_t len,
            uint64_t now)
{
    nmi_ann a;
    if (nmi_ann_decode(buf, len, &a) != NM_OK) {
        pthread_mutex_lock(&d->mu);
        d->st.rejected_decode++;
        pthread_mutex_unlock(&d->mu);
        return;
    }
    uint64_t *cnt = NULL;
    bool direct = a.hop_count == 0;
    uint64_t bound = 0;
    int vrc = NM_OK;
    if (a.hop_count >= d->cfg.max_hops) {
        cnt = &d->st.rejected_hops;
    } else if (a.node_id == d->self_id) {
        cnt = &d->st.own;
    } else if (direct && a.node_id != peer) {
        cnt = &d->st.rejected_origin;
    } else {
        /* cheap duplicate check before the signature */
        pthread_mutex_lock(&d->mu);
        origin *o = nmi_u64map_get(&d->origins, a.node_id);
        bool dup = o != NULL &&
                   (direct ? (o->seen_direct && a.version <= o->max_direct)
                           : (o->seen_any && a.version <= o->max_any));
        if (dup) {
            d->st.duplicates++;
        }
        pthread_mutex_unlock(&d->mu);
        if (dup) {
            nmi_ann_clear(&a);
            return;
        }
        if (!a.has_sig) {
            if (d->cfg.require_signed) {
                cnt = &d->st.rejected_unsigned;
            }
        } else {
            vrc = nmi_ann_verify(&a);
            if (vrc != NM_OK) {
                cnt = &d->st.rejected_signature;
            }
        }
        if (cnt == NULL && (nm_entity_node_id(a.entity_id, &bound) != NM_OK ||
                            bound != a.node_id)) {
            cnt = &d->st.rejected_binding;
        }
    }
    if (cnt != NULL) {
        pthread_mutex_lock(&d->mu);
        (*cnt)++;
        pthread_mutex_unlock(&d->mu);
        nmi_ann_clear(&a);
        return;
    }

    uint64_t origin_id = a.node_id, version = a.version;
    uint32_t hops = a.hop_count;
    outbox ob = {0};
    nm_capset *caps_copy = NULL;
    pthread_mutex_lock(&d->mu);
    verdict v = admit_locked(d, &a, direct, now);
    switch (v) {
    case V_DUP:
        d->st.duplicates++;
        break;
    case V_TOFU:
        d->st.rejected_tofu++;
        break;
    case V_FULL:
        d->st.rejected_full++;
        break;
    case V_NOMEM:
        break;
    case V_ACCEPT:
        d->st.accepted++;
        break;
    }
    nm_discovery_handler fn = d->fn;
    void *fn_ctx = d->fn_ctx;
    if (v == V_ACCEPT) {
        origin *o = nmi_u64map_get(&d->origins, origin_id);
        if (fn != NULL) {
            (void)nm_capset_clone(o->last.caps, &caps_copy);
        }
        if (hops + 1 < d->cfg.max_hops && o->last.head != NULL &&
            o->last.version == version) {
            char *w = NULL;
            size_t wl = 0;
            if (nmi_ann_wire(&o->last, hops + 1, &w, &wl) == NM_OK) {
                pthread_mutex_unlock(&d->mu);
                uint64_t *peers = NULL;
                size_t np = adjacent_peers(d, &peers);
                size_t k = 0;
                for (size_t i = 0; i < np; i++) {
                    uint64_t p = peers[i];
                    if (p == peer || p == origin_id ||
                        !nmi_mesh_split_horizon_ok(d->m, origin_id, p)) {
                        continue;
                    }
                    char *c = malloc(wl + 1);
                    if (c != NULL) {
                        memcpy(c, w, wl + 1);
                        outbox_add(&ob, p, c, wl);
                        k++;
                    }
                }
                free(peers);
                free(w);
                pthread_mutex_lock(&d->mu);
                d->st.forwarded += k;
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
    nmi_ann_clear(&a);
    if (v != V_ACCEPT) {
        return;
    }
    /* the route: origin is reachable through the peer it came from */
    nmi_mesh_learn_route(d->m, origin_id, peer,
                         (uint8_t)(hops > 255 ? 255 : hops));
    outbox_flush(d, &ob);
    if (fn != NULL && caps_copy != NULL) {
        fn(fn_ctx, origin_id, caps_copy, version, hops);
    }
    nm_capset_free(caps_copy);
}

static void
on_sp(void *ctx, nm_mesh_t *m, uint64_t peer, uint16_t sp, uint64_t stream_id,
      const uint8_t *payload, size_t len, uint16_t event_count, int hop_count)
{
    (void)sp;
    (void)stream_id;
    (void)hop_count;
    nm_discovery *d = ctx;
    uint64_t now = nmi_mesh_now_us(m);
    nmi_wire_frame_iter it;
    if (nmi_wire_frame_iter_init(&it, payload, len, event_count) != NM_OK) {
        return; /* the node validated the frame already */
    }
    nmi_wire_buf ev;
    while (nmi_wire_frame_next(&it, &ev)) {
        pthread_mutex_lock(&d->mu);
        d->st.received++;
        pthread_mutex_unlock(&d->mu);
        process_one(d, peer, ev.ptr, ev.len, now);
    }
}

/* ------------------------------------------------------------ hooks */

static void
on_event(void *ctx, nm_mesh_t *m, const nm_mesh_event *ev)
{
    nm_discovery *d = ctx;
    if (ev->kind != NM_MESH_EV_PEER_UP || !nmi_mesh_is_adjacent(m, ev->peer)) {
        return;
    }
    uint64_t now = nmi_mesh_now_us(m);
    outbox ob = {0};
    pthread_mutex_lock(&d->mu);
    bool have = d->caps != NULL;
    if (have && (d->dirty || d->cur.head == NULL)) {
        have = rebuild(d) == NM_OK;
    }
    if (have) {
        /* the latest set, even inside the rate-limit window (a pending
         * broadcast still goes to everyone at its time) */
        char *w = NULL;
        size_t wl = 0;
        if (nmi_ann_wire(&d->cur, 0, &w, &wl) == NM_OK) {
            outbox_add(&ob, ev->peer, w, wl);
        }
    }
    if (d->cfg.sync_on_connect) {
        for (size_t i = 0; i < d->origins.cap; i++) {
            origin *o = d->origins.vals[i];
            if (o == NULL || o->last.head == NULL ||
                d->origins.keys[i] == ev->peer || o->expires_us <= now ||
                o->last.hop_count + 1 >= d->cfg.max_hops) {
                continue;
            }
            char *w = NULL;
            size_t wl = 0;
            if (nmi_ann_wire(&o->last, o->last.hop_count + 1, &w, &wl) ==
                NM_OK) {
                outbox_add(&ob, ev->peer, w, wl);
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
    outbox_flush(d, &ob);
}

static void
on_tick(void *ctx, nm_mesh_t *m, uint64_t now)
{
    (void)m;
    nm_discovery *d = ctx;
    outbox ob = {0};
    pthread_mutex_lock(&d->mu);
    if (d->caps != NULL) {
        if (d->pending && now >= d->due_us) {
            broadcast_locked(d, now, false, &ob);
        } else if (d->bcast_ever && now >= d->next_reannounce_us) {
            broadcast_locked(d, now, true, &ob);
        }
    }
    if (now >= d->next_gc_us) {
        d->next_gc_us = now + (uint64_t)d->cfg.gc_interval_ms * US_PER_MS;
        int k = nm_capindex_sweep(d->idx, now);
        if (k > 0) {
            d->st.expired += (uint64_t)k;
        }
        for (size_t i = 0; i < d->origins.cap; i++) {
            origin *o = d->origins.vals[i];
            if (o != NULL && o->last.head != NULL && o->expires_us <= now) {
                drop_last(o);
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
    outbox_flush(d, &ob);
}

/* ------------------------------------------------------------ API */

int
nm_discovery_open(nm_mesh_t *mesh, const nm_discovery_config *cfg,
                  nm_discovery **out)
{
    if (mesh == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "discovery: NULL argument");
    }
    *out = NULL;
    nm_discovery_config dflt;
    if (cfg == NULL) {
        nm_discovery_config_init(&dflt);
        cfg = &dflt;
    }
    int rc = check_config(cfg);
    if (rc != NM_OK) {
        return rc;
    }
    nm_discovery *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return nmi_err(NM_ENOMEM, "discovery: out of memory");
    }
    d->m = mesh;
    d->cfg = *cfg;
    d->min_interval_ms = cfg->min_announce_interval_ms;
    d->self_id = nm_mesh_node_id(mesh);
    d->ident = nmi_mesh_identity(mesh);
    nmi_u64map_init(&d->origins);
    pthread_mutex_init(&d->mu, NULL);
    rc = nm_capindex_new(&d->idx);
    if (rc == NM_OK) {
        rc = nmi_mesh_sp_register(mesh, NM_DISCOVERY_SUBPROTOCOL, on_sp, d);
        d->attached = rc == NM_OK;
    }
    if (rc == NM_OK) {
        rc = nmi_mesh_event_hook(mesh, on_event, d);
    }
    if (rc == NM_OK) {
        rc = nmi_mesh_tick_hook(mesh, on_tick, d);
    }
    if (rc != NM_OK) {
        int keep = rc;
        nm_discovery_close(d);
        return keep;
    }
    pthread_mutex_lock(&d->mu);
    d->next_gc_us =
        nmi_mesh_now_us(mesh) + (uint64_t)cfg->gc_interval_ms * US_PER_MS;
    pthread_mutex_unlock(&d->mu);
    *out = d;
    return NM_OK;
}

void
nm_discovery_close(nm_discovery *d)
{
    if (d == NULL) {
        return;
    }
    if (d->attached) {
        nmi_mesh_ext_detach(d->m, d);
    }
    nm_capindex_free(d->idx);
    nm_capset_free(d->caps);
    nmi_ann_clear(&d->cur);
    origins_free(&d->origins);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

int
nm_discovery_announce(nm_discovery *d, const nm_capset *caps)
{
    if (d == NULL || caps == NULL) {
        return nmi_err(NM_EINVAL, "discovery: NULL argument");
    }
    /* size check: a signed announcement must fit one event */
    nmi_ann probe;
    int rc = nmi_ann_build(d->ident, UINT64_MAX, UINT64_MAX, d->cfg.ttl_secs,
                           caps, &probe);
    if (rc != NM_OK) {
        return rc;
    }
    size_t need = probe.head_len + probe.tail_len + 2 * NM_SIGNATURE_BYTES +
                  sizeof(",\"signature\":\"\"") - 1;
    nmi_ann_clear(&probe);
    if (need > (size_t)NMI_WIRE_FRAME_MAX_EVENT) {
        return nmi_err(NM_ETOOBIG,
                       "discovery: the announcement would be %zu bytes "
                       "(one event holds %zu)",
                       need, (size_t)NMI_WIRE_FRAME_MAX_EVENT);
    }
    nm_capset *copy = NULL;
    rc = nm_capset_clone(caps, &copy);
    if (rc != NM_OK) {
        return rc;
    }
    rc = nm_capindex_put(d->idx, d->self_id, copy, 0, 0);
    if (rc != NM_OK) {
        nm_capset_free(copy);
        return rc;
    }
    uint64_t now = nmi_mesh_now_us(d->m);
    pthread_mutex_lock(&d->mu);
    nm_capset_free(d->caps);
    d->caps = copy;
    d->dirty = true;
    if (!d->pending) {
        uint64_t due = now + (uint64_t)d->cfg.debounce_ms * US_PER_MS;
        uint64_t floor =
            d->last_bcast_us + (uint64_t)d->min_interval_ms * US_PER_MS;
        if (d->bcast_ever && !d->floor_reset && floor > due) {
            due = floor;
        }
        d->pending = true;
        d->due_us = due;
    }
    pthread_mutex_unlock(&d->mu);
    return NM_OK;
}

int
nm_discovery_set_min_announce_interval(nm_discovery *d, uint32_t ms)
{
    if (d == NULL) {
        return nmi_err(NM_EINVAL, "discovery: NULL argument");
    }
    uint64_t now = nmi_mesh_now_us(d->m);
    pthread_mutex_lock(&d->mu);
    d->min_interval_ms = ms;
    d->floor_reset = true;
    if (d->pending) {
        uint64_t due = now + (uint64_t)d->cfg.debounce_ms * US_PER_MS;
        if (due < d->due_us) {
            d->due_us = due;
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NM_OK;
}

int
nm_discovery_find_nodes(nm_discovery *d, const nm_capfilter *f, uint64_t **ids,
                        size_t *n)
{
    if (d == NULL) {
        return nmi_err(NM_EINVAL, "discovery: NULL argument");
    }
    return nm_capindex_find(d->idx, f, ids, n);
}

int
nm_discovery_find_nodes_scoped(nm_discovery *d, const nm_capfilter *f,
                               const nm_scope_filter *scope, uint64_t **ids,
                               size_t *n)
{
    if (d == NULL) {
        return nmi_err(NM_EINVAL, "discovery: NULL argument");
    }
    return nm_capindex_find_scoped(d->idx, f, scope, ids, n);
}

int
nm_discovery_find_best_node(nm_discovery *d, const nm_capreq *req,
                            const nm_scope_filter *scope, uint64_t *node_id)
{
    if (d == NULL) {
        return nmi_err(NM_EINVAL, "discovery: NULL argument");
    }
    return nm_capindex_best(d->idx, req, scope, node_id);
}

int
nm_discovery_get(nm_discovery *d, uint64_t node_id, nm_capset **out,
                 uint64_t *version)
{
    if (d == NULL) {
        return nmi_err(NM_EINVAL, "discovery: NULL argument");
    }
    return nm_capindex_get(d->idx, node_id, out, version);
}

size_t
nm_discovery_count(nm_discovery *d)
{
    return d == NULL ? 0 : nm_capindex_count(d->idx);
}

int
nm_discovery_set_handler(nm_discovery *d, nm_discovery_handler fn, void *ctx)
{
    if (d == NULL) {
        return nmi_err(NM_EINVAL, "discovery: NULL argument");
    }
    pthread_mutex_lock(&d->mu);
    d->fn = fn;
    d->fn_ctx = ctx;
    pthread_mutex_unlock(&d->mu);
    return NM_OK;
}

void
nm_discovery_stats_get(nm_discovery *d, nm_discovery_stats *out)
{
    if (d == NULL || out == NULL) {
        return;
    }
    pthread_mutex_lock(&d->mu);
    *out = d->st;
    pthread_mutex_unlock(&d->mu);
}

bool
nm_discovery_caps_of(void *discovery, uint64_t node_id, nm_capset **out)
{
    if (discovery == NULL || out == NULL) {
        return false;
    }
    return nm_discovery_get(discovery, node_id, out, NULL) == NM_OK;
}

bool
nm_discovery_entity_of(void *discovery, uint64_t node_id,
                       uint8_t out[NM_ENTITY_ID_BYTES])
{
    nm_discovery *d = discovery;
    if (d == NULL || out == NULL) {
        return false;
    }
    pthread_mutex_lock(&d->mu);
    origin *o = nmi_u64map_get(&d->origins, node_id);
    bool ok = o != NULL;
    if (ok) {
        memcpy(out, o->entity, NM_ENTITY_ID_BYTES);
    }
    pthread_mutex_unlock(&d->mu);
    return ok;
}

int
nmi_discovery_pin(nm_discovery *d, uint64_t node_id,
                  const uint8_t entity_id[NM_ENTITY_ID_BYTES])
{
    if (d == NULL || entity_id == NULL) {
        return nmi_err(NM_EINVAL, "discovery: NULL argument");
    }
    pthread_mutex_lock(&d->mu);
    int rc = NM_OK;
    if (nmi_u64map_get(&d->origins, node_id) != NULL) {
        rc = nmi_err(NM_EEXIST, "discovery: node already bound");
    } else {
        origin *o = calloc(1, sizeof(*o));
        if (o == NULL || nmi_u64map_put(&d->origins, node_id, o) != NM_OK) {
            free(o);
            rc = nmi_err(NM_ENOMEM, "discovery: out of memory");
        } else {
            memcpy(o->entity, entity_id, NM_ENTITY_ID_BYTES);
        }
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}
