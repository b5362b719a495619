/* tools/netmesh/cmd_identity.c - placeholder until the crypto work lands. */
#include "cli.h"

int
nm_cmd_identity(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return nm_cli_usage_error("'identity' is not built yet");
}
