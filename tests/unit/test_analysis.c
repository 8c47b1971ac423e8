/*  tests/unit/test_analysis.c - canary analysis (coordinator/analysis.h):
    every check passing and failing with its line, relative checks against
    a baseline (and without one), too few samples kept inconclusive until
    the deadline and then failed or promoted per on_inconclusive, the
    summary, and a canary judged end to end from synthetic heartbeats
    through the telemetry aggregator. */
#include "coordinator/analysis.h"

#include "coordinator/rollout.h"
#include "coordinator/telemetry.h"
#include "protocol/appmetrics.h"
#include "protocol/spec.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define BAKE_AT  100000u
#define DEADLINE 300000u

static ds_analysis_t s_off(void)
{
    ds_analysis_t a = {
        .max_error_ratio = DS_SPEC_OFF,
        .max_p99_latency_ms = DS_SPEC_OFF,
        .max_restarts = DS_SPEC_OFF,
        .min_health_ratio = DS_SPEC_OFF,
        .max_error_ratio_vs_baseline = DS_SPEC_OFF,
        .max_latency_vs_baseline = DS_SPEC_OFF,
        .min_samples = 20,
        .on_inconclusive = DS_INCONCLUSIVE_FAIL,
    };
    return a;
}

/*  A window with plenty of samples of everything. */
static ds_telemetry_stats_t s_good(void)
{
    ds_telemetry_stats_t s = {
        .window_ms = 60000,
        .instances = 1,
        .samples = 60,
        .health_samples = 60,
        .health_ratio = 1.0,
        .requests = 1000,
        .errors = 10,
        .error_ratio = 0.01,
        .latency_samples = 1000,
        .latency_p99_ms = 42,
    };
    return s;
}

static void s_eval(const ds_analysis_t *a, const ds_telemetry_stats_t *canary,
                   const ds_telemetry_stats_t *baseline, uint64_t now, ds_analysis_verdict_t *v)
{
    ds_analysis_input_t in = {
        .analysis = a,
        .canary = canary,
        .baseline = baseline,
        .bake_started_ms = BAKE_AT,
        .healthy_deadline_ms = DEADLINE,
        .now_ms = now,
    };
    ds_analysis_evaluate(&in, v);
}

static void s_expect(const ds_analysis_verdict_t *v, int result, const char *summary)
{
    if (v->result != result || strcmp(v->summary, summary) != 0)
        fail_msg("got %d \"%s\"\nwant %d \"%s\"", v->result, v->summary, result, summary);
}

static void test_nothing_configured_is_none(void **state)
{
    (void)state;
    ds_analysis_t a = s_off();
    ds_telemetry_stats_t c = s_good();
    ds_analysis_verdict_t v;
    assert_false(ds_analysis_configured(&a));
    s_eval(&a, &c, NULL, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_NONE, "none: no analysis configured");
    assert_int_equal(v.n_checks, 0);
    s_eval(NULL, NULL, NULL, BAKE_AT, &v);
    assert_int_equal(v.result, DS_ROLLOUT_VERDICT_NONE);
    ds_rollout_verdict_t r = ds_analysis_rollout_verdict(&v);
    assert_int_equal(r.result, DS_ROLLOUT_VERDICT_NONE);
    assert_ptr_equal(r.reason, v.summary);
}

static void test_error_ratio_check(void **state)
{
    (void)state;
    ds_analysis_t a = s_off();
    a.max_error_ratio = 0.05;
    ds_telemetry_stats_t c = s_good();
    ds_analysis_verdict_t v;
    s_eval(&a, &c, NULL, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_PASS, "pass: error_ratio 0.01 <= max 0.05 (pass)");
    assert_int_equal(v.n_checks, 1);
    assert_string_equal(v.checks[0].name, "error_ratio");
    assert_true(v.checks[0].value == 0.01 && v.checks[0].threshold == 0.05);
    assert_int_equal(v.checks[0].samples, 1000);
    c.errors = 91;
    c.error_ratio = 0.091;
    s_eval(&a, &c, NULL, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_FAIL, "fail: error_ratio 0.091 > max 0.05 (fail)");
    assert_int_equal(v.checks[0].result, DS_CHECK_FAIL);
    assert_string_equal(ds_analysis_check_result_name(v.checks[0].result), "fail");
}

static void test_p99_latency_check(void **state)
{
    (void)state;
    ds_analysis_t a = s_off();
    a.max_p99_latency_ms = 250;
    ds_telemetry_stats_t c = s_good();
    ds_analysis_verdict_t v;
    s_eval(&a, &c, NULL, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_PASS, "pass: p99_latency_ms 42 <= max 250 (pass)");
    c.latency_p99_ms = 251.5;
    s_eval(&a, &c, NULL, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_FAIL, "fail: p99_latency_ms 251.5 > max 250 (fail)");
}

static void test_restarts_check(void **state)
{
    (void)state;
    ds_analysis_t a = s_off();
    a.max_restarts = 0;
    ds_telemetry_stats_t c = s_good();
    ds_analysis_verdict_t v;
    s_eval(&a, &c, NULL, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_PASS, "pass: restarts 0 <= max 0 (pass)");
    c.restarts = 3;
    s_eval(&a, &c, NULL, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_FAIL, "fail: restarts 3 > max 0 (fail)");
}

static void test_health_ratio_check(void **state)
{
    (void)state;
    ds_analysis_t a = s_off();
    a.min_health_ratio = 0.95;
    ds_telemetry_stats_t c = s_good();
    ds_analysis_verdict_t v;
    s_eval(&a, &c, NULL, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_PASS, "pass: health_ratio 1 >= min 0.95 (pass)");
    c.health_ratio = 0.8;
    s_eval(&a, &c, NULL, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_FAIL, "fail: health_ratio 0.8 < min 0.95 (fail)");
}

static void test_error_ratio_against_baseline(void **state)
{
    (void)state;
    ds_analysis_t a = s_off();
    a.max_error_ratio_vs_baseline = 1.2;
    ds_telemetry_stats_t c = s_good(), b = s_good();
    ds_analysis_verdict_t v;
    c.error_ratio = 0.011;
    s_eval(&a, &c, &b, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_PASS,
             "pass: error_ratio_vs_baseline 0.011 <= max 0.012 (1.2 x baseline 0.01) (pass)");
    assert_true(v.checks[0].baseline == 0.01 && v.checks[0].factor == 1.2);
    c.error_ratio = 0.02;
    s_eval(&a, &c, &b, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_FAIL,
             "fail: error_ratio_vs_baseline 0.02 > max 0.012 (1.2 x baseline 0.01) (fail)");
    /* A baseline without errors: the noise floor keeps 1 in 2000 from
       failing, while 1 in 100 fails. */
    b.error_ratio = 0;
    c.error_ratio = 0.0005;
    s_eval(&a, &c, &b, BAKE_AT, &v);
    assert_int_equal(v.result, DS_ROLLOUT_VERDICT_PASS);
    assert_true(v.checks[0].threshold == DS_ANALYSIS_ERROR_RATIO_FLOOR);
    c.error_ratio = 0.01;
    s_eval(&a, &c, &b, BAKE_AT, &v);
    assert_int_equal(v.result, DS_ROLLOUT_VERDICT_FAIL);
}

static void test_latency_against_baseline(void **state)
{
    (void)state;
    ds_analysis_t a = s_off();
    a.max_latency_vs_baseline = 1.5;
    ds_telemetry_stats_t c = s_good(), b = s_good();
    ds_analysis_verdict_t v;
    b.latency_p99_ms = 40;
    c.latency_p99_ms = 59;
    s_eval(&a, &c, &b, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_PASS,
             "pass: latency_vs_baseline 59 <= max 60 (1.5 x baseline 40) (pass)");
    c.latency_p99_ms = 61;
    s_eval(&a, &c, &b, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_FAIL,
             "fail: latency_vs_baseline 61 > max 60 (1.5 x baseline 40) (fail)");
    /* Sub-millisecond baselines: within the floor passes. */
    b.latency_p99_ms = 0.2;
    c.latency_p99_ms = 0.9;
    s_eval(&a, &c, &b, BAKE_AT, &v);
    assert_int_equal(v.result, DS_ROLLOUT_VERDICT_PASS);
}

static void test_no_baseline_counts_as_too_few_samples(void **state)
{
    (void)state;
    ds_analysis_t a = s_off();
    a.max_error_ratio_vs_baseline = 1.2;
    ds_telemetry_stats_t c = s_good();
    ds_analysis_verdict_t v;
    s_eval(&a, &c, NULL, BAKE_AT + 1000, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_INCONCLUSIVE,
             "inconclusive, baking up to 299s more: error_ratio_vs_baseline: no baseline "
             "(insufficient)");
    assert_true(v.checks[0].no_baseline);
    assert_false(v.deadline_passed);
    s_eval(&a, &c, NULL, BAKE_AT + DEADLINE, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_FAIL,
             "fail: inconclusive at the healthy deadline (on_inconclusive fail): "
             "error_ratio_vs_baseline: no baseline (insufficient)");
    a.on_inconclusive = DS_INCONCLUSIVE_PROMOTE;
    s_eval(&a, &c, NULL, BAKE_AT + DEADLINE, &v);
    assert_int_equal(v.result, DS_ROLLOUT_VERDICT_PASS);
    /* A baseline with too few samples is as good as none. */
    ds_telemetry_stats_t b = s_good();
    b.requests = 5;
    a.on_inconclusive = DS_INCONCLUSIVE_FAIL;
    s_eval(&a, &c, &b, BAKE_AT, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_INCONCLUSIVE,
             "inconclusive, baking up to 300s more: error_ratio_vs_baseline: baseline has only "
             "5 of 20 samples (insufficient)");
}

static void test_too_few_samples_keep_baking_then_fail_at_deadline(void **state)
{
    (void)state;
    ds_analysis_t a = s_off();
    a.max_error_ratio = 0.05;
    a.max_p99_latency_ms = 250;
    ds_telemetry_stats_t c = s_good();
    c.requests = 3;
    c.errors = 0;
    c.error_ratio = 0;
    ds_analysis_verdict_t v;
    s_eval(&a, &c, NULL, BAKE_AT + 30000, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_INCONCLUSIVE,
             "inconclusive, baking up to 270s more: error_ratio: only 3 of 20 samples "
             "(insufficient); p99_latency_ms 42 <= max 250 (pass)");
    assert_int_equal(v.checks[0].result, DS_CHECK_INSUFFICIENT);
    assert_int_equal(v.checks[0].needed, 20);
    /* One ms before the deadline: still baking. */
    s_eval(&a, &c, NULL, BAKE_AT + DEADLINE - 1, &v);
    assert_int_equal(v.result, DS_ROLLOUT_VERDICT_INCONCLUSIVE);
    s_eval(&a, &c, NULL, BAKE_AT + DEADLINE, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_FAIL,
             "fail: inconclusive at the healthy deadline (on_inconclusive fail): error_ratio: "
             "only 3 of 20 samples (insufficient); p99_latency_ms 42 <= max 250 (pass)");
    assert_true(v.deadline_passed);
    /* Enough samples before the deadline: a verdict at once. */
    c.requests = 20;
    s_eval(&a, &c, NULL, BAKE_AT + 1, &v);
    assert_int_equal(v.result, DS_ROLLOUT_VERDICT_PASS);
}

static void test_too_few_samples_promoted_at_deadline_when_configured(void **state)
{
    (void)state;
    ds_analysis_t a = s_off();
    a.min_health_ratio = 0.9;
    a.on_inconclusive = DS_INCONCLUSIVE_PROMOTE;
    ds_telemetry_stats_t c = s_good();
    c.health_samples = 2;
    ds_analysis_verdict_t v;
    s_eval(&a, &c, NULL, BAKE_AT, &v);
    assert_int_equal(v.result, DS_ROLLOUT_VERDICT_INCONCLUSIVE);
    s_eval(&a, &c, NULL, BAKE_AT + DEADLINE + 5000, &v);
    s_expect(&v, DS_ROLLOUT_VERDICT_PASS,
             "pass: inconclusive at the healthy deadline (on_inconclusive promote): "
             "health_ratio: only 2 of 20 samples (insufficient)");
    /* Nothing measured at all (no canary window). */
    s_eval(&a, NULL, NULL, BAKE_AT, &v);
    assert_int_equal(v.result, DS_ROLLOUT_VERDICT_INCONCLUSIVE);
}

static void test_failure_wins_and_summary_lists_failures_first(void **state)
{
    (void)state;
    ds_analysis_t a = s_off();
    a.max_error_ratio = 0.05;
    a.max_p99_latency_ms = 250;
    a.max_restarts = 2;
    a.min_health_ratio = 0.9;
    a.max_error_ratio_vs_baseline = 2;
    a.max_latency_vs_baseline = 1.2;
    ds_telemetry_stats_t c = s_good();
    c.restarts = 5;
    c.latency_samples = 4;
    ds_analysis_verdict_t v;
    s_eval(&a, &c, NULL, BAKE_AT, &v);
    assert_int_equal(v.n_checks, 6);
    s_expect(&v, DS_ROLLOUT_VERDICT_FAIL,
             "fail: restarts 5 > max 2 (fail); p99_latency_ms: only 4 of 20 samples "
             "(insufficient); error_ratio_vs_baseline: no baseline (insufficient); "
             "latency_vs_baseline: no baseline (insufficient); error_ratio 0.01 <= max 0.05 "
             "(pass); health_ratio 1 >= min 0.9 (pass)");
    static const char *const names[] = {
        "error_ratio",  "p99_latency_ms",          "restarts",
        "health_ratio", "error_ratio_vs_baseline", "latency_vs_baseline"};
    for (uint32_t i = 0; i < 6; i++)
        assert_string_equal(v.checks[i].name, names[i]);
    ds_rollout_verdict_t r = ds_analysis_rollout_verdict(&v);
    assert_int_equal(r.result, DS_ROLLOUT_VERDICT_FAIL);
    assert_string_equal(r.reason, v.summary);
    assert_true(strlen(v.summary) < sizeof v.summary);
}

/* ---- end to end: heartbeats -> telemetry -> verdict ------------------------ */

/*  Sends one status of an instance serving `rps` requests a second with
    `err_pct` percent errors and latencies in [0, lat_ms), advancing its
    cumulative counters. */
typedef struct {
    const char *worker;
    uint64_t version;
    double requests, errors;
    double cum[4];
} e2e_inst_t;

static void s_serve(ds_telemetry_t *t, e2e_inst_t *in, double rps, double err_pct, double lat_ms,
                    uint64_t now)
{
    static const double le_s[4] = {0.05, 0.1, 0.2, INFINITY};
    in->requests += rps;
    in->errors += rps * err_pct / 100;
    for (int i = 0; i < 4; i++) {
        double frac = isinf(le_s[i]) ? 1 : le_s[i] * 1000 / lat_ms;
        in->cum[i] += rps * (frac > 1 ? 1 : frac);
    }
    char names[4][32];
    ds_metric_t m[6] = {{DS_APPMETRIC_REQUESTS, in->requests}, {DS_APPMETRIC_ERRORS, in->errors}};
    for (int i = 0; i < 4; i++) {
        ds_appmetrics_le_name(le_s[i], names[i], sizeof names[i]);
        m[2 + i] = (ds_metric_t){names[i], in->cum[i]};
    }
    ds_instance_status_t st = {
        .service = "api",
        .version = in->version,
        .state = DS_INST_RUNNING,
        .health = DS_HEALTH_PASSING,
        .probe_latency_us = 1500,
        .n_metrics = 6,
        .metrics = m,
    };
    assert_int_equal(ds_telemetry_observe(t, in->worker, &st, now), 0);
}

static void test_canary_judged_from_heartbeats(void **state)
{
    (void)state;
    ds_telemetry_t *t = ds_telemetry_new(NULL);
    assert_non_null(t);
    e2e_inst_t base[3] = {{"w1", 3, 0, 0, {0}}, {"w2", 3, 0, 0, {0}}, {"w3", 3, 0, 0, {0}}};
    e2e_inst_t canary = {"w4", 4, 0, 0, {0}};
    ds_analysis_t a = s_off();
    a.max_error_ratio = 0.05;
    a.max_error_ratio_vs_baseline = 1.5;
    a.max_latency_vs_baseline = 1.2;
    a.min_samples = 100;
    uint64_t now = 1000000, bake_at = now;
    ds_analysis_verdict_t v;
    /* The canary errs 4 % (under the absolute 5 %) but the baseline 1 %;
       its latencies stretch to 200 ms against 100 ms. */
    for (int sec = 0; sec < 40; sec++, now += 1000) {
        for (int i = 0; i < 3; i++)
            s_serve(t, &base[i], 50, 1, 100, now);
        s_serve(t, &canary, 50, 4, 200, now);
        uint32_t w = ds_telemetry_window_for(t, now - bake_at);
        ds_telemetry_stats_t cs, bs;
        ds_telemetry_key_t ck = {.kind = DS_TELEMETRY_SERVICE, .service = "api", .version = 4};
        ds_telemetry_key_t bk = {.kind = DS_TELEMETRY_SERVICE, .service = "api", .version = 3};
        assert_int_equal(ds_telemetry_query(t, &ck, w, bake_at, now, &cs), 0);
        assert_int_equal(ds_telemetry_query(t, &bk, w, bake_at, now, &bs), 0);
        ds_analysis_input_t in = {&a, &cs, &bs, bake_at, DEADLINE, now};
        ds_analysis_evaluate(&in, &v);
        /* The first statuses only set baselines; 2 s of 50 requests is
           still short of 100 samples. */
        if (sec < 2)
            assert_int_equal(v.result, DS_ROLLOUT_VERDICT_INCONCLUSIVE);
    }
    assert_int_equal(v.result, DS_ROLLOUT_VERDICT_FAIL);
    assert_int_equal(v.checks[0].result, DS_CHECK_PASS); /* 4 % <= 5 % */
    assert_int_equal(v.checks[1].result, DS_CHECK_FAIL); /* 4 % > 1.5 x 1 % */
    assert_int_equal(v.checks[2].result, DS_CHECK_FAIL); /* ~200 ms > 1.2 x ~100 ms */
    assert_true(fabs(v.checks[0].value - 0.04) < 1e-9);
    assert_true(fabs(v.checks[1].baseline - 0.01) < 1e-9);
    assert_non_null(strstr(v.summary, "fail: error_ratio_vs_baseline 0.04 > max 0.015"));
    ds_telemetry_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_configured_is_none),
        cmocka_unit_test(test_error_ratio_check),
        cmocka_unit_test(test_p99_latency_check),
        cmocka_unit_test(test_restarts_check),
        cmocka_unit_test(test_health_ratio_check),
        cmocka_unit_test(test_error_ratio_against_baseline),
        cmocka_unit_test(test_latency_against_baseline),
        cmocka_unit_test(test_no_baseline_counts_as_too_few_samples),
        cmocka_unit_test(test_too_few_samples_keep_baking_then_fail_at_deadline),
        cmocka_unit_test(test_too_few_samples_promoted_at_deadline_when_configured),
        cmocka_unit_test(test_failure_wins_and_summary_lists_failures_first),
        cmocka_unit_test(test_canary_judged_from_heartbeats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
