/*
 * tests/integration/test_cli_caps.c - `netmesh predicate eval|encode` and
 * `netmesh caps validate|diff` run as processes (the built binary at
 * NM_BUILD_DIR/netmesh) with JSON on stdin: exact output bytes, and exit
 * codes (0 ok, 2 usage or malformed input).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLI NM_BUILD_DIR "/netmesh"

static char tmpdir[256];
static char out[65536], err[8192];

static void
setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nm_cli_caps_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void
teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

static void
slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run `netmesh <args>` with `input` on stdin. Returns the exit status. */
static int
run(const char *input, const char *args)
{
    char in[512], cmd[2048], p[512];
    snprintf(in, sizeof(in), "%s/.in", tmpdir);
    FILE *f = fopen(in, "w");
    cr_assert_not_null(f);
    fputs(input, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "'%s' %s <'%s' >'%s/.out' 2>'%s/.err'", CLI,
             args, in, tmpdir, tmpdir);
    int st = system(cmd);
    snprintf(p, sizeof(p), "%s/.out", tmpdir);
    slurp(p, out, sizeof(out));
    snprintf(p, sizeof(p), "%s/.err", tmpdir);
    slurp(p, err, sizeof(err));
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TestSuite(cli_caps, .init = setup, .fini = teardown);

Test(cli_caps, encode_every_vector_byte_equal)
{
    json_error_t jerr;
    json_t *root = json_load_file(
        NM_TEST_VECTORS_DIR "/predicate-wire-envelope.json", 0, &jerr);
    cr_assert_not_null(root, "%s", jerr.text);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c)
    {
        json_t *wire = json_object_get(c, "wire");
        char *pretty = json_dumps(wire, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
        char *compact = json_dumps(wire, JSON_COMPACT | JSON_PRESERVE_ORDER);
        cr_assert_eq(run(pretty, "predicate encode"), 0, "%s", err);
        char want[8192];
        snprintf(want, sizeof(want), "%s\n", compact);
        cr_assert_str_eq(out, want);
        free(pretty);
        free(compact);
    }
    json_decref(root);
}

Test(cli_caps, eval_and_trace)
{
    const char *req =
        "{\"wire\":{\"nodes\":[{\"kind\":\"exists\",\"key\":{\"axis\":"
        "\"hardware\",\"key\":\"gpu\"}},{\"kind\":\"metadata_equals\","
        "\"key\":\"intent\",\"value\":\"ml-training\"},{\"kind\":\"and\","
        "\"children\":[0,1]}],\"root_idx\":2},\"tags\":[\"hardware.gpu\","
        "\"scope:tenant:x\"],\"metadata\":{\"intent\":\"ml-training\"}}";
    cr_assert_eq(run(req, "predicate eval"), 0, "%s", err);
    cr_assert_str_eq(out, "true\n");
    cr_assert_eq(run(req, "predicate eval --trace"), 0, "%s", err);
    cr_assert_str_eq(
        out, "{\"children\":[{\"children\":[],\"label\":\"MetadataEquals("
             "intent=ml-training)\",\"result\":true},{\"children\":[],"
             "\"label\":\"Exists(hardware.gpu)\",\"result\":true}],\"label\":"
             "\"And(2 clauses)\",\"result\":true}\n");
    const char *no = "{\"wire\":{\"nodes\":[{\"kind\":\"metadata_exists\","
                     "\"key\":\"intent\"}],\"root_idx\":0}}";
    cr_assert_eq(run(no, "predicate eval"), 0, "%s", err);
    cr_assert_str_eq(out, "false\n");
    cr_assert_eq(run(no, "predicate eval --trace"), 0);
    cr_assert_str_eq(out, "{\"children\":[],\"label\":\"MetadataExists("
                          "intent)\",\"result\":false}\n");
}

Test(cli_caps, validate_and_diff)
{
    cr_assert_eq(run("{\"tags\":[\"hardware.gpu\",\"hardware.memory_gb=lots\","
                     "\"hardware.experimental_field=42\",\"myteam-tag\"],"
                     "\"metadata\":{}}",
                     "caps validate"),
                 0, "%s", err);
    cr_assert_str_eq(
        out,
        "{\"errors\":[{\"actual\":\"lots\",\"axis\":\"hardware\","
        "\"expected\":\"number\",\"key\":\"memory_gb\",\"kind\":"
        "\"type_mismatch\"}],\"warnings\":[{\"axis\":\"hardware\",\"key\":"
        "\"experimental_field\",\"kind\":\"unknown_key\"},{\"kind\":"
        "\"legacy_tag\",\"tag\":\"myteam-tag\"}]}\n");
    cr_assert_eq(run("{\"prev\":{\"tags\":[\"software.os=linux\"],"
                     "\"metadata\":{\"intent\":\"embedding-cache\"}},"
                     "\"curr\":{\"tags\":[\"software.os=linux\","
                     "\"hardware.gpu\"],\"metadata\":{\"intent\":"
                     "\"ml-training\",\"owner\":\"alice\"}}}",
                     "caps diff"),
                 0, "%s", err);
    cr_assert_str_eq(out,
                     "{\"added_tags\":[\"hardware.gpu\"],\"removed_tags\":"
                     "[],\"metadata_changes\":[{\"kind\":\"updated\","
                     "\"key\":\"intent\",\"prev_value\":"
                     "\"embedding-cache\",\"new_value\":\"ml-training\"},"
                     "{\"kind\":\"added\",\"key\":\"owner\",\"value\":"
                     "\"alice\"}]}\n");
}

Test(cli_caps, malformed_input_and_usage_exit_2)
{
    static const struct {
        const char *input, *args, *msg;
    } t[] = {
        {"", "predicate encode", "malformed input"},
        {"{\"nodes\":[],\"root_idx\":0}", "predicate encode", "empty nodes"},
        {"{\"nodes\":[{\"kind\":\"not\",\"child\":0}],\"root_idx\":0}",
         "predicate encode", "cycle"},
        {"not json", "predicate eval", "malformed input"},
        {"{\"wire\":{\"nodes\":[{\"kind\":\"metadata_exists\",\"key\":\"a\"}],"
         "\"root_idx\":0},\"tags\":[\"\"]}",
         "predicate eval", "non-empty"},
        {"{\"tags\":[]}", "predicate eval --trace", "wire"},
        {"{\"tags\":[\"\"]}", "caps validate", "non-empty"},
        {"{\"tags\":[1]}", "caps validate", "malformed input"},
        {"{\"prev\":{}}", "caps diff", "curr"},
        {"{}", "predicate", "usage"},
        {"{}", "predicate frob", "usage"},
        {"{}", "predicate eval --tracex", "usage"},
        {"{}", "predicate encode extra", "usage"},
        {"{}", "caps", "usage"},
        {"{}", "caps find", "usage"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        cr_assert_eq(run(t[i].input, t[i].args), 2, "case %zu (%s)", i,
                     t[i].args);
        cr_assert_str_eq(out, "", "case %zu", i);
        cr_assert_not_null(strstr(err, t[i].msg), "case %zu: stderr '%s'", i,
                           err);
    }
}
