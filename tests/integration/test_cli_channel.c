/*
 * tests/integration/test_cli_channel.c - channels from the shell, three
 * processes on 127.0.0.1: `netmesh node --channel sensors/temp` serves the
 * channel, `netmesh channel subscribe` prints what arrives, `netmesh
 * channel publish` sends through the node. An unknown channel is refused.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_run.h"
#include "proc_spawn.h"

Test(cli_channel, node_subscribe_publish, .timeout = 60)
{
    char psk[] = "/tmp/nm-chan-psk-XXXXXX";
    int fd = mkstemp(psk);
    cr_assert_geq(fd, 0);
    const char *hex =
        "6363636363636363636363636363636363636363636363636363636363636363\n";
    cr_assert_eq(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
    close(fd);
    char cli[512];
    snprintf(cli, sizeof(cli), "%s/netmesh", NM_BUILD_DIR);

    nmt_proc node;
    char *nargv[] = {
        cli, "node",         "--listen",  "127.0.0.1:0",  "--psk-file",
        psk, "--accept-any", "--channel", "sensors/temp", "--json-events",
        NULL};
    nmt_proc_start(&node, nargv);
    char line[1024], addr[64], id[32], pub[80];
    cr_assert(nmt_proc_line(&node, line, sizeof(line), 5000));
    cr_assert(nmt_json_field(line, "addr", addr, sizeof(addr)) &&
              nmt_json_field(line, "node_id", id, sizeof(id)) &&
              nmt_json_field(line, "static_pubkey", pub, sizeof(pub)));

    /* a subscriber prints two messages, then exits */
    nmt_proc sub;
    char *sargv[] = {
        cli,      "channel",   "subscribe",    "--psk-file", psk,
        "--peer", addr,        "--peer-key",   pub,          "--peer-id",
        id,       "--channel", "sensors/temp", "--count",    "2",
        NULL};
    nmt_proc_start(&sub, sargv);
    /* the node reports the subscriber's session: then the Ack is near */
    cr_assert(
        nmt_proc_expect(&node, "\"peer_up\"", line, sizeof(line), 10000));

    /* publish until the subscriber has both (the subscribe may still be
     * in flight when the first publish lands: bounded retries) */
    char cmd[1024];
    char got[2][256];
    int have = 0;
    for (int attempt = 0; attempt < 20 && have < 2; attempt++) {
        snprintf(cmd, sizeof(cmd),
                 "%s channel publish --psk-file %s --peer %s --peer-key %s "
                 "--peer-id %s --channel sensors/temp 22.5 23.0",
                 cli, psk, addr, pub, id);
        cr_assert_eq(nmt_run(cmd, NULL), 0, "publish failed");
        while (have < 2 &&
               nmt_proc_line(&sub, got[have], sizeof(got[have]), 1000)) {
            have++;
        }
    }
    cr_assert_eq(have, 2, "subscriber printed %d lines", have);
    cr_assert_str_eq(got[0], "22.5");
    cr_assert_str_eq(got[1], "23.0");
    int st = nmt_proc_stop(&sub, SIGTERM);
    cr_assert(WIFEXITED(st) || WIFSIGNALED(st));

    /* an unknown channel is refused with the reason */
    snprintf(cmd, sizeof(cmd),
             "%s channel subscribe --psk-file %s --peer %s --peer-key %s "
             "--peer-id %s --channel no/such --count 1 2>&1",
             cli, psk, addr, pub, id);
    char *out = NULL;
    int rc = nmt_run(cmd, &out);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(out, "UnknownChannel") || strstr(out, "unknown"), "%s",
              out);
    free(out);
    nmt_proc_stop(&node, SIGTERM);
    unlink(psk);
}
