/*  tests/unit/test_spec.c - release spec defaults and validation: defaults
    fill every unset field, a full spec passes, every rule refuses its bad
    value with DS_EINVAL and a message naming the field, NULL strings and
    inconsistent counts never crash, and a valid spec survives the codec. */
#include "protocol/spec.h"

#include "protocol/arena.h"
#include "protocol/buf.h"
#include "protocol/codec.h"
#include "protocol/error.h"
#include "protocol/limits.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SHA256_OF_TEST "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

/*  A full, valid spec with every list in place, plus scratch room for
    values that must be long. Each test mutates one thing. */
typedef struct {
    ds_spec_t spec;
    char *args[2];
    ds_kv_t env[3];
    ds_kv_t selector[2];
    ds_test_spec_t tests[2];
    char err[512];
    char big[DS_MAX_CMD + 2];
} s_fix_t;

static void s_fill_valid(s_fix_t *f)
{
    ds_spec_t *s = &f->spec;
    ds_spec_init(s);
    s->artifact = "https://artifacts.example.com/churn/v3.tar.gz";
    s->sha256 = SHA256_OF_TEST;
    s->command = "bin/serve --port ${PORT}";
    f->args[0] = "--model";
    f->args[1] = "model.pkl";
    s->n_args = 2;
    s->args = f->args;
    f->env[0] = (ds_kv_t){"MODEL_DIR", "/data/models"};
    f->env[1] = (ds_kv_t){"LOG_LEVEL", "info"};
    f->env[2] = (ds_kv_t){"_THREADS2", "4"};
    s->n_env = 3;
    s->env = f->env;
    s->workdir = "app/current";
    f->selector[0] = (ds_kv_t){"zone", "eu-west-1a"};
    f->selector[1] = (ds_kv_t){"example.com/gpu", "true"};
    s->n_selector = 2;
    s->selector = f->selector;
    s->health.kind = DS_HEALTH_HTTP;
    f->tests[0] = (ds_test_spec_t){"smoke", "curl -fsS http://127.0.0.1:${PORT}/predict", 0};
    f->tests[1] = (ds_test_spec_t){"golden-set_2", "python -m tests.golden", 120000};
    s->n_tests = 2;
    s->tests = f->tests;
    s->strategy.canary = 10;
    s->strategy.canary_percent = true;
    s->analysis.max_error_ratio = 0.01;
    s->analysis.max_p99_latency_ms = 250;
    s->analysis.max_restarts = 2;
    s->analysis.min_health_ratio = 0.95;
    s->analysis.max_error_ratio_vs_baseline = 1.5;
    s->analysis.max_latency_vs_baseline = 1.2;
    s->metrics.path = "/metrics";
    s->metrics.requests_metric = "http_requests_total";
    s->metrics.errors_metric = "http_requests_errors_total";
    s->metrics.latency_metric = "http_request_duration_seconds";
    ds_spec_apply_defaults(s);
}

static int s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    s_fill_valid(f);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    free(*state);
    return 0;
}

/*  A string of `len` bytes of 'a' in the fixture's scratch buffer. */
static char *s_big(s_fix_t *f, size_t len)
{
    assert_true(len < sizeof(f->big));
    memset(f->big, 'a', len);
    f->big[len] = '\0';
    return f->big;
}

static int s_validate(s_fix_t *f)
{
    return ds_spec_validate(&f->spec, f->err, sizeof(f->err));
}

static void s_expect_valid(s_fix_t *f)
{
    int rc = s_validate(f);
    if (rc != 0)
        print_error("unexpected refusal: %s\n", f->err);
    assert_int_equal(rc, 0);
}

/*  Refused with DS_EINVAL, and the message starts with the field path. */
static void s_expect_refused(s_fix_t *f, const char *field)
{
    int rc = s_validate(f);
    if (rc != DS_EINVAL || strncmp(f->err, field, strlen(field)) != 0)
        print_error("expected a refusal naming \"%s\", got rc=%d: %s\n", field, rc, f->err);
    assert_int_equal(rc, DS_EINVAL);
    assert_non_null(strstr(f->err, field));
    assert_int_equal(strncmp(f->err, field, strlen(field)), 0);
    assert_true(strlen(f->err) < 256); /* fits ds_codec_err_t.text and the like */
}

/*  One test per rule: set up the fixture, apply the mutation, expect a
    refusal that names `field`. */
#define REFUSED(name, field, ...)                                                                  \
    static void name(void **state)                                                                 \
    {                                                                                              \
        s_fix_t *f = *state;                                                                       \
        __VA_ARGS__;                                                                               \
        s_expect_refused(f, field);                                                                \
    }

/* ------------------------------------------------------------------ */
/* defaults                                                            */

static void test_init_sets_true_bools_and_disables_analysis(void **state)
{
    (void)state;
    ds_spec_t s;
    memset(&s, 0x5a, sizeof(s));
    ds_spec_init(&s);
    assert_true(s.strategy.auto_promote);
    assert_true(s.strategy.auto_revert);
    assert_true(s.analysis.max_error_ratio < 0);
    assert_true(s.analysis.max_p99_latency_ms < 0);
    assert_true(s.analysis.max_restarts < 0);
    assert_true(s.analysis.min_health_ratio < 0);
    assert_true(s.analysis.max_error_ratio_vs_baseline < 0);
    assert_true(s.analysis.max_latency_vs_baseline < 0);
    assert_null(s.artifact);
    assert_int_equal(s.n_env, 0);
}

static void test_defaults_fill_every_unset_field(void **state)
{
    (void)state;
    ds_spec_t s;
    ds_spec_init(&s);
    ds_spec_apply_defaults(&s);
    assert_string_equal(s.artifact, "");
    assert_string_equal(s.sha256, "");
    assert_string_equal(s.command, "");
    assert_string_equal(s.workdir, "");
    assert_int_equal(s.health.kind, DS_HEALTH_NONE);
    assert_string_equal(s.health.path, "");
    assert_string_equal(s.health.command, "");
    assert_int_equal(s.health.interval_ms, 2000);
    assert_int_equal(s.health.timeout_ms, 1000);
    assert_int_equal(s.health.healthy_threshold, 2);
    assert_int_equal(s.health.unhealthy_threshold, 3);
    assert_int_equal(s.health.start_grace_ms, 5000);
    assert_int_equal(s.strategy.canary, 1);
    assert_false(s.strategy.canary_percent);
    assert_int_equal(s.strategy.max_parallel, 1);
    assert_false(s.strategy.max_parallel_percent);
    assert_int_equal(s.strategy.bake_ms, 30000);
    assert_int_equal(s.strategy.healthy_deadline_ms, 300000);
    assert_int_equal(s.strategy.progress_deadline_ms, 600000);
    assert_true(s.strategy.auto_promote);
    assert_true(s.strategy.auto_revert);
    assert_int_equal(s.analysis.min_samples, 10);
    assert_int_equal(s.analysis.on_inconclusive, DS_INCONCLUSIVE_FAIL);
    assert_string_equal(s.metrics.path, "");
    assert_int_equal(s.metrics.interval_ms, 0);
    assert_string_equal(s.metrics.requests_metric, "");
    assert_string_equal(s.metrics.errors_metric, "");
    assert_string_equal(s.metrics.latency_metric, "");
    assert_int_equal(s.stop_grace_ms, 10000);
}

static void test_defaults_keep_values_that_were_set(void **state)
{
    (void)state;
    ds_spec_t s;
    ds_spec_init(&s);
    s.health.kind = DS_HEALTH_HTTP;
    s.health.path = "/ready";
    s.health.interval_ms = 7000;
    s.strategy.bake_ms = 1;
    s.strategy.auto_promote = false;
    s.stop_grace_ms = 1;
    ds_spec_apply_defaults(&s);
    assert_string_equal(s.health.path, "/ready");
    assert_int_equal(s.health.interval_ms, 7000);
    assert_int_equal(s.strategy.bake_ms, 1);
    assert_false(s.strategy.auto_promote);
    assert_int_equal(s.stop_grace_ms, 1);
}

static void test_http_health_path_defaults_to_healthz(void **state)
{
    (void)state;
    ds_spec_t s;
    ds_spec_init(&s);
    s.health.kind = DS_HEALTH_HTTP;
    ds_spec_apply_defaults(&s);
    assert_string_equal(s.health.path, "/healthz");
}

static void test_test_timeout_defaults_to_one_minute(void **state)
{
    s_fix_t *f = *state;
    assert_int_equal(f->tests[0].timeout_ms, 60000);
    assert_int_equal(f->tests[1].timeout_ms, 120000);
}

static void test_progress_deadline_default_covers_long_healthy_deadline(void **state)
{
    (void)state;
    ds_spec_t s;
    ds_spec_init(&s);
    s.strategy.healthy_deadline_ms = 20 * 60 * 1000;
    ds_spec_apply_defaults(&s);
    assert_int_equal(s.strategy.progress_deadline_ms, 20 * 60 * 1000);
}

static void test_metrics_interval_defaults_only_with_path(void **state)
{
    s_fix_t *f = *state;
    assert_int_equal(f->spec.metrics.interval_ms, 5000);
}

static void test_minimal_spec_is_valid(void **state)
{
    s_fix_t *f = *state;
    ds_spec_init(&f->spec);
    f->spec.artifact = "./model";
    f->spec.command = "python serve.py";
    ds_spec_apply_defaults(&f->spec);
    s_expect_valid(f);
}

static void test_full_valid_spec_passes(void **state)
{
    s_fix_t *f = *state;
    s_expect_valid(f);
    assert_string_equal(f->err, "");
}

/* ------------------------------------------------------------------ */
/* artifact, sha256, command, args                                     */

REFUSED(test_artifact_empty_refused, "artifact", f->spec.artifact = "")
REFUSED(test_artifact_too_long_refused, "artifact", f->spec.artifact = s_big(f, DS_MAX_PATH + 1))
REFUSED(test_artifact_relative_dotdot_refused, "artifact", f->spec.artifact = "models/../../etc")
REFUSED(test_artifact_unsupported_scheme_refused, "artifact",
        f->spec.artifact = "ftp://example.com/m.tgz")
REFUSED(test_artifact_url_without_host_refused, "artifact", f->spec.artifact = "https:///m.tgz")
REFUSED(test_artifact_url_with_space_refused, "artifact",
        f->spec.artifact = "https://example.com/a b.tgz")
REFUSED(test_artifact_control_character_refused, "artifact", f->spec.artifact = "./mo\ndel")

static void test_artifact_paths_and_urls_accepted(void **state)
{
    s_fix_t *f = *state;
    static const char *ok[] = {"/srv/models/churn", "./model",        "model.tar.gz",
                               "/opt/../srv/m",     "HTTP://h/x.tgz", "http://host:8080"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        f->spec.artifact = (char *)ok[i];
        s_expect_valid(f);
    }
}

REFUSED(test_sha256_wrong_length_refused, "sha256", f->spec.sha256 = "abc")
REFUSED(test_sha256_non_hex_refused, "sha256",
        f->spec.sha256 = "zf86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")

static void test_sha256_empty_or_uppercase_accepted(void **state)
{
    s_fix_t *f = *state;
    f->spec.sha256 = "";
    s_expect_valid(f);
    f->spec.sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
    s_expect_valid(f);
}

REFUSED(test_command_empty_refused, "command", f->spec.command = "")
REFUSED(test_command_blank_refused, "command", f->spec.command = " \t ")
REFUSED(test_command_too_long_refused, "command", f->spec.command = s_big(f, DS_MAX_CMD + 1))
REFUSED(test_args_too_many_refused, "args", f->spec.n_args = DS_MAX_ARGS + 1)
REFUSED(test_args_count_without_list_refused, "args", f->spec.args = NULL)
REFUSED(test_arg_too_long_refused, "args[1]", f->args[1] = s_big(f, DS_MAX_TEXT + 1))

/* ------------------------------------------------------------------ */
/* env, workdir, selector                                              */

REFUSED(test_env_too_many_refused, "env", f->spec.n_env = DS_MAX_ENV + 1)
REFUSED(test_env_count_without_list_refused, "env", f->spec.env = NULL)
REFUSED(test_env_invalid_key_refused, "env[1].key", f->env[1].key = "1LOG")
REFUSED(test_env_key_with_dash_refused, "env[0].key", f->env[0].key = "MODEL-DIR")
REFUSED(test_env_empty_key_refused, "env[2].key", f->env[2].key = "")
REFUSED(test_env_key_too_long_refused, "env[2].key", f->env[2].key = s_big(f, DS_MAX_LABEL + 1))
REFUSED(test_env_duplicate_key_refused, "env[2].key", f->env[2].key = "MODEL_DIR")
REFUSED(test_env_value_too_long_refused, "env[0].value",
        f->env[0].value = s_big(f, DS_MAX_TEXT + 1))
REFUSED(test_env_port_reserved_refused, "env[2].key", f->env[2].key = "PORT")
REFUSED(test_env_release_dir_reserved_refused, "env[1].key", f->env[1].key = "DS_RELEASE_DIR")

REFUSED(test_workdir_absolute_refused, "workdir", f->spec.workdir = "/srv/app")
REFUSED(test_workdir_dotdot_refused, "workdir", f->spec.workdir = "app/../..")

REFUSED(test_selector_too_many_refused, "selector", f->spec.n_selector = DS_MAX_LABELS + 1)
REFUSED(test_selector_count_without_list_refused, "selector", f->spec.selector = NULL)
REFUSED(test_selector_invalid_key_refused, "selector[1].key", f->selector[1].key = "gpu=yes")
REFUSED(test_selector_empty_key_refused, "selector[0].key", f->selector[0].key = "")
REFUSED(test_selector_key_too_long_refused, "selector[0].key",
        f->selector[0].key = s_big(f, DS_MAX_NAME + 1))
REFUSED(test_selector_duplicate_key_refused, "selector[1].key", f->selector[1].key = "zone")
REFUSED(test_selector_value_too_long_refused, "selector[1].value",
        f->selector[1].value = s_big(f, DS_MAX_LABEL + 1))

/* ------------------------------------------------------------------ */
/* health                                                              */

REFUSED(test_health_kind_out_of_range_refused, "health.kind", f->spec.health.kind = 4)
REFUSED(test_health_http_path_without_slash_refused, "health.path", f->spec.health.path = "healthz")
REFUSED(test_health_http_path_empty_refused, "health.path", f->spec.health.path = "")
REFUSED(test_health_path_on_tcp_check_refused, "health.path", f->spec.health.kind = DS_HEALTH_TCP)
REFUSED(test_health_exec_without_command_refused, "health.command",
        (f->spec.health.kind = DS_HEALTH_EXEC, f->spec.health.path = ""))
REFUSED(test_health_command_on_http_check_refused, "health.command",
        f->spec.health.command = "true")
REFUSED(test_health_interval_below_minimum_refused, "health.interval_ms",
        f->spec.health.interval_ms = 50)
REFUSED(test_health_interval_above_maximum_refused, "health.interval_ms",
        f->spec.health.interval_ms = 3600001)
REFUSED(test_health_timeout_below_minimum_refused, "health.timeout_ms",
        f->spec.health.timeout_ms = 9)
REFUSED(test_health_timeout_above_interval_refused, "health.timeout_ms",
        f->spec.health.timeout_ms = 2001)
REFUSED(test_health_healthy_threshold_zero_refused, "health.healthy_threshold",
        f->spec.health.healthy_threshold = 0)
REFUSED(test_health_unhealthy_threshold_above_maximum_refused, "health.unhealthy_threshold",
        f->spec.health.unhealthy_threshold = 101)
REFUSED(test_health_start_grace_above_maximum_refused, "health.start_grace_ms",
        f->spec.health.start_grace_ms = 3600001)

static void test_health_tcp_and_exec_accepted(void **state)
{
    s_fix_t *f = *state;
    f->spec.health.kind = DS_HEALTH_TCP;
    f->spec.health.path = "";
    s_expect_valid(f);
    f->spec.health.kind = DS_HEALTH_EXEC;
    f->spec.health.command = "bin/check";
    s_expect_valid(f);
}

/* ------------------------------------------------------------------ */
/* tests                                                               */

REFUSED(test_tests_too_many_refused, "tests", f->spec.n_tests = DS_MAX_TESTS + 1)
REFUSED(test_tests_count_without_list_refused, "tests", f->spec.tests = NULL)
REFUSED(test_test_name_empty_refused, "tests[0].name", f->tests[0].name = "")
REFUSED(test_test_name_invalid_characters_refused, "tests[1].name", f->tests[1].name = "Smoke")
REFUSED(test_test_name_too_long_refused, "tests[1].name",
        f->tests[1].name = s_big(f, DS_MAX_NAME + 1))
REFUSED(test_duplicate_test_names_refused, "tests[1].name", f->tests[1].name = "smoke")
REFUSED(test_test_command_empty_refused, "tests[1].command", f->tests[1].command = "")
REFUSED(test_test_timeout_below_minimum_refused, "tests[0].timeout_ms",
        f->tests[0].timeout_ms = 999)
REFUSED(test_test_timeout_above_maximum_refused, "tests[1].timeout_ms",
        f->tests[1].timeout_ms = 3600001)

/* ------------------------------------------------------------------ */
/* strategy                                                            */

REFUSED(test_canary_zero_refused, "strategy.canary", f->spec.strategy.canary = 0)
REFUSED(test_canary_percent_above_100_refused, "strategy.canary", f->spec.strategy.canary = 101)
REFUSED(test_canary_count_above_workers_refused, "strategy.canary",
        (f->spec.strategy.canary_percent = false, f->spec.strategy.canary = DS_MAX_WORKERS + 1))
REFUSED(test_max_parallel_percent_above_100_refused, "strategy.max_parallel",
        (f->spec.strategy.max_parallel_percent = true, f->spec.strategy.max_parallel = 150))
REFUSED(test_max_parallel_zero_refused, "strategy.max_parallel", f->spec.strategy.max_parallel = 0)
REFUSED(test_bake_above_maximum_refused, "strategy.bake_ms",
        f->spec.strategy.bake_ms = DS_MAX_DURATION_MS + 1)
REFUSED(test_healthy_deadline_below_minimum_refused, "strategy.healthy_deadline_ms",
        f->spec.strategy.healthy_deadline_ms = 999)
REFUSED(test_progress_deadline_above_maximum_refused, "strategy.progress_deadline_ms",
        f->spec.strategy.progress_deadline_ms = DS_MAX_DURATION_MS + 1)
REFUSED(test_healthy_deadline_above_progress_deadline_refused, "strategy.healthy_deadline_ms",
        f->spec.strategy.healthy_deadline_ms = 600001)
REFUSED(test_healthy_deadline_within_start_grace_refused, "strategy.healthy_deadline_ms",
        (f->spec.strategy.healthy_deadline_ms = 5000, f->spec.health.start_grace_ms = 5000))
REFUSED(test_healthy_deadline_shorter_than_fastest_healthy_refused, "strategy.healthy_deadline_ms",
        (f->spec.strategy.healthy_deadline_ms = 30000, f->spec.health.start_grace_ms = 1000,
         f->spec.health.healthy_threshold = 20, f->spec.health.interval_ms = 2000))

static void test_health_relations_skipped_without_health_check(void **state)
{
    s_fix_t *f = *state;
    f->spec.health.kind = DS_HEALTH_NONE;
    f->spec.health.path = "";
    f->spec.strategy.healthy_deadline_ms = 1000;
    s_expect_valid(f);
}

/* ------------------------------------------------------------------ */
/* analysis and metrics                                                */

REFUSED(test_error_ratio_above_one_refused, "analysis.max_error_ratio",
        f->spec.analysis.max_error_ratio = 1.5)
REFUSED(test_p99_latency_zero_refused, "analysis.max_p99_latency_ms",
        f->spec.analysis.max_p99_latency_ms = 0)
REFUSED(test_restarts_above_maximum_refused, "analysis.max_restarts",
        f->spec.analysis.max_restarts = 2e6)
REFUSED(test_health_ratio_above_one_refused, "analysis.min_health_ratio",
        f->spec.analysis.min_health_ratio = 1.01)
REFUSED(test_error_ratio_vs_baseline_below_one_refused, "analysis.max_error_ratio_vs_baseline",
        f->spec.analysis.max_error_ratio_vs_baseline = 0.9)
REFUSED(test_latency_vs_baseline_below_one_refused, "analysis.max_latency_vs_baseline",
        f->spec.analysis.max_latency_vs_baseline = 0.5)
REFUSED(test_non_finite_threshold_refused, "analysis.max_restarts",
        f->spec.analysis.max_restarts = NAN)
REFUSED(test_infinite_threshold_refused, "analysis.max_p99_latency_ms",
        f->spec.analysis.max_p99_latency_ms = INFINITY)
REFUSED(test_min_samples_zero_refused, "analysis.min_samples", f->spec.analysis.min_samples = 0)
REFUSED(test_min_samples_above_maximum_refused, "analysis.min_samples",
        f->spec.analysis.min_samples = 1000001)
REFUSED(test_on_inconclusive_out_of_range_refused, "analysis.on_inconclusive",
        f->spec.analysis.on_inconclusive = 2)

static void test_negative_thresholds_turn_checks_off(void **state)
{
    s_fix_t *f = *state;
    ds_analysis_t *a = &f->spec.analysis;
    a->max_error_ratio = -5;
    a->max_p99_latency_ms = DS_SPEC_OFF;
    a->max_restarts = -0.5;
    a->min_health_ratio = -1e300;
    a->max_error_ratio_vs_baseline = -2;
    a->max_latency_vs_baseline = -3;
    f->spec.metrics.path = "";
    f->spec.metrics.interval_ms = 0;
    s_expect_valid(f);
}

REFUSED(test_metrics_path_without_slash_refused, "metrics.path", f->spec.metrics.path = "metrics")
REFUSED(test_metrics_interval_below_minimum_refused, "metrics.interval_ms",
        f->spec.metrics.interval_ms = 999)
REFUSED(test_metrics_interval_above_maximum_refused, "metrics.interval_ms",
        f->spec.metrics.interval_ms = 3600001)
REFUSED(test_metric_name_invalid_refused, "metrics.errors_metric",
        f->spec.metrics.errors_metric = "http-errors")
REFUSED(test_metric_name_leading_digit_refused, "metrics.latency_metric",
        f->spec.metrics.latency_metric = "9lat")

/*  Clears the metrics section and every check that needs it. */
static void s_no_metrics(s_fix_t *f)
{
    ds_analysis_t *a = &f->spec.analysis;
    a->max_error_ratio = a->max_p99_latency_ms = DS_SPEC_OFF;
    a->max_error_ratio_vs_baseline = a->max_latency_vs_baseline = DS_SPEC_OFF;
    f->spec.metrics = (ds_metrics_spec_t){"", 0, "", "", ""};
}

REFUSED(test_metrics_interval_without_path_refused, "metrics.interval_ms",
        (s_no_metrics(f), f->spec.metrics.interval_ms = 5000))
REFUSED(test_error_ratio_check_requires_metrics, "analysis.max_error_ratio",
        (s_no_metrics(f), f->spec.analysis.max_error_ratio = 0.05))
REFUSED(test_error_ratio_check_requires_errors_metric, "analysis.max_error_ratio",
        f->spec.metrics.errors_metric = "")
REFUSED(test_error_ratio_vs_baseline_requires_requests_metric,
        "analysis.max_error_ratio_vs_baseline",
        (f->spec.analysis.max_error_ratio = DS_SPEC_OFF, f->spec.metrics.requests_metric = ""))
REFUSED(test_latency_check_requires_latency_metric, "analysis.max_p99_latency_ms",
        f->spec.metrics.latency_metric = "")
REFUSED(test_latency_vs_baseline_requires_metrics_path, "analysis.max_latency_vs_baseline",
        (s_no_metrics(f), f->spec.analysis.max_latency_vs_baseline = 1.1))

static void test_error_ratio_message_names_missing_metric(void **state)
{
    s_fix_t *f = *state;
    s_no_metrics(f);
    f->spec.analysis.max_error_ratio = 0.05;
    assert_int_equal(s_validate(f), DS_EINVAL);
    assert_non_null(strstr(f->err, "metrics.path"));
}

static void test_restart_and_health_checks_need_no_metrics(void **state)
{
    s_fix_t *f = *state;
    s_no_metrics(f);
    f->spec.analysis.max_restarts = 0;
    f->spec.analysis.min_health_ratio = 1;
    s_expect_valid(f);
}

REFUSED(test_stop_grace_above_maximum_refused, "stop_grace_ms", f->spec.stop_grace_ms = 600001)

/* ------------------------------------------------------------------ */
/* messages, NULLs, robustness                                         */

static void test_messages_name_field_value_and_range(void **state)
{
    s_fix_t *f = *state;
    f->spec.health.interval_ms = 50;
    assert_int_equal(s_validate(f), DS_EINVAL);
    assert_string_equal(f->err, "health.interval_ms: 50 is out of range (100 ms to 1 h)");
    f->spec.health.interval_ms = 2000;
    f->spec.sha256 = "abc";
    assert_int_equal(s_validate(f), DS_EINVAL);
    assert_string_equal(f->err,
                        "sha256: \"abc\" is not a sha256 digest (64 hex characters, or empty)");
    f->spec.sha256 = "";
    f->spec.health.timeout_ms = 3000;
    assert_int_equal(s_validate(f), DS_EINVAL);
    assert_string_equal(f->err,
                        "health.timeout_ms: 3000 must be at most health.interval_ms (2000)");
}

static void test_long_values_are_truncated_in_messages(void **state)
{
    s_fix_t *f = *state;
    f->spec.command = s_big(f, DS_MAX_CMD + 1);
    assert_int_equal(s_validate(f), DS_EINVAL);
    assert_non_null(strstr(f->err, "...\""));
    assert_true(strlen(f->err) < 160);
}

static void test_null_strings_are_treated_as_empty(void **state)
{
    s_fix_t *f = *state;
    ds_spec_t *s = &f->spec;
    ds_spec_init(s); /* every string NULL, no defaults applied */
    assert_int_equal(s_validate(f), DS_EINVAL);
    assert_non_null(strstr(f->err, "artifact"));
    s->artifact = "./model";
    s->command = "serve";
    s->analysis.min_samples = 10;
    s->health.interval_ms = 2000;
    s->health.timeout_ms = 1000;
    s->health.healthy_threshold = s->health.unhealthy_threshold = 1;
    s->strategy.canary = s->strategy.max_parallel = 1;
    s->strategy.healthy_deadline_ms = s->strategy.progress_deadline_ms = 60000;
    f->args[0] = NULL;
    s->args = f->args;
    s->n_args = 1;
    s_expect_valid(f);
    f->env[0] = (ds_kv_t){NULL, NULL};
    s->env = f->env;
    s->n_env = 1;
    assert_int_equal(s_validate(f), DS_EINVAL);
    assert_non_null(strstr(f->err, "env[0].key"));
}

static void test_apply_defaults_survives_counts_without_lists(void **state)
{
    s_fix_t *f = *state;
    f->spec.args = NULL;
    f->spec.env = NULL;
    f->spec.selector = NULL;
    f->spec.tests = NULL;
    ds_spec_apply_defaults(&f->spec);
    assert_int_equal(s_validate(f), DS_EINVAL);
    assert_non_null(strstr(f->err, "args"));
}

static void test_error_buffer_may_be_null_or_empty(void **state)
{
    s_fix_t *f = *state;
    f->spec.command = "";
    assert_int_equal(ds_spec_validate(&f->spec, NULL, 0), DS_EINVAL);
    assert_int_equal(ds_spec_validate(&f->spec, NULL, 100), DS_EINVAL);
    f->err[0] = 'x';
    assert_int_equal(ds_spec_validate(&f->spec, f->err, 0), DS_EINVAL);
    assert_int_equal(f->err[0], 'x');
    char tiny[8];
    assert_int_equal(ds_spec_validate(&f->spec, tiny, sizeof(tiny)), DS_EINVAL);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_int_equal(ds_spec_validate(NULL, f->err, sizeof(f->err)), DS_EINVAL);
}

/* ------------------------------------------------------------------ */
/* codec round trip                                                    */

static const char *s_str(const char *s)
{
    return s ? s : "";
}

static uint32_t s_count(const void *obj, const ds_field_t *fd)
{
    return *(const uint32_t *)((const char *)obj + fd->count_offset);
}

/*  Deep equality of two structs, walking the same description the codec
    walks, so every field of the spec is compared. */
static void s_assert_same(const ds_desc_t *d, const void *a, const void *b)
{
    static const size_t scalar[] = {[DS_FT_U8] = 1,  [DS_FT_U16] = 2, [DS_FT_U32] = 4,
                                    [DS_FT_U64] = 8, [DS_FT_I64] = 8, [DS_FT_BOOL] = sizeof(bool),
                                    [DS_FT_F64] = 8};
    for (size_t i = 0; i < d->nfields; i++) {
        const ds_field_t *fd = &d->fields[i];
        const char *ma = (const char *)a + fd->offset, *mb = (const char *)b + fd->offset;
        if (fd->type <= DS_FT_F64) {
            assert_memory_equal(ma, mb, scalar[fd->type]);
            continue;
        }
        if (fd->type == DS_FT_STR) {
            assert_string_equal(s_str(*(char *const *)ma), s_str(*(char *const *)mb));
            continue;
        }
        if (fd->type == DS_FT_STRUCT) {
            s_assert_same(fd->sub, ma, mb);
            continue;
        }
        uint32_t n = s_count(a, fd);
        assert_int_equal(n, s_count(b, fd));
        for (uint32_t k = 0; k < n; k++) {
            if (fd->type == DS_FT_ARRAY) {
                size_t off = (size_t)k * fd->sub->size;
                s_assert_same(fd->sub, *(char *const *)ma + off, *(char *const *)mb + off);
            } else if (fd->type == DS_FT_STRS) {
                assert_string_equal(s_str((*(char **const *)ma)[k]),
                                    s_str((*(char **const *)mb)[k]));
            } else {
                assert_int_equal(fd->type, DS_FT_KVS);
                const ds_kv_t *ka = *(ds_kv_t *const *)ma, *kb = *(ds_kv_t *const *)mb;
                assert_string_equal(s_str(ka[k].key), s_str(kb[k].key));
                assert_string_equal(s_str(ka[k].value), s_str(kb[k].value));
            }
        }
    }
}

static void test_spec_round_trips_through_codec(void **state)
{
    s_fix_t *f = *state;
    s_expect_valid(f);
    ds_buf_t buf = {0};
    ds_codec_err_t cerr = {0};
    assert_int_equal(ds_codec_encode(&ds_spec_desc, &f->spec, &buf, &cerr), 0);
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(buf.len, sizeof(ds_spec_t)));
    assert_non_null(arena);
    ds_spec_t back;
    int rc = ds_codec_decode(&ds_spec_desc, buf.data, buf.len, &back, arena, &cerr);
    if (rc != 0)
        print_error("decode: %s\n", cerr.text);
    assert_int_equal(rc, 0);
    s_assert_same(&ds_spec_desc, &f->spec, &back);
    assert_int_equal(ds_spec_validate(&back, f->err, sizeof(f->err)), 0);
    ds_arena_destroy(&arena);
    ds_buf_free(&buf);
}

#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_init_sets_true_bools_and_disables_analysis),
        T(test_defaults_fill_every_unset_field),
        T(test_defaults_keep_values_that_were_set),
        T(test_http_health_path_defaults_to_healthz),
        T(test_test_timeout_defaults_to_one_minute),
        T(test_progress_deadline_default_covers_long_healthy_deadline),
        T(test_metrics_interval_defaults_only_with_path),
        T(test_minimal_spec_is_valid),
        T(test_full_valid_spec_passes),
        T(test_artifact_empty_refused),
        T(test_artifact_too_long_refused),
        T(test_artifact_relative_dotdot_refused),
        T(test_artifact_unsupported_scheme_refused),
        T(test_artifact_url_without_host_refused),
        T(test_artifact_url_with_space_refused),
        T(test_artifact_control_character_refused),
        T(test_artifact_paths_and_urls_accepted),
        T(test_sha256_wrong_length_refused),
        T(test_sha256_non_hex_refused),
        T(test_sha256_empty_or_uppercase_accepted),
        T(test_command_empty_refused),
        T(test_command_blank_refused),
        T(test_command_too_long_refused),
        T(test_args_too_many_refused),
        T(test_args_count_without_list_refused),
        T(test_arg_too_long_refused),
        T(test_env_too_many_refused),
        T(test_env_count_without_list_refused),
        T(test_env_invalid_key_refused),
        T(test_env_key_with_dash_refused),
        T(test_env_empty_key_refused),
        T(test_env_key_too_long_refused),
        T(test_env_duplicate_key_refused),
        T(test_env_value_too_long_refused),
        T(test_env_port_reserved_refused),
        T(test_env_release_dir_reserved_refused),
        T(test_workdir_absolute_refused),
        T(test_workdir_dotdot_refused),
        T(test_selector_too_many_refused),
        T(test_selector_count_without_list_refused),
        T(test_selector_invalid_key_refused),
        T(test_selector_empty_key_refused),
        T(test_selector_key_too_long_refused),
        T(test_selector_duplicate_key_refused),
        T(test_selector_value_too_long_refused),
        T(test_health_kind_out_of_range_refused),
        T(test_health_http_path_without_slash_refused),
        T(test_health_http_path_empty_refused),
        T(test_health_path_on_tcp_check_refused),
        T(test_health_exec_without_command_refused),
        T(test_health_command_on_http_check_refused),
        T(test_health_interval_below_minimum_refused),
        T(test_health_interval_above_maximum_refused),
        T(test_health_timeout_below_minimum_refused),
        T(test_health_timeout_above_interval_refused),
        T(test_health_healthy_threshold_zero_refused),
        T(test_health_unhealthy_threshold_above_maximum_refused),
        T(test_health_start_grace_above_maximum_refused),
        T(test_health_tcp_and_exec_accepted),
        T(test_tests_too_many_refused),
        T(test_tests_count_without_list_refused),
        T(test_test_name_empty_refused),
        T(test_test_name_invalid_characters_refused),
        T(test_test_name_too_long_refused),
        T(test_duplicate_test_names_refused),
        T(test_test_command_empty_refused),
        T(test_test_timeout_below_minimum_refused),
        T(test_test_timeout_above_maximum_refused),
        T(test_canary_zero_refused),
        T(test_canary_percent_above_100_refused),
        T(test_canary_count_above_workers_refused),
        T(test_max_parallel_percent_above_100_refused),
        T(test_max_parallel_zero_refused),
        T(test_bake_above_maximum_refused),
        T(test_healthy_deadline_below_minimum_refused),
        T(test_progress_deadline_above_maximum_refused),
        T(test_healthy_deadline_above_progress_deadline_refused),
        T(test_healthy_deadline_within_start_grace_refused),
        T(test_healthy_deadline_shorter_than_fastest_healthy_refused),
        T(test_health_relations_skipped_without_health_check),
        T(test_error_ratio_above_one_refused),
        T(test_p99_latency_zero_refused),
        T(test_restarts_above_maximum_refused),
        T(test_health_ratio_above_one_refused),
        T(test_error_ratio_vs_baseline_below_one_refused),
        T(test_latency_vs_baseline_below_one_refused),
        T(test_non_finite_threshold_refused),
        T(test_infinite_threshold_refused),
        T(test_min_samples_zero_refused),
        T(test_min_samples_above_maximum_refused),
        T(test_on_inconclusive_out_of_range_refused),
        T(test_negative_thresholds_turn_checks_off),
        T(test_metrics_path_without_slash_refused),
        T(test_metrics_interval_below_minimum_refused),
        T(test_metrics_interval_above_maximum_refused),
        T(test_metric_name_invalid_refused),
        T(test_metric_name_leading_digit_refused),
        T(test_metrics_interval_without_path_refused),
        T(test_error_ratio_check_requires_metrics),
        T(test_error_ratio_check_requires_errors_metric),
        T(test_error_ratio_vs_baseline_requires_requests_metric),
        T(test_latency_check_requires_latency_metric),
        T(test_latency_vs_baseline_requires_metrics_path),
        T(test_error_ratio_message_names_missing_metric),
        T(test_restart_and_health_checks_need_no_metrics),
        T(test_stop_grace_above_maximum_refused),
        T(test_messages_name_field_value_and_range),
        T(test_long_values_are_truncated_in_messages),
        T(test_null_strings_are_treated_as_empty),
        T(test_apply_defaults_survives_counts_without_lists),
        T(test_error_buffer_may_be_null_or_empty),
        T(test_spec_round_trips_through_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
