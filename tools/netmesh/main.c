/* tools/netmesh/main.c - the netmesh command-line tool. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include <netmesh.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"demo", nm_cmd_demo, "run the showcase on the embedded in-memory bus"},
    {"bench", nm_cmd_bench, "run benchmarks: bench <group|all> [--json]"},
    {"identity", nm_cmd_identity, "identity new|show: ed25519 node identity"},
    {"token", nm_cmd_token, "token issue|verify: permission tokens"},
    {"predicate", nm_cmd_predicate,
     "predicate eval [--trace]|encode: capability predicates (stdin)"},
    {"caps", nm_cmd_caps, "caps validate|diff: capability sets (stdin)"},
    {"node", nm_cmd_node,
     "node --listen ADDR --psk-file F ...: run an encrypted mesh node"},
    {"channel", nm_cmd_channel,
     "channel subscribe|publish: channels over the mesh"},
    {"ping", nm_cmd_ping,
     "ping ADDR --psk-file F --peer-key HEX --peer-id "
     "ID: handshake + RTT"},
    {"log", nm_cmd_log, "log append|tail|check|dump: RedEX logs on disk"},
    {"db", nm_cmd_db, "db tasks|memories ...: NetDb on a directory"},
    {"emit", nm_cmd_emit,
     "emit --redis URL|--jetstream URL [EVENT...]: publish events"},
    {"tail", nm_cmd_tail,
     "tail --redis URL|--jetstream URL [--from CURSOR] [--follow]"},
};

static void
usage(FILE *f)
{
    fprintf(f, "usage: netmesh <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    }
    fprintf(f, "\n  --help     this text\n  --version  print the version\n");
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return NM_CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return NM_CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("netmesh %s\n", nm_version());
        return NM_CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (!strcmp(argv[1], commands[i].name)) {
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    return nm_cli_usage_error("unknown command '%s'", argv[1]);
}
