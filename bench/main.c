/*  bench/main.c - raft_bench: Gossamer's coordinator cluster against etcd
    on loopback: commit throughput and latency with 1 and N proposers, and
    leader failover time. Prints a table and whether the targets are met.
    Not a test: slow and timing-based (see bench/README.md). */
#include "bench/bench.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_BOOT_MS 20000

typedef struct {
    bool ran;
    bool failed;
    bench_load_t low, high;
    bench_failover_t fo;
} s_result_t;

typedef struct {
    bench_opts_t o;
    unsigned high;
    const char *only;
    char dscoord[BENCH_PATH];
    char etcd[BENCH_PATH];
    const char *coord_args;
    bool libzmq_client; /* --gossamer-client libzmq */
    bool keep;
} s_args_t;

static void s_usage(FILE *f)
{
    fprintf(f, "usage: raft_bench [options]\n\n"
               "Starts a 3-member Gossamer coordinator cluster and a 3-member etcd cluster on\n"
               "127.0.0.1 (fresh temporary directories, free ports) and measures for each:\n"
               "commit throughput and latency (p50, p99) with 1 and N concurrent proposers,\n"
               "and leader failover time (SIGKILL the leader, time to the first commit).\n\n"
               "options:\n"
               "  --seconds S       measured seconds per load run (default 5)\n"
               "  --warmup S        warm-up seconds before each load run (default 1)\n"
               "  --proposers N     the concurrent run's proposer threads (default 16)\n"
               "  --trials N        failover trials (default 7; 0 skips failover)\n"
               "  --value-bytes N   value size (default 100)\n"
               "  --try-ms MS       per-try timeout while failing over (default 100)\n"
               "  --only SYSTEM     gossamer or etcd\n"
               "  --dscoord PATH    default: ../coordinator/dscoord next to this program\n"
               "  --coord-args \"FLAGS\"  extra dscoord flags for experiments, e.g.\n"
               "                    \"--snapshot-entries 1000000\" (the table then says so)\n"
               "  --gossamer-client zmtp|libzmq\n"
               "                    how Gossamer's clients connect: ZMTP on a plain socket, one\n"
               "                    blocking connection per thread like etcd's HTTP/1.1 client\n"
               "                    (default), or a libzmq DEALER per thread (libzmq's I/O thread\n"
               "                    then costs the client a CPU thread of its own)\n"
               "  --etcd PATH       default: /usr/bin/etcd (skipped, and said so, if missing)\n"
               "  --keep            keep the temporary directory (data and logs)\n");
}

static int s_uint(const char *text, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text ? text : "", &end, 10);
    if (!text || errno || *end || end == text || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int s_parse(int argc, char **argv, s_args_t *a)
{
    unsigned secs = 5, warm = 1;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(f, "-h") == 0 || strcmp(f, "--help") == 0) {
            s_usage(stdout);
            exit(0);
        } else if (strcmp(f, "--keep") == 0) {
            a->keep = true;
            continue;
        } else if (strcmp(f, "--seconds") == 0) {
            rc = s_uint(v, 1, 600, &secs);
        } else if (strcmp(f, "--warmup") == 0) {
            rc = s_uint(v, 0, 60, &warm);
        } else if (strcmp(f, "--proposers") == 0) {
            rc = s_uint(v, 1, BENCH_MAX_THREADS, &a->high);
        } else if (strcmp(f, "--trials") == 0) {
            rc = s_uint(v, 0, BENCH_MAX_TRIALS, &a->o.trials);
        } else if (strcmp(f, "--value-bytes") == 0) {
            rc = s_uint(v, 1, 2048, &a->o.value_bytes);
        } else if (strcmp(f, "--try-ms") == 0) {
            rc = s_uint(v, 10, 5000, &a->o.try_ms);
        } else if (strcmp(f, "--only") == 0 && v &&
                   (strcmp(v, "gossamer") == 0 || strcmp(v, "etcd") == 0)) {
            a->only = v;
        } else if (strcmp(f, "--gossamer-client") == 0 && v &&
                   (strcmp(v, "zmtp") == 0 || strcmp(v, "libzmq") == 0)) {
            a->libzmq_client = strcmp(v, "libzmq") == 0;
        } else if (strcmp(f, "--coord-args") == 0 && v) {
            a->coord_args = v;
        } else if (strcmp(f, "--dscoord") == 0 && v) {
            snprintf(a->dscoord, sizeof a->dscoord, "%s", v);
        } else if (strcmp(f, "--etcd") == 0 && v) {
            snprintf(a->etcd, sizeof a->etcd, "%s", v);
        } else {
            fprintf(stderr, "raft_bench: unknown or incomplete option %s (see --help)\n", f);
            return -1;
        }
        if (rc != 0) {
            fprintf(stderr, "raft_bench: %s: bad value %s (see --help)\n", f, v ? v : "(none)");
            return -1;
        }
        i++;
    }
    a->o.warm_ms = warm * 1000u;
    a->o.run_ms = secs * 1000u;
    return 0;
}

static void s_default_dscoord(char *out, size_t len)
{
    char exe[BENCH_PATH];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(out, len, "dscoord");
        return;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0'; /* .../build/bench */
    slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0'; /* .../build */
    snprintf(out, len, "%.400s/coordinator/dscoord", exe);
}

static double s_loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

static void s_print_load(const char *sys, const bench_load_t *l)
{
    fprintf(stderr,
            "bench: %s: %u proposer(s): %.0f writes/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, "
            "%llu errors\n",
            sys, l->threads, l->ops_per_s, l->p50_ms, l->p99_ms, l->max_ms,
            (unsigned long long)l->errors);
}

static void s_fail_logs(bench_sys_t *s, s_result_t *r, const char *what)
{
    r->failed = true;
    fprintf(stderr, "bench: %s: %s; member logs follow\n", s->name, what);
    for (int m = 0; m < BENCH_MEMBERS; m++)
        bench_log_tail(&s->procs[m], 15);
}

/*  Boots a system's three members and waits for a leader. */
static void s_boot(bench_sys_t *s, s_result_t *r)
{
    r->ran = true;
    fprintf(stderr, "bench: %s: starting 3 members in %s\n", s->name, s->dir);
    for (int m = 0; m < BENCH_MEMBERS; m++)
        if (s->start(s, m) != 0) {
            s_fail_logs(s, r, "a member did not start");
            return;
        }
    int leader = s->leader(s, S_BOOT_MS);
    if (leader < 0)
        s_fail_logs(s, r, "no leader at boot");
    else
        fprintf(stderr, "bench: %s: leader is member %d\n", s->name, leader + 1);
}

/*  One load run on a booted system. */
static void s_load_phase(bench_sys_t *s, const s_args_t *a, unsigned threads, s_result_t *r,
                         bench_load_t *out)
{
    if (r->failed)
        return;
    int leader = s->leader(s, S_BOOT_MS);
    if (leader < 0 || bench_load(s, leader, threads, &a->o, out) != 0) {
        s_fail_logs(s, r, "load run failed");
        return;
    }
    s_print_load(s->name, out);
}

static void s_failover_phase(bench_sys_t *s, const s_args_t *a, s_result_t *r)
{
    if (r->failed || a->o.trials == 0)
        return;
    if (bench_failover(s, &a->o, &r->fo) != 0) {
        s_fail_logs(s, r, "failover trials failed");
        return;
    }
    fprintf(stderr, "bench: %s: failover median %.0f ms, worst %.0f ms (%u/%u trials)\n", s->name,
            r->fo.median_ms, r->fo.worst_ms, r->fo.ok, r->fo.trials);
}

static const char *s_verdict(bool ok)
{
    return ok ? "MET" : "MISSED";
}

static void s_row(const char *label, double g, double e, bool have_e, int prec)
{
    char gb[32], eb[32], rb[32];
    snprintf(gb, sizeof gb, "%.*f", prec, g);
    if (have_e) {
        snprintf(eb, sizeof eb, "%.*f", prec, e);
        snprintf(rb, sizeof rb, "%.2fx", e > 0 ? g / e : 0.0);
    } else {
        snprintf(eb, sizeof eb, "-");
        snprintf(rb, sizeof rb, "-");
    }
    printf("  %-28s %12s %12s %10s\n", label, gb, eb, rb);
}

static void s_load_rows(const char *title, const bench_load_t *g, const bench_load_t *e,
                        bool have_e)
{
    char label[64];
    printf("%s\n", title);
    s_row("writes/s", g->ops_per_s, e->ops_per_s, have_e, 0);
    s_row("latency p50 (ms)", g->p50_ms, e->p50_ms, have_e, 2);
    s_row("latency p99 (ms)", g->p99_ms, e->p99_ms, have_e, 2);
    s_row("latency max (ms)", g->max_ms, e->max_ms, have_e, 2);
    s_row("errors/retries", (double)g->errors, (double)e->errors, have_e, 0);
    snprintf(label, sizeof label, "leader CPU ms/write");
    s_row(label, g->cpu_ms_per_op[g->leader], e->cpu_ms_per_op[e->leader], have_e, 3);
    double gf = 0, ef = 0, gcs = 0, ecs = 0;
    for (int m = 0; m < BENCH_MEMBERS; m++) {
        if (m != g->leader) {
            gf += g->cpu_ms_per_op[m] / 2;
            gcs += g->ctxsw_per_op[m] / 2;
        }
        if (m != e->leader) {
            ef += e->cpu_ms_per_op[m] / 2;
            ecs += e->ctxsw_per_op[m] / 2;
        }
    }
    s_row("follower CPU ms/write (avg)", gf, ef, have_e, 3);
    s_row("leader ctx switches/write", g->ctxsw_per_op[g->leader], e->ctxsw_per_op[e->leader],
          have_e, 1);
    s_row("follower ctx sw/write (avg)", gcs, ecs, have_e, 1);
}

static void s_table(const s_args_t *a, const s_result_t *g, const s_result_t *e, bool have_e,
                    const char *why_no_etcd, double load0, double load1)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("\nRaft commit benchmark: 3 members each, all on 127.0.0.1, %ld CPUs, load average "
           "%.2f before / %.2f after\n",
           cpus, load0, load1);
    printf("closed loop, one connection per proposer, %u-byte values, distinct keys, %u s warm-up "
           "+ %u s per run; failover: %u trials, %u ms per try\n",
           a->o.value_bytes, a->o.warm_ms / 1000u, a->o.run_ms / 1000u, a->o.trials, a->o.try_ms);
    printf("clients: etcd plain HTTP/1.1 sockets; gossamer %s\n\n",
           a->libzmq_client ? "libzmq DEALER sockets (--gossamer-client libzmq)"
                            : "ZMTP 3.0 on plain sockets (bench/zmtp.c)");
    if (a->coord_args && a->coord_args[0])
        printf("NOTE: dscoord ran with extra flags: %s (not the defaults)\n\n", a->coord_args);
    if (!have_e)
        printf("NOTE: %s: gossamer measured alone, no comparison\n\n", why_no_etcd);
    printf("  %-28s %12s %12s %10s\n", "", "gossamer", have_e ? "etcd" : "(no etcd)", "g/e");
    s_load_rows("1 proposer", &g->low, &e->low, have_e);
    char title[64];
    snprintf(title, sizeof title, "%u proposers", a->high);
    s_load_rows(title, &g->high, &e->high, have_e);
    if (a->o.trials > 0) {
        printf("leader failover (SIGKILL -> first commit)\n");
        s_row("median (ms)", g->fo.median_ms, e->fo.median_ms, have_e, 0);
        s_row("worst (ms)", g->fo.worst_ms, e->fo.worst_ms, have_e, 0);
        s_row("trials that committed", (double)g->fo.ok, (double)e->fo.ok, have_e, 0);
        printf("  %-28s", "each trial (ms), gossamer");
        for (unsigned i = 0; i < g->fo.ok; i++)
            printf(" %.0f", g->fo.ms[i]);
        printf("\n");
        if (have_e) {
            printf("  %-28s", "each trial (ms), etcd");
            for (unsigned i = 0; i < e->fo.ok; i++)
                printf(" %.0f", e->fo.ms[i]);
            printf("\n");
        }
    }
    printf("\ntargets\n");
    if (have_e) {
        bool t1 = g->high.ops_per_s >= 3.0 * e->high.ops_per_s;
        bool t2 = g->high.p99_ms <= 0.5 * e->high.p99_ms;
        bool t3 = g->low.p50_ms <= 0.5 * e->low.p50_ms;
        printf("  %u proposers: throughput >= 3x etcd      %6.2fx  %s\n", a->high,
               e->high.ops_per_s > 0 ? g->high.ops_per_s / e->high.ops_per_s : 0, s_verdict(t1));
        printf("  %u proposers: p99 <= 0.5x etcd's         %6.2fx  %s\n", a->high,
               e->high.p99_ms > 0 ? g->high.p99_ms / e->high.p99_ms : 0, s_verdict(t2));
        printf("  1 proposer:   p50 <= 0.5x etcd's         %6.2fx  %s\n",
               e->low.p50_ms > 0 ? g->low.p50_ms / e->low.p50_ms : 0, s_verdict(t3));
    } else {
        printf("  (etcd not run: the relative targets cannot be judged)\n");
    }
    if (a->o.trials > 0) {
        bool all = g->fo.ok == g->fo.trials;
        printf("  failover median <= 800 ms              %6.0f ms  %s\n", g->fo.median_ms,
               s_verdict(all && g->fo.median_ms <= 800));
        printf("  failover worst  <= 1200 ms             %6.0f ms  %s%s\n", g->fo.worst_ms,
               s_verdict(all && g->fo.worst_ms <= 1200), all ? "" : " (a trial never committed)");
    }
}

int main(int argc, char **argv)
{
    s_args_t a = {.o = {.value_bytes = 100, .put_timeout_ms = 3000, .try_ms = 100, .trials = 7},
                  .high = 16};
    if (s_parse(argc, argv, &a) != 0)
        return 2;
    if (!a.dscoord[0])
        s_default_dscoord(a.dscoord, sizeof a.dscoord);
    if (!a.etcd[0])
        snprintf(a.etcd, sizeof a.etcd, "/usr/bin/etcd");
    bool want_g = !a.only || strcmp(a.only, "gossamer") == 0;
    bool want_e = !a.only || strcmp(a.only, "etcd") == 0;
    if (want_g && access(a.dscoord, X_OK) != 0) {
        fprintf(stderr, "raft_bench: dscoord not found at %s: build it or pass --dscoord PATH\n",
                a.dscoord);
        return 2;
    }
    bool have_e = want_e && access(a.etcd, X_OK) == 0;
    if (want_e && !have_e)
        fprintf(stderr,
                "raft_bench: etcd NOT INSTALLED (%s missing): measuring gossamer alone, no "
                "comparison (apt-get install -y etcd-server etcd-client)\n",
                a.etcd);

    char root[BENCH_PATH];
    if (bench_mkdtemp(root, sizeof root, "raft-bench") != 0)
        return 1;
    s_result_t g = {0}, e = {0};
    bench_sys_t gs, es;
    double load0 = s_loadavg();
    int rc = 0;
    bool inited_g = false, inited_e = false;
    if (want_g) {
        if (bench_gossamer_init(&gs, a.dscoord, a.coord_args, root, a.libzmq_client) != 0) {
            rc = 1;
            goto out;
        }
        inited_g = true;
    }
    bench_install_signals(); /* after czmq's own setup */
    if (have_e) {
        if (bench_etcd_init(&es, a.etcd, root) != 0) {
            rc = 1;
            goto out;
        }
        inited_e = true;
    }
    /* Both clusters stay up and the phases alternate, so that a change in
       the machine's load hits both systems alike. */
    if (inited_g)
        s_boot(&gs, &g);
    if (inited_e)
        s_boot(&es, &e);
    if (inited_g)
        s_load_phase(&gs, &a, 1, &g, &g.low);
    if (inited_e)
        s_load_phase(&es, &a, 1, &e, &e.low);
    if (inited_g)
        s_load_phase(&gs, &a, a.high, &g, &g.high);
    if (inited_e)
        s_load_phase(&es, &a, a.high, &e, &e.high);
    if (inited_g)
        s_failover_phase(&gs, &a, &g);
    if (inited_e)
        s_failover_phase(&es, &a, &e);
    if (inited_g)
        bench_sys_fini(&gs, 3000);
    if (inited_e)
        bench_sys_fini(&es, 5000);
    if ((want_g && g.failed) || (have_e && e.failed))
        rc = 1;
    if (want_g && !g.failed)
        s_table(&a, &g, &e, have_e && !e.failed,
                !want_e   ? "etcd not requested (--only gossamer)"
                : !have_e ? "etcd NOT INSTALLED (apt-get install -y etcd-server etcd-client)"
                          : "etcd measurement FAILED (see its logs above)",
                load0, s_loadavg());
    else if (have_e && !e.failed)
        fprintf(stderr, "raft_bench: gossamer not measured; etcd alone is not tabulated\n");
out:
    bench_kill_all();
    if (rc == 0 && !a.keep)
        bench_rmtree(root);
    else
        fprintf(stderr, "raft_bench: data and logs kept in %s\n", root);
    return rc;
}
