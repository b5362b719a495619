/*
 * src/redex/scan.c - validate one generation's idx/dat/ts, read-only.
 *
 * Record i is valid when all of these hold (docs/storage.md, "Recovery"):
 *   - its 20 bytes are present and not all zero;
 *   - no flag bit outside INLINE|TOMBSTONE|COMPACTED is set;
 *   - i > 0: seq == previous seq + 1 (record 0's seq is taken as given);
 *   - heap: payload_offset == the end of the previous heap payload (mod
 *     2^32: dat is the payloads back to back, from 0), payload_len <=
 *     NM_REDEX_MAX_PAYLOAD, and the payload lies inside dat;
 *   - the checksum matches the payload (inline: the 8 inline bytes).
 * The log is the longest valid prefix: nothing after the first invalid
 * record survives, even if it would pass on its own.
 *
 * How the prefix ends:
 *   CLEAN   the rest of idx is absent or all zero (a writer's preallocated
 *           slack);
 *   TORN    an invalid or partial last record followed only by zeros,
 *           where the file has slack after it (a writer killed while
 *           storing it), or whose payload runs past the end of dat, or a
 *           partial trailing record;
 *   CORRUPT an invalid record followed by non-zero data, or an invalid
 *           complete record exactly at the end of an exact-size idx (no
 *           writer leaves that behind).
 * A missing timestamp (past the end of ts, or 0) does not invalidate a
 * record: it is replaced by the previous record's (or fill_ts). With
 * ts_required (a reader following a live writer), a LAST valid record
 * without its timestamp is held back: the writer may be between idx and
 * ts.
 */
#define _GNU_SOURCE
#include "redex/redex_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IDX_CHUNK_RECS 3276u /* 65,520 bytes */
#define DAT_WINDOW (1u << 20)

static bool
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            return false;
        }
    }
    return true;
}

static int
fsize(int fd, uint64_t *out)
{
    *out = 0;
    if (fd < 0) {
        return NM_OK;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return nmi_err(NM_EIO, "fstat: %s", strerror(errno));
    }
    *out = (uint64_t)st.st_size;
    return NM_OK;
}

/* Look at idx after record `bad`: are the remaining bytes all zero, and
 * how many complete non-zero records are there? */
static int
inspect_rest(const nmi_rx_scan *s, uint64_t from, bool *zero,
             uint64_t *nonzero_recs)
{
    *zero = true;
    *nonzero_recs = 0;
    uint8_t buf[409 * NMI_RX_REC]; /* 8,180 bytes */
    uint64_t off = from;
    while (off < s->idx_size) {
        uint64_t n = s->idx_size - off;
        if (n > sizeof(buf)) {
            n = sizeof(buf);
        }
        int rc = nmi_rx_pread_full(s->idx_fd, buf, (size_t)n, off);
        if (rc) {
            return rc;
        }
        /* off stays a multiple of 20 from `from`, which is one. */
        for (uint64_t k = 0; k + NMI_RX_REC <= n; k += NMI_RX_REC) {
            if (!all_zero(buf + k, NMI_RX_REC)) {
                *zero = false;
                (*nonzero_recs)++;
            }
        }
        if (n % NMI_RX_REC &&
            !all_zero(buf + n - n % NMI_RX_REC, (size_t)(n % NMI_RX_REC))) {
            *zero = false;
        }
        off += n;
    }
    return NM_OK;
}

typedef struct dat_win {
    uint8_t *buf;
    size_t cap;
    uint64_t off, len;
} dat_win;

/* Bytes [off, off+len) of dat (inside dat_size), via the window. */
static int
dat_get(nmi_rx_scan *s, dat_win *w, uint64_t off, uint32_t len,
        const uint8_t **out)
{
    if (off >= w->off && off + len <= w->off + w->len) {
        *out = w->buf + (off - w->off);
        return NM_OK;
    }
    uint64_t rest = s->dat_size - off; /* >= len */
    size_t want = rest < DAT_WINDOW ? (size_t)rest : DAT_WINDOW;
    if (want < len) {
        want = len;
    }
    if (want > w->cap) {
        uint8_t *nb = realloc(w->buf, want);
        if (!nb) {
            return nmi_err(NM_ENOMEM, "scan buffer of %zu bytes", want);
        }
        w->buf = nb;
        w->cap = want;
    }
    uint64_t n = s->dat_size - off;
    if (n > w->cap) {
        n = w->cap;
    }
    int rc = nmi_rx_pread_full(s->dat_fd, w->buf, (size_t)n, off);
    if (rc) {
        return rc;
    }
    w->off = off;
    w->len = n;
    *out = w->buf;
    return NM_OK;
}

int
nmi_rx_scan_run(nmi_rx_scan *s, nmi_rx_scan_cb cb, void *ctx)
{
    int rc = fsize(s->idx_fd, &s->idx_size);
    if (!rc) {
        rc = fsize(s->dat_fd, &s->dat_size);
    }
    if (!rc) {
        rc = fsize(s->ts_fd, &s->ts_size);
    }
    if (rc) {
        return rc;
    }
    s->nrec = s->first_seq = s->last_ts = s->dat_end = s->ts_filled = 0;
    s->end = NMI_RX_END_CLEAN;
    s->dropped = 0;
    s->why[0] = '\0';

    uint64_t nfull = s->idx_size / NMI_RX_REC;
    size_t chunk_recs =
        nfull < IDX_CHUNK_RECS ? (size_t)nfull + 1 : IDX_CHUNK_RECS;
    uint8_t *ibuf = malloc(chunk_recs * NMI_RX_REC);
    uint8_t *tbuf = malloc(chunk_recs * NMI_RX_TS);
    dat_win w = {0};
    struct {
        bool held;
        nmi_rx_scan_rec sr;
        uint64_t dat_end, prev_ts;
        uint8_t *buf;
        size_t cap;
    } pend = {0};
    if (!ibuf || !tbuf) {
        free(ibuf);
        free(tbuf);
        return nmi_err(NM_ENOMEM, "scan buffers");
    }
    uint64_t chunk_first = 0, chunk_n = 0, tchunk_n = 0;
    uint64_t i = 0, dat_end = 0, prev_seq = 0, prev_ts = 0;
    bool stopped = false;
    if (s->resume_nrec > 0 && s->resume_nrec <= nfull) {
        i = chunk_first = s->resume_nrec;
        dat_end = s->resume_dat_end;
        prev_seq = s->resume_first_seq + s->resume_nrec - 1;
        prev_ts = s->resume_last_ts;
        s->first_seq = s->resume_first_seq;
    }

    while (i < nfull) {
        if (i >= chunk_first + chunk_n) {
            chunk_first = i;
            chunk_n = nfull - i < IDX_CHUNK_RECS ? nfull - i : IDX_CHUNK_RECS;
            rc = nmi_rx_pread_full(s->idx_fd, ibuf,
                                   (size_t)(chunk_n * NMI_RX_REC),
                                   i * NMI_RX_REC);
            if (rc) {
                goto out;
            }
            /* ts entries present for this chunk. */
            tchunk_n = 0;
            if (s->ts_size > i * NMI_RX_TS) {
                tchunk_n = (s->ts_size - i * NMI_RX_TS) / NMI_RX_TS;
                if (tchunk_n > chunk_n) {
                    tchunk_n = chunk_n;
                }
                if (tchunk_n) {
                    rc = nmi_rx_pread_full(s->ts_fd, tbuf,
                                           (size_t)(tchunk_n * NMI_RX_TS),
                                           i * NMI_RX_TS);
                    if (rc) {
                        goto out;
                    }
                }
            }
        }
        const uint8_t *rb = ibuf + (i - chunk_first) * NMI_RX_REC;
        bool zero_after;
        uint64_t nz;
        if (all_zero(rb, NMI_RX_REC)) {
            rc = inspect_rest(s, (i + 1) * NMI_RX_REC, &zero_after, &nz);
            if (rc) {
                goto out;
            }
            if (!zero_after) {
                s->end = NMI_RX_END_CORRUPT;
                s->dropped = nz;
                snprintf(s->why, sizeof(s->why),
                         "record %llu (idx offset %llu) is all zero but %llu "
                         "non-zero records follow",
                         (unsigned long long)i,
                         (unsigned long long)(i * NMI_RX_REC),
                         (unsigned long long)nz);
            }
            stopped = true;
            break;
        }
        nmi_rx_rec r;
        nmi_rx_rec_decode(rb, &r);
        char why[160] = "";
        bool dat_short = false;
        bool is_inline = (r.fc & NM_REDEX_FLAG_INLINE) != 0;
        const uint8_t *payload = NULL;
        uint8_t inl[8];
        if (r.fc & NMI_RX_FLAG_MASK & ~NMI_RX_FLAGS_KNOWN) {
            snprintf(why, sizeof(why), "unknown flag bits 0x%08x",
                     r.fc & NMI_RX_FLAG_MASK);
        } else if (i > 0 && r.seq != prev_seq + 1) {
            snprintf(why, sizeof(why), "seq %llu, expected %llu",
                     (unsigned long long)r.seq,
                     (unsigned long long)(prev_seq + 1));
        } else if (!is_inline && r.off != (uint32_t)dat_end) {
            snprintf(why, sizeof(why),
                     "payload offset %u, expected %u (end of the previous "
                     "payload)",
                     r.off, (uint32_t)dat_end);
        } else if (!is_inline && r.len > NM_REDEX_MAX_PAYLOAD) {
            snprintf(why, sizeof(why), "payload length %u is too large",
                     r.len);
        } else if (!is_inline && dat_end + r.len > s->dat_size) {
            dat_short = true;
            snprintf(why, sizeof(why),
                     "payload [%llu, %llu) runs past the end of dat (%llu "
                     "bytes)",
                     (unsigned long long)dat_end,
                     (unsigned long long)(dat_end + r.len),
                     (unsigned long long)s->dat_size);
        } else {
            if (is_inline) {
                nmi_rx_rec_inline(&r, inl);
                payload = inl;
            } else if (r.len == 0) {
                payload = inl;
            } else {
                rc = dat_get(s, &w, dat_end, r.len, &payload);
                if (rc) {
                    goto out;
                }
            }
            uint32_t want = nmi_rx_checksum(payload, nmi_rx_rec_paylen(&r));
            if ((r.fc & NMI_RX_CKSUM_MASK) != want) {
                snprintf(why, sizeof(why),
                         "checksum mismatch: stored 0x%07x, payload hashes "
                         "to 0x%07x",
                         r.fc & NMI_RX_CKSUM_MASK, want);
            }
        }
        if (why[0]) {
            rc = inspect_rest(s, (i + 1) * NMI_RX_REC, &zero_after, &nz);
            if (rc) {
                goto out;
            }
            bool slack = s->idx_size > (i + 1) * NMI_RX_REC;
            if (!zero_after) {
                s->end = NMI_RX_END_CORRUPT;
                s->dropped = nz;
            } else if (slack || dat_short) {
                s->end = NMI_RX_END_TORN;
            } else {
                s->end = NMI_RX_END_CORRUPT;
            }
            snprintf(s->why, sizeof(s->why),
                     "record %llu (seq %llu, idx offset %llu): %s",
                     (unsigned long long)i,
                     (unsigned long long)(i ? prev_seq + 1 : r.seq),
                     (unsigned long long)(i * NMI_RX_REC), why);
            stopped = true;
            break;
        }
        /* Timestamp. */
        uint64_t ts = 0;
        bool ts_missing = true;
        if (i - chunk_first < tchunk_n) {
            ts = nmi_load_le64(tbuf + (i - chunk_first) * NMI_RX_TS);
            ts_missing = ts == 0;
        }
        if (ts_missing) {
            ts = i == 0 ? s->fill_ts : prev_ts;
            s->ts_filled++;
        }
        /* A held-back record is complete once a later one is valid. */
        if (pend.held) {
            pend.held = false;
            if (cb && pend.sr.index >= s->from_index) {
                pend.sr.payload = s->want_payload ? pend.buf : NULL;
                rc = cb(ctx, &pend.sr);
                if (rc) {
                    s->nrec = pend.sr.index;
                    dat_end = pend.dat_end;
                    prev_ts = pend.prev_ts;
                    goto out_cb;
                }
            }
        }
        nmi_rx_scan_rec sr = {
            .index = i,
            .off64 = dat_end,
            .ts = ts,
            .ts_missing = ts_missing,
            .rec = r,
            .payload = s->want_payload ? payload : NULL,
            .paylen = nmi_rx_rec_paylen(&r),
        };
        if (ts_missing && s->ts_required) {
            /* Maybe a writer is between idx and ts: hold it back. */
            if (s->want_payload && sr.paylen > pend.cap) {
                uint8_t *nb = realloc(pend.buf, sr.paylen);
                if (!nb) {
                    rc = nmi_err(NM_ENOMEM, "scan buffer");
                    goto out;
                }
                pend.buf = nb;
                pend.cap = sr.paylen;
            }
            if (s->want_payload && sr.paylen) {
                memcpy(pend.buf, payload, sr.paylen);
            }
            pend.sr = sr;
            pend.dat_end = dat_end;
            pend.prev_ts = prev_ts;
            pend.held = true;
        } else if (cb && i >= s->from_index) {
            rc = cb(ctx, &sr);
            if (rc) {
                s->nrec = i;
                goto out_cb;
            }
        }
        if (i == 0) {
            s->first_seq = r.seq;
        }
        prev_seq = r.seq;
        prev_ts = ts;
        dat_end += nmi_rx_rec_datlen(&r);
        i++;
    }
    if (!stopped && s->idx_size % NMI_RX_REC) {
        size_t rem = (size_t)(s->idx_size % NMI_RX_REC);
        uint8_t tail[NMI_RX_REC];
        rc = nmi_rx_pread_full(s->idx_fd, tail, rem, nfull * NMI_RX_REC);
        if (rc) {
            goto out;
        }
        if (!all_zero(tail, rem)) {
            s->end = NMI_RX_END_TORN;
            snprintf(s->why, sizeof(s->why),
                     "a partial record of %zu bytes ends idx (offset %llu)",
                     rem, (unsigned long long)(nfull * NMI_RX_REC));
        }
    }
    s->nrec = i;
    if (pend.held) {
        /* The last record's timestamp is not written yet: not visible. */
        s->nrec = pend.sr.index;
        dat_end = pend.dat_end;
        prev_ts = pend.prev_ts;
        s->ts_filled--;
    }
out_cb:
    s->dat_end = dat_end;
    s->last_ts = prev_ts;
out:
    free(ibuf);
    free(tbuf);
    free(w.buf);
    free(pend.buf);
    return rc;
}
