/*  protocol/zap.h - the ZAP handler: who may connect to a CURVE socket.

    ZeroMQ asks a ZAP handler (RFC 27) to authenticate every connection to
    a socket with a security mechanism, over the inproc endpoint
    "inproc://zeromq.zap.01" of the socket's context. This handler answers
    from a live key registry (protocol/keys.h) and the socket's ZAP domain
    ("gossamer.peer", "gossamer.rpc"): a connection is admitted when its
    client key resolves (ds_keyring_resolve) to a role admitted on that
    domain, and ZeroMQ then tags each message it delivers with the key,
    in Z85, as the "User-Id" property. ds_transport_recv_as looks that
    key up again on every message, so a key removed from the registry is
    refused on its very next message, not only on its next connection.

    Fail closed: a CURVE server with no ZAP handler running admits every
    client key, so ds_transport_secure refuses to set up a CURVE server
    socket unless a handler runs with the socket's registry; messages that
    arrive with no User-Id are refused as well. Anything but CURVE (NULL,
    PLAIN) and any unknown domain is refused here.

    One handler per process, because the inproc endpoint is one per
    context: it binds in czmq's shared context (zsys), the one every
    zsock_new socket, and so every transport socket, uses. czmq's zauth
    cannot run next to it (and would keep one allow-list for every socket,
    unable to say that a key is a worker on one endpoint and an admin on
    another).

    The handler is a thread (a zactor). The registry is borrowed and must
    outlive it; the registry is thread-safe, so it can change while the
    handler runs.
*/
#ifndef DS_PROTOCOL_ZAP_H
#define DS_PROTOCOL_ZAP_H

#include "protocol/keys.h"

#include <stddef.h>
#include <stdint.h>

#define DS_ZAP_ENDPOINT "inproc://zeromq.zap.01"

typedef struct ds_zap ds_zap_t;

/*  Starts the handler for `keyring` (borrowed). Returns 0 and sets *out
    (the caller destroys it with ds_zap_destroy, before the keyring and
    after the sockets that rely on it); DS_EEXIST when a handler (this
    one or czmq's zauth) already runs in this process; DS_EINVAL when
    libzmq has no CURVE; DS_EIO or DS_ENOMEM otherwise. `err` says what
    to do. */
int ds_zap_new(ds_keyring_t *keyring, ds_zap_t **out, char *err, size_t errlen);

/*  Stops the handler, frees it and sets *self_p to NULL. Accepts NULL.
    From then on no CURVE server socket can be set up, and messages on
    the ones that remain carry no User-Id and are refused. */
void ds_zap_destroy(ds_zap_t **self_p);

/*  Returns the registry of the handler that runs in this process, or NULL
    when none runs. Thread-safe. */
ds_keyring_t *ds_zap_running(void);

/*  Connections the handler admitted and refused so far. Thread-safe. */
void ds_zap_counts(ds_zap_t *self, uint64_t *admitted, uint64_t *refused);

#endif
