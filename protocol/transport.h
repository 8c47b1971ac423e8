/*  protocol/transport.h - Gossamer messages over ZeroMQ (czmq sockets).

    On the wire one message is one ZeroMQ multipart:
        [routing id]   only between a ROUTER and its peer; ZeroMQ adds it
                       on receive and strips it on send
        [envelope]     msgpack, see protocol/msg.h
        [body]         msgpack, see protocol/msg.h
    A DEALER therefore sends and receives exactly 2 frames, a ROUTER
    exactly 3. A multipart with any other count is drained, refused and
    reported; it never reaches the decoder.

    Every socket made here gets the same limits (ds_transport_setup):
    ZMQ_MAXMSGSIZE of DS_MAX_MSG_SIZE plus DS_TRANSPORT_MSG_MARGIN per
    frame, so ZeroMQ itself drops an oversized frame (and the connection
    that sent it) before it is ever buffered whole; linger 0, so closing
    never blocks on a dead peer; and DS_TRANSPORT_HWM messages of queue
    each way.

    Security (docs/security.md): every function that makes a socket takes
    a `const ds_transport_security_t *`; NULL means plain, unauthenticated
    ZeroMQ (the daemons' --insecure mode). Otherwise the socket uses
    CurveZMQ: a server socket (ROUTER) with this process's key pair and
    a ZAP domain, whose connections the ZAP handler (protocol/zap.h)
    authenticates, and which refuses to be set up unless that handler
    runs; a client socket (DEALER) with its own key pair and the server's
    public key. A server receives with ds_transport_recv_as, which looks
    the sender's key up in the live registry on every message and checks
    its role against the message's family (protocol/keys.h);
    ds_transport_recv refuses any message that carries an authenticated
    key, so a CURVE socket can never be read without that check.

    Ownership: sockets returned here belong to the caller (zsock_destroy).
    Routing frames passed in are borrowed; routing frames and messages
    handed out belong to the caller (zframe_destroy, ds_msg_destroy).
    Nothing here keeps a pointer to anything it was given, except a
    server security object, which borrows its key registry.

    This module is I/O (library ds_io): it may block, and it owns no
    threads (the ZAP handler of protocol/zap.h is a thread of its own). A socket must be used by one
   thread at a time (ZeroMQ rule).
*/
#ifndef DS_PROTOCOL_TRANSPORT_H
#define DS_PROTOCOL_TRANSPORT_H

#include "protocol/codec.h"
#include "protocol/keys.h"
#include "protocol/limits.h"
#include "protocol/msg.h"

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#define DS_TRANSPORT_MSG_MARGIN       4096 /* bytes over DS_MAX_MSG_SIZE a frame may have */
#define DS_TRANSPORT_HWM              10000
#define DS_TRANSPORT_RECONNECT_MS     50  /* first reconnect attempt to a peer */
#define DS_TRANSPORT_RECONNECT_MAX_MS 100 /* reconnect backoff cap */

/*  What a socket presents and checks: a key pair, and either a registry
    and a domain (server) or the server's public key (client). Opaque;
    made by the constructors below and freed with
    ds_transport_security_destroy, after every socket that uses it. */
typedef struct ds_transport_security ds_transport_security_t;

/*  Returns 0 when this libzmq and czmq can do CURVE, else DS_EINVAL with
    `err` saying so (libzmq built without libsodium/tweetnacl) and what to
    do. Call it at startup before asking for keys; the constructors below
    call it too. */
int ds_transport_curve_check(char *err, size_t errlen);

/*  Security for a server socket of `domain` (DS_DOMAIN_PEER for the peer
    endpoint, DS_DOMAIN_RPC for rpc): the key pair of `cert` (copied: it
    needs its secret key; ds_keys_load_pair) and the registry `keyring`
    (borrowed: it must outlive the object, and it must be the registry
    of the running ZAP handler when a socket is set up). Returns 0 and
    sets *out, or DS_EINVAL (no CURVE, no secret key, bad domain) /
    DS_ENOMEM with `err` filled. */
int ds_transport_security_new_server(zcert_t *cert, ds_keyring_t *keyring, ds_domain_t domain,
                                     ds_transport_security_t **out, char *err, size_t errlen);

/*  Security for a client socket: the key pair of `cert` (copied) and the
    server's public key `server_key` (Z85 text; for a Gossamer cluster,
    the key in cluster.pub: ds_keys_load_public). Returns 0 and sets *out,
    or DS_EINVAL / DS_ENOMEM with `err` filled. */
int ds_transport_security_new_client(zcert_t *cert, const char *server_key,
                                     ds_transport_security_t **out, char *err, size_t errlen);

/*  Frees the object (wiping its secret key) and sets *self_p to NULL.
    Accepts NULL. */
void ds_transport_security_destroy(ds_transport_security_t **self_p);

/*  Writes the public key of `sec` (Z85) into `key`. */
void ds_transport_security_key(const ds_transport_security_t *sec, char key[DS_KEY_TEXT_LEN + 1]);

/*  Applies `sec` to `sock` before it binds (`server` true) or connects;
    every socket maker here calls it. NULL is plain ZeroMQ and returns 0.
    Returns DS_EINVAL for an object that is not a security object or is
    for the other side, DS_ESTATE for a server when no ZAP handler runs
    with sec's registry (a CURVE server without one would admit every
    key), DS_EIO when libzmq refuses the options; `err` (may be NULL)
    says what to do. */
int ds_transport_secure(zsock_t *sock, const ds_transport_security_t *sec, bool server, char *err,
                        size_t errlen);

/*  Applies the common limits described above to a fresh socket, before it
    binds or connects. */
void ds_transport_setup(zsock_t *sock);

/*  Makes a ROUTER bound to `endpoint` ("tcp://0.0.0.0:7001"; a port of
    "*" lets the OS pick one: read it back with zsock_last_endpoint). For
    a coordinator's peer and rpc endpoints. ROUTER_MANDATORY is off, so a
    reply to a peer that went away is dropped rather than failing;
    ROUTER_HANDOVER is on, so a peer that restarts with the same identity
    takes over its old connection instead of being refused.
    Returns 0 and sets *out (the caller destroys it), or DS_EINVAL (bad
    endpoint, security refused) / DS_ESTATE (CURVE asked for but no ZAP
    handler runs: start it first, protocol/zap.h) / DS_EIO (bind failed:
    address in use...) with a sentence in `err` saying what to do; *out
    stays NULL. */
int ds_transport_router_bind(const char *endpoint, const ds_transport_security_t *sec,
                             zsock_t **out, char *err, size_t errlen);

/*  Makes a DEALER connected to a peer coordinator's ROUTER at `endpoint`,
    with routing id `identity` (this member's id as text, 1..255 bytes) so
    the peer knows who sent each message. ZMQ_IMMEDIATE is on: while the
    peer is down, sends fail at once (ds_transport_send returns
    DS_ELIMIT) instead of queueing stale Raft traffic; ZeroMQ reconnects
    every DS_TRANSPORT_RECONNECT_MS..._MAX_MS in the background.
    Returns 0 and sets *out (the caller destroys it), or DS_EINVAL with
    `err` filled; *out stays NULL. */
int ds_transport_peer_connect(const char *endpoint, const char *identity,
                              const ds_transport_security_t *sec, zsock_t **out, char *err,
                              size_t errlen);

/*  Encodes `env` and `body` (a struct of the type env->type names) and
    sends them as one multipart, preceded by `routing_id` when `sock` is a
    ROUTER (NULL for a DEALER). Never blocks: when the message cannot be
    queued now (no connected peer with ZMQ_IMMEDIATE, or the HWM reached),
    it is dropped and DS_ELIMIT returned. `routing_id` is borrowed.
    Returns 0; an encoding error (DS_EUNKNOWN, DS_ETOOBIG, DS_EINVAL...)
    with `err` filled (err may be NULL), nothing sent; DS_ELIMIT; or
    DS_EIO for any other ZeroMQ failure. */
int ds_transport_send(zsock_t *sock, zframe_t *routing_id, const ds_envelope_t *env,
                      const void *body, ds_codec_err_t *err);

/*  Receives one whole multipart from `sock` and decodes it. Blocks until
    one arrives, unless the socket has a receive timeout (then
    DS_ETIMEOUT); call it when a poller says the socket is readable.
    `router` says whether the first frame is a routing id. On success sets
    *msg_out (caller frees with ds_msg_destroy).
    *routing_id_out (may be NULL for a DEALER) is set to the sender's
    routing frame whenever one was received, even when the rest is
    refused, so the caller can answer with an error; the caller destroys
    it if it is not NULL after the call, success or not.
    Errors (message dropped, *msg_out NULL, `err` filled, err may be NULL):
    DS_ETRUNCATED fewer frames than expected; DS_ETRAILING more frames;
    any ds_msg_decode() error for bad bytes; DS_ETIMEOUT nothing arrived;
    DS_EIO the socket or context failed (ETERM, EINTR); DS_EFORBIDDEN the
    message came through a CURVE server socket (it carries a User-Id):
    read those with ds_transport_recv_as, which checks the sender's role. */
int ds_transport_recv(zsock_t *sock, bool router, zframe_t **routing_id_out, ds_msg_t **msg_out,
                      ds_codec_err_t *err);

/*  Who sent a message received by ds_transport_recv_as. */
typedef struct {
    ds_role_t role;                /* DS_ROLE_INSECURE on a plain socket */
    char name[DS_MAX_NAME + 1];    /* the key's name; "" when pending or plain */
    char key[DS_KEY_TEXT_LEN + 1]; /* the sender's public key (Z85); "" when plain */
    bool have_env;                 /* the envelope decoded: type and corr_id are valid, */
    uint16_t type;                 /*   even when the message was refused, so the */
    uint64_t corr_id;              /*   caller can answer with an error reply */
} ds_transport_sender_t;

/*  ds_transport_recv for a server socket set up with `sec` (NULL: a plain
    socket; then the role is DS_ROLE_INSECURE and nothing is checked).
    Reads the sender's key from the message's "User-Id" property (set by
    the ZAP handler), resolves it in the live registry on this very
    message (ds_keyring_resolve: a key removed a moment ago is refused
    now) and checks the role against the envelope's type
    (ds_role_may_send) before the body is decoded; a JOIN from a pending
    key must carry a join token (the caller checks that it is valid).
    Fills *from (may be NULL) as far as it got, also on error.
    Errors, besides those of ds_transport_recv: DS_EFORBIDDEN, logged,
    when the message has no authenticated key, the key is unknown,
    revoked or not admitted on sec's domain, or its role may not send
    this type: the message is dropped and nothing else changes. */
int ds_transport_recv_as(zsock_t *sock, const ds_transport_security_t *sec, bool router,
                         zframe_t **routing_id_out, ds_msg_t **msg_out, ds_transport_sender_t *from,
                         ds_codec_err_t *err);

/*  ds_transport_recv_as without waiting: DS_ETIMEOUT at once when no
    message is queued. For draining a socket until it is empty without
    asking ZeroMQ for its events before every message. */
int ds_transport_try_recv_as(zsock_t *sock, const ds_transport_security_t *sec, bool router,
                             zframe_t **routing_id_out, ds_msg_t **msg_out,
                             ds_transport_sender_t *from, ds_codec_err_t *err);

/*  One request/reply exchange with the ROUTER at `endpoint`, through a
    fresh DEALER made for this call alone and destroyed before return, so a
    late reply to an earlier call can never arrive here. A reply whose
    corr_id differs from req_env->corr_id is discarded anyway, and waiting
    goes on. Waits at most `timeout_ms` (> 0) from the call.
    Returns 0 and sets *reply_out (caller frees with ds_msg_destroy; it
    may be a DS_MSG_ERROR or DS_MSG_NOT_LEADER reply: interpreting it is
    the caller's job), or: DS_ETIMEOUT no matching reply in time;
    DS_EINVAL bad endpoint or security; an encoding error for the
    request; a decoding error for the reply (e.g. DS_EVERSION);
    DS_EIO/DS_ELIMIT for ZeroMQ failures. On error *reply_out is NULL and
    `err` (may be NULL) says what happened, naming the endpoint. */
int ds_rpc_call(const char *endpoint, const ds_transport_security_t *sec,
                const ds_envelope_t *req_env, const void *req_body, int timeout_ms,
                ds_msg_t **reply_out, ds_codec_err_t *err);

#endif
