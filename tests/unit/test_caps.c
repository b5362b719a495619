/*
 * tests/unit/test_caps.c - capability tags and sets: the tag grammar,
 * the JSON form, the typed builders (upstream's exact tags), schema
 * validation and set diffs (upstream's report shapes), CapabilityFilter,
 * the scope table of scoped discovery, and the local index (checked
 * against a brute-force scan on random data, through puts, replaces,
 * removes and TTL sweeps).
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netmesh.h>
#include <netmesh/caps.h>
#include <netmesh/subnet.h>

static nm_capset *
set_of(const char *json)
{
    nm_capset *s = NULL;
    cr_assert_eq(nm_capset_from_json(json, strlen(json), &s), NM_OK, "%s: %s",
                 json, nm_errdetail());
    return s;
}

static char *
to_json(const nm_capset *s)
{
    char *j;
    cr_assert_eq(nm_capset_to_json(s, &j, NULL), NM_OK);
    return j;
}

/* ------------------------------------------------------------ tags */

Test(caps, tag_grammar)
{
    static const struct {
        const char *tag;
        nm_tag_kind kind;
        nm_axis axis;
        const char *key, *value;
        char sep;
        const char *prefix, *body;
    } t[] = {
        {"hardware.gpu", NM_TAG_AXIS_PRESENT, NM_AXIS_HARDWARE, "gpu", NULL, 0,
         NULL, NULL},
        {"hardware.gpu.vram_gb=80", NM_TAG_AXIS_VALUE, NM_AXIS_HARDWARE,
         "gpu.vram_gb", "80", '=', NULL, NULL},
        {"dataforts.has_chain:abc", NM_TAG_AXIS_VALUE, NM_AXIS_DATAFORTS,
         "has_chain", "abc", ':', NULL, NULL},
        {"software.a=b:c", NM_TAG_AXIS_VALUE, NM_AXIS_SOFTWARE, "a", "b:c",
         '=', NULL, NULL},
        {"software.a:b=c", NM_TAG_AXIS_VALUE, NM_AXIS_SOFTWARE, "a", "b=c",
         ':', NULL, NULL},
        {"devices.=", NM_TAG_AXIS_VALUE, NM_AXIS_DEVICES, "", "", '=', NULL,
         NULL},
        {"devices.", NM_TAG_AXIS_PRESENT, NM_AXIS_DEVICES, "", NULL, 0, NULL,
         NULL},
        {"scope:tenant:oem", NM_TAG_RESERVED, 0, NULL, NULL, 0,
         "scope:", "tenant:oem"},
        {"scope:", NM_TAG_RESERVED, 0, NULL, NULL, 0, "scope:", ""},
        {"causal:abc:5", NM_TAG_RESERVED, 0, NULL, NULL, 0,
         "causal:", "abc:5"},
        {"dataforts:x", NM_TAG_RESERVED, 0, NULL, NULL, 0, "dataforts:", "x"},
        {"fork-of:h", NM_TAG_RESERVED, 0, NULL, NULL, 0, "fork-of:", "h"},
        {"heat:h=0.50", NM_TAG_RESERVED, 0, NULL, NULL, 0, "heat:", "h=0.50"},
        {"bogus.x", NM_TAG_LEGACY, 0, NULL, NULL, 0, NULL, NULL},
        {"Hardware.gpu", NM_TAG_LEGACY, 0, NULL, NULL, 0, NULL, NULL},
        {"region:eu", NM_TAG_LEGACY, 0, NULL, NULL, 0, NULL, NULL},
        {"relay-capable", NM_TAG_LEGACY, 0, NULL, NULL, 0, NULL, NULL},
        {"hardware", NM_TAG_LEGACY, 0, NULL, NULL, 0, NULL, NULL},
        {"model:llama3-70b", NM_TAG_LEGACY, 0, NULL, NULL, 0, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        nm_tag_view v;
        cr_assert_eq(nm_tag_parse(t[i].tag, &v), NM_OK, "%s", t[i].tag);
        cr_assert_eq(v.kind, t[i].kind, "%s", t[i].tag);
        if (t[i].kind <= NM_TAG_AXIS_VALUE) {
            cr_assert_eq(v.axis, t[i].axis);
            cr_assert_eq(v.key_len, strlen(t[i].key), "%s", t[i].tag);
            cr_assert(!memcmp(v.key, t[i].key, v.key_len));
        }
        if (t[i].kind == NM_TAG_AXIS_VALUE) {
            cr_assert_eq(v.sep, t[i].sep);
            cr_assert_eq(v.value_len, strlen(t[i].value));
            cr_assert(!memcmp(v.value, t[i].value, v.value_len));
        }
        if (t[i].kind == NM_TAG_RESERVED) {
            cr_assert_str_eq(v.prefix, t[i].prefix);
            cr_assert_str_eq(v.body, t[i].body);
            cr_assert_eq(nm_tag_parse_user(t[i].tag, &v), NM_EINVAL);
        } else {
            cr_assert_eq(nm_tag_parse_user(t[i].tag, &v), NM_OK);
        }
    }
    nm_tag_view v;
    cr_assert_eq(nm_tag_parse("", &v), NM_EINVAL);
    cr_assert_eq(nm_tag_parse_user("", &v), NM_EINVAL);
    cr_assert(nm_tag_semantic_eq("hardware.a=b", "hardware.a:b"));
    cr_assert(!nm_tag_semantic_eq("hardware.a", "hardware.a=b"));
    cr_assert(!nm_tag_semantic_eq("hardware.gpu", "hardware.gpu="));
    cr_assert(nm_tag_semantic_eq("x", "x"));
    cr_assert(!nm_tag_semantic_eq("", ""));
    cr_assert_str_eq(nm_axis_name(NM_AXIS_DATAFORTS), "dataforts");
    nm_axis a;
    cr_assert_eq(nm_axis_parse("software", &a), NM_OK);
    cr_assert_eq(a, NM_AXIS_SOFTWARE);
    cr_assert_eq(nm_axis_parse("SOFTWARE", &a), NM_EINVAL);
    cr_assert_str_eq(nm_tag_reserved_prefix(4), "scope:");
    cr_assert_null(nm_tag_reserved_prefix(5));
}

/* ------------------------------------------------------------ sets */

Test(caps, set_json_form)
{
    nm_capset *s = set_of(
        "{\"metadata\":{\"z\":\"1\",\"a\":\"\\\"q\\\"\",\"a\":\"2\"},\"x\":7,"
        "\"tags\":[\"scope:tenant:b\",\"hardware.gpu\",\"hardware.gpu\","
        "\"bogus\",\"hardware.gpu:x\",\"\\u00e9t\\u00e9\"]}");
    char *j = to_json(s);
    cr_assert_str_eq(j, "{\"tags\":[\"bogus\",\"hardware.gpu\","
                        "\"hardware.gpu:x\",\"scope:tenant:b\","
                        "\"\xc3\xa9t\xc3\xa9\"],\"metadata\":{\"a\":\"2\","
                        "\"z\":\"1\"}}");
    nm_capset *back = set_of(j);
    char *j2 = to_json(back);
    cr_assert_str_eq(j, j2);
    free(j);
    free(j2);
    cr_assert_eq(nm_capset_tag_count(s), 5);
    cr_assert_str_eq(nm_capset_tag_at(s, 0), "bogus");
    cr_assert_str_eq(nm_capset_metadata(s, "a"), "2");
    nm_capset_free(back);
    nm_capset_free(s);
    /* missing fields default to empty */
    s = set_of("{}");
    j = to_json(s);
    cr_assert_str_eq(j, "{\"tags\":[],\"metadata\":{}}");
    free(j);
    nm_capset_free(s);
    static const char *const bad[] = {
        "{\"tags\":[\"\"]}",
        "{\"tags\":[\"a\"],\"tags\":[]}",
        "{\"tags\":null}",
        "{\"tags\":\"a\"}",
        "{\"metadata\":{\"a\":1}}",
        "{\"metadata\":[]}",
        "[]",
        "{\"tags\":[\"a\\u0000b\"]}",
        "{\"tags\":[\"a\"]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nm_capset *x = NULL;
        cr_assert_eq(nm_capset_from_json(bad[i], strlen(bad[i]), &x),
                     NM_EDECODE, "%s", bad[i]);
        cr_assert_null(x);
    }
    nm_capset *x;
    cr_assert_eq(nm_capset_from_bytes("{}", 2, &x), NM_OK);
    nm_capset_free(x);
    cr_assert_eq(nm_capset_from_bytes("\x01\x00", 2, &x), NM_ENOTSUP);
    cr_assert_eq(nm_capset_from_bytes("[]", 2, &x), NM_EDECODE);
}

Test(caps, builders_and_reserved)
{
    nm_capset *s;
    cr_assert_eq(nm_capset_new(&s), NM_OK);
    cr_assert_eq(nm_capset_add_tag(s, "gpu"), NM_OK);
    cr_assert_eq(nm_capset_add_tag(s, "scope:tenant:x"), NM_CAPS_DROPPED);
    cr_assert_eq(nm_capset_add_tag(s, ""), NM_CAPS_DROPPED);
    cr_assert_eq(nm_capset_insert_tag(s, ""), NM_EINVAL);
    cr_assert_eq(nm_capset_set_tenant_scope(s, "oem-123"), NM_OK);
    cr_assert_eq(nm_capset_set_tenant_scope(s, ""), NM_OK);
    cr_assert_eq(nm_capset_set_region_scope(s, "eu"), NM_OK);
    cr_assert_eq(nm_capset_set_subnet_local_scope(s), NM_OK);
    cr_assert_eq(nm_capset_add_causal(s, "ab"), NM_OK);
    cr_assert_eq(nm_capset_add_causal(s, ""), NM_OK);
    cr_assert_eq(nm_capset_add_causal_tip(s, "ab", 7), NM_OK);
    cr_assert_eq(nm_capset_add_causal_range(s, "ab", 3, 9), NM_OK);
    cr_assert_eq(nm_capset_add_causal_range(s, "ab", 9, 9), NM_OK);
    cr_assert_eq(nm_capset_add_fork_of(s, "cd"), NM_OK);
    cr_assert_eq(nm_capset_add_heat(s, "ab", 1.7), NM_OK);
    cr_assert_eq(nm_capset_add_heat(s, "cd", 0.256), NM_OK);
    cr_assert_eq(nm_capset_add_heat(s, "ef", -1.0 / 0.0), NM_OK);
    cr_assert_eq(nm_capset_set_metadata(s, "intent", "a"), NM_OK);
    cr_assert_eq(nm_capset_set_metadata(s, "intent", "b"), NM_OK);
    char *j = to_json(s);
    cr_assert_str_eq(j,
                     "{\"tags\":[\"causal:ab\",\"causal:ab:7\","
                     "\"causal:ab[3..9]\",\"fork-of:cd\",\"gpu\","
                     "\"heat:ab=1.00\",\"heat:cd=0.26\",\"scope:region:eu\","
                     "\"scope:subnet-local\",\"scope:tenant:oem-123\"],"
                     "\"metadata\":{\"intent\":\"b\"}}");
    free(j);
    cr_assert_eq(nm_capset_remove_tag(s, "gpu"), NM_OK);
    cr_assert_eq(nm_capset_remove_tag(s, "gpu"), NM_ENOTFOUND);
    cr_assert_eq(nm_capset_remove_metadata(s, "intent"), NM_OK);
    cr_assert_eq(nm_capset_remove_metadata(s, "intent"), NM_ENOTFOUND);
    cr_assert(!nm_capset_has_tag(s, "gpu"));
    cr_assert(nm_capset_has_tag(s, "fork-of:cd"));
    nm_capset_free(s);
}

Test(caps, typed_projections)
{
    nm_capset *s;
    cr_assert_eq(nm_capset_new(&s), NM_OK);
    cr_assert_eq(nm_capset_insert_tag(s, "hardware.user_added=1"), NM_OK);
    cr_assert_eq(nm_capset_insert_tag(s, "hardware.limits.rate_limit_rpm=9"),
                 NM_OK);
    nm_hardware hw = {0};
    hw.cpu_cores = 16;
    hw.cpu_threads = 32;
    hw.memory_gb = 64;
    hw.has_gpu = true;
    hw.gpu.vendor = NM_GPU_NVIDIA;
    hw.gpu.model = "RTX 4090";
    hw.gpu.vram_gb = 24;
    hw.storage_gb = 0;
    hw.network_gbps = 10;
    cr_assert_eq(nm_capset_set_hardware(s, &hw), NM_OK);
    nm_named_version rt[] = {{"python", "3.11"}, {"bad.name", "1"},
                             {"", "1"},          {"node", ""},
                             {"x=y", "2"},       {"deno", "1.4"}};
    nm_software sw = {"linux", "6.6", rt, 6, NULL, 0, "12.4", NULL, 0};
    cr_assert_eq(nm_capset_set_software(s, &sw), NM_OK);
    nm_model models[2] = {
        {"llama-3.1-70b", "llama", 700, 131072, "q4",
         NM_MODALITY_TEXT | NM_MODALITY_CODE, 50, true},
        {"embed", NULL, 0, 0, NULL, NM_MODALITY_EMBEDDING, 0, false}};
    cr_assert_eq(nm_capset_set_models(s, models, 2), NM_OK);
    const char *req[] = {"net", "fs"};
    nm_tool tool = {"search", "Search", "1.0", req,
                    2,        250,      false, "{\"type\":\"object\"}",
                    NULL};
    cr_assert_eq(nm_capset_set_tools(s, &tool, 1), NM_OK);
    char *j = to_json(s);
    cr_assert_str_eq(
        j,
        "{\"tags\":[\"hardware.cpu_cores=16\",\"hardware.cpu_threads=32\","
        "\"hardware.gpu\",\"hardware.gpu.model=RTX 4090\","
        "\"hardware.gpu.vendor=nvidia\",\"hardware.gpu.vram_gb=24\","
        "\"hardware.limits.rate_limit_rpm=9\",\"hardware.memory_gb=64\","
        "\"hardware.network_gbps=10\",\"software.cuda_version=12.4\","
        "\"software.model.0.context_length=131072\","
        "\"software.model.0.family=llama\",\"software.model.0.id=llama-3.1-"
        "70b\",\"software.model.0.loaded=true\","
        "\"software.model.0.modalities=text,code\","
        "\"software.model.0.parameters_b_x10=700\","
        "\"software.model.0.quantization=q4\","
        "\"software.model.0.tokens_per_sec=50\","
        "\"software.model.1.id=embed\",\"software.model.1.modalities="
        "embedding\",\"software.os=linux\",\"software.os_version=6.6\","
        "\"software.runtime.deno=1.4\",\"software.runtime.python=3.11\","
        "\"software.tool.0.estimated_time_ms=250\","
        "\"software.tool.0.name=Search\",\"software.tool.0.requires=net,fs\","
        "\"software.tool.0.stateless=false\","
        "\"software.tool.0.tool_id=search\",\"software.tool.0.version=1.0\"],"
        "\"metadata\":{\"tool::search::input_schema\":"
        "\"{\\\"type\\\":\\\"object\\\"}\"}}");
    free(j);
    /* a validated, fully typed set is clean */
    nm_caps_report *r;
    cr_assert_eq(nm_caps_validate(s, &r), NM_OK);
    cr_assert_eq(nm_caps_report_error_count(r), 0);
    cr_assert_eq(nm_caps_report_warning_count(r), 0);
    nm_caps_report_free(r);
    /* decoded views */
    nm_hardware back;
    cr_assert_eq(nm_capset_hardware(s, &back), NM_OK);
    cr_assert_eq(back.memory_gb, 64);
    cr_assert_eq(back.gpu.vendor, NM_GPU_NVIDIA);
    cr_assert_str_eq(back.gpu.model, "RTX 4090");
    cr_assert_eq(back.gpu.vram_gb, 24);
    cr_assert(back.has_gpu);
    cr_assert_eq(nm_capset_model_count(s), 2);
    nm_model m;
    cr_assert_eq(nm_capset_model_at(s, 0, &m), NM_OK);
    cr_assert_str_eq(m.id, "llama-3.1-70b");
    cr_assert_eq(m.context_length, 131072);
    cr_assert_eq(m.modalities, NM_MODALITY_TEXT | NM_MODALITY_CODE);
    cr_assert(m.loaded);
    /* with_hardware replaces hardware.* except limits.* */
    nm_hardware small = {0};
    small.memory_gb = 8;
    cr_assert_eq(nm_capset_set_hardware(s, &small), NM_OK);
    cr_assert(!nm_capset_has_tag(s, "hardware.gpu"));
    cr_assert(nm_capset_has_tag(s, "hardware.limits.rate_limit_rpm=9"));
    cr_assert(nm_capset_has_tag(s, "hardware.memory_gb=8"));
    /* add_model appends */
    nm_model extra = {"m3", NULL, 0, 0, NULL, 0, 0, false};
    cr_assert_eq(nm_capset_add_model(s, &extra), NM_OK);
    cr_assert(nm_capset_has_tag(s, "software.model.2.id=m3"));
    nm_resource_limits lim = {0};
    lim.max_batch_size = 4;
    cr_assert_eq(nm_capset_set_limits(s, &lim), NM_OK);
    cr_assert(!nm_capset_has_tag(s, "hardware.limits.rate_limit_rpm=9"));
    cr_assert(nm_capset_has_tag(s, "hardware.limits.max_batch_size=4"));
    nm_capset_free(s);
}

/* ------------------------------------------------------------ validation */

static void
check_validate(const char *caps, const char *want)
{
    nm_capset *s = set_of(caps);
    nm_caps_report *r;
    cr_assert_eq(nm_caps_validate(s, &r), NM_OK);
    char *j;
    cr_assert_eq(nm_caps_report_to_json(r, &j, NULL), NM_OK);
    cr_assert_str_eq(j, want, "for %s", caps);
    free(j);
    nm_caps_report_free(r);
    nm_capset_free(s);
}

Test(caps, validation_table)
{
    check_validate("{\"tags\":[],\"metadata\":{}}",
                   "{\"errors\":[],\"warnings\":[]}");
    check_validate(
        "{\"tags\":[\"hardware.cpu_cores=16\",\"hardware.memory_gb=64\","
        "\"hardware.gpu\",\"hardware.gpu.vendor=nvidia\","
        "\"hardware.gpu.model=h100\",\"hardware.gpu.vram_gb=80\","
        "\"hardware.storage_gb=1000\",\"hardware.network_gbps=100\","
        "\"software.os=linux\",\"software.runtime.python=3.11.5\","
        "\"software.model.0.id=x\",\"software.model.0.loaded=false\","
        "\"software.model.0.modalities=text\",\"software.tool.3.stateless="
        "true\","
        "\"scope:tenant:foo\",\"causal:abc\",\"fork-of:d\",\"heat:hot\","
        "\"hardware.limits.max_output_bytes=+5\"]}",
        "{\"errors\":[],\"warnings\":[]}");
    check_validate("{\"tags\":[\"hardware.memory_gb=lots\"]}",
                   "{\"errors\":[{\"actual\":\"lots\",\"axis\":\"hardware\","
                   "\"expected\":\"number\",\"key\":\"memory_gb\",\"kind\":"
                   "\"type_mismatch\"}],\"warnings\":[]}");
    check_validate("{\"tags\":[\"hardware.memory_gb=-1\","
                   "\"hardware.gpu.vram_gb=18446744073709551616\"]}",
                   "{\"errors\":[{\"actual\":\"-1\",\"axis\":\"hardware\","
                   "\"expected\":\"number\",\"key\":\"memory_gb\",\"kind\":"
                   "\"type_mismatch\"},{\"actual\":\"18446744073709551616\","
                   "\"axis\":\"hardware\",\"expected\":\"number\",\"key\":"
                   "\"gpu.vram_gb\",\"kind\":\"type_mismatch\"}],"
                   "\"warnings\":[]}");
    check_validate("{\"tags\":[\"hardware.gpu=true\"]}",
                   "{\"errors\":[{\"actual\":\"true\",\"axis\":\"hardware\","
                   "\"expected\":\"presence\",\"key\":\"gpu\",\"kind\":"
                   "\"type_mismatch\"}],\"warnings\":[]}");
    check_validate("{\"tags\":[\"hardware.memory_gb\"]}",
                   "{\"errors\":[{\"actual\":\"<no value>\",\"axis\":"
                   "\"hardware\",\"expected\":\"number\",\"key\":"
                   "\"memory_gb\",\"kind\":\"type_mismatch\"}],"
                   "\"warnings\":[]}");
    check_validate("{\"tags\":[\"software.model.0.loaded=maybe\","
                   "\"software.os=\",\"software.runtime.py:\"]}",
                   "{\"errors\":[{\"actual\":\"\",\"axis\":\"software\","
                   "\"expected\":\"string\",\"key\":\"os\",\"kind\":"
                   "\"type_mismatch\"},{\"actual\":\"\",\"axis\":\"software\","
                   "\"expected\":\"string\",\"key\":\"runtime.\",\"kind\":"
                   "\"type_mismatch\"},{\"actual\":\"maybe\",\"axis\":"
                   "\"software\",\"expected\":\"bool\",\"key\":\"loaded\","
                   "\"kind\":\"type_mismatch\"}],\"warnings\":[]}");
    check_validate("{\"tags\":[\"software.model.bogus.id=foo\","
                   "\"software.model.99999999999999.id=foo\","
                   "\"software.tool..name=x\"]}",
                   "{\"errors\":[{\"axis\":\"software\",\"index\":\"\","
                   "\"kind\":\"index_malformed\",\"prefix\":\"tool.\","
                   "\"tag\":\"software.tool..name=x\"},{\"axis\":\"software\","
                   "\"index\":\"99999999999999\",\"kind\":\"index_malformed\","
                   "\"prefix\":\"model.\",\"tag\":\"software.model."
                   "99999999999999.id=foo\"},{\"axis\":\"software\",\"index\":"
                   "\"bogus\",\"kind\":\"index_malformed\",\"prefix\":"
                   "\"model.\",\"tag\":\"software.model.bogus.id=foo\"}],"
                   "\"warnings\":[]}");
    check_validate("{\"tags\":[\"hardware.experimental_field=42\","
                   "\"software.model.0.extra_field=v\",\"software.model.0\","
                   "\"software.runtime.\",\"devices.printer\","
                   "\"dataforts.capacity_gb=5\",\"hardware.memory_mb=1\"]}",
                   "{\"errors\":[],\"warnings\":["
                   "{\"axis\":\"dataforts\",\"key\":\"capacity_gb\",\"kind\":"
                   "\"unknown_key\"},"
                   "{\"axis\":\"devices\",\"key\":\"printer\",\"kind\":"
                   "\"unknown_key\"},"
                   "{\"axis\":\"hardware\",\"key\":\"experimental_field\","
                   "\"kind\":\"unknown_key\"},"
                   "{\"axis\":\"hardware\",\"key\":\"memory_mb\",\"kind\":"
                   "\"unknown_key\"},"
                   "{\"axis\":\"software\",\"key\":\"model.0\",\"kind\":"
                   "\"unknown_key\"},"
                   "{\"axis\":\"software\",\"key\":\"model.0.extra_field\","
                   "\"kind\":\"unknown_key\"},"
                   "{\"axis\":\"software\",\"key\":\"runtime.\",\"kind\":"
                   "\"unknown_key\"}]}");
    check_validate("{\"tags\":[\"myteam-tag\",\"nat:full-cone\"],"
                   "\"metadata\":{\"intent\":\"x\",\"owner\":\"y\","
                   "\"tool::a::input_schema\":\"{}\",\"zz\":\"1\"}}",
                   "{\"errors\":[],\"warnings\":["
                   "{\"key\":\"intent\",\"kind\":\"metadata_reserved_key\"},"
                   "{\"key\":\"owner\",\"kind\":\"metadata_reserved_key\"},"
                   "{\"kind\":\"legacy_tag\",\"tag\":\"myteam-tag\"},"
                   "{\"kind\":\"legacy_tag\",\"tag\":\"nat:full-cone\"}]}");
    /* the soft cap: 4096 bytes is fine, 4097 is not */
    char big[5000];
    char *v = malloc(4097);
    memset(v, 'x', 4096);
    v[4095] = '\0'; /* key "k" (1) + 4095 = 4096 */
    snprintf(big, sizeof(big), "{\"metadata\":{\"k\":\"%s\"}}", v);
    check_validate(big, "{\"errors\":[],\"warnings\":[]}");
    v[4095] = 'x';
    v[4096] = '\0';
    snprintf(big, sizeof(big), "{\"metadata\":{\"k\":\"%s\"}}", v);
    check_validate(big, "{\"errors\":[],\"warnings\":[{\"actual_bytes\":4097,"
                        "\"kind\":\"metadata_oversize\",\"soft_cap_bytes\":"
                        "4096}]}");
    free(v);
}

Test(caps, validation_accessors)
{
    nm_capset *s = set_of("{\"tags\":[\"software.model.x.id=1\","
                          "\"hardware.cpu_cores=many\",\"legacy\"]}");
    nm_caps_report *r;
    cr_assert_eq(nm_caps_validate(s, &r), NM_OK);
    cr_assert_eq(nm_caps_report_error_count(r), 2);
    const nm_caps_issue *e = nm_caps_report_error(r, 0);
    cr_assert_str_eq(e->kind, "type_mismatch");
    cr_assert_str_eq(e->axis, "hardware");
    cr_assert_str_eq(e->key, "cpu_cores");
    cr_assert_str_eq(e->expected, "number");
    cr_assert_str_eq(e->actual, "many");
    e = nm_caps_report_error(r, 1);
    cr_assert_str_eq(e->kind, "index_malformed");
    cr_assert_str_eq(e->prefix, "model.");
    cr_assert_str_eq(e->index, "x");
    cr_assert_str_eq(e->tag, "software.model.x.id=1");
    cr_assert_null(nm_caps_report_error(r, 2));
    cr_assert_str_eq(nm_caps_report_warning(r, 0)->tag, "legacy");
    nm_caps_report_free(r);
    nm_capset_free(s);
}

/* ------------------------------------------------------------ diff */

static void
check_diff(const char *req, const char *want)
{
    char *out;
    cr_assert_eq(nm_caps_diff_request(req, strlen(req), &out, NULL), NM_OK,
                 "%s", nm_errdetail());
    cr_assert_str_eq(out, want);
    free(out);
}

Test(caps, diff_table)
{
    check_diff(
        "{\"prev\":{},\"curr\":{}}",
        "{\"added_tags\":[],\"removed_tags\":[],\"metadata_changes\":[]}");
    check_diff(
        "{\"prev\":{\"tags\":[\"hardware.cpu_cores=8\",\"scope:tenant:"
        "foo\"]},\"curr\":{\"tags\":[\"scope:tenant:bar\","
        "\"hardware.cpu_cores=16\"]}}",
        "{\"added_tags\":[\"hardware.cpu_cores=16\",\"scope:tenant:bar\"],"
        "\"removed_tags\":[\"hardware.cpu_cores=8\",\"scope:tenant:foo\"],"
        "\"metadata_changes\":[]}");
    /* a separator-only change is in neither list */
    check_diff("{\"prev\":{\"tags\":[\"dataforts.c:x\",\"a\"]},\"curr\":{"
               "\"tags\":[\"dataforts.c=x\",\"b\"]}}",
               "{\"added_tags\":[\"b\"],\"removed_tags\":[\"a\"],"
               "\"metadata_changes\":[]}");
    check_diff("{\"prev\":{\"metadata\":{\"intent\":\"embedding-cache\","
               "\"old-key\":\"v\",\"same\":\"s\"}},\"curr\":{\"metadata\":{"
               "\"zebra\":\"z\",\"intent\":\"ml-training\",\"new-key\":\"v\","
               "\"same\":\"s\"}}}",
               "{\"added_tags\":[],\"removed_tags\":[],\"metadata_changes\":["
               "{\"kind\":\"updated\",\"key\":\"intent\",\"prev_value\":"
               "\"embedding-cache\",\"new_value\":\"ml-training\"},"
               "{\"kind\":\"added\",\"key\":\"new-key\",\"value\":\"v\"},"
               "{\"kind\":\"removed\",\"key\":\"old-key\",\"prev_value\":"
               "\"v\"},"
               "{\"kind\":\"added\",\"key\":\"zebra\",\"value\":\"z\"}]}");
    static const char *const bad[] = {
        "{\"prev\":{}}",
        "{\"curr\":{}}",
        "{\"prev\":{},\"curr\":{},\"prev\":{}}",
        "{\"prev\":{\"tags\":[\"\"]},\"curr\":{}}",
        "{\"prev\":[],\"curr\":{}}",
        "nope",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = NULL;
        cr_assert_eq(nm_caps_diff_request(bad[i], strlen(bad[i]), &out, NULL),
                     NM_EDECODE, "%s", bad[i]);
        cr_assert_null(out);
    }
    /* structured access */
    nm_capset *a = set_of("{\"tags\":[\"x\"],\"metadata\":{\"k\":\"1\"}}");
    nm_capset *b = set_of("{\"tags\":[\"y\"],\"metadata\":{\"k\":\"2\"}}");
    nm_caps_diff *d;
    cr_assert_eq(nm_capset_diff(b, a, &d), NM_OK);
    cr_assert_eq(nm_caps_diff_added_count(d), 1);
    cr_assert_str_eq(nm_caps_diff_added(d, 0), "y");
    cr_assert_str_eq(nm_caps_diff_removed(d, 0), "x");
    const nm_meta_change *c = nm_caps_diff_change(d, 0);
    cr_assert_eq(c->kind, NM_META_UPDATED);
    cr_assert_str_eq(c->prev_value, "1");
    cr_assert_str_eq(c->new_value, "2");
    cr_assert(!nm_caps_diff_is_empty(d));
    nm_caps_diff_free(d);
    cr_assert_eq(nm_capset_diff(a, a, &d), NM_OK);
    cr_assert(nm_caps_diff_is_empty(d));
    nm_caps_diff_free(d);
    nm_capset_free(a);
    nm_capset_free(b);
}

/* ------------------------------------------------------------ filter */

Test(caps, filter_table)
{
    nm_capset *s = set_of(
        "{\"tags\":[\"hardware.gpu\",\"hardware.gpu.vendor=nvidia\","
        "\"hardware.gpu.vram_gb:24\",\"hardware.gpu.vram_gb=8\","
        "\"hardware.memory_gb=64\",\"dataforts.c:x\",\"model:llama\","
        "\"software.model.0.id=llama\",\"software.model.0.context_length="
        "8192\","
        "\"software.model.0.modalities=text,code\","
        "\"software.model.1.modalities=image\",\"software.model.a.b.id=deep\","
        "\"software.model.q.id=odd\",\"software.tool.0.tool_id=search\"]}");
    nm_capfilter f = NM_CAPFILTER_INIT;
    cr_assert(nm_capfilter_matches(&f, s));
    cr_assert(nm_capfilter_matches(NULL, s));
    const char *t1[] = {"dataforts.c=x", "model:llama"};
    f.require_tags = t1;
    f.n_require_tags = 2;
    cr_assert(nm_capfilter_matches(&f, s));
    const char *t2[] = {""};
    f.require_tags = t2;
    f.n_require_tags = 1;
    cr_assert(!nm_capfilter_matches(&f, s));
    const char *t3[] = {"hardware.gpu=x"};
    f.require_tags = t3;
    cr_assert(!nm_capfilter_matches(&f, s));
    f = (nm_capfilter)NM_CAPFILTER_INIT;
    const char *m1[] = {"nope", "odd"};
    f.require_models = m1;
    f.n_require_models = 2;
    cr_assert(nm_capfilter_matches(&f, s));
    const char *m2[] = {"deep"};
    f.require_models = m2;
    f.n_require_models = 1;
    cr_assert(!nm_capfilter_matches(&f, s));
    f = (nm_capfilter)NM_CAPFILTER_INIT;
    const char *tools[] = {"search"};
    f.require_tools = tools;
    f.n_require_tools = 1;
    cr_assert(nm_capfilter_matches(&f, s));
    f = (nm_capfilter)NM_CAPFILTER_INIT;
    f.min_memory_gb = 64;
    cr_assert(nm_capfilter_matches(&f, s));
    f.min_memory_gb = 65;
    cr_assert(!nm_capfilter_matches(&f, s));
    f = (nm_capfilter)NM_CAPFILTER_INIT;
    f.gpu_vendor = NM_GPU_NVIDIA;
    cr_assert(nm_capfilter_matches(&f, s));
    f.gpu_vendor = NM_GPU_AMD;
    cr_assert(!nm_capfilter_matches(&f, s));
    /* vram: first in order (":24") passes 24; 20 too; 25 fails both the
     * first and the decoded (last: "=8") value */
    f = (nm_capfilter)NM_CAPFILTER_INIT;
    f.min_vram_gb = 24;
    cr_assert(nm_capfilter_matches(&f, s));
    f.min_vram_gb = 25;
    cr_assert(!nm_capfilter_matches(&f, s));
    f = (nm_capfilter)NM_CAPFILTER_INIT;
    f.has_min_context_length = true;
    f.min_context_length = 8192;
    cr_assert(nm_capfilter_matches(&f, s));
    f.min_context_length = 8193;
    cr_assert(!nm_capfilter_matches(&f, s));
    f = (nm_capfilter)NM_CAPFILTER_INIT;
    f.require_modalities = NM_MODALITY_CODE | NM_MODALITY_IMAGE;
    cr_assert(nm_capfilter_matches(&f, s));
    f.require_modalities |= NM_MODALITY_AUDIO;
    cr_assert(!nm_capfilter_matches(&f, s));
    nm_capset_free(s);
    /* a set without hardware.gpu presence fails require_gpu even with
     * gpu.* values; memory absent counts as 0 */
    s = set_of("{\"tags\":[\"hardware.gpu.vram_gb=80\","
               "\"hardware.gpu.vendor=nvidia\"]}");
    f = (nm_capfilter)NM_CAPFILTER_INIT;
    f.require_gpu = true;
    cr_assert(!nm_capfilter_matches(&f, s));
    f = (nm_capfilter)NM_CAPFILTER_INIT;
    f.min_memory_gb = 1;
    cr_assert(!nm_capfilter_matches(&f, s));
    f.has_min_context_length = true;
    f.min_context_length = 0;
    f.min_memory_gb = 0;
    cr_assert(!nm_capfilter_matches(&f, s)); /* no model at all */
    nm_capset_free(s);
}

Test(caps, score)
{
    nm_capset *s = set_of(
        "{\"tags\":[\"hardware.memory_gb=128\",\"hardware.gpu\","
        "\"hardware.gpu.vram_gb=40\",\"software.model.0.tokens_per_sec=500\","
        "\"software.model.0.loaded=true\",\"software.model.1.id=x\"]}");
    nm_capreq req = {NM_CAPFILTER_INIT, 1.0f, 1.0f, 1.0f, 1.0f};
    cr_assert_float_eq(nm_capreq_score(&req, s),
                       1.0f + 0.5f + 0.5f + 0.5f + 0.5f, 1e-6);
    req.w_memory = 5.0f; /* clamped to 1 */
    req.w_vram = -1.0f;  /* clamped to 0 */
    cr_assert_float_eq(nm_capreq_score(&req, s), 1.0f + 0.5f + 0.5f + 0.5f,
                       1e-6);
    req.filter.min_memory_gb = 256;
    cr_assert_float_eq(nm_capreq_score(&req, s), 0.0f, 1e-9);
    nm_capset_free(s);
}

/* ------------------------------------------------------------ scope */

Test(caps, scope_table)
{
    /* candidates: subnet-local, global (untagged), tenant, region-only,
     * tenant+region, and subnet-local that also has a tenant */
    const char *cands[] = {
        "{\"tags\":[\"scope:subnet-local\"]}",
        "{\"tags\":[\"x\",\"scope:global\",\"scope:tenant:\"]}",
        "{\"tags\":[\"scope:tenant:t1\"]}",
        "{\"tags\":[\"scope:region:eu\"]}",
        "{\"tags\":[\"scope:tenant:t2\",\"scope:region:us\"]}",
        "{\"tags\":[\"scope:tenant:t1\",\"scope:subnet-local\"]}",
    };
    const nm_scope_class cls[] = {
        NM_SCOPE_CLASS_SUBNET_LOCAL, NM_SCOPE_CLASS_GLOBAL,
        NM_SCOPE_CLASS_SCOPED,       NM_SCOPE_CLASS_SCOPED,
        NM_SCOPE_CLASS_SCOPED,       NM_SCOPE_CLASS_SUBNET_LOCAL};
    const char *t1[] = {"t1"}, *t12[] = {"t2", "t1"}, *eu[] = {"eu"},
               *us[] = {"us"};
    struct {
        nm_scope_filter f;
        bool want[6];
    } rows[] = {
        {{NM_SCOPE_ANY, NULL, 0, NULL, NULL}, {0, 1, 1, 1, 1, 0}},
        {{NM_SCOPE_GLOBAL_ONLY, NULL, 0, NULL, NULL}, {0, 1, 0, 0, 0, 0}},
        {{NM_SCOPE_TENANTS, t1, 1, NULL, NULL}, {0, 1, 1, 0, 0, 0}},
        {{NM_SCOPE_TENANTS, t12, 2, NULL, NULL}, {0, 1, 1, 0, 1, 0}},
        {{NM_SCOPE_TENANTS, NULL, 0, NULL, NULL}, {0, 1, 0, 0, 0, 0}},
        {{NM_SCOPE_REGIONS, eu, 1, NULL, NULL}, {0, 1, 0, 1, 0, 0}},
        {{NM_SCOPE_REGIONS, us, 1, NULL, NULL}, {0, 1, 0, 0, 1, 0}},
        {{NM_SCOPE_REGIONS, NULL, 0, NULL, NULL}, {0, 1, 0, 0, 0, 0}},
        {{NM_SCOPE_SAME_SUBNET, NULL, 0, NULL, NULL}, {0, 0, 0, 0, 0, 0}},
    };
    for (size_t c = 0; c < 6; c++) {
        nm_capset *s = set_of(cands[c]);
        cr_assert_eq(nm_capset_scope_class(s), cls[c], "cand %zu", c);
        cr_assert(nm_scope_matches(NULL, 1, s));
        for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
            cr_assert_eq(nm_scope_matches(&rows[r].f, 1, s), rows[r].want[c],
                         "row %zu cand %zu", r, c);
        }
        nm_capset_free(s);
    }
    /* SameSubnet ignores the tags and asks the resolver */
    nm_subnet_policy *pol;
    nm_subnet_rule *rule;
    cr_assert_eq(nm_subnet_policy_new(&pol), NM_OK);
    cr_assert_eq(nm_subnet_rule_new("region:", 0, &rule), NM_OK);
    cr_assert_eq(nm_subnet_rule_map(rule, "us", 3), NM_OK);
    cr_assert_eq(nm_subnet_policy_add_rule(pol, rule), NM_OK);
    nm_subnet_resolver res = {42, pol, 0x03000000u};
    nm_scope_filter same = {NM_SCOPE_SAME_SUBNET, NULL, 0,
                            nm_subnet_same_subnet_cb, &res};
    nm_capset *us_set = set_of("{\"tags\":[\"region:us\","
                               "\"scope:subnet-local\"]}");
    nm_capset *eu_set = set_of("{\"tags\":[\"region:eu\"]}");
    cr_assert(nm_scope_matches(&same, 7, us_set));
    cr_assert(!nm_scope_matches(&same, 7, eu_set));
    cr_assert(nm_scope_matches(&same, 42, eu_set)); /* self */
    res.policy = NULL;
    cr_assert(!nm_scope_matches(&same, 7, us_set));
    nm_capset_free(us_set);
    nm_capset_free(eu_set);
    nm_subnet_policy_free(pol);
}

/* ------------------------------------------------------------ index */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char *const pool[] = {
    "hardware.gpu",
    "hardware.gpu.vendor=nvidia",
    "hardware.gpu.vendor:nvidia",
    "hardware.gpu.vendor=amd",
    "hardware.gpu.vram_gb=24",
    "hardware.gpu.vram_gb=80",
    "hardware.memory_gb=16",
    "hardware.memory_gb=64",
    "hardware.memory_gb=256",
    "software.os=linux",
    "software.os:linux",
    "software.model.0.id=llama",
    "software.model.0.context_length=8192",
    "software.model.1.id=mistral",
    "software.model.0.modalities=text,code",
    "software.tool.0.tool_id=grep",
    "model:llama3-70b",
    "relay-capable",
    "scope:subnet-local",
    "scope:tenant:a",
    "scope:tenant:b",
    "scope:region:eu",
    "dataforts.c:x",
    "dataforts.c=x",
    "devices.printer",
};
#define NPOOL (sizeof(pool) / sizeof(pool[0]))

static nm_capset *
random_set(void)
{
    nm_capset *s;
    cr_assert_eq(nm_capset_new(&s), NM_OK);
    int n = (int)(rnd() % 7);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(nm_capset_insert_tag(s, pool[rnd() % NPOOL]), NM_OK);
    }
    return s;
}

static void
random_filter(nm_capfilter *f, const char **tags, nm_scope_filter *sc,
              const char **labels)
{
    *f = (nm_capfilter)NM_CAPFILTER_INIT;
    size_t nt = rnd() % 3;
    for (size_t i = 0; i < nt; i++) {
        tags[i] = rnd() % 20 == 0 ? "unknown.tag" : pool[rnd() % NPOOL];
    }
    f->require_tags = tags;
    f->n_require_tags = nt;
    switch (rnd() % 8) {
    case 0:
        f->require_gpu = true;
        break;
    case 1:
        f->gpu_vendor = rnd() % 2 ? NM_GPU_NVIDIA : NM_GPU_AMD;
        break;
    case 2:
        f->min_vram_gb = (uint32_t)(rnd() % 100);
        break;
    case 3:
        f->min_memory_gb = (uint32_t)(rnd() % 300);
        break;
    case 4:
        f->has_min_context_length = true;
        f->min_context_length = (uint32_t)(rnd() % 10000);
        break;
    default:
        break;
    }
    static const char *const lab[] = {"a", "b", "eu", "us"};
    labels[0] = lab[rnd() % 4];
    labels[1] = lab[rnd() % 4];
    sc->kind = (nm_scope_kind)(rnd() % 5);
    if (sc->kind == NM_SCOPE_SAME_SUBNET) {
        sc->kind = NM_SCOPE_ANY;
    }
    sc->labels = labels;
    sc->n_labels = rnd() % 3;
    sc->same_subnet = NULL;
    sc->ctx = NULL;
}

#define NNODES 1500

Test(caps, index_matches_brute_force)
{
    nm_capindex *x;
    cr_assert_eq(nm_capindex_new(&x), NM_OK);
    nm_capset *truth[NNODES] = {0};
    uint64_t expiry[NNODES] = {0};
    for (int round = 0; round < 4; round++) {
        /* mutate: put / replace / remove */
        for (int k = 0; k < NNODES; k++) {
            uint64_t id = rnd() % NNODES;
            if (rnd() % 10 == 0 && truth[id]) {
                cr_assert_eq(nm_capindex_remove(x, id * 7 + 3), NM_OK);
                nm_capset_free(truth[id]);
                truth[id] = NULL;
                continue;
            }
            nm_capset *s = random_set();
            uint64_t exp = rnd() % 4 == 0 ? 1 + rnd() % 100 : 0;
            cr_assert_eq(nm_capindex_put(x, id * 7 + 3, s, round, exp), NM_OK);
            nm_capset_free(truth[id]);
            truth[id] = s;
            expiry[id] = exp;
        }
        if (round == 2) {
            int dropped = nm_capindex_sweep(x, 50);
            int want = 0;
            for (int i = 0; i < NNODES; i++) {
                if (truth[i] && expiry[i] && expiry[i] <= 50) {
                    nm_capset_free(truth[i]);
                    truth[i] = NULL;
                    want++;
                }
            }
            cr_assert_eq(dropped, want);
        }
        size_t live = 0;
        for (int i = 0; i < NNODES; i++) {
            live += truth[i] != NULL;
        }
        cr_assert_eq(nm_capindex_count(x), live);
        for (int q = 0; q < 300; q++) {
            nm_capfilter f;
            const char *tags[4], *labels[2];
            nm_scope_filter sc;
            random_filter(&f, tags, &sc, labels);
            uint64_t *ids;
            size_t n;
            cr_assert_eq(nm_capindex_find_scoped(x, &f, &sc, &ids, &n), NM_OK);
            size_t j = 0;
            for (uint64_t i = 0; i < NNODES; i++) {
                /* node ids id*7+3 are increasing in i */
                if (truth[i] && nm_capfilter_matches(&f, truth[i]) &&
                    nm_scope_matches(&sc, i * 7 + 3, truth[i])) {
                    cr_assert(j < n, "round %d query %d: missing %llu", round,
                              q, (unsigned long long)(i * 7 + 3));
                    cr_assert_eq(ids[j], i * 7 + 3, "round %d query %d", round,
                                 q);
                    j++;
                }
            }
            cr_assert_eq(j, n, "round %d query %d: extra results", round, q);
            free(ids);
        }
    }
    for (int i = 0; i < NNODES; i++) {
        nm_capset_free(truth[i]);
    }
    nm_capindex_free(x);
}

Test(caps, index_versions_get_best)
{
    nm_capindex *x;
    cr_assert_eq(nm_capindex_new(&x), NM_OK);
    nm_capset *a = set_of("{\"tags\":[\"hardware.gpu\","
                          "\"hardware.gpu.vram_gb=80\"]}");
    nm_capset *b = set_of("{\"tags\":[\"hardware.gpu\","
                          "\"hardware.gpu.vram_gb=24\"]}");
    nm_capset *c = set_of("{\"tags\":[\"hardware.gpu\","
                          "\"hardware.gpu.vram_gb=80\"]}");
    cr_assert_eq(nm_capindex_put(x, 9, a, 5, 0), NM_OK);
    cr_assert_eq(nm_capindex_put(x, 9, b, 4, 0), NM_CAPINDEX_STALE);
    cr_assert_eq(nm_capindex_put(x, 3, b, 1, 0), NM_OK);
    cr_assert_eq(nm_capindex_put(x, 12, c, 1, 0), NM_OK);
    nm_capset *got;
    uint64_t ver;
    cr_assert_eq(nm_capindex_get(x, 9, &got, &ver), NM_OK);
    cr_assert_eq(ver, 5);
    cr_assert(nm_capset_has_tag(got, "hardware.gpu.vram_gb=80"));
    nm_capset_free(got);
    cr_assert_eq(nm_capindex_get(x, 10, &got, NULL), NM_ENOTFOUND);
    /* best: 9 and 12 tie on score; the lowest id wins */
    nm_capreq req = {NM_CAPFILTER_INIT, 0, 1, 0, 0};
    req.filter.require_gpu = true;
    uint64_t best;
    cr_assert_eq(nm_capindex_best(x, &req, NULL, &best), NM_OK);
    cr_assert_eq(best, 9);
    req.filter.min_vram_gb = 100;
    cr_assert_eq(nm_capindex_best(x, &req, NULL, &best), NM_ENOTFOUND);
    /* NaN weights: every score NaN -> the lowest matching id */
    nm_capreq nanreq = {NM_CAPFILTER_INIT, 0.0f / 0.0f, 0, 0, 0};
    cr_assert_eq(nm_capindex_best(x, &nanreq, NULL, &best), NM_OK);
    cr_assert_eq(best, 3);
    /* replace with a newer version drops the old tags from the index */
    cr_assert_eq(nm_capindex_put(x, 9, b, 6, 0), NM_OK);
    nm_capfilter f = NM_CAPFILTER_INIT;
    const char *t[] = {"hardware.gpu.vram_gb=80"};
    f.require_tags = t;
    f.n_require_tags = 1;
    uint64_t *ids;
    size_t n;
    cr_assert_eq(nm_capindex_find(x, &f, &ids, &n), NM_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], 12);
    free(ids);
    cr_assert_eq(nm_capindex_remove(x, 12), NM_OK);
    cr_assert_eq(nm_capindex_find(x, &f, &ids, &n), NM_OK);
    cr_assert_eq(n, 0);
    cr_assert_null(ids);
    cr_assert_eq(nm_capindex_remove(x, 12), NM_ENOTFOUND);
    cr_assert_eq(nm_capindex_find(x, NULL, &ids, &n), NM_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[0], 3);
    cr_assert_eq(ids[1], 9);
    free(ids);
    nm_capset_free(a);
    nm_capset_free(b);
    /* unscoped queries include subnet-local sets; NM_SCOPE_ANY does not */
    nm_capset *local = set_of("{\"tags\":[\"scope:subnet-local\",\"gpu\"]}");
    cr_assert_eq(nm_capindex_put(x, 1, local, 1, 0), NM_OK);
    const char *g[] = {"gpu"};
    nm_capfilter fg = NM_CAPFILTER_INIT;
    fg.require_tags = g;
    fg.n_require_tags = 1;
    cr_assert_eq(nm_capindex_find(x, &fg, &ids, &n), NM_OK);
    cr_assert_eq(n, 1);
    free(ids);
    nm_scope_filter any = {NM_SCOPE_ANY, NULL, 0, NULL, NULL};
    cr_assert_eq(nm_capindex_find_scoped(x, &fg, &any, &ids, &n), NM_OK);
    cr_assert_eq(n, 0);
    nm_capset_free(local);
    nm_capset_free(c);
    nm_capindex_free(x);
}
