/*
 * tools/netmesh/cli.h - shared helpers of the netmesh CLI.
 *
 * Exit codes: 0 success, 1 failure of the operation (e.g. a token that does
 * not verify), 2 usage error.
 */
#ifndef NM_CLI_H
#define NM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NM_CLI_EXIT_OK 0
#define NM_CLI_EXIT_FAIL 1
#define NM_CLI_EXIT_USAGE 2

/* Print "netmesh: <msg>" to stderr and return NM_CLI_EXIT_USAGE. */
int nm_cli_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* Print "netmesh: <msg>: <nm_strerror(rc)> (<detail>)" and return
 * NM_CLI_EXIT_FAIL. */
int nm_cli_fail(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse exactly 2*len lowercase/uppercase hex digits into out. 0 or -1. */
int nm_cli_hex_decode(const char *hex, uint8_t *out, size_t len);
/* Write 2*len lowercase hex digits + NUL into out (size >= 2*len+1). */
void nm_cli_hex_encode(const uint8_t *in, size_t len, char *out);

/* A file holding exactly 2*len hex characters (surrounding newline and
 * spaces allowed): 0, or -1 after printing the reason. */
int nm_cli_hexfile_load(const char *path, uint8_t *out, size_t len);
/* Create path (O_EXCL, mode 0600) with 2*len hex characters + newline. */
int nm_cli_hexfile_save(const char *path, const uint8_t *in, size_t len);

typedef struct nm_identity nm_identity;
/* Load an identity file (64 lowercase hex characters + newline, mode 0600;
 * cmd_identity.c). 0 on success (*out owns the identity, nm_identity_free),
 * -1 after printing the reason. */
int nm_cli_identity_load(const char *path, nm_identity **out);

typedef struct nm_capset nm_capset;
/* Load a CapabilitySet JSON file (cmd_caps.c). 0 on success (*out:
 * nm_capset_free), -1 after printing the reason. */
int nm_cli_caps_load(const char *path, nm_capset **out);

/* Subcommands: argv[0] is the subcommand name. */
int nm_cmd_demo(int argc, char **argv);
int nm_cmd_bench(int argc, char **argv);
int nm_cmd_identity(int argc, char **argv);
int nm_cmd_token(int argc, char **argv);
int nm_cmd_emit(int argc, char **argv);
int nm_cmd_log(int argc, char **argv);
int nm_cmd_predicate(int argc, char **argv);
int nm_cmd_caps(int argc, char **argv);
int nm_cmd_db(int argc, char **argv);
int nm_cmd_tail(int argc, char **argv);
int nm_cmd_node(int argc, char **argv);
int nm_cmd_ping(int argc, char **argv);
int nm_cmd_channel(int argc, char **argv);

#endif
