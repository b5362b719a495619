/*
 * src/adapters/redis/redis_impl.h - internals of the Redis Streams adapter
 * shared by its source files (and reachable from the white-box tests).
 */
#ifndef NMI_REDIS_IMPL_H
#define NMI_REDIS_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parsed redis:// URL. */
typedef struct nmi_redis_url {
    char *host;     /* host name or address, IPv6 without the brackets */
    int port;       /* 1..65535; 6379 when the URL has none */
    char *user;     /* percent-decoded; NULL when absent */
    char *password; /* percent-decoded; NULL when absent */
    int db;         /* SELECT index; 0 when the URL has no path */
    char *redacted; /* the URL as given, password replaced by "***": what
                       error details show */
} nmi_redis_url;

/* nmi_redis_url_parse - parse
 *   redis://[[user]:password@]host[:port][/db]
 * host is a name, an IPv4 address or a bracketed IPv6 address; user and
 * password are percent-decoded; db is decimal 0..2^31-1. Anything else
 * (other schemes, query strings, a user without ":password", empty host,
 * bad port/db) is NM_EINVAL with a detail. On success free with
 * nmi_redis_url_free. Thread-safe. */
int nmi_redis_url_parse(const char *url, nmi_redis_url *out);
void nmi_redis_url_free(nmi_redis_url *u);

/* nmi_redis_id_valid - true when `id` is a complete Redis stream id
 * "<ms>-<seq>" (each part 1..20 decimal digits fitting in a u64). *max is
 * set when both parts are UINT64_MAX (nothing can come after it). */
bool nmi_redis_id_valid(const char *id, bool *max);

#endif
