/* src/adapters/redis/url.c - redis:// URLs and stream ids (redis_impl.h). */
#define _GNU_SOURCE
#include "adapters/redis/redis_impl.h"

#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define SCHEME "redis://"

void
nmi_redis_url_free(nmi_redis_url *u)
{
    if (!u) {
        return;
    }
    free(u->host);
    if (u->password) {
        memset(u->password, 0, strlen(u->password));
    }
    free(u->password);
    free(u->user);
    free(u->redacted);
    memset(u, 0, sizeof(*u));
}

/* Percent-decode [p, p+n) into a new string; NULL on a bad escape, a NUL
 * byte, or no memory (*oom tells which). */
static char *
pct_decode(const char *p, size_t n, bool *oom)
{
    char *out = malloc(n + 1);
    *oom = out == NULL;
    if (!out) {
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%') {
            int hi = i + 2 < n ? nmi_hexval(p[i + 1]) : -1;
            int lo = i + 2 < n ? nmi_hexval(p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = c;
        }
    }
    out[o] = '\0';
    return out;
}

static bool
host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* Decimal [p, p+n) in [lo, hi]; no sign, no leading zeros (but "0"). */
static bool
parse_dec(const char *p, size_t n, long lo, long hi, long *out)
{
    if (n == 0 || n > 10 || (n > 1 && p[0] == '0')) {
        return false;
    }
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        v = v * 10 + (p[i] - '0');
    }
    if (v < lo || v > hi) {
        return false;
    }
    *out = v;
    return true;
}

int
nmi_redis_url_parse(const char *url, nmi_redis_url *out)
{
    memset(out, 0, sizeof(*out));
    if (!url) {
        return nmi_err(NM_EINVAL, "redis adapter: url is required");
    }
    size_t sl = strlen(SCHEME);
    if (strncmp(url, SCHEME, sl) != 0) {
        return nmi_err(NM_EINVAL,
                       "redis adapter: url must start with redis:// "
                       "(TLS and unix sockets are not supported)");
    }
    if (strpbrk(url, "?# \t\r\n")) {
        return nmi_err(NM_EINVAL,
                       "redis adapter: url must not contain a query, a "
                       "fragment or whitespace");
    }
    const char *auth = url + sl;
    const char *slash = strchr(auth, '/');
    const char *aend = slash ? slash : auth + strlen(auth);
    /* userinfo: up to the last '@' of the authority. */
    const char *at = NULL;
    for (const char *p = auth; p < aend; p++) {
        if (*p == '@') {
            at = p;
        }
    }
    const char *hp = auth;
    int rc = NM_OK;
    const char *pw_start = NULL, *pw_end = NULL;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (!colon) {
            return nmi_err(NM_EINVAL,
                           "redis adapter: url userinfo needs "
                           "':password' (redis://[user]:password@host)");
        }
        if (colon + 1 == at) {
            return nmi_err(NM_EINVAL, "redis adapter: url has an empty "
                                      "password");
        }
        bool oom = false;
        if (colon > auth) {
            out->user = pct_decode(auth, (size_t)(colon - auth), &oom);
            if (!out->user) {
                rc = oom ? nmi_err(NM_ENOMEM, "redis url")
                         : nmi_err(NM_EINVAL, "redis adapter: url user has "
                                              "a bad %%-escape");
                goto fail;
            }
        }
        out->password = pct_decode(colon + 1, (size_t)(at - colon - 1), &oom);
        if (!out->password) {
            rc = oom ? nmi_err(NM_ENOMEM, "redis url")
                     : nmi_err(NM_EINVAL, "redis adapter: url password has "
                                          "a bad %%-escape");
            goto fail;
        }
        pw_start = colon + 1;
        pw_end = at;
        hp = at + 1;
    }
    /* host[:port] */
    const char *hend, *pstart = NULL;
    const char *h0 = hp;
    if (*hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(aend - hp));
        if (!rb || rb == hp + 1) {
            rc = nmi_err(NM_EINVAL, "redis adapter: url has a bad [IPv6] "
                                    "host");
            goto fail;
        }
        for (const char *p = hp + 1; p < rb; p++) {
            if (!(nmi_hexval(*p) >= 0 || *p == ':' || *p == '.')) {
                rc = nmi_err(NM_EINVAL, "redis adapter: url has a bad "
                                        "[IPv6] host");
                goto fail;
            }
        }
        h0 = hp + 1;
        hend = rb;
        if (rb + 1 < aend) {
            if (rb[1] != ':') {
                rc = nmi_err(NM_EINVAL, "redis adapter: url: expected ':' "
                                        "after ']'");
                goto fail;
            }
            pstart = rb + 2;
        }
    } else {
        const char *colon = memchr(hp, ':', (size_t)(aend - hp));
        hend = colon ? colon : aend;
        pstart = colon ? colon + 1 : NULL;
        for (const char *p = hp; p < hend; p++) {
            if (!host_char(*p)) {
                rc = nmi_err(NM_EINVAL,
                             "redis adapter: url host has a bad "
                             "character '%c'",
                             *p);
                goto fail;
            }
        }
    }
    if (hend == h0) {
        rc = nmi_err(NM_EINVAL, "redis adapter: url has no host");
        goto fail;
    }
    out->host = strndup(h0, (size_t)(hend - h0));
    if (!out->host) {
        rc = nmi_err(NM_ENOMEM, "redis url");
        goto fail;
    }
    out->port = 6379;
    if (pstart) {
        long port;
        if (!parse_dec(pstart, (size_t)(aend - pstart), 1, 65535, &port)) {
            rc = nmi_err(NM_EINVAL, "redis adapter: url port must be "
                                    "1..65535");
            goto fail;
        }
        out->port = (int)port;
    }
    /* [/db] */
    if (slash && slash[1]) {
        long db;
        if (!parse_dec(slash + 1, strlen(slash + 1), 0, 2147483647L, &db)) {
            rc = nmi_err(NM_EINVAL, "redis adapter: url path must be a "
                                    "database number (/0, /1, ...)");
            goto fail;
        }
        out->db = (int)db;
    }
    /* What error details show: the URL with the password hidden. */
    if (pw_start) {
        size_t a = (size_t)(pw_start - url), b = strlen(pw_end);
        out->redacted = malloc(a + 3 + b + 1);
        if (out->redacted) {
            memcpy(out->redacted, url, a);
            memcpy(out->redacted + a, "***", 3);
            memcpy(out->redacted + a + 3, pw_end, b + 1);
        }
    } else {
        out->redacted = strdup(url);
    }
    if (!out->redacted) {
        rc = nmi_err(NM_ENOMEM, "redis url");
        goto fail;
    }
    return NM_OK;
fail:
    nmi_redis_url_free(out);
    return rc;
}

static bool
id_part(const char *p, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool
nmi_redis_id_valid(const char *id, bool *max)
{
    *max = false;
    const char *dash = strchr(id, '-');
    if (!dash) {
        return false;
    }
    uint64_t ms, seq;
    if (!id_part(id, (size_t)(dash - id), &ms) ||
        !id_part(dash + 1, strlen(dash + 1), &seq)) {
        return false;
    }
    *max = ms == UINT64_MAX && seq == UINT64_MAX;
    return true;
}
