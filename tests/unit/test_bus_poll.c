/* tests/unit/test_bus_poll.c - poll, cursor paging, filters, ordering. */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>

#include "bus_helpers.h"

static nm_bus *
bus4(void)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 4;
    cfg.ring_capacity = 8192; /* larger than any test emits: no eviction */
    nm_bus *bus;
    NM_ASSERT_OK(nm_bus_open(&cfg, &bus));
    return bus;
}

Test(poll, paging_returns_every_event_exactly_once)
{
    nm_bus *bus = bus4();
    const int N = 5000;
    for (int k = 0; k < N; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    unsigned char *seen = calloc((size_t)N, 1);
    char *cursor = NULL;
    int total = 0, pages = 0;
    bool more = true;
    uint64_t last_seq[4] = {0};
    bool have_last[4] = {false};
    while (more) {
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = 97; /* not a divisor of anything */
        req.cursor = cursor;
        nm_poll_response resp;
        NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
        cr_assert_leq(resp.count, 97);
        for (size_t i = 0; i < resp.count; i++) {
            int v;
            cr_assert_eq(
                sscanf((const char *)resp.events[i].data, "{\"i\":%d}", &v),
                1);
            cr_assert(v >= 0 && v < N);
            cr_assert_eq(seen[v], 0, "event %d returned twice", v);
            seen[v] = 1;
            uint16_t s = resp.events[i].shard;
            if (have_last[s]) {
                cr_assert_gt(resp.events[i].seq, last_seq[s],
                             "per-shard order");
            }
            last_seq[s] = resp.events[i].seq;
            have_last[s] = true;
            total++;
        }
        free(cursor);
        cursor = strdup(resp.next_cursor);
        more = resp.has_more;
        nm_poll_response_free(&resp);
        cr_assert_lt(++pages, 1000);
    }
    cr_assert_eq(total, N);
    /* Polling again from the final cursor returns nothing. */
    nm_poll_request req;
    nm_poll_request_init(&req);
    req.cursor = cursor;
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 0);
    cr_assert_not(resp.has_more);
    nm_poll_response_free(&resp);
    /* New events show up after the old cursor. */
    NM_ASSERT_OK(emit_n(bus, N, NULL));
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 1);
    nm_poll_response_free(&resp);
    free(cursor);
    free(seen);
    nm_bus_close(bus);
}

Test(poll, cursor_is_base64_json_of_shard_to_id)
{
    nm_bus *bus = bus4();
    for (int k = 0; k < 40; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    nm_poll_request req;
    nm_poll_request_init(&req);
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 40);
    unsigned char bin[512];
    size_t blen;
    cr_assert_eq(sodium_base642bin(bin, sizeof(bin), resp.next_cursor,
                                   strlen(resp.next_cursor), NULL, &blen, NULL,
                                   sodium_base64_VARIANT_ORIGINAL),
                 0);
    json_t *obj = json_loadb((const char *)bin, blen, 0, NULL);
    cr_assert(json_is_object(obj));
    /* Each shard maps to the decimal seq of its last event. */
    uint64_t last[4] = {0};
    bool have[4] = {false};
    for (size_t i = 0; i < resp.count; i++) {
        last[resp.events[i].shard] = resp.events[i].seq;
        have[resp.events[i].shard] = true;
        cr_assert_eq(strtoull(resp.events[i].id, NULL, 10),
                     resp.events[i].seq);
    }
    for (int s = 0; s < 4; s++) {
        char key[4];
        snprintf(key, sizeof(key), "%d", s);
        json_t *v = json_object_get(obj, key);
        if (have[s]) {
            cr_assert(json_is_string(v));
            cr_assert_eq(strtoull(json_string_value(v), NULL, 10), last[s]);
        } else {
            cr_assert_null(v);
        }
    }
    json_decref(obj);
    nm_poll_response_free(&resp);
    nm_bus_close(bus);
}

Test(poll, malformed_cursors_are_rejected)
{
    nm_bus *bus = bus4();
    const char *bad[] = {
        "",                 /* empty */
        "!!!notbase64",     /* not base64 */
        "bm90IGpzb24=",     /* "not json" */
        "WzFd",             /* "[1]": not an object */
        "eyIwMSI6IjEifQ==", /* {"01":"1"}: non-canonical key */
        "eyI5IjoiMSJ9",     /* {"9":"1"}: no shard 9 */
        "eyIwIjoxfQ==",     /* {"0":1}: id not a string */
        "eyIwIjoiYWJjIn0=", /* {"0":"abc"}: not a memory id */
        "eyIwIjoiIn0=",     /* {"0":""}: empty id */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.cursor = bad[i];
        nm_poll_response resp = {0};
        int rc = nm_bus_poll(bus, &req, &resp);
        cr_assert_eq(rc, NM_EDECODE, "cursor '%s' -> %s", bad[i],
                     nm_err_name(rc));
        cr_assert_null(resp.events, "nothing filled on error");
    }
    /* {} is a valid, empty cursor. */
    nm_poll_request req;
    nm_poll_request_init(&req);
    req.cursor = "e30=";
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    nm_poll_response_free(&resp);
    nm_bus_close(bus);
}

Test(poll, bad_requests)
{
    nm_bus *bus = bus4();
    nm_poll_request req;
    nm_poll_response resp;
    nm_poll_request_init(&req);
    req.limit = 0;
    NM_ASSERT_ERR(nm_bus_poll(bus, &req, &resp), NM_EINVAL);
    req.limit = 100001;
    NM_ASSERT_ERR(nm_bus_poll(bus, &req, &resp), NM_EINVAL);
    nm_poll_request_init(&req);
    uint16_t sh[] = {7};
    req.shards = sh;
    req.nshards = 1;
    NM_ASSERT_ERR(nm_bus_poll(bus, &req, &resp), NM_EINVAL);
    req.nshards = 0;
    NM_ASSERT_ERR(nm_bus_poll(bus, &req, &resp), NM_EINVAL);
    NM_ASSERT_ERR(nm_bus_poll(NULL, &req, &resp), NM_EINVAL);
    NM_ASSERT_ERR(nm_bus_poll(bus, NULL, &resp), NM_EINVAL);
    NM_ASSERT_ERR(nm_bus_poll(bus, &req, NULL), NM_EINVAL);
    nm_poll_response_free(NULL);
    nm_bus_close(bus);
}

Test(poll, shard_filter_and_insertion_order)
{
    nm_bus *bus = bus4();
    for (int k = 0; k < 400; k++) {
        NM_ASSERT_OK(emit_n(bus, k, NULL));
    }
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    nm_poll_request req;
    nm_poll_request_init(&req);
    req.limit = 1000;
    uint16_t only[] = {2};
    req.shards = only;
    req.nshards = 1;
    nm_poll_response resp;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_gt(resp.count, 0);
    for (size_t i = 0; i < resp.count; i++) {
        cr_assert_eq(resp.events[i].shard, 2);
    }
    nm_poll_response_free(&resp);

    nm_poll_request_init(&req);
    req.limit = 1000;
    req.ordering = NM_ORDER_INSERTION;
    NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
    cr_assert_eq(resp.count, 400);
    for (size_t i = 1; i < resp.count; i++) {
        cr_assert_geq(resp.events[i].timestamp, resp.events[i - 1].timestamp);
    }
    /* One producer thread: insertion order is emit order. */
    for (size_t i = 0; i < resp.count; i++) {
        int v;
        sscanf((const char *)resp.events[i].data, "{\"i\":%d}", &v);
        cr_assert_eq(v, (int)i);
    }
    nm_poll_response_free(&resp);
    nm_bus_close(bus);
}

Test(poll, json_filters)
{
    nm_bus *bus = bus4();
    for (int k = 0; k < 30; k++) {
        char buf[96];
        snprintf(buf, sizeof(buf),
                 "{\"kind\":\"%s\",\"n\":%d,\"meta\":{\"even\":%s}}",
                 k % 3 == 0 ? "a" : "b", k, k % 2 == 0 ? "true" : "false");
        NM_ASSERT_OK(nm_bus_emit_str(bus, buf, NULL));
    }
    NM_ASSERT_OK(nm_bus_emit_raw(bus, "not json", 8, NULL));
    NM_ASSERT_OK(nm_bus_flush(bus, 10000));
    struct {
        const char *filter;
        size_t expect;
    } cases[] = {
        {"{\"path\":\"kind\",\"value\":\"a\"}", 10},
        {"{\"path\":\"meta.even\",\"value\":true}", 15},
        {"{\"$and\":[{\"path\":\"kind\",\"value\":\"a\"},"
         "{\"path\":\"meta.even\",\"value\":true}]}",
         5},
        {"{\"$or\":[{\"path\":\"n\",\"value\":1},{\"path\":\"n\",\"value\":2}]"
         "}",
         2},
        {"{\"$not\":{\"path\":\"kind\",\"value\":\"a\"}}",
         20}, /* never non-JSON */
        {"{\"$and\":[]}", 30},
        {"{\"$or\":[]}", 0},
        {"{\"path\":\"missing.deep\",\"value\":1}", 0},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        nm_filter *f;
        NM_ASSERT_OK(nm_filter_parse(cases[c].filter, &f));
        nm_poll_request req;
        nm_poll_request_init(&req);
        req.limit = 7; /* several pages: the cursor passes filtered events */
        req.filter = f;
        size_t total = 0;
        char *cursor = NULL;
        for (int page = 0; page < 100; page++) {
            req.cursor = cursor;
            nm_poll_response resp;
            NM_ASSERT_OK(nm_bus_poll(bus, &req, &resp));
            total += resp.count;
            free(cursor);
            cursor = strdup(resp.next_cursor);
            bool more = resp.has_more;
            nm_poll_response_free(&resp);
            if (!more) {
                break;
            }
        }
        free(cursor);
        cr_assert_eq(total, cases[c].expect, "filter %s: %zu", cases[c].filter,
                     total);
        nm_filter_free(f);
    }
    nm_bus_close(bus);
}

Test(filter, bad_filters_are_rejected)
{
    const char *bad[] = {
        "",
        "[]",
        "{\"path\":\"a\"}",
        "{\"path\":1,\"value\":1}",
        "{\"path\":\"\",\"value\":1}",
        "{\"path\":\"a..b\",\"value\":1}",
        "{\"$and\":{}}",
        "{\"$and\":[1]}",
        "{\"$not\":[]}",
        "{\"$and\":[],\"x\":1}",
        "{\"path\":\"a\",\"value\":1,\"extra\":2}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nm_filter *f = (nm_filter *)0x1;
        int rc = nm_filter_parse(bad[i], &f);
        cr_assert_eq(rc, NM_EDECODE, "'%s' -> %s", bad[i], nm_err_name(rc));
        cr_assert_null(f);
    }
    NM_ASSERT_ERR(nm_filter_parse(NULL, NULL), NM_EINVAL);
    /* Deep nesting is bounded, not a stack overflow. */
    char *deep = malloc(200 * 10 + 64);
    char *p = deep;
    for (int i = 0; i < 200; i++) {
        p += sprintf(p, "{\"$not\":");
    }
    p += sprintf(p, "{\"path\":\"a\",\"value\":1}");
    for (int i = 0; i < 200; i++) {
        *p++ = '}';
    }
    *p = '\0';
    nm_filter *f;
    NM_ASSERT_ERR(nm_filter_parse(deep, &f), NM_EDECODE);
    free(deep);
    nm_filter_free(NULL);
}

Test(filter, array_index_and_type_strict_equality)
{
    nm_filter *f;
    NM_ASSERT_OK(nm_filter_parse("{\"path\":\"xs.1\",\"value\":5}", &f));
    cr_assert(nm_filter_match(f, "{\"xs\":[4,5]}", 12));
    cr_assert_not(nm_filter_match(f, "{\"xs\":[4,5.0]}", 14));
    cr_assert_not(nm_filter_match(f, "{\"xs\":[4]}", 10));
    cr_assert_not(nm_filter_match(f, "garbage", 7));
    nm_filter_free(f);
}
