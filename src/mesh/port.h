/*
 * src/mesh/port.h - the datagram-port interface under the mesh node.
 *
 * A port sends datagrams to an address and hands received ones (from,
 * bytes) to a callback its owner installs. Implementations:
 *
 *   - the loopback hub (port_loop.c): in-process ports with synthetic
 *     addresses 127.0.0.1:<n>; sends are queued on the receiver and
 *     delivered only when the owner polls, so tests are deterministic and
 *     a receive callback may send without recursion;
 *   - the fault injector (port_fault.c): wraps any port and applies seeded
 *     drop / duplicate / reorder / delay-in-ticks / partitions on send.
 *
 * Datagram size: a port accepts 0..NMI_PORT_MAX_DATAGRAM (65507, the
 * largest UDP/IPv4 payload) bytes; larger gives NM_ETOOBIG. The tighter
 * mesh packet limit is the node's business, not the port's.
 *
 * Errors: NM_EINVAL (bad argument, with a detail), NM_ETOOBIG, NM_ENOMEM,
 * NM_ECLOSED (any operation after nmi_port_close). Nothing here is
 * thread-safe: a port and its hub are used from one thread.
 */
#ifndef NMI_MESH_PORT_H
#define NMI_MESH_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/core.h"

#define NMI_PORT_MAX_DATAGRAM 65507u
/* Enough for "[ffff:...:255.255.255.255]:65535" and a NUL. */
#define NMI_ADDR_STRLEN 64

/* An IPv4 or IPv6 socket address (family AF_INET or AF_INET6). */
typedef struct nmi_addr {
    struct sockaddr_storage ss;
} nmi_addr;

/* nmi_addr_parse - "a.b.c.d:port" or "[v6]:port" (numeric only: no DNS,
 * no scope ids; port 0..65535 in decimal). NM_EINVAL with a detail
 * otherwise; *a is left zeroed on failure. */
int nmi_addr_parse(nmi_addr *a, const char *s);
/* nmi_addr_format - the same textual form into buf (NUL-terminated).
 * Returns the length written (>= 0), NM_EINVAL for a bad address or
 * NM_ERANGE when cap is too small. */
int nmi_addr_format(const nmi_addr *a, char *buf, size_t cap);
/* nmi_addr_ipv4 - build an IPv4 address from a host-order IP and port. */
void nmi_addr_ipv4(nmi_addr *a, uint32_t ip, uint16_t port);
/* Family, IP bytes and port equal (other sockaddr fields ignored). */
bool nmi_addr_equal(const nmi_addr *a, const nmi_addr *b);
uint16_t nmi_addr_port(const nmi_addr *a);

typedef struct nmi_port nmi_port;

/* Receive callback: `data` is borrowed for the duration of the call. The
 * callback may send on any port (including this one). */
typedef void (*nmi_port_recv_fn)(void *ctx, nmi_port *port,
                                 const nmi_addr *from, const uint8_t *data,
                                 size_t len);

typedef struct nmi_port_ops {
    size_t size;      /* sizeof(nmi_port_ops) */
    const char *name; /* "loop", "fault", ... */
    /* Arguments are already validated by nmi_port_send. */
    int (*send)(nmi_port *p, const nmi_addr *to, const void *buf, size_t len);
    /* Deliver pending datagrams; the count delivered or an error. */
    int (*poll)(nmi_port *p);
    /* The address peers send to. */
    int (*local_addr)(nmi_port *p, nmi_addr *out);
    /* Stop: release queues and detach; called once. */
    void (*close)(nmi_port *p);
    /* Free the port (after close). */
    void (*destroy)(nmi_port *p);
} nmi_port_ops;

/* The common head of every port (implementations embed it first). */
struct nmi_port {
    const nmi_port_ops *ops;
    nmi_port_recv_fn on_recv;
    void *ctx;
    bool closed;
};

/* Generic entry points (validate, then dispatch through ops). */
void nmi_port_init(nmi_port *p, const nmi_port_ops *ops);
/* Install (or with fn NULL remove) the receive callback. */
void nmi_port_set_recv(nmi_port *p, nmi_port_recv_fn fn, void *ctx);
int nmi_port_send(nmi_port *p, const nmi_addr *to, const void *buf,
                  size_t len);
int nmi_port_poll(nmi_port *p);
int nmi_port_local_addr(nmi_port *p, nmi_addr *out);
/* Close: idempotent; later sends/polls give NM_ECLOSED and nothing more
 * is delivered. The port stays allocated until nmi_port_destroy. */
void nmi_port_close(nmi_port *p);
/* Close (if needed) and free. NULL is a no-op. */
void nmi_port_destroy(nmi_port *p);
/* For implementations: hand a datagram to the owner's callback (dropped
 * when there is none or the port is closed). */
void nmi_port_deliver(nmi_port *p, const nmi_addr *from, const uint8_t *data,
                      size_t len);

/* ---- loopback hub --------------------------------------------------- */

typedef struct nmi_loop_hub nmi_loop_hub;

typedef struct nmi_loop_stats {
    uint64_t sent;          /* accepted by a send */
    uint64_t delivered;     /* handed to a callback by a poll */
    uint64_t undeliverable; /* no open port at the destination: dropped */
} nmi_loop_stats;

int nmi_loop_hub_new(nmi_loop_hub **out);
/* Frees the hub and every port still attached: destroy ports you keep
 * pointers to first, or stop using them. NULL is a no-op. */
void nmi_loop_hub_free(nmi_loop_hub *h);
/* Attach a new port with address 127.0.0.1:<n>; n = 0 picks the next free
 * number (from 1). NM_EEXIST when n is taken. */
int nmi_loop_hub_attach(nmi_loop_hub *h, uint16_t n, nmi_port **out);
/* Poll every attached port, repeatedly, until no datagram is queued or
 * max_rounds rounds ran (0 = until quiescent). Returns datagrams
 * delivered. Ports are polled in attach order, so runs are repeatable. */
int nmi_loop_hub_run(nmi_loop_hub *h, unsigned max_rounds);
void nmi_loop_hub_stats(const nmi_loop_hub *h, nmi_loop_stats *out);

/* ---- seeded fault injector ----------------------------------------- */

typedef struct nmi_fault nmi_fault;

typedef struct nmi_fault_config {
    size_t size;             /* sizeof(nmi_fault_config) */
    uint64_t seed;           /* drives every random choice */
    double drop_pct;         /* 0..100: datagrams silently dropped */
    double dup_pct;          /* 0..100: datagrams sent twice */
    uint32_t reorder_window; /* 0/1 = off; else hold up to N, see below */
    uint32_t delay_ticks;    /* 0 = none; else released N ticks later */
} nmi_fault_config;

typedef struct nmi_fault_stats {
    uint64_t sent;        /* sends accepted */
    uint64_t dropped;     /* lost to drop_pct */
    uint64_t partitioned; /* lost to a partition */
    uint64_t duplicated;  /* extra copies made */
    uint64_t forwarded;   /* handed to the inner port */
    uint64_t errors;      /* inner send failures on a deferred release */
} nmi_fault_stats;

/*
 * nmi_fault_new - wrap `inner` (ownership passes to the wrapper, even on
 * failure: the wrapper closes and destroys it). The result is itself a
 * port: send through it, poll it (polls the inner port), its callback
 * receives what the inner port receives. Faults apply on the send path,
 * in this order for each send:
 *   1. partition: to and the inner local address on opposite sides: lost;
 *   2. drop with probability drop_pct;
 *   3. duplicate with probability dup_pct (two copies go on);
 *   4. delay: each copy waits delay_ticks calls of nmi_fault_tick;
 *   5. reorder: with a window N >= 2 copies are held; when an (N+1)th
 *      arrives one held copy chosen at random goes out. nmi_fault_tick
 *      and nmi_fault_flush release everything held, shuffled.
 * Same seed + same calls = same deliveries, always.
 */
int nmi_fault_new(nmi_port *inner, const nmi_fault_config *cfg,
                  nmi_port **out);
/* The nmi_fault behind a port made by nmi_fault_new (NULL otherwise). */
nmi_fault *nmi_fault_from_port(nmi_port *p);
uint64_t nmi_fault_seed(const nmi_fault *f);
/* Advance simulated time by one tick: release due delayed datagrams,
 * then everything in the reorder window. Returns datagrams forwarded. */
int nmi_fault_tick(nmi_fault *f);
/* Release everything held by the reorder window now (delays still run). */
int nmi_fault_flush(nmi_fault *f);
uint64_t nmi_fault_now(const nmi_fault *f);
/* Replace the partition: addresses in `a` cannot reach those in `b` or
 * the reverse (matched against this port's local address and the
 * destination). Copies the arrays. */
int nmi_fault_partition(nmi_fault *f, const nmi_addr *a, size_t na,
                        const nmi_addr *b, size_t nb);
void nmi_fault_heal(nmi_fault *f);
void nmi_fault_stats_get(const nmi_fault *f, nmi_fault_stats *out);

/* ---- real UDP (libuv) ---------------------------------------------- */

struct uv_loop_s;

/* libuv's recvmmsg reads into slots of this many bytes, at most
 * NMI_UDP_MAX_SLOTS of them per system call. */
#define NMI_UDP_SLOT_BYTES 65536u
#define NMI_UDP_MAX_SLOTS 20u

/* Options for nmi_udp_port_open2. Initialise with nmi_udp_opts_init. */
typedef struct nmi_udp_opts {
    size_t size; /* sizeof(nmi_udp_opts) */
    /* SO_SNDBUF / SO_RCVBUF in bytes; 0 = the OS default. Linux caps a
     * request at net.core.{w,r}mem_max; when the kernel gives less than
     * asked the port retries with SO_{SND,RCV}BUFFORCE, which only a
     * privileged process (CAP_NET_ADMIN) may use. Linux reports (and
     * accounts) twice the value set. */
    int sndbuf;
    int rcvbuf;
    /* Receive batch: datagram slots of NMI_UDP_SLOT_BYTES each, read with
     * one recvmmsg call. 0 = NMI_UDP_MAX_SLOTS (the default); 1 = plain
     * recvmsg, one datagram per call; 2..NMI_UDP_MAX_SLOTS otherwise. The
     * buffer is allocated once per port (slots * 64 KiB of address space;
     * only the pages datagrams touch become resident). */
    unsigned recv_slots;
} nmi_udp_opts;

/* Counters of one UDP port (nmi_udp_port_stats). */
typedef struct nmi_udp_stats {
    uint64_t sent;           /* datagrams the kernel accepted, both paths */
    uint64_t sent_queued;    /* sends that fell back to the copying queue */
    uint64_t send_errors;    /* sends that failed, immediately or later */
    int last_send_error;     /* libuv code of the latest failure (0 = none) */
    uint64_t received;       /* datagrams read (delivered, or dropped when no
                                callback is installed) */
    uint64_t received_mmsg;  /* of those, read by recvmmsg */
    uint64_t recv_batches;   /* recvmmsg calls that returned datagrams */
    uint64_t recv_errors;    /* socket read errors */
    uint64_t recv_truncated; /* datagrams dropped as truncated */
    size_t queued_now;       /* sends waiting in libuv's queue right now */
    size_t queued_bytes;     /* their bytes */
    bool recvmmsg;           /* reads use recvmmsg */
    int sndbuf;              /* SO_SNDBUF / SO_RCVBUF as the kernel */
    int rcvbuf;              /* reports them now (Linux: doubled) */
} nmi_udp_stats;

/* nmi_udp_opts_init - defaults: OS buffer sizes, NMI_UDP_MAX_SLOTS. */
void nmi_udp_opts_init(nmi_udp_opts *o);

/*
 * nmi_udp_port_open2 - bind a UDP socket to `bind` (port 0 = any; read it
 * back with nmi_port_local_addr) on the owner's `loop`, with `opts` (NULL =
 * defaults). Received datagrams reach the callback from inside uv_run;
 * nmi_port_poll returns 0.
 *
 * Sending: nmi_port_send first tries a direct non-blocking send
 * (uv_udp_try_send: no allocation, no copy). Only when the socket would
 * block, or earlier sends still wait in libuv's queue (order is kept),
 * the bytes are copied and queued (uv_udp_send); nmi_udp_stats counts
 * those fallbacks. A send the kernel refuses (e.g. no route, wrong
 * family) is counted in send_errors/last_send_error and not returned,
 * whichever path it took: like a datagram lost on the way.
 *
 * Receiving: with recvmmsg (Linux, recv_slots >= 2) up to recv_slots
 * datagrams are read per system call into a buffer the port owns; the
 * callback's `data` is valid only during the call, as always.
 *
 * Errors: NM_EINVAL (NULL argument, bad family, bad opts), NM_ENOMEM,
 * NM_EIO (socket, buffer size or bind failure, with libuv's message).
 * After nmi_port_destroy the memory is released by the loop's close
 * callback: run the loop once (UV_RUN_NOWAIT is enough).
 *
 * Threads: the port, like its loop, is used from the loop's thread only.
 */
int nmi_udp_port_open2(struct uv_loop_s *loop, const nmi_addr *bind,
                       const nmi_udp_opts *opts, nmi_port **out);

/* nmi_udp_port_open - nmi_udp_port_open2 with default options. */
int nmi_udp_port_open(struct uv_loop_s *loop, const nmi_addr *bind,
                      nmi_port **out);

/* nmi_udp_port_stats - the counters of a port made by nmi_udp_port_open*.
 * NM_EINVAL for NULL or another kind of port; works on a closed port
 * (queued_now/buffers then read 0). Loop thread only. */
int nmi_udp_port_stats(nmi_port *p, nmi_udp_stats *out);

/* nmi_udp_port_fd - the OS socket of a UDP port, for socket options the
 * port does not cover (do not read, write or close it). NM_EINVAL for
 * NULL / another kind of port, NM_ECLOSED once closed. Loop thread only. */
int nmi_udp_port_fd(nmi_port *p, int *fd);

/* nmi_udp_port_inject_eagain - testing aid: the next n direct sends
 * behave as if the socket returned EAGAIN (so they take the queued
 * path). NM_EINVAL for NULL / another kind of port. Loop thread only. */
int nmi_udp_port_inject_eagain(nmi_port *p, uint32_t n);

#endif
