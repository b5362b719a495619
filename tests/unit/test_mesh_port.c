/*
 * tests/unit/test_mesh_port.c - the datagram-port interface: addresses,
 * the loopback hub, the seeded fault injector and the real UDP port
 * (try_send fast path, queued fallback, recvmmsg, socket buffer options).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include <netmesh/error.h>

#include "core/core.h"
#include "mesh/port.h"

/* ---- a receive trace ------------------------------------------------ */

typedef struct rec {
    uint16_t to, from;
    uint32_t seq; /* first 4 payload bytes, LE (0 if shorter) */
    size_t len;
} rec;

typedef struct trace {
    rec *r;
    size_t n, cap;
} trace;

typedef struct sink {
    trace *t;
    uint16_t self;
} sink;

static void
on_recv(void *ctx, nmi_port *port, const nmi_addr *from, const uint8_t *data,
        size_t len)
{
    (void)port;
    sink *s = ctx;
    trace *t = s->t;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->r = realloc(t->r, t->cap * sizeof(*t->r));
        cr_assert_not_null(t->r);
    }
    rec *r = &t->r[t->n++];
    r->to = s->self;
    r->from = nmi_addr_port(from);
    r->seq = len >= 4 ? nmi_load_le32(data) : 0;
    r->len = len;
}

static void
addr_of(nmi_port *p, nmi_addr *a)
{
    cr_assert_eq(nmi_port_local_addr(p, a), NM_OK);
}

static int
send_seq(nmi_port *p, const nmi_addr *to, uint32_t seq)
{
    uint8_t b[16];
    memset(b, 0xab, sizeof(b));
    nmi_store_le32(b, seq);
    return nmi_port_send(p, to, b, sizeof(b));
}

/* ---- addresses ------------------------------------------------------ */

Test(mesh_port, addr_round_trips)
{
    const char *ok[] = {
        "0.0.0.0:0",          "127.0.0.1:1",          "255.255.255.255:65535",
        "[::1]:443",          "[2001:db8::1]:9000",   "[::]:0",
        "[::ffff:1.2.3.4]:1", "[fe80::1:2:3:4]:65535"};
    for (size_t i = 0; i < NMI_ARRAY_LEN(ok); i++) {
        nmi_addr a, b;
        char buf[NMI_ADDR_STRLEN];
        cr_assert_eq(nmi_addr_parse(&a, ok[i]), NM_OK, "%s: %s", ok[i],
                     nm_errdetail());
        int n = nmi_addr_format(&a, buf, sizeof(buf));
        cr_assert_eq(n, (int)strlen(ok[i]), "%s", ok[i]);
        cr_assert_str_eq(buf, ok[i]);
        cr_assert_eq(nmi_addr_parse(&b, buf), NM_OK);
        cr_assert(nmi_addr_equal(&a, &b));
    }
    nmi_addr a, b;
    nmi_addr_parse(&a, "10.0.0.1:80");
    nmi_addr_ipv4(&b, 0x0a000001u, 80);
    cr_assert(nmi_addr_equal(&a, &b));
    cr_assert_eq(nmi_addr_port(&a), 80);
    nmi_addr_parse(&b, "10.0.0.1:81");
    cr_assert_not(nmi_addr_equal(&a, &b));
    nmi_addr_parse(&b, "[::1]:80");
    cr_assert_not(nmi_addr_equal(&a, &b));
}

Test(mesh_port, addr_errors)
{
    const char *bad[] = {"",
                         "1.2.3.4",
                         "1.2.3.4:",
                         "1.2.3.4:x",
                         "1.2.3.4:65536",
                         "1.2.3.4:-1",
                         "1.2.3:5",
                         "host:80",
                         "[::1]",
                         "[::1]5",
                         "[::1:5",
                         "::1:5",
                         "[1.2.3.4]:5",
                         "[::1]:",
                         "1.2.3.4:99999999999",
                         "[fe80::1%eth0]:5"};
    for (size_t i = 0; i < NMI_ARRAY_LEN(bad); i++) {
        nmi_addr a;
        cr_assert_eq(nmi_addr_parse(&a, bad[i]), NM_EINVAL, "'%s'", bad[i]);
        cr_assert_neq(nm_errdetail()[0], '\0');
        cr_assert_eq(a.ss.ss_family, 0);
    }
    nmi_addr a;
    cr_assert_eq(nmi_addr_parse(NULL, "1.2.3.4:5"), NM_EINVAL);
    cr_assert_eq(nmi_addr_parse(&a, NULL), NM_EINVAL);
    nmi_addr_parse(&a, "[2001:db8::1]:9000");
    char small[8];
    cr_assert_eq(nmi_addr_format(&a, small, sizeof(small)), NM_ERANGE);
    cr_assert_str_eq(small, "");
    memset(&a, 0, sizeof(a));
    char buf[NMI_ADDR_STRLEN];
    cr_assert_eq(nmi_addr_format(&a, buf, sizeof(buf)), NM_EINVAL);
}

/* ---- loopback hub --------------------------------------------------- */

Test(mesh_port, loop_three_ports)
{
    nmi_loop_hub *h;
    cr_assert_eq(nmi_loop_hub_new(&h), NM_OK);
    nmi_port *p[3];
    nmi_addr a[3];
    trace t = {0};
    sink s[3];
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(nmi_loop_hub_attach(h, 0, &p[i]), NM_OK);
        addr_of(p[i], &a[i]);
        s[i] = (sink){&t, nmi_addr_port(&a[i])};
        nmi_port_set_recv(p[i], on_recv, &s[i]);
        char buf[NMI_ADDR_STRLEN];
        nmi_addr_format(&a[i], buf, sizeof(buf));
        char want[32];
        snprintf(want, sizeof(want), "127.0.0.1:%d", i + 1);
        cr_assert_str_eq(buf, want);
    }
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            if (i != j) {
                cr_assert_eq(send_seq(p[i], &a[j], (uint32_t)(10 * i + j)),
                             NM_OK);
            }
        }
    }
    cr_assert_eq(t.n, 0, "nothing is delivered before a poll");
    cr_assert_eq(nmi_port_poll(p[1]), 2);
    cr_assert_eq(t.n, 2);
    /* FIFO: from port 1 (seq 1) then port 3 (seq 21). */
    cr_assert_eq(t.r[0].to, 2);
    cr_assert_eq(t.r[0].from, 1);
    cr_assert_eq(t.r[0].seq, 1);
    cr_assert_eq(t.r[1].from, 3);
    cr_assert_eq(t.r[1].seq, 21);
    cr_assert_eq(t.r[1].len, 16);
    cr_assert_eq(nmi_loop_hub_run(h, 0), 4);
    cr_assert_eq(t.n, 6);
    for (size_t k = 0; k < t.n; k++) {
        cr_assert_eq(t.r[k].seq, 10u * (t.r[k].from - 1) + (t.r[k].to - 1));
    }
    /* Unknown destination: silently lost, like UDP. */
    nmi_addr nowhere;
    nmi_addr_parse(&nowhere, "127.0.0.1:999");
    cr_assert_eq(send_seq(p[0], &nowhere, 1), NM_OK);
    nmi_addr_parse(&nowhere, "10.0.0.1:2");
    cr_assert_eq(send_seq(p[0], &nowhere, 1), NM_OK);
    nmi_loop_stats st;
    nmi_loop_hub_stats(h, &st);
    cr_assert_eq(st.sent, 8);
    cr_assert_eq(st.delivered, 6);
    cr_assert_eq(st.undeliverable, 2);
    /* Explicit numbers; taken numbers refused. */
    nmi_port *q;
    cr_assert_eq(nmi_loop_hub_attach(h, 2, &q), NM_EEXIST);
    cr_assert_eq(nmi_loop_hub_attach(h, 7000, &q), NM_OK);
    /* Closing drops what is queued and stops delivery. */
    nmi_addr qa;
    addr_of(q, &qa);
    send_seq(p[0], &qa, 5);
    nmi_port_close(q);
    cr_assert_eq(nmi_loop_hub_run(h, 0), 0);
    cr_assert_eq(nmi_port_send(q, &a[0], "x", 1), NM_ECLOSED);
    cr_assert_eq(nmi_port_poll(q), NM_ECLOSED);
    cr_assert_eq(nmi_port_local_addr(q, &qa), NM_ECLOSED);
    nmi_port_close(q); /* idempotent */
    nmi_port_destroy(q);
    nmi_port_destroy(p[0]);
    free(t.r);
    nmi_loop_hub_free(h); /* frees p[1], p[2] */
}

/* A callback that replies: each poll delivers only what was queued. */
static void
on_echo(void *ctx, nmi_port *port, const nmi_addr *from, const uint8_t *data,
        size_t len)
{
    int *count = ctx;
    (*count)++;
    uint32_t v = nmi_load_le32(data);
    (void)len;
    if (v < 10) {
        send_seq(port, from, v + 1);
    }
}

Test(mesh_port, loop_reply_in_callback)
{
    nmi_loop_hub *h;
    nmi_loop_hub_new(&h);
    nmi_port *a, *b;
    nmi_loop_hub_attach(h, 0, &a);
    nmi_loop_hub_attach(h, 0, &b);
    int ca = 0, cb = 0;
    nmi_port_set_recv(a, on_echo, &ca);
    nmi_port_set_recv(b, on_echo, &cb);
    nmi_addr ba;
    addr_of(b, &ba);
    send_seq(a, &ba, 0);
    cr_assert_eq(nmi_port_poll(b), 1);
    cr_assert_eq(nmi_port_poll(b), 0);
    cr_assert_eq(nmi_loop_hub_run(h, 0), 10);
    cr_assert_eq(ca + cb, 11);
    nmi_loop_hub_free(h);
}

/* ---- fault injector ------------------------------------------------- */

static nmi_fault_config
cfg_of(uint64_t seed, double drop, double dup, uint32_t win, uint32_t delay)
{
    return (nmi_fault_config){.size = sizeof(nmi_fault_config),
                              .seed = seed,
                              .drop_pct = drop,
                              .dup_pct = dup,
                              .reorder_window = win,
                              .delay_ticks = delay};
}

/* hub with a fault-wrapped sender (port 1) and plain receivers 2 and 3. */
typedef struct rig {
    nmi_loop_hub *h;
    nmi_port *f, *r[2];
    nmi_addr ra[2];
    trace t;
    sink s[2];
} rig;

static void
rig_open(rig *g, const nmi_fault_config *cfg)
{
    memset(g, 0, sizeof(*g));
    cr_assert_eq(nmi_loop_hub_new(&g->h), NM_OK);
    nmi_port *inner;
    cr_assert_eq(nmi_loop_hub_attach(g->h, 0, &inner), NM_OK);
    cr_assert_eq(nmi_fault_new(inner, cfg, &g->f), NM_OK, "%s",
                 nm_errdetail());
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(nmi_loop_hub_attach(g->h, 0, &g->r[i]), NM_OK);
        addr_of(g->r[i], &g->ra[i]);
        g->s[i] = (sink){&g->t, nmi_addr_port(&g->ra[i])};
        nmi_port_set_recv(g->r[i], on_recv, &g->s[i]);
    }
}

static void
rig_close(rig *g)
{
    nmi_port_destroy(g->f); /* also destroys its inner loop port */
    nmi_loop_hub_free(g->h);
    free(g->t.r);
}

/* Send n datagrams, ticking and draining as we go; return the trace. */
static trace
run_mixed(uint64_t seed, size_t n)
{
    nmi_fault_config cfg = cfg_of(seed, 10, 10, 5, 2);
    rig g;
    rig_open(&g, &cfg);
    nmi_fault *f = nmi_fault_from_port(g.f);
    cr_assert_not_null(f);
    cr_assert_eq(nmi_fault_seed(f), seed);
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_eq(send_seq(g.f, &g.ra[i % 2], i), NM_OK);
        if (i % 7 == 6) {
            nmi_fault_tick(f);
            nmi_loop_hub_run(g.h, 0);
        }
    }
    for (int k = 0; k < 4; k++) {
        nmi_fault_tick(f);
    }
    nmi_loop_hub_run(g.h, 0);
    trace t = g.t;
    g.t = (trace){0};
    rig_close(&g);
    return t;
}

static bool
trace_eq(const trace *a, const trace *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (a->r[i].to != b->r[i].to || a->r[i].seq != b->r[i].seq ||
            a->r[i].from != b->r[i].from) {
            return false;
        }
    }
    return true;
}

Test(mesh_port, fault_deterministic)
{
    uint64_t seed = 0x5eed0001u;
    trace a = run_mixed(seed, 2000);
    trace b = run_mixed(seed, 2000);
    trace c = run_mixed(seed + 1, 2000);
    cr_assert(a.n > 1500, "seed %#llx: %zu delivered",
              (unsigned long long)seed, a.n);
    cr_assert(trace_eq(&a, &b), "seed %#llx: same seed, different trace",
              (unsigned long long)seed);
    cr_assert_not(trace_eq(&a, &c), "seed %#llx vs +1: identical traces",
                  (unsigned long long)seed);
    /* Not in send order (reordering happened) for the same seed. */
    bool in_order = true;
    for (size_t i = 1; i < a.n; i++) {
        if (a.r[i].seq < a.r[i - 1].seq) {
            in_order = false;
        }
    }
    cr_assert_not(in_order);
    free(a.r);
    free(b.r);
    free(c.r);
}

Test(mesh_port, fault_drop_dup_rates)
{
    uint64_t seed = 42;
    nmi_fault_config cfg = cfg_of(seed, 10, 5, 0, 0);
    rig g;
    rig_open(&g, &cfg);
    nmi_fault *f = nmi_fault_from_port(g.f);
    const uint32_t n = 100000;
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_eq(send_seq(g.f, &g.ra[0], i), NM_OK);
        if (i % 1024 == 1023) {
            nmi_loop_hub_run(g.h, 0);
        }
    }
    nmi_loop_hub_run(g.h, 0);
    nmi_fault_stats st;
    nmi_fault_stats_get(f, &st);
    cr_assert_eq(st.sent, n);
    /* Expected 10% dropped, 0.9 * 5% = 4.5% duplicated. */
    cr_assert(st.dropped >= 9500 && st.dropped <= 10500,
              "seed %llu: dropped %llu", (unsigned long long)seed,
              (unsigned long long)st.dropped);
    cr_assert(st.duplicated >= 4100 && st.duplicated <= 4900,
              "seed %llu: duplicated %llu", (unsigned long long)seed,
              (unsigned long long)st.duplicated);
    cr_assert_eq(st.forwarded, n - st.dropped + st.duplicated);
    cr_assert_eq(g.t.n, st.forwarded);
    cr_assert_eq(st.partitioned + st.errors, 0);
    /* Every survivor arrives once, or twice when duplicated, in order. */
    uint8_t *seen = calloc(n, 1);
    for (size_t i = 0; i < g.t.n; i++) {
        cr_assert(g.t.r[i].seq < n);
        seen[g.t.r[i].seq]++;
        if (i > 0) {
            cr_assert(g.t.r[i].seq >= g.t.r[i - 1].seq);
        }
    }
    uint64_t zero = 0, two = 0;
    for (uint32_t i = 0; i < n; i++) {
        cr_assert(seen[i] <= 2);
        zero += seen[i] == 0;
        two += seen[i] == 2;
    }
    cr_assert_eq(zero, st.dropped);
    cr_assert_eq(two, st.duplicated);
    free(seen);
    rig_close(&g);
}

Test(mesh_port, fault_extremes)
{
    nmi_fault_config cfg = cfg_of(7, 100, 0, 0, 0);
    rig g;
    rig_open(&g, &cfg);
    for (uint32_t i = 0; i < 1000; i++) {
        send_seq(g.f, &g.ra[0], i);
    }
    nmi_loop_hub_run(g.h, 0);
    cr_assert_eq(g.t.n, 0);
    rig_close(&g);
    cfg = cfg_of(7, 0, 100, 0, 0);
    rig_open(&g, &cfg);
    for (uint32_t i = 0; i < 1000; i++) {
        send_seq(g.f, &g.ra[0], i);
    }
    nmi_loop_hub_run(g.h, 0);
    cr_assert_eq(g.t.n, 2000);
    rig_close(&g);
}

Test(mesh_port, fault_reorder_exactly_once)
{
    uint64_t seed = 0xdecafbad;
    nmi_fault_config cfg = cfg_of(seed, 0, 0, 16, 0);
    rig g;
    rig_open(&g, &cfg);
    nmi_fault *f = nmi_fault_from_port(g.f);
    const uint32_t n = 5000;
    for (uint32_t i = 0; i < n; i++) {
        send_seq(g.f, &g.ra[0], i);
    }
    nmi_loop_hub_run(g.h, 0);
    cr_assert_eq(g.t.n, n - 16, "the window holds 16");
    cr_assert_eq(nmi_fault_flush(f), 16);
    cr_assert_eq(nmi_fault_flush(f), 0);
    nmi_loop_hub_run(g.h, 0);
    cr_assert_eq(g.t.n, n);
    uint8_t *seen = calloc(n, 1);
    size_t displaced = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t s = g.t.r[i].seq;
        cr_assert(s < n);
        cr_assert_eq(seen[s], 0, "seed %#llx: seq %u twice",
                     (unsigned long long)seed, s);
        seen[s] = 1;
        displaced += s != i;
    }
    cr_assert(displaced > n / 2, "seed %#llx: only %zu displaced",
              (unsigned long long)seed, displaced);
    free(seen);
    /* The tick also releases the window. */
    send_seq(g.f, &g.ra[0], 1);
    send_seq(g.f, &g.ra[0], 2);
    cr_assert_eq(nmi_fault_tick(f), 2);
    rig_close(&g);
}

Test(mesh_port, fault_delay_ticks)
{
    nmi_fault_config cfg = cfg_of(1, 0, 0, 0, 3);
    rig g;
    rig_open(&g, &cfg);
    nmi_fault *f = nmi_fault_from_port(g.f);
    send_seq(g.f, &g.ra[0], 100);
    cr_assert_eq(nmi_fault_tick(f), 0);
    send_seq(g.f, &g.ra[1], 101); /* due at tick 4 */
    cr_assert_eq(nmi_fault_tick(f), 0);
    nmi_loop_hub_run(g.h, 0);
    cr_assert_eq(g.t.n, 0);
    cr_assert_eq(nmi_fault_tick(f), 1);
    cr_assert_eq(nmi_fault_now(f), 3);
    nmi_loop_hub_run(g.h, 0);
    cr_assert_eq(g.t.n, 1);
    cr_assert_eq(g.t.r[0].seq, 100);
    cr_assert_eq(nmi_fault_tick(f), 1);
    nmi_loop_hub_run(g.h, 0);
    cr_assert_eq(g.t.n, 2);
    cr_assert_eq(g.t.r[1].seq, 101);
    cr_assert_eq(g.t.r[1].to, nmi_addr_port(&g.ra[1]));
    /* Pending delayed datagrams are freed on destroy (ASan checks). */
    send_seq(g.f, &g.ra[0], 102);
    rig_close(&g);
}

Test(mesh_port, fault_partition_and_heal)
{
    nmi_loop_hub *h;
    nmi_loop_hub_new(&h);
    nmi_port *p[3];
    nmi_addr a[3];
    trace t = {0};
    sink s[3];
    nmi_fault_config cfg = cfg_of(9, 0, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
        nmi_port *inner;
        nmi_loop_hub_attach(h, 0, &inner);
        cr_assert_eq(nmi_fault_new(inner, &cfg, &p[i]), NM_OK);
        addr_of(p[i], &a[i]);
        s[i] = (sink){&t, nmi_addr_port(&a[i])};
        nmi_port_set_recv(p[i], on_recv, &s[i]);
    }
    /* {A} | {B, C}, configured on every node's injector. */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(
            nmi_fault_partition(nmi_fault_from_port(p[i]), &a[0], 1, &a[1], 2),
            NM_OK);
    }
    send_seq(p[0], &a[1], 1); /* A->B blocked */
    send_seq(p[1], &a[0], 2); /* B->A blocked */
    send_seq(p[1], &a[2], 3); /* B->C same side */
    send_seq(p[2], &a[2], 4); /* C->C */
    nmi_loop_hub_run(h, 0);
    cr_assert_eq(t.n, 2);
    cr_assert_eq(t.r[0].seq, 3);
    cr_assert_eq(t.r[1].seq, 4);
    nmi_fault_stats st;
    nmi_fault_stats_get(nmi_fault_from_port(p[0]), &st);
    cr_assert_eq(st.partitioned, 1);
    for (int i = 0; i < 3; i++) {
        nmi_fault_heal(nmi_fault_from_port(p[i]));
    }
    send_seq(p[0], &a[1], 5);
    send_seq(p[1], &a[0], 6);
    nmi_loop_hub_run(h, 0);
    cr_assert_eq(t.n, 4);
    /* The hub polls in attach order: A (gets 6) before B (gets 5). */
    cr_assert_eq(t.r[2].seq, 6);
    cr_assert_eq(t.r[2].from, nmi_addr_port(&a[1]));
    cr_assert_eq(t.r[3].seq, 5);
    cr_assert_eq(t.r[3].from, nmi_addr_port(&a[0]));
    for (int i = 0; i < 3; i++) {
        nmi_port_destroy(p[i]);
    }
    free(t.r);
    nmi_loop_hub_free(h);
}

Test(mesh_port, bad_inputs)
{
    nmi_loop_hub *h;
    cr_assert_eq(nmi_loop_hub_new(NULL), NM_EINVAL);
    nmi_loop_hub_new(&h);
    nmi_port *a, *b;
    cr_assert_eq(nmi_loop_hub_attach(NULL, 0, &a), NM_EINVAL);
    cr_assert_eq(nmi_loop_hub_attach(h, 0, NULL), NM_EINVAL);
    nmi_loop_hub_attach(h, 0, &a);
    nmi_loop_hub_attach(h, 0, &b);
    nmi_addr ba, zero;
    addr_of(b, &ba);
    memset(&zero, 0, sizeof(zero));
    static uint8_t big[NMI_PORT_MAX_DATAGRAM + 1];
    cr_assert_eq(nmi_port_send(NULL, &ba, "x", 1), NM_EINVAL);
    cr_assert_eq(nmi_port_send(a, NULL, "x", 1), NM_EINVAL);
    cr_assert_eq(nmi_port_send(a, &ba, NULL, 1), NM_EINVAL);
    cr_assert_eq(nmi_port_send(a, &zero, "x", 1), NM_EINVAL);
    cr_assert_neq(nm_errdetail()[0], '\0');
    cr_assert_eq(nmi_port_send(a, &ba, big, sizeof(big)), NM_ETOOBIG);
    cr_assert_eq(nmi_port_send(a, &ba, big, sizeof(big) - 1), NM_OK);
    cr_assert_eq(nmi_port_send(a, &ba, NULL, 0), NM_OK);
    cr_assert_eq(nmi_port_poll(NULL), NM_EINVAL);
    cr_assert_eq(nmi_port_local_addr(a, NULL), NM_EINVAL);
    cr_assert_eq(nmi_loop_hub_run(NULL, 0), NM_EINVAL);
    cr_assert_eq(nmi_loop_hub_run(h, 0), 2);

    /* Fault config errors destroy the inner port (ASan checks). */
    nmi_port *inner, *f = (nmi_port *)1;
    nmi_fault_config cfg = cfg_of(1, 101, 0, 0, 0);
    nmi_loop_hub_attach(h, 0, &inner);
    cr_assert_eq(nmi_fault_new(inner, &cfg, &f), NM_EINVAL);
    cr_assert_null(f);
    cfg = cfg_of(1, 0, NAN, 0, 0);
    nmi_loop_hub_attach(h, 0, &inner);
    cr_assert_eq(nmi_fault_new(inner, &cfg, &f), NM_EINVAL);
    cfg = cfg_of(1, -1, 0, 0, 0);
    nmi_loop_hub_attach(h, 0, &inner);
    cr_assert_eq(nmi_fault_new(inner, &cfg, &f), NM_EINVAL);
    cfg = cfg_of(1, 0, 0, 0, 0);
    cfg.size = 4;
    nmi_loop_hub_attach(h, 0, &inner);
    cr_assert_eq(nmi_fault_new(inner, &cfg, &f), NM_EINVAL);
    cfg.size = sizeof(cfg);
    cr_assert_eq(nmi_fault_new(NULL, &cfg, &f), NM_EINVAL);
    nmi_loop_hub_attach(h, 0, &inner);
    cr_assert_eq(nmi_fault_new(inner, NULL, &f), NM_EINVAL);
    cr_assert_null(nmi_fault_from_port(a));
    cr_assert_null(nmi_fault_from_port(NULL));

    /* A closed fault port. */
    nmi_loop_hub_attach(h, 0, &inner);
    cr_assert_eq(nmi_fault_new(inner, &cfg, &f), NM_OK);
    nmi_fault *ff = nmi_fault_from_port(f);
    cr_assert_eq(nmi_fault_partition(ff, NULL, 1, &ba, 1), NM_EINVAL);
    cr_assert_eq(nmi_fault_tick(NULL), NM_EINVAL);
    cr_assert_eq(nmi_fault_flush(NULL), NM_EINVAL);
    nmi_port_close(f);
    cr_assert_eq(nmi_port_send(f, &ba, "x", 1), NM_ECLOSED);
    cr_assert_eq(nmi_port_poll(f), NM_ECLOSED);
    cr_assert_eq(nmi_fault_tick(ff), NM_ECLOSED);
    cr_assert_eq(nmi_fault_flush(ff), NM_ECLOSED);
    nmi_port_destroy(f);
    nmi_port_destroy(NULL);
    nmi_loop_hub_free(NULL);
    nmi_loop_hub_free(h);
}

/* ---- real UDP (libuv) ----------------------------------------------- */

typedef struct udp_sink {
    trace t;
    nmi_addr last_from;
    int want;
} udp_sink;

static void
on_udp(void *ctx, nmi_port *port, const nmi_addr *from, const uint8_t *data,
       size_t len)
{
    udp_sink *u = ctx;
    sink s = {&u->t, 0};
    u->last_from = *from;
    on_recv(&s, port, from, data, len);
}

Test(mesh_port, udp_loopback)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    nmi_addr any;
    nmi_addr_parse(&any, "127.0.0.1:0");
    nmi_port *a, *b;
    cr_assert_eq(nmi_udp_port_open(&loop, &any, &a), NM_OK, "%s",
                 nm_errdetail());
    cr_assert_eq(nmi_udp_port_open(&loop, &any, &b), NM_OK);
    nmi_addr aa, ba;
    addr_of(a, &aa);
    addr_of(b, &ba);
    cr_assert_neq(nmi_addr_port(&ba), 0);
    udp_sink us = {0};
    nmi_port_set_recv(b, on_udp, &us);
    for (uint32_t i = 0; i < 5; i++) {
        cr_assert_eq(send_seq(a, &ba, i), NM_OK);
    }
    cr_assert_eq(nmi_port_send(a, &ba, NULL, 0), NM_OK);
    cr_assert_eq(nmi_port_poll(b), 0);
    for (int spin = 0; spin < 2000 && us.t.n < 6; spin++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        nmi_sleep_ns(1000000);
    }
    cr_assert_eq(us.t.n, 6);
    for (uint32_t i = 0; i < 5; i++) {
        cr_assert_eq(us.t.r[i].seq, i); /* loopback UDP keeps order */
        cr_assert_eq(us.t.r[i].len, 16);
    }
    cr_assert_eq(us.t.r[5].len, 0);
    cr_assert(nmi_addr_equal(&us.last_from, &aa));
    /* Binding a taken port fails with NM_EIO. */
    nmi_port *c = NULL;
    cr_assert_eq(nmi_udp_port_open(&loop, &ba, &c), NM_EIO);
    cr_assert_neq(nm_errdetail()[0], '\0');
    cr_assert_eq(nmi_udp_port_open(NULL, &ba, &c), NM_EINVAL);
    nmi_port_destroy(a);
    nmi_port_close(b);
    cr_assert_eq(nmi_port_send(b, &aa, "x", 1), NM_ECLOSED);
    nmi_port_destroy(b);
    uv_run(&loop, UV_RUN_DEFAULT); /* runs the close callbacks */
    cr_assert_eq(uv_loop_close(&loop), 0);
    free(us.t.r);
}

/* ---- real UDP: bounded loop runs (no sleeps) ------------------------ */

/* A one-shot timer that bounds a uv_run loop. */
typedef struct deadline {
    uv_timer_t t;
    bool expired;
} deadline;

static void
on_deadline(uv_timer_t *t)
{
    deadline *d = t->data;
    d->expired = true;
}

static void
deadline_start(uv_loop_t *loop, deadline *d, uint64_t ms)
{
    d->expired = false;
    cr_assert_eq(uv_timer_init(loop, &d->t), 0);
    d->t.data = d;
    cr_assert_eq(uv_timer_start(&d->t, on_deadline, ms, 0), 0);
}

static void
deadline_stop(deadline *d)
{
    uv_close((uv_handle_t *)&d->t, NULL);
}

/* Run `loop` one blocking iteration at a time until *done becomes true or
 * `ms` elapsed (the timer wakes the loop). Returns *done. */
static bool
run_until(uv_loop_t *loop, const bool *done, uint64_t ms)
{
    deadline d;
    deadline_start(loop, &d, ms);
    while (!*done && !d.expired) {
        uv_run(loop, UV_RUN_ONCE);
    }
    deadline_stop(&d);
    uv_run(loop, UV_RUN_NOWAIT); /* the timer's close callback */
    return *done;
}

static nmi_udp_opts
udp_opts(int sndbuf, int rcvbuf, unsigned slots)
{
    nmi_udp_opts o;
    nmi_udp_opts_init(&o);
    o.sndbuf = sndbuf;
    o.rcvbuf = rcvbuf;
    o.recv_slots = slots;
    return o;
}

static void
udp_pair(uv_loop_t *loop, const nmi_udp_opts *oa, const nmi_udp_opts *ob,
         nmi_port **a, nmi_port **b, nmi_addr *aa, nmi_addr *ba)
{
    nmi_addr any;
    nmi_addr_parse(&any, "127.0.0.1:0");
    cr_assert_eq(nmi_udp_port_open2(loop, &any, oa, a), NM_OK, "%s",
                 nm_errdetail());
    cr_assert_eq(nmi_udp_port_open2(loop, &any, ob, b), NM_OK, "%s",
                 nm_errdetail());
    addr_of(*a, aa);
    addr_of(*b, ba);
}

static void
udp_teardown(uv_loop_t *loop, nmi_port *a, nmi_port *b)
{
    nmi_port_destroy(a);
    nmi_port_destroy(b);
    uv_run(loop, UV_RUN_DEFAULT); /* close callbacks free the ports */
    cr_assert_eq(uv_loop_close(loop), 0);
}

static nmi_udp_stats
udp_stats(nmi_port *p)
{
    nmi_udp_stats st;
    cr_assert_eq(nmi_udp_port_stats(p, &st), NM_OK);
    return st;
}

/* Datagram i: 4..1203 bytes, seq LE then a pattern derived from seq. */
static size_t
dgram_len(uint32_t seq)
{
    return 4 + (seq * 37u) % 1200u;
}

static void
dgram_fill(uint8_t *b, uint32_t seq)
{
    nmi_store_le32(b, seq);
    for (size_t k = 4; k < dgram_len(seq); k++) {
        b[k] = (uint8_t)(seq * 31u + k);
    }
}

/* true when data is exactly datagram *seq (which it sets). */
static bool
dgram_ok(const uint8_t *data, size_t len, uint32_t *seq)
{
    if (len < 4) {
        return false;
    }
    uint32_t s = nmi_load_le32(data);
    if (len != dgram_len(s)) {
        return false;
    }
    for (size_t k = 4; k < len; k++) {
        if (data[k] != (uint8_t)(s * 31u + k)) {
            return false;
        }
    }
    *seq = s;
    return true;
}

/* One side of the echo test: what it saw, in which order. */
typedef struct echo_side {
    uint32_t n;     /* datagrams expected */
    uint8_t *seen;  /* per seq */
    uint32_t got;   /* good datagrams */
    uint32_t bad;   /* corrupted or unknown */
    uint32_t order; /* arrivals out of send order */
    uint32_t next;
    bool echo; /* send every datagram back to its sender */
    bool done; /* got == n */
} echo_side;

static void
on_echo_side(void *ctx, nmi_port *port, const nmi_addr *from,
             const uint8_t *data, size_t len)
{
    echo_side *e = ctx;
    uint32_t seq;
    if (!dgram_ok(data, len, &seq) || seq >= e->n) {
        e->bad++;
        return;
    }
    e->seen[seq]++;
    e->order += seq != e->next;
    e->next = seq + 1;
    e->got++;
    e->done = e->got == e->n;
    if (e->echo) {
        cr_assert_eq(nmi_port_send(port, from, data, len), NM_OK);
    }
}

Test(mesh_port, udp_thousand_echoed_intact)
{
    enum { N = 1000, WINDOW = 64 };
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    nmi_udp_opts o = udp_opts(0, 1 << 20, 0);
    nmi_port *a, *b;
    nmi_addr aa, ba;
    udp_pair(&loop, &o, &o, &a, &b, &aa, &ba);
    echo_side sb = {.n = N, .seen = calloc(N, 1), .echo = true};
    echo_side sa = {.n = N, .seen = calloc(N, 1)};
    nmi_port_set_recv(b, on_echo_side, &sb);
    nmi_port_set_recv(a, on_echo_side, &sa);

    /* A sends with at most WINDOW round trips in flight; B echoes from
     * its receive callback. The deadline bounds the whole exchange. */
    uint8_t buf[1300];
    uint32_t sent = 0;
    deadline d;
    deadline_start(&loop, &d, 10000);
    while (!sa.done && !d.expired) {
        while (sent < N && sent - sa.got < WINDOW) {
            dgram_fill(buf, sent);
            cr_assert_eq(nmi_port_send(a, &ba, buf, dgram_len(sent)), NM_OK);
            sent++;
        }
        uv_run(&loop, UV_RUN_ONCE);
    }
    deadline_stop(&d);
    cr_assert(sa.done, "A got %u of %u echoes (B got %u)", sa.got, N, sb.got);
    for (uint32_t i = 0; i < N; i++) {
        cr_assert_eq(sb.seen[i], 1, "B: seq %u seen %u times", i, sb.seen[i]);
        cr_assert_eq(sa.seen[i], 1, "A: seq %u seen %u times", i, sa.seen[i]);
    }
    cr_assert_eq(sa.bad + sb.bad, 0);
    cr_assert_eq(sa.order + sb.order, 0, "loopback UDP keeps order");
    nmi_udp_stats st = udp_stats(a);
    cr_assert_eq(st.sent, N);
    cr_assert_eq(st.received, N);
    cr_assert_eq(st.send_errors + st.recv_errors + st.recv_truncated, 0);
    st = udp_stats(b);
    cr_assert_eq(st.sent, N);
    cr_assert_eq(st.received, N);
    udp_teardown(&loop, a, b);
    free(sa.seen);
    free(sb.seen);
}

Test(mesh_port, udp_recvmmsg_burst)
{
    /* 300 datagrams wait in the socket before the loop runs: libuv reads
     * them in recvmmsg batches of up to NMI_UDP_MAX_SLOTS. */
    enum { N = 300 };
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    nmi_udp_opts o = udp_opts(0, 4 << 20, 0);
    nmi_port *a, *b;
    nmi_addr aa, ba;
    udp_pair(&loop, &o, &o, &a, &b, &aa, &ba);
    echo_side sb = {.n = N, .seen = calloc(N, 1)};
    nmi_port_set_recv(b, on_echo_side, &sb);
    uint8_t buf[1300];
    for (uint32_t i = 0; i < N; i++) {
        dgram_fill(buf, i);
        cr_assert_eq(nmi_port_send(a, &ba, buf, dgram_len(i)), NM_OK);
    }
    nmi_udp_stats st = udp_stats(a);
    cr_assert_eq(st.sent, N, "loopback never blocks: all sent directly");
    cr_assert_eq(st.sent_queued, 0);
    cr_assert(run_until(&loop, &sb.done, 10000), "got %u of %u", sb.got, N);
    cr_assert_eq(sb.bad + sb.order, 0);
    st = udp_stats(b);
#ifdef __linux__
    cr_assert(st.recvmmsg);
    cr_assert_eq(st.received_mmsg, N);
    /* At least ceil(N / 20) calls; fewer than N means real batching. */
    cr_assert(st.recv_batches >=
                  (N + NMI_UDP_MAX_SLOTS - 1) / NMI_UDP_MAX_SLOTS,
              "%llu batches", (unsigned long long)st.recv_batches);
    cr_assert(st.recv_batches <= N / 2, "%llu batches for %d datagrams",
              (unsigned long long)st.recv_batches, N);
#endif
    cr_assert_eq(st.received, N);
    udp_teardown(&loop, a, b);

    /* recv_slots = 1: plain recvmsg, same datagrams. */
    cr_assert_eq(uv_loop_init(&loop), 0);
    nmi_udp_opts one = udp_opts(0, 4 << 20, 1);
    udp_pair(&loop, &o, &one, &a, &b, &aa, &ba);
    memset(sb.seen, 0, N);
    sb.got = sb.next = 0;
    sb.done = false;
    nmi_port_set_recv(b, on_echo_side, &sb);
    for (uint32_t i = 0; i < N; i++) {
        dgram_fill(buf, i);
        cr_assert_eq(nmi_port_send(a, &ba, buf, dgram_len(i)), NM_OK);
    }
    cr_assert(run_until(&loop, &sb.done, 10000), "got %u of %u", sb.got, N);
    cr_assert_eq(sb.bad + sb.order, 0);
    st = udp_stats(b);
    cr_assert_not(st.recvmmsg);
    cr_assert_eq(st.received, N);
    cr_assert_eq(st.received_mmsg + st.recv_batches, 0);
    udp_teardown(&loop, a, b);
    free(sb.seen);
}

Test(mesh_port, udp_buffer_options)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    const int want_snd = 256 << 10, want_rcv = 512 << 10;
    nmi_udp_opts o = udp_opts(want_snd, want_rcv, 0);
    nmi_udp_opts dflt;
    nmi_udp_opts_init(&dflt);
    cr_assert_eq(dflt.recv_slots, NMI_UDP_MAX_SLOTS);
    cr_assert_eq(dflt.sndbuf + dflt.rcvbuf, 0);
    nmi_port *a, *b;
    nmi_addr aa, ba;
    udp_pair(&loop, &o, NULL, &a, &b, &aa, &ba);
    int fd = -1;
    cr_assert_eq(nmi_udp_port_fd(a, &fd), NM_OK);
    cr_assert(fd >= 0);
    int v = 0;
    socklen_t vl = sizeof(v);
    cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &vl), 0);
    cr_assert(v >= want_snd / 2, "SO_SNDBUF %d for %d", v, want_snd);
    int snd = v;
    vl = sizeof(v);
    cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &vl), 0);
    cr_assert(v >= want_rcv / 2, "SO_RCVBUF %d for %d", v, want_rcv);
    nmi_udp_stats st = udp_stats(a);
    cr_assert_eq(st.sndbuf, snd);
    cr_assert_eq(st.rcvbuf, v);
    st = udp_stats(b); /* OS defaults */
    cr_assert(st.sndbuf > 0 && st.rcvbuf > 0);

    /* Bad options; nothing is left open on failure. */
    nmi_addr any;
    nmi_addr_parse(&any, "127.0.0.1:0");
    nmi_port *c = (nmi_port *)1;
    nmi_udp_opts bad = o;
    bad.size = 4;
    cr_assert_eq(nmi_udp_port_open2(&loop, &any, &bad, &c), NM_EINVAL);
    cr_assert_null(c);
    bad = o;
    bad.recv_slots = NMI_UDP_MAX_SLOTS + 1;
    cr_assert_eq(nmi_udp_port_open2(&loop, &any, &bad, &c), NM_EINVAL);
    bad = o;
    bad.rcvbuf = -1;
    cr_assert_eq(nmi_udp_port_open2(&loop, &any, &bad, &c), NM_EINVAL);
    cr_assert_neq(nm_errdetail()[0], '\0');
    cr_assert_eq(nmi_udp_port_open2(&loop, &ba, &o, &c), NM_EIO, "in use");

    /* The UDP-only calls refuse other ports. */
    nmi_loop_hub *h;
    nmi_port *lp;
    cr_assert_eq(nmi_loop_hub_new(&h), NM_OK);
    cr_assert_eq(nmi_loop_hub_attach(h, 0, &lp), NM_OK);
    cr_assert_eq(nmi_udp_port_stats(lp, &st), NM_EINVAL);
    cr_assert_eq(nmi_udp_port_stats(NULL, &st), NM_EINVAL);
    cr_assert_eq(nmi_udp_port_stats(a, NULL), NM_EINVAL);
    cr_assert_eq(nmi_udp_port_fd(lp, &fd), NM_EINVAL);
    cr_assert_eq(nmi_udp_port_inject_eagain(lp, 1), NM_EINVAL);
    nmi_loop_hub_free(h);

    /* A closed port: stats still readable, no fd. */
    nmi_port_close(a);
    cr_assert_eq(nmi_udp_port_fd(a, &fd), NM_ECLOSED);
    st = udp_stats(a);
    cr_assert_eq(st.sndbuf + st.rcvbuf, 0);
    udp_teardown(&loop, a, b);
}

/* Receiver for the fallback test: records seqs in arrival order. */
typedef struct seq_log {
    uint32_t v[64];
    uint32_t n, want;
    bool done;
} seq_log;

static void
on_seq_log(void *ctx, nmi_port *port, const nmi_addr *from,
           const uint8_t *data, size_t len)
{
    (void)port;
    (void)from;
    seq_log *l = ctx;
    if (len >= 4 && l->n < NMI_ARRAY_LEN(l->v)) {
        l->v[l->n++] = nmi_load_le32(data);
    }
    l->done = l->n >= l->want;
}

Test(mesh_port, udp_try_send_fallback)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    nmi_port *a, *b;
    nmi_addr aa, ba;
    udp_pair(&loop, NULL, NULL, &a, &b, &aa, &ba);
    seq_log log = {.want = 10};
    nmi_port_set_recv(b, on_seq_log, &log);

    /* One simulated EAGAIN: that send is copied and queued; the 9 after
     * it queue too (libuv still holds the first), so the order holds. */
    cr_assert_eq(nmi_udp_port_inject_eagain(a, 1), NM_OK);
    for (uint32_t i = 0; i < 10; i++) {
        cr_assert_eq(send_seq(a, &ba, i), NM_OK);
    }
    nmi_udp_stats st = udp_stats(a);
    cr_assert_eq(st.sent_queued, 10);
    cr_assert_eq(st.queued_now, 10);
    cr_assert_eq(st.queued_bytes, 10 * 16);
    cr_assert_eq(st.sent, 0, "completions run on the loop");
    cr_assert(run_until(&loop, &log.done, 10000), "got %u", log.n);
    /* Let the completions run too (they may trail the datagrams). */
    for (int i = 0; i < 100 && udp_stats(a).queued_now > 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    st = udp_stats(a);
    cr_assert_eq(st.queued_now, 0);
    cr_assert_eq(st.sent, 10);
    /* Queue drained: the direct path is back. */
    log.want = 15;
    log.done = false;
    for (uint32_t i = 10; i < 15; i++) {
        cr_assert_eq(send_seq(a, &ba, i), NM_OK);
    }
    st = udp_stats(a);
    cr_assert_eq(st.sent_queued, 10);
    cr_assert_eq(st.sent, 15);
    cr_assert(run_until(&loop, &log.done, 10000), "got %u", log.n);
    for (uint32_t i = 0; i < 15; i++) {
        cr_assert_eq(log.v[i], i, "arrival %u was seq %u", i, log.v[i]);
    }
    cr_assert_eq(st.send_errors, 0);

    /* The kernel refuses an IPv6 destination on an IPv4 socket: counted
     * (not returned) on the direct path... */
    nmi_addr v6;
    nmi_addr_parse(&v6, "[::1]:9");
    cr_assert_eq(send_seq(a, &v6, 99), NM_OK);
    st = udp_stats(a);
    cr_assert_eq(st.send_errors, 1);
    cr_assert_neq(st.last_send_error, 0);
    /* ...and, reported by the completion, on the queued path. */
    nmi_udp_port_inject_eagain(a, 1);
    cr_assert_eq(send_seq(a, &v6, 100), NM_OK);
    for (int i = 0; i < 100 && udp_stats(a).queued_now > 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    st = udp_stats(a);
    cr_assert_eq(st.sent_queued, 11);
    cr_assert_eq(st.send_errors, 2);
    cr_assert_eq(st.sent, 15);

    /* Queued sends pending at close are cancelled, not errors (ASan checks
     * their copies are freed). */
    nmi_udp_port_inject_eagain(a, 1);
    for (uint32_t i = 0; i < 5; i++) {
        cr_assert_eq(send_seq(a, &ba, 200 + i), NM_OK);
    }
    nmi_port_close(a);
    uv_run(&loop, UV_RUN_NOWAIT);
    st = udp_stats(a);
    cr_assert_eq(st.send_errors, 2);
    udp_teardown(&loop, a, b);
}
