/*  tests/integration/test_worker_e2e.c - the whole system with real
    processes on 127.0.0.1: three dscoord members, three dsworkers, the
    test service (ds_testsvc) as the release, and every step checked
    through `dsctl -o json`. */
#include "tests/integration/cluster.h"

#include <stdatomic.h>
#include <sys/stat.h>

#define S_SVC       "svc"
#define S_WAIT_MS   60000
#define S_DSCTL_CAP 8

/*  Requests to every instance port, from a thread of the fixture's (so
    the teardown stops it when a test fails). */
typedef struct {
    const ds_cl_t *c;
    atomic_bool stop;
    uint64_t sent; /* read after the join */
    pthread_t thread;
    bool running;
} s_traffic_t;

typedef struct {
    ds_cl_t *c;
    s_traffic_t traffic;
    char art[700];      /* the artifact directory */
    char good[700];     /* spec files */
    char bad[700];      /* health check fails */
    char slow[700];     /* long bake */
    char tampered[700]; /* a tarball with the wrong sha256 */
} s_fix_t;

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void s_spec_file(const char *path, const char *artifact, const char *extra, const char *bake)
{
    char text[4096];
    snprintf(text, sizeof text,
             "artifact: %s\n"
             "command: %s\n"
             "%s"
             "health:\n"
             "  kind: http\n"
             "  path: /healthz\n"
             "  interval: 200ms\n"
             "  timeout: 150ms\n"
             "  healthy_threshold: 1\n"
             "  unhealthy_threshold: 2\n"
             "  start_grace: 3s\n" /* a slow start (sanitizers) is not a failure */
             "strategy:\n"
             "  canary: 1\n"
             "  max_parallel: 1\n"
             "  bake: %s\n"
             "  healthy_deadline: 10s\n"
             "  progress_deadline: 60s\n"
             "stop_grace: 1s\n",
             artifact, DS_TESTSVC_BIN, extra, bake);
    s_write(path, text);
}

/*  GET /predict on every port of every worker's range, as a load
    balancer would spread requests; refused ports cost nothing. */
static void *s_traffic_main(void *arg)
{
    s_traffic_t *t = arg;
    while (!t->stop) {
        for (size_t i = 0; i < t->c->n_workers && !t->stop; i++) {
            int lo = 0, hi = -1;
            if (sscanf(t->c->w[i].ports, "%d-%d", &lo, &hi) != 2)
                continue;
            for (int port = lo; port <= hi; port++) {
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
                a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                static const char req[] = "GET /predict HTTP/1.0\r\n\r\n";
                struct timeval tv = {1, 0};
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                char buf[128];
                if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
                    write(fd, req, sizeof req - 1) > 0 && read(fd, buf, sizeof buf) > 0)
                    t->sent++;
                if (fd >= 0)
                    close(fd);
            }
        }
        ds_cl_sleep_ms(20);
    }
    return NULL;
}

static void s_traffic_start(s_traffic_t *t, const ds_cl_t *c)
{
    t->c = c;
    t->sent = 0;
    atomic_store(&t->stop, false);
    assert_int_equal(pthread_create(&t->thread, NULL, s_traffic_main, t), 0);
    t->running = true;
}

static void s_traffic_stop(s_traffic_t *t)
{
    if (!t->running)
        return;
    atomic_store(&t->stop, true);
    pthread_join(t->thread, NULL);
    t->running = false;
}

/*  Secure by default (docs/security.md): the harness bootstraps keys in
    the test directory, dsctl runs with the admin key, and the workers
    join with a join token, then with their pinned keys alone. */
static int s_setup_with(void **state, bool secure)
{
    s_fix_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    ds_cl_opts_t o = {.worker_heartbeat = "200ms", .worker_timeout = "2s", .secure = secure};
    f->c = ds_cl_new(secure ? "worker-e2e" : "worker-e2e-insecure", 3, &o);
    ds_cl_start_all(f->c);
    ds_cl_wait_leader(f->c, 0, 10000, NULL);
    if (secure) {
        const char *targs[] = {"--uses", "0", "--ttl", "1h", NULL};
        ds_cl_make_token(f->c, targs);
    }
    snprintf(f->art, sizeof f->art, "%s/art", f->c->dir);
    assert_int_equal(mkdir(f->art, 0755), 0);
    char readme[800];
    snprintf(readme, sizeof readme, "%s/README", f->art);
    s_write(readme, "the test service's release directory\n");
    snprintf(f->good, sizeof f->good, "%s/good.yaml", f->c->dir);
    snprintf(f->bad, sizeof f->bad, "%s/bad.yaml", f->c->dir);
    snprintf(f->slow, sizeof f->slow, "%s/slow.yaml", f->c->dir);
    snprintf(f->tampered, sizeof f->tampered, "%s/tampered.yaml", f->c->dir);
    s_spec_file(f->good, f->art, "", "500ms");
    s_spec_file(f->bad, f->art, "args: [--unhealthy]\n", "500ms");
    s_spec_file(f->slow, f->art, "", "4s");
    ds_cl_workers(f->c, 3);
    for (size_t i = 0; i < 3; i++)
        ds_cl_worker_start(f->c, i, NULL);
    *state = f;
    return 0;
}

static int s_setup(void **state)
{
    return s_setup_with(state, true);
}

static int s_setup_insecure(void **state)
{
    return s_setup_with(state, false);
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    s_traffic_stop(&f->traffic);
    ds_cl_destroy(&f->c);
    free(f);
    *state = NULL;
    return 0;
}

/* ---- dsctl -o json ------------------------------------------------------------------ */

static int s_dsctl(s_fix_t *f, ds_cl_run_t *r, const char *const *args)
{
    const char *argv[DS_CL_ARGS] = {"-o", "json", "--timeout", "20s"};
    size_t n = 4;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    ds_cl_workers_alive(f->c);
    return ds_cl_dsctl_argv(f->c, r, f->c->rpcs, argv);
}

/*  How many of the status's instances run `version` with health passing. */
static size_t s_healthy_on(const char *json, uint64_t version)
{
    char item[2048];
    size_t n = 0;
    for (size_t k = 0; ds_cl_json_item(json, "instances", k, item, sizeof item); k++) {
        char health[32];
        ds_cl_json_str(item, "health", health, sizeof health);
        n += ds_cl_json_u64(item, "version") == version && strcmp(health, "passing") == 0;
    }
    return n;
}

/*  Waits until `dsctl status` shows every instance healthy on `version`. */
static void s_wait_all_on(s_fix_t *f, uint64_t version)
{
    int64_t deadline = ds_cl_now_ms() + S_WAIT_MS;
    ds_cl_run_t r;
    while (ds_cl_now_ms() < deadline) {
        const char *args[] = {"status", S_SVC, NULL};
        if (s_dsctl(f, &r, args) == 0 && s_healthy_on(r.out, version) == f->c->n_workers)
            return;
        ds_cl_sleep_ms(300);
    }
    fail_msg("not every worker runs version %" PRIu64 " healthily: %.1500s", version, r.out);
}

/*  Polls the deployment until it is in a final state (bounded), which
    it copies to `state`. */
static void s_wait_deployment_ends(s_fix_t *f, char *state, size_t len)
{
    static const char *const final[] = {"succeeded", "failed", "rolled_back", "aborted"};
    int64_t deadline = ds_cl_now_ms() + S_WAIT_MS;
    ds_cl_run_t r;
    const char *args[] = {"status", S_SVC, NULL};
    state[0] = '\0';
    while (ds_cl_now_ms() < deadline) {
        char deployment[2048];
        if (s_dsctl(f, &r, args) == 0 &&
            ds_cl_json_raw(r.out, "deployment", deployment, sizeof deployment)) {
            ds_cl_json_str(deployment, "state", state, len);
            for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
                if (strcmp(state, final[i]) == 0)
                    return;
        }
        ds_cl_sleep_ms(200);
    }
    fail_msg("the deployment did not end within %d ms (last state \"%s\")", S_WAIT_MS, state);
}

static size_t s_workers_up(const char *json)
{
    size_t n = 0;
    for (const char *p = json; (p = strstr(p, "\"state\":"));) {
        p += 8;
        while (*p == ' ')
            p++;
        n += strncmp(p, "\"up\"", 4) == 0;
    }
    return n;
}

static void s_wait_workers_up(s_fix_t *f, size_t want)
{
    int64_t deadline = ds_cl_now_ms() + S_WAIT_MS;
    ds_cl_run_t r;
    while (ds_cl_now_ms() < deadline) {
        const char *args[] = {"workers", NULL};
        if (s_dsctl(f, &r, args) == 0 && s_workers_up(r.out) == want)
            return;
        ds_cl_sleep_ms(200);
    }
    fail_msg("%zu workers up, not %zu: %.1000s", s_workers_up(r.out), want, r.out);
}

static int s_deploy_wait(s_fix_t *f, const char *spec, ds_cl_run_t *r)
{
    const char *args[] = {"deploy", S_SVC, "--spec", spec, "--wait", "--timeout", "90s", NULL};
    return s_dsctl(f, r, args);
}

/* ---- processes of the instances ------------------------------------------------------- */

/*  The pid of the instance that worker `i` runs (cwd under its data
    directory), 0 if none. */
static pid_t s_instance_pid(const s_fix_t *f, size_t i)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    pid_t found = 0;
    size_t len = strlen(f->c->w[i].data);
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1)
            continue;
        char link[64], cwd[1024];
        snprintf(link, sizeof link, "/proc/%ld/cwd", pid);
        ssize_t n = readlink(link, cwd, sizeof cwd - 1);
        if (n <= 0)
            continue;
        cwd[n] = '\0';
        if (strncmp(cwd, f->c->w[i].data, len) == 0 && cwd[len] == '/')
            found = (pid_t)pid;
    }
    closedir(d);
    return found;
}

/*  The PORT in an instance's environment. */
static int s_instance_port(pid_t pid)
{
    char path[64], env[16384];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    ssize_t n = read(fd, env, sizeof env - 1);
    close(fd);
    assert_true(n > 0);
    env[n] = '\0';
    for (char *p = env; p < env + n; p += strlen(p) + 1)
        if (strncmp(p, "PORT=", 5) == 0)
            return atoi(p + 5);
    fail_msg("instance %d has no PORT", (int)pid);
    return 0;
}

/*  GET /healthz on 127.0.0.1:port; returns the status code or -1. */
static int s_healthz(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int code = -1;
    char buf[256] = "";
    static const char req[] = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) &&
        read(fd, buf, sizeof buf - 1) > 12)
        code = atoi(buf + 9);
    close(fd);
    return code;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_deploy_promote_auto_rollback_and_manual_rollback(void **state)
{
    s_fix_t *f = *state;
    s_wait_workers_up(f, 3);
    ds_cl_run_t r;

    assert_int_equal(s_deploy_wait(f, f->good, &r), 0);
    s_wait_all_on(f, 1);
    const char *st[] = {"status", S_SVC, NULL};
    assert_int_equal(s_dsctl(f, &r, st), 0);
    assert_int_equal(ds_cl_json_u64(r.out, "current_version"), 1);

    /* v2: canary, bake, promoted on all. */
    assert_int_equal(s_deploy_wait(f, f->good, &r), 0);
    s_wait_all_on(f, 2);

    /* v3's health check fails: rolled back by itself, every worker on v2. */
    assert_int_equal(s_deploy_wait(f, f->bad, &r), 1);
    assert_int_equal(s_dsctl(f, &r, st), 0);
    char deployment[2048], state_name[64];
    assert_true(ds_cl_json_raw(r.out, "deployment", deployment, sizeof deployment));
    ds_cl_json_str(deployment, "state", state_name, sizeof state_name);
    assert_string_equal(state_name, "rolled_back");
    assert_int_equal(ds_cl_json_u64(r.out, "desired_version"), 2);
    s_wait_all_on(f, 2);
    const char *hist[] = {"history", S_SVC, NULL};
    assert_int_equal(s_dsctl(f, &r, hist), 0);
    assert_non_null(strstr(r.out, "rolled_back"));
    assert_non_null(strstr(r.out, "health check is failing"));
    /* Audit: the admin's requests are recorded under its key's name. */
    assert_non_null(strstr(r.out, "\"by\": \"admin\""));

    /* dsctl rollback: the release before the current good one, v1. */
    const char *rb[] = {"rollback", S_SVC, "--wait", "--timeout", "90s", NULL};
    assert_int_equal(s_dsctl(f, &r, rb), 0);
    s_wait_all_on(f, 1);
    ds_cl_passed(f->c);
}

static void test_worker_restart_with_coordinators_down_keeps_the_service(void **state)
{
    s_fix_t *f = *state;
    s_wait_workers_up(f, 3);
    ds_cl_run_t r;
    assert_int_equal(s_deploy_wait(f, f->good, &r), 0);
    s_wait_all_on(f, 1);
    pid_t pid = s_instance_pid(f, 0);
    assert_true(pid > 0);
    int port = s_instance_port(pid);
    assert_int_equal(s_healthz(port), 200);

    for (size_t i = 0; i < f->c->n; i++)
        ds_cl_kill(f->c, i);
    ds_cl_worker_kill(f->c, 0);
    ds_cl_worker_start(f->c, 0, NULL);
    ds_cl_sleep_ms(2000); /* it adopts, probes, and tries to join in vain */
    ds_cl_workers_alive(f->c);
    assert_int_equal(s_instance_pid(f, 0), pid); /* the same process, adopted */
    assert_int_equal(s_healthz(port), 200);

    ds_cl_start_all(f->c);
    ds_cl_wait_leader(f->c, 0, 15000, NULL);
    s_wait_workers_up(f, 3);
    s_wait_all_on(f, 1);
    assert_int_equal(s_instance_pid(f, 0), pid);
    ds_cl_passed(f->c);
}

static void test_leader_sigkill_during_bake_rollout_ends_as_it_would_have(void **state)
{
    s_fix_t *f = *state;
    s_wait_workers_up(f, 3);
    ds_cl_run_t r;
    const char *dep[] = {"deploy", S_SVC, "--spec", f->slow, NULL};
    assert_int_equal(s_dsctl(f, &r, dep), 0);
    int64_t deadline = ds_cl_now_ms() + S_WAIT_MS;
    const char *st[] = {"status", S_SVC, NULL};
    for (;;) {
        assert_true(ds_cl_now_ms() < deadline);
        if (s_dsctl(f, &r, st) == 0 && strstr(r.out, "\"baking\""))
            break;
        ds_cl_sleep_ms(100);
    }
    size_t leader = ds_cl_wait_leader(f->c, 0, 5000, NULL);
    ds_cl_kill(f->c, leader);
    ds_cl_wait_leader(f->c, 1u << leader, 15000, NULL);
    s_wait_all_on(f, 1);
    /* every instance healthy on version 1 comes before the controller's
       next step records the deployment's end: wait for that end */
    char state_name[64];
    s_wait_deployment_ends(f, state_name, sizeof state_name);
    assert_string_equal(state_name, "succeeded");
    ds_cl_passed(f->c);
}

static void test_wrong_sha256_is_refused_with_its_reason_and_nothing_runs(void **state)
{
    s_fix_t *f = *state;
    s_wait_workers_up(f, 3);
    char tarball[800], cmd[2048];
    snprintf(tarball, sizeof tarball, "%s/art.tar.gz", f->c->dir);
    snprintf(cmd, sizeof cmd, "tar -czf '%s' -C '%s' .", tarball, f->art);
    assert_int_equal(system(cmd), 0);
    s_spec_file(f->tampered, tarball,
                "sha256: 0000000000000000000000000000000000000000000000000000000000000000\n",
                "500ms");
    ds_cl_run_t r;
    assert_int_equal(s_deploy_wait(f, f->tampered, &r), 1);
    const char *st[] = {"status", S_SVC, NULL};
    assert_int_equal(s_dsctl(f, &r, st), 0);
    assert_non_null(strstr(r.out, "sha256"));
    const char *hist[] = {"history", S_SVC, NULL};
    assert_int_equal(s_dsctl(f, &r, hist), 0);
    assert_non_null(strstr(r.out, "sha256"));
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(s_instance_pid(f, i), 0);
        char dir[800];
        snprintf(dir, sizeof dir, "%s/releases/%s/1", f->c->w[i].data, S_SVC);
        assert_int_not_equal(access(dir, F_OK), 0);
    }
    ds_cl_passed(f->c);
}

/* ---- deploy --dry-run ------------------------------------------------------------------ */

/*  What `dsctl status` and `history` say about S_SVC, to compare. */
typedef struct {
    uint64_t deployment_id, current, desired;
    size_t history_rows;
    pid_t pids[3];
} s_snapshot_t;

static void s_snapshot(s_fix_t *f, s_snapshot_t *snap)
{
    ds_cl_run_t r;
    const char *st[] = {"status", S_SVC, NULL};
    assert_int_equal(s_dsctl(f, &r, st), 0);
    char deployment[2048];
    assert_true(ds_cl_json_raw(r.out, "deployment", deployment, sizeof deployment));
    snap->deployment_id = ds_cl_json_u64(deployment, "id");
    snap->current = ds_cl_json_u64(r.out, "current_version");
    snap->desired = ds_cl_json_u64(r.out, "desired_version");
    assert_int_equal(s_healthy_on(r.out, snap->current), f->c->n_workers);
    const char *hist[] = {"history", S_SVC, NULL};
    assert_int_equal(s_dsctl(f, &r, hist), 0);
    char item[4096];
    snap->history_rows = 0;
    while (ds_cl_json_item(r.out, "rows", snap->history_rows, item, sizeof item))
        snap->history_rows++;
    for (size_t i = 0; i < 3; i++)
        snap->pids[i] = s_instance_pid(f, i);
}

static int s_dry_run(s_fix_t *f, const char *service, const char *spec, ds_cl_run_t *r)
{
    const char *args[] = {"deploy", service, "--spec", spec, "--dry-run", NULL};
    return s_dsctl(f, r, args);
}

static void test_dry_run_runs_the_tests_on_one_worker_and_changes_nothing(void **state)
{
    s_fix_t *f = *state;
    s_wait_workers_up(f, 3);
    ds_cl_run_t r;
    assert_int_equal(s_deploy_wait(f, f->good, &r), 0);
    s_wait_all_on(f, 1);
    s_snapshot_t before;
    s_snapshot(f, &before);
    assert_int_equal(before.current, 1);

    char passing[900], failing[900];
    snprintf(passing, sizeof passing, "%s/tested.yaml", f->c->dir);
    snprintf(failing, sizeof failing, "%s/failing.yaml", f->c->dir);
    s_spec_file(passing, f->art,
                "tests:\n"
                "  - name: env\n"
                "    command: 'test \"$DS_VERSION\" = 0 && test -f \"$DS_RELEASE_DIR/README\"'\n"
                "    timeout: 5s\n"
                "  - name: predict\n"
                "    command: 'test \"$PORT\" -gt 0'\n"
                "    timeout: 5s\n",
                "500ms");
    s_spec_file(failing, f->art,
                "tests:\n"
                "  - name: smoke\n"
                "    command: 'echo dry-run-says-no; exit 4'\n"
                "    timeout: 5s\n",
                "500ms");

    /* Passing tests: exit 0, the worker and the result in the reply. */
    assert_int_equal(s_dry_run(f, S_SVC, passing, &r), 0);
    char text[2048];
    ds_cl_json_str(r.out, "state", text, sizeof text);
    assert_string_equal(text, "dry_run_passed");
    ds_cl_json_str(r.out, "service", text, sizeof text);
    assert_string_equal(text, S_SVC);
    ds_cl_json_str(r.out, "worker", text, sizeof text);
    assert_true(text[0] != '\0');
    ds_cl_json_str(r.out, "message", text, sizeof text);
    assert_non_null(strstr(text, "healthy; 2 tests passed"));

    /* A failing test: exit 1, its exit code and output in the message. */
    assert_int_equal(s_dry_run(f, S_SVC, failing, &r), 1);
    ds_cl_json_str(r.out, "state", text, sizeof text);
    assert_string_equal(text, "dry_run_failed");
    ds_cl_json_str(r.out, "message", text, sizeof text);
    assert_non_null(strstr(text, "release test smoke failed with exit code 4"));
    assert_non_null(strstr(text, "dry-run-says-no"));

    /* Nothing changed: the same deployment, versions, history and
       processes; no dry run left anywhere. */
    s_snapshot_t after;
    s_snapshot(f, &after);
    assert_int_equal(after.deployment_id, before.deployment_id);
    assert_int_equal(after.current, 1);
    assert_int_equal(after.desired, before.desired);
    assert_int_equal(after.history_rows, before.history_rows);
    for (size_t i = 0; i < 3; i++) {
        assert_true(before.pids[i] > 0);
        assert_int_equal(after.pids[i], before.pids[i]);
        char dir[800];
        snprintf(dir, sizeof dir, "%s/dryrun", f->c->w[i].data);
        DIR *d = opendir(dir);
        size_t entries = 0;
        for (struct dirent *e; d && (e = readdir(d));)
            entries += e->d_name[0] != '.';
        if (d)
            closedir(d);
        assert_int_equal(entries, 0);
    }

    /* A service that was never deployed: tested, and still unknown. */
    assert_int_equal(s_dry_run(f, "fresh", passing, &r), 0);
    const char *fresh[] = {"status", "fresh", NULL};
    assert_int_equal(s_dsctl(f, &r, fresh), 1);

    /* The people watching saw it. */
    const char *ev[] = {"events", NULL};
    assert_int_equal(s_dsctl(f, &r, ev), 0);
    assert_non_null(strstr(r.out, "dry_run"));
    ds_cl_passed(f->c);
}

/* ---- canary analysis on the service's own /metrics ------------------------------------ */

static void test_canary_answering_errors_with_green_health_is_rolled_back_by_analysis(void **state)
{
    s_fix_t *f = *state;
    s_wait_workers_up(f, 3);
    static const char metrics[] = "metrics:\n"
                                  "  path: /metrics\n"
                                  "  interval: 1s\n"
                                  "  requests_metric: requests_total\n"
                                  "  errors_metric: errors_total\n"
                                  "analysis:\n"
                                  "  max_error_ratio: 0.05\n"
                                  "  min_samples: 20\n"
                                  "  on_inconclusive: fail\n";
    char good[900], noisy[900], extra[1200];
    snprintf(good, sizeof good, "%s/metrics-good.yaml", f->c->dir);
    snprintf(noisy, sizeof noisy, "%s/metrics-noisy.yaml", f->c->dir);
    s_spec_file(good, f->art, metrics, "3s");
    snprintf(extra, sizeof extra, "args: [--error-ratio, \"0.5\"]\n%s", metrics);
    s_spec_file(noisy, f->art, extra, "8s");

    s_traffic_start(&f->traffic, f->c);
    ds_cl_run_t r;
    int v1 = s_deploy_wait(f, good, &r);
    int v2 = v1 == 0 ? s_deploy_wait(f, noisy, &r) : -1;
    s_traffic_stop(&f->traffic);
    assert_int_equal(v1, 0);
    assert_int_equal(v2, 1); /* --wait: ended rolled back */
    assert_true(f->traffic.sent > 0);
    s_wait_all_on(f, 1);
    const char *st[] = {"status", S_SVC, NULL};
    assert_int_equal(s_dsctl(f, &r, st), 0);
    assert_non_null(strstr(r.out, "rolled_back"));
    assert_non_null(strstr(r.out, "error_ratio"));
    const char *hist[] = {"history", S_SVC, NULL};
    assert_int_equal(s_dsctl(f, &r, hist), 0);
    assert_non_null(strstr(r.out, "\"verdict\""));
    assert_non_null(strstr(r.out, "> max 0.05"));
    ds_cl_passed(f->c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deploy_promote_auto_rollback_and_manual_rollback,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_worker_restart_with_coordinators_down_keeps_the_service, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_leader_sigkill_during_bake_rollout_ends_as_it_would_have, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_wrong_sha256_is_refused_with_its_reason_and_nothing_runs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_canary_answering_errors_with_green_health_is_rolled_back_by_analysis, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_dry_run_runs_the_tests_on_one_worker_and_changes_nothing, s_setup, s_teardown),
        /* the same with --insecure everywhere: CURVE off still works */
        cmocka_unit_test_setup_teardown(
            test_wrong_sha256_is_refused_with_its_reason_and_nothing_runs, s_setup_insecure,
            s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
