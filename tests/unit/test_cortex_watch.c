/*
 * tests/unit/test_cortex_watch.c - watches: the first result, a new
 * result on each change that alters it (and none when it does not),
 * snapshot_and_watch skipping only leading results equal to the
 * snapshot, the readiness fd, cancel, the end of the stream on close
 * and on a stopped fold, watches outliving their model, memories
 * watches, and races: watchers created and consumed on other threads
 * while a writer mutates must always reach the final state.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

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

TestSuite(watch, .init = setup, .fini = teardown);

static const char *
next_ids(nm_cortex_watch *w)
{
    static char buf[512];
    nm_cortex_task_list l;
    NM_ASSERT_OK(nm_cortex_watch_next_tasks(w, &l, WAIT_MS));
    task_ids(&l, buf, sizeof(buf));
    nm_cortex_task_list_free(&l);
    return buf;
}

static bool
readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

Test(watch, emits_current_then_changes)
{
    create_sync(t, 1, "one", 1);
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.status = NM_TASK_PENDING;
    nm_cortex_watch *w;
    NM_ASSERT_OK(nm_cortex_tasks_watch(t, &f, &w));
    cr_assert(readable(nm_cortex_watch_fd(w), 0), "first result is ready");
    cr_assert_str_eq(next_ids(w), "1");
    nm_cortex_task_list l;
    NM_ASSERT_ERR(nm_cortex_watch_next_tasks(w, &l, 0), NM_ETIMEDOUT);

    create_sync(t, 3, "three", 3);
    cr_assert_str_eq(next_ids(w), "1,3", "ordered by id");
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_complete(t, 1, 4, &tok));
    sync_tok(t, &tok);
    cr_assert_str_eq(next_ids(w), "3");
    /* a change outside the result: no emission */
    NM_ASSERT_OK(nm_cortex_tasks_rename(t, 1, "still done", 5, &tok));
    sync_tok(t, &tok);
    NM_ASSERT_ERR(nm_cortex_watch_next_tasks(w, &l, 0), NM_ETIMEDOUT);
    /* a change of a field inside the result: an emission */
    NM_ASSERT_OK(nm_cortex_tasks_rename(t, 3, "renamed", 6, &tok));
    sync_tok(t, &tok);
    NM_ASSERT_OK(nm_cortex_watch_next_tasks(w, &l, WAIT_MS));
    cr_assert_str_eq(l.items[0].title.s, "renamed");
    nm_cortex_task_list_free(&l);
    /* a burst collapses into at most one result per evaluation */
    for (uint64_t i = 10; i < 20; i++) {
        NM_ASSERT_OK(nm_cortex_tasks_create(t, i, "b", i, &tok));
    }
    sync_tok(t, &tok);
    cr_assert_str_eq(next_ids(w), "3,10,11,12,13,14,15,16,17,18,19");
    NM_ASSERT_ERR(nm_cortex_watch_next_tasks(w, &l, 0), NM_ETIMEDOUT);
    nm_cortex_watch_close(w);
}

Test(watch, snapshot_and_watch_skips_only_the_equal_lead)
{
    create_sync(t, 1, "one", 1);
    nm_cortex_task_list snap;
    nm_cortex_watch *w;
    NM_ASSERT_OK(nm_cortex_tasks_snapshot_and_watch(t, NULL, &snap, &w));
    cr_assert_eq(snap.count, 1);
    cr_assert_eq(snap.items[0].id, 1);
    nm_cortex_task_list_free(&snap);
    cr_assert(!readable(nm_cortex_watch_fd(w), 0));
    nm_cortex_task_list l;
    /* the snapshot is not delivered twice */
    NM_ASSERT_ERR(nm_cortex_watch_next_tasks(w, &l, 0), NM_ETIMEDOUT);
    create_sync(t, 2, "two", 2);
    cr_assert(readable(nm_cortex_watch_fd(w), WAIT_MS));
    cr_assert_str_eq(next_ids(w), "1,2");
    /* back to a state equal to the snapshot: delivered (it differs from
     * the previous result) */
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_delete(t, 2, &tok));
    sync_tok(t, &tok);
    cr_assert_str_eq(next_ids(w), "1");
    nm_cortex_watch_close(w);
}

Test(watch, a_change_racing_the_construction_is_delivered)
{
    /* Simulate the race deterministically: a change lands after the
     * snapshot was taken (here: right after the call returns, before the
     * first next). The first next must deliver it. */
    nm_cortex_task_list snap;
    nm_cortex_watch *w;
    NM_ASSERT_OK(nm_cortex_tasks_snapshot_and_watch(t, NULL, &snap, &w));
    cr_assert_eq(snap.count, 0);
    create_sync(t, 5, "raced", 1);
    cr_assert_str_eq(next_ids(w), "5");
    nm_cortex_watch_close(w);
}

static void *
cancel_later(void *arg)
{
    nm_cortex_watch_cancel(arg);
    return NULL;
}

Test(watch, cancel_wakes_a_blocked_next)
{
    nm_cortex_watch *w;
    NM_ASSERT_OK(nm_cortex_tasks_watch(t, NULL, &w));
    cr_assert_str_eq(next_ids(w), "");
    pthread_t th;
    pthread_create(&th, NULL, cancel_later, w);
    nm_cortex_task_list l;
    NM_ASSERT_ERR(nm_cortex_watch_next_tasks(w, &l, -1), NM_ECLOSED);
    pthread_join(th, NULL);
    nm_cortex_watch_close(w);
}

Test(watch, close_ends_the_stream_and_watches_outlive_the_model)
{
    nm_redex *rx2 = mem_redex();
    nm_cortex_tasks *t2 = open_tasks(rx2, ORIGIN);
    nm_cortex_watch *w;
    NM_ASSERT_OK(nm_cortex_tasks_watch(t2, NULL, &w));
    nm_cortex_task_list l;
    NM_ASSERT_OK(nm_cortex_watch_next_tasks(w, &l, WAIT_MS));
    nm_cortex_tasks_free(t2);
    NM_ASSERT_ERR(nm_cortex_watch_next_tasks(w, &l, WAIT_MS), NM_ECLOSED);
    cr_assert(readable(nm_cortex_watch_fd(w), 0));
    nm_cortex_watch_close(w); /* releases the model */
    nm_cortex_watch_close(NULL);
    nm_redex_close(rx2);
}

Test(watch, stopped_fold_ends_the_stream)
{
    nm_cortex_watch *w;
    NM_ASSERT_OK(nm_cortex_tasks_watch(t, NULL, &w));
    cr_assert_str_eq(next_ids(w), "");
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_create(t, 1, "x", 1, &tok));
    nm_redex_file *f;
    NM_ASSERT_OK(nm_redex_open_file(rx, "cortex/tasks", NULL, &f));
    NM_ASSERT_OK(nm_redex_append(f, "bad", 3, NULL));
    NM_ASSERT_OK(nm_redex_file_close(f));
    NM_ASSERT_OK(nm_cortex_tasks_create(t, 2, "y", 1, &tok));
    NM_ASSERT_ERR(nm_cortex_tasks_wait_for_token(t, &tok, WAIT_MS),
                  NM_ESHUTDOWN);
    cr_assert_str_eq(next_ids(w), "1", "the last state is delivered");
    nm_cortex_task_list l;
    NM_ASSERT_ERR(nm_cortex_watch_next_tasks(w, &l, WAIT_MS), NM_ESHUTDOWN);
    nm_cortex_watch_close(w);
}

Test(watch, wrong_kind_and_bad_args)
{
    nm_cortex_watch *w;
    NM_ASSERT_OK(nm_cortex_tasks_watch(t, NULL, &w));
    nm_cortex_memory_list ml;
    NM_ASSERT_ERR(nm_cortex_watch_next_memories(w, &ml, 0), NM_EINVAL);
    NM_ASSERT_ERR(nm_cortex_watch_next_tasks(w, NULL, 0), NM_EINVAL);
    NM_ASSERT_ERR(nm_cortex_watch_next_tasks(NULL, NULL, 0), NM_EINVAL);
    cr_assert_eq(nm_cortex_watch_fd(NULL), -1);
    nm_cortex_watch_close(w);
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.status = 7;
    NM_ASSERT_ERR(nm_cortex_tasks_watch(t, &f, &w), NM_EINVAL);
    NM_ASSERT_ERR(nm_cortex_tasks_snapshot_and_watch(t, NULL, NULL, &w),
                  NM_EINVAL);
}

Test(watch, memories_watch)
{
    nm_cortex_memories *m = open_memories(rx, ORIGIN);
    nm_cortex_memory_filter f;
    nm_cortex_memory_filter_init(&f);
    f.tag = "x";
    nm_cortex_memory_list snap;
    nm_cortex_watch *w;
    NM_ASSERT_OK(nm_cortex_memories_snapshot_and_watch(m, &f, &snap, &w));
    cr_assert_eq(snap.count, 0);
    const char *tags[] = {"x"};
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_memories_store(m, 4, "c", tags, 1, "s", 1, &tok));
    NM_ASSERT_OK(nm_cortex_memories_store(m, 2, "c", NULL, 0, "s", 1, &tok));
    msync_tok(m, &tok);
    nm_cortex_memory_list l;
    NM_ASSERT_OK(nm_cortex_watch_next_memories(w, &l, WAIT_MS));
    cr_assert_eq(l.count, 1);
    cr_assert_eq(l.items[0].id, 4);
    cr_assert_str_eq(l.items[0].tags[0].s, "x");
    nm_cortex_memory_list_free(&l);
    NM_ASSERT_OK(nm_cortex_memories_pin(m, 4, 2, &tok));
    msync_tok(m, &tok);
    NM_ASSERT_OK(nm_cortex_watch_next_memories(w, &l, WAIT_MS));
    cr_assert(l.items[0].pinned);
    nm_cortex_memory_list_free(&l);
    nm_cortex_task_list tl;
    NM_ASSERT_ERR(nm_cortex_watch_next_tasks(w, &tl, 0), NM_EINVAL);
    nm_cortex_watch_close(w);
    nm_cortex_memories_free(m);
}

/* ------------------------------------------------------------- races */

#define MARKER 999999
#define NCONS 8

typedef struct race {
    nm_cortex_tasks *t;
    _Atomic int progress; /* writer ops done */
    nm_write_token last;
} race;

static void *
race_writer(void *arg)
{
    race *r = arg;
    nm_write_token tok;
    for (uint64_t i = 0; i < 3000; i++) {
        uint64_t id = i % 500;
        int rc;
        switch (i % 4) {
        case 0:
        case 1:
            rc = nm_cortex_tasks_create(r->t, id, "t", i, &tok);
            break;
        case 2:
            rc = nm_cortex_tasks_complete(r->t, (id * 7) % 500, i, &tok);
            break;
        default:
            rc = nm_cortex_tasks_delete(r->t, (id * 13) % 500, &tok);
            break;
        }
        cr_assert_eq(rc, NM_OK);
        atomic_store(&r->progress, (int)i);
    }
    NM_ASSERT_OK(nm_cortex_tasks_create(r->t, MARKER, "the end", 1, &tok));
    r->last = tok;
    return NULL;
}

typedef struct cons {
    race *r;
    int start_at; /* writer progress to wait for before watching */
    bool snapshot;
    nm_cortex_task_list have; /* the last result seen */
    int rc;
} cons;

static bool
has_marker(const nm_cortex_task_list *l)
{
    return l->count && l->items[l->count - 1].id == MARKER;
}

static void *
consumer(void *arg)
{
    cons *c = arg;
    while (atomic_load(&c->r->progress) < c->start_at) {
        sched_yield();
    }
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.status = NM_TASK_PENDING;
    f.order_by = NM_CORTEX_ID_ASC;
    nm_cortex_watch *w;
    c->rc = c->snapshot
                ? nm_cortex_tasks_snapshot_and_watch(c->r->t, &f, &c->have, &w)
                : nm_cortex_tasks_watch(c->r->t, &f, &w);
    if (c->rc) {
        return NULL;
    }
    while (!has_marker(&c->have)) {
        nm_cortex_task_list l;
        c->rc = nm_cortex_watch_next_tasks(w, &l, WAIT_MS);
        if (c->rc) {
            break; /* a missed final state times out here */
        }
        nm_cortex_task_list_free(&c->have);
        c->have = l;
    }
    if (!c->rc) {
        /* nothing after the final state */
        nm_cortex_task_list l;
        int rc = nm_cortex_watch_next_tasks(w, &l, 0);
        if (rc != NM_ETIMEDOUT) {
            c->rc = rc ? rc : NM_EINTERNAL;
            nm_cortex_task_list_free(&l);
        }
    }
    nm_cortex_watch_close(w);
    return NULL;
}

static bool
same(const nm_cortex_task_list *a, const nm_cortex_task_list *b)
{
    if (a->count != b->count) {
        return false;
    }
    for (size_t i = 0; i < a->count; i++) {
        if (a->items[i].id != b->items[i].id ||
            a->items[i].status != b->items[i].status ||
            a->items[i].updated_ns != b->items[i].updated_ns) {
            return false;
        }
    }
    return true;
}

Test(watch, watchers_racing_a_writer_reach_the_final_state, .timeout = 120)
{
    for (int round = 0; round < 3; round++) {
        nm_redex *rx2 = mem_redex();
        race r = {.t = open_tasks(rx2, ORIGIN)};
        atomic_init(&r.progress, -1);
        cons c[NCONS];
        pthread_t cth[NCONS], wth;
        for (int i = 0; i < NCONS; i++) {
            c[i] = (cons){
                .r = &r, .start_at = i * 400 - 1, .snapshot = i % 2 == 1};
            pthread_create(&cth[i], NULL, consumer, &c[i]);
        }
        pthread_create(&wth, NULL, race_writer, &r);
        pthread_join(wth, NULL);
        NM_ASSERT_OK(nm_cortex_tasks_wait_for_token(r.t, &r.last, WAIT_MS));
        nm_cortex_task_filter f;
        nm_cortex_task_filter_init(&f);
        f.status = NM_TASK_PENDING;
        f.order_by = NM_CORTEX_ID_ASC;
        nm_cortex_task_list want;
        NM_ASSERT_OK(nm_cortex_tasks_find_many(r.t, &f, &want));
        cr_assert(has_marker(&want));
        for (int i = 0; i < NCONS; i++) {
            pthread_join(cth[i], NULL);
            cr_assert_eq(c[i].rc, NM_OK, "round %d consumer %d: %s", round, i,
                         nm_err_name(c[i].rc));
            cr_assert(same(&c[i].have, &want),
                      "round %d consumer %d saw %zu tasks, want %zu", round, i,
                      c[i].have.count, want.count);
            nm_cortex_task_list_free(&c[i].have);
        }
        nm_cortex_task_list_free(&want);
        nm_cortex_tasks_free(r.t);
        nm_redex_close(rx2);
    }
}

Test(watch, watchers_created_while_writing_then_consumed)
{
    /* Watchers created on this thread between writes (no consumer yet),
     * consumed only after the writer is done: each reaches the final
     * state. */
    nm_cortex_watch *w[20];
    nm_cortex_task_list snap[20];
    nm_write_token tok;
    for (int i = 0; i < 20; i++) {
        for (uint64_t k = 0; k < 25; k++) {
            NM_ASSERT_OK(
                nm_cortex_tasks_create(t, (uint64_t)i * 25 + k, "x", k, &tok));
        }
        if (i % 2) {
            NM_ASSERT_OK(
                nm_cortex_tasks_snapshot_and_watch(t, NULL, &snap[i], &w[i]));
        } else {
            NM_ASSERT_OK(nm_cortex_tasks_watch(t, NULL, &w[i]));
            snap[i] = (nm_cortex_task_list){0};
        }
    }
    sync_tok(t, &tok);
    for (int i = 0; i < 20; i++) {
        nm_cortex_task_list have = snap[i];
        while (have.count != 500) {
            nm_cortex_task_list l;
            NM_ASSERT_OK(nm_cortex_watch_next_tasks(w[i], &l, WAIT_MS));
            nm_cortex_task_list_free(&have);
            have = l;
        }
        nm_cortex_task_list l;
        NM_ASSERT_ERR(nm_cortex_watch_next_tasks(w[i], &l, 0), NM_ETIMEDOUT);
        nm_cortex_task_list_free(&have);
        nm_cortex_watch_close(w[i]);
    }
}
