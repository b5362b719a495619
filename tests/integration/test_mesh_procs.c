/*
 * tests/integration/test_mesh_procs.c - three `netmesh node` processes on
 * 127.0.0.1 (a hub B running --accept-any --echo, and A and C peering
 * with it), `netmesh ping` from a fourth process, then B killed with
 * SIGKILL: A and C must report peer_down for B. Bounded waits only.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_run.h"
#include "proc_spawn.h"

typedef struct info {
    char addr[64];
    char id[17];
    char pub[65];
} info;

static void
parse_listening(const char *line, info *o)
{
    const char *a = strstr(line, "\"addr\":\"");
    const char *i = strstr(line, "\"node_id\":\"");
    const char *k = strstr(line, "\"static_pubkey\":\"");
    cr_assert(a && i && k, "bad listening line: %s", line);
    cr_assert_eq(sscanf(a + 8, "%63[^\"]", o->addr), 1);
    cr_assert_eq(sscanf(i + 11, "%16[0-9a-f]", o->id), 1);
    cr_assert_eq(sscanf(k + 17, "%64[0-9a-f]", o->pub), 1);
    cr_assert_eq(strlen(o->id), 16);
    cr_assert_eq(strlen(o->pub), 64);
}

static void
start_node(nmt_proc *p, const char *psk, const info *peer, bool hub, info *out)
{
    char cli[512];
    snprintf(cli, sizeof(cli), "%s/netmesh", NM_BUILD_DIR);
    char *argv[32];
    int n = 0;
    argv[n++] = cli;
    argv[n++] = "node";
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--psk-file";
    argv[n++] = (char *)psk;
    argv[n++] = "--json-events";
    argv[n++] = "--heartbeat-ms";
    argv[n++] = "50";
    argv[n++] = "--session-timeout-ms";
    argv[n++] = "100";
    if (hub) {
        argv[n++] = "--accept-any";
        argv[n++] = "--echo";
    }
    if (peer != NULL) {
        argv[n++] = "--peer";
        argv[n++] = (char *)peer->addr;
        argv[n++] = "--peer-key";
        argv[n++] = (char *)peer->pub;
        argv[n++] = "--peer-id";
        argv[n++] = (char *)peer->id;
        argv[n++] = "--routed";
    }
    argv[n] = NULL;
    nmt_proc_start(p, argv);
    char line[1024];
    cr_assert(nmt_proc_line(p, line, sizeof(line), 5000), "no listening line");
    parse_listening(line, out);
}

static bool
expect_event(nmt_proc *p, const char *event, const char *id, int timeout_ms)
{
    char needle[96], line[1024];
    snprintf(needle, sizeof(needle), "{\"event\":\"%s\",\"node_id\":\"%s\"}",
             event, id);
    return nmt_proc_expect(p, needle, line, sizeof(line), timeout_ms);
}

Test(mesh_procs, three_node_processes_ping_and_failure, .timeout = 60)
{
    char psk[] = "/tmp/nm-mesh-psk-XXXXXX";
    int fd = mkstemp(psk);
    cr_assert_geq(fd, 0);
    const char *hex =
        "4242424242424242424242424242424242424242424242424242424242424242\n";
    cr_assert_eq(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
    close(fd);

    nmt_proc b, a, c;
    info ib, ia, ic;
    start_node(&b, psk, NULL, true, &ib);
    start_node(&a, psk, &ib, false, &ia);
    start_node(&c, psk, &ib, false, &ic);
    cr_assert(expect_event(&a, "peer_up", ib.id, 10000), "A: peer_up B");
    cr_assert(expect_event(&c, "peer_up", ib.id, 10000), "C: peer_up B");
    /* B saw both (in either order) */
    char line[1024];
    int ups = 0;
    while (ups < 2 &&
           nmt_proc_expect(&b, "\"peer_up\"", line, sizeof(line), 10000)) {
        cr_assert(strstr(line, ia.id) || strstr(line, ic.id), "%s", line);
        ups++;
    }
    cr_assert_eq(ups, 2, "B: peer_up A and C");

    /* a fourth process pings the hub; the hub echoes */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh ping %s --psk-file %s --peer-key %s --peer-id %s "
             "--count 3 --interval-ms 0 --json",
             NM_BUILD_DIR, ib.addr, psk, ib.pub, ib.id);
    char *out = NULL;
    cr_assert_eq(nmt_run(cmd, &out), 0, "ping failed: %s", out);
    cr_assert_not_null(strstr(out, "\"received\":3"), "%s", out);
    free(out);

    /* the hub dies: both spokes notice within a few session timeouts */
    nmt_proc_stop(&b, SIGKILL);
    cr_assert(expect_event(&a, "peer_down", ib.id, 5000), "A: peer_down B");
    cr_assert(expect_event(&c, "peer_down", ib.id, 5000), "C: peer_down B");

    int st = nmt_proc_stop(&a, SIGTERM);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "node exits cleanly");
    nmt_proc_stop(&c, SIGTERM);
    unlink(psk);
}
