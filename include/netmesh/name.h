/*
 * netmesh/name.h - channel names and their canonical 64-bit hash.
 *
 * A channel name is 1..255 bytes of [a-z0-9-_./] (lowercase only), does not
 * start or end with '/', contains no "//", and has no segment (between
 * '/') equal to "." or "..". These are upstream Net's rules; this is the one
 * place netmesh implements them.
 *
 * The canonical channel hash is XXH3-64 of the name bytes (no seed). Tokens,
 * auth and storage key on it; the 16-bit wire hint in a packet header is
 * its low 16 bits.
 */
#ifndef NETMESH_NAME_H
#define NETMESH_NAME_H

#include <netmesh/common.h>

NM_BEGIN_DECLS

/* Longest channel name in bytes. */
#define NM_CHANNEL_NAME_MAX 255

/* nm_channel_name_max - NM_CHANNEL_NAME_MAX, for FFI users. */
NM_API size_t nm_channel_name_max(void);

/* nm_channel_name_validate - check name[0..len) against the rules above.
 * name need not be NUL-terminated (an embedded NUL is simply an invalid
 * character). Returns NM_OK, or NM_EINVAL with a detail naming the broken
 * rule (nm_errdetail()). Thread-safe, no allocation. */
NM_API NM_NODISCARD int nm_channel_name_validate(const char *name, size_t len);

/* nm_channel_hash - validate name[0..len) and store its canonical hash
 * (XXH3-64 of the bytes) in *out. Errors: NM_EINVAL (invalid name, NULL
 * out). Thread-safe. */
NM_API NM_NODISCARD int nm_channel_hash(const char *name, size_t len,
                                        uint64_t *out);

NM_END_DECLS

#endif
