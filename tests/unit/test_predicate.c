/*
 * tests/unit/test_predicate.c - capability predicates: the canonical
 * PredicateWire codec (every case of tests/vectors/predicate-wire-
 * envelope.json re-encodes byte-equal), serde_json's float format, decode
 * errors, evaluation of every leaf kind (table-driven from the upstream
 * facts), the planner and traces, labels (Rust Display / Debug), the debug
 * report with redaction, and the net-where header helpers.
 */
#include <criterion/criterion.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh.h>
#include <netmesh/predicate.h>

#include "behavior/bjson.h"

static char *
wire_roundtrip(const char *in, int *rc)
{
    nm_pred *p = NULL;
    *rc = nm_pred_from_wire_json(in, strlen(in), &p);
    if (*rc != NM_OK) {
        return NULL;
    }
    char *out = NULL;
    cr_assert_eq(nm_pred_to_wire_json(p, &out, NULL), NM_OK);
    nm_pred_free(p);
    return out;
}

/* ------------------------------------------------------------ vectors */

Test(predicate, vector_file_reencodes_byte_equal)
{
    json_error_t jerr;
    json_t *root = json_load_file(
        NM_TEST_VECTORS_DIR "/predicate-wire-envelope.json", 0, &jerr);
    cr_assert_not_null(root, "%s", jerr.text);
    cr_assert_str_eq(json_string_value(json_object_get(root, "header_name")),
                     NM_PRED_WHERE_HEADER);
    json_t *cases = json_object_get(root, "cases");
    cr_assert(json_array_size(cases) >= 18);
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c)
    {
        json_t *wire = json_object_get(c, "wire");
        char *pretty = json_dumps(wire, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        char *compact = json_dumps(wire, JSON_COMPACT | JSON_PRESERVE_ORDER);
        int rc;
        char *got = wire_roundtrip(pretty, &rc);
        cr_assert_eq(rc, NM_OK, "%s: %s",
                     json_string_value(json_object_get(c, "name")),
                     nm_errdetail());
        cr_assert_str_eq(got, compact, "%s",
                         json_string_value(json_object_get(c, "name")));
        /* and the canonical form is a fixed point */
        char *again = wire_roundtrip(got, &rc);
        cr_assert_str_eq(again, got);
        free(again);
        free(got);
        free(pretty);
        free(compact);
    }
    json_decref(root);
}

Test(predicate, vector_literals)
{
    static const char *const canon[] = {
        "{\"nodes\":[{\"kind\":\"numeric_in_range\",\"key\":{\"axis\":"
        "\"hardware\",\"key\":\"memory_gb\"},\"min\":32.0,\"max\":128.0}],"
        "\"root_idx\":0}",
        "{\"nodes\":[{\"kind\":\"exists\",\"key\":{\"axis\":\"hardware\","
        "\"key\":\"gpu\"}},{\"kind\":\"numeric_at_least\",\"key\":{\"axis\":"
        "\"hardware\",\"key\":\"memory_gb\"},\"threshold\":64.0},{\"kind\":"
        "\"metadata_exists\",\"key\":\"intent\"},{\"kind\":\"and\","
        "\"children\":[1,2]},{\"kind\":\"or\",\"children\":[0,3]},{\"kind\":"
        "\"metadata_equals\",\"key\":\"decommissioning\",\"value\":\"true\"},"
        "{\"kind\":\"not\",\"child\":5},{\"kind\":\"semver_at_least\",\"key\":"
        "{\"axis\":\"software\",\"key\":\"runtime.python\"},\"version\":"
        "\"3.10.0\"},{\"kind\":\"and\",\"children\":[4,6,7]}],\"root_idx\":8}",
    };
    for (size_t i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
        int rc;
        char *got = wire_roundtrip(canon[i], &rc);
        cr_assert_eq(rc, NM_OK, "%s", nm_errdetail());
        cr_assert_str_eq(got, canon[i]);
        free(got);
    }
}

/* ------------------------------------------------------------ floats */

static void
check_f64(double v, const char *json, const char *rust)
{
    nmi_sb sb;
    char *s;
    nmi_sb_init(&sb);
    nmi_sb_json_f64(&sb, v);
    cr_assert_eq(nmi_sb_take(&sb, &s, NULL), NM_OK);
    cr_assert_str_eq(s, json, "json of %.17g", v);
    free(s);
    nmi_sb_init(&sb);
    nmi_sb_rust_f64(&sb, v);
    cr_assert_eq(nmi_sb_take(&sb, &s, NULL), NM_OK);
    cr_assert_str_eq(s, rust, "rust display of %.17g", v);
    free(s);
}

Test(predicate, float_formats)
{
    check_f64(64.0, "64.0", "64");
    check_f64(0.5, "0.5", "0.5");
    check_f64(-0.0, "-0.0", "-0");
    check_f64(0.0, "0.0", "0");
    check_f64(1e-5, "0.00001", "0.00001");
    check_f64(2.5e-5, "0.000025", "0.000025");
    check_f64(1e-6, "1e-6", "0.000001");
    check_f64(1e-7, "1e-7", "0.0000001");
    check_f64(1e15, "1000000000000000.0", "1000000000000000");
    check_f64(9999999999999998.0, "9999999999999998.0", "9999999999999998");
    check_f64(1e16, "1e+16", "10000000000000000");
    check_f64(1.5e17, "1.5e+17", "150000000000000000");
    check_f64(1e21, "1e+21", "1000000000000000000000");
    check_f64(0.1, "0.1", "0.1");
    check_f64(1.0 / 3, "0.3333333333333333", "0.3333333333333333");
    check_f64(123456.789, "123456.789", "123456.789");
    check_f64(-32.25, "-32.25", "-32.25");
    char tiny[400] = "0.";
    for (int i = 0; i < 323; i++) {
        strcat(tiny, "0");
    }
    strcat(tiny, "5");
    check_f64(5e-324, "5e-324", tiny);
    char huge[400] = "17976931348623157";
    for (int i = 0; i < 292; i++) {
        strcat(huge, "0");
    }
    check_f64(1.7976931348623157e308, "1.7976931348623157e+308", huge);
    check_f64(NAN, "null", "NaN");
    check_f64(INFINITY, "null", "inf");
    check_f64(-INFINITY, "null", "-inf");
}

Test(predicate, rust_debug_quoting)
{
    static const struct {
        const char *in, *out;
    } t[] = {
        {"H100", "\"H100\""},
        {"a\"b\\c", "\"a\\\"b\\\\c\""},
        {"t\tn\nr\r", "\"t\\tn\\nr\\r\""},
        {"\x01\x1f\x7f", "\"\\u{1}\\u{1f}\\u{7f}\""},
        {"caf\xc3\xa9 /'", "\"caf\xc3\xa9 /'\""},
        {"e\xcc\x81", "\"e\\u{301}\""},    /* combining acute */
        {"\xc2\xa0", "\"\\u{a0}\""},       /* no-break space */
        {"\xe2\x80\x8b", "\"\\u{200b}\""}, /* zero width space */
        {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        nmi_sb sb;
        char *s;
        nmi_sb_init(&sb);
        nmi_sb_rust_debug_str(&sb, t[i].in, strlen(t[i].in));
        cr_assert_eq(nmi_sb_take(&sb, &s, NULL), NM_OK);
        cr_assert_str_eq(s, t[i].out);
        free(s);
    }
    /* and the embedded NUL, which a C string cannot carry */
    nmi_sb sb;
    char *s;
    nmi_sb_init(&sb);
    nmi_sb_rust_debug_str(&sb, "a\0b", 3);
    cr_assert_eq(nmi_sb_take(&sb, &s, NULL), NM_OK);
    cr_assert_str_eq(s, "\"a\\0b\"");
    free(s);
}

/* ------------------------------------------------------------ decode */

#define ME "{\"kind\":\"metadata_exists\",\"key\":\"a\"}"

Test(predicate, decode_accepts_and_canonicalises)
{
    static const struct {
        const char *in, *out;
    } t[] = {
        /* any key order, unknown fields ignored */
        {"{\"root_idx\":0,\"x\":[1,{\"y\":null}],\"nodes\":[{\"key\":"
         "{\"key\":\"gpu\",\"z\":1,\"axis\":\"hardware\"},\"kind\":\"exists\","
         "\"extra\":true}]}",
         "{\"nodes\":[{\"kind\":\"exists\",\"key\":{\"axis\":\"hardware\","
         "\"key\":\"gpu\"}}],\"root_idx\":0}"},
        /* f64 fields accept integers; -0 is -0.0; big integers are floats */
        {"{\"nodes\":[{\"kind\":\"numeric_in_range\",\"key\":{\"axis\":"
         "\"devices\",\"key\":\"k\"},\"min\":-0,\"max\":18446744073709551616}"
         "],\"root_idx\":0}",
         "{\"nodes\":[{\"kind\":\"numeric_in_range\",\"key\":{\"axis\":"
         "\"devices\",\"key\":\"k\"},\"min\":-0.0,\"max\":"
         "1.8446744073709552e+19}],\"root_idx\":0}"},
        {"{\"nodes\":[{\"kind\":\"metadata_numeric_at_least\",\"key\":\"p\","
         "\"threshold\":1E2}],\"root_idx\":0}",
         "{\"nodes\":[{\"kind\":\"metadata_numeric_at_least\",\"key\":\"p\","
         "\"threshold\":100.0}],\"root_idx\":0}"},
        /* unreachable nodes are dropped, even a cyclic one */
        {"{\"nodes\":[{\"kind\":\"not\",\"child\":7}," ME "],\"root_idx\":1}",
         "{\"nodes\":[" ME "],\"root_idx\":0}"},
        /* shared children are duplicated */
        {"{\"nodes\":[" ME ",{\"kind\":\"and\",\"children\":[0,0]}],"
         "\"root_idx\":1}",
         "{\"nodes\":[" ME "," ME ",{\"kind\":\"and\",\"children\":[0,1]}],"
         "\"root_idx\":2}"},
        /* empty And / Or */
        {"{\"nodes\":[{\"kind\":\"or\",\"children\":[]}],\"root_idx\":0}",
         "{\"nodes\":[{\"kind\":\"or\",\"children\":[]}],\"root_idx\":0}"},
        /* strings: escapes decoded and re-escaped the serde_json way */
        {"{\"nodes\":[{\"kind\":\"metadata_equals\",\"key\":\"\\u0041/\\/\","
         "\"value\":"
         "\"\\u00e9\\b\\f\\n\\r\\t\\u001f\\u007f\\\"\\\\\\ud83d\\ude00\"}],"
         "\"root_idx\":0}",
         "{\"nodes\":[{\"kind\":\"metadata_equals\",\"key\":\"A//\","
         "\"value\":"
         "\"\xc3\xa9\\b\\f\\n\\r\\t\\u001f\x7f\\\"\\\\\xf0\x9f\x98\x80\"}"
         "],\"root_idx\":0}"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int rc;
        char *got = wire_roundtrip(t[i].in, &rc);
        cr_assert_eq(rc, NM_OK, "case %zu: %s", i, nm_errdetail());
        cr_assert_str_eq(got, t[i].out, "case %zu", i);
        free(got);
    }
}

Test(predicate, decode_rejects)
{
    static const struct {
        const char *in;
        int rc;
        const char *detail; /* substring of nm_errdetail() */
    } t[] = {
        {"{\"nodes\":[],\"root_idx\":0}", NM_EDECODE, "empty nodes"},
        {"{\"nodes\":[" ME "],\"root_idx\":1}", NM_EDECODE,
         "root_idx 1 >= nodes len 1"},
        {"{\"nodes\":[{\"kind\":\"not\",\"child\":0}],\"root_idx\":0}",
         NM_EDECODE, "cycle"},
        {"{\"nodes\":[" ME ",{\"kind\":\"and\",\"children\":[0,1]}],"
         "\"root_idx\":1}",
         NM_EDECODE, "child index 1 >= parent index 1"},
        {"{\"nodes\":[" ME ",{\"kind\":\"or\",\"children\":[0,2]}," ME "],"
         "\"root_idx\":1}",
         NM_EDECODE, "cycle"},
        {"{\"nodes\":[{\"kind\":\"metadata_exists\",\"key\":\"a\",\"key\":"
         "\"b\"}],\"root_idx\":0}",
         NM_EDECODE, "duplicate field 'key'"},
        {"{\"nodes\":[" ME "],\"root_idx\":0,\"root_idx\":0}", NM_EDECODE,
         "duplicate"},
        {"{\"nodes\":[{\"kind\":\"exists\",\"key\":{\"axis\":\"hardware\","
         "\"axis\":\"software\",\"key\":\"x\"}}],\"root_idx\":0}",
         NM_EDECODE, "duplicate"},
        {"{\"nodes\":[{\"kind\":\"metadata_exists\",\"kind\":"
         "\"metadata_exists\",\"key\":\"a\"}],\"root_idx\":0}",
         NM_EDECODE, "duplicate"},
        {"{\"nodes\":[" ME "]}", NM_EDECODE, "missing field 'root_idx'"},
        {"{\"root_idx\":0}", NM_EDECODE, "missing field 'nodes'"},
        {"{\"nodes\":[{\"kind\":\"metadata_equals\",\"key\":\"a\"}],"
         "\"root_idx\":0}",
         NM_EDECODE, "missing field 'value'"},
        {"{\"nodes\":[{\"kind\":\"numeric_at_least\",\"key\":{\"axis\":"
         "\"hardware\",\"key\":\"m\"}}],\"root_idx\":0}",
         NM_EDECODE, "threshold"},
        {"{\"nodes\":[{\"kind\":\"exists\"}],\"root_idx\":0}", NM_EDECODE,
         "missing field 'key'"},
        {"{\"nodes\":[{\"key\":\"a\"}],\"root_idx\":0}", NM_EDECODE,
         "missing field 'kind'"},
        {"{\"nodes\":[{\"kind\":\"regex\",\"key\":\"a\"}],\"root_idx\":0}",
         NM_EDECODE, "unknown kind"},
        {"{\"nodes\":[{\"kind\":\"Exists\",\"key\":\"a\"}],\"root_idx\":0}",
         NM_EDECODE, "unknown kind"},
        {"{\"nodes\":[{\"kind\":\"exists\",\"key\":{\"axis\":\"Hardware\","
         "\"key\":\"gpu\"}}],\"root_idx\":0}",
         NM_EDECODE, "axis"},
        {"{\"nodes\":[{\"kind\":\"exists\",\"key\":\"hardware.gpu\"}],"
         "\"root_idx\":0}",
         NM_EDECODE, "key"},
        {"{\"nodes\":[" ME "],\"root_idx\":0.0}", NM_EDECODE, "root_idx"},
        {"{\"nodes\":[" ME "],\"root_idx\":-1}", NM_EDECODE, "root_idx"},
        {"{\"nodes\":[" ME "],\"root_idx\":4294967296}", NM_EDECODE,
         "root_idx"},
        {"{\"nodes\":[" ME ",{\"kind\":\"and\",\"children\":[0.0]}],"
         "\"root_idx\":1}",
         NM_EDECODE, "children"},
        {"{\"nodes\":[" ME ",{\"kind\":\"not\",\"child\":\"0\"}],"
         "\"root_idx\":1}",
         NM_EDECODE, "child"},
        {"{\"nodes\":[{\"kind\":\"metadata_numeric_at_least\",\"key\":\"p\","
         "\"threshold\":\"5\"}],\"root_idx\":0}",
         NM_EDECODE, "threshold"},
        {"{\"nodes\":[{\"kind\":\"metadata_numeric_at_least\",\"key\":\"p\","
         "\"threshold\":null}],\"root_idx\":0}",
         NM_EDECODE, "threshold"},
        {"{\"nodes\":[{\"kind\":\"metadata_numeric_at_least\",\"key\":\"p\","
         "\"threshold\":1e400}],\"root_idx\":0}",
         NM_EDECODE, "out of range"},
        {"{\"nodes\":[" ME "],\"root_idx\":0} x", NM_EDECODE, "trailing"},
        {"{\"nodes\":[" ME "],\"root_idx\":00}", NM_EDECODE, "leading zero"},
        {"{\"nodes\":[" ME ",],\"root_idx\":0}", NM_EDECODE, "value"},
        {"[]", NM_EDECODE, "PredicateWire"},
        {"", NM_EDECODE, "end of input"},
        {"{\"nodes\":[{\"kind\":\"metadata_exists\",\"key\":\"a\\u0000\"}],"
         "\"root_idx\":0}",
         NM_EDECODE, "U+0000"},
        {"{\"nodes\":[{\"kind\":\"metadata_exists\",\"key\":\"\\ud800\"}],"
         "\"root_idx\":0}",
         NM_EDECODE, "surrogate"},
        {"{\"nodes\":[{\"kind\":\"metadata_exists\",\"key\":\"\xff\"}],"
         "\"root_idx\":0}",
         NM_EDECODE, "UTF-8"},
        {"{\"nodes\":[{\"kind\":\"metadata_exists\",\"key\":\"a\tb\"}],"
         "\"root_idx\":0}",
         NM_EDECODE, "control"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        nm_pred *p = NULL;
        int rc = nm_pred_from_wire_json(t[i].in, strlen(t[i].in), &p);
        cr_assert_eq(rc, t[i].rc, "case %zu (%s): rc %d", i, t[i].in, rc);
        cr_assert_not_null(strstr(nm_errdetail(), t[i].detail),
                           "case %zu: detail '%s' lacks '%s'", i,
                           nm_errdetail(), t[i].detail);
        cr_assert_null(p);
    }
}

Test(predicate, decode_bounds_expansion_and_depth)
{
    /* node i = And[i-1, i-1]: 2^70 nodes once expanded */
    char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "{\"nodes\":[" ME);
    for (int i = 1; i < 70; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n,
                              ",{\"kind\":\"and\",\"children\":[%d,%d]}",
                              i - 1, i - 1);
    }
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "],\"root_idx\":69}");
    nm_pred *p = NULL;
    cr_assert_eq(nm_pred_from_wire_json(buf, n, &p), NM_ETOOBIG);
    /* a chain of NM_PRED_MAX_DEPTH + 10 Nots */
    size_t cap = 64 * (NM_PRED_MAX_DEPTH + 20);
    char *big = malloc(cap);
    n = (size_t)snprintf(big, cap, "{\"nodes\":[" ME);
    for (int i = 1; i < NM_PRED_MAX_DEPTH + 10; i++) {
        n += (size_t)snprintf(big + n, cap - n,
                              ",{\"kind\":\"not\",\"child\":%d}", i - 1);
    }
    n += (size_t)snprintf(big + n, cap - n, "],\"root_idx\":%d}",
                          NM_PRED_MAX_DEPTH + 9);
    cr_assert_eq(nm_pred_from_wire_json(big, n, &p), NM_ETOOBIG);
    free(big);
    /* the API builders enforce the same depth */
    nm_pred *q;
    cr_assert_eq(nm_pred_metadata_exists("a", &q), NM_OK);
    int rc = NM_OK;
    for (int i = 0; i < NM_PRED_MAX_DEPTH + 5 && rc == NM_OK; i++) {
        rc = nm_pred_not(q, &q);
    }
    cr_assert_eq(rc, NM_ETOOBIG);
}

Test(predicate, builders_encode_and_nan_is_null)
{
    nm_pred *k[3];
    cr_assert_eq(
        nm_pred_numeric_at_least(NM_AXIS_HARDWARE, "memory_gb", NAN, &k[0]),
        NM_OK);
    cr_assert_eq(nm_pred_string_prefix(NM_AXIS_SOFTWARE, "os", "lin", &k[1]),
                 NM_OK);
    cr_assert_eq(nm_pred_metadata_equals("intent", "x", &k[2]), NM_OK);
    nm_pred *inner, *root;
    cr_assert_eq(nm_pred_or(k, 2, &inner), NM_OK);
    nm_pred *kids[2] = {inner, k[2]};
    cr_assert_eq(nm_pred_and(kids, 2, &root), NM_OK);
    char *s;
    cr_assert_eq(nm_pred_to_wire_json(root, &s, NULL), NM_OK);
    cr_assert_str_eq(
        s,
        "{\"nodes\":[{\"kind\":\"numeric_at_least\",\"key\":{\"axis\":"
        "\"hardware\",\"key\":\"memory_gb\"},\"threshold\":null},{\"kind\":"
        "\"string_prefix\",\"key\":{\"axis\":\"software\",\"key\":\"os\"},"
        "\"prefix\":\"lin\"},{\"kind\":\"or\",\"children\":[0,1]},{\"kind\":"
        "\"metadata_equals\",\"key\":\"intent\",\"value\":\"x\"},{\"kind\":"
        "\"and\",\"children\":[2,3]}],\"root_idx\":4}");
    /* NaN does not come back */
    nm_pred *back = NULL;
    cr_assert_eq(nm_pred_from_wire_json(s, strlen(s), &back), NM_EDECODE);
    free(s);
    cr_assert_eq(nm_pred_cost(root), 30 + 40 + 11);
    cr_assert_eq(nm_pred_child_count(root), 2);
    cr_assert_eq(nm_pred_get_kind(nm_pred_child(root, 0)), NM_PRED_OR);
    nm_pred *copy;
    cr_assert_eq(nm_pred_clone(root, &copy), NM_OK);
    char *a, *b;
    cr_assert_eq(nm_pred_to_wire_json(root, &a, NULL), NM_OK);
    cr_assert_eq(nm_pred_to_wire_json(copy, &b, NULL), NM_OK);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    nm_pred_free(copy);
    nm_pred_free(root);
    /* NULL children are refused and the others freed */
    nm_pred *c0;
    cr_assert_eq(nm_pred_metadata_exists("a", &c0), NM_OK);
    nm_pred *bad[2] = {c0, NULL};
    cr_assert_eq(nm_pred_and(bad, 2, &root), NM_EINVAL);
    cr_assert_eq(nm_pred_exists((nm_axis)9, "x", &root), NM_EINVAL);
}

/* ------------------------------------------------------------ eval */

#define AX(kind, axis, key, extra)                                            \
    "{\"wire\":{\"nodes\":[{\"kind\":\"" kind "\",\"key\":{\"axis\":\"" axis  \
    "\",\"key\":\"" key "\"}" extra "}],\"root_idx\":0},"
#define MD(kind, key, extra)                                                  \
    "{\"wire\":{\"nodes\":[{\"kind\":\"" kind "\",\"key\":\"" key "\"" extra  \
    "}],\"root_idx\":0},"

static const struct {
    const char *req;
    int want;
} eval_cases[] = {
    /* exists: presence or value form, exact axis + key */
    {AX("exists", "hardware", "gpu", "") "\"tags\":[\"hardware.gpu\"]}", 1},
    {AX("exists", "hardware", "gpu", "") "\"tags\":[\"hardware.gpu=x\"]}", 1},
    {AX("exists", "hardware", "gpu", "") "\"tags\":[\"hardware.gpu:x\"]}", 1},
    {AX("exists", "hardware", "gpu", "") "\"tags\":[\"software.gpu\"]}", 0},
    {AX("exists", "hardware", "gpu",
        "") "\"tags\":[\"hardware.gpu.vendor=a\"]}",
     0},
    {AX("exists", "hardware", "gpu", "") "\"tags\":[\"hardware.GPU\"]}", 0},
    {AX("exists", "hardware", "gpu", "") "\"tags\":[\"gpu\",\"scope:gpu\"]}",
     0},
    {AX("exists", "dataforts", "has_chain",
        "") "\"tags\":[\"dataforts.has_chain:abc\"]}",
     1},
    /* equals: either separator, presence tags never match */
    {AX("equals", "hardware", "gpu.vendor",
        ",\"value\":\"nvidia\"") "\"tags\":[\"hardware.gpu.vendor:nvidia\"]}",
     1},
    {AX("equals", "hardware", "gpu.vendor",
        ",\"value\":\"nvidia\"") "\"tags\":[\"hardware.gpu.vendor=NVIDIA\"]}",
     0},
    {AX("equals", "hardware", "x",
        ",\"value\":\"\"") "\"tags\":[\"hardware.x\"]}",
     0},
    {AX("equals", "hardware", "x",
        ",\"value\":\"\"") "\"tags\":[\"hardware.x=\"]}",
     1},
    {AX("equals", "hardware", "x",
        ",\"value\":\"b:c\"") "\"tags\":[\"hardware.x=b:c\"]}",
     1},
    /* numeric: Rust f64 rules, existential over tags */
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":64") "\"tags\":[\"hardware.m=64\"]}",
     1},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":64") "\"tags\":[\"hardware.m=63.999\"]}",
     0},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":64") "\"tags\":[\"hardware.m=lots\",\"hardware.m="
                             "1e3\"]}",
     1},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":0.5") "\"tags\":[\"hardware.m=.5\"]}",
     1},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":5") "\"tags\":[\"hardware.m=5.\"]}",
     1},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":5") "\"tags\":[\"hardware.m=+5\"]}",
     1},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":1e308") "\"tags\":[\"hardware.m=inf\"]}",
     1},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":1e308") "\"tags\":[\"hardware.m=Infinity\"]}",
     1},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":-1e308") "\"tags\":[\"hardware.m=NaN\"]}",
     0},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":1") "\"tags\":[\"hardware.m= 5\"]}",
     0},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":1") "\"tags\":[\"hardware.m=0x10\"]}",
     0},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":1") "\"tags\":[\"hardware.m=1_000\"]}",
     0},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":1") "\"tags\":[\"hardware.m=1e\"]}",
     0},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":1") "\"tags\":[\"hardware.m=.\"]}",
     0},
    {AX("numeric_at_least", "hardware", "m",
        ",\"threshold\":1") "\"tags\":[\"hardware.m\"]}",
     0},
    {AX("numeric_at_most", "hardware", "m",
        ",\"threshold\":1000") "\"tags\":[\"hardware.m=1000\"]}",
     1},
    {AX("numeric_at_most", "hardware", "m",
        ",\"threshold\":1000") "\"tags\":[\"hardware.m=-inf\"]}",
     1},
    {AX("numeric_in_range", "hardware", "m",
        ",\"min\":32,\"max\":128") "\"tags\":[\"hardware.m=128\"]}",
     1},
    {AX("numeric_in_range", "hardware", "m",
        ",\"min\":32,\"max\":128") "\"tags\":[\"hardware.m=16\"]}",
     0},
    {AX("numeric_in_range", "hardware", "m",
        ",\"min\":128,\"max\":32") "\"tags\":[\"hardware.m=64\"]}",
     0},
    /* semver */
    {AX("semver_at_least", "software", "v",
        ",\"version\":\"3.10.0\"") "\"tags\":[\"software.v=3.9.18\","
                                   "\"software.v=3.11.5\"]}",
     1},
    {AX("semver_at_least", "software", "v",
        ",\"version\":\"3.10.0\"") "\"tags\":[\"software.v=3.9.18\"]}",
     0},
    {AX("semver_at_least", "software", "v",
        ",\"version\":\"1.2.3\"") "\"tags\":[\"software.v=1.2.3-rc1\"]}",
     1},
    {AX("semver_at_least", "software", "v",
        ",\"version\":\"1.2.3+b\"") "\"tags\":[\"software.v=1.2.3\"]}",
     1},
    {AX("semver_at_least", "software", "v",
        ",\"version\":\"1\"") "\"tags\":[\"software.v=1.0.0\"]}",
     1},
    {AX("semver_at_least", "software", "v",
        ",\"version\":\"1.2\"") "\"tags\":[\"software.v= 1 . 2 \"]}",
     1},
    {AX("semver_at_least", "software", "v",
        ",\"version\":\"1.0.0\"") "\"tags\":[\"software.v=v1.2.3\"]}",
     0},
    {AX("semver_at_least", "software", "v",
        ",\"version\":\"1.0.0\"") "\"tags\":[\"software.v=1.2.3.4\"]}",
     0},
    {AX("semver_at_least", "software", "v",
        ",\"version\":\"1.0.0\"") "\"tags\":[\"software.v=1..2\"]}",
     0},
    {AX("semver_at_least", "software", "v",
        ",\"version\":\"1.0.0\"") "\"tags\":[\"software.v=\"]}",
     0},
    {AX("semver_at_least", "software", "v",
        ",\"version\":\"x\"") "\"tags\":[\"software.v=1.0.0\"]}",
     0},
    {AX("semver_at_most", "software", "cuda",
        ",\"version\":\"12.4.0\"") "\"tags\":[\"software.cuda=12.4\"]}",
     1},
    {AX("semver_at_most", "software", "cuda",
        ",\"version\":\"12.4.0\"") "\"tags\":[\"software.cuda=12.4.1\"]}",
     0},
    {AX("semver_compatible", "software", "f",
        ",\"version\":\"2.1.0\"") "\"tags\":[\"software.f=2.3.5\"]}",
     1},
    {AX("semver_compatible", "software", "f",
        ",\"version\":\"2.1.0\"") "\"tags\":[\"software.f=2.0.9\"]}",
     0},
    {AX("semver_compatible", "software", "f",
        ",\"version\":\"1.13.0\"") "\"tags\":[\"software.f=2.0.0\"]}",
     0},
    {AX("semver_compatible", "software", "f",
        ",\"version\":\"0.4.0\"") "\"tags\":[\"software.f=0.5.1\"]}",
     0},
    {AX("semver_compatible", "software", "f",
        ",\"version\":\"0.2.3\"") "\"tags\":[\"software.f=0.2.9\"]}",
     1},
    {AX("semver_compatible", "software", "f",
        ",\"version\":\"0.2.3\"") "\"tags\":[\"software.f=1.2.5\"]}",
     0},
    {AX("semver_compatible", "software", "f",
        ",\"version\":\"0.0.3\"") "\"tags\":[\"software.f=0.0.3\"]}",
     1},
    {AX("semver_compatible", "software", "f",
        ",\"version\":\"0.0.3\"") "\"tags\":[\"software.f=0.0.4\"]}",
     0},
    /* strings: byte prefix / substring, case-sensitive */
    {AX("string_prefix", "software", "os",
        ",\"prefix\":\"linux\"") "\"tags\":[\"software.os=linux-6.6\"]}",
     1},
    {AX("string_prefix", "software", "os",
        ",\"prefix\":\"linux\"") "\"tags\":[\"software.os=Linux\"]}",
     0},
    {AX("string_prefix", "software", "os",
        ",\"prefix\":\"\"") "\"tags\":[\"software.os=x\"]}",
     1},
    {AX("string_prefix", "software", "os",
        ",\"prefix\":\"\"") "\"tags\":[\"software.os\"]}",
     0},
    {AX("string_matches", "hardware", "gpu.model",
        ",\"pattern\":\"H100\"") "\"tags\":[\"hardware.gpu.model=NVIDIA-H100-"
                                 "SXM5\"]}",
     1},
    {AX("string_matches", "hardware", "gpu.model",
        ",\"pattern\":\"h100\"") "\"tags\":[\"hardware.gpu.model=NVIDIA-H100-"
                                 "SXM5\"]}",
     0},
    {AX("string_matches", "hardware", "gpu.model",
        ",\"pattern\":\"H.00\"") "\"tags\":[\"hardware.gpu.model=H100\"]}",
     0},
    /* metadata */
    {MD("metadata_exists", "intent", "") "\"metadata\":{\"intent\":\"\"}}", 1},
    {MD("metadata_exists", "intent", "") "\"metadata\":{\"owner\":\"a\"}}", 0},
    {MD("metadata_exists", "intent", "") "\"tags\":[\"intent\"]}", 0},
    {MD("metadata_equals", "intent",
        ",\"value\":\"a\"") "\"metadata\":{\"intent\":\"b\",\"intent\":\"a\"}"
                            "}",
     1},
    {MD("metadata_equals", "intent",
        ",\"value\":\"a\"") "\"metadata\":{\"intent\":\"a\",\"intent\":\"b\"}"
                            "}",
     0},
    {MD("metadata_matches", "owner",
        ",\"pattern\":\"@anthropic\"") "\"metadata\":{\"owner\":\"alice@"
                                       "anthropic.com\"}}",
     1},
    {MD("metadata_numeric_at_least", "priority",
        ",\"threshold\":5.0") "\"metadata\":{\"priority\":\"9\"}}",
     1},
    {MD("metadata_numeric_at_least", "priority",
        ",\"threshold\":5.0") "\"metadata\":{\"priority\":\"high\"}}",
     0},
    /* composites */
    {"{\"wire\":{\"nodes\":[{\"kind\":\"and\",\"children\":[]}],"
     "\"root_idx\":0}}",
     1},
    {"{\"wire\":{\"nodes\":[{\"kind\":\"or\",\"children\":[]}],"
     "\"root_idx\":0}}",
     0},
    {"{\"wire\":{\"nodes\":[{\"kind\":\"or\",\"children\":[]},{\"kind\":"
     "\"not\",\"child\":0}],\"root_idx\":1}}",
     1},
    /* reserved tags parse (privileged path) and never match axis leaves */
    {AX("exists", "hardware", "gpu",
        "") "\"tags\":[\"scope:tenant:x\",\"causal:abc\"]}",
     0},
};

Test(predicate, eval_table)
{
    for (size_t i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
        const char *r = eval_cases[i].req;
        int got = nm_pred_request_eval(r, strlen(r));
        cr_assert_eq(got, eval_cases[i].want, "case %zu: %s -> %d (%s)", i, r,
                     got, nm_errdetail());
        bool res;
        char *trace;
        cr_assert_eq(nm_pred_request_trace(r, strlen(r), &res, &trace, NULL),
                     NM_OK);
        cr_assert_eq(res, (bool)eval_cases[i].want, "trace case %zu", i);
        free(trace);
    }
}

Test(predicate, eval_request_errors)
{
    static const char *const bad[] = {
        "{\"tags\":[]}",
        "{\"wire\":{\"nodes\":[" ME "],\"root_idx\":0},\"tags\":[\"\"]}",
        "{\"wire\":{\"nodes\":[" ME "],\"root_idx\":0},\"tags\":[1]}",
        "{\"wire\":{\"nodes\":[" ME
        "],\"root_idx\":0},\"metadata\":{\"a\":1}}",
        "{\"wire\":{\"nodes\":[" ME "],\"root_idx\":0},\"tags\":{}}",
        "{\"wire\":{\"nodes\":[" ME "],\"root_idx\":0},\"wire\":{}}",
        "{\"wire\":{\"nodes\":[],\"root_idx\":0}}",
        "[1]",
        "{\"wire\":",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(nm_pred_request_eval(bad[i], strlen(bad[i])), NM_EDECODE,
                     "case %zu: %s", i, bad[i]);
    }
}

Test(predicate, eval_api_contexts)
{
    nm_pred *p;
    cr_assert_eq(
        nm_pred_numeric_at_least(NM_AXIS_HARDWARE, "memory_gb", 64, &p),
        NM_OK);
    const char *tags[] = {"hardware.memory_gb=128", "scope:subnet-local"};
    nm_pred_ctx ctx = {tags, 2, NULL, NULL, 0};
    cr_assert_eq(nm_pred_eval(p, &ctx), 1);
    cr_assert_eq(nm_pred_eval_unplanned(p, &ctx), 1);
    const char *empty[] = {""};
    nm_pred_ctx bad = {empty, 1, NULL, NULL, 0};
    cr_assert_eq(nm_pred_eval(p, &bad), NM_EINVAL);
    nm_capset *set;
    cr_assert_eq(nm_capset_new(&set), NM_OK);
    cr_assert_eq(nm_pred_eval_capset(p, set), 0);
    cr_assert_eq(nm_capset_insert_tag(set, "hardware.memory_gb:64"), NM_OK);
    cr_assert_eq(nm_pred_eval_capset(p, set), 1);
    nm_capset_free(set);
    nm_pred_free(p);
}

/* ------------------------------------------------------------ traces */

static void
check_trace(const char *req, bool want, const char *trace_json)
{
    bool res;
    char *t;
    cr_assert_eq(nm_pred_request_trace(req, strlen(req), &res, &t, NULL),
                 NM_OK, "%s", nm_errdetail());
    cr_assert_eq(res, want);
    cr_assert_str_eq(t, trace_json);
    free(t);
}

#define TR(label, res, kids)                                                  \
    "{\"children\":[" kids "],\"label\":\"" label "\",\"result\":" res "}"

Test(predicate, traces)
{
    const char *gpu = "{\"kind\":\"exists\",\"key\":{\"axis\":\"hardware\","
                      "\"key\":\"gpu\"}}";
    char req[1024];
    snprintf(req, sizeof(req),
             "{\"wire\":{\"nodes\":[%s],\"root_idx\":0},\"tags\":[\"hardware."
             "gpu\"],\"metadata\":{}}",
             gpu);
    check_trace(req, true, TR("Exists(hardware.gpu)", "true", ""));
    snprintf(req, sizeof(req),
             "{\"wire\":{\"nodes\":[%s],\"root_idx\":0},\"tags\":[]}", gpu);
    check_trace(req, false, TR("Exists(hardware.gpu)", "false", ""));
    /* And: the cheap false clause short-circuits the expensive one */
    check_trace(
        "{\"wire\":{\"nodes\":[{\"kind\":\"semver_compatible\",\"key\":{"
        "\"axis\":\"software\",\"key\":\"runtime.python\"},\"version\":"
        "\"3.11.0\"},{\"kind\":\"metadata_equals\",\"key\":\"intent\","
        "\"value\":\"ml-training\"},{\"kind\":\"and\",\"children\":[0,1]}],"
        "\"root_idx\":2},\"tags\":[\"software.runtime.python=3.11.5\"],"
        "\"metadata\":{}}",
        false,
        TR("And(2 clauses)", "false",
           TR("MetadataEquals(intent=ml-training)", "false", "")));
    /* And reordered by cost, both run */
    snprintf(req, sizeof(req),
             "{\"wire\":{\"nodes\":[%s,{\"kind\":\"metadata_exists\",\"key\":"
             "\"intent\"},{\"kind\":\"and\",\"children\":[0,1]}],"
             "\"root_idx\":2},\"tags\":[\"hardware.gpu\"],\"metadata\":{"
             "\"intent\":\"ml-training\"}}",
             gpu);
    check_trace(req, true,
                TR("And(2 clauses)", "true",
                   TR("MetadataExists(intent)", "true",
                      "") "," TR("Exists(hardware.gpu)", "true", "")));
    /* Or: first true wins; all false runs everything */
    check_trace(
        "{\"wire\":{\"nodes\":[{\"kind\":\"metadata_exists\",\"key\":"
        "\"intent\"},{\"kind\":\"exists\",\"key\":{\"axis\":\"hardware\","
        "\"key\":\"tpu\"}},{\"kind\":\"or\",\"children\":[0,1]}],"
        "\"root_idx\":2},\"tags\":[],\"metadata\":{}}",
        false,
        TR("Or(2 clauses)", "false",
           TR("MetadataExists(intent)", "false",
              "") "," TR("Exists(hardware.tpu)", "false", "")));
    /* Not: one child with the pre-negation result */
    snprintf(req, sizeof(req),
             "{\"wire\":{\"nodes\":[%s,{\"kind\":\"not\",\"child\":0}],"
             "\"root_idx\":1}}",
             gpu);
    check_trace(req, true,
                TR("Not", "true", TR("Exists(hardware.gpu)", "false", "")));
    /* stable order on equal costs; a composite costs the sum */
    check_trace(
        "{\"wire\":{\"nodes\":[{\"kind\":\"metadata_exists\",\"key\":\"b\"},"
        "{\"kind\":\"metadata_exists\",\"key\":\"a\"},{\"kind\":\"or\","
        "\"children\":[0,1]},{\"kind\":\"metadata_exists\",\"key\":\"c\"},"
        "{\"kind\":\"and\",\"children\":[2,3]}],\"root_idx\":4},"
        "\"metadata\":{\"a\":\"1\",\"c\":\"1\"}}",
        true,
        TR("And(2 clauses)", "true",
           TR("MetadataExists(c)", "true",
              "") "," TR("Or(2 clauses)", "true",
                         TR("MetadataExists(b)", "false",
                            "") "," TR("MetadataExists(a)", "true", ""))));
    /* empty composites */
    check_trace("{\"wire\":{\"nodes\":[{\"kind\":\"and\",\"children\":[]}],"
                "\"root_idx\":0}}",
                true, TR("And(0 clauses)", "true", ""));
}

Test(predicate, trace_accessors_and_redact)
{
    nm_pred *a, *b, *root;
    cr_assert_eq(nm_pred_metadata_equals("owner", "alice", &a), NM_OK);
    cr_assert_eq(nm_pred_metadata_exists("intent", &b), NM_OK);
    nm_pred *k[2] = {a, b};
    cr_assert_eq(nm_pred_or(k, 2, &root), NM_OK);
    const char *mk[] = {"owner"}, *mv[] = {"alice"};
    nm_pred_ctx ctx = {NULL, 0, mk, mv, 1};
    bool res = false;
    nm_pred_trace *t;
    cr_assert_eq(nm_pred_eval_trace(root, &ctx, &res, &t), NM_OK);
    cr_assert(res);
    cr_assert_str_eq(nm_pred_trace_label(t), "Or(2 clauses)");
    cr_assert_eq(nm_pred_trace_child_count(t), 2);
    cr_assert_str_eq(nm_pred_trace_label(nm_pred_trace_child(t, 0)),
                     "MetadataExists(intent)");
    cr_assert(!nm_pred_trace_result(nm_pred_trace_child(t, 0)));
    const char *keys[] = {"owner"};
    cr_assert_eq(nm_pred_trace_redact(t, keys, 1), NM_OK);
    cr_assert_str_eq(nm_pred_trace_label(nm_pred_trace_child(t, 1)),
                     "MetadataEquals(owner=<redacted>)");
    nm_pred_trace_free(t);
    nm_pred_free(root);
}

/* ------------------------------------------------------------ labels */

Test(predicate, labels)
{
    static const struct {
        const char *node, *label;
    } t[] = {
        {"{\"kind\":\"exists\",\"key\":{\"axis\":\"dataforts\",\"key\":\"a."
         "b\"}}",
         "Exists(dataforts.a.b)"},
        {"{\"kind\":\"equals\",\"key\":{\"axis\":\"hardware\",\"key\":"
         "\"gpu.vendor\"},\"value\":\"nv \\\"x\\\"\"}",
         "Equals(hardware.gpu.vendor=nv \"x\")"},
        {"{\"kind\":\"numeric_at_least\",\"key\":{\"axis\":\"hardware\","
         "\"key\":\"memory_gb\"},\"threshold\":64.0}",
         "NumericAtLeast(hardware.memory_gb >= 64)"},
        {"{\"kind\":\"numeric_at_most\",\"key\":{\"axis\":\"hardware\","
         "\"key\":\"m\"},\"threshold\":0.5}",
         "NumericAtMost(hardware.m <= 0.5)"},
        {"{\"kind\":\"numeric_in_range\",\"key\":{\"axis\":\"hardware\","
         "\"key\":\"memory_gb\"},\"min\":32.0,\"max\":1e21}",
         "NumericInRange(hardware.memory_gb in [32, "
         "1000000000000000000000])"},
        {"{\"kind\":\"semver_at_least\",\"key\":{\"axis\":\"software\","
         "\"key\":\"runtime.python\"},\"version\":\"3.10.0\"}",
         "SemverAtLeast(software.runtime.python >= 3.10.0)"},
        {"{\"kind\":\"semver_at_most\",\"key\":{\"axis\":\"software\","
         "\"key\":\"c\"},\"version\":\"12\"}",
         "SemverAtMost(software.c <= 12)"},
        {"{\"kind\":\"semver_compatible\",\"key\":{\"axis\":\"software\","
         "\"key\":\"f\"},\"version\":\"2.1.0\"}",
         "SemverCompatible(software.f ~= 2.1.0)"},
        {"{\"kind\":\"string_prefix\",\"key\":{\"axis\":\"software\","
         "\"key\":\"os\"},\"prefix\":\"li\\\"n\\tx\"}",
         "StringPrefix(software.os starts with \"li\\\"n\\tx\")"},
        {"{\"kind\":\"string_matches\",\"key\":{\"axis\":\"hardware\","
         "\"key\":\"gpu.model\"},\"pattern\":\"H100\"}",
         "StringMatches(hardware.gpu.model contains \"H100\")"},
        {"{\"kind\":\"metadata_exists\",\"key\":\"intent\"}",
         "MetadataExists(intent)"},
        {"{\"kind\":\"metadata_equals\",\"key\":\"intent\",\"value\":"
         "\"ml-training\"}",
         "MetadataEquals(intent=ml-training)"},
        {"{\"kind\":\"metadata_matches\",\"key\":\"owner\",\"pattern\":"
         "\"@anthropic\"}",
         "MetadataMatches(owner contains \"@anthropic\")"},
        {"{\"kind\":\"metadata_numeric_at_least\",\"key\":\"priority\","
         "\"threshold\":-0.0000001}",
         "MetadataNumericAtLeast(priority >= -0.0000001)"},
        {"{\"kind\":\"or\",\"children\":[]}", "Or(0 clauses)"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char buf[1024];
        snprintf(buf, sizeof(buf), "{\"nodes\":[%s],\"root_idx\":0}",
                 t[i].node);
        nm_pred *p;
        cr_assert_eq(nm_pred_from_wire_json(buf, strlen(buf), &p), NM_OK,
                     "case %zu: %s", i, nm_errdetail());
        char *l;
        cr_assert_eq(nm_pred_label(p, &l), NM_OK);
        cr_assert_str_eq(l, t[i].label);
        free(l);
        nm_pred_free(p);
    }
}

/* ------------------------------------------------------------ report */

Test(predicate, debug_report_and_redaction)
{
    nm_pred *eq, *eq2, *ex, *num, *mm, *root;
    cr_assert_eq(nm_pred_metadata_equals("owner", "alice", &eq), NM_OK);
    cr_assert_eq(nm_pred_metadata_equals("owner", "bob", &eq2), NM_OK);
    cr_assert_eq(nm_pred_exists(NM_AXIS_HARDWARE, "gpu", &ex), NM_OK);
    cr_assert_eq(nm_pred_metadata_numeric_at_least("priority", 5, &num),
                 NM_OK);
    cr_assert_eq(nm_pred_metadata_matches("team", "ml", &mm), NM_OK);
    nm_pred *or_k[2] = {eq, eq2};
    nm_pred *orp;
    cr_assert_eq(nm_pred_or(or_k, 2, &orp), NM_OK);
    nm_pred *k[4] = {orp, ex, num, mm};
    cr_assert_eq(nm_pred_and(k, 4, &root), NM_OK);

    nm_pred_report *r;
    cr_assert_eq(nm_pred_report_new(&r), NM_OK);
    const char *t1[] = {"hardware.gpu"};
    const char *k1[] = {"owner", "priority", "team"};
    const char *v1[] = {"bob", "9", "ml-infra"};
    nm_pred_ctx c1 = {t1, 1, k1, v1, 3};
    nm_pred_ctx c2 = {NULL, 0, NULL, NULL, 0};
    cr_assert_eq(nm_pred_report_add(r, root, &c1), NM_OK);
    cr_assert_eq(nm_pred_report_add(r, root, &c2), NM_OK);
    cr_assert_eq(nm_pred_report_total(r), 2);
    cr_assert_eq(nm_pred_report_matched(r), 1);
    char *js;
    cr_assert_eq(nm_pred_report_to_json(r, &js, NULL), NM_OK);
    /* planned order: Exists(20) < MetadataNumeric(25) < MetadataMatches(45)
     * < Or(22)? no: Or costs 11+11 = 22, so Exists, Or, Numeric, Matches */
    cr_assert_str_eq(
        js,
        "{\"clause_stats\":["
        "{\"evaluated\":2,\"label\":\"And(4 clauses)\",\"matched\":1},"
        "{\"evaluated\":2,\"label\":\"Exists(hardware.gpu)\",\"matched\":1},"
        "{\"evaluated\":1,\"label\":\"MetadataEquals(owner=alice)\","
        "\"matched\":0},"
        "{\"evaluated\":1,\"label\":\"MetadataEquals(owner=bob)\","
        "\"matched\":1},"
        "{\"evaluated\":1,\"label\":\"MetadataMatches(team contains "
        "\\\"ml\\\")\",\"matched\":1},"
        "{\"evaluated\":1,\"label\":\"MetadataNumericAtLeast(priority >= 5)\","
        "\"matched\":1},"
        "{\"evaluated\":1,\"label\":\"Or(2 clauses)\",\"matched\":1}],"
        "\"matched\":1,\"total_candidates\":2}");
    free(js);
    const char *keys[] = {"owner", "team", "priority"};
    cr_assert_eq(nm_pred_report_redact(r, keys, 3), NM_OK);
    cr_assert_eq(nm_pred_report_to_json(r, &js, NULL), NM_OK);
    cr_assert_str_eq(
        js,
        "{\"clause_stats\":["
        "{\"evaluated\":2,\"label\":\"And(4 clauses)\",\"matched\":1},"
        "{\"evaluated\":2,\"label\":\"Exists(hardware.gpu)\",\"matched\":1},"
        "{\"evaluated\":2,\"label\":\"MetadataEquals(owner=<redacted>)\","
        "\"matched\":1},"
        "{\"evaluated\":1,\"label\":\"MetadataMatches(team contains "
        "\\\"<redacted>\\\")\",\"matched\":1},"
        "{\"evaluated\":1,\"label\":\"MetadataNumericAtLeast(priority >= "
        "<redacted>)\",\"matched\":1},"
        "{\"evaluated\":1,\"label\":\"Or(2 clauses)\",\"matched\":1}],"
        "\"matched\":1,\"total_candidates\":2}");
    /* idempotent */
    char *again;
    cr_assert_eq(nm_pred_report_redact(r, keys, 3), NM_OK);
    cr_assert_eq(nm_pred_report_to_json(r, &again, NULL), NM_OK);
    cr_assert_str_eq(again, js);
    free(again);
    free(js);
    cr_assert_eq(nm_pred_report_stats_count(r), 6);
    cr_assert_str_eq(nm_pred_report_stats_at(r, 1)->label,
                     "Exists(hardware.gpu)");
    nm_pred_report_free(r);
    nm_pred_free(root);
}

Test(predicate, redact_label_rules)
{
    nm_pred *p;
    /* the earliest '=' whose left part is a key: key "a=b" */
    cr_assert_eq(nm_pred_metadata_equals("a=b", "c=d", &p), NM_OK);
    nm_pred_report *r;
    cr_assert_eq(nm_pred_report_new(&r), NM_OK);
    nm_pred_ctx c = {NULL, 0, NULL, NULL, 0};
    cr_assert_eq(nm_pred_report_add(r, p, &c), NM_OK);
    const char *k1[] = {"a=b"};
    cr_assert_eq(nm_pred_report_redact(r, k1, 1), NM_OK);
    cr_assert_str_eq(nm_pred_report_stats_at(r, 0)->label,
                     "MetadataEquals(a=b=<redacted>)");
    nm_pred_report_free(r);
    cr_assert_eq(nm_pred_report_new(&r), NM_OK);
    cr_assert_eq(nm_pred_report_add(r, p, &c), NM_OK);
    const char *k2[] = {"a", "x"};
    cr_assert_eq(nm_pred_report_redact(r, k2, 2), NM_OK);
    cr_assert_str_eq(nm_pred_report_stats_at(r, 0)->label,
                     "MetadataEquals(a=<redacted>)");
    nm_pred_report_free(r);
    nm_pred_free(p);
    /* other variants, and keys that do not match, are left alone */
    cr_assert_eq(nm_pred_equals(NM_AXIS_SOFTWARE, "owner", "x", &p), NM_OK);
    cr_assert_eq(nm_pred_report_new(&r), NM_OK);
    cr_assert_eq(nm_pred_report_add(r, p, &c), NM_OK);
    const char *k3[] = {"owner", "software.owner"};
    cr_assert_eq(nm_pred_report_redact(r, k3, 2), NM_OK);
    cr_assert_str_eq(nm_pred_report_stats_at(r, 0)->label,
                     "Equals(software.owner=x)");
    nm_pred_report_free(r);
    nm_pred_free(p);
}

/* ------------------------------------------------------------ header */

Test(predicate, where_header)
{
    nm_pred *p;
    cr_assert_eq(nm_pred_exists(NM_AXIS_HARDWARE, "gpu", &p), NM_OK);
    char *v;
    size_t n;
    cr_assert_eq(nm_pred_to_where_header(p, &v, &n), NM_OK);
    cr_assert_str_eq(v, "{\"nodes\":[{\"kind\":\"exists\",\"key\":{\"axis\":"
                        "\"hardware\",\"key\":\"gpu\"}}],\"root_idx\":0}");
    cr_assert_eq(n, strlen(v));
    nm_header h[3] = {{"net-where-x", "junk", 4},
                      {NM_PRED_WHERE_HEADER, v, n},
                      {NM_PRED_WHERE_HEADER, "junk", 4}};
    nm_pred *back = NULL;
    cr_assert_eq(nm_pred_from_where_headers(h, 3, &back), NM_OK);
    cr_assert_not_null(back);
    char *again;
    cr_assert_eq(nm_pred_to_wire_json(back, &again, NULL), NM_OK);
    cr_assert_str_eq(again, v);
    free(again);
    nm_pred_free(back);
    /* absent (names are case-sensitive) -> no filter */
    nm_header none[1] = {{"Net-Where", v, n}};
    back = (nm_pred *)1;
    cr_assert_eq(nm_pred_from_where_headers(none, 1, &back), NM_OK);
    cr_assert_null(back);
    cr_assert_eq(nm_pred_from_where_headers(NULL, 0, &back), NM_OK);
    cr_assert_null(back);
    /* malformed is an error, never ignored; the first header wins */
    nm_header bad[2] = {{NM_PRED_WHERE_HEADER, "junk", 4},
                        {NM_PRED_WHERE_HEADER, v, n}};
    cr_assert_eq(nm_pred_from_where_headers(bad, 2, &back), NM_EDECODE);
    free(v);
    nm_pred_free(p);
    /* oversize: on encode, and before decode */
    char *longv = malloc(5000);
    memset(longv, 'x', 4999);
    longv[4999] = '\0';
    cr_assert_eq(nm_pred_metadata_equals("k", longv, &p), NM_OK);
    cr_assert_eq(nm_pred_to_where_header(p, &v, &n), NM_ETOOBIG);
    nm_header big[1] = {{NM_PRED_WHERE_HEADER, longv, 4097}};
    cr_assert_eq(nm_pred_from_where_headers(big, 1, &back), NM_ETOOBIG);
    nm_pred_free(p);
    free(longv);
}

Test(predicate, kind_names)
{
    cr_assert_str_eq(nm_pred_kind_name(NM_PRED_METADATA_NUMERIC_AT_LEAST),
                     "metadata_numeric_at_least");
    cr_assert_str_eq(nm_pred_kind_name(NM_PRED_NOT), "not");
    cr_assert_null(nm_pred_kind_name((nm_pred_kind)99));
}
