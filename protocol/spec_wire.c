/*  protocol/spec_wire.c - the wire description of the release spec. */
#include "protocol/spec.h"

#include "protocol/limits.h"

#include <stddef.h>

static const ds_field_t s_health_fields[] = {
    DS_F_U8(ds_health_spec_t, kind, DS_HEALTH_EXEC),
    DS_F_STR(ds_health_spec_t, path, DS_MAX_PATH),
    DS_F_STR(ds_health_spec_t, command, DS_MAX_CMD),
    DS_F_U32(ds_health_spec_t, interval_ms, 0),
    DS_F_U32(ds_health_spec_t, timeout_ms, 0),
    DS_F_U32(ds_health_spec_t, healthy_threshold, 0),
    DS_F_U32(ds_health_spec_t, unhealthy_threshold, 0),
    DS_F_U32(ds_health_spec_t, start_grace_ms, 0),
};
static const ds_desc_t s_health_desc = DS_DESC(ds_health_spec_t, "health", s_health_fields);

static const ds_field_t s_test_fields[] = {
    DS_F_STR(ds_test_spec_t, name, DS_MAX_NAME),
    DS_F_STR(ds_test_spec_t, command, DS_MAX_CMD),
    DS_F_U32(ds_test_spec_t, timeout_ms, 0),
};
static const ds_desc_t s_test_desc = DS_DESC(ds_test_spec_t, "test", s_test_fields);

static const ds_field_t s_strategy_fields[] = {
    DS_F_U32(ds_strategy_t, canary, 0),
    DS_F_BOOL(ds_strategy_t, canary_percent),
    DS_F_U32(ds_strategy_t, max_parallel, 0),
    DS_F_BOOL(ds_strategy_t, max_parallel_percent),
    DS_F_U64(ds_strategy_t, bake_ms),
    DS_F_U64(ds_strategy_t, healthy_deadline_ms),
    DS_F_U64(ds_strategy_t, progress_deadline_ms),
    DS_F_BOOL(ds_strategy_t, auto_promote),
    DS_F_BOOL(ds_strategy_t, auto_revert),
};
const ds_desc_t ds_strategy_desc = DS_DESC(ds_strategy_t, "strategy", s_strategy_fields);

static const ds_field_t s_analysis_fields[] = {
    DS_F_F64(ds_analysis_t, max_error_ratio),
    DS_F_F64(ds_analysis_t, max_p99_latency_ms),
    DS_F_F64(ds_analysis_t, max_restarts),
    DS_F_F64(ds_analysis_t, min_health_ratio),
    DS_F_F64(ds_analysis_t, max_error_ratio_vs_baseline),
    DS_F_F64(ds_analysis_t, max_latency_vs_baseline),
    DS_F_U32(ds_analysis_t, min_samples, 0),
    DS_F_U8(ds_analysis_t, on_inconclusive, DS_INCONCLUSIVE_PROMOTE),
};
static const ds_desc_t s_analysis_desc = DS_DESC(ds_analysis_t, "analysis", s_analysis_fields);

static const ds_field_t s_metrics_fields[] = {
    DS_F_STR(ds_metrics_spec_t, path, DS_MAX_PATH),
    DS_F_U32(ds_metrics_spec_t, interval_ms, 0),
    DS_F_STR(ds_metrics_spec_t, requests_metric, DS_MAX_LABEL),
    DS_F_STR(ds_metrics_spec_t, errors_metric, DS_MAX_LABEL),
    DS_F_STR(ds_metrics_spec_t, latency_metric, DS_MAX_LABEL),
};
static const ds_desc_t s_metrics_desc = DS_DESC(ds_metrics_spec_t, "metrics", s_metrics_fields);

static const ds_field_t s_spec_fields[] = {
    DS_F_STR(ds_spec_t, artifact, DS_MAX_PATH),
    DS_F_STR(ds_spec_t, sha256, DS_MAX_SHA256),
    DS_F_STR(ds_spec_t, command, DS_MAX_CMD),
    DS_F_STRS(ds_spec_t, args, n_args, DS_MAX_ARGS),
    DS_F_KVS(ds_spec_t, env, n_env, DS_MAX_ENV),
    DS_F_STR(ds_spec_t, workdir, DS_MAX_PATH),
    DS_F_KVS(ds_spec_t, selector, n_selector, DS_MAX_LABELS),
    DS_F_STRUCT(ds_spec_t, health, s_health_desc),
    DS_F_ARRAY(ds_spec_t, tests, n_tests, s_test_desc, DS_MAX_TESTS),
    DS_F_STRUCT(ds_spec_t, strategy, ds_strategy_desc),
    DS_F_STRUCT(ds_spec_t, analysis, s_analysis_desc),
    DS_F_STRUCT(ds_spec_t, metrics, s_metrics_desc),
    DS_F_U32(ds_spec_t, stop_grace_ms, 0),
};
const ds_desc_t ds_spec_desc = DS_DESC(ds_spec_t, "spec", s_spec_fields);
