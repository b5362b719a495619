/*
 * tests/integration/test_redis.c - the Redis Streams adapter against a
 * real redis-server (tests/servers.h): round trip, upstream record shape,
 * MAXLEN, two processes on one bus, crash-restart dedup, the server killed
 * and restarted mid-stream, AUTH/db, poll edge cases.
 *
 * Forked children (producers) never call Criterion: they report through
 * their exit status and a pipe.
 */
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bus_helpers.h"
#include "servers.h"

/* ------------------------------------------------------------ helpers */

static void
redis_defaults(nm_redis_config *rc, const nmt_server *s, const char *prefix)
{
    nm_redis_config_init(rc);
    rc->url = s->url;
    rc->prefix = prefix;
}

static void
bus_defaults(nm_bus_config *cfg, const nm_redis_config *rc, uint32_t shards)
{
    nm_bus_config_init(cfg);
    cfg->shards = shards;
    cfg->adapter = nm_adapter_redis();
    cfg->adapter_config = rc;
}

static redisContext *
raw_connect(const nmt_server *s)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    cr_assert(c && !c->err, "raw connect: %s", c ? c->errstr : "oom");
    redisSetTimeout(c, tv);
    return c;
}

static redisReply *
raw_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "raw command '%s': %s", fmt, c->errstr);
    return r;
}

static long long
raw_xlen(redisContext *c, const char *key)
{
    redisReply *r = raw_cmd(c, "XLEN %s", key);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* Field `name` of an XRANGE entry's field list, or NULL. */
static const redisReply *
field(const redisReply *fields, const char *name)
{
    for (size_t k = 0; k + 1 < fields->elements; k += 2) {
        if (!strcmp(fields->element[k]->str, name)) {
            return fields->element[k + 1];
        }
    }
    return NULL;
}

typedef void (*entry_fn)(const char *id, const redisReply *fields, void *arg);

/* Every entry of `key`, oldest first, paging with XRANGE COUNT 1000. */
static size_t
raw_scan(redisContext *c, const char *key, entry_fn fn, void *arg)
{
    char start[64] = "-";
    size_t total = 0;
    for (;;) {
        redisReply *r = raw_cmd(c, "XRANGE %s %s + COUNT 1000", key, start);
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "XRANGE: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str : "?");
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            fn(e->element[0]->str, e->element[1], arg);
            snprintf(start, sizeof(start), "(%s", e->element[0]->str);
        }
        total += r->elements;
        size_t n = r->elements;
        freeReplyObject(r);
        if (n < 1000) {
            return total;
        }
    }
}

/* Compare Redis stream ids numerically. */
static int
id_cmp(const char *a, const char *b)
{
    unsigned long long am, as, bm, bs;
    cr_assert_eq(sscanf(a, "%llu-%llu", &am, &as), 2, "id %s", a);
    cr_assert_eq(sscanf(b, "%llu-%llu", &bm, &bs), 2, "id %s", b);
    if (am != bm) {
        return am < bm ? -1 : 1;
    }
    return as < bs ? -1 : as > bs;
}

static int
event_text(char *buf, size_t cap, const char *tag, int i)
{
    return snprintf(buf, cap, "{\"i\":%d,\"p\":\"%s\",\"pad\":\"abcdefgh\"}",
                    i, tag);
}

/* Poll everything through `bus`, paging with the cursor; calls fn for
 * each event. Returns the count. */
typedef void (*event_fn)(const nm_event *ev, void *arg);

static size_t
poll_all(nm_bus *bus, size_t limit, event_fn fn, void *arg)
{
    char *cursor = NULL;
    size_t total = 0;
    for (int pages = 0;; pages++) {
        cr_assert_lt(pages, 1000000, "poll does not terminate");
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = limit;
        req.cursor = cursor;
        nm_poll_response resp;
        NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
        cr_assert_leq(resp.count, limit);
        for (size_t i = 0; i < resp.count; i++) {
            fn(&resp.events[i], arg);
        }
        total += resp.count;
        free(cursor);
        cursor = strdup(resp.next_cursor);
        bool more = resp.has_more;
        nm_poll_response_free(&resp);
        if (!more) {
            break;
        }
    }
    /* At the end: an empty page, no more. */
    nm_poll_request req;
    nm_poll_request_init(&req);
    req.cursor = cursor;
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 0);
    cr_assert_not(resp.has_more);
    nm_poll_response_free(&resp);
    free(cursor);
    return total;
}

/* ------------------------------------------------------- round trip */

typedef struct rt_ctx {
    int n;
    unsigned char *seen;
    nm_receipt *receipts;
    char last_id[4][24];
} rt_ctx;

static void
rt_check(const nm_event *ev, void *arg)
{
    rt_ctx *c = arg;
    int i;
    cr_assert_eq(sscanf((const char *)ev->data, "{\"i\":%d,", &i), 1);
    cr_assert(i >= 0 && i < c->n);
    char want[96];
    int wl = event_text(want, sizeof(want), "rt", i);
    cr_assert_eq(ev->len, (size_t)wl, "length of %d", i);
    cr_assert_eq(memcmp(ev->data, want, (size_t)wl), 0, "content of %d", i);
    cr_assert_eq(ev->data[ev->len], '\0');
    cr_assert_eq(c->seen[i], 0, "event %d returned twice", i);
    c->seen[i] = 1;
    cr_assert_eq(ev->shard, c->receipts[i].shard, "shard of %d", i);
    cr_assert_eq(ev->timestamp, c->receipts[i].timestamp, "ts of %d", i);
    if (c->last_id[ev->shard][0]) {
        cr_assert_lt(id_cmp(c->last_id[ev->shard], ev->id), 0,
                     "per-shard id order");
    }
    strcpy(c->last_id[ev->shard], ev->id);
}

Test(redis, round_trip_100k_with_cursor_paging, .timeout = 240)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    nm_redis_config rc;
    redis_defaults(&rc, &s, "rt");
    nm_bus_config cfg;
    bus_defaults(&cfg, &rc, 4);
    cfg.backpressure = NM_BP_BLOCK; /* nothing may be evicted */
    cfg.block_timeout_ms = 60000;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    cr_assert(nm_bus_healthy(bus));

    const int N = 100000;
    rt_ctx c = {.n = N};
    c.seen = calloc((size_t)N, 1);
    c.receipts = calloc((size_t)N, sizeof(nm_receipt));
    char buf[96];
    for (int i = 0; i < N; i++) {
        int l = event_text(buf, sizeof(buf), "rt", i);
        NM_ASSERT_OK(nm_bus_emit_raw(bus, buf, (size_t)l, &c.receipts[i]));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 120000));
    nm_bus_stats st;
    NM_ASSERT_OK(nm_bus_stats_get(bus, &st));
    cr_assert_eq(st.ingested, (uint64_t)N);
    cr_assert_eq(st.dispatched, (uint64_t)N);
    cr_assert_eq(st.dropped, 0);
    cr_assert_eq(st.adapter_errors, 0);
    cr_assert(nm_bus_healthy(bus));

    redisContext *raw = raw_connect(&s);
    long long stored = 0;
    for (int sh = 0; sh < 4; sh++) {
        char key[32];
        snprintf(key, sizeof(key), "rt:shard:%d", sh);
        stored += raw_xlen(raw, key);
    }
    cr_assert_eq(stored, N, "exactly N entries in Redis");
    redisFree(raw);

    size_t got = poll_all(bus, 997, rt_check, &c);
    cr_assert_eq(got, (size_t)N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(c.seen[i], 1, "event %d missing", i);
    }
    /* Poll also works after shutdown (the data is in Redis). */
    NM_ASSERT_OK(nm_bus_shutdown(bus, 10000));
    cr_assert_not(nm_bus_healthy(bus));
    nm_poll_request req;
    nm_poll_request_init(&req);
    req.limit = 10;
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 10);
    nm_poll_response_free(&resp);
    nm_bus_close(bus);
    free(c.seen);
    free(c.receipts);
    nmt_server_cleanup(&s);
}

/* ------------------------------------------------------- record shape */

typedef struct shape_ev {
    const void *data;
    size_t len;
    nm_receipt r;
} shape_ev;

typedef struct shape_ctx {
    shape_ev *evs;
    size_t nev;
    uint64_t nonce;
    uint16_t shard;
    size_t k; /* entries seen on this shard */
    uint64_t batch_start[2];
} shape_ctx;

static void
shape_check(const char *id, const redisReply *f, void *arg)
{
    shape_ctx *c = arg;
    cr_assert_eq(f->elements, 4, "fields d and dedup_id only");
    cr_assert_str_eq(f->element[0]->str, "d");
    cr_assert_str_eq(f->element[2]->str, "dedup_id");
    /* The k-th entry of this shard is the event with seq k. */
    const shape_ev *e = NULL;
    for (size_t i = 0; i < c->nev; i++) {
        if (c->evs[i].r.shard == c->shard && c->evs[i].r.seq == c->k) {
            e = &c->evs[i];
        }
    }
    cr_assert_not_null(e, "entry %s has no matching event", id);
    char want[512];
    const unsigned char *p = e->data;
    bool json = e->len > 0 && (p[0] == '{' || p[0] == '[' || p[0] == '"');
    if (json) {
        snprintf(want, sizeof(want), "{\"r\":%.*s,\"t\":%llu,\"s\":%u}",
                 (int)e->len, (const char *)e->data,
                 (unsigned long long)e->r.timestamp, c->shard);
    } else {
        char b64[128];
        sodium_bin2base64(b64, sizeof(b64), e->data, e->len,
                          sodium_base64_VARIANT_ORIGINAL);
        snprintf(want, sizeof(want),
                 "{\"r\":\"%s\",\"t\":%llu,\"s\":%u,\"b\":true}", b64,
                 (unsigned long long)e->r.timestamp, c->shard);
    }
    const redisReply *d = f->element[1];
    cr_assert_eq(d->len, strlen(want), "record %s", d->str);
    cr_assert_str_eq(d->str, want);
    /* One id per event, whatever the batch: {nonce hex}:{shard}:{seq}:0
     * (two batches per shard were written). */
    char wid[96];
    snprintf(wid, sizeof(wid), "%llx:%u:%llu:0", (unsigned long long)c->nonce,
             c->shard, (unsigned long long)e->r.seq);
    cr_assert_str_eq(f->element[3]->str, wid);
    c->k++;
}

Test(redis, records_have_upstream_shape)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    nm_redis_config rc;
    redis_defaults(&rc, &s, "shape");
    nm_bus_config cfg;
    bus_defaults(&cfg, &rc, 2);
    cfg.dispatch = NM_DISPATCH_MANUAL; /* batch boundaries are ours */
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));

    static const char *const texts[] = {
        "{\"token\":\"hello\",\"index\":42}",
        "[1,2,3]",
        "\"str\"",
        "{\"nested\":{\"a\":[true,false,null]}}",
        "{\"u\":\"\\u00e9\"}",
        "{\"k\":1}",
        "{\"k\":2}",
        "{\"k\":3}",
        "{\"k\":4}",
        "{\"k\":5}",
    };
    static const unsigned char bin[] = {0x00, 0xff, 'b', 'i', 'n', 0x7f};
    shape_ev evs[32];
    size_t nev = 0;
    for (size_t i = 0; i < 10; i++) {
        evs[nev].data = texts[i];
        evs[nev].len = strlen(texts[i]);
        NM_ASSERT_OK(
            nm_bus_emit_raw(bus, evs[nev].data, evs[nev].len, &evs[nev].r));
        nev++;
    }
    evs[nev].data = bin;
    evs[nev].len = sizeof(bin);
    NM_ASSERT_OK(nm_bus_emit_raw(bus, bin, sizeof(bin), &evs[nev].r));
    nev++;
    cr_assert_eq(nm_bus_dispatch(bus, 0), (int)nev);
    /* A second batch per shard: sequence_start moves, i restarts. */
    uint64_t start1[2];
    nm_bus_stats st;
    NM_ASSERT_OK(nm_bus_stats_get(bus, &st));
    static const char *const more[] = {
        "{\"m\":1}", "{\"m\":2}", "{\"m\":3}", "{\"m\":4}",
        "{\"m\":5}", "{\"m\":6}", "{\"m\":7}", "{\"m\":8}",
    };
    start1[0] = start1[1] = UINT64_MAX;
    for (size_t i = 0; i < 8; i++) {
        evs[nev].data = more[i];
        evs[nev].len = strlen(more[i]);
        NM_ASSERT_OK(
            nm_bus_emit_raw(bus, evs[nev].data, evs[nev].len, &evs[nev].r));
        uint16_t sh = evs[nev].r.shard;
        if (start1[sh] == UINT64_MAX) {
            start1[sh] = evs[nev].r.seq;
        }
        nev++;
    }
    cr_assert_eq(nm_bus_dispatch(bus, 0), 8);

    redisContext *raw = raw_connect(&s);
    for (uint16_t sh = 0; sh < 2; sh++) {
        shape_ctx c = {
            .evs = evs, .nev = nev, .nonce = nm_bus_nonce(bus), .shard = sh};
        c.batch_start[1] = start1[sh];
        char key[32];
        snprintf(key, sizeof(key), "shape:shard:%u", sh);
        size_t n = raw_scan(raw, key, shape_check, &c);
        size_t want = 0;
        for (size_t i = 0; i < nev; i++) {
            want += evs[i].r.shard == sh;
        }
        cr_assert_eq(n, want, "shard %u entries", sh);
    }
    /* The default prefix is "net". */
    cr_assert_eq(raw_xlen(raw, "net:shard:0"), 0);
    redisFree(raw);

    /* The binary event polls back byte for byte. */
    nm_poll_request req;
    nm_poll_request_init(&req);
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, nev);
    bool found = false;
    for (size_t i = 0; i < resp.count; i++) {
        if (resp.events[i].len == sizeof(bin) &&
            !memcmp(resp.events[i].data, bin, sizeof(bin))) {
            found = true;
        }
    }
    cr_assert(found, "binary event round-trips");
    nm_poll_response_free(&resp);
    nm_bus_close(bus);
    nmt_server_cleanup(&s);
}

/* ------------------------------------------------------- MAXLEN */

static void
count_ev(const nm_event *ev, void *arg)
{
    (void)ev;
    (*(size_t *)arg)++;
}

Test(redis, maxlen_trims_approximately)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    nm_redis_config rc;
    redis_defaults(&rc, &s, "cap");
    rc.maxlen = 100;
    rc.pipeline = 50; /* several round trips per transaction too */
    nm_bus_config cfg;
    bus_defaults(&cfg, &rc, 1);
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 60000;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    char buf[96];
    const int N = 5000;
    for (int i = 0; i < N; i++) {
        int l = event_text(buf, sizeof(buf), "cap", i);
        NM_ASSERT_OK(nm_bus_emit_raw(bus, buf, (size_t)l, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 60000));
    nm_bus_stats st;
    NM_ASSERT_OK(nm_bus_stats_get(bus, &st));
    cr_assert_eq(st.dispatched, (uint64_t)N);
    redisContext *raw = raw_connect(&s);
    long long len = raw_xlen(raw, "cap:shard:0");
    cr_assert(len >= 100 && len < 1000, "XLEN %lld after MAXLEN ~ 100", len);
    /* The newest entry survived trimming. */
    redisReply *r = raw_cmd(raw, "XREVRANGE cap:shard:0 + - COUNT 1");
    cr_assert_eq(r->elements, 1);
    const redisReply *d = field(r->element[0]->element[1], "d");
    cr_assert_not_null(d);
    event_text(buf, sizeof(buf), "cap", N - 1);
    cr_assert(strstr(d->str, buf) != NULL, "last record %s", d->str);
    freeReplyObject(r);
    redisFree(raw);
    size_t polled = 0;
    poll_all(bus, 1000, count_ev, &polled);
    cr_assert_eq((long long)polled, len);
    nm_bus_close(bus);
    nmt_server_cleanup(&s);
}

/* ------------------------------------------------------- two processes */

/* A child producer: its own bus on the same Redis and prefix. */
static int
child_emit(const char *url, const char *prefix, const char *tag, int n)
{
    nm_redis_config rc;
    nm_redis_config_init(&rc);
    rc.url = url;
    rc.prefix = prefix;
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 4;
    cfg.adapter = nm_adapter_redis();
    cfg.adapter_config = &rc;
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 60000;
    nm_bus *bus;
    if (nm_bus_open(&cfg, &bus) != NM_OK) {
        return 2;
    }
    char buf[96];
    for (int i = 0; i < n; i++) {
        int l = event_text(buf, sizeof(buf), tag, i);
        if (nm_bus_emit_raw(bus, buf, (size_t)l, NULL) != NM_OK) {
            return 3;
        }
    }
    if (nm_bus_flush(bus, 60000) != NM_OK) {
        return 4;
    }
    nm_bus_stats st;
    nm_bus_stats_get(bus, &st);
    nm_bus_close(bus);
    return st.dispatched == (uint64_t)n && st.dropped == 0 ? 0 : 5;
}

static int
wait_child(pid_t pid, int timeout_s)
{
    for (int i = 0; i < timeout_s * 100; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

typedef struct tp_ctx {
    unsigned char *seen[2];
    int n;
} tp_ctx;

static void
tp_check(const nm_event *ev, void *arg)
{
    tp_ctx *c = arg;
    int i;
    char tag[8];
    cr_assert_eq(
        sscanf((const char *)ev->data, "{\"i\":%d,\"p\":\"%7[a-z]\"", &i, tag),
        2);
    int who = !strcmp(tag, "child");
    cr_assert(i >= 0 && i < c->n);
    cr_assert_eq(c->seen[who][i], 0, "%s event %d twice", tag, i);
    c->seen[who][i] = 1;
}

Test(redis, two_processes_share_one_bus, .timeout = 120)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    const int N = 10000;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        _exit(child_emit(s.url, "tp", "child", N));
    }
    nm_redis_config rc;
    redis_defaults(&rc, &s, "tp");
    nm_bus_config cfg;
    bus_defaults(&cfg, &rc, 4);
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 60000;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    char buf[96];
    for (int i = 0; i < N; i++) {
        int l = event_text(buf, sizeof(buf), "parent", i);
        NM_ASSERT_OK(nm_bus_emit_raw(bus, buf, (size_t)l, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 60000));
    cr_assert_eq(wait_child(pid, 90), 0, "child producer failed");

    tp_ctx c = {.n = N};
    c.seen[0] = calloc((size_t)N, 1);
    c.seen[1] = calloc((size_t)N, 1);
    size_t got = poll_all(bus, 1000, tp_check, &c);
    cr_assert_eq(got, (size_t)(2 * N), "the parent sees both producers");
    for (int i = 0; i < N; i++) {
        cr_assert(c.seen[0][i] && c.seen[1][i], "event %d", i);
    }
    free(c.seen[0]);
    free(c.seen[1]);
    nm_bus_close(bus);
    nmt_server_cleanup(&s);
}

/* ------------------------------------------------------- crash-restart */

/* Deterministic producer: events 0..n-1 in groups of G, each group
 * dispatched by hand, so every run cuts the same batches and the dedup
 * ids line up. Reports its progress (u32 events stored) on `fd`. */
static int
crash_producer(const char *url, const char *prefix, const char *nonce_path,
               int n, int fd)
{
    enum { G = 50 };
    nm_redis_config rc;
    nm_redis_config_init(&rc);
    rc.url = url;
    rc.prefix = prefix;
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 2;
    cfg.adapter = nm_adapter_redis();
    cfg.adapter_config = &rc;
    cfg.dispatch = NM_DISPATCH_MANUAL;
    cfg.ring_capacity = 4096;
    cfg.producer_nonce_path = nonce_path;
    nm_bus *bus;
    if (nm_bus_open(&cfg, &bus) != NM_OK) {
        return 2;
    }
    char buf[64];
    for (int base = 0; base < n; base += G) {
        for (int i = base; i < base + G && i < n; i++) {
            int l = snprintf(buf, sizeof(buf), "{\"i\":%d}", i);
            if (nm_bus_emit_raw(bus, buf, (size_t)l, NULL) != NM_OK) {
                return 3;
            }
        }
        nm_bus_dispatch(bus, 0);
        nm_bus_stats st;
        nm_bus_stats_get(bus, &st);
        uint32_t done = (uint32_t)st.dispatched;
        if (st.dropped != 0 ||
            done != (uint32_t)(base + G < n ? base + G : n)) {
            return 4;
        }
        if (write(fd, &done, sizeof(done)) != sizeof(done)) {
            return 5;
        }
    }
    nm_bus_close(bus);
    return 0;
}

typedef struct dd_ctx {
    nm_redis_dedup *dd;
    int n;
    int *processed;
    size_t entries, skipped;
    char nonce_hex[24];
} dd_ctx;

static void
dd_consume(const char *id, const redisReply *f, void *arg)
{
    (void)id;
    dd_ctx *c = arg;
    c->entries++;
    const redisReply *did = field(f, "dedup_id");
    const redisReply *d = field(f, "d");
    cr_assert(did && d);
    cr_assert_eq(strncmp(did->str, c->nonce_hex, strlen(c->nonce_hex)), 0,
                 "dedup id %s carries the persisted nonce", did->str);
    if (nm_redis_dedup_is_duplicate(c->dd, did->str, did->len)) {
        c->skipped++;
        return;
    }
    int i;
    cr_assert_eq(sscanf(d->str, "{\"r\":{\"i\":%d}", &i), 1, "%s", d->str);
    cr_assert(i >= 0 && i < c->n);
    c->processed[i]++;
}

static pid_t
spawn_producer(const nmt_server *s, const char *nonce_path, int n, int *rfd)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(p[0]);
        _exit(crash_producer(s->url, "crash", nonce_path, n, p[1]));
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

/* Read progress reports until `until` (or EOF); returns the last one. */
static uint32_t
read_progress(int fd, uint32_t until)
{
    uint32_t last = 0, v;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        cr_assert_eq(poll(&pfd, 1, 60000), 1, "producer progress stalled");
        ssize_t r = read(fd, &v, sizeof(v));
        if (r == 0) {
            return last;
        }
        cr_assert_eq(r, (ssize_t)sizeof(v));
        last = v;
        if (last >= until) {
            return last;
        }
    }
}

Test(redis, crash_restart_dedup_processes_each_event_once, .timeout = 180)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    char nonce_path[160];
    snprintf(nonce_path, sizeof(nonce_path), "%s/producer.nonce", s.dir);
    const int N = 20000;

    int fd;
    pid_t pid = spawn_producer(&s, nonce_path, N, &fd);
    uint32_t at = read_progress(fd, (uint32_t)N / 3);
    cr_assert_geq(at, (uint32_t)N / 3);
    kill(pid, SIGKILL); /* mid-stream, wherever it is */
    int st;
    waitpid(pid, &st, 0);
    close(fd);
    cr_assert(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0),
              "first run failed on its own");

    /* Restart with the same nonce file: it re-sends 0..N-1. */
    pid = spawn_producer(&s, nonce_path, N, &fd);
    uint32_t end = read_progress(fd, UINT32_MAX);
    cr_assert_eq(end, (uint32_t)N);
    close(fd);
    cr_assert_eq(wait_child(pid, 60), 0, "restarted producer failed");

    uint64_t nonce;
    NM_ASSERT_OK(nm_producer_nonce_load(nonce_path, &nonce));
    dd_ctx c = {.n = N};
    snprintf(c.nonce_hex, sizeof(c.nonce_hex),
             "%llx:", (unsigned long long)nonce);
    NM_ASSERT_OK(nm_redis_dedup_new(1u << 17, &c.dd));
    c.processed = calloc((size_t)N, sizeof(int));
    redisContext *raw = raw_connect(&s);
    raw_scan(raw, "crash:shard:0", dd_consume, &c);
    raw_scan(raw, "crash:shard:1", dd_consume, &c);
    redisFree(raw);
    cr_assert_gt(c.entries, (size_t)N, "the restart re-sent events");
    cr_assert_eq(c.entries - c.skipped, (size_t)N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(c.processed[i], 1, "event %d processed %d times", i,
                     c.processed[i]);
    }
    free(c.processed);
    nm_redis_dedup_free(c.dd);
    nmt_server_cleanup(&s);
}

/* ------------------------------------------------------- server restart */

typedef struct sr_ctx {
    nm_redis_dedup *dd;
    unsigned char *seen;
    int n;
    size_t unique;
} sr_ctx;

static void
sr_consume(const char *id, const redisReply *f, void *arg)
{
    (void)id;
    sr_ctx *c = arg;
    const redisReply *did = field(f, "dedup_id");
    const redisReply *d = field(f, "d");
    cr_assert(did && d);
    if (nm_redis_dedup_is_duplicate(c->dd, did->str, did->len)) {
        return;
    }
    int i;
    cr_assert_eq(sscanf(d->str, "{\"r\":{\"i\":%d,", &i), 1, "%s", d->str);
    cr_assert(i >= 0 && i < c->n);
    cr_assert_eq(c->seen[i], 0, "event %d stored under two dedup ids", i);
    c->seen[i] = 1;
    c->unique++;
}

/* Read everything the current server holds (each server lifetime is
 * consumed exactly once, right before it is killed or at the end). */
static void
sr_drain(const nmt_server *s, sr_ctx *c)
{
    redisContext *raw = raw_connect(s);
    raw_scan(raw, "sr:shard:0", sr_consume, c);
    raw_scan(raw, "sr:shard:1", sr_consume, c);
    redisFree(raw);
}

static int
sr_emit(nm_bus *bus, int *next, int count)
{
    char buf[96];
    int ok = 0;
    for (int k = 0; k < count; k++) {
        int l = event_text(buf, sizeof(buf), "sr", (*next)++);
        ok += nm_bus_emit_raw(bus, buf, (size_t)l, NULL) == NM_OK;
    }
    return ok;
}

static void
nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

Test(redis, server_killed_and_restarted_no_silent_loss, .timeout = 180)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    nm_redis_config rc;
    redis_defaults(&rc, &s, "sr");
    rc.retry_deadline_ms = 1500;
    rc.connect_timeout_ms = 500;
    rc.command_timeout_ms = 1000;
    nm_bus_config cfg;
    bus_defaults(&cfg, &rc, 2);
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));

    const int MAXN = 100000;
    sr_ctx c = {.n = MAXN};
    c.seen = calloc((size_t)MAXN, 1);
    NM_ASSERT_OK(nm_redis_dedup_new(1u << 18, &c.dd));
    int next = 0;

    /* Lifetime 1: healthy traffic, all of it consumed before the kill. */
    cr_assert_eq(sr_emit(bus, &next, 3000), 3000);
    NM_ASSERT_OK(nm_bus_flush(bus, 30000));
    cr_assert(nm_bus_healthy(bus));
    sr_drain(&s, &c);
    cr_assert_eq(c.unique, 3000);

    /* Kill it mid-stream: batches fail, health turns false, and once the
     * retry deadline passes the batches are dropped and counted. */
    nmt_server_stop(&s);
    sr_emit(bus, &next, 3000);
    int i;
    for (i = 0; i < 2000 && nm_bus_healthy(bus); i++) {
        nap_ms(10);
    }
    cr_assert_not(nm_bus_healthy(bus), "health false while the server is "
                                       "down");
    nm_bus_stats st;
    for (i = 0; i < 2000; i++) {
        NM_ASSERT_OK(nm_bus_stats_get(bus, &st));
        if (st.dropped > 0) {
            break;
        }
        nap_ms(10);
    }
    cr_assert_gt(st.dropped, 0, "batches past the deadline are dropped");
    cr_assert_gt(st.adapter_errors, 0);
    sr_emit(bus, &next, 2000); /* more traffic during the outage */
    cr_assert_not(nm_bus_healthy(bus));

    /* Lifetime 2: back on the same port; delivery resumes by itself. */
    nmt_server_restart(&s);
    for (i = 0; i < 1000 && !nm_bus_healthy(bus); i++) {
        sr_emit(bus, &next, 1);
        NM_ASSERT_OK(nm_bus_flush(bus, 30000));
        if (!nm_bus_healthy(bus)) {
            nap_ms(20);
        }
    }
    cr_assert(nm_bus_healthy(bus), "health true again after the restart");
    cr_assert_eq(sr_emit(bus, &next, 3000), 3000);
    NM_ASSERT_OK(nm_bus_flush(bus, 30000));
    cr_assert(nm_bus_healthy(bus));
    sr_drain(&s, &c);

    /* Killed again, and back within the retry deadline: the batch that
     * was retrying when it returned is delivered. */
    nmt_server_stop(&s);
    sr_emit(bus, &next, 2000);
    for (i = 0; i < 2000 && nm_bus_healthy(bus); i++) {
        nap_ms(5);
    }
    cr_assert_not(nm_bus_healthy(bus));
    nmt_server_restart(&s);
    NM_ASSERT_OK(nm_bus_flush(bus, 60000));
    for (i = 0; i < 1000 && !nm_bus_healthy(bus); i++) {
        sr_emit(bus, &next, 1);
        NM_ASSERT_OK(nm_bus_flush(bus, 30000));
        if (!nm_bus_healthy(bus)) {
            nap_ms(20);
        }
    }
    cr_assert(nm_bus_healthy(bus));
    cr_assert_eq(sr_emit(bus, &next, 1000), 1000);
    NM_ASSERT_OK(nm_bus_flush(bus, 30000));
    sr_drain(&s, &c);

    /* No silent loss: found (deduped) + dropped == accepted. */
    NM_ASSERT_OK(nm_bus_stats_get(bus, &st));
    cr_assert_eq(st.ingested, (uint64_t)next);
    cr_assert_eq(st.dispatched + st.dropped, st.ingested);
    cr_assert_eq(c.unique + st.dropped, st.ingested,
                 "found %zu + dropped %llu != accepted %llu", c.unique,
                 (unsigned long long)st.dropped,
                 (unsigned long long)st.ingested);
    nm_bus_close(bus);
    nm_redis_dedup_free(c.dd);
    free(c.seen);
    nmt_server_cleanup(&s);
}

/* ------------------------------------------------------- AUTH and db */

Test(redis, auth_and_db_from_the_url)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    redisContext *raw = raw_connect(&s);
    freeReplyObject(raw_cmd(raw, "CONFIG SET requirepass %s", "pa:ss@w"));

    char url[128];
    nm_redis_config rc;
    nm_bus_config cfg;
    nm_bus *bus;

    redis_defaults(&rc, &s, "db");
    bus_defaults(&cfg, &rc, 1);
    NM_ASSERT_ERR(nm_bus_open(&cfg, &bus), NM_EUNAUTHORIZED);
    cr_assert(strstr(nm_errdetail(), s.url) != NULL, "%s", nm_errdetail());

    snprintf(url, sizeof(url), "redis://:wrong@127.0.0.1:%d", s.port);
    rc.url = url;
    NM_ASSERT_ERR(nm_bus_open(&cfg, &bus), NM_EUNAUTHORIZED);
    cr_assert(strstr(nm_errdetail(), "wrong") == NULL, "%s", nm_errdetail());

    snprintf(url, sizeof(url), "redis://:pa%%3Ass%%40w@127.0.0.1:%d/3",
             s.port);
    rc.url = url;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    char buf[96];
    for (int i = 0; i < 10; i++) {
        int l = event_text(buf, sizeof(buf), "db", i);
        NM_ASSERT_OK(nm_bus_emit_raw(bus, buf, (size_t)l, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    size_t polled = 0;
    poll_all(bus, 100, count_ev, &polled);
    cr_assert_eq(polled, 10);
    nm_bus_close(bus);

    /* A fresh raw connection must authenticate too. */
    redisFree(raw);
    raw = raw_connect(&s);
    freeReplyObject(raw_cmd(raw, "AUTH %s", "pa:ss@w"));
    cr_assert_eq(raw_xlen(raw, "db:shard:0"), 0, "db 0 untouched");
    freeReplyObject(raw_cmd(raw, "SELECT 3"));
    cr_assert_eq(raw_xlen(raw, "db:shard:0"), 10, "written to db 3");
    redisFree(raw);
    nmt_server_cleanup(&s);
}

/* ------------------------------------------------------- poll edges */

static char *
make_cursor(const char *json)
{
    size_t n = strlen(json);
    size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    char *out = malloc(cap);
    sodium_bin2base64(out, cap, (const unsigned char *)json, n,
                      sodium_base64_VARIANT_ORIGINAL);
    return out;
}

Test(redis, poll_edges)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    nm_redis_config rc;
    redis_defaults(&rc, &s, "pe");
    nm_bus_config cfg;
    bus_defaults(&cfg, &rc, 1);
    cfg.dispatch = NM_DISPATCH_MANUAL;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));

    /* A missing stream is just empty. */
    nm_poll_request req;
    nm_poll_request_init(&req);
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 0);
    cr_assert_not(resp.has_more);
    nm_poll_response_free(&resp);

    /* Entries that are not ours (no "d", or "d" not a record) are
     * skipped; ours around them are returned. */
    redisContext *raw = raw_connect(&s);
    freeReplyObject(raw_cmd(raw, "XADD pe:shard:0 * foo bar"));
    NM_ASSERT_OK(nm_bus_emit_str(bus, "{\"a\":1}", NULL));
    cr_assert_eq(nm_bus_dispatch(bus, 0), 1);
    freeReplyObject(raw_cmd(raw, "XADD pe:shard:0 * d %s", "not json"));
    freeReplyObject(raw_cmd(raw, "XADD pe:shard:0 * d %s", "{\"t\":1}"));
    NM_ASSERT_OK(nm_bus_emit_str(bus, "{\"a\":2}", NULL));
    cr_assert_eq(nm_bus_dispatch(bus, 0), 1);
    /* An upstream-written record (no "b", keys reordered) decodes. */
    freeReplyObject(raw_cmd(raw, "XADD pe:shard:0 * d %s dedup_id %s",
                            "{\"s\":0,\"t\":77,\"r\":{\"a\":3}}", "1:0:0:0"));
    redisFree(raw);

    nm_poll_request_init(&req);
    req.limit = 2;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 2);
    cr_assert_str_eq((const char *)resp.events[0].data, "{\"a\":1}");
    cr_assert_str_eq((const char *)resp.events[1].data, "{\"a\":2}");
    cr_assert(resp.has_more);
    char *cursor = strdup(resp.next_cursor);
    nm_poll_response_free(&resp);
    req.cursor = cursor;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 1);
    cr_assert_str_eq((const char *)resp.events[0].data, "{\"a\":3}");
    cr_assert_eq(resp.events[0].timestamp, 77);
    cr_assert_not(resp.has_more);
    nm_poll_response_free(&resp);
    free(cursor);

    /* An id that is not a Redis stream id: NM_EDECODE. */
    static const char *const bad[] = {"{\"0\":\"17\"}", "{\"0\":\"a-1\"}",
                                      "{\"0\":\"1-2-3\"}"};
    for (size_t k = 0; k < 3; k++) {
        cursor = make_cursor(bad[k]);
        req.cursor = cursor;
        NM_ASSERT_ERR(nm_bus_poll(bus, &req, &resp), NM_EDECODE);
        free(cursor);
    }
    /* Past the end (even the largest id): empty. */
    static const char *const past[] = {
        "{\"0\":\"99999999999999-0\"}",
        "{\"0\":\"18446744073709551615-18446744073709551615\"}"};
    for (size_t k = 0; k < 2; k++) {
        cursor = make_cursor(past[k]);
        req.cursor = cursor;
        resp.count = 99;
        int prc = nm_bus_poll(bus, &req, &resp);
        /* The largest id is 41 characters: longer than a cursor id may
         * be (23), so the bus itself rejects it. */
        if (k == 1) {
            cr_assert_eq(prc, NM_EDECODE);
        } else {
            NM_ASSERT_OK(prc);
            cr_assert_eq(resp.count, 0);
            nm_poll_response_free(&resp);
        }
        free(cursor);
    }
    nm_bus_close(bus);
    nmt_server_cleanup(&s);
}

/* ------------------------------------------------------- big batch */

Test(redis, batches_are_capped_to_the_pipeline)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    nm_redis_config rc;
    redis_defaults(&rc, &s, "big");
    rc.pipeline = 7; /* the adapter asks the bus for batches of <= 7 */
    nm_bus_config cfg;
    bus_defaults(&cfg, &rc, 1);
    cfg.dispatch = NM_DISPATCH_MANUAL;
    cfg.batch_max = 100000;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    char buf[96];
    const int N = 20000;
    for (int i = 0; i < N; i++) {
        int l = event_text(buf, sizeof(buf), "big", i);
        NM_ASSERT_OK(nm_bus_emit_raw(bus, buf, (size_t)l, NULL));
    }
    cr_assert_eq(nm_bus_dispatch(bus, 0), N);
    nm_bus_stats st;
    NM_ASSERT_OK(nm_bus_stats_get(bus, &st));
    cr_assert_eq(
        st.dispatched, (uint64_t)N,
        "dispatched %llu, dropped %llu, batches %llu, errors %llu (%s)",
        (unsigned long long)st.dispatched, (unsigned long long)st.dropped,
        (unsigned long long)st.batches, (unsigned long long)st.adapter_errors,
        nm_errdetail());
    /* max_batch: one MULTI/EXEC of at most `pipeline` events each. */
    cr_assert_eq(st.batches, (uint64_t)(N + 6) / 7);
    redisContext *raw = raw_connect(&s);
    cr_assert_eq(raw_xlen(raw, "big:shard:0"), N);
    redisFree(raw);
    nm_bus_close(bus);
    nmt_server_cleanup(&s);
}

/* ------------------------------------------------------- refused batch */

Test(redis, refused_batch_fails_at_once_and_is_counted)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    redisContext *raw = raw_connect(&s);
    freeReplyObject(raw_cmd(raw, "SET wt:shard:0 %s", "not-a-stream"));
    nm_redis_config rc;
    redis_defaults(&rc, &s, "wt");
    nm_bus_config cfg;
    bus_defaults(&cfg, &rc, 1);
    cfg.dispatch = NM_DISPATCH_MANUAL;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    NM_ASSERT_OK(nm_bus_emit_str(bus, "{\"a\":1}", NULL));
    NM_ASSERT_OK(nm_bus_emit_str(bus, "{\"a\":2}", NULL));
    /* WRONGTYPE: no retry can fix it; dropped and counted. */
    cr_assert_eq(nm_bus_dispatch(bus, 0), 2);
    nm_bus_stats st;
    NM_ASSERT_OK(nm_bus_stats_get(bus, &st));
    cr_assert_eq(st.dropped, 2);
    cr_assert_eq(st.adapter_errors, 1);
    cr_assert_eq(st.dispatched, 0);
    cr_assert_not(nm_bus_healthy(bus));
    /* Fixed on the server: the next batch goes through. */
    freeReplyObject(raw_cmd(raw, "DEL wt:shard:0"));
    NM_ASSERT_OK(nm_bus_emit_str(bus, "{\"a\":3}", NULL));
    cr_assert_eq(nm_bus_dispatch(bus, 0), 1);
    cr_assert(nm_bus_healthy(bus));
    NM_ASSERT_OK(nm_bus_stats_get(bus, &st));
    cr_assert_eq(st.dispatched, 1);
    cr_assert_eq(raw_xlen(raw, "wt:shard:0"), 1);
    redisFree(raw);
    nm_bus_close(bus);
    nmt_server_cleanup(&s);
}
