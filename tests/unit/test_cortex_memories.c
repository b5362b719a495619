/*
 * tests/unit/test_cortex_memories.c - the memories model: store as an
 * upsert (keeps created_ns and pinned), retag, pin/unpin, delete,
 * unknown ids, every filter (id_in, bounds, content_contains, source,
 * tag, any_tags, all_tags, pinned), orders, limit, the read guard.
 */
#include "cortex_helpers.h"

static nm_redex *rx;
static nm_cortex_memories *m;

static void
setup(void)
{
    rx = mem_redex();
    m = open_memories(rx, ORIGIN);
}

static void
teardown(void)
{
    nm_cortex_memories_free(m);
    nm_redex_close(rx);
}

TestSuite(memories, .init = setup, .fini = teardown);

static const char *
ids_of(const nm_cortex_memory_filter *f)
{
    static char buf[256];
    nm_cortex_memory_list l;
    NM_ASSERT_OK(nm_cortex_memories_find_many(m, f, &l));
    mem_ids(&l, buf, sizeof(buf));
    size_t n;
    bool any;
    NM_ASSERT_OK(nm_cortex_memories_count_where(m, f, &n));
    NM_ASSERT_OK(nm_cortex_memories_exists_where(m, f, &any));
    if (!f || !f->limit) {
        cr_assert_eq(n, l.count);
    }
    cr_assert_eq(any, n > 0);
    nm_cortex_memory_list_free(&l);
    return buf;
}

Test(memories, store_retag_pin_unpin_delete)
{
    const char *tags[] = {"work", "urgent"};
    nm_write_token tok;
    NM_ASSERT_OK(
        nm_cortex_memories_store(m, 1, "first", tags, 2, "chat", 10, &tok));
    msync_tok(m, &tok);
    nm_cortex_memory_list l;
    NM_ASSERT_OK(nm_cortex_memories_find_unique(m, 1, &l));
    cr_assert_eq(l.count, 1);
    nm_cortex_memory *x = &l.items[0];
    cr_assert_str_eq(x->content.s, "first");
    cr_assert_eq(x->ntags, 2);
    cr_assert_str_eq(x->tags[0].s, "work");
    cr_assert_str_eq(x->tags[1].s, "urgent");
    cr_assert_eq(x->tags[1].len, 6);
    cr_assert_str_eq(x->source.s, "chat");
    cr_assert_eq(x->created_ns, 10);
    cr_assert_eq(x->updated_ns, 10);
    cr_assert(!x->pinned);
    nm_cortex_memory_list_free(&l);

    NM_ASSERT_OK(nm_cortex_memories_pin(m, 1, 20, &tok));
    /* store on an existing id: keeps created and pinned */
    NM_ASSERT_OK(
        nm_cortex_memories_store(m, 1, "second", NULL, 0, NULL, 30, &tok));
    msync_tok(m, &tok);
    NM_ASSERT_OK(nm_cortex_memories_find_unique(m, 1, &l));
    x = &l.items[0];
    cr_assert_str_eq(x->content.s, "second");
    cr_assert_eq(x->ntags, 0);
    cr_assert_null(x->tags);
    cr_assert_str_eq(x->source.s, "");
    cr_assert_eq(x->created_ns, 10);
    cr_assert_eq(x->updated_ns, 30);
    cr_assert(x->pinned);
    nm_cortex_memory_list_free(&l);

    const char *nt[] = {"a", "b", "c"};
    NM_ASSERT_OK(nm_cortex_memories_retag(m, 1, nt, 3, 40, &tok));
    NM_ASSERT_OK(nm_cortex_memories_unpin(m, 1, 50, &tok));
    msync_tok(m, &tok);
    NM_ASSERT_OK(nm_cortex_memories_find_unique(m, 1, &l));
    x = &l.items[0];
    cr_assert_eq(x->ntags, 3);
    cr_assert_str_eq(x->tags[2].s, "c");
    cr_assert(!x->pinned);
    cr_assert_eq(x->updated_ns, 50);
    nm_cortex_memory_list_free(&l);

    NM_ASSERT_OK(nm_cortex_memories_delete(m, 1, &tok));
    /* unknown ids: no-ops */
    NM_ASSERT_OK(nm_cortex_memories_retag(m, 2, nt, 1, 1, &tok));
    NM_ASSERT_OK(nm_cortex_memories_pin(m, 2, 1, &tok));
    NM_ASSERT_OK(nm_cortex_memories_unpin(m, 2, 1, &tok));
    NM_ASSERT_OK(nm_cortex_memories_delete(m, 2, &tok));
    msync_tok(m, &tok);
    size_t n;
    NM_ASSERT_OK(nm_cortex_memories_count(m, &n));
    cr_assert_eq(n, 0);
    NM_ASSERT_ERR(nm_cortex_memories_find_unique(m, 1, &l), NM_ENOTFOUND);
}

/* id i: content "Memory <i>" (multiples of 3 "NOTE <i>"), source
 * "a" for odd, "b" for even; tags: "t<i%3>" and, for i <= 4, "low";
 * pinned when i % 4 == 0; created 10i, updated 10i (+5 when pinned). */
static void
fill(void)
{
    nm_write_token tok;
    for (uint64_t i = 1; i <= 8; i++) {
        char content[32], tag[8];
        snprintf(content, sizeof(content), i % 3 ? "Memory %llu" : "NOTE %llu",
                 (unsigned long long)i);
        snprintf(tag, sizeof(tag), "t%llu", (unsigned long long)(i % 3));
        const char *tags[] = {tag, "low"};
        NM_ASSERT_OK(
            nm_cortex_memories_store(m, i, content, tags, i <= 4 ? 2 : 1,
                                     i % 2 ? "a" : "b", 10 * i, &tok));
        if (i % 4 == 0) {
            NM_ASSERT_OK(nm_cortex_memories_pin(m, i, 10 * i + 5, &tok));
        }
    }
    msync_tok(m, &tok);
}

Test(memories, filters)
{
    fill();
    nm_cortex_memory_filter f;
    nm_cortex_memory_filter_init(&f);
    f.order_by = NM_CORTEX_ID_ASC;
    cr_assert_str_eq(ids_of(&f), "1,2,3,4,5,6,7,8");
    f.pinned = 1;
    cr_assert_str_eq(ids_of(&f), "4,8");
    f.pinned = 0;
    cr_assert_str_eq(ids_of(&f), "1,2,3,5,6,7");
    f.pinned = -1;
    f.source = "b";
    cr_assert_str_eq(ids_of(&f), "2,4,6,8");
    f.source = "B"; /* exact */
    cr_assert_str_eq(ids_of(&f), "");
    f.source = NULL;
    f.tag = "low";
    cr_assert_str_eq(ids_of(&f), "1,2,3,4");
    f.tag = "t0";
    cr_assert_str_eq(ids_of(&f), "3,6");
    f.tag = NULL;
    const char *any[] = {"t0", "t2"};
    f.any_tags = any;
    f.any_tags_count = 2;
    cr_assert_str_eq(ids_of(&f), "2,3,5,6,8");
    f.any_tags_count = 0; /* an empty OR matches nothing */
    cr_assert_str_eq(ids_of(&f), "");
    f.any_tags = NULL;
    const char *all[] = {"t1", "low"};
    f.all_tags = all;
    f.all_tags_count = 2;
    cr_assert_str_eq(ids_of(&f), "1,4");
    f.all_tags_count = 0; /* an empty AND matches all */
    cr_assert_str_eq(ids_of(&f), "1,2,3,4,5,6,7,8");
    f.all_tags = NULL;
    f.content_contains = "note";
    cr_assert_str_eq(ids_of(&f), "3,6");
    f.content_contains = NULL;
    uint64_t in[] = {8, 1, 1, 42};
    f.id_in = in;
    f.id_in_count = 4;
    cr_assert_str_eq(ids_of(&f), "1,8");
    f.id_in = NULL;
    f.id_in_count = 0;
    f.created_after = 20;
    f.created_before = 40;
    cr_assert_str_eq(ids_of(&f), "2,3,4");
    f.created_after = 0;
    f.created_before = UINT64_MAX;
    f.updated_after = 45; /* 4 was updated at 45 */
    f.updated_before = 50;
    cr_assert_str_eq(ids_of(&f), "4,5");
}

Test(memories, orders_and_limit)
{
    fill();
    nm_cortex_memory_filter f;
    nm_cortex_memory_filter_init(&f);
    f.order_by = NM_CORTEX_ID_DESC;
    cr_assert_str_eq(ids_of(&f), "8,7,6,5,4,3,2,1");
    f.order_by = NM_CORTEX_CREATED_DESC;
    cr_assert_str_eq(ids_of(&f), "8,7,6,5,4,3,2,1");
    f.order_by = NM_CORTEX_UPDATED_ASC;
    cr_assert_str_eq(ids_of(&f), "1,2,3,4,5,6,7,8");
    f.order_by = NM_CORTEX_UPDATED_DESC;
    f.limit = 2;
    cr_assert_str_eq(ids_of(&f), "8,7");
    f.order_by = NM_CORTEX_CREATED_ASC;
    cr_assert_str_eq(ids_of(&f), "1,2");
}

Test(memories, read_guard_and_bad_input)
{
    fill();
    const nm_cortex_memories_view *v = nm_cortex_memories_read_begin(m);
    cr_assert_not_null(v);
    cr_assert_eq(nm_cortex_memories_view_count(v), 8);
    const nm_cortex_memory *x = nm_cortex_memories_view_get(v, 4);
    cr_assert_not_null(x);
    cr_assert(x->pinned);
    cr_assert_null(nm_cortex_memories_view_get(v, 99));
    cr_assert_not_null(nm_cortex_memories_view_at(v, 7));
    nm_cortex_memories_read_end(v);

    const char *bad[] = {"ok", "\xff"};
    NM_ASSERT_ERR(nm_cortex_memories_store(m, 1, "x", bad, 2, NULL, 1, NULL),
                  NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "tag 1"));
    const char *nul[] = {NULL};
    NM_ASSERT_ERR(nm_cortex_memories_retag(m, 1, nul, 1, 1, NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_cortex_memories_retag(m, 1, NULL, 1, 1, NULL), NM_EINVAL);
    NM_ASSERT_ERR(nm_cortex_memories_store(m, 1, NULL, NULL, 0, NULL, 1, NULL),
                  NM_EINVAL);
    NM_ASSERT_ERR(
        nm_cortex_memories_store(m, 1, "x", NULL, 0, "\xc3", 1, NULL),
        NM_EINVAL);
    nm_cortex_memory_filter f;
    nm_cortex_memory_filter_init(&f);
    f.pinned = 3;
    size_t n;
    NM_ASSERT_ERR(nm_cortex_memories_count_where(m, &f, &n), NM_EINVAL);
    f.pinned = -1;
    f.any_tags = bad;
    f.any_tags_count = 1;
    NM_ASSERT_OK(nm_cortex_memories_count_where(m, &f, &n));
    f.any_tags = nul;
    NM_ASSERT_ERR(nm_cortex_memories_count_where(m, &f, &n), NM_EINVAL);
}

Test(memories, large_contents_and_many_tags)
{
    size_t big = 100000;
    char *content = malloc(big + 1);
    memset(content, 'z', big);
    content[big] = '\0';
    const char *tags[300];
    char tagbuf[300][8];
    for (int i = 0; i < 300; i++) {
        snprintf(tagbuf[i], sizeof(tagbuf[i]), "g%d", i);
        tags[i] = tagbuf[i];
    }
    nm_write_token tok;
    NM_ASSERT_OK(
        nm_cortex_memories_store(m, 5, content, tags, 300, "src", 1, &tok));
    msync_tok(m, &tok);
    nm_cortex_memory_list l;
    NM_ASSERT_OK(nm_cortex_memories_find_unique(m, 5, &l));
    cr_assert_eq(l.items[0].content.len, big);
    cr_assert_eq(l.items[0].ntags, 300);
    cr_assert_str_eq(l.items[0].tags[299].s, "g299");
    nm_cortex_memory_list_free(&l);
    free(content);
}
