/*  tests/unit/test_dsctl_deployflags.c - `dsctl deploy` flags to a release
    spec: every flag, percent forms, bad values with their messages,
    conflicts, flags over a spec file, and artifact paths. */
#include "dsctl/deployflags.h"
#include "dsctl/specfile.h"
#include "protocol/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    ds_arena_t *arena;
    ds_spec_t spec;
    ds_deployflags_t f;
    char err[DS_DEPLOYFLAGS_ERR_SIZE];
} s_fix_t;

static int s_setup(void **state)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fx->arena = ds_arena_new(DS_SPECFILE_ARENA_CAP);
    ds_spec_init(&fx->spec);
    fx->f.artifact = "/srv/models/churn";
    fx->f.cmd = "bin/serve --port ${PORT}";
    *state = fx;
    return fx->arena ? 0 : -1;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    ds_arena_destroy(&fx->arena);
    free(fx);
    return 0;
}

static int s_apply(s_fix_t *fx, const char *origin)
{
    return ds_deployflags_apply(&fx->f, origin, &fx->spec, fx->arena, fx->err, sizeof fx->err);
}

/*  Applies and expects DS_EINVAL with a message containing every needle. */
static void s_refused(s_fix_t *fx, const char *needle1, const char *needle2)
{
    assert_int_equal(s_apply(fx, NULL), DS_EINVAL);
    if (!strstr(fx->err, needle1) || (needle2 && !strstr(fx->err, needle2)))
        fail_msg("message \"%s\" should mention \"%s\" and \"%s\"", fx->err, needle1,
                 needle2 ? needle2 : "");
}

static void test_artifact_and_cmd_alone_give_a_defaulted_valid_spec(void **state)
{
    s_fix_t *fx = *state;
    assert_int_equal(s_apply(fx, NULL), 0);
    assert_string_equal(fx->spec.artifact, "/srv/models/churn");
    assert_string_equal(fx->spec.command, "bin/serve --port ${PORT}");
    assert_string_equal(fx->spec.sha256, "");
    assert_int_equal(fx->spec.health.kind, DS_HEALTH_NONE);
    assert_int_equal(fx->spec.strategy.canary, 1);
    assert_false(fx->spec.strategy.canary_percent);
    assert_int_equal(fx->spec.strategy.max_parallel, 1);
    assert_int_equal(fx->spec.strategy.bake_ms, 30000);
    assert_int_equal(fx->spec.strategy.healthy_deadline_ms, 300000);
    assert_int_equal(fx->spec.strategy.progress_deadline_ms, 600000);
    assert_true(fx->spec.strategy.auto_promote);
    assert_true(fx->spec.strategy.auto_revert);
    assert_int_equal(fx->spec.n_env, 0);
    assert_int_equal(fx->spec.n_selector, 0);
    assert_int_equal(fx->err[0], '\0');
}

static void test_every_flag_lands_in_its_field(void **state)
{
    s_fix_t *fx = *state;
    ds_deployflags_t *f = &fx->f;
    f->sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    f->canary = "3";
    f->max_parallel = "25%";
    f->bake = "1m30s";
    f->healthy_deadline = "2m";
    f->progress_deadline = "20m";
    f->health_http = "/ready";
    f->no_auto_promote = true;
    f->env[f->n_env++] = "LOG_LEVEL=debug";
    f->env[f->n_env++] = "EMPTY=";
    f->env[f->n_env++] = "EQ=a=b";
    f->selector[f->n_selector++] = "zone=eu-west-1a";
    f->selector[f->n_selector++] = "gpu=true";
    assert_int_equal(s_apply(fx, NULL), 0);
    ds_spec_t *sp = &fx->spec;
    assert_string_equal(sp->sha256, f->sha256);
    assert_int_equal(sp->strategy.canary, 3);
    assert_false(sp->strategy.canary_percent);
    assert_int_equal(sp->strategy.max_parallel, 25);
    assert_true(sp->strategy.max_parallel_percent);
    assert_int_equal(sp->strategy.bake_ms, 90000);
    assert_int_equal(sp->strategy.healthy_deadline_ms, 120000);
    assert_int_equal(sp->strategy.progress_deadline_ms, 1200000);
    assert_int_equal(sp->health.kind, DS_HEALTH_HTTP);
    assert_string_equal(sp->health.path, "/ready");
    assert_false(sp->strategy.auto_promote);
    assert_true(sp->strategy.auto_revert);
    assert_int_equal(sp->n_env, 3);
    assert_string_equal(sp->env[0].key, "LOG_LEVEL");
    assert_string_equal(sp->env[0].value, "debug");
    assert_string_equal(sp->env[1].key, "EMPTY");
    assert_string_equal(sp->env[1].value, "");
    assert_string_equal(sp->env[2].key, "EQ");
    assert_string_equal(sp->env[2].value, "a=b");
    assert_int_equal(sp->n_selector, 2);
    assert_string_equal(sp->selector[0].key, "zone");
    assert_string_equal(sp->selector[0].value, "eu-west-1a");
    assert_string_equal(sp->selector[1].key, "gpu");
}

static void test_health_flags_choose_the_kind(void **state)
{
    s_fix_t *fx = *state;
    fx->f.health_tcp = true;
    assert_int_equal(s_apply(fx, NULL), 0);
    assert_int_equal(fx->spec.health.kind, DS_HEALTH_TCP);
    assert_string_equal(fx->spec.health.path, "");

    ds_spec_init(&fx->spec);
    fx->f.health_tcp = false;
    fx->f.health_exec = "curl -fsS localhost:${PORT}/healthz";
    assert_int_equal(s_apply(fx, NULL), 0);
    assert_int_equal(fx->spec.health.kind, DS_HEALTH_EXEC);
    assert_string_equal(fx->spec.health.command, "curl -fsS localhost:${PORT}/healthz");
    assert_string_equal(fx->spec.health.path, "");
}

static void test_percent_forms_of_canary_and_max_parallel(void **state)
{
    s_fix_t *fx = *state;
    fx->f.canary = "10%";
    fx->f.max_parallel = "100%";
    assert_int_equal(s_apply(fx, NULL), 0);
    assert_int_equal(fx->spec.strategy.canary, 10);
    assert_true(fx->spec.strategy.canary_percent);
    assert_int_equal(fx->spec.strategy.max_parallel, 100);
    assert_true(fx->spec.strategy.max_parallel_percent);
}

static void test_bad_counts_and_percentages_name_the_flag(void **state)
{
    s_fix_t *fx = *state;
    const struct {
        const char *value;
        const char *needle;
    } cases[] = {
        {"abc", "is not a count or a percentage"},
        {"", "is not a count or a percentage"},
        {"%", "is not a count or a percentage"},
        {"-1", "is not a count or a percentage"},
        {"1.5", "is not a count or a percentage"},
        {"3 ", "is not a count or a percentage"},
        {"0", "is not allowed"},
        {"0%", "is not allowed"},
        {"150%", "strategy.canary: 150 is out of range"},
        {"5000", "strategy.canary: 5000 is out of range"},
        {"99999999999", "is too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ds_spec_init(&fx->spec);
        fx->f.canary = cases[i].value;
        s_refused(fx, "--canary: ", cases[i].needle);
    }
    ds_spec_init(&fx->spec);
    fx->f.canary = NULL;
    fx->f.max_parallel = "many";
    s_refused(fx, "--max-parallel: \"many\" is not a count or a percentage", NULL);
}

static void test_bad_durations_name_the_flag_and_the_units(void **state)
{
    s_fix_t *fx = *state;
    fx->f.bake = "5x";
    s_refused(fx, "--bake: \"5x\" is not a duration (use 500ms, 5s, 1m)", NULL);
    ds_spec_init(&fx->spec);
    fx->f.bake = "30"; /* a unit is required */
    s_refused(fx, "--bake: \"30\" is not a duration", NULL);
    ds_spec_init(&fx->spec);
    fx->f.bake = "0s"; /* 0 would silently mean the default */
    s_refused(fx, "--bake: \"0s\" is not allowed", "1ms");
    ds_spec_init(&fx->spec);
    fx->f.bake = NULL;
    fx->f.healthy_deadline = "soon";
    s_refused(fx, "--healthy-deadline: \"soon\" is not a duration", NULL);
    ds_spec_init(&fx->spec);
    fx->f.healthy_deadline = NULL;
    fx->f.progress_deadline = "0ms";
    s_refused(fx, "--progress-deadline: \"0ms\" is not allowed", NULL);
    ds_spec_init(&fx->spec);
    fx->f.progress_deadline = "500ms"; /* below the validator's 1 s */
    s_refused(fx, "--progress-deadline: strategy.progress_deadline_ms", NULL);
    ds_spec_init(&fx->spec);
    fx->f.progress_deadline = NULL;
    fx->f.bake = "8d"; /* more than DS_MAX_DURATION_MS */
    s_refused(fx, "--bake", NULL);
}

static void test_a_long_healthy_deadline_raises_the_progress_deadline(void **state)
{
    s_fix_t *fx = *state;
    fx->f.healthy_deadline = "20m";
    assert_int_equal(s_apply(fx, NULL), 0);
    assert_int_equal(fx->spec.strategy.healthy_deadline_ms, 1200000);
    assert_int_equal(fx->spec.strategy.progress_deadline_ms, 1200000);
    /* ... unless --progress-deadline says otherwise: then the validator decides. */
    ds_spec_init(&fx->spec);
    fx->f.progress_deadline = "15m";
    s_refused(fx, "--healthy-deadline: strategy.healthy_deadline_ms", NULL);
}

static void test_bad_pairs_are_refused_with_the_form(void **state)
{
    s_fix_t *fx = *state;
    fx->f.env[fx->f.n_env++] = "NOEQUALS";
    s_refused(fx, "--env: \"NOEQUALS\" is not KEY=VALUE (e.g. --env LOG_LEVEL=debug)", NULL);
    ds_spec_init(&fx->spec);
    fx->f.env[0] = "=value";
    s_refused(fx, "--env: \"=value\" has no KEY", NULL);
    ds_spec_init(&fx->spec);
    fx->f.env[0] = "PORT=8080";
    s_refused(fx, "--env: env[0].key: \"PORT\" is reserved", NULL);
    ds_spec_init(&fx->spec);
    fx->f.env[0] = "A=1";
    fx->f.env[fx->f.n_env++] = "A=2";
    s_refused(fx, "--env: \"A\" is given twice", NULL);
    ds_spec_init(&fx->spec);
    fx->f.n_env = 0;
    fx->f.selector[fx->f.n_selector++] = "zone";
    s_refused(fx, "--selector: \"zone\" is not KEY=VALUE (e.g. --selector zone=eu-west-1a)", NULL);
    ds_spec_init(&fx->spec);
    fx->f.selector[0] = "bad key=x";
    s_refused(fx, "--selector: selector[0].key", NULL);
}

static void test_other_values_the_validator_refuses_name_the_flag(void **state)
{
    s_fix_t *fx = *state;
    fx->f.sha256 = "abc";
    s_refused(fx, "--sha256: sha256: \"abc\" is not a sha256 digest", NULL);
    ds_spec_init(&fx->spec);
    fx->f.sha256 = NULL;
    fx->f.health_http = "healthz";
    s_refused(fx, "--health-http: health.path: \"healthz\" must start with \"/\"", NULL);
    ds_spec_init(&fx->spec);
    fx->f.health_http = NULL;
    fx->f.artifact = "ftp://host/x";
    s_refused(fx, "--artifact: artifact: \"ftp://host/x\" uses an unsupported scheme", NULL);
    ds_spec_init(&fx->spec);
    fx->f.artifact = "/m";
    fx->f.cmd = "   ";
    s_refused(fx, "--cmd: command", NULL);
}

static void test_conflicts_and_missing_flags(void **state)
{
    s_fix_t *fx = *state;
    fx->f.health_http = "/h";
    fx->f.health_tcp = true;
    s_refused(fx, "--health-http and --health-tcp conflict (give one health check)", NULL);
    fx->f.health_http = NULL;
    fx->f.health_exec = "true";
    s_refused(fx, "--health-tcp and --health-exec conflict", NULL);
    fx->f.health_tcp = false;
    fx->f.health_exec = NULL;

    fx->f.cmd = NULL;
    s_refused(fx, "--artifact needs --cmd CMD", "--spec FILE");
    fx->f.cmd = "x";
    fx->f.artifact = NULL;
    s_refused(fx, "--cmd needs --artifact PATH|URL", "--spec FILE");
    fx->f.cmd = NULL;
    s_refused(fx, "no spec given: use --spec FILE, or --artifact PATH|URL and --cmd CMD", NULL);
}

static const char s_file[] = "artifact: /srv/a\n"
                             "command: run\n"
                             "env: {A: file, B: file}\n"
                             "selector: {zone: a}\n"
                             "health: {kind: http, path: /live}\n"
                             "strategy: {canary: 2, bake: 10s}\n";

static void test_flags_override_a_spec_file_per_value_and_per_key(void **state)
{
    s_fix_t *fx = *state;
    char perr[DS_SPECFILE_ERR_SIZE];
    assert_int_equal(ds_specfile_parse(s_file, strlen(s_file), "churn.yaml", &fx->spec, fx->arena,
                                       perr, sizeof perr),
                     0);
    memset(&fx->f, 0, sizeof fx->f);
    /* Nothing given: the file as it is. */
    assert_int_equal(s_apply(fx, "churn.yaml"), 0);
    assert_string_equal(fx->spec.artifact, "/srv/a");
    assert_int_equal(fx->spec.strategy.canary, 2);

    fx->f.cmd = "run --fast";
    fx->f.canary = "50%";
    fx->f.health_tcp = true;
    fx->f.env[fx->f.n_env++] = "B=flag";
    fx->f.env[fx->f.n_env++] = "C=flag";
    fx->f.selector[fx->f.n_selector++] = "zone=b";
    assert_int_equal(s_apply(fx, "churn.yaml"), 0);
    ds_spec_t *sp = &fx->spec;
    assert_string_equal(sp->artifact, "/srv/a");
    assert_string_equal(sp->command, "run --fast");
    assert_int_equal(sp->strategy.canary, 50);
    assert_true(sp->strategy.canary_percent);
    assert_int_equal(sp->strategy.bake_ms, 10000);
    assert_int_equal(sp->health.kind, DS_HEALTH_TCP);
    assert_string_equal(sp->health.path, ""); /* the file's http path went with its kind */
    assert_int_equal(sp->n_env, 3);
    assert_string_equal(sp->env[0].value, "file");
    assert_string_equal(sp->env[1].key, "B");
    assert_string_equal(sp->env[1].value, "flag");
    assert_string_equal(sp->env[2].key, "C");
    assert_int_equal(sp->n_selector, 1);
    assert_string_equal(sp->selector[0].value, "b");
}

static void test_with_a_spec_file_no_flag_is_required_and_errors_name_the_file(void **state)
{
    s_fix_t *fx = *state;
    char perr[DS_SPECFILE_ERR_SIZE];
    assert_int_equal(ds_specfile_parse(s_file, strlen(s_file), "churn.yaml", &fx->spec, fx->arena,
                                       perr, sizeof perr),
                     0);
    memset(&fx->f, 0, sizeof fx->f);
    fx->f.artifact = "/srv/b"; /* --artifact alone overrides; no --cmd needed */
    assert_int_equal(s_apply(fx, "churn.yaml"), 0);
    assert_string_equal(fx->spec.artifact, "/srv/b");
    assert_string_equal(fx->spec.command, "run");
    /* A relation broken by a flag and a file value: the flag is named. */
    fx->f.healthy_deadline = "1s";
    fx->f.artifact = NULL;
    assert_int_equal(s_apply(fx, "churn.yaml"), DS_EINVAL);
    assert_non_null(strstr(fx->err, "--healthy-deadline: strategy.healthy_deadline_ms"));
}

static void test_artifact_paths_are_made_absolute(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(ds_deployflags_absolute("model", "/srv/ml", out, sizeof out), 0);
    assert_string_equal(out, "/srv/ml/model");
    assert_int_equal(ds_deployflags_absolute("./model/v3.tar.gz", "/srv/ml/", out, sizeof out), 0);
    assert_string_equal(out, "/srv/ml/model/v3.tar.gz");
    assert_int_equal(ds_deployflags_absolute(".//./m", "/", out, sizeof out), 0);
    assert_string_equal(out, "/m");
    assert_int_equal(ds_deployflags_absolute(".", "/srv/ml", out, sizeof out), 0);
    assert_string_equal(out, "/srv/ml");
    assert_int_equal(ds_deployflags_absolute("../m", "/srv/ml", out, sizeof out), 0);
    assert_string_equal(out, "/srv/ml/../m");
    assert_int_equal(ds_deployflags_absolute("/abs/m", "/srv", out, sizeof out), 0);
    assert_string_equal(out, "/abs/m");
    assert_int_equal(ds_deployflags_absolute("https://h/m.tar.gz", "/srv", out, sizeof out), 0);
    assert_string_equal(out, "https://h/m.tar.gz");
    assert_int_equal(
        ds_deployflags_absolute("model", "/a/very/long/base/directory/name/here", out, 16),
        DS_ETOOBIG);
    assert_string_equal(out, "");
}

#define S_T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        S_T(test_artifact_and_cmd_alone_give_a_defaulted_valid_spec),
        S_T(test_every_flag_lands_in_its_field),
        S_T(test_health_flags_choose_the_kind),
        S_T(test_percent_forms_of_canary_and_max_parallel),
        S_T(test_bad_counts_and_percentages_name_the_flag),
        S_T(test_bad_durations_name_the_flag_and_the_units),
        S_T(test_a_long_healthy_deadline_raises_the_progress_deadline),
        S_T(test_bad_pairs_are_refused_with_the_form),
        S_T(test_other_values_the_validator_refuses_name_the_flag),
        S_T(test_conflicts_and_missing_flags),
        S_T(test_flags_override_a_spec_file_per_value_and_per_key),
        S_T(test_with_a_spec_file_no_flag_is_required_and_errors_name_the_file),
        cmocka_unit_test(test_artifact_paths_are_made_absolute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
