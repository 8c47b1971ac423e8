/*  tests/unit/test_worker_proc.c - child processes, short commands, log
    rotation, /proc readings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol/error.h"
#include "tests/testutil.h"
#include "worker/proc.h"
#include "worker/sysstat.h"

typedef struct {
    char dir[512];
    pid_t pid;
} fx_t;

static void s_read(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("missing %s", path);
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
}

static int s_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(ds_test_mkdtemp("wproc", fx->dir, sizeof fx->dir), 0);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *fx = *state;
    if (fx->pid > 0) {
        kill(-fx->pid, SIGKILL);
        kill(fx->pid, SIGKILL);
        int st;
        waitpid(fx->pid, &st, 0);
    }
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

static void test_port_is_substituted_everywhere(void **state)
{
    (void)state;
    char *s = ds_proc_subst_port("serve --port ${PORT} --peer x${PORT}y", 8081);
    assert_string_equal(s, "serve --port 8081 --peer x8081y");
    free(s);
    s = ds_proc_subst_port("no port", 1);
    assert_string_equal(s, "no port");
    free(s);
}

static void test_spawn_runs_with_env_args_workdir_and_logs(void **state)
{
    fx_t *fx = *state;
    ds_kv_t env[] = {{.key = "GREETING", .value = "hi there"}};
    char **envp = ds_proc_env_new(env, 1, 4242, fx->dir, 9);
    assert_non_null(envp);
    char out[700], errp[700];
    snprintf(out, sizeof out, "%s/out.log", fx->dir);
    snprintf(errp, sizeof errp, "%s/err.log", fx->dir);
    char *args[] = {"a b", "${PORT}"};
    /* The args extend the command line (its last command). */
    ds_proc_spec_t ps = {.command = "echo oops >&2; printf '%s|' \"$PORT\" \"$GREETING\" "
                                    "\"$DS_VERSION\" \"$(pwd)\"; printf '[%s]'",
                         .args = args,
                         .n_args = 2,
                         .envp = envp,
                         .workdir = fx->dir,
                         .stdout_path = out,
                         .stderr_path = errp};
    char err[256];
    assert_int_equal(ds_proc_spawn(&ps, &fx->pid, err, sizeof err), 0);
    int st = 0;
    assert_int_equal(waitpid(fx->pid, &st, 0), fx->pid);
    fx->pid = 0;
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char buf[1024], want[1024];
    s_read(out, buf, sizeof buf);
    /* args are passed verbatim (substitution is the caller's job). */
    snprintf(want, sizeof want, "4242|hi there|9|%s|[a b][${PORT}]", fx->dir);
    assert_string_equal(buf, want);
    s_read(errp, buf, sizeof buf);
    if (strcmp(buf, "oops\n") != 0)
        fail_msg("stderr: [%s]", buf);
    ds_proc_env_free(envp);
}

static void test_simple_command_is_execed_in_its_own_group(void **state)
{
    fx_t *fx = *state;
    char **envp = ds_proc_env_new(NULL, 0, 1, fx->dir, 1);
    ds_proc_spec_t ps = {.command = "sleep 30", .envp = envp};
    char err[256];
    assert_int_equal(ds_proc_spawn(&ps, &fx->pid, err, sizeof err), 0);
    ds_procstat_t st = {0};
    assert_int_equal(ds_sysstat_proc(fx->pid, &st), 0);
    assert_true(ds_sysstat_proc_alive(fx->pid, st.start_ticks));
    assert_false(ds_sysstat_proc_alive(fx->pid, st.start_ticks + 1));
    /* Its own session and group: pgid == pid. */
    for (int i = 0; i < 200 && getpgid(fx->pid) != fx->pid; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(getpgid(fx->pid), fx->pid);
    char comm[256];
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)fx->pid);
    for (int i = 0; i < 200; i++) {
        s_read(path, comm, sizeof comm);
        if (strcmp(comm, "sleep\n") == 0)
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_string_equal(comm, "sleep\n");
    assert_int_equal(ds_proc_signal(fx->pid, SIGTERM), 0);
    int ws = 0;
    assert_int_equal(waitpid(fx->pid, &ws, 0), fx->pid);
    assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGTERM);
    assert_false(ds_sysstat_proc_alive(fx->pid, st.start_ticks));
    fx->pid = 0;
    ds_proc_env_free(envp);
}

static void test_command_output_tail_and_exit_code(void **state)
{
    fx_t *fx = *state;
    char **envp = ds_proc_env_new(NULL, 0, 1, fx->dir, 1);
    ds_proc_spec_t ps = {.command = "i=0; while [ $i -lt 500 ]; do echo line $i; i=$((i+1)); "
                                    "done; echo last >&2; exit 3",
                         .envp = envp};
    ds_cmd_t c;
    char err[256];
    assert_int_equal(ds_cmd_start(&c, &ps, ds_test_now_ms() + 10000, err, sizeof err), 0);
    bool done = false;
    /* Bounded by time, not by turns: once the output is closed the child
       may still need a moment to exit (slow under the sanitizers). */
    for (uint64_t until = ds_test_now_ms() + 10000; !done && ds_test_now_ms() < until;) {
        struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
        if (c.fd >= 0)
            (void)poll(&pfd, 1, 10);
        else
            usleep(10000);
        done = ds_cmd_poll(&c, ds_test_now_ms());
    }
    assert_true(done);
    assert_false(c.timed_out);
    assert_int_equal(c.exit_code, 3);
    assert_true(c.tail_len <= DS_CMD_TAIL);
    assert_non_null(strstr(c.tail, "line 499\nlast\n"));
    assert_null(strstr(c.tail, "line 1\n"));
    char line[128];
    ds_cmd_tail_line(&c, line, sizeof line);
    assert_true(strlen(line) < sizeof line);
    if (!strstr(line, "line 499 | last"))
        fail_msg("tail line: [%s]", line);
    ds_proc_env_free(envp);
}

static void test_command_is_killed_at_its_deadline(void **state)
{
    fx_t *fx = *state;
    char **envp = ds_proc_env_new(NULL, 0, 1, fx->dir, 1);
    ds_proc_spec_t ps = {.command = "sleep 30", .envp = envp};
    ds_cmd_t c;
    char err[256];
    assert_int_equal(ds_cmd_start(&c, &ps, ds_test_now_ms() + 100, err, sizeof err), 0);
    pid_t pid = c.pid;
    bool done = false;
    for (int i = 0; i < 500 && !done; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        done = ds_cmd_poll(&c, ds_test_now_ms());
    }
    assert_true(done);
    assert_true(c.timed_out);
    assert_int_equal(kill(pid, 0), -1);
    ds_proc_env_free(envp);
}

static void test_log_rotation_keeps_n_files(void **state)
{
    fx_t *fx = *state;
    char log[700], path[800], buf[256];
    snprintf(log, sizeof log, "%s/stdout.log", fx->dir);
    for (int round = 0; round < 5; round++) {
        FILE *f = fopen(log, "a");
        assert_non_null(f);
        fprintf(f, "round %d %s\n", round, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        fclose(f);
        assert_int_equal(ds_proc_log_rotate(log, 10, 2), 0);
    }
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    assert_int_equal(st.st_size, 0);
    snprintf(path, sizeof path, "%s.1", log);
    s_read(path, buf, sizeof buf);
    assert_non_null(strstr(buf, "round 4"));
    snprintf(path, sizeof path, "%s.2", log);
    s_read(path, buf, sizeof buf);
    assert_non_null(strstr(buf, "round 3"));
    snprintf(path, sizeof path, "%s.3", log);
    assert_int_not_equal(access(path, F_OK), 0);
    /* Below the cap: untouched. */
    assert_int_equal(ds_proc_log_rotate(log, 10, 2), 0);
}

static void test_machine_readings(void **state)
{
    (void)state;
    double load = -1;
    assert_int_equal(ds_sysstat_load(&load), 0);
    assert_true(load >= 0);
    uint64_t used = 0, total = 0, busy = 0, all = 0, free_kb = 0;
    assert_int_equal(ds_sysstat_mem(&used, &total), 0);
    assert_true(total > 0 && used <= total);
    assert_int_equal(ds_sysstat_cpu(&busy, &all), 0);
    assert_true(all > 0 && busy <= all);
    assert_int_equal(ds_sysstat_disk_free("/tmp", &free_kb), 0);
    ds_procstat_t st;
    assert_int_equal(ds_sysstat_proc(getpid(), &st), 0);
    assert_true(st.rss_kb > 0);
    assert_int_equal(ds_sysstat_proc(0x7ffffff0, &st), DS_ENOTFOUND);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_port_is_substituted_everywhere),
        cmocka_unit_test_setup_teardown(test_spawn_runs_with_env_args_workdir_and_logs, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_simple_command_is_execed_in_its_own_group, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_command_output_tail_and_exit_code, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_command_is_killed_at_its_deadline, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_log_rotation_keeps_n_files, s_setup, s_teardown),
        cmocka_unit_test(test_machine_readings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
