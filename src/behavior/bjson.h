/*
 * src/behavior/bjson.h - the JSON reader and writers of the behavior layer.
 *
 * Reader: a strict RFC 8259 parser into an arena-allocated tree that keeps
 * what serde_json (upstream's decoder) distinguishes and jansson hides:
 * duplicate object keys (kept in order, the caller rejects them), the class
 * of each number (u64 / i64 / f64, with serde_json's "-0 is a float" and
 * "an integer too large for u64 is a float" rules), and embedded NULs.
 * Nesting is limited to 128 levels, like serde_json. Invalid UTF-8, lone
 * surrogates and raw control characters in strings are errors.
 *
 * Writers: a growable string builder with serde_json's string escaping and
 * float format, Rust's f64 Display and Rust's str Debug quoting, which the
 * canonical encodings and the debug labels need byte for byte.
 */
#ifndef NMI_BEHAVIOR_BJSON_H
#define NMI_BEHAVIOR_BJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NMI_BJ_MAX_DEPTH 128

/* ------------------------------------------------------------------ arena */

typedef struct nmi_arena_chunk nmi_arena_chunk;
typedef struct nmi_arena {
    nmi_arena_chunk *head;
} nmi_arena;

void nmi_arena_init(nmi_arena *a);
void nmi_arena_free(nmi_arena *a);
/* 8-byte aligned block of n bytes, or NULL. Freed with the arena. */
void *nmi_arena_alloc(nmi_arena *a, size_t n);

/* ------------------------------------------------------------------ tree */

typedef enum nmi_bj_type {
    NMI_BJ_NULL,
    NMI_BJ_FALSE,
    NMI_BJ_TRUE,
    NMI_BJ_NUM,
    NMI_BJ_STR,
    NMI_BJ_ARR,
    NMI_BJ_OBJ
} nmi_bj_type;

/* serde_json's number classes. */
typedef enum nmi_bj_numclass {
    NMI_BJ_U64, /* non-negative integer token that fits u64 */
    NMI_BJ_I64, /* negative integer token that fits i64 (not -0) */
    NMI_BJ_F64  /* anything else (fraction, exponent, -0, too large) */
} nmi_bj_numclass;

typedef struct nmi_bj nmi_bj;
typedef struct nmi_bj_member nmi_bj_member;

struct nmi_bj {
    nmi_bj_type type;
    union {
        struct {
            const char *s; /* NUL-terminated, decoded UTF-8 */
            size_t len;
            bool has_nul; /* contains an escaped U+0000 */
        } str;
        struct {
            nmi_bj *items;
            size_t n;
        } arr;
        struct {
            nmi_bj_member *m; /* in document order, duplicates kept */
            size_t n;
        } obj;
        struct {
            nmi_bj_numclass cls;
            uint64_t u; /* NMI_BJ_U64 */
            int64_t i;  /* NMI_BJ_I64 */
            double f;   /* the value as f64, whatever the class */
        } num;
    } v;
};

struct nmi_bj_member {
    const char *key;
    size_t klen;
    bool key_has_nul;
    nmi_bj val;
};

/* Parse exactly one JSON value (surrounding whitespace allowed) from
 * [p, p+len). NM_OK, NM_EDECODE (detail: what and the byte offset) or
 * NM_ENOMEM. The tree lives in `a`. */
int nmi_bj_parse(nmi_arena *a, const char *p, size_t len, nmi_bj **out);

/* Object helpers. nmi_bj_get: the member named `key` (first occurrence) or
 * NULL. nmi_bj_dup_key: the first key that occurs twice, or NULL. */
const nmi_bj *nmi_bj_get(const nmi_bj *obj, const char *key);
const char *nmi_bj_dup_key(const nmi_bj *obj);

/* serde-style field reads with a sentence on failure (NM_EDECODE):
 * an f64 field accepts every number; a u32 field only u64-class numbers
 * that fit. `what` names the field in the detail. */
int nmi_bj_as_f64(const nmi_bj *v, const char *what, double *out);
int nmi_bj_as_u32(const nmi_bj *v, const char *what, uint32_t *out);
/* A string field without embedded NUL (netmesh strings are C strings). */
int nmi_bj_as_str(const nmi_bj *v, const char *what, const char **out);

/* ------------------------------------------------------------------ writer */

typedef struct nmi_sb {
    char *buf;
    size_t len, cap;
    bool oom;
} nmi_sb;

void nmi_sb_init(nmi_sb *sb);
void nmi_sb_free(nmi_sb *sb);
void nmi_sb_putn(nmi_sb *sb, const char *s, size_t n);
void nmi_sb_puts(nmi_sb *sb, const char *s);
void nmi_sb_putc(nmi_sb *sb, char c);
void nmi_sb_putu64(nmi_sb *sb, uint64_t v);
/* Take the NUL-terminated buffer (caller frees; "" when empty). NM_OK or
 * NM_ENOMEM (buffer released). */
int nmi_sb_take(nmi_sb *sb, char **out, size_t *len);

/* A JSON string with serde_json's escaping: \" \\ \b \t \n \f \r, other
 * bytes < 0x20 as \u00xx (lowercase hex); everything else raw. */
void nmi_sb_json_str(nmi_sb *sb, const char *s, size_t n);
/* An f64 the way serde_json 1.0.151 writes it: shortest round-trip digits;
 * |v| in [1e-5, 1e16) as a decimal that always has a '.', otherwise
 * d[.ddd]e+X / e-X; NaN and infinities as null. */
void nmi_sb_json_f64(nmi_sb *sb, double v);
/* Rust's `{}` of an f64: shortest digits, never an exponent, no ".0";
 * NaN, inf, -inf. */
void nmi_sb_rust_f64(nmi_sb *sb, double v);
/* Rust's `{:?}` of a str: quoted, \" \\ \t \n \r \0 escaped, non-printable
 * and grapheme-extending characters as \u{hex}. */
void nmi_sb_rust_debug_str(nmi_sb *sb, const char *s, size_t n);

/* strtod of validated ASCII number text in a NUL-terminated, writable
 * buffer, independent of LC_NUMERIC (the buffer may be modified). */
double nmi_strtod_c(char *buf);

/* Shortest round-trip decimal digits of a finite v != 0 (sign ignored):
 * v = d[0].d[1..n-1] x 10^exp10. Returns n (1..17). */
int nmi_f64_shortest(double v, char digits[32], int *exp10);

#endif
