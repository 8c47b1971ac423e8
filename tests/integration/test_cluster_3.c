/*  tests/integration/test_cluster_3.c - three real dscoord processes:
    leader failover after SIGKILL and restart, a SIGSTOPped leader that is
    replaced and steps down quietly on SIGCONT, leadership transfer with
    dsctl, the http endpoint's view of Raft, and http clients that hang
    up before their answer, stay silent, send their request in pieces or
    send a bad one (they must not stall the leader).

    Each test starts its own cluster in a fresh directory (harness:
    cluster.h), waits for an agreed leader, and ends with a clean SIGTERM
    shutdown of every member. */
#include "tests/integration/cluster.h"

#define S_WAIT_MS 15000 /* generous: the sanitizer build is slow to start */

static int s_setup(void **state)
{
    ds_cl_t *c = ds_cl_new("cluster3", 3, NULL);
    ds_cl_start_all(c);
    *state = c;
    return 0;
}

static void test_new_leader_after_sigkill_and_restarted_leader_rejoins_as_follower(void **state)
{
    ds_cl_t *c = *state;
    uint64_t t0, t1, t2;
    size_t l0 = ds_cl_wait_leader(c, 0, S_WAIT_MS, &t0);
    ds_cl_dsctl_put(c, "before", "1");

    ds_cl_kill(c, l0);
    size_t l1 = ds_cl_wait_leader(c, 1u << l0, S_WAIT_MS, &t1);
    assert_true(l1 != l0);
    assert_true(t1 > t0);
    uint64_t during = ds_cl_dsctl_put(c, "during", "2"); /* dsctl skips the dead member */

    ds_cl_start(c, l0); /* same --data */
    ds_cl_view_t v = ds_cl_wait_applied(c, l0, during, c->m[l1].id, S_WAIT_MS);
    assert_int_equal(v.term, t1);
    ds_cl_assert_kv(c, l0, "before", "1", 1);
    ds_cl_assert_kv(c, l0, "during", "2", 1);

    /* It rejoined without disturbing the leader, and follows new writes. */
    uint64_t after = ds_cl_dsctl_put(c, "after", "3");
    ds_cl_wait_applied(c, l0, after, c->m[l1].id, S_WAIT_MS);
    ds_cl_assert_kv(c, l0, "after", "3", 1);
    assert_int_equal(ds_cl_wait_leader(c, 0, S_WAIT_MS, &t2), l1);
    assert_int_equal(t2, t1);

    ds_cl_shutdown(c);
    ds_cl_passed(c);
}

static void test_stopped_leader_is_replaced_and_steps_down_quietly_on_sigcont(void **state)
{
    ds_cl_t *c = *state;
    uint64_t t0, t1, t2;
    size_t l0 = ds_cl_wait_leader(c, 0, S_WAIT_MS, &t0);
    ds_cl_dsctl_put(c, "a", "1");

    ds_cl_pause(c, l0, true);
    size_t l1 = ds_cl_wait_leader(c, 1u << l0, S_WAIT_MS, &t1);
    assert_true(l1 != l0 && t1 > t0);
    uint64_t idx = ds_cl_dsctl_put(c, "b", "2");

    ds_cl_pause(c, l0, false);
    /* The old leader learns of the new one and catches up... */
    ds_cl_view_t v = ds_cl_wait_applied(c, l0, idx, c->m[l1].id, S_WAIT_MS);
    assert_int_equal(v.term, t1);
    /* ...and, over the next second and a half (longer than the second of
       ticks it replays after the stall, and than two election timeouts),
       writes keep succeeding, with the same leader in the same term. */
    int64_t until = ds_cl_now_ms() + 1500;
    for (int k = 0; ds_cl_now_ms() < until; k++) {
        char key[32];
        snprintf(key, sizeof key, "c%d", k);
        idx = ds_cl_dsctl_put(c, key, "x");
        ds_cl_sleep_ms(100); /* pacing, not waiting for anything */
    }
    assert_int_equal(ds_cl_wait_leader(c, 0, S_WAIT_MS, &t2), l1);
    assert_int_equal(t2, t1);
    v = ds_cl_wait_applied(c, l0, idx, c->m[l1].id, S_WAIT_MS);
    assert_int_equal(v.term, t1);
    ds_cl_assert_kv(c, l0, "b", "2", 1);
    assert_int_equal(ds_cl_log_count(c, l1, "became leader"), 1);

    ds_cl_shutdown(c);
    ds_cl_passed(c);
}

static void test_transfer_leader_moves_leadership_to_another_member(void **state)
{
    ds_cl_t *c = *state;
    ds_cl_run_t r;
    char text[256];
    size_t l0 = ds_cl_wait_leader(c, 0, S_WAIT_MS, NULL);
    ds_cl_dsctl_put(c, "k", "v");

    /* No --to: the most caught-up follower. */
    assert_int_equal(
        ds_cl_dsctl(c, &r, c->rpcs, "-o", "json", "--timeout", "10s", "cluster", "transfer-leader"),
        0);
    ds_cl_json_str(r.out, "state", text, sizeof text);
    assert_string_equal(text, "transferred");
    size_t l1 = ds_cl_wait_leader(c, 1u << l0, S_WAIT_MS, NULL);
    assert_true(l1 != l0);
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "-o", "json", "cluster", "status"), 0);
    assert_int_equal(ds_cl_json_u64(r.out, "leader"), c->m[l1].id);

    /* --to ID: the member named, here the one that led first. */
    char to[16];
    snprintf(to, sizeof to, "%" PRIu64, c->m[l0].id);
    assert_int_equal(
        ds_cl_dsctl(c, &r, c->rpcs, "--timeout", "10s", "cluster", "transfer-leader", "--to", to),
        0);
    assert_non_null(strstr(r.out, "transferred"));
    unsigned others = 0x7u & ~(1u << l0);
    assert_int_equal(ds_cl_wait_leader(c, others, S_WAIT_MS, NULL), l0);
    assert_int_equal(ds_cl_dsctl(c, &r, c->rpcs, "-o", "json", "cluster", "status"), 0);
    assert_int_equal(ds_cl_json_u64(r.out, "leader"), c->m[l0].id);

    /* The cluster still takes writes, and every member has them. */
    uint64_t idx = ds_cl_dsctl_put(c, "k2", "v2");
    for (size_t i = 0; i < c->n; i++) {
        ds_cl_wait_applied(c, i, idx, c->m[l0].id, S_WAIT_MS);
        ds_cl_assert_kv(c, i, "k2", "v2", 1);
    }

    ds_cl_shutdown(c);
    ds_cl_passed(c);
}

static void test_http_metrics_and_healthz_report_each_members_raft_state(void **state)
{
    ds_cl_t *c = *state;
    uint64_t term;
    size_t l = ds_cl_wait_leader(c, 0, S_WAIT_MS, &term);
    uint64_t idx = ds_cl_dsctl_put(c, "m", "1");
    static char body[65536];
    for (size_t i = 0; i < c->n; i++) {
        ds_cl_wait_applied(c, i, idx, c->m[l].id, S_WAIT_MS);
        int status = ds_cl_http_get(c, i, "/metrics", body, sizeof body, 3000);
        if (status != 200)
            fail_msg("member %zu: GET /metrics: status %d, received: \"%.300s\"", i + 1, status,
                     body);
        uint64_t lead, is_leader, t, commit, applied;
        assert_true(ds_cl_metric(body, "gossamer_raft_leader", &lead));
        assert_true(ds_cl_metric(body, "gossamer_raft_is_leader", &is_leader));
        assert_true(ds_cl_metric(body, "gossamer_raft_term", &t));
        assert_true(ds_cl_metric(body, "gossamer_raft_commit_index", &commit));
        assert_true(ds_cl_metric(body, "gossamer_raft_applied_index", &applied));
        assert_int_equal(lead, c->m[l].id);
        assert_int_equal(is_leader, i == l);
        assert_int_equal(t, term);
        assert_true(commit >= idx && applied >= idx);

        status = ds_cl_http_get(c, i, "/healthz", body, sizeof body, 3000);
        if (status != 200)
            fail_msg("member %zu: GET /healthz: status %d, received: \"%.300s\"", i + 1, status,
                     body);
        assert_non_null(strstr(body, i == l ? "ok role=leader" : "ok role=follower"));
        status = ds_cl_http_get(c, i, "/nope", body, sizeof body, 3000);
        assert_int_equal(status, 404);
    }

    ds_cl_shutdown(c);
    ds_cl_passed(c);
}

/*  A TCP connection to member i's http endpoint. */
static int s_http_connect(const ds_cl_t *c, size_t i)
{
    int fd = ds_cl_http_connect(c, i);
    if (fd < 0)
        fail_msg("connect to %s: %s", c->m[i].http, strerror(errno));
    return fd;
}

/*  Sends a request and resets the connection at once (SO_LINGER 0),
    before any answer. */
static void s_http_hang_up(const ds_cl_t *c, size_t i, const char *path)
{
    int fd = s_http_connect(c, i);
    struct linger reset = {1, 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
    char req[128];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\n\r\n", path);
    (void)send(fd, req, (size_t)len, MSG_NOSIGNAL);
    close(fd);
}

/*  Sends `req` in pieces of `piece` bytes, then reads the answer until
    the server closes (at most 5 s) and returns its status, or -1. */
static int s_http_raw(const ds_cl_t *c, size_t i, const char *req, size_t len, size_t piece)
{
    int fd = s_http_connect(c, i);
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        assert_int_equal(send(fd, req + off, n, MSG_NOSIGNAL), (ssize_t)n);
        if (piece < len)
            ds_test_sleep_ms(2);
    }
    char buf[4096];
    size_t got = 0;
    uint64_t deadline = ds_test_now_ms() + 5000;
    while (got < sizeof buf - 1 && ds_test_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    buf[got] = '\0';
    int status = -1;
    return sscanf(buf, "HTTP/1.1 %d", &status) == 1 ? status : -1;
}

static void test_http_clients_that_hang_up_stall_or_misbehave_do_not_stall_the_leader(void **state)
{
    ds_cl_t *c = *state;
    uint64_t term;
    size_t l = ds_cl_wait_leader(c, 0, S_WAIT_MS, &term);
    int silent[20];
    for (size_t i = 0; i < 20; i++)
        silent[i] = s_http_connect(c, l); /* connected, never a byte */
    for (int i = 0; i < 300; i++)
        s_http_hang_up(c, l, i % 2 ? "/" : "/metrics");
    static char body[65536];
    /* 10 s: under the sanitizers 320 connections at once can overflow the
       accept queue, and TCP retransmits; a stalled node never answers. */
    int status = ds_cl_http_get(c, l, "/healthz", body, sizeof body, 10000);
    if (status != 200)
        fail_msg("GET /healthz after 300 early hang-ups: status %d (%.300s)", status, body);
    assert_non_null(strstr(body, "ok role=leader"));

    const char get[] = "GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(s_http_raw(c, l, get, sizeof get - 1, 3), 200); /* in 3-byte pieces */
    const char post[] = "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(s_http_raw(c, l, post, sizeof post - 1, sizeof post), 405);
    const char bad[] = "GET metrics HTTP/1.1\r\n\r\n";
    assert_int_equal(s_http_raw(c, l, bad, sizeof bad - 1, sizeof bad), 400);
    static char big[9000];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    assert_int_equal(s_http_raw(c, l, big, sizeof big, sizeof big), 431);

    uint64_t idx = ds_cl_dsctl_put(c, "after", "hang-ups");
    ds_cl_wait_applied(c, l, idx, c->m[l].id, S_WAIT_MS);
    uint64_t now;
    assert_int_equal(ds_cl_wait_leader(c, 0, S_WAIT_MS, &now), l);
    assert_int_equal(now, term);
    uint64_t open = 0;
    assert_int_equal(ds_cl_http_get(c, l, "/metrics", body, sizeof body, 3000), 200);
    assert_true(ds_cl_metric(body, "gossamer_http_connections", &open));
    assert_true(open >= 20 + 1 && open <= 64); /* the silent ones, this one */
    for (size_t i = 0; i < 20; i++)
        close(silent[i]);
    ds_cl_shutdown(c);
    ds_cl_passed(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_new_leader_after_sigkill_and_restarted_leader_rejoins_as_follower, s_setup,
            ds_cl_teardown),
        cmocka_unit_test_setup_teardown(
            test_stopped_leader_is_replaced_and_steps_down_quietly_on_sigcont, s_setup,
            ds_cl_teardown),
        cmocka_unit_test_setup_teardown(test_transfer_leader_moves_leadership_to_another_member,
                                        s_setup, ds_cl_teardown),
        cmocka_unit_test_setup_teardown(
            test_http_metrics_and_healthz_report_each_members_raft_state, s_setup, ds_cl_teardown),
        cmocka_unit_test_setup_teardown(
            test_http_clients_that_hang_up_stall_or_misbehave_do_not_stall_the_leader, s_setup,
            ds_cl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
