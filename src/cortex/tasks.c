/*
 * src/cortex/tasks.c - the tasks model: payload codecs, the fold, the
 * state's postcard form, writes and queries.
 *
 * Payloads (postcard, after the 24-byte EventMeta):
 *   0x01 TaskCreated   {id: u64, title: String, now_ns: u64}
 *   0x02 TaskRenamed   {id: u64, new_title: String, now_ns: u64}
 *   0x03 TaskCompleted {id: u64, now_ns: u64}
 *   0x04 TaskDeleted   {id: u64}
 * State: HashMap<u64, Task>, Task {id, title, status (unit enum:
 * Pending 0, Completed 1), created_ns, updated_ns}.
 */
#include "cortex/cortex_impl.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define KIND (&nmi_cx_tasks_kind)
#define M(t) ((nmi_cx_model *)(t))

/* ------------------------------------------------------------- codecs */

int
nmi_cx_task_op_decode(uint8_t dispatch, const uint8_t *tail, size_t n,
                      nmi_cx_task_op *op)
{
    nmi_pc_r r;
    nmi_pc_r_init(&r, tail, n);
    memset(op, 0, sizeof(*op));
    op->dispatch = dispatch;
    int rc;
    switch (dispatch) {
    case NM_CORTEX_TASK_CREATED:
    case NM_CORTEX_TASK_RENAMED:
        rc = nmi_pc_get_u64(&r, &op->id, "task id");
        if (!rc) {
            rc = nmi_pc_get_str(&r, &op->title, &op->title_len,
                                dispatch == NM_CORTEX_TASK_CREATED
                                    ? "task title"
                                    : "task new_title");
        }
        if (!rc) {
            rc = nmi_pc_get_u64(&r, &op->now_ns, "task now_ns");
        }
        return rc;
    case NM_CORTEX_TASK_COMPLETED:
        rc = nmi_pc_get_u64(&r, &op->id, "task id");
        if (!rc) {
            rc = nmi_pc_get_u64(&r, &op->now_ns, "task now_ns");
        }
        return rc;
    case NM_CORTEX_TASK_DELETED:
        return nmi_pc_get_u64(&r, &op->id, "task id");
    default:
        return nmi_err(NM_ENOTSUP, "unknown task dispatch 0x%02x", dispatch);
    }
}

void
nmi_cx_task_op_encode(const nmi_cx_task_op *op, nmi_pc_w *w)
{
    nmi_pc_put_varint(w, op->id);
    switch (op->dispatch) {
    case NM_CORTEX_TASK_CREATED:
    case NM_CORTEX_TASK_RENAMED:
        nmi_pc_put_bytes(w, op->title, op->title_len);
        nmi_pc_put_varint(w, op->now_ns);
        break;
    case NM_CORTEX_TASK_COMPLETED:
        nmi_pc_put_varint(w, op->now_ns);
        break;
    default:
        break;
    }
}

/* --------------------------------------------------------------- fold */

static void
task_free(void *e)
{
    nm_cortex_task *t = e;
    free(t->title.s);
    t->title.s = NULL;
}

static int
tasks_apply(nmi_cx_table *tab, const nm_cortex_meta *meta, const uint8_t *tail,
            size_t len)
{
    nmi_cx_task_op op;
    int rc = nmi_cx_task_op_decode(meta->dispatch, tail, len, &op);
    if (rc == NM_ENOTSUP) {
        return NM_OK; /* unknown dispatch: forward compatibility */
    }
    if (rc) {
        return rc;
    }
    nm_cortex_task *t = nmi_cx_table_get(tab, op.id);
    nm_cortex_str s;
    switch (op.dispatch) {
    case NM_CORTEX_TASK_CREATED:
        if (!t && (rc = nmi_cx_table_reserve(tab, 1)) != NM_OK) {
            return rc;
        }
        if ((rc = nmi_cx_str_dup(&s, op.title, op.title_len)) != NM_OK) {
            return rc;
        }
        if (t) {
            free(t->title.s);
            t->title = s;
            t->status = NM_TASK_PENDING;
            t->created_ns = t->updated_ns = op.now_ns;
        } else {
            nm_cortex_task nt = {.id = op.id,
                                 .title = s,
                                 .status = NM_TASK_PENDING,
                                 .created_ns = op.now_ns,
                                 .updated_ns = op.now_ns};
            (void)nmi_cx_table_insert(tab, &nt); /* reserved: no fail */
        }
        return NM_OK;
    case NM_CORTEX_TASK_RENAMED:
        if (t) {
            if ((rc = nmi_cx_str_dup(&s, op.title, op.title_len)) != NM_OK) {
                return rc;
            }
            free(t->title.s);
            t->title = s;
            t->updated_ns = op.now_ns;
        }
        return NM_OK;
    case NM_CORTEX_TASK_COMPLETED:
        if (t) {
            t->status = NM_TASK_COMPLETED;
            t->updated_ns = op.now_ns;
        }
        return NM_OK;
    case NM_CORTEX_TASK_DELETED: {
        nm_cortex_task old;
        if (nmi_cx_table_remove(tab, op.id, &old)) {
            task_free(&old);
        }
        return NM_OK;
    }
    }
    return NM_OK;
}

/* ---------------------------------------------------------- state form */

static int
cmp_id_ptr(const void *a, const void *b)
{
    uint64_t x = **(const uint64_t *const *)a;
    uint64_t y = **(const uint64_t *const *)b;
    return (x > y) - (x < y);
}

/* Element pointers of a table, ids ascending (NULL + 0 when empty or on
 * allocation failure: *oom says which). */
static const void **
sorted_ptrs(const nmi_cx_table *tab, bool *oom)
{
    *oom = false;
    if (!tab->n) {
        return NULL;
    }
    const void **v = malloc(tab->n * sizeof(*v));
    if (!v) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < tab->n; i++) {
        v[i] = nmi_cx_table_at(tab, i);
    }
    qsort(v, tab->n, sizeof(*v), cmp_id_ptr);
    return v;
}

static void
tasks_state_encode(const nmi_cx_table *tab, nmi_pc_w *w)
{
    bool oom;
    const void **v = sorted_ptrs(tab, &oom);
    if (oom) {
        w->failed = true;
        return;
    }
    nmi_pc_put_varint(w, tab->n);
    for (size_t i = 0; i < tab->n; i++) {
        const nm_cortex_task *t = v[i];
        nmi_pc_put_varint(w, t->id); /* the map key */
        nmi_pc_put_varint(w, t->id);
        nmi_pc_put_bytes(w, t->title.s, t->title.len);
        nmi_pc_put_varint(w, (uint64_t)t->status);
        nmi_pc_put_varint(w, t->created_ns);
        nmi_pc_put_varint(w, t->updated_ns);
    }
    free(v);
}

static int
tasks_state_decode(nmi_cx_table *tab, const uint8_t *p, size_t n)
{
    nmi_pc_r r;
    nmi_pc_r_init(&r, p, n);
    size_t count;
    /* key + id + title len + status + created + updated >= 6 bytes */
    int rc = nmi_pc_get_len(&r, 6, &count, "tasks map length");
    if (rc) {
        return rc;
    }
    if (tab && (rc = nmi_cx_table_reserve(tab, count)) != NM_OK) {
        return rc;
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t key;
        nm_cortex_task t = {0};
        const char *title;
        uint32_t status;
        if ((rc = nmi_pc_get_u64(&r, &key, "task key")) ||
            (rc = nmi_pc_get_u64(&r, &t.id, "task id")) ||
            (rc = nmi_pc_get_str(&r, &title, &t.title.len, "task title")) ||
            (rc = nmi_pc_get_u32(&r, &status, "task status")) ||
            (rc = nmi_pc_get_u64(&r, &t.created_ns, "task created_ns")) ||
            (rc = nmi_pc_get_u64(&r, &t.updated_ns, "task updated_ns"))) {
            return rc;
        }
        if (status > NM_TASK_COMPLETED) {
            return nmi_err(NM_EDECODE, "task %llu: status variant %u",
                           (unsigned long long)t.id, status);
        }
        if (key != t.id) {
            return nmi_err(NM_EDECODE, "task map key %llu holds task %llu",
                           (unsigned long long)key, (unsigned long long)t.id);
        }
        t.status = (nm_task_status)status;
        if (!tab) {
            continue; /* validation only */
        }
        if ((rc = nmi_cx_str_dup(&t.title, title, t.title.len)) != NM_OK) {
            return rc;
        }
        nm_cortex_task *old = nmi_cx_table_get(tab, t.id);
        if (old) { /* a repeated key: the last one wins, as in serde */
            task_free(old);
            *old = t;
        } else {
            (void)nmi_cx_table_insert(tab, &t);
        }
    }
    return NM_OK;
}

const nmi_cx_kind nmi_cx_tasks_kind = {
    .name = "tasks",
    .channel = NM_CORTEX_TASKS_CHANNEL,
    .esize = sizeof(nm_cortex_task),
    .apply = tasks_apply,
    .elem_free = task_free,
    .state_encode = tasks_state_encode,
    .state_decode = tasks_state_decode,
};

/* -------------------------------------------------------- open / close */

int
nm_cortex_tasks_open(nm_redex *rx, const nm_cortex_config *cfg,
                     nm_cortex_tasks **out)
{
    return nmi_cx_open(KIND, rx, cfg, NULL, (nmi_cx_model **)out);
}

int
nm_cortex_tasks_open_from_snapshot(nm_redex *rx, const nm_cortex_config *cfg,
                                   const nm_cortex_snapshot *snap,
                                   nm_cortex_tasks **out)
{
    if (!snap) {
        return nmi_err(NM_EINVAL, "snapshot must not be NULL");
    }
    return nmi_cx_open(KIND, rx, cfg, snap, (nmi_cx_model **)out);
}

void
nm_cortex_tasks_close(nm_cortex_tasks *t)
{
    if (!t) {
        return;
    }
    if (nmi_cx_check(M(t), KIND) == NM_OK) {
        nmi_cx_close(M(t));
    }
}

void
nm_cortex_tasks_free(nm_cortex_tasks *t)
{
    if (!t) {
        return;
    }
    if (nmi_cx_check(M(t), KIND) == NM_OK) {
        nmi_cx_close(M(t));
        nmi_cx_unref(M(t));
    }
}

uint64_t
nm_cortex_tasks_origin(const nm_cortex_tasks *t)
{
    return t ? ((const nmi_cx_model *)t)->origin : 0;
}

/* ------------------------------------------------------------- writes */

static int
check_text(const char *s, const char *what, size_t *len)
{
    if (!s) {
        return nmi_err(NM_EINVAL, "%s must not be NULL", what);
    }
    *len = strlen(s);
    if (!nmi_utf8_valid((const uint8_t *)s, *len)) {
        return nmi_err(NM_EINVAL, "%s is not valid UTF-8", what);
    }
    return NM_OK;
}

static int
write_titled(nm_cortex_tasks *t, uint8_t dispatch, uint64_t id,
             const char *title, uint64_t now_ns, nm_write_token *tok)
{
    int rc = nmi_cx_check(M(t), KIND);
    size_t len = 0;
    if (!rc) {
        rc = check_text(title, "title", &len);
    }
    if (rc) {
        return rc;
    }
    uint8_t buf[256];
    if (len <= sizeof(buf) - NM_CORTEX_META_SIZE - 30) {
        /* The usual case, encoded in place: {id, title, now_ns}. */
        size_t n = NM_CORTEX_META_SIZE;
        n += nmi_pc_varint_encode(id, buf + n);
        n += nmi_pc_varint_encode(len, buf + n);
        memcpy(buf + n, title, len);
        n += len;
        n += nmi_pc_varint_encode(now_ns, buf + n);
        return nmi_cx_append_raw(M(t), dispatch, buf, n, tok);
    }
    nmi_pc_w w;
    nmi_cx_payload_begin(&w, buf, sizeof(buf));
    nmi_pc_put_varint(&w, id);
    nmi_pc_put_bytes(&w, title, len);
    nmi_pc_put_varint(&w, now_ns);
    return nmi_cx_append(M(t), dispatch, &w, tok);
}

int
nm_cortex_tasks_create(nm_cortex_tasks *t, uint64_t id, const char *title,
                       uint64_t now_ns, nm_write_token *tok)
{
    return write_titled(t, NM_CORTEX_TASK_CREATED, id, title, now_ns, tok);
}

int
nm_cortex_tasks_rename(nm_cortex_tasks *t, uint64_t id, const char *new_title,
                       uint64_t now_ns, nm_write_token *tok)
{
    return write_titled(t, NM_CORTEX_TASK_RENAMED, id, new_title, now_ns, tok);
}

int
nm_cortex_tasks_complete(nm_cortex_tasks *t, uint64_t id, uint64_t now_ns,
                         nm_write_token *tok)
{
    int rc = nmi_cx_check(M(t), KIND);
    if (rc) {
        return rc;
    }
    uint8_t buf[64];
    nmi_pc_w w;
    nmi_cx_payload_begin(&w, buf, sizeof(buf));
    nmi_pc_put_varint(&w, id);
    nmi_pc_put_varint(&w, now_ns);
    return nmi_cx_append(M(t), NM_CORTEX_TASK_COMPLETED, &w, tok);
}

int
nm_cortex_tasks_delete(nm_cortex_tasks *t, uint64_t id, nm_write_token *tok)
{
    int rc = nmi_cx_check(M(t), KIND);
    if (rc) {
        return rc;
    }
    uint8_t buf[64];
    nmi_pc_w w;
    nmi_cx_payload_begin(&w, buf, sizeof(buf));
    nmi_pc_put_varint(&w, id);
    return nmi_cx_append(M(t), NM_CORTEX_TASK_DELETED, &w, tok);
}

/* -------------------------------------------------------- waits/status */

int
nm_cortex_tasks_wait_for_seq(nm_cortex_tasks *t, uint64_t seq, int timeout_ms)
{
    int rc = nmi_cx_check(M(t), KIND);
    return rc ? rc : nmi_cx_wait_seq(M(t), seq, timeout_ms);
}

int
nm_cortex_tasks_wait_for_token(nm_cortex_tasks *t, const nm_write_token *tok,
                               int timeout_ms)
{
    int rc = nmi_cx_check(M(t), KIND);
    return rc ? rc : nmi_cx_wait_token(M(t), tok, timeout_ms);
}

int
nm_cortex_tasks_status(nm_cortex_tasks *t, nm_cortex_status *st)
{
    int rc = nmi_cx_check(M(t), KIND);
    return rc ? rc : nmi_cx_status(M(t), st);
}

int
nm_cortex_tasks_snapshot(nm_cortex_tasks *t, nm_cortex_snapshot *out)
{
    int rc = nmi_cx_check(M(t), KIND);
    return rc ? rc : nmi_cx_snapshot(M(t), out);
}

/* ------------------------------------------------------------- queries */

void
nm_cortex_task_filter_init(nm_cortex_task_filter *f)
{
    if (!f) {
        return;
    }
    memset(f, 0, sizeof(*f));
    f->size = sizeof(*f);
    f->status = -1;
    f->created_before = UINT64_MAX;
    f->updated_before = UINT64_MAX;
    f->order_by = NM_CORTEX_ORDER_NONE;
}

static int
check_filter(const nm_cortex_task_filter *f)
{
    if (f->size != sizeof(*f)) {
        return nmi_err(NM_EINVAL,
                       "nm_cortex_task_filter.size is %u, expected %zu "
                       "(call nm_cortex_task_filter_init)",
                       f->size, sizeof(*f));
    }
    if (f->status < -1 || f->status > NM_TASK_COMPLETED) {
        return nmi_err(NM_EINVAL, "task filter status %d (-1, 0 or 1)",
                       f->status);
    }
    if ((unsigned)f->order_by > NM_CORTEX_UPDATED_DESC) {
        return nmi_err(NM_EINVAL, "task filter order_by %d", (int)f->order_by);
    }
    if (!f->id_in && f->id_in_count) {
        return nmi_err(NM_EINVAL,
                       "task filter id_in is NULL but "
                       "id_in_count is %zu",
                       f->id_in_count);
    }
    return NM_OK;
}

/* A compiled filter. */
typedef struct tq {
    const nm_cortex_task_filter *f;
    char *needle;
    size_t nn;
    uint64_t *ids;
    size_t nids;
} tq;

static void
tq_free(tq *q)
{
    free(q->needle);
    free(q->ids);
}

static int
tq_compile(const nm_cortex_task_filter *f, tq *q)
{
    memset(q, 0, sizeof(*q));
    q->f = f;
    int rc = NM_OK;
    if (f->title_contains) {
        rc = nmi_cx_lower_dup(f->title_contains, &q->needle, &q->nn);
    }
    if (!rc && f->id_in) {
        rc = nmi_cx_ids_prepare(f->id_in, f->id_in_count, &q->ids, &q->nids);
    }
    if (rc) {
        tq_free(q);
    }
    return rc;
}

static inline bool
tq_match(const tq *q, const nm_cortex_task *t)
{
    const nm_cortex_task_filter *f = q->f;
    if (f->status >= 0 && (int)t->status != f->status) {
        return false;
    }
    if (t->created_ns < f->created_after ||
        t->created_ns > f->created_before ||
        t->updated_ns < f->updated_after ||
        t->updated_ns > f->updated_before) {
        return false;
    }
    if (q->needle &&
        !nmi_cx_contains_ci(t->title.s, t->title.len, q->needle, q->nn)) {
        return false;
    }
    return true;
}

/* Walk the matches: store up to `max` of them in v (may be NULL) and
 * return how many were found (stops at max; max 0 = no limit). */
static size_t
tq_select(const nmi_cx_table *tab, const tq *q, const nm_cortex_task **v,
          size_t max)
{
    size_t k = 0;
    if (q->f->id_in) {
        for (size_t i = 0; i < q->nids; i++) {
            const nm_cortex_task *t = nmi_cx_table_get(tab, q->ids[i]);
            if (t && tq_match(q, t)) {
                if (v) {
                    v[k] = t;
                }
                if (++k == max) {
                    break;
                }
            }
        }
        return k;
    }
    for (size_t i = 0; i < tab->n; i++) {
        const nm_cortex_task *t = nmi_cx_table_at(tab, i);
        if (tq_match(q, t)) {
            if (v) {
                v[k] = t;
            }
            if (++k == max) {
                break;
            }
        }
    }
    return k;
}

/* One allocation: the items, then their titles. */
static int
list_build(const nm_cortex_task *const *src, size_t n,
           nm_cortex_task_list *out)
{
    out->items = NULL;
    out->count = 0;
    if (n == 0) {
        return NM_OK;
    }
    size_t bytes = n * sizeof(nm_cortex_task);
    for (size_t i = 0; i < n; i++) {
        bytes += src[i]->title.len + 1;
    }
    nm_cortex_task *items = malloc(bytes);
    if (!items) {
        return nmi_err(NM_ENOMEM, "task list of %zu items", n);
    }
    char *sp = (char *)(items + n);
    for (size_t i = 0; i < n; i++) {
        items[i] = *src[i];
        memcpy(sp, src[i]->title.s, src[i]->title.len + 1);
        items[i].title.s = sp;
        sp += src[i]->title.len + 1;
    }
    out->items = items;
    out->count = n;
    return NM_OK;
}

void
nm_cortex_task_list_free(nm_cortex_task_list *l)
{
    if (!l) {
        return;
    }
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* find_many with the read lock held. */
static int
find_locked(nmi_cx_model *m, const nm_cortex_task_filter *f,
            nm_cortex_task_list *out)
{
    tq q;
    int rc = tq_compile(f, &q);
    if (rc) {
        return rc;
    }
    const nmi_cx_table *tab = &m->tab;
    size_t cap = f->id_in ? q.nids : tab->n;
    size_t max = f->order_by == NM_CORTEX_ORDER_NONE ? f->limit : 0;
    if (max && max < cap) {
        cap = max;
    }
    const nm_cortex_task **v = NULL;
    if (cap) {
        v = malloc(cap * sizeof(*v));
        if (!v) {
            tq_free(&q);
            return nmi_err(NM_ENOMEM, "task query of %zu candidates", cap);
        }
    }
    size_t k = cap ? tq_select(tab, &q, v, cap) : 0;
    tq_free(&q);
    if (f->order_by != NM_CORTEX_ORDER_NONE) {
        nmi_cx_sort((const void **)v, k, f->order_by,
                    offsetof(nm_cortex_task, created_ns),
                    offsetof(nm_cortex_task, updated_ns));
    }
    if (f->limit && k > f->limit) {
        k = f->limit;
    }
    rc = list_build(v, k, out);
    free(v);
    return rc;
}

static int
prepare(nm_cortex_tasks *t, const nm_cortex_task_filter **f,
        nm_cortex_task_filter *all)
{
    int rc = nmi_cx_check(M(t), KIND);
    if (rc) {
        return rc;
    }
    if (!*f) {
        nm_cortex_task_filter_init(all);
        *f = all;
    }
    return check_filter(*f);
}

int
nm_cortex_tasks_find_many(nm_cortex_tasks *t, const nm_cortex_task_filter *f,
                          nm_cortex_task_list *out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    out->items = NULL;
    out->count = 0;
    nm_cortex_task_filter all;
    int rc = prepare(t, &f, &all);
    if (rc) {
        return rc;
    }
    pthread_rwlock_rdlock(&M(t)->rw);
    rc = find_locked(M(t), f, out);
    pthread_rwlock_unlock(&M(t)->rw);
    return rc;
}

/* How many elements match f, counting at most `limit` (0: all): the
 * body of count_where and exists_where. */
static int
count_matching(nm_cortex_tasks *m, const nm_cortex_task_filter *f,
               size_t limit, size_t *out)
{
    nm_cortex_task_filter all;
    int rc = prepare(m, &f, &all);
    tq q;
    if (rc || (rc = tq_compile(f, &q)) != NM_OK) {
        return rc;
    }
    pthread_rwlock_rdlock(&M(m)->rw);
    *out = tq_select(&M(m)->tab, &q, NULL, limit);
    pthread_rwlock_unlock(&M(m)->rw);
    tq_free(&q);
    return NM_OK;
}

int
nm_cortex_tasks_count_where(nm_cortex_tasks *m, const nm_cortex_task_filter *f,
                            size_t *out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    return count_matching(m, f, 0, out);
}

int
nm_cortex_tasks_exists_where(nm_cortex_tasks *m,
                             const nm_cortex_task_filter *f, bool *out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    size_t n = 0;
    int rc = count_matching(m, f, 1, &n);
    if (rc == NM_OK) {
        *out = n > 0;
    }
    return rc;
}

int
nm_cortex_tasks_count(nm_cortex_tasks *t, size_t *out)
{
    return nmi_cx_count(M(t), KIND, out);
}

int
nm_cortex_tasks_find_unique(nm_cortex_tasks *t, uint64_t id,
                            nm_cortex_task_list *out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    out->items = NULL;
    out->count = 0;
    int rc = nmi_cx_check(M(t), KIND);
    if (rc) {
        return rc;
    }
    pthread_rwlock_rdlock(&M(t)->rw);
    const nm_cortex_task *e = nmi_cx_table_get(&M(t)->tab, id);
    rc = e ? list_build(&e, 1, out) : NM_OK;
    pthread_rwlock_unlock(&M(t)->rw);
    if (!rc && !e) {
        rc = nmi_err(NM_ENOTFOUND, "no task %llu", (unsigned long long)id);
    }
    return rc;
}

/* --------------------------------------------------------------- views */

const nm_cortex_tasks_view *
nm_cortex_tasks_read_begin(nm_cortex_tasks *t)
{
    return nmi_cx_read_begin(M(t), KIND);
}

const nm_cortex_task *
nm_cortex_tasks_view_get(const nm_cortex_tasks_view *v, uint64_t id)
{
    return nmi_cx_view_get(v, id);
}

size_t
nm_cortex_tasks_view_count(const nm_cortex_tasks_view *v)
{
    return nmi_cx_view_count(v);
}

const nm_cortex_task *
nm_cortex_tasks_view_at(const nm_cortex_tasks_view *v, size_t i)
{
    return nmi_cx_view_at(v, i);
}

void
nm_cortex_tasks_read_end(const nm_cortex_tasks_view *v)
{
    nmi_cx_read_end(v);
}

/* ------------------------------------------------------------- watches */

/* The filter a watch owns: one block (filter, ids, title). */
typedef struct wfilter {
    nm_cortex_task_filter f;
} wfilter;

static void
wfilter_free(void *p)
{
    free(p);
}

static wfilter *
wfilter_copy(const nm_cortex_task_filter *f)
{
    size_t tl = f->title_contains ? strlen(f->title_contains) + 1 : 0;
    size_t ib = f->id_in ? f->id_in_count * sizeof(uint64_t) : 0;
    wfilter *w = malloc(sizeof(*w) + ib + tl);
    if (!w) {
        return NULL;
    }
    w->f = *f;
    uint8_t *p = (uint8_t *)(w + 1);
    if (f->id_in) {
        if (ib) {
            memcpy(p, f->id_in, ib);
        }
        w->f.id_in = (const uint64_t *)p;
        p += ib;
    }
    if (tl) {
        memcpy(p, f->title_contains, tl);
        w->f.title_contains = (const char *)p;
    }
    if (w->f.order_by == NM_CORTEX_ORDER_NONE) {
        w->f.order_by = NM_CORTEX_ID_ASC;
    }
    return w;
}

static int
w_eval(nmi_cx_model *m, const void *filter, void *out)
{
    return find_locked(m, &((const wfilter *)filter)->f, out);
}

static int
w_dup(const void *src, void *dst)
{
    const nm_cortex_task_list *s = src;
    const nm_cortex_task **v = NULL;
    if (s->count) {
        v = malloc(s->count * sizeof(*v));
        if (!v) {
            return nmi_err(NM_ENOMEM, "task list copy");
        }
        for (size_t i = 0; i < s->count; i++) {
            v[i] = &s->items[i];
        }
    }
    int rc = list_build(v, s->count, dst);
    free(v);
    return rc;
}

static bool
w_equal(const void *a, const void *b)
{
    const nm_cortex_task_list *x = a, *y = b;
    if (x->count != y->count) {
        return false;
    }
    for (size_t i = 0; i < x->count; i++) {
        const nm_cortex_task *p = &x->items[i], *q = &y->items[i];
        if (p->id != q->id || p->status != q->status ||
            p->created_ns != q->created_ns || p->updated_ns != q->updated_ns ||
            p->title.len != q->title.len ||
            memcmp(p->title.s, q->title.s, p->title.len) != 0) {
            return false;
        }
    }
    return true;
}

static void
w_list_free(void *l)
{
    nm_cortex_task_list_free(l);
}

static const nmi_cx_watch_ops watch_ops = {
    .kind = KIND,
    .list_size = sizeof(nm_cortex_task_list),
    .eval_locked = w_eval,
    .list_dup = w_dup,
    .equal = w_equal,
    .list_free = w_list_free,
    .filter_free = wfilter_free,
};

static int
watch_open(nm_cortex_tasks *t, const nm_cortex_task_filter *f,
           nm_cortex_task_list *snapshot, nm_cortex_watch **out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    *out = NULL;
    nm_cortex_task_filter all;
    int rc = prepare(t, &f, &all);
    if (rc) {
        return rc;
    }
    wfilter *wf = wfilter_copy(f);
    if (!wf) {
        return nmi_err(NM_ENOMEM, "watch filter");
    }
    return nmi_cx_watch_open(M(t), &watch_ops, wf, snapshot, out);
}

int
nm_cortex_tasks_watch(nm_cortex_tasks *t, const nm_cortex_task_filter *f,
                      nm_cortex_watch **out)
{
    return watch_open(t, f, NULL, out);
}

int
nm_cortex_tasks_snapshot_and_watch(nm_cortex_tasks *t,
                                   const nm_cortex_task_filter *f,
                                   nm_cortex_task_list *snapshot,
                                   nm_cortex_watch **out)
{
    if (!snapshot) {
        return nmi_err(NM_EINVAL, "snapshot must not be NULL");
    }
    snapshot->items = NULL;
    snapshot->count = 0;
    return watch_open(t, f, snapshot, out);
}

int
nm_cortex_watch_next_tasks(nm_cortex_watch *w, nm_cortex_task_list *out,
                           int timeout_ms)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    out->items = NULL;
    out->count = 0;
    return nmi_cx_watch_next(w, KIND, out, timeout_ms);
}
