/*
 * tests/unit/test_cortex_tasks.c - the tasks model: every operation's
 * fold semantics (create overwrites, rename/complete of unknown ids do
 * nothing, delete), find_unique, every filter (status, id_in, created /
 * updated bounds, title_contains), every order, limit, count_where,
 * exists_where, count, the zero-copy read guard, unknown dispatches,
 * and filter validation.
 */
#include "cortex_helpers.h"

static nm_redex *rx;
static nm_cortex_tasks *t;

static void
setup(void)
{
    rx = mem_redex();
    t = open_tasks(rx, ORIGIN);
}

static void
teardown(void)
{
    nm_cortex_tasks_free(t);
    nm_redex_close(rx);
}

TestSuite(tasks, .init = setup, .fini = teardown);

static nm_cortex_task
get(uint64_t id)
{
    nm_cortex_task_list l;
    NM_ASSERT_OK(nm_cortex_tasks_find_unique(t, id, &l));
    cr_assert_eq(l.count, 1);
    nm_cortex_task x = l.items[0];
    static char title[256];
    snprintf(title, sizeof(title), "%s", x.title.s);
    x.title.s = title;
    nm_cortex_task_list_free(&l);
    return x;
}

static void
last_sync(nm_write_token tok)
{
    sync_tok(t, &tok);
}

Test(tasks, create_rename_complete_delete)
{
    create_sync(t, 1, "write docs", 100);
    nm_cortex_task x = get(1);
    cr_assert_eq(x.id, 1);
    cr_assert_str_eq(x.title.s, "write docs");
    cr_assert_eq(x.title.len, 10);
    cr_assert_eq(x.status, NM_TASK_PENDING);
    cr_assert_eq(x.created_ns, 100);
    cr_assert_eq(x.updated_ns, 100);

    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_rename(t, 1, "write more docs", 200, &tok));
    last_sync(tok);
    x = get(1);
    cr_assert_str_eq(x.title.s, "write more docs");
    cr_assert_eq(x.created_ns, 100);
    cr_assert_eq(x.updated_ns, 200);

    NM_ASSERT_OK(nm_cortex_tasks_complete(t, 1, 300, &tok));
    last_sync(tok);
    x = get(1);
    cr_assert_eq(x.status, NM_TASK_COMPLETED);
    cr_assert_eq(x.updated_ns, 300);

    /* create again: overwrite, back to pending, both stamps reset */
    create_sync(t, 1, "again", 400);
    x = get(1);
    cr_assert_str_eq(x.title.s, "again");
    cr_assert_eq(x.status, NM_TASK_PENDING);
    cr_assert_eq(x.created_ns, 400);
    cr_assert_eq(x.updated_ns, 400);

    NM_ASSERT_OK(nm_cortex_tasks_delete(t, 1, &tok));
    last_sync(tok);
    nm_cortex_task_list l;
    NM_ASSERT_ERR(nm_cortex_tasks_find_unique(t, 1, &l), NM_ENOTFOUND);
    cr_assert_eq(l.count, 0);
    cr_assert_null(l.items);
    size_t n;
    NM_ASSERT_OK(nm_cortex_tasks_count(t, &n));
    cr_assert_eq(n, 0);
}

Test(tasks, unknown_ids_are_noops)
{
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_rename(t, 9, "x", 1, NULL));
    NM_ASSERT_OK(nm_cortex_tasks_complete(t, 9, 1, NULL));
    NM_ASSERT_OK(nm_cortex_tasks_delete(t, 9, &tok));
    last_sync(tok);
    size_t n;
    NM_ASSERT_OK(nm_cortex_tasks_count(t, &n));
    cr_assert_eq(n, 0);
    nm_cortex_status st;
    NM_ASSERT_OK(nm_cortex_tasks_status(t, &st));
    cr_assert_eq(st.events_applied, 3);
    cr_assert_eq(st.fold_errors, 0);
    cr_assert(st.running);
    cr_assert(st.has_applied);
    cr_assert_eq(st.applied_through_seq, 2);
    cr_assert_eq(st.folded_through_seq, 2);
}

Test(tasks, many_tasks_deletes_keep_the_index_right)
{
    nm_write_token tok;
    for (uint64_t i = 0; i < 3000; i++) {
        NM_ASSERT_OK(nm_cortex_tasks_create(t, i * 7919, "t", i, &tok));
    }
    for (uint64_t i = 0; i < 3000; i += 3) {
        NM_ASSERT_OK(nm_cortex_tasks_delete(t, i * 7919, &tok));
    }
    last_sync(tok);
    const nm_cortex_tasks_view *v = nm_cortex_tasks_read_begin(t);
    cr_assert_not_null(v);
    cr_assert_eq(nm_cortex_tasks_view_count(v), 2000);
    for (uint64_t i = 0; i < 3000; i++) {
        const nm_cortex_task *x = nm_cortex_tasks_view_get(v, i * 7919);
        if (i % 3 == 0) {
            cr_assert_null(x, "task %llu deleted", (unsigned long long)i);
        } else {
            cr_assert_not_null(x, "task %llu", (unsigned long long)i);
            cr_assert_eq(x->id, i * 7919);
            cr_assert_eq(x->created_ns, i);
        }
    }
    cr_assert_null(nm_cortex_tasks_view_get(v, 1));
    size_t seen = 0;
    for (size_t i = 0; i < nm_cortex_tasks_view_count(v); i++) {
        seen += nm_cortex_tasks_view_at(v, i) != NULL;
    }
    cr_assert_eq(seen, 2000);
    cr_assert_null(nm_cortex_tasks_view_at(v, 2000));
    nm_cortex_tasks_read_end(v);
}

/* 10 tasks: id i, created 10*i, updated 10*i + (i % 3), title
 * "Task <i>" (even ids "ALPHA task <i>"), odd ids completed. */
static void
fill(void)
{
    nm_write_token tok;
    char title[64];
    for (uint64_t i = 1; i <= 10; i++) {
        snprintf(title, sizeof(title), i % 2 ? "Task %llu" : "ALPHA task %llu",
                 (unsigned long long)i);
        NM_ASSERT_OK(nm_cortex_tasks_create(t, i, title, 10 * i, &tok));
    }
    for (uint64_t i = 1; i <= 10; i++) {
        if (i % 2) {
            NM_ASSERT_OK(nm_cortex_tasks_complete(t, i, 10 * i + i % 3, &tok));
        } else if (i % 3) {
            snprintf(title, sizeof(title), "ALPHA task %llu",
                     (unsigned long long)i);
            NM_ASSERT_OK(
                nm_cortex_tasks_rename(t, i, title, 10 * i + i % 3, &tok));
        }
    }
    last_sync(tok);
}

static const char *
ids_of(const nm_cortex_task_filter *f)
{
    static char buf[256];
    nm_cortex_task_list l;
    NM_ASSERT_OK(nm_cortex_tasks_find_many(t, f, &l));
    task_ids(&l, buf, sizeof(buf));
    size_t n;
    bool any;
    NM_ASSERT_OK(nm_cortex_tasks_count_where(t, f, &n));
    NM_ASSERT_OK(nm_cortex_tasks_exists_where(t, f, &any));
    if (!f || !f->limit) {
        cr_assert_eq(n, l.count, "count_where agrees with find_many");
    }
    cr_assert_eq(any, n > 0);
    nm_cortex_task_list_free(&l);
    return buf;
}

Test(tasks, filters)
{
    fill();
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.order_by = NM_CORTEX_ID_ASC;
    cr_assert_str_eq(ids_of(&f), "1,2,3,4,5,6,7,8,9,10");

    f.status = NM_TASK_COMPLETED;
    cr_assert_str_eq(ids_of(&f), "1,3,5,7,9");
    f.status = NM_TASK_PENDING;
    cr_assert_str_eq(ids_of(&f), "2,4,6,8,10");
    f.status = -1;

    uint64_t in[] = {10, 3, 3, 99, 1};
    f.id_in = in;
    f.id_in_count = 5;
    cr_assert_str_eq(ids_of(&f), "1,3,10");
    f.id_in_count = 0; /* an empty set matches nothing */
    cr_assert_str_eq(ids_of(&f), "");
    f.id_in = NULL;

    f.created_after = 30; /* inclusive */
    f.created_before = 60;
    cr_assert_str_eq(ids_of(&f), "3,4,5,6");
    f.created_after = 0;
    f.created_before = UINT64_MAX;

    f.updated_after = 41; /* 4: 41, 5: 52 */
    f.updated_before = 52;
    cr_assert_str_eq(ids_of(&f), "4,5");
    f.updated_after = 0;
    f.updated_before = UINT64_MAX;

    f.title_contains = "alpha"; /* ASCII case-insensitive */
    cr_assert_str_eq(ids_of(&f), "2,4,6,8,10");
    f.title_contains = "TASK 1";
    cr_assert_str_eq(ids_of(&f), "1,10");
    f.title_contains = "";
    cr_assert_str_eq(ids_of(&f), "1,2,3,4,5,6,7,8,9,10");
    f.title_contains = "nope";
    cr_assert_str_eq(ids_of(&f), "");

    /* conditions combine */
    f.title_contains = "task";
    f.status = NM_TASK_PENDING;
    f.created_after = 50;
    cr_assert_str_eq(ids_of(&f), "6,8,10");
}

Test(tasks, orders_and_limit)
{
    fill();
    /* all tasks: created = 10i; updated = 10i + i%3 for completed odd
     * ids and renamed even ids not divisible by 3; 6 keeps 60. */
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.order_by = NM_CORTEX_ID_DESC;
    cr_assert_str_eq(ids_of(&f), "10,9,8,7,6,5,4,3,2,1");
    f.order_by = NM_CORTEX_CREATED_ASC;
    cr_assert_str_eq(ids_of(&f), "1,2,3,4,5,6,7,8,9,10");
    f.order_by = NM_CORTEX_CREATED_DESC;
    cr_assert_str_eq(ids_of(&f), "10,9,8,7,6,5,4,3,2,1");
    f.order_by = NM_CORTEX_UPDATED_ASC;
    cr_assert_str_eq(ids_of(&f), "1,2,3,4,5,6,7,8,9,10");
    f.order_by = NM_CORTEX_UPDATED_DESC;
    cr_assert_str_eq(ids_of(&f), "10,9,8,7,6,5,4,3,2,1");
    f.limit = 3;
    cr_assert_str_eq(ids_of(&f), "10,9,8");
    f.order_by = NM_CORTEX_ID_ASC;
    cr_assert_str_eq(ids_of(&f), "1,2,3");
    size_t n;
    NM_ASSERT_OK(nm_cortex_tasks_count_where(t, &f, &n));
    cr_assert_eq(n, 10, "count_where ignores limit");
    f.order_by = NM_CORTEX_ORDER_NONE; /* unordered: any 3 */
    nm_cortex_task_list l;
    NM_ASSERT_OK(nm_cortex_tasks_find_many(t, &f, &l));
    cr_assert_eq(l.count, 3);
    nm_cortex_task_list_free(&l);
    f.limit = 100;
    NM_ASSERT_OK(nm_cortex_tasks_find_many(t, &f, &l));
    cr_assert_eq(l.count, 10);
    nm_cortex_task_list_free(&l);
    NM_ASSERT_OK(nm_cortex_tasks_find_many(t, NULL, &l));
    cr_assert_eq(l.count, 10);
    nm_cortex_task_list_free(&l);
}

Test(tasks, order_ties_break_by_id)
{
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_create(t, 5, "a", 7, &tok));
    NM_ASSERT_OK(nm_cortex_tasks_create(t, 2, "b", 7, &tok));
    NM_ASSERT_OK(nm_cortex_tasks_create(t, 9, "c", 3, &tok));
    last_sync(tok);
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.order_by = NM_CORTEX_CREATED_ASC;
    cr_assert_str_eq(ids_of(&f), "9,2,5");
    f.order_by = NM_CORTEX_CREATED_DESC;
    cr_assert_str_eq(ids_of(&f), "2,5,9");
}

Test(tasks, results_are_copies)
{
    create_sync(t, 1, "before", 1);
    nm_cortex_task_list l;
    NM_ASSERT_OK(nm_cortex_tasks_find_many(t, NULL, &l));
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_rename(t, 1, "after", 2, &tok));
    NM_ASSERT_OK(nm_cortex_tasks_delete(t, 1, &tok));
    last_sync(tok);
    cr_assert_str_eq(l.items[0].title.s, "before");
    nm_cortex_task_list_free(&l);
    nm_cortex_task_list_free(&l); /* idempotent */
    nm_cortex_task_list_free(NULL);
}

Test(tasks, unicode_titles_and_bad_text)
{
    create_sync(t, 1, "caf\xc3\xa9 \xf0\x9f\x98\x80", 1);
    cr_assert_str_eq(get(1).title.s, "caf\xc3\xa9 \xf0\x9f\x98\x80");
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.title_contains = "CAF";
    cr_assert_str_eq(ids_of(&f), "1");
    NM_ASSERT_ERR(nm_cortex_tasks_create(t, 2, "\xff", 1, NULL), NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "UTF-8"));
    NM_ASSERT_ERR(nm_cortex_tasks_create(t, 2, NULL, 1, NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_cortex_tasks_rename(t, 2, "\xc0\x80", 1, NULL),
                  NM_EINVAL);
    NM_ASSERT_ERR(nm_cortex_tasks_create(NULL, 2, "x", 1, NULL), NM_EINVAL);
}

Test(tasks, bad_filters)
{
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    nm_cortex_task_list l;
    f.status = 2;
    NM_ASSERT_ERR(nm_cortex_tasks_find_many(t, &f, &l), NM_EINVAL);
    f.status = -1;
    f.order_by = (nm_cortex_order)42;
    NM_ASSERT_ERR(nm_cortex_tasks_find_many(t, &f, &l), NM_EINVAL);
    f.order_by = NM_CORTEX_ORDER_NONE;
    f.id_in_count = 3;
    size_t n;
    NM_ASSERT_ERR(nm_cortex_tasks_count_where(t, &f, &n), NM_EINVAL);
    f.id_in_count = 0;
    f.size = 3;
    bool b;
    NM_ASSERT_ERR(nm_cortex_tasks_exists_where(t, &f, &b), NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "nm_cortex_task_filter_init"));
    NM_ASSERT_ERR(nm_cortex_tasks_find_many(t, NULL, NULL), NM_EINVAL);
}

Test(tasks, unknown_dispatch_is_ignored)
{
    nm_redex_file *f;
    NM_ASSERT_OK(nm_redex_open_file(rx, "cortex/tasks", NULL, &f));
    /* an application dispatch with a valid v2 checksum */
    uint8_t ev[24 + 3] = {0};
    nm_cortex_meta m = {.dispatch = 0x80, .origin_hash = 5};
    memcpy(ev + 24, "abc", 3);
    m.checksum = nm_cortex_checksum(&m, ev + 24, 3);
    nm_cortex_meta_encode(&m, ev);
    uint64_t seq;
    NM_ASSERT_OK(nm_redex_append(f, ev, sizeof(ev), &seq));
    NM_ASSERT_OK(nm_cortex_tasks_wait_for_seq(t, seq, WAIT_MS));
    nm_cortex_status st;
    NM_ASSERT_OK(nm_cortex_tasks_status(t, &st));
    cr_assert(st.running);
    cr_assert_eq(st.fold_errors, 0);
    cr_assert_eq(st.applied_through_seq, seq);
    NM_ASSERT_OK(nm_redex_file_close(f));
}

Test(tasks, handles_of_the_wrong_kind)
{
    nm_cortex_memories *m = open_memories(rx, ORIGIN);
    NM_ASSERT_ERR(
        nm_cortex_tasks_create((nm_cortex_tasks *)m, 1, "x", 1, NULL),
        NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "memories"));
    nm_cortex_memories_free(m);
}
