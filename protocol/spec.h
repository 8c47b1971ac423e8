/*  protocol/spec.h - the release spec (DESIGN.md, "Release model").

    A spec says what a release runs, where, how its health is judged, which
    tests gate it and how it is rolled out. It travels inside deploy
    requests and assignments and is stored, immutable, with each release.

    Lifecycle: start from ds_spec_init(), fill a ds_spec_t (from flags or a
    parsed file; strings may be NULL = unset, numbers 0 = unset), call
    ds_spec_apply_defaults() once, then ds_spec_validate(). Only a
    validated spec is ever sent. Every default is listed in docs/spec.md.

    Threshold fields of type double use DS_SPEC_OFF (any negative value) for
    "check disabled".
*/
#ifndef DS_PROTOCOL_SPEC_H
#define DS_PROTOCOL_SPEC_H

#include "protocol/codec.h"
#include "protocol/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_SPEC_OFF (-1.0)

typedef enum {
    DS_HEALTH_NONE = 0, /* running counts as healthy */
    DS_HEALTH_HTTP = 1, /* GET http://127.0.0.1:$PORT<path>, expects 2xx */
    DS_HEALTH_TCP = 2,  /* connect to 127.0.0.1:$PORT */
    DS_HEALTH_EXEC = 3  /* run command, expects exit 0 */
} ds_health_kind_t;

typedef enum {
    DS_INCONCLUSIVE_FAIL = 0,   /* too few samples by the deadline fails the canary */
    DS_INCONCLUSIVE_PROMOTE = 1 /* ... or lets it pass on health alone */
} ds_inconclusive_t;

typedef struct {
    uint8_t kind;  /* ds_health_kind_t */
    char *path;    /* http: request path, starts with '/' */
    char *command; /* exec: command line */
    uint32_t interval_ms;
    uint32_t timeout_ms;
    uint32_t healthy_threshold;   /* consecutive passes to become healthy */
    uint32_t unhealthy_threshold; /* consecutive failures to become unhealthy */
    uint32_t start_grace_ms;      /* failures ignored this long after start */
} ds_health_spec_t;

typedef struct {
    char *name;
    char *command; /* run with PORT, DS_RELEASE_DIR, DS_VERSION in its environment */
    uint32_t timeout_ms;
} ds_test_spec_t;

typedef struct {
    uint32_t canary; /* workers, or percent when canary_percent */
    bool canary_percent;
    uint32_t max_parallel; /* workers per wave, or percent */
    bool max_parallel_percent;
    uint64_t bake_ms; /* min healthy time of the canary */
    uint64_t healthy_deadline_ms;
    uint64_t progress_deadline_ms;
    bool auto_promote;
    bool auto_revert;
} ds_strategy_t;

typedef struct {
    double max_error_ratio; /* 0..1 */
    double max_p99_latency_ms;
    double max_restarts;
    double min_health_ratio;            /* 0..1 */
    double max_error_ratio_vs_baseline; /* ratio, e.g. 1.2 */
    double max_latency_vs_baseline;     /* ratio, e.g. 1.2 */
    uint32_t min_samples;               /* per check, before a verdict */
    uint8_t on_inconclusive;            /* ds_inconclusive_t */
} ds_analysis_t;

typedef struct {
    char *path; /* Prometheus text endpoint on the instance; "" = none */
    uint32_t interval_ms;
    char *requests_metric; /* counter of requests */
    char *errors_metric;   /* counter of failed requests */
    char *latency_metric;  /* histogram of request latency, seconds */
} ds_metrics_spec_t;

typedef struct {
    char *artifact; /* local directory, .tar.gz, or http(s) URL */
    char *sha256;   /* hex digest of the artifact file; "" = unchecked */
    char *command;  /* command line; ${PORT} is substituted */
    uint32_t n_args;
    char **args;
    uint32_t n_env;
    ds_kv_t *env;
    char *workdir; /* relative to the release directory; "" = its root */
    uint32_t n_selector;
    ds_kv_t *selector; /* worker labels that must all match */
    ds_health_spec_t health;
    uint32_t n_tests;
    ds_test_spec_t *tests;
    ds_strategy_t strategy;
    ds_analysis_t analysis;
    ds_metrics_spec_t metrics;
    uint32_t stop_grace_ms; /* SIGTERM, then SIGKILL after this */
} ds_spec_t;

/*  A value quoted for an error message: at most 40 bytes of it (cut on a
    UTF-8 boundary, then "..."), between double quotes, with control bytes
    and double quotes shown as '?'. */
typedef struct {
    char s[48];
} ds_spec_quote_t;

/*  Quotes len bytes of s (see ds_spec_quote_t). Never fails. */
ds_spec_quote_t ds_spec_quote(const char *s, size_t len);

/*  The wire descriptions of ds_spec_t and of its strategy (the rollout
    controller stores the strategy with each deployment). */
extern const ds_desc_t ds_spec_desc;
extern const ds_desc_t ds_strategy_desc;

/*  Zeroes `spec` and sets the defaults a zero cannot express:
    strategy.auto_promote and strategy.auto_revert true, every analysis
    threshold DS_SPEC_OFF. Callers that build a spec (flags, file parser)
    start here, then set what the user gave. */
void ds_spec_init(ds_spec_t *spec);

/*  Fills every unset field of `spec` with its default (the only place
    defaults live). Strings that are NULL become "" (static, not owned).
    Never fails. */
void ds_spec_apply_defaults(ds_spec_t *spec);

/*  Checks every field: lengths, counts, ranges, formats and the
    relations between fields. Returns 0, or DS_EINVAL with `err` (of
    `errlen` bytes) set to one sentence that names the field, the value
    and what is allowed, e.g.
    "health.interval_ms: 0 is out of range (100 ms to 1 h)". */
int ds_spec_validate(const ds_spec_t *spec, char *err, size_t errlen);

#endif
