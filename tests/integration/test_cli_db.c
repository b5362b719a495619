/*
 * tests/integration/test_cli_db.c - `netmesh db` as a user runs it: tasks
 * create / list / complete and memories store / find on a directory that
 * persists between invocations, human and --json output, filters, and
 * the exit codes of failures (1) and usage errors (2).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_run.h"

static char dir[128];
static char cmd[1024];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/nm_cli_db_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(cli_db, .init = setup, .fini = teardown, .timeout = 60);

/* Run `netmesh db ARGS --dir DIR`; stderr is dropped. */
static int
db(const char *args, char **out)
{
    snprintf(cmd, sizeof(cmd), "%s/netmesh db %s --dir '%s' 2>/dev/null",
             NM_BUILD_DIR, args, dir);
    return nmt_run(cmd, out);
}

static json_t *
db_json(const char *args)
{
    char *out;
    cr_assert_eq(db(args, &out), 0, "netmesh db %s", args);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    cr_assert_not_null(j, "not JSON: %s", out);
    free(out);
    return j;
}

Test(cli_db, tasks_create_list_complete)
{
    char *out;
    cr_assert_eq(db("tasks create 1 'write docs'", &out), 0);
    cr_assert_not_null(strstr(out, "created task 1 (token "));
    cr_assert_not_null(strstr(out, "0000000000000000:0"));
    free(out);
    json_t *j = db_json("tasks create 2 'ship it' --json --origin abcdef01");
    cr_assert_str_eq(json_string_value(json_object_get(j, "op")), "created");
    cr_assert_eq(json_integer_value(json_object_get(j, "id")), 2);
    cr_assert_eq(json_integer_value(json_object_get(j, "seq")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(j, "token")),
                     "00000000abcdef01:1");
    json_decref(j);
    cr_assert_eq(db("tasks complete 1", &out), 0);
    cr_assert_not_null(strstr(out, "completed task 1"));
    free(out);

    cr_assert_eq(db("tasks list", &out), 0);
    cr_assert_str_eq(out, "1\tcompleted\twrite docs\n2\tpending\tship it\n");
    free(out);
    j = db_json("tasks list --status pending --json");
    cr_assert(json_is_array(j));
    cr_assert_eq(json_array_size(j), 1);
    json_t *t = json_array_get(j, 0);
    cr_assert_eq(json_integer_value(json_object_get(t, "id")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(t, "title")),
                     "ship it");
    cr_assert_str_eq(json_string_value(json_object_get(t, "status")),
                     "pending");
    cr_assert(json_is_integer(json_object_get(t, "created_ns")));
    cr_assert(json_is_integer(json_object_get(t, "updated_ns")));
    json_decref(j);
    cr_assert_eq(db("tasks list --order id_desc --limit 1", &out), 0);
    cr_assert_str_eq(out, "2\tpending\tship it\n");
    free(out);
    cr_assert_eq(db("tasks list --contains DOCS", &out), 0);
    cr_assert_str_eq(out, "1\tcompleted\twrite docs\n");
    free(out);
    j = db_json("tasks list --status completed --contains nope --json");
    cr_assert_eq(json_array_size(j), 0);
    json_decref(j);
}

Test(cli_db, memories_store_find)
{
    char *out;
    cr_assert_eq(db("memories store 5 'the sky is blue' --tag facts --tag "
                    "sky --source obs",
                    &out),
                 0);
    cr_assert_not_null(strstr(out, "stored memory 5"));
    free(out);
    cr_assert_eq(db("memories store 6 'grass is green' --tag facts", &out), 0);
    free(out);
    cr_assert_eq(db("memories find --tag sky", &out), 0);
    cr_assert_str_eq(out, "5\t-\tobs\tfacts,sky\tthe sky is blue\n");
    free(out);
    json_t *j = db_json("memories find --any-tag sky --any-tag facts --json");
    cr_assert_eq(json_array_size(j), 2);
    json_t *m = json_array_get(j, 0);
    cr_assert_eq(json_integer_value(json_object_get(m, "id")), 5);
    cr_assert_str_eq(json_string_value(json_object_get(m, "content")),
                     "the sky is blue");
    cr_assert_str_eq(json_string_value(json_object_get(m, "source")), "obs");
    cr_assert_eq(json_array_size(json_object_get(m, "tags")), 2);
    cr_assert(json_is_false(json_object_get(m, "pinned")));
    json_decref(j);
    j = db_json("memories find --contains GREEN --json");
    cr_assert_eq(json_array_size(j), 1);
    json_decref(j);
    j = db_json("memories find --pinned --json");
    cr_assert_eq(json_array_size(j), 0);
    json_decref(j);
    cr_assert_eq(db("memories find --source obs --order id_desc", &out), 0);
    cr_assert_str_eq(out, "5\t-\tobs\tfacts,sky\tthe sky is blue\n");
    free(out);
}

Test(cli_db, failures_and_usage_errors)
{
    cr_assert_eq(db("tasks complete 9", NULL), 1, "unknown task: failure");
    cr_assert_eq(db("tasks create 1 '\xff'", NULL), 1, "not UTF-8");
    cr_assert_eq(db("tasks create x title", NULL), 2);
    cr_assert_eq(db("tasks create 1", NULL), 2);
    cr_assert_eq(db("tasks list --order sideways", NULL), 2);
    cr_assert_eq(db("tasks list --status done", NULL), 2);
    cr_assert_eq(db("tasks list --bogus 1", NULL), 2);
    cr_assert_eq(db("tasks frobnicate", NULL), 2);
    cr_assert_eq(db("widgets list", NULL), 2);
    cr_assert_eq(db("memories find --limit 0", NULL), 2);
    cr_assert_eq(db("tasks list --origin zz", NULL), 2);
    snprintf(cmd, sizeof(cmd), "%s/netmesh db tasks list 2>/dev/null",
             NM_BUILD_DIR);
    cr_assert_eq(nmt_run(cmd, NULL), 2, "--dir is required");
    snprintf(cmd, sizeof(cmd), "%s/netmesh db 2>/dev/null", NM_BUILD_DIR);
    cr_assert_eq(nmt_run(cmd, NULL), 2);
    /* a directory that is a file */
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh db tasks list --dir /etc/hostname 2>/dev/null",
             NM_BUILD_DIR);
    cr_assert_eq(nmt_run(cmd, NULL), 1);
}
