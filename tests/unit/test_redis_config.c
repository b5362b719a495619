/* tests/unit/test_redis_config.c - Redis adapter configuration: URL
 * parsing, config validation, an unreachable server at open. */
#include <string.h>

#include "adapters/redis/redis_impl.h"
#include "bus_helpers.h"
#include "servers.h"

static int
open_with(const nm_redis_config *rc, nm_bus **out)
{
    nm_bus_config cfg;
    nm_bus_config_init(&cfg);
    cfg.shards = 2;
    cfg.adapter = nm_adapter_redis();
    cfg.adapter_config = rc;
    *out = NULL;
    return nm_bus_open(&cfg, out);
}

#define EXPECT_CONFIG_ERROR(rc_, field)                                       \
    do {                                                                      \
        nm_bus *b_;                                                           \
        NM_ASSERT_ERR(open_with((rc_), &b_), NM_EINVAL);                      \
        cr_assert_null(b_);                                                   \
        cr_assert(strstr(nm_errdetail(), (field)) != NULL,                    \
                  "detail '%s' should name '%s'", nm_errdetail(), (field));   \
    } while (0)

Test(redis_config, defaults)
{
    nm_redis_config rc;
    memset(&rc, 0xab, sizeof(rc));
    nm_redis_config_init(&rc);
    cr_assert_eq(rc.size, sizeof(rc));
    cr_assert_null(rc.url);
    cr_assert_str_eq(rc.prefix, "net");
    cr_assert_eq(rc.maxlen, 0);
    cr_assert_eq(rc.pipeline, 1000);
    cr_assert_eq(rc.connect_timeout_ms, 5000);
    cr_assert_eq(rc.command_timeout_ms, 1000);
    cr_assert_eq(rc.retry_deadline_ms, 30000);
    nm_redis_config_init(NULL); /* no-op */
    const nm_adapter_ops *ops = nm_adapter_redis();
    cr_assert_str_eq(ops->name, "redis");
    cr_assert_eq(ops->size, sizeof(nm_adapter_ops));
}

Test(redis_config, url_forms)
{
    nmi_redis_url u;
    NM_ASSERT_OK(nmi_redis_url_parse("redis://127.0.0.1:6380", &u));
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 6380);
    cr_assert_null(u.user);
    cr_assert_null(u.password);
    cr_assert_eq(u.db, 0);
    cr_assert_str_eq(u.redacted, "redis://127.0.0.1:6380");
    nmi_redis_url_free(&u);

    NM_ASSERT_OK(nmi_redis_url_parse("redis://cache.example", &u));
    cr_assert_str_eq(u.host, "cache.example");
    cr_assert_eq(u.port, 6379, "default port");
    nmi_redis_url_free(&u);

    NM_ASSERT_OK(nmi_redis_url_parse("redis://:s3cret@h:1/7", &u));
    cr_assert_str_eq(u.host, "h");
    cr_assert_eq(u.port, 1);
    cr_assert_null(u.user);
    cr_assert_str_eq(u.password, "s3cret");
    cr_assert_eq(u.db, 7);
    cr_assert_str_eq(u.redacted, "redis://:***@h:1/7");
    nmi_redis_url_free(&u);

    NM_ASSERT_OK(nmi_redis_url_parse("redis://al%40ice:p%3Aw%40d@h:2/", &u));
    cr_assert_str_eq(u.user, "al@ice");
    cr_assert_str_eq(u.password, "p:w@d");
    cr_assert_eq(u.db, 0);
    cr_assert_str_eq(u.redacted, "redis://al%40ice:***@h:2/");
    nmi_redis_url_free(&u);

    /* A raw '@' in the password: the last '@' ends the userinfo. */
    NM_ASSERT_OK(nmi_redis_url_parse("redis://:a@b@h", &u));
    cr_assert_str_eq(u.password, "a@b");
    cr_assert_str_eq(u.host, "h");
    nmi_redis_url_free(&u);

    NM_ASSERT_OK(nmi_redis_url_parse("redis://[::1]:7000/2", &u));
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 7000);
    cr_assert_eq(u.db, 2);
    nmi_redis_url_free(&u);

    NM_ASSERT_OK(nmi_redis_url_parse("redis://[::1]", &u));
    cr_assert_eq(u.port, 6379);
    nmi_redis_url_free(&u);
}

Test(redis_config, malformed_urls)
{
    static const char *const bad[] = {
        "",
        "127.0.0.1:6379",
        "http://127.0.0.1:6379",
        "rediss://127.0.0.1:6379",
        "redis:/127.0.0.1",
        "redis://",
        "redis://:6379",
        "redis://h:",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:99999999999",
        "redis://h:12a",
        "redis://h:+1",
        "redis://h:1/x",
        "redis://h:1/-1",
        "redis://h:1/01",
        "redis://h:1/2147483648",
        "redis://h:1/0/1",
        "redis://h:1?db=2",
        "redis://h:1#frag",
        "redis://h o:1",
        "redis://user@h:1",
        "redis://:@h:1",
        "redis://:%zz@h:1",
        "redis://:%4@h:1",
        "redis://:%00@h:1",
        "redis://[::1:1",
        "redis://[]:1",
        "redis://[::1]x",
        "redis://[zz]:1",
        "redis://h:1:2",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nmi_redis_url u;
        int rc = nmi_redis_url_parse(bad[i], &u);
        cr_assert_eq(rc, NM_EINVAL, "'%s' -> %s", bad[i], nm_err_name(rc));
        cr_assert(strstr(nm_errdetail(), "url") != NULL, "'%s': %s", bad[i],
                  nm_errdetail());
        /* Through the bus too: NM_EINVAL, nothing created. */
        nm_redis_config rc2;
        nm_redis_config_init(&rc2);
        rc2.url = bad[i];
        EXPECT_CONFIG_ERROR(&rc2, "url");
    }
    NM_ASSERT_ERR(nmi_redis_url_parse(NULL, &(nmi_redis_url){0}), NM_EINVAL);
}

Test(redis_config, stream_ids)
{
    bool max;
    cr_assert(nmi_redis_id_valid("0-0", &max));
    cr_assert_not(max);
    cr_assert(nmi_redis_id_valid("1700000000000-42", &max));
    cr_assert(
        nmi_redis_id_valid("18446744073709551615-18446744073709551615", &max));
    cr_assert(max);
    static const char *const bad[] = {
        "",
        "-",
        "1",
        "1-",
        "-1",
        "a-1",
        "1-a",
        "1--1",
        "1-1-1",
        "+1-1",
        "1 -1",
        "18446744073709551616-0",
        "0-18446744073709551616",
        "000000000000000000001-0",
        "(1-1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(nmi_redis_id_valid(bad[i], &max), "'%s'", bad[i]);
    }
}

Test(redis_config, bad_fields_name_the_field)
{
    nm_redis_config rc;

    EXPECT_CONFIG_ERROR(NULL, "url");

    nm_redis_config_init(&rc);
    EXPECT_CONFIG_ERROR(&rc, "url"); /* url NULL */

    nm_redis_config_init(&rc);
    rc.url = "redis://127.0.0.1:1";
    rc.size = 0;
    EXPECT_CONFIG_ERROR(&rc, "size");

    nm_redis_config_init(&rc);
    rc.url = "redis://127.0.0.1:1";
    rc.prefix = "";
    EXPECT_CONFIG_ERROR(&rc, "prefix");

    nm_redis_config_init(&rc);
    rc.url = "redis://127.0.0.1:1";
    rc.pipeline = 0;
    EXPECT_CONFIG_ERROR(&rc, "pipeline");
    rc.pipeline = 1000001;
    EXPECT_CONFIG_ERROR(&rc, "pipeline");

    nm_redis_config_init(&rc);
    rc.url = "redis://127.0.0.1:1";
    rc.connect_timeout_ms = 0;
    EXPECT_CONFIG_ERROR(&rc, "connect_timeout_ms");

    nm_redis_config_init(&rc);
    rc.url = "redis://127.0.0.1:1";
    rc.command_timeout_ms = -5;
    EXPECT_CONFIG_ERROR(&rc, "command_timeout_ms");

    nm_redis_config_init(&rc);
    rc.url = "redis://127.0.0.1:1";
    rc.retry_deadline_ms = -1;
    EXPECT_CONFIG_ERROR(&rc, "retry_deadline_ms");
}

Test(redis_config, unreachable_server_names_the_url)
{
    int port = nmt_free_port(); /* nothing listens there */
    cr_assert_gt(port, 0);
    char url[96];
    snprintf(url, sizeof(url), "redis://:hunter2@127.0.0.1:%d/3", port);
    nm_redis_config rc;
    nm_redis_config_init(&rc);
    rc.url = url;
    rc.connect_timeout_ms = 2000;
    nm_bus *bus;
    NM_ASSERT_ERR(open_with(&rc, &bus), NM_ENOTCONN);
    cr_assert_null(bus);
    char shown[96];
    snprintf(shown, sizeof(shown), "redis://:***@127.0.0.1:%d/3", port);
    cr_assert(strstr(nm_errdetail(), shown) != NULL, "detail: %s",
              nm_errdetail());
    cr_assert(strstr(nm_errdetail(), "hunter2") == NULL,
              "the password never shows: %s", nm_errdetail());
}
