/*
 * examples/typed_stream.c - the seed's "Typed Streams": a subscription
 * that decodes every event into a typed struct, reporting (and skipping)
 * events that do not decode, without ending the stream.
 *
 * Rust: node.subscribe_typed::<TokenEvent>(Default::default())
 * C:    nm_bus_subscribe + nm_sub_next_json + your decoder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <netmesh.h>

typedef struct token_event {
    char token[64];
    unsigned index;
} token_event;

/* The typed decode: JSON -> struct. 0 on success. */
static int
decode_token_event(const json_t *v, token_event *out)
{
    const char *token;
    json_int_t index;
    json_error_t err;
    if (json_unpack_ex((json_t *)v, &err, JSON_STRICT, "{s:s, s:I}", "token",
                       &token, "index", &index) != 0 ||
        index < 0 || strlen(token) >= sizeof(out->token)) {
        return -1;
    }
    snprintf(out->token, sizeof(out->token), "%s", token);
    out->index = (unsigned)index;
    return 0;
}

int
main(void)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 1; /* one shard: the stream is in emit order */
    nm_bus *node;
    int rc = nm_bus_open(&cfg, &node);
    if (rc) {
        fprintf(stderr, "open: %s (%s)\n", nm_strerror(rc), nm_errdetail());
        return 1;
    }
    nm_sub *stream;
    rc = nm_bus_subscribe(node, NULL, &stream);
    if (rc) {
        fprintf(stderr, "subscribe: %s\n", nm_strerror(rc));
        return 1;
    }

    const char *events[] = {
        "{\"token\":\"hello\",\"index\":0}",
        "{\"token\":\"world\",\"index\":1}",
        "{\"token\":42,\"index\":2}", /* JSON, but not a TokenEvent */
        "{\"token\":\"again\",\"index\":3}",
    };
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        nm_bus_emit_str(node, events[i], NULL);
    }
    nm_bus_emit_raw(node, "\xff not json", 10, NULL);
    nm_bus_emit_str(node, "{\"token\":\"last\",\"index\":4}", NULL);

    int good = 0, bad = 0;
    for (;;) {
        nm_event ev;
        json_t *v;
        rc = nm_sub_next_json(stream, &ev, &v, 1000);
        if (rc == NM_ETIMEDOUT || rc == NM_ECLOSED) {
            break;
        }
        token_event te;
        if (rc == NM_EDECODE || decode_token_event(v, &te) != 0) {
            printf("skipping event %u:%llu: not a TokenEvent\n", ev.shard,
                   (unsigned long long)ev.seq);
            bad++;
        } else {
            printf("%u: %s\n", te.index, te.token);
            good++;
        }
        json_decref(v);
    }
    printf("%d typed events, %d skipped\n", good, bad);
    nm_sub_close(stream);
    nm_bus_close(node);
    return good == 4 && bad == 2 ? 0 : 1;
}
