/*  tests/unit/test_worker_scrape.c - scraping an instance's /metrics:
    parsing responses, and a live scrape of ds_testsvc on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "protocol/error.h"
#include "tests/testutil.h"
#include "worker/scrape.h"

#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static ds_metrics_spec_t s_spec(void)
{
    return (ds_metrics_spec_t){"/metrics", 200, "http_requests_total", "http_errors_total",
                               "http_seconds"};
}

static double s_value(const ds_appmetrics_t *m, const char *name)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (strcmp(m->metrics[i].name, name) == 0)
            return m->metrics[i].value;
    return NAN;
}

static void test_parse_takes_the_named_counters_and_histogram(void **state)
{
    (void)state;
    static const char resp[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                               "# TYPE http_requests_total counter\n"
                               "http_requests_total{code=\"200\"} 90\n"
                               "http_requests_total{code=\"500\"} 10\n"
                               "http_errors_total 10\n"
                               "http_seconds_bucket{le=\"0.1\"} 80\n"
                               "http_seconds_bucket{le=\"+Inf\"} 100\n"
                               "http_seconds_sum 7.5\n"
                               "http_seconds_count 100\n"
                               "other_total 5\n";
    ds_metrics_spec_t m = s_spec();
    ds_appmetrics_t out;
    char why[256];
    assert_int_equal(ds_scrape_parse(resp, sizeof resp - 1, &m, &out, why, sizeof why), 0);
    assert_true(s_value(&out, "requests") == 100);
    assert_true(s_value(&out, "errors") == 10);
    assert_true(s_value(&out, "latency_count") == 100);
    assert_true(s_value(&out, "latency_le:+Inf") == 100);
}

static void test_parse_refuses_bad_status_head_and_body(void **state)
{
    (void)state;
    ds_metrics_spec_t m = s_spec();
    ds_appmetrics_t out;
    char why[256];
    static const char e500[] = "HTTP/1.0 500 Internal Server Error\r\n\r\n";
    assert_int_equal(ds_scrape_parse(e500, sizeof e500 - 1, &m, &out, why, sizeof why), DS_EINVAL);
    assert_non_null(strstr(why, "http status 500"));
    static const char nohead[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n";
    assert_int_equal(ds_scrape_parse(nohead, sizeof nohead - 1, &m, &out, why, sizeof why),
                     DS_EINVAL);
    static const char junk[] = "HTTP/1.0 200 OK\r\n\r\nhttp_requests_total{code=\"2\" 3\n";
    assert_int_equal(ds_scrape_parse(junk, sizeof junk - 1, &m, &out, why, sizeof why), DS_EINVAL);
    assert_non_null(strstr(why, "line 1"));
    assert_int_equal(ds_scrape_parse("xyz", 3, &m, &out, why, sizeof why), DS_EINVAL);
}

/* ---- live ---------------------------------------------------------------------------- */

/*  Steps the scraper until it has a result (bounded). */
static void s_scrape_until_done(ds_scrape_t *s, const ds_metrics_spec_t *m, uint16_t port)
{
    uint64_t until = ds_test_now_ms() + 5000;
    ds_scrape_step(s, m, port, ds_test_now_ms());
    while (ds_scrape_fd(s) >= 0 && ds_test_now_ms() < until) {
        struct pollfd p = {ds_scrape_fd(s), POLLIN, 0};
        (void)poll(&p, 1, 20);
        ds_scrape_step(s, m, port, ds_test_now_ms());
    }
}

static void test_live_scrape_of_the_test_service_and_a_refused_port(void **state)
{
    (void)state;
    int port = ds_test_free_port();
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(DS_TESTSVC_BIN, DS_TESTSVC_BIN, "--port", port_text, (char *)NULL);
        _exit(127);
    }
    ds_metrics_spec_t m = {"/metrics", 100, "requests_total", "errors_total", ""};
    ds_scrape_t s;
    ds_scrape_init(&s);
    uint64_t until = ds_test_now_ms() + 5000;
    while (!s.have && ds_test_now_ms() < until) { /* the service needs a moment to listen */
        s.next_ms = 0;
        s_scrape_until_done(&s, &m, (uint16_t)port);
        if (!s.have)
            usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (!s.have)
        fail_msg("no scrape succeeded: %s", s.why);
    assert_false(isnan(s_value(&s.metrics, "requests")));
    assert_string_equal(s.why, "");

    /* The service is gone: the next scrape fails and keeps nothing. */
    s.next_ms = 0;
    s_scrape_until_done(&s, &m, (uint16_t)port);
    assert_false(s.have);
    assert_true(s.why[0] != '\0');
    ds_scrape_fini(&s);
}

static void test_no_metrics_path_never_scrapes(void **state)
{
    (void)state;
    ds_metrics_spec_t m = {"", 0, "", "", ""};
    ds_scrape_t s;
    ds_scrape_init(&s);
    ds_scrape_step(&s, &m, 20000, 1000);
    assert_int_equal(ds_scrape_fd(&s), -1);
    assert_false(s.have);
    ds_scrape_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_takes_the_named_counters_and_histogram),
        cmocka_unit_test(test_parse_refuses_bad_status_head_and_body),
        cmocka_unit_test(test_live_scrape_of_the_test_service_and_a_refused_port),
        cmocka_unit_test(test_no_metrics_path_never_scrapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
