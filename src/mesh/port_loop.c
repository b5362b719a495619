/*
 * src/mesh/port_loop.c - the in-process loopback hub.
 *
 * Each port has the synthetic address 127.0.0.1:<n>. A send copies the
 * datagram onto the destination port's FIFO queue; nothing is delivered
 * until that port is polled (nmi_port_poll or nmi_loop_hub_run). A poll
 * delivers only what was queued when it started, so a callback that
 * replies to itself cannot loop forever inside one poll.
 */
#include "mesh/port.h"

#include <stdlib.h>
#include <string.h>

#define LOOP_IP 0x7f000001u /* 127.0.0.1 */

typedef struct loop_dgram {
    struct loop_dgram *next;
    nmi_addr from;
    size_t len;
    uint8_t data[];
} loop_dgram;

typedef struct loop_port {
    nmi_port base;
    nmi_loop_hub *hub; /* NULL once closed */
    uint16_t n;
    loop_dgram *head, *tail;
    size_t queued;
} loop_port;

struct nmi_loop_hub {
    loop_port **ports; /* attach order */
    size_t count, cap;
    uint16_t next_n;
    size_t queued; /* over all ports */
    nmi_loop_stats stats;
};

static loop_port *
hub_find(nmi_loop_hub *h, uint16_t n)
{
    for (size_t i = 0; i < h->count; i++) {
        if (h->ports[i]->n == n) {
            return h->ports[i];
        }
    }
    return NULL;
}

static int
loop_send(nmi_port *p, const nmi_addr *to, const void *buf, size_t len)
{
    loop_port *lp = (loop_port *)p;
    nmi_loop_hub *h = lp->hub;
    nmi_addr want;
    nmi_addr_ipv4(&want, LOOP_IP, nmi_addr_port(to));
    loop_port *dst =
        nmi_addr_equal(&want, to) ? hub_find(h, nmi_addr_port(to)) : NULL;
    h->stats.sent++;
    if (dst == NULL) {
        h->stats.undeliverable++; /* like UDP: silently lost */
        return NM_OK;
    }
    loop_dgram *d = malloc(sizeof(*d) + len);
    if (d == NULL) {
        return nmi_err(NM_ENOMEM, "loop port: no memory for %zu bytes", len);
    }
    d->next = NULL;
    nmi_addr_ipv4(&d->from, LOOP_IP, lp->n);
    d->len = len;
    if (len > 0) {
        memcpy(d->data, buf, len);
    }
    if (dst->tail != NULL) {
        dst->tail->next = d;
    } else {
        dst->head = d;
    }
    dst->tail = d;
    dst->queued++;
    h->queued++;
    return NM_OK;
}

static int
loop_poll(nmi_port *p)
{
    loop_port *lp = (loop_port *)p;
    size_t todo = lp->queued;
    int delivered = 0;
    while (todo-- > 0 && !p->closed && lp->head != NULL) {
        loop_dgram *d = lp->head;
        lp->head = d->next;
        if (lp->head == NULL) {
            lp->tail = NULL;
        }
        lp->queued--;
        lp->hub->queued--;
        lp->hub->stats.delivered++;
        delivered++;
        nmi_port_deliver(p, &d->from, d->data, d->len);
        free(d);
    }
    return delivered;
}

static int
loop_local_addr(nmi_port *p, nmi_addr *out)
{
    nmi_addr_ipv4(out, LOOP_IP, ((loop_port *)p)->n);
    return NM_OK;
}

static void
loop_close(nmi_port *p)
{
    loop_port *lp = (loop_port *)p;
    nmi_loop_hub *h = lp->hub;
    while (lp->head != NULL) {
        loop_dgram *d = lp->head;
        lp->head = d->next;
        free(d);
    }
    lp->tail = NULL;
    h->queued -= lp->queued;
    lp->queued = 0;
    for (size_t i = 0; i < h->count; i++) {
        if (h->ports[i] == lp) {
            memmove(&h->ports[i], &h->ports[i + 1],
                    (h->count - i - 1) * sizeof(h->ports[0]));
            h->count--;
            break;
        }
    }
    lp->hub = NULL;
}

static void
loop_destroy(nmi_port *p)
{
    free(p);
}

static const nmi_port_ops loop_ops = {
    .size = sizeof(nmi_port_ops),
    .name = "loop",
    .send = loop_send,
    .poll = loop_poll,
    .local_addr = loop_local_addr,
    .close = loop_close,
    .destroy = loop_destroy,
};

int
nmi_loop_hub_new(nmi_loop_hub **out)
{
    if (out == NULL) {
        return nmi_err(NM_EINVAL, "loop hub: NULL out");
    }
    nmi_loop_hub *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return nmi_err(NM_ENOMEM, "loop hub: no memory");
    }
    h->next_n = 1;
    *out = h;
    return NM_OK;
}

void
nmi_loop_hub_free(nmi_loop_hub *h)
{
    if (h == NULL) {
        return;
    }
    while (h->count > 0) {
        nmi_port_destroy(&h->ports[h->count - 1]->base);
    }
    free(h->ports);
    free(h);
}

int
nmi_loop_hub_attach(nmi_loop_hub *h, uint16_t n, nmi_port **out)
{
    if (h == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "loop hub attach: NULL argument");
    }
    if (n == 0) {
        uint32_t tries = 0;
        while (h->next_n == 0 || hub_find(h, h->next_n) != NULL) {
            h->next_n++;
            if (++tries > 65536) {
                return nmi_err(NM_EBUSY, "loop hub: every port number taken");
            }
        }
        n = h->next_n++;
    } else if (hub_find(h, n) != NULL) {
        return nmi_err(NM_EEXIST, "loop hub: 127.0.0.1:%u is taken",
                       (unsigned)n);
    }
    if (h->count == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 8;
        loop_port **np = realloc(h->ports, cap * sizeof(*np));
        if (np == NULL) {
            return nmi_err(NM_ENOMEM, "loop hub: no memory");
        }
        h->ports = np;
        h->cap = cap;
    }
    loop_port *lp = calloc(1, sizeof(*lp));
    if (lp == NULL) {
        return nmi_err(NM_ENOMEM, "loop hub: no memory");
    }
    nmi_port_init(&lp->base, &loop_ops);
    lp->hub = h;
    lp->n = n;
    h->ports[h->count++] = lp;
    *out = &lp->base;
    return NM_OK;
}

int
nmi_loop_hub_run(nmi_loop_hub *h, unsigned max_rounds)
{
    if (h == NULL) {
        return nmi_err(NM_EINVAL, "loop hub run: NULL hub");
    }
    int total = 0;
    for (unsigned r = 0; h->queued > 0 && (max_rounds == 0 || r < max_rounds);
         r++) {
        for (size_t i = 0; i < h->count; i++) {
            int rc = loop_poll(&h->ports[i]->base);
            total += rc;
        }
    }
    return total;
}

void
nmi_loop_hub_stats(const nmi_loop_hub *h, nmi_loop_stats *out)
{
    if (h != NULL && out != NULL) {
        *out = h->stats;
    }
}
