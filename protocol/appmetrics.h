/*  protocol/appmetrics.h - how a worker forwards an instance's application
    metrics in ds_instance_status_t.metrics (pure).

    The worker scrapes the instance (protocol/promtext.h) for the metrics
    the spec names (`metrics.requests_metric`, `errors_metric`,
    `latency_metric`) and sends them under these fixed names, so the
    coordinator needs no knowledge of the service's own naming:

        requests             cumulative counter of requests (sum over labels)
        errors               cumulative counter of failed requests
        latency_le:<bound>   cumulative count of requests with latency <= bound
                             seconds (<bound> as "%.9g", or "+Inf")
        latency_count        cumulative count of observed latencies
        latency_sum          cumulative sum of observed latencies, seconds

    Values are sent as scraped (cumulative, as the process counts since it
    started); the coordinator turns them into deltas and rates and treats a
    decrease as a restart of the process (coordinator/telemetry.h). At most
    DS_MAX_METRICS entries fit in one status: a histogram with more buckets
    is thinned (docs/telemetry.md, "Metric names").
*/
#ifndef DS_PROTOCOL_APPMETRICS_H
#define DS_PROTOCOL_APPMETRICS_H

#include "protocol/limits.h"
#include "protocol/messages.h"
#include "protocol/promtext.h"

#include <stdbool.h>
#include <stdint.h>

#define DS_APPMETRIC_REQUESTS      "requests"
#define DS_APPMETRIC_ERRORS        "errors"
#define DS_APPMETRIC_LATENCY_COUNT "latency_count"
#define DS_APPMETRIC_LATENCY_SUM   "latency_sum"
#define DS_APPMETRIC_LATENCY_LE    "latency_le:" /* followed by the bound */

#define DS_APPMETRIC_NAME_CAP  32u                /* bytes of one name written here, with NUL */
#define DS_APPMETRIC_MAX_VALUE 9007199254740992.0 /* 2^53: larger values are left out */

typedef enum {
    DS_APPMETRIC_UNKNOWN = 0,
    DS_APPMETRIC_KIND_REQUESTS = 1,
    DS_APPMETRIC_KIND_ERRORS = 2,
    DS_APPMETRIC_KIND_LATENCY_COUNT = 3,
    DS_APPMETRIC_KIND_LATENCY_SUM = 4,
    DS_APPMETRIC_KIND_LATENCY_LE = 5
} ds_appmetric_kind_t;

/*  One cumulative latency bucket. */
typedef struct {
    double le_s; /* upper bound in seconds; INFINITY for +Inf */
    double count;
} ds_appmetric_bucket_t;

/*  The application metrics of one status, decoded. */
typedef struct {
    bool has_requests;
    bool has_errors;
    bool has_count;
    bool has_sum;
    double requests;
    double errors;
    double latency_count;
    double latency_sum;
    uint32_t n_buckets;                            /* 0 = no latency histogram */
    ds_appmetric_bucket_t buckets[DS_MAX_METRICS]; /* sorted by le_s, cumulative */
} ds_appmetrics_sample_t;

/*  The metrics a worker sends for one instance. `metrics[i].name` points
    into `names` of the same object: build it in place and do not copy it
    by value (copy the values instead). */
typedef struct {
    uint32_t n;
    ds_metric_t metrics[DS_MAX_METRICS];
    char names[DS_MAX_METRICS][DS_APPMETRIC_NAME_CAP];
} ds_appmetrics_t;

/*  Says which metric `name` is; for a bucket, sets *le_s (may be NULL) to
    its bound. A bucket whose bound is not a non-negative number or +Inf
    is DS_APPMETRIC_UNKNOWN. Never fails; NULL is unknown. */
ds_appmetric_kind_t ds_appmetrics_kind(const char *name, double *le_s);

/*  Writes the name of the bucket with bound `le_s` seconds (INFINITY for
    +Inf) into buf (len bytes, at least DS_APPMETRIC_NAME_CAP). */
void ds_appmetrics_le_name(double le_s, char *buf, size_t len);

/*  Builds what a worker sends from one successful scrape: `requests`,
    `errors` (counters) and `latency` (histogram in seconds) are the
    parser's results, each NULL when the spec names no such metric.
    A counter absent from the exposition is left out, except `errors`
    while `requests` is present: counters with labels appear only once
    they count something, so no errors yet is sent as 0. Values that are
    negative, not finite or above DS_APPMETRIC_MAX_VALUE are left out. A
    histogram with more buckets than fit is thinned to evenly spaced ones,
    always keeping the last. Never fails. */
void ds_appmetrics_build(ds_appmetrics_t *out, const ds_promtext_counter_t *requests,
                         const ds_promtext_counter_t *errors,
                         const ds_promtext_histogram_t *latency);

/*  Decodes the `n` metrics of a status (untrusted: from a worker) into
    `out`. Unknown names, values that are negative, not finite or above
    DS_APPMETRIC_MAX_VALUE, and repeated names (the first counts) are
    ignored; buckets are sorted by bound, and a histogram whose counts
    decrease as the bound grows is dropped whole (n_buckets 0). Returns
    how many entries were ignored. */
uint32_t ds_appmetrics_read(const ds_metric_t *metrics, uint32_t n, ds_appmetrics_sample_t *out);

#endif
