/*  tests/integration/test_cluster_snapshot.c - a follower that was down
    while the others wrote and compacted their logs catches up through a
    snapshot.

    Three members with --snapshot-entries 64. A follower (drawn from the
    printed seed) sees the first writes, then is SIGKILLed; 100 keys are
    each written five more times (500 writes through the C API, so the
    leader snapshots and compacts several times); the follower restarts
    with its old --data. It must log "installed snapshot" in its new run
    (and the leader "snapshot taken", with the stall's length),
    apply up to the last write, and serve from its own state (--stale) the
    latest value and the right version of every key: the snapshot carries
    the kv records whole, not just values. */
#include "tests/integration/cluster.h"

#define S_WAIT_MS 20000
#define S_KEYS    100
#define S_ROUNDS  5
#define S_EARLY   20 /* keys written before the follower goes down */

static int s_setup(void **state)
{
    ds_cl_opts_t o = {.snapshot_entries = 64};
    ds_cl_t *c = ds_cl_new("snapshot", 3, &o);
    ds_cl_start_all(c);
    *state = c;
    return 0;
}

static uint64_t s_put(ds_client_t *cl, const char *key, const char *value)
{
    uint64_t index = 0;
    int rc = ds_cl_put(cl, key, value, &index);
    if (rc != 0)
        fail_msg("put %s=%s: %s", key, value, ds_errname(rc));
    return index;
}

static void test_restarted_follower_catches_up_through_a_snapshot(void **state)
{
    ds_cl_t *c = *state;
    unsigned seed = ds_cl_seed("snapshot");
    size_t l = ds_cl_wait_leader(c, 0, S_WAIT_MS, NULL);
    size_t f = (l + 1 + (size_t)rand_r(&seed) % 2) % c->n;
    ds_client_t *cl = ds_cl_client(c, "it-snapshot", 10000);
    char key[32], value[64];
    uint64_t idx = 0;

    for (int k = 0; k < S_EARLY; k++) {
        snprintf(key, sizeof key, "s-%03d", k);
        idx = s_put(cl, key, "early");
    }
    ds_cl_wait_applied(c, f, idx, c->m[l].id, S_WAIT_MS);
    ds_cl_kill(c, f);
    printf("follower %zu down at index %" PRIu64 "\n", f + 1, idx);

    for (int round = 0; round < S_ROUNDS; round++)
        for (int k = 0; k < S_KEYS; k++) {
            snprintf(key, sizeof key, "s-%03d", k);
            snprintf(value, sizeof value, "r%d-%d", round, k);
            idx = s_put(cl, key, value);
        }
    ds_client_destroy(&cl);
    printf("last write at index %" PRIu64 "; restarting follower %zu\n", idx, f + 1);

    ds_cl_start(c, f);
    ds_cl_wait_applied(c, f, idx, c->m[l].id, S_WAIT_MS);
    if (ds_cl_log_count(c, f, "installed snapshot") < 1)
        fail_msg("follower %zu caught up without logging \"installed snapshot\"", f + 1);
    if (ds_cl_log_count(c, l, "snapshot taken") < 1)
        fail_msg("member %zu applied the writes without logging \"snapshot taken\"", l + 1);
    for (int k = 0; k < S_KEYS; k++) {
        snprintf(key, sizeof key, "s-%03d", k);
        snprintf(value, sizeof value, "r%d-%d", S_ROUNDS - 1, k);
        ds_cl_assert_kv(c, f, key, value, S_ROUNDS + (k < S_EARLY));
    }
    /* dsctl's view of the same member agrees. */
    ds_cl_run_t r;
    assert_int_equal(ds_cl_dsctl(c, &r, c->m[f].rpc, "kv", "get", "s-000", "--stale"), 0);
    snprintf(value, sizeof value, "r%d-0\n", S_ROUNDS - 1);
    assert_string_equal(r.out, value);

    ds_cl_shutdown(c);
    ds_cl_passed(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restarted_follower_catches_up_through_a_snapshot,
                                        s_setup, ds_cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
