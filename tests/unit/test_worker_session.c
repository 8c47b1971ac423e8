/*  tests/unit/test_worker_session.c - the worker's coordinator link,
    driven against test coordinators: ROUTER sockets on 127.0.0.1 that
    the test answers by hand (JOIN, HEARTBEAT, ASSIGNMENT_REQ, NOT_LEADER
    redirects, silence). The session's clock is the test's: timeouts and
    backoff are reached by moving `now`, never by sleeping. Every wait on
    a socket is bounded. The reconciler is a fake behind the hooks. */
#include "protocol/error.h"
#include "protocol/msg.h"
#include "protocol/transport.h"
#include "tests/testutil.h"
#include "worker/agent.h"
#include "worker/session.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define S_COORDS  3
#define S_POLL_MS 10
#define S_TRIES                                                                                    \
    1000 /* S_TRIES * S_POLL_MS: the longest real wait, 10 s (a loaded                             \
               sanitizer run once needed more than 3 s) */

typedef struct {
    zsock_t *router;
    char ep[128];
} s_coord_t;

/*  What the session sees of the reconciler. */
typedef struct {
    uint64_t generation;
    unsigned applied;
    int apply_rc; /* what apply returns */
} s_fake_t;

typedef struct {
    s_coord_t c[S_COORDS];
    char dead_ep[128]; /* a port nobody listens on */
    int dead_hold;     /* the socket that keeps it so (ds_test_refusing_port) */
    s_fake_t fake;
    ds_session_t *s;
    uint64_t now;
    uint64_t last_corr;
    ds_agent_t *agent; /* when set, the agent drives its own session */
    char dir[512];     /* a temporary data directory, removed at teardown */
} s_fix_t;

/*  The session under test: the test's own, or the agent's. */
static ds_session_t *s_sess(s_fix_t *fx)
{
    return fx->agent ? ds_agent_session(fx->agent) : fx->s;
}

/*  One step: the session at the test's clock, or a pass of the agent's
    loop (real clock) that does not wait. */
static void s_step(s_fix_t *fx)
{
    if (fx->agent)
        assert_int_equal(ds_agent_once(fx->agent, 0), 0);
    else
        ds_session_step(fx->s, fx->now);
}

/* ---- the fake reconciler -------------------------------------------- */

static uint64_t s_generation(void *ctx)
{
    return ((s_fake_t *)ctx)->generation;
}

static ds_instance_status_t s_inst = {.service = "svc",
                                      .version = 1,
                                      .state = DS_INST_RUNNING,
                                      .health = DS_HEALTH_PASSING,
                                      .pid = 42,
                                      .reason = "",
                                      .n_metrics = 0,
                                      .metrics = NULL};

static void s_report(void *ctx, ds_heartbeat_t *hb)
{
    (void)ctx;
    hb->telemetry.load1 = 0.5;
    hb->telemetry.mem_total_kb = 1024;
    hb->n_instances = 1;
    hb->instances = &s_inst;
}

static int s_apply(void *ctx, const ds_assignment_t *a, char *err, size_t errlen)
{
    s_fake_t *f = ctx;
    if (f->apply_rc != 0)
        return ds_errf(err, errlen, f->apply_rc, "refused by the test");
    f->generation = a->generation;
    f->applied++;
    return 0;
}

/* ---- fixture ----------------------------------------------------------- */

static int s_bind(s_coord_t *c)
{
    char err[256];
    if (ds_test_tcp_endpoint(c->ep, sizeof c->ep) != 0 ||
        ds_transport_router_bind(c->ep, NULL, &c->router, err, sizeof err) != 0)
        return -1;
    return 0;
}

static int s_setup(void **state)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    *state = fx;
    uint16_t dead_port = 0;
    if ((fx->dead_hold = ds_test_refusing_port(&dead_port)) < 0)
        return -1;
    snprintf(fx->dead_ep, sizeof fx->dead_ep, "tcp://127.0.0.1:%u", (unsigned)dead_port);
    for (int i = 0; i < S_COORDS; i++)
        if (s_bind(&fx->c[i]) != 0)
            return -1;
    fx->now = 1000000;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    if (!fx)
        return 0;
    ds_session_destroy(&fx->s);
    ds_agent_destroy(&fx->agent);
    if (fx->dir[0])
        ds_test_rmrf(fx->dir);
    for (int i = 0; i < S_COORDS; i++)
        zsock_destroy(&fx->c[i].router);
    if (fx->dead_hold > 0)
        close(fx->dead_hold);
    free(fx);
    return 0;
}

/*  Starts a session joining through `eps`. */
static void s_start(s_fix_t *fx, const char *const *eps, size_t n, uint32_t heartbeat_ms,
                    uint32_t backoff_max_ms)
{
    ds_kv_t labels[] = {{"zone", "a"}};
    ds_session_opts_t o = {
        .name = "w1",
        .worker_id = "0123456789abcdef0123456789abcdef",
        .endpoints = eps,
        .n_endpoints = n,
        .labels = labels,
        .n_labels = 1,
        .resources = {4, 8192, 100000},
        .software_version = "test",
        .heartbeat_ms = heartbeat_ms,
        .backoff_max_ms = backoff_max_ms,
        .seed = 7,
        .corr_start = 5000,
        .hooks = {&fx->fake, s_generation, s_report, s_apply},
    };
    char err[256] = "";
    assert_int_equal(ds_session_new(&fx->s, &o, fx->now, err, sizeof err), 0);
}

/*  Steps the session at the test's `now` until coordinator `c` receives
    a request; returns it (the caller destroys it and *rid). Checks that
    every request comes from "w1" with a growing correlation id. */
static ds_msg_t *s_expect(s_fix_t *fx, s_coord_t *c, uint16_t type, zframe_t **rid)
{
    for (int i = 0; i < S_TRIES; i++) {
        s_step(fx);
        zmq_pollitem_t item = {.socket = zsock_resolve(c->router), .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, S_POLL_MS) <= 0)
            continue;
        ds_msg_t *msg = NULL;
        assert_int_equal(ds_transport_recv(c->router, true, rid, &msg, NULL), 0);
        if (msg->env.type != type)
            fail_msg("expected a %s, got a %s", ds_msg_type_name(type),
                     ds_msg_type_name(msg->env.type));
        assert_string_equal(msg->env.sender, "w1");
        assert_true(msg->env.corr_id > fx->last_corr);
        fx->last_corr = msg->env.corr_id;
        return msg;
    }
    fail_msg("no %s reached %s", ds_msg_type_name(type), c->ep);
    return NULL;
}

/*  Nothing reaches `c` within a few polls (the session steps meanwhile). */
static void s_expect_nothing(s_fix_t *fx, s_coord_t *c)
{
    for (int i = 0; i < 10; i++) {
        s_step(fx);
        zmq_pollitem_t item = {.socket = zsock_resolve(c->router), .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, S_POLL_MS) > 0)
            fail_msg("%s got a message it should not have", c->ep);
    }
}

static void s_reply(s_coord_t *c, zframe_t **rid, ds_msg_t **req, uint16_t type, const void *body,
                    uint64_t corr_delta)
{
    ds_envelope_t env = {DS_PROTOCOL_VERSION, type, (*req)->env.corr_id + corr_delta, "1"};
    assert_int_equal(ds_transport_send(c->router, *rid, &env, body, NULL), 0);
    zframe_destroy(rid);
    ds_msg_destroy(req);
}

/*  Steps the session until it has read a reply (bounded). */
static void s_settle(s_fix_t *fx)
{
    for (int i = 0; i < S_TRIES; i++) {
        void *sock = ds_session_socket(s_sess(fx));
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        if (sock && zmq_poll(&item, 1, S_POLL_MS) > 0) {
            s_step(fx);
            return;
        }
        if (!sock)
            break;
    }
    fail_msg("the session got no reply");
}

static void s_join_reply(s_fix_t *fx, s_coord_t *c, zframe_t **rid, ds_msg_t **req,
                         uint32_t heartbeat_ms, uint64_t generation)
{
    ds_join_reply_t r = {
        "0123456789abcdef0123456789abcdef", heartbeat_ms, {generation, 0, NULL}, 0, NULL};
    s_reply(c, rid, req, DS_MSG_JOIN_REPLY, &r, 0);
    s_settle(fx);
}

/*  Joins at c[i] from a fresh session whose only join endpoint it is. */
static void s_joined_at(s_fix_t *fx, int i, uint32_t heartbeat_ms)
{
    const char *eps[] = {fx->c[i].ep};
    s_start(fx, eps, 1, heartbeat_ms, 0);
    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[i], DS_MSG_JOIN, &rid);
    s_join_reply(fx, &fx->c[i], &rid, &req, heartbeat_ms, 0);
    assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINED);
}

/* ---- the backoff schedule (pure) ---------------------------------------- */

static void test_backoff_doubles_to_the_cap_with_bounded_jitter(void **state)
{
    (void)state;
    uint64_t rng = 1;
    for (uint32_t f = 0; f < 12; f++) {
        uint32_t base = 100u << (f < 6 ? f : 6);
        base = base > 5000 ? 5000 : base;
        for (int k = 0; k < 50; k++) {
            uint32_t d = ds_session_backoff_ms(f, 100, 5000, &rng);
            if (d < base / 2 || d > base)
                fail_msg("failures=%u: %u ms outside [%u, %u]", f, d, base / 2, base);
        }
    }
    /* the same seed gives the same schedule; another seed another one */
    uint64_t a = 42, b = 42, c = 43;
    bool differs = false;
    for (uint32_t f = 0; f < 10; f++) {
        uint32_t da = ds_session_backoff_ms(f, 100, 5000, &a);
        assert_int_equal(da, ds_session_backoff_ms(f, 100, 5000, &b));
        differs |= da != ds_session_backoff_ms(f, 100, 5000, &c);
    }
    assert_true(differs);
    /* a huge failure count neither overflows nor passes the cap */
    assert_true(ds_session_backoff_ms(UINT32_MAX, 100, 5000, &a) <= 5000);
}

static void test_bad_options_are_refused(void **state)
{
    s_fix_t *fx = *state;
    const char *eps[] = {fx->c[0].ep};
    ds_session_opts_t o = {
        .name = "", .worker_id = "x", .endpoints = eps, .n_endpoints = 1, .heartbeat_ms = 1000};
    char err[256] = "";
    assert_int_equal(ds_session_new(&fx->s, &o, 0, err, sizeof err), DS_EINVAL);
    assert_null(fx->s);
    o.name = "w1";
    o.n_endpoints = 0;
    assert_int_equal(ds_session_new(&fx->s, &o, 0, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "join endpoints"));
}

/* ---- joining ------------------------------------------------------------- */

static void test_join_then_heartbeats_fetch_newer_assignments(void **state)
{
    s_fix_t *fx = *state;
    const char *eps[] = {fx->c[0].ep};
    s_start(fx, eps, 1, 1000, 0);
    fx->fake.generation = 2; /* what the store had */
    assert_int_equal(ds_session_state(fx->s), DS_SESSION_DISCOVERING);
    assert_null(ds_session_socket(fx->s));

    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[0], DS_MSG_JOIN, &rid);
    const ds_join_req_t *join = req->body;
    assert_string_equal(join->name, "w1");
    assert_string_equal(join->worker_id, "0123456789abcdef0123456789abcdef");
    assert_int_equal(join->n_labels, 1);
    assert_string_equal(join->labels[0].key, "zone");
    assert_int_equal(join->resources.cpus, 4);
    assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINING);

    /* the join reply's heartbeat wins; its assignment is applied */
    s_join_reply(fx, &fx->c[0], &rid, &req, 200, 3);
    assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINED);
    assert_string_equal(ds_session_leader(fx->s), fx->c[0].ep);
    assert_int_equal(ds_session_heartbeat_ms(fx->s), 200);
    assert_int_equal(fx->fake.generation, 3);
    assert_int_equal(fx->fake.applied, 1);

    /* a first heartbeat at once, with the status */
    req = s_expect(fx, &fx->c[0], DS_MSG_HEARTBEAT, &rid);
    const ds_heartbeat_t *hb = req->body;
    assert_string_equal(hb->name, "w1");
    assert_int_equal(hb->generation, 3);
    assert_int_equal(hb->n_instances, 1);
    assert_string_equal(hb->instances[0].service, "svc");
    assert_true(hb->telemetry.load1 > 0.4);

    /* a newer generation in the reply: fetch it */
    ds_heartbeat_reply_t hr = {5, 1, fx->c[0].ep, 0, NULL, 0, NULL};
    s_reply(&fx->c[0], &rid, &req, DS_MSG_HEARTBEAT_REPLY, &hr, 0);
    req = s_expect(fx, &fx->c[0], DS_MSG_ASSIGNMENT_REQ, &rid);
    const ds_assignment_req_t *ar = req->body;
    assert_string_equal(ar->name, "w1");
    assert_int_equal(ar->have_generation, 3);
    ds_assignment_t a = {5, 0, NULL};
    s_reply(&fx->c[0], &rid, &req, DS_MSG_ASSIGNMENT, &a, 0);
    s_settle(fx);
    assert_int_equal(fx->fake.generation, 5);
    assert_int_equal(fx->fake.applied, 2);

    /* nothing before the interval; then the next heartbeat, at generation 5 */
    s_expect_nothing(fx, &fx->c[0]);
    fx->now += 200;
    req = s_expect(fx, &fx->c[0], DS_MSG_HEARTBEAT, &rid);
    assert_int_equal(((const ds_heartbeat_t *)req->body)->generation, 5);
    /* the same generation again: no fetch, the next request is a heartbeat */
    hr.generation = 5;
    s_reply(&fx->c[0], &rid, &req, DS_MSG_HEARTBEAT_REPLY, &hr, 0);
    s_settle(fx);
    fx->now += 200;
    req = s_expect(fx, &fx->c[0], DS_MSG_HEARTBEAT, &rid);
    zframe_destroy(&rid);
    ds_msg_destroy(&req);

    ds_session_stats_t st;
    ds_session_stats(fx->s, &st);
    assert_int_equal(st.joins, 1);
    assert_int_equal(st.fetches, 1);
    assert_int_equal(st.applied, 2);
    assert_int_equal(st.heartbeat_replies, 2);
}

static void test_join_reply_without_assignment_keeps_what_runs(void **state)
{
    s_fix_t *fx = *state;
    fx->fake.generation = 4; /* resumed from the store */
    s_joined_at(fx, 0, 1000);
    assert_int_equal(fx->fake.generation, 4);
    assert_int_equal(fx->fake.applied, 0);
}

static void test_not_leader_redirects_to_the_named_leader(void **state)
{
    s_fix_t *fx = *state;
    const char *eps[] = {fx->c[0].ep};
    s_start(fx, eps, 1, 1000, 0);
    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[0], DS_MSG_JOIN, &rid);
    ds_not_leader_t nl = {2, fx->c[1].ep, 4};
    s_reply(&fx->c[0], &rid, &req, DS_MSG_NOT_LEADER, &nl, 0);
    req = s_expect(fx, &fx->c[1], DS_MSG_JOIN, &rid); /* at once, no backoff */
    s_join_reply(fx, &fx->c[1], &rid, &req, 1000, 0);
    assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINED);
    assert_string_equal(ds_session_leader(fx->s), fx->c[1].ep);
    /* the leader it learned is remembered next to the join endpoint */
    assert_int_equal(ds_session_n_endpoints(fx->s), 2);
    assert_string_equal(ds_session_endpoint(fx->s, 1), fx->c[1].ep);
    ds_session_stats_t st;
    ds_session_stats(fx->s, &st);
    assert_int_equal(st.redirects, 1);
}

static void test_late_and_foreign_replies_are_dropped(void **state)
{
    s_fix_t *fx = *state;
    const char *eps[] = {fx->c[0].ep};
    s_start(fx, eps, 1, 1000, 0);
    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[0], DS_MSG_JOIN, &rid);
    uint64_t corr = req->env.corr_id;
    zframe_t *rid2 = zframe_dup(rid);
    ds_join_reply_t r = {"x", 1000, {9, 0, NULL}, 0, NULL};
    s_reply(&fx->c[0], &rid, &req, DS_MSG_JOIN_REPLY, &r, 1); /* a wrong corr_id */
    s_settle(fx);
    assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINING);
    assert_int_equal(fx->fake.applied, 0);
    /* the right one is taken */
    ds_envelope_t env = {DS_PROTOCOL_VERSION, DS_MSG_JOIN_REPLY, corr, "1"};
    assert_int_equal(ds_transport_send(fx->c[0].router, rid2, &env, &r, NULL), 0);
    zframe_destroy(&rid2);
    s_settle(fx);
    assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINED);
    assert_int_equal(fx->fake.generation, 9);
}

/* ---- silence, backoff, rejoin --------------------------------------------- */

static void test_silent_member_is_skipped_for_the_next(void **state)
{
    s_fix_t *fx = *state;
    const char *eps[] = {fx->c[0].ep, fx->c[1].ep};
    s_start(fx, eps, 2, 1000, 0);
    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[0], DS_MSG_JOIN, &rid); /* never answered */
    zframe_destroy(&rid);
    ds_msg_destroy(&req);
    uint64_t wake = ds_session_next_wake(fx->s);
    assert_true(wake > fx->now);
    fx->now = wake; /* the join's deadline */
    req = s_expect(fx, &fx->c[1], DS_MSG_JOIN, &rid);
    s_join_reply(fx, &fx->c[1], &rid, &req, 1000, 0);
    assert_string_equal(ds_session_leader(fx->s), fx->c[1].ep);
    ds_session_stats_t st;
    ds_session_stats(fx->s, &st);
    assert_int_equal(st.timeouts, 1);
}

static void test_failed_rounds_back_off_exponentially_to_the_cap(void **state)
{
    s_fix_t *fx = *state;
    const char *eps[] = {fx->dead_ep};
    s_start(fx, eps, 1, 1000, 400);
    ds_session_step(fx->s, fx->now);
    assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINING);
    static const uint32_t caps[] = {100, 200, 400, 400, 400};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        fx->now = ds_session_next_wake(fx->s); /* the join times out */
        ds_session_step(fx->s, fx->now);
        assert_int_equal(ds_session_state(fx->s), DS_SESSION_DISCOVERING);
        uint64_t delay = ds_session_next_wake(fx->s) - fx->now;
        if (delay < caps[i] / 2 || delay > caps[i])
            fail_msg("round %zu: backoff of %llu ms outside [%u, %u]", i, (unsigned long long)delay,
                     caps[i] / 2, caps[i]);
        ds_session_stats_t before, after;
        ds_session_stats(fx->s, &before);
        ds_session_step(fx->s, fx->now + delay - 1); /* not yet */
        ds_session_stats(fx->s, &after);
        assert_int_equal(after.join_attempts, before.join_attempts);
        fx->now += delay;
        ds_session_step(fx->s, fx->now);
        ds_session_stats(fx->s, &after);
        assert_int_equal(after.join_attempts, before.join_attempts + 1);
        assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINING);
    }
}

static void test_lost_leader_goes_back_to_the_join_endpoints(void **state)
{
    s_fix_t *fx = *state;
    const char *eps[] = {fx->c[0].ep, fx->c[1].ep};
    s_start(fx, eps, 2, 100, 0);
    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[0], DS_MSG_JOIN, &rid);
    s_join_reply(fx, &fx->c[0], &rid, &req, 100, 0);
    /* the leader falls silent: three heartbeats without a reply */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINED);
        req = s_expect(fx, &fx->c[0], DS_MSG_HEARTBEAT, &rid);
        zframe_destroy(&rid);
        ds_msg_destroy(&req);
        fx->now = ds_session_next_wake(fx->s);
    }
    ds_session_step(fx->s, fx->now);
    assert_true(ds_session_state(fx->s) != DS_SESSION_JOINED);
    ds_session_stats_t st;
    ds_session_stats(fx->s, &st);
    assert_int_equal(st.lost, 1);
    /* ... and joins again, from the top of the list: c[0] is silent now,
       c[1] answers */
    req = s_expect(fx, &fx->c[0], DS_MSG_JOIN, &rid);
    zframe_destroy(&rid);
    ds_msg_destroy(&req);
    fx->now = ds_session_next_wake(fx->s);
    req = s_expect(fx, &fx->c[1], DS_MSG_JOIN, &rid);
    s_join_reply(fx, &fx->c[1], &rid, &req, 100, 0);
    assert_string_equal(ds_session_leader(fx->s), fx->c[1].ep);
}

static void test_learned_leader_is_tried_when_join_endpoints_are_gone(void **state)
{
    s_fix_t *fx = *state;
    const char *eps[] = {fx->c[0].ep};
    s_start(fx, eps, 1, 100, 0);
    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[0], DS_MSG_JOIN, &rid);
    ds_not_leader_t nl = {2, fx->c[1].ep, 4};
    s_reply(&fx->c[0], &rid, &req, DS_MSG_NOT_LEADER, &nl, 0);
    req = s_expect(fx, &fx->c[1], DS_MSG_JOIN, &rid);
    s_join_reply(fx, &fx->c[1], &rid, &req, 100, 0);
    /* the only join endpoint goes away; the leader stops answering once */
    zsock_destroy(&fx->c[0].router);
    for (int i = 0; i < 3; i++) {
        req = s_expect(fx, &fx->c[1], DS_MSG_HEARTBEAT, &rid);
        zframe_destroy(&rid);
        ds_msg_destroy(&req);
        fx->now = ds_session_next_wake(fx->s);
    }
    /* lost: c[0] is tried and times out, then the learned c[1] */
    ds_session_step(fx->s, fx->now);
    assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINING);
    fx->now = ds_session_next_wake(fx->s);
    req = s_expect(fx, &fx->c[1], DS_MSG_JOIN, &rid);
    s_join_reply(fx, &fx->c[1], &rid, &req, 100, 0);
    assert_string_equal(ds_session_leader(fx->s), fx->c[1].ep);
}

/*  Given only the leader's endpoint, a worker still finds the next leader
    when that one dies: heartbeat replies list every member. */
static void test_members_named_by_heartbeats_are_tried_when_the_leader_dies(void **state)
{
    s_fix_t *fx = *state;
    s_joined_at(fx, 0, 100);
    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[0], DS_MSG_HEARTBEAT, &rid);
    char *members[] = {fx->c[0].ep, fx->c[2].ep};
    ds_heartbeat_reply_t hr = {0, 1, fx->c[0].ep, 2, members, 0, NULL};
    s_reply(&fx->c[0], &rid, &req, DS_MSG_HEARTBEAT_REPLY, &hr, 0);
    s_settle(fx);
    assert_int_equal(ds_session_n_endpoints(fx->s), 2);
    zsock_destroy(&fx->c[0].router); /* the leader and only join endpoint dies */
    uint64_t until = fx->now + 60000;
    while (fx->now < until) { /* time moves on only while c[2] has heard nothing */
        ds_session_step(fx->s, fx->now);
        zclock_sleep(5);
        if (zsock_events(fx->c[2].router) & ZMQ_POLLIN)
            break;
        fx->now = ds_session_next_wake(fx->s);
    }
    req = s_expect(fx, &fx->c[2], DS_MSG_JOIN, &rid);
    s_join_reply(fx, &fx->c[2], &rid, &req, 100, 0);
    assert_string_equal(ds_session_leader(fx->s), fx->c[2].ep);
}

/* ---- what the leader says to heartbeats ------------------------------------ */

static void test_unknown_worker_error_makes_it_join_again(void **state)
{
    s_fix_t *fx = *state;
    s_joined_at(fx, 0, 1000);
    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[0], DS_MSG_HEARTBEAT, &rid);
    ds_error_reply_t e = {DS_ENOTFOUND, "unknown worker, join first"};
    s_reply(&fx->c[0], &rid, &req, DS_MSG_ERROR, &e, 0);
    req = s_expect(fx, &fx->c[0], DS_MSG_JOIN, &rid); /* here, at once */
    s_join_reply(fx, &fx->c[0], &rid, &req, 1000, 0);
    ds_session_stats_t st;
    ds_session_stats(fx->s, &st);
    assert_int_equal(st.joins, 2);
    assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINED);
}

static void test_heartbeat_not_leader_follows_the_new_leader(void **state)
{
    s_fix_t *fx = *state;
    s_joined_at(fx, 0, 1000);
    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[0], DS_MSG_HEARTBEAT, &rid);
    ds_not_leader_t nl = {3, fx->c[2].ep, 9};
    s_reply(&fx->c[0], &rid, &req, DS_MSG_NOT_LEADER, &nl, 0);
    req = s_expect(fx, &fx->c[2], DS_MSG_HEARTBEAT, &rid);
    ds_heartbeat_reply_t hr = {0, 3, fx->c[2].ep, 0, NULL, 0, NULL};
    s_reply(&fx->c[2], &rid, &req, DS_MSG_HEARTBEAT_REPLY, &hr, 0);
    s_settle(fx);
    assert_int_equal(ds_session_state(fx->s), DS_SESSION_JOINED);
    assert_string_equal(ds_session_leader(fx->s), fx->c[2].ep);

    /* no leader known (an election): back to the join endpoints */
    fx->now += 1000;
    req = s_expect(fx, &fx->c[2], DS_MSG_HEARTBEAT, &rid);
    ds_not_leader_t none = {0, "", 10};
    s_reply(&fx->c[2], &rid, &req, DS_MSG_NOT_LEADER, &none, 0);
    req = s_expect(fx, &fx->c[0], DS_MSG_JOIN, &rid);
    zframe_destroy(&rid);
    ds_msg_destroy(&req);
}

static void test_refused_assignment_is_not_fetched_again(void **state)
{
    s_fix_t *fx = *state;
    s_joined_at(fx, 0, 1000);
    fx->fake.apply_rc = DS_EINVAL;
    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[0], DS_MSG_HEARTBEAT, &rid);
    ds_heartbeat_reply_t hr = {7, 1, fx->c[0].ep, 0, NULL, 0, NULL};
    s_reply(&fx->c[0], &rid, &req, DS_MSG_HEARTBEAT_REPLY, &hr, 0);
    req = s_expect(fx, &fx->c[0], DS_MSG_ASSIGNMENT_REQ, &rid);
    ds_assignment_t a = {7, 0, NULL};
    s_reply(&fx->c[0], &rid, &req, DS_MSG_ASSIGNMENT, &a, 0);
    s_settle(fx);
    assert_int_equal(fx->fake.generation, 0);
    fx->now += 1000;
    req = s_expect(fx, &fx->c[0], DS_MSG_HEARTBEAT, &rid);
    s_reply(&fx->c[0], &rid, &req, DS_MSG_HEARTBEAT_REPLY, &hr, 0);
    s_settle(fx);
    s_expect_nothing(fx, &fx->c[0]); /* no second fetch of generation 7 */
    hr.generation = 8;               /* a newer one is fetched */
    fx->now += 1000;
    req = s_expect(fx, &fx->c[0], DS_MSG_HEARTBEAT, &rid);
    s_reply(&fx->c[0], &rid, &req, DS_MSG_HEARTBEAT_REPLY, &hr, 0);
    req = s_expect(fx, &fx->c[0], DS_MSG_ASSIGNMENT_REQ, &rid);
    zframe_destroy(&rid);
    ds_msg_destroy(&req);
}

/* ---- the agent: the session wired to the store and the real reconciler --- */

static void s_agent_start(s_fix_t *fx)
{
    ds_worker_config_t cfg;
    char err[512] = "";
    memset(&cfg, 0, sizeof cfg);
    assert_int_equal(
        ds_options_defaults(ds_worker_options, ds_worker_n_options, &cfg, err, sizeof err), 0);
    snprintf(cfg.name, sizeof cfg.name, "w1");
    snprintf(cfg.data, sizeof cfg.data, "%s/w1", fx->dir);
    snprintf(cfg.join, sizeof cfg.join, "%s", fx->c[0].ep);
    snprintf(cfg.labels, sizeof cfg.labels, "zone=a");
    cfg.insecure = true; /* the test coordinator is a plain ROUTER */
    assert_int_equal(ds_worker_config_finish(&cfg, "host", err, sizeof err), 0);
    int rc = ds_agent_new(&fx->agent, &cfg, "test", err, sizeof err);
    if (rc != 0)
        fail_msg("ds_agent_new: %s", err);
}

static void test_agent_joins_as_its_stored_identity_and_resumes_after_restart(void **state)
{
    s_fix_t *fx = *state;
    assert_int_equal(ds_test_mkdtemp("worker-agent", fx->dir, sizeof fx->dir), 0);
    s_agent_start(fx);
    char id[64];
    snprintf(id, sizeof id, "%s", ds_agent_identity(fx->agent)->id);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(ds_reconciler_generation(ds_agent_reconciler(fx->agent)), 0);

    zframe_t *rid = NULL;
    ds_msg_t *req = s_expect(fx, &fx->c[0], DS_MSG_JOIN, &rid);
    const ds_join_req_t *join = req->body;
    assert_string_equal(join->worker_id, id);
    assert_int_equal(join->n_labels, 1);
    assert_string_equal(join->labels[0].value, "a");
    assert_true(join->resources.cpus > 0);
    assert_string_equal(join->software_version, "test");
    /* the join reply's assignment goes to the reconciler */
    ds_join_reply_t r = {id, 1000, {1, 0, NULL}, 0, NULL};
    s_reply(&fx->c[0], &rid, &req, DS_MSG_JOIN_REPLY, &r, 0);
    s_settle(fx);
    assert_int_equal(ds_session_state(s_sess(fx)), DS_SESSION_JOINED);
    assert_int_equal(ds_reconciler_generation(ds_agent_reconciler(fx->agent)), 1);

    /* heartbeats carry the reconciler's generation and telemetry */
    req = s_expect(fx, &fx->c[0], DS_MSG_HEARTBEAT, &rid);
    const ds_heartbeat_t *hb = req->body;
    assert_int_equal(hb->generation, 1);
    assert_true(hb->telemetry.mem_total_kb > 0);
    zframe_destroy(&rid);
    ds_msg_destroy(&req);

    /* a restart with the coordinator silent: same identity, and the last
       assignment is back before any reply */
    ds_agent_destroy(&fx->agent);
    s_agent_start(fx);
    assert_string_equal(ds_agent_identity(fx->agent)->id, id);
    assert_int_equal(ds_reconciler_generation(ds_agent_reconciler(fx->agent)), 1);
    fx->last_corr = 0; /* ids grow across restarts too, but by the wall clock */
    req = s_expect(fx, &fx->c[0], DS_MSG_JOIN, &rid);
    assert_string_equal(((const ds_join_req_t *)req->body)->worker_id, id);
    zframe_destroy(&rid);
    ds_msg_destroy(&req);
    for (int i = 0; i < 5; i++) /* the loop keeps going with nobody answering */
        assert_int_equal(ds_agent_once(fx->agent, S_POLL_MS), 0);
    assert_int_equal(ds_reconciler_generation(ds_agent_reconciler(fx->agent)), 1);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_to_the_cap_with_bounded_jitter),
        T(test_bad_options_are_refused),
        T(test_join_then_heartbeats_fetch_newer_assignments),
        T(test_join_reply_without_assignment_keeps_what_runs),
        T(test_not_leader_redirects_to_the_named_leader),
        T(test_late_and_foreign_replies_are_dropped),
        T(test_silent_member_is_skipped_for_the_next),
        T(test_failed_rounds_back_off_exponentially_to_the_cap),
        T(test_lost_leader_goes_back_to_the_join_endpoints),
        T(test_learned_leader_is_tried_when_join_endpoints_are_gone),
        T(test_members_named_by_heartbeats_are_tried_when_the_leader_dies),
        T(test_unknown_worker_error_makes_it_join_again),
        T(test_heartbeat_not_leader_follows_the_new_leader),
        T(test_refused_assignment_is_not_fetched_again),
        T(test_agent_joins_as_its_stored_identity_and_resumes_after_restart),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
