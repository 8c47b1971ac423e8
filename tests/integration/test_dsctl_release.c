/*  tests/integration/test_dsctl_release.c - the dsctl binary's release
    commands (docs/dsctl.md) where no cluster is needed: bad usage and
    invalid specs exit 2 without contacting anyone, and every command
    exits 3 when no coordinator answers. Against a real cluster they are
    tested once the coordinator's handlers land. */
#include "tests/integration/cluster.h"

#define S_SLACK_MS 3000 /* process start and exit, slower under the sanitizers */

static void s_assert_err(const ds_cl_run_t *r, const char *needle)
{
    if (strncmp(r->err, "dsctl: ", 7) != 0 || !strstr(r->err, needle))
        fail_msg("stderr should start with \"dsctl: \" and mention \"%s\": %s", needle, r->err);
}

static void s_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/*  Runs dsctl with a 30 s timeout against members that never start: a
    command that tried to connect would take 30 s, so a quick exit 2
    proves it did not. */
static void s_usage(ds_cl_t *c, const char *needle, const char *const *args)
{
    const char *argv[DS_CL_ARGS];
    size_t n = 0;
    argv[n++] = "--timeout";
    argv[n++] = "30s";
    for (size_t i = 0; args[i]; i++) {
        assert_true(n < DS_CL_ARGS - 4);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    ds_cl_run_t r;
    if (ds_cl_dsctl_argv(c, &r, c->rpcs, argv) != 2)
        fail_msg("expected exit 2, got %d: %s", r.rc, r.err);
    s_assert_err(&r, needle);
    assert_string_equal(r.out, "");
    if (r.ms > 1000 + S_SLACK_MS)
        fail_msg("a usage error took %" PRId64 " ms (did it contact the cluster?)", r.ms);
}

#define s_usage_of(c, needle, ...) s_usage((c), (needle), (const char *const[]){__VA_ARGS__, NULL})

static void test_release_usage_errors_exit_2_without_contacting_anyone(void **state)
{
    ds_cl_t *c = ds_cl_new("dsctl-release-usage", 1, NULL); /* never started */
    *state = c;
    s_usage_of(c, "missing SERVICE", "deploy");
    s_usage_of(c, "no spec given", "deploy", "churn-model");
    s_usage_of(c, "--artifact needs --cmd", "deploy", "churn-model", "--artifact", "./m");
    s_usage_of(c, "--cmd needs --artifact", "deploy", "churn-model", "--cmd", "run");
    s_usage_of(c, "is not a service name", "deploy", "churn model", "--artifact", "/m", "--cmd",
               "run");
    s_usage_of(c, "--canary: \"ten\" is not a count or a percentage", "deploy", "churn-model",
               "--artifact", "/m", "--cmd", "run", "--canary", "ten");
    s_usage_of(c, "--max-parallel: strategy.max_parallel: 101 is out of range", "deploy",
               "churn-model", "--artifact", "/m", "--cmd", "run", "--max-parallel", "101%");
    s_usage_of(c, "--bake: \"30\" is not a duration (use 500ms, 5s, 1m)", "deploy", "churn-model",
               "--artifact", "/m", "--cmd", "run", "--bake", "30");
    s_usage_of(c, "--health-http and --health-exec conflict", "deploy", "churn-model", "--artifact",
               "/m", "--cmd", "run", "--health-http", "/h", "--health-exec", "true");
    s_usage_of(c, "--selector: \"zone\" is not KEY=VALUE", "deploy", "churn-model", "--artifact",
               "/m", "--cmd", "run", "--selector", "zone");
    s_usage_of(c, "--canary given twice", "deploy", "churn-model", "--artifact", "/m", "--cmd",
               "run", "--canary", "1", "--canary", "2");
    s_usage_of(c, "unknown flag \"--canery\"", "deploy", "churn-model", "--canery", "1");
    s_usage_of(c, "cannot open the spec file", "deploy", "churn-model", "--spec",
               "/nonexistent/spec.yaml");

    /* A bad spec file: file:line:col and the field; unknown fields are errors. */
    char path[700], needle[760];
    snprintf(path, sizeof path, "%s/bad.yaml", c->dir);
    s_write_file(path, "artifact: /srv/m\ncommand: run\nstrategy:\n  canary: 2\n  bake: 5x\n");
    snprintf(needle, sizeof needle, "%s:5:3: strategy.bake: \"5x\" is not a duration", path);
    s_usage_of(c, needle, "deploy", "churn-model", "--spec", path);
    s_write_file(path, "artifact: /srv/m\ncomand: run\n");
    snprintf(needle, sizeof needle, "%s:2:1: unknown field \"comand\"", path);
    s_usage_of(c, needle, "deploy", "churn-model", "--spec", path);
    /* A good file with a flag that breaks it: the flag is named. */
    s_write_file(path, "artifact: /srv/m\ncommand: run\nhealth: {kind: http}\n");
    s_usage_of(c, "--healthy-deadline: strategy.healthy_deadline_ms", "deploy", "churn-model",
               "--spec", path, "--healthy-deadline", "1s");

    s_usage_of(c, "--to: \"latest\" is not a version", "rollback", "churn-model", "--to", "latest");
    s_usage_of(c, "missing SERVICE", "promote");
    s_usage_of(c, "unexpected argument \"extra\"", "pause", "churn-model", "extra");
    s_usage_of(c, "--reason needs a value", "abort", "churn-model", "--reason");
    s_usage_of(c, "unexpected argument \"b\"", "status", "a", "b");
    s_usage_of(c, "--limit: \"0\" is not a number from 1", "history", "churn-model", "--limit",
               "0");
    s_usage_of(c, "unknown flag \"--follow\"", "workers", "--follow");
    s_usage_of(c, "--limit: \"x\" is not a number", "events", "--limit", "x");

    /* Help for the new commands is not an error. */
    ds_cl_run_t r;
    assert_int_equal(ds_cl_dsctl(c, &r, NULL, "deploy", "--help"), 0);
    assert_non_null(strstr(r.out, "usage: dsctl deploy SERVICE"));
    assert_non_null(strstr(r.out, "override the file's values"));
    assert_int_equal(ds_cl_dsctl(c, &r, NULL, "--help"), 0);
    assert_non_null(strstr(r.out, "  rollback SERVICE"));
    assert_non_null(strstr(r.out, "  events [--follow]"));
    ds_cl_passed(c);
}

static void test_release_commands_exit_3_when_no_coordinator_answers(void **state)
{
    ds_cl_t *c = ds_cl_new("dsctl-release-none", 2, NULL); /* never started */
    *state = c;
    const char *cmds[][6] = {
        {"deploy", "churn-model", "--artifact", "/srv/m", "--cmd", "run"},
        {"deploy", "churn-model", "--artifact", "/srv/m", "--cmd", "run"}, /* + --wait below */
        {"rollback", "churn-model", NULL},
        {"promote", "churn-model", NULL},
        {"pause", "churn-model", NULL},
        {"resume", "churn-model", NULL},
        {"abort", "churn-model", NULL},
        {"status", NULL},
        {"status", "churn-model", NULL},
        {"history", "churn-model", NULL},
        {"workers", NULL},
        {"events", NULL},
        {"events", "--follow", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char *args[12] = {"--timeout", "1s"};
        size_t n = 2;
        for (size_t k = 0; k < 6 && cmds[i][k]; k++)
            args[n++] = cmds[i][k];
        if (i == 1)
            args[n++] = "--wait";
        args[n] = NULL;
        ds_cl_run_t r;
        if (ds_cl_dsctl_argv(c, &r, c->rpcs, args) != 3)
            fail_msg("%s: expected exit 3, got %d: %s", cmds[i][0], r.rc, r.err);
        s_assert_err(&r, "no coordinator answered within 1s");
        assert_non_null(strstr(r.err, c->m[0].rpc));
        assert_non_null(strstr(r.err, c->m[1].rpc));
        assert_string_equal(r.out, "");
        if (r.ms > 1000 + S_SLACK_MS)
            fail_msg("%s with --timeout 1s ran %" PRId64 " ms", cmds[i][0], r.ms);
    }
    /* -o json prints nothing on stdout when there is no answer. */
    ds_cl_run_t r;
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "-o", "json", "--timeout", "500ms", "status"), 3);
    assert_string_equal(r.out, "");
    ds_cl_passed(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_release_usage_errors_exit_2_without_contacting_anyone,
                                  ds_cl_teardown),
        cmocka_unit_test_teardown(test_release_commands_exit_3_when_no_coordinator_answers,
                                  ds_cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
