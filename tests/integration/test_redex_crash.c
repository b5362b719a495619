/*
 * tests/integration/test_redex_crash.c - kill -9 torture for persistent
 * RedEX logs.
 *
 * A forked child appends to one persistent log - with fsync "Always"
 * (EveryN(1): append returns once durable), or with EveryN(64) and
 * explicit nm_redex_sync points - and reports every acknowledged seq
 * over a pipe (Always: each append; EveryN: everything below the sync
 * point). The parent SIGKILLs it at a random moment (after a random
 * number of acks plus a random delay), then checks offline
 * (nm_redex_check) and by reopening that:
 *   - no corruption is reported (a torn tail is fine: it is a crash);
 *   - every acknowledged record is present and intact;
 *   - the log is dense and every surviving record, acknowledged or not,
 *     is exactly what the child wrote for that seq (nothing torn or
 *     stale survives after a gap).
 * The next child continues the same log, so recovery is exercised again
 * and again on a log that keeps growing.
 *
 * 200 iterations per mode by default; NM_TORTURE_ITERATIONS=N runs N per
 * mode, NM_TORTURE_SEED=S replays a run (the seed is printed on failure
 * and at the start).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netmesh/redex.h>

#define CHANNEL "torture/log"

static uint64_t
mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* What the child writes for `seq`: inline (8 bytes) for 1 in 8 seqs,
 * else 0..299 bytes, all derived from seq. */
static bool
is_inline(uint64_t seq)
{
    return mix(seq) % 8 == 0;
}

static size_t
content(uint64_t seq, uint8_t *out)
{
    size_t len = is_inline(seq) ? 8 : (size_t)(mix(seq ^ 0xabcdef) % 300);
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = mix((seq << 16) ^ i);
        size_t k = len - i < 8 ? len - i : 8;
        memcpy(out + i, &v, k);
    }
    return len;
}

typedef struct prng {
    uint64_t s;
} prng;

static uint64_t
rnd(prng *p, uint64_t n)
{
    p->s = mix(p->s);
    return n ? p->s % n : 0;
}

/* ------------------------------------------------------------- child */

static void
ack(int fd, uint64_t seq_plus_one)
{
    ssize_t r;
    do {
        r = write(fd, &seq_plus_one, sizeof(seq_plus_one));
    } while (r < 0 && errno == EINTR);
    if (r != sizeof(seq_plus_one)) {
        _exit(3);
    }
}

static void
die(const char *what, int rc)
{
    fprintf(stderr, "torture child: %s: %s (%s)\n", what, nm_err_name(rc),
            nm_errdetail());
    _exit(2);
}

static void
child(const char *dir, bool always, uint64_t seed, int wfd)
{
    prng p = {seed};
    nm_redex_config rc;
    nm_redex_config_init(&rc);
    rc.dir = dir;
    nm_redex *rx;
    int r = nm_redex_open(&rc, &rx);
    if (r) {
        die("open manager", r);
    }
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.persistent = true;
    c.fsync = NM_REDEX_FSYNC_EVERY_N;
    c.fsync_every_n = always ? 1 : 64;
    c.max_memory_bytes = 1 + rnd(&p, 16384); /* small windows too */
    nm_redex_file *f;
    r = nm_redex_open_file(rx, CHANNEL, &c, &f);
    if (r) {
        die("open file", r);
    }
    uint64_t next;
    nm_redex_next_seq(f, &next);
    uint64_t sync_every = 1 + rnd(&p, 100);
    uint64_t since_sync = 0;
    static uint8_t buf[8][320];
    for (;;) {
        /* one record, or a batch of up to 5 heap records */
        uint64_t s;
        uint64_t n = 1;
        if (is_inline(next)) {
            content(next, buf[0]);
            r = nm_redex_append_inline(f, buf[0], &s);
        } else if (rnd(&p, 8) == 0) {
            const void *pp[5];
            size_t ll[5];
            n = 0;
            while (n < 1 + rnd(&p, 5) && !is_inline(next + n)) {
                ll[n] = content(next + n, buf[n]);
                pp[n] = buf[n];
                n++;
            }
            r = nm_redex_append_batch(f, pp, ll, n, &s);
        } else {
            size_t len = content(next, buf[0]);
            r = nm_redex_append(f, buf[0], len, &s);
        }
        if (r) {
            die("append", r);
        }
        if (s != next) {
            fprintf(stderr, "torture child: seq %llu, expected %llu\n",
                    (unsigned long long)s, (unsigned long long)next);
            _exit(2);
        }
        next += n;
        if (always) {
            ack(wfd, next); /* durable on return */
        } else if ((since_sync += n) >= sync_every) {
            r = nm_redex_sync(f);
            if (r) {
                die("sync", r);
            }
            ack(wfd, next);
            since_sync = 0;
            sync_every = 1 + rnd(&p, 100);
        }
    }
}

/* ------------------------------------------------------------ parent */

static uint64_t
seed_from_env(void)
{
    const char *s = getenv("NM_TORTURE_SEED");
    if (s && *s) {
        return strtoull(s, NULL, 0);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
               (uint64_t)getpid());
}

static int
iterations(void)
{
    const char *s = getenv("NM_TORTURE_ITERATIONS");
    if (s && *s) {
        int n = atoi(s);
        return n > 0 ? n : 200;
    }
    return 200;
}

/* Read acks until `want` arrived, the child ended, or ~10 s passed. */
static void
read_acks(int rfd, uint64_t *acked, uint64_t want, uint64_t *count)
{
    while (*count < want) {
        struct pollfd pf = {.fd = rfd, .events = POLLIN};
        int r = poll(&pf, 1, 10000);
        if (r <= 0) {
            return;
        }
        uint64_t v;
        ssize_t n = read(rfd, &v, sizeof(v));
        if (n != sizeof(v)) {
            return; /* EOF: the child is gone */
        }
        if (v > *acked) {
            *acked = v;
        }
        (*count)++;
    }
}

static void
verify(const char *dir, uint64_t acked, uint64_t seed, int it, bool always,
       uint64_t *next_out, uint64_t *torn)
{
    const char *mode = always ? "Always" : "EveryN(64)+sync";
    char cdir[512];
    snprintf(cdir, sizeof(cdir), "%s/%s", dir, CHANNEL);
    nm_redex_check_report cr;
    int rc = nm_redex_check(cdir, &cr);
    if (rc == NM_ENOTFOUND && acked == 0) {
        *next_out = 0; /* killed before the channel existed */
        return;
    }
    cr_assert_eq(rc, NM_OK, "seed %llu it %d (%s): check: %s (%s)",
                 (unsigned long long)seed, it, mode, nm_err_name(rc),
                 nm_errdetail());
    cr_assert_neq(cr.end, NM_REDEX_END_CORRUPT,
                  "seed %llu it %d (%s): check reports corruption: %s",
                  (unsigned long long)seed, it, mode, cr.detail);
    *torn += cr.end == NM_REDEX_END_TORN;
    cr_assert(!cr.manifest_present || cr.manifest_valid,
              "seed %llu it %d (%s): manifest: %s", (unsigned long long)seed,
              it, mode, cr.manifest_error);

    nm_redex_config rcfg;
    nm_redex_config_init(&rcfg);
    rcfg.dir = dir;
    nm_redex *rx;
    cr_assert_eq(nm_redex_open(&rcfg, &rx), NM_OK);
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.persistent = true;
    nm_redex_file *f;
    rc = nm_redex_open_file(rx, CHANNEL, &c, &f);
    cr_assert_eq(rc, NM_OK, "seed %llu it %d (%s): reopen: %s (%s)",
                 (unsigned long long)seed, it, mode, nm_err_name(rc),
                 nm_errdetail());
    nm_redex_file_stats st;
    cr_assert_eq(nm_redex_file_stats_get(f, &st), NM_OK);
    cr_assert(!st.recovery_corrupt,
              "seed %llu it %d (%s): recovery reports corruption",
              (unsigned long long)seed, it, mode);
    cr_assert_eq(st.lowest_seq, 0);
    cr_assert_geq(st.next_seq, acked,
                  "seed %llu it %d (%s): acknowledged seq %llu lost (log "
                  "ends at %llu)",
                  (unsigned long long)seed, it, mode,
                  (unsigned long long)(acked - 1),
                  (unsigned long long)st.next_seq);
    cr_assert_eq(st.next_seq, cr.records,
                 "seed %llu it %d: check and recovery disagree",
                 (unsigned long long)seed, it);
    /* Every record, acknowledged or not, is exactly what was written. */
    static uint8_t want[320];
    for (uint64_t from = 0; from < st.next_seq;) {
        nm_redex_batch b;
        rc = nm_redex_read_range(f, from, st.next_seq, 4096, &b);
        cr_assert_eq(rc, NM_OK, "seed %llu it %d: read: %s (%s)",
                     (unsigned long long)seed, it, nm_err_name(rc),
                     nm_errdetail());
        for (size_t i = 0; i < b.count; i++) {
            const nm_redex_event *e = &b.events[i];
            cr_assert_eq(e->seq, from + i);
            size_t len = content(e->seq, want);
            cr_assert(e->len == len && memcmp(e->payload, want, len) == 0,
                      "seed %llu it %d (%s): record %llu is not what was "
                      "written (%s)",
                      (unsigned long long)seed, it, mode,
                      (unsigned long long)e->seq,
                      e->seq < acked ? "acknowledged" : "unacknowledged");
            cr_assert_eq(!!(e->flags & NM_REDEX_FLAG_INLINE),
                         is_inline(e->seq));
        }
        from = b.next_seq;
        nm_redex_batch_free(&b);
    }
    *next_out = st.next_seq;
    nm_redex_close(rx); /* no threads left before the next fork */
}

static void
torture(bool always)
{
    uint64_t seed = seed_from_env() ^ (always ? 0 : 0x5555);
    int iters = iterations();
    char dir[] = "/tmp/nm_redex_crash_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    fprintf(stderr, "redex crash torture (%s): seed %llu, %d iterations\n",
            always ? "Always" : "EveryN(64)+sync", (unsigned long long)seed,
            iters);
    prng p = {seed};
    uint64_t acked = 0, extra = 0, torn = 0;
    for (int it = 0; it < iters; it++) {
        int pfd[2];
        cr_assert_eq(pipe(pfd), 0);
        uint64_t child_seed = rnd(&p, UINT64_MAX);
        fflush(stderr);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(pfd[0]);
            child(dir, always, child_seed, pfd[1]);
            _exit(0);
        }
        close(pfd[1]);
        /* The kill moment: after 0..6 acks, then 0..3 ms more. */
        uint64_t want = rnd(&p, 7), got = 0;
        read_acks(pfd[0], &acked, want, &got);
        struct timespec d = {0, (long)rnd(&p, 3000000)};
        nanosleep(&d, NULL);
        kill(pid, SIGKILL);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "seed %llu it %d: the child failed on its own (status "
                  "%d)",
                  (unsigned long long)seed, it, st);
        /* Acks written before the kill count too. */
        read_acks(pfd[0], &acked, UINT64_MAX, &got);
        close(pfd[0]);
        uint64_t next = 0;
        verify(dir, acked, seed, it, always, &next, &torn);
        extra += next > acked ? 1 : 0;
    }
    fprintf(stderr,
            "redex crash torture (%s): %d kills, %llu records acknowledged; "
            "%llu kills left unacknowledged records that survived intact, "
            "%llu left a torn last record (cut)\n",
            always ? "Always" : "EveryN(64)+sync", iters,
            (unsigned long long)acked, (unsigned long long)extra,
            (unsigned long long)torn);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(redex_crash, kill9_with_fsync_always, .timeout = 240)
{
    torture(true);
}

Test(redex_crash, kill9_with_every_n_and_sync_points, .timeout = 240)
{
    torture(false);
}
