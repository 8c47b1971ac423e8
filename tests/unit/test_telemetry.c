/*  tests/unit/test_telemetry.c - the telemetry aggregator
    (coordinator/telemetry.h) fed with synthetic heartbeats on a simulated
    clock: windows roll, counters become rates, counter resets, restarts,
    quantiles within the documented error, the series limit and expiry,
    and the per-worker, per-instance and per-version views. */
#include "coordinator/telemetry.h"

#include "protocol/appmetrics.h"
#include "protocol/error.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SEC 1000u

/*  One simulated instance: what its next status says. */
typedef struct {
    char service[16];
    uint64_t version;
    uint8_t health;
    uint32_t restarts;
    uint64_t probe_us;
    double cpu;
    uint64_t rss_kb;
    bool app;
    double requests, errors;
    uint32_t n_le;
    double le[16];
    double cum[16];
    double count;
} sim_inst_t;

static ds_instance_status_t s_status(const sim_inst_t *in, ds_metric_t *m, char names[][32])
{
    ds_instance_status_t st = {
        .service = (char *)in->service,
        .version = in->version,
        .state = DS_INST_RUNNING,
        .health = in->health,
        .restarts = in->restarts,
        .cpu_pct = in->cpu,
        .rss_kb = in->rss_kb,
        .probe_latency_us = in->probe_us,
        .reason = "",
    };
    if (!in->app)
        return st;
    uint32_t n = 0;
    m[n++] = (ds_metric_t){DS_APPMETRIC_REQUESTS, in->requests};
    m[n++] = (ds_metric_t){DS_APPMETRIC_ERRORS, in->errors};
    for (uint32_t i = 0; i < in->n_le; i++) {
        ds_appmetrics_le_name(in->le[i], names[i], 32);
        m[n++] = (ds_metric_t){names[i], in->cum[i]};
    }
    if (in->n_le)
        m[n++] = (ds_metric_t){DS_APPMETRIC_LATENCY_COUNT, in->count};
    st.n_metrics = n;
    st.metrics = m;
    return st;
}

static void s_observe(ds_telemetry_t *t, const char *worker, const sim_inst_t *in, uint64_t now)
{
    ds_metric_t m[DS_MAX_METRICS];
    char names[16][32];
    ds_instance_status_t st = s_status(in, m, names);
    assert_int_equal(ds_telemetry_observe(t, worker, &st, now), 0);
}

static ds_telemetry_stats_t s_query(ds_telemetry_t *t, uint8_t kind, const char *worker,
                                    const char *service, uint64_t version, uint32_t window,
                                    uint64_t since, uint64_t now)
{
    ds_telemetry_key_t k = {.kind = kind, .worker = worker, .service = service, .version = version};
    ds_telemetry_stats_t st;
    int rc = ds_telemetry_query(t, &k, window, since, now, &st);
    if (rc != 0)
        fail_msg("query %s/%s/%llu: %d", worker ? worker : "-", service ? service : "-",
                 (unsigned long long)version, rc);
    return st;
}

static ds_telemetry_stats_t s_svc(ds_telemetry_t *t, const char *service, uint64_t version,
                                  uint32_t window, uint64_t now)
{
    return s_query(t, DS_TELEMETRY_SERVICE, NULL, service, version, window, 0, now);
}

static sim_inst_t s_inst(const char *service, uint64_t version)
{
    sim_inst_t in = {.version = version, .health = DS_HEALTH_PASSING, .probe_us = 2000};
    snprintf(in.service, sizeof in.service, "%s", service);
    return in;
}

static void test_defaults_and_config_checked(void **state)
{
    (void)state;
    ds_telemetry_config_t cfg = {0};
    assert_int_equal(ds_telemetry_config_check(&cfg, NULL, 0), 0);
    assert_int_equal(cfg.max_series, DS_TELEMETRY_DEFAULT_SERIES);
    assert_int_equal(cfg.n_windows, 2);
    assert_true(cfg.window_ms[0] == 60000 && cfg.window_ms[1] == 300000);
    assert_int_equal(cfg.slots, DS_TELEMETRY_DEFAULT_SLOTS);
    char err[256];
    ds_telemetry_config_t bad = {.n_windows = 2, .window_ms = {60000, 60000}};
    assert_int_equal(ds_telemetry_config_check(&bad, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "window 1: 60000 ms is not longer"));
    bad = (ds_telemetry_config_t){.max_series = 3};
    assert_int_equal(ds_telemetry_config_check(&bad, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "max_series: 3 is out of range"));
    bad = (ds_telemetry_config_t){.slots = 61};
    assert_int_equal(ds_telemetry_config_check(&bad, err, sizeof err), DS_EINVAL);
    bad = (ds_telemetry_config_t){.n_windows = 5};
    assert_int_equal(ds_telemetry_config_check(&bad, err, sizeof err), DS_EINVAL);
    bad = (ds_telemetry_config_t){.n_windows = 1, .window_ms = {3}};
    assert_int_equal(ds_telemetry_config_check(&bad, err, sizeof err), DS_EINVAL);
    assert_null(ds_telemetry_new(&bad));

    ds_telemetry_t *t = ds_telemetry_new(NULL);
    assert_non_null(t);
    assert_int_equal(ds_telemetry_config(t)->n_windows, 2);
    assert_int_equal(ds_telemetry_window_for(t, 30000), 0);
    assert_int_equal(ds_telemetry_window_for(t, 60000), 0);
    assert_int_equal(ds_telemetry_window_for(t, 60001), 1);
    assert_int_equal(ds_telemetry_window_for(t, 3600000), 1);
    ds_telemetry_usage_t u;
    ds_telemetry_usage(t, &u);
    assert_int_equal(u.series, 0);
    assert_true(u.bytes > 0);
    ds_telemetry_destroy(&t);
    assert_null(t);
    ds_telemetry_destroy(&t);
}

static void test_windows_roll_health_ratio(void **state)
{
    (void)state;
    ds_telemetry_t *t = ds_telemetry_new(NULL);
    sim_inst_t in = s_inst("api", 3);
    uint64_t now = 1000000; /* a multiple of every slot */
    /* 60 s passing, then 60 s failing, one status a second. */
    for (int i = 0; i < 120; i++, now += SEC) {
        in.health = i < 60 ? DS_HEALTH_PASSING : DS_HEALTH_FAILING;
        s_observe(t, "w1", &in, now);
    }
    now -= SEC;
    /* The 1-min window (6 slots of 10 s) only sees failures. */
    ds_telemetry_stats_t m1 = s_svc(t, "api", 3, 0, now);
    assert_int_equal(m1.health_samples, 60);
    assert_true(m1.health_ratio == 0.0);
    /* The 5-min window sees both. */
    ds_telemetry_stats_t m5 = s_svc(t, "api", 3, 1, now);
    assert_int_equal(m5.samples, 120);
    assert_true(fabs(m5.health_ratio - 0.5) < 1e-9);
    assert_int_equal(m5.instances, 1);

    /* 40 s of passing: the 1-min window now holds its last 50 to 60 s. */
    for (int i = 0; i < 40; i++) {
        now += SEC;
        in.health = DS_HEALTH_PASSING;
        s_observe(t, "w1", &in, now);
    }
    m1 = s_svc(t, "api", 3, 0, now);
    /* Slots from 100 s after the start: 20 failing, 40 passing. */
    assert_int_equal(m1.health_samples, 60);
    assert_true(fabs(m1.health_ratio - 40.0 / 60.0) < 1e-9);
    /* Unknown health is no sample; statuses still count. */
    in.health = DS_HEALTH_UNKNOWN;
    s_observe(t, "w1", &in, now);
    ds_telemetry_stats_t again = s_svc(t, "api", 3, 0, now);
    assert_int_equal(again.health_samples, m1.health_samples);
    assert_int_equal(again.samples, m1.samples + 1);

    /* Silence: after a window the 1-min numbers are empty, the series kept. */
    now += 61 * SEC;
    m1 = s_svc(t, "api", 3, 0, now);
    assert_int_equal(m1.samples, 0);
    assert_int_equal(m1.instances, 0);
    m5 = s_svc(t, "api", 3, 1, now);
    assert_true(m5.samples > 0);
    ds_telemetry_destroy(&t);
}

static void test_counters_become_rates_and_error_ratio(void **state)
{
    (void)state;
    ds_telemetry_t *t = ds_telemetry_new(NULL);
    sim_inst_t a = s_inst("api", 3), b = s_inst("api", 3);
    a.app = b.app = true;
    a.requests = 5000; /* arbitrary starting points: only deltas count */
    b.requests = 100;
    uint64_t now = 2000000;
    for (int i = 0; i <= 30; i++, now += SEC) {
        s_observe(t, "w1", &a, now);
        s_observe(t, "w2", &b, now);
        a.requests += 100;
        a.errors += 10;
        b.requests += 100;
    }
    now -= SEC;
    ds_telemetry_stats_t s = s_svc(t, "api", 3, 0, now);
    /* 30 deltas of 100 per instance; the first status is the baseline. */
    assert_true(s.requests == 6000);
    assert_true(s.errors == 300);
    assert_true(fabs(s.error_ratio - 0.05) < 1e-12);
    assert_int_equal(s.span_ms, 30 * SEC);
    assert_true(fabs(s.request_rate - 200.0) < 1e-9);
    assert_int_equal(s.instances, 2);
    /* Per instance and per worker. */
    ds_telemetry_stats_t w1 = s_query(t, DS_TELEMETRY_INSTANCE, "w1", "api", 3, 0, 0, now);
    assert_true(w1.requests == 3000 && fabs(w1.error_ratio - 0.1) < 1e-12);
    assert_int_equal(w1.instances, 1);
    ds_telemetry_stats_t w2 = s_query(t, DS_TELEMETRY_WORKER, "w2", NULL, 0, 0, 0, now);
    assert_true(w2.requests == 3000 && w2.errors == 0);
    assert_int_equal(w2.instances, 1);
    ds_telemetry_destroy(&t);
}

static void test_counter_reset_counts_from_zero(void **state)
{
    (void)state;
    ds_telemetry_t *t = ds_telemetry_new(NULL);
    sim_inst_t in = s_inst("api", 3);
    in.app = true;
    uint64_t now = 3000000;
    in.requests = 1000;
    in.errors = 50;
    s_observe(t, "w1", &in, now);
    in.requests = 1100;
    in.errors = 60;
    s_observe(t, "w1", &in, now += SEC);
    /* The process restarted: counters start again from zero. */
    in.requests = 40;
    in.errors = 1;
    in.restarts = 1;
    s_observe(t, "w1", &in, now += SEC);
    in.requests = 90;
    s_observe(t, "w1", &in, now += SEC);
    ds_telemetry_stats_t s = s_svc(t, "api", 3, 0, now);
    assert_true(s.requests == 100 + 40 + 50);
    assert_true(s.errors == 10 + 1);
    assert_int_equal(s.restarts, 1);
    ds_telemetry_destroy(&t);
}

static void test_restarts_counted_in_window_not_before(void **state)
{
    (void)state;
    ds_telemetry_t *t = ds_telemetry_new(NULL);
    sim_inst_t in = s_inst("api", 3);
    uint64_t now = 4000000;
    in.restarts = 7; /* before the leader saw it: the baseline */
    s_observe(t, "w1", &in, now);
    in.restarts = 9;
    s_observe(t, "w1", &in, now += SEC);
    in.restarts = 0; /* the worker agent restarted and counts again */
    s_observe(t, "w1", &in, now += SEC);
    in.restarts = 1;
    s_observe(t, "w1", &in, now += SEC);
    assert_int_equal(s_svc(t, "api", 3, 0, now).restarts, 3);
    /* A minute later they have left the 1-min window, not the 5-min one. */
    in.restarts = 1;
    now += 70 * SEC;
    s_observe(t, "w1", &in, now);
    assert_int_equal(s_svc(t, "api", 3, 0, now).restarts, 0);
    assert_int_equal(s_svc(t, "api", 3, 1, now).restarts, 3);
    /* since_ms leaves out the slots that ended before it. */
    assert_int_equal(
        s_query(t, DS_TELEMETRY_SERVICE, NULL, "api", 3, 1, now - 5 * SEC, now).restarts, 0);
    ds_telemetry_destroy(&t);
}

/*  A deterministic pseudo-random generator for synthetic latencies. */
static uint64_t s_rng = 88172645463325252ull;
static double s_uniform(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return (double)(s_rng >> 11) / 9007199254740992.0;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void test_histogram_buckets_cover_the_range(void **state)
{
    (void)state;
    double lo, hi;
    assert_int_equal(ds_telemetry_hist_bucket(0), 0);
    assert_int_equal(ds_telemetry_hist_bucket(0.5), 0);
    assert_int_equal(ds_telemetry_hist_bucket(NAN), 0);
    assert_int_equal(ds_telemetry_hist_bucket(1), 1);
    assert_int_equal(ds_telemetry_hist_bucket(1e12), DS_TELEMETRY_HIST_BUCKETS - 1);
    ds_telemetry_hist_bounds(DS_TELEMETRY_HIST_BUCKETS - 1, &lo, &hi);
    assert_true(isinf(hi) && lo > 2.9e9);
    for (double us = 1; us < 3e9; us *= 1.37) {
        uint32_t b = ds_telemetry_hist_bucket(us);
        ds_telemetry_hist_bounds(b, &lo, &hi);
        if (!(us >= lo * (1 - 1e-12) && us < hi * (1 + 1e-12)))
            fail_msg("%g us in bucket %u [%g, %g)", us, b, lo, hi);
        if (!isinf(hi))
            assert_true(hi / lo < 1.0 + DS_TELEMETRY_QUANTILE_ERROR + 1e-9);
    }
}

static void test_probe_quantiles_within_documented_error(void **state)
{
    (void)state;
    enum { N = 3000 };
    static double values[N];
    ds_telemetry_config_t cfg = {.n_windows = 1, .window_ms = {3600 * SEC}};
    ds_telemetry_t *t = ds_telemetry_new(&cfg);
    sim_inst_t in = s_inst("api", 3);
    uint64_t now = 5000000;
    for (int i = 0; i < N; i++) {
        /* Log-uniform from 100 us to 2 s, with a slow tail. */
        double us = 100.0 * pow(20000.0, s_uniform());
        if (i % 50 == 0)
            us *= 3;
        in.probe_us = (uint64_t)us;
        values[i] = (double)in.probe_us;
        s_observe(t, i % 2 ? "w1" : "w2", &in, now + (uint64_t)i * 100);
    }
    now += (uint64_t)N * 100;
    qsort(values, N, sizeof values[0], s_cmp_double);
    ds_telemetry_stats_t s = s_svc(t, "api", 3, 0, now);
    assert_int_equal(s.probe_samples, N);
    double want[3] = {values[(N * 50 + 99) / 100 - 1], values[(N * 90 + 99) / 100 - 1],
                      values[(N * 99 + 99) / 100 - 1]};
    double got[3] = {s.probe_p50_ms * 1000, s.probe_p90_ms * 1000, s.probe_p99_ms * 1000};
    for (int i = 0; i < 3; i++) {
        double rel = fabs(got[i] - want[i]) / want[i];
        if (rel > DS_TELEMETRY_QUANTILE_ERROR)
            fail_msg("quantile %d: got %g us, exact %g us (error %.3f)", i, got[i], want[i], rel);
    }
    /* The two workers' series merge into the version's. */
    ds_telemetry_stats_t w1 = s_query(t, DS_TELEMETRY_WORKER, "w1", NULL, 0, 0, 0, now);
    assert_int_equal(w1.probe_samples, N / 2);
    ds_telemetry_destroy(&t);
}

static void test_app_latency_quantiles_from_service_buckets(void **state)
{
    (void)state;
    ds_telemetry_config_t cfg = {.n_windows = 1, .window_ms = {600 * SEC}};
    ds_telemetry_t *t = ds_telemetry_new(&cfg);
    sim_inst_t in = s_inst("api", 3);
    in.app = true;
    /* Buckets every 10 ms to 150 ms, then +Inf. */
    in.n_le = 16;
    for (uint32_t i = 0; i < 15; i++)
        in.le[i] = 0.010 * (i + 1);
    in.le[15] = INFINITY;
    uint64_t now = 6000000;
    s_observe(t, "w1", &in, now); /* baseline: all zero */
    /* 1000 requests per step, latencies uniform in 0..100 ms. */
    for (int step = 0; step < 10; step++) {
        for (uint32_t i = 0; i < 16; i++) {
            double upto = in.le[i] >= 0.1 ? 1000 : 1000 * in.le[i] / 0.1;
            in.cum[i] += upto;
        }
        in.count += 1000;
        in.requests += 1000;
        s_observe(t, "w1", &in, now += SEC);
    }
    ds_telemetry_stats_t s = s_svc(t, "api", 3, 0, now);
    assert_true(fabs(s.latency_samples - 10000) < 1e-6);
    /* Exact: p50 = 50 ms, p90 = 90 ms, p99 = 99 ms. */
    assert_true(fabs(s.latency_p50_ms - 50) / 50 < DS_TELEMETRY_QUANTILE_ERROR);
    assert_true(fabs(s.latency_p90_ms - 90) / 90 < DS_TELEMETRY_QUANTILE_ERROR);
    assert_true(fabs(s.latency_p99_ms - 99) / 99 < DS_TELEMETRY_QUANTILE_ERROR);

    /* A reset of the histogram counts from zero; no negative counts. */
    for (uint32_t i = 0; i < 16; i++)
        in.cum[i] = in.le[i] >= 0.02 ? 10 : 0;
    in.count = 10;
    s_observe(t, "w1", &in, now += SEC);
    s = s_svc(t, "api", 3, 0, now);
    assert_true(fabs(s.latency_samples - 10010) < 1e-6);

    /* Observations above the last bound, known only from the count, when
       the service exposes no +Inf bucket. */
    sim_inst_t nf = s_inst("db", 1);
    nf.app = true;
    nf.n_le = 2;
    nf.le[0] = 0.1;
    nf.le[1] = 0.2;
    s_observe(t, "w1", &nf, now);
    nf.cum[0] = 50;
    nf.cum[1] = 90;
    nf.count = 100;
    s_observe(t, "w1", &nf, now += SEC);
    s = s_svc(t, "db", 1, 0, now);
    assert_true(fabs(s.latency_samples - 100) < 1e-6);
    assert_true(s.latency_p99_ms >= 200 && s.latency_p99_ms < 200 * 1.2);
    ds_telemetry_destroy(&t);
}

static void test_series_limit_evicts_least_recently_updated(void **state)
{
    (void)state;
    ds_telemetry_config_t cfg = {.max_series = DS_TELEMETRY_MIN_SERIES};
    ds_telemetry_t *t = ds_telemetry_new(&cfg);
    sim_inst_t in = s_inst("api", 3);
    uint64_t now = 7000000;
    ds_telemetry_usage_t u0;
    ds_telemetry_usage(t, &u0);
    /* Each worker adds 2 series (worker, instance); the version 1. */
    char name[16];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "w%02d", i);
        s_observe(t, name, &in, now += SEC);
    }
    ds_telemetry_usage_t u;
    ds_telemetry_usage(t, &u);
    assert_int_equal(u.series, DS_TELEMETRY_MIN_SERIES);
    assert_int_equal(u.max_series, DS_TELEMETRY_MIN_SERIES);
    assert_int_equal(u.evicted, 2 * 12 + 1 - DS_TELEMETRY_MIN_SERIES);
    assert_true(u.bytes > u0.bytes);
    /* The oldest workers went first; the version, updated each time, stayed. */
    ds_telemetry_key_t k = {.kind = DS_TELEMETRY_WORKER, .worker = "w00"};
    ds_telemetry_stats_t st;
    assert_int_equal(ds_telemetry_query(t, &k, 0, 0, now, &st), DS_ENOTFOUND);
    k.worker = "w11";
    assert_int_equal(ds_telemetry_query(t, &k, 0, 0, now, &st), 0);
    ds_telemetry_stats_t s = s_svc(t, "api", 3, 1, now);
    assert_int_equal(s.samples, 12);
    /* Only the instances still kept are counted: the version and the 15
       most recent others (w05..w11 and their instances, and w04's). */
    assert_int_equal(s.instances, 8);
    /* Bytes stay bounded however many more series come. */
    for (int i = 12; i < 200; i++) {
        snprintf(name, sizeof name, "w%03d", i);
        s_observe(t, name, &in, now += SEC);
    }
    ds_telemetry_usage_t u2;
    ds_telemetry_usage(t, &u2);
    assert_int_equal(u2.series, DS_TELEMETRY_MIN_SERIES);
    assert_true(u2.bytes == u.bytes);
    ds_telemetry_destroy(&t);
}

static void test_idle_series_expire_after_longest_window(void **state)
{
    (void)state;
    ds_telemetry_t *t = ds_telemetry_new(NULL);
    sim_inst_t in = s_inst("api", 3);
    uint64_t now = 8000000;
    s_observe(t, "w1", &in, now);
    ds_telemetry_usage_t u;
    ds_telemetry_expire(t, now + 300 * SEC);
    ds_telemetry_usage(t, &u);
    assert_int_equal(u.series, 3);
    ds_telemetry_expire(t, now + 300 * SEC + 1);
    ds_telemetry_usage(t, &u);
    assert_int_equal(u.series, 0);
    assert_int_equal(u.expired, 3);
    /* A time earlier than one already seen is taken as the latest. */
    s_observe(t, "w1", &in, now);
    ds_telemetry_usage(t, &u);
    assert_int_equal(u.series, 3);
    ds_telemetry_destroy(&t);
}

static void test_heartbeat_feeds_machine_stats_of_worker(void **state)
{
    (void)state;
    ds_telemetry_t *t = ds_telemetry_new(NULL);
    ds_instance_status_t inst[2] = {
        {.service = "api", .version = 3, .health = DS_HEALTH_PASSING, .cpu_pct = 10, .rss_kb = 100},
        {.service = "db", .version = 1, .health = DS_HEALTH_FAILING, .cpu_pct = 30, .rss_kb = 300},
    };
    ds_heartbeat_t hb = {
        .name = "w1",
        .telemetry = {.cpu_pct = 50, .mem_used_kb = 4096},
        .n_instances = 2,
        .instances = inst,
    };
    uint64_t now = 9000000;
    assert_int_equal(ds_telemetry_heartbeat(t, &hb, now), 0);
    hb.telemetry.cpu_pct = 70;
    assert_int_equal(ds_telemetry_heartbeat(t, &hb, now + SEC), 0);
    ds_telemetry_stats_t w = s_query(t, DS_TELEMETRY_WORKER, "w1", NULL, 0, 0, 0, now + SEC);
    assert_true(w.cpu_pct == 60 && w.rss_kb == 4096);
    assert_int_equal(w.instances, 2);
    assert_int_equal(w.samples, 4);
    assert_true(w.health_ratio == 0.5);
    ds_telemetry_stats_t i = s_query(t, DS_TELEMETRY_INSTANCE, "w1", "db", 1, 0, 0, now + SEC);
    assert_true(i.cpu_pct == 30 && i.rss_kb == 300 && i.health_ratio == 0);

    /* Bad names are refused and change nothing. */
    inst[0].service = "";
    assert_int_equal(ds_telemetry_heartbeat(t, &hb, now + 2 * SEC), DS_EINVAL);
    char long_name[DS_MAX_NAME + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(ds_telemetry_observe(t, long_name, &inst[1], now), DS_EINVAL);

    /* A removed worker's series go; the versions' remain. */
    ds_telemetry_forget_worker(t, "w1");
    ds_telemetry_usage_t u;
    ds_telemetry_usage(t, &u);
    assert_int_equal(u.series, 2);
    ds_telemetry_stats_t s = s_svc(t, "db", 1, 0, now + SEC);
    assert_int_equal(s.instances, 0);
    assert_int_equal(s.samples, 2);
    ds_telemetry_destroy(&t);
}

typedef struct {
    int seen[4];
    int stop_after;
    int calls;
} visit_t;

static int s_visit(void *ctx, const ds_telemetry_key_t *key, const ds_telemetry_stats_t *stats)
{
    visit_t *v = ctx;
    v->seen[key->kind]++;
    assert_true(stats->samples > 0);
    if (key->kind == DS_TELEMETRY_SERVICE)
        assert_null(key->worker);
    if (key->kind == DS_TELEMETRY_WORKER)
        assert_null(key->service);
    return ++v->calls == v->stop_after ? 42 : 0;
}

static void test_each_visits_every_series(void **state)
{
    (void)state;
    ds_telemetry_t *t = ds_telemetry_new(NULL);
    sim_inst_t a = s_inst("api", 3), b = s_inst("api", 4);
    uint64_t now = 10000000;
    s_observe(t, "w1", &a, now);
    s_observe(t, "w2", &a, now);
    s_observe(t, "w3", &b, now);
    visit_t v = {0};
    assert_int_equal(ds_telemetry_each(t, 0, 1, now, s_visit, &v), 0);
    assert_int_equal(v.seen[DS_TELEMETRY_WORKER], 3);
    assert_int_equal(v.seen[DS_TELEMETRY_INSTANCE], 3);
    assert_int_equal(v.seen[DS_TELEMETRY_SERVICE], 2);
    memset(&v, 0, sizeof v);
    assert_int_equal(ds_telemetry_each(t, DS_TELEMETRY_SERVICE, 0, now, s_visit, &v), 0);
    assert_int_equal(v.calls, 2);
    memset(&v, 0, sizeof v);
    v.stop_after = 2;
    assert_int_equal(ds_telemetry_each(t, 0, 0, now, s_visit, &v), 42);
    assert_int_equal(v.calls, 2);
    assert_int_equal(ds_telemetry_each(t, 0, 2, now, s_visit, &v), DS_EINVAL);
    ds_telemetry_key_t k = {.kind = 9};
    ds_telemetry_stats_t st;
    assert_int_equal(ds_telemetry_query(t, &k, 0, 0, now, &st), DS_EINVAL);
    ds_telemetry_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_config_checked),
        cmocka_unit_test(test_windows_roll_health_ratio),
        cmocka_unit_test(test_counters_become_rates_and_error_ratio),
        cmocka_unit_test(test_counter_reset_counts_from_zero),
        cmocka_unit_test(test_restarts_counted_in_window_not_before),
        cmocka_unit_test(test_histogram_buckets_cover_the_range),
        cmocka_unit_test(test_probe_quantiles_within_documented_error),
        cmocka_unit_test(test_app_latency_quantiles_from_service_buckets),
        cmocka_unit_test(test_series_limit_evicts_least_recently_updated),
        cmocka_unit_test(test_idle_series_expire_after_longest_window),
        cmocka_unit_test(test_heartbeat_feeds_machine_stats_of_worker),
        cmocka_unit_test(test_each_visits_every_series),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
