/*
 * src/cortex/memories.c - the memories model.
 *
 * Payloads (postcard, after the 24-byte EventMeta):
 *   0x10 MemoryStored   {id: u64, content: String, tags: Vec<String>,
 *                        source: String, now_ns: u64}
 *   0x11 MemoryRetagged {id: u64, tags: Vec<String>, now_ns: u64}
 *   0x12 MemoryPinned,
 *   0x13 MemoryUnpinned {id: u64, now_ns: u64}
 *   0x14 MemoryDeleted  {id: u64}
 * State: HashMap<u64, Memory>, Memory {id, content, tags, source,
 * created_ns, updated_ns, pinned: bool}.
 *
 * A memory's tags live in one block: the nm_cortex_str array, then the
 * NUL-terminated tag bytes.
 */
#include "cortex/cortex_impl.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIND (&nmi_cx_memories_kind)
#define M(t) ((nmi_cx_model *)(t))

/* ------------------------------------------------------------- codecs */

static int
get_tags(nmi_pc_r *r, nmi_cx_mem_op *op)
{
    int rc = nmi_pc_get_len(r, 1, &op->ntags, "memory tags length");
    if (rc) {
        return rc;
    }
    op->tags_at = r->p;
    for (size_t i = 0; i < op->ntags; i++) {
        const char *s;
        size_t n;
        if ((rc = nmi_pc_get_str(r, &s, &n, "memory tag")) != NM_OK) {
            return rc;
        }
    }
    op->tags_bytes = (size_t)(r->p - op->tags_at);
    return NM_OK;
}

int
nmi_cx_mem_op_decode(uint8_t dispatch, const uint8_t *tail, size_t n,
                     nmi_cx_mem_op *op)
{
    nmi_pc_r r;
    nmi_pc_r_init(&r, tail, n);
    memset(op, 0, sizeof(*op));
    op->dispatch = dispatch;
    int rc;
    switch (dispatch) {
    case NM_CORTEX_MEMORY_STORED:
        if ((rc = nmi_pc_get_u64(&r, &op->id, "memory id")) ||
            (rc = nmi_pc_get_str(&r, &op->content, &op->content_len,
                                 "memory content")) ||
            (rc = get_tags(&r, op)) ||
            (rc = nmi_pc_get_str(&r, &op->source, &op->source_len,
                                 "memory source")) ||
            (rc = nmi_pc_get_u64(&r, &op->now_ns, "memory now_ns"))) {
            return rc;
        }
        return NM_OK;
    case NM_CORTEX_MEMORY_RETAGGED:
        if ((rc = nmi_pc_get_u64(&r, &op->id, "memory id")) ||
            (rc = get_tags(&r, op)) ||
            (rc = nmi_pc_get_u64(&r, &op->now_ns, "memory now_ns"))) {
            return rc;
        }
        return NM_OK;
    case NM_CORTEX_MEMORY_PINNED:
    case NM_CORTEX_MEMORY_UNPINNED:
        if ((rc = nmi_pc_get_u64(&r, &op->id, "memory id")) ||
            (rc = nmi_pc_get_u64(&r, &op->now_ns, "memory now_ns"))) {
            return rc;
        }
        return NM_OK;
    case NM_CORTEX_MEMORY_DELETED:
        return nmi_pc_get_u64(&r, &op->id, "memory id");
    default:
        return nmi_err(NM_ENOTSUP, "unknown memory dispatch 0x%02x", dispatch);
    }
}

void
nmi_cx_mem_op_encode(const nmi_cx_mem_op *op, nmi_pc_w *w)
{
    nmi_pc_put_varint(w, op->id);
    switch (op->dispatch) {
    case NM_CORTEX_MEMORY_STORED:
        nmi_pc_put_bytes(w, op->content, op->content_len);
        nmi_pc_put_varint(w, op->ntags);
        nmi_pc_put_raw(w, op->tags_at, op->tags_bytes);
        nmi_pc_put_bytes(w, op->source, op->source_len);
        nmi_pc_put_varint(w, op->now_ns);
        break;
    case NM_CORTEX_MEMORY_RETAGGED:
        nmi_pc_put_varint(w, op->ntags);
        nmi_pc_put_raw(w, op->tags_at, op->tags_bytes);
        nmi_pc_put_varint(w, op->now_ns);
        break;
    case NM_CORTEX_MEMORY_PINNED:
    case NM_CORTEX_MEMORY_UNPINNED:
        nmi_pc_put_varint(w, op->now_ns);
        break;
    default:
        break;
    }
}

/* Build a tag block from an encoded (already validated) Vec<String>
 * body. */
static int
tags_from_wire(const uint8_t *at, size_t bytes, size_t ntags,
               nm_cortex_str **out)
{
    *out = NULL;
    if (!ntags) {
        return NM_OK;
    }
    /* each tag takes >= 1 length byte on the wire: room for its NUL */
    nm_cortex_str *v = malloc(ntags * sizeof(*v) + bytes);
    if (!v) {
        return nmi_err(NM_ENOMEM, "memory tags");
    }
    char *sp = (char *)(v + ntags);
    nmi_pc_r r;
    nmi_pc_r_init(&r, at, bytes);
    for (size_t i = 0; i < ntags; i++) {
        const char *s;
        size_t n = 0;
        (void)nmi_pc_get_str(&r, &s, &n, "tag"); /* validated */
        memcpy(sp, s, n);
        sp[n] = '\0';
        v[i].s = sp;
        v[i].len = n;
        sp += n + 1;
    }
    *out = v;
    return NM_OK;
}

/* --------------------------------------------------------------- fold */

static void
mem_free(void *e)
{
    nm_cortex_memory *m = e;
    free(m->content.s);
    free(m->source.s);
    free(m->tags);
    m->content.s = m->source.s = NULL;
    m->tags = NULL;
}

static int
memories_apply(nmi_cx_table *tab, const nm_cortex_meta *meta,
               const uint8_t *tail, size_t len)
{
    nmi_cx_mem_op op;
    int rc = nmi_cx_mem_op_decode(meta->dispatch, tail, len, &op);
    if (rc == NM_ENOTSUP) {
        return NM_OK; /* unknown dispatch: forward compatibility */
    }
    if (rc) {
        return rc;
    }
    nm_cortex_memory *e = nmi_cx_table_get(tab, op.id);
    switch (op.dispatch) {
    case NM_CORTEX_MEMORY_STORED: {
        if (!e && (rc = nmi_cx_table_reserve(tab, 1)) != NM_OK) {
            return rc;
        }
        nm_cortex_memory nm = {.id = op.id, .ntags = op.ntags};
        if ((rc = nmi_cx_str_dup(&nm.content, op.content, op.content_len)) ||
            (rc = nmi_cx_str_dup(&nm.source, op.source, op.source_len)) ||
            (rc = tags_from_wire(op.tags_at, op.tags_bytes, op.ntags,
                                 &nm.tags))) {
            mem_free(&nm);
            return rc;
        }
        if (e) { /* an update keeps created_ns and pinned */
            nm.created_ns = e->created_ns;
            nm.pinned = e->pinned;
            nm.updated_ns = op.now_ns;
            mem_free(e);
            *e = nm;
        } else {
            nm.created_ns = nm.updated_ns = op.now_ns;
            (void)nmi_cx_table_insert(tab, &nm); /* reserved */
        }
        return NM_OK;
    }
    case NM_CORTEX_MEMORY_RETAGGED:
        if (e) {
            nm_cortex_str *tags;
            if ((rc = tags_from_wire(op.tags_at, op.tags_bytes, op.ntags,
                                     &tags)) != NM_OK) {
                return rc;
            }
            free(e->tags);
            e->tags = tags;
            e->ntags = op.ntags;
            e->updated_ns = op.now_ns;
        }
        return NM_OK;
    case NM_CORTEX_MEMORY_PINNED:
    case NM_CORTEX_MEMORY_UNPINNED:
        if (e) {
            e->pinned = op.dispatch == NM_CORTEX_MEMORY_PINNED;
            e->updated_ns = op.now_ns;
        }
        return NM_OK;
    case NM_CORTEX_MEMORY_DELETED: {
        nm_cortex_memory old;
        if (nmi_cx_table_remove(tab, op.id, &old)) {
            mem_free(&old);
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

static void
memories_state_encode(const nmi_cx_table *tab, nmi_pc_w *w)
{
    const void **v = NULL;
    if (tab->n) {
        v = malloc(tab->n * sizeof(*v));
        if (!v) {
            w->failed = true;
            return;
        }
        for (size_t i = 0; i < tab->n; i++) {
            v[i] = nmi_cx_table_at(tab, i);
        }
        qsort(v, tab->n, sizeof(*v), cmp_id_ptr);
    }
    nmi_pc_put_varint(w, tab->n);
    for (size_t i = 0; i < tab->n; i++) {
        const nm_cortex_memory *m = v[i];
        nmi_pc_put_varint(w, m->id); /* the map key */
        nmi_pc_put_varint(w, m->id);
        nmi_pc_put_bytes(w, m->content.s, m->content.len);
        nmi_pc_put_varint(w, m->ntags);
        for (size_t k = 0; k < m->ntags; k++) {
            nmi_pc_put_bytes(w, m->tags[k].s, m->tags[k].len);
        }
        nmi_pc_put_bytes(w, m->source.s, m->source.len);
        nmi_pc_put_varint(w, m->created_ns);
        nmi_pc_put_varint(w, m->updated_ns);
        nmi_pc_put_bool(w, m->pinned);
    }
    free(v);
}

static int
memories_state_decode(nmi_cx_table *tab, const uint8_t *p, size_t n)
{
    nmi_pc_r r;
    nmi_pc_r_init(&r, p, n);
    size_t count;
    /* key id content tags source created updated pinned: >= 8 bytes */
    int rc = nmi_pc_get_len(&r, 8, &count, "memories map length");
    if (rc) {
        return rc;
    }
    if (tab && (rc = nmi_cx_table_reserve(tab, count)) != NM_OK) {
        return rc;
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t key;
        nmi_cx_mem_op op = {0};
        nm_cortex_memory m = {0};
        if ((rc = nmi_pc_get_u64(&r, &key, "memory key")) ||
            (rc = nmi_pc_get_u64(&r, &m.id, "memory id")) ||
            (rc = nmi_pc_get_str(&r, &op.content, &op.content_len,
                                 "memory content")) ||
            (rc = get_tags(&r, &op)) ||
            (rc = nmi_pc_get_str(&r, &op.source, &op.source_len,
                                 "memory source")) ||
            (rc = nmi_pc_get_u64(&r, &m.created_ns, "memory created_ns")) ||
            (rc = nmi_pc_get_u64(&r, &m.updated_ns, "memory updated_ns")) ||
            (rc = nmi_pc_get_bool(&r, &m.pinned, "memory pinned"))) {
            return rc;
        }
        if (key != m.id) {
            return nmi_err(NM_EDECODE, "memory map key %llu holds memory %llu",
                           (unsigned long long)key, (unsigned long long)m.id);
        }
        m.ntags = op.ntags;
        if (!tab) {
            continue; /* validation only */
        }
        if ((rc = nmi_cx_str_dup(&m.content, op.content, op.content_len)) ||
            (rc = nmi_cx_str_dup(&m.source, op.source, op.source_len)) ||
            (rc = tags_from_wire(op.tags_at, op.tags_bytes, op.ntags,
                                 &m.tags))) {
            mem_free(&m);
            return rc;
        }
        nm_cortex_memory *old = nmi_cx_table_get(tab, m.id);
        if (old) {
            mem_free(old);
            *old = m;
        } else {
            (void)nmi_cx_table_insert(tab, &m);
        }
    }
    return NM_OK;
}

const nmi_cx_kind nmi_cx_memories_kind = {
    .name = "memories",
    .channel = NM_CORTEX_MEMORIES_CHANNEL,
    .esize = sizeof(nm_cortex_memory),
    .apply = memories_apply,
    .elem_free = mem_free,
    .state_encode = memories_state_encode,
    .state_decode = memories_state_decode,
};

/* -------------------------------------------------------- open / close */

int
nm_cortex_memories_open(nm_redex *rx, const nm_cortex_config *cfg,
                        nm_cortex_memories **out)
{
    return nmi_cx_open(KIND, rx, cfg, NULL, (nmi_cx_model **)out);
}

int
nm_cortex_memories_open_from_snapshot(nm_redex *rx,
                                      const nm_cortex_config *cfg,
                                      const nm_cortex_snapshot *snap,
                                      nm_cortex_memories **out)
{
    if (!snap) {
        return nmi_err(NM_EINVAL, "snapshot must not be NULL");
    }
    return nmi_cx_open(KIND, rx, cfg, snap, (nmi_cx_model **)out);
}

void
nm_cortex_memories_close(nm_cortex_memories *m)
{
    if (!m) {
        return;
    }
    if (nmi_cx_check(M(m), KIND) == NM_OK) {
        nmi_cx_close(M(m));
    }
}

void
nm_cortex_memories_free(nm_cortex_memories *m)
{
    if (!m) {
        return;
    }
    if (nmi_cx_check(M(m), KIND) == NM_OK) {
        nmi_cx_close(M(m));
        nmi_cx_unref(M(m));
    }
}

uint64_t
nm_cortex_memories_origin(const nm_cortex_memories *m)
{
    return m ? ((const nmi_cx_model *)m)->origin : 0;
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
put_tags(nmi_pc_w *w, const char *const *tags, size_t ntags)
{
    if (ntags && !tags) {
        return nmi_err(NM_EINVAL, "tags is NULL but ntags is %zu", ntags);
    }
    nmi_pc_put_varint(w, ntags);
    for (size_t i = 0; i < ntags; i++) {
        size_t n;
        char what[32];
        snprintf(what, sizeof(what), "tag %zu", i);
        int rc = check_text(tags[i], what, &n);
        if (rc) {
            return rc;
        }
        nmi_pc_put_bytes(w, tags[i], n);
    }
    return NM_OK;
}

int
nm_cortex_memories_store(nm_cortex_memories *m, uint64_t id,
                         const char *content, const char *const *tags,
                         size_t ntags, const char *source, uint64_t now_ns,
                         nm_write_token *tok)
{
    int rc = nmi_cx_check(M(m), KIND);
    size_t cl = 0, sl = 0;
    if (!rc) {
        rc = check_text(content, "content", &cl);
    }
    if (!rc) {
        rc = check_text(source ? source : "", "source", &sl);
    }
    if (rc) {
        return rc;
    }
    uint8_t buf[512];
    nmi_pc_w w;
    nmi_cx_payload_begin(&w, buf, sizeof(buf));
    nmi_pc_put_varint(&w, id);
    nmi_pc_put_bytes(&w, content, cl);
    if ((rc = put_tags(&w, tags, ntags)) != NM_OK) {
        nmi_pc_w_free(&w);
        return rc;
    }
    nmi_pc_put_bytes(&w, source ? source : "", sl);
    nmi_pc_put_varint(&w, now_ns);
    return nmi_cx_append(M(m), NM_CORTEX_MEMORY_STORED, &w, tok);
}

int
nm_cortex_memories_retag(nm_cortex_memories *m, uint64_t id,
                         const char *const *tags, size_t ntags,
                         uint64_t now_ns, nm_write_token *tok)
{
    int rc = nmi_cx_check(M(m), KIND);
    if (rc) {
        return rc;
    }
    uint8_t buf[256];
    nmi_pc_w w;
    nmi_cx_payload_begin(&w, buf, sizeof(buf));
    nmi_pc_put_varint(&w, id);
    if ((rc = put_tags(&w, tags, ntags)) != NM_OK) {
        nmi_pc_w_free(&w);
        return rc;
    }
    nmi_pc_put_varint(&w, now_ns);
    return nmi_cx_append(M(m), NM_CORTEX_MEMORY_RETAGGED, &w, tok);
}

static int
write_id_now(nm_cortex_memories *m, uint8_t dispatch, uint64_t id,
             const uint64_t *now_ns, nm_write_token *tok)
{
    int rc = nmi_cx_check(M(m), KIND);
    if (rc) {
        return rc;
    }
    uint8_t buf[64];
    nmi_pc_w w;
    nmi_cx_payload_begin(&w, buf, sizeof(buf));
    nmi_pc_put_varint(&w, id);
    if (now_ns) {
        nmi_pc_put_varint(&w, *now_ns);
    }
    return nmi_cx_append(M(m), dispatch, &w, tok);
}

int
nm_cortex_memories_pin(nm_cortex_memories *m, uint64_t id, uint64_t now_ns,
                       nm_write_token *tok)
{
    return write_id_now(m, NM_CORTEX_MEMORY_PINNED, id, &now_ns, tok);
}

int
nm_cortex_memories_unpin(nm_cortex_memories *m, uint64_t id, uint64_t now_ns,
                         nm_write_token *tok)
{
    return write_id_now(m, NM_CORTEX_MEMORY_UNPINNED, id, &now_ns, tok);
}

int
nm_cortex_memories_delete(nm_cortex_memories *m, uint64_t id,
                          nm_write_token *tok)
{
    return write_id_now(m, NM_CORTEX_MEMORY_DELETED, id, NULL, tok);
}

/* -------------------------------------------------------- waits/status */

int
nm_cortex_memories_wait_for_seq(nm_cortex_memories *m, uint64_t seq,
                                int timeout_ms)
{
    int rc = nmi_cx_check(M(m), KIND);
    return rc ? rc : nmi_cx_wait_seq(M(m), seq, timeout_ms);
}

int
nm_cortex_memories_wait_for_token(nm_cortex_memories *m,
                                  const nm_write_token *tok, int timeout_ms)
{
    int rc = nmi_cx_check(M(m), KIND);
    return rc ? rc : nmi_cx_wait_token(M(m), tok, timeout_ms);
}

int
nm_cortex_memories_status(nm_cortex_memories *m, nm_cortex_status *st)
{
    int rc = nmi_cx_check(M(m), KIND);
    return rc ? rc : nmi_cx_status(M(m), st);
}

int
nm_cortex_memories_snapshot(nm_cortex_memories *m, nm_cortex_snapshot *out)
{
    int rc = nmi_cx_check(M(m), KIND);
    return rc ? rc : nmi_cx_snapshot(M(m), out);
}

/* ------------------------------------------------------------- queries */

void
nm_cortex_memory_filter_init(nm_cortex_memory_filter *f)
{
    if (!f) {
        return;
    }
    memset(f, 0, sizeof(*f));
    f->size = sizeof(*f);
    f->created_before = UINT64_MAX;
    f->updated_before = UINT64_MAX;
    f->pinned = -1;
    f->order_by = NM_CORTEX_ORDER_NONE;
}

static int
check_filter(const nm_cortex_memory_filter *f)
{
    if (f->size != sizeof(*f)) {
        return nmi_err(NM_EINVAL,
                       "nm_cortex_memory_filter.size is %u, expected %zu "
                       "(call nm_cortex_memory_filter_init)",
                       f->size, sizeof(*f));
    }
    if (f->pinned < -1 || f->pinned > 1) {
        return nmi_err(NM_EINVAL, "memory filter pinned %d (-1, 0 or 1)",
                       f->pinned);
    }
    if ((unsigned)f->order_by > NM_CORTEX_UPDATED_DESC) {
        return nmi_err(NM_EINVAL, "memory filter order_by %d",
                       (int)f->order_by);
    }
    if (!f->id_in && f->id_in_count) {
        return nmi_err(NM_EINVAL,
                       "memory filter id_in is NULL but id_in_count is %zu",
                       f->id_in_count);
    }
    for (size_t i = 0; f->any_tags && i < f->any_tags_count; i++) {
        if (!f->any_tags[i]) {
            return nmi_err(NM_EINVAL, "memory filter any_tags[%zu] is NULL",
                           i);
        }
    }
    for (size_t i = 0; f->all_tags && i < f->all_tags_count; i++) {
        if (!f->all_tags[i]) {
            return nmi_err(NM_EINVAL, "memory filter all_tags[%zu] is NULL",
                           i);
        }
    }
    if ((!f->any_tags && f->any_tags_count) ||
        (!f->all_tags && f->all_tags_count)) {
        return nmi_err(NM_EINVAL,
                       "memory filter tag set is NULL with a count");
    }
    return NM_OK;
}

typedef struct mq {
    const nm_cortex_memory_filter *f;
    char *needle;
    size_t nn;
    uint64_t *ids;
    size_t nids;
} mq;

static void
mq_free(mq *q)
{
    free(q->needle);
    free(q->ids);
}

static int
mq_compile(const nm_cortex_memory_filter *f, mq *q)
{
    memset(q, 0, sizeof(*q));
    q->f = f;
    int rc = NM_OK;
    if (f->content_contains) {
        rc = nmi_cx_lower_dup(f->content_contains, &q->needle, &q->nn);
    }
    if (!rc && f->id_in) {
        rc = nmi_cx_ids_prepare(f->id_in, f->id_in_count, &q->ids, &q->nids);
    }
    if (rc) {
        mq_free(q);
    }
    return rc;
}

static bool
str_eq(const nm_cortex_str *a, const char *b)
{
    size_t n = strlen(b);
    return a->len == n && memcmp(a->s, b, n) == 0;
}

static bool
has_tag(const nm_cortex_memory *m, const char *tag)
{
    for (size_t i = 0; i < m->ntags; i++) {
        if (str_eq(&m->tags[i], tag)) {
            return true;
        }
    }
    return false;
}

static bool
mq_match(const mq *q, const nm_cortex_memory *m)
{
    const nm_cortex_memory_filter *f = q->f;
    if (f->pinned >= 0 && (int)m->pinned != f->pinned) {
        return false;
    }
    if (m->created_ns < f->created_after ||
        m->created_ns > f->created_before ||
        m->updated_ns < f->updated_after ||
        m->updated_ns > f->updated_before) {
        return false;
    }
    if (f->source && !str_eq(&m->source, f->source)) {
        return false;
    }
    if (f->tag && !has_tag(m, f->tag)) {
        return false;
    }
    if (f->any_tags) {
        bool any = false;
        for (size_t i = 0; i < f->any_tags_count && !any; i++) {
            any = has_tag(m, f->any_tags[i]);
        }
        if (!any) {
            return false;
        }
    }
    if (f->all_tags) {
        for (size_t i = 0; i < f->all_tags_count; i++) {
            if (!has_tag(m, f->all_tags[i])) {
                return false;
            }
        }
    }
    if (q->needle &&
        !nmi_cx_contains_ci(m->content.s, m->content.len, q->needle, q->nn)) {
        return false;
    }
    return true;
}

static size_t
mq_select(const nmi_cx_table *tab, const mq *q, const nm_cortex_memory **v,
          size_t max)
{
    size_t k = 0;
    if (q->f->id_in) {
        for (size_t i = 0; i < q->nids; i++) {
            const nm_cortex_memory *m = nmi_cx_table_get(tab, q->ids[i]);
            if (m && mq_match(q, m)) {
                if (v) {
                    v[k] = m;
                }
                if (++k == max) {
                    break;
                }
            }
        }
        return k;
    }
    for (size_t i = 0; i < tab->n; i++) {
        const nm_cortex_memory *m = nmi_cx_table_at(tab, i);
        if (mq_match(q, m)) {
            if (v) {
                v[k] = m;
            }
            if (++k == max) {
                break;
            }
        }
    }
    return k;
}

/* One allocation: items, then every tag array, then every string. */
static int
list_build(const nm_cortex_memory *const *src, size_t n,
           nm_cortex_memory_list *out)
{
    out->items = NULL;
    out->count = 0;
    if (n == 0) {
        return NM_OK;
    }
    size_t arrays = 0, strs = 0;
    for (size_t i = 0; i < n; i++) {
        const nm_cortex_memory *m = src[i];
        arrays += m->ntags * sizeof(nm_cortex_str);
        strs += m->content.len + 1 + m->source.len + 1;
        for (size_t k = 0; k < m->ntags; k++) {
            strs += m->tags[k].len + 1;
        }
    }
    size_t bytes = n * sizeof(nm_cortex_memory) + arrays + strs;
    nm_cortex_memory *items = malloc(bytes);
    if (!items) {
        return nmi_err(NM_ENOMEM, "memory list of %zu items", n);
    }
    nm_cortex_str *ap = (nm_cortex_str *)(items + n);
    char *sp = (char *)ap + arrays;
    for (size_t i = 0; i < n; i++) {
        const nm_cortex_memory *m = src[i];
        items[i] = *m;
        memcpy(sp, m->content.s, m->content.len + 1);
        items[i].content.s = sp;
        sp += m->content.len + 1;
        memcpy(sp, m->source.s, m->source.len + 1);
        items[i].source.s = sp;
        sp += m->source.len + 1;
        items[i].tags = m->ntags ? ap : NULL;
        for (size_t k = 0; k < m->ntags; k++) {
            memcpy(sp, m->tags[k].s, m->tags[k].len + 1);
            ap[k].s = sp;
            ap[k].len = m->tags[k].len;
            sp += m->tags[k].len + 1;
        }
        ap += m->ntags;
    }
    out->items = items;
    out->count = n;
    return NM_OK;
}

void
nm_cortex_memory_list_free(nm_cortex_memory_list *l)
{
    if (!l) {
        return;
    }
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static int
find_locked(nmi_cx_model *mo, const nm_cortex_memory_filter *f,
            nm_cortex_memory_list *out)
{
    mq q;
    int rc = mq_compile(f, &q);
    if (rc) {
        return rc;
    }
    const nmi_cx_table *tab = &mo->tab;
    size_t cap = f->id_in ? q.nids : tab->n;
    size_t max = f->order_by == NM_CORTEX_ORDER_NONE ? f->limit : 0;
    if (max && max < cap) {
        cap = max;
    }
    const nm_cortex_memory **v = NULL;
    if (cap) {
        v = malloc(cap * sizeof(*v));
        if (!v) {
            mq_free(&q);
            return nmi_err(NM_ENOMEM, "memory query of %zu candidates", cap);
        }
    }
    size_t k = cap ? mq_select(tab, &q, v, cap) : 0;
    mq_free(&q);
    if (f->order_by != NM_CORTEX_ORDER_NONE) {
        nmi_cx_sort((const void **)v, k, f->order_by,
                    offsetof(nm_cortex_memory, created_ns),
                    offsetof(nm_cortex_memory, updated_ns));
    }
    if (f->limit && k > f->limit) {
        k = f->limit;
    }
    rc = list_build(v, k, out);
    free(v);
    return rc;
}

static int
prepare(nm_cortex_memories *m, const nm_cortex_memory_filter **f,
        nm_cortex_memory_filter *all)
{
    int rc = nmi_cx_check(M(m), KIND);
    if (rc) {
        return rc;
    }
    if (!*f) {
        nm_cortex_memory_filter_init(all);
        *f = all;
    }
    return check_filter(*f);
}

int
nm_cortex_memories_find_many(nm_cortex_memories *m,
                             const nm_cortex_memory_filter *f,
                             nm_cortex_memory_list *out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    out->items = NULL;
    out->count = 0;
    nm_cortex_memory_filter all;
    int rc = prepare(m, &f, &all);
    if (rc) {
        return rc;
    }
    pthread_rwlock_rdlock(&M(m)->rw);
    rc = find_locked(M(m), f, out);
    pthread_rwlock_unlock(&M(m)->rw);
    return rc;
}

/* How many elements match f, counting at most `limit` (0: all): the
 * body of count_where and exists_where. */
static int
count_matching(nm_cortex_memories *m, const nm_cortex_memory_filter *f,
               size_t limit, size_t *out)
{
    nm_cortex_memory_filter all;
    int rc = prepare(m, &f, &all);
    mq q;
    if (rc || (rc = mq_compile(f, &q)) != NM_OK) {
        return rc;
    }
    pthread_rwlock_rdlock(&M(m)->rw);
    *out = mq_select(&M(m)->tab, &q, NULL, limit);
    pthread_rwlock_unlock(&M(m)->rw);
    mq_free(&q);
    return NM_OK;
}

int
nm_cortex_memories_count_where(nm_cortex_memories *m,
                               const nm_cortex_memory_filter *f, size_t *out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    return count_matching(m, f, 0, out);
}

int
nm_cortex_memories_exists_where(nm_cortex_memories *m,
                                const nm_cortex_memory_filter *f, bool *out)
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
nm_cortex_memories_count(nm_cortex_memories *m, size_t *out)
{
    return nmi_cx_count(M(m), KIND, out);
}

int
nm_cortex_memories_find_unique(nm_cortex_memories *m, uint64_t id,
                               nm_cortex_memory_list *out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    out->items = NULL;
    out->count = 0;
    int rc = nmi_cx_check(M(m), KIND);
    if (rc) {
        return rc;
    }
    pthread_rwlock_rdlock(&M(m)->rw);
    const nm_cortex_memory *e = nmi_cx_table_get(&M(m)->tab, id);
    rc = e ? list_build(&e, 1, out) : NM_OK;
    pthread_rwlock_unlock(&M(m)->rw);
    if (!rc && !e) {
        rc = nmi_err(NM_ENOTFOUND, "no memory %llu", (unsigned long long)id);
    }
    return rc;
}

/* --------------------------------------------------------------- views */

const nm_cortex_memories_view *
nm_cortex_memories_read_begin(nm_cortex_memories *m)
{
    return nmi_cx_read_begin(M(m), KIND);
}

const nm_cortex_memory *
nm_cortex_memories_view_get(const nm_cortex_memories_view *v, uint64_t id)
{
    return nmi_cx_view_get(v, id);
}

size_t
nm_cortex_memories_view_count(const nm_cortex_memories_view *v)
{
    return nmi_cx_view_count(v);
}

const nm_cortex_memory *
nm_cortex_memories_view_at(const nm_cortex_memories_view *v, size_t i)
{
    return nmi_cx_view_at(v, i);
}

void
nm_cortex_memories_read_end(const nm_cortex_memories_view *v)
{
    nmi_cx_read_end(v);
}

/* ------------------------------------------------------------- watches */

/* A deep copy of a filter in one block. */
static size_t
strsz(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static char *
put_str(char **sp, const char *s)
{
    if (!s) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    char *d = *sp;
    memcpy(d, s, n);
    *sp += n;
    return d;
}

static nm_cortex_memory_filter *
filter_copy(const nm_cortex_memory_filter *f)
{
    size_t ids = f->id_in ? f->id_in_count * sizeof(uint64_t) : 0;
    size_t ptrs = ((f->any_tags ? f->any_tags_count : 0) +
                   (f->all_tags ? f->all_tags_count : 0)) *
                  sizeof(char *);
    size_t strs =
        strsz(f->content_contains) + strsz(f->source) + strsz(f->tag);
    for (size_t i = 0; f->any_tags && i < f->any_tags_count; i++) {
        strs += strsz(f->any_tags[i]);
    }
    for (size_t i = 0; f->all_tags && i < f->all_tags_count; i++) {
        strs += strsz(f->all_tags[i]);
    }
    nm_cortex_memory_filter *c = malloc(sizeof(*c) + ids + ptrs + strs);
    if (!c) {
        return NULL;
    }
    *c = *f;
    uint8_t *p = (uint8_t *)(c + 1);
    if (f->id_in) {
        if (ids) {
            memcpy(p, f->id_in, ids);
        }
        c->id_in = (const uint64_t *)p;
        p += ids;
    }
    const char **pp = (const char **)p;
    char *sp = (char *)p + ptrs;
    c->content_contains = put_str(&sp, f->content_contains);
    c->source = put_str(&sp, f->source);
    c->tag = put_str(&sp, f->tag);
    if (f->any_tags) {
        for (size_t i = 0; i < f->any_tags_count; i++) {
            pp[i] = put_str(&sp, f->any_tags[i]);
        }
        c->any_tags = pp;
        pp += f->any_tags_count;
    }
    if (f->all_tags) {
        for (size_t i = 0; i < f->all_tags_count; i++) {
            pp[i] = put_str(&sp, f->all_tags[i]);
        }
        c->all_tags = pp;
    }
    if (c->order_by == NM_CORTEX_ORDER_NONE) {
        c->order_by = NM_CORTEX_ID_ASC;
    }
    return c;
}

static void
w_filter_free(void *p)
{
    free(p);
}

static int
w_eval(nmi_cx_model *m, const void *filter, void *out)
{
    return find_locked(m, filter, out);
}

static int
w_dup(const void *src, void *dst)
{
    const nm_cortex_memory_list *s = src;
    const nm_cortex_memory **v = NULL;
    if (s->count) {
        v = malloc(s->count * sizeof(*v));
        if (!v) {
            return nmi_err(NM_ENOMEM, "memory list copy");
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
sv_eq(const nm_cortex_str *a, const nm_cortex_str *b)
{
    return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
}

static bool
w_equal(const void *a, const void *b)
{
    const nm_cortex_memory_list *x = a, *y = b;
    if (x->count != y->count) {
        return false;
    }
    for (size_t i = 0; i < x->count; i++) {
        const nm_cortex_memory *p = &x->items[i], *q = &y->items[i];
        if (p->id != q->id || p->pinned != q->pinned ||
            p->created_ns != q->created_ns || p->updated_ns != q->updated_ns ||
            p->ntags != q->ntags || !sv_eq(&p->content, &q->content) ||
            !sv_eq(&p->source, &q->source)) {
            return false;
        }
        for (size_t k = 0; k < p->ntags; k++) {
            if (!sv_eq(&p->tags[k], &q->tags[k])) {
                return false;
            }
        }
    }
    return true;
}

static void
w_list_free(void *l)
{
    nm_cortex_memory_list_free(l);
}

static const nmi_cx_watch_ops watch_ops = {
    .kind = KIND,
    .list_size = sizeof(nm_cortex_memory_list),
    .eval_locked = w_eval,
    .list_dup = w_dup,
    .equal = w_equal,
    .list_free = w_list_free,
    .filter_free = w_filter_free,
};

static int
watch_open(nm_cortex_memories *m, const nm_cortex_memory_filter *f,
           nm_cortex_memory_list *snapshot, nm_cortex_watch **out)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    *out = NULL;
    nm_cortex_memory_filter all;
    int rc = prepare(m, &f, &all);
    if (rc) {
        return rc;
    }
    nm_cortex_memory_filter *c = filter_copy(f);
    if (!c) {
        return nmi_err(NM_ENOMEM, "watch filter");
    }
    return nmi_cx_watch_open(M(m), &watch_ops, c, snapshot, out);
}

int
nm_cortex_memories_watch(nm_cortex_memories *m,
                         const nm_cortex_memory_filter *f,
                         nm_cortex_watch **out)
{
    return watch_open(m, f, NULL, out);
}

int
nm_cortex_memories_snapshot_and_watch(nm_cortex_memories *m,
                                      const nm_cortex_memory_filter *f,
                                      nm_cortex_memory_list *snapshot,
                                      nm_cortex_watch **out)
{
    if (!snapshot) {
        return nmi_err(NM_EINVAL, "snapshot must not be NULL");
    }
    snapshot->items = NULL;
    snapshot->count = 0;
    return watch_open(m, f, snapshot, out);
}

int
nm_cortex_watch_next_memories(nm_cortex_watch *w, nm_cortex_memory_list *out,
                              int timeout_ms)
{
    if (!out) {
        return nmi_err(NM_EINVAL, "out must not be NULL");
    }
    out->items = NULL;
    out->count = 0;
    return nmi_cx_watch_next(w, KIND, out, timeout_ms);
}
