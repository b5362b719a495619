/*
 * src/core/evfd.h - readiness eventfds (Linux): the pollable fd every
 * netmesh stream (bus subscriptions, RedEX tails) hands to applications.
 * Signal makes it readable; drain resets it. Both retry on EINTR and
 * ignore EAGAIN (the fds are non-blocking).
 */
#ifndef NMI_EVFD_H
#define NMI_EVFD_H

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

static inline void
nmi_evfd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t r;
    do {
        r = write(fd, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
}

static inline void
nmi_evfd_drain(int fd)
{
    uint64_t v;
    ssize_t r;
    do {
        r = read(fd, &v, sizeof(v));
    } while (r < 0 && errno == EINTR);
}

#endif
