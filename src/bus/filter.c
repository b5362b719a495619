/*
 * src/bus/filter.c - the poll/subscribe filter: JSON-path equality with
 * $and / $or / $not, as upstream's consumer/filter.rs.
 *
 *   {"path":"a.b","value":V}   the value at a.b equals V (JSON equality:
 *                              1 and 1.0 differ, as serde_json)
 *   {"$and":[F,...]}           all (an empty list is true)
 *   {"$or":[F,...]}            any (an empty list is false)
 *   {"$not":F}                 negation
 *
 * Path segments are object keys separated by '.'; on an array a segment
 * of decimal digits indexes it. A missing path never equals anything.
 */
#define _GNU_SOURCE
#include "bus/bus_impl.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define NMI_FILTER_MAX_DEPTH 64
#define NMI_FILTER_MAX_NODES 4096

enum { F_EQ, F_AND, F_OR, F_NOT };

typedef struct fnode {
    int kind;
    size_t nkids;
    struct fnode **kids;
    char **seg; /* F_EQ: path segments */
    size_t nseg;
    json_t *value;
} fnode;

struct nm_filter {
    fnode *root;
    json_t *spec; /* the parsed source, kept for cloning */
};

static void
fnode_free(fnode *n)
{
    if (!n) {
        return;
    }
    for (size_t i = 0; i < n->nkids; i++) {
        fnode_free(n->kids[i]);
    }
    free(n->kids);
    for (size_t i = 0; i < n->nseg; i++) {
        free(n->seg[i]);
    }
    free(n->seg);
    json_decref(n->value);
    free(n);
}

static int
split_path(const char *path, fnode *n)
{
    size_t len = strlen(path);
    if (len == 0 || len > 1024) {
        return nmi_err(NM_EDECODE, "filter path must be 1..1024 bytes");
    }
    size_t cap = 1;
    for (const char *p = path; *p; p++) {
        cap += *p == '.';
    }
    n->seg = calloc(cap, sizeof(char *));
    if (!n->seg) {
        return nmi_err(NM_ENOMEM, "filter");
    }
    const char *start = path;
    for (;;) {
        const char *dot = strchr(start, '.');
        size_t sl = dot ? (size_t)(dot - start) : strlen(start);
        if (sl == 0) {
            return nmi_err(NM_EDECODE,
                           "filter path '%s' has an empty "
                           "segment",
                           path);
        }
        char *seg = strndup(start, sl);
        if (!seg) {
            return nmi_err(NM_ENOMEM, "filter");
        }
        n->seg[n->nseg++] = seg;
        if (!dot) {
            break;
        }
        start = dot + 1;
    }
    return NM_OK;
}

static int
compile(const json_t *j, int depth, size_t *budget, fnode **out)
{
    *out = NULL;
    if (depth > NMI_FILTER_MAX_DEPTH) {
        return nmi_err(NM_EDECODE, "filter nested deeper than %d",
                       NMI_FILTER_MAX_DEPTH);
    }
    if (*budget == 0) {
        return nmi_err(NM_EDECODE, "filter has more than %d nodes",
                       NMI_FILTER_MAX_NODES);
    }
    (*budget)--;
    if (!json_is_object(j)) {
        return nmi_err(NM_EDECODE, "a filter must be a JSON object");
    }
    fnode *n = calloc(1, sizeof(*n));
    if (!n) {
        return nmi_err(NM_ENOMEM, "filter");
    }
    int rc = NM_OK;
    json_t *v;
    size_t nkeys = json_object_size(j);
    if ((v = json_object_get(j, "$and")) || (v = json_object_get(j, "$or"))) {
        n->kind = json_object_get(j, "$and") ? F_AND : F_OR;
        if (nkeys != 1 || !json_is_array(v)) {
            rc = nmi_err(NM_EDECODE, "$and/$or take one array and nothing "
                                     "else");
            goto fail;
        }
        n->nkids = 0;
        n->kids = calloc(json_array_size(v) + 1, sizeof(fnode *));
        if (!n->kids) {
            rc = nmi_err(NM_ENOMEM, "filter");
            goto fail;
        }
        for (size_t i = 0; i < json_array_size(v); i++) {
            rc = compile(json_array_get(v, i), depth + 1, budget,
                         &n->kids[n->nkids]);
            if (rc) {
                goto fail;
            }
            n->nkids++;
        }
    } else if ((v = json_object_get(j, "$not"))) {
        n->kind = F_NOT;
        if (nkeys != 1) {
            rc = nmi_err(NM_EDECODE, "$not takes one filter and nothing "
                                     "else");
            goto fail;
        }
        n->kids = calloc(1, sizeof(fnode *));
        if (!n->kids) {
            rc = nmi_err(NM_ENOMEM, "filter");
            goto fail;
        }
        rc = compile(v, depth + 1, budget, &n->kids[0]);
        if (rc) {
            goto fail;
        }
        n->nkids = 1;
    } else {
        n->kind = F_EQ;
        json_t *path = json_object_get(j, "path");
        json_t *value = json_object_get(j, "value");
        if (nkeys != 2 || !json_is_string(path) || !value) {
            rc = nmi_err(NM_EDECODE,
                         "expected {\"path\":\"a.b\",\"value\":...}, "
                         "$and, $or or $not");
            goto fail;
        }
        rc = split_path(json_string_value(path), n);
        if (rc) {
            goto fail;
        }
        n->value = json_incref(value);
    }
    *out = n;
    return NM_OK;
fail:
    fnode_free(n);
    return rc;
}

static int
filter_from_json(json_t *spec, nm_filter **out)
{
    size_t budget = NMI_FILTER_MAX_NODES;
    fnode *root;
    int rc = compile(spec, 0, &budget, &root);
    if (rc) {
        return rc;
    }
    nm_filter *f = malloc(sizeof(*f));
    if (!f) {
        fnode_free(root);
        return nmi_err(NM_ENOMEM, "filter");
    }
    f->root = root;
    f->spec = json_incref(spec);
    *out = f;
    return NM_OK;
}

int
nm_filter_parse(const char *json, nm_filter **out)
{
    if (!json || !out) {
        return nmi_err(NM_EINVAL, "json and out must not be NULL");
    }
    *out = NULL;
    json_error_t jerr;
    json_t *spec = json_loads(json, 0, &jerr);
    if (!spec) {
        return nmi_err(NM_EDECODE, "filter is not JSON: %s", jerr.text);
    }
    int rc = filter_from_json(spec, out);
    json_decref(spec);
    return rc;
}

void
nm_filter_free(nm_filter *f)
{
    if (f) {
        fnode_free(f->root);
        json_decref(f->spec);
        free(f);
    }
}

nm_filter *
nmi_filter_clone(const nm_filter *f)
{
    nm_filter *c = NULL;
    if (f && filter_from_json(f->spec, &c) != NM_OK) {
        return NULL;
    }
    return c;
}

static const json_t *
lookup(const json_t *doc, char **seg, size_t nseg)
{
    for (size_t i = 0; i < nseg && doc; i++) {
        if (json_is_object(doc)) {
            doc = json_object_get(doc, seg[i]);
        } else if (json_is_array(doc)) {
            char *end;
            unsigned long idx = strtoul(seg[i], &end, 10);
            if (*end || seg[i][0] < '0' || seg[i][0] > '9') {
                return NULL;
            }
            doc = json_array_get(doc, idx);
        } else {
            return NULL;
        }
    }
    return doc;
}

static bool
eval(const fnode *n, const json_t *doc)
{
    switch (n->kind) {
    case F_EQ: {
        const json_t *v = lookup(doc, n->seg, n->nseg);
        return v && json_equal((json_t *)v, n->value);
    }
    case F_AND:
        for (size_t i = 0; i < n->nkids; i++) {
            if (!eval(n->kids[i], doc)) {
                return false;
            }
        }
        return true;
    case F_OR:
        for (size_t i = 0; i < n->nkids; i++) {
            if (eval(n->kids[i], doc)) {
                return true;
            }
        }
        return false;
    case F_NOT:
        return !eval(n->kids[0], doc);
    }
    return false;
}

bool
nmi_filter_match_json(const nm_filter *f, const json_t *doc)
{
    return !f || eval(f->root, doc);
}

bool
nm_filter_match(const nm_filter *f, const void *data, size_t len)
{
    if (!f) {
        return true;
    }
    if (!data) {
        return false;
    }
    json_t *doc = json_loadb(data, len, JSON_DECODE_ANY, NULL);
    if (!doc) {
        return false;
    }
    bool m = eval(f->root, doc);
    json_decref(doc);
    return m;
}
