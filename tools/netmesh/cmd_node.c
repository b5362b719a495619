/*
 * tools/netmesh/cmd_node.c - `netmesh node` (run an encrypted mesh node
 * until signalled) and `netmesh ping` (handshake + RTT samples against a
 * node running --echo).
 *
 *   netmesh node --listen ADDR --psk-file F [--identity F] [--static-key F]
 *                [--peer ADDR --peer-key HEX --peer-id ID]... [--routed]
 *                [--accept-any] [--echo] [--json-events]
 *                [--heartbeat-ms N] [--session-timeout-ms N] [--caps FILE]
 *                [--channel NAME]... (serve channels: cmd_channel.c)
 *   netmesh ping ADDR --psk-file F --peer-key HEX --peer-id ID
 *                [--count N] [--interval-ms N] [--timeout-ms N] [--direct]
 *                [--listen ADDR] [--json]
 *
 * --json-events prints one JSON object per line on stdout:
 *   {"event":"listening","addr":"…","node_id":"<16 hex>",
 *    "static_pubkey":"<64 hex>"}
 *   {"event":"peer_up","node_id":"<16 hex>"} / {"event":"peer_down",…}
 * node ids are the u64 in 16 lowercase hex digits (most significant
 * first); --peer-id takes that form (or 0x-prefixed hex, or decimal).
 * --static-key F: the X25519 private key as 64 hex; created (mode 0600)
 * when F does not exist, so the public key survives restarts.
 * Every node runs capability discovery (netmesh/discovery.h: it indexes
 * and forwards announcements); --caps FILE announces the CapabilitySet
 * JSON in FILE (the form `netmesh caps validate` reads).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "cmd_channel.h"

#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netmesh.h>

#define MAX_PEERS 64
#define PING_STREAM UINT64_C(0x70696e67) /* "ping" */

typedef struct peer_arg {
    const char *addr;
    nm_cli_peer node; /* --peer-key, --peer-id */
    bool connected;
    uint64_t next_try_ms;
} peer_arg;

typedef struct node_opts {
    const char *listen;
    const char *psk_file;
    const char *identity;
    const char *static_key;
    const char *caps_file;
    peer_arg peers[MAX_PEERS];
    size_t npeers;
    bool ping; /* parsing the options of `netmesh ping` */
    bool accept_any, echo, json, routed, direct;
    long heartbeat_ms, session_timeout_ms;
    /* ping */
    const char *target;
    long count, interval_ms, timeout_ms;
} node_opts;

static volatile sig_atomic_t stop_requested;

static void
on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void
install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* --peer ADDR adds a peer; --peer-key and --peer-id apply to the last one
 * (ping: to its only peer, which the first of them adds). */
static int
peer_add(void *opts, const char *name, const char *value)
{
    node_opts *o = opts;
    if (o->npeers == MAX_PEERS) {
        return nm_cli_usage_error("at most %d --peer", MAX_PEERS);
    }
    o->peers[o->npeers++].addr = value;
    return 0;
}

static int
peer_key_or_id(void *opts, const char *name, const char *value)
{
    node_opts *o = opts;
    if (o->ping && o->npeers == 0) {
        o->npeers = 1;
    }
    if (o->npeers == 0) {
        return nm_cli_usage_error("%s must follow --peer", name);
    }
    nm_cli_peer *p = &o->peers[o->npeers - 1].node;
    return !strcmp(name, "--peer-key") ? nm_cli_opt_peer_key(p, name, value)
                                       : nm_cli_opt_peer_id(p, name, value);
}

static int
channel_add(void *unused, const char *name, const char *value)
{
    return nm_cli_channel_arg(value);
}

static int
parse_opts(int argc, char **argv, bool ping, node_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ping = ping;
    o->count = 5;
    o->interval_ms = 200;
    o->timeout_ms = 2000;
    const nm_cli_opt node_only[] = {
        NM_CLI_STR("--static-key", &o->static_key),
        NM_CLI_CALL("--channel", NULL, channel_add),
        NM_CLI_STR("--caps", &o->caps_file),
        NM_CLI_CALL("--peer", o, peer_add),
        NM_CLI_FLAG("--accept-any", &o->accept_any),
        NM_CLI_FLAG("--echo", &o->echo),
        NM_CLI_FLAG("--json-events", &o->json),
        NM_CLI_FLAG("--routed", &o->routed),
        NM_CLI_LONG("--heartbeat-ms", &o->heartbeat_ms, 5, 86400000L,
                    "--heartbeat-ms takes a number >= %ld"),
        NM_CLI_LONG("--session-timeout-ms", &o->session_timeout_ms, 10,
                    86400000L, "--session-timeout-ms takes a number >= %ld"),
    };
    const nm_cli_opt both[] = {
        NM_CLI_STR("--listen", &o->listen),
        NM_CLI_STR("--psk-file", &o->psk_file),
        NM_CLI_STR("--identity", &o->identity),
        NM_CLI_CALL("--peer-key", o, peer_key_or_id),
        NM_CLI_CALL("--peer-id", o, peer_key_or_id),
    };
    const nm_cli_opt ping_only[] = {
        NM_CLI_FLAG("--json", &o->json),
        NM_CLI_FLAG("--direct", &o->direct),
        NM_CLI_LONG_LAX("--count", &o->count, 0, 100000,
                        "--count takes 0..100000"),
        NM_CLI_LONG_LAX("--interval-ms", &o->interval_ms, 0, LONG_MAX,
                        "--interval-ms takes >= 0"),
        NM_CLI_LONG_LAX("--timeout-ms", &o->timeout_ms, 1, LONG_MAX,
                        "--timeout-ms takes > 0"),
    };
    nm_cli_parser p = {
        .opts = ping ? ping_only : node_only,
        .nopts = ping ? NM_CLI_LEN(ping_only) : NM_CLI_LEN(node_only),
        .more = both,
        .nmore = NM_CLI_LEN(both),
        .args = &o->target,
        .max_args = ping ? 1 : 0,
        .unknown = "unknown or incomplete option '%s'",
    };
    int rc = nm_cli_parse(&p, argc, argv);
    if (rc != 0) {
        return rc;
    }
    if (o->psk_file == NULL) {
        return nm_cli_usage_error("--psk-file is required");
    }
    if (!ping && o->listen == NULL) {
        return nm_cli_usage_error("--listen ADDR is required");
    }
    if (ping) {
        if (o->target == NULL) {
            return nm_cli_usage_error("ping needs the peer's ADDR");
        }
        if (o->npeers == 0) {
            return nm_cli_usage_error("ping needs --peer-key and --peer-id");
        }
        o->peers[0].addr = o->target;
    }
    for (size_t i = 0; i < o->npeers; i++) {
        if (!o->peers[i].node.have_key || !o->peers[i].node.have_id) {
            return nm_cli_usage_error(
                "peer %s needs --peer-key HEX and --peer-id ID",
                o->peers[i].addr ? o->peers[i].addr : "?");
        }
    }
    return 0;
}

/* Build the node config from the options (identity and keys loaded). */
static int
open_mesh(const node_opts *o, const char *listen, nm_mesh_t **out)
{
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    if (strlen(listen) >= sizeof(cfg.bind)) {
        return nm_cli_usage_error("--listen address too long");
    }
    snprintf(cfg.bind, sizeof(cfg.bind), "%s", listen);
    if (nm_cli_hexfile_load(o->psk_file, cfg.psk, 32) != 0) {
        return NM_CLI_EXIT_USAGE;
    }
    cfg.psk_set = true;
    nm_identity *id = NULL;
    if (o->identity != NULL) {
        if (nm_cli_identity_load(o->identity, &id) != 0) {
            return NM_CLI_EXIT_FAIL;
        }
        cfg.identity = id;
    }
    if (o->static_key != NULL) {
        if (access(o->static_key, F_OK) == 0) {
            if (nm_cli_hexfile_load(o->static_key, cfg.static_key, 32) != 0) {
                nm_identity_free(id);
                return NM_CLI_EXIT_FAIL;
            }
        } else {
            uint8_t pub[32];
            if (nm_mesh_static_keygen(pub, cfg.static_key) != NM_OK ||
                nm_cli_hexfile_save(o->static_key, cfg.static_key, 32) != 0) {
                nm_identity_free(id);
                return NM_CLI_EXIT_FAIL;
            }
        }
        cfg.static_key_set = true;
    }
    if (o->heartbeat_ms) {
        cfg.heartbeat_ms = (uint32_t)o->heartbeat_ms;
    }
    if (o->session_timeout_ms) {
        cfg.session_timeout_ms = (uint32_t)o->session_timeout_ms;
    }
    cfg.accept_any = o->accept_any;
    int rc = nm_mesh_open(&cfg, out);
    nm_identity_free(id);
    memset(cfg.psk, 0, sizeof(cfg.psk));
    memset(cfg.static_key, 0, sizeof(cfg.static_key));
    if (rc != NM_OK) {
        return nm_cli_fail(rc, "cannot start the node on %s", listen);
    }
    return 0;
}

static void
print_listening(nm_mesh_t *m, bool json)
{
    char addr[64] = "?";
    uint8_t pub[32];
    char hex[65];
    nm_mesh_local_addr(m, addr, sizeof(addr));
    nm_mesh_static_pubkey(m, pub);
    nm_cli_hex_encode(pub, 32, hex);
    unsigned long long id = (unsigned long long)nm_mesh_node_id(m);
    if (json) {
        printf("{\"event\":\"listening\",\"addr\":\"%s\",\"node_id\":"
               "\"%016llx\",\"static_pubkey\":\"%s\"}\n",
               addr, id, hex);
    } else {
        printf("listening on %s\n  node_id       %016llx\n  static_pubkey "
               "%s\n",
               addr, id, hex);
    }
    fflush(stdout);
}

static void
print_event(const nm_mesh_event *ev, bool json)
{
    if (ev->kind != NM_MESH_EV_PEER_UP && ev->kind != NM_MESH_EV_PEER_DOWN) {
        if (!json) {
            printf("%s %016llx\n", nm_mesh_event_name(ev->kind),
                   (unsigned long long)ev->peer);
            fflush(stdout);
        }
        return;
    }
    if (json) {
        printf("{\"event\":\"%s\",\"node_id\":\"%016llx\"}\n",
               nm_mesh_event_name(ev->kind), (unsigned long long)ev->peer);
    } else {
        printf("%s %016llx\n", nm_mesh_event_name(ev->kind),
               (unsigned long long)ev->peer);
    }
    fflush(stdout);
}

/* Direct first (the peer must know our id: it lists us with --peer-id),
 * then the routed one-hop form, which a peer running --accept-any takes
 * from anyone holding the PSK. --routed skips the direct attempt. */
static int
connect_auto(nm_mesh_t *m, bool routed_only, const peer_arg *p)
{
    int rc = NM_ETIMEDOUT;
    if (!routed_only) {
        rc = nm_mesh_connect(m, p->addr, p->node.key, p->node.id, 2000);
    }
    if (rc == NM_ETIMEDOUT) {
        rc = nm_mesh_connect_routed(m, p->addr, p->node.key, p->node.id, 0);
    }
    return rc;
}

static void
try_connect(nm_mesh_t *m, node_opts *o, peer_arg *p, bool json)
{
    int rc = connect_auto(m, o->routed, p);
    if (rc == NM_OK) {
        p->connected = true;
        return;
    }
    p->next_try_ms = now_ms() + 2000;
    if (json) {
        printf("{\"event\":\"connect_failed\",\"node_id\":\"%016llx\","
               "\"addr\":\"%s\",\"error\":\"%s\"}\n",
               (unsigned long long)p->node.id, p->addr, nm_err_name(rc));
        fflush(stdout);
    } else {
        fprintf(stderr, "netmesh: connect %s: %s (%s); retrying\n", p->addr,
                nm_strerror(rc), nm_errdetail());
    }
}

static void
echo_back(nm_mesh_t *m, const nm_mesh_delivery *d)
{
    const void *ptrs[256];
    size_t lens[256];
    size_t i = 0;
    while (i < d->count) {
        size_t k = 0;
        for (; k < 256 && i + k < d->count; k++) {
            ptrs[k] = d->msgs[i + k].data;
            lens[k] = d->msgs[i + k].len;
        }
        int rc = nm_mesh_send_with_retry(m, d->peer, d->stream_id, ptrs, lens,
                                         k, 64);
        if (rc != NM_OK) {
            fprintf(stderr, "netmesh: echo to %016llx: %s\n",
                    (unsigned long long)d->peer, nm_strerror(rc));
            return;
        }
        i += k;
    }
}

int
nm_cmd_node(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: netmesh node --listen ADDR --psk-file F [--identity F] "
               "[--static-key F]\n"
               "         [--peer ADDR --peer-key HEX --peer-id ID]... "
               "[--routed] [--accept-any]\n"
               "         [--echo] [--json-events] [--heartbeat-ms N] "
               "[--session-timeout-ms N]\n"
               "         [--caps FILE] [--channel NAME]...\n\n"
               "Runs an encrypted mesh node until SIGINT/SIGTERM. The PSK "
               "file holds 64 hex\ncharacters. --static-key keeps the Noise "
               "static key in F (created when\nmissing). --accept-any "
               "accepts handshakes from any node holding the PSK.\n--echo "
               "sends every message back to its sender on the same stream. "
               "Each --peer is\ntried with the direct handshake, then the "
               "routed one-hop form; --routed\nskips the direct "
               "attempt. --caps announces the CapabilitySet JSON in FILE "
               "to the\nmesh (every node indexes and forwards "
               "announcements).\n");
        return NM_CLI_EXIT_OK;
    }
    node_opts o;
    int rc = parse_opts(argc, argv, false, &o);
    if (rc != 0) {
        return rc;
    }
    install_signals();
    nm_capset *caps = NULL;
    if (o.caps_file != NULL && nm_cli_caps_load(o.caps_file, &caps) != 0) {
        return NM_CLI_EXIT_USAGE;
    }
    nm_mesh_t *m = NULL;
    rc = open_mesh(&o, o.listen, &m);
    nm_discovery *disc = NULL;
    if (rc == 0) {
        int drc = nm_discovery_open(m, NULL, &disc);
        if (drc == NM_OK && caps != NULL) {
            drc = nm_discovery_announce(disc, caps);
        }
        if (drc != NM_OK) {
            rc = nm_cli_fail(drc, "capability discovery");
            nm_discovery_close(disc);
            nm_mesh_close(m);
        }
    }
    nm_capset_free(caps);
    if (rc == 0 && (rc = nm_cli_channel_serve_open(m)) != 0) {
        nm_discovery_close(disc);
        nm_mesh_close(m);
    }
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < o.npeers; i++) {
        nm_mesh_accept(m, o.peers[i].node.id);
    }
    print_listening(m, o.json);
    int fd = nm_mesh_fd(m);
    while (!stop_requested) {
        for (size_t i = 0; i < o.npeers; i++) {
            peer_arg *p = &o.peers[i];
            if (!p->connected && now_ms() >= p->next_try_ms) {
                nm_mesh_peer_info pi;
                if (nm_mesh_peer(m, p->node.id, &pi) == NM_OK) {
                    p->connected = true; /* it connected to us */
                } else {
                    try_connect(m, &o, p, o.json);
                }
            }
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        (void)poll(&pfd, 1, 200);
        nm_mesh_event ev;
        while (nm_mesh_next_event(m, 0, &ev) == NM_OK) {
            print_event(&ev, o.json);
        }
        nm_mesh_delivery *d;
        while (nm_mesh_recv(m, 0, &d) == NM_OK) {
            if (nm_cli_channel_relay(d)) {
                /* published to the channel's subscribers */
            } else if (o.echo) {
                echo_back(m, d);
            } else if (!o.json) {
                printf("message from %016llx stream %llu: %zu message(s)\n",
                       (unsigned long long)d->peer,
                       (unsigned long long)d->stream_id, d->count);
                fflush(stdout);
            }
            nm_mesh_delivery_free(d);
        }
    }
    nm_cli_channel_serve_close();
    nm_discovery_close(disc);
    nm_mesh_close(m);
    return NM_CLI_EXIT_OK;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
nm_cmd_ping(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf(
            "usage: netmesh ping ADDR --psk-file F --peer-key HEX "
            "--peer-id ID\n"
            "         [--count N] [--interval-ms N] [--timeout-ms N] "
            "[--direct] [--listen ADDR]\n"
            "         [--identity F] [--json]\n\n"
            "Handshakes with the node at ADDR (its Noise static public "
            "key and node id as\nprinted by `netmesh node`), then sends "
            "N timestamped messages on a stream\nand measures the echo "
            "(the peer must run with --echo). The handshake uses the\nrouted "
            "one-hop form, which a node running --accept-any accepts; "
            "--direct\nuses the direct form (the peer must list our "
            "node id). Exit 1 when the\nhandshake fails or an echo does "
            "not come back in time.\n");
        return NM_CLI_EXIT_OK;
    }
    node_opts o;
    int rc = parse_opts(argc, argv, true, &o);
    if (rc != 0) {
        return rc;
    }
    const char *listen = o.listen;
    if (listen == NULL) {
        listen = !strncmp(o.target, "127.", 4) ? "127.0.0.1:0" : "0.0.0.0:0";
    }
    nm_mesh_t *m = NULL;
    rc = open_mesh(&o, listen, &m);
    if (rc != 0) {
        return rc;
    }
    peer_arg *p = &o.peers[0];
    uint64_t t0 = now_us();
    rc = o.direct
             ? nm_mesh_connect(m, p->addr, p->node.key, p->node.id, 0)
             : nm_mesh_connect_routed(m, p->addr, p->node.key, p->node.id, 0);
    double hs_us = (double)(now_us() - t0);
    if (rc != NM_OK) {
        int r = nm_cli_fail(rc, "handshake with %s", p->addr);
        nm_mesh_close(m);
        return r;
    }
    if (!o.json) {
        printf("handshake with %016llx at %s: %.0f us\n",
               (unsigned long long)p->node.id, p->addr, hs_us);
    }
    double *rtt = calloc((size_t)o.count + 1, sizeof(double));
    long got = 0;
    int exit_code = NM_CLI_EXIT_OK;
    nm_stream_config sc;
    nm_stream_config_init(&sc);
    nm_mesh_open_stream(m, p->node.id, PING_STREAM, &sc);
    for (long i = 0; i < o.count && !stop_requested; i++) {
        uint8_t msg[16];
        uint64_t seq = (uint64_t)i, ts = now_us();
        memcpy(msg, &seq, 8);
        memcpy(msg + 8, &ts, 8);
        const void *ptr = msg;
        size_t len = sizeof(msg);
        rc = nm_mesh_send_with_retry(m, p->node.id, PING_STREAM, &ptr, &len, 1,
                                     8);
        if (rc != NM_OK) {
            exit_code = nm_cli_fail(rc, "send");
            break;
        }
        bool echoed = false;
        uint64_t deadline = now_ms() + (uint64_t)o.timeout_ms;
        while (!echoed && now_ms() < deadline) {
            nm_mesh_delivery *d;
            if (nm_mesh_recv(m, 50, &d) != NM_OK) {
                continue;
            }
            for (size_t k = 0; k < d->count; k++) {
                uint64_t s2;
                if (d->stream_id == PING_STREAM && d->msgs[k].len == 16 &&
                    (memcpy(&s2, d->msgs[k].data, 8), s2 == seq)) {
                    rtt[got] = (double)(now_us() - ts);
                    if (!o.json) {
                        printf("echo seq=%llu rtt=%.0f us\n",
                               (unsigned long long)seq, rtt[got]);
                    }
                    got++;
                    echoed = true;
                }
            }
            nm_mesh_delivery_free(d);
        }
        if (!echoed) {
            fprintf(stderr,
                    "netmesh: no echo for seq %ld within %ld ms (is the "
                    "peer running --echo?)\n",
                    i, o.timeout_ms);
            exit_code = NM_CLI_EXIT_FAIL;
            break;
        }
        if (o.interval_ms > 0 && i + 1 < o.count) {
            struct timespec ts2 = {.tv_sec = o.interval_ms / 1000,
                                   .tv_nsec =
                                       (o.interval_ms % 1000) * 1000000L};
            nanosleep(&ts2, NULL);
        }
    }
    double sorted_min = 0, p50 = 0, mx = 0, avg = 0;
    if (got > 0) {
        double sum = 0;
        for (long i = 0; i < got; i++) {
            sum += rtt[i];
        }
        avg = sum / (double)got;
        qsort(rtt, (size_t)got, sizeof(double), cmp_double);
        sorted_min = rtt[0];
        p50 = rtt[got / 2];
        mx = rtt[got - 1];
    }
    if (o.json) {
        printf("{\"peer\":\"%016llx\",\"addr\":\"%s\",\"handshake_us\":%.0f,"
               "\"sent\":%ld,\"received\":%ld,\"rtt_min_us\":%.0f,"
               "\"rtt_avg_us\":%.0f,\"rtt_p50_us\":%.0f,\"rtt_max_us\":%.0f}"
               "\n",
               (unsigned long long)p->node.id, p->addr, hs_us, o.count, got,
               sorted_min, avg, p50, mx);
    } else if (got > 0) {
        printf("%ld/%ld echoed: rtt min %.0f / avg %.0f / p50 %.0f / max "
               "%.0f us\n",
               got, o.count, sorted_min, avg, p50, mx);
    }
    free(rtt);
    nm_mesh_close(m);
    return exit_code;
}
