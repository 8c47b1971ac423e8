/*  protocol/zap.c - the ZAP handler (RFC 27); see zap.h. */
#include "protocol/zap.h"

#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/log.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD       "zap"
#define S_MAX_PARTS 8 /* version, id, domain, address, identity, mechanism, credentials */
#define S_PART_TEXT 256

struct ds_zap {
    zactor_t *actor;
    ds_keyring_t *keyring;
    int bind_errno; /* set by the actor before its first signal */
    atomic_uint_fast64_t admitted;
    atomic_uint_fast64_t refused;
};

static _Atomic(ds_keyring_t *) s_running = NULL;

ds_keyring_t *ds_zap_running(void)
{
    return atomic_load(&s_running);
}

void ds_zap_counts(ds_zap_t *self, uint64_t *admitted, uint64_t *refused)
{
    assert(self);
    if (admitted)
        *admitted = atomic_load(&self->admitted);
    if (refused)
        *refused = atomic_load(&self->refused);
}

/*  One received ZAP request: its parts, the first S_MAX_PARTS kept. */
typedef struct {
    zmq_msg_t parts[S_MAX_PARTS];
    size_t kept;
    size_t count;
} s_request_t;

static void s_request_close(s_request_t *req)
{
    for (size_t i = 0; i < req->kept; i++)
        zmq_msg_close(&req->parts[i]);
    req->kept = 0;
}

static int s_request_recv(void *handle, s_request_t *req)
{
    bool more = true;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, handle, 0) < 0) {
            zmq_msg_close(&part);
            return -1;
        }
        more = zmq_msg_more(&part);
        req->count++;
        if (req->kept < S_MAX_PARTS)
            req->parts[req->kept++] = part;
        else
            zmq_msg_close(&part);
    }
    return 0;
}

/*  Copies part `i` as text into out (S_PART_TEXT bytes); "" if absent. */
static void s_part_text(const s_request_t *req, size_t i, char out[S_PART_TEXT])
{
    out[0] = '\0';
    if (i >= req->kept)
        return;
    zmq_msg_t *m = (zmq_msg_t *)&req->parts[i];
    size_t len = zmq_msg_size(m);
    if (len >= S_PART_TEXT)
        len = S_PART_TEXT - 1;
    memcpy(out, zmq_msg_data(m), len);
    out[len] = '\0';
    for (size_t j = 0; j < len; j++)
        if (out[j] == '\0')
            out[j] = '?';
}

static void s_send_part(void *handle, const void *data, size_t len, bool more)
{
    /* A reply the socket cannot take is lost: ZeroMQ then refuses the
       connection itself, which is the safe side. */
    (void)zmq_send(handle, data, len, more ? ZMQ_SNDMORE : 0);
}

/*  Sends the 6-part ZAP reply. */
static void s_reply(void *handle, const s_request_t *req, const char *status, const char *text,
                    const char *user_id)
{
    s_send_part(handle, "1.0", 3, true);
    if (req->kept > 1)
        s_send_part(handle, zmq_msg_data((zmq_msg_t *)&req->parts[1]),
                    zmq_msg_size((zmq_msg_t *)&req->parts[1]), true);
    else
        s_send_part(handle, "", 0, true);
    s_send_part(handle, status, strlen(status), true);
    s_send_part(handle, text, strlen(text), true);
    s_send_part(handle, user_id, strlen(user_id), true);
    s_send_part(handle, "", 0, false); /* no metadata */
}

/*  Decides one request; returns true when admitted and fills `key`. */
static bool s_decide(ds_zap_t *self, const s_request_t *req, char key[DS_KEY_TEXT_LEN + 1],
                     const char **why, char *domain, char *address)
{
    char version[S_PART_TEXT], mechanism[S_PART_TEXT];
    s_part_text(req, 0, version);
    s_part_text(req, 2, domain);
    s_part_text(req, 3, address);
    s_part_text(req, 5, mechanism);
    key[0] = '\0';
    if (req->count < 6 || strcmp(version, "1.0") != 0) {
        *why = "malformed ZAP request";
        return false;
    }
    if (strcmp(mechanism, "CURVE") != 0) {
        *why = "mechanism is not CURVE";
        return false;
    }
    ds_domain_t dom;
    if (ds_domain_parse(domain, &dom) != 0) {
        *why = "unknown ZAP domain";
        return false;
    }
    if (req->count != 7 || zmq_msg_size((zmq_msg_t *)&req->parts[6]) != 32) {
        *why = "no CURVE client key";
        return false;
    }
    if (!zmq_z85_encode(key, zmq_msg_data((zmq_msg_t *)&req->parts[6]), 32)) {
        *why = "key cannot be encoded";
        return false;
    }
    ds_role_t role;
    if (ds_keyring_resolve(self->keyring, key, dom, &role, NULL, 0) == 0)
        return true;
    int rc = ds_keyring_lookup(self->keyring, key, &role, NULL, 0);
    *why = rc == DS_ENOTFOUND ? "unknown key"
           : rc == DS_EPERM   ? "revoked key"
                              : "role not admitted on this endpoint";
    return false;
}

static void s_handle(ds_zap_t *self, void *handle)
{
    s_request_t req = {.kept = 0, .count = 0};
    if (s_request_recv(handle, &req) != 0) {
        s_request_close(&req);
        return;
    }
    char key[DS_KEY_TEXT_LEN + 1], domain[S_PART_TEXT], address[S_PART_TEXT];
    const char *why = "";
    if (s_decide(self, &req, key, &why, domain, address)) {
        atomic_fetch_add(&self->admitted, 1);
        ds_role_t role = DS_ROLE_NONE;
        char name[DS_MAX_NAME + 1] = "";
        ds_domain_t dom = DS_DOMAIN_RPC;
        if (ds_log_enabled(DS_LOG_DEBUG) && ds_domain_parse(domain, &dom) == 0)
            (void)ds_keyring_resolve(self->keyring, key, dom, &role, name, sizeof name);
        DS_LOG(DS_LOG_DEBUG, S_MOD, "connection admitted",
               "key=%s role=%s name=%s domain=%s peer=%s", key, ds_role_name(role), name, domain,
               address);
        s_reply(handle, &req, "200", "OK", key);
    } else {
        atomic_fetch_add(&self->refused, 1);
        DS_LOG(DS_LOG_WARN, S_MOD, "connection refused", "why=%s key=%s domain=%s peer=%s", why,
               key, domain, address);
        s_reply(handle, &req, "400", why, "");
    }
    s_request_close(&req);
}

static void s_actor(zsock_t *pipe, void *args)
{
    ds_zap_t *self = args;
    zsock_t *handler = zsock_new(ZMQ_REP);
    if (!handler || zsock_bind(handler, "%s", DS_ZAP_ENDPOINT) != 0) {
        self->bind_errno = handler ? zmq_errno() : ENOMEM;
        zsock_destroy(&handler);
        zsock_signal(pipe, 1);
        return;
    }
    zsock_set_linger(handler, 0);
    self->bind_errno = 0;
    zsock_signal(pipe, 0);
    zmq_pollitem_t items[] = {{zsock_resolve(pipe), 0, ZMQ_POLLIN, 0},
                              {zsock_resolve(handler), 0, ZMQ_POLLIN, 0}};
    for (;;) {
        /* Signals do not stop the handler: only $TERM or the context's end. */
        if (zmq_poll(items, 2, -1) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv(pipe);
            bool term = !command || strcmp(command, "$TERM") == 0;
            zstr_free(&command);
            if (term)
                break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_handle(self, zsock_resolve(handler));
    }
    /* Closing alone frees the inproc name only once every socket that
       talked to the handler has let go; unbinding frees it now, so a
       new handler can start at once. */
    (void)zmq_unbind(zsock_resolve(handler), DS_ZAP_ENDPOINT);
    zsock_destroy(&handler);
}

int ds_zap_new(ds_keyring_t *keyring, ds_zap_t **out, char *err, size_t errlen)
{
    assert(keyring && out);
    *out = NULL;
    if (!zmq_has("curve"))
        return ds_errf(err, errlen, DS_EINVAL,
                       "this libzmq has no CURVE support: install a libzmq built with libsodium, "
                       "or run with --insecure");
    ds_zap_t *self = calloc(1, sizeof *self);
    if (!self)
        return DS_ENOMEM;
    self->keyring = keyring;
    self->bind_errno = -1;
    atomic_init(&self->admitted, 0);
    atomic_init(&self->refused, 0);
    /* The inproc bind below is what makes the handler one per process;
       this only gives the common case a clearer message. */
    if (atomic_load(&s_running)) {
        free(self);
        return ds_errf(err, errlen, DS_EEXIST,
                       "a ZAP handler already runs in this process (one per process)");
    }
    self->actor = zactor_new(s_actor, self);
    if (!self->actor || self->bind_errno != 0) {
        int e = self->bind_errno;
        zactor_destroy(&self->actor);
        free(self);
        if (e == EADDRINUSE)
            return ds_errf(err, errlen, DS_EEXIST,
                           "%s is taken: another ZAP handler (czmq's zauth?) runs in this "
                           "process; only one can",
                           DS_ZAP_ENDPOINT);
        return ds_errf(err, errlen, DS_EIO, "cannot start the ZAP handler: %s",
                       e > 0 ? zmq_strerror(e) : "no actor");
    }
    ds_keyring_t *none = NULL;
    if (!atomic_compare_exchange_strong(&s_running, &none, keyring)) {
        zactor_destroy(&self->actor);
        free(self);
        return ds_errf(err, errlen, DS_EEXIST,
                       "a ZAP handler already runs in this process (one per process)");
    }
    *out = self;
    return 0;
}

void ds_zap_destroy(ds_zap_t **self_p)
{
    assert(self_p);
    ds_zap_t *self = *self_p;
    if (!self)
        return;
    ds_keyring_t *mine = self->keyring;
    (void)atomic_compare_exchange_strong(&s_running, &mine, NULL);
    zactor_destroy(&self->actor);
    free(self);
    *self_p = NULL;
}
