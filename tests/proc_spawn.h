/* tests/proc_spawn.h - start a long-running command (fork + execv, stdout
 * on a pipe, killed if the test dies), read its output line by line with
 * a deadline, signal it, reap it. For tests that run `netmesh node`
 * processes side by side. */
#ifndef NM_TEST_PROC_SPAWN_H
#define NM_TEST_PROC_SPAWN_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct nmt_proc {
    pid_t pid;
    int out; /* read end of its stdout */
    char buf[8192];
    size_t len;
} nmt_proc;

/* Start argv[0] with argv (NULL-terminated). stderr is inherited. */
static inline void
nmt_proc_start(nmt_proc *p, char *const argv[])
{
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
    memset(p, 0, sizeof(*p));
    pid_t parent = getpid();
    p->pid = fork();
    cr_assert_geq(p->pid, 0);
    if (p->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        dup2(fds[1], 1);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    p->out = fds[0];
}

static inline uint64_t
nmt_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Next line of stdout (without the newline) into line[cap]; false on EOF
 * or when timeout_ms passed. */
static inline bool
nmt_proc_line(nmt_proc *p, char *line, size_t cap, int timeout_ms)
{
    uint64_t deadline = nmt_ms() + (uint64_t)timeout_ms;
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - p->buf);
            size_t c = n < cap - 1 ? n : cap - 1;
            memcpy(line, p->buf, c);
            line[c] = '\0';
            memmove(p->buf, nl + 1, p->len - n - 1);
            p->len -= n + 1;
            return true;
        }
        uint64_t now = nmt_ms();
        if (now >= deadline || p->len == sizeof(p->buf)) {
            return false;
        }
        struct pollfd pfd = {.fd = p->out, .events = POLLIN};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return false;
        }
        ssize_t got = read(p->out, p->buf + p->len, sizeof(p->buf) - p->len);
        if (got <= 0) {
            return false;
        }
        p->len += (size_t)got;
    }
}

/* Wait for a line containing `needle`; the line goes to line[cap]. */
static inline bool
nmt_proc_expect(nmt_proc *p, const char *needle, char *line, size_t cap,
                int timeout_ms)
{
    uint64_t deadline = nmt_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = nmt_ms();
        if (now >= deadline) {
            return false;
        }
        if (!nmt_proc_line(p, line, cap, (int)(deadline - now))) {
            return false;
        }
        if (strstr(line, needle) != NULL) {
            return true;
        }
    }
}

/* Send sig and reap; returns the wait status (or -1). */
static inline int
nmt_proc_stop(nmt_proc *p, int sig)
{
    if (p->pid <= 0) {
        return -1;
    }
    kill(p->pid, sig);
    int st = 0;
    pid_t r;
    do {
        r = waitpid(p->pid, &st, 0);
    } while (r < 0 && errno == EINTR);
    close(p->out);
    p->pid = 0;
    return r < 0 ? -1 : st;
}

/* The string value of "key" in a one-line JSON object such as
 * `netmesh node --json-events` prints, into out[cap]; false when absent
 * or too long. (Just enough for those lines: no escapes.) */
static inline bool
nmt_json_field(const char *line, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(line, pat);
    if (p == NULL) {
        return false;
    }
    p += strlen(pat);
    size_t n = strcspn(p, "\"");
    if (n >= cap) {
        return false;
    }
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

#endif
