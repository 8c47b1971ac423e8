/*  tests/integration/test_dsctl_contract.c - the dsctl binary's contract
    (docs/dsctl.md): exit codes, messages on stderr prefixed "dsctl: ",
    and the stable keys of -o json, against nothing, against bad input,
    and against a real three-member cluster. */
#include "tests/integration/cluster.h"

#define S_WAIT_MS  15000
#define S_SLACK_MS 3000 /* process start and exit, slower under the sanitizers */

static void s_assert_err(const ds_cl_run_t *r, const char *needle)
{
    if (strncmp(r->err, "dsctl: ", 7) != 0 || !strstr(r->err, needle))
        fail_msg("stderr should start with \"dsctl: \" and mention \"%s\": %s", needle, r->err);
}

static void test_exit_3_with_every_endpoint_named_when_no_coordinator_answers(void **state)
{
    /* Members that are never started: their rpc ports are free, nobody listens. */
    ds_cl_t *c = ds_cl_new("dsctl-none", 2, NULL);
    *state = c;
    ds_cl_run_t r;
    const char *cmds[][4] = {
        {"kv", "get", "k", NULL}, {"kv", "put", "k", "v"}, {"cluster", "status", NULL, NULL}};
    for (size_t i = 0; i < 3; i++) {
        const char *args[] = {"--timeout", "1s",       cmds[i][0], cmds[i][1],
                              cmds[i][2],  cmds[i][3], NULL};
        assert_int_equal(ds_cl_dsctl_argv(c, &r, c->rpcs, args), 3);
        s_assert_err(&r, "no coordinator answered within 1s");
        assert_non_null(strstr(r.err, c->m[0].rpc));
        assert_non_null(strstr(r.err, c->m[1].rpc));
        assert_string_equal(r.out, "");
        if (r.ms > 1000 + S_SLACK_MS)
            fail_msg("dsctl --timeout 1s ran %" PRId64 " ms", r.ms);
    }
    assert_int_equal(
        ds_cl_dsctl(c, &r, c->rpcs, "-o", "json", "--timeout", "500ms", "cluster", "status"), 3);
    assert_string_equal(r.out, "");
    ds_cl_passed(c);
}

static void test_exit_2_on_bad_usage_without_contacting_anyone(void **state)
{
    ds_cl_t *c = ds_cl_new("dsctl-usage", 1, NULL); /* never started */
    *state = c;
    ds_cl_run_t r;
    const char *co = c->rpcs;
    assert_int_equal(ds_cl_dsctl(c, &r, co, "--bogus", "cluster", "status"), 2);
    s_assert_err(&r, "--bogus");
    assert_int_equal(ds_cl_dsctl(c, &r, co, "--timeout", "5x", "kv", "get", "k"), 2);
    s_assert_err(&r, "5x");
    assert_int_equal(ds_cl_dsctl(c, &r, co, "-o", "yaml", "kv", "get", "k"), 2);
    assert_int_equal(ds_cl_dsctl(c, &r, co, "kv", "frob", "k"), 2);
    assert_int_equal(ds_cl_dsctl(c, &r, co, "nosuchgroup"), 2);
    assert_int_equal(ds_cl_dsctl(c, &r, co, "kv", "put", "only-a-key"), 2);
    assert_int_equal(ds_cl_dsctl(c, &r, co, "cluster", "transfer-leader", "--to", "abc"), 2);
    assert_int_equal(ds_cl_dsctl(c, &r, co, "cluster", "transfer-leader", "--to", "0"), 2);
    assert_int_equal(ds_cl_dsctl(c, &r, "http://127.0.0.1:1", "kv", "get", "k"), 2);
    /* No coordinators anywhere: HOME is the empty test directory. */
    assert_int_equal(ds_cl_dsctl(c, &r, NULL, "kv", "get", "k"), 2);
    s_assert_err(&r, "no coordinators");
    /* A value over 64 KiB is refused before any connection (fast, exit 2). */
    static char big[64 * 1024 + 2];
    memset(big, 'x', sizeof big - 1);
    assert_int_equal(ds_cl_dsctl(c, &r, co, "--timeout", "30s", "kv", "put", "k", big), 2);
    assert_true(r.ms < 1000 + S_SLACK_MS);
    /* Help is not an error. */
    assert_int_equal(ds_cl_dsctl(c, &r, NULL, "--help"), 0);
    assert_non_null(strstr(r.out, "exit codes"));
    ds_cl_passed(c);
}

static void test_json_and_exit_codes_against_a_running_cluster(void **state)
{
    ds_cl_t *c = ds_cl_new("dsctl-live", 3, NULL);
    *state = c;
    ds_cl_start_all(c);
    ds_cl_run_t r;
    char text[512], item[2048];
    uint64_t term;
    size_t l = ds_cl_wait_leader(c, 0, S_WAIT_MS, &term);
    size_t f = (l + 1) % c->n;

    /* kv get of a missing key: exit 1, JSON still printed. */
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "kv", "get", "missing"), 1);
    s_assert_err(&r, "missing");
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "-o", "json", "kv", "get", "missing"), 1);
    ds_cl_json_str(r.out, "key", text, sizeof text);
    assert_string_equal(text, "missing");
    assert_true(ds_cl_json_raw(r.out, "found", text, sizeof text));
    assert_string_equal(text, "false");
    assert_true(ds_cl_json_raw(r.out, "value", text, sizeof text));
    assert_string_equal(text, "null");

    /* kv put: table and JSON; kv get: every key, version counts writes. */
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "kv", "put", "color", "blue"), 0);
    assert_true(strncmp(r.out, "committed at index ", 19) == 0);
    uint64_t i1 = ds_cl_dsctl_put(c, "color", "green");
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "-o", "json", "kv", "get", "color"), 0);
    ds_cl_json_str(r.out, "key", text, sizeof text);
    assert_string_equal(text, "color");
    assert_true(ds_cl_json_raw(r.out, "found", text, sizeof text));
    assert_string_equal(text, "true");
    ds_cl_json_str(r.out, "value", text, sizeof text);
    assert_string_equal(text, "green");
    assert_true(ds_cl_json_u64(r.out, "index") >= i1);
    assert_int_equal(ds_cl_json_u64(r.out, "version"), 2);
    assert_int_equal(ds_cl_json_u64(r.out, "mod_index"), i1);
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "kv", "get", "color"), 0);
    assert_string_equal(r.out, "green\n");

    /* Separate dsctl processes are separate clients: each write counts
       (a shared sender name made later processes' writes look like
       retries of earlier ones, acknowledged and never applied). */
    for (int i = 0; i < 6; i++) {
        snprintf(item, sizeof item, "v%d", i);
        assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "kv", "put", "counted", item), 0);
    }
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "-o", "json", "kv", "get", "counted"), 0);
    assert_int_equal(ds_cl_json_u64(r.out, "version"), 6);
    ds_cl_json_str(r.out, "value", text, sizeof text);
    assert_string_equal(text, "v5");

    /* A value that starts with '-' goes after "--". */
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "kv", "put", "dash", "--", "-x"), 0);
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "kv", "get", "dash"), 0);
    assert_string_equal(r.out, "-x\n");

    /* Given only a follower, dsctl follows its NOT_LEADER to the leader;
       --stale lets the follower answer itself. */
    assert_int_equal(ds_cl_dsctl(c, &r, c->m[f].rpc, "kv", "get", "color"), 0);
    assert_string_equal(r.out, "green\n");
    ds_cl_wait_applied(c, f, i1, c->m[l].id, S_WAIT_MS);
    assert_int_equal(ds_cl_dsctl(c, &r, c->m[f].rpc, "kv", "get", "color", "--stale"), 0);
    assert_string_equal(r.out, "green\n");

    /* cluster status -o json: leader, term, indexes, one row per member. */
    for (size_t i = 0; i < c->n; i++)
        ds_cl_wait_applied(c, i, i1, c->m[l].id, S_WAIT_MS);
    /* Members learn each other's rpc endpoints from a hello sent every
       second, so a row may show "" for about a second after start. */
    int64_t deadline = ds_cl_now_ms() + S_WAIT_MS;
    for (;;) {
        assert_int_equal(ds_cl_dsctl(c, &r, c->m[f].rpc, "-o", "json", "cluster", "status"), 0);
        if (!strstr(r.out, "\"rpc_endpoint\": \"\"") || ds_cl_now_ms() >= deadline)
            break;
        ds_cl_sleep_ms(100);
    }
    assert_int_equal(ds_cl_json_u64(r.out, "leader"), c->m[l].id);
    assert_int_equal(ds_cl_json_u64(r.out, "term"), term);
    assert_true(ds_cl_json_u64(r.out, "commit_index") >= i1);
    assert_true(ds_cl_json_u64(r.out, "applied_index") >= i1);
    size_t leaders = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (!ds_cl_json_item(r.out, "members", i, item, sizeof item))
            fail_msg("members has no item %zu: %s", i, r.out);
        uint64_t id = ds_cl_json_u64(item, "id");
        assert_true(id >= 1 && id <= c->n);
        ds_cl_json_str(item, "role", text, sizeof text);
        if (strcmp(text, "leader") == 0) {
            leaders++;
            assert_int_equal(id, c->m[l].id);
        } else {
            assert_string_equal(text, "follower");
        }
        ds_cl_json_str(item, "rpc_endpoint", text, sizeof text);
        assert_string_equal(text, c->m[id - 1].rpc);
        ds_cl_json_str(item, "peer_endpoint", text, sizeof text);
        assert_string_equal(text, c->m[id - 1].peer);
        (void)ds_cl_json_u64(item, "match_index");
        (void)ds_cl_json_u64(item, "lag");
        assert_true(ds_cl_json_raw(item, "reachable", text, sizeof text));
        assert_string_equal(text, "true");
    }
    assert_int_equal(leaders, 1);
    assert_false(ds_cl_json_item(r.out, "members", c->n, item, sizeof item));
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "cluster", "status"), 0);
    snprintf(text, sizeof text, "leader: %" PRIu64, c->m[l].id);
    assert_non_null(strstr(r.out, text));

    /* transfer-leader to an id that is not a member: the cluster refuses
       it as invalid input (DS_EINVAL, exit 2) and the leader stays. */
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "cluster", "transfer-leader", "--to", "9"), 2);
    s_assert_err(&r, "DS_EINVAL");
    assert_int_equal(ds_cl_wait_leader(c, 0, S_WAIT_MS, NULL), l);

    ds_cl_shutdown(c);
    ds_cl_passed(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_exit_3_with_every_endpoint_named_when_no_coordinator_answers,
                                  ds_cl_teardown),
        cmocka_unit_test_teardown(test_exit_2_on_bad_usage_without_contacting_anyone,
                                  ds_cl_teardown),
        cmocka_unit_test_teardown(test_json_and_exit_codes_against_a_running_cluster,
                                  ds_cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
