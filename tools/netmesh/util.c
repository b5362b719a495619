/* tools/netmesh/util.c - CLI helpers: errors, option parsing, node ids, hex
 * and hex key files. */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- option parsing ---------------------------------------------------- */

/* Report a bad argument with fmt, else unknown, else the usage text. */
static int
parse_error(const nm_cli_parser *p, const char *fmt, const char *arg)
{
    if (fmt == NULL) {
        fmt = p->unknown;
    }
    if (fmt == NULL) {
        return p->usage();
    }
    return nm_cli_usage_error(fmt, arg);
}

static bool
is_positional(const nm_cli_parser *p, const char *a)
{
    if (a[0] != '-') {
        return true;
    }
    if (a[1] == '\0') {
        return (p->flags & (NM_CLI_DASH_IS_ARG | NM_CLI_LONG_ONLY)) != 0;
    }
    return (p->flags & NM_CLI_LONG_ONLY) && a[1] != '-';
}

static const nm_cli_opt *
find_opt(const nm_cli_parser *p, const char *a)
{
    for (size_t k = 0; k < p->nopts; k++) {
        if (!strcmp(a, p->opts[k].name)) {
            return &p->opts[k];
        }
    }
    for (size_t k = 0; p->more != NULL && k < p->nmore; k++) {
        if (!strcmp(a, p->more[k].name)) {
            return &p->more[k];
        }
    }
    return NULL;
}

/* Apply o with value v (NULL for the flag kinds). 0 or an exit code. */
static int
apply_opt(const nm_cli_opt *o, const char *v)
{
    switch (o->kind) {
    case NM_CLI_OPT_FLAG:
        *(bool *)o->ptr = true;
        return 0;
    case NM_CLI_OPT_STR:
        *(const char **)o->ptr = v;
        return 0;
    case NM_CLI_OPT_LONG:
    case NM_CLI_OPT_LONG_LAX: {
        char *end;
        long n = strtol(v, &end, 10);
        if ((o->kind == NM_CLI_OPT_LONG && *end) || n < o->min || n > o->max) {
            return nm_cli_usage_error(o->bad, o->min, o->max);
        }
        *(long *)o->ptr = n;
        return 0;
    }
    case NM_CLI_OPT_LIST:
        if (*o->count >= (size_t)o->max) {
            return nm_cli_usage_error(o->bad, o->max);
        }
        ((const char **)o->ptr)[(*o->count)++] = v;
        return 0;
    case NM_CLI_OPT_CALL:
    case NM_CLI_OPT_CALL_FLAG:
        return o->fn(o->ptr, o->name, v);
    }
    return NM_CLI_EXIT_USAGE;
}

int
nm_cli_parse(nm_cli_parser *p, int argc, char **argv)
{
    bool only_args = false; /* after "--" */
    p->nargs = 0;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!only_args && (p->flags & NM_CLI_DASHDASH) && !strcmp(a, "--")) {
            if (p->flags & NM_CLI_STOP_AT_ARG) {
                i++;
                break;
            }
            only_args = true;
            continue;
        }
        if (only_args || is_positional(p, a)) {
            if (p->flags & NM_CLI_STOP_AT_ARG) {
                break;
            }
            if (p->nargs == p->max_args) {
                return parse_error(p, p->extra, a);
            }
            p->args[p->nargs++] = a;
            continue;
        }
        const nm_cli_opt *o = find_opt(p, a);
        bool flag = o != NULL && (o->kind == NM_CLI_OPT_FLAG ||
                                  o->kind == NM_CLI_OPT_CALL_FLAG);
        if (!flag && i + 1 >= argc) {
            return parse_error(p, p->missing, a);
        }
        if (o == NULL) {
            return parse_error(p, p->unknown, a);
        }
        int rc = apply_opt(o, flag ? NULL : argv[++i]);
        if (rc != 0) {
            return rc;
        }
    }
    p->next = i;
    return 0;
}

/* ---- node ids and peers ---------------------------------------------------
 */

int
nm_cli_node_id_parse(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v;
    if (strlen(s) == 16 && strspn(s, "0123456789abcdefABCDEF") == 16) {
        v = strtoull(s, &end, 16);
    } else if (!strncmp(s, "0x", 2) || !strncmp(s, "0X", 2)) {
        v = strtoull(s + 2, &end, 16);
    } else {
        v = strtoull(s, &end, 10);
    }
    if (errno != 0 || *end != '\0' || end == s) {
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int
nm_cli_opt_peer_key(void *peer, const char *name, const char *value)
{
    nm_cli_peer *p = peer;
    if (nm_cli_hex_decode(value, p->key, sizeof(p->key)) != 0) {
        return nm_cli_usage_error("--peer-key takes 64 hex digits");
    }
    p->have_key = true;
    return 0;
}

int
nm_cli_opt_peer_id(void *peer, const char *name, const char *value)
{
    nm_cli_peer *p = peer;
    if (nm_cli_node_id_parse(value, &p->id) != 0) {
        return nm_cli_usage_error("--peer-id: bad node id '%s'", value);
    }
    p->have_id = true;
    return 0;
}

/* ---- hex ------------------------------------------------------------------
 */

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
