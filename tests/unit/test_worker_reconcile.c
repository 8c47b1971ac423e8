/*  tests/unit/test_worker_reconcile.c - the worker's reconciler with real
    processes (ds_testsvc), real sockets on 127.0.0.1, a real worker store
    and release directories in a temporary directory.

    Every wait steps the reconciler every 20 ms for at most 10 s (or a
    bounded count); every process seen in a status row is killed by pid
    in the teardown, whatever happened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
    ds_workerstore_t *ws;
    ds_reconciler_t *rec;
    uint16_t port_min;
    pid_t pids[S_MAX_PIDS];
    size_t n_pids;
    ds_instance_status_t rows[16];
    size_t n_rows;
} fx_t;

static void s_remember(fx_t *fx, uint32_t pid)
{
    if (pid == 0)
        return;
    for (size_t i = 0; i < fx->n_pids; i++)
        if (fx->pids[i] == (pid_t)pid)
            return;
    if (fx->n_pids < S_MAX_PIDS)
        fx->pids[fx->n_pids++] = (pid_t)pid;
}

static void s_status(fx_t *fx)
{
    fx->n_rows = ds_reconciler_status(fx->rec, fx->rows, 16);
    for (size_t i = 0; i < fx->n_rows; i++)
        s_remember(fx, fx->rows[i].pid);
}

static const ds_instance_status_t *s_row(fx_t *fx, uint64_t version)
{
    for (size_t i = 0; i < fx->n_rows; i++)
        if (fx->rows[i].version == version)
            return &fx->rows[i];
    return NULL;
}

typedef bool (*s_pred_fn)(fx_t *fx, void *arg);

/*  Steps every 20 ms until pred holds (true) or 10 s passed (false). */
static bool s_until(fx_t *fx, s_pred_fn pred, void *arg)
{
    uint64_t end = ds_test_now_ms() + S_WAIT_MS;
    for (unsigned i = 0; i < S_WAIT_MS / S_STEP_MS + 10u; i++) {
        ds_reconciler_step(fx->rec, ds_test_now_ms());
        s_status(fx);
        if (pred(fx, arg))
            return true;
        if (ds_test_now_ms() >= end)
            return false;
        ds_test_sleep_ms(S_STEP_MS);
    }
    return false;
}

typedef struct {
    uint64_t version;
    uint8_t state;
    uint8_t health; /* 255 = any */
} s_want_t;

static bool s_is(fx_t *fx, void *arg)
{
    const s_want_t *w = arg;
    const ds_instance_status_t *r = s_row(fx, w->version);
    return r && r->state == w->state && (w->health == 255 || r->health == w->health);
}

static void s_dump(fx_t *fx)
{
    for (size_t i = 0; i < fx->n_rows; i++) {
        const ds_instance_status_t *r = &fx->rows[i];
        fprintf(stderr,
                "  row %s v%" PRIu64 " state=%u health=%u pid=%u restarts=%u fails=%u reason=%s\n",
                r->service, r->version, r->state, r->health, r->pid, r->restarts,
                r->consecutive_failures, r->reason);
    }
}

static void s_wait_for(fx_t *fx, uint64_t version, uint8_t state, uint8_t health)
{
    s_want_t w = {version, state, health};
    if (!s_until(fx, s_is, &w)) {
        s_dump(fx);
        fail_msg("v%" PRIu64 " did not reach state %u health %u", version, state, health);
    }
}

/*  A spec that runs ds_testsvc with `flags` (space separated) from the
    artifact directory, http health on /healthz. Strings are static or
    live in `store` until the test ends. */
typedef struct {
    ds_spec_t spec;
    char command[1024];
    char artifact[800];
    char sha[200];
    ds_test_spec_t tests[2];
} s_spec_t;

static void s_spec(s_spec_t *s, const fx_t *fx, const char *flags, uint8_t health_kind)
{
    ds_spec_init(&s->spec);
    snprintf(s->command, sizeof s->command, "%s --port ${PORT} %s", DS_TESTSVC_BIN, flags);
    snprintf(s->artifact, sizeof s->artifact, "%s", fx->art);
    s->spec.artifact = s->artifact;
    s->spec.command = s->command;
    s->spec.health.kind = health_kind;
    s->spec.health.interval_ms = 100;
    s->spec.health.timeout_ms = 100;
    s->spec.health.healthy_threshold = 1;
    s->spec.health.unhealthy_threshold = 2;
    s->spec.health.start_grace_ms = 1;
    s->spec.strategy.healthy_deadline_ms = 3000;
    s->spec.stop_grace_ms = 2000;
    ds_spec_apply_defaults(&s->spec);
    /* ds_reconciler_set_desired validates it. */
}

static void s_assign(fx_t *fx, uint64_t gen, const char *service, uint64_t version,
                     const s_spec_t *s)
{
    ds_assigned_release_t rel = {.service = (char *)service, .version = version};
    if (s)
        rel.spec = s->spec;
    else
        ds_spec_init(&rel.spec);
    ds_assignment_t a = {.generation = gen, .n_releases = 1, .releases = &rel};
    char err[512];
    int rc = ds_reconciler_set_desired(fx->rec, &a, err, sizeof err);
    if (rc)
        fail_msg("set_desired: %s", err);
    assert_int_equal(ds_reconciler_generation(fx->rec), gen);
}

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
    assert_int_equal(ds_test_mkdtemp("wrec", fx->dir, sizeof fx->dir), 0);
    snprintf(fx->data, sizeof fx->data, "%s/data", fx->dir);
    snprintf(fx->art, sizeof fx->art, "%s/artifact", fx->dir);
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
        s_status(fx);
        ds_reconciler_destroy(&fx->rec, DS_ON_EXIT_STOP);
    }
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

/* ---- tests ------------------------------------------------------------- */

static void test_directory_release_starts_with_port_and_becomes_healthy(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "", DS_HEALTH_HTTP);
    s_assign(fx, 1, "web", 1, &s);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    const ds_instance_status_t *r = s_row(fx, 1);
    assert_true(r->pid > 0);
    assert_true(ds_test_pid_alive((pid_t)r->pid));
    assert_string_equal(r->service, "web");
    assert_string_equal(r->reason, "");
    /* Staged into DATA/releases/web/1/ (a copy of the directory). */
    char path[800];
    snprintf(path, sizeof path, "%s/releases/web/1/README", fx->data);
    assert_int_equal(access(path, R_OK), 0);
    /* ${PORT} became a port of the worker's range (the first free one:
       other tests may hold the first): the service says so in its log. */
    snprintf(path, sizeof path, "%s/logs/web/1/stdout.log", fx->data);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    const char *at = strstr(line, "port=");
    assert_non_null(at);
    unsigned long port = strtoul(at + 5, NULL, 10);
    assert_true(port >= fx->port_min && port <= fx->port_min + 19u);

    ds_worker_telemetry_t t;
    ds_reconciler_telemetry(fx->rec, &t);
    assert_true(t.mem_total_kb > 0);
    assert_true(t.disk_free_kb > 0);
    int fds[8];
    assert_true(ds_reconciler_fds(fx->rec, fds, 8) <= 8);
    assert_true(ds_reconciler_next_wake(fx->rec) >= 1);
}

static void test_failed_new_version_restarts_the_last_healthy_one(void **state)
{
    fx_t *fx = *state;
    s_spec_t s1, s2;
    s_spec(&s1, fx, "", DS_HEALTH_HTTP);
    s_assign(fx, 1, "web", 1, &s1);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    /* dsworker goes away with its instances; meanwhile v2 is assigned. */
    ds_reconciler_destroy(&fx->rec, DS_ON_EXIT_STOP);
    s_open_rec(fx);
    char cmd[2000], tgz[700];
    snprintf(tgz, sizeof tgz, "%s/b.tar.gz", fx->dir);
    snprintf(cmd, sizeof cmd, "tar -czf %s -C %s .", tgz, fx->art);
    assert_int_equal(system(cmd), 0);
    s_spec(&s2, fx, "", DS_HEALTH_HTTP);
    snprintf(s2.artifact, sizeof s2.artifact, "%s", tgz);
    s2.spec.sha256 = "1111111111111111111111111111111111111111111111111111111111111111";
    s_assign(fx, 2, "web", 2, &s2);
    /* v2 cannot be staged: v1, the last healthy version, runs again (v1
       may be back before v2's staging has failed: wait for both). */
    s_wait_for(fx, 2, DS_INST_FAILED, 255);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    const ds_instance_status_t *v2 = s_row(fx, 2);
    assert_non_null(v2);
    assert_int_equal(v2->state, DS_INST_FAILED);
    assert_non_null(strstr(v2->reason, "sha256 mismatch"));
    const ds_instance_status_t *v1 = s_row(fx, 1);
    assert_true(v1->pid > 0);
    assert_true(v1->rss_kb > 0);
}

static bool s_restarted(fx_t *fx, void *arg)
{
    (void)arg;
    const ds_instance_status_t *r = s_row(fx, 1);
    return r && r->restarts >= 1 && r->state == DS_INST_RUNNING;
}

static void test_crashed_instance_restarts_and_counts(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "--crash-after 1", DS_HEALTH_TCP);
    s_assign(fx, 1, "web", 1, &s);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    uint32_t first = s_row(fx, 1)->pid;
    if (!s_until(fx, s_restarted, NULL)) {
        s_dump(fx);
        fail_msg("no restart");
    }
    const ds_instance_status_t *r = s_row(fx, 1);
    assert_int_not_equal(r->pid, first);
    assert_false(ds_test_pid_alive((pid_t)first));
}

static bool s_crashed_down(fx_t *fx, void *arg)
{
    (void)arg;
    const ds_instance_status_t *r = s_row(fx, 1);
    return r && r->state == DS_INST_CRASHED;
}

/*  A listening socket on 0.0.0.0:port, as another program would hold it;
    -1 if the port cannot be taken. */
static int s_take_port(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    int one = 1;
    if (fd >= 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void test_crashed_instance_whose_port_was_taken_restarts_on_another(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "--crash-after 1", DS_HEALTH_TCP);
    s_assign(fx, 1, "web", 1, &s);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    uint16_t first = (uint16_t)s_row(fx, 1)->port;
    assert_true(first >= fx->port_min && first <= fx->port_min + 19u);
    /* The reconciler only moves when stepped: between the step that saw
       the crash and the restart's step, another program takes the port. */
    if (!s_until(fx, s_crashed_down, NULL)) {
        s_dump(fx);
        fail_msg("no crash");
    }
    int holder = s_take_port(first);
    assert_true(holder >= 0);
    bool restarted = s_until(fx, s_restarted, NULL);
    if (!restarted)
        s_dump(fx);
    const ds_instance_status_t *r = s_row(fx, 1);
    uint16_t second = r ? (uint16_t)r->port : 0;
    close(holder);
    assert_true(restarted);
    assert_int_not_equal(second, first);
    assert_true(second >= fx->port_min && second <= fx->port_min + 19u);
    assert_int_equal(r->restarts, 1);
}

static bool s_swapped(fx_t *fx, void *arg)
{
    (void)arg;
    const ds_instance_status_t *v2 = s_row(fx, 2);
    return v2 && v2->state == DS_INST_RUNNING && v2->health == DS_HEALTH_PASSING &&
           s_row(fx, 1) == NULL;
}

static void test_update_to_healthy_version_replaces_the_old(void **state)
{
    fx_t *fx = *state;
    s_spec_t s1, s2;
    s_spec(&s1, fx, "", DS_HEALTH_HTTP);
    s_spec(&s2, fx, "--slow 1", DS_HEALTH_HTTP);
    s_assign(fx, 1, "web", 1, &s1);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    pid_t old = (pid_t)s_row(fx, 1)->pid;
    s_assign(fx, 2, "web", 2, &s2);
    if (!s_until(fx, s_swapped, NULL)) {
        s_dump(fx);
        fail_msg("v2 did not replace v1");
    }
    assert_false(ds_test_pid_alive(old));
    uint64_t cur = 0, prev = 0;
    assert_int_equal(ds_workerstore_current(fx->ws, "web", &cur, &prev), 0);
    assert_int_equal(cur, 2);
    assert_int_equal(prev, 1);
}

static void test_update_to_unhealthy_version_keeps_old_running(void **state)
{
    fx_t *fx = *state;
    s_spec_t s1, s2;
    s_spec(&s1, fx, "", DS_HEALTH_HTTP);
    s_spec(&s2, fx, "--unhealthy", DS_HEALTH_HTTP);
    s2.spec.strategy.healthy_deadline_ms = 1500;
    s_assign(fx, 1, "web", 1, &s1);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    pid_t old = (pid_t)s_row(fx, 1)->pid;
    s_assign(fx, 2, "web", 2, &s2);
    s_wait_for(fx, 2, DS_INST_FAILED, 255);
    const ds_instance_status_t *v2 = s_row(fx, 2);
    assert_non_null(strstr(v2->reason, "healthy_deadline_ms"));
    assert_non_null(strstr(v2->reason, "http status: 503"));
    const ds_instance_status_t *v1 = s_row(fx, 1);
    assert_non_null(v1);
    assert_int_equal(v1->state, DS_INST_RUNNING);
    assert_int_equal(v1->pid, (uint32_t)old);
    assert_true(ds_test_pid_alive(old));
    /* The failed v2 process is stopped. */
    s_want_t w = {2, DS_INST_FAILED, 255};
    for (int i = 0; i < 200 && s_row(fx, 2)->pid != 0; i++) {
        ds_test_sleep_ms(20);
        ds_reconciler_step(fx->rec, ds_test_now_ms());
        s_status(fx);
        assert_true(s_is(fx, &w));
    }
    assert_int_equal(s_row(fx, 2)->pid, 0);
}

static void test_failing_release_test_fails_with_exit_code_and_output(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "", DS_HEALTH_HTTP);
    s.tests[0] = (ds_test_spec_t){.name = "smoke",
                                  .command = "test \"$PORT\" -gt 0 && echo checked port ${PORT} "
                                             "&& echo boom >&2; exit 7",
                                  .timeout_ms = 5000};
    s.spec.tests = s.tests;
    s.spec.n_tests = 1;
    s_assign(fx, 1, "web", 1, &s);
    s_wait_for(fx, 1, DS_INST_FAILED, 255);
    const ds_instance_status_t *r = s_row(fx, 1);
    assert_non_null(strstr(r->reason, "smoke"));
    assert_non_null(strstr(r->reason, "exit code 7"));
    assert_non_null(strstr(r->reason, "boom"));
    assert_non_null(strstr(r->reason, "checked port"));
}

static void test_passing_release_test_lets_it_run(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "", DS_HEALTH_HTTP);
    s.tests[0] =
        (ds_test_spec_t){.name = "env",
                         .command = "test -d \"$DS_RELEASE_DIR\" && test \"$DS_VERSION\" = 1",
                         .timeout_ms = 5000};
    s.spec.tests = s.tests;
    s.spec.n_tests = 1;
    s_assign(fx, 1, "web", 1, &s);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
}

static void test_restart_with_keep_readopts_the_same_pid(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "", DS_HEALTH_HTTP);
    s_assign(fx, 7, "web", 1, &s);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    pid_t pid = (pid_t)s_row(fx, 1)->pid;
    ds_reconciler_destroy(&fx->rec, DS_ON_EXIT_KEEP);
    assert_null(fx->rec);
    assert_true(ds_test_pid_alive(pid));
    s_open_rec(fx);
    assert_int_equal(ds_reconciler_generation(fx->rec), 7);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    assert_int_equal(s_row(fx, 1)->pid, (uint32_t)pid);
    assert_int_equal(fx->n_rows, 1);
    /* Stop on exit reaches the adopted process too. */
    ds_reconciler_destroy(&fx->rec, DS_ON_EXIT_STOP);
    assert_false(ds_test_pid_alive(pid));
}

static void test_restart_after_instance_died_starts_last_version(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "", DS_HEALTH_HTTP);
    s_assign(fx, 3, "web", 1, &s);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    pid_t pid = (pid_t)s_row(fx, 1)->pid;
    ds_reconciler_destroy(&fx->rec, DS_ON_EXIT_KEEP);
    kill(-pid, SIGKILL);
    for (int i = 0; i < 500 && ds_test_pid_alive(pid); i++)
        ds_test_sleep_ms(10);
    s_open_rec(fx);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    assert_int_not_equal(s_row(fx, 1)->pid, (uint32_t)pid);
}

static void test_sha256_mismatch_fails_and_nothing_runs(void **state)
{
    fx_t *fx = *state;
    /* A tarball of the artifact, with a wrong digest. */
    char cmd[2000], tgz[700];
    snprintf(tgz, sizeof tgz, "%s/a.tar.gz", fx->dir);
    snprintf(cmd, sizeof cmd, "tar -czf %s -C %s .", tgz, fx->art);
    assert_int_equal(system(cmd), 0);
    s_spec_t s;
    s_spec(&s, fx, "", DS_HEALTH_HTTP);
    snprintf(s.artifact, sizeof s.artifact, "%s", tgz);
    s.spec.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    s_assign(fx, 1, "web", 1, &s);
    s_wait_for(fx, 1, DS_INST_FAILED, 255);
    const ds_instance_status_t *r = s_row(fx, 1);
    assert_non_null(strstr(r->reason, "sha256 mismatch"));
    assert_int_equal(r->pid, 0);
    char path[800];
    snprintf(path, sizeof path, "%s/releases/web/1", fx->data);
    assert_int_not_equal(access(path, F_OK), 0);
    /* It stays failed: nothing is retried or started. */
    for (int i = 0; i < 10; i++) {
        ds_reconciler_step(fx->rec, ds_test_now_ms());
        s_status(fx);
        assert_int_equal(fx->n_rows, 1);
        assert_int_equal(fx->rows[0].state, DS_INST_FAILED);
        assert_int_equal(fx->rows[0].pid, 0);
    }
}

static void test_tarball_with_right_sha256_runs(void **state)
{
    fx_t *fx = *state;
    char cmd[2000], tgz[700];
    snprintf(tgz, sizeof tgz, "%s/a.tar.gz", fx->dir);
    snprintf(cmd, sizeof cmd, "tar -czf %s -C %s .", tgz, fx->art);
    assert_int_equal(system(cmd), 0);
    char sum[200];
    snprintf(cmd, sizeof cmd, "sha256sum %s", tgz);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(sum, sizeof sum, p));
    pclose(p);
    sum[64] = '\0';
    s_spec_t s;
    s_spec(&s, fx, "", DS_HEALTH_HTTP);
    snprintf(s.artifact, sizeof s.artifact, "%s", tgz);
    snprintf(s.sha, sizeof s.sha, "%s", sum);
    s.spec.sha256 = s.sha;
    s_assign(fx, 1, "web", 1, &s);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
}

static bool s_stopped(fx_t *fx, void *arg)
{
    (void)arg;
    const ds_instance_status_t *r = s_row(fx, 1);
    return r && r->state == DS_INST_STOPPED && r->pid == 0;
}

static void test_version_zero_stops_with_term_then_kill(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "--ignore-term", DS_HEALTH_TCP);
    s.spec.stop_grace_ms = 300;
    s_assign(fx, 1, "web", 1, &s);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    pid_t pid = (pid_t)s_row(fx, 1)->pid;
    s_assign(fx, 2, "web", 0, NULL);
    ds_reconciler_step(fx->rec, ds_test_now_ms());
    s_status(fx);
    /* SIGTERM is ignored: it is stopping, still alive, until SIGKILL. */
    assert_int_equal(s_row(fx, 1)->state, DS_INST_STOPPING);
    assert_true(ds_test_pid_alive(pid));
    if (!s_until(fx, s_stopped, NULL)) {
        s_dump(fx);
        fail_msg("not stopped");
    }
    assert_false(ds_test_pid_alive(pid));
}

static bool s_no_rows(fx_t *fx, void *arg)
{
    (void)arg;
    return fx->n_rows == 0;
}

static void test_service_absent_from_assignment_is_stopped_and_forgotten(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "", DS_HEALTH_EXEC);
    s.spec.health.command = "true";
    s_assign(fx, 1, "web", 1, &s);
    s_wait_for(fx, 1, DS_INST_RUNNING, DS_HEALTH_PASSING);
    pid_t pid = (pid_t)s_row(fx, 1)->pid;
    ds_assignment_t empty = {.generation = 2};
    char err[256];
    assert_int_equal(ds_reconciler_set_desired(fx->rec, &empty, err, sizeof err), 0);
    assert_true(s_until(fx, s_no_rows, NULL));
    assert_false(ds_test_pid_alive(pid));
}

static void test_invalid_assignment_is_refused(void **state)
{
    fx_t *fx = *state;
    s_spec_t s;
    s_spec(&s, fx, "", DS_HEALTH_HTTP);
    ds_assigned_release_t rel[2] = {{.service = "web", .version = 1, .spec = s.spec},
                                    {.service = "web", .version = 2, .spec = s.spec}};
    ds_assignment_t a = {.generation = 5, .n_releases = 2, .releases = rel};
    char err[256] = "";
    assert_int_equal(ds_reconciler_set_desired(fx->rec, &a, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "twice"));
    rel[0].service = "../x";
    a.n_releases = 1;
    assert_int_equal(ds_reconciler_set_desired(fx->rec, &a, err, sizeof err), DS_EINVAL);
    assert_int_equal(ds_reconciler_generation(fx->rec), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_directory_release_starts_with_port_and_becomes_healthy,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_failed_new_version_restarts_the_last_healthy_one,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_crashed_instance_whose_port_was_taken_restarts_on_another, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_crashed_instance_restarts_and_counts, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_update_to_healthy_version_replaces_the_old, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_update_to_unhealthy_version_keeps_old_running, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_failing_release_test_fails_with_exit_code_and_output,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_passing_release_test_lets_it_run, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_with_keep_readopts_the_same_pid, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_after_instance_died_starts_last_version,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sha256_mismatch_fails_and_nothing_runs, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_tarball_with_right_sha256_runs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_version_zero_stops_with_term_then_kill, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(
            test_service_absent_from_assignment_is_stopped_and_forgotten, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_assignment_is_refused, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
