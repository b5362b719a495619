/* tools/netmesh/cmd_log.c - placeholder until the RedEX work lands. */
#include "cli.h"

int
nm_cmd_log(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return nm_cli_usage_error("'log' is not built yet");
}
