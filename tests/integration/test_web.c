/*  tests/integration/test_web.c - what the coordinators show: canary
    analysis on the canary's request metrics (health passing, errors
    high: rolled back by the analysis), /metrics parsed back by a
    Prometheus text parser, /api/status, and the web page in a real
    headless Chromium. Test peers report request counters as a worker
    scraping its instances would. */
#define DS_RF_NAME "web"
#include "tests/integration/release_fix.h"

#include "protocol/promtext.h"

#include <sys/stat.h>

#define S_CHROMIUM "/usr/bin/chromium"

static const ds_analysis_t s_error_check = {
    .max_error_ratio = 0.05,
    .max_p99_latency_ms = DS_SPEC_OFF,
    .max_restarts = DS_SPEC_OFF,
    .min_health_ratio = DS_SPEC_OFF,
    .max_error_ratio_vs_baseline = DS_SPEC_OFF,
    .max_latency_vs_baseline = DS_SPEC_OFF,
    .min_samples = 20,
    .on_inconclusive = DS_INCONCLUSIVE_FAIL,
};

/*  The leader's http endpoint. */
static size_t s_leader(s_fix_t *f)
{
    return ds_cl_wait_leader(f->c, 0, 10000, NULL);
}

/*  Deploys v1 (clean) and v2 (30% errors, health passing) of "churn". */
static void s_story(s_fix_t *f)
{
    s_analysis = &s_error_check;
    ds_tp_start(&f->tp, f->c, 3);
    s_wait_workers_up(f, 3);
    char msg[2048];
    ds_op_reply_t op;
    assert_int_equal(s_deploy(f, "churn", 1500, false, &op, msg, sizeof msg), 0);
    s_wait_state(f, "churn", op.deployment_id, "succeeded", 1);
    f->tp.noisy[0] = 2;
    assert_int_equal(s_deploy(f, "churn", 4000, false, &op, msg, sizeof msg), 0);
    s_status_t st = s_wait_state(f, "churn", op.deployment_id, "rolled_back", 1);
    s_assert_peers_on(f, "churn", 1);
    if (!strstr(st.reason, "error_ratio"))
        fail_msg("the rollback does not say why: %s", st.reason);
}

/*  Runs headless Chromium with `what` (its action and redirections) in
    a profile of its own, with its messages in the test directory. A
    loaded machine can make a start stall, so it gets a second try. */
static void s_chromium(s_fix_t *f, const char *what)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "DBUS_SESSION_BUS_ADDRESS=disabled: timeout -k 5 90 %s --headless --no-sandbox "
             "--disable-gpu --disable-dev-shm-usage --no-first-run --no-default-browser-check "
             "--disable-extensions --disable-background-networking --disable-component-update "
             "--disable-sync --mute-audio --virtual-time-budget=8000 --window-size=1280,1400 "
             "--user-data-dir='%s/chromium' %s 2>>'%s/chromium.log'",
             S_CHROMIUM, f->c->dir, what, f->c->dir);
    int rc = system(cmd);
    if (rc != 0) {
        printf("[ web ] chromium ended with wait status %d; trying once more\n", rc);
        rc = system(cmd);
    }
    if (rc != 0)
        fail_msg("chromium failed twice (wait status %d): see %s/chromium.log", rc, f->c->dir);
}

static void test_canary_with_high_error_ratio_and_passing_health_rolls_back(void **state)
{
    s_fix_t *f = *state;
    s_story(f);
    char rows[8192];
    s_history_len(f, "churn", rows, sizeof rows);
    assert_non_null(strstr(rows, "verdict:"));
    ds_query_req_t q = {"churn", false, 0};
    ds_msg_t *r = NULL;
    char msg[1024];
    assert_int_equal(s_call(f, DS_MSG_HISTORY, &q, DS_MSG_HISTORY_REPLY, &r, msg, sizeof msg), 0);
    const ds_history_reply_t *h = r->body;
    bool verdict = false;
    for (uint32_t i = 0; i < h->n_rows; i++)
        verdict = verdict || (strcmp(h->rows[i].event, "verdict") == 0 &&
                              strstr(h->rows[i].reason, "error_ratio") &&
                              strstr(h->rows[i].reason, "> max 0.05"));
    ds_msg_destroy(&r);
    assert_true(verdict);

    /* dsctl top: one sample of the telemetry the leader holds. */
    ds_cl_run_t run;
    assert_int_equal(ds_cl_dsctl(f->c, &run, f->c->rpcs, "-o", "json", "top", "--once"), 0);
    for (const char *k = "\"services\"\0\"request_rate\"\0\"error_ratio\"\0\"w1\"\0"; *k;
         k += strlen(k) + 1)
        if (!strstr(run.out, k))
            fail_msg("dsctl top -o json has no %s: %s", k, run.out);
    assert_int_equal(ds_cl_dsctl(f->c, &run, f->c->rpcs, "top", "churn", "--once"), 0);
    assert_non_null(strstr(run.out, "REQ/S"));
    assert_int_equal(ds_cl_dsctl(f->c, &run, f->c->rpcs, "top", "--interval", "5x"), 2);
    ds_cl_passed(f->c);
}

static void test_metrics_parse_back_and_the_page_shows_the_story_in_chromium(void **state)
{
    s_fix_t *f = *state;
    s_story(f);
    size_t l = s_leader(f);
    static char body[1 << 20];
    assert_int_equal(ds_cl_http_get(f->c, l, "/metrics", body, sizeof body, 5000), 200);
    ds_promtext_counter_t c[] = {
        {"gossamer_raft_term", 0, 0},          {"gossamer_workers", 0, 0},
        {"gossamer_rpc_requests_total", 0, 0}, {"gossamer_deployments", 0, 0},
        {"gossamer_service_instances", 0, 0},  {"gossamer_process_open_fds", 0, 0},
        {"gossamer_telemetry_series", 0, 0}};
    ds_promtext_histogram_t *lat = calloc(1, sizeof *lat);
    assert_non_null(lat);
    lat->name = "gossamer_rpc_latency_seconds";
    char err[256];
    if (ds_promtext_extract(body, strlen(body), c, 7, lat, 1, err, sizeof err) != 0)
        fail_msg("/metrics does not parse: %s", err);
    for (size_t i = 0; i < 7; i++)
        if (!c[i].series)
            fail_msg("/metrics has no %s", c[i].name);
    assert_true(c[0].value >= 1);
    assert_true(c[1].value == 3); /* up, down and unknown add up to the workers */
    assert_true(c[2].value > 0);
    assert_true(lat->has_count && lat->count > 0);
    free(lat);

    assert_int_equal(ds_cl_http_get(f->c, l, "/api/status", body, sizeof body, 5000), 200);
    assert_non_null(strstr(body, "\"service\":\"churn\""));
    assert_non_null(strstr(body, "\"samples\":[{"));

    if (access(S_CHROMIUM, X_OK) != 0)
        fail_msg("%s is not installed (Debian package chromium; tests/install-deps installs it)",
                 S_CHROMIUM);
    char url[96], dom[800], shot[800], cmd[2048];
    snprintf(url, sizeof url, "http://%s/", f->c->m[l].http);
    snprintf(dom, sizeof dom, "%s/page.html", f->c->dir);
    snprintf(shot, sizeof shot, "%s/page.png", f->c->dir);
    snprintf(cmd, sizeof cmd, "--dump-dom '%s' >'%s'", url, dom);
    s_chromium(f, cmd);
    FILE *in = fopen(dom, "r");
    assert_non_null(in);
    size_t n = fread(body, 1, sizeof body - 1, in);
    body[n] = '\0';
    fclose(in);
    const char *want[] = {"data-loaded=\"1\"",
                          "data-service=\"churn\"",
                          "rolled_back",
                          "class=\"canary\"",
                          "analysis: fail",
                          "w1",
                          "w3",
                          "leader"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(body, want[i]))
            fail_msg("the page in Chromium does not show %s: %.2000s", want[i], body);
    snprintf(cmd, sizeof cmd, "--screenshot='%s' '%s' >/dev/null", shot, url);
    s_chromium(f, cmd);
    struct stat sb;
    assert_int_equal(stat(shot, &sb), 0);
    assert_true(sb.st_size > 1000);
    const char *keep = getenv("DS_SCREENSHOT");
    if (keep) {
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", shot, keep);
        assert_int_equal(system(cmd), 0);
    }
    ds_cl_passed(f->c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_canary_with_high_error_ratio_and_passing_health_rolls_back, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_metrics_parse_back_and_the_page_shows_the_story_in_chromium, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
