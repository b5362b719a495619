/*
 * src/mesh/port_udp.c - a datagram port on a real UDP socket (libuv).
 *
 * The port runs on the owner's loop: datagrams are delivered from the
 * loop's recv callback, so nmi_port_poll does nothing (returns 0) and the
 * owner runs the loop. Sends copy the bytes and complete asynchronously;
 * a send error reported later is counted, not returned. Closing is
 * asynchronous in libuv: nmi_port_destroy frees the port once the handle's
 * close callback ran, so run the loop after destroying (uv_run with
 * UV_RUN_NOWAIT is enough) or the memory is only released then.
 */
#define _GNU_SOURCE /* pthread_rwlock_t in <uv.h> under -std=c11 */
#include "mesh/port.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct udp_port {
    nmi_port base;
    uv_udp_t h;
    bool handle_closed; /* close callback ran */
    bool free_on_close; /* destroy called before it ran */
    uint64_t send_errors;
    uint8_t rbuf[65536];
} udp_port;

typedef struct udp_req {
    uv_udp_send_t req;
    udp_port *port;
    uint8_t data[];
} udp_req;

static void
udp_on_sent(uv_udp_send_t *req, int status)
{
    udp_req *r = (udp_req *)req;
    if (status != 0 && status != UV_ECANCELED) {
        r->port->send_errors++;
    }
    free(r);
}

static int
udp_send(nmi_port *p, const nmi_addr *to, const void *buf, size_t len)
{
    udp_port *u = (udp_port *)p;
    udp_req *r = malloc(sizeof(*r) + len);
    if (r == NULL) {
        return nmi_err(NM_ENOMEM, "udp port: no memory for %zu bytes", len);
    }
    r->port = u;
    if (len > 0) {
        memcpy(r->data, buf, len);
    }
    uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)len);
    int rc = uv_udp_send(&r->req, &u->h, &b, 1,
                         (const struct sockaddr *)&to->ss, udp_on_sent);
    if (rc != 0) {
        free(r);
        return nmi_err(NM_EIO, "udp port: send: %s", uv_strerror(rc));
    }
    return NM_OK;
}

static void
udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    udp_port *u = h->data;
    *buf = uv_buf_init((char *)u->rbuf, sizeof(u->rbuf));
}

static void
udp_on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
            const struct sockaddr *addr, unsigned flags)
{
    udp_port *u = h->data;
    if (nread < 0 || addr == NULL || (flags & UV_UDP_PARTIAL)) {
        return; /* error, "nothing more", or truncated: dropped */
    }
    nmi_addr from;
    memset(&from, 0, sizeof(from));
    size_t alen = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    memcpy(&from.ss, addr, alen);
    nmi_port_deliver(&u->base, &from, (const uint8_t *)buf->base,
                     (size_t)nread);
}

static int
udp_local_addr(nmi_port *p, nmi_addr *out)
{
    udp_port *u = (udp_port *)p;
    memset(out, 0, sizeof(*out));
    int len = (int)sizeof(out->ss);
    int rc = uv_udp_getsockname(&u->h, (struct sockaddr *)&out->ss, &len);
    if (rc != 0) {
        return nmi_err(NM_EIO, "udp port: getsockname: %s", uv_strerror(rc));
    }
    return NM_OK;
}

static void
udp_on_closed(uv_handle_t *h)
{
    udp_port *u = h->data;
    u->handle_closed = true;
    if (u->free_on_close) {
        free(u);
    }
}

static void
udp_close(nmi_port *p)
{
    udp_port *u = (udp_port *)p;
    uv_udp_recv_stop(&u->h);
    uv_close((uv_handle_t *)&u->h, udp_on_closed);
}

static void
udp_destroy(nmi_port *p)
{
    udp_port *u = (udp_port *)p;
    if (u->handle_closed) {
        free(u);
    } else {
        u->free_on_close = true;
    }
}

static const nmi_port_ops udp_ops = {
    .size = sizeof(nmi_port_ops),
    .name = "udp",
    .send = udp_send,
    .poll = NULL,
    .local_addr = udp_local_addr,
    .close = udp_close,
    .destroy = udp_destroy,
};

int
nmi_udp_port_open(struct uv_loop_s *loop, const nmi_addr *bind, nmi_port **out)
{
    if (loop == NULL || bind == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "udp port: NULL argument");
    }
    if (bind->ss.ss_family != AF_INET && bind->ss.ss_family != AF_INET6) {
        return nmi_err(NM_EINVAL, "udp port: address is not IPv4/IPv6");
    }
    udp_port *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return nmi_err(NM_ENOMEM, "udp port: no memory");
    }
    nmi_port_init(&u->base, &udp_ops);
    int rc = uv_udp_init(loop, &u->h);
    if (rc != 0) {
        free(u);
        return nmi_err(NM_EIO, "udp port: init: %s", uv_strerror(rc));
    }
    u->h.data = u;
    rc = uv_udp_bind(&u->h, (const struct sockaddr *)&bind->ss, 0);
    if (rc == 0) {
        rc = uv_udp_recv_start(&u->h, udp_alloc, udp_on_recv);
    }
    if (rc != 0) {
        char s[NMI_ADDR_STRLEN];
        nmi_addr_format(bind, s, sizeof(s));
        u->free_on_close = true;
        uv_close((uv_handle_t *)&u->h, udp_on_closed);
        return nmi_err(NM_EIO, "udp port: bind %s: %s", s, uv_strerror(rc));
    }
    *out = &u->base;
    return NM_OK;
}
