/*  protocol/transport.c - Gossamer messages over ZeroMQ; see transport.h. */
#include "protocol/transport.h"

#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/log.h"
#include "protocol/zap.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define S_MAX_FRAMES  3           /* routing id, envelope, body */
#define S_SEC_MAGIC   0x64734b79u /* "dsKy": tells a security object from anything else */
#define S_ZAP_ENFORCE 93          /* ZMQ_ZAP_ENFORCE_DOMAIN (draft in libzmq 4.3) */
#define S_AUTH_MOD    "auth"

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

/* ---- security ------------------------------------------------------ */

struct ds_transport_security {
    uint32_t magic; /* first: S_SEC_MAGIC */
    bool server;
    uint8_t public_key[32];
    uint8_t secret_key[32];
    uint8_t server_key[32]; /* client only */
    ds_keyring_t *keyring;  /* server only; borrowed */
    ds_domain_t domain;     /* server only */
};

int ds_transport_curve_check(char *err, size_t errlen)
{
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    if (!zmq_has("curve") || !zsys_has_curve())
        return ds_errf(err, errlen, DS_EINVAL,
                       "libzmq %d.%d.%d was built without CURVE (zmq_has(\"curve\") is false): "
                       "install a libzmq built with libsodium (Debian: libzmq5), or run with "
                       "--insecure on a trusted network only",
                       major, minor, patch);
    if (major < 4 || (major == 4 && minor < 2))
        return ds_errf(err, errlen, DS_EINVAL,
                       "libzmq %d.%d.%d is too old for ZAP user ids: use 4.2 or newer", major,
                       minor, patch);
    return 0;
}

/*  A new object with the key pair of `cert`. */
static int s_security_new(zcert_t *cert, bool server, ds_transport_security_t **out, char *err,
                          size_t errlen)
{
    assert(cert && out);
    *out = NULL;
    int rc = ds_transport_curve_check(err, errlen);
    if (rc != 0)
        return rc;
    static const uint8_t zero[32] = {0};
    if (memcmp(zcert_secret_key(cert), zero, sizeof zero) == 0)
        return ds_errf(err, errlen, DS_EINVAL,
                       "the certificate has no secret key: load the key pair (NAME.key with "
                       "NAME.key_secret), not a public certificate");
    ds_transport_security_t *self = calloc(1, sizeof *self);
    if (!self)
        return DS_ENOMEM;
    self->magic = S_SEC_MAGIC;
    self->server = server;
    memcpy(self->public_key, zcert_public_key(cert), 32);
    memcpy(self->secret_key, zcert_secret_key(cert), 32);
    *out = self;
    return 0;
}

int ds_transport_security_new_server(zcert_t *cert, ds_keyring_t *keyring, ds_domain_t domain,
                                     ds_transport_security_t **out, char *err, size_t errlen)
{
    assert(keyring && out);
    *out = NULL;
    if (!ds_domain_zap(domain))
        return ds_errf(err, errlen, DS_EINVAL, "%d is not a domain (peer or rpc)", (int)domain);
    int rc = s_security_new(cert, true, out, err, errlen);
    if (rc != 0)
        return rc;
    (*out)->keyring = keyring;
    (*out)->domain = domain;
    return 0;
}

int ds_transport_security_new_client(zcert_t *cert, const char *server_key,
                                     ds_transport_security_t **out, char *err, size_t errlen)
{
    assert(out);
    *out = NULL;
    if (ds_keys_check_text(server_key) != 0)
        return ds_errf(err, errlen, DS_EINVAL,
                       "server key \"%.48s\" is not a 40-character Z85 public key (use the key "
                       "of cluster.pub)",
                       server_key ? server_key : "");
    int rc = s_security_new(cert, false, out, err, errlen);
    if (rc != 0)
        return rc;
    zmq_z85_decode((*out)->server_key, server_key);
    return 0;
}

void ds_transport_security_destroy(ds_transport_security_t **self_p)
{
    assert(self_p);
    ds_transport_security_t *self = *self_p;
    if (!self)
        return;
    /* volatile: the wipe must not be optimised away before free */
    volatile uint8_t *p = (volatile uint8_t *)self;
    for (size_t i = 0; i < sizeof *self; i++)
        p[i] = 0;
    free(self);
    *self_p = NULL;
}

void ds_transport_security_key(const ds_transport_security_t *sec, char key[DS_KEY_TEXT_LEN + 1])
{
    assert(sec && sec->magic == S_SEC_MAGIC && key);
    zmq_z85_encode(key, sec->public_key, 32);
}

static int s_setopt(void *handle, int option, const void *value, size_t len, const char *what,
                    char *err, size_t errlen)
{
    if (zmq_setsockopt(handle, option, value, len) == 0)
        return 0;
    return ds_errf(err, errlen, DS_EIO, "cannot set %s on a socket: %s (is CURVE supported?)", what,
                   zmq_strerror(zmq_errno()));
}

int ds_transport_secure(zsock_t *sock, const ds_transport_security_t *sec, bool server, char *err,
                        size_t errlen)
{
    assert(sock);
    if (!sec)
        return 0;
    if (sec->magic != S_SEC_MAGIC)
        return ds_errf(err, errlen, DS_EINVAL,
                       "not a security object (make one with "
                       "ds_transport_security_new_server/_client)");
    if (sec->server != server)
        return ds_errf(err, errlen, DS_EINVAL, "%s security given to a %s socket",
                       sec->server ? "server" : "client", server ? "server" : "client");
    void *h = zsock_resolve(sock);
    int one = 1;
    int rc;
    if (!server) {
        rc = s_setopt(h, ZMQ_CURVE_SERVERKEY, sec->server_key, 32, "the CURVE server key", err,
                      errlen);
        if (rc == 0)
            rc = s_setopt(h, ZMQ_CURVE_PUBLICKEY, sec->public_key, 32, "the CURVE public key", err,
                          errlen);
        if (rc == 0)
            rc = s_setopt(h, ZMQ_CURVE_SECRETKEY, sec->secret_key, 32, "the CURVE secret key", err,
                          errlen);
        return rc;
    }
    /* Fail closed: without a handler, libzmq lets every CURVE client in. */
    if (ds_zap_running() != sec->keyring)
        return ds_errf(err, errlen, DS_ESTATE,
                       "no ZAP handler runs with this socket's key registry: start it "
                       "(ds_zap_new) before binding a CURVE socket, or every key would be "
                       "admitted");
    const char *domain = ds_domain_zap(sec->domain);
    rc = s_setopt(h, ZMQ_CURVE_SERVER, &one, sizeof one, "CURVE server mode", err, errlen);
    if (rc == 0)
        rc = s_setopt(h, ZMQ_CURVE_SECRETKEY, sec->secret_key, 32, "the CURVE secret key", err,
                      errlen);
    if (rc == 0)
        rc = s_setopt(h, ZMQ_ZAP_DOMAIN, domain, strlen(domain), "the ZAP domain", err, errlen);
    /* Where libzmq has it (draft API), also refuse connections when the
       handler goes away; elsewhere recv_as refuses their messages, which
       then carry no User-Id. */
    if (rc == 0)
        (void)zmq_setsockopt(h, S_ZAP_ENFORCE, &one, sizeof one);
    return rc;
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
    int rc = ds_transport_secure(sock, sec, server, err, errlen);
    if (rc != 0) {
        zsock_destroy(&sock);
        return rc;
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

/*  Receives every part of one multipart, keeping the first S_MAX_FRAMES.
    `flags` apply to the first part (ZMQ_DONTWAIT); the others are there
    already (ZeroMQ delivers a multipart whole). */
static int s_recv_multipart(void *handle, int flags, s_multipart_t *mp, ds_codec_err_t *err)
{
    bool more = true;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, handle, mp->count == 0 ? flags : 0) < 0) {
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

/*  The "User-Id" property ZeroMQ attached to the message (the sender's
    key, from the ZAP handler), or NULL on a plain socket. The routing
    frame a ROUTER makes up carries none: look at every part. */
static const char *s_user_id(s_multipart_t *mp)
{
    for (size_t i = 0; i < mp->kept; i++) {
        const char *uid = zmq_msg_gets(&mp->parts[i], "User-Id");
        if (uid && uid[0])
            return uid;
    }
    return NULL;
}

/*  Decodes only the envelope, for its type and corr_id. */
static int s_peek_envelope(zmq_msg_t *env, ds_transport_sender_t *from, ds_codec_err_t *err)
{
    size_t len = zmq_msg_size(env);
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(len, sizeof(ds_envelope_t)));
    if (!arena)
        return s_fail(err, DS_ENOMEM, "out of memory decoding an envelope");
    ds_envelope_t e = {0, 0, 0, NULL};
    int rc = ds_envelope_decode(zmq_msg_data(env), len, &e, arena, err);
    if (rc == 0) {
        from->have_env = true;
        from->type = e.type;
        from->corr_id = e.corr_id;
    }
    ds_arena_destroy(&arena);
    return rc;
}

/*  Decides whether the sender may send this message; fills from->role. */
static int s_authorize(const ds_transport_security_t *sec, const char *uid,
                       ds_transport_sender_t *from, ds_codec_err_t *err)
{
    if (!sec) {
        if (uid)
            return s_fail(err, DS_EFORBIDDEN,
                          "message from key %.40s on a CURVE socket read without a role check "
                          "(receive it with ds_transport_recv_as)",
                          uid);
        from->role = DS_ROLE_INSECURE;
        return 0;
    }
    if (!uid) {
        DS_LOG(DS_LOG_WARN, S_AUTH_MOD, "message without an authenticated key refused",
               "domain=%s type=%s", ds_domain_zap(sec->domain), ds_msg_type_name(from->type));
        return s_fail(err, DS_EFORBIDDEN,
                      "message without an authenticated key refused (is the ZAP handler "
                      "running?)");
    }
    snprintf(from->key, sizeof from->key, "%s", uid);
    ds_role_t role = DS_ROLE_NONE;
    if (ds_keyring_resolve(sec->keyring, uid, sec->domain, &role, from->name, sizeof from->name) !=
        0) {
        DS_LOG(DS_LOG_WARN, S_AUTH_MOD, "message from a key not admitted here refused",
               "key=%s domain=%s type=%s", from->key, ds_domain_zap(sec->domain),
               ds_msg_type_name(from->type));
        return s_fail(err, DS_EFORBIDDEN,
                      "key %s is unknown, revoked or not admitted on %s: message refused",
                      from->key, ds_domain_zap(sec->domain));
    }
    from->role = role;
    if (from->have_env && ds_role_may_send(role, from->type) != 0) {
        DS_LOG(DS_LOG_WARN, S_AUTH_MOD, "forbidden message refused",
               "key=%s role=%s name=%s type=%s domain=%s", from->key, ds_role_name(role),
               from->name, ds_msg_type_name(from->type), ds_domain_zap(sec->domain));
        return s_fail(err, DS_EFORBIDDEN, "forbidden: a %s key%s%s may not send %s",
                      ds_role_name(role), from->name[0] ? " named " : "", from->name,
                      ds_msg_type_name(from->type));
    }
    return 0;
}

/*  Whether a message from a pending key carries a join token (its only
    admissible type is JOIN, ds_role_may_send). */
static bool s_has_token(const ds_msg_t *msg)
{
    if (msg->env.type != DS_MSG_JOIN)
        return false;
    const ds_join_req_t *join = msg->body;
    return join->token && join->token[0];
}

static int s_recv(zsock_t *sock, const ds_transport_security_t *sec, bool router, int flags,
                  zframe_t **routing_id_out, ds_msg_t **msg_out, ds_transport_sender_t *from,
                  ds_codec_err_t *err)
{
    assert(sock && msg_out && from);
    assert(!sec || (sec->magic == S_SEC_MAGIC && sec->server));
    *msg_out = NULL;
    if (routing_id_out)
        *routing_id_out = NULL;
    s_multipart_t mp = {.kept = 0, .count = 0};
    int rc = s_recv_multipart(zsock_resolve(sock), flags, &mp, err);
    if (rc != 0)
        goto exit;
    if (router && routing_id_out && mp.kept > 0)
        *routing_id_out = zframe_new(zmq_msg_data(&mp.parts[0]), zmq_msg_size(&mp.parts[0]));
    const char *uid = s_user_id(&mp);
    rc = s_check_count(&mp, router, err);
    if (rc != 0) {
        /* Never decode for someone not admitted, even to explain. */
        if (s_authorize(sec, uid, from, NULL) == DS_EFORBIDDEN)
            rc = s_fail(err, DS_EFORBIDDEN, "message from a sender not admitted here refused");
        goto exit;
    }
    zmq_msg_t *env = &mp.parts[router ? 1 : 0];
    zmq_msg_t *body = env + 1;
    /* The envelope first: the role is checked against its type before
       the body is touched, and its corr_id lets the caller answer. */
    int peek = s_peek_envelope(env, from, err);
    rc = s_authorize(sec, uid, from, err);
    if (rc == 0)
        rc = peek;
    if (rc != 0)
        goto exit;
    rc = ds_msg_decode(zmq_msg_data(env), zmq_msg_size(env), zmq_msg_data(body), zmq_msg_size(body),
                       msg_out, err);
    if (rc == 0 && from->role == DS_ROLE_PENDING && !s_has_token(*msg_out)) {
        DS_LOG(DS_LOG_WARN, S_AUTH_MOD, "join without a token from an unknown key refused",
               "key=%s domain=%s", from->key, ds_domain_zap(sec->domain));
        ds_msg_destroy(msg_out);
        rc = s_fail(err, DS_EFORBIDDEN,
                    "forbidden: key %s is not known here: a new worker must join with a token",
                    from->key);
    }
exit:
    s_multipart_close(&mp);
    return rc;
}

static void s_sender_init(ds_transport_sender_t *from)
{
    memset(from, 0, sizeof *from);
    from->role = DS_ROLE_NONE;
}

int ds_transport_recv(zsock_t *sock, bool router, zframe_t **routing_id_out, ds_msg_t **msg_out,
                      ds_codec_err_t *err)
{
    ds_transport_sender_t from;
    s_sender_init(&from);
    return s_recv(sock, NULL, router, 0, routing_id_out, msg_out, &from, err);
}

int ds_transport_recv_as(zsock_t *sock, const ds_transport_security_t *sec, bool router,
                         zframe_t **routing_id_out, ds_msg_t **msg_out, ds_transport_sender_t *from,
                         ds_codec_err_t *err)
{
    ds_transport_sender_t local;
    if (!from)
        from = &local;
    s_sender_init(from);
    return s_recv(sock, sec, router, 0, routing_id_out, msg_out, from, err);
}

int ds_transport_try_recv_as(zsock_t *sock, const ds_transport_security_t *sec, bool router,
                             zframe_t **routing_id_out, ds_msg_t **msg_out,
                             ds_transport_sender_t *from, ds_codec_err_t *err)
{
    ds_transport_sender_t local;
    if (!from)
        from = &local;
    s_sender_init(from);
    return s_recv(sock, sec, router, ZMQ_DONTWAIT, routing_id_out, msg_out, from, err);
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
