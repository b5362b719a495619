/*
 * tests/integration/test_cli_crypto.c - `netmesh identity` and `netmesh
 * token` run as processes (the built binary at NM_BUILD_DIR/netmesh), in a
 * fresh temporary directory per test. Checks the exact output forms, file
 * modes and exit codes (0 ok, 1 failure / invalid token, 2 usage).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netmesh.h>

#define CLI NM_BUILD_DIR "/netmesh"

static char tmpdir[256];
static char out[8192], err[8192];

static void
setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nm_cli_crypto_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void
teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

static void
slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run `netmesh <args>` in tmpdir; stdout/stderr land in out/err. Returns
 * the exit status (or -1 when the process did not exit normally). */
static int
run(const char *fmt, ...)
{
    char args[4096], cmd[5120];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && '%s' %s >'%s/.out' 2>'%s/.err' </dev/null", tmpdir,
             CLI, args, tmpdir, tmpdir);
    int st = system(cmd);
    char p[512];
    snprintf(p, sizeof(p), "%s/.out", tmpdir);
    slurp(p, out, sizeof(out));
    snprintf(p, sizeof(p), "%s/.err", tmpdir);
    slurp(p, err, sizeof(err));
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static void
write_file(const char *name, const char *content, mode_t mode)
{
    char p[512];
    path_in(p, sizeof(p), name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(content, f);
    fclose(f);
    cr_assert_eq(chmod(p, mode), 0);
}

static bool
is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static void
hex(const uint8_t *in, size_t n, char *o)
{
    for (size_t i = 0; i < n; i++) {
        sprintf(o + 2 * i, "%02x", in[i]);
    }
}

static void
unhex(uint8_t *o, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(s + 2 * i, "%2x", &v), 1);
        o[i] = (uint8_t)v;
    }
}

/* Extract the string value of "key" from a flat JSON line. */
static void
json_str(const char *json, const char *key, char *o, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    cr_assert_not_null(p, "no %s in %s", key, json);
    p += strlen(pat);
    size_t i = 0;
    while (p[i] && p[i] != '"' && i + 1 < cap) {
        o[i] = p[i];
        i++;
    }
    o[i] = '\0';
}

TestSuite(cli_crypto, .init = setup, .fini = teardown);

Test(cli_crypto, identity_new_writes_0600_hex_seed_and_refuses_overwrite)
{
    cr_assert_eq(run("identity new --out id.key"), 0, "stderr: %s", err);
    char p[512], content[256];
    path_in(p, sizeof(p), "id.key");
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    slurp(p, content, sizeof(content));
    cr_assert_eq(strlen(content), 65);
    cr_assert(is_lower_hex(content, 64));
    cr_assert_eq(content[64], '\n');

    /* A second `new` must not overwrite it. */
    cr_assert_eq(run("identity new --out id.key"), 1);
    cr_assert(strstr(err, "exist") != NULL, "stderr: %s", err);
    char again[256];
    slurp(p, again, sizeof(again));
    cr_assert_str_eq(again, content);

    /* The ids shown are the ones the library derives from the seed. */
    cr_assert_eq(run("identity show id.key --json"), 0);
    uint8_t seed[32], pk[32];
    unhex(seed, 32, content);
    nm_identity *id = NULL;
    cr_assert_eq(nm_identity_from_seed(seed, &id), NM_OK);
    cr_assert_eq(nm_identity_entity_id(id, pk), NM_OK);
    uint64_t nid, org;
    cr_assert_eq(nm_identity_node_id(id, &nid), NM_OK);
    cr_assert_eq(nm_identity_origin_hash(id, &org), NM_OK);
    char pkhex[65], want[256];
    hex(pk, 32, pkhex);
    snprintf(want, sizeof(want),
             "{\"entity_id\":\"%s\",\"node_id\":\"%016llx\","
             "\"origin_hash\":\"%016llx\"}\n",
             pkhex, (unsigned long long)nid, (unsigned long long)org);
    cr_assert_str_eq(out, want);
    nm_identity_free(id);
}

Test(cli_crypto, identity_show_fixed_seed_vector)
{
    /* docs/PROTOCOL.md §1, vector 2 (RFC 8032 TEST 1 seed). */
    write_file("v.key",
               "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae"
               "7f60\n",
               0600);
    cr_assert_eq(run("identity show v.key --json"), 0, "%s", err);
    cr_assert_str_eq(out, "{\"entity_id\":\"d75a980182b10ab7d54bfed3c964073a"
                          "0ee172f3daa62325af021a68f707511a\",\"node_id\":"
                          "\"652f03ba688dde03\",\"origin_hash\":"
                          "\"96dd720507478b63\"}\n");
    cr_assert_str_eq(err, "");
    /* Human form mentions the same ids. */
    cr_assert_eq(run("identity show v.key"), 0);
    cr_assert(strstr(out, "652f03ba688dde03") != NULL);
}

Test(cli_crypto, identity_bad_files_and_usage)
{
    write_file("short.key", "abcd\n", 0600);
    cr_assert_eq(run("identity show short.key"), 1);
    write_file("nothex.key",
               "zz61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae"
               "7f60\n",
               0600);
    cr_assert_eq(run("identity show nothex.key"), 1);
    cr_assert_eq(run("identity show missing.key"), 1);
    /* A too-open file still loads but warns. */
    write_file("open.key",
               "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae"
               "7f60\n",
               0644);
    cr_assert_eq(run("identity show open.key --json"), 0);
    cr_assert(strstr(err, "warning") != NULL, "stderr: %s", err);
    cr_assert_eq(run("identity"), 2);
    cr_assert_eq(run("identity new"), 2);
    cr_assert_eq(run("identity show"), 2);
    cr_assert_eq(run("identity frob"), 2);
}

/* Create issuer and subject identities; return the subject's entity id. */
static void
two_identities(char subject_hex[65])
{
    cr_assert_eq(run("identity new --out issuer.key"), 0);
    cr_assert_eq(run("identity new --out subject.key"), 0);
    cr_assert_eq(run("identity show subject.key --json"), 0);
    json_str(out, "entity_id", subject_hex, 65);
}

Test(cli_crypto, token_issue_json_and_verify)
{
    char sub[65], tok[400], issuer[65];
    two_identities(sub);
    cr_assert_eq(run("identity show issuer.key --json"), 0);
    json_str(out, "entity_id", issuer, sizeof(issuer));

    cr_assert_eq(run("token issue --identity issuer.key --subject %s --scope "
                     "publish,subscribe --channel sensors/lidar --ttl 600 "
                     "--depth 2 --json",
                     sub),
                 0, "stderr: %s", err);
    cr_assert_eq(strncmp(out, "{\"token\":\"", 10), 0, "%s", out);
    json_str(out, "token", tok, sizeof(tok));
    cr_assert_eq(strlen(tok), 338);
    cr_assert(is_lower_hex(tok, 338));
    char f[80];
    json_str(out, "issuer", f, sizeof(f));
    cr_assert_str_eq(f, issuer);
    json_str(out, "subject", f, sizeof(f));
    cr_assert_str_eq(f, sub);
    cr_assert(strstr(out, "\"depth\":2") != NULL, "%s", out);

    /* The library agrees with the CLI about the bytes. */
    uint8_t b[NM_TOKEN_BYTES];
    unhex(b, sizeof(b), tok);
    nm_token t;
    cr_assert_eq(nm_token_decode(b, sizeof(b), &t), NM_OK);
    uint64_t ch;
    cr_assert_eq(nm_channel_hash("sensors/lidar", 13, &ch), NM_OK);
    cr_assert_eq(t.channel_hash, ch);
    cr_assert_eq(t.scope, NM_SCOPE_PUBLISH | NM_SCOPE_SUBSCRIBE);
    cr_assert_eq(t.not_after - t.not_before, 600);
    cr_assert_eq(t.delegation_depth, 2);
    char chhex[17];
    json_str(out, "channel_hash", chhex, sizeof(chhex));
    char wantch[17];
    snprintf(wantch, sizeof(wantch), "%016llx", (unsigned long long)ch);
    cr_assert_str_eq(chhex, wantch);
    nm_token_verify_opts o;
    nm_token_verify_opts_init(&o);
    cr_assert_eq(nm_token_verify(&t, &o), NM_OK);

    /* verify: valid, and each way of being invalid. */
    cr_assert_eq(run("token verify --token %s", tok), 0, "%s", err);
    cr_assert_eq(run("token verify --token %s --channel sensors/lidar "
                     "--scope publish",
                     tok),
                 0);
    cr_assert_eq(run("token verify --token %s --scope publish,subscribe", tok),
                 0);
    cr_assert_eq(run("token verify --token %s --channel sensors/radar", tok),
                 1);
    cr_assert_neq(err[0], '\0', "reason on stderr");
    cr_assert_eq(run("token verify --token %s --scope admin", tok), 1);
    cr_assert(strstr(err, "unauthorized") != NULL, "%s", err);
    cr_assert_eq(run("token verify --token %s --subject %s", tok, issuer), 1);

    char bad[400];
    strcpy(bad, tok);
    bad[200] = bad[200] == '0' ? '1' : '0';
    cr_assert_eq(run("token verify --token %s", bad), 1);
    cr_assert(strstr(err, "cryptographic") != NULL, "%s", err);
    bad[337] = '\0';
    cr_assert_eq(run("token verify --token %s", bad), 1, "odd length");
    cr_assert_eq(run("token verify --token %s00", tok), 1, "oversized");

    /* Plain issue prints just the hex token. */
    cr_assert_eq(run("token issue --identity issuer.key --subject %s "
                     "--scope admin --channel a --ttl 5",
                     sub),
                 0);
    cr_assert_eq(strlen(out), 339);
    cr_assert_eq(out[338], '\n');
}

Test(cli_crypto, token_verify_expired_and_not_yet_valid)
{
    nm_identity *id = NULL;
    cr_assert_eq(nm_identity_generate(&id), NM_OK);
    uint8_t pk[32], b[NM_TOKEN_BYTES];
    cr_assert_eq(nm_identity_entity_id(id, pk), NM_OK);
    uint64_t now = nm_token_now();
    nm_token t;
    char tok[NM_TOKEN_BYTES * 2 + 1];

    cr_assert_eq(
        nm_token_try_issue_at(id, 0, now - 1000, pk, 1, 1, 100, 0, &t), NM_OK);
    cr_assert_eq(nm_token_encode(&t, b), NM_OK);
    hex(b, sizeof(b), tok);
    cr_assert_eq(run("token verify --token %s", tok), 1);
    cr_assert(strstr(err, "expired") != NULL, "%s", err);

    cr_assert_eq(
        nm_token_try_issue_at(id, 0, now + 1000, pk, 1, 1, 100, 0, &t), NM_OK);
    cr_assert_eq(nm_token_encode(&t, b), NM_OK);
    hex(b, sizeof(b), tok);
    cr_assert_eq(run("token verify --token %s", tok), 1);
    cr_assert(strstr(err, "not yet valid") != NULL, "%s", err);
    nm_identity_free(id);
}

Test(cli_crypto, token_usage_errors)
{
    char sub[65];
    two_identities(sub);
    cr_assert_eq(run("token"), 2);
    cr_assert_eq(run("token verify"), 2);
    cr_assert_eq(run("token verify --token"), 2);
    cr_assert_eq(run("token frob"), 2);
    cr_assert_eq(run("token issue --identity issuer.key --subject %s "
                     "--scope publish --channel x",
                     sub),
                 2, "missing --ttl");
    cr_assert_eq(run("token issue --identity issuer.key --subject %s "
                     "--scope bogus --channel x --ttl 5",
                     sub),
                 2);
    cr_assert_eq(run("token issue --identity issuer.key --subject %s "
                     "--scope publish --channel Bad/Name --ttl 5",
                     sub),
                 2);
    cr_assert_eq(run("token issue --identity issuer.key --subject %s "
                     "--scope publish --channel x --ttl 0",
                     sub),
                 2);
    cr_assert_eq(run("token issue --identity issuer.key --subject %s "
                     "--scope publish --channel x --ttl 31536001",
                     sub),
                 2);
    cr_assert_eq(run("token issue --identity issuer.key --subject abcd "
                     "--scope publish --channel x --ttl 5"),
                 2);
    cr_assert_eq(run("token issue --identity issuer.key --subject %s "
                     "--scope publish --channel x --ttl 5 --depth 256",
                     sub),
                 2);
    cr_assert_eq(run("token issue --identity nope.key --subject %s "
                     "--scope publish --channel x --ttl 5",
                     sub),
                 1, "missing identity file is a failure, not usage");
    cr_assert_eq(run("token verify --token %0338d --channel ../x", 0), 2);
}
