/* tests/cli_run.h - run a command line as a user would (popen), capture
 * its standard output, and return its exit status. */
#ifndef NM_TEST_CLI_RUN_H
#define NM_TEST_CLI_RUN_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

/* Run `cmd`; when `out` is given, *out receives stdout as a malloc'd,
 * NUL-terminated string (free it). Returns the exit code, or -1 if the
 * command did not exit normally. */
static inline int
nmt_run(const char *cmd, char **out)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "popen %s", cmd);
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    if (out) {
        *out = buf;
    } else {
        free(buf);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
