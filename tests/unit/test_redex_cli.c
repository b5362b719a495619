/*
 * tests/unit/test_redex_cli.c - `netmesh log append|tail|check|dump` run
 * as processes (the built binary at NM_BUILD_DIR/netmesh) in a fresh
 * temporary directory: output forms, exit codes (0 ok, 1 corrupt or
 * failure, 2 usage), a flipped byte caught by `log check`, and
 * `log tail --follow` following appends made by another process.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netmesh/redex.h>

#define CLI NM_BUILD_DIR "/netmesh"

static char tmpdir[128];
static char out[65536], err[8192];

static void
setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/nm_redex_cli_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void
teardown(void)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(redex_cli, .init = setup, .fini = teardown);

static void
slurp(const char *p, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(p, "r");
    if (!f) {
        return;
    }
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Run `netmesh <args>` in tmpdir with optional stdin text. */
static int
run_in(const char *input, const char *fmt, ...)
{
    char args[4096], cmd[8192], p[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(p, sizeof(p), "%s/.in", tmpdir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    if (input) {
        fputs(input, f);
    }
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && '%s' %s >'%s/.out' 2>'%s/.err' <'%s/.in'", tmpdir,
             CLI, args, tmpdir, tmpdir, tmpdir);
    int st = system(cmd);
    snprintf(p, sizeof(p), "%s/.out", tmpdir);
    slurp(p, out, sizeof(out));
    snprintf(p, sizeof(p), "%s/.err", tmpdir);
    slurp(p, err, sizeof(err));
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define run(...) run_in(NULL, __VA_ARGS__)

static void
flip_byte(const char *rel, long off)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, rel);
    int fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, off), 1);
    b ^= 0x01;
    cr_assert_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

Test(redex_cli, append_tail_dump_check)
{
    cr_assert_eq(run("log append d cortex/tasks alpha beta 'with space'"), 0,
                 "%s", err);
    cr_assert_str_eq(out, "0\n1\n2\n");
    cr_assert_eq(
        run_in("line one\nline\\two\n\n", "log append d cortex/tasks"), 0);
    cr_assert_str_eq(out, "3\n4\n5\n");
    cr_assert_eq(run("log tail d cortex/tasks"), 0, "%s", err);
    cr_assert_str_eq(out, "0\talpha\n1\tbeta\n2\twith space\n3\tline one\n"
                          "4\tline\\\\two\n5\t\n");
    cr_assert_eq(run("log tail d cortex/tasks --from 4 --hex"), 0);
    cr_assert_str_eq(out, "4\t6c696e655c74776f\n5\t\n");
    cr_assert_eq(run("log dump d/cortex/tasks --from 1"), 0, "%s", err);
    unsigned long long seq, ts;
    char kind[16];
    size_t len;
    char payload[64];
    cr_assert_eq(sscanf(out, "%llu\t%llu\t%15s\t%zu\t%63[^\n]", &seq, &ts,
                        kind, &len, payload),
                 5, "%s", out);
    cr_assert_eq(seq, 1);
    cr_assert_gt(ts, 1500000000ull * 1000000000ull);
    cr_assert_str_eq(kind, "heap");
    cr_assert_eq(len, 4);
    cr_assert_str_eq(payload, "beta");
    cr_assert_eq(run("log check d/cortex/tasks"), 0, "%s", out);
    cr_assert(strstr(out, "records: 6 valid, seq 0..5"), "%s", out);
    cr_assert(strstr(out, "status: ok"));
    cr_assert(strstr(out, "manifest: ok, generation 1"));
}

Test(redex_cli, tail_defaults_to_the_last_ten)
{
    char args[4096] = "log append d x";
    for (int i = 0; i < 25; i++) {
        char b[16];
        snprintf(b, sizeof(b), " e%d", i);
        strcat(args, b);
    }
    cr_assert_eq(run("%s", args), 0);
    cr_assert_eq(run("log tail d x"), 0);
    cr_assert(strncmp(out, "15\te15\n", 7) == 0, "%s", out);
    cr_assert(strstr(out, "24\te24\n"));
    cr_assert_null(strstr(out, "14\t"));
}

Test(redex_cli, check_finds_a_flipped_byte)
{
    char args[8192] = "log append d ch";
    for (int i = 0; i < 100; i++) {
        char b[32];
        snprintf(b, sizeof(b), " record-%03d", i);
        strcat(args, b);
    }
    cr_assert_eq(run("%s", args), 0);
    /* each payload is 10 bytes: record 40 is dat[400..410) */
    flip_byte("d/ch/v0000000001/dat", 405);
    cr_assert_eq(run("log check d/ch"), 1, "%s", out);
    cr_assert(strstr(out, "status: CORRUPT"), "%s", out);
    cr_assert(strstr(out, "first bad record: record 40 (seq 40"), "%s", out);
    cr_assert(strstr(out, "checksum mismatch"), "%s", out);
    cr_assert(strstr(out, "recovery would keep: seq 0..39 (40 records), "
                          "dropping the bad record and the 59 complete "
                          "records after it"),
              "%s", out);
    /* dump stops at the corruption with an error */
    cr_assert_eq(run("log dump d/ch"), 1);
    cr_assert(strstr(err, "checksum mismatch"), "%s", err);
    cr_assert(strstr(out, "\n39\t"));
    cr_assert_null(strstr(out, "\n40\t"));
    /* an idx byte too */
    flip_byte("d/ch/v0000000001/dat", 405); /* repair */
    cr_assert_eq(run("log check d/ch"), 0);
    flip_byte("d/ch/v0000000001/idx", 70 * 20 + 1); /* seq of record 70 */
    cr_assert_eq(run("log check d/ch"), 1);
    cr_assert(strstr(out, "record 70 (seq 70"), "%s", out);
    cr_assert(strstr(out, "seq 326, expected 70"), "%s", out);
    /* opening it recovers: the damaged generation is set aside */
    cr_assert_eq(run("log append d ch more"), 0, "%s", err);
    cr_assert_str_eq(out, "70\n");
    cr_assert_eq(run("log check d/ch"), 0, "%s", out);
    cr_assert(strstr(out, "quarantined: 1"), "%s", out);
    cr_assert(strstr(out, "generation 2"), "%s", out);
}

Test(redex_cli, check_torn_tail_is_ok)
{
    cr_assert_eq(run("log append d t a b c"), 0);
    char p[256];
    snprintf(p, sizeof(p), "%s/d/t/v0000000001/idx", tmpdir);
    cr_assert_eq(truncate(p, 50), 0);
    cr_assert_eq(run("log check d/t"), 0, "%s", out);
    cr_assert(strstr(out, "end: torn tail"), "%s", out);
    cr_assert(strstr(out, "recovery would keep: seq 0..1 (2 records), "
                          "cutting the incomplete last record"),
              "%s", out);
}

Test(redex_cli, usage_and_failures)
{
    cr_assert_eq(run("log"), 2);
    cr_assert_eq(run("log frobnicate"), 2);
    cr_assert_eq(run("log append d"), 2);
    cr_assert_eq(run("log tail d"), 2);
    cr_assert_eq(run("log tail d x --from abc"), 2);
    cr_assert_eq(run("log dump"), 2);
    cr_assert_eq(run("log check"), 2);
    cr_assert_eq(run("log check a b"), 2);
    cr_assert_eq(run("log append d x --fsync sometimes y"), 2);
    cr_assert_eq(run("log append d Bad/Name x"), 1);
    cr_assert(strstr(err, "invalid argument"), "%s", err);
    cr_assert_eq(run("log check nowhere"), 1);
    cr_assert_eq(run("log dump nowhere"), 1);
    cr_assert_eq(run("log tail d missing"), 1);
    cr_assert_eq(run("log append d x --fsync always -- -dash"), 0, "%s", err);
    cr_assert_str_eq(out, "0\n");
    cr_assert_eq(run("log tail d x"), 0);
    cr_assert_str_eq(out, "0\t-dash\n");
}

Test(redex_cli, tail_follow_sees_another_process_append)
{
    nm_redex_config rc;
    nm_redex_config_init(&rc);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/d", tmpdir);
    rc.dir = dir;
    nm_redex *rx;
    cr_assert_eq(nm_redex_open(&rc, &rx), NM_OK);
    nm_redex_file_config c;
    nm_redex_file_config_init(&c);
    c.persistent = true;
    nm_redex_file *f;
    cr_assert_eq(nm_redex_open_file(rx, "live/feed", &c, &f), NM_OK);
    cr_assert_eq(nm_redex_append(f, "first", 5, NULL), NM_OK);

    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(CLI, CLI, "log", "tail", dir, "live/feed", "--from", "0",
              "--follow", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char buf[4096] = "";
    size_t n = 0;
    const char *want = "0\tfirst\n1\tsecond\n2\tthird\n";
    bool appended = false;
    uint64_t deadline = (uint64_t)time(NULL) + 20;
    while (strstr(buf, want) == NULL && (uint64_t)time(NULL) < deadline) {
        buf[n] = '\0';
        if (!appended && strstr(buf, "0\tfirst\n")) {
            /* the follower is running: append while it watches */
            cr_assert_eq(nm_redex_append(f, "second", 6, NULL), NM_OK);
            cr_assert_eq(nm_redex_append(f, "third", 5, NULL), NM_OK);
            appended = true;
        }
        struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
        if (poll(&pf, 1, 200) == 1) {
            ssize_t r = read(pfd[0], buf + n, sizeof(buf) - 1 - n);
            if (r <= 0) {
                break;
            }
            n += (size_t)r;
            buf[n] = '\0';
        }
    }
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    close(pfd[0]);
    cr_assert(strstr(buf, want), "follower printed: %s", buf);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    nm_redex_close(rx);
}
