/* tools/netmesh/cmd_caps.c - placeholder until the capabilities work lands. */
#include "cli.h"

int
nm_cmd_predicate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return nm_cli_usage_error("'predicate' is not built yet");
}

int
nm_cmd_caps(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return nm_cli_usage_error("'caps' is not built yet");
}
