/*
 * tools/netmesh/cmd_token.c - `netmesh token issue|verify`.
 *
 *   netmesh token issue --identity FILE --subject <entity_id hex>
 *       --scope publish|subscribe|admin|delegate[,...] --channel NAME
 *       --ttl SECONDS [--depth N] [--generation G] [--json]
 *   netmesh token verify --token HEX [--channel NAME] [--scope S]
 *       [--subject HEX] [--skew SECONDS]
 *
 * verify exits 0 when the token is valid now, 1 when it is not (the reason
 * on stderr), 2 on usage errors.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh.h>

static const struct {
    const char *name;
    uint32_t bit;
} scope_names[] = {
    {"publish", NM_SCOPE_PUBLISH},   {"subscribe", NM_SCOPE_SUBSCRIBE},
    {"admin", NM_SCOPE_ADMIN},       {"delegate", NM_SCOPE_DELEGATE},
    {"wildcard", NM_SCOPE_WILDCARD}, {"all", NM_SCOPE_ALL},
};

static int
token_usage(void)
{
    return nm_cli_usage_error(
        "usage: netmesh token issue --identity FILE --subject HEX "
        "--scope publish|subscribe|admin|delegate[,...] --channel NAME "
        "--ttl SECONDS [--depth N] [--generation G] [--json]\n"
        "       netmesh token verify --token HEX [--channel NAME] "
        "[--scope S] [--subject HEX] [--skew SECONDS]");
}

/* "publish,subscribe" -> bits. 0 on success, -1 on an unknown word. */
static int
parse_scope(const char *s, uint32_t *out)
{
    uint32_t bits = 0;
    const char *p = s;
    if (*p == '\0') {
        return -1;
    }
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        bool ok = false;
        for (size_t i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]);
             i++) {
            if (strlen(scope_names[i].name) == len &&
                !strncmp(p, scope_names[i].name, len)) {
                bits |= scope_names[i].bit;
                ok = true;
            }
        }
        if (!ok) {
            return -1;
        }
        p += len;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                return -1;
            }
        }
    }
    *out = bits;
    return 0;
}

static void
scope_string(uint32_t bits, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < 5; i++) { /* the single-bit names */
        if (bits & scope_names[i].bit) {
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "",
                                  scope_names[i].name);
            if (n >= cap) {
                return;
            }
        }
    }
    uint32_t unknown = bits & ~(uint32_t)NM_SCOPE_KNOWN;
    if (unknown && n < cap) {
        snprintf(out + n, cap - n, "%s0x%x", n ? "," : "", unknown);
    }
}

/* Strict unsigned decimal. 0 or -1. */
static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

static void
print_token_json(const nm_token *t, const char *channel)
{
    uint8_t b[NM_TOKEN_BYTES];
    char hex[2 * NM_TOKEN_BYTES + 1], iss[65], sub[65], scope[128];
    (void)nm_token_encode(t, b);
    nm_cli_hex_encode(b, sizeof(b), hex);
    nm_cli_hex_encode(t->issuer, 32, iss);
    nm_cli_hex_encode(t->subject, 32, sub);
    scope_string(t->scope, scope, sizeof(scope));
    printf("{\"token\":\"%s\",\"issuer\":\"%s\",\"subject\":\"%s\","
           "\"scope\":\"%s\",\"scope_bits\":%u,",
           hex, iss, sub, scope, t->scope);
    if (channel != NULL) {
        /* Validated names contain no characters JSON must escape. */
        printf("\"channel\":\"%s\",", channel);
    }
    printf("\"channel_hash\":\"%016llx\",\"issuer_generation\":%u,"
           "\"not_before\":%llu,\"not_after\":%llu,\"depth\":%u,"
           "\"nonce\":\"%016llx\"}\n",
           (unsigned long long)t->channel_hash, t->issuer_generation,
           (unsigned long long)t->not_before, (unsigned long long)t->not_after,
           t->delegation_depth, (unsigned long long)t->nonce);
}

static int
token_issue(int argc, char **argv)
{
    const char *idpath = NULL, *subject = NULL, *scope_s = NULL;
    const char *channel = NULL, *ttl_s = NULL, *depth_s = NULL;
    const char *gen_s = NULL;
    bool json = false;
    const nm_cli_opt opts[] = {
        NM_CLI_FLAG("--json", &json),      NM_CLI_STR("--identity", &idpath),
        NM_CLI_STR("--subject", &subject), NM_CLI_STR("--scope", &scope_s),
        NM_CLI_STR("--channel", &channel), NM_CLI_STR("--ttl", &ttl_s),
        NM_CLI_STR("--depth", &depth_s),   NM_CLI_STR("--generation", &gen_s),
    };
    nm_cli_parser p = {
        .opts = opts, .nopts = NM_CLI_LEN(opts), .usage = token_usage};
    int prc = nm_cli_parse(&p, argc, argv);
    if (prc != 0) {
        return prc;
    }
    if (!idpath || !subject || !scope_s || !channel || !ttl_s) {
        return token_usage();
    }
    uint8_t sub[NM_ENTITY_ID_BYTES];
    if (strlen(subject) != 2 * NM_ENTITY_ID_BYTES ||
        nm_cli_hex_decode(subject, sub, sizeof(sub)) != 0) {
        return nm_cli_usage_error("--subject takes an entity id: 64 hex "
                                  "characters");
    }
    uint32_t scope = 0;
    if (parse_scope(scope_s, &scope) != 0) {
        return nm_cli_usage_error("--scope takes a comma-separated list of "
                                  "publish, subscribe, admin, delegate, "
                                  "wildcard, all");
    }
    uint64_t chash = 0;
    if (nm_channel_hash(channel, strlen(channel), &chash) != NM_OK) {
        return nm_cli_usage_error("--channel: %s", nm_errdetail());
    }
    uint64_t ttl = 0, depth = 0, gen = 0;
    if (parse_u64(ttl_s, UINT64_MAX, &ttl) != 0) {
        return nm_cli_usage_error("--ttl takes a number of seconds");
    }
    if (ttl == 0 || ttl > NM_TOKEN_TTL_MAX_SECS) {
        return nm_cli_usage_error("--ttl must be 1..%u seconds (one year)",
                                  NM_TOKEN_TTL_MAX_SECS);
    }
    if (depth_s && parse_u64(depth_s, 255, &depth) != 0) {
        return nm_cli_usage_error("--depth takes 0..255");
    }
    if (gen_s && parse_u64(gen_s, UINT32_MAX, &gen) != 0) {
        return nm_cli_usage_error("--generation takes 0..4294967295");
    }

    nm_identity *id = NULL;
    if (nm_cli_identity_load(idpath, &id) != 0) {
        return NM_CLI_EXIT_FAIL;
    }
    nm_token t;
    int rc = nm_token_try_issue_at(id, (uint32_t)gen, 0, sub, scope, chash,
                                   ttl, (uint8_t)depth, &t);
    nm_identity_free(id);
    if (rc != NM_OK) {
        return nm_cli_fail(rc, "cannot issue the token");
    }
    if (json) {
        print_token_json(&t, channel);
    } else {
        uint8_t b[NM_TOKEN_BYTES];
        char hex[2 * NM_TOKEN_BYTES + 1];
        (void)nm_token_encode(&t, b);
        nm_cli_hex_encode(b, sizeof(b), hex);
        printf("%s\n", hex);
    }
    return NM_CLI_EXIT_OK;
}

static int
token_verify(int argc, char **argv)
{
    const char *tok_s = NULL, *channel = NULL, *scope_s = NULL;
    const char *subject = NULL, *skew_s = NULL;
    bool json = false;
    const nm_cli_opt opts[] = {
        NM_CLI_FLAG("--json", &json),      NM_CLI_STR("--token", &tok_s),
        NM_CLI_STR("--channel", &channel), NM_CLI_STR("--scope", &scope_s),
        NM_CLI_STR("--subject", &subject), NM_CLI_STR("--skew", &skew_s),
    };
    nm_cli_parser p = {
        .opts = opts, .nopts = NM_CLI_LEN(opts), .usage = token_usage};
    int prc = nm_cli_parse(&p, argc, argv);
    if (prc != 0) {
        return prc;
    }
    if (tok_s == NULL) {
        return token_usage();
    }
    nm_token_verify_opts o;
    nm_token_verify_opts_init(&o);
    if (channel != NULL) {
        if (nm_channel_hash(channel, strlen(channel), &o.channel_hash) !=
            NM_OK) {
            return nm_cli_usage_error("--channel: %s", nm_errdetail());
        }
        o.check_channel = true;
    }
    if (scope_s != NULL && parse_scope(scope_s, &o.scope) != 0) {
        return nm_cli_usage_error("--scope takes a comma-separated list of "
                                  "publish, subscribe, admin, delegate, "
                                  "wildcard, all");
    }
    uint8_t sub[NM_ENTITY_ID_BYTES];
    if (subject != NULL) {
        if (strlen(subject) != 2 * NM_ENTITY_ID_BYTES ||
            nm_cli_hex_decode(subject, sub, sizeof(sub)) != 0) {
            return nm_cli_usage_error("--subject takes an entity id: 64 hex "
                                      "characters");
        }
        o.subject = sub;
    }
    if (skew_s != NULL) {
        uint64_t skew = 0;
        if (parse_u64(skew_s, NM_TOKEN_SKEW_MAX_SECS, &skew) != 0) {
            return nm_cli_usage_error("--skew takes 0..%u seconds",
                                      NM_TOKEN_SKEW_MAX_SECS);
        }
        o.skew_secs = (uint32_t)skew;
    }

    /* From here on a bad token is "not valid" (exit 1), not misuse. */
    uint8_t b[NM_TOKEN_BYTES];
    nm_token t;
    if (strlen(tok_s) != 2 * NM_TOKEN_BYTES ||
        nm_cli_hex_decode(tok_s, b, sizeof(b)) != 0) {
        fprintf(stderr,
                "netmesh: token invalid: malformed input (expected %d hex "
                "characters, got %zu characters)\n",
                2 * NM_TOKEN_BYTES, strlen(tok_s));
        return NM_CLI_EXIT_FAIL;
    }
    int rc = nm_token_decode(b, sizeof(b), &t);
    if (rc == NM_OK) {
        rc = nm_token_verify(&t, &o);
    }
    if (rc != NM_OK) {
        return nm_cli_fail(rc, "token invalid");
    }
    if (json) {
        print_token_json(&t, channel);
    } else {
        char iss[65], scope[128];
        nm_cli_hex_encode(t.issuer, 32, iss);
        scope_string(t.scope, scope, sizeof(scope));
        printf("valid: issuer %s scope %s not_after %llu\n", iss, scope,
               (unsigned long long)t.not_after);
    }
    return NM_CLI_EXIT_OK;
}

int
nm_cmd_token(int argc, char **argv)
{
    if (argc < 2) {
        return token_usage();
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: netmesh token issue --identity FILE --subject HEX "
               "--scope S[,S...] --channel NAME --ttl SECONDS [--depth N] "
               "[--generation G] [--json]\n"
               "       netmesh token verify --token HEX [--channel NAME] "
               "[--scope S] [--subject HEX] [--skew SECONDS] [--json]\n\n"
               "Scopes: publish, subscribe, admin, delegate, wildcard, all.\n"
               "verify exits 0 when valid, 1 when not (reason on stderr), "
               "2 on usage errors.\n");
        return NM_CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "issue")) {
        return token_issue(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "verify")) {
        return token_verify(argc - 1, argv + 1);
    }
    return token_usage();
}
