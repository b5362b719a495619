/*
 * tests/unit/test_jetstream_config.c - JetStream adapter configuration:
 * defaults, and every invalid field rejected with NM_EINVAL and a detail
 * naming it, before any connection is attempted (no server needed).
 */
#include <criterion/criterion.h>
#include <string.h>

#include <netmesh.h>

#include "bus_helpers.h"

Test(jetstream_config, defaults_follow_upstream)
{
    nm_jetstream_config c;
    memset(&c, 0xab, sizeof(c));
    nm_jetstream_config_init(&c);
    cr_assert_eq(c.size, sizeof(c));
    cr_assert_null(c.url);
    cr_assert_str_eq(c.prefix, "net");
    cr_assert_eq(c.replicas, 1);
    cr_assert_eq(c.dedup_window_ms, 3600000);
    cr_assert_eq(c.storage, NM_JS_FILE);
    cr_assert_eq(c.max_messages, 0);
    cr_assert_eq(c.max_bytes, 0);
    cr_assert_eq(c.max_age_ms, 0);
    cr_assert_eq(c.connect_timeout_ms, 5000);
    cr_assert_eq(c.request_timeout_ms, 5000);
    cr_assert_eq(c.retry_deadline_ms, 30000);
    cr_assert_str_eq(nm_adapter_jetstream()->name, "jetstream");
    nm_jetstream_config_init(NULL); /* no-op */
}

static int
open_with(const nm_jetstream_config *jc)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 1;
    cfg.adapter = nm_adapter_jetstream();
    cfg.adapter_config = jc;
    nm_bus *bus = NULL;
    int rc = nm_bus_open(&cfg, &bus);
    cr_assert_null(bus);
    return rc;
}

#define EXPECT_EINVAL(field_word, ...)                                        \
    do {                                                                      \
        nm_jetstream_config jc;                                               \
        nm_jetstream_config_init(&jc);                                        \
        jc.url = "nats://127.0.0.1:4222";                                     \
        __VA_ARGS__;                                                          \
        NM_ASSERT_ERR(open_with(&jc), NM_EINVAL);                             \
        cr_assert_not_null(strstr(nm_errdetail(), field_word),                \
                           "detail '%s' should name %s", nm_errdetail(),      \
                           field_word);                                       \
    } while (0)

Test(jetstream_config, missing_config_or_url)
{
    NM_ASSERT_ERR(open_with(NULL), NM_EINVAL);
    cr_assert_not_null(strstr(nm_errdetail(), "url"));
    EXPECT_EINVAL("url", jc.url = NULL);
}

Test(jetstream_config, malformed_urls)
{
    const char *bad[] = {
        "",
        "127.0.0.1:4222",
        "http://127.0.0.1:4222",
        "nats://",
        "nats://:4222",
        "nats://host:",
        "nats://host:0",
        "nats://host:65536",
        "nats://host:12ab",
        "nats://host:4222/path",
        "nats://ho st:4222",
        "nats://a:1,",
        "nats://a:1,redis://b:2",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        EXPECT_EINVAL("url", jc.url = bad[i]);
    }
}

Test(jetstream_config, bad_fields_are_named)
{
    EXPECT_EINVAL("size", jc.size = 0);
    EXPECT_EINVAL("size", jc.size = sizeof(jc) + 8);
    EXPECT_EINVAL("prefix", jc.prefix = "");
    EXPECT_EINVAL("prefix", jc.prefix = "a.b");
    EXPECT_EINVAL("prefix", jc.prefix = "a b");
    EXPECT_EINVAL("prefix", jc.prefix = "a*");
    EXPECT_EINVAL("prefix", jc.prefix = "a>");
    EXPECT_EINVAL("replicas", jc.replicas = 0);
    EXPECT_EINVAL("replicas", jc.replicas = 6);
    EXPECT_EINVAL("dedup_window_ms", jc.dedup_window_ms = 0);
    EXPECT_EINVAL("dedup_window_ms", jc.dedup_window_ms = -5);
    EXPECT_EINVAL("storage", jc.storage = (nm_js_storage)7);
    EXPECT_EINVAL("max_messages", jc.max_messages = -1);
    EXPECT_EINVAL("max_bytes", jc.max_bytes = -1);
    EXPECT_EINVAL("max_age_ms", jc.max_age_ms = -1);
    EXPECT_EINVAL("max_age_ms", jc.max_age_ms = 50);
    EXPECT_EINVAL("connect_timeout_ms", jc.connect_timeout_ms = 0);
    EXPECT_EINVAL("request_timeout_ms", jc.request_timeout_ms = -1);
    EXPECT_EINVAL("retry_deadline_ms", jc.retry_deadline_ms = -1);
}

Test(jetstream_config, credentials_never_reach_the_detail)
{
    EXPECT_EINVAL("url", jc.url = "nats://bob:hunter2@host:99999");
    cr_assert_null(strstr(nm_errdetail(), "hunter2"), "%s", nm_errdetail());
}
