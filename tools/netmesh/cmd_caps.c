/*
 * tools/netmesh/cmd_caps.c - `netmesh predicate eval|encode` and
 * `netmesh caps validate|diff`: the pure capability tools. Each reads one
 * JSON document on stdin and prints one line on stdout.
 *
 *   netmesh predicate eval [--trace]
 *       stdin  {"wire": <PredicateWire>, "tags": [...], "metadata": {...}}
 *       stdout true | false, or with --trace the trace JSON
 *              {"children":[..],"label":"..","result":b}
 *   netmesh predicate encode
 *       stdin  <PredicateWire>
 *       stdout its canonical encoding
 *   netmesh caps validate
 *       stdin  <CapabilitySet>
 *       stdout {"errors":[..],"warnings":[..]}
 *   netmesh caps diff
 *       stdin  {"prev": <CapabilitySet>, "curr": <CapabilitySet>}
 *       stdout {"added_tags":[..],"removed_tags":[..],"metadata_changes":[..]}
 *
 * Exit codes: 0 success (a predicate that evaluates to false is still a
 * success), 2 usage errors and malformed input (invalid JSON, a bad
 * PredicateWire, an empty tag, input too large: the message names the
 * problem), 1 an operation that failed for another reason (reading stdin,
 * out of memory).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh.h>
#include <netmesh/caps.h>
#include <netmesh/predicate.h>

/* Largest accepted input (a guard, not a protocol limit). */
#define CAPS_STDIN_MAX (64u << 20)

static int
read_stdin(const char *what, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        fprintf(stderr, "netmesh: %s: out of memory\n", what);
        return NM_CLI_EXIT_FAIL;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= CAPS_STDIN_MAX) {
                free(buf);
                return nm_cli_usage_error("%s: input larger than %u bytes",
                                          what, CAPS_STDIN_MAX);
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                fprintf(stderr, "netmesh: %s: out of memory\n", what);
                return NM_CLI_EXIT_FAIL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) {
            if (ferror(stdin)) {
                free(buf);
                fprintf(stderr, "netmesh: %s: error reading stdin\n", what);
                return NM_CLI_EXIT_FAIL;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    return NM_CLI_EXIT_OK;
}

/* Map a library failure: malformed input -> 2, anything else -> 1. */
static int
failed(int rc, const char *what)
{
    if (rc == NM_EDECODE || rc == NM_EINVAL || rc == NM_ETOOBIG) {
        const char *d = nm_errdetail();
        fprintf(stderr, "netmesh: %s: malformed input: %s\n", what,
                d && *d ? d : nm_strerror(rc));
        return NM_CLI_EXIT_USAGE;
    }
    return nm_cli_fail(rc, "%s", what);
}

static int
print_owned(char *s)
{
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return fflush(stdout) == 0 ? NM_CLI_EXIT_OK : NM_CLI_EXIT_FAIL;
}

static int
predicate_usage(void)
{
    return nm_cli_usage_error(
        "usage: netmesh predicate eval [--trace] < {\"wire\":..,\"tags\":[..],"
        "\"metadata\":{..}}\n"
        "       netmesh predicate encode < <PredicateWire>");
}

int
nm_cmd_predicate(int argc, char **argv)
{
    if (argc < 2) {
        return predicate_usage();
    }
    const char *sub = argv[1];
    bool trace = false;
    if (strcmp(sub, "eval") == 0) {
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--trace") == 0) {
                trace = true;
            } else {
                return predicate_usage();
            }
        }
    } else if (strcmp(sub, "encode") == 0) {
        if (argc != 2) {
            return predicate_usage();
        }
    } else {
        return predicate_usage();
    }
    char *in;
    size_t len;
    int ex = read_stdin(trace ? "predicate eval --trace" : sub, &in, &len);
    if (ex != NM_CLI_EXIT_OK) {
        return ex;
    }
    int rc;
    char *out = NULL;
    if (strcmp(sub, "encode") == 0) {
        nm_pred *p;
        rc = nm_pred_from_wire_json(in, len, &p);
        free(in);
        if (rc != NM_OK) {
            return failed(rc, "predicate encode");
        }
        rc = nm_pred_to_wire_json(p, &out, NULL);
        nm_pred_free(p);
        if (rc != NM_OK) {
            return failed(rc, "predicate encode");
        }
        return print_owned(out);
    }
    if (trace) {
        rc = nm_pred_request_trace(in, len, NULL, &out, NULL);
        free(in);
        if (rc != NM_OK) {
            return failed(rc, "predicate eval --trace");
        }
        return print_owned(out);
    }
    rc = nm_pred_request_eval(in, len);
    free(in);
    if (rc < 0) {
        return failed(rc, "predicate eval");
    }
    puts(rc ? "true" : "false");
    return fflush(stdout) == 0 ? NM_CLI_EXIT_OK : NM_CLI_EXIT_FAIL;
}

static int
caps_usage(void)
{
    return nm_cli_usage_error(
        "usage: netmesh caps validate < <CapabilitySet>\n"
        "       netmesh caps diff < {\"prev\":<CapabilitySet>,"
        "\"curr\":<CapabilitySet>}");
}

int
nm_cmd_caps(int argc, char **argv)
{
    if (argc != 2) {
        return caps_usage();
    }
    const char *sub = argv[1];
    bool validate = strcmp(sub, "validate") == 0;
    if (!validate && strcmp(sub, "diff") != 0) {
        return caps_usage();
    }
    const char *what = validate ? "caps validate" : "caps diff";
    char *in;
    size_t len;
    int ex = read_stdin(what, &in, &len);
    if (ex != NM_CLI_EXIT_OK) {
        return ex;
    }
    char *out = NULL;
    int rc;
    if (validate) {
        nm_capset *set;
        rc = nm_capset_from_json(in, len, &set);
        free(in);
        if (rc != NM_OK) {
            return failed(rc, what);
        }
        nm_caps_report *r;
        rc = nm_caps_validate(set, &r);
        nm_capset_free(set);
        if (rc == NM_OK) {
            rc = nm_caps_report_to_json(r, &out, NULL);
            nm_caps_report_free(r);
        }
    } else {
        rc = nm_caps_diff_request(in, len, &out, NULL);
        free(in);
    }
    if (rc != NM_OK) {
        return failed(rc, what);
    }
    return print_owned(out);
}
