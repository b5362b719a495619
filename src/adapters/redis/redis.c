/*
 * src/adapters/redis/redis.c - the Redis Streams adapter (hiredis).
 *
 * Write path (dispatcher thread, its own connection): one batch = one
 * MULTI ... EXEC transaction of
 *   XADD {prefix}:shard:{s} [MAXLEN ~ n] * d <record> dedup_id <id>
 * sent in round trips of cfg.pipeline XADDs (append them all, then read
 * their +QUEUED replies), the last round trip carrying EXEC. The batch is
 * stored entirely or not at all, so a batch the adapter gives up on (its
 * events counted dropped by the bus) left nothing behind, and a retried
 * batch is all-or-nothing again. Records and dedup ids are upstream's
 * (adapters/record.h, nm_dedup_id_event). Arguments go through
 * redisAppendCommandArgv: binary-safe, never formatted into a command
 * string.
 *
 * Failure: any error drops the connection (its transaction state is
 * unknown) and the batch is retried on a fresh one with backoff 10 ms
 * doubling to 1 s, until retry_deadline_ms after the start of the outage
 * (the first failure since the last success); then on_batch fails and the
 * bus counts the batch dropped. Once an outage is older than the deadline
 * each batch gets a single attempt, at most one per second (the others
 * fail at once), so a dead server costs no waiting and a live one is
 * found again within a second. Errors a retry cannot fix (WRONGTYPE, ...)
 * fail at once. healthy() is false from the first failure until a batch
 * is stored again. If the connection breaks after Redis executed EXEC but
 * before its reply arrived, the retry stores the batch twice: delivery is
 * at-least-once, and consumers dedup on the dedup_id field
 * (nm_redis_dedup).
 *
 * Read path (poll_shard, any thread): a second connection behind a mutex,
 * XRANGE key (<after> + COUNT n in growing chunks (100 doubling to 1000).
 * Entries without a decodable "d" record (written by something else) are
 * skipped, as upstream does.
 *
 * SIGPIPE: hiredis writes with write(2); around every exchange SIGPIPE is
 * blocked for the calling thread and a SIGPIPE it raised is consumed, so
 * a server that vanishes mid-write never kills the process.
 */
#define _GNU_SOURCE
#include <netmesh/dedup.h>
#include <netmesh/redis.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "adapters/record.h"
#include "adapters/redis/redis_impl.h"
#include "core/core.h"

#define RD_BACKOFF_MIN_NS 10000000ull   /* 10 ms */
#define RD_BACKOFF_MAX_NS 1000000000ull /* 1 s */
#define RD_PROBE_INTERVAL_NS RD_BACKOFF_MAX_NS
#define RD_POLL_FIRST 100
#define RD_POLL_MAX 1000
#define RD_PIPELINE_MAX 1000000u
#define RD_ID_MAX 72 /* nm_dedup_id's worst case is 65 with the NUL */

typedef struct rd_ref {
    size_t rec_off, rec_len;
    size_t id_off, id_len;
} rd_ref;

typedef struct rd_state {
    nmi_redis_url url;
    char *prefix;
    char **keys; /* per shard: "{prefix}:shard:{s}" */
    size_t *keylens;
    uint32_t nshards;
    uint64_t maxlen;
    char maxlen_s[24];
    size_t maxlen_len;
    uint32_t pipeline;
    int connect_ms, command_ms, retry_ms;

    /* Dispatcher side (on_batch only). */
    redisContext *wc;
    nmi_buf recs, ids;
    rd_ref *refs;
    size_t refs_cap;
    size_t encoded;        /* events of the current batch encoded so far */
    uint64_t outage_start; /* mono ns of the first failure; 0 = none */
    uint64_t last_attempt; /* mono ns */

    /* Poll side. */
    pthread_mutex_t pmu;
    redisContext *pc;

    _Atomic bool healthy;
    _Atomic bool shut;
} rd_state;

/* ------------------------------------------------------------ config */

void
nm_redis_config_init(nm_redis_config *cfg)
{
    if (!cfg) {
        return;
    }
    memset(cfg, 0, sizeof(*cfg));
    cfg->size = sizeof(*cfg);
    cfg->url = NULL;
    cfg->prefix = "net";
    cfg->maxlen = 0;
    cfg->pipeline = 1000;
    cfg->connect_timeout_ms = 5000;
    cfg->command_timeout_ms = 1000;
    cfg->retry_deadline_ms = 30000;
}

/* ------------------------------------------------------------ SIGPIPE */

typedef struct rd_sigguard {
    sigset_t old;
    bool pending_before;
} rd_sigguard;

static void
sig_block(rd_sigguard *g)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &g->old);
    g->pending_before = false;
}

/* `failed`: an exchange failed, so a SIGPIPE may be pending: consume it
 * (only if it was not already pending before we blocked). */
static void
sig_restore(rd_sigguard *g, bool failed)
{
    if (failed && !sigismember(&g->old, SIGPIPE)) {
        sigset_t p;
        if (sigpending(&p) == 0 && sigismember(&p, SIGPIPE)) {
            sigset_t s;
            sigemptyset(&s);
            sigaddset(&s, SIGPIPE);
            struct timespec zero = {0, 0};
            int saved = errno;
            while (sigtimedwait(&s, NULL, &zero) < 0 && errno == EINTR) {
            }
            errno = saved;
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ------------------------------------------------------------ errors */

static struct timeval
ms_tv(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/* Map a hiredis context error (after a failed call) to a netmesh code
 * with a detail. Call right after the failure (errno matters). */
static int
ctx_err(const rd_state *st, const redisContext *c, const char *what)
{
    int e = errno;
    if (c->err == REDIS_ERR_IO &&
        (e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT ||
         strstr(c->errstr, "temporarily unavailable") ||
         strstr(c->errstr, "timed out"))) {
        return nmi_err(NM_ETIMEDOUT,
                       "redis adapter: %s on %s timed out after %d ms", what,
                       st->url.redacted, st->command_ms);
    }
    if (c->err == REDIS_ERR_IO || c->err == REDIS_ERR_EOF) {
        return nmi_err(NM_EIO, "redis adapter: %s on %s failed: %s", what,
                       st->url.redacted, c->errstr);
    }
    if (c->err == REDIS_ERR_OOM) {
        return nmi_err(NM_ENOMEM, "redis adapter: %s: out of memory", what);
    }
    return nmi_err(NM_EPROTO, "redis adapter: %s on %s: %s", what,
                   st->url.redacted, c->errstr);
}

/* An error reply Redis may stop giving if we wait (and retry). */
static bool
transient_reply(const char *msg)
{
    static const char *const prefixes[] = {
        "LOADING",  "BUSY",        "TRYAGAIN",   "MASTERDOWN",
        "READONLY", "CLUSTERDOWN", "NOREPLICAS", "OOM",
    };
    for (size_t i = 0; i < NMI_ARRAY_LEN(prefixes); i++) {
        if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ connect */

/* Read one reply; NULL on a context error (*rc set). */
static redisReply *
get_reply(const rd_state *st, redisContext *c, const char *what, int *rc)
{
    void *r = NULL;
    if (redisGetReply(c, &r) != REDIS_OK || !r) {
        *rc = ctx_err(st, c, what);
        return NULL;
    }
    return r;
}

static int
handshake(const rd_state *st, redisContext *c)
{
    const char *argv[3];
    size_t lens[3];
    int n = 0;
    if (st->url.password) {
        int k = 0;
        argv[k] = "AUTH";
        lens[k++] = 4;
        if (st->url.user) {
            argv[k] = st->url.user;
            lens[k++] = strlen(st->url.user);
        }
        argv[k] = st->url.password;
        lens[k++] = strlen(st->url.password);
        redisAppendCommandArgv(c, k, argv, lens);
        n++;
    }
    char db[16];
    if (st->url.db) {
        snprintf(db, sizeof(db), "%d", st->url.db);
        argv[0] = "SELECT";
        lens[0] = 6;
        argv[1] = db;
        lens[1] = strlen(db);
        redisAppendCommandArgv(c, 2, argv, lens);
        n++;
    }
    argv[0] = "PING";
    lens[0] = 4;
    redisAppendCommandArgv(c, 1, argv, lens);
    n++;
    int rc = NM_OK;
    for (int i = 0; i < n; i++) {
        int erc = NM_OK;
        redisReply *r = get_reply(st, c, "handshake", &erc);
        if (!r) {
            return erc;
        }
        bool auth = st->url.password && i == 0;
        bool sel = st->url.db && i == n - 2;
        if (r->type == REDIS_REPLY_ERROR && rc == NM_OK) {
            if (auth || strncmp(r->str, "NOAUTH", 6) == 0 ||
                strncmp(r->str, "WRONGPASS", 9) == 0) {
                rc = nmi_err(NM_EUNAUTHORIZED,
                             "redis adapter: %s refused authentication: %s",
                             st->url.redacted, r->str);
            } else if (sel) {
                rc = nmi_err(NM_EINVAL,
                             "redis adapter: %s: cannot SELECT db %d: %s",
                             st->url.redacted, st->url.db, r->str);
            } else {
                rc = nmi_err(NM_EPROTO, "redis adapter: %s: %s",
                             st->url.redacted, r->str);
            }
        }
        freeReplyObject(r);
    }
    return rc;
}

static int
rd_connect(const rd_state *st, redisContext **out)
{
    *out = NULL;
    redisContext *c = redisConnectWithTimeout(st->url.host, st->url.port,
                                              ms_tv(st->connect_ms));
    if (!c) {
        return nmi_err(NM_ENOMEM, "redis adapter: connection to %s",
                       st->url.redacted);
    }
    if (c->err) {
        int rc =
            nmi_err(NM_ENOTCONN, "redis adapter: cannot connect to %s: %s",
                    st->url.redacted, c->errstr);
        redisFree(c);
        return rc;
    }
    if (redisSetTimeout(c, ms_tv(st->command_ms)) != REDIS_OK) {
        int rc = ctx_err(st, c, "setting the command timeout");
        redisFree(c);
        return rc;
    }
    redisEnableKeepAlive(c);
    rd_sigguard g;
    sig_block(&g);
    int rc = handshake(st, c);
    sig_restore(&g, rc != NM_OK);
    if (rc) {
        redisFree(c);
        return rc;
    }
    *out = c;
    return NM_OK;
}

/* ------------------------------------------------------------ lifetime */

static void
rd_free(rd_state *st)
{
    if (!st) {
        return;
    }
    if (st->wc) {
        redisFree(st->wc);
    }
    if (st->pc) {
        redisFree(st->pc);
    }
    if (st->keys) {
        for (uint32_t i = 0; i < st->nshards; i++) {
            free(st->keys[i]);
        }
    }
    free(st->keys);
    free(st->keylens);
    free(st->prefix);
    free(st->refs);
    nmi_buf_free(&st->recs);
    nmi_buf_free(&st->ids);
    nmi_redis_url_free(&st->url);
    pthread_mutex_destroy(&st->pmu);
    free(st);
}

static int
validate(const nm_redis_config *c)
{
    if (!c) {
        return nmi_err(NM_EINVAL, "redis adapter: adapter_config must point "
                                  "to an nm_redis_config (url is required)");
    }
    if (c->size < sizeof(nm_redis_config)) {
        return nmi_err(NM_EINVAL,
                       "redis adapter: config size %u is too "
                       "small (call nm_redis_config_init)",
                       c->size);
    }
    if (!c->url) {
        return nmi_err(NM_EINVAL, "redis adapter: url is required");
    }
    if (c->prefix && !c->prefix[0]) {
        return nmi_err(NM_EINVAL, "redis adapter: prefix must not be empty");
    }
    if (c->pipeline == 0 || c->pipeline > RD_PIPELINE_MAX) {
        return nmi_err(NM_EINVAL, "redis adapter: pipeline must be 1..%u",
                       RD_PIPELINE_MAX);
    }
    if (c->connect_timeout_ms <= 0) {
        return nmi_err(NM_EINVAL, "redis adapter: connect_timeout_ms must "
                                  "be > 0");
    }
    if (c->command_timeout_ms <= 0) {
        return nmi_err(NM_EINVAL, "redis adapter: command_timeout_ms must "
                                  "be > 0");
    }
    if (c->retry_deadline_ms < 0) {
        return nmi_err(NM_EINVAL, "redis adapter: retry_deadline_ms must "
                                  "be >= 0");
    }
    return NM_OK;
}

static int
rd_init(const void *config, uint32_t shards, void **state)
{
    const nm_redis_config *c = config;
    int rc = validate(c);
    if (rc) {
        return rc;
    }
    rd_state *st = calloc(1, sizeof(*st));
    if (!st) {
        return nmi_err(NM_ENOMEM, "redis adapter");
    }
    pthread_mutex_init(&st->pmu, NULL);
    rc = nmi_redis_url_parse(c->url, &st->url);
    if (rc) {
        rd_free(st);
        return rc;
    }
    st->nshards = shards;
    st->maxlen = c->maxlen;
    st->maxlen_len = (size_t)snprintf(st->maxlen_s, sizeof(st->maxlen_s),
                                      "%llu", (unsigned long long)c->maxlen);
    st->pipeline = c->pipeline;
    st->connect_ms = c->connect_timeout_ms;
    st->command_ms = c->command_timeout_ms;
    st->retry_ms = c->retry_deadline_ms;
    st->prefix = strdup(c->prefix ? c->prefix : "net");
    st->keys = calloc(shards, sizeof(char *));
    st->keylens = calloc(shards, sizeof(size_t));
    if (!st->prefix || !st->keys || !st->keylens) {
        rd_free(st);
        return nmi_err(NM_ENOMEM, "redis adapter");
    }
    for (uint32_t i = 0; i < shards; i++) {
        if (asprintf(&st->keys[i], "%s:shard:%u", st->prefix, i) < 0) {
            st->keys[i] = NULL;
            rd_free(st);
            return nmi_err(NM_ENOMEM, "redis adapter");
        }
        st->keylens[i] = strlen(st->keys[i]);
    }
    /* Fail now, with the URL in the detail, if the server is not there. */
    rc = rd_connect(st, &st->wc);
    if (rc) {
        rd_free(st);
        return rc;
    }
    atomic_store(&st->healthy, true);
    *state = st;
    return NM_OK;
}

/* ------------------------------------------------------------ on_batch */

/* Records and dedup ids are encoded once per batch (a retry reuses them),
 * chunk by chunk: the next chunk is encoded while Redis works on the one
 * just sent. encode_reset starts a batch, encode_upto(n) makes sure
 * events [0, n) are encoded. */
static int
encode_reset(rd_state *st, const nm_batch *b)
{
    if (b->count > st->refs_cap) {
        size_t nc = st->refs_cap ? st->refs_cap : 1024;
        while (nc < b->count) {
            nc *= 2;
        }
        rd_ref *nr = realloc(st->refs, nc * sizeof(*nr));
        if (!nr) {
            return nmi_err(NM_ENOMEM, "redis adapter: batch of %zu events",
                           b->count);
        }
        st->refs = nr;
        st->refs_cap = nc;
    }
    nmi_buf_reset(&st->recs);
    nmi_buf_reset(&st->ids);
    st->encoded = 0;
    return NM_OK;
}

static int
encode_upto(rd_state *st, const nm_batch *b, size_t upto)
{
    char id[RD_ID_MAX];
    for (size_t i = st->encoded; i < upto; i++) {
        const nm_batch_event *e = &b->events[i];
        rd_ref *r = &st->refs[i];
        r->rec_off = st->recs.len;
        if (nmi_record_encode(&st->recs, e->data, e->len, e->timestamp,
                              b->shard) != NM_OK) {
            return nmi_err(NM_ENOMEM, "redis adapter: batch of %zu events",
                           b->count);
        }
        r->rec_len = st->recs.len - r->rec_off;
        int n = nm_dedup_id_event(id, sizeof(id), b->process_nonce, b->shard,
                                  b->events[i].seq);
        if (n < 0) {
            return n;
        }
        r->id_off = st->ids.len;
        r->id_len = (size_t)n;
        if (nmi_buf_append(&st->ids, id, (size_t)n) != NM_OK) {
            return nmi_err(NM_ENOMEM, "redis adapter: batch of %zu events",
                           b->count);
        }
        st->encoded = i + 1;
    }
    return NM_OK;
}

/* One attempt to store the batch as one MULTI/EXEC on st->wc. On failure
 * *retry says whether waiting could help and *broken whether the
 * connection must be dropped. */
static int
write_batch(rd_state *st, const nm_batch *b, bool *retry, bool *broken)
{
    redisContext *c = st->wc;
    *retry = true;
    *broken = true;
    const char *argv[10];
    size_t lens[10];
    int argc0 = 0;
    argv[argc0] = "XADD";
    lens[argc0++] = 4;
    argv[argc0] = st->keys[b->shard];
    lens[argc0++] = st->keylens[b->shard];
    if (st->maxlen) {
        argv[argc0] = "MAXLEN";
        lens[argc0++] = 6;
        argv[argc0] = "~";
        lens[argc0++] = 1;
        argv[argc0] = st->maxlen_s;
        lens[argc0++] = st->maxlen_len;
    }
    argv[argc0] = "*";
    lens[argc0++] = 1;
    argv[argc0] = "d";
    lens[argc0++] = 1;
    argv[argc0 + 1] = "dedup_id";
    lens[argc0 + 1] = 8;
    const int argc = argc0 + 3;

    static const char *const multi[] = {"MULTI"}, *const exec[] = {"EXEC"},
                             *const discard[] = {"DISCARD"};
    static const size_t l5[] = {5}, l4[] = {4}, l7[] = {7};
    if (redisAppendCommandArgv(c, 1, (const char **)multi, l5) != REDIS_OK) {
        return ctx_err(st, c, "MULTI");
    }
    int rc = NM_OK;
    redisReply *r;
    for (size_t start = 0; start < b->count; start += st->pipeline) {
        size_t end =
            b->count - start > st->pipeline ? start + st->pipeline : b->count;
        if ((rc = encode_upto(st, b, end)) != NM_OK) {
            *retry = false;
            return rc;
        }
        for (size_t i = start; i < end; i++) {
            const rd_ref *ref = &st->refs[i];
            argv[argc0] = st->recs.p + ref->rec_off;
            lens[argc0] = ref->rec_len;
            argv[argc0 + 2] = st->ids.p + ref->id_off;
            lens[argc0 + 2] = ref->id_len;
            if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK) {
                return ctx_err(st, c, "XADD");
            }
        }
        bool last = end == b->count;
        bool slow_exec = false;
        if (last) {
            if (redisAppendCommandArgv(c, 1, (const char **)exec, l4) !=
                REDIS_OK) {
                return ctx_err(st, c, "EXEC");
            }
        }
        /* Send this round trip, then encode the next one while Redis
         * works, then read the replies. */
        for (int done = 0; !done;) {
            if (redisBufferWrite(c, &done) != REDIS_OK) {
                return ctx_err(st, c, "XADD");
            }
        }
        if (!last) {
            size_t next =
                b->count - end > st->pipeline ? end + st->pipeline : b->count;
            if ((rc = encode_upto(st, b, next)) != NM_OK) {
                *retry = false;
                return rc;
            }
        }
        if (start == 0) {
            if (!(r = get_reply(st, c, "MULTI", &rc))) {
                return rc;
            }
            bool ok = r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "OK");
            if (!ok) {
                rc =
                    nmi_err(NM_EPROTO, "redis adapter: MULTI on %s: %s",
                            st->url.redacted,
                            r->type == REDIS_REPLY_ERROR ? r->str
                                                         : "unexpected reply");
                *retry =
                    r->type == REDIS_REPLY_ERROR && transient_reply(r->str);
                freeReplyObject(r);
                return rc; /* connection state unknown: dropped */
            }
            freeReplyObject(r);
        }
        /* The +QUEUED acknowledgements of this round trip. */
        for (size_t i = start; i < end; i++) {
            if (!(r = get_reply(st, c, "XADD", &rc))) {
                return rc;
            }
            if (r->type == REDIS_REPLY_ERROR && rc == NM_OK) {
                rc = nmi_err(NM_EPROTO, "redis adapter: XADD to %s on %s: %s",
                             st->keys[b->shard], st->url.redacted, r->str);
                *retry = transient_reply(r->str);
            } else if (rc == NM_OK && (r->type != REDIS_REPLY_STATUS ||
                                       strcmp(r->str, "QUEUED") != 0)) {
                rc = nmi_err(NM_EPROTO,
                             "redis adapter: XADD on %s: "
                             "expected +QUEUED",
                             st->url.redacted);
            }
            freeReplyObject(r);
        }
        if (rc != NM_OK) {
            /* End the transaction so the connection stays usable: EXEC is
             * already on its way (it answers EXECABORT), else DISCARD. */
            char why[256];
            snprintf(why, sizeof(why), "%s", nm_errdetail());
            int drc = NM_OK;
            redisReply *end_r = NULL;
            if (last || redisAppendCommandArgv(c, 1, (const char **)discard,
                                               l7) == REDIS_OK) {
                end_r = get_reply(st, c, last ? "EXEC" : "DISCARD", &drc);
            }
            *broken = end_r == NULL;
            if (end_r) {
                freeReplyObject(end_r);
            }
            return nmi_err(rc, "%s", why); /* get_reply may have
                                               overwritten it */
        }
        if (!last) {
            continue;
        }
        /* EXEC runs every XADD: allow the command timeout per round
         * trip's worth of work. */
        size_t trips = (b->count + st->pipeline - 1) / st->pipeline;
        if (trips > 1) {
            int64_t ms = (int64_t)st->command_ms * (int64_t)trips;
            slow_exec =
                redisSetTimeout(
                    c, ms_tv(ms > 86400000 ? 86400000 : (int)ms)) == REDIS_OK;
        }
        r = get_reply(st, c, "EXEC", &rc);
        if (slow_exec && r) {
            redisSetTimeout(c, ms_tv(st->command_ms));
        }
        if (!r) {
            return rc;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            rc = nmi_err(NM_EPROTO, "redis adapter: EXEC on %s: %s",
                         st->url.redacted, r->str);
            *retry = transient_reply(r->str);
        } else if (r->type != REDIS_REPLY_ARRAY || r->elements != b->count) {
            rc = nmi_err(NM_EPROTO,
                         "redis adapter: EXEC on %s: expected %zu "
                         "results",
                         st->url.redacted, b->count);
        } else {
            for (size_t i = 0; i < r->elements; i++) {
                const redisReply *e = r->element[i];
                if (e->type == REDIS_REPLY_ERROR) {
                    rc = nmi_err(NM_EPROTO,
                                 "redis adapter: XADD to %s on %s: %s",
                                 st->keys[b->shard], st->url.redacted, e->str);
                    *retry = transient_reply(e->str);
                    break;
                }
                if (e->type != REDIS_REPLY_STRING &&
                    e->type != REDIS_REPLY_STATUS) {
                    rc = nmi_err(NM_EPROTO,
                                 "redis adapter: XADD on %s: unexpected "
                                 "result type %d",
                                 st->url.redacted, e->type);
                    break;
                }
            }
        }
        freeReplyObject(r);
        *broken = false; /* the exchange completed */
    }
    return rc;
}

static int
rd_on_batch(void *state, const nm_batch *b)
{
    rd_state *st = state;
    if (b->shard >= st->nshards) {
        return nmi_err(NM_EINVAL, "redis adapter: no shard %u", b->shard);
    }
    if (b->count == 0) {
        return NM_OK;
    }
    if (atomic_load(&st->shut)) {
        return nmi_err(NM_ESHUTDOWN, "redis adapter: shut down");
    }
    int rc = encode_reset(st, b);
    if (rc) {
        return rc;
    }
    uint64_t backoff = RD_BACKOFF_MIN_NS;
    uint64_t deadline_ns = (uint64_t)st->retry_ms * 1000000ull;
    for (;;) {
        uint64_t now = nmi_mono_ns();
        bool expired =
            st->outage_start && now - st->outage_start >= deadline_ns;
        if (expired && now - st->last_attempt < RD_PROBE_INTERVAL_NS) {
            return nmi_err(
                NM_ENOTCONN,
                "redis adapter: %s has failed for %llu ms (past "
                "retry_deadline_ms %d): batch of %zu events "
                "dropped",
                st->url.redacted,
                (unsigned long long)((now - st->outage_start) / 1000000ull),
                st->retry_ms, b->count);
        }
        st->last_attempt = now;
        bool retry = true, broken = true, failed;
        rd_sigguard g;
        sig_block(&g);
        if (!st->wc) {
            rc = rd_connect(st, &st->wc);
        }
        if (st->wc) {
            rc = write_batch(st, b, &retry, &broken);
        }
        failed = rc != NM_OK;
        sig_restore(&g, failed);
        if (!failed) {
            st->outage_start = 0;
            atomic_store(&st->healthy, true);
            return NM_OK;
        }
        if (st->wc && broken) {
            redisFree(st->wc);
            st->wc = NULL;
        }
        atomic_store(&st->healthy, false);
        if (!retry) {
            /* Redis refused this batch (WRONGTYPE, ...): the server is
             * fine, so this is no outage; waiting would not help. */
            return rc;
        }
        now = nmi_mono_ns();
        if (!st->outage_start) {
            st->outage_start = now;
        }
        uint64_t waited = now - st->outage_start;
        if (expired || waited >= deadline_ns) {
            return rc; /* the detail of the last failure */
        }
        uint64_t left = deadline_ns - waited;
        nmi_sleep_ns(backoff < left ? backoff : left);
        backoff =
            backoff * 2 > RD_BACKOFF_MAX_NS ? RD_BACKOFF_MAX_NS : backoff * 2;
    }
}

static int
rd_flush(void *state, int timeout_ms)
{
    /* on_batch returns only once Redis answered EXEC: nothing pending. */
    (void)state;
    (void)timeout_ms;
    return NM_OK;
}

/* ------------------------------------------------------------ poll */

/* One command on the poll connection; reconnects once when the cached
 * connection turns out dead (e.g. the server restarted since). Caller
 * holds pmu. */
static int
poll_cmd(rd_state *st, int argc, const char **argv, const size_t *lens,
         redisReply **out)
{
    int rc = NM_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = false;
        if (!st->pc) {
            rc = rd_connect(st, &st->pc);
            if (rc) {
                return rc;
            }
            fresh = true;
        }
        rd_sigguard g;
        sig_block(&g);
        redisReply *r = redisCommandArgv(st->pc, argc, argv, lens);
        if (!r) {
            rc = ctx_err(st, st->pc, argv[0]);
        }
        sig_restore(&g, r == NULL);
        if (r) {
            if (r->type == REDIS_REPLY_ERROR) {
                rc = nmi_err(NM_EPROTO, "redis adapter: %s on %s: %s", argv[0],
                             st->url.redacted, r->str);
                freeReplyObject(r);
                return rc;
            }
            *out = r;
            return NM_OK;
        }
        redisFree(st->pc);
        st->pc = NULL;
        if (fresh || rc == NM_ETIMEDOUT) {
            break; /* not a stale connection: do not wait twice */
        }
    }
    return rc;
}

static int
rd_poll_shard(void *state, uint16_t shard, const char *after_id,
              nm_poll_sink *sink, bool *has_more)
{
    rd_state *st = state;
    *has_more = false;
    if (shard >= st->nshards) {
        return nmi_err(NM_EINVAL, "redis adapter: no shard %u", shard);
    }
    char start[48];
    if (after_id) {
        bool max;
        if (strlen(after_id) > 41 || !nmi_redis_id_valid(after_id, &max)) {
            return nmi_err(NM_EDECODE,
                           "redis adapter: id '%.41s' is not a Redis "
                           "stream id (ms-seq)",
                           after_id);
        }
        if (max) {
            return NM_OK; /* nothing can follow the largest id */
        }
        snprintf(start, sizeof(start), "(%s", after_id);
    } else {
        strcpy(start, "-");
    }
    pthread_mutex_lock(&st->pmu);
    int rc = NM_OK;
    size_t count = RD_POLL_FIRST;
    for (bool done = false; !done;) {
        char cnt[24];
        snprintf(cnt, sizeof(cnt), "%zu", count);
        const char *argv[6] = {"XRANGE", st->keys[shard], start,
                               "+",      "COUNT",         cnt};
        size_t lens[6] = {6, st->keylens[shard], strlen(start), 1,
                          5, strlen(cnt)};
        redisReply *r = NULL;
        rc = poll_cmd(st, 6, argv, lens, &r);
        if (rc) {
            break;
        }
        if (r->type != REDIS_REPLY_ARRAY) {
            rc = nmi_err(NM_EPROTO,
                         "redis adapter: XRANGE on %s: expected "
                         "an array",
                         st->url.redacted);
            freeReplyObject(r);
            break;
        }
        const char *last = NULL;
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                (e->element[0]->type != REDIS_REPLY_STRING &&
                 e->element[0]->type != REDIS_REPLY_STATUS)) {
                rc = nmi_err(NM_EPROTO,
                             "redis adapter: XRANGE on %s: "
                             "malformed entry",
                             st->url.redacted);
                done = true;
                break;
            }
            const char *id = e->element[0]->str;
            last = id;
            const redisReply *f = e->element[1];
            const redisReply *d = NULL;
            if (f->type == REDIS_REPLY_ARRAY) {
                for (size_t k = 0; k + 1 < f->elements; k += 2) {
                    const redisReply *name = f->element[k];
                    if (name->type == REDIS_REPLY_STRING && name->len == 1 &&
                        name->str[0] == 'd' &&
                        f->element[k + 1]->type == REDIS_REPLY_STRING) {
                        d = f->element[k + 1];
                        break;
                    }
                }
            }
            nmi_record rec;
            if (!d || nmi_record_decode(d->str, d->len, &rec) != NM_OK) {
                continue; /* not one of our records: skipped (upstream) */
            }
            nm_batch_event ev = {.data = rec.raw,
                                 .len = (uint32_t)rec.raw_len,
                                 .seq = 0,
                                 .timestamp = rec.ts};
            int orc = nm_poll_sink_offer(sink, &ev, id);
            nmi_record_fini(&rec);
            if (orc == NM_EAGAIN) {
                *has_more = true;
                done = true;
                break;
            }
            if (orc != NM_OK) {
                rc = orc;
                done = true;
                break;
            }
        }
        if (!done) {
            if (r->elements < count || !last) {
                done = true; /* the stream is exhausted */
            } else if (strlen(last) + 2 > sizeof(start)) {
                rc = nmi_err(NM_EPROTO, "redis adapter: stream id too long");
                done = true;
            } else {
                snprintf(start, sizeof(start), "(%s", last);
                count = count * 2 > RD_POLL_MAX ? RD_POLL_MAX : count * 2;
            }
        }
        freeReplyObject(r);
    }
    pthread_mutex_unlock(&st->pmu);
    return rc;
}

/* ------------------------------------------------------------ the rest */

static void
rd_shutdown(void *state)
{
    rd_state *st = state;
    atomic_store(&st->shut, true);
    atomic_store(&st->healthy, false);
    /* The dispatcher has stopped: its connection is ours to close. The
     * poll connection reconnects lazily if the bus is polled again. */
    if (st->wc) {
        redisFree(st->wc);
        st->wc = NULL;
    }
    pthread_mutex_lock(&st->pmu);
    if (st->pc) {
        redisFree(st->pc);
        st->pc = NULL;
    }
    pthread_mutex_unlock(&st->pmu);
}

static bool
rd_healthy(void *state)
{
    rd_state *st = state;
    return atomic_load(&st->healthy) && !atomic_load(&st->shut);
}

static void
rd_destroy(void *state)
{
    rd_free(state);
}

/* One batch is one MULTI/EXEC: keep batches at one pipeline's worth, so a
 * transaction is a single round trip and never holds the server long. */
static size_t
rd_max_batch(void *state)
{
    return ((rd_state *)state)->pipeline;
}

static const nm_adapter_ops rd_ops = {
    .size = sizeof(nm_adapter_ops),
    .name = "redis",
    .init = rd_init,
    .on_batch = rd_on_batch,
    .flush = rd_flush,
    .poll_shard = rd_poll_shard,
    .shutdown = rd_shutdown,
    .healthy = rd_healthy,
    .destroy = rd_destroy,
    .evicted = NULL, /* MAXLEN ~ trimming is Redis's: not reported */
    .max_batch = rd_max_batch,
};

const nm_adapter_ops *
nm_adapter_redis(void)
{
    return &rd_ops;
}
