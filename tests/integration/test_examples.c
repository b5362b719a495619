/* tests/integration/test_examples.c - every example program and the CLI
 * run as a user would run them. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cli_run.h"

Test(examples, every_example_runs_and_exits_zero, .timeout = 120)
{
    char names[] = NM_EXAMPLES;
    int count = 0;
    for (char *tok = strtok(names, " "); tok; tok = strtok(NULL, " ")) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "%s/examples/%s", NM_BUILD_DIR, tok);
        char *out;
        int rc = nmt_run(cmd, &out);
        cr_assert_eq(rc, 0, "example %s exited %d:\n%s", tok, rc, out);
        cr_assert_gt(strlen(out), 0, "example %s printed nothing", tok);
        free(out);
        count++;
    }
    cr_assert_geq(count, 3, "quickstart, typed_stream, ingestion_methods");
}

Test(examples, quickstart_prints_its_events)
{
    char *out;
    cr_assert_eq(nmt_run(NM_BUILD_DIR "/examples/quickstart", &out), 0);
    cr_assert_not_null(strstr(out, "{\"token\":\"hello\",\"index\":0}"));
    cr_assert_not_null(strstr(out, "{\"token\": \"world\"}"));
    cr_assert_not_null(strstr(out, "{\"token\": \"foo\"}"));
    cr_assert_not_null(strstr(out, "{\"a\":1}"));
    cr_assert_not_null(strstr(out, "{\"a\":2}"));
    cr_assert_not_null(strstr(out, "{\"token\": \"live\"}"));
    free(out);
}

Test(cli, demo_runs_green, .timeout = 120)
{
    char *out;
    int rc = nmt_run(NM_BUILD_DIR "/netmesh demo --quiet", &out);
    cr_assert_eq(rc, 0, "demo exited %d:\n%s", rc, out);
    cr_assert_not_null(strstr(out, "demo ok"));
    cr_assert_not_null(strstr(out, "holds"));
    cr_assert_null(strstr(out, "BROKEN"));
    free(out);
}

Test(cli, version_help_and_usage_errors)
{
    char *out;
    cr_assert_eq(nmt_run(NM_BUILD_DIR "/netmesh --version", &out), 0);
    cr_assert_not_null(strstr(out, "netmesh 0."));
    free(out);
    cr_assert_eq(nmt_run(NM_BUILD_DIR "/netmesh --help", &out), 0);
    cr_assert_not_null(strstr(out, "demo"));
    free(out);
    cr_assert_eq(nmt_run(NM_BUILD_DIR "/netmesh 2>/dev/null", NULL), 2);
    cr_assert_eq(nmt_run(NM_BUILD_DIR "/netmesh frobnicate 2>/dev/null", NULL),
                 2);
    cr_assert_eq(nmt_run(NM_BUILD_DIR "/netmesh bench 2>/dev/null", NULL), 2);
    cr_assert_eq(nmt_run(NM_BUILD_DIR "/netmesh bench nope 2>/dev/null", NULL),
                 2);
    cr_assert_eq(
        nmt_run(NM_BUILD_DIR "/netmesh bench bus --runs 0 2>/dev/null", NULL),
        2);
    cr_assert_eq(
        nmt_run(NM_BUILD_DIR "/netmesh demo --bogus 2>/dev/null", NULL), 2);
}

Test(cli, bench_bus_json_lines, .timeout = 120)
{
    char *out;
    int rc = nmt_run(NM_BUILD_DIR "/netmesh bench bus --json --runs 1 --scale "
                                  "0.02",
                     &out);
    cr_assert_eq(rc, 0, "bench exited %d:\n%s", rc, out);
    const char *want[] = {"bus.emit_raw_64B", "bus.emit_raw_batch_64B",
                          "bus.emit_raw_64B_2producers", "bus.poll_1000"};
    int found = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        cr_assert_not_null(j, "not JSON: %s", line);
        const char *name = json_string_value(json_object_get(j, "bench"));
        cr_assert_not_null(name);
        cr_assert(json_is_number(json_object_get(j, "value")));
        cr_assert_gt(json_number_value(json_object_get(j, "value")), 0);
        cr_assert(json_is_string(json_object_get(j, "unit")));
        if (json_object_get(j, "baseline")) {
            cr_assert_str_eq(json_string_value(json_object_get(j, "baseline")),
                             "spsc_ring_64B");
            cr_assert(json_is_number(json_object_get(j, "baseline_value")));
            cr_assert(json_is_number(json_object_get(j, "ratio")));
        }
        for (size_t i = 0; i < 4; i++) {
            found += !strcmp(name, want[i]);
        }
        json_decref(j);
    }
    cr_assert_eq(found, 4);
    free(out);
}
