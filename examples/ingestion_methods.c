/*
 * examples/ingestion_methods.c - the seed's "Ingestion Methods" table, one
 * call each, with what each returns.
 *
 * | Rust                  | C                        | returns           |
 * | emit(&T)              | nm_bus_emit_json         | receipt           |
 * | emit_raw(bytes)       | nm_bus_emit_raw          | receipt (fastest) |
 * | emit_str(json)        | nm_bus_emit_str          | receipt           |
 * | emit_batch(&[T])      | nm_bus_emit_json_batch   | count accepted    |
 * | emit_raw_batch(vecs)  | nm_bus_emit_raw_batch    | count accepted    |
 */
#include <stdio.h>

#include <jansson.h>
#include <netmesh.h>

static void
show(const char *what, int rc, const nm_receipt *r)
{
    if (rc < 0) {
        printf("%-22s -> %s (%s)\n", what, nm_err_name(rc), nm_errdetail());
    } else if (r) {
        printf("%-22s -> shard %u, seq %llu, ts %llu ns\n", what, r->shard,
               (unsigned long long)r->seq, (unsigned long long)r->timestamp);
    } else {
        printf("%-22s -> %d accepted\n", what, rc);
    }
}

int
main(void)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 4;
    nm_bus *bus;
    if (nm_bus_open(&cfg, &bus) != NM_OK) {
        return 1;
    }
    nm_receipt r;
    int failures = 0;

    json_t *v = json_pack("{s:s, s:f}", "sensor", "t1", "celsius", 21.5);
    int rc = nm_bus_emit_json(bus, v, &r);
    show("emit_json (emit(&T))", rc, &r);
    failures += rc != NM_OK;
    json_decref(v);

    static const char raw[] = "{\"sensor\":\"t2\",\"celsius\":19.0}";
    rc = nm_bus_emit_raw(bus, raw, sizeof(raw) - 1, &r);
    show("emit_raw", rc, &r);
    failures += rc != NM_OK;

    rc = nm_bus_emit_str(bus, "{\"sensor\":\"t3\",\"celsius\":22.25}", &r);
    show("emit_str", rc, &r);
    failures += rc != NM_OK;

    json_t *vals[3];
    for (int i = 0; i < 3; i++) {
        vals[i] = json_pack("{s:i}", "n", i);
    }
    rc = nm_bus_emit_json_batch(bus, vals, 3);
    show("emit_json_batch", rc, NULL);
    failures += rc != 3;
    for (int i = 0; i < 3; i++) {
        json_decref(vals[i]);
    }

    const void *bufs[2] = {"{\"b\":1}", "{\"b\":2}"};
    size_t lens[2] = {7, 7};
    rc = nm_bus_emit_raw_batch(bus, bufs, lens, 2);
    show("emit_raw_batch", rc, NULL);
    failures += rc != 2;

    /* Errors are specific and change nothing. */
    show("emit_str(invalid)", nm_bus_emit_str(bus, "{oops", &r), NULL);
    show("emit_raw(empty)", nm_bus_emit_raw(bus, "", 0, &r), NULL);

    nm_bus_flush(bus, 5000);
    nm_bus_stats st;
    nm_bus_stats_get(bus, &st);
    printf("ingested %llu, dispatched %llu\n", (unsigned long long)st.ingested,
           (unsigned long long)st.dispatched);
    failures += st.ingested != 8 || st.dispatched != 8;
    nm_bus_close(bus);
    return failures ? 1 : 0;
}
