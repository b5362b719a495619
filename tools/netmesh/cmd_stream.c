/*
 * tools/netmesh/cmd_stream.c - `netmesh emit` and `netmesh tail`: poke a
 * bus shared through Redis Streams or NATS JetStream from the shell.
 *
 *   netmesh emit --redis URL [--prefix P] [--shards N] [--nonce-file F]
 *                [--json] [EVENT ...]          (no EVENT: one per stdin line)
 *   netmesh tail --redis URL [--prefix P] [--shards N] [--from CURSOR]
 *                [--limit N] [--filter JSON] [--follow] [--json]
 *   (--jetstream URL instead of --redis URL for NATS JetStream)
 *
 * Producers and consumers must agree on --prefix and --shards (one stream
 * per shard); the CLI defaults to 4 shards on every machine so that two
 * shells agree without flags.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <netmesh.h>

#define CLI_DEFAULT_SHARDS 4

typedef struct stream_opts {
    const char *redis;
    const char *jetstream;
    const char *prefix;
    const char *nonce_file;
    const char *from;
    const char *filter;
    long shards;
    long limit;
    bool follow;
    bool json;
    int first_arg; /* index of the first positional argument */
} stream_opts;

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int
parse_opts(int argc, char **argv, bool tail, stream_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->shards = CLI_DEFAULT_SHARDS;
    o->limit = -1;
    const nm_cli_opt both[] = {
        NM_CLI_STR("--redis", &o->redis),
        NM_CLI_STR("--jetstream", &o->jetstream),
        NM_CLI_STR("--prefix", &o->prefix),
        NM_CLI_LONG("--shards", &o->shards, 1, NM_BUS_MAX_SHARDS,
                    "--shards takes %ld..%ld"),
        NM_CLI_FLAG("--json", &o->json),
    };
    const nm_cli_opt emit_only[] = {
        NM_CLI_STR("--nonce-file", &o->nonce_file),
    };
    const nm_cli_opt tail_only[] = {
        NM_CLI_STR("--from", &o->from),
        NM_CLI_STR("--filter", &o->filter),
        NM_CLI_LONG("--limit", &o->limit, 1, LONG_MAX,
                    "--limit takes a positive count"),
        NM_CLI_FLAG("--follow", &o->follow),
    };
    nm_cli_parser p = {
        .opts = tail ? tail_only : emit_only,
        .nopts = tail ? NM_CLI_LEN(tail_only) : NM_CLI_LEN(emit_only),
        .more = both,
        .nmore = NM_CLI_LEN(both),
        .flags = NM_CLI_STOP_AT_ARG | NM_CLI_DASHDASH | NM_CLI_DASH_IS_ARG,
        .unknown =
            tail ? "tail: unknown option '%s'" : "emit: unknown option '%s'",
    };
    int rc = nm_cli_parse(&p, argc, argv);
    if (rc != 0) {
        return rc;
    }
    o->first_arg = p.next;
    if (!o->redis == !o->jetstream) {
        return nm_cli_usage_error("%s needs exactly one of --redis URL or "
                                  "--jetstream URL",
                                  argv[0]);
    }
    if (tail && p.next < argc) {
        return nm_cli_usage_error("tail takes no positional arguments");
    }
    return 0;
}

static int
open_bus(const stream_opts *o, nm_bus **bus)
{
    static nm_redis_config rc;
    static nm_jetstream_config jc;
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = (uint32_t)o->shards;
    cfg.backpressure = NM_BP_BLOCK;
    cfg.block_timeout_ms = 30000;
    cfg.producer_nonce_path = o->nonce_file;
    if (o->redis) {
        nm_redis_config_init(&rc);
        rc.url = o->redis;
        if (o->prefix) {
            rc.prefix = o->prefix;
        }
        cfg.adapter = nm_adapter_redis();
        cfg.adapter_config = &rc;
    } else {
        nm_jetstream_config_init(&jc);
        jc.url = o->jetstream;
        if (o->prefix) {
            jc.prefix = o->prefix;
        }
        cfg.adapter = nm_adapter_jetstream();
        cfg.adapter_config = &jc;
    }
    int rc2 = nm_bus_open(&cfg, bus);
    if (rc2) {
        return nm_cli_fail(rc2, "cannot open the bus on %s",
                           o->redis ? o->redis : o->jetstream);
    }
    return 0;
}

static int
emit_one(nm_bus *bus, const stream_opts *o, const char *ev, size_t len,
         uint64_t *count)
{
    nm_receipt r;
    int rc = nm_bus_emit_raw(bus, ev, len, &r);
    if (rc) {
        return nm_cli_fail(rc, "emit");
    }
    if (o->json) {
        printf("{\"shard\":%u,\"seq\":%llu,\"timestamp\":%llu}\n", r.shard,
               (unsigned long long)r.seq, (unsigned long long)r.timestamp);
    }
    (*count)++;
    return 0;
}

int
nm_cmd_emit(int argc, char **argv)
{
    stream_opts o;
    int rc = parse_opts(argc, argv, false, &o);
    if (rc) {
        return rc;
    }
    nm_bus *bus;
    if ((rc = open_bus(&o, &bus))) {
        return rc;
    }
    uint64_t count = 0;
    if (o.first_arg < argc) {
        for (int i = o.first_arg; i < argc && !rc; i++) {
            rc = emit_one(bus, &o, argv[i], strlen(argv[i]), &count);
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (!rc && (n = getline(&line, &cap, stdin)) >= 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
                line[--n] = '\0';
            }
            if (n > 0) {
                rc = emit_one(bus, &o, line, (size_t)n, &count);
            }
        }
        free(line);
    }
    int frc = nm_bus_shutdown(bus, 60000);
    nm_bus_stats st;
    nm_bus_stats_get(bus, &st);
    nm_bus_close(bus);
    if (!rc && (frc || st.dropped)) {
        fprintf(stderr,
                "netmesh: emit: %llu of %llu events were not stored "
                "(dropped after retries)\n",
                (unsigned long long)st.dropped, (unsigned long long)count);
        rc = NM_CLI_EXIT_FAIL;
    }
    if (!rc) {
        fprintf(stderr, "emitted %llu events\n", (unsigned long long)count);
    }
    return rc;
}

static void
print_event(const stream_opts *o, const nm_event *e)
{
    if (o->json) {
        printf("{\"shard\":%u,\"id\":\"%s\",\"timestamp\":%llu,\"data\":",
               e->shard, e->id, (unsigned long long)e->timestamp);
        /* JSON data is embedded as is; other bytes as a JSON string (or
         * null when they are not even UTF-8). */
        json_t *v =
            json_loadb((const char *)e->data, e->len, JSON_DECODE_ANY, NULL);
        if (v) {
            json_decref(v);
            fwrite(e->data, 1, e->len, stdout);
        } else {
            json_t *str = json_stringn((const char *)e->data, e->len);
            char *enc = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
            fputs(enc ? enc : "null", stdout);
            free(enc);
            json_decref(str);
        }
        printf("}\n");
    } else {
        fwrite(e->data, 1, e->len, stdout);
        putchar('\n');
    }
}

int
nm_cmd_tail(int argc, char **argv)
{
    stream_opts o;
    int rc = parse_opts(argc, argv, true, &o);
    if (rc) {
        return rc;
    }
    nm_filter *filter = NULL;
    if (o.filter && (rc = nm_filter_parse(o.filter, &filter))) {
        return nm_cli_usage_error("--filter: %s", nm_errdetail());
    }
    nm_bus *bus;
    if ((rc = open_bus(&o, &bus))) {
        nm_filter_free(filter);
        return rc;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    char *cursor = o.from ? strdup(o.from) : NULL;
    long printed = 0;
    unsigned backoff_ms = 1;
    rc = 0;
    while (!stop_requested) {
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = 1000;
        if (o.limit > 0 && o.limit - printed < 1000) {
            req.limit = (size_t)(o.limit - printed);
        }
        req.cursor = cursor;
        req.filter = filter;
        nm_poll_response resp;
        int prc = nm_bus_poll(bus, &req, &resp);
        if (prc) {
            rc = nm_cli_fail(prc, "poll");
            break;
        }
        for (size_t i = 0; i < resp.count; i++) {
            print_event(&o, &resp.events[i]);
        }
        printed += (long)resp.count;
        free(cursor);
        cursor = strdup(resp.next_cursor);
        bool more = resp.has_more;
        nm_poll_response_free(&resp);
        fflush(stdout);
        if (o.limit > 0 && printed >= o.limit) {
            break;
        }
        if (more) {
            backoff_ms = 1;
            continue;
        }
        if (!o.follow) {
            break;
        }
        /* Caught up: poll again with backoff, 1 ms doubling to 100 ms. */
        struct timespec ts = {0, (long)backoff_ms * 1000000L};
        nanosleep(&ts, NULL);
        backoff_ms = backoff_ms * 2 > 100 ? 100 : backoff_ms * 2;
    }
    if (cursor) {
        fprintf(stderr, "cursor: %s\n", cursor);
    }
    free(cursor);
    nm_bus_close(bus);
    nm_filter_free(filter);
    return rc;
}
