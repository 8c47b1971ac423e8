/*  protocol/transport.c - Gossamer messages over ZeroMQ; see transport.h. */
#include "protocol/transport.h"

#include "protocol/error.h"
#include "protocol/limits.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define S_MAX_FRAMES 3 /* routing id, envelope, body */

static void s_text(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_text(char *buf, size_t len, const char *fmt, ...)
{
    if (!buf || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/*  Fills a codec error (err may be NULL) and returns `code`. */
static int s_fail(ds_codec_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(ds_codec_err_t *err, int code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof err->text, fmt, ap);
        va_end(ap);
    }
    return code;
}

int ds_transport_secure(zsock_t *sock, const ds_transport_security_t *sec, bool server)
{
    assert(sock);
    (void)server;
    return sec ? DS_EINVAL : 0;
}

void ds_transport_setup(zsock_t *sock)
{
    assert(sock);
    zsock_set_maxmsgsize(sock, (int)(DS_MAX_MSG_SIZE + DS_TRANSPORT_MSG_MARGIN));
    zsock_set_linger(sock, 0);
    zsock_set_sndhwm(sock, DS_TRANSPORT_HWM);
    zsock_set_rcvhwm(sock, DS_TRANSPORT_HWM);
}

/*  A fresh socket of `type` with the common limits and `sec` applied. */
static int s_socket(int type, const ds_transport_security_t *sec, bool server, zsock_t **out,
                    char *err, size_t errlen)
{
    zsock_t *sock = zsock_new(type);
    if (!sock) {
        s_text(err, errlen, "cannot create a ZeroMQ socket: %s", zmq_strerror(zmq_errno()));
        return DS_EIO;
    }
    ds_transport_setup(sock);
    if (ds_transport_secure(sock, sec, server) != 0) {
        zsock_destroy(&sock);
        s_text(err, errlen, "CURVE security is not implemented yet (pass no keys)");
        return DS_EINVAL;
    }
    *out = sock;
    return 0;
}

int ds_transport_router_bind(const char *endpoint, const ds_transport_security_t *sec,
                             zsock_t **out, char *err, size_t errlen)
{
    assert(endpoint && out);
    *out = NULL;
    zsock_t *sock = NULL;
    int rc = s_socket(ZMQ_ROUTER, sec, true, &sock, err, errlen);
    if (rc != 0)
        return rc;
    zsock_set_router_mandatory(sock, 0);
    zsock_set_router_handover(sock, 1);
    if (zsock_bind(sock, "%s", endpoint) < 0) {
        int e = zmq_errno();
        rc = (e == EINVAL || e == EPROTONOSUPPORT || e == ENODEV) ? DS_EINVAL : DS_EIO;
        s_text(err, errlen, "cannot bind %s: %s (%s)", endpoint, zmq_strerror(e),
               rc == DS_EINVAL ? "use tcp://ADDRESS:PORT, e.g. tcp://0.0.0.0:7001"
                               : "pick another port or stop the process that holds it");
        goto err_destroy;
    }
    *out = sock;
    return 0;
err_destroy:
    zsock_destroy(&sock);
    return rc;
}

static int s_connect(zsock_t *sock, const char *endpoint, char *err, size_t errlen)
{
    if (zsock_connect(sock, "%s", endpoint) == 0)
        return 0;
    s_text(err, errlen, "cannot connect to \"%s\": %s (use tcp://HOST:PORT)", endpoint,
           zmq_strerror(zmq_errno()));
    return DS_EINVAL;
}

int ds_transport_peer_connect(const char *endpoint, const char *identity,
                              const ds_transport_security_t *sec, zsock_t **out, char *err,
                              size_t errlen)
{
    assert(endpoint && identity && out);
    *out = NULL;
    size_t idlen = strlen(identity);
    if (idlen == 0 || idlen > 255) {
        s_text(err, errlen, "identity of %zu bytes: use 1 to 255 bytes", idlen);
        return DS_EINVAL;
    }
    zsock_t *sock = NULL;
    int rc = s_socket(ZMQ_DEALER, sec, false, &sock, err, errlen);
    if (rc != 0)
        return rc;
    zsock_set_identity(sock, identity);
    zsock_set_immediate(sock, 1);
    zsock_set_reconnect_ivl(sock, DS_TRANSPORT_RECONNECT_MS);
    zsock_set_reconnect_ivl_max(sock, DS_TRANSPORT_RECONNECT_MAX_MS);
    rc = s_connect(sock, endpoint, err, errlen);
    if (rc != 0)
        goto err_destroy;
    *out = sock;
    return 0;
err_destroy:
    zsock_destroy(&sock);
    return rc;
}

/* ---- send --------------------------------------------------------- */

static int s_send_frame(void *handle, const void *data, size_t len, int flags, ds_codec_err_t *err)
{
    if (zmq_send(handle, data, len, flags | ZMQ_DONTWAIT) >= 0)
        return 0;
    int e = zmq_errno();
    if (e == EAGAIN || e == EHOSTUNREACH)
        return s_fail(err, DS_ELIMIT, "message dropped: no connected peer or send queue full");
    return s_fail(err, DS_EIO, "send failed: %s", zmq_strerror(e));
}

int ds_transport_send(zsock_t *sock, zframe_t *routing_id, const ds_envelope_t *env,
                      const void *body, ds_codec_err_t *err)
{
    assert(sock && env && body);
    ds_buf_t eb = {0}, bb = {0};
    void *handle = zsock_resolve(sock);
    int rc = ds_msg_encode(env, body, &eb, &bb, err);
    if (rc != 0)
        goto exit;
    if (eb.len > DS_MAX_MSG_SIZE || bb.len > DS_MAX_MSG_SIZE) {
        rc = s_fail(err, DS_ETOOBIG, "%s message of %zu bytes exceeds the limit of %u",
                    ds_msg_type_name(env->type), eb.len + bb.len, DS_MAX_MSG_SIZE);
        goto exit;
    }
    /* Once ZeroMQ accepts a first part it accepts the rest: multiparts
       are atomic, so a failure can only happen on the first send. */
    if (routing_id)
        rc = s_send_frame(handle, zframe_data(routing_id), zframe_size(routing_id), ZMQ_SNDMORE,
                          err);
    if (rc == 0)
        rc = s_send_frame(handle, eb.data, eb.len, ZMQ_SNDMORE, err);
    if (rc == 0)
        rc = s_send_frame(handle, bb.data, bb.len, 0, err);
exit:
    ds_buf_free(&eb);
    ds_buf_free(&bb);
    return rc;
}

/* ---- receive ------------------------------------------------------ */

typedef struct {
    zmq_msg_t parts[S_MAX_FRAMES];
    size_t kept;  /* parts initialised (at most S_MAX_FRAMES) */
    size_t count; /* parts received, kept or not */
} s_multipart_t;

static void s_multipart_close(s_multipart_t *mp)
{
    for (size_t i = 0; i < mp->kept; i++)
        zmq_msg_close(&mp->parts[i]);
    mp->kept = 0;
}

/*  Receives every part of one multipart, keeping the first S_MAX_FRAMES. */
static int s_recv_multipart(void *handle, s_multipart_t *mp, ds_codec_err_t *err)
{
    bool more = true;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, handle, 0) < 0) {
            int e = zmq_errno();
            zmq_msg_close(&part);
            if (mp->count == 0 && e == EAGAIN)
                return s_fail(err, DS_ETIMEOUT, "no message before the receive timeout");
            return s_fail(err, DS_EIO, "receive failed: %s", zmq_strerror(e));
        }
        more = zmq_msg_more(&part);
        mp->count++;
        if (mp->kept < S_MAX_FRAMES)
            mp->parts[mp->kept++] = part;
        else
            zmq_msg_close(&part);
    }
    return 0;
}

static int s_check_count(const s_multipart_t *mp, bool router, ds_codec_err_t *err)
{
    size_t want = router ? 3 : 2;
    if (mp->count == want)
        return 0;
    return s_fail(err, mp->count < want ? DS_ETRUNCATED : DS_ETRAILING,
                  "multipart of %zu frames refused: expected %zu (%senvelope, body)", mp->count,
                  want, router ? "routing id, " : "");
}

int ds_transport_recv(zsock_t *sock, bool router, zframe_t **routing_id_out, ds_msg_t **msg_out,
                      ds_codec_err_t *err)
{
    assert(sock && msg_out);
    *msg_out = NULL;
    if (routing_id_out)
        *routing_id_out = NULL;
    s_multipart_t mp = {.kept = 0, .count = 0};
    int rc = s_recv_multipart(zsock_resolve(sock), &mp, err);
    if (rc != 0)
        goto exit;
    if (router && routing_id_out && mp.kept > 0)
        *routing_id_out = zframe_new(zmq_msg_data(&mp.parts[0]), zmq_msg_size(&mp.parts[0]));
    rc = s_check_count(&mp, router, err);
    if (rc != 0)
        goto exit;
    zmq_msg_t *env = &mp.parts[router ? 1 : 0];
    zmq_msg_t *body = env + 1;
    rc = ds_msg_decode(zmq_msg_data(env), zmq_msg_size(env), zmq_msg_data(body), zmq_msg_size(body),
                       msg_out, err);
exit:
    s_multipart_close(&mp);
    return rc;
}

/* ---- request / reply ---------------------------------------------- */

/*  Waits for the reply that matches `corr_id`, dropping others. */
static int s_await_reply(zsock_t *sock, const char *endpoint, uint64_t corr_id, int64_t deadline,
                         ds_msg_t **reply_out, ds_codec_err_t *err)
{
    zmq_pollitem_t item = {.socket = zsock_resolve(sock), .events = ZMQ_POLLIN};
    for (;;) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0)
            return s_fail(err, DS_ETIMEOUT, "%s: no reply", endpoint);
        int n = zmq_poll(&item, 1, (long)left);
        if (n < 0 && zmq_errno() == EINTR)
            continue;
        if (n < 0)
            return s_fail(err, DS_EIO, "%s: poll failed: %s", endpoint, zmq_strerror(zmq_errno()));
        if (n == 0)
            continue;
        ds_msg_t *msg = NULL;
        int rc = ds_transport_recv(sock, false, NULL, &msg, err);
        if (rc != 0) {
            char why[sizeof err->text];
            snprintf(why, sizeof why, "%s", err ? err->text : "");
            return s_fail(err, rc, "%s: bad reply: %s", endpoint, why);
        }
        if (msg->env.corr_id == corr_id) {
            *reply_out = msg;
            return 0;
        }
        ds_msg_destroy(&msg);
    }
}

int ds_rpc_call(const char *endpoint, const ds_transport_security_t *sec,
                const ds_envelope_t *req_env, const void *req_body, int timeout_ms,
                ds_msg_t **reply_out, ds_codec_err_t *err)
{
    assert(endpoint && req_env && req_body && reply_out && timeout_ms > 0);
    *reply_out = NULL;
    int64_t deadline = zclock_mono() + timeout_ms;
    char text[sizeof err->text];
    zsock_t *sock = NULL;
    /* Without ZMQ_IMMEDIATE the request is queued while TCP connects. */
    int rc = s_socket(ZMQ_DEALER, sec, false, &sock, text, sizeof text);
    if (rc == 0)
        rc = s_connect(sock, endpoint, text, sizeof text);
    if (rc != 0) {
        s_fail(err, rc, "%s", text);
        goto exit;
    }
    rc = ds_transport_send(sock, NULL, req_env, req_body, err);
    if (rc != 0)
        goto exit;
    rc = s_await_reply(sock, endpoint, req_env->corr_id, deadline, reply_out, err);
exit:
    zsock_destroy(&sock);
    return rc;
}
