/*
 * src/adapters/mesh/mesh_bus.c - the bus over the mesh (netmesh/mesh_bus.h):
 * the mesh adapter (sender) and the bridge (receiver). Built only on the
 * public bus, adapter and mesh APIs.
 */
#define _GNU_SOURCE
#include <netmesh/mesh_bus.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

#define CHUNK 512
#define MAX_EVENT 8104u /* one mesh message: 8108 payload - 4 length */

typedef struct mesh_state {
    nm_mesh_adapter_config cfg;
    const nm_adapter_ops *mem;
    void *mem_state;
    uint32_t shards;
} mesh_state;

void
nm_mesh_adapter_config_init(nm_mesh_adapter_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    cfg->stream_base = NM_MESH_BUS_STREAM_BASE;
    cfg->reliability = NM_RELIABLE;
    cfg->window_bytes = 1u << 20;
    cfg->send_timeout_ms = 30000;
    cfg->local_capacity_per_shard = 1u << 20;
}

static void
bus_stream_config(nm_reliability rel, uint32_t window, nm_stream_config *sc)
{
    nm_stream_config_init(sc);
    sc->reliability = rel;
    sc->in_order = rel == NM_RELIABLE; /* applies on the receiving side */
    sc->window_bytes = window;
    sc->max_retries = 16;
}

static int
open_one(mesh_state *s, uint64_t stream)
{
    nm_stream_config sc;
    bus_stream_config(s->cfg.reliability, s->cfg.window_bytes, &sc);
    return nm_mesh_open_stream(s->cfg.mesh, s->cfg.peer, stream, &sc);
}

static int
mesh_init(const void *config, uint32_t shards, void **state)
{
    const nm_mesh_adapter_config *c = config;
    if (c == NULL || c->size != sizeof(*c) || c->mesh == NULL) {
        return nmi_err(NM_EINVAL, "mesh adapter: adapter_config must be an "
                                  "initialised nm_mesh_adapter_config with "
                                  "a mesh");
    }
    if (c->stream_base + shards < c->stream_base ||
        c->stream_base + shards > UINT64_MAX - 1) {
        return nmi_err(NM_EINVAL, "mesh adapter: stream_base too large");
    }
    mesh_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return nmi_err(NM_ENOMEM, "mesh adapter: no memory");
    }
    s->cfg = *c;
    s->shards = shards;
    s->mem = nm_adapter_memory();
    nm_memory_config mc;
    nm_memory_config_init(&mc);
    if (c->local_capacity_per_shard) {
        mc.capacity_per_shard = c->local_capacity_per_shard;
    }
    int rc = s->mem->init(&mc, shards, &s->mem_state);
    if (rc != NM_OK) {
        free(s);
        return rc;
    }
    for (uint32_t i = 0; i < shards; i++) {
        rc = open_one(s, c->stream_base + i);
        if (rc != NM_OK) {
            s->mem->destroy(s->mem_state);
            free(s);
            return rc;
        }
    }
    *state = s;
    return NM_OK;
}

static void
sleep_us(uint64_t us)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000u),
                          .tv_nsec = (long)(us % 1000000u) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Send ev[0..n) on one stream, waiting for credit up to the timeout. */
static int
send_chunk(mesh_state *s, uint64_t stream, const void *const *ptrs,
           const size_t *lens, size_t n)
{
    uint64_t deadline =
        nmi_mono_ns() + (uint64_t)s->cfg.send_timeout_ms * 1000000u;
    uint64_t backoff = 200;
    bool reopened = false;
    for (;;) {
        int rc = nm_mesh_send(s->cfg.mesh, s->cfg.peer, stream, ptrs, lens, n);
        if (rc == NM_ECLOSED && !reopened) {
            /* the stream was reset (retry budget, or the peer closed it):
             * restart it on both ends and go on */
            reopened = true;
            (void)nm_mesh_close_stream(s->cfg.mesh, s->cfg.peer, stream);
            rc = open_one(s, stream);
            if (rc == NM_OK) {
                continue;
            }
        }
        if (rc != NM_EBACKPRESSURE) {
            return rc;
        }
        if (nmi_mono_ns() >= deadline) {
            return rc;
        }
        sleep_us(backoff);
        backoff = backoff * 2 > 20000 ? 20000 : backoff * 2;
    }
}

static int
mesh_on_batch(void *state, const nm_batch *b)
{
    mesh_state *s = state;
    (void)s->mem->on_batch(s->mem_state, b); /* the local copy */
    uint64_t stream = s->cfg.stream_base + b->shard;
    const void *ptrs[CHUNK];
    size_t lens[CHUNK];
    size_t lost = 0;
    size_t i = 0;
    while (i < b->count) {
        size_t k = 0;
        while (k < CHUNK && i < b->count) {
            const nm_batch_event *e = &b->events[i++];
            if (e->len > MAX_EVENT) {
                lost++; /* cannot be one mesh message: given up */
                continue;
            }
            ptrs[k] = e->data;
            lens[k] = e->len;
            k++;
        }
        if (k > 0 && send_chunk(s, stream, ptrs, lens, k) != NM_OK) {
            lost += k;
        }
    }
    if (lost == b->count) {
        return nmi_err(NM_EIO, "mesh adapter: batch of shard %u not sent",
                       (unsigned)b->shard);
    }
    return (int)lost;
}

static int
mesh_flush(void *state, int timeout_ms)
{
    mesh_state *s = state;
    return s->mem->flush(s->mem_state, timeout_ms);
}

static int
mesh_poll_shard(void *state, uint16_t shard, const char *after_id,
                nm_poll_sink *sink, bool *has_more)
{
    mesh_state *s = state;
    return s->mem->poll_shard(s->mem_state, shard, after_id, sink, has_more);
}

static void
mesh_shutdown(void *state)
{
    mesh_state *s = state;
    s->mem->shutdown(s->mem_state);
}

static bool
mesh_healthy(void *state)
{
    mesh_state *s = state;
    nm_mesh_peer_info pi;
    return nm_mesh_peer(s->cfg.mesh, s->cfg.peer, &pi) == NM_OK &&
           pi.state == NM_PEER_HEALTHY;
}

static void
mesh_destroy(void *state)
{
    mesh_state *s = state;
    s->mem->destroy(s->mem_state);
    free(s);
}

static uint64_t
mesh_evicted(void *state)
{
    mesh_state *s = state;
    return s->mem->evicted ? s->mem->evicted(s->mem_state) : 0;
}

static const nm_adapter_ops mesh_ops = {
    .size = sizeof(nm_adapter_ops),
    .name = "mesh",
    .init = mesh_init,
    .on_batch = mesh_on_batch,
    .flush = mesh_flush,
    .poll_shard = mesh_poll_shard,
    .shutdown = mesh_shutdown,
    .healthy = mesh_healthy,
    .destroy = mesh_destroy,
    .evicted = mesh_evicted,
    .max_batch = NULL,
};

const nm_adapter_ops *
nm_adapter_mesh(void)
{
    return &mesh_ops;
}

/* ------------------------------------------------------------ bridge */

struct nm_mesh_bridge {
    nm_mesh_t *mesh;
    nm_bus *bus;
    uint64_t base;
    pthread_mutex_t mu;
    nm_mesh_bridge_stats st;
};

static void
bridge_fn(void *ctx, const nm_mesh_delivery *d)
{
    nm_mesh_bridge *b = ctx;
    const void *ptrs[CHUNK];
    size_t lens[CHUNK];
    uint64_t emitted = 0;
    size_t i = 0;
    while (i < d->count) {
        size_t k = 0;
        for (; k < CHUNK && i + k < d->count; k++) {
            ptrs[k] = d->msgs[i + k].data;
            lens[k] = d->msgs[i + k].len;
        }
        /* the bus stops at the first refused event: skip it, go on */
        size_t done = 0;
        while (done < k) {
            int n = nm_bus_emit_raw_batch(b->bus, ptrs + done, lens + done,
                                          k - done);
            if (n < 0) {
                break;
            }
            emitted += (uint64_t)n;
            done += (size_t)n;
            if (done < k) {
                done++; /* refused */
            }
        }
        i += k;
    }
    pthread_mutex_lock(&b->mu);
    b->st.deliveries++;
    b->st.events += d->count;
    b->st.emitted += emitted;
    b->st.refused += d->count - emitted;
    pthread_mutex_unlock(&b->mu);
}

int
nm_mesh_bridge_open(nm_mesh_t *mesh, nm_bus *bus, uint64_t stream_base,
                    uint32_t shards, nm_mesh_bridge **out)
{
    if (mesh == NULL || bus == NULL || out == NULL || shards == 0) {
        return nmi_err(NM_EINVAL, "mesh bridge: NULL argument or 0 shards");
    }
    nm_mesh_bridge *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return nmi_err(NM_ENOMEM, "mesh bridge: no memory");
    }
    b->mesh = mesh;
    b->bus = bus;
    b->base = stream_base ? stream_base : NM_MESH_BUS_STREAM_BASE;
    pthread_mutex_init(&b->mu, NULL);
    /* the streams the sender opens arrive reliable and are delivered in
     * sequence order here (in_order is a receive-side setting) */
    nm_stream_config sc;
    bus_stream_config(NM_RELIABLE, 1u << 20, &sc);
    int rc = nm_mesh_set_stream_defaults(mesh, b->base, shards, &sc);
    if (rc == NM_OK) {
        rc = nm_mesh_tap_streams(mesh, b->base, shards, bridge_fn, b);
        if (rc != NM_OK) {
            (void)nm_mesh_set_stream_defaults(mesh, b->base, 0, NULL);
        }
    }
    if (rc != NM_OK) {
        pthread_mutex_destroy(&b->mu);
        free(b);
        return rc;
    }
    *out = b;
    return NM_OK;
}

void
nm_mesh_bridge_stats_get(nm_mesh_bridge *b, nm_mesh_bridge_stats *out)
{
    if (b == NULL || out == NULL) {
        return;
    }
    pthread_mutex_lock(&b->mu);
    *out = b->st;
    pthread_mutex_unlock(&b->mu);
}

void
nm_mesh_bridge_close(nm_mesh_bridge *b)
{
    if (b == NULL) {
        return;
    }
    (void)nm_mesh_tap_streams(b->mesh, b->base, 0, NULL, NULL);
    (void)nm_mesh_set_stream_defaults(b->mesh, b->base, 0, NULL);
    pthread_mutex_destroy(&b->mu);
    free(b);
}
