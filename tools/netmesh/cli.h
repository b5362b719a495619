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

/* ---- option parsing ------------------------------------------------------
 *
 * A command describes its options in a table and hands argv to
 * nm_cli_parse, which applies them in order and prints the usage errors:
 *
 *     bool json = false;
 *     const char *out = NULL;
 *     const nm_cli_opt opts[] = {NM_CLI_FLAG("--json", &json),
 *                                NM_CLI_STR("--out", &out)};
 *     nm_cli_parser p = {.opts = opts, .nopts = NM_CLI_LEN(opts),
 *                        .unknown = "new: unknown option '%s'"};
 *     int rc = nm_cli_parse(&p, argc, argv);  (argv[0]: the subcommand)
 *     if (rc != 0) return rc;
 *
 * An option's value is the next argument, whatever it looks like. */
typedef enum nm_cli_opt_kind {
    NM_CLI_OPT_FLAG,      /* --x:   *(bool *)ptr = true */
    NM_CLI_OPT_STR,       /* --x V: *(const char **)ptr = V (the last wins) */
    NM_CLI_OPT_LONG,      /* --x N: *(long *)ptr = N, decimal, in [min, max] */
    NM_CLI_OPT_LONG_LAX,  /* the same, but only N's leading number counts
                             (strtol(N, NULL, 10): "5x" is 5, "x" is 0) */
    NM_CLI_OPT_LIST,      /* --x V, repeatable: ((const char **)ptr)[n] = V */
    NM_CLI_OPT_CALL,      /* --x V: fn(ptr, "--x", V) */
    NM_CLI_OPT_CALL_FLAG, /* --x:   fn(ptr, "--x", NULL) */
} nm_cli_opt_kind;

typedef struct nm_cli_opt {
    const char *name; /* "--json", "-f" */
    nm_cli_opt_kind kind;
    void *ptr;
    long min, max; /* LONG*: the accepted range; LIST: the capacity */
    /* LONG*: the usage error for a value out of range (a printf format
     * given min and max, as long); LIST: when full (given max). */
    const char *bad;
    size_t *count; /* LIST: entries so far */
    /* CALL*: 0, or the exit code to stop with (after printing why). */
    int (*fn)(void *ptr, const char *name, const char *value);
} nm_cli_opt;

/* Table entries; the casts make the compiler check what ptr points to. */
/* clang-format off */
#define NM_CLI_FLAG(n, p) \
    {.name = (n), .kind = NM_CLI_OPT_FLAG, .ptr = (bool *){(p)}}
#define NM_CLI_STR(n, p) \
    {.name = (n), .kind = NM_CLI_OPT_STR, .ptr = (const char **){(p)}}
#define NM_CLI_LONG(n, p, lo, hi, msg) \
    {.name = (n), .kind = NM_CLI_OPT_LONG, .ptr = (long *){(p)}, \
     .min = (lo), .max = (hi), .bad = (msg)}
#define NM_CLI_LONG_LAX(n, p, lo, hi, msg) \
    {.name = (n), .kind = NM_CLI_OPT_LONG_LAX, .ptr = (long *){(p)}, \
     .min = (lo), .max = (hi), .bad = (msg)}
#define NM_CLI_LIST(n, arr, cnt, cap, msg) \
    {.name = (n), .kind = NM_CLI_OPT_LIST, .ptr = (const char **){(arr)}, \
     .count = (cnt), .max = (cap), .bad = (msg)}
#define NM_CLI_CALL(n, p, f) \
    {.name = (n), .kind = NM_CLI_OPT_CALL, .ptr = (p), .fn = (f)}
#define NM_CLI_CALL_FLAG(n, p, f) \
    {.name = (n), .kind = NM_CLI_OPT_CALL_FLAG, .ptr = (p), .fn = (f)}
/* clang-format on */
#define NM_CLI_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* nm_cli_parser.flags: */
/* The first positional argument ends the options: it and the rest are
 * argv[next..]. */
#define NM_CLI_STOP_AT_ARG 1u
/* "--" ends the options (else it is an unknown option). */
#define NM_CLI_DASHDASH 2u
/* "-" is a positional argument (else an unknown option). */
#define NM_CLI_DASH_IS_ARG 4u
/* Only "--..." are options: "-x" is a positional argument. */
#define NM_CLI_LONG_ONLY 8u

typedef struct nm_cli_parser {
    const nm_cli_opt *opts;
    size_t nopts;
    /* A second table searched after opts (NULL: none): options two
     * commands share live in one table, each command's own in another. */
    const nm_cli_opt *more;
    size_t nmore;
    unsigned flags;
    /* Positional arguments (without NM_CLI_STOP_AT_ARG) are stored in
     * args[0..max_args); one more is an error. */
    const char **args;
    size_t max_args;
    /* The usage errors, printf formats given the offending argument:
     * unknown (an unknown option), missing (an option without its value;
     * NULL: as unknown), extra (one positional argument too many; NULL: as
     * unknown). With unknown NULL as well, usage() prints it instead. */
    const char *unknown, *missing, *extra;
    int (*usage)(void);
    /* Set by nm_cli_parse: */
    size_t nargs; /* positional arguments stored in args */
    int next;     /* the first argument not parsed (argc when all were) */
} nm_cli_parser;

/* Parse argv[1..argc) (argv[0] is the (sub)command) against p. 0, or the
 * exit code of the usage error it printed. */
int nm_cli_parse(nm_cli_parser *p, int argc, char **argv);

/* A node id: 16 hex digits, 0x-prefixed hex, or decimal. 0 or -1. */
int nm_cli_node_id_parse(const char *s, uint64_t *out);

/* A peer named by --peer-key HEX --peer-id ID, and NM_CLI_CALL handlers
 * for both (ptr: the nm_cli_peer): "--peer-key takes 64 hex digits" and
 * "--peer-id: bad node id '<ID>'" are their usage errors. */
typedef struct nm_cli_peer {
    uint8_t key[32];
    uint64_t id;
    bool have_key, have_id;
} nm_cli_peer;
int nm_cli_opt_peer_key(void *peer, const char *name, const char *value);
int nm_cli_opt_peer_id(void *peer, const char *name, const char *value);

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
