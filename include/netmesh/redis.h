/*
 * netmesh/redis.h - the Redis Streams bus adapter (hiredis).
 *
 *   nm_redis_config rc;
 *   nm_redis_config_init(&rc);
 *   rc.url = "redis://127.0.0.1:6379";
 *   cfg.adapter = nm_adapter_redis();
 *   cfg.adapter_config = &rc;          // copied by nm_bus_open
 *
 * Shard s is the stream "{prefix}:shard:{s}". Each batch is one pipelined
 * MULTI/EXEC of XADD key [MAXLEN ~ n] * d <record> dedup_id <id>, where
 * <record> = {"r":<raw event>,"t":<insertion ts>,"s":<shard>} and
 * <id> = "{nonce hex}:{shard}:{sequence_start}:{i}" (upstream's strings).
 * Event ids in poll/cursor are Redis stream ids ("ms-seq").
 */
#ifndef NETMESH_REDIS_H
#define NETMESH_REDIS_H

#include <netmesh/adapter.h>
#include <netmesh/common.h>

NM_BEGIN_DECLS

typedef struct nm_redis_config {
    uint32_t size;          /* sizeof(nm_redis_config) */
    const char *url;        /* redis://[:password@]host:port[/db]; required */
    const char *prefix;     /* stream key prefix; default "net" */
    uint64_t maxlen;        /* XADD MAXLEN ~ n; 0 = unbounded (default) */
    uint32_t pipeline;      /* XADDs per MULTI/EXEC round trip; default 1000 */
    int connect_timeout_ms; /* default 5000 */
    int command_timeout_ms; /* default 1000 */
    /* A failing batch is retried with backoff (10 ms doubling to 1 s)
     * until this deadline, then dropped and counted. Default 30000. */
    int retry_deadline_ms;
} nm_redis_config;

/* nm_redis_config_init - the defaults above (url NULL). Thread-safe. */
NM_API void nm_redis_config_init(nm_redis_config *cfg);

/* nm_adapter_redis - the Redis Streams adapter ops. */
NM_API const nm_adapter_ops *nm_adapter_redis(void);

NM_END_DECLS

#endif
