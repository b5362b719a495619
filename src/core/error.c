/* src/core/error.c - NM_ERR_MAP expansion and the thread-local detail. */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>

#include <netmesh/version.h>

const char *
nm_strerror(int code)
{
    switch (code) {
    case NM_OK:
        return "success";
#define NM_ERR_STR_(name, value, msg)                                         \
    case (value):                                                             \
        return (msg);
        NM_ERR_MAP(NM_ERR_STR_)
#undef NM_ERR_STR_
    default:
        return "unknown error";
    }
}

const char *
nm_err_name(int code)
{
    switch (code) {
    case NM_OK:
        return "NM_OK";
#define NM_ERR_NAME_(name, value, msg)                                        \
    case (value):                                                             \
        return ("NM_" #name);
        NM_ERR_MAP(NM_ERR_NAME_)
#undef NM_ERR_NAME_
    default:
        return "NM_E?";
    }
}

static _Thread_local char nmi_detail[256];

const char *
nm_errdetail(void)
{
    return nmi_detail;
}

int
nmi_err(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(nmi_detail, sizeof(nmi_detail), fmt, ap);
    va_end(ap);
    return code;
}

void
nmi_err_clear(void)
{
    nmi_detail[0] = '\0';
}

const char *
nm_version(void)
{
    return NM_VERSION_STRING;
}

unsigned
nm_version_hex(void)
{
    return NM_VERSION_HEX;
}
