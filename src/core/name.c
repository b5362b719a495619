/*
 * src/core/name.c - channel name validation and the canonical channel hash
 * (see include/netmesh/name.h). The one place netmesh checks names.
 */
#include "core/core.h"

#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <netmesh/name.h>

size_t
nm_channel_name_max(void)
{
    return NM_CHANNEL_NAME_MAX;
}

static bool
name_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '/';
}

int
nm_channel_name_validate(const char *name, size_t len)
{
    if (name == NULL || len == 0) {
        return nmi_err(NM_EINVAL, "channel name is empty");
    }
    if (len > NM_CHANNEL_NAME_MAX) {
        return nmi_err(NM_EINVAL, "channel name too long (%zu > %d bytes)",
                       len, NM_CHANNEL_NAME_MAX);
    }
    if (name[0] == '/' || name[len - 1] == '/') {
        return nmi_err(NM_EINVAL,
                       "channel name must not start or end with '/'");
    }
    size_t seg_start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len) {
            unsigned char c = (unsigned char)name[i];
            if (c >= 'A' && c <= 'Z') {
                return nmi_err(NM_EINVAL,
                               "channel name has uppercase '%c' at byte "
                               "%zu; names are lowercase only",
                               c, i);
            }
            if (!name_char_ok(c)) {
                return nmi_err(NM_EINVAL,
                               "channel name has invalid byte 0x%02x at "
                               "%zu (allowed: a-z 0-9 - _ . /)",
                               c, i);
            }
            if (c != '/') {
                continue;
            }
        }
        /* End of a segment: name[seg_start .. i). */
        size_t seg_len = i - seg_start;
        if (seg_len == 0) {
            return nmi_err(NM_EINVAL, "channel name must not contain '//'");
        }
        if ((seg_len == 1 && name[seg_start] == '.') ||
            (seg_len == 2 && name[seg_start] == '.' &&
             name[seg_start + 1] == '.')) {
            return nmi_err(NM_EINVAL,
                           "channel name segment '%.*s' is reserved",
                           (int)seg_len, name + seg_start);
        }
        seg_start = i + 1;
    }
    return NM_OK;
}

int
nm_channel_hash(const char *name, size_t len, uint64_t *out)
{
    if (out == NULL) {
        return nmi_err(NM_EINVAL, "channel_hash: NULL out");
    }
    int rc = nm_channel_name_validate(name, len);
    if (rc != NM_OK) {
        return rc;
    }
    *out = (uint64_t)XXH3_64bits(name, len);
    return NM_OK;
}
