/*
 * src/behavior/channel_rx.c - the subscriber side of the channel service:
 * Subscribe / Unsubscribe requests and their Acks, the delivery filter
 * that takes channel-stream deliveries off the mesh (bounded queue), and
 * the three ways to receive them (blocking, handler worker, eventfd).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netmesh/name.h>

#include "behavior/channel_impl.h"
#include "core/core.h"
#include "core/evfd.h"
#include "mesh/mesh_ext.h"
#include "wire/header.h"
#include "wire/membership.h"

/* Wait on ch->cv until a monotonic deadline (UINT64_MAX = forever).
 * Returns false once the deadline passed. */
static bool
wait_until(nm_channels_t *ch, uint64_t deadline)
{
    if (deadline == UINT64_MAX) {
        pthread_cond_wait(&ch->cv, &ch->mu);
        return true;
    }
    uint64_t now = nmi_mono_ns();
    if (now >= deadline) {
        return false;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t left = deadline - now;
    ts.tv_sec += (time_t)(left / 1000000000u);
    ts.tv_nsec += (long)(left % 1000000000u);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&ch->cv, &ch->mu, &ts);
    return true;
}

/* ---- subscriptions (under mu) ------------------------------------------- */

static nmi_mysub *
mysub_find(nm_channels_t *ch, uint64_t publisher, uint64_t stream_id)
{
    for (nmi_mysub *s = nmi_u64map_get(&ch->mysubs, stream_id); s != NULL;
         s = s->next) {
        if (s->publisher == publisher) {
            return s;
        }
    }
    return NULL;
}

static void
mysub_unlink(nm_channels_t *ch, nmi_mysub *sub)
{
    nmi_mysub *head = nmi_u64map_get(&ch->mysubs, sub->stream_id);
    nmi_mysub **pp = &head;
    while (*pp != NULL && *pp != sub) {
        pp = &(*pp)->next;
    }
    if (*pp == NULL) {
        return;
    }
    *pp = sub->next;
    if (head == NULL) {
        (void)nmi_u64map_del(&ch->mysubs, sub->stream_id);
    } else {
        (void)nmi_u64map_put(&ch->mysubs, sub->stream_id, head);
    }
    for (nmi_creq *r = ch->reqs; r != NULL; r = r->next) {
        if (r->sub == sub) {
            r->sub = NULL;
        }
    }
    free(sub);
}

static nmi_creq *
req_find(nm_channels_t *ch, uint64_t nonce)
{
    for (nmi_creq *r = ch->reqs; r != NULL; r = r->next) {
        if (r->nonce == nonce) {
            return r;
        }
    }
    return NULL;
}

static void
req_unlink(nm_channels_t *ch, nmi_creq *req)
{
    for (nmi_creq **pp = &ch->reqs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == req) {
            *pp = req->next;
            free(req);
            return;
        }
    }
}

void
nmi_channels_on_ack(nm_channels_t *ch, uint64_t peer, uint64_t nonce,
                    bool accepted, uint8_t reason)
{
    nmi_creq *r = req_find(ch, nonce);
    if (r == NULL || r->publisher != peer || r->done) {
        return; /* late, duplicate or forged: ignored */
    }
    r->done = true;
    /* an Ack "not accepted, Ok" is still a refusal */
    r->reason = accepted ? NMI_WIRE_ACK_OK
                         : (reason == 0 ? NMI_WIRE_ACK_UNAUTHORIZED : reason);
    if (r->sub != NULL) {
        if (accepted) {
            r->sub->active = true;
        } else if (r->created && !r->sub->active) {
            mysub_unlink(ch, r->sub);
        }
    }
    pthread_cond_broadcast(&ch->cv);
}

/* ---- requests -------------------------------------------------------------
 */

static int
request_start(nm_channels_t *ch, uint64_t publisher, const char *name,
              const nm_subscribe_opts *opts, bool subscribe, uint64_t *nonce)
{
    if (ch == NULL || name == NULL || nonce == NULL) {
        return nmi_err(NM_EINVAL, "channels: NULL argument");
    }
    if (opts != NULL && opts->size != sizeof(*opts)) {
        return nmi_err(NM_EINVAL,
                       "channels: subscribe opts.size is %zu, "
                       "expected sizeof(nm_subscribe_opts)",
                       opts->size);
    }
    size_t len = strlen(name);
    int rc = nm_channel_name_validate(name, len);
    if (rc != NM_OK) {
        return rc;
    }
    uint8_t tok[NM_TOKEN_CHAIN_MAX_BYTES];
    size_t tlen = 0;
    const char *qg = NULL;
    size_t qlen = 0;
    if (subscribe && opts != NULL && opts->token != NULL) {
        rc = nm_token_chain_encode(opts->token, tok, sizeof(tok), &tlen);
        if (rc != NM_OK) {
            return rc;
        }
    }
    if (subscribe && opts != NULL && opts->queue_group != NULL &&
        opts->queue_group[0] != '\0') {
        qg = opts->queue_group;
        qlen = strlen(qg);
        if (qlen > NM_CHANNEL_QUEUE_GROUP_MAX) {
            return nmi_err(NM_EINVAL,
                           "channels: queue group longer than %d "
                           "bytes",
                           NM_CHANNEL_QUEUE_GROUP_MAX);
        }
    }
    uint64_t n;
    do {
        randombytes_buf(&n, sizeof(n));
    } while (n == 0);
    nmi_wire_membership msg;
    if (subscribe) {
        nmi_wire_membership_subscribe(&msg, n, name, len, tlen ? tok : NULL,
                                      tlen, qg, qlen);
    } else {
        nmi_wire_membership_unsubscribe(&msg, n, name, len);
    }
    uint8_t buf[1 + 8 + 1 + NM_CHANNEL_NAME_MAX + 2 +
                NM_TOKEN_CHAIN_MAX_BYTES + 1 + NM_CHANNEL_QUEUE_GROUP_MAX];
    size_t blen = 0;
    rc = nmi_wire_membership_encode(&msg, buf, sizeof(buf), &blen);
    if (rc != NM_OK) {
        return rc;
    }
    uint64_t sid = nmi_wire_channel_stream_id(name, len);
    nmi_creq *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        return nmi_err(NM_ENOMEM, "channels: request");
    }
    req->nonce = n;
    req->publisher = publisher;
    req->subscribe = subscribe;
    pthread_mutex_lock(&ch->mu);
    if (ch->closed) {
        pthread_mutex_unlock(&ch->mu);
        free(req);
        return nmi_err(NM_ECLOSED, "channels: service closed");
    }
    nmi_mysub *sub = mysub_find(ch, publisher, sid);
    if (subscribe) {
        if (sub == NULL) {
            sub = calloc(1, sizeof(*sub));
            if (sub == NULL) {
                pthread_mutex_unlock(&ch->mu);
                free(req);
                return nmi_err(NM_ENOMEM, "channels: subscription");
            }
            sub->publisher = publisher;
            sub->stream_id = sid;
            if (nm_channel_hash(name, len, &sub->hash) != NM_OK) {
                sub->hash = 0; /* validated above: cannot happen */
            }
            memcpy(sub->name, name, len);
            sub->name[len] = '\0';
            sub->next = nmi_u64map_get(&ch->mysubs, sid);
            if (nmi_u64map_put(&ch->mysubs, sid, sub) != NM_OK) {
                pthread_mutex_unlock(&ch->mu);
                free(sub);
                free(req);
                return nmi_err(NM_ENOMEM, "channels: subscription");
            }
            req->created = true;
        }
        req->sub = sub;
    } else if (sub != NULL) {
        mysub_unlink(ch, sub); /* stop taking its messages now */
    }
    req->next = ch->reqs;
    ch->reqs = req;
    pthread_mutex_unlock(&ch->mu);

    const void *p = buf;
    rc = nmi_mesh_sp_send(ch->m, publisher, NM_CHANNEL_SUBPROTOCOL,
                          NM_CHANNEL_SUBPROTOCOL, &p, &blen, 1);
    if (rc != NM_OK) {
        nmi_channels_request_cancel(ch, n);
        return rc;
    }
    *nonce = n;
    return NM_OK;
}

int
nmi_channels_subscribe_start(nm_channels_t *ch, uint64_t publisher,
                             const char *name, const nm_subscribe_opts *opts,
                             uint64_t *nonce)
{
    return request_start(ch, publisher, name, opts, true, nonce);
}

int
nmi_channels_unsubscribe_start(nm_channels_t *ch, uint64_t publisher,
                               const char *name, uint64_t *nonce)
{
    return request_start(ch, publisher, name, NULL, false, nonce);
}

static int
finish(nm_channels_t *ch, nmi_creq *r, nm_channel_reason *reason)
{
    uint8_t why = r->reason;
    uint64_t publisher = r->publisher;
    bool subscribe = r->subscribe;
    req_unlink(ch, r);
    if (reason != NULL) {
        *reason = (nm_channel_reason)why;
    }
    if (why == NMI_WIRE_ACK_OK) {
        return NM_OK;
    }
    return nmi_err(
        NM_ECHANREJECTED, "channels: node %016llx refused the %s: %s",
        (unsigned long long)publisher, subscribe ? "subscribe" : "unsubscribe",
        nm_channel_reason_name((nm_channel_reason)why));
}

int
nmi_channels_request_poll(nm_channels_t *ch, uint64_t nonce,
                          nm_channel_reason *reason)
{
    pthread_mutex_lock(&ch->mu);
    nmi_creq *r = req_find(ch, nonce);
    int rc;
    if (r == NULL) {
        rc = nmi_err(NM_ENOTFOUND, "channels: no such request");
    } else if (!r->done) {
        rc = NM_EAGAIN;
    } else {
        rc = finish(ch, r, reason);
    }
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

void
nmi_channels_request_cancel(nm_channels_t *ch, uint64_t nonce)
{
    pthread_mutex_lock(&ch->mu);
    nmi_creq *r = req_find(ch, nonce);
    if (r != NULL) {
        if (r->sub != NULL && r->created && !r->sub->active) {
            mysub_unlink(ch, r->sub);
        }
        req_unlink(ch, r);
    }
    pthread_mutex_unlock(&ch->mu);
}

static int
request_wait(nm_channels_t *ch, uint64_t nonce, int timeout_ms,
             nm_channel_reason *reason)
{
    int ms = timeout_ms > 0 ? timeout_ms : (int)ch->cfg.ack_timeout_ms;
    uint64_t deadline = nmi_mono_ns() + (uint64_t)ms * 1000000u;
    pthread_mutex_lock(&ch->mu);
    ch->waiters++;
    int rc = NM_ETIMEDOUT;
    for (;;) {
        nmi_creq *r = req_find(ch, nonce);
        if (r == NULL) {
            rc = nmi_err(NM_EINTERNAL, "channels: request vanished");
            break;
        }
        if (r->done) {
            rc = finish(ch, r, reason);
            break;
        }
        if (ch->closed) {
            rc = nmi_err(NM_ECLOSED, "channels: service closed");
            break;
        }
        if (!wait_until(ch, deadline)) {
            rc = nmi_err(NM_ETIMEDOUT,
                         "channels: no Ack from node %016llx within %d ms",
                         (unsigned long long)r->publisher, ms);
            break;
        }
    }
    ch->waiters--;
    pthread_cond_broadcast(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
    if (rc == NM_ETIMEDOUT || rc == NM_ECLOSED) {
        nmi_channels_request_cancel(ch, nonce);
    }
    return rc;
}

int
nm_channels_subscribe(nm_channels_t *ch, uint64_t publisher, const char *name,
                      const nm_subscribe_opts *opts, int timeout_ms,
                      nm_channel_reason *reason)
{
    if (reason != NULL) {
        *reason = NM_CHAN_OK;
    }
    uint64_t nonce;
    int rc = request_start(ch, publisher, name, opts, true, &nonce);
    if (rc != NM_OK) {
        return rc;
    }
    return request_wait(ch, nonce, timeout_ms, reason);
}

int
nm_channels_unsubscribe(nm_channels_t *ch, uint64_t publisher,
                        const char *name, int timeout_ms,
                        nm_channel_reason *reason)
{
    if (reason != NULL) {
        *reason = NM_CHAN_OK;
    }
    uint64_t nonce;
    int rc = request_start(ch, publisher, name, NULL, false, &nonce);
    if (rc != NM_OK) {
        return rc;
    }
    return request_wait(ch, nonce, timeout_ms, reason);
}

/* ---- the delivery filter (node mutex held) ------------------------------ */

bool
nmi_channels_filter(void *ctx, nm_mesh_delivery *d)
{
    nm_channels_t *ch = ctx;
    /* what the publish path produces: a channel stream id whose low 16
     * bits are the header's channel hint, and an origin hash */
    bool looks = (d->stream_id & NMI_WIRE_CHANNEL_STREAM_BIT) != 0 &&
                 d->origin_hash != 0 &&
                 d->channel_hash == (uint16_t)d->stream_id;
    pthread_mutex_lock(&ch->mu);
    nmi_mysub *sub = mysub_find(ch, d->peer, d->stream_id);
    if (sub == NULL || ch->closed) {
        if (looks) {
            ch->stats.unsolicited++;
        }
        pthread_mutex_unlock(&ch->mu);
        if (looks) {
            nm_mesh_delivery_free(d);
        }
        return looks;
    }
    if (ch->q_len >= ch->cfg.rx_queue_max) {
        ch->stats.deliveries_dropped++;
        pthread_mutex_unlock(&ch->mu);
        nm_mesh_delivery_free(d);
        return true;
    }
    nmi_chdel *cd = malloc(sizeof(*cd));
    if (cd == NULL) {
        ch->stats.deliveries_dropped++;
        pthread_mutex_unlock(&ch->mu);
        nm_mesh_delivery_free(d);
        return true;
    }
    memcpy(cd->name, sub->name, sizeof(cd->name));
    cd->md = d;
    cd->pub.channel = cd->name;
    cd->pub.publisher = d->peer;
    cd->pub.seq = d->seq;
    cd->pub.count = d->count;
    cd->pub.msgs = d->msgs;
    cd->next = NULL;
    bool was_empty = ch->q_head == NULL;
    if (ch->q_tail != NULL) {
        ch->q_tail->next = cd;
    } else {
        ch->q_head = cd;
    }
    ch->q_tail = cd;
    ch->q_len++;
    ch->stats.deliveries++;
    if (was_empty) {
        nmi_evfd_signal(ch->evfd);
    }
    pthread_cond_broadcast(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
    return true;
}

/* ---- receiving -------------------------------------------------------------
 */

static nmi_chdel *
pop(nm_channels_t *ch)
{
    nmi_chdel *cd = ch->q_head;
    if (cd == NULL) {
        return NULL;
    }
    ch->q_head = cd->next;
    if (ch->q_head == NULL) {
        ch->q_tail = NULL;
        nmi_evfd_drain(ch->evfd);
    }
    ch->q_len--;
    cd->next = NULL;
    return cd;
}

void
nm_channel_delivery_free(nm_channel_delivery *d)
{
    if (d == NULL) {
        return;
    }
    nmi_chdel *cd = (nmi_chdel *)((char *)d - offsetof(nmi_chdel, pub));
    nm_mesh_delivery_free(cd->md);
    free(cd);
}

int
nm_channels_recv(nm_channels_t *ch, int timeout_ms, nm_channel_delivery **out)
{
    if (ch == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "channels: NULL argument");
    }
    *out = NULL;
    uint64_t deadline = timeout_ms < 0
                            ? UINT64_MAX
                            : nmi_mono_ns() + (uint64_t)timeout_ms * 1000000u;
    pthread_mutex_lock(&ch->mu);
    ch->waiters++;
    int rc = NM_OK;
    for (;;) {
        nmi_chdel *cd = pop(ch);
        if (cd != NULL) {
            *out = &cd->pub;
            break;
        }
        if (ch->closed) {
            rc = nmi_err(NM_ECLOSED, "channels: service closed");
            break;
        }
        if (timeout_ms == 0) {
            rc = NM_EAGAIN;
            break;
        }
        if (!wait_until(ch, deadline)) {
            rc = NM_ETIMEDOUT;
            break;
        }
    }
    ch->waiters--;
    if (ch->closed) {
        pthread_cond_broadcast(&ch->cv);
    }
    pthread_mutex_unlock(&ch->mu);
    return rc;
}

int
nm_channels_fd(const nm_channels_t *ch)
{
    return ch ? ch->evfd : -1;
}

static void *
worker_main(void *arg)
{
    nm_channels_t *ch = arg;
    pthread_mutex_lock(&ch->mu);
    while (!ch->worker_stop) {
        nmi_chdel *cd = pop(ch);
        if (cd == NULL) {
            pthread_cond_wait(&ch->cv, &ch->mu);
            continue;
        }
        nm_channel_handler fn = ch->handler;
        void *hctx = ch->handler_ctx;
        pthread_mutex_unlock(&ch->mu);
        fn(hctx, &cd->pub);
        nm_channel_delivery_free(&cd->pub);
        pthread_mutex_lock(&ch->mu);
    }
    pthread_mutex_unlock(&ch->mu);
    return NULL;
}

int
nm_channels_set_handler(nm_channels_t *ch, nm_channel_handler fn, void *ctx)
{
    if (ch == NULL) {
        return nmi_err(NM_EINVAL, "channels: NULL service");
    }
    pthread_mutex_lock(&ch->mu);
    if (fn != NULL) {
        if (ch->closed) {
            pthread_mutex_unlock(&ch->mu);
            return nmi_err(NM_ECLOSED, "channels: service closed");
        }
        ch->handler = fn;
        ch->handler_ctx = ctx;
        if (!ch->worker_running) {
            ch->worker_stop = false;
            if (pthread_create(&ch->worker, NULL, worker_main, ch) != 0) {
                ch->handler = NULL;
                pthread_mutex_unlock(&ch->mu);
                return nmi_err(NM_ENOMEM, "channels: worker thread");
            }
            ch->worker_running = true;
        }
        pthread_mutex_unlock(&ch->mu);
        return NM_OK;
    }
    bool join = ch->worker_running;
    ch->worker_stop = true;
    ch->worker_running = false;
    pthread_cond_broadcast(&ch->cv);
    pthread_mutex_unlock(&ch->mu);
    if (join) {
        pthread_join(ch->worker, NULL);
    }
    pthread_mutex_lock(&ch->mu);
    ch->handler = NULL;
    ch->handler_ctx = NULL;
    pthread_mutex_unlock(&ch->mu);
    return NM_OK;
}

void
nmi_channels_rx_fini(nm_channels_t *ch)
{
    nmi_chdel *cd;
    while ((cd = pop(ch)) != NULL) {
        nm_channel_delivery_free(&cd->pub);
    }
    for (size_t i = 0; i < ch->mysubs.cap; i++) {
        nmi_mysub *s = ch->mysubs.vals[i];
        while (s != NULL) {
            nmi_mysub *n = s->next;
            free(s);
            s = n;
        }
    }
    nmi_u64map_fini(&ch->mysubs);
    while (ch->reqs != NULL) {
        nmi_creq *r = ch->reqs;
        ch->reqs = r->next;
        free(r);
    }
}
