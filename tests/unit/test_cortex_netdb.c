/*
 * tests/unit/test_cortex_netdb.c - NetDb: the builder's checks, models
 * on and off, snapshot bundle bytes (hand-written vectors), encode /
 * decode round trips and every truncation, restore equivalence on
 * 10,000 tasks (in memory and on disk), restore + replay of later
 * writes, a snapshot of another log refused, persistence across
 * reopen, a bad event on disk under STOP and LOG_AND_CONTINUE, writes
 * after close.
 */
#include "cortex/cortex_impl.h"
#include "cortex_helpers.h"

static char dir[128];

static void
mkdir_tmp(void)
{
    snprintf(dir, sizeof(dir), "/tmp/nm_cortex_netdb_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static nm_netdb *
open_db(nm_redex *rx, const char *d, bool tasks, bool memories)
{
    nm_netdb_config c;
    nm_netdb_config_init(&c);
    c.origin_hash = ORIGIN;
    c.with_tasks = tasks;
    c.with_memories = memories;
    c.redex = rx;
    c.dir = d;
    c.persistent = d != NULL;
    nm_netdb *db;
    NM_ASSERT_OK(nm_netdb_open(&c, &db));
    return db;
}

Test(netdb, builder_checks)
{
    nm_netdb_config c;
    nm_netdb_config_init(&c);
    nm_netdb *db;
    NM_ASSERT_ERR(nm_netdb_open(&c, &db), NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "no models"));
    c.with_tasks = true;
    c.persistent = true;
    NM_ASSERT_ERR(nm_netdb_open(&c, &db), NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "directory"));
    c.persistent = false;
    c.size = 0;
    NM_ASSERT_ERR(nm_netdb_open(&c, &db), NM_EINVAL);
    NM_ASSERT_ERR(nm_netdb_open(NULL, &db), NM_EINVAL);
    nm_netdb_config_init(&c);
    c.with_tasks = true;
    nm_redex *rx = mem_redex();
    c.redex = rx;
    c.dir = "/tmp";
    NM_ASSERT_ERR(nm_netdb_open(&c, &db), NM_EINVAL);
    nm_redex_close(rx);

    db = open_db(NULL, NULL, true, false);
    cr_assert_not_null(nm_netdb_tasks(db));
    cr_assert_null(nm_netdb_memories(db));
    nm_netdb_free(db);
    db = open_db(NULL, NULL, false, true);
    cr_assert_null(nm_netdb_tasks(db));
    cr_assert_not_null(nm_netdb_memories(db));
    nm_netdb_free(db);
    nm_netdb_free(NULL);
    nm_netdb_close(NULL);
}

Test(netdb, snapshot_bytes_by_hand)
{
    nm_netdb *db = open_db(NULL, NULL, true, true);
    nm_cortex_tasks *t = nm_netdb_tasks(db);
    nm_cortex_memories *m = nm_netdb_memories(db);
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_create(t, 1, "a", 2, &tok));
    NM_ASSERT_OK(nm_cortex_tasks_complete(t, 1, 3, &tok));
    sync_tok(t, &tok);
    const char *tags[] = {"x"};
    NM_ASSERT_OK(nm_cortex_memories_store(m, 7, "hi", tags, 1, "s", 5, &tok));
    NM_ASSERT_OK(nm_cortex_memories_pin(m, 7, 6, &tok));
    msync_tok(m, &tok);
    nm_netdb_snapshot s;
    NM_ASSERT_OK(nm_netdb_snapshot_take(db, &s));
    cr_assert(s.has_tasks && s.has_memories);
    cr_assert(s.tasks.has_last_seq);
    cr_assert_eq(s.tasks.last_seq, 1);
    /* TasksSnapshotPayload {app_seq 2, inner: HashMap {1: Task {1, "a",
     * Completed, 2, 3}}} */
    const uint8_t tasks_want[] = {0x02, 0x08, 0x01, 0x01, 0x01,
                                  0x01, 'a',  0x01, 0x02, 0x03};
    cr_assert_eq(s.tasks.len, sizeof(tasks_want));
    cr_assert_eq(memcmp(s.tasks.state, tasks_want, sizeof(tasks_want)), 0);
    /* MemoriesSnapshotPayload {2, {7: Memory {7, "hi", ["x"], "s", 5, 6,
     * true}}} */
    const uint8_t mem_want[] = {0x02, 0x0e, 0x01, 0x07, 0x07, 0x02,
                                'h',  'i',  0x01, 0x01, 'x',  0x01,
                                's',  0x05, 0x06, 0x01};
    cr_assert_eq(s.memories.len, sizeof(mem_want));
    cr_assert_eq(memcmp(s.memories.state, mem_want, sizeof(mem_want)), 0);
    uint8_t *enc;
    size_t n;
    NM_ASSERT_OK(nm_netdb_snapshot_encode(&s, &enc, &n));
    uint8_t want[64];
    size_t k = 0;
    want[k++] = 0x01; /* Some(tasks) */
    want[k++] = sizeof(tasks_want);
    memcpy(want + k, tasks_want, sizeof(tasks_want));
    k += sizeof(tasks_want);
    want[k++] = 0x01; /* Some(last_seq) */
    want[k++] = 0x01;
    want[k++] = 0x01; /* Some(memories) */
    want[k++] = sizeof(mem_want);
    memcpy(want + k, mem_want, sizeof(mem_want));
    k += sizeof(mem_want);
    want[k++] = 0x01;
    want[k++] = 0x01;
    cr_assert_eq(n, k);
    cr_assert_eq(memcmp(enc, want, k), 0);
    free(enc);

    /* None parts: a tasks-only bundle of an empty db */
    nm_netdb_snapshot_free(&s);
    nm_netdb_free(db);
    db = open_db(NULL, NULL, true, false);
    NM_ASSERT_OK(nm_netdb_snapshot_take(db, &s));
    cr_assert(!s.tasks.has_last_seq);
    NM_ASSERT_OK(nm_netdb_snapshot_encode(&s, &enc, &n));
    const uint8_t empty[] = {0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00};
    cr_assert_eq(n, sizeof(empty));
    cr_assert_eq(memcmp(enc, empty, n), 0);
    free(enc);
    nm_netdb_snapshot_free(&s);
    nm_netdb_free(db);
}

Test(netdb, decode_errors)
{
    nm_netdb_snapshot s;
    /* every strict prefix of a valid bundle fails */
    nm_netdb *db = open_db(NULL, NULL, true, true);
    create_sync(nm_netdb_tasks(db), 3, "three", 1);
    nm_write_token tok;
    const char *tags[] = {"q", "r"};
    NM_ASSERT_OK(nm_cortex_memories_store(nm_netdb_memories(db), 4, "c", tags,
                                          2, "src", 9, &tok));
    msync_tok(nm_netdb_memories(db), &tok);
    NM_ASSERT_OK(nm_netdb_snapshot_take(db, &s));
    uint8_t *enc;
    size_t n;
    NM_ASSERT_OK(nm_netdb_snapshot_encode(&s, &enc, &n));
    nm_netdb_snapshot_free(&s);
    for (size_t cut = 0; cut < n; cut++) {
        NM_ASSERT_ERR(nm_netdb_snapshot_decode(enc, cut, &s), NM_EDECODE);
        cr_assert(!s.has_tasks && !s.has_memories);
    }
    /* trailing bytes are ignored */
    uint8_t *more = malloc(n + 3);
    memcpy(more, enc, n);
    memset(more + n, 0xee, 3);
    NM_ASSERT_OK(nm_netdb_snapshot_decode(more, n + 3, &s));
    cr_assert(s.has_tasks && s.has_memories);
    nm_netdb_snapshot_free(&s);
    free(more);
    free(enc);
    nm_netdb_free(db);

    const struct {
        const uint8_t b[24];
        size_t n;
    } bad[] = {
        {{0x02}, 1},                         /* option tag 2 */
        {{0x00, 0x07}, 2},                   /* memories tag 7 */
        {{0x01, 0x02, 0x00, 0x00, 0x02}, 5}, /* last_seq tag 2 */
        /* last_seq = u64::MAX */
        {{0x01, 0x02, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0x01, 0x00},
         16},
        /* inner map holds 1 entry but no bytes */
        {{0x01, 0x03, 0x00, 0x01, 0x01, 0x00, 0x00}, 7},
        /* a task whose key (2) differs from its id (1) */
        {{0x01, 0x0a, 0x00, 0x08, 0x01, 0x02, 0x01, 0x01, 'a', 0x00, 0x00,
          0x00, 0x00, 0x00},
         14},
        /* task status variant 2 */
        {{0x01, 0x0a, 0x00, 0x08, 0x01, 0x01, 0x01, 0x01, 'a', 0x02, 0x00,
          0x00, 0x00, 0x00},
         14},
        /* memory pinned byte 2 */
        {{0x00, 0x01, 0x0b, 0x00, 0x09, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,
          0x00, 0x00, 0x02, 0x00},
         15},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        NM_ASSERT_ERR(nm_netdb_snapshot_decode(bad[i].b, bad[i].n, &s),
                      NM_EDECODE);
        cr_assert_neq(nm_errdetail()[0], '\0');
    }
    /* the valid twins of the last two */
    const uint8_t ok_task[] = {0x01, 0x0a, 0x00, 0x08, 0x01, 0x01, 0x01,
                               0x01, 'a',  0x01, 0x00, 0x00, 0x00, 0x00};
    NM_ASSERT_OK(nm_netdb_snapshot_decode(ok_task, sizeof(ok_task), &s));
    nm_netdb_snapshot_free(&s);
    const uint8_t ok_mem[] = {0x00, 0x01, 0x0b, 0x00, 0x09, 0x01, 0x01, 0x01,
                              0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00};
    NM_ASSERT_OK(nm_netdb_snapshot_decode(ok_mem, sizeof(ok_mem), &s));
    cr_assert(s.has_memories && !s.has_tasks);
    nm_netdb_snapshot_free(&s);
    NM_ASSERT_ERR(nm_netdb_snapshot_decode(NULL, 1, &s), NM_EINVAL);
}

static void
all_tasks(nm_cortex_tasks *t, nm_cortex_task_list *out)
{
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.order_by = NM_CORTEX_ID_ASC;
    NM_ASSERT_OK(nm_cortex_tasks_find_many(t, &f, out));
}

static void
assert_same_tasks(const nm_cortex_task_list *a, const nm_cortex_task_list *b)
{
    cr_assert_eq(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        const nm_cortex_task *x = &a->items[i], *y = &b->items[i];
        cr_assert_eq(x->id, y->id);
        cr_assert_str_eq(x->title.s, y->title.s);
        cr_assert_eq(x->status, y->status);
        cr_assert_eq(x->created_ns, y->created_ns);
        cr_assert_eq(x->updated_ns, y->updated_ns);
    }
}

static void
restore_equivalence(const char *d)
{
    nm_redex *rx = NULL;
    nm_redex_file *keep = NULL;
    if (!d) { /* keep the in-memory logs alive across the two dbs */
        rx = mem_redex();
        NM_ASSERT_OK(nm_redex_open_file(rx, "cortex/tasks", NULL, &keep));
    }
    nm_netdb *a = open_db(rx, d, true, true);
    nm_cortex_tasks *t = nm_netdb_tasks(a);
    nm_write_token tok;
    char title[48];
    for (uint64_t i = 0; i < 10000; i++) {
        snprintf(title, sizeof(title), "task number %llu",
                 (unsigned long long)i);
        NM_ASSERT_OK(nm_cortex_tasks_create(t, i * 3 + 1, title, i, &tok));
        if (i % 5 == 0) {
            NM_ASSERT_OK(nm_cortex_tasks_complete(t, i * 3 + 1, i + 7, &tok));
        }
    }
    sync_tok(t, &tok);
    nm_netdb_snapshot s;
    NM_ASSERT_OK(nm_netdb_snapshot_take(a, &s));
    uint8_t *enc;
    size_t n;
    NM_ASSERT_OK(nm_netdb_snapshot_encode(&s, &enc, &n));
    nm_netdb_snapshot_free(&s);
    /* more writes after the snapshot: the restored db replays them */
    for (uint64_t i = 0; i < 100; i++) {
        NM_ASSERT_OK(
            nm_cortex_tasks_rename(t, i * 3 + 1, "later", 99999, &tok));
        NM_ASSERT_OK(nm_cortex_tasks_delete(t, i * 3 + 4, &tok));
    }
    sync_tok(t, &tok);
    nm_cortex_task_list want;
    all_tasks(t, &want);
    cr_assert_eq(want.count, 9900);
    nm_netdb_free(a);

    nm_netdb_snapshot d2;
    NM_ASSERT_OK(nm_netdb_snapshot_decode(enc, n, &d2));
    free(enc);
    nm_netdb_config c;
    nm_netdb_config_init(&c);
    c.origin_hash = ORIGIN;
    c.with_tasks = c.with_memories = true;
    c.redex = rx;
    c.dir = d;
    c.persistent = d != NULL;
    nm_netdb *b;
    NM_ASSERT_OK(nm_netdb_open_from_snapshot(&c, &d2, &b));
    nm_cortex_status st;
    NM_ASSERT_OK(nm_cortex_tasks_status(nm_netdb_tasks(b), &st));
    cr_assert_eq(st.start_seq, d2.tasks.last_seq + 1, "replays from +1");
    cr_assert_eq(st.events_applied, 200, "only the later writes replayed");
    nm_netdb_snapshot_free(&d2);
    nm_cortex_task_list got;
    all_tasks(nm_netdb_tasks(b), &got);
    assert_same_tasks(&got, &want);
    nm_cortex_task_list_free(&got);
    nm_cortex_task_list_free(&want);
    /* and it keeps working */
    nm_write_token t2 = create_sync(nm_netdb_tasks(b), 5, "new", 1);
    cr_assert_eq(t2.seq, tok.seq + 1);
    nm_netdb_free(b);
    if (keep) {
        NM_ASSERT_OK(nm_redex_file_close(keep));
    }
    nm_redex_close(rx);
}

Test(netdb, restore_equivalence_10k_in_memory, .timeout = 120)
{
    restore_equivalence(NULL);
}

Test(netdb, restore_equivalence_10k_on_disk, .timeout = 120)
{
    mkdir_tmp();
    restore_equivalence(dir);
    rm_rf(dir);
}

Test(netdb, snapshot_of_another_log_is_refused)
{
    nm_netdb *a = open_db(NULL, NULL, true, false);
    for (uint64_t i = 0; i < 3; i++) {
        create_sync(nm_netdb_tasks(a), i, "x", i);
    }
    nm_netdb_snapshot s;
    NM_ASSERT_OK(nm_netdb_snapshot_take(a, &s));
    nm_netdb_free(a);
    nm_netdb_config c;
    nm_netdb_config_init(&c);
    c.with_tasks = true;
    nm_netdb *b;
    NM_ASSERT_ERR(nm_netdb_open_from_snapshot(&c, &s, &b), NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "not a snapshot of this log"),
                       "%s", nm_errdetail());
    /* the snapshot holds tasks, the config only memories */
    c.with_tasks = false;
    c.with_memories = true;
    NM_ASSERT_ERR(nm_netdb_open_from_snapshot(&c, &s, &b), NM_EINVAL);
    nm_netdb_snapshot_free(&s);
}

Test(netdb, persistence_across_reopen)
{
    mkdir_tmp();
    nm_netdb *db = open_db(NULL, dir, true, true);
    create_sync(nm_netdb_tasks(db), 1, "persist me", 10);
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_complete(nm_netdb_tasks(db), 1, 11, &tok));
    const char *tags[] = {"disk"};
    NM_ASSERT_OK(nm_cortex_memories_store(nm_netdb_memories(db), 2, "on disk",
                                          tags, 1, "test", 12, &tok));
    msync_tok(nm_netdb_memories(db), &tok);
    nm_netdb_free(db);

    db = open_db(NULL, dir, true, true);
    nm_cortex_task_list l;
    NM_ASSERT_OK(nm_cortex_tasks_find_unique(nm_netdb_tasks(db), 1, &l));
    cr_assert_str_eq(l.items[0].title.s, "persist me");
    cr_assert_eq(l.items[0].status, NM_TASK_COMPLETED);
    cr_assert_eq(l.items[0].updated_ns, 11);
    nm_cortex_task_list_free(&l);
    nm_cortex_memory_list ml;
    NM_ASSERT_OK(
        nm_cortex_memories_find_unique(nm_netdb_memories(db), 2, &ml));
    cr_assert_str_eq(ml.items[0].tags[0].s, "disk");
    nm_cortex_memory_list_free(&ml);
    tok = create_sync(nm_netdb_tasks(db), 3, "after reopen", 13);
    cr_assert_eq(tok.seq, 2);
    nm_netdb_free(db);
    rm_rf(dir);
}

Test(netdb, bad_event_on_disk)
{
    mkdir_tmp();
    nm_netdb *db = open_db(NULL, dir, true, false);
    create_sync(nm_netdb_tasks(db), 1, "x", 1);
    nm_netdb_free(db);
    /* append garbage behind the db's back */
    nm_redex_config rc;
    nm_redex_config_init(&rc);
    rc.dir = dir;
    nm_redex *rx;
    NM_ASSERT_OK(nm_redex_open(&rc, &rx));
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.persistent = true;
    nm_redex_file *f;
    NM_ASSERT_OK(nm_redex_open_file(rx, "cortex/tasks", &fc, &f));
    NM_ASSERT_OK(nm_redex_append(f, "garbage", 7, NULL));
    nm_redex_close(rx);

    nm_netdb_config c;
    nm_netdb_config_init(&c);
    c.with_tasks = true;
    c.dir = dir;
    c.persistent = true;
    NM_ASSERT_ERR(nm_netdb_open(&c, &db), NM_ESHUTDOWN);
    cr_assert_not_null(strstr(nm_errdetail(), "seq 1"), "%s", nm_errdetail());
    c.on_error = NM_CORTEX_LOG_AND_CONTINUE;
    NM_ASSERT_OK(nm_netdb_open(&c, &db));
    nm_cortex_status st;
    NM_ASSERT_OK(nm_cortex_tasks_status(nm_netdb_tasks(db), &st));
    cr_assert_eq(st.fold_errors, 1);
    cr_assert_eq(st.count, 1);
    nm_netdb_free(db);
    rm_rf(dir);
}

Test(netdb, writes_after_close)
{
    nm_netdb *db = open_db(NULL, NULL, true, true);
    nm_netdb_close(db);
    nm_netdb_close(db);
    NM_ASSERT_ERR(nm_cortex_tasks_create(nm_netdb_tasks(db), 1, "x", 1, NULL),
                  NM_ECLOSED);
    NM_ASSERT_ERR(nm_cortex_memories_store(nm_netdb_memories(db), 1, "x", NULL,
                                           0, NULL, 1, NULL),
                  NM_ECLOSED);
    nm_netdb_snapshot s;
    NM_ASSERT_OK(nm_netdb_snapshot_take(db, &s)); /* the last state */
    nm_netdb_snapshot_free(&s);
    nm_netdb_free(db);
}
