/*
 * src/mesh/port_fault.c - the seeded fault injector (see port.h).
 *
 * Randomness comes only from a splitmix64 stream seeded by cfg.seed, and
 * time only from nmi_fault_tick, so a run is a pure function of the seed
 * and the sequence of calls. Every send draws exactly two numbers (drop,
 * duplicate) whatever the rates, plus one per reorder decision.
 */
#include "mesh/port.h"

#include <stdlib.h>
#include <string.h>

typedef struct fault_dgram {
    struct fault_dgram *next;
    uint64_t due;
    nmi_addr to;
    size_t len;
    uint8_t data[];
} fault_dgram;

struct nmi_fault {
    nmi_port base; /* first: a nmi_fault is a port */
    nmi_port *inner;
    nmi_fault_config cfg;
    uint64_t rng;
    uint64_t now;
    fault_dgram *dhead, *dtail; /* delay FIFO, due ascending */
    fault_dgram **held;         /* reorder window, cfg.reorder_window */
    size_t nheld;
    nmi_addr *pa, *pb;
    size_t npa, npb;
    nmi_fault_stats stats;
};

static uint64_t
splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* True with probability pct/100. */
static bool
chance(nmi_fault *f, double pct)
{
    double u = (double)(splitmix64(&f->rng) >> 11) * 0x1.0p-53;
    return u * 100.0 < pct;
}

/* Uniform in [0, n) (n >= 1); the tiny modulo bias is irrelevant here. */
static size_t
below(nmi_fault *f, size_t n)
{
    return (size_t)(splitmix64(&f->rng) % n);
}

static int
forward(nmi_fault *f, fault_dgram *d)
{
    int rc = nmi_port_send(f->inner, &d->to, d->data, d->len);
    if (rc == NM_OK) {
        f->stats.forwarded++;
    } else {
        f->stats.errors++;
    }
    free(d);
    return rc;
}

static int
reorder_stage(nmi_fault *f, fault_dgram *d)
{
    size_t w = f->cfg.reorder_window;
    if (w < 2) {
        return forward(f, d);
    }
    if (f->nheld < w) {
        f->held[f->nheld++] = d;
        return NM_OK;
    }
    size_t i = below(f, f->nheld + 1);
    if (i == f->nheld) {
        return forward(f, d);
    }
    fault_dgram *out = f->held[i];
    f->held[i] = d;
    return forward(f, out);
}

static void
release_held(nmi_fault *f)
{
    for (size_t i = f->nheld; i > 1; i--) { /* Fisher-Yates */
        size_t j = below(f, i);
        fault_dgram *t = f->held[i - 1];
        f->held[i - 1] = f->held[j];
        f->held[j] = t;
    }
    size_t n = f->nheld;
    f->nheld = 0;
    for (size_t i = 0; i < n; i++) {
        forward(f, f->held[i]);
    }
}

static bool
in_set(const nmi_addr *set, size_t n, const nmi_addr *a)
{
    for (size_t i = 0; i < n; i++) {
        if (nmi_addr_equal(&set[i], a)) {
            return true;
        }
    }
    return false;
}

static bool
partitioned(nmi_fault *f, const nmi_addr *to)
{
    if (f->npa == 0 || f->npb == 0) {
        return false;
    }
    nmi_addr self;
    if (nmi_port_local_addr(f->inner, &self) != NM_OK) {
        return false;
    }
    return (in_set(f->pa, f->npa, &self) && in_set(f->pb, f->npb, to)) ||
           (in_set(f->pb, f->npb, &self) && in_set(f->pa, f->npa, to));
}

static int
fault_send(nmi_port *p, const nmi_addr *to, const void *buf, size_t len)
{
    nmi_fault *f = (nmi_fault *)p;
    f->stats.sent++;
    bool drop = chance(f, f->cfg.drop_pct);
    bool dup = chance(f, f->cfg.dup_pct);
    if (partitioned(f, to)) {
        f->stats.partitioned++;
        return NM_OK;
    }
    if (drop) {
        f->stats.dropped++;
        return NM_OK;
    }
    int copies = dup ? 2 : 1;
    if (dup) {
        f->stats.duplicated++;
    }
    int rc = NM_OK;
    for (int c = 0; c < copies; c++) {
        fault_dgram *d = malloc(sizeof(*d) + len);
        if (d == NULL) {
            return nmi_err(NM_ENOMEM, "fault port: no memory");
        }
        d->next = NULL;
        d->to = *to;
        d->len = len;
        if (len > 0) {
            memcpy(d->data, buf, len);
        }
        if (f->cfg.delay_ticks > 0) {
            d->due = f->now + f->cfg.delay_ticks;
            if (f->dtail != NULL) {
                f->dtail->next = d;
            } else {
                f->dhead = d;
            }
            f->dtail = d;
        } else {
            int r = reorder_stage(f, d);
            if (rc == NM_OK) {
                rc = r;
            }
        }
    }
    return rc;
}

static int
fault_poll(nmi_port *p)
{
    return nmi_port_poll(((nmi_fault *)p)->inner);
}

static int
fault_local_addr(nmi_port *p, nmi_addr *out)
{
    return nmi_port_local_addr(((nmi_fault *)p)->inner, out);
}

static void
fault_close(nmi_port *p)
{
    nmi_fault *f = (nmi_fault *)p;
    while (f->dhead != NULL) {
        fault_dgram *d = f->dhead;
        f->dhead = d->next;
        free(d);
    }
    f->dtail = NULL;
    for (size_t i = 0; i < f->nheld; i++) {
        free(f->held[i]);
    }
    f->nheld = 0;
    nmi_port_close(f->inner);
}

static void
fault_destroy(nmi_port *p)
{
    nmi_fault *f = (nmi_fault *)p;
    nmi_port_destroy(f->inner);
    free(f->held);
    free(f->pa);
    free(f->pb);
    free(f);
}

static const nmi_port_ops fault_ops = {
    .size = sizeof(nmi_port_ops),
    .name = "fault",
    .send = fault_send,
    .poll = fault_poll,
    .local_addr = fault_local_addr,
    .close = fault_close,
    .destroy = fault_destroy,
};

static void
fault_on_inner(void *ctx, nmi_port *inner, const nmi_addr *from,
               const uint8_t *data, size_t len)
{
    (void)inner;
    nmi_port_deliver((nmi_port *)ctx, from, data, len);
}

static bool
pct_ok(double v)
{
    return v >= 0.0 && v <= 100.0; /* false for NaN too */
}

int
nmi_fault_new(nmi_port *inner, const nmi_fault_config *cfg, nmi_port **out)
{
    int rc;
    if (inner == NULL || cfg == NULL || out == NULL) {
        rc = nmi_err(NM_EINVAL, "fault port: NULL argument");
        goto fail;
    }
    if (cfg->size < sizeof(nmi_fault_config)) {
        rc = nmi_err(NM_EINVAL, "fault port: config size %zu too small",
                     cfg->size);
        goto fail;
    }
    if (!pct_ok(cfg->drop_pct) || !pct_ok(cfg->dup_pct)) {
        rc = nmi_err(NM_EINVAL, "fault port: rates must be within 0..100");
        goto fail;
    }
    if (inner->closed) {
        rc = nmi_err(NM_ECLOSED, "fault port: inner port is closed");
        goto fail;
    }
    nmi_fault *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        rc = nmi_err(NM_ENOMEM, "fault port: no memory");
        goto fail;
    }
    if (cfg->reorder_window >= 2) {
        f->held = calloc(cfg->reorder_window, sizeof(*f->held));
        if (f->held == NULL) {
            free(f);
            rc = nmi_err(NM_ENOMEM, "fault port: no memory for window");
            goto fail;
        }
    }
    nmi_port_init(&f->base, &fault_ops);
    f->inner = inner;
    f->cfg = *cfg;
    f->cfg.size = sizeof(nmi_fault_config);
    f->rng = cfg->seed;
    nmi_port_set_recv(inner, fault_on_inner, &f->base);
    *out = &f->base;
    return NM_OK;
fail:
    nmi_port_destroy(inner);
    if (out != NULL) {
        *out = NULL;
    }
    return rc;
}

nmi_fault *
nmi_fault_from_port(nmi_port *p)
{
    return p != NULL && p->ops == &fault_ops ? (nmi_fault *)p : NULL;
}

uint64_t
nmi_fault_seed(const nmi_fault *f)
{
    return f->cfg.seed;
}

uint64_t
nmi_fault_now(const nmi_fault *f)
{
    return f->now;
}

int
nmi_fault_flush(nmi_fault *f)
{
    if (f == NULL) {
        return nmi_err(NM_EINVAL, "fault flush: NULL");
    }
    if (f->base.closed) {
        return nmi_err(NM_ECLOSED, "fault flush: port is closed");
    }
    uint64_t before = f->stats.forwarded;
    release_held(f);
    return (int)(f->stats.forwarded - before);
}

int
nmi_fault_tick(nmi_fault *f)
{
    if (f == NULL) {
        return nmi_err(NM_EINVAL, "fault tick: NULL");
    }
    if (f->base.closed) {
        return nmi_err(NM_ECLOSED, "fault tick: port is closed");
    }
    uint64_t before = f->stats.forwarded;
    f->now++;
    while (f->dhead != NULL && f->dhead->due <= f->now) {
        fault_dgram *d = f->dhead;
        f->dhead = d->next;
        if (f->dhead == NULL) {
            f->dtail = NULL;
        }
        d->next = NULL;
        reorder_stage(f, d);
    }
    release_held(f);
    return (int)(f->stats.forwarded - before);
}

static int
copy_set(const nmi_addr *src, size_t n, nmi_addr **dst)
{
    *dst = NULL;
    if (n == 0) {
        return NM_OK;
    }
    *dst = malloc(n * sizeof(**dst));
    if (*dst == NULL) {
        return nmi_err(NM_ENOMEM, "fault partition: no memory");
    }
    memcpy(*dst, src, n * sizeof(**dst));
    return NM_OK;
}

int
nmi_fault_partition(nmi_fault *f, const nmi_addr *a, size_t na,
                    const nmi_addr *b, size_t nb)
{
    if (f == NULL || (a == NULL && na > 0) || (b == NULL && nb > 0)) {
        return nmi_err(NM_EINVAL, "fault partition: NULL argument");
    }
    nmi_addr *pa, *pb;
    int rc = copy_set(a, na, &pa);
    if (rc != NM_OK) {
        return rc;
    }
    rc = copy_set(b, nb, &pb);
    if (rc != NM_OK) {
        free(pa);
        return rc;
    }
    nmi_fault_heal(f);
    f->pa = pa;
    f->npa = na;
    f->pb = pb;
    f->npb = nb;
    return NM_OK;
}

void
nmi_fault_heal(nmi_fault *f)
{
    if (f == NULL) {
        return;
    }
    free(f->pa);
    free(f->pb);
    f->pa = f->pb = NULL;
    f->npa = f->npb = 0;
}

void
nmi_fault_stats_get(const nmi_fault *f, nmi_fault_stats *out)
{
    if (f != NULL && out != NULL) {
        *out = f->stats;
    }
}
