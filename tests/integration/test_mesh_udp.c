/*
 * tests/integration/test_mesh_udp.c - mesh nodes on real UDP sockets on
 * 127.0.0.1, each with its own I/O thread, several in one process: the
 * public API end to end (connect, streams, blocking receive, the handler
 * worker, the readable fd), relays, failure detection and rerouting.
 * Every wait is bounded by a timeout; nothing sleeps and hopes.
 */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <netmesh.h>

#include "mesh/node_impl.h" /* callers, stray_len, test hooks */

static const uint8_t PSK[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

typedef struct unode {
    nm_mesh_t *m;
    char addr[64];
    uint8_t pub[32];
    uint64_t id;
} unode;

static void
open_node(unode *u, const uint8_t *psk, uint32_t hb_ms, uint32_t to_ms)
{
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    memcpy(cfg.psk, psk ? psk : PSK, 32);
    cfg.psk_set = true;
    cfg.heartbeat_ms = hb_ms;
    cfg.session_timeout_ms = to_ms;
    cfg.handshake_timeout_ms = 300;
    cfg.handshake_attempts = 2;
    cfg.accept_any = true;
    cr_assert_eq(nm_mesh_open(&cfg, &u->m), NM_OK, "%s", nm_errdetail());
    cr_assert_eq(nm_mesh_local_addr(u->m, u->addr, sizeof(u->addr)), NM_OK);
    nm_mesh_static_pubkey(u->m, u->pub);
    u->id = nm_mesh_node_id(u->m);
}

static void
link_nodes(unode *a, unode *b)
{
    cr_assert_eq(nm_mesh_accept(b->m, a->id), NM_OK);
    cr_assert_eq(nm_mesh_connect(a->m, b->addr, b->pub, b->id, 3000), NM_OK,
                 "%s", nm_errdetail());
}

static bool
wait_event(unode *u, nm_mesh_event_kind kind, uint64_t peer, int timeout_ms)
{
    uint64_t deadline = (uint64_t)timeout_ms;
    for (uint64_t waited = 0; waited < deadline; waited += 50) {
        nm_mesh_event ev;
        int rc = nm_mesh_next_event(u->m, 50, &ev);
        if (rc == NM_OK && ev.kind == kind && ev.peer == peer) {
            return true;
        }
    }
    return false;
}

Test(mesh_udp, connect_send_recv)
{
    unode a, b;
    open_node(&a, NULL, 200, 1000);
    open_node(&b, NULL, 200, 1000);
    link_nodes(&a, &b);
    cr_assert(wait_event(&b, NM_MESH_EV_PEER_UP, a.id, 2000));
    /* connect again: already connected */
    cr_assert_eq(nm_mesh_connect(a.m, b.addr, b.pub, b.id, 1000), NM_OK);

    const char *msgs[] = {"one", "two"};
    size_t lens[] = {3, 3};
    cr_assert_eq(
        nm_mesh_send(a.m, b.id, 42, (const void *const *)msgs, lens, 2),
        NM_OK);
    nm_mesh_delivery *d = NULL;
    cr_assert_eq(nm_mesh_recv(b.m, 2000, &d), NM_OK);
    cr_assert_eq(d->count, 2);
    cr_assert_eq(d->stream_id, 42);
    cr_assert_eq(memcmp(d->msgs[1].data, "two", 3), 0);
    nm_mesh_delivery_free(d);
    cr_assert_eq(nm_mesh_recv(b.m, 0, &d), NM_EAGAIN);
    cr_assert_eq(nm_mesh_recv(b.m, 20, &d), NM_ETIMEDOUT);

    /* errors */
    char huge[9000] = {0};
    const void *hp = huge;
    size_t hl = sizeof(huge);
    cr_assert_eq(nm_mesh_send(a.m, b.id, 1, &hp, &hl, 1), NM_ETOOBIG);
    cr_assert_eq(nm_mesh_send(a.m, 12345, 1, &hp, lens, 1), NM_ENOTCONN);
    cr_assert_eq(nm_mesh_open_stream(a.m, b.id, UINT64_MAX, NULL), NM_EINVAL);
    nm_mesh_close(a.m);
    nm_mesh_close(b.m);
}

Test(mesh_udp, wrong_psk_and_wrong_key_fail_clearly)
{
    uint8_t other[32];
    memset(other, 9, sizeof(other));
    unode a, b, c;
    open_node(&a, NULL, 200, 1000);
    open_node(&b, other, 200, 1000);
    open_node(&c, NULL, 200, 1000);
    cr_assert_eq(nm_mesh_accept(b.m, a.id), NM_OK);
    int rc = nm_mesh_connect(a.m, b.addr, b.pub, b.id, 2000);
    cr_assert_eq(rc, NM_ETIMEDOUT);
    cr_assert_not_null(strstr(nm_errdetail(), "wrong PSK"));
    nm_mesh_peer_info pi;
    cr_assert_eq(nm_mesh_peer(a.m, b.id, &pi), NM_ENOTFOUND);
    nm_mesh_stats s;
    nm_mesh_stats_get(b.m, &s);
    cr_assert_geq(s.handshakes_failed, 1);
    /* C is reachable, but A pins B's key for it */
    cr_assert_eq(nm_mesh_accept(c.m, a.id), NM_OK);
    cr_assert_eq(nm_mesh_connect(a.m, c.addr, b.pub, c.id, 2000),
                 NM_ETIMEDOUT);
    cr_assert_eq(nm_mesh_peer(c.m, a.id, &pi), NM_ENOTFOUND);
    nm_mesh_close(a.m);
    nm_mesh_close(b.m);
    nm_mesh_close(c.m);
}

/* Check one delivery of u32 counters: each equals *next, which advances. */
static void
expect_counters(const nm_mesh_delivery *d, uint32_t *next)
{
    for (size_t k = 0; k < d->count; k++) {
        uint32_t v;
        memcpy(&v, d->msgs[k].data, 4);
        cr_assert_eq(v, *next);
        (*next)++;
    }
}

/* Receive (bounded) until the counters reach `upto`. */
static void
recv_counters(nm_mesh_t *m, uint32_t *next, uint32_t upto)
{
    while (*next < upto) {
        nm_mesh_delivery *d;
        cr_assert_eq(nm_mesh_recv(m, 5000, &d), NM_OK, "got %u of %u", *next,
                     upto);
        expect_counters(d, next);
        nm_mesh_delivery_free(d);
    }
}

Test(mesh_udp, reliable_stream_and_fd)
{
    unode a, b;
    open_node(&a, NULL, 200, 1000);
    open_node(&b, NULL, 200, 1000);
    link_nodes(&a, &b);
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    sc.reliability = NM_RELIABLE;
    sc.in_order = true;
    cr_assert_eq(nm_mesh_open_stream(a.m, b.id, 3, &sc), NM_OK);
    enum { N = 20000 };
    uint32_t next = 0;
    int fd = nm_mesh_fd(b.m);
    cr_assert_geq(fd, 0);
    for (uint32_t i = 0; i < N; i += 100) {
        uint32_t vals[100];
        const void *ptrs[100];
        size_t lens[100];
        for (int k = 0; k < 100; k++) {
            vals[k] = i + (uint32_t)k;
            ptrs[k] = &vals[k];
            lens[k] = 4;
        }
        cr_assert_eq(nm_mesh_send_blocking(a.m, b.id, 3, ptrs, lens, 100),
                     NM_OK, "%s", nm_errdetail());
        /* drain through the fd, as an embedding event loop would */
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        while (poll(&pfd, 1, 0) > 0) {
            nm_mesh_delivery *d;
            if (nm_mesh_recv(b.m, 0, &d) != NM_OK) {
                break;
            }
            expect_counters(d, &next);
            nm_mesh_delivery_free(d);
        }
    }
    recv_counters(b.m, &next, N);
    nm_stream_stats st;
    cr_assert_eq(nm_mesh_stream_stats(a.m, b.id, 3, &st), NM_OK);
    cr_assert_eq(st.reliability, NM_RELIABLE);
    cr_assert(!st.reset);
    nm_mesh_close(a.m);
    nm_mesh_close(b.m);
}

typedef struct hctx {
    atomic_uint msgs;
    atomic_ullong thread_ok;
} hctx;

static void
handler(void *ctx, const nm_mesh_delivery *d)
{
    hctx *h = ctx;
    atomic_fetch_add(&h->msgs, (unsigned)d->count);
}

Test(mesh_udp, handler_worker)
{
    unode a, b;
    open_node(&a, NULL, 200, 1000);
    open_node(&b, NULL, 200, 1000);
    link_nodes(&a, &b);
    hctx h = {0};
    cr_assert_eq(nm_mesh_set_handler(b.m, handler, &h), NM_OK);
    nm_mesh_delivery *d;
    cr_assert_eq(nm_mesh_recv(b.m, 0, &d), NM_EINVAL, "handler installed");
    const char *m1 = "x";
    size_t l1 = 1;
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(nm_mesh_send_blocking(a.m, b.id, 1,
                                           (const void *const *)&m1, &l1, 1),
                     NM_OK);
    }
    for (int i = 0; i < 200 && atomic_load(&h.msgs) < 50; i++) {
        nm_mesh_event ev;
        (void)nm_mesh_next_event(b.m, 10, &ev); /* a bounded wait */
    }
    cr_assert_eq(atomic_load(&h.msgs), 50);
    cr_assert_eq(nm_mesh_set_handler(b.m, NULL, NULL), NM_OK);
    nm_mesh_close(a.m);
    nm_mesh_close(b.m);
}

Test(mesh_udp, relay_failure_and_reroute, .timeout = 60)
{
    unode a, b, c, d;
    open_node(&a, NULL, 20, 50);
    open_node(&b, NULL, 20, 50);
    open_node(&c, NULL, 20, 50);
    open_node(&d, NULL, 20, 50);
    link_nodes(&a, &b);
    link_nodes(&c, &b);
    link_nodes(&a, &d);
    link_nodes(&c, &d);
    /* wait until A knows a route to C (pingwaves via B or D) */
    uint64_t hop = 0;
    for (int i = 0; i < 200 && nm_mesh_route(a.m, c.id, &hop, NULL) != NM_OK;
         i++) {
        nm_mesh_event ev;
        (void)nm_mesh_next_event(a.m, 10, &ev);
    }
    cr_assert_eq(nm_mesh_connect_via(a.m, b.id, c.pub, c.id, 3000), NM_OK,
                 "%s", nm_errdetail());
    nm_mesh_peer_info pi;
    cr_assert_eq(nm_mesh_peer(c.m, a.id, &pi), NM_OK);
    cr_assert(pi.routed);
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    sc.reliability = NM_RELIABLE;
    sc.max_retries = 100;
    cr_assert_eq(nm_mesh_open_stream(a.m, c.id, 9, &sc), NM_OK);
    const char *m1 = "before";
    size_t l1 = 6;
    cr_assert_eq(
        nm_mesh_send_blocking(a.m, c.id, 9, (const void *const *)&m1, &l1, 1),
        NM_OK);
    nm_mesh_delivery *dl;
    cr_assert_eq(nm_mesh_recv(c.m, 3000, &dl), NM_OK);
    nm_mesh_delivery_free(dl);

    nm_mesh_close(b.m); /* the relay dies */
    cr_assert(wait_event(&a, NM_MESH_EV_PEER_DOWN, b.id, 5000));
    cr_assert(wait_event(&c, NM_MESH_EV_PEER_DOWN, b.id, 5000));
    const char *m2 = "after";
    size_t l2 = 5;
    cr_assert_eq(
        nm_mesh_send_blocking(a.m, c.id, 9, (const void *const *)&m2, &l2, 1),
        NM_OK);
    cr_assert_eq(nm_mesh_recv(c.m, 5000, &dl), NM_OK,
                 "traffic resumed through D");
    cr_assert_eq(memcmp(dl->msgs[0].data, "after", 5), 0);
    nm_mesh_delivery_free(dl);
    cr_assert_eq(nm_mesh_route(a.m, c.id, &hop, NULL), NM_OK);
    cr_assert_eq(hop, d.id);
    nm_mesh_close(a.m);
    nm_mesh_close(c.m);
    nm_mesh_close(d.m);
}

static void *
blocked_recv(void *arg)
{
    nm_mesh_delivery *d = NULL;
    intptr_t rc = nm_mesh_recv(arg, -1, &d);
    return (void *)rc;
}

static void *
blocked_event(void *arg)
{
    nm_mesh_event ev;
    intptr_t rc = nm_mesh_next_event(arg, -1, &ev);
    return (void *)rc;
}

Test(mesh_udp, close_wakes_blocked_callers)
{
    unode a;
    open_node(&a, NULL, 200, 1000);
    pthread_t t1, t2;
    cr_assert_eq(pthread_create(&t1, NULL, blocked_recv, a.m), 0);
    cr_assert_eq(pthread_create(&t2, NULL, blocked_event, a.m), 0);
    /* let them block (bounded: the close must work whenever it comes) */
    nm_mesh_event ev;
    (void)nm_mesh_next_event(a.m, 50, &ev);
    nm_mesh_close(a.m); /* returns only once both left the node */
    void *r1, *r2;
    pthread_join(t1, &r1);
    pthread_join(t2, &r2);
    cr_assert_eq((intptr_t)r1, NM_ECLOSED);
    cr_assert_eq((intptr_t)r2, NM_ECLOSED);
}

/* Holding a node's I/O thread inside a tick hook (it runs there unlocked):
 * while it is held nothing else reads the node's socket. */
typedef struct io_block {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool want, held, release;
} io_block;

static void
hold_tick(void *ctx, nm_mesh_t *m, uint64_t now_us)
{
    (void)m;
    (void)now_us;
    io_block *b = ctx;
    pthread_mutex_lock(&b->mu);
    if (b->want) {
        b->want = false;
        b->held = true;
        pthread_cond_broadcast(&b->cv);
        while (!b->release) {
            pthread_cond_wait(&b->cv, &b->mu);
        }
        b->release = false;
        b->held = false;
    }
    pthread_mutex_unlock(&b->mu);
}

static void
hold_io(nm_mesh_t *m, io_block *b)
{
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->want = true;
    b->held = b->release = false;
    cr_assert_eq(nmi_mesh_tick_hook(m, hold_tick, b), NM_OK);
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < 100 && !b->held; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&b->cv, &b->mu, &ts);
    }
    bool held = b->held;
    pthread_mutex_unlock(&b->mu);
    cr_assert(held, "the I/O thread never reached the tick hook");
}

static void
release_io(nm_mesh_t *m, io_block *b)
{
    pthread_mutex_lock(&b->mu);
    b->release = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    nmi_mesh_ext_detach(m, b); /* waits until the hook returned */
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
}

/* A blocking connect reads and processes its own msg2 (node_hs.c): with
 * the I/O thread held, the handshake still completes. */
Test(mesh_udp, connect_reads_its_reply, .timeout = 30)
{
    unode a, n;
    open_node(&a, NULL, 200, 2000);
    open_node(&n, NULL, 200, 2000);
    io_block blk;
    hold_io(a.m, &blk);
    link_nodes(&a, &n);
    uint64_t read = 0, handed = 0;
    nmi_mesh_test_reads(a.m, &read, &handed);
    cr_assert_eq(read, 1, "msg2 read by the connecting caller");
    cr_assert_eq(handed, 0);
    release_io(a.m, &blk);
    /* the session works both ways afterwards */
    const char *msg = "hi";
    size_t len = 2;
    cr_assert_eq(nm_mesh_send_blocking(n.m, a.id, 1, (const void *const *)&msg,
                                       &len, 1),
                 NM_OK, "%s", nm_errdetail());
    nm_mesh_delivery *d;
    cr_assert_eq(nm_mesh_recv(a.m, 5000, &d), NM_OK);
    cr_assert_eq(d->peer, n.id);
    nm_mesh_delivery_free(d);
    nm_mesh_close(a.m);
    nm_mesh_close(n.m);
}

typedef struct conn_arg {
    unode *a, *b;
    int rc;
} conn_arg;

static void *
connect_thread(void *arg)
{
    conn_arg *c = arg;
    c->rc = nm_mesh_connect(c->a->m, c->b->addr, c->b->pub, c->b->id, 10000);
    return NULL;
}

/* A datagram the connecting caller reads that is not a handshake message
 * (here: a stream packet from another peer, queued while the I/O thread is
 * held) goes to the I/O thread, which processes it; the connect then
 * completes the usual way, and the stream arrives whole and in order. */
Test(mesh_udp, connect_hands_other_datagrams_to_io_thread, .timeout = 60)
{
    unode a, b, c;
    open_node(&a, NULL, 200, 5000);
    open_node(&b, NULL, 200, 5000);
    open_node(&c, NULL, 200, 5000);
    link_nodes(&c, &a);
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    sc.reliability = NM_RELIABLE;
    sc.in_order = true;
    cr_assert_eq(nm_mesh_open_stream(c.m, a.id, 5, &sc), NM_OK);
    /* the hand-off reorders: the receiving end restores the order */
    cr_assert_eq(nm_mesh_open_stream(a.m, c.id, 5, &sc), NM_OK);
    io_block blk;
    hold_io(a.m, &blk);
    enum { N = 20 };
    for (uint32_t i = 0; i < N; i++) {
        const void *p = &i;
        size_t l = sizeof(i);
        cr_assert_eq(nm_mesh_send(c.m, a.id, 5, &p, &l, 1), NM_OK, "%s",
                     nm_errdetail());
    }
    cr_assert_eq(nm_mesh_accept(b.m, a.id), NM_OK);
    conn_arg ca = {.a = &a, .b = &b, .rc = 1};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, connect_thread, &ca), 0);
    /* the caller reads c's packet first: wait (bounded) for the hand-off */
    bool handed = false;
    for (int i = 0; i < 5000 && !handed; i++) {
        pthread_mutex_lock(&a.m->mu);
        handed = a.m->stray_len > 0;
        pthread_mutex_unlock(&a.m->mu);
        if (!handed) {
            struct timespec ts = {0, 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    cr_assert(handed, "the connecting caller read no datagram");
    release_io(a.m, &blk);
    pthread_join(t, NULL);
    cr_assert_eq(ca.rc, NM_OK, "%s", nm_strerror(ca.rc));
    /* the I/O thread may finish the handshake (msg2) in the loop pass
     * before the one that processes the handed-off packet: wait for it */
    uint64_t read = 0, handed_off = 0;
    nmi_mesh_test_reads(a.m, &read, &handed_off);
    for (int i = 0; i < 5000 && handed_off == 0; i++) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
        nmi_mesh_test_reads(a.m, &read, &handed_off);
    }
    cr_assert_geq(handed_off, 1);
    uint32_t next = 0;
    recv_counters(a.m, &next, N);
    nm_mesh_close(a.m);
    nm_mesh_close(b.m);
    nm_mesh_close(c.m);
}

/* nm_mesh_fd is written only once asked for: asked for late, it is
 * readable at once for what is already queued, clears when the queue
 * empties and turns readable again on the next event. */
Test(mesh_udp, fd_asked_for_late)
{
    unode a, b;
    open_node(&a, NULL, 50, 300);
    open_node(&b, NULL, 50, 300);
    link_nodes(&a, &b); /* a has a peer_up event queued */
    int fd = nm_mesh_fd(a.m);
    cr_assert_geq(fd, 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    cr_assert_eq(poll(&pfd, 1, 0), 1, "readable for the queued event");
    nm_mesh_event ev;
    while (nm_mesh_next_event(a.m, 0, &ev) == NM_OK) {
    }
    cr_assert_eq(poll(&pfd, 1, 0), 0, "empty queue: not readable");
    nm_mesh_close(b.m); /* a notices: peer_down (bounded wait) */
    cr_assert_eq(poll(&pfd, 1, 10000), 1, "readable for the next event");
    nm_mesh_close(a.m);
}

static void *
blocked_connect(void *arg)
{
    nm_mesh_t *m = arg;
    uint8_t pub[32];
    memset(pub, 9, sizeof(pub));
    /* a port that never answers (this node's own socket is not it) */
    intptr_t rc = nm_mesh_connect(m, "127.0.0.1:9", pub, 0x1234, 20000);
    return (void *)rc;
}

/* Wait (bounded) until n public calls are inside the node. */
static void
wait_callers(nm_mesh_t *m, unsigned n)
{
    for (int i = 0; i < 10000; i++) {
        pthread_mutex_lock(&m->mu);
        unsigned c = m->callers;
        pthread_mutex_unlock(&m->mu);
        if (c >= n) {
            return;
        }
        nm_mesh_event ev;
        (void)nm_mesh_next_event(m, 1, &ev); /* 1 ms, not counted */
    }
    cr_assert_fail("no caller entered the node");
}

/* A connect waiting for its reply (reading the socket) leaves when the
 * node closes. */
Test(mesh_udp, close_wakes_a_connect, .timeout = 30)
{
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    memcpy(cfg.psk, PSK, 32);
    cfg.psk_set = true;
    cfg.handshake_timeout_ms = 20000; /* one long attempt */
    cfg.handshake_attempts = 1;
    unode a;
    cr_assert_eq(nm_mesh_open(&cfg, &a.m), NM_OK, "%s", nm_errdetail());
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, blocked_connect, a.m), 0);
    wait_callers(a.m, 1);
    nm_mesh_close(a.m);
    void *r;
    pthread_join(t, &r);
    cr_assert_eq((intptr_t)r, NM_ECLOSED);
}

static atomic_int handled;

static void
counting_handler(void *ctx, const nm_mesh_delivery *d)
{
    (void)ctx;
    (void)d;
    atomic_fetch_add(&handled, 1);
}

static atomic_int sp_returned;

static void
sp_sets_handler(void *ctx, nm_mesh_t *m, uint64_t peer, uint16_t sp,
                uint64_t stream_id, const uint8_t *pt, size_t len,
                uint16_t count, int hops)
{
    (void)ctx;
    (void)peer;
    (void)sp;
    (void)stream_id;
    (void)pt;
    (void)len;
    (void)count;
    (void)hops;
    /* stops the delivery worker: wakes it and joins it */
    nm_mesh_set_handler(m, NULL, NULL);
    atomic_store(&sp_returned, 1);
}

/* A subprotocol handler runs on the I/O thread with the node unlocked and
 * may call any nm_mesh_* function, including ones that wait for another
 * thread of the node: wakes must not be held back while it runs. */
Test(mesh_udp, subprotocol_handler_may_wait_for_the_worker, .timeout = 30)
{
    unode a, b;
    open_node(&a, NULL, 200, 2000);
    open_node(&b, NULL, 200, 2000);
    link_nodes(&a, &b);
    cr_assert_eq(nmi_mesh_sp_register(b.m, 0x0D00, sp_sets_handler, NULL),
                 NM_OK);
    atomic_store(&handled, 0);
    atomic_store(&sp_returned, 0);
    cr_assert_eq(nm_mesh_set_handler(b.m, counting_handler, NULL), NM_OK);
    /* one delivery through the worker first: it then waits for the next
     * one while the subprotocol message travels */
    const char *msg = "x";
    size_t len = 1;
    cr_assert_eq(nm_mesh_send_blocking(a.m, b.id, 1, (const void *const *)&msg,
                                       &len, 1),
                 NM_OK);
    for (int i = 0; i < 5000 && atomic_load(&handled) == 0; i++) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(atomic_load(&handled), 1);
    cr_assert_eq(nmi_mesh_sp_send(a.m, b.id, 0x0D00, 0,
                                  (const void *const *)&msg, &len, 1),
                 NM_OK, "%s", nm_errdetail());
    for (int i = 0; i < 5000 && !atomic_load(&sp_returned); i++) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert(atomic_load(&sp_returned), "the handler never returned");
    nm_mesh_close(a.m);
    nm_mesh_close(b.m);
}
