/*
 * src/adapters/jetstream/jetstream.c - the NATS JetStream adapter (nats.c).
 *
 * Shard s is the stream "{prefix}_shard_{s}" capturing the subject
 * "{prefix}.shard.{s}" (upstream's names), created at init when missing.
 *
 * Write path (on_batch, dispatcher thread only): every event of the batch
 * is encoded as upstream's record {"r":..,"t":..,"s":..} and published
 * asynchronously on its shard's subject with the header Nats-Msg-Id =
 * nm_dedup_id_event(nonce, shard, seq). The batch completes when
 * every publish was acknowledged (js_PublishAsyncComplete). Events whose
 * ack failed (error ack, ack time-out, connection lost) are re-published
 * with the SAME Nats-Msg-Id, so the server's duplicate window stores each
 * event once, with backoff 10 ms doubling to 1 s until retry_deadline_ms;
 * then on_batch fails and the bus counts the batch dropped. While the
 * connection is down nothing is published (libnats reconnects on its own,
 * forever); the retry loop just waits for it.
 *
 * Ack bookkeeping: only failures call back (the jsPubAckErr handler); a
 * message that is neither reported failed nor still pending when
 * js_PublishAsyncComplete returns was acknowledged. The handler finds the
 * event by parsing the message's Nats-Msg-Id against the batch in flight,
 * under `mu`. Before on_batch returns, no publish of ours is pending in
 * libnats and no handler runs (see finish_round), so destroy never races a
 * callback.
 *
 * Read path (poll_shard, any thread, concurrently with on_batch): direct
 * gets by stream sequence. A request {"seq":n,"next_by_subj":subject}
 * returns the first stored message at or after n (jumping over deleted or
 * limit-evicted sequences); then up to JS_WINDOW_MAX exact-sequence gets
 * are pipelined on a private inbox. Event id = the decimal stream
 * sequence. Streams created without AllowDirect (by someone else) are read
 * with the slower STREAM.MSG.GET API, one message at a time.
 */
#define _GNU_SOURCE
#include <netmesh/dedup.h>
#include <netmesh/jetstream.h>

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

#include "adapters/record.h"
#include "core/core.h"

#define JS_PREFIX_DEFAULT "net"
#define JS_PREFIX_MAX 200
#define JS_ID_MAX 64
#define JS_BACKOFF_MIN_NS (10ull * 1000000ull)
#define JS_BACKOFF_MAX_NS (1000ull * 1000000ull)
#define JS_RECONNECT_WAIT_MS 100
#define JS_RECONNECT_BUF (32 * 1024 * 1024)
#define JS_WINDOW_MAX 256
#define JS_NS_PER_MS 1000000ll
/* The size of the first published nm_jetstream_config. */
#define JS_CONFIG_V1_SIZE                                                     \
    (offsetof(nm_jetstream_config, retry_deadline_ms) + sizeof(int))

/* Per-event state of the batch in flight. */
enum { EV_TODO = 0, EV_INFLIGHT = 1, EV_DONE = 2, EV_FAILED = 3 };

typedef struct js_state {
    nm_jetstream_config cfg;
    char *url;      /* as configured (may hold credentials) */
    char *url_safe; /* for messages: user info replaced by "***" */
    char *prefix;
    uint32_t nshards;
    char **subject;       /* per shard */
    char **stream;        /* per shard */
    _Atomic bool *direct; /* per shard: the stream allows direct get */

    natsOptions *opts;
    natsConnection *nc;
    jsCtx *pub; /* async publishing: the dispatcher only */
    jsCtx *rd;  /* stream admin and reads: any thread */
    char api_prefix[16];

    _Atomic bool ok; /* false from a failed attempt until a batch succeeds */
    _Atomic bool up;

    /* on_batch scratch (dispatcher only). */
    nmi_buf rec;
    size_t *off;
    size_t offcap;

    /* The batch in flight, shared with the ack error handler under mu. */
    pthread_mutex_t mu;
    bool active;
    char idpfx[JS_ID_MAX]; /* "{nonce hex}:{shard}:" */
    size_t idpfx_len;
    const nm_batch_event *evs; /* the batch's events (seq lookup) */
    uint8_t *ev;               /* EV_* per event */
    size_t evcap;
    size_t count;
    natsStatus last_st; /* the last failure reported by an ack */
    char last_txt[160];
} js_state;

/* ------------------------------------------------------------ config */

void
nm_jetstream_config_init(nm_jetstream_config *cfg)
{
    if (!cfg) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    cfg->url = NULL;
    cfg->prefix = JS_PREFIX_DEFAULT;
    cfg->replicas = 1;
    cfg->dedup_window_ms = 3600000;
    cfg->storage = NM_JS_FILE;
    cfg->max_messages = 0;
    cfg->max_bytes = 0;
    cfg->max_age_ms = 0;
    cfg->connect_timeout_ms = 5000;
    cfg->request_timeout_ms = 5000;
    cfg->retry_deadline_ms = 30000;
}

/* One "nats://[user[:pass]@]host[:port]" (or tls://) of a comma-separated
 * list: [s, e). */
static bool
url_one_ok(const char *s, const char *e)
{
    size_t n = (size_t)(e - s);
    size_t skip;
    if (n > 7 && strncmp(s, "nats://", 7) == 0) {
        skip = 7;
    } else if (n > 6 && strncmp(s, "tls://", 6) == 0) {
        skip = 6;
    } else {
        return false;
    }
    const char *h = s + skip;
    const char *at = NULL;
    for (const char *p = h; p < e; p++) {
        if (*p == '@') {
            at = p;
        }
    }
    if (at) {
        h = at + 1;
    }
    const char *colon = NULL;
    for (const char *p = h; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '/' || c == '?' || c == '#' || c >= 0x7f) {
            return false;
        }
        if (c == ':') {
            colon = p;
        }
    }
    const char *hend = colon ? colon : e;
    if (hend == h) {
        return false; /* no host */
    }
    if (colon) {
        const char *p = colon + 1;
        if (p == e || e - p > 5) {
            return false;
        }
        long port = 0;
        for (; p < e; p++) {
            if (*p < '0' || *p > '9') {
                return false;
            }
            port = port * 10 + (*p - '0');
        }
        if (port < 1 || port > 65535) {
            return false;
        }
    }
    return true;
}

static bool
url_ok(const char *u)
{
    if (!u || !*u || strlen(u) > 4096) {
        return false;
    }
    const char *s = u;
    for (;;) {
        const char *e = strchr(s, ',');
        if (!e) {
            e = s + strlen(s);
        }
        if (!url_one_ok(s, e)) {
            return false;
        }
        if (!*e) {
            return true;
        }
        s = e + 1;
    }
}

/* The URL list with every "user:pass@" replaced by "***@". */
static char *
url_redact(const char *u)
{
    nmi_buf b = {0};
    const char *s = u;
    for (;;) {
        const char *e = strchr(s, ',');
        if (!e) {
            e = s + strlen(s);
        }
        const char *sch = strstr(s, "://");
        const char *at = NULL;
        for (const char *p = s; p < e; p++) {
            if (*p == '@') {
                at = p;
            }
        }
        if (sch && sch < e && at) {
            if (nmi_buf_append(&b, s, (size_t)(sch + 3 - s)) ||
                nmi_buf_append(&b, "***", 3) ||
                nmi_buf_append(&b, at, (size_t)(e - at))) {
                nmi_buf_free(&b);
                return NULL;
            }
        } else if (nmi_buf_append(&b, s, (size_t)(e - s))) {
            nmi_buf_free(&b);
            return NULL;
        }
        if (!*e) {
            break;
        }
        if (nmi_buf_append(&b, ",", 1)) {
            nmi_buf_free(&b);
            return NULL;
        }
        s = e + 1;
    }
    if (!b.p && nmi_buf_append(&b, "", 0)) {
        return NULL;
    }
    return b.p;
}

static bool
prefix_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > JS_PREFIX_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* Validate `in` into `out` (defaults for fields an older, smaller struct
 * does not have). */
static int
config_check(const nm_jetstream_config *in, nm_jetstream_config *out)
{
    if (!in) {
        return nmi_err(NM_EINVAL, "jetstream adapter: adapter_config must "
                                  "point to an nm_jetstream_config (url is "
                                  "required)");
    }
    if (in->size < JS_CONFIG_V1_SIZE || in->size > sizeof(*in)) {
        return nmi_err(NM_EINVAL,
                       "jetstream adapter: size is %u, expected %zu: "
                       "initialise the config with nm_jetstream_config_init",
                       in->size, sizeof(*in));
    }
    nm_jetstream_config_init(out);
    memcpy(out, in, in->size);
    out->size = sizeof(*out);
    const nm_jetstream_config *c = out;
    if (!c->url) {
        return nmi_err(NM_EINVAL, "jetstream adapter: url is required "
                                  "(nats://host:port)");
    }
    if (!url_ok(c->url)) {
        char *safe = url_redact(c->url);
        int rc = nmi_err(NM_EINVAL,
                         "jetstream adapter: url '%.200s' is not a "
                         "nats://host[:port] URL (or a comma-separated list "
                         "of them)",
                         safe ? safe : "?");
        free(safe);
        return rc;
    }
    if (!c->prefix) {
        out->prefix = JS_PREFIX_DEFAULT;
    }
    if (!prefix_ok(c->prefix)) {
        return nmi_err(NM_EINVAL,
                       "jetstream adapter: prefix '%.64s' must be 1..%d of "
                       "[A-Za-z0-9_-] (it names streams and a subject token)",
                       c->prefix, JS_PREFIX_MAX);
    }
    if (c->replicas < 1 || c->replicas > 5) {
        return nmi_err(NM_EINVAL,
                       "jetstream adapter: replicas must be 1..5 "
                       "(got %d)",
                       c->replicas);
    }
    if (c->dedup_window_ms <= 0 ||
        c->dedup_window_ms > INT64_MAX / JS_NS_PER_MS) {
        return nmi_err(NM_EINVAL,
                       "jetstream adapter: dedup_window_ms must be > 0 (got "
                       "%lld)",
                       (long long)c->dedup_window_ms);
    }
    if ((unsigned)c->storage > NM_JS_MEMORY) {
        return nmi_err(NM_EINVAL, "jetstream adapter: unknown storage %d",
                       (int)c->storage);
    }
    if (c->max_messages < 0) {
        return nmi_err(NM_EINVAL,
                       "jetstream adapter: max_messages must be >= 0 (0 = "
                       "unlimited)");
    }
    if (c->max_bytes < 0) {
        return nmi_err(NM_EINVAL, "jetstream adapter: max_bytes must be >= 0 "
                                  "(0 = unlimited)");
    }
    if (c->max_age_ms < 0 || (c->max_age_ms > 0 && c->max_age_ms < 100) ||
        c->max_age_ms > INT64_MAX / JS_NS_PER_MS) {
        return nmi_err(NM_EINVAL,
                       "jetstream adapter: max_age_ms must be 0 (unlimited) "
                       "or >= 100 (got %lld)",
                       (long long)c->max_age_ms);
    }
    if (c->connect_timeout_ms <= 0) {
        return nmi_err(NM_EINVAL,
                       "jetstream adapter: connect_timeout_ms must be > 0");
    }
    if (c->request_timeout_ms <= 0) {
        return nmi_err(NM_EINVAL,
                       "jetstream adapter: request_timeout_ms must be > 0");
    }
    if (c->retry_deadline_ms < 0) {
        return nmi_err(NM_EINVAL,
                       "jetstream adapter: retry_deadline_ms must be >= 0");
    }
    /* The server refuses a duplicate window longer than max age. */
    if (c->max_age_ms > 0 && c->dedup_window_ms > c->max_age_ms) {
        out->dedup_window_ms = c->max_age_ms;
    }
    return NM_OK;
}

/* ------------------------------------------------------------ helpers */

static int
parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20 || (n > 1 && s[0] == '0')) {
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static bool
connected(js_state *st)
{
    return natsConnection_Status(st->nc) == NATS_CONN_STATUS_CONNECTED;
}

/* The libnats error of the last call on this thread, for details. */
static const char *
nats_text(natsStatus s)
{
    const char *t = nats_GetLastError(NULL);
    return t && *t ? t : natsStatus_GetText(s);
}

/* Map a failed request to our codes. */
static int
req_err(js_state *st, natsStatus s, const char *what, const char *name)
{
    switch (s) {
    case NATS_TIMEOUT:
        return nmi_err(NM_ETIMEDOUT,
                       "jetstream %s %s: no reply from %s "
                       "within %d ms",
                       what, name, st->url_safe, st->cfg.request_timeout_ms);
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_NOT_YET_CONNECTED:
    case NATS_IO_ERROR:
        return nmi_err(NM_ENOTCONN, "jetstream %s %s: not connected to %s",
                       what, name, st->url_safe);
    case NATS_NO_RESPONDERS:
        return nmi_err(NM_EPROTO,
                       "jetstream %s %s: no responders at %s (is JetStream "
                       "enabled, nats-server -js?)",
                       what, name, st->url_safe);
    case NATS_NO_MEMORY:
        return nmi_err(NM_ENOMEM, "jetstream %s", what);
    default:
        return nmi_err(NM_EPROTO, "jetstream %s %s at %s: %s", what, name,
                       st->url_safe, nats_text(s));
    }
}

/* ------------------------------------------------------------ streams */

/* Use the shard's stream, creating it when missing. */
static int
ensure_stream(js_state *st, uint32_t shard)
{
    const char *name = st->stream[shard];
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, st->rd, name, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        const char *subjects[1] = {st->subject[shard]};
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        sc.Name = name;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Retention = js_LimitsPolicy;
        sc.Discard = js_DiscardOld;
        sc.Storage = st->cfg.storage == NM_JS_MEMORY ? js_MemoryStorage
                                                     : js_FileStorage;
        sc.Replicas = st->cfg.replicas;
        sc.Duplicates = st->cfg.dedup_window_ms * JS_NS_PER_MS;
        sc.MaxMsgs = st->cfg.max_messages > 0 ? st->cfg.max_messages : -1;
        sc.MaxBytes = st->cfg.max_bytes > 0 ? st->cfg.max_bytes : -1;
        sc.MaxAge = st->cfg.max_age_ms * JS_NS_PER_MS;
        sc.AllowDirect = true;
        jerr = 0;
        s = js_AddStream(&si, st->rd, &sc, NULL, &jerr);
        if (s != NATS_OK && jerr == JSStreamNameExistErr) {
            /* Another process created it first: use theirs. */
            s = js_GetStreamInfo(&si, st->rd, name, NULL, &jerr);
        }
        if (s != NATS_OK) {
            if (s == NATS_ERR || jerr) {
                return nmi_err(NM_EPROTO,
                               "jetstream: cannot create stream %s at %s: "
                               "%s (error %d)",
                               name, st->url_safe, nats_text(s), (int)jerr);
            }
            return req_err(st, s, "create stream", name);
        }
    } else if (s != NATS_OK) {
        return req_err(st, s, "stream info", name);
    }
    atomic_store(&st->direct[shard],
                 si && si->Config && si->Config->AllowDirect);
    jsStreamInfo_Destroy(si);
    return NM_OK;
}

/* ------------------------------------------------------------ acks */

/* Map a Nats-Msg-Id of the batch in flight back to the event's index
 * (caller holds mu). Ids are per event, "{nonce}:{shard}:{seq}:0"
 * (nm_dedup_id_event), so the index is found by the event's seq. */
static bool
id_index_locked(const js_state *st, const char *id, size_t *out)
{
    if (!st->active || strncmp(id, st->idpfx, st->idpfx_len) != 0) {
        return false;
    }
    const char *p = id + st->idpfx_len;
    const char *colon = strchr(p, ':');
    uint64_t seq;
    if (!colon || strcmp(colon, ":0") != 0 ||
        parse_u64(p, (size_t)(colon - p), &seq) != 0) {
        return false;
    }
    size_t lo = 0, hi = st->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (st->evs[mid].seq < seq) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == st->count || st->evs[lo].seq != seq) {
        return false;
    }
    *out = lo;
    return true;
}

/* Called by libnats (its reply thread) for every publish that failed:
 * error ack, no responders, or a time-out. */
static void
on_ack_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    js_state *st = closure;
    const char *id = NULL;
    if (!pae || !pae->Msg ||
        natsMsgHeader_Get(pae->Msg, "Nats-Msg-Id", &id) != NATS_OK || !id) {
        return;
    }
    pthread_mutex_lock(&st->mu);
    size_t i;
    if (id_index_locked(st, id, &i)) {
        if (st->ev[i] == EV_INFLIGHT) {
            st->ev[i] = EV_FAILED;
        }
        st->last_st = pae->Err;
        snprintf(st->last_txt, sizeof(st->last_txt), "%s",
                 pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    }
    pthread_mutex_unlock(&st->mu);
}

static void
on_conn_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
              void *closure)
{
    /* Asynchronous errors (slow consumer, ...) surface as failed acks;
     * installing a handler keeps libnats from printing them. */
    (void)nc;
    (void)sub;
    (void)err;
    (void)closure;
}

/* Mark the event of a pending message failed (caller holds mu). */
static void
mark_failed_locked(js_state *st, natsMsg *m)
{
    const char *id = NULL;
    size_t i;
    if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || !id ||
        !id_index_locked(st, id, &i)) {
        return;
    }
    if (st->ev[i] == EV_INFLIGHT) {
        st->ev[i] = EV_FAILED;
    }
}

/* Wait for the acks of this round. Afterwards nothing of ours is pending in
 * libnats and no ack handler is running. Returns true if every publish was
 * answered in time (answers may still be failures). */
static bool
finish_round(js_state *st)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = st->cfg.request_timeout_ms;
    natsStatus s = js_PublishAsyncComplete(st->pub, &po);
    if (s == NATS_OK) {
        return true;
    }
    /* Take back what is still unanswered: those events failed (they may
     * or may not be stored; the re-send is deduplicated). */
    natsMsgList pl = {0};
    if (js_PublishAsyncGetPendingList(&pl, st->pub) == NATS_OK) {
        pthread_mutex_lock(&st->mu);
        for (int k = 0; k < pl.Count; k++) {
            if (pl.Msgs[k]) {
                mark_failed_locked(st, pl.Msgs[k]);
            }
        }
        st->last_st = NATS_TIMEOUT;
        snprintf(st->last_txt, sizeof(st->last_txt), "no ack within %d ms",
                 st->cfg.request_timeout_ms);
        pthread_mutex_unlock(&st->mu);
        natsMsgList_Destroy(&pl);
    }
    /* A handler that was already running when the list was taken still
     * counts as pending: wait for it to return. */
    po.MaxWait = 1000;
    for (int tries = 0;
         tries < 30 && js_PublishAsyncComplete(st->pub, &po) == NATS_TIMEOUT;
         tries++) {
        natsMsgList more = {0};
        if (js_PublishAsyncGetPendingList(&more, st->pub) == NATS_OK) {
            natsMsgList_Destroy(&more);
        }
    }
    return false;
}

/* ------------------------------------------------------------ on_batch */

static int
grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n <= *cap) {
        return NM_OK;
    }
    size_t nc = *cap ? *cap : 1024;
    while (nc < n) {
        nc *= 2;
    }
    void *np = realloc(*p, nc * elem);
    if (!np) {
        return NM_ENOMEM;
    }
    *p = np;
    *cap = nc;
    return NM_OK;
}

/* Publish every event of `b` that is EV_TODO (marked EV_INFLIGHT first).
 * Returns NM_OK, or the error that stopped the round early (the events not
 * sent are back to EV_TODO); *permanent when retrying cannot help. */
static int
publish_round(js_state *st, const nm_batch *b, bool *permanent)
{
    size_t n = b->count;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < n; i++) {
        if (st->ev[i] == EV_TODO) {
            st->ev[i] = EV_INFLIGHT;
        }
    }
    pthread_mutex_unlock(&st->mu);

    const char *subject = st->subject[b->shard];
    char id[JS_ID_MAX];
    int rc = NM_OK;
    size_t i = 0;
    for (; i < n; i++) {
        /* Only the dispatcher moves EV_TODO <-> EV_INFLIGHT, and no handler
         * of an earlier round runs any more (finish_round). */
        if (st->ev[i] != EV_INFLIGHT) {
            continue;
        }
        int idlen = nm_dedup_id_event(id, sizeof(id), b->process_nonce,
                                      b->shard, b->events[i].seq);
        if (idlen < 0) {
            *permanent = true;
            rc = idlen;
            break;
        }
        natsMsg *m = NULL;
        size_t len = st->off[i + 1] - st->off[i];
        natsStatus s = natsMsg_Create(&m, subject, NULL,
                                      st->rec.p + st->off[i], (int)len);
        if (s == NATS_OK) {
            s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
        }
        if (s == NATS_OK) {
            s = js_PublishMsgAsync(st->pub, &m, NULL);
        }
        if (s != NATS_OK) {
            natsMsg_Destroy(m);
            if (s == NATS_MAX_PAYLOAD) {
                *permanent = true;
                rc = nmi_err(NM_ETOOBIG,
                             "jetstream: a record of %zu bytes exceeds the "
                             "server's max_payload at %s",
                             len, st->url_safe);
            } else if (s == NATS_NO_MEMORY) {
                rc = nmi_err(NM_ENOMEM, "jetstream publish");
            } else {
                rc = req_err(st, s, "publish to", subject);
            }
            break;
        }
    }
    if (i < n) {
        pthread_mutex_lock(&st->mu);
        for (; i < n; i++) {
            if (st->ev[i] == EV_INFLIGHT) {
                st->ev[i] = EV_TODO;
            }
        }
        pthread_mutex_unlock(&st->mu);
    }
    return rc;
}

static int
js_on_batch(void *state, const nm_batch *b)
{
    js_state *st = state;
    if (b->shard >= st->nshards) {
        return nmi_err(NM_EINVAL, "jetstream adapter: no shard %u", b->shard);
    }
    if (b->count == 0) {
        return NM_OK;
    }
    size_t n = b->count;
    /* Encode every record once; retries re-send the same bytes. */
    if (grow((void **)&st->off, &st->offcap, n + 1, sizeof(size_t))) {
        return nmi_err(NM_ENOMEM, "jetstream batch");
    }
    nmi_buf_reset(&st->rec);
    for (size_t i = 0; i < n; i++) {
        const nm_batch_event *e = &b->events[i];
        st->off[i] = st->rec.len;
        if (nmi_record_encode(&st->rec, e->data, e->len, e->timestamp,
                              b->shard)) {
            return nmi_err(NM_ENOMEM, "jetstream batch");
        }
    }
    st->off[n] = st->rec.len;

    /* Install the batch for the ack handler. */
    char id0[JS_ID_MAX];
    int idlen =
        snprintf(id0, sizeof(id0),
                 "%llx:%u:", (unsigned long long)b->process_nonce, b->shard);
    if (idlen < 2 || (size_t)idlen >= sizeof(id0)) {
        return nmi_err(NM_EINTERNAL, "dedup id prefix");
    }
    pthread_mutex_lock(&st->mu);
    if (grow((void **)&st->ev, &st->evcap, n, 1)) {
        pthread_mutex_unlock(&st->mu);
        return nmi_err(NM_ENOMEM, "jetstream batch");
    }
    memset(st->ev, EV_TODO, n);
    memcpy(st->idpfx, id0, (size_t)idlen + 1);
    st->idpfx_len = (size_t)idlen;
    st->evs = b->events;
    st->count = n;
    st->last_st = NATS_OK;
    st->last_txt[0] = '\0';
    st->active = true;
    pthread_mutex_unlock(&st->mu);

    uint64_t deadline =
        nmi_mono_ns() + (uint64_t)st->cfg.retry_deadline_ms * 1000000ull;
    uint64_t backoff = JS_BACKOFF_MIN_NS;
    size_t done = 0;
    int rc = NM_OK;
    for (;;) {
        bool permanent = false;
        if (!connected(st)) {
            /* libnats is reconnecting: publishing now would only fill its
             * reconnect buffer. Wait for the server instead. */
            rc = nmi_err(NM_ENOTCONN,
                         "jetstream: not connected to %s (retrying until "
                         "retry_deadline_ms)",
                         st->url_safe);
        } else {
            rc = publish_round(st, b, &permanent);
            bool answered = finish_round(st);
            pthread_mutex_lock(&st->mu);
            size_t failed = 0;
            for (size_t i = 0; i < n; i++) {
                if (st->ev[i] == EV_INFLIGHT) {
                    st->ev[i] = EV_DONE;
                    done++;
                } else if (st->ev[i] == EV_FAILED) {
                    st->ev[i] = EV_TODO;
                    failed++;
                }
            }
            natsStatus last = st->last_st;
            char txt[sizeof(st->last_txt)];
            memcpy(txt, st->last_txt, sizeof(txt));
            pthread_mutex_unlock(&st->mu);
            if (done == n) {
                rc = NM_OK;
                break;
            }
            if (rc == NM_OK && failed > 0) {
                if (!answered || last == NATS_TIMEOUT) {
                    rc = nmi_err(NM_ETIMEDOUT,
                                 "jetstream: %zu of %zu events of shard %u "
                                 "not acknowledged by %s: %s",
                                 failed, n, b->shard, st->url_safe, txt);
                } else if (last == NATS_NO_RESPONDERS) {
                    rc = nmi_err(NM_ENOTCONN,
                                 "jetstream: no stream answers on %s at %s",
                                 st->subject[b->shard], st->url_safe);
                } else {
                    rc = nmi_err(NM_EIO,
                                 "jetstream: %zu of %zu events of shard %u "
                                 "refused by %s: %s",
                                 failed, n, b->shard, st->url_safe, txt);
                }
            }
            if (last == NATS_NO_RESPONDERS && connected(st)) {
                /* The stream is gone (deleted?): create it again. */
                (void)ensure_stream(st, b->shard);
            }
        }
        atomic_store(&st->ok, false);
        uint64_t now = nmi_mono_ns();
        if (permanent || now >= deadline || !atomic_load(&st->up)) {
            break;
        }
        uint64_t left = deadline - now;
        nmi_sleep_ns(backoff < left ? backoff : left);
        backoff =
            backoff * 2 > JS_BACKOFF_MAX_NS ? JS_BACKOFF_MAX_NS : backoff * 2;
    }
    pthread_mutex_lock(&st->mu);
    st->active = false;
    pthread_mutex_unlock(&st->mu);
    if (rc == NM_OK) {
        atomic_store(&st->ok, true);
        return NM_OK;
    }
    /* Given up: report how many were not acknowledged, so the bus counts
     * exactly those dropped (an event whose ack was lost in a crash of the
     * connection may still be stored: dropped can over-count, never
     * under-count). */
    return done > 0 && done < n ? (int)(n - done) : rc;
}

static int
js_flush(void *state, int timeout_ms)
{
    /* on_batch returns only once its acks arrived: nothing is buffered. */
    (void)state;
    (void)timeout_ms;
    return NM_OK;
}

/* ------------------------------------------------------------ poll */

/* Offer one stored message with stream sequence `seq`. Returns NM_OK
 * (consumed, or skipped because it is not one of our records), or
 * NM_EAGAIN (the sink is full). */
static int
offer_msg(natsMsg *m, uint64_t seq, nm_poll_sink *sink)
{
    nmi_record r;
    const char *data = natsMsg_GetData(m);
    int len = natsMsg_GetDataLength(m);
    if (!data || len <= 0 || nmi_record_decode(data, (size_t)len, &r)) {
        /* Not a record (someone else published on our subject): there is
         * nothing to hand out; the cursor moves past it with the next
         * event offered. */
        return NM_OK;
    }
    nm_batch_event ev = {
        .data = r.raw,
        .len = (uint32_t)r.raw_len,
        .seq = seq,
        .timestamp = r.ts,
    };
    char id[24];
    snprintf(id, sizeof(id), "%llu", (unsigned long long)seq);
    int rc = nm_poll_sink_offer(sink, &ev, id);
    nmi_record_fini(&r);
    return rc == NM_OK ? NM_OK : NM_EAGAIN;
}

/* The stream sequence of a direct-get reply, or 0 when it is not a
 * message (404 and other status replies carry no Nats-Sequence). */
static uint64_t
reply_seq(natsMsg *m)
{
    const char *v = NULL;
    uint64_t seq = 0;
    if (natsMsgHeader_Get(m, "Nats-Sequence", &v) != NATS_OK || !v ||
        parse_u64(v, strlen(v), &seq) != 0) {
        return 0;
    }
    return seq;
}

/* A direct-get reply that is neither a message nor "not found". */
static bool
reply_is_error(natsMsg *m)
{
    const char *v = NULL;
    if (natsMsg_IsNoResponders(m)) {
        return true;
    }
    if (natsMsgHeader_Get(m, "Status", &v) == NATS_OK && v) {
        return strcmp(v, "404") != 0;
    }
    return false;
}

/* Direct get: first message at or after `from`. *m NULL = none. */
static int
get_next(js_state *st, uint16_t shard, uint64_t from, natsMsg **m,
         uint64_t *seq)
{
    jsDirectGetMsgOptions d;
    jsDirectGetMsgOptions_Init(&d);
    d.Sequence = from;
    d.NextBySubject = st->subject[shard];
    *m = NULL;
    natsStatus s = js_DirectGetMsg(m, st->rd, st->stream[shard], NULL, &d);
    if (s == NATS_NOT_FOUND) {
        *m = NULL;
        return NM_OK;
    }
    if (s != NATS_OK) {
        *m = NULL;
        return req_err(st, s, "read from stream", st->stream[shard]);
    }
    *seq = reply_seq(*m);
    if (*seq < from) {
        natsMsg_Destroy(*m);
        *m = NULL;
        return nmi_err(NM_EPROTO,
                       "jetstream: direct get from %s at %s returned no "
                       "usable sequence",
                       st->stream[shard], st->url_safe);
    }
    return NM_OK;
}

/* A private inbox for pipelined direct-get replies ("<inbox>.<slot>"). */
typedef struct js_reader {
    natsInbox *inbox;
    natsSubscription *sub;
} js_reader;

static int
reader_open(js_state *st, js_reader *r)
{
    char wild[300];
    natsStatus s = natsInbox_Create(&r->inbox);
    if (s == NATS_OK) {
        snprintf(wild, sizeof(wild), "%s.*", (const char *)r->inbox);
        s = natsConnection_SubscribeSync(&r->sub, st->nc, wild);
    }
    if (s == NATS_OK) {
        s = natsSubscription_SetPendingLimits(r->sub, -1, -1);
    }
    return s == NATS_OK ? NM_OK : req_err(st, s, "subscribe", "inbox");
}

static void
reader_close(js_reader *r)
{
    if (r->sub) {
        natsSubscription_Unsubscribe(r->sub);
        natsSubscription_Destroy(r->sub);
    }
    natsInbox_Destroy(r->inbox);
    memset(r, 0, sizeof(*r));
}

/* Pipelined exact-sequence direct gets of [from, from + w); offers them in
 * order until a missing one (a gap or the end), a full sink, or the
 * window's end. *next = the first sequence not consumed; *stop = the sink
 * is full. Every reply is collected before returning. */
static int
get_window(js_state *st, js_reader *r, uint16_t shard, uint64_t from, int w,
           nm_poll_sink *sink, uint64_t *next, bool *stop)
{
    natsMsg *got[JS_WINDOW_MAX];
    memset(got, 0, sizeof(natsMsg *) * (size_t)w);
    *next = from;
    *stop = false;
    char subj[300], req[64], reply[300];
    snprintf(subj, sizeof(subj), "%s.DIRECT.GET.%s", st->api_prefix,
             st->stream[shard]);
    natsStatus s = NATS_OK;
    int sent = 0;
    for (; sent < w; sent++) {
        snprintf(reply, sizeof(reply), "%s.%d", (const char *)r->inbox, sent);
        int rl = snprintf(req, sizeof(req), "{\"seq\":%llu}",
                          (unsigned long long)(from + (uint64_t)sent));
        s = natsConnection_PublishRequest(st->nc, subj, reply, req, rl);
        if (s != NATS_OK) {
            break;
        }
    }
    int rc = NM_OK;
    if (s != NATS_OK) {
        /* Replies to what was sent may still come: the caller closes the
         * reader on error, so none is misread later. */
        return req_err(st, s, "read from stream", st->stream[shard]);
    }
    /* Collect the replies (in any order), each into its slot. */
    uint64_t dl = nmi_deadline_ms(st->cfg.request_timeout_ms);
    for (int k = 0; k < sent;) {
        natsMsg *m = NULL;
        int left = nmi_ms_left(dl);
        s = natsSubscription_NextMsg(&m, r->sub, left > 0 ? left : 1);
        if (s != NATS_OK) {
            rc = req_err(st, s, "read from stream", st->stream[shard]);
            break;
        }
        const char *rs = natsMsg_GetSubject(m);
        const char *dot = rs ? strrchr(rs, '.') : NULL;
        uint64_t slot;
        if (!dot || parse_u64(dot + 1, strlen(dot + 1), &slot) != 0 ||
            slot >= (uint64_t)sent || got[slot]) {
            natsMsg_Destroy(m); /* not one of ours: keep waiting */
            continue;
        }
        if (reply_is_error(m)) {
            natsMsg_Destroy(m);
            rc = nmi_err(NM_EPROTO,
                         "jetstream: direct get from %s at %s failed",
                         st->stream[shard], st->url_safe);
            break;
        }
        got[slot] = m;
        k++;
    }
    if (rc == NM_OK) {
        for (int k = 0; k < sent; k++) {
            uint64_t want = from + (uint64_t)k;
            if (reply_seq(got[k]) != want) {
                break; /* a gap or the end: resume with next_by_subj */
            }
            /* An exact-sequence get ignores the subject: hand out only
             * messages of our subject (a foreign stream may hold others). */
            const char *msubj = NULL;
            bool ours =
                natsMsgHeader_Get(got[k], "Nats-Subject", &msubj) != NATS_OK ||
                !msubj || strcmp(msubj, st->subject[shard]) == 0;
            if (ours && offer_msg(got[k], want, sink) != NM_OK) {
                *stop = true;
                break;
            }
            *next = want + 1;
        }
    }
    for (int k = 0; k < w; k++) {
        natsMsg_Destroy(got[k]);
    }
    return rc;
}

static int
poll_direct(js_state *st, uint16_t shard, uint64_t from, nm_poll_sink *sink,
            bool *has_more)
{
    js_reader r = {0};
    int w = 8;
    int rc = NM_OK;
    for (;;) {
        natsMsg *m = NULL;
        uint64_t seq = 0;
        rc = get_next(st, shard, from, &m, &seq);
        if (rc != NM_OK || !m) {
            break; /* an error, or nothing at or after `from` */
        }
        rc = offer_msg(m, seq, sink);
        natsMsg_Destroy(m);
        if (rc != NM_OK) {
            rc = NM_OK;
            *has_more = true;
            break;
        }
        from = seq + 1;
        /* Then pipelined windows while the sequences are contiguous. */
        if (!r.sub && (rc = reader_open(st, &r)) != NM_OK) {
            break;
        }
        bool stop = false;
        for (;;) {
            uint64_t next;
            rc = get_window(st, &r, shard, from, w, sink, &next, &stop);
            if (rc != NM_OK || stop) {
                break;
            }
            bool whole = next == from + (uint64_t)w;
            from = next;
            if (!whole) {
                break; /* a gap or the end */
            }
            w = w * 2 > JS_WINDOW_MAX ? JS_WINDOW_MAX : w * 2;
        }
        if (rc != NM_OK) {
            break;
        }
        if (stop) {
            *has_more = true;
            break;
        }
    }
    reader_close(&r);
    return rc;
}

/* Streams without AllowDirect: STREAM.MSG.GET by exact sequence, jumping
 * gaps with the stream's first/last sequence. */
static int
poll_msg_get(js_state *st, uint16_t shard, uint64_t from, nm_poll_sink *sink,
             bool *has_more)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s =
        js_GetStreamInfo(&si, st->rd, st->stream[shard], NULL, &jerr);
    if (s != NATS_OK) {
        return req_err(st, s, "stream info", st->stream[shard]);
    }
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    if (from < first) {
        from = first;
    }
    for (uint64_t seq = from; seq <= last && seq != 0; seq++) {
        natsMsg *m = NULL;
        jerr = 0;
        s = js_GetMsg(&m, st->rd, st->stream[shard], seq, NULL, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
            natsMsg_Destroy(m);
            continue; /* deleted or evicted */
        }
        if (s != NATS_OK) {
            natsMsg_Destroy(m);
            return req_err(st, s, "read from stream", st->stream[shard]);
        }
        int rc = offer_msg(m, seq, sink);
        natsMsg_Destroy(m);
        if (rc != NM_OK) {
            *has_more = true;
            return NM_OK;
        }
    }
    return NM_OK;
}

static int
js_poll_shard(void *state, uint16_t shard, const char *after_id,
              nm_poll_sink *sink, bool *has_more)
{
    js_state *st = state;
    *has_more = false;
    if (shard >= st->nshards) {
        return nmi_err(NM_EINVAL, "jetstream adapter: no shard %u", shard);
    }
    uint64_t from = 1;
    if (after_id) {
        uint64_t after;
        if (parse_u64(after_id, strlen(after_id), &after) != 0 ||
            after == UINT64_MAX) {
            return nmi_err(NM_EDECODE,
                           "jetstream adapter: id '%.23s' is not a decimal "
                           "stream sequence",
                           after_id);
        }
        from = after + 1;
    }
    if (!connected(st)) {
        return nmi_err(NM_ENOTCONN, "jetstream: not connected to %s",
                       st->url_safe);
    }
    return atomic_load(&st->direct[shard])
               ? poll_direct(st, shard, from, sink, has_more)
               : poll_msg_get(st, shard, from, sink, has_more);
}

/* ------------------------------------------------------------ lifetime */

static void
js_free(js_state *st)
{
    if (!st) {
        return;
    }
    if (st->pub) {
        jsCtx_Destroy(st->pub);
    }
    if (st->rd) {
        jsCtx_Destroy(st->rd);
    }
    if (st->nc) {
        natsConnection_Destroy(st->nc);
    }
    if (st->opts) {
        natsOptions_Destroy(st->opts);
    }
    for (uint32_t i = 0; i < st->nshards; i++) {
        if (st->subject) {
            free(st->subject[i]);
        }
        if (st->stream) {
            free(st->stream[i]);
        }
    }
    free(st->subject);
    free(st->stream);
    free(st->direct);
    free(st->url);
    free(st->url_safe);
    free(st->prefix);
    nmi_buf_free(&st->rec);
    free(st->off);
    free(st->ev);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static int
connect_server(js_state *st)
{
    natsStatus s = natsOptions_Create(&st->opts);
    if (s == NATS_OK) {
        s = natsOptions_SetURL(st->opts, st->url);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetTimeout(st->opts, st->cfg.connect_timeout_ms);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetName(st->opts, "netmesh");
    }
    /* Reconnect forever, quickly; requests fail fast while disconnected. */
    if (s == NATS_OK) {
        s = natsOptions_SetAllowReconnect(st->opts, true);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetMaxReconnect(st->opts, INT_MAX);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetReconnectWait(st->opts, JS_RECONNECT_WAIT_MS);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetReconnectBufSize(st->opts, JS_RECONNECT_BUF);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetFailRequestsOnDisconnect(st->opts, true);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetPingInterval(st->opts, 10000);
    }
    if (s == NATS_OK) {
        s = natsOptions_SetErrorHandler(st->opts, on_conn_error, st);
    }
    if (s != NATS_OK) {
        return nmi_err(s == NATS_NO_MEMORY ? NM_ENOMEM : NM_EINVAL,
                       "jetstream adapter: nats options: %s", nats_text(s));
    }
    s = natsConnection_Connect(&st->nc, st->opts);
    if (s != NATS_OK) {
        st->nc = NULL;
        return nmi_err(NM_ENOTCONN,
                       "jetstream adapter: cannot connect to %s: %s",
                       st->url_safe, natsStatus_GetText(s));
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = st->cfg.request_timeout_ms;
    s = natsConnection_JetStream(&st->rd, st->nc, &jo);
    if (s == NATS_OK) {
        jsOptions_Init(&jo);
        jo.Wait = st->cfg.request_timeout_ms;
        jo.PublishAsync.ErrHandler = on_ack_error;
        jo.PublishAsync.ErrHandlerClosure = st;
        s = natsConnection_JetStream(&st->pub, st->nc, &jo);
    }
    if (s != NATS_OK) {
        return nmi_err(NM_ENOMEM, "jetstream context: %s", nats_text(s));
    }
    snprintf(st->api_prefix, sizeof(st->api_prefix), "$JS.API");
    return NM_OK;
}

static int
js_init(const void *config, uint32_t shards, void **state)
{
    nm_jetstream_config c;
    int rc = config_check(config, &c);
    if (rc) {
        return rc;
    }
    js_state *st = calloc(1, sizeof(*st));
    if (!st) {
        return nmi_err(NM_ENOMEM, "jetstream adapter");
    }
    pthread_mutex_init(&st->mu, NULL);
    st->cfg = c;
    st->url = strdup(c.url);
    st->url_safe = url_redact(c.url);
    st->prefix = strdup(c.prefix);
    st->subject = calloc(shards, sizeof(char *));
    st->stream = calloc(shards, sizeof(char *));
    st->direct = calloc(shards, sizeof(*st->direct));
    if (!st->url || !st->url_safe || !st->prefix || !st->subject ||
        !st->stream || !st->direct) {
        js_free(st);
        return nmi_err(NM_ENOMEM, "jetstream adapter");
    }
    st->cfg.url = st->url;
    st->cfg.prefix = st->prefix;
    st->nshards = shards;
    for (uint32_t i = 0; i < shards; i++) {
        if (asprintf(&st->subject[i], "%s.shard.%u", st->prefix, i) < 0) {
            st->subject[i] = NULL;
        }
        if (asprintf(&st->stream[i], "%s_shard_%u", st->prefix, i) < 0) {
            st->stream[i] = NULL;
        }
        if (!st->subject[i] || !st->stream[i]) {
            js_free(st);
            return nmi_err(NM_ENOMEM, "jetstream adapter");
        }
    }
    rc = connect_server(st);
    for (uint32_t i = 0; rc == NM_OK && i < shards; i++) {
        rc = ensure_stream(st, i);
    }
    if (rc) {
        js_free(st);
        return rc;
    }
    atomic_init(&st->ok, true);
    atomic_init(&st->up, true);
    *state = st;
    return NM_OK;
}

static void
js_shutdown(void *state)
{
    js_state *st = state;
    atomic_store(&st->up, false);
}

static bool
js_healthy(void *state)
{
    js_state *st = state;
    return atomic_load(&st->up) && atomic_load(&st->ok) && connected(st);
}

static void
js_destroy(void *state)
{
    js_free(state);
}

static const nm_adapter_ops js_ops = {
    .size = sizeof(nm_adapter_ops),
    .name = "jetstream",
    .init = js_init,
    .on_batch = js_on_batch,
    .flush = js_flush,
    .poll_shard = js_poll_shard,
    .shutdown = js_shutdown,
    .healthy = js_healthy,
    .destroy = js_destroy,
    .evicted = NULL,
};

const nm_adapter_ops *
nm_adapter_jetstream(void)
{
    return &js_ops;
}
