/*
 * bench/bench_mesh_base.c - the anchors of the mesh figures (see
 * bench_mesh_base.h) and the temporary `mesh_base` group that prints
 * them alone:
 *
 *   udp_loopback_64B   msgs/s   bare loopback UDP, sendmmsg/recvmmsg
 *   zmq_curve_64B      msgs/s   ZeroMQ PUSH/PULL + CURVE over TCP loopback
 *   x25519_x6_us       us       the six X25519 operations of NKpsk0
 *
 * Each figure is the median of o->runs calls, the three interleaved per
 * run so machine noise spreads over all of them.
 */
#define _GNU_SOURCE /* sendmmsg, recvmmsg */
#include "bench_mesh_base.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#ifdef NM_HAVE_ZMQ
#include <zmq.h>
#endif

#define NMB_MSG_LEN 64
#define NMB_UDP_BATCH 64
#define NMB_UDP_RCVBUF (4 << 20)
#define NMB_UDP_IDLE_MS 20   /* receiver gives up this long after the end */
#define NMB_HARD_CAP_NS 30e9 /* no anchor call runs longer than this */
#define NMB_ZMQ_TIMEOUT_MS 10000

void
nmb_report_skipped(const nmb_opts *o, const char *name, const char *why)
{
    if (o->json) {
        printf("{\"bench\":\"%s\",\"skipped\":true,\"reason\":\"%s\"}\n", name,
               why);
    } else {
        printf("%-32s skipped (%s)\n", name, why);
    }
    fflush(stdout);
}

/* ------------------------------------------------------ bare UDP */

/* Shared by the two threads of one nmb_udp_loopback_64B call. */
typedef struct udp_run {
    int rx, tx; /* bound receiver; sender connected to it */
    uint64_t n; /* datagrams to send */
    atomic_int rx_ready;
    atomic_int tx_done;
    uint64_t t_first; /* sender: before the first sendmmsg */
    uint64_t sent;    /* sender: datagrams the kernel accepted */
    int tx_err;       /* sender: errno of a fatal failure */
    uint64_t got;     /* receiver: datagrams of NMB_MSG_LEN received */
    uint64_t t_last;  /* receiver: after the last receive */
    int rx_err;       /* receiver: errno of a fatal failure */
} udp_run;

/* udp_sender - sendmmsg batches of NMB_UDP_BATCH 64-byte datagrams, each
 * carrying its sequence number, as fast as the kernel takes them. */
static void *
udp_sender(void *arg)
{
    udp_run *r = arg;
    uint8_t bufs[NMB_UDP_BATCH][NMB_MSG_LEN];
    struct iovec iov[NMB_UDP_BATCH];
    struct mmsghdr m[NMB_UDP_BATCH];

    memset(bufs, 0x5a, sizeof(bufs));
    memset(m, 0, sizeof(m));
    for (int j = 0; j < NMB_UDP_BATCH; j++) {
        iov[j].iov_base = bufs[j];
        iov[j].iov_len = NMB_MSG_LEN;
        m[j].msg_hdr.msg_iov = &iov[j];
        m[j].msg_hdr.msg_iovlen = 1;
    }
    while (!atomic_load(&r->rx_ready)) {
        sched_yield();
    }
    uint64_t sent = 0;
    r->t_first = nmb_now_ns();
    while (sent < r->n) {
        uint64_t left = r->n - sent;
        unsigned k = left < NMB_UDP_BATCH ? (unsigned)left : NMB_UDP_BATCH;
        for (unsigned j = 0; j < k; j++) {
            uint64_t seq = sent + j;
            memcpy(bufs[j], &seq, sizeof(seq));
        }
        int s = sendmmsg(r->tx, m, k, 0);
        if (s < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS) {
                sched_yield();
                continue;
            }
            r->tx_err = errno;
            break;
        }
        sent += (uint64_t)s;
    }
    r->sent = sent;
    atomic_store(&r->tx_done, 1);
    return NULL;
}

/* udp_receiver - recvmmsg (MSG_WAITFORONE) until all arrived, or the
 * sender finished and nothing came for NMB_UDP_IDLE_MS (the rest was
 * dropped by the kernel), or the hard cap. */
static void *
udp_receiver(void *arg)
{
    udp_run *r = arg;
    uint8_t bufs[NMB_UDP_BATCH][2 * NMB_MSG_LEN];
    struct iovec iov[NMB_UDP_BATCH];
    struct mmsghdr m[NMB_UDP_BATCH];

    memset(m, 0, sizeof(m));
    for (int j = 0; j < NMB_UDP_BATCH; j++) {
        iov[j].iov_base = bufs[j];
        iov[j].iov_len = sizeof(bufs[j]);
        m[j].msg_hdr.msg_iov = &iov[j];
        m[j].msg_hdr.msg_iovlen = 1;
    }
    uint64_t cap = nmb_now_ns() + (uint64_t)NMB_HARD_CAP_NS;
    atomic_store(&r->rx_ready, 1);
    while (r->got < r->n) {
        int g = recvmmsg(r->rx, m, NMB_UDP_BATCH, MSG_WAITFORONE, NULL);
        if (g > 0) {
            for (int j = 0; j < g; j++) {
                r->got += m[j].msg_len == NMB_MSG_LEN;
            }
            r->t_last = nmb_now_ns();
            continue;
        }
        if (g < 0 && errno == EINTR) {
            continue;
        }
        if (g < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (atomic_load(&r->tx_done) || nmb_now_ns() > cap) {
                break; /* idle after the end: the rest was dropped */
            }
            continue;
        }
        r->rx_err = g < 0 ? errno : EIO;
        break;
    }
    return NULL;
}

/* udp_rx_socket - a receiver bound to 127.0.0.1:0 with a 4 MiB receive
 * buffer (SO_RCVBUFFORCE when privileged, else SO_RCVBUF up to rmem_max)
 * and a short receive timeout; its address in *sa. -1 on failure. */
static int
udp_rx_socket(struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    int sz = NMB_UDP_RCVBUF;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) != 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    struct timeval tv = {.tv_sec = 0, .tv_usec = NMB_UDP_IDLE_MS * 1000};
    socklen_t len = sizeof(*sa);
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        bind(fd, (struct sockaddr *)sa, sizeof(*sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)sa, &len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

double
nmb_udp_loopback_64B(const nmb_opts *o)
{
    udp_run r;
    struct sockaddr_in sa;
    pthread_t rt, st;
    double out = -1;

    memset(&r, 0, sizeof(r));
    atomic_init(&r.rx_ready, 0);
    atomic_init(&r.tx_done, 0);
    r.n = nmb_iters(o, 200000);
    r.rx = udp_rx_socket(&sa);
    r.tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (r.rx < 0 || r.tx < 0 ||
        connect(r.tx, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "bench udp_loopback: socket setup: %s\n",
                strerror(errno));
        goto done;
    }
    if (pthread_create(&rt, NULL, udp_receiver, &r) != 0) {
        fprintf(stderr, "bench udp_loopback: no receiver thread\n");
        goto done;
    }
    if (pthread_create(&st, NULL, udp_sender, &r) != 0) {
        fprintf(stderr, "bench udp_loopback: no sender thread\n");
        atomic_store(&r.tx_done, 1);
        atomic_store(&r.rx_ready, 1);
        pthread_join(rt, NULL);
        goto done;
    }
    pthread_join(st, NULL);
    pthread_join(rt, NULL);
    if (r.tx_err || r.rx_err) {
        fprintf(stderr, "bench udp_loopback: %s: %s\n",
                r.tx_err ? "sendmmsg" : "recvmmsg",
                strerror(r.tx_err ? r.tx_err : r.rx_err));
    } else if (r.got > 0 && r.t_last > r.t_first) {
        out = (double)r.got * 1e9 / (double)(r.t_last - r.t_first);
    }
done:
    if (r.rx >= 0) {
        close(r.rx);
    }
    if (r.tx >= 0) {
        close(r.tx);
    }
    return out;
}

/* ------------------------------------------------------ ZeroMQ CURVE */

#ifdef NM_HAVE_ZMQ

typedef struct zmq_run {
    void *push, *pull;
    uint64_t n;
    uint64_t t_first; /* sender: before the first send */
    int tx_err;       /* sender: zmq_errno of a failure */
    uint64_t got;     /* receiver: messages of NMB_MSG_LEN */
    uint64_t t_last;  /* receiver: after the Nth */
    int rx_err;       /* receiver: zmq_errno of a failure */
} zmq_run;

/* zmq_sender - N 64-byte messages on the PUSH socket (blocks at HWM). */
static void *
zmq_sender(void *arg)
{
    zmq_run *r = arg;
    uint8_t msg[NMB_MSG_LEN];
    memset(msg, 0x5a, sizeof(msg));
    r->t_first = nmb_now_ns();
    for (uint64_t i = 0; i < r->n;) {
        memcpy(msg, &i, sizeof(i));
        if (zmq_send(r->push, msg, sizeof(msg), 0) == (int)sizeof(msg)) {
            i++;
        } else if (zmq_errno() != EINTR) {
            r->tx_err = zmq_errno();
            break;
        }
    }
    return NULL;
}

/* zmq_receiver - N messages from the PULL socket. */
static void *
zmq_receiver(void *arg)
{
    zmq_run *r = arg;
    uint8_t buf[2 * NMB_MSG_LEN];
    while (r->got < r->n) {
        int k = zmq_recv(r->pull, buf, sizeof(buf), 0);
        if (k == NMB_MSG_LEN) {
            r->got++;
        } else if (k >= 0) {
            r->rx_err = EPROTO;
            break;
        } else if (zmq_errno() != EINTR) {
            r->rx_err = zmq_errno();
            break;
        }
    }
    r->t_last = nmb_now_ns();
    return NULL;
}

/* zmq_setup - PULL (CURVE server) bound to tcp://127.0.0.1:*, PUSH
 * (CURVE client) connected to it, one message through to finish the
 * handshake. 0 or -1 (stderr says why). */
static int
zmq_setup(void *ctx, zmq_run *r)
{
    char spub[41], ssec[41], cpub[41], csec[41], ep[256];
    size_t eplen = sizeof(ep);
    int one = 1, zero = 0, tmo = NMB_ZMQ_TIMEOUT_MS;
    const char *what = "curve keypair";

    if (zmq_curve_keypair(spub, ssec) != 0 ||
        zmq_curve_keypair(cpub, csec) != 0) {
        goto fail;
    }
    what = "socket";
    r->pull = zmq_socket(ctx, ZMQ_PULL);
    r->push = zmq_socket(ctx, ZMQ_PUSH);
    if (r->pull == NULL || r->push == NULL) {
        goto fail;
    }
    what = "server options";
    if (zmq_setsockopt(r->pull, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
        zmq_setsockopt(r->pull, ZMQ_CURVE_SECRETKEY, ssec, 41) ||
        zmq_setsockopt(r->pull, ZMQ_LINGER, &zero, sizeof(zero)) ||
        zmq_setsockopt(r->pull, ZMQ_RCVTIMEO, &tmo, sizeof(tmo))) {
        goto fail;
    }
    what = "bind";
    if (zmq_bind(r->pull, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(r->pull, ZMQ_LAST_ENDPOINT, ep, &eplen) != 0) {
        goto fail;
    }
    what = "client options";
    if (zmq_setsockopt(r->push, ZMQ_CURVE_SERVERKEY, spub, 41) ||
        zmq_setsockopt(r->push, ZMQ_CURVE_PUBLICKEY, cpub, 41) ||
        zmq_setsockopt(r->push, ZMQ_CURVE_SECRETKEY, csec, 41) ||
        zmq_setsockopt(r->push, ZMQ_LINGER, &zero, sizeof(zero)) ||
        zmq_setsockopt(r->push, ZMQ_SNDTIMEO, &tmo, sizeof(tmo))) {
        goto fail;
    }
    what = "connect";
    if (zmq_connect(r->push, ep) != 0) {
        goto fail;
    }
    what = "handshake message";
    uint8_t m[NMB_MSG_LEN] = {0};
    if (zmq_send(r->push, m, sizeof(m), 0) != (int)sizeof(m) ||
        zmq_recv(r->pull, m, sizeof(m), 0) != (int)sizeof(m)) {
        goto fail;
    }
    sodium_memzero(ssec, sizeof(ssec));
    sodium_memzero(csec, sizeof(csec));
    return 0;
fail:
    fprintf(stderr, "bench zmq_curve: %s: %s\n", what,
            zmq_strerror(zmq_errno()));
    sodium_memzero(ssec, sizeof(ssec));
    sodium_memzero(csec, sizeof(csec));
    return -1;
}

double
nmb_zmq_curve_64B(const nmb_opts *o)
{
    zmq_run r;
    pthread_t rt, st;
    double out = -2;
    void *ctx = zmq_ctx_new();

    memset(&r, 0, sizeof(r));
    r.n = nmb_iters(o, 200000);
    if (ctx == NULL) {
        fprintf(stderr, "bench zmq_curve: zmq_ctx_new failed\n");
        return out;
    }
    if (zmq_setup(ctx, &r) != 0) {
        goto done;
    }
    /* The sockets move to the threads; pthread_create is the full
     * barrier ZeroMQ asks for when a socket changes threads. */
    if (pthread_create(&rt, NULL, zmq_receiver, &r) != 0) {
        fprintf(stderr, "bench zmq_curve: no receiver thread\n");
        goto done;
    }
    if (pthread_create(&st, NULL, zmq_sender, &r) != 0) {
        fprintf(stderr, "bench zmq_curve: no sender thread\n");
        pthread_join(rt, NULL); /* gives up after the receive timeout */
        goto done;
    }
    pthread_join(st, NULL);
    pthread_join(rt, NULL);
    if (r.tx_err || r.rx_err) {
        fprintf(stderr, "bench zmq_curve: %s: %s\n",
                r.tx_err ? "send" : "receive",
                zmq_strerror(r.tx_err ? r.tx_err : r.rx_err));
    } else if (r.got == r.n && r.t_last > r.t_first) {
        out = (double)r.got * 1e9 / (double)(r.t_last - r.t_first);
    }
done:
    if (r.push != NULL) {
        zmq_close(r.push);
    }
    if (r.pull != NULL) {
        zmq_close(r.pull);
    }
    zmq_ctx_term(ctx);
    return out;
}

#else /* !NM_HAVE_ZMQ */

double
nmb_zmq_curve_64B(const nmb_opts *o)
{
    (void)o;
    return -1;
}

#endif

/* ------------------------------------------------------ X25519 x6 */

/* x25519_six - the X25519 work of one NKpsk0 handshake: e keypair (I),
 * es (I), e keypair (R), es (R), ee (R), ee (I). 0 or -1. */
static int
x25519_six(const uint8_t spub[32], const uint8_t spriv[32])
{
    uint8_t iepub[32], iepriv[32], repub[32], repriv[32], d[4][32];
    int rc = 0;

    rc |= crypto_box_keypair(iepub, iepriv);
    rc |= crypto_scalarmult(d[0], iepriv, spub);
    rc |= crypto_box_keypair(repub, repriv);
    rc |= crypto_scalarmult(d[1], spriv, iepub);
    rc |= crypto_scalarmult(d[2], repriv, iepub);
    rc |= crypto_scalarmult(d[3], iepriv, repub);
    NMB_SINK(d[3][0]);
    if (rc == 0 && (sodium_memcmp(d[0], d[1], 32) != 0 ||
                    sodium_memcmp(d[2], d[3], 32) != 0)) {
        rc = -1;
    }
    sodium_memzero(iepriv, sizeof(iepriv));
    sodium_memzero(repriv, sizeof(repriv));
    sodium_memzero(d, sizeof(d));
    return rc == 0 ? 0 : -1;
}

double
nmb_x25519_x6_us(const nmb_opts *o)
{
    uint8_t spub[32], spriv[32];
    uint64_t n = nmb_iters(o, 500);
    double *v = malloc(n * sizeof(*v));
    double out = -1;

    if (v == NULL || sodium_init() < 0 ||
        crypto_box_keypair(spub, spriv) != 0) {
        free(v);
        return -1;
    }
    for (uint64_t i = 0; i < n / 10 + 1; i++) { /* warm-up */
        if (x25519_six(spub, spriv) != 0) {
            goto done;
        }
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t0 = nmb_now_ns();
        if (x25519_six(spub, spriv) != 0) {
            goto done;
        }
        v[i] = (double)(nmb_now_ns() - t0) / 1e3;
    }
    out = nmb_median(v, (int)n);
done:
    sodium_memzero(spriv, sizeof(spriv));
    free(v);
    return out;
}

/* ------------------------------------------------------ the group */

int
nmb_group_mesh_base(const nmb_opts *o)
{
    enum { MAXR = 101 };
    double udp[MAXR], zmq[MAXR], x6[MAXR];
    int runs = o->runs > MAXR ? MAXR : (o->runs < 1 ? 1 : o->runs);
    int err = 0;
    bool zmq_ok = true;

    if (sodium_init() < 0) {
        fprintf(stderr, "bench mesh_base: sodium_init failed\n");
        return -1;
    }
    for (int r = 0; r < runs; r++) {
        udp[r] = nmb_udp_loopback_64B(o);
        zmq[r] = zmq_ok ? nmb_zmq_curve_64B(o) : -1;
        x6[r] = nmb_x25519_x6_us(o);
        zmq_ok = zmq_ok && zmq[r] >= 0;
        err |= udp[r] < 0 || x6[r] < 0;
    }
    if (err) {
        fprintf(stderr, "bench mesh_base: a UDP or X25519 run failed\n");
        return -1;
    }
    nmb_report(o, "udp_loopback_64B", nmb_median(udp, runs), "msgs/s", NULL,
               0);
    if (zmq_ok) {
        nmb_report(o, "zmq_curve_64B", nmb_median(zmq, runs), "msgs/s", NULL,
                   0);
    } else {
#ifdef NM_HAVE_ZMQ
        nmb_report_skipped(o, "zmq_curve_64B", "ZeroMQ failed");
        err = 1;
#else
        nmb_report_skipped(o, "zmq_curve_64B", "built without ZeroMQ");
#endif
    }
    nmb_report(o, "x25519_x6_us", nmb_median(x6, runs), "us", NULL, 0);
    return err ? -1 : 0;
}
