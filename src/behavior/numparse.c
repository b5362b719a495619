/* src/behavior/numparse.c - Rust's str::parse rules for integers and f64,
 * and upstream's lenient semver triple parser. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "behavior/caps_impl.h"

bool
nmi_parse_u64(const char *s, size_t n, uint64_t *out)
{
    size_t i = 0;
    if (n > 0 && s[0] == '+') {
        i = 1;
    }
    if (i >= n) {
        return false;
    }
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        if (c < '0' || c > '9') {
            return false;
        }
        uint64_t d = c - '0';
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool
nmi_parse_u32(const char *s, size_t n, uint32_t *out)
{
    uint64_t v;
    if (!nmi_parse_u64(s, n, &v) || v > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

bool
nmi_parse_u8(const char *s, size_t n, uint8_t *out)
{
    uint64_t v;
    if (!nmi_parse_u64(s, n, &v) || v > 255) {
        return false;
    }
    *out = (uint8_t)v;
    return true;
}

static bool
ieq(const char *s, size_t n, const char *w)
{
    size_t wl = strlen(w);
    if (n != wl) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != w[i]) {
            return false;
        }
    }
    return true;
}

bool
nmi_parse_f64(const char *s, size_t n, double *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i >= n) {
        return false;
    }
    const char *b = s + i;
    size_t bl = n - i;
    if (ieq(b, bl, "inf") || ieq(b, bl, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return true;
    }
    if (ieq(b, bl, "nan")) {
        *out = neg ? -NAN : NAN;
        return true;
    }
    /* digits [. digits] | . digits, then optional e[+-]digits */
    size_t j = 0, intd = 0, fracd = 0;
    while (j < bl && b[j] >= '0' && b[j] <= '9') {
        j++;
        intd++;
    }
    if (j < bl && b[j] == '.') {
        j++;
        while (j < bl && b[j] >= '0' && b[j] <= '9') {
            j++;
            fracd++;
        }
    }
    if (intd + fracd == 0) {
        return false;
    }
    if (j < bl && (b[j] == 'e' || b[j] == 'E')) {
        j++;
        if (j < bl && (b[j] == '+' || b[j] == '-')) {
            j++;
        }
        size_t ed = 0;
        while (j < bl && b[j] >= '0' && b[j] <= '9') {
            j++;
            ed++;
        }
        if (ed == 0) {
            return false;
        }
    }
    if (j != bl) {
        return false;
    }
    /* The text is validated: strtod (correctly rounded in glibc) agrees
     * with Rust on it. Copy to get a terminator. */
    char tmp[128];
    char *t = n < sizeof(tmp) ? tmp : malloc(n + 1);
    if (t == NULL) {
        return false;
    }
    memcpy(t, s, n);
    t[n] = '\0';
    *out = nmi_strtod_c(t);
    if (t != tmp) {
        free(t);
    }
    return true;
}

/* ------------------------------------------------------------ semver */

/* Length of a Unicode White_Space character at p (0 if none). */
static size_t
uws(const unsigned char *p, const unsigned char *end)
{
    size_t left = (size_t)(end - p);
    if (left == 0) {
        return 0;
    }
    unsigned c = p[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0D)) {
        return 1;
    }
    if (c == 0xC2 && left >= 2 && (p[1] == 0x85 || p[1] == 0xA0)) {
        return 2;
    }
    if (left >= 3) {
        unsigned cp =
            ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
        if ((c & 0xF0) == 0xE0 && (p[1] & 0xC0) == 0x80 &&
            (p[2] & 0xC0) == 0x80) {
            if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
                cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
                cp == 0x3000) {
                return 3;
            }
        }
    }
    return 0;
}

/* Length of a White_Space character ending at end (0 if none). */
static size_t
uws_back(const unsigned char *start, const unsigned char *end)
{
    size_t avail = (size_t)(end - start);
    for (size_t k = 1; k <= 3 && k <= avail; k++) {
        if (uws(end - k, end) == k) {
            return k;
        }
    }
    return 0;
}

static bool
semver_part(const char *s, size_t n, uint64_t *out)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    size_t k;
    while (p < e && (k = uws(p, e)) > 0) {
        p += k;
    }
    while (e > p && (k = uws_back(p, e)) > 0) {
        e -= k;
    }
    return nmi_parse_u64((const char *)p, (size_t)(e - p), out);
}

bool
nmi_parse_semver(const char *s, size_t n, nmi_semver *out)
{
    size_t core = n;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-' || s[i] == '+') {
            core = i;
            break;
        }
    }
    uint64_t parts[3] = {0, 0, 0};
    size_t np = 0, start = 0;
    for (size_t i = 0; i <= core; i++) {
        if (i == core || s[i] == '.') {
            if (np == 3) {
                return false; /* 4+ components */
            }
            if (!semver_part(s + start, i - start, &parts[np])) {
                return false;
            }
            np++;
            start = i + 1;
        }
    }
    out->major = parts[0];
    out->minor = parts[1];
    out->patch = parts[2];
    return true;
}

int
nmi_semver_cmp(const nmi_semver *a, const nmi_semver *b)
{
    if (a->major != b->major) {
        return a->major < b->major ? -1 : 1;
    }
    if (a->minor != b->minor) {
        return a->minor < b->minor ? -1 : 1;
    }
    if (a->patch != b->patch) {
        return a->patch < b->patch ? -1 : 1;
    }
    return 0;
}

bool
nmi_semver_caret(const nmi_semver *lhs, const nmi_semver *rhs)
{
    if (nmi_semver_cmp(lhs, rhs) < 0) {
        return false;
    }
    if (rhs->major > 0) {
        return lhs->major == rhs->major;
    }
    if (rhs->minor > 0) {
        return lhs->major == 0 && lhs->minor == rhs->minor;
    }
    return nmi_semver_cmp(lhs, rhs) == 0;
}
