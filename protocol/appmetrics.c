/*  protocol/appmetrics.c - application metric names in a status (pure;
    see appmetrics.h). */
#include "protocol/appmetrics.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/*  Counts beyond 2^53 are not exact in a double and no real counter gets
    there: such values are garbage, and refusing them keeps every sum the
    coordinator makes finite. */
static bool s_usable(double v)
{
    return isfinite(v) && v >= 0 && v <= DS_APPMETRIC_MAX_VALUE;
}

ds_appmetric_kind_t ds_appmetrics_kind(const char *name, double *le_s)
{
    if (!name)
        return DS_APPMETRIC_UNKNOWN;
    if (strcmp(name, DS_APPMETRIC_REQUESTS) == 0)
        return DS_APPMETRIC_KIND_REQUESTS;
    if (strcmp(name, DS_APPMETRIC_ERRORS) == 0)
        return DS_APPMETRIC_KIND_ERRORS;
    if (strcmp(name, DS_APPMETRIC_LATENCY_COUNT) == 0)
        return DS_APPMETRIC_KIND_LATENCY_COUNT;
    if (strcmp(name, DS_APPMETRIC_LATENCY_SUM) == 0)
        return DS_APPMETRIC_KIND_LATENCY_SUM;
    size_t plen = sizeof DS_APPMETRIC_LATENCY_LE - 1;
    if (strncmp(name, DS_APPMETRIC_LATENCY_LE, plen) != 0)
        return DS_APPMETRIC_UNKNOWN;
    const char *bound = name + plen;
    double v = 0;
    if (ds_promtext_number(bound, strlen(bound), &v) != 0 || isnan(v) || v < 0)
        return DS_APPMETRIC_UNKNOWN;
    if (le_s)
        *le_s = v;
    return DS_APPMETRIC_KIND_LATENCY_LE;
}

void ds_appmetrics_le_name(double le_s, char *buf, size_t len)
{
    if (isinf(le_s))
        snprintf(buf, len, "%s+Inf", DS_APPMETRIC_LATENCY_LE);
    else
        snprintf(buf, len, "%s%.9g", DS_APPMETRIC_LATENCY_LE, le_s);
}

static void s_put(ds_appmetrics_t *out, const char *name, double v)
{
    if (out->n == DS_MAX_METRICS || !s_usable(v))
        return;
    snprintf(out->names[out->n], DS_APPMETRIC_NAME_CAP, "%s", name);
    out->metrics[out->n].name = out->names[out->n];
    out->metrics[out->n].value = v;
    out->n++;
}

void ds_appmetrics_build(ds_appmetrics_t *out, const ds_promtext_counter_t *requests,
                         const ds_promtext_counter_t *errors,
                         const ds_promtext_histogram_t *latency)
{
    memset(out, 0, sizeof *out);
    bool have_requests = requests && requests->series > 0 && s_usable(requests->value);
    if (have_requests)
        s_put(out, DS_APPMETRIC_REQUESTS, requests->value);
    if (errors && errors->series > 0)
        s_put(out, DS_APPMETRIC_ERRORS, errors->value);
    else if (errors && have_requests)
        s_put(out, DS_APPMETRIC_ERRORS, 0);
    if (!latency || latency->series == 0)
        return;
    if (latency->has_count)
        s_put(out, DS_APPMETRIC_LATENCY_COUNT, latency->count);
    if (latency->has_sum)
        s_put(out, DS_APPMETRIC_LATENCY_SUM, latency->sum);
    uint32_t room = DS_MAX_METRICS - out->n, n = latency->n_buckets;
    uint32_t keep = n < room ? n : room;
    uint32_t last = UINT32_MAX;
    for (uint32_t k = 0; k < keep; k++) {
        /* Evenly spaced, the last bucket always kept; strictly increasing
           because keep <= n. */
        uint32_t i = (uint32_t)(((uint64_t)(k + 1) * n + keep - 1) / keep) - 1;
        if (i == last)
            continue;
        last = i;
        char name[DS_APPMETRIC_NAME_CAP];
        ds_appmetrics_le_name(latency->buckets[i].le, name, sizeof name);
        s_put(out, name, latency->buckets[i].count);
    }
}

uint32_t ds_appmetrics_read(const ds_metric_t *metrics, uint32_t n, ds_appmetrics_sample_t *out)
{
    memset(out, 0, sizeof *out);
    if (n > DS_MAX_METRICS)
        n = DS_MAX_METRICS;
    uint32_t ignored = 0;
    for (uint32_t i = 0; metrics && i < n; i++) {
        double le = 0, v = metrics[i].value;
        ds_appmetric_kind_t kind = ds_appmetrics_kind(metrics[i].name, &le);
        bool *has = NULL;
        double *slot = NULL;
        switch (kind) {
        case DS_APPMETRIC_KIND_REQUESTS:
            has = &out->has_requests, slot = &out->requests;
            break;
        case DS_APPMETRIC_KIND_ERRORS:
            has = &out->has_errors, slot = &out->errors;
            break;
        case DS_APPMETRIC_KIND_LATENCY_COUNT:
            has = &out->has_count, slot = &out->latency_count;
            break;
        case DS_APPMETRIC_KIND_LATENCY_SUM:
            has = &out->has_sum, slot = &out->latency_sum;
            break;
        default:
            break;
        }
        if (kind == DS_APPMETRIC_UNKNOWN || !s_usable(v)) {
            ignored++;
            continue;
        }
        if (has) {
            if (*has) {
                ignored++;
                continue;
            }
            *has = true;
            *slot = v;
            continue;
        }
        /* A bucket: insert sorted by bound, refusing a repeated one. */
        uint32_t j = out->n_buckets;
        bool repeated = false;
        for (uint32_t k = 0; k < out->n_buckets; k++)
            repeated = repeated || out->buckets[k].le_s == le;
        if (repeated) {
            ignored++;
            continue;
        }
        for (; j > 0 && out->buckets[j - 1].le_s > le; j--)
            out->buckets[j] = out->buckets[j - 1];
        out->buckets[j].le_s = le;
        out->buckets[j].count = v;
        out->n_buckets++;
    }
    for (uint32_t k = 1; k < out->n_buckets; k++) {
        if (out->buckets[k].count < out->buckets[k - 1].count) {
            ignored += out->n_buckets;
            out->n_buckets = 0;
            break;
        }
    }
    return ignored;
}
