/*
 * src/redex/reader.c - offline, read-only access to a channel directory:
 * nm_redex_check (what recovery would find) and nm_redex_reader (a cursor
 * that follows a live writer in another process: it re-reads the manifest
 * on every poll and resumes validation where the previous poll stopped).
 */
#define _GNU_SOURCE
#include "redex/redex_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct gen_fds {
    int fd[3]; /* idx, dat, ts (ts may be -1) */
} gen_fds;

static void
fds_close(gen_fds *g)
{
    for (int i = 0; i < 3; i++) {
        if (g->fd[i] >= 0) {
            close(g->fd[i]);
        }
        g->fd[i] = -1;
    }
}

static int
fds_open(int dfd, uint32_t gen, gen_fds *g)
{
    static const char *const fn[3] = {"idx", "dat", "ts"};
    char name[16], p[40];
    nmi_rx_gen_name(gen, name);
    for (int i = 0; i < 3; i++) {
        g->fd[i] = -1;
    }
    for (int i = 0; i < 3; i++) {
        if (gen) {
            snprintf(p, sizeof(p), "%s/%s", name, fn[i]);
        } else {
            snprintf(p, sizeof(p), "%s", fn[i]);
        }
        g->fd[i] = openat(dfd, p, O_RDONLY | O_CLOEXEC);
        if (g->fd[i] >= 0) {
            continue;
        }
        int e = errno;
        if (e == ENOENT && i == 2) {
            continue; /* no ts: every timestamp is missing */
        }
        if (e == ENOENT && i == 1) {
            /* a legacy layout without dat: every record must be inline */
            g->fd[1] = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (g->fd[1] >= 0) {
                continue;
            }
            e = errno;
        }
        fds_close(g);
        return nmi_err(e == ENOENT ? NM_ENOTFOUND : NM_EIO, "open %s: %s", p,
                       strerror(e));
    }
    return NM_OK;
}

static uint32_t
count_quarantined(int dfd)
{
    int d2 = dup(dfd);
    if (d2 < 0) {
        return 0;
    }
    DIR *d = fdopendir(d2);
    if (!d) {
        close(d2);
        return 0;
    }
    uint32_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint32_t g;
        char base[12];
        if (strlen(e->d_name) > 11 &&
            strncmp(e->d_name + 11, ".corrupt", 8) == 0) {
            memcpy(base, e->d_name, 11);
            base[11] = '\0';
            n += nmi_rx_gen_parse(base, &g) ? 1u : 0u;
        }
    }
    closedir(d);
    return n;
}

int
nm_redex_check(const char *channel_dir, nm_redex_check_report *r)
{
    if (!channel_dir || !r) {
        return nmi_err(NM_EINVAL, "channel_dir and r must not be NULL");
    }
    memset(r, 0, sizeof(*r));
    int dfd = open(channel_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        return nmi_err(errno == ENOENT ? NM_ENOTFOUND : NM_EIO, "open %s: %s",
                       channel_dir, strerror(errno));
    }
    /* The manifest on its own. */
    int mfd = openat(dfd, "manifest", O_RDONLY | O_CLOEXEC);
    if (mfd >= 0) {
        r->manifest_present = true;
        uint8_t buf[NMI_RX_MANIFEST + 1];
        ssize_t n = read(mfd, buf, sizeof(buf));
        close(mfd);
        uint32_t g;
        if (nmi_rx_manifest_decode(buf, n < 0 ? 0 : (size_t)n, &g) != 0) {
            snprintf(r->manifest_error, sizeof(r->manifest_error), "%s",
                     nm_errdetail());
        }
    }
    nmi_rx_resolved res;
    int rc = nmi_rx_resolve_gen(dfd, false, &res);
    if (rc) {
        close(dfd);
        return rc;
    }
    r->generation = res.gen;
    r->manifest_valid = res.manifest_ok;
    if (r->manifest_present && !res.manifest_ok && !r->manifest_error[0]) {
        snprintf(r->manifest_error, sizeof(r->manifest_error),
                 "names a generation that is missing or incomplete");
    }
    r->quarantined = count_quarantined(dfd);
    gen_fds g;
    rc = fds_open(dfd, res.gen, &g);
    if (rc) {
        close(dfd);
        return rc;
    }
    nmi_rx_scan s = {
        .idx_fd = g.fd[0],
        .dat_fd = g.fd[1],
        .ts_fd = g.fd[2],
    };
    rc = nmi_rx_scan_run(&s, NULL, NULL);
    /* A writer in another process may have been mid-record while later
     * records landed before the scan looked past it: look again before
     * calling it corruption. */
    for (int retry = 0; !rc && s.end == NMI_RX_END_CORRUPT && retry < 3;
         retry++) {
        nmi_sleep_ns(5000000);
        rc = nmi_rx_scan_run(&s, NULL, NULL);
    }
    fds_close(&g);
    close(dfd);
    if (rc) {
        return rc;
    }
    r->idx_bytes = s.idx_size;
    r->dat_bytes = s.dat_size;
    r->ts_bytes = s.ts_size;
    r->records = s.nrec;
    r->first_seq = s.first_seq;
    r->ts_missing = s.ts_filled;
    r->end = (nm_redex_end)s.end;
    r->dropped = s.dropped;
    snprintf(r->detail, sizeof(r->detail), "%s", s.why);
    return NM_OK;
}

struct nm_redex_reader {
    int dfd;
    uint32_t gen;
    bool have_gen;
    gen_fds g;
    bool live;
    uint64_t pos;
    /* resume state for the current generation */
    uint64_t nrec, first_seq, dat_end, last_ts;
};

int
nm_redex_reader_open(const char *channel_dir, uint64_t from_seq, bool live,
                     nm_redex_reader **out)
{
    if (!channel_dir || !out) {
        return nmi_err(NM_EINVAL, "channel_dir and out must not be NULL");
    }
    *out = NULL;
    nm_redex_reader *r = calloc(1, sizeof(*r));
    if (!r) {
        return nmi_err(NM_ENOMEM, "reader");
    }
    r->dfd = open(channel_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (r->dfd < 0) {
        int e = errno;
        free(r);
        return nmi_err(e == ENOENT ? NM_ENOTFOUND : NM_EIO, "open %s: %s",
                       channel_dir, strerror(e));
    }
    for (int i = 0; i < 3; i++) {
        r->g.fd[i] = -1;
    }
    r->live = live;
    r->pos = from_seq;
    nmi_rx_resolved res;
    int rc = nmi_rx_resolve_gen(r->dfd, false, &res);
    if (rc) {
        close(r->dfd);
        free(r);
        return rc;
    }
    *out = r;
    return NM_OK;
}

typedef struct poll_ctx {
    nm_redex_reader *r;
    nm_redex_record_fn fn;
    void *ctx;
    int64_t n;
} poll_ctx;

static int
poll_cb(void *arg, const nmi_rx_scan_rec *sr)
{
    poll_ctx *p = arg;
    if (sr->rec.seq < p->r->pos) {
        return NM_OK;
    }
    uint8_t inl[9];
    nm_redex_event ev = {
        .seq = sr->rec.seq,
        .timestamp_ns = sr->ts,
        .flags = sr->rec.fc & NMI_RX_FLAG_MASK,
        .checksum = sr->rec.fc & NMI_RX_CKSUM_MASK,
        .payload = sr->payload,
        .len = sr->paylen,
    };
    if (sr->paylen == 0 || !sr->payload) {
        inl[0] = '\0';
        ev.payload = inl;
    }
    int rc = p->fn ? p->fn(p->ctx, &ev) : 0;
    if (rc) {
        return rc;
    }
    p->r->pos = sr->rec.seq + 1;
    p->n++;
    return NM_OK;
}

int64_t
nm_redex_reader_poll(nm_redex_reader *r, nm_redex_record_fn fn, void *ctx)
{
    if (!r) {
        return nmi_err(NM_EINVAL, "reader is NULL");
    }
    nmi_rx_resolved res;
    int rc = nmi_rx_resolve_gen(r->dfd, false, &res);
    if (rc) {
        return rc;
    }
    if (!r->have_gen || res.gen != r->gen) {
        /* First poll, or the writer compacted: start over in the new
         * generation (seqs below pos are skipped). */
        fds_close(&r->g);
        rc = fds_open(r->dfd, res.gen, &r->g);
        if (rc) {
            return rc;
        }
        r->gen = res.gen;
        r->have_gen = true;
        r->nrec = r->first_seq = r->dat_end = r->last_ts = 0;
    }
    nmi_rx_scan s = {
        .idx_fd = r->g.fd[0],
        .dat_fd = r->g.fd[1],
        .ts_fd = r->g.fd[2],
        .want_payload = true,
        .ts_required = r->live,
        .resume_nrec = r->nrec,
        .resume_first_seq = r->first_seq,
        .resume_dat_end = r->dat_end,
        .resume_last_ts = r->last_ts,
    };
    poll_ctx p = {.r = r, .fn = fn, .ctx = ctx};
    rc = nmi_rx_scan_run(&s, poll_cb, &p);
    /* A live writer may have been storing the record we saw half-written
     * while later records landed before we looked past it: that reads as
     * corruption once. Look again before calling it that. */
    for (int retry = 0;
         r->live && !rc && s.end == NMI_RX_END_CORRUPT && retry < 5; retry++) {
        nmi_sleep_ns(5000000);
        s.resume_nrec = s.nrec;
        s.resume_first_seq = s.first_seq;
        s.resume_dat_end = s.dat_end;
        s.resume_last_ts = s.last_ts;
        rc = nmi_rx_scan_run(&s, poll_cb, &p);
    }
    if (s.nrec >= r->nrec) {
        r->nrec = s.nrec;
        r->first_seq = s.first_seq;
        r->dat_end = s.dat_end;
        r->last_ts = s.last_ts;
    }
    if (rc) {
        return rc;
    }
    if (s.end == NMI_RX_END_CORRUPT) {
        return nmi_err(NM_EDECODE, "%s", s.why);
    }
    return p.n;
}

uint64_t
nm_redex_reader_position(const nm_redex_reader *r)
{
    return r ? r->pos : 0;
}

void
nm_redex_reader_close(nm_redex_reader *r)
{
    if (!r) {
        return;
    }
    fds_close(&r->g);
    close(r->dfd);
    free(r);
}
