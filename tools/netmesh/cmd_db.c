/*
 * tools/netmesh/cmd_db.c - `netmesh db`: NetDb (CortEX tasks and
 * memories) on a persistent directory.
 *
 *   db tasks create --dir D ID TITLE          append a TaskCreated event
 *   db tasks list --dir D [--status S] [--contains TEXT] [--order O]
 *                 [--limit N]
 *   db tasks complete --dir D ID              (fails if ID is unknown)
 *   db memories store --dir D ID CONTENT [--tag T]... [--source S]
 *   db memories find --dir D [--tag T] [--any-tag T]... [--contains TEXT]
 *                    [--source S] [--pinned|--unpinned] [--order O]
 *                    [--limit N]
 *
 * Every subcommand takes --origin HEX (the producer identity, default 0)
 * and --json (one JSON document on stdout). A write waits until the fold
 * applied it (read-your-writes) and prints its WriteToken. The logs live
 * under D/cortex/tasks and D/cortex/memories (docs/cortex.md). Exit
 * codes: 0 ok, 1 failure, 2 usage.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netmesh.h>
#include <netmesh/cortex.h>

#define MAXTAGS 64
#define RYW_TIMEOUT_MS 30000

typedef struct dbopts {
    const char *dir;
    uint64_t origin;
    bool json;
    const char *pos[3];
    size_t npos;
    /* queries */
    const char *status;
    const char *contains;
    const char *order;
    const char *source;
    const char *tag;
    size_t limit;
    int pinned; /* -1 any */
    const char *tags[MAXTAGS];
    size_t ntags;
    const char *any[MAXTAGS];
    size_t nany;
} dbopts;

static int
usage(void)
{
    return nm_cli_usage_error(
        "usage: netmesh db tasks create --dir D ID TITLE\n"
        "       netmesh db tasks list --dir D [--status pending|completed] "
        "[--contains TEXT] [--order ORDER] [--limit N]\n"
        "       netmesh db tasks complete --dir D ID\n"
        "       netmesh db memories store --dir D ID CONTENT [--tag T]... "
        "[--source S]\n"
        "       netmesh db memories find --dir D [--tag T] [--any-tag T]... "
        "[--contains TEXT] [--source S] [--pinned|--unpinned] "
        "[--order ORDER] [--limit N]\n"
        "  every subcommand: [--origin HEX] [--json]; ORDER: id_asc, "
        "id_desc, created_asc, created_desc, updated_asc, updated_desc");
}

static int
parse_u64(const char *s, uint64_t *out, int base)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') {
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || *end) {
        return -1;
    }
    *out = v;
    return 0;
}

static int
origin_arg(void *origin, const char *name, const char *value)
{
    if (parse_u64(value, origin, 16)) {
        return nm_cli_usage_error("db: --origin takes hex, got '%s'", value);
    }
    return 0;
}

static int
limit_arg(void *limit, const char *name, const char *value)
{
    uint64_t n;
    if (parse_u64(value, &n, 10) || n == 0) {
        return nm_cli_usage_error("db: --limit takes N >= 1");
    }
    *(size_t *)limit = (size_t)n;
    return 0;
}

static int
pinned_arg(void *pinned, const char *name, const char *value)
{
    *(int *)pinned = !strcmp(name, "--pinned");
    return 0;
}

static int
not_here(void *unused, const char *name, const char *value)
{
    return nm_cli_usage_error("db: %s does not apply here", name);
}

/* The options every subcommand takes (pin: pinned_arg where --pinned and
 * --unpinned apply, else not_here); DB_NCOMMON of them. */
#define DB_COMMON(o, pin)                                                     \
    NM_CLI_STR("--dir", &(o)->dir),                                           \
        NM_CLI_CALL("--origin", &(o)->origin, origin_arg),                    \
        NM_CLI_FLAG("--json", &(o)->json),                                    \
        NM_CLI_CALL_FLAG("--pinned", &(o)->pinned, pin),                      \
        NM_CLI_CALL_FLAG("--unpinned", &(o)->pinned, pin)
#define DB_NCOMMON 5

/* Parse argv[1..] (argv[0]: the subcommand) with opts[0..n); options may
 * come anywhere. 0, or the exit code of a usage error. */
static int
parse(int argc, char **argv, const nm_cli_opt *opts, size_t n, dbopts *o)
{
    memset(o, 0, sizeof(*o));
    o->pinned = -1;
    nm_cli_parser p = {
        .opts = opts,
        .nopts = n,
        .flags = NM_CLI_LONG_ONLY,
        .args = o->pos,
        .max_args = NM_CLI_LEN(o->pos),
        .unknown = "db: unknown option '%s'",
        .missing = "db: %s needs a value",
        .extra = "db: unexpected argument '%s'",
    };
    int rc = nm_cli_parse(&p, argc, argv);
    if (rc != 0) {
        return rc;
    }
    o->npos = p.nargs;
    if (!o->dir) {
        return nm_cli_usage_error("db: --dir D is required");
    }
    return 0;
}

static int
open_db(const dbopts *o, bool tasks, nm_netdb **db)
{
    nm_netdb_config c;
    nm_netdb_config_init(&c);
    c.origin_hash = o->origin;
    c.with_tasks = tasks;
    c.with_memories = !tasks;
    c.dir = o->dir;
    c.persistent = true;
    int rc = nm_netdb_open(&c, db);
    if (rc) {
        return nm_cli_fail(rc, "db: opening %s", o->dir);
    }
    return 0;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void
print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s) {
        puts(s);
        free(s);
    }
    json_decref(j);
}

/* Print the outcome of a write. */
static void
print_written(const dbopts *o, const char *what, const char *noun, uint64_t id,
              const nm_write_token *tok)
{
    char ts[NM_WRITE_TOKEN_STRLEN];
    (void)nm_write_token_format(tok, ts, sizeof(ts));
    if (o->json) {
        print_json(json_pack("{s:s, s:I, s:s, s:I}", "op", what, "id",
                             (json_int_t)id, "token", ts, "seq",
                             (json_int_t)tok->seq));
    } else {
        printf("%s %s %llu (token %s)\n", what, noun, (unsigned long long)id,
               ts);
    }
}

static json_t *
jstr(const nm_cortex_str *s)
{
    return json_stringn(s->s, s->len);
}

/* ------------------------------------------------------------- tasks */

static int
tasks_create(const dbopts *o, nm_cortex_tasks *t)
{
    uint64_t id;
    if (o->npos != 2 || parse_u64(o->pos[0], &id, 10)) {
        return nm_cli_usage_error("db tasks create: ID TITLE");
    }
    nm_write_token tok;
    int rc = nm_cortex_tasks_create(t, id, o->pos[1], now_ns(), &tok);
    if (!rc) {
        rc = nm_cortex_tasks_wait_for_token(t, &tok, RYW_TIMEOUT_MS);
    }
    if (rc) {
        return nm_cli_fail(rc, "db tasks create %llu", (unsigned long long)id);
    }
    print_written(o, "created", "task", id, &tok);
    return 0;
}

static int
tasks_complete(const dbopts *o, nm_cortex_tasks *t)
{
    uint64_t id;
    if (o->npos != 1 || parse_u64(o->pos[0], &id, 10)) {
        return nm_cli_usage_error("db tasks complete: ID");
    }
    nm_cortex_task_list l;
    int rc = nm_cortex_tasks_find_unique(t, id, &l);
    nm_cortex_task_list_free(&l);
    if (rc) {
        return nm_cli_fail(rc, "db tasks complete %llu",
                           (unsigned long long)id);
    }
    nm_write_token tok;
    rc = nm_cortex_tasks_complete(t, id, now_ns(), &tok);
    if (!rc) {
        rc = nm_cortex_tasks_wait_for_token(t, &tok, RYW_TIMEOUT_MS);
    }
    if (rc) {
        return nm_cli_fail(rc, "db tasks complete %llu",
                           (unsigned long long)id);
    }
    print_written(o, "completed", "task", id, &tok);
    return 0;
}

static int
tasks_list(const dbopts *o, nm_cortex_tasks *t)
{
    if (o->npos) {
        return nm_cli_usage_error("db tasks list: no arguments");
    }
    nm_cortex_task_filter f;
    nm_cortex_task_filter_init(&f);
    f.order_by = NM_CORTEX_ID_ASC;
    if (o->status) {
        nm_task_status s;
        if (nm_task_status_parse(o->status, &s)) {
            return nm_cli_usage_error("db: --status pending|completed");
        }
        f.status = (int)s;
    }
    if (o->order && nm_cortex_order_parse(o->order, &f.order_by)) {
        return nm_cli_usage_error("db: %s", nm_errdetail());
    }
    f.title_contains = o->contains;
    f.limit = o->limit;
    nm_cortex_task_list l;
    int rc = nm_cortex_tasks_find_many(t, &f, &l);
    if (rc) {
        return nm_cli_fail(rc, "db tasks list");
    }
    if (o->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < l.count; i++) {
            const nm_cortex_task *x = &l.items[i];
            json_array_append_new(
                a, json_pack("{s:I, s:o, s:s, s:I, s:I}", "id",
                             (json_int_t)x->id, "title", jstr(&x->title),
                             "status", nm_task_status_name(x->status),
                             "created_ns", (json_int_t)x->created_ns,
                             "updated_ns", (json_int_t)x->updated_ns));
        }
        print_json(a);
    } else {
        for (size_t i = 0; i < l.count; i++) {
            const nm_cortex_task *x = &l.items[i];
            printf("%llu\t%s\t%s\n", (unsigned long long)x->id,
                   nm_task_status_name(x->status), x->title.s);
        }
    }
    nm_cortex_task_list_free(&l);
    return 0;
}

static int
cmd_tasks(int argc, char **argv)
{
    if (argc < 2) {
        return usage();
    }
    const char *sub = argv[1];
    bool list = !strcmp(sub, "list");
    if (!list && strcmp(sub, "create") && strcmp(sub, "complete")) {
        return nm_cli_usage_error("db tasks: unknown subcommand '%s'", sub);
    }
    dbopts o;
    const nm_cli_opt opts[] = {
        DB_COMMON(&o, not_here), /* create, complete: these only */
        NM_CLI_STR("--status", &o.status),
        NM_CLI_STR("--contains", &o.contains),
        NM_CLI_STR("--order", &o.order),
        NM_CLI_CALL("--limit", &o.limit, limit_arg),
    };
    int rc = parse(argc - 1, argv + 1, opts,
                   list ? NM_CLI_LEN(opts) : DB_NCOMMON, &o);
    if (rc) {
        return rc;
    }
    nm_netdb *db;
    if ((rc = open_db(&o, true, &db)) != 0) {
        return rc;
    }
    nm_cortex_tasks *t = nm_netdb_tasks(db);
    if (!strcmp(sub, "create")) {
        rc = tasks_create(&o, t);
    } else if (!strcmp(sub, "complete")) {
        rc = tasks_complete(&o, t);
    } else {
        rc = tasks_list(&o, t);
    }
    nm_netdb_free(db);
    return rc;
}

/* ---------------------------------------------------------- memories */

static int
memories_store(const dbopts *o, nm_cortex_memories *m)
{
    uint64_t id;
    if (o->npos != 2 || parse_u64(o->pos[0], &id, 10)) {
        return nm_cli_usage_error("db memories store: ID CONTENT");
    }
    nm_write_token tok;
    int rc = nm_cortex_memories_store(m, id, o->pos[1], o->tags, o->ntags,
                                      o->source, now_ns(), &tok);
    if (!rc) {
        rc = nm_cortex_memories_wait_for_token(m, &tok, RYW_TIMEOUT_MS);
    }
    if (rc) {
        return nm_cli_fail(rc, "db memories store %llu",
                           (unsigned long long)id);
    }
    print_written(o, "stored", "memory", id, &tok);
    return 0;
}

static int
memories_find(const dbopts *o, nm_cortex_memories *m)
{
    if (o->npos) {
        return nm_cli_usage_error("db memories find: no arguments");
    }
    nm_cortex_memory_filter f;
    nm_cortex_memory_filter_init(&f);
    f.order_by = NM_CORTEX_ID_ASC;
    if (o->order && nm_cortex_order_parse(o->order, &f.order_by)) {
        return nm_cli_usage_error("db: %s", nm_errdetail());
    }
    f.content_contains = o->contains;
    f.source = o->source;
    f.tag = o->tag;
    if (o->nany) {
        f.any_tags = o->any;
        f.any_tags_count = o->nany;
    }
    f.pinned = o->pinned;
    f.limit = o->limit;
    nm_cortex_memory_list l;
    int rc = nm_cortex_memories_find_many(m, &f, &l);
    if (rc) {
        return nm_cli_fail(rc, "db memories find");
    }
    if (o->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < l.count; i++) {
            const nm_cortex_memory *x = &l.items[i];
            json_t *tags = json_array();
            for (size_t k = 0; k < x->ntags; k++) {
                json_array_append_new(tags, jstr(&x->tags[k]));
            }
            json_array_append_new(
                a, json_pack("{s:I, s:o, s:o, s:o, s:I, s:I, s:b}", "id",
                             (json_int_t)x->id, "content", jstr(&x->content),
                             "tags", tags, "source", jstr(&x->source),
                             "created_ns", (json_int_t)x->created_ns,
                             "updated_ns", (json_int_t)x->updated_ns, "pinned",
                             x->pinned));
        }
        print_json(a);
    } else {
        for (size_t i = 0; i < l.count; i++) {
            const nm_cortex_memory *x = &l.items[i];
            printf("%llu\t%s\t%s\t", (unsigned long long)x->id,
                   x->pinned ? "pinned" : "-", x->source.s);
            for (size_t k = 0; k < x->ntags; k++) {
                printf("%s%s", k ? "," : "", x->tags[k].s);
            }
            printf("\t%s\n", x->content.s);
        }
    }
    nm_cortex_memory_list_free(&l);
    return 0;
}

static int
cmd_memories(int argc, char **argv)
{
    if (argc < 2) {
        return usage();
    }
    const char *sub = argv[1];
    bool store = !strcmp(sub, "store");
    if (!store && strcmp(sub, "find")) {
        return nm_cli_usage_error("db memories: unknown subcommand '%s'", sub);
    }
    dbopts o;
    const nm_cli_opt store_opts[] = {
        DB_COMMON(&o, not_here),
        NM_CLI_LIST("--tag", o.tags, &o.ntags, MAXTAGS,
                    "db: at most %ld tags"),
        NM_CLI_STR("--source", &o.source),
    };
    const nm_cli_opt find_opts[] = {
        DB_COMMON(&o, pinned_arg),
        NM_CLI_STR("--tag", &o.tag),
        NM_CLI_LIST("--any-tag", o.any, &o.nany, MAXTAGS,
                    "db: at most %ld tags"),
        NM_CLI_STR("--contains", &o.contains),
        NM_CLI_STR("--source", &o.source),
        NM_CLI_STR("--order", &o.order),
        NM_CLI_CALL("--limit", &o.limit, limit_arg),
    };
    int rc =
        store
            ? parse(argc - 1, argv + 1, store_opts, NM_CLI_LEN(store_opts), &o)
            : parse(argc - 1, argv + 1, find_opts, NM_CLI_LEN(find_opts), &o);
    if (rc) {
        return rc;
    }
    nm_netdb *db;
    if ((rc = open_db(&o, false, &db)) != 0) {
        return rc;
    }
    nm_cortex_memories *m = nm_netdb_memories(db);
    rc = !strcmp(sub, "store") ? memories_store(&o, m) : memories_find(&o, m);
    nm_netdb_free(db);
    return rc;
}

int
nm_cmd_db(int argc, char **argv)
{
    if (argc < 2) {
        return usage();
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage();
        return NM_CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "tasks")) {
        return cmd_tasks(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "memories")) {
        return cmd_memories(argc - 1, argv + 1);
    }
    return nm_cli_usage_error("db: unknown model '%s' (tasks, memories)",
                              argv[1]);
}
