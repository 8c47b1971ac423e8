/*  tests/integration/cluster.h - the one harness of the coordinator
    integration tests: real dscoord processes on 127.0.0.1, real LMDB
    files in a fresh temporary directory, and dsctl or the C API against
    them.

    Included first by every tests/integration/test_*.c that runs dscoord or
    dsctl (only test_*.c files are compiled, so the harness is a header of
    static functions; each one is marked DS_CL_FN so that a test that does
    not use one does not warn).

    What it promises (STYLE.md, "Tests"):
    - ports are picked free, below the kernel's ephemeral range so that no
      outgoing connection takes a stopped member's port while it is down;
    - every file lives in one fresh directory per test (removed when the
      test passes, kept and named when it fails);
    - each member's stdout and stderr go to DIR/mN.log (restarts append,
      after a "---- start" line);
    - every process started is stopped by its PID: ds_cl_destroy() (the
      cmocka teardown), an atexit handler, and a handler for SIGALRM (the
      per-test watchdog), SIGTERM and SIGINT all SIGKILL and reap what is
      left; children started from the main thread also get
      PR_SET_PDEATHSIG, so that a test killed by SIGKILL takes them along;
    - when a test fails (it did not reach ds_cl_passed()), or the watchdog
      fires, the last DS_CL_TAIL_LINES lines of every member's log are
      printed;
    - every wait is bounded by a deadline and polls every DS_CL_POLL_MS.

    A test: c = ds_cl_new("name", 3, NULL); ds_cl_start_all(c);
    ds_cl_wait_leader(c, ...); ... ds_cl_shutdown(c) (asserts clean exits);
    ds_cl_passed(c); and in teardown ds_cl_destroy(&c).
*/
#ifndef DS_TESTS_INTEGRATION_CLUSTER_H
#define DS_TESTS_INTEGRATION_CLUSTER_H

/* pipe2, strcasestr: include this header before any other. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsctl/args.h"
#include "dsctl/client.h"
#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/msg.h"
#include "protocol/transport.h"
#include "tests/testutil.h"

#ifndef DS_DSCOORD_BIN
#error "DS_DSCOORD_BIN must name the dscoord binary (tests/CMakeLists.txt defines it)"
#endif
#ifndef DS_DSCTL_BIN
#error "DS_DSCTL_BIN must name the dsctl binary (tests/CMakeLists.txt defines it)"
#endif

#define DS_CL_FN static __attribute__((unused))

#define DS_CL_MAX_MEMBERS  5
#define DS_CL_TAIL_LINES   80
#define DS_CL_POLL_MS      25
#define DS_CL_PROBE_MS     500   /* one probe rpc to one member */
#define DS_CL_TERM_GRACE   5000  /* SIGTERM, then this long, then SIGKILL */
#define DS_CL_WATCHDOG_S   240   /* one test, start to end (ctest's limit is 600 s) */
#define DS_CL_DSCTL_KILL   60000 /* a dsctl run that outlives this is killed */
#define DS_CL_ELECTION_MS  300
#define DS_CL_HEARTBEAT_MS 30
#define DS_CL_ARGS         32
#define DS_CL_OUT          32768

typedef struct {
    uint64_t id;
    pid_t pid;    /* 0 when not running */
    bool stopped; /* SIGSTOPped */
    unsigned starts;
    char peer[64]; /* tcp://127.0.0.1:P */
    char rpc[64];
    char http[32]; /* 127.0.0.1:P */
    char data[600];
    char log[600];
} ds_cl_member_t;

typedef struct {
    int election_ms;                  /* 0: DS_CL_ELECTION_MS */
    int heartbeat_ms;                 /* 0: DS_CL_HEARTBEAT_MS */
    int snapshot_entries;             /* 0: dscoord's default */
    const char *snapshot_log_percent; /* NULL: dscoord's default */
    const char *worker_heartbeat;     /* NULL: dscoord's default */
    const char *worker_timeout;       /* NULL: dscoord's default */
    bool secure; /* CURVE: keys bootstrapped in DIR/keys (admin "admin"); else --insecure */
} ds_cl_opts_t;

#define DS_CL_MAX_WORKERS 4

/*  A dsworker the test runs: DIR/wN (data) and DIR/wN.log. */
typedef struct {
    pid_t pid;
    unsigned starts;
    char name[16];
    char ports[32]; /* --ports LO-HI, a range of its own */
    char data[600];
    char log[600];
} ds_cl_worker_t;

typedef struct {
    char name[64];
    char dir[512]; /* a member's files are DIR/mN and DIR/mN.log */
    size_t n;
    ds_cl_member_t m[DS_CL_MAX_MEMBERS];
    ds_cl_opts_t opts;
    char peers[DS_CL_MAX_MEMBERS * 64]; /* --peers */
    char rpcs[DS_CL_MAX_MEMBERS * 64];  /* --coordinators */
    char **envp;                        /* the environment of what we start */
    size_t n_workers;
    ds_cl_worker_t w[DS_CL_MAX_WORKERS];
    bool passed;
    bool dumped;
    char keys[600];               /* secure: DIR/keys (ds_keys_bootstrap) */
    char cluster_pub[700];        /* secure: DIR/keys/cluster.pub */
    char admin_key[700];          /* secure: DIR/keys/private/admin.key */
    const char *dsctl_key;        /* dsctl --key: NULL admin_key; "" no key flags at all */
    char token[128];              /* secure: the join token workers start with ("" none) */
    ds_transport_security_t *sec; /* secure: the admin's CURVE client for the C API */
    pthread_mutex_t lock;         /* member pids: a test may start and kill from a thread */
} ds_cl_t;

/* The cluster of the running test, for the atexit and signal handlers. */
static ds_cl_t *volatile s_cl_live;
static uint64_t s_cl_corr;

DS_CL_FN int64_t ds_cl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

DS_CL_FN void ds_cl_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*  A seed from $DS_SEED, else from the clock and pid; printed so that a
    failure can be replayed. */
DS_CL_FN unsigned ds_cl_seed(const char *test)
{
    const char *env = getenv("DS_SEED");
    unsigned seed = env && *env ? (unsigned)strtoul(env, NULL, 0)
                                : (unsigned)(time(NULL) ^ ((unsigned)getpid() << 16));
    printf("[ %s ] seed=%u (set DS_SEED to replay)\n", test, seed);
    fflush(stdout);
    return seed;
}

/* ---- logs -------------------------------------------------------------------- */

DS_CL_FN void s_cl_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

DS_CL_FN void s_cl_puts(const char *s)
{
    s_cl_write_all(STDOUT_FILENO, s, strlen(s));
}

/*  Prints the last DS_CL_TAIL_LINES lines of `path` to stdout. Uses only
    async-signal-safe calls: it also runs from the watchdog. */
DS_CL_FN void s_cl_tail(const char *path)
{
    static char buf[32768];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        s_cl_puts("  (no log)\n");
        return;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof buf ? size - (off_t)sizeof buf : 0;
    ssize_t n = lseek(fd, from, SEEK_SET) == from ? read(fd, buf, sizeof buf) : -1;
    close(fd);
    if (n <= 0)
        return;
    size_t start = (size_t)n, lines = 0;
    if (buf[start - 1] == '\n')
        start--;
    while (start > 0 && lines < DS_CL_TAIL_LINES) {
        start--;
        if (buf[start] == '\n')
            lines++;
    }
    if (buf[start] == '\n')
        start++;
    s_cl_write_all(STDOUT_FILENO, buf + start, (size_t)n - start);
}

/*  Prints every member's log tail (once per test). */
DS_CL_FN void ds_cl_dump_logs(ds_cl_t *c)
{
    if (!c || c->dumped)
        return;
    c->dumped = true;
    for (size_t i = 0; i < c->n; i++) {
        s_cl_puts("\n==== ");
        s_cl_puts(c->m[i].log);
        s_cl_puts(" (last lines) ====\n");
        s_cl_tail(c->m[i].log);
    }
    for (size_t i = 0; i < c->n_workers; i++) {
        s_cl_puts("\n==== ");
        s_cl_puts(c->w[i].log);
        s_cl_puts(" (last lines) ====\n");
        s_cl_tail(c->w[i].log);
    }
    s_cl_puts("==== end of logs; the files stay in ");
    s_cl_puts(c->dir);
    s_cl_puts(" ====\n");
}

/* ---- processes ------------------------------------------------------------------ */

DS_CL_FN void s_cl_reap(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
            ;
        *pid = 0;
    }
}

/*  SIGKILLs every process whose working directory is inside the test's
    directory: the instances that dsworkers started (they outlive a
    killed worker, as they should in production). */
DS_CL_FN void s_cl_kill_strays(const ds_cl_t *c)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    size_t len = strlen(c->dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1 || pid == getpid())
            continue;
        char link[64], cwd[1024];
        snprintf(link, sizeof link, "/proc/%ld/cwd", pid);
        ssize_t n = readlink(link, cwd, sizeof cwd - 1);
        if (n < (ssize_t)len)
            continue;
        cwd[n] = '\0';
        if (strncmp(cwd, c->dir, len) == 0 && (cwd[len] == '/' || cwd[len] == '\0'))
            kill((pid_t)pid, SIGKILL);
    }
    closedir(d);
}

/*  SIGKILLs and reaps every member and worker still running, and the
    workers' instances. */
DS_CL_FN void s_cl_kill_all(ds_cl_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        s_cl_reap(&c->m[i].pid);
    for (size_t i = 0; i < c->n_workers; i++)
        s_cl_reap(&c->w[i].pid);
    if (c->n_workers)
        s_cl_kill_strays(c);
}

DS_CL_FN void s_cl_atexit(void)
{
    ds_cl_t *c = s_cl_live;
    if (c) {
        if (!c->passed)
            ds_cl_dump_logs(c);
        s_cl_kill_all(c);
    }
}

DS_CL_FN void s_cl_on_signal(int sig)
{
    ds_cl_t *c = s_cl_live;
    s_cl_puts(sig == SIGALRM ? "\nwatchdog: the test ran too long; logs follow\n"
                             : "\nthe test was interrupted; logs follow\n");
    if (c) {
        ds_cl_dump_logs(c);
        s_cl_kill_all(c);
    }
    _exit(1);
}

DS_CL_FN void s_cl_install_handlers(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    /* czmq would otherwise install its own SIGINT/SIGTERM handlers (which
       only set a flag) the first time a socket is made. */
    zsys_handler_set(NULL);
    atexit(s_cl_atexit);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_cl_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/*  Three ports of its own for each member (peer, rpc, http): free now,
    below the ephemeral range (ds_test_port_block). */
DS_CL_FN void s_cl_pick_ports(ds_cl_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        ds_cl_member_t *m = &c->m[i];
        unsigned base = ds_test_port_block(3);
        assert_true(base != 0);
        snprintf(m->peer, sizeof m->peer, "tcp://127.0.0.1:%u", base);
        snprintf(m->rpc, sizeof m->rpc, "tcp://127.0.0.1:%u", base + 1);
        snprintf(m->http, sizeof m->http, "127.0.0.1:%u", base + 2);
    }
}

/*  The environment for dsctl: ours without DSCTL_* and HOME, plus HOME
    set to the test directory, so no config file of the user leaks in. */
DS_CL_FN char **s_cl_make_env(const char *home)
{
    extern char **environ;
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    assert_non_null(env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "DSCTL_", 6) != 0 && strncmp(environ[i], "HOME=", 5) != 0)
            env[k++] = strdup(environ[i]);
    size_t len = strlen(home) + 6;
    env[k] = malloc(len);
    assert_non_null(env[k]);
    snprintf(env[k], len, "HOME=%s", home);
    return env;
}

/*  Makes a cluster of `n` members (not started) in a fresh directory named
    after `name`. `opts` may be NULL. Installs the cleanup handlers and
    arms the watchdog. */
DS_CL_FN ds_cl_t *ds_cl_new(const char *name, size_t n, const ds_cl_opts_t *opts)
{
    assert_true(n >= 1 && n <= DS_CL_MAX_MEMBERS);
    assert_null(s_cl_live); /* one cluster at a time */
    s_cl_install_handlers();
    ds_cl_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->n = n;
    if (opts)
        c->opts = *opts;
    if (!c->opts.election_ms)
        c->opts.election_ms = DS_CL_ELECTION_MS;
    if (!c->opts.heartbeat_ms)
        c->opts.heartbeat_ms = DS_CL_HEARTBEAT_MS;
    pthread_mutex_init(&c->lock, NULL);
    assert_int_equal(ds_test_mkdtemp(name, c->dir, sizeof c->dir), 0);
    s_cl_pick_ports(c);
    size_t pl = 0, rl = 0;
    for (size_t i = 0; i < n; i++) {
        ds_cl_member_t *m = &c->m[i];
        m->id = i + 1;
        snprintf(m->data, sizeof m->data, "%s/m%zu", c->dir, i + 1);
        snprintf(m->log, sizeof m->log, "%s/m%zu.log", c->dir, i + 1);
        pl += (size_t)snprintf(c->peers + pl, sizeof c->peers - pl, "%s%" PRIu64 "=%s",
                               i ? "," : "", m->id, m->peer);
        rl += (size_t)snprintf(c->rpcs + rl, sizeof c->rpcs - rl, "%s%s", i ? "," : "", m->rpc);
    }
    c->envp = s_cl_make_env(c->dir);
    if (c->opts.secure) {
        char err[512];
        zcert_t *cert = NULL;
        char server[DS_KEY_TEXT_LEN + 1];
        snprintf(c->keys, sizeof c->keys, "%s/keys", c->dir);
        snprintf(c->cluster_pub, sizeof c->cluster_pub, "%s/cluster.pub", c->keys);
        snprintf(c->admin_key, sizeof c->admin_key, "%s/private/admin.key", c->keys);
        if (ds_keys_bootstrap(c->keys, (unsigned)n, "admin", err, sizeof err) != 0 ||
            ds_keys_load_pair(c->admin_key, &cert, err, sizeof err) != 0 ||
            ds_keys_load_public(c->cluster_pub, server, err, sizeof err) != 0 ||
            ds_transport_security_new_client(cert, server, &c->sec, err, sizeof err) != 0)
            fail_msg("cannot make the test cluster's keys: %s", err);
        zcert_destroy(&cert);
    }
    s_cl_live = c;
    alarm(DS_CL_WATCHDOG_S);
    printf("[ %s ] %zu members in %s: %s\n", name, n, c->dir, c->rpcs);
    fflush(stdout);
    return c;
}

/*  Forks and execs argv with stdout and stderr appended to `log`. */
DS_CL_FN pid_t s_cl_spawn(ds_cl_t *c, const char *const *argv, const char *log, const char *banner)
{
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    s_cl_write_all(fd, banner, strlen(banner));
    pid_t parent = getpid();
    bool main_thread = syscall(SYS_gettid) == parent;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (main_thread && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
            _exit(126);
        int nul = open("/dev/null", O_RDONLY);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(126);
        signal(SIGPIPE, SIG_DFL);
        execve(argv[0], (char *const *)argv, c->envp);
        static const char msg[] = "exec failed\n";
        s_cl_write_all(2, msg, sizeof msg - 1);
        _exit(127);
    }
    close(fd);
    return pid;
}

/*  Starts member `i` (0-based) with its data directory (a restart keeps
    it). Does not wait for anything. */
DS_CL_FN void ds_cl_start(ds_cl_t *c, size_t i)
{
    ds_cl_member_t *m = &c->m[i];
    char id[24], hb[24], el[24], snap[24];
    snprintf(id, sizeof id, "%" PRIu64, m->id);
    snprintf(hb, sizeof hb, "%d", c->opts.heartbeat_ms);
    snprintf(el, sizeof el, "%d", c->opts.election_ms);
    snprintf(snap, sizeof snap, "%d", c->opts.snapshot_entries);
    const char *argv[DS_CL_ARGS] = {DS_DSCOORD_BIN,
                                    "--id",
                                    id,
                                    "--data",
                                    m->data,
                                    "--peers",
                                    c->peers,
                                    "--rpc",
                                    m->rpc,
                                    "--http",
                                    m->http,
                                    "--heartbeat-ms",
                                    hb,
                                    "--election-ms",
                                    el,
                                    "--tick-ms",
                                    "10",
                                    "--log-level",
                                    "info"};
    size_t argc = 19;
    if (c->opts.snapshot_entries > 0) {
        argv[argc++] = "--snapshot-entries";
        argv[argc++] = snap;
    }
    if (c->opts.snapshot_log_percent) {
        argv[argc++] = "--snapshot-log-percent";
        argv[argc++] = c->opts.snapshot_log_percent;
    }
    if (c->opts.worker_heartbeat) {
        argv[argc++] = "--worker-heartbeat";
        argv[argc++] = c->opts.worker_heartbeat;
    }
    if (c->opts.worker_timeout) {
        argv[argc++] = "--worker-timeout";
        argv[argc++] = c->opts.worker_timeout;
    }
    if (c->opts.secure) {
        argv[argc++] = "--keys";
        argv[argc++] = c->keys;
    } else {
        argv[argc++] = "--insecure";
    }
    argv[argc] = NULL;

    char banner[96];
    snprintf(banner, sizeof banner, "---- start #%u of member %" PRIu64 " ----\n", ++m->starts,
             m->id);
    pthread_mutex_lock(&c->lock);
    assert_true(m->pid == 0);
    pid_t pid = s_cl_spawn(c, argv, m->log, banner);
    m->pid = pid;
    m->stopped = false;
    pthread_mutex_unlock(&c->lock);
}

DS_CL_FN void ds_cl_start_all(ds_cl_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        ds_cl_start(c, i);
}

/* ---- dsworkers -------------------------------------------------------------------- */

/*  Declares `n` workers w1..wn (not started): data DIR/wN, log DIR/wN.log,
    and instance ports of their own. */
DS_CL_FN void ds_cl_workers(ds_cl_t *c, size_t n)
{
    assert_true(n <= DS_CL_MAX_WORKERS);
    c->n_workers = n;
    /* Below the ephemeral range, free now: an instance's port is never a
       connection's source port or another test's. */
    unsigned base = ds_test_port_block(10u * (unsigned)n);
    assert_true(base != 0);
    for (size_t i = 0; i < n; i++) {
        ds_cl_worker_t *w = &c->w[i];
        snprintf(w->name, sizeof w->name, "w%u", (unsigned)(i + 1) % 100u);
        snprintf(w->data, sizeof w->data, "%s/w%zu", c->dir, i + 1);
        snprintf(w->log, sizeof w->log, "%s/w%zu.log", c->dir, i + 1);
        snprintf(w->ports, sizeof w->ports, "%u-%u", base + (unsigned)i * 10u,
                 base + (unsigned)i * 10u + 9u);
    }
}

/*  Starts worker `i` joining through `join` (NULL: every member's rpc
    endpoint), with label zone=a (odd) or zone=b (even numbers). */
DS_CL_FN void ds_cl_worker_start(ds_cl_t *c, size_t i, const char *join)
{
    ds_cl_worker_t *w = &c->w[i];
    const char *argv[20] = {DS_DSWORKER_BIN,
                            "--name",
                            w->name,
                            "--data",
                            w->data,
                            "--join",
                            join ? join : c->rpcs,
                            "--ports",
                            w->ports,
                            "--label",
                            i % 2 ? "zone=b" : "zone=a",
                            "--log-level",
                            "info"};
    size_t argc = 13;
    if (c->opts.secure) {
        argv[argc++] = "--cluster-key";
        argv[argc++] = c->cluster_pub;
        if (c->token[0]) {
            argv[argc++] = "--token";
            argv[argc++] = c->token;
        }
    } else {
        argv[argc++] = "--insecure";
    }
    argv[argc] = NULL;
    char banner[96];
    snprintf(banner, sizeof banner, "---- start #%u of worker %s ----\n", ++w->starts, w->name);
    pthread_mutex_lock(&c->lock);
    assert_true(w->pid == 0);
    w->pid = s_cl_spawn(c, argv, w->log, banner);
    pthread_mutex_unlock(&c->lock);
}

/*  SIGKILLs worker `i` (its instances keep running, as they would). */
DS_CL_FN void ds_cl_worker_kill(ds_cl_t *c, size_t i)
{
    pthread_mutex_lock(&c->lock);
    s_cl_reap(&c->w[i].pid);
    pthread_mutex_unlock(&c->lock);
}

/*  Fails the test if a worker that should run has exited. */
DS_CL_FN void ds_cl_workers_alive(ds_cl_t *c)
{
    for (size_t i = 0; i < c->n_workers; i++) {
        int status;
        if (c->w[i].pid > 0 && waitpid(c->w[i].pid, &status, WNOHANG) == c->w[i].pid) {
            c->w[i].pid = 0;
            fail_msg("worker %s exited on its own: %s %d (see %s)", c->w[i].name,
                     WIFEXITED(status) ? "exit status" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), c->w[i].log);
        }
    }
}

/*  SIGKILLs member `i` and reaps it. */
DS_CL_FN void ds_cl_kill(ds_cl_t *c, size_t i)
{
    pthread_mutex_lock(&c->lock);
    pid_t pid = c->m[i].pid;
    if (pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    c->m[i].pid = 0;
    c->m[i].stopped = false;
    pthread_mutex_unlock(&c->lock);
}

/*  SIGSTOP (stop true) or SIGCONT member `i`. */
DS_CL_FN void ds_cl_pause(ds_cl_t *c, size_t i, bool stop)
{
    pthread_mutex_lock(&c->lock);
    assert_true(c->m[i].pid > 0);
    assert_int_equal(kill(c->m[i].pid, stop ? SIGSTOP : SIGCONT), 0);
    c->m[i].stopped = stop;
    pthread_mutex_unlock(&c->lock);
}

/*  SIGTERMs member `i` and waits DS_CL_TERM_GRACE for it to exit, then
    SIGKILLs it. Returns its wait status (-1 if it was not running, or
    had to be killed). */
DS_CL_FN int ds_cl_term(ds_cl_t *c, size_t i)
{
    pthread_mutex_lock(&c->lock);
    ds_cl_member_t *m = &c->m[i];
    int status = -1;
    if (m->pid > 0) {
        kill(m->pid, SIGTERM);
        if (m->stopped)
            kill(m->pid, SIGCONT);
        int64_t deadline = ds_cl_now_ms() + DS_CL_TERM_GRACE;
        pid_t r = 0;
        while ((r = waitpid(m->pid, &status, WNOHANG)) == 0 && ds_cl_now_ms() < deadline)
            ds_cl_sleep_ms(10);
        if (r != m->pid) {
            printf("[ %s ] member %" PRIu64 " (pid %d) ignored SIGTERM for %d ms: SIGKILL\n",
                   c->name, m->id, (int)m->pid, DS_CL_TERM_GRACE);
            kill(m->pid, SIGKILL);
            while (waitpid(m->pid, NULL, 0) < 0 && errno == EINTR)
                ;
            status = -1;
        }
        m->pid = 0;
        m->stopped = false;
    }
    pthread_mutex_unlock(&c->lock);
    return status;
}

/*  Fails the test if a member that should run has exited on its own
    (crash, sanitizer report, refused flags). Main thread only. */
DS_CL_FN void ds_cl_check_alive(ds_cl_t *c)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        ds_cl_member_t *m = &c->m[i];
        int status;
        if (m->pid > 0 && waitpid(m->pid, &status, WNOHANG) == m->pid) {
            m->pid = 0;
            pthread_mutex_unlock(&c->lock);
            fail_msg("member %" PRIu64 " exited on its own: %s %d (see %s)", m->id,
                     WIFEXITED(status) ? "exit status" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), m->log);
        }
    }
    pthread_mutex_unlock(&c->lock);
}

/*  Stops every member with SIGTERM and asserts each one exited with
    status 0 (a clean stop; under the sanitizers also: no leak report). */
DS_CL_FN void ds_cl_shutdown(ds_cl_t *c)
{
    ds_cl_check_alive(c);
    int bad = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!c->m[i].pid)
            continue;
        int st = ds_cl_term(c, i);
        if (!(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            printf("[ %s ] member %" PRIu64 " did not stop cleanly on SIGTERM (wait status %d)\n",
                   c->name, c->m[i].id, st);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/*  The test reached its end: keep logs quiet and remove the directory. */
DS_CL_FN void ds_cl_passed(ds_cl_t *c)
{
    c->passed = true;
}

/*  Stops everything (SIGTERM, then SIGKILL), prints the logs if the test
    did not pass, removes the directory if it did, frees. Accepts NULL. */
DS_CL_FN void ds_cl_destroy(ds_cl_t **c_p)
{
    ds_cl_t *c = *c_p;
    if (!c)
        return;
    alarm(0);
    if (!c->passed)
        ds_cl_dump_logs(c);
    for (size_t i = 0; i < c->n_workers; i++)
        if (c->w[i].pid)
            kill(c->w[i].pid, SIGTERM);
    for (size_t i = 0; i < c->n; i++)
        if (c->m[i].pid)
            (void)ds_cl_term(c, i);
    s_cl_kill_all(c);
    if (c->passed)
        (void)ds_test_rmrf(c->dir);
    for (size_t i = 0; c->envp[i]; i++)
        free(c->envp[i]);
    free(c->envp);
    ds_transport_security_destroy(&c->sec);
    pthread_mutex_destroy(&c->lock);
    s_cl_live = NULL;
    free(c);
    *c_p = NULL;
}

/*  A cmocka teardown for tests whose state is a ds_cl_t *. */
DS_CL_FN int ds_cl_teardown(void **state)
{
    ds_cl_t *c = *state;
    ds_cl_destroy(&c);
    *state = NULL;
    return 0;
}

/* ---- the C API: probes against one member ------------------------------------ */

/*  One request to member `i`'s rpc endpoint. Returns 0 and *reply (free
    with ds_msg_destroy), or a DS_E code. */
DS_CL_FN int ds_cl_call(const char *endpoint, uint16_t type, const void *body, int timeout_ms,
                        ds_msg_t **reply)
{
    ds_envelope_t env = {DS_PROTOCOL_VERSION, type,
                         __atomic_add_fetch(&s_cl_corr, 1, __ATOMIC_RELAXED), "it-probe"};
    ds_cl_t *c = s_cl_live;
    return ds_rpc_call(endpoint, c ? c->sec : NULL, &env, body, timeout_ms, reply, NULL);
}

/*  What one member says about itself (a stale cluster status, answered
    by any member from its own view). */
typedef struct {
    uint64_t lead, term, commit, applied;
} ds_cl_view_t;

DS_CL_FN int ds_cl_view(ds_cl_t *c, size_t i, ds_cl_view_t *v)
{
    if (!c->m[i].pid || c->m[i].stopped)
        return DS_ESTATE;
    ds_query_req_t q = {.service = "", .stale = true, .limit = 0};
    ds_msg_t *r = NULL;
    int rc = ds_cl_call(c->m[i].rpc, DS_MSG_CLUSTER_STATUS, &q, DS_CL_PROBE_MS, &r);
    if (rc == 0 && r->env.type != DS_MSG_CLUSTER_STATUS_REPLY)
        rc = DS_EUNKNOWN;
    if (rc == 0) {
        const ds_cluster_status_reply_t *s = r->body;
        *v = (ds_cl_view_t){s->leader, s->term, s->commit_index, s->applied_index};
    }
    ds_msg_destroy(&r);
    return rc;
}

/*  Looks once for a member that leads with the agreement of a majority
    of the whole cluster (they answer with the same leader and term) and
    is not in `exclude` (bit i = member index i). Returns true and sets
    *idx and *term (may be NULL). Describes what each member said in
    `why` (may be NULL). Never fails the test: a helper thread may call it. */
DS_CL_FN bool ds_cl_find_leader(ds_cl_t *c, unsigned exclude, size_t *idx, uint64_t *term,
                                char *why, size_t whylen)
{
    ds_cl_view_t v[DS_CL_MAX_MEMBERS];
    bool up[DS_CL_MAX_MEMBERS];
    size_t wl = 0;
    for (size_t i = 0; i < c->n; i++) {
        up[i] = ds_cl_view(c, i, &v[i]) == 0;
        if (why && wl < whylen)
            wl += (size_t)snprintf(why + wl, whylen - wl,
                                   up[i] ? "m%zu: lead %" PRIu64 " term %" PRIu64 "; "
                                         : "m%zu: no answer; ",
                                   i + 1, up[i] ? v[i].lead : 0, up[i] ? v[i].term : 0);
    }
    for (size_t l = 0; l < c->n; l++) {
        if (!up[l] || v[l].lead != c->m[l].id || (exclude & (1u << l)))
            continue;
        size_t agree = 0;
        for (size_t i = 0; i < c->n; i++)
            agree += up[i] && v[i].lead == v[l].lead && v[i].term == v[l].term;
        if (agree > c->n / 2) {
            *idx = l;
            if (term)
                *term = v[l].term;
            return true;
        }
    }
    return false;
}

/*  Waits for ds_cl_find_leader() to find one; fails the test at the
    deadline. Returns the leader's index and sets *term_out (may be NULL). */
DS_CL_FN size_t ds_cl_wait_leader(ds_cl_t *c, unsigned exclude, int timeout_ms, uint64_t *term_out)
{
    int64_t deadline = ds_cl_now_ms() + timeout_ms;
    char why[512] = "";
    size_t l = 0;
    while (ds_cl_now_ms() < deadline) {
        ds_cl_check_alive(c);
        if (ds_cl_find_leader(c, exclude, &l, term_out, why, sizeof why))
            return l;
        ds_cl_sleep_ms(DS_CL_POLL_MS);
    }
    fail_msg("no agreed leader within %d ms (excluded mask 0x%x); last views: %s", timeout_ms,
             exclude, why);
    return 0;
}

/*  Waits until member `i` has applied at least `index` and knows leader
    `lead` (0: any). Returns its view. Fails the test at the deadline. */
DS_CL_FN ds_cl_view_t ds_cl_wait_applied(ds_cl_t *c, size_t i, uint64_t index, uint64_t lead,
                                         int timeout_ms)
{
    int64_t deadline = ds_cl_now_ms() + timeout_ms;
    ds_cl_view_t v = {0, 0, 0, 0};
    int rc = DS_ETIMEOUT;
    while (ds_cl_now_ms() < deadline) {
        ds_cl_check_alive(c);
        rc = ds_cl_view(c, i, &v);
        if (rc == 0 && v.applied >= index && (!lead || v.lead == lead))
            return v;
        ds_cl_sleep_ms(DS_CL_POLL_MS);
    }
    fail_msg("member %zu did not apply index %" PRIu64 " under leader %" PRIu64
             " within %d ms: last answer %s, applied %" PRIu64 " lead %" PRIu64 " term %" PRIu64,
             i + 1, index, lead, timeout_ms, ds_errname(rc), v.applied, v.lead, v.term);
    return v;
}

/*  A client of the whole cluster (ds_client: follows NOT_LEADER, retries
    with the same corr_id). Free with ds_client_destroy. */
DS_CL_FN ds_client_t *ds_cl_client(ds_cl_t *c, const char *sender, uint64_t timeout_ms)
{
    ds_client_opts_t o;
    memset(&o, 0, sizeof o);
    char err[256];
    assert_int_equal(ds_dsctl_endpoints_parse(c->rpcs, &o.endpoints, err, sizeof err), 0);
    o.timeout_ms = timeout_ms;
    o.sender = sender;
    o.sec = c->sec;
    ds_client_t *cl = ds_client_new(&o);
    assert_non_null(cl);
    return cl;
}

/*  Writes key=value through `cl`. Returns 0 when the cluster acknowledged
    it (and sets *index, may be NULL), else the DS_E code of the error
    reply or of the client. */
DS_CL_FN int ds_cl_put(ds_client_t *cl, const char *key, const char *value, uint64_t *index)
{
    ds_kv_put_t put = {(char *)key, {(uint8_t *)value, (uint32_t)strlen(value)}};
    ds_msg_t *r = NULL;
    ds_client_err_t err;
    int rc = ds_client_call(cl, DS_MSG_KV_PUT, &put, &r, &err);
    if (rc == 0 && r->env.type == DS_MSG_ERROR)
        rc = (int)((const ds_error_reply_t *)r->body)->code;
    else if (rc == 0 && r->env.type != DS_MSG_KV_REPLY)
        rc = DS_EUNKNOWN;
    if (rc == 0 && index)
        *index = ((const ds_kv_reply_t *)r->body)->index;
    ds_msg_destroy(&r);
    return rc;
}

typedef struct {
    bool found;
    char value[256];
    uint64_t index, version, mod_index;
} ds_cl_kv_t;

/*  A --stale kv get served by member `i` itself. Returns 0 or a DS_E code. */
DS_CL_FN int ds_cl_get_stale(ds_cl_t *c, size_t i, const char *key, ds_cl_kv_t *out)
{
    ds_kv_get_t get = {(char *)key, true};
    ds_msg_t *r = NULL;
    int rc = ds_cl_call(c->m[i].rpc, DS_MSG_KV_GET, &get, 2000, &r);
    if (rc == 0 && r->env.type == DS_MSG_ERROR)
        rc = (int)((const ds_error_reply_t *)r->body)->code;
    else if (rc == 0 && r->env.type != DS_MSG_KV_REPLY)
        rc = DS_EUNKNOWN;
    if (rc == 0) {
        const ds_kv_reply_t *k = r->body;
        size_t len = k->value.len < sizeof out->value - 1 ? k->value.len : sizeof out->value - 1;
        memset(out, 0, sizeof *out);
        out->found = k->found;
        if (len)
            memcpy(out->value, k->value.data, len);
        out->index = k->index;
        out->version = k->version;
        out->mod_index = k->mod_index;
    }
    ds_msg_destroy(&r);
    return rc;
}

/*  Asserts that member `i` serves from its own state (--stale) `key` with
    `value`, written `version` times. */
DS_CL_FN void ds_cl_assert_kv(ds_cl_t *c, size_t i, const char *key, const char *value,
                              uint64_t version)
{
    ds_cl_kv_t kv;
    int rc = ds_cl_get_stale(c, i, key, &kv);
    if (rc != 0)
        fail_msg("member %zu: kv get %s --stale: %s", i + 1, key, ds_errname(rc));
    if (!kv.found || strcmp(kv.value, value) != 0 || kv.version != version)
        fail_msg("member %zu: %s is %s \"%s\" version %" PRIu64
                 ", expected \"%s\" version %" PRIu64,
                 i + 1, key, kv.found ? "found" : "missing", kv.value, kv.version, value, version);
}

/*  Counts the lines of member `i`'s log that contain `needle`, in its
    current run only (after the last "---- start" line). */
DS_CL_FN int ds_cl_log_count(const ds_cl_t *c, size_t i, const char *needle)
{
    FILE *f = fopen(c->m[i].log, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n = strncmp(line, "---- start #", 12) == 0 ? 0 : n + (strstr(line, needle) != NULL);
    fclose(f);
    return n;
}

/* ---- http ------------------------------------------------------------------------ */

/*  Connects a TCP socket to member i's http endpoint (127.0.0.1).
    Returns the socket, or -1 with errno set. */
DS_CL_FN int ds_cl_http_connect(const ds_cl_t *c, size_t i)
{
    const char *colon = strrchr(c->m[i].http, ':');
    assert_non_null(colon);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/*  GET `path` from member `i`'s --http endpoint. Returns the HTTP status
    with the body in `out`; or -1 when no complete response (status line,
    headers, Content-Length bytes of body, or the connection closed)
    arrived within `timeout_ms`, with what did arrive in `out`. */
DS_CL_FN int ds_cl_http_get(const ds_cl_t *c, size_t i, const char *path, char *out, size_t outlen,
                            int timeout_ms)
{
    int64_t deadline = ds_cl_now_ms() + timeout_ms;
    static char buf[1 << 20];
    size_t n = 0;
    int status = -1;
    out[0] = '\0';
    int fd = ds_cl_http_connect(c, i);
    if (fd < 0) {
        snprintf(out, outlen, "connect: %s", strerror(errno));
        return -1;
    }
    char req[256];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                       path, c->m[i].http);
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
        snprintf(out, outlen, "send: %s", strerror(errno));
        close(fd);
        return -1;
    }
    bool eof = false;
    const char *body = NULL;
    long want = -1;
    while (!eof && ds_cl_now_ms() < deadline) {
        if (body && want >= 0 && (long)(n - (size_t)(body - buf)) >= want)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = deadline - ds_cl_now_ms();
        if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
            continue;
        ssize_t k = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (k <= 0) {
            eof = true;
            break;
        }
        n += (size_t)k;
        buf[n] = '\0';
        if (!body && (body = strstr(buf, "\r\n\r\n")) != NULL) {
            body += 4;
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (cl && cl < body)
                want = strtol(cl + 17, NULL, 10);
        }
        if (n == sizeof buf - 1)
            eof = true;
    }
    close(fd);
    buf[n] = '\0';
    bool complete = body && (eof || (want >= 0 && (long)(n - (size_t)(body - buf)) >= want));
    const char *keep = buf;
    if (complete && sscanf(buf, "HTTP/1.%*d %d", &status) == 1)
        keep = body;
    size_t k = strlen(keep) < outlen - 1 ? strlen(keep) : outlen - 1;
    memcpy(out, keep, k); /* truncates a long body to what fits */
    out[k] = '\0';
    return keep == body ? status : -1;
}

/*  The value of metric `name` (a line "name VALUE") in a /metrics body.
    Returns false if it is not there. */
DS_CL_FN bool ds_cl_metric(const char *text, const char *name, uint64_t *v)
{
    size_t len = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, name, len) == 0 && p[len] == ' ')
            return sscanf(p + len + 1, "%" SCNu64, v) == 1;
    return false;
}

/* ---- minimal JSON reading (for dsctl -o json output) --------------------------- */

/*  Returns the end of the JSON value that starts at `p` (a number,
    true/false/null, a string, an object or an array). */
DS_CL_FN const char *s_cl_json_end(const char *p)
{
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++)
            if (*p == '\\' && p[1])
                p++;
        return *p ? p + 1 : p;
    }
    if (*p != '{' && *p != '[') {
        while (*p && *p != ',' && *p != '}' && *p != ']' && *p != '\n' && *p != ' ')
            p++;
        return p;
    }
    int depth = 0;
    bool in_str = false;
    for (; *p; p++) {
        if (in_str) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                in_str = false;
        } else if (*p == '"') {
            in_str = true;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if ((*p == '}' || *p == ']') && --depth == 0) {
            return p + 1;
        }
    }
    return p;
}

DS_CL_FN void s_cl_copy(char *out, size_t outlen, const char *s, const char *e)
{
    size_t len = (size_t)(e - s) < outlen - 1 ? (size_t)(e - s) : outlen - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

/*  Copies the raw value of the first "key": in `json` (a number,
    true/false/null, a string with its quotes, an object or an array) into
    `out`. Returns false if there is no such key. */
DS_CL_FN bool ds_cl_json_raw(const char *json, const char *key, char *out, size_t outlen)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        return false;
    p += strlen(pat);
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    s_cl_copy(out, outlen, p, s_cl_json_end(p));
    return true;
}

/*  The number at "key"; fails the test if absent or not a number. */
DS_CL_FN uint64_t ds_cl_json_u64(const char *json, const char *key)
{
    char raw[64];
    if (!ds_cl_json_raw(json, key, raw, sizeof raw))
        fail_msg("JSON has no key \"%s\": %.400s", key, json);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(raw, &end, 10);
    if (errno || end == raw || *end)
        fail_msg("JSON key \"%s\" is %s, not a number", key, raw);
    return (uint64_t)v;
}

/*  The string at "key", without quotes (escapes left as they are); fails
    the test if absent or not a string. */
DS_CL_FN void ds_cl_json_str(const char *json, const char *key, char *out, size_t outlen)
{
    char raw[512];
    if (!ds_cl_json_raw(json, key, raw, sizeof raw))
        fail_msg("JSON has no key \"%s\": %.400s", key, json);
    size_t len = strlen(raw);
    if (len < 2 || raw[0] != '"' || raw[len - 1] != '"')
        fail_msg("JSON key \"%s\" is %s, not a string", key, raw);
    snprintf(out, outlen, "%.*s", (int)(len - 2), raw + 1);
}

/*  Copies the k-th element of the array at "key" into `out`. Returns
    false when there is no such array or it has fewer elements. */
DS_CL_FN bool ds_cl_json_item(const char *json, const char *key, size_t k, char *out, size_t outlen)
{
    static char arr[DS_CL_OUT];
    if (!ds_cl_json_raw(json, key, arr, sizeof arr) || arr[0] != '[')
        return false;
    const char *p = arr + 1;
    for (size_t i = 0;; i++) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',')
            p++;
        if (!*p || *p == ']')
            return false;
        const char *e = s_cl_json_end(p);
        if (i == k) {
            s_cl_copy(out, outlen, p, e);
            return true;
        }
        p = e;
    }
}

/* ---- dsctl --------------------------------------------------------------------- */

typedef struct {
    int rc;     /* exit status; -1 killed by a signal */
    int64_t ms; /* how long it ran */
    char out[DS_CL_OUT];
    char err[8192];
} ds_cl_run_t;

/*  Runs dsctl with `args` (NULL-terminated) and, when `coordinators` is
    not NULL, "--coordinators coordinators" in front. HOME is the test
    directory (no user config), DSCTL_* unset. Captures stdout and stderr;
    a run longer than DS_CL_DSCTL_KILL is killed. `c` may be NULL (then
    HOME is /nonexistent). Returns r->rc. */
DS_CL_FN int ds_cl_dsctl_argv(ds_cl_t *c, ds_cl_run_t *r, const char *coordinators,
                              const char *const *args)
{
    const char *argv[DS_CL_ARGS];
    size_t argc = 0;
    argv[argc++] = DS_DSCTL_BIN;
    size_t shown = 1; /* flags the harness adds are not echoed */
    if (c && c->opts.secure && !(c->dsctl_key && !c->dsctl_key[0])) {
        argv[argc++] = "--key";
        argv[argc++] = c->dsctl_key ? c->dsctl_key : c->admin_key;
        argv[argc++] = "--cluster-key";
        argv[argc++] = c->cluster_pub;
        shown += 4;
    } else if (!c || !c->opts.secure) {
        argv[argc++] = "--insecure";
        shown += 1;
    }
    if (coordinators) {
        argv[argc++] = "--coordinators";
        argv[argc++] = coordinators;
    }
    for (size_t i = 0; args[i]; i++) {
        assert_true(argc < DS_CL_ARGS - 1);
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;
    char **envp = c ? c->envp : s_cl_make_env("/nonexistent");

    memset(r, 0, sizeof *r);
    int po[2], pe[2];
    assert_int_equal(pipe2(po, O_CLOEXEC), 0);
    assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
    int64_t start = ds_cl_now_ms();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int nul = open("/dev/null", O_RDONLY);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(126);
        signal(SIGPIPE, SIG_DFL);
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t no = 0, ne = 0;
    bool open_o = true, open_e = true, killed = false;
    while (open_o || open_e) {
        int64_t left = start + DS_CL_DSCTL_KILL - ds_cl_now_ms();
        if (left <= 0 && !killed) {
            kill(pid, SIGKILL);
            killed = true;
        }
        struct pollfd p[2] = {{open_o ? po[0] : -1, POLLIN, 0}, {open_e ? pe[0] : -1, POLLIN, 0}};
        if (poll(p, 2, left > 0 ? (int)(left < 1000 ? left : 1000) : 100) < 0 && errno != EINTR)
            break;
        char tmp[4096];
        if (open_o && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t k = read(po[0], tmp, sizeof tmp);
            if (k <= 0)
                open_o = false;
            for (ssize_t j = 0; j < k && no < sizeof r->out - 1; j++)
                r->out[no++] = tmp[j];
        }
        if (open_e && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t k = read(pe[0], tmp, sizeof tmp);
            if (k <= 0)
                open_e = false;
            for (ssize_t j = 0; j < k && ne < sizeof r->err - 1; j++)
                r->err[ne++] = tmp[j];
        }
    }
    close(po[0]);
    close(pe[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    r->ms = ds_cl_now_ms() - start;
    r->rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (!c) {
        for (size_t i = 0; envp[i]; i++)
            free(envp[i]);
        free(envp);
    }
    printf("$ dsctl%s", coordinators ? " --coordinators ..." : "");
    for (size_t i = shown + (coordinators ? 2 : 0); i < argc; i++)
        printf(" %s", argv[i]);
    printf("  -> exit %d in %" PRId64 " ms%s%.200s\n", r->rc, r->ms, ne ? "; stderr: " : "",
           r->err);
    fflush(stdout);
    return r->rc;
}

/*  ds_cl_dsctl(c, &r, coordinators, "kv", "get", "k") */
#define ds_cl_dsctl(c, r, coordinators, ...)                                                       \
    ds_cl_dsctl_argv((c), (r), (coordinators), (const char *const[]){__VA_ARGS__, NULL})

/*  Secure clusters: `dsctl token create` with `args` (NULL-terminated,
    may be empty) as the admin; the token goes into c->token, which
    workers started from now on are given. Asserts exit 0. */
DS_CL_FN void ds_cl_make_token(ds_cl_t *c, const char *const *args)
{
    static ds_cl_run_t r;
    const char *argv[DS_CL_ARGS] = {"--timeout", "10s", "token", "create"};
    size_t argc = 4;
    for (size_t i = 0; args && args[i] && argc < DS_CL_ARGS - 1; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    if (ds_cl_dsctl_argv(c, &r, c->rpcs, argv) != 0)
        fail_msg("dsctl token create failed: exit %d: %s", r.rc, r.err);
    size_t len = strcspn(r.out, "\n");
    assert_true(len > 0 && len < sizeof c->token);
    memcpy(c->token, r.out, len);
    c->token[len] = '\0';
}

/*  `dsctl -o json kv put KEY VALUE` against the whole cluster; asserts
    exit 0 and the JSON contract ({"key", "index"}). Returns the index. */
DS_CL_FN uint64_t ds_cl_dsctl_put(ds_cl_t *c, const char *key, const char *value)
{
    static ds_cl_run_t r;
    if (ds_cl_dsctl(c, &r, c->rpcs, "-o", "json", "--timeout", "10s", "kv", "put", key, value))
        fail_msg("dsctl kv put %s failed: exit %d: %s", key, r.rc, r.err);
    char k[256];
    ds_cl_json_str(r.out, "key", k, sizeof k);
    assert_string_equal(k, key);
    uint64_t index = ds_cl_json_u64(r.out, "index");
    assert_true(index > 0);
    return index;
}

#endif
