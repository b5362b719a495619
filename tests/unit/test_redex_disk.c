/*
 * tests/unit/test_redex_disk.c - persistent RedEX: the exact byte layouts
 * (index record, manifest, file sizes), persistence across reopen, torn
 * tails, zero slack, flipped bytes in idx / dat (recovery and
 * nm_redex_check), missing timestamps, fsync policies, compaction and the
 * manifest flip, a log larger than its memory window, flat-layout
 * migration, manifest fallback, orphan generations, the channel lock.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netmesh/redex.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#define XXH_INLINE_ALL
#include <xxhash.h>
#pragma GCC diagnostic pop

#include "bus_helpers.h"
#include "redex/redex_impl.h"

static char tmpdir[128];

static void
mktmp(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nm_redex_disk_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void
rmtmp(void)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(redex_disk, .init = mktmp, .fini = rmtmp);

static nm_redex *
open_rx(void)
{
    nm_redex_config rc;
    nm_redex_config_init(&rc);
    rc.dir = tmpdir;
    nm_redex *rx;
    NM_ASSERT_OK(nm_redex_open(&rc, &rx));
    return rx;
}

static nm_redex_file_config
pcfg(void)
{
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.persistent = true;
    return c;
}

static nm_redex_file *
open_f(nm_redex *rx, const char *ch, const nm_redex_file_config *c)
{
    nm_redex_file *f;
    NM_ASSERT_OK(nm_redex_open_file(rx, ch, c, &f));
    return f;
}

static void
put_n(nm_redex_file *f, int from, int to)
{
    char b[32];
    for (int i = from; i < to; i++) {
        int n = snprintf(b, sizeof(b), "payload-%d", i);
        NM_ASSERT_OK(nm_redex_append(f, b, (size_t)n, NULL));
    }
}

static void
expect_ev(nm_redex_file *f, uint64_t seq)
{
    nm_redex_event ev;
    NM_ASSERT_OK(nm_redex_read_one(f, seq, &ev));
    char b[32];
    snprintf(b, sizeof(b), "payload-%llu", (unsigned long long)seq);
    cr_assert_eq(ev.len, strlen(b), "seq %llu", (unsigned long long)seq);
    cr_assert_eq(memcmp(ev.payload, b, ev.len), 0);
    nm_redex_event_free(&ev);
}

static void
path(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/%s", tmpdir, rel);
}

static uint64_t
fsize_of(const char *rel)
{
    char p[512];
    path(p, sizeof(p), rel);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0, "stat %s", p);
    return (uint64_t)st.st_size;
}

static bool
exists(const char *rel)
{
    char p[512];
    path(p, sizeof(p), rel);
    struct stat st;
    return stat(p, &st) == 0;
}

static void
read_file(const char *rel, uint8_t *buf, size_t n, uint64_t off)
{
    char p[512];
    path(p, sizeof(p), rel);
    int fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0, "%s", p);
    cr_assert_eq(pread(fd, buf, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static void
write_file_at(const char *rel, const void *buf, size_t n, uint64_t off)
{
    char p[512];
    path(p, sizeof(p), rel);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    cr_assert_geq(fd, 0, "%s", p);
    cr_assert_eq(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
    close(fd);
}

static void
flip(const char *rel, uint64_t off)
{
    uint8_t b;
    read_file(rel, &b, 1, off);
    b ^= 0x20;
    write_file_at(rel, &b, 1, off);
}

static void
truncate_to(const char *rel, uint64_t n)
{
    char p[512];
    path(p, sizeof(p), rel);
    cr_assert_eq(truncate(p, (off_t)n), 0);
}

static void
check_dir(const char *rel, nm_redex_check_report *r)
{
    char p[512];
    path(p, sizeof(p), rel);
    NM_ASSERT_OK(nm_redex_check(p, r));
}

/* ----------------------------------------------------------- codec */

Test(redex_disk, index_record_bytes)
{
    nmi_rx_rec r = {.seq = 0x0102030405060708ull,
                    .off = 0x11223344u,
                    .len = 0x55667788u,
                    .fc = 0x8abcdef0u};
    uint8_t b[20];
    nmi_rx_rec_encode(&r, b);
    const uint8_t want[20] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02,
                              0x01, 0x44, 0x33, 0x22, 0x11, 0x88, 0x77,
                              0x66, 0x55, 0xf0, 0xde, 0xbc, 0x8a};
    cr_assert_eq(memcmp(b, want, 20), 0);
    nmi_rx_rec d;
    nmi_rx_rec_decode(b, &d);
    cr_assert_eq(d.seq, r.seq);
    cr_assert_eq(d.off, r.off);
    cr_assert_eq(d.len, r.len);
    cr_assert_eq(d.fc, r.fc);
    /* inline: the 8 payload bytes sit verbatim at bytes 8..16 */
    uint8_t in[8];
    nmi_rx_rec_inline(&d, in);
    cr_assert_eq(memcmp(in, want + 8, 8), 0);
    cr_assert_eq(nmi_rx_checksum("abc", 3),
                 (uint32_t)XXH3_64bits("abc", 3) & 0x0FFFFFFFu);
}

Test(redex_disk, manifest_bytes_and_rejections)
{
    uint8_t m[16];
    nmi_rx_manifest_encode(7, m);
    cr_assert_eq(memcmp(m, "REDM", 4), 0);
    cr_assert_eq(m[4], 1);
    cr_assert_eq(m[5], 7);
    cr_assert_eq(m[6] | m[7] | m[8] | m[9] | m[10] | m[11], 0);
    cr_assert_eq(nmi_load_le32(m + 12), (uint32_t)XXH3_64bits(m, 12));
    uint32_t g = 0;
    NM_ASSERT_OK(nmi_rx_manifest_decode(m, 16, &g));
    cr_assert_eq(g, 7);
    uint8_t x[16];
    NM_ASSERT_ERR(nmi_rx_manifest_decode(m, 15, &g), NM_EDECODE);
    memcpy(x, m, 16);
    x[0] = 'X';
    NM_ASSERT_ERR(nmi_rx_manifest_decode(x, 16, &g), NM_EDECODE);
    memcpy(x, m, 16);
    x[4] = 2;
    NM_ASSERT_ERR(nmi_rx_manifest_decode(x, 16, &g), NM_EDECODE);
    memcpy(x, m, 16);
    x[10] = 1;
    NM_ASSERT_ERR(nmi_rx_manifest_decode(x, 16, &g), NM_EDECODE);
    memcpy(x, m, 16);
    x[13] ^= 1;
    NM_ASSERT_ERR(nmi_rx_manifest_decode(x, 16, &g), NM_EDECODE);
    cr_assert(strstr(nm_errdetail(), "checksum"));
    nmi_rx_manifest_encode(0, x);
    NM_ASSERT_ERR(nmi_rx_manifest_decode(x, 16, &g), NM_EDECODE);
    char name[16];
    nmi_rx_gen_name(42, name);
    cr_assert_str_eq(name, "v0000000042");
    cr_assert(nmi_rx_gen_parse("v0000000042", &g) && g == 42);
    cr_assert(!nmi_rx_gen_parse("v0000000000", &g));
    cr_assert(!nmi_rx_gen_parse("v000000004", &g));
    cr_assert(!nmi_rx_gen_parse("v000000004x", &g));
    cr_assert(!nmi_rx_gen_parse("v9999999999", &g));
}

/* ------------------------------------------------------ persistence */

Test(redex_disk, layout_and_exact_sizes)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    nm_redex_file *f = open_f(rx, "cortex/tasks", &c);
    put_n(f, 0, 10); /* "payload-0".."payload-9": 9 bytes each */
    uint8_t in[8] = "INLINE!!";
    NM_ASSERT_OK(nm_redex_append_inline(f, in, NULL));
    NM_ASSERT_OK(nm_redex_file_close(f));
    cr_assert(exists("cortex/tasks/manifest"));
    cr_assert_eq(fsize_of("cortex/tasks/manifest"), 16);
    cr_assert_eq(fsize_of("cortex/tasks/v0000000001/idx"), 11 * 20);
    cr_assert_eq(fsize_of("cortex/tasks/v0000000001/dat"), 90);
    cr_assert_eq(fsize_of("cortex/tasks/v0000000001/ts"), 11 * 8);
    /* record 3 by hand */
    uint8_t rec[20];
    read_file("cortex/tasks/v0000000001/idx", rec, 20, 3 * 20);
    cr_assert_eq(nmi_load_le64(rec), 3);
    cr_assert_eq(nmi_load_le32(rec + 8), 27);
    cr_assert_eq(nmi_load_le32(rec + 12), 9);
    cr_assert_eq(nmi_load_le32(rec + 16),
                 (uint32_t)XXH3_64bits("payload-3", 9) & 0x0FFFFFFFu);
    uint8_t d[9];
    read_file("cortex/tasks/v0000000001/dat", d, 9, 27);
    cr_assert_eq(memcmp(d, "payload-3", 9), 0);
    /* the inline record */
    read_file("cortex/tasks/v0000000001/idx", rec, 20, 10 * 20);
    cr_assert_eq(nmi_load_le64(rec), 10);
    cr_assert_eq(memcmp(rec + 8, "INLINE!!", 8), 0);
    cr_assert_eq(nmi_load_le32(rec + 16),
                 0x80000000u |
                     ((uint32_t)XXH3_64bits("INLINE!!", 8) & 0x0FFFFFFFu));
    uint8_t mf[16];
    read_file("cortex/tasks/manifest", mf, 16, 0);
    uint32_t g;
    NM_ASSERT_OK(nmi_rx_manifest_decode(mf, 16, &g));
    cr_assert_eq(g, 1);
    /* timestamps: LE unix ns, non-decreasing here */
    uint8_t ts[16];
    read_file("cortex/tasks/v0000000001/ts", ts, 16, 0);
    cr_assert_gt(nmi_load_le64(ts), 1500000000ull * 1000000000ull);
    nm_redex_close(rx);
}

Test(redex_disk, persistence_across_reopen)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    nm_redex_file *f = open_f(rx, "a/b/c", &c);
    put_n(f, 0, 500);
    nm_redex_event ev;
    NM_ASSERT_OK(nm_redex_read_one(f, 7, &ev));
    uint64_t ts7 = ev.timestamp_ns;
    nm_redex_event_free(&ev);
    nm_redex_close(rx); /* closes the file */
    rx = open_rx();
    f = open_f(rx, "a/b/c", &c);
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
    cr_assert_eq(st.next_seq, 500);
    cr_assert_eq(st.lowest_seq, 0);
    cr_assert_eq(st.recovered_records, 500);
    cr_assert(!st.recovery_torn && !st.recovery_corrupt);
    cr_assert_eq(st.durable_seq, 500);
    for (uint64_t s = 0; s < 500; s += 7) {
        expect_ev(f, s);
    }
    NM_ASSERT_OK(nm_redex_read_one(f, 7, &ev));
    cr_assert_eq(ev.timestamp_ns, ts7);
    nm_redex_event_free(&ev);
    put_n(f, 500, 600);
    nm_redex_close(rx);
    rx = open_rx();
    f = open_f(rx, "a/b/c", &c);
    uint64_t next;
    NM_ASSERT_OK(nm_redex_next_seq(f, &next));
    cr_assert_eq(next, 600);
    expect_ev(f, 599);
    nm_redex_close(rx);
}

Test(redex_disk, channel_is_locked)
{
    nm_redex *a = open_rx(), *b = open_rx();
    nm_redex_file_config c = pcfg();
    nm_redex_file *f = open_f(a, "x", &c), *g;
    NM_ASSERT_ERR(nm_redex_open_file(b, "x", &c, &g), NM_EBUSY);
    NM_ASSERT_OK(nm_redex_file_close(f));
    NM_ASSERT_OK(nm_redex_open_file(b, "x", &c, &g));
    /* an in-memory file of the same name in another manager is unrelated */
    nm_redex_close(a);
    nm_redex_close(b);
}

Test(redex_disk, persistent_vs_memory_same_name_is_eexist)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg(), m;
    nm_redex_file_config_init(&m);
    nm_redex_file *f = open_f(rx, "x", &c), *g;
    NM_ASSERT_ERR(nm_redex_open_file(rx, "x", &m, &g), NM_EEXIST);
    cr_assert(strstr(nm_errdetail(), "persistent"));
    nm_redex_file_config e = c;
    e.fsync = NM_REDEX_FSYNC_EVERY_N;
    e.fsync_every_n = 0;
    nm_redex_file_config e1 = e;
    e1.fsync_every_n = 1; /* 0 and 1 both mean Always */
    NM_ASSERT_OK(nm_redex_open_file(rx, "y", &e, &g));
    NM_ASSERT_OK(nm_redex_open_file(rx, "y", &e1, &g));
    NM_ASSERT_ERR(nm_redex_open_file(rx, "y", &c, &g), NM_EEXIST);
    cr_assert(strstr(nm_errdetail(), "fsync"));
    (void)f;
    nm_redex_close(rx);
}

/* ---------------------------------------------------------- recovery */

static void
make_log(const char *ch, int n)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    nm_redex_file *f = open_f(rx, ch, &c);
    put_n(f, 0, n);
    nm_redex_close(rx);
}

static nm_redex_file_stats
reopen_cfg(nm_redex **rx, nm_redex_file **f, const char *ch,
           const nm_redex_file_config *c)
{
    *rx = open_rx();
    *f = open_f(*rx, ch, c);
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(*f, &st));
    return st;
}

static nm_redex_file_stats
reopen_stats(nm_redex **rx, nm_redex_file **f, const char *ch)
{
    *rx = open_rx();
    nm_redex_file_config c = pcfg();
    *f = open_f(*rx, ch, &c);
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(*f, &st));
    return st;
}

Test(redex_disk, torn_idx_tail)
{
    make_log("t", 100);
    truncate_to("t/v0000000001/idx", 100 * 20 - 7);
    nm_redex_check_report r;
    check_dir("t", &r);
    cr_assert_eq(r.end, NM_REDEX_END_TORN);
    cr_assert_eq(r.records, 99);
    nm_redex *rx;
    nm_redex_file *f;
    nm_redex_file_stats st = reopen_stats(&rx, &f, "t");
    cr_assert(st.recovery_torn);
    cr_assert(!st.recovery_corrupt);
    cr_assert_eq(st.next_seq, 99);
    expect_ev(f, 98);
    put_n(f, 99, 120); /* appends continue at 99 */
    nm_redex_close(rx);
    check_dir("t", &r);
    cr_assert_eq(r.end, NM_REDEX_END_CLEAN);
    cr_assert_eq(r.records, 120);
    cr_assert_eq(fsize_of("t/v0000000001/dat"), 90 + 900 + 20 * 11);
}

Test(redex_disk, torn_dat_tail_and_trailing_bytes)
{
    make_log("t", 50);
    uint64_t dat = fsize_of("t/v0000000001/dat");
    /* the last payload lost 3 bytes: its record is cut */
    truncate_to("t/v0000000001/dat", dat - 3);
    nm_redex *rx;
    nm_redex_file *f;
    nm_redex_file_stats st = reopen_stats(&rx, &f, "t");
    cr_assert(st.recovery_torn);
    cr_assert_eq(st.next_seq, 49);
    nm_redex_close(rx);
    cr_assert_eq(fsize_of("t/v0000000001/idx"), 49 * 20);
    cr_assert_eq(fsize_of("t/v0000000001/ts"), 49 * 8);
    /* trailing dat bytes no record references are trimmed (dat written,
     * the process died before idx) */
    uint64_t d2 = fsize_of("t/v0000000001/dat");
    write_file_at("t/v0000000001/dat", "garbage", 7, d2);
    st = reopen_stats(&rx, &f, "t");
    cr_assert(!st.recovery_torn && !st.recovery_corrupt);
    cr_assert_eq(st.next_seq, 49);
    nm_redex_close(rx);
    cr_assert_eq(fsize_of("t/v0000000001/dat"), d2);
}

Test(redex_disk, zero_slack_is_clean)
{
    make_log("z", 30);
    /* what a killed writer leaves: preallocated zeros after the data */
    static uint8_t zeros[100000];
    write_file_at("z/v0000000001/idx", zeros, sizeof(zeros), 30 * 20);
    write_file_at("z/v0000000001/dat", zeros, sizeof(zeros),
                  fsize_of("z/v0000000001/dat"));
    write_file_at("z/v0000000001/ts", zeros, 4096, 30 * 8);
    nm_redex_check_report r;
    check_dir("z", &r);
    cr_assert_eq(r.end, NM_REDEX_END_CLEAN);
    cr_assert_eq(r.records, 30);
    nm_redex *rx;
    nm_redex_file *f;
    nm_redex_file_stats st = reopen_stats(&rx, &f, "z");
    cr_assert(!st.recovery_torn && !st.recovery_corrupt);
    cr_assert_eq(st.next_seq, 30);
    nm_redex_close(rx);
    cr_assert_eq(fsize_of("z/v0000000001/idx"), 30 * 20);
}

Test(redex_disk, half_written_record_in_slack_is_torn)
{
    make_log("h", 30);
    static uint8_t zeros[40960];
    write_file_at("h/v0000000001/idx", zeros, sizeof(zeros), 30 * 20);
    /* the first 9 bytes of record 30 were stored when the writer died */
    uint8_t part[9] = {30, 0, 0, 0, 0, 0, 0, 0, 0x2c};
    write_file_at("h/v0000000001/idx", part, sizeof(part), 30 * 20);
    nm_redex_check_report r;
    check_dir("h", &r);
    cr_assert_eq(r.end, NM_REDEX_END_TORN, "%s", r.detail);
    cr_assert_eq(r.records, 30);
}

static void
corrupt_case(const char *rel, uint64_t off, uint64_t want_kept)
{
    make_log("c", 200);
    flip(rel, off);
    nm_redex_check_report r;
    check_dir("c", &r);
    cr_assert_eq(r.end, NM_REDEX_END_CORRUPT, "%s", r.detail);
    cr_assert_eq(r.records, want_kept);
    cr_assert_eq(r.dropped, 200 - want_kept - 1);
    cr_assert(strstr(r.detail, "record"), "%s", r.detail);
    nm_redex *rx;
    nm_redex_file *f;
    nm_redex_file_stats st = reopen_stats(&rx, &f, "c");
    cr_assert(st.recovery_corrupt);
    cr_assert_eq(st.recovered_records, want_kept);
    cr_assert_eq(st.recovery_dropped, 200 - want_kept - 1);
    cr_assert_eq(st.next_seq, want_kept, "nothing after the gap survives");
    cr_assert_eq(st.generation, 2);
    for (uint64_t s = 0; s < want_kept; s++) {
        expect_ev(f, s);
    }
    nm_redex_event ev;
    NM_ASSERT_ERR(nm_redex_read_one(f, want_kept, &ev), NM_ENOTFOUND);
    put_n(f, (int)want_kept, (int)want_kept + 5);
    nm_redex_close(rx);
    /* the damaged generation is kept aside, the new one is clean */
    cr_assert(exists("c/v0000000001.corrupt/idx"));
    cr_assert(!exists("c/v0000000001/idx"));
    check_dir("c", &r);
    cr_assert_eq(r.end, NM_REDEX_END_CLEAN);
    cr_assert_eq(r.generation, 2);
    cr_assert_eq(r.records, want_kept + 5);
    cr_assert_eq(r.quarantined, 1);
}

Test(redex_disk, flipped_dat_byte)
{
    /* payload-0..9 are 9 bytes, 10..99 10, 100.. 11: record 120 starts at
     * 90 + 900 + 20*11 */
    corrupt_case("c/v0000000001/dat", 90 + 900 + 20 * 11 + 4, 120);
}

Test(redex_disk, flipped_idx_byte_checksum)
{
    corrupt_case("c/v0000000001/idx", 77 * 20 + 17, 77);
}

Test(redex_disk, flipped_idx_byte_seq)
{
    corrupt_case("c/v0000000001/idx", 150 * 20 + 2, 150);
}

Test(redex_disk, flipped_idx_byte_offset)
{
    corrupt_case("c/v0000000001/idx", 33 * 20 + 9, 33);
}

Test(redex_disk, flipped_byte_in_the_last_record_of_a_closed_file)
{
    make_log("l", 10);
    flip("l/v0000000001/dat", fsize_of("l/v0000000001/dat") - 1);
    nm_redex_check_report r;
    check_dir("l", &r);
    cr_assert_eq(r.end, NM_REDEX_END_CORRUPT, "%s", r.detail);
    cr_assert_eq(r.records, 9);
    cr_assert_eq(r.dropped, 0);
}

Test(redex_disk, zeroed_record_in_the_middle_is_corrupt)
{
    make_log("m", 20);
    static const uint8_t z[20];
    write_file_at("m/v0000000001/idx", z, 20, 5 * 20);
    nm_redex_check_report r;
    check_dir("m", &r);
    cr_assert_eq(r.end, NM_REDEX_END_CORRUPT);
    cr_assert_eq(r.records, 5);
    cr_assert_eq(r.dropped, 14);
}

Test(redex_disk, missing_timestamps_are_filled)
{
    make_log("ts", 40);
    truncate_to("ts/v0000000001/ts", 30 * 8);
    static const uint8_t z[8];
    write_file_at("ts/v0000000001/ts", z, 8, 10 * 8); /* ts of 10 = 0 */
    nm_redex_check_report r;
    check_dir("ts", &r);
    cr_assert_eq(r.end, NM_REDEX_END_CLEAN);
    cr_assert_eq(r.records, 40);
    cr_assert_eq(r.ts_missing, 11);
    nm_redex *rx;
    nm_redex_file *f;
    nm_redex_file_stats st = reopen_stats(&rx, &f, "ts");
    cr_assert_eq(st.recovered_records, 40);
    cr_assert_eq(st.recovery_ts_filled, 11);
    nm_redex_event a, b;
    NM_ASSERT_OK(nm_redex_read_one(f, 9, &a));
    NM_ASSERT_OK(nm_redex_read_one(f, 10, &b));
    cr_assert_eq(b.timestamp_ns, a.timestamp_ns, "filled from the previous");
    nm_redex_event_free(&a);
    nm_redex_event_free(&b);
    NM_ASSERT_OK(nm_redex_read_one(f, 39, &b));
    cr_assert_gt(b.timestamp_ns, 0);
    nm_redex_event_free(&b);
    nm_redex_close(rx);
    check_dir("ts", &r);
    cr_assert_eq(r.ts_missing, 0, "written back");
    cr_assert_eq(r.ts_bytes, 40 * 8);
}

Test(redex_disk, read_detects_on_disk_corruption_after_open)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    c.max_memory_bytes = 1; /* nothing stays in memory */
    nm_redex_file *f = open_f(rx, "r", &c);
    put_n(f, 0, 1000);
    NM_ASSERT_OK(nm_redex_sync(f));
    flip("r/v0000000001/dat", 90 + 5); /* inside payload-10 */
    nm_redex_event ev;
    NM_ASSERT_ERR(nm_redex_read_one(f, 10, &ev), NM_EDECODE);
    expect_ev(f, 11);
    nm_redex_close(rx);
}

/* ------------------------------------------------------------ fsync */

Test(redex_disk, fsync_always_is_durable_on_return)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    c.fsync = NM_REDEX_FSYNC_EVERY_N;
    c.fsync_every_n = 1;
    nm_redex_file *f = open_f(rx, "a", &c);
    for (int i = 0; i < 5; i++) {
        put_n(f, i, i + 1);
        nm_redex_file_stats st;
        NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
        cr_assert_eq(st.durable_seq, (uint64_t)i + 1);
    }
    const void *p[3] = {"a", "b", "c"};
    size_t l[3] = {1, 1, 1};
    NM_ASSERT_OK(nm_redex_append_batch(f, p, l, 3, NULL));
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
    cr_assert_eq(st.durable_seq, 8);
    nm_redex_close(rx);
}

static void
wait_durable(nm_redex_file *f, uint64_t want)
{
    uint64_t deadline = nmi_mono_ns() + 20ull * 1000000000ull;
    nm_redex_file_stats st;
    do {
        NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
        if (st.durable_seq >= want) {
            return;
        }
        nmi_sleep_ns(1000000);
    } while (nmi_mono_ns() < deadline);
    cr_assert_fail("durable_seq stuck at %llu, want %llu",
                   (unsigned long long)st.durable_seq,
                   (unsigned long long)want);
}

Test(redex_disk, fsync_every_n_background)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    c.fsync = NM_REDEX_FSYNC_EVERY_N;
    c.fsync_every_n = 4;
    nm_redex_file *f = open_f(rx, "a", &c);
    put_n(f, 0, 4);
    wait_durable(f, 4);
    put_n(f, 4, 6); /* below the threshold: nothing forces a sync ... */
    NM_ASSERT_OK(nm_redex_sync(f)); /* ... except sync() */
    wait_durable(f, 6);
    nm_redex_close(rx);
}

Test(redex_disk, fsync_interval_and_bytes)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    c.fsync = NM_REDEX_FSYNC_INTERVAL;
    c.fsync_interval_ms = 5;
    nm_redex_file *f = open_f(rx, "i", &c);
    put_n(f, 0, 3);
    wait_durable(f, 3);
    nm_redex_file_config b = pcfg();
    b.fsync = NM_REDEX_FSYNC_INTERVAL_OR_BYTES;
    b.fsync_max_bytes = 100; /* 3 records of 28 + 10 */
    nm_redex_file *g = open_f(rx, "b", &b);
    put_n(g, 0, 3);
    wait_durable(g, 3);
    nm_redex_file_config n = pcfg();
    n.fsync = NM_REDEX_FSYNC_INTERVAL_OR_BYTES; /* both 0: Never */
    nm_redex_file *h = open_f(rx, "n", &n);
    put_n(h, 0, 3);
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(h, &st));
    cr_assert_eq(st.durable_seq, 0);
    NM_ASSERT_OK(nm_redex_sync(h));
    NM_ASSERT_OK(nm_redex_file_stats_get(h, &st));
    cr_assert_eq(st.durable_seq, 3);
    nm_redex_close(rx);
}

/* --------------------------------------------------------- compaction */

Test(redex_disk, retention_compacts_into_a_new_generation)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    c.retention_max_events = 10;
    nm_redex_file *f = open_f(rx, "cmp", &c);
    put_n(f, 0, 10000);
    cr_assert_eq(nm_redex_sweep(f), 9990);
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
    cr_assert_eq(st.generation, 2);
    cr_assert_eq(st.compactions, 1);
    cr_assert(!exists("cmp/v0000000001"));
    cr_assert(exists("cmp/v0000000002/idx"));
    for (uint64_t s = 9990; s < 10000; s++) {
        expect_ev(f, s);
    }
    put_n(f, 10000, 10005);
    nm_redex_close(rx);
    uint8_t mf[16];
    read_file("cmp/manifest", mf, 16, 0);
    uint32_t g;
    NM_ASSERT_OK(nmi_rx_manifest_decode(mf, 16, &g));
    cr_assert_eq(g, 2);
    cr_assert_eq(fsize_of("cmp/v0000000002/idx"), 15 * 20);
    nm_redex_file *f2;
    nm_redex_file_stats st2 = reopen_stats(&rx, &f2, "cmp");
    cr_assert_eq(st2.lowest_seq, 9990);
    cr_assert_eq(st2.next_seq, 10005);
    expect_ev(f2, 9990);
    expect_ev(f2, 10004);
    /* rebased offsets: the first payload of the generation is at 0 */
    uint8_t rec[20];
    read_file("cmp/v0000000002/idx", rec, 20, 0);
    cr_assert_eq(nmi_load_le64(rec), 9990);
    cr_assert_eq(nmi_load_le32(rec + 8), 0);
    nm_redex_close(rx);
}

Test(redex_disk, small_sweeps_do_not_compact_until_half_dead)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    c.retention_max_events = 8000;
    nm_redex_file *f = open_f(rx, "s", &c);
    put_n(f, 0, 10000);
    cr_assert_eq(nm_redex_sweep(f), 2000);
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
    cr_assert_eq(st.generation, 1);
    nm_redex_close(rx);
    /* documented: a reopen before compaction brings the evicted prefix
     * back (it is still in the files); the next sweep drops it again */
    nm_redex_file *f2;
    nm_redex_file_stats s2 = reopen_cfg(&rx, &f2, "s", &c);
    cr_assert_eq(s2.lowest_seq, 0);
    int64_t k = nm_redex_sweep(f2);
    cr_assert_eq(k, 2000, "%lld %s", (long long)k, nm_errdetail());
    NM_ASSERT_OK(nm_redex_compact(f2));
    nm_redex_close(rx);
    s2 = reopen_stats(&rx, &f2, "s");
    cr_assert_eq(s2.lowest_seq, 2000);
    cr_assert_eq(s2.generation, 2);
    nm_redex_close(rx);
}

Test(redex_disk, compaction_of_everything_keeps_next_seq)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    c.retention_max_age_ns = 1000;
    nm_redex_file *f = open_f(rx, "e", &c);
    put_n(f, 0, 5);
    nmi_rx_set_clock_skew(10ll * 1000000000ll);
    cr_assert_eq(nm_redex_sweep(f), 5);
    nmi_rx_set_clock_skew(0);
    NM_ASSERT_OK(nm_redex_compact(f));
    nm_redex_close(rx);
    nm_redex_file *f2;
    nm_redex_file_stats st = reopen_stats(&rx, &f2, "e");
    cr_assert_eq(st.next_seq, 5, "seqs are never reused");
    cr_assert_eq(st.lowest_seq, 4);
    uint64_t s;
    NM_ASSERT_OK(nm_redex_append(f2, "x", 1, &s));
    cr_assert_eq(s, 5);
    nm_redex_close(rx);
}

Test(redex_disk, log_larger_than_its_memory_window)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    c.max_memory_bytes = 64 << 10;
    nm_redex_file *f = open_f(rx, "big", &c);
    char b[1024];
    for (int i = 0; i < 4096; i++) { /* 4 MiB of payload */
        memset(b, 'a' + i % 26, sizeof(b));
        snprintf(b, 16, "%d;", i);
        NM_ASSERT_OK(nm_redex_append(f, b, sizeof(b), NULL));
        if (i % 512 == 0) {
            nm_redex_file_stats st;
            NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
            cr_assert_leq(st.resident_bytes, 64 << 10);
        }
    }
    nm_redex_batch r;
    NM_ASSERT_OK(nm_redex_read_range(f, 0, UINT64_MAX, 0, &r));
    cr_assert_eq(r.count, 4096);
    for (size_t i = 0; i < r.count; i++) {
        int v;
        cr_assert_eq(sscanf((const char *)r.events[i].payload, "%d;", &v), 1);
        cr_assert_eq(v, (int)i);
        cr_assert_eq(r.events[i].payload[1000], 'a' + i % 26);
    }
    nm_redex_batch_free(&r);
    nm_redex_close(rx);
}

/* ------------------------------------------------ layouts and recovery */

Test(redex_disk, legacy_flat_layout_is_migrated)
{
    make_log("old", 25);
    char a[512], b[512];
    const char *fn[3] = {"idx", "dat", "ts"};
    for (int i = 0; i < 3; i++) {
        snprintf(a, sizeof(a), "%s/old/v0000000001/%s", tmpdir, fn[i]);
        snprintf(b, sizeof(b), "%s/old/%s", tmpdir, fn[i]);
        cr_assert_eq(rename(a, b), 0);
    }
    path(a, sizeof(a), "old/v0000000001");
    cr_assert_eq(rmdir(a), 0);
    path(a, sizeof(a), "old/manifest");
    cr_assert_eq(unlink(a), 0);
    nm_redex_check_report r;
    check_dir("old", &r);
    cr_assert_eq(r.generation, 0);
    cr_assert_eq(r.records, 25);
    nm_redex *rx;
    nm_redex_file *f;
    nm_redex_file_stats st = reopen_stats(&rx, &f, "old");
    cr_assert_eq(st.next_seq, 25);
    cr_assert_eq(st.generation, 1);
    expect_ev(f, 24);
    nm_redex_close(rx);
    cr_assert(exists("old/manifest"));
    cr_assert(exists("old/v0000000001/idx"));
    cr_assert(!exists("old/idx"));
}

Test(redex_disk, corrupt_manifest_falls_back_to_highest_generation)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    c.retention_max_events = 10;
    nm_redex_file *f = open_f(rx, "mf", &c);
    put_n(f, 0, 10000);
    cr_assert_gt(nm_redex_sweep(f), 0); /* -> generation 2 */
    nm_redex_close(rx);
    flip("mf/manifest", 6);
    nm_redex_check_report r;
    check_dir("mf", &r);
    cr_assert(r.manifest_present && !r.manifest_valid);
    cr_assert(strstr(r.manifest_error, "checksum"), "%s", r.manifest_error);
    cr_assert_eq(r.generation, 2);
    nm_redex_file *f2;
    nm_redex_file_stats st = reopen_stats(&rx, &f2, "mf");
    cr_assert_eq(st.generation, 2);
    cr_assert_eq(st.next_seq, 10000);
    nm_redex_close(rx);
    check_dir("mf", &r);
    cr_assert(r.manifest_valid, "rewritten");
}

Test(redex_disk, orphan_generations_are_swept)
{
    make_log("o", 5);
    char p[512];
    path(p, sizeof(p), "o/v0000000007");
    cr_assert_eq(mkdir(p, 0755), 0); /* a crashed compaction's leftover */
    write_file_at("o/v0000000007/idx", "x", 1, 0);
    write_file_at("o/manifest.tmp", "junk", 4, 0);
    nm_redex *rx;
    nm_redex_file *f;
    nm_redex_file_stats st = reopen_stats(&rx, &f, "o");
    cr_assert_eq(st.generation, 1, "the manifest wins over a newer dir");
    cr_assert_eq(st.next_seq, 5);
    nm_redex_close(rx);
    cr_assert(!exists("o/v0000000007"));
    cr_assert(!exists("o/manifest.tmp"));
}

Test(redex_disk, upstream_written_generation_is_read)
{
    /* Files as upstream writes them (write() order, exact sizes), built
     * by hand: seq 42.., one inline record, heap offsets from 0. */
    char p[512];
    path(p, sizeof(p), "up");
    cr_assert_eq(mkdir(p, 0755), 0);
    path(p, sizeof(p), "up/v0000000003");
    cr_assert_eq(mkdir(p, 0755), 0);
    uint8_t mf[16];
    nmi_rx_manifest_encode(3, mf);
    write_file_at("up/manifest", mf, 16, 0);
    const char *pl[3] = {"alpha", "", "gamma-gamma"};
    uint64_t off = 0;
    for (int i = 0; i < 4; i++) {
        nmi_rx_rec r = {.seq = 42 + (uint64_t)i};
        if (i == 3) {
            uint8_t in[8] = "12345678";
            r.off = nmi_load_le32(in);
            r.len = nmi_load_le32(in + 4);
            r.fc = 0x80000000u | nmi_rx_checksum(in, 8);
        } else {
            size_t l = strlen(pl[i]);
            r.off = (uint32_t)off;
            r.len = (uint32_t)l;
            r.fc = nmi_rx_checksum(pl[i], l);
            write_file_at("up/v0000000003/dat", pl[i], l, off);
            off += l;
        }
        uint8_t e[20], t[8];
        nmi_rx_rec_encode(&r, e);
        write_file_at("up/v0000000003/idx", e, 20, (uint64_t)i * 20);
        nmi_store_le64(t, 1700000000000000000ull + (uint64_t)i);
        write_file_at("up/v0000000003/ts", t, 8, (uint64_t)i * 8);
    }
    write_file_at("up/v0000000003/dat", "", 0, 0);
    nm_redex *rx;
    nm_redex_file *f;
    nm_redex_file_stats st = reopen_stats(&rx, &f, "up");
    cr_assert(!st.recovery_torn && !st.recovery_corrupt);
    cr_assert_eq(st.lowest_seq, 42);
    cr_assert_eq(st.next_seq, 46);
    nm_redex_batch r;
    NM_ASSERT_OK(nm_redex_read_range(f, 0, 100, 0, &r));
    cr_assert_eq(r.count, 4);
    cr_assert_str_eq((const char *)r.events[0].payload, "alpha");
    cr_assert_eq(r.events[1].len, 0);
    cr_assert_str_eq((const char *)r.events[2].payload, "gamma-gamma");
    cr_assert_eq(memcmp(r.events[3].payload, "12345678", 8), 0);
    cr_assert_eq(r.events[3].flags, NM_REDEX_FLAG_INLINE);
    cr_assert_eq(r.events[2].timestamp_ns, 1700000000000000002ull);
    nm_redex_batch_free(&r);
    nm_redex_close(rx);
}

Test(redex_disk, reader_follows_and_survives_compaction)
{
    nm_redex *rx = open_rx();
    nm_redex_file_config c = pcfg();
    c.retention_max_events = 5;
    nm_redex_file *f = open_f(rx, "rd", &c);
    put_n(f, 0, 10);
    char p[512];
    path(p, sizeof(p), "rd");
    nm_redex_reader *r;
    NM_ASSERT_OK(nm_redex_reader_open(p, 3, true, &r));
    cr_assert_eq(nm_redex_reader_poll(r, NULL, NULL), 7);
    cr_assert_eq(nm_redex_reader_position(r), 10);
    cr_assert_eq(nm_redex_reader_poll(r, NULL, NULL), 0);
    put_n(f, 10, 100000 / 10);
    cr_assert_gt(nm_redex_sweep(f), 0); /* new generation */
    put_n(f, 10000, 10010);
    int64_t n = nm_redex_reader_poll(r, NULL, NULL);
    cr_assert_eq(nm_redex_reader_position(r), 10010);
    cr_assert_eq(n, 15, "the new generation holds 9995.."); /* 9995..10009 */
    nm_redex_reader_close(r);
    nm_redex_reader_close(NULL);
    NM_ASSERT_ERR(nm_redex_reader_open("/nonexistent/x", 0, false, &r),
                  NM_ENOTFOUND);
    nm_redex_check_report cr;
    NM_ASSERT_ERR(nm_redex_check("/nonexistent/x", &cr), NM_ENOTFOUND);
    nm_redex_close(rx);
}
