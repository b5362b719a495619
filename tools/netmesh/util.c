/* tools/netmesh/util.c - CLI helpers: errors, hex and hex key files. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <netmesh.h>

#include "core/core.h"

int
nm_cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("netmesh: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see 'netmesh --help')\n", stderr);
    return NM_CLI_EXIT_USAGE;
}

int
nm_cli_fail(int rc, const char *fmt, ...)
{
    va_list ap;
    fputs("netmesh: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    const char *d = nm_errdetail();
    if (d && *d) {
        fprintf(stderr, ": %s (%s)\n", nm_strerror(rc), d);
    } else {
        fprintf(stderr, ": %s\n", nm_strerror(rc));
    }
    return NM_CLI_EXIT_FAIL;
}

int
nm_cli_hex_decode(const char *hex, uint8_t *out, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int hi = nmi_hexval(hex[2 * i]);
        int lo = hi < 0 ? -1 : nmi_hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return hex[2 * len] == '\0' ? 0 : -1;
}

void
nm_cli_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int
nm_cli_hexfile_load(const char *path, uint8_t *out, size_t len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "netmesh: cannot open '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    char buf[256];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
                     buf[n - 1] == ' ' || buf[n - 1] == '\t')) {
        buf[--n] = '\0';
    }
    if (n != 2 * len || nm_cli_hex_decode(buf, out, len) != 0) {
        fprintf(stderr, "netmesh: '%s' must hold exactly %zu hex characters\n",
                path, 2 * len);
        return -1;
    }
    return 0;
}

int
nm_cli_hexfile_save(const char *path, const uint8_t *in, size_t len)
{
    char hex[2 * 64 + 2];
    if (len > 64) {
        return -1;
    }
    nm_cli_hex_encode(in, len, hex);
    strcat(hex, "\n");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "netmesh: cannot create '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    size_t want = strlen(hex);
    ssize_t w = write(fd, hex, want);
    int rc = (w == (ssize_t)want && fsync(fd) == 0) ? 0 : -1;
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "netmesh: cannot write '%s'\n", path);
    }
    return rc;
}
