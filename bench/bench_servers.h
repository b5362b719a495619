/*
 * bench/bench_servers.h - start real redis-server and `nats-server -js` on
 * a free loopback port in a temporary directory, wait until they answer,
 * and stop them by PID. The one implementation: benchmarks use it as it is,
 * and tests/servers.h wraps it with Criterion assertions.
 *
 * Every server is started with PR_SET_PDEATHSIG = SIGKILL, so it dies with
 * the test process even when an assertion aborts the test: no server is
 * ever left behind. nmt_server_stop() kills by PID and reaps; stop+start
 * with the same struct restarts on the same port and directory (data kept),
 * which the "server killed mid-stream" tests use.
 *
 *   nmt_server s;
 *   if (nmt_server_try_start(&s, NMT_REDIS) != 0) { ...failed... }
 *   ... s.url is "redis://127.0.0.1:<port>" ...
 *   nmt_server_stop(&s);
 *   nmt_server_cleanup(&s);            // stop + remove the directory
 */
#ifndef NM_BENCH_SERVERS_H
#define NM_BENCH_SERVERS_H

#include <stdbool.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef enum { NMT_REDIS, NMT_NATS } nmt_kind;

typedef struct nmt_server {
    nmt_kind kind;
    pid_t pid;
    int port;
    char dir[128];
    char url[64];
    bool aof; /* redis: appendonly, so data survives a kill + restart */
} nmt_server;

static inline int
nmt_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static inline const char *
nmt_find_binary(nmt_kind kind)
{
    static const char *redis[] = {"/usr/bin/redis-server",
                                  "/usr/local/bin/redis-server", NULL};
    static const char *nats[] = {"/usr/bin/nats-server",
                                 "/usr/local/bin/nats-server",
                                 "/usr/sbin/nats-server", NULL};
    const char **c = kind == NMT_REDIS ? redis : nats;
    for (; *c; c++) {
        if (access(*c, X_OK) == 0) {
            return *c;
        }
    }
    return NULL;
}

/* Connect to 127.0.0.1:port; for Redis send PING and expect +PONG, for
 * NATS expect the INFO banner. */
static inline bool
nmt_server_answers(const nmt_server *s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)s->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0) {
        return false;
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return false;
    }
    if (s->kind == NMT_REDIS && write(fd, "PING\r\n", 6) != 6) {
        close(fd);
        return false;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char buf[64] = {0};
    bool ok = false;
    if (poll(&p, 1, 1000) == 1 && read(fd, buf, sizeof(buf) - 1) > 0) {
        ok = s->kind == NMT_REDIS ? strncmp(buf, "+PONG", 5) == 0
                                  : strncmp(buf, "INFO", 4) == 0;
    }
    close(fd);
    return ok;
}

/* Start (or restart, keeping port and directory) the server. Returns 0, or
 * -1 with a message on stderr. */
static inline int
nmt_server_spawn(nmt_server *s)
{
    const char *bin = nmt_find_binary(s->kind);
    if (!bin) {
        fprintf(stderr, "servers: %s not installed (make deps)\n",
                s->kind == NMT_REDIS ? "redis-server" : "nats-server");
        return -1;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);
        }
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            if (!getenv("NMT_SERVER_LOGS")) {
                dup2(null, 2);
            }
        }
        if (chdir(s->dir) != 0) {
            _exit(1);
        }
        if (s->kind == NMT_REDIS) {
            /* appendonly: what Redis acknowledged survives a SIGKILL and
             * a restart in the same directory. */
            execl(bin, bin, "--port", port, "--bind", "127.0.0.1", "--save",
                  "", "--appendonly", s->aof ? "yes" : "no", "--dir", s->dir,
                  "--daemonize", "no", "--protected-mode", "no", (char *)NULL);
        } else {
            execl(bin, bin, "-a", "127.0.0.1", "-p", port, "-js", "-sd",
                  s->dir, (char *)NULL);
        }
        _exit(127);
    }
    s->pid = pid;
    /* Wait (bounded) until it answers. */
    for (int i = 0; i < 1000; i++) {
        if (nmt_server_answers(s)) {
            return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "servers: %s exited at start (port %d)\n", bin,
                    s->port);
            s->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "servers: %s did not answer within 10 s\n", bin);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return -1;
}

static inline int
nmt_server_try_start_aof(nmt_server *s, nmt_kind kind, bool aof)
{
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->aof = aof;
    snprintf(s->dir, sizeof(s->dir), "/tmp/nmt-%s-XXXXXX",
             kind == NMT_REDIS ? "redis" : "nats");
    if (!mkdtemp(s->dir)) {
        return -1;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = nmt_free_port();
        if (s->port <= 0) {
            return -1;
        }
        snprintf(s->url, sizeof(s->url), "%s://127.0.0.1:%d",
                 kind == NMT_REDIS ? "redis" : "nats", s->port);
        if (nmt_server_spawn(s) == 0) {
            return 0;
        }
    }
    return -1;
}

/* Benchmarks: no append-only file (measure the network, not the disk). */
static inline int
nmt_server_try_start(nmt_server *s, nmt_kind kind)
{
    return nmt_server_try_start_aof(s, kind, false);
}

/* Stop by PID (SIGKILL: as abrupt as a crash) and reap. */
static inline void
nmt_server_stop(nmt_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static inline void
nmt_server_cleanup(nmt_server *s)
{
    nmt_server_stop(s);
    if (s->dir[0]) {
        char cmd[200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0) {
            fprintf(stderr, "servers: could not remove %s\n", s->dir);
        }
        s->dir[0] = '\0';
    }
}

#endif
