/*
 * tools/netmesh/cmd_channel.h - the serving half of `netmesh channel`,
 * used by `netmesh node --channel NAME` (cmd_node.c).
 */
#ifndef NM_CMD_CHANNEL_H
#define NM_CMD_CHANNEL_H

#include <stdbool.h>

#include <netmesh/mesh.h>

/* A --channel NAME option: 0, or a usage exit code after printing. */
int nm_cli_channel_arg(const char *name);
/* Open the node's channel service and register every --channel (open,
 * reliable, Global). No --channel: does nothing. 0 or an exit code. */
int nm_cli_channel_serve_open(nm_mesh_t *m);
/* A delivery on a served channel's stream: publish its messages to the
 * channel's subscribers and return true (the caller frees d). */
bool nm_cli_channel_relay(const nm_mesh_delivery *d);
/* Close the channel service (before the node). */
void nm_cli_channel_serve_close(void);

#endif
