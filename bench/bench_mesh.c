/*
 * bench/bench_mesh.c - `netmesh bench mesh`: two mesh nodes in one process
 * over loopback UDP (each with its own I/O thread), against anchors
 * measured in the same run (bench_mesh_base.c), interleaved run by run:
 *
 *   mesh.stream_64B          msgs/s, fire-and-forget, one stream, 64-byte
 *                            messages sent 952 per call (8 packets)
 *                            vs udp_loopback_64B (one datagram per message)
 *   mesh.stream_64B_vs_zmq   the same figure vs zmq_curve_64B (PUSH/PULL,
 *                            CURVE, tcp://127.0.0.1)
 *   mesh.reliable_1KiB       MB/s of 1 KiB messages on a reliable stream
 *   mesh.rtt_p50_us / p99    request -> echo on a stream (one message)
 *   mesh.handshake_us        nm_mesh_connect (NKpsk0 over UDP, both
 *                            nodes' threads) vs x25519_x6_us, the six
 *                            X25519 operations the handshake cannot avoid
 *   mesh.idle_session_bytes  heap per idle session end (loopback-hub
 *                            nodes, no threads: malloc'd bytes held after
 *                            K handshakes / 2K session ends)
 */
#define _GNU_SOURCE
#include "bench.h"
#include "bench_mesh_base.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netmesh.h>
#include <sodium.h>

#include "mesh/node_impl.h"
#include "mesh/port.h"

static const uint8_t PSK[32] = {0x6e, 0x6d, 0x62, 0x65, 0x6e, 0x63, 0x68};

static nm_mesh_t *
open_node_ttl(uint32_t pingwave_ttl)
{
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    if (pingwave_ttl != 0) {
        cfg.pingwave_ttl = pingwave_ttl;
    }
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
        fprintf(stderr, "bench mesh: open: %s\n", nm_errdetail());
        return NULL;
    }
    return m;
}

static nm_mesh_t *
open_node(void)
{
    return open_node_ttl(0);
}

static int
pair(nm_mesh_t **a, nm_mesh_t **b)
{
    *a = open_node();
    *b = open_node();
    if (*a == NULL || *b == NULL) {
        return -1;
    }
    char addr[64];
    uint8_t pub[32];
    nm_mesh_local_addr(*b, addr, sizeof(addr));
    nm_mesh_static_pubkey(*b, pub);
    if (nm_mesh_connect_routed(*a, addr, pub, nm_mesh_node_id(*b), 5000) !=
        NM_OK) {
        fprintf(stderr, "bench mesh: connect: %s\n", nm_errdetail());
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------- throughput */

typedef struct rx_run {
    nm_mesh_t *m;
    uint64_t want_msgs;
    uint64_t got_msgs, got_bytes;
    uint64_t t_last;
    atomic_int stop;
} rx_run;

static void *
rx_main(void *arg)
{
    rx_run *r = arg;
    while (r->got_msgs < r->want_msgs && !atomic_load(&r->stop)) {
        nm_mesh_delivery *d;
        int rc = nm_mesh_recv(r->m, 200, &d);
        if (rc == NM_ETIMEDOUT) {
            break; /* the sender is done and the rest was lost */
        }
        if (rc != NM_OK) {
            break;
        }
        r->got_msgs += d->count;
        for (size_t i = 0; i < d->count; i++) {
            r->got_bytes += d->msgs[i].len;
        }
        r->t_last = nmb_now_ns();
        nm_mesh_delivery_free(d);
    }
    return NULL;
}

/* Send n messages of len bytes, `per_call` per send; returns what the
 * receiver got per second (msgs/s or bytes/s). */
static double
stream_run(const nmb_opts *o, nm_reliability rel, size_t len, uint64_t n,
           size_t per_call, bool bytes)
{
    nm_mesh_t *a = NULL, *b = NULL;
    double out = -1;
    if (pair(&a, &b) != 0) {
        goto done;
    }
    uint64_t bid = nm_mesh_node_id(b);
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    sc.reliability = rel;
    sc.window_bytes = 4u << 20;
    sc.max_retries = 20;
    nm_mesh_open_stream(a, bid, 1, &sc);
    uint8_t *buf = calloc(per_call, len);
    const void **ptrs = calloc(per_call, sizeof(*ptrs));
    size_t *lens = calloc(per_call, sizeof(*lens));
    for (size_t i = 0; i < per_call; i++) {
        ptrs[i] = buf + i * len;
        lens[i] = len;
    }
    rx_run r = {.m = b, .want_msgs = n};
    pthread_t th;
    pthread_create(&th, NULL, rx_main, &r);
    uint64_t t0 = nmb_now_ns();
    for (uint64_t sent = 0; sent < n;) {
        size_t k = n - sent < per_call ? (size_t)(n - sent) : per_call;
        int rc = nm_mesh_send_blocking(a, bid, 1, ptrs, lens, k);
        if (rc != NM_OK) {
            fprintf(stderr, "bench mesh: send: %s\n", nm_errdetail());
            break;
        }
        sent += k;
    }
    pthread_join(th, NULL);
    double secs = (double)(r.t_last - t0) / 1e9;
    if (secs > 0 && r.got_msgs > 0) {
        out = (bytes ? (double)r.got_bytes : (double)r.got_msgs) / secs;
    }
    (void)o;
    free(buf);
    free(ptrs);
    free(lens);
done:
    nm_mesh_close(a);
    nm_mesh_close(b);
    return out;
}

/* ------------------------------------------------------------- rtt */

typedef struct echo_run {
    nm_mesh_t *m;
    atomic_int stop;
} echo_run;

static void *
echo_main(void *arg)
{
    echo_run *e = arg;
    while (!atomic_load(&e->stop)) {
        nm_mesh_delivery *d;
        if (nm_mesh_recv(e->m, 50, &d) != NM_OK) {
            continue;
        }
        const void *p = d->msgs[0].data;
        size_t l = d->msgs[0].len;
        (void)nm_mesh_send_with_retry(e->m, d->peer, d->stream_id, &p, &l, 1,
                                      20);
        nm_mesh_delivery_free(d);
    }
    return NULL;
}

static int
cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

static int
rtt_run(const nmb_opts *o, double *p50, double *p99)
{
    nm_mesh_t *a = NULL, *b = NULL;
    int rc = -1;
    if (pair(&a, &b) != 0) {
        nm_mesh_close(a);
        nm_mesh_close(b);
        return -1;
    }
    uint64_t bid = nm_mesh_node_id(b);
    echo_run e = {.m = b};
    pthread_t th;
    pthread_create(&th, NULL, echo_main, &e);
    size_t n = (size_t)nmb_iters(o, 2000);
    uint64_t *s = calloc(n, sizeof(*s));
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = i;
        const void *p = &v;
        size_t l = sizeof(v);
        uint64_t t0 = nmb_now_ns();
        if (nm_mesh_send_with_retry(a, bid, 2, &p, &l, 1, 20) != NM_OK) {
            break;
        }
        nm_mesh_delivery *d;
        if (nm_mesh_recv(a, 1000, &d) != NM_OK) {
            break;
        }
        s[got++] = (nmb_now_ns() - t0) / 1000u;
        nm_mesh_delivery_free(d);
    }
    atomic_store(&e.stop, 1);
    pthread_join(th, NULL);
    if (got > 10) {
        qsort(s, got, sizeof(*s), cmp_u64);
        *p50 = (double)s[got / 2];
        *p99 = (double)s[(got * 99) / 100];
        rc = 0;
    }
    free(s);
    nm_mesh_close(a);
    nm_mesh_close(b);
    return rc;
}

/* ------------------------------------------------------- handshake */

/* One server, n client nodes connecting to it one after the other: each
 * figure is one two-node handshake. The nodes' pingwaves travel one hop
 * (pingwave_ttl 1): with the default the server would forward every new
 * client's pingwaves to all the clients before it, a discovery flood that
 * grows with the number of samples and is not part of a handshake. */
static double
handshake_run(const nmb_opts *o)
{
    nm_mesh_t *srv = open_node_ttl(1);
    if (srv == NULL) {
        return -1;
    }
    char addr[64];
    uint8_t pub[32];
    nm_mesh_local_addr(srv, addr, sizeof(addr));
    nm_mesh_static_pubkey(srv, pub);
    /* the clients are opened (threads started, idle) before any timing:
     * the figure is the handshake, not node start-up */
    size_t n = (size_t)nmb_iters(o, 30);
    if (n > 64) {
        n = 64;
    }
    double *v = calloc(n, sizeof(*v));
    nm_mesh_t **cl = calloc(n, sizeof(*cl));
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        cl[i] = open_node_ttl(1);
    }
    /* let the n new I/O threads start and go idle before the first one */
    struct timespec settle = {0, 50 * 1000000L};
    nanosleep(&settle, NULL);
    for (size_t i = 0; i < n && cl[i] != NULL; i++) {
        uint64_t t0 = nmb_now_ns();
        int rc = nm_mesh_connect_routed(cl[i], addr, pub, nm_mesh_node_id(srv),
                                        5000);
        uint64_t t1 = nmb_now_ns();
        if (rc != NM_OK) {
            break;
        }
        v[got++] = (double)(t1 - t0) / 1000.0;
    }
    for (size_t i = 0; i < n; i++) {
        nm_mesh_close(cl[i]);
    }
    double out = got ? nmb_median(v, (int)got) : -1;
    free(cl);
    free(v);
    nm_mesh_close(srv);
    return out;
}

/* ------------------------------------------------------ idle memory */

static double
idle_bytes_run(void)
{
    enum { K = 64 };
    nmi_loop_hub *hub = NULL;
    if (nmi_loop_hub_new(&hub) != NM_OK) {
        return -1;
    }
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    memcpy(cfg.psk, PSK, 32);
    cfg.psk_set = true;
    cfg.accept_any = true;
    nm_mesh_t *warm = NULL, *srv = NULL, *cl[K] = {0};
    nmi_port *p = NULL;
    nmi_loop_hub_attach(hub, 1, &p);
    if (nmi_mesh_open_port(&cfg, p, 1000000, &warm) != NM_OK) {
        nmi_loop_hub_free(hub);
        return -1;
    }
    nmi_loop_hub_attach(hub, 200, &p);
    if (nmi_mesh_open_port(&cfg, p, 1000000, &srv) != NM_OK) {
        nm_mesh_close(warm);
        nmi_loop_hub_free(hub);
        return -1;
    }
    for (int i = 0; i < K; i++) {
        nmi_loop_hub_attach(hub, (uint16_t)(i + 2), &p);
        nmi_mesh_open_port(&cfg, p, 1000000, &cl[i]);
    }
    /* Round 1 connects every client to `warm`, so each client's one-off
     * per-node tables exist; round 2 (measured) connects them to srv:
     * the growth is one session end on srv and one on each client. */
    struct mallinfo2 before = {0}, after;
    for (int round = 0; round < 2; round++) {
        nm_mesh_t *to = round == 0 ? warm : srv;
        const char *addr = round == 0 ? "127.0.0.1:1" : "127.0.0.1:200";
        uint8_t pub[32];
        nm_mesh_static_pubkey(to, pub);
        if (round == 1) {
            before = mallinfo2();
        }
        for (int i = 0; i < K; i++) {
            nmi_mesh_connect_start(cl[i], addr, true, pub,
                                   nm_mesh_node_id(to));
        }
        for (int r = 0; r < 4; r++) {
            uint64_t t = 1000000 + (uint64_t)(round * 10 + r) * 1000;
            nmi_loop_hub_run(hub, 0);
            for (int i = 0; i < K; i++) {
                nmi_mesh_tick(cl[i], t);
            }
            nmi_mesh_tick(warm, t);
            nmi_mesh_tick(srv, t);
        }
    }
    after = mallinfo2();
    size_t n = 0;
    nm_mesh_peers(srv, NULL, 0, &n);
    double out = -1;
    if (n == K && after.uordblks > before.uordblks) {
        out = (double)(after.uordblks - before.uordblks) / (2.0 * K);
    }
    for (int i = 0; i < K; i++) {
        nm_mesh_close(cl[i]);
    }
    nm_mesh_close(srv);
    nm_mesh_close(warm);
    nmi_loop_hub_free(hub);
    return out;
}

/* ------------------------------------------------------------ group */

int
nmb_group_mesh(const nmb_opts *o)
{
    enum { MAXR = 51 };
    double st[MAXR], udp[MAXR], zmq[MAXR], rel[MAXR], hs[MAXR], x6[MAXR];
    double p50[MAXR], p99[MAXR];
    int runs = o->runs > MAXR ? MAXR : (o->runs < 1 ? 1 : o->runs);
    bool zmq_ok = true;
    if (sodium_init() < 0) {
        return -1;
    }
    uint64_t n64 = nmb_iters(o, 2000000);
    uint64_t n1k = nmb_iters(o, 200000);
    for (int r = 0; r < runs; r++) {
        st[r] = stream_run(o, NM_FIRE_AND_FORGET, 64, n64, 952, false);
        udp[r] = nmb_udp_loopback_64B(o);
        zmq[r] = zmq_ok ? nmb_zmq_curve_64B(o) : -1;
        zmq_ok = zmq_ok && zmq[r] >= 0;
        rel[r] = stream_run(o, NM_RELIABLE, 1024, n1k, 64, true) / 1e6;
        if (rtt_run(o, &p50[r], &p99[r]) != 0) {
            fprintf(stderr, "bench mesh: rtt run failed\n");
            return -1;
        }
        hs[r] = handshake_run(o);
        x6[r] = nmb_x25519_x6_us(o);
        if (st[r] < 0 || udp[r] < 0 || rel[r] < 0 || hs[r] < 0) {
            fprintf(stderr, "bench mesh: a run failed\n");
            return -1;
        }
    }
    double s = nmb_median(st, runs);
    nmb_report(o, "mesh.stream_64B", s, "msgs/s", "udp_loopback_64B",
               nmb_median(udp, runs));
    if (zmq_ok) {
        nmb_report(o, "mesh.stream_64B_vs_zmq", s, "msgs/s", "zmq_curve_64B",
                   nmb_median(zmq, runs));
    } else {
        nmb_report_skipped(o, "mesh.stream_64B_vs_zmq", "ZeroMQ unavailable");
    }
    nmb_report(o, "mesh.reliable_1KiB", nmb_median(rel, runs), "MB/s", NULL,
               0);
    nmb_report(o, "mesh.rtt_p50_us", nmb_median(p50, runs), "us", NULL, 0);
    nmb_report(o, "mesh.rtt_p99_us", nmb_median(p99, runs), "us", NULL, 0);
    nmb_report(o, "mesh.handshake_us", nmb_median(hs, runs), "us",
               "x25519_x6_us", nmb_median(x6, runs));
    double idle = idle_bytes_run();
    if (idle < 0) {
        fprintf(stderr, "bench mesh: idle session measurement failed\n");
        return -1;
    }
    nmb_report(o, "mesh.idle_session_bytes", idle, "bytes", NULL, 0);
    return 0;
}
