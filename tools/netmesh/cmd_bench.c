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

static int
scale_arg(void *scale, const char *name, const char *value)
{
    double x = atof(value);
    if (!(x > 0 && x <= 100)) {
        return nm_cli_usage_error("--scale takes (0, 100]");
    }
    *(double *)scale = x;
    return 0;
}

int
nm_cmd_bench(int argc, char **argv)
{
    nmb_opts o = {.json = false, .runs = 5, .scale = 1.0};
    const char *group = NULL;
    long runs = o.runs;
    const nm_cli_opt opts[] = {
        NM_CLI_FLAG("--json", &o.json),
        NM_CLI_LONG_LAX("--runs", &runs, 1, 101, "--runs takes %ld..%ld"),
        NM_CLI_STR("--url", &o.url),
        NM_CLI_CALL("--scale", &o.scale, scale_arg),
    };
    nm_cli_parser p = {
        .opts = opts,
        .nopts = NM_CLI_LEN(opts),
        .args = &group,
        .max_args = 1,
        .unknown = "bench: unknown option '%s'",
        .extra = "bench: one group at a time",
    };
    int prc = nm_cli_parse(&p, argc, argv);
    if (prc != 0) {
        return prc;
    }
    o.runs = (int)runs;
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
