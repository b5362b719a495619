/*
 * src/bus/nonce.c - the persistent producer nonce (upstream's
 * dedup_state.rs): a 9-byte file [0x01][u64 LE nonce], created atomically.
 */
#define _GNU_SOURCE
#include <netmesh/dedup.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/core.h"

static int
read_nonce(int fd, const char *path, uint64_t *nonce)
{
    uint8_t buf[NM_NONCE_FILE_BYTES + 1];
    ssize_t n, got = 0;
    while ((n = read(fd, buf + got, sizeof(buf) - (size_t)got)) > 0) {
        got += n;
    }
    if (n < 0) {
        return nmi_err(NM_EIO, "reading %s: %s", path, strerror(errno));
    }
    if (got != NM_NONCE_FILE_BYTES) {
        return nmi_err(NM_EDECODE,
                       "%s holds %zd bytes, a nonce file holds exactly %d: "
                       "not replacing it",
                       path, got, NM_NONCE_FILE_BYTES);
    }
    if (buf[0] != 0x01) {
        return nmi_err(NM_EDECODE,
                       "%s has nonce file version %u, expected 1: not "
                       "replacing it",
                       path, buf[0]);
    }
    uint64_t v = nmi_load_le64(buf + 1);
    if (v == 0) {
        return nmi_err(NM_EDECODE, "%s holds a zero nonce: not replacing it",
                       path);
    }
    *nonce = v;
    return NM_OK;
}

static int
fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy) {
        return NM_ENOMEM;
    }
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (dfd < 0) {
        return NM_EIO;
    }
    int rc = fsync(dfd) == 0 ? NM_OK : NM_EIO;
    close(dfd);
    return rc;
}

int
nm_producer_nonce_load(const char *path, uint64_t *nonce)
{
    if (!path || !*path || !nonce) {
        return nmi_err(NM_EINVAL, "path and nonce must be given");
    }
    if (sodium_init() < 0) {
        return nmi_err(NM_EINTERNAL, "libsodium failed to initialise");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        int rc = read_nonce(fd, path, nonce);
        close(fd);
        return rc;
    }
    if (errno != ENOENT) {
        return nmi_err(NM_EIO, "opening %s: %s", path, strerror(errno));
    }
    /* Create: write <path>.tmp, fsync, rename over, fsync the directory. */
    uint64_t v;
    do {
        randombytes_buf(&v, sizeof(v));
    } while (v == 0);
    uint8_t buf[NM_NONCE_FILE_BYTES];
    buf[0] = 0x01;
    nmi_store_le64(buf + 1, v);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        return nmi_err(NM_ENOMEM, "nonce path");
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return nmi_err(NM_EIO,
                       "creating %s.tmp: %s (does the directory "
                       "exist?)",
                       path, strerror(e));
    }
    bool ok =
        write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf) && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return nmi_err(NM_EIO, "writing %s: %s", path, strerror(e));
    }
    free(tmp);
    if (fsync_dir_of(path) != NM_OK) {
        return nmi_err(NM_EIO, "fsync of the directory of %s failed", path);
    }
    *nonce = v;
    return NM_OK;
}
