/*
 * bench/bench_mesh_base.h - the anchors the mesh benchmark group compares
 * itself against. Each function measures once and returns one value, so
 * the caller can interleave it with its own figure, run it o->runs times
 * and take medians (nmb_median). They create and tear down everything
 * they use (sockets, threads, contexts) on every call; none is reentrant
 * with itself across threads, and none needs sodium_init beforehand.
 *
 *   nmb_udp_loopback_64B  bare UDP on 127.0.0.1, 64-byte datagrams: a
 *                         sender thread with sendmmsg (batches of 64) and
 *                         a receiver thread with recvmmsg (SO_RCVBUF 4 MiB,
 *                         forced when privileged). Loopback drops what the
 *                         receiver cannot keep up with: the figure counts
 *                         datagrams that arrived, over the time from the
 *                         first send to the last receive. msgs/s.
 *   nmb_zmq_curve_64B     ZeroMQ PUSH -> PULL with CURVE over
 *                         tcp://127.0.0.1 (ephemeral port), 64-byte
 *                         messages, sender and receiver threads; the time
 *                         from the first send until the receiver got all N
 *                         (the CURVE handshake is done before timing).
 *                         msgs/s; negative when built without ZeroMQ
 *                         (NM_HAVE_ZMQ) or when ZeroMQ failed (a line on
 *                         stderr says why).
 *   nmb_x25519_x6_us      microseconds for the six X25519 operations an
 *                         NKpsk0 handshake cannot avoid: two ephemeral
 *                         keypairs (crypto_box_keypair) and four
 *                         crypto_scalarmult (es and ee on each side);
 *                         the median of many timed iterations.
 *
 * Every figure scales its iteration count with nmb_iters(o, base). A
 * negative return means "no figure": the caller prints it with
 * nmb_report_skipped.
 */
#ifndef NM_BENCH_MESH_BASE_H
#define NM_BENCH_MESH_BASE_H

#include "bench.h"

/* Messages/s of bare loopback UDP, 64-byte datagrams (< 0 on failure). */
double nmb_udp_loopback_64B(const nmb_opts *o);

/* Messages/s of ZeroMQ PUSH/PULL + CURVE, 64-byte messages (< 0: not
 * built with ZeroMQ, or it failed). */
double nmb_zmq_curve_64B(const nmb_opts *o);

/* Microseconds for 2 X25519 keypairs + 4 X25519 DH (< 0 on failure). */
double nmb_x25519_x6_us(const nmb_opts *o);

/* Print a figure that could not be measured: with --json
 *   {"bench":"<name>","skipped":true,"reason":"<why>"}
 * else "<name> skipped (<why>)". `why` must not need JSON escaping. */
void nmb_report_skipped(const nmb_opts *o, const char *name, const char *why);

#endif
