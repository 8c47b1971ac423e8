/*  tests/unit/test_dsctl_wait.c - the pure parts of the release commands:
    --wait's terminal-state logic, the events --follow cursor, the mapping
    of error codes to exit codes, and the command table. */
#include "dsctl/cmd.h"
#include "dsctl/follow.h"
#include "dsctl/wait.h"
#include "protocol/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static ds_service_status_t s_svc(uint64_t id, uint64_t version, const char *state)
{
    ds_service_status_t s = {.service = "churn-model",
                             .current_version = version,
                             .desired_version = version,
                             .has_deployment = state != NULL,
                             .deployment = {.id = id,
                                            .version = version,
                                            .from_version = version - 1,
                                            .state = (char *)(uintptr_t)state,
                                            .reason = "why",
                                            .wave = 1,
                                            .updated = 2,
                                            .healthy = 1,
                                            .total = 4}};
    return s;
}

/* ---- --wait -------------------------------------------------------- */

static void test_wait_ends_only_at_terminal_states_of_its_deployment(void **state)
{
    (void)state;
    static const struct {
        const char *state;
        ds_wait_verdict_t verdict;
    } cases[] = {
        {"pending", DS_WAIT_GOING},       {"canary", DS_WAIT_GOING},
        {"baking", DS_WAIT_GOING},        {"canary_passed", DS_WAIT_GOING},
        {"promoting", DS_WAIT_GOING},     {"rolling_back", DS_WAIT_GOING},
        {"paused", DS_WAIT_GOING},        {"some_new_state", DS_WAIT_GOING},
        {"succeeded", DS_WAIT_SUCCEEDED}, {"failed", DS_WAIT_FAILED},
        {"rolled_back", DS_WAIT_FAILED},  {"aborted", DS_WAIT_FAILED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ds_wait_target_t t = {57, 3};
        ds_service_status_t s = s_svc(57, 3, cases[i].state);
        assert_int_equal(ds_wait_judge(&t, &s), cases[i].verdict);
        assert_int_equal(t.deployment_id, 57);
    }
}

static void test_wait_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(ds_wait_exit_code(DS_WAIT_SUCCEEDED), 0);
    assert_int_equal(ds_wait_exit_code(DS_WAIT_FAILED), 1);
    assert_int_equal(ds_wait_exit_code(DS_WAIT_REPLACED), 1);
    assert_int_equal(ds_wait_exit_code(DS_WAIT_TIMEOUT), 1);
    assert_int_equal(ds_wait_exit_code(DS_WAIT_ERROR), 1);
    assert_int_equal(ds_wait_exit_code(DS_WAIT_UNREACHABLE), 3);
}

static void test_a_newer_id_replaces_ours_an_older_one_is_not_shown_yet(void **state)
{
    (void)state;
    ds_wait_target_t t = {57, 3};
    ds_service_status_t newer = s_svc(63, 4, "canary");
    assert_int_equal(ds_wait_judge(&t, &newer), DS_WAIT_REPLACED);
    /* A read that has not caught up shows the previous deployment: go on,
       even when that one had ended. */
    ds_service_status_t older = s_svc(41, 2, "succeeded");
    assert_int_equal(ds_wait_judge(&t, &older), DS_WAIT_GOING);
    ds_service_status_t none = s_svc(0, 0, NULL);
    assert_int_equal(ds_wait_judge(&t, &none), DS_WAIT_GOING);
    assert_int_equal(ds_wait_judge(&t, NULL), DS_WAIT_GOING);
}

static void test_a_reply_without_deployment_id_settles_on_the_version(void **state)
{
    (void)state;
    ds_wait_target_t t = {0, 3};
    ds_service_status_t other = s_svc(41, 2, "succeeded");
    assert_int_equal(ds_wait_judge(&t, &other), DS_WAIT_GOING);
    assert_int_equal(t.deployment_id, 0);
    ds_service_status_t ours = s_svc(57, 3, "baking");
    assert_int_equal(ds_wait_judge(&t, &ours), DS_WAIT_GOING);
    assert_int_equal(t.deployment_id, 57);
    ds_service_status_t done = s_svc(57, 3, "succeeded");
    assert_int_equal(ds_wait_judge(&t, &done), DS_WAIT_SUCCEEDED);
}

static void test_progress_line_and_result_names(void **state)
{
    (void)state;
    char line[256];
    ds_wait_target_t t = {57, 3};
    ds_service_status_t s = s_svc(57, 3, "promoting");
    ds_wait_progress(&t, &s, line, sizeof line);
    assert_string_equal(line, "churn-model v3: promoting  wave 1  updated 2/4  healthy 1/4");
    ds_service_status_t older = s_svc(41, 2, "succeeded");
    ds_wait_progress(&t, &older, line, sizeof line);
    assert_string_equal(line, "churn-model v3: waiting for the deployment to show");

    ds_service_status_t rb = s_svc(57, 3, "rolled_back");
    assert_string_equal(ds_wait_result_name(DS_WAIT_FAILED, &rb), "rolled_back");
    assert_string_equal(ds_wait_result_name(DS_WAIT_FAILED, NULL), "failed");
    assert_string_equal(ds_wait_result_name(DS_WAIT_SUCCEEDED, &s), "succeeded");
    assert_string_equal(ds_wait_result_name(DS_WAIT_REPLACED, &s), "replaced");
    assert_string_equal(ds_wait_result_name(DS_WAIT_TIMEOUT, &s), "timeout");
    assert_string_equal(ds_wait_result_name(DS_WAIT_UNREACHABLE, NULL), "unreachable");
    assert_string_equal(ds_wait_result_name(DS_WAIT_ERROR, NULL), "error");
}

/* ---- events --follow ----------------------------------------------- */

static void test_follow_prints_everything_from_the_same_leader(void **state)
{
    (void)state;
    ds_follow_t f;
    ds_follow_init(&f, 4, 1000, "tcp://a");
    ds_event_t ev[] = {{5, 900, "k", "s", "m"}, {6, 1100, "k", "s", "m"}};
    ds_events_reply_t r = {2, ev};
    bool print[2] = {false, false};
    assert_int_equal(ds_follow_take(&f, "tcp://a", 4, &r, print), DS_FOLLOW_PRINT);
    assert_true(print[0] && print[1]); /* seq decides, not the clock */
    assert_int_equal(f.after_seq, 6);
    assert_int_equal(f.last_ts_ms, 1100);
    ds_events_reply_t empty = {0, NULL};
    assert_int_equal(ds_follow_take(&f, "tcp://a", 6, &empty, NULL), DS_FOLLOW_PRINT);
    assert_int_equal(f.after_seq, 6);
}

static void test_follow_restarts_by_time_after_a_leader_change(void **state)
{
    (void)state;
    ds_follow_t f;
    ds_follow_init(&f, 40, 5000, "tcp://a");
    ds_event_t late[] = {{3, 9000, "k", "s", "m"}};
    ds_events_reply_t r = {1, late};
    bool print[3] = {false, false, false};
    /* The new leader answered a request for seq > 40: drop it, ask from 0. */
    assert_int_equal(ds_follow_take(&f, "tcp://b", 40, &r, print), DS_FOLLOW_RESTART);
    assert_int_equal(f.after_seq, 0);
    assert_true(f.by_time);
    /* From 0: only what is newer than the last event printed. */
    ds_event_t all[] = {
        {1, 4000, "k", "s", "old"}, {2, 5000, "k", "s", "same ms"}, {3, 9000, "k", "s", "new"}};
    ds_events_reply_t r2 = {3, all};
    assert_int_equal(ds_follow_take(&f, "tcp://b", 0, &r2, print), DS_FOLLOW_PRINT);
    assert_false(print[0]);
    assert_false(print[1]);
    assert_true(print[2]);
    assert_int_equal(f.after_seq, 3);
    assert_int_equal(f.last_ts_ms, 9000);
    assert_true(f.by_time);
    /* An empty reply: caught up, by seq again. */
    ds_events_reply_t empty = {0, NULL};
    assert_int_equal(ds_follow_take(&f, "tcp://b", 3, &empty, NULL), DS_FOLLOW_PRINT);
    assert_false(f.by_time);
    ds_event_t next[] = {{4, 8000, "k", "s", "skewed clock"}};
    ds_events_reply_t r3 = {1, next};
    assert_int_equal(ds_follow_take(&f, "tcp://b", 3, &r3, print), DS_FOLLOW_PRINT);
    assert_true(print[0]);
}

static void test_follow_restarts_when_the_seq_goes_backwards(void **state)
{
    (void)state;
    ds_follow_t f;
    ds_follow_init(&f, 40, 5000, "tcp://a");
    ds_event_t ev[] = {{2, 7000, "k", "s", "m"}};
    ds_events_reply_t r = {1, ev};
    bool print[1] = {false};
    assert_int_equal(ds_follow_take(&f, "tcp://a", 40, &r, print), DS_FOLLOW_RESTART);
    assert_int_equal(f.after_seq, 0);
    assert_true(f.by_time);
    /* A first reply from an unknown leader is taken as it is. */
    ds_follow_init(&f, 0, 0, NULL);
    assert_int_equal(ds_follow_take(&f, "tcp://a", 0, &r, print), DS_FOLLOW_PRINT);
    assert_true(print[0]);
    assert_string_equal(f.leader, "tcp://a");
}

/* ---- exit codes and the command table ------------------------------ */

static void test_error_codes_map_to_the_documented_exit_codes(void **state)
{
    (void)state;
    assert_int_equal(ds_cmd_exit_for(DS_EINVAL), 2);
    assert_int_equal(ds_cmd_exit_for(DS_ETOOBIG), 2);
    assert_int_equal(ds_cmd_exit_for(DS_EENCODING), 2);
    assert_int_equal(ds_cmd_exit_for(DS_ESTATE), 1);    /* promote: nothing to promote */
    assert_int_equal(ds_cmd_exit_for(DS_ENOTFOUND), 1); /* unknown service */
    assert_int_equal(ds_cmd_exit_for(DS_ECONFLICT), 1); /* a deploy while one is live */
    assert_int_equal(ds_cmd_exit_for(DS_EFORBIDDEN), 1);
    assert_int_equal(ds_cmd_exit_for(DS_EEXIST), 1);
    assert_int_equal(ds_cmd_exit_for(DS_ENOTLEADER), 3);
    assert_int_equal(ds_cmd_exit_for(DS_ENOQUORUM), 3);
    assert_int_equal(ds_cmd_exit_for(DS_ETIMEOUT), 3);
}

static void test_stand_alone_commands_and_groups_are_found(void **state)
{
    (void)state;
    const char *alone[] = {"deploy", "rollback", "promote", "pause",   "resume",
                           "abort",  "status",   "history", "workers", "events"};
    char name[64];
    for (size_t i = 0; i < sizeof alone / sizeof alone[0]; i++) {
        const ds_cmd_t *c = ds_cmd_find(alone[i], "churn-model");
        assert_non_null(c);
        assert_null(c->verb);
        assert_int_equal(ds_cmd_words(c), 1);
        ds_cmd_name(c, name, sizeof name);
        assert_string_equal(name, alone[i]);
        assert_true(ds_cmd_group_exists(alone[i]));
        assert_non_null(ds_cmd_find(alone[i], NULL));
    }
    const ds_cmd_t *cs = ds_cmd_find("cluster", "status");
    assert_non_null(cs);
    assert_int_equal(ds_cmd_words(cs), 2);
    ds_cmd_name(cs, name, sizeof name);
    assert_string_equal(name, "cluster status");
    assert_ptr_not_equal(cs, ds_cmd_find("status", NULL));
    assert_null(ds_cmd_find("cluster", NULL));
    assert_null(ds_cmd_find("cluster", "deploy"));
    assert_null(ds_cmd_find("nosuch", NULL));
}

static void test_counts_parse_from_one_to_the_limit(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(ds_cmd_parse_count("3", 10, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(ds_cmd_parse_count("10", 10, &v), 0);
    const char *bad[] = {"0", "11", "", "-1", "+1", " 1", "1x", "x", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(ds_cmd_parse_count(bad[i], 10, &v), DS_EINVAL);
    assert_int_equal(ds_cmd_parse_count(NULL, 10, &v), DS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_ends_only_at_terminal_states_of_its_deployment),
        cmocka_unit_test(test_wait_exit_codes),
        cmocka_unit_test(test_a_newer_id_replaces_ours_an_older_one_is_not_shown_yet),
        cmocka_unit_test(test_a_reply_without_deployment_id_settles_on_the_version),
        cmocka_unit_test(test_progress_line_and_result_names),
        cmocka_unit_test(test_follow_prints_everything_from_the_same_leader),
        cmocka_unit_test(test_follow_restarts_by_time_after_a_leader_change),
        cmocka_unit_test(test_follow_restarts_when_the_seq_goes_backwards),
        cmocka_unit_test(test_error_codes_map_to_the_documented_exit_codes),
        cmocka_unit_test(test_stand_alone_commands_and_groups_are_found),
        cmocka_unit_test(test_counts_parse_from_one_to_the_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
