/* tests/cortex_helpers.h - shared helpers of the CortEX / NetDb tests. */
#ifndef NM_TEST_CORTEX_HELPERS_H
#define NM_TEST_CORTEX_HELPERS_H

#include <stdlib.h>
#include <string.h>

#include <netmesh/cortex.h>

#include "bus_helpers.h"

#define ORIGIN 0xABCDEF01ull
/* A bounded wait: long enough for a loaded machine, never hit by a
 * passing test. */
#define WAIT_MS 20000

static inline nm_redex *
mem_redex(void)
{
    nm_redex *rx;
    NM_ASSERT_OK(nm_redex_open(NULL, &rx));
    return rx;
}

static inline nm_cortex_tasks *
open_tasks(nm_redex *rx, uint64_t origin)
{
    nm_cortex_config c;
    nm_cortex_config_init(&c);
    c.origin_hash = origin;
    nm_cortex_tasks *t;
    NM_ASSERT_OK(nm_cortex_tasks_open(rx, &c, &t));
    return t;
}

static inline nm_cortex_memories *
open_memories(nm_redex *rx, uint64_t origin)
{
    nm_cortex_config c;
    nm_cortex_config_init(&c);
    c.origin_hash = origin;
    nm_cortex_memories *m;
    NM_ASSERT_OK(nm_cortex_memories_open(rx, &c, &m));
    return m;
}

/* Create a task and wait until it is visible. */
static inline nm_write_token
create_sync(nm_cortex_tasks *t, uint64_t id, const char *title, uint64_t now)
{
    nm_write_token tok;
    NM_ASSERT_OK(nm_cortex_tasks_create(t, id, title, now, &tok));
    NM_ASSERT_OK(nm_cortex_tasks_wait_for_token(t, &tok, WAIT_MS));
    return tok;
}

static inline void
sync_tok(nm_cortex_tasks *t, const nm_write_token *tok)
{
    NM_ASSERT_OK(nm_cortex_tasks_wait_for_token(t, tok, WAIT_MS));
}

static inline void
msync_tok(nm_cortex_memories *m, const nm_write_token *tok)
{
    NM_ASSERT_OK(nm_cortex_memories_wait_for_token(m, tok, WAIT_MS));
}

/* The ids of a task list, in order, as "1,2,3". */
static inline const char *
task_ids(const nm_cortex_task_list *l, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->count && o < cap; i++) {
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", i ? "," : "",
                              (unsigned long long)l->items[i].id);
    }
    return buf;
}

static inline const char *
mem_ids(const nm_cortex_memory_list *l, char *buf, size_t cap)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < l->count && o < cap; i++) {
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", i ? "," : "",
                              (unsigned long long)l->items[i].id);
    }
    return buf;
}

static inline void
rm_rf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

#endif
