/*
 * src/bus/sub.c - live subscriptions.
 *
 * The dispatcher hands every batch to every subscription: the batch is
 * retained once per subscription and queued (no per-event copy). The
 * queue is bounded in events (cfg.sub_queue_capacity); a batch that does
 * not fit is not queued and its events are counted in `missed`, so a slow
 * reader never holds the bus back and never loses data silently.
 *
 * A subscription only yields events whose per-shard seq is >= the shard's
 * claim position when it was created: exactly "accepted after creation".
 *
 * Readiness is an eventfd: written when a batch is queued or the stream
 * ends, drained by the reader when it finds the queue empty; so it polls
 * readable exactly while nm_sub_next(.., 0) has something to return.
 */
#define _GNU_SOURCE
#include "bus/bus_impl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <jansson.h>

struct nm_sub {
    nm_bus *bus;
    nm_filter *filter;
    uint64_t *start; /* per-shard first seq to deliver */
    int fd;

    pthread_mutex_t mu;
    const nm_batch **q; /* ring of queued batches */
    size_t qcap, qhead, qlen;
    uint64_t queued_events;
    bool ended;     /* bus shut down: deliver what is queued, then end */
    bool cancelled; /* closed by the user: end now */
    _Atomic uint64_t missed;

    /* Reader state (one reader at a time). */
    const nm_batch *cur;
    size_t cur_i;
};

static void
fd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t r;
    do {
        r = write(fd, &one, sizeof(one));
    } while (r < 0 && errno == EINTR);
}

static void
fd_drain(int fd)
{
    uint64_t v;
    ssize_t r;
    do {
        r = read(fd, &v, sizeof(v));
    } while (r < 0 && errno == EINTR);
}

static int
sublist_add(nmi_sublist *l, nm_sub *s)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        nm_sub **nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv) {
            return NM_ENOMEM;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = s;
    return NM_OK;
}

static void
sublist_remove(nmi_sublist *l, nm_sub *s)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i] == s) {
            l->v[i] = l->v[--l->n];
            return;
        }
    }
}

int
nm_bus_subscribe(nm_bus *bus, const nm_filter *filter, nm_sub **out)
{
    if (!bus || !out) {
        return nmi_err(NM_EINVAL, "bus and out must not be NULL");
    }
    *out = NULL;
    nm_sub *s = calloc(1, sizeof(*s));
    if (!s) {
        return nmi_err(NM_ENOMEM, "subscription");
    }
    s->start = calloc(bus->nshards, sizeof(uint64_t));
    s->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (filter) {
        s->filter = nmi_filter_clone(filter);
    }
    if (!s->start || s->fd < 0 || (filter && !s->filter)) {
        if (s->fd >= 0) {
            close(s->fd);
        }
        nm_filter_free(s->filter);
        free(s->start);
        free(s);
        return nmi_err(NM_ENOMEM, "subscription");
    }
    pthread_mutex_init(&s->mu, NULL);
    s->bus = bus;

    pthread_mutex_lock(&bus->subs_mu);
    if (atomic_load(&bus->state) != NMI_BUS_OPEN) {
        pthread_mutex_unlock(&bus->subs_mu);
        close(s->fd);
        nm_filter_free(s->filter);
        free(s->start);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return nmi_err(NM_ESHUTDOWN, "the bus is shut down");
    }
    /* Registered before the start positions are read: a batch holding an
     * event claimed after this point cannot be dispatched before we are
     * on the list (the dispatcher delivers under subs_mu). */
    for (uint32_t i = 0; i < bus->nshards; i++) {
        s->start[i] = atomic_load(&bus->shards[i].tail) & ~NMI_TAIL_CLOSED;
    }
    int rc = sublist_add(&bus->subs, s);
    if (rc == NM_OK) {
        nmi_bus_ref(bus);
    }
    pthread_mutex_unlock(&bus->subs_mu);
    if (rc) {
        close(s->fd);
        nm_filter_free(s->filter);
        free(s->start);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return nmi_err(NM_ENOMEM, "subscription list");
    }
    *out = s;
    return NM_OK;
}

static int
q_push(nm_sub *s, const nm_batch *b)
{
    if (s->qlen == s->qcap) {
        size_t nc = s->qcap ? s->qcap * 2 : 16;
        const nm_batch **nq = malloc(nc * sizeof(*nq));
        if (!nq) {
            return NM_ENOMEM;
        }
        for (size_t i = 0; i < s->qlen; i++) {
            nq[i] = s->q[(s->qhead + i) % s->qcap];
        }
        free(s->q);
        s->q = nq;
        s->qcap = nc;
        s->qhead = 0;
    }
    s->q[(s->qhead + s->qlen) % s->qcap] = b;
    s->qlen++;
    return NM_OK;
}

void
nmi_subs_deliver(nm_bus *bus, const nmi_batch *b)
{
    const nm_batch *pb = &b->pub;
    pthread_mutex_lock(&bus->subs_mu);
    for (size_t i = 0; i < bus->subs.n; i++) {
        nm_sub *s = bus->subs.v[i];
        uint64_t first = s->start[pb->shard];
        uint64_t last = pb->events[pb->count - 1].seq;
        if (last < first) {
            continue; /* all of it was accepted before the subscription */
        }
        /* Events of this batch the subscription is owed. */
        uint64_t owed = 0;
        for (size_t k = pb->count; k > 0 && pb->events[k - 1].seq >= first;
             k--) {
            owed++;
        }
        pthread_mutex_lock(&s->mu);
        bool signal = false;
        if (s->cancelled || s->ended) {
            /* nothing: the stream is over */
        } else if (s->queued_events + owed > s->bus->cfg.sub_queue_capacity ||
                   q_push(s, pb) != NM_OK) {
            atomic_fetch_add_explicit(&s->missed, owed, memory_order_relaxed);
        } else {
            nm_batch_retain(pb);
            s->queued_events += owed;
            signal = true;
        }
        pthread_mutex_unlock(&s->mu);
        if (signal) {
            fd_signal(s->fd);
        }
    }
    pthread_mutex_unlock(&bus->subs_mu);
}

void
nmi_subs_end_all(nm_bus *bus)
{
    pthread_mutex_lock(&bus->subs_mu);
    for (size_t i = 0; i < bus->subs.n; i++) {
        nm_sub *s = bus->subs.v[i];
        pthread_mutex_lock(&s->mu);
        s->ended = true;
        pthread_mutex_unlock(&s->mu);
        fd_signal(s->fd);
    }
    pthread_mutex_unlock(&bus->subs_mu);
}

/* Next deliverable event, or NULL; caller holds s->mu. */
static const nm_batch_event *
take(nm_sub *s, const nm_batch **from)
{
    for (;;) {
        if (s->cur) {
            while (s->cur_i < s->cur->count) {
                const nm_batch_event *e = &s->cur->events[s->cur_i++];
                if (e->seq < s->start[s->cur->shard]) {
                    continue;
                }
                s->queued_events--;
                if (s->filter &&
                    !nm_filter_match(s->filter, e->data, e->len)) {
                    continue;
                }
                *from = s->cur;
                return e;
            }
            nm_batch_release(s->cur);
            s->cur = NULL;
        }
        if (s->qlen == 0) {
            return NULL;
        }
        s->cur = s->q[s->qhead];
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
        s->cur_i = 0;
    }
}

static int
wait_fd(int fd, uint64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int left = nmi_ms_left(deadline);
    if (left == 0) {
        return NM_ETIMEDOUT;
    }
    int r = poll(&p, 1, left);
    if (r < 0 && errno != EINTR) {
        return nmi_err(NM_EIO, "poll: %s", strerror(errno));
    }
    return NM_OK;
}

int
nm_sub_next(nm_sub *s, nm_event *ev, int timeout_ms)
{
    if (!s || !ev) {
        return nmi_err(NM_EINVAL, "sub and ev must not be NULL");
    }
    uint64_t deadline = nmi_deadline_ms(timeout_ms);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->cancelled) {
            pthread_mutex_unlock(&s->mu);
            return nmi_err(NM_ECLOSED, "subscription closed");
        }
        const nm_batch *b;
        const nm_batch_event *e = take(s, &b);
        if (e) {
            ev->data = e->data;
            ev->len = e->len;
            ev->seq = e->seq;
            ev->timestamp = e->timestamp;
            ev->shard = b->shard;
            snprintf(ev->id, sizeof(ev->id), "%llu",
                     (unsigned long long)e->seq);
            pthread_mutex_unlock(&s->mu);
            return NM_OK;
        }
        if (s->ended) {
            pthread_mutex_unlock(&s->mu);
            return nmi_err(NM_ECLOSED, "end of stream: the bus shut down");
        }
        /* Empty: reset readiness, then re-check before sleeping so a
         * batch queued in between is not missed. */
        fd_drain(s->fd);
        if (s->qlen > 0) {
            fd_signal(s->fd);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        int rc = wait_fd(s->fd, deadline);
        pthread_mutex_lock(&s->mu);
        if (rc) {
            /* Time is up, but take anything that arrived meanwhile. */
            if (s->qlen > 0 || s->ended || s->cancelled) {
                continue;
            }
            pthread_mutex_unlock(&s->mu);
            return rc == NM_ETIMEDOUT
                       ? nmi_err(NM_ETIMEDOUT, "no event within %d ms",
                                 timeout_ms)
                       : rc;
        }
    }
}

int
nm_sub_next_json(nm_sub *s, nm_event *ev, json_t **value, int timeout_ms)
{
    if (!value) {
        return nmi_err(NM_EINVAL, "value must not be NULL");
    }
    *value = NULL;
    int rc = nm_sub_next(s, ev, timeout_ms);
    if (rc) {
        return rc;
    }
    json_error_t jerr;
    *value =
        json_loadb((const char *)ev->data, ev->len, JSON_DECODE_ANY, &jerr);
    if (!*value) {
        return nmi_err(NM_EDECODE, "event %u:%llu is not JSON: %s", ev->shard,
                       (unsigned long long)ev->seq, jerr.text);
    }
    return NM_OK;
}

int
nm_sub_fd(const nm_sub *s)
{
    return s ? s->fd : -1;
}

uint64_t
nm_sub_missed(const nm_sub *s)
{
    return s ? atomic_load(&((nm_sub *)s)->missed) : 0;
}

void
nm_sub_cancel(nm_sub *s)
{
    if (!s) {
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->cancelled = true;
    pthread_mutex_unlock(&s->mu);
    fd_signal(s->fd);
}

void
nm_sub_close(nm_sub *s)
{
    if (!s) {
        return;
    }
    nm_sub_cancel(s);
    nm_bus *bus = s->bus;
    pthread_mutex_lock(&bus->subs_mu);
    sublist_remove(&bus->subs, s);
    pthread_mutex_unlock(&bus->subs_mu);
    if (s->cur) {
        nm_batch_release(s->cur);
    }
    for (size_t i = 0; i < s->qlen; i++) {
        nm_batch_release(s->q[(s->qhead + i) % s->qcap]);
    }
    free(s->q);
    close(s->fd);
    nm_filter_free(s->filter);
    free(s->start);
    pthread_mutex_destroy(&s->mu);
    free(s);
    nmi_bus_unref(bus);
}
