/*
 * tests/unit/test_name.c - channel name validation (upstream's rules) and
 * the canonical channel hash (XXH3-64 of the name).
 */
#include <criterion/criterion.h>

#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <netmesh.h>

static int
v(const char *s)
{
    return nm_channel_name_validate(s, strlen(s));
}

Test(name, size_macro_matches_function)
{
    cr_assert_eq(nm_channel_name_max(), NM_CHANNEL_NAME_MAX);
    cr_assert_eq(NM_CHANNEL_NAME_MAX, 255);
}

Test(name, accepts_valid_names)
{
    const char *ok[] = {"sensors",
                        "sensors/lidar",
                        "sensors/lidar/front",
                        "control.v2",
                        "my-channel_1",
                        "a",
                        "0",
                        "a..b",
                        ".hidden",
                        "x/.y/z",
                        "...",
                        "a/.../b",
                        "svc.replies.0123456789abcdef",
                        "-_./x"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_assert_eq(v(ok[i]), NM_OK, "'%s' should be valid: %s", ok[i],
                     nm_errdetail());
    }
}

Test(name, rejects_each_rule)
{
    const char *bad[] = {"",        "/leading",  "trailing/",  "/",
                         "a//b",    "has space", "has@symbol", "Upper",
                         "sensorS", ".",         "..",         "a/./b",
                         "a/../b",  "./a",       "a/..",       "a/.",
                         "tab\t",   "\xc3\xa9",  "a\\b",       "a:b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(v(bad[i]), NM_EINVAL, "'%s' should be invalid", bad[i]);
        cr_assert_neq(nm_errdetail()[0], '\0', "a detail is set");
    }
}

Test(name, length_limits)
{
    char buf[300];
    memset(buf, 'a', sizeof(buf));
    cr_assert_eq(nm_channel_name_validate(buf, 255), NM_OK);
    cr_assert_eq(nm_channel_name_validate(buf, 256), NM_EINVAL);
    cr_assert_eq(nm_channel_name_validate(buf, 0), NM_EINVAL);
    cr_assert_eq(nm_channel_name_validate(NULL, 3), NM_EINVAL);
}

Test(name, embedded_nul_is_invalid)
{
    cr_assert_eq(nm_channel_name_validate("ab\0cd", 5), NM_EINVAL);
    /* Only len bytes are read: a prefix of an invalid string is fine. */
    cr_assert_eq(nm_channel_name_validate("abc/", 3), NM_OK);
}

Test(name, every_single_byte)
{
    for (int c = 0; c < 256; c++) {
        char s[3] = {'a', (char)c, 'a'};
        bool want = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '/';
        cr_assert_eq(nm_channel_name_validate(s, 3) == NM_OK, want,
                     "byte 0x%02x", c);
    }
}

Test(name, hash_is_xxh3_64_of_the_bytes)
{
    uint64_t h = 0;
    cr_assert_eq(nm_channel_hash("sensors/lidar", 13, &h), NM_OK);
    cr_assert_eq(h, (uint64_t)XXH3_64bits("sensors/lidar", 13));
    /* Independent anchor: XXH3-64 of the empty input, seed 0, is
     * 0x2D06800538D394C2 (xxHash's published sanity value). */
    cr_assert_eq((uint64_t)XXH3_64bits("", 0), 0x2D06800538D394C2ull);

    uint64_t h2 = 0;
    cr_assert_eq(nm_channel_hash("sensors/lidaR", 13, &h2), NM_EINVAL);
    cr_assert_eq(h2, 0, "out untouched on error");
    cr_assert_eq(nm_channel_hash("a", 1, NULL), NM_EINVAL);
}
