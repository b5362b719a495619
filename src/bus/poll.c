/*
 * src/bus/poll.c - nm_bus_poll: per-shard adapter reads merged into one
 * response, the opaque cursor, and the poll sink adapters write into.
 *
 * Cursor = standard base64 of a JSON object mapping the canonical decimal
 * shard id to the id of the last event consumed from that shard, e.g.
 * base64('{"0":"41","3":"17"}'), as upstream. A shard missing from the
 * cursor is read from its oldest retained event.
 */
#define _GNU_SOURCE
#include "bus/bus_impl.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#define NMI_POLL_LIMIT_MAX 100000
#define NMI_CURSOR_MAX 65536

struct nm_poll_sink {
    nm_event *ev;
    size_t n, cap;
    uint8_t *arena;
    size_t alen, acap;
    size_t quota; /* events this shard may still add */
    const nm_filter *filter;
    uint16_t shard;
    bool consumed;
    char last_id[NMI_ID_MAX];
    int err;
};

static int
sink_grow(nm_poll_sink *s, size_t bytes)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        nm_event *ne = realloc(s->ev, nc * sizeof(*ne));
        if (!ne) {
            return NM_ENOMEM;
        }
        s->ev = ne;
        s->cap = nc;
    }
    if (s->alen + bytes > s->acap) {
        size_t nc = s->acap ? s->acap * 2 : 4096;
        while (nc < s->alen + bytes) {
            nc *= 2;
        }
        uint8_t *na = realloc(s->arena, nc);
        if (!na) {
            return NM_ENOMEM;
        }
        s->arena = na;
        s->acap = nc;
    }
    return NM_OK;
}

int
nm_poll_sink_offer(nm_poll_sink *s, const nm_batch_event *e, const char *id)
{
    if (!s || !e || !id) {
        return NM_EINVAL;
    }
    if (s->err) {
        return NM_EAGAIN;
    }
    if (s->quota == 0) {
        return NM_EAGAIN;
    }
    size_t idlen = strlen(id);
    if (idlen >= NMI_ID_MAX) {
        s->err = nmi_err(NM_EPROTO, "adapter id longer than %d bytes",
                         NMI_ID_MAX - 1);
        return NM_EAGAIN;
    }
    memcpy(s->last_id, id, idlen + 1);
    s->consumed = true;
    if (s->filter && !nm_filter_match(s->filter, e->data, e->len)) {
        return NM_OK; /* consumed by the filter: the cursor moves past */
    }
    if (sink_grow(s, (size_t)e->len + 1) != NM_OK) {
        s->err = nmi_err(NM_ENOMEM, "poll response");
        return NM_EAGAIN;
    }
    nm_event *ev = &s->ev[s->n++];
    memcpy(s->arena + s->alen, e->data, e->len);
    s->arena[s->alen + e->len] = '\0';
    ev->data = (const uint8_t *)(uintptr_t)s->alen; /* fixed up later */
    ev->len = e->len;
    ev->seq = e->seq;
    ev->timestamp = e->timestamp;
    ev->shard = s->shard;
    memcpy(ev->id, id, idlen + 1);
    s->alen += (size_t)e->len + 1;
    s->quota--;
    return NM_OK;
}

/* The sink's growing buffers are kept per thread between polls: a poll
 * then makes one allocation (the response) instead of three, and a thread
 * paging through a log does not grow and trim the heap, faulting pages in,
 * on every call. Buffers past NMI_SCRATCH_KEEP are not kept. */
#define NMI_SCRATCH_KEEP (1u << 20)

typedef struct poll_scratch {
    nm_event *ev;
    size_t cap;
    uint8_t *arena;
    size_t acap;
} poll_scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_ok;

static void
scratch_free(void *p)
{
    poll_scratch *sc = p;
    free(sc->ev);
    free(sc->arena);
    free(sc);
}

static void
scratch_init(void)
{
    scratch_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* Lend this thread's buffers to `sink`. */
static void
scratch_take(nm_poll_sink *sink)
{
    pthread_once(&scratch_once, scratch_init);
    poll_scratch *sc = scratch_ok ? pthread_getspecific(scratch_key) : NULL;
    if (sc) {
        sink->ev = sc->ev;
        sink->cap = sc->cap;
        sink->arena = sc->arena;
        sink->acap = sc->acap;
        memset(sc, 0, sizeof(*sc));
    }
}

/* Take them back (or free them if they grew too big to keep). */
static void
scratch_give(nm_poll_sink *sink)
{
    poll_scratch *sc = scratch_ok ? pthread_getspecific(scratch_key) : NULL;
    if (scratch_ok && !sc &&
        sink->cap * sizeof(nm_event) + sink->acap <= NMI_SCRATCH_KEEP) {
        sc = calloc(1, sizeof(*sc));
        if (sc && pthread_setspecific(scratch_key, sc) != 0) {
            free(sc);
            sc = NULL;
        }
    }
    if (sc && !sc->ev && !sc->arena &&
        sink->cap * sizeof(nm_event) + sink->acap <= NMI_SCRATCH_KEEP) {
        sc->ev = sink->ev;
        sc->cap = sink->cap;
        sc->arena = sink->arena;
        sc->acap = sink->acap;
    } else {
        free(sink->ev);
        free(sink->arena);
    }
    sink->ev = NULL;
    sink->arena = NULL;
}

/* ------------------------------------------------------------ cursor */

static bool
canonical_u16(const char *k, uint32_t *out)
{
    size_t n = strlen(k);
    if (n == 0 || n > 5 || (n > 1 && k[0] == '0')) {
        return false;
    }
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < '0' || k[i] > '9') {
            return false;
        }
        v = v * 10 + (uint32_t)(k[i] - '0');
    }
    if (v > 65535) {
        return false;
    }
    *out = v;
    return true;
}

int
nmi_cursor_decode(const char *cursor, uint32_t nshards,
                  char (*ids)[NMI_ID_MAX])
{
    size_t clen = strlen(cursor);
    if (clen == 0 || clen > NMI_CURSOR_MAX) {
        return nmi_err(NM_EDECODE, "cursor must be 1..%d characters",
                       NMI_CURSOR_MAX);
    }
    size_t cap = clen / 4 * 3 + 3;
    unsigned char *bin = malloc(cap + 1);
    if (!bin) {
        return nmi_err(NM_ENOMEM, "cursor");
    }
    size_t blen = 0;
    const char *end = NULL;
    if (sodium_base642bin(bin, cap, cursor, clen, NULL, &blen, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != cursor + clen) {
        free(bin);
        return nmi_err(NM_EDECODE, "cursor is not standard base64");
    }
    json_error_t jerr;
    json_t *obj = json_loadb((const char *)bin, blen, 0, &jerr);
    free(bin);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return nmi_err(NM_EDECODE, "cursor does not hold a JSON object");
    }
    int rc = NM_OK;
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        uint32_t shard;
        if (!canonical_u16(key, &shard)) {
            rc = nmi_err(NM_EDECODE,
                         "cursor key '%.16s' is not a canonical "
                         "u16 shard id",
                         key);
            break;
        }
        if (shard >= nshards) {
            rc = nmi_err(NM_EDECODE,
                         "cursor names shard %u but the bus has "
                         "%u shards",
                         shard, nshards);
            break;
        }
        const char *id = json_string_value(val);
        if (!id || !id[0] || strlen(id) >= NMI_ID_MAX) {
            rc = nmi_err(NM_EDECODE,
                         "cursor id for shard %u must be a "
                         "string of 1..%d bytes",
                         shard, NMI_ID_MAX - 1);
            break;
        }
        strcpy(ids[shard], id);
    }
    json_decref(obj);
    return rc;
}

char *
nmi_cursor_encode(uint32_t nshards, char (*ids)[NMI_ID_MAX])
{
    json_t *obj = json_object();
    if (!obj) {
        return NULL;
    }
    for (uint32_t s = 0; s < nshards; s++) {
        if (ids[s][0]) {
            char key[12];
            snprintf(key, sizeof(key), "%u", s);
            json_object_set_new(obj, key, json_string(ids[s]));
        }
    }
    char *js = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!js) {
        return NULL;
    }
    size_t jl = strlen(js);
    size_t b64len =
        sodium_base64_encoded_len(jl, sodium_base64_VARIANT_ORIGINAL);
    char *out = malloc(b64len);
    if (out) {
        sodium_bin2base64(out, b64len, (const unsigned char *)js, jl,
                          sodium_base64_VARIANT_ORIGINAL);
    }
    free(js);
    return out;
}

/* ------------------------------------------------------------ poll */

void
nm_poll_request_init(nm_poll_request *req)
{
    if (req) {
        memset(req, 0, sizeof(*req));
        req->limit = 100;
        req->ordering = NM_ORDER_NONE;
    }
}

static int
cmp_insertion(const void *a, const void *b)
{
    const nm_event *x = a, *y = b;
    if (x->timestamp != y->timestamp) {
        return x->timestamp < y->timestamp ? -1 : 1;
    }
    if (x->shard != y->shard) {
        return x->shard < y->shard ? -1 : 1;
    }
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int
poll_one(nm_bus *bus, nm_poll_sink *sink, uint16_t shard,
         char (*ids)[NMI_ID_MAX], size_t quota, bool *more)
{
    sink->shard = shard;
    sink->quota = quota;
    sink->consumed = false;
    *more = false;
    int rc = bus->ad->poll_shard(
        bus->ad_state, shard, ids[shard][0] ? ids[shard] : NULL, sink, more);
    if (sink->err) {
        return sink->err;
    }
    if (rc) {
        return rc;
    }
    if (sink->consumed) {
        memcpy(ids[shard], sink->last_id, NMI_ID_MAX);
    }
    return NM_OK;
}

int
nm_bus_poll(nm_bus *bus, const nm_poll_request *req, nm_poll_response *resp)
{
    if (!bus || !req || !resp) {
        return nmi_err(NM_EINVAL, "bus, req and resp must not be NULL");
    }
    if (req->limit == 0 || req->limit > NMI_POLL_LIMIT_MAX) {
        return nmi_err(NM_EINVAL, "limit must be 1..%d (got %zu)",
                       NMI_POLL_LIMIT_MAX, req->limit);
    }
    if ((unsigned)req->ordering > NM_ORDER_INSERTION) {
        return nmi_err(NM_EINVAL, "unknown ordering %d", (int)req->ordering);
    }
    if (req->shards && (req->nshards == 0 || req->nshards > bus->nshards)) {
        return nmi_err(NM_EINVAL, "shards list must hold 1..%u entries",
                       bus->nshards);
    }
    if (!req->shards && req->nshards) {
        return nmi_err(NM_EINVAL, "nshards set but shards is NULL");
    }
    uint32_t ns = bus->nshards;
    char(*ids)[NMI_ID_MAX] = calloc(ns, NMI_ID_MAX);
    uint16_t *order = calloc(ns, sizeof(uint16_t));
    bool *more = calloc(ns, sizeof(bool));
    bool *seen = calloc(ns, sizeof(bool));
    nm_poll_sink sink = {.filter = req->filter};
    scratch_take(&sink);
    int rc = NM_OK;
    if (!ids || !order || !more || !seen) {
        rc = nmi_err(NM_ENOMEM, "poll");
        goto out;
    }
    size_t norder = 0;
    if (req->shards) {
        for (size_t i = 0; i < req->nshards; i++) {
            uint16_t s = req->shards[i];
            if (s >= ns) {
                rc = nmi_err(NM_EINVAL,
                             "shard %u does not exist (the bus "
                             "has %u)",
                             s, ns);
                goto out;
            }
            if (!seen[s]) {
                seen[s] = true;
                order[norder++] = s;
            }
        }
    } else {
        for (uint32_t s = 0; s < ns; s++) {
            order[norder++] = (uint16_t)s;
        }
    }
    if (req->cursor) {
        rc = nmi_cursor_decode(req->cursor, ns, ids);
        if (rc) {
            goto out;
        }
    }

    /* Pass 1: a fair share per shard. Pass 2: fill what is left from the
     * shards that have more. */
    size_t share = (req->limit + norder - 1) / norder;
    for (size_t i = 0; i < norder && sink.n < req->limit; i++) {
        size_t q = req->limit - sink.n < share ? req->limit - sink.n : share;
        rc = poll_one(bus, &sink, order[i], ids, q, &more[order[i]]);
        if (rc) {
            goto out;
        }
    }
    for (size_t i = 0; i < norder && sink.n < req->limit; i++) {
        if (more[order[i]]) {
            rc = poll_one(bus, &sink, order[i], ids, req->limit - sink.n,
                          &more[order[i]]);
            if (rc) {
                goto out;
            }
        }
    }

    /* One allocation: the events, then their bytes. */
    nm_event *events = malloc(sink.n * sizeof(nm_event) + sink.alen + 1);
    char *cursor = nmi_cursor_encode(ns, ids);
    if (!events || !cursor) {
        free(events);
        free(cursor);
        rc = nmi_err(NM_ENOMEM, "poll response");
        goto out;
    }
    uint8_t *bytes = (uint8_t *)&events[sink.n];
    if (sink.alen) {
        memcpy(bytes, sink.arena, sink.alen);
    }
    for (size_t i = 0; i < sink.n; i++) {
        events[i] = sink.ev[i];
        events[i].data = bytes + (uintptr_t)sink.ev[i].data;
    }
    if (req->ordering == NM_ORDER_INSERTION && sink.n > 1) {
        qsort(events, sink.n, sizeof(nm_event), cmp_insertion);
    }
    resp->events = events;
    resp->count = sink.n;
    resp->next_cursor = cursor;
    resp->has_more = false;
    for (size_t i = 0; i < norder; i++) {
        resp->has_more |= more[order[i]];
    }
out:
    scratch_give(&sink);
    free(ids);
    free(order);
    free(more);
    free(seen);
    return rc;
}

void
nm_poll_response_free(nm_poll_response *resp)
{
    if (resp) {
        free(resp->events);
        free(resp->next_cursor);
        memset(resp, 0, sizeof(*resp));
    }
}
