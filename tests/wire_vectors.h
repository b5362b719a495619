/* tests/wire_vectors.h - the wire tests' access to tests/vectors/wire-v1.json
 * (hex strings of known encodings, computed independently in Python). */
#ifndef NM_TEST_WIRE_VECTORS_H
#define NM_TEST_WIRE_VECTORS_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Decode a hex string into out (asserting it fits); returns the length. */
static size_t
unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t n = strlen(hex) / 2;
    cr_assert_leq(n, cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* The bytes of vector `name` from wire-v1.json. */
static size_t
vec(const char *name, uint8_t *out, size_t cap)
{
    json_error_t jerr;
    json_t *root =
        json_load_file(NM_TEST_VECTORS_DIR "/wire-v1.json", 0, &jerr);
    cr_assert_not_null(root, "wire-v1.json: %s", jerr.text);
    json_t *v = json_object_get(json_object_get(root, "vectors"), name);
    cr_assert(json_is_string(v), "no vector %s", name);
    size_t n = unhex(out, cap, json_string_value(v));
    json_decref(root);
    return n;
}

#endif
