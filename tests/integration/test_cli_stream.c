/* tests/integration/test_cli_stream.c - `netmesh emit` / `netmesh tail`
 * against real redis-server and nats-server -js, as an operator would. */
#include <jansson.h>

#include "cli_run.h"
#include "servers.h"

static int
count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

static void
emit_and_tail(const char *flag, const char *url)
{
    char cmd[8192], *out;
    /* Events from arguments. */
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh emit %s %s --prefix clitest '{\"a\":1}' "
             "'{\"a\":2}' 2>&1",
             NM_BUILD_DIR, flag, url);
    int rc = nmt_run(cmd, &out);
    cr_assert_eq(rc, 0, "emit: %s", out);
    cr_assert_not_null(strstr(out, "emitted 2 events"), "%s", out);
    free(out);
    /* Events from stdin, one per line. */
    snprintf(cmd, sizeof(cmd),
             "printf '{\"b\":1}\\n{\"b\":2}\\n{\"b\":3}\\n' | %s/netmesh emit "
             "%s %s --prefix clitest 2>&1",
             NM_BUILD_DIR, flag, url);
    rc = nmt_run(cmd, &out);
    cr_assert_eq(rc, 0, "emit stdin: %s", out);
    free(out);
    /* Tail everything, as JSON lines; the cursor goes to stderr. */
    char curfile[64];
    snprintf(curfile, sizeof(curfile), "/tmp/nmt-cursor-%d", getpid());
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh tail %s %s --prefix clitest --json 2>%s",
             NM_BUILD_DIR, flag, url, curfile);
    rc = nmt_run(cmd, &out);
    cr_assert_eq(rc, 0);
    cr_assert_eq(count_lines(out), 5, "tail printed:\n%s", out);
    int found = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert_not_null(j, "not JSON: %s", line);
        json_t *data = json_object_get(j, "data");
        cr_assert(json_is_object(data));
        found += json_object_get(data, "a") || json_object_get(data, "b");
        json_decref(j);
    }
    cr_assert_eq(found, 5);
    free(out);
    /* Resume from the printed cursor: only newer events. */
    FILE *f = fopen(curfile, "r");
    char line[4096] = "";
    cr_assert_not_null(fgets(line, sizeof(line), f));
    fclose(f);
    unlink(curfile);
    cr_assert_eq(strncmp(line, "cursor: ", 8), 0, "%s", line);
    char *cursor = line + 8;
    cursor[strcspn(cursor, "\n")] = '\0';
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh emit %s %s --prefix clitest '{\"c\":1}' 2>/dev/null",
             NM_BUILD_DIR, flag, url);
    cr_assert_eq(nmt_run(cmd, NULL), 0);
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh tail %s %s --prefix clitest --from '%s' 2>/dev/null",
             NM_BUILD_DIR, flag, url, cursor);
    cr_assert_eq(nmt_run(cmd, &out), 0);
    cr_assert_str_eq(out, "{\"c\":1}\n");
    free(out);
}

Test(cli_stream, redis_emit_then_tail, .timeout = 120)
{
    nmt_server s;
    nmt_server_start(&s, NMT_REDIS);
    emit_and_tail("--redis", s.url);
    nmt_server_cleanup(&s);
}

Test(cli_stream, jetstream_emit_then_tail, .timeout = 120)
{
    nmt_server s;
    nmt_server_start(&s, NMT_NATS);
    emit_and_tail("--jetstream", s.url);
    nmt_server_cleanup(&s);
}

Test(cli_stream, usage_and_connection_errors, .timeout = 60)
{
    char cmd[512], *out;
    snprintf(cmd, sizeof(cmd), "%s/netmesh emit '{}' 2>/dev/null",
             NM_BUILD_DIR);
    cr_assert_eq(nmt_run(cmd, NULL), 2, "needs --redis or --jetstream");
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh tail --redis redis://x:1 --jetstream nats://x:1 "
             "2>/dev/null",
             NM_BUILD_DIR);
    cr_assert_eq(nmt_run(cmd, NULL), 2, "not both");
    snprintf(cmd, sizeof(cmd), "%s/netmesh tail --redis u --bogus 2>/dev/null",
             NM_BUILD_DIR);
    cr_assert_eq(nmt_run(cmd, NULL), 2);
    int port = nmt_free_port(); /* nothing listens there */
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh emit --redis redis://127.0.0.1:%d '{}' 2>&1",
             NM_BUILD_DIR, port);
    cr_assert_eq(nmt_run(cmd, &out), 1);
    char url[64];
    snprintf(url, sizeof(url), "127.0.0.1:%d", port);
    cr_assert_not_null(strstr(out, url), "the error names the URL: %s", out);
    free(out);
}
