/* tests/unit/test_error.c - the error table, names, detail, version. */
#include <criterion/criterion.h>
#include <string.h>

#include <netmesh.h>

#include "core/core.h"

Test(error, every_code_has_a_name_and_message)
{
    int codes[] = {
#define XX(name, value, msg) NM_##name,
        NM_ERR_MAP(XX)
#undef XX
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    cr_assert_geq(n, 17);
    for (size_t i = 0; i < n; i++) {
        cr_assert_lt(codes[i], 0, "codes are negative");
        cr_assert_str_neq(nm_strerror(codes[i]), "unknown error");
        cr_assert_eq(strncmp(nm_err_name(codes[i]), "NM_E", 4), 0);
        for (size_t j = i + 1; j < n; j++) {
            cr_assert_neq(codes[i], codes[j], "codes are unique");
        }
    }
    cr_assert_str_eq(nm_err_name(NM_OK), "NM_OK");
    cr_assert_str_eq(nm_err_name(NM_EBACKPRESSURE), "NM_EBACKPRESSURE");
    cr_assert_str_eq(nm_strerror(-9999), "unknown error");
    cr_assert_str_eq(nm_err_name(12345), "NM_E?");
}

Test(error, seed_sdkerror_codes_exist)
{
    /* The codes the seed's SdkError needs now and later. */
    int needed[] = {NM_EINVAL,        NM_ENOMEM,        NM_EBACKPRESSURE,
                    NM_ESAMPLED,      NM_EUNROUTED,     NM_ESHUTDOWN,
                    NM_ECLOSED,       NM_ETIMEDOUT,     NM_ENOTCONN,
                    NM_ECHANREJECTED, NM_EUNAUTHORIZED, NM_ERATELIMITED,
                    NM_ECRYPTO,       NM_EIO,           NM_EPROTO,
                    NM_ENOTFOUND,     NM_EEXIST,        NM_ENOTSUP};
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
        cr_assert_neq(strcmp(nm_strerror(needed[i]), "unknown error"), 0);
    }
}

Test(error, detail_is_thread_local_and_formatted)
{
    cr_assert_eq(nmi_err(NM_EINVAL, "bad %s %d", "thing", 7), NM_EINVAL);
    cr_assert_str_eq(nm_errdetail(), "bad thing 7");
    nmi_err_clear();
    cr_assert_str_eq(nm_errdetail(), "");
}

Test(version, runtime_matches_header)
{
    cr_assert_str_eq(nm_version(), NM_VERSION_STRING);
    cr_assert_eq(nm_version_hex(), NM_VERSION_HEX);
}
