/*
 * examples/quickstart.c - the seed's Quick Start, in C.
 *
 * A bus with 4 shards and DropOldest backpressure on the in-memory
 * adapter: emit every way, flush, poll everything back, then read a live
 * subscription and shut down gracefully.
 */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>
#include <netmesh.h>

#define CHECK(call)                                                           \
    do {                                                                      \
        int rc_ = (call);                                                     \
        if (rc_ < 0) {                                                        \
            fprintf(stderr, "%s failed: %s (%s)\n", #call, nm_strerror(rc_),  \
                    nm_errdetail());                                          \
            exit(1);                                                          \
        }                                                                     \
    } while (0)

int
main(void)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 4;
    cfg.backpressure = NM_BP_DROP_OLDEST;

    nm_bus *node;
    CHECK(nm_bus_open(&cfg, &node));

    /* Emit events: a JSON value, raw bytes, a JSON string. */
    json_t *ev = json_pack("{s:s, s:i}", "token", "hello", "index", 0);
    CHECK(nm_bus_emit_json(node, ev, NULL));
    json_decref(ev);
    const char raw[] = "{\"token\": \"world\"}";
    CHECK(nm_bus_emit_raw(node, raw, sizeof(raw) - 1, NULL));
    CHECK(nm_bus_emit_str(node, "{\"token\": \"foo\"}", NULL));

    /* Batch. */
    json_t *batch[2] = {json_pack("{s:i}", "a", 1),
                        json_pack("{s:i}", "a", 2)};
    int count = nm_bus_emit_json_batch(node, batch, 2);
    CHECK(count);
    printf("batch accepted %d events\n", count);
    json_decref(batch[0]);
    json_decref(batch[1]);

    CHECK(nm_bus_flush(node, 5000));

    /* Poll. */
    nm_poll_request req;
    nm_poll_request_init(&req);
    req.limit = 100;
    nm_poll_response resp;
    CHECK(nm_bus_poll(node, &req, &resp));
    for (size_t i = 0; i < resp.count; i++) {
        printf("%s\n", (const char *)resp.events[i].data);
    }
    nm_poll_response_free(&resp);

    /* Stream: a live subscription sees what is emitted after it. */
    nm_sub *stream;
    CHECK(nm_bus_subscribe(node, NULL, &stream));
    CHECK(nm_bus_emit_str(node, "{\"token\": \"live\"}", NULL));
    nm_event e;
    while (nm_sub_next(stream, &e, 1000) == NM_OK) {
        printf("%s\n", (const char *)e.data);
        break; /* one is enough for the example */
    }

    nm_bus_stats st;
    CHECK(nm_bus_stats_get(node, &st));
    printf("ingested %llu, dispatched %llu, dropped %llu\n",
           (unsigned long long)st.ingested, (unsigned long long)st.dispatched,
           (unsigned long long)st.dropped);

    CHECK(nm_bus_shutdown(node, 5000));
    nm_sub_close(stream);
    nm_bus_close(node);
    return 0;
}
