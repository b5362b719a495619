/*
 * src/mesh/port_udp.c - a datagram port on a real UDP socket (libuv).
 *
 * The port runs on the owner's loop: datagrams are delivered from the
 * loop's recv callback, so nmi_port_poll does nothing (returns 0) and the
 * owner runs the loop. Everything here runs on that loop's thread.
 *
 * Send path. nmi_port_send tries uv_udp_try_send first: one sendmsg, no
 * allocation, no copy. Only when that would block (UV_EAGAIN), or libuv
 * still holds queued sends (sending directly would overtake them), the
 * bytes are copied into a request and queued with uv_udp_send; libuv
 * drains its queue with sendmmsg when the socket is writable. A queued
 * send stays counted by libuv until the loop processes its completion,
 * so after one fallback every send of the same loop turn queues too,
 * which keeps the datagrams in order. Kernel refusals are counted (stats),
 * not returned, on both paths.
 *
 * Receive path. The port owns one buffer of recv_slots * 64 KiB and
 * hands all of it to libuv on every alloc. With UV_UDP_RECVMMSG libuv
 * (1.40+) cuts it into 64 KiB slots and reads up to 20 datagrams per
 * recvmmsg; each arrives with UV_UDP_MMSG_CHUNK (the buffer must not be
 * freed then), and a final call with UV_UDP_MMSG_FREE, nread 0 and addr
 * NULL says the batch is over and the buffer may be freed. Because the
 * buffer belongs to the port for its whole life there is never anything
 * to free in the callback, which also makes the cases where libuv skips
 * that final call (the callback stopped or closed the handle) harmless.
 * nread 0 with addr NULL and no flags means "nothing more to read".
 *
 * Closing is asynchronous in libuv: nmi_port_destroy frees the port once
 * the handle's close callback ran, so run the loop after destroying
 * (uv_run with UV_RUN_NOWAIT is enough) or the memory is only released
 * then. Queued sends are cancelled by the close (not counted as errors).
 */
#define _GNU_SOURCE /* pthread_rwlock_t in <uv.h> under -std=c11 */
#include "mesh/port.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct udp_port {
    nmi_port base;
    uv_udp_t h;
    bool handle_closed; /* close callback ran */
    bool free_on_close; /* destroy called before it ran */
    bool recvmmsg;      /* libuv reads with recvmmsg */
    uint32_t inject_eagain;
    nmi_udp_stats st; /* counters; the live fields are filled on read */
    uint8_t *rbuf;    /* recv_slots * NMI_UDP_SLOT_BYTES */
    size_t rbuf_len;
} udp_port;

/* A queued send: the request and a copy of the datagram. */
typedef struct udp_req {
    uv_udp_send_t req;
    udp_port *port;
    uint8_t data[];
} udp_req;

static const nmi_port_ops udp_ops;

/* udp_free - release a port whose handle is closed. */
static void
udp_free(udp_port *u)
{
    free(u->rbuf);
    free(u);
}

/* udp_count_error - record a failed send (status is a libuv code). */
static void
udp_count_error(udp_port *u, int status)
{
    u->st.send_errors++;
    u->st.last_send_error = status;
}

/* udp_on_sent - completion of a queued send: count it, free the copy. */
static void
udp_on_sent(uv_udp_send_t *req, int status)
{
    udp_req *r = (udp_req *)req;
    if (status == 0) {
        r->port->st.sent++;
    } else if (status != UV_ECANCELED) {
        udp_count_error(r->port, status);
    }
    free(r);
}

/* udp_send_queued - the slow path: copy the bytes and queue them with
 * uv_udp_send (libuv keeps the order of everything queued). */
static int
udp_send_queued(udp_port *u, const struct sockaddr *to, const void *buf,
                size_t len)
{
    udp_req *r = malloc(sizeof(*r) + len);
    if (r == NULL) {
        return nmi_err(NM_ENOMEM, "udp port: no memory for %zu bytes", len);
    }
    r->port = u;
    if (len > 0) {
        memcpy(r->data, buf, len);
    }
    u->st.sent_queued++;
    uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)len);
    int rc = uv_udp_send(&r->req, &u->h, &b, 1, to, udp_on_sent);
    if (rc != 0) {
        free(r);
        udp_count_error(u, rc);
        return nmi_err(NM_EIO, "udp port: send: %s", uv_strerror(rc));
    }
    return NM_OK;
}

/* udp_send - ops->send: direct uv_udp_try_send, queued fallback. */
static int
udp_send(nmi_port *p, const nmi_addr *to, const void *buf, size_t len)
{
    udp_port *u = (udp_port *)p;
    const struct sockaddr *sa = (const struct sockaddr *)&to->ss;
    if (uv_udp_get_send_queue_count(&u->h) == 0) {
        int rc;
        if (u->inject_eagain > 0) {
            u->inject_eagain--;
            rc = UV_EAGAIN;
        } else {
            /* libuv only reads the bytes: the cast drops const safely. */
            uv_buf_t b = uv_buf_init((char *)(uintptr_t)buf, (unsigned)len);
            rc = uv_udp_try_send(&u->h, &b, 1, sa);
        }
        if (rc >= 0) {
            u->st.sent++;
            return NM_OK;
        }
        if (rc != UV_EAGAIN) {
            udp_count_error(u, rc); /* refused: lost, like on the wire */
            return NM_OK;
        }
    }
    return udp_send_queued(u, sa, buf, len);
}

/* udp_alloc - hand libuv the port's whole receive buffer every time. */
static void
udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    udp_port *u = h->data;
    *buf = uv_buf_init((char *)u->rbuf, (unsigned)u->rbuf_len);
}

/* udp_on_recv - one libuv read event; see the file comment for flags. */
static void
udp_on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
            const struct sockaddr *addr, unsigned flags)
{
    udp_port *u = h->data;
    if (flags & UV_UDP_MMSG_FREE) {
        u->st.recv_batches++; /* end of a batch; the buffer is ours */
        return;
    }
    if (nread < 0) {
        u->st.recv_errors++;
        return;
    }
    if (addr == NULL) {
        return; /* nread 0: nothing more to read now */
    }
    if (flags & UV_UDP_PARTIAL) {
        u->st.recv_truncated++;
        return;
    }
    u->st.received++;
    if (flags & UV_UDP_MMSG_CHUNK) {
        u->st.received_mmsg++;
    }
    nmi_addr from;
    memset(&from, 0, sizeof(from));
    size_t alen = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    memcpy(&from.ss, addr, alen);
    nmi_port_deliver(&u->base, &from, (const uint8_t *)buf->base,
                     (size_t)nread);
}

/* udp_local_addr - ops->local_addr: getsockname. */
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

/* udp_on_closed - the handle's close callback. */
static void
udp_on_closed(uv_handle_t *h)
{
    udp_port *u = h->data;
    u->handle_closed = true;
    if (u->free_on_close) {
        udp_free(u);
    }
}

/* udp_close - ops->close: stop reading, close the handle (async). */
static void
udp_close(nmi_port *p)
{
    udp_port *u = (udp_port *)p;
    uv_udp_recv_stop(&u->h);
    uv_close((uv_handle_t *)&u->h, udp_on_closed);
}

/* udp_destroy - ops->destroy: free now, or when the close callback runs. */
static void
udp_destroy(nmi_port *p)
{
    udp_port *u = (udp_port *)p;
    if (u->handle_closed) {
        udp_free(u);
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

/* udp_from - the udp_port behind p, or NULL for NULL / other ports. */
static udp_port *
udp_from(nmi_port *p)
{
    return p != NULL && p->ops == &udp_ops ? (udp_port *)p : NULL;
}

/* udp_set_buf - set SO_SNDBUF (snd) or SO_RCVBUF to `want` bytes. When
 * the kernel capped it (Linux reports twice the effective size), retry
 * with the *FORCE option, which needs CAP_NET_ADMIN; without it the capped
 * size stays. Errors: NM_EIO. */
static int
udp_set_buf(udp_port *u, bool snd, int want)
{
    uv_handle_t *h = (uv_handle_t *)&u->h;
    const char *what = snd ? "SO_SNDBUF" : "SO_RCVBUF";
    int v = want;
    int rc = snd ? uv_send_buffer_size(h, &v) : uv_recv_buffer_size(h, &v);
    if (rc != 0) {
        return nmi_err(NM_EIO, "udp port: %s %d: %s", what, want,
                       uv_strerror(rc));
    }
#if defined(__linux__) && defined(SO_RCVBUFFORCE)
    v = 0; /* 0 = read the current value */
    rc = snd ? uv_send_buffer_size(h, &v) : uv_recv_buffer_size(h, &v);
    if (rc == 0 && v / 2 < want) {
        uv_os_fd_t fd;
        if (uv_fileno(h, &fd) == 0) {
            /* EPERM without CAP_NET_ADMIN: keep the capped size. */
            (void)setsockopt(fd, SOL_SOCKET,
                             snd ? SO_SNDBUFFORCE : SO_RCVBUFFORCE, &want,
                             sizeof(want));
        }
    }
#endif
    return NM_OK;
}

void
nmi_udp_opts_init(nmi_udp_opts *o)
{
    if (o == NULL) {
        return;
    }
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
    o->recv_slots = NMI_UDP_MAX_SLOTS;
}

int
nmi_udp_port_open2(struct uv_loop_s *loop, const nmi_addr *bind,
                   const nmi_udp_opts *opts, nmi_port **out)
{
    if (out != NULL) {
        *out = NULL;
    }
    if (loop == NULL || bind == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "udp port: NULL argument");
    }
    int family = bind->ss.ss_family;
    if (family != AF_INET && family != AF_INET6) {
        return nmi_err(NM_EINVAL, "udp port: address is not IPv4/IPv6");
    }
    nmi_udp_opts def;
    if (opts == NULL) {
        nmi_udp_opts_init(&def);
        opts = &def;
    }
    if (opts->size < sizeof(nmi_udp_opts)) {
        return nmi_err(NM_EINVAL, "udp port: opts.size %zu, want %zu",
                       opts->size, sizeof(nmi_udp_opts));
    }
    if (opts->sndbuf < 0 || opts->rcvbuf < 0) {
        return nmi_err(NM_EINVAL, "udp port: negative socket buffer size");
    }
    unsigned slots = opts->recv_slots ? opts->recv_slots : NMI_UDP_MAX_SLOTS;
    if (slots > NMI_UDP_MAX_SLOTS) {
        return nmi_err(NM_EINVAL, "udp port: recv_slots %u over %u",
                       opts->recv_slots, NMI_UDP_MAX_SLOTS);
    }
    udp_port *u = calloc(1, sizeof(*u));
    if (u == NULL) {
        return nmi_err(NM_ENOMEM, "udp port: no memory");
    }
    u->rbuf_len = (size_t)slots * NMI_UDP_SLOT_BYTES;
    u->rbuf = malloc(u->rbuf_len);
    if (u->rbuf == NULL) {
        free(u);
        return nmi_err(NM_ENOMEM, "udp port: no memory for %zu bytes",
                       (size_t)slots * NMI_UDP_SLOT_BYTES);
    }
    nmi_port_init(&u->base, &udp_ops);
    /* With a family the socket exists now, so options can be set before
     * bind; UV_UDP_RECVMMSG makes libuv use recvmmsg where it can. */
    unsigned flags = (unsigned)family | (slots >= 2 ? UV_UDP_RECVMMSG : 0);
    int rc = uv_udp_init_ex(loop, &u->h, flags);
    if (rc != 0) {
        udp_free(u);
        return nmi_err(NM_EIO, "udp port: init: %s", uv_strerror(rc));
    }
    u->h.data = u;
    int nrc = NM_OK;
    if (opts->sndbuf > 0) {
        nrc = udp_set_buf(u, true, opts->sndbuf);
    }
    if (nrc == NM_OK && opts->rcvbuf > 0) {
        nrc = udp_set_buf(u, false, opts->rcvbuf);
    }
    if (nrc == NM_OK) {
        rc = uv_udp_bind(&u->h, (const struct sockaddr *)&bind->ss, 0);
        if (rc == 0) {
            rc = uv_udp_recv_start(&u->h, udp_alloc, udp_on_recv);
        }
        if (rc != 0) {
            char s[NMI_ADDR_STRLEN];
            nmi_addr_format(bind, s, sizeof(s));
            nrc = nmi_err(NM_EIO, "udp port: bind %s: %s", s, uv_strerror(rc));
        }
    }
    if (nrc != NM_OK) {
        u->free_on_close = true;
        uv_close((uv_handle_t *)&u->h, udp_on_closed);
        return nrc;
    }
    u->recvmmsg = uv_udp_using_recvmmsg(&u->h) == 1;
    *out = &u->base;
    return NM_OK;
}

int
nmi_udp_port_open(struct uv_loop_s *loop, const nmi_addr *bind, nmi_port **out)
{
    return nmi_udp_port_open2(loop, bind, NULL, out);
}

int
nmi_udp_port_stats(nmi_port *p, nmi_udp_stats *out)
{
    udp_port *u = udp_from(p);
    if (u == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "udp port stats: NULL or not a UDP port");
    }
    *out = u->st;
    out->recvmmsg = u->recvmmsg;
    out->queued_now = 0;
    out->queued_bytes = 0;
    out->sndbuf = 0;
    out->rcvbuf = 0;
    if (!u->base.closed) {
        out->queued_now = uv_udp_get_send_queue_count(&u->h);
        out->queued_bytes = uv_udp_get_send_queue_size(&u->h);
        int v = 0;
        if (uv_send_buffer_size((uv_handle_t *)&u->h, &v) == 0) {
            out->sndbuf = v;
        }
        v = 0;
        if (uv_recv_buffer_size((uv_handle_t *)&u->h, &v) == 0) {
            out->rcvbuf = v;
        }
    }
    return NM_OK;
}

int
nmi_udp_port_fd(nmi_port *p, int *fd)
{
    udp_port *u = udp_from(p);
    if (u == NULL || fd == NULL) {
        return nmi_err(NM_EINVAL, "udp port fd: NULL or not a UDP port");
    }
    if (u->base.closed) {
        return nmi_err(NM_ECLOSED, "udp port fd: port is closed");
    }
    uv_os_fd_t f;
    int rc = uv_fileno((const uv_handle_t *)&u->h, &f);
    if (rc != 0) {
        return nmi_err(NM_EIO, "udp port fd: %s", uv_strerror(rc));
    }
    *fd = f;
    return NM_OK;
}

int
nmi_udp_port_inject_eagain(nmi_port *p, uint32_t n)
{
    udp_port *u = udp_from(p);
    if (u == NULL) {
        return nmi_err(NM_EINVAL, "udp port: NULL or not a UDP port");
    }
    u->inject_eagain = n;
    return NM_OK;
}
