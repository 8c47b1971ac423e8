/*  tests/unit/test_transport.c - ZeroMQ framing over real sockets on
    tcp://127.0.0.1 with ports the OS picks. Every socket and thread lives
    in the fixture, so teardown frees them even when an assertion fails. */
#include "protocol/error.h"
#include "protocol/msg.h"
#include "protocol/transport.h"
#include "tests/testutil.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct {
    zsock_t *router;
    zsock_t *dealer;
    zsock_t *raw;
    char ep[256];
    pthread_t thread;
    bool thread_started;
    uint64_t corr_id; /* what the server thread answers to */
    bool send_matching;
    int held_port; /* a socket from ds_test_refusing_port, or -1 */
} s_fix_t;

static int s_setup(void **state)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    fx->held_port = -1;
    char err[256];
    if (ds_test_tcp_endpoint(fx->ep, sizeof fx->ep) != 0 ||
        ds_transport_router_bind(fx->ep, NULL, &fx->router, err, sizeof err) != 0) {
        free(fx);
        return -1;
    }
    zsock_set_rcvtimeo(fx->router, 2000);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    if (fx->thread_started)
        pthread_join(fx->thread, NULL);
    zsock_destroy(&fx->raw);
    zsock_destroy(&fx->dealer);
    zsock_destroy(&fx->router);
    if (fx->held_port >= 0)
        close(fx->held_port);
    free(fx);
    return 0;
}

static ds_envelope_t s_env(uint16_t type, uint64_t corr_id)
{
    ds_envelope_t env = {DS_PROTOCOL_VERSION, type, corr_id, "tester"};
    return env;
}

/*  Sends through a peer DEALER, retrying while it is still connecting
    (ZMQ_IMMEDIATE refuses sends until then). */
static int s_send_when_connected(zsock_t *sock, const ds_envelope_t *env, const void *body)
{
    int rc = DS_ELIMIT;
    for (int i = 0; i < 200 && rc == DS_ELIMIT; i++) {
        rc = ds_transport_send(sock, NULL, env, body, NULL);
        if (rc == DS_ELIMIT)
            zclock_sleep(10);
    }
    return rc;
}

static void test_router_dealer_round_trip(void **state)
{
    s_fix_t *fx = *state;
    char err[256];
    assert_int_equal(ds_transport_peer_connect(fx->ep, "2", NULL, &fx->dealer, err, sizeof err), 0);
    ds_envelope_t env = s_env(DS_MSG_KV_GET, 42);
    ds_kv_get_t get = {"greeting", true};
    assert_int_equal(s_send_when_connected(fx->dealer, &env, &get), 0);

    zframe_t *from = NULL;
    ds_msg_t *msg = NULL;
    ds_codec_err_t cerr;
    assert_int_equal(ds_transport_recv(fx->router, true, &from, &msg, &cerr), 0);
    assert_non_null(from);
    assert_true(zframe_streq(from, "2"));
    assert_int_equal(msg->env.type, DS_MSG_KV_GET);
    assert_int_equal(msg->env.corr_id, 42);
    assert_string_equal(msg->env.sender, "tester");
    assert_string_equal(((ds_kv_get_t *)msg->body)->key, "greeting");
    assert_true(((ds_kv_get_t *)msg->body)->stale);
    ds_msg_destroy(&msg);

    ds_envelope_t renv = s_env(DS_MSG_KV_REPLY, 42);
    ds_kv_reply_t reply = {"greeting", true, {(uint8_t *)"hello", 5}, 9, 1, 9};
    int rc = ds_transport_send(fx->router, from, &renv, &reply, &cerr);
    zframe_destroy(&from);
    assert_int_equal(rc, 0);
    zsock_set_rcvtimeo(fx->dealer, 2000);
    assert_int_equal(ds_transport_recv(fx->dealer, false, NULL, &msg, &cerr), 0);
    ds_kv_reply_t *got = msg->body;
    assert_int_equal(got->index, 9);
    assert_int_equal(got->value.len, 5);
    assert_memory_equal(got->value.data, "hello", 5);
    ds_msg_destroy(&msg);
}

/*  Sends `n` raw frames from a plain DEALER and returns what the ROUTER
    side of the transport makes of them. */
static int s_raw_exchange(s_fix_t *fx, const char *const *frames, size_t n, ds_codec_err_t *cerr)
{
    if (!fx->raw) {
        fx->raw = zsock_new_dealer(fx->ep);
        assert_non_null(fx->raw);
    }
    zmsg_t *m = zmsg_new();
    for (size_t i = 0; i < n; i++)
        zmsg_addstr(m, frames[i]);
    assert_int_equal(zmsg_send(&m, fx->raw), 0);
    zframe_t *from = NULL;
    ds_msg_t *msg = NULL;
    int rc = ds_transport_recv(fx->router, true, &from, &msg, cerr);
    assert_null(msg);
    assert_non_null(from); /* known even when refused, for an error reply */
    zframe_destroy(&from);
    return rc;
}

static void test_malformed_multiparts_refused(void **state)
{
    s_fix_t *fx = *state;
    ds_codec_err_t cerr = {0, ""};
    const char *one[] = {"only"};
    assert_int_equal(s_raw_exchange(fx, one, 1, &cerr), DS_ETRUNCATED);
    assert_non_null(strstr(cerr.text, "2 frames"));
    const char *four[] = {"a", "b", "c"};
    assert_int_equal(s_raw_exchange(fx, four, 3, &cerr), DS_ETRAILING);
    assert_non_null(strstr(cerr.text, "4 frames"));
    const char *garbage[] = {"\xc1\xff\x00garbage", "\x93\x01"};
    int rc = s_raw_exchange(fx, garbage, 2, &cerr);
    assert_true(rc < 0);
    assert_true(rc != DS_ETRUNCATED && rc != DS_ETRAILING);

    /* The socket still works after refusing them. */
    char err[256];
    assert_int_equal(ds_transport_peer_connect(fx->ep, "3", NULL, &fx->dealer, err, sizeof err), 0);
    ds_envelope_t env = s_env(DS_MSG_KV_GET, 7);
    ds_kv_get_t get = {"k", false};
    assert_int_equal(s_send_when_connected(fx->dealer, &env, &get), 0);
    zframe_t *from = NULL;
    ds_msg_t *msg = NULL;
    rc = ds_transport_recv(fx->router, true, &from, &msg, &cerr);
    zframe_destroy(&from);
    assert_int_equal(rc, 0);
    ds_msg_destroy(&msg);
}

static void test_frame_over_max_size_dropped_by_zeromq(void **state)
{
    s_fix_t *fx = *state;
    fx->raw = zsock_new_dealer(fx->ep);
    assert_non_null(fx->raw);
    size_t big = DS_MAX_MSG_SIZE + DS_TRANSPORT_MSG_MARGIN + 1;
    zframe_t *env = zframe_new(NULL, 16);
    zframe_t *body = zframe_new(NULL, big);
    assert_non_null(body);
    memset(zframe_data(body), 0xa5, big);
    assert_int_equal(zframe_send(&env, fx->raw, ZFRAME_MORE), 0);
    assert_int_equal(zframe_send(&body, fx->raw, 0), 0);

    zsock_set_rcvtimeo(fx->router, 500);
    ds_msg_t *msg = NULL;
    ds_codec_err_t cerr;
    assert_int_equal(ds_transport_recv(fx->router, true, NULL, &msg, &cerr), DS_ETIMEOUT);
    assert_null(msg);

    /* Control: a frame exactly at the limit does arrive (and is refused
       by the decoder, not by ZeroMQ). */
    fx->dealer = zsock_new_dealer(fx->ep);
    assert_non_null(fx->dealer);
    env = zframe_new(NULL, 16);
    body = zframe_new(NULL, big - 1);
    assert_non_null(body);
    memset(zframe_data(body), 0xa5, big - 1);
    assert_int_equal(zframe_send(&env, fx->dealer, ZFRAME_MORE), 0);
    assert_int_equal(zframe_send(&body, fx->dealer, 0), 0);
    zsock_set_rcvtimeo(fx->router, 3000);
    int rc = ds_transport_recv(fx->router, true, NULL, &msg, &cerr);
    assert_true(rc < 0 && rc != DS_ETIMEOUT);
    assert_null(msg);
}

static void test_send_to_absent_peer_is_dropped_not_queued(void **state)
{
    s_fix_t *fx = *state;
    char err[256], ep[64];
    /* A port held by a socket that never listens: every connection to it
       is refused for as long as the test runs. */
    uint16_t port = 0;
    fx->held_port = ds_test_refusing_port(&port);
    assert_true(fx->held_port >= 0);
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", (unsigned)port);
    int rc = ds_transport_peer_connect(ep, "1", NULL, &fx->dealer, err, sizeof err);
    assert_int_equal(rc, 0);
    ds_envelope_t env = s_env(DS_MSG_KV_GET, 1);
    ds_kv_get_t get = {"k", false};
    ds_codec_err_t cerr;
    /* Given time to try, the dealer still has no peer: the message is
       dropped with DS_ELIMIT rather than queued for a peer that may never
       come. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ds_transport_send(fx->dealer, NULL, &env, &get, &cerr), DS_ELIMIT);
        assert_non_null(strstr(cerr.text, "no connected peer"));
        zclock_sleep(DS_TRANSPORT_RECONNECT_MS);
    }
}

static void test_bind_and_connect_refuse_bad_input(void **state)
{
    s_fix_t *fx = *state;
    char err[256] = "";
    zsock_t *sock = NULL;
    assert_int_equal(ds_transport_router_bind("nonsense", NULL, &sock, err, sizeof err), DS_EINVAL);
    assert_null(sock);
    assert_non_null(strstr(err, "nonsense"));
    assert_int_equal(ds_transport_router_bind(fx->ep, NULL, &sock, err, sizeof err), DS_EIO);
    assert_null(sock);
    assert_int_equal(ds_transport_peer_connect(fx->ep, "", NULL, &sock, err, sizeof err),
                     DS_EINVAL);
    int dummy = 0;
    const ds_transport_security_t *keys = (const ds_transport_security_t *)&dummy;
    assert_int_equal(ds_transport_peer_connect(fx->ep, "1", keys, &sock, err, sizeof err),
                     DS_EINVAL);
    assert_null(sock);
}

static void test_rpc_call_times_out_without_reply(void **state)
{
    s_fix_t *fx = *state;
    ds_envelope_t env = s_env(DS_MSG_KV_GET, 5);
    ds_kv_get_t get = {"k", false};
    ds_msg_t *reply = NULL;
    ds_codec_err_t cerr;
    int64_t t0 = zclock_mono();
    assert_int_equal(ds_rpc_call(fx->ep, NULL, &env, &get, 200, &reply, &cerr), DS_ETIMEOUT);
    int64_t took = zclock_mono() - t0;
    assert_null(reply);
    assert_true(took >= 190 && took < 1500);
    assert_non_null(strstr(cerr.text, fx->ep));
}

static void test_rpc_call_refuses_bad_endpoint(void **state)
{
    (void)state;
    ds_envelope_t env = s_env(DS_MSG_KV_GET, 5);
    ds_kv_get_t get = {"k", false};
    ds_msg_t *reply = NULL;
    ds_codec_err_t cerr;
    assert_int_equal(ds_rpc_call("nowhere", NULL, &env, &get, 100, &reply, &cerr), DS_EINVAL);
    assert_null(reply);
}

/*  Server thread: answers one request first with a reply for another
    corr_id, then (if asked) with the right one. */
static void *s_server(void *arg)
{
    s_fix_t *fx = arg;
    zframe_t *from = NULL;
    ds_msg_t *req = NULL;
    if (ds_transport_recv(fx->router, true, &from, &req, NULL) == 0) {
        ds_envelope_t env = s_env(DS_MSG_KV_REPLY, req->env.corr_id + 1);
        ds_kv_reply_t wrong = {"k", true, {(uint8_t *)"stale", 5}, 1, 1, 1};
        (void)ds_transport_send(fx->router, from, &env, &wrong, NULL);
        env.corr_id = req->env.corr_id;
        ds_kv_reply_t right = {"k", true, {(uint8_t *)"fresh", 5}, 2, 1, 2};
        if (fx->send_matching)
            (void)ds_transport_send(fx->router, from, &env, &right, NULL);
    }
    ds_msg_destroy(&req);
    zframe_destroy(&from);
    return NULL;
}

static void s_start_server(s_fix_t *fx, bool send_matching)
{
    fx->send_matching = send_matching;
    assert_int_equal(pthread_create(&fx->thread, NULL, s_server, fx), 0);
    fx->thread_started = true;
}

static void test_rpc_call_ignores_reply_with_other_corr_id(void **state)
{
    s_fix_t *fx = *state;
    s_start_server(fx, true);
    ds_envelope_t env = s_env(DS_MSG_KV_GET, 77);
    ds_kv_get_t get = {"k", false};
    ds_msg_t *reply = NULL;
    ds_codec_err_t cerr;
    assert_int_equal(ds_rpc_call(fx->ep, NULL, &env, &get, 2000, &reply, &cerr), 0);
    ds_kv_reply_t *kv = reply->body;
    assert_int_equal(reply->env.corr_id, 77);
    assert_memory_equal(kv->value.data, "fresh", 5);
    ds_msg_destroy(&reply);
}

static void test_rpc_call_times_out_when_only_mismatched_replies(void **state)
{
    s_fix_t *fx = *state;
    s_start_server(fx, false);
    ds_envelope_t env = s_env(DS_MSG_KV_GET, 78);
    ds_kv_get_t get = {"k", false};
    ds_msg_t *reply = NULL;
    ds_codec_err_t cerr;
    assert_int_equal(ds_rpc_call(fx->ep, NULL, &env, &get, 300, &reply, &cerr), DS_ETIMEOUT);
    assert_null(reply);
}

#define S_TEST(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int main(void)
{
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        S_TEST(test_router_dealer_round_trip),
        S_TEST(test_malformed_multiparts_refused),
        S_TEST(test_frame_over_max_size_dropped_by_zeromq),
        S_TEST(test_send_to_absent_peer_is_dropped_not_queued),
        S_TEST(test_bind_and_connect_refuse_bad_input),
        S_TEST(test_rpc_call_times_out_without_reply),
        S_TEST(test_rpc_call_refuses_bad_endpoint),
        S_TEST(test_rpc_call_ignores_reply_with_other_corr_id),
        S_TEST(test_rpc_call_times_out_when_only_mismatched_replies),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return failed;
}
