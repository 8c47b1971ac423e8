/*  tests/unit/test_specfile.c - the YAML spec file: every field maps to
    ds_spec_t, omitted fields get their defaults, and every kind of
    mistake is refused with one "file:line:col: field: ..." line. */
#include "dsctl/specfile.h"

#include "protocol/arena.h"
#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/spec.h"
#include "tests/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SHA  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define HEAD "artifact: /srv/a\ncommand: run\n" /* the two required fields */

typedef struct {
    ds_arena_t *arena;
    ds_spec_t spec;
    char err[DS_SPECFILE_ERR_SIZE];
} s_fix_t;

static int s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->arena = ds_arena_new(DS_SPECFILE_ARENA_CAP);
    assert_non_null(f->arena);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    ds_arena_destroy(&f->arena);
    free(f);
    return 0;
}

static int s_parse(s_fix_t *f, const char *text)
{
    return ds_specfile_parse(text, strlen(text), "t.yaml", &f->spec, f->arena, f->err,
                             sizeof f->err);
}

/*  Parses `text`, which must fail with DS_EINVAL and exactly `want`. */
static void s_refused(s_fix_t *f, const char *text, const char *want)
{
    int rc = s_parse(f, text);
    if (rc != DS_EINVAL || strcmp(f->err, want) != 0)
        fail_msg("text:\n%s\nwant: %s\ngot:  (%d) %s", text, want, rc, f->err);
}

static void s_ok(s_fix_t *f, const char *text)
{
    int rc = s_parse(f, text);
    if (rc != 0)
        fail_msg("text:\n%s\nrefused: %s", text, f->err);
}

/*  A file next to this source: tests/unit/data/specs/<name>, or a path
    from the project root when `name` starts with "../../". */
static void s_data(char *out, size_t len, const char *name)
{
    const char *here = __FILE__;
    const char *slash = strrchr(here, '/');
    int dir = slash ? (int)(slash - here) : 1;
    snprintf(out, len, "%.*s/data/specs/%s", dir, slash ? here : ".", name);
}

static int s_load(s_fix_t *f, const char *name)
{
    char path[1024];
    s_data(path, sizeof path, name);
    return ds_specfile_load(path, &f->spec, f->arena, f->err, sizeof f->err);
}

/* ------------------------------------------------------------------ */
/* what a valid file gives                                             */

static void test_full_file_maps_every_field(void **state)
{
    s_fix_t *f = *state;
    int rc = s_load(f, "full.yaml");
    if (rc != 0)
        fail_msg("%s", f->err);
    const ds_spec_t *s = &f->spec;
    assert_string_equal(s->artifact, "https://artifacts.example.com/churn/v3.tar.gz");
    assert_string_equal(s->sha256, SHA);
    assert_string_equal(s->command, "bin/serve --port ${PORT}");
    assert_int_equal(s->n_args, 3);
    assert_string_equal(s->args[0], "--model");
    assert_string_equal(s->args[1], "/data/models/churn");
    assert_string_equal(s->args[2], "");
    assert_int_equal(s->n_env, 3);
    assert_string_equal(s->env[0].key, "MODEL_DIR");
    assert_string_equal(s->env[0].value, "/data/models");
    assert_string_equal(s->env[1].key, "LOG_LEVEL");
    assert_string_equal(s->env[1].value, "info");
    assert_string_equal(s->env[2].key, "THREADS");
    assert_string_equal(s->env[2].value, "4");
    assert_string_equal(s->workdir, "app");
    assert_int_equal(s->n_selector, 2);
    assert_string_equal(s->selector[0].key, "zone");
    assert_string_equal(s->selector[0].value, "eu-west-1a");
    assert_string_equal(s->selector[1].key, "gpu");
    assert_string_equal(s->selector[1].value, "true");

    assert_int_equal(s->health.kind, DS_HEALTH_EXEC);
    assert_string_equal(s->health.path, "");
    assert_string_equal(s->health.command, "bin/check --port ${PORT}");
    assert_int_equal(s->health.interval_ms, 3000);
    assert_int_equal(s->health.timeout_ms, 1500);
    assert_int_equal(s->health.healthy_threshold, 4);
    assert_int_equal(s->health.unhealthy_threshold, 5);
    assert_int_equal(s->health.start_grace_ms, 20000);

    assert_int_equal(s->n_tests, 2);
    assert_string_equal(s->tests[0].name, "smoke");
    assert_string_equal(s->tests[0].command, "curl -fsS http://127.0.0.1:${PORT}/predict");
    assert_int_equal(s->tests[0].timeout_ms, 120000);
    assert_string_equal(s->tests[1].name, "load-1");
    assert_string_equal(s->tests[1].command, "bin/load --seconds 10");
    assert_int_equal(s->tests[1].timeout_ms, 60000); /* default */

    assert_int_equal(s->strategy.canary, 10);
    assert_true(s->strategy.canary_percent);
    assert_int_equal(s->strategy.max_parallel, 3);
    assert_false(s->strategy.max_parallel_percent);
    assert_int_equal(s->strategy.bake_ms, 300000);
    assert_int_equal(s->strategy.healthy_deadline_ms, 600000);
    assert_int_equal(s->strategy.progress_deadline_ms, 5400000);
    assert_false(s->strategy.auto_promote);
    assert_false(s->strategy.auto_revert);

    assert_true(s->analysis.max_error_ratio == 0.01);
    assert_true(s->analysis.max_p99_latency_ms == 250);
    assert_true(s->analysis.max_restarts == 2);
    assert_true(s->analysis.min_health_ratio == 0.95);
    assert_true(s->analysis.max_error_ratio_vs_baseline == 1.2);
    assert_true(s->analysis.max_latency_vs_baseline == 1.5);
    assert_int_equal(s->analysis.min_samples, 50);
    assert_int_equal(s->analysis.on_inconclusive, DS_INCONCLUSIVE_PROMOTE);

    assert_string_equal(s->metrics.path, "/metrics");
    assert_int_equal(s->metrics.interval_ms, 10000);
    assert_string_equal(s->metrics.requests_metric, "http_requests_total");
    assert_string_equal(s->metrics.errors_metric, "http_requests_errors_total");
    assert_string_equal(s->metrics.latency_metric, "http_request_duration_seconds");
    assert_int_equal(s->stop_grace_ms, 45000);
}

static void test_minimal_file_gets_defaults(void **state)
{
    s_fix_t *f = *state;
    int rc = s_load(f, "minimal.yaml");
    if (rc != 0)
        fail_msg("%s", f->err);
    ds_spec_t want;
    ds_spec_init(&want);
    ds_spec_apply_defaults(&want);
    const ds_spec_t *s = &f->spec;
    assert_string_equal(s->artifact, "/srv/releases/churn");
    assert_string_equal(s->command, "bin/serve --port ${PORT}");
    assert_string_equal(s->sha256, "");
    assert_string_equal(s->workdir, "");
    assert_int_equal(s->n_args + s->n_env + s->n_selector + s->n_tests, 0);
    assert_null(s->args);
    assert_null(s->tests);
    assert_int_equal(s->health.kind, DS_HEALTH_NONE);
    assert_memory_equal(&s->health.interval_ms, &want.health.interval_ms,
                        sizeof(ds_health_spec_t) - offsetof(ds_health_spec_t, interval_ms));
    assert_memory_equal(&s->strategy, &want.strategy, sizeof s->strategy);
    assert_memory_equal(&s->analysis, &want.analysis, sizeof s->analysis);
    assert_int_equal(s->metrics.interval_ms, 0);
    assert_int_equal(s->stop_grace_ms, want.stop_grace_ms);
    assert_true(s->strategy.auto_promote && s->strategy.auto_revert);
    assert_true(s->analysis.max_error_ratio < 0);
}

static void test_annotated_example_is_valid(void **state)
{
    s_fix_t *f = *state;
    int rc = s_load(f, "../../../../docs/examples/churn-model.yaml");
    if (rc != 0)
        fail_msg("%s", f->err);
    assert_int_equal(f->spec.health.kind, DS_HEALTH_HTTP);
    assert_int_equal(f->spec.n_tests, 2);
    assert_true(f->spec.strategy.canary_percent && f->spec.strategy.max_parallel_percent);
    assert_true(f->spec.analysis.max_restarts == 0);
}

static void test_struct_names_of_spec_md_accepted(void **state)
{
    s_fix_t *f = *state;
    int rc = s_load(f, "struct-names.yaml");
    if (rc != 0)
        fail_msg("%s", f->err);
    const ds_spec_t *s = &f->spec;
    assert_int_equal(s->health.interval_ms, 1000);
    assert_int_equal(s->health.timeout_ms, 500);
    assert_int_equal(s->tests[0].timeout_ms, 30000);
    assert_int_equal(s->strategy.canary, 10);
    assert_true(s->strategy.canary_percent);
    assert_int_equal(s->strategy.max_parallel, 25);
    assert_true(s->strategy.max_parallel_percent);
    assert_int_equal(s->strategy.bake_ms, 60000);
    assert_int_equal(s->stop_grace_ms, 20000);
    assert_int_equal(s->metrics.interval_ms, 5000); /* default with a path */
}

static void test_durations_take_units(void **state)
{
    s_fix_t *f = *state;
    s_ok(f, HEAD "strategy: {bake: 500ms, healthy_deadline: 1m30s, progress_deadline: 2h}\n"
                 "health: {interval: 1.5s, timeout_ms: 250}\nstop_grace: 1ms\n");
    assert_int_equal(f->spec.strategy.bake_ms, 500);
    assert_int_equal(f->spec.strategy.healthy_deadline_ms, 90000);
    assert_int_equal(f->spec.strategy.progress_deadline_ms, 7200000);
    assert_int_equal(f->spec.health.interval_ms, 1500);
    assert_int_equal(f->spec.health.timeout_ms, 250);
    assert_int_equal(f->spec.stop_grace_ms, 1);
    s_ok(f, HEAD "strategy: {bake_ms: 2s}\n");
    assert_int_equal(f->spec.strategy.bake_ms, 2000);
}

static void test_bad_durations_refused(void **state)
{
    s_fix_t *f = *state;
    s_refused(f, HEAD "health:\n    kind: http\n    interval: 5x\n",
              "t.yaml:5:5: health.interval: \"5x\" is not a duration (use 500ms, 5s, 1m)");
    s_refused(f, HEAD "strategy:\n  bake: 30\n",
              "t.yaml:4:3: strategy.bake: \"30\" has no unit (write 30ms or 30s)");
    s_refused(f, HEAD "strategy:\n  bake: -5s\n",
              "t.yaml:4:3: strategy.bake: \"-5s\" is not a duration (use 500ms, 5s, 1m)");
    s_refused(f, HEAD "strategy:\n  bake: 0s\n",
              "t.yaml:4:3: strategy.bake: 0 is not allowed (0 means unset; leave the field out "
              "for the default, or 1ms for practically none)");
    s_refused(f, HEAD "stop_grace: 8d\n",
              "t.yaml:3:1: stop_grace: \"8d\" is not a duration (use 500ms, 5s, 1m)");
    s_refused(f, HEAD "stop_grace: 200h\n",
              "t.yaml:3:1: stop_grace: \"200h\" is longer than any duration may be (7 days)");
}

static void test_percentages_and_counts(void **state)
{
    s_fix_t *f = *state;
    s_ok(f, HEAD "strategy: {canary: 25%, max_parallel: 100%}\n");
    assert_int_equal(f->spec.strategy.canary, 25);
    assert_true(f->spec.strategy.canary_percent);
    assert_int_equal(f->spec.strategy.max_parallel, 100);
    assert_true(f->spec.strategy.max_parallel_percent);
    s_ok(f, HEAD "strategy: {canary: 3, max_parallel: 5}\n");
    assert_int_equal(f->spec.strategy.canary, 3);
    assert_false(f->spec.strategy.canary_percent);
    s_refused(f, HEAD "strategy:\n  canary: 101%\n",
              "t.yaml:4:3: strategy.canary: 101 is out of range (1% to 100%)");
    s_refused(f, HEAD "strategy:\n  canary: 2.5%\n",
              "t.yaml:4:3: strategy.canary: expected a number or a percentage like 25%, found "
              "\"2.5%\"");
    s_refused(f, HEAD "strategy:\n  canary: 0%\n",
              "t.yaml:4:3: strategy.canary: 0 is not allowed (0 means unset; leave the field out "
              "for the default)");
    s_refused(f, HEAD "strategy:\n  canary: 10%\n  canary_percent: true\n",
              "t.yaml:5:3: strategy.canary_percent: already set at line 4 by strategy.canary "
              "(give one of them)");
    s_refused(f, HEAD "strategy:\n  canary_percent: true\n  canary: 10%\n",
              "t.yaml:5:3: strategy.canary: a percentage conflicts with strategy.canary_percent "
              "at line 4 (give one of them)");
}

static void test_env_and_selector_maps_keep_file_order(void **state)
{
    s_fix_t *f = *state;
    s_ok(f, HEAD "env:\n  Z: last\n  A: \"\"\n  N: 08\nselector: {role: gpu, zone: b}\n");
    assert_int_equal(f->spec.n_env, 3);
    assert_string_equal(f->spec.env[0].key, "Z");
    assert_string_equal(f->spec.env[1].value, "");
    assert_string_equal(f->spec.env[2].value, "08");
    assert_int_equal(f->spec.n_selector, 2);
    assert_string_equal(f->spec.selector[1].key, "zone");
    assert_string_equal(f->spec.selector[1].value, "b");
    s_refused(f, HEAD "env:\n  A: 1\n  A: 2\n",
              "t.yaml:5:3: env: \"A\" is given twice (first at line 4)");
    s_refused(f, HEAD "env:\n  A: 1\n  PORT: 2\n",
              "t.yaml:5:3: env[1].key: \"PORT\" is reserved (the worker sets PORT, DS_RELEASE_DIR "
              "and DS_VERSION itself)");
    s_refused(f, HEAD "env:\n  A:\n",
              "t.yaml:4:3: env.A: expected a string, found nothing (write \"\" for an empty "
              "value)");
    s_refused(f, HEAD "env: [A=1]\n",
              "t.yaml:3:1: env: expected a mapping of NAME: value, found a list");
    s_refused(f, HEAD "selector:\n  zone: [a, b]\n",
              "t.yaml:4:3: selector.zone: expected a string, found a list");
}

static void test_tests_list_maps_each_test(void **state)
{
    s_fix_t *f = *state;
    s_ok(f, HEAD "tests:\n  - name: a\n    command: x\n  - {name: b, command: y, timeout: 5s}\n");
    assert_int_equal(f->spec.n_tests, 2);
    assert_string_equal(f->spec.tests[0].name, "a");
    assert_int_equal(f->spec.tests[0].timeout_ms, 60000);
    assert_string_equal(f->spec.tests[1].command, "y");
    assert_int_equal(f->spec.tests[1].timeout_ms, 5000);
    s_refused(f, HEAD "tests:\n  - name: a\n    cmd: x\n",
              "t.yaml:5:5: tests[0]: unknown field \"cmd\" (allowed: name, command, timeout)");
    s_refused(f, HEAD "tests:\n  - name: a\n    command: x\n  - run-it\n",
              "t.yaml:6:5: tests[1]: expected a mapping with name, command and timeout, found "
              "\"run-it\"");
    s_refused(f, HEAD "tests:\n  - name: a\n    command: x\n  - name: a\n    command: y\n",
              "t.yaml:6:5: tests[1].name: \"a\" is a duplicate of tests[0].name (names must be "
              "unique)");
    s_refused(f, HEAD "tests:\n  - name: a\n",
              "t.yaml:4:5: tests[0].command: \"\" is empty (a value of 1 to 4096 bytes is "
              "required)");
}

static void test_args_list(void **state)
{
    s_fix_t *f = *state;
    s_ok(f, HEAD "args:\n  - --port\n  - 8080\n  - \"\"\n");
    assert_int_equal(f->spec.n_args, 3);
    assert_string_equal(f->spec.args[1], "8080");
    s_refused(f, HEAD "args: [a, ~]\n",
              "t.yaml:3:11: args[1]: expected a string, found nothing (write \"\" for an empty "
              "argument)");
    s_refused(f, HEAD "args: [a, [b]]\n", "t.yaml:3:12: args[1]: expected a string, found a list");
    s_refused(f, HEAD "args: --port\n",
              "t.yaml:3:1: args: expected a list of strings, found \"--port\"");
}

static void test_null_value_leaves_field_unset(void **state)
{
    s_fix_t *f = *state;
    s_ok(f, HEAD "workdir:\nselector: ~\nhealth: null\nstrategy:\n  bake:\n");
    assert_string_equal(f->spec.workdir, "");
    assert_int_equal(f->spec.n_selector, 0);
    assert_int_equal(f->spec.strategy.bake_ms, 30000);
}

static void test_thresholds_numbers_and_off(void **state)
{
    s_fix_t *f = *state;
    s_ok(f, HEAD "analysis: {max_restarts: 0, min_health_ratio: .5, max_error_ratio: off,"
                 " max_latency_vs_baseline: -1}\n");
    assert_true(f->spec.analysis.max_restarts == 0);
    assert_true(f->spec.analysis.min_health_ratio == 0.5);
    assert_true(f->spec.analysis.max_error_ratio == DS_SPEC_OFF);
    assert_true(f->spec.analysis.max_latency_vs_baseline == -1);
    s_refused(f, HEAD "analysis:\n  max_error_ratio: 5%\n",
              "t.yaml:4:3: analysis.max_error_ratio: \"5%\" is not a number (e.g. 0.05; off or a "
              "negative number turns the check off)");
    s_refused(f, HEAD "analysis:\n  max_restarts: .inf\n",
              "t.yaml:4:3: analysis.max_restarts: \".inf\" is not a number (e.g. 0.05; off or a "
              "negative number turns the check off)");
    s_refused(f, HEAD "analysis:\n  max_error_ratio: 0.5\n",
              "t.yaml:4:3: analysis.max_error_ratio: 0.5 needs metrics.path (the instance's "
              "Prometheus endpoint, e.g. \"/metrics\"), which is empty (set it, or make "
              "analysis.max_error_ratio negative to turn the check off)");
}

static void test_words_for_kind_and_outcome(void **state)
{
    s_fix_t *f = *state;
    s_ok(f, HEAD "health: {kind: tcp}\nanalysis: {on_inconclusive: promote}\n");
    assert_int_equal(f->spec.health.kind, DS_HEALTH_TCP);
    assert_int_equal(f->spec.analysis.on_inconclusive, DS_INCONCLUSIVE_PROMOTE);
    s_refused(f, HEAD "health:\n  kind: 1\n",
              "t.yaml:4:3: health.kind: \"1\" is not a kind of health check (none, http, tcp, "
              "exec)");
    s_refused(f, HEAD "analysis:\n  on_inconclusive: pass\n",
              "t.yaml:4:3: analysis.on_inconclusive: \"pass\" is not an outcome (fail, promote)");
}

/* ------------------------------------------------------------------ */
/* one test per class of error                                         */

static void test_unknown_field_suggests_a_near_name(void **state)
{
    s_fix_t *f = *state;
    s_refused(f, "artifact: /srv/a\ncomand: run\n",
              "t.yaml:2:1: unknown field \"comand\" (did you mean \"command\"?)");
    s_refused(f, HEAD "health:\n  intervl: 5s\n",
              "t.yaml:4:3: health: unknown field \"intervl\" (did you mean \"interval\"?)");
    s_refused(f, HEAD "strategy: {bake_sm: 5s}\n",
              "t.yaml:3:12: strategy: unknown field \"bake_sm\" (did you mean \"bake_ms\"?)");
}

static void test_unknown_field_lists_allowed_names(void **state)
{
    s_fix_t *f = *state;
    s_refused(f, HEAD "replicas: 3\n",
              "t.yaml:3:1: unknown field \"replicas\" (allowed: artifact, sha256, command, args, "
              "env, workdir, selector, health, tests, strategy, analysis, metrics, stop_grace)");
    s_refused(f, HEAD "metrics:\n  port: 9090\n",
              "t.yaml:4:3: metrics: unknown field \"port\" (allowed: path, interval, "
              "requests_metric, errors_metric, latency_metric)");
    s_refused(f, HEAD "<<: {a: 1}\n",
              "t.yaml:3:1: unknown field \"<<\" (allowed: artifact, sha256, command, args, env, "
              "workdir, selector, health, tests, strategy, analysis, metrics, stop_grace)");
}

static void test_wrong_types_name_what_was_found(void **state)
{
    s_fix_t *f = *state;
    s_refused(f, HEAD "strategy:\n  canary: [1, 2]\n",
              "t.yaml:4:3: strategy.canary: expected a number or a percentage like 25%, found a "
              "list");
    s_refused(f, "artifact: /srv/a\ncommand: {run: x}\n",
              "t.yaml:2:1: command: expected a string, found a mapping");
    s_refused(f, HEAD "health: http\n",
              "t.yaml:3:1: health: expected a mapping of health check fields, found \"http\"");
    s_refused(f, HEAD "health:\n  healthy_threshold: two\n",
              "t.yaml:4:3: health.healthy_threshold: \"two\" is not a whole number");
    s_refused(f, HEAD "strategy:\n  auto_promote: yes\n",
              "t.yaml:4:3: strategy.auto_promote: \"yes\" is not true or false");
    s_refused(f, HEAD "? [a, b]\n: c\n", "t.yaml:3:4: keys must be text, found a list");
}

static void test_duplicate_keys_refused(void **state)
{
    s_fix_t *f = *state;
    s_refused(f, HEAD "command: again\n", "t.yaml:3:1: command: given twice (first at line 2)");
    s_refused(f, HEAD "health:\n  timeout: 1s\n  timeout_ms: 500\n",
              "t.yaml:5:3: health.timeout_ms: already set at line 4 by health.timeout (give one "
              "of them)");
    s_refused(f, HEAD "health: {kind: http}\nhealth: {kind: tcp}\n",
              "t.yaml:4:1: health: given twice (first at line 3)");
}

static void test_validator_errors_get_the_fields_position(void **state)
{
    s_fix_t *f = *state;
    s_refused(f, HEAD "health:\n  kind: http\n  interval: 50ms\n",
              "t.yaml:5:3: health.interval_ms: 50 is out of range (100 ms to 1 h)");
    s_refused(f, HEAD "health:\n  kind: http\n  path: healthz\n",
              "t.yaml:5:3: health.path: \"healthz\" must start with \"/\" (e.g. \"/healthz\")");
    s_refused(f, "command: run\nartifact: ../up\n",
              "t.yaml:2:1: artifact: \"../up\" is a relative path with a \"..\" component (use an "
              "absolute path, a path below the current directory or an http(s) URL)");
    /* Not in the file at all: no position, but the file's name. */
    s_refused(f, "command: run\n",
              "t.yaml: artifact: \"\" is empty (a value of 1 to 1024 bytes is required)");
}

static void test_yaml_syntax_error_has_parser_position(void **state)
{
    s_fix_t *f = *state;
    s_refused(f, HEAD "health:\n\tkind: http\n",
              "t.yaml:4:1: YAML syntax error: tab character may not be used as indentation");
    s_refused(f, "artifact: /srv/a\ncommand: \"run\n",
              "t.yaml:2:11: YAML syntax error: double-quoted scalar without closing quote");
    assert_int_equal(s_parse(f, "artifact: [a, b\ncommand: run\n"), DS_EINVAL);
    assert_non_null(strstr(f->err, "YAML syntax error: flow sequence without a closing bracket"));
    assert_true(strncmp(f->err, "t.yaml:", 7) == 0);
}

static void test_not_yaml_refused(void **state)
{
    s_fix_t *f = *state;
    assert_int_equal(s_load(f, "not-yaml.png"), DS_EINVAL);
    assert_non_null(strstr(f->err, "not-yaml.png:1:1: the file is not UTF-8 text (byte 0x89)"));
    const char nul[] = "artifact: a\0b\n";
    assert_int_equal(
        ds_specfile_parse(nul, sizeof nul - 1, "n.yaml", &f->spec, f->arena, f->err, sizeof f->err),
        DS_EINVAL);
    assert_string_equal(f->err,
                        "n.yaml:1:12: the file contains a NUL byte (a spec file is YAML text)");
    s_refused(f, "just some words\n",
              "t.yaml:1:1: expected a mapping of spec fields (artifact, command, ...) at the top, "
              "found \"just some words\"");
    s_refused(f, "artifact: \"a\\0b\"\ncommand: run\n",
              "t.yaml:1:1: artifact: \"a?b\" contains a NUL character, which no field allows");
}

static void test_empty_file_refused(void **state)
{
    s_fix_t *f = *state;
    const char *want = "t.yaml: the file is empty (a spec needs at least artifact and command)";
    s_refused(f, "", want);
    s_refused(f, "# nothing yet\n\n", want);
    s_refused(f, "{}\n",
              "t.yaml: artifact: \"\" is empty (a value of 1 to 1024 bytes is "
              "required)");
}

static void test_top_level_list_refused(void **state)
{
    s_fix_t *f = *state;
    s_refused(f, "- artifact: /srv/a\n- command: run\n",
              "t.yaml:1:3: expected a mapping of spec fields (artifact, command, ...) at the top, "
              "found a list");
}

static void test_second_document_refused(void **state)
{
    s_fix_t *f = *state;
    s_refused(f, HEAD "---\nartifact: /srv/b\n",
              "t.yaml:4:1: a second YAML document (a spec file holds one; remove the \"---\")");
    s_ok(f, "---\n" HEAD "...\n");
}

static void test_aliases_refused(void **state)
{
    s_fix_t *f = *state;
    s_refused(f, "artifact: &a /srv/a\ncommand: *a\n",
              "t.yaml:2:1: command: aliases (*name) are not supported; write the value out");
}

static void test_lists_bounded_before_allocating(void **state)
{
    s_fix_t *f = *state;
    char text[4096];
    size_t o = (size_t)snprintf(text, sizeof text, HEAD "args: [");
    for (unsigned i = 0; i <= DS_MAX_ARGS; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%sa", i ? ", " : "");
    snprintf(text + o, sizeof text - o, "]\n");
    s_refused(f, text, "t.yaml:3:1: args: 65 items exceed the limit of 64");

    o = (size_t)snprintf(text, sizeof text, HEAD "tests:\n");
    for (unsigned i = 0; i <= DS_MAX_TESTS; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "  - {name: t%u, command: x}\n", i);
    s_refused(f, text, "t.yaml:3:1: tests: 17 items exceed the limit of 16");

    o = (size_t)snprintf(text, sizeof text, HEAD "selector:\n");
    for (unsigned i = 0; i <= DS_MAX_LABELS; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "  k%u: v\n", i);
    s_refused(f, text, "t.yaml:3:1: selector: 33 entries exceed the limit of 32");
}

static void test_long_strings_refused_before_allocating(void **state)
{
    s_fix_t *f = *state;
    size_t n = DS_MAX_CMD + 1;
    char *text = malloc(n + 64);
    assert_non_null(text);
    int o = snprintf(text, 64, "artifact: /srv/a\ncommand: ");
    memset(text + o, 'x', n);
    strcpy(text + o + n, "\n");
    assert_int_equal(s_parse(f, text), DS_EINVAL);
    assert_string_equal(f->err,
                        "t.yaml:2:1: command: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" "
                        "is 4097 bytes long (at most 4096)");
    free(text);
}

static void test_huge_file_refused(void **state)
{
    s_fix_t *f = *state;
    char dir[512], path[600];
    assert_int_equal(ds_test_mkdtemp("specfile", dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/huge.yaml", dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(HEAD "# ", fp);
    for (size_t i = 0; i < DS_SPECFILE_MAX_SIZE; i++)
        fputc('x', fp);
    fputc('\n', fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(ds_specfile_load(path, &f->spec, f->arena, f->err, sizeof f->err), DS_ETOOBIG);
    assert_non_null(strstr(f->err, "/huge.yaml: the file is 10486"));
    assert_non_null(strstr(f->err, " bytes, more than a spec file may have (1048576)"));
    ds_test_rmrf(dir);

    /* The same limit holds for text handed in directly. */
    char *big = calloc(1, DS_SPECFILE_MAX_SIZE + 2);
    assert_non_null(big);
    memset(big, '#', DS_SPECFILE_MAX_SIZE + 1);
    assert_int_equal(ds_specfile_parse(big, DS_SPECFILE_MAX_SIZE + 1, "big", &f->spec, f->arena,
                                       f->err, sizeof f->err),
                     DS_ETOOBIG);
    free(big);
}

static void test_missing_file_is_not_found(void **state)
{
    s_fix_t *f = *state;
    assert_int_equal(
        ds_specfile_load("/nonexistent/spec.yaml", &f->spec, f->arena, f->err, sizeof f->err),
        DS_ENOTFOUND);
    assert_string_equal(f->err,
                        "/nonexistent/spec.yaml: cannot open the spec file: No such file or "
                        "directory");
}

static void test_failure_resets_the_spec(void **state)
{
    s_fix_t *f = *state;
    s_refused(f, "artifact: /srv/a\ncommand: run\nargs: [a]\nstrategy: {bake: soon}\n",
              "t.yaml:4:12: strategy.bake: \"soon\" is not a duration (use 500ms, 5s, 1m)");
    ds_spec_t zero;
    ds_spec_init(&zero);
    assert_memory_equal(&f->spec, &zero, sizeof zero);
}

static void test_small_error_buffer_truncates(void **state)
{
    s_fix_t *f = *state;
    char small[12];
    const char *text = "comand: run\n";
    assert_int_equal(
        ds_specfile_parse(text, strlen(text), "t.yaml", &f->spec, f->arena, small, sizeof small),
        DS_EINVAL);
    assert_string_equal(small, "t.yaml:1:1:");
    assert_int_equal(ds_specfile_parse(text, strlen(text), NULL, &f->spec, f->arena, NULL, 0),
                     DS_EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, s_setup, s_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_full_file_maps_every_field),
        T(test_minimal_file_gets_defaults),
        T(test_annotated_example_is_valid),
        T(test_struct_names_of_spec_md_accepted),
        T(test_durations_take_units),
        T(test_bad_durations_refused),
        T(test_percentages_and_counts),
        T(test_env_and_selector_maps_keep_file_order),
        T(test_tests_list_maps_each_test),
        T(test_args_list),
        T(test_null_value_leaves_field_unset),
        T(test_thresholds_numbers_and_off),
        T(test_words_for_kind_and_outcome),
        T(test_unknown_field_suggests_a_near_name),
        T(test_unknown_field_lists_allowed_names),
        T(test_wrong_types_name_what_was_found),
        T(test_duplicate_keys_refused),
        T(test_validator_errors_get_the_fields_position),
        T(test_yaml_syntax_error_has_parser_position),
        T(test_not_yaml_refused),
        T(test_empty_file_refused),
        T(test_top_level_list_refused),
        T(test_second_document_refused),
        T(test_aliases_refused),
        T(test_lists_bounded_before_allocating),
        T(test_long_strings_refused_before_allocating),
        T(test_huge_file_refused),
        T(test_missing_file_is_not_found),
        T(test_failure_resets_the_spec),
        T(test_small_error_buffer_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
