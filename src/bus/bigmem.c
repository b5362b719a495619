/*
 * src/bus/bigmem.c - large zeroed, pre-faulted mappings for the bus rings
 * and the memory adapter's logs.
 *
 * A bus touches megabytes per shard in a cycle (the rings wrap, the
 * memory log recycles its chunks), so every access is a TLB miss with 4
 * KiB pages, and a first touch is a page fault, which is expensive under
 * virtualisation. Mappings of 2 MiB or more are therefore aligned to 2
 * MiB and advised for transparent huge pages (honoured when THP is
 * "always" or "madvise"), then faulted in with one call instead of one
 * trap per page.
 */
#define _GNU_SOURCE
#include "bus/bus_impl.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>

#ifdef MADV_POPULATE_WRITE
#define NMI_POPULATE_WRITE MADV_POPULATE_WRITE
#else
#define NMI_POPULATE_WRITE 23 /* Linux >= 5.14 */
#endif

#define NMI_HUGE (2u << 20)

void *
nmi_bigmap(size_t size)
{
    if (size == 0) {
        return NULL;
    }
    if (size < NMI_HUGE) {
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        return m == MAP_FAILED ? NULL : m;
    }
    size_t len = (size + NMI_HUGE - 1) & ~(size_t)(NMI_HUGE - 1);
    uint8_t *m = mmap(NULL, len + NMI_HUGE, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return NULL;
    }
    uintptr_t a = ((uintptr_t)m + NMI_HUGE - 1) & ~(uintptr_t)(NMI_HUGE - 1);
    size_t lead = a - (uintptr_t)m;
    if (lead) {
        munmap(m, lead);
    }
    if (NMI_HUGE - lead) {
        munmap((uint8_t *)a + len, NMI_HUGE - lead);
    }
    (void)madvise((void *)a, len, MADV_HUGEPAGE);
    if (madvise((void *)a, len, NMI_POPULATE_WRITE) != 0) {
        if (errno != EINVAL) {
            munmap((void *)a, len); /* no memory for it */
            return NULL;
        }
        /* Kernel older than 5.14: fault the pages in by hand (they stay
         * zero). */
        volatile uint8_t *p = (volatile uint8_t *)a;
        for (size_t off = 0; off < len; off += 4096) {
            p[off] = 0;
        }
    }
    return (void *)a;
}

void
nmi_bigunmap(void *p, size_t size)
{
    if (!p) {
        return;
    }
    if (size >= NMI_HUGE) {
        size = (size + NMI_HUGE - 1) & ~(size_t)(NMI_HUGE - 1);
    }
    munmap(p, size);
}
