/* tests/unit/test_record.c - the JSON scanner, the stored record codec,
 * the poll cursor codec, dedup ids and the producer nonce file. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netmesh.h>

#include "adapters/record.h"
#include "bus/bus_impl.h"
#include "core/json_scan.h"

Test(json_scan, accepts_valid_documents)
{
    const char *good[] = {"{}",
                          "[]",
                          "0",
                          "-0",
                          "1.5e10",
                          "-1E-3",
                          "\"\"",
                          "true",
                          "false",
                          "null",
                          " {\"a\" : [1, 2, {\"b\": null}]} ",
                          "\"\\u00e9\\n\\\"\"",
                          "\"caf\xc3\xa9\"",
                          "\"\xf0\x9f\x98\x80\"",
                          "[[[[[]]]]]",
                          "{\"token\":\"hello\",\"index\":0}"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_assert(nmi_json_valid(good[i], strlen(good[i])), "%s", good[i]);
    }
}

Test(json_scan, rejects_invalid_documents)
{
    const char *bad[] = {"",
                         "{",
                         "}",
                         "[1,]",
                         "{\"a\":}",
                         "{\"a\" 1}",
                         "01",
                         "1.",
                         ".5",
                         "1e",
                         "+1",
                         "tru",
                         "nul",
                         "\"abc",
                         "\"a\\x\"",
                         "\"\\u12\"",
                         "{} {}",
                         "[1 2]",
                         "{1:2}",
                         "'a'",
                         "\"\x01\"",
                         "\"\xc3\"",
                         "\"\xc0\xaf\"",
                         "\"\xed\xa0\x80\"",
                         "\"\xf5\x80\x80\x80\"",
                         "NaN",
                         "[\"a\",]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(nmi_json_valid(bad[i], strlen(bad[i])), "'%s'", bad[i]);
    }
}

Test(json_scan, nesting_is_bounded)
{
    size_t n = 10000;
    char *deep = malloc(2 * n);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    cr_assert_not(nmi_json_valid(deep, 2 * n), "too deep is invalid");
    cr_assert(nmi_json_valid(deep + n - 100, 200), "100 levels are fine");
    free(deep);
}

Test(record, encodes_upstream_shape)
{
    nmi_buf b = {0};
    const char *raw = "{\"token\":\"hello\"}";
    cr_assert_eq(
        nmi_record_encode(&b, (const uint8_t *)raw, strlen(raw), 42, 3), 0);
    cr_assert_str_eq(b.p, "{\"r\":{\"token\":\"hello\"},\"t\":42,\"s\":3}");
    nmi_record r;
    cr_assert_eq(nmi_record_decode(b.p, b.len, &r), 0);
    cr_assert_eq(r.raw_len, strlen(raw));
    cr_assert_eq(memcmp(r.raw, raw, r.raw_len), 0);
    cr_assert_eq(r.ts, 42);
    cr_assert_eq(r.shard, 3);
    nmi_record_fini(&r);
    nmi_buf_free(&b);
}

Test(record, non_json_bytes_round_trip_as_base64)
{
    nmi_buf b = {0};
    const uint8_t raw[] = {0xff, 0x00, 'x', '"', '\n'};
    cr_assert_eq(nmi_record_encode(&b, raw, sizeof(raw), 7, 0), 0);
    cr_assert(nmi_json_valid(b.p, b.len), "the record is JSON: %s", b.p);
    cr_assert_not_null(strstr(b.p, "\"b\":true"));
    nmi_record r;
    cr_assert_eq(nmi_record_decode(b.p, b.len, &r), 0);
    cr_assert_eq(r.raw_len, sizeof(raw));
    cr_assert_eq(memcmp(r.raw, raw, sizeof(raw)), 0);
    nmi_record_fini(&r);
    nmi_buf_free(&b);
}

Test(record, decodes_upstream_records_exactly)
{
    /* Key order and whitespace as another implementation may write them;
     * the raw bytes come back exactly as stored. */
    const char *in = " { \"s\" : 2 , \"r\" : {\"a\": [1, 2.50]} , \"t\": 9, "
                     "\"extra\":{\"x\":1} } ";
    nmi_record r;
    cr_assert_eq(nmi_record_decode(in, strlen(in), &r), 0);
    cr_assert_eq(r.raw_len, strlen("{\"a\": [1, 2.50]}"));
    cr_assert_eq(memcmp(r.raw, "{\"a\": [1, 2.50]}", r.raw_len), 0);
    cr_assert_eq(r.ts, 9);
    cr_assert_eq(r.shard, 2);
    nmi_record_fini(&r);
}

Test(record, rejects_malformed_records)
{
    const char *bad[] = {"",
                         "[]",
                         "{}",
                         "{\"t\":1,\"s\":0}",
                         "{\"r\":}",
                         "{\"r\":1,\"t\":-1}",
                         "{\"r\":1,\"t\":1.5}",
                         "{\"r\":1,\"s\":65536}",
                         "{\"r\":1,\"t\":99999999999999999999}",
                         "{\"r\":1} x",
                         "{\"r\":1,}",
                         "{\"r\":\"@@@\",\"b\":true}",
                         "{\"r\":1,\"b\":true}",
                         "{\"r\":1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nmi_record r;
        cr_assert_eq(nmi_record_decode(bad[i], strlen(bad[i]), &r), NM_EDECODE,
                     "'%s'", bad[i]);
        cr_assert_null(r.owned);
    }
}

Test(cursor, vector_round_trips)
{
    char ids[4][NMI_ID_MAX] = {{0}};
    cr_assert_eq(nmi_cursor_decode("eyIwIjoiNDEiLCIzIjoiMTcifQ==", 4, ids), 0);
    cr_assert_str_eq(ids[0], "41");
    cr_assert_str_eq(ids[1], "");
    cr_assert_str_eq(ids[3], "17");
    char *enc = nmi_cursor_encode(4, ids);
    cr_assert_str_eq(enc, "eyIwIjoiNDEiLCIzIjoiMTcifQ==");
    free(enc);
    char none[2][NMI_ID_MAX] = {{0}};
    enc = nmi_cursor_encode(2, none);
    cr_assert_str_eq(enc, "e30="); /* {} */
    free(enc);
}

Test(dedup_id, upstream_format)
{
    char id[64];
    cr_assert_eq(nm_dedup_id(id, sizeof(id), 0xabcdef0123ull, 3, 1000, 7),
                 (int)strlen("abcdef0123:3:1000:7"));
    cr_assert_str_eq(id, "abcdef0123:3:1000:7");
    nm_dedup_id(id, sizeof(id), UINT64_MAX, 65535, UINT64_MAX, 0);
    cr_assert_str_eq(id, "ffffffffffffffff:65535:18446744073709551615:0");
    cr_assert_eq(nm_dedup_id(id, 5, 1, 1, 1, 1), NM_ERANGE);
}

static void
tmp_path(char *out, size_t cap, const char *name)
{
    char dir[] = "/tmp/nm-nonce-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(out, cap, "%s/%s", dir, name);
}

static void
write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

Test(nonce, created_then_reloaded)
{
    char path[256];
    tmp_path(path, sizeof(path), "producer.nonce");
    uint64_t a = 0, b = 0;
    cr_assert_eq(nm_producer_nonce_load(path, &a), 0);
    cr_assert_neq(a, 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, NM_NONCE_FILE_BYTES);
    uint8_t buf[16];
    int fd = open(path, O_RDONLY);
    cr_assert_eq(read(fd, buf, sizeof(buf)), NM_NONCE_FILE_BYTES);
    close(fd);
    cr_assert_eq(buf[0], 0x01);
    uint64_t le = 0;
    for (int i = 7; i >= 0; i--) {
        le = (le << 8) | buf[1 + i];
    }
    cr_assert_eq(le, a, "[0x01][u64 little-endian]");
    cr_assert_eq(nm_producer_nonce_load(path, &b), 0);
    cr_assert_eq(a, b, "same nonce across restarts");
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cr_assert_neq(access(tmp, F_OK), 0, "no temp file left behind");

    /* The bus uses it. */
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 1;
    cfg.producer_nonce_path = path;
    nm_bus *bus;
    cr_assert_eq(nm_bus_open(&cfg, &bus), 0);
    cr_assert_eq(nm_bus_nonce(bus), a);
    nm_bus_close(bus);
}

Test(nonce, corrupt_files_are_errors_and_never_replaced)
{
    char path[256];
    tmp_path(path, sizeof(path), "n");
    struct {
        const uint8_t *data;
        size_t len;
    } cases[] = {
        {(const uint8_t *)"", 0},
        {(const uint8_t *)"\x01\x02\x03", 3},
        {(const uint8_t *)"\x02\x01\x00\x00\x00\x00\x00\x00\x00", 9},
        {(const uint8_t *)"\x01\x00\x00\x00\x00\x00\x00\x00\x00", 9},
        {(const uint8_t *)"\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00", 10},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(path, cases[i].data, cases[i].len);
        uint64_t v = 0;
        cr_assert_eq(nm_producer_nonce_load(path, &v), NM_EDECODE, "case %zu",
                     i);
        struct stat st;
        stat(path, &st);
        cr_assert_eq((size_t)st.st_size, cases[i].len, "left as it was");
        nm_bus_config cfg;
        nm_bus_config_init(&cfg);
        cfg.producer_nonce_path = path;
        nm_bus *bus;
        cr_assert_eq(nm_bus_open(&cfg, &bus), NM_EDECODE);
    }
    uint64_t v;
    cr_assert_eq(nm_producer_nonce_load("/nonexistent-dir/x/nonce", &v),
                 NM_EIO);
    cr_assert_eq(nm_producer_nonce_load(NULL, &v), NM_EINVAL);
}
