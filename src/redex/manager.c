/*
 * src/redex/manager.c - the RedEX manager: the channel -> log table, the
 * handles it gives out, the optional periodic sweep thread, and the fsync
 * pool shared by its persistent files.
 *
 * Lifetimes: a log (nmi_rx_core) is referenced by the manager until
 * nm_redex_close and by each of its tails until nm_redex_tail_close, so a
 * handle or a tail never points at freed memory, even after close.
 */
#define _GNU_SOURCE
#include "redex/redex_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <netmesh/name.h>

void
nm_redex_config_init(nm_redex_config *cfg)
{
    if (!cfg) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
}

void
nm_redex_file_config_init(nm_redex_file_config *cfg)
{
    if (!cfg) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    cfg->persistent = false;
    cfg->fsync = NM_REDEX_FSYNC_NEVER;
    cfg->max_memory_bytes = 64ull << 20;
    cfg->tail_buffer_size = 1024;
}

/* mkdir -p */
static int
make_dirs(const char *path)
{
    size_t n = strlen(path);
    if (n == 0) {
        return nmi_err(NM_EINVAL, "directory path is empty");
    }
    char *p = strdup(path);
    if (!p) {
        return nmi_err(NM_ENOMEM, "path");
    }
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') {
            continue;
        }
        char save = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            int rc = nmi_err(NM_EIO, "mkdir %s: %s", p, strerror(e));
            free(p);
            return rc;
        }
        p[i] = save;
    }
    free(p);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return nmi_err(NM_EIO, "%s is not a directory", path);
    }
    return NM_OK;
}

static void *
sweeper_main(void *arg)
{
    nm_redex *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->sweeper_stop) {
        struct timespec ts;
        uint64_t t = nmi_mono_ns() + (uint64_t)m->sweep_ms * 1000000ull;
        ts.tv_sec = (time_t)(t / 1000000000ull);
        ts.tv_nsec = (long)(t % 1000000000ull);
        int r = pthread_cond_timedwait(&m->sweep_cv, &m->mu, &ts);
        if (m->sweeper_stop) {
            break;
        }
        if (r != ETIMEDOUT) {
            continue;
        }
        pthread_mutex_unlock(&m->mu);
        (void)nm_redex_sweep_all(m);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

int
nm_redex_open(const nm_redex_config *cfg, nm_redex **out)
{
    nm_redex_config d;
    if (!cfg) {
        nm_redex_config_init(&d);
        cfg = &d;
    }
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    *out = NULL;
    if (cfg->size != sizeof(*cfg)) {
        return nmi_err(NM_EINVAL,
                       "config size is %u, expected %zu: call "
                       "nm_redex_config_init",
                       cfg->size, sizeof(*cfg));
    }
    nm_redex *m = calloc(1, sizeof(*m));
    if (!m) {
        return nmi_err(NM_ENOMEM, "manager");
    }
    if (cfg->dir) {
        int rc = make_dirs(cfg->dir);
        if (rc) {
            free(m);
            return rc;
        }
        m->dir = strdup(cfg->dir);
        if (!m->dir) {
            free(m);
            return nmi_err(NM_ENOMEM, "manager");
        }
        rc = nmi_rx_pool_start(&m->pool);
        if (rc) {
            free(m->dir);
            free(m);
            return rc;
        }
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->sweep_cv, &ca);
    pthread_condattr_destroy(&ca);
    (void)nmi_rx_fast_now(); /* calibrate the clock once, here */
    m->sweep_ms = cfg->sweep_interval_ms;
    if (m->sweep_ms) {
        if (pthread_create(&m->sweeper, NULL, sweeper_main, m) != 0) {
            nm_redex_close(m);
            return nmi_err(NM_ENOMEM, "sweep thread");
        }
        m->sweeper_running = true;
    }
    *out = m;
    return NM_OK;
}

static int
push_core(nmi_rx_core ***v, size_t *n, size_t *cap, nmi_rx_core *c)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        nmi_rx_core **nv = realloc(*v, nc * sizeof(*nv));
        if (!nv) {
            return NM_ENOMEM;
        }
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = c;
    return NM_OK;
}

int
nm_redex_open_file(nm_redex *m, const char *channel,
                   const nm_redex_file_config *cfg, nm_redex_file **out)
{
    if (!m || !channel || !out) {
        return nmi_err(NM_EINVAL, "manager, channel and out must not be "
                                  "NULL");
    }
    *out = NULL;
    int rc = nm_channel_name_validate(channel, strlen(channel));
    if (rc) {
        return rc; /* detail set by the validator */
    }
    nm_redex_file_config d;
    if (!cfg) {
        nm_redex_file_config_init(&d);
        cfg = &d;
    }
    rc = nmi_rx_cfg_check(cfg, m->dir != NULL);
    if (rc) {
        return rc;
    }
    nm_redex_file *h = calloc(1, sizeof(*h));
    if (!h) {
        return nmi_err(NM_ENOMEM, "file handle");
    }
    pthread_mutex_lock(&m->mu);
    if (m->closed) {
        pthread_mutex_unlock(&m->mu);
        free(h);
        return nmi_err(NM_ECLOSED, "manager is closed");
    }
    nmi_rx_core *c = NULL;
    for (size_t i = 0; i < m->nopen; i++) {
        if (strcmp(m->open[i]->channel, channel) == 0) {
            c = m->open[i];
            break;
        }
    }
    if (c) {
        const char *diff = nmi_rx_cfg_diff(&c->cfg, cfg);
        if (diff) {
            pthread_mutex_unlock(&m->mu);
            free(h);
            return nmi_err(NM_EEXIST,
                           "channel %s is already open with a different %s",
                           channel, diff);
        }
        pthread_mutex_lock(&c->mu);
        c->nhandles++;
        pthread_mutex_unlock(&c->mu);
    } else {
        if (m->nall == m->all_cap || m->nopen == m->open_cap) {
            if (push_core(&m->all, &m->nall, &m->all_cap, NULL) ||
                push_core(&m->open, &m->nopen, &m->open_cap, NULL)) {
                pthread_mutex_unlock(&m->mu);
                free(h);
                return nmi_err(NM_ENOMEM, "file table");
            }
            m->nall--; /* room reserved */
            m->nopen--;
        }
        rc = nmi_rx_core_open(m, channel, cfg, &c);
        if (rc) {
            pthread_mutex_unlock(&m->mu);
            free(h);
            return rc;
        }
        c->nhandles = 1;
        m->all[m->nall++] = c;
        m->open[m->nopen++] = c;
    }
    h->c = c;
    h->mgr_next = m->handles;
    m->handles = h;
    pthread_mutex_unlock(&m->mu);
    *out = h;
    return NM_OK;
}

int
nm_redex_file_close(nm_redex_file *h)
{
    if (!h) {
        return NM_OK;
    }
    nmi_rx_core *c = h->c;
    nm_redex *m = c->mgr;
    pthread_mutex_lock(&m->mu);
    pthread_mutex_lock(&c->mu);
    if (h->closed) {
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&m->mu);
        return NM_OK;
    }
    h->closed = true;
    bool last = --c->nhandles == 0;
    pthread_mutex_unlock(&c->mu);
    if (last) {
        for (size_t i = 0; i < m->nopen; i++) {
            if (m->open[i] == c) {
                m->open[i] = m->open[--m->nopen];
                break;
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    return last ? nmi_rx_core_close(c) : NM_OK;
}

int64_t
nm_redex_sweep_all(nm_redex *m)
{
    if (!m) {
        return nmi_err(NM_EINVAL, "manager is NULL");
    }
    pthread_mutex_lock(&m->mu);
    size_t n = m->nopen;
    nmi_rx_core **v = n ? malloc(n * sizeof(*v)) : NULL;
    if (n && !v) {
        pthread_mutex_unlock(&m->mu);
        return nmi_err(NM_ENOMEM, "sweep list");
    }
    for (size_t i = 0; i < n; i++) {
        v[i] = m->open[i];
        atomic_fetch_add(&v[i]->refs, 1);
    }
    pthread_mutex_unlock(&m->mu);
    int64_t total = 0, err = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t k = nmi_rx_core_sweep(v[i]);
        if (k < 0 && k != NM_ECLOSED && !err) {
            err = k;
        } else if (k > 0) {
            total += k;
        }
        nmi_rx_core_unref(v[i]);
    }
    free(v);
    return err ? err : total;
}

void
nm_redex_close(nm_redex *m)
{
    if (!m) {
        return;
    }
    pthread_mutex_lock(&m->mu);
    m->sweeper_stop = true;
    pthread_cond_broadcast(&m->sweep_cv);
    bool join = m->sweeper_running;
    m->sweeper_running = false;
    pthread_mutex_unlock(&m->mu);
    if (join) {
        pthread_join(m->sweeper, NULL);
    }
    pthread_mutex_lock(&m->mu);
    m->closed = true;
    for (nm_redex_file *h = m->handles; h; h = h->mgr_next) {
        pthread_mutex_lock(&h->c->mu);
        h->closed = true;
        pthread_mutex_unlock(&h->c->mu);
    }
    size_t nopen = m->nopen;
    m->nopen = 0;
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < nopen; i++) {
        (void)nmi_rx_core_close(m->open[i]);
    }
    nmi_rx_pool_stop(m->pool);
    m->pool = NULL;
    for (nm_redex_file *h = m->handles; h;) {
        nm_redex_file *nx = h->mgr_next;
        free(h);
        h = nx;
    }
    for (size_t i = 0; i < m->nall; i++) {
        nmi_rx_core_unref(m->all[i]);
    }
    free(m->all);
    free(m->open);
    free(m->dir);
    pthread_cond_destroy(&m->sweep_cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
