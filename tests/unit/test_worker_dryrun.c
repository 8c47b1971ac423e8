/*  tests/unit/test_worker_dryrun.c - the reconciler's dry runs (dsctl
    deploy --dry-run on one worker) with real processes (ds_testsvc), real
    sockets on 127.0.0.1, a real worker store and release directories in a
    temporary directory.

    A dry run must report its result only once its process is gone and its
    scratch directory deleted, and must never touch the instance of the
    same service that serves. Every wait steps the reconciler every 20 ms
    for at most 10 s; every process seen (status rows, and any process
    whose working directory is under DATA/dryrun/) is killed by pid in the
    teardown, whatever happened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol/error.h"
#include "protocol/messages.h"
#include "storage/workerstore.h"
#include "tests/testutil.h"
#include "worker/reconcile.h"

#define S_MAX_PIDS 64
#define S_WAIT_MS  10000u
#define S_STEP_MS  20u

typedef struct {
    char dir[512];
    char data[600];
    char art[600];
    char dry[700]; /* DATA/dryrun */
    ds_workerstore_t *ws;
    ds_reconciler_t *rec;
    uint16_t port_min;
    pid_t pids[S_MAX_PIDS];
    size_t n_pids;
    ds_instance_status_t rows[16];
    size_t n_rows;
    ds_dry_run_result_t results[DS_RECONCILER_MAX_DRY_RUNS];
    size_t n_results;
    size_t dry_seen; /* processes seen running under DATA/dryrun/ */
} fx_t;

static void s_remember(fx_t *fx, pid_t pid)
{
    if (pid <= 0)
        return;
    for (size_t i = 0; i < fx->n_pids; i++)
        if (fx->pids[i] == pid)
            return;
    if (fx->n_pids < S_MAX_PIDS)
        fx->pids[fx->n_pids++] = pid;
}

/*  Live processes whose working directory is under DATA/dryrun/ (the dry
    run's instance and its tests); each is remembered for the teardown. */
static size_t s_dry_procs(fx_t *fx)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    size_t n = 0, len = strlen(fx->dry);
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1)
            continue;
        char link[64], cwd[1024];
        snprintf(link, sizeof link, "/proc/%ld/cwd", pid);
        ssize_t m = readlink(link, cwd, sizeof cwd - 1);
        if (m <= 0)
            continue;
        cwd[m] = '\0';
        if (strncmp(cwd, fx->dry, len) == 0 && cwd[len] == '/' && ds_test_pid_alive((pid_t)pid)) {
            s_remember(fx, (pid_t)pid);
            n++;
        }
    }
    closedir(d);
    return n;
}

static void s_look(fx_t *fx)
{
    fx->n_rows = ds_reconciler_status(fx->rec, fx->rows, 16);
    for (size_t i = 0; i < fx->n_rows; i++)
        s_remember(fx, (pid_t)fx->rows[i].pid);
    fx->n_results = ds_reconciler_dry_run_results(fx->rec, fx->results, DS_RECONCILER_MAX_DRY_RUNS);
    size_t procs = s_dry_procs(fx);
    fx->dry_seen = procs > fx->dry_seen ? procs : fx->dry_seen;
}

static const ds_instance_status_t *s_row(fx_t *fx, uint64_t version)
{
    for (size_t i = 0; i < fx->n_rows; i++)
        if (fx->rows[i].version == version)
            return &fx->rows[i];
    return NULL;
}

static const ds_dry_run_result_t *s_result(fx_t *fx, uint64_t id)
{
    for (size_t i = 0; i < fx->n_results; i++)
        if (fx->results[i].id == id)
            return &fx->results[i];
    return NULL;
}

typedef bool (*s_pred_fn)(fx_t *fx, void *arg);

/*  Steps every 20 ms until pred holds (true) or 10 s passed (false). */
static bool s_until(fx_t *fx, s_pred_fn pred, void *arg)
{
    uint64_t end = ds_test_now_ms() + S_WAIT_MS;
    for (unsigned i = 0; i < S_WAIT_MS / S_STEP_MS + 10u; i++) {
        ds_reconciler_step(fx->rec, ds_test_now_ms());
        s_look(fx);
        if (pred(fx, arg))
            return true;
        if (ds_test_now_ms() >= end)
            return false;
        ds_test_sleep_ms(S_STEP_MS);
    }
    return false;
}

static bool s_running_v1(fx_t *fx, void *arg)
{
    (void)arg;
    const ds_instance_status_t *r = s_row(fx, 1);
    return r && r->state == DS_INST_RUNNING && r->health == DS_HEALTH_PASSING;
}

static bool s_has_result(fx_t *fx, void *arg)
{
    return s_result(fx, *(const uint64_t *)arg) != NULL;
}

static bool s_no_results(fx_t *fx, void *arg)
{
    (void)arg;
    return fx->n_results == 0;
}

static bool s_dry_running(fx_t *fx, void *arg)
{
    (void)arg;
    return fx->dry_seen > 0 && s_dry_procs(fx) > 0;
}

static void s_dump(fx_t *fx)
{
    for (size_t i = 0; i < fx->n_rows; i++)
        fprintf(stderr, "  row %s v%" PRIu64 " state=%u health=%u pid=%u reason=%s\n",
                fx->rows[i].service, fx->rows[i].version, fx->rows[i].state, fx->rows[i].health,
                fx->rows[i].pid, fx->rows[i].reason);
    for (size_t i = 0; i < fx->n_results; i++)
        fprintf(stderr, "  dry run %" PRIu64 " %s passed=%d reason=%s\n", fx->results[i].id,
                fx->results[i].service, fx->results[i].passed, fx->results[i].reason);
}

/*  Waits for the result of dry run `id`. */
static const ds_dry_run_result_t *s_wait_result(fx_t *fx, uint64_t id)
{
    if (!s_until(fx, s_has_result, &id)) {
        s_dump(fx);
        fail_msg("dry run %" PRIu64 " has no result", id);
    }
    return s_result(fx, id);
}

/*  A spec that runs ds_testsvc with `flags` from the artifact directory,
    http health on /healthz. */
typedef struct {
    ds_spec_t spec;
    char command[1024];
    char artifact[800];
    ds_test_spec_t tests[2];
} s_spec_t;

static void s_spec(s_spec_t *s, const fx_t *fx, const char *flags)
{
    ds_spec_init(&s->spec);
    snprintf(s->command, sizeof s->command, "%s --port ${PORT} %s", DS_TESTSVC_BIN, flags);
    snprintf(s->artifact, sizeof s->artifact, "%s", fx->art);
    s->spec.artifact = s->artifact;
    s->spec.command = s->command;
    s->spec.health.kind = DS_HEALTH_HTTP;
    s->spec.health.interval_ms = 100;
    s->spec.health.timeout_ms = 100;
    s->spec.health.healthy_threshold = 1;
    s->spec.health.unhealthy_threshold = 2;
    s->spec.health.start_grace_ms = 1;
    s->spec.strategy.healthy_deadline_ms = 3000;
    s->spec.stop_grace_ms = 2000;
    ds_spec_apply_defaults(&s->spec);
}

static void s_with_tests(s_spec_t *s, const ds_test_spec_t *tests, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        s->tests[i] = tests[i];
    s->spec.tests = s->tests;
    s->spec.n_tests = n;
}

static void s_assign(fx_t *fx, uint64_t gen, const char *service, uint64_t version,
                     const s_spec_t *s)
{
    ds_assigned_release_t rel = {.service = (char *)service, .version = version, .spec = s->spec};
    ds_assignment_t a = {.generation = gen, .n_releases = 1, .releases = &rel};
    char err[512];
    if (ds_reconciler_set_desired(fx->rec, &a, err, sizeof err) != 0)
        fail_msg("set_desired: %s", err);
}

/*  "web" v1 serving: returns its pid. */
static pid_t s_serve_v1(fx_t *fx)
{
    s_spec_t s;
    s_spec(&s, fx, "");
    s_assign(fx, 1, "web", 1, &s);
    if (!s_until(fx, s_running_v1, NULL)) {
        s_dump(fx);
        fail_msg("web v1 is not running");
    }
    pid_t pid = (pid_t)s_row(fx, 1)->pid;
    assert_true(pid > 0);
    return pid;
}

static void s_dry_run(fx_t *fx, uint64_t id, const s_spec_t *s)
{
    char err[512] = "";
    if (ds_reconciler_dry_run(fx->rec, id, "web", &s->spec, err, sizeof err) != 0)
        fail_msg("dry run: %s", err);
}

static void s_path(char *out, size_t len, const char *a, const char *b)
{
    snprintf(out, len, "%s/%s", a, b);
}

static void s_assert_left_nothing(fx_t *fx, uint64_t id)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%" PRIu64, fx->dry, id);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(s_dry_procs(fx), 0);
    for (size_t i = 0; i < fx->n_pids; i++)
        if (s_row(fx, 1) == NULL || fx->pids[i] != (pid_t)s_row(fx, 1)->pid)
            assert_false(ds_test_pid_alive(fx->pids[i]));
    /* No release of version 0, no logs of it. */
    s_path(path, sizeof path, fx->data, "releases/web/0");
    assert_int_not_equal(access(path, F_OK), 0);
    s_path(path, sizeof path, fx->data, "logs/web/0");
    assert_int_not_equal(access(path, F_OK), 0);
}

/*  The serving instance is untouched: still v1 only, same pid, running;
    the store's current version is still 1. */
static void s_assert_serving_untouched(fx_t *fx, pid_t pid)
{
    s_look(fx);
    assert_int_equal(fx->n_rows, 1);
    const ds_instance_status_t *r = s_row(fx, 1);
    assert_non_null(r);
    assert_int_equal(r->pid, (uint32_t)pid);
    assert_int_equal(r->state, DS_INST_RUNNING);
    assert_int_equal(r->restarts, 0);
    assert_true(ds_test_pid_alive(pid));
    uint64_t cur = 0, prev = 0;
    assert_int_equal(ds_workerstore_current(fx->ws, "web", &cur, &prev), 0);
    assert_int_equal(cur, 1);
    assert_int_equal(ds_reconciler_generation(fx->rec), 1);
}

/* ---- fixture ------------------------------------------------------------------ */

static void s_open_rec(fx_t *fx)
{
    ds_reconciler_opts_t o = {.data_dir = fx->data,
                              .store = fx->ws,
                              .port_min = fx->port_min,
                              .port_max = (uint16_t)(fx->port_min + 19u)};
    char err[512];
    if (ds_reconciler_new(&o, ds_test_now_ms(), &fx->rec, err, sizeof err) != 0)
        fail_msg("reconciler: %s", err);
}

static int s_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(ds_test_mkdtemp("wdry", fx->dir, sizeof fx->dir), 0);
    snprintf(fx->data, sizeof fx->data, "%s/data", fx->dir);
    snprintf(fx->art, sizeof fx->art, "%s/artifact", fx->dir);
    snprintf(fx->dry, sizeof fx->dry, "%s/dryrun", fx->data);
    assert_int_equal(mkdir(fx->data, 0700), 0);
    assert_int_equal(mkdir(fx->art, 0755), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/README", fx->art);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("a release\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/store", fx->data);
    ds_store_opts_t so;
    ds_store_opts_default(&so);
    so.nosync = true;
    char err[256];
    if (ds_workerstore_open(&fx->ws, path, &so, err, sizeof err))
        fail_msg("store: %s", err);
    /* 20 ports of its own, free now and below the ephemeral range. */
    if ((fx->port_min = ds_test_port_block(20)) == 0)
        fail_msg("no 20 free ports for the instances");
    s_open_rec(fx);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *fx = *state;
    if (fx->rec) {
        s_look(fx);
        ds_reconciler_destroy(&fx->rec, DS_ON_EXIT_STOP);
    }
    (void)s_dry_procs(fx);
    for (size_t i = 0; i < fx->n_pids; i++) {
        if (ds_test_pid_alive(fx->pids[i])) {
            kill(-fx->pids[i], SIGKILL);
            kill(fx->pids[i], SIGKILL);
        }
        int st;
        (void)waitpid(fx->pids[i], &st, WNOHANG);
    }
    ds_workerstore_destroy(&fx->ws);
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_dry_run_passes_its_tests_and_leaves_the_serving_instance_alone(void **state)
{
    fx_t *fx = *state;
    pid_t serving = s_serve_v1(fx);
    s_spec_t s;
    s_spec(&s, fx, "");
    char marker[700];
    snprintf(marker, sizeof marker, "%s/env.txt", fx->dir);
    char cmd[1200];
    snprintf(
        cmd, sizeof cmd,
        "test \"$PORT\" -gt 0 && test \"$DS_VERSION\" = 0 && test -f \"$DS_RELEASE_DIR/README\" "
        "&& echo \"$PORT $DS_RELEASE_DIR\" > '%s'",
        marker);
    const ds_test_spec_t tests[] = {{"env", cmd, 5000}, {"again", "true", 5000}};
    s_with_tests(&s, tests, 2);
    s_dry_run(fx, 1, &s);
    /* Asking again for the same id changes nothing. */
    s_dry_run(fx, 1, &s);

    const ds_dry_run_result_t *r = s_wait_result(fx, 1);
    assert_true(r->passed);
    assert_string_equal(r->service, "web");
    assert_string_equal(r->reason, "healthy; 2 tests passed");
    assert_true(fx->dry_seen > 0); /* it did run */

    /* It ran in its scratch directory on a port of the range that is not
       the serving one's; now nothing of it is left. */
    FILE *f = fopen(marker, "r");
    assert_non_null(f);
    unsigned port = 0;
    char dir[800] = "";
    assert_int_equal(fscanf(f, "%u %799s", &port, dir), 2);
    fclose(f);
    assert_true(port >= fx->port_min && port <= fx->port_min + 19u);
    assert_int_not_equal(port, s_row(fx, 1)->port);
    char want[800];
    snprintf(want, sizeof want, "%s/1/release", fx->dry);
    assert_string_equal(dir, want);
    s_assert_left_nothing(fx, 1);
    s_assert_serving_untouched(fx, serving);

    /* The result stays while the leader lists the job, then goes. */
    uint64_t keep = 1;
    ds_reconciler_dry_run_keep(fx->rec, &keep, 1);
    ds_reconciler_step(fx->rec, ds_test_now_ms());
    s_look(fx);
    assert_non_null(s_result(fx, 1));
    ds_reconciler_dry_run_keep(fx->rec, NULL, 0);
    assert_true(s_until(fx, s_no_results, NULL));
    s_assert_serving_untouched(fx, serving);
}

static void test_dry_run_failing_test_reports_exit_code_and_output(void **state)
{
    fx_t *fx = *state;
    pid_t serving = s_serve_v1(fx);
    s_spec_t s;
    s_spec(&s, fx, "");
    const ds_test_spec_t tests[] = {
        {"first", "true", 5000},
        {"smoke", "echo checked port ${PORT}; echo boom >&2; exit 7", 5000},
    };
    s_with_tests(&s, tests, 2);
    s_dry_run(fx, 42, &s);
    const ds_dry_run_result_t *r = s_wait_result(fx, 42);
    assert_false(r->passed);
    assert_non_null(strstr(r->reason, "release test smoke failed with exit code 7"));
    assert_non_null(strstr(r->reason, "boom"));
    assert_non_null(strstr(r->reason, "checked port"));
    s_assert_left_nothing(fx, 42);
    s_assert_serving_untouched(fx, serving);
}

static void test_dry_run_of_an_unhealthy_release_fails_by_its_deadline(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "--unhealthy");
    s.spec.strategy.healthy_deadline_ms = 1000;
    const ds_test_spec_t tests[] = {{"never", "true", 5000}};
    s_with_tests(&s, tests, 1);
    s_dry_run(fx, 3, &s);
    const ds_dry_run_result_t *r = s_wait_result(fx, 3);
    assert_false(r->passed);
    assert_non_null(strstr(r->reason, "not healthy within healthy_deadline_ms 1000"));
    assert_non_null(strstr(r->reason, "503"));
    s_assert_left_nothing(fx, 3);
    assert_int_equal(fx->n_rows, 0); /* a dry run is no instance */
}

static void test_forgotten_dry_run_is_stopped_and_cleaned_up(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "");
    const ds_test_spec_t tests[] = {{"slow", "sleep 30", 60000}};
    s_with_tests(&s, tests, 1);
    s_dry_run(fx, 5, &s);
    assert_true(s_until(fx, s_dry_running, NULL));
    /* The leader stopped listing it (it timed out there, or lost its
       leadership): cancelled, stopped, deleted, and never reported. */
    ds_reconciler_dry_run_keep(fx->rec, NULL, 0);
    uint64_t end = ds_test_now_ms() + S_WAIT_MS;
    while (ds_test_now_ms() < end) {
        ds_reconciler_step(fx->rec, ds_test_now_ms());
        s_look(fx);
        assert_int_equal(fx->n_results, 0);
        char path[800];
        snprintf(path, sizeof path, "%s/5", fx->dry);
        if (access(path, F_OK) != 0 && s_dry_procs(fx) == 0)
            break;
        ds_test_sleep_ms(S_STEP_MS);
    }
    s_assert_left_nothing(fx, 5);
}

static void test_refused_dry_run_reports_why_at_once(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "");
    s.spec.command = "";
    char err[512] = "";
    assert_int_equal(ds_reconciler_dry_run(fx->rec, 9, "web", &s.spec, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "command"));
    s_look(fx);
    const ds_dry_run_result_t *r = s_result(fx, 9);
    assert_non_null(r);
    assert_false(r->passed);
    assert_non_null(strstr(r->reason, "refused by the worker"));
    s_assert_left_nothing(fx, 9);
}

static void test_dsworker_stop_ends_a_dry_run_under_way(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "--ignore-term");
    const ds_test_spec_t tests[] = {{"slow", "sleep 30", 60000}};
    s_with_tests(&s, tests, 1);
    s_dry_run(fx, 6, &s);
    assert_true(s_until(fx, s_dry_running, NULL));
    /* Even with KEEP: nothing could adopt a dry run. */
    ds_reconciler_destroy(&fx->rec, DS_ON_EXIT_KEEP);
    assert_int_equal(s_dry_procs(fx), 0);
    char path[800];
    snprintf(path, sizeof path, "%s/6", fx->dry);
    assert_int_not_equal(access(path, F_OK), 0);
    for (size_t i = 0; i < fx->n_pids; i++)
        assert_false(ds_test_pid_alive(fx->pids[i]));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_dry_run_passes_its_tests_and_leaves_the_serving_instance_alone, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_failing_test_reports_exit_code_and_output,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_of_an_unhealthy_release_fails_by_its_deadline,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_forgotten_dry_run_is_stopped_and_cleaned_up, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_refused_dry_run_reports_why_at_once, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_dsworker_stop_ends_a_dry_run_under_way, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
