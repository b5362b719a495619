/* tests/fuzz/fuzz_redex_idx.c - the RedEX index record codec and the
 * generation validator that parses idx/dat/ts bytes from disk (recovery,
 * `netmesh log check|dump|tail`).
 *
 * Input: [flags u8][idx_len u16 LE][dat_len u16 LE][idx][dat][ts = rest].
 * flags bit 0: ts_required (a live reader), bit 1: want_payload.
 *
 * Invariants: never crash; every 20 bytes decode and re-encode to
 * themselves; the valid prefix lies inside the files; every record handed
 * to the callback has the next seq, a contiguous payload offset and a
 * payload that matches its checksum; a scan resumed from the middle of
 * the valid prefix ends exactly like the full scan. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "redex/redex_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct ctx {
    uint64_t n, next_seq, dat_end;
    bool want_payload;
    /* state after record `mid` - 1, to resume from */
    uint64_t mid, mid_dat, mid_ts, first_seq;
} ctx;

static int
cb(void *arg, const nmi_rx_scan_rec *r)
{
    ctx *x = arg;
    if (x->n > 0 && r->rec.seq != x->next_seq) {
        abort();
    }
    if (r->index != x->n || r->off64 != x->dat_end) {
        abort();
    }
    if (!(r->rec.fc & NM_REDEX_FLAG_INLINE) &&
        r->rec.off != (uint32_t)r->off64) {
        abort();
    }
    if (x->want_payload && r->payload &&
        nmi_rx_checksum(r->payload, r->paylen) !=
            (r->rec.fc & NMI_RX_CKSUM_MASK)) {
        abort();
    }
    if (x->n == 0) {
        x->first_seq = r->rec.seq;
    }
    x->n++;
    x->next_seq = r->rec.seq + 1;
    x->dat_end += nmi_rx_rec_datlen(&r->rec);
    if (x->n == x->mid) {
        x->mid_dat = x->dat_end;
        x->mid_ts = r->ts;
    }
    return NM_OK;
}

static int
memfile(const uint8_t *p, size_t n)
{
    int fd = memfd_create("fz", MFD_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    if (n && write(fd, p, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    return fd;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + NMI_RX_REC <= size && i < 200; i += NMI_RX_REC) {
        nmi_rx_rec r;
        uint8_t back[NMI_RX_REC];
        nmi_rx_rec_decode(data + i, &r);
        nmi_rx_rec_encode(&r, back);
        if (memcmp(back, data + i, NMI_RX_REC) != 0) {
            abort();
        }
    }
    if (size < 5) {
        return 0;
    }
    uint8_t flags = data[0];
    size_t il = data[1] | (size_t)data[2] << 8;
    size_t dl = data[3] | (size_t)data[4] << 8;
    const uint8_t *p = data + 5;
    size_t left = size - 5;
    if (il > left) {
        il = left;
    }
    left -= il;
    if (dl > left) {
        dl = left;
    }
    left -= dl;
    int fi = memfile(p, il), fd = memfile(p + il, dl),
        ft = memfile(p + il + dl, left);
    if (fi < 0 || fd < 0 || ft < 0) {
        abort();
    }
    nmi_rx_scan s = {
        .idx_fd = fi,
        .dat_fd = fd,
        .ts_fd = ft,
        .ts_required = flags & 1,
        .want_payload = (flags & 2) != 0,
        .fill_ts = 12345,
    };
    ctx x = {.want_payload = s.want_payload, .mid = (il / NMI_RX_REC) / 2};
    int rc = nmi_rx_scan_run(&s, cb, &x);
    if (rc == NM_OK) {
        if (s.nrec * NMI_RX_REC > s.idx_size || s.dat_end > s.dat_size ||
            (unsigned)s.end > NMI_RX_END_CORRUPT) {
            abort();
        }
        /* everything valid was delivered (a held-back last one is not
         * counted in nrec either) */
        if (x.n != s.nrec || (s.nrec && s.first_seq != x.first_seq)) {
            abort();
        }
        if (s.end != NMI_RX_END_CLEAN && s.why[0] == '\0') {
            abort();
        }
        if (x.mid > 0 && x.mid < s.nrec) {
            nmi_rx_scan s2 = s;
            s2.resume_nrec = x.mid;
            s2.resume_first_seq = s.first_seq;
            s2.resume_dat_end = x.mid_dat;
            s2.resume_last_ts = x.mid_ts;
            if (nmi_rx_scan_run(&s2, NULL, NULL) != NM_OK ||
                s2.nrec != s.nrec || s2.dat_end != s.dat_end ||
                s2.end != s.end || s2.last_ts != s.last_ts) {
                abort();
            }
        }
    }
    close(fi);
    close(fd);
    close(ft);
    return 0;
}
