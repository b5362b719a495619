/*
 * src/behavior/channel.c - the channel service: open / close, the
 * publisher's registry, the membership subprotocol (0x0A00) handler with
 * the subscribe gate (rate limit, channel, revocation, per-peer limit,
 * visibility, caps, token), publish fan-out through the AuthGuard, and the
 * token-expiry sweep. The subscriber side is channel_rx.c.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <netmesh/name.h>

#include "behavior/channel_impl.h"
#include "core/core.h"
#include "mesh/mesh_ext.h"
#include "wire/frame.h"
#include "wire/header.h"
#include "wire/membership.h"

/* ---- config ----------------------------------------------------------- */

void
nm_channels_config_init(nm_channels_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    cfg->subnet = NM_SUBNET_GLOBAL;
    cfg->token_skew_secs = NM_TOKEN_SKEW_DEFAULT_SECS;
    cfg->token_sweep_ms = 30000;
    cfg->auth_failure_limit = 16;
    cfg->auth_failure_window_ms = 60000;
    cfg->auth_throttle_ms = 30000;
    cfg->ack_timeout_ms = 5000;
    cfg->rx_queue_max = 4096;
}

void
nm_channel_config_init(nm_channel_config *cfg, const char *name)
{
    if (cfg == NULL) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    cfg->name = name;
    cfg->visibility = NM_VIS_GLOBAL;
}

const char *
nm_channel_reason_name(nm_channel_reason r)
{
    switch (r) {
    case NM_CHAN_OK:
        return "ok";
    case NM_CHAN_UNAUTHORIZED:
        return "unauthorized";
    case NM_CHAN_UNKNOWN_CHANNEL:
        return "unknown_channel";
    case NM_CHAN_RATE_LIMITED:
        return "rate_limited";
    case NM_CHAN_TOO_MANY_CHANNELS:
        return "too_many_channels";
    case NM_CHAN_IDENTITY_NOT_ESTABLISHED:
        return "identity_not_established";
    }
    return "unknown";
}

uint64_t
nmi_channels_unix_now(const nm_channels_t *ch)
{
    return ch->cfg.clock ? ch->cfg.clock(ch->cfg.clock_ctx) : nm_token_now();
}

/* ---- capability filters (deep copies) --------------------------------- */

struct nmi_filter_copy {
    nm_capfilter f;
    char **strs;
    size_t nstrs;
    const char **lists[3];
};

static void
filter_free(nmi_filter_copy *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->nstrs; i++) {
        free(c->strs[i]);
    }
    free(c->strs);
    for (int i = 0; i < 3; i++) {
        free(c->lists[i]);
    }
    free(c);
}

static int
filter_copy(const nm_capfilter *src, nmi_filter_copy **out)
{
    *out = NULL;
    if (src == NULL) {
        return NM_OK;
    }
    nmi_filter_copy *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return nmi_err(NM_ENOMEM, "channels: caps filter");
    }
    c->f = *src;
    const char *const *in[3] = {src->require_tags, src->require_models,
                                src->require_tools};
    size_t n[3] = {src->n_require_tags, src->n_require_models,
                   src->n_require_tools};
    size_t total = n[0] + n[1] + n[2];
    c->strs = calloc(total ? total : 1, sizeof(char *));
    if (c->strs == NULL) {
        filter_free(c);
        return nmi_err(NM_ENOMEM, "channels: caps filter");
    }
    for (int l = 0; l < 3; l++) {
        if (n[l] == 0) {
            continue;
        }
        if (in[l] == NULL) {
            filter_free(c);
            return nmi_err(NM_EINVAL, "channels: caps filter list is NULL");
        }
        c->lists[l] = calloc(n[l], sizeof(char *));
        if (c->lists[l] == NULL) {
            filter_free(c);
            return nmi_err(NM_ENOMEM, "channels: caps filter");
        }
        for (size_t i = 0; i < n[l]; i++) {
            if (in[l][i] == NULL) {
                filter_free(c);
                return nmi_err(NM_EINVAL, "channels: NULL string in filter");
            }
            char *s = strdup(in[l][i]);
            if (s == NULL) {
                filter_free(c);
                return nmi_err(NM_ENOMEM, "channels: caps filter");
            }
            c->strs[c->nstrs++] = s;
            c->lists[l][i] = s;
        }
    }
    c->f.require_tags = c->lists[0];
    c->f.require_models = c->lists[1];
    c->f.require_tools = c->lists[2];
    *out = c;
    return NM_OK;
}

/* A node's capabilities from the lookup or the index; false = unknown. */
static bool
caps_lookup(nm_channels_t *ch, uint64_t node, nm_capset **s)
{
    if (ch->cfg.caps_of != NULL) {
        return ch->cfg.caps_of(ch->cfg.caps_ctx, node, s);
    }
    return ch->cfg.caps != NULL &&
           nm_capindex_get(ch->cfg.caps, node, s, NULL) == NM_OK;
}

/* Does node's set (from the caps lookup; none known = the empty set, so a
 * non-empty filter refuses) pass f? */
static bool
caps_ok(nm_channels_t *ch, const nmi_filter_copy *f, uint64_t node)
{
    if (f == NULL) {
        return true;
    }
    nm_capset *s = NULL;
    if (!caps_lookup(ch, node, &s)) {
        if (nm_capset_new(&s) != NM_OK) {
            return false;
        }
    }
    bool ok = nm_capfilter_matches(&f->f, s);
    nm_capset_free(s);
    return ok;
}

/* Channel visibility toward a peer (upstream subnet_visible). */
static bool
peer_visible(nm_channels_t *ch, const nmi_chan *c, uint64_t node)
{
    if (c->vis == NM_VIS_GLOBAL) {
        return true;
    }
    nm_subnet_id dst = NM_SUBNET_GLOBAL;
    bool known = false;
    nm_capset *s = NULL;
    if (ch->cfg.subnet_policy != NULL && caps_lookup(ch, node, &s)) {
        dst = nm_subnet_policy_assign_capset(ch->cfg.subnet_policy, s);
        known = true;
        nm_capset_free(s);
    }
    return nm_subnet_visible(c->vis, ch->cfg.subnet, dst, known) == 1;
}

/* ---- registry helpers (under mu) --------------------------------------- */

static nmi_chan *
chan_find(nm_channels_t *ch, const char *name, size_t len, uint64_t hash)
{
    nmi_chan *c = nmi_u64map_get(&ch->chans, hash);
    if (c != NULL && c->name_len == len && memcmp(c->name, name, len) == 0) {
        return c;
    }
    return NULL;
}

static size_t
sub_index(const nmi_chan *c, uint64_t node, bool *found)
{
    size_t lo = 0, hi = c->nsubs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->subs[mid].node < node) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = lo < c->nsubs && c->subs[lo].node == node;
    return lo;
}

static size_t
peer_count(nm_channels_t *ch, uint64_t node)
{
    return (size_t)(uintptr_t)nmi_u64map_get(&ch->peer_count, node);
}

static void
peer_count_add(nm_channels_t *ch, uint64_t node, int delta)
{
    size_t n = peer_count(ch, node);
    n = delta > 0 ? n + 1 : (n > 0 ? n - 1 : 0);
    if (n == 0) {
        (void)nmi_u64map_del(&ch->peer_count, node);
    } else {
        (void)nmi_u64map_put(&ch->peer_count, node, (void *)(uintptr_t)n);
    }
}

static nmi_cgroup *
group_find(nmi_chan *c, const char *name)
{
    for (size_t i = 0; i < c->ngroups; i++) {
        if (strcmp(c->groups[i].name, name) == 0) {
            return &c->groups[i];
        }
    }
    return NULL;
}

/* Drop the group record when no subscriber uses it any more. */
static void
group_gc(nmi_chan *c, const char *name)
{
    if (name == NULL) {
        return;
    }
    for (size_t i = 0; i < c->nsubs; i++) {
        if (c->subs[i].group != NULL && strcmp(c->subs[i].group, name) == 0) {
            return;
        }
    }
    for (size_t i = 0; i < c->ngroups; i++) {
        if (strcmp(c->groups[i].name, name) == 0) {
            free(c->groups[i].name);
            c->groups[i] = c->groups[--c->ngroups];
            return;
        }
    }
}

static void
sub_remove_at(nm_channels_t *ch, nmi_chan *c, size_t i)
{
    uint64_t node = c->subs[i].node;
    char *group = c->subs[i].group;
    memmove(&c->subs[i], &c->subs[i + 1],
            (c->nsubs - i - 1) * sizeof(c->subs[0]));
    c->nsubs--;
    group_gc(c, group);
    free(group);
    (void)nmi_guard_revoke(&ch->guard, node, c->hash, NMI_GUARD_DOMAIN_NODE);
    peer_count_add(ch, node, -1);
}

static bool
sub_remove(nm_channels_t *ch, nmi_chan *c, uint64_t node)
{
    bool found;
    size_t i = sub_index(c, node, &found);
    if (found) {
        sub_remove_at(ch, c, i);
    }
    return found;
}

static bool
is_revoked(const nmi_chan *c, uint64_t node)
{
    for (size_t i = 0; i < c->nrevoked; i++) {
        if (c->revoked[i] == node) {
            return true;
        }
    }
    return false;
}

static void
chan_free(nm_channels_t *ch, nmi_chan *c)
{
    while (c->nsubs > 0) {
        sub_remove_at(ch, c, c->nsubs - 1);
    }
    free(c->subs);
    for (size_t i = 0; i < c->ngroups; i++) {
        free(c->groups[i].name);
    }
    free(c->groups);
    free(c->revoked);
    free(c->roots);
    filter_free(c->pub_caps);
    filter_free(c->sub_caps);
    free(c);
}

/* ---- open / close ------------------------------------------------------ */

int
nm_channels_open(nm_mesh_t *mesh, const nm_channels_config *cfg,
                 nm_channels_t **out)
{
    if (mesh == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "channels: NULL argument");
    }
    *out = NULL;
    nm_channels_config c;
    nm_channels_config_init(&c);
    if (cfg != NULL) {
        if (cfg->size < offsetof(nm_channels_config, rx_queue_max) +
                            sizeof(cfg->rx_queue_max) ||
            cfg->size > sizeof(c)) {
            return nmi_err(NM_EINVAL,
                           "channels: config.size is %zu, "
                           "expected sizeof(nm_channels_config)",
                           cfg->size);
        }
        memcpy(&c, cfg, cfg->size);
    }
    if (c.token_skew_secs > NM_TOKEN_SKEW_MAX_SECS) {
        return nmi_err(NM_EINVAL, "channels: token_skew_secs %u > %u",
                       c.token_skew_secs, NM_TOKEN_SKEW_MAX_SECS);
    }
    if (c.token_sweep_ms == 0 || c.auth_failure_limit == 0 ||
        c.auth_failure_window_ms == 0 || c.ack_timeout_ms == 0 ||
        c.rx_queue_max == 0) {
        return nmi_err(NM_EINVAL, "channels: zero sweep period, failure "
                                  "limit, window, ack timeout or queue size");
    }
    if (sodium_init() < 0) {
        return nmi_err(NM_EINTERNAL, "channels: libsodium init failed");
    }
    nm_channels_t *ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        return nmi_err(NM_ENOMEM, "channels: service");
    }
    ch->cfg = c;
    ch->m = mesh;
    ch->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ch->evfd < 0) {
        free(ch);
        return nmi_err(NM_EIO, "channels: eventfd failed");
    }
    pthread_mutex_init(&ch->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ch->cv, &ca);
    pthread_condattr_destroy(&ca);
    nmi_u64map_init(&ch->chans);
    nmi_u64map_init(&ch->peer_count);
    nmi_u64map_init(&ch->mysubs);
    nmi_guard_init(&ch->guard);
    nmi_limiter_init(&ch->limiter, c.auth_failure_limit,
                     (uint64_t)c.auth_failure_window_ms * 1000u,
                     (uint64_t)c.auth_throttle_ms * 1000u);
    ch->self_id = nm_mesh_node_id(mesh);
    const nm_identity *id = nmi_mesh_identity(mesh);
    if (nm_identity_entity_id(id, ch->self_entity) != NM_OK ||
        nm_identity_origin_hash(id, &ch->origin) != NM_OK) {
        nm_channels_close(ch);
        return nmi_err(NM_EINTERNAL, "channels: node identity");
    }
    ch->last_sweep_us = nmi_mesh_now_us(mesh);
    /* The subprotocol first: a second service fails here, before any
     * hook points at it. */
    int rc = nmi_mesh_sp_register(mesh, NM_CHANNEL_SUBPROTOCOL,
                                  nmi_channels_on_membership, ch);
    if (rc != NM_OK) {
        nm_channels_close(ch);
        return rc == NM_EEXIST
                   ? nmi_err(NM_EEXIST, "channels: the node already has a "
                                        "channel service")
                   : rc;
    }
    ch->attached = true;
    rc = nmi_mesh_tick_hook(mesh, nmi_channels_on_tick, ch);
    if (rc != NM_OK) {
        nm_channels_close(ch);
        return rc;
    }
    (void)nmi_mesh_set_delivery_filter(mesh, nmi_channels_filter, ch);
    *out = ch;
    return NM_OK;
}

void
nm_channels_close(nm_channels_t *ch)
{
    if (ch == NULL) {
        return;
    }
    if (ch->attached) {
        /* after these, no hook of ours runs or will run */
        (void)nmi_mesh_set_delivery_filter(ch->m, NULL, NULL);
        nmi_mesh_ext_detach(ch->m, ch);
    }
    (void)nm_channels_set_handler(ch, NULL, NULL);
    pthread_mutex_lock(&ch->mu);
    ch->closed = true;
    pthread_cond_broadcast(&ch->cv);
    while (ch->waiters > 0) {
        pthread_cond_wait(&ch->cv, &ch->mu);
    }
    pthread_mutex_unlock(&ch->mu);
    for (size_t i = 0; i < ch->chans.cap; i++) {
        if (ch->chans.vals[i] != NULL) {
            chan_free(ch, ch->chans.vals[i]);
        }
    }
    nmi_u64map_fini(&ch->chans);
    nmi_u64map_fini(&ch->peer_count);
    nmi_channels_rx_fini(ch);
    nmi_guard_fini(&ch->guard);
    nmi_limiter_fini(&ch->limiter);
    close(ch->evfd);
    pthread_cond_destroy(&ch->cv);
    pthread_mutex_destroy(&ch->mu);
    free(ch);
}

void
nm_channels_stats_get(nm_channels_t *ch, nm_channels_stats *out)
{
    if (ch == NULL || out == NULL) {
        return;
    }
    pthread_mutex_lock(&ch->mu);
    *out = ch->stats;
    pthread_mutex_unlock(&ch->mu);
}

/* ---- register ------------------------------------------------------------
 */

typedef struct reopen {
    uint64_t *nodes;
    size_t n;
    uint64_t stream_id;
    bool reliable;
    uint32_t window;
} reopen;

static void
open_streams(nm_channels_t *ch, const reopen *r)
{
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    sc.reliability = r->reliable ? NM_RELIABLE : NM_FIRE_AND_FORGET;
    if (r->window != 0) {
        sc.window_bytes = r->window;
    }
    for (size_t i = 0; i < r->n; i++) {
        /* NM_EBUSY (packets in flight) keeps the old config: fine */
        (void)nm_mesh_open_stream(ch->m, r->nodes[i], r->stream_id, &sc);
    }
}

int
nm_channels_register(nm_channels_t *ch, const nm_channel_config *cfg)
{
    if (ch == NULL || cfg == NULL || cfg->name == NULL) {
        return nmi_err(NM_EINVAL, "channels: NULL argument");
    }
    if (cfg->size != sizeof(*cfg)) {
        return nmi_err(NM_EINVAL,
                       "channels: channel config.size is %zu, "
                       "expected sizeof(nm_channel_config)",
                       cfg->size);
    }
    size_t len = strlen(cfg->name);
    uint64_t hash;
    int rc = nm_channel_hash(cfg->name, len, &hash);
    if (rc != NM_OK) {
        return rc; /* the validator's detail names the rule */
    }
    if (cfg->visibility == NM_VIS_EXPORTED) {
        return nmi_err(NM_ENOTSUP,
                       "channels: Exported visibility is deferred upstream "
                       "(export tables drop in v1); use Global, SubnetLocal "
                       "or ParentVisible");
    }
    if ((unsigned)cfg->visibility > NM_VIS_PARENT_VISIBLE) {
        return nmi_err(NM_EINVAL, "channels: unknown visibility %d",
                       (int)cfg->visibility);
    }
    if (cfg->n_token_roots > 0 && cfg->token_roots == NULL) {
        return nmi_err(NM_EINVAL, "channels: token_roots is NULL");
    }
    nmi_filter_copy *pc = NULL, *sc = NULL;
    uint8_t(*roots)[NM_ENTITY_ID_BYTES] = NULL;
    if ((rc = filter_copy(cfg->publish_caps, &pc)) != NM_OK ||
        (rc = filter_copy(cfg->subscribe_caps, &sc)) != NM_OK) {
        filter_free(pc);
        return rc;
    }
    if (cfg->n_token_roots > 0) {
        roots = malloc(cfg->n_token_roots * NM_ENTITY_ID_BYTES);
        if (roots == NULL) {
            filter_free(pc);
            filter_free(sc);
            return nmi_err(NM_ENOMEM, "channels: token roots");
        }
        memcpy(roots, cfg->token_roots,
               cfg->n_token_roots * NM_ENTITY_ID_BYTES);
    }
    reopen ro = {0};
    pthread_mutex_lock(&ch->mu);
    if (ch->closed) {
        pthread_mutex_unlock(&ch->mu);
        filter_free(pc);
        filter_free(sc);
        free(roots);
        return nmi_err(NM_ECLOSED, "channels: service closed");
    }
    nmi_chan *c = nmi_u64map_get(&ch->chans, hash);
    if (c != NULL && (c->name_len != len || memcmp(c->name, cfg->name, len))) {
        pthread_mutex_unlock(&ch->mu);
        filter_free(pc);
        filter_free(sc);
        free(roots);
        return nmi_err(NM_EEXIST,
                       "channels: '%s' collides with '%s' "
                       "(same 64-bit hash)",
                       cfg->name, c->name);
    }
    bool fresh = c == NULL;
    if (fresh) {
        c = calloc(1, sizeof(*c));
        if (c == NULL || nmi_u64map_put(&ch->chans, hash, c) != NM_OK) {
            pthread_mutex_unlock(&ch->mu);
            free(c);
            filter_free(pc);
            filter_free(sc);
            free(roots);
            return nmi_err(NM_ENOMEM, "channels: channel");
        }
        memcpy(c->name, cfg->name, len);
        c->name[len] = '\0';
        c->name_len = len;
        c->hash = hash;
        c->stream_id = nmi_wire_channel_stream_id(cfg->name, len);
        c->hash16 = nmi_wire_channel_hash16(cfg->name, len);
    } else if ((c->reliable != cfg->reliable ||
                c->window != cfg->window_bytes) &&
               c->nsubs > 0) {
        ro.nodes = malloc(c->nsubs * sizeof(uint64_t));
        if (ro.nodes != NULL) {
            for (size_t i = 0; i < c->nsubs; i++) {
                ro.nodes[i] = c->subs[i].node;
            }
            ro.n = c->nsubs;
        }
    }
    filter_free(c->pub_caps);
    filter_free(c->sub_caps);
    free(c->roots);
    c->pub_caps = pc;
    c->sub_caps = sc;
    c->roots = roots;
    c->nroots = cfg->n_token_roots;
    c->vis = cfg->visibility;
    c->reliable = cfg->reliable;
    c->priority = cfg->priority;
    c->require_token = cfg->require_token;
    c->max_subs = cfg->max_subscribers;
    c->window = cfg->window_bytes;
    ro.stream_id = c->stream_id;
    ro.reliable = c->reliable;
    ro.window = c->window;
    pthread_mutex_unlock(&ch->mu);
    if (ro.n > 0) {
        open_streams(ch, &ro);
    }
    free(ro.nodes);
    return NM_OK;
}

/* Validate a NUL-terminated name and find its channel (under mu). */
static int
lookup(nm_channels_t *ch, const char *name, nmi_chan **out)
{
    if (ch->closed) {
        return nmi_err(NM_ECLOSED, "channels: service closed");
    }
    size_t len = strlen(name);
    uint64_t hash;
    int rc = nm_channel_hash(name, len, &hash);
    if (rc != NM_OK) {
        return rc;
    }
    *out = chan_find(ch, name, len, hash);
    if (*out == NULL) {
        return nmi_err(NM_ENOTFOUND, "channels: no channel '%s' registered",
                       name);
    }
    return NM_OK;
}

int
nm_channels_unregister(nm_channels_t *ch, const char *name)
{
    if (ch == NULL || name == NULL) {
        return nmi_err(NM_EINVAL, "channels: NULL argument");
    }
    pthread_mutex_lock(&ch->mu);
    nmi_chan *c;
    int rc = lookup(ch, name, &c);
    if (rc == NM_OK) {
        (void)nmi_u64map_del(&ch->chans, c->hash);
        chan_free(ch, c);
    }
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

int
nm_channels_revoke(nm_channels_t *ch, const char *name, uint64_t node_id)
{
    if (ch == NULL || name == NULL) {
        return nmi_err(NM_EINVAL, "channels: NULL argument");
    }
    pthread_mutex_lock(&ch->mu);
    nmi_chan *c;
    int rc = lookup(ch, name, &c);
    if (rc == NM_OK) {
        (void)sub_remove(ch, c, node_id);
        if (!is_revoked(c, node_id)) {
            uint64_t *r =
                realloc(c->revoked, (c->nrevoked + 1) * sizeof(uint64_t));
            if (r == NULL) {
                rc = nmi_err(NM_ENOMEM, "channels: revocation list");
            } else {
                c->revoked = r;
                c->revoked[c->nrevoked++] = node_id;
            }
        }
    }
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

int
nm_channels_unrevoke(nm_channels_t *ch, const char *name, uint64_t node_id)
{
    if (ch == NULL || name == NULL) {
        return nmi_err(NM_EINVAL, "channels: NULL argument");
    }
    pthread_mutex_lock(&ch->mu);
    nmi_chan *c;
    int rc = lookup(ch, name, &c);
    for (size_t i = 0; rc == NM_OK && i < c->nrevoked; i++) {
        if (c->revoked[i] == node_id) {
            c->revoked[i] = c->revoked[--c->nrevoked];
            break;
        }
    }
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

int
nm_channels_subscribers(nm_channels_t *ch, const char *name, uint64_t *out,
                        size_t max, size_t *n)
{
    if (ch == NULL || name == NULL || n == NULL || (max > 0 && out == NULL)) {
        return nmi_err(NM_EINVAL, "channels: NULL argument");
    }
    pthread_mutex_lock(&ch->mu);
    nmi_chan *c;
    int rc = lookup(ch, name, &c);
    if (rc == NM_OK) {
        for (size_t i = 0; i < c->nsubs && i < max; i++) {
            out[i] = c->subs[i].node;
        }
        *n = c->nsubs;
    }
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

/* ---- publish --------------------------------------------------------------
 */

int
nm_channels_publish(nm_channels_t *ch, const char *name, const void *data,
                    size_t len, nm_publish_report *report)
{
    return nm_channels_publish_many(ch, name, &data, &len, 1, report);
}

int
nm_channels_publish_many(nm_channels_t *ch, const char *name,
                         const void *const *data, const size_t *lens, size_t n,
                         nm_publish_report *report)
{
    nm_publish_report rep = {0, 0, 0};
    if (report != NULL) {
        *report = rep;
    }
    if (ch == NULL || name == NULL ||
        (n > 0 && (data == NULL || lens == NULL))) {
        return nmi_err(NM_EINVAL, "channels: NULL argument");
    }
    uint64_t stack_targets[64];
    uint64_t *targets = stack_targets;
    size_t nt = 0;
    pthread_mutex_lock(&ch->mu);
    nmi_chan *c;
    int rc = lookup(ch, name, &c);
    if (rc != NM_OK) {
        pthread_mutex_unlock(&ch->mu);
        return rc;
    }
    if (!caps_ok(ch, c->pub_caps, ch->self_id)) {
        pthread_mutex_unlock(&ch->mu);
        return nmi_err(NM_EUNAUTHORIZED,
                       "channels: this node's capabilities do not satisfy "
                       "the publish_caps of '%s'",
                       name);
    }
    if (c->nsubs > NMI_ARRAY_LEN(stack_targets)) {
        targets = malloc(c->nsubs * sizeof(uint64_t));
        if (targets == NULL) {
            pthread_mutex_unlock(&ch->mu);
            return nmi_err(NM_ENOMEM, "channels: publish targets");
        }
    }
    bool any_group = false;
    for (size_t i = 0; i < c->nsubs; i++) {
        const nmi_csub *s = &c->subs[i];
        if (!nmi_guard_check(&ch->guard, s->node, c->hash,
                             NMI_GUARD_DOMAIN_NODE)) {
            ch->stats.guard_denials++;
            rep.filtered++;
            continue;
        }
        if (!peer_visible(ch, c, s->node)) {
            rep.filtered++;
            continue;
        }
        if (s->group != NULL) {
            any_group = true;
            continue;
        }
        targets[nt++] = s->node;
    }
    /* queue groups: one eligible member per group, round robin in roster
     * (node id) order */
    for (size_t g = 0; any_group && g < c->ngroups; g++) {
        nmi_cgroup *grp = &c->groups[g];
        size_t eligible = 0;
        for (int pass = 0; pass < 2; pass++) {
            size_t k = 0;
            size_t pick = pass == 1 ? (size_t)(grp->rr % eligible) : 0;
            for (size_t i = 0; i < c->nsubs; i++) {
                const nmi_csub *s = &c->subs[i];
                if (s->group == NULL || strcmp(s->group, grp->name) != 0 ||
                    !nmi_guard_check(&ch->guard, s->node, c->hash,
                                     NMI_GUARD_DOMAIN_NODE) ||
                    !peer_visible(ch, c, s->node)) {
                    continue;
                }
                if (pass == 0) {
                    eligible++;
                } else {
                    if (k == pick) {
                        targets[nt++] = s->node;
                    } else {
                        rep.filtered++;
                    }
                    k++;
                }
            }
            if (eligible == 0) {
                break;
            }
        }
        if (eligible > 0) {
            grp->rr++;
        }
    }
    ch->stats.publishes++;
    uint64_t stream_id = c->stream_id;
    nmi_mesh_send_opts opts = {.channel_hash = c->hash16,
                               .origin_hash = ch->origin};
    pthread_mutex_unlock(&ch->mu);

    rc = NM_OK;
    for (size_t i = 0; i < nt; i++) {
        rep.attempted++;
        int r = nmi_mesh_send_ex(ch->m, targets[i], stream_id, data, lens, n,
                                 &opts);
        if (r == NM_OK) {
            rep.delivered++;
        } else if (r == NM_ETOOBIG || r == NM_EINVAL) {
            rc = r; /* the payload itself is bad: same for everyone */
            break;
        }
    }
    if (targets != stack_targets) {
        free(targets);
    }
    if (report != NULL) {
        *report = rep;
    }
    return rc;
}

/* ---- membership: the publisher's gate ------------------------------------
 */

static void
refuse(nm_channels_t *ch, uint64_t peer, uint64_t now_us, bool counts)
{
    ch->stats.subscribes_rejected++;
    if (counts) {
        nmi_limiter_fail(&ch->limiter, peer, now_us);
    }
}

/* The token check: subject binding, then the chain against the roots with
 * scope SUBSCRIBE, this channel and the time window. *expires = the
 * earliest not_after of the chain. */
static bool
token_ok(nm_channels_t *ch, const nmi_chan *c, uint64_t peer,
         const nmi_wire_membership *msg, uint64_t *expires)
{
    nm_token_chain chain;
    if (msg->token_len == 0 ||
        nmi_wire_membership_token_chain(msg, &chain) != NM_OK) {
        return false;
    }
    const nm_token *leaf = &chain.links[chain.count - 1];
    uint8_t subject[NM_ENTITY_ID_BYTES];
    if (ch->cfg.entity_of != NULL) {
        if (!ch->cfg.entity_of(ch->cfg.entity_ctx, peer, subject)) {
            return false; /* identity not established: fail closed */
        }
    } else {
        uint64_t nid;
        if (nm_entity_node_id(leaf->subject, &nid) != NM_OK || nid != peer) {
            return false;
        }
        memcpy(subject, leaf->subject, sizeof(subject));
    }
    nm_token_verify_opts o;
    nm_token_verify_opts_init(&o);
    o.scope = NM_SCOPE_SUBSCRIBE;
    o.check_channel = true;
    o.channel_hash = c->hash;
    o.subject = subject;
    o.now = nmi_channels_unix_now(ch);
    o.skew_secs = ch->cfg.token_skew_secs;
    if (o.now == 0) {
        o.now = 1; /* 0 would mean "wall clock" */
    }
    ch->stats.token_verifications++;
    const uint8_t *roots = c->nroots ? &c->roots[0][0] : ch->self_entity;
    if (nm_token_chain_verify(&chain, roots, c->nroots ? c->nroots : 1, &o) !=
        NM_OK) {
        return false;
    }
    uint64_t e = UINT64_MAX;
    for (uint8_t i = 0; i < chain.count; i++) {
        if (chain.links[i].not_after < e) {
            e = chain.links[i].not_after;
        }
    }
    *expires = e;
    return true;
}

/* Decide a Subscribe (under mu). On acceptance *reopen_sid is the stream
 * to configure. */
static uint8_t
on_subscribe(nm_channels_t *ch, uint64_t peer, const nmi_wire_membership *msg,
             uint64_t now_us, reopen *ro)
{
    /* Throttled peers are answered before anything else is looked at: no
     * signature verification, no counting. */
    if (nmi_limiter_throttled(&ch->limiter, peer, now_us)) {
        ch->stats.rate_limited++;
        ch->stats.subscribes_rejected++;
        return NMI_WIRE_ACK_RATE_LIMITED;
    }
    uint64_t hash;
    nmi_chan *c = NULL;
    if (nm_channel_hash(msg->channel, msg->channel_len, &hash) == NM_OK) {
        c = chan_find(ch, msg->channel, msg->channel_len, hash);
    }
    if (c == NULL) {
        refuse(ch, peer, now_us, true);
        return NMI_WIRE_ACK_UNKNOWN_CHANNEL;
    }
    if (is_revoked(c, peer)) {
        refuse(ch, peer, now_us, true);
        return NMI_WIRE_ACK_UNAUTHORIZED;
    }
    bool found;
    size_t at = sub_index(c, peer, &found);
    if (!found && peer_count(ch, peer) >= NM_CHANNELS_PER_PEER_MAX) {
        refuse(ch, peer, now_us, false);
        return NMI_WIRE_ACK_TOO_MANY_CHANNELS;
    }
    if (!found && c->max_subs != 0 && c->nsubs >= c->max_subs) {
        refuse(ch, peer, now_us, false); /* capacity, not an auth failure */
        return NMI_WIRE_ACK_UNAUTHORIZED;
    }
    if (!peer_visible(ch, c, peer) || !caps_ok(ch, c->sub_caps, peer)) {
        refuse(ch, peer, now_us, true);
        return NMI_WIRE_ACK_UNAUTHORIZED;
    }
    uint64_t expires = 0;
    if (c->require_token && !token_ok(ch, c, peer, msg, &expires)) {
        refuse(ch, peer, now_us, true);
        return NMI_WIRE_ACK_UNAUTHORIZED;
    }
    char *group = NULL;
    if (msg->queue_group_len > 0) {
        group = malloc(msg->queue_group_len + 1);
        if (group == NULL) {
            ch->stats.subscribes_rejected++;
            return NMI_WIRE_ACK_UNAUTHORIZED; /* out of memory: fail closed */
        }
        memcpy(group, msg->queue_group, msg->queue_group_len);
        group[msg->queue_group_len] = '\0';
        if (group_find(c, group) == NULL) {
            nmi_cgroup *g =
                realloc(c->groups, (c->ngroups + 1) * sizeof(*c->groups));
            char *gname = strdup(group);
            if (g == NULL || gname == NULL) {
                if (g != NULL) {
                    c->groups = g;
                }
                free(gname);
                free(group);
                ch->stats.subscribes_rejected++;
                return NMI_WIRE_ACK_UNAUTHORIZED;
            }
            c->groups = g;
            c->groups[c->ngroups].name = gname;
            c->groups[c->ngroups].rr = 0;
            c->ngroups++;
        }
    }
    if (nmi_guard_allow(&ch->guard, peer, c->hash, NMI_GUARD_DOMAIN_NODE) !=
        NM_OK) {
        group_gc(c, group);
        free(group);
        ch->stats.subscribes_rejected++;
        return NMI_WIRE_ACK_UNAUTHORIZED;
    }
    if (found) {
        char *old = c->subs[at].group;
        c->subs[at].group = group;
        c->subs[at].expires = expires;
        group_gc(c, old);
        free(old);
    } else {
        if (c->nsubs == c->subs_cap) {
            size_t cap = c->subs_cap ? c->subs_cap * 2 : 4;
            nmi_csub *s = realloc(c->subs, cap * sizeof(*s));
            if (s == NULL) {
                (void)nmi_guard_revoke(&ch->guard, peer, c->hash,
                                       NMI_GUARD_DOMAIN_NODE);
                free(group);
                ch->stats.subscribes_rejected++;
                return NMI_WIRE_ACK_UNAUTHORIZED;
            }
            c->subs = s;
            c->subs_cap = cap;
        }
        memmove(&c->subs[at + 1], &c->subs[at],
                (c->nsubs - at) * sizeof(c->subs[0]));
        c->subs[at] =
            (nmi_csub){.node = peer, .group = group, .expires = expires};
        c->nsubs++;
        peer_count_add(ch, peer, +1);
    }
    nmi_limiter_clear(&ch->limiter, peer);
    ch->stats.subscribes_accepted++;
    ro->stream_id = c->stream_id;
    ro->reliable = c->reliable;
    ro->window = c->window;
    ro->n = 1;
    return NMI_WIRE_ACK_OK;
}

static void
on_unsubscribe(nm_channels_t *ch, uint64_t peer,
               const nmi_wire_membership *msg)
{
    uint64_t hash;
    if (nm_channel_hash(msg->channel, msg->channel_len, &hash) != NM_OK) {
        return;
    }
    nmi_chan *c = chan_find(ch, msg->channel, msg->channel_len, hash);
    if (c != NULL) {
        (void)sub_remove(ch, c, peer);
    }
}

#define ACK_BATCH 32

void
nmi_channels_on_membership(void *ctx, nm_mesh_t *m, uint64_t peer, uint16_t sp,
                           uint64_t stream_id, const uint8_t *payload,
                           size_t len, uint16_t event_count, int hop_count)
{
    nm_channels_t *ch = ctx;
    nmi_wire_frame_iter it;
    if (nmi_wire_frame_iter_init(&it, payload, len, event_count) != NM_OK) {
        return;
    }
    uint64_t now_us = nmi_mesh_now_us(m);
    uint8_t acks[ACK_BATCH][NMI_WIRE_MEMB_ACK_LEN];
    const void *ptrs[ACK_BATCH];
    size_t lens[ACK_BATCH];
    size_t nacks = 0;
    nmi_wire_buf ev;
    while (nmi_wire_frame_next(&it, &ev)) {
        nmi_wire_membership msg;
        reopen ro = {0};
        uint8_t reason = NMI_WIRE_ACK_OK;
        bool answer = false;
        pthread_mutex_lock(&ch->mu);
        if (ch->closed) {
            pthread_mutex_unlock(&ch->mu);
            return;
        }
        if (nmi_wire_membership_decode(ev.ptr, ev.len, &msg) != NM_OK) {
            ch->stats.bad_membership++;
        } else if (msg.type == NMI_WIRE_MEMB_SUBSCRIBE) {
            reason = on_subscribe(ch, peer, &msg, now_us, &ro);
            answer = true;
        } else if (msg.type == NMI_WIRE_MEMB_UNSUBSCRIBE) {
            on_unsubscribe(ch, peer, &msg);
            answer = true; /* idempotent: always Ok */
        } else {
            nmi_channels_on_ack(ch, peer, msg.nonce, msg.accepted, msg.reason);
        }
        pthread_mutex_unlock(&ch->mu);
        if (ro.n > 0) {
            /* configure the stream before the Ack goes out, so the first
             * publish after the subscriber's wake-up uses it */
            ro.nodes = &peer;
            open_streams(ch, &ro);
        }
        if (answer) {
            nmi_wire_membership ack;
            nmi_wire_membership_ack(&ack, msg.nonce, reason == 0, reason);
            size_t w = 0;
            if (nmi_wire_membership_encode(&ack, acks[nacks], sizeof(acks[0]),
                                           &w) == NM_OK) {
                ptrs[nacks] = acks[nacks];
                lens[nacks] = w;
                nacks++;
            }
        }
        if (nacks == ACK_BATCH) {
            (void)nmi_mesh_sp_send(m, peer, NM_CHANNEL_SUBPROTOCOL,
                                   NM_CHANNEL_SUBPROTOCOL, ptrs, lens, nacks);
            nacks = 0;
        }
    }
    if (nacks > 0) {
        (void)nmi_mesh_sp_send(m, peer, NM_CHANNEL_SUBPROTOCOL,
                               NM_CHANNEL_SUBPROTOCOL, ptrs, lens, nacks);
    }
}

/* ---- the token-expiry sweep ------------------------------------------------
 */

void
nmi_channels_on_tick(void *ctx, nm_mesh_t *m, uint64_t now_us)
{
    nm_channels_t *ch = ctx;
    pthread_mutex_lock(&ch->mu);
    if (ch->closed || now_us - ch->last_sweep_us <
                          (uint64_t)ch->cfg.token_sweep_ms * 1000u) {
        pthread_mutex_unlock(&ch->mu);
        return;
    }
    ch->last_sweep_us = now_us;
    uint64_t unix_now = nmi_channels_unix_now(ch);
    uint64_t skew = ch->cfg.token_skew_secs;
    for (size_t k = 0; k < ch->chans.cap; k++) {
        nmi_chan *c = ch->chans.vals[k];
        for (size_t i = 0; c != NULL && i < c->nsubs;) {
            uint64_t e = c->subs[i].expires;
            if (e != 0 && unix_now >= e + skew) {
                sub_remove_at(ch, c, i);
                ch->stats.expired_evictions++;
                continue;
            }
            i++;
        }
    }
    nmi_limiter_sweep(&ch->limiter, now_us);
    if (ch->guard.stale > 0) {
        nmi_guard_rebuild(&ch->guard);
    }
    pthread_mutex_unlock(&ch->mu);
}
