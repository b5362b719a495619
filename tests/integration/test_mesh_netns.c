/*
 * tests/integration/test_mesh_netns.c - mesh nodes in two Linux network
 * namespaces joined by a veth pair (10.X.Y.1 <-> 10.X.Y.2): a real
 * network path rather than loopback. A hub node runs in one namespace
 * (--accept-any --echo), a spoke node and `netmesh ping` in the other.
 * Needs root and iproute2 (`make deps` installs it); when namespaces cannot
 * be created here the test is skipped with the reason.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "proc_spawn.h"

static char ns_a[32], ns_b[32], veth_a[16], veth_b[16], net[32];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char full[1100];
    snprintf(full, sizeof(full), "%s >/dev/null 2>&1", cmd);
    return nmt_run(full, NULL);
}

static void
teardown(void)
{
    sh("ip netns del %s", ns_a);
    sh("ip netns del %s", ns_b);
}

/* Build the two namespaces; false (with a reason) when not possible. */
static bool
setup_netns(char *why, size_t cap)
{
    unsigned id = (unsigned)getpid() % 200 + 20;
    snprintf(ns_a, sizeof(ns_a), "nmA%u", (unsigned)getpid());
    snprintf(ns_b, sizeof(ns_b), "nmB%u", (unsigned)getpid());
    snprintf(veth_a, sizeof(veth_a), "nma%u", (unsigned)getpid() % 100000);
    snprintf(veth_b, sizeof(veth_b), "nmb%u", (unsigned)getpid() % 100000);
    snprintf(net, sizeof(net), "10.213.%u", id);
    if (sh("command -v ip") != 0) {
        snprintf(why, cap, "iproute2 (ip) is not installed");
        return false;
    }
    if (sh("ip netns add %s", ns_a) != 0) {
        snprintf(why, cap,
                 "cannot create network namespaces here (needs root / "
                 "CAP_SYS_ADMIN and netns support)");
        return false;
    }
    bool ok =
        sh("ip netns add %s", ns_b) == 0 &&
        sh("ip link add %s type veth peer name %s", veth_a, veth_b) == 0 &&
        sh("ip link set %s netns %s", veth_a, ns_a) == 0 &&
        sh("ip link set %s netns %s", veth_b, ns_b) == 0 &&
        sh("ip -n %s addr add %s.1/24 dev %s", ns_a, net, veth_a) == 0 &&
        sh("ip -n %s addr add %s.2/24 dev %s", ns_b, net, veth_b) == 0 &&
        sh("ip -n %s link set %s up", ns_a, veth_a) == 0 &&
        sh("ip -n %s link set %s up", ns_b, veth_b) == 0 &&
        sh("ip -n %s link set lo up", ns_a) == 0 &&
        sh("ip -n %s link set lo up", ns_b) == 0;
    if (!ok) {
        teardown();
        snprintf(why, cap, "veth pair setup failed (no veth support?)");
    }
    return ok;
}

Test(mesh_netns, nodes_across_a_veth_pair, .timeout = 60)
{
    char why[256];
    if (!setup_netns(why, sizeof(why))) {
        cr_skip_test("network namespaces unavailable: %s", why);
    }
    char psk[] = "/tmp/nm-netns-psk-XXXXXX";
    int fd = mkstemp(psk);
    cr_assert_geq(fd, 0);
    const char *hex =
        "5151515151515151515151515151515151515151515151515151515151515151\n";
    cr_assert_eq(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
    close(fd);
    char cli[512], listen_a[64];
    snprintf(cli, sizeof(cli), "%s/netmesh", NM_BUILD_DIR);
    snprintf(listen_a, sizeof(listen_a), "%s.1:0", net);

    /* the hub in namespace A */
    nmt_proc hub;
    char *hub_argv[] = {"/usr/sbin/ip",
                        "netns",
                        "exec",
                        ns_a,
                        cli,
                        "node",
                        "--listen",
                        listen_a,
                        "--psk-file",
                        psk,
                        "--accept-any",
                        "--echo",
                        "--json-events",
                        "--heartbeat-ms",
                        "50",
                        "--session-timeout-ms",
                        "150",
                        NULL};
    if (access(hub_argv[0], X_OK) != 0) {
        hub_argv[0] = "/sbin/ip";
    }
    nmt_proc_start(&hub, hub_argv);
    char line[1024], addr[64], id[32], pub[80];
    cr_assert(nmt_proc_line(&hub, line, sizeof(line), 5000),
              "hub printed nothing");
    cr_assert(nmt_json_field(line, "addr", addr, sizeof(addr)) &&
                  nmt_json_field(line, "node_id", id, sizeof(id)) &&
                  nmt_json_field(line, "static_pubkey", pub, sizeof(pub)),
              "%s", line);
    cr_assert_eq(strncmp(addr, net, strlen(net)), 0, "bound to %s", addr);

    /* a spoke in namespace B reaches it across the veth */
    char listen_b[64];
    snprintf(listen_b, sizeof(listen_b), "%s.2:0", net);
    nmt_proc spoke;
    char *spoke_argv[] = {hub_argv[0],
                          "netns",
                          "exec",
                          ns_b,
                          cli,
                          "node",
                          "--listen",
                          listen_b,
                          "--psk-file",
                          psk,
                          "--json-events",
                          "--heartbeat-ms",
                          "50",
                          "--session-timeout-ms",
                          "150",
                          "--peer",
                          addr,
                          "--peer-key",
                          pub,
                          "--peer-id",
                          id,
                          "--routed",
                          NULL};
    nmt_proc_start(&spoke, spoke_argv);
    char needle[96];
    snprintf(needle, sizeof(needle),
             "{\"event\":\"peer_up\",\"node_id\":\"%s\"}", id);
    cr_assert(nmt_proc_expect(&spoke, needle, line, sizeof(line), 10000),
              "spoke: no peer_up for the hub");

    /* ping from namespace B: handshake + echoed messages */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "%s netns exec %s %s ping %s --psk-file %s --peer-key %s "
             "--peer-id %s --count 5 --interval-ms 0 --json",
             hub_argv[0], ns_b, cli, addr, psk, pub, id);
    char *out = NULL;
    cr_assert_eq(nmt_run(cmd, &out), 0, "ping across netns failed: %s", out);
    cr_assert_not_null(strstr(out, "\"received\":5"), "%s", out);
    free(out);

    /* cut the link: the spoke sees the hub go down */
    sh("ip -n %s link set %s down", ns_b, veth_b);
    snprintf(needle, sizeof(needle),
             "{\"event\":\"peer_down\",\"node_id\":\"%s\"}", id);
    cr_assert(nmt_proc_expect(&spoke, needle, line, sizeof(line), 5000),
              "spoke: no peer_down after the link went down");

    nmt_proc_stop(&spoke, SIGTERM);
    nmt_proc_stop(&hub, SIGTERM);
    unlink(psk);
    teardown();
}
