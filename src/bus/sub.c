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
 * A polling subscription (nm_bus_subscribe_from) is fed by its own thread
 * that pages the adapter with a cursor instead: it never misses (it waits
 * for room), works for events written by other processes (Redis,
 * JetStream), and its position can be saved with nm_sub_cursor.
 *
 * Readiness is an eventfd: written when a batch is queued or the stream
 * ends, drained by the reader when it finds the queue empty; so it polls
 * readable exactly while nm_sub_next(.., 0) has something to return.
 */
#define _GNU_SOURCE
#include "bus/bus_impl.h"
#include "core/evfd.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
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

    /* Polling subscriptions (nm_bus_subscribe_from): a thread pages the
     * adapter with the cursor and queues what it reads. */
    bool polling;
    pthread_t poller;
    bool poller_started, poller_claimed;
    pthread_cond_t cv; /* poller waits here for room or for cancel/end */
    char *cursor;      /* resume point after everything queued so far */
    const nm_filter *poll_filter; /* = filter, applied by the poll */
    char (*read_ids)[NMI_ID_MAX]; /* per shard: last id the reader took */
};

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

static int
sub_create(nm_bus *bus, const nm_filter *filter, bool polling, nm_sub **out)
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
    /* Set before the subscription is visible to the dispatcher. */
    s->polling = polling;

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
    for (uint32_t i = 0; i < bus->nshards && !polling; i++) {
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

int
nm_bus_subscribe(nm_bus *bus, const nm_filter *filter, nm_sub **out)
{
    return sub_create(bus, filter, false, out);
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
        if (s->polling) {
            continue; /* fed by its own poller */
        }
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
            nmi_evfd_signal(s->fd);
        }
    }
    pthread_mutex_unlock(&bus->subs_mu);
}

bool
nmi_subs_live(nm_bus *bus)
{
    bool live = false;
    pthread_mutex_lock(&bus->subs_mu);
    for (size_t i = 0; i < bus->subs.n && !live; i++) {
        live = !bus->subs.v[i]->polling;
    }
    pthread_mutex_unlock(&bus->subs_mu);
    return live;
}

/* Stop a polling subscription's thread (once, whoever asks first). */
static void
stop_poller(nm_sub *s)
{
    pthread_mutex_lock(&s->mu);
    bool join = s->poller_started && !s->poller_claimed;
    s->poller_claimed = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (join) {
        pthread_join(s->poller, NULL);
    }
}

void
nmi_subs_missed(nm_bus *bus, const nmi_batch *b)
{
    const nm_batch *pb = &b->pub;
    pthread_mutex_lock(&bus->subs_mu);
    for (size_t i = 0; i < bus->subs.n; i++) {
        nm_sub *s = bus->subs.v[i];
        if (s->polling) {
            continue;
        }
        uint64_t owed = 0;
        for (size_t k = pb->count;
             k > 0 && pb->events[k - 1].seq >= s->start[pb->shard]; k--) {
            owed++;
        }
        atomic_fetch_add_explicit(&s->missed, owed, memory_order_relaxed);
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
        stop_poller(s);
        nmi_evfd_signal(s->fd);
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
                if (s->filter && !s->polling &&
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
            const nmi_batch *ib = nmi_batch_of(b);
            if (ib->ids) {
                memcpy(ev->id, ib->ids[e - b->events], sizeof(ev->id));
                if (s->read_ids) {
                    memcpy(s->read_ids[b->shard], ev->id, NMI_ID_MAX);
                }
            } else {
                snprintf(ev->id, sizeof(ev->id), "%llu",
                         (unsigned long long)e->seq);
            }
            if (s->polling) {
                pthread_cond_signal(&s->cv); /* room for the poller */
            }
            pthread_mutex_unlock(&s->mu);
            return NM_OK;
        }
        if (s->ended) {
            pthread_mutex_unlock(&s->mu);
            return nmi_err(NM_ECLOSED, "end of stream: the bus shut down");
        }
        /* Empty: reset readiness, then re-check before sleeping so a
         * batch queued in between is not missed. */
        nmi_evfd_drain(s->fd);
        if (s->qlen > 0) {
            nmi_evfd_signal(s->fd);
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
    if (s->polling) {
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    nmi_evfd_signal(s->fd);
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
    stop_poller(s);
    free(s->cursor);
    free(s->read_ids);
    if (s->polling) {
        pthread_cond_destroy(&s->cv);
    }
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

/* ---------------------------------------------------- polling subscriptions
 */

/* Build one refcounted batch from events[i0, i1) (all of one shard). */
static nmi_batch *
batch_from_events(const nm_event *events, size_t i0, size_t i1)
{
    size_t k = i1 - i0, bytes = 0;
    for (size_t i = i0; i < i1; i++) {
        bytes += events[i].len + 1;
    }
    nmi_batch *b = malloc(sizeof(nmi_batch) + k * sizeof(nm_batch_event) +
                          k * 24 + bytes);
    if (!b) {
        return NULL;
    }
    b->ids = (char(*)[24])(void *)&b->ev[k];
    uint8_t *arena = (uint8_t *)&b->ids[k];
    for (size_t i = 0; i < k; i++) {
        const nm_event *e = &events[i0 + i];
        memcpy(arena, e->data, e->len);
        arena[e->len] = '\0';
        b->ev[i].data = arena;
        b->ev[i].len = (uint32_t)e->len;
        b->ev[i].seq = e->seq;
        b->ev[i].timestamp = e->timestamp;
        memcpy(b->ids[i], e->id, 24);
        arena += e->len + 1;
    }
    atomic_init(&b->refs, 1);
    b->pool = NULL;
    b->pub.shard = events[i0].shard;
    b->pub.sequence_start = events[i0].seq;
    b->pub.process_nonce = 0;
    b->pub.count = k;
    b->pub.events = b->ev;
    return b;
}

static void *
poller_main(void *arg)
{
    nm_sub *s = arg;
    unsigned backoff_ms = 1;
    const uint32_t cap = s->bus->cfg.sub_queue_capacity;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        /* Wait for room: a pull-based subscription never drops. */
        while (!s->cancelled && !s->ended && !s->poller_claimed &&
               s->queued_events >= cap) {
            pthread_cond_wait(&s->cv, &s->mu);
        }
        bool stop = s->cancelled || s->ended || s->poller_claimed;
        size_t room = cap - s->queued_events;
        char *cursor = s->cursor ? strdup(s->cursor) : NULL;
        pthread_mutex_unlock(&s->mu);
        if (stop) {
            free(cursor);
            break;
        }
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = room < 1000 ? room : 1000;
        req.cursor = cursor;
        req.filter = s->poll_filter;
        nm_poll_response resp;
        int rc = nm_bus_poll(s->bus, &req, &resp);
        free(cursor);
        bool progressed = false;
        if (rc == NM_OK) {
            pthread_mutex_lock(&s->mu);
            size_t i0 = 0;
            bool ok = true;
            while (ok && i0 < resp.count) {
                size_t i1 = i0 + 1;
                while (i1 < resp.count &&
                       resp.events[i1].shard == resp.events[i0].shard) {
                    i1++;
                }
                nmi_batch *b = batch_from_events(resp.events, i0, i1);
                if (!b || q_push(s, &b->pub) != NM_OK) {
                    free(b);
                    ok = false; /* out of memory: retry this page later */
                    break;
                }
                s->queued_events += i1 - i0;
                i0 = i1;
            }
            if (ok) {
                free(s->cursor);
                s->cursor = strdup(resp.next_cursor);
                progressed = resp.count > 0 || resp.has_more;
            }
            pthread_mutex_unlock(&s->mu);
            if (resp.count > 0) {
                nmi_evfd_signal(s->fd);
            }
            nm_poll_response_free(&resp);
        }
        if (progressed) {
            backoff_ms = 1;
            continue;
        }
        /* Caught up (or the adapter failed): poll again after 1 ms,
         * doubling to 100 ms, as upstream's EventStream. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)backoff_ms * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&s->mu);
        if (!s->cancelled && !s->ended && !s->poller_claimed) {
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        pthread_mutex_unlock(&s->mu);
        backoff_ms = backoff_ms * 2 > 100 ? 100 : backoff_ms * 2;
    }
    return NULL;
}

int
nm_bus_subscribe_from(nm_bus *bus, const char *cursor, const nm_filter *filter,
                      nm_sub **out)
{
    if (!bus || !out) {
        return nmi_err(NM_EINVAL, "bus and out must not be NULL");
    }
    *out = NULL;
    /* Decode now, so a bad cursor is the caller's error, not a silently
     * dead stream; the decoded ids seed nm_sub_cursor. */
    char(*ids)[NMI_ID_MAX] = calloc(bus->nshards, NMI_ID_MAX);
    if (!ids) {
        return nmi_err(NM_ENOMEM, "subscription");
    }
    int rc = cursor ? nmi_cursor_decode(cursor, bus->nshards, ids) : NM_OK;
    nm_sub *s = NULL;
    if (rc == NM_OK) {
        rc = sub_create(bus, filter, true, &s);
    }
    if (rc) {
        free(ids);
        return rc;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&s->mu);
    s->poll_filter = s->filter;
    s->read_ids = ids;
    s->cursor = cursor ? strdup(cursor) : NULL;
    bool oom = cursor && !s->cursor;
    if (!oom && pthread_create(&s->poller, NULL, poller_main, s) == 0) {
        s->poller_started = true;
    } else {
        oom = true;
    }
    pthread_mutex_unlock(&s->mu);
    if (oom) {
        nm_sub_close(s);
        return nmi_err(NM_ENOMEM, "cannot start the subscription poller");
    }
    *out = s;
    return NM_OK;
}

int
nm_sub_cursor(nm_sub *s, char **cursor)
{
    if (!s || !cursor) {
        return nmi_err(NM_EINVAL, "sub and cursor must not be NULL");
    }
    *cursor = NULL;
    if (!s->polling) {
        return nmi_err(NM_ENOTSUP, "only nm_bus_subscribe_from "
                                   "subscriptions have a cursor");
    }
    /* The position after the last event the reader took (the starting
     * cursor updated with the id of every event nm_sub_next returned). */
    pthread_mutex_lock(&s->mu);
    char *c = nmi_cursor_encode(s->bus->nshards, s->read_ids);
    pthread_mutex_unlock(&s->mu);
    if (!c) {
        return nmi_err(NM_ENOMEM, "cursor");
    }
    *cursor = c;
    return NM_OK;
}
