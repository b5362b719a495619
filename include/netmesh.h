/*
 * netmesh.h - the umbrella header of libnetmesh, the Net mesh in C11.
 *
 * Include this one header; it pulls in every public surface under
 * <netmesh/...>. Every public symbol is prefixed nm_ / NM_.
 */
#ifndef NETMESH_H
#define NETMESH_H

#include <netmesh/common.h>
#include <netmesh/version.h>
#include <netmesh/error.h>
#include <netmesh/bus.h>
#include <netmesh/adapter.h>
#include <netmesh/dedup.h>
#include <netmesh/redis.h>
#include <netmesh/jetstream.h>
#include <netmesh/name.h>
#include <netmesh/identity.h>
#include <netmesh/token.h>
#include <netmesh/caps.h>
#include <netmesh/predicate.h>
#include <netmesh/subnet.h>
#include <netmesh/mesh.h>
#include <netmesh/mesh_bus.h>
#include <netmesh/channel.h>
#include <netmesh/redex.h>
#include <netmesh/cortex.h>
#include <netmesh/discovery.h>

#endif
