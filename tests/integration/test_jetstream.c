/*
 * tests/integration/test_jetstream.c - the JetStream adapter against a real
 * `nats-server -js` (tests/servers.h: free loopback port, own store dir,
 * stopped by PID). No mock: every byte goes through the server.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nats/nats.h>
#include <netmesh.h>
#include <sodium.h>

#include "bus_helpers.h"
#include "servers.h"

/* ------------------------------------------------------------ helpers */

typedef struct bus_opts {
    const char *url;
    const char *prefix;
    uint32_t shards;
    bool manual;
    const char *nonce_path;
    int retry_deadline_ms;
    int request_timeout_ms;
    uint32_t ring;
    int64_t max_messages;
} bus_opts;

static void
bus_opts_init(bus_opts *o, const char *url, const char *prefix)
{
    memset(o, 0, sizeof(*o));
    o->url = url;
    o->prefix = prefix;
    o->shards = 2;
    o->retry_deadline_ms = 30000;
    o->request_timeout_ms = 5000;
    o->ring = 1u << 16;
}

static int
try_open(const bus_opts *o, nm_bus **out)
{
    nm_jetstream_config jc;
    nm_jetstream_config_init(&jc);
    jc.url = o->url;
    jc.prefix = o->prefix;
    jc.retry_deadline_ms = o->retry_deadline_ms;
    jc.request_timeout_ms = o->request_timeout_ms;
    jc.max_messages = o->max_messages;
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = o->shards;
    cfg.ring_capacity = o->ring;
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 120000;
    cfg.dispatch = o->manual ? NM_DISPATCH_MANUAL : NM_DISPATCH_THREAD;
    cfg.adapter = nm_adapter_jetstream();
    cfg.adapter_config = &jc;
    cfg.producer_nonce_path = o->nonce_path;
    return nm_bus_open(&cfg, out);
}

static nm_bus *
open_bus(const bus_opts *o)
{
    nm_bus *bus = NULL;
    NM_ASSERT_OK(try_open(o, &bus));
    return bus;
}

static int
event_text(char *buf, size_t cap, const char *who, uint64_t i)
{
    return snprintf(
        buf, cap, "{\"from\":\"%s\",\"i\":%" PRIu64 ",\"pad\":\"abcdefghij\"}",
        who, i);
}

static int
emit_event(nm_bus *bus, const char *who, uint64_t i, nm_receipt *r)
{
    char buf[96];
    int n = event_text(buf, sizeof(buf), who, i);
    return nm_bus_emit_raw(bus, buf, (size_t)n, r);
}

/* Poll everything (paging with the cursor, `limit` per page) and count each
 * event of `who` by index into seen[0..n). Checks every event's bytes.
 * Returns the number of events of `who` read. */
static uint64_t
poll_all(nm_bus *bus, const char *who, uint64_t n, uint32_t *seen,
         size_t limit)
{
    char *cursor = NULL;
    uint64_t got = 0;
    for (int pages = 0; pages < 1000000; pages++) {
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = limit;
        req.cursor = cursor;
        nm_poll_response resp;
        NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
        for (size_t k = 0; k < resp.count; k++) {
            const nm_event *e = &resp.events[k];
            char whobuf[16] = {0};
            uint64_t i = 0;
            cr_assert_eq(sscanf((const char *)e->data,
                                "{\"from\":\"%15[a-z]\",\"i\":%" SCNu64,
                                whobuf, &i),
                         2, "unexpected event %s", e->data);
            if (strcmp(whobuf, who) != 0) {
                continue;
            }
            cr_assert_lt(i, n, "index %" PRIu64 " out of range", i);
            char want[96];
            int wl = event_text(want, sizeof(want), who, i);
            cr_assert_eq(e->len, (size_t)wl);
            cr_assert_eq(memcmp(e->data, want, (size_t)wl), 0);
            cr_assert_eq(strtoull(e->id, NULL, 10), e->seq,
                         "id is the stream sequence");
            seen[i]++;
            got++;
        }
        free(cursor);
        cursor = strdup(resp.next_cursor);
        bool more = resp.has_more;
        nm_poll_response_free(&resp);
        if (!more) {
            break;
        }
    }
    free(cursor);
    return got;
}

/* A raw nats.c connection for looking at the streams directly. */
typedef struct raw {
    natsConnection *nc;
    jsCtx *js;
} raw;

static void
raw_open(raw *r, const char *url)
{
    cr_assert_eq(natsConnection_ConnectTo(&r->nc, url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&r->js, r->nc, NULL), NATS_OK);
}

static void
raw_close(raw *r)
{
    jsCtx_Destroy(r->js);
    natsConnection_Destroy(r->nc);
}

static jsStreamState
raw_state(raw *r, const char *stream)
{
    jsStreamInfo *si = NULL;
    jsErrCode je = 0;
    natsStatus s = js_GetStreamInfo(&si, r->js, stream, NULL, &je);
    cr_assert_eq(s, NATS_OK, "stream info %s: %d", stream, (int)je);
    jsStreamState st = si->State;
    jsStreamInfo_Destroy(si);
    return st;
}

static uint64_t
raw_count(raw *r, const char *prefix, uint32_t shards)
{
    uint64_t total = 0;
    for (uint32_t s = 0; s < shards; s++) {
        char name[64];
        snprintf(name, sizeof(name), "%s_shard_%u", prefix, s);
        total += raw_state(r, name).Msgs;
    }
    return total;
}

/* Bounded wait for nm_bus_healthy() == want (10 ms steps). */
static bool
wait_healthy(nm_bus *bus, bool want, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 10) {
        if (nm_bus_healthy(bus) == want) {
            return true;
        }
        usleep(10000);
    }
    return nm_bus_healthy(bus) == want;
}

/* ------------------------------------------------------------ tests */

Test(jetstream, roundtrip_100k_events_exact, .timeout = 240)
{
    nmt_server srv;
    nmt_server_start(&srv, NMT_NATS);
    bus_opts o;
    bus_opts_init(&o, srv.url, "rt");
    o.shards = 4;
    nm_bus *bus = open_bus(&o);
    enum { N = 100000 };
    for (uint64_t i = 0; i < N; i++) {
        NM_ASSERT_OK(emit_event(bus, "a", i, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 120000));
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.ingested, N);
    cr_assert_eq(st.dispatched, N);
    cr_assert_eq(st.dropped, 0);
    cr_assert(nm_bus_healthy(bus));

    raw r;
    raw_open(&r, srv.url);
    cr_assert_eq(raw_count(&r, "rt", 4), N, "stored exactly once each");
    raw_close(&r);

    uint32_t *seen = calloc(N, sizeof(uint32_t));
    cr_assert_eq(poll_all(bus, "a", N, seen, 7777), N);
    for (uint64_t i = 0; i < N; i++) {
        cr_assert_eq(seen[i], 1, "event %" PRIu64 " seen %u times", i,
                     seen[i]);
    }
    free(seen);
    nm_bus_close(bus);
    nmt_server_cleanup(&srv);
}

Test(jetstream, stored_messages_have_upstream_shape, .timeout = 60)
{
    nmt_server srv;
    nmt_server_start(&srv, NMT_NATS);
    bus_opts o;
    bus_opts_init(&o, srv.url, "shape");
    o.shards = 2;
    nm_bus *bus = open_bus(&o);
    enum { N = 40 };
    nm_receipt rc[N];
    for (uint64_t i = 0; i < N; i++) {
        NM_ASSERT_OK(emit_event(bus, "s", i, &rc[i]));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 30000));
    uint64_t nonce = nm_bus_nonce(bus);

    raw r;
    raw_open(&r, srv.url);
    int found = 0;
    for (uint32_t sh = 0; sh < 2; sh++) {
        char stream[32];
        snprintf(stream, sizeof(stream), "shape_shard_%u", sh);
        jsStreamState ss = raw_state(&r, stream);
        for (uint64_t seq = ss.FirstSeq; ss.Msgs && seq <= ss.LastSeq; seq++) {
            natsMsg *m = NULL;
            cr_assert_eq(js_GetMsg(&m, r.js, stream, seq, NULL, NULL),
                         NATS_OK);
            char subj[32];
            snprintf(subj, sizeof(subj), "shape.shard.%u", sh);
            cr_assert_str_eq(natsMsg_GetSubject(m), subj);
            const char *id = NULL;
            cr_assert_eq(natsMsgHeader_Get(m, "Nats-Msg-Id", &id), NATS_OK);
            /* {nonce lowercase hex, no padding}:{shard}:{seq}:0 */
            unsigned long long n = 0, start = 0, idx = 0;
            unsigned shard = 0;
            int used = 0;
            cr_assert_eq(sscanf(id, "%llx:%u:%llu:%llu%n", &n, &shard, &start,
                                &idx, &used),
                         4, "id %s", id);
            cr_assert_eq((size_t)used, strlen(id));
            char hex[32];
            snprintf(hex, sizeof(hex), "%llx:", (unsigned long long)nonce);
            cr_assert_eq(strncmp(id, hex, strlen(hex)), 0, "id %s", id);
            cr_assert_eq(n, nonce);
            cr_assert_eq(shard, sh);
            /* The body is exactly {"r":<raw>,"t":<ts>,"s":<shard>}. */
            const char *body = natsMsg_GetData(m);
            int blen = natsMsg_GetDataLength(m);
            char who[8] = {0};
            uint64_t i = 0;
            cr_assert_eq(sscanf(body,
                                "{\"r\":{\"from\":\"%7[a-z]\",\"i\":%" SCNu64,
                                who, &i),
                         2, "body %.*s", blen, body);
            cr_assert_lt(i, N);
            cr_assert_eq(rc[i].shard, sh);
            cr_assert_eq(start + idx, rc[i].seq,
                         "seq_start + i is the event's sequence");
            cr_assert_eq(idx, 0, "one id per event: {nonce}:{shard}:{seq}:0");
            char raw_ev[96], want[160];
            event_text(raw_ev, sizeof(raw_ev), "s", i);
            int wl = snprintf(want, sizeof(want),
                              "{\"r\":%s,\"t\":%" PRIu64 ",\"s\":%u}", raw_ev,
                              rc[i].timestamp, sh);
            cr_assert_eq(blen, wl, "body %.*s", blen, body);
            cr_assert_eq(memcmp(body, want, (size_t)wl), 0, "body %.*s", blen,
                         body);
            natsMsg_Destroy(m);
            found++;
        }
    }
    cr_assert_eq(found, N);
    raw_close(&r);
    nm_bus_close(bus);
    nmt_server_cleanup(&srv);
}

Test(jetstream, two_processes_share_one_bus, .timeout = 120)
{
    nmt_server srv;
    nmt_server_start(&srv, NMT_NATS);
    enum { NC = 5000, NP = 1000 };
    /* Fork before this process touches libnats: the child is a fresh
     * producer with its own bus (and its own nonce) on the same streams. */
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        bus_opts o;
        bus_opts_init(&o, srv.url, "two");
        nm_bus *bus = NULL;
        if (try_open(&o, &bus) != NM_OK) {
            _exit(2);
        }
        for (uint64_t i = 0; i < NC; i++) {
            if (emit_event(bus, "child", i, NULL) != NM_OK) {
                _exit(3);
            }
        }
        int rc = nm_bus_flush(bus, 60000);
        nm_bus_stats st;
        nm_bus_stats_get(bus, &st);
        nm_bus_close(bus);
        _exit(rc == NM_OK && st.dispatched == NC ? 0 : 4);
    }
    bus_opts o;
    bus_opts_init(&o, srv.url, "two");
    nm_bus *bus = open_bus(&o);
    for (uint64_t i = 0; i < NP; i++) {
        NM_ASSERT_OK(emit_event(bus, "parent", i, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 60000));
    /* Read the child's events as they arrive (bounded). */
    uint32_t *seen = calloc(NC, sizeof(uint32_t));
    uint64_t got = 0;
    for (int round = 0; round < 6000 && got < NC; round++) {
        memset(seen, 0, NC * sizeof(uint32_t));
        got = poll_all(bus, "child", NC, seen, 1000);
        if (got < NC) {
            usleep(10000);
        }
    }
    int status = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d",
              status);
    cr_assert_eq(got, NC);
    for (uint64_t i = 0; i < NC; i++) {
        cr_assert_eq(seen[i], 1, "child event %" PRIu64, i);
    }
    free(seen);
    /* And the parent's own events are there too, once each. */
    uint32_t *mine = calloc(NP, sizeof(uint32_t));
    cr_assert_eq(poll_all(bus, "parent", NP, mine, 1000), NP);
    for (uint64_t i = 0; i < NP; i++) {
        cr_assert_eq(mine[i], 1);
    }
    free(mine);
    nm_bus_close(bus);
    nmt_server_cleanup(&srv);
}

/* The crash-restart producer: emits 0..n-1 in steps of `step`, each step
 * dispatched by hand (so batch boundaries, sequences and dedup ids are the
 * same in every run), reporting the count acknowledged after each step. */
static void
producer_main(const char *url, const char *nonce_path, uint64_t n,
              uint64_t step, int progress_fd)
{
    bus_opts o;
    bus_opts_init(&o, url, "crash");
    /* The dispatcher thread cuts batches by timing, differently in the two
     * runs: the per-event dedup ids must not care. */
    o.manual = false;
    o.nonce_path = nonce_path;
    nm_bus *bus = NULL;
    if (try_open(&o, &bus) != NM_OK) {
        _exit(2);
    }
    for (uint64_t i = 0; i < n; i += step) {
        for (uint64_t k = i; k < i + step && k < n; k++) {
            if (emit_event(bus, "p", k, NULL) != NM_OK) {
                _exit(3);
            }
        }
        if (nm_bus_flush(bus, 30000) != NM_OK) {
            _exit(4);
        }
        nm_bus_stats st;
        nm_bus_stats_get(bus, &st);
        if (st.dropped != 0) {
            _exit(5);
        }
        uint64_t acked = st.dispatched;
        if (progress_fd >= 0 &&
            write(progress_fd, &acked, sizeof(acked)) != sizeof(acked)) {
            _exit(6);
        }
    }
    int rc = nm_bus_flush(bus, 60000);
    nm_bus_close(bus);
    _exit(rc == NM_OK ? 0 : 7);
}

Test(jetstream, crash_restart_is_stored_once, .timeout = 180)
{
    nmt_server srv;
    nmt_server_start(&srv, NMT_NATS);
    char nonce_path[200];
    snprintf(nonce_path, sizeof(nonce_path), "%s/producer.nonce", srv.dir);
    enum { N = 20000, STEP = 500 };

    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t a = fork();
    cr_assert_geq(a, 0);
    if (a == 0) {
        close(p[0]);
        producer_main(srv.url, nonce_path, N, STEP, p[1]);
    }
    close(p[1]);
    /* Kill it once at least half was acknowledged: it is then publishing
     * the next step (mid-batch). */
    uint64_t acked = 0;
    while (acked < N / 2) {
        ssize_t r = read(p[0], &acked, sizeof(acked));
        cr_assert_eq(r, (ssize_t)sizeof(acked), "producer died early");
    }
    kill(a, SIGKILL);
    int status = 0;
    cr_assert_eq(waitpid(a, &status, 0), a);
    cr_assert(WIFSIGNALED(status));
    close(p[0]);

    /* The nonce persisted; restart the producer: it re-sends everything
     * with the same dedup ids. */
    pid_t b = fork();
    cr_assert_geq(b, 0);
    if (b == 0) {
        producer_main(srv.url, nonce_path, N, STEP, -1);
    }
    cr_assert_eq(waitpid(b, &status, 0), b);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "restarted producer status %d", status);

    raw r;
    raw_open(&r, srv.url);
    cr_assert_eq(raw_count(&r, "crash", 2), N, "each event stored once");
    raw_close(&r);
    bus_opts o;
    bus_opts_init(&o, srv.url, "crash");
    nm_bus *bus = open_bus(&o);
    uint32_t *seen = calloc(N, sizeof(uint32_t));
    cr_assert_eq(poll_all(bus, "p", N, seen, 5000), N);
    for (uint64_t i = 0; i < N; i++) {
        cr_assert_eq(seen[i], 1, "event %" PRIu64 " seen %u times", i,
                     seen[i]);
    }
    free(seen);
    nm_bus_close(bus);
    nmt_server_cleanup(&srv);
}

Test(jetstream, server_killed_and_restarted_loses_nothing, .timeout = 180)
{
    nmt_server srv;
    nmt_server_start(&srv, NMT_NATS);
    bus_opts o;
    bus_opts_init(&o, srv.url, "kill");
    o.request_timeout_ms = 1000;
    o.ring = 4096;
    nm_bus *bus = open_bus(&o);
    enum { N1 = 5000, N2 = 2000, N3 = 5000, N = N1 + N2 + N3 };
    uint64_t i = 0;
    for (; i < N1; i++) {
        NM_ASSERT_OK(emit_event(bus, "k", i, NULL));
    }
    /* Kill the server while the first part is still being published. */
    nmt_server_stop(&srv);
    cr_assert(wait_healthy(bus, false, 10000), "healthy while down");
    for (; i < N1 + N2; i++) {
        NM_ASSERT_OK(emit_event(bus, "k", i, NULL));
    }
    cr_assert_not(nm_bus_healthy(bus));
    nmt_server_restart(&srv);
    for (; i < N; i++) {
        NM_ASSERT_OK(emit_event(bus, "k", i, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 120000));
    cr_assert(wait_healthy(bus, true, 30000), "healthy after restart");
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.ingested, N);

    raw r;
    raw_open(&r, srv.url);
    uint64_t stored = raw_count(&r, "kill", 2);
    raw_close(&r);
    cr_assert_eq(stored + st.dropped, st.ingested,
                 "stored %" PRIu64 " + dropped %" PRIu64
                 " != accepted %" PRIu64,
                 stored, st.dropped, st.ingested);
    cr_assert_eq(st.dropped, 0, "the outage was shorter than the deadline");
    uint32_t *seen = calloc(N, sizeof(uint32_t));
    cr_assert_eq(poll_all(bus, "k", N, seen, 5000), N);
    for (uint64_t k = 0; k < N; k++) {
        cr_assert_eq(seen[k], 1, "event %" PRIu64, k);
    }
    free(seen);
    nm_bus_close(bus);
    nmt_server_cleanup(&srv);
}

Test(jetstream, outage_past_deadline_counts_drops, .timeout = 120)
{
    nmt_server srv;
    nmt_server_start(&srv, NMT_NATS);
    bus_opts o;
    bus_opts_init(&o, srv.url, "drop");
    o.retry_deadline_ms = 300;
    o.request_timeout_ms = 500;
    nm_bus *bus = open_bus(&o);
    enum { N1 = 1000, N2 = 500, N3 = 700 };
    uint64_t i = 0;
    for (; i < N1; i++) {
        NM_ASSERT_OK(emit_event(bus, "d", i, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 30000));
    nmt_server_stop(&srv);
    cr_assert(wait_healthy(bus, false, 10000));
    for (; i < N1 + N2; i++) {
        NM_ASSERT_OK(emit_event(bus, "d", i, NULL));
    }
    /* The dispatcher gives up on these after the deadline: counted. */
    NM_ASSERT_OK(nm_bus_flush(bus, 30000));
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.dropped, N2);
    cr_assert_geq(st.adapter_errors, 1);
    cr_assert_not(nm_bus_healthy(bus));
    nmt_server_restart(&srv);
    /* Wait (bounded) until libnats reconnected: poll answers again. */
    bool back = false;
    for (int t = 0; t < 1000 && !back; t++) {
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = 1;
        nm_poll_response resp;
        back = nm_bus_poll(bus, &req, &resp) == NM_OK;
        if (back) {
            nm_poll_response_free(&resp);
        } else {
            usleep(10000);
        }
    }
    cr_assert(back, "reconnected");
    /* Delivery resumes by itself. */
    for (; i < N1 + N2 + N3; i++) {
        NM_ASSERT_OK(emit_event(bus, "d", i, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 30000));
    cr_assert(wait_healthy(bus, true, 30000));
    st = stats_of(bus);
    cr_assert_eq(st.ingested, N1 + N2 + N3);
    cr_assert_eq(st.dropped, N2);
    cr_assert_eq(st.dispatched, N1 + N3);
    raw r;
    raw_open(&r, srv.url);
    uint64_t stored = raw_count(&r, "drop", 2);
    raw_close(&r);
    cr_assert_eq(stored + st.dropped, st.ingested,
                 "stored %" PRIu64 " + dropped %" PRIu64
                 " != accepted %" PRIu64,
                 stored, st.dropped, st.ingested);
    nm_bus_close(bus);
    nmt_server_cleanup(&srv);
}

Test(jetstream, poll_skips_deleted_and_evicted_messages, .timeout = 60)
{
    nmt_server srv;
    nmt_server_start(&srv, NMT_NATS);
    bus_opts o;
    bus_opts_init(&o, srv.url, "gap");
    o.shards = 1;
    o.max_messages = 100;
    nm_bus *bus = open_bus(&o);
    for (uint64_t i = 0; i < 300; i++) {
        NM_ASSERT_OK(emit_event(bus, "g", i, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 30000));
    raw r;
    raw_open(&r, srv.url);
    jsStreamState ss = raw_state(&r, "gap_shard_0");
    cr_assert_eq(ss.Msgs, 100);
    cr_assert_eq(ss.FirstSeq, 201);
    /* Punch holes: 210..219 and the last one. */
    for (uint64_t q = 210; q < 220; q++) {
        cr_assert_eq(js_DeleteMsg(r.js, "gap_shard_0", q, NULL, NULL),
                     NATS_OK);
    }
    cr_assert_eq(js_DeleteMsg(r.js, "gap_shard_0", 300, NULL, NULL), NATS_OK);
    raw_close(&r);
    uint32_t seen[300] = {0};
    cr_assert_eq(poll_all(bus, "g", 300, seen, 7), 89);
    for (uint64_t i = 0; i < 300; i++) {
        bool kept = i >= 200 && !(i >= 209 && i < 219) && i != 299;
        cr_assert_eq(seen[i], kept ? 1u : 0u, "event %" PRIu64, i);
    }
    /* A cursor past the end reads nothing; a malformed id is rejected. */
    char cur[128];
    const char *obj = "{\"0\":\"100000\"}";
    sodium_bin2base64(cur, sizeof(cur), (const unsigned char *)obj,
                      strlen(obj), sodium_base64_VARIANT_ORIGINAL);
    nm_poll_request req;
    nm_poll_request_init(&req);
    req.cursor = cur;
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 0);
    cr_assert_not(resp.has_more);
    nm_poll_response_free(&resp);
    obj = "{\"0\":\"12x\"}";
    sodium_bin2base64(cur, sizeof(cur), (const unsigned char *)obj,
                      strlen(obj), sodium_base64_VARIANT_ORIGINAL);
    NM_ASSERT_ERR(nm_bus_poll(bus, &req, &resp), NM_EDECODE);
    nm_bus_close(bus);
    nmt_server_cleanup(&srv);
}

Test(jetstream, unreachable_server_at_open_names_the_url, .timeout = 60)
{
    int port = nmt_free_port();
    char url[64];
    snprintf(url, sizeof(url), "nats://127.0.0.1:%d", port);
    bus_opts o;
    bus_opts_init(&o, url, "x");
    nm_bus *bus = NULL;
    NM_ASSERT_ERR(try_open(&o, &bus), NM_ENOTCONN);
    cr_assert_null(bus);
    cr_assert_not_null(strstr(nm_errdetail(), url), "detail: %s",
                       nm_errdetail());
    /* Credentials in the URL never reach the message. */
    snprintf(url, sizeof(url), "nats://alice:s3cret@127.0.0.1:%d", port);
    NM_ASSERT_ERR(try_open(&o, &bus), NM_ENOTCONN);
    cr_assert_null(strstr(nm_errdetail(), "s3cret"), "detail: %s",
                   nm_errdetail());
    cr_assert_not_null(strstr(nm_errdetail(), "127.0.0.1"));
}

Test(jetstream, server_without_jetstream_is_a_clear_error, .timeout = 60)
{
    /* A plain nats-server (no -js) answers, but nothing serves the
     * JetStream API. */
    nmt_server srv;
    nmt_server_start(&srv, NMT_NATS);
    nmt_server_stop(&srv);
    char port[16];
    snprintf(port, sizeof(port), "%d", srv.port);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execl(nmt_find_binary(NMT_NATS), "nats-server", "-a", "127.0.0.1",
              "-p", port, (char *)NULL);
        _exit(127);
    }
    srv.pid = pid;
    bool up = false;
    for (int t = 0; t < 1000 && !up; t++) {
        up = nmt_server_answers(&srv);
        if (!up) {
            usleep(10000);
        }
    }
    cr_assert(up);
    bus_opts o;
    bus_opts_init(&o, srv.url, "nojs");
    o.request_timeout_ms = 1000;
    nm_bus *bus = NULL;
    int rc = try_open(&o, &bus);
    cr_assert(rc == NM_EPROTO || rc == NM_ETIMEDOUT, "got %s (%s)",
              nm_err_name(rc), nm_errdetail());
    cr_assert_not_null(strstr(nm_errdetail(), srv.url), "detail: %s",
                       nm_errdetail());
    nmt_server_cleanup(&srv);
}

Test(jetstream, deleted_stream_is_recreated_and_delivery_goes_on,
     .timeout = 60)
{
    nmt_server srv;
    nmt_server_start(&srv, NMT_NATS);
    bus_opts o;
    bus_opts_init(&o, srv.url, "del");
    o.shards = 1;
    o.request_timeout_ms = 1000;
    nm_bus *bus = open_bus(&o);
    for (uint64_t i = 0; i < 100; i++) {
        NM_ASSERT_OK(emit_event(bus, "x", i, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 30000));
    raw r;
    raw_open(&r, srv.url);
    cr_assert_eq(js_DeleteStream(r.js, "del_shard_0", NULL, NULL), NATS_OK);
    /* The next publishes get "no responders" acks: the adapter creates
     * the stream again and re-sends. */
    for (uint64_t i = 100; i < 250; i++) {
        NM_ASSERT_OK(emit_event(bus, "x", i, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 30000));
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.dropped, 0);
    cr_assert_eq(st.dispatched, 250);
    cr_assert_eq(raw_count(&r, "del", 1), 150);
    raw_close(&r);
    uint32_t seen[250] = {0};
    cr_assert_eq(poll_all(bus, "x", 250, seen, 100), 150);
    for (uint64_t i = 100; i < 250; i++) {
        cr_assert_eq(seen[i], 1);
    }
    cr_assert(nm_bus_healthy(bus));
    nm_bus_close(bus);
    nmt_server_cleanup(&srv);
}
