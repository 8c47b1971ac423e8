/*  coordinator/analysis.c - canary analysis (pure; see analysis.h and
    docs/telemetry.md, "Canary analysis"). */
#include "coordinator/analysis.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool s_on(double threshold)
{
    return threshold >= 0 && isfinite(threshold);
}

bool ds_analysis_configured(const ds_analysis_t *a)
{
    return a && (s_on(a->max_error_ratio) || s_on(a->max_p99_latency_ms) || s_on(a->max_restarts) ||
                 s_on(a->min_health_ratio) || s_on(a->max_error_ratio_vs_baseline) ||
                 s_on(a->max_latency_vs_baseline));
}

const char *ds_analysis_check_result_name(int result)
{
    switch (result) {
    case DS_CHECK_PASS:
        return "pass";
    case DS_CHECK_FAIL:
        return "fail";
    case DS_CHECK_INSUFFICIENT:
        return "insufficient";
    default:
        return "unknown";
    }
}

/*  A sample count from a (telemetry) double, clamped. */
static uint64_t s_count(double v)
{
    if (!(v > 0))
        return 0;
    return v >= 1e18 ? UINT64_MAX : (uint64_t)llround(v);
}

static ds_analysis_check_t *s_row(ds_analysis_verdict_t *out, const char *name, uint64_t needed)
{
    ds_analysis_check_t *c = &out->checks[out->n_checks++];
    memset(c, 0, sizeof *c);
    c->name = name;
    c->needed = needed;
    return c;
}

/*  An absolute check: value must stay at most (max) or at least (!max)
    the threshold. */
static void s_absolute(ds_analysis_verdict_t *out, const char *name, double value, double threshold,
                       bool max, uint64_t samples, uint64_t needed)
{
    ds_analysis_check_t *c = s_row(out, name, needed);
    c->value = value;
    c->threshold = threshold;
    c->samples = samples;
    if (samples < needed) {
        c->result = DS_CHECK_INSUFFICIENT;
        snprintf(c->line, sizeof c->line, "%s: only %llu of %llu samples (insufficient)", name,
                 (unsigned long long)samples, (unsigned long long)needed);
        return;
    }
    bool ok = max ? value <= threshold : value >= threshold;
    c->result = ok ? DS_CHECK_PASS : DS_CHECK_FAIL;
    const char *op = max ? (ok ? "<=" : ">") : (ok ? ">=" : "<");
    snprintf(c->line, sizeof c->line, "%s %.4g %s %s %.4g (%s)", name, value, op,
             max ? "max" : "min", threshold, ok ? "pass" : "fail");
}

/*  A relative check: value must stay at most max(baseline x factor,
    baseline + floor). */
static void s_relative(ds_analysis_verdict_t *out, const char *name, double value, uint64_t samples,
                       const ds_telemetry_stats_t *base, double base_value, uint64_t base_samples,
                       double factor, double floor, uint64_t needed)
{
    ds_analysis_check_t *c = s_row(out, name, needed);
    c->value = value;
    c->factor = factor;
    c->samples = samples;
    if (!base) {
        c->no_baseline = true;
        c->result = DS_CHECK_INSUFFICIENT;
        snprintf(c->line, sizeof c->line, "%s: no baseline (insufficient)", name);
        return;
    }
    c->baseline = base_value;
    c->threshold =
        base_value * factor > base_value + floor ? base_value * factor : base_value + floor;
    if (base_samples < samples)
        c->samples = base_samples;
    if (samples < needed || base_samples < needed) {
        c->result = DS_CHECK_INSUFFICIENT;
        snprintf(c->line, sizeof c->line, "%s: %s only %llu of %llu samples (insufficient)", name,
                 samples < needed ? "canary has" : "baseline has",
                 (unsigned long long)(samples < needed ? samples : base_samples),
                 (unsigned long long)needed);
        return;
    }
    bool ok = value <= c->threshold;
    c->result = ok ? DS_CHECK_PASS : DS_CHECK_FAIL;
    snprintf(c->line, sizeof c->line, "%s %.4g %s max %.4g (%.4g x baseline %.4g) (%s)", name,
             value, ok ? "<=" : ">", c->threshold, factor, base_value, ok ? "pass" : "fail");
}

/*  Appends the lines of the checks with `result` to the summary. */
static void s_append(ds_analysis_verdict_t *out, size_t *len, bool *first, bool *cut, int result)
{
    for (uint32_t i = 0; i < out->n_checks && !*cut; i++) {
        const ds_analysis_check_t *c = &out->checks[i];
        if (c->result != result)
            continue;
        const char *sep = *first ? "" : "; ";
        size_t need = strlen(sep) + strlen(c->line);
        /* Room for this line and a final "; ..." */
        if (*len + need + 6 >= sizeof out->summary) {
            snprintf(out->summary + *len, sizeof out->summary - *len, "; ...");
            *len += strlen(out->summary + *len);
            *cut = true;
            return;
        }
        snprintf(out->summary + *len, sizeof out->summary - *len, "%s%s", sep, c->line);
        *len += need;
        *first = false;
    }
}

void ds_analysis_evaluate(const ds_analysis_input_t *in, ds_analysis_verdict_t *out)
{
    memset(out, 0, sizeof *out);
    const ds_analysis_t *a = in->analysis;
    if (!ds_analysis_configured(a)) {
        out->result = DS_ROLLOUT_VERDICT_NONE;
        snprintf(out->summary, sizeof out->summary, "none: no analysis configured");
        return;
    }
    static const ds_telemetry_stats_t s_nothing;
    const ds_telemetry_stats_t *cn = in->canary ? in->canary : &s_nothing;
    const ds_telemetry_stats_t *bl = in->baseline;
    uint64_t need = a->min_samples;
    uint64_t requests = s_count(cn->requests);
    uint64_t latencies = s_count(cn->latency_samples);
    if (s_on(a->max_error_ratio))
        s_absolute(out, "error_ratio", cn->error_ratio, a->max_error_ratio, true, requests, need);
    if (s_on(a->max_p99_latency_ms))
        s_absolute(out, "p99_latency_ms", cn->latency_p99_ms, a->max_p99_latency_ms, true,
                   latencies, need);
    if (s_on(a->max_restarts))
        s_absolute(out, "restarts", (double)cn->restarts, a->max_restarts, true, cn->samples, need);
    if (s_on(a->min_health_ratio))
        s_absolute(out, "health_ratio", cn->health_ratio, a->min_health_ratio, false,
                   cn->health_samples, need);
    if (s_on(a->max_error_ratio_vs_baseline)) {
        uint64_t base_n = bl ? s_count(bl->requests) : 0;
        s_relative(out, "error_ratio_vs_baseline", cn->error_ratio, requests, bl,
                   bl ? bl->error_ratio : 0, base_n, a->max_error_ratio_vs_baseline,
                   DS_ANALYSIS_ERROR_RATIO_FLOOR, need);
    }
    if (s_on(a->max_latency_vs_baseline)) {
        uint64_t base_n = bl ? s_count(bl->latency_samples) : 0;
        s_relative(out, "latency_vs_baseline", cn->latency_p99_ms, latencies, bl,
                   bl ? bl->latency_p99_ms : 0, base_n, a->max_latency_vs_baseline,
                   DS_ANALYSIS_LATENCY_FLOOR_MS, need);
    }

    uint32_t fails = 0, short_of = 0;
    for (uint32_t i = 0; i < out->n_checks; i++) {
        fails += out->checks[i].result == DS_CHECK_FAIL;
        short_of += out->checks[i].result == DS_CHECK_INSUFFICIENT;
    }
    uint64_t deadline = in->bake_started_ms + in->healthy_deadline_ms;
    out->deadline_passed = in->now_ms >= deadline;
    size_t len = 0;
    if (fails) {
        out->result = DS_ROLLOUT_VERDICT_FAIL;
        len = (size_t)snprintf(out->summary, sizeof out->summary, "fail: ");
    } else if (short_of && !out->deadline_passed) {
        out->result = DS_ROLLOUT_VERDICT_INCONCLUSIVE;
        unsigned long long left_s = (deadline - in->now_ms + 999) / 1000;
        len = (size_t)snprintf(out->summary, sizeof out->summary,
                               "inconclusive, baking up to %llus more: ", left_s);
    } else if (short_of) {
        bool promote = a->on_inconclusive == DS_INCONCLUSIVE_PROMOTE;
        out->result = promote ? DS_ROLLOUT_VERDICT_PASS : DS_ROLLOUT_VERDICT_FAIL;
        len = (size_t)snprintf(out->summary, sizeof out->summary,
                               "%s: inconclusive at the healthy deadline (on_inconclusive %s): ",
                               promote ? "pass" : "fail", promote ? "promote" : "fail");
    } else {
        out->result = DS_ROLLOUT_VERDICT_PASS;
        len = (size_t)snprintf(out->summary, sizeof out->summary, "pass: ");
    }
    bool first = true, cut = false;
    s_append(out, &len, &first, &cut, DS_CHECK_FAIL);
    s_append(out, &len, &first, &cut, DS_CHECK_INSUFFICIENT);
    s_append(out, &len, &first, &cut, DS_CHECK_PASS);
}

ds_rollout_verdict_t ds_analysis_rollout_verdict(const ds_analysis_verdict_t *v)
{
    ds_rollout_verdict_t r = {.result = v->result, .reason = v->summary};
    return r;
}
