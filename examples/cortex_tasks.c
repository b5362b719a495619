/*
 * examples/cortex_tasks.c - the seed's "CortEX & NetDb" snippet in C:
 * typed, event-sourced tasks and memories on an in-memory RedEX, with
 * read-your-writes, queries, and snapshot + watch.
 *
 * Build against an installed netmesh:
 *   cc cortex_tasks.c $(pkg-config --cflags --libs netmesh)
 */
#include <netmesh.h>
#include <stdio.h>
#include <stdlib.h>

static int
fail(const char *what, int rc)
{
    fprintf(stderr, "%s: %s (%s)\n", what, nm_strerror(rc), nm_errdetail());
    return 1;
}

int
main(void)
{
    /* NetDb::builder(Redex::new()).origin(0xABCD_EF01)
     *     .with_tasks().with_memories().build() */
    nm_netdb_config cfg;
    nm_netdb_config_init(&cfg);
    cfg.origin_hash = 0xABCDEF01; /* producer identity on every event */
    cfg.with_tasks = true;
    cfg.with_memories = true;
    /* cfg.dir = "/var/lib/net/redex"; cfg.persistent = true; for disk */
    nm_netdb *db;
    int rc = nm_netdb_open(&cfg, &db);
    if (rc) {
        return fail("open", rc);
    }
    nm_cortex_tasks *tasks = nm_netdb_tasks(db);

    /* Ingest through the domain API; no EventMeta plumbing. */
    nm_write_token tok;
    rc = nm_cortex_tasks_create(tasks, 1, "write docs", 0, &tok);
    if (rc) {
        return fail("create", rc);
    }
    /* Read-your-writes: wait for the fold to apply it. */
    rc = nm_cortex_tasks_wait_for_token(tasks, &tok, 5000);
    if (rc) {
        return fail("wait", rc);
    }
    char text[NM_WRITE_TOKEN_STRLEN];
    nm_write_token_format(&tok, text, sizeof(text));
    size_t n;
    nm_cortex_tasks_count(tasks, &n);
    printf("created task 1 (token %s); %zu task(s)\n", text, n);

    /* Snapshot + watch: paint what is there now, then react to changes.
     * The stream drops only leading results equal to the snapshot, so a
     * mutation racing the construction is still delivered. */
    nm_cortex_task_filter pending;
    nm_cortex_task_filter_init(&pending);
    pending.status = NM_TASK_PENDING;
    nm_cortex_task_list snap;
    nm_cortex_watch *deltas;
    rc = nm_cortex_tasks_snapshot_and_watch(tasks, &pending, &snap, &deltas);
    if (rc) {
        return fail("watch", rc);
    }
    printf("initial: %zu pending\n", snap.count);
    nm_cortex_task_list_free(&snap);

    nm_cortex_tasks_create(tasks, 2, "review docs", 10, NULL);
    nm_cortex_tasks_complete(tasks, 1, 20, NULL);
    nm_cortex_task_list batch;
    /* Bursts may collapse: read until the stream is quiet. */
    while (nm_cortex_watch_next_tasks(deltas, &batch, 200) == NM_OK) {
        printf("delta: %zu pending\n", batch.count);
        for (size_t i = 0; i < batch.count; i++) {
            printf("  #%llu %s (%s)\n", (unsigned long long)batch.items[i].id,
                   batch.items[i].title.s,
                   nm_task_status_name(batch.items[i].status));
        }
        nm_cortex_task_list_free(&batch);
    }
    nm_cortex_watch_close(deltas);

    /* Queries: find_many with a filter, an order and a limit. */
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.title_contains = "DOCS"; /* ASCII case-insensitive */
    f.order_by = NM_CORTEX_UPDATED_DESC;
    f.limit = 10;
    nm_cortex_task_list found;
    if (nm_cortex_tasks_find_many(tasks, &f, &found) == NM_OK) {
        printf("tasks about docs, newest first:");
        for (size_t i = 0; i < found.count; i++) {
            printf(" #%llu", (unsigned long long)found.items[i].id);
        }
        printf("\n");
        nm_cortex_task_list_free(&found);
    }

    /* Memories: store with tags, find by tag. */
    nm_cortex_memories *mem = nm_netdb_memories(db);
    const char *tags[] = {"docs", "style"};
    nm_cortex_memories_store(mem, 7, "use short sentences", tags, 2, "notes",
                             30, &tok);
    nm_cortex_memories_wait_for_token(mem, &tok, 5000);
    nm_cortex_memory_filter mf;
    nm_cortex_memory_filter_init(&mf);
    mf.tag = "style";
    nm_cortex_memory_list ml;
    if (nm_cortex_memories_find_many(mem, &mf, &ml) == NM_OK) {
        for (size_t i = 0; i < ml.count; i++) {
            printf("memory #%llu [%s]: %s\n",
                   (unsigned long long)ml.items[i].id, ml.items[i].source.s,
                   ml.items[i].content.s);
        }
        nm_cortex_memory_list_free(&ml);
    }

    /* A snapshot of both models, in upstream's NetDbSnapshot bytes. */
    nm_netdb_snapshot s;
    if (nm_netdb_snapshot_take(db, &s) == NM_OK) {
        uint8_t *bytes;
        size_t len;
        if (nm_netdb_snapshot_encode(&s, &bytes, &len) == NM_OK) {
            printf("snapshot: %zu bytes (tasks through seq %llu)\n", len,
                   (unsigned long long)s.tasks.last_seq);
            free(bytes);
        }
        nm_netdb_snapshot_free(&s);
    }
    nm_netdb_free(db);
    return 0;
}
