/* src/core/json_scan.c - see json_scan.h. */
#include "core/json_scan.h"

#include <string.h>

const uint8_t *
nmi_json_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* One UTF-8 sequence starting at p (first byte >= 0x80). */
static const uint8_t *
utf8_seq(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = *p;
    int n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        cp = c & 0x07;
    } else {
        return NULL;
    }
    if (end - p <= n) {
        return NULL;
    }
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return NULL;
        }
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) ||
        (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
        return NULL; /* overlong, out of range, or a surrogate */
    }
    return p + n + 1;
}

static int
hexd(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

const uint8_t *
nmi_json_string(const uint8_t *p, const uint8_t *end)
{
    if (p >= end || *p != '"') {
        return NULL;
    }
    p++;
    while (p < end) {
        uint8_t c = *p;
        if (c == '"') {
            return p + 1;
        }
        if (c < 0x20) {
            return NULL;
        }
        if (c == '\\') {
            if (end - p < 2) {
                return NULL;
            }
            uint8_t e = p[1];
            if (e == 'u') {
                if (end - p < 6 || !hexd(p[2]) || !hexd(p[3]) || !hexd(p[4]) ||
                    !hexd(p[5])) {
                    return NULL;
                }
                p += 6;
            } else if (strchr("\"\\/bfnrt", e) && e != '\0') {
                p += 2;
            } else {
                return NULL;
            }
        } else if (c >= 0x80) {
            p = utf8_seq(p, end);
            if (!p) {
                return NULL;
            }
        } else {
            p++;
        }
    }
    return NULL;
}

static const uint8_t *
number(const uint8_t *p, const uint8_t *end)
{
    if (p < end && *p == '-') {
        p++;
    }
    if (p >= end) {
        return NULL;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            return NULL;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') {
            return NULL;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    return p;
}

static const uint8_t *
literal(const uint8_t *p, const uint8_t *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) {
        return NULL;
    }
    return p + n;
}

static const uint8_t *
value(const uint8_t *p, const uint8_t *end, int depth)
{
    if (p >= end) {
        return NULL;
    }
    switch (*p) {
    case '"':
        return nmi_json_string(p, end);
    case 't':
        return literal(p, end, "true");
    case 'f':
        return literal(p, end, "false");
    case 'n':
        return literal(p, end, "null");
    case '{':
    case '[': {
        if (depth >= NMI_JSON_MAX_DEPTH) {
            return NULL;
        }
        bool obj = *p == '{';
        uint8_t close = obj ? '}' : ']';
        p = nmi_json_ws(p + 1, end);
        if (p < end && *p == close) {
            return p + 1;
        }
        for (;;) {
            if (obj) {
                p = nmi_json_string(p, end);
                if (!p) {
                    return NULL;
                }
                p = nmi_json_ws(p, end);
                if (p >= end || *p != ':') {
                    return NULL;
                }
                p = nmi_json_ws(p + 1, end);
            }
            p = value(p, end, depth + 1);
            if (!p) {
                return NULL;
            }
            p = nmi_json_ws(p, end);
            if (p >= end) {
                return NULL;
            }
            if (*p == close) {
                return p + 1;
            }
            if (*p != ',') {
                return NULL;
            }
            p = nmi_json_ws(p + 1, end);
        }
    }
    default:
        return number(p, end);
    }
}

const uint8_t *
nmi_json_value(const uint8_t *p, const uint8_t *end)
{
    return value(p, end, 0);
}

bool
nmi_json_valid(const void *data, size_t len)
{
    const uint8_t *p = data, *end = p + len;
    p = nmi_json_ws(p, end);
    p = nmi_json_value(p, end);
    return p && nmi_json_ws(p, end) == end;
}
