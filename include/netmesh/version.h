/*
 * netmesh/version.h - the library version, defined once.
 *
 * CMake parses NM_VERSION_MAJOR/MINOR/PATCH out of this file, so this is the
 * only place a release bumps. NM_ABI_VERSION (the shared library SOVERSION)
 * moves only when the ABI breaks.
 */
#ifndef NETMESH_VERSION_H
#define NETMESH_VERSION_H

#define NM_VERSION_MAJOR 0
#define NM_VERSION_MINOR 1
#define NM_VERSION_PATCH 0
#define NM_ABI_VERSION 0

#define NM_VERSION_STRINGIFY_(x) #x
#define NM_VERSION_STRINGIFY(x) NM_VERSION_STRINGIFY_(x)
#define NM_VERSION_STRING                                                     \
    NM_VERSION_STRINGIFY(NM_VERSION_MAJOR)                                    \
    "." NM_VERSION_STRINGIFY(NM_VERSION_MINOR) "." NM_VERSION_STRINGIFY(      \
        NM_VERSION_PATCH)

/* (major << 16) | (minor << 8) | patch, for compile-time comparisons. */
#define NM_VERSION_HEX                                                        \
    ((NM_VERSION_MAJOR << 16) | (NM_VERSION_MINOR << 8) | NM_VERSION_PATCH)

#endif
