/* src/cortex/query.c - query helpers shared by tasks and memories. */
#include "cortex/cortex_impl.h"

#include <stdlib.h>
#include <string.h>

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int
nmi_cx_ids_prepare(const uint64_t *ids, size_t n, uint64_t **out, size_t *outn)
{
    *out = NULL;
    *outn = 0;
    if (n == 0) {
        return NM_OK;
    }
    uint64_t *v = malloc(n * sizeof(*v));
    if (!v) {
        return nmi_err(NM_ENOMEM, "cortex: id_in copy");
    }
    memcpy(v, ids, n * sizeof(*v));
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t k = 1;
    for (size_t i = 1; i < n; i++) {
        if (v[i] != v[k - 1]) {
            v[k++] = v[i];
        }
    }
    *out = v;
    *outn = k;
    return NM_OK;
}

int
nmi_cx_lower_dup(const char *s, char **out, size_t *n)
{
    size_t len = strlen(s);
    char *d = malloc(len + 1);
    if (!d) {
        return nmi_err(NM_ENOMEM, "cortex: filter string");
    }
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        d[i] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
    }
    *out = d;
    *n = len;
    return NM_OK;
}

typedef struct sort_ctx {
    nm_cortex_order order;
    size_t coff, uoff;
} sort_ctx;

static int
cmp_elem(const void *a, const void *b, void *arg)
{
    const sort_ctx *c = arg;
    const uint8_t *x = *(const uint8_t *const *)a;
    const uint8_t *y = *(const uint8_t *const *)b;
    uint64_t ix, iy, kx, ky;
    memcpy(&ix, x, 8);
    memcpy(&iy, y, 8);
    int dir = 1;
    switch (c->order) {
    case NM_CORTEX_ID_DESC:
        dir = -1;
        /* fallthrough */
    case NM_CORTEX_ID_ASC:
    case NM_CORTEX_ORDER_NONE:
        return dir * ((ix > iy) - (ix < iy));
    case NM_CORTEX_CREATED_DESC:
        dir = -1;
        /* fallthrough */
    case NM_CORTEX_CREATED_ASC:
        memcpy(&kx, x + c->coff, 8);
        memcpy(&ky, y + c->coff, 8);
        break;
    case NM_CORTEX_UPDATED_DESC:
        dir = -1;
        /* fallthrough */
    case NM_CORTEX_UPDATED_ASC:
    default:
        memcpy(&kx, x + c->uoff, 8);
        memcpy(&ky, y + c->uoff, 8);
        break;
    }
    if (kx != ky) {
        return dir * ((kx > ky) - (kx < ky));
    }
    return (ix > iy) - (ix < iy);
}

void
nmi_cx_sort(const void **v, size_t n, nm_cortex_order order,
            size_t created_off, size_t updated_off)
{
    if (n < 2) {
        return;
    }
    sort_ctx c = {.order = order, .coff = created_off, .uoff = updated_off};
    qsort_r(v, n, sizeof(*v), cmp_elem, &c);
}
