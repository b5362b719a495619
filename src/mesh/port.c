/*
 * src/mesh/port.c - addresses and the generic datagram-port entry points.
 */
#include "mesh/port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static int
parse_port(const char *s, uint16_t *out)
{
    if (*s == '\0') {
        return nmi_err(NM_EINVAL, "address: missing port");
    }
    uint32_t v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9') {
            return nmi_err(NM_EINVAL, "address: port is not a number");
        }
        v = v * 10 + (uint32_t)(*c - '0');
        if (v > 65535) {
            return nmi_err(NM_EINVAL, "address: port over 65535");
        }
    }
    *out = (uint16_t)v;
    return NM_OK;
}

int
nmi_addr_parse(nmi_addr *a, const char *s)
{
    if (a == NULL || s == NULL) {
        return nmi_err(NM_EINVAL, "address: NULL argument");
    }
    memset(a, 0, sizeof(*a));
    char host[INET6_ADDRSTRLEN];
    const char *port_s;
    size_t hlen;
    bool v6 = s[0] == '[';
    if (v6) {
        const char *close = strchr(s, ']');
        if (close == NULL) {
            return nmi_err(NM_EINVAL, "address: missing ']'");
        }
        if (close[1] != ':') {
            return nmi_err(NM_EINVAL, "address: expected ':' after ']'");
        }
        hlen = (size_t)(close - (s + 1));
        if (hlen >= sizeof(host)) {
            return nmi_err(NM_EINVAL, "address: IPv6 host too long");
        }
        memcpy(host, s + 1, hlen);
        port_s = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL) {
            return nmi_err(NM_EINVAL, "address: missing ':port'");
        }
        hlen = (size_t)(colon - s);
        if (hlen >= sizeof(host)) {
            return nmi_err(NM_EINVAL, "address: host too long");
        }
        memcpy(host, s, hlen);
        port_s = colon + 1;
    }
    host[hlen] = '\0';
    uint16_t port;
    int rc = parse_port(port_s, &port);
    if (rc != NM_OK) {
        return rc;
    }
    if (v6) {
        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&a->ss;
        if (inet_pton(AF_INET6, host, &sa->sin6_addr) != 1) {
            memset(a, 0, sizeof(*a));
            return nmi_err(NM_EINVAL, "address: bad IPv6 literal '%s'", host);
        }
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(port);
    } else {
        struct sockaddr_in *sa = (struct sockaddr_in *)&a->ss;
        if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
            memset(a, 0, sizeof(*a));
            return nmi_err(NM_EINVAL, "address: bad IPv4 literal '%s'", host);
        }
        sa->sin_family = AF_INET;
        sa->sin_port = htons(port);
    }
    return NM_OK;
}

int
nmi_addr_format(const nmi_addr *a, char *buf, size_t cap)
{
    if (a == NULL || buf == NULL) {
        return nmi_err(NM_EINVAL, "address: NULL argument");
    }
    char host[INET6_ADDRSTRLEN];
    int n;
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sa = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &sa->sin_addr, host, sizeof(host));
        n = snprintf(buf, cap, "%s:%u", host, (unsigned)ntohs(sa->sin_port));
    } else if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sa = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &sa->sin6_addr, host, sizeof(host));
        n = snprintf(buf, cap, "[%s]:%u", host,
                     (unsigned)ntohs(sa->sin6_port));
    } else {
        return nmi_err(NM_EINVAL, "address: family %d is not IPv4/IPv6",
                       (int)a->ss.ss_family);
    }
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0) {
            buf[0] = '\0';
        }
        return nmi_err(NM_ERANGE, "address: buffer of %zu bytes too small",
                       cap);
    }
    return n;
}

void
nmi_addr_ipv4(nmi_addr *a, uint32_t ip, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    struct sockaddr_in *sa = (struct sockaddr_in *)&a->ss;
    sa->sin_family = AF_INET;
    sa->sin_addr.s_addr = htonl(ip);
    sa->sin_port = htons(port);
}

bool
nmi_addr_equal(const nmi_addr *a, const nmi_addr *b)
{
    if (a->ss.ss_family != b->ss.ss_family) {
        return false;
    }
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)&a->ss;
        const struct sockaddr_in *y = (const struct sockaddr_in *)&b->ss;
        return x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)&a->ss;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)&b->ss;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}

uint16_t
nmi_addr_port(const nmi_addr *a)
{
    if (a->ss.ss_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    }
    if (a->ss.ss_family == AF_INET6) {
        return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    }
    return 0;
}

void
nmi_port_init(nmi_port *p, const nmi_port_ops *ops)
{
    p->ops = ops;
    p->on_recv = NULL;
    p->ctx = NULL;
    p->closed = false;
}

void
nmi_port_set_recv(nmi_port *p, nmi_port_recv_fn fn, void *ctx)
{
    if (p != NULL) {
        p->on_recv = fn;
        p->ctx = ctx;
    }
}

int
nmi_port_send(nmi_port *p, const nmi_addr *to, const void *buf, size_t len)
{
    if (p == NULL || to == NULL) {
        return nmi_err(NM_EINVAL, "port send: NULL port or address");
    }
    if (buf == NULL && len > 0) {
        return nmi_err(NM_EINVAL, "port send: NULL buffer of %zu bytes", len);
    }
    if (to->ss.ss_family != AF_INET && to->ss.ss_family != AF_INET6) {
        return nmi_err(NM_EINVAL, "port send: address is not IPv4/IPv6");
    }
    if (len > NMI_PORT_MAX_DATAGRAM) {
        return nmi_err(NM_ETOOBIG, "port send: %zu bytes over the %u limit",
                       len, NMI_PORT_MAX_DATAGRAM);
    }
    if (p->closed) {
        return nmi_err(NM_ECLOSED, "port send: port is closed");
    }
    return p->ops->send(p, to, buf, len);
}

int
nmi_port_poll(nmi_port *p)
{
    if (p == NULL) {
        return nmi_err(NM_EINVAL, "port poll: NULL port");
    }
    if (p->closed) {
        return nmi_err(NM_ECLOSED, "port poll: port is closed");
    }
    return p->ops->poll != NULL ? p->ops->poll(p) : 0;
}

int
nmi_port_local_addr(nmi_port *p, nmi_addr *out)
{
    if (p == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "port local_addr: NULL argument");
    }
    if (p->closed) {
        return nmi_err(NM_ECLOSED, "port local_addr: port is closed");
    }
    return p->ops->local_addr(p, out);
}

void
nmi_port_close(nmi_port *p)
{
    if (p == NULL || p->closed) {
        return;
    }
    p->closed = true;
    p->on_recv = NULL;
    p->ctx = NULL;
    if (p->ops->close != NULL) {
        p->ops->close(p);
    }
}

void
nmi_port_destroy(nmi_port *p)
{
    if (p == NULL) {
        return;
    }
    nmi_port_close(p);
    p->ops->destroy(p);
}

void
nmi_port_deliver(nmi_port *p, const nmi_addr *from, const uint8_t *data,
                 size_t len)
{
    if (!p->closed && p->on_recv != NULL) {
        p->on_recv(p->ctx, p, from, data, len);
    }
}
