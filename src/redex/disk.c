/*
 * src/redex/disk.c - the on-disk side of RedEX: channel directories, the
 * manifest and generation directories (resolution as upstream: manifest,
 * else the highest complete v<N>/, else a legacy flat layout migrated into
 * v0000000001/, else a new channel), growable mapped regions, and a small
 * pool that fdatasyncs several files in parallel.
 */
#define _GNU_SOURCE
#include "redex/redex_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netmesh/name.h>

#ifdef MADV_POPULATE_WRITE
#define NMI_MADV_POPULATE_WRITE MADV_POPULATE_WRITE
#else
#define NMI_MADV_POPULATE_WRITE 23
#endif

static const char *const gen_files[3] = {"idx", "dat", "ts"};

int
nmi_rx_pread_full(int fd, void *dst, size_t len, uint64_t off)
{
    uint8_t *p = dst;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return nmi_err(NM_EIO, "read at offset %llu: %s",
                           (unsigned long long)off, strerror(errno));
        }
        if (r == 0) {
            return nmi_err(NM_EIO, "short read at offset %llu",
                           (unsigned long long)off);
        }
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return NM_OK;
}

int
nmi_rx_write_full(int fd, const void *src, size_t len)
{
    const uint8_t *p = src;
    while (len > 0) {
        ssize_t r = write(fd, p, len);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return nmi_err(NM_EIO, "write: %s", strerror(errno));
        }
        p += r;
        len -= (size_t)r;
    }
    return NM_OK;
}

void
nmi_rx_gen_name(uint32_t gen, char out[16])
{
    snprintf(out, 16, "v%010u", gen);
}

bool
nmi_rx_gen_parse(const char *name, uint32_t *gen)
{
    if (name[0] != 'v' || strlen(name) != 11) {
        return false;
    }
    uint64_t v = 0;
    for (int i = 1; i < 11; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    if (v == 0 || v > UINT32_MAX) {
        return false;
    }
    *gen = (uint32_t)v;
    return true;
}

int
nmi_rx_fsync_dir(int dfd)
{
    if (fsync(dfd) != 0 && errno != EINVAL) {
        return nmi_err(NM_EIO, "fsync of a directory: %s", strerror(errno));
    }
    return NM_OK;
}

static bool
is_file_at(int dfd, const char *path)
{
    struct stat st;
    return fstatat(dfd, path, &st, 0) == 0 && S_ISREG(st.st_mode);
}

static bool
gen_complete(int dfd, uint32_t gen)
{
    char name[16], p[40];
    nmi_rx_gen_name(gen, name);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", name, gen_files[i]);
        if (!is_file_at(dfd, p)) {
            return false;
        }
    }
    return true;
}

static int
read_manifest(int dfd, uint32_t *gen)
{
    int fd = openat(dfd, "manifest", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return nmi_err(NM_ENOTFOUND, "no manifest");
    }
    uint8_t buf[NMI_RX_MANIFEST + 1];
    size_t n = 0;
    while (n < sizeof(buf)) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    return nmi_rx_manifest_decode(buf, n, gen);
}

int
nmi_rx_manifest_write(int dfd, uint32_t gen)
{
    uint8_t buf[NMI_RX_MANIFEST];
    nmi_rx_manifest_encode(gen, buf);
    int fd = openat(dfd, "manifest.tmp",
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return nmi_err(NM_EIO, "create manifest.tmp: %s", strerror(errno));
    }
    int rc = nmi_rx_write_full(fd, buf, sizeof(buf));
    if (!rc && fsync(fd) != 0) {
        rc = nmi_err(NM_EIO, "fsync manifest.tmp: %s", strerror(errno));
    }
    close(fd);
    if (rc) {
        return rc;
    }
    if (renameat(dfd, "manifest.tmp", dfd, "manifest") != 0) {
        return nmi_err(NM_EIO, "rename manifest.tmp: %s", strerror(errno));
    }
    /* As upstream: once the rename happened the flip is done; a failed
     * directory fsync is not reported as a failed flip. */
    (void)nmi_rx_fsync_dir(dfd);
    return NM_OK;
}

/* Sorted descending list of the v<N> directories in dfd. */
static int
list_gens(int dfd, uint32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int d2 = dup(dfd);
    if (d2 < 0) {
        return nmi_err(NM_EIO, "dup: %s", strerror(errno));
    }
    DIR *d = fdopendir(d2);
    if (!d) {
        close(d2);
        return nmi_err(NM_EIO, "opendir: %s", strerror(errno));
    }
    rewinddir(d);
    size_t cap = 0;
    struct dirent *e;
    int rc = NM_OK;
    while ((e = readdir(d)) != NULL) {
        uint32_t g;
        if (!nmi_rx_gen_parse(e->d_name, &g)) {
            continue;
        }
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, 0) != 0 || !S_ISDIR(st.st_mode)) {
            continue;
        }
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            uint32_t *nv = realloc(*out, nc * sizeof(**out));
            if (!nv) {
                rc = nmi_err(NM_ENOMEM, "generation list");
                break;
            }
            *out = nv;
            cap = nc;
        }
        (*out)[(*n)++] = g;
    }
    closedir(d);
    /* insertion sort, descending: a handful of entries */
    for (size_t i = 1; i < *n; i++) {
        uint32_t v = (*out)[i];
        size_t j = i;
        while (j > 0 && (*out)[j - 1] < v) {
            (*out)[j] = (*out)[j - 1];
            j--;
        }
        (*out)[j] = v;
    }
    return rc;
}

/* Create v<gen>/ with empty idx/dat/ts (existing files are kept). */
static int
gen_create(int dfd, uint32_t gen)
{
    char name[16], p[40];
    nmi_rx_gen_name(gen, name);
    if (mkdirat(dfd, name, 0755) != 0 && errno != EEXIST) {
        return nmi_err(NM_EIO, "mkdir %s: %s", name, strerror(errno));
    }
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", name, gen_files[i]);
        int fd = openat(dfd, p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            return nmi_err(NM_EIO, "create %s: %s", p, strerror(errno));
        }
        close(fd);
    }
    int gfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (gfd >= 0) {
        (void)nmi_rx_fsync_dir(gfd);
        close(gfd);
    }
    return nmi_rx_fsync_dir(dfd);
}

int
nmi_rx_resolve_gen(int dfd, bool repair, nmi_rx_resolved *out)
{
    memset(out, 0, sizeof(*out));
    uint32_t gen = 0;
    if (read_manifest(dfd, &gen) == NM_OK && gen_complete(dfd, gen)) {
        out->gen = gen;
        out->manifest_ok = true;
        return NM_OK;
    }
    uint32_t *gens;
    size_t n;
    int rc = list_gens(dfd, &gens, &n);
    if (rc) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (gen_complete(dfd, gens[i])) {
            out->gen = gens[i];
            out->fallback = true;
            free(gens);
            if (repair) {
                (void)nmi_rx_manifest_write(dfd, out->gen); /* best effort */
            }
            return NM_OK;
        }
    }
    free(gens);
    bool flat = false;
    for (int i = 0; i < 3; i++) {
        flat |= is_file_at(dfd, gen_files[i]);
    }
    if (flat) {
        out->migrated = true;
        if (!repair) {
            out->gen = 0; /* the files are in the channel directory */
            return NM_OK;
        }
        char name[16], p[40];
        nmi_rx_gen_name(1, name);
        if (mkdirat(dfd, name, 0755) != 0 && errno != EEXIST) {
            return nmi_err(NM_EIO, "mkdir %s: %s", name, strerror(errno));
        }
        for (int i = 0; i < 3; i++) {
            if (!is_file_at(dfd, gen_files[i])) {
                continue;
            }
            snprintf(p, sizeof(p), "%s/%s", name, gen_files[i]);
            if (renameat(dfd, gen_files[i], dfd, p) != 0) {
                return nmi_err(NM_EIO, "migrate %s: %s", gen_files[i],
                               strerror(errno));
            }
        }
        rc = gen_create(dfd, 1); /* missing files, dir fsyncs */
        if (!rc) {
            rc = nmi_rx_manifest_write(dfd, 1);
        }
        out->gen = 1;
        return rc;
    }
    if (!repair) {
        return nmi_err(NM_ENOTFOUND,
                       "no RedEX log here (no manifest, no v<N>/ "
                       "generation, no idx/dat/ts)");
    }
    rc = gen_create(dfd, 1);
    if (!rc) {
        rc = nmi_rx_manifest_write(dfd, 1);
    }
    out->gen = 1;
    out->created = true;
    return rc;
}

void
nmi_rx_gen_delete(int dfd, uint32_t gen)
{
    /* Only the files a generation holds: a nested channel may be named
     * like a generation ("x/v0000000001"); its directory then keeps its
     * manifest and generations and the rmdir below fails harmlessly. */
    char name[16], p[40];
    nmi_rx_gen_name(gen, name);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", name, gen_files[i]);
        (void)unlinkat(dfd, p, 0);
    }
    (void)unlinkat(dfd, name, AT_REMOVEDIR);
}

void
nmi_rx_gen_sweep(int dfd, uint32_t keep)
{
    uint32_t *gens;
    size_t n;
    if (list_gens(dfd, &gens, &n) == NM_OK) {
        for (size_t i = 0; i < n; i++) {
            if (gens[i] != keep) {
                nmi_rx_gen_delete(dfd, gens[i]);
            }
        }
    }
    free(gens);
    (void)unlinkat(dfd, "manifest.tmp", 0);
}

int
nmi_rx_open_channel_dir(const char *base, const char *channel, bool create,
                        int *out)
{
    *out = -1;
    int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return nmi_err(NM_EIO, "open %s: %s", base, strerror(errno));
    }
    const char *p = channel;
    char seg[NM_CHANNEL_NAME_MAX + 1];
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        memcpy(seg, p, n);
        seg[n] = '\0';
        if (create && mkdirat(fd, seg, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            close(fd);
            return nmi_err(NM_EIO, "mkdir %s (in %s): %s", seg, base,
                           strerror(e));
        }
        int nfd = openat(fd, seg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int e = errno;
        close(fd);
        if (nfd < 0) {
            return nmi_err(e == ENOENT ? NM_ENOTFOUND : NM_EIO,
                           "open %s/%s: %s", base, channel, strerror(e));
        }
        fd = nfd;
        p += n;
        if (*p == '/') {
            p++;
        }
    }
    *out = fd;
    return NM_OK;
}

/* ------------------------------------------------------------ regions */

static uint64_t
page_size(void)
{
    static uint64_t ps;
    if (!ps) {
        long v = sysconf(_SC_PAGESIZE);
        ps = v > 0 ? (uint64_t)v : 4096;
    }
    return ps;
}

uint64_t
nmi_rx_page(void)
{
    return page_size();
}

void
nmi_rx_region_anon(nmi_rx_region *r)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

int
nmi_rx_region_file(nmi_rx_region *r, int fd, uint64_t end)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->end = end;
    /* Nothing of an existing file is resident: old records are read with
     * pread until new appends fill the window. */
    r->released = end & ~(page_size() - 1);
    return nmi_rx_region_reserve(r, end + NMI_RX_REC);
}

void
nmi_rx_populate(uint8_t *map, uint64_t from, uint64_t to)
{
    uint64_t ps = page_size();
    from &= ~(ps - 1);
    to = (to + ps - 1) & ~(ps - 1);
    if (map && to > from) {
        /* One call instead of one trap per page (Linux >= 5.14; ignored
         * elsewhere, and the pages fault in on first touch instead). */
        (void)madvise(map + from, (size_t)(to - from),
                      NMI_MADV_POPULATE_WRITE);
    }
}

void
nmi_rx_region_nohuge(nmi_rx_region *r)
{
    if (r->fd < 0 && r->map) {
        (void)madvise(r->map, (size_t)r->cap, MADV_NOHUGEPAGE);
    }
}

void
nmi_rx_region_discard(nmi_rx_region *r, uint64_t from, uint64_t to)
{
    if (r->fd < 0 && r->map && to > from && to <= r->cap) {
        (void)madvise(r->map + from, (size_t)(to - from), MADV_DONTNEED);
    }
}

/* The next capacity of a region that needs `need` bytes: double (at least
 * 80 KiB, at most 64 MiB at a time); huge: past NMI_RX_HUGE_MIN in whole
 * huge pages, else in NMI_RX_GRAIN. */
static uint64_t
next_cap(const nmi_rx_region *r, uint64_t need, bool huge)
{
    uint64_t step = r->cap < 4 * NMI_RX_GRAIN ? 4 * NMI_RX_GRAIN : r->cap;
    if (step > (64u << 20)) {
        step = 64u << 20;
    }
    uint64_t ncap = r->cap + step;
    if (ncap < need) {
        ncap = need;
    }
    if (huge && ncap >= NMI_RX_HUGE_MIN) {
        return (ncap + NMI_RX_HUGE - 1) & ~(uint64_t)(NMI_RX_HUGE - 1);
    }
    return (ncap + NMI_RX_GRAIN - 1) / NMI_RX_GRAIN * NMI_RX_GRAIN;
}

int
nmi_rx_region_reserve(nmi_rx_region *r, uint64_t need)
{
    return nmi_rx_region_reserve_lim(r, need, true, true);
}

int
nmi_rx_region_reserve_lim(nmi_rx_region *r, uint64_t need, bool huge,
                          bool populate)
{
    if (need <= r->cap) {
        return NM_OK;
    }
    uint64_t ps = page_size();
    huge = huge && r->fd < 0;
    uint64_t ncap = next_cap(r, need, huge);
    if (ncap > (uint64_t)SIZE_MAX / 2) {
        return nmi_err(NM_ENOMEM, "region of %llu bytes",
                       (unsigned long long)ncap);
    }
    if (r->fd >= 0) {
        int e = posix_fallocate(r->fd, (off_t)r->cap, (off_t)(ncap - r->cap));
        if (e == EOPNOTSUPP || e == EINVAL) {
            e = ftruncate(r->fd, (off_t)ncap) == 0 ? 0 : errno;
        }
        if (e) {
            return nmi_err(NM_EIO, "growing a log file to %llu bytes: %s",
                           (unsigned long long)ncap, strerror(e));
        }
    }
    void *m;
    bool to_huge = r->fd < 0 && huge && r->map && r->cap < NMI_RX_HUGE_MIN &&
                   ncap >= NMI_RX_HUGE_MIN;
    if (r->map == NULL || to_huge) {
        m = r->fd >= 0
                ? mmap(NULL, (size_t)ncap, PROT_READ | PROT_WRITE, MAP_SHARED,
                       r->fd, 0)
                : mmap(NULL, (size_t)ncap, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (to_huge && m != MAP_FAILED) {
            /* Leaving 4 KiB pages: a fresh mapping, the (small) contents
             * copied over. mremap would carry the small pages along, and
             * they would keep the first 2 MiB out of huge pages. */
            (void)madvise(m, (size_t)ncap, MADV_HUGEPAGE);
            uint64_t from = r->released;
            if (r->end > from) {
                memcpy((uint8_t *)m + from, r->map + from,
                       (size_t)(r->end - from));
            }
            munmap(r->map, (size_t)r->cap);
            /* The copy faulted in the huge page(s) holding the data. */
            r->ready = r->end ? (r->end + NMI_RX_HUGE - 1) &
                                    ~(uint64_t)(NMI_RX_HUGE - 1)
                              : 0;
            if (r->ready > ncap) {
                r->ready = ncap;
            }
        }
    } else {
        m = mremap(r->map, (size_t)r->cap, (size_t)ncap, MREMAP_MAYMOVE);
    }
    if (m == MAP_FAILED) {
        int e = errno;
        if (r->fd >= 0) {
            /* Give the file its old size back; nothing points there. */
            if (ftruncate(r->fd, (off_t)r->cap) != 0) {
                /* recovery trims the zero slack anyway */
            }
        }
        return nmi_err(e == ENOMEM ? NM_ENOMEM : NM_EIO,
                       "mapping %llu bytes: %s", (unsigned long long)ncap,
                       strerror(e));
    }
    uint64_t ocap = r->cap;
    r->map = m;
    r->cap = ncap;
    if (r->fd >= 0) {
        r->ready = ncap; /* file pages come from the page cache */
    } else {
        if (huge && ncap >= NMI_RX_HUGE_MIN) {
            /* 2 MiB pages: one fault (and one TLB entry) per 2 MiB instead
             * of 512. Whole huge-page sizes also make the kernel place the
             * mapping on a 2 MiB boundary. */
            (void)madvise(r->map, (size_t)ncap, MADV_HUGEPAGE);
        }
        if (populate) {
            /* At most 4 MiB past what is needed: resident memory stays
             * close to what is used. */
            uint64_t pe = need + (4u << 20);
            if (pe > ncap) {
                pe = ncap;
            }
            uint64_t ps0 = ocap & ~(ps - 1);
            pe &= ~(ps - 1);
            if (pe > ps0) {
                nmi_rx_populate(r->map, ps0, pe);
                if (pe > r->ready) {
                    r->ready = pe;
                }
            }
        }
    }
    return NM_OK;
}

void
nmi_rx_region_release(nmi_rx_region *r, uint64_t upto)
{
    uint64_t to = upto & ~(page_size() - 1);
    if (to > r->cap) {
        to = r->cap & ~(page_size() - 1);
    }
    if (r->map && to > r->released) {
        (void)madvise(r->map + r->released, (size_t)(to - r->released),
                      MADV_DONTNEED);
        r->released = to;
    } else if (!r->map && to > r->released) {
        r->released = to;
    }
}

int
nmi_rx_region_read(const nmi_rx_region *r, uint64_t off, void *dst, size_t len)
{
    if (len == 0) {
        return NM_OK;
    }
    if (off >= r->released && off + len <= r->cap) {
        memcpy(dst, r->map + off, len);
        return NM_OK;
    }
    if (r->fd >= 0) {
        return nmi_rx_pread_full(r->fd, dst, len, off);
    }
    return nmi_err(NM_EINTERNAL, "read of released memory at %llu",
                   (unsigned long long)off);
}

int
nmi_rx_region_unmap(nmi_rx_region *r, bool truncate)
{
    int rc = NM_OK;
    if (r->map) {
        munmap(r->map, (size_t)r->cap);
        r->map = NULL;
    }
    r->ready = 0;
    if (truncate && r->fd >= 0 && ftruncate(r->fd, (off_t)r->end) != 0) {
        rc = nmi_err(NM_EIO, "truncate a log file to %llu bytes: %s",
                     (unsigned long long)r->end, strerror(errno));
    }
    r->cap = 0;
    return rc;
}

/* --------------------------------------------------------------- pool */

#define POOL_THREADS 2
#define POOL_Q 16

typedef struct pool_job {
    int fd;
    int *err; /* errno result */
    int *pending;
} pool_job;

struct nmi_rx_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv, done;
    pool_job q[POOL_Q];
    int qh, qn;
    bool stop;
    pthread_t th[POOL_THREADS];
    int nth;
};

static void *
pool_main(void *arg)
{
    nmi_rx_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->qn == 0 && !p->stop) {
            pthread_cond_wait(&p->cv, &p->mu);
        }
        if (p->qn == 0 && p->stop) {
            break;
        }
        pool_job j = p->q[p->qh];
        p->qh = (p->qh + 1) % POOL_Q;
        p->qn--;
        pthread_mutex_unlock(&p->mu);
        int e = fdatasync(j.fd) == 0 ? 0 : errno;
        pthread_mutex_lock(&p->mu);
        *j.err = e;
        (*j.pending)--;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int
nmi_rx_pool_start(nmi_rx_pool **out)
{
    nmi_rx_pool *p = calloc(1, sizeof(*p));
    if (!p) {
        return nmi_err(NM_ENOMEM, "fsync pool");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < POOL_THREADS; i++) {
        if (pthread_create(&p->th[i], NULL, pool_main, p) != 0) {
            break;
        }
        p->nth++;
    }
    *out = p;
    return NM_OK;
}

void
nmi_rx_pool_stop(nmi_rx_pool *p)
{
    if (!p) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nth; i++) {
        pthread_join(p->th[i], NULL);
    }
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int
nmi_rx_fsync_all(nmi_rx_pool *p, const int *fds, int n)
{
    int err[8] = {0};
    if (n > 8) {
        n = 8;
    }
    int pending = 0;
    if (p && p->nth > 0 && n > 1) {
        pthread_mutex_lock(&p->mu);
        for (int i = 1; i < n && p->qn < POOL_Q; i++) {
            p->q[(p->qh + p->qn) % POOL_Q] =
                (pool_job){.fd = fds[i], .err = &err[i], .pending = &pending};
            p->qn++;
            pending++;
        }
        int queued = pending;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        err[0] = fdatasync(fds[0]) == 0 ? 0 : errno;
        for (int i = 1 + queued; i < n; i++) {
            err[i] = fdatasync(fds[i]) == 0 ? 0 : errno;
        }
        pthread_mutex_lock(&p->mu);
        while (pending > 0) {
            pthread_cond_wait(&p->done, &p->mu);
        }
        pthread_mutex_unlock(&p->mu);
    } else {
        for (int i = 0; i < n; i++) {
            err[i] = fdatasync(fds[i]) == 0 ? 0 : errno;
        }
    }
    for (int i = 0; i < n; i++) {
        if (err[i]) {
            static const char *const order[3] = {"dat", "idx", "ts"};
            return nmi_err(NM_EIO, "fdatasync of %s: %s",
                           i < 3 ? order[i] : "a log file", strerror(err[i]));
        }
    }
    return NM_OK;
}
