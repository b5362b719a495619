/*
 * tools/netmesh/cmd_demo.c - `netmesh demo`: the main job on the embedded
 * in-memory default. Opens a bus, emits every way, polls with a cursor
 * and a filter, reads a live subscription fed by producer threads, prints
 * stats, and shuts down gracefully. Exits 0 when everything adds up.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <netmesh.h>
#include <sodium.h>

#include "core/core.h"
#include "mesh/mesh_ext.h"

#define DEMO_CHECK(call)                                                      \
    do {                                                                      \
        int rc_ = (call);                                                     \
        if (rc_ < 0) {                                                        \
            return nm_cli_fail(rc_, "demo: %s", #call);                       \
        }                                                                     \
    } while (0)

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    nm_sub *sub;
    uint64_t got;
    char first[3][96]; /* the first events, for show */
} consumer_t;

static void *
consumer(void *arg)
{
    consumer_t *c = arg;
    nm_event ev;
    while (nm_sub_next(c->sub, &ev, -1) == NM_OK) {
        if (c->got < 3) {
            snprintf(c->first[c->got], sizeof(c->first[0]), "%s",
                     (const char *)ev.data);
        }
        c->got++;
    }
    return NULL;
}

typedef struct {
    nm_bus *bus;
    int id;
    int n;
    int accepted;
} producer_t;

static void *
producer(void *arg)
{
    producer_t *p = arg;
    char buf[96];
    static const char *kinds[] = {"temperature", "pressure", "vibration"};
    for (int i = 0; i < p->n; i++) {
        int len = snprintf(buf, sizeof(buf),
                           "{\"sensor\":\"line-%d\",\"kind\":\"%s\","
                           "\"seq\":%d}",
                           p->id, kinds[i % 3], i);
        if (nm_bus_emit_raw(p->bus, buf, (size_t)len, NULL) == NM_OK) {
            p->accepted++;
        }
    }
    return NULL;
}

/* 7. A small encrypted mesh in this process: A - B - C on loopback UDP,
 * A reaches C through B (a routed handshake; B relays ciphertext it
 * cannot open), a reliable in-order stream crosses it. */
static nm_mesh_t *
mesh_node(const uint8_t psk[32])
{
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    memcpy(cfg.psk, psk, 32);
    cfg.psk_set = true;
    cfg.accept_any = true;
    cfg.heartbeat_ms = 50;
    cfg.session_timeout_ms = 200;
    nm_mesh_t *m = NULL;
    if (nm_mesh_open(&cfg, &m) != NM_OK) {
        fprintf(stderr, "netmesh demo: mesh: %s\n", nm_errdetail());
        return NULL;
    }
    return m;
}

static bool
mesh_link(nm_mesh_t *from, nm_mesh_t *to)
{
    char addr[NM_MESH_ADDR_MAX];
    uint8_t pub[NM_MESH_KEY_BYTES];
    nm_mesh_local_addr(to, addr, sizeof(addr));
    nm_mesh_static_pubkey(to, pub);
    return nm_mesh_connect_routed(from, addr, pub, nm_mesh_node_id(to),
                                  5000) == NM_OK;
}

/* 8. Capability discovery across the relayed mesh, and a channel that
 * demands a token: C announces a GPU, A (two hops away) finds it in its
 * local index; C serves an authenticated channel; A subscribes with a
 * token C issued it and receives, B without one is refused. */
static bool
demo_caps_and_channel(nm_mesh_t *a, nm_mesh_t *b, nm_mesh_t *c)
{
    nm_discovery *da = NULL, *db = NULL, *dc = NULL;
    nm_channels_t *ca = NULL, *cb = NULL, *cc = NULL;
    nm_capset *caps = NULL;
    uint64_t *ids = NULL;
    size_t n = 0;
    bool found = false, got = false, refused = false;
    uint64_t cid = nm_mesh_node_id(c);
    bool ok = nm_discovery_open(a, NULL, &da) == NM_OK &&
              nm_discovery_open(b, NULL, &db) == NM_OK &&
              nm_discovery_open(c, NULL, &dc) == NM_OK &&
              nm_capset_new(&caps) == NM_OK;
    if (ok) {
        nm_hardware hw = {.cpu_cores = 16, .memory_gb = 64, .has_gpu = true};
        hw.gpu.vendor = NM_GPU_NVIDIA;
        hw.gpu.model = "h100";
        hw.gpu.vram_gb = 80;
        ok = nm_capset_set_hardware(caps, &hw) == NM_OK &&
             nm_discovery_announce(dc, caps) == NM_OK;
    }
    nm_capfilter f = NM_CAPFILTER_INIT;
    f.require_gpu = true;
    for (int i = 0; ok && !found && i < 300; i++) {
        if (nm_discovery_find_nodes(da, &f, &ids, &n) == NM_OK) {
            found = n == 1 && ids[0] == cid;
            free(ids);
            ids = NULL;
        }
        if (!found) {
            nm_mesh_event ev; /* a bounded 10 ms wait */
            (void)nm_mesh_next_event(a, 10, &ev);
        }
    }
    printf("\n8. capability discovery: C announced a GPU (signed, flooded "
           "through B);\n   A's local index finds it two hops away: %s\n",
           found ? "holds" : "BROKEN");

    const char *chan = "demo/gpu-jobs";
    ok = ok && nm_channels_open(a, NULL, &ca) == NM_OK &&
         nm_channels_open(b, NULL, &cb) == NM_OK &&
         nm_channels_open(c, NULL, &cc) == NM_OK;
    nm_channel_config cfg;
    nm_channel_config_init(&cfg, chan);
    cfg.require_token = true; /* rooted in C's own identity */
    cfg.reliable = true;
    ok = ok && nm_channels_register(cc, &cfg) == NM_OK;
    uint64_t hash = 0;
    uint8_t a_entity[NM_ENTITY_ID_BYTES];
    nm_token tok;
    nm_token_chain chain;
    nm_token_chain_init(&chain);
    ok = ok && nm_channel_hash(chan, strlen(chan), &hash) == NM_OK &&
         nm_mesh_entity_id(a, a_entity) == NM_OK &&
         nm_token_issue(nmi_mesh_identity(c), a_entity, NM_SCOPE_SUBSCRIBE,
                        hash, 600, 0, &tok) == NM_OK &&
         nm_token_chain_push(&chain, &tok) == NM_OK;
    nm_channel_reason why = NM_CHAN_OK;
    if (ok) {
        nm_subscribe_opts so = {.size = sizeof(so), .token = &chain};
        ok = nm_channels_subscribe(ca, cid, chan, &so, 3000, &why) == NM_OK;
        refused = nm_channels_subscribe(cb, cid, chan, NULL, 3000, &why) ==
                      NM_ECHANREJECTED &&
                  why == NM_CHAN_UNAUTHORIZED;
    }
    nm_publish_report rep = {0};
    if (ok && nm_channels_publish(cc, chan, "job-1", 5, &rep) == NM_OK) {
        nm_channel_delivery *d = NULL;
        if (nm_channels_recv(ca, 3000, &d) == NM_OK) {
            got = d->count == 1 && d->msgs[0].len == 5 &&
                  memcmp(d->msgs[0].data, "job-1", 5) == 0;
            nm_channel_delivery_free(d);
        }
    }
    printf("   channel %s (token required): A with C's token receives "
           "(%llu/%llu delivered): %s\n",
           chan, (unsigned long long)rep.delivered,
           (unsigned long long)rep.attempted, got ? "holds" : "BROKEN");
    printf("   B without a token is refused (Unauthorized): %s\n",
           refused ? "holds" : "BROKEN");
    nm_channels_close(ca);
    nm_channels_close(cb);
    nm_channels_close(cc);
    nm_discovery_close(da);
    nm_discovery_close(db);
    nm_discovery_close(dc);
    nm_capset_free(caps);
    return found && got && refused;
}

static bool
demo_mesh(void)
{
    uint8_t psk[32];
    randombytes_buf(psk, sizeof(psk));
    nm_mesh_t *a = mesh_node(psk), *b = mesh_node(psk), *c = mesh_node(psk);
    bool ok = a && b && c && mesh_link(a, b) && mesh_link(c, b);
    uint64_t bid = b ? nm_mesh_node_id(b) : 0,
             cid = c ? nm_mesh_node_id(c) : 0;
    uint8_t cpub[NM_MESH_KEY_BYTES];
    if (ok) {
        nm_mesh_static_pubkey(c, cpub);
        ok = nm_mesh_connect_via(a, bid, cpub, cid, 5000) == NM_OK;
    }
    enum { MSGS = 20000, PER_CALL = 100 };
    unsigned got = 0;
    bool ordered = true;
    uint64_t t0 = nmi_mono_ns();
    if (ok) {
        nm_stream_config sc;
        nm_stream_config_init(&sc);
        sc.reliability = NM_RELIABLE;
        sc.in_order = true;
        sc.window_bytes = 1u << 20;
        nm_mesh_open_stream(a, cid, 7, &sc);
        nm_mesh_open_stream(c, nm_mesh_node_id(a), 7, &sc);
        for (uint32_t i = 0; i < MSGS && ok; i += PER_CALL) {
            uint32_t v[PER_CALL];
            const void *p[PER_CALL];
            size_t l[PER_CALL];
            for (int k = 0; k < PER_CALL; k++) {
                v[k] = i + (uint32_t)k;
                p[k] = &v[k];
                l[k] = sizeof(v[k]);
            }
            ok = nm_mesh_send_blocking(a, cid, 7, p, l, PER_CALL) == NM_OK;
        }
        nm_mesh_delivery *d;
        while (ok && got < MSGS && nm_mesh_recv(c, 3000, &d) == NM_OK) {
            for (size_t k = 0; k < d->count; k++) {
                uint32_t v;
                memcpy(&v, d->msgs[k].data, sizeof(v));
                ordered = ordered && v == got;
                got++;
            }
            nm_mesh_delivery_free(d);
        }
    }
    double ms = (double)(nmi_mono_ns() - t0) / 1e6;
    nm_mesh_stats sb;
    memset(&sb, 0, sizeof(sb));
    if (b) {
        nm_mesh_stats_get(b, &sb);
    }
    printf("\n7. encrypted mesh: A -> B -> C on loopback UDP (Noise NKpsk0, "
           "ChaCha20-Poly1305)\n");
    printf("   A reached C through B; %u of %u messages on a reliable "
           "in-order stream in %.1f ms\n",
           got, (unsigned)MSGS, ms);
    printf("   B relayed %llu packets without the A-C keys\n",
           (unsigned long long)sb.forwarded);
    bool delivered = ok && got == MSGS && ordered;
    printf("   every message exactly once, in order: %s\n",
           delivered ? "holds" : "BROKEN");
    if (delivered) {
        delivered = demo_caps_and_channel(a, b, c);
    }
    nm_mesh_close(a);
    nm_mesh_close(b);
    nm_mesh_close(c);
    return delivered && sb.forwarded > 0;
}

int
nm_cmd_demo(int argc, char **argv)
{
    bool quiet = false;
    const nm_cli_opt opts[] = {NM_CLI_FLAG("--quiet", &quiet)};
    nm_cli_parser args = {
        .opts = opts,
        .nopts = NM_CLI_LEN(opts),
        .unknown = "demo: unknown option '%s' (usage: netmesh demo [--quiet])",
    };
    int prc = nm_cli_parse(&args, argc, argv);
    if (prc != 0) {
        return prc;
    }
    printf("netmesh %s demo: an event bus on the in-memory adapter\n\n",
           nm_version());

    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 4;
    /* Block: a producer faster than the dispatcher waits for room (up to
     * ten seconds) instead of losing events. */
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 10000;
    /* Room for a million queued events per subscriber: the filtered one
     * parses every event's JSON and may fall behind for a moment. */
    cfg.sub_queue_capacity = 1u << 20;
    nm_bus *bus;
    DEMO_CHECK(nm_bus_open(&cfg, &bus));
    printf("1. opened a bus: %u shards, backpressure Block, ring %u "
           "slots/shard\n",
           nm_bus_shards(bus), cfg.ring_capacity);

    /* Every ingestion method of the seed. */
    nm_receipt r;
    json_t *v = json_pack("{s:s,s:i}", "token", "hello", "index", 0);
    DEMO_CHECK(nm_bus_emit_json(bus, v, &r));
    json_decref(v);
    printf("2. emit(json)      -> shard %u seq %llu ts %llu ns\n", r.shard,
           (unsigned long long)r.seq, (unsigned long long)r.timestamp);
    DEMO_CHECK(nm_bus_emit_raw(bus, "{\"token\":\"world\"}", 17, &r));
    printf("   emit_raw(bytes) -> shard %u seq %llu\n", r.shard,
           (unsigned long long)r.seq);
    DEMO_CHECK(nm_bus_emit_str(bus, "{\"token\":\"foo\"}", &r));
    printf("   emit_str(json)  -> shard %u seq %llu\n", r.shard,
           (unsigned long long)r.seq);
    json_t *batch[3] = {json_pack("{s:i}", "a", 1), json_pack("{s:i}", "a", 2),
                        json_pack("{s:i}", "a", 3)};
    int n = nm_bus_emit_json_batch(bus, batch, 3);
    for (int i = 0; i < 3; i++) {
        json_decref(batch[i]);
    }
    DEMO_CHECK(n);
    printf("   emit_batch(3)   -> %d accepted\n", n);
    int bad = nm_bus_emit_str(bus, "{not json", NULL);
    printf("   emit_str(\"{not json\") -> %s, as it should\n",
           nm_err_name(bad));
    DEMO_CHECK(nm_bus_flush(bus, 5000));

    /* Poll everything back. */
    nm_poll_request req;
    nm_poll_request_init(&req);
    nm_poll_response resp;
    DEMO_CHECK(nm_bus_poll(bus, &req, &resp));
    printf("\n3. poll(limit 100) -> %zu events, cursor %s\n", resp.count,
           resp.next_cursor);
    for (size_t i = 0; i < resp.count; i++) {
        printf("   [shard %u id %s] %s\n", resp.events[i].shard,
               resp.events[i].id, (const char *)resp.events[i].data);
    }
    nm_poll_response_free(&resp);

    /* A live subscription fed by four producer threads. */
    nm_filter *hot;
    DEMO_CHECK(
        nm_filter_parse("{\"path\":\"kind\",\"value\":\"vibration\"}", &hot));
    nm_sub *all, *vib;
    DEMO_CHECK(nm_bus_subscribe(bus, NULL, &all));
    DEMO_CHECK(nm_bus_subscribe(bus, hot, &vib));
    enum { PRODUCERS = 4, PER = 250000 };
    producer_t p[PRODUCERS];
    pthread_t t[PRODUCERS];
    consumer_t c = {.sub = all}, cv = {.sub = vib};
    pthread_t ct, cvt;
    pthread_create(&ct, NULL, consumer, &c);
    pthread_create(&cvt, NULL, consumer, &cv);
    double t0 = now_s();
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (producer_t){.bus = bus, .id = i, .n = PER};
        pthread_create(&t[i], NULL, producer, &p[i]);
    }
    nm_event ev;
    int accepted = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(t[i], NULL);
        accepted += p[i].accepted;
    }
    double t1 = now_s();
    DEMO_CHECK(nm_bus_flush(bus, 10000));
    printf("\n4. %d producer threads emitted %d events in %.3f s "
           "(%.1f M events/s)\n",
           PRODUCERS, accepted, t1 - t0, accepted / (t1 - t0) / 1e6);
    nm_bus_stats st;
    DEMO_CHECK(nm_bus_stats_get(bus, &st));
    printf("   two subscribers read on their own threads meanwhile: all "
           "events, and a filtered one (kind == vibration)\n");

    /* Page through the log with a cursor. */
    char cursor[4096] = "";
    uint64_t paged = 0;
    int pages = 0;
    for (;;) {
        nm_poll_request_init(&req);
        req.limit = 10000;
        req.cursor = cursor[0] ? cursor : NULL;
        DEMO_CHECK(nm_bus_poll(bus, &req, &resp));
        paged += resp.count;
        pages++;
        snprintf(cursor, sizeof(cursor), "%s", resp.next_cursor);
        bool more = resp.has_more;
        nm_poll_response_free(&resp);
        if (!more) {
            break;
        }
    }
    printf("\n5. paged the memory log with a cursor: %llu events in %d "
           "pages\n",
           (unsigned long long)paged, pages);

    DEMO_CHECK(nm_bus_shutdown(bus, 10000));
    DEMO_CHECK(nm_bus_stats_get(bus, &st));
    pthread_join(ct, NULL); /* the stream ended: the consumers return */
    pthread_join(cvt, NULL);
    int end = nm_sub_next(all, &ev, 1000);
    printf("\n6. shutdown ended the live stream (%s): subscriber(all) "
           "received %llu, missed %llu, bus dropped %llu\n",
           nm_err_name(end), (unsigned long long)c.got,
           (unsigned long long)nm_sub_missed(all),
           (unsigned long long)st.dropped);
    printf("   subscriber(kind == vibration) received %llu, missed %llu; "
           "the first ones:\n",
           (unsigned long long)cv.got, (unsigned long long)nm_sub_missed(vib));
    for (int i = 0; i < 3 && (uint64_t)i < cv.got && !quiet; i++) {
        printf("     %s\n", cv.first[i]);
    }
    printf("   stats: ingested %llu, dispatched %llu, dropped %llu, "
           "batches %llu\n",
           (unsigned long long)st.ingested, (unsigned long long)st.dispatched,
           (unsigned long long)st.dropped, (unsigned long long)st.batches);
    bool ok =
        st.dispatched + st.dropped == st.ingested &&
        c.got + nm_sub_missed(all) + st.dropped == (uint64_t)PRODUCERS * PER &&
        cv.got == (uint64_t)PRODUCERS * (PER / 3) && end == NM_ECLOSED;
    printf("   received + missed + dropped == emitted: %s\n",
           c.got + nm_sub_missed(all) + st.dropped == (uint64_t)PRODUCERS * PER
               ? "holds"
               : "BROKEN");
    printf("   invariant dispatched + dropped == ingested: %s\n",
           st.dispatched + st.dropped == st.ingested ? "holds" : "BROKEN");
    nm_sub_close(all);
    nm_sub_close(vib);
    nm_filter_free(hot);
    nm_bus_close(bus);
    ok = demo_mesh() && ok;
    printf("\n%s\n", ok ? "demo ok" : "demo FAILED");
    return ok ? NM_CLI_EXIT_OK : NM_CLI_EXIT_FAIL;
}
