/*  tests/testutil.c - helpers shared by the tests. */
#include "tests/testutil.h"

#include "storage/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int ds_test_mkdtemp(const char *tag, char *out, size_t outlen)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    int n = snprintf(out, outlen, "%s/gossamer-%s-XXXXXX", base, tag);
    if (n < 0 || (size_t)n >= outlen)
        return -1;
    return mkdtemp(out) ? 0 : -1;
}

static int s_unlink_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int ds_test_rmrf(const char *path)
{
    return nftw(path, s_unlink_one, 16, FTW_DEPTH | FTW_PHYS);
}

ds_store_t *ds_test_store_open(const char *dir)
{
    ds_store_opts_t o;
    ds_store_opts_default(&o);
    o.nosync = true;
    ds_store_t *s = NULL;
    char err[256];
    if (ds_store_open(&s, dir, &o, err, sizeof err) != 0) {
        fprintf(stderr, "cannot open a test store in %s: %s\n", dir, err);
        return NULL;
    }
    return s;
}

int ds_test_store_setup(void **state)
{
    ds_test_store_fx_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    if (ds_test_mkdtemp("store", fx->dir, sizeof fx->dir) != 0) {
        free(fx);
        return -1;
    }
    if (!(fx->s = ds_test_store_open(fx->dir))) {
        ds_test_rmrf(fx->dir);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

int ds_test_store_teardown(void **state)
{
    ds_test_store_fx_t *fx = *state;
    ds_store_destroy(&fx->s);
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

/*  A TCP socket bound to 127.0.0.1:port (0: a port the kernel picks),
    not listening; -1 if the port cannot be bound. */
static int s_bound_socket(unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

int ds_test_refusing_port(uint16_t *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = s_bound_socket(0);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        fprintf(stderr, "cannot reserve a port on 127.0.0.1: %s\n", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/*  The ports tests may take: below the ephemeral range, or above it if
    the kernel leaves too little room below. */
static void s_port_region(unsigned *lo, unsigned *hi)
{
    unsigned eph_lo = 32768, eph_hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%u %u", &eph_lo, &eph_hi) != 2)
            eph_lo = 32768, eph_hi = 60999;
        fclose(f);
    }
    *lo = 20000;
    *hi = eph_lo;
    if (*hi < *lo + 2000) {
        *lo = eph_hi + 1;
        *hi = 65500;
    }
}

static bool s_port_bindable(unsigned port)
{
    int fd = s_bound_socket(port);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

uint16_t ds_test_port_block(unsigned n)
{
    static unsigned next; /* where this process looks next; 0: not yet */
    unsigned lo, hi;
    s_port_region(&lo, &hi);
    if (n == 0 || n > (hi - lo) / 4) {
        fprintf(stderr, "no block of %u ports fits in %u-%u\n", n, lo, hi);
        return 0;
    }
    unsigned span = hi - lo - n;
    if (next < lo || next > lo + span)
        next = lo + ((unsigned)getpid() * 7919u + (unsigned)ds_test_now_ms()) % span;
    for (unsigned tries = 0; tries < span; tries++) {
        unsigned base = next, k = 0;
        while (k < n && s_port_bindable(base + k))
            k++;
        next = base + k + 1 > lo + span ? lo : base + k + 1;
        if (k == n)
            return (uint16_t)base;
    }
    fprintf(stderr, "no %u free ports in a row on 127.0.0.1 in %u-%u\n", n, lo, hi);
    return 0;
}

uint16_t ds_test_free_port(void)
{
    return ds_test_port_block(1);
}

int ds_test_tcp_endpoint(char *out, size_t outlen)
{
    uint16_t port = ds_test_free_port();
    if (port == 0 || (size_t)snprintf(out, outlen, "tcp://127.0.0.1:%u", (unsigned)port) >= outlen)
        return -1;
    return 0;
}

uint64_t ds_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void ds_test_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

bool ds_test_pid_alive(pid_t pid)
{
    if (pid <= 0)
        return false;
    int st;
    (void)waitpid(pid, &st, WNOHANG); /* our zombie: reap it, so it counts as gone */
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}
