/*  tests/unit/test_security.c - CURVE on real sockets: the ZAP handler
    (protocol/zap.h), the security objects and the per-message role check
    of the transport (protocol/transport.h), over tcp://127.0.0.1 with
    ports the OS picks. Every socket, thread and handler lives in the
    fixture, so teardown frees them even when an assertion fails. */
#include "protocol/error.h"
#include "protocol/keys.h"
#include "protocol/msg.h"
#include "protocol/transport.h"
#include "protocol/zap.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_WAIT_MS 5000 /* bound of every wait for something that must happen */

enum { S_ADMIN, S_VIEWER, S_WORKER, S_PEER, S_STRANGER, S_KEYS };

typedef struct {
    ds_keyring_t *ring;
    ds_zap_t *zap;
    zcert_t *server_cert;
    zcert_t *certs[S_KEYS];
    ds_transport_security_t *rpc_sec;  /* server, rpc domain */
    ds_transport_security_t *peer_sec; /* server, peer domain */
    ds_transport_security_t *client[S_KEYS];
    zsock_t *rpc;
    zsock_t *peer;
    zsock_t *dealers[4];
    zsock_t *monitor;
    char rpc_ep[256];
    char peer_ep[256];
    pthread_t thread;
    bool thread_started;
} s_fix_t;

static void s_endpoint(zsock_t *sock, char *out, size_t len)
{
    char *ep = zsock_last_endpoint(sock);
    snprintf(out, len, "%s", ep ? ep : "");
    free(ep);
}

static int s_setup(void **state)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    *state = fx;
    char err[512];
    static const char *const names[] = {"alice", "bob", "w1", "coord-1", "mallory"};
    static const ds_role_t roles[] = {DS_ROLE_ADMIN, DS_ROLE_VIEWER, DS_ROLE_WORKER, DS_ROLE_PEER,
                                      DS_ROLE_NONE};
    fx->ring = ds_keyring_new();
    fx->server_cert = zcert_new();
    if (!fx->ring || !fx->server_cert)
        return -1;
    const char *server_key = zcert_public_txt(fx->server_cert);
    for (int i = 0; i < S_KEYS; i++) {
        if (!(fx->certs[i] = zcert_new()))
            return -1;
        if (roles[i] != DS_ROLE_NONE && ds_keyring_add(fx->ring, zcert_public_txt(fx->certs[i]),
                                                       roles[i], names[i], err, sizeof err) != 0)
            return -1;
        if (ds_transport_security_new_client(fx->certs[i], server_key, &fx->client[i], err,
                                             sizeof err) != 0)
            return -1;
    }
    if (ds_zap_new(fx->ring, &fx->zap, err, sizeof err) != 0) {
        fprintf(stderr, "zap: %s\n", err);
        return -1;
    }
    if (ds_transport_security_new_server(fx->server_cert, fx->ring, DS_DOMAIN_RPC, &fx->rpc_sec,
                                         err, sizeof err) != 0 ||
        ds_transport_security_new_server(fx->server_cert, fx->ring, DS_DOMAIN_PEER, &fx->peer_sec,
                                         err, sizeof err) != 0)
        return -1;
    if (ds_transport_router_bind("tcp://127.0.0.1:*", fx->rpc_sec, &fx->rpc, err, sizeof err) !=
            0 ||
        ds_transport_router_bind("tcp://127.0.0.1:*", fx->peer_sec, &fx->peer, err, sizeof err) !=
            0) {
        fprintf(stderr, "bind: %s\n", err);
        return -1;
    }
    s_endpoint(fx->rpc, fx->rpc_ep, sizeof fx->rpc_ep);
    s_endpoint(fx->peer, fx->peer_ep, sizeof fx->peer_ep);
    zsock_set_rcvtimeo(fx->rpc, S_WAIT_MS);
    zsock_set_rcvtimeo(fx->peer, S_WAIT_MS);
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    if (!fx)
        return 0;
    if (fx->thread_started)
        pthread_join(fx->thread, NULL);
    for (size_t i = 0; i < sizeof fx->dealers / sizeof fx->dealers[0]; i++)
        zsock_destroy(&fx->dealers[i]);
    zsock_destroy(&fx->monitor);
    zsock_destroy(&fx->rpc);
    zsock_destroy(&fx->peer);
    ds_zap_destroy(&fx->zap);
    ds_transport_security_destroy(&fx->rpc_sec);
    ds_transport_security_destroy(&fx->peer_sec);
    for (int i = 0; i < S_KEYS; i++) {
        ds_transport_security_destroy(&fx->client[i]);
        zcert_destroy(&fx->certs[i]);
    }
    zcert_destroy(&fx->server_cert);
    ds_keyring_destroy(&fx->ring);
    free(fx);
    return 0;
}

/* ---- helpers ------------------------------------------------------- */

/*  Connects dealer slot `slot` to `ep` presenting `sec` (NULL: plain). */
static zsock_t *s_connect(s_fix_t *fx, int slot, const char *ep, const ds_transport_security_t *sec)
{
    char err[512], id[16];
    snprintf(id, sizeof id, "d%d", slot);
    zsock_destroy(&fx->dealers[slot]);
    assert_int_equal(ds_transport_peer_connect(ep, id, sec, &fx->dealers[slot], err, sizeof err),
                     0);
    return fx->dealers[slot];
}

static ds_envelope_t s_env(uint16_t type, uint64_t corr_id)
{
    ds_envelope_t env = {DS_PROTOCOL_VERSION, type, corr_id, "tester"};
    return env;
}

static ds_kv_get_t s_status_body = {"k", true}; /* a VIEW message */
static ds_deploy_req_t s_deploy_body = {.service = "web"};
static ds_heartbeat_t s_heartbeat_body = {.name = "w1"};
static ds_join_req_t s_join_body = {.name = "w9", .worker_id = "id-9", .token = "t0ken"};
static ds_raft_msg_t s_vote_body = {.type = DS_RAFT_VOTE, .from = 1, .to = 2, .term = 3};

static const void *s_body(uint16_t type)
{
    switch (type) {
    case DS_MSG_KV_GET:
        return &s_status_body;
    case DS_MSG_DEPLOY:
        return &s_deploy_body;
    case DS_MSG_HEARTBEAT:
        return &s_heartbeat_body;
    case DS_MSG_JOIN:
        return &s_join_body;
    case DS_RAFT_VOTE:
        return &s_vote_body;
    }
    fail_msg("no body for type %u", type);
    return NULL;
}

/*  Sends once the CURVE handshake is done (ZMQ_IMMEDIATE refuses sends
    until then). Returns 0, or DS_ELIMIT when it never connected. */
static int s_send(zsock_t *sock, uint16_t type, uint64_t corr_id)
{
    ds_envelope_t env = s_env(type, corr_id);
    int rc = DS_ELIMIT;
    for (int i = 0; i < S_WAIT_MS / 10 && rc == DS_ELIMIT; i++) {
        rc = ds_transport_send(sock, NULL, &env, s_body(type), NULL);
        if (rc == DS_ELIMIT)
            zclock_sleep(10);
    }
    return rc;
}

/*  Receives one message on a server socket with its role check. */
static int s_recv(zsock_t *server, const ds_transport_security_t *sec, ds_transport_sender_t *from)
{
    ds_msg_t *msg = NULL;
    zframe_t *rid = NULL;
    ds_codec_err_t cerr = {0, ""};
    int rc = ds_transport_recv_as(server, sec, true, &rid, &msg, from, &cerr);
    if (rc == 0) {
        assert_non_null(msg);
        assert_int_equal(msg->env.type, from->type);
        assert_int_equal(msg->env.corr_id, from->corr_id);
    } else {
        assert_null(msg);
        assert_true(cerr.text[0] != '\0');
    }
    ds_msg_destroy(&msg);
    zframe_destroy(&rid);
    return rc;
}

/*  Sends `type` from `sock` and returns what the server made of it. */
static int s_exchange(zsock_t *sock, zsock_t *server, const ds_transport_security_t *sec,
                      uint16_t type, uint64_t corr_id, ds_transport_sender_t *from)
{
    assert_int_equal(s_send(sock, type, corr_id), 0);
    return s_recv(server, sec, from);
}

/*  Waits until the ZAP handler has refused more than `before`
    connections; returns whether it did within S_WAIT_MS. */
static bool s_wait_refused(s_fix_t *fx, uint64_t before)
{
    for (int i = 0; i < S_WAIT_MS / 10; i++) {
        uint64_t refused = 0;
        ds_zap_counts(fx->zap, NULL, &refused);
        if (refused > before)
            return true;
        zclock_sleep(10);
    }
    return false;
}

static uint64_t s_refused(s_fix_t *fx)
{
    uint64_t refused = 0;
    ds_zap_counts(fx->zap, NULL, &refused);
    return refused;
}

/*  Proves a connection was refused: ZAP refused it and no send from it
    ever got through (ZMQ_IMMEDIATE: no pipe without a handshake). */
static void s_assert_refused(s_fix_t *fx, zsock_t *sock, uint64_t refused_before)
{
    assert_true(s_wait_refused(fx, refused_before));
    ds_envelope_t env = s_env(DS_MSG_KV_GET, 1);
    assert_int_equal(ds_transport_send(sock, NULL, &env, &s_status_body, NULL), DS_ELIMIT);
}

/* ---- tests ---------------------------------------------------------- */

static void test_curve_is_available(void **state)
{
    (void)state;
    char err[512] = "";
    assert_int_equal(ds_transport_curve_check(err, sizeof err), 0);
}

static void test_admin_key_may_deploy_and_view(void **state)
{
    s_fix_t *fx = *state;
    zsock_t *admin = s_connect(fx, 0, fx->rpc_ep, fx->client[S_ADMIN]);
    ds_transport_sender_t from;
    assert_int_equal(s_exchange(admin, fx->rpc, fx->rpc_sec, DS_MSG_DEPLOY, 11, &from), 0);
    assert_int_equal(from.role, DS_ROLE_ADMIN);
    assert_string_equal(from.name, "alice");
    assert_string_equal(from.key, zcert_public_txt(fx->certs[S_ADMIN]));
    assert_int_equal(s_exchange(admin, fx->rpc, fx->rpc_sec, DS_MSG_KV_GET, 12, &from), 0);
    assert_int_equal(from.role, DS_ROLE_ADMIN);
}

static void test_viewer_key_deploy_forbidden(void **state)
{
    s_fix_t *fx = *state;
    zsock_t *viewer = s_connect(fx, 0, fx->rpc_ep, fx->client[S_VIEWER]);
    ds_transport_sender_t from;
    assert_int_equal(s_exchange(viewer, fx->rpc, fx->rpc_sec, DS_MSG_DEPLOY, 21, &from),
                     DS_EFORBIDDEN);
    /* Enough is known to answer the caller with an error reply. */
    assert_true(from.have_env);
    assert_int_equal(from.corr_id, 21);
    assert_int_equal(from.type, DS_MSG_DEPLOY);
    assert_int_equal(from.role, DS_ROLE_VIEWER);
    assert_string_equal(from.name, "bob");
    /* The connection stays usable for what the role may do. */
    assert_int_equal(s_exchange(viewer, fx->rpc, fx->rpc_sec, DS_MSG_KV_GET, 22, &from), 0);
    assert_int_equal(from.role, DS_ROLE_VIEWER);
}

static void test_worker_key_admin_message_forbidden(void **state)
{
    s_fix_t *fx = *state;
    zsock_t *worker = s_connect(fx, 0, fx->rpc_ep, fx->client[S_WORKER]);
    ds_transport_sender_t from;
    assert_int_equal(s_exchange(worker, fx->rpc, fx->rpc_sec, DS_MSG_DEPLOY, 31, &from),
                     DS_EFORBIDDEN);
    assert_int_equal(from.role, DS_ROLE_WORKER);
    assert_int_equal(s_exchange(worker, fx->rpc, fx->rpc_sec, DS_MSG_KV_GET, 32, &from),
                     DS_EFORBIDDEN);
    assert_int_equal(s_exchange(worker, fx->rpc, fx->rpc_sec, DS_MSG_HEARTBEAT, 33, &from), 0);
    assert_int_equal(from.role, DS_ROLE_WORKER);
    assert_string_equal(from.name, "w1");
}

static void test_admin_key_worker_message_forbidden(void **state)
{
    s_fix_t *fx = *state;
    zsock_t *admin = s_connect(fx, 0, fx->rpc_ep, fx->client[S_ADMIN]);
    ds_transport_sender_t from;
    assert_int_equal(s_exchange(admin, fx->rpc, fx->rpc_sec, DS_MSG_HEARTBEAT, 41, &from),
                     DS_EFORBIDDEN);
    assert_int_equal(s_exchange(admin, fx->rpc, fx->rpc_sec, DS_MSG_JOIN, 42, &from),
                     DS_EFORBIDDEN);
    assert_int_equal(from.corr_id, 42);
}

static void test_unknown_key_refused(void **state)
{
    s_fix_t *fx = *state;
    uint64_t before = s_refused(fx);
    zsock_t *stranger = s_connect(fx, 0, fx->rpc_ep, fx->client[S_STRANGER]);
    s_assert_refused(fx, stranger, before);
}

static void test_unknown_key_may_only_join(void **state)
{
    s_fix_t *fx = *state;
    ds_keyring_set_joins(fx->ring, true);
    zsock_t *newcomer = s_connect(fx, 0, fx->rpc_ep, fx->client[S_STRANGER]);
    ds_transport_sender_t from;
    assert_int_equal(s_exchange(newcomer, fx->rpc, fx->rpc_sec, DS_MSG_JOIN, 51, &from), 0);
    assert_int_equal(from.role, DS_ROLE_PENDING);
    assert_string_equal(from.name, "");
    assert_string_equal(from.key, zcert_public_txt(fx->certs[S_STRANGER]));
    s_join_body.token = ""; /* a JOIN without a token: refused as well */
    int rc = s_exchange(newcomer, fx->rpc, fx->rpc_sec, DS_MSG_JOIN, 56, &from);
    s_join_body.token = "t0ken";
    assert_int_equal(rc, DS_EFORBIDDEN);
    assert_int_equal(from.corr_id, 56);
    assert_int_equal(s_exchange(newcomer, fx->rpc, fx->rpc_sec, DS_MSG_HEARTBEAT, 52, &from),
                     DS_EFORBIDDEN);
    assert_int_equal(s_exchange(newcomer, fx->rpc, fx->rpc_sec, DS_MSG_DEPLOY, 53, &from),
                     DS_EFORBIDDEN);
    assert_int_equal(s_exchange(newcomer, fx->rpc, fx->rpc_sec, DS_MSG_KV_GET, 54, &from),
                     DS_EFORBIDDEN);
    assert_int_equal(from.role, DS_ROLE_PENDING);

    /* The coordinator pins the key: the same connection is a worker now. */
    assert_int_equal(ds_keyring_add(fx->ring, from.key, DS_ROLE_WORKER, "w9", NULL, 0), 0);
    assert_int_equal(s_exchange(newcomer, fx->rpc, fx->rpc_sec, DS_MSG_HEARTBEAT, 55, &from), 0);
    assert_int_equal(from.role, DS_ROLE_WORKER);
    assert_string_equal(from.name, "w9");

    /* Joins never open the peer endpoint to unknown keys. */
    uint64_t before = s_refused(fx);
    zcert_t *other = zcert_new();
    ds_transport_security_t *sec = NULL;
    assert_int_equal(
        ds_transport_security_new_client(other, zcert_public_txt(fx->server_cert), &sec, NULL, 0),
        0);
    zcert_destroy(&other);
    zsock_t *sock = s_connect(fx, 1, fx->peer_ep, sec);
    ds_transport_security_destroy(&sec); /* the socket keeps its own copy */
    s_assert_refused(fx, sock, before);
}

static void test_plain_client_cannot_connect(void **state)
{
    s_fix_t *fx = *state;
    /* Watch the server's handshakes: a plain client fails there. */
    assert_int_equal(zmq_socket_monitor(zsock_resolve(fx->rpc), "inproc://sec-mon",
                                        ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                            ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                            ZMQ_EVENT_HANDSHAKE_SUCCEEDED),
                     0);
    fx->monitor = zsock_new_pair(">inproc://sec-mon");
    assert_non_null(fx->monitor);
    zsock_set_rcvtimeo(fx->monitor, S_WAIT_MS);
    zsock_t *plain = s_connect(fx, 0, fx->rpc_ep, NULL);
    zmsg_t *event = zmsg_recv(fx->monitor);
    assert_non_null(event);
    zframe_t *head = zmsg_first(event);
    assert_true(zframe_size(head) >= 2);
    uint16_t id;
    memcpy(&id, zframe_data(head), sizeof id);
    zmsg_destroy(&event);
    assert_true(id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
                id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL);
    ds_envelope_t env = s_env(DS_MSG_KV_GET, 1);
    assert_int_equal(ds_transport_send(plain, NULL, &env, &s_status_body, NULL), DS_ELIMIT);

    /* A plain DEALER that queues regardless: nothing reaches the server. */
    fx->dealers[1] = zsock_new_dealer(fx->rpc_ep);
    assert_non_null(fx->dealers[1]);
    assert_int_equal(ds_transport_send(fx->dealers[1], NULL, &env, &s_status_body, NULL), 0);
    zsock_set_rcvtimeo(fx->rpc, 300);
    ds_transport_sender_t from;
    assert_int_equal(s_recv(fx->rpc, fx->rpc_sec, &from), DS_ETIMEOUT);
    zmq_socket_monitor(zsock_resolve(fx->rpc), NULL, 0);
}

static void test_revoked_key_refused_on_next_message(void **state)
{
    s_fix_t *fx = *state;
    ds_keyring_set_joins(fx->ring, true); /* revoked is not pending either */
    zsock_t *worker = s_connect(fx, 0, fx->rpc_ep, fx->client[S_WORKER]);
    ds_transport_sender_t from;
    assert_int_equal(s_exchange(worker, fx->rpc, fx->rpc_sec, DS_MSG_HEARTBEAT, 61, &from), 0);
    assert_int_equal(ds_keyring_remove(fx->ring, zcert_public_txt(fx->certs[S_WORKER])), 0);
    /* Same connection, very next message: refused. */
    assert_int_equal(s_exchange(worker, fx->rpc, fx->rpc_sec, DS_MSG_HEARTBEAT, 62, &from),
                     DS_EFORBIDDEN);
    assert_int_equal(from.role, DS_ROLE_NONE);
    assert_int_equal(from.corr_id, 62);
    assert_int_equal(s_exchange(worker, fx->rpc, fx->rpc_sec, DS_MSG_JOIN, 63, &from),
                     DS_EFORBIDDEN);
    /* And a new connection with it is refused by ZAP. */
    uint64_t before = s_refused(fx);
    zsock_t *again = s_connect(fx, 1, fx->rpc_ep, fx->client[S_WORKER]);
    s_assert_refused(fx, again, before);
}

static void test_peer_key_refused_on_rpc_domain(void **state)
{
    s_fix_t *fx = *state;
    uint64_t before = s_refused(fx);
    zsock_t *sock = s_connect(fx, 0, fx->rpc_ep, fx->client[S_PEER]);
    s_assert_refused(fx, sock, before);
}

static void test_admin_key_refused_on_peer_domain(void **state)
{
    s_fix_t *fx = *state;
    uint64_t before = s_refused(fx);
    zsock_t *sock = s_connect(fx, 0, fx->peer_ep, fx->client[S_ADMIN]);
    s_assert_refused(fx, sock, before);
    before = s_refused(fx);
    sock = s_connect(fx, 1, fx->peer_ep, fx->client[S_WORKER]);
    s_assert_refused(fx, sock, before);
}

static void test_peer_key_on_peer_domain_sends_raft_only(void **state)
{
    s_fix_t *fx = *state;
    zsock_t *peer = s_connect(fx, 0, fx->peer_ep, fx->client[S_PEER]);
    ds_transport_sender_t from;
    assert_int_equal(s_exchange(peer, fx->peer, fx->peer_sec, DS_RAFT_VOTE, 0, &from), 0);
    assert_int_equal(from.role, DS_ROLE_PEER);
    assert_string_equal(from.name, "coord-1");
    assert_int_equal(s_exchange(peer, fx->peer, fx->peer_sec, DS_MSG_DEPLOY, 71, &from),
                     DS_EFORBIDDEN);
}

static void test_curve_bind_without_zap_handler_fails(void **state)
{
    s_fix_t *fx = *state;
    char err[512] = "";
    zsock_t *sock = NULL;
    /* A registry no handler serves. */
    ds_keyring_t *other = ds_keyring_new();
    assert_non_null(other);
    ds_transport_security_t *sec = NULL;
    assert_int_equal(ds_transport_security_new_server(fx->server_cert, other, DS_DOMAIN_RPC, &sec,
                                                      err, sizeof err),
                     0);
    int rc = ds_transport_router_bind("tcp://127.0.0.1:*", sec, &sock, err, sizeof err);
    ds_transport_security_destroy(&sec);
    ds_keyring_destroy(&other);
    assert_int_equal(rc, DS_ESTATE);
    assert_null(sock);
    assert_non_null(strstr(err, "ZAP"));

    /* No handler at all. */
    ds_zap_destroy(&fx->zap);
    assert_null(ds_zap_running());
    rc = ds_transport_router_bind("tcp://127.0.0.1:*", fx->rpc_sec, &sock, err, sizeof err);
    assert_int_equal(rc, DS_ESTATE);
    assert_null(sock);
}

static void test_messages_refused_after_zap_handler_stops(void **state)
{
    s_fix_t *fx = *state;
    ds_zap_destroy(&fx->zap);
    /* The socket bound while the handler ran. Without it, libzmq either
       refuses the connection (ZAP enforcement) or admits it with no
       User-Id; either way nothing is accepted. */
    fx->dealers[0] = zsock_new(ZMQ_DEALER);
    assert_non_null(fx->dealers[0]);
    ds_transport_setup(fx->dealers[0]);
    assert_int_equal(ds_transport_secure(fx->dealers[0], fx->client[S_STRANGER], false, NULL, 0),
                     0);
    assert_int_equal(zsock_connect(fx->dealers[0], "%s", fx->rpc_ep), 0);
    ds_envelope_t env = s_env(DS_MSG_KV_GET, 81);
    assert_int_equal(ds_transport_send(fx->dealers[0], NULL, &env, &s_status_body, NULL), 0);
    zsock_set_rcvtimeo(fx->rpc, 1000);
    ds_transport_sender_t from;
    int rc = s_recv(fx->rpc, fx->rpc_sec, &from);
    assert_true(rc == DS_ETIMEOUT || rc == DS_EFORBIDDEN);
}

/*  The libzmq trap itself: a CURVE server with no ZAP handler (and no
    enforcement) admits any key. Its messages carry no User-Id, and
    recv_as refuses them. */
static void test_message_without_user_id_refused(void **state)
{
    s_fix_t *fx = *state;
    ds_zap_destroy(&fx->zap);
    zsock_t *raw = zsock_new(ZMQ_ROUTER);
    assert_non_null(raw);
    zsock_destroy(&fx->rpc);
    fx->rpc = raw; /* the fixture frees it */
    zsock_set_linger(raw, 0);
    zsock_set_curve_server(raw, 1);
    zsock_set_curve_secretkey_bin(raw, zcert_secret_key(fx->server_cert));
    zsock_set_zap_domain(raw, "gossamer.rpc");
    assert_true(zsock_bind(raw, "tcp://127.0.0.1:*") > 0);
    char ep[256];
    s_endpoint(raw, ep, sizeof ep);
    zsock_t *stranger = s_connect(fx, 0, ep, fx->client[S_STRANGER]);
    assert_int_equal(s_send(stranger, DS_MSG_KV_GET, 85), 0); /* admitted by libzmq */
    zsock_set_rcvtimeo(raw, S_WAIT_MS);
    ds_msg_t *msg = NULL;
    ds_codec_err_t cerr = {0, ""};
    ds_transport_sender_t from;
    assert_int_equal(ds_transport_recv_as(raw, fx->rpc_sec, true, NULL, &msg, &from, &cerr),
                     DS_EFORBIDDEN);
    assert_null(msg);
    assert_non_null(strstr(cerr.text, "without an authenticated key"));
    assert_int_equal(from.corr_id, 85);
}

static void test_plain_recv_refuses_curve_message(void **state)
{
    s_fix_t *fx = *state;
    zsock_t *admin = s_connect(fx, 0, fx->rpc_ep, fx->client[S_ADMIN]);
    assert_int_equal(s_send(admin, DS_MSG_KV_GET, 91), 0);
    ds_msg_t *msg = NULL;
    ds_codec_err_t cerr = {0, ""};
    assert_int_equal(ds_transport_recv(fx->rpc, true, NULL, &msg, &cerr), DS_EFORBIDDEN);
    assert_null(msg);
    assert_non_null(strstr(cerr.text, "ds_transport_recv_as"));
    /* recv_as with NULL security is the same plain read: refused too. */
    assert_int_equal(s_send(admin, DS_MSG_KV_GET, 92), 0);
    ds_transport_sender_t from;
    assert_int_equal(s_recv(fx->rpc, NULL, &from), DS_EFORBIDDEN);
}

static void test_security_objects_refuse_misuse(void **state)
{
    s_fix_t *fx = *state;
    char err[512] = "";
    zsock_t *sock = NULL;
    /* Server security on a client socket, client security on a server. */
    assert_int_equal(
        ds_transport_peer_connect(fx->rpc_ep, "x", fx->rpc_sec, &sock, err, sizeof err), DS_EINVAL);
    assert_null(sock);
    assert_int_equal(
        ds_transport_router_bind("tcp://127.0.0.1:*", fx->client[S_ADMIN], &sock, err, sizeof err),
        DS_EINVAL);
    assert_null(sock);
    /* A public certificate (no secret key) cannot make a security object. */
    zcert_t *pub = zcert_new_from(zcert_public_key(fx->certs[S_ADMIN]), (const byte[32]){0});
    assert_non_null(pub);
    ds_transport_security_t *sec = NULL;
    int rc = ds_transport_security_new_client(pub, zcert_public_txt(fx->server_cert), &sec, err,
                                              sizeof err);
    zcert_destroy(&pub);
    assert_int_equal(rc, DS_EINVAL);
    assert_null(sec);
    assert_int_equal(
        ds_transport_security_new_client(fx->certs[S_ADMIN], "nope", &sec, err, sizeof err),
        DS_EINVAL);
    assert_int_equal(ds_transport_security_new_server(fx->certs[S_ADMIN], fx->ring, (ds_domain_t)9,
                                                      &sec, err, sizeof err),
                     DS_EINVAL);
    char key[DS_KEY_TEXT_LEN + 1];
    ds_transport_security_key(fx->client[S_ADMIN], key);
    assert_string_equal(key, zcert_public_txt(fx->certs[S_ADMIN]));
}

static void test_second_zap_handler_refused(void **state)
{
    s_fix_t *fx = *state;
    char err[512] = "";
    ds_zap_t *again = NULL;
    assert_int_equal(ds_zap_new(fx->ring, &again, err, sizeof err), DS_EEXIST);
    assert_null(again);
    assert_true(ds_zap_running() == fx->ring);
}

/*  Server thread for the rpc_call test: answers one request, checked. */
static void *s_server(void *arg)
{
    s_fix_t *fx = arg;
    zframe_t *from = NULL;
    ds_msg_t *req = NULL;
    ds_transport_sender_t who;
    if (ds_transport_recv_as(fx->rpc, fx->rpc_sec, true, &from, &req, &who, NULL) == 0) {
        ds_envelope_t env = s_env(DS_MSG_KV_REPLY, req->env.corr_id);
        ds_kv_reply_t reply = {"k", true, {(uint8_t *)who.name, strlen(who.name)}, 1, 1, 1};
        (void)ds_transport_send(fx->rpc, from, &env, &reply, NULL);
    }
    ds_msg_destroy(&req);
    zframe_destroy(&from);
    return NULL;
}

static void test_rpc_call_over_curve(void **state)
{
    s_fix_t *fx = *state;
    assert_int_equal(pthread_create(&fx->thread, NULL, s_server, fx), 0);
    fx->thread_started = true;
    ds_envelope_t env = s_env(DS_MSG_KV_GET, 101);
    ds_msg_t *reply = NULL;
    ds_codec_err_t cerr;
    assert_int_equal(ds_rpc_call(fx->rpc_ep, fx->client[S_VIEWER], &env, &s_status_body, S_WAIT_MS,
                                 &reply, &cerr),
                     0);
    ds_kv_reply_t *kv = reply->body;
    assert_int_equal(kv->value.len, 3);
    assert_memory_equal(kv->value.data, "bob", 3);
    ds_msg_destroy(&reply);
    pthread_join(fx->thread, NULL);
    fx->thread_started = false;

    /* A client that trusts another server key never completes the
       handshake: the call times out, nothing is sent in the clear. */
    zcert_t *impostor = zcert_new();
    ds_transport_security_t *sec = NULL;
    assert_int_equal(ds_transport_security_new_client(fx->certs[S_VIEWER],
                                                      zcert_public_txt(impostor), &sec, NULL, 0),
                     0);
    zcert_destroy(&impostor);
    int rc = ds_rpc_call(fx->rpc_ep, sec, &env, &s_status_body, 300, &reply, &cerr);
    ds_transport_security_destroy(&sec);
    assert_int_equal(rc, DS_ETIMEOUT);
    assert_null(reply);
}

#define S_TEST(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int main(void)
{
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        S_TEST(test_curve_is_available),
        S_TEST(test_admin_key_may_deploy_and_view),
        S_TEST(test_viewer_key_deploy_forbidden),
        S_TEST(test_worker_key_admin_message_forbidden),
        S_TEST(test_admin_key_worker_message_forbidden),
        S_TEST(test_unknown_key_refused),
        S_TEST(test_unknown_key_may_only_join),
        S_TEST(test_plain_client_cannot_connect),
        S_TEST(test_revoked_key_refused_on_next_message),
        S_TEST(test_peer_key_refused_on_rpc_domain),
        S_TEST(test_admin_key_refused_on_peer_domain),
        S_TEST(test_peer_key_on_peer_domain_sends_raft_only),
        S_TEST(test_curve_bind_without_zap_handler_fails),
        S_TEST(test_messages_refused_after_zap_handler_stops),
        S_TEST(test_message_without_user_id_refused),
        S_TEST(test_plain_recv_refuses_curve_message),
        S_TEST(test_security_objects_refuse_misuse),
        S_TEST(test_second_zap_handler_refused),
        S_TEST(test_rpc_call_over_curve),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    zsys_shutdown();
    return failed;
}
