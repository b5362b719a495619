/* src/behavior/diff.c - CapabilitySet::diff (behavior/diff.rs) and the
 * binding JSON shape. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "behavior/caps_impl.h"
#include "core/core.h"

struct nm_caps_diff {
    char **added, **removed;
    size_t nadded, nremoved;
    nm_meta_change *ch;
    size_t nch;
};

void
nm_caps_diff_free(nm_caps_diff *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->nadded; i++) {
        free(d->added[i]);
    }
    for (size_t i = 0; i < d->nremoved; i++) {
        free(d->removed[i]);
    }
    for (size_t i = 0; i < d->nch; i++) {
        free((char *)d->ch[i].key);
        free((char *)d->ch[i].value);
        free((char *)d->ch[i].prev_value);
        free((char *)d->ch[i].new_value);
    }
    free(d->added);
    free(d->removed);
    free(d->ch);
    free(d);
}

/* Tags of `a` with no semantic_eq match in `b`, in a's (bytewise) order.
 * Semantic equality = equal normalised forms; b's forms are sorted once so
 * the lookup is a binary search. */
static int
cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static int
minus(const nm_capset *a, const nm_capset *b, char ***out, size_t *n)
{
    char **bn = b->ntags ? calloc(b->ntags, sizeof(char *)) : NULL;
    char **res = a->ntags ? calloc(a->ntags, sizeof(char *)) : NULL;
    size_t nr = 0;
    int rc = NM_OK;
    if ((b->ntags && !bn) || (a->ntags && !res)) {
        rc = nmi_err(NM_ENOMEM, "out of memory diffing");
        goto done;
    }
    for (size_t i = 0; i < b->ntags; i++) {
        nmi_sb sb;
        nmi_sb_init(&sb);
        nmi_tag_normalise(&b->tags[i], &sb);
        if ((rc = nmi_sb_take(&sb, &bn[i], NULL)) != NM_OK) {
            goto done;
        }
    }
    if (b->ntags > 1) {
        qsort(bn, b->ntags, sizeof(char *), cmp_str);
    }
    for (size_t i = 0; i < a->ntags; i++) {
        nmi_sb sb;
        nmi_sb_init(&sb);
        nmi_tag_normalise(&a->tags[i], &sb);
        char *norm;
        if ((rc = nmi_sb_take(&sb, &norm, NULL)) != NM_OK) {
            goto done;
        }
        bool found =
            b->ntags && bsearch(&norm, bn, b->ntags, sizeof(char *), cmp_str);
        free(norm);
        if (!found) {
            res[nr] = strdup(a->tags[i].wire);
            if (res[nr] == NULL) {
                rc = nmi_err(NM_ENOMEM, "out of memory diffing");
                goto done;
            }
            nr++;
        }
    }
done:
    for (size_t i = 0; bn && i < b->ntags; i++) {
        free(bn[i]);
    }
    free(bn);
    if (rc != NM_OK) {
        for (size_t i = 0; i < nr; i++) {
            free(res[i]);
        }
        free(res);
        return rc;
    }
    *out = res;
    *n = nr;
    return NM_OK;
}

static char *
sdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool
add_change(nm_caps_diff *d, nm_meta_change_kind kind, const char *key,
           const char *value, const char *prev, const char *next)
{
    nm_meta_change *c = &d->ch[d->nch++];
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->key = sdup(key);
    c->value = sdup(value);
    c->prev_value = sdup(prev);
    c->new_value = sdup(next);
    return c->key && (!value || c->value) && (!prev || c->prev_value) &&
           (!next || c->new_value);
}

int
nm_capset_diff(const nm_capset *curr, const nm_capset *prev,
               nm_caps_diff **out)
{
    if (curr == NULL || prev == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "curr, prev and out must be non-NULL");
    }
    nm_caps_diff *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return nmi_err(NM_ENOMEM, "out of memory diffing");
    }
    int rc = minus(curr, prev, &d->added, &d->nadded);
    if (rc == NM_OK) {
        rc = minus(prev, curr, &d->removed, &d->nremoved);
    }
    if (rc != NM_OK) {
        nm_caps_diff_free(d);
        return rc;
    }
    size_t maxch = curr->nmeta + prev->nmeta;
    if (maxch) {
        d->ch = calloc(maxch, sizeof(nm_meta_change));
        if (d->ch == NULL) {
            nm_caps_diff_free(d);
            return nmi_err(NM_ENOMEM, "out of memory diffing");
        }
    }
    /* Key-ordered merge of two sorted maps. */
    size_t i = 0, j = 0;
    bool ok = true;
    while (ok && (i < curr->nmeta || j < prev->nmeta)) {
        int c;
        if (i >= curr->nmeta) {
            c = 1;
        } else if (j >= prev->nmeta) {
            c = -1;
        } else {
            c = strcmp(curr->meta[i].key, prev->meta[j].key);
        }
        if (c < 0) {
            ok = add_change(d, NM_META_ADDED, curr->meta[i].key,
                            curr->meta[i].value, NULL, NULL);
            i++;
        } else if (c > 0) {
            ok = add_change(d, NM_META_REMOVED, prev->meta[j].key, NULL,
                            prev->meta[j].value, NULL);
            j++;
        } else {
            if (strcmp(curr->meta[i].value, prev->meta[j].value) != 0) {
                ok = add_change(d, NM_META_UPDATED, curr->meta[i].key, NULL,
                                prev->meta[j].value, curr->meta[i].value);
            }
            i++;
            j++;
        }
    }
    if (!ok) {
        nm_caps_diff_free(d);
        return nmi_err(NM_ENOMEM, "out of memory diffing");
    }
    *out = d;
    return NM_OK;
}

size_t
nm_caps_diff_added_count(const nm_caps_diff *d)
{
    return d ? d->nadded : 0;
}

const char *
nm_caps_diff_added(const nm_caps_diff *d, size_t i)
{
    return d && i < d->nadded ? d->added[i] : NULL;
}

size_t
nm_caps_diff_removed_count(const nm_caps_diff *d)
{
    return d ? d->nremoved : 0;
}

const char *
nm_caps_diff_removed(const nm_caps_diff *d, size_t i)
{
    return d && i < d->nremoved ? d->removed[i] : NULL;
}

size_t
nm_caps_diff_change_count(const nm_caps_diff *d)
{
    return d ? d->nch : 0;
}

const nm_meta_change *
nm_caps_diff_change(const nm_caps_diff *d, size_t i)
{
    return d && i < d->nch ? &d->ch[i] : NULL;
}

bool
nm_caps_diff_is_empty(const nm_caps_diff *d)
{
    return d == NULL || (d->nadded == 0 && d->nremoved == 0 && d->nch == 0);
}

static void
put_list(nmi_sb *sb, char **v, size_t n)
{
    nmi_sb_putc(sb, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) {
            nmi_sb_putc(sb, ',');
        }
        nmi_sb_json_str(sb, v[i], strlen(v[i]));
    }
    nmi_sb_putc(sb, ']');
}

static void
put_field(nmi_sb *sb, const char *name, const char *v)
{
    nmi_sb_puts(sb, ",\"");
    nmi_sb_puts(sb, name);
    nmi_sb_puts(sb, "\":");
    nmi_sb_json_str(sb, v, strlen(v));
}

int
nm_caps_diff_to_json(const nm_caps_diff *d, char **out, size_t *len)
{
    if (d == NULL || out == NULL) {
        return nmi_err(NM_EINVAL, "d and out must be non-NULL");
    }
    static const char *const kinds[] = {"added", "removed", "updated"};
    nmi_sb sb;
    nmi_sb_init(&sb);
    nmi_sb_puts(&sb, "{\"added_tags\":");
    put_list(&sb, d->added, d->nadded);
    nmi_sb_puts(&sb, ",\"removed_tags\":");
    put_list(&sb, d->removed, d->nremoved);
    nmi_sb_puts(&sb, ",\"metadata_changes\":[");
    for (size_t i = 0; i < d->nch; i++) {
        const nm_meta_change *c = &d->ch[i];
        if (i) {
            nmi_sb_putc(&sb, ',');
        }
        nmi_sb_puts(&sb, "{\"kind\":\"");
        nmi_sb_puts(&sb, kinds[c->kind]);
        nmi_sb_putc(&sb, '"');
        put_field(&sb, "key", c->key);
        if (c->kind == NM_META_ADDED) {
            put_field(&sb, "value", c->value);
        } else {
            put_field(&sb, "prev_value", c->prev_value);
            if (c->kind == NM_META_UPDATED) {
                put_field(&sb, "new_value", c->new_value);
            }
        }
        nmi_sb_putc(&sb, '}');
    }
    nmi_sb_puts(&sb, "]}");
    return nmi_sb_take(&sb, out, len);
}
