/*
 * src/mesh/liveness.h - the mesh node's liveness helpers: a per-peer
 * failure detector, the pingwave duplicate filter, route-withdrawal
 * damping and topology-change pingwave pacing.
 *
 * Pure: no I/O, no clock (every call takes now_us from the caller's one
 * monotonic clock, in microseconds), no locks, no global state. Thread
 * safety: none; each object has one owner thread (the node's I/O thread).
 * Upstream: shared/docs/upstream/upstream-mesh-protocol.md §5.
 *
 * Time going backwards (a now_us smaller than one seen before) is
 * tolerated everywhere: ages saturate at 0 and nothing crashes or
 * underflows; decisions are then as if no time had passed.
 */
#ifndef NMI_MESH_LIVENESS_H
#define NMI_MESH_LIVENESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ================================================== failure detector */

/*
 * Upstream failure.rs: timeout = session_timeout (30 s), missed =
 * floor((now - last_heard) / timeout); Suspect at missed >= 2, Failed at
 * missed >= 3; fed only by verified heartbeats (the node feeds it only
 * packets that passed AEAD / tag verification). A FAILED peer stays
 * FAILED until it is heard again; heard() always brings a peer back to
 * HEALTHY (upstream: recovery). Thresholds and the timeout are
 * configurable; the timeout works down to 1 µs (tests use tens of ms).
 *
 * Choices where upstream is silent: check() never moves a peer to a
 * better state (only heard() does), so a clock step backwards cannot
 * "recover" a peer; heard() with a now_us older than the last one keeps
 * the newer last_heard.
 */

#define NMI_FD_DEFAULT_TIMEOUT_US 30000000ull /* 30 s */
#define NMI_FD_DEFAULT_SUSPECT 2u
#define NMI_FD_DEFAULT_FAIL 3u

typedef enum nmi_fd_state {
    NMI_FD_HEALTHY = 0, /* missed < suspect_after */
    NMI_FD_SUSPECT = 1, /* suspect_after <= missed < fail_after */
    NMI_FD_FAILED = 2,  /* missed >= fail_after (sticky until heard) */
} nmi_fd_state;

typedef struct nmi_fd_config {
    uint64_t timeout_us;    /* 0 = 30 s */
    uint32_t suspect_after; /* missed timeouts; 0 = 2 */
    uint32_t fail_after;    /* missed timeouts; 0 = 3; >= suspect_after */
} nmi_fd_config;

/* One peer's detector: a small value the node embeds in its peer struct
 * (32 bytes, no allocation, nothing to free). Fields are private. */
typedef struct nmi_fd {
    uint64_t timeout_us;
    uint64_t last_heard_us;
    uint32_t suspect_after;
    uint32_t fail_after;
    nmi_fd_state state;
} nmi_fd;

/* nmi_fd_init - HEALTHY, last heard at now_us (the session just opened).
 * cfg may be NULL (defaults). NM_EINVAL (d NULL, fail_after <
 * suspect_after) with a detail; *d is zeroed then. suspect_after ==
 * fail_after is allowed (no SUSPECT stage). */
int nmi_fd_init(nmi_fd *d, const nmi_fd_config *cfg, uint64_t now_us);

/* nmi_fd_heard - a verified packet from the peer arrived: last heard =
 * max(last heard, now_us), state HEALTHY. Returns the state before (so
 * NMI_FD_FAILED means "recovered": reinstall the direct route). */
nmi_fd_state nmi_fd_heard(nmi_fd *d, uint64_t now_us);

/* nmi_fd_missed - floor((now_us - last heard) / timeout), 0 if now_us
 * is not after last heard. */
uint64_t nmi_fd_missed(const nmi_fd *d, uint64_t now_us);

/* nmi_fd_check - advance the state for now_us and return it; *changed
 * (may be NULL) says whether this call changed it. Transitions only
 * worsen (HEALTHY -> SUSPECT -> FAILED, or straight to FAILED). */
nmi_fd_state nmi_fd_check(nmi_fd *d, uint64_t now_us, bool *changed);

/* nmi_fd_state_get - the state as of the last check / heard. */
nmi_fd_state nmi_fd_state_get(const nmi_fd *d);
uint64_t nmi_fd_last_heard(const nmi_fd *d);

/* nmi_fd_next_change - the earliest now_us at which check() would
 * change the state (for arming a timer): last heard + suspect_after *
 * timeout while HEALTHY, + fail_after * timeout while SUSPECT,
 * UINT64_MAX when FAILED. Saturates at UINT64_MAX. */
uint64_t nmi_fd_next_change(const nmi_fd *d);

/* nmi_fd_state_name - "healthy", "suspect", "failed" ("?" otherwise). */
const char *nmi_fd_state_name(nmi_fd_state s);

/* ============================================ pingwave duplicate filter */

/*
 * (origin node_id, seq) pairs seen within a window (upstream: 10 s) are
 * duplicates. The window counts from the first sighting: a duplicate does
 * not extend it (choice; upstream is silent), so a pair is accepted again
 * once window_us has passed since it was first accepted (age >= window).
 *
 * Memory bound: exactly `capacity` remembered pairs (default 16,384),
 * allocated once at init: a FIFO ring of 24-byte entries (origin, seq,
 * first seen) plus an open-addressing index of 2 x capacity (rounded up
 * to a power of two) 4-byte slots: 512 KiB at the default. Entries
 * leave the ring when they expire or, when it is full, oldest first
 * (eviction is safe: a re-accepted pingwave is re-forwarded once more,
 * and its TTL still bounds the flood). Expired entries are dropped
 * lazily on each call, amortised O(1). Because the ring is in arrival
 * order, "oldest" assumes now_us does not go backwards; if it does,
 * entries are still evicted in arrival order.
 */

#define NMI_DEDUP_DEFAULT_WINDOW_US 10000000ull /* 10 s */
#define NMI_DEDUP_DEFAULT_CAPACITY 16384u
#define NMI_DEDUP_MAX_CAPACITY (1u << 24)

typedef struct nmi_dedup nmi_dedup;

typedef struct nmi_dedup_config {
    uint64_t window_us; /* 0 = 10 s */
    uint32_t capacity;  /* pairs remembered; 0 = 16,384; <= 2^24 */
    uint64_t hash_key;  /* index hash key; 0 = random (libsodium) */
} nmi_dedup_config;

typedef struct nmi_dedup_stats {
    size_t size;       /* pairs remembered now */
    size_t capacity;   /* the bound */
    uint64_t accepted; /* first sightings */
    uint64_t duplicates;
    uint64_t evicted; /* dropped while still in the window (ring full) */
    uint64_t expired; /* dropped after their window */
} nmi_dedup_stats;

/* nmi_dedup_new - cfg may be NULL. NM_EINVAL (out NULL, capacity too
 * large), NM_ENOMEM. */
int nmi_dedup_new(const nmi_dedup_config *cfg, nmi_dedup **out);
void nmi_dedup_free(nmi_dedup *f);

/* nmi_dedup_check - true if (origin, seq) was accepted less than
 * window_us before now_us (a duplicate: drop the pingwave); otherwise
 * remember it as seen at now_us and return false (process it). */
bool nmi_dedup_check(nmi_dedup *f, uint64_t origin, uint64_t seq,
                     uint64_t now_us);

void nmi_dedup_stats_get(const nmi_dedup *f, nmi_dedup_stats *out);

/* ================================================= withdrawal damping */

/*
 * Upstream §5 "Route withdrawal": damped to once per second per
 * destination, at most 64 cascades in flight. Here: a withdrawal for
 * dest may be sent (originated or forwarded) at now_us unless one for
 * the same dest was admitted less than interval_us before (age <
 * interval: exactly interval later is admitted again), or max_in_flight
 * withdrawals (any destination) were admitted in the last interval_us.
 * "In flight" = admitted within the last interval (choice: upstream does
 * not define how long a cascade stays in flight). A refused withdrawal
 * is not queued: the caller drops it (the next loss or sweep recomputes
 * what to withdraw).
 *
 * Memory bound: one ring of max_in_flight (dest, time) entries (16 B
 * each), allocated at init. It is enough: every admission within the
 * last interval is among the last max_in_flight admissions, so both
 * rules are decided from the ring alone (O(max_in_flight) per call).
 */

#define NMI_DAMP_DEFAULT_INTERVAL_US 1000000ull /* 1 s */
#define NMI_DAMP_DEFAULT_MAX_IN_FLIGHT 64u
#define NMI_DAMP_MAX_IN_FLIGHT 65536u

typedef enum nmi_damp_verdict {
    NMI_DAMP_SEND = 0,      /* admitted: send it */
    NMI_DAMP_DEST = 1,      /* refused: this dest within interval */
    NMI_DAMP_IN_FLIGHT = 2, /* refused: max_in_flight within interval */
} nmi_damp_verdict;

typedef struct nmi_damp nmi_damp;

typedef struct nmi_damp_config {
    uint64_t interval_us;   /* 0 = 1 s */
    uint32_t max_in_flight; /* 0 = 64; <= NMI_DAMP_MAX_IN_FLIGHT */
} nmi_damp_config;

/* nmi_damp_new - cfg may be NULL. NM_EINVAL, NM_ENOMEM. */
int nmi_damp_new(const nmi_damp_config *cfg, nmi_damp **out);
void nmi_damp_free(nmi_damp *d);

/* nmi_damp_admit - may a withdrawal for dest go out at now_us? On
 * NMI_DAMP_SEND the admission is recorded. The per-destination rule is
 * tested first. */
nmi_damp_verdict nmi_damp_admit(nmi_damp *d, uint64_t dest, uint64_t now_us);

/* nmi_damp_in_flight - admissions within the last interval at now_us. */
size_t nmi_damp_in_flight(const nmi_damp *d, uint64_t now_us);

/* ================================== topology-change pingwave pacing */

/*
 * Upstream: topology events trigger extra pingwaves, at least 250 ms
 * apart, each sent twice 50 ms apart. Here a burst is `copies` sends
 * (default 2) spaced spacing_us (50 ms); burst starts are at least
 * min_gap_us (250 ms) apart.
 *
 * Choices where upstream is silent:
 *   - Triggers are never lost, only coalesced: a trigger while a burst
 *     is waiting to start joins it; a trigger after a burst's first send
 *     schedules one more burst (the event happened after the first copy
 *     left), starting min_gap_us after the previous burst's start.
 *   - Times are those of the actual sends (the now_us of the due() that
 *     returned true), so a late poll never packs sends closer than
 *     spacing_us / min_gap_us.
 *   - A burst's remaining copies go before the next burst starts.
 *
 * By value, 48 bytes, no allocation.
 */

#define NMI_PACE_DEFAULT_MIN_GAP_US 250000ull /* 250 ms */
#define NMI_PACE_DEFAULT_SPACING_US 50000ull  /* 50 ms */
#define NMI_PACE_DEFAULT_COPIES 2u

typedef struct nmi_pace_config {
    uint64_t min_gap_us; /* 0 = 250 ms */
    uint64_t spacing_us; /* 0 = 50 ms */
    uint32_t copies;     /* 0 = 2 */
} nmi_pace_config;

typedef struct nmi_pace {
    uint64_t min_gap_us;
    uint64_t spacing_us;
    uint64_t burst_start_us; /* first send of the last burst */
    uint64_t next_copy_us;   /* when the next copy of it is due */
    uint32_t copies;
    uint32_t copies_left; /* of the current burst */
    bool pending;         /* a burst is waiting to start */
    bool started;         /* burst_start_us is valid */
} nmi_pace;

/* nmi_pace_init - idle (nothing pending). cfg may be NULL. NM_EINVAL for
 * p NULL. */
int nmi_pace_init(nmi_pace *p, const nmi_pace_config *cfg);

/* nmi_pace_trigger - a topology event happened at now_us. */
void nmi_pace_trigger(nmi_pace *p, uint64_t now_us);

/* nmi_pace_due - true when a topology pingwave should be sent now (the
 * send is counted: call again for the next one). */
bool nmi_pace_due(nmi_pace *p, uint64_t now_us);

/* nmi_pace_next_due - the earliest now_us at which due() will return
 * true, or UINT64_MAX when nothing is scheduled (for arming a timer). */
uint64_t nmi_pace_next_due(const nmi_pace *p);

#endif
