/*  tests/integration/test_release_3.c - deploy, promote, rollback and the
    rollout controller on a real three-member cluster, with test peers as
    workers (tests/integration/testpeer.h), through the C client. */
#define DS_RF_NAME "release3"
#include "tests/integration/release_fix.h"

/* ---- tests ----------------------------------------------------------------------------- */

static void test_deploy_promotes_bad_release_rolls_back_and_rollback_restores(void **state)
{
    s_fix_t *f = *state;
    ds_tp_start(&f->tp, f->c, 3);
    s_wait_workers_up(f, 3);
    char msg[2048];
    ds_op_reply_t op;

    assert_int_equal(s_deploy(f, "churn", 300, false, &op, msg, sizeof msg), 0);
    assert_int_equal(op.version, 1);
    s_status_t st = s_wait_state(f, "churn", op.deployment_id, "succeeded", 1);
    s_assert_peers_on(f, "churn", 1);
    assert_int_equal(st.current, 1);
    assert_int_equal(st.n_instances, 3);

    /* v2 goes live; a second deploy while it is live is refused, changing nothing. */
    assert_int_equal(s_deploy(f, "churn", 1500, false, &op, msg, sizeof msg), 0);
    assert_int_equal(op.version, 2);
    ds_op_reply_t op3;
    assert_int_equal(s_deploy(f, "churn", 300, false, &op3, msg, sizeof msg), DS_ECONFLICT);
    assert_non_null(strstr(msg, "live deployment of version 2"));
    /* The controller moves v2 on meanwhile; the refused deploy left no trace. */
    char rows[4096];
    s_history_len(f, "churn", rows, sizeof rows);
    assert_null(strstr(rows, ":v3 "));
    s_status_t now;
    assert_int_equal(s_status(f, "churn", 2, &now, msg, sizeof msg), 0);
    assert_int_equal(now.id, op.deployment_id);
    st = s_wait_state(f, "churn", op.deployment_id, "succeeded", 2);
    s_assert_peers_on(f, "churn", 2);
    assert_int_equal(st.current, 2);

    /* Nothing to promote once it succeeded. */
    assert_int_equal(s_action(f, DS_MSG_PROMOTE, "churn", 0, msg, sizeof msg, NULL), DS_ESTATE);

    /* v3's health check fails on its canary: rolled back, every worker on v2. */
    f->tp.bad[0] = 3;
    assert_int_equal(s_deploy(f, "churn", 300, false, &op, msg, sizeof msg), 0);
    assert_int_equal(op.version, 3);
    st = s_wait_state(f, "churn", op.deployment_id, "rolled_back", 2);
    s_assert_peers_on(f, "churn", 2);
    assert_int_equal(st.current, 2);
    assert_int_equal(st.desired, 2);
    assert_non_null(strstr(st.reason, "version 2"));
    char events[1024];
    s_history_len(f, "churn", events, sizeof events);
    assert_non_null(strstr(events, "rolled_back:rolled_back:v3"));
    assert_non_null(strstr(events, "failed:"));

    /* rollback --to 1 */
    ds_op_reply_t rb;
    assert_int_equal(s_action(f, DS_MSG_ROLLBACK, "churn", 1, msg, sizeof msg, &rb), 0);
    assert_int_equal(rb.version, 1);
    s_wait_state(f, "churn", rb.deployment_id, "succeeded", 1);
    s_assert_peers_on(f, "churn", 1);
    ds_cl_passed(f->c);
}

static void test_bad_requests_get_their_error_and_change_nothing(void **state)
{
    s_fix_t *f = *state;
    ds_tp_start(&f->tp, f->c, 2);
    s_wait_workers_up(f, 2);
    char msg[2048];
    s_status_t st;
    assert_int_equal(s_status(f, "nosuch", 0, &st, msg, sizeof msg), DS_ENOTFOUND);
    assert_non_null(strstr(msg, "unknown service nosuch"));
    assert_int_equal(s_action(f, DS_MSG_PROMOTE, "nosuch", 0, msg, sizeof msg, NULL), DS_ENOTFOUND);
    assert_int_equal(s_action(f, DS_MSG_ROLLBACK, "nosuch", 0, msg, sizeof msg, NULL),
                     DS_ENOTFOUND);

    ds_deploy_req_t bad = {"churn", {0}, false, false};
    s_spec(&bad.spec, 100);
    bad.spec.command = "";
    ds_msg_t *r = NULL;
    assert_int_equal(s_call(f, DS_MSG_DEPLOY, &bad, DS_MSG_OP_REPLY, &r, msg, sizeof msg),
                     DS_EINVAL);
    assert_non_null(strstr(msg, "command"));
    assert_int_equal(s_status(f, "churn", 0, &st, msg, sizeof msg), DS_ENOTFOUND);

    ds_op_reply_t op;
    assert_int_equal(s_deploy(f, "churn", 100, false, &op, msg, sizeof msg), 0);
    s_wait_state(f, "churn", op.deployment_id, "succeeded", 1);
    size_t before = s_history_len(f, "churn", NULL, 0);
    /* Only version 1 has ever succeeded: nothing before it to go back to. */
    assert_int_equal(s_action(f, DS_MSG_ROLLBACK, "churn", 0, msg, sizeof msg, NULL), DS_ENOTFOUND);
    assert_non_null(strstr(msg, "no release before version 1"));
    assert_int_equal(s_action(f, DS_MSG_ROLLBACK, "churn", 7, msg, sizeof msg, NULL), DS_ENOTFOUND);
    assert_int_equal(s_action(f, DS_MSG_PAUSE, "churn", 0, msg, sizeof msg, NULL), DS_ESTATE);
    assert_int_equal(s_action(f, DS_MSG_RESUME, "churn", 0, msg, sizeof msg, NULL), DS_ESTATE);
    assert_int_equal(s_history_len(f, "churn", NULL, 0), before);
    ds_cl_passed(f->c);
}

static void
test_leader_sigkill_during_bake_ends_the_same_and_keeps_acknowledged_deploy(void **state)
{
    s_fix_t *f = *state;
    ds_tp_start(&f->tp, f->c, 3);
    s_wait_workers_up(f, 3);
    char msg[2048];
    ds_op_reply_t op;
    assert_int_equal(s_deploy(f, "churn", 3000, false, &op, msg, sizeof msg), 0);
    s_wait_state(f, "churn", op.deployment_id, "baking", 1);
    uint64_t term;
    size_t leader = ds_cl_wait_leader(f->c, 0, 5000, &term);
    ds_cl_kill(f->c, leader);
    ds_cl_wait_leader(f->c, 1u << leader, 10000, NULL);
    s_wait_state(f, "churn", op.deployment_id, "succeeded", 1);
    s_assert_peers_on(f, "churn", 1);

    /* A deploy acknowledged just before the leader dies is on the new leader. */
    ds_cl_start(f->c, leader);
    leader = ds_cl_wait_leader(f->c, 0, 10000, NULL);
    assert_int_equal(s_deploy(f, "churn", 200, false, &op, msg, sizeof msg), 0);
    ds_cl_kill(f->c, leader);
    ds_cl_wait_leader(f->c, 1u << leader, 10000, NULL);
    s_status_t st;
    assert_int_equal(s_status(f, "churn", 2, &st, msg, sizeof msg), 0);
    assert_int_equal(st.id, op.deployment_id);
    assert_int_equal(st.version, 2);
    s_wait_state(f, "churn", op.deployment_id, "succeeded", 2);
    ds_cl_passed(f->c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_deploy_promotes_bad_release_rolls_back_and_rollback_restores, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests_get_their_error_and_change_nothing,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_leader_sigkill_during_bake_ends_the_same_and_keeps_acknowledged_deploy, s_setup,
            s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
