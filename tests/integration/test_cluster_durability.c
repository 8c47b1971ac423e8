/*  tests/integration/test_cluster_durability.c - no acknowledged write is
    lost and no write is applied twice while the leader is SIGKILLed and
    restarted again and again.

    Three members. The main thread writes distinct keys (d-00000, ...)
    through the C client (ds_client: it follows "not leader" and retries
    a call with the same sender and corr_id, which the state machine must
    deduplicate), recording which writes were acknowledged. A second
    thread meanwhile, S_ROUNDS times: waits for an agreed leader, lets it
    lead for 300-500 ms, SIGKILLs it, waits 100-300 ms and restarts it
    with the same --data. Then the cluster must converge, and every member
    must serve from its own state (--stale):
      - every acknowledged key, with its value;
      - every key it has at all with version 1 (no write applied twice)
        and the value that was sent for it.
    Unacknowledged writes may or may not be there. Timings come from the
    printed seed (DS_SEED replays the schedule, not the exact
    interleaving). Members snapshot every 64 entries, so kills also hit
    snapshots in progress. Bounded: S_MAX_MS of chaos, S_MAX_WRITES
    writes. */
#include "tests/integration/cluster.h"

#define S_ROUNDS     20
#define S_MAX_MS     40000
#define S_MAX_WRITES 4000
#define S_CALL_MS    3000 /* one write's overall deadline */
#define S_WAIT_MS    20000
#define S_MIN_ACKED  50 /* fewer would make the check vacuous */

typedef struct {
    ds_cl_t *c;
    unsigned seed;
    int64_t end;      /* stop by this time */
    int rounds;       /* done */
    bool done;        /* set by the chaos thread when it stops (atomic) */
    char error[1024]; /* what went wrong in the chaos thread, "" if nothing */
} s_chaos_t;

static int s_setup(void **state)
{
    /* Snapshots every 64 entries: the kills also land while members
       export, write and commit snapshot images and compact their logs. */
    /* by entry count alone: many snapshots while the state grows */
    ds_cl_opts_t o = {.snapshot_entries = 64, .snapshot_log_percent = "0"};
    ds_cl_t *c = ds_cl_new("durability", 3, &o);
    ds_cl_start_all(c);
    *state = c;
    return 0;
}

static int s_between(unsigned *seed, int lo, int hi)
{
    return lo + rand_r(seed) % (hi - lo + 1);
}

/*  The chaos thread: no cmocka asserts here (they may only fail the main
    thread); trouble is written to `error`. */
static void *s_chaos(void *arg)
{
    s_chaos_t *x = arg;
    ds_cl_t *c = x->c;
    for (; x->rounds < S_ROUNDS && ds_cl_now_ms() < x->end; x->rounds++) {
        size_t l = 0;
        char why[512] = "";
        int64_t deadline = ds_cl_now_ms() + S_WAIT_MS;
        while (!ds_cl_find_leader(c, 0, &l, NULL, why, sizeof why) && ds_cl_now_ms() < deadline)
            ds_cl_sleep_ms(DS_CL_POLL_MS);
        if (ds_cl_now_ms() >= deadline) {
            snprintf(x->error, sizeof x->error, "round %d: no agreed leader within %d ms: %s",
                     x->rounds, S_WAIT_MS, why);
            break;
        }
        ds_cl_sleep_ms(s_between(&x->seed, 300, 500));
        ds_cl_kill(c, l);
        printf("chaos round %d: SIGKILLed leader %zu\n", x->rounds, l + 1);
        fflush(stdout);
        ds_cl_sleep_ms(s_between(&x->seed, 100, 300));
        ds_cl_start(c, l);
    }
    __atomic_store_n(&x->done, true, __ATOMIC_RELEASE);
    return NULL;
}

static void test_acknowledged_writes_survive_leader_kills_and_none_is_applied_twice(void **state)
{
    ds_cl_t *c = *state;
    static bool acked[S_MAX_WRITES];
    static char value[S_MAX_WRITES][32];
    unsigned seed = ds_cl_seed("durability");
    ds_cl_wait_leader(c, 0, S_WAIT_MS, NULL);

    s_chaos_t x = {.c = c, .seed = seed, .end = ds_cl_now_ms() + S_MAX_MS};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, s_chaos, &x), 0);
    ds_client_t *cl = ds_cl_client(c, "it-durability", S_CALL_MS);
    size_t n = 0, n_acked = 0;
    int fails[64] = {0}; /* by -code */
    int64_t start = ds_cl_now_ms();
    while (!__atomic_load_n(&x.done, __ATOMIC_ACQUIRE) && n < S_MAX_WRITES &&
           ds_cl_now_ms() < x.end) {
        char key[32];
        snprintf(key, sizeof key, "d-%05zu", n);
        snprintf(value[n], sizeof value[n], "v-%05zu-%u", n, seed);
        int rc = ds_cl_put(cl, key, value[n], NULL);
        acked[n] = rc == 0;
        n_acked += rc == 0;
        if (rc < 0 && -rc < 64)
            fails[-rc]++;
        n++;
    }
    int64_t write_ms = ds_cl_now_ms() - start;
    pthread_join(th, NULL);
    ds_client_destroy(&cl);
    printf("%zu writes in %" PRId64 " ms over %d leader kills: %zu acknowledged;", n, write_ms,
           x.rounds, n_acked);
    for (int k = 1; k < 64; k++)
        if (fails[k])
            printf(" %d %s", fails[k], ds_errname(-k));
    printf("\n");
    fflush(stdout);
    if (x.error[0])
        fail_msg("chaos thread: %s", x.error);
    assert_int_equal(x.rounds, S_ROUNDS);
    assert_true(n_acked >= S_MIN_ACKED);

    /* Converge: a leader, one more acknowledged write, applied everywhere. */
    size_t l = ds_cl_wait_leader(c, 0, S_WAIT_MS, NULL);
    uint64_t last = ds_cl_dsctl_put(c, "d-final", "end");
    for (size_t i = 0; i < c->n; i++)
        ds_cl_wait_applied(c, i, last, c->m[l].id, S_WAIT_MS);

    size_t present = 0;
    start = ds_cl_now_ms();
    for (size_t i = 0; i < c->n; i++)
        for (size_t k = 0; k < n; k++) {
            char key[32];
            ds_cl_kv_t kv;
            snprintf(key, sizeof key, "d-%05zu", k);
            int rc = ds_cl_get_stale(c, i, key, &kv);
            if (rc != 0)
                fail_msg("member %zu: get %s --stale: %s", i + 1, key, ds_errname(rc));
            if (acked[k] && !kv.found)
                fail_msg("member %zu lost acknowledged write %s", i + 1, key);
            if (kv.found && strcmp(kv.value, value[k]) != 0)
                fail_msg("member %zu: %s is \"%s\", but \"%s\" was written", i + 1, key, kv.value,
                         value[k]);
            if (kv.found && kv.version != 1)
                fail_msg("member %zu: %s has version %" PRIu64 ": a write was applied %" PRIu64
                         " times",
                         i + 1, key, kv.version, kv.version);
            present += kv.found;
        }
    printf("every member has every acknowledged key, each written once (checked in %" PRId64
           " ms); %zu of %zu unacknowledged writes committed anyway\n",
           ds_cl_now_ms() - start, present / c->n - n_acked, n - n_acked);

    ds_cl_shutdown(c);
    ds_cl_passed(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_acknowledged_writes_survive_leader_kills_and_none_is_applied_twice, s_setup,
            ds_cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
