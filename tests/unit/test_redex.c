/*
 * tests/unit/test_redex.c - RedEX in memory: the manager, every API path,
 * every bad input, all-or-nothing batches, retention by count / bytes /
 * age, the memory cap, compaction, the periodic sweep, concurrent appends.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh/redex.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#define XXH_INLINE_ALL
#include <xxhash.h>
#pragma GCC diagnostic pop

#include "bus_helpers.h"
#include "redex/redex_impl.h"

static nm_redex *
mem_rx(void)
{
    nm_redex *rx = NULL;
    NM_ASSERT_OK(nm_redex_open(NULL, &rx));
    return rx;
}

static nm_redex_file *
mem_file(nm_redex *rx, const char *name, const nm_redex_file_config *cfg)
{
    nm_redex_file *f = NULL;
    NM_ASSERT_OK(nm_redex_open_file(rx, name, cfg, &f));
    return f;
}

static uint64_t
app(nm_redex_file *f, const char *s)
{
    uint64_t seq = UINT64_MAX;
    NM_ASSERT_OK(nm_redex_append(f, s, strlen(s), &seq));
    return seq;
}

static void
expect_payload(nm_redex_file *f, uint64_t seq, const char *s)
{
    nm_redex_event ev;
    NM_ASSERT_OK(nm_redex_read_one(f, seq, &ev));
    cr_assert_eq(ev.seq, seq);
    cr_assert_eq(ev.len, strlen(s));
    cr_assert_eq(memcmp(ev.payload, s, ev.len), 0);
    cr_assert_eq(ev.payload[ev.len], '\0');
    nm_redex_event_free(&ev);
}

Test(redex, config_defaults)
{
    nm_redex_config c;
    nm_redex_config_init(&c);
    cr_assert_eq(c.size, sizeof(c));
    cr_assert_null(c.dir);
    cr_assert_eq(c.sweep_interval_ms, 0);
    nm_redex_file_config f;
    nm_redex_file_config_init(&f);
    cr_assert_eq(f.size, sizeof(f));
    cr_assert(!f.persistent);
    cr_assert_eq(f.fsync, NM_REDEX_FSYNC_NEVER);
    cr_assert_eq(f.max_memory_bytes, 64ull << 20);
    cr_assert_eq(f.retention_max_events, 0);
    cr_assert_eq(f.retention_max_bytes, 0);
    cr_assert_eq(f.retention_max_age_ns, 0);
    cr_assert_eq(f.tail_buffer_size, 1024);
}

Test(redex, bad_manager_input)
{
    nm_redex *rx;
    NM_ASSERT_ERR(nm_redex_open(NULL, NULL), NM_EINVAL);
    nm_redex_config c;
    nm_redex_config_init(&c);
    c.size = 3;
    NM_ASSERT_ERR(nm_redex_open(&c, &rx), NM_EINVAL);
    cr_assert(strstr(nm_errdetail(), "nm_redex_config_init"));
    nm_redex_config_init(&c);
    c.dir = "/proc/version/x"; /* a file's child cannot be a directory */
    NM_ASSERT_ERR(nm_redex_open(&c, &rx), NM_EIO);
    nm_redex_close(NULL);
}

Test(redex, bad_channel_names)
{
    nm_redex *rx = mem_rx();
    nm_redex_file *f;
    const char *bad[] = {"",    "/a",     "a/",  "a//b", "A",
                         "a b", "a/../b", "./a", "a/.",  "x\xff"};
    for (size_t i = 0; i < NMI_ARRAY_LEN(bad); i++) {
        NM_ASSERT_ERR(nm_redex_open_file(rx, bad[i], NULL, &f), NM_EINVAL);
        cr_assert(nm_errdetail()[0], "no detail for '%s'", bad[i]);
    }
    char longname[300];
    memset(longname, 'a', sizeof(longname));
    longname[299] = '\0';
    NM_ASSERT_ERR(nm_redex_open_file(rx, longname, NULL, &f), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_open_file(rx, NULL, NULL, &f), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_open_file(NULL, "a", NULL, &f), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_open_file(rx, "a", NULL, NULL), NM_EINVAL);
    nm_redex_close(rx);
}

Test(redex, bad_file_configs)
{
    nm_redex *rx = mem_rx();
    nm_redex_file *f;
    nm_redex_file_config c;

    nm_redex_file_config_init(&c);
    c.size = 1;
    NM_ASSERT_ERR(nm_redex_open_file(rx, "a", &c, &f), NM_EINVAL);

    nm_redex_file_config_init(&c);
    c.persistent = true; /* the manager has no directory */
    NM_ASSERT_ERR(nm_redex_open_file(rx, "a", &c, &f), NM_EINVAL);
    cr_assert(strstr(nm_errdetail(), "directory"));

    nm_redex_file_config_init(&c);
    c.tail_buffer_size = 0;
    NM_ASSERT_ERR(nm_redex_open_file(rx, "a", &c, &f), NM_EINVAL);
    c.tail_buffer_size = (1u << 20) + 1;
    NM_ASSERT_ERR(nm_redex_open_file(rx, "a", &c, &f), NM_EINVAL);

    nm_redex_file_config_init(&c);
    c.max_memory_bytes = 0;
    NM_ASSERT_ERR(nm_redex_open_file(rx, "a", &c, &f), NM_EINVAL);

    nm_redex_file_config_init(&c);
    c.fsync = NM_REDEX_FSYNC_INTERVAL; /* interval 0 */
    NM_ASSERT_ERR(nm_redex_open_file(rx, "a", &c, &f), NM_EINVAL);
    c.fsync = (nm_redex_fsync)9;
    NM_ASSERT_ERR(nm_redex_open_file(rx, "a", &c, &f), NM_EINVAL);
    nm_redex_close(rx);
}

Test(redex, reopen_same_config_shares_the_log)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_events = 100;
    nm_redex_file *a = mem_file(rx, "cortex/tasks", &c);
    nm_redex_file *b = mem_file(rx, "cortex/tasks", &c);
    cr_assert_neq(a, b);
    cr_assert_eq(app(a, "one"), 0);
    cr_assert_eq(app(b, "two"), 1);
    expect_payload(a, 1, "two");
    /* Closing one handle leaves the other working. */
    NM_ASSERT_OK(nm_redex_file_close(a));
    NM_ASSERT_OK(nm_redex_file_close(a)); /* idempotent */
    uint64_t s;
    NM_ASSERT_ERR(nm_redex_append(a, "x", 1, &s), NM_ECLOSED);
    cr_assert_eq(app(b, "three"), 2);
    NM_ASSERT_OK(nm_redex_file_close(b));
    /* The log is gone with its last handle: a reopen starts empty. */
    nm_redex_file *d = mem_file(rx, "cortex/tasks", &c);
    NM_ASSERT_OK(nm_redex_next_seq(d, &s));
    cr_assert_eq(s, 0);
    nm_redex_close(rx);
}

Test(redex, reopen_different_config_is_eexist)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    nm_redex_file *a = mem_file(rx, "x/y", &c), *b;
    nm_redex_file_config d = c;
    d.retention_max_events = 5;
    NM_ASSERT_ERR(nm_redex_open_file(rx, "x/y", &d, &b), NM_EEXIST);
    cr_assert(strstr(nm_errdetail(), "retention_max_events"), "%s",
              nm_errdetail());
    d = c;
    d.tail_buffer_size = 7;
    NM_ASSERT_ERR(nm_redex_open_file(rx, "x/y", &d, &b), NM_EEXIST);
    cr_assert(strstr(nm_errdetail(), "tail_buffer_size"));
    d = c;
    d.max_memory_bytes = 1000;
    NM_ASSERT_ERR(nm_redex_open_file(rx, "x/y", &d, &b), NM_EEXIST);
    cr_assert(strstr(nm_errdetail(), "max_memory_bytes"));
    d = c;
    d.retention_max_age_ns = 1;
    NM_ASSERT_ERR(nm_redex_open_file(rx, "x/y", &d, &b), NM_EEXIST);
    d = c;
    d.retention_max_bytes = 1;
    NM_ASSERT_ERR(nm_redex_open_file(rx, "x/y", &d, &b), NM_EEXIST);
    /* fsync settings of an in-memory file are ignored, as upstream */
    d = c;
    d.fsync = NM_REDEX_FSYNC_EVERY_N;
    d.fsync_every_n = 8;
    NM_ASSERT_OK(nm_redex_open_file(rx, "x/y", &d, &b));
    /* another channel is independent */
    NM_ASSERT_OK(nm_redex_open_file(rx, "x/z", &d, &b));
    (void)a;
    nm_redex_close(rx);
}

Test(redex, append_read_roundtrip)
{
    nm_redex *rx = mem_rx();
    nm_redex_file *f = mem_file(rx, "a", NULL);
    uint64_t s;
    NM_ASSERT_OK(nm_redex_next_seq(f, &s));
    cr_assert_eq(s, 0);
    NM_ASSERT_OK(nm_redex_lowest_seq(f, &s));
    cr_assert_eq(s, 0);
    for (int i = 0; i < 1000; i++) {
        char b[32];
        snprintf(b, sizeof(b), "event-%d", i);
        cr_assert_eq(app(f, b), (uint64_t)i);
    }
    for (int i = 0; i < 1000; i += 37) {
        char b[32];
        snprintf(b, sizeof(b), "event-%d", i);
        expect_payload(f, (uint64_t)i, b);
    }
    /* empty payloads are records too */
    NM_ASSERT_OK(nm_redex_append(f, NULL, 0, &s));
    cr_assert_eq(s, 1000);
    expect_payload(f, 1000, "");
    /* checksum and timestamp */
    nm_redex_event ev;
    NM_ASSERT_OK(nm_redex_read_one(f, 3, &ev));
    cr_assert_eq(ev.checksum,
                 (uint32_t)XXH3_64bits("event-3", 7) & 0x0FFFFFFFu);
    cr_assert_eq(ev.flags, 0);
    uint64_t now = nmi_wall_ns();
    cr_assert(ev.timestamp_ns > now - 60ull * 1000000000ull &&
              ev.timestamp_ns <= now + 1000000000ull);
    nm_redex_event_free(&ev);
    nm_redex_event_free(NULL);
    NM_ASSERT_OK(nm_redex_next_seq(f, &s));
    cr_assert_eq(s, 1001);
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
    cr_assert_eq(st.records, 1001);
    cr_assert_eq(st.generation, 0);
    cr_assert_eq(st.durable_seq, 0);
    nm_redex_close(rx);
}

Test(redex, inline_append)
{
    nm_redex *rx = mem_rx();
    nm_redex_file *f = mem_file(rx, "a", NULL);
    const uint8_t in[8] = {0xff, 0, 1, 2, 0x80, 0x7f, 'x', 0};
    uint64_t s;
    NM_ASSERT_OK(nm_redex_append_inline(f, in, &s));
    cr_assert_eq(s, 0);
    app(f, "heap");
    NM_ASSERT_OK(nm_redex_append_inline(f, in, &s));
    cr_assert_eq(s, 2);
    nm_redex_event ev;
    NM_ASSERT_OK(nm_redex_read_one(f, 0, &ev));
    cr_assert_eq(ev.len, 8);
    cr_assert_eq(memcmp(ev.payload, in, 8), 0);
    cr_assert_eq(ev.flags, NM_REDEX_FLAG_INLINE);
    cr_assert_eq(ev.checksum, (uint32_t)XXH3_64bits(in, 8) & 0x0FFFFFFFu);
    nm_redex_event_free(&ev);
    expect_payload(f, 1, "heap");
    NM_ASSERT_ERR(nm_redex_append_inline(f, NULL, &s), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_append_inline(NULL, in, &s), NM_EINVAL);
    nm_redex_close(rx);
}

Test(redex, bad_append_input)
{
    nm_redex *rx = mem_rx();
    nm_redex_file *f = mem_file(rx, "a", NULL);
    uint64_t s;
    NM_ASSERT_ERR(nm_redex_append(NULL, "x", 1, &s), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_append(f, NULL, 1, &s), NM_EINVAL);
    NM_ASSERT_ERR(
        nm_redex_append(f, "x", (size_t)NM_REDEX_MAX_PAYLOAD + 1, &s),
        NM_ETOOBIG);
    NM_ASSERT_OK(nm_redex_append(f, "x", 1, NULL)); /* seq out optional */
    NM_ASSERT_OK(nm_redex_next_seq(f, &s));
    cr_assert_eq(s, 1);
    NM_ASSERT_ERR(nm_redex_next_seq(f, NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_lowest_seq(NULL, &s), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_read_one(f, 0, NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_sync(NULL), NM_EINVAL);
    NM_ASSERT_ERR((int)nm_redex_sweep(NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_compact(NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_file_stats_get(f, NULL), NM_EINVAL);
    NM_ASSERT_ERR((int)nm_redex_sweep_all(NULL), NM_EINVAL);
    cr_assert_eq(nm_redex_file_close(NULL), NM_OK);
    nm_redex_close(rx);
}

Test(redex, batch_all_or_nothing)
{
    nm_redex *rx = mem_rx();
    nm_redex_file *f = mem_file(rx, "a", NULL);
    const char *p[3] = {"a", "bb", "ccc"};
    size_t l[3] = {1, 2, 3};
    uint64_t first;
    NM_ASSERT_OK(
        nm_redex_append_batch(f, (const void *const *)p, l, 3, &first));
    cr_assert_eq(first, 0);
    expect_payload(f, 0, "a");
    expect_payload(f, 2, "ccc");
    /* bad batches append nothing */
    size_t big[3] = {1, (size_t)NM_REDEX_MAX_PAYLOAD + 1, 3};
    NM_ASSERT_ERR(
        nm_redex_append_batch(f, (const void *const *)p, big, 3, &first),
        NM_ETOOBIG);
    const char *withnull[2] = {"x", NULL};
    size_t l2[2] = {1, 1};
    NM_ASSERT_ERR(
        nm_redex_append_batch(f, (const void *const *)withnull, l2, 2, &first),
        NM_EINVAL);
    NM_ASSERT_ERR(
        nm_redex_append_batch(f, (const void *const *)p, l, 0, &first),
        NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_append_batch(f, NULL, l, 1, &first), NM_EINVAL);
    uint64_t s;
    NM_ASSERT_OK(nm_redex_next_seq(f, &s));
    cr_assert_eq(s, 3);
    /* a batch larger than the stack checksum array */
    enum { N = 300 };
    const void *pp[N];
    size_t ll[N];
    char bufs[N][8];
    for (int i = 0; i < N; i++) {
        ll[i] = (size_t)snprintf(bufs[i], 8, "%d", i);
        pp[i] = bufs[i];
    }
    NM_ASSERT_OK(nm_redex_append_batch(f, pp, ll, N, &first));
    cr_assert_eq(first, 3);
    expect_payload(f, 3 + 299, "299");
    nm_redex_close(rx);
}

Test(redex, batch_over_memory_cap_appends_nothing)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.max_memory_bytes = 1000;
    nm_redex_file *f = mem_file(rx, "a", &c);
    char blob[100];
    memset(blob, 'b', sizeof(blob));
    const void *p[10];
    size_t l[10];
    for (int i = 0; i < 10; i++) {
        p[i] = blob;
        l[i] = sizeof(blob);
    }
    uint64_t first;
    /* 10 * (28 + 100) = 1280 > 1000 */
    NM_ASSERT_ERR(nm_redex_append_batch(f, p, l, 10, &first),
                  NM_EBACKPRESSURE);
    uint64_t s;
    NM_ASSERT_OK(nm_redex_next_seq(f, &s));
    cr_assert_eq(s, 0);
    NM_ASSERT_OK(nm_redex_append_batch(f, p, l, 7, &first)); /* 896 */
    NM_ASSERT_ERR(nm_redex_append(f, blob, sizeof(blob), &s),
                  NM_EBACKPRESSURE);
    cr_assert(strstr(nm_errdetail(), "max_memory_bytes"));
    nm_redex_close(rx);
}

Test(redex, memory_cap_sweeps_retention_first)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.max_memory_bytes = 4096;
    c.retention_max_events = 10;
    nm_redex_file *f = mem_file(rx, "a", &c);
    char b[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(b, sizeof(b), "record %d", i);
        cr_assert_eq(app(f, b), (uint64_t)i);
    }
    uint64_t low;
    NM_ASSERT_OK(nm_redex_lowest_seq(f, &low));
    cr_assert_geq(low, 4990 - 200);
    expect_payload(f, 4999, "record 4999");
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
    cr_assert_leq(st.resident_bytes, 4096);
    cr_assert_gt(st.compactions, 0);
    nm_redex_close(rx);
}

Test(redex, writes_after_close_are_eclosed)
{
    nm_redex *rx = mem_rx();
    nm_redex_file *f = mem_file(rx, "a", NULL);
    app(f, "x");
    NM_ASSERT_OK(nm_redex_file_close(f));
    uint64_t s;
    uint8_t in[8] = {0};
    const void *p[1] = {"x"};
    size_t l[1] = {1};
    nm_redex_event ev;
    nm_redex_batch b;
    nm_redex_tail *t;
    nm_redex_file_stats st;
    NM_ASSERT_ERR(nm_redex_append(f, "x", 1, &s), NM_ECLOSED);
    NM_ASSERT_ERR(nm_redex_append_inline(f, in, &s), NM_ECLOSED);
    NM_ASSERT_ERR(nm_redex_append_batch(f, p, l, 1, &s), NM_ECLOSED);
    NM_ASSERT_ERR(nm_redex_read_one(f, 0, &ev), NM_ECLOSED);
    NM_ASSERT_ERR(nm_redex_read_range(f, 0, 1, 0, &b), NM_ECLOSED);
    NM_ASSERT_ERR(nm_redex_next_seq(f, &s), NM_ECLOSED);
    NM_ASSERT_ERR(nm_redex_lowest_seq(f, &s), NM_ECLOSED);
    NM_ASSERT_ERR(nm_redex_sync(f), NM_ECLOSED);
    NM_ASSERT_ERR((int)nm_redex_sweep(f), NM_ECLOSED);
    NM_ASSERT_ERR(nm_redex_compact(f), NM_ECLOSED);
    NM_ASSERT_ERR(nm_redex_tail_open(f, 0, &t), NM_ECLOSED);
    NM_ASSERT_ERR(nm_redex_file_stats_get(f, &st), NM_ECLOSED);
    NM_ASSERT_OK(nm_redex_file_close(f));
    nm_redex_close(rx);
}

Test(redex, manager_close_closes_files)
{
    nm_redex *rx = mem_rx();
    nm_redex_file *f = mem_file(rx, "a", NULL);
    nm_redex_file *g = mem_file(rx, "b", NULL);
    app(f, "x");
    app(g, "y");
    NM_ASSERT_OK(nm_redex_file_close(g));
    nm_redex_close(rx); /* frees f and g */
}

Test(redex, read_unknown_and_evicted)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_events = 5;
    nm_redex_file *f = mem_file(rx, "a", &c);
    nm_redex_event ev;
    NM_ASSERT_ERR(nm_redex_read_one(f, 0, &ev), NM_ENOTFOUND);
    cr_assert(strstr(nm_errdetail(), "not written"));
    for (int i = 0; i < 20; i++) {
        app(f, "r");
    }
    cr_assert_eq(nm_redex_sweep(f), 15);
    NM_ASSERT_ERR(nm_redex_read_one(f, 14, &ev), NM_ENOTFOUND);
    cr_assert(strstr(nm_errdetail(), "evicted"), "%s", nm_errdetail());
    cr_assert_null(ev.payload);
    NM_ASSERT_OK(nm_redex_read_one(f, 15, &ev));
    nm_redex_event_free(&ev);
    NM_ASSERT_ERR(nm_redex_read_one(f, 20, &ev), NM_ENOTFOUND);
    NM_ASSERT_ERR(nm_redex_read_one(f, UINT64_MAX, &ev), NM_ENOTFOUND);
    nm_redex_close(rx);
}

Test(redex, read_range_half_open_skips_evicted)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_events = 10;
    nm_redex_file *f = mem_file(rx, "a", &c);
    char b[16];
    for (int i = 0; i < 30; i++) {
        snprintf(b, sizeof(b), "%d", i);
        app(f, b);
    }
    nm_redex_batch r;
    NM_ASSERT_OK(nm_redex_read_range(f, 3, 7, 0, &r));
    cr_assert_eq(r.count, 4);
    cr_assert_eq(r.events[0].seq, 3);
    cr_assert_eq(r.events[3].seq, 6);
    cr_assert_str_eq((const char *)r.events[3].payload, "6");
    cr_assert_eq(r.next_seq, 7);
    nm_redex_batch_free(&r);
    cr_assert_null(r.events);
    cr_assert_eq(nm_redex_sweep(f), 20);
    NM_ASSERT_OK(nm_redex_read_range(f, 0, 25, 0, &r));
    cr_assert_eq(r.count, 5); /* 20..24: 0..19 skipped */
    cr_assert_eq(r.events[0].seq, 20);
    nm_redex_batch_free(&r);
    NM_ASSERT_OK(nm_redex_read_range(f, 0, 1000, 3, &r));
    cr_assert_eq(r.count, 3);
    cr_assert_eq(r.next_seq, 23);
    nm_redex_batch_free(&r);
    NM_ASSERT_OK(nm_redex_read_range(f, 0, 10, 0, &r)); /* all evicted */
    cr_assert_eq(r.count, 0);
    cr_assert_null(r.events);
    cr_assert_eq(r.next_seq, 10);
    nm_redex_batch_free(&r);
    NM_ASSERT_OK(nm_redex_read_range(f, 30, 30, 0, &r));
    cr_assert_eq(r.count, 0);
    NM_ASSERT_ERR(nm_redex_read_range(f, 5, 4, 0, &r), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_read_range(f, 0, 1, 0, NULL), NM_EINVAL);
    nm_redex_batch_free(NULL);
    nm_redex_close(rx);
}

Test(redex, retention_by_count)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_events = 100;
    nm_redex_file *f = mem_file(rx, "a", &c);
    for (int i = 0; i < 99; i++) {
        app(f, "x");
    }
    cr_assert_eq(nm_redex_sweep(f), 0);
    for (int i = 0; i < 51; i++) {
        app(f, "x");
    }
    cr_assert_eq(nm_redex_sweep(f), 50);
    cr_assert_eq(nm_redex_sweep(f), 0);
    uint64_t low;
    NM_ASSERT_OK(nm_redex_lowest_seq(f, &low));
    cr_assert_eq(low, 50);
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
    cr_assert_eq(st.records, 100);
    cr_assert_eq(st.retained_bytes, 100 * 21);
    nm_redex_close(rx);
}

Test(redex, retention_by_bytes)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_bytes = 1000; /* 20 + 30 = 50 per record: 20 fit */
    nm_redex_file *f = mem_file(rx, "a", &c);
    char b[31];
    memset(b, 'q', 30);
    b[30] = '\0';
    for (int i = 0; i < 50; i++) {
        app(f, b);
    }
    uint8_t in[8] = {1};
    uint64_t s;
    NM_ASSERT_OK(nm_redex_append_inline(f, in, &s)); /* counts 20 */
    /* 50*50 + 20 = 2520; keep <= 1000: drop 31 heap records (1550) */
    cr_assert_eq(nm_redex_sweep(f), 31);
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
    cr_assert_leq(st.retained_bytes, 1000);
    cr_assert_eq(st.retained_bytes, 19 * 50 + 20);
    nm_redex_close(rx);
}

Test(redex, retention_by_age)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_age_ns = 60ull * 1000000000ull; /* a minute */
    nm_redex_file *f = mem_file(rx, "a", &c);
    nmi_rx_set_clock_skew(0);
    for (int i = 0; i < 10; i++) {
        app(f, "old");
    }
    /* Ten minutes later (a skewed clock: no sleeping in tests). */
    nmi_rx_set_clock_skew(600ll * 1000000000ll);
    for (int i = 0; i < 5; i++) {
        app(f, "new");
    }
    cr_assert_eq(nm_redex_sweep(f), 10);
    expect_payload(f, 10, "new");
    cr_assert_eq(nm_redex_sweep(f), 0);
    /* and another ten minutes later everything is too old */
    nmi_rx_set_clock_skew(1200ll * 1000000000ll);
    cr_assert_eq(nm_redex_sweep(f), 5);
    nmi_rx_set_clock_skew(0);
    nm_redex_close(rx);
}

Test(redex, retention_policies_and_together)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_events = 40;
    c.retention_max_bytes = 20 * 21; /* 20 records of 1 byte */
    nm_redex_file *f = mem_file(rx, "a", &c);
    for (int i = 0; i < 100; i++) {
        app(f, "z");
    }
    /* count asks for 60, bytes for 80: the larger wins */
    cr_assert_eq(nm_redex_sweep(f), 80);
    nm_redex_close(rx);
}

Test(redex, compaction_keeps_data)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_events = 1000;
    nm_redex_file *f = mem_file(rx, "a", &c);
    char b[64];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 5000; i++) {
            snprintf(b, sizeof(b), "r%d-i%d", round, i);
            app(f, b);
        }
        cr_assert_geq(nm_redex_sweep(f), 0);
    }
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
    cr_assert_gt(st.compactions, 0);
    cr_assert_eq(st.records, 1000);
    nm_redex_batch r;
    NM_ASSERT_OK(nm_redex_read_range(f, 0, UINT64_MAX, 0, &r));
    cr_assert_eq(r.count, 1000);
    for (size_t i = 0; i < r.count; i++) {
        snprintf(b, sizeof(b), "r19-i%zu", 4000 + i);
        cr_assert_str_eq((const char *)r.events[i].payload, b);
        cr_assert_eq(r.events[i].seq, 99000 + i);
    }
    nm_redex_batch_free(&r);
    /* explicit compaction of a log with nothing evicted is harmless */
    NM_ASSERT_OK(nm_redex_compact(f));
    expect_payload(f, 99999, "r19-i4999");
    nm_redex_close(rx);
}

Test(redex, evict_everything_then_append)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_age_ns = 1;
    nm_redex_file *f = mem_file(rx, "a", &c);
    for (int i = 0; i < 10; i++) {
        app(f, "x");
    }
    nmi_rx_set_clock_skew(5ll * 1000000000ll);
    cr_assert_eq(nm_redex_sweep(f), 10);
    nmi_rx_set_clock_skew(0);
    uint64_t low, next;
    NM_ASSERT_OK(nm_redex_lowest_seq(f, &low));
    NM_ASSERT_OK(nm_redex_next_seq(f, &next));
    cr_assert_eq(low, 10);
    cr_assert_eq(next, 10);
    NM_ASSERT_OK(nm_redex_compact(f));
    cr_assert_eq(app(f, "after"), 10);
    expect_payload(f, 10, "after");
    nm_redex_close(rx);
}

Test(redex, periodic_sweep_thread)
{
    nm_redex_config rc;
    nm_redex_config_init(&rc);
    rc.sweep_interval_ms = 5;
    nm_redex *rx;
    NM_ASSERT_OK(nm_redex_open(&rc, &rx));
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_events = 5;
    nm_redex_file *f = mem_file(rx, "a", &c);
    for (int i = 0; i < 100; i++) {
        app(f, "x");
    }
    uint64_t low = 0;
    uint64_t deadline = nmi_mono_ns() + 10ull * 1000000000ull;
    while (low != 95 && nmi_mono_ns() < deadline) {
        NM_ASSERT_OK(nm_redex_lowest_seq(f, &low));
        nmi_sleep_ns(1000000);
    }
    cr_assert_eq(low, 95, "the sweep thread never ran");
    nm_redex_close(rx);
}

Test(redex, sweep_all)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_events = 1;
    nm_redex_file *a = mem_file(rx, "a", &c);
    nm_redex_file *b = mem_file(rx, "b", &c);
    nm_redex_file *d = mem_file(rx, "d", NULL); /* no retention */
    for (int i = 0; i < 4; i++) {
        app(a, "x");
        app(b, "y");
        app(d, "z");
    }
    cr_assert_eq(nm_redex_sweep_all(rx), 6);
    nm_redex_close(rx);
}

typedef struct writer_arg {
    nm_redex_file *f;
    int id, n;
} writer_arg;

static void *
writer(void *p)
{
    writer_arg *w = p;
    char b[32];
    for (int i = 0; i < w->n; i++) {
        int len = snprintf(b, sizeof(b), "w%d:%d", w->id, i);
        if (i % 3 == 0) {
            const void *pp[2] = {b, b};
            size_t ll[2] = {(size_t)len, (size_t)len};
            if (nm_redex_append_batch(w->f, pp, ll, 2, NULL)) {
                return (void *)1;
            }
        } else if (nm_redex_append(w->f, b, (size_t)len, NULL)) {
            return (void *)1;
        }
    }
    return NULL;
}

Test(redex, concurrent_appends_are_dense_and_intact)
{
    nm_redex *rx = mem_rx();
    nm_redex_file *f = mem_file(rx, "a", NULL);
    enum { T = 4, N = 5000 };
    pthread_t th[T];
    writer_arg wa[T];
    for (int i = 0; i < T; i++) {
        wa[i] = (writer_arg){f, i, N};
        pthread_create(&th[i], NULL, writer, &wa[i]);
    }
    for (int i = 0; i < T; i++) {
        void *r;
        pthread_join(th[i], &r);
        cr_assert_null(r);
    }
    uint64_t next;
    NM_ASSERT_OK(nm_redex_next_seq(f, &next));
    uint64_t per = N + (N + 2) / 3; /* every third is a pair */
    cr_assert_eq(next, T * per);
    nm_redex_batch r;
    NM_ASSERT_OK(nm_redex_read_range(f, 0, next, 0, &r));
    int last[T];
    for (int i = 0; i < T; i++) {
        last[i] = -1;
    }
    for (size_t k = 0; k < r.count; k++) {
        cr_assert_eq(r.events[k].seq, k);
        int id, i;
        cr_assert_eq(
            sscanf((const char *)r.events[k].payload, "w%d:%d", &id, &i), 2);
        cr_assert(i >= last[id], "writer %d went backwards", id);
        last[id] = i;
        cr_assert_eq(
            r.events[k].checksum,
            (uint32_t)XXH3_64bits(r.events[k].payload, r.events[k].len) &
                0x0FFFFFFFu);
    }
    nm_redex_batch_free(&r);
    nm_redex_close(rx);
}

Test(redex, big_payloads)
{
    nm_redex *rx = mem_rx();
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.max_memory_bytes = 64ull << 20;
    nm_redex_file *f = mem_file(rx, "a", &c);
    size_t n = 3u << 20;
    uint8_t *big = malloc(n);
    for (size_t i = 0; i < n; i++) {
        big[i] = (uint8_t)(i * 7);
    }
    uint64_t s;
    NM_ASSERT_OK(nm_redex_append(f, big, n, &s));
    app(f, "small");
    nm_redex_event ev;
    NM_ASSERT_OK(nm_redex_read_one(f, s, &ev));
    cr_assert_eq(ev.len, n);
    cr_assert_eq(memcmp(ev.payload, big, n), 0);
    nm_redex_event_free(&ev);
    free(big);
    nm_redex_close(rx);
}
