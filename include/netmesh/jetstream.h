/*
 * netmesh/jetstream.h - the NATS JetStream bus adapter (libnats / nats.c).
 *
 *   nm_jetstream_config jc;
 *   nm_jetstream_config_init(&jc);
 *   jc.url = "nats://127.0.0.1:4222";
 *   cfg.adapter = nm_adapter_jetstream();
 *   cfg.adapter_config = &jc;          // copied by nm_bus_open
 *
 * Shard s is the stream "{prefix}_shard_{s}" on subject "{prefix}.shard.{s}"
 * (created when missing). Each event is published asynchronously with the
 * header Nats-Msg-Id: "{nonce hex}:{shard}:{sequence_start}:{i}" and the
 * record {"r":<raw event>,"t":<insertion ts>,"s":<shard>}; a batch completes
 * when every ack arrived, and the server's duplicate window removes
 * re-sends. Event ids in poll/cursor are decimal stream sequences.
 */
#ifndef NETMESH_JETSTREAM_H
#define NETMESH_JETSTREAM_H

#include <netmesh/adapter.h>
#include <netmesh/common.h>

NM_BEGIN_DECLS

typedef enum nm_js_storage {
    NM_JS_FILE = 0, /* default, as upstream */
    NM_JS_MEMORY = 1,
} nm_js_storage;

typedef struct nm_jetstream_config {
    uint32_t size;           /* sizeof(nm_jetstream_config) */
    const char *url;         /* nats://host:port; required */
    const char *prefix;      /* stream/subject prefix; default "net" */
    int replicas;            /* default 1 */
    int64_t dedup_window_ms; /* duplicate window; default 3,600,000 */
    nm_js_storage storage;   /* default NM_JS_FILE */
    int64_t max_messages;    /* stream limits; 0 = unlimited */
    int64_t max_bytes;
    int64_t max_age_ms;
    int connect_timeout_ms; /* default 5000 */
    int request_timeout_ms; /* default 5000 (acks, stream info, reads) */
    /* A failing batch is retried with backoff (10 ms doubling to 1 s)
     * until this deadline, then dropped and counted. Default 30000. */
    int retry_deadline_ms;
} nm_jetstream_config;

/* nm_jetstream_config_init - the defaults above (url NULL). NULL is a
 * no-op. Thread-safe (touches only *cfg). */
NM_API void nm_jetstream_config_init(nm_jetstream_config *cfg);

/* nm_adapter_jetstream - the JetStream adapter ops (a static table).
 * Thread-safe. nm_bus_open with it connects (NM_ENOTCONN naming the URL
 * when the server does not answer), checks every config field (NM_EINVAL
 * naming it) and creates missing streams; see docs/adapters.md. */
NM_API const nm_adapter_ops *nm_adapter_jetstream(void);

NM_END_DECLS

#endif
