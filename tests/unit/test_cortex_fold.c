/*
 * tests/unit/test_cortex_fold.c - the fold engine and read-your-writes:
 * a bad event (short, bad checksum, malformed payload) injected with
 * nm_redex_append stops a STOP fold (waits past it fail with
 * NM_ESHUTDOWN and report the applied seq, never a silent success) and
 * is skipped by a LOG_AND_CONTINUE fold (wait_for_seq passes it,
 * wait_for_token reports the skip); timeouts and polls; wrong origin;
 * start positions (beginning, live only, from a seq, history evicted by
 * retention); the per-origin counter after a reopen; concurrent
 * writers; close waking waiters; writes and waits after close; bad
 * configurations and channel names.
 */
#include <pthread.h>

#include "cortex_helpers.h"

static nm_cortex_tasks *
open_cfg(nm_redex *rx, nm_cortex_on_error on_error, nm_cortex_start start,
         uint64_t start_seq)
{
    nm_cortex_config c;
    nm_cortex_config_init(&c);
    c.origin_hash = ORIGIN;
    c.on_error = on_error;
    c.start = start;
    c.start_seq = start_seq;
    nm_cortex_tasks *t;
    NM_ASSERT_OK(nm_cortex_tasks_open(rx, &c, &t));
    return t;
}

static uint64_t
inject(nm_redex *rx, const void *p, size_t n)
{
    nm_redex_file *f;
    NM_ASSERT_OK(nm_redex_open_file(rx, "cortex/tasks", NULL, &f));
    uint64_t seq;
    NM_ASSERT_OK(nm_redex_append(f, p, n, &seq));
    NM_ASSERT_OK(nm_redex_file_close(f));
    return seq;
}

/* A task event with a correct v2 checksum over whatever tail. */
static uint64_t
inject_event(nm_redex *rx, uint8_t dispatch, const uint8_t *tail, size_t tl)
{
    uint8_t buf[256];
    nm_cortex_meta m = {.dispatch = dispatch, .origin_hash = 77};
    m.checksum = nm_cortex_checksum(&m, tail, tl);
    nm_cortex_meta_encode(&m, buf);
    memcpy(buf + 24, tail, tl);
    return inject(rx, buf, 24 + tl);
}

static size_t
count(nm_cortex_tasks *t)
{
    size_t n;
    NM_ASSERT_OK(nm_cortex_tasks_count(t, &n));
    return n;
}

Test(fold, stop_on_a_bad_event)
{
    nm_redex *rx = mem_redex();
    nm_cortex_tasks *t = open_cfg(rx, NM_CORTEX_STOP, 0, 0);
    nm_write_token t1 = create_sync(t, 1, "good", 1);
    cr_assert_eq(t1.seq, 0);
    uint64_t bad = inject(rx, "junk", 4);
    nm_write_token t2;
    NM_ASSERT_OK(nm_cortex_tasks_create(t, 2, "after", 2, &t2));
    cr_assert_eq(t2.seq, bad + 1);

    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_token(t, &t2, WAIT_MS),
                  NM_ESHUTDOWN);
    cr_assert_not_null(strstr(nm_errdetail(), "applied_through_seq 0"), "%s",
                       nm_errdetail());
    cr_assert_not_null(strstr(nm_errdetail(), "seq 1"), "%s", nm_errdetail());
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_seq(t, bad, WAIT_MS), NM_ESHUTDOWN);
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_token(t, &t2, 0), NM_ESHUTDOWN);
    /* what was applied before stays readable and waitable */
    NM_ASSERT_OK(nm_cortex_tasks_wait_for_token(t, &t1, 0));
    NM_ASSERT_OK(nm_cortex_tasks_wait_for_seq(t, 0, 0));
    cr_assert_eq(count(t), 1);

    nm_cortex_status st;
    NM_ASSERT_OK(nm_cortex_tasks_status(t, &st));
    cr_assert(!st.running);
    cr_assert(!st.closed);
    cr_assert_eq(st.stop_code, NM_EDECODE);
    cr_assert_eq(st.fold_errors, 1);
    cr_assert(st.has_applied);
    cr_assert_eq(st.applied_through_seq, 0);
    cr_assert_eq(st.folded_through_seq, 0);
    cr_assert_not_null(strstr(st.stop_detail, "EventMeta"), "%s",
                       st.stop_detail);
    nm_cortex_tasks_free(t);
    nm_redex_close(rx);
}

Test(fold, stop_before_anything_applied)
{
    nm_redex *rx = mem_redex();
    nm_cortex_tasks *t = open_cfg(rx, NM_CORTEX_STOP, 0, 0);
    inject(rx, "", 0);
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_create(t, 2, "x", 2, &tok));
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_token(t, &tok, WAIT_MS),
                  NM_ESHUTDOWN);
    cr_assert_not_null(strstr(nm_errdetail(), "nothing applied"), "%s",
                       nm_errdetail());
    nm_cortex_status st;
    NM_ASSERT_OK(nm_cortex_tasks_status(t, &st));
    cr_assert(!st.has_applied);
    nm_cortex_tasks_free(t);
    nm_redex_close(rx);
}

Test(fold, continue_skips_and_reports)
{
    nm_redex *rx = mem_redex();
    nm_cortex_tasks *t = open_cfg(rx, NM_CORTEX_LOG_AND_CONTINUE, 0, 0);
    nm_write_token t1 = create_sync(t, 1, "good", 1);
    /* three kinds of bad event */
    uint64_t b1 = inject(rx, "short", 5);
    uint8_t badck[30] = {0x01};
    inject(rx, badck, sizeof(badck));
    const uint8_t cut[] = {0x05, 0x09, 'a'}; /* title cut short */
    uint64_t b3 = inject_event(rx, NM_CORTEX_TASK_CREATED, cut, sizeof(cut));
    nm_write_token t2;
    NM_ASSERT_OK(nm_cortex_tasks_create(t, 2, "after", 2, &t2));

    NM_ASSERT_OK(nm_cortex_tasks_wait_for_seq(t, t2.seq, WAIT_MS));
    cr_assert_eq(count(t), 2, "the good events after the bad ones applied");
    NM_ASSERT_OK(nm_cortex_tasks_wait_for_token(t, &t1, 0));
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_token(t, &t2, WAIT_MS), NM_EDECODE);
    cr_assert_not_null(strstr(nm_errdetail(), "skipped seq 1"), "%s",
                       nm_errdetail());
    nm_cortex_status st;
    NM_ASSERT_OK(nm_cortex_tasks_status(t, &st));
    cr_assert(st.running);
    cr_assert_eq(st.fold_errors, 3);
    cr_assert_eq(st.applied_through_seq, b1 - 1);
    cr_assert_eq(st.folded_through_seq, t2.seq);
    cr_assert_eq(b3, b1 + 2);
    cr_assert_eq(st.stop_code, NM_OK);
    cr_assert_not_null(strstr(st.stop_detail, "skipped"));
    nm_cortex_tasks_free(t);
    nm_redex_close(rx);
}

Test(fold, malformed_payloads_stop_the_fold)
{
    const struct {
        uint8_t dispatch;
        uint8_t tail[8];
        size_t n;
    } cases[] = {
        {NM_CORTEX_TASK_CREATED, {0x01}, 1},                   /* no title */
        {NM_CORTEX_TASK_CREATED, {0x01, 0x01, 0xff, 0x00}, 4}, /* not UTF-8 */
        {NM_CORTEX_TASK_RENAMED, {0x80}, 1},                   /* cut varint */
        {NM_CORTEX_TASK_COMPLETED, {0x01}, 1},                 /* no now_ns */
        {NM_CORTEX_TASK_DELETED, {0}, 0},                      /* no id */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        nm_redex *rx = mem_redex();
        nm_cortex_tasks *t = open_cfg(rx, NM_CORTEX_STOP, 0, 0);
        uint64_t s =
            inject_event(rx, cases[i].dispatch, cases[i].tail, cases[i].n);
        NM_ASSERT_ERR(nm_cortex_tasks_wait_for_seq(t, s, WAIT_MS),
                      NM_ESHUTDOWN);
        nm_cortex_status st;
        NM_ASSERT_OK(nm_cortex_tasks_status(t, &st));
        cr_assert_eq(st.stop_code, NM_EDECODE, "case %zu", i);
        cr_assert_not_null(strstr(st.stop_detail, "postcard"), "%s",
                           st.stop_detail);
        nm_cortex_tasks_free(t);
        nm_redex_close(rx);
    }
}

Test(fold, legacy_checksum_and_trailing_bytes_accepted)
{
    nm_redex *rx = mem_redex();
    nm_cortex_tasks *t = open_cfg(rx, NM_CORTEX_STOP, 0, 0);
    const uint8_t tail[] = {0x07, 0x01, 'z', 0x03, 0xee, 0xee};
    uint8_t buf[64];
    nm_cortex_meta m = {.dispatch = NM_CORTEX_TASK_CREATED, .origin_hash = 1};
    m.checksum = nm_cortex_checksum_legacy(tail, sizeof(tail));
    nm_cortex_meta_encode(&m, buf);
    memcpy(buf + 24, tail, sizeof(tail));
    uint64_t s = inject(rx, buf, 24 + sizeof(tail));
    NM_ASSERT_OK(nm_cortex_tasks_wait_for_seq(t, s, WAIT_MS));
    nm_cortex_task_list l;
    NM_ASSERT_OK(nm_cortex_tasks_find_unique(t, 7, &l));
    cr_assert_str_eq(l.items[0].title.s, "z");
    cr_assert_eq(l.items[0].created_ns, 3);
    nm_cortex_task_list_free(&l);
    nm_cortex_tasks_free(t);
    nm_redex_close(rx);
}

Test(fold, timeouts_polls_and_wrong_origin)
{
    nm_redex *rx = mem_redex();
    nm_cortex_tasks *t = open_cfg(rx, NM_CORTEX_STOP, 0, 0);
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_seq(t, 100, 30), NM_ETIMEDOUT);
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_seq(t, 0, 0), NM_ETIMEDOUT);
    nm_write_token far = {ORIGIN, 100};
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_token(t, &far, 30), NM_ETIMEDOUT);
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_token(t, &far, 0), NM_ETIMEDOUT);
    nm_write_token other = {0x1234, 0};
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_token(t, &other, WAIT_MS),
                  NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "0000000000001234"));
    cr_assert_not_null(strstr(nm_errdetail(), "00000000abcdef01"));
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_token(t, NULL, 0), NM_EINVAL);
    cr_assert_eq(nm_cortex_tasks_origin(t), ORIGIN);
    /* a write is visible once its token is */
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_create(t, 5, "x", 1, &tok));
    NM_ASSERT_OK(nm_cortex_tasks_wait_for_token(t, &tok, WAIT_MS));
    nm_cortex_task_list l;
    NM_ASSERT_OK(nm_cortex_tasks_find_unique(t, 5, &l));
    nm_cortex_task_list_free(&l);
    nm_cortex_tasks_free(t);
    nm_redex_close(rx);
}

Test(fold, start_positions)
{
    nm_redex *rx = mem_redex();
    nm_redex_file *keep; /* keeps the in-memory log alive */
    NM_ASSERT_OK(nm_redex_open_file(rx, "cortex/tasks", NULL, &keep));
    nm_cortex_tasks *a = open_cfg(rx, NM_CORTEX_STOP, 0, 0);
    for (uint64_t i = 0; i < 4; i++) {
        create_sync(a, i, "x", i);
    }
    nm_cortex_tasks_free(a);

    nm_cortex_tasks *live =
        open_cfg(rx, NM_CORTEX_STOP, NM_CORTEX_LIVE_ONLY, 0);
    cr_assert_eq(count(live), 0);
    NM_ASSERT_OK(nm_cortex_tasks_wait_for_seq(live, 2, 0)); /* below start */
    nm_write_token tok = create_sync(live, 10, "y", 10);
    cr_assert_eq(tok.seq, 4);
    cr_assert_eq(count(live), 1);
    nm_cortex_status st;
    NM_ASSERT_OK(nm_cortex_tasks_status(live, &st));
    cr_assert_eq(st.start_seq, 4);
    nm_cortex_tasks_free(live);

    nm_cortex_tasks *from =
        open_cfg(rx, NM_CORTEX_STOP, NM_CORTEX_FROM_SEQ, 2);
    cr_assert_eq(count(from), 3, "seqs 2, 3 and 4");
    nm_cortex_task_list l;
    NM_ASSERT_ERR(nm_cortex_tasks_find_unique(from, 1, &l), NM_ENOTFOUND);
    NM_ASSERT_OK(nm_cortex_tasks_find_unique(from, 3, &l));
    nm_cortex_task_list_free(&l);
    nm_cortex_tasks_free(from);

    nm_cortex_tasks *all = open_cfg(rx, NM_CORTEX_STOP, 0, 0);
    cr_assert_eq(count(all), 5);
    nm_cortex_tasks_free(all);
    NM_ASSERT_OK(nm_redex_file_close(keep));
    nm_redex_close(rx);
}

Test(fold, evicted_history)
{
    nm_redex *rx = mem_redex();
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.retention_max_events = 2;
    nm_redex_file *keep;
    NM_ASSERT_OK(nm_redex_open_file(rx, "cortex/tasks", &fc, &keep));
    nm_cortex_config c;
    nm_cortex_config_init(&c);
    c.origin_hash = ORIGIN;
    c.file = &fc;
    nm_cortex_tasks *t;
    NM_ASSERT_OK(nm_cortex_tasks_open(rx, &c, &t));
    nm_write_token tok;
    for (uint64_t i = 0; i < 5; i++) {
        tok = create_sync(t, i, "x", i);
    }
    cr_assert_eq(nm_redex_sweep(keep), 3);
    nm_cortex_tasks_free(t);

    /* from the beginning = from the lowest retained seq: no error */
    NM_ASSERT_OK(nm_cortex_tasks_open(rx, &c, &t));
    cr_assert_eq(count(t), 2);
    nm_cortex_tasks_free(t);

    /* from an evicted seq: a STOP fold fails the open */
    c.start = NM_CORTEX_FROM_SEQ;
    c.start_seq = 0;
    NM_ASSERT_ERR(nm_cortex_tasks_open(rx, &c, &t), NM_ESHUTDOWN);
    cr_assert_not_null(strstr(nm_errdetail(), "evicted"), "%s",
                       nm_errdetail());
    /* a LOG_AND_CONTINUE fold counts it and goes on */
    c.on_error = NM_CORTEX_LOG_AND_CONTINUE;
    NM_ASSERT_OK(nm_cortex_tasks_open(rx, &c, &t));
    nm_cortex_status st;
    NM_ASSERT_OK(nm_cortex_tasks_status(t, &st));
    cr_assert_eq(st.fold_errors, 1);
    cr_assert_eq(st.folded_through_seq, 4);
    cr_assert(!st.has_applied);
    cr_assert_eq(st.count, 2);
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_token(t, &tok, 0), NM_ELAGGED);
    nm_cortex_tasks_free(t);
    NM_ASSERT_OK(nm_redex_file_close(keep));
    nm_redex_close(rx);
}

Test(fold, per_origin_counter_survives_reopen)
{
    nm_redex *rx = mem_redex();
    nm_redex_file *keep;
    NM_ASSERT_OK(nm_redex_open_file(rx, "cortex/tasks", NULL, &keep));
    nm_cortex_tasks *a = open_cfg(rx, NM_CORTEX_STOP, 0, 0);
    for (uint64_t i = 0; i < 3; i++) {
        create_sync(a, i, "x", i);
    }
    nm_cortex_tasks_free(a);
    nm_cortex_tasks *b = open_cfg(rx, NM_CORTEX_STOP, 0, 0);
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_create(b, 9, "y", 9, &tok));
    nm_redex_event ev;
    NM_ASSERT_OK(nm_redex_read_one(keep, tok.seq, &ev));
    nm_cortex_meta m;
    NM_ASSERT_OK(nm_cortex_event_verify(ev.payload, ev.len, &m));
    cr_assert_eq(m.seq_or_ts, 3, "continues after the replayed events");
    cr_assert_eq(m.origin_hash, ORIGIN);
    cr_assert_eq(m.flags, 0);
    nm_redex_event_free(&ev);
    nm_cortex_tasks_free(b);
    NM_ASSERT_OK(nm_redex_file_close(keep));
    nm_redex_close(rx);
}

typedef struct wctx {
    nm_cortex_tasks *t;
    uint64_t base;
    int n;
    nm_write_token last;
    int rc;
} wctx;

static void *
writer(void *arg)
{
    wctx *w = arg;
    for (int i = 0; i < w->n && !w->rc; i++) {
        w->rc = nm_cortex_tasks_create(w->t, w->base + (uint64_t)i, "w",
                                       (uint64_t)i, &w->last);
    }
    return NULL;
}

Test(fold, concurrent_writers)
{
    nm_redex *rx = mem_redex();
    nm_cortex_tasks *t = open_cfg(rx, NM_CORTEX_STOP, 0, 0);
    pthread_t th[4];
    wctx w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (wctx){.t = t, .base = (uint64_t)i * 100000, .n = 2000};
        pthread_create(&th[i], NULL, writer, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        NM_ASSERT_OK(w[i].rc);
    }
    for (int i = 0; i < 4; i++) {
        NM_ASSERT_OK(nm_cortex_tasks_wait_for_token(t, &w[i].last, WAIT_MS));
    }
    cr_assert_eq(count(t), 8000);
    /* seq_or_ts values are unique */
    nm_redex_file *f;
    NM_ASSERT_OK(nm_redex_open_file(rx, "cortex/tasks", NULL, &f));
    nm_redex_batch b;
    NM_ASSERT_OK(nm_redex_read_range(f, 0, 8000, 0, &b));
    cr_assert_eq(b.count, 8000);
    uint8_t *seen = calloc(8000, 1);
    for (size_t i = 0; i < b.count; i++) {
        nm_cortex_meta m;
        NM_ASSERT_OK(
            nm_cortex_event_verify(b.events[i].payload, b.events[i].len, &m));
        cr_assert_lt(m.seq_or_ts, 8000);
        cr_assert_eq(seen[m.seq_or_ts], 0);
        seen[m.seq_or_ts] = 1;
    }
    free(seen);
    nm_redex_batch_free(&b);
    NM_ASSERT_OK(nm_redex_file_close(f));
    nm_cortex_tasks_free(t);
    nm_redex_close(rx);
}

typedef struct blk {
    nm_cortex_tasks *t;
    int rc_seq, rc_tok;
} blk;

static void *
blocked_waiter(void *arg)
{
    blk *b = arg;
    nm_write_token far = {ORIGIN, 1000};
    b->rc_tok = nm_cortex_tasks_wait_for_token(b->t, &far, -1);
    return NULL;
}

static void *
blocked_seq_waiter(void *arg)
{
    blk *b = arg;
    b->rc_seq = nm_cortex_tasks_wait_for_seq(b->t, 1000, -1);
    return NULL;
}

Test(fold, close_wakes_waiters_and_refuses_writes)
{
    nm_redex *rx = mem_redex();
    nm_cortex_tasks *t = open_cfg(rx, NM_CORTEX_STOP, 0, 0);
    create_sync(t, 1, "kept", 1);
    blk b = {.t = t};
    pthread_t th1, th2;
    pthread_create(&th1, NULL, blocked_waiter, &b);
    pthread_create(&th2, NULL, blocked_seq_waiter, &b);
    nm_cortex_tasks_close(t);
    pthread_join(th1, NULL);
    pthread_join(th2, NULL);
    cr_assert_eq(b.rc_tok, NM_ECLOSED);
    cr_assert_eq(b.rc_seq, NM_ECLOSED);
    nm_cortex_tasks_close(t); /* idempotent */
    NM_ASSERT_ERR(nm_cortex_tasks_create(t, 2, "x", 1, NULL), NM_ECLOSED);
    cr_assert_not_null(strstr(nm_errdetail(), "closed"));
    NM_ASSERT_ERR(nm_cortex_tasks_complete(t, 1, 1, NULL), NM_ECLOSED);
    NM_ASSERT_ERR(nm_cortex_tasks_delete(t, 1, NULL), NM_ECLOSED);
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_seq(t, 0, 0), NM_ECLOSED);
    nm_write_token tok = {ORIGIN, 0};
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_token(t, &tok, 0), NM_ECLOSED);
    nm_cortex_watch *w;
    NM_ASSERT_ERR(nm_cortex_tasks_watch(t, NULL, &w), NM_ECLOSED);
    /* the last state is still readable */
    cr_assert_eq(count(t), 1);
    nm_cortex_status st;
    NM_ASSERT_OK(nm_cortex_tasks_status(t, &st));
    cr_assert(st.closed);
    cr_assert(!st.running);
    cr_assert_eq(st.stop_code, NM_OK);
    nm_cortex_tasks_free(t);
    nm_cortex_tasks_free(NULL);
    nm_cortex_tasks_close(NULL);
    nm_redex_close(rx);
}

Test(fold, bad_configurations)
{
    nm_redex *rx = mem_redex();
    nm_cortex_config c;
    nm_cortex_config_init(&c);
    nm_cortex_tasks *t;
    c.channel = "Bad Name";
    NM_ASSERT_ERR(nm_cortex_tasks_open(rx, &c, &t), NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "Bad Name"), "%s",
                       nm_errdetail());
    c.channel = "a//b";
    NM_ASSERT_ERR(nm_cortex_tasks_open(rx, &c, &t), NM_EINVAL);
    c.channel = "";
    NM_ASSERT_ERR(nm_cortex_tasks_open(rx, &c, &t), NM_EINVAL);
    c.channel = "my/tasks"; /* a custom channel works */
    NM_ASSERT_OK(nm_cortex_tasks_open(rx, &c, &t));
    create_sync(t, 1, "x", 1);
    nm_cortex_tasks_free(t);
    c.channel = NULL;
    c.size = 1;
    NM_ASSERT_ERR(nm_cortex_tasks_open(rx, &c, &t), NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "nm_cortex_config_init"));
    nm_cortex_config_init(&c);
    c.start = (nm_cortex_start)9;
    NM_ASSERT_ERR(nm_cortex_tasks_open(rx, &c, &t), NM_EINVAL);
    nm_cortex_config_init(&c);
    c.on_error = (nm_cortex_on_error)9;
    NM_ASSERT_ERR(nm_cortex_tasks_open(rx, &c, &t), NM_EINVAL);
    NM_ASSERT_ERR(nm_cortex_tasks_open(NULL, NULL, &t), NM_EINVAL);
    NM_ASSERT_ERR(nm_cortex_tasks_open(rx, NULL, NULL), NM_EINVAL);
    /* persistent without a manager directory */
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.persistent = true;
    nm_cortex_config_init(&c);
    c.file = &fc;
    NM_ASSERT_ERR(nm_cortex_tasks_open(rx, &c, &t), NM_EINVAL);
    /* defaults work */
    NM_ASSERT_OK(nm_cortex_tasks_open(rx, NULL, &t));
    cr_assert_eq(nm_cortex_tasks_origin(t), 0);
    nm_cortex_tasks_free(t);
    nm_redex_close(rx);
}
