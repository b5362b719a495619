/* src/behavior/capset.c - CapabilitySet: tags + metadata, the JSON form,
 * the builders and the typed projections (behavior/capability.rs,
 * behavior/tag_codec.rs). */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "behavior/caps_impl.h"
#include "core/core.h"

/* ================================================================== basics */

int
nm_capset_new(nm_capset **out)
{
    if (out == NULL) {
        return nmi_err(NM_EINVAL, "out must be non-NULL");
    }
    nm_capset *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory allocating a capability set");
    }
    *out = s;
    return NM_OK;
}

void
nm_capset_free(nm_capset *set)
{
    if (set == NULL) {
        return;
    }
    for (size_t i = 0; i < set->ntags; i++) {
        free(set->tags[i].wire);
    }
    for (size_t i = 0; i < set->nmeta; i++) {
        free(set->meta[i].key);
        free(set->meta[i].value);
    }
    free(set->tags);
    free(set->meta);
    free(set);
}

static char *
dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

int
nm_capset_clone(const nm_capset *set, nm_capset **out)
{
    if (set == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "set and out must be non-NULL");
    }
    nm_capset *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory cloning a capability set");
    }
    if (set->ntags) {
        c->tags = malloc(set->ntags * sizeof(nmi_tag));
        if (c->tags == NULL) {
            goto oom;
        }
        c->tcap = set->ntags;
        for (size_t i = 0; i < set->ntags; i++) {
            c->tags[i] = set->tags[i];
            c->tags[i].wire = dupn(set->tags[i].wire, set->tags[i].len);
            if (c->tags[i].wire == NULL) {
                goto oom;
            }
            c->ntags++;
        }
    }
    if (set->nmeta) {
        c->meta = calloc(set->nmeta, sizeof(nmi_meta));
        if (c->meta == NULL) {
            goto oom;
        }
        c->mcap = set->nmeta;
        for (size_t i = 0; i < set->nmeta; i++) {
            c->meta[i].key = strdup(set->meta[i].key);
            c->meta[i].value = strdup(set->meta[i].value);
            c->nmeta++;
            if (!c->meta[i].key || !c->meta[i].value) {
                goto oom;
            }
        }
    }
    *out = c;
    return NM_OK;
oom:
    nm_capset_free(c);
    return nmi_err(NM_ENOMEM, "out of memory cloning a capability set");
}

/* Bytewise compare of (s, n) with a tag's wire. */
static int
cmp_wire(const char *s, size_t n, const nmi_tag *t)
{
    size_t m = n < t->len ? n : t->len;
    int c = memcmp(s, t->wire, m);
    if (c != 0) {
        return c;
    }
    return n < t->len ? -1 : n > t->len ? 1 : 0;
}

/* Index of the first tag >= (s, n). */
static size_t
lower_bound(const nm_capset *set, const char *s, size_t n)
{
    size_t lo = 0, hi = set->ntags;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cmp_wire(s, n, &set->tags[mid]) > 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

size_t
nmi_capset_lower_bound(const nm_capset *set, const char *s, size_t n)
{
    return lower_bound(set, s, n);
}

long
nmi_capset_find(const nm_capset *set, const char *s, size_t n)
{
    size_t i = lower_bound(set, s, n);
    if (i < set->ntags && cmp_wire(s, n, &set->tags[i]) == 0) {
        return (long)i;
    }
    return -1;
}

int
nmi_capset_insert(nm_capset *set, const char *s, size_t n)
{
    size_t i = lower_bound(set, s, n);
    if (i < set->ntags && cmp_wire(s, n, &set->tags[i]) == 0) {
        return NM_OK;
    }
    nmi_tag t;
    int rc = nmi_tag_parse_into(s, n, &t);
    if (rc != NM_OK) {
        return rc;
    }
    if (set->ntags == set->tcap) {
        size_t nc = set->tcap ? set->tcap * 2 : 8;
        nmi_tag *nt = realloc(set->tags, nc * sizeof(nmi_tag));
        if (nt == NULL) {
            return nmi_err(NM_ENOMEM, "out of memory adding a tag");
        }
        set->tags = nt;
        set->tcap = nc;
    }
    t.wire = dupn(s, n);
    if (t.wire == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory adding a tag");
    }
    memmove(&set->tags[i + 1], &set->tags[i],
            (set->ntags - i) * sizeof(nmi_tag));
    set->tags[i] = t;
    set->ntags++;
    return NM_OK;
}

static void
remove_at(nm_capset *set, size_t i)
{
    free(set->tags[i].wire);
    memmove(&set->tags[i], &set->tags[i + 1],
            (set->ntags - i - 1) * sizeof(nmi_tag));
    set->ntags--;
}

int
nm_capset_add_tag(nm_capset *set, const char *tag)
{
    if (set == NULL || tag == NULL) {
        return nmi_err(NM_EINVAL, "set and tag must be non-NULL");
    }
    nm_tag_view v;
    if (tag[0] == '\0' || nm_tag_parse_user(tag, &v) != NM_OK) {
        /* Upstream drops an empty or reserved tag with a warning. */
        nmi_err(NM_EINVAL, "tag '%s' dropped: %s", tag,
                tag[0] ? "reserved prefix" : "empty");
        return NM_CAPS_DROPPED;
    }
    return nmi_capset_insert(set, tag, strlen(tag));
}

int
nm_capset_insert_tag(nm_capset *set, const char *tag)
{
    if (set == NULL || tag == NULL) {
        return nmi_err(NM_EINVAL, "set and tag must be non-NULL");
    }
    return nmi_capset_insert(set, tag, strlen(tag));
}

int
nm_capset_remove_tag(nm_capset *set, const char *tag)
{
    if (set == NULL || tag == NULL) {
        return nmi_err(NM_EINVAL, "set and tag must be non-NULL");
    }
    long i = nmi_capset_find(set, tag, strlen(tag));
    if (i < 0) {
        return nmi_err(NM_ENOTFOUND, "tag '%s' is not in the set", tag);
    }
    remove_at(set, (size_t)i);
    return NM_OK;
}

bool
nm_capset_has_tag(const nm_capset *set, const char *tag)
{
    return set && tag && nmi_capset_find(set, tag, strlen(tag)) >= 0;
}

size_t
nm_capset_tag_count(const nm_capset *set)
{
    return set ? set->ntags : 0;
}

const char *
nm_capset_tag_at(const nm_capset *set, size_t i)
{
    return set && i < set->ntags ? set->tags[i].wire : NULL;
}

/* ------------------------------------------------------------ metadata */

static size_t
meta_lb(const nm_capset *set, const char *key)
{
    size_t lo = 0, hi = set->nmeta;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(set->meta[mid].key, key) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

const char *
nmi_capset_meta(const nm_capset *set, const char *key)
{
    size_t i = meta_lb(set, key);
    if (i < set->nmeta && strcmp(set->meta[i].key, key) == 0) {
        return set->meta[i].value;
    }
    return NULL;
}

int
nm_capset_set_metadata(nm_capset *set, const char *key, const char *value)
{
    if (set == NULL || key == NULL || value == NULL) {
        return nmi_err(NM_EINVAL, "set, key and value must be non-NULL");
    }
    size_t i = meta_lb(set, key);
    char *v = strdup(value);
    if (v == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory setting metadata");
    }
    if (i < set->nmeta && strcmp(set->meta[i].key, key) == 0) {
        free(set->meta[i].value);
        set->meta[i].value = v;
        return NM_OK;
    }
    char *k = strdup(key);
    if (k == NULL) {
        free(v);
        return nmi_err(NM_ENOMEM, "out of memory setting metadata");
    }
    if (set->nmeta == set->mcap) {
        size_t nc = set->mcap ? set->mcap * 2 : 4;
        nmi_meta *nm = realloc(set->meta, nc * sizeof(nmi_meta));
        if (nm == NULL) {
            free(k);
            free(v);
            return nmi_err(NM_ENOMEM, "out of memory setting metadata");
        }
        set->meta = nm;
        set->mcap = nc;
    }
    memmove(&set->meta[i + 1], &set->meta[i],
            (set->nmeta - i) * sizeof(nmi_meta));
    set->meta[i].key = k;
    set->meta[i].value = v;
    set->nmeta++;
    return NM_OK;
}

int
nm_capset_remove_metadata(nm_capset *set, const char *key)
{
    if (set == NULL || key == NULL) {
        return nmi_err(NM_EINVAL, "set and key must be non-NULL");
    }
    size_t i = meta_lb(set, key);
    if (i >= set->nmeta || strcmp(set->meta[i].key, key) != 0) {
        return nmi_err(NM_ENOTFOUND, "metadata key '%s' is not set", key);
    }
    free(set->meta[i].key);
    free(set->meta[i].value);
    memmove(&set->meta[i], &set->meta[i + 1],
            (set->nmeta - i - 1) * sizeof(nmi_meta));
    set->nmeta--;
    return NM_OK;
}

const char *
nm_capset_metadata(const nm_capset *set, const char *key)
{
    if (set == NULL || key == NULL) {
        return NULL;
    }
    return nmi_capset_meta(set, key);
}

size_t
nm_capset_metadata_count(const nm_capset *set)
{
    return set ? set->nmeta : 0;
}

int
nm_capset_metadata_at(const nm_capset *set, size_t i, const char **key,
                      const char **value)
{
    if (set == NULL || i >= set->nmeta) {
        return nmi_err(NM_EINVAL, "metadata index out of range");
    }
    if (key) {
        *key = set->meta[i].key;
    }
    if (value) {
        *value = set->meta[i].value;
    }
    return NM_OK;
}

/* ------------------------------------------------------------ reserved */

static int insert_fmt(nm_capset *set, const char *fmt, ...) NMI_PRINTF(2, 3);

static int
insert_fmt(nm_capset *set, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return nmi_err(NM_EINVAL, "bad tag format");
    }
    char *b = malloc((size_t)n + 1);
    if (b == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory building a tag");
    }
    va_start(ap, fmt);
    vsnprintf(b, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = nmi_capset_insert(set, b, (size_t)n);
    free(b);
    return rc;
}

int
nm_capset_set_tenant_scope(nm_capset *set, const char *tenant)
{
    if (set == NULL || tenant == NULL) {
        return nmi_err(NM_EINVAL, "set and tenant must be non-NULL");
    }
    return tenant[0] ? insert_fmt(set, "scope:tenant:%s", tenant) : NM_OK;
}

int
nm_capset_set_region_scope(nm_capset *set, const char *region)
{
    if (set == NULL || region == NULL) {
        return nmi_err(NM_EINVAL, "set and region must be non-NULL");
    }
    return region[0] ? insert_fmt(set, "scope:region:%s", region) : NM_OK;
}

int
nm_capset_set_subnet_local_scope(nm_capset *set)
{
    if (set == NULL) {
        return nmi_err(NM_EINVAL, "set must be non-NULL");
    }
    return nmi_capset_insert(set, "scope:subnet-local", 18);
}

int
nm_capset_add_causal(nm_capset *set, const char *hash)
{
    if (set == NULL || hash == NULL) {
        return nmi_err(NM_EINVAL, "set and hash must be non-NULL");
    }
    return hash[0] ? insert_fmt(set, "causal:%s", hash) : NM_OK;
}

int
nm_capset_add_causal_tip(nm_capset *set, const char *hash, uint64_t tip_seq)
{
    if (set == NULL || hash == NULL) {
        return nmi_err(NM_EINVAL, "set and hash must be non-NULL");
    }
    return hash[0] ? insert_fmt(set, "causal:%s:%" PRIu64, hash, tip_seq)
                   : NM_OK;
}

int
nm_capset_add_causal_range(nm_capset *set, const char *hash, uint64_t start,
                           uint64_t end)
{
    if (set == NULL || hash == NULL) {
        return nmi_err(NM_EINVAL, "set and hash must be non-NULL");
    }
    if (!hash[0] || start >= end) {
        return NM_OK;
    }
    return insert_fmt(set, "causal:%s[%" PRIu64 "..%" PRIu64 "]", hash, start,
                      end);
}

int
nm_capset_add_fork_of(nm_capset *set, const char *parent_hash)
{
    if (set == NULL || parent_hash == NULL) {
        return nmi_err(NM_EINVAL, "set and parent_hash must be non-NULL");
    }
    return parent_hash[0] ? insert_fmt(set, "fork-of:%s", parent_hash) : NM_OK;
}

int
nm_capset_add_heat(nm_capset *set, const char *hash, double r)
{
    if (set == NULL || hash == NULL) {
        return nmi_err(NM_EINVAL, "set and hash must be non-NULL");
    }
    if (!hash[0] || !isfinite(r)) {
        return NM_OK;
    }
    if (r < 0) {
        r = 0;
    }
    if (r > 1) {
        r = 1;
    }
    char num[32];
    snprintf(num, sizeof(num), "%.2f", r);
    for (char *c = num; *c; c++) {
        if (*c != '-' && (*c < '0' || *c > '9')) {
            *c = '.'; /* the locale's decimal point, whatever it is */
        }
    }
    return insert_fmt(set, "heat:%s=%s", hash, num);
}

/* ================================================================== JSON */

int
nm_capset_to_json(const nm_capset *set, char **out, size_t *len)
{
    if (set == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "set and out must be non-NULL");
    }
    nmi_sb sb;
    nmi_sb_init(&sb);
    nmi_sb_puts(&sb, "{\"tags\":[");
    for (size_t i = 0; i < set->ntags; i++) {
        if (i) {
            nmi_sb_putc(&sb, ',');
        }
        nmi_sb_json_str(&sb, set->tags[i].wire, set->tags[i].len);
    }
    nmi_sb_puts(&sb, "],\"metadata\":{");
    for (size_t i = 0; i < set->nmeta; i++) {
        if (i) {
            nmi_sb_putc(&sb, ',');
        }
        nmi_sb_json_str(&sb, set->meta[i].key, strlen(set->meta[i].key));
        nmi_sb_putc(&sb, ':');
        nmi_sb_json_str(&sb, set->meta[i].value, strlen(set->meta[i].value));
    }
    nmi_sb_puts(&sb, "}}");
    return nmi_sb_take(&sb, out, len);
}

static int
cmp_tag_qsort(const void *a, const void *b)
{
    const nmi_tag *x = a, *y = b;
    return cmp_wire(x->wire, x->len, y);
}

struct ordmeta {
    nmi_meta m;
    size_t ord;
};

static int
cmp_ordmeta(const void *a, const void *b)
{
    const struct ordmeta *x = a, *y = b;
    int c = strcmp(x->m.key, y->m.key);
    if (c != 0) {
        return c;
    }
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

int
nmi_capset_from_bj(const nmi_bj *v, const char *what, nm_capset **out)
{
    if (v->type != NMI_BJ_OBJ) {
        return nmi_err(NM_EDECODE, "%s must be a JSON object", what);
    }
    const char *dup = nmi_bj_dup_key(v);
    if (dup) {
        return nmi_err(NM_EDECODE, "%s: duplicate field '%s'", what, dup);
    }
    const nmi_bj *tags = nmi_bj_get(v, "tags");
    const nmi_bj *meta = nmi_bj_get(v, "metadata");
    if (tags && tags->type != NMI_BJ_ARR) {
        return nmi_err(NM_EDECODE, "%s: 'tags' must be an array of strings",
                       what);
    }
    if (meta && meta->type != NMI_BJ_OBJ) {
        return nmi_err(NM_EDECODE,
                       "%s: 'metadata' must be an object of strings", what);
    }
    nm_capset *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory decoding a capability set");
    }
    int rc = NM_OK;
    size_t nt = tags ? tags->v.arr.n : 0;
    if (nt) {
        s->tags = malloc(nt * sizeof(nmi_tag));
        if (s->tags == NULL) {
            rc = nmi_err(NM_ENOMEM, "out of memory decoding tags");
            goto fail;
        }
        s->tcap = nt;
        for (size_t i = 0; i < nt; i++) {
            const nmi_bj *e = &tags->v.arr.items[i];
            const char *str;
            if ((rc = nmi_bj_as_str(e, "tags[]", &str)) != NM_OK) {
                goto fail;
            }
            nmi_tag t;
            if (nmi_tag_parse_into(str, e->v.str.len, &t) != NM_OK) {
                rc = nmi_err(NM_EDECODE,
                             "%s: capability tag must be non-empty", what);
                goto fail;
            }
            t.wire = dupn(str, e->v.str.len);
            if (t.wire == NULL) {
                rc = nmi_err(NM_ENOMEM, "out of memory decoding tags");
                goto fail;
            }
            s->tags[s->ntags++] = t;
        }
        qsort(s->tags, s->ntags, sizeof(nmi_tag), cmp_tag_qsort);
        size_t w = 0;
        for (size_t i = 0; i < s->ntags; i++) {
            if (w > 0 && cmp_wire(s->tags[i].wire, s->tags[i].len,
                                  &s->tags[w - 1]) == 0) {
                free(s->tags[i].wire);
                continue;
            }
            s->tags[w++] = s->tags[i];
        }
        s->ntags = w;
    }
    size_t nm = meta ? meta->v.obj.n : 0;
    if (nm) {
        s->meta = calloc(nm, sizeof(nmi_meta));
        if (s->meta == NULL) {
            rc = nmi_err(NM_ENOMEM, "out of memory decoding metadata");
            goto fail;
        }
        s->mcap = nm;
        for (size_t i = 0; i < nm; i++) {
            const nmi_bj_member *m = &meta->v.obj.m[i];
            const char *val;
            if (m->key_has_nul) {
                rc = nmi_err(NM_EDECODE,
                             "%s: metadata key contains U+0000 (not "
                             "supported)",
                             what);
                goto fail;
            }
            if ((rc = nmi_bj_as_str(&m->val, "metadata value", &val)) !=
                NM_OK) {
                goto fail;
            }
            s->meta[s->nmeta].key = dupn(m->key, m->klen);
            s->meta[s->nmeta].value = dupn(val, m->val.v.str.len);
            s->nmeta++;
            if (!s->meta[s->nmeta - 1].key || !s->meta[s->nmeta - 1].value) {
                rc = nmi_err(NM_ENOMEM, "out of memory decoding metadata");
                goto fail;
            }
        }
        /* Stable sort, then keep the last of equal keys (a map insert
         * overwrites). */
        struct ordmeta *om = malloc(s->nmeta * sizeof(*om));
        if (om == NULL) {
            rc = nmi_err(NM_ENOMEM, "out of memory decoding metadata");
            goto fail;
        }
        for (size_t i = 0; i < s->nmeta; i++) {
            om[i].m = s->meta[i];
            om[i].ord = i;
        }
        qsort(om, s->nmeta, sizeof(*om), cmp_ordmeta);
        for (size_t i = 0; i < s->nmeta; i++) {
            s->meta[i] = om[i].m;
        }
        free(om);
        size_t w = 0;
        for (size_t i = 0; i < s->nmeta; i++) {
            if (w > 0 && strcmp(s->meta[i].key, s->meta[w - 1].key) == 0) {
                free(s->meta[w - 1].key);
                free(s->meta[w - 1].value);
                s->meta[w - 1] = s->meta[i];
                continue;
            }
            s->meta[w++] = s->meta[i];
        }
        s->nmeta = w;
    }
    *out = s;
    return NM_OK;
fail:
    nm_capset_free(s);
    return rc;
}

int
nm_capset_from_json(const char *json, size_t len, nm_capset **out)
{
    if (json == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "json and out must be non-NULL");
    }
    nmi_arena a;
    nmi_arena_init(&a);
    nmi_bj *root;
    int rc = nmi_bj_parse(&a, json, len, &root);
    if (rc == NM_OK) {
        rc = nmi_capset_from_bj(root, "capability set", out);
    }
    nmi_arena_free(&a);
    return rc;
}

int
nm_capset_from_bytes(const void *data, size_t len, nm_capset **out)
{
    if (data == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "data and out must be non-NULL");
    }
    const unsigned char *p = data;
    if (len > 0 && p[0] == '{') {
        return nm_capset_from_json(data, len, out);
    }
    if (len > 0 && p[0] == 0x01) {
        return nmi_err(NM_ENOTSUP,
                       "postcard-encoded capability sets are not supported");
    }
    return nmi_err(NM_EDECODE,
                   "capability set bytes must start with '{' (JSON) or 0x01 "
                   "(postcard)");
}

/* ================================================================== typed */

static const char *const vendor_names[] = {"unknown", "nvidia", "amd",
                                           "intel",   "apple",  "qualcomm"};

const char *
nm_gpu_vendor_name(nm_gpu_vendor v)
{
    if ((unsigned)v >= NMI_ARRAY_LEN(vendor_names)) {
        return "unknown";
    }
    return vendor_names[v];
}

static const char *const modality_names[] = {
    "text", "image", "audio", "video", "code", "embedding", "tool_use"};

uint32_t
nmi_modalities_from_csv(const char *csv)
{
    uint32_t bits = 0;
    const char *p = csv;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        for (size_t i = 0; i < NMI_ARRAY_LEN(modality_names); i++) {
            if (strlen(modality_names[i]) == n &&
                memcmp(p, modality_names[i], n) == 0) {
                bits |= 1u << i;
            }
        }
        p = e ? e + 1 : NULL;
    }
    return bits;
}

/* Remove axis tags of `axis` whose key starts with `prefix` (NULL = all),
 * keeping keys that start with one of `keep` (NULL-terminated list). */
static void
remove_axis(nm_capset *set, nm_axis axis, const char *prefix,
            const char *const *keep)
{
    size_t w = 0;
    for (size_t i = 0; i < set->ntags; i++) {
        nmi_tag *t = &set->tags[i];
        bool drop = false;
        if ((t->kind == NM_TAG_AXIS_PRESENT || t->kind == NM_TAG_AXIS_VALUE) &&
            t->axis == (uint8_t)axis) {
            const char *k = nmi_tag_key(t);
            size_t kl = t->key_len;
            drop = true;
            if (prefix) {
                size_t pl = strlen(prefix);
                drop = kl >= pl && memcmp(k, prefix, pl) == 0;
            }
            for (size_t j = 0; drop && keep && keep[j]; j++) {
                size_t pl = strlen(keep[j]);
                if (kl >= pl && memcmp(k, keep[j], pl) == 0) {
                    drop = false;
                }
            }
        }
        if (drop) {
            free(t->wire);
        } else {
            set->tags[w++] = *t;
        }
    }
    set->ntags = w;
}

#define PUT_U(set, name, v)                                                   \
    do {                                                                      \
        if ((v) != 0 && (rc = insert_fmt((set), "%s=%" PRIu64, (name),        \
                                         (uint64_t)(v))) != NM_OK) {          \
            return rc;                                                        \
        }                                                                     \
    } while (0)

#define PUT_S(set, name, v)                                                   \
    do {                                                                      \
        if ((v) != NULL && (v)[0] != '\0' &&                                  \
            (rc = insert_fmt((set), "%s=%s", (name), (v))) != NM_OK) {        \
            return rc;                                                        \
        }                                                                     \
    } while (0)

int
nm_capset_set_hardware(nm_capset *set, const nm_hardware *hw)
{
    if (set == NULL || hw == NULL) {
        return nmi_err(NM_EINVAL, "set and hw must be non-NULL");
    }
    static const char *const keep[] = {"limits.", NULL};
    remove_axis(set, NM_AXIS_HARDWARE, NULL, keep);
    int rc;
    PUT_U(set, "hardware.cpu_cores", hw->cpu_cores);
    PUT_U(set, "hardware.cpu_threads", hw->cpu_threads);
    PUT_U(set, "hardware.memory_gb", hw->memory_gb);
    if (hw->has_gpu) {
        if ((rc = nmi_capset_insert(set, "hardware.gpu", 12)) != NM_OK) {
            return rc;
        }
        if (hw->gpu.vendor != NM_GPU_UNKNOWN &&
            (unsigned)hw->gpu.vendor < NMI_ARRAY_LEN(vendor_names)) {
            PUT_S(set, "hardware.gpu.vendor", vendor_names[hw->gpu.vendor]);
        }
        PUT_S(set, "hardware.gpu.model", hw->gpu.model);
        PUT_U(set, "hardware.gpu.vram_gb", hw->gpu.vram_gb);
        PUT_U(set, "hardware.gpu.compute_units", hw->gpu.compute_units);
        PUT_U(set, "hardware.gpu.tensor_cores", hw->gpu.tensor_cores);
        PUT_U(set, "hardware.gpu.fp16_tflops_x10", hw->gpu.fp16_tflops_x10);
    }
    PUT_U(set, "hardware.storage_gb", hw->storage_gb);
    PUT_U(set, "hardware.network_gbps", hw->network_gbps);
    return NM_OK;
}

int
nm_capset_set_limits(nm_capset *set, const nm_resource_limits *l)
{
    if (set == NULL || l == NULL) {
        return nmi_err(NM_EINVAL, "set and limits must be non-NULL");
    }
    remove_axis(set, NM_AXIS_HARDWARE, "limits.", NULL);
    int rc;
    PUT_U(set, "hardware.limits.max_concurrent_requests",
          l->max_concurrent_requests);
    PUT_U(set, "hardware.limits.max_tokens_per_request",
          l->max_tokens_per_request);
    PUT_U(set, "hardware.limits.rate_limit_rpm", l->rate_limit_rpm);
    PUT_U(set, "hardware.limits.max_batch_size", l->max_batch_size);
    PUT_U(set, "hardware.limits.max_input_bytes", l->max_input_bytes);
    PUT_U(set, "hardware.limits.max_output_bytes", l->max_output_bytes);
    return NM_OK;
}

static bool
name_ok(const char *n)
{
    return n && n[0] && !strpbrk(n, "=:.");
}

static int
put_named(nm_capset *set, const char *what, const nm_named_version *v,
          size_t n)
{
    int rc;
    for (size_t i = 0; i < n; i++) {
        if (!name_ok(v[i].name) || v[i].version == NULL ||
            v[i].version[0] == '\0') {
            continue;
        }
        if ((rc = insert_fmt(set, "software.%s.%s=%s", what, v[i].name,
                             v[i].version)) != NM_OK) {
            return rc;
        }
    }
    return NM_OK;
}

int
nm_capset_set_software(nm_capset *set, const nm_software *sw)
{
    if (set == NULL || sw == NULL) {
        return nmi_err(NM_EINVAL, "set and sw must be non-NULL");
    }
    if ((sw->n_runtimes && !sw->runtimes) ||
        (sw->n_frameworks && !sw->frameworks) ||
        (sw->n_drivers && !sw->drivers)) {
        return nmi_err(NM_EINVAL, "a non-empty list must be non-NULL");
    }
    static const char *const keep[] = {"model.", "tool.", NULL};
    remove_axis(set, NM_AXIS_SOFTWARE, NULL, keep);
    int rc;
    PUT_S(set, "software.os", sw->os);
    PUT_S(set, "software.os_version", sw->os_version);
    if ((rc = put_named(set, "runtime", sw->runtimes, sw->n_runtimes)) !=
        NM_OK) {
        return rc;
    }
    if ((rc = put_named(set, "framework", sw->frameworks, sw->n_frameworks)) !=
        NM_OK) {
        return rc;
    }
    PUT_S(set, "software.cuda_version", sw->cuda_version);
    return put_named(set, "driver", sw->drivers, sw->n_drivers);
}

static int
put_model(nm_capset *set, size_t i, const nm_model *m)
{
    int rc;
    char p[64];
    snprintf(p, sizeof(p), "software.model.%zu.", i);
#define MS(field, v)                                                          \
    do {                                                                      \
        if ((v) && (v)[0] &&                                                  \
            (rc = insert_fmt(set, "%s" field "=%s", p, (v))) != NM_OK) {      \
            return rc;                                                        \
        }                                                                     \
    } while (0)
#define MU(field, v)                                                          \
    do {                                                                      \
        if ((v) != 0 && (rc = insert_fmt(set, "%s" field "=%" PRIu64, p,      \
                                         (uint64_t)(v))) != NM_OK) {          \
            return rc;                                                        \
        }                                                                     \
    } while (0)
    MS("id", m->id);
    MS("family", m->family);
    MU("parameters_b_x10", m->parameters_b_x10);
    MU("context_length", m->context_length);
    MS("quantization", m->quantization);
    if (m->modalities) {
        char csv[128] = "";
        for (size_t k = 0; k < NMI_ARRAY_LEN(modality_names); k++) {
            if (m->modalities & (1u << k)) {
                if (csv[0]) {
                    strcat(csv, ",");
                }
                strcat(csv, modality_names[k]);
            }
        }
        const char *csvp = csv;
        MS("modalities", csvp);
    }
    MU("tokens_per_sec", m->tokens_per_sec);
    if (m->loaded && (rc = insert_fmt(set, "%sloaded=true", p)) != NM_OK) {
        return rc;
    }
#undef MS
#undef MU
    return NM_OK;
}

int
nm_capset_set_models(nm_capset *set, const nm_model *models, size_t n)
{
    if (set == NULL || (n && models == NULL)) {
        return nmi_err(NM_EINVAL, "set (and models when n > 0) non-NULL");
    }
    remove_axis(set, NM_AXIS_SOFTWARE, "model.", NULL);
    for (size_t i = 0; i < n; i++) {
        int rc = put_model(set, i, &models[i]);
        if (rc != NM_OK) {
            return rc;
        }
    }
    return NM_OK;
}

int
nm_capset_add_model(nm_capset *set, const nm_model *model)
{
    if (set == NULL || model == NULL) {
        return nmi_err(NM_EINVAL, "set and model must be non-NULL");
    }
    return put_model(set, nm_capset_model_count(set), model);
}

int
nm_capset_set_tools(nm_capset *set, const nm_tool *tools, size_t n)
{
    if (set == NULL || (n && tools == NULL)) {
        return nmi_err(NM_EINVAL, "set (and tools when n > 0) non-NULL");
    }
    remove_axis(set, NM_AXIS_SOFTWARE, "tool.", NULL);
    int rc;
    for (size_t i = 0; i < n; i++) {
        const nm_tool *t = &tools[i];
        char p[64];
        snprintf(p, sizeof(p), "software.tool.%zu.", i);
        if (t->tool_id && t->tool_id[0] &&
            (rc = insert_fmt(set, "%stool_id=%s", p, t->tool_id)) != NM_OK) {
            return rc;
        }
        if (t->name && t->name[0] &&
            (rc = insert_fmt(set, "%sname=%s", p, t->name)) != NM_OK) {
            return rc;
        }
        if (t->version && t->version[0] &&
            (rc = insert_fmt(set, "%sversion=%s", p, t->version)) != NM_OK) {
            return rc;
        }
        if (t->n_requires && t->requires) {
            nmi_sb sb;
            nmi_sb_init(&sb);
            for (size_t k = 0; k < t->n_requires; k++) {
                if (k) {
                    nmi_sb_putc(&sb, ',');
                }
                nmi_sb_puts(&sb, t->requires[k] ? t->requires[k] : "");
            }
            char *csv;
            if ((rc = nmi_sb_take(&sb, &csv, NULL)) != NM_OK) {
                return rc;
            }
            rc = csv[0] ? insert_fmt(set, "%srequires=%s", p, csv) : NM_OK;
            free(csv);
            if (rc != NM_OK) {
                return rc;
            }
        }
        if (t->estimated_time_ms &&
            (rc = insert_fmt(set, "%sestimated_time_ms=%" PRIu64, p,
                             t->estimated_time_ms)) != NM_OK) {
            return rc;
        }
        if ((rc = insert_fmt(set, "%sstateless=%s", p,
                             t->stateless ? "true" : "false")) != NM_OK) {
            return rc;
        }
        if (t->tool_id && t->tool_id[0]) {
            char k[512];
            if (t->input_schema) {
                snprintf(k, sizeof(k), "tool::%s::input_schema", t->tool_id);
                if ((rc = nm_capset_set_metadata(set, k, t->input_schema)) !=
                    NM_OK) {
                    return rc;
                }
            }
            if (t->output_schema) {
                snprintf(k, sizeof(k), "tool::%s::output_schema", t->tool_id);
                if ((rc = nm_capset_set_metadata(set, k, t->output_schema)) !=
                    NM_OK) {
                    return rc;
                }
            }
        }
    }
    return NM_OK;
}

/* ------------------------------------------------------------ decoders */

static bool
is_val(const nmi_tag *t, nm_axis axis, const char *key)
{
    return t->kind == NM_TAG_AXIS_VALUE &&
           nmi_tag_has_key(t, axis, key, strlen(key));
}

static uint64_t
val_u64(const nmi_tag *t)
{
    uint64_t v;
    return nmi_parse_u64(nmi_tag_val(t), t->val_len, &v) ? v : 0;
}

static uint32_t
val_u32(const nmi_tag *t)
{
    uint32_t v;
    return nmi_parse_u32(nmi_tag_val(t), t->val_len, &v) ? v : 0;
}

int
nm_capset_hardware(const nm_capset *set, nm_hardware *hw)
{
    if (set == NULL || hw == NULL) {
        return nmi_err(NM_EINVAL, "set and out must be non-NULL");
    }
    memset(hw, 0, sizeof(*hw));
    for (size_t i = 0; i < set->ntags; i++) {
        const nmi_tag *t = &set->tags[i];
        if (t->axis != NM_AXIS_HARDWARE) {
            continue;
        }
        if (t->kind == NM_TAG_AXIS_PRESENT &&
            nmi_tag_has_key(t, NM_AXIS_HARDWARE, "gpu", 3)) {
            hw->has_gpu = true;
            continue;
        }
        if (t->kind != NM_TAG_AXIS_VALUE) {
            continue;
        }
        if (is_val(t, NM_AXIS_HARDWARE, "cpu_cores")) {
            hw->cpu_cores = val_u64(t);
        } else if (is_val(t, NM_AXIS_HARDWARE, "cpu_threads")) {
            hw->cpu_threads = val_u64(t);
        } else if (is_val(t, NM_AXIS_HARDWARE, "memory_gb")) {
            hw->memory_gb = val_u32(t);
        } else if (is_val(t, NM_AXIS_HARDWARE, "storage_gb")) {
            hw->storage_gb = val_u64(t);
        } else if (is_val(t, NM_AXIS_HARDWARE, "network_gbps")) {
            hw->network_gbps = val_u64(t);
        } else if (is_val(t, NM_AXIS_HARDWARE, "gpu.vendor")) {
            hw->gpu.vendor = NM_GPU_UNKNOWN;
            for (size_t k = 1; k < NMI_ARRAY_LEN(vendor_names); k++) {
                if (strcmp(nmi_tag_val(t), vendor_names[k]) == 0) {
                    hw->gpu.vendor = (nm_gpu_vendor)k;
                }
            }
            hw->has_gpu = true;
        } else if (is_val(t, NM_AXIS_HARDWARE, "gpu.model")) {
            hw->gpu.model = nmi_tag_val(t);
            hw->has_gpu = true;
        } else if (is_val(t, NM_AXIS_HARDWARE, "gpu.vram_gb")) {
            hw->gpu.vram_gb = val_u32(t);
            hw->has_gpu = true;
        } else if (is_val(t, NM_AXIS_HARDWARE, "gpu.compute_units")) {
            hw->gpu.compute_units = val_u64(t);
            hw->has_gpu = true;
        } else if (is_val(t, NM_AXIS_HARDWARE, "gpu.tensor_cores")) {
            hw->gpu.tensor_cores = val_u64(t);
            hw->has_gpu = true;
        } else if (is_val(t, NM_AXIS_HARDWARE, "gpu.fp16_tflops_x10")) {
            hw->gpu.fp16_tflops_x10 = val_u64(t);
            hw->has_gpu = true;
        }
    }
    return NM_OK;
}

void
nmi_caps_facts_of(const nm_capset *set, nmi_caps_facts *f)
{
    memset(f, 0, sizeof(*f));
    bool vram_seen = false;
    for (size_t i = 0; i < set->ntags; i++) {
        const nmi_tag *t = &set->tags[i];
        if (t->axis != NM_AXIS_HARDWARE ||
            (t->kind != NM_TAG_AXIS_VALUE && t->kind != NM_TAG_AXIS_PRESENT)) {
            continue;
        }
        if (t->kind == NM_TAG_AXIS_PRESENT) {
            if (t->len == 12 && memcmp(t->wire, "hardware.gpu", 12) == 0) {
                f->gpu_present = true;
            }
            continue;
        }
        if (is_val(t, NM_AXIS_HARDWARE, "memory_gb")) {
            if (!f->has_memory_first) {
                f->has_memory_first = true;
                f->memory_first = val_u32(t);
            }
            f->memory_decoded = val_u32(t);
        } else if (is_val(t, NM_AXIS_HARDWARE, "gpu.vram_gb")) {
            if (!vram_seen) {
                vram_seen = true;
                f->vram_first = val_u32(t);
            }
            f->vram_decoded = val_u32(t);
        }
    }
}

static int
cmp_row(const void *a, const void *b)
{
    const nmi_model_row *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

int
nmi_caps_models(const nm_capset *set, nmi_model_row **rows, size_t *n)
{
    nmi_model_row *r = NULL;
    size_t nr = 0, cap = 0;
    for (size_t i = 0; i < set->ntags; i++) {
        const nmi_tag *t = &set->tags[i];
        if (t->kind != NM_TAG_AXIS_VALUE || t->axis != NM_AXIS_SOFTWARE ||
            t->key_len < 7 || memcmp(nmi_tag_key(t), "model.", 6) != 0) {
            continue;
        }
        const char *k = nmi_tag_key(t) + 6;
        size_t kl = t->key_len - 6;
        const char *dot = memchr(k, '.', kl);
        uint32_t idx;
        if (dot == NULL || !nmi_parse_u32(k, (size_t)(dot - k), &idx)) {
            continue;
        }
        const char *sub = dot + 1;
        size_t sl = kl - (size_t)(dot - k) - 1;
        nmi_model_row *row = NULL;
        for (size_t j = 0; j < nr; j++) {
            if (r[j].index == idx) {
                row = &r[j];
            }
        }
#define SUB(lit) (sl == sizeof(lit) - 1 && memcmp(sub, lit, sl) == 0)
        bool known = SUB("id") || SUB("family") || SUB("parameters_b_x10") ||
                     SUB("context_length") || SUB("quantization") ||
                     SUB("modalities") || SUB("tokens_per_sec") ||
                     SUB("loaded");
        if (!known) {
            continue;
        }
        if (row == NULL) {
            if (nr == cap) {
                size_t nc = cap ? cap * 2 : 4;
                nmi_model_row *nrw = realloc(r, nc * sizeof(*r));
                if (nrw == NULL) {
                    free(r);
                    return nmi_err(NM_ENOMEM, "out of memory decoding models");
                }
                r = nrw;
                cap = nc;
            }
            row = &r[nr++];
            memset(row, 0, sizeof(*row));
            row->index = idx;
        }
        const char *v = nmi_tag_val(t);
        if (SUB("id")) {
            row->m.id = v;
        } else if (SUB("family")) {
            row->m.family = v;
        } else if (SUB("parameters_b_x10")) {
            row->m.parameters_b_x10 = val_u64(t);
        } else if (SUB("context_length")) {
            row->m.context_length = val_u32(t);
        } else if (SUB("quantization")) {
            row->m.quantization = v;
        } else if (SUB("modalities")) {
            row->modalities_csv = v;
            row->m.modalities = nmi_modalities_from_csv(v);
        } else if (SUB("tokens_per_sec")) {
            row->m.tokens_per_sec = val_u64(t);
        } else if (SUB("loaded")) {
            row->m.loaded = strcmp(v, "true") == 0;
        }
#undef SUB
    }
    if (nr > 1) {
        qsort(r, nr, sizeof(*r), cmp_row);
    }
    *rows = r;
    *n = nr;
    return NM_OK;
}

size_t
nm_capset_model_count(const nm_capset *set)
{
    if (set == NULL) {
        return 0;
    }
    nmi_model_row *rows;
    size_t n;
    if (nmi_caps_models(set, &rows, &n) != NM_OK) {
        return 0;
    }
    free(rows);
    return n;
}

int
nm_capset_model_at(const nm_capset *set, size_t i, nm_model *out)
{
    if (set == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "set and out must be non-NULL");
    }
    nmi_model_row *rows;
    size_t n;
    int rc = nmi_caps_models(set, &rows, &n);
    if (rc != NM_OK) {
        return rc;
    }
    if (i >= n) {
        free(rows);
        return nmi_err(NM_EINVAL, "model index %zu out of range (%zu)", i, n);
    }
    *out = rows[i].m;
    free(rows);
    return NM_OK;
}
