/*
 * tools/netmesh/cmd_log.c - `netmesh log`: RedEX logs on disk.
 *
 *   log append DIR CHANNEL [PAYLOAD...]   append each PAYLOAD (or each line
 *                                         of stdin), print each seq
 *   log tail DIR CHANNEL [--from SEQ] [--follow]
 *                                         print records (default: the last
 *                                         10); --follow keeps printing new
 *                                         ones as another process appends
 *   log check CHANNEL_DIR                 verify every record offline
 *   log dump CHANNEL_DIR [--from SEQ] [--hex]
 *
 * DIR is a manager directory (the channel lives in DIR/<channel
 * segments>); CHANNEL_DIR is one channel's directory (the one holding
 * `manifest`). check/dump/tail never modify the files and take no lock,
 * so they work while a writer runs. Exit codes: 0 ok, 1 failure (check:
 * corruption found), 2 usage.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netmesh.h>
#include <netmesh/redex.h>

static int
usage(void)
{
    return nm_cli_usage_error(
        "usage: netmesh log append DIR CHANNEL [PAYLOAD...] [--fsync "
        "always]\n"
        "       netmesh log tail DIR CHANNEL [--from SEQ] [--follow] "
        "[--hex]\n"
        "       netmesh log check CHANNEL_DIR\n"
        "       netmesh log dump CHANNEL_DIR [--from SEQ] [--hex]");
}

static int
parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+') {
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Payload as text: printable ASCII as is, '\\' doubled, the rest \xNN. */
static void
print_payload(FILE *f, const uint8_t *p, size_t n, bool hex)
{
    if (hex) {
        for (size_t i = 0; i < n; i++) {
            fprintf(f, "%02x", p[i]);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\') {
            fputs("\\\\", f);
        } else if (p[i] >= 0x20 && p[i] < 0x7f) {
            fputc(p[i], f);
        } else {
            fprintf(f, "\\x%02x", p[i]);
        }
    }
}

typedef struct print_opts {
    bool hex;
    bool full; /* dump: seq ts flags len payload; tail: seq payload */
} print_opts;

static int
print_cb(void *ctx, const nm_redex_event *ev)
{
    const print_opts *o = ctx;
    if (o->full) {
        printf("%llu\t%llu\t%s\t%zu\t", (unsigned long long)ev->seq,
               (unsigned long long)ev->timestamp_ns,
               (ev->flags & NM_REDEX_FLAG_INLINE) ? "inline" : "heap",
               ev->len);
    } else {
        printf("%llu\t", (unsigned long long)ev->seq);
    }
    print_payload(stdout, ev->payload, ev->len, o->hex);
    putchar('\n');
    return ferror(stdout) ? NM_EIO : 0;
}

/* ---------------------------------------------------------------- check */

static const char *
end_name(nm_redex_end e)
{
    switch (e) {
    case NM_REDEX_END_CLEAN:
        return "clean";
    case NM_REDEX_END_TORN:
        return "torn tail";
    case NM_REDEX_END_CORRUPT:
        return "CORRUPT";
    }
    return "?";
}

static int
cmd_check(int argc, char **argv)
{
    if (argc != 2) {
        return usage();
    }
    const char *dir = argv[1];
    nm_redex_check_report r;
    int rc = nm_redex_check(dir, &r);
    if (rc) {
        return nm_cli_fail(rc, "log check %s", dir);
    }
    bool corrupt = r.end == NM_REDEX_END_CORRUPT;
    printf("channel directory: %s\n", dir);
    if (!r.manifest_present) {
        printf("manifest: missing%s\n",
               r.generation == 0 ? " (legacy flat layout)" : "");
    } else if (r.manifest_valid) {
        printf("manifest: ok, generation %u\n", r.generation);
    } else {
        corrupt = true;
        printf("manifest: INVALID (%s)\n", r.manifest_error);
    }
    if (r.generation) {
        printf("generation: v%010u%s\n", r.generation,
               r.manifest_valid ? "" : " (the highest complete one)");
    }
    printf("files: idx %llu bytes, dat %llu bytes, ts %llu bytes\n",
           (unsigned long long)r.idx_bytes, (unsigned long long)r.dat_bytes,
           (unsigned long long)r.ts_bytes);
    if (r.records) {
        printf("records: %llu valid, seq %llu..%llu\n",
               (unsigned long long)r.records, (unsigned long long)r.first_seq,
               (unsigned long long)(r.first_seq + r.records - 1));
    } else {
        printf("records: none valid\n");
    }
    printf("end: %s\n", end_name(r.end));
    if (r.detail[0]) {
        printf("first bad record: %s\n", r.detail);
    }
    if (r.ts_missing) {
        printf("timestamps: %llu records have none (recovery fills them "
               "with the previous record's)\n",
               (unsigned long long)r.ts_missing);
    }
    if (r.quarantined) {
        printf("quarantined: %u earlier corrupt generation(s) kept as "
               "v<gen>.corrupt\n",
               r.quarantined);
    }
    if (r.records) {
        printf("recovery would keep: seq %llu..%llu (%llu records)",
               (unsigned long long)r.first_seq,
               (unsigned long long)(r.first_seq + r.records - 1),
               (unsigned long long)r.records);
    } else {
        printf("recovery would keep: nothing");
    }
    if (r.end == NM_REDEX_END_TORN) {
        printf(", cutting the incomplete last record");
    } else if (r.end == NM_REDEX_END_CORRUPT) {
        printf(", dropping the bad record and the %llu complete records "
               "after it",
               (unsigned long long)r.dropped);
    }
    printf("\nstatus: %s\n", corrupt ? "CORRUPT" : "ok");
    return corrupt ? NM_CLI_EXIT_FAIL : NM_CLI_EXIT_OK;
}

/* --from SEQ */
typedef struct from_opt {
    uint64_t seq;
    bool given;
} from_opt;

static int
from_arg(void *from, const char *name, const char *value)
{
    from_opt *f = from;
    if (parse_u64(value, &f->seq)) {
        return nm_cli_usage_error("--from takes a seq");
    }
    f->given = true;
    return 0;
}

/* ----------------------------------------------------------------- dump */

static int
cmd_dump(int argc, char **argv)
{
    const char *dir = NULL;
    from_opt from = {0};
    print_opts o = {.full = true};
    const nm_cli_opt opts[] = {
        NM_CLI_CALL("--from", &from, from_arg),
        NM_CLI_FLAG("--hex", &o.hex),
    };
    nm_cli_parser p = {.opts = opts,
                       .nopts = NM_CLI_LEN(opts),
                       .args = &dir,
                       .max_args = 1,
                       .usage = usage};
    int rc = nm_cli_parse(&p, argc, argv);
    if (rc != 0) {
        return rc;
    }
    if (!dir) {
        return usage();
    }
    nm_redex_reader *r;
    rc = nm_redex_reader_open(dir, from.seq, false, &r);
    if (rc) {
        return nm_cli_fail(rc, "log dump %s", dir);
    }
    int64_t n = nm_redex_reader_poll(r, print_cb, &o);
    nm_redex_reader_close(r);
    if (n < 0) {
        return nm_cli_fail((int)n, "log dump %s", dir);
    }
    return NM_CLI_EXIT_OK;
}

/* ----------------------------------------------------------------- tail */

static volatile sig_atomic_t stop_follow;

static void
on_signal(int sig)
{
    (void)sig;
    stop_follow = 1;
}

static char *
channel_path(const char *dir, const char *channel)
{
    size_t n = strlen(dir) + strlen(channel) + 2;
    char *p = malloc(n);
    if (p) {
        snprintf(p, n, "%s/%s", dir, channel);
    }
    return p;
}

static int
cmd_tail(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL}; /* DIR CHANNEL */
    from_opt from = {0};
    bool follow = false;
    print_opts o = {.full = false};
    const nm_cli_opt opts[] = {
        NM_CLI_CALL("--from", &from, from_arg),
        NM_CLI_FLAG("--follow", &follow),
        NM_CLI_FLAG("-f", &follow),
        NM_CLI_FLAG("--hex", &o.hex),
    };
    nm_cli_parser p = {.opts = opts,
                       .nopts = NM_CLI_LEN(opts),
                       .args = pos,
                       .max_args = 2,
                       .usage = usage};
    int rc = nm_cli_parse(&p, argc, argv);
    if (rc != 0) {
        return rc;
    }
    const char *dir = pos[0], *channel = pos[1];
    if (!dir || !channel) {
        return usage();
    }
    rc = nm_channel_name_validate(channel, strlen(channel));
    if (rc) {
        return nm_cli_fail(rc, "log tail: channel '%s'", channel);
    }
    char *cdir = channel_path(dir, channel);
    if (!cdir) {
        return nm_cli_fail(NM_ENOMEM, "log tail");
    }
    if (!from.given) {
        /* The last 10 records, like tail(1). */
        nm_redex_check_report cr;
        rc = nm_redex_check(cdir, &cr);
        if (rc) {
            free(cdir);
            return nm_cli_fail(rc, "log tail %s %s", dir, channel);
        }
        from.seq = cr.first_seq + (cr.records > 10 ? cr.records - 10 : 0);
    }
    nm_redex_reader *r;
    rc = nm_redex_reader_open(cdir, from.seq, true, &r);
    free(cdir);
    if (rc) {
        return nm_cli_fail(rc, "log tail %s %s", dir, channel);
    }
    if (follow) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
    int ret = NM_CLI_EXIT_OK;
    for (;;) {
        int64_t n = nm_redex_reader_poll(r, print_cb, &o);
        if (n < 0) {
            ret = nm_cli_fail((int)n, "log tail %s %s", dir, channel);
            break;
        }
        if (!follow || stop_follow) {
            break;
        }
        fflush(stdout);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
        if (stop_follow) {
            break;
        }
    }
    nm_redex_reader_close(r);
    return ret;
}

/* --------------------------------------------------------------- append */

static int
fsync_arg(void *always, const char *name, const char *value)
{
    if (!strcmp(value, "always")) {
        *(bool *)always = true;
    } else if (!strcmp(value, "never")) {
        *(bool *)always = false;
    } else {
        return nm_cli_usage_error("--fsync takes always|never");
    }
    return 0;
}

static int
cmd_append(int argc, char **argv)
{
    bool always = false;
    /* DIR CHANNEL PAYLOAD... */
    const char **pos = calloc((size_t)argc, sizeof(char *));
    if (!pos) {
        return nm_cli_fail(NM_ENOMEM, "log append");
    }
    const nm_cli_opt opts[] = {NM_CLI_CALL("--fsync", &always, fsync_arg)};
    nm_cli_parser p = {.opts = opts,
                       .nopts = NM_CLI_LEN(opts),
                       .flags = NM_CLI_DASHDASH | NM_CLI_DASH_IS_ARG,
                       .args = pos,
                       .max_args = (size_t)argc,
                       .usage = usage};
    int rc = nm_cli_parse(&p, argc, argv);
    if (rc == 0 && p.nargs < 2) {
        rc = usage();
    }
    if (rc != 0) {
        free(pos);
        return rc;
    }
    const char *dir = pos[0], *channel = pos[1];
    const char **payloads = pos + 2;
    int np = (int)p.nargs - 2;
    nm_redex_config cfg;
    nm_redex_config_init(&cfg);
    cfg.dir = dir;
    nm_redex *rx;
    rc = nm_redex_open(&cfg, &rx);
    if (rc) {
        free(pos);
        return nm_cli_fail(rc, "log append: open %s", dir);
    }
    nm_redex_file_config fc;
    nm_redex_file_config_init(&fc);
    fc.persistent = true;
    if (always) {
        fc.fsync = NM_REDEX_FSYNC_EVERY_N;
        fc.fsync_every_n = 1;
    }
    nm_redex_file *f;
    rc = nm_redex_open_file(rx, channel, &fc, &f);
    if (rc) {
        int r = nm_cli_fail(rc, "log append: open channel %s", channel);
        free(pos);
        nm_redex_close(rx);
        return r;
    }
    int ret = NM_CLI_EXIT_OK;
    uint64_t seq;
    if (np > 0) {
        for (int i = 0; i < np && ret == NM_CLI_EXIT_OK; i++) {
            rc = nm_redex_append(f, payloads[i], strlen(payloads[i]), &seq);
            if (rc) {
                ret = nm_cli_fail(rc, "log append");
            } else {
                printf("%llu\n", (unsigned long long)seq);
            }
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (ret == NM_CLI_EXIT_OK &&
               (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n') {
                n--;
            }
            rc = nm_redex_append(f, line, (size_t)n, &seq);
            if (rc) {
                ret = nm_cli_fail(rc, "log append");
            } else {
                printf("%llu\n", (unsigned long long)seq);
            }
        }
        free(line);
    }
    free(pos);
    rc = nm_redex_file_close(f); /* fsyncs */
    if (rc && ret == NM_CLI_EXIT_OK) {
        ret = nm_cli_fail(rc, "log append: close");
    }
    nm_redex_close(rx);
    return ret;
}

int
nm_cmd_log(int argc, char **argv)
{
    if (argc < 2) {
        return usage();
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "append")) {
        return cmd_append(argc - 1, argv + 1);
    }
    if (!strcmp(sub, "tail")) {
        return cmd_tail(argc - 1, argv + 1);
    }
    if (!strcmp(sub, "check")) {
        return cmd_check(argc - 1, argv + 1);
    }
    if (!strcmp(sub, "dump")) {
        return cmd_dump(argc - 1, argv + 1);
    }
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        usage();
        return NM_CLI_EXIT_OK;
    }
    return nm_cli_usage_error("log: unknown subcommand '%s'", sub);
}
