/*
 * tests/unit/test_cortex_codec.c - the byte formats: postcard vectors
 * written by hand from the postcard spec (varints, zigzag, strings,
 * Vec, Option, bool, their decode errors), the 24-byte EventMeta, the
 * v2 / legacy checksums, task and memory event payloads byte for byte
 * as they land in the RedEX log, and the WriteToken text form.
 */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "cortex/cortex_impl.h"
#include "cortex/postcard.h"
#include "cortex_helpers.h"

/* ------------------------------------------------------------ postcard */

static void
expect_bytes(const nmi_pc_w *w, const uint8_t *want, size_t n)
{
    cr_assert_eq(nmi_pc_w_status(w), NM_OK);
    cr_assert_eq(w->len, n, "length %zu, want %zu", w->len, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(w->p[i], want[i], "byte %zu: %02x, want %02x", i, w->p[i],
                     want[i]);
    }
}

#define ENC(stmt, ...)                                                        \
    do {                                                                      \
        uint8_t want_[] = {__VA_ARGS__};                                      \
        nmi_pc_w w_;                                                          \
        nmi_pc_w_init(&w_, NULL, 0);                                          \
        {                                                                     \
            nmi_pc_w *w = &w_;                                                \
            stmt;                                                             \
        }                                                                     \
        expect_bytes(&w_, want_, sizeof(want_));                              \
        nmi_pc_w_free(&w_);                                                   \
    } while (0)

Test(postcard, varint_u64_vectors)
{
    ENC(nmi_pc_put_varint(w, 0), 0x00);
    ENC(nmi_pc_put_varint(w, 1), 0x01);
    ENC(nmi_pc_put_varint(w, 127), 0x7f);
    ENC(nmi_pc_put_varint(w, 128), 0x80, 0x01);
    ENC(nmi_pc_put_varint(w, 300), 0xac, 0x02);
    ENC(nmi_pc_put_varint(w, 16383), 0xff, 0x7f);
    ENC(nmi_pc_put_varint(w, 16384), 0x80, 0x80, 0x01);
    ENC(nmi_pc_put_varint(w, 0xffffffffull), 0xff, 0xff, 0xff, 0xff, 0x0f);
    ENC(nmi_pc_put_varint(w, UINT64_MAX), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0x01);
}

Test(postcard, zigzag_i64_vectors)
{
    ENC(nmi_pc_put_i64(w, 0), 0x00);
    ENC(nmi_pc_put_i64(w, -1), 0x01);
    ENC(nmi_pc_put_i64(w, 1), 0x02);
    ENC(nmi_pc_put_i64(w, -2), 0x03);
    ENC(nmi_pc_put_i64(w, 63), 0x7e);
    ENC(nmi_pc_put_i64(w, -64), 0x7f);
    ENC(nmi_pc_put_i64(w, 64), 0x80, 0x01);
    ENC(nmi_pc_put_i64(w, INT64_MAX), 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0x01);
    ENC(nmi_pc_put_i64(w, INT64_MIN), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0x01);
    int64_t vals[] = {0, 1, -1, 12345, -12345, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < NMI_ARRAY_LEN(vals); i++) {
        cr_assert_eq(nmi_pc_unzigzag(nmi_pc_zigzag(vals[i])), vals[i]);
    }
}

Test(postcard, strings_vec_option_bool_vectors)
{
    ENC(nmi_pc_put_bytes(w, "", 0), 0x00);
    ENC(nmi_pc_put_bytes(w, "hi", 2), 0x02, 'h', 'i');
    ENC(nmi_pc_put_bytes(w, "\xc3\xa9", 2), 0x02, 0xc3, 0xa9);
    /* Vec<String> ["a", "bc"] */
    ENC((nmi_pc_put_varint(w, 2), nmi_pc_put_bytes(w, "a", 1),
         nmi_pc_put_bytes(w, "bc", 2)),
        0x02, 0x01, 'a', 0x02, 'b', 'c');
    /* Option<u64>: None, Some(5), Some(300) */
    ENC(nmi_pc_put_bool(w, false), 0x00);
    ENC((nmi_pc_put_u8(w, 1), nmi_pc_put_varint(w, 5)), 0x01, 0x05);
    ENC((nmi_pc_put_u8(w, 1), nmi_pc_put_varint(w, 300)), 0x01, 0xac, 0x02);
    ENC(nmi_pc_put_bool(w, true), 0x01);
    /* a 200-byte string: varint length 0xc8 0x01 */
    char big[200];
    memset(big, 'x', sizeof(big));
    nmi_pc_w w;
    nmi_pc_w_init(&w, NULL, 0);
    nmi_pc_put_bytes(&w, big, sizeof(big));
    cr_assert_eq(w.len, 202);
    cr_assert_eq(w.p[0], 0xc8);
    cr_assert_eq(w.p[1], 0x01);
    nmi_pc_w_free(&w);
}

Test(postcard, writer_moves_from_stack_to_heap)
{
    uint8_t stack[4];
    nmi_pc_w w;
    nmi_pc_w_init(&w, stack, sizeof(stack));
    nmi_pc_put_raw(&w, "ab", 2);
    cr_assert_eq(w.p, stack);
    nmi_pc_put_raw(&w, "cdefgh", 6);
    cr_assert_neq(w.p, stack);
    cr_assert_eq(w.len, 8);
    cr_assert_eq(memcmp(w.p, "abcdefgh", 8), 0);
    uint8_t *out;
    size_t n;
    NM_ASSERT_OK(nmi_pc_w_take(&w, &out, &n));
    cr_assert_eq(n, 8);
    free(out);
}

static int
dec_u64(const uint8_t *p, size_t n, uint64_t *v, size_t *used)
{
    nmi_pc_r r;
    nmi_pc_r_init(&r, p, n);
    int rc = nmi_pc_get_u64(&r, v, "test");
    *used = (size_t)(r.p - p);
    return rc;
}

Test(postcard, varint_decode_and_errors)
{
    uint64_t v;
    size_t used;
    NM_ASSERT_OK(dec_u64((const uint8_t[]){0xac, 0x02}, 2, &v, &used));
    cr_assert_eq(v, 300);
    cr_assert_eq(used, 2);
    NM_ASSERT_OK(dec_u64((const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                           0xff, 0xff, 0xff, 0x01},
                         10, &v, &used));
    cr_assert_eq(v, UINT64_MAX);
    /* over-long forms are accepted, as postcard does */
    NM_ASSERT_OK(dec_u64((const uint8_t[]){0x80, 0x00}, 2, &v, &used));
    cr_assert_eq(v, 0);
    /* cut short */
    NM_ASSERT_ERR(dec_u64((const uint8_t[]){0x80}, 1, &v, &used), NM_EDECODE);
    NM_ASSERT_ERR(dec_u64(NULL, 0, &v, &used), NM_EDECODE);
    /* the 10th byte may only carry one bit */
    NM_ASSERT_ERR(dec_u64((const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                            0xff, 0xff, 0xff, 0x02},
                          10, &v, &used),
                  NM_EDECODE);
    /* more than 10 bytes */
    uint8_t eleven[11];
    memset(eleven, 0x80, 10);
    eleven[10] = 0x00;
    NM_ASSERT_ERR(dec_u64(eleven, 11, &v, &used), NM_EDECODE);
    /* u32 / u16: 5 and 3 bytes, last byte 4 and 2 bits */
    nmi_pc_r r;
    uint32_t v32;
    nmi_pc_r_init(&r, (const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0x0f}, 5);
    NM_ASSERT_OK(nmi_pc_get_u32(&r, &v32, "u32"));
    cr_assert_eq(v32, UINT32_MAX);
    nmi_pc_r_init(&r, (const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0x10}, 5);
    NM_ASSERT_ERR(nmi_pc_get_u32(&r, &v32, "u32"), NM_EDECODE);
    uint16_t v16;
    nmi_pc_r_init(&r, (const uint8_t[]){0xff, 0xff, 0x03}, 3);
    NM_ASSERT_OK(nmi_pc_get_u16(&r, &v16, "u16"));
    cr_assert_eq(v16, UINT16_MAX);
    nmi_pc_r_init(&r, (const uint8_t[]){0xff, 0xff, 0x04}, 3);
    NM_ASSERT_ERR(nmi_pc_get_u16(&r, &v16, "u16"), NM_EDECODE);
    int64_t i64;
    nmi_pc_r_init(&r, (const uint8_t[]){0x03}, 1);
    NM_ASSERT_OK(nmi_pc_get_i64(&r, &i64, "i64"));
    cr_assert_eq(i64, -2);
}

Test(postcard, bool_option_string_errors)
{
    nmi_pc_r r;
    bool b;
    nmi_pc_r_init(&r, (const uint8_t[]){0x02}, 1);
    NM_ASSERT_ERR(nmi_pc_get_bool(&r, &b, "bool"), NM_EDECODE);
    cr_assert_not_null(strstr(nm_errdetail(), "bool"));
    nmi_pc_r_init(&r, (const uint8_t[]){0x01}, 1);
    NM_ASSERT_OK(nmi_pc_get_bool(&r, &b, "bool"));
    cr_assert(b);
    nmi_pc_r_init(&r, (const uint8_t[]){0x02}, 1);
    NM_ASSERT_ERR(nmi_pc_get_option(&r, &b, "opt"), NM_EDECODE);
    nmi_pc_r_init(&r, NULL, 0);
    NM_ASSERT_ERR(nmi_pc_get_option(&r, &b, "opt"), NM_EDECODE);

    const char *s;
    size_t n;
    nmi_pc_r_init(&r, (const uint8_t[]){0x02, 0xc3, 0xa9, 0x99}, 4);
    NM_ASSERT_OK(nmi_pc_get_str(&r, &s, &n, "str"));
    cr_assert_eq(n, 2);
    cr_assert_eq(nmi_pc_r_left(&r), 1, "trailing bytes are left alone");
    /* length beyond the input */
    nmi_pc_r_init(&r, (const uint8_t[]){0x05, 'a'}, 2);
    NM_ASSERT_ERR(nmi_pc_get_str(&r, &s, &n, "str"), NM_EDECODE);
    /* not UTF-8: a lone continuation, an over-long NUL, a surrogate,
     * above U+10FFFF, a cut sequence */
    const uint8_t *bad[] = {
        (const uint8_t[]){0x01, 0x80},
        (const uint8_t[]){0x02, 0xc0, 0x80},
        (const uint8_t[]){0x03, 0xed, 0xa0, 0x80},
        (const uint8_t[]){0x04, 0xf4, 0x90, 0x80, 0x80},
        (const uint8_t[]){0x02, 0xe2, 0x82},
    };
    size_t badn[] = {2, 3, 4, 5, 3};
    for (size_t i = 0; i < NMI_ARRAY_LEN(bad); i++) {
        nmi_pc_r_init(&r, bad[i], badn[i]);
        NM_ASSERT_ERR(nmi_pc_get_str(&r, &s, &n, "str"), NM_EDECODE);
    }
    cr_assert(nmi_utf8_valid((const uint8_t *)"\xf0\x9f\x98\x80", 4));
    cr_assert(nmi_utf8_valid((const uint8_t *)"\xef\xbf\xbf", 3));
    /* a sequence length that cannot fit */
    size_t len;
    nmi_pc_r_init(&r, (const uint8_t[]){0x03, 0x00, 0x00}, 3);
    NM_ASSERT_ERR(nmi_pc_get_len(&r, 1, &len, "vec"), NM_EDECODE);
}

/* ----------------------------------------------------------- EventMeta */

Test(meta, encode_decode_24_bytes)
{
    nm_cortex_meta m = {.dispatch = 0x42,
                        .flags = NM_CORTEX_FLAG_CAUSAL |
                                 NM_CORTEX_FLAG_CONTINUITY_PROOF,
                        .pad = {0xaa, 0xbb},
                        .origin_hash = 0x0123456789abcdefull,
                        .seq_or_ts = 7,
                        .checksum = 0xcafebabe};
    uint8_t b[NM_CORTEX_META_SIZE];
    nm_cortex_meta_encode(&m, b);
    const uint8_t want[24] = {0x42, 0x03, 0x00, 0x00, 0xef, 0xcd, 0xab, 0x89,
                              0x67, 0x45, 0x23, 0x01, 0x07, 0x00, 0x00, 0x00,
                              0x00, 0x00, 0x00, 0x00, 0xbe, 0xba, 0xfe, 0xca};
    cr_assert_eq(memcmp(b, want, 24), 0, "pad is written as zero");
    nm_cortex_meta d;
    b[2] = 0x11; /* garbage pad is tolerated and reported */
    NM_ASSERT_OK(nm_cortex_meta_decode(b, 24, &d));
    cr_assert_eq(d.dispatch, 0x42);
    cr_assert_eq(d.flags, 0x03);
    cr_assert_eq(d.pad[0], 0x11);
    cr_assert_eq(d.origin_hash, 0x0123456789abcdefull);
    cr_assert_eq(d.seq_or_ts, 7);
    cr_assert_eq(d.checksum, 0xcafebabe);
    NM_ASSERT_ERR(nm_cortex_meta_decode(b, 23, &d), NM_EDECODE);
    NM_ASSERT_ERR(nm_cortex_meta_decode(b, 24, NULL), NM_EINVAL);
}

Test(meta, checksums_v2_and_legacy)
{
    const uint8_t tail[] = "some payload bytes";
    size_t tl = sizeof(tail) - 1;
    nm_cortex_meta m = {
        .dispatch = 0x10, .origin_hash = 0xdeadbeef, .seq_or_ts = 7};
    /* v2 = xxh3_64(meta with checksum and pad zero || tail) as u32 */
    uint8_t buf[64];
    nm_cortex_meta_encode(&m, buf);
    memcpy(buf + 24, tail, tl);
    uint32_t want = (uint32_t)XXH3_64bits(buf, 24 + tl);
    cr_assert_eq(nm_cortex_checksum(&m, tail, tl), want);
    m.checksum = 0xffffffff; /* the slot is masked */
    m.pad[0] = 9;            /* and so is the pad */
    cr_assert_eq(nm_cortex_checksum(&m, tail, tl), want);
    /* every header field is covered */
    nm_cortex_meta f = m;
    f.dispatch = 0x11;
    cr_assert_neq(nm_cortex_checksum(&f, tail, tl), want);
    f = m;
    f.flags = 1;
    cr_assert_neq(nm_cortex_checksum(&f, tail, tl), want);
    f = m;
    f.origin_hash++;
    cr_assert_neq(nm_cortex_checksum(&f, tail, tl), want);
    f = m;
    f.seq_or_ts++;
    cr_assert_neq(nm_cortex_checksum(&f, tail, tl), want);
    cr_assert_eq(nm_cortex_checksum_legacy(tail, tl),
                 (uint32_t)XXH3_64bits(tail, tl));

    /* verify: v2 passes, legacy passes, anything else fails */
    m.pad[0] = 0;
    m.checksum = want;
    nm_cortex_meta_encode(&m, buf);
    nm_cortex_meta out;
    NM_ASSERT_OK(nm_cortex_event_verify(buf, 24 + tl, &out));
    m.checksum = nm_cortex_checksum_legacy(tail, tl);
    nm_cortex_meta_encode(&m, buf);
    NM_ASSERT_OK(nm_cortex_event_verify(buf, 24 + tl, &out));
    buf[0] ^= 1; /* legacy does not cover the header: still passes */
    NM_ASSERT_OK(nm_cortex_event_verify(buf, 24 + tl, &out));
    buf[24] ^= 1;
    NM_ASSERT_ERR(nm_cortex_event_verify(buf, 24 + tl, &out), NM_EDECODE);
    cr_assert_not_null(strstr(nm_errdetail(), "checksum"));
    NM_ASSERT_ERR(nm_cortex_event_verify(buf, 10, &out), NM_EDECODE);
}

/* The event bytes a write puts in the log, built here by hand. */
static void
expect_record(nm_redex *rx, const char *channel, uint64_t seq,
              const uint8_t *meta_prefix20, const uint8_t *tail, size_t tl)
{
    nm_redex_file *f;
    NM_ASSERT_OK(nm_redex_open_file(rx, channel, NULL, &f));
    nm_redex_event ev;
    NM_ASSERT_OK(nm_redex_read_one(f, seq, &ev));
    uint8_t want[512];
    memcpy(want, meta_prefix20, 20);
    memset(want + 20, 0, 4);
    memcpy(want + 24, tail, tl);
    uint32_t ck = (uint32_t)XXH3_64bits(want, 24 + tl);
    want[20] = (uint8_t)ck;
    want[21] = (uint8_t)(ck >> 8);
    want[22] = (uint8_t)(ck >> 16);
    want[23] = (uint8_t)(ck >> 24);
    cr_assert_eq(ev.len, 24 + tl, "record length %zu, want %zu", ev.len,
                 24 + tl);
    for (size_t i = 0; i < ev.len; i++) {
        cr_assert_eq(ev.payload[i], want[i], "byte %zu: %02x, want %02x", i,
                     ev.payload[i], want[i]);
    }
    nm_redex_event_free(&ev);
    NM_ASSERT_OK(nm_redex_file_close(f));
}

#define ORIG_LE 0x01, 0xef, 0xcd, 0xab, 0x00, 0x00, 0x00, 0x00
#define U64_LE(n) (n), 0, 0, 0, 0, 0, 0, 0

Test(meta, task_events_byte_for_byte)
{
    nm_redex *rx = mem_redex();
    nm_cortex_tasks *t = open_tasks(rx, ORIGIN);
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_create(t, 1, "write docs", 0, &tok));
    cr_assert_eq(tok.origin_hash, ORIGIN);
    cr_assert_eq(tok.seq, 0);
    NM_ASSERT_OK(nm_cortex_tasks_rename(t, 300, "x", 128, NULL));
    NM_ASSERT_OK(nm_cortex_tasks_complete(t, 1, 1000000, NULL));
    NM_ASSERT_OK(nm_cortex_tasks_delete(t, 1, &tok));
    cr_assert_eq(tok.seq, 3);
    /* create {id 1, "write docs", now 0}, seq_or_ts 0 */
    expect_record(rx, "cortex/tasks", 0,
                  (const uint8_t[]){0x01, 0, 0, 0, ORIG_LE, U64_LE(0)},
                  (const uint8_t[]){0x01, 0x0a, 'w', 'r', 'i', 't', 'e', ' ',
                                    'd', 'o', 'c', 's', 0x00},
                  13);
    /* rename {id 300, "x", now 128}, seq_or_ts 1 */
    expect_record(rx, "cortex/tasks", 1,
                  (const uint8_t[]){0x02, 0, 0, 0, ORIG_LE, U64_LE(1)},
                  (const uint8_t[]){0xac, 0x02, 0x01, 'x', 0x80, 0x01}, 6);
    /* complete {id 1, now 1000000 = 0xc0 0x84 0x3d}, seq_or_ts 2 */
    expect_record(rx, "cortex/tasks", 2,
                  (const uint8_t[]){0x03, 0, 0, 0, ORIG_LE, U64_LE(2)},
                  (const uint8_t[]){0x01, 0xc0, 0x84, 0x3d}, 4);
    /* delete {id 1}, seq_or_ts 3 */
    expect_record(rx, "cortex/tasks", 3,
                  (const uint8_t[]){0x04, 0, 0, 0, ORIG_LE, U64_LE(3)},
                  (const uint8_t[]){0x01}, 1);
    nm_cortex_tasks_free(t);
    nm_redex_close(rx);
}

Test(meta, memory_events_byte_for_byte)
{
    nm_redex *rx = mem_redex();
    nm_cortex_memories *m = open_memories(rx, ORIGIN);
    const char *tags[] = {"a", "bc"};
    NM_ASSERT_OK(nm_cortex_memories_store(m, 7, "hi", tags, 2, "s", 5, NULL));
    NM_ASSERT_OK(nm_cortex_memories_retag(m, 7, NULL, 0, 6, NULL));
    NM_ASSERT_OK(nm_cortex_memories_pin(m, 7, 8, NULL));
    NM_ASSERT_OK(nm_cortex_memories_unpin(m, 7, 9, NULL));
    NM_ASSERT_OK(nm_cortex_memories_delete(m, 7, NULL));
    NM_ASSERT_OK(nm_cortex_memories_store(m, 8, "", NULL, 0, NULL, 0, NULL));
    const char *ch = "cortex/memories";
    expect_record(rx, ch, 0,
                  (const uint8_t[]){0x10, 0, 0, 0, ORIG_LE, U64_LE(0)},
                  (const uint8_t[]){0x07, 0x02, 'h', 'i', 0x02, 0x01, 'a',
                                    0x02, 'b', 'c', 0x01, 's', 0x05},
                  13);
    expect_record(rx, ch, 1,
                  (const uint8_t[]){0x11, 0, 0, 0, ORIG_LE, U64_LE(1)},
                  (const uint8_t[]){0x07, 0x00, 0x06}, 3);
    expect_record(rx, ch, 2,
                  (const uint8_t[]){0x12, 0, 0, 0, ORIG_LE, U64_LE(2)},
                  (const uint8_t[]){0x07, 0x08}, 2);
    expect_record(rx, ch, 3,
                  (const uint8_t[]){0x13, 0, 0, 0, ORIG_LE, U64_LE(3)},
                  (const uint8_t[]){0x07, 0x09}, 2);
    expect_record(rx, ch, 4,
                  (const uint8_t[]){0x14, 0, 0, 0, ORIG_LE, U64_LE(4)},
                  (const uint8_t[]){0x07}, 1);
    expect_record(rx, ch, 5,
                  (const uint8_t[]){0x10, 0, 0, 0, ORIG_LE, U64_LE(5)},
                  (const uint8_t[]){0x08, 0x00, 0x00, 0x00, 0x00}, 5);
    nm_cortex_memories_free(m);
    nm_redex_close(rx);
}

Test(meta, op_codecs_roundtrip)
{
    nmi_cx_task_op op;
    const uint8_t create[] = {0x01, 0x02, 'h', 'i', 0x05, 0xff};
    NM_ASSERT_OK(nmi_cx_task_op_decode(0x01, create, sizeof(create), &op));
    cr_assert_eq(op.id, 1);
    cr_assert_eq(op.title_len, 2);
    cr_assert_eq(op.now_ns, 5);
    nmi_pc_w w;
    nmi_pc_w_init(&w, NULL, 0);
    nmi_cx_task_op_encode(&op, &w);
    cr_assert_eq(w.len, 5, "trailing byte not re-encoded");
    cr_assert_eq(memcmp(w.p, create, 5), 0);
    nmi_pc_w_free(&w);
    NM_ASSERT_ERR(nmi_cx_task_op_decode(0x01, create, 3, &op), NM_EDECODE);
    NM_ASSERT_ERR(nmi_cx_task_op_decode(0x77, create, 6, &op), NM_ENOTSUP);

    nmi_cx_mem_op mo;
    const uint8_t store[] = {0x07, 0x02, 'h', 'i',  0x02, 0x01, 'a',
                             0x02, 'b',  'c', 0x01, 's',  0x05};
    NM_ASSERT_OK(nmi_cx_mem_op_decode(0x10, store, sizeof(store), &mo));
    cr_assert_eq(mo.ntags, 2);
    nmi_pc_w_init(&w, NULL, 0);
    nmi_cx_mem_op_encode(&mo, &w);
    cr_assert_eq(w.len, sizeof(store));
    cr_assert_eq(memcmp(w.p, store, sizeof(store)), 0);
    nmi_pc_w_free(&w);
    for (size_t cut = 0; cut < sizeof(store); cut++) {
        NM_ASSERT_ERR(nmi_cx_mem_op_decode(0x10, store, cut, &mo), NM_EDECODE);
    }
}

/* ---------------------------------------------------------- WriteToken */

Test(token, format_and_parse)
{
    char buf[NM_WRITE_TOKEN_STRLEN];
    nm_write_token t = {0xdeadbeef, 42};
    NM_ASSERT_OK(nm_write_token_format(&t, buf, sizeof(buf)));
    cr_assert_str_eq(buf, "00000000deadbeef:42");
    nm_write_token m = {UINT64_MAX, UINT64_MAX};
    NM_ASSERT_OK(nm_write_token_format(&m, buf, sizeof(buf)));
    cr_assert_str_eq(buf, "ffffffffffffffff:18446744073709551615");
    cr_assert_eq(strlen(buf) + 1, NM_WRITE_TOKEN_STRLEN);
    nm_write_token p;
    NM_ASSERT_OK(nm_write_token_parse(buf, &p));
    cr_assert_eq(p.origin_hash, UINT64_MAX);
    cr_assert_eq(p.seq, UINT64_MAX);
    NM_ASSERT_OK(nm_write_token_parse("0123456789ABCDEF:12345", &p));
    cr_assert_eq(p.origin_hash, 0x0123456789abcdefull);
    cr_assert_eq(p.seq, 12345);
    NM_ASSERT_ERR(nm_write_token_format(&t, buf, 5), NM_ERANGE);
    cr_assert_str_eq(buf, "");

    const char *bad[] = {"deadbeef",
                         "deadbeef:1",
                         "zzzzzzzzzzzzzzzz:1",
                         "0000000000000001:-1",
                         "0000000000000001:",
                         "0000000000000001:+1",
                         "0000000000000001:1x",
                         "0000000000000001:18446744073709551616",
                         "00000000000000001:1",
                         "+000000000000001:1",
                         ""};
    for (size_t i = 0; i < NMI_ARRAY_LEN(bad); i++) {
        NM_ASSERT_ERR(nm_write_token_parse(bad[i], &p), NM_EINVAL);
        cr_assert_neq(nm_errdetail()[0], '\0');
    }
}

Test(names, order_and_status)
{
    const char *names[] = {"id_asc",       "id_desc",     "created_asc",
                           "created_desc", "updated_asc", "updated_desc"};
    for (int i = 0; i < 6; i++) {
        nm_cortex_order o;
        NM_ASSERT_OK(nm_cortex_order_parse(names[i], &o));
        cr_assert_eq((int)o, i + 1);
        cr_assert_str_eq(nm_cortex_order_name(o), names[i]);
    }
    nm_cortex_order o;
    NM_ASSERT_ERR(nm_cortex_order_parse("sideways", &o), NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "sideways"));
    nm_task_status s;
    NM_ASSERT_OK(nm_task_status_parse("completed", &s));
    cr_assert_eq(s, NM_TASK_COMPLETED);
    cr_assert_str_eq(nm_task_status_name(NM_TASK_PENDING), "pending");
    NM_ASSERT_ERR(nm_task_status_parse("Done", &s), NM_EINVAL);
}
