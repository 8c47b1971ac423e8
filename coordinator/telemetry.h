/*  coordinator/telemetry.h - the leader's telemetry aggregator (pure).

    Fed with every instance status of every heartbeat, it keeps rolling
    windows (by default 1 min and 5 min) of three kinds of series:

        worker              everything one worker reports
        instance            one (worker, service, version)
        service version     one (service, version) over every worker

    and answers, per series and window: samples, health-check pass ratio,
    probe latency p50/p90/p99, restarts, CPU and RSS averages, request
    rate, error ratio and application latency p50/p90/p99
    (docs/telemetry.md has every rule).

    Windows are rings of fixed time slots (window / slots wide, 6 slots by
    default): a window's numbers cover its slots that are still current,
    i.e. between (slots - 1) / slots of the window and the whole window.
    Latencies go into a mergeable log-scale histogram of 128 buckets, four
    per power of two from 1 us to about 50 min; a quantile is interpolated
    inside its bucket, so it is within 19 % (2^(1/4) - 1) of the exact
    quantile of the values put in. Application latencies arrive as the
    service's own cumulative buckets, which are spread linearly inside
    each of those buckets first (as Prometheus' histogram_quantile does):
    their quantiles are as good as the service's bucket bounds, plus that
    19 %.

    Counters (requests, errors, latency buckets, restarts) arrive as
    cumulative values and become deltas between consecutive statuses of
    an instance; a value lower than the last one means the process (or
    the worker) restarted and counts from zero. The first status of an
    instance only sets the baseline.

    Memory is bounded: at most max_series series (least recently updated
    evicted first), a series not updated for longer than the longest
    window is dropped, and every byte is counted (ds_telemetry_usage).

    No clock and no I/O: time is an argument, and must not go backwards
    (an earlier time is taken as the latest one seen). Not thread-safe.
*/
#ifndef DS_COORDINATOR_TELEMETRY_H
#define DS_COORDINATOR_TELEMETRY_H

#include "protocol/messages.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_TELEMETRY_MAX_WINDOWS    4u
#define DS_TELEMETRY_MAX_SLOTS      60u      /* slots of one window */
#define DS_TELEMETRY_MAX_SERIES     1000000u /* highest max_series accepted */
#define DS_TELEMETRY_MIN_SERIES     16u      /* lowest max_series accepted */
#define DS_TELEMETRY_DEFAULT_SERIES 10000u
#define DS_TELEMETRY_DEFAULT_SLOTS  6u
#define DS_TELEMETRY_HIST_BUCKETS   128u    /* of the latency histogram */
#define DS_TELEMETRY_QUANTILE_ERROR 0.18921 /* 2^(1/4) - 1, rounded up: relative error bound */

typedef struct ds_telemetry ds_telemetry_t;

typedef struct {
    uint32_t max_series;                          /* 0 = DS_TELEMETRY_DEFAULT_SERIES */
    uint32_t n_windows;                           /* 0 = the defaults: 60 s and 300 s */
    uint64_t window_ms[DS_TELEMETRY_MAX_WINDOWS]; /* strictly increasing */
    uint32_t slots;                               /* per window; 0 = DS_TELEMETRY_DEFAULT_SLOTS */
} ds_telemetry_config_t;

typedef enum {
    DS_TELEMETRY_WORKER = 1,
    DS_TELEMETRY_INSTANCE = 2,
    DS_TELEMETRY_SERVICE = 3 /* one (service, version) */
} ds_telemetry_kind_t;

/*  Which series: worker for worker and instance, service and version for
    instance and service. Strings are borrowed. */
typedef struct {
    uint8_t kind; /* ds_telemetry_kind_t */
    const char *worker;
    const char *service;
    uint64_t version;
} ds_telemetry_key_t;

/*  The numbers of one series over one window. Ratios and averages are 0
    when their sample count is 0: look at the count first. */
typedef struct {
    uint64_t window_ms; /* the window asked for */
    uint64_t span_ms;   /* time the numbers cover: from the first slot (or since) to now */
    uint32_t instances; /* instance series behind it updated in the window (1 for an instance) */
    uint64_t samples;   /* instance statuses */
    uint64_t health_samples; /* statuses with health passing or failing */
    double health_ratio;     /* passing / health_samples */
    uint64_t probe_samples;  /* statuses with a probe latency */
    double probe_p50_ms;
    double probe_p90_ms;
    double probe_p99_ms;
    uint64_t restarts; /* restarts that happened in the window */
    double cpu_pct;    /* average; for a worker, of the machine */
    double rss_kb;     /* average; for a worker, memory used by the machine */
    double requests;   /* requests counted in the window */
    double errors;
    double request_rate;    /* requests per second over span_ms */
    double error_ratio;     /* errors / requests */
    double latency_samples; /* application latencies observed in the window */
    double latency_p50_ms;
    double latency_p90_ms;
    double latency_p99_ms;
} ds_telemetry_stats_t;

/*  Memory and limits, for /metrics and logs. */
typedef struct {
    uint32_t series;
    uint32_t max_series;
    uint64_t evicted; /* series dropped because max_series was reached */
    uint64_t expired; /* series dropped after a longest window without updates */
    uint64_t bytes;   /* allocated by the aggregator, all included */
} ds_telemetry_usage_t;

/*  Called for each series by ds_telemetry_each(); returns 0 to go on,
    anything else to stop (ds_telemetry_each returns it). `key` and
    `stats` are valid during the call only. */
typedef int (*ds_telemetry_visit_fn)(void *ctx, const ds_telemetry_key_t *key,
                                     const ds_telemetry_stats_t *stats);

/*  Checks a configuration after filling its defaults in place: windows
    strictly increasing, each at least `slots` ms and at most
    DS_MAX_DURATION_MS, slots 1 to DS_TELEMETRY_MAX_SLOTS, max_series
    DS_TELEMETRY_MIN_SERIES to DS_TELEMETRY_MAX_SERIES. Returns 0, or
    DS_EINVAL with `err` (errlen bytes, may be NULL) naming the value. */
int ds_telemetry_config_check(ds_telemetry_config_t *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*  Creates an aggregator (cfg NULL = every default). Returns it, or NULL
    when cfg fails ds_telemetry_config_check() or memory runs out. */
ds_telemetry_t *ds_telemetry_new(const ds_telemetry_config_t *cfg);

/*  Frees the aggregator and sets *self_p to NULL. Accepts NULL. */
void ds_telemetry_destroy(ds_telemetry_t **self_p);

/*  The configuration in use, defaults filled in. */
const ds_telemetry_config_t *ds_telemetry_config(const ds_telemetry_t *self);

/*  Records one instance status reported by `worker` at now_ms: updates
    the worker, the (worker, service, version) and the (service, version)
    series, creating them (and evicting the least recently updated series
    when full), then drops expired series. The status is copied as far as
    needed. Returns 0; DS_EINVAL when a name is empty or longer than
    DS_MAX_NAME, or DS_ENOMEM (nothing changed). */
int ds_telemetry_observe(ds_telemetry_t *self, const char *worker, const ds_instance_status_t *st,
                         uint64_t now_ms) __attribute__((warn_unused_result));

/*  Records a whole heartbeat: the machine's CPU and memory in the worker
    series, then each instance as ds_telemetry_observe(). Returns 0 or
    the first error (the instances before it are recorded). */
int ds_telemetry_heartbeat(ds_telemetry_t *self, const ds_heartbeat_t *hb, uint64_t now_ms)
    __attribute__((warn_unused_result));

/*  Drops series not updated for longer than the longest window. The
    observe functions do it too; call it on a tick when no heartbeats come. */
void ds_telemetry_expire(ds_telemetry_t *self, uint64_t now_ms);

/*  Forgets every series of `worker` (a worker removed from the cluster). */
void ds_telemetry_forget_worker(ds_telemetry_t *self, const char *worker);

/*  The index of the shortest window of at least `span_ms`, or of the
    longest window when none is that long. */
uint32_t ds_telemetry_window_for(const ds_telemetry_t *self, uint64_t span_ms);

/*  Fills `out` with the numbers of series `key` over window `window`
    (an index into the configuration) at now_ms, counting only slots that
    end after since_ms (0 = the whole window; the canary's bake start, to
    leave out what it did before). Returns 0, DS_ENOTFOUND when there is
    no such series (out zeroed), or DS_EINVAL for a bad key or window. */
int ds_telemetry_query(const ds_telemetry_t *self, const ds_telemetry_key_t *key, uint32_t window,
                       uint64_t since_ms, uint64_t now_ms, ds_telemetry_stats_t *out)
    __attribute__((warn_unused_result));

/*  Calls fn for every series of `kind` (0 = every kind), least recently
    updated first, with its numbers over `window` at now_ms. Returns 0,
    what fn returned to stop, or DS_EINVAL for a bad window. */
int ds_telemetry_each(const ds_telemetry_t *self, int kind, uint32_t window, uint64_t now_ms,
                      ds_telemetry_visit_fn fn, void *ctx);

/*  Fills `out` with the memory and eviction counters. */
void ds_telemetry_usage(const ds_telemetry_t *self, ds_telemetry_usage_t *out);

/*  The histogram behind the quantiles, exposed for tests and docs: the
    bucket of a latency of `us` microseconds, and the bounds of bucket i
    ([lo, hi) in microseconds; hi is INFINITY for the last). */
uint32_t ds_telemetry_hist_bucket(double us);
void ds_telemetry_hist_bounds(uint32_t i, double *lo, double *hi);

#endif
