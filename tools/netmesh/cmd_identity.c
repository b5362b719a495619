/*
 * tools/netmesh/cmd_identity.c - `netmesh identity new|show`.
 *
 * An identity file holds the 32-byte ed25519 seed as 64 lowercase hex
 * characters and a newline. It is created with mode 0600 and never
 * overwritten. The seed is the node's secret: see docs/security.md.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <netmesh.h>

static int
identity_usage(void)
{
    return nm_cli_usage_error(
        "usage: netmesh identity new --out FILE [--json]\n"
        "       netmesh identity show FILE [--json]");
}

int
nm_cli_identity_load(const char *path, nm_identity **out)
{
    char buf[2 * NM_IDENTITY_SEED_BYTES + 3];
    uint8_t seed[NM_IDENTITY_SEED_BYTES];
    struct stat st;
    int rc = -1;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "netmesh: cannot open identity file '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
        fprintf(stderr,
                "netmesh: warning: identity file '%s' is accessible by group "
                "or others (mode %04o); it holds a secret seed: chmod 600 "
                "it\n",
                path, (unsigned)(st.st_mode & 07777));
    }
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
        if (n == sizeof(buf) - 1) {
            break;
        }
    }
    close(fd);
    buf[n] = '\0';
    if (n == 2 * NM_IDENTITY_SEED_BYTES + 1 &&
        buf[2 * NM_IDENTITY_SEED_BYTES] == '\n') {
        buf[--n] = '\0';
    }
    if (n != 2 * NM_IDENTITY_SEED_BYTES ||
        nm_cli_hex_decode(buf, seed, sizeof(seed)) != 0) {
        fprintf(stderr,
                "netmesh: '%s' is not an identity file (expected 64 hex "
                "characters and a newline)\n",
                path);
    } else {
        int e = nm_identity_from_seed(seed, out);
        if (e != NM_OK) {
            nm_cli_fail(e, "cannot load identity");
        } else {
            rc = 0;
        }
    }
    sodium_memzero(buf, sizeof(buf));
    sodium_memzero(seed, sizeof(seed));
    return rc;
}

static void
print_ids(const nm_identity *id, bool json)
{
    uint8_t pk[NM_ENTITY_ID_BYTES];
    char hex[2 * NM_ENTITY_ID_BYTES + 1];
    uint64_t node_id = 0, origin = 0;

    (void)nm_identity_entity_id(id, pk);
    (void)nm_identity_node_id(id, &node_id);
    (void)nm_identity_origin_hash(id, &origin);
    nm_cli_hex_encode(pk, sizeof(pk), hex);
    if (json) {
        printf("{\"entity_id\":\"%s\",\"node_id\":\"%016llx\","
               "\"origin_hash\":\"%016llx\"}\n",
               hex, (unsigned long long)node_id, (unsigned long long)origin);
    } else {
        printf("entity_id    %s\nnode_id      %016llx\norigin_hash  %016llx\n",
               hex, (unsigned long long)node_id, (unsigned long long)origin);
    }
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int
identity_new(int argc, char **argv)
{
    const char *out = NULL;
    bool json = false;
    const nm_cli_opt opts[] = {
        NM_CLI_STR("--out", &out),
        NM_CLI_FLAG("--json", &json),
    };
    nm_cli_parser p = {
        .opts = opts, .nopts = NM_CLI_LEN(opts), .usage = identity_usage};
    int prc = nm_cli_parse(&p, argc, argv);
    if (prc != 0) {
        return prc;
    }
    if (out == NULL) {
        return identity_usage();
    }
    nm_identity *id = NULL;
    int rc = nm_identity_generate(&id);
    if (rc != NM_OK) {
        return nm_cli_fail(rc, "cannot generate an identity");
    }
    uint8_t seed[NM_IDENTITY_SEED_BYTES];
    char line[2 * NM_IDENTITY_SEED_BYTES + 2];
    (void)nm_identity_to_seed(id, seed);
    nm_cli_hex_encode(seed, sizeof(seed), line);
    sodium_memzero(seed, sizeof(seed));
    line[2 * NM_IDENTITY_SEED_BYTES] = '\n';
    line[2 * NM_IDENTITY_SEED_BYTES + 1] = '\0';

    /* O_EXCL: never overwrite (and never follow a planted symlink). The
     * mode is forced to 0600 whatever the umask says. */
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int status = NM_CLI_EXIT_OK;
    if (fd < 0) {
        fprintf(stderr, "netmesh: cannot create '%s': %s%s\n", out,
                strerror(errno),
                errno == EEXIST ? " (refusing to overwrite an identity)" : "");
        status = NM_CLI_EXIT_FAIL;
    } else {
        if (fchmod(fd, 0600) != 0 || write_all(fd, line, strlen(line)) != 0 ||
            fsync(fd) != 0) {
            fprintf(stderr, "netmesh: cannot write '%s': %s\n", out,
                    strerror(errno));
            status = NM_CLI_EXIT_FAIL;
        }
        if (close(fd) != 0 && status == NM_CLI_EXIT_OK) {
            fprintf(stderr, "netmesh: cannot write '%s': %s\n", out,
                    strerror(errno));
            status = NM_CLI_EXIT_FAIL;
        }
        if (status != NM_CLI_EXIT_OK) {
            unlink(out);
        }
    }
    sodium_memzero(line, sizeof(line));
    if (status == NM_CLI_EXIT_OK) {
        if (!json) {
            printf("wrote %s (mode 0600; it holds the secret seed)\n", out);
        }
        print_ids(id, json);
    }
    nm_identity_free(id);
    return status;
}

static int
identity_show(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false;
    const nm_cli_opt opts[] = {NM_CLI_FLAG("--json", &json)};
    nm_cli_parser p = {.opts = opts,
                       .nopts = NM_CLI_LEN(opts),
                       .args = &path,
                       .max_args = 1,
                       .usage = identity_usage};
    int prc = nm_cli_parse(&p, argc, argv);
    if (prc != 0) {
        return prc;
    }
    if (path == NULL) {
        return identity_usage();
    }
    nm_identity *id = NULL;
    if (nm_cli_identity_load(path, &id) != 0) {
        return NM_CLI_EXIT_FAIL;
    }
    print_ids(id, json);
    nm_identity_free(id);
    return NM_CLI_EXIT_OK;
}

int
nm_cmd_identity(int argc, char **argv)
{
    if (argc < 2) {
        return identity_usage();
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: netmesh identity new --out FILE [--json]\n"
               "       netmesh identity show FILE [--json]\n\n"
               "An identity file holds the 32-byte ed25519 seed as 64 hex "
               "characters;\nit is created with mode 0600 and never "
               "overwritten. Keep it secret.\n");
        return NM_CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "new")) {
        return identity_new(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "show")) {
        return identity_show(argc - 1, argv + 1);
    }
    return identity_usage();
}
