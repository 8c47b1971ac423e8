/*  tests/unit/test_worker_health.c - health probes against ds_testsvc on
    127.0.0.1 (http, tcp, exec) and the threshold rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol/messages.h"
#include "tests/testutil.h"
#include "worker/health.h"

typedef struct {
    char dir[512];
    pid_t server;
    uint16_t port;
    char **envp;
} fx_t;

/*  Starts ds_testsvc with extra flags and waits until it listens. */
static void s_server(fx_t *fx, const char *flag, const char *value)
{
    fx->port = ds_test_free_port();
    char port[16];
    snprintf(port, sizeof port, "%u", (unsigned)fx->port);
    fx->server = fork();
    assert_true(fx->server >= 0);
    if (fx->server == 0) {
        execl(DS_TESTSVC_BIN, "ds_testsvc", "--port", port, flag ? flag : (char *)NULL, value,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(fx->port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("ds_testsvc did not listen");
}

static int s_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(ds_test_mkdtemp("whealth", fx->dir, sizeof fx->dir), 0);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *fx = *state;
    if (fx->server > 0) {
        kill(fx->server, SIGKILL);
        int st;
        waitpid(fx->server, &st, 0);
    }
    ds_proc_env_free(fx->envp);
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

/*  Runs one probe to its end (polled, at most 5 s). */
static bool s_probe(fx_t *fx, const ds_health_spec_t *h, char *why, size_t whylen, uint64_t *lat)
{
    ds_probe_t p;
    ds_probe_init(&p);
    fx->envp = fx->envp ? fx->envp : ds_proc_env_new(NULL, 0, fx->port, fx->dir, 1);
    if (ds_probe_start(&p, h, fx->port, fx->envp, fx->dir, ds_test_now_ms(), why, whylen) != 0)
        return false;
    bool passed = false;
    for (int i = 0; i < 500; i++) {
        if (ds_probe_poll(&p, ds_test_now_ms(), &passed, lat, why, whylen)) {
            assert_false(ds_probe_busy(&p));
            assert_int_equal(ds_probe_fd(&p), -1);
            return passed;
        }
        assert_true(ds_probe_busy(&p));
        struct pollfd pfd = {.fd = ds_probe_fd(&p), .events = POLLIN};
        (void)poll(&pfd, 1, 10);
    }
    ds_probe_abort(&p);
    fail_msg("probe did not finish");
    return false;
}

static ds_health_spec_t s_h(uint8_t kind)
{
    ds_health_spec_t h = {.kind = kind,
                          .path = "/healthz",
                          .command = "",
                          .interval_ms = 100,
                          .timeout_ms = 500,
                          .healthy_threshold = 2,
                          .unhealthy_threshold = 2,
                          .start_grace_ms = 1000};
    return h;
}

static void test_http_probe_passes_on_2xx_and_fails_on_503(void **state)
{
    fx_t *fx = *state;
    char path[700], why[256] = "";
    snprintf(path, sizeof path, "%s/sick", fx->dir);
    s_server(fx, "--unhealthy-file", path);
    ds_health_spec_t h = s_h(DS_HEALTH_HTTP);
    uint64_t lat = 0;
    assert_true(s_probe(fx, &h, why, sizeof why, &lat));
    assert_true(lat > 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_false(s_probe(fx, &h, why, sizeof why, &lat));
    assert_string_equal(why, "http status: 503");
    h.path = "/nothing-here";
    unlink(path);
    assert_false(s_probe(fx, &h, why, sizeof why, &lat));
    assert_string_equal(why, "http status: 404");
}

static void test_http_probe_times_out_on_a_slow_service(void **state)
{
    fx_t *fx = *state;
    s_server(fx, "--slow", "2000");
    ds_health_spec_t h = s_h(DS_HEALTH_HTTP);
    h.timeout_ms = 100;
    char why[256] = "";
    uint64_t lat = 0;
    assert_false(s_probe(fx, &h, why, sizeof why, &lat));
    assert_string_equal(why, "timed out");
}

static void test_tcp_probe_passes_when_listening_and_fails_when_not(void **state)
{
    fx_t *fx = *state;
    s_server(fx, NULL, NULL);
    ds_health_spec_t h = s_h(DS_HEALTH_TCP);
    char why[256] = "";
    uint64_t lat = 0;
    assert_true(s_probe(fx, &h, why, sizeof why, &lat));
    kill(fx->server, SIGKILL);
    int st;
    waitpid(fx->server, &st, 0);
    fx->server = 0;
    assert_false(s_probe(fx, &h, why, sizeof why, &lat));
    assert_non_null(strstr(why, "connect"));
}

static void test_exec_probe_uses_exit_code_and_port(void **state)
{
    fx_t *fx = *state;
    fx->port = 4321;
    ds_health_spec_t h = s_h(DS_HEALTH_EXEC);
    h.command = "test \"$PORT\" = 4321";
    char why[256] = "";
    uint64_t lat = 0;
    assert_true(s_probe(fx, &h, why, sizeof why, &lat));
    h.command = "exit 4";
    assert_false(s_probe(fx, &h, why, sizeof why, &lat));
    assert_string_equal(why, "health command exited with 4");
    h.command = "sleep 5";
    h.timeout_ms = 100;
    assert_false(s_probe(fx, &h, why, sizeof why, &lat));
    assert_string_equal(why, "health command timed out");
}

static void test_thresholds_and_start_grace(void **state)
{
    (void)state;
    ds_health_spec_t h = s_h(DS_HEALTH_HTTP);
    h.healthy_threshold = 2;
    h.unhealthy_threshold = 3;
    h.start_grace_ms = 1000;
    ds_health_track_t t = {0};
    /* Failures inside the start grace are not counted. */
    ds_health_record(&t, &h, false, 500, 0);
    ds_health_record(&t, &h, false, 900, 0);
    assert_int_equal(t.fails, 0);
    assert_int_equal(t.health, DS_HEALTH_UNKNOWN);
    ds_health_record(&t, &h, true, 950, 0);
    assert_int_equal(t.health, DS_HEALTH_UNKNOWN);
    ds_health_record(&t, &h, true, 1000, 0);
    assert_int_equal(t.health, DS_HEALTH_PASSING);
    /* Two failures are not enough, the third is. */
    ds_health_record(&t, &h, false, 1100, 0);
    ds_health_record(&t, &h, false, 1200, 0);
    assert_int_equal(t.health, DS_HEALTH_PASSING);
    assert_int_equal(t.fails, 2);
    ds_health_record(&t, &h, false, 1300, 0);
    assert_int_equal(t.health, DS_HEALTH_FAILING);
    /* One pass is not enough to recover, two are. */
    ds_health_record(&t, &h, true, 1400, 0);
    assert_int_equal(t.health, DS_HEALTH_FAILING);
    assert_int_equal(t.fails, 0);
    ds_health_record(&t, &h, true, 1500, 0);
    assert_int_equal(t.health, DS_HEALTH_PASSING);
    assert_int_equal(t.total, 9);
    assert_int_equal(t.passed, 4);
    /* After the grace, failures count even before the first pass. */
    ds_health_track_t u = {0};
    for (int i = 0; i < 3; i++)
        ds_health_record(&u, &h, false, 2000 + (uint64_t)i, 0);
    assert_int_equal(u.health, DS_HEALTH_FAILING);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_probe_passes_on_2xx_and_fails_on_503, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_http_probe_times_out_on_a_slow_service, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_tcp_probe_passes_when_listening_and_fails_when_not,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_exec_probe_uses_exit_code_and_port, s_setup,
                                        s_teardown),
        cmocka_unit_test(test_thresholds_and_start_grace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
