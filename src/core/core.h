/*
 * src/core/core.h - internal primitives shared by every layer.
 *
 * Internal (nmi_) symbols are hidden from libnetmesh.so by
 * -fvisibility=hidden; tests reach them through the static testing build.
 */
#ifndef NMI_CORE_H
#define NMI_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <netmesh/error.h>

#define NMI_CACHELINE 64
#define NMI_ALIGNED(n) __attribute__((aligned(n)))
#define nmi_likely(x) __builtin_expect(!!(x), 1)
#define nmi_unlikely(x) __builtin_expect(!!(x), 0)
#define NMI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NMI_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* nmi_err - record a detail sentence for nm_errdetail() and return `code`,
 * so call sites read `return nmi_err(NM_EINVAL, "shards must be > 0");`. */
int nmi_err(int code, const char *fmt, ...) NMI_PRINTF(2, 3);
void nmi_err_clear(void);

/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
uint64_t nmi_mono_ns(void);
/* Wall clock in nanoseconds since the Unix epoch. */
uint64_t nmi_wall_ns(void);
/* Deadline helpers: a timeout in ms (negative = forever) to an absolute
 * monotonic deadline (UINT64_MAX = forever), and the ms left until one. */
uint64_t nmi_deadline_ms(int64_t timeout_ms);
int nmi_ms_left(uint64_t deadline);
/* Sleep for `ns` nanoseconds (restarting on EINTR). */
void nmi_sleep_ns(uint64_t ns);

/*
 * A fast monotonic nanosecond clock for hot paths. On x86-64 with an
 * invariant TSC it reads the TSC and scales it with a multiplier calibrated
 * against CLOCK_MONOTONIC at init; elsewhere it falls back to
 * clock_gettime. Values are only comparable within one nmi_fastclock.
 */
typedef struct nmi_fastclock {
    uint64_t base_tsc;
    uint64_t mult; /* ns = (tsc - base) * mult >> shift */
    unsigned shift;
    bool use_tsc;
    uint64_t base_ns;
} nmi_fastclock;

void nmi_fastclock_init(nmi_fastclock *c);
uint64_t nmi_fastclock_now(const nmi_fastclock *c);

/* Number of online CPUs (>= 1). */
unsigned nmi_ncpus(void);

/* Round up to the next power of two (0 and 1 give 1). */
static inline uint64_t
nmi_pow2_ceil(uint64_t v)
{
    if (v <= 1) {
        return 1;
    }
    return 1ull << (64 - __builtin_clzll(v - 1));
}

static inline bool
nmi_is_pow2(uint64_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/* Little-endian loads and stores, safe on any alignment: one move each on
 * a little-endian host (the log, event and wire formats run them per
 * record). */
static inline void
nmi_store_le64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, sizeof(v));
#else
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
#endif
}

static inline uint64_t
nmi_load_le64(const uint8_t *p)
{
    uint64_t v = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&v, p, sizeof(v));
#else
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
#endif
    return v;
}

static inline void
nmi_store_le32(uint8_t *p, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, sizeof(v));
#else
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
#endif
}

static inline uint32_t
nmi_load_le32(const uint8_t *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
#else
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
#endif
}

/* CPU relax hint for spin loops. */
static inline void
nmi_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* nmi_hexval - the value of one hex digit (either case), or -1. */
static inline int
nmi_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

#endif
