/*
 * tools/netmesh/cmd_channel.c - channels from the shell.
 *
 *   netmesh node ... --channel NAME [--channel NAME]...
 *       the node serves NAME: an open, reliable, Global channel other
 *       nodes subscribe to; it also publishes to NAME's subscribers every
 *       message a peer sends it on NAME's channel stream (the relay used
 *       by `netmesh channel publish`).
 *   netmesh channel subscribe --psk-file F --peer ADDR --peer-key HEX
 *       --peer-id ID --channel NAME [--identity F] [--token HEX]
 *       [--queue-group G] [--count N] [--listen ADDR]
 *       subscribes to NAME on the node at ADDR and prints every message as
 *       one line on stdout ("subscribed" goes to stderr once the Ack came);
 *       exits after N messages (default: on SIGINT / SIGTERM).
 *   netmesh channel publish --psk-file F --peer ADDR --peer-key HEX
 *       --peer-id ID --channel NAME [--identity F] [--listen ADDR]
 *       [MESSAGE...]
 *       sends each MESSAGE (or each stdin line when none is given) to the
 *       node at ADDR on NAME's channel stream, reliably; the node (running
 *       `netmesh node --channel NAME`) publishes them to its subscribers.
 *       Exits once the node acknowledged everything.
 *
 * The serving half (nm_cli_channel_*) is called by cmd_node.c.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "cmd_channel.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netmesh.h>

#include "wire/header.h"

/* ---- serving (netmesh node --channel) --------------------------------- */

#define SERVE_MAX 32

static struct {
    const char *names[SERVE_MAX];
    uint64_t streams[SERVE_MAX];
    size_t n;
    nm_channels_t *ch;
} serve;

int
nm_cli_channel_arg(const char *name)
{
    if (serve.n == SERVE_MAX) {
        return nm_cli_usage_error("at most %d --channel options", SERVE_MAX);
    }
    if (nm_channel_name_validate(name, strlen(name)) != NM_OK) {
        return nm_cli_usage_error("--channel %s: %s", name, nm_errdetail());
    }
    serve.names[serve.n++] = name;
    return 0;
}

int
nm_cli_channel_serve_open(nm_mesh_t *m)
{
    if (serve.n == 0) {
        return 0;
    }
    int rc = nm_channels_open(m, NULL, &serve.ch);
    if (rc != NM_OK) {
        return nm_cli_fail(rc, "channels");
    }
    for (size_t i = 0; i < serve.n; i++) {
        nm_channel_config c;
        nm_channel_config_init(&c, serve.names[i]);
        c.reliable = true;
        rc = nm_channels_register(serve.ch, &c);
        if (rc != NM_OK) {
            nm_channels_close(serve.ch);
            serve.ch = NULL;
            return nm_cli_fail(rc, "channel %s", serve.names[i]);
        }
        serve.streams[i] =
            nmi_wire_channel_stream_id(serve.names[i], strlen(serve.names[i]));
    }
    return 0;
}

bool
nm_cli_channel_relay(const nm_mesh_delivery *d)
{
    if (serve.ch == NULL) {
        return false;
    }
    for (size_t i = 0; i < serve.n; i++) {
        if (d->stream_id != serve.streams[i]) {
            continue;
        }
        const void *ptrs[256];
        size_t lens[256];
        for (size_t k = 0; k < d->count;) {
            size_t j = 0;
            for (; j < 256 && k + j < d->count; j++) {
                ptrs[j] = d->msgs[k + j].data;
                lens[j] = d->msgs[k + j].len;
            }
            nm_publish_report r;
            int rc = nm_channels_publish_many(serve.ch, serve.names[i], ptrs,
                                              lens, j, &r);
            if (rc != NM_OK || r.delivered < r.attempted) {
                fprintf(stderr, "netmesh: publish %s: %s, %zu/%zu delivered\n",
                        serve.names[i], rc ? nm_strerror(rc) : "ok",
                        r.delivered, r.attempted);
            }
            k += j;
        }
        return true;
    }
    return false;
}

void
nm_cli_channel_serve_close(void)
{
    nm_channels_close(serve.ch);
    serve.ch = NULL;
}

/* ---- client commands ---------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct chan_opts {
    const char *psk_file, *peer, *channel, *identity, *token, *group, *listen;
    nm_cli_peer node; /* --peer-key, --peer-id: the node at --peer */
    long count;
    char **msgs;
    int nmsgs;
} chan_opts;

static int
channel_usage(void)
{
    return nm_cli_usage_error(
        "usage: netmesh channel subscribe --psk-file F --peer ADDR "
        "--peer-key HEX --peer-id ID --channel NAME [--identity F] "
        "[--token HEX] [--queue-group G] [--count N] [--listen ADDR]\n"
        "       netmesh channel publish --psk-file F --peer ADDR --peer-key "
        "HEX --peer-id ID --channel NAME [--identity F] [--listen ADDR] "
        "[MESSAGE...]\n"
        "The node at ADDR runs `netmesh node --channel NAME`.");
}

static int
peer_id_arg(void *node, const char *name, const char *value)
{
    nm_cli_peer *p = node;
    if (nm_cli_node_id_parse(value, &p->id) != 0) {
        return nm_cli_usage_error("bad --peer-id %s", value);
    }
    p->have_id = true;
    return 0;
}

static int
parse(int argc, char **argv, bool publish, chan_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1:0";
    const nm_cli_opt both[] = {
        NM_CLI_STR("--psk-file", &o->psk_file),
        NM_CLI_STR("--peer", &o->peer),
        NM_CLI_CALL("--peer-key", &o->node, nm_cli_opt_peer_key),
        NM_CLI_CALL("--peer-id", &o->node, peer_id_arg),
        NM_CLI_STR("--channel", &o->channel),
        NM_CLI_STR("--identity", &o->identity),
        NM_CLI_STR("--listen", &o->listen),
    };
    const nm_cli_opt subscribe_only[] = {
        NM_CLI_STR("--token", &o->token),
        NM_CLI_STR("--queue-group", &o->group),
        NM_CLI_LONG_LAX("--count", &o->count, 1, LONG_MAX,
                        "--count takes a positive number"),
    };
    nm_cli_parser p = {
        .opts = both,
        .nopts = NM_CLI_LEN(both),
        .more = publish ? NULL : subscribe_only,
        .nmore = publish ? 0 : NM_CLI_LEN(subscribe_only),
        .flags = publish ? NM_CLI_STOP_AT_ARG | NM_CLI_DASHDASH : 0,
        .usage = channel_usage,
    };
    /* argv[0] is "channel", argv[1] the subcommand */
    int rc = nm_cli_parse(&p, argc - 1, argv + 1);
    if (rc != 0) {
        return rc;
    }
    o->msgs = argv + 1 + p.next;
    o->nmsgs = argc - 1 - p.next;
    if (!o->psk_file || !o->peer || !o->node.have_key || !o->node.have_id ||
        !o->channel) {
        return channel_usage();
    }
    if (nm_channel_name_validate(o->channel, strlen(o->channel)) != NM_OK) {
        return nm_cli_usage_error("--channel %s: %s", o->channel,
                                  nm_errdetail());
    }
    return 0;
}

static int
open_and_connect(const chan_opts *o, nm_mesh_t **out)
{
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    if (strlen(o->listen) >= sizeof(cfg.bind)) {
        return nm_cli_usage_error("--listen address too long");
    }
    snprintf(cfg.bind, sizeof(cfg.bind), "%s", o->listen);
    if (nm_cli_hexfile_load(o->psk_file, cfg.psk, 32) != 0) {
        return NM_CLI_EXIT_USAGE;
    }
    cfg.psk_set = true;
    nm_identity *id = NULL;
    if (o->identity != NULL && nm_cli_identity_load(o->identity, &id) != 0) {
        return NM_CLI_EXIT_USAGE;
    }
    cfg.identity = id;
    int rc = nm_mesh_open(&cfg, out);
    nm_identity_free(id);
    memset(cfg.psk, 0, sizeof(cfg.psk));
    if (rc != NM_OK) {
        return nm_cli_fail(rc, "open node on %s", o->listen);
    }
    rc = nm_mesh_connect_routed(*out, o->peer, o->node.key, o->node.id, 5000);
    if (rc != NM_OK) {
        nm_mesh_close(*out);
        return nm_cli_fail(rc, "connect %s", o->peer);
    }
    return 0;
}

static int
do_subscribe(const chan_opts *o)
{
    nm_token_chain chain;
    bool have_token = false;
    if (o->token != NULL) {
        uint8_t raw[NM_TOKEN_BYTES];
        nm_token t;
        if (nm_cli_hex_decode(o->token, raw, sizeof(raw)) != 0 ||
            nm_token_decode(raw, sizeof(raw), &t) != NM_OK) {
            return nm_cli_usage_error("--token takes a token as %d hex digits "
                                      "(netmesh token issue)",
                                      2 * NM_TOKEN_BYTES);
        }
        nm_token_chain_init(&chain);
        (void)nm_token_chain_push(&chain, &t);
        have_token = true;
    }
    nm_mesh_t *m = NULL;
    int rc = open_and_connect(o, &m);
    if (rc != 0) {
        return rc;
    }
    nm_channels_t *ch = NULL;
    rc = nm_channels_open(m, NULL, &ch);
    if (rc != NM_OK) {
        nm_mesh_close(m);
        return nm_cli_fail(rc, "channels");
    }
    nm_subscribe_opts so = {.size = sizeof(so),
                            .token = have_token ? &chain : NULL,
                            .queue_group = o->group};
    nm_channel_reason why = NM_CHAN_OK;
    rc = nm_channels_subscribe(ch, o->node.id, o->channel, &so, 0, &why);
    if (rc != NM_OK) {
        int r = nm_cli_fail(rc, "subscribe %s", o->channel);
        nm_channels_close(ch);
        nm_mesh_close(m);
        return r;
    }
    fprintf(stderr, "subscribed to %s on %016llx\n", o->channel,
            (unsigned long long)o->node.id);
    long got = 0;
    while (!stop_requested && (o->count == 0 || got < o->count)) {
        nm_channel_delivery *d = NULL;
        rc = nm_channels_recv(ch, 200, &d);
        if (rc == NM_ETIMEDOUT) {
            continue;
        }
        if (rc != NM_OK) {
            break;
        }
        for (size_t i = 0; i < d->count && (o->count == 0 || got < o->count);
             i++) {
            fwrite(d->msgs[i].data, 1, d->msgs[i].len, stdout);
            fputc('\n', stdout);
            got++;
        }
        fflush(stdout);
        nm_channel_delivery_free(d);
    }
    (void)nm_channels_unsubscribe(ch, o->node.id, o->channel, 1000, NULL);
    nm_channels_close(ch);
    nm_mesh_close(m);
    return NM_CLI_EXIT_OK;
}

static int
send_batch(nm_mesh_t *m, const chan_opts *o, uint64_t sid,
           const void *const *ptrs, const size_t *lens, size_t n)
{
    int rc = nm_mesh_send_with_retry(m, o->node.id, sid, ptrs, lens, n, 64);
    if (rc != NM_OK) {
        return nm_cli_fail(rc, "send to %s", o->peer);
    }
    return 0;
}

static int
do_publish(const chan_opts *o)
{
    nm_mesh_t *m = NULL;
    int rc = open_and_connect(o, &m);
    if (rc != 0) {
        return rc;
    }
    uint64_t sid = nmi_wire_channel_stream_id(o->channel, strlen(o->channel));
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    sc.reliability = NM_RELIABLE;
    sc.in_order = true;
    rc = nm_mesh_open_stream(m, o->node.id, sid, &sc);
    if (rc != NM_OK) {
        nm_mesh_close(m);
        return nm_cli_fail(rc, "open stream");
    }
    int out = 0;
    if (o->nmsgs > 0) {
        for (int i = 0; i < o->nmsgs && out == 0; i++) {
            const void *p = o->msgs[i];
            size_t l = strlen(o->msgs[i]);
            out = send_batch(m, o, sid, &p, &l, 1);
        }
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (out == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
            size_t l = (size_t)n;
            if (l > 0 && line[l - 1] == '\n') {
                l--;
            }
            const void *p = line;
            out = send_batch(m, o, sid, &p, &l, 1);
        }
        free(line);
    }
    /* wait (bounded) until the node acknowledged everything */
    for (int i = 0; out == 0 && i < 500; i++) {
        nm_stream_stats st;
        if (nm_mesh_stream_stats(m, o->node.id, sid, &st) != NM_OK ||
            st.in_flight == 0) {
            break;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    nm_mesh_close(m);
    return out;
}

int
nm_cmd_channel(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        if (argc >= 2) {
            printf("netmesh channel subscribe|publish: channels over the "
                   "mesh.\nThe publisher is a node started with `netmesh "
                   "node --channel NAME`:\nsubscribe joins NAME there and "
                   "prints each message as a line; publish\nsends MESSAGEs "
                   "(or stdin lines) to that node, which publishes them\nto "
                   "NAME's subscribers.\n");
            return NM_CLI_EXIT_OK;
        }
        return channel_usage();
    }
    bool publish = !strcmp(argv[1], "publish");
    if (!publish && strcmp(argv[1], "subscribe")) {
        return channel_usage();
    }
    chan_opts o;
    int rc = parse(argc, argv, publish, &o);
    if (rc != 0) {
        return rc;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return publish ? do_publish(&o) : do_subscribe(&o);
}
