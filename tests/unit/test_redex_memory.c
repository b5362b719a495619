/*
 * tests/unit/test_redex_memory.c - the memory of in-memory logs
 * (docs/storage.md "Memory"): what the three regions hold resident -
 * records, room faulted in ahead of the writer, huge-page rounding - stays
 * within max_memory_bytes (plus the page rounding of the regions' ends),
 * whatever the record mix, with huge pages or without, up to the cap and
 * while retention evicts and compaction rewrites at the cap. Resident
 * memory is measured with mincore over each region's whole mapping.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <netmesh/redex.h>

#include "bus_helpers.h"
#include "redex/redex_impl.h"

/* The page rounding the bound allows: the partly used page at each
 * region's end, and the idx spare record crossing into the next page. */
#define SLACK (4 * 4096u)

/* Bytes of r's mapping that are resident. */
static uint64_t
resident_of(const nmi_rx_region *r)
{
    if (!r->map || r->cap == 0) {
        return 0;
    }
    uint64_t ps = (uint64_t)sysconf(_SC_PAGESIZE);
    size_t pages = (size_t)((r->cap + ps - 1) / ps);
    unsigned char *v = malloc(pages);
    cr_assert_not_null(v);
    cr_assert_eq(mincore(r->map, (size_t)r->cap, v), 0);
    uint64_t n = 0;
    for (size_t i = 0; i < pages; i++) {
        n += v[i] & 1;
    }
    free(v);
    return n * ps;
}

/* Resident bytes of a log's three regions (white-box; the log's mutex
 * keeps the regions still while we look). */
static uint64_t
resident(nm_redex_file *f)
{
    nmi_rx_core *c = f->c;
    pthread_mutex_lock(&c->mu);
    uint64_t n =
        resident_of(&c->idx) + resident_of(&c->dat) + resident_of(&c->ts);
    pthread_mutex_unlock(&c->mu);
    return n;
}

static nm_redex_file *
open_mem(nm_redex **rx, const nm_redex_file_config *fc)
{
    NM_ASSERT_OK(nm_redex_open(NULL, rx));
    nm_redex_file *f;
    NM_ASSERT_OK(nm_redex_open_file(*rx, "mem/t", fc, &f));
    return f;
}

/* Append records of `len` bytes (0 < len; inline when inl) until the cap
 * refuses one, checking the resident bound every `every` appends. Returns
 * how many were appended. */
static uint64_t
fill_to_cap(nm_redex_file *f, uint64_t cap, size_t len, bool inl,
            uint64_t every, uint64_t max_appends)
{
    uint8_t buf[4096];
    memset(buf, 'm', sizeof(buf));
    uint64_t n = 0, peak = 0;
    for (; n < max_appends; n++) {
        memcpy(buf, &n, sizeof(n));
        int rc = inl ? nm_redex_append_inline(f, buf, NULL)
                     : nm_redex_append(f, buf, len, NULL);
        if (rc == NM_EBACKPRESSURE) {
            break;
        }
        cr_assert_eq(rc, NM_OK, "append %llu: %s (%s)", (unsigned long long)n,
                     nm_err_name(rc), nm_errdetail());
        if (n % every == 0) {
            uint64_t r = resident(f);
            peak = r > peak ? r : peak;
            cr_assert_leq(r, cap + SLACK,
                          "after %llu appends: %llu bytes resident, cap %llu",
                          (unsigned long long)n, (unsigned long long)r,
                          (unsigned long long)cap);
        }
    }
    uint64_t r = resident(f);
    cr_assert_leq(r, cap + SLACK, "at the cap: %llu bytes resident, cap %llu",
                  (unsigned long long)r, (unsigned long long)cap);
    return n;
}

/* A cap large enough for huge pages: small records up to the cap. */
Test(redex_memory, huge_small_records_stay_under_cap)
{
    uint64_t cap = 24u << 20;
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.max_memory_bytes = cap;
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, &fc);
    uint64_t n = fill_to_cap(f, cap, 32, false, 2000, 10u << 20);
    /* it really went to the cap (60 accounted bytes per record) */
    cr_assert_geq(n * 60, cap - 60, "%llu appends", (unsigned long long)n);
    nm_redex_close(rx);
}

/* Payload-heavy records: dat dominates. */
Test(redex_memory, huge_large_records_stay_under_cap)
{
    uint64_t cap = 20u << 20;
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.max_memory_bytes = cap;
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, &fc);
    uint64_t n = fill_to_cap(f, cap, 3000, false, 50, 1u << 20);
    cr_assert_gt(n, 6000);
    nm_redex_close(rx);
}

/* Inline records: no dat at all, idx and ts grow. */
Test(redex_memory, inline_records_stay_under_cap)
{
    uint64_t cap = 18u << 20;
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.max_memory_bytes = cap;
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, &fc);
    uint64_t n = fill_to_cap(f, cap, 8, true, 5000, 10u << 20);
    cr_assert_geq(n * 28, cap - 28);
    nm_redex_close(rx);
}

/* A cap too small for huge pages: 4 KiB pages, room ahead only as far as
 * the cap leaves. */
Test(redex_memory, small_cap_stays_under_cap)
{
    uint64_t caps[] = {64u << 10, 1u << 20, 3u << 20};
    for (size_t k = 0; k < NMI_ARRAY_LEN(caps); k++) {
        nm_redex_file_config fc;
        nm_redex_file_config_init(&fc);
        fc.max_memory_bytes = caps[k];
        nm_redex *rx;
        nm_redex_file *f = open_mem(&rx, &fc);
        (void)fill_to_cap(f, caps[k], 100, false, 97, 1u << 20);
        nm_redex_close(rx);
    }
}

/* At the cap with retention: every append evicts, sweeps compact; the
 * log keeps taking appends and memory stays bounded. */
Test(redex_memory, retention_at_the_cap_stays_bounded)
{
    uint64_t cap = 20u << 20;
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.max_memory_bytes = cap;
    fc.retention_max_bytes = cap / 2;
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, &fc);
    uint8_t buf[200];
    memset(buf, 'r', sizeof(buf));
    /* 4x the cap's worth of records */
    uint64_t total = 4 * cap / (sizeof(buf) + 28);
    for (uint64_t i = 0; i < total; i++) {
        memcpy(buf, &i, sizeof(i));
        NM_ASSERT_OK(nm_redex_append(f, buf, sizeof(buf), NULL));
        if (i % 3000 == 0) {
            uint64_t r = resident(f);
            cr_assert_leq(r, cap + SLACK, "after %llu: %llu resident",
                          (unsigned long long)i, (unsigned long long)r);
        }
    }
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
    cr_assert_gt(st.lowest_seq, 0, "retention evicted");
    /* the retained records read back intact */
    nm_redex_event ev;
    NM_ASSERT_OK(nm_redex_read_one(f, st.next_seq - 1, &ev));
    uint64_t last;
    memcpy(&last, ev.payload, sizeof(last));
    cr_assert_eq(last, total - 1);
    nm_redex_event_free(&ev);
    cr_assert_leq(resident(f), cap + SLACK);
    nm_redex_close(rx);
}

/* Records written across huge-page boundaries, growths (the mapping
 * moves) and the switch to 4 KiB pages near the cap all read back. */
Test(redex_memory, contents_survive_growth_and_give_back)
{
    uint64_t cap = 17u << 20;
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.max_memory_bytes = cap;
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, &fc);
    uint8_t buf[301];
    uint64_t n = 0;
    for (;; n++) {
        size_t len = 1 + n % sizeof(buf);
        memset(buf, (int)(n & 0xff), len);
        int rc = nm_redex_append(f, buf, len, NULL);
        if (rc == NM_EBACKPRESSURE) {
            break;
        }
        NM_ASSERT_OK(rc);
    }
    cr_assert_gt(n, 50000);
    nm_redex_batch b;
    NM_ASSERT_OK(nm_redex_read_range(f, 0, n, 0, &b));
    cr_assert_eq(b.count, n);
    for (uint64_t i = 0; i < n; i++) {
        size_t len = 1 + i % sizeof(buf);
        cr_assert_eq(b.events[i].len, len);
        for (size_t k = 0; k < len; k++) {
            cr_assert_eq(b.events[i].payload[k], (uint8_t)(i & 0xff),
                         "record %llu byte %zu", (unsigned long long)i, k);
        }
    }
    nm_redex_batch_free(&b);
    nm_redex_close(rx);
}

/* A log that stays small holds its first 80 KiB per region in 4 KiB
 * pages, whatever its cap: no 2 MiB huge page for a handful of records. */
Test(redex_memory, small_log_stays_small)
{
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, NULL); /* default cap, 64 MiB */
    uint8_t buf[32];
    memset(buf, 's', sizeof(buf));
    for (int i = 0; i < 1000; i++) {
        NM_ASSERT_OK(nm_redex_append(f, buf, sizeof(buf), NULL));
    }
    uint64_t r = resident(f);
    cr_assert_leq(r, 3 * NMI_RX_GRAIN * 4 + SLACK,
                  "%llu bytes resident for 1000 small records",
                  (unsigned long long)r);
    nm_redex_close(rx);
}

/* Records evicted while a region is still small, then the region moves to
 * huge pages (a fresh mapping, the live part copied): the retained records
 * read back intact and the evicted prefix takes no memory. */
Test(redex_memory, eviction_before_huge_pages)
{
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.max_memory_bytes = 32u << 20;
    fc.retention_max_events = 300;
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, &fc);
    uint8_t buf[40];
    uint64_t n = 0;
    for (; n < 1500; n++) { /* dat stays under 80 KiB */
        memset(buf, (int)(n & 0xff), sizeof(buf));
        NM_ASSERT_OK(nm_redex_append(f, buf, sizeof(buf), NULL));
    }
    cr_assert_eq(nm_redex_sweep(f), 1200);
    for (; n < 40000; n++) { /* every region grows into huge pages */
        memset(buf, (int)(n & 0xff), sizeof(buf));
        NM_ASSERT_OK(nm_redex_append(f, buf, sizeof(buf), NULL));
    }
    nm_redex_batch b;
    NM_ASSERT_OK(nm_redex_read_range(f, 1200, n, 0, &b));
    cr_assert_eq(b.count, n - 1200);
    for (size_t i = 0; i < b.count; i++) {
        uint64_t seq = 1200 + i;
        cr_assert_eq(b.events[i].seq, seq);
        cr_assert_eq(b.events[i].len, sizeof(buf));
        cr_assert_eq(b.events[i].payload[0], (uint8_t)(seq & 0xff),
                     "record %llu", (unsigned long long)seq);
        cr_assert_eq(b.events[i].payload[sizeof(buf) - 1],
                     (uint8_t)(seq & 0xff));
    }
    nm_redex_batch_free(&b);
    cr_assert_leq(resident(f), fc.max_memory_bytes + SLACK);
    nm_redex_close(rx);
}
