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

    Security: every function that makes a socket takes a
    `const ds_transport_security_t *`; NULL means plain, unauthenticated
    ZeroMQ (DESIGN.md: "All ZeroMQ sockets can use CURVE"). CURVE is not
    implemented yet; ds_transport_secure() is the one place it will go.

    Ownership: sockets returned here belong to the caller (zsock_destroy).
    Routing frames passed in are borrowed; routing frames and messages
    handed out belong to the caller (zframe_destroy, ds_msg_destroy).
    Nothing here keeps a pointer to anything it was given.

    This module is I/O (library ds_io): it may block, and it owns no
    threads. A socket must be used by one thread at a time (ZeroMQ rule).
*/
#ifndef DS_PROTOCOL_TRANSPORT_H
#define DS_PROTOCOL_TRANSPORT_H

#include "protocol/codec.h"
#include "protocol/msg.h"

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#define DS_TRANSPORT_MSG_MARGIN       4096 /* bytes over DS_MAX_MSG_SIZE a frame may have */
#define DS_TRANSPORT_HWM              10000
#define DS_TRANSPORT_RECONNECT_MS     50  /* first reconnect attempt to a peer */
#define DS_TRANSPORT_RECONNECT_MAX_MS 100 /* reconnect backoff cap */

/*  Keys for CURVE, later. Opaque and not constructible yet: callers pass
    NULL. */
typedef struct ds_transport_security ds_transport_security_t;

/*  Applies `sec` to `sock` before it binds (`server` true) or connects.
    NULL is plain ZeroMQ and returns 0. Any non-NULL value returns
    DS_EINVAL until CURVE is implemented, so a caller asking for security
    never silently gets none. */
int ds_transport_secure(zsock_t *sock, const ds_transport_security_t *sec, bool server);

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
    endpoint, security refused) / DS_EIO (bind failed: address in use...)
    with a sentence in `err` saying what to do; *out stays NULL. */
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
    DS_EIO the socket or context failed (ETERM, EINTR). */
int ds_transport_recv(zsock_t *sock, bool router, zframe_t **routing_id_out, ds_msg_t **msg_out,
                      ds_codec_err_t *err);

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
