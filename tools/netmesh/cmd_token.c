/* tools/netmesh/cmd_token.c - placeholder until the crypto work lands. */
#include "cli.h"

int
nm_cmd_token(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return nm_cli_usage_error("'token' is not built yet");
}
