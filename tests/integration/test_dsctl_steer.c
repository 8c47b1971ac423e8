/*  tests/integration/test_dsctl_steer.c - the dsctl binary against a real
    three-member cluster with test peers as workers: deploy from flags,
    promote after a canary that waits for it, pause, resume, abort,
    rollback --to, history, workers and events (--follow included), and
    the documented errors (promote with nothing to promote, a second
    deploy while one is live, an unknown service) with their exit codes. */
#define DS_RF_NAME "steer"
#include "tests/integration/release_fix.h"

#define S_DSCTL(f, r, ...) ds_cl_dsctl((f)->c, (r), (f)->c->rpcs, __VA_ARGS__)

/*  The state of the latest deployment of churn, through dsctl -o json. */
static void s_state(s_fix_t *f, char *state, size_t len)
{
    ds_cl_run_t r;
    state[0] = '\0';
    if (S_DSCTL(f, &r, "-o", "json", "status", "churn") != 0)
        return;
    char dep[4096];
    if (ds_cl_json_raw(r.out, "deployment", dep, sizeof dep) && dep[0] == '{')
        ds_cl_json_str(dep, "state", state, len);
}

static void s_wait_dsctl_state(s_fix_t *f, const char *want)
{
    int64_t deadline = ds_cl_now_ms() + S_WAIT_MS;
    char state[64] = "";
    while (ds_cl_now_ms() < deadline) {
        s_state(f, state, sizeof state);
        if (strcmp(state, want) == 0)
            return;
        ds_cl_sleep_ms(150);
    }
    fail_msg("churn did not reach %s through dsctl: it is %s", want, state);
}

static void s_assert_err(const ds_cl_run_t *r, const char *needle)
{
    if (!strstr(r->err, needle))
        fail_msg("stderr should mention \"%s\": %s", needle, r->err);
}

/*  Starts `dsctl events --follow` with its stdout in `path`. */
static pid_t s_follow(s_fix_t *f, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    const char *argv[] = {DS_DSCTL_BIN, "--insecure", "--coordinators", f->c->rpcs, "events",
                          "--follow",   NULL};
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (dup2(fd, 1) < 0)
            _exit(126);
        execve(argv[0], (char *const *)argv, f->c->envp);
        _exit(127);
    }
    close(fd);
    return pid;
}

static bool s_file_has(const char *path, const char *needle)
{
    static char buf[65536];
    FILE *in = fopen(path, "r");
    if (!in)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, in);
    buf[n] = '\0';
    fclose(in);
    return strstr(buf, needle) != NULL;
}

static void test_promote_pause_resume_abort_rollback_and_their_errors(void **state)
{
    s_fix_t *f = *state;
    ds_tp_start(&f->tp, f->c, 3);
    s_wait_workers_up(f, 3);
    ds_cl_run_t r;

    /* A canary without auto-promote waits for `dsctl promote`. */
    assert_int_equal(S_DSCTL(f, &r, "deploy", "churn", "--artifact", "/srv/churn", "--cmd",
                             "serve --port ${PORT}", "--canary", "1", "--bake", "300ms",
                             "--max-parallel", "50%", "--health-tcp", "--no-auto-promote"),
                     0);
    s_wait_dsctl_state(f, "canary_passed");
    assert_int_equal(S_DSCTL(f, &r, "promote", "churn", "--reason", "looks good"), 0);
    s_wait_dsctl_state(f, "succeeded");
    s_assert_peers_on(f, "churn", 1);
    assert_int_equal(S_DSCTL(f, &r, "promote", "churn"), 1);
    s_assert_err(&r, "promote: no live deployment of churn");

    /* v2 bakes for long: pause, resume, then a second deploy is refused, then abort. */
    assert_int_equal(S_DSCTL(f, &r, "deploy", "churn", "--artifact", "/srv/churn", "--cmd",
                             "serve --port ${PORT}", "--canary", "1", "--bake", "10m",
                             "--healthy-deadline", "5s", "--progress-deadline", "20m"),
                     0);
    s_wait_dsctl_state(f, "baking");
    assert_int_equal(S_DSCTL(f, &r, "pause", "churn"), 0);
    s_wait_dsctl_state(f, "paused");
    assert_int_equal(S_DSCTL(f, &r, "resume", "churn"), 0);
    s_wait_dsctl_state(f, "baking");
    assert_int_equal(
        S_DSCTL(f, &r, "deploy", "churn", "--artifact", "/srv/churn", "--cmd", "serve"), 1);
    s_assert_err(&r, "live deployment of version 2");
    assert_int_equal(S_DSCTL(f, &r, "abort", "churn", "--reason", "wrong model"), 0);
    s_wait_dsctl_state(f, "aborted");

    /* Back to v1 everywhere, waiting for it. */
    assert_int_equal(S_DSCTL(f, &r, "rollback", "churn", "--to", "1", "--wait"), 0);
    s_assert_peers_on(f, "churn", 1);

    assert_int_equal(S_DSCTL(f, &r, "-o", "json", "history", "churn"), 0);
    for (const char *k =
             "\"pause\"\0\"resume\"\0\"abort\"\0\"rollback\"\0\"promote\"\0wrong model\0";
         *k; k += strlen(k) + 1)
        if (!strstr(r.out, k))
            fail_msg("history has no %s: %.3000s", k, r.out);
    assert_int_equal(S_DSCTL(f, &r, "status", "nosuch"), 1);
    s_assert_err(&r, "unknown service nosuch");
    ds_cl_passed(f->c);
}

static void test_workers_and_events_follow(void **state)
{
    s_fix_t *f = *state;
    ds_tp_start(&f->tp, f->c, 2);
    s_wait_workers_up(f, 2);
    ds_cl_run_t r;
    assert_int_equal(S_DSCTL(f, &r, "-o", "json", "workers"), 0);
    for (const char *k = "\"name\"\0\"state\"\0\"labels\"\0\"last_seen_ms\"\0\"zone\"\0"; *k;
         k += strlen(k) + 1)
        if (!strstr(r.out, k))
            fail_msg("workers -o json has no %s: %s", k, r.out);

    char path[700];
    snprintf(path, sizeof path, "%s/follow.out", f->c->dir);
    pid_t pid = s_follow(f, path);
    assert_int_equal(S_DSCTL(f, &r, "deploy", "churn", "--artifact", "/srv/churn", "--cmd", "serve",
                             "--bake", "200ms", "--wait"),
                     0);
    int64_t deadline = ds_cl_now_ms() + S_WAIT_MS;
    while (!s_file_has(path, "succeeded") && ds_cl_now_ms() < deadline)
        ds_cl_sleep_ms(100);
    kill(pid, SIGTERM);
    int status = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!s_file_has(path, "succeeded"))
        fail_msg("events --follow did not show the deployment succeed");
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(s_file_has(path, "worker w1 joined") || s_file_has(path, "churn"));

    assert_int_equal(S_DSCTL(f, &r, "-o", "json", "events"), 0);
    assert_non_null(strstr(r.out, "\"kind\""));
    ds_cl_passed(f->c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_promote_pause_resume_abort_rollback_and_their_errors,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_workers_and_events_follow, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
