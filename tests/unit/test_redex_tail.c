/*
 * tests/unit/test_redex_tail.c - tails: backfill + live as one gap-free
 * sequence, live-only and future starts, Lagged when history was evicted
 * (asked for or fallen behind), Closed on tail/file/manager close with a
 * blocked reader, the readiness fd, small buffers, tails over a
 * persistent log read back from disk; no lost wake-up when a caught-up
 * reader watches the log before it sleeps (bursts with pauses around the
 * watch window, blocking and fd-polling readers, cancel and close while
 * it watches).
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netmesh/redex.h>

#include "bus_helpers.h"
#include "redex/redex_impl.h"

static char tmpdir[128];

static void
mktmp(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nm_redex_tail_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void
rmtmp(void)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

static nm_redex_file *
open_mem(nm_redex **rx, const nm_redex_file_config *c)
{
    NM_ASSERT_OK(nm_redex_open(NULL, rx));
    nm_redex_file *f;
    NM_ASSERT_OK(nm_redex_open_file(*rx, "t", c, &f));
    return f;
}

static void
put_n(nm_redex_file *f, int from, int to)
{
    char b[32];
    for (int i = from; i < to; i++) {
        int n = snprintf(b, sizeof(b), "e%d", i);
        NM_ASSERT_OK(nm_redex_append(f, b, (size_t)n, NULL));
    }
}

static void
expect_ev(nm_redex_tail *t, uint64_t seq)
{
    nm_redex_event ev;
    NM_ASSERT_OK(nm_redex_tail_next(t, &ev, 5000));
    cr_assert_eq(ev.seq, seq);
    char b[32];
    snprintf(b, sizeof(b), "e%llu", (unsigned long long)seq);
    cr_assert_eq(ev.len, strlen(b));
    cr_assert_eq(memcmp(ev.payload, b, ev.len), 0, "seq %llu",
                 (unsigned long long)seq);
}

static bool
readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

typedef struct prod_arg {
    nm_redex_file *f;
    int from, to;
} prod_arg;

static void *
producer(void *p)
{
    prod_arg *a = p;
    char b[32];
    for (int i = a->from; i < a->to; i++) {
        int n = snprintf(b, sizeof(b), "e%d", i);
        if (nm_redex_append(a->f, b, (size_t)n, NULL)) {
            return (void *)1;
        }
    }
    return NULL;
}

Test(redex_tail, backfill_then_live_no_gap_no_dup)
{
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, NULL);
    put_n(f, 0, 3000);
    nm_redex_tail *t;
    NM_ASSERT_OK(nm_redex_tail_open(f, 0, &t));
    cr_assert_eq(nm_redex_tail_position(t), 0);
    pthread_t th;
    prod_arg pa = {f, 3000, 20000};
    pthread_create(&th, NULL, producer, &pa);
    for (uint64_t s = 0; s < 20000; s++) {
        expect_ev(t, s);
    }
    void *r;
    pthread_join(th, &r);
    cr_assert_null(r);
    nm_redex_event ev;
    NM_ASSERT_ERR(nm_redex_tail_next(t, &ev, 0), NM_ETIMEDOUT);
    cr_assert_eq(nm_redex_tail_position(t), 20000);
    nm_redex_tail_close(t);
    nm_redex_close(rx);
}

Test(redex_tail, live_only_and_future_start)
{
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, NULL);
    put_n(f, 0, 10);
    nm_redex_tail *live, *future;
    NM_ASSERT_OK(nm_redex_tail_open(f, NM_REDEX_TAIL_LIVE, &live));
    NM_ASSERT_OK(nm_redex_tail_open(f, 15, &future));
    cr_assert_eq(nm_redex_tail_position(live), 10);
    nm_redex_event ev;
    NM_ASSERT_ERR(nm_redex_tail_next(live, &ev, 0), NM_ETIMEDOUT);
    NM_ASSERT_ERR(nm_redex_tail_next(future, &ev, 0), NM_ETIMEDOUT);
    put_n(f, 10, 20);
    expect_ev(live, 10);
    expect_ev(future, 15);
    expect_ev(future, 16);
    nm_redex_tail_close(live);
    nm_redex_tail_close(future);
    nm_redex_close(rx);
}

Test(redex_tail, lagged_when_asking_for_evicted_history)
{
    nm_redex *rx;
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_events = 50;
    nm_redex_file *f = open_mem(&rx, &c);
    put_n(f, 0, 100);
    cr_assert_eq(nm_redex_sweep(f), 50);
    nm_redex_tail *t;
    NM_ASSERT_OK(nm_redex_tail_open(f, 10, &t));
    cr_assert(readable(nm_redex_tail_fd(t)));
    nm_redex_event ev;
    NM_ASSERT_ERR(nm_redex_tail_next(t, &ev, 0), NM_ELAGGED);
    cr_assert_eq(ev.seq, 10, "first missed seq");
    cr_assert_null(ev.payload);
    cr_assert_eq(ev.len, 0);
    cr_assert_eq(nm_redex_tail_position(t), 50);
    cr_assert(strstr(nm_errdetail(), "10..49"), "%s", nm_errdetail());
    /* exactly once, then the retained records in order */
    for (uint64_t s = 50; s < 100; s++) {
        expect_ev(t, s);
    }
    NM_ASSERT_ERR(nm_redex_tail_next(t, &ev, 0), NM_ETIMEDOUT);
    nm_redex_tail_close(t);
    nm_redex_close(rx);
}

Test(redex_tail, lagged_when_falling_behind)
{
    nm_redex *rx;
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.retention_max_events = 100;
    c.tail_buffer_size = 8;
    nm_redex_file *f = open_mem(&rx, &c);
    nm_redex_tail *t;
    NM_ASSERT_OK(nm_redex_tail_open(f, 0, &t));
    put_n(f, 0, 20);
    for (uint64_t s = 0; s < 5; s++) {
        expect_ev(t, s); /* buffered 0..7 */
    }
    put_n(f, 20, 1000);
    cr_assert_eq(nm_redex_sweep(f), 900);
    /* the 3 records already in the tail's buffer are still delivered */
    for (uint64_t s = 5; s < 8; s++) {
        expect_ev(t, s);
    }
    nm_redex_event ev;
    NM_ASSERT_ERR(nm_redex_tail_next(t, &ev, 0), NM_ELAGGED);
    cr_assert_eq(ev.seq, 8);
    cr_assert_eq(nm_redex_tail_position(t), 900);
    for (uint64_t s = 900; s < 1000; s++) {
        expect_ev(t, s);
    }
    nm_redex_tail_close(t);
    nm_redex_close(rx);
}

typedef struct blocked_arg {
    nm_redex_tail *t;
    int rc;
} blocked_arg;

static void *
blocked_reader(void *p)
{
    blocked_arg *a = p;
    nm_redex_event ev;
    a->rc = nm_redex_tail_next(a->t, &ev, -1);
    return NULL;
}

Test(redex_tail, file_close_wakes_blocked_reader)
{
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, NULL);
    nm_redex_tail *t;
    NM_ASSERT_OK(nm_redex_tail_open(f, NM_REDEX_TAIL_LIVE, &t));
    blocked_arg a = {t, 1};
    pthread_t th;
    pthread_create(&th, NULL, blocked_reader, &a);
    NM_ASSERT_OK(nm_redex_file_close(f));
    pthread_join(th, NULL);
    cr_assert_eq(a.rc, NM_ECLOSED);
    nm_redex_event ev;
    NM_ASSERT_ERR(nm_redex_tail_next(t, &ev, 0), NM_ECLOSED);
    cr_assert(readable(nm_redex_tail_fd(t)));
    nm_redex_tail_close(t);
    nm_redex_close(rx);
}

Test(redex_tail, cancel_wakes_blocked_reader)
{
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, NULL);
    nm_redex_tail *t;
    NM_ASSERT_OK(nm_redex_tail_open(f, 0, &t));
    blocked_arg a = {t, 1};
    pthread_t th;
    pthread_create(&th, NULL, blocked_reader, &a);
    nm_redex_tail_cancel(t);
    pthread_join(th, NULL);
    cr_assert_eq(a.rc, NM_ECLOSED);
    put_n(f, 0, 3);
    nm_redex_event ev;
    NM_ASSERT_ERR(nm_redex_tail_next(t, &ev, 0), NM_ECLOSED);
    nm_redex_tail_close(t);
    nm_redex_tail_close(NULL);
    nm_redex_tail_cancel(NULL);
    cr_assert_eq(nm_redex_tail_fd(NULL), -1);
    nm_redex_close(rx);
}

Test(redex_tail, manager_close_ends_tails_which_stay_valid)
{
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, NULL);
    put_n(f, 0, 5);
    nm_redex_tail *t;
    NM_ASSERT_OK(nm_redex_tail_open(f, 0, &t));
    blocked_arg a = {t, 1};
    expect_ev(t, 0);
    nm_redex_close(rx);
    blocked_reader(&a);
    cr_assert_eq(a.rc, NM_ECLOSED);
    nm_redex_tail_close(t); /* after the manager: still valid */
}

Test(redex_tail, readiness_fd)
{
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, NULL);
    nm_redex_tail *t;
    NM_ASSERT_OK(nm_redex_tail_open(f, 0, &t));
    int fd = nm_redex_tail_fd(t);
    cr_assert_geq(fd, 0);
    cr_assert(!readable(fd), "nothing to read yet");
    put_n(f, 0, 2);
    cr_assert(readable(fd));
    expect_ev(t, 0);
    expect_ev(t, 1);
    nm_redex_event ev;
    NM_ASSERT_ERR(nm_redex_tail_next(t, &ev, 0), NM_ETIMEDOUT);
    cr_assert(!readable(fd), "drained");
    put_n(f, 2, 3);
    cr_assert(readable(fd));
    /* the fd stays readable while data is waiting, whoever polls */
    cr_assert(readable(fd));
    expect_ev(t, 2);
    NM_ASSERT_ERR(nm_redex_tail_next(t, &ev, 0), NM_ETIMEDOUT);
    cr_assert(!readable(fd));
    /* eviction below the tail makes it readable too (a lag to report) */
    nm_redex_tail_close(t);
    nm_redex_close(rx);
}

Test(redex_tail, timeout_with_nothing)
{
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, NULL);
    nm_redex_tail *t;
    NM_ASSERT_OK(nm_redex_tail_open(f, 0, &t));
    nm_redex_event ev;
    NM_ASSERT_ERR(nm_redex_tail_next(t, &ev, 20), NM_ETIMEDOUT);
    NM_ASSERT_ERR(nm_redex_tail_next(t, NULL, 0), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_tail_next(NULL, &ev, 0), NM_EINVAL);
    NM_ASSERT_ERR(nm_redex_tail_open(f, 0, NULL), NM_EINVAL);
    nm_redex_tail_close(t);
    nm_redex_close(rx);
}

Test(redex_tail, buffer_of_one_and_big_records)
{
    nm_redex *rx;
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.tail_buffer_size = 1;
    nm_redex_file *f = open_mem(&rx, &c);
    nm_redex_tail *t;
    NM_ASSERT_OK(nm_redex_tail_open(f, 0, &t));
    size_t n = (1u << 20) + 100; /* bigger than the per-fill byte bound */
    uint8_t *big = malloc(n);
    memset(big, 0xab, n);
    NM_ASSERT_OK(nm_redex_append(f, big, n, NULL));
    NM_ASSERT_OK(nm_redex_append(f, big, n, NULL));
    put_n(f, 2, 10);
    nm_redex_event ev;
    for (int k = 0; k < 2; k++) {
        NM_ASSERT_OK(nm_redex_tail_next(t, &ev, 1000));
        cr_assert_eq(ev.len, n);
        cr_assert_eq(memcmp(ev.payload, big, n), 0);
    }
    for (uint64_t s = 2; s < 10; s++) {
        expect_ev(t, s);
    }
    free(big);
    nm_redex_tail_close(t);
    nm_redex_close(rx);
}

Test(redex_tail, inline_records)
{
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, NULL);
    uint8_t in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    NM_ASSERT_OK(nm_redex_append_inline(f, in, NULL));
    nm_redex_tail *t;
    NM_ASSERT_OK(nm_redex_tail_open(f, 0, &t));
    nm_redex_event ev;
    NM_ASSERT_OK(nm_redex_tail_next(t, &ev, 1000));
    cr_assert_eq(ev.len, 8);
    cr_assert_eq(ev.flags, NM_REDEX_FLAG_INLINE);
    cr_assert_eq(memcmp(ev.payload, in, 8), 0);
    nm_redex_tail_close(t);
    nm_redex_close(rx);
}

Test(redex_tail, many_tails_many_producers)
{
    nm_redex *rx;
    nm_redex_file *f = open_mem(&rx, NULL);
    enum { P = 3, N = 4000, T = 3 };
    nm_redex_tail *t[T];
    for (int i = 0; i < T; i++) {
        NM_ASSERT_OK(nm_redex_tail_open(f, 0, &t[i]));
    }
    pthread_t th[P];
    prod_arg pa[P];
    for (int i = 0; i < P; i++) {
        pa[i] = (prod_arg){f, i * N, (i + 1) * N};
        pthread_create(&th[i], NULL, producer, &pa[i]);
    }
    for (int i = 0; i < T; i++) {
        unsigned char *seen = calloc(P * N, 1);
        for (uint64_t s = 0; s < P * N; s++) {
            nm_redex_event ev;
            NM_ASSERT_OK(nm_redex_tail_next(t[i], &ev, 10000));
            cr_assert_eq(ev.seq, s);
            int v;
            cr_assert_eq(sscanf((const char *)ev.payload, "e%d", &v), 1);
            cr_assert_eq(seen[v], 0);
            seen[v] = 1;
        }
        free(seen);
    }
    for (int i = 0; i < P; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < T; i++) {
        nm_redex_tail_close(t[i]);
    }
    nm_redex_close(rx);
}

Test(redex_tail, persistent_log_read_back_from_disk, .init = mktmp,
     .fini = rmtmp)
{
    nm_redex_config rc;
    nm_redex_config_init(&rc);
    rc.dir = tmpdir;
    nm_redex *rx;
    NM_ASSERT_OK(nm_redex_open(&rc, &rx));
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.persistent = true;
    c.max_memory_bytes = 16 << 10; /* most records live only on disk */
    nm_redex_file *f;
    NM_ASSERT_OK(nm_redex_open_file(rx, "p/q", &c, &f));
    put_n(f, 0, 20000);
    nm_redex_file_stats st;
    NM_ASSERT_OK(nm_redex_file_stats_get(f, &st));
    cr_assert_leq(st.resident_bytes, 16 << 10);
    nm_redex_tail *t;
    NM_ASSERT_OK(nm_redex_tail_open(f, 0, &t));
    for (uint64_t s = 0; s < 20000; s++) {
        expect_ev(t, s);
    }
    nm_redex_tail_close(t);
    /* after a reopen nothing is resident: everything comes from pread */
    NM_ASSERT_OK(nm_redex_file_close(f));
    NM_ASSERT_OK(nm_redex_open_file(rx, "p/q", &c, &f));
    NM_ASSERT_OK(nm_redex_tail_open(f, 19000, &t));
    for (uint64_t s = 19000; s < 20000; s++) {
        expect_ev(t, s);
    }
    put_n(f, 20000, 20010);
    for (uint64_t s = 20000; s < 20010; s++) {
        expect_ev(t, s);
    }
    nm_redex_tail_close(t);
    nm_redex_close(rx);
}

/* ------------------------------------------------------- wake-ups */

/* Pauses between bursts: none, shorter than the watch window a caught-up
 * reader spends before sleeping, around its end, and well past it. */
static const uint32_t pause_ns[] = {0,     300,   2000,  15000,  19000,
                                    21000, 25000, 60000, 300000, 1500000};

static void
pause_for(uint32_t ns)
{
    if (ns == 0) {
        return;
    }
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (ns >= 50000) {
        struct timespec d = {0, (long)ns};
        nanosleep(&d, NULL);
        return;
    }
    do { /* short pauses: busy, so they are short */
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000ull +
                 (uint64_t)t.tv_nsec - (uint64_t)t0.tv_nsec <
             ns);
}

typedef struct burst_arg {
    nm_redex_file *f;
    int n;
    unsigned seed;
    int rc;
} burst_arg;

/* Append n records ("e<i>") in bursts of 1..8 with a random pause from
 * pause_ns between bursts (seeded: a failure names its seed). */
static void *
burst_producer(void *p)
{
    burst_arg *a = p;
    unsigned x = a->seed;
    char b[32];
    for (int i = 0; i < a->n;) {
        x = x * 1103515245u + 12345u;
        int burst = 1 + (int)((x >> 16) % 8);
        for (int k = 0; k < burst && i < a->n; k++, i++) {
            int len = snprintf(b, sizeof(b), "e%d", i);
            a->rc = nm_redex_append(a->f, b, (size_t)len, NULL);
            if (a->rc) {
                return NULL;
            }
        }
        x = x * 1103515245u + 12345u;
        pause_for(pause_ns[(x >> 16) % NMI_ARRAY_LEN(pause_ns)]);
    }
    return NULL;
}

/* A blocking reader with a bounded wait gets every record: a lost
 * wake-up would leave it asleep past a 5 s timeout while the producer
 * never pauses more than 1.5 ms. */
Test(redex_tail, no_lost_wakeup_blocking_reader, .timeout = 120)
{
    for (unsigned seed = 1; seed <= 6; seed++) {
        nm_redex *rx;
        nm_redex_file *f = open_mem(&rx, NULL);
        nm_redex_tail *t;
        NM_ASSERT_OK(nm_redex_tail_open(f, NM_REDEX_TAIL_LIVE, &t));
        burst_arg a = {f, 3000, seed, 0};
        pthread_t th;
        pthread_create(&th, NULL, burst_producer, &a);
        for (int i = 0; i < a.n; i++) {
            nm_redex_event ev;
            int rc = nm_redex_tail_next(t, &ev, 5000);
            cr_assert_eq(rc, NM_OK, "seed %u, record %d: %s (%s)", seed, i,
                         nm_err_name(rc), nm_errdetail());
            cr_assert_eq(ev.seq, (uint64_t)i, "seed %u", seed);
        }
        pthread_join(th, NULL);
        NM_ASSERT_OK(a.rc);
        nm_redex_tail_close(t);
        nm_redex_close(rx);
    }
}

/* The same with an event-loop reader: poll the fd (bounded), then drain
 * with next(0). The fd must turn readable for every append that finds the
 * reader caught up. */
Test(redex_tail, no_lost_wakeup_fd_reader, .timeout = 120)
{
    for (unsigned seed = 11; seed <= 14; seed++) {
        nm_redex *rx;
        nm_redex_file *f = open_mem(&rx, NULL);
        nm_redex_tail *t;
        NM_ASSERT_OK(nm_redex_tail_open(f, NM_REDEX_TAIL_LIVE, &t));
        burst_arg a = {f, 2000, seed, 0};
        pthread_t th;
        pthread_create(&th, NULL, burst_producer, &a);
        int got = 0;
        while (got < a.n) {
            nm_redex_event ev;
            int rc = nm_redex_tail_next(t, &ev, 0);
            if (rc == NM_OK) {
                cr_assert_eq(ev.seq, (uint64_t)got, "seed %u", seed);
                got++;
                continue;
            }
            cr_assert_eq(rc, NM_ETIMEDOUT, "seed %u: %s", seed,
                         nm_err_name(rc));
            struct pollfd pf = {.fd = nm_redex_tail_fd(t), .events = POLLIN};
            cr_assert_eq(poll(&pf, 1, 5000), 1,
                         "seed %u: fd not readable after record %d", seed,
                         got);
        }
        pthread_join(th, NULL);
        NM_ASSERT_OK(a.rc);
        nm_redex_tail_close(t);
        nm_redex_close(rx);
    }
}

typedef struct spin_arg {
    nm_redex_tail *t;
    _Atomic int rc;
    _Atomic int done;
} spin_arg;

static void *
spin_reader(void *p)
{
    spin_arg *a = p;
    nm_redex_event ev;
    int rc;
    do {
        rc = nm_redex_tail_next(a->t, &ev, -1);
    } while (rc == NM_OK);
    atomic_store(&a->rc, rc);
    atomic_store(&a->done, 1);
    return NULL;
}

/* Wait (bounded) for a reader thread to finish. */
static void
join_within(pthread_t th, spin_arg *a, int ms)
{
    for (int i = 0; i < ms && !atomic_load(&a->done); i++) {
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    cr_assert(atomic_load(&a->done), "reader still blocked after %d ms", ms);
    pthread_join(th, NULL);
}

/* Cancel and close land at random points of a reader that keeps catching
 * up - while it watches the log, while it sleeps, while it copies - and
 * always end it promptly with NM_ECLOSED. */
Test(redex_tail, cancel_and_close_while_watching, .timeout = 120)
{
    unsigned x = 7;
    for (int round = 0; round < 60; round++) {
        nm_redex *rx;
        nm_redex_file *f = open_mem(&rx, NULL);
        spin_arg a = {.rc = 1, .done = 0};
        NM_ASSERT_OK(nm_redex_tail_open(f, NM_REDEX_TAIL_LIVE, &a.t));
        pthread_t th;
        pthread_create(&th, NULL, spin_reader, &a);
        x = x * 1103515245u + 12345u;
        int appends = (int)((x >> 16) % 5);
        put_n(f, 0, appends);
        x = x * 1103515245u + 12345u;
        pause_for(pause_ns[(x >> 16) % NMI_ARRAY_LEN(pause_ns)]);
        if (round % 2) {
            nm_redex_tail_cancel(a.t);
        } else {
            NM_ASSERT_OK(nm_redex_file_close(f));
        }
        join_within(th, &a, 5000);
        cr_assert_eq(atomic_load(&a.rc), NM_ECLOSED, "round %d: %s", round,
                     nm_err_name(atomic_load(&a.rc)));
        nm_redex_tail_close(a.t);
        nm_redex_close(rx);
    }
}
