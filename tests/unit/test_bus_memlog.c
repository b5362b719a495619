/* tests/unit/test_bus_memlog.c - the memory adapter's packed log: events
 * of every size across chunk boundaries, eviction and chunk reuse, an
 * event bigger than a chunk, the dispatcher's direct path handing over to
 * the batch path when a subscription appears, and batches from outside
 * the bus. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include <netmesh/adapter.h>

#include "bus_helpers.h"

/* Event k: a header naming k, padded with a k-dependent byte to a length
 * that cycles through inline (<= 104) and heap sizes. */
static size_t
make_event(uint8_t *buf, uint64_t k)
{
    size_t len = 1 + (size_t)((k * 37) % 300);
    int n = snprintf((char *)buf, len + 1, "%llu", (unsigned long long)k);
    for (size_t i = (size_t)n < len ? (size_t)n : len; i < len; i++) {
        buf[i] = (uint8_t)('a' + (k + i) % 26);
    }
    return len;
}

/* Standard base64 of a NUL-terminated string (for hand-made cursors). */
static void
b64(const char *in, char *out)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    const uint8_t *p = (const uint8_t *)in;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

static nm_bus *
manual_bus(uint64_t capacity, uint32_t max_event)
{
    static nm_memory_config mc;
    mc.capacity_per_shard = capacity;
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 1;
    cfg.ring_capacity = 4096;
    cfg.dispatch = NM_DISPATCH_MANUAL;
    cfg.adapter_config = &mc;
    if (max_event) {
        cfg.max_event_bytes = max_event;
    }
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    return bus;
}

/* Emit events first..first+n-1, dispatching in uneven batches; their
 * receipts' timestamps go to ts[k]. */
static void
emit_range(nm_bus *bus, uint64_t first, uint64_t n, uint64_t *ts)
{
    uint8_t buf[400];
    for (uint64_t k = first; k < first + n; k++) {
        size_t len = make_event(buf, k);
        nm_receipt r;
        NM_ASSERT_OK(nm_bus_emit_raw(bus, buf, len, &r));
        cr_assert_eq(r.seq, k);
        ts[k] = r.timestamp;
        if (k % 1237 == 0 || k % 4000 == 3999) {
            cr_assert_gt(nm_bus_dispatch(bus, 0), 0);
        }
    }
    nm_bus_dispatch(bus, 0);
}

/* Page through everything with `limit` and check it is exactly events
 * from..to-1, bytes and timestamps included. */
static void
check_poll(nm_bus *bus, uint64_t from, uint64_t to, size_t limit,
           const uint64_t *ts)
{
    uint8_t buf[400];
    uint64_t next = from;
    char *cursor = NULL;
    for (;;) {
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = limit;
        req.cursor = cursor;
        nm_poll_response resp;
        NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
        for (size_t i = 0; i < resp.count; i++) {
            const nm_event *e = &resp.events[i];
            cr_assert_eq(e->seq, next, "seq %llu, expected %llu",
                         (unsigned long long)e->seq, (unsigned long long)next);
            size_t len = make_event(buf, next);
            cr_assert_eq(e->len, len);
            cr_assert(memcmp(e->data, buf, len) == 0, "bytes of %llu",
                      (unsigned long long)next);
            cr_assert_eq(e->data[len], '\0');
            cr_assert_eq(e->timestamp, ts[next]);
            char id[24];
            snprintf(id, sizeof(id), "%llu", (unsigned long long)next);
            cr_assert_str_eq(e->id, id);
            next++;
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
    cr_assert_eq(next, to, "read up to %llu, expected %llu",
                 (unsigned long long)next, (unsigned long long)to);
}

Test(memlog, every_size_across_chunk_boundaries, .timeout = 60)
{
    enum { N = 60000 }; /* ~9 MB: chunks of 64 KiB doubling to 2 MiB */
    uint64_t *ts = calloc(N, sizeof(uint64_t));
    nm_bus *bus = manual_bus(1u << 20, 0);
    emit_range(bus, 0, N, ts);
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.dispatched, N);
    cr_assert_eq(st.adapter_evicted, 0);
    check_poll(bus, 0, N, 777, ts);
    check_poll(bus, 0, N, 100000, ts);

    /* A cursor in the middle of the log (inside some chunk). */
    for (uint64_t after = 0; after < N; after += 6151) {
        char json[64];
        snprintf(json, sizeof(json), "{\"0\":\"%llu\"}",
                 (unsigned long long)after);
        char cur[128];
        b64(json, cur);
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = 3;
        req.cursor = cur;
        nm_poll_response resp;
        NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
        cr_assert_eq(resp.count, after + 3 < N ? 3 : N - after - 1);
        for (size_t i = 0; i < resp.count; i++) {
            cr_assert_eq(resp.events[i].seq, after + 1 + i);
        }
        nm_poll_response_free(&resp);
    }
    nm_bus_close(bus);
    free(ts);
}

Test(memlog, eviction_recycles_chunks_and_keeps_the_newest, .timeout = 60)
{
    enum { N = 150000, CAP = 20000 };
    uint64_t *ts = calloc(N, sizeof(uint64_t));
    nm_bus *bus = manual_bus(CAP, 0);
    emit_range(bus, 0, N, ts);
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.dispatched, N);
    cr_assert_eq(st.adapter_evicted, N - CAP);
    check_poll(bus, N - CAP, N, 999, ts);

    /* A cursor into evicted history resumes at the oldest retained. */
    nm_poll_request req;
    nm_poll_request_init(&req);
    req.cursor = "eyIwIjoiMyJ9"; /* {"0":"3"} */
    req.limit = 2;
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 2);
    cr_assert_eq(resp.events[0].seq, N - CAP);
    nm_poll_response_free(&resp);
    nm_bus_close(bus);
    free(ts);
}

Test(memlog, capacity_one_keeps_only_the_last)
{
    uint64_t ts[5000];
    nm_bus *bus = manual_bus(1, 0);
    emit_range(bus, 0, 5000, ts);
    cr_assert_eq(stats_of(bus).adapter_evicted, 4999);
    check_poll(bus, 4999, 5000, 10, ts);
    nm_bus_close(bus);
}

Test(memlog, an_event_bigger_than_a_chunk, .timeout = 60)
{
    enum { BIG = 3 << 20 };
    nm_bus *bus = manual_bus(1u << 20, 4u << 20);
    uint8_t *big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++) {
        big[i] = (uint8_t)(i * 7);
    }
    NM_ASSERT_OK(nm_bus_emit_raw(bus, "{\"a\":1}", 7, NULL));
    NM_ASSERT_OK(nm_bus_emit_raw(bus, big, BIG, NULL));
    NM_ASSERT_OK(nm_bus_emit_raw(bus, "{\"a\":2}", 7, NULL));
    nm_bus_dispatch(bus, 0);
    NM_ASSERT_OK(nm_bus_emit_raw(bus, big, BIG, NULL));
    NM_ASSERT_OK(nm_bus_emit_raw(bus, "{\"a\":3}", 7, NULL));
    nm_bus_dispatch(bus, 0);
    nm_poll_request req;
    nm_poll_request_init(&req);
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 5);
    cr_assert_eq(resp.events[1].len, BIG);
    cr_assert_eq(resp.events[3].len, BIG);
    cr_assert(memcmp(resp.events[1].data, big, BIG) == 0);
    cr_assert(memcmp(resp.events[3].data, big, BIG) == 0);
    cr_assert_eq(resp.events[4].len, 7);
    cr_assert(memcmp(resp.events[4].data, "{\"a\":3}", 7) == 0);
    nm_poll_response_free(&resp);
    nm_bus_close(bus);
    free(big);
}

/* A producer emitting while a subscription appears: the dispatcher's
 * direct path must hand over to the batch path so that the subscription
 * gets every event accepted after it was created, and the log still gets
 * everything, once and in order. */
typedef struct {
    nm_bus *bus;
    _Atomic bool *subscribed;
    uint64_t n;
    uint64_t after; /* emits that began after the subscription existed */
    uint64_t *first_after; /* per shard: lowest such seq (or UINT64_MAX) */
    int errors;
} sub_producer;

static void *
produce(void *arg)
{
    sub_producer *p = arg;
    uint8_t buf[400];
    for (uint64_t k = 0; k < p->n; k++) {
        bool sub = atomic_load(p->subscribed);
        size_t len = make_event(buf, k);
        nm_receipt r;
        if (nm_bus_emit_raw(p->bus, buf, len, &r) != NM_OK) {
            p->errors++;
            continue;
        }
        if (sub) {
            p->after++;
            if (r.seq < p->first_after[r.shard]) {
                p->first_after[r.shard] = r.seq;
            }
        }
    }
    return NULL;
}

Test(memlog, a_subscription_appearing_mid_stream_gets_its_events,
     .timeout = 120)
{
    enum { N = 400000, SHARDS = 2 };
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = SHARDS;
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 60000;
    cfg.sub_queue_capacity = N;
    nm_memory_config mc = {.capacity_per_shard = N};
    cfg.adapter_config = &mc;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    _Atomic bool subscribed = false;
    uint64_t first_after[SHARDS] = {UINT64_MAX, UINT64_MAX};
    sub_producer p = {.bus = bus,
                      .subscribed = &subscribed,
                      .n = N,
                      .first_after = first_after};
    pthread_t t;
    pthread_create(&t, NULL, produce, &p);
    /* Let the direct path run for a while, then subscribe. */
    while (stats_of(bus).dispatched < N / 4) {
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    nm_sub *sub;
    NM_ASSERT_OK(nm_bus_subscribe(bus, NULL, &sub));
    atomic_store(&subscribed, true);
    pthread_join(t, NULL);
    cr_assert_eq(p.errors, 0);
    NM_ASSERT_OK(nm_bus_shutdown(bus, 60000));

    /* Per shard, the subscription sees one gap-free run of seqs that
     * covers every emit that began after it existed. */
    uint64_t first[SHARDS] = {UINT64_MAX, UINT64_MAX}, next[SHARDS] = {0};
    uint64_t got = 0;
    nm_event ev;
    while (nm_sub_next(sub, &ev, 0) == NM_OK) {
        if (first[ev.shard] == UINT64_MAX) {
            first[ev.shard] = ev.seq;
        } else {
            cr_assert_eq(ev.seq, next[ev.shard], "gap in shard %u", ev.shard);
        }
        next[ev.shard] = ev.seq + 1;
        got++;
    }
    cr_assert_eq(nm_sub_missed(sub), 0);
    cr_assert_geq(got, p.after);
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.dispatched, N);
    cr_assert_eq(st.dropped, 0);
    for (int s = 0; s < SHARDS; s++) {
        if (first_after[s] != UINT64_MAX) {
            cr_assert_leq(first[s], first_after[s]);
        }
    }
    /* The log got all of it, from both paths, in order. */
    uint64_t seen[SHARDS] = {0};
    char *cursor = NULL;
    for (;;) {
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = 10000;
        req.cursor = cursor;
        nm_poll_response resp;
        NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
        for (size_t i = 0; i < resp.count; i++) {
            cr_assert_eq(resp.events[i].seq, seen[resp.events[i].shard]);
            seen[resp.events[i].shard]++;
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
    cr_assert_eq(seen[0] + seen[1], N);
    nm_sub_close(sub);
    nm_bus_close(bus);
}

/* The memory adapter also takes batches that do not come from the bus's
 * own ring (with gaps in seq). */
typedef struct {
    const nm_adapter_ops *ops;
    void *mem;
} wrap_state;

static wrap_state *the_wrap;

static int
wrap_init(const void *config, uint32_t shards, void **state)
{
    wrap_state *w = calloc(1, sizeof(*w));
    w->ops = nm_adapter_memory();
    int rc = w->ops->init(config, shards, &w->mem);
    the_wrap = w;
    *state = w;
    return rc;
}

static int
wrap_on_batch(void *state, const nm_batch *b)
{
    wrap_state *w = state;
    /* Re-number with gaps: seq * 3. */
    nm_batch_event *ev = calloc(b->count, sizeof(*ev));
    for (size_t i = 0; i < b->count; i++) {
        ev[i] = b->events[i];
        ev[i].seq = b->events[i].seq * 3;
    }
    nm_batch copy = *b;
    copy.events = ev;
    int rc = w->ops->on_batch(w->mem, &copy);
    free(ev);
    return rc;
}

static int
wrap_poll(void *state, uint16_t shard, const char *after, nm_poll_sink *sink,
          bool *more)
{
    wrap_state *w = state;
    return w->ops->poll_shard(w->mem, shard, after, sink, more);
}

static void
wrap_destroy(void *state)
{
    wrap_state *w = state;
    w->ops->destroy(w->mem);
    free(w);
}

Test(memlog, batches_from_another_adapter_with_gaps)
{
    nm_adapter_ops ops = {
        .size = sizeof(nm_adapter_ops),
        .name = "wrap",
        .init = wrap_init,
        .on_batch = wrap_on_batch,
        .poll_shard = wrap_poll,
        .destroy = wrap_destroy,
    };
    nm_memory_config mc = {.capacity_per_shard = 1000};
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 1;
    cfg.dispatch = NM_DISPATCH_MANUAL;
    cfg.adapter = &ops;
    cfg.adapter_config = &mc;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    for (int k = 0; k < 1500; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
        if (k % 100 == 99) {
            nm_bus_dispatch(bus, 0);
        }
    }
    nm_bus_dispatch(bus, 0);
    cr_assert_eq(the_wrap->ops->evicted(the_wrap->mem), 500);
    nm_poll_request req;
    nm_poll_request_init(&req);
    req.limit = 1000;
    req.cursor = "eyIwIjoiMjAwMCJ9"; /* {"0":"2000"}: not an event id */
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    /* Events 667.. have seq 2001.. (> 2000). */
    cr_assert_eq(resp.count, 1500 - 667);
    cr_assert_eq(resp.events[0].seq, 667 * 3);
    cr_assert_str_eq(resp.events[0].id, "2001");
    char want[32];
    snprintf(want, sizeof(want), "{\"i\":%d}", 667);
    cr_assert_str_eq((const char *)resp.events[0].data, want);
    nm_poll_response_free(&resp);
    nm_bus_close(bus);
}

/* Several threads paging the same log at once, while it is appended to
 * and evicted from, each see one ordered run per shard (each thread keeps
 * its own poll buffers between polls). */
typedef struct {
    nm_bus *bus;
    int bad;
    uint64_t got;
} pager;

static void *
page_all(void *arg)
{
    pager *p = arg;
    for (int round = 0; round < 5; round++) {
        uint64_t last[2] = {UINT64_MAX, UINT64_MAX};
        char *cursor = NULL;
        for (;;) {
            nm_poll_request req;
            nm_poll_request_init(&req);
            req.limit = 333;
            req.cursor = cursor;
            nm_poll_response resp;
            if (nm_bus_poll(p->bus, &req, &resp) != NM_OK) {
                p->bad++;
                break;
            }
            for (size_t i = 0; i < resp.count; i++) {
                const nm_event *e = &resp.events[i];
                if (last[e->shard] != UINT64_MAX && e->seq <= last[e->shard]) {
                    p->bad++;
                }
                last[e->shard] = e->seq;
                p->got++;
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
    }
    return NULL;
}

Test(memlog, concurrent_pollers_while_appending, .timeout = 60)
{
    nm_memory_config mc = {.capacity_per_shard = 20000};
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 2;
    cfg.adapter_config = &mc;
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 60000;
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    for (int k = 0; k < 30000; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    pager pg[3] = {{.bus = bus}, {.bus = bus}, {.bus = bus}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        pthread_create(&t[i], NULL, page_all, &pg[i]);
    }
    for (int k = 30000; k < 100000; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(pg[i].bad, 0);
        cr_assert_gt(pg[i].got, 0);
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    nm_bus_stats st = stats_of(bus);
    cr_assert_eq(st.dispatched, 100000);
    /* What is left is exactly what was not evicted, at most the capacity
     * per shard. */
    pager all = {.bus = bus};
    page_all(&all);
    cr_assert_eq(all.bad, 0);
    cr_assert_eq(all.got, 5 * (100000 - st.adapter_evicted));
    cr_assert_leq(100000 - st.adapter_evicted, 2 * 20000);
    nm_bus_close(bus);
}
