/*  bench/harness.c - the measurements, the same for every system: closed
    loop load (throughput, latency) and leader failover. */
#include "bench/bench.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_SAMPLES  (1u << 22) /* per thread: far above what 2 cores reach */
#define S_SETTLE_MS    500u       /* quiet time after a member rejoined */
#define S_CATCHUP_MS   20000
#define S_LEADER_MS    15000
#define S_FAILOVER_MAX 15000u /* give up on a trial after this long */

static atomic_uint s_client_seq;

unsigned bench_next_client(void)
{
    return atomic_fetch_add(&s_client_seq, 1u) + 1u;
}

/* ---- load ------------------------------------------------------------------ */

typedef struct {
    bench_sys_t *s;
    const bench_opts_t *o;
    int member;
    unsigned client;
    uint64_t t_warm, t_end; /* ns */
    float *lat_ms;
    size_t n, cap;
    uint64_t errors;
    int rc;
} s_worker_t;

static int s_push(s_worker_t *w, double ms)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        if (cap > S_MAX_SAMPLES)
            return -1;
        float *grown = realloc(w->lat_ms, cap * sizeof *grown);
        if (!grown)
            return -1;
        w->lat_ms = grown;
        w->cap = cap;
    }
    w->lat_ms[w->n++] = (float)ms;
    return 0;
}

static void *s_worker(void *arg)
{
    s_worker_t *w = arg;
    uint8_t value[4096];
    void *conn = NULL;
    size_t vlen = w->o->value_bytes < sizeof value ? w->o->value_bytes : sizeof value;
    memset(value, 'v', vlen);
    if (w->s->conn_open(w->s, w->member, w->client, &conn) != 0) {
        w->rc = -1;
        return NULL;
    }
    for (uint64_t seq = 0; seq < UINT64_MAX; seq++) {
        uint64_t t0 = bench_now_ns();
        if (t0 >= w->t_end)
            break;
        char key[96];
        snprintf(key, sizeof key, "bench/c%u/%llu", w->client, (unsigned long long)seq);
        /* a recognisable, varying prefix; the rest is filler */
        memcpy(value, key, strlen(key) < vlen ? strlen(key) : vlen);
        int hint = -1;
        bench_put_t r = w->s->put(conn, key, value, vlen, (int)w->o->put_timeout_ms, &hint);
        uint64_t t1 = bench_now_ns();
        if (r == BENCH_PUT_OK) {
            if (t1 >= w->t_warm && t1 <= w->t_end && s_push(w, (double)(t1 - t0) / 1e6) != 0) {
                w->rc = -1;
                break;
            }
            continue;
        }
        w->errors++;
        if (r == BENCH_PUT_FAIL || r == BENCH_PUT_TIMEOUT) {
            w->s->conn_close(&conn);
            bench_sleep_ms(10);
            if (w->s->conn_open(w->s, w->member, w->client, &conn) != 0) {
                w->rc = -1;
                break;
            }
        } else {
            bench_sleep_ms(1);
        }
    }
    w->s->conn_close(&conn);
    return NULL;
}

static int s_cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double s_pct(const float *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

int bench_load(bench_sys_t *s, int leader, unsigned threads, const bench_opts_t *o,
               bench_load_t *out)
{
    s_worker_t w[BENCH_MAX_THREADS];
    pthread_t tid[BENCH_MAX_THREADS];
    double cpu0[BENCH_MEMBERS] = {0}, cpu1[BENCH_MEMBERS] = {0};
    uint64_t cs0[BENCH_MEMBERS] = {0}, cs1[BENCH_MEMBERS] = {0};
    unsigned started = 0;
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (threads == 0 || threads > BENCH_MAX_THREADS)
        return -1;
    uint64_t now = bench_now_ns();
    uint64_t t_warm = now + (uint64_t)o->warm_ms * 1000000u;
    uint64_t t_end = t_warm + (uint64_t)o->run_ms * 1000000u;
    for (unsigned i = 0; i < threads; i++) {
        w[i] = (s_worker_t){.s = s,
                            .o = o,
                            .member = leader,
                            .client = bench_next_client(),
                            .t_warm = t_warm,
                            .t_end = t_end};
        if (pthread_create(&tid[i], NULL, s_worker, &w[i]) != 0) {
            rc = -1;
            break;
        }
        started++;
    }
    /* resource use of each member over the measured window */
    uint64_t wait_ns = t_warm > bench_now_ns() ? t_warm - bench_now_ns() : 0;
    bench_sleep_ms((unsigned)(wait_ns / 1000000u));
    for (int m = 0; m < BENCH_MEMBERS; m++)
        (void)bench_proc_usage(s->procs[m].pid, &cpu0[m], &cs0[m]);
    wait_ns = t_end > bench_now_ns() ? t_end - bench_now_ns() : 0;
    bench_sleep_ms((unsigned)(wait_ns / 1000000u));
    for (int m = 0; m < BENCH_MEMBERS; m++)
        (void)bench_proc_usage(s->procs[m].pid, &cpu1[m], &cs1[m]);

    size_t total = 0;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        total += w[i].n;
        out->errors += w[i].errors;
        if (w[i].rc != 0)
            rc = -1;
    }
    float *all = malloc((total ? total : 1) * sizeof *all);
    if (!all)
        rc = -1;
    size_t k = 0;
    for (unsigned i = 0; i < started; i++) {
        if (all)
            memcpy(all + k, w[i].lat_ms, w[i].n * sizeof *all);
        k += w[i].n;
        free(w[i].lat_ms);
    }
    if (rc != 0) {
        free(all);
        return rc;
    }
    qsort(all, total, sizeof *all, s_cmp_float);
    out->threads = threads;
    out->leader = leader;
    out->seconds = (double)o->run_ms / 1000.0;
    out->ops = total;
    out->ops_per_s = (double)total / out->seconds;
    out->p50_ms = s_pct(all, total, 0.50);
    out->p99_ms = s_pct(all, total, 0.99);
    out->max_ms = total ? all[total - 1] : 0;
    for (int m = 0; m < BENCH_MEMBERS; m++) {
        out->cpu_ms_per_op[m] = total ? (cpu1[m] - cpu0[m]) / (double)total : 0;
        out->ctxsw_per_op[m] = total ? (double)(cs1[m] - cs0[m]) / (double)total : 0;
    }
    free(all);
    return total ? 0 : -1;
}

/* ---- failover ---------------------------------------------------------------- */

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int s_next_survivor(int cur, int dead)
{
    for (int i = 1; i <= BENCH_MEMBERS; i++) {
        int m = (cur + i) % BENCH_MEMBERS;
        if (m != dead)
            return m;
    }
    return cur;
}

/*  Kills the leader and writes through the survivors until one write
    commits. Returns the time in ms, or a negative value. */
static double s_one_failover(bench_sys_t *s, int leader, const bench_opts_t *o, unsigned trial)
{
    void *conn[BENCH_MEMBERS] = {NULL};
    unsigned client = bench_next_client();
    double result = -1;
    uint8_t value[128];
    memset(value, 'f', sizeof value);
    size_t vlen = o->value_bytes < sizeof value ? o->value_bytes : sizeof value;
    /* the client is connected to every member already, as a real one is */
    for (int m = 0; m < BENCH_MEMBERS; m++)
        if (m != leader && s->conn_open(s, m, client, &conn[m]) != 0)
            goto out;
    int cur = s_next_survivor(leader, leader);
    uint64_t t0 = bench_now_ns();
    bench_kill_now(&s->procs[leader]);
    uint64_t deadline = t0 + (uint64_t)S_FAILOVER_MAX * 1000000u;
    for (unsigned seq = 0; bench_now_ns() < deadline; seq++) {
        char key[96];
        snprintf(key, sizeof key, "failover/%u/c%u/%u", trial, client, seq);
        int hint = -1;
        bench_put_t r = s->put(conn[cur], key, value, vlen, (int)o->try_ms, &hint);
        if (r == BENCH_PUT_OK) {
            result = (double)(bench_now_ns() - t0) / 1e6;
            break;
        }
        if (r == BENCH_PUT_REDIRECT && hint >= 0 && hint < BENCH_MEMBERS && hint != leader) {
            cur = hint;
            continue;
        }
        if (r == BENCH_PUT_FAIL || r == BENCH_PUT_TIMEOUT) {
            s->conn_close(&conn[cur]);
            if (s->conn_open(s, cur, client, &conn[cur]) != 0)
                goto out;
        }
        if (r != BENCH_PUT_TIMEOUT)
            bench_sleep_ms(2); /* an instant refusal: do not spin */
        cur = s_next_survivor(cur, leader);
    }
out:
    for (int m = 0; m < BENCH_MEMBERS; m++)
        if (conn[m])
            s->conn_close(&conn[m]);
    return result;
}

int bench_failover(bench_sys_t *s, const bench_opts_t *o, bench_failover_t *out)
{
    memset(out, 0, sizeof *out);
    out->trials = o->trials < BENCH_MAX_TRIALS ? o->trials : BENCH_MAX_TRIALS;
    for (unsigned t = 0; t < out->trials; t++) {
        int leader = s->leader(s, S_LEADER_MS);
        if (leader < 0) {
            fprintf(stderr, "bench: %s: no leader before failover trial %u\n", s->name, t + 1);
            return -1;
        }
        double ms = s_one_failover(s, leader, o, t);
        bench_stop(&s->procs[leader], SIGKILL, 5000);
        if (ms >= 0)
            out->ms[out->ok++] = ms;
        fprintf(stderr, "bench: %s: failover trial %u: killed member %d, %s %.1f ms\n", s->name,
                t + 1, leader + 1, ms >= 0 ? "first commit after" : "NO commit within",
                ms >= 0 ? ms : (double)S_FAILOVER_MAX);
        if (s->start(s, leader) != 0)
            return -1;
        int nl = s->leader(s, S_LEADER_MS);
        if (nl < 0 || s->caught_up(s, nl, leader, S_CATCHUP_MS) != 0) {
            fprintf(stderr, "bench: %s: member %d did not catch up after restart\n", s->name,
                    leader + 1);
            return -1;
        }
        bench_sleep_ms(S_SETTLE_MS);
    }
    if (out->ok == 0)
        return -1;
    double sorted[BENCH_MAX_TRIALS];
    memcpy(sorted, out->ms, out->ok * sizeof *sorted);
    qsort(sorted, out->ok, sizeof *sorted, s_cmp_double);
    out->median_ms =
        out->ok % 2 ? sorted[out->ok / 2] : (sorted[out->ok / 2 - 1] + sorted[out->ok / 2]) / 2;
    out->worst_ms = sorted[out->ok - 1];
    return 0;
}

void bench_sys_fini(bench_sys_t *s, unsigned grace_ms)
{
    for (int m = 0; m < BENCH_MEMBERS; m++)
        bench_stop(&s->procs[m], SIGTERM, grace_ms);
    free(s->impl);
    s->impl = NULL;
}
