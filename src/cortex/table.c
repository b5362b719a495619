/* src/cortex/table.c - the id table (cortex_impl.h) and string helpers. */
#include "cortex/cortex_impl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ------------------------------------------------------------- arrays */

/* The table's two arrays come from malloc while small. From ARR_BIG on
 * they are anonymous mappings in whole huge pages (ARR_HUGE) with
 * transparent huge pages: the fold fills them with fresh memory as the
 * state grows, and one fault per 2 MiB costs far less than 512 (a
 * hypervisor may add a hidden fault to each); growth is an mremap, not a
 * copy. */
#define ARR_BIG (1u << 20)
#define ARR_HUGE ((size_t)2 << 20)

static size_t
arr_span(size_t n)
{
    return (n + ARR_HUGE - 1) & ~(ARR_HUGE - 1);
}

/* A zeroed array of n bytes (n > 0). NULL when out of memory. */
static void *
arr_alloc(size_t n)
{
    if (n < ARR_BIG) {
        return calloc(1, n);
    }
    void *m = mmap(NULL, arr_span(n), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        return NULL;
    }
    (void)madvise(m, arr_span(n), MADV_HUGEPAGE);
    return m;
}

/* Free an array of n bytes (p may be NULL). */
static void
arr_free(void *p, size_t n)
{
    if (!p) {
        return;
    }
    if (n < ARR_BIG) {
        free(p);
    } else {
        munmap(p, arr_span(n));
    }
}

/* Grow an array of `old` bytes (p may be NULL when old is 0) to n bytes,
 * keeping its contents. NULL when out of memory (p is kept). */
static void *
arr_grow(void *p, size_t old, size_t n)
{
    if (n < ARR_BIG) {
        return realloc(p, n);
    }
    if (old >= ARR_BIG) {
        if (arr_span(n) == arr_span(old)) {
            return p;
        }
        void *m = mremap(p, arr_span(old), arr_span(n), MREMAP_MAYMOVE);
        return m == MAP_FAILED ? NULL : m;
    }
    void *m = arr_alloc(n);
    if (m && old) {
        memcpy(m, p, old);
    }
    if (m) {
        free(p);
    }
    return m;
}

void
nmi_cx_table_init(nmi_cx_table *t, size_t esize)
{
    memset(t, 0, sizeof(*t));
    t->esize = esize;
}

static void
index_put(nmi_cx_table *t, uint64_t id, uint32_t idx1)
{
    size_t h = nmi_cx_home(t, id);
    while (t->slots[h]) {
        h = (h + 1) & t->mask;
    }
    t->slots[h] = idx1;
}

/* Rebuild the index with nslots slots (a power of two >= 2). */
static int
rehash(nmi_cx_table *t, size_t nslots)
{
    uint32_t *ns = arr_alloc(nslots * sizeof(*ns));
    if (!ns) {
        return nmi_err(NM_ENOMEM, "cortex: state index");
    }
    if (t->slots) {
        arr_free(t->slots, (t->mask + 1) * sizeof(*t->slots));
    }
    t->slots = ns;
    t->mask = nslots - 1;
    t->shift = 64u - (unsigned)__builtin_ctzll((unsigned long long)nslots);
    for (size_t i = 0; i < t->n; i++) {
        index_put(t, *(const uint64_t *)nmi_cx_table_at(t, i),
                  (uint32_t)(i + 1));
    }
    return NM_OK;
}

int
nmi_cx_table_reserve(nmi_cx_table *t, size_t more)
{
    if (more > UINT32_MAX - 1 - t->n) {
        return nmi_err(NM_ENOMEM, "cortex: state is full (2^32 items)");
    }
    size_t need = t->n + more;
    if (need > t->cap) {
        size_t nc = t->cap ? t->cap : 16;
        while (nc < need) {
            nc *= 2;
        }
        uint8_t *ni = arr_grow(t->items, t->cap * t->esize, nc * t->esize);
        if (!ni) {
            return nmi_err(NM_ENOMEM, "cortex: state items");
        }
        t->items = ni;
        t->cap = nc;
    }
    size_t want = (size_t)nmi_pow2_ceil(need * 2 < 16 ? 16 : need * 2);
    if (!t->slots || t->mask + 1 < want) {
        return rehash(t, want);
    }
    return NM_OK;
}

int
nmi_cx_table_insert(nmi_cx_table *t, const void *elem)
{
    int rc = nmi_cx_table_reserve(t, 1);
    if (rc) {
        return rc;
    }
    memcpy(nmi_cx_table_at(t, t->n), elem, t->esize);
    t->n++;
    index_put(t, *(const uint64_t *)elem, (uint32_t)t->n);
    return NM_OK;
}

/* The slot holding id (which must be present). */
static size_t
slot_of(const nmi_cx_table *t, uint64_t id)
{
    size_t h = nmi_cx_home(t, id);
    for (;;) {
        uint32_t s = t->slots[h];
        if (*(const uint64_t *)nmi_cx_table_at(t, s - 1) == id) {
            return h;
        }
        h = (h + 1) & t->mask;
    }
}

bool
nmi_cx_table_remove(nmi_cx_table *t, uint64_t id, void *out)
{
    if (!nmi_cx_table_get(t, id)) {
        return false;
    }
    size_t i = slot_of(t, id);
    uint32_t idx1 = t->slots[i];
    /* Backward-shift deletion keeps every probe chain intact. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & t->mask;
        uint32_t s = t->slots[j];
        if (!s) {
            break;
        }
        size_t k =
            nmi_cx_home(t, *(const uint64_t *)nmi_cx_table_at(t, s - 1));
        /* Move s to the hole at i unless its home lies cyclically in
         * (i, j]. */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            t->slots[i] = s;
            i = j;
        }
    }
    t->slots[i] = 0;
    /* Move the last element into the freed place of the dense array. */
    uint8_t *e = nmi_cx_table_at(t, idx1 - 1);
    if (out) {
        memcpy(out, e, t->esize);
    }
    size_t last = t->n - 1;
    if (idx1 - 1 != last) {
        uint8_t *le = nmi_cx_table_at(t, last);
        t->slots[slot_of(t, *(const uint64_t *)le)] = idx1;
        memcpy(e, le, t->esize);
    }
    t->n--;
    return true;
}

void
nmi_cx_table_clear(nmi_cx_table *t, void (*efree)(void *))
{
    if (efree) {
        for (size_t i = 0; i < t->n; i++) {
            efree(nmi_cx_table_at(t, i));
        }
    }
    t->n = 0;
    if (t->slots) {
        memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
    }
}

void
nmi_cx_table_free(nmi_cx_table *t, void (*efree)(void *))
{
    nmi_cx_table_clear(t, efree);
    arr_free(t->items, t->cap * t->esize);
    if (t->slots) {
        arr_free(t->slots, (t->mask + 1) * sizeof(*t->slots));
    }
    size_t es = t->esize;
    memset(t, 0, sizeof(*t));
    t->esize = es;
}

/* ----------------------------------------------------------- strings */

int
nmi_cx_str_dup(nm_cortex_str *out, const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s) {
        return nmi_err(NM_ENOMEM, "cortex: string of %zu bytes", n);
    }
    if (n) {
        memcpy(s, p, n);
    }
    s[n] = '\0';
    out->s = s;
    out->len = n;
    return NM_OK;
}

static inline char
lc(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

bool
nmi_cx_contains_ci(const char *hay, size_t hn, const char *needle_lc,
                   size_t nn)
{
    if (nn == 0) {
        return true;
    }
    if (nn > hn) {
        return false;
    }
    char first = needle_lc[0];
    for (size_t i = 0; i + nn <= hn; i++) {
        if (lc(hay[i]) != first) {
            continue;
        }
        size_t k = 1;
        while (k < nn && lc(hay[i + k]) == needle_lc[k]) {
            k++;
        }
        if (k == nn) {
            return true;
        }
    }
    return false;
}
