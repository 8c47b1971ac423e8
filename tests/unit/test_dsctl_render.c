/*  tests/unit/test_dsctl_render.c - the replies of the release commands
    as JSON (the stable keys of docs/dsctl.md) and as tables. */
#include "dsctl/render.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    FILE *f;
    char *text;
    size_t len;
    ds_json_t *j;
} s_out_t;

static int s_setup(void **state)
{
    s_out_t *o = calloc(1, sizeof *o);
    if (!o)
        return -1;
    o->f = open_memstream(&o->text, &o->len);
    o->j = o->f ? ds_json_new(o->f, false) : NULL;
    *state = o;
    return o->j ? 0 : -1;
}

static int s_teardown(void **state)
{
    s_out_t *o = *state;
    ds_json_destroy(&o->j);
    if (o->f)
        fclose(o->f);
    free(o->text);
    free(o);
    return 0;
}

static const char *s_json(s_out_t *o)
{
    assert_int_equal(ds_json_finish(o->j), 0);
    return o->text;
}

static const char *s_text(s_out_t *o)
{
    fflush(o->f);
    return o->text;
}

static void s_has(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("expected %s in:\n%s", needle, text);
}

/* ---- fixtures ------------------------------------------------------ */

static ds_instance_row_t s_instances[] = {
    {"w1", 3, "running", "passing", 20001, 0, ""},
    {"w2", 2, "running", "failing", 20002, 4, "http status: 503"},
};

static ds_service_status_t s_service(bool with_deployment)
{
    ds_service_status_t s = {
        .service = "churn-model",
        .current_version = 3,
        .desired_version = 3,
        .has_deployment = with_deployment,
        .deployment = {.id = 57,
                       .version = 3,
                       .from_version = 2,
                       .state = "canary",
                       .reason = "canary assigned to 1 worker",
                       .wave = 1,
                       .updated = 1,
                       .healthy = 1,
                       .total = 2,
                       .started_at_ms = 1714557600000ull, /* 2024-05-01T10:00:00Z */
                       .updated_at_ms = 1714557612000ull},
        .n_instances = 2,
        .instances = s_instances,
    };
    return s;
}

/* ---- JSON ---------------------------------------------------------- */

static void test_status_of_one_service_has_the_stable_keys(void **state)
{
    s_out_t *o = *state;
    ds_service_status_t s = s_service(true);
    ds_render_service_json(o->j, &s);
    const char *t = s_json(o);
    s_has(t, "{\"service\":\"churn-model\",\"current_version\":3,\"desired_version\":3,");
    s_has(t, "\"deployment\":{\"id\":57,\"version\":3,\"from_version\":2,\"state\":\"canary\","
             "\"reason\":\"canary assigned to 1 worker\",\"wave\":1,\"updated\":1,\"healthy\":1,"
             "\"total\":2,\"started_at_ms\":1714557600000,\"started_at\":\"2024-05-01T10:00:00Z\","
             "\"updated_at_ms\":1714557612000}");
    s_has(t, "\"instances\":[{\"worker\":\"w1\",\"version\":3,\"state\":\"running\",\"health\":"
             "\"passing\",\"port\":20001,\"restarts\":0,\"reason\":\"\"},{\"worker\":\"w2\","
             "\"version\":2,\"state\":\"running\",\"health\":\"failing\",\"port\":20002,"
             "\"restarts\":4,\"reason\":\"http status: 503\"}]}");
}

static void test_no_deployment_is_null(void **state)
{
    s_out_t *o = *state;
    ds_service_status_t s = s_service(false);
    s.n_instances = 0;
    ds_render_service_json(o->j, &s);
    const char *t = s_json(o);
    s_has(t, "\"deployment\":null");
    s_has(t, "\"instances\":[]");
}

static void test_status_of_all_lists_services_and_insecure(void **state)
{
    s_out_t *o = *state;
    ds_service_status_t svcs[2] = {s_service(true), s_service(false)};
    svcs[1].service = "fraud";
    ds_status_reply_t st = {.insecure = true, .n_services = 2, .services = svcs};
    ds_render_status_json(o->j, &st);
    const char *t = s_json(o);
    assert_true(strncmp(t, "{\"services\":[{\"service\":\"churn-model\"", 37) == 0);
    s_has(t, "{\"service\":\"fraud\"");
    s_has(t, "],\"insecure\":true}\n");
}

static void test_history_rows_carry_rfc3339_times_and_every_key(void **state)
{
    s_out_t *o = *state;
    ds_history_row_t rows[] = {
        {2, 3, "deploy", "live", 1714557600123ull, "dsctl-host-1-ab", "because"},
        {1, 2, "rollback", "succeeded", 0, "", ""},
    };
    ds_history_reply_t h = {"churn-model", 2, rows};
    ds_render_history_json(o->j, &h);
    const char *t = s_json(o);
    s_has(t, "[{\"version\":3,\"outcome\":\"live\",\"created_at\":\"2024-05-01T10:00:00Z\","
             "\"created_at_ms\":1714557600123,\"by\":\"dsctl-host-1-ab\",\"reason\":\"because\","
             "\"seq\":2,\"event\":\"deploy\"}");
    s_has(t, "\"created_at\":null,\"created_at_ms\":0,\"by\":\"\"");
}

static void test_workers_have_labels_as_an_object_and_telemetry(void **state)
{
    s_out_t *o = *state;
    ds_kv_t labels[] = {{"zone", "a"}, {"gpu", "true"}};
    ds_worker_row_t w[] = {{.name = "w1",
                            .state = "up",
                            .n_labels = 2,
                            .labels = labels,
                            .last_seen_ms = 1200,
                            .generation = 7,
                            .software_version = "0.1.0",
                            .telemetry = {0.5, 12.25, 1024, 2048, 4096}},
                           {.name = "w2", .state = "down", .software_version = ""}};
    ds_workers_reply_t r = {2, w};
    ds_render_workers_json(o->j, &r);
    const char *t = s_json(o);
    s_has(t, "[{\"name\":\"w1\",\"state\":\"up\",\"labels\":{\"zone\":\"a\",\"gpu\":\"true\"},"
             "\"last_seen_ms\":1200,\"generation\":7,\"software_version\":\"0.1.0\","
             "\"telemetry\":{\"load1\":0.5,\"cpu_pct\":12.25,\"mem_used_kb\":1024,"
             "\"mem_total_kb\":2048,\"disk_free_kb\":4096}}");
    s_has(t, "{\"name\":\"w2\",\"state\":\"down\",\"labels\":{},");
}

static void test_op_reply_and_event_objects(void **state)
{
    s_out_t *o = *state;
    ds_op_reply_t op = {"churn-model", 3, 57, "pending", "", 123};
    ds_event_t e = {9, 1714557600123ull, "deploy", "churn-model", "v3 \"started\""};
    ds_json_array_begin(o->j);
    ds_render_op_json(o->j, &op, false);
    ds_render_op_json(o->j, &op, true);
    ds_json_key(o->j, "result");
    ds_json_str(o->j, "succeeded");
    ds_json_object_end(o->j);
    ds_render_event_json(o->j, &e);
    ds_json_array_end(o->j);
    const char *t = s_json(o);
    s_has(t, "{\"service\":\"churn-model\",\"version\":3,\"deployment_id\":57,\"state\":"
             "\"pending\",\"message\":\"\",\"index\":123}");
    s_has(t, "\"index\":123,\"result\":\"succeeded\"}");
    s_has(t, "{\"seq\":9,\"ts_ms\":1714557600123,\"ts\":\"2024-05-01T10:00:00.123Z\",\"kind\":"
             "\"deploy\",\"service\":\"churn-model\",\"message\":\"v3 \\\"started\\\"\"}");
}

/* ---- text ---------------------------------------------------------- */

static void test_service_text_shows_the_deployment_and_a_table_of_instances(void **state)
{
    s_out_t *o = *state;
    ds_service_status_t s = s_service(true);
    assert_int_equal(ds_render_service_text(o->f, &s, 1714557600000ull + 125000), 0);
    const char *t = s_text(o);
    s_has(t, "service: churn-model  current: 3  desired: 3\n");
    s_has(t, "deployment 57: 2 -> 3  canary  wave 1  updated 1/2  healthy 1/2  started 2m5s ago\n");
    s_has(t, "reason: canary assigned to 1 worker\n\n");
    s_has(t, "WORKER  VERSION  STATE    HEALTH   PORT   RESTARTS\n"
             "w1            3  running  passing  20001  0\n"
             "w2            2  running  failing  20002  4\n"
             "w2 v2: http status: 503\n");
}

static void test_service_text_without_deployment_or_instances(void **state)
{
    s_out_t *o = *state;
    ds_service_status_t s = s_service(false);
    s.n_instances = 0;
    s.current_version = 0;
    assert_int_equal(ds_render_service_text(o->f, &s, 0), 0);
    const char *t = s_text(o);
    s_has(t, "current: -  desired: 3\ndeployment: none\n\nno instances\n");
}

static void test_status_table_has_one_row_per_service(void **state)
{
    s_out_t *o = *state;
    ds_service_status_t svcs[2] = {s_service(true), s_service(false)};
    svcs[1].service = "fraud";
    ds_status_reply_t st = {.insecure = false, .n_services = 2, .services = svcs};
    assert_int_equal(ds_render_status_table(o->f, &st), 0);
    const char *t = s_text(o);
    s_has(t, "SERVICE      CURRENT  DESIRED  DEPLOYMENT  STATE   WAVE  UPDATED  HEALTHY\n"
             "churn-model        3        3          57  canary     1      1/2      1/2\n"
             "fraud              3        3           -  -          -        -        -\n");
}

static void test_empty_replies_say_so(void **state)
{
    s_out_t *o = *state;
    ds_status_reply_t st = {0};
    ds_history_reply_t h = {0};
    ds_workers_reply_t w = {0};
    assert_int_equal(ds_render_status_table(o->f, &st), 0);
    assert_int_equal(ds_render_history_table(o->f, &h), 0);
    assert_int_equal(ds_render_workers_table(o->f, &w), 0);
    const char *t = s_text(o);
    s_has(t, "no services yet");
    s_has(t, "no history\n");
    s_has(t, "no workers have joined\n");
}

static void test_history_and_workers_tables(void **state)
{
    s_out_t *o = *state;
    ds_history_row_t rows[] = {{12, 3, "deploy", "live", 1714557600000ull, "alice", "new model"},
                               {11, 2, "verdict", "failed", 1714557500000ull, "", "bad\x1b[2J"}};
    ds_history_reply_t h = {"churn-model", 2, rows};
    assert_int_equal(ds_render_history_table(o->f, &h), 0);
    ds_kv_t labels[] = {{"zone", "a"}, {"gpu", "true"}};
    ds_worker_row_t w[] = {{.name = "w1",
                            .state = "up",
                            .n_labels = 2,
                            .labels = labels,
                            .last_seen_ms = 1500,
                            .generation = 7,
                            .software_version = "0.1.0",
                            .telemetry = {0.5, 12.25, 2048, 4096, 0}}};
    ds_workers_reply_t wr = {1, w};
    assert_int_equal(ds_render_workers_table(o->f, &wr), 0);
    const char *t = s_text(o);
    s_has(t, "SEQ  VERSION  EVENT    OUTCOME  WHEN                  BY          REASON\n"
             " 12        3  deploy   live     2024-05-01T10:00:00Z  alice       new model\n"
             " 11        2  verdict  failed   2024-05-01T09:58:20Z  controller  bad?[2J\n");
    s_has(t, "NAME  STATE  LAST SEEN  GENERATION  LOAD  CPU%   MEM  LABELS\n"
             "w1    up        1s ago           7  0.50  12.2  2/4M  zone=a,gpu=true\n");
}

static void test_event_lines_and_small_formatters(void **state)
{
    s_out_t *o = *state;
    ds_event_t e = {9, 1714557600123ull, "worker", "", "w1 \x07joined"};
    ds_render_event_line(o->f, &e);
    s_has(s_text(o), "2024-05-01T10:00:00.123Z  worker      -                 w1 ?joined\n");
    char b[64];
    ds_render_duration(850, b, sizeof b);
    assert_string_equal(b, "850ms");
    ds_render_duration(12000, b, sizeof b);
    assert_string_equal(b, "12s");
    ds_render_duration(125000, b, sizeof b);
    assert_string_equal(b, "2m5s");
    ds_render_duration(3720000, b, sizeof b);
    assert_string_equal(b, "1h2m");
    ds_render_duration(3600000, b, sizeof b);
    assert_string_equal(b, "1h");
    ds_render_duration(273600000ull, b, sizeof b);
    assert_string_equal(b, "3d4h");
    ds_render_rfc3339(0, false, b, sizeof b);
    assert_string_equal(b, "-");
    ds_render_rfc3339(86400000ull + 5, true, b, sizeof b);
    assert_string_equal(b, "1970-01-02T00:00:00.005Z");
    ds_render_clean("caf\xc3\xa9\n", b, sizeof b);
    assert_string_equal(b, "caf\xc3\xa9?");
    ds_render_clean("caf\xc3\xa9", b, 5); /* cut before the é, not inside it */
    assert_string_equal(b, "caf");
    ds_render_clean(NULL, b, sizeof b);
    assert_string_equal(b, "-");
}

#define S_T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        S_T(test_status_of_one_service_has_the_stable_keys),
        S_T(test_no_deployment_is_null),
        S_T(test_status_of_all_lists_services_and_insecure),
        S_T(test_history_rows_carry_rfc3339_times_and_every_key),
        S_T(test_workers_have_labels_as_an_object_and_telemetry),
        S_T(test_op_reply_and_event_objects),
        S_T(test_service_text_shows_the_deployment_and_a_table_of_instances),
        S_T(test_service_text_without_deployment_or_instances),
        S_T(test_status_table_has_one_row_per_service),
        S_T(test_empty_replies_say_so),
        S_T(test_history_and_workers_tables),
        S_T(test_event_lines_and_small_formatters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
