/*  bench/bench.h - the Raft benchmark's shared parts: child processes,
    ports, temporary directories, and the small interface each system under
    test (Gossamer's dscoord, etcd) implements so that one harness measures
    both the same way.

    Everything here runs on 127.0.0.1 only. Every wait has a deadline.
*/
#ifndef DS_BENCH_BENCH_H
#define DS_BENCH_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define BENCH_MEMBERS     3
#define BENCH_MAX_THREADS 64
#define BENCH_MAX_TRIALS  32
#define BENCH_PATH        512

/* ---- time ------------------------------------------------------------- */

/*  CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/*  Sleeps `ms` milliseconds (restarts after a signal). */
void bench_sleep_ms(unsigned ms);

/* ---- child processes ----------------------------------------------------- */

typedef struct {
    pid_t pid;            /* 0: not running */
    char log[BENCH_PATH]; /* stdout and stderr are appended here */
} bench_proc_t;

/*  Starts argv[0] (a path) with stdout and stderr appended to p->log and
    records its PID so that bench_kill_all() and the signal handlers stop
    it. The child dies with the benchmark (PR_SET_PDEATHSIG). Returns 0 or
    -1 with a message on stderr. */
int bench_spawn(bench_proc_t *p, char *const argv[]);

/*  Sends `sig` to p's PID and reaps it, waiting at most `wait_ms`; after
    that sends SIGKILL and waits again (bounded). Does nothing when p is
    not running. */
void bench_stop(bench_proc_t *p, int sig, unsigned wait_ms);

/*  Sends SIGKILL now without waiting (for failover timing); reap it later
    with bench_stop(p, SIGKILL, ...). */
void bench_kill_now(const bench_proc_t *p);

/*  True while the process runs (reaps it if it exited). */
bool bench_alive(bench_proc_t *p);

/*  SIGKILLs and reaps every process still registered. Safe to call twice. */
void bench_kill_all(void);

/*  Installs SIGINT/SIGTERM/SIGHUP handlers that SIGKILL every registered
    child and exit, and ignores SIGPIPE. */
void bench_install_signals(void);

/*  Prints the last `lines` lines of p's log to stderr. */
void bench_log_tail(const bench_proc_t *p, unsigned lines);

/*  CPU time (user + system, ms) and context switches (voluntary +
    involuntary, all threads) of a running process; 0 and -1 if unknown. */
int bench_proc_usage(pid_t pid, double *cpu_ms, uint64_t *ctx_switches);

/* ---- ports and directories ------------------------------------------------ */

/*  Fills ports[0..n) with distinct free TCP ports on 127.0.0.1 (bound with
    port 0, read back, released). Returns 0 or -1. */
int bench_free_ports(unsigned n, int *ports);

/*  A TCP connection to 127.0.0.1:port with TCP_NODELAY (as libzmq sets
    it), or -1. */
int bench_tcp_connect(int port);

/*  Sends all of iov[0..n) on a connected socket (advancing iov), waiting
    while it is full, until `deadline` (bench_now_ns). 0, -1 when the
    connection failed, -2 at the deadline. */
int bench_send_all(int fd, struct iovec *iov, size_t n, uint64_t deadline);

/*  Receives what is there, at most `cap` bytes, waiting for something
    until `deadline`. The byte count (> 0), -1 when the connection failed
    or was closed, -2 at the deadline. */
ssize_t bench_recv_some(int fd, void *buf, size_t cap, uint64_t deadline);

/*  Makes a fresh directory /tmp/<tag>.XXXXXX (mode 0700) into out. */
int bench_mkdtemp(char *out, size_t len, const char *tag);

/*  Removes a directory tree (no symlinks followed). */
void bench_rmtree(const char *dir);

/* ---- a system under test ------------------------------------------------------ */

typedef enum {
    BENCH_PUT_OK = 0,       /* committed and applied */
    BENCH_PUT_REDIRECT = 1, /* not the leader: *hint is the leader's member index */
    BENCH_PUT_RETRY = 2,    /* no leader known, or a refusal worth retrying */
    BENCH_PUT_TIMEOUT = 3,  /* no answer in time (the connection is reset) */
    BENCH_PUT_FAIL = 4      /* the connection failed: reopen it */
} bench_put_t;

typedef struct bench_sys bench_sys_t;
struct bench_sys {
    const char *name;
    char dir[BENCH_PATH]; /* this system's data and logs */
    bench_proc_t procs[BENCH_MEMBERS];
    void *impl;
    /*  Starts member i (first boot or restart on its existing data). */
    int (*start)(bench_sys_t *s, int member);
    /*  The index of the leader every running member agrees on and that is
        itself running, or -1 when there is none within timeout_ms. */
    int (*leader)(bench_sys_t *s, int timeout_ms);
    /*  0 once member has applied everything the leader has committed;
        -1 if not within timeout_ms. */
    int (*caught_up)(bench_sys_t *s, int leader, int member, int timeout_ms);
    /*  One client connection to member, for one thread. `client` is unique
        within the run (Gossamer uses it to name the session). */
    int (*conn_open)(bench_sys_t *s, int member, unsigned client, void **conn);
    /*  One write of a value under a key, waiting at most timeout_ms. */
    bench_put_t (*put)(void *conn, const char *key, const void *val, size_t len, int timeout_ms,
                       int *hint);
    void (*conn_close)(void **conn);
};

/*  Gossamer: three dscoord members started from `dscoord` (a path) with
    default timings, plus `extra` flags (space-separated, at most 16; NULL
    or "" for none) for experiments. Clients speak ZMTP on plain sockets
    (bench/zmtp.h), or use libzmq DEALER sockets with `libzmq`. Fills s
    (name, function pointers); the members are not started yet. Returns
    0 or -1. */
int bench_gossamer_init(bench_sys_t *s, const char *dscoord, const char *extra, const char *root,
                        bool libzmq);

/*  etcd: three members of `etcd` (a path), default settings but names,
    directories and loopback URLs. */
int bench_etcd_init(bench_sys_t *s, const char *etcd, const char *root);

/*  Stops every member (SIGTERM, SIGKILL after grace_ms) and frees what
    an init function allocated. */
void bench_sys_fini(bench_sys_t *s, unsigned grace_ms);

/* ---- measurements ---------------------------------------------------------------- */

typedef struct {
    unsigned threads;
    double seconds;  /* measured window, after the warm-up */
    uint64_t ops;    /* writes acknowledged inside the window */
    uint64_t errors; /* timeouts, refusals, reconnects (whole run) */
    double ops_per_s;
    double p50_ms, p99_ms, max_ms;
    /* per member, over the window: CPU ms and context switches per write */
    double cpu_ms_per_op[BENCH_MEMBERS];
    double ctxsw_per_op[BENCH_MEMBERS];
    int leader;
} bench_load_t;

typedef struct {
    unsigned trials; /* asked for */
    unsigned ok;     /* trials that ended in a commit */
    double ms[BENCH_MAX_TRIALS];
    double median_ms, worst_ms;
} bench_failover_t;

typedef struct {
    unsigned warm_ms, run_ms;
    unsigned value_bytes;
    unsigned put_timeout_ms; /* per write under load */
    unsigned try_ms;         /* per try during failover */
    unsigned trials;
} bench_opts_t;

/*  Closed-loop load: `threads` proposers each with one connection to the
    leader, writing distinct keys; latency of writes acknowledged in the
    window. Returns 0 or -1. */
int bench_load(bench_sys_t *s, int leader, unsigned threads, const bench_opts_t *o,
               bench_load_t *out);

/*  Failover trials: SIGKILL the leader, time until the first write
    commits through a surviving member, restart the killed member and let
    it catch up. Returns 0 when at least one trial succeeded. */
int bench_failover(bench_sys_t *s, const bench_opts_t *o, bench_failover_t *out);

/*  A fresh client number (unique within the run). */
unsigned bench_next_client(void);

#endif
