/*
 * netmesh/common.h - declaration macros shared by every public header.
 */
#ifndef NETMESH_COMMON_H
#define NETMESH_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define NM_BEGIN_DECLS extern "C" {
#define NM_END_DECLS }
#else
#define NM_BEGIN_DECLS
#define NM_END_DECLS
#endif

/* NM_API marks every exported symbol; the library builds with
 * -fvisibility=hidden so nothing else leaks out of libnetmesh.so. */
#if defined(_WIN32)
#define NM_API __declspec(dllexport)
#elif defined(__GNUC__)
#define NM_API __attribute__((visibility("default")))
#else
#define NM_API
#endif

/* NM_NODISCARD sits on verifiers and decoders: ignoring their result is a
 * bug. */
#if defined(__GNUC__)
#define NM_NODISCARD __attribute__((warn_unused_result))
#else
#define NM_NODISCARD
#endif

#endif
