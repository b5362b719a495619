/*
 * src/core/json_scan.h - a validating JSON scanner that builds nothing.
 *
 * Used where netmesh must know whether bytes are exactly one JSON value
 * (RFC 8259, UTF-8 checked), or where a value starts and ends inside a
 * larger document, without the cost of building a tree. Bounds-checked,
 * nesting limited to NMI_JSON_MAX_DEPTH, never reads past `end`.
 */
#ifndef NMI_JSON_SCAN_H
#define NMI_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NMI_JSON_MAX_DEPTH 128

/* Skip whitespace. */
const uint8_t *nmi_json_ws(const uint8_t *p, const uint8_t *end);

/* Scan one JSON value starting at p (no leading whitespace). Returns the
 * first byte after it, or NULL if it is not a valid value. */
const uint8_t *nmi_json_value(const uint8_t *p, const uint8_t *end);

/* Scan one JSON string starting at p ('"'). Returns the byte after the
 * closing quote, or NULL. */
const uint8_t *nmi_json_string(const uint8_t *p, const uint8_t *end);

/* True when [p, p+len) is exactly one JSON value with optional
 * surrounding whitespace. */
bool nmi_json_valid(const void *p, size_t len);

#endif
