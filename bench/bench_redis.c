/*
 * bench/bench_redis.c - `netmesh bench redis`: events/s through the bus
 * into Redis Streams.
 *
 *   redis.adapter_64B          64-byte JSON events emitted into a 1-shard
 *                              bus with the Redis adapter (Block mode:
 *                              nothing evicted; batch_max = pipeline =
 *                              1,000, the recommended pairing; the clock
 *                              stops after nm_bus_flush; every event
 *                              verified stored)
 *   hiredis_pipelined_xadd_64B the anchor: raw hiredis sending
 *                              pre-built records and dedup ids of the same
 *                              shape and size, MULTI + 1,000 XADDs + EXEC
 *                              per round trip (the adapter's pipeline
 *                              depth), same run, interleaved
 *
 * Without --url a redis-server is started on a free loopback port (and
 * stopped at the end); with --url the keys used ("nmbench<pid>:...") are
 * deleted after every run.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <netmesh.h>

#include "adapters/redis/redis_impl.h"
#include "bench_servers.h"

#define MSG 64
#define PIPELINE 1000

/* {"i":"%08llu","p":"<41 x>"} = 64 bytes of JSON. */
static void
fill_msg(char *msg, uint64_t i)
{
    snprintf(msg, MSG + 1,
             "{\"i\":\"%08llu\",\"p\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
             "xxx\"}",
             (unsigned long long)(i % 100000000ull));
}

static redisContext *
raw_open(const nmi_redis_url *u)
{
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout(u->host, u->port, tv);
    if (!c || c->err) {
        fprintf(stderr, "bench redis: cannot connect to %s: %s\n", u->redacted,
                c ? c->errstr : "out of memory");
        if (c) {
            redisFree(c);
        }
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (u->password) {
        r = u->user ? redisCommand(c, "AUTH %s %s", u->user, u->password)
                    : redisCommand(c, "AUTH %s", u->password);
        freeReplyObject(r);
    }
    if (u->db) {
        r = redisCommand(c, "SELECT %d", u->db);
        freeReplyObject(r);
    }
    return c;
}

static long long
drop_key(redisContext *c, const char *key)
{
    long long n = -1;
    redisReply *r = redisCommand(c, "XLEN %s", key);
    if (r && r->type == REDIS_REPLY_INTEGER) {
        n = r->integer;
    }
    freeReplyObject(r);
    freeReplyObject(redisCommand(c, "DEL %s", key));
    return n;
}

/* ------------------------------------------------------------ anchor */

/* The anchor does no encoding in the timed loop: one round trip's
 * records and dedup ids (the adapter's exact shapes and sizes) are built
 * beforehand and re-sent every round trip, so it measures what hiredis
 * and the server can take at this pipeline depth and nothing else. */
static double
run_raw(const nmi_redis_url *u, const char *key, uint64_t n, int *err)
{
    redisContext *c = raw_open(u);
    if (!c) {
        *err = 1;
        return 0;
    }
    static char rec[PIPELINE][160];
    static char ids[PIPELINE][64];
    size_t rlen[PIPELINE], ilen[PIPELINE];
    const uint64_t nonce = 0x1234abcd5678ef90ull;
    char msg[MSG + 1];
    for (size_t i = 0; i < PIPELINE; i++) {
        fill_msg(msg, i);
        rlen[i] = (size_t)snprintf(rec[i], sizeof(rec[i]),
                                   "{\"r\":%s,\"t\":%llu,\"s\":0}", msg,
                                   (unsigned long long)(1000000000ull + i));
        ilen[i] = (size_t)snprintf(ids[i], sizeof(ids[i]), "%llx:%u:%llu:%llu",
                                   (unsigned long long)nonce, 0u,
                                   (unsigned long long)1000000ull,
                                   (unsigned long long)i);
    }
    size_t keylen = strlen(key);
    static const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    static const size_t l5[] = {5}, l4[] = {4};
    uint64_t t0 = nmb_now_ns();
    for (uint64_t base = 0; base < n; base += PIPELINE) {
        size_t k = n - base < PIPELINE ? (size_t)(n - base) : PIPELINE;
        redisAppendCommandArgv(c, 1, multi, l5);
        for (size_t i = 0; i < k; i++) {
            const char *argv[7] = {"XADD", key,        "*",   "d",
                                   rec[i], "dedup_id", ids[i]};
            size_t lens[7] = {4, keylen, 1, 1, rlen[i], 8, ilen[i]};
            redisAppendCommandArgv(c, 7, argv, lens);
        }
        redisAppendCommandArgv(c, 1, exec, l4);
        for (size_t i = 0; i < k + 2; i++) {
            void *r = NULL;
            if (redisGetReply(c, &r) != REDIS_OK || !r) {
                fprintf(stderr, "bench redis: raw: %s\n", c->errstr);
                *err = 1;
                redisFree(c);
                return 0;
            }
            redisReply *rr = r;
            if (i == k + 1 &&
                (rr->type != REDIS_REPLY_ARRAY || rr->elements != k)) {
                *err = 1;
            }
            freeReplyObject(r);
        }
    }
    uint64_t t1 = nmb_now_ns();
    if (drop_key(c, key) != (long long)n) {
        fprintf(stderr, "bench redis: raw run stored a wrong count\n");
        *err = 1;
    }
    redisFree(c);
    return (double)n * 1e9 / (double)(t1 - t0);
}

/* ------------------------------------------------------------ adapter */

static double
run_adapter(const nmi_redis_url *u, const char *url, const char *prefix,
            uint64_t n, int *err)
{
    nm_redis_config rc;
    nm_redis_config_init(&rc);
    rc.url = url;
    rc.prefix = prefix;
    rc.pipeline = PIPELINE;
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 1;
    /* The recommended pairing (docs/adapters.md): one bus batch = one
     * MULTI/EXEC of `pipeline` XADDs, the anchor's transaction size. */
    cfg.batch_max = PIPELINE;
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 60000;
    cfg.adapter = nm_adapter_redis();
    cfg.adapter_config = &rc;
    nm_bus *bus = NULL;
    int rc2 = nm_bus_open(&cfg, &bus);
    if (rc2) {
        fprintf(stderr, "bench redis: open: %s (%s)\n", nm_strerror(rc2),
                nm_errdetail());
        *err = 1;
        return 0;
    }
    char msg[MSG + 1];
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        fill_msg(msg, i);
        if (nm_bus_emit_raw(bus, msg, MSG, NULL) != NM_OK) {
            *err = 1;
        }
    }
    rc2 = nm_bus_flush(bus, 600000);
    uint64_t t1 = nmb_now_ns();
    nm_bus_stats st;
    nm_bus_stats_get(bus, &st);
    if (rc2 || st.dropped || st.rejected || st.dispatched != n) {
        fprintf(stderr,
                "bench redis: lost events (flush %s, dispatched %llu of "
                "%llu, dropped %llu, rejected %llu)\n",
                nm_strerror(rc2), (unsigned long long)st.dispatched,
                (unsigned long long)n, (unsigned long long)st.dropped,
                (unsigned long long)st.rejected);
        *err = 1;
    }
    nm_bus_close(bus);
    redisContext *c = raw_open(u);
    char key[96];
    snprintf(key, sizeof(key), "%s:shard:0", prefix);
    if (!c || drop_key(c, key) != (long long)n) {
        fprintf(stderr, "bench redis: adapter run stored a wrong count\n");
        *err = 1;
    }
    if (c) {
        redisFree(c);
    }
    return (double)n * 1e9 / (double)(t1 - t0);
}

int
nmb_group_redis(const nmb_opts *o)
{
    enum { MAXR = 101 };
    nmt_server srv;
    memset(&srv, 0, sizeof(srv));
    const char *url = o->url;
    if (!url) {
        if (nmt_server_try_start(&srv, NMT_REDIS) != 0) {
            fprintf(stderr, "bench redis: could not start redis-server "
                            "(make deps), or pass --url\n");
            return -1;
        }
        url = srv.url;
    }
    nmi_redis_url u;
    if (nmi_redis_url_parse(url, &u) != NM_OK) {
        fprintf(stderr, "bench redis: %s\n", nm_errdetail());
        nmt_server_cleanup(&srv);
        return -1;
    }
    char prefix[48], rawkey[64];
    snprintf(prefix, sizeof(prefix), "nmbench%d", (int)getpid());
    snprintf(rawkey, sizeof(rawkey), "%s:raw", prefix);
    double base[MAXR], val[MAXR];
    int runs = o->runs > MAXR ? MAXR : o->runs;
    uint64_t n = nmb_iters(o, 500000);
    int err = 0;
    for (int r = 0; r < runs && !err; r++) {
        base[r] = run_raw(&u, rawkey, n, &err);
        val[r] = run_adapter(&u, url, prefix, n, &err);
    }
    if (!err) {
        nmb_report(o, "redis.adapter_64B", nmb_median(val, runs), "events/s",
                   "hiredis_pipelined_xadd_64B", nmb_median(base, runs));
    } else {
        fprintf(stderr, "bench redis: some runs lost or failed events\n");
    }
    nmi_redis_url_free(&u);
    nmt_server_cleanup(&srv);
    return err ? -1 : 0;
}
