/*  bench/proc.c - child processes, free ports, temporary directories. */
#include "bench/bench.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_CHILDREN 32

/* PIDs of running children, read by the signal handler: plain stores. */
static volatile pid_t s_children[S_MAX_CHILDREN];

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void s_register(pid_t pid)
{
    for (unsigned i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] == 0) {
            s_children[i] = pid;
            return;
        }
}

static void s_unregister(pid_t pid)
{
    for (unsigned i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] == pid)
            s_children[i] = 0;
}

int bench_spawn(bench_proc_t *p, char *const argv[])
{
    pid_t parent = getpid();
    int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "bench: cannot open log %s: %s\n", p->log, strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bench: fork failed: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) {
        /* Die with the benchmark, even if it is SIGKILLed itself. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        signal(SIGPIPE, SIG_DFL);
        dup2(fd, 1);
        dup2(fd, 2);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        execv(argv[0], argv);
        dprintf(2, "bench: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd);
    p->pid = pid;
    s_register(pid);
    return 0;
}

/*  Waits for pid for at most wait_ms; true if it was reaped. */
static bool s_reap(pid_t pid, unsigned wait_ms)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)wait_ms * 1000000u;
    for (;;) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return true;
        if (bench_now_ns() >= deadline)
            return false;
        bench_sleep_ms(2);
    }
}

void bench_stop(bench_proc_t *p, int sig, unsigned wait_ms)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, sig);
    if (!s_reap(p->pid, wait_ms)) {
        fprintf(stderr, "bench: pid %d did not stop within %u ms: SIGKILL\n", (int)p->pid, wait_ms);
        kill(p->pid, SIGKILL);
        (void)s_reap(p->pid, 5000);
    }
    s_unregister(p->pid);
    p->pid = 0;
}

void bench_kill_now(const bench_proc_t *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGKILL);
}

bool bench_alive(bench_proc_t *p)
{
    if (p->pid <= 0)
        return false;
    pid_t r = waitpid(p->pid, NULL, WNOHANG);
    if (r == 0)
        return true;
    s_unregister(p->pid);
    p->pid = 0;
    return false;
}

void bench_kill_all(void)
{
    for (unsigned i = 0; i < S_MAX_CHILDREN; i++) {
        pid_t pid = s_children[i];
        if (pid > 0) {
            kill(pid, SIGKILL);
            (void)s_reap(pid, 5000);
            s_children[i] = 0;
        }
    }
}

static void s_on_signal(int sig)
{
    for (unsigned i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] > 0)
            kill(s_children[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

void bench_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void bench_log_tail(const bench_proc_t *p, unsigned lines)
{
    FILE *f = fopen(p->log, "r");
    if (!f)
        return;
    static char ring[64][512];
    unsigned n = 0;
    if (lines > 64)
        lines = 64;
    while (fgets(ring[n % lines], sizeof ring[0], f))
        n++;
    fclose(f);
    fprintf(stderr, "---- last lines of %s ----\n", p->log);
    for (unsigned i = n > lines ? n - lines : 0; i < n; i++)
        fputs(ring[i % lines], stderr);
}

int bench_proc_usage(pid_t pid, double *cpu_ms, uint64_t *ctx_switches)
{
    char path[64], line[1024];
    *cpu_ms = 0;
    *ctx_switches = 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    char *close_paren = ok ? strrchr(line, ')') : NULL;
    unsigned long utime = 0, stime = 0;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
       majflt cmajflt utime stime */
    if (!close_paren ||
        sscanf(close_paren + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
               &stime) != 2)
        return -1;
    *cpu_ms = (double)(utime + stime) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *de;
    for (unsigned guard = 0; guard < 4096 && (de = readdir(d)); guard++) {
        if (de->d_name[0] == '.')
            continue;
        char spath[128];
        snprintf(spath, sizeof spath, "/proc/%d/task/%.16s/status", (int)pid, de->d_name);
        FILE *s = fopen(spath, "r");
        if (!s)
            continue;
        while (fgets(line, sizeof line, s)) {
            unsigned long long v;
            if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
                *ctx_switches += v;
        }
        fclose(s);
    }
    closedir(d);
    return 0;
}

int bench_free_ports(unsigned n, int *ports)
{
    int fds[64];
    int rc = 0;
    unsigned opened = 0;
    if (n > 64)
        return -1;
    for (; opened < n; opened++) {
        struct sockaddr_in a;
        socklen_t alen = sizeof a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
            if (fd >= 0)
                close(fd);
            fprintf(stderr, "bench: cannot find a free port: %s\n", strerror(errno));
            rc = -1;
            break;
        }
        fds[opened] = fd;
        ports[opened] = ntohs(a.sin_port);
    }
    for (unsigned i = 0; i < opened; i++)
        close(fds[i]);
    return rc;
}

int bench_tcp_connect(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
                    connect(fd, (struct sockaddr *)&a, sizeof a) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/*  Waits until fd is ready for `events` or until `deadline`: 0, -1, -2. */
static int s_wait_fd(int fd, short events, uint64_t deadline)
{
    uint64_t now = bench_now_ns();
    if (now >= deadline)
        return -2;
    struct pollfd p = {fd, events, 0};
    int ms = (int)((deadline - now + 999999u) / 1000000u);
    int r = poll(&p, 1, ms);
    if (r == 0)
        return -2;
    return r < 0 && errno != EINTR ? -1 : 0;
}

int bench_send_all(int fd, struct iovec *iov, size_t n, uint64_t deadline)
{
    for (unsigned guard = 0; n > 0 && guard < 10000; guard++) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (w < 0) {
            int r = s_wait_fd(fd, POLLOUT, deadline);
            if (r != 0)
                return r;
            continue;
        }
        size_t done = (size_t)w;
        while (n > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return n == 0 ? 0 : -1;
}

ssize_t bench_recv_some(int fd, void *buf, size_t cap, uint64_t deadline)
{
    for (unsigned guard = 0; guard < 100000; guard++) {
        ssize_t r = recv(fd, buf, cap, MSG_DONTWAIT);
        if (r > 0)
            return r;
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            return -1;
        int w = s_wait_fd(fd, POLLIN, deadline);
        if (w != 0)
            return w;
    }
    return -1;
}

int bench_mkdtemp(char *out, size_t len, const char *tag)
{
    int n = snprintf(out, len, "/tmp/%s.XXXXXX", tag);
    if (n < 0 || (size_t)n >= len || !mkdtemp(out)) {
        fprintf(stderr, "bench: cannot make a temporary directory: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static int s_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void bench_rmtree(const char *dir)
{
    if (strncmp(dir, "/tmp/", 5) != 0)
        return; /* only what bench_mkdtemp made */
    nftw(dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}
