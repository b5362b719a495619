/*
 * bench/bench_channels.c - `netmesh bench channels`.
 *
 *   auth.check_fast            ns per AuthGuard check (bloom + exact set,
 *                              1024 allowed principals, hits); upstream
 *                              quotes ~20 ns
 *   channel.publish_1sub_256B  msgs/s a subscriber received: two threaded
 *                              nodes in one process over loopback UDP, the
 *                              publisher calling nm_channels_publish_many
 *                              with 31 messages (one packet) per call on a
 *                              fire-and-forget channel, a back-pressured
 *                              call retried. Anchor nats_pubsub_256B: one
 *                              nats.c publisher, one async subscriber on a
 *                              local nats-server (core pub/sub, no
 *                              JetStream), measured in the same run.
 *   channel.publish_1call_256B the same with one message per call (one
 *                              packet each): the per-publish cost
 *   channel.publish_8sub_256B  msgs/s received in total by 8 subscriber
 *                              nodes (8 x the publishes), batches of 31
 */
#define _GNU_SOURCE
#include <nats/nats.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh.h>

#include "behavior/channel_impl.h"
#include "bench.h"
#include "bench_servers.h"
#include "core/core.h"

#define MSG 256
#define BATCH 31
#define MAXSUB 8

static const uint8_t PSK[32] = {0x63, 0x68, 0x62, 0x65, 0x6e, 0x63, 0x68};

/* ---------------------------------------------------------- auth guard */

static double
guard_run(const nmb_opts *o)
{
    nmi_guard g;
    nmi_guard_init(&g);
    for (uint64_t i = 0; i < 1024; i++) {
        (void)nmi_guard_allow(&g, i * 0x9E3779B97F4A7C15ull, 42,
                              NMI_GUARD_DOMAIN_NODE);
    }
    uint64_t n = nmb_iters(o, 20000000);
    uint64_t hits = 0;
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        hits += nmi_guard_check(&g, (i & 1023) * 0x9E3779B97F4A7C15ull, 42,
                                NMI_GUARD_DOMAIN_NODE);
    }
    uint64_t t1 = nmb_now_ns();
    NMB_SINK(hits);
    nmi_guard_fini(&g);
    return hits == n ? (double)(t1 - t0) / (double)n : -1;
}

/* ------------------------------------------------------------- mesh */

typedef struct sub_node {
    nm_mesh_t *m;
    nm_channels_t *ch;
    pthread_t th;
    uint64_t want, got, t_last;
    atomic_int stop;
} sub_node;

static nm_mesh_t *
open_node(void)
{
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    memcpy(cfg.psk, PSK, 32);
    cfg.psk_set = true;
    cfg.accept_any = true;
    cfg.heartbeat_ms = 1000;
    cfg.session_timeout_ms = 10000;
    cfg.socket_rcvbuf = 8u << 20;
    cfg.socket_sndbuf = 8u << 20;
    cfg.rx_queue_bytes = (size_t)64 << 20;
    nm_mesh_t *m = NULL;
    if (nm_mesh_open(&cfg, &m) != NM_OK) {
        fprintf(stderr, "bench channels: open: %s\n", nm_errdetail());
        return NULL;
    }
    return m;
}

static void *
sub_main(void *arg)
{
    sub_node *s = arg;
    while (s->got < s->want && !atomic_load(&s->stop)) {
        nm_channel_delivery *d;
        int rc = nm_channels_recv(s->ch, 300, &d);
        if (rc != NM_OK) {
            break; /* timed out: the rest was lost */
        }
        s->got += d->count;
        s->t_last = nmb_now_ns();
        nm_channel_delivery_free(d);
    }
    return NULL;
}

/* n messages published in calls of `per_call` to `nsubs` subscribers;
 * returns messages received per second, summed over subscribers. */
static double
channel_run(uint64_t n, size_t per_call, int nsubs)
{
    double out = -1;
    nm_mesh_t *pm = open_node();
    nm_channels_t *pc = NULL;
    sub_node subs[MAXSUB];
    memset(subs, 0, sizeof(subs));
    int opened = 0;
    uint8_t *buf = calloc(per_call, MSG);
    const void **ptrs = calloc(per_call, sizeof(*ptrs));
    size_t *lens = calloc(per_call, sizeof(*lens));
    if (pm == NULL || buf == NULL || ptrs == NULL || lens == NULL ||
        nm_channels_open(pm, NULL, &pc) != NM_OK) {
        goto done;
    }
    nm_channel_config c;
    nm_channel_config_init(&c, "bench/ch");
    c.window_bytes = 4u << 20;
    if (nm_channels_register(pc, &c) != NM_OK) {
        goto done;
    }
    char addr[64];
    uint8_t pub[32];
    nm_mesh_local_addr(pm, addr, sizeof(addr));
    nm_mesh_static_pubkey(pm, pub);
    uint64_t pid = nm_mesh_node_id(pm);
    nm_channels_config cc;
    nm_channels_config_init(&cc);
    cc.rx_queue_max = 1u << 20;
    for (; opened < nsubs; opened++) {
        sub_node *s = &subs[opened];
        s->m = open_node();
        if (s->m == NULL ||
            nm_mesh_connect_routed(s->m, addr, pub, pid, 5000) != NM_OK ||
            nm_channels_open(s->m, &cc, &s->ch) != NM_OK ||
            nm_channels_subscribe(s->ch, pid, "bench/ch", NULL, 5000, NULL) !=
                NM_OK) {
            fprintf(stderr, "bench channels: subscriber %d: %s\n", opened,
                    nm_errdetail());
            opened++;
            goto done;
        }
        s->want = n;
    }
    for (size_t i = 0; i < per_call; i++) {
        ptrs[i] = buf + i * MSG;
        lens[i] = MSG;
    }
    for (int i = 0; i < nsubs; i++) {
        pthread_create(&subs[i].th, NULL, sub_main, &subs[i]);
    }
    uint64_t t0 = nmb_now_ns();
    for (uint64_t sent = 0; sent < n;) {
        size_t k = n - sent < per_call ? (size_t)(n - sent) : per_call;
        nm_publish_report r;
        int rc = nm_channels_publish_many(pc, "bench/ch", ptrs, lens, k, &r);
        if (rc != NM_OK) {
            fprintf(stderr, "bench channels: publish: %s\n", nm_errdetail());
            break;
        }
        if (nsubs == 1 && r.delivered == 0) {
            nmi_sleep_ns(20000); /* back-pressure: retry this batch */
            continue;
        }
        if (r.delivered < r.attempted) {
            nmi_sleep_ns(20000); /* some subscribers lose this batch */
        }
        sent += k;
    }
    uint64_t got = 0, t_last = t0;
    for (int i = 0; i < nsubs; i++) {
        pthread_join(subs[i].th, NULL);
        got += subs[i].got;
        if (subs[i].t_last > t_last) {
            t_last = subs[i].t_last;
        }
    }
    if (t_last > t0 && got > 0) {
        out = (double)got / ((double)(t_last - t0) / 1e9);
    }
done:
    for (int i = 0; i < opened; i++) {
        nm_channels_close(subs[i].ch);
        nm_mesh_close(subs[i].m);
    }
    nm_channels_close(pc);
    nm_mesh_close(pm);
    free(buf);
    free(ptrs);
    free(lens);
    return out;
}

/* ------------------------------------------------------------- nats */

typedef struct nats_rx {
    atomic_uint_fast64_t got;
    atomic_uint_fast64_t t_last;
} nats_rx;

static void
nats_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
            void *closure)
{
    (void)nc;
    (void)sub;
    nats_rx *r = closure;
    atomic_fetch_add(&r->got, 1);
    atomic_store(&r->t_last, nmb_now_ns());
    natsMsg_Destroy(msg);
}

static double
nats_run(const char *url, uint64_t n)
{
    natsConnection *pc = NULL, *sc = NULL;
    natsSubscription *sub = NULL;
    nats_rx r;
    atomic_init(&r.got, 0);
    atomic_init(&r.t_last, 0);
    double out = -1;
    uint8_t payload[MSG] = {0};
    if (natsConnection_ConnectTo(&pc, url) != NATS_OK ||
        natsConnection_ConnectTo(&sc, url) != NATS_OK ||
        natsConnection_Subscribe(&sub, sc, "bench.ch", nats_on_msg, &r) !=
            NATS_OK ||
        natsSubscription_SetPendingLimits(sub, -1, -1) != NATS_OK ||
        natsConnection_Flush(sc) != NATS_OK) {
        fprintf(stderr, "bench channels: nats setup failed\n");
        goto done;
    }
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        if (natsConnection_Publish(pc, "bench.ch", payload, MSG) != NATS_OK) {
            fprintf(stderr, "bench channels: nats publish failed\n");
            goto done;
        }
    }
    (void)natsConnection_Flush(pc);
    uint64_t deadline = nmb_now_ns() + 30ull * 1000000000ull;
    uint64_t last = 0, stall = nmb_now_ns();
    while (atomic_load(&r.got) < n && nmb_now_ns() < deadline) {
        uint64_t g = atomic_load(&r.got);
        if (g != last) {
            last = g;
            stall = nmb_now_ns();
        } else if (nmb_now_ns() - stall > 1000000000ull) {
            break; /* a second without progress: the rest was dropped */
        }
        nmi_sleep_ns(1000000);
    }
    uint64_t got = atomic_load(&r.got);
    uint64_t tl = atomic_load(&r.t_last);
    if (got > 0 && tl > t0) {
        out = (double)got / ((double)(tl - t0) / 1e9);
    }
done:
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(sc);
    natsConnection_Destroy(pc);
    return out;
}

/* ------------------------------------------------------------ group */

int
nmb_group_channels(const nmb_opts *o)
{
    enum { MAXR = 51 };
    double guard[MAXR], one[MAXR], single[MAXR], eight[MAXR], nats[MAXR];
    int runs = o->runs > MAXR ? MAXR : (o->runs < 1 ? 1 : o->runs);
    if (sodium_init() < 0) {
        return -1;
    }
    nmt_server srv;
    bool own = o->url == NULL;
    const char *url = o->url;
    bool nats_ok = true;
    if (own) {
        if (nmt_server_try_start(&srv, NMT_NATS) != 0) {
            fprintf(stderr, "bench channels: cannot start nats-server (make "
                            "deps), or pass --url; the anchor is skipped\n");
            nats_ok = false;
        } else {
            url = srv.url;
        }
    }
    uint64_t n = nmb_iters(o, 1000000);
    uint64_t n1 = nmb_iters(o, 100000);
    uint64_t n8 = nmb_iters(o, 200000);
    int err = 0;
    for (int r = 0; r < runs && !err; r++) {
        guard[r] = guard_run(o);
        if (r % 2 == 0) {
            one[r] = channel_run(n, BATCH, 1);
            nats[r] = nats_ok ? nats_run(url, n) : -1;
        } else {
            nats[r] = nats_ok ? nats_run(url, n) : -1;
            one[r] = channel_run(n, BATCH, 1);
        }
        nats_ok = nats_ok && nats[r] > 0;
        single[r] = channel_run(n1, 1, 1);
        eight[r] = channel_run(n8, BATCH, 8);
        err = guard[r] < 0 || one[r] < 0 || single[r] < 0 || eight[r] < 0;
    }
    if (own && url != NULL) {
        nmt_server_cleanup(&srv);
    }
    if (err) {
        fprintf(stderr, "bench channels: a run failed\n");
        return -1;
    }
    nmb_report(o, "auth.check_fast", nmb_median(guard, runs), "ns", NULL, 0);
    if (nats_ok) {
        nmb_report(o, "channel.publish_1sub_256B", nmb_median(one, runs),
                   "msgs/s", "nats_pubsub_256B", nmb_median(nats, runs));
    } else {
        nmb_report(o, "channel.publish_1sub_256B", nmb_median(one, runs),
                   "msgs/s", NULL, 0);
    }
    nmb_report(o, "channel.publish_1call_256B", nmb_median(single, runs),
               "msgs/s", NULL, 0);
    nmb_report(o, "channel.publish_8sub_256B", nmb_median(eight, runs),
               "msgs/s", NULL, 0);
    return 0;
}
