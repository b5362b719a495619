/* src/core/clock.c - monotonic, wall and TSC-backed fast clocks. */
#define _GNU_SOURCE
#include "core/core.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

uint64_t
nmi_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
nmi_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
nmi_deadline_ms(int64_t timeout_ms)
{
    if (timeout_ms < 0) {
        return UINT64_MAX;
    }
    return nmi_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
}

int
nmi_ms_left(uint64_t deadline)
{
    if (deadline == UINT64_MAX) {
        return -1;
    }
    uint64_t now = nmi_mono_ns();
    if (now >= deadline) {
        return 0;
    }
    uint64_t ms = (deadline - now + 999999ull) / 1000000ull;
    return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

void
nmi_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ull),
                          (long)(ns % 1000000000ull)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

unsigned
nmi_ncpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : (unsigned)n;
}

#if defined(__x86_64__)
static bool
tsc_invariant(void)
{
    unsigned a, b, c, d;
    __asm__ __volatile__("cpuid"
                         : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
                         : "a"(0x80000000u), "c"(0));
    if (a < 0x80000007u) {
        return false;
    }
    __asm__ __volatile__("cpuid"
                         : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
                         : "a"(0x80000007u), "c"(0));
    return (d >> 8) & 1u; /* Invariant TSC */
}
#endif

void
nmi_fastclock_init(nmi_fastclock *c)
{
    c->use_tsc = false;
    c->base_ns = nmi_mono_ns();
    c->base_tsc = 0;
    c->mult = 1;
    c->shift = 0;
#if defined(__x86_64__)
    if (!tsc_invariant()) {
        return;
    }
    /* Calibrate over ~2 ms: long enough for < 0.1 % error, short enough
     * not to slow down nm_bus_open noticeably. */
    uint64_t t0 = nmi_mono_ns();
    uint64_t c0 = __rdtsc();
    uint64_t t1;
    do {
        t1 = nmi_mono_ns();
    } while (t1 - t0 < 2000000ull);
    uint64_t c1 = __rdtsc();
    if (c1 <= c0) {
        return;
    }
    /* ns per tick as a 32.32 fixed-point number. */
    c->shift = 32;
    c->mult = (uint64_t)(((unsigned __int128)(t1 - t0) << 32) / (c1 - c0));
    c->base_tsc = c1;
    c->base_ns = t1;
    c->use_tsc = c->mult != 0;
#endif
}

uint64_t
nmi_fastclock_now(const nmi_fastclock *c)
{
#if defined(__x86_64__)
    if (nmi_likely(c->use_tsc)) {
        uint64_t t = __rdtsc();
        if (nmi_unlikely(t < c->base_tsc)) {
            return 0;
        }
        return (uint64_t)(((unsigned __int128)(t - c->base_tsc) * c->mult) >>
                          c->shift);
    }
#endif
    uint64_t now = nmi_mono_ns();
    return now > c->base_ns ? now - c->base_ns : 0;
}
