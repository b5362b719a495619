/*
 * bench/bench_jetstream.c - `netmesh bench jetstream`: events/s through the
 * bus into NATS JetStream.
 *
 *   jetstream.adapter_64B    64-byte JSON events emitted into a 4-shard bus
 *                            with the JetStream adapter (Block mode:
 *                            nothing evicted; the clock stops after
 *                            nm_bus_flush, i.e. after every ack; the
 *                            stored count is verified)
 *   natsc_async_publish_64B  the anchor: raw nats.c, the same record bytes
 *                            ({"r":..,"t":..,"s":..}) with a Nats-Msg-Id
 *                            header each (pre-built outside the clock),
 *                            js_PublishMsgAsync on 4 subjects, then
 *                            js_PublishAsyncComplete (all acks), with an
 *                            ack-error handler; same run, interleaved
 *
 * Both write to fresh file-storage streams (upstream's default). Without
 * --url a `nats-server -js` is started on a free loopback port in a
 * temporary directory (and stopped at the end); with --url the streams
 * used ("nmb<pid>r<run>[a|b]_shard_*") are deleted after every run.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>
#include <netmesh.h>

#include "bench_servers.h"

#define MSG 64
#define SHARDS 4

/* A 64-byte JSON event carrying its index. */
static void
make_event(char *out, uint64_t i)
{
    /* {"i":0000000042,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"} */
    int n = snprintf(out, MSG + 1, "{\"i\":%010" PRIu64 ",\"pad\":\"", i);
    memset(out + n, 'x', (size_t)(MSG - 2 - n));
    out[MSG - 2] = '"';
    out[MSG - 1] = '}';
    out[MSG] = '\0';
}

typedef struct jsb {
    const char *url;
    natsConnection *nc; /* for setup, verification and the anchor */
    jsCtx *js;
    _Atomic uint64_t ack_errors;
} jsb;

static void
anchor_ack_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)pae;
    jsb *b = closure;
    atomic_fetch_add(&b->ack_errors, 1);
}

static uint64_t
stored(jsb *b, const char *prefix)
{
    uint64_t total = 0;
    for (int s = 0; s < SHARDS; s++) {
        char name[96];
        snprintf(name, sizeof(name), "%s_shard_%d", prefix, s);
        jsStreamInfo *si = NULL;
        if (js_GetStreamInfo(&si, b->js, name, NULL, NULL) == NATS_OK) {
            total += si->State.Msgs;
            jsStreamInfo_Destroy(si);
        }
    }
    return total;
}

static void
drop_streams(jsb *b, const char *prefix)
{
    for (int s = 0; s < SHARDS; s++) {
        char name[96];
        snprintf(name, sizeof(name), "%s_shard_%d", prefix, s);
        js_DeleteStream(b->js, name, NULL, NULL);
    }
}

/* Events per second through the bus + JetStream adapter. */
static double
run_adapter(jsb *b, const char *prefix, uint64_t n, int *err)
{
    nm_jetstream_config jc;
    nm_jetstream_config_init(&jc);
    jc.url = b->url;
    jc.prefix = prefix;
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = SHARDS;
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 600000;
    cfg.adapter = nm_adapter_jetstream();
    cfg.adapter_config = &jc;
    nm_bus *bus = NULL;
    int rc = nm_bus_open(&cfg, &bus);
    if (rc) {
        fprintf(stderr, "bench jetstream: open: %s (%s)\n", nm_strerror(rc),
                nm_errdetail());
        *err = 1;
        return 0;
    }
    char ev[MSG + 1];
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        make_event(ev, i);
        if (nm_bus_emit_raw(bus, ev, MSG, NULL) != NM_OK) {
            *err = 1;
        }
    }
    rc = nm_bus_flush(bus, 600000);
    uint64_t t1 = nmb_now_ns();
    nm_bus_stats st;
    nm_bus_stats_get(bus, &st);
    nm_bus_close(bus);
    uint64_t have = stored(b, prefix);
    if (rc || st.dropped || st.dispatched != n || have != n) {
        fprintf(stderr,
                "bench jetstream: adapter lost events (flush %s, dispatched "
                "%" PRIu64 ", dropped %" PRIu64 ", stored %" PRIu64
                " of %" PRIu64 ")\n",
                nm_strerror(rc), st.dispatched, st.dropped, have, n);
        *err = 1;
    }
    drop_streams(b, prefix);
    return (double)n * 1e9 / (double)(t1 - t0);
}

static int
create_streams(jsb *b, const char *prefix)
{
    for (int s = 0; s < SHARDS; s++) {
        char name[96], subj[96];
        snprintf(name, sizeof(name), "%s_shard_%d", prefix, s);
        snprintf(subj, sizeof(subj), "%s.shard.%d", prefix, s);
        const char *subjects[1] = {subj};
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        sc.Name = name;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        sc.Duplicates = 3600ll * 1000000000ll;
        sc.AllowDirect = true;
        jsStreamInfo *si = NULL;
        if (js_AddStream(&si, b->js, &sc, NULL, NULL) != NATS_OK) {
            return -1;
        }
        jsStreamInfo_Destroy(si);
    }
    return 0;
}

/* Events per second through raw nats.c async publish with acks. */
static double
run_anchor(jsb *b, const char *prefix, uint64_t n, int *err)
{
    if (create_streams(b, prefix) != 0) {
        fprintf(stderr, "bench jetstream: cannot create streams\n");
        *err = 1;
        return 0;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.ErrHandler = anchor_ack_error;
    jo.PublishAsync.ErrHandlerClosure = b;
    jsCtx *js = NULL;
    if (natsConnection_JetStream(&js, b->nc, &jo) != NATS_OK) {
        *err = 1;
        return 0;
    }
    atomic_store(&b->ack_errors, 0);
    char subj[SHARDS][96];
    for (int s = 0; s < SHARDS; s++) {
        snprintf(subj[s], sizeof(subj[s]), "%s.shard.%d", prefix, s);
    }
    /* Records and ids are built outside the clock. */
    enum { REC = 128, ID = 48 };
    char *recs = malloc((size_t)n * REC);
    char *ids = malloc((size_t)n * ID);
    int *lens = malloc((size_t)n * sizeof(int));
    if (!recs || !ids || !lens) {
        free(recs);
        free(ids);
        free(lens);
        jsCtx_Destroy(js);
        *err = 1;
        return 0;
    }
    char ev[MSG + 1];
    for (uint64_t i = 0; i < n; i++) {
        unsigned s = (unsigned)(i % SHARDS);
        make_event(ev, i);
        lens[i] = snprintf(recs + i * REC, REC,
                           "{\"r\":%s,\"t\":%" PRIu64 ",\"s\":%u}", ev, i, s);
        snprintf(ids + i * ID, ID, "1f2e3d4c5b6a7988:%u:0:%" PRIu64, s, i);
    }
    uint64_t t0 = nmb_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        natsMsg *m = NULL;
        natsStatus st = natsMsg_Create(&m, subj[i % SHARDS], NULL,
                                       recs + i * REC, lens[i]);
        if (st == NATS_OK) {
            st = natsMsgHeader_Set(m, "Nats-Msg-Id", ids + i * ID);
        }
        if (st == NATS_OK) {
            st = js_PublishMsgAsync(js, &m, NULL);
        }
        if (st != NATS_OK) {
            natsMsg_Destroy(m);
            *err = 1;
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 600000;
    natsStatus st = js_PublishAsyncComplete(js, &po);
    uint64_t t1 = nmb_now_ns();
    jsCtx_Destroy(js);
    free(recs);
    free(ids);
    free(lens);
    uint64_t have = stored(b, prefix);
    if (st != NATS_OK || atomic_load(&b->ack_errors) || have != n) {
        fprintf(stderr,
                "bench jetstream: anchor lost events (complete %d, ack "
                "errors %" PRIu64 ", stored %" PRIu64 " of %" PRIu64 ")\n",
                (int)st, atomic_load(&b->ack_errors), have, n);
        *err = 1;
    }
    drop_streams(b, prefix);
    return (double)n * 1e9 / (double)(t1 - t0);
}

int
nmb_group_jetstream(const nmb_opts *o)
{
    enum { MAXR = 101 };
    double base[MAXR], v[MAXR];
    int runs = o->runs > MAXR ? MAXR : o->runs;
    uint64_t n = nmb_iters(o, 200000);
    nmt_server srv;
    bool own = o->url == NULL;
    jsb b = {.url = o->url};
    if (own) {
        if (nmt_server_try_start(&srv, NMT_NATS) != 0) {
            fprintf(stderr, "bench jetstream: cannot start nats-server -js "
                            "(make deps), or pass --url\n");
            return -1;
        }
        b.url = srv.url;
    }
    int err = 0;
    if (natsConnection_ConnectTo(&b.nc, b.url) != NATS_OK ||
        natsConnection_JetStream(&b.js, b.nc, NULL) != NATS_OK) {
        fprintf(stderr, "bench jetstream: cannot connect to %s\n", b.url);
        err = 1;
    }
    for (int r = 0; r < runs && !err; r++) {
        char pa[64], pb[64];
        snprintf(pa, sizeof(pa), "nmb%dr%da", (int)getpid(), r);
        snprintf(pb, sizeof(pb), "nmb%dr%db", (int)getpid(), r);
        /* Alternate which goes first, so neither always gets the warmer
         * (or the more fragmented) server. */
        if (r % 2 == 0) {
            v[r] = run_adapter(&b, pa, n, &err);
            base[r] = run_anchor(&b, pb, n, &err);
        } else {
            base[r] = run_anchor(&b, pb, n, &err);
            v[r] = run_adapter(&b, pa, n, &err);
        }
    }
    if (b.js) {
        jsCtx_Destroy(b.js);
    }
    if (b.nc) {
        natsConnection_Destroy(b.nc);
    }
    if (own) {
        nmt_server_cleanup(&srv);
    }
    if (err) {
        fprintf(stderr, "bench jetstream: some runs lost or failed events\n");
        return -1;
    }
    nmb_report(o, "jetstream.adapter_64B", nmb_median(v, runs), "events/s",
               "natsc_async_publish_64B", nmb_median(base, runs));
    return 0;
}
