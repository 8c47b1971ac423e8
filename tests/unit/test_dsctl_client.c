/*  tests/unit/test_dsctl_client.c - the cluster client against fake
    coordinators: ROUTER sockets served by threads, each answering in one
    fixed way. Every fake lives in the fixture, so teardown stops its
    thread and closes its socket even when an assertion fails. */
#include "dsctl/client.h"
#include "protocol/error.h"
#include "protocol/transport.h"
#include "tests/testutil.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef enum {
    S_ANSWER,    /* KV_REPLY */
    S_REDIRECT,  /* NOT_LEADER naming `leader_rpc` */
    S_NO_LEADER, /* NOT_LEADER naming nobody */
    S_ERROR,     /* ERROR DS_ENOTFOUND */
    S_SILENT     /* reads and drops */
} s_mode_t;

typedef struct {
    zsock_t *router;
    char ep[256];
    s_mode_t mode;
    char leader_rpc[256];
    pthread_t thread;
    bool started;
    atomic_bool stop;
    atomic_int requests;
    _Atomic uint64_t first_corr, last_corr;
} s_fake_t;

#define S_NFAKES 2

typedef struct {
    s_fake_t fakes[S_NFAKES];
    ds_client_t *client;
    ds_msg_t *reply;
} s_fix_t;

static void s_answer(s_fake_t *f, zframe_t *from, const ds_msg_t *req)
{
    ds_envelope_t env = {DS_PROTOCOL_VERSION, DS_MSG_KV_REPLY, req->env.corr_id, "fake"};
    ds_kv_reply_t kv = {"k", true, {(uint8_t *)"v", 1}, 11, 0, 0};
    ds_not_leader_t nl = {2, f->leader_rpc, 7};
    ds_not_leader_t none = {0, "", 8};
    ds_error_reply_t er = {DS_ENOTFOUND, "service \"x\" does not exist"};
    const void *body = &kv;
    if (f->mode == S_REDIRECT || f->mode == S_NO_LEADER) {
        env.type = DS_MSG_NOT_LEADER;
        body = f->mode == S_REDIRECT ? &nl : &none;
    } else if (f->mode == S_ERROR) {
        env.type = DS_MSG_ERROR;
        body = &er;
    }
    (void)ds_transport_send(f->router, from, &env, body, NULL);
}

static void *s_serve(void *arg)
{
    s_fake_t *f = arg;
    zmq_pollitem_t item = {.socket = zsock_resolve(f->router), .events = ZMQ_POLLIN};
    while (!atomic_load(&f->stop)) {
        if (zmq_poll(&item, 1, 20) <= 0)
            continue;
        zframe_t *from = NULL;
        ds_msg_t *req = NULL;
        if (ds_transport_recv(f->router, true, &from, &req, NULL) == 0) {
            if (atomic_fetch_add(&f->requests, 1) == 0)
                atomic_store(&f->first_corr, req->env.corr_id);
            atomic_store(&f->last_corr, req->env.corr_id);
            if (f->mode != S_SILENT)
                s_answer(f, from, req);
        }
        ds_msg_destroy(&req);
        zframe_destroy(&from);
    }
    return NULL;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    for (int i = 0; i < S_NFAKES; i++) {
        s_fake_t *f = &fx->fakes[i];
        atomic_store(&f->stop, true);
        if (f->started)
            pthread_join(f->thread, NULL);
        zsock_destroy(&f->router);
    }
    ds_msg_destroy(&fx->reply);
    ds_client_destroy(&fx->client);
    free(fx);
    return 0;
}

static int s_setup(void **state)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    *state = fx;
    for (int i = 0; i < S_NFAKES; i++) {
        s_fake_t *f = &fx->fakes[i];
        char err[256];
        if (ds_test_tcp_endpoint(f->ep, sizeof f->ep) != 0 ||
            ds_transport_router_bind(f->ep, NULL, &f->router, err, sizeof err) != 0) {
            s_teardown(state); /* cmocka skips teardown when setup fails */
            return -1;
        }
    }
    return 0;
}

static void s_start(s_fake_t *f, s_mode_t mode)
{
    f->mode = mode;
    assert_int_equal(pthread_create(&f->thread, NULL, s_serve, f), 0);
    f->started = true;
}

/*  A client over the given fakes' endpoints, in order. */
static void s_client(s_fix_t *fx, uint64_t timeout_ms, int attempt_ms, size_t n,
                     const size_t *which)
{
    ds_client_opts_t opts = {.timeout_ms = timeout_ms, .attempt_ms = attempt_ms};
    for (size_t i = 0; i < n; i++)
        snprintf(opts.endpoints.list[i], sizeof opts.endpoints.list[i], "%s",
                 fx->fakes[which[i]].ep);
    opts.endpoints.n = n;
    fx->client = ds_client_new(&opts);
    assert_non_null(fx->client);
}

static int s_get(s_fix_t *fx, ds_client_err_t *err)
{
    ds_kv_get_t get = {"k", false};
    ds_msg_destroy(&fx->reply);
    return ds_client_call(fx->client, DS_MSG_KV_GET, &get, &fx->reply, err);
}

static void test_client_follows_not_leader_to_the_named_leader(void **state)
{
    s_fix_t *fx = *state;
    s_fake_t *a = &fx->fakes[0], *b = &fx->fakes[1];
    snprintf(a->leader_rpc, sizeof a->leader_rpc, "%s", b->ep);
    s_start(a, S_REDIRECT);
    s_start(b, S_ANSWER);
    s_client(fx, 3000, 0, 1, (size_t[]){0}); /* only A is configured */
    ds_client_err_t err = {0, ""};
    assert_int_equal(s_get(fx, &err), 0);
    assert_int_equal(fx->reply->env.type, DS_MSG_KV_REPLY);
    assert_int_equal(((ds_kv_reply_t *)fx->reply->body)->index, 11);
    assert_int_equal(atomic_load(&a->requests), 1);
    assert_int_equal(atomic_load(&b->requests), 1);
    assert_int_equal(atomic_load(&a->first_corr), atomic_load(&b->first_corr));
    assert_string_equal(ds_client_leader(fx->client), b->ep);

    /* The next call goes straight to the leader it found. */
    assert_int_equal(s_get(fx, &err), 0);
    assert_int_equal(atomic_load(&a->requests), 1);
    assert_int_equal(atomic_load(&b->requests), 2);
}

static void test_client_moves_on_from_a_silent_endpoint(void **state)
{
    s_fix_t *fx = *state;
    s_start(&fx->fakes[0], S_SILENT);
    s_start(&fx->fakes[1], S_ANSWER);
    /* One 200 ms attempt, then the next endpoint: well inside the 10 s
       the whole call may take (the bound leaves room for a loaded CI). */
    s_client(fx, 10000, 200, 2, (size_t[]){0, 1});
    int64_t t0 = zclock_mono();
    ds_client_err_t err = {0, ""};
    assert_int_equal(s_get(fx, &err), 0);
    assert_true(zclock_mono() - t0 < 5000);
    assert_int_equal(atomic_load(&fx->fakes[0].requests), 1);
    assert_string_equal(ds_client_leader(fx->client), fx->fakes[1].ep);
}

static void test_client_returns_error_replies_to_the_caller(void **state)
{
    s_fix_t *fx = *state;
    s_start(&fx->fakes[0], S_ERROR);
    s_client(fx, 2000, 0, 1, (size_t[]){0});
    ds_client_err_t err = {0, ""};
    assert_int_equal(s_get(fx, &err), 0);
    assert_int_equal(fx->reply->env.type, DS_MSG_ERROR);
    assert_int_equal(((ds_error_reply_t *)fx->reply->body)->code, DS_ENOTFOUND);
    assert_int_equal(atomic_load(&fx->fakes[0].requests), 1);
}

static void test_no_leader_anywhere_fails_with_enoquorum_by_the_deadline(void **state)
{
    s_fix_t *fx = *state;
    s_start(&fx->fakes[0], S_NO_LEADER);
    s_start(&fx->fakes[1], S_NO_LEADER);
    s_client(fx, 600, 0, 2, (size_t[]){0, 1});
    int64_t t0 = zclock_mono();
    ds_client_err_t err = {0, ""};
    assert_int_equal(s_get(fx, &err), DS_ENOQUORUM);
    int64_t took = zclock_mono() - t0;
    assert_null(fx->reply);
    assert_true(took >= 550 && took < 3000);
    assert_int_equal(err.code, DS_ENOQUORUM);
    assert_non_null(strstr(err.text, fx->fakes[0].ep));
    assert_non_null(strstr(err.text, fx->fakes[1].ep));
    assert_non_null(strstr(err.text, "knows no leader"));
    /* It kept retrying (with backoff), always with the same request id. */
    assert_true(atomic_load(&fx->fakes[0].requests) >= 2);
    assert_true(atomic_load(&fx->fakes[0].requests) < 20);
    assert_int_equal(atomic_load(&fx->fakes[0].first_corr), atomic_load(&fx->fakes[0].last_corr));
}

static void test_nothing_answering_fails_with_etimeout_by_the_deadline(void **state)
{
    s_fix_t *fx = *state;
    s_start(&fx->fakes[0], S_SILENT);
    /* fakes[1] has no thread at all: its socket never reads. */
    s_client(fx, 500, 0, 2, (size_t[]){0, 1});
    int64_t t0 = zclock_mono();
    ds_client_err_t err = {0, ""};
    assert_int_equal(s_get(fx, &err), DS_ETIMEOUT);
    int64_t took = zclock_mono() - t0;
    assert_true(took >= 450 && took < 3000);
    assert_non_null(strstr(err.text, "no coordinator answered within 500ms"));
    assert_non_null(strstr(err.text, fx->fakes[0].ep));
    assert_non_null(strstr(err.text, fx->fakes[1].ep));
    assert_non_null(strstr(err.text, "--timeout"));
}

static void test_members_pointing_at_each_other_are_throttled(void **state)
{
    s_fix_t *fx = *state;
    s_fake_t *a = &fx->fakes[0], *b = &fx->fakes[1];
    snprintf(a->leader_rpc, sizeof a->leader_rpc, "%s", b->ep);
    snprintf(b->leader_rpc, sizeof b->leader_rpc, "%s", a->ep);
    s_start(a, S_REDIRECT);
    s_start(b, S_REDIRECT);
    s_client(fx, 500, 0, 1, (size_t[]){0});
    int64_t t0 = zclock_mono();
    ds_client_err_t err = {0, ""};
    assert_int_equal(s_get(fx, &err), DS_ETIMEOUT);
    assert_true(zclock_mono() - t0 < 3000);
    int total = atomic_load(&a->requests) + atomic_load(&b->requests);
    assert_true(total >= 4 && total < 40);
    assert_non_null(strstr(err.text, "not the leader"));
}

static void test_unencodable_request_is_refused_before_sending(void **state)
{
    s_fix_t *fx = *state;
    s_start(&fx->fakes[0], S_ANSWER);
    s_client(fx, 1000, 0, 1, (size_t[]){0});
    char key[DS_MAX_KV_KEY + 2];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    ds_kv_get_t get = {key, false};
    ds_client_err_t err = {0, ""};
    int rc = ds_client_call(fx->client, DS_MSG_KV_GET, &get, &fx->reply, &err);
    assert_true(rc < 0 && rc != DS_ETIMEOUT && rc != DS_ENOQUORUM);
    assert_non_null(strstr(err.text, "invalid request"));
    assert_null(fx->reply);
    zclock_sleep(50);
    assert_int_equal(atomic_load(&fx->fakes[0].requests), 0);
}

#define S_TEST(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

static void test_session_names_are_unique_and_fit(void **state)
{
    (void)state;
    char a[DS_MAX_NAME + 1], b[DS_MAX_NAME + 1];
    ds_client_session_name("dsctl", a, sizeof a);
    ds_client_session_name("dsctl", b, sizeof b);
    assert_true(strncmp(a, "dsctl-", 6) == 0);
    assert_true(strlen(a) <= DS_MAX_NAME);
    assert_string_not_equal(a, b); /* a random part: no two clients share a session */
}

int main(void)
{
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_names_are_unique_and_fit),
        S_TEST(test_client_follows_not_leader_to_the_named_leader),
        S_TEST(test_client_moves_on_from_a_silent_endpoint),
        S_TEST(test_client_returns_error_replies_to_the_caller),
        S_TEST(test_no_leader_anywhere_fails_with_enoquorum_by_the_deadline),
        S_TEST(test_nothing_answering_fails_with_etimeout_by_the_deadline),
        S_TEST(test_members_pointing_at_each_other_are_throttled),
        S_TEST(test_unencodable_request_is_refused_before_sending),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return failed;
}
