/*
 * src/cortex/fold.c - the model core: open a log, run its fold thread,
 * publish watermarks, wait for seqs and tokens, append events, close.
 *
 * The fold thread blocks in nm_redex_tail_next with no lock held. With
 * a record in hand it takes the state's write lock and applies up to
 * NMI_CX_FOLD_BATCH records that are already in the log (checked with
 * the tail position against next_seq, so it never blocks while holding
 * the lock), bumps `version`, releases the lock, publishes the
 * watermarks under `mu` (waking waiters) and signals the watches.
 */
#include "cortex/cortex_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/evfd.h"

int
nmi_cx_check(const nmi_cx_model *m, const nmi_cx_kind *kind)
{
    if (!m) {
        return nmi_err(NM_EINVAL, "%s handle must not be NULL", kind->name);
    }
    if (m->kind != kind) {
        return nmi_err(NM_EINVAL, "not a %s handle (it is %s)", kind->name,
                       m->kind ? m->kind->name : "unknown");
    }
    return NM_OK;
}

int
nmi_cx_count(nmi_cx_model *m, const nmi_cx_kind *kind, size_t *out)
{
    int rc = nmi_cx_check(m, kind);
    if (rc) {
        return rc;
    }
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    pthread_rwlock_rdlock(&m->rw);
    *out = m->tab.n;
    pthread_rwlock_unlock(&m->rw);
    return NM_OK;
}

const void *
nmi_cx_read_begin(nmi_cx_model *m, const nmi_cx_kind *kind)
{
    if (nmi_cx_check(m, kind)) {
        return NULL;
    }
    pthread_rwlock_rdlock(&m->rw);
    return m;
}

void
nmi_cx_read_end(const void *view)
{
    if (view) {
        pthread_rwlock_unlock(&((nmi_cx_model *)view)->rw);
    }
}

/* ---------------------------------------------------------------- fold */

/* Record the outcome of event `seq` (rc NM_OK = applied). Fold thread,
 * rw held. Returns true when the fold must stop. */
static bool
note_result(nmi_cx_model *m, uint64_t seq, uint64_t next, int rc,
            const char *detail, bool *applied_any)
{
    if (rc == NM_OK) {
        if (m->f_prefix_ok && m->f_applied_end == seq) {
            m->f_applied_end = next;
        }
        m->f_folded_end = next;
        m->f_events_applied++;
        *applied_any = true;
        return false;
    }
    m->f_fold_errors++;
    pthread_mutex_lock(&m->mu);
    if (m->on_error == NM_CORTEX_STOP) {
        m->stop_code = rc;
        snprintf(m->stop_detail, sizeof(m->stop_detail),
                 "%s fold stopped at seq %llu: %s", m->kind->name,
                 (unsigned long long)seq, detail);
        pthread_mutex_unlock(&m->mu);
        return true;
    }
    if (!m->skipped) {
        m->skipped = true;
        m->skip_seq = seq;
        m->skip_code = rc;
        snprintf(m->skip_detail, sizeof(m->skip_detail),
                 "%s fold skipped seq %llu: %s", m->kind->name,
                 (unsigned long long)seq, detail);
    }
    pthread_mutex_unlock(&m->mu);
    m->f_prefix_ok = false;
    m->f_folded_end = next;
    return false;
}

static int
apply_one(nmi_cx_model *m, const nm_redex_event *ev)
{
    nm_cortex_meta meta;
    int rc = nm_cortex_event_verify(ev->payload, ev->len, &meta);
    if (rc) {
        return rc;
    }
    if (ev->seq < m->replay_end && meta.origin_hash == m->origin &&
        meta.seq_or_ts != UINT64_MAX) {
        /* Watermark the per-origin counter past replayed events (only
         * those in the log at open: later ones of this origin were
         * numbered by this handle, and touching the counter's cache
         * line on every event would slow the writers down). */
        uint64_t want = meta.seq_or_ts + 1;
        uint64_t cur = atomic_load(&m->app_seq);
        while (cur < want &&
               !atomic_compare_exchange_weak(&m->app_seq, &cur, want)) {
        }
    }
    return m->kind->apply(&m->tab, &meta, ev->payload + NM_CORTEX_META_SIZE,
                          ev->len - NM_CORTEX_META_SIZE);
}

static void
publish(nmi_cx_model *m, bool stop)
{
    pthread_mutex_lock(&m->mu);
    m->applied_end = m->f_applied_end;
    m->folded_end = m->f_folded_end;
    m->events_applied = m->f_events_applied;
    m->fold_errors = m->f_fold_errors;
    if (stop) {
        m->running = false;
    }
    if (m->waiters || stop) {
        pthread_cond_broadcast(&m->cv);
    }
    pthread_mutex_unlock(&m->mu);
}

static void *
fold_main(void *arg)
{
    nmi_cx_model *m = arg;
    nm_redex_event ev;
    char detail[160];
    uint64_t nx = 0; /* a cached nm_redex_next_seq */
    for (;;) {
        int rc = nm_redex_tail_next(m->tail, &ev, -1);
        if (rc == NM_ECLOSED) {
            break;
        }
        bool stop = false, applied_any = false, end = false;
        pthread_rwlock_wrlock(&m->rw);
        for (unsigned n = 0;;) {
            if (rc == NM_OK) {
                int arc = apply_one(m, &ev);
                if (nmi_unlikely(arc)) {
                    snprintf(detail, sizeof(detail), "%s", nm_errdetail());
                } else {
                    detail[0] = '\0';
                }
                stop = note_result(m, ev.seq, ev.seq + 1, arc, detail,
                                   &applied_any);
            } else if (rc == NM_ELAGGED) {
                uint64_t resume = nm_redex_tail_position(m->tail);
                snprintf(detail, sizeof(detail),
                         "seqs %llu..%llu were evicted from the log before "
                         "the fold read them",
                         (unsigned long long)ev.seq,
                         (unsigned long long)(resume - 1));
                stop = note_result(m, ev.seq, resume, NM_ELAGGED, detail,
                                   &applied_any);
            } else {
                /* Reading the log failed (I/O, memory): stop whatever
                 * the policy, nothing can be skipped safely. */
                snprintf(detail, sizeof(detail), "%s", nm_errdetail());
                m->f_fold_errors++;
                pthread_mutex_lock(&m->mu);
                m->stop_code = rc;
                snprintf(m->stop_detail, sizeof(m->stop_detail),
                         "%s fold stopped reading the log at seq %llu: %s",
                         m->kind->name, (unsigned long long)m->f_folded_end,
                         detail);
                pthread_mutex_unlock(&m->mu);
                stop = true;
            }
            if (stop || ++n >= NMI_CX_FOLD_BATCH) {
                break;
            }
            /* More in the log already? (next_seq takes the log's mutex:
             * refresh the cached end only when the tail reached it.) */
            uint64_t pos = nm_redex_tail_position(m->tail);
            if (pos >= nx &&
                (nm_redex_next_seq(m->file, &nx) != NM_OK || pos >= nx)) {
                break;
            }
            rc = nm_redex_tail_next(m->tail, &ev, 0);
            if (rc == NM_ETIMEDOUT) {
                break;
            }
            if (rc == NM_ECLOSED) {
                end = true;
                break;
            }
        }
        m->st_applied_end = m->f_applied_end;
        if (applied_any || stop) {
            atomic_fetch_add(&m->version, 1);
        }
        pthread_rwlock_unlock(&m->rw);
        publish(m, stop);
        nmi_cx_watch_signal_all(m, stop);
        if (stop || end) {
            break;
        }
    }
    if (!atomic_load(&m->closed)) {
        /* Not our close: the log (or its manager) was closed under the
         * fold. End it like a stop, so waits do not just time out. */
        pthread_mutex_lock(&m->mu);
        if (m->running && !m->stop_code) {
            m->stop_code = NM_ECLOSED;
            snprintf(m->stop_detail, sizeof(m->stop_detail),
                     "%s fold ended: the log %.64s was closed", m->kind->name,
                     m->channel);
        }
        m->running = false;
        pthread_cond_broadcast(&m->cv);
        pthread_mutex_unlock(&m->mu);
        nmi_cx_watch_signal_all(m, true);
    }
    return NULL;
}

/* --------------------------------------------------------------- open */

static void
model_destroy(nmi_cx_model *m)
{
    nmi_cx_table_free(&m->tab, m->kind->elem_free);
    pthread_rwlock_destroy(&m->rw);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->wmu);
    free(m->watches);
    free(m);
}

void
nmi_cx_unref(nmi_cx_model *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        model_destroy(m);
    }
}

static int
check_config(const nm_cortex_config *cfg)
{
    if (cfg->size != sizeof(*cfg)) {
        return nmi_err(NM_EINVAL,
                       "nm_cortex_config.size is %u, expected %zu (call "
                       "nm_cortex_config_init)",
                       cfg->size, sizeof(*cfg));
    }
    if ((unsigned)cfg->start > NM_CORTEX_FROM_SEQ) {
        return nmi_err(NM_EINVAL,
                       "nm_cortex_config.start %d is not a "
                       "nm_cortex_start",
                       (int)cfg->start);
    }
    if ((unsigned)cfg->on_error > NM_CORTEX_LOG_AND_CONTINUE) {
        return nmi_err(NM_EINVAL,
                       "nm_cortex_config.on_error %d is not a "
                       "nm_cortex_on_error",
                       (int)cfg->on_error);
    }
    return NM_OK;
}

void
nm_cortex_config_init(nm_cortex_config *cfg)
{
    if (!cfg) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    cfg->start = NM_CORTEX_FROM_BEGINNING;
    cfg->on_error = NM_CORTEX_STOP;
}

int
nmi_cx_open(const nmi_cx_kind *kind, nm_redex *rx, const nm_cortex_config *cfg,
            const nm_cortex_snapshot *snap, nmi_cx_model **out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    *out = NULL;
    if (!rx) {
        return nmi_err(NM_EINVAL, "redex manager must not be NULL");
    }
    nm_cortex_config defaults;
    if (!cfg) {
        nm_cortex_config_init(&defaults);
        cfg = &defaults;
    }
    int rc = check_config(cfg);
    if (rc) {
        return rc;
    }
    const char *channel = cfg->channel ? cfg->channel : kind->channel;
    if (nm_channel_name_validate(channel, strlen(channel)) != NM_OK) {
        char why[160];
        snprintf(why, sizeof(why), "%s", nm_errdetail());
        return nmi_err(NM_EINVAL, "%s channel '%.64s': %s", kind->name,
                       channel, why);
    }
    uint64_t snap_app_seq = 0;
    nmi_cx_table snap_tab;
    nmi_cx_table_init(&snap_tab, kind->esize);
    if (snap) {
        if (!snap->state && snap->len) {
            return nmi_err(NM_EINVAL, "snapshot state must not be NULL");
        }
        if (snap->has_last_seq && snap->last_seq == UINT64_MAX) {
            return nmi_err(NM_EDECODE,
                           "snapshot last_seq is u64::MAX; cannot resume");
        }
        rc = nmi_cx_snapshot_decode(kind, snap->state, snap->len,
                                    &snap_app_seq, &snap_tab);
        if (rc) {
            return rc;
        }
    }

    /* Cache-line aligned: the writers' counter has a line of its own. */
    size_t msz = (sizeof(nmi_cx_model) + NMI_CACHELINE - 1) &
                 ~(size_t)(NMI_CACHELINE - 1);
    nmi_cx_model *m = aligned_alloc(NMI_CACHELINE, msz);
    if (m) {
        memset(m, 0, msz);
    }
    if (!m) {
        nmi_cx_table_free(&snap_tab, kind->elem_free);
        return nmi_err(NM_ENOMEM, "cortex model");
    }
    m->kind = kind;
    m->origin = cfg->origin_hash;
    m->on_error = cfg->on_error;
    snprintf(m->channel, sizeof(m->channel), "%s", channel);
    m->tab = snap_tab;
    atomic_init(&m->app_seq, snap_app_seq);
    atomic_init(&m->closed, false);
    atomic_init(&m->refs, 1);
    atomic_init(&m->version, 0);
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* Readers must not starve the fold. */
    pthread_rwlockattr_setkind_np(
        &ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&m->rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->wmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);

    rc = nm_redex_open_file(rx, channel, cfg->file, &m->file);
    if (rc) {
        model_destroy(m);
        return rc;
    }
    uint64_t start = 0, low = 0, next = 0;
    if (nm_redex_lowest_seq(m->file, &low) ||
        nm_redex_next_seq(m->file, &next)) {
        rc = NM_ECLOSED;
        goto fail;
    }
    if (snap) {
        start = snap->has_last_seq ? snap->last_seq + 1 : low;
        if (start > next) {
            /* Taken from another (longer) log: new writes here would get
             * seqs the fold treats as already applied. */
            rc = nmi_err(NM_EINVAL,
                         "%s snapshot reflects seqs through %llu but the "
                         "log %s only reaches %llu: not a snapshot of this "
                         "log",
                         kind->name, (unsigned long long)(start - 1), channel,
                         (unsigned long long)next);
            goto fail;
        }
    } else if (cfg->start == NM_CORTEX_FROM_BEGINNING) {
        start = low;
    } else if (cfg->start == NM_CORTEX_LIVE_ONLY) {
        start = next;
    } else {
        start = cfg->start_seq;
    }
    m->start_seq = start;
    m->replay_end = next;
    m->applied_end = m->folded_end = start;
    m->f_applied_end = m->f_folded_end = start;
    m->st_applied_end = start;
    m->f_prefix_ok = true;
    m->running = true;
    rc = nm_redex_tail_open(m->file, start, &m->tail);
    if (rc) {
        goto fail;
    }
    if (pthread_create(&m->th, NULL, fold_main, m) != 0) {
        rc = nmi_err(NM_ENOMEM, "cortex: cannot start the fold thread");
        goto fail;
    }
    m->th_started = true;
    /* Catch up with what is in the log now, so app_seq is past every
     * event of this origin before the first write. */
    if (next > start) {
        rc = nmi_cx_wait_seq(m, next - 1, -1);
        if (rc) {
            char why[240];
            snprintf(why, sizeof(why), "%s", nm_errdetail());
            nmi_cx_close(m);
            nmi_cx_unref(m);
            return nmi_err(rc, "opening %s: %s", channel, why);
        }
    }
    *out = m;
    return NM_OK;
fail:
    if (m->tail) {
        nm_redex_tail_close(m->tail);
    }
    nm_redex_file_close(m->file);
    model_destroy(m);
    return rc;
}

void
nmi_cx_close(nmi_cx_model *m)
{
    if (!m || atomic_exchange(&m->closed, true)) {
        return;
    }
    if (m->th_started) {
        /* nm_redex_tail_cancel can be lost when it lands between the
         * tail's cancelled check and its eventfd drain (RedEX signals
         * without the log's mutex), leaving a reader with timeout -1
         * asleep. Cancel again until the fold thread is gone. */
        for (;;) {
            nm_redex_tail_cancel(m->tail);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (pthread_timedjoin_np(m->th, NULL, &ts) == 0) {
                break;
            }
        }
        m->th_started = false;
    } else {
        nm_redex_tail_cancel(m->tail);
    }
    pthread_mutex_lock(&m->mu);
    m->running = false;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    nmi_cx_watch_signal_all(m, true);
    nm_redex_tail_close(m->tail);
    m->tail = NULL;
    nm_redex_file_close(m->file);
}

/* -------------------------------------------------------------- writes */

void
nmi_cx_payload_begin(nmi_pc_w *w, uint8_t *buf, size_t cap)
{
    nmi_pc_w_init(w, buf, cap);
    uint8_t z[NM_CORTEX_META_SIZE] = {0};
    nmi_pc_put_raw(w, z, sizeof(z));
}

int
nmi_cx_append_raw(nmi_cx_model *m, uint8_t dispatch, uint8_t *p, size_t len,
                  nm_write_token *tok)
{
    if (atomic_load_explicit(&m->closed, memory_order_acquire)) {
        return nmi_err(NM_ECLOSED, "%s handle is closed", m->kind->name);
    }
    p[0] = dispatch;
    p[1] = 0;
    p[2] = 0;
    p[3] = 0;
    nmi_store_le64(p + 4, m->origin);
    nmi_store_le64(p + 12, atomic_fetch_add_explicit(&m->app_seq, 1,
                                                     memory_order_relaxed));
    /* checksum v2: the meta with a zero checksum slot, then the tail -
     * exactly the buffer as it stands. */
    nmi_store_le32(p + 20, 0);
    nmi_store_le32(p + 20, (uint32_t)XXH3_64bits(p, len));
    uint64_t seq;
    int rc = nm_redex_append(m->file, p, len, &seq);
    if (rc) {
        return rc;
    }
    if (tok) {
        tok->origin_hash = m->origin;
        tok->seq = seq;
    }
    return NM_OK;
}

int
nmi_cx_append(nmi_cx_model *m, uint8_t dispatch, nmi_pc_w *w,
              nm_write_token *tok)
{
    int rc = nmi_pc_w_status(w);
    if (!rc) {
        rc = nmi_cx_append_raw(m, dispatch, w->p, w->len, tok);
    }
    nmi_pc_w_free(w);
    return rc;
}

/* --------------------------------------------------------------- waits */

static void
deadline_ts(uint64_t deadline_ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(deadline_ns / 1000000000ull);
    ts->tv_nsec = (long)(deadline_ns % 1000000000ull);
}

/* Wait on cv until woken or the deadline (mu held). false = timed out. */
static bool
wait_cv(nmi_cx_model *m, uint64_t deadline_ns)
{
    m->waiters++;
    if (deadline_ns == UINT64_MAX) {
        pthread_cond_wait(&m->cv, &m->mu);
    } else {
        struct timespec ts;
        deadline_ts(deadline_ns, &ts);
        pthread_cond_timedwait(&m->cv, &m->mu, &ts);
    }
    m->waiters--;
    return deadline_ns == UINT64_MAX || nmi_mono_ns() < deadline_ns;
}

static uint64_t
deadline_of(int timeout_ms)
{
    if (timeout_ms < 0) {
        return UINT64_MAX;
    }
    return nmi_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
}

int
nmi_cx_wait_seq(nmi_cx_model *m, uint64_t seq, int timeout_ms)
{
    uint64_t deadline = deadline_of(timeout_ms);
    pthread_mutex_lock(&m->mu);
    for (;;) {
        if (atomic_load(&m->closed)) {
            pthread_mutex_unlock(&m->mu);
            return nmi_err(NM_ECLOSED, "%s handle is closed", m->kind->name);
        }
        if (seq < m->start_seq || m->folded_end > seq) {
            pthread_mutex_unlock(&m->mu);
            return NM_OK;
        }
        if (!m->running) {
            char d[200];
            snprintf(d, sizeof(d), "%s", m->stop_detail);
            bool has = m->folded_end > 0;
            uint64_t f = m->folded_end - 1;
            pthread_mutex_unlock(&m->mu);
            return has ? nmi_err(NM_ESHUTDOWN,
                                 "seq %llu never folded: folded through "
                                 "%llu; %s",
                                 (unsigned long long)seq,
                                 (unsigned long long)f, d)
                       : nmi_err(NM_ESHUTDOWN,
                                 "seq %llu never folded: nothing folded; %s",
                                 (unsigned long long)seq, d);
        }
        if (timeout_ms == 0 || !wait_cv(m, deadline)) {
            if (m->folded_end > seq) {
                continue;
            }
            uint64_t f = m->folded_end;
            pthread_mutex_unlock(&m->mu);
            return nmi_err(NM_ETIMEDOUT,
                           "seq %llu not folded within %d ms (next to fold: "
                           "%llu)",
                           (unsigned long long)seq, timeout_ms,
                           (unsigned long long)f);
        }
    }
}

int
nmi_cx_wait_token(nmi_cx_model *m, const nm_write_token *tok, int timeout_ms)
{
    if (!tok) {
        return nmi_err(NM_EINVAL, "token must not be NULL");
    }
    if (tok->origin_hash != m->origin) {
        return nmi_err(NM_EINVAL,
                       "wrong origin: token origin %016llx, %s handle origin "
                       "%016llx",
                       (unsigned long long)tok->origin_hash, m->kind->name,
                       (unsigned long long)m->origin);
    }
    uint64_t seq = tok->seq;
    uint64_t deadline = deadline_of(timeout_ms);
    pthread_mutex_lock(&m->mu);
    for (;;) {
        if (atomic_load(&m->closed)) {
            pthread_mutex_unlock(&m->mu);
            return nmi_err(NM_ECLOSED, "%s handle is closed", m->kind->name);
        }
        if (seq < m->start_seq || m->applied_end > seq) {
            pthread_mutex_unlock(&m->mu);
            return NM_OK;
        }
        if (m->skipped && m->skip_seq <= seq) {
            int code = m->skip_code;
            char d[200];
            snprintf(d, sizeof(d), "%s", m->skip_detail);
            pthread_mutex_unlock(&m->mu);
            return nmi_err(code,
                           "state will never reflect every write through "
                           "seq %llu: %s",
                           (unsigned long long)seq, d);
        }
        if (!m->running) {
            char d[200];
            snprintf(d, sizeof(d), "%s", m->stop_detail);
            bool has = m->applied_end > 0;
            uint64_t a = m->applied_end - 1;
            pthread_mutex_unlock(&m->mu);
            return has ? nmi_err(NM_ESHUTDOWN,
                                 "fold stopped: applied_through_seq %llu < "
                                 "token seq %llu; %s",
                                 (unsigned long long)a,
                                 (unsigned long long)seq, d)
                       : nmi_err(NM_ESHUTDOWN,
                                 "fold stopped: nothing applied, token seq "
                                 "%llu; %s",
                                 (unsigned long long)seq, d);
        }
        if (timeout_ms == 0 || !wait_cv(m, deadline)) {
            if (m->applied_end > seq) {
                continue;
            }
            uint64_t a = m->applied_end;
            pthread_mutex_unlock(&m->mu);
            return nmi_err(NM_ETIMEDOUT,
                           "token seq %llu not applied within %d ms (next "
                           "to apply: %llu)",
                           (unsigned long long)seq, timeout_ms,
                           (unsigned long long)a);
        }
    }
}

int
nmi_cx_status(nmi_cx_model *m, nm_cortex_status *st)
{
    if (!st) {
        return nmi_err(NM_EINVAL, "status must not be NULL");
    }
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&m->mu);
    st->running = m->running;
    st->closed = atomic_load(&m->closed);
    st->start_seq = m->start_seq;
    st->has_applied = m->applied_end > 0;
    st->applied_through_seq = m->applied_end ? m->applied_end - 1 : 0;
    st->has_folded = m->folded_end > 0;
    st->folded_through_seq = m->folded_end ? m->folded_end - 1 : 0;
    st->fold_errors = m->fold_errors;
    st->events_applied = m->events_applied;
    st->stop_code = m->stop_code;
    snprintf(st->stop_detail, sizeof(st->stop_detail), "%s",
             m->stop_code ? m->stop_detail
                          : (m->skipped ? m->skip_detail : ""));
    pthread_mutex_unlock(&m->mu);
    pthread_rwlock_rdlock(&m->rw);
    st->count = m->tab.n;
    pthread_rwlock_unlock(&m->rw);
    return NM_OK;
}

/* ----------------------------------------------------------- snapshots */

int
nmi_cx_snapshot(nmi_cx_model *m, nm_cortex_snapshot *out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    memset(out, 0, sizeof(*out));
    nmi_pc_w inner, outer;
    nmi_pc_w_init(&inner, NULL, 0);
    nmi_pc_w_init(&outer, NULL, 0);
    pthread_rwlock_rdlock(&m->rw);
    m->kind->state_encode(&m->tab, &inner);
    uint64_t applied_end = m->st_applied_end;
    uint64_t app_seq = atomic_load(&m->app_seq);
    pthread_rwlock_unlock(&m->rw);
    /* TasksSnapshotPayload {app_seq: u64, inner: Vec<u8>} */
    nmi_pc_put_varint(&outer, app_seq);
    nmi_pc_put_bytes(&outer, inner.p, inner.len);
    int rc = nmi_pc_w_status(&inner);
    nmi_pc_w_free(&inner);
    if (rc) {
        nmi_pc_w_free(&outer);
        return rc;
    }
    rc = nmi_pc_w_take(&outer, &out->state, &out->len);
    if (rc) {
        return rc;
    }
    out->has_last_seq = applied_end > 0;
    out->last_seq = applied_end ? applied_end - 1 : 0;
    return NM_OK;
}

int
nmi_cx_snapshot_decode(const nmi_cx_kind *kind, const uint8_t *p, size_t n,
                       uint64_t *app_seq, nmi_cx_table *tab)
{
    nmi_pc_r r;
    nmi_pc_r_init(&r, p, n);
    const uint8_t *inner;
    size_t il;
    int rc = nmi_pc_get_u64(&r, app_seq, "snapshot app_seq");
    if (!rc) {
        rc = nmi_pc_get_bytes(&r, &inner, &il, "snapshot inner");
    }
    if (rc) {
        char why[200];
        snprintf(why, sizeof(why), "%s", nm_errdetail());
        return nmi_err(rc, "%s snapshot: %s", kind->name, why);
    }
    rc = kind->state_decode(tab, inner, il);
    if (rc) {
        char why[200];
        snprintf(why, sizeof(why), "%s", nm_errdetail());
        if (tab) {
            nmi_cx_table_free(tab, kind->elem_free);
        }
        return nmi_err(rc, "%s snapshot state: %s", kind->name, why);
    }
    return NM_OK;
}

void
nm_cortex_snapshot_free(nm_cortex_snapshot *s)
{
    if (!s) {
        return;
    }
    free(s->state);
    memset(s, 0, sizeof(*s));
}
