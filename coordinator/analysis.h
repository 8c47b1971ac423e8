/*  coordinator/analysis.h - canary analysis (pure).

    During bake, the leader evaluates the spec's `analysis` section on the
    canary version's telemetry window, absolutely and against the baseline
    version (the one the other workers run), and hands the verdict to the
    rollout controller (coordinator/rollout.h, ds_rollout_verdict_t).

    Checks, in this order, each only when its threshold is on (>= 0):

        error_ratio              canary errors / requests <= max_error_ratio
        p99_latency_ms           canary app latency p99 <= max_p99_latency_ms
        restarts                 canary restarts <= max_restarts
        health_ratio             canary health pass ratio >= min_health_ratio
        error_ratio_vs_baseline  canary error ratio <= baseline's x factor
                                 (or within DS_ANALYSIS_ERROR_RATIO_FLOOR of it)
        latency_vs_baseline      canary p99 <= baseline's p99 x factor
                                 (or within DS_ANALYSIS_LATENCY_FLOOR_MS of it)

    A check gives a verdict only with at least `min_samples` samples (of
    the canary, and of the baseline for a relative check): requests for
    error ratios, latency observations for latencies, statuses for
    restarts, health-checked statuses for the health ratio. Otherwise it
    is insufficient; a relative check without a baseline is too.

    The verdict: NONE when no check is on; FAIL when a check fails; else
    INCONCLUSIVE while a check is insufficient and the deadline (bake start
    + healthy_deadline) is ahead, which keeps the canary baking; at or
    after the deadline, FAIL ("inconclusive: ...") or PASS per
    `on_inconclusive`; else PASS.

    Nothing is allocated; the verdict holds its own texts.
*/
#ifndef DS_COORDINATOR_ANALYSIS_H
#define DS_COORDINATOR_ANALYSIS_H

#include "coordinator/rollout.h"
#include "coordinator/telemetry.h"
#include "protocol/limits.h"
#include "protocol/spec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_ANALYSIS_ERROR_RATIO_FLOOR 0.001 /* relative error checks ignore less than this */
#define DS_ANALYSIS_LATENCY_FLOOR_MS  1.0   /* relative latency checks ignore less than this */
#define DS_ANALYSIS_LINE_MAX          160u  /* bytes of one check's line, with its NUL */
#define DS_ANALYSIS_SUMMARY_MAX       1024u /* bytes of the summary, with its NUL */

typedef enum {
    DS_CHECK_PASS = 0,
    DS_CHECK_FAIL = 1,
    DS_CHECK_INSUFFICIENT = 2 /* too few samples, or no baseline */
} ds_check_result_t;

/*  One row of the verdict. */
typedef struct {
    const char *name;                /* static: "error_ratio", "p99_latency_ms", ... */
    uint8_t result;                  /* ds_check_result_t */
    double value;                    /* the canary's value */
    double threshold;                /* the limit it was held to (relative: factor x baseline) */
    double baseline;                 /* relative checks: the baseline's value; else 0 */
    double factor;                   /* relative checks: the spec's factor; else 0 */
    uint64_t samples;                /* the canary's samples (relative: the fewer of the two) */
    uint64_t needed;                 /* min_samples */
    bool no_baseline;                /* relative check without a baseline */
    char line[DS_ANALYSIS_LINE_MAX]; /* e.g. "error_ratio 0.091 > max 0.05 (fail)" */
} ds_analysis_check_t;

typedef struct {
    uint8_t result; /* ds_rollout_verdict_result_t */
    bool deadline_passed;
    uint32_t n_checks;
    ds_analysis_check_t checks[DS_MAX_CHECKS];
    /* One line for history, status and the rollout reason: the outcome,
       then the failing checks, the insufficient ones, the passing ones,
       e.g. "fail: error_ratio 0.091 > max 0.05 (fail); p99_latency_ms 42
       <= max 250 (pass)". Cut at a check boundary with "; ..." when long. */
    char summary[DS_ANALYSIS_SUMMARY_MAX];
} ds_analysis_verdict_t;

typedef struct {
    const ds_analysis_t *analysis;        /* the spec's section, defaults applied */
    const ds_telemetry_stats_t *canary;   /* the canary version's window */
    const ds_telemetry_stats_t *baseline; /* the baseline version's window; NULL = none */
    uint64_t bake_started_ms;             /* when the canary started baking */
    uint64_t healthy_deadline_ms;         /* strategy.healthy_deadline_ms, from bake start */
    uint64_t now_ms;
} ds_analysis_input_t;

/*  True when at least one check of `a` is on. */
bool ds_analysis_configured(const ds_analysis_t *a);

/*  Evaluates the checks (see above) into `out`. Never fails: a NULL
    analysis or canary counts as nothing configured or nothing measured. */
void ds_analysis_evaluate(const ds_analysis_input_t *in, ds_analysis_verdict_t *out);

/*  The verdict as the rollout controller takes it; the reason borrows
    out->summary (the controller keeps DS_ROLLOUT_REASON_MAX - 1 bytes). */
ds_rollout_verdict_t ds_analysis_rollout_verdict(const ds_analysis_verdict_t *v);

/*  The stable name of a check result: "pass", "fail", "insufficient". */
const char *ds_analysis_check_result_name(int result);

#endif
