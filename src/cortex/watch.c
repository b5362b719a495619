/*
 * src/cortex/watch.c - watches: re-run a query after fold batches and
 * emit its result when it differs from the previous one.
 *
 * Evaluation is lazy and happens in the reader's nm_cortex_watch_next:
 * the fold only bumps the model's `version` (under the write lock) and
 * signals armed watches. next() drains its eventfd, arms, compares the
 * version with the one it last evaluated and, when it moved, re-runs
 * the query under the read lock (reading the version again there, so
 * result and version match). Any change after that arm signals the fd,
 * so no change is ever missed; a burst of changes collapses into one
 * evaluation.
 */
#include "cortex/cortex_impl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/evfd.h"

struct nm_cortex_watch {
    nmi_cx_model *m;
    const nmi_cx_watch_ops *ops;
    void *filter;
    union {
        nm_cortex_task_list t;
        nm_cortex_memory_list mm;
    } last;
    bool have_last;
    bool evaluated;
    uint64_t seen; /* the version of the last evaluation */
    int fd;
    _Atomic bool armed;
    _Atomic bool cancelled;
};

void
nmi_cx_watch_signal_all(nmi_cx_model *m, bool force)
{
    pthread_mutex_lock(&m->wmu);
    for (size_t i = 0; i < m->nwatches; i++) {
        nm_cortex_watch *w = m->watches[i];
        if (force || atomic_exchange(&w->armed, false)) {
            nmi_evfd_signal(w->fd);
        }
    }
    pthread_mutex_unlock(&m->wmu);
}

static void
watch_destroy(nm_cortex_watch *w)
{
    if (w->have_last) {
        w->ops->list_free(&w->last);
    }
    w->ops->filter_free(w->filter);
    if (w->fd >= 0) {
        close(w->fd);
    }
    free(w);
}

int
nmi_cx_watch_open(nmi_cx_model *m, const nmi_cx_watch_ops *ops, void *filter,
                  void *snapshot, nm_cortex_watch **out)
{
    nm_cortex_watch *w = calloc(1, sizeof(*w));
    if (!w) {
        ops->filter_free(filter);
        return nmi_err(NM_ENOMEM, "watch");
    }
    w->m = m;
    w->ops = ops;
    w->filter = filter;
    w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    atomic_init(&w->armed, true);
    atomic_init(&w->cancelled, false);
    if (w->fd < 0) {
        int e = errno;
        watch_destroy(w);
        return nmi_err(NM_EIO, "eventfd: %s", strerror(e));
    }
    if (atomic_load(&m->closed)) {
        watch_destroy(w);
        return nmi_err(NM_ECLOSED, "%s handle is closed", m->kind->name);
    }
    int rc = NM_OK;
    if (snapshot) {
        /* The snapshot and the version it reflects, under one lock; the
         * watch starts as if it had emitted the snapshot. */
        pthread_rwlock_rdlock(&m->rw);
        w->seen = atomic_load(&m->version);
        rc = ops->eval_locked(m, filter, snapshot);
        pthread_rwlock_unlock(&m->rw);
        if (!rc) {
            rc = ops->list_dup(snapshot, &w->last);
            if (rc) {
                ops->list_free(snapshot);
            }
        }
        if (rc) {
            watch_destroy(w);
            return rc;
        }
        w->have_last = true;
        w->evaluated = true;
    }
    pthread_mutex_lock(&m->wmu);
    if (m->nwatches == m->watches_cap) {
        size_t nc = m->watches_cap ? m->watches_cap * 2 : 4;
        nm_cortex_watch **nv = realloc(m->watches, nc * sizeof(*nv));
        if (!nv) {
            pthread_mutex_unlock(&m->wmu);
            if (snapshot) {
                ops->list_free(snapshot);
            }
            watch_destroy(w);
            return nmi_err(NM_ENOMEM, "watch list");
        }
        m->watches = nv;
        m->watches_cap = nc;
    }
    m->watches[m->nwatches++] = w;
    atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&m->wmu);
    if (!snapshot) {
        nmi_evfd_signal(w->fd); /* the first result is ready */
    }
    *out = w;
    return NM_OK;
}

static bool
fold_stopped(nmi_cx_model *m)
{
    pthread_mutex_lock(&m->mu);
    bool stopped = !m->running;
    pthread_mutex_unlock(&m->mu);
    return stopped;
}

int
nmi_cx_watch_next(nm_cortex_watch *w, const nmi_cx_kind *kind, void *out,
                  int timeout_ms)
{
    if (!w) {
        return nmi_err(NM_EINVAL, "watch must not be NULL");
    }
    if (w->ops->kind != kind) {
        return nmi_err(NM_EINVAL, "this is a %s watch, not a %s watch",
                       w->ops->kind->name, kind->name);
    }
    nmi_cx_model *m = w->m;
    uint64_t deadline = nmi_deadline_ms(timeout_ms);
    for (;;) {
        nmi_evfd_drain(w->fd);
        atomic_store(&w->armed, true);
        /* The end keeps the fd readable (every later next returns it). */
        if (atomic_load(&w->cancelled)) {
            nmi_evfd_signal(w->fd);
            return nmi_err(NM_ECLOSED, "watch cancelled");
        }
        if (atomic_load(&m->closed)) {
            nmi_evfd_signal(w->fd);
            return nmi_err(NM_ECLOSED, "%s handle is closed", kind->name);
        }
        if (!w->evaluated || atomic_load(&m->version) != w->seen) {
            union {
                nm_cortex_task_list t;
                nm_cortex_memory_list mm;
            } cur;
            pthread_rwlock_rdlock(&m->rw);
            uint64_t v = atomic_load(&m->version);
            int rc = w->ops->eval_locked(m, w->filter, &cur);
            pthread_rwlock_unlock(&m->rw);
            if (rc) {
                return rc;
            }
            w->evaluated = true;
            w->seen = v;
            if (w->have_last && w->ops->equal(&cur, &w->last)) {
                w->ops->list_free(&cur);
                continue;
            }
            if (w->have_last) {
                w->ops->list_free(&w->last);
                w->have_last = false;
            }
            rc = w->ops->list_dup(&cur, &w->last);
            if (rc) {
                w->ops->list_free(&cur);
                w->evaluated = false; /* retry next time */
                return rc;
            }
            w->have_last = true;
            memcpy(out, &cur, w->ops->list_size);
            return NM_OK;
        }
        if (fold_stopped(m)) {
            nmi_evfd_signal(w->fd);
            return nmi_err(NM_ESHUTDOWN,
                           "the %s fold stopped; no further results",
                           kind->name);
        }
        int left = nmi_ms_left(deadline);
        if (left == 0) {
            return nmi_err(NM_ETIMEDOUT, "no new result within %d ms",
                           timeout_ms);
        }
        struct pollfd p = {.fd = w->fd, .events = POLLIN};
        if (poll(&p, 1, left) < 0 && errno != EINTR) {
            return nmi_err(NM_EIO, "poll: %s", strerror(errno));
        }
    }
}

int
nm_cortex_watch_fd(const nm_cortex_watch *w)
{
    return w ? w->fd : -1;
}

void
nm_cortex_watch_cancel(nm_cortex_watch *w)
{
    if (!w) {
        return;
    }
    atomic_store(&w->cancelled, true);
    nmi_evfd_signal(w->fd);
}

void
nm_cortex_watch_close(nm_cortex_watch *w)
{
    if (!w) {
        return;
    }
    nmi_cx_model *m = w->m;
    pthread_mutex_lock(&m->wmu);
    for (size_t i = 0; i < m->nwatches; i++) {
        if (m->watches[i] == w) {
            m->watches[i] = m->watches[--m->nwatches];
            break;
        }
    }
    pthread_mutex_unlock(&m->wmu);
    watch_destroy(w);
    nmi_cx_unref(m);
}
