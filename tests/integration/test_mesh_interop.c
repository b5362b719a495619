/*
 * tests/integration/test_mesh_interop.c - a `netmesh node --accept-any
 * --echo` process driven by a hand-rolled Net v1 client on a raw UDP
 * socket, the way an independent implementation written from the upstream
 * facts would talk to it: a routed msg1 (routing header TTL 16, src_id =
 * (u32)node_id, payload = node_id u64 LE), msg2 back, keys from the
 * handshake hash, then EventFrame data packets sent direct and inside a
 * routing header; each must come back echoed on the same stream, sealed
 * with the session's RX key, in the framing the client used.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli_run.h"
#include "core/core.h"
#include "crypto/noise.h"
#include "crypto/session.h"
#include "proc_spawn.h"
#include "wire/frame.h"
#include "wire/header.h"
#include "wire/packet.h"
#include "wire/route.h"

static int
hexval(char c)
{
    return c >= 'a' ? c - 'a' + 10 : c - '0';
}

static void
unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
    }
}

/* Receive one datagram (bounded wait). */
static ssize_t
recv_one(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0) {
        return -1;
    }
    return recv(fd, buf, cap, 0);
}

Test(mesh_interop, raw_v1_client_gets_its_echo, .timeout = 30)
{
    char psk_path[] = "/tmp/nm-interop-psk-XXXXXX";
    int pfd = mkstemp(psk_path);
    cr_assert_geq(pfd, 0);
    const char *hex =
        "0001020304050607080910111213141516171819202122232425262728293031\n";
    cr_assert_eq(write(pfd, hex, strlen(hex)), (ssize_t)strlen(hex));
    close(pfd);
    uint8_t psk[32];
    unhex(hex, psk, 32);

    char cli[512];
    snprintf(cli, sizeof(cli), "%s/netmesh", NM_BUILD_DIR);
    char *argv[] = {
        cli,      "node",         "--listen", "127.0.0.1:0",   "--psk-file",
        psk_path, "--accept-any", "--echo",   "--json-events", NULL};
    nmt_proc node;
    nmt_proc_start(&node, argv);
    char line[1024], addr[64], idhex[32], pubhex[80];
    cr_assert(nmt_proc_line(&node, line, sizeof(line), 5000));
    cr_assert(nmt_json_field(line, "addr", addr, sizeof(addr)) &&
              nmt_json_field(line, "node_id", idhex, sizeof(idhex)) &&
              nmt_json_field(line, "static_pubkey", pubhex, sizeof(pubhex)));
    uint64_t node_id = strtoull(idhex, NULL, 16);
    uint8_t node_pub[32];
    unhex(pubhex, node_pub, 32);
    unsigned port = (unsigned)atoi(strrchr(addr, ':') + 1);

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);

    /* --- routed msg1 ------------------------------------------------ */
    uint64_t my_id = UINT64_C(0x0123456789abcdef);
    nmi_noise_hs hs;
    cr_assert_eq(nmi_net_hs_initiator(&hs, psk, node_pub, my_id, node_id),
                 NM_OK);
    uint8_t payload[8], m1[64], pkt[NMI_WIRE_MAX_PACKET + 64];
    nmi_store_le64(payload, my_id);
    size_t ml = 0, pl = 0;
    cr_assert_eq(nmi_noise_write_message(&hs, payload, 8, m1, sizeof(m1), &ml),
                 NM_OK);
    cr_assert_eq(ml, 56);
    cr_assert_eq(nmi_wire_routed_handshake_encode(node_id, (uint32_t)my_id, m1,
                                                  ml, pkt, sizeof(pkt), &pl),
                 NM_OK);
    cr_assert_eq(pl, 18 + 68 + 56);
    cr_assert_eq(pkt[0], 0x52); /* "RT" */
    cr_assert_eq(pkt[2], 16);   /* handshake TTL */
    cr_assert_eq(send(fd, pkt, pl, 0), (ssize_t)pl);

    /* --- msg2 (routed back to us, or direct: accept either) ---------- */
    uint8_t in[NMI_WIRE_MAX_PACKET + 64];
    ssize_t n = recv_one(fd, in, sizeof(in), 3000);
    cr_assert_gt(n, 0, "no msg2");
    const uint8_t *noise = NULL;
    size_t nlen = 0;
    nmi_wire_route r;
    if (nmi_wire_classify(in, (size_t)n) == NMI_WIRE_KIND_ROUTED) {
        cr_assert_eq(
            nmi_wire_routed_handshake_decode(in, (size_t)n, &r, &noise, &nlen),
            NM_OK);
        cr_assert_eq(r.dest_id, my_id);
        cr_assert_eq(r.src_id, (uint32_t)node_id);
    } else {
        cr_assert_eq(nmi_wire_handshake_decode(in, (size_t)n, &noise, &nlen),
                     NM_OK);
    }
    cr_assert_eq(nlen, 48);
    cr_assert_eq(nmi_noise_read_message(&hs, noise, nlen, NULL, 0, &pl),
                 NM_OK);
    cr_assert(nmi_noise_is_done(&hs));
    nmi_session s;
    cr_assert_eq(nmi_session_from_handshake(&s, &hs), NM_OK);
    nmi_noise_wipe(&hs);

    /* --- data, direct then routed; each echoed --------------------- */
    for (int form = 0; form < 2; form++) {
        const char *msg = form == 0 ? "hello, direct" : "hello, routed";
        nmi_wire_buf ev = {(const uint8_t *)msg, strlen(msg)};
        size_t off = form ? NMI_WIRE_ROUTE_LEN : 0;
        uint8_t frame[256];
        size_t flen = 0;
        cr_assert_eq(
            nmi_wire_frame_encode(&ev, 1, frame, sizeof(frame), &flen), NM_OK);
        nmi_wire_header h;
        nmi_wire_header_init(&h, 0, s.session_id, 0x42, (uint64_t)form);
        h.event_count = 1;
        size_t w = 0;
        cr_assert_eq(nmi_wire_seal(&s, &h, frame, flen, pkt + off,
                                   sizeof(pkt) - off, &w),
                     NM_OK);
        if (form) {
            nmi_wire_route rh;
            nmi_wire_route_init(&rh, node_id, (uint32_t)my_id,
                                NMI_WIRE_TTL_DATA);
            cr_assert_eq(nmi_wire_route_encode(&rh, pkt), NM_OK);
        }
        cr_assert_eq(send(fd, pkt, off + w, 0), (ssize_t)(off + w));

        /* skip heartbeats, pingwaves and grants until the echo */
        bool echoed = false;
        for (int tries = 0; tries < 50 && !echoed; tries++) {
            n = recv_one(fd, in, sizeof(in), 3000);
            cr_assert_gt(n, 0, "no echo (form %d)", form);
            nmi_wire_kind k = nmi_wire_classify(in, (size_t)n);
            uint8_t *p = in;
            size_t plen = (size_t)n;
            if (k == NMI_WIRE_KIND_ROUTED) {
                cr_assert_eq(nmi_wire_route_decode(in, (size_t)n, &r), NM_OK);
                cr_assert_eq(r.dest_id, my_id);
                p += NMI_WIRE_ROUTE_LEN;
                plen -= NMI_WIRE_ROUTE_LEN;
            } else if (k != NMI_WIRE_KIND_DIRECT) {
                continue; /* a pingwave */
            }
            nmi_wire_header rh;
            uint8_t *pt;
            size_t ptlen;
            cr_assert_eq(nmi_wire_open(&s, p, plen, &rh, &pt, &ptlen), NM_OK,
                         "the node's packet opens with our RX key");
            if (rh.subprotocol_id != 0 || (rh.flags & NMI_WIRE_F_HEARTBEAT)) {
                continue; /* grant or heartbeat */
            }
            cr_assert_eq(rh.stream_id, 0x42, "same stream id");
            cr_assert_eq(k == NMI_WIRE_KIND_ROUTED, form == 1,
                         "answered in the framing we used");
            nmi_wire_buf got;
            cr_assert_eq(
                nmi_wire_frame_decode(pt, ptlen, rh.event_count, &got, 1), 1);
            cr_assert_eq(got.len, strlen(msg));
            cr_assert_eq(memcmp(got.ptr, msg, got.len), 0);
            echoed = true;
        }
        cr_assert(echoed, "echo for form %d", form);
    }
    nmi_session_wipe(&s);
    close(fd);
    int st = nmt_proc_stop(&node, SIGTERM);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    unlink(psk_path);
}
