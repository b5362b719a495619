/*
 * src/cortex/cortex_impl.h - CortEX internals: the id table, the model
 * core (one log + one fold thread + one state) and the per-kind hooks
 * that tasks.c and memories.c plug into it.
 */
#ifndef NMI_CORTEX_IMPL_H
#define NMI_CORTEX_IMPL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <netmesh/cortex.h>
#include <netmesh/name.h>
#include <netmesh/redex.h>

#include "core/core.h"
#include "cortex/postcard.h"

/* Events a fold applies per write-lock hold. */
#define NMI_CX_FOLD_BATCH 256

/* ----------------------------------------------------------- id table */

/* Dense array of fixed-size elements whose first field is the uint64_t
 * id, plus an open-addressing index (linear probing, load <= 1/2,
 * backward-shift deletion) of u32 slots holding index + 1. */
typedef struct nmi_cx_table {
    size_t esize;
    uint8_t *items;
    size_t n, cap;
    uint32_t *slots; /* NULL while empty */
    size_t mask;     /* nslots - 1 */
    unsigned shift;  /* 64 - log2(nslots) */
} nmi_cx_table;

static inline size_t
nmi_cx_home(const nmi_cx_table *t, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> t->shift);
}

/* The element with this id, or NULL. */
static inline void *
nmi_cx_table_get(const nmi_cx_table *t, uint64_t id)
{
    if (!t->slots) {
        return NULL;
    }
    size_t h = nmi_cx_home(t, id);
    for (;;) {
        uint32_t s = t->slots[h];
        if (!s) {
            return NULL;
        }
        uint8_t *e = t->items + (size_t)(s - 1) * t->esize;
        if (*(const uint64_t *)e == id) {
            return e;
        }
        h = (h + 1) & t->mask;
    }
}

static inline void *
nmi_cx_table_at(const nmi_cx_table *t, size_t i)
{
    return t->items + i * t->esize;
}

void nmi_cx_table_init(nmi_cx_table *t, size_t esize);
/* Make room for `more` inserts that then cannot fail. NM_ENOMEM. */
int nmi_cx_table_reserve(nmi_cx_table *t, size_t more);
/* Copy *elem in (its id must be absent). NM_ENOMEM (nothing changed). */
int nmi_cx_table_insert(nmi_cx_table *t, const void *elem);
/* Remove id, copying the element to *out (may be NULL). false if absent. */
bool nmi_cx_table_remove(nmi_cx_table *t, uint64_t id, void *out);
/* Drop every element (efree releases an element's strings). */
void nmi_cx_table_clear(nmi_cx_table *t, void (*efree)(void *));
void nmi_cx_table_free(nmi_cx_table *t, void (*efree)(void *));

/* ----------------------------------------------------------- strings */

/* A malloc'd NUL-terminated copy of p[0..n). */
int nmi_cx_str_dup(nm_cortex_str *out, const char *p, size_t n);
/* An ASCII case-insensitive substring test; needle_lc is lowercase. */
bool nmi_cx_contains_ci(const char *hay, size_t hn, const char *needle_lc,
                        size_t nn);

/* ------------------------------------------------------------ queries */

/* A sorted, duplicate-free copy of ids[0..n) (*out NULL when n == 0). */
int nmi_cx_ids_prepare(const uint64_t *ids, size_t n, uint64_t **out,
                       size_t *outn);
/* A lowercase copy of s (ASCII letters only are folded). */
int nmi_cx_lower_dup(const char *s, char **out, size_t *n);
/* Sort element pointers by order (ties: id ascending); created_off and
 * updated_off locate the uint64_t timestamps in the element. */
void nmi_cx_sort(const void **v, size_t n, nm_cortex_order order,
                 size_t created_off, size_t updated_off);

/* ------------------------------------------------------------- kinds */

typedef struct nmi_cx_model nmi_cx_model;

typedef struct nmi_cx_kind {
    const char *name;    /* "tasks" */
    const char *channel; /* default channel */
    size_t esize;
    /* Apply one verified event to the table, all or nothing. NM_OK for
     * unknown dispatches. Errors set a detail. */
    int (*apply)(nmi_cx_table *tab, const nm_cortex_meta *m,
                 const uint8_t *tail, size_t len);
    void (*elem_free)(void *e);
    /* postcard(State), ids ascending. */
    void (*state_encode)(const nmi_cx_table *tab, nmi_pc_w *w);
    /* Decode postcard(State) into an empty table (NULL: only check the
     * bytes). Trailing bytes are ignored, as postcard::from_bytes does. */
    int (*state_decode)(nmi_cx_table *tab, const uint8_t *p, size_t n);
} nmi_cx_kind;

extern const nmi_cx_kind nmi_cx_tasks_kind;
extern const nmi_cx_kind nmi_cx_memories_kind;

typedef struct nmi_cx_watch_ops nmi_cx_watch_ops;

struct nmi_cx_model {
    /* Set at open, read by writers and the fold alike. */
    const nmi_cx_kind *kind;
    nm_redex_file *file;
    nm_redex_tail *tail;
    uint64_t origin;
    nm_cortex_on_error on_error;
    uint64_t replay_end; /* next_seq at open */
    char channel[NM_CHANNEL_NAME_MAX + 1];

    /* Written by every write (the counter) and read by every write (the
     * flag): a cache line of their own, which the fold never touches on
     * its per-event path. (The model is allocated cache-line aligned.) */
    _Alignas(NMI_CACHELINE) _Atomic uint64_t app_seq; /* next seq_or_ts */
    _Atomic bool closed;

    _Alignas(NMI_CACHELINE) _Atomic unsigned refs; /* handle + each watch */

    /* The state: the table and the applied watermark it reflects. */
    pthread_rwlock_t rw;
    nmi_cx_table tab;
    uint64_t st_applied_end;  /* one past applied_through (rw) */
    _Atomic uint64_t version; /* bumped under rw by every fold batch */

    /* Fold progress, published after each batch (mu). */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t start_seq;
    uint64_t applied_end, folded_end; /* one past the "through" seqs */
    bool skipped;                     /* a LOG_AND_CONTINUE skip */
    uint64_t skip_seq;
    int skip_code;
    char skip_detail[200];
    bool running;
    int stop_code;
    char stop_detail[200];
    uint64_t fold_errors, events_applied;
    unsigned waiters;

    /* Fold-thread-only copies. */
    uint64_t f_applied_end, f_folded_end;
    uint64_t f_events_applied, f_fold_errors;
    bool f_prefix_ok;

    /* Watches (wmu). */
    pthread_mutex_t wmu;
    struct nm_cortex_watch **watches;
    size_t nwatches, watches_cap;

    pthread_t th;
    bool th_started;
};

/* Open a model: see nm_cortex_tasks_open. snap (may be NULL) restores
 * state and app_seq and starts at its last_seq + 1. */
int nmi_cx_open(const nmi_cx_kind *kind, nm_redex *rx,
                const nm_cortex_config *cfg, const nm_cortex_snapshot *snap,
                nmi_cx_model **out);
void nmi_cx_close(nmi_cx_model *m);
void nmi_cx_unref(nmi_cx_model *m);
/* Check a public handle: non-NULL and of this kind. */
int nmi_cx_check(const nmi_cx_model *m, const nmi_cx_kind *kind);

/* Reads inside a read guard (inline: view_get is the <= 10 ns path). */
static inline const void *
nmi_cx_view_get(const void *view, uint64_t id)
{
    return view ? nmi_cx_table_get(&((const nmi_cx_model *)view)->tab, id)
                : NULL;
}

static inline size_t
nmi_cx_view_count(const void *view)
{
    return view ? ((const nmi_cx_model *)view)->tab.n : 0;
}

static inline const void *
nmi_cx_view_at(const void *view, size_t i)
{
    const nmi_cx_model *m = view;
    return m && i < m->tab.n ? nmi_cx_table_at(&m->tab, i) : NULL;
}

/* The kind-independent halves of the public count / read-guard calls
 * (tasks and memories wrap them with their types). A view is the model
 * itself, read-locked between read_begin and read_end. */
int nmi_cx_count(nmi_cx_model *m, const nmi_cx_kind *kind, size_t *out);
const void *nmi_cx_read_begin(nmi_cx_model *m, const nmi_cx_kind *kind);
void nmi_cx_read_end(const void *view);

/* Append one event: w holds NM_CORTEX_META_SIZE placeholder bytes and
 * then the postcard payload. Fills the meta (origin, next seq_or_ts,
 * checksum v2), appends, fills *tok. */
int nmi_cx_append(nmi_cx_model *m, uint8_t dispatch, nmi_pc_w *w,
                  nm_write_token *tok);
/* nmi_cx_append over an encoded event p[0..len): p[0..24) is the meta
 * slot (filled here), the postcard payload follows. */
int nmi_cx_append_raw(nmi_cx_model *m, uint8_t dispatch, uint8_t *p,
                      size_t len, nm_write_token *tok);
/* Start a payload writer over buf: reserves the meta bytes. */
void nmi_cx_payload_begin(nmi_pc_w *w, uint8_t *buf, size_t cap);

int nmi_cx_wait_seq(nmi_cx_model *m, uint64_t seq, int timeout_ms);
int nmi_cx_wait_token(nmi_cx_model *m, const nm_write_token *tok,
                      int timeout_ms);
int nmi_cx_status(nmi_cx_model *m, nm_cortex_status *st);
int nmi_cx_snapshot(nmi_cx_model *m, nm_cortex_snapshot *out);
/* Decode a typed snapshot payload {app_seq, inner} into a table (NULL:
 * only check the bytes). */
int nmi_cx_snapshot_decode(const nmi_cx_kind *kind, const uint8_t *p, size_t n,
                           uint64_t *app_seq, nmi_cx_table *tab);

/* ------------------------------------------------------------ watches */

struct nmi_cx_watch_ops {
    const nmi_cx_kind *kind;
    size_t list_size; /* sizeof the list struct */
    /* Run the filter with the read lock held; *list_out is new. */
    int (*eval_locked)(nmi_cx_model *m, const void *filter, void *list_out);
    int (*list_dup)(const void *src, void *dst);
    bool (*equal)(const void *a, const void *b);
    void (*list_free)(void *l);
    void (*filter_free)(void *f);
};

/* A new watch over m owning `filter` (freed on failure too). With
 * snapshot != NULL, the current result goes there and leading equal
 * results are skipped. */
int nmi_cx_watch_open(nmi_cx_model *m, const nmi_cx_watch_ops *ops,
                      void *filter, void *snapshot,
                      struct nm_cortex_watch **out);
int nmi_cx_watch_next(struct nm_cortex_watch *w, const nmi_cx_kind *kind,
                      void *out, int timeout_ms);
/* Wake every watch of m (fold batch, stop, close). force: also watches
 * that are not armed. Takes wmu. */
void nmi_cx_watch_signal_all(nmi_cx_model *m, bool force);

/* ------------------------------------------------------ event codecs */

/* A decoded task / memory event, for the fuzz targets and tests. The
 * strings point into the input. */
typedef struct nmi_cx_task_op {
    uint8_t dispatch;
    uint64_t id, now_ns;
    const char *title;
    size_t title_len;
} nmi_cx_task_op;

typedef struct nmi_cx_mem_op {
    uint8_t dispatch;
    uint64_t id, now_ns;
    const char *content, *source;
    size_t content_len, source_len;
    size_t ntags;
    const uint8_t *tags_at; /* the encoded Vec<String> */
    size_t tags_bytes;
} nmi_cx_mem_op;

/* Decode the postcard payload of a known dispatch (NM_ENOTSUP for an
 * unknown one). */
int nmi_cx_task_op_decode(uint8_t dispatch, const uint8_t *tail, size_t n,
                          nmi_cx_task_op *op);
void nmi_cx_task_op_encode(const nmi_cx_task_op *op, nmi_pc_w *w);
int nmi_cx_mem_op_decode(uint8_t dispatch, const uint8_t *tail, size_t n,
                         nmi_cx_mem_op *op);
void nmi_cx_mem_op_encode(const nmi_cx_mem_op *op, nmi_pc_w *w);

#endif
