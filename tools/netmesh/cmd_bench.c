/* tools/netmesh/cmd_bench.c - `netmesh bench <group|all> [--json]`. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int
group_crypto(const nmb_opts *o)
{
    int rc = nmb_group_crypto_primitives(o);
    int rc2 = nmb_group_crypto_session(o);
    return rc ? rc : rc2;
}

/* clang-format off */
static const struct {
    const char *name;
    int (*fn)(const nmb_opts *);
} groups[] = {
    {"bus", nmb_group_bus},
    {"crypto", group_crypto},
    {"redis", nmb_group_redis},
    {"jetstream", nmb_group_jetstream},
    {"redex", nmb_group_redex},
    {"caps", nmb_group_caps},
    {"cortex", nmb_group_cortex},
    {"mesh", nmb_group_mesh},
    {"mesh_base", nmb_group_mesh_base},
    {"channels", nmb_group_channels},
};
/* clang-format on */

int
nm_cmd_bench(int argc, char **argv)
{
    nmb_opts o = {.json = false, .runs = 5, .scale = 1.0};
    const char *group = NULL;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            o.json = true;
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            o.runs = atoi(argv[++i]);
            if (o.runs < 1 || o.runs > 101) {
                return nm_cli_usage_error("--runs takes 1..101");
            }
        } else if (!strcmp(argv[i], "--url") && i + 1 < argc) {
            o.url = argv[++i];
        } else if (!strcmp(argv[i], "--scale") && i + 1 < argc) {
            o.scale = atof(argv[++i]);
            if (!(o.scale > 0 && o.scale <= 100)) {
                return nm_cli_usage_error("--scale takes (0, 100]");
            }
        } else if (argv[i][0] == '-') {
            return nm_cli_usage_error("bench: unknown option '%s'", argv[i]);
        } else if (!group) {
            group = argv[i];
        } else {
            return nm_cli_usage_error("bench: one group at a time");
        }
    }
    if (!group) {
        return nm_cli_usage_error(
            "usage: netmesh bench "
            "<bus|crypto|redis|jetstream|redex|caps|cortex|mesh|channels|all> "
            "[--json] "
            "[--runs N] [--scale X] [--url URL]");
    }
    int rc = 0, found = 0;
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
        if (!strcmp(group, "all") || !strcmp(group, groups[i].name)) {
            found = 1;
            int r = groups[i].fn(&o);
            rc = rc ? rc : r;
        }
    }
    if (!found) {
        return nm_cli_usage_error("bench: unknown group '%s'", group);
    }
    return rc ? NM_CLI_EXIT_FAIL : NM_CLI_EXIT_OK;
}
