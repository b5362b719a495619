/*
 * netmesh/error.h - the error model.
 *
 * Every fallible netmesh function returns int: NM_OK (0) on success, a
 * negative NM_E* code on failure (a few return a non-negative count or a
 * documented positive status instead; each says so). The codes come from one
 * table, NM_ERR_MAP, which also generates nm_strerror() and nm_err_name().
 *
 * Besides the code, the failing call leaves a human sentence in a
 * thread-local buffer, read with nm_errdetail(). Cryptographic and
 * verification failures are deliberately one code (NM_ECRYPTO) with a
 * generic detail, so an attacker learns nothing about why they failed.
 */
#ifndef NETMESH_ERROR_H
#define NETMESH_ERROR_H

#include <netmesh/common.h>

NM_BEGIN_DECLS

/* XX(name, value, message). Values are stable ABI: never renumber, only
 * append. */
#define NM_ERR_MAP(XX)                                                        \
    XX(EINVAL, -1, "invalid argument")                                        \
    XX(ENOMEM, -2, "out of memory")                                           \
    XX(EBACKPRESSURE, -3, "backpressure: no room, event not accepted")        \
    XX(ESAMPLED, -4, "event sampled out under backpressure")                  \
    XX(EUNROUTED, -5, "no route for the event")                               \
    XX(ESHUTDOWN, -6, "shutting down")                                        \
    XX(ECLOSED, -7, "closed")                                                 \
    XX(ETIMEDOUT, -8, "timed out")                                            \
    XX(ENOTCONN, -9, "not connected")                                         \
    XX(ECHANREJECTED, -10, "channel subscription rejected")                   \
    XX(EUNAUTHORIZED, -11, "unauthorized")                                    \
    XX(ERATELIMITED, -12, "rate limited")                                     \
    XX(ECRYPTO, -13, "cryptographic verification failed")                     \
    XX(EIO, -14, "input/output error")                                        \
    XX(EPROTO, -15, "protocol error")                                         \
    XX(ENOTFOUND, -16, "not found")                                           \
    XX(EEXIST, -17, "already exists")                                         \
    XX(ENOTSUP, -18, "not supported")                                         \
    XX(ETOOBIG, -19, "too large")                                             \
    XX(EDECODE, -20, "malformed input")                                       \
    XX(EAGAIN, -21, "nothing available now, try again")                       \
    XX(EBUSY, -22, "resource busy")                                           \
    XX(EEXPIRED, -23, "expired or not yet valid")                             \
    XX(ELAGGED, -24, "reader fell behind and missed data")                    \
    XX(ERANGE, -25, "value out of range")                                     \
    XX(EINTERNAL, -26, "internal error")

#define NM_OK 0

enum nm_err {
#define NM_ERR_ENUM_(name, value, msg) NM_##name = (value),
    NM_ERR_MAP(NM_ERR_ENUM_)
#undef NM_ERR_ENUM_
};

/* nm_strerror - a static English message for `code` (NM_OK included).
 * Unknown codes give "unknown error". Never NULL. Thread-safe. */
NM_API const char *nm_strerror(int code);

/* nm_err_name - the symbolic name of `code` ("NM_EINVAL", "NM_OK"), or
 * "NM_E?" for an unknown code. Never NULL. Thread-safe. */
NM_API const char *nm_err_name(int code);

/* nm_errdetail - the detail sentence left by the last failing netmesh call
 * on this thread ("" when none). The string is owned by the library and
 * valid until the next netmesh call on the same thread. Thread-safe: every
 * thread has its own buffer. */
NM_API const char *nm_errdetail(void);

/* nm_version - the runtime library version string ("0.1.0"). Compare with
 * NM_VERSION_STRING to detect a header/library mismatch. Thread-safe. */
NM_API const char *nm_version(void);

/* nm_version_hex - NM_VERSION_HEX of the library actually loaded. */
NM_API unsigned nm_version_hex(void);

NM_END_DECLS

#endif
