/* src/behavior/bjson.c - JSON reader (serde_json rules) and writers. */
#include "behavior/bjson.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "behavior/rust_escape.h"
#include "core/core.h"

/* ================================================================== arena */

struct nmi_arena_chunk {
    nmi_arena_chunk *next;
    size_t used, cap;
    /* data follows, 16-byte aligned */
    _Alignas(16) unsigned char data[];
};

void
nmi_arena_init(nmi_arena *a)
{
    a->head = NULL;
}

void
nmi_arena_free(nmi_arena *a)
{
    nmi_arena_chunk *c = a->head;
    while (c) {
        nmi_arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
}

void *
nmi_arena_alloc(nmi_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) {
        n = 16;
    }
    nmi_arena_chunk *c = a->head;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL) {
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

/* ================================================================== numbers
 */

double
nmi_strtod_c(char *buf)
{
    /* strtod follows LC_NUMERIC; an application may have set a locale
     * whose decimal point is not '.'. The text is ASCII and validated, so
     * swap the point in place. */
    const char *dp = localeconv()->decimal_point;
    if (dp && dp[0] && dp[0] != '.' && dp[1] == '\0') {
        for (char *p = buf; *p; p++) {
            if (*p == '.') {
                *p = dp[0];
            }
        }
    }
    return strtod(buf, NULL);
}

/* ================================================================== parser */

typedef struct parser {
    const unsigned char *p, *start, *end;
    nmi_arena *a;
    int depth;
    int rc;
} parser;

static int
perr(parser *ps, const char *what)
{
    if (ps->rc == 0) {
        ps->rc = nmi_err(NM_EDECODE, "JSON: %s at byte %zu", what,
                         (size_t)(ps->p - ps->start));
    }
    return ps->rc;
}

static int
poom(parser *ps)
{
    if (ps->rc == 0) {
        ps->rc = nmi_err(NM_ENOMEM, "JSON: out of memory");
    }
    return ps->rc;
}

static void
skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                               *ps->p == '\n' || *ps->p == '\r')) {
        ps->p++;
    }
}

static int parse_value(parser *ps, nmi_bj *out);

static int
hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else {
            return -1;
        }
        v = (v << 4) | d;
    }
    *out = v;
    return 0;
}

static size_t
put_utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), 0 if
 * invalid (overlong, surrogate, > U+10FFFF, truncated). */
static size_t
utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t n;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
        return 0;
    }
    return n;
}

/* Parse a string starting at '"'. */
static int
parse_string(parser *ps, const char **out, size_t *olen, bool *has_nul)
{
    const unsigned char *p = ps->p + 1;
    /* First pass: find the end and validate; the decoded form is never
     * longer than the raw form. */
    const unsigned char *q = p;
    while (q < ps->end && *q != '"') {
        if (*q == '\\') {
            q += 2;
        } else {
            q++;
        }
    }
    if (q >= ps->end) {
        ps->p = ps->end;
        return perr(ps, "unterminated string");
    }
    size_t cap = (size_t)(q - p) + 1;
    unsigned char *buf = nmi_arena_alloc(ps->a, cap);
    if (buf == NULL) {
        return poom(ps);
    }
    size_t n = 0;
    bool nul = false;
    while (p < ps->end) {
        unsigned c = *p;
        if (c == '"') {
            break;
        }
        if (c < 0x20) {
            ps->p = p;
            return perr(ps, "control character in string");
        }
        if (c == '\\') {
            if (p + 1 >= ps->end) {
                ps->p = p;
                return perr(ps, "unterminated escape");
            }
            unsigned e = p[1];
            p += 2;
            switch (e) {
            case '"':
                buf[n++] = '"';
                break;
            case '\\':
                buf[n++] = '\\';
                break;
            case '/':
                buf[n++] = '/';
                break;
            case 'b':
                buf[n++] = '\b';
                break;
            case 'f':
                buf[n++] = '\f';
                break;
            case 'n':
                buf[n++] = '\n';
                break;
            case 'r':
                buf[n++] = '\r';
                break;
            case 't':
                buf[n++] = '\t';
                break;
            case 'u': {
                unsigned cp;
                if (ps->end - p < 4 || hex4(p, &cp) != 0) {
                    ps->p = p;
                    return perr(ps, "invalid \\u escape");
                }
                p += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    ps->p = p;
                    return perr(ps, "lone trailing surrogate in \\u escape");
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (ps->end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
                        hex4(p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
                        ps->p = p;
                        return perr(ps,
                                    "lone leading surrogate in \\u escape");
                    }
                    p += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp == 0) {
                    nul = true;
                }
                n += put_utf8(buf + n, cp);
                break;
            }
            default:
                ps->p = p - 1;
                return perr(ps, "invalid escape");
            }
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(p, ps->end);
            if (k == 0) {
                ps->p = p;
                return perr(ps, "invalid UTF-8 in string");
            }
            memcpy(buf + n, p, k);
            n += k;
            p += k;
            continue;
        }
        buf[n++] = (unsigned char)c;
        p++;
    }
    buf[n] = '\0';
    ps->p = p + 1;
    *out = (const char *)buf;
    *olen = n;
    *has_nul = nul;
    return 0;
}

static int
parse_number(parser *ps, nmi_bj *out)
{
    const unsigned char *s = ps->p, *p = s;
    bool neg = false, frac = false, exp = false;
    if (p < ps->end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= ps->end || !(*p >= '0' && *p <= '9')) {
        ps->p = p;
        return perr(ps, "invalid number");
    }
    const unsigned char *ids = p;
    if (*p == '0') {
        p++;
        if (p < ps->end && *p >= '0' && *p <= '9') {
            ps->p = p;
            return perr(ps, "invalid number (leading zero)");
        }
    } else {
        while (p < ps->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    const unsigned char *ide = p;
    if (p < ps->end && *p == '.') {
        frac = true;
        p++;
        if (p >= ps->end || !(*p >= '0' && *p <= '9')) {
            ps->p = p;
            return perr(ps, "invalid number (no digit after '.')");
        }
        while (p < ps->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        exp = true;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= ps->end || !(*p >= '0' && *p <= '9')) {
            ps->p = p;
            return perr(ps, "invalid number (no exponent digit)");
        }
        while (p < ps->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    size_t tl = (size_t)(p - s);
    char tmp[64];
    char *tok = tl < sizeof(tmp) ? tmp : malloc(tl + 1);
    if (tok == NULL) {
        return poom(ps);
    }
    memcpy(tok, s, tl);
    tok[tl] = '\0';
    double f = nmi_strtod_c(tok);
    if (tok != tmp) {
        free(tok);
    }
    out->type = NMI_BJ_NUM;
    out->v.num.f = f;
    out->v.num.u = 0;
    out->v.num.i = 0;
    out->v.num.cls = NMI_BJ_F64;
    if (!frac && !exp) {
        /* Integer token: u64 / i64 when it fits, like serde_json. */
        uint64_t m = 0;
        bool over = false;
        for (const unsigned char *d = ids; d < ide; d++) {
            uint64_t dig = (uint64_t)(*d - '0');
            if (m > (UINT64_MAX - dig) / 10) {
                over = true;
                break;
            }
            m = m * 10 + dig;
        }
        if (!over) {
            if (!neg) {
                out->v.num.cls = NMI_BJ_U64;
                out->v.num.u = m;
            } else if (m != 0 && m <= (uint64_t)1 << 63) {
                out->v.num.cls = NMI_BJ_I64;
                out->v.num.i =
                    m == ((uint64_t)1 << 63) ? INT64_MIN : -(int64_t)m;
            }
        }
    }
    if (out->v.num.cls == NMI_BJ_F64 && isinf(f)) {
        ps->p = s;
        return perr(ps, "number out of range");
    }
    ps->p = p;
    return 0;
}

static int
lit(parser *ps, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0) {
        return perr(ps, "invalid literal");
    }
    ps->p += n;
    return 0;
}

typedef struct vec {
    void *items;
    size_t n, cap, size;
} vec;

static void *
vec_push(vec *v)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 8;
        void *ni = realloc(v->items, nc * v->size);
        if (ni == NULL) {
            return NULL;
        }
        v->items = ni;
        v->cap = nc;
    }
    return (char *)v->items + v->size * v->n++;
}

static int
parse_array(parser *ps, nmi_bj *out)
{
    ps->p++; /* '[' */
    vec v = {NULL, 0, 0, sizeof(nmi_bj)};
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
    } else {
        for (;;) {
            nmi_bj *slot = vec_push(&v);
            if (slot == NULL) {
                free(v.items);
                return poom(ps);
            }
            skip_ws(ps);
            if (parse_value(ps, slot) != 0) {
                free(v.items);
                return ps->rc;
            }
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == ']') {
                ps->p++;
                break;
            }
            free(v.items);
            return perr(ps, "expected ',' or ']'");
        }
    }
    out->type = NMI_BJ_ARR;
    out->v.arr.n = v.n;
    out->v.arr.items = NULL;
    if (v.n) {
        out->v.arr.items = nmi_arena_alloc(ps->a, v.n * sizeof(nmi_bj));
        if (out->v.arr.items == NULL) {
            free(v.items);
            return poom(ps);
        }
        memcpy(out->v.arr.items, v.items, v.n * sizeof(nmi_bj));
    }
    free(v.items);
    return 0;
}

static int
parse_object(parser *ps, nmi_bj *out)
{
    ps->p++; /* '{' */
    vec v = {NULL, 0, 0, sizeof(nmi_bj_member)};
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
    } else {
        for (;;) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') {
                free(v.items);
                return perr(ps, "expected a string key");
            }
            nmi_bj_member *m = vec_push(&v);
            if (m == NULL) {
                free(v.items);
                return poom(ps);
            }
            if (parse_string(ps, &m->key, &m->klen, &m->key_has_nul) != 0) {
                free(v.items);
                return ps->rc;
            }
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(v.items);
                return perr(ps, "expected ':'");
            }
            ps->p++;
            skip_ws(ps);
            if (parse_value(ps, &m->val) != 0) {
                free(v.items);
                return ps->rc;
            }
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == '}') {
                ps->p++;
                break;
            }
            free(v.items);
            return perr(ps, "expected ',' or '}'");
        }
    }
    out->type = NMI_BJ_OBJ;
    out->v.obj.n = v.n;
    out->v.obj.m = NULL;
    if (v.n) {
        out->v.obj.m = nmi_arena_alloc(ps->a, v.n * sizeof(nmi_bj_member));
        if (out->v.obj.m == NULL) {
            free(v.items);
            return poom(ps);
        }
        memcpy(out->v.obj.m, v.items, v.n * sizeof(nmi_bj_member));
    }
    free(v.items);
    return 0;
}

static int
parse_value(parser *ps, nmi_bj *out)
{
    if (ps->p >= ps->end) {
        return perr(ps, "unexpected end of input");
    }
    switch (*ps->p) {
    case '{':
    case '[': {
        if (++ps->depth > NMI_BJ_MAX_DEPTH) {
            return perr(ps, "recursion limit exceeded");
        }
        int rc = *ps->p == '{' ? parse_object(ps, out) : parse_array(ps, out);
        ps->depth--;
        return rc;
    }
    case '"':
        out->type = NMI_BJ_STR;
        return parse_string(ps, &out->v.str.s, &out->v.str.len,
                            &out->v.str.has_nul);
    case 't':
        out->type = NMI_BJ_TRUE;
        return lit(ps, "true");
    case 'f':
        out->type = NMI_BJ_FALSE;
        return lit(ps, "false");
    case 'n':
        out->type = NMI_BJ_NULL;
        return lit(ps, "null");
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) {
            return parse_number(ps, out);
        }
        return perr(ps, "expected a value");
    }
}

int
nmi_bj_parse(nmi_arena *a, const char *p, size_t len, nmi_bj **out)
{
    parser ps = {(const unsigned char *)p,
                 (const unsigned char *)p,
                 (const unsigned char *)p + len,
                 a,
                 0,
                 0};
    nmi_bj *root = nmi_arena_alloc(a, sizeof(*root));
    if (root == NULL) {
        return nmi_err(NM_ENOMEM, "JSON: out of memory");
    }
    skip_ws(&ps);
    if (parse_value(&ps, root) != 0) {
        return ps.rc;
    }
    skip_ws(&ps);
    if (ps.p != ps.end) {
        return perr(&ps, "trailing characters");
    }
    *out = root;
    return 0;
}

const nmi_bj *
nmi_bj_get(const nmi_bj *obj, const char *key)
{
    if (obj == NULL || obj->type != NMI_BJ_OBJ) {
        return NULL;
    }
    size_t kl = strlen(key);
    for (size_t i = 0; i < obj->v.obj.n; i++) {
        const nmi_bj_member *m = &obj->v.obj.m[i];
        if (m->klen == kl && memcmp(m->key, key, kl) == 0) {
            return &m->val;
        }
    }
    return NULL;
}

const char *
nmi_bj_dup_key(const nmi_bj *obj)
{
    if (obj == NULL || obj->type != NMI_BJ_OBJ) {
        return NULL;
    }
    /* Objects here are small (a handful of fields); metadata maps are not
     * checked for duplicates (a map keeps the last value). */
    for (size_t i = 1; i < obj->v.obj.n; i++) {
        for (size_t j = 0; j < i; j++) {
            const nmi_bj_member *a = &obj->v.obj.m[i], *b = &obj->v.obj.m[j];
            if (a->klen == b->klen && memcmp(a->key, b->key, a->klen) == 0) {
                return a->key;
            }
        }
    }
    return NULL;
}

int
nmi_bj_as_f64(const nmi_bj *v, const char *what, double *out)
{
    if (v->type != NMI_BJ_NUM) {
        return nmi_err(NM_EDECODE, "'%s' must be a number", what);
    }
    *out = v->v.num.f;
    return 0;
}

int
nmi_bj_as_u32(const nmi_bj *v, const char *what, uint32_t *out)
{
    if (v->type != NMI_BJ_NUM) {
        return nmi_err(NM_EDECODE, "'%s' must be an integer", what);
    }
    if (v->v.num.cls != NMI_BJ_U64 || v->v.num.u > UINT32_MAX) {
        return nmi_err(NM_EDECODE, "'%s' must be an integer in 0..2^32-1",
                       what);
    }
    *out = (uint32_t)v->v.num.u;
    return 0;
}

int
nmi_bj_as_str(const nmi_bj *v, const char *what, const char **out)
{
    if (v->type != NMI_BJ_STR) {
        return nmi_err(NM_EDECODE, "'%s' must be a string", what);
    }
    if (v->v.str.has_nul) {
        return nmi_err(NM_EDECODE, "'%s' contains U+0000 (not supported)",
                       what);
    }
    *out = v->v.str.s;
    return 0;
}

/* ================================================================== writer */

void
nmi_sb_init(nmi_sb *sb)
{
    sb->buf = NULL;
    sb->len = sb->cap = 0;
    sb->oom = false;
}

void
nmi_sb_free(nmi_sb *sb)
{
    free(sb->buf);
    nmi_sb_init(sb);
}

static bool
sb_grow(nmi_sb *sb, size_t extra)
{
    if (sb->oom) {
        return false;
    }
    if (sb->len + extra + 1 <= sb->cap) {
        return true;
    }
    size_t nc = sb->cap ? sb->cap : 64;
    while (nc < sb->len + extra + 1) {
        nc *= 2;
    }
    char *nb = realloc(sb->buf, nc);
    if (nb == NULL) {
        sb->oom = true;
        return false;
    }
    sb->buf = nb;
    sb->cap = nc;
    return true;
}

void
nmi_sb_putn(nmi_sb *sb, const char *s, size_t n)
{
    if (!sb_grow(sb, n)) {
        return;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void
nmi_sb_puts(nmi_sb *sb, const char *s)
{
    nmi_sb_putn(sb, s, strlen(s));
}

void
nmi_sb_putc(nmi_sb *sb, char c)
{
    nmi_sb_putn(sb, &c, 1);
}

void
nmi_sb_putu64(nmi_sb *sb, uint64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%llu", (unsigned long long)v);
    nmi_sb_putn(sb, b, (size_t)n);
}

int
nmi_sb_take(nmi_sb *sb, char **out, size_t *len)
{
    if (sb->oom) {
        nmi_sb_free(sb);
        return nmi_err(NM_ENOMEM, "out of memory building a string");
    }
    if (sb->buf == NULL) {
        sb->buf = malloc(1);
        if (sb->buf == NULL) {
            return nmi_err(NM_ENOMEM, "out of memory building a string");
        }
        sb->buf[0] = '\0';
    }
    *out = sb->buf;
    if (len) {
        *len = sb->len;
    }
    nmi_sb_init(sb);
    return 0;
}

void
nmi_sb_json_str(nmi_sb *sb, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    nmi_sb_putc(sb, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\f':
            esc = "\\f";
            break;
        case '\r':
            esc = "\\r";
            break;
        default:
            if (c < 0x20) {
                u[0] = '\\';
                u[1] = 'u';
                u[2] = '0';
                u[3] = '0';
                u[4] = hex[c >> 4];
                u[5] = hex[c & 15];
                u[6] = '\0';
                esc = u;
            }
        }
        if (esc) {
            nmi_sb_putn(sb, s + run, i - run);
            nmi_sb_puts(sb, esc);
            run = i + 1;
        }
    }
    nmi_sb_putn(sb, s + run, n - run);
    nmi_sb_putc(sb, '"');
}

/* ------------------------------------------------------- shortest digits */

/* Parse "%.*e" output "d.ddde[+-]XX" into digits and exponent. */
static int
split_e(const char *buf, char *digits, int *exp10)
{
    int n = 0;
    const char *p = buf;
    for (; *p && *p != 'e'; p++) {
        if (*p >= '0' && *p <= '9') {
            digits[n++] = *p;
        }
    }
    *exp10 = *p == 'e' ? atoi(p + 1) : 0;
    return n;
}

static bool
roundtrips(const char *digits, int n, int exp10, double v)
{
    char buf[64];
    int k = 0;
    buf[k++] = digits[0];
    if (n > 1) {
        buf[k++] = '.';
        memcpy(buf + k, digits + 1, (size_t)n - 1);
        k += n - 1;
    }
    k += snprintf(buf + k, sizeof(buf) - (size_t)k, "e%d", exp10);
    return nmi_strtod_c(buf) == v;
}

/* digits +/- one unit in the last place; false when it changes the digit
 * count (carry out or borrow to a leading zero). */
static bool
bump(const char *in, int n, int exp10, int dir, char *out, int *oexp)
{
    memcpy(out, in, (size_t)n);
    int i = n - 1;
    if (dir > 0) {
        while (i >= 0 && out[i] == '9') {
            out[i--] = '0';
        }
        if (i < 0) {
            /* 99 -> 100: one more digit; renormalize to "10" x 10^(e+1). */
            out[0] = '1';
            for (int j = 1; j < n; j++) {
                out[j] = '0';
            }
            *oexp = exp10 + 1;
            return true;
        }
        out[i]++;
    } else {
        while (i >= 0 && out[i] == '0') {
            out[i--] = '9';
        }
        if (i < 0) {
            return false;
        }
        out[i]--;
        if (out[0] == '0') {
            return false;
        }
    }
    *oexp = exp10;
    return true;
}

int
nmi_f64_shortest(double v, char digits[32], int *exp10)
{
    if (v < 0) {
        v = -v;
    }
    for (int p = 1; p <= 17; p++) {
        char buf[64], d[32], alt[32];
        int e, ae;
        snprintf(buf, sizeof(buf), "%.*e", p - 1, v);
        int n = split_e(buf, d, &e);
        const char *pick = NULL;
        int pe = 0;
        if (roundtrips(d, n, e, v)) {
            pick = d;
            pe = e;
        } else {
            /* Near a power of two the rounding interval is lopsided: the
             * closest p-digit decimal may miss while a neighbour fits. */
            for (int dir = -1; dir <= 1 && !pick; dir += 2) {
                if (bump(d, n, e, dir, alt, &ae) &&
                    roundtrips(alt, n, ae, v)) {
                    memcpy(d, alt, (size_t)n);
                    pick = d;
                    pe = ae;
                }
            }
        }
        if (pick) {
            while (n > 1 && d[n - 1] == '0') {
                n--;
            }
            memcpy(digits, d, (size_t)n);
            digits[n] = '\0';
            *exp10 = pe;
            return n;
        }
    }
    /* Unreachable for finite doubles: 17 digits always round-trip. */
    char buf[64];
    snprintf(buf, sizeof(buf), "%.16e", v);
    int n = split_e(buf, digits, exp10);
    digits[n] = '\0';
    return n;
}

/* Plain decimal (no exponent) of digits x 10^e. */
static void
put_plain(nmi_sb *sb, const char *d, int n, int e, bool force_dot)
{
    if (e >= n - 1) {
        nmi_sb_putn(sb, d, (size_t)n);
        for (int i = 0; i < e - (n - 1); i++) {
            nmi_sb_putc(sb, '0');
        }
        if (force_dot) {
            nmi_sb_puts(sb, ".0");
        }
    } else if (e >= 0) {
        nmi_sb_putn(sb, d, (size_t)e + 1);
        nmi_sb_putc(sb, '.');
        nmi_sb_putn(sb, d + e + 1, (size_t)(n - e - 1));
    } else {
        nmi_sb_puts(sb, "0.");
        for (int i = 0; i < -e - 1; i++) {
            nmi_sb_putc(sb, '0');
        }
        nmi_sb_putn(sb, d, (size_t)n);
    }
}

void
nmi_sb_json_f64(nmi_sb *sb, double v)
{
    if (isnan(v) || isinf(v)) {
        nmi_sb_puts(sb, "null");
        return;
    }
    if (signbit(v)) {
        nmi_sb_putc(sb, '-');
    }
    if (v == 0) {
        nmi_sb_puts(sb, "0.0");
        return;
    }
    char d[32];
    int e;
    int n = nmi_f64_shortest(v, d, &e);
    if (e >= -5 && e < 16) {
        put_plain(sb, d, n, e, true);
        return;
    }
    nmi_sb_putc(sb, d[0]);
    if (n > 1) {
        nmi_sb_putc(sb, '.');
        nmi_sb_putn(sb, d + 1, (size_t)n - 1);
    }
    char eb[16];
    int k =
        snprintf(eb, sizeof(eb), "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    nmi_sb_putn(sb, eb, (size_t)k);
}

void
nmi_sb_rust_f64(nmi_sb *sb, double v)
{
    if (isnan(v)) {
        nmi_sb_puts(sb, "NaN");
        return;
    }
    if (signbit(v)) {
        nmi_sb_putc(sb, '-');
    }
    if (isinf(v)) {
        nmi_sb_puts(sb, "inf");
        return;
    }
    if (v == 0) {
        nmi_sb_putc(sb, '0');
        return;
    }
    char d[32];
    int e;
    int n = nmi_f64_shortest(v, d, &e);
    put_plain(sb, d, n, e, false);
}

/* ------------------------------------------------------- Rust str Debug */

static bool
rust_escapes(uint32_t cp)
{
    size_t lo = 0, hi = NMI_ARRAY_LEN(nmi_rust_escape_ranges);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < nmi_rust_escape_ranges[mid][0]) {
            hi = mid;
        } else if (cp > nmi_rust_escape_ranges[mid][1]) {
            lo = mid + 1;
        } else {
            return true;
        }
    }
    return false;
}

static void
put_uesc(nmi_sb *sb, uint32_t cp)
{
    char b[16];
    int k = snprintf(b, sizeof(b), "\\u{%x}", (unsigned)cp);
    nmi_sb_putn(sb, b, (size_t)k);
}

void
nmi_sb_rust_debug_str(nmi_sb *sb, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    nmi_sb_putc(sb, '"');
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            switch (c) {
            case '"':
                nmi_sb_puts(sb, "\\\"");
                break;
            case '\\':
                nmi_sb_puts(sb, "\\\\");
                break;
            case '\t':
                nmi_sb_puts(sb, "\\t");
                break;
            case '\n':
                nmi_sb_puts(sb, "\\n");
                break;
            case '\r':
                nmi_sb_puts(sb, "\\r");
                break;
            case '\0':
                nmi_sb_puts(sb, "\\0");
                break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    put_uesc(sb, c);
                } else {
                    nmi_sb_putc(sb, (char)c);
                }
            }
            p++;
            continue;
        }
        size_t k = utf8_seq(p, end);
        if (k == 0) {
            /* Not UTF-8 (netmesh strings are UTF-8 when they come from
             * JSON; API callers may pass anything): escape the byte. */
            char b[8];
            int m = snprintf(b, sizeof(b), "\\x%02x", c);
            nmi_sb_putn(sb, b, (size_t)m);
            p++;
            continue;
        }
        uint32_t cp = c & (k == 2 ? 0x1F : k == 3 ? 0x0F : 0x07);
        for (size_t i = 1; i < k; i++) {
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (rust_escapes(cp)) {
            put_uesc(sb, cp);
        } else {
            nmi_sb_putn(sb, (const char *)p, k);
        }
        p += k;
    }
    nmi_sb_putc(sb, '"');
}
