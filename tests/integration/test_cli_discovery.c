/*
 * tests/integration/test_cli_discovery.c - capability announcements between
 * `netmesh node` processes: a hub B (--accept-any, no capabilities of its
 * own), A announcing a GPU set (--caps) and C a CPU-only set, both peering
 * with B. `netmesh caps find` joins through B with an ephemeral node and
 * must list A for a GPU filter (an announcement forwarded by B) and A and
 * C for an empty filter. Bounded waits only.
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
}

static void
write_file(char *tmpl, const char *text)
{
    int fd = mkstemp(tmpl);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void
start_node(nmt_proc *p, const char *psk, const char *caps, const info *peer,
           info *out)
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
    argv[n++] = "100";
    argv[n++] = "--session-timeout-ms";
    argv[n++] = "1000";
    if (caps != NULL) {
        argv[n++] = "--caps";
        argv[n++] = (char *)caps;
    }
    if (peer != NULL) {
        argv[n++] = "--peer";
        argv[n++] = (char *)peer->addr;
        argv[n++] = "--peer-key";
        argv[n++] = (char *)peer->pub;
        argv[n++] = "--peer-id";
        argv[n++] = (char *)peer->id;
        argv[n++] = "--routed";
    } else {
        argv[n++] = "--accept-any";
    }
    argv[n] = NULL;
    nmt_proc_start(p, argv);
    char line[1024];
    cr_assert(nmt_proc_line(p, line, sizeof(line), 5000), "no listening line");
    parse_listening(line, out);
}

static int
caps_find(const char *psk, const info *hub, const char *filter, int min,
          char **out)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh caps find --peer %s --peer-key %s --peer-id %s "
             "--psk-file %s --filter '%s' --min %d --wait-ms 15000",
             NM_BUILD_DIR, hub->addr, hub->pub, hub->id, psk, filter, min);
    return nmt_run(cmd, out);
}

Test(cli_discovery, node_caps_and_caps_find, .timeout = 90)
{
    char psk[] = "/tmp/nm-disc-psk-XXXXXX";
    write_file(psk,
               "4242424242424242424242424242424242424242424242424242424242"
               "424242\n");
    char gpu[] = "/tmp/nm-disc-gpu-XXXXXX";
    write_file(gpu,
               "{\"tags\":[\"hardware.gpu\",\"hardware.gpu.vendor=nvidia\","
               "\"hardware.gpu.vram_gb=24\",\"hardware.memory_gb=64\"],"
               "\"metadata\":{\"site\":\"lab\"}}\n");
    char cpu[] = "/tmp/nm-disc-cpu-XXXXXX";
    write_file(cpu, "{\"tags\":[\"hardware.cpu_cores=8\"]}");
    char bad[] = "/tmp/nm-disc-bad-XXXXXX";
    write_file(bad, "{\"tags\":[\"\"]}");

    /* a --caps file that is not a capability set is a usage error */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh node --listen 127.0.0.1:0 --psk-file %s --caps %s "
             "2>/dev/null",
             NM_BUILD_DIR, psk, bad);
    cr_assert_eq(nmt_run(cmd, NULL), 2);

    nmt_proc b, a, c;
    info ib, ia, ic;
    start_node(&b, psk, NULL, NULL, &ib);
    start_node(&a, psk, gpu, &ib, &ia);
    start_node(&c, psk, cpu, &ib, &ic);

    char *out = NULL;
    int rc = caps_find(psk, &ib, "{\"require_gpu\":true,\"min_vram_gb\":16}",
                       1, &out);
    cr_assert_eq(rc, 0, "caps find failed: %s", out);
    char needle[64];
    snprintf(needle, sizeof(needle), "{\"node_id\":\"%s\"", ia.id);
    cr_assert_not_null(strstr(out, needle), "A missing: %s", out);
    cr_assert_not_null(strstr(out, "\"site\":\"lab\""), "%s", out);
    cr_assert_null(strstr(out, ic.id), "C is not a GPU node: %s", out);
    free(out);

    rc = caps_find(psk, &ib, "{}", 2, &out);
    cr_assert_eq(rc, 0, "caps find failed: %s", out);
    cr_assert_not_null(strstr(out, ia.id), "%s", out);
    cr_assert_not_null(strstr(out, ic.id), "%s", out);
    cr_assert_null(strstr(out, ib.id), "the hub announced nothing: %s", out);
    free(out);

    /* nothing matches: exit 1 after the wait */
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh caps find --peer %s --peer-key %s --peer-id %s "
             "--psk-file %s --filter '{\"gpu_vendor\":\"amd\"}' --min 1 "
             "--wait-ms 300 2>/dev/null",
             NM_BUILD_DIR, ib.addr, ib.pub, ib.id, psk);
    cr_assert_eq(nmt_run(cmd, NULL), 1);
    /* a malformed filter is a usage error */
    snprintf(cmd, sizeof(cmd),
             "%s/netmesh caps find --peer %s --peer-key %s --peer-id %s "
             "--psk-file %s --filter '{\"bogus\":1}' 2>/dev/null",
             NM_BUILD_DIR, ib.addr, ib.pub, ib.id, psk);
    cr_assert_eq(nmt_run(cmd, NULL), 2);

    for (nmt_proc *p = &b; p != NULL; p = p == &b ? &a : p == &a ? &c : NULL) {
        int st = nmt_proc_stop(p, SIGTERM);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "node exits cleanly");
    }
    unlink(psk);
    unlink(gpu);
    unlink(cpu);
    unlink(bad);
}
