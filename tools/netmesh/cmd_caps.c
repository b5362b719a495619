/*
 * tools/netmesh/cmd_caps.c - `netmesh predicate eval|encode` and
 * `netmesh caps validate|diff`: the pure capability tools. Each reads one
 * JSON document on stdin and prints one line on stdout.
 *
 *   netmesh predicate eval [--trace]
 *       stdin  {"wire": <PredicateWire>, "tags": [...], "metadata": {...}}
 *       stdout true | false, or with --trace the trace JSON
 *              {"children":[..],"label":"..","result":b}
 *   netmesh predicate encode
 *       stdin  <PredicateWire>
 *       stdout its canonical encoding
 *   netmesh caps validate
 *       stdin  <CapabilitySet>
 *       stdout {"errors":[..],"warnings":[..]}
 *   netmesh caps diff
 *       stdin  {"prev": <CapabilitySet>, "curr": <CapabilitySet>}
 *       stdout {"added_tags":[..],"removed_tags":[..],"metadata_changes":[..]}
 *   netmesh caps find --peer ADDR --peer-key HEX --peer-id ID --psk-file F
 *                     [--filter JSON] [--wait-ms N] [--min N]
 *       joins the mesh through ADDR with an ephemeral node (routed
 *       one-hop handshake), collects capability announcements for
 *       --wait-ms (default 3000; with --min N it stops once N nodes
 *       match), then prints one line per matching node, ascending:
 *       {"node_id":"<16 hex>","version":V,"capabilities":<CapabilitySet>}
 *       --filter is {"require_tags":[..],"require_models":[..],
 *       "require_tools":[..],"min_memory_gb":N,"require_gpu":b,
 *       "gpu_vendor":"nvidia",..,"min_vram_gb":N,"min_context_length":N,
 *       "require_modalities":["text",..]} (all optional; {} = every
 *       node). Exit 1 when the handshake fails or fewer than --min match.
 *
 * Exit codes: 0 success (a predicate that evaluates to false is still a
 * success), 2 usage errors and malformed input (invalid JSON, a bad
 * PredicateWire, an empty tag, input too large: the message names the
 * problem), 1 an operation that failed for another reason (reading stdin,
 * out of memory).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <netmesh.h>
#include <netmesh/caps.h>
#include <netmesh/discovery.h>
#include <netmesh/predicate.h>

#include "behavior/bjson.h"
#include "core/core.h"

/* Largest accepted input (a guard, not a protocol limit). */
#define CAPS_STDIN_MAX (64u << 20)

static int
read_stdin(const char *what, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        fprintf(stderr, "netmesh: %s: out of memory\n", what);
        return NM_CLI_EXIT_FAIL;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= CAPS_STDIN_MAX) {
                free(buf);
                return nm_cli_usage_error("%s: input larger than %u bytes",
                                          what, CAPS_STDIN_MAX);
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                fprintf(stderr, "netmesh: %s: out of memory\n", what);
                return NM_CLI_EXIT_FAIL;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) {
            if (ferror(stdin)) {
                free(buf);
                fprintf(stderr, "netmesh: %s: error reading stdin\n", what);
                return NM_CLI_EXIT_FAIL;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    return NM_CLI_EXIT_OK;
}

/* Map a library failure: malformed input -> 2, anything else -> 1. */
static int
failed(int rc, const char *what)
{
    if (rc == NM_EDECODE || rc == NM_EINVAL || rc == NM_ETOOBIG) {
        const char *d = nm_errdetail();
        fprintf(stderr, "netmesh: %s: malformed input: %s\n", what,
                d && *d ? d : nm_strerror(rc));
        return NM_CLI_EXIT_USAGE;
    }
    return nm_cli_fail(rc, "%s", what);
}

static int
print_owned(char *s)
{
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return fflush(stdout) == 0 ? NM_CLI_EXIT_OK : NM_CLI_EXIT_FAIL;
}

static int
predicate_usage(void)
{
    return nm_cli_usage_error(
        "usage: netmesh predicate eval [--trace] < {\"wire\":..,\"tags\":[..],"
        "\"metadata\":{..}}\n"
        "       netmesh predicate encode < <PredicateWire>");
}

int
nm_cmd_predicate(int argc, char **argv)
{
    if (argc < 2) {
        return predicate_usage();
    }
    const char *sub = argv[1];
    bool trace = false;
    if (strcmp(sub, "eval") == 0) {
        const nm_cli_opt opts[] = {NM_CLI_FLAG("--trace", &trace)};
        nm_cli_parser p = {
            .opts = opts, .nopts = NM_CLI_LEN(opts), .usage = predicate_usage};
        int rc = nm_cli_parse(&p, argc - 1, argv + 1);
        if (rc != 0) {
            return rc;
        }
    } else if (strcmp(sub, "encode") == 0) {
        if (argc != 2) {
            return predicate_usage();
        }
    } else {
        return predicate_usage();
    }
    char *in;
    size_t len;
    int ex = read_stdin(trace ? "predicate eval --trace" : sub, &in, &len);
    if (ex != NM_CLI_EXIT_OK) {
        return ex;
    }
    int rc;
    char *out = NULL;
    if (strcmp(sub, "encode") == 0) {
        nm_pred *p;
        rc = nm_pred_from_wire_json(in, len, &p);
        free(in);
        if (rc != NM_OK) {
            return failed(rc, "predicate encode");
        }
        rc = nm_pred_to_wire_json(p, &out, NULL);
        nm_pred_free(p);
        if (rc != NM_OK) {
            return failed(rc, "predicate encode");
        }
        return print_owned(out);
    }
    if (trace) {
        rc = nm_pred_request_trace(in, len, NULL, &out, NULL);
        free(in);
        if (rc != NM_OK) {
            return failed(rc, "predicate eval --trace");
        }
        return print_owned(out);
    }
    rc = nm_pred_request_eval(in, len);
    free(in);
    if (rc < 0) {
        return failed(rc, "predicate eval");
    }
    puts(rc ? "true" : "false");
    return fflush(stdout) == 0 ? NM_CLI_EXIT_OK : NM_CLI_EXIT_FAIL;
}

static int
caps_usage(void)
{
    return nm_cli_usage_error(
        "usage: netmesh caps validate < <CapabilitySet>\n"
        "       netmesh caps diff < {\"prev\":<CapabilitySet>,"
        "\"curr\":<CapabilitySet>}\n"
        "       netmesh caps find --peer ADDR --peer-key HEX --peer-id ID "
        "--psk-file F\n"
        "                         [--filter JSON] [--wait-ms N] [--min N]");
}

static int caps_find(int argc, char **argv);

int
nm_cmd_caps(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "find") == 0) {
        return caps_find(argc - 1, argv + 1);
    }
    if (argc != 2) {
        return caps_usage();
    }
    const char *sub = argv[1];
    bool validate = strcmp(sub, "validate") == 0;
    if (!validate && strcmp(sub, "diff") != 0) {
        return caps_usage();
    }
    const char *what = validate ? "caps validate" : "caps diff";
    char *in;
    size_t len;
    int ex = read_stdin(what, &in, &len);
    if (ex != NM_CLI_EXIT_OK) {
        return ex;
    }
    char *out = NULL;
    int rc;
    if (validate) {
        nm_capset *set;
        rc = nm_capset_from_json(in, len, &set);
        free(in);
        if (rc != NM_OK) {
            return failed(rc, what);
        }
        nm_caps_report *r;
        rc = nm_caps_validate(set, &r);
        nm_capset_free(set);
        if (rc == NM_OK) {
            rc = nm_caps_report_to_json(r, &out, NULL);
            nm_caps_report_free(r);
        }
    } else {
        rc = nm_caps_diff_request(in, len, &out, NULL);
        free(in);
    }
    if (rc != NM_OK) {
        return failed(rc, what);
    }
    return print_owned(out);
}

/* ------------------------------------------------------------ caps find */

int
nm_cli_caps_load(const char *path, nm_capset **out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "netmesh: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n == cap) {
            char *nb = cap < CAPS_STDIN_MAX ? realloc(buf, cap * 2) : NULL;
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    bool err = ferror(f) != 0;
    fclose(f);
    if (buf == NULL || err) {
        free(buf);
        fprintf(stderr, "netmesh: cannot read %s\n", path);
        return -1;
    }
    int rc = nm_capset_from_json(buf, n, out);
    free(buf);
    if (rc != NM_OK) {
        fprintf(stderr, "netmesh: %s: not a capability set: %s\n", path,
                nm_errdetail());
        return -1;
    }
    return 0;
}

/* A string array field into an arena-backed list. */
static int
str_list(nmi_arena *ar, const nmi_bj *v, const char *what,
         const char *const **out, size_t *n)
{
    if (v->type != NMI_BJ_ARR) {
        return nm_cli_usage_error("--filter: '%s' must be an array", what);
    }
    const char **l = nmi_arena_alloc(ar, (v->v.arr.n + 1) * sizeof(*l));
    if (l == NULL) {
        return nm_cli_usage_error("--filter: out of memory");
    }
    for (size_t i = 0; i < v->v.arr.n; i++) {
        if (nmi_bj_as_str(&v->v.arr.items[i], what, &l[i]) != NM_OK) {
            return nm_cli_usage_error("--filter: %s", nm_errdetail());
        }
    }
    *out = l;
    *n = v->v.arr.n;
    return 0;
}

static const char *const MODALITIES[] = {
    "text", "image", "audio", "video", "code", "embedding", "tool_use"};

/* The filter JSON of `caps find` (all fields optional). */
static int
parse_filter(nmi_arena *ar, const char *json, nm_capfilter *f)
{
    nm_capfilter init = NM_CAPFILTER_INIT;
    *f = init;
    nmi_bj *root = NULL;
    if (nmi_bj_parse(ar, json, strlen(json), &root) != NM_OK) {
        return nm_cli_usage_error("--filter: %s", nm_errdetail());
    }
    if (root->type != NMI_BJ_OBJ) {
        return nm_cli_usage_error("--filter must be a JSON object");
    }
    const char *dup = nmi_bj_dup_key(root);
    if (dup != NULL) {
        return nm_cli_usage_error("--filter: duplicate field '%s'", dup);
    }
    for (size_t i = 0; i < root->v.obj.n; i++) {
        const char *k = root->v.obj.m[i].key;
        const nmi_bj *v = &root->v.obj.m[i].val;
        int rc = 0;
        if (!strcmp(k, "require_tags")) {
            rc = str_list(ar, v, k, &f->require_tags, &f->n_require_tags);
        } else if (!strcmp(k, "require_models")) {
            rc = str_list(ar, v, k, &f->require_models, &f->n_require_models);
        } else if (!strcmp(k, "require_tools")) {
            rc = str_list(ar, v, k, &f->require_tools, &f->n_require_tools);
        } else if (!strcmp(k, "min_memory_gb")) {
            rc = nmi_bj_as_u32(v, k, &f->min_memory_gb) == NM_OK ? 0 : -1;
        } else if (!strcmp(k, "min_vram_gb")) {
            rc = nmi_bj_as_u32(v, k, &f->min_vram_gb) == NM_OK ? 0 : -1;
        } else if (!strcmp(k, "min_context_length")) {
            rc = nmi_bj_as_u32(v, k, &f->min_context_length) == NM_OK ? 0 : -1;
            f->has_min_context_length = true;
        } else if (!strcmp(k, "require_gpu")) {
            if (v->type != NMI_BJ_TRUE && v->type != NMI_BJ_FALSE) {
                return nm_cli_usage_error("--filter: 'require_gpu' must be "
                                          "a boolean");
            }
            f->require_gpu = v->type == NMI_BJ_TRUE;
        } else if (!strcmp(k, "gpu_vendor")) {
            const char *s = NULL;
            if (nmi_bj_as_str(v, k, &s) != NM_OK) {
                rc = -1;
            } else {
                f->gpu_vendor = NM_GPU_UNKNOWN;
                for (int g = NM_GPU_NVIDIA; g <= NM_GPU_QUALCOMM; g++) {
                    if (!strcasecmp(s, nm_gpu_vendor_name((nm_gpu_vendor)g))) {
                        f->gpu_vendor = (nm_gpu_vendor)g;
                    }
                }
                if (f->gpu_vendor == NM_GPU_UNKNOWN) {
                    return nm_cli_usage_error("--filter: unknown gpu_vendor "
                                              "'%s'",
                                              s);
                }
            }
        } else if (!strcmp(k, "require_modalities")) {
            const char *const *l = NULL;
            size_t n = 0;
            rc = str_list(ar, v, k, &l, &n);
            for (size_t j = 0; rc == 0 && j < n; j++) {
                size_t b = 0;
                while (b < NMI_ARRAY_LEN(MODALITIES) &&
                       strcasecmp(l[j], MODALITIES[b]) != 0) {
                    b++;
                }
                if (b == NMI_ARRAY_LEN(MODALITIES)) {
                    return nm_cli_usage_error("--filter: unknown modality "
                                              "'%s'",
                                              l[j]);
                }
                f->require_modalities |= 1u << b;
            }
        } else {
            return nm_cli_usage_error("--filter: unknown field '%s'", k);
        }
        if (rc == -1) {
            return nm_cli_usage_error("--filter: %s", nm_errdetail());
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int
caps_find(int argc, char **argv)
{
    const char *addr = NULL, *psk_file = NULL, *filter = "{}";
    nm_cli_peer peer = {.id = 0};
    long wait_ms = 3000, min = 0;
    const nm_cli_opt opts[] = {
        NM_CLI_STR("--peer", &addr),
        NM_CLI_CALL("--peer-key", &peer, nm_cli_opt_peer_key),
        NM_CLI_CALL("--peer-id", &peer, nm_cli_opt_peer_id),
        NM_CLI_STR("--psk-file", &psk_file),
        NM_CLI_STR("--filter", &filter),
        NM_CLI_LONG("--wait-ms", &wait_ms, 0, 3600000L,
                    "--wait-ms takes 0..3600000"),
        NM_CLI_LONG("--min", &min, 0, 1000000L, "--min takes 0..1000000"),
    };
    nm_cli_parser p = {
        .opts = opts,
        .nopts = NM_CLI_LEN(opts),
        .unknown = "caps find: unknown or incomplete option '%s'",
    };
    int ex = nm_cli_parse(&p, argc, argv);
    if (ex != 0) {
        return ex;
    }
    if (addr == NULL || !peer.have_key || !peer.have_id || psk_file == NULL) {
        return nm_cli_usage_error(
            "usage: netmesh caps find --peer ADDR --peer-key HEX --peer-id "
            "ID --psk-file F [--filter JSON] [--wait-ms N] [--min N]");
    }
    nmi_arena ar;
    nmi_arena_init(&ar);
    nm_capfilter f;
    ex = parse_filter(&ar, filter, &f);
    if (ex != 0) {
        nmi_arena_free(&ar);
        return ex;
    }
    nm_mesh_config cfg;
    nm_mesh_config_init(&cfg);
    snprintf(cfg.bind, sizeof(cfg.bind), "%s",
             !strncmp(addr, "127.", 4) ? "127.0.0.1:0" : "0.0.0.0:0");
    if (nm_cli_hexfile_load(psk_file, cfg.psk, 32) != 0) {
        nmi_arena_free(&ar);
        return NM_CLI_EXIT_USAGE;
    }
    cfg.psk_set = true;
    nm_mesh_t *m = NULL;
    int rc = nm_mesh_open(&cfg, &m);
    memset(cfg.psk, 0, sizeof(cfg.psk));
    nm_discovery *d = NULL;
    if (rc == NM_OK) {
        rc = nm_discovery_open(m, NULL, &d);
    }
    if (rc == NM_OK) {
        rc = nm_mesh_connect_routed(m, addr, peer.key, peer.id, 0);
    }
    if (rc != NM_OK) {
        ex = nm_cli_fail(rc, "caps find: joining through %s", addr);
        nm_discovery_close(d);
        nm_mesh_close(m);
        nmi_arena_free(&ar);
        return ex;
    }
    uint64_t *ids = NULL;
    size_t n = 0;
    for (long waited = 0;; waited += 20) {
        free(ids);
        ids = NULL;
        rc = nm_discovery_find_nodes(d, &f, &ids, &n);
        if (rc != NM_OK || (min > 0 && (long)n >= min) || waited >= wait_ms) {
            break;
        }
        sleep_ms(20);
    }
    ex = NM_CLI_EXIT_OK;
    if (rc != NM_OK) {
        ex = nm_cli_fail(rc, "caps find");
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        nm_capset *s = NULL;
        uint64_t ver = 0;
        char *cj = NULL;
        if (nm_discovery_get(d, ids[i], &s, &ver) != NM_OK ||
            nm_capset_to_json(s, &cj, NULL) != NM_OK) {
            nm_capset_free(s);
            continue; /* expired meanwhile */
        }
        printf("{\"node_id\":\"%016llx\",\"version\":%llu,\"capabilities\":"
               "%s}\n",
               (unsigned long long)ids[i], (unsigned long long)ver, cj);
        free(cj);
        nm_capset_free(s);
    }
    fflush(stdout);
    if (ex == NM_CLI_EXIT_OK && (long)n < min) {
        fprintf(stderr,
                "netmesh: caps find: %zu of %ld nodes matched "
                "within %ld ms\n",
                n, min, wait_ms);
        ex = NM_CLI_EXIT_FAIL;
    }
    free(ids);
    nm_discovery_close(d);
    nm_mesh_close(m);
    nmi_arena_free(&ar);
    return ex;
}
